#!/usr/bin/env python3
"""K2V and S3 requests per IMAP operation through a real aerogramd on the
garage driver, counted by garage-emu (GET /_emu/stats, reset between steps),
with the wall time of each step at --latency-ms (default 5).

For each mailbox size N (default 100 and 300) the script fills INBOX with N
messages, then, on a daemon that has never opened it:

  SELECT INBOX                  open a mailbox (list row, checkpoints, log)
  NOOP                          nothing new: the poller is live, no request
  APPEND (not selected)         one message from a session with nothing selected
  APPEND (INBOX selected)       one message while the mailbox is selected here
  STORE 1:100 +FLAGS            a flag change on 100 messages
  FETCH 1:100 BODY.PEEK[]       100 bodies

A step's count includes what the daemon's poller does because of it (the
script waits until the requests stop and the poller is parked again). The
table goes to stdout. With --check, the counts are asserted: each is bounded
by a constant that does not depend on N, except FETCH's GetObjects, which
are exactly the number of bodies. Times are printed, never asserted.

With --history H, each size is measured twice: on a freshly filled INBOX,
and on one that then took H STOREs (flag changes on 100 messages each, from
four connections at once): the requests per command must be the same and
the response bytes the same within a few rows of tail (the checkpoints
absorb the history; host/mail/README.md). Before the second daemon opens
the mailbox, the first one is left until it stops sending requests (its
idle checkpoint), then stopped.

Usage: tests/garage/requests_per_op.py [--check] [--latency-ms MS] [--sizes 100,300] [--history H]"""
import argparse
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from agtest.garage import WAIT, Emu, daemon  # noqa: E402
from agtest.imap import Imap  # noqa: E402
from agtest.mail import message  # noqa: E402

USERS = {"u": "{PLAIN}pw"}
K2V = ("ReadItem", "InsertItem", "DeleteItem", "ReadBatch", "InsertBatch", "DeleteBatch", "ReadIndex",
       "PollItem", "PollRange")
S3 = ("GetObject", "HeadObject", "PutObject", "CopyObject", "DeleteObject", "DeleteObjects", "ListObjectsV2")

# Upper bounds, independent of the mailbox size (see drivers/garage/README.md
# for what each request is). PollItem is the poller re-arming its watch
# after a write; whether two writes of one command reach it as one fire or
# two depends on timing, so K2V bounds allow one PollItem more. S3 bounds
# are exact: every sync lists the checkpoints (ListObjectsV2), so a daemon
# that reads the log again after its own write fails here.
BOUNDS = {
    # list row, the newest checkpoint (ListObjectsV2 + GetObject: the first
    # daemon checkpointed the mailbox when it went quiet), the watch and the
    # log after it (two reads: the watch row first, as Garage's ReadBatch is
    # no snapshot, host/mail/README.md); a \Recent claim (entry + watch)
    # when messages are unclaimed; the poller's first watch and its re-arm
    "SELECT INBOX": {"k2v": 8, "s3": 2},
    "NOOP": {"k2v": 0, "s3": 0},
    # list row, summary, the sync every add makes (watch, then log tail), entry,
    # watch, re-arm; PutObject and the sync's ListObjectsV2 of checkpoints
    # (an add always reads the log first so that its UIDs are allocated on
    # the freshest state: a stale add raises UIDVALIDITY)
    "APPEND (not selected)": {"k2v": 7, "s3": 2},
    # the same, plus the selected session's \Recent claim (entry, watch, re-arm)
    "APPEND (INBOX selected)": {"k2v": 10, "s3": 2},
    # one entry for the 100 messages, the watch, re-arm
    "STORE 1:100 +FLAGS": {"k2v": 4, "s3": 0},
    "FETCH 1:100 BODY.PEEK[]": {"k2v": 3, "s3": None},  # S3: exactly 100 GetObject
}


def settle(emu, polls):
    """Waits until the daemon stops sending requests and `polls` watches are parked."""
    deadline = time.monotonic() + WAIT
    last = None
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        st = emu.stats()
        if st["total"] != last:
            last = st["total"]
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= 0.3 and st["waiting"]["PollItem"] >= polls:
            return st
        time.sleep(0.05)
    raise AssertionError("the daemon did not settle in %d s" % WAIT)


def measure(emu, name, fn, polls=1):
    settle(emu, polls)
    emu.reset_stats()
    t0 = time.monotonic()
    fn()
    wall = time.monotonic() - t0
    st = settle(emu, 1)
    ep = st["endpoints"]
    k2v = {k: ep[k] for k in K2V if ep[k]}
    s3 = {k: ep[k] for k in S3 if ep[k]}
    rb = st.get("response_bytes", {})
    return {"name": name, "wall": wall, "k2v": k2v, "s3": s3,
            "k2v_total": sum(k2v.values()), "s3_total": sum(s3.values()),
            "k2v_bytes": sum(rb.get(k, 0) for k in K2V), "s3_bytes": sum(rb.get(k, 0) for k in S3)}


def history(port, n, stores, connections=4):
    """`stores` STOREs on INBOX of n messages, from several connections."""
    errors = []

    def work(k):
        try:
            c = Imap(port, user="u")
            c.ok("SELECT INBOX")
            for i in range(k, stores, connections):
                lo = 1 + (i * 37) % max(1, n - 100)
                c.ok("STORE %d:%d %sFLAGS (\\Flagged)" % (lo, lo + min(99, n - 1), "-" if i % 2 else "+"))
            c.ok("LOGOUT")
            c.close()
        except Exception as e:  # reported below
            errors.append(e)
    threads = [threading.Thread(target=work, args=(k,)) for k in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def quiet(emu, seconds=3.0):
    """Waits until the daemon sent no request for `seconds` (it checkpoints
    a mailbox gone quiet 2 s after its last write)."""
    deadline = time.monotonic() + WAIT
    last = None
    still = time.monotonic()
    while time.monotonic() < deadline:
        total = emu.stats()["total"]
        if total != last:
            last, still = total, time.monotonic()
        elif time.monotonic() - still >= seconds:
            return
        time.sleep(0.1)
    raise AssertionError("the daemon did not go quiet in %d s" % WAIT)


def run_size(n, latency, stores=0):
    emu = Emu("--latency-ms", str(latency))
    filler = reader = None
    rows = []
    try:
        # Fill INBOX from a first daemon, then measure on a second one that
        # has never opened it.
        filler = daemon(emu, USERS)
        c = Imap(filler.port, user="u")
        for i in range(n):
            c.ok("APPEND INBOX", message(i))
        if stores:
            history(filler.port, n, stores)
        # the messages are claimed \Recent by a SELECT in both runs, so that
        # the SELECT measured below compares like with like
        c.ok("SELECT INBOX")
        c.ok("LOGOUT")
        c.close()
        quiet(emu)
        filler.stop()
        filler = None
        reader = daemon(emu, USERS)
        sel = Imap(reader.port, user="u")
        other = Imap(reader.port, user="u")
        rows.append(measure(emu, "SELECT INBOX", lambda: sel.ok("SELECT INBOX"), polls=0))
        rows.append(measure(emu, "NOOP", lambda: sel.ok("NOOP")))
        rows.append(measure(emu, "APPEND (not selected)", lambda: other.ok("APPEND INBOX", message(n, "y"))))
        rows.append(measure(emu, "APPEND (INBOX selected)", lambda: sel.ok("APPEND INBOX", message(n, "x"))))
        rows.append(measure(emu, "STORE 1:100 +FLAGS", lambda: sel.ok("STORE 1:100 +FLAGS (\\Flagged)")))

        def fetch():
            untagged, _ = sel.ok("FETCH 1:100 BODY.PEEK[]")
            got = sum(1 for line, lits in untagged if b" FETCH " in line and lits)
            assert got == 100, got
        rows.append(measure(emu, "FETCH 1:100 BODY.PEEK[]", fetch))
        for x in (sel, other):
            x.ok("LOGOUT")
            x.close()
    finally:
        for s in (filler, reader):
            if s is not None:
                s.stop()
        emu.stop()
    return rows


def fmt(d):
    return " ".join("%s %d" % (k, v) for k, v in d.items()) or "-"


# With --history: the response bytes of a command after the history may
# exceed those on a fresh mailbox by at most this (a tail of a few entries
# too short for a checkpoint, flags and modseqs in the checkpoint).
HISTORY_SLACK_BYTES = 4096


def print_rows(n, latency, stores, rows):
    print("requests per operation, INBOX of %d messages%s, garage-emu --latency-ms %d"
          % (n, " after %d STOREs" % stores if stores else "", latency))
    print("| operation | K2V requests | S3 requests | K2V / S3 response bytes | wall time |")
    print("|---|---|---|---|---|")
    for r in rows:
        print("| %s | %d (%s) | %d (%s) | %d / %d | %.1f ms |"
              % (r["name"], r["k2v_total"], fmt(r["k2v"]), r["s3_total"], fmt(r["s3"]), r["k2v_bytes"],
                 r["s3_bytes"], r["wall"] * 1000))
    print()


def compare(n, stores, fresh, after):
    problems = []
    for a, b in zip(fresh, after):
        if a["k2v"] != b["k2v"] or a["s3"] != b["s3"]:
            problems.append("N=%d %s after %d STOREs: requests %s %s, on a fresh mailbox %s %s"
                            % (n, a["name"], stores, b["k2v"], b["s3"], a["k2v"], a["s3"]))
        if b["k2v_bytes"] > a["k2v_bytes"] + HISTORY_SLACK_BYTES or \
                b["s3_bytes"] > a["s3_bytes"] + HISTORY_SLACK_BYTES:
            problems.append("N=%d %s after %d STOREs: response bytes %d/%d, on a fresh mailbox %d/%d"
                            % (n, a["name"], stores, b["k2v_bytes"], b["s3_bytes"], a["k2v_bytes"],
                               a["s3_bytes"]))
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--latency-ms", type=int, default=5)
    ap.add_argument("--sizes", default="100,300")
    ap.add_argument("--history", type=int, default=0)
    args = ap.parse_args()
    problems = []
    for n in [int(x) for x in args.sizes.split(",")]:
        rows = run_size(n, args.latency_ms)
        print_rows(n, args.latency_ms, 0, rows)
        if args.history:
            after = run_size(n, args.latency_ms, args.history)
            print_rows(n, args.latency_ms, args.history, after)
            problems += compare(n, args.history, rows, after)
        for r in rows:
            b = BOUNDS[r["name"]]
            if r["k2v_total"] > b["k2v"]:
                problems.append("N=%d %s: %d K2V requests > %d" % (n, r["name"], r["k2v_total"], b["k2v"]))
            if b["s3"] is None:
                if r["s3"] != {"GetObject": 100}:
                    problems.append("N=%d %s: S3 %s, expected GetObject 100" % (n, r["name"], r["s3"]))
            elif r["s3_total"] > b["s3"]:
                problems.append("N=%d %s: %d S3 requests > %d" % (n, r["name"], r["s3_total"], b["s3"]))
    if args.check:
        if problems:
            print("requests-per-op: FAILED\n  " + "\n  ".join(problems))
            return 1
        print("requests-per-op: every count within its bound")
    return 0


if __name__ == "__main__":
    sys.exit(main())
