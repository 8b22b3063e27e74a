"""Starts a real aerogramd on a free loopback port for the server tests.

Everything lives in a temporary directory: the configuration, the users
file, the TLS certificate (made with `openssl req` at test time) and the
daemon's log. Only the standard library is used."""
import os
import socket
import ssl
import subprocess
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
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


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


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


class Server:
    """One aerogramd process. `imap` lines go into [imap], `auth` into [auth],
    `extra` lines (whole sections) at the end."""

    def __init__(self, users, imap=None, auth=None, tls=True, tls_port=True, ipv6=False, driver=None,
                 storage=None, extra=None):
        self.dir = tempfile.TemporaryDirectory(prefix="aerogram-server-test-")
        d = self.dir.name
        self.port = free_port()
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
        self.config_path = os.path.join(d, "aerogram.conf")
        with open(self.config_path, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.log_path = os.path.join(d, "aerogramd.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([AEROGRAMD, "-c", self.config_path], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.wait_ready()

    def write_users(self, users):
        with open(self.users_path + ".tmp", "w") as f:
            for name, password in users.items():
                f.write("[%s]\npassword = %s\n\n" % (name, password))
        os.replace(self.users_path + ".tmp", self.users_path)

    def wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("aerogramd exited with %d:\n%s" % (self.proc.returncode, self.read_log()))
            if "ready (" in self.read_log():
                return
            time.sleep(0.05)
        raise RuntimeError("aerogramd did not start:\n" + self.read_log())

    def read_log(self):
        with open(self.log_path) as f:
            return f.read()

    def wait_log(self, text, timeout=IO_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.read_log():
                return True
            time.sleep(0.05)
        return False

    def stop(self):
        """Stops the daemon with SIGTERM; raises if it did not exit cleanly
        (exit status, or a sanitizer report in its log)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(IO_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        log = self.read_log()
        self.dir.cleanup()
        if self.proc.returncode != 0 or "Sanitizer" in log or "runtime error" in log:
            raise AssertionError("aerogramd exited with %s:\n%s" % (self.proc.returncode, log[-4000:]))


class Raw:
    """A line-level client for what imaplib cannot send (pipelining, garbage)."""

    def __init__(self, port, host="127.0.0.1", tls=False, family=socket.AF_INET):
        sock = socket.create_connection((host, port), timeout=IO_TIMEOUT)
        if tls:
            sock = client_tls_context().wrap_socket(sock, server_hostname="localhost")
        self.sock = sock
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; pending: %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def until_tagged(self, tag):
        """Lines up to and including the one tagged `tag`."""
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines

    def closed(self):
        """True once the server closed the connection (after what it sent)."""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, ssl.SSLError):
            return True

    def starttls(self):
        self.sock = client_tls_context().wrap_socket(self.sock, server_hostname="localhost")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
