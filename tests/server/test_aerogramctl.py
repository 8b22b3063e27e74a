"""aerogramctl end to end: the real tool against a configuration on the SQLite driver (real
files), and a subset on the Garage driver over the emulator, beside real aerogramd processes.

- the subcommand framework: --help for each, one line and a non-zero status on errors;
- user add / passwd / del / list: the users file rewritten atomically, other sections, comments,
  mode and owner kept, accepted by aerogramd -t, and taken by a running daemon on SIGHUP (LOGIN);
- import of the 200-message mbox (tests/server/data/testmail.mbox) and of a Maildir with flags,
  interrupted half-way and resumed: every message once, flags and dates right, FETCH BODY[]
  byte-identical to the source message (line ends as CRLF, mboxrd ">From " unquoted);
- an import killed with SIGKILL at any moment, then resumed; a directory tree of both;
- export then re-import; check (missing parts, orphans) and stats; user del --purge.
Run by `make check-server`."""
import calendar
import datetime
import imaplib
import os
import pty
import re
import select
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from agtest import AEROGRAMCTL, AEROGRAMD, DRIVER, Server  # noqa: E402

SQLITE_DRIVER = os.path.join(os.path.dirname(DRIVER), "aerogram_sqlite.so")
GARAGE_DRIVER = os.path.join(os.path.dirname(DRIVER), "aerogram_garage.so")
TESTMAIL = os.path.join(HERE, "data", "testmail.mbox")
TIMEOUT = 120

FROM_LINE = re.compile(rb"^From \S+ +(?:\w{3} +)?(\w{3} +\d{1,2} +\d{1,2}:\d\d:\d\d +\d{4})[ \t]*\r?$", re.M)


def mbox_messages(data):
    """The messages of an mbox as import stores them: (bytes, date in seconds), in order."""
    starts = list(FROM_LINE.finditer(data))
    out = []
    for i, m in enumerate(starts):
        begin = m.end() + 1
        end = starts[i + 1].start() if i + 1 < len(starts) else len(data)
        msg = data[begin:end]
        if msg.endswith(b"\n\n"):
            msg = msg[:-1]
        msg = re.sub(rb"(?m)^>(>*From )", rb"\1", msg)
        msg = re.sub(rb"\r?\n", b"\r\n", msg)
        date = calendar.timegm(time.strptime(re.sub(rb" +", b" ", m.group(1)).decode(), "%b %d %H:%M:%S %Y"))
        out.append((msg, date))
    return out


def crlf(data):
    return re.sub(rb"\r?\n", b"\r\n", data)


def message(i, tag="m", msgid=True, extra=b""):
    head = b"From: a@example.org\nTo: b@example.org\nSubject: %s %d\n" % (tag.encode(), i)
    if msgid:
        head += b"Message-ID: <%s-%d@aerogram.test>\n" % (tag.encode(), i)
    return head + b"\nbody of %s %d\n" % (tag.encode(), i) + extra


def write_mbox(path, messages, start=1577836800):
    with open(path, "wb") as f:
        for i, m in enumerate(messages):
            quoted = re.sub(rb"(?m)^(>*From )", rb">\1", m)
            f.write(b"From sender@example.org %s\n" % time.asctime(time.gmtime(start + 60 * i)).encode())
            f.write(quoted + (b"" if quoted.endswith(b"\n") else b"\n") + b"\n")


def read_text(path):
    with open(path) as f:
        return f.read()


def internaldate(text):
    return int(datetime.datetime.strptime(text.decode(), "%d-%b-%Y %H:%M:%S %z").timestamp())


class Env:
    """A configuration (sqlite in a temporary directory, or the given [storage] lines) and
    its users file; aerogramctl runs on it, a daemon can be started on it."""

    def __init__(self, test, driver=SQLITE_DRIVER, storage=None, users=None):
        self.dir = tempfile.mkdtemp(prefix="aerogramctl-test-")
        test.addCleanup(shutil.rmtree, self.dir, True)
        self.test = test
        if storage is None:
            storage = ["path = " + os.path.join(self.dir, "mail.sqlite")]
        self.driver, self.storage = driver, storage
        self.daemon = None
        self.users = os.path.join(self.dir, "users.ini")
        if users is not None:
            with open(self.users, "w") as f:
                f.write(users)
            os.chmod(self.users, 0o600)
        self.conf = os.path.join(self.dir, "aerogram.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(["[storage]", "driver = " + driver] + storage +
                              ["[imap]", "listen = 127.0.0.1:1", "[auth]", "users_file = " + self.users]) + "\n")

    def ctl(self, *args, input=None, env=None, check=True, timeout=TIMEOUT):
        e = dict(os.environ)
        e.update(env or {})
        p = subprocess.run([AEROGRAMCTL, "-c", self.conf] + list(args), input=input, capture_output=True,
                           env=e, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError("aerogramctl %s: %d\n%s%s" % (" ".join(args), p.returncode,
                                                               p.stdout.decode(), p.stderr.decode()))
        return p

    def add_user(self, name, password="pw"):
        self.ctl("user", "add", name, input=password.encode() + b"\n")

    def start(self):
        """An aerogramd on the same store, with a users file of its own that is then
        replaced by a symbolic link to ours (the daemon reads the file the link names)."""
        self.daemon = Server({"placeholder": "{PLAIN}x"}, tls=False, driver=self.driver, storage=self.storage)
        os.unlink(self.daemon.users_path)
        os.symlink(self.users, self.daemon.users_path)
        self.daemon.proc.send_signal(signal.SIGHUP)
        self.test.assertTrue(self.daemon.wait_log("SIGHUP: reloaded"), self.daemon.read_log())
        self.test.addCleanup(self.stop)
        return self.daemon

    def hup(self):
        before = self.daemon.read_log().count("SIGHUP: reloaded")
        self.daemon.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + TIMEOUT
        while self.daemon.read_log().count("SIGHUP: reloaded") <= before:
            self.test.assertLess(time.monotonic(), deadline, self.daemon.read_log())
            time.sleep(0.05)

    def stop(self):
        if self.daemon is not None:
            d, self.daemon = self.daemon, None
            d.stop()

    def imap(self, user, password="pw"):
        m = imaplib.IMAP4("127.0.0.1", self.daemon.port, timeout=TIMEOUT)
        m.login(user, password)
        self.test.addCleanup(lambda: m.shutdown())
        return m

    def can_login(self, user, password):
        m = imaplib.IMAP4("127.0.0.1", self.daemon.port, timeout=TIMEOUT)
        try:
            m.login(user, password)
            m.logout()
            return True
        except imaplib.IMAP4.error:
            return False
        finally:
            try:
                m.shutdown()
            except OSError:
                pass


def quote(box):
    return '"%s"' % box


def fetch_all(m, box):
    """(uid, flags without \\Recent, internal date in seconds, body) of every message of box."""
    typ, data = m.select(quote(box), readonly=True)
    assert typ == "OK", data
    if int(data[0]) == 0:
        return []
    typ, data = m.fetch("1:*", "(UID FLAGS INTERNALDATE BODY.PEEK[])")
    assert typ == "OK", data
    out = []
    for item in data:
        if not isinstance(item, tuple):
            continue
        head, body = item
        uid = int(re.search(rb"UID (\d+)", head).group(1))
        flags = set(re.search(rb"FLAGS \(([^)]*)\)", head).group(1).split()) - {b"\\Recent"}
        date = internaldate(re.search(rb'INTERNALDATE "([^"]+)"', head).group(1))
        out.append((uid, flags, date, body))
    return sorted(out)


def store_counts(env, user):
    """The (mailbox, messages) lines of aerogramctl stats."""
    out = env.ctl("stats", user).stdout.decode().splitlines()
    counts = {}
    for line in out[1:-1]:
        parts = line.split(None, 3)
        counts[parts[3]] = int(parts[0])
    return counts


class Framework(unittest.TestCase):
    def test_help_lists_every_subcommand_and_each_has_help(self):
        out = subprocess.run([AEROGRAMCTL, "--help"], capture_output=True, text=True, check=True).stdout
        subs = ["user add", "user passwd", "user del", "user list", "import", "export", "check", "stats",
                "hash-password", "version"]
        for sub in subs:
            self.assertIn("  " + sub + " ", out)
            p = subprocess.run([AEROGRAMCTL] + sub.split() + ["--help"], capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, sub)
            self.assertIn("usage: aerogramctl [-c FILE] " + sub, p.stdout)
        # help SUB says the same
        p = subprocess.run([AEROGRAMCTL, "help", "import"], capture_output=True, text=True, check=True)
        self.assertIn("Message-ID", p.stdout)

    def test_errors_are_one_line_and_non_zero(self):
        env = Env(self, users="[alice]\npassword = {PLAIN}x\n")
        cases = [
            (["frobnicate"], 2, "no subcommand frobnicate"),
            (["import", "alice"], 2, "usage: aerogramctl import"),
            (["import", "nobody", TESTMAIL], 1, "no user nobody in"),
            (["export", "alice", "NoSuchBox", os.path.join(env.dir, "x.mbox")], 1, "no such mailbox"),
            (["import", "alice", os.path.join(env.dir, "missing")], 1, "No such file or directory"),
            (["import", "alice", env.users], 1, "not an mbox"),
            (["user", "add", "bad/name"], 1, "a user name is"),
            (["user", "passwd", "nobody"], 1, "no user nobody in"),
            (["check", "alice", "--grace", "x"], 2, "--grace"),
            (["import", "alice", "--bogus", TESTMAIL], 2, "usage"),
        ]
        for args, status, text in cases:
            p = env.ctl(*args, check=False, input=b"pw\n")
            self.assertEqual(p.returncode, status, (args, p.stderr))
            err = p.stderr.decode()
            self.assertEqual(err.count("\n"), 1, (args, err))
            self.assertTrue(err.startswith("aerogramctl: "), err)
            self.assertIn(text, err)
        # a configuration with an unknown key: its file and line
        with open(env.conf, "a") as f:
            f.write("bogus = 1\n")
        p = env.ctl("user", "list", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("aerogram.conf:", p.stderr.decode())
        self.assertEqual(p.stderr.decode().count("\n"), 1)


class Users(unittest.TestCase):
    ORIGINAL = ("# The users of this test.\n"
                "[alice]\n"
                "password = {PLAIN}alice-pw\n"
                "\n"
                "; bob is an admin\n"
                "[bob]\n"
                "  password = {PLAIN}bob-pw ; with a semicolon\n"
                "# after bob\n")

    def test_users_file_edits_keep_the_rest_and_daemons_take_them_on_sighup(self):
        env = Env(self, users=self.ORIGINAL)
        os.chmod(env.users, 0o640)
        if os.geteuid() == 0:
            os.chown(env.users, 65534, 65534)
        d = env.start()
        self.assertFalse(env.can_login("carol", "carol-pw"))
        p = env.ctl("user", "add", "carol", input=b"carol-pw\n")
        self.assertIn("SIGHUP", p.stdout.decode())
        text = read_text(env.users)
        self.assertTrue(text.startswith(self.ORIGINAL), text)
        self.assertRegex(text[len(self.ORIGINAL):], r"^\n\[carol\]\npassword = \$argon2id\$v=19\$m=65536,t=3,p=1\$")
        st = os.stat(env.users)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o640)
        if os.geteuid() == 0:
            self.assertEqual((st.st_uid, st.st_gid), (65534, 65534))
        # the daemon knows carol only after SIGHUP
        self.assertFalse(env.can_login("carol", "carol-pw"))
        env.hup()
        self.assertTrue(env.can_login("carol", "carol-pw"))
        self.assertTrue(env.can_login("bob", "bob-pw ; with a semicolon"))

        # passwd: only bob's password line changes (its indentation kept)
        pwfile = os.path.join(env.dir, "pw")
        with open(pwfile, "w") as f:
            f.write("new bob pw\n")
        env.ctl("user", "passwd", "bob", "--password-file", pwfile)
        after = read_text(env.users).splitlines()
        before = text.splitlines()
        changed = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
        self.assertEqual(len(before), len(after))
        self.assertEqual(changed, [6])
        self.assertTrue(after[6].startswith("  password = $argon2id$"), after[6])
        env.hup()
        self.assertTrue(env.can_login("bob", "new bob pw"))
        self.assertFalse(env.can_login("bob", "bob-pw ; with a semicolon"))

        # del: the header and the key go, comments stay
        env.ctl("user", "del", "alice")
        text = read_text(env.users)
        self.assertNotIn("[alice]", text)
        self.assertNotIn("alice-pw", text)
        for comment in ("# The users of this test.", "; bob is an admin", "# after bob"):
            self.assertIn(comment, text)
        self.assertEqual(env.ctl("user", "list").stdout.decode().split(), ["bob", "carol"])
        env.hup()
        self.assertFalse(env.can_login("alice", "alice-pw"))
        # every version passed the daemon's own check
        p = subprocess.run([AEROGRAMD, "-t", "-c", d.config_path], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(env.users).st_mode), 0o640)
        # no temporary file left behind
        self.assertEqual(sorted(f for f in os.listdir(env.dir) if f.startswith(".")), [])

    def test_refusals_leave_the_file_alone(self):
        env = Env(self, users=self.ORIGINAL)
        for args, text in ((["user", "add", "alice"], "exists already"),
                           (["user", "add", "ALICE"], "exists already in %s as alice" % os.path.realpath(env.users)),
                           (["user", "add", "x y"], "a user name is"),
                           (["user", "del", "nobody"], "no user nobody")):
            p = env.ctl(*args, input=b"pw\n", check=False)
            self.assertEqual(p.returncode, 1, args)
            self.assertIn(text, p.stderr.decode())
        p = env.ctl("user", "add", "dave", input=b"\n", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("empty", p.stderr.decode())
        self.assertEqual(read_text(env.users), self.ORIGINAL)
        # a users file the daemon would refuse is not edited
        with open(env.users, "a") as f:
            f.write("[eve]\n")
        p = env.ctl("user", "add", "dave", input=b"pw\n", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("no password line for this user", p.stderr.decode())
        self.assertIn("fix the users file first", p.stderr.decode())

    def test_missing_users_file_is_created_private(self):
        env = Env(self)
        env.add_user("first")
        self.assertEqual(stat.S_IMODE(os.stat(env.users).st_mode), 0o600)
        self.assertEqual(env.ctl("user", "list").stdout, b"first\n")

    def test_password_prompt_on_a_terminal_has_no_echo(self):
        env = Env(self, users="")
        pid, fd = pty.fork()
        if pid == 0:
            os.execv(AEROGRAMCTL, [AEROGRAMCTL, "-c", env.conf, "user", "add", "tty-user"])
        out = b""

        def until(text):
            nonlocal out
            deadline = time.monotonic() + TIMEOUT
            while text not in out:
                self.assertLess(time.monotonic(), deadline, out)
                r, _, _ = select.select([fd], [], [], 1)
                if r:
                    try:
                        out += os.read(fd, 4096)
                    except OSError:
                        break
        until(b"New password for tty-user: ")
        os.write(fd, b"s3cret-tty\n")
        until(b"Again: ")
        os.write(fd, b"s3cret-tty\n")
        until(b"added user tty-user")
        _, status = os.waitpid(pid, 0)
        os.close(fd)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0, out)
        self.assertNotIn(b"s3cret-tty", out)
        env.start()
        self.assertTrue(env.can_login("tty-user", "s3cret-tty"))


class Import(unittest.TestCase):
    def setUp(self):
        self.env = Env(self, users="")
        self.env.add_user("alice")
        self.env.add_user("bob")
        with open(TESTMAIL, "rb") as f:
            self.mbox = f.read()
        self.expected = mbox_messages(self.mbox)
        self.assertEqual(len(self.expected), 200)

    def assert_mbox_in(self, m, box, expected, flags=None):
        got = fetch_all(m, box)
        self.assertEqual(len(got), len(expected))
        for (uid, fl, date, body), (msg, when) in zip(got, expected):
            self.assertEqual(body, msg, "UID %d" % uid)
            self.assertEqual(date, when, "UID %d" % uid)
            self.assertEqual(fl, flags or set(), "UID %d" % uid)

    def test_mbox_interrupted_half_way_then_resumed(self):
        env = self.env
        p = env.ctl("import", "alice", "--batch", "10", TESTMAIL, env={"AEROGRAMCTL_STOP_AFTER": "100"}, check=False)
        self.assertEqual(p.returncode, 130, p.stderr)
        self.assertIn("interrupted", p.stderr.decode())
        self.assertEqual(p.stderr.decode().count("\n"), 1, p.stderr)
        self.assertIn("100 added, 0 already there", p.stdout.decode())
        self.assertEqual(store_counts(env, "alice")["INBOX"], 100)
        p = env.ctl("import", "alice", TESTMAIL)
        self.assertIn("100 added, 100 already there", p.stdout.decode())
        # and once more: nothing
        p = env.ctl("import", "alice", TESTMAIL)
        self.assertIn("0 added, 200 already there", p.stdout.decode())
        self.assertIn("messages/s", p.stdout.decode())
        env.start()
        self.assert_mbox_in(env.imap("alice"), "INBOX", self.expected)
        out = env.ctl("check", "alice").stdout.decode()
        self.assertIn("ok alice: 6 mailboxes, 200 messages, 0 with a missing or bad part", out)

    def test_line_ends_stored_as_append_stores_them(self):
        """CR CR LF becomes CR LF, as at APPEND; importing again finds it there."""
        env = self.env
        path = os.path.join(env.dir, "crcr.mbox")
        write_mbox(path, [b"Subject: crcr\r\r\nMessage-ID: <crcr@aerogram.test>\r\r\n\r\r\nbody\rx\r\r\n"])
        self.assertIn("1 added, 0 already there", env.ctl("import", "alice", path).stdout.decode())
        self.assertIn("0 added, 1 already there", env.ctl("import", "alice", path).stdout.decode())
        env.start()
        got = fetch_all(env.imap("alice"), "INBOX")
        self.assertEqual([body for _, _, _, body in got],
                         [b"Subject: crcr\r\nMessage-ID: <crcr@aerogram.test>\r\n\r\nbody\rx\r\n"])

    def test_killed_at_any_moment_then_resumed(self):
        env = self.env
        path = os.path.join(env.dir, "many.mbox")
        msgs = [message(i, "k", extra=b"From the middle of a line\n>From quoted\n" * (i % 3)) for i in range(3000)]
        write_mbox(path, msgs)
        proc = subprocess.Popen([AEROGRAMCTL, "-c", env.conf, "import", "alice", "--batch", "5", path],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.15)
        proc.kill()
        proc.wait()
        first = store_counts(env, "alice")["INBOX"]
        print("killed after %d of 3000" % first, file=sys.stderr)
        self.assertEqual(first % 5, 0)  # whole batches or nothing
        p = env.ctl("import", "alice", path)
        self.assertIn("%d added, %d already there" % (3000 - first, first), p.stdout.decode())
        env.start()
        m = env.imap("alice")
        got = fetch_all(m, "INBOX")
        self.assertEqual([g[3] for g in got], [crlf(x) for x in msgs])
        self.assertIn("0 with a missing or bad part", env.ctl("check", "alice").stdout.decode())

    def test_maildir_with_flags_interrupted_then_resumed(self):
        env = self.env
        md = os.path.join(env.dir, "Maildir")
        base = 1500000000
        files = []  # (mailbox, relative path, bytes, mtime, flags)

        def put(box, folder, sub, name, data, t, flags):
            d = os.path.join(md, folder, sub) if folder else os.path.join(md, sub)
            for s in ("cur", "new", "tmp"):
                os.makedirs(os.path.join(os.path.dirname(d), s), exist_ok=True)
            path = os.path.join(d, name)
            with open(path, "wb") as f:
                f.write(data)
            os.utime(path, (t, t))
            files.append((box, data, t, flags))

        put("INBOX", None, "cur", "%d.M1P1.host,S=10:2,S" % base, message(1, "md"), base + 1, {b"\\Seen"})
        put("INBOX", None, "cur", "%d.M2P1.host:2,FR" % base, message(2, "md"), base + 2,
            {b"\\Flagged", b"\\Answered"})
        put("INBOX", None, "cur", "%d.M3P1.host:2,DT" % base, message(3, "md"), base + 3, {b"\\Draft", b"\\Deleted"})
        put("INBOX", None, "cur", "%d.M4P1.host:2,RSab" % base, message(4, "md"), base + 4,
            {b"\\Answered", b"\\Seen", b"$Label1", b"Work"})
        put("INBOX", None, "cur", "%d.M5P1.host:2,P" % base, message(5, "md"), base + 5, {b"$Forwarded"})
        put("INBOX", None, "new", "%d.M6P1.host" % base, message(6, "md"), base + 6, set())
        # two identical messages without Message-ID: both kept, and not added again
        put("INBOX", None, "cur", "%d.M7P1.host:2,S" % base, message(7, "md", msgid=False), base + 7, {b"\\Seen"})
        put("INBOX", None, "cur", "%d.M8P1.host:2,S" % base, message(7, "md", msgid=False), base + 8, {b"\\Seen"})
        # already CRLF: stays as it is
        put("INBOX", None, "cur", "%d.M9P1.host:2," % base, crlf(message(9, "md")), base + 9, set())
        put("Sub.Folder", ".Sub.Folder", "cur", "%d.M10P1.host:2,S" % base, message(10, "md"), base + 10,
            {b"\\Seen"})
        put("Work", ".Work", "new", "%d.M11P1.host" % base, message(11, "md"), base + 11, set())
        put("Gr&APw-n", ".Gr&APw-n", "cur", "%d.M12P1.host:2,F" % base, message(12, "md"), base + 12,
            {b"\\Flagged"})
        with open(os.path.join(md, "dovecot-keywords"), "w") as f:
            f.write("0 $Label1\n1 Work\n")
        p = env.ctl("import", "bob", "--batch", "2", md, env={"AEROGRAMCTL_STOP_AFTER": "4"}, check=False)
        self.assertEqual(p.returncode, 130, p.stderr)
        self.assertEqual(store_counts(env, "bob")["INBOX"], 4)
        p = env.ctl("import", "bob", md)
        out = p.stdout.decode()
        self.assertIn("INBOX: 9 messages", out)
        self.assertIn("5 added, 4 already there", out)
        self.assertIn("Sub.Folder: 1 messages", out)
        self.assertIn("Grün: 1 messages", out)
        env.ctl("import", "bob", md)
        env.start()
        m = env.imap("bob")
        typ, boxes = m.list()
        names = [b.split(b' "." ')[-1].strip(b'"') for b in boxes]
        for box in (b"INBOX", b"Sub.Folder", b"Work", b"Gr&APw-n"):
            self.assertIn(box, names)
        for box in ("INBOX", "Sub.Folder", "Work", "Gr&APw-n"):
            want = [(crlf(data), t, flags) for b, data, t, flags in files if b == box]
            got = [(body, date, fl) for _, fl, date, body in fetch_all(m, box)]
            self.assertEqual(got, want, box)

    def test_a_tree_of_mbox_files_and_maildirs(self):
        env = self.env
        tree = os.path.join(env.dir, "Mail")
        os.makedirs(os.path.join(tree, "lists"))
        os.makedirs(os.path.join(tree, "Old.sbd"))
        write_mbox(os.path.join(tree, "inbox"), [message(i, "in") for i in range(3)])
        write_mbox(os.path.join(tree, "lists", "dev"), [message(i, "dev") for i in range(2)])
        write_mbox(os.path.join(tree, "Old.sbd", "2019"), [message(i, "old") for i in range(4)])
        for s in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(tree, "md", s))
            os.makedirs(os.path.join(tree, "md", ".Sub", s))
        with open(os.path.join(tree, "md", "new", "1.M1.h"), "wb") as f:
            f.write(message(1, "md"))
        with open(os.path.join(tree, "md", ".Sub", "cur", "2.M2.h:2,S"), "wb") as f:
            f.write(message(2, "md"))
        with open(os.path.join(tree, "notes.txt"), "w") as f:
            f.write("not mail\n")
        p = env.ctl("import", "alice", tree)
        self.assertIn("skipped %s: not an mbox file" % os.path.join(tree, "notes.txt"), p.stdout.decode())
        counts = store_counts(env, "alice")
        for box, n in (("INBOX", 3), ("lists.dev", 2), ("Old.2019", 4), ("md", 1), ("md.Sub", 1)):
            self.assertEqual(counts.get(box), n, counts)
        # below a mailbox given with --mailbox
        env.ctl("import", "bob", "--mailbox", "Imported", tree)
        counts = store_counts(env, "bob")
        for box, n in (("Imported.inbox", 3), ("Imported.lists.dev", 2), ("Imported.md.Sub", 1)):
            self.assertEqual(counts.get(box), n, counts)

    def test_import_while_a_daemon_serves_the_mailbox(self):
        env = self.env
        env.start()
        m = env.imap("alice")
        typ, data = m.select("INBOX")
        self.assertEqual(int(data[0]), 0)
        env.ctl("import", "alice", TESTMAIL)
        deadline = time.monotonic() + TIMEOUT
        exists = 0
        while exists != 200:
            self.assertLess(time.monotonic(), deadline)
            typ, data = m.noop()
            for line in m.untagged_responses.get("EXISTS", []):
                exists = int(line)
            m.untagged_responses.pop("EXISTS", None)
            time.sleep(0.05)
        self.assert_mbox_in(m, "INBOX", self.expected)

    def test_export_then_import_round_trip(self):
        env = self.env
        env.ctl("import", "alice", TESTMAIL)
        out = os.path.join(env.dir, "out.mbox")
        p = env.ctl("export", "alice", "INBOX", out)
        self.assertIn("exported 200 messages", p.stdout.decode())
        with open(out, "rb") as f:
            exported = f.read()
        # mboxrd: this source's mboxo-quoted lines come back as they were
        self.assertEqual(exported, self.mbox)
        self.assertEqual(env.ctl("export", "alice", "INBOX", out, check=False).returncode, 1)
        env.ctl("import", "bob", "--mailbox", "Copy", out)
        env.start()
        m = env.imap("alice")
        m.select("INBOX")
        m.store("1:10", "+FLAGS", "(\\Seen \\Flagged)")
        m.store("5:15", "+FLAGS", "(\\Answered $Important)")
        a = fetch_all(m, "INBOX")
        b = fetch_all(env.imap("bob"), "Copy")
        self.assertEqual([(x[2], x[3]) for x in a], [(x[2], x[3]) for x in b])
        # with the flags in Status headers
        flagged = os.path.join(env.dir, "flags.mbox")
        env.ctl("export", "alice", "INBOX", flagged, "--flags")
        env.ctl("import", "bob", "--mailbox", "Flags", flagged)
        c = fetch_all(env.imap("bob"), "Flags")
        self.assertEqual([x[1] for x in a], [x[1] for x in c])
        self.assertEqual([x[2] for x in a], [x[2] for x in c])
        # to standard output
        p = env.ctl("export", "alice", "INBOX", "-")
        self.assertEqual(p.stdout, self.mbox)

    def test_check_and_stats(self):
        env = self.env
        env.ctl("import", "alice", TESTMAIL)
        env.ctl("import", "alice", "--mailbox", "Second", TESTMAIL)
        out = env.ctl("stats", "alice").stdout.decode()
        self.assertIn("total for alice: 7 mailboxes, 400 messages (400 unseen), %d bytes"
                      % (2 * sum(len(x) for x, _ in self.expected)), out)
        self.assertIn("200        200", out)
        # orphans: two messages expunged by a daemon, not collected yet
        env.start()
        m = env.imap("alice")
        m.select("INBOX")
        m.store("1:2", "+FLAGS", "(\\Deleted)")
        m.expunge()
        out = env.ctl("check", "alice", "--grace", "0").stdout.decode()
        self.assertIn("INBOX: 198 messages", out)
        self.assertIn("orphans: 2 bodies, 2 summaries", out)
        # a body and a summary lost (bob's only mailbox with messages)
        env.ctl("import", "bob", TESTMAIL)
        db = sqlite3.connect(os.path.join(env.dir, "mail.sqlite"), timeout=30)
        pk, = db.execute("SELECT DISTINCT pk FROM ag_rows WHERE pk LIKE 'bob/mail/%' AND n_live > 0").fetchone()
        rows = db.execute("SELECT sk FROM ag_rows WHERE pk = ? ORDER BY sk", (pk,)).fetchall()
        self.assertEqual(len(rows), 200)
        db.execute("DELETE FROM ag_blobs WHERE key = ?", (pk + "/" + rows[10][0],))
        db.execute("DELETE FROM ag_rows WHERE pk = ? AND sk = ?", (pk, rows[20][0]))
        db.commit()
        db.close()
        p = env.ctl("check", "bob", check=False)
        self.assertEqual(p.returncode, 1)
        out = p.stdout.decode()
        self.assertEqual(len(re.findall(r"UID \d+: no body", out)), 1, out)
        self.assertEqual(len(re.findall(r"UID \d+: no summary", out)), 1, out)
        self.assertIn("PROBLEMS bob", out)
        self.assertEqual(p.stderr.decode().count("\n"), 1)

    def test_user_del_purge_removes_the_mail(self):
        env = self.env
        env.ctl("import", "alice", TESTMAIL)
        env.ctl("import", "alice", "--mailbox", "Lists.Dev", TESTMAIL)
        env.ctl("import", "bob", TESTMAIL)
        p = env.ctl("user", "del", "alice", "--purge")
        self.assertIn("removed 7 mailboxes (400 messages) of alice", p.stdout.decode())
        self.assertNotIn("alice", env.ctl("user", "list").stdout.decode())
        db = sqlite3.connect(os.path.join(env.dir, "mail.sqlite"), timeout=30)
        live = db.execute("SELECT count(*) FROM ag_rows WHERE pk LIKE 'alice/mail/%' AND n_live > 0").fetchone()[0]
        blobs = db.execute("SELECT count(*) FROM ag_blobs WHERE key LIKE 'alice/mail/%'").fetchone()[0]
        bob = db.execute("SELECT count(*) FROM ag_blobs WHERE key LIKE 'bob/mail/%'").fetchone()[0]
        db.close()
        self.assertEqual((live, blobs, bob), (0, 0, 200))
        env.add_user("alice")
        self.assertEqual(store_counts(env, "alice"), {"INBOX": 0})


@unittest.skipUnless(os.path.exists(GARAGE_DRIVER), "no garage driver built")
class Garage(unittest.TestCase):
    """The same tool on the Garage driver, over the emulator."""

    @classmethod
    def setUpClass(cls):
        from agtest.garage import Emu
        cls.emu = Emu()

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()

    def env(self):
        # a fresh user prefix per test: the bucket is shared
        return Env(self, driver=GARAGE_DRIVER, storage=self.emu.storage(), users="")

    def test_users_import_export_check_stats_purge(self):
        env = self.env()
        env.add_user("gina")
        env.add_user("hugo")
        env.start()
        self.assertTrue(env.can_login("gina", "pw"))
        with open(TESTMAIL, "rb") as f:
            mbox = f.read()
        expected = mbox_messages(mbox)
        p = env.ctl("import", "gina", "--batch", "20", TESTMAIL, env={"AEROGRAMCTL_STOP_AFTER": "100"},
                    check=False)
        self.assertEqual(p.returncode, 130, p.stderr)
        p = env.ctl("import", "gina", TESTMAIL)
        self.assertIn("100 added, 100 already there", p.stdout.decode())
        got = fetch_all(env.imap("gina"), "INBOX")
        self.assertEqual([(g[3], g[2]) for g in got], expected)
        out = os.path.join(env.dir, "out.mbox")
        env.ctl("export", "gina", "INBOX", out)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), mbox)
        env.ctl("import", "hugo", out)
        self.assertEqual([g[3] for g in fetch_all(env.imap("hugo"), "INBOX")], [e[0] for e in expected])
        self.assertIn("ok gina: 6 mailboxes, 200 messages, 0 with a missing or bad part",
                      env.ctl("check", "gina").stdout.decode())
        self.assertIn("total for gina: 6 mailboxes, 200 messages", env.ctl("stats", "gina").stdout.decode())
        env.ctl("user", "passwd", "gina", input=b"other\n")
        env.hup()
        self.assertTrue(env.can_login("gina", "other"))
        p = env.ctl("user", "del", "hugo", "--purge")
        self.assertIn("(200 messages) of hugo", p.stdout.decode())
        env.hup()
        self.assertFalse(env.can_login("hugo", "pw"))
        env.add_user("hugo")
        self.assertEqual(store_counts(env, "hugo"), {"INBOX": 0})

    def test_copy_store_from_sqlite_then_imap_on_garage(self):
        """copy-store sqlite to garage, interrupted and resumed; IMAP on the new store shows
        the same mailboxes, contents, flags and dates (UIDs may differ)."""
        src = Env(self, users="")
        src.add_user("ivy")
        src.ctl("import", "ivy", TESTMAIL)
        src.ctl("import", "ivy", "--mailbox", "Archive/2020", TESTMAIL)
        src.start()
        m = src.imap("ivy")
        m.select("INBOX")
        m.store("1:5", "+FLAGS", "(\\Flagged $Work)")
        m.create("Empty")
        m.subscribe("Archive/2020")
        boxes = ["INBOX", "Archive/2020", "Empty"]
        before = {box: [(g[1], g[2], g[3]) for g in fetch_all(m, box)] for box in boxes}
        src.stop()
        dst = self.env()
        shutil.copyfile(src.users, dst.users)
        p = src.ctl("copy-store", "--to", dst.conf, "--limit", "150", check=False)
        self.assertEqual(p.returncode, 3, p.stdout.decode() + p.stderr.decode())
        p = src.ctl("copy-store", "--to", dst.conf)
        self.assertIn("verified", p.stdout.decode().lower())
        dst.start()
        n = dst.imap("ivy")
        after = {box: [(g[1], g[2], g[3]) for g in fetch_all(n, box)] for box in boxes}
        for box in boxes:
            self.assertEqual(sorted(after[box]), sorted(before[box]), box)
        typ, data = n.lsub('""', "*")
        self.assertIn(b"Archive/2020", b" ".join(d for d in data if d))

    def test_undelete_through_the_command(self):
        env = self.env()
        env.add_user("jay")
        env.ctl("import", "jay", TESTMAIL)
        env.start()
        m = env.imap("jay")
        m.select("INBOX")
        kept = fetch_all(m, "INBOX")
        m.select("INBOX")
        m.store("1:10", "+FLAGS", "(\\Deleted)")
        m.expunge()
        self.assertEqual(len(fetch_all(m, "INBOX")), len(kept) - 10)
        p = env.ctl("undelete", "jay", "INBOX", "--since", "1h")
        self.assertIn("10 messages restored into INBOX of jay", p.stdout.decode())
        m.select("INBOX")
        back = fetch_all(m, "INBOX")
        self.assertEqual(sorted(g[3] for g in back), sorted(g[3] for g in kept))
        p = env.ctl("undelete", "jay", "INBOX")
        self.assertIn("nothing to restore in INBOX of jay", p.stdout.decode())
        self.assertEqual(len(fetch_all(m, "INBOX")), len(kept), p.stdout.decode())


if __name__ == "__main__":
    unittest.main(verbosity=1)
