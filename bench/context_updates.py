"""What updating SEARCH / SORT contexts (RFC 5267, host/context.c) cost:
fills a 10,000-message mailbox, then times the NOOP that tells session A a
change session B made (a flag that adds a message to the contexts' results,
and an append) with no context, one, a few and ten. Not part of `make
check`: it prints numbers, it asserts nothing.

    make && AG_TEST_STORE=sqlite python3 bench/context_updates.py

starts its own aerogramd (build/; the SQLite driver with AG_TEST_STORE=sqlite)."""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "server"))
from test_context import Client, message  # noqa: E402
from agtest import Server  # noqa: E402

N = 10000
srv = Server({"u": "{PLAIN}pw"}, tls=False)
try:
    a = Client(srv.port, b"u")
    t0 = time.monotonic()
    batch = b""
    for i in range(1, N + 1):
        m = message(i, "subject %05d" % ((i * 7919) % N))
        flags = b" (\\Seen)" if i % 3 else b""
        batch += b"p%d APPEND INBOX%s {%d+}\r\n" % (i, flags, len(m)) + m + b"\r\n"
        if i % 500 == 0:
            a.send(batch); a.until_tagged(b"p%d" % i); batch = b""
    print("filled %d in %.1fs" % (N, time.monotonic() - t0))
    a.cmd(b"SELECT INBOX")
    b = Client(srv.port, b"u"); b.cmd(b"SELECT INBOX")

    counter = [0]

    def noop_after(change, reps=5):
        ts = []
        for r in range(reps):
            counter[0] += 3  # 3k+1 and 3k+2 are seen: flagging one adds it to OR FLAGGED UNSEEN
            b.cmd(change % (counter[0] + 1))
            t = time.monotonic(); lines = a.cmd(b"NOOP"); ts.append(time.monotonic() - t)
        ts.sort()
        return ts[len(ts) // 2] * 1000, sum(l.startswith(b"* ESEARCH") for l in lines)

    def report(label):
        ms, n = noop_after(b"STORE %d +FLAGS (\\Flagged)")
        print("%-48s flag change: NOOP %.1f ms (%d ESEARCH lines)" % (label, ms, n))
        t = time.monotonic(); msg = message(0, "subject 00000a")
        b.cmd(b"APPEND INBOX {%d+}\r\n" % len(msg) + msg)
        t = time.monotonic(); lines = a.cmd(b"NOOP"); ms = (time.monotonic() - t) * 1000
        print("%-48s append:      NOOP %.1f ms (%d ESEARCH lines)" % (label, ms, sum(l.startswith(b"* ESEARCH") for l in lines)))

    report("no context")
    a.esearch(b"SEARCH RETURN (UPDATE) OR FLAGGED UNSEEN", b"S1")
    report("1 SEARCH context (OR FLAGGED UNSEEN)")
    a.esearch(b"SEARCH RETURN (UPDATE) FROM someone SUBJECT 0", b"S2")
    report("+1 SEARCH context (FROM, SUBJECT: cache)")
    a.esearch(b"SORT RETURN (UPDATE) (SUBJECT) UTF-8 OR FLAGGED UNSEEN", b"S3")
    report("+1 SORT context (SUBJECT) of ~3,300")
    for i in range(4, 11):
        a.esearch(b"SEARCH RETURN (UPDATE) OR FLAGGED UNSEEN", b"S%d" % i)
    report("10 contexts (9 SEARCH, 1 SORT)")
finally:
    srv.stop()
