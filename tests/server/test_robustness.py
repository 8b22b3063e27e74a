"""Random mixtures of real commands and malformed bytes, from fixed seeds:
the daemon answers, never crashes, and serves a new client afterwards (a
crash or a sanitizer report fails the test when the daemon stops). Run by
`make check-server`."""
import imaplib
import os
import random
import socket
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from agtest import IO_TIMEOUT, Raw, Server  # noqa: E402
from agtest.case import DaemonCase  # noqa: E402

COMMANDS = [
    b"LOGIN u pw", b"SELECT INBOX", b"EXAMINE INBOX", b"APPEND INBOX {5+}\r\nhello",
    b"APPEND INBOX (\\Seen) {3+}\r\nabc", b"APPEND INBOX {20+}\r\nSubject: s\r\n\r\nbody\r\n",
    b"FETCH 1:* (FLAGS BODY[] BODYSTRUCTURE ENVELOPE)", b"UID FETCH 1:* BODY.PEEK[1.MIME]<0.3>",
    b"FETCH 1 (BODY[HEADER.FIELDS (SUBJECT)] RFC822.SIZE INTERNALDATE)", b"STORE 1 +FLAGS (\\Deleted)",
    b"UID STORE 1:* FLAGS.SILENT (kw \\Seen)", b"EXPUNGE", b"UID EXPUNGE 1:*", b"COPY 1:* Trash",
    b"MOVE 1 Archive", b"SEARCH TEXT x", b"SEARCH OR SEEN (FROM a) NOT LARGER 3", b"IDLE\r\nDONE",
    b"CLOSE", b"UNSELECT", b"LIST \"\" *", b"LSUB \"\" %", b"STATUS INBOX (MESSAGES UNSEEN UIDNEXT)",
    b"CREATE a.b", b"RENAME a.b c", b"DELETE c", b"AUTHENTICATE PLAIN", b"AUTHENTICATE PLAIN AHUAcHc=",
    b"*", b"NOOP", b"CAPABILITY", b"ID NIL", b"ENABLE X", b"NAMESPACE", b"SUBSCRIBE x", b"CHECK",
]
JUNK = [b"(", b")", b"{", b"}", b"{999999999999}", b"{10+}", b"\"", b"\\", b"\x00", b"\xff", b"*", b"%",
        b"[", b"]", b"<", b">", b" ", b"\r\n", b"\r", b"\n", b"1:*", b"0", b"-1", b"{4}\r\n"]


class RandomInput(DaemonCase):
    def run_seed(self, srv, seed, count):
        rnd = random.Random(seed)

        def connect():
            r = Raw(srv.port)
            r.line()
            r.send(b"l LOGIN u pw\r\n")
            return r

        r = connect()
        for i in range(count):
            command = rnd.choice(COMMANDS)
            if rnd.random() < 0.5:
                mangled = bytearray(command)
                for _ in range(rnd.randint(1, 4)):
                    at = rnd.randint(0, len(mangled))
                    mangled[at:at] = rnd.choice(JUNK)
                command = bytes(mangled)
            try:
                r.send(b"t%d " % i + command + b"\r\n")
                if rnd.random() < 0.2:
                    r.send(b"DONE\r\n")
                if i % 5 == 0:
                    # Take what came; a closed connection (too many BADs,
                    # LOGOUT by chance) is replaced.
                    r.sock.settimeout(0.02)
                    while True:
                        chunk = r.sock.recv(1 << 20)
                        if not chunk:
                            raise ConnectionResetError
            except socket.timeout:
                r.sock.settimeout(IO_TIMEOUT)
            except OSError:
                r.close()
                r = connect()
        r.close()
        fresh = Raw(srv.port)
        self.assertTrue(fresh.line().startswith(b"* OK "))
        fresh.send(b"a LOGIN u pw\r\nb SELECT INBOX\r\nc NOOP\r\n")
        self.assertEqual(fresh.until_tagged(b"c")[-1], b"c OK NOOP completed.")
        fresh.close()

    def test_random_commands(self):
        srv = self.server({"u": "{PLAIN}pw"}, imap=["max_message = 4096", "max_line = 1024"])
        for seed in (1, 2, 3):
            self.run_seed(srv, seed, 300)
        self.assertIsNone(srv.proc.poll())


class FailingStoreEverywhere(DaemonCase):
    """Every storage call may fail (before or after it applied): each command
    still gets one tagged answer, a failure is NO [UNAVAILABLE] (or another
    NO code), never a crash or a hang; once the store is back, all is served."""

    WELL_FORMED = [c for c in COMMANDS if c not in (b"IDLE\r\nDONE", b"AUTHENTICATE PLAIN", b"*")]

    def test_random_failures(self):
        srv, faults = self.faulty_server({"u": "{PLAIN}pw"})
        r = self.login("u", srv=srv)
        rnd = random.Random(7)
        rules = ["fail all unavailable 0.3 11", "fail_after_apply row_insert,blob_put 0.5",
                 "fail row_read,blob_get unavailable 0.5 5", "fail all unavailable 0.2 3"]
        seen_unavailable = 0
        for i in range(240):
            if i % 60 == 0:
                faults.set(rules[i // 60])
            command = rnd.choice(self.WELL_FORMED)
            tag = b"t%d" % i
            r.send(tag + b" " + command + b"\r\n")
            last = r.until_tagged(tag)[-1]
            self.assertRegex(last, rb"^t\d+ (OK|NO|BAD) ", command)
            if last.startswith(tag + b" NO"):
                self.assertRegex(last, rb"^t\d+ NO \[[A-Z]+", command)
            seen_unavailable += b"[UNAVAILABLE]" in last
        self.assertGreater(seen_unavailable, 10)
        faults.set("ok")
        r.send(b"a SELECT INBOX\r\nb NOOP\r\nc APPEND INBOX {5+}\r\nhello\r\nd FETCH 1:* (FLAGS)\r\n")
        self.assertTrue(r.until_tagged(b"a")[-1].startswith(b"a OK"))
        self.assertTrue(r.until_tagged(b"b")[-1].startswith(b"b OK"))
        self.assertTrue(r.until_tagged(b"c")[-1].startswith(b"c OK"))
        self.assertTrue(r.until_tagged(b"d")[-1].startswith(b"d OK"))
        r.close()
        # A new client sees the same mailbox as the old one.
        fresh = self.login("u", srv=srv)
        fresh.send(b"b STATUS INBOX (MESSAGES)\r\nc SELECT INBOX\r\n")
        fresh.until_tagged(b"b")
        self.assertTrue(fresh.until_tagged(b"c")[-1].startswith(b"c OK"))
        fresh.close()
        self.assertIsNone(srv.proc.poll())

class Concurrency(unittest.TestCase):
    """Several sessions of one user change one mailbox at once."""

    def test_sessions_on_one_mailbox(self):
        srv = Server({"u": "{PLAIN}pw"}, tls=False)
        errors = []

        def session(n):
            rnd = random.Random(n)
            try:
                m = imaplib.IMAP4("127.0.0.1", srv.port, timeout=IO_TIMEOUT)
                m.login("u", "pw")
                m.select("INBOX")
                for _ in range(40):
                    op = rnd.randrange(6)
                    if op == 0:
                        m.append("INBOX", None, None, b"Subject: from %d\r\n\r\nbody\r\n" % n)
                    elif op == 1:
                        m.uid("FETCH", "1:*", "(FLAGS ENVELOPE)")
                    elif op == 2:
                        ids = m.uid("SEARCH", "ALL")[1][0].split()
                        if ids:
                            m.uid("STORE", rnd.choice(ids), "+FLAGS", "(\\Deleted)")
                    elif op == 3:
                        m.expunge()
                    elif op == 4:
                        ids = m.uid("SEARCH", "ALL")[1][0].split()
                        if ids:
                            m.uid("COPY", ids[0], "Archive")
                    else:
                        m.noop()
                m.logout()
            except Exception as e:  # noqa: BLE001 - reported below with the session number
                errors.append((n, repr(e)))

        try:
            threads = [threading.Thread(target=session, args=(n,)) for n in range(5)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(errors, [])
            # Everyone agrees on the result.
            a = imaplib.IMAP4("127.0.0.1", srv.port, timeout=IO_TIMEOUT)
            a.login("u", "pw")
            count = int(a.select("INBOX")[1][0])
            uids = a.uid("SEARCH", "ALL")[1][0].split()
            self.assertEqual(len(uids), count)
            self.assertEqual(a.status("INBOX", "(MESSAGES)")[1], [b"INBOX (MESSAGES %d)" % count])
            a.logout()
        finally:
            srv.stop()


if __name__ == "__main__":
    unittest.main(verbosity=1)
