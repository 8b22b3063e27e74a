"""What the IMAP-level tests of the SQLite driver share: an aerogramd they
start, kill and restart on one database (`Daemon`), and a small IMAP client
(`Client`) with exactly the commands they need, literals in both directions
and no hidden retries (a dropped connection is an exception the caller sees,
so it knows an APPEND was not acknowledged). Standard library only."""
import os
import re
import signal
import socket
import subprocess
import time

IO_TIMEOUT = 60  # generous: sanitizers and a shared 2-core machine


def free_port():
    """A free TCP port on 127.0.0.1 (the daemon cannot bind port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


START_TIMEOUT = 60


class Daemon:
    """One aerogramd on the SQLite driver, restartable on the same database.
    Each start gets its own log file (log.N) in workdir."""

    def __init__(self, build, workdir, name, db, users_file, storage=()):
        self.build = build
        self.workdir = workdir
        self.name = name
        self.db = db
        self.users_file = users_file
        self.storage = list(storage)
        self.port = free_port()
        self.proc = None
        self.starts = 0
        self.logs = []

    def write_config(self):
        lines = ["[storage]", "driver = " + os.path.join(self.build, "drivers", "aerogram_sqlite.so"),
                 "path = " + self.db] + self.storage
        lines += ["", "[imap]", "listen = 127.0.0.1:%d" % self.port, "workers = 4", "",
                  "[auth]", "users_file = " + self.users_file,
                  "failure_delay = 20", "failure_delay_max = 200"]
        path = os.path.join(self.workdir, "%s.conf" % self.name)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def spawn(self):
        """Starts the process; does not wait for it to be ready."""
        self.starts += 1
        log_path = os.path.join(self.workdir, "%s.log.%d" % (self.name, self.starts))
        self.logs.append(log_path)
        config = self.write_config()
        with open(log_path, "w") as log:
            self.proc = subprocess.Popen([os.path.join(self.build, "aerogramd"), "-c", config],
                                         stdout=log, stderr=subprocess.STDOUT)

    def log(self):
        with open(self.logs[-1], errors="replace") as f:
            return f.read()

    def start(self):
        """Starts and waits until it serves. A port taken meanwhile by another
        program gets a new free port."""
        for _ in range(5):
            self.spawn()
            if self.wait_ready():
                return
            self.port = free_port()
        raise RuntimeError("%s: cannot find a free port" % self.name)

    def wait_ready(self):
        """True when ready; False when the port was taken; raises otherwise."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            log = self.log()
            if "ready (" in log:
                return True
            if self.proc.poll() is not None:
                if "cannot listen on" in log:
                    return False
                raise RuntimeError("%s exited with %s:\n%s" % (self.name, self.proc.returncode, log))
            time.sleep(0.02)
        raise RuntimeError("%s did not start in %d s:\n%s" % (self.name, START_TIMEOUT, self.log()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        """kill -9; returns the exit status seen (-9 unless it had died)."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        return self.proc.wait()

    def stop(self):
        """SIGTERM; returns a problem description or None (exit 0, no report
        of a sanitizer in any of its logs)."""
        problems = []
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(START_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                problems.append("did not stop on SIGTERM")
        if self.proc is not None and self.proc.returncode != 0:
            problems.append("exited with %s" % self.proc.returncode)
        for path in self.logs:
            with open(path, errors="replace") as f:
                text = f.read()
            if "Sanitizer" in text or "runtime error" in text:
                problems.append("sanitizer report in %s:\n%s" % (path, text[-3000:]))
        return "; ".join(problems) or None

    def cleanup(self):
        """Kills the process if it still runs (by its PID)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def write_users(path, users):
    with open(path, "w") as f:
        for name, password in users.items():
            f.write("[%s]\npassword = {PLAIN}%s\n\n" % (name, password))


def blob_files_missing(db):
    """Blob rows whose file is not in <db>.blobs: their number."""
    out = subprocess.run(["sqlite3", db, "SELECT file FROM ag_blobs WHERE file IS NOT NULL"],
                         capture_output=True, text=True, check=True)
    return sum(1 for f in out.stdout.split() if not os.path.isfile(os.path.join(db + ".blobs", f)))


class ImapError(Exception):
    """A tagged NO or BAD."""


class Client:
    def __init__(self, port, timeout=IO_TIMEOUT):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.n = 0
        greeting = self.line()
        if not greeting.startswith(b"* OK"):
            raise ImapError("greeting: %r" % greeting)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def line(self):
        """One response line without its CRLF."""
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk

    def exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(max(1 << 16, n - len(self.buf)))
            if not chunk:
                raise EOFError("connection closed in a literal")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self):
        """One response with its literals: (text with each literal replaced
        by '{}', [literal bytes...])."""
        text, lits = b"", []
        while True:
            line = self.line()
            m = re.search(rb"\{(\d+)\}$", line)
            if not m:
                return text + line, lits
            text += line[:m.start()] + b"{}"
            lits.append(self.exact(int(m.group(1))))

    def tag(self):
        self.n += 1
        return b"c%d" % self.n

    def command(self, cmd, on_untagged=None):
        """Sends one command; returns (tagged line, [(untagged text, literals)]).
        Raises ImapError on NO/BAD."""
        tag = self.tag()
        self.sock.sendall(tag + b" " + cmd + b"\r\n")
        return self.finish(tag, on_untagged)

    def finish(self, tag, on_untagged=None):
        untagged = []
        while True:
            text, lits = self.response()
            if text.startswith(tag + b" "):
                if not text.startswith(tag + b" OK"):
                    raise ImapError(text.decode("latin-1"))
                return text, untagged
            if on_untagged:
                on_untagged(text, lits)
            else:
                untagged.append((text, lits))

    def login(self, user, password):
        self.command(b"LOGIN " + user.encode() + b" " + password.encode())

    def append_start(self, mailbox, size):
        """Sends the APPEND line and waits for the continuation; returns the tag."""
        tag = self.tag()
        self.sock.sendall(b"%s APPEND %s {%d}\r\n" % (tag, mailbox.encode(), size))
        line = self.line()
        if not line.startswith(b"+"):
            raise ImapError(line.decode("latin-1"))
        return tag

    def append_end(self, tag):
        """Reads the answer to an APPEND; returns (uidvalidity, uid)."""
        text, _ = self.finish(tag)
        m = re.search(rb"\[APPENDUID (\d+) (\d+)\]", text)
        if not m:
            raise ImapError("no APPENDUID in %r" % text)
        return int(m.group(1)), int(m.group(2))

    def append(self, mailbox, data):
        tag = self.append_start(mailbox, len(data))
        self.sock.sendall(data + b"\r\n")
        return self.append_end(tag)

    def select(self, mailbox):
        """Returns (exists, uidvalidity)."""
        _, untagged = self.command(b"SELECT " + mailbox.encode())
        exists = uidvalidity = None
        for text, _ in untagged:
            m = re.match(rb"\* (\d+) EXISTS", text)
            if m:
                exists = int(m.group(1))
            m = re.search(rb"\[UIDVALIDITY (\d+)\]", text)
            if m:
                uidvalidity = int(m.group(1))
        return exists, uidvalidity

    def uid_search(self, criteria):
        _, untagged = self.command(b"UID SEARCH " + criteria)
        uids = []
        for text, _ in untagged:
            if text.startswith(b"* SEARCH"):
                uids += [int(x) for x in text.split()[2:]]
        return uids

    def fetch_bodies(self, uids, batch=100):
        """{uid: bytes} of BODY.PEEK[] for the given UIDs, in batches."""
        out = {}
        uids = sorted(uids)
        for i in range(0, len(uids), batch):
            chunk = b",".join(b"%d" % u for u in uids[i:i + batch])
            _, untagged = self.command(b"UID FETCH " + chunk + b" (UID BODY.PEEK[])")
            for text, lits in untagged:
                m = re.search(rb"UID (\d+)", text)
                if b" FETCH " in text and m and lits:
                    out[int(m.group(1))] = lits[0]
        return out

    def logout(self):
        try:
            self.command(b"LOGOUT")
        except (OSError, EOFError, ImapError):
            pass
        self.close()


MESSAGE_ID = re.compile(rb"^Message-ID: (<[^>\r\n]+>)\r$", re.M | re.I)


def message_id(data):
    """The Message-ID of a message of these tests, or None."""
    head = data.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    m = MESSAGE_ID.search(head)
    return m.group(1).decode() if m else None


def integrity_check(db):
    """PRAGMA integrity_check through the sqlite3 shell: its output, stripped."""
    out = subprocess.run(["sqlite3", db, "PRAGMA integrity_check"], capture_output=True, text=True)
    return (out.stdout + out.stderr).strip()
