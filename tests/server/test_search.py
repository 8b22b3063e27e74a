"""SEARCH on header keys through a real aerogramd: FROM, TO, CC, BCC,
SUBJECT and HEADER with encoded words, folded and repeated fields, missing
fields; the same answers whether the search cache holds the messages or
not; and, through the counting driver, that a header search reads no body
and that a repeated one reads nothing at all. Run by `make check-server`
(on the memory driver, and on SQLite with AG_TEST_STORE=sqlite)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from agtest import Session  # noqa: E402
from agtest.case import CountingCase, ServerCase  # noqa: E402

MESSAGES = [
    # 1: encoded words in From and Subject, a folded To
    b"From: =?iso-8859-1?q?Andr=E9?= Pirard <pirard@example.org>\r\n"
    b"To: one@example.org,\r\n"
    b"\ttwo@example.org\r\n"
    b"Subject: =?UTF-8?B?0JjQstCw0L0=?= and\r\n"
    b" =?iso-8859-1?q?caf=E9?= =?iso-8859-1?q?_au_lait?=\r\n"
    b"Date: Fri, 21 Nov 1997 09:55:06 -0600\r\n"
    b"Message-ID: <1@example.org>\r\n"
    b"\r\n"
    b"The tortoise wins.\r\n",
    # 2: two Cc fields, a Bcc, a custom field, a folded Subject
    b"From: Bob <bob@example.net>\r\n"
    b"To: alice@example.org\r\n"
    b"Cc: first@example.org\r\n"
    b"Subject: a long\r\n"
    b" folded subject\r\n"
    b"Cc: second@example.org\r\n"
    b"Bcc: hidden@example.com\r\n"
    b"X-Tracking: ABC-123\r\n"
    b"Date: 1 Jan 2001 00:00 +0000\r\n"
    b"Message-ID: <2@example.org>\r\n"
    b"\r\n"
    b"The hare sleeps. Subject: not a header\r\n",
    # 3: no Subject, To, Cc, Bcc, Date or Message-ID at all
    b"From: carol@example.com\r\n"
    b"\r\n"
    b"From: bob@example.net in the body only\r\n" + b"x" * 2000 + b"\r\n",
]

# (criteria, expected sequence numbers)
CASES = [
    (b"FROM pirard", b"1"),
    (b"FROM PIRARD@EXAMPLE.ORG", b"1"),
    (b"FROM bob", b"2"),          # not 3: that "From:" is in its body
    (b"FROM example", b"1 2 3"),
    (b"TO two@", b"1"),
    (b"TO \"org>, <two\"", b"1"),  # across the fold (each address written back in <>)
    (b"TO alice", b"2"),
    (b"CC first", b"2"),
    (b"CC second", b"2"),
    (b"CC \"orgsecond\"", b""),   # never across two fields
    (b"BCC hidden", b"2"),
    (b"SUBJECT \"long folded\"", b"2"),
    (b"SUBJECT \"CAFE\"", b""),
    (b"SUBJECT \"caf\"", b"1"),
    (b"SUBJECT \"au lait\"", b"1"),
    (b"SUBJECT header", b""),     # 2 says so in its body only
    (b"HEADER Subject \"\"", b"1 2"),
    (b"NOT HEADER Subject \"\"", b"3"),
    (b"HEADER Cc \"\"", b"2"),
    (b"HEADER X-Tracking abc-1", b"2"),
    (b"HEADER x-tracking \"\"", b"2"),
    (b"HEADER Message-ID \"<2@\"", b"2"),
    (b"HEADER Message-ID example", b"1 2"),
    (b"HEADER X-Nowhere \"\"", b""),
    (b"OR FROM carol SUBJECT long", b"2 3"),
    (b"NOT FROM bob", b"1 3"),
    (b"FROM example NOT TO alice", b"1 3"),
    (b"SENTBEFORE 1-Jan-2000", b"1"),
    (b"SENTON 1-Jan-2001", b"2"),
    (b"SENTSINCE 1-Jan-1990", b"1 2"),
    (b"LARGER 1000", b"3"),
    (b"FROM example SMALLER 1000", b"1 2"),
    (b"FROM example TEXT hare", b"2"),
    (b"TEXT tortoise", b"1"),
    (b"SEEN FROM example", b""),
    (b"UNSEEN FROM bob", b"2"),
    (b"2:3 FROM example", b"2 3"),
]

# UTF-8 needles, sent as literals with CHARSET UTF-8.
UTF8_CASES = [
    (b"FROM", "andré", b"1"),
    (b"FROM", "ANDRÉ PIRARD", b"1"),
    (b"SUBJECT", "иван AND CAFÉ", b"1"),
    (b"SUBJECT", "ИВАН", b"1"),
    (b"SUBJECT", "café au lait", b"1"),
]


class Client(Session):
    def search(self, criteria):
        return self.one(b"SEARCH " + criteria, b"SEARCH")

    def search_utf8(self, key, needle):
        data = needle.encode()
        return self.search(b"CHARSET UTF-8 " + key + b" {%d+}\r\n" % len(data) + data)


class HeaderSearch(ServerCase):
    USERS = 6
    Client = Client

    def filled(self, user):
        return self.client(user).fill(b"INBOX", MESSAGES)

    def check_all(self, c, label):
        for criteria, expected in CASES:
            self.assertEqual(c.search(criteria), expected, "%s: SEARCH %r" % (label, criteria))
        for key, needle, expected in UTF8_CASES:
            self.assertEqual(c.search_utf8(key, needle), expected, "%s: SEARCH %r %r" % (label, key, needle))

    def test_every_key_cold_and_warm(self):
        """Each case on a mailbox the cache never saw, then every case
        again with all of them cached: the same answers."""
        c = self.filled(b"u0")
        self.check_all(c, "first")
        self.check_all(c, "again")
        # the cache holds a message by mailbox and id: another session
        # sees the same
        other = self.client(b"u0")
        other.cmd(b"EXAMINE INBOX")
        self.check_all(other, "other session")

    def test_each_key_first(self):
        """Every case as the very first search of its own mailbox, so that
        no other key filled the cache before it."""
        c = self.client(b"u1")
        for i, (criteria, expected) in enumerate(CASES):
            c.fill(b"Box%d" % i, MESSAGES, create=True)
            self.assertEqual(c.search(criteria), expected, "SEARCH %r" % criteria)

    def test_uid_search_and_expunge(self):
        c = self.filled(b"u2")
        self.assertEqual(c.search(b"FROM example"), b"1 2 3")
        c.cmd(b"STORE 1 +FLAGS (\\Deleted)")
        c.cmd(b"EXPUNGE")
        self.assertEqual(c.search(b"FROM example"), b"1 2")
        lines = c.cmd(b"UID SEARCH FROM bob")
        self.assertIn(b"* SEARCH 2", lines)
        c.append(b"INBOX", MESSAGES[0])
        c.cmd(b"NOOP")
        self.assertEqual(c.search(b"FROM pirard"), b"3")

    def test_users_and_mailboxes_are_apart(self):
        """One user's cached fields never answer for another user or mailbox."""
        a = self.filled(b"u3")
        self.assertEqual(a.search(b"FROM pirard"), b"1")
        b = self.client(b"u4")
        b.append(b"INBOX", MESSAGES[2])
        b.cmd(b"SELECT INBOX")
        self.assertEqual(b.search(b"FROM pirard"), b"")
        self.assertEqual(b.search(b"FROM carol"), b"1")
        a.cmd(b"CREATE Other")
        a.append(b"Other", MESSAGES[1])
        a.cmd(b"COPY 1 Other")
        a.cmd(b"SELECT Other")
        self.assertEqual(a.search(b"FROM example"), b"1 2")
        self.assertEqual(a.search(b"FROM pirard"), b"2")


class NoBodyRead(CountingCase):
    """Storage calls of header searches, counted by the wrapper driver (with
    no body cache: which bodies a search reads is what is counted)."""

    Client = Client
    STORAGE = ["body_cache = 0"]

    def search_calls(self, c, criteria):
        """(answer, {op: calls}) of one SEARCH."""
        return self.calls(lambda: c.search(criteria))

    def test_header_search_reads_no_body(self):
        c = self.client(b"u").fill(b"Counted", [MESSAGES[i % 3] for i in range(40)], create=True)
        storage = self.storage_calls

        # first search: summaries only
        answer, d = self.search_calls(c, b"FROM bob")
        self.assertEqual(answer, b" ".join(b"%d" % i for i in range(2, 41, 3)))
        self.assertEqual(d["blob_get"], 0, d)
        # the 40 summaries in one batch read at most (none when the
        # summaries the APPENDs wrote are still in the process's cache)
        self.assertLessEqual(d["row_read"], 1, d)
        # every header key now comes from the cache: no storage call at all
        for criteria in (b"FROM bob", b"SUBJECT caf", b"TO two", b"CC first", b"BCC hidden",
                         b"HEADER Subject \"\"", b"OR FROM carol NOT SUBJECT long", b"SENTON 1-Jan-2001",
                         b"SINCE 1-Jan-2000", b"FROM nobody TEXT hare"):
            answer, d = self.search_calls(c, criteria)
            self.assertEqual(storage(d), 0, (criteria, d))
        # a field no search asked for yet: summaries again, still no body
        answer, d = self.search_calls(c, b"HEADER X-Tracking abc")
        self.assertEqual(answer, b" ".join(b"%d" % i for i in range(2, 41, 3)))
        self.assertEqual(d["blob_get"], 0, d)
        self.assertLessEqual(d["row_read"], 1, d)
        answer, d = self.search_calls(c, b"HEADER X-Tracking abc")
        self.assertEqual(storage(d), 0, d)
        # the size needs the body structure once
        answer, d = self.search_calls(c, b"LARGER 1000")
        self.assertEqual(answer, b" ".join(b"%d" % i for i in range(3, 41, 3)))
        self.assertEqual(d["blob_get"], 0, d)
        answer, d = self.search_calls(c, b"SMALLER 1000")
        self.assertEqual(storage(d), 0, d)
        # a body key reads bodies, but only of messages the header keys let through
        answer, d = self.search_calls(c, b"FROM carol TEXT sleeps")
        self.assertEqual(answer, b"")
        self.assertEqual(d["blob_get"], 1, d)  # one batch, of carol's messages
        answer, d = self.search_calls(c, b"TEXT tortoise")
        self.assertEqual(answer, b" ".join(b"%d" % i for i in range(1, 41, 3)))
        self.assertGreater(d["blob_get"], 0, d)

    def test_flags_decide_before_summaries(self):
        """UNSEEN FROM x on a mailbox where every message is seen reads
        nothing, cache or not."""
        c = self.client(b"u").fill(b"Seen", [(MESSAGES[i % 3], b"\\Seen") for i in range(10)], create=True)
        answer, d = self.search_calls(c, b"UNSEEN FROM bob")
        self.assertEqual(answer, b"")
        self.assertEqual(self.storage_calls(d), 0, d)
        answer, d = self.search_calls(c, b"SEEN FROM bob")
        self.assertEqual(answer, b"2 5 8")
        self.assertEqual(d["blob_get"], 0, d)


# FROM, TO, CC and BCC match the addresses as Dovecot writes them back
# after parsing (comments dropped, "user@host (Name)" read as "Name
# <user@host>", groups kept), SUBJECT the subject with each run of blanks
# as one space; HEADER matches the field as written.
ADDRESS_MESSAGES = [
    # 1: comments inside the address
    b"From: <user-from (comment)@ (comment) domain.org>\r\n"
    b"To: user-to@domain.org (RealTo)\r\n\r\nbody\r\n",
    # 2: a group with members, and an empty group
    b"From: RealFrom <user-from@domain.org>\r\n"
    b"To: groupname: groupuser1@domain.org, groupuser2@domain.org;,\r\n"
    b"  groupname2:;\r\n\r\nbody\r\n",
    # 3: two addresses, an encoded display name
    b"From: user-from1@domain.org, user-from2@domain.org\r\n"
    b"Cc: =?utf-8?q?Andr=C3=A9?= <andre@domain.org>\r\n\r\nbody\r\n",
    # 4: blanks in the subject (SUBJECT compresses them, HEADER does not)
    b"Subject: \t tab\there  and\t\tthere\r\n\r\nbody\r\n",
]

ADDRESS_CASES = [
    (b"FROM user-from@domain.org", b"1 2"),
    (b"FROM comment", b""),                     # comments are dropped...
    (b"HEADER From comment", b"1"),             # ...but HEADER sees the text
    (b"HEADER From user-from@domain.org", b"2"),
    (b"TO realto", b"1"),                       # the trailing comment is the name
    (b"TO \"realto <user-to@\"", b"1"),
    (b"TO groupname", b"2"),
    (b"TO groupname2", b"2"),
    (b"TO groupuser2", b"2"),
    (b"FROM user-from2", b"3"),
    (b"FROM \"org>, <user-from2\"", b"3"),   # each address in <>, as Dovecot writes
    (b"CC \"andre@\"", b"3"),
    (b"HEADER From \"\"", b"1 2 3"),
    (b"HEADER \"From:addr\" \"\"", b""),       # not a field name
    (b"HEADER \"Fr:om\" \"\"", b""),
    (b"SUBJECT \"tab here and there\"", b"4"),
    (b"HEADER Subject \"here  and\"", b"4"),
    (b"SUBJECT \"here  and\"", b""),
]


class AddressSearch(ServerCase):
    USERS = 2
    Client = Client

    def test_address_keys(self):
        c = self.client(b"u0").fill(b"INBOX", ADDRESS_MESSAGES)
        for label in ("cold", "cached"):
            for criteria, expected in ADDRESS_CASES:
                self.assertEqual(c.search(criteria), expected, "%s: SEARCH %r" % (label, criteria))
            self.assertEqual(c.search_utf8(b"CC", "ANDRÉ <andre@"), b"3", label)
            self.assertEqual(c.search_utf8(b"FROM", "realfrom"), b"2", label)


if __name__ == "__main__":
    unittest.main(verbosity=2)
