#!/usr/bin/env python3
"""APPEND through aerogramd on the garage driver, against garage-emu with an
injected latency: the K2V and S3 requests per APPEND (from the emulator's
counters) and the wall time of one APPEND (median of N, one at a time).

    python3 bench/garage_append.py [--latency-ms 5] [-n 50] [--selected]

Run from the top of a built tree (B=build, AEROGRAMD=build/aerogramd). A
benchmark: it prints numbers and never fails on speed."""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))

from agtest.garage import Emu, daemon  # noqa: E402
from agtest.imap import Imap  # noqa: E402
from agtest.mail import message  # noqa: E402

K2V = ("ReadItem", "InsertItem", "DeleteItem", "ReadBatch", "InsertBatch", "DeleteBatch", "ReadIndex",
       "PollItem", "PollRange")
S3 = ("GetObject", "HeadObject", "PutObject", "CopyObject", "DeleteObject", "DeleteObjects", "ListObjectsV2")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency-ms", type=int, default=5)
    ap.add_argument("-n", type=int, default=50)
    ap.add_argument("--selected", action="store_true", help="the appending session has INBOX selected")
    args = ap.parse_args()
    emu = Emu("--latency-ms", str(args.latency_ms))
    srv = None
    try:
        srv = daemon(emu, {"u": "{PLAIN}pw"})
        c = Imap(srv.port, user="u")
        if args.selected:
            c.ok("SELECT INBOX")
        for i in range(5):  # warm: the mailbox list, the state, the watch
            c.ok("APPEND INBOX", message(i, "w"))
        time.sleep(1.0)
        emu.reset_stats()
        walls = []
        for i in range(args.n):
            t0 = time.monotonic()
            c.ok("APPEND INBOX", message(i))
            walls.append(time.monotonic() - t0)
        st = emu.stats()["endpoints"]
        k2v = {k: st[k] for k in K2V if st[k]}
        s3 = {k: st[k] for k in S3 if st[k]}
        n = args.n
        print("garage-emu --latency-ms %d, %d APPENDs one at a time%s:" % (args.latency_ms, n,
              " (INBOX selected)" if args.selected else ""))
        print("  K2V per APPEND: %.2f  (%s)" % (sum(k2v.values()) / n,
              ", ".join("%s %.2f" % (k, v / n) for k, v in k2v.items())))
        print("  S3 per APPEND:  %.2f  (%s)" % (sum(s3.values()) / n,
              ", ".join("%s %.2f" % (k, v / n) for k, v in s3.items())))
        print("  wall time per APPEND: median %.1f ms, p90 %.1f ms" % (
            statistics.median(walls) * 1000, sorted(walls)[int(0.9 * n)] * 1000))
        c.ok("LOGOUT")
    finally:
        if srv is not None:
            srv.stop()
        emu.stop()


if __name__ == "__main__":
    main()
