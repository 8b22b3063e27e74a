"""CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267) through a real aerogramd:
RETURN (PARTIAL x:y) for SEARCH and SORT, RETURN (UPDATE) with the ADDTO and
REMOVEFROM it sends as the mailbox changes (from the session itself or
another one, during NOOP and IDLE), CANCELUPDATE, the NOUPDATE limit, the
contexts' end when the mailbox is left, and malformed commands (BAD, the
connection goes on). The RFC's examples are replayed on a mailbox built to
match them; a client that applies every update it is sent is then compared,
after many random changes, with what a fresh search answers. Run by
`make check-server` (memory and SQLite)."""
import os
import random
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from agtest import Session  # noqa: E402
from agtest.case import DaemonCase, ServerCase  # noqa: E402


def message(n, subject=None):
    subject = subject if subject is not None else "message %d" % n
    return (b"From: someone@example.org\r\nSubject: %s\r\nDate: 1 Mar 2000 10:00 +0000\r\n\r\nBody %d.\r\n"
            % (subject.encode(), n))


def expand(text):
    """The numbers of a sequence set, in the order written."""
    out = []
    for part in text.split(b","):
        if b":" in part:
            a, b = (int(x) for x in part.split(b":"))
            out.extend(range(min(a, b), max(a, b) + 1))
        else:
            out.append(int(part))
    return out


class Client(Session):
    def uid_list(self):
        lines = self.cmd(b"UID SEARCH ALL")
        return [int(x) for x in lines[0].split()[2:]]


UPDATE_RE = re.compile(rb'^\* ESEARCH \(TAG "([^"]+)"\)( UID)? (.*)$')


def updates(line):
    """(tag, uid, [(ADDTO|REMOVEFROM, position, [numbers])]) of an update line."""
    m = UPDATE_RE.match(line)
    assert m, line
    items = []
    rest = m.group(3)
    for name, body in re.findall(rb"(ADDTO|REMOVEFROM) \(([^)]*)\)", rest):
        words = body.split(b" ")
        assert len(words) % 2 == 0, line
        for i in range(0, len(words), 2):
            items.append((name, int(words[i]), expand(words[i + 1])))
    assert items, line
    return m.group(1), bool(m.group(2)), items


class Mirror:
    """What a client holds of one context: the result list, kept up to date
    from the ESEARCH updates and, for message numbers, the EXPUNGEs, exactly
    as RFC 5267 4.3 says a client processes them. Positions are checked: a
    REMOVEFROM at position p must find its numbers there."""

    def __init__(self, tag, numbers, uid, sorted_):
        self.tag, self.list, self.uid, self.sorted = tag, list(numbers), uid, sorted_

    def apply(self, line, test):
        if not self.uid:
            m = re.match(rb"^\* (\d+) EXPUNGE$", line)
            if m:
                n = int(m.group(1))
                self.list = [x - 1 if x > n else x for x in self.list if x != n]
                return
        if not line.startswith(b'* ESEARCH (TAG "' + self.tag + b'")'):
            return
        tag, uid, items = updates(line)
        test.assertEqual(uid, self.uid, line)
        for name, pos, nums in items:
            if not self.sorted:
                test.assertEqual(pos, 0, line)  # SEARCH: mailbox order
            if name == b"REMOVEFROM":
                if pos == 0:
                    for n in nums:
                        test.assertIn(n, self.list, line)
                        self.list.remove(n)
                else:
                    test.assertEqual(self.list[pos - 1:pos - 1 + len(nums)], nums, (line, self.list))
                    del self.list[pos - 1:pos - 1 + len(nums)]
            else:
                for n in nums:
                    test.assertNotIn(n, self.list, line)
                if pos == 0:
                    self.list = sorted(self.list + nums)
                else:
                    test.assertLessEqual(pos - 1, len(self.list), line)
                    self.list[pos - 1:pos - 1] = nums


class Context(ServerCase):
    USERS = 20
    Client = Client

    def filled(self, user, count, flags=None, subject=None):
        return self.client(user).fill(b"INBOX", [(message(i, subject(i) if subject else None),
                                                  (flags or {}).get(i, b"")) for i in range(1, count + 1)])

    def test_capabilities(self):
        c = self.client(b"u0")
        caps = c.capabilities()
        for name in (b"CONTEXT=SEARCH", b"CONTEXT=SORT", b"ESORT", b"ESEARCH"):
            self.assertIn(name, caps)

    def test_partial(self):
        """RFC 5267 4.4: the results at positions x..y, in mailbox order for
        SEARCH and in sort order for SORT; ranges are normalised; past the
        end there are fewer results, or NIL."""
        c = self.filled(b"u1", 5, subject=lambda i: "s%d" % (6 - i))
        self.assertEqual(c.esearch(b"SEARCH RETURN (PARTIAL 1:1) ALL"), b"PARTIAL (1:1 1)")
        self.assertEqual(c.esearch(b"SEARCH RETURN (PARTIAL 4:2) ALL"), b"PARTIAL (2:4 2:4)")
        self.assertEqual(c.esearch(b"SEARCH RETURN (PARTIAL 1:6) ALL"), b"PARTIAL (1:6 1:5)")
        self.assertEqual(c.esearch(b"SEARCH RETURN (PARTIAL 6:6) ALL"), b"PARTIAL (6:6 NIL)")
        self.assertEqual(c.esearch(b"SEARCH RETURN (PARTIAL 1:4294967295) 2,4"), b"PARTIAL (1:4294967295 2,4)")
        self.assertEqual(c.esearch(b"SEARCH RETURN (PARTIAL 2:3 COUNT MIN) 1:2,4:5"),
                         b"MIN 1 PARTIAL (2:3 2,4) COUNT 4")
        self.assertEqual(c.esearch(b"SEARCH RETURN (PARTIAL 1:3) DELETED"), b"PARTIAL (1:3 NIL)")
        uids = c.uid_list()
        self.assertEqual(c.esearch(b"UID SEARCH RETURN (PARTIAL 2:2) ALL"), b"UID PARTIAL (2:2 %d)" % uids[1])
        # SORT: in sort order (subjects s5..s1, so SUBJECT reverses the mailbox)
        self.assertEqual(c.esearch(b"SORT RETURN (PARTIAL 2:4) (SUBJECT) US-ASCII ALL"), b"PARTIAL (2:4 4,3,2)")
        self.assertEqual(c.esearch(b"SORT RETURN (PARTIAL 1:9) (REVERSE SUBJECT) US-ASCII ALL"),
                         b"PARTIAL (1:9 1:5)")
        self.assertEqual(c.esearch(b"UID SORT RETURN (PARTIAL 5:5) (SUBJECT) UTF-8 ALL"),
                         b"UID PARTIAL (5:5 %d)" % uids[0])
        self.assertEqual(c.esearch(b"SORT RETURN (PARTIAL 7:8) (SUBJECT) UTF-8 ALL"), b"PARTIAL (7:8 NIL)")
        # CONTEXT alone is a hint: RETURN (CONTEXT) is RETURN ()
        self.assertEqual(c.esearch(b"SEARCH RETURN (CONTEXT) 2:3"), b"ALL 2:3")

    def test_rfc5267_examples(self):
        """Sections 4.2 to 4.3.5: COUNT with CONTEXT, the PARTIAL walk, an
        updating search (tag reuse refused), ADDTO when flags change, the
        NOUPDATE refusal, REMOVEFROM on an expunge, CANCELUPDATE."""
        junk = {i: b"$Junk" for i in (3, 5, 8)}
        junk.update({i: b"\\Deleted $Junk" for i in (9, 10)})
        a = self.filled(b"u2", 30, flags=junk)
        # A01: 30 messages, 2 deleted, 3 more junk
        self.assertEqual(a.esearch(b"SEARCH RETURN (CONTEXT COUNT) UNDELETED UNKEYWORD $Junk", b"A01"),
                         b"COUNT 25")
        uids = a.uid_list()
        rest = [u for i, u in enumerate(uids, 1) if i not in junk]
        a.send(b"A02 UID SEARCH RETURN (PARTIAL 20:30) UNDELETED UNKEYWORD $Junk\r\n"
               b"A03 UID SEARCH RETURN (PARTIAL 1:5) UNDELETED UNKEYWORD $Junk\r\n"
               b"A04 UID SEARCH RETURN (PARTIAL 26:30) UNDELETED UNKEYWORD $Junk\r\n")
        lines = a.until_tagged(b"A04")
        self.assertIn(b'* ESEARCH (TAG "A02") UID PARTIAL (20:30 %d:%d)' % (rest[19], rest[24]), lines)
        self.assertIn(b'* ESEARCH (TAG "A03") UID PARTIAL (1:5 %d:%d,%d,%d:%d)'
                      % (rest[0], rest[1], rest[2], rest[3], rest[4]), lines)
        self.assertIn(b'* ESEARCH (TAG "A04") UID PARTIAL (26:30 NIL)', lines)
        # B01: an updating search; the tag cannot be used again for one
        self.assertEqual(a.esearch(b"UID SEARCH RETURN (UPDATE COUNT) DELETED KEYWORD $Junk", b"B01"),
                         b"UID COUNT 2")
        status, lines = a.status(b"SORT RETURN (UPDATE) (DATE) UTF-8 FLAGGED", b"B01")
        self.assertEqual(status, b"BAD")
        # messages 23 and 24 become deleted junk: ADDTO after their FETCHes
        lines = a.cmd(b"STORE 23:24 +FLAGS (\\Deleted $Junk)")
        self.assertEqual(lines[-2], b'* ESEARCH (TAG "B01") UID ADDTO (0 %d:%d)' % (uids[22], uids[23]))
        self.assertTrue(all(b"FETCH" in l for l in lines[:-2]), lines)
        # B02: past the limit of ten contexts, NOUPDATE, and the COUNT all the same
        for i in range(9):
            a.esearch(b"SEARCH RETURN (UPDATE) UNSEEN", b"X%d" % i)
        lines = a.cmd(b"UID SORT RETURN (UPDATE COUNT) (DATE) UTF-8 KEYWORD $Junk", b"B02")
        self.assertEqual(lines[:2], [b'* ESEARCH (TAG "B02") UID COUNT 7',
                                     b'* NO [NOUPDATE "B02"] Too many contexts, no updates will follow.'])
        # REMOVEFROM before the EXPUNGE; the refused B02 and the UNSEEN ones say nothing
        b = self.client(b"u2")
        b.cmd(b"SELECT INBOX")
        b.cmd(b"UID EXPUNGE %d" % uids[22])
        lines = a.cmd(b"NOOP", b"B03")
        self.assertEqual(lines, [b'* ESEARCH (TAG "B01") UID REMOVEFROM (0 %d)' % uids[22]]
                         + [b'* ESEARCH (TAG "X%d") REMOVEFROM (0 23)' % i for i in range(9)]
                         + [b"* 23 EXPUNGE", b"B03 OK NOOP completed."])
        # B04: cancelled, then silent; its tag may be used again
        self.assertIn(b"B04 OK", a.cmd(b'CANCELUPDATE "B01"', b"B04")[-1])
        b.cmd(b"STORE 1 +FLAGS (\\Deleted $Junk \\Seen)")
        lines = a.cmd(b"NOOP")
        self.assertFalse([l for l in lines if b'"B01"' in l], lines)
        self.assertEqual(len([l for l in lines if b"REMOVEFROM (0 1)" in l]), 9, lines)
        self.assertEqual(a.esearch(b"UID SEARCH RETURN (UPDATE COUNT) DELETED", b"B01"), b"UID COUNT 4")

    def test_two_sessions(self):
        """A keeps an updating search by message numbers; B changes flags,
        appends and expunges. A hears of it at its next NOOP: REMOVEFROM
        before the EXPUNGE (old numbers), ADDTO after the EXISTS."""
        a = self.filled(b"u3", 5)
        b = self.client(b"u3")
        b.cmd(b"SELECT INBOX")
        self.assertEqual(a.esearch(b"SEARCH RETURN (UPDATE ALL) UNSEEN", b"S1"), b"ALL 1:5")
        b.cmd(b"STORE 2 +FLAGS (\\Seen)")
        self.assertEqual(a.cmd(b"NOOP")[:2], [b'* ESEARCH (TAG "S1") REMOVEFROM (0 2)',
                                              b"* 2 FETCH (FLAGS (\\Seen \\Recent))"])
        b.append(b"INBOX", message(6))
        lines = a.cmd(b"NOOP")
        self.assertLess(lines.index(b"* 6 EXISTS"), lines.index(b'* ESEARCH (TAG "S1") ADDTO (0 6)'))
        b.cmd(b"STORE 3 +FLAGS (\\Deleted)")
        b.cmd(b"EXPUNGE")
        self.assertEqual(a.cmd(b"NOOP")[:2], [b'* ESEARCH (TAG "S1") REMOVEFROM (0 3)', b"* 3 EXPUNGE"])
        # an append and an expunge told together: numbers before, then after
        b.cmd(b"STORE 1 +FLAGS (\\Deleted)")
        b.cmd(b"EXPUNGE")
        b.append(b"INBOX", message(7))
        lines = a.cmd(b"NOOP")
        self.assertEqual(lines[0], b'* ESEARCH (TAG "S1") REMOVEFROM (0 1)')
        self.assertEqual(lines[1], b"* 1 EXPUNGE")
        self.assertEqual(lines[2], b"* 5 EXISTS")
        self.assertEqual(lines[-2], b'* ESEARCH (TAG "S1") ADDTO (0 5)')
        self.assertEqual(a.esearch(b"SEARCH RETURN (ALL) UNSEEN"), b"ALL 2:5")
        # FLAGS.SILENT of A itself: no FETCH, but the context moves
        lines = a.cmd(b"STORE 2 +FLAGS.SILENT (\\Seen)")
        self.assertEqual(lines[0], b'* ESEARCH (TAG "S1") REMOVEFROM (0 2)')

    def test_during_idle(self):
        """Updates come during IDLE, with the EXISTS and FETCHes."""
        a = self.filled(b"u4", 3)
        b = self.client(b"u4")
        b.cmd(b"SELECT INBOX")
        self.assertEqual(a.esearch(b"UID SEARCH RETURN (UPDATE) FLAGGED", b"I1"), b"UID")
        uids = a.uid_list()
        a.send(b"i2 IDLE\r\n")
        self.assertTrue(a.line().startswith(b"+ "))
        b.cmd(b"STORE 2 +FLAGS (\\Flagged)")
        self.assertEqual(a.line(), b"* 2 FETCH (FLAGS (\\Flagged \\Recent))")
        self.assertEqual(a.line(), b'* ESEARCH (TAG "I1") UID ADDTO (0 %d)' % uids[1])
        a.send(b"DONE\r\n")
        self.assertEqual(a.until_tagged(b"i2"), [b"i2 OK IDLE terminated."])

    def test_sort_positions(self):
        """A SORT context tells where results go: REMOVEFROM and ADDTO at
        their positions in the sort order."""
        subjects = {1: "d", 2: "b", 3: "e", 4: "a", 5: "c"}
        a = self.filled(b"u5", 5, subject=lambda i: subjects[i])
        b = self.client(b"u5")
        b.cmd(b"SELECT INBOX")
        # by subject: 4 (a), 2 (b), 5 (c), 1 (d), 3 (e)
        self.assertEqual(a.esearch(b"SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 UNSEEN", b"O1"), b"ALL 4,2,5,1,3")
        b.cmd(b"STORE 5,1 +FLAGS (\\Seen)")
        self.assertIn(b'* ESEARCH (TAG "O1") REMOVEFROM (3 5,1)', a.cmd(b"NOOP"))
        b.cmd(b"STORE 1 -FLAGS (\\Seen)")
        self.assertIn(b'* ESEARCH (TAG "O1") ADDTO (3 1)', a.cmd(b"NOOP"))
        b.append(b"INBOX", message(6, "aa"))
        lines = a.cmd(b"NOOP")
        self.assertLess(lines.index(b"* 6 EXISTS"), lines.index(b'* ESEARCH (TAG "O1") ADDTO (2 6)'))
        b.cmd(b"STORE 4 +FLAGS (\\Deleted)")
        b.cmd(b"EXPUNGE")
        self.assertEqual(a.cmd(b"NOOP")[:2], [b'* ESEARCH (TAG "O1") REMOVEFROM (1 4)', b"* 4 EXPUNGE"])
        self.assertEqual(a.esearch(b"SORT RETURN (ALL) (SUBJECT) UTF-8 UNSEEN"), b"ALL 5,2,1,3")

    def test_sequence_numbers_are_fixed(self):
        """Sequence numbers in the search program name the messages they
        named when the command came (RFC 5267 4.3): an expunge that moves
        another message into "2:3" does not add it."""
        a = self.filled(b"u6", 5)
        b = self.client(b"u6")
        b.cmd(b"SELECT INBOX")
        a.esearch(b"SEARCH RETURN (UPDATE) 2:3 FLAGGED", b"F1")
        b.cmd(b"STORE 1 +FLAGS (\\Deleted)")
        b.cmd(b"EXPUNGE")
        self.assertEqual(a.cmd(b"NOOP")[0], b"* 1 EXPUNGE")
        b.cmd(b"STORE 3 +FLAGS (\\Flagged)")  # the old 4th: not in the program
        self.assertFalse([l for l in a.cmd(b"NOOP") if l.startswith(b"* ESEARCH")])
        b.cmd(b"STORE 2 +FLAGS (\\Flagged)")  # the old 3rd
        self.assertIn(b'* ESEARCH (TAG "F1") ADDTO (0 2)', a.cmd(b"NOOP"))
        # "$" is taken as the UIDs it stood for
        uids = a.uid_list()
        a.cmd(b"UID SEARCH RETURN (SAVE) UID %d" % uids[3])
        a.esearch(b"UID SEARCH RETURN (UPDATE) $ SEEN", b"F2")
        a.cmd(b"UID SEARCH RETURN (SAVE) UID %d" % uids[0])
        lines = a.cmd(b"STORE 1:4 +FLAGS (\\Seen)")
        self.assertIn(b'* ESEARCH (TAG "F2") UID ADDTO (0 %d)' % uids[3], lines)

    def test_contexts_end_with_the_mailbox(self):
        """SELECT, EXAMINE, CLOSE and UNSELECT end every context: no more
        updates, and the tags are free again."""
        a = self.filled(b"u7", 3)
        b = self.client(b"u7")
        b.cmd(b"SELECT INBOX")
        for leave in (b"SELECT INBOX", b"EXAMINE INBOX", b"UNSELECT", b"CLOSE"):
            a.esearch(b"SEARCH RETURN (UPDATE) FLAGGED", b"E1")
            a.esearch(b"SORT RETURN (UPDATE) (ARRIVAL) UTF-8 FLAGGED", b"E2")
            a.cmd(leave)
            if leave in (b"UNSELECT", b"CLOSE"):
                a.cmd(b"SELECT INBOX")
            b.cmd(b"STORE 1:3 +FLAGS (\\Flagged)")
            lines = a.cmd(b"NOOP")
            self.assertFalse([l for l in lines if l.startswith(b"* ESEARCH")], (leave, lines))
            status, lines = a.status(b'CANCELUPDATE "E1"')
            self.assertEqual(status, b"NO", lines)
            b.cmd(b"STORE 1:3 -FLAGS (\\Flagged)")
            a.cmd(b"NOOP")

    def test_bad_syntax(self):
        """Malformed PARTIAL, UPDATE and CANCELUPDATE are BAD, the
        connection goes on; CANCELUPDATE outside a mailbox is BAD too."""
        a = self.client(b"u8")
        self.assertEqual(a.status(b'CANCELUPDATE "x"')[0], b"BAD")
        a.append(b"INBOX", message(1))
        a.cmd(b"SELECT INBOX")
        for text in (b"SEARCH RETURN (PARTIAL 1) ALL", b"SEARCH RETURN (PARTIAL 1:*) ALL",
                     b"SEARCH RETURN (PARTIAL *:1) ALL", b"SEARCH RETURN (PARTIAL 0:2) ALL",
                     b"SEARCH RETURN (PARTIAL 1:2 PARTIAL 1:2) ALL", b"SEARCH RETURN (ALL PARTIAL 1:2) ALL",
                     b"SEARCH RETURN (UPDATE UPDATE) ALL", b"SEARCH RETURN (PARTIAL -1:2) ALL",
                     b"SORT RETURN (PARTIAL 1) (ARRIVAL) US-ASCII ALL",
                     b"SORT RETURN (PARTIAL 1:*) (ARRIVAL) US-ASCII ALL",
                     b"SORT RETURN (PARTIAL *:1) (ARRIVAL) US-ASCII ALL",
                     b"CANCELUPDATE", b"CANCELUPDATE x", b"UID CANCELUPDATE \"x\""):
            status, lines = a.status(text)
            self.assertEqual(status, b"BAD", (text, lines))
        self.assertEqual(a.status(b'CANCELUPDATE "nope"')[0], b"NO")
        # one unknown tag among known ones cancels nothing
        a.esearch(b"SEARCH RETURN (UPDATE) SEEN", b"K1")
        self.assertEqual(a.status(b'CANCELUPDATE "K1" "nope"')[0], b"NO")
        lines = a.cmd(b"STORE 1 +FLAGS (\\Seen)")
        self.assertIn(b'* ESEARCH (TAG "K1") ADDTO (0 1)', lines)
        self.assertIn(b"OK", a.cmd(b'CANCELUPDATE {2+}\r\nK1')[-1])
        self.assertFalse([l for l in a.cmd(b"STORE 1 -FLAGS (\\Seen)") if l.startswith(b"* ESEARCH")])

    def test_mirrors_follow_random_changes(self):
        """Four contexts (SEARCH and SORT, numbers and UIDs) followed through
        random flag changes, appends and expunges from both sessions: a
        client applying every update holds exactly what a fresh search or
        sort answers, positions included."""
        rng = random.Random(5267)
        a = self.filled(b"u9", 12, subject=lambda i: "s%02d" % rng.randrange(8),
                        flags={i: b"\\Seen" for i in range(1, 13, 3)})
        b = self.client(b"u9")
        b.cmd(b"SELECT INBOX")
        programs = [
            (b"C1", b"SEARCH", b"UNSEEN"),
            (b"C2", b"UID SEARCH", b"OR FLAGGED UNSEEN"),
            (b"C3", b"SORT", b"(SUBJECT) UTF-8 UNSEEN"),
            (b"C4", b"UID SORT", b"(REVERSE SUBJECT ARRIVAL) UTF-8 OR FLAGGED NOT SEEN"),
        ]

        def fresh(cmd, program, tag=None):
            data = a.esearch(cmd + b" RETURN (ALL) " + program, tag)
            data = data[len(b"UID "):] if data.startswith(b"UID ") else data
            return expand(data[len(b"ALL "):]) if data else []

        mirrors = []
        for tag, cmd, program in programs:
            data = a.esearch(cmd + b" RETURN (UPDATE ALL) " + program, tag)
            data = data[len(b"UID "):] if data.startswith(b"UID ") else data
            mirrors.append(Mirror(tag, expand(data[len(b"ALL "):]) if data else [], b"UID" in cmd,
                                  b"SORT" in cmd))
        told = 0

        def run(actor, text):
            """A command; what A is told on the way goes to the mirrors."""
            nonlocal told
            lines = actor.cmd(text)
            if actor is a:
                for line in lines:
                    told += line.startswith(b"* ESEARCH")
                    for m in mirrors:
                        m.apply(line, self)

        for step in range(40):
            actor = a if rng.random() < 0.3 else b
            count = len(actor.uid_list())
            what = rng.random()
            if what < 0.5 and count:
                seqs = sorted(rng.sample(range(1, count + 1), rng.randint(1, min(3, count))))
                flag = rng.choice([b"\\Seen", b"\\Flagged"])
                sign = rng.choice([b"+", b"-"])
                run(actor, b"STORE %s %sFLAGS (%s)" % (b",".join(b"%d" % x for x in seqs), sign, flag))
            elif what < 0.75 or count < 4:
                msg = message(100 + step, "s%02d" % rng.randrange(8))
                flags = rng.choice([b"", b"\\Seen", b"\\Flagged"])
                run(actor, b"APPEND INBOX" + (b" (" + flags + b")" if flags else b"")
                    + b" {%d+}\r\n" % len(msg) + msg)
            else:
                victim = rng.randrange(1, count + 1)
                run(actor, b"STORE %d +FLAGS.SILENT (\\Deleted)" % victim)
                run(actor, b"EXPUNGE")
            run(a, b"NOOP")
            for (tag, cmd, program), m in zip(programs, mirrors):
                self.assertEqual(m.list, fresh(cmd, program), (step, tag))
        self.assertGreater(told, 20)



class FailingStore(DaemonCase):
    Client = Client

    def test_context_ends_when_its_search_fails(self):
        """A context whose search cannot run again (the store fails the
        body reads) ends with an untagged NO [NOUPDATE "tag"]; the NOOP and
        the other contexts go on."""
        # (no body cache: the bodies the search needs must come from the store)
        srv, faults = self.faulty_server({"u": "{PLAIN}pw"}, storage=["body_cache = 0"])
        a = self.client(b"u", srv=srv).fill(b"INBOX", [message(i) for i in range(1, 4)])
        b = self.client(b"u", srv=srv)
        b.cmd(b"SELECT INBOX")
        self.assertEqual(a.esearch(b"SEARCH RETURN (UPDATE) BODY nothing", b"N1"), b"")
        self.assertEqual(a.esearch(b"SEARCH RETURN (UPDATE) FLAGGED", b"N2"), b"")
        faults.set("fail blob_get unavailable")
        b.cmd(b"STORE 2 +FLAGS (\\Flagged)")
        lines = a.cmd(b"NOOP")
        self.assertIn(b'* NO [NOUPDATE "N1"] The search could not be run again, no more updates will follow.',
                      lines)
        self.assertIn(b'* ESEARCH (TAG "N2") ADDTO (0 2)', lines)
        faults.set("ok")
        self.assertEqual(a.status(b'CANCELUPDATE "N1"')[0], b"NO")
        self.assertIn(b"OK", a.cmd(b'CANCELUPDATE "N2"')[-1])


if __name__ == "__main__":
    unittest.main()
