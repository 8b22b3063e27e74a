"""Storage calls per IMAP command, measured through the counting wrapper.

Starts aerogramd on build/drivers/aerogram_counting.so (inner = memory, or
sqlite with --inner sqlite), fills INBOX with 100 and then 1,000 messages and
prints, per command and mailbox size, the driver calls it caused:

    python3 tests/server/roundtrips.py [--inner memory|sqlite] [--check]

A command's cost is the difference of the wrapper's counters before and
after it, once they stopped moving (agtest.counts). Re-armed long polls
(row_watch) are shown but not in the total, nor are the rows and bytes read
(columns "rows" and "bytes").

With --check (what `make check-server` runs) it asserts upper bounds: no
command reads a body it does not need, FETCH, STORE and SEARCH on flags cost
the same on 100 and 1,000 messages, a header SEARCH reads each summary once
and then nothing (the search cache), and the only other thing that grows is
the number of pages of young log a sync reads (see bounds() below and host/mail/README.md,
"Storage calls per operation")."""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from agtest import Server, Session  # noqa: E402
from agtest.counts import COLUMNS, COUNTING_DRIVER, OPS, cost, counting_storage  # noqa: E402

MESSAGE = (b"From: Alice <alice@example.org>\r\n"
           b"To: Bob <bob@example.org>\r\n"
           b"Subject: round trip %d\r\n"
           b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
           b"Message-ID: <%d@example.org>\r\n"
           b"\r\n"
           b"Hello %d\r\n")


def fill(client, start, count):
    """Appends messages start..start+count-1, pipelined with LITERAL+."""
    payload = b""
    tags = []
    for i in range(start, start + count):
        body = MESSAGE % (i, i, i)
        tag = client.tag()
        tags.append(tag)
        payload += tag + b" APPEND INBOX {%d+}\r\n" % len(body) + body + b"\r\n"
    client.send(payload)
    for tag in tags:
        if not client.until_tagged(tag)[-1].startswith(tag + b" OK"):
            raise AssertionError("APPEND failed")


def measure(counts_path, action):
    return cost(counts_path, action)[1]


def run(inner):
    tmp = tempfile.TemporaryDirectory(prefix="aerogram-roundtrips-")
    counts, storage = counting_storage(tmp.name, inner)
    srv = Server({"u": "{PLAIN}pw"}, tls=False, driver=COUNTING_DRIVER, storage=storage)
    rows = []
    try:
        filler = Session(srv.port, b"u")
        have = 0
        for size in (100, 1000):
            fill(filler, have + 1, size - have)
            have = size
            c = Session(srv.port, b"u")
            rows.append(("SELECT INBOX", size, measure(counts, lambda: c.cmd(b"SELECT INBOX"))))
            rows.append(("FETCH 1:100 ENVELOPE", size, measure(counts, lambda: c.cmd(b"FETCH 1:100 ENVELOPE"))))
            body = MESSAGE % (0, 0, 0)
            rows.append(("APPEND (selected)", size,
                         measure(counts, lambda: c.cmd(b"APPEND INBOX {%d+}\r\n" % len(body) + body))))
            rows.append(("FETCH BODY[] appended", size,
                         measure(counts, lambda: c.cmd(b"FETCH %d BODY.PEEK[]" % (size + 1)))))
            rows.append(("STORE 1:100 +FLAGS", size,
                         measure(counts, lambda: c.cmd(b"STORE 1:100 +FLAGS (\\Flagged)"))))
            rows.append(("UID SEARCH FLAGGED", size, measure(counts, lambda: c.cmd(b"UID SEARCH FLAGGED"))))
            rows.append(("UID SEARCH FROM", size, measure(counts, lambda: c.cmd(b"UID SEARCH FROM alice"))))
            rows.append(("UID SEARCH FROM again", size,
                         measure(counts, lambda: c.cmd(b"UID SEARCH FROM alice"))))
            rows.append(("LIST", size, measure(counts, lambda: c.cmd(b'LIST "" "*"'))))
            rows.append(("LIST again", size, measure(counts, lambda: c.cmd(b'LIST "" "*"'))))
            rows.append(("STATUS INBOX", size,
                         measure(counts, lambda: c.cmd(b"STATUS INBOX (MESSAGES UIDNEXT)"))))
            c.cmd(b"LOGOUT")
            c.close()
            have += 1
        filler.close()
    finally:
        srv.stop()
        tmp.cleanup()
    return rows


def total(d):
    return sum(v for i, v in enumerate(d[:len(OPS)]) if OPS[i] != "row_watch")


def print_table(inner, rows):
    shown = [i for i, op in enumerate(COLUMNS) if any(r[2][i] for r in rows)]
    head = "%-22s %6s " % ("command (inner=%s)" % inner, "msgs") + " ".join("%10s" % COLUMNS[i] for i in shown)
    print(head + " %6s" % "total")
    for name, size, d in rows:
        print("%-22s %6d " % (name, size) + " ".join("%10d" % d[i] for i in shown) + " %6d" % total(d))


# Upper bounds per command. A sync reads the log since the newest checkpoint
# (host/mail/README.md): one row_read per OPLOG_PAGE (1,000) entries. The
# poller writes a checkpoint when the tail weighs a quarter of the state or
# the mailbox has been quiet for 2 s, so the tail is usually short; `p`
# below allows the worst case, a tail of every message appended a moment
# ago (2 pages on 1,000 messages). How many syncs the poller adds after a
# write depends on timing, hence "at most".
def bounds(name, p, size):
    return {
        # list row, open sync, the \Recent claim (sync + entry + watch), the poller's sync
        "SELECT INBOX": {"row_read": 1 + 3 * p, "blob_get": 1, "blob_list": 3, "row_insert": 2,
                         "blob_put": 0},
        # 100 summaries in batches of 64: two reads, no body
        "FETCH 1:100 ENVELOPE": {"row_read": 2, "blob_get": 0, "blob_list": 0, "row_insert": 0, "total": 2},
        # body, summary, entry, watch; syncs. The \Recent claim of the new
        # message rides in the APPEND's own entry: one conditional write
        "APPEND (selected)": {"blob_put": 1, "row_insert": 5, "row_insert_if": 1, "row_read": 1 + 3 * p,
                              "blob_list": 3, "blob_get": 0},
        # the engine keeps the bodies it wrote (and read) lately: no read
        "FETCH BODY[] appended": {"total": 0},
        # one entry and the watch, whatever the number of messages; syncs
        "STORE 1:100 +FLAGS": {"row_insert": 2, "row_read": 2 * p, "blob_list": 2, "blob_get": 0,
                               "blob_put": 0},
        # flags are in the view: no storage call at all
        "UID SEARCH FLAGGED": {"total": 0},
        # summaries by batches of 128 (a batch of most of the mailbox is one
        # paginated range read), never a body
        "UID SEARCH FROM": {"row_read": size // 128 + 1, "blob_get": 0, "total": size // 128 + 1},
        # the search cache holds every From now: nothing
        "UID SEARCH FROM again": {"total": 0},
        # the list row, at most (the session's SELECT may have left it cached)
        "LIST": {"row_read": 1, "blob_get": 0, "row_insert": 0},
        # the engine keeps the list while the watch on its row is quiet
        "LIST again": {"total": 0},
        # the list is cached and the selected mailbox is quiet: nothing
        "STATUS INBOX": {"total": 0},
    }[name]


def check(rows):
    failures = []
    for name, size, d in rows:
        p = (size + 100) // 1000 + 1
        for key, bound in bounds(name, p, size).items():
            value = total(d) if key == "total" else d[COLUMNS.index(key)]
            if value > bound:
                failures.append("%s on %d messages: %s = %d > %d" % (name, size, key, value, bound))
    return failures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--inner", default="memory", choices=["memory", "sqlite"])
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    rows = run(args.inner)
    print_table(args.inner, rows)
    if args.check:
        failures = check(rows)
        for f in failures:
            print("roundtrips: " + f, file=sys.stderr)
        if failures:
            sys.exit(1)
        print("roundtrips: every bound holds")


if __name__ == "__main__":
    main()
