"""Starting aerogramd for the tests: one launcher.

`Daemon` is one aerogramd process started from a configuration file in a
work directory; it can be started again on the same store, each start with
its own log (NAME.log.1, NAME.log.2, ...), spawned without waiting, killed
with SIGKILL, and stopped with SIGTERM and checked (exit status 0, no
sanitizer report in any of its logs). Every process is ended by its PID.

`Server` is the daemon the server tests start: everything in a temporary
directory (configuration, users file, TLS certificate made with `openssl
req` at test time, log), configuration from keyword lines.

`SqliteDaemon` is the one the SQLite crash tests start, stop and kill on one
database in their own work directory.

Only the standard library is used."""
import os
import signal
import socket
import ssl
import subprocess
import tempfile
import time

from agtest.ports import free_port

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
AEROGRAMD = os.environ.get("AEROGRAMD", os.path.join(ROOT, "build", "aerogramd"))
DRIVER = os.environ.get("AG_TEST_DRIVER", os.path.join(ROOT, "build", "drivers", "aerogram_memory.so"))
# AG_TEST_STORE=sqlite runs the daemons on the SQLite driver (a database in
# each daemon's temporary directory) instead of the memory driver.
STORE = os.environ.get("AG_TEST_STORE", "memory")
# The fault-injecting wrapper (inner=memory, control_file=PATH), beside the memory driver.
FAULTY_DRIVER = os.path.join(os.path.dirname(DRIVER), "aerogram_faulty.so")
AEROGRAMCTL = os.environ.get("AEROGRAMCTL", os.path.join(ROOT, "build", "aerogramctl"))

# Generous: the CI machine is small and sanitizers slow everything down.
START_TIMEOUT = 60
IO_TIMEOUT = 60

__all__ = ["AEROGRAMCTL", "AEROGRAMD", "DRIVER", "FAULTY_DRIVER", "IO_TIMEOUT", "ROOT", "START_TIMEOUT",
           "STORE", "Daemon", "Faults", "Server", "SqliteDaemon", "client_tls_context", "free_port",
           "hash_password", "make_certificate", "stop_process", "write_users"]


def make_certificate(directory):
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


def hash_password(password):
    out = subprocess.run([AEROGRAMCTL, "hash-password"], input=password + "\n", capture_output=True,
                         text=True, check=True)
    return out.stdout.strip()


def client_tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def stop_process(proc, timeout=START_TIMEOUT):
    """SIGTERM to one process we started, SIGKILL if it has not exited in
    `timeout` s; False when it had to be killed."""
    if proc is None or proc.poll() is not None:
        return True
    proc.terminate()
    try:
        proc.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return False


def write_users(path, users):
    """A users file: {name: password value as written (e.g. "{PLAIN}pw")}.
    Replaced atomically, so a daemon reloading it never reads half of it."""
    with open(path + ".tmp", "w") as f:
        for name, password in users.items():
            f.write("[%s]\npassword = %s\n\n" % (name, password))
    os.replace(path + ".tmp", path)


class Faults:
    """The control file of the fault-injecting wrapper (FAULTY_DRIVER):
    storage() gives a daemon's [storage] lines, set() says what fails from
    now on ("ok", "fail all unavailable", "delay blob_put 10", ...)."""

    driver = FAULTY_DRIVER

    def __init__(self, text="ok", inner="memory"):
        self.dir = tempfile.TemporaryDirectory(prefix="aerogram-faults-")
        self.path = os.path.join(self.dir.name, "faults")
        self.inner = inner
        self.stamp = 0
        self.set(text)

    def storage(self):
        return ["inner = " + self.inner, "control_file = " + self.path]

    def set(self, text):
        with open(self.path, "w") as f:
            f.write(text + "\n")
        # The wrapper reads the file again when its size or time changes:
        # each write gets a time of its own.
        self.stamp += 1
        os.utime(self.path, (self.stamp, self.stamp))

    def cleanup(self):
        self.dir.cleanup()


class Daemon:
    """One aerogramd process configured by config_lines() (a subclass gives
    them), its files in `workdir` under `name`."""

    def __init__(self, workdir, name="aerogramd", aerogramd=None):
        self.workdir = workdir
        self.name = name
        self.aerogramd = aerogramd or AEROGRAMD
        self.port = free_port()
        self.config_path = os.path.join(workdir, "%s.conf" % name)
        self.proc = None
        self.starts = 0
        self.logs = []
        self.new_session = False  # True: its own session, out of reach of the terminal's Ctrl-C

    def config_lines(self):
        raise NotImplementedError

    def write_config(self):
        with open(self.config_path, "w") as f:
            f.write("\n".join(self.config_lines()) + "\n")

    @property
    def log_path(self):
        """The log of the latest start."""
        return self.logs[-1]

    def spawn(self):
        """Starts the process; does not wait for it to be ready."""
        self.starts += 1
        log_path = os.path.join(self.workdir, "%s.log.%d" % (self.name, self.starts))
        self.logs.append(log_path)
        self.write_config()
        with open(log_path, "w") as log:
            self.proc = subprocess.Popen([self.aerogramd, "-c", self.config_path], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=self.new_session)

    def read_log(self):
        """The log of the latest start."""
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_log(self, text, timeout=IO_TIMEOUT):
        """True once `text` is in the log of the latest start, False after `timeout` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.read_log():
                return True
            time.sleep(0.05)
        return False

    def wait_ready(self):
        """True when ready; False when it exited because a port was taken;
        raises otherwise."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            log = self.read_log()
            if self.proc.poll() is not None:
                if "cannot listen on" in log:
                    return False
                raise RuntimeError("%s exited with %s:\n%s" % (self.name, self.proc.returncode, log))
            if "ready (" in log:
                return True
            time.sleep(0.02)
        raise RuntimeError("%s did not start in %d s:\n%s" % (self.name, START_TIMEOUT, self.read_log()))

    def start(self, new_port=True):
        """Starts and waits until it serves. A port taken meanwhile by another
        program gets a new free port (unless new_port is False: a daemon
        listening on more ports than `port`). A failed start leaves no process
        behind."""
        for _ in range(5 if new_port else 1):
            self.spawn()
            try:
                if self.wait_ready():
                    return
            except BaseException:
                self.cleanup()
                raise
            if not new_port:
                raise RuntimeError("%s exited with %s:\n%s" % (self.name, self.proc.returncode, self.read_log()))
            self.port = free_port()
        raise RuntimeError("%s: cannot find a free port" % self.name)

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
        if not stop_process(self.proc):
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


class Server(Daemon):
    """One aerogramd in a temporary directory, started at once. `imap` lines
    go into [imap], `auth` into [auth], `storage` into [storage], `extra`
    lines (whole sections) at the end."""

    def __init__(self, users, imap=None, auth=None, tls=True, tls_port=True, ipv6=False, driver=None,
                 storage=None, extra=None):
        self.dir = tempfile.TemporaryDirectory(prefix="aerogram-server-test-")
        d = self.dir.name
        super().__init__(d)
        self.tls_port = free_port() if tls and tls_port else None
        self.ipv6_port = free_port(socket.AF_INET6, "::1") if ipv6 else None
        self.users_path = os.path.join(d, "users.ini")
        self.write_users(users)
        listen = "127.0.0.1:%d" % self.port
        if ipv6:
            listen += " [::1]:%d" % self.ipv6_port
        if driver is None and STORE == "sqlite":
            driver = os.path.join(os.path.dirname(DRIVER), "aerogram_sqlite.so")
            storage = ["path = " + os.path.join(d, "mail.sqlite")] + list(storage or [])
        lines = ["[storage]", "driver = " + (driver or DRIVER)] + list(storage or [])
        lines += ["", "[imap]", "listen = " + listen]
        if tls:
            cert, key = make_certificate(d)
            lines += ["tls_cert = " + cert, "tls_key = " + key]
            if self.tls_port:
                lines.append("tls_listen = 127.0.0.1:%d" % self.tls_port)
        # two workers unless the test sets its own (a key set twice is refused)
        if not any(l.split("=")[0].strip() == "workers" for l in (imap or [])):
            lines.append("workers = 2")
        lines += list(imap or [])
        auth = list(auth or [])
        defaults = [l for l in ("failure_delay = 20", "failure_delay_max = 200")
                    if not any(a.split("=")[0].strip() == l.split("=")[0].strip() for a in auth)]
        lines += ["", "[auth]", "users_file = " + self.users_path] + defaults + auth
        if extra:
            lines += [""] + list(extra)
        self.lines = lines
        try:
            self.start(new_port=False)
        except BaseException:
            self.dir.cleanup()  # the exception carries the log
            raise

    def config_lines(self):
        return self.lines

    def write_users(self, users):
        write_users(self.users_path, users)

    def stop(self):
        """Stops the daemon with SIGTERM; raises if it did not exit cleanly
        (exit status, or a sanitizer report in its log)."""
        if self.dir is None:
            return  # stopped already (a test stops it, its cleanup again)
        problem = super().stop()
        log = self.read_log()
        self.dir.cleanup()
        self.dir = None
        if problem:
            raise AssertionError("aerogramd %s:\n%s" % (problem, log[-4000:]))


class SqliteDaemon(Daemon):
    """An aerogramd on the SQLite driver (`db`), restartable on the same
    database, its files in `workdir`; `build` is the build directory."""

    def __init__(self, build, workdir, name, db, users_file, storage=()):
        super().__init__(workdir, name, os.path.join(build, "aerogramd"))
        self.build = build
        self.db = db
        self.users_file = users_file
        self.storage = list(storage)

    def config_lines(self):
        lines = ["[storage]", "driver = " + os.path.join(self.build, "drivers", "aerogram_sqlite.so"),
                 "path = " + self.db] + self.storage
        lines += ["", "[imap]", "listen = 127.0.0.1:%d" % self.port, "workers = 4", "",
                  "[auth]", "users_file = " + self.users_file,
                  "failure_delay = 20", "failure_delay_max = 200"]
        return lines
