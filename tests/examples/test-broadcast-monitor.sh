#!/usr/bin/env bash
# broadcast-monitor, run as a user runs it: a 12 s WebM (VP8 + Vorbis) made
# here, the emulator on a free loopback port, the monitor on its file:// URI.
# It must exit 0 with one verdict per file of the spool (audio segments and
# snapshots) in its JSON Lines, and a report whose SVG timeline is
# well-formed XML with one mark per verdict, the fake ones in red.
#
# From meson (tests/examples/meson.build): BROADCAST_MONITOR,
# RD_EMULATOR_PROGRAM, GST_LAUNCH, GST_INSPECT, PYTHON, XMLLINT (empty when
# not found). Missing elements or tools make it SKIP (77), or fail with
# RD_TESTS_REQUIRE_ALL_ELEMENTS set, as the element tests do.
set -euo pipefail

skip () {
  if [ -n "${RD_TESTS_REQUIRE_ALL_ELEMENTS:-}" ]; then
    echo "FAIL: skipped for want of $1" >&2
    exit 1
  fi
  echo "SKIP: $1" >&2
  exit 77
}

[ -n "${XMLLINT:-}" ] || skip "xmllint (libxml2-utils)"
[ -n "${GST_LAUNCH:-}" ] || skip "gst-launch-1.0"
for e in videotestsrc audiotestsrc vp8enc vorbisenc webmmux uridecodebin \
    videorate videoconvert videoscale jpegenc audioconvert audioresample \
    lamemp3enc; do
  "$GST_INSPECT" --exists "$e" || skip "element $e"
done

work=$(mktemp -d)
emulator_pid=
cleanup () {
  [ -n "$emulator_pid" ] && kill "$emulator_pid" 2>/dev/null && wait "$emulator_pid" || true
  rm -rf "$work"
}
trap cleanup EXIT

# A spool whose path needs escaping in HTML, and an input that needs it in
# its URI.
spool="$work/spool & \"quotes\" <1>"
input="$work/in put.webm"
"$GST_LAUNCH" -q \
  videotestsrc num-buffers=300 pattern=ball ! \
    video/x-raw,width=320,height=240,framerate=25/1 ! vp8enc deadline=1 ! \
    webmmux name=mux ! filesink location="$input" \
  audiotestsrc num-buffers=120 samplesperbuffer=4410 ! \
    audio/x-raw,rate=44100,channels=1 ! audioconvert ! vorbisenc ! mux.

# The emulator prints its URL as its first line: read it through a FIFO
# (the read blocks until the line or the emulator's end; no polling).
token=monitor-test-token
mkfifo "$work/emulator.out"
"$RD_EMULATOR_PROGRAM" --port 0 --token "$token" --processing-ms 200 \
  >"$work/emulator.out" 2>"$work/emulator.err" &
emulator_pid=$!
exec 3<"$work/emulator.out"
if ! read -r -t 60 url <&3; then
  cat "$work/emulator.err" >&2
  echo "FAIL: the emulator printed no URL" >&2
  exit 1
fi
case "$url" in
  http://127.0.0.1:*) ;;
  *) echo "FAIL: unexpected emulator URL: $url" >&2; exit 1 ;;
esac

uri=$("$PYTHON" -c 'import pathlib, sys; print(pathlib.Path(sys.argv[1]).as_uri())' "$input")
rc=0
RESEMBLE_API_TOKEN="$token" "$BROADCAST_MONITOR" --api-url "$url" \
  --location "$spool" --segment 4 --snapshot-every 3 --max-files 4 \
  --keep-files --jsonl "$work/verdicts.jsonl" --report "$work/report.html" \
  --svg "$work/timeline.svg" "$uri" >"$work/monitor.out" 2>&1 || rc=$?
cat "$work/monitor.out"
if [ "$rc" -ne 0 ]; then
  echo "FAIL: broadcast-monitor exited with $rc" >&2
  exit 1
fi
if grep -q "$token" "$work/monitor.out" "$work/verdicts.jsonl" "$work/report.html"; then
  echo "FAIL: the token was printed or written" >&2
  exit 1
fi

# The SVG, standalone and as it is inside the HTML, is well-formed XML.
"$PYTHON" - "$work/report.html" "$work/extracted.svg" <<'PY'
import re, sys
html = open(sys.argv[1], encoding="utf-8").read()
svgs = re.findall(r"<svg\b.*?</svg>", html, re.S)
assert len(svgs) == 1, f"{len(svgs)} <svg> elements in the report"
open(sys.argv[2], "w", encoding="utf-8").write(svgs[0])
PY
"$XMLLINT" --noout "$work/timeline.svg"
"$XMLLINT" --noout "$work/extracted.svg"

"$PYTHON" - "$work/verdicts.jsonl" "$spool" "$work/extracted.svg" \
    "$work/report.html" <<'PY'
import glob, html.parser, json, os, sys
import xml.etree.ElementTree as ET

jsonl, spool, svg, report = sys.argv[1:]
S = 1_000_000_000
lines = [json.loads(l) for l in open(jsonl, encoding="utf-8")]
verdicts = [l for l in lines if l["event"] == "verdict"]
batches = [l for l in lines if l["event"] in ("batch-done", "batch-error")]

# one verdict per file of the spool, and nothing else
files = sorted(f for f in glob.glob(os.path.join(glob.escape(spool), "batch-*", "*"))
               if not f.endswith("manifest.json"))
got = sorted(v["file"] for v in verdicts)
assert got == files, f"verdicts for {got}\nfiles in the spool: {files}"

fields = {"batch_uuid", "detect_uuid", "file", "media_type", "running_time_ns",
          "duration_ns", "status", "label", "score"}
for v in verdicts:
    assert fields <= v.keys(), f"missing {fields - v.keys()} in {v}"
    assert v["status"] == "completed", v
    assert 0 <= v["score"] <= 1, v
    assert isinstance(v["running_time_ns"], int), v
    assert "latency_ns" not in v or v["latency_ns"] >= 0, v

audio = sorted((v for v in verdicts if v["media_type"] == "audio"),
               key=lambda v: v["running_time_ns"])
images = sorted((v for v in verdicts if v["media_type"] == "image"),
                key=lambda v: v["running_time_ns"])
assert audio and images, "audio and image verdicts expected"
assert len(audio) + len(images) == len(verdicts), "only audio and images"
assert all(v["file"].endswith(".mp3") for v in audio), audio
assert all(v["file"].endswith(".jpg") for v in images), images

# the audio segments cover the 12 s, one after the other
end = 0
for v in audio:
    assert abs(v["running_time_ns"] - end) < S // 20, (end, v)
    assert v["duration_ns"] <= 4 * S + S // 20, v
    end = v["running_time_ns"] + v["duration_ns"]
assert abs(end - 12 * S) < S // 5, f"audio ends at {end}"
# one snapshot every 3 s
assert [v["running_time_ns"] for v in images] == [0, 3 * S, 6 * S, 9 * S], images

# every batch done, one line each
assert all(b["event"] == "batch-done" and b["status"] == "completed"
           for b in batches), batches
assert len(batches) == len(glob.glob(os.path.join(glob.escape(spool), "batch-*")))
assert sum(b["total_files"] for b in batches) == len(verdicts)

# the timeline: one mark (with a tooltip) per verdict; fake ones red
ns = "{http://www.w3.org/2000/svg}"
marks = [e for e in ET.parse(svg).getroot()
         if e.tag in (ns + "rect", ns + "circle") and e.find(ns + "title") is not None]
assert len(marks) == len(verdicts), f"{len(marks)} marks, {len(verdicts)} verdicts"
assert sum(e.tag == ns + "rect" for e in marks) == len(audio), "audio as spans"
assert sum(e.tag == ns + "circle" for e in marks) == len(images), "snapshots as points"
def fake(v):
    if v["label"] is not None:
        return v["label"].lower() == "fake"
    return v["score"] >= 0.5
red = sum(e.get("fill") == "#d62728" for e in marks)
assert red == sum(map(fake, verdicts)), f"{red} red marks"

# the report's table names every file with its full path (escaped, read back)
class Titles(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.titles = []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "td" and a.get("class") == "file":
            self.titles.append(a["title"])
p = Titles()
p.feed(open(report, encoding="utf-8").read())
assert sorted(p.titles) == files, p.titles
print(f"{len(audio)} audio and {len(images)} image verdicts, "
      f"{len(batches)} batches, {red} fake")
PY
echo "PASS"
