"""aerogramd as a client sees it: greeting, capabilities, authentication,
TLS, pipelining, malformed input, signals. Run by `make check-server`."""
import base64
import imaplib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from agtest import (AEROGRAMD, DRIVER, IO_TIMEOUT, Raw, Server,  # noqa: E402
                    client_tls_context, hash_password)
from agtest.case import DaemonCase  # noqa: E402

# The capability lists a client must see, exactly (what is implemented today).
PRE_LOGIN = "IMAP4rev1 LITERAL+ SASL-IR ENABLE IDLE ID"
POST_LOGIN = ("IMAP4rev1 LITERAL+ SASL-IR ENABLE IDLE UIDPLUS MULTIAPPEND MOVE UNSELECT NAMESPACE ID CHILDREN "
              "SPECIAL-USE QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE STATUS=SIZE ESEARCH SEARCHRES WITHIN "
              "LIST-EXTENDED LIST-STATUS CREATE-SPECIAL-USE SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT "
              "THREAD=REFERENCES ESORT CONDSTORE QRESYNC BINARY COMPRESS=DEFLATE CATENATE CONTEXT=SEARCH "
              "CONTEXT=SORT")
FAILED = b"[AUTHENTICATIONFAILED] Authentication failed."

USERS = {"alice": "{PLAIN}secret", "carol@example.org": "{PLAIN}p a s s"}


def plain(user, password, authzid=""):
    return base64.b64encode(("%s\0%s\0%s" % (authzid, user, password)).encode()).decode()


def caps_of(line):
    """The list inside [CAPABILITY ...] or after '* CAPABILITY '."""
    text = line.decode()
    if "[CAPABILITY " in text:
        return text.split("[CAPABILITY ", 1)[1].split("]", 1)[0]
    return text.split("* CAPABILITY ", 1)[1]


class LoopbackServer(unittest.TestCase):
    """One daemon with plaintext_auth = loopback (the default), STARTTLS and a TLS port."""

    @classmethod
    def setUpClass(cls):
        users = dict(USERS)
        users["bob"] = hash_password("hunter2")
        cls.srv = Server(users, ipv6=socket.has_ipv6 and os.path.exists("/proc/net/if_inet6"))

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def imap(self):
        m = imaplib.IMAP4("127.0.0.1", self.srv.port, timeout=IO_TIMEOUT)
        self.addCleanup(lambda: m.sock.close())
        return m

    def raw(self):
        r = Raw(self.srv.port)
        self.addCleanup(r.close)
        greeting = r.line()
        self.assertTrue(greeting.startswith(b"* OK "), greeting)
        return r

    def test_greeting_and_capability_before_login(self):
        m = self.imap()
        self.assertEqual(m.welcome, ("* OK [CAPABILITY %s STARTTLS AUTH=PLAIN] Aerogram ready." % PRE_LOGIN).encode())
        typ, data = m.capability()
        self.assertEqual(typ, "OK")
        self.assertEqual(data[0].decode(), PRE_LOGIN + " STARTTLS AUTH=PLAIN")
        m.logout()

    def test_login_capability_code_and_capability_after_login(self):
        m = self.imap()
        typ, data = m.login("alice", "secret")
        self.assertEqual(typ, "OK")
        self.assertEqual(caps_of(data[0]), POST_LOGIN)
        typ, data = m.capability()
        self.assertEqual(data[0].decode(), POST_LOGIN)
        self.assertEqual(m.state, "AUTH")
        self.assertEqual(m.logout()[0], "BYE")

    def test_login_argon2_and_quoted_user(self):
        m = self.imap()
        self.assertEqual(m.login("bob", "hunter2")[0], "OK")
        m.logout()
        m = self.imap()
        self.assertEqual(m.login("carol@example.org", "p a s s")[0], "OK")
        m.logout()

    def test_login_failures_look_alike(self):
        answers = []
        for user, password in (("alice", "wrong"), ("nobody", "secret"), ("bob", "secret"), ("", "")):
            r = self.raw()
            r.send(b'a1 LOGIN "%s" "%s"\r\n' % (user.encode(), password.encode()))
            answers.append(r.until_tagged(b"a1"))
            # The connection stays usable after a failure.
            r.send(b"a2 NOOP\r\n")
            self.assertEqual(r.until_tagged(b"a2")[-1], b"a2 OK NOOP completed.")
            r.close()
        for lines in answers:
            self.assertEqual(lines, [b"a1 NO " + FAILED])
        self.assertTrue(self.srv.wait_log("authentication failed user=nobody"))
        self.assertIn("failures from 127.0.0.1", self.srv.read_log())

    def test_five_failures_end_the_connection(self):
        r = self.raw()
        for n in range(4):
            r.send(b"f%d LOGIN alice wrong%d\r\n" % (n, n))
            self.assertEqual(r.until_tagged(b"f%d" % n), [b"f%d NO " % n + FAILED])
        r.send(b"f4 AUTHENTICATE PLAIN " + plain("alice", "nope").encode() + b"\r\n")
        self.assertEqual(r.until_tagged(b"f4"), [b"f4 NO " + FAILED])
        self.assertEqual(r.line(), b"* BYE Too many authentication failures.")
        self.assertTrue(r.closed())

    def test_authenticate_plain_with_initial_response(self):
        r = self.raw()
        r.send(b"a1 AUTHENTICATE PLAIN " + plain("alice", "secret").encode() + b"\r\n")
        lines = r.until_tagged(b"a1")
        self.assertEqual(len(lines), 1)
        self.assertTrue(lines[0].startswith(b"a1 OK [CAPABILITY " + POST_LOGIN.encode() + b"]"), lines)
        r.send(b"a2 CAPABILITY\r\n")
        self.assertEqual(r.until_tagged(b"a2")[0], b"* CAPABILITY " + POST_LOGIN.encode())
        r.close()

    def test_authenticate_plain_with_continuation(self):
        m = self.imap()
        typ, _ = m.authenticate("PLAIN", lambda _: b"\0alice\0secret")
        self.assertEqual(typ, "OK")
        self.assertEqual(m.state, "AUTH")
        m.logout()

    def test_authenticate_plain_failures(self):
        r = self.raw()
        r.send(b"a1 AUTHENTICATE PLAIN " + plain("alice", "nope").encode() + b"\r\n")
        self.assertEqual(r.until_tagged(b"a1"), [b"a1 NO " + FAILED])
        # authzid different from authcid: refused as malformed, no proxy logins.
        r.send(b"a2 AUTHENTICATE PLAIN " + plain("alice", "secret", authzid="bob").encode() + b"\r\n")
        self.assertTrue(r.until_tagged(b"a2")[-1].startswith(b"a2 BAD "))
        for tag, response in ((b"a3", b"*"), (b"a4", b"%%%not base64")):
            cont, lines = r.continued(tag, b"AUTHENTICATE PLAIN", response)
            self.assertEqual(cont, b"+ ")
            self.assertTrue(lines[-1].startswith(tag + b" BAD "), lines)
        r.send(b"a5 AUTHENTICATE CRAM-MD5\r\n")
        self.assertTrue(r.until_tagged(b"a5")[-1].startswith(b"a5 NO "))
        r.send(b"a6 AUTHENTICATE PLAIN =\r\n")
        self.assertTrue(r.until_tagged(b"a6")[-1].startswith(b"a6 BAD "))
        r.send(b"a7 NOOP\r\n")
        self.assertEqual(r.until_tagged(b"a7"), [b"a7 OK NOOP completed."])
        r.close()

    def test_starttls_then_login(self):
        m = self.imap()
        m.starttls(client_tls_context())
        # imaplib upper-cases what it read.
        self.assertEqual(" ".join(m.capabilities), (PRE_LOGIN + " AUTH=PLAIN").upper())
        self.assertEqual(m.login("alice", "secret")[0], "OK")
        m.logout()

    def test_starttls_discards_pipelined_plaintext(self):
        r = self.raw()
        r.send(b"a1 STARTTLS\r\na2 LOGIN alice secret\r\n")
        self.assertEqual(r.until_tagged(b"a1"), [b"a1 OK Begin TLS negotiation now."])
        r.starttls()
        r.send(b"a3 CAPABILITY\r\n")
        lines = r.until_tagged(b"a3")
        self.assertEqual(lines, [b"* CAPABILITY " + PRE_LOGIN.encode() + b" AUTH=PLAIN", b"a3 OK Capability completed."])
        r.send(b"a4 STARTTLS\r\n")
        self.assertTrue(r.until_tagged(b"a4")[-1].startswith(b"a4 BAD "))
        r.close()

    def test_implicit_tls_port(self):
        m = imaplib.IMAP4_SSL("127.0.0.1", self.srv.tls_port, ssl_context=client_tls_context(), timeout=IO_TIMEOUT)
        self.assertEqual(m.welcome, ("* OK [CAPABILITY %s AUTH=PLAIN] Aerogram ready." % PRE_LOGIN).encode())
        self.assertIn(m.sock.version(), ("TLSv1.2", "TLSv1.3"))
        self.assertEqual(m.login("alice", "secret")[0], "OK")
        m.logout()

    def test_cleartext_on_the_tls_port_is_dropped(self):
        r = Raw(self.srv.tls_port)
        r.send(b"a NOOP\r\n" + b"\x16\x03\x01\x00\x05garbage" * 3)
        self.assertTrue(r.closed())
        r.close()
        self.assertTrue(self.srv.wait_log("TLS error"))
        m = imaplib.IMAP4_SSL("127.0.0.1", self.srv.tls_port, ssl_context=client_tls_context(), timeout=IO_TIMEOUT)
        self.assertEqual(m.noop()[0], "OK")
        m.logout()

    def test_ipv6_listener(self):
        if not self.srv.ipv6_port:
            self.skipTest("no IPv6 loopback on this machine")
        m = imaplib.IMAP4("::1", self.srv.ipv6_port, timeout=IO_TIMEOUT)
        self.assertIn(b"AUTH=PLAIN", m.welcome)  # ::1 is loopback too
        self.assertEqual(m.login("alice", "secret")[0], "OK")
        m.logout()

    def test_pipelined_commands_answer_in_order(self):
        r = self.raw()
        r.send(b"p1 NOOP\r\np2 CAPABILITY\r\np3 LOGIN alice secret\r\np4 NAMESPACE\r\n"
               b"p5 LOGIN alice secret\r\np6 ID NIL\r\np7 LOGOUT\r\n")
        lines = []
        while True:
            try:
                lines.append(r.line())
            except EOFError:
                break
        tagged = [l.split(b" ", 2)[:2] for l in lines if not l.startswith(b"*")]
        self.assertEqual(tagged, [[b"p1", b"OK"], [b"p2", b"OK"], [b"p3", b"OK"], [b"p4", b"OK"],
                                  [b"p5", b"BAD"], [b"p6", b"OK"], [b"p7", b"OK"]])
        self.assertIn(b'* NAMESPACE (("" ".")) NIL NIL', lines)
        self.assertIn(b"* BYE Logging out.", lines)

    def test_literals(self):
        r = self.raw()
        r.send(b"a1 LOGIN {5}\r\n")
        self.assertTrue(r.line().startswith(b"+ "))
        r.send(b"alice {6+}\r\nsecret\r\n")
        self.assertTrue(r.until_tagged(b"a1")[-1].startswith(b"a1 OK "))
        r.close()

    def test_id_enable_namespace_idle(self):
        r = self.raw()
        r.send(b'a1 ID ("name" "test")\r\n')
        lines = r.until_tagged(b"a1")
        self.assertTrue(lines[0].startswith(b'* ID ("name" "Aerogram" "version" '), lines)
        self.assertEqual(lines[1], b"a1 OK ID completed.")
        r.send(b"a2 ENABLE CONDSTORE\r\n")
        self.assertTrue(r.until_tagged(b"a2")[-1].startswith(b"a2 BAD "))
        r.send(b"a3 LOGIN alice secret\r\na4 ENABLE CONDSTORE\r\n")
        r.until_tagged(b"a3")
        self.assertEqual(r.until_tagged(b"a4"), [b"* ENABLED CONDSTORE", b"a4 OK ENABLE completed."])
        r.send(b"a5 IDLE\r\n")
        self.assertEqual(r.line(), b"+ idling")
        r.send(b"DONE\r\n")
        self.assertEqual(r.until_tagged(b"a5"), [b"a5 OK IDLE terminated."])
        r.send(b"a6 NAMESPACE\r\n")
        self.assertEqual(r.until_tagged(b"a6"), [b'* NAMESPACE (("" ".")) NIL NIL', b"a6 OK NAMESPACE completed."])
        r.close()

    def test_commands_in_the_wrong_state(self):
        r = self.raw()
        for tag, command in ((b"s1", b"SELECT INBOX"), (b"s2", b"FETCH 1 FLAGS"), (b"s3", b"UID FETCH 1 FLAGS"),
                             (b"s4", b"NAMESPACE"), (b"s5", b"IDLE"), (b"s6", b"LIST \"\" *"),
                             (b"s7", b"EXPUNGE"), (b"s8", b"CLOSE")):
            r.send(tag + b" " + command + b"\r\n")
            last = r.until_tagged(tag)[-1]
            self.assertTrue(last.startswith(tag + b" BAD "), last)
        r.send(b"s9 LOGIN alice secret\r\n")
        r.until_tagged(b"s9")
        for tag, command in ((b"t1", b"LOGIN alice secret"), (b"t2", b"AUTHENTICATE PLAIN"),
                             (b"t3", b"STARTTLS"), (b"t4", b"FETCH 1 FLAGS"), (b"t5", b"STORE 1 +FLAGS (\\Seen)")):
            r.send(tag + b" " + command + b"\r\n")
            last = r.until_tagged(tag)[-1]
            self.assertTrue(last.startswith(tag + b" BAD "), last)
        r.send(b"t6 NOOP\r\n")
        self.assertEqual(r.until_tagged(b"t6"), [b"t6 OK NOOP completed."])
        r.close()

    def test_bad_input_corpus(self):
        corpus = [
            b"b1 LOGIN (alice secret\r\n",
            b"b2 LOGIN alice)) secret\r\n",
            b"b3 FROBNICATE\r\n",
            b"b4\r\n",
            b"\r\n",
            b"b5 LOGIN \"unterminated\r\n",
            b"b6 SELECT\r\n",
            b"b7 LOGIN alice\r\n",
            b"b8 NOOP extra arguments\r\n",
            b"b9 LOGIN alice {99999999999999999999}\r\n",
            b"\x00\x01\x02\xff\xfe binary\r\n",
            b"\xc3\xa9\xc3\xa9 NOOP\r\n",
            b"* NOOP\r\n",
            b"b10 CAPABILITY\x00\r\n",
            b"b11 UID\r\n",
            b"b12 LOGIN " + b"x" * 70000 + b" y\r\n",
        ]
        r = self.raw()
        for n, line in enumerate(corpus):
            r.send(line)
            r.send(b"ok%d NOOP\r\n" % n)
            lines = r.until_tagged(b"ok%d" % n)
            self.assertEqual(lines[-1], b"ok%d OK NOOP completed." % n, (line[:60], lines))
            answers = [l for l in lines[:-1] if not l.startswith(b"+ ")]
            if line != b"\r\n":  # an empty line is ignored, as Dovecot does
                self.assertTrue(answers, line[:60])
            for l in answers:
                self.assertRegex(l, rb"^\S+ (BAD|NO) ", (line[:60], lines))
        r.close()

    def test_absurd_literal_for_append(self):
        r = self.raw()
        r.send(b"a1 LOGIN alice secret\r\n")
        r.until_tagged(b"a1")
        r.send(b"a2 APPEND INBOX {999999999999}\r\n")
        last = r.until_tagged(b"a2")[-1]
        self.assertRegex(last, rb"^a2 (NO|BAD) ")
        r.send(b"a3 NOOP\r\n")
        self.assertEqual(r.until_tagged(b"a3"), [b"a3 OK NOOP completed."])
        r.close()


class PlaintextRefused(unittest.TestCase):
    """plaintext_auth = no: LOGINDISABLED until TLS is up."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(USERS, imap=["plaintext_auth = no"], tls_port=False)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def test_logindisabled_until_starttls(self):
        m = imaplib.IMAP4("127.0.0.1", self.srv.port, timeout=IO_TIMEOUT)
        self.assertEqual(m.welcome, ("* OK [CAPABILITY %s STARTTLS LOGINDISABLED] Aerogram ready." % PRE_LOGIN).encode())
        with self.assertRaises(imaplib.IMAP4.error) as cm:
            m.login("alice", "secret")
        self.assertIn("PRIVACYREQUIRED", str(cm.exception))
        m.starttls(client_tls_context())
        # imaplib upper-cases what it read.
        self.assertEqual(" ".join(m.capabilities), (PRE_LOGIN + " AUTH=PLAIN").upper())
        self.assertEqual(m.login("alice", "secret")[0], "OK")
        m.logout()

    def test_authenticate_refused_in_cleartext(self):
        r = Raw(self.srv.port)
        r.line()
        r.send(b"a1 AUTHENTICATE PLAIN " + plain("alice", "secret").encode() + b"\r\n")
        last = r.until_tagged(b"a1")[-1]
        self.assertTrue(last.startswith(b"a1 NO [PRIVACYREQUIRED] "), last)
        r.close()


class Signals(DaemonCase):
    def test_sigterm_says_bye_and_exits_zero(self):
        srv = self.server(USERS)
        idle = self.connect(srv)
        idle.send(b"a1 LOGIN alice secret\r\na2 IDLE\r\n")
        idle.until_tagged(b"a1")
        self.assertEqual(idle.line(), b"+ idling")
        fresh = self.connect(srv)
        srv.proc.send_signal(signal.SIGTERM)
        self.assertEqual(srv.proc.wait(IO_TIMEOUT), 0)
        for client in (idle, fresh):
            self.assertEqual(client.line(), b"* BYE Server shutting down.")
            self.assertTrue(client.closed())
            client.close()

    def test_sigterm_finishes_the_command_in_flight(self):
        # A failed login is answered after failure_delay: SIGTERM comes meanwhile.
        srv = self.server(USERS, auth=["failure_delay = 2000", "failure_delay_max = 2000"])
        r = self.connect(srv)
        r.send(b"a LOGIN alice wrong\r\nb NOOP\r\n")
        self.assertTrue(srv.wait_log("answering in 2000 ms"))
        srv.proc.send_signal(signal.SIGTERM)
        self.assertEqual(r.line(), b"a NO " + FAILED)
        self.assertEqual(r.line(), b"* BYE Server shutting down.")
        self.assertTrue(r.closed())
        r.close()
        self.assertEqual(srv.proc.wait(IO_TIMEOUT), 0)

    def test_sighup_reloads_users(self):
        srv = self.server(USERS)
        srv.write_users({"dave": "{PLAIN}new"})
        srv.proc.send_signal(signal.SIGHUP)
        self.assertTrue(srv.wait_log("SIGHUP: reloaded"))
        m = imaplib.IMAP4("127.0.0.1", srv.port, timeout=IO_TIMEOUT)
        self.assertEqual(m.login("dave", "new")[0], "OK")
        m.logout()
        m = imaplib.IMAP4("127.0.0.1", srv.port, timeout=IO_TIMEOUT)
        with self.assertRaises(imaplib.IMAP4.error):
            m.login("alice", "secret")
        m.logout()
        # A broken file keeps the table in force and says why.
        with open(srv.users_path, "w") as f:
            f.write("[erin]\npasword = {PLAIN}x\n")
        srv.proc.send_signal(signal.SIGHUP)
        self.assertTrue(srv.wait_log("keeping the previous users"))
        self.assertIn("pasword", srv.read_log())
        m = imaplib.IMAP4("127.0.0.1", srv.port, timeout=IO_TIMEOUT)
        self.assertEqual(m.login("dave", "new")[0], "OK")
        m.logout()

    def test_sighup_reloads_the_certificate(self):
        srv = self.server(USERS, tls=True)
        srv.proc.send_signal(signal.SIGHUP)
        self.assertTrue(srv.wait_log("SIGHUP: reloaded the TLS certificate"))
        cert = [l for l in open(srv.config_path) if l.startswith("tls_cert")][0].split("= ", 1)[1].strip()
        with open(cert, "w") as f:
            f.write("not a certificate\n")
        srv.proc.send_signal(signal.SIGHUP)
        self.assertTrue(srv.wait_log("keeping the previous TLS certificate"))
        # The certificate in memory still serves.
        m = imaplib.IMAP4_SSL("127.0.0.1", srv.tls_port, ssl_context=client_tls_context(), timeout=IO_TIMEOUT)
        self.assertEqual(m.login("alice", "secret")[0], "OK")
        m.logout()

    def test_max_connections(self):
        srv = self.server(USERS, imap=["max_connections = 2"])
        first, second = Raw(srv.port), Raw(srv.port)
        self.assertTrue(first.line().startswith(b"* OK "))
        self.assertTrue(second.line().startswith(b"* OK "))
        third = Raw(srv.port)
        self.assertEqual(third.line(), b"* BYE Too many connections, try again later.")
        self.assertTrue(third.closed())
        third.close()
        first.send(b"a LOGOUT\r\n")
        first.until_tagged(b"a")
        self.assertTrue(first.closed())
        first.close()
        # Once one is gone, a new client is served again.
        for _ in range(100):
            fourth = Raw(srv.port)
            greeting = fourth.line()
            fourth.close()
            if greeting.startswith(b"* OK "):
                break
            time.sleep(0.1)
        self.assertTrue(greeting.startswith(b"* OK "), greeting)
        second.close()

    def test_autologout(self):
        srv = self.server(USERS, imap=["idle_timeout = 1"])
        r = self.connect(srv)
        self.assertEqual(r.line(), b"* BYE Autologout; idle for too long.")
        self.assertTrue(r.closed())
        r.close()


class EventLoops(DaemonCase):
    """Three event loops: connections go to each in turn, sessions on
    different loops see one another's mail, SIGHUP and SIGTERM reach every
    loop, and max_connections counts them all."""

    LOOPS = 3

    def test_sessions_on_every_loop(self):
        srv = self.server(USERS, imap=["loops = %d" % self.LOOPS])
        self.assertTrue(srv.wait_log("%d event loops" % self.LOOPS), srv.read_log()[-2000:])
        clients = [self.login("alice", "secret", srv=srv) for _ in range(2 * self.LOOPS)]
        # each selects INBOX; the first appends; every other one hears it
        for i, r in enumerate(clients):
            r.send(b"s SELECT INBOX\r\n")
            r.until_tagged(b"s")
        clients[0].send(b"a APPEND INBOX {8+}\r\nSubj: x\r\n")
        self.assertTrue(clients[0].until_tagged(b"a")[-1].startswith(b"a OK"))
        for r in clients[1:]:
            r.send(b"n NOOP\r\n")
            self.assertIn(b"* 1 EXISTS", r.until_tagged(b"n"))
        # SIGHUP: the new users table reaches every loop
        srv.write_users({"dave": "{PLAIN}new"})
        srv.proc.send_signal(signal.SIGHUP)
        self.assertTrue(srv.wait_log("SIGHUP: reloaded"))
        clients += [self.login("dave", "new", srv=srv) for _ in range(self.LOOPS)]
        # SIGTERM: every session on every loop is told, and the daemon exits 0
        srv.proc.send_signal(signal.SIGTERM)
        self.assertEqual(srv.proc.wait(IO_TIMEOUT), 0)
        for r in clients:
            self.assertEqual(r.line(), b"* BYE Server shutting down.")
            self.assertTrue(r.closed())
        log = srv.read_log()
        for k in range(self.LOOPS):
            self.assertEqual(log.count("; loop %d)" % k), 3, log[-3000:])

    def test_max_connections_counts_every_loop(self):
        srv = self.server(USERS, imap=["loops = %d" % self.LOOPS, "max_connections = 4"])
        for _ in range(4):
            self.connect(srv)
        extra = self.raw(srv)
        self.assertEqual(extra.line(), b"* BYE Too many connections, try again later.")
        self.assertTrue(extra.closed())


class ConfigCheck(unittest.TestCase):
    def check(self, text):
        """aerogramd -t on `text`, where USERS names a users file with one user."""
        with tempfile.TemporaryDirectory() as d:
            users = os.path.join(d, "users.ini")
            with open(users, "w") as f:
                f.write("[alice]\npassword = {PLAIN}secret\n")
            os.chmod(users, 0o600)
            path = os.path.join(d, "bad.conf")
            with open(path, "w") as f:
                f.write(text.replace("USERS", users))
            return subprocess.run([AEROGRAMD, "-t", "-c", path], capture_output=True, text=True)

    def test_bad_configs_fail_with_one_line(self):
        base = "[storage]\ndriver = %s\n" % DRIVER
        for text, needle in ((base + "[imap]\nlisten = nowhere\n", "listen"),
                             (base + "[imap]\nworkers = 0\n", "workers"),
                             (base + "[imap]\nidle_timeout = soon\n", "idle_timeout"),
                             (base + "[imap]\ntls_listen = 127.0.0.1:1993\n", "tls_listen"),
                             (base + "[imap]\nplaintext_auth = maybe\n", "plaintext_auth"),
                             (base + "[auth]\nfailure_delay = -1\n", "failure_delay"),
                             (base + "expunge_retention = a week\n", "expunge_retention"),
                             (base + "[imap]\nlisten = 127.0.0.1:1143\nbogus = 1\n", "bogus")):
            out = self.check(text)
            self.assertNotEqual(out.returncode, 0, text)
            lines = [l for l in out.stderr.splitlines() if ": warning: " not in l]
            self.assertEqual(len(lines), 1, out.stderr)
            self.assertIn(needle, lines[0])

    def test_good_config_passes(self):
        out = self.check("[storage]\ndriver = %s\n[imap]\nlisten = 127.0.0.1:1143 [::1]:1143\nworkers = 3\n"
                         "idle_timeout = 600\n[auth]\nusers_file = USERS\nfailure_delay = 0\n" % DRIVER)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("is valid", out.stdout)

    def test_example_config_is_valid(self):
        example = os.path.join(os.path.dirname(AEROGRAMD), "..", "packaging", "aerogram.conf.example")
        with open(example) as f:
            text = f.read()
        self.assertIn("\ndriver = sqlite\n", text)
        self.assertIn("\nusers_file = /etc/aerogram/users.ini\n", text)
        out = self.check(text.replace("\ndriver = sqlite\n", "\ndriver = %s\n" % DRIVER)
                         .replace("\nusers_file = /etc/aerogram/users.ini\n", "\nusers_file = USERS\n"))
        self.assertEqual(out.returncode, 0, out.stderr)

    def test_missing_users_file_stops_start(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "a.conf")
            with open(path, "w") as f:
                f.write("[storage]\ndriver = %s\n[imap]\nlisten = 127.0.0.1:1\n[auth]\nusers_file = %s/none.ini\n"
                        % (DRIVER, d))
            out = subprocess.run([AEROGRAMD, "-c", path], capture_output=True, text=True, timeout=IO_TIMEOUT)
            self.assertEqual(out.returncode, 1)
            self.assertIn("cannot open the users file", out.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=1)
