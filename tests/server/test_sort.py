"""SORT and THREAD (RFC 5256) and SORT=DISPLAY (RFC 5957) through a real
aerogramd: base subjects (Re:, Fwd:, [blob] prefixes, (fwd) trailers,
RFC 2047 encoded subjects), every sort key with REVERSE and ties, the Date
that falls back to the internal date, search criteria that narrow the set,
UID forms, threads with missing parents, loops in References and duplicate
Message-IDs, expunges in between, the errors, and, through the counting
driver, that neither command reads a body. Run by `make check-server` (on
the memory driver, and on SQLite with AG_TEST_STORE=sqlite)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from agtest import Session  # noqa: E402
from agtest.case import CountingCase, ServerCase  # noqa: E402


def message(headers, body=b"body"):
    return b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body + b"\r\n"


# Subjects and their base subjects (i;ascii-casemap: upper case):
SUBJECTS = [
    b"Subject: b",                                          # 1  B
    b"Subject: Re: a",                                      # 2  A, reply
    b"Subject: [list] Fwd: [other] Re: fw: A (fwd)  (FWD)",  # 3  A, reply
    b"Subject: =?utf-8?q?Re:_c?=",                          # 4  C, reply
    None,                                                   # 5  "" (no Subject)
    b"Subject: [blob]",                                     # 6  [BLOB]: a blob alone stays
    b"Subject: re: [fwd: [fwd: re: [fwd: babylon]]]",       # 7  BABYLON
    b"Subject: Ad: Re: x",                                  # 8  AD: RE: X
    b"Subject: =?iso-8859-1?q?_?=",                         # 9  "" (a blank, encoded)
    b"Subject: _under",                                     # 10 _UNDER: after the letters
    b"Subject: Re:\r\n\tb",                                 # 11 B, reply, folded
    b"Subject: =?iso-8859-1?q?=E9t=E9?=",                   # 12 ÉTÉ: UTF-8 bytes, last
    b"Subject: A",                                          # 13 A
]

# Addresses, dates and sizes: (headers, internal date, body size)
KEYED = [
    ([b"From: Zed <alice@a.org>", b"To: bob@b.org", b"Date: Mon, 1 Jan 2001 10:00:00 +0000"],
     b"05-Jan-2001 00:00:00 +0000", 100),
    ([b"From: bob@b.org", b"To: Alice <zed@z.org>", b"Cc: carol@c.org",
      b"Date: Mon, 1 Jan 2001 11:00:00 +0100"],  # the same instant as 1
     b"04-Jan-2001 00:00:00 +0000", 3000),
    ([b"From: =?iso-8859-1?q?=C1ngel?= <carl@c.org>", b"To: list: dave@d.org, erin@e.org;"],  # no Date
     b"01-Jan-2001 09:00:00 +0000", 2000),
    ([b"From: CARL@x.org", b"Cc: Bob <Bob@b.org>", b"Date: not a date at all"],
     b"01-Jan-2001 12:00:00 +0000", 1000),
]

# (sort criteria, search criteria, expected sequence numbers) on KEYED
SORT_CASES = [
    (b"ARRIVAL", b"ALL", b"3 4 2 1"),
    (b"REVERSE ARRIVAL", b"ALL", b"1 2 4 3"),
    (b"DATE", b"ALL", b"3 1 2 4"),             # 3 and 4: their internal dates
    (b"REVERSE DATE", b"ALL", b"4 1 2 3"),     # 1 and 2 tie: mailbox order still
    (b"FROM", b"ALL", b"1 2 3 4"),             # mailboxes: alice bob carl CARL
    (b"REVERSE FROM", b"ALL", b"3 4 2 1"),
    (b"FROM REVERSE ARRIVAL", b"ALL", b"1 2 4 3"),
    (b"TO", b"ALL", b"4 1 3 2"),               # "", bob, list (a group), zed
    (b"CC", b"ALL", b"1 3 4 2"),               # "", "", Bob, carol
    (b"CC REVERSE SIZE", b"ALL", b"3 1 4 2"),
    (b"SIZE", b"ALL", b"1 4 3 2"),
    (b"REVERSE SIZE", b"ALL", b"2 3 4 1"),
    (b"DISPLAYFROM", b"ALL", b"2 4 1 3"),      # bob@b.org carl@x.org Zed Ángel
    (b"REVERSE DISPLAYFROM", b"ALL", b"3 1 4 2"),
    (b"DISPLAYTO", b"ALL", b"4 2 1 3"),        # "", Alice, bob@b.org, list
    (b"REVERSE ARRIVAL", b"NOT FROM alice", b"2 4 3"),
    (b"SIZE", b"LARGER 1500", b"3 2"),
    (b"DATE", b"2:3", b"3 2"),
    (b"SUBJECT", b"ALL", b"1 2 3 4"),          # all empty: mailbox order
    (b"DATE", b"FROM nobody", b""),
]


class Client(Session):
    def sort(self, criteria, search=b"ALL", charset=b"UTF-8", uid=False):
        return self.one(b"%sSORT (%s) %s %s" % (b"UID " if uid else b"", criteria, charset, search), b"SORT")

    def thread(self, alg, search=b"ALL", uid=False):
        return self.one(b"%sTHREAD %s UTF-8 %s" % (b"UID " if uid else b"", alg, search), b"THREAD")


class Sort(ServerCase):
    USERS = 10
    Client = Client

    def subjects(self, user):
        return self.client(user).fill(b"INBOX", [(message([h] if h else []), b"", b"01-Jan-2001 00:00:00 +0000")
                                                 for h in SUBJECTS])

    def keyed(self, user):
        return self.client(user).fill(b"INBOX", [(message(headers, b"x" * size), b"", date)
                                                 for headers, date, size in KEYED])

    def test_capabilities(self):
        c = self.client(b"u0")
        caps = c.capabilities()
        for cap in (b"SORT", b"SORT=DISPLAY", b"THREAD=ORDEREDSUBJECT", b"THREAD=REFERENCES"):
            self.assertIn(cap, caps)

    def test_sort_subject(self):
        c = self.subjects(b"u1")
        self.assertEqual(c.sort(b"SUBJECT"), b"5 9 2 3 13 8 1 11 7 4 6 10 12")
        self.assertEqual(c.sort(b"REVERSE SUBJECT"), b"12 10 6 4 7 1 11 8 2 3 13 5 9")
        self.assertEqual(c.sort(b"SUBJECT", b"UNSEEN 1:4", b"US-ASCII"), b"2 3 1 4")

    def test_sort_keys(self):
        c = self.keyed(b"u2")
        for crit, search, expected in SORT_CASES:
            self.assertEqual(c.sort(crit, search), expected, "SORT (%r) %r" % (crit, search))
        # the answer does not change once the search cache holds the messages
        c.cmd(b"SEARCH FROM carl")
        self.assertEqual(c.sort(b"REVERSE ARRIVAL", b"FROM carl"), b"4 3")

    def test_saved_result_in_criteria(self):
        """RFC 5182: "$" stands for the saved result in SORT and THREAD criteria too."""
        c = self.keyed(b"u9")
        c.cmd(b"SEARCH RETURN (SAVE) LARGER 1500")  # messages 2 and 3
        self.assertEqual(c.sort(b"SIZE", b"$"), b"3 2")
        self.assertEqual(c.sort(b"ARRIVAL", b"NOT $"), b"4 1")
        self.assertEqual(c.thread(b"ORDEREDSUBJECT", b"$"), b"(3 2)")  # no subjects: one thread, by date

    def test_esort(self):
        """RFC 5267: SORT RETURN answers with ESEARCH in sort order."""
        c = self.keyed(b"u8")
        def esort(ret, crit, search=b"ALL", uid=False):
            lines = c.cmd(b"%sSORT RETURN (%s) (%s) UTF-8 %s" % (b"UID " if uid else b"", ret, crit, search))
            found = [l for l in lines if l.startswith(b"* ESEARCH")]
            return found
        tag = b"t%d" % (c.n + 1)
        self.assertEqual(esort(b"", b"REVERSE SIZE"), [b'* ESEARCH (TAG "%s") ALL 2:4,1' % tag])
        tag = b"t%d" % (c.n + 1)
        self.assertEqual(esort(b"MIN MAX COUNT", b"SIZE"), [b'* ESEARCH (TAG "%s") MIN 1 MAX 2 COUNT 4' % tag])
        tag = b"t%d" % (c.n + 1)
        self.assertEqual(esort(b"ALL", b"DATE", b"FROM nobody"), [b'* ESEARCH (TAG "%s")' % tag])
        c.cmd(b"STORE 1 +FLAGS (\\Deleted)")
        c.cmd(b"EXPUNGE")  # UIDs 2 3 4 are now 1 2 3
        tag = b"t%d" % (c.n + 1)
        self.assertEqual(esort(b"MIN ALL", b"REVERSE ARRIVAL", uid=True),
                         [b'* ESEARCH (TAG "%s") UID MIN 2 ALL 2,4,3' % tag])
        # SAVE: "$" is the set found (the MIN and MAX ones alone without ALL or COUNT)
        self.assertEqual(esort(b"SAVE", b"SIZE", b"LARGER 1500"), [])
        self.assertEqual(c.sort(b"ARRIVAL", b"$"), b"2 1")
        esort(b"SAVE MAX", b"SIZE")
        self.assertEqual(c.sort(b"ARRIVAL", b"$"), b"1")
        # a SORT with a charset it cannot use empties "$"
        c.tagged(b"SORT RETURN (SAVE) (SIZE) KOI8-R ALL")
        self.assertEqual(c.sort(b"ARRIVAL", b"$"), b"")

    def test_uid_sort_after_expunge(self):
        c = self.keyed(b"u3")
        c.cmd(b"STORE 3 +FLAGS (\\Deleted)")
        c.cmd(b"EXPUNGE")
        self.assertEqual(c.sort(b"ARRIVAL"), b"3 2 1")
        self.assertEqual(c.sort(b"ARRIVAL", uid=True), b"4 2 1")
        self.assertEqual(c.sort(b"REVERSE SIZE", b"UID 2:4", uid=True), b"2 4")
        c.append(b"INBOX", message([b"From: aaa@a.org"], b""), date=b"01-Jan-1999 00:00:00 +0000")
        c.cmd(b"NOOP")
        self.assertEqual(c.sort(b"ARRIVAL"), b"4 3 2 1")
        self.assertEqual(c.sort(b"FROM", uid=True), b"5 1 2 4")

    def test_thread_orderedsubject(self):
        c = self.subjects(b"u4")
        # equal dates: each thread under its first message in mailbox order
        self.assertEqual(c.thread(b"ORDEREDSUBJECT"), b"(1 11)(2 (3)(13))(4)(5 9)(6)(7)(8)(10)(12)")
        self.assertEqual(c.thread(b"ORDEREDSUBJECT", b"2:3"), b"(2 3)")
        self.assertEqual(c.thread(b"ORDEREDSUBJECT", b"FROM nobody"), b"")
        # sent dates (Date, else the internal date) order the threads and
        # the messages under them
        c.fill(b"Dated", [(message(headers), b"", date) for headers, date in (
            ([b"Subject: x", b"Date: Mon, 1 Jan 2001 10:00:00 +0000"], b"01-Jan-2001 00:00:00 +0000"),
            ([b"Subject: Re: x"], b"01-Jan-2001 09:00:00 +0000"),
            ([b"Subject: x", b"Date: 1 Jan 2001 08:00 GMT"], b"01-Jan-2001 23:00:00 +0000"),
            ([b"Subject: y", b"Date: Mon, 1 Jan 2001 07:30:00 -0100"], b"01-Jan-2001 00:00:00 +0000"))],
               create=True)
        self.assertEqual(c.thread(b"ORDEREDSUBJECT"), b"(3 (2)(1))(4)")
        self.assertEqual(c.sort(b"DATE"), b"3 4 2 1")

    def test_thread_references_subjects(self):
        """No Message-ID anywhere: only the subjects gather threads, a
        reply under the message of its subject that is not one."""
        c = self.subjects(b"u5")
        self.assertEqual(c.thread(b"REFERENCES"), b"(1 11)(4)(5)(6)(7)(8)(9)(10)(12)(13 (2)(3))")

    def test_thread_references(self):
        c = self.client(b"u6")
        msgs = [
            [b"Message-ID: <1@x>", b"Subject: root"],
            [b"Message-ID: <2@x>", b"In-Reply-To: <1@x>", b"Subject: Re: root"],
            [b"Message-ID: <3@x>", b"References: <1@x>\r\n <2@x>", b"Subject: Re: root"],
            [b"Message-ID: <4@x>", b"References: <missing@x>", b"Subject: orphan a"],
            [b"Message-ID: <5@x>", b"References: <missing@x>", b"Subject: orphan b"],
            [b"Message-ID: <2@x>", b"References: <1@x>", b"Subject: dup"],       # duplicate id
            [b"Message-ID: <7@x>", b"References: <8@x>", b"Subject: loop"],      # 7 and 8 name
            [b"Message-ID: <8@x>", b"References: <7@x>", b"Subject: loop"],      # each other
            [b"Message-ID: <9@x>", b"References: <9@x>", b"Subject: self"],      # itself
            [b"Message-ID: <10@x>", b"References: <1@x> <missing2@x> <3@x>", b"Subject: Re: root"],
            [b"Message-ID: <11@x>", b"Subject: Re: orphan a"],
        ]
        c.fill(b"INBOX", [(message(headers), b"", b"01-Jan-2001 %02d:00:00 +0000" % (i + 1))
                          for i, headers in enumerate(msgs)])
        # 2 and 6 under 1 (6's id is taken: it stands alone); 10 under 3
        # (the link 1 -> missing2 -> 3 is not made: 3 has a parent); the
        # missing parent is a dummy over 4 and 5, where 11 joins by its
        # subject; 8 is not put under 7, which already is under 8
        threads = b"(1 (2 3 10)(6))((4)(5)(11))(8 7)(9)"
        self.assertEqual(c.thread(b"REFERENCES"), threads)
        self.assertEqual(c.thread(b"REFERENCES", uid=True), threads)  # UIDs are 1..11 here
        self.assertEqual(c.thread(b"REFERENCES", b"NOT SUBJECT orphan"), b"(1 (2 3 10)(6))(8 7)(9)")
        self.assertEqual(c.thread(b"REFERENCES", b"1,3"), b"(1 3)")   # the dummy 2 between goes
        self.assertEqual(c.thread(b"REFERENCES", b"4"), b"(4)")  # its dummy parent goes
        # without 2, the message that shares its id takes it and 3 goes under it
        c.cmd(b"STORE 2 +FLAGS (\\Deleted)")
        c.cmd(b"EXPUNGE")
        self.assertEqual(c.thread(b"REFERENCES", uid=True), b"(1 6 3 10)((4)(5)(11))(8 7)(9)")
        self.assertEqual(c.thread(b"REFERENCES"), b"(1 5 2 9)((3)(4)(10))(7 6)(8)")

    def test_errors_keep_the_connection(self):
        c = self.keyed(b"u7")
        lines, tag = c.tagged(b"SORT (DATE) KOI8-R ALL")
        self.assertTrue(lines[-1].startswith(tag + b" NO [BADCHARSET"), lines)
        lines, tag = c.tagged(b"THREAD REFERENCES X-UNKNOWN ALL")
        self.assertTrue(lines[-1].startswith(tag + b" NO [BADCHARSET"), lines)
        for bad in (b"SORT DATE UTF-8 ALL", b"SORT () UTF-8 ALL", b"SORT (DATE FOO) UTF-8 ALL",
                    b"SORT (REVERSE) UTF-8 ALL", b"SORT (DATE) ALL", b"SORT (DATE) UTF-8 NOPE",
                    b"THREAD UTF-8 ALL", b"THREAD FOO UTF-8 ALL", b"THREAD REFERENCES UTF-8",
                    b"UID THREAD ORDEREDSUBJECT UTF-8 ALL)"):
            lines, tag = c.tagged(bad)
            self.assertTrue(lines[-1].startswith(tag + b" BAD"), (bad, lines))
        self.assertEqual(c.sort(b"ARRIVAL"), b"3 4 2 1")
        # not in the selected state
        d = self.client(b"u7")
        lines, tag = d.tagged(b"SORT (DATE) UTF-8 ALL")
        self.assertTrue(lines[-1].startswith(tag + b" BAD") or lines[-1].startswith(tag + b" NO"), lines)
        lines, tag = d.tagged(b"THREAD REFERENCES UTF-8 ALL")
        self.assertTrue(lines[-1].startswith(tag + b" BAD") or lines[-1].startswith(tag + b" NO"), lines)
        d.cmd(b"NOOP")


class NoBodyRead(CountingCase):
    """Storage calls of SORT and THREAD, counted by the wrapper driver."""

    Client = Client

    def answer_calls(self, c, text, name):
        return self.calls(lambda: c.one(text, name))

    def test_no_body_is_read(self):
        def counted(i):
            headers = [b"Message-ID: <%d@x>" % i, b"Subject: %s" % (b"Re: t" if i % 2 else b"t%d" % i)]
            if i % 2:
                headers.append(b"References: <%d@x>" % (i - 1))
            return message(headers, b"y" * (i * 10))
        c = self.client(b"u").fill(b"Counted", [counted(i) for i in range(40)], create=True)
        for text, name in ((b"SORT (SUBJECT REVERSE SIZE) UTF-8 ALL", b"SORT"),
                           (b"SORT (DISPLAYFROM DATE) UTF-8 UNSEEN", b"SORT"),
                           (b"THREAD REFERENCES UTF-8 ALL", b"THREAD"),
                           (b"THREAD ORDEREDSUBJECT UTF-8 ALL", b"THREAD")):
            answer, d = self.answer_calls(c, text, name)
            self.assertTrue(answer, text)
            self.assertEqual(d["blob_get"], 0, (text, d))
        answer, d = self.answer_calls(c, b"THREAD REFERENCES UTF-8 ALL", b"THREAD")
        self.assertEqual(answer, b"".join(b"(%d %d)" % (i, i + 1) for i in range(1, 41, 2)))


if __name__ == "__main__":
    unittest.main(verbosity=2)
