#!/usr/bin/env python3
"""Runs examples/detect.py against the API emulator and checks what it prints.

  test-detect.py --emulator PROGRAM --detect examples/detect.py CASE

CASE is one of:
  pipeline   a gst-launch description (audiotestsrc segments + JPEG snapshots)
  uri        a file given by name: the default pipeline (its audio in
             segments, its video as snapshots)
  interrupt  live sources; SIGINT once the first batch is done: detect.py
             sends EOS, prints the last verdicts and exits 0
  bad-token  the emulator refuses the token: exit status 1, an error line

Every case checks that detect.py never prints the token. The emulator runs on
a free loopback port (--port 0; its first stdout line is its URL). No sleep
stands for an event: the waits are for lines the programs print, with a
deadline. Exit status 77 (skip) when this Python has no PyGObject/GStreamer
introspection, unless RD_TESTS_REQUIRE_ALL_ELEMENTS is set (then 1).
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "common"))
from rd_child import Emulator, Lines  # noqa: E402

TOKEN = "py-example-token-5e0c2a"
DEADLINE_S = 120

VERDICT = re.compile(
    r"^verdict (\d+:\d\d:\d\d\.\d{3}) \+(\d+:\d\d:\d\d\.\d{3})\s+(\S+)\s+(\S+)"
    r"\s+label=(.+?)\s+score=(-?\d+\.\d{3})( \(emulated\))?\s+(/\S+)$")
CLOSED = re.compile(r"^batch (\d+) closed: (\d+) files, \d+ bytes$")
DONE = re.compile(r"^batch (\d+) done: (\S+), (\d+) of (\d+) completed, "
                  r"(\d+) failed, (\d+) verdicts$")


def have_pygobject():
    try:
        import gi

        gi.require_version("Gst", "1.0")
        gi.require_version("GstPbutils", "1.0")
        from gi.repository import Gst, GstPbutils

        del Gst, GstPbutils
    except (ImportError, ValueError) as e:
        return str(e)
    return None


class Failure(Exception):
    pass


def check(condition, what):
    if not condition:
        raise Failure(what)


def run_detect(args, emulator, workdir, detect_args, token=TOKEN,
               interrupt_after=None):
    """Runs detect.py; with @interrupt_after (a pattern), sends SIGINT when
    a stdout line matches it. Returns (status, stdout lines, stderr)."""
    env = dict(os.environ, RESEMBLE_API_TOKEN=token)
    argv = [sys.executable, args.detect, "--api-url", emulator.url,
            "--location", os.path.join(workdir, "spool"),
            "--set", "poll-interval=1000000000"] + detect_args
    print("$ RESEMBLE_API_TOKEN=... " + " ".join(argv), flush=True)
    err_path = os.path.join(workdir, "detect.err")
    with open(err_path, "w+") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err,
                                text=True, env=env)
        out = Lines(proc.stdout, DEADLINE_S)
        try:
            if interrupt_after is not None:
                line = out.wait_for(interrupt_after)
                check(line is not None,
                      "no line matching %r before the end or the deadline"
                      % interrupt_after)
                proc.send_signal(signal.SIGINT)
            lines = out.rest()
            check(out.ended, "the output did not end within %d s:\n%s"
                  % (DEADLINE_S, "\n".join(lines)))
            status = proc.wait(DEADLINE_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        err.seek(0)
        stderr = err.read()
    print("\n".join(lines))
    if stderr:
        print("stderr:\n" + stderr, end="")
    print("exit status %d" % status, flush=True)
    check(token not in "\n".join(lines) + stderr,
          "detect.py printed the token")
    return status, lines, stderr


def check_verdicts(lines, min_files, media_types):
    """Every closed batch ended done; one verdict line per file, each with a
    label and a score; the last line is the EOS line."""
    closed = {}
    done = {}
    verdicts = []
    for line in lines:
        m = CLOSED.match(line)
        if m:
            closed[int(m.group(1))] = int(m.group(2))
        m = DONE.match(line)
        if m:
            done[int(m.group(1))] = m
        if line.startswith("verdict"):
            m = VERDICT.match(line)
            check(m is not None, "a verdict line of an unexpected form: %r"
                  % line)
            verdicts.append(m)
    files = sum(closed.values())
    check(files >= min_files, "%d files in the closed batches, expected at "
          "least %d" % (files, min_files))
    check(sorted(done) == sorted(closed),
          "batches closed %s, done %s" % (sorted(closed), sorted(done)))
    for index, m in done.items():
        check(m.group(2) == "completed" and int(m.group(4)) == closed[index]
              and int(m.group(3)) == closed[index]
              and int(m.group(6)) == closed[index],
              "batch %d: %r" % (index, m.group(0)))
    check(len(verdicts) == files,
          "%d verdict lines for %d files" % (len(verdicts), files))
    check(len({v.group(8) for v in verdicts}) == files,
          "a file has two verdict lines")
    for v in verdicts:
        check(v.group(4) == "completed" and v.group(5).strip() != "-",
              "no label: %r" % v.group(0))
        score = float(v.group(6))
        check(0.0 <= score <= 1.0, "score out of 0..1: %r" % v.group(0))
        check(v.group(7) is not None, "not marked emulated: %r" % v.group(0))
    seen = {v.group(3) for v in verdicts}
    check(seen == set(media_types), "media types %s, expected %s"
          % (sorted(seen), sorted(media_types)))
    check(lines and lines[-1] == "EOS: every batch has ended",
          "the last line is not the EOS line")
    return files


def case_pipeline(args, emulator, workdir):
    status, lines, _ = run_detect(args, emulator, workdir, [
        "--segment-duration", "1", "--max-files", "3", "-p",
        "audiotestsrc num-buffers=25 samplesperbuffer=1600 ! "
        "audio/x-raw,rate=16000,channels=1 ! sink.audio_0 "
        "videotestsrc num-buffers=3 ! "
        "video/x-raw,width=64,height=48,framerate=1/1 ! jpegenc ! "
        "sink.image_0 resembledetectsink name=sink"])
    check(status == 0, "exit status %d" % status)
    # 2.5 s of audio in 1 s segments, three snapshots
    files = check_verdicts(lines, 6, ["audio", "image"])
    check(files == 6, "%d files, expected 6" % files)


def make_input(path):
    """4 s of Theora video and Vorbis audio in Ogg, made with GStreamer."""
    from gi.repository import Gst

    Gst.init(None)
    pipeline = Gst.parse_launch(
        "videotestsrc num-buffers=40 pattern=ball ! "
        "video/x-raw,width=160,height=120,framerate=10/1 ! theoraenc ! "
        "oggmux name=mux ! filesink location=\"%s\" "
        "audiotestsrc num-buffers=172 ! audioconvert ! vorbisenc ! mux."
        % path)
    pipeline.set_state(Gst.State.PLAYING)
    msg = pipeline.get_bus().timed_pop_filtered(
        DEADLINE_S * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    if msg is None:
        raise Failure("could not make the input in %d s" % DEADLINE_S)
    if msg.type == Gst.MessageType.ERROR:
        raise Failure("could not make the input: %s"
                      % msg.parse_error()[0].message)


def case_uri(args, emulator, workdir):
    media = os.path.join(workdir, "input.ogg")
    make_input(media)
    status, lines, _ = run_detect(args, emulator, workdir, [
        "--segment-duration", "2", "--snapshot-interval", "1",
        "--max-files", "4", media])
    check(status == 0, "exit status %d" % status)
    # 4 s: two audio segments and four snapshots, at least
    check_verdicts(lines, 6, ["audio", "image"])


def case_interrupt(args, emulator, workdir):
    status, lines, stderr = run_detect(args, emulator, workdir, [
        "--segment-duration", "1", "--max-files", "2", "-p",
        "audiotestsrc is-live=true samplesperbuffer=1600 ! "
        "audio/x-raw,rate=16000,channels=1 ! sink.audio_0 "
        "videotestsrc is-live=true ! "
        "video/x-raw,width=64,height=48,framerate=2/1 ! jpegenc ! "
        "sink.image_0 resembledetectsink name=sink"],
        interrupt_after=r"^batch \d+ done: ")
    check(status == 0, "exit status %d after SIGINT" % status)
    check("interrupt: sending EOS" in stderr, "no interrupt line on stderr")
    check_verdicts(lines, 2, ["audio", "image"])


def case_bad_token(args, emulator, workdir):
    status, lines, stderr = run_detect(args, emulator, workdir, [
        "--max-files", "2", "-p",
        "videotestsrc num-buffers=2 ! "
        "video/x-raw,width=64,height=48,framerate=1/1 ! jpegenc ! "
        "resembledetectsink"], token="not-" + TOKEN[::-1])
    check(status == 1, "exit status %d, expected 1" % status)
    check(re.search(r"^batch 1 error \(HTTP 401\): ", "\n".join(lines), re.M),
          "no batch error line")
    check(re.search(r"^error from \S+: The API refused the token", stderr,
                    re.M), "no error line")


CASES = {
    "pipeline": case_pipeline,
    "uri": case_uri,
    "interrupt": case_interrupt,
    "bad-token": case_bad_token,
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--emulator", required=True)
    p.add_argument("--detect", required=True)
    p.add_argument("case", choices=sorted(CASES))
    args = p.parse_args()

    missing = have_pygobject()
    if missing:
        strict = bool(os.environ.get("RD_TESTS_REQUIRE_ALL_ELEMENTS"))
        print("%s: %s has no PyGObject for GStreamer (python3-gi, "
              "gir1.2-gstreamer-1.0, gir1.2-gst-plugins-base-1.0): %s"
              % ("FAIL" if strict else "SKIP", sys.executable, missing))
        return 1 if strict else 77

    with tempfile.TemporaryDirectory(prefix="rd-detect-py-") as workdir:
        emulator = Emulator(args.emulator, workdir, TOKEN, 100)
        try:
            CASES[args.case](args, emulator, workdir)
        except Failure as e:
            print("FAIL: %s" % e)
            return 1
        finally:
            emulator.stop()
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
