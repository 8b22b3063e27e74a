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

Usage: tests/garage/requests_per_op.py [--check] [--latency-ms MS] [--sizes 100,300]"""
import argparse
import sys
import time

from garage_harness import WAIT, Emu, Imap, daemon, message

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
    # list row, sync (ListObjectsV2 of checkpoints, watch + log), the \Recent
    # claim (entry + watch), the poller's first watch and its re-arm
    "SELECT INBOX": {"k2v": 7, "s3": 1},
    "NOOP": {"k2v": 0, "s3": 0},
    # list row, summary, the sync every add makes (watch + log tail), entry,
    # watch, re-arm; PutObject and the sync's ListObjectsV2 of checkpoints
    # (an add always reads the log first so that its UIDs are allocated on
    # the freshest state: a stale add raises UIDVALIDITY)
    "APPEND (not selected)": {"k2v": 6, "s3": 2},
    # the same, plus the selected session's \Recent claim (entry, watch, re-arm)
    "APPEND (INBOX selected)": {"k2v": 9, "s3": 2},
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
    return {"name": name, "wall": wall, "k2v": k2v, "s3": s3,
            "k2v_total": sum(k2v.values()), "s3_total": sum(s3.values())}


def run_size(n, latency):
    emu = Emu("--latency-ms", str(latency))
    filler = reader = None
    rows = []
    try:
        # Fill INBOX from a first daemon, then measure on a second one that
        # has never opened it.
        filler = daemon(emu, USERS)
        c = Imap(filler.port, "u")
        for i in range(n):
            c.ok("APPEND INBOX", message(i))
        c.ok("LOGOUT")
        c.close()
        filler.stop()
        filler = None
        reader = daemon(emu, USERS)
        sel = Imap(reader.port, "u")
        other = Imap(reader.port, "u")
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--latency-ms", type=int, default=5)
    ap.add_argument("--sizes", default="100,300")
    args = ap.parse_args()
    problems = []
    for n in [int(x) for x in args.sizes.split(",")]:
        rows = run_size(n, args.latency_ms)
        print("requests per operation, INBOX of %d messages, garage-emu --latency-ms %d"
              % (n, args.latency_ms))
        print("| operation | K2V requests | S3 requests | wall time |")
        print("|---|---|---|---|")
        for r in rows:
            print("| %s | %d (%s) | %d (%s) | %.1f ms |" % (r["name"], r["k2v_total"], fmt(r["k2v"]),
                                                        r["s3_total"], fmt(r["s3"]), r["wall"] * 1000))
            b = BOUNDS[r["name"]]
            if r["k2v_total"] > b["k2v"]:
                problems.append("N=%d %s: %d K2V requests > %d" % (n, r["name"], r["k2v_total"], b["k2v"]))
            if b["s3"] is None:
                if r["s3"] != {"GetObject": 100}:
                    problems.append("N=%d %s: S3 %s, expected GetObject 100" % (n, r["name"], r["s3"]))
            elif r["s3_total"] > b["s3"]:
                problems.append("N=%d %s: %d S3 requests > %d" % (n, r["name"], r["s3_total"], b["s3"]))
        print()
    if args.check:
        if problems:
            print("requests-per-op: FAILED\n  " + "\n  ".join(problems))
            return 1
        print("requests-per-op: every count within its bound")
    return 0


if __name__ == "__main__":
    sys.exit(main())
