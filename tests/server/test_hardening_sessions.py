"""Hardening of sessions against hostile or unlucky clients: password
checks that cannot crowd out storage work, slow and greedy clients that
cannot hold every slot, bad lines inside IDLE and AUTHENTICATE, and a store
that refuses writes. Run by `make check-server`."""
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aerogramd_fixture import FAULTY_DRIVER, Raw, Server  # noqa: E402


def connect(port):
    r = Raw(port)
    greeting = r.line()
    assert greeting.startswith(b"* OK "), greeting
    return r


class BadLinesInsideCommands(unittest.TestCase):
    """A line other than DONE during IDLE, an over-long SASL response: the
    command ends with its own tagged answer and the session goes on."""

    def test_idle_and_authenticate_end_tagged(self):
        srv = Server({"u": "{PLAIN}pw"}, tls=False, imap=["max_line = 4096"])
        try:
            r = connect(srv.port)
            # An over-long AUTHENTICATE response (1 MB on one line).
            r.send(b"a AUTHENTICATE PLAIN\r\n")
            self.assertEqual(r.line(), b"+ ")
            r.send(b"A" * (1 << 20) + b"\r\nb NOOP\r\n")
            lines = r.until_tagged(b"a")
            self.assertTrue(lines[-1].startswith(b"a BAD "), lines)
            self.assertEqual(r.until_tagged(b"b"), [b"b OK NOOP completed."])
            # A malformed (not base64) response, then a real login.
            r.send(b"c AUTHENTICATE PLAIN\r\n")
            self.assertEqual(r.line(), b"+ ")
            r.send(b"not base64 at all\r\n")
            self.assertTrue(r.until_tagged(b"c")[-1].startswith(b"c BAD "))
            r.send(b"d LOGIN u pw\r\ne SELECT INBOX\r\n")
            self.assertTrue(r.until_tagged(b"d")[-1].startswith(b"d OK "))
            self.assertTrue(r.until_tagged(b"e")[-1].startswith(b"e OK "))
            # IDLE, garbage instead of DONE, then DONE (now a bad command) and NOOP.
            r.send(b"f IDLE\r\n")
            self.assertEqual(r.line(), b"+ idling")
            r.send(b"GARBAGE\r\n")
            self.assertEqual(r.until_tagged(b"f")[-1], b"f BAD Expected DONE.")
            r.send(b"DONE\r\ng NOOP\r\n")
            lines = r.until_tagged(b"g")
            self.assertEqual(lines[-1], b"g OK NOOP completed.")
            self.assertNotIn(b"Unexpected command", b"\n".join(lines))
            # An over-long line during IDLE too; IDLE then works again.
            r.send(b"h IDLE\r\n")
            self.assertEqual(r.line(), b"+ idling")
            r.send(b"X" * 10000 + b"\r\n")
            self.assertTrue(r.until_tagged(b"h")[-1].startswith(b"h BAD "))
            r.send(b"i IDLE\r\n")
            self.assertEqual(r.line(), b"+ idling")
            r.send(b"DONE\r\nj NOOP\r\n")
            self.assertEqual(r.until_tagged(b"i")[-1], b"i OK IDLE terminated.")
            self.assertEqual(r.until_tagged(b"j")[-1], b"j OK NOOP completed.")
            r.close()
        finally:
            srv.stop()


class StoreRefusesWrites(unittest.TestCase):
    """A full disk (every write fails, reads work): SELECT still opens the
    mailbox read-write in principle, FETCH works, writes get NO [UNAVAILABLE]."""

    def test_select_without_writes(self):
        control_dir = tempfile.TemporaryDirectory()
        self.addCleanup(control_dir.cleanup)
        control = os.path.join(control_dir.name, "faults")
        srv = Server({"u": "{PLAIN}pw"}, tls=False, driver=FAULTY_DRIVER,
                     storage=["inner = memory", "control_file = " + control])
        try:
            r = connect(srv.port)
            r.send(b"l LOGIN u pw\r\na APPEND INBOX {21+}\r\nSubject: s\r\n\r\nbody\r\n\r\n")
            r.until_tagged(b"l")
            self.assertTrue(r.until_tagged(b"a")[-1].startswith(b"a OK"))
            r.close()
            with open(control, "w") as f:
                f.write("fail writes unavailable\n")
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
            with open(control, "w") as f:
                f.write("ok\n")
            os.utime(control, (1000, 1000))
            r = connect(srv.port)
            r.send(b"l LOGIN u pw\r\ns SELECT INBOX\r\nt STORE 1 +FLAGS (\\Flagged)\r\n")
            self.assertTrue(r.until_tagged(b"s")[-1].startswith(b"s OK [READ-WRITE]"))
            self.assertTrue(r.until_tagged(b"t")[-1].startswith(b"t OK"))
            r.close()
        finally:
            srv.stop()


if __name__ == "__main__":
    unittest.main(verbosity=1)
