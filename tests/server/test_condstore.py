"""CONDSTORE and QRESYNC (RFC 7162) through a running aerogramd.

The RFC's examples as scripted exchanges (values are this server's: its
modseqs count the log's changes from 1); a QRESYNC resync after expunges,
flag changes and appends made by another daemon on the same SQLite file,
whose result must equal a full fetch; and the bytes an unchanged
10,000-message mailbox costs to resync with and without CONDSTORE (printed).
Run by `make check-server`, on the memory driver and (AG_TEST_STORE=sqlite)
on SQLite; the two-daemon test always on SQLite."""
import os
import re
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aerogramd_fixture import DRIVER, Raw, Server  # noqa: E402

SQLITE_DRIVER = os.path.join(os.path.dirname(DRIVER), "aerogram_sqlite.so")
USERS = {"alice": "{PLAIN}secret", "bob": "{PLAIN}secret"}


class Client:
    """A line client that counts what it receives."""

    def __init__(self, port, user="alice"):
        self.r = Raw(port)
        self.n = 0
        self.received = 0
        self.greeting = self.r.line()
        self.ok("LOGIN %s secret" % user)

    def command(self, text):
        """Sends one command; returns (untagged lines, tagged line) as str."""
        self.n += 1
        tag = "t%d" % self.n
        self.r.send(("%s %s\r\n" % (tag, text)).encode())
        lines = self.r.until_tagged(tag.encode())
        self.received += sum(len(l) + 2 for l in lines)
        return [l.decode() for l in lines[:-1]], lines[-1].decode()[len(tag) + 1:]

    def ok(self, text):
        untagged, tagged = self.command(text)
        assert tagged.startswith("OK"), (text, untagged, tagged)
        return untagged, tagged

    def append(self, mailbox, messages):
        """MULTIAPPEND of the messages (bytes) in one command."""
        self.n += 1
        tag = "t%d" % self.n
        data = ("%s APPEND %s" % (tag, mailbox)).encode()
        for m in messages:
            data += b" {%d+}\r\n" % len(m) + m
        self.r.send(data + b"\r\n")
        lines = self.r.until_tagged(tag.encode())
        assert lines[-1].startswith(tag.encode() + b" OK"), lines

    def close(self):
        try:
            self.command("LOGOUT")
        except (EOFError, OSError):
            pass
        self.r.close()


def msg(i):
    return b"From: a@example.com\r\nSubject: message %d\r\n\r\nbody %d\r\n" % (i, i)


def code(line, name):
    m = re.search(r"\[%s ([^\]]*)\]" % name, line)
    return m.group(1) if m else None


def code_in(lines, name):
    for l in lines:
        v = code(l, name)
        if v is not None:
            return v
    return None


FETCH_RE = re.compile(r"^\* (\d+) FETCH \((.*)\)$")


def fetches(lines):
    return [fetch_items(l) for l in lines if " FETCH " in l]


def fetch_items(line):
    """{'UID': '4', 'FLAGS': '(\\Seen)', 'MODSEQ': '12'} of an untagged FETCH."""
    m = FETCH_RE.match(line)
    assert m, line
    body = m.group(2)
    items = {"seq": int(m.group(1))}
    for name, val in re.findall(r"(UID|FLAGS|MODSEQ) (\d+|\([^)]*\))", body):
        items[name] = val.strip("()") if name == "MODSEQ" else val
    return items


def flag_set(text):
    return frozenset(f for f in text.strip("()").split() if f != "\\Recent")


def uid_set(text):
    """Expands "1:3,7" (no '*')."""
    out = set()
    for part in text.split(","):
        if ":" in part:
            a, b = (int(x) for x in part.split(":"))
            out.update(range(min(a, b), max(a, b) + 1))
        else:
            out.add(int(part))
    return out


def compress(uids):
    uids = sorted(uids)
    parts, i = [], 0
    while i < len(uids):
        j = i
        while j + 1 < len(uids) and uids[j + 1] == uids[j] + 1:
            j += 1
        parts.append(str(uids[i]) if i == j else "%d:%d" % (uids[i], uids[j]))
        i = j + 1
    return ",".join(parts)


def untagged_select(c, box):
    return c.ok("SELECT " + box)[0]


class CondstoreTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(USERS, tls=False)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def setUp(self):
        self.clients = []
        self.box = "box%d" % id(self)

    def tearDown(self):
        for c in self.clients:
            c.close()

    def client(self):
        c = Client(self.srv.port)
        self.clients.append(c)
        return c

    def filled(self, n=5):
        c = self.client()
        c.ok("CREATE " + self.box)
        c.append(self.box, [msg(i) for i in range(n)])
        return c

    def modseqs(self, c, cmd="UID FETCH 1:* (MODSEQ)"):
        untagged, _ = c.ok(cmd)
        return {int(fetch_items(l)["UID"]): int(fetch_items(l)["MODSEQ"]) for l in untagged if " FETCH " in l}

    def test_capability_and_enable(self):
        c = self.client()
        untagged, _ = c.ok("CAPABILITY")
        caps = untagged[0].split()
        self.assertIn("CONDSTORE", caps)
        self.assertIn("QRESYNC", caps)
        # RFC 5161: what this command enabled; nothing twice, unknown ones left out
        self.assertEqual(c.ok("ENABLE CONDSTORE X-UNKNOWN")[0], ["* ENABLED CONDSTORE"])
        self.assertEqual(c.ok("ENABLE CONDSTORE")[0], ["* ENABLED"])
        self.assertEqual(c.ok("ENABLE qresync")[0], ["* ENABLED QRESYNC"])

    def test_select_condstore_highestmodseq(self):
        """RFC 7162 3.1.2.1 and 3.1.8: HIGHESTMODSEQ in every SELECT/EXAMINE
        (the server keeps modseqs for every mailbox), and in STATUS."""
        c = self.filled(3)
        untagged, _ = c.ok("SELECT " + self.box)
        hms = int(code_in(untagged, "HIGHESTMODSEQ"))
        self.assertGreater(hms, 0)
        untagged, _ = c.ok("FETCH 1 (FLAGS)")
        self.assertNotIn("MODSEQ", untagged[0])  # not enabled: FETCH as before
        untagged, _ = c.ok("EXAMINE %s (CONDSTORE)" % self.box)
        self.assertEqual(int(code_in(untagged, "HIGHESTMODSEQ")), hms)
        c.ok("UNSELECT")
        untagged, _ = c.ok("STATUS %s (HIGHESTMODSEQ MESSAGES)" % self.box)
        self.assertIn("HIGHESTMODSEQ %d" % hms, untagged[0])
        # every later SELECT of the session has it (CONDSTORE stays enabled)
        untagged, _ = c.ok("SELECT " + self.box)
        self.assertEqual(int(code_in(untagged, "HIGHESTMODSEQ")), hms)

    def test_enabling_command_tells_highestmodseq(self):
        """RFC 7162 3.1: the first CONDSTORE enabling command in the selected
        state is preceded by OK [HIGHESTMODSEQ]; FETCH MODSEQ answers."""
        c = self.filled(2)
        c.ok("SELECT " + self.box)
        untagged, _ = c.ok("FETCH 1 (MODSEQ)")
        self.assertIsNotNone(code_in(untagged, "HIGHESTMODSEQ"))
        self.assertRegex(untagged[-1], r"^\* 1 FETCH \(MODSEQ \(\d+\)\)$")
        untagged, _ = c.ok("FETCH 1 (MODSEQ)")
        self.assertIsNone(code_in(untagged, "HIGHESTMODSEQ"))
        # FLAGS now come with MODSEQ
        untagged, _ = c.ok("FETCH 2 (FLAGS)")
        self.assertRegex(untagged[0], r"^\* 2 FETCH \(FLAGS \(.*\) MODSEQ \(\d+\)\)$")
        hms = code_in(untagged_select(c, self.box), "HIGHESTMODSEQ")
        # ENABLE and STATUS (HIGHESTMODSEQ) are enabling commands too
        for command in ("ENABLE CONDSTORE", "STATUS %s (HIGHESTMODSEQ)" % self.box):
            d = self.client()
            d.ok("SELECT " + self.box)
            untagged, _ = d.ok(command)
            self.assertEqual(code_in(untagged, "HIGHESTMODSEQ"), hms, command)
            untagged, _ = d.ok("FETCH 1 (FLAGS)")
            self.assertIn("MODSEQ", untagged[0])

    def test_store_raises_modseq_and_changedsince(self):
        """RFC 7162 3.1.4: each change raises the message's modseq above
        every earlier one; FETCH (CHANGEDSINCE) returns only what changed,
        with MODSEQ."""
        c = self.filled(5)
        untagged, _ = c.ok("SELECT %s (CONDSTORE)" % self.box)
        hms = int(code_in(untagged, "HIGHESTMODSEQ"))
        before = self.modseqs(c)
        self.assertEqual(max(before.values()), hms)
        untagged, _ = c.ok("STORE 2,4 +FLAGS (\\Seen)")
        after = [fetch_items(l) for l in untagged]
        self.assertEqual(sorted(f["seq"] for f in after), [2, 4])
        m = int(after[0]["MODSEQ"])
        self.assertGreater(m, hms)
        self.assertEqual(after[0]["MODSEQ"], after[1]["MODSEQ"])  # one command, one modseq
        untagged, _ = c.ok("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % hms)
        got = [fetch_items(l) for l in untagged]
        self.assertEqual([f["seq"] for f in got], [2, 4])
        self.assertTrue(all(int(f["MODSEQ"]) == m for f in got))
        self.assertEqual(c.ok("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % m)[0], [])
        # a STORE that changes nothing raises nothing
        c.ok("STORE 2 +FLAGS.SILENT (\\Seen)")
        self.assertEqual(c.ok("FETCH 1:* (UID) (CHANGEDSINCE %d)" % m)[0], [])
        # SEARCH MODSEQ ends with the highest modseq found (3.1.5)
        untagged, _ = c.ok("SEARCH MODSEQ %d" % (hms + 1))
        self.assertEqual(untagged, ["* SEARCH 2 4 (MODSEQ %d)" % m])
        untagged, _ = c.ok("SEARCH MODSEQ %d" % (m + 1))
        self.assertEqual(untagged, ["* SEARCH"])
        # ESEARCH (RFC 4731 3.2): the MODSEQ of what is returned: MIN's or
        # MAX's alone, else the highest of all
        c.ok("STORE 4 +FLAGS (\\Flagged)")
        m4 = int(self.modseqs(c)[4])
        self.assertGreater(m4, m)
        untagged, tagged = c.ok("SEARCH RETURN (MIN) MODSEQ %d" % (hms + 1))
        tag = "t%d" % c.n
        self.assertEqual(untagged, ['* ESEARCH (TAG "%s") MIN 2 MODSEQ %d' % (tag, m)])
        untagged, tagged = c.ok("SEARCH RETURN (MAX) MODSEQ %d" % (hms + 1))
        tag = "t%d" % c.n
        self.assertEqual(untagged, ['* ESEARCH (TAG "%s") MAX 4 MODSEQ %d' % (tag, m4)])
        untagged, tagged = c.ok("SEARCH RETURN (MIN COUNT) MODSEQ %d" % (hms + 1))
        tag = "t%d" % c.n
        self.assertEqual(untagged, ['* ESEARCH (TAG "%s") MIN 2 COUNT 2 MODSEQ %d' % (tag, m4)])

    def test_conditional_store_rfc_example(self):
        """RFC 7162 3.1.3 example 7 in spirit: another client changed a
        message since the modseq this one knows, so the conditional STORE
        leaves it alone and names it in MODIFIED; the others change, and
        are told with MODSEQ even under .SILENT."""
        a = self.filled(5)
        untagged, _ = a.ok("SELECT %s (CONDSTORE)" % self.box)
        known = int(code_in(untagged, "HIGHESTMODSEQ"))
        b = self.client()
        b.ok("SELECT " + self.box)
        b.ok("STORE 3 +FLAGS.SILENT ($Label1)")
        untagged, tagged = a.ok("STORE 2:4 (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Deleted)" % known)
        self.assertEqual(code(tagged, "MODIFIED"), "3")
        told = {f["seq"]: f for f in map(fetch_items, [l for l in untagged if " FETCH " in l])}
        self.assertEqual(sorted(told), [2, 3, 4])  # 3 changed by b: told with its flags
        self.assertNotIn("FLAGS", told[2])  # .SILENT: MODSEQ only
        self.assertIn("$Label1", told[3]["FLAGS"])
        untagged, _ = a.ok("FETCH 2:4 (FLAGS)")
        flags = {f["seq"]: flag_set(f["FLAGS"]) for f in map(fetch_items, untagged)}
        self.assertIn("\\Deleted", flags[2])
        self.assertNotIn("\\Deleted", flags[3])
        self.assertIn("\\Deleted", flags[4])
        # UID STORE names UIDs; UNCHANGEDSINCE 0 fails for every message
        untagged, tagged = a.ok("UID STORE 1:5 (UNCHANGEDSINCE 0) +FLAGS (\\Flagged)")
        self.assertEqual(uid_set(code(tagged, "MODIFIED")), {1, 2, 3, 4, 5})
        self.assertEqual(untagged, [])
        # malformed: BAD, and the connection goes on
        _, tagged = a.command("STORE 1 (UNCHANGEDSINCE x) +FLAGS (\\Seen)")
        self.assertTrue(tagged.startswith("BAD"), tagged)
        a.ok("NOOP")

    def test_unsolicited_fetch_has_modseq(self):
        """RFC 7162 3.1.4.1 / 3.2.4: once enabled, FETCH told by NOOP carries
        MODSEQ, and under QRESYNC the UID too."""
        a = self.filled(3)
        a.ok("ENABLE QRESYNC")
        a.ok("SELECT " + self.box)
        b = self.client()
        b.ok("SELECT " + self.box)
        b.ok("STORE 2 +FLAGS (\\Answered)")
        untagged, _ = a.ok("NOOP")
        fetches = [l for l in untagged if " FETCH " in l]
        self.assertEqual(len(fetches), 1)
        f = fetch_items(fetches[0])
        self.assertEqual((f["seq"], f["UID"], flag_set(f["FLAGS"])), (2, "2", {"\\Answered"}))
        self.assertRegex(fetches[0], r"MODSEQ \(\d+\)\)$")

    def test_vanished_instead_of_expunge(self):
        """RFC 7162 3.2.10: under QRESYNC, EXPUNGE, another session's
        expunge and MOVE are told as VANISHED (UIDs), and the tagged OK of
        EXPUNGE carries HIGHESTMODSEQ; CLOSE says nothing."""
        a = self.filled(6)
        a.ok("CREATE %s.dst" % self.box)
        a.ok("ENABLE QRESYNC")
        a.ok("SELECT " + self.box)
        a.ok("STORE 2,3,5 +FLAGS.SILENT (\\Deleted)")
        untagged, tagged = a.ok("EXPUNGE")
        self.assertEqual(untagged, ["* VANISHED 2:3,5"])
        hms = int(code(tagged, "HIGHESTMODSEQ"))
        untagged, _ = a.ok("STATUS %s (HIGHESTMODSEQ)" % self.box)
        self.assertIn("HIGHESTMODSEQ %d" % hms, untagged[0])
        b = self.client()
        b.ok("SELECT " + self.box)
        b.ok("UID STORE 6 +FLAGS.SILENT (\\Deleted)")
        b.ok("UID EXPUNGE 6")
        untagged, _ = a.ok("NOOP")
        self.assertEqual(untagged, ["* VANISHED 6"])
        untagged, _ = a.ok("UID MOVE 1 %s.dst" % self.box)
        self.assertIn("* VANISHED 1", untagged)
        self.assertFalse(any(" EXPUNGE" in l for l in untagged))
        a.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
        untagged, _ = a.ok("CLOSE")
        self.assertEqual(untagged, [])

    def test_uid_fetch_vanished(self):
        """RFC 7162 3.2.6 (its example with this server's numbers): UID
        FETCH (CHANGEDSINCE VANISHED) reports the UIDs of the set expunged
        since, then the changed messages; VANISHED needs QRESYNC."""
        a = self.filled(8)
        untagged, _ = a.ok("SELECT %s (CONDSTORE)" % self.box)
        _, tagged = a.command("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
        self.assertTrue(tagged.startswith("BAD"), tagged)
        a.ok("UNSELECT")
        a.ok("ENABLE QRESYNC")
        untagged, _ = a.ok("SELECT %s" % self.box)
        since = int(code_in(untagged, "HIGHESTMODSEQ"))
        _, tagged = a.command("FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
        self.assertTrue(tagged.startswith("BAD"), tagged)  # UID FETCH only
        _, tagged = a.command("UID FETCH 1:* (FLAGS) (VANISHED)")
        self.assertTrue(tagged.startswith("BAD"), tagged)  # CHANGEDSINCE needed
        a.ok("UID STORE 2:4,7 +FLAGS.SILENT (\\Deleted)")
        a.ok("UID EXPUNGE 2:4,7")
        a.ok("UID STORE 5 +FLAGS (\\Seen)")
        untagged, _ = a.ok("UID FETCH 3:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % since)
        self.assertEqual(untagged[0], "* VANISHED (EARLIER) 3:4,7")
        self.assertEqual([int(fetch_items(l)["UID"]) for l in untagged[1:]], [5])
        # nothing expunged in the set since: no VANISHED line
        untagged, _ = a.ok("UID FETCH 8 (FLAGS) (CHANGEDSINCE %d VANISHED)" % since)
        self.assertEqual(untagged, [])

    def test_select_qresync_rfc_example(self):
        """RFC 7162 3.2.5.1: SELECT (QRESYNC (uidvalidity modseq known-uids))
        answers VANISHED (EARLIER) for the known UIDs expunged since, then
        FETCH of every message changed since, before the tagged OK."""
        a = self.filled(10)
        _, tagged = a.command("SELECT %s (QRESYNC (1 1))" % self.box)
        self.assertTrue(tagged.startswith("BAD"), tagged)  # not enabled
        a.ok("NOOP")
        a.ok("ENABLE QRESYNC")
        untagged, _ = a.ok("SELECT " + self.box)
        uv = int(code_in(untagged, "UIDVALIDITY"))
        since = int(code_in(untagged, "HIGHESTMODSEQ"))
        a.ok("UID STORE 1,2,9 +FLAGS.SILENT (\\Deleted)")
        a.ok("UID EXPUNGE 1,2,9")
        a.ok("UID STORE 5 +FLAGS.SILENT ($Work)")
        a.append(self.box, [msg(11)])  # UID 11
        a.ok("UNSELECT")
        untagged, tagged = a.ok("SELECT %s (QRESYNC (%d %d 2:10))" % (self.box, uv, since))
        i = untagged.index("* VANISHED (EARLIER) 2,9")
        fetched = [fetch_items(l) for l in untagged[i + 1:]]
        self.assertEqual([int(f["UID"]) for f in fetched], [5, 11])
        self.assertIn("$Work", fetched[0]["FLAGS"])
        self.assertTrue(all(int(f["MODSEQ"]) > since for f in fetched))
        self.assertIn("[READ-WRITE]", tagged)
        # without known-uids, every UID expunged since; sequence match data parses
        untagged, _ = a.ok("SELECT %s (QRESYNC (%d %d 1:20 (1:3 3,4,5)))" % (self.box, uv, since))
        self.assertIn("* OK [CLOSED] Previous mailbox closed.", untagged)
        self.assertIn("* VANISHED (EARLIER) 1:2,9", untagged)
        untagged, _ = a.ok("EXAMINE %s (QRESYNC (%d %d))" % (self.box, uv, since))
        self.assertIn("* VANISHED (EARLIER) 1:2,9", untagged)
        # another UIDVALIDITY: a plain SELECT, the client starts over
        untagged, _ = a.ok("SELECT %s (QRESYNC (%d %d))" % (self.box, uv + 1, since))
        self.assertFalse(any("VANISHED" in l or " FETCH " in l for l in untagged))
        # up to date: nothing to tell
        untagged, _ = a.ok("SELECT %s (CONDSTORE)" % self.box)
        now = int(code_in(untagged, "HIGHESTMODSEQ"))
        untagged, _ = a.ok("SELECT %s (QRESYNC (%d %d 1:*))" % (self.box, uv, now))
        self.assertFalse(any("VANISHED" in l or " FETCH " in l for l in untagged))
        _, tagged = a.command("SELECT %s (QRESYNC (%d))" % (self.box, uv))
        self.assertTrue(tagged.startswith("BAD"), tagged)
        a.ok("NOOP")

    def test_known_uids_split_a_run(self):
        """One EXPUNGE of 1:10 is one run; known-uids with holes and
        overlaps (and '*') answer exactly their part of it."""
        a = self.filled(12)
        a.ok("ENABLE QRESYNC")
        untagged, _ = a.ok("SELECT " + self.box)
        uv = int(code_in(untagged, "UIDVALIDITY"))
        since = int(code_in(untagged, "HIGHESTMODSEQ"))
        a.ok("UID STORE 1:10 +FLAGS.SILENT (\\Deleted)")
        self.assertEqual(a.ok("EXPUNGE")[0], ["* VANISHED 1:10"])
        a.ok("UNSELECT")
        for known, told in (("1,3,5:6,9", "1,3,5:6,9"), ("8:4,5:7,2", "2,4:8"), ("10:*", "10"),
                            ("11:12", None)):
            untagged, _ = a.ok("EXAMINE %s (QRESYNC (%d %d %s))" % (self.box, uv, since, known))
            vanished = [l for l in untagged if "VANISHED" in l]
            self.assertEqual(vanished, ["* VANISHED (EARLIER) " + told] if told else [], known)
        a.ok("SELECT " + self.box)
        untagged, _ = a.ok("UID FETCH 2,4,6:7,20 (FLAGS) (CHANGEDSINCE %d VANISHED)" % since)
        self.assertEqual(untagged, ["* VANISHED (EARLIER) 2,4,6:7"])

    def test_unchanged_mailbox_resync_bytes(self):
        """A client's resync of an unchanged 10,000-message mailbox, as
        Thunderbird or mbsync do it: without CONDSTORE every message's flags
        come again; with it, SELECT (CONDSTORE) and FETCH (CHANGEDSINCE)
        bring nothing."""
        n = 10000
        c = self.client()
        c.ok("CREATE " + self.box)
        for start in range(0, n, 50):
            c.append(self.box, [msg(i) for i in range(start, start + 50)])
        c.ok("SELECT " + self.box)
        c.ok("UID FETCH 1:* (UID FLAGS)")  # the first full sync (and \Recent taken)
        c.ok("UNSELECT")

        plain = Client(self.srv.port)
        self.clients.append(plain)
        start = plain.received
        plain.ok("SELECT " + self.box)
        untagged, _ = plain.ok("UID FETCH 1:* (UID FLAGS)")
        self.assertEqual(len(untagged), n)
        without = plain.received - start

        cond = Client(self.srv.port)
        self.clients.append(cond)
        untagged, _ = cond.ok("EXAMINE %s (CONDSTORE)" % self.box)
        known = int(code_in(untagged, "HIGHESTMODSEQ"))
        cond.ok("UNSELECT")
        start = cond.received
        untagged, _ = cond.ok("SELECT %s (CONDSTORE)" % self.box)
        self.assertEqual(int(code_in(untagged, "HIGHESTMODSEQ")), known)  # unchanged: nothing to fetch
        untagged, _ = cond.ok("UID FETCH 1:* (UID FLAGS) (CHANGEDSINCE %d)" % known)
        self.assertEqual(untagged, [])
        with_cs = cond.received - start
        print("\n    resync of an unchanged %d-message mailbox: %d bytes without CONDSTORE, %d with"
              % (n, without, with_cs))
        self.assertGreater(without, 100 * with_cs)


class TwoDaemonsQresyncTest(unittest.TestCase):
    """A client's cache, resynced with QRESYNC on daemon A after another
    daemon B changed the mailbox (flags, expunges, appends) in the same
    SQLite file, equals a full fetch; both daemons give each message the
    same modseq."""

    def test_resync_after_other_daemon(self):
        d = tempfile.TemporaryDirectory(prefix="aerogram-condstore-")
        storage = ["path = " + os.path.join(d.name, "mail.sqlite")]
        a = Server(USERS, tls=False, driver=SQLITE_DRIVER, storage=storage)
        b = Server(USERS, tls=False, driver=SQLITE_DRIVER, storage=storage)
        clients = []
        try:
            ca = Client(a.port)
            clients.append(ca)
            ca.ok("CREATE shared")
            ca.append("shared", [msg(i) for i in range(40)])
            ca.ok("ENABLE QRESYNC")
            untagged, _ = ca.ok("SELECT shared")
            uv = int(code_in(untagged, "UIDVALIDITY"))
            hms = int(code_in(untagged, "HIGHESTMODSEQ"))
            untagged, _ = ca.ok("UID FETCH 1:* (FLAGS)")
            cache = {int(f["UID"]): flag_set(f["FLAGS"]) for f in map(fetch_items, untagged)}
            self.assertEqual(len(cache), 40)
            ca.ok("LOGOUT")

            # B changes it, in many commands (the log grows a tail; some
            # changes land on expunged messages' neighbours)
            cb = Client(b.port)
            clients.append(cb)
            cb.ok("SELECT shared")
            cb.ok("UID STORE 1:10 +FLAGS.SILENT (\\Seen)")
            cb.ok("UID STORE 5:15 +FLAGS.SILENT (\\Deleted)")
            cb.ok("UID EXPUNGE 5:8")
            cb.ok("UID STORE 20,22,24 +FLAGS.SILENT ($Label1 \\Flagged)")
            cb.ok("UID STORE 9:15 -FLAGS.SILENT (\\Deleted)")
            cb.append("shared", [msg(100 + i) for i in range(5)])  # 41..45
            cb.ok("UID STORE 30:40 +FLAGS.SILENT (\\Deleted)")
            cb.ok("EXPUNGE")
            cb.ok("UID STORE 42 +FLAGS.SILENT (\\Answered)")
            cb.ok("UID STORE 22 -FLAGS.SILENT ($Label1)")
            for uid in (1, 2, 3):
                cb.ok("UID STORE %d +FLAGS.SILENT (\\Draft)" % uid)
            cb.ok("UID STORE 41 +FLAGS.SILENT (\\Deleted)")
            cb.ok("UID EXPUNGE 41")

            # the client comes back to A with what it knows
            ca2 = Client(a.port)
            clients.append(ca2)
            ca2.ok("ENABLE QRESYNC")
            untagged, _ = ca2.ok("SELECT shared (QRESYNC (%d %d %s))" % (uv, hms, compress(cache)))
            self.assertEqual(int(code_in(untagged, "UIDVALIDITY")), uv)
            vanished = set()
            changed = 0
            for line in untagged:
                if line.startswith("* VANISHED (EARLIER) "):
                    vanished |= uid_set(line.split()[-1])
                elif " FETCH " in line:
                    f = fetch_items(line)
                    cache[int(f["UID"])] = flag_set(f["FLAGS"])
                    changed += 1
            # 41 came and went after: not in known-uids, not told
            self.assertEqual(vanished, set(range(5, 9)) | set(range(30, 41)))
            for uid in vanished:
                cache.pop(uid, None)
            # exactly what a full fetch says, in both daemons, modseqs equal
            untagged, _ = ca2.ok("UID FETCH 1:* (FLAGS MODSEQ)")
            full_a = {int(f["UID"]): (flag_set(f["FLAGS"]), f["MODSEQ"]) for f in fetches(untagged)}
            self.assertEqual(cache, {u: fl for u, (fl, _) in full_a.items()})
            cb.ok("NOOP")
            untagged, _ = cb.ok("UID FETCH 1:* (FLAGS MODSEQ)")
            full_b = {int(f["UID"]): (flag_set(f["FLAGS"]), f["MODSEQ"]) for f in fetches(untagged)}
            self.assertEqual(full_a, full_b)
            sa = ca2.ok("STATUS shared (HIGHESTMODSEQ)")[0][0]
            sb = cb.ok("STATUS shared (HIGHESTMODSEQ)")[0][0]
            self.assertEqual(sa, sb)
            self.assertGreater(changed, 0)
            # and a second resync from where this one ended says nothing
            now = int(re.search(r"HIGHESTMODSEQ (\d+)", sa).group(1))
            ca2.ok("UNSELECT")
            untagged, _ = ca2.ok("SELECT shared (QRESYNC (%d %d %s))" % (uv, now, compress(cache)))
            self.assertFalse(any("VANISHED" in l or " FETCH " in l for l in untagged))
        finally:
            for c in clients:
                c.close()
            a.stop()
            b.stop()
            d.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
