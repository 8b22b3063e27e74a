"""CATENATE (RFC 4469) through a real aerogramd: the RFC's first example
(a draft rebuilt from its own HEADER, 1.MIME and 1 sections and another
message, around new TEXT parts), URLs relative to the selected mailbox,
PARTIAL, percent-encoded mailbox names, CATENATE with MULTIAPPEND, plain
literals and LITERAL+; every kind of bad URL gets NO [BADURL "url"] and
adds nothing, a missing destination NO [TRYCREATE] first, a result over
max_message NO [TOOBIG]; the source keeps its flags; malformed CATENATE
gets BAD and the connection lives. Run by `make check-server`, on the
memory and the SQLite driver."""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from agtest import Raw, Server  # noqa: E402

USERS = {"u": "{PLAIN}pw", "other": "{PLAIN}pw"}

DRAFT = (b"From: Bob <bar@example.org>\r\n"
         b"Subject: About our holiday trip\r\n"
         b"MIME-Version: 1.0\r\n"
         b"Content-Type: multipart/mixed; boundary=\"sep\"\r\n"
         b"\r\n"
         b"--sep\r\n"
         b"Content-Type: text/plain\r\n"
         b"\r\n"
         b"Old text of the draft.\r\n"
         b"--sep\r\n"
         b"Content-Type: application/x-zip-compressed\r\n"
         b"Content-Transfer-Encoding: base64\r\n"
         b"\r\n"
         b"UEsDBAoAAAAAAA==\r\n"
         b"--sep--\r\n")
DRAFT_HEADER = DRAFT[:DRAFT.index(b"\r\n\r\n") + 4]
PART1_MIME = b"Content-Type: text/plain\r\n\r\n"
PART1 = b"Old text of the draft."
OTHER = b"Subject: attachment\r\n\r\nThe new attachment.\r\n"


class Client(Raw):
    def body(self, tag, seq):
        """BODY.PEEK[] of message `seq` of the selected mailbox."""
        self.send(b"%s FETCH %d BODY.PEEK[]\r\n" % (tag, seq))
        head = self.line()
        m = re.match(rb"\* %d FETCH \(BODY\[\] \{(\d+)\}$" % seq, head)
        assert m, head
        data = self.exact(int(m.group(1)))
        assert self.line() == b")"
        assert self.line().startswith(tag + b" OK")
        return data


class Catenate(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(USERS, tls=False, imap=["max_message = 8192"])
        r = cls.login(cls.srv)
        r.send(b"c1 CREATE Drafts\r\nc2 CREATE \"Caf&AOk- au lait\"\r\n")
        r.until_tagged(b"c2")
        cls.uids = {}
        for tag, box, msg in ((b"a1", b"Drafts", DRAFT), (b"a2", b"Drafts", OTHER),
                              (b"a3", b"\"Caf&AOk- au lait\"", OTHER)):
            r.send(b"%s APPEND %s {%d+}\r\n" % (tag, box, len(msg)) + msg + b"\r\n")
            last = r.until_tagged(tag)[-1]
            m = re.match(rb"%s OK \[APPENDUID (\d+) (\d+)\]" % tag, last)
            assert m, last
            cls.uidvalidity = int(m.group(1))
            cls.uids[tag] = int(m.group(2))
        r.close()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    @staticmethod
    def login(srv, user=b"u"):
        r = Client(srv.port)
        r.line()
        r.send(b"l LOGIN %s pw\r\n" % user)
        last = r.until_tagged(b"l")[-1]
        assert last.startswith(b"l OK ") and b" CATENATE" in last, last
        return r

    def connect(self):
        r = self.login(self.srv)
        self.addCleanup(r.close)
        return r

    def fresh_box(self, r, name):
        r.send(b"c CREATE %s\r\n" % name)
        self.assertTrue(r.until_tagged(b"c")[-1].startswith(b"c OK"))

    def count(self, r, box):
        r.send(b"st STATUS %s (MESSAGES)\r\n" % box)
        lines = r.until_tagged(b"st")
        return int(re.search(rb"MESSAGES (\d+)", lines[0]).group(1))

    def sync_append(self, r, tag, head, parts):
        """APPEND `head` then the CATENATE parts, each ("TEXT", bytes) as a
        synchronising literal (waiting for "+") or ("URL", str); returns
        the tagged line."""
        r.send(b"%s APPEND %s CATENATE (" % (tag, head))
        for i, (kind, value) in enumerate(parts):
            sep = b"" if i == 0 else b" "
            if kind == "TEXT":
                r.send(sep + b"TEXT {%d}\r\n" % len(value))
                self.assertTrue(r.line().startswith(b"+ "))
                r.send(value)
            else:
                r.send(sep + b"URL \"%s\"" % value.encode())
        r.send(b")\r\n")
        return r.until_tagged(tag)[-1]

    def test_rfc_example_1(self):
        r = self.connect()
        self.fresh_box(r, b"Ex1")
        v, d, o = self.uidvalidity, self.uids[b"a1"], self.uids[b"a2"]
        text1 = b"--sep\r\n"
        text2 = b"\r\n--sep\r\n"
        text3 = b"\r\n--sep--\r\n"
        last = self.sync_append(r, b"A003", b"Ex1 (\\Seen \\Draft $MDNSent)", [
            ("URL", "/Drafts;UIDVALIDITY=%d/;UID=%d/;section=HEADER" % (v, d)),
            ("TEXT", text1),
            ("URL", "/Drafts;UIDVALIDITY=%d/;UID=%d/;section=1.MIME" % (v, d)),
            ("URL", "/Drafts;UIDVALIDITY=%d/;UID=%d/;section=1" % (v, d)),
            ("TEXT", text2),
            ("URL", "/Drafts;UIDVALIDITY=%d/;UID=%d" % (v, o)),
            ("TEXT", text3)])
        self.assertTrue(last.startswith(b"A003 OK [APPENDUID "), last)
        r.send(b"s SELECT Ex1\r\n")
        r.until_tagged(b"s")
        self.assertEqual(r.body(b"f", 1), DRAFT_HEADER + text1 + PART1_MIME + PART1 + text2 + OTHER + text3)
        r.send(b"g FETCH 1 FLAGS\r\n")
        self.assertIn(b"\\Draft", r.until_tagged(b"g")[0])
        # the source was not marked \Seen (RFC 4469 3)
        r.send(b"s2 EXAMINE Drafts\r\nf2 FETCH 1 FLAGS\r\n")
        lines = r.until_tagged(b"f2")
        self.assertNotIn(b"\\Seen", [l for l in lines if b"FETCH" in l][0])

    def test_relative_to_selected_and_partial(self):
        r = self.connect()
        r.send(b"s SELECT Drafts\r\n")
        r.until_tagged(b"s")
        n = self.count(r, b"Drafts")
        d = self.uids[b"a1"]
        r.send(b"a APPEND Drafts CATENATE (URL \";UID=%d/;SECTION=HEADER\" URL \"/;UID=%d/;PARTIAL=0.3\" "
               b"TEXT {4+}\r\nxyz\n URL \"/Drafts/;uid=%d/;section=1;partial=4\")\r\n" % (d, d, d))
        last = r.until_tagged(b"a")[-1]
        # ";partial" must follow a "/": the whole URL is refused, nothing added
        self.assertTrue(last.startswith(b"a NO [BADURL \"/Drafts/;uid=%d/;section=1;partial=4\"]" % d), last)
        r.send(b"a2 APPEND Drafts CATENATE (URL \";UID=%d/;SECTION=HEADER\" URL \"/;UID=%d/;PARTIAL=0.3\" "
               b"TEXT {4+}\r\nxyz\n URL \"/Drafts/;uid=%d/;section=1/;partial=4\" "
               b"URL \"/Drafts/;uid=%d/;section=1/;partial=4.3\")\r\n" % (d, d, d, d))
        lines = r.until_tagged(b"a2")
        self.assertTrue(lines[-1].startswith(b"a2 OK [APPENDUID "), lines)
        self.assertIn(b"* %d EXISTS" % (n + 1), lines)
        # (a bare LF goes out as CRLF, as FETCH sends every stored message)
        self.assertEqual(r.body(b"f", n + 1), DRAFT_HEADER + b"Fro" + b"xyz\r\n" + PART1[4:] + PART1[4:7])

    def test_encoded_mailbox_name(self):
        r = self.connect()
        self.fresh_box(r, b"Enc")
        u = self.uids[b"a3"]
        for tag, name in ((b"a1", "Caf%C3%A9%20au%20lait"), (b"a2", "Caf&AOk-%20au%20lait")):
            r.send(b"%s APPEND Enc CATENATE (URL \"/%s/;UID=%d\")\r\n" % (tag, name.encode(), u))
            last = r.until_tagged(tag)[-1]
            self.assertTrue(last.startswith(tag + b" OK"), last)
        r.send(b"s SELECT Enc\r\n")
        r.until_tagged(b"s")
        self.assertEqual(r.body(b"f", 1), OTHER)
        self.assertEqual(r.body(b"g", 2), OTHER)

    def test_multiappend_mixing_forms(self):
        r = self.connect()
        self.fresh_box(r, b"Multi")
        d, o = self.uids[b"a1"], self.uids[b"a2"]
        r.send(b"m APPEND Multi CATENATE (URL \"/Drafts/;UID=%d/;SECTION=HEADER\" TEXT {5+}\r\nbody1) "
               b"(\\Flagged) {5}\r\n" % d)
        self.assertTrue(r.line().startswith(b"+ "))
        r.send(b"body2 CATENATE (URL \"/Drafts/;UID=%d\") CATENATE (TEXT ~{3+}\r\nb\x003)\r\n" % o)
        last = r.until_tagged(b"m")[-1]
        self.assertTrue(re.match(rb"m OK \[APPENDUID \d+ 1:4\]", last), last)
        r.send(b"s SELECT Multi\r\n")
        r.until_tagged(b"s")
        self.assertEqual(r.body(b"f1", 1), DRAFT_HEADER + b"body1")
        self.assertEqual(r.body(b"f2", 2), b"body2")
        self.assertEqual(r.body(b"f3", 3), OTHER)
        r.send(b"b FETCH 4 BINARY.PEEK[]\r\n")
        self.assertEqual(r.line(), b"* 4 FETCH (BINARY[] ~{3}")
        self.assertEqual(r.exact(3), b"b\x003")

    def test_bad_urls_add_nothing(self):
        r = self.connect()
        self.fresh_box(r, b"Bad")
        v, d = self.uidvalidity, self.uids[b"a1"]
        bad = ["/Drafts;UIDVALIDITY=%d/;UID=%d" % (v + 1, d),         # another UIDVALIDITY
               "/Drafts/;UID=999999",                                 # no such message
               "/NoSuchBox/;UID=1",                                   # no such mailbox
               "/Drafts/;UID=%d/;SECTION=1.FOO" % d,                  # no such section
               "/Drafts/;UID=%d/;URLAUTH=anonymous:internal:x" % d,   # URLAUTH is not for CATENATE
               "/Drafts/;UID=%d/;PARTIAL=x" % d,
               "imap://u@localhost/Drafts/;UID=%d" % d,               # absolute: not this session's
               "//localhost/Drafts/;UID=%d" % d,
               ";UID=%d" % d,                                         # relative, nothing selected
               "/Drafts/;UID=0",
               "/Drafts",
               "/Dr%%ZZafts/;UID=%d" % d]
        for i, url in enumerate(bad):
            tag = b"b%d" % i
            r.send(b"%s APPEND Bad CATENATE (TEXT {3+}\r\nabc URL \"%s\" URL \"/Drafts/;UID=999\")\r\n" %
                   (tag, url.encode()))
            last = r.until_tagged(tag)[-1]
            # the first URL that failed is named
            self.assertEqual(last, tag + b" NO [BADURL \"%s\"] CATENATE: the URL names no message or part of "
                             b"this user." % url.encode(), url)
        self.assertEqual(self.count(r, b"Bad"), 0)
        # MULTIAPPEND is all or nothing
        r.send(b"m APPEND Bad {1+}\r\nx CATENATE (URL \"/Drafts/;UID=999999\")\r\n")
        self.assertTrue(r.until_tagged(b"m")[-1].startswith(b"m NO [BADURL "))
        self.assertEqual(self.count(r, b"Bad"), 0)

    def test_other_users_mail_is_out_of_reach(self):
        # "other" has no Drafts: the same URL names nothing for that user
        r = self.login(self.srv, b"other")
        self.addCleanup(r.close)
        r.send(b"a APPEND INBOX CATENATE (URL \"/Drafts/;UID=%d\")\r\n" % self.uids[b"a1"])
        self.assertTrue(r.until_tagged(b"a")[-1].startswith(b"a NO [BADURL "))
        self.assertEqual(self.count(r, b"INBOX"), 0)

    def test_missing_destination_is_trycreate(self):
        r = self.connect()
        r.send(b"a APPEND Nowhere CATENATE (URL \"/Drafts;UIDVALIDITY=1/;UID=1\" TEXT {1+}\r\nx)\r\n")
        self.assertTrue(r.until_tagged(b"a")[-1].startswith(b"a NO [TRYCREATE]"))

    def test_too_big(self):
        r = self.connect()
        self.fresh_box(r, b"Big")
        d = self.uids[b"a1"]
        urls = b" ".join(b"URL \"/Drafts/;UID=%d\"" % d for _ in range(8192 // len(DRAFT) + 1))
        r.send(b"a APPEND Big CATENATE (%s)\r\n" % urls)
        self.assertTrue(r.until_tagged(b"a")[-1].startswith(b"a NO [TOOBIG]"))
        self.assertEqual(self.count(r, b"Big"), 0)

    def test_malformed_is_bad(self):
        r = self.connect()
        for i, args in enumerate((b"INBOX CATENATE ()", b"INBOX CATENATE (FOO \"x\")", b"INBOX CATENATE (URL)",
                                  b"INBOX CATENATE (TEXT \"abc\")", b"INBOX CATENATE URL \"/x\"")):
            tag = b"x%d" % i
            r.send(b"%s APPEND %s\r\n" % (tag, args))
            self.assertTrue(r.until_tagged(tag)[-1].startswith(tag + b" BAD "), args)
        r.send(b"n NOOP\r\n")
        self.assertEqual(r.until_tagged(b"n")[-1], b"n OK NOOP completed.")


if __name__ == "__main__":
    unittest.main(verbosity=2)
