#!/usr/bin/env python3
"""aerogramctl import: messages per second for the 200-message test mbox and a generated larger
one (default 10,000 messages: the 200 repeated, each copy with its own Message-ID), on the SQLite
driver (its defaults: synchronous=full) and on garage-emu, then the same import again (everything
already there: the cost of the resume check).

    python3 bench/import_rate.py [--count 10000] [--stores sqlite,garage] [--batch 100]
                                 [--latency-ms 0]

Run from the top of a built tree (B=build). A benchmark: it prints numbers and never fails on
speed. Every file it makes goes in a temporary directory removed at the end; the emulator it
starts is stopped by its PID."""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
B = os.environ.get("B", "build")
CTL = os.path.join(ROOT, B, "aerogramctl")
DRIVERS = os.path.join(ROOT, B, "drivers")
TESTMAIL = os.path.join(ROOT, "tests", "server", "data", "testmail.mbox")
FROM_LINE = re.compile(rb"^From \S+ .*\d{4}\n", re.M)


def generate(path, count):
    """count messages: the test mbox's, in turn, each copy with a Message-ID of its own."""
    with open(TESTMAIL, "rb") as f:
        data = f.read()
    starts = [m.start() for m in FROM_LINE.finditer(data)] + [len(data)]
    chunks = [data[starts[i]:starts[i + 1]] for i in range(len(starts) - 1)]
    total = 0
    with open(path, "wb") as f:
        for i in range(count):
            c = chunks[i % len(chunks)]
            if i >= len(chunks):
                c = re.sub(rb"(?mi)^(Message-ID: *<)", b"\\1copy%d." % (i // len(chunks)), c, count=1)
            f.write(c)
            total += len(c)
    return total


def run_import(conf, user, path, batch):
    t0 = time.monotonic()
    p = subprocess.run([CTL, "-c", conf, "import", user, "--batch", str(batch), path], capture_output=True,
                       text=True)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        raise RuntimeError("import failed: %s%s" % (p.stdout, p.stderr))
    last = p.stdout.strip().splitlines()[-1]
    return wall, last


def bench_store(name, storage_lines, driver, files, batch, workdir):
    d = os.path.join(workdir, name)
    os.makedirs(d)
    conf = os.path.join(d, "aerogram.conf")
    users = os.path.join(d, "users.ini")
    with open(conf, "w") as f:
        f.write("\n".join(["[storage]", "driver = " + driver] + storage_lines +
                          ["[imap]", "listen = 127.0.0.1:1", "[auth]", "users_file = " + users]) + "\n")
    for i, (label, path, n, size) in enumerate(files):
        user = "bench%d" % i
        subprocess.run([CTL, "-c", conf, "user", "add", user], input=b"pw\n", check=True,
                       stdout=subprocess.DEVNULL)
        wall, line = run_import(conf, user, path, batch)
        print("  %-9s %6d messages %7.1f MiB: %7.2f s  %7.0f messages/s  %6.1f MiB/s" % (
            label, n, size / 2**20, wall, n / wall, size / 2**20 / wall))
        print("           (aerogramctl: %s)" % line)
        wall, line = run_import(conf, user, path, batch)
        print("           again, all already there: %.2f s, %.0f messages/s" % (wall, n / wall))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--stores", default="sqlite,garage")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--latency-ms", type=int, default=0, help="garage-emu: latency per request")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="ag-import-bench-")
    emu = None
    try:
        big = os.path.join(work, "generated.mbox")
        big_size = generate(big, args.count)
        files = [("test", TESTMAIL, 200, os.path.getsize(TESTMAIL)), ("generated", big, args.count, big_size)]
        print("aerogramctl import rate: %s import USER --batch %d MBOX, wall time per run" % (CTL, args.batch))
        print("  test mbox: %s (200 messages); generated: the same messages repeated to %d, own Message-IDs"
              % (TESTMAIL, args.count))
        print("  %d CPUs; numbers are comparable only within one run" % os.cpu_count())
        for store in args.stores.split(","):
            if store == "sqlite":
                print("== sqlite (defaults: synchronous=full, blob_inline_max=65536)")
                bench_store("sqlite", ["path = " + os.path.join(work, "sqlite", "mail.sqlite")],
                            os.path.join(DRIVERS, "aerogram_sqlite.so"), files, args.batch, work)
            elif store == "garage":
                from agtest.garage import Emu
                emu = Emu("--latency-ms", str(args.latency_ms)) if args.latency_ms else Emu()
                print("== garage-emu (one replica, --latency-ms %d)" % args.latency_ms)
                bench_store("garage", emu.storage(), os.path.join(DRIVERS, "aerogram_garage.so"), files,
                            args.batch, work)
                emu.stop()
                emu = None
            else:
                raise SystemExit("unknown store %s" % store)
    finally:
        if emu is not None:
            emu.stop()
        shutil.rmtree(work, True)


if __name__ == "__main__":
    main()
