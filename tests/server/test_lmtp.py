"""LMTP delivery (RFC 2033) into aerogramd, end to end.

Python's smtplib.LMTP over TCP and over the unix socket: several recipients
in one transaction with an unknown one refused at RCPT, one reply per
accepted recipient after DATA, the Return-Path and Delivered-To fields on
top of a message that IMAP then returns byte for byte, dot-stuffing, the
size limit at MAIL FROM and after DATA, errors that keep the connection,
pipelining, a user over quota, a store failure for one recipient only (the
faulty driver),
an IDLE session told of a delivery at once, SIGTERM during a delivery.
Then a real Postfix, a private instance in a temporary directory listening
on loopback only, relays 50 messages to two users through LMTP.
"""
import ctypes
import grp
import imaplib
import os
import pty
import re
import select
import shutil
import signal
import smtplib
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import agtest.daemon  # noqa: E402
from agtest import AEROGRAMD, DRIVER, IO_TIMEOUT, START_TIMEOUT, STORE, Raw, free_port  # noqa: E402
from agtest.daemon import Faults  # noqa: E402

MAX_MESSAGE = 4096
MAX_RECIPIENTS = 5
USERS_FILE = """[alice]
password = {PLAIN}pw
address = Alice.Smith@Other.Example a@x.example

[bob]
password = {PLAIN}pw

[Carol]
password = {PLAIN}pw

[dave]
password = {PLAIN}pw
quota_messages = 1
"""
# A message with what a transport can get wrong: 8-bit text, a long line,
# lines that start with dots, a lone dot inside a line, trailing spaces.
MESSAGE = (b"From: Sender <sender@src.example>\r\n"
           b"To: alice@example.org\r\n"
           b"Subject: =?utf-8?q?caf=C3=A9?=\r\n"
           b"Message-ID: <lmtp-1@src.example>\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n"
           b"Content-Transfer-Encoding: 8bit\r\n"
           b"\r\n"
           b"caf\xc3\xa9 \xe2\x82\xac\r\n"
           b".leading dot\r\n"
           b"..two dots\r\n"
           b".\t\r\n"
           b"a . in the middle \r\n"
           + b"x" * 1500 + b"\r\n"
           b"last line\r\n")


def fields(sender, rcpt):
    return b"Return-Path: <" + sender.encode() + b">\r\nDelivered-To: " + rcpt.encode() + b"\r\n"


class Daemon(agtest.daemon.Daemon):
    """An aerogramd with an [lmtp] section; everything in a temporary directory."""

    def __init__(self, lmtp=None, driver=None, storage=None, users=USERS_FILE, unix=True, start=True):
        self.tmp = tempfile.TemporaryDirectory(prefix="aerogram-lmtp-test-")
        d = self.tmp.name
        super().__init__(d)
        self.dir = d
        self.lmtp_port = free_port()
        self.socket_path = os.path.join(d, "lmtp.sock") if unix else None
        self.users_path = os.path.join(d, "users.ini")
        with open(self.users_path, "w") as f:
            f.write(users)
        os.chmod(self.users_path, 0o600)
        listen = "127.0.0.1:%d" % self.lmtp_port
        if unix:
            listen += " unix:" + self.socket_path
        if driver is None and STORE == "sqlite":
            driver = os.path.join(os.path.dirname(DRIVER), "aerogram_sqlite.so")
            storage = ["path = " + os.path.join(d, "mail.sqlite")] + list(storage or [])
        lines = ["[storage]", "driver = " + (driver or DRIVER)] + list(storage or [])
        lines += ["", "[imap]", "listen = 127.0.0.1:%d" % self.port, "workers = 2",
                  "max_message = %d" % MAX_MESSAGE]
        lines += ["", "[auth]", "users_file = " + self.users_path, "failure_delay = 0", "failure_delay_max = 0"]
        lines += ["", "[lmtp]", "listen = " + listen, "domains = example.org Example.NET",
                  "max_recipients = %d" % MAX_RECIPIENTS] + list(lmtp or [])
        self.lines = lines
        self.write_config()
        if start:
            self.start()

    def config_lines(self):
        return self.lines

    def start(self):
        super().start(new_port=False)

    def lmtp(self, unix=False):
        if unix:
            return smtplib.LMTP(self.socket_path, timeout=IO_TIMEOUT)
        return smtplib.LMTP("127.0.0.1", self.lmtp_port, timeout=IO_TIMEOUT)

    def imap(self, user):
        m = imaplib.IMAP4("127.0.0.1", self.port, timeout=IO_TIMEOUT)
        m.login(user, "pw")
        return m

    def inbox(self, user):
        """Every message of the user's INBOX, BODY[] in UID order."""
        m = self.imap(user)
        try:
            typ, data = m.select("INBOX", readonly=True)
            assert typ == "OK", data
            if int(data[0]) == 0:
                return []
            typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[])")
            assert typ == "OK", data
            return [part[1] for part in data if isinstance(part, tuple)]
        finally:
            m.logout()

    def count(self, user):
        m = self.imap(user)
        try:
            typ, data = m.status("INBOX", "(MESSAGES)")
            assert typ == "OK", data
            return int(re.search(rb"MESSAGES (\d+)", data[0]).group(1))
        finally:
            m.logout()

    def stop(self):
        """SIGTERM; raises unless it exited 0 without a sanitizer report."""
        problem = super().stop()
        log = self.read_log() if self.logs else ""
        self.tmp.cleanup()
        if problem:
            raise AssertionError("aerogramd %s:\n%s" % (problem, log[-4000:]))


def replies_after_data(client, message, n):
    """DATA, then the n replies (one per accepted recipient)."""
    first = client.data(message)
    return [first] + [client.getreply() for _ in range(n - 1)]


class RawLmtp(Raw):
    """Line-level LMTP for what smtplib does not send."""

    def __init__(self, port):
        super().__init__(port)
        self.greeting = self.reply()

    def reply(self):
        """One reply, multi-line ones joined: (code, [texts])."""
        texts = []
        while True:
            line = self.line()
            texts.append(line[4:])
            if line[3:4] != b"-":
                return int(line[:3]), texts

    def cmd(self, text):
        self.send(text + b"\r\n")
        return self.reply()


class LmtpDelivery(unittest.TestCase):
    """One daemon on the memory driver for the protocol tests."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Daemon()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def test_lhlo_advertises(self):
        c = self.srv.lmtp()
        code, text = c.docmd("LHLO", "client.example")
        self.assertEqual(code, 250)
        ext = text.decode().split("\n")[1:]
        self.assertEqual(ext, ["PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME", "SIZE %d" % MAX_MESSAGE])
        c.quit()

    def test_several_recipients_one_unknown(self):
        before = {u: len(self.srv.inbox(u)) for u in ("alice", "bob", "Carol")}
        c = self.srv.lmtp()
        c.ehlo("client.example")
        self.assertEqual(c.mail("sender@src.example", ["BODY=8BITMIME", "SIZE=%d" % len(MESSAGE)])[0], 250)
        rcpts = ["alice@example.org", "nobody@example.org", "BOB@EXAMPLE.ORG", "Alice.Smith@other.example",
                 "carol@example.net", "bob@elsewhere.example"]
        answers = [c.rcpt(r) for r in rcpts]
        self.assertEqual([a[0] for a in answers], [250, 550, 250, 250, 250, 550])
        self.assertTrue(answers[1][1].startswith(b"5.1.1 <nobody@example.org>"), answers[1])
        self.assertTrue(answers[0][1].startswith(b"2.1.5"), answers[0])
        accepted = [r for r, a in zip(rcpts, answers) if a[0] == 250]
        replies = replies_after_data(c, MESSAGE, len(accepted))
        # one reply per accepted RCPT, in RCPT order, each naming its recipient
        for r, (code, text) in zip(accepted, replies):
            self.assertEqual(code, 250, (r, text))
            self.assertTrue(text.startswith(b"2.0.0 <" + r.encode() + b">"), text)
        self.assertEqual(c.noop()[0], 250)  # nothing more was sent
        c.quit()
        alice = self.srv.inbox("alice")[before["alice"]:]
        self.assertEqual(alice, [fields("sender@src.example", "alice@example.org") + MESSAGE,
                                 fields("sender@src.example", "Alice.Smith@other.example") + MESSAGE])
        self.assertEqual(self.srv.inbox("bob")[before["bob"]:], [fields("sender@src.example", "BOB@EXAMPLE.ORG") + MESSAGE])
        self.assertEqual(self.srv.inbox("Carol")[before["Carol"]:],
                         [fields("sender@src.example", "carol@example.net") + MESSAGE])
        # the summary holds the added fields too: ENVELOPE and header fetches see them
        m = self.srv.imap("bob")
        m.select("INBOX", readonly=True)
        typ, data = m.fetch("*", "(BODY.PEEK[HEADER.FIELDS (DELIVERED-TO RETURN-PATH)] RFC822.SIZE)")
        m.logout()
        self.assertIn(b"Delivered-To: BOB@EXAMPLE.ORG", data[0][1])
        flat = b"".join(p if isinstance(p, bytes) else p[0] for p in data)
        self.assertIn(b"RFC822.SIZE %d" % (len(MESSAGE) + len(fields("sender@src.example", "BOB@EXAMPLE.ORG"))),
                      flat)

    def test_unix_socket(self):
        st = os.stat(self.srv.socket_path)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)
        before = len(self.srv.inbox("bob"))
        c = self.srv.lmtp(unix=True)
        c.ehlo("client.example")
        c.mail("")
        self.assertEqual(c.rcpt("bob@example.org")[0], 250)
        self.assertEqual(c.rcpt("a@x.example")[0], 250)
        replies = replies_after_data(c, b"Subject: over the unix socket\r\n\r\nhi\r\n", 2)
        self.assertEqual([r[0] for r in replies], [250, 250])
        c.quit()
        self.assertEqual(self.srv.inbox("bob")[before:],
                         [fields("", "bob@example.org") + b"Subject: over the unix socket\r\n\r\nhi\r\n"])
        self.assertIn(fields("", "a@x.example") + b"Subject: over the unix socket\r\n\r\nhi\r\n",
                      self.srv.inbox("alice"))

    def delivered_raw(self, data):
        """What bob's INBOX got from one transaction on the wire whose DATA
        is `data` as given (dot-stuffed, with its end): every reply checked."""
        before = len(self.srv.inbox("bob"))
        r = RawLmtp(self.srv.lmtp_port)
        self.addCleanup(r.close)
        self.assertEqual(r.greeting[0], 220)
        for line, want in ((b"LHLO raw", 250), (b"MAIL FROM:<s@src.example>", 250),
                           (b"RCPT TO:<bob@example.org>", 250), (b"DATA", 354)):
            self.assertEqual(r.cmd(line)[0], want, line)
        r.send(data)
        code, text = r.reply()
        self.assertEqual(code, 250, text)
        self.assertEqual(r.cmd(b"QUIT")[0], 221)
        self.assertTrue(r.closed())
        return self.srv.inbox("bob")[before:]

    def test_dot_stuffing_on_the_wire(self):
        self.assertEqual(self.delivered_raw(b"Subject: dots\r\n\r\n..\r\n...x\r\n.y\r\nz.\r\n. \r\n\r\n.\r\n"),
                         [fields("s@src.example", "bob@example.org") + b"Subject: dots\r\n\r\n.\r\n..x\r\ny\r\nz.\r\n \r\n\r\n"])

    def test_line_ends_stored_as_append_stores_them(self):
        """CR CR LF becomes CR LF and a final CR goes, as at APPEND."""
        self.assertEqual(self.delivered_raw(b"Subject: crcr\r\r\n\r\r\na\rb\r\r\r\nc\r\r\n.\r\n"),
                         [fields("s@src.example", "bob@example.org") + b"Subject: crcr\r\n\r\na\rb\r\r\nc\r\n"])

    def test_size_limit(self):
        before = self.srv.count("bob")
        c = self.srv.lmtp()
        c.ehlo("client.example")
        # announced too big: refused at MAIL FROM, the connection goes on
        code, text = c.mail("s@src.example", ["SIZE=%d" % (MAX_MESSAGE + 1)])
        self.assertEqual(code, 552)
        self.assertTrue(text.startswith(b"5.3.4"), text)
        self.assertEqual(c.noop()[0], 250)
        self.assertEqual(c.mail("s@src.example", ["SIZE=%d" % MAX_MESSAGE])[0], 250)
        self.assertEqual(c.rset()[0], 250)
        # not announced, found too big after DATA: 552 for each recipient
        self.assertEqual(c.mail("s@src.example")[0], 250)
        self.assertEqual(c.rcpt("bob@example.org")[0], 250)
        self.assertEqual(c.rcpt("alice@example.org")[0], 250)
        big = b"Subject: big\r\n\r\n" + (b"y" * 98 + b"\r\n") * (MAX_MESSAGE // 100 + 1)
        replies = replies_after_data(c, big, 2)
        for code, text in replies:
            self.assertEqual(code, 552)
            self.assertTrue(text.startswith(b"5.3.4"), text)
        # and the next transaction works
        self.assertEqual(c.mail("s@src.example")[0], 250)
        self.assertEqual(c.rcpt("bob@example.org")[0], 250)
        self.assertEqual(replies_after_data(c, b"Subject: small\r\n\r\nok\r\n", 1)[0][0], 250)
        c.quit()
        self.assertEqual(self.srv.count("bob"), before + 1)

    def test_over_quota(self):
        # dave may keep one message: the second is refused for him only
        c = self.srv.lmtp()
        c.ehlo("client.example")
        for expect in ([250, 250], [552, 250]):
            c.mail("s@src.example")
            self.assertEqual(c.rcpt("dave@example.org")[0], 250)
            self.assertEqual(c.rcpt("carol@example.org")[0], 250)
            replies = replies_after_data(c, b"Subject: quota\r\n\r\nx\r\n", 2)
            self.assertEqual([r[0] for r in replies], expect, replies)
        self.assertTrue(replies[0][1].startswith(b"5.2.2 <dave@example.org>"), replies[0])
        c.quit()
        self.assertEqual(self.srv.count("dave"), 1)

    def test_errors_keep_the_connection(self):
        r = RawLmtp(self.srv.lmtp_port)
        self.assertEqual(r.cmd(b"MAIL FROM:<s@src.example>")[0], 503)   # LHLO first
        self.assertEqual(r.cmd(b"EHLO x")[0], 500)
        self.assertEqual(r.cmd(b"HELO x")[0], 500)
        code, text = r.cmd(b"LHLO raw")
        self.assertEqual(code, 250)
        for line, want, enhanced in [(b"FOO bar", 500, b"5.5.1"), (b"RCPT TO:<bob@example.org>", 503, b"5.5.1"),
                                     (b"DATA", 503, b"5.5.1"), (b"MAIL FROM:s@src.example", 501, b"5.5.4"),
                                     (b"MAIL FROM:<s@src.example> FOO=1", 555, b"5.5.4"),
                                     (b"MAIL FROM:<a b@src.example>", 501, b"5.1.7"),
                                     (b"X" * 5000, 500, b"5.5.2"), (b"VRFY bob", 252, b"2.5.2"),
                                     (b"NOOP", 250, b"2.0.0"), (b"MAIL FROM:<s@src.example>", 250, b"2.1.0"),
                                     (b"MAIL FROM:<s@src.example>", 503, b"5.5.1"),
                                     (b"RCPT TO:<nobody@example.org>", 550, b"5.1.1"),
                                     (b"DATA", 503, b"5.5.1"),  # no valid recipient (RFC 2033 4.2)
                                     (b"RCPT TO:<bob>", 501, b"5.1.3"),
                                     (b"RCPT TO:<bob@example.org> NOTIFY=NEVER", 555, b"5.5.4")]:
            code, text = r.cmd(line)
            self.assertEqual(code, want, (line[:40], text))
            self.assertTrue(text[0].startswith(enhanced), (line[:40], text))
        # too many recipients: 452, the accepted ones still get the message
        for i in range(MAX_RECIPIENTS):
            self.assertEqual(r.cmd(b"RCPT TO:<bob@example.org>")[0], 250)
        self.assertEqual(r.cmd(b"RCPT TO:<bob@example.org>"), (452, [b"4.5.3 Too many recipients"]))
        self.assertEqual(r.cmd(b"DATA")[0], 354)
        r.send(b"Subject: many\r\n\r\n.\r\n")
        for i in range(MAX_RECIPIENTS):
            self.assertEqual(r.reply()[0], 250)
        self.assertEqual(r.cmd(b"QUIT")[0], 221)
        r.close()

    def test_pipelining(self):
        before = len(self.srv.inbox("Carol"))
        r = RawLmtp(self.srv.lmtp_port)
        # RFC 2920: the group up to DATA in one write; the message after 354
        r.send(b"LHLO pipe\r\nMAIL FROM:<p@src.example>\r\nRCPT TO:<carol@example.org>\r\n"
               b"RCPT TO:<nobody@example.org>\r\nRCPT TO:<a@x.example>\r\nDATA\r\n")
        self.assertEqual([r.reply()[0] for _ in range(6)], [250, 250, 250, 550, 250, 354])
        # the message, then a whole second transaction, in one write
        r.send(b"Subject: one\r\n\r\n1\r\n.\r\nMAIL FROM:<p@src.example>\r\nRCPT TO:<carol@example.org>\r\nDATA\r\n")
        self.assertEqual([r.reply()[0] for _ in range(5)], [250, 250, 250, 250, 354])
        r.send(b"Subject: two\r\n\r\n2\r\n.\r\nQUIT\r\n")
        self.assertEqual([r.reply()[0] for _ in range(2)], [250, 221])
        self.assertTrue(r.closed())
        r.close()
        got = self.srv.inbox("Carol")[before:]
        self.assertEqual(got, [fields("p@src.example", "carol@example.org") + b"Subject: one\r\n\r\n1\r\n",
                               fields("p@src.example", "carol@example.org") + b"Subject: two\r\n\r\n2\r\n"])

    def test_idle_hears_delivery(self):
        imap = socket.create_connection(("127.0.0.1", self.srv.port), timeout=IO_TIMEOUT)
        f = imap.makefile("rb")
        f.readline()
        imap.sendall(b"a LOGIN bob pw\r\nb SELECT INBOX\r\n")
        exists = None
        while True:
            line = f.readline()
            m = re.match(rb"\* (\d+) EXISTS", line)
            if m:
                exists = int(m.group(1))
            if line.startswith(b"b "):
                self.assertTrue(line.startswith(b"b OK"), line)
                break
        imap.sendall(b"c IDLE\r\n")
        self.assertTrue(f.readline().startswith(b"+"))
        c = self.srv.lmtp()
        c.ehlo("client.example")
        t0 = time.monotonic()
        c.sendmail("s@src.example", ["bob@example.org"], b"Subject: while idle\r\n\r\nhi\r\n")
        c.quit()
        imap.settimeout(30)  # generous: the event, not the timing, is asserted
        line = f.readline()
        took = time.monotonic() - t0
        self.assertEqual(line.strip(), b"* %d EXISTS" % (exists + 1))
        print("\n  IDLE on INBOX: EXISTS %.1f ms after the LMTP transaction began" % (took * 1000), file=sys.stderr)
        imap.sendall(b"DONE\r\n")
        while not f.readline().startswith(b"c "):
            pass
        imap.close()

    def test_check_configuration(self):
        ok = subprocess.run([AEROGRAMD, "-t", "-c", self.srv.config_path], capture_output=True, text=True)
        self.assertEqual(ok.returncode, 0, ok.stderr)
        d = self.srv.dir

        def check(config_extra, users=USERS_FILE):
            users_path = os.path.join(d, "check-users.ini")
            with open(users_path, "w") as f:
                f.write(users)
            os.chmod(users_path, 0o600)
            path = os.path.join(d, "check.conf")
            with open(path, "w") as f:
                f.write("[storage]\ndriver = %s\n[auth]\nusers_file = %s\n%s" % (DRIVER, users_path, config_extra))
            return subprocess.run([AEROGRAMD, "-t", "-c", path], capture_output=True, text=True)

        bad = check("[lmtp]\nlisten = 127.0.0.1:2424\ndomains = example..org\n")
        self.assertEqual(bad.returncode, 1)
        self.assertIn("check.conf:7: [lmtp] domains: 'example..org' is not a domain name", bad.stderr)
        bad = check("[lmtp]\ntimeout = 5\n")
        self.assertIn("check.conf:6: [lmtp] timeout: must be a number of seconds from 10 to 3600", bad.stderr)
        bad = check("[lmtp]\nlisten = unix:lmtp.sock\n")
        self.assertIn("[lmtp] listen: 'unix:lmtp.sock' is not", bad.stderr)
        bad = check("", users="[a]\npassword = {PLAIN}x\naddress = a@x.org\n[b]\npassword = {PLAIN}y\naddress = A@X.ORG\n")
        self.assertEqual(bad.returncode, 1)
        self.assertIn("check-users.ini:6: [b] address: 'a@x.org' already belongs to [a] (line 3)", bad.stderr)
        # an LMTP address anyone may reach is a warning (LMTP has no authentication)
        warn = check("[lmtp]\nlisten = 0.0.0.0:2424\ndomains = example.org\n")
        self.assertEqual(warn.returncode, 0, warn.stderr)
        self.assertIn("lmtp: 0.0.0.0:2424 is not a loopback address", warn.stderr)


class LmtpDaemonLife(unittest.TestCase):
    """Start-up, timeouts and shutdown, each with its own daemon."""

    def test_stale_socket_replaced_and_removed(self):
        srv = Daemon(start=False)
        try:
            # a socket left behind by a daemon that crashed: nobody accepts on it
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(srv.socket_path)
            s.close()
            srv.start()
            self.assertIn("removed the stale socket", srv.read_log())
            c = srv.lmtp(unix=True)
            self.assertEqual(c.ehlo("x")[0], 250)
            c.quit()
            # a second daemon on the same live socket refuses to start
            with open(srv.config_path) as f:
                text = f.read()
            other = os.path.join(srv.dir, "other.conf")
            with open(other, "w") as f:
                f.write(text.replace("listen = 127.0.0.1:%d\n" % srv.port, "listen = 127.0.0.1:%d\n" % free_port())
                        .replace("listen = 127.0.0.1:%d " % srv.lmtp_port, "listen = 127.0.0.1:%d " % free_port()))
            run = subprocess.run([AEROGRAMD, "-c", other], capture_output=True, text=True, timeout=START_TIMEOUT)
            self.assertEqual(run.returncode, 1)
            self.assertIn("another process listens on it", run.stderr)
            srv.proc.terminate()
            srv.proc.wait(IO_TIMEOUT)
            self.assertFalse(os.path.exists(srv.socket_path))
            # something that is no socket is never removed
            with open(srv.socket_path, "w") as f:
                f.write("mine")
            run = subprocess.run([AEROGRAMD, "-c", srv.config_path], capture_output=True, text=True,
                                 timeout=START_TIMEOUT)
            self.assertEqual(run.returncode, 1)
            self.assertIn("exists and is not a socket", run.stderr)
            with open(srv.socket_path) as f:
                self.assertEqual(f.read(), "mine")
        finally:
            srv.stop()

    def test_idle_client_timed_out(self):
        srv = Daemon(lmtp=["timeout = 10"], unix=False)
        try:
            r = RawLmtp(srv.lmtp_port)
            self.assertEqual(r.cmd(b"LHLO x")[0], 250)
            t0 = time.monotonic()
            r.sock.settimeout(40)
            code, text = r.reply()
            took = time.monotonic() - t0
            self.assertEqual(code, 421)
            self.assertTrue(text[0].startswith(b"4.4.2"), text)
            self.assertTrue(r.closed())
            r.close()
            self.assertGreater(took, 8)
        finally:
            srv.stop()


class LmtpStoreFailure(unittest.TestCase):
    """The faulty driver: a failing store call hits one recipient only."""

    def setUp(self):
        self.faults = Faults()
        self.addCleanup(self.faults.cleanup)
        self.srv = Daemon(driver=self.faults.driver, storage=self.faults.storage(), unix=False)
        self.addCleanup(self.srv.stop)

    def deliver(self, rcpts, subject):
        c = self.srv.lmtp()
        c.ehlo("client.example")
        c.mail("s@src.example")
        for r in rcpts:
            self.assertEqual(c.rcpt(r)[0], 250)
        replies = replies_after_data(c, b"Subject: " + subject + b"\r\n\r\nbody\r\n", len(rcpts))
        self.assertEqual(c.noop()[0], 250)
        c.quit()
        return replies

    def test_one_recipient_fails(self):
        # both INBOXes exist and are in memory: the next append of each is
        # one body blob_put and one row_insert_if (summary, entry, watch)
        self.assertEqual([r[0] for r in self.deliver(["alice@example.org", "bob@example.org"], b"first")],
                         [250, 250])
        # the entry write of the first recipient fails: its message is not
        # in the log, so nothing of it is visible; the second is stored
        self.faults.set("fail_next row_insert_if internal 1")
        replies = self.deliver(["alice@example.org", "bob@example.org"], b"second")
        self.assertEqual(replies[0][0], 451, replies)
        self.assertTrue(replies[0][1].startswith(b"4.3.0 <alice@example.org>"), replies[0])
        self.assertEqual(replies[1][0], 250, replies)
        # the body write fails this time (before anything else was written)
        self.faults.set("fail_next blob_put unavailable 1")
        replies = self.deliver(["bob@example.org", "alice@example.org"], b"third")
        self.assertEqual([r[0] for r in replies], [451, 250])
        self.faults.set("ok")
        self.assertEqual([r[0] for r in self.deliver(["alice@example.org", "bob@example.org"], b"fourth")],
                         [250, 250])
        subjects = {u: [re.search(rb"Subject: (\w+)", m).group(1) for m in self.srv.inbox(u)]
                    for u in ("alice", "bob")}
        self.assertEqual(subjects, {"alice": [b"first", b"third", b"fourth"],
                                    "bob": [b"first", b"second", b"fourth"]})
        # a new view of the mailbox agrees (no entry was left behind to appear later)
        m = self.srv.imap("alice")
        typ, data = m.status("INBOX", "(MESSAGES UIDNEXT)")
        m.logout()
        self.assertIn(b"MESSAGES 3", data[0])
        self.assertIn("not delivered", self.srv.read_log())

    def test_sigterm_during_a_delivery(self):
        self.assertEqual([r[0] for r in self.deliver(["bob@example.org", "alice@example.org"], b"first")],
                         [250, 250])
        # every store call now takes 0.4 s (a delivery makes a few per
        # recipient, well within the 5 s that shutdown waits): SIGTERM
        # arrives in the middle of one
        self.faults.set("delay all 400")
        c = self.srv.lmtp()
        c.ehlo("client.example")
        c.mail("s@src.example")
        c.rcpt("bob@example.org")
        c.rcpt("alice@example.org")
        c.putcmd("data")
        self.assertEqual(c.getreply()[0], 354)
        c.send(b"Subject: during shutdown\r\n\r\nx\r\n.\r\n")
        time.sleep(0.3)
        self.srv.proc.send_signal(signal.SIGTERM)
        try:
            replies = [c.getreply() for _ in range(3)]
        except smtplib.SMTPServerDisconnected:
            self.srv.proc.wait(IO_TIMEOUT)
            self.fail(self.srv.read_log()[-3000:])
        c.close()
        self.assertEqual([r[0] for r in replies], [250, 250, 421], replies)
        self.assertEqual(self.srv.proc.wait(IO_TIMEOUT), 0)
        self.assertIn("stopped", self.srv.read_log())


# ---- a real Postfix ----

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
SENDMAIL = shutil.which("sendmail") or "/usr/sbin/sendmail"
PR_SET_CHILD_SUBREAPER = 36


def postfix_available():
    if not os.path.exists(POSTFIX):
        return "postfix is not installed (packaging/install-deps installs it)"
    if os.geteuid() != 0:
        return "running a private Postfix instance needs root"
    try:
        import pwd
        pwd.getpwnam("postfix")
        grp.getgrnam("postdrop")
    except KeyError:
        return "the postfix user or the postdrop group is missing"
    return None


def run_with_tty(args, timeout=60):
    """Runs a Postfix command with a terminal as stderr: it reports its
    errors there only (not to a pipe). Returns (exit status, output)."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
        os.close(slave)
        slave = None
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    chunk = b""
                if not chunk and proc.poll() is not None:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        if proc.poll() is None:
            proc.kill()
        return proc.wait(), out.decode(errors="replace")
    finally:
        os.close(master)
        if slave is not None:
            os.close(slave)


class Postfix:
    """A private Postfix: its own configuration, queue and data directories
    in a temporary directory, SMTP on one loopback port, mail for
    example.org relayed by LMTP to aerogramd."""

    def __init__(self, lmtp_target):
        self.tmp = tempfile.TemporaryDirectory(prefix="aerogram-postfix-")
        d = self.dir = self.tmp.name
        os.chmod(d, 0o755)  # the daemons run as postfix and need to get in
        self.conf = os.path.join(d, "etc")
        self.queue = os.path.join(d, "queue")
        self.data = os.path.join(d, "data")
        for p in (self.conf, self.queue, self.data):
            os.mkdir(p, 0o755)
        import pwd
        os.chown(self.data, pwd.getpwnam("postfix").pw_uid, -1)
        self.log = os.path.join(d, "maillog")
        self.smtp_port = free_port()
        main = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue,
            "data_directory": self.data,
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "inet_interfaces": "loopback-only",
            "inet_protocols": "ipv4",
            "myhostname": "mx.test.invalid",
            "mydomain": "test.invalid",
            "myorigin": "test.invalid",
            "mydestination": "",
            "relay_domains": "",
            "local_recipient_maps": "",
            "alias_maps": "",
            "alias_database": "",
            "mynetworks": "127.0.0.0/8",
            "virtual_mailbox_domains": "example.org",
            "virtual_transport": lmtp_target,
            # aerogramd knows the users: Postfix takes every address of the domain
            "smtpd_reject_unlisted_recipient": "no",
            "smtputf8_enable": "no",
            "biff": "no",
            "maillog_file": self.log,
            "maillog_file_prefixes": d,
            "default_process_limit": "10",
            # nothing may wait long in this test
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
        }
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            for k, v in main.items():
                f.write("%s = %s\n" % (k, v))
        # services run without chroot (nothing is copied into the queue
        # directory); SMTP on 127.0.0.1 only
        services = [
            "127.0.0.1:%d inet n - n - - smtpd" % self.smtp_port,
            "pickup unix n - n 60 1 pickup",
            "cleanup unix n - n - 0 cleanup",
            "qmgr unix n - n 300 1 qmgr",
            "rewrite unix - - n - - trivial-rewrite",
            "bounce unix - - n - 0 bounce",
            "defer unix - - n - 0 bounce",
            "trace unix - - n - 0 bounce",
            "verify unix - - n - 1 verify",
            "flush unix n - n 1000? 0 flush",
            "proxymap unix - - n - - proxymap",
            "smtp unix - - n - - smtp",
            "showq unix n - n - - showq",
            "error unix - - n - - error",
            "retry unix - - n - - error",
            "discard unix - - n - - discard",
            "lmtp unix - - n - - lmtp",
            "anvil unix - - n - 1 anvil",
            "scache unix - - n - 1 scache",
            "postlog unix-dgram n - n - 1 postlogd",
        ]
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write("\n".join(services) + "\n")
        self.master_pid = None

    def read_log(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def start(self):
        # Postfix's master detaches; as a subreaper this process becomes its
        # parent, so it and its daemons are reaped here once stopped.
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        code, out = run_with_tty([POSTFIX, "-c", self.conf, "start"])
        if code != 0:
            raise RuntimeError("postfix start failed (%d): %s\n%s" % (code, out, self.read_log()))
        pid_file = os.path.join(self.queue, "pid", "master.pid")
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self.master_pid is None:
            try:
                with open(pid_file) as f:
                    self.master_pid = int(f.read().strip())
            except (FileNotFoundError, ValueError):
                time.sleep(0.05)
        if self.master_pid is None:
            raise RuntimeError("postfix: no master.pid\n" + self.read_log())

    def reload(self):
        code, out = run_with_tty([POSTFIX, "-c", self.conf, "reload"])
        if code != 0:
            raise RuntimeError("postfix reload failed: " + out)

    def set(self, key, value):
        subprocess.run(["postconf", "-c", self.conf, "-e", "%s = %s" % (key, value)], check=True)

    def listening(self):
        """The TCP sockets the master listens on: (address, port) pairs."""
        inodes = set()
        for fd in os.listdir("/proc/%d/fd" % self.master_pid):
            try:
                target = os.readlink("/proc/%d/fd/%s" % (self.master_pid, fd))
            except OSError:
                continue
            m = re.match(r"socket:\[(\d+)\]", target)
            if m:
                inodes.add(m.group(1))
        found = []
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(table) as f:
                    rows = f.read().splitlines()[1:]
            except FileNotFoundError:
                continue
            for row in rows:
                cols = row.split()
                if cols[3] == "0A" and cols[9] in inodes:  # LISTEN
                    addr, port = cols[1].split(":")
                    found.append((addr, int(port, 16)))
        return found

    def stop(self):
        if self.master_pid is not None:
            code, out = run_with_tty([POSTFIX, "-c", self.conf, "stop"])
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    pid, _ = os.waitpid(self.master_pid, os.WNOHANG)
                except ChildProcessError:
                    pid = self.master_pid if not os.path.exists("/proc/%d" % self.master_pid) else 0
                if pid == self.master_pid:
                    break
                time.sleep(0.1)
            else:
                os.kill(self.master_pid, signal.SIGKILL)  # the master this test started
                os.waitpid(self.master_pid, 0)
            self.master_pid = None
        reap_orphans()
        self.tmp.cleanup()


def reap_orphans(timeout=10):
    """Waits for the Postfix daemons left to this process (a subreaper)."""
    me = os.getpid()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % entry) as f:
                    fields_ = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields_[1]) == me:
                children.append(int(entry))
        # aerogramd children are waited for by their Popen objects
        children = [p for p in children if os.path.basename(os.readlink("/proc/%d/exe" % p) if
                                                            os.path.exists("/proc/%d/exe" % p) else "") != "aerogramd"]
        if not children:
            return
        for pid in children:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        time.sleep(0.1)


@unittest.skipIf(postfix_available() is not None, postfix_available() or "")
class RealPostfix(unittest.TestCase):
    """Debian's Postfix relays to aerogramd through LMTP."""

    N = 50

    def test_postfix_relays_by_lmtp(self):
        srv = Daemon()
        self.addCleanup(srv.stop)
        pf = Postfix("lmtp:inet:127.0.0.1:%d" % srv.lmtp_port)
        pf.start()
        self.addCleanup(pf.stop)
        # Postfix listens on loopback only: the SMTP port we gave it
        self.assertEqual(pf.listening(), [("0100007F", pf.smtp_port)])

        t0 = time.monotonic()
        for i in range(self.N):
            msg = (b"From: sender@src.example\r\nTo: alice@example.org, bob@example.org\r\n"
                   b"Subject: relayed %d\r\nMessage-ID: <relay-%d@src.example>\r\n\r\nmessage %d\r\n..dot line\r\n"
                   % (i, i, i))
            run = subprocess.run([SENDMAIL, "-C", pf.conf, "-f", "sender@src.example", "-i",
                                  "alice@example.org", "bob@example.org"], input=msg.replace(b"\r\n", b"\n"),
                                 capture_output=True, timeout=IO_TIMEOUT)
            self.assertEqual(run.returncode, 0, run.stderr)
        submitted = time.monotonic() - t0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if srv.count("alice") >= self.N and srv.count("bob") >= self.N:
                break
            time.sleep(0.2)
        took = time.monotonic() - t0
        log = pf.read_log()
        lmtp_lines = [l for l in log.splitlines() if "postfix/lmtp[" in l and "status=sent" in l]
        for user in ("alice", "bob"):
            msgs = srv.inbox(user)
            self.assertEqual(len(msgs), self.N, "%s: %d messages\n%s" % (user, len(msgs), log[-3000:]))
            seen = []
            for m in msgs:
                # Postfix's own Received field follows ours; both of ours come first
                self.assertTrue(m.startswith(fields("sender@src.example", "%s@example.org" % user)), m[:200])
                self.assertEqual(m.count(b"\r\nDelivered-To:"), 1)
                self.assertIn(b"\r\n..dot line\r\n", m)  # as written: -i keeps dots as they are
                seen.append(int(re.search(rb"Subject: relayed (\d+)", m).group(1)))
            self.assertEqual(sorted(seen), list(range(self.N)), "every message exactly once")
        self.assertEqual(len(lmtp_lines), 2 * self.N)
        self.assertNotIn("status=deferred", log)
        print("\n  Postfix -> LMTP: %d messages to 2 users (%d deliveries) submitted in %.2f s, all in INBOX "
              "after %.2f s: %.1f deliveries/s end to end"
              % (self.N, 2 * self.N, submitted, took, 2 * self.N / took), file=sys.stderr)

        # the same through the unix socket: the lmtp client runs as postfix,
        # which the socket's group (mode 0660) lets in
        os.chmod(srv.dir, 0o711)
        os.chown(srv.socket_path, -1, grp.getgrnam("postfix").gr_gid)
        pf.set("virtual_transport", "lmtp:unix:" + srv.socket_path)
        pf.reload()
        for i in range(3):
            s = smtplib.SMTP("127.0.0.1", pf.smtp_port, timeout=IO_TIMEOUT)
            s.sendmail("sender@src.example", ["bob@example.org"], b"Subject: unix %d\r\n\r\nvia the socket\r\n" % i)
            s.quit()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and srv.count("bob") < self.N + 3:
            time.sleep(0.2)
        tail = srv.inbox("bob")[self.N:]
        self.assertEqual(sorted(re.search(rb"Subject: unix (\d)", m).group(1) for m in tail), [b"0", b"1", b"2"],
                         pf.read_log()[-2000:])
        log = pf.read_log()
        self.assertTrue("[%s]" % srv.socket_path in log, log[-2000:])


if __name__ == "__main__":
    unittest.main(verbosity=2)
