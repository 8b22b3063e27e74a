"""The harness package itself (tests/lib/agtest): what every Python test
relies on when it starts, stops, kills and talks to aerogramd. A harness
that cannot see a failure hides every failure of the tests built on it, so
this checks that it does see them: a daemon that died, a sanitizer report,
a NO, a dropped connection; and that the fixtures the tests share do what
they say (the test classes' daemons and clients, the fault control, the
storage call counts).

Run from the top of the tree after `make` (make check-agtest)."""
import os
import signal
import socket
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agtest.case import CountingCase, DaemonCase, ServerCase, numbered_users  # noqa: E402
from agtest.daemon import ROOT, Server, SqliteDaemon, write_users  # noqa: E402
from agtest.imap import Imap, ImapError, Raw  # noqa: E402
from agtest.mail import message, message_id, select_data, select_info  # noqa: E402
from agtest.ports import free_port  # noqa: E402
from agtest.sqlite import integrity_check  # noqa: E402

BUILD = os.path.dirname(os.path.abspath(os.environ.get("AEROGRAMD", os.path.join(ROOT, "build", "aerogramd"))))


class ServerAndClient(ServerCase):
    USERS = {"u": "{PLAIN}pw"}
    SERVER = {"tls": True}

    def client(self):
        c = Imap(self.srv.port, user="u")
        self.addCleanup(c.close)
        return c

    def test_commands_literals_and_errors(self):
        c = self.client()
        c.ok("CREATE Lits")
        one, two = message(1), message(2)
        _, tagged = c.ok("APPEND Lits", one)                      # synchronizing literal
        self.assertIn(b"[APPENDUID ", tagged)
        _, tagged = c.ok(b"APPEND Lits", two, literal_plus=True)  # LITERAL+
        self.assertIn(b"[APPENDUID ", tagged)
        self.assertEqual(c.select("Lits")[0], 2)
        untagged, _ = c.ok("FETCH 1:2 (UID BODY.PEEK[])")
        self.assertEqual([lits for _, lits in untagged], [[one], [two]])
        self.assertTrue(all(text.endswith(b"BODY[] {})") for text, _ in untagged), untagged)
        self.assertEqual([message_id(lits[0]) for _, lits in untagged],
                         ["<m-1@aerogram.test>", "<m-2@aerogram.test>"])
        self.assertEqual(sorted(c.fetch_bodies(c.uid_search(b"ALL")).values()), sorted([one, two]))
        # a NO is an ImapError (an AssertionError), and command() returns it
        with self.assertRaises(ImapError):
            c.ok("SELECT NoSuchBox")
        _, tagged = c.command("SELECT NoSuchBox")
        self.assertIn(b" NO ", tagged)
        self.assertEqual(select_info(c.ok("SELECT Lits")[0])[0], 2)
        data = select_data(c.ok("EXAMINE Lits")[0])
        self.assertEqual(data["exists"], 2)
        self.assertGreater(data["uidvalidity"], 0)
        self.assertEqual(data["uidnext"], 3)
        # untagged answers go to on_untagged when given
        seen = []
        untagged, _ = c.ok("NOOP", on_untagged=lambda text, lits: seen.append(text))
        self.assertEqual(untagged, [])

    def test_raw_leaves_the_greeting_and_sees_the_close(self):
        r = Raw(self.srv.port)
        self.addCleanup(r.close)
        self.assertTrue(r.line().startswith(b"* OK"))
        r.send(b"a1 NOOP\r\na2 LOGOUT\r\n")          # pipelined
        self.assertEqual(r.until_tagged(b"a1")[-1][:5], b"a1 OK")
        self.assertEqual(r.until_tagged(b"a2")[-2:][0], b"* BYE Logging out.")
        self.assertTrue(r.closed())

    def test_tls_and_starttls(self):
        r = Raw(self.srv.tls_port, tls=True)
        self.addCleanup(r.close)
        self.assertTrue(r.line().startswith(b"* OK"))
        p = Raw(self.srv.port)
        self.addCleanup(p.close)
        p.line()
        p.send(b"s STARTTLS\r\n")
        self.assertTrue(p.until_tagged(b"s")[-1].startswith(b"s OK"))
        p.starttls()
        p.send(b"c CAPABILITY\r\n")
        self.assertIn(b"AUTH=PLAIN", b" ".join(p.until_tagged(b"c")))

    def test_a_dropped_connection_is_an_exception(self):
        c = self.client()
        c.send(b"x LOGOUT\r\n")
        with self.assertRaises((EOFError, OSError)):
            while True:
                c.line()


class SessionAndCase(ServerCase):
    """The line-level client and the test-class helpers of agtest.case."""

    USERS = 2

    def test_fill_one_responses_capabilities(self):
        s = self.client(b"u0").fill(b"Box", [message(1), (message(2), b"\\Flagged"),
                                             (message(3), b"", b"01-Jan-2001 00:00:00 +0000")], create=True)
        self.assertEqual(s.one(b"SEARCH ALL", b"SEARCH"), b"1 2 3")
        self.assertEqual(s.one(b"SEARCH FLAGGED", b"SEARCH"), b"2")
        self.assertEqual(s.one(b"SEARCH BEFORE 2-Jan-2001", b"SEARCH"), b"3")
        self.assertEqual(s.responses(b"FETCH 1:2 (UID)", b"2 FETCH"), [b"(UID 2)"])
        self.assertEqual(s.responses(b"NOOP", b"SEARCH"), [])
        with self.assertRaises(AssertionError):
            s.one(b"NOOP", b"SEARCH")       # not one: none
        with self.assertRaises(AssertionError):
            s.one(b"SELECT Nowhere", b"SEARCH")  # not OK
        self.assertIn(b"IMAP4rev1", s.capabilities())

    def test_login_imap_raw(self):
        r = self.login("u1")
        r.send(b"a NOOP\r\n")
        self.assertEqual(r.until_tagged(b"a"), [b"a OK NOOP completed."])
        cont, lines = r.continued(b"i", b"IDLE", b"DONE")
        self.assertEqual((cont, lines), (b"+ idling", [b"i OK IDLE terminated."]))
        with self.assertRaises(ImapError):
            self.login("u1", "wrong")
        self.assertEqual(self.imap("u1").noop()[0], "OK")
        self.assertTrue(self.raw().line().startswith(b"* OK"))
        self.assertEqual(sorted(numbered_users(2)), ["u0", "u1"])


class OwnDaemons(DaemonCase):
    def test_server_is_stopped_by_the_cleanup(self):
        srv = self.server({"u": "{PLAIN}pw"})
        self.assertIsNone(srv.tls_port)  # plain text unless asked
        self.doCleanups()
        self.assertEqual(srv.proc.returncode, 0)
        srv.stop()  # again: nothing to do

    def test_faults_change_what_fails(self):
        srv, faults = self.faulty_server({"u": "{PLAIN}pw"})
        c = self.login("u", srv=srv)
        c.ok("CREATE Before")
        faults.set("fail all unavailable")
        _, tagged = c.command("CREATE During")
        self.assertIn(b" NO [UNAVAILABLE]", tagged)
        faults.set("ok")
        c.ok("CREATE After")


class Counting(CountingCase):
    def test_calls_of_an_action(self):
        c = self.client(b"u")
        c.cmd(b"CREATE Counted")
        answer, d = self.calls(lambda: c.append(b"Counted", message(1)))
        self.assertIsNone(answer)
        self.assertEqual(d["blob_put"], 1, d)
        self.assertGreater(self.storage_calls(d), 1, d)
        _, d = self.calls(lambda: c.cmd(b"NOOP"))  # not selected: no storage at all
        self.assertEqual(self.storage_calls(d), 0, d)


class StopSeesFailures(unittest.TestCase):
    def test_killed_daemon_fails_stop(self):
        srv = Server({"u": "{PLAIN}pw"}, tls=False)
        os.kill(srv.proc.pid, signal.SIGKILL)
        srv.proc.wait()
        with self.assertRaises(AssertionError) as cm:
            srv.stop()
        self.assertIn("exited with -9", str(cm.exception))

    def test_sanitizer_report_fails_stop(self):
        srv = Server({"u": "{PLAIN}pw"}, tls=False)
        srv.proc.terminate()   # a clean exit (status 0), then what a sanitizer writes at exit
        self.assertEqual(srv.proc.wait(), 0)
        with open(srv.log_path, "a") as f:
            f.write("==1==ERROR: AddressSanitizer: heap-use-after-free\n")
        with self.assertRaises(AssertionError) as cm:
            srv.stop()
        self.assertIn("sanitizer report", str(cm.exception))

    def test_clean_stop(self):
        srv = Server({"u": "{PLAIN}pw"}, tls=False)
        srv.stop()
        self.assertEqual(srv.proc.returncode, 0)

    def test_failed_start_raises_and_leaves_nothing(self):
        with self.assertRaises(RuntimeError) as cm:
            Server({"u": "{PLAIN}pw"}, tls=False, imap=["no_such_key = 1"])
        self.assertIn("aerogramd exited with", str(cm.exception))


class RestartableDaemon(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="agtest-")
        self.addCleanup(self.tmp.cleanup)
        d = self.tmp.name
        users = os.path.join(d, "users.ini")
        write_users(users, {"u": "{PLAIN}pw"})
        self.db = os.path.join(d, "mail.sqlite")
        self.daemon = SqliteDaemon(BUILD, d, "one", self.db, users)
        self.addCleanup(self.daemon.cleanup)

    def test_taken_port_kill_restart_same_database(self):
        d = self.daemon
        taken = d.port
        with socket.socket() as blocker:
            blocker.bind(("127.0.0.1", taken))
            blocker.listen()
            d.start()
        self.assertNotEqual(d.port, taken)
        with open(d.logs[0]) as f:
            self.assertIn("cannot listen on", f.read())
        c = Imap(d.port, user="u")
        c.append("INBOX", message(1))
        c.close()
        self.assertEqual(d.kill9(), -9)
        self.assertFalse(d.alive())
        d.spawn()                       # without waiting ...
        self.assertTrue(d.wait_ready())  # ... then waiting
        self.assertEqual(len(d.logs), d.starts)
        c = Imap(d.port, user="u")
        self.assertEqual(c.select("INBOX")[0], 1)
        c.logout()
        self.assertIsNone(d.stop())
        self.assertEqual(integrity_check(self.db), "ok")

    def test_stop_reports_a_killed_daemon(self):
        d = self.daemon
        d.start()
        d.kill9()
        self.assertIn("exited with -9", d.stop())


class Ports(unittest.TestCase):
    def test_free_port_can_be_bound(self):
        port = free_port()
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


if __name__ == "__main__":
    unittest.main(verbosity=2)
