"""aerogramd's mail commands through imaplib, on the memory driver: the
mailbox list, APPEND, SELECT, FETCH, STORE, EXPUNGE, COPY, MOVE, IDLE
updates, and a store that fails. Run by `make check-server`."""
import imaplib
import os
import re
import time
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from agtest.case import DaemonCase, ServerCase  # noqa: E402

MESSAGE = (b"From: Alice <alice@example.org>\r\n"
           b"To: bob@example.org\r\n"
           b"Subject: Hello there\r\n"
           b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
           b"Message-ID: <1@example.org>\r\n"
           b"\r\n"
           b"Hi Bob,\r\n"
           b"see you.\r\n")

MULTIPART = (b"From: a@example.org\r\n"
             b"Subject: parts\r\n"
             b"MIME-Version: 1.0\r\n"
             b"Content-Type: multipart/mixed; boundary=XX\r\n"
             b"\r\n"
             b"--XX\r\n"
             b"Content-Type: text/plain; charset=utf-8\r\n"
             b"\r\n"
             b"first part\r\n"
             b"--XX\r\n"
             b"Content-Type: text/html\r\n"
             b"\r\n"
             b"<p>second</p>\r\n"
             b"--XX--\r\n")


class MailTest(ServerCase):
    # One user per test keeps the tests independent on one daemon.
    USERS = 40
    user_counter = 0

    def setUp(self):
        MailTest.user_counter += 1
        self.user = "u%d" % MailTest.user_counter

    def imap(self):
        return super().imap(self.user)

    def raw(self):
        """Logged in as this test's user."""
        return self.login(self.user)

    def test_default_mailboxes_and_hierarchy(self):
        m = self.imap()
        typ, data = m.list()
        self.assertEqual(typ, "OK")
        self.assertEqual(sorted(data), sorted([
            b'(\\HasNoChildren \\Archive) "." Archive', b'(\\HasNoChildren \\Drafts) "." Drafts',
            b'(\\HasNoChildren) "." INBOX', b'(\\HasNoChildren \\Junk) "." Junk',
            b'(\\HasNoChildren \\Sent) "." Sent', b'(\\HasNoChildren \\Trash) "." Trash']))
        self.assertEqual(m.list('""', '""'), ("OK", [b'(\\Noselect) "." ""']))
        self.assertEqual(m.create("Work.Projects.2026")[0], "OK")
        self.assertEqual(m.create("Work.Projects.2026")[0], "NO")
        self.assertIn(b"[ALREADYEXISTS]", m.create("Work.Projects.2026")[1][0])
        typ, data = m.list('""', "Work.%")
        self.assertEqual(data, [b'(\\Noselect \\HasChildren) "." Work.Projects'])
        typ, data = m.list("Work.", "*")
        self.assertEqual(sorted(data), [b'(\\HasNoChildren) "." Work.Projects.2026',
                                        b'(\\Noselect \\HasChildren) "." Work.Projects'])
        self.assertEqual(m.list('""', "inbox"), ("OK", [b'(\\HasNoChildren) "." INBOX']))
        self.assertEqual(m.rename("Work.Projects.2026", "Done")[0], "OK")
        self.assertEqual(m.list('""', "Work*"), ("OK", [None]))
        self.assertEqual(m.list('""', "Done"), ("OK", [b'(\\HasNoChildren) "." Done']))
        self.assertEqual(m.delete("Done")[0], "OK")
        typ, data = m.delete("Done")
        self.assertEqual(typ, "NO")
        self.assertIn(b"[NONEXISTENT]", data[0])
        typ, data = m.delete("INBOX")
        self.assertEqual(typ, "NO")

    def test_names_are_modified_utf7(self):
        m = self.imap()
        self.assertEqual(m.create("&AOk-t&AOk-")[0], "OK")
        self.assertEqual(m.list('""', "&AOk-*"), ("OK", [b'(\\HasNoChildren) "." &AOk-t&AOk-']))
        typ, data = m.create("caf&AOk")
        self.assertEqual(typ, "NO")
        self.assertIn(b"modified UTF-7", data[0])
        m.literal = "caf\u00e9".encode()
        self.assertEqual(m._simple_command("CREATE")[0], "NO")
        self.assertEqual(m.rename("&AOk-t&AOk-", "x&")[0], "NO")
        # LIST-EXTENDED (RFC 5258, tests/server/test_listext.py) is there now
        self.assertEqual(m._simple_command("LIST", "(SUBSCRIBED)", '""', "*")[0], "OK")
        with self.assertRaises(imaplib.IMAP4.error):
            m._simple_command("LIST", "(NOSUCHOPTION)", '""', "*")

    def test_subscriptions(self):
        m = self.imap()
        m.create("Lists")
        self.assertEqual(m.subscribe("Lists")[0], "OK")
        self.assertIn(b'() "." Lists', m.lsub()[1])
        self.assertEqual(m.unsubscribe("Lists")[0], "OK")
        self.assertNotIn(b'() "." Lists', m.lsub()[1])
        # A subscribed child under an unsubscribed parent (RFC 3501 6.3.9).
        m.create("Lists.Dev")
        m.subscribe("Lists.Dev")
        self.assertEqual(m.lsub('""', "Lists%"), ("OK", [b'(\\Noselect) "." Lists']))
        self.assertEqual(m.lsub('""', "Lists*"), ("OK", [b'() "." Lists.Dev']))
        # Deleted but still subscribed: LSUB shows it, LIST does not.
        m.delete("Lists.Dev")
        self.assertEqual(m.lsub('""', "Lists.*"), ("OK", [b'(\\Noselect) "." Lists.Dev']))
        self.assertEqual(m.list('""', "Lists.*"), ("OK", [None]))

    def test_append_status_select_fetch(self):
        m = self.imap()
        typ, data = m.append("INBOX", "(\\Flagged $Work)", '"07-Feb-1994 21:52:25 -0800"', MESSAGE)
        self.assertEqual(typ, "OK")
        self.assertRegex(data[0], rb"^\[APPENDUID \d+ 1\] APPEND completed\.$")
        typ, data = m.append("Nowhere", None, None, MESSAGE)
        self.assertEqual(typ, "NO")
        self.assertIn(b"[TRYCREATE]", data[0])
        m.append("INBOX", None, None, MULTIPART)
        typ, data = m.status("INBOX", "(MESSAGES UIDNEXT UNSEEN RECENT)")
        self.assertEqual(data, [b"INBOX (MESSAGES 2 UIDNEXT 3 UNSEEN 2 RECENT 2)"])
        typ, data = m.select("INBOX")
        self.assertEqual((typ, data), ("OK", [b"2"]))
        self.assertEqual(m.untagged_responses.get("READ-WRITE"), [b""])
        self.assertEqual(m.untagged_responses["UIDNEXT"], [b"3"])
        self.assertEqual(m.untagged_responses["FLAGS"], [b"(\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)"])

        typ, data = m.fetch("1", "(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)")
        self.assertEqual(data, [
            b'1 (UID 1 FLAGS (\\Flagged $Work \\Recent) INTERNALDATE "08-Feb-1994 05:52:25 +0000" '
            b'RFC822.SIZE %d ENVELOPE ("Mon, 7 Feb 1994 21:52:25 -0800" "Hello there" '
            b'(("Alice" NIL "alice" "example.org")) (("Alice" NIL "alice" "example.org")) '
            b'(("Alice" NIL "alice" "example.org")) ((NIL NIL "bob" "example.org")) NIL NIL NIL '
            b'"<1@example.org>"))' % len(MESSAGE)])
        typ, data = m.fetch("2", "(BODYSTRUCTURE)")
        self.assertEqual(data, [
            b'2 (BODYSTRUCTURE (("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 10 0 NIL NIL NIL NIL)'
            b'("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 13 0 NIL NIL NIL NIL) "mixed" '
            b'("boundary" "XX") NIL NIL NIL))'])
        # The CRLF before a boundary belongs to the boundary (RFC 2046).
        typ, data = m.fetch("2", "(BODY.PEEK[1] BODY.PEEK[2.MIME] BODY.PEEK[HEADER.FIELDS (SUBJECT)] "
                                 "BODY.PEEK[TEXT]<2.6>)")
        self.assertEqual(data[0], (b"2 (BODY[1] {10}", b"first part"))
        self.assertEqual(data[1], (b" BODY[2.MIME] {27}", b"Content-Type: text/html\r\n\r\n"))
        self.assertEqual(data[2], (b" BODY[HEADER.FIELDS (SUBJECT)] {18}", b"Subject: parts\r\n\r\n"))
        self.assertEqual(data[3], (b" BODY[TEXT]<2> {6}", b"XX\r\nCo"))
        # PEEK left \Seen alone; BODY[] sets it and says so.
        self.assertEqual(m.fetch("1", "(FLAGS)")[1], [b"1 (FLAGS (\\Flagged $Work \\Recent))"])
        typ, data = m.fetch("1", "(BODY[])")
        self.assertEqual(data[0], (b"1 (BODY[] {%d}" % len(MESSAGE), MESSAGE))
        self.assertEqual(data[1], b" FLAGS (\\Flagged \\Seen $Work \\Recent))")
        # The client's next commands see \Seen, before and after the view catches up.
        self.assertEqual(m.fetch("1", "(FLAGS)")[1], [b"1 (FLAGS (\\Flagged \\Seen $Work \\Recent))"])
        self.assertEqual(m.search(None, "SEEN"), ("OK", [b"1"]))
        m.noop()
        # The update tells the flag change once more (harmless), then the view has it.
        self.assertEqual(m.response("FETCH"), ("FETCH", [b"1 (FLAGS (\\Flagged \\Seen $Work \\Recent))"]))
        self.assertEqual(m.fetch("1", "(FLAGS)")[1], [b"1 (FLAGS (\\Flagged \\Seen $Work \\Recent))"])
        self.assertEqual(m.search(None, "UNSEEN"), ("OK", [b"2"]))
        typ, data = m.uid("FETCH", "2", "(RFC822.HEADER)")
        self.assertTrue(data[0][0].startswith(b"2 (UID 2 RFC822.HEADER {"), data)
        self.assertTrue(data[0][1].startswith(b"From: a@example.org\r\n"))
        with self.assertRaises(imaplib.IMAP4.error):
            m.fetch("3", "(FLAGS)")
        self.assertEqual(m.uid("FETCH", "3:*", "(FLAGS)"), ("OK", [b"2 (UID 2 FLAGS (\\Recent))"]))

    def test_large_fetch_goes_out_in_pieces(self):
        # 24 messages of 200 kB: several runs of the FETCH, in order, complete.
        m = self.imap()
        bodies = []
        for i in range(24):
            body = b"Subject: big %d\r\n\r\n" % i + (b"%06d" % i) * 33000 + b"\r\n"
            bodies.append(body)
            m.append("INBOX", None, None, body)
        m.select("INBOX")
        r = self.raw()
        r.send(b"s SELECT INBOX\r\nf FETCH 1:* (UID BODY.PEEK[])\r\nn NOOP\r\n")
        r.until_tagged(b"s")
        for i, body in enumerate(bodies):
            head = r.line()
            self.assertEqual(head, b"* %d FETCH (UID %d BODY[] {%d}" % (i + 1, i + 1, len(body)))
            while len(r.buf) < len(body) + 3:
                chunk = r.sock.recv(1 << 20)
                self.assertTrue(chunk)
                r.buf += chunk
            self.assertEqual(r.buf[:len(body)], body)
            r.buf = r.buf[len(body):]
            self.assertEqual(r.line(), b")")
        self.assertEqual(r.line(), b"f OK FETCH completed.")
        self.assertEqual(r.until_tagged(b"n"), [b"n OK NOOP completed."])

    def test_examine_is_read_only(self):
        m = self.imap()
        m.append("INBOX", None, None, MESSAGE)
        typ, _ = m.select("INBOX", readonly=True)
        self.assertEqual(typ, "OK")
        self.assertIn("READ-ONLY", m.untagged_responses)
        m.fetch("1", "(BODY[])")
        # no \Seen; \Recent since no session claimed it (EXAMINE claims nothing)
        self.assertEqual(m.fetch("1", "(FLAGS)")[1], [b"1 (FLAGS (\\Recent))"])
        typ, data = m.store("1", "+FLAGS", "(\\Seen)")
        self.assertEqual(typ, "NO")
        self.assertIn(b"[READ-ONLY]", data[0])

    def test_store_expunge_copy_move(self):
        m = self.imap()
        for i in range(5):
            m.append("INBOX", None, None, b"Subject: %d\r\n\r\nbody\r\n" % i)
        m.select("INBOX")
        self.assertEqual(m.store("1:2", "+FLAGS", "(\\Deleted)")[1],
                         [b"1 (FLAGS (\\Deleted \\Recent))", b"2 (FLAGS (\\Deleted \\Recent))"])
        self.assertEqual(m.store("3", "+FLAGS.SILENT", "(\\Seen)"), ("OK", [None]))
        self.assertEqual(m.uid("STORE", "4", "FLAGS", "(\\Answered custom)")[1],
                         [b"4 (UID 4 FLAGS (\\Answered custom \\Recent))"])
        self.assertEqual(m.store("4", "-FLAGS", "(custom)")[1], [b"4 (FLAGS (\\Answered \\Recent))"])
        typ, data = m.copy("3:4", "Archive")
        self.assertEqual(typ, "OK")
        self.assertRegex(data[0], rb"^\[COPYUID \d+ 3:4 1,2\] COPY completed\.$")
        m.response("COPYUID")  # forget the COPY's code
        self.assertIn(b"[TRYCREATE]", m.copy("1", "Nowhere")[1][0])
        m.uid("EXPUNGE", "2")
        self.assertEqual(m.response("EXPUNGE"), ("EXPUNGE", [b"2"]))
        self.assertEqual(m.expunge(), ("OK", [b"1"]))
        self.assertEqual(m.fetch("1:*", "(UID)")[1], [b"1 (UID 3)", b"2 (UID 4)", b"3 (UID 5)"])
        typ, data = m._simple_command("MOVE", "1", "Trash")
        self.assertEqual(typ, "OK")
        self.assertRegex(m.response("COPYUID")[1][0], rb"^\d+ 3 1$")
        self.assertEqual(m.response("EXPUNGE"), ("EXPUNGE", [b"1"]))
        self.assertEqual(m.status("Trash", "(MESSAGES)")[1], [b"Trash (MESSAGES 1)"])
        self.assertEqual(m.status("Archive", "(MESSAGES)")[1], [b"Archive (MESSAGES 2)"])
        m.store("1", "+FLAGS", "(\\Deleted)")
        self.assertEqual(m.close()[0], "OK")
        self.assertEqual(m.status("INBOX", "(MESSAGES)")[1], [b"INBOX (MESSAGES 1)"])
        with self.assertRaises(imaplib.IMAP4.error):
            m.fetch("1", "(FLAGS)")  # no mailbox selected any more

    def test_new_keywords_are_announced_before_use(self):
        """A keyword new to the mailbox comes with a new FLAGS list before
        any FETCH shows it, to the session that set it and to the others
        (RFC 3501 7.2.6; imaptest counts it as an error otherwise)."""
        r = self.raw()
        r.send(b"a APPEND INBOX {8+}\r\nSubj: x\r\n")
        r.until_tagged(b"a")
        other = self.raw()
        other.send(b"o SELECT INBOX\r\n")
        lines = other.until_tagged(b"o")
        self.assertIn(b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)", lines)
        r.send(b"b SELECT INBOX\r\nc STORE 1 +FLAGS ($Label1)\r\n")
        r.until_tagged(b"b")
        lines = r.until_tagged(b"c")
        self.assertEqual(lines[:3], [
            b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1)",
            b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1 \\*)] Flags permitted.",
            b"* 1 FETCH (FLAGS ($Label1))"], lines)  # \Recent went to the first SELECT
        # an existing keyword again: no new list
        r.send(b"d STORE 1 -FLAGS ($Label1)\r\ne STORE 1 +FLAGS ($Label1)\r\n")
        r.until_tagged(b"d")
        self.assertEqual(r.until_tagged(b"e")[0], b"* 1 FETCH (FLAGS ($Label1))")
        other.send(b"p NOOP\r\n")
        lines = other.until_tagged(b"p")
        self.assertEqual(lines[0], b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1)", lines)
        self.assertEqual(lines[2], b"* 1 FETCH (FLAGS ($Label1 \\Recent))", lines)
        # read-only sessions hear the list with empty PERMANENTFLAGS
        ro = self.raw()
        ro.send(b"q EXAMINE INBOX\r\n")
        ro.until_tagged(b"q")
        r.send(b"f STORE 1 +FLAGS ($Label2)\r\n")
        r.until_tagged(b"f")
        ro.send(b"s NOOP\r\n")
        lines = ro.until_tagged(b"s")
        self.assertEqual(lines[:2], [b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1 $Label2)",
                                     b"* OK [PERMANENTFLAGS ()] Read-only mailbox."], lines)
        # a keyword brought in by another session's APPEND: the new list
        # comes before EXISTS and the message's flags
        other.send(b"x APPEND INBOX ($Label3) {8+}\r\nSubj: y\r\n")
        other.until_tagged(b"x")
        r.send(b"g NOOP\r\nh FETCH 2 FLAGS\r\n")
        lines = r.until_tagged(b"g")
        self.assertEqual(lines[:3], [
            b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1 $Label2 $Label3)",
            b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1 $Label2 $Label3 \\*)] "
            b"Flags permitted.",
            b"* 2 EXISTS"], lines)
        self.assertEqual(r.until_tagged(b"h")[0], b"* 2 FETCH (FLAGS ($Label3))")
        # and by a COPY from another mailbox
        other.send(b"y CREATE Src\r\nz APPEND Src ($Label4) {8+}\r\nSubj: z\r\n")
        other.until_tagged(b"y")
        other.until_tagged(b"z")
        other.send(b"s2 SELECT Src\r\nc2 COPY 1 INBOX\r\n")
        other.until_tagged(b"s2")
        other.until_tagged(b"c2")
        r.send(b"i NOOP\r\n")
        lines = r.until_tagged(b"i")
        self.assertEqual(lines[0], b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1 $Label2 $Label3 $Label4)",
                         lines)
        self.assertIn(b"* 3 EXISTS", lines)
        self.assertLess(lines.index(b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft "
                                    b"$Label1 $Label2 $Label3 $Label4 \\*)] Flags permitted."), lines.index(b"* 3 EXISTS"))

    def test_appending_session_gets_recent(self):
        """APPEND to the mailbox a session has selected makes the message
        Recent in that session and in no other (the claim is written with the
        APPEND's own log entry, so no other session can see it first)."""
        a, b = self.raw(), self.raw()
        for c in (b, a):
            c.send(b"s SELECT INBOX\r\n")
            c.until_tagged(b"s")
        a.send(b"x APPEND INBOX {8+}\r\nSubj: x\r\n")
        lines = a.until_tagged(b"x")
        self.assertEqual(lines[:2], [b"* 1 EXISTS", b"* 1 RECENT"], lines)
        b.send(b"n NOOP\r\n")
        self.assertEqual(b.until_tagged(b"n")[:2], [b"* 1 EXISTS", b"* 0 RECENT"])
        a.send(b"f FETCH 1 FLAGS\r\n")
        self.assertEqual(a.until_tagged(b"f")[0], b"* 1 FETCH (FLAGS (\\Recent))")
        b.send(b"f FETCH 1 FLAGS\r\n")
        self.assertEqual(b.until_tagged(b"f")[0], b"* 1 FETCH (FLAGS ())")
        # an EXAMINE session does not claim: it shows the message as Recent
        # (nobody claimed it) and the next SELECT claims it all the same
        e = self.raw()
        e.send(b"e EXAMINE INBOX\r\ny APPEND INBOX {8+}\r\nSubj: y\r\n")
        e.until_tagged(b"e")
        self.assertEqual(e.until_tagged(b"y")[:2], [b"* 2 EXISTS", b"* 1 RECENT"])
        b.send(b"n NOOP\r\n")
        self.assertEqual(b.until_tagged(b"n")[:2], [b"* 2 EXISTS", b"* 1 RECENT"])

    def test_append_stores_line_ends_as_dovecot(self):
        """CR CR LF line ends are stored as CR LF and a final CR is dropped,
        as Dovecot's save path does: the message then has its MIME structure
        (its header ends at the first empty line) and the sizes Dovecot
        reports. CRLF, bare LF and other CRs stay as sent."""
        sent = (b"Subject: doubled\r\r\nContent-Type: multipart/mixed; boundary=b\r\r\n\r\r\n"
                b"--b\r\r\nContent-Type: text/plain\r\r\n\r\r\none\rtwo\r\r\r\n--b--\r\nbare\nend\r")
        stored = (b"Subject: doubled\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
                  b"--b\r\nContent-Type: text/plain\r\n\r\none\rtwo\r\r\n--b--\r\nbare\nend")
        r = self.raw()
        r.send(b"a APPEND INBOX {%d+}\r\n%s\r\n" % (len(sent), sent))
        self.assertTrue(r.until_tagged(b"a")[-1].startswith(b"a OK"))
        r.send(b"s SELECT INBOX\r\nf FETCH 1 (RFC822.SIZE BODYSTRUCTURE BODY.PEEK[])\r\n")
        r.until_tagged(b"s")
        got = b"\r\n".join(r.until_tagged(b"f")[:-1])
        on_wire = stored.replace(b"bare\nend", b"bare\r\nend")  # a bare LF goes out as CRLF
        self.assertEqual(got, b"* 1 FETCH (RFC822.SIZE %d BODYSTRUCTURE ((\"text\" \"plain\" "
                         b"(\"charset\" \"us-ascii\") NIL NIL \"7bit\" 8 0 NIL NIL NIL NIL) \"mixed\" "
                         b"(\"boundary\" \"b\") NIL NIL NIL) BODY[] {%d}\r\n" % (len(on_wire), len(on_wire))
                         + on_wire + b")")

    def test_examine_shows_recent_without_claiming(self):
        """EXAMINE counts the messages no session claimed as \\Recent and
        leaves them unclaimed (STATUS, and the next SELECT, still see them),
        as Dovecot does; the flag stays in the EXAMINE session after a SELECT
        elsewhere claims the messages."""
        r = self.raw()
        for i in range(2):
            r.send(b"a APPEND INBOX {8+}\r\nSubj: %d\r\n" % i)
            r.until_tagged(b"a")
        e = self.raw()
        e.send(b"e EXAMINE INBOX\r\n")
        lines = e.until_tagged(b"e")
        self.assertIn(b"* 2 RECENT", lines)
        self.assertTrue(lines[-1].startswith(b"e OK [READ-ONLY]"), lines)
        e.send(b"f FETCH 1:2 FLAGS\r\n")
        self.assertEqual(e.until_tagged(b"f")[:2], [b"* 1 FETCH (FLAGS (\\Recent))", b"* 2 FETCH (FLAGS (\\Recent))"])
        r.send(b"s STATUS INBOX (RECENT)\r\n")
        self.assertEqual(r.until_tagged(b"s")[0], b"* STATUS INBOX (RECENT 2)")
        r.send(b"t SELECT INBOX\r\n")
        self.assertIn(b"* 2 RECENT", r.until_tagged(b"t"))
        r.send(b"c CLOSE\r\nu STATUS INBOX (RECENT)\r\n")
        r.until_tagged(b"c")
        self.assertEqual(r.until_tagged(b"u")[0], b"* STATUS INBOX (RECENT 0)")
        # claimed elsewhere now: no flag change for the EXAMINE session
        e.send(b"n NOOP\r\nf FETCH 1:2 FLAGS\r\n")
        self.assertEqual(e.until_tagged(b"n"), [b"n OK NOOP completed."])
        self.assertEqual(e.until_tagged(b"f")[:2], [b"* 1 FETCH (FLAGS (\\Recent))", b"* 2 FETCH (FLAGS (\\Recent))"])
        # a message that arrives claimed is not Recent for it
        r.send(b"v SELECT INBOX\r\nw APPEND INBOX {8+}\r\nSubj: 3\r\n")
        r.until_tagged(b"v")
        r.until_tagged(b"w")
        e.send(b"n NOOP\r\n")
        self.assertEqual(e.until_tagged(b"n")[:2], [b"* 3 EXISTS", b"* 2 RECENT"])
        e.send(b"f FETCH 3 FLAGS\r\n")
        self.assertEqual(e.until_tagged(b"f")[0], b"* 3 FETCH (FLAGS ())")

    def test_unselect_keeps_deleted(self):
        r = self.raw()
        r.send(b"a APPEND INBOX {8+}\r\nSubj: x\r\n")
        r.until_tagged(b"a")
        r.send(b"b SELECT INBOX\r\nc STORE 1 +FLAGS.SILENT (\\Deleted)\r\nd UNSELECT\r\ne STATUS INBOX (MESSAGES)\r\n")
        self.assertEqual(r.until_tagged(b"d")[-1], b"d OK UNSELECT completed.")
        self.assertEqual(r.until_tagged(b"e")[0], b"* STATUS INBOX (MESSAGES 1)")

    def test_failed_select_leaves_selected_state(self):
        r = self.raw()
        r.send(b"a SELECT INBOX\r\n")
        r.until_tagged(b"a")
        r.send(b"b SELECT Nowhere\r\n")
        lines = r.until_tagged(b"b")
        self.assertTrue(lines[-1].startswith(b"b NO [NONEXISTENT]"), lines)
        r.send(b"c FETCH 1 FLAGS\r\n")
        self.assertTrue(r.until_tagged(b"c")[-1].startswith(b"c BAD "))

    def test_idle_hears_other_sessions(self):
        watcher = self.raw()
        watcher.send(b"a SELECT INBOX\r\n")
        watcher.until_tagged(b"a")
        watcher.send(b"b IDLE\r\n")
        self.assertEqual(watcher.line(), b"+ idling")
        writer = self.imap()
        writer.append("INBOX", None, None, MESSAGE)
        appended = time.monotonic()
        # The append reaches the watcher without any command from it, within
        # one second of the APPEND's OK (the bound; it takes a few ms).
        self.assertEqual(watcher.line(), b"* 1 EXISTS")
        self.assertLess(time.monotonic() - appended, 1.0)
        self.assertEqual(watcher.line(), b"* 1 RECENT")
        writer.select("INBOX")
        writer.store("1", "+FLAGS", "(\\Flagged)")
        self.assertRegex(watcher.line(), rb"^\* 1 FETCH \(FLAGS \(\\Flagged( \\Recent)?\)\)$")
        watcher.send(b"DONE\r\n")
        self.assertEqual(watcher.until_tagged(b"b"), [b"b OK IDLE terminated."])

    def test_noop_reports_expunges_of_others(self):
        a = self.imap()
        for _ in range(3):
            a.append("INBOX", None, None, MESSAGE)
        a.select("INBOX")
        b = self.imap()
        b.select("INBOX")
        b.store("2", "+FLAGS", "(\\Deleted)")
        b.expunge()
        typ, _ = a.noop()
        self.assertEqual(a.response("EXPUNGE"), ("EXPUNGE", [b"2"]))

    def test_no_expunge_during_fetch_store_search(self):
        """RFC 3501 7.4.1: another session's EXPUNGE is not told during FETCH,
        STORE or SEARCH; numbers stay put until NOOP tells it."""
        a = self.raw()
        b = self.imap()
        for i in range(5):
            b.append("INBOX", None, None, MESSAGE.replace(b"Hello there", b"msg %d" % (i + 1)))
        a.send(b"s SELECT INBOX\r\n")
        self.assertIn(b"* 5 EXISTS", a.until_tagged(b"s"))
        b.select("INBOX")
        b.store("2,4", "+FLAGS", "(\\Deleted)")
        b.expunge()
        b.append("INBOX", None, None, MESSAGE.replace(b"Hello there", b"msg 6"))
        a.send(b"f FETCH 1:5 (UID FLAGS)\r\n")
        lines = a.until_tagged(b"f")
        self.assertFalse([l for l in lines if l.endswith(b" EXPUNGE")], lines)
        self.assertEqual(lines[-1], b"f OK FETCH completed.")
        self.assertIn(b"* 4 FETCH (UID 4 FLAGS (\\Recent))", lines)
        # An expunged message still answers from its data, at its old number.
        a.send(b"g FETCH 2 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n")
        lines = a.until_tagged(b"g")
        self.assertIn(b"Subject: msg 2", b"".join(lines))
        self.assertEqual(lines[-1], b"g OK FETCH completed.")
        a.send(b"h STORE 1:5 +FLAGS (\\Flagged)\r\n")
        lines = a.until_tagged(b"h")
        self.assertFalse([l for l in lines if l.endswith(b" EXPUNGE")], lines)
        self.assertEqual(lines[-1], b"h OK STORE completed.")
        # New messages may be told (EXISTS), numbered after the kept ones.
        self.assertIn(b"* 6 EXISTS", lines)
        self.assertIn(b"* 3 FETCH (FLAGS (\\Flagged \\Recent))", lines)
        self.assertIn(b"* 5 FETCH (FLAGS (\\Flagged \\Recent))", lines)
        a.send(b"i SEARCH FLAGGED\r\n")
        lines = a.until_tagged(b"i")
        self.assertFalse([l for l in lines if l.endswith(b" EXPUNGE")], lines)
        self.assertEqual(lines[-2], b"* SEARCH 1 3 5")
        a.send(b"j SEARCH SUBJECT \"msg 5\"\r\n")
        self.assertEqual(a.until_tagged(b"j")[-2], b"* SEARCH 5")
        # NOOP tells both expunges, numbered as they go: 2, then 4 - 1 = 3.
        a.send(b"k NOOP\r\n")
        lines = a.until_tagged(b"k")
        self.assertEqual([l for l in lines if l.endswith(b" EXPUNGE")], [b"* 2 EXPUNGE", b"* 3 EXPUNGE"])
        self.assertEqual(lines[-1], b"k OK NOOP completed.")
        a.send(b"l FETCH 1:* (UID)\r\n")
        lines = a.until_tagged(b"l")
        self.assertEqual(lines[:-1], [b"* 1 FETCH (UID 1)", b"* 2 FETCH (UID 3)", b"* 3 FETCH (UID 5)",
                                      b"* 4 FETCH (UID 6)"])
        a.send(b"m SEARCH SUBJECT \"msg 5\"\r\n")
        self.assertEqual(a.until_tagged(b"m")[-2], b"* SEARCH 3")

    def test_uid_store_may_tell_expunges(self):
        a = self.raw()
        b = self.imap()
        for _ in range(3):
            b.append("INBOX", None, None, MESSAGE)
        a.send(b"s SELECT INBOX\r\n")
        a.until_tagged(b"s")
        b.select("INBOX")
        b.store("2", "+FLAGS", "(\\Deleted)")
        b.expunge()
        a.send(b"t UID STORE 1 +FLAGS (\\Seen)\r\n")
        lines = a.until_tagged(b"t")
        self.assertIn(b"* 2 EXPUNGE", lines)
        self.assertEqual(lines[-1], b"t OK UID STORE completed.")

    def test_disconnect_inside_append_literal_leaves_nothing(self):
        m = self.imap()
        m.append("INBOX", None, None, MESSAGE)
        for literal_plus in (False, True):
            r = self.raw()
            body = MESSAGE * 20
            if literal_plus:
                r.send(b"a APPEND INBOX (\\Seen) {%d+}\r\n" % len(body))
            else:
                r.send(b"a APPEND INBOX (\\Seen) {%d}\r\n" % len(body))
                self.assertTrue(r.line().startswith(b"+ "))
            r.send(body[:len(body) // 2])
            r.close()
        # Another session: still one message, and the daemon serves.
        for _ in range(2):
            self.assertEqual(m.status("INBOX", "(MESSAGES UIDNEXT)")[1], [b"INBOX (MESSAGES 1 UIDNEXT 2)"])
            self.assertEqual(m.noop()[0], "OK")
        m.select("INBOX")
        self.assertEqual(m.fetch("1:*", "(UID)")[1], [b"1 (UID 1)"])

    def test_invalid_mailbox_names(self):
        r = self.raw()
        for n, name in enumerate([b'"caf&AOk"', b'"&Jjo!"', b'"&-&"', b'"a&AGE-"', b'"&ZeVnLIqe"', b'"x&"',
                                  b'"&2D0-"', b'"\xff\xfe"']):
            for command in (b"CREATE", b"SELECT", b"RENAME INBOX.x"):
                r.send(b"n%d %s %s\r\n" % (n, command, name))
                last = r.until_tagged(b"n%d" % n)[-1]
                self.assertRegex(last, rb"^n%d (NO|BAD) " % n, (command, name))
        r.send(b"z NOOP\r\n")
        self.assertEqual(r.until_tagged(b"z")[-1], b"z OK NOOP completed.")
        r.send(b'y LIST "" *\r\n')
        self.assertFalse([l for l in r.until_tagged(b"y") if b"&" in l])

    def test_multiappend(self):
        """RFC 3502: one command, each message with its own flags and date,
        APPENDUID with the set of new UIDs, one EXISTS for the lot."""
        r = self.raw()
        r.send(b"s SELECT INBOX\r\n")
        r.until_tagged(b"s")
        third = MESSAGE.replace(b"Subject: Hello there", b"Subject: third")
        r.send(b'a APPEND INBOX (\\Seen) "01-Mar-2020 10:00:00 +0000" {%d+}\r\n%s' % (len(MESSAGE), MESSAGE) +
               b" (\\Flagged $Todo) {%d}\r\n" % len(MULTIPART))
        self.assertTrue(r.line().startswith(b"+ "))  # a synchronising literal in the middle
        r.send(MULTIPART + b' "15-Jun-2024 12:30:00 +0200" {%d+}\r\n%s\r\n' % (len(third), third))
        lines = r.until_tagged(b"a")
        self.assertIn(b"* 3 EXISTS", lines)
        self.assertRegex(lines[-1], rb"^a OK \[APPENDUID \d+ 1:3\] APPEND completed\.$")
        r.send(b"f FETCH 1:* (UID FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n")
        fetched = b"\n".join(r.until_tagged(b"f"))
        self.assertIn(b'* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent) INTERNALDATE "01-Mar-2020 10:00:00 +0000"', fetched)
        self.assertIn(b"* 2 FETCH (UID 2 FLAGS (\\Flagged $Todo \\Recent) INTERNALDATE ", fetched)
        self.assertIn(b'* 3 FETCH (UID 3 FLAGS (\\Recent) INTERNALDATE "15-Jun-2024 10:30:00 +0000"', fetched)
        self.assertEqual(re.findall(rb"Subject: ([A-Za-z ]+)", fetched), [b"Hello there", b"parts", b"third"])
        # Items that need no MIME structure (it is not decoded for them).
        r.send(b"d FETCH 3 (INTERNALDATE FLAGS)\r\n")
        self.assertEqual(r.until_tagged(b"d")[0],
                         b'* 3 FETCH (INTERNALDATE "15-Jun-2024 10:30:00 +0000" FLAGS (\\Recent))')
        r.send(b"b FETCH 2:3 BODY.PEEK[]\r\n")
        bodies = b"\r\n".join(r.until_tagged(b"b"))
        self.assertIn(MULTIPART, bodies)
        self.assertIn(third, bodies)
        # A plain APPEND afterwards takes the next UID.
        r.send(b"c APPEND INBOX {%d+}\r\n%s\r\n" % (len(MESSAGE), MESSAGE))
        self.assertRegex(r.until_tagged(b"c")[-1], rb"^c OK \[APPENDUID \d+ 4\] ")

    def test_multiappend_to_a_missing_mailbox_appends_nothing(self):
        r = self.raw()
        r.send(b"a APPEND Nowhere {%d+}\r\n%s {%d+}\r\n%s\r\n" % (len(MESSAGE), MESSAGE, len(MESSAGE), MESSAGE))
        self.assertTrue(r.until_tagged(b"a")[-1].startswith(b"a NO [TRYCREATE] "))
        r.send(b"b STATUS INBOX (MESSAGES UIDNEXT)\r\n")
        self.assertEqual(r.until_tagged(b"b")[0], b"* STATUS INBOX (MESSAGES 0 UIDNEXT 1)")

    def test_multiappend_with_a_malformed_later_message_appends_nothing(self):
        """RFC 3502: all or none, also when the first message arrived whole
        and what follows it is malformed (BAD; the connection goes on)."""
        r = self.raw()
        for bad in (b' "99-Xyz-2020 10:00:00 +0000" ', b" (\\Recent) ", b" (\\Seen ", b" BOGUS ",
                    b" {3+}\r\nabc extra"):
            r.send(b"a APPEND INBOX {%d+}\r\n%s" % (len(MESSAGE), MESSAGE) + bad +
                   b"{%d+}\r\n%s\r\n" % (len(MESSAGE), MESSAGE))
            self.assertTrue(r.until_tagged(b"a")[-1].startswith(b"a BAD "), bad)
            r.send(b"b STATUS INBOX (MESSAGES UIDNEXT)\r\n")
            self.assertEqual(r.until_tagged(b"b")[0], b"* STATUS INBOX (MESSAGES 0 UIDNEXT 1)", bad)

    def test_disconnect_inside_multiappend_leaves_nothing(self):
        m = self.imap()
        for literal_plus in (False, True):
            r = self.raw()
            first = b"a APPEND INBOX {%d+}\r\n%s" % (len(MESSAGE), MESSAGE)
            if literal_plus:
                r.send(first + b" (\\Seen) {%d+}\r\n" % len(MESSAGE) + MESSAGE[:20])
            else:
                r.send(first + b" (\\Seen) {%d}\r\n" % len(MESSAGE))
                self.assertTrue(r.line().startswith(b"+ "))
                r.send(MESSAGE[:20])
            r.close()
        # Another session: nothing arrived, and the daemon serves.
        for _ in range(2):
            self.assertEqual(m.status("INBOX", "(MESSAGES UIDNEXT)")[1], [b"INBOX (MESSAGES 0 UIDNEXT 1)"])
            self.assertEqual(m.noop()[0], "OK")
        self.assertEqual(m.append("INBOX", None, None, MESSAGE)[0], "OK")
        self.assertRegex(m.response("APPENDUID")[1][0], rb"^\d+ 1$")

    def test_search(self):
        m = self.imap()
        m.append("INBOX", "(\\Seen)", '"07-Feb-1994 21:52:25 -0800"', MESSAGE)
        m.append("INBOX", "(\\Flagged $Todo)", '"01-Mar-2020 10:00:00 +0000"', MULTIPART)
        m.append("INBOX", None, '"15-Jun-2024 10:00:00 +0000"',
                 b"From: Carol <carol@example.net>\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n"
                 b"Date: Sat, 15 Jun 2024 09:00:00 +0000\r\n\r\n" + b"x" * 3000 + b"\r\n")
        m.select("INBOX")
        cases = [
            ("ALL", b"1 2 3"), ("SEEN", b"1"), ("UNSEEN", b"2 3"), ("FLAGGED", b"2"),
            ("KEYWORD $Todo", b"2"), ("UNKEYWORD $Todo", b"1 3"), ("NEW", b"2 3"), ("RECENT", b"1 2 3"),
            ("FROM alice", b"1"), ("FROM EXAMPLE.NET", b"3"), ("SUBJECT hello", b"1"),
("TO bob", b"1"), ('HEADER Message-ID "<1@example.org>"', b"1"),
            ("BODY second", b"2"), ("TEXT parts", b"2"), ("BODY nowhere", b""),
            ("LARGER 1000", b"3"), ("SMALLER 1000", b"1 2"),
            ("BEFORE 1-Jan-2000", b"1"), ("SINCE 1-Jan-2020", b"2 3"), ("ON 15-Jun-2024", b"3"),
            ("SENTBEFORE 8-Feb-1994", b"1"), ("SENTON 15-Jun-2024", b"3"),
            ("OR SEEN FLAGGED", b"1 2"), ("NOT SEEN", b"2 3"), ("2:*", b"2 3"), ("UID 1,3", b"1 3"),
            ("(SEEN) (FROM alice)", b"1"), ("UNSEEN SMALLER 1000", b"2"),
        ]
        for criteria, expected in cases:
            typ, data = m.search(None, criteria)
            self.assertEqual((typ, data), ("OK", [expected]), criteria)
        # An RFC 2047 subject matches its UTF-8 text (sent as a literal).
        m.literal = "caf\u00e9".encode()
        self.assertEqual(m.search("UTF-8", "SUBJECT"), ("OK", [b"3"]))
        self.assertEqual(m.uid("SEARCH", "FLAGGED"), ("OK", [b"2"]))
        typ, data = m.search("KOI8-R", "ALL")
        self.assertEqual(typ, "NO")
        self.assertIn(b"[BADCHARSET", data[0])
        m.store("2", "+FLAGS", "(\\Deleted)")
        m.expunge()
        self.assertEqual(m.uid("SEARCH", "ALL"), ("OK", [b"1 3"]))
        self.assertEqual(m.search(None, "ALL"), ("OK", [b"1 2"]))


class AppendLimits(DaemonCase):
    """max_message holds for one message and for a MULTIAPPEND as a whole."""

    def test_limits(self):
        srv = self.server({"u": "{PLAIN}pw"}, imap=["max_message = 2048"])
        r = self.login("u", srv=srv)
        r.send(b"a APPEND INBOX {1500+}\r\n" + b"x" * 1500 + b" {1500+}\r\n" + b"y" * 1500 + b"\r\n")
        self.assertEqual(r.until_tagged(b"a"),
                         [b"a NO [TOOBIG] APPEND: the messages together are larger than 2048 bytes."])
        r.send(b"b APPEND INBOX {1500+}\r\n" + b"x" * 1500 + b"\r\n")
        self.assertRegex(r.until_tagged(b"b")[-1], rb"^b OK \[APPENDUID \d+ 1\] ")
        r.send(b"c APPEND INBOX {3000}\r\n")
        self.assertTrue(r.until_tagged(b"c")[-1].startswith(b"c NO [TOOBIG]"))
        r.send(b"d APPEND INBOX (\\Seen) {700+}\r\n" + b"z" * 700 + b" {700+}\r\n" + b"w" * 700 + b"\r\n")
        self.assertRegex(r.until_tagged(b"d")[-1], rb"^d OK \[APPENDUID \d+ 2:3\] ")
        r.send(b"e STATUS INBOX (MESSAGES)\r\n")
        self.assertEqual(r.until_tagged(b"e")[0], b"* STATUS INBOX (MESSAGES 3)")
        # One message of a MULTIAPPEND over the limit: the whole command
        # is refused, the messages before it are not appended, and the
        # connection goes on (synchronising literal, then LITERAL+).
        r.send(b"i APPEND INBOX {100+}\r\n" + b"a" * 100 + b" (\\Seen) {3000}\r\n")
        self.assertTrue(r.until_tagged(b"i")[-1].startswith(b"i NO [TOOBIG] "))
        r.send(b"j APPEND INBOX {100+}\r\n" + b"a" * 100 + b" {3000+}\r\n" + b"b" * 3000 + b"\r\n")
        self.assertTrue(r.until_tagged(b"j")[-1].startswith(b"j NO [TOOBIG] "))
        r.send(b"k STATUS INBOX (MESSAGES UIDNEXT)\r\n")
        self.assertEqual(r.until_tagged(b"k")[0], b"* STATUS INBOX (MESSAGES 3 UIDNEXT 4)")
        r.send(b"f CREATE X\r\ng SELECT X\r\nh DELETE X\r\n")
        self.assertEqual(r.until_tagged(b"h")[-2:], [b"* OK [CLOSED] The selected mailbox is being deleted.",
                                                     b"h OK DELETE completed."])


class FailingStore(DaemonCase):
    """The store goes away and comes back: NO [UNAVAILABLE], then service again."""

    def test_unavailable_store(self):
        srv, faults = self.faulty_server({"u": "{PLAIN}pw"})
        m = self.imap("u", srv=srv)
        self.assertEqual(m.create("Before")[0], "OK")
        faults.set("fail all unavailable")
        typ, data = m.create("During")
        self.assertEqual(typ, "NO")
        self.assertIn(b"[UNAVAILABLE]", data[0])
        typ, data = m.append("INBOX", None, None, MESSAGE)
        self.assertEqual(typ, "NO")
        self.assertEqual(m.noop()[0], "OK")
        faults.set("ok")
        self.assertEqual(m.create("After")[0], "OK")
        names = b" ".join(m.list()[1])
        self.assertIn(b"Before", names)
        self.assertIn(b"After", names)
        self.assertNotIn(b"During", names)
        m.logout()

    def test_unavailable_store_while_selected(self):
        # no body cache: FETCH BODY[] and SEARCH BODY must read the store
        srv, faults = self.faulty_server({"u": "{PLAIN}pw"}, storage=["body_cache = 0"])
        m = self.imap("u", srv=srv)
        for _ in range(3):
            m.append("INBOX", None, None, MESSAGE)
        m.select("INBOX")
        m.store("3", "+FLAGS", "(\\Deleted)")
        faults.set("fail all unavailable")
        for what, call in (("CLOSE", lambda: m._simple_command("CLOSE")),
                           ("FETCH", lambda: m.fetch("1:3", "(ENVELOPE BODY[])")),
                           ("STORE", lambda: m.store("1", "+FLAGS", "(\\Flagged)")),
                           ("SEARCH", lambda: m.search(None, "BODY", "Bob")),
                           ("COPY", lambda: m.copy("1", "Archive")),
                           ("STATUS", lambda: m.status("Archive", "(MESSAGES)")),
                           ("APPEND", lambda: m.append("INBOX", None, None, MESSAGE))):
            typ, data = call()
            self.assertEqual(typ, "NO", what)
            self.assertIn(b"[UNAVAILABLE]", data[-1], what)
        faults.set("ok")
        self.assertEqual(m.noop()[0], "OK")
        self.assertEqual(m.store("1", "+FLAGS", "(\\Flagged)")[0], "OK")
        typ, data = m.fetch("1:*", "(FLAGS)")
        self.assertEqual(typ, "OK")
        self.assertEqual(len(data), 3)
        self.assertIn(b"\\Flagged", data[0])
        # The failed CLOSE kept the mailbox selected; this one expunges.
        self.assertEqual(m.close()[0], "OK")
        self.assertEqual(m.status("INBOX", "(MESSAGES)")[1], [b"INBOX (MESSAGES 2)"])
        m.logout()

    def test_cached_bodies_while_the_store_fails(self):
        """Bodies in the engine's memory (written by the APPEND) are served
        while the store fails; what needs the store still gets NO."""
        srv, faults = self.faulty_server({"u": "{PLAIN}pw"})
        m = self.imap("u", srv=srv)
        m.append("INBOX", None, None, MESSAGE)
        m.select("INBOX")
        faults.set("fail all unavailable")
        typ, data = m.fetch("1", "(BODY.PEEK[])")
        self.assertEqual(typ, "OK")
        self.assertEqual(data[0][1], MESSAGE)
        typ, data = m.status("Archive", "(MESSAGES)")
        self.assertEqual(typ, "NO")
        self.assertIn(b"[UNAVAILABLE]", data[-1])
        faults.set("ok")
        m.logout()


if __name__ == "__main__":
    unittest.main(verbosity=1)
