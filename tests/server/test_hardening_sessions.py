"""Hardening of sessions against hostile or unlucky clients: password
checks that cannot crowd out storage work, slow and greedy clients that
cannot hold every slot, bad lines inside IDLE and AUTHENTICATE, and a store
that refuses writes. Run by `make check-server`."""
import os
import socket
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from agtest import FAULTY_DRIVER, IO_TIMEOUT, Raw, Server, hash_password  # noqa: E402
from agtest.case import DaemonCase  # noqa: E402

# Linux answers on all of 127.0.0.0/8: a second client address on loopback.
OTHER_ADDRESS = "127.0.0.2"


def connect(port, source=None, greeting=True):
    r = Raw(port)
    if source is not None:
        r.sock.close()
        r.sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT, source_address=(source, 0))
    if greeting:
        line = r.line()
        assert line.startswith(b"* OK "), line
    return r


class LoginFlood(unittest.TestCase):
    """40 connections send failing LOGINs as fast as they are answered. The
    password checks run on threads of their own, at most two per address:
    a logged-in user's STATUS (on the storage workers) is not delayed by
    them, and a user from another address still logs in."""

    def test_flood_does_not_stall_storage(self):
        hashed = hash_password("secret")
        control_dir = tempfile.TemporaryDirectory()
        self.addCleanup(control_dir.cleanup)
        # The faulty wrapper without rules: no inline reads, so every STATUS
        # goes through the storage workers, as the check did before.
        srv = Server({"u": hashed, "v": hashed}, tls=False, imap=["workers = 2", "loops = 1"],
                     driver=FAULTY_DRIVER,
                     storage=["inner = memory", "control_file = " + os.path.join(control_dir.name, "none")])
        stop = threading.Event()
        socks, lock = [], threading.Lock()
        answers = {"failed": 0}

        def flooder():
            while not stop.is_set():
                try:
                    r = connect(srv.port)
                    with lock:
                        socks.append(r)
                    for _ in range(6):
                        r.send(b"x LOGIN nosuchuser wrongpassword\r\n")
                        if r.until_tagged(b"x")[-1].startswith(b"x NO [AUTHENTICATIONFAILED]"):
                            with lock:
                                answers["failed"] += 1
                    r.close()
                except (OSError, EOFError, AssertionError):
                    pass

        threads = [threading.Thread(target=flooder, daemon=True) for _ in range(40)]
        try:
            u = connect(srv.port)
            u.send(b"a LOGIN u secret\r\n")
            self.assertTrue(u.until_tagged(b"a")[-1].startswith(b"a OK"))
            for t in threads:
                t.start()
            self.assertTrue(srv.wait_log("authentication waits:", timeout=30))
            latencies = []
            for i in range(15):
                start = time.monotonic()
                u.send(b"s%d STATUS INBOX (MESSAGES)\r\n" % i)
                self.assertTrue(u.until_tagged(b"s%d" % i)[-1].startswith(b"s%d OK" % i))
                latencies.append(time.monotonic() - start)
                time.sleep(0.1)
            start = time.monotonic()
            v = connect(srv.port, source=OTHER_ADDRESS)
            v.send(b"b LOGIN v secret\r\n")
            self.assertTrue(v.until_tagged(b"b")[-1].startswith(b"b OK"))
            other_login = time.monotonic() - start
            print("\nLOGIN flood: STATUS max %.3f s, median %.3f s; login from another address %.3f s; "
                  "%d failures answered" % (max(latencies), sorted(latencies)[len(latencies) // 2], other_login,
                                            answers["failed"]), file=sys.stderr)
            # Generous bounds: without the separate pool STATUS took seconds.
            self.assertLess(max(latencies), 2.0)
            self.assertLess(other_login, 10.0)
            self.assertGreater(answers["failed"], 0)
            u.close()
            v.close()
        finally:
            stop.set()
            with lock:
                for r in socks:
                    r.close()
            for t in threads:
                t.join(5)
            srv.stop()


class SlowAndGreedyClients(DaemonCase):
    def test_login_timeout_counts_from_connect(self):
        """One byte a second re-arms no timer: login_timeout ends it."""
        srv = self.server({"u": "{PLAIN}pw"}, imap=["login_timeout = 3"])
        r = connect(srv.port)
        start = time.monotonic()
        got = b""
        with self.assertRaises((EOFError, OSError)):
            for c in b"a LOGIN u pw and some more bytes that never end the line":
                r.send(bytes([c]))
                time.sleep(1)
                r.sock.settimeout(0.01)
                try:
                    chunk = r.sock.recv(4096)
                except socket.timeout:
                    continue
                if not chunk:
                    raise EOFError
                got += chunk
        elapsed = time.monotonic() - start
        self.assertIn(b"* BYE Login timeout", got + r.buf)
        self.assertLess(elapsed, 20)
        self.assertTrue(srv.wait_log("login timeout: not authenticated 3 s after connecting"))
        r.close()
        # A client that logs in in time stays past the deadline.
        r = connect(srv.port)
        r.send(b"a LOGIN u pw\r\n")
        self.assertTrue(r.until_tagged(b"a")[-1].startswith(b"a OK"))
        time.sleep(4)
        r.send(b"b NOOP\r\n")
        self.assertEqual(r.until_tagged(b"b"), [b"b OK NOOP completed."])
        r.close()

    def test_connections_per_address(self):
        srv = self.server({"u": "{PLAIN}pw"}, imap=["max_connections_per_ip = 3"])
        held = [connect(srv.port) for _ in range(3)]
        refused = connect(srv.port, greeting=False)
        self.assertEqual(refused.line(), b"* BYE Too many connections from your address.")
        self.assertTrue(refused.closed())
        self.assertTrue(srv.wait_log("(max_connections_per_ip)"))
        # Another address is not affected.
        other = connect(srv.port, source=OTHER_ADDRESS)
        other.send(b"a LOGIN u pw\r\n")
        self.assertTrue(other.until_tagged(b"a")[-1].startswith(b"a OK"))
        # A connection that ends gives its place back.
        held.pop().close()
        deadline = time.monotonic() + IO_TIMEOUT
        while True:
            r = connect(srv.port, greeting=False)
            line = r.line()
            if line.startswith(b"* OK "):
                break
            r.close()
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        r.send(b"a LOGIN u pw\r\n")
        self.assertTrue(r.until_tagged(b"a")[-1].startswith(b"a OK"))
        for c in held + [r, other, refused]:
            c.close()

    def test_sessions_per_user(self):
        srv = self.server({"u": "{PLAIN}pw", "w": "{PLAIN}pw"}, imap=["max_user_connections = 2"])
        sessions = []
        for i in range(2):
            r = connect(srv.port)
            r.send(b"a LOGIN u pw\r\n")
            self.assertTrue(r.until_tagged(b"a")[-1].startswith(b"a OK"))
            sessions.append(r)
        third = connect(srv.port)
        third.send(b"a LOGIN u pw\r\nb NOOP\r\n")
        self.assertEqual(third.until_tagged(b"a")[-1],
                         b"a NO [LIMIT] Too many connections for this user (max_user_connections=2).")
        self.assertEqual(third.until_tagged(b"b")[-1], b"b OK NOOP completed.")
        self.assertTrue(srv.wait_log("login refused user=u: 2 sessions open (max_user_connections)"))
        # Another user is not affected.
        third.send(b"c LOGIN w pw\r\n")
        self.assertTrue(third.until_tagged(b"c")[-1].startswith(b"c OK"))
        # A session that ends gives its place back.
        sessions[0].send(b"z LOGOUT\r\n")
        self.assertTrue(sessions[0].closed())
        deadline = time.monotonic() + IO_TIMEOUT
        while True:
            r = connect(srv.port)
            r.send(b"a LOGIN u pw\r\n")
            if r.until_tagged(b"a")[-1].startswith(b"a OK"):
                break
            r.close()
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        for c in sessions + [third, r]:
            c.close()


class BadLinesInsideCommands(DaemonCase):
    """A line other than DONE during IDLE, an over-long SASL response: the
    command ends with its own tagged answer and the session goes on."""

    def test_idle_and_authenticate_end_tagged(self):
        srv = self.server({"u": "{PLAIN}pw"}, imap=["max_line = 4096"])
        r = connect(srv.port)
        # An over-long AUTHENTICATE response (1 MB on one line).
        r.send(b"a AUTHENTICATE PLAIN\r\n")
        self.assertEqual(r.line(), b"+ ")
        r.send(b"A" * (1 << 20) + b"\r\nb NOOP\r\n")
        lines = r.until_tagged(b"a")
        self.assertTrue(lines[-1].startswith(b"a BAD "), lines)
        self.assertEqual(r.until_tagged(b"b"), [b"b OK NOOP completed."])
        # A malformed (not base64) response, then a real login.
        cont, lines = r.continued(b"c", b"AUTHENTICATE PLAIN", b"not base64 at all")
        self.assertEqual(cont, b"+ ")
        self.assertTrue(lines[-1].startswith(b"c BAD "))
        r.send(b"d LOGIN u pw\r\ne SELECT INBOX\r\n")
        self.assertTrue(r.until_tagged(b"d")[-1].startswith(b"d OK "))
        self.assertTrue(r.until_tagged(b"e")[-1].startswith(b"e OK "))
        # IDLE, garbage instead of DONE, then DONE (now a bad command) and NOOP.
        cont, lines = r.continued(b"f", b"IDLE", b"GARBAGE")
        self.assertEqual(cont, b"+ idling")
        self.assertEqual(lines[-1], b"f BAD Expected DONE.")
        r.send(b"DONE\r\ng NOOP\r\n")
        lines = r.until_tagged(b"g")
        self.assertEqual(lines[-1], b"g OK NOOP completed.")
        self.assertNotIn(b"Unexpected command", b"\n".join(lines))
        # An over-long line during IDLE too; IDLE then works again.
        cont, lines = r.continued(b"h", b"IDLE", b"X" * 10000)
        self.assertEqual(cont, b"+ idling")
        self.assertTrue(lines[-1].startswith(b"h BAD "))
        r.send(b"i IDLE\r\n")
        self.assertEqual(r.line(), b"+ idling")
        r.send(b"DONE\r\nj NOOP\r\n")
        self.assertEqual(r.until_tagged(b"i")[-1], b"i OK IDLE terminated.")
        self.assertEqual(r.until_tagged(b"j")[-1], b"j OK NOOP completed.")
        r.close()


class StoreRefusesWrites(DaemonCase):
    """A full disk (every write fails, reads work): SELECT still opens the
    mailbox read-write in principle, FETCH works, writes get NO [UNAVAILABLE]."""

    def test_select_without_writes(self):
        srv, faults = self.faulty_server({"u": "{PLAIN}pw"})
        r = connect(srv.port)
        r.send(b"l LOGIN u pw\r\na APPEND INBOX {21+}\r\nSubject: s\r\n\r\nbody\r\n\r\n")
        r.until_tagged(b"l")
        self.assertTrue(r.until_tagged(b"a")[-1].startswith(b"a OK"))
        r.close()
        faults.set("fail writes unavailable")
        r = connect(srv.port)
        r.send(b"l LOGIN u pw\r\ns SELECT INBOX\r\n")
        r.until_tagged(b"l")
        lines = r.until_tagged(b"s")
        self.assertEqual(lines[-1], b"s OK [READ-WRITE] SELECT completed.")
        self.assertIn(b"* 1 EXISTS", lines)
        r.send(b"f FETCH 1 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n")
        lines = r.until_tagged(b"f")
        self.assertEqual(lines[-1], b"f OK FETCH completed.")
        self.assertIn(b"Subject: s", b"\n".join(lines))
        r.send(b"t STORE 1 +FLAGS (\\Flagged)\r\n")
        self.assertTrue(r.until_tagged(b"t")[-1].startswith(b"t NO [UNAVAILABLE]"))
        r.send(b"p APPEND INBOX {5+}\r\nhello\r\n")
        self.assertTrue(r.until_tagged(b"p")[-1].startswith(b"p NO [UNAVAILABLE]"))
        r.send(b"n NOOP\r\nx EXAMINE INBOX\r\n")
        self.assertEqual(r.until_tagged(b"n")[-1], b"n OK NOOP completed.")
        self.assertTrue(r.until_tagged(b"x")[-1].startswith(b"x OK [READ-ONLY]"))
        r.close()
        self.assertIn("cannot claim \\Recent", srv.read_log())
        # The disk has room again: writes work on the same mailbox.
        faults.set("ok")
        r = connect(srv.port)
        r.send(b"l LOGIN u pw\r\ns SELECT INBOX\r\nt STORE 1 +FLAGS (\\Flagged)\r\n")
        self.assertTrue(r.until_tagged(b"s")[-1].startswith(b"s OK [READ-WRITE]"))
        self.assertTrue(r.until_tagged(b"t")[-1].startswith(b"t OK"))
        r.close()


if __name__ == "__main__":
    unittest.main(verbosity=1)
