#!/usr/bin/env python3
"""Runs a gst-launch recipe of docs/recipes.md against the API emulator.

  run-recipe.py --doc docs/recipes.md --emulator PROGRAM [--gst-launch PATH]
                [--child-preload LIBS] NAME
  run-recipe.py --doc docs/recipes.md --expect-names NAME...

A recipe is a fenced ```sh block of the page whose first line is
"# recipe: NAME" (with " (runs until Ctrl-C)" for a live one): comment lines,
then exactly one gst-launch-1.0 command (lines joined by backslashes). Any
other sh block of the page that runs gst-launch-1.0 is an error, so that no
command of the page goes untested. The command takes its site settings from
the environment, and this test sets them: API_URL (the emulator, started on a
free loopback port with --port 0; its first stdout line is its URL), SPOOL (a
temporary directory), VIDEO_FILE and STREAM_URI (media made here with
videotestsrc/audiotestsrc), RESEMBLE_API_TOKEN. The command runs with sh, as
a reader would paste it, its gst-launch-1.0 exec'd so that the signal goes to
it.

Checks: exit status 0; every batch closed (resemble-detect-batch-closed,
printed by -m) got exactly one resemble-detect-batch-done and none a
batch-error; one resemble-detect-result per file of those batches; the EOS
after the last verdict; the emulator created as many batches, uploaded in the
recipe's upload-mode. A live recipe gets SIGINT once its first batch is
done, as Ctrl-C would send it, and must then close the batch being filled
and end as above.

--expect-names checks that the recipes meson found in the page are the page's
recipes, in order.

Exit status 77 (skip) when an element is missing, unless
RD_TESTS_REQUIRE_ALL_ELEMENTS is set (then 1). No sleep stands for an event:
the waits are for lines the programs print, with a deadline.
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "common"))
from rd_child import Emulator, Lines  # noqa: E402

TOKEN = "recipes-token-0d93b1"
DEADLINE_S = 240

FENCE = re.compile(r"^```(\S*)\s*$")
MARKER = re.compile(
    r"^# recipe: ([a-z0-9][a-z0-9-]*)( \(runs until Ctrl-C\))?$")
MESSAGE = re.compile(r'^Got message #\d+ from element "[^"]+" \(element\): '
                     r"(resemble-detect-[a-z-]+), (.*)$")
NO_ELEMENT = re.compile(r'no element "([^"]+)"')

# Media for the recipes' input variables, made when a recipe uses them.
INPUTS = {
    # 30 s of H.264 video and AAC audio in MP4: a recorded programme
    "VIDEO_FILE": ("programme.mp4", lambda path: [
        "videotestsrc", "num-buffers=300", "pattern=ball", "!",
        "video/x-raw,width=320,height=240,framerate=10/1", "!",
        "x264enc", "speed-preset=ultrafast", "!", "h264parse", "!",
        "mp4mux", "name=mux", "!", "filesink", "location=" + path,
        "audiotestsrc", "num-buffers=1292", "!", "audioconvert", "!",
        "avenc_aac", "!", "mux."]),
    # 65 s of Vorbis audio in Ogg, given as a file:// URI: a radio stream
    "STREAM_URI": ("radio.ogg", lambda path: [
        "audiotestsrc", "num-buffers=2800", "wave=pink-noise", "!",
        "audioconvert", "!", "vorbisenc", "!", "oggmux", "!",
        "filesink", "location=" + path]),
}


class Failure(Exception):
    pass


class Skip(Exception):
    pass


def check(condition, what):
    if not condition:
        raise Failure(what)


class Recipe:
    def __init__(self, name, live, lines, line_no):
        self.name = name
        self.live = live
        self.lines = lines          # the block, marker line included
        self.line_no = line_no      # of the marker line

    @property
    def text(self):
        return "\n".join(self.lines) + "\n"

    def script(self):
        """The block with its gst-launch-1.0 exec'd by sh."""
        out = list(self.lines)
        for i, line in enumerate(out):
            if line.startswith("gst-launch-1.0 "):
                out[i] = "exec " + line
                break
        return "\n".join(out) + "\n"


def read_recipes(doc):
    """The recipes of @doc, in order; Failure when the page breaks the
    rules above."""
    recipes = []
    fence = None
    block = []
    start = 0
    with open(doc) as f:
        page = f.read().split("\n")
    for no, line in enumerate(page, 1):
        m = FENCE.match(line)
        if fence is None:
            if m:
                fence, block, start = m.group(1), [], no + 1
            continue
        if not line.startswith("```"):
            block.append(line)
            continue
        lang, fence = fence, None
        if lang != "sh":
            continue
        m = MARKER.match(block[0]) if block else None
        if m is None:
            check(not any("gst-launch-1.0" in b for b in block),
                  "%s:%d: an sh block runs gst-launch-1.0 without a "
                  "'# recipe: NAME' first line: it would not be tested"
                  % (doc, start))
            continue
        recipe = Recipe(m.group(1), m.group(2) is not None, block, start)
        check_recipe(doc, recipe)
        check(recipe.name not in [r.name for r in recipes],
              "%s:%d: a second recipe named %s" % (doc, start, recipe.name))
        recipes.append(recipe)
    check(fence is None, "%s: a fenced block is not closed" % doc)
    return recipes


def check_recipe(doc, recipe):
    where = "%s:%d (recipe %s)" % (doc, recipe.line_no, recipe.name)
    body = [line for line in recipe.lines[1:] if line.strip()]
    commands = [i for i, line in enumerate(body) if not line.startswith("#")]
    check(commands, where + ": no command")
    first = commands[0]
    check(body[first].startswith("gst-launch-1.0 "),
          where + ": the command is not gst-launch-1.0")
    # one command: every line after its first continues it
    for i in range(first + 1, len(body)):
        check(body[i - 1].endswith("\\"),
              where + ": more than one command (line %r)" % body[i])
    command = " ".join(body[first:])
    # -m prints the messages the test reads; -e makes Ctrl-C an EOS
    check(re.search(r"^gst-launch-1.0 (-\S+ )*-e ", command) and
          re.search(r"^gst-launch-1.0 (-\S+ )*-m ", command),
          where + ": gst-launch-1.0 needs -e and -m")
    # never the real service from a test
    check(command.count("resembledetectsink ") ==
          command.count('api-url="$API_URL"') and
          'api-url="$API_URL"' in command,
          where + ': each resembledetectsink needs api-url="$API_URL"')
    check(command.count("resembledetectsink ") ==
          command.count('location="$SPOOL/'),
          where + ': each resembledetectsink needs location="$SPOOL/..."')
    check("api-token" not in command,
          where + ": the token comes from RESEMBLE_API_TOKEN")


def missing_element(output):
    m = NO_ELEMENT.search(output)
    return m.group(1) if m else None


def scan_registry(gst_launch, env):
    """Under ASan (--child-preload), as tools/test does for the element
    tests: the registry's first scan, where some system plugins leak as
    they are loaded, in a run whose leaks are not checked; the recipe's own
    run then finds the registry made."""
    inspect = os.path.join(os.path.dirname(gst_launch), "gst-inspect-1.0")
    scan_env = dict(env, ASAN_OPTIONS=(env.get("ASAN_OPTIONS", "") +
                                       ":detect_leaks=0").lstrip(":"))
    subprocess.run([inspect, "resembledetectsink"], env=scan_env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=DEADLINE_S)


def make_inputs(recipe, gst_launch, env, workdir):
    made = {}
    for variable, (name, argv) in INPUTS.items():
        if "$" + variable not in recipe.text:
            continue
        path = os.path.join(workdir, name)
        run = subprocess.run([gst_launch, "-q"] + argv(path), env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, timeout=DEADLINE_S)
        element = missing_element(run.stdout)
        if element:
            raise Skip("no %s element to make %s" % (element, name))
        check(run.returncode == 0 and os.path.getsize(path) > 0,
              "making %s failed (%d):\n%s" % (name, run.returncode,
                                              run.stdout))
        made[variable] = ("file://" + path if variable.endswith("_URI")
                          else path)
    return made


def fields(text):
    """index, total-files and files of a batch message; file of a result."""
    out = {}
    for key in ("index", "total-files"):
        m = re.search(r"(?:^|, )%s=\(uint\)(\d+)" % key, text)
        if m:
            out[key] = int(m.group(1))
    m = re.search(r"(?:^|, )files=\(string\)< (.*?) >", text)
    if m:
        out["files"] = [f.strip().strip('"') for f in m.group(1).split(", ")]
    m = re.search(r"(?:^|, )file=\(string\)([^,;\"]+)", text)
    if m:
        out["file"] = m.group(1)
    return out


def check_output(recipe, lines, status, interrupted_at, stats):
    closed = {}     # index -> files
    done = []
    results = []
    last_done_line = -1
    eos_line = None
    closed_after_interrupt = 0
    for no, line in enumerate(lines):
        check(not line.startswith("ERROR:"), "an error: %s" % line)
        if line.startswith('Got EOS from element "pipeline0"'):
            eos_line = no
        m = MESSAGE.match(line)
        if not m:
            continue
        name, f = m.group(1), fields(m.group(2))
        check(name != "resemble-detect-batch-error",
              "a batch failed: %s" % line[:400])
        if name == "resemble-detect-batch-closed":
            check(f.get("index") not in closed and
                  len(f.get("files", [])) == f.get("total-files"),
                  "a batch-closed message of an unexpected form: %s"
                  % line[:400])
            closed[f["index"]] = f["files"]
            if interrupted_at is not None and no > interrupted_at:
                closed_after_interrupt += 1
        elif name == "resemble-detect-batch-done":
            check(re.search(r"(?:^|, )status=\(string\)completed,",
                            m.group(2)),
                  "a batch not completed: %s" % line[:400])
            done.append(f.get("index"))
            last_done_line = no
        elif name == "resemble-detect-result":
            check("file" in f, "a result without file: %s" % line[:400])
            results.append(f["file"])

    check(status == 0, "gst-launch-1.0 exit status %d" % status)
    check(closed, "no batch was closed")
    check(sorted(done) == sorted(closed),
          "batches closed %s, done %s" % (sorted(closed), sorted(done)))
    files = [path for batch in closed.values() for path in batch]
    check(sorted(results) == sorted(files),
          "%d verdicts for %d files" % (len(results), len(files)))
    check(eos_line is not None and eos_line > last_done_line,
          "gst-launch-1.0 did not get the EOS after the last batch-done")
    if interrupted_at is not None:
        check(closed_after_interrupt >= 1,
              "no batch closed after SIGINT (the segment being written)")
    mode = "zip" if "upload-mode=zip" in recipe.text else "files"
    check(stats["batches_created"] == len(closed),
          "the emulator created %d batches, %d were closed"
          % (stats["batches_created"], len(closed)))
    modes = {b["upload_mode"] for b in stats["batches"]}
    check(modes == {mode}, "uploaded as %s, expected %s" % (modes, mode))
    return len(closed), len(files)


def run_recipe(args, recipe, workdir):
    gst_launch = args.gst_launch or shutil.which("gst-launch-1.0")
    check(gst_launch, "no gst-launch-1.0")
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(gst_launch) + os.pathsep + env["PATH"]
    if args.child_preload:
        env["LD_PRELOAD"] = args.child_preload
        scan_registry(gst_launch, env)
    made = make_inputs(recipe, gst_launch, env, workdir)

    emulator = Emulator(args.emulator, workdir, TOKEN, 200, Failure)
    try:
        env.update(made)
        env.update(API_URL=emulator.url, SPOOL=os.path.join(workdir, "spool"),
                   RESEMBLE_API_TOKEN=TOKEN)
        print("recipe %s, line %d of %s, with" % (recipe.name,
                                                  recipe.line_no, args.doc))
        for key in ["API_URL", "SPOOL"] + sorted(made):
            print("  %s=%s" % (key, env[key]))
        print(recipe.script(), flush=True)
        proc = subprocess.Popen(["sh", "-c", recipe.script()], env=env,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        out = Lines(proc.stdout, DEADLINE_S)
        interrupted_at = None
        try:
            if recipe.live:
                line = out.wait_for(r"^Got message .*: "
                                    r"resemble-detect-batch-done, ")
                check(line is not None, "no batch done before the end or "
                      "the deadline")
                # Ctrl-C, to gst-launch-1.0 (sh exec'd it: proc is it)
                with open("/proc/%d/comm" % proc.pid) as comm:
                    check(comm.read().strip() == "gst-launch-1.0",
                          "the recipe's process is not gst-launch-1.0")
                proc.send_signal(signal.SIGINT)
                interrupted_at = len(out.lines)
            lines = out.rest()
            check(out.ended, "the output did not end within %d s:\n%s"
                  % (DEADLINE_S, "\n".join(lines)))
            status = proc.wait(DEADLINE_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        text = "\n".join(lines)
        try:
            element = missing_element(text)
            if element:
                raise Skip("no %s element" % element)
            check(TOKEN not in text, "the token was printed")
            batches, files = check_output(recipe, lines, status,
                                          interrupted_at, emulator.stats())
        except Failure:
            print(text)
            raise
        # gst-launch-1.0's own lines and the batch messages, shortened
        print("\n".join(line[:160] for line in lines
                         if " (element): resemble-detect-batch-" in line or
                         not line.startswith(("Got message", "Progress:"))))
        print("%s: exit status 0, %d batches done, %d verdicts%s"
              % (recipe.name, batches, files,
                 ", SIGINT after the first batch" if recipe.live else ""))
    finally:
        emulator.stop()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--doc", required=True)
    p.add_argument("--emulator")
    p.add_argument("--gst-launch")
    p.add_argument("--child-preload")
    p.add_argument("--expect-names", nargs="*")
    p.add_argument("name", nargs="?")
    args = p.parse_args()

    try:
        recipes = read_recipes(args.doc)
        if args.expect_names is not None:
            names = [r.name for r in recipes]
            check(names == args.expect_names,
                  "the page has the recipes %s, meson knows %s: reconfigure"
                  % (names, args.expect_names))
            print("recipes: " + ", ".join(names))
            return 0
        check(args.emulator and args.name, "--emulator and NAME are needed")
        by_name = {r.name: r for r in recipes}
        check(args.name in by_name, "%s has no recipe %s (it has %s)"
              % (args.doc, args.name, ", ".join(by_name)))
        with tempfile.TemporaryDirectory(prefix="rd-recipe-") as workdir:
            run_recipe(args, by_name[args.name], workdir)
    except Skip as e:
        if os.environ.get("RD_TESTS_REQUIRE_ALL_ELEMENTS"):
            print("FAIL: %s" % e)
            return 1
        print("SKIP: %s" % e)
        return 77
    except (Failure, subprocess.TimeoutExpired) as e:
        print("FAIL: %s" % e)
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
