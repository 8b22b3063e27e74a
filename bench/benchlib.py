"""What the IMAP benchmarks share: an aerogramd on a free loopback port in a
temporary directory, the reference Dovecot instance, and clean-up of
everything they started, on Ctrl-C too.

Every process started here runs in its own session (so a Ctrl-C in the
terminal reaches only the benchmark, which then stops its children in order)
and is ended by its PID. Only the standard library is used."""
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
from agtest.daemon import Daemon, stop_process, write_users  # noqa: E402,F401  (benchmarks use benchlib.stop_process)
from agtest.ports import free_port  # noqa: E402,F401  (benchmarks use benchlib.free_port)
BUILD = os.path.abspath(os.environ.get("AG_BUILD", os.path.join(ROOT, "build")))
# The team's shared scripts: imaptest and the reference Dovecot instance.
TOOLS = os.environ.get("AG_BENCH_TOOLS", "/work/shared/tools")
DOVECOT_PORT = 10143
START_TIMEOUT = 60


class Interrupted(Exception):
    """SIGTERM or SIGHUP arrived: unwind through every `finally` as Ctrl-C does."""


def _raise_interrupted(signum, frame):
    raise Interrupted("signal %d" % signum)


def install_signal_handlers():
    """Turns SIGTERM and SIGHUP into an exception so that clean-up runs."""
    signal.signal(signal.SIGTERM, _raise_interrupted)
    signal.signal(signal.SIGHUP, _raise_interrupted)


def ignore_signals():
    """Called first in clean-up: a second Ctrl-C must not cut it short."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)


class Run:
    """Around the body of a benchmark's main:

        with benchlib.Run(work, args.keep, clean_up) as run:
            ...
        return run.status

    Ctrl-C (status 130) and SIGTERM or SIGHUP (143) end the body, saying
    so; then, whatever happened and with signals ignored, clean_up() stops
    what was started and the work directory goes (or, with keep, is named)."""

    def __init__(self, work, keep, clean_up):
        self.work = work
        self.keep = keep
        self.clean_up = clean_up
        self.status = 0

    def __enter__(self):
        return self

    def __exit__(self, typ, exc, tb):
        handled = typ is not None and issubclass(typ, (KeyboardInterrupt, Interrupted))
        if handled:
            self.status = 130 if issubclass(typ, KeyboardInterrupt) else 143
            print("\n%s: stopping what was started" % ("interrupted" if self.status == 130 else exc),
                  file=sys.stderr)
        ignore_signals()
        try:
            self.clean_up()
        finally:
            if self.keep:
                print("work directory kept: %s" % self.work.path, file=sys.stderr)
            else:
                self.work.cleanup()
        return handled


def median(values):
    return statistics.median(values) if values else float("nan")


def load_average():
    try:
        return "%.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "?"


def header(title, lines):
    """Prints the header every benchmark output starts with: what ran, where."""
    print("=" * 78)
    print(title)
    print("  date:        %s" % time.strftime("%Y-%m-%d %H:%M:%S %z"))
    print("  host:        %s, %d cores, load average %s" % (socket.gethostname(), os.cpu_count() or 0,
                                                          load_average()))
    try:
        rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        rev, dirty = "?", ""
    print("  source:      %s%s" % (rev or "?", " (modified)" if dirty else ""))
    print("  command:     %s" % " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]))
    for line in lines:
        print("  " + line)
    print("=" * 78)
    sys.stdout.flush()


def stop_group(proc, timeout=10):
    """Ends a script we started in its own session together with what it
    started (its process group, whose id is the script's PID)."""
    if proc is None:
        return
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)   # a grandchild left behind in the group
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.wait()


class Workdir:
    """A temporary directory removed at exit, whatever happened."""

    def __init__(self, prefix):
        self.path = tempfile.mkdtemp(prefix=prefix, dir=os.environ.get("TMPDIR"))

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


class Aerogramd(Daemon):
    """One aerogramd on a free loopback port, everything in `directory`, in
    its own session (a Ctrl-C in the terminal does not reach it).

    driver: "sqlite" (database `mail.sqlite` in the directory, driver
    defaults) or "memory". users: names, all with password `password`
    ({PLAIN}). The configuration keeps the daemon's defaults except what a
    benchmark must change: plaintext login on loopback and no failure delay
    (a benchmark never fails a login, but the key says it is not throttled)."""

    def __init__(self, directory, driver, users, password="pass", imap=None, storage=None):
        super().__init__(directory, "aerogramd", os.path.join(BUILD, "aerogramd"))
        self.new_session = True
        self.dir = directory
        self.driver = driver
        users_path = os.path.join(directory, "users.ini")
        write_users(users_path, {name: "{PLAIN}" + password for name in users})
        lines = ["[storage]", "driver = " + driver, "driver_dir = " + os.path.join(BUILD, "drivers")]
        if driver == "sqlite":
            lines.append("path = " + os.path.join(directory, "mail.sqlite"))
        lines += list(storage or [])
        lines += ["", "[imap]", "listen = 127.0.0.1:%d" % self.port, "plaintext_auth = yes"]
        lines += list(imap or [])
        lines += ["", "[auth]", "users_file = " + users_path, "failure_delay = 0", "failure_delay_max = 0"]
        self.lines = lines
        self.write_config()
        self.binary = self.aerogramd
        self.command = "%s -c %s" % (self.binary, self.config_path)

    def config_lines(self):
        return self.lines

    def config_text(self):
        with open(self.config_path) as f:
            return f.read()

    def start(self):
        """Starts the daemon and waits until it says it is ready."""
        super().start(new_port=False)

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        """SIGTERM and wait (the daemon lets commands in flight finish)."""
        stop_process(self.proc)

    def restart(self):
        self.stop()
        self.start()

    def log_tail(self, n=20):
        try:
            return "".join(self.read_log().splitlines(True)[-n:])
        except (OSError, IndexError):
            return ""


class Dovecot:
    """The reference Dovecot (dovecot-test.sh: 127.0.0.1:10143, testuser1..100,
    password "pass"). Started only when it is not running already, and then
    stopped again by `release`; an instance someone else started is left alone."""

    def __init__(self, log_path):
        self.script = os.path.join(TOOLS, "dovecot-test.sh")
        self.log_path = log_path
        self.started_here = False
        self.port = DOVECOT_PORT

    def _run(self, *args):
        # The master daemonises: it must not inherit our pipes, or a reader
        # waiting for EOF on them would wait for Dovecot's exit.
        with open(self.log_path, "a") as log:
            return subprocess.run([self.script] + list(args), stdin=subprocess.DEVNULL, stdout=log,
                                  stderr=subprocess.STDOUT, close_fds=True, start_new_session=True,
                                  timeout=120).returncode

    def master_pid(self):
        out = subprocess.run([self.script, "pid"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             close_fds=True, timeout=30)
        return int(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip().isdigit() else None

    def acquire(self):
        """Makes sure the instance runs; returns its master PID."""
        pid = self.master_pid()
        if pid is None:
            if self._run("start") != 0:
                raise RuntimeError("dovecot-test.sh start failed (see %s)" % self.log_path)
            self.started_here = True
            pid = self.master_pid()
        return pid

    def release(self):
        if self.started_here:
            self._run("stop")
            self.started_here = False

    def imap_pids(self):
        """The imap processes (one per connection) under our master."""
        master = self.master_pid()
        pids = []
        if master is None:
            return pids
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % entry) as f:
                    stat = f.read()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            if ppid == master and comm == "imap":
                pids.append(int(entry))
        return pids


def _tcp_inodes(server_port, client_ports):
    """Socket inodes of the server ends of loopback connections from
    client_ports to server_port (/proc/net/tcp)."""
    wanted = set(client_ports)
    inodes = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            local, remote, inode = parts[1], parts[2], parts[9]
            if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) in wanted:
                inodes.add("socket:[%s]" % inode)
    return inodes


def socket_owners(candidates, server_port, client_ports):
    """Those of the candidate PIDs that hold the server end of one of our
    connections (Dovecot hands each connection to its own imap process)."""
    inodes = _tcp_inodes(server_port, client_ports)
    owners = []
    for pid in candidates:
        try:
            fds = os.listdir("/proc/%d/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink("/proc/%d/fd/%s" % (pid, fd)) in inodes:
                    owners.append(pid)
                    break
            except OSError:
                continue
    return owners
