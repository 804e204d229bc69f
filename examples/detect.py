#!/usr/bin/env python3
"""detect.py: runs a pipeline holding a resembledetectsink and prints what
the element says on the bus, one line per batch event and per file verdict
(the Python twin of print-verdicts.c, with PyGObject).

Uninstalled, from the source tree (Debian: apt-get install python3-gi
gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0):

  export RESEMBLE_API_TOKEN=...      # the only way to give the token
  GST_PLUGIN_PATH=build/gst python3 examples/detect.py talk.ogg
  GST_PLUGIN_PATH=build/gst python3 examples/detect.py --api-url URL \\
      -p 'audiotestsrc num-buffers=300 ! audioconvert ! resembledetectsink'

(python3 being the interpreter python3-gi is installed for: Debian's
/usr/bin/python3, not a venv's or pyenv's without PyGObject.)

A file or URI gets a default pipeline: its audio in --segment-duration
segments (WAV, 16 kHz mono), its video as a JPEG snapshot every
--snapshot-interval seconds. -p takes a gst-launch-1.0 description instead
(it must hold a resembledetectsink). --api-url, --location,
--segment-duration, --max-files and --set apply to every resembledetectsink
of the pipeline and override what a description says.

Ctrl-C (or SIGTERM) sends EOS: the open batch is closed and submitted, and
the program waits for every verdict (wait-on-eos); a second one stops at
once (unfinished batches stay in the spool for the next run).

Verdict lines come from the resemble-detect-result message posted for each
file; the same verdicts inside resemble-detect-batch-done's "results" are
only counted (see array_field() for reading such arrays from Python).

Exit status: 0 when the pipeline ended (EOS) and every closed batch ended in
resemble-detect-batch-done; 1 on an error message, or when a batch ended in
resemble-detect-batch-error; 2 for bad usage (arguments, pipeline, missing
plugin, token or PyGObject); 130 after a second Ctrl-C.
"""
import argparse
import os
import signal
import sys
import warnings

try:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstPbutils", "1.0")
    from gi.repository import GLib, Gst, GstPbutils
except (ImportError, ValueError) as e:
    print("detect.py needs PyGObject and GStreamer's introspection data "
          "(Debian: apt-get install python3-gi gir1.2-gstreamer-1.0 "
          "gir1.2-gst-plugins-base-1.0): %s" % e, file=sys.stderr)
    sys.exit(2)

SINK = "resembledetectsink"
TOKEN_ENV = "RESEMBLE_API_TOKEN"


def format_time(ns):
    """h:mm:ss.mmm of a GstClockTime, like GST_TIME_FORMAT (shorter)."""
    if ns is None or ns == Gst.CLOCK_TIME_NONE:
        return "-:--:--.---"
    ms = ns // Gst.MSECOND
    return "%d:%02d:%02d.%03d" % (
        ms // 3600000,
        ms // 60000 % 60,
        ms // 1000 % 60,
        ms % 1000,
    )


def field(s, name, getter):
    """A field read with a typed getter (get_uint, get_double, ...), or None
    when the structure does not have it with that type."""
    ok, value = getattr(s, getter)(name)
    return value if ok else None


def array_field(s, name):
    """The elements of a GstValueArray field, as a list (None when absent).

    s.get_value() raises "unknown type GstValueArray" with PyGObject 3.42 and
    GStreamer 1.22 unless gst-python's overrides are installed; the deprecated
    GValueArray getter works everywhere, so it is the fallback."""
    if not s.has_field(name):
        return None
    try:
        value = s.get_value(name)
        if isinstance(value, (list, tuple)):
            return list(value)
        if hasattr(value, "array"):  # gst-python's Gst.ValueArray override
            return list(value.array)
    except TypeError:
        pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ok, array = s.get_array(name)
        if not ok or array is None:
            return None
        return [array.get_nth(i) for i in range(array.n_values)]


class Detect:
    def __init__(self, pipeline):
        self.pipeline = pipeline
        self.loop = GLib.MainLoop()
        self.status = 0
        self.interrupted = False
        self.open_batches = set()  # closed, no done/error message yet
        self.failed_batches = 0

    # one line per batch event and per verdict, on stdout
    def on_element(self, s):
        name = s.get_name()
        if not name.startswith("resemble-detect-"):
            return
        index = field(s, "index", "get_uint")
        total = field(s, "total-files", "get_uint")
        completed = field(s, "completed-count", "get_uint")
        failed = field(s, "failed-count", "get_uint")
        if name == "resemble-detect-batch-closed":
            self.open_batches.add(index)
            print(
                "batch %u closed: %u files, %u bytes"
                % (index, total, field(s, "total-bytes", "get_uint64") or 0)
            )
        elif name == "resemble-detect-batch-submitted":
            print("batch %u submitted: uuid %s"
                  % (index, s.get_string("uuid")))
        elif name == "resemble-detect-batch-status":
            print(
                "batch %u %s: %u completed, %u failed"
                % (index, s.get_string("status"), completed, failed)
            )
        elif name == "resemble-detect-result":
            self.print_result(s)
        elif name == "resemble-detect-batch-done":
            self.open_batches.discard(index)
            results = array_field(s, "results") or []
            print(
                "batch %u done: %s, %u of %u completed, %u failed, %u verdicts"
                % (index, s.get_string("status"), completed, total, failed,
                   len(results))
            )
        elif name == "resemble-detect-batch-error":
            self.open_batches.discard(index)
            self.failed_batches += 1
            http = field(s, "http-status", "get_uint") or 0
            print(
                "batch %u error (HTTP %u): %s"
                % (index, http, s.get_string("reason"))
            )
        elif name == "resemble-detect-spool-full":
            print(
                "spool full: %u bytes skipped from %s to %s"
                % (
                    field(s, "skipped-bytes", "get_uint64") or 0,
                    format_time(field(s, "skipped-from", "get_uint64")),
                    format_time(field(s, "skipped-to", "get_uint64")),
                )
            )
        else:
            print(s.to_string())

    @staticmethod
    def print_result(s):
        score = field(s, "score", "get_double")
        emulated = field(s, "emulated", "get_boolean")
        print(
            "verdict %s +%s  %-5s %-9s label=%-12s score=%.3f%s  %s"
            % (
                format_time(field(s, "running-time", "get_uint64")),
                format_time(field(s, "duration", "get_uint64")),
                s.get_string("media-type") or "?",
                s.get_string("status") or "?",
                s.get_string("label") or "-",
                -1.0 if score is None else score,
                " (emulated)" if emulated else "",
                s.get_string("file") or "",
            )
        )

    def on_message(self, bus, msg):
        t = msg.type
        if t == Gst.MessageType.ELEMENT and msg.get_structure() is not None:
            self.on_element(msg.get_structure())
        elif t == Gst.MessageType.ERROR:
            error, _debug = msg.parse_error()
            print("error from %s: %s" % (msg.src.get_name(), error.message),
                  file=sys.stderr)
            self.status = 1
            self.loop.quit()
        elif t == Gst.MessageType.WARNING:
            warning, _debug = msg.parse_warning()
            print("warning from %s: %s" % (msg.src.get_name(),
                                           warning.message), file=sys.stderr)
        elif t == Gst.MessageType.INFO:
            info, _debug = msg.parse_info()
            print("info from %s: %s" % (msg.src.get_name(), info.message),
                  file=sys.stderr)
        elif t == Gst.MessageType.EOS:
            print("EOS: every batch has ended")
            self.loop.quit()
        return True

    def on_sigint(self):
        if self.interrupted:
            print("interrupted again: stopping now", file=sys.stderr)
            self.status = 130
            self.loop.quit()
            return GLib.SOURCE_CONTINUE
        self.interrupted = True
        print(
            "interrupt: sending EOS, waiting for the last verdicts "
            "(Ctrl-C again to stop now)",
            file=sys.stderr,
        )
        self.pipeline.send_event(Gst.Event.new_eos())
        return GLib.SOURCE_CONTINUE

    def run(self):
        bus = self.pipeline.get_bus()
        bus.add_watch(GLib.PRIORITY_DEFAULT, self.on_message)
        sources = [
            GLib.unix_signal_add(GLib.PRIORITY_HIGH, sig, self.on_sigint)
            for sig in (signal.SIGINT, signal.SIGTERM)
        ]
        if self.pipeline.set_state(Gst.State.PLAYING) == \
                Gst.StateChangeReturn.FAILURE:
            # the reason is an error message, already on the bus
            msg = bus.pop_filtered(Gst.MessageType.ERROR)
            if msg is not None:
                self.on_message(bus, msg)
            else:
                print("the pipeline refused to start", file=sys.stderr)
            self.status = 1
        else:
            self.loop.run()
        self.pipeline.set_state(Gst.State.NULL)
        bus.remove_watch()
        for source in sources:
            GLib.source_remove(source)
        if self.status == 0 and self.failed_batches:
            print("%u batch(es) failed" % self.failed_batches, file=sys.stderr)
            self.status = 1
        return self.status


def default_description(uri, args):
    """A pipeline for a file or URI: what it holds decides the branches."""
    try:
        info = GstPbutils.Discoverer.new(30 * Gst.SECOND).discover_uri(uri)
    except GLib.Error as e:
        raise SystemExit("detect.py: cannot read %s: %s" % (uri, e.message))
    has_audio = bool(info.get_audio_streams())
    has_video = any(not v.is_image() for v in info.get_video_streams())
    if not (has_audio or has_video):
        raise SystemExit("detect.py: %s has neither audio nor video" % uri)
    parts = ['uridecodebin uri="%s" name=dec' % uri]
    if has_audio:
        parts.append("dec. ! audio/x-raw ! queue ! audioconvert ! "
                     "audioresample ! audio/x-raw,rate=16000,channels=1 ! "
                     "sink.audio_0")
    if has_video:
        rate = Gst.util_double_to_fraction(1.0 / args.snapshot_interval)
        parts.append("dec. ! video/x-raw ! queue ! videorate ! "
                     "video/x-raw,framerate=%d/%d ! videoconvert ! jpegenc ! "
                     "sink.image_0" % tuple(rate))
    parts.append("%s name=sink" % SINK)
    return " ".join(parts)


def sinks_of(pipeline):
    if isinstance(pipeline, Gst.Bin):
        elements = []
        it = pipeline.iterate_recurse()
        while True:
            res, element = it.next()
            if res == Gst.IteratorResult.RESYNC:
                it.resync()
                elements = []
                continue
            if res != Gst.IteratorResult.OK:
                break
            elements.append(element)
    else:
        elements = [pipeline]
    return [e for e in elements
            if e.get_factory() and e.get_factory().get_name() == SINK]


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Run a pipeline holding a resembledetectsink and print "
        "every batch event and verdict. The API token comes from "
        "$%s only." % TOKEN_ENV,
        epilog="Exit status: 0 every batch done, 1 error or failed batch, "
        "2 bad usage, 130 second Ctrl-C.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("input", nargs="?",
                     help="a media file or URI: audio in segments, video as "
                     "JPEG snapshots")
    src.add_argument("-p", "--pipeline", metavar="DESCRIPTION",
                     help="a gst-launch-1.0 description holding a %s" % SINK)
    p.add_argument("--api-url", metavar="URL",
                   help="base URL of the API (default: the element's, the "
                   "production service)")
    p.add_argument("--location", metavar="DIR",
                   help="spool directory (default: the element's)")
    p.add_argument("--segment-duration", type=float, metavar="SECONDS",
                   help="length of each audio/video segment (default 10)")
    p.add_argument("--max-files", type=int, metavar="N",
                   help="files per batch, 1..50 (default 10)")
    p.add_argument("--snapshot-interval", type=float, default=5.0,
                   metavar="SECONDS",
                   help="a snapshot of the input's video every SECONDS "
                   "(default 5; file/URI input only)")
    p.add_argument("--set", action="append", default=[],
                   metavar="PROPERTY=VALUE",
                   help="any other property of the sink, as gst-launch "
                   "writes it (repeatable)")
    args = p.parse_args(argv)
    if args.snapshot_interval <= 0:
        p.error("--snapshot-interval must be positive")
    if args.segment_duration is not None and args.segment_duration <= 0:
        p.error("--segment-duration must be positive")
    if args.max_files is not None and not 1 <= args.max_files <= 50:
        p.error("--max-files must be within 1..50")
    for item in args.set:
        if "=" not in item:
            p.error("--set takes PROPERTY=VALUE, not %r" % item)
    # the token never goes on a command line (ps shows it)
    token_given = any(i.split("=", 1)[0].strip() == "api-token"
                      for i in args.set)
    if token_given or (args.pipeline and "api-token" in args.pipeline):
        p.error("give the token in $%s, not on the command line" % TOKEN_ENV)
    return args


def main(argv):
    sys.stdout.reconfigure(line_buffering=True)
    args = parse_args(argv)
    Gst.init(None)
    if Gst.ElementFactory.find(SINK) is None:
        print("detect.py: no %s element: build the plugin and set "
              "GST_PLUGIN_PATH=build/gst" % SINK, file=sys.stderr)
        return 2
    if not os.environ.get(TOKEN_ENV):
        print("detect.py: set %s to the API token" % TOKEN_ENV,
              file=sys.stderr)
        return 2

    if args.pipeline:
        description = args.pipeline
    else:
        uri = args.input
        if not Gst.uri_is_valid(uri):
            uri = Gst.filename_to_uri(os.path.abspath(uri))
        description = default_description(uri, args)
    try:
        pipeline = Gst.parse_launch(description)
    except GLib.Error as e:
        print("detect.py: bad pipeline: %s" % e.message, file=sys.stderr)
        return 2
    if not isinstance(pipeline, Gst.Pipeline):
        top = Gst.Pipeline.new(None)
        top.add(pipeline)
        pipeline = top

    sinks = sinks_of(pipeline)
    if not sinks:
        print("detect.py: the pipeline has no %s" % SINK, file=sys.stderr)
        return 2
    settings = []
    if args.api_url:
        settings.append(("api-url", args.api_url))
    if args.location:
        settings.append(("location", args.location))
    if args.segment_duration is not None:
        settings.append(("segment-duration",
                         str(int(args.segment_duration * Gst.SECOND))))
    if args.max_files is not None:
        settings.append(("max-files", str(args.max_files)))
    settings += [tuple(i.split("=", 1)) for i in args.set]
    for sink in sinks:
        for name, value in settings:
            name = name.strip()
            if sink.find_property(name) is None:
                print("detect.py: %s has no property %r" % (SINK, name),
                      file=sys.stderr)
                return 2
            Gst.util_set_object_arg(sink, name, value)

    return Detect(pipeline).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
