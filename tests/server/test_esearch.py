"""ESEARCH (RFC 4731), SEARCHRES (RFC 5182) and WITHIN (RFC 5032) through a
real aerogramd: the RFCs' examples replayed on a mailbox built to match
them, then the hard cases (an empty result, RETURN (SAVE) alone, "$" after
an expunge, in every command that takes a set, after a failed SEARCH and
after the mailbox is left). Run by `make check-server` (memory and SQLite)."""
import os
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from agtest import Session, Server  # noqa: E402
from agtest.case import ServerCase  # noqa: E402
from agtest.counts import COUNTING_DRIVER, counting_storage  # noqa: E402


def message(n, sender="someone@example.org"):
    return (b"From: %s\r\nSubject: message %d\r\nDate: 1 Mar 2000 10:00 +0000\r\n\r\nBody %d.\r\n"
            % (sender.encode(), n, n))


class Client(Session):
    def untagged(self, text, prefix):
        return [l for l in self.cmd(text) if l.upper().startswith(prefix)]

    def search(self, text):
        return self.one(text, b"SEARCH")

    def uids(self, text):
        """UIDs named by the FETCH responses of a command."""
        out = []
        for l in self.cmd(text):
            if l.startswith(b"* ") and b" FETCH " in l and b"UID " in l:
                out.append(int(l.split(b"UID ")[1].split(b")")[0].split(b" ")[0]))
        return out


class Esearch(ServerCase):
    USERS = 12
    Client = Client

    def filled(self, user, count, flagged=()):
        return self.client(user).fill(b"INBOX", [
            (message(i, "smith@example.org" if i == 3 else "someone@example.org"),
             b"\\Flagged" if i in flagged else b"") for i in range(1, count + 1)])

    def test_capabilities(self):
        caps = self.client(b"u0").capabilities()
        for name in (b"ESEARCH", b"SEARCHRES", b"WITHIN"):
            self.assertIn(name, caps)

    def test_rfc4731_examples(self):
        """RFC 4731 section 3.1: FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"
        matches 2, 10 and 11 here (3 is flagged but from Smith)."""
        c = self.filled(b"u1", 12, flagged=(2, 3, 10, 11))
        crit = b'FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"'
        self.assertEqual(c.esearch(b"SEARCH RETURN (MIN COUNT) " + crit), b"MIN 2 COUNT 3")
        self.assertEqual(c.esearch(b"SEARCH RETURN () " + crit), b"ALL 2,10:11")
        self.assertEqual(c.esearch(b"SEARCH RETURN (MAX MIN ALL COUNT) " + crit),
                         b"MIN 2 MAX 11 ALL 2,10:11 COUNT 3")
        # UID SEARCH says UID, numbers are UIDs: expunging 1 keeps them
        c.cmd(b"STORE 1 +FLAGS.SILENT (\\Deleted)")
        c.cmd(b"EXPUNGE")
        self.assertEqual(c.esearch(b"UID SEARCH RETURN (MIN MAX) " + crit), b"UID MIN 2 MAX 11")
        self.assertEqual(c.esearch(b"SEARCH RETURN (MIN MAX) " + crit), b"MIN 1 MAX 10")
        self.assertEqual(c.esearch(b"UID SEARCH RETURN (ALL) 1:*"), b"UID ALL 2:12")
        # RFC 4731 3.1: nothing matched: MIN, MAX and ALL left out, COUNT 0
        self.assertEqual(c.esearch(b"SEARCH RETURN (MIN MAX ALL) SUBJECT nowhere"), b"")
        self.assertEqual(c.esearch(b"UID SEARCH RETURN (COUNT MIN) SUBJECT nowhere"), b"UID COUNT 0")
        # a plain SEARCH still answers with * SEARCH
        self.assertEqual(c.search(b"SEARCH " + crit), b"1 9 10")

    def test_esearch_bad_syntax(self):
        c = self.filled(b"u2", 2)
        for text in (b"SEARCH RETURN (FOO) ALL", b"SEARCH RETURN MIN ALL", b"SEARCH RETURN (MIN ALL",
                     b"SEARCH RETURN (MIN)", b"SEARCH OLDER 0", b"SEARCH YOUNGER -5", b"FETCH $$ FLAGS",
                     b"FETCH 1,$ FLAGS"):
            lines, tag = c.tagged(text)
            self.assertTrue(lines[-1].startswith(tag + b" BAD"), (text, lines))
        self.assertEqual(c.search(b"SEARCH ALL"), b"1 2")  # the connection lives

    def test_rfc5182_examples(self):
        """RFC 5182 section 2.1's example, then $ in each command."""
        c = self.filled(b"u3", 12, flagged=(2, 3, 10, 11))
        lines = c.cmd(b'SEARCH RETURN (SAVE) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"')
        # SAVE alone: no untagged SEARCH or ESEARCH at all
        self.assertEqual([l for l in lines if l.startswith(b"* ")], [])
        self.assertEqual(c.uids(b"FETCH $ (UID INTERNALDATE FLAGS RFC822.SIZE)"), [2, 10, 11])
        self.assertEqual(c.uids(b"UID FETCH $ (UID)"), [2, 10, 11])
        # RFC 5182 example 4 of 3: a search in the saved result
        self.assertEqual(c.esearch(b"UID SEARCH RETURN (SAVE ALL) 11:* $"), b"UID ALL 11")
        self.assertEqual(c.uids(b"UID FETCH $ (FLAGS)"), [11])
        # SAVE with MIN and MAX but no ALL or COUNT keeps just those two
        self.assertEqual(c.esearch(b"SEARCH RETURN (SAVE MIN MAX) FLAGGED"), b"MIN 2 MAX 11")
        self.assertEqual(c.uids(b"FETCH $ (UID)"), [2, 11])
        c.cmd(b"SEARCH RETURN (SAVE MIN) FLAGGED")
        self.assertEqual(c.uids(b"FETCH $ (UID)"), [2])
        c.cmd(b"SEARCH RETURN (SAVE MAX) FLAGGED")
        self.assertEqual(c.uids(b"FETCH $ (UID)"), [11])
        # with COUNT it keeps every match
        self.assertEqual(c.esearch(b"SEARCH RETURN (SAVE COUNT MIN) FLAGGED"), b"MIN 2 COUNT 4")
        self.assertEqual(c.uids(b"FETCH $ (UID)"), [2, 3, 10, 11])
        # $ as a search key, in NOT and OR
        self.assertEqual(c.search(b"SEARCH NOT $ 1:5"), b"1 4 5")
        self.assertEqual(c.search(b"UID SEARCH OR $ UID 12"), b"2 3 10 11 12")
        self.assertEqual(c.search(b"SEARCH UID $ NOT 3"), b"2 10 11")

    def test_saved_result_in_store_copy_move_expunge(self):
        c = self.filled(b"u4", 6)
        c.cmd(b"CREATE Other")
        c.cmd(b"CREATE Third")
        c.cmd(b"SEARCH RETURN (SAVE) 2:4")
        stored = c.untagged(b"STORE $ +FLAGS (\\Answered)", b"* ")
        self.assertEqual(len(stored), 3, stored)
        self.assertEqual(c.search(b"SEARCH ANSWERED"), b"2 3 4")
        c.cmd(b"UID STORE $ -FLAGS.SILENT (\\Answered)")
        self.assertEqual(c.search(b"SEARCH ANSWERED"), b"")
        lines = c.cmd(b"COPY $ Other")
        self.assertIn(b"COPYUID", lines[-1])
        c.cmd(b"UID COPY $ Third")
        for box in (b"Other", b"Third"):
            st = c.untagged(b"STATUS %s (MESSAGES)" % box, b"* STATUS")
            self.assertIn(b"MESSAGES 3", st[0])
        # expunged messages drop out of $ (RFC 5182 2.1), the rest follow
        c.cmd(b"STORE 3 +FLAGS.SILENT (\\Deleted)")
        c.cmd(b"EXPUNGE")
        self.assertEqual(c.uids(b"FETCH $ (UID)"), [2, 4])
        self.assertEqual(c.search(b"SEARCH $"), b"2 3")  # sequence numbers now
        c.cmd(b"MOVE $ Other")
        self.assertEqual(c.search(b"SEARCH ALL"), b"1 2 3")
        self.assertEqual(c.uids(b"FETCH $ (UID)"), [])
        c.cmd(b"UID SEARCH RETURN (SAVE) UID 6")
        c.cmd(b"UID STORE $ +FLAGS.SILENT (\\Deleted)")
        c.cmd(b"UID EXPUNGE $")
        self.assertEqual(c.uids(b"FETCH 1:* (UID)"), [1, 5])

    def test_failed_search_and_leaving_the_mailbox(self):
        c = self.filled(b"u5", 4)
        c.cmd(b"SEARCH RETURN (SAVE) 1:2")
        self.assertEqual(c.uids(b"FETCH $ (UID)"), [1, 2])
        # BAD (syntax) leaves the saved result as it was (RFC 5182 2.1)
        lines, tag = c.tagged(b"SEARCH RETURN (SAVE) NOSUCHKEY")
        self.assertTrue(lines[-1].startswith(tag + b" BAD"), lines)
        self.assertEqual(c.uids(b"FETCH $ (UID)"), [1, 2])
        # NO empties it
        lines, tag = c.tagged(b"SEARCH RETURN (SAVE) CHARSET KOI8-R 1:3")
        self.assertTrue(lines[-1].startswith(tag + b" NO [BADCHARSET"), lines)
        self.assertEqual(c.uids(b"FETCH $ (UID)"), [])
        self.assertEqual(c.search(b"SEARCH $"), b"")
        # SELECT, EXAMINE, CLOSE and UNSELECT each empty it
        for leave in (b"UNSELECT", b"CLOSE", b"EXAMINE INBOX", b"SELECT INBOX"):
            c.cmd(b"SEARCH RETURN (SAVE) 1:2")
            self.assertEqual(c.uids(b"FETCH $ (UID)"), [1, 2])
            c.cmd(leave)
            if leave in (b"UNSELECT", b"CLOSE"):
                lines, tag = c.tagged(b"FETCH $ (UID)")
                self.assertTrue(lines[-1].startswith(tag + b" BAD"), lines)  # no mailbox
                c.cmd(b"SELECT INBOX")
            self.assertEqual(c.uids(b"FETCH $ (UID)"), [], leave)
        # one session's result is not another's
        c.cmd(b"SEARCH RETURN (SAVE) 1:4")
        other = self.client(b"u5")
        other.cmd(b"SELECT INBOX")
        self.assertEqual(other.uids(b"FETCH $ (UID)"), [])
        self.assertEqual(c.uids(b"FETCH $ (UID)"), [1, 2, 3, 4])

    def test_within(self):
        """RFC 5032: OLDER and YOUNGER by internal date against the server's
        clock. The messages are 2 and 10 days old, or just made, and the
        bounds are days apart from each, whatever the machine's speed."""
        now = time.time()

        def days_ago(d):
            return time.strftime("%d-%b-%Y %H:%M:%S +0000", time.gmtime(now - d * 86400)).encode()

        c = self.client(b"u6").fill(b"INBOX", [(message(1), b"", days_ago(10)), message(2),
                                                (message(3), b"", days_ago(2)), message(4)])
        day = 86400
        self.assertEqual(c.search(b"SEARCH OLDER %d" % day), b"1 3")
        self.assertEqual(c.search(b"SEARCH YOUNGER %d" % day), b"2 4")
        self.assertEqual(c.search(b"SEARCH NOT YOUNGER %d" % day), b"1 3")
        self.assertEqual(c.search(b"SEARCH YOUNGER %d" % (5 * day)), b"2 3 4")
        self.assertEqual(c.search(b"SEARCH OLDER %d" % (5 * day)), b"1")
        self.assertEqual(c.search(b"SEARCH OLDER %d YOUNGER %d" % (day, 5 * day)), b"3")
        self.assertEqual(c.search(b"SEARCH YOUNGER 4294967295"), b"1 2 3 4")
        self.assertEqual(c.esearch(b"SEARCH RETURN (COUNT) OLDER 4294967295"), b"COUNT 0")
        self.assertEqual(c.search(b"SEARCH OR YOUNGER %d OLDER %d" % (day, 5 * day)), b"1 2 4")
        # an internal date in the future is younger than any interval
        c.append(b"INBOX", message(5), date=days_ago(-2))
        c.cmd(b"NOOP")
        self.assertEqual(c.search(b"SEARCH YOUNGER 1 5"), b"5")
        self.assertEqual(c.search(b"SEARCH OLDER 1 5"), b"")
        # the same through UID SEARCH and the saved result
        c.cmd(b"UID SEARCH RETURN (SAVE) YOUNGER %d" % (5 * day))
        self.assertEqual(c.uids(b"FETCH $ (UID)"), [2, 3, 4, 5])


class StoreReads(unittest.TestCase):
    """On a driver without local reads a SEARCH that needs summaries is
    first tried on the event loop, refused by the engine and run again on
    a worker: the thrown-away attempt must neither save nor empty the
    result, which "$" in that same SEARCH reads."""

    def test_saved_result_survives_the_retry(self):
        with tempfile.TemporaryDirectory(prefix="aerogram-esearch-test-") as tmp:
            # SQLite underneath whatever the run's store: the messages
            # outlive the first daemon, so that the second one holds none
            # of their summaries in memory
            _, storage = counting_storage(tmp, "sqlite")
            srv = Server({"u": "{PLAIN}pw"}, tls=False, driver=COUNTING_DRIVER, storage=storage)
            try:
                c = Client(srv.port, b"u")
                for i in range(1, 7):
                    c.append(b"INBOX", message(i, "smith@example.org" if i % 2 else "jones@example.org"))
                c.close()
            finally:
                srv.stop()
            srv = Server({"u": "{PLAIN}pw"}, tls=False, driver=COUNTING_DRIVER, storage=storage)
            try:
                c = Client(srv.port, b"u")
                c.cmd(b"SELECT INBOX")
                c.cmd(b"SEARCH RETURN (SAVE) 2:5")
                # each of these reads summaries the daemon does not hold yet
                self.assertEqual(c.esearch(b"SEARCH RETURN (SAVE ALL) $ FROM smith"), b"ALL 3,5")
                self.assertEqual(c.uids(b"FETCH $ (UID)"), [3, 5])
                self.assertEqual(c.esearch(b"UID SEARCH RETURN (SAVE COUNT) OR $ SUBJECT \"message 6\""),
                                 b"UID COUNT 3")
                self.assertEqual(c.uids(b"UID FETCH $ (UID)"), [3, 5, 6])
                c.close()
            finally:
                srv.stop()


if __name__ == "__main__":
    unittest.main()
