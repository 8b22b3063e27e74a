"""Shared pieces of the Garage daemon tests: a garage-emu on free ports, real
aerogramd processes on the garage driver pointing at it, and a small IMAP
client. Standard library only; every process started here is stopped by its
PID (or by the fixture's Server.stop, which does the same)."""
import binascii
import json
import os
import re
import select
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "server"))

from aerogramd_fixture import Server  # noqa: E402

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
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.errfile.close()


def daemon(emu, users):
    """An aerogramd on the garage driver, cleartext only."""
    return Server(users, tls=False, driver=GARAGE_DRIVER, storage=emu.storage())


class Imap:
    """A line-level IMAP client that understands literals in answers."""

    def __init__(self, port, user=None, password="pw"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.buf = b""
        self.n = 0
        self.line()  # greeting
        if user:
            self.ok("LOGIN %s %s" % (user, password))

    def line(self, timeout=WAIT):
        self.sock.settimeout(timeout)
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; pending %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_bytes(self, n):
        self.sock.settimeout(WAIT)
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed in a literal")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self):
        """One response: (line with literals replaced by {n}, [literal bytes])."""
        line = self.line()
        lits = []
        while True:
            m = re.search(rb"\{(\d+)\}$", line)
            if not m:
                return line, lits
            lits.append(self.read_bytes(int(m.group(1))))
            line += b"\x00" + self.line()

    def send(self, data):
        self.sock.sendall(data)

    def command(self, text, literal=None):
        """Sends a command (with one literal if given); returns (untagged, tagged line)."""
        self.n += 1
        tag = b"t%d" % self.n
        if literal is None:
            self.send(tag + b" " + text.encode() + b"\r\n")
        else:
            self.send(tag + b" " + text.encode() + b" {%d}\r\n" % len(literal))
            line = self.line()
            if not line.startswith(b"+"):
                raise AssertionError("no continuation for %s: %r" % (text, line))
            self.send(literal + b"\r\n")
        untagged = []
        while True:
            line, lits = self.response()
            if line.startswith(tag + b" "):
                return untagged, line
            untagged.append((line, lits))

    def ok(self, text, literal=None):
        untagged, tagged = self.command(text, literal)
        if not tagged.split(b" ", 2)[1] == b"OK":
            raise AssertionError("%s: %r" % (text, tagged))
        return untagged, tagged

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def message(i, tag="m"):
    """A small message whose Message-ID names it."""
    return ("From: a@example.org\r\nTo: b@example.org\r\nSubject: %s %d\r\n"
            "Message-ID: <%s-%d@aerogram.test>\r\n\r\nbody of %s %d\r\n" % (tag, i, tag, i, tag, i)).encode()


def select_info(untagged):
    """EXISTS and UIDVALIDITY from the untagged answers of a SELECT or NOOP."""
    exists = uidvalidity = None
    for line, _ in untagged:
        m = re.match(rb"\* (\d+) EXISTS", line)
        if m:
            exists = int(m.group(1))
        m = re.search(rb"\[UIDVALIDITY (\d+)\]", line)
        if m:
            uidvalidity = int(m.group(1))
    return exists, uidvalidity
