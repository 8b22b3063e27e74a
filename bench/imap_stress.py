"""bench-imap: aerogramd under imaptest's mixed load, next to the reference Dovecot.

1. The stress run: the team's imap-stress.sh (imaptest, 10 clients, users
   testuser1..100, SECS seconds) against aerogramd on the sqlite driver
   (its defaults: synchronous=full, a fresh database), then on the memory
   driver, then against the reference Dovecot (dovecot-test.sh,
   127.0.0.1:10143). Prints each total (commands answered) and the ratios
   aerogramd/Dovecot.
2. The decay run: imaptest with the same parameters for DECAY seconds on a
   fresh aerogramd (sqlite, then memory); its per-second counters summed
   per 10-second interval show whether throughput decays as the mailboxes
   age (the target: the last interval at least 80% of the first).

The servers run one after the other, never at once; numbers are comparable
only within one run of this script. It prints numbers and never fails on
speed: it exits non-zero only when a run could not be measured.

    python3 bench/imap_stress.py [--secs 20] [--decay-secs 60] [--no-dovecot] [--no-decay]
"""
import argparse
import collections
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

USERS = ["testuser%d" % i for i in range(1, 101)]
PASSWORD = "pass"
# imaptest's per-second line: one count per command kind, then "connected/clients".
SECOND_LINE = re.compile(r"^\s*((?:\d+\s+)+)\d+/\s*\d+")
DECAY_EXTRA = 2
STRESS_LINE = re.compile(r"^imaptest: (\d+) commands in")


def imaptest_args(imaptest, port, secs):
    """The parameters imap-stress.sh gives imaptest (kept identical here)."""
    mbox = os.path.join(benchlib.TOOLS, "..", "testdata", "imaptest", "testmail.mbox")
    return [imaptest, "host=127.0.0.1", "port=%d" % port, "user=testuser%d", "pass=" + PASSWORD,
            "mbox=" + os.path.normpath(mbox), "clients=10", "secs=%d" % secs, "seed=123", "logout=0"]


def build_imaptest(work):
    log = os.path.join(work, "build-imaptest.log")
    with open(log, "w") as err:
        out = subprocess.run([os.path.join(benchlib.TOOLS, "build-imaptest.sh")], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True)
    path = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    if out.returncode != 0 or not os.access(path, os.X_OK):
        with open(log) as f:
            sys.stderr.write(f.read()[-3000:])
        raise RuntimeError("build-imaptest.sh failed")
    return path


def count_errors(log_path):
    """imaptest's error lines (protocol checks, failed commands), counted by
    kind ("Error: testuser7[3]: Keyword used without...: * 1 FETCH..." is
    of kind "Keyword used without being in FLAGS"). Returns a Counter."""
    kinds = collections.Counter()
    with open(log_path, errors="replace") as f:
        for line in f:
            if not line.startswith("Error:"):
                continue
            text = re.sub(r"^Error: (\S+\[\d+\]: )?", "", line.strip())
            kinds[text.split(":")[0][:60]] += 1
    return kinds


def describe_errors(kinds):
    n = sum(kinds.values())
    if not n:
        return "imaptest errors: none"
    top = ", ".join("%d x %s" % (c, k) for k, c in kinds.most_common(2))
    return "imaptest errors: %d (%s%s)" % (n, top, ", ..." if len(kinds) > 2 else "")


def run_stress(work, name, port, secs):
    """imap-stress.sh against 127.0.0.1:port; returns (total, errors, log path)."""
    out_path = os.path.join(work, "stress-%s.out" % name)
    env = dict(os.environ, TMPDIR=work)   # its own log directory goes under our work dir
    proc = None
    try:
        with open(out_path, "w") as out:
            proc = subprocess.Popen([os.path.join(benchlib.TOOLS, "imap-stress.sh"), "127.0.0.1", str(port),
                                     str(secs)], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    env=env, close_fds=True, start_new_session=True)
            proc.wait(secs + 120)
    finally:
        benchlib.stop_group(proc)
    total, log = None, None
    with open(out_path) as f:
        text = f.read()
    for line in text.splitlines():
        m = STRESS_LINE.match(line)
        if m:
            total = int(m.group(1))
            lm = re.search(r"\(log: ([^)]+)\)", line)
            log = lm.group(1) if lm else None
    if total is None:
        sys.stderr.write(text[-3000:])
        raise RuntimeError("imap-stress.sh printed no total for %s" % name)
    errors = count_errors(log) if log and os.path.exists(log) else collections.Counter()
    return total, errors, log


def run_decay(work, imaptest, name, port, secs):
    """imaptest directly; returns the commands answered in each of the
    first `secs` seconds. imaptest runs DECAY_EXTRA seconds longer, since it
    prints its last per-second line only if the run outlasts that second."""
    out_path = os.path.join(work, "decay-%s.out" % name)
    proc = None
    try:
        with open(out_path, "w") as out:
            proc = subprocess.Popen(imaptest_args(imaptest, port, secs + DECAY_EXTRA), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, close_fds=True, start_new_session=True,
                                    cwd=work)
            proc.wait(secs + DECAY_EXTRA + 40)
    except subprocess.TimeoutExpired:
        pass
    finally:
        benchlib.stop_group(proc)
    seconds = []
    with open(out_path, errors="replace") as f:
        for line in f:
            if line.startswith("Totals:"):
                break
            m = SECOND_LINE.match(line)
            if m:
                seconds.append(sum(int(x) for x in m.group(1).split()))
    if not seconds:
        raise RuntimeError("imaptest printed no per-second counters for %s (%s)" % (name, out_path))
    return seconds[:secs], count_errors(out_path), out_path


def per_interval(seconds, interval):
    """Sums of whole intervals of per-second counts (a partial tail is dropped)."""
    return [sum(seconds[i:i + interval]) for i in range(0, len(seconds) - interval + 1, interval)]


def start_daemon(work, driver, run_name):
    d = os.path.join(work, run_name)
    os.mkdir(d)
    daemon = benchlib.Aerogramd(d, driver, USERS, PASSWORD)
    daemon.start()
    return daemon


def finish_daemon(daemon, label):
    """Stops it; a daemon that died under load is worth a loud line."""
    crashed = daemon.proc.poll() is not None
    daemon.stop()
    if crashed:
        print("  WARNING: aerogramd (%s) exited during the run with status %s; its log ends with:\n%s"
              % (label, daemon.proc.returncode, daemon.log_tail()))
    return crashed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--secs", type=int, default=20, help="length of each stress run (default 20)")
    ap.add_argument("--decay-secs", type=int, default=60, help="length of each decay run (default 60)")
    ap.add_argument("--interval", type=int, default=10, help="seconds per row of the decay table (default 10)")
    ap.add_argument("--drivers", default="sqlite,memory", help="aerogramd drivers to run (default sqlite,memory)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, stores) and print it")
    ap.add_argument("--no-dovecot", action="store_true", help="skip the reference Dovecot run")
    ap.add_argument("--no-decay", action="store_true", help="skip the decay runs")
    ap.add_argument("--decay-dovecot", action="store_true", help="also run the decay load on Dovecot")
    args = ap.parse_args()
    drivers = [d for d in args.drivers.split(",") if d]
    benchlib.install_signal_handlers()

    work = benchlib.Workdir("agbench-imap.")
    daemon = None
    dovecot = benchlib.Dovecot(os.path.join(work.path, "dovecot-test.log"))

    def clean_up():
        if daemon is not None:
            daemon.stop()
        dovecot.release()

    with benchlib.Run(work, args.keep, clean_up) as run:
        imaptest = build_imaptest(work.path)
        benchlib.header("bench-imap: imaptest mixed load, aerogramd vs the reference Dovecot", [
            "stress:      %s 127.0.0.1 PORT %d" % (os.path.join(benchlib.TOOLS, "imap-stress.sh"), args.secs),
            "             (imaptest: %s)" % " ".join(imaptest_args(imaptest, 0, args.secs)[1:]).replace(
                "port=0", "port=PORT"),
            "decay:       %s" % " ".join(imaptest_args(imaptest, 0, args.decay_secs + DECAY_EXTRA)).replace(
                "port=0", "port=PORT"),
            "             (its per-second lines summed per %d s; the first %d s are used)" % (
                args.interval, args.decay_secs),
            "aerogramd:   %s -c CONF, drivers %s, fresh store per run, 100 users {PLAIN}pass" % (
                os.path.join(benchlib.BUILD, "aerogramd"), ", ".join(drivers)),
            "             [imap] plaintext_auth = yes, [auth] failure_delay = 0; every other key at its default",
            "             (workers = 8; sqlite: path in a fresh temp dir, synchronous = full)",
            "dovecot:     %s (127.0.0.1:%d, sdbox), %s" % (
                os.path.join(benchlib.TOOLS, "dovecot-test.sh"), benchlib.DOVECOT_PORT,
                "skipped" if args.no_dovecot else "started only if not running, its mail kept between runs"),
            "order:       stress %s%s; then decay %s (one server at a time)" % (
                ", ".join(drivers), "" if args.no_dovecot else ", dovecot",
                "skipped" if args.no_decay else ", ".join(drivers + (["dovecot"] if args.decay_dovecot else []))),
        ])

        totals = {}
        for driver in drivers:
            daemon = start_daemon(work.path, driver, "stress-" + driver)
            print("stress: aerogramd %s on port %d (pid %d) ..." % (driver, daemon.port, daemon.pid), flush=True)
            total, errors, _ = run_stress(work.path, driver, daemon.port, args.secs)
            finish_daemon(daemon, driver)
            daemon = None
            totals[driver] = total
            print("  %d commands in %d s; %s" % (total, args.secs, describe_errors(errors)), flush=True)
        if not args.no_dovecot:
            dovecot.acquire()
            print("stress: Dovecot on port %d ..." % benchlib.DOVECOT_PORT, flush=True)
            total, errors, _ = run_stress(work.path, "dovecot", benchlib.DOVECOT_PORT, args.secs)
            if not args.decay_dovecot:
                dovecot.release()
            totals["dovecot"] = total
            print("  %d commands in %d s; %s" % (total, args.secs, describe_errors(errors)), flush=True)

        print()
        print("Stress totals (commands answered in %d s, imaptest 10 clients):" % args.secs)
        print("  %-22s %12s %12s %18s" % ("server", "commands", "per second", "ratio to Dovecot"))
        for name, total in totals.items():
            label = "Dovecot (reference)" if name == "dovecot" else "aerogramd %s" % name
            ratio = "%.2f" % (total / totals["dovecot"]) if totals.get("dovecot") and name != "dovecot" else ""
            print("  %-22s %12d %12.0f %18s" % (label, total, total / args.secs, ratio))
        print(flush=True)

        if not args.no_decay:
            runs = {}
            targets = list(drivers) + (["dovecot"] if args.decay_dovecot else [])
            for name in targets:
                if name == "dovecot":
                    dovecot.acquire()
                    port = benchlib.DOVECOT_PORT
                    print("decay: Dovecot, %d s ..." % args.decay_secs, flush=True)
                else:
                    daemon = start_daemon(work.path, name, "decay-" + name)
                    port = daemon.port
                    print("decay: aerogramd %s on port %d (pid %d), %d s ..." % (name, port, daemon.pid,
                                                                                 args.decay_secs), flush=True)
                seconds, errors, _ = run_decay(work.path, imaptest, name, port, args.decay_secs)
                if name == "dovecot":
                    dovecot.release()
                else:
                    finish_daemon(daemon, name)
                    daemon = None
                runs[name] = per_interval(seconds, args.interval)
                print("  %d per-second lines; %s" % (len(seconds), describe_errors(errors)), flush=True)
            print()
            print("Decay (commands answered per %d s interval, fresh store, imaptest 10 clients):" % args.interval)
            names = list(runs)
            labels = ["Dovecot" if n == "dovecot" else "aerogramd %s" % n for n in names]
            print("  %-10s" % "interval" + "".join("%18s" % l for l in labels))
            rows = max(len(v) for v in runs.values())
            for i in range(rows):
                cells = "".join("%18s" % (runs[n][i] if i < len(runs[n]) else "-") for n in names)
                print("  %-10s" % ("%d-%ds" % (i * args.interval, (i + 1) * args.interval)) + cells)
            ratios = []
            for n in names:
                v = runs[n]
                if len(v) >= 2 and v[0] > 0:
                    ratios.append("%18.2f" % (v[-1] / v[0]))
                else:
                    ratios.append("%18s" % "-")
            print("  %-10s" % "last/first" + "".join(ratios))
            peaks = ["%18.2f" % (runs[n][-1] / max(runs[n])) if runs[n] and max(runs[n]) > 0 else "%18s" % "-"
                     for n in names]
            print("  %-10s" % "last/best" + "".join(peaks))
            print("  (target: last/first >= 0.80; below it, throughput falls as the mailboxes age. last/best tells")
            print("  a decay from a slow start, e.g. the first logins creating every user's mailboxes.)")
    return run.status


if __name__ == "__main__":
    sys.exit(main())
