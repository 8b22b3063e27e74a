"""The Python side of the Aerogram tests: one package for every harness.

  agtest.ports   free_port()
  agtest.daemon  the aerogramd launcher (Server: a daemon in a temporary
                 directory; SqliteDaemon: one restartable on one database;
                 Faults: what the fault-injecting wrapper fails)
  agtest.imap    the IMAP client (Imap; Raw and the logged-in Session for the
                 server tests)
  agtest.case    the unittest classes of the server tests (ServerCase,
                 DaemonCase, CountingCase) and their clients
  agtest.counts  the counting wrapper's counters
  agtest.garage  garage-emu and daemons on the garage driver
  agtest.mail    test messages and what the tests read back from them
  agtest.sqlite  checks of an SQLite store from the outside

Scripts put tests/lib on sys.path from their own location (see
tests/README.md, "Writing a test"). Standard library only.

The package itself offers what the server tests import (the names the
former tests/server/aerogramd_fixture.py had): `from agtest import Raw, Server`."""
from agtest.daemon import (AEROGRAMCTL, AEROGRAMD, DRIVER, FAULTY_DRIVER, IO_TIMEOUT, START_TIMEOUT,  # noqa: F401
                           STORE, Server, client_tls_context, free_port, hash_password, make_certificate)
from agtest.imap import Raw, Session  # noqa: F401

__all__ = ["AEROGRAMCTL", "AEROGRAMD", "DRIVER", "FAULTY_DRIVER", "IO_TIMEOUT", "START_TIMEOUT", "STORE", "Raw",
           "Server", "Session", "client_tls_context", "free_port", "hash_password", "make_certificate"]
