"""Operating aerogramd: /metrics, the per-command debug log, TLS log levels,
[imap] user.

A scripted IMAP session (imaplib, with every byte it sends and reads
counted) and an LMTP delivery against a real aerogramd with [metrics] on;
then /metrics must pass Prometheus' own checker (promtool check metrics)
and every counter must equal what the script did. The same daemon logs at
debug: one line per command, and the session's end at info. A TLS client
that closes without close_notify is a debug line, a TLS handshake failure a
warning. A store failure is counted by operation and code. [imap] user:
started as root, aerogramd runs as that user (tested for real when the
tests run as root); not root, naming another user stops start-up with one
clear line.
"""
import imaplib
import os
import pwd
import shutil
import ssl
import re
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from agtest import (AEROGRAMD, DRIVER, FAULTY_DRIVER, IO_TIMEOUT, START_TIMEOUT, Raw,  # noqa: E402
                               Server, client_tls_context, free_port)

USERS = {"alice": "{PLAIN}secret"}
MESSAGE = b"From: a@example.org\r\nSubject: metrics\r\n\r\nbody\r\n"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


class CountingIMAP(imaplib.IMAP4):
    """imaplib, counting the bytes it writes and reads."""

    def __init__(self, *args, **kwargs):
        self.sent = 0
        self.received = 0
        super().__init__(*args, **kwargs)

    def send(self, data):
        self.sent += len(data)
        super().send(data)

    def read(self, size):
        data = super().read(size)
        self.received += len(data)
        return data

    def readline(self):
        line = super().readline()
        self.received += len(line)
        return line

    def logout_reading_all(self):
        """LOGOUT, reading its tagged response too (imaplib's logout stops
        at the BYE before it), so that every byte sent was read."""
        tag = self._new_tag()
        self.send(tag + b" LOGOUT\r\n")
        while not self.readline().startswith(tag + b" OK"):
            pass
        self.shutdown()


def parse(text):
    """{(name, frozenset(labels)): value} of a text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        labels = frozenset()
        if m.group(2):
            labels = frozenset(tuple(kv.split("=", 1)) for kv in re.findall(r'\w+="[^"]*"', m.group(2)))
            labels = frozenset((k, v.strip('"')) for k, v in labels)
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(samples, name, **labels):
    key = (name, frozenset(labels.items()))
    assert key in samples, "no sample %s %s in /metrics" % (name, labels)
    return samples[key]


class Metrics(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.metrics_port = free_port()
        cls.lmtp_port = free_port()
        cls.srv = Server(USERS, tls=True,
                         extra=["[metrics]", "enabled = yes", "listen = 127.0.0.1:%d" % cls.metrics_port,
                                "", "[log]", "level = debug",
                                "", "[lmtp]", "listen = 127.0.0.1:%d" % cls.lmtp_port, "domains = localhost"])
        cls.url = "http://127.0.0.1:%d/metrics" % cls.metrics_port

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def scrape(self):
        with urllib.request.urlopen(self.url, timeout=IO_TIMEOUT) as r:
            self.assertEqual(r.status, 200)
            self.assertTrue(r.headers["Content-Type"].startswith("text/plain; version=0.0.4"))
            text = r.read().decode()
        # Prometheus' own checker: format and naming conventions.
        check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        self.assertEqual(check.returncode, 0, "promtool check metrics:\n%s%s\n%s" %
                         (check.stdout, check.stderr, text))
        return parse(text)

    def wait_sessions_gone(self, count):
        """Until `count` sessions have logged their end (info)."""
        deadline = time.monotonic() + IO_TIMEOUT
        while time.monotonic() < deadline:
            if self.srv.read_log().count(": disconnected user=alice") >= count:
                return
            time.sleep(0.05)
        self.fail("sessions did not end:\n" + self.srv.read_log())

    def test_counters_equal_the_script(self):
        # 1. Before anything: zero counters, and only /metrics is served.
        s = self.scrape()
        self.assertEqual(value(s, "aerogram_connections_accepted_total"), 0)
        self.assertEqual(value(s, "aerogram_worker_queue_depth"), 0)
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen("http://127.0.0.1:%d/other" % self.metrics_port, timeout=IO_TIMEOUT)
        self.assertEqual(e.exception.code, 404)

        # 2. One LMTP delivery to alice, one to an unknown address (refused at RCPT: no delivery).
        with smtplib.LMTP("127.0.0.1", self.lmtp_port, timeout=IO_TIMEOUT) as lmtp:
            refused = lmtp.sendmail("x@example.org", ["alice@localhost", "nobody@localhost"], MESSAGE)
        self.assertIn("nobody@localhost", refused)

        # 3. The IMAP script; a second session keeps INBOX selected meanwhile.
        other = CountingIMAP("127.0.0.1", self.srv.port)
        other.login("alice", "secret")
        other.select("INBOX")
        m = CountingIMAP("127.0.0.1", self.srv.port)
        m.login("alice", "secret")
        m.select("INBOX")
        for _ in range(2):
            self.assertEqual(m.append("INBOX", None, None, MESSAGE)[0], "OK")
        self.assertEqual(m.fetch("1:*", "(FLAGS)")[0], "OK")
        self.assertEqual(m.uid("FETCH", "1:*", "(UID)")[0], "OK")
        self.assertEqual(m.noop()[0], "OK")
        with self.assertRaises(imaplib.IMAP4.error):
            m.fetch("1", "(NOSUCHITEM)")          # BAD from the parser: a malformed command
        self.assertEqual(m.select("No/Such/Box")[0], "NO")
        # The failed SELECT left the session authenticated: FETCH is BAD there.
        m.state = "SELECTED"                      # (imaplib would not send it)
        with self.assertRaises(imaplib.IMAP4.error):
            m.fetch("1", "(FLAGS)")
        self.assertEqual(m.select("INBOX")[0], "OK")

        s = self.scrape()
        self.assertEqual(value(s, "aerogram_connections", state="selected"), 2)
        self.assertEqual(value(s, "aerogram_connections", state="not_authenticated"), 0)
        self.assertEqual(value(s, "aerogram_connections", state="authenticated"), 0)
        self.assertGreaterEqual(value(s, "aerogram_mailboxes_in_memory", state="in_use"), 1)

        m.logout_reading_all()
        other.logout_reading_all()
        self.wait_sessions_gone(2)
        s = self.scrape()

        # Connections: two accepted, none open now.
        self.assertEqual(value(s, "aerogram_connections_accepted_total"), 2)
        for state in ("not_authenticated", "authenticated", "selected", "logout"):
            self.assertEqual(value(s, "aerogram_connections", state=state), 0, state)
        # Commands by name and result: both sessions together.
        expect = {("LOGIN", "OK"): 2, ("SELECT", "OK"): 3, ("SELECT", "NO"): 1, ("APPEND", "OK"): 2,
                  ("FETCH", "OK"): 1, ("FETCH", "BAD"): 1, ("UID FETCH", "OK"): 1, ("NOOP", "OK"): 1,
                  ("LOGOUT", "OK"): 2}
        for (cmd, result), n in expect.items():
            self.assertEqual(value(s, "aerogram_imap_commands_total", command=cmd, result=result), n,
                             (cmd, result))
        self.assertEqual(value(s, "aerogram_imap_malformed_commands_total"), 1)
        total = sum(v for (name, _), v in s.items() if name == "aerogram_imap_commands_total")
        # imaplib asks CAPABILITY once per connection
        self.assertEqual(total, sum(expect.values()) + 2)
        self.assertEqual(value(s, "aerogram_imap_commands_total", command="CAPABILITY", result="OK"), 2)
        # Latency histograms: one observation per command.
        self.assertEqual(value(s, "aerogram_imap_command_duration_seconds_count", command="APPEND"), 2)
        self.assertEqual(value(s, "aerogram_imap_command_duration_seconds_bucket", command="APPEND", le="+Inf"), 2)
        self.assertEqual(value(s, "aerogram_imap_command_duration_seconds_count", command="FETCH"), 2)
        # Bytes: exactly what both clients wrote and read.
        self.assertGreater(m.sent, 0)
        self.assertEqual(value(s, "aerogram_imap_received_bytes_total"), m.sent + other.sent)
        self.assertEqual(value(s, "aerogram_imap_sent_bytes_total"), m.received + other.received)
        # Storage: the two APPENDs and one LMTP delivery stored three bodies.
        self.assertEqual(value(s, "aerogram_storage_calls_total", operation="blob_put"), 3)
        self.assertEqual(value(s, "aerogram_storage_call_duration_seconds_count", operation="blob_put"), 3)
        self.assertGreater(value(s, "aerogram_storage_calls_total", operation="row_read"), 0)
        # LMTP: one recipient delivered, none failed (the unknown one was refused at RCPT).
        self.assertEqual(value(s, "aerogram_lmtp_deliveries_total", result="delivered"), 1)
        self.assertEqual(value(s, "aerogram_lmtp_deliveries_total", result="failed"), 0)
        self.assertEqual(value(s, "aerogram_mailboxes_in_memory", state="in_use"), 0)
        self.assertEqual(value(s, "aerogram_worker_queue_depth"), 0)

        # The log: one debug line per command, one info line per session end.
        log = self.srv.read_log()
        lines = [l for l in log.splitlines() if "debug: " in l and " command=" in l]
        self.assertEqual(len(lines), total, "\n".join(lines))
        self.assertTrue(any("user=alice command=UID FETCH result=OK" in l for l in lines), "\n".join(lines))
        self.assertTrue(any("command=FETCH result=BAD" in l for l in lines), "\n".join(lines))
        self.assertEqual(len([l for l in log.splitlines() if "info: " in l and ": disconnected user=alice" in l]), 2)



class StoreErrors(unittest.TestCase):
    """A failing storage call: NO [UNAVAILABLE] to the client, and counted
    by operation and error code."""

    def test_errors_by_code(self):
        tmp = tempfile.TemporaryDirectory(prefix="aerogram-metrics-faults-")
        self.addCleanup(tmp.cleanup)
        control = os.path.join(tmp.name, "faults")
        mport = free_port()
        srv = Server(USERS, tls=False, driver=FAULTY_DRIVER, storage=["inner = memory", "control_file = " + control],
                     extra=["[metrics]", "enabled = yes", "listen = 127.0.0.1:%d" % mport])
        try:
            m = imaplib.IMAP4("127.0.0.1", srv.port)
            m.login("alice", "secret")
            self.assertEqual(m.append("INBOX", None, None, MESSAGE)[0], "OK")
            with open(control, "w") as f:
                f.write("fail_next blob_put unavailable 1\n")
            typ, data = m.append("INBOX", None, None, MESSAGE)
            self.assertEqual(typ, "NO")
            self.assertIn(b"[UNAVAILABLE]", data[0])
            self.assertEqual(m.append("INBOX", None, None, MESSAGE)[0], "OK")
            m.logout()
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=IO_TIMEOUT) as r:
                s = parse(r.read().decode())
            self.assertEqual(value(s, "aerogram_storage_errors_total", operation="blob_put", code="unavailable"), 1)
            self.assertEqual(value(s, "aerogram_storage_calls_total", operation="blob_put"), 3)
            self.assertEqual(value(s, "aerogram_imap_commands_total", command="APPEND", result="NO"), 1)
            self.assertEqual(value(s, "aerogram_imap_commands_total", command="APPEND", result="OK"), 2)
            errors = [k for k in s if k[0] == "aerogram_storage_errors_total"]
            self.assertEqual(len(errors), 1, errors)
        finally:
            srv.stop()


class PrivateStore(unittest.TestCase):
    """The memory driver's store is the daemon's own (AEROGRAM_CAP_PRIVATE):
    by default nothing is kept for undelete, and an expunged message's
    contents go after a grace of seconds, not a minute."""

    MEMORY = os.path.join(os.path.dirname(DRIVER), "aerogram_memory.so")

    def expunged_under_a_view(self, storage=()):
        """A daemon on the memory driver (more [storage] lines in
        `storage`); messages 1 and 2 appended, then 1 expunged by session a
        while session b keeps it in its view (no EXPUNGE during FETCH).
        Returns the daemon's log at start, and b."""
        srv = Server(USERS, tls=False, driver=self.MEMORY, storage=list(storage))
        self.addCleanup(srv.stop)
        a = imaplib.IMAP4("127.0.0.1", srv.port)
        b = imaplib.IMAP4("127.0.0.1", srv.port)
        for m in (a, b):
            m.login("alice", "secret")
            self.addCleanup(m.shutdown)
        for _ in range(2):
            self.assertEqual(a.append("INBOX", None, None, MESSAGE)[0], "OK")
        self.assertEqual(b.select("INBOX")[1], [b"2"])
        a.select("INBOX")
        a.store("1", "+FLAGS", "\\Deleted")
        self.assertEqual(a.expunge()[0], "OK")
        # read now: the expunged body is still there
        typ, data = b.fetch("1", "(BODY.PEEK[])")
        self.assertEqual(typ, "OK")
        self.assertEqual(data[0][1], MESSAGE)
        return srv.read_log(), b

    def test_expunged_contents_go_soon(self):
        log, b = self.expunged_under_a_view()
        self.assertIn("expunge_retention: 0, the store is this process's own", log)
        # until the grace (5 s) is over; then FETCH says it is gone. The
        # bound is generous.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            typ, data = b.fetch("1", "(BODY.PEEK[])")
            if typ != "OK":
                break
            time.sleep(0.2)
        self.assertEqual(typ, "NO")
        self.assertIn(b"[EXPUNGEISSUED]", data[0])
        self.assertEqual(b.fetch("2", "(BODY.PEEK[])")[1][0][1], MESSAGE)

    def test_retention_named_in_the_file_is_kept(self):
        log, b = self.expunged_under_a_view(["expunge_retention = 1h"])
        self.assertNotIn("expunge_retention: 0", log)
        # Kept for the hour: still read well past the private grace (5 s).
        # A slow machine makes this weaker, never false.
        time.sleep(8)
        typ, data = b.fetch("1", "(BODY.PEEK[])")
        self.assertEqual(typ, "OK")
        self.assertEqual(data[0][1], MESSAGE)


class MetricsConfig(unittest.TestCase):
    def check(self, lines):
        d = tempfile.TemporaryDirectory(prefix="aerogram-metrics-conf-")
        self.addCleanup(d.cleanup)
        users = os.path.join(d.name, "users.ini")
        with open(users, "w") as f:
            f.write("[alice]\npassword = {PLAIN}x\n")
        conf = os.path.join(d.name, "aerogram.conf")
        with open(conf, "w") as f:
            f.write("[storage]\ndriver = %s\n[imap]\nlisten = 127.0.0.1:%d\n[auth]\nusers_file = %s\n%s\n" %
                    (DRIVER, free_port(), users, "\n".join(lines)))
        return subprocess.run([AEROGRAMD, "-t", "-c", conf], capture_output=True, text=True, timeout=IO_TIMEOUT)

    def test_bad_values_stop_start_up(self):
        for lines, needle in ((["[metrics]", "enabled = maybe"], "[metrics] enabled: must be yes or no"),
                              (["[metrics]", "listen = 127.0.0.1"], "[metrics] listen: '127.0.0.1' is not one"),
                              (["[metrics]", "listen = 127.0.0.1:1 127.0.0.1:2"], "is not one address:port"),
                              (["[log]", "level = loud"], "[log] level: must be error, warning, info or debug")):
            r = self.check(lines)
            self.assertEqual(r.returncode, 1, (lines, r.stdout, r.stderr))
            self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
            self.assertIn(needle, r.stderr)
        r = self.check(["[metrics]", "enabled = yes", "[log]", "level = warning"])
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_off_by_default(self):
        srv = Server(USERS, tls=False)
        try:
            self.assertNotIn("metrics on", srv.read_log())
        finally:
            srv.stop()
        mport = free_port()
        srv = Server(USERS, tls=False, extra=["[metrics]", "enabled = yes", "listen = 127.0.0.1:%d" % mport])
        try:
            self.assertIn("metrics on http://127.0.0.1:%d/metrics" % mport, srv.read_log())
        finally:
            srv.stop()


class TlsLogLevels(unittest.TestCase):
    """A TLS client closing without close_notify is not a warning; a real
    TLS failure is."""

    def test_levels(self):
        srv = Server(USERS, tls=True, extra=["[log]", "level = debug"])
        try:
            # closes its socket without close_notify, as most clients do
            c = Raw(srv.tls_port, tls=True)
            self.assertTrue(c.line().startswith(b"* OK"))
            c.sock.close()
            # not TLS at all on the TLS port: the handshake fails
            raw = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=IO_TIMEOUT)
            raw.sendall(b"a001 LOGIN alice secret\r\n" * 20)
            try:
                while raw.recv(65536):   # a TLS alert, then the close
                    pass
            except ConnectionResetError:
                pass
            raw.close()
            deadline = time.monotonic() + IO_TIMEOUT
            while time.monotonic() < deadline and srv.read_log().count(": disconnected after") < 2:
                time.sleep(0.05)
            log = srv.read_log().splitlines()
            eof = [l for l in log if "close_notify" in l]
            self.assertEqual(len(eof), 1, "\n".join(log))
            self.assertIn("debug: ", eof[0])
            failures = [l for l in log if "TLS error" in l]
            self.assertEqual(len(failures), 1, "\n".join(log))
            self.assertIn("warning: ", failures[0])
            self.assertNotIn("unexpected eof", failures[0])
        finally:
            srv.stop()


def read(path):
    with open(path) as f:
        return f.read()


def free_privileged_port():
    """A free loopback port below 1024 (root only): the switch to [imap]
    user must still bind it."""
    import random
    ports = list(range(600, 1024))
    random.shuffle(ports)
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below 1024")


def nobody_config(directory, user, port=None):
    """A configuration and users file `nobody` can read, on a free port."""
    os.chmod(directory, 0o755)
    users = os.path.join(directory, "users.ini")
    with open(users, "w") as f:
        f.write("[alice]\npassword = {PLAIN}secret\n")
    os.chmod(users, 0o644)
    port = port or free_port()
    conf = os.path.join(directory, "aerogram.conf")
    with open(conf, "w") as f:
        f.write("[storage]\ndriver = %s\n[imap]\nlisten = 127.0.0.1:%d\nuser = %s\nworkers = 2\n"
                "[auth]\nusers_file = %s\nfailure_delay = 0\nfailure_delay_max = 0\n" % (DRIVER, port, user, users))
    os.chmod(conf, 0o644)
    return conf, port


class PrivilegeDrop(unittest.TestCase):
    def test_not_root_naming_another_user(self):
        d = tempfile.TemporaryDirectory(prefix="aerogram-user-")
        self.addCleanup(d.cleanup)
        conf, _ = nobody_config(d.name, "root")
        cmd = [AEROGRAMD, "-c", conf]
        if os.geteuid() == 0:
            # run it as nobody (the build directory must be reachable by it)
            cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] + cmd
            probe = subprocess.run(cmd[:4] + ["test", "-x", AEROGRAMD])
            if probe.returncode != 0:
                self.fail("nobody cannot run %s: make the build directory world-readable" % AEROGRAMD)
        for extra in ([], ["-t"]):
            r = subprocess.run(cmd + extra, capture_output=True, text=True, timeout=IO_TIMEOUT)
            self.assertEqual(r.returncode, 1, r)
            self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
            self.assertIn("[imap] user = root: only root can switch to another user", r.stderr)
        # a user that does not exist: the same for root and others
        conf, _ = nobody_config(d.name, "no-such-user-here")
        r = subprocess.run([AEROGRAMD, "-t", "-c", conf], capture_output=True, text=True, timeout=IO_TIMEOUT)
        self.assertEqual(r.returncode, 1)
        self.assertIn("[imap] user: no user 'no-such-user-here' on this system", r.stderr)

    def test_root_runs_as_the_user(self):
        if os.geteuid() != 0:
            # Not root here: the switch itself cannot happen; what can be
            # tested without root is test_not_root_naming_another_user.
            print("PrivilegeDrop: not root (uid %d): the real switch to nobody is tested when run as root"
                  % os.geteuid())
            return
        d = tempfile.TemporaryDirectory(prefix="aerogram-user-")
        self.addCleanup(d.cleanup)
        # a port below 1024: bound with the capability kept for that
        conf, port = nobody_config(d.name, "nobody", free_privileged_port())
        self.assertLess(port, 1024)
        log_path = os.path.join(d.name, "log")
        with open(log_path, "w") as log:
            proc = subprocess.Popen([AEROGRAMD, "-c", conf], stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline and "ready (" not in read(log_path):
                self.assertIsNone(proc.poll(), read(log_path))
                time.sleep(0.05)
            text = read(log_path)
            self.assertIn("running as user nobody", text)
            nobody = pwd.getpwnam("nobody")
            status = {}
            with open("/proc/%d/status" % proc.pid) as f:
                for line in f:
                    k, v = line.split(":", 1)
                    status[k] = v.split()
            self.assertEqual(status["Uid"], [str(nobody.pw_uid)] * 4)
            self.assertEqual(status["Gid"], [str(nobody.pw_gid)] * 4)
            # no capability left on any thread once the sockets are bound
            for tid in os.listdir("/proc/%d/task" % proc.pid):
                with open("/proc/%d/task/%s/status" % (proc.pid, tid)) as f:
                    caps = {l.split(":")[0]: int(l.split()[1], 16) for l in f if l.startswith("Cap")}
                self.assertEqual(caps["CapEff"], 0, tid)
                self.assertEqual(caps["CapPrm"], 0, tid)
            m = imaplib.IMAP4("127.0.0.1", port)
            self.assertEqual(m.login("alice", "secret")[0], "OK")
            self.assertEqual(m.append("INBOX", None, None, MESSAGE)[0], "OK")
            m.logout()
        finally:
            proc.terminate()
            self.assertEqual(proc.wait(IO_TIMEOUT), 0, read(log_path))


if __name__ == "__main__":
    unittest.main(verbosity=1)
