"""Storage calls per IMAP command, measured through the counting wrapper.

Starts aerogramd on build/drivers/aerogram_counting.so (inner = memory, or
sqlite with --inner sqlite), fills INBOX with 100 and then 1,000 messages and
prints, per command and mailbox size, the driver calls it caused:

    python3 tests/server/roundtrips.py [--inner memory|sqlite] [--check]

The wrapper keeps its counters in a file (little-endian uint64, laid out as
sdk/wrappers/ag_wrap.h says: calls per operation, items per operation, then
the rows row_read returned and the bytes of their values); a command's cost
is the difference before and after it, once the counters stopped moving (the
engine's poller re-syncs after a write it was told of: that is part of the
cost). Re-armed long polls (row_watch) are shown but not in the total, nor
are the rows and bytes read (columns "rows" and "bytes").

With --check (what `make check-server` runs) it asserts upper bounds: no
command reads a body it does not need, FETCH, STORE and SEARCH on flags cost
the same on 100 and 1,000 messages, a header SEARCH reads each summary once
and then nothing (the search cache), and the only other thing that grows is
the number of pages of young log a sync reads (see bounds() below and host/mail/README.md,
"Storage calls per operation")."""
import argparse
import os
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from agtest import DRIVER, Server, Session  # noqa: E402

# enum agw_op, in order; then the two counters that follow the calls and
# items blocks in the counts file.
OPS = ["row_read", "row_insert", "row_delete", "row_watch",
       "blob_get", "blob_put", "blob_copy", "blob_list", "blob_delete", "row_insert_if"]
EXTRA = ["rows", "bytes"]
COLUMNS = OPS + EXTRA
SLOTS = 2 * len(OPS) + len(EXTRA)
COUNTING_DRIVER = os.path.join(os.path.dirname(DRIVER), "aerogram_counting.so")

MESSAGE = (b"From: Alice <alice@example.org>\r\n"
           b"To: Bob <bob@example.org>\r\n"
           b"Subject: round trip %d\r\n"
           b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
           b"Message-ID: <%d@example.org>\r\n"
           b"\r\n"
           b"Hello %d\r\n")


def read_counts(path):
    """Calls per operation, then rows read and value bytes read."""
    with open(path, "rb") as f:
        data = f.read(8 * SLOTS)
    if len(data) < 8 * SLOTS:
        return [0] * len(COLUMNS)
    values = struct.unpack("<%dQ" % SLOTS, data)
    return list(values[:len(OPS)]) + list(values[2 * len(OPS):])


# Longer than the engine's idle-checkpoint delay (OPLOG_CKPT_IDLE_MS, 2 s):
# a quiet mailbox's tail is checkpointed in the background, and that belongs
# to no command.
QUIET = 2.5


def settled_counts(path, quiet=QUIET, limit=30.0):
    """The counters once they did not move for `quiet` seconds."""
    deadline = time.monotonic() + limit
    last = read_counts(path)
    still_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = read_counts(path)
        if now != last:
            last, still_since = now, time.monotonic()
        elif time.monotonic() - still_since >= quiet:
            break
    return last


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
    before = settled_counts(counts_path)
    action()
    after = settled_counts(counts_path)
    return [a - b for a, b in zip(after, before)]


def run(inner):
    import tempfile
    tmp = tempfile.TemporaryDirectory(prefix="aerogram-roundtrips-")
    counts = os.path.join(tmp.name, "counts")
    storage = ["inner = " + inner, "counts_file = " + counts]
    if inner == "sqlite":
        storage.append("inner_config = path=" + os.path.join(tmp.name, "mail.sqlite"))
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
            rows.append(("STORE 1:100 +FLAGS", size,
                         measure(counts, lambda: c.cmd(b"STORE 1:100 +FLAGS (\\Flagged)"))))
            rows.append(("UID SEARCH FLAGGED", size, measure(counts, lambda: c.cmd(b"UID SEARCH FLAGGED"))))
            rows.append(("UID SEARCH FROM", size, measure(counts, lambda: c.cmd(b"UID SEARCH FROM alice"))))
            rows.append(("UID SEARCH FROM again", size,
                         measure(counts, lambda: c.cmd(b"UID SEARCH FROM alice"))))
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
