"""Prints how fast aerogramd answers (not a test: nothing here can fail on a
slow machine). Run by hand after `make`:

    python3 tests/server/bench_server.py [messages] [clients]

AG_TEST_STORE=sqlite measures the SQLite driver instead of the memory one."""
import imaplib
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from agtest import IO_TIMEOUT, STORE, Raw, Server  # noqa: E402

MESSAGE = (b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: benchmark\r\n"
           b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n\r\n" + b"line of body text\r\n" * 200)


def timed(label, count, fn):
    start = time.monotonic()
    fn()
    took = time.monotonic() - start
    print("%-40s %7d in %6.2f s  %9.1f /s" % (label, count, took, count / took if took else 0.0))


def main():
    messages = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    srv = Server({"u%d" % i: "{PLAIN}pw" for i in range(clients)}, tls=False)
    try:
        print("aerogramd on the %s driver, %d messages, %d clients" % (STORE, messages, clients))
        m = imaplib.IMAP4("127.0.0.1", srv.port, timeout=IO_TIMEOUT)
        m.login("u0", "pw")
        timed("APPEND (one client)", messages,
              lambda: [m.append("INBOX", None, None, MESSAGE) for _ in range(messages)])
        m.select("INBOX")
        timed("FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE)", messages,
              lambda: m.fetch("1:*", "(FLAGS ENVELOPE BODYSTRUCTURE)"))
        timed("FETCH 1:* BODY.PEEK[]", messages, lambda: m.fetch("1:*", "(BODY.PEEK[])"))
        timed("SEARCH BODY (every body read)", messages, lambda: m.search(None, "BODY", "nowhere"))
        timed("STORE one message at a time", messages // 5,
              lambda: [m.store(str(i + 1), "+FLAGS", "(\\Seen)") for i in range(messages // 5)])
        timed("NOOP", 1000, lambda: [m.noop() for _ in range(1000)])
        m.logout()

        def client(n):
            c = imaplib.IMAP4("127.0.0.1", srv.port, timeout=IO_TIMEOUT)
            c.login("u%d" % n, "pw")
            for _ in range(messages // clients):
                c.append("INBOX", None, None, MESSAGE)
            c.logout()

        def parallel():
            threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        timed("APPEND (%d clients at once)" % clients, messages // clients * clients, parallel)

        def pipelined():
            # LITERAL+ APPENDs written as one burst, read back by a second thread.
            r = Raw(srv.port)
            r.line()
            r.send(b"l LOGIN u0 pw\r\n")
            r.until_tagged(b"l")
            burst = b"".join(b"p%d APPEND INBOX {%d+}\r\n%s\r\n" % (i, len(MESSAGE), MESSAGE)
                             for i in range(messages))
            writer = threading.Thread(target=r.send, args=(burst,))
            writer.start()
            r.until_tagged(b"p%d" % (messages - 1))
            writer.join()
            r.close()

        timed("APPEND (one client, all pipelined)", messages, pipelined)
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
