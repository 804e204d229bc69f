#!/bin/bash
# bench-segment.sh: what resembledetectsink's segmenting costs, against
# splitmuxsink alone and against one muxer into filesink, on the same input in
# the same run. Two workloads: raw audio -> WAV segments, and H.264 -> MP4
# segments (encoded once beforehand, so that the encoder is not measured).
# Each pipeline runs REPEAT times, interleaved; the script prints the median
# wall time, CPU time (user + sys) and peak RSS (/usr/bin/time %M) of the
# gst-launch-1.0 process, and their ratios to filesink and to splitmuxsink.
# gst-launch-1.0 is pinned to CPU 0 (-P: not), which makes the numbers
# repeatable: unpinned, thread hand-offs across CPUs make them bimodal.
# The element's batches go to http://127.0.0.1:1, where nothing listens: the
# client's POST is refused at once (max-retries=0), so the network costs
# nothing and what is measured is segmenting, spooling and manifests. With -u
# a further row uploads every batch to a spawned API emulator instead. This is
# a benchmark run by hand (docs/benchmarks.md), not a test: it prints ratios,
# it judges nothing.

set -euo pipefail

usage() {
  cat <<EOF
usage: $0 [-b BUILD_DIR] [-r REPEAT] [-w WORKLOADS] [-m MP3_SECONDS]
          [-a AUDIO_SECONDS] [-v VIDEO_SECONDS] [-s SEGMENT_SECONDS]
          [-d WORK_DIR] [-o RESULTS_FILE] [-c] [-u] [-P] [-k]
  -b  meson build dir with the plugin in gst/ (default: build)
  -r  runs of each pipeline; medians are printed (default: 5)
  -w  workloads, comma-separated: mp3, h264, raw (default: mp3,h264)
  -m  length of the MP3 input, 44.1 kHz stereo 128 kbit/s CBR (default: 1800)
  -a  length of the raw audio input, 48 kHz stereo S16LE in 10 ms buffers
      (default: 1800)
  -v  length of the H.264 input, 640x360 30 fps, 2 Mbit/s (default: 600)
  -s  segment length (default: 10)
  -d  where inputs and outputs go (default: a new directory in /dev/shm, so
      that disk writeback does not add noise, removed at the end); a given
      directory keeps the encoded input, which later runs reuse
  -o  also append one line per pipeline to this file, for bench/run:
      workload|pipeline|files|wall_s|cpu_s|rss_kB|instructions|short_instructions
      (medians; instructions are - unless -c)
  -c  count instructions with callgrind (valgrind) for the splitmuxsink and
      element rows: one run on the input, one on a 2 s input of the same
      kind; adds about 30 s per workload
  -u  also run the element uploading to a spawned emulator (wait-on-eos)
  -P  do not pin gst-launch-1.0 to CPU 0 (taskset -c 0); unpinned, the
      H.264 runs swing between two speeds (x3) with where the scheduler
      puts the demuxer's and the muxer's threads
  -k  keep the work directory even when it was made by the script
EOF
}

build=build
repeat=5
workloads=mp3,h264
mp3_seconds=1800
results_file=
callgrind=0
audio_seconds=1800
video_seconds=600
segment_seconds=10
work=
with_upload=0
pin=1
keep=0
while getopts "b:r:w:m:a:v:s:d:o:cuPkh" opt; do
  case $opt in
    b) build=$OPTARG ;;
    r) repeat=$OPTARG ;;
    w) workloads=$OPTARG ;;
    m) mp3_seconds=$OPTARG ;;
    o) results_file=$OPTARG ;;
    c) callgrind=1 ;;
    a) audio_seconds=$OPTARG ;;
    v) video_seconds=$OPTARG ;;
    s) segment_seconds=$OPTARG ;;
    d) work=$OPTARG ;;
    u) with_upload=1 ;;
    P) pin=0 ;;
    k) keep=1 ;;
    *) usage; exit 2 ;;
  esac
done

build=$(cd "$build" && pwd)
export GST_PLUGIN_PATH=$build/gst
emulator_program=$build/tests/emulator/resemble-detect-emulator
if ! gst-inspect-1.0 resembledetectsink >/dev/null 2>&1; then
  echo "resembledetectsink not found in $GST_PLUGIN_PATH (build it first)" >&2
  exit 1
fi
for element in x264enc lamemp3enc mpegaudioparse xingmux splitmuxsink wavenc \
  mp4mux qtdemux h264parse; do
  if ! gst-inspect-1.0 "$element" >/dev/null 2>&1; then
    echo "GStreamer element $element is missing" >&2
    exit 1
  fi
done
if [ "$callgrind" = 1 ] && ! command -v valgrind >/dev/null; then
  echo "-c needs valgrind" >&2
  exit 1
fi
has_workload() {
  case ",$workloads," in
    *",$1,"*) return 0 ;;
  esac
  return 1
}

made_work=0
if [ -z "$work" ]; then
  made_work=1
  if [ -d /dev/shm ]; then
    work=$(mktemp -d /dev/shm/bench-segment-XXXXXX)
  else
    work=$(mktemp -d "${TMPDIR:-/tmp}/bench-segment-XXXXXX")
  fi
fi
mkdir -p "$work"
emulator_pid=
cleanup() {
  if [ -n "$emulator_pid" ]; then
    kill "$emulator_pid" 2>/dev/null || true
    wait "$emulator_pid" 2>/dev/null || true
  fi
  rm -rf "$work/out" "$work/time" "$work/out.log" "$work/emulator.url" \
    "$work"/results.* "$work/callgrind.log"
  if [ "$made_work" = 1 ] && [ "$keep" = 0 ]; then
    rm -rf "$work"
  fi
}
trap cleanup EXIT

if [ "$pin" = 1 ]; then
  pin_command=(taskset -c 0)
  pinned="pinned to CPU 0"
else
  pin_command=()
  pinned="not pinned"
fi
segment_ns=$((segment_seconds * 1000000000))
# A pipeline that does not finish in this long has hung.
run_timeout=60
audio_buffers=$((audio_seconds * 100))
video_frames=$((video_seconds * 30))
video_input=$work/input-${video_seconds}s.mp4

mp3_input=$work/input-${mp3_seconds}s.mp3
short_video_input=$work/input-2s.mp4
short_mp3_input=$work/input-2s.mp3

# Encodes $1 seconds of H.264 into $2, once (kept in a given -d).
encode_video() {
  local seconds=$1 output=$2
  [ -s "$output" ] && return 0
  echo "encoding $seconds s of H.264 once (not measured) ..."
  gst-launch-1.0 -q videotestsrc num-buffers=$((seconds * 30)) pattern=smpte \
      horizontal-speed=4 \
    ! video/x-raw,width=640,height=360,framerate=30/1 \
    ! x264enc tune=zerolatency speed-preset=ultrafast bitrate=2000 \
      key-int-max=60 \
    ! h264parse ! mp4mux ! filesink location="$output.part"
  mv "$output.part" "$output"
}

# Encodes $1 seconds of MP3 (44.1 kHz stereo, 128 kbit/s CBR) into $2, once.
encode_mp3() {
  local seconds=$1 output=$2
  [ -s "$output" ] && return 0
  echo "encoding $seconds s of MP3 once (not measured) ..."
  gst-launch-1.0 -q audiotestsrc wave=sine freq=440 samplesperbuffer=4410 \
      num-buffers=$((seconds * 10)) \
    ! audio/x-raw,format=S16LE,rate=44100,channels=2 \
    ! lamemp3enc target=bitrate bitrate=128 cbr=true \
    ! filesink location="$output.part"
  mv "$output.part" "$output"
}

if has_workload h264; then
  encode_video "$video_seconds" "$video_input"
  [ "$callgrind" = 1 ] && encode_video 2 "$short_video_input"
fi
if has_workload mp3; then
  encode_mp3 "$mp3_seconds" "$mp3_input"
  [ "$callgrind" = 1 ] && encode_mp3 2 "$short_mp3_input"
fi

if [ "$with_upload" = 1 ]; then
  if [ ! -x "$emulator_program" ]; then
    echo "$emulator_program is missing (build it first)" >&2
    exit 1
  fi
  # Its upload spool goes where the outputs go; it runs on the other CPU.
  emulator_pin=()
  if [ "$pin" = 1 ] && [ "$(nproc)" -ge 2 ]; then
    emulator_pin=(taskset -c 1)
  fi
  TMPDIR=$work "${emulator_pin[@]}" "$emulator_program" --host 127.0.0.1 \
    --port 0 \
    --token bench-token --processing-ms 0 > "$work/emulator.url" &
  emulator_pid=$!
  for _ in $(seq 100); do
    [ -s "$work/emulator.url" ] && break
    sleep 0.05
  done
  emulator_url=$(head -n 1 "$work/emulator.url")
  case $emulator_url in
    http://127.0.0.1:*) ;;
    *) echo "the emulator did not start" >&2; exit 1 ;;
  esac
fi

audio_src="audiotestsrc wave=silence samplesperbuffer=480 \
num-buffers=$audio_buffers ! audio/x-raw,format=S16LE,rate=48000,channels=2"
video_src="filesrc location=$video_input ! qtdemux ! h264parse"
mp3_src="filesrc location=$mp3_input ! mpegaudioparse"
element_refused="resembledetectsink location=$work/out/spool \
segment-duration=$segment_ns api-url=http://127.0.0.1:1 api-token=bench-token \
max-retries=0 wait-on-eos=false keep-files=true"

# name|pipeline, per workload; "@OUT@" is the output directory of the run.
audio_cases=(
  "source only (fakesink)|$audio_src ! fakesink"
  "wavenc ! filesink|$audio_src ! wavenc ! filesink location=@OUT@/all.wav"
  "splitmuxsink|$audio_src ! splitmuxsink muxer-factory=wavenc \
max-size-time=$segment_ns location=@OUT@/segment-%05d.wav"
  "resembledetectsink|$audio_src ! $element_refused"
)
mp3_cases=(
  "source only (fakesink)|$mp3_src ! fakesink"
  "filesink (one file)|$mp3_src ! filesink location=@OUT@/all.mp3"
  "splitmuxsink|$mp3_src ! splitmuxsink muxer-factory=xingmux \
max-size-time=$segment_ns location=@OUT@/segment-%05d.mp3"
  "resembledetectsink|$mp3_src ! $element_refused"
)
video_cases=(
  "source only (fakesink)|$video_src ! fakesink"
  "mp4mux ! filesink|$video_src ! mp4mux ! filesink location=@OUT@/all.mp4"
  "splitmuxsink|$video_src ! splitmuxsink muxer-factory=mp4mux \
max-size-time=$segment_ns location=@OUT@/segment-%05d.mp4"
  "resembledetectsink|$video_src ! $element_refused"
)
if [ "$with_upload" = 1 ]; then
  element_upload="resembledetectsink location=$work/out/spool \
segment-duration=$segment_ns api-url=$emulator_url api-token=bench-token \
keep-files=true poll-interval=1000000000 fetch-results=false"
  audio_cases+=("resembledetectsink + upload|$audio_src ! $element_upload")
  mp3_cases+=("resembledetectsink + upload|$mp3_src ! $element_upload")
  video_cases+=("resembledetectsink + upload|$video_src ! $element_upload")
fi

# Runs one pipeline; appends "wall_s cpu_s rss_kB files bytes" to $1. A run
# that hangs is killed after $run_timeout s and run again (at most twice):
# plain splitmuxsink in GStreamer 1.22 sometimes never posts EOS on a fast
# non-live input (about 1 run in 40 here); such a run is not measured.
run_once() {
  local results=$1 pipeline=$2
  local start end files bytes rc attempt
  pipeline=${pipeline//@OUT@/$work/out}
  for attempt in 1 2 3; do
    rm -rf "$work/out"
    mkdir -p "$work/out"
    start=$(date +%s%N)
    rc=0
    # shellcheck disable=SC2086 # the pipeline is words for gst-launch
    /usr/bin/time -f '%U %S %M' -o "$work/time" \
      "${pin_command[@]}" timeout "$run_timeout" gst-launch-1.0 -q $pipeline \
      > "$work/out.log" 2>&1 || rc=$?
    end=$(date +%s%N)
    if [ "$rc" = 0 ]; then
      break
    fi
    if ! grep -q "non-zero status 124" "$work/time" || [ "$attempt" = 3 ]; then
      echo "FAILED: gst-launch-1.0 $pipeline" >&2
      cat "$work/out.log" >&2
      exit 1
    fi
    echo "  (hung for $run_timeout s and was killed, run again:" \
      "${pipeline:0:60}...)" >&2
  done
  files=$(find "$work/out" -type f \( -name '*.wav' -o -name '*.mp4' \
    -o -name '*.mp3' \) | wc -l)
  bytes=$(find "$work/out" -type f \( -name '*.wav' -o -name '*.mp4' \
    -o -name '*.mp3' \) \
    -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
  awk -v wall="$(( (end - start) / 1000 ))" -v files="$files" \
    -v bytes="$bytes" '{ printf "%.6f %.3f %d %d %d\n", wall / 1e6, $1 + $2,
      $3, files, bytes }' "$work/time" >> "$results"
}

# Counts the instructions of one run of pipeline $1 (every thread of
# gst-launch-1.0, from exec to exit) with callgrind; prints the count.
# Instruction counts do not depend on what else the machine runs.
callgrind_once() {
  local pipeline=$1
  pipeline=${pipeline//@OUT@/$work/out}
  rm -rf "$work/out"
  mkdir -p "$work/out"
  # The registry was brought up to date by the timed runs: a rescan would
  # be counted.
  # shellcheck disable=SC2086 # the pipeline is words for gst-launch
  if ! GST_REGISTRY_UPDATE=no "${pin_command[@]}" valgrind --tool=callgrind \
      --callgrind-out-file=/dev/null gst-launch-1.0 -q $pipeline \
      > "$work/callgrind.log" 2>&1; then
    echo "FAILED under callgrind: gst-launch-1.0 $pipeline" >&2
    tail -n 20 "$work/callgrind.log" >&2
    exit 1
  fi
  sed -n 's/^==[0-9]*== Collected : \([0-9]*\)$/\1/p' "$work/callgrind.log" |
    tail -n 1
}

median() {
  sort -n | awk '{ v[NR] = $1 } END {
    if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Runs every case of a workload $repeat times, interleaved, and prints the
# table.
bench_workload() {
  local key=$1 title=$2 short_input=$3 long_input=$4
  shift 4
  local cases=("$@")
  local n=${#cases[@]} i r
  for ((i = 0; i < n; i++)); do
    : > "$work/results.$i"
  done
  # One unmeasured run of each first: page cache, registry, plugin loading.
  for ((i = 0; i < n; i++)); do
    run_once /dev/null "${cases[i]#*|}"
  done
  for ((r = 0; r < repeat; r++)); do
    for ((i = 0; i < n; i++)); do
      run_once "$work/results.$i" "${cases[i]#*|}"
    done
  done

  local -a wall cpu rss files mbytes ir short_ir
  for ((i = 0; i < n; i++)); do
    ir[i]=-
    short_ir[i]=-
    # splitmuxsink and the element (rows 2 and 3): instructions, on the
    # input and on the 2 s input (the same pipeline with the short file).
    if [ "$callgrind" = 1 ] && { [ "$i" = 2 ] || [ "$i" = 3 ]; }; then
      # one unmeasured run first (valgrind's own start, page cache)
      callgrind_once "$(printf '%s' "${cases[i]#*|}" |
        sed "s|$long_input|$short_input|")" > /dev/null
      ir[i]=$(callgrind_once "${cases[i]#*|}")
      short_ir[i]=$(callgrind_once "$(printf '%s' "${cases[i]#*|}" |
        sed "s|$long_input|$short_input|")")
    fi
    wall[i]=$(cut -d' ' -f1 "$work/results.$i" | median)
    cpu[i]=$(cut -d' ' -f2 "$work/results.$i" | median)
    rss[i]=$(cut -d' ' -f3 "$work/results.$i" | median)
    files[i]=$(tail -n 1 "$work/results.$i" | cut -d' ' -f4)
    mbytes[i]=$(tail -n 1 "$work/results.$i" | awk '{ printf "%.1f", $5 / 1e6 }')
  done

  echo
  echo "$title"
  printf '  %-27s %6s %8s %7s %7s %8s %8s %8s %8s %8s %8s\n' "" "" \
    "" "" "peak" "wall /" "wall /" "CPU /" "CPU /" "RSS /" "RSS /"
  printf '  %-27s %6s %8s %7s %7s %8s %8s %8s %8s %8s %8s\n' "pipeline" \
    "files" "wall s" "CPU s" "RSS MB" "filesink" "splitmux" "filesink" \
    "splitmux" "filesink" "splitmux"
  for ((i = 0; i < n; i++)); do
    awk -v name="${cases[i]%%|*}" -v files="${files[i]}" -v mb="${mbytes[i]}" \
      -v w="${wall[i]}" -v c="${cpu[i]}" -v m="${rss[i]}" \
      -v w1="${wall[1]}" -v c1="${cpu[1]}" -v m1="${rss[1]}" \
      -v w2="${wall[2]}" -v c2="${cpu[2]}" -v m2="${rss[2]}" 'BEGIN {
        printf "  %-27s %6s %8.3f %7.3f %7.1f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f\n",
          name, files, w, c, m / 1024, w / w1, w / w2, c / c1, c / c2,
          m / m1, m / m2 }'
    if [ -n "$results_file" ]; then
      echo "$key|${cases[i]%%|*}|${files[i]}|${wall[i]}|${cpu[i]}|${rss[i]}|${ir[i]}|${short_ir[i]}" \
        >> "$results_file"
    fi
  done
  if [ "$callgrind" = 1 ]; then
    awk -v a="${ir[2]}" -v b="${ir[3]}" -v sa="${short_ir[2]}" \
      -v sb="${short_ir[3]}" 'BEGIN {
      printf "  instructions (callgrind, 1 run): splitmuxsink %.0f M, element %.0f M, ratio %.3f\n",
        a / 1e6, b / 1e6, b / a
      printf "  2 s input (fixed cost): splitmuxsink %.0f M, element %.0f M; streaming only (input - 2 s input): ratio %.3f\n",
        sa / 1e6, sb / 1e6, (b - sb) / (a - sa) }'
  fi
}

echo "bench-segment: $(nproc) cores, $repeat runs of each pipeline (medians," \
  "interleaved), gst-launch-1.0 $pinned, outputs in $work"
echo "plugin: $GST_PLUGIN_PATH; segments of $segment_seconds s; the element's" \
  "uploads refused at 127.0.0.1:1 (max-retries=0, wait-on-eos=false)"
echo "files: media files the run left (the element: keep-files=true);" \
  "ratios are to the filesink and splitmuxsink rows"

if has_workload mp3; then
  bench_workload mp3 "MP3 -> MP3: $mp3_seconds s of 44.1 kHz stereo \
128 kbit/s, $(du -m "$mp3_input" | cut -f1) MB (filesrc ! mpegaudioparse)" \
    "$short_mp3_input" "$mp3_input" "${mp3_cases[@]}"
fi
if has_workload raw; then
  bench_workload raw "raw audio -> WAV: $audio_seconds s of 48 kHz stereo \
S16LE in 10 ms buffers (audiotestsrc wave=silence)" num-buffers=200 \
    "num-buffers=$audio_buffers" "${audio_cases[@]}"
fi
if has_workload h264; then
  bench_workload h264 "H.264 -> MP4: $video_seconds s of 640x360 30 fps, \
$(du -m "$video_input" | cut -f1) MB (filesrc ! qtdemux ! h264parse)" \
    "$short_video_input" "$video_input" "${video_cases[@]}"
fi
