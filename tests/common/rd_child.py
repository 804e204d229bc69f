"""What the Python tests share: a child's output read line by line on a
thread (so that every wait has a deadline, without sleeps), and the API
emulator program started on a free loopback port."""

import json
import os
import queue
import re
import subprocess
import threading
import time
import urllib.request

DEADLINE_S = 120


class Lines:
    """A child's output, line by line, read on a thread: waits have a
    deadline."""

    def __init__(self, stream, deadline_s=DEADLINE_S):
        self.deadline_s = deadline_s
        self.queue = queue.Queue()
        self.lines = []
        self.ended = False      # the end of the output was read
        self.thread = threading.Thread(target=self._read, args=(stream,),
                                       daemon=True)
        self.thread.start()

    def _read(self, stream):
        for line in stream:
            self.queue.put(line.rstrip("\n"))
        self.queue.put(None)

    def wait_for(self, pattern, timeout=None):
        """The first line from the next one on that matches @pattern, or
        None at the end of the output or after @timeout seconds in all
        (the deadline given at the start by default)."""
        if timeout is None:
            timeout = self.deadline_s
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.queue.get(
                    timeout=max(0, deadline - time.monotonic()))
            except queue.Empty:
                return None
            if line is None:
                self.ended = True
                self.queue.put(None)
                return None
            self.lines.append(line)
            if re.search(pattern, line):
                return line

    def rest(self, timeout=None):
        if timeout is None:
            timeout = self.deadline_s
        self.wait_for(r"(?!)", timeout)
        self.thread.join(timeout)
        return self.lines


class Emulator:
    """resemble-detect-emulator on --port 0; its URL is the first line it
    prints. @failure is the exception raised when it does not start."""

    def __init__(self, program, workdir, token, processing_ms,
                 failure=SystemExit):
        self.err = open(os.path.join(workdir, "emulator.err"), "w+")
        self.proc = subprocess.Popen(
            [program, "--port", "0", "--token", token,
             "--processing-ms", str(processing_ms)],
            stdout=subprocess.PIPE, stderr=self.err, text=True)
        self.out = Lines(self.proc.stdout)
        self.url = self.out.wait_for(r"^http://127\.0\.0\.1:\d+/api/v2$", 30)
        if self.url is None:
            self.stop()
            self.err.seek(0)
            raise failure("the emulator did not start:\n" + self.err.read())

    def stats(self):
        base = self.url[:-len("/api/v2")]
        with urllib.request.urlopen(base + "/__emulator/stats",
                                    timeout=30) as answer:
            return json.load(answer)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(30)
        self.err.close()
