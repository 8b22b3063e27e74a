"""What the server tests share around unittest: a test class over one
daemon started for the class, the clients a test opens on it (each closed
when the test ends), daemons a test starts for itself, and the daemon on
the counting wrapper that measures storage calls.

    class Sort(ServerCase):
        USERS = 10          # u0 .. u9, password "pw" (or a users dict)
        Client = SortClient  # what client() opens (a Session subclass)

        def test_x(self):
            c = self.client(b"u1")"""
import imaplib
import tempfile
import unittest

from agtest.counts import COUNTING_DRIVER, OPS, cost, counting_storage
from agtest.daemon import IO_TIMEOUT, STORE, Faults, Server
from agtest.imap import Raw, Session

__all__ = ["CountingCase", "DaemonCase", "ServerCase", "numbered_users"]


def numbered_users(count, prefix="u", password="{PLAIN}pw"):
    """{u0: password, u1: ...}: one user per test keeps tests on one daemon apart."""
    return {"%s%d" % (prefix, i): password for i in range(count)}


class DaemonCase(unittest.TestCase):
    """Tests that start their own daemons (server(), faulty_server()) and
    open clients on them, each closed when the test ends; `srv` defaults to
    the class's daemon (ServerCase)."""

    Client = Session

    def client(self, user, password=b"pw", srv=None):
        """A logged-in Client."""
        c = self.Client((srv or self.srv).port, user, password)
        self.addCleanup(c.close)
        return c

    def imap(self, user, password="pw", srv=None):
        """A logged-in imaplib client."""
        m = imaplib.IMAP4("127.0.0.1", (srv or self.srv).port, timeout=IO_TIMEOUT)
        self.addCleanup(lambda: m.sock.close())
        self.assertEqual(m.login(user, password)[0], "OK")
        return m

    def raw(self, srv=None, tls=False):
        """A Raw connection, its greeting not read yet (tls: on the TLS port)."""
        srv = srv or self.srv
        r = Raw(srv.tls_port, tls=True) if tls else Raw(srv.port)
        self.addCleanup(r.close)
        return r

    def connect(self, srv=None, tls=False):
        """A Raw connection past its greeting, which must be OK."""
        r = DaemonCase.raw(self, srv, tls)
        greeting = r.line()
        self.assertTrue(greeting.startswith(b"* OK "), greeting)
        return r

    def login(self, user, password="pw", srv=None, tls=False):
        """connect(), then a LOGIN that must answer OK."""
        r = DaemonCase.connect(self, srv, tls)
        r.login(user, password)
        return r

    def server(self, users, **kw):
        """A daemon of this test alone (plain text only unless tls=True),
        stopped (and checked) when the test ends."""
        srv = Server(users, **dict({"tls": False}, **kw))
        self.addCleanup(srv.stop)
        return srv

    def faulty_server(self, users, faults="ok", storage=(), **kw):
        """A daemon of this test on the fault-injecting wrapper over the
        memory driver, and the Faults that say what fails (`faults` first)."""
        f = Faults(faults)
        self.addCleanup(f.cleanup)
        return self.server(users, driver=f.driver, storage=f.storage() + list(storage), **kw), f


class ServerCase(DaemonCase):
    """Tests on one aerogramd started for the class. USERS is a users dict
    or a number of users u0, u1, ... (password "pw"); SERVER the keyword
    arguments of the Server (plain text only unless it says tls); Client the
    Session class client() opens."""

    USERS = 1
    SERVER = {}
    server_class = Server

    @classmethod
    def setUpClass(cls):
        users = cls.USERS if isinstance(cls.USERS, dict) else numbered_users(cls.USERS)
        cls.srv = cls.server_class(users, **dict({"tls": False}, **cls.SERVER))

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()


class CountingCase(ServerCase):
    """Tests on one daemon on the counting wrapper (over the memory driver,
    or SQLite with AG_TEST_STORE=sqlite): calls() says which storage calls
    one action caused."""

    USERS = {"u": "{PLAIN}pw"}
    STORAGE = ()  # more [storage] lines ("body_cache = 0")

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="aerogram-counts-")
        cls.counts, storage = counting_storage(cls.tmp.name, STORE)
        cls.srv = Server(cls.USERS, tls=False, driver=COUNTING_DRIVER, storage=list(storage) + list(cls.STORAGE))

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        cls.tmp.cleanup()

    def calls(self, action):
        """(what action() returned, {operation: calls}) once the counters settled."""
        result, diff = cost(self.counts, action)
        return result, dict(zip(OPS, diff))

    @staticmethod
    def storage_calls(d):
        """All calls of calls()'s answer but the re-armed long polls."""
        return sum(v for op, v in d.items() if op != "row_watch")

