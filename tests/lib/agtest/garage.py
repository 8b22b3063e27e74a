"""The Garage side of the daemon tests: a garage-emu on free ports and
aerogramd processes on the garage driver pointing at it. Every process
started here is stopped by its PID (or by Server.stop, which does the same)."""
import binascii
import json
import os
import re
import select
import subprocess
import sys
import tempfile
import time
import urllib.request

from agtest.daemon import ROOT, Server, stop_process

B = os.environ.get("B", "build")
EMU = os.path.join(ROOT, "tests", "garage-emu", "garage-emu")
GARAGE_DRIVER = os.path.abspath(os.path.join(ROOT, B, "drivers", "aerogram_garage.so"))

# Generous: the CI machine has 2 cores and the sanitizers slow everything down.
WAIT = 60


class Emu:
    """One garage-emu process with a fresh bucket and key."""

    def __init__(self, *options):
        self.bucket = "agtest-" + binascii.hexlify(os.urandom(4)).decode()
        self.key_id = "GK" + binascii.hexlify(os.urandom(12)).decode()
        self.secret = binascii.hexlify(os.urandom(32)).decode()
        self.errfile = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, EMU, "--k2v-port", "0", "--s3-port", "0", "--bucket", self.bucket,
             "--key-id", self.key_id, "--secret", self.secret]
            + os.environ.get("GARAGE_EMU_ARGS", "").split() + list(options),
            stdout=subprocess.PIPE, stderr=self.errfile)
        ready, _, _ = select.select([self.proc.stdout], [], [], WAIT)
        line = self.proc.stdout.readline().decode() if ready else ""
        m = re.match(r"ready k2v=(\d+) s3=(\d+)", line)
        if not m:
            self.stop()
            raise RuntimeError("garage-emu did not start: %r" % line)
        self.k2v = "http://127.0.0.1:%s" % m.group(1)
        self.s3 = "http://127.0.0.1:%s" % m.group(2)

    def storage(self):
        """The [storage] lines of an aerogram.conf that uses this emulator."""
        return ["k2v_endpoint = " + self.k2v, "s3_endpoint = " + self.s3, "bucket = " + self.bucket,
                "access_key_id = " + self.key_id, "secret_access_key = " + self.secret]

    def stats(self):
        with urllib.request.urlopen(self.k2v + "/_emu/stats", timeout=WAIT) as r:
            return json.load(r)

    def reset_stats(self):
        req = urllib.request.Request(self.k2v + "/_emu/reset-stats", method="POST")
        with urllib.request.urlopen(req, timeout=WAIT):
            pass

    def wait_polls(self, n):
        """Waits until at least n PollItems are parked in the emulator."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if self.stats()["waiting"]["PollItem"] >= n:
                return
            time.sleep(0.02)
        raise AssertionError("fewer than %d PollItem waiting after %d s" % (n, WAIT))

    def stop(self):
        stop_process(self.proc, WAIT)
        self.proc.stdout.close()
        self.errfile.close()


def daemon(emu, users):
    """An aerogramd on the garage driver, cleartext only."""
    return Server(users, tls=False, driver=GARAGE_DRIVER, storage=emu.storage())
