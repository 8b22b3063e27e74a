"""Pipelined commands through a real aerogramd: every command answered, in
order, and input that waits behind a command in flight costs no loop turns.

The daemon logs, when a connection closes, how many socket callbacks the
event loop ran for it and how many times it set TCP_QUICKACK; the busy-loop
tests bound those counts (not times). Run by `make check-server`."""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from agtest.case import DaemonCase, ServerCase, numbered_users  # noqa: E402


def message(n, size):
    head = b"From: a@example.org\r\nSubject: message %d\r\n\r\n" % n
    return head + b"x" * (size - len(head) - 2) + b"\r\n"


def append_commands(count, size, tag=b"a"):
    """`count` APPENDs with LITERAL+ literals of `size` bytes, as one burst."""
    return b"".join(b"%s%d APPEND INBOX {%d+}\r\n%s\r\n" % (tag, i, size, message(i, size))
                    for i in range(count))


class Pipelining(ServerCase):
    USERS = {"u": "{PLAIN}pw"}

    def tagged_lines(self, r, count, last_tag):
        lines = r.until_tagged(last_tag)
        tagged = [l for l in lines if not l.startswith(b"* ")]
        self.assertEqual(len(tagged), count, tagged[:5])
        return tagged

    def test_pipelined_noops_answer_in_order(self):
        r = self.login("u")
        # Authenticated state: NOOP is answered on the event loop.
        r.send(b"".join(b"n%d NOOP\r\n" % i for i in range(300)))
        tagged = self.tagged_lines(r, 300, b"n299")
        self.assertEqual(tagged, [b"n%d OK NOOP completed." % i for i in range(300)])
        # Selected state: NOOP asks the mail engine for changes (a worker).
        r.send(b"s SELECT INBOX\r\n" + b"".join(b"m%d NOOP\r\n" % i for i in range(300)))
        self.assertTrue(r.until_tagged(b"s")[-1].startswith(b"s OK "))
        tagged = self.tagged_lines(r, 300, b"m299")
        self.assertEqual(tagged, [b"m%d OK NOOP completed." % i for i in range(300)])

    def test_pipelined_appends_answer_in_order(self):
        r = self.login("u")
        r.send(b"c CREATE Burst\r\n")
        self.assertTrue(r.until_tagged(b"c")[-1].startswith(b"c OK"))
        count, size = 64, 20000
        burst = append_commands(count, size).replace(b"APPEND INBOX", b"APPEND Burst")
        # More than the daemon's input buffer holds: most of it waits in the
        # kernel while the first commands run.
        r.send(burst + b"z NOOP\r\n")
        tagged = self.tagged_lines(r, count + 1, b"z")
        uids = []
        for i, line in enumerate(tagged[:count]):
            m = re.match(rb"^a(\d+) OK \[APPENDUID (\d+) (\d+)\] APPEND completed\.$", line)
            self.assertIsNotNone(m, line)
            self.assertEqual(int(m.group(1)), i)
            uids.append(int(m.group(3)))
        self.assertEqual(uids, list(range(1, count + 1)))
        self.assertEqual(tagged[-1], b"z OK NOOP completed.")
        # Each UID holds the message of its command.
        r.send(b"s SELECT Burst\r\nf UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n")
        r.until_tagged(b"s")
        subjects = [l for l in r.until_tagged(b"f") if l.startswith(b"Subject: ")]
        self.assertEqual(subjects, [b"Subject: message %d" % i for i in range(count)])


def counters(srv, user):
    """(commands, wakeups, quick ACKs) from the line logged when `user`'s connection closed."""
    assert srv.wait_log("disconnected user=%s " % user), srv.read_log()[-2000:]
    m = re.search(r"disconnected user=%s after (\d+) commands(?: \(tls\))? \((\d+) wakeups, (\d+) quick ACKs, \d+ inline(?:; loop \d+)?\)" % user,
                  srv.read_log())
    assert m is not None, srv.read_log()[-2000:]
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


class InputWaitsWithoutBusyLoop(DaemonCase):
    """While a command runs, the input behind it must not wake the loop.

    Each storage call is slowed down (the fault-injecting driver) so that the
    APPENDs run long while a burst larger than the daemon's input buffer
    waits: a loop that kept reading or re-running its read callback meanwhile
    would count thousands of wakeups per command. The bounds are counts, many
    times what a correct daemon needs (a handful per APPEND)."""

    def setUp(self):
        self.srv, _ = self.faulty_server(numbered_users(3), faults="delay blob_put,row_insert 10", tls=True)

    def run_burst(self, user, count, size, tls=False):
        r = self.login(user, tls=tls)
        # The answers are small: they wait in the socket buffers while
        # the burst is written.
        r.send(append_commands(count, size) + b"z LOGOUT\r\n")
        tagged = [l for l in r.until_tagged(b"z") if not l.startswith(b"* ")]
        self.assertEqual(len(tagged), count + 1)
        self.assertTrue(all(b" OK [APPENDUID " in l for l in tagged[:count]), tagged[:3])
        self.assertTrue(r.closed())
        r.close()
        return counters(self.srv, user)

    def test_pipelined_appends_wake_the_loop_a_bounded_number_of_times(self):
        count = 32
        commands, wakeups, quick_acks = self.run_burst("u0", count, 20000)
        self.assertEqual(commands, count + 2)
        self.assertLess(wakeups, 50 * count, "event loop wakeups for %d APPENDs" % count)
        self.assertLess(quick_acks, 5 * count, "TCP_QUICKACK calls for %d APPENDs" % count)

    def test_same_over_tls(self):
        count = 32
        commands, wakeups, quick_acks = self.run_burst("u1", count, 20000, tls=True)
        self.assertEqual(commands, count + 2)
        self.assertLess(wakeups, 50 * count, "event loop wakeups for %d APPENDs over TLS" % count)
        self.assertLess(quick_acks, 5 * count)


if __name__ == "__main__":
    unittest.main(verbosity=1)
