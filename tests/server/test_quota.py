"""Quotas through a running aerogramd: `quota` / `quota_messages` in the
users file over `[auth] default_quota` / `default_quota_messages`; APPEND
(MULTIAPPEND as a whole), COPY refused with NO [OVERQUOTA] one byte or one
message past the limit and accepted exactly at it; MOVE always allowed;
the QUOTA extension (RFC 9208) reporting the sum of RFC822.SIZE; STATUS
SIZE, DELETED, DELETED-STORAGE; usage after EXPUNGE; two daemons on one
SQLite database seeing each other's mail in the usage; bad values refused
by `aerogramd -t` with the file and line. Run by `make check-server`, on
the memory driver and (AG_TEST_STORE=sqlite) on SQLite."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from agtest import AEROGRAMD, DRIVER, IO_TIMEOUT, Server  # noqa: E402
from agtest.case import DaemonCase, ServerCase  # noqa: E402

OVER = b"[OVERQUOTA] Quota exceeded (mailbox for user is full)"
SQLITE_DRIVER = os.path.join(os.path.dirname(DRIVER), "aerogram_sqlite.so")


def message(size, tag="m"):
    """A message of exactly `size` bytes."""
    head = b"Subject: " + tag.encode() + b"\r\n\r\n"
    assert size >= len(head)
    return head + b"x" * (size - len(head))


class QuotaServer(Server):
    """A daemon whose users file gives each user extra lines (quota keys):
    users maps a name to (password, [lines])."""

    def write_users(self, users):
        with open(self.users_path + ".tmp", "w") as f:
            for name, value in users.items():
                password, extra = value if isinstance(value, tuple) else (value, [])
                f.write("[%s]\npassword = %s\n%s\n" % (name, password, "".join(l + "\n" for l in extra)))
        os.replace(self.users_path + ".tmp", self.users_path)


class QuotaTest(ServerCase):
    """One daemon: default_quota = 10K for whoever has no quota key."""

    USERS = {
        "edge": ("{PLAIN}pw", ["quota = 2K", "quota_messages = unlimited"]),
        "multi": ("{PLAIN}pw", ["quota = 2K"]),
        "count": ("{PLAIN}pw", ["quota_messages = 3", "quota = unlimited"]),
        "copier": ("{PLAIN}pw", ["quota = 3073"]),
        "dflt": "{PLAIN}pw",
        "unl": ("{PLAIN}pw", ["quota = unlimited"]),
        "ovr": ("{PLAIN}pw", ["quota = 20k", "quota_messages = 50"]),
        "sum": ("{PLAIN}pw", ["quota = 1M", "quota_messages = 1000"]),
        "expunger": ("{PLAIN}pw", ["quota = 3K"]),
        "hup": ("{PLAIN}pw", ["quota = 4K"]),
        "caps": "{PLAIN}pw",
    }

    SERVER = {"auth": ["default_quota = 10K"]}
    server_class = QuotaServer

    def quotaroot(self, r, mailbox=b"INBOX"):
        """GETQUOTAROOT's lines, the tagged one last."""
        r.send(b"q GETQUOTAROOT " + mailbox + b"\r\n")
        return r.until_tagged(b"q")

    def assert_over(self, typ, data):
        self.assertEqual(typ, "NO")
        self.assertIn(OVER, data[0])

    def status(self, m, box, items):
        typ, data = m.status(box, "(" + items + ")")
        self.assertEqual(typ, "OK")
        found = dict(re.findall(r"([A-Z-]+) (\d+)", data[0].decode().split("(", 1)[1]))
        return {k: int(v) for k, v in found.items()}

    def test_capabilities(self):
        m = self.imap("caps")
        caps = m.capability()[1][0].decode().split()
        for c in ("QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE", "STATUS=SIZE"):
            self.assertIn(c, caps)
        self.assertNotIn("QUOTASET", caps)

    def test_append_at_the_edge(self):
        """2K = 2048 bytes: exactly at the limit is accepted, one byte more refused."""
        m = self.imap("edge")
        self.assertEqual(m.append("INBOX", None, None, message(1024))[0], "OK")
        self.assertEqual(m.append("Sent", None, None, message(1024))[0], "OK")
        self.assert_over(*m.append("INBOX", None, None, message(20)))
        r = self.login("edge")
        self.assertEqual(self.quotaroot(r), [b'* QUOTAROOT INBOX ""', b'* QUOTA "" (STORAGE 2 2)',
                                             b"q OK GETQUOTAROOT completed."])
        # nothing was added by the refused APPEND
        self.assertEqual(self.status(m, "INBOX", "MESSAGES SIZE"), {"MESSAGES": 1, "SIZE": 1024})
        # room freed by EXPUNGE fits again, to the byte, and no more
        m.select("Sent")
        m.store("1", "+FLAGS", "\\Deleted")
        m.expunge()
        small = message(15)
        self.assertEqual(m.append("Sent", None, None, message(1024 - 15))[0], "OK")
        self.assertEqual(m.append("Drafts", None, None, small)[0], "OK")
        self.assert_over(*m.append("Drafts", None, None, small))
        self.assertEqual(self.quotaroot(r)[1], b'* QUOTA "" (STORAGE 2 2)')

    def test_multiappend_is_one_command(self):
        """A MULTIAPPEND over the quota stores nothing; one at the limit stores all."""
        r = self.login("multi")
        a, b = message(1000, "a"), message(1049, "b")
        r.send(b"t1 APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s\r\n" % (len(a), a, len(b), b))
        self.assertIn(OVER, r.until_tagged(b"t1")[-1])
        r.send(b"t2 STATUS INBOX (MESSAGES SIZE)\r\n")
        self.assertIn(b"(MESSAGES 0 SIZE 0)", r.until_tagged(b"t2")[0])
        b = message(1048, "b")
        r.send(b"t3 APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s\r\n" % (len(a), a, len(b), b))
        self.assertTrue(r.until_tagged(b"t3")[-1].startswith(b"t3 OK [APPENDUID "))
        r.send(b"t4 STATUS INBOX (MESSAGES SIZE)\r\n")
        self.assertIn(b"(MESSAGES 2 SIZE 2048)", r.until_tagged(b"t4")[0])

    def test_message_limit(self):
        m = self.imap("count")
        for i in range(3):
            self.assertEqual(m.append("INBOX" if i % 2 else "Archive", None, None, message(100))[0], "OK")
        self.assert_over(*m.append("INBOX", None, None, message(100)))
        r = self.login("count")
        self.assertEqual(self.quotaroot(r)[:2], [b'* QUOTAROOT INBOX ""', b'* QUOTA "" (MESSAGE 3 3)'])
        # COPY of one message is one message too many; MOVE is fine
        m.select("INBOX")
        self.assert_over(*m.copy("1", "Trash"))
        typ, _ = m._simple_command("MOVE", "1", "Trash")
        self.assertEqual(typ, "OK")
        self.assertEqual(self.status(m, "Trash", "MESSAGES")["MESSAGES"], 1)

    def test_copy_and_move(self):
        """3073 bytes: 1024 + 1025 in INBOX, a COPY of the 1024 reaches the
        limit exactly, the next COPY passes it; MOVE adds nothing and stays
        allowed at the limit."""
        m = self.imap("copier")
        self.assertEqual(m.append("INBOX", None, None, message(1024, "a"))[0], "OK")
        self.assertEqual(m.append("INBOX", None, None, message(1025, "b"))[0], "OK")
        self.assertEqual(m.select("INBOX")[0], "OK")
        self.assertEqual(m.copy("1", "Archive")[0], "OK")
        self.assert_over(*m.copy("1", "Archive"))
        self.assert_over(*m.copy("2", "INBOX"))
        self.assert_over(*m.uid("COPY", "1:2", "Trash"))
        typ, _ = m._simple_command("MOVE", "2", "Trash")
        self.assertEqual(typ, "OK")
        typ, _ = m.uid("MOVE", "1", "Junk")
        self.assertEqual(typ, "OK")
        self.assertEqual(self.status(m, "Trash", "MESSAGES SIZE"), {"MESSAGES": 1, "SIZE": 1025})
        self.assertEqual(self.status(m, "Junk", "MESSAGES SIZE"), {"MESSAGES": 1, "SIZE": 1024})
        self.assertEqual(self.status(m, "INBOX", "MESSAGES")["MESSAGES"], 0)
        r = self.login("copier")
        self.assertEqual(self.quotaroot(r, b"Junk")[:2], [b'* QUOTAROOT Junk ""', b'* QUOTA "" (STORAGE 3 3)'])

    def test_default_and_override(self):
        """No key: the [auth] default; `unlimited`: no quota root at all; a
        user's own value wins over the default."""
        r = self.login("dflt")
        self.assertEqual(self.quotaroot(r), [b'* QUOTAROOT INBOX ""', b'* QUOTA "" (STORAGE 0 10)',
                                             b"q OK GETQUOTAROOT completed."])
        r = self.login("unl")
        self.assertEqual(self.quotaroot(r), [b"* QUOTAROOT INBOX", b"q OK GETQUOTAROOT completed."])
        r.send(b'g GETQUOTA ""\r\n')
        self.assertEqual(r.until_tagged(b"g"), [b"g NO [NONEXISTENT] GETQUOTA: no such quota root."])
        m = self.imap("unl")
        self.assertEqual(m.append("INBOX", None, None, message(40000))[0], "OK")
        r = self.login("ovr")
        r.send(b'g GETQUOTA ""\r\n')
        self.assertEqual(r.until_tagged(b"g"), [b'* QUOTA "" (STORAGE 0 20 MESSAGE 0 50)',
                                                b"g OK GETQUOTA completed."])

    def test_usage_is_the_sum_of_sizes(self):
        """GETQUOTA's numbers are the sum of FETCH RFC822.SIZE over every mailbox."""
        m = self.imap("sum")
        m.create("Work")
        m.create("Work.Old")
        sizes = {"INBOX": [100, 2000, 31337], "Work": [5000, 777], "Work.Old": [4096], "Sent": [12345]}
        for box, lst in sizes.items():
            for i, n in enumerate(lst):
                self.assertEqual(m.append(box, None, None, message(n, "%s%d" % (box, i)))[0], "OK")
        total = count = 0
        typ, data = m.list()
        for line in data:
            box = line.decode().rsplit(" ", 1)[1].strip('"')
            if int(m.select(box, readonly=True)[1][0]) == 0:
                continue
            typ, fetched = m.fetch("1:*", "(RFC822.SIZE)")
            for f in fetched:
                if f is None:
                    continue
                total += int(re.search(rb"RFC822\.SIZE (\d+)", f).group(1))
                count += 1
            self.assertEqual(self.status(m, box, "SIZE")["SIZE"],
                             sum(sizes.get(box, [])))
        self.assertEqual(total, sum(sum(v) for v in sizes.values()))
        r = self.login("sum")
        r.send(b'g GETQUOTA ""\r\n')
        self.assertEqual(r.until_tagged(b"g")[0],
                         b'* QUOTA "" (STORAGE %d 1024 MESSAGE %d 1000)' % (total // 1024, count))
        self.assertEqual(self.quotaroot(r, b"Work.Old")[:2],
                         [b'* QUOTAROOT Work.Old ""', b'* QUOTA "" (STORAGE %d 1024 MESSAGE %d 1000)'
                          % (total // 1024, count)])

    def test_expunge_lowers_usage(self):
        m = self.imap("expunger")
        for n in (1000, 1000, 1000):
            self.assertEqual(m.append("INBOX", None, None, message(n))[0], "OK")
        self.assert_over(*m.append("INBOX", None, None, message(100)))
        m.select("INBOX")
        m.store("1:2", "+FLAGS", "\\Deleted")
        self.assertEqual(self.status(m, "INBOX", "MESSAGES DELETED DELETED-STORAGE SIZE"),
                         {"MESSAGES": 3, "DELETED": 2, "DELETED-STORAGE": 2000, "SIZE": 3000})
        m.expunge()
        self.assertEqual(self.status(m, "INBOX", "MESSAGES DELETED DELETED-STORAGE SIZE"),
                         {"MESSAGES": 1, "DELETED": 0, "DELETED-STORAGE": 0, "SIZE": 1000})
        r = self.login("expunger")
        self.assertEqual(self.quotaroot(r)[1], b'* QUOTA "" (STORAGE 0 3)')
        self.assertEqual(m.append("INBOX", None, None, message(2072))[0], "OK")
        self.assertEqual(self.quotaroot(r)[1], b'* QUOTA "" (STORAGE 3 3)')
        # deleting a mailbox frees what it held
        m.create("Tmp")
        m.select("INBOX")
        self.assertEqual(m._simple_command("MOVE", "1:*", "Tmp")[0], "OK")
        m.select("Sent")
        self.assertEqual(m.delete("Tmp")[0], "OK")
        self.assertEqual(self.quotaroot(r)[1], b'* QUOTA "" (STORAGE 0 3)')

    def test_quota_commands_refused(self):
        r = self.login("dflt")
        r.send(b'a SETQUOTA "" (STORAGE 1000000)\r\n')
        self.assertEqual(r.until_tagged(b"a"), [b"a NO [NOPERM] SETQUOTA: quotas are set by the administrator."])
        r.send(b"b GETQUOTAROOT Nonexistent\r\n")
        self.assertTrue(r.until_tagged(b"b")[-1].startswith(b"b NO [NONEXISTENT]"))
        r.send(b'c GETQUOTA "User quota"\r\n')
        self.assertEqual(r.until_tagged(b"c"), [b"c NO [NONEXISTENT] GETQUOTA: no such quota root."])
        r.send(b"d GETQUOTA\r\n")
        self.assertTrue(r.until_tagged(b"d")[-1].startswith(b"d BAD"))
        # not before login
        r2 = self.raw()
        r2.line()
        r2.send(b"e GETQUOTAROOT INBOX\r\n")
        self.assertTrue(r2.until_tagged(b"e")[-1].startswith(b"e BAD"))

    def test_sighup_changes_the_limit(self):
        m = self.imap("hup")
        self.assertEqual(m.append("INBOX", None, None, message(3000))[0], "OK")
        self.assert_over(*m.append("INBOX", None, None, message(2000)))
        users = dict(self.USERS)
        users["hup"] = ("{PLAIN}pw", ["quota = 8K"])
        self.srv.write_users(users)
        before = self.srv.read_log().count("SIGHUP: reloaded")
        self.srv.proc.send_signal(signal.SIGHUP)
        for _ in range(400):
            if self.srv.read_log().count("SIGHUP: reloaded") > before:
                break
            import time
            time.sleep(0.05)
        # the same session: the next command takes the new limit
        self.assertEqual(m.append("INBOX", None, None, message(2000))[0], "OK")
        self.srv.write_users(self.USERS)


class TwoDaemonsTest(DaemonCase):
    """Two daemons on one SQLite database: each one's usage has the other's mail."""

    def test_usage_exact_across_daemons(self):
        d = tempfile.mkdtemp(prefix="aerogram-quota-")
        self.addCleanup(shutil.rmtree, d, True)
        storage = ["path = " + os.path.join(d, "mail.sqlite")]
        users = {"shared": ("{PLAIN}pw", ["quota = 5K", "quota_messages = 10"])}
        a = QuotaServer(users, tls=False, driver=SQLITE_DRIVER, storage=storage)
        self.addCleanup(a.stop)
        b = QuotaServer(users, tls=False, driver=SQLITE_DRIVER, storage=storage)
        self.addCleanup(b.stop)
        ma = self.imap("shared", srv=a)
        mb = self.imap("shared", srv=b)
        ra = self.login("shared", srv=a)

        def quota():
            # at once: no NOOP first, every check reads what the store has
            ra.send(b'g GETQUOTA ""\r\n')
            return [l for l in ra.until_tagged(b"g") if l.startswith(b"* QUOTA ")][0]

        self.assertEqual(quota(), b'* QUOTA "" (STORAGE 0 5 MESSAGE 0 10)')
        # the first daemon watches INBOX (a session has it selected): its
        # check does not wait for the watch to fire
        ra.send(b"s SELECT INBOX\r\n")
        ra.until_tagged(b"s")
        self.assertEqual(mb.append("INBOX", None, None, message(3072))[0], "OK")
        self.assertEqual(quota(), b'* QUOTA "" (STORAGE 3 5 MESSAGE 1 10)')
        # the first daemon refuses what would pass the limit with the second's mail
        self.assertEqual(ma.append("Sent", None, None, message(2049))[0], "NO")
        self.assertEqual(ma.append("Sent", None, None, message(2048))[0], "OK")
        self.assertEqual(quota(), b'* QUOTA "" (STORAGE 5 5 MESSAGE 2 10)')
        # and the second sees the first's
        self.assertEqual(mb.append("Drafts", None, None, message(20))[0], "NO")
        # an expunge in one frees room in the other
        mb.select("INBOX")
        mb.store("1", "+FLAGS", "\\Deleted")
        mb.expunge()
        self.assertEqual(quota(), b'* QUOTA "" (STORAGE 2 5 MESSAGE 1 10)')
        self.assertEqual(ma.append("INBOX", None, None, message(3072))[0], "OK")


class ConfigTest(unittest.TestCase):
    """Bad quota values stop `aerogramd -t` (and start-up) with file and line."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="aerogram-quota-config-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o600)
        return path

    def check(self, auth=(), users="[alice]\npassword = {PLAIN}a\n"):
        upath = self.write("users.ini", users)
        cpath = self.write("aerogram.conf", "[storage]\ndriver = %s\n[imap]\nlisten = 127.0.0.1:1\n"
                           "[auth]\nusers_file = %s\n%s" % (DRIVER, upath, "".join(l + "\n" for l in auth)))
        p = subprocess.run([AEROGRAMD, "-t", "-c", cpath], capture_output=True, text=True, timeout=IO_TIMEOUT)
        return p.returncode, (p.stdout + p.stderr).strip(), cpath, upath

    def test_good_values(self):
        for auth in (["default_quota = 10G", "default_quota_messages = 100000"],
                     ["default_quota = 512m"], ["default_quota = 1024"], ["default_quota = unlimited"],
                     ["default_quota = 1T", "default_quota_messages = UNLIMITED"]):
            rc, out, _, _ = self.check(auth)
            self.assertEqual(rc, 0, out)
        rc, out, _, _ = self.check(users="[a]\nquota = 1K\npassword = {PLAIN}a\nquota_messages = 7\n"
                                         "[b]\npassword = {PLAIN}b\nquota = unlimited\n")
        self.assertEqual(rc, 0, out)

    def test_bad_config_values(self):
        for value in ("0", "10X", "-1", "1.5G", "10 G", "", "1025T", "18446744073709551616",
                      "unlimitedx"):
            rc, out, cpath, _ = self.check(["failure_delay = 10", "default_quota = " + value])
            self.assertNotEqual(rc, 0, value)
            self.assertIn("%s:8: [auth] default_quota: must be unlimited, or a number of bytes" % cpath, out)
        for value in ("0", "1K", "4294967296", "x"):
            rc, out, cpath, _ = self.check(["default_quota_messages = " + value])
            self.assertNotEqual(rc, 0, value)
            self.assertIn("%s:7: [auth] default_quota_messages: must be unlimited, or a number of messages"
                          % cpath, out)

    def test_bad_users_values(self):
        cases = [
            ("[alice]\npassword = {PLAIN}a\nquota = lots\n", ":3: [alice] quota: must be unlimited, or a number"),
            ("[alice]\nquota = 0\npassword = {PLAIN}a\n", ":2: [alice] quota: must be unlimited"),
            ("[alice]\npassword = {PLAIN}a\nquota_messages = 1M\n",
             ":3: [alice] quota_messages: must be unlimited, or a number of messages"),
            ("[alice]\npassword = {PLAIN}a\nquota = 1G\nquota = 2G\n", ":4: [alice] quota: set twice"),
            ("[alice]\nquota = 1G\n", ":1: [alice]: no password line for this user"),
            ("[alice]\npassword = {PLAIN}a\nquotas = 1G\n", ":3: [alice] quotas: unknown key"),
        ]
        for users, needle in cases:
            rc, out, _, upath = self.check(users=users)
            self.assertNotEqual(rc, 0, users)
            self.assertIn(upath + needle, out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
