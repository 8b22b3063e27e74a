"""bench-scale: one mailbox filled to 100,000 messages, and what that does to
the commands a client sends.

Starts aerogramd (sqlite driver with its defaults: synchronous=full, a fresh
database; one user) and fills INBOX with 4 connections, each pipelining
APPENDs with LITERAL+ literals (several in flight per connection). The
messages are generated (2-20 KB: plain text, text+HTML, attachments; From
one of 100 senders, so each sender is in about 1% of them). It prints:

- the APPEND rate (messages/s) for each 10,000 messages of the fill;
- at 1k, 10k and 100k messages: SELECT cold (aerogramd restarted, first
  SELECT), SELECT warm (on a second connection while the first keeps INBOX
  selected; and a re-SELECT on the first), one APPEND (not pipelined),
  STATUS INBOX (MESSAGES UIDNEXT UNSEEN) and SEARCH FROM <a sender in ~1%>;
- fsyncs per APPEND over a window of 1,000 pipelined APPENDs (and of 100
  APPENDs sent one at a time): strace -f -c -e trace=fsync,fdatasync
  attached to the daemon's threads for exactly that window;
- how busy the load generator itself was (its CPU time per APPEND gives its
  ceiling; a warning when it, not the server, was the bottleneck).

--dovecot runs the same against the reference Dovecot (dovecot-test.sh,
127.0.0.1:10143, testuser1/pass) after aerogramd, one server at a time.
--self-test measures the load generator against a trivial server that
answers every APPEND at once. It prints numbers and never fails on speed.
A full fill takes as long as the server needs (a progress line goes to
stderr every minute); --max 10000 is a short run.

    python3 bench/mailbox_scale.py [--max 100000] [--dovecot] [--self-test]
"""
import argparse
import asyncio
import base64
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

CONNECTIONS = 4
WINDOW = 8               # APPENDs in flight per connection
REPEAT = 5               # single APPEND and STATUS: median of this many
REPEAT_SLOW = 3          # warm SELECT and SEARCH: median of this many
IO_TIMEOUT = 600         # a SELECT of a big mailbox on a slow server may take long
PROGRESS_EVERY = 60.0    # seconds between progress lines during a long fill

# ----------------------------------------------------------------------------
# Messages


FIRST = ["Alice", "Bruno", "Chiara", "Dmitri", "Elena", "Farid", "Greta", "Hiroshi", "Ines", "Jonas",
         "Kamala", "Lars", "Marta", "Nikolai", "Oona", "Pavel", "Quentin", "Rosa", "Sanjay", "Tove"]
LAST = ["Abbott", "Brandt", "Castillo", "Dubois", "Eriksen", "Fischer", "Gallo", "Haddad", "Ivanova",
        "Jansen", "Kowalski", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Petrov", "Quinn", "Rossi",
        "Schulz", "Tanaka"]
DOMAINS = ["example.com", "example.org", "example.net", "mail.example.com", "lists.example.org"]
WORDS = ("the a to of and in for on with at by from about report budget meeting schedule release server "
         "mailbox backup invoice review draft quarterly team project update deadline customer contract "
         "question answer please thanks regards attached document figures numbers latest version plan "
         "proposal travel office holiday support ticket issue fixed deployed monitoring alert database "
         "network storage upgrade migration weekly monthly summary notes agenda minutes follow action "
         "item owner status blocked done pending approved rejected comments feedback").split()
SUBJECTS = ["Quarterly report {n}", "Meeting notes {n}", "Re: budget {n}", "Server maintenance window",
            "Invoice #{n}", "Weekly status {n}", "Release {n}.0 candidate", "Lunch on Friday?",
            "Backup failed on host{n}", "Re: Re: question about the contract", "Draft proposal v{n}",
            "Fwd: travel plans", "Ticket {n}: mailbox full", "Agenda for {n} March"]
SEARCH_SENDER = 42       # the sender SEARCH FROM looks for (each sender: ~1% of the messages)


class Corpus:
    """Deterministic realistic messages: per message the headers vary (sender,
    recipients, subject, date, Message-ID); bodies come from a pool of varied
    MIME structures and sizes so that total sizes spread over 2-20 KB."""

    def __init__(self, seed=20240601, pool=256, user="bench"):
        self.rng = random.Random(seed)
        self.user = user
        self.senders = []
        pairs = [(f, l) for f in FIRST for l in LAST]
        self.rng.shuffle(pairs)
        for f, l in pairs[:100]:
            dom = self.rng.choice(DOMAINS)
            self.senders.append(("%s %s" % (f, l), "%s.%s@%s" % (f.lower(), l.lower(), dom)))
        self.search_address = self.senders[SEARCH_SENDER][1]
        # SEARCH FROM is a substring match: the target must be in no other From.
        for i, (name, addr) in enumerate(self.senders):
            if i != SEARCH_SENDER:
                assert self.search_address not in ("%s <%s>" % (name, addr)).lower()
        self.bodies = [self._body(i) for i in range(pool)]
        self.from_counts = [0] * len(self.senders)

    def _text(self, size):
        out, line, n = [], [], 0
        while n < size:
            w = self.rng.choice(WORDS)
            line.append(w)
            if sum(len(x) + 1 for x in line) > 70:
                s = " ".join(line)
                out.append(s)
                n += len(s) + 2
                line = []
                if self.rng.random() < 0.15:
                    out.append("")
                    n += 2
        return "\r\n".join(out) + "\r\n"

    def _body(self, i):
        # Headers take about 600 bytes: bodies of 1.4-19.4 KB, log-uniform.
        size = int(1400 * (19400 / 1400) ** self.rng.random())
        kind = self.rng.random()
        if kind < 0.6:
            return ("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    "Content-Transfer-Encoding: 7bit\r\n\r\n" + self._text(size)).encode()
        b = "=_bench_%d_%08x" % (i, self.rng.getrandbits(32))
        if kind < 0.85:
            text = self._text(size // 2)
            html = "<html><body>\r\n" + "".join("<p>%s</p>\r\n" % p for p in text.split("\r\n") if p) + \
                   "</body></html>\r\n"
            return ("MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n"
                    "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s"
                    "--%s\r\nContent-Type: text/html; charset=utf-8\r\n\r\n%s--%s--\r\n"
                    % (b, b, text, b, html[:max(200, size // 2)] + "\r\n", b)).encode()
        text = self._text(min(size // 4, 1500))
        blob = base64.b64encode(self.rng.getrandbits(8 * (size * 3 // 4)).to_bytes(size * 3 // 4, "little"))
        lines = "\r\n".join(blob[j:j + 76].decode() for j in range(0, len(blob), 76))
        return ("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n"
                "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s"
                "--%s\r\nContent-Type: application/pdf; name=\"report-%d.pdf\"\r\n"
                "Content-Disposition: attachment; filename=\"report-%d.pdf\"\r\n"
                "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n--%s--\r\n"
                % (b, b, text, b, i, i, lines, b)).encode()

    def message(self, n):
        """Message number n (unique Message-ID); returns (bytes, flags)."""
        rng = self.rng
        s = rng.randrange(len(self.senders))
        self.from_counts[s] += 1
        name, addr = self.senders[s]
        to_name, to_addr = self.senders[rng.randrange(len(self.senders))]
        t = 1700000000 + n * 37
        date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(t))
        subject = rng.choice(SUBJECTS).format(n=n % 997)
        cc = ""
        if rng.random() < 0.3:
            cc_name, cc_addr = self.senders[rng.randrange(len(self.senders))]
            cc = "Cc: %s <%s>\r\n" % (cc_name, cc_addr)
        head = ("Return-Path: <%s>\r\nReceived: from mx%d.example.net (mx%d.example.net [192.0.2.%d])\r\n"
                "\tby mail.example.com with ESMTPS id %x; %s\r\nFrom: %s <%s>\r\nTo: %s <%s>, %s@example.com\r\n"
                "%sSubject: %s\r\nDate: %s\r\nMessage-ID: <%d.%x@bench.example.com>\r\n"
                % (addr, n % 7, n % 7, n % 250 + 1, n * 7919, date, name, addr, to_name, to_addr, self.user,
                   cc, subject, date, n, n * 2654435761 % (1 << 32))).encode()
        flags = b"(\\Seen) " if rng.random() < 0.7 else b""
        return head + self.bodies[rng.randrange(len(self.bodies))], flags


# ----------------------------------------------------------------------------
# A plain blocking client for the timed single commands


class Client:
    """One IMAP connection; `command` sends one command and times its answer."""

    def __init__(self, port, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=IO_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.tagn = 0
        self.greeting = self._line()

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError("connection closed by the server")
            self.buf += chunk

    def _literal(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError("connection closed by the server")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def command(self, text, literal=None):
        """Returns (untagged lines, tagged line, seconds). A literal (APPEND)
        goes as LITERAL+ right after the line."""
        self.tagn += 1
        tag = b"t%d" % self.tagn
        data = tag + b" " + text
        if literal is not None:
            data += b" {%d+}\r\n" % len(literal) + literal
        data += b"\r\n"
        start = time.perf_counter()
        self.sock.sendall(data)
        lines = []
        while True:
            line = self._line()
            m = re.search(rb"\{(\d+)\}$", line)
            if m:
                line += self._literal(int(m.group(1)))
            if line.startswith(tag + b" "):
                took = time.perf_counter() - start
                if not line[len(tag) + 1:].startswith(b"OK"):
                    raise RuntimeError("%s: %s" % (text[:60].decode(errors="replace"),
                                                   line.decode(errors="replace")))
                return lines, line, took
            lines.append(line)

    def login(self, user, password):
        lines, tagged, _ = self.command(b"LOGIN %s %s" % (user.encode(), password.encode()))
        caps = set()
        for line in lines + [tagged]:
            m = re.search(rb"CAPABILITY ([^\]\r\n]*)", line)
            if m:
                caps |= set(m.group(1).decode(errors="replace").upper().split())
        if not caps:
            lines, _, _ = self.command(b"CAPABILITY")
            for line in lines:
                if line.upper().startswith(b"* CAPABILITY "):
                    caps |= set(line[13:].decode(errors="replace").upper().split())
        return caps

    def logout(self):
        try:
            self.command(b"LOGOUT")
        except (OSError, EOFError, RuntimeError):
            pass
        self.sock.close()


def append_line(flags):
    """The command line of a single APPEND; Client.command adds the literal."""
    return b"APPEND INBOX" + (b" " + flags.strip() if flags else b"")


def exists_of(lines):
    for line in lines:
        m = re.match(rb"\* (\d+) EXISTS", line)
        if m:
            return int(m.group(1))
    return None


# ----------------------------------------------------------------------------
# The pipelined fill


class Fill:
    """Fills INBOX; accounts the fill's time per bucket of `bucket` messages
    (only time spent filling: checkpoints are not counted)."""

    def __init__(self, target, corpus, bucket, multiappend=1, window=WINDOW, connections=CONNECTIONS):
        self.t = target
        self.corpus = corpus
        self.bucket = bucket
        self.multiappend = multiappend
        self.window = window
        self.connections = connections
        self.total = 0              # messages in INBOX (fill and single APPENDs)
        self.next_msg = 0           # number of the next message to generate
        self.bucket_time = {}
        self.bucket_count = {}
        self.fill_wall = 0.0
        self.fill_cpu = 0.0
        self.fill_msgs = 0
        self.last_progress = 0.0

    def add_single(self, n=1):
        self.total += n

    def _command(self, tagn, count):
        parts = []
        for k in range(count):
            msg, flags = self.corpus.message(self.next_msg)
            self.next_msg += 1
            parts.append((b" " if k else b"") + flags + b"{%d+}\r\n" % len(msg) + msg)
        return b"f%d APPEND INBOX " % tagn + b"".join(parts) + b"\r\n"

    async def _conn(self, state, end, on_bucket):
        reader, writer = await asyncio.open_connection(self.t.host, self.t.port, limit=1 << 20)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await reader.readline()
        writer.write(b"l LOGIN %s %s\r\n" % (self.t.user.encode(), self.t.password.encode()))
        while True:
            line = await reader.readline()
            if not line:
                raise EOFError("connection closed during LOGIN")
            if line.startswith(b"l "):
                if not line.startswith(b"l OK"):
                    raise RuntimeError("LOGIN: %r" % line)
                break
        state["ports"].append(sock.getsockname()[1])
        state["ready"] += 1
        await state["go"].wait()
        slots = asyncio.Semaphore(self.window)
        sizes = {}                                 # tag number -> messages in that APPEND

        async def send():
            tagn = 0
            while True:
                await slots.acquire()
                if state["claimed"] >= end:
                    break
                count = min(self.multiappend, end - state["claimed"])
                state["claimed"] += count
                tagn += 1
                sizes[tagn] = count
                writer.write(self._command(tagn, count))
                if writer.transport.get_write_buffer_size() > (1 << 20):
                    await writer.drain()
            # Answers come in order: this one's answer comes after every APPEND's.
            writer.write(b"e NOOP\r\n")
            await writer.drain()

        sender = asyncio.ensure_future(send())
        try:
            while True:
                line = await reader.readline()
                if not line:
                    raise EOFError("connection closed during the fill")
                if line[:1] != b"f":
                    if line.startswith(b"e "):
                        break
                    continue                       # untagged (EXISTS...)
                words = line.split(b" ", 2)
                if words[1:2] != [b"OK"]:
                    raise RuntimeError("APPEND answered %r" % line.strip())
                now = time.perf_counter()
                for _ in range(sizes.pop(int(words[0][1:]))):
                    self.total += 1
                    b = (self.total - 1) // self.bucket
                    self.bucket_time[b] = self.bucket_time.get(b, 0.0) + (now - state["last"])
                    self.bucket_count[b] = self.bucket_count.get(b, 0) + 1
                    state["last"] = now
                    if self.total % self.bucket == 0:
                        on_bucket(b)
                slots.release()
                if now - self.last_progress >= PROGRESS_EVERY:
                    self.last_progress = now
                    print("  ... %d messages" % self.total, file=sys.stderr, flush=True)
            await sender                           # done: a failed write raises here
        finally:
            if not sender.done():
                sender.cancel()
            writer.write(b"z LOGOUT\r\n")
            writer.close()

    async def _run(self, end, on_bucket, before_go):
        state = {"ready": 0, "go": asyncio.Event(), "claimed": self.total, "last": 0.0, "ports": []}
        tasks = [asyncio.ensure_future(self._conn(state, end, on_bucket)) for _ in range(self.connections)]
        while state["ready"] < self.connections:
            done = [t for t in tasks if t.done()]
            for t in done:
                t.result()                         # a failed LOGIN raises here
            await asyncio.sleep(0.01)
        if before_go is not None:
            try:
                before_go(state["ports"])          # blocks the loop: nothing is sent meanwhile
            except BaseException:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
        wall0, cpu0 = time.perf_counter(), time.process_time()
        state["last"] = wall0
        self.last_progress = wall0
        start_total = self.total
        state["go"].set()
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
        self.fill_wall += time.perf_counter() - wall0
        self.fill_cpu += time.process_time() - cpu0
        self.fill_msgs += self.total - start_total

    def run_to(self, end, on_bucket=lambda b: None, before_go=None):
        """Appends until INBOX holds `end` messages. before_go(local ports)
        runs once every connection is logged in, before the first APPEND."""
        if end > self.total:
            asyncio.run(self._run(end, on_bucket, before_go))

    def bucket_rate(self, b):
        t = self.bucket_time.get(b, 0.0)
        return "%.0f" % (self.bucket_count.get(b, 0) / t) if t > 0 else "-"


# ----------------------------------------------------------------------------
# fsync accounting


class SyscallCounter:
    """strace -f -c -e trace=fsync,fdatasync attached to running processes,
    every thread: counts the calls between start() and stop()."""

    SYSCALLS = "fsync,fdatasync"

    def __init__(self, pids, workdir, label):
        self.pids = pids
        self.summary = os.path.join(workdir, "strace-%s.txt" % label)
        self.errlog = os.path.join(workdir, "strace-%s.err" % label)
        self.proc = None
        self.command = "strace -f -c -e trace=%s %s" % (self.SYSCALLS, " ".join("-p %d" % p for p in pids))

    def start(self):
        threads = sum(len(os.listdir("/proc/%d/task" % p)) for p in self.pids)
        args = ["strace", "-f", "-c", "-e", "trace=" + self.SYSCALLS, "-o", self.summary]
        for p in self.pids:
            args += ["-p", str(p)]
        with open(self.errlog, "w") as err:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                         start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("strace exited: %s" % open(self.errlog).read().strip()[-300:])
            if self._attached() >= threads:
                return
            time.sleep(0.05)
        raise RuntimeError("strace did not attach to all %d threads" % threads)

    def _attached(self):
        """Threads strace says it attached to ("Process N attached [with M threads]")."""
        n = 0
        with open(self.errlog) as f:
            for line in f:
                m = re.search(r"Process \d+ attached(?: with (\d+) threads)?", line)
                if m:
                    n += int(m.group(1) or 1)
        return n

    def stop(self):
        """Detaches; returns {syscall: calls}."""
        if self.proc is None:
            return {}
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                benchlib.stop_process(self.proc)
        self.proc = None
        counts = {}
        with open(self.summary) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 5 and parts[-1] in self.SYSCALLS.split(",") and parts[3].isdigit():
                    counts[parts[-1]] = int(parts[3])
        return counts

    def abort(self):
        if self.proc is not None:
            benchlib.stop_process(self.proc)
            self.proc = None


# ----------------------------------------------------------------------------
# Targets


class AerogramdTarget:
    name = "aerogramd"

    def __init__(self, work, driver):
        d = os.path.join(work, "aerogramd-" + driver)
        os.mkdir(d)
        self.user, self.password = "bench", "pass"
        self.daemon = benchlib.Aerogramd(d, driver, [self.user], self.password)
        self.host = "127.0.0.1"
        self.label = "aerogramd (%s)" % driver
        self.describe = ["aerogramd:   %s" % self.daemon.command,
                         "             [storage] driver = %s%s; [imap] plaintext_auth = yes; "
                         "[auth] failure_delay = 0;" % (driver, ", path in a fresh temp dir" if driver == "sqlite"
                                                         else ""),
                         "             every other key at its default (workers = 4%s)"
                         % (", synchronous = full" if driver == "sqlite" else "")]
        self.cold_method = ("aerogramd restarted (SIGTERM, start, wait for ready), then login and SELECT; "
                            "the OS page cache is kept")

    def start(self):
        self.daemon.start()
        self.port = self.daemon.port

    def restart(self):
        self.daemon.restart()
        return True

    def trace_pids(self, client_ports):
        return [self.daemon.pid]

    def prepare(self):
        pass

    def finish(self):
        self.daemon.stop()


class DovecotTarget:
    name = "dovecot"

    def __init__(self, work, user):
        self.dovecot = benchlib.Dovecot(os.path.join(work, "dovecot-test.log"))
        self.user, self.password = user, "pass"
        self.host = "127.0.0.1"
        self.port = benchlib.DOVECOT_PORT
        self.label = "Dovecot (reference)"
        self.describe = ["dovecot:     %s (127.0.0.1:%d, sdbox), user %s; INBOX emptied before and after"
                         % (self.dovecot.script, self.port, user)]
        self.cold_method = ("not restarted (it may be shared): first SELECT in a fresh imap process "
                            "(new connection); its indexes are on disk")

    def start(self):
        self.dovecot.acquire()

    def restart(self):
        return False

    def trace_pids(self, client_ports):
        """The imap processes (one per connection) serving our connections."""
        return benchlib.socket_owners(self.dovecot.imap_pids(), self.port, client_ports)

    def prepare(self):
        self.empty_inbox()

    def empty_inbox(self):
        c = Client(self.port)
        c.login(self.user, self.password)
        lines, _, _ = c.command(b"SELECT INBOX")
        if exists_of(lines):
            c.command(b"STORE 1:* +FLAGS.SILENT (\\Deleted)")
            c.command(b"EXPUNGE")
        c.logout()

    def finish(self):
        try:
            self.empty_inbox()
        finally:
            self.dovecot.release()


# ----------------------------------------------------------------------------
# The measurements at a checkpoint


def checkpoint(target, fill, corpus):
    """SELECT cold / warm, one APPEND, STATUS, SEARCH FROM at the current size."""
    row = {"messages": fill.total}
    restarted = target.restart()
    a = Client(target.port)
    a.login(target.user, target.password)
    lines, _, row["select_cold"] = a.command(b"SELECT INBOX")
    row["exists"] = exists_of(lines)
    row["cold_restarted"] = restarted
    b = Client(target.port)
    b.login(target.user, target.password)
    warm = []
    for _ in range(REPEAT_SLOW):
        _, _, took = b.command(b"SELECT INBOX")
        warm.append(took)
    row["select_warm"] = benchlib.median(warm)
    _, _, row["reselect"] = a.command(b"SELECT INBOX")
    c = Client(target.port)
    c.login(target.user, target.password)
    appends = []
    for _ in range(REPEAT):
        msg, flags = corpus.message(fill.next_msg)
        fill.next_msg += 1
        _, _, took = c.command(append_line(flags), literal=msg)
        appends.append(took)
        fill.add_single()
    row["append"] = benchlib.median(appends)
    status = []
    for _ in range(REPEAT):
        lines, _, took = c.command(b"STATUS INBOX (MESSAGES UIDNEXT UNSEEN)")
        status.append(took)
    row["status"] = benchlib.median(status)
    row["status_line"] = lines[0].decode(errors="replace") if lines else ""
    b.command(b"NOOP")             # b's view takes in the APPENDs made on c
    search = []
    for _ in range(REPEAT_SLOW):
        lines, _, took = b.command(b"SEARCH FROM " + corpus.search_address.encode())
        search.append(took)
    row["search"] = benchlib.median(search)
    hits = 0
    for line in lines:
        if line.startswith(b"* SEARCH"):
            hits = len(line.split()) - 2
    row["search_hits"] = hits
    row["search_expected"] = corpus.from_counts[SEARCH_SENDER]
    for cl in (a, b, c):
        cl.logout()
    return row


def fsync_window(target, fill, work, n, serial):
    """fsync+fdatasync calls per APPEND: `n` pipelined fill APPENDs, then
    `serial` APPENDs sent one at a time. strace attaches once the
    connections are logged in (to the processes serving them) and detaches
    when the last APPEND is answered."""
    out = {}
    for kind, count in [("pipelined", n)] + ([("serial", serial)] if serial else []):
        label = "%s-%s-%d" % (target.name, kind, fill.total)
        window = {"counter": None, "error": None, "t0": None}

        def attach(ports):
            pids = target.trace_pids(ports)
            if not pids:
                raise RuntimeError("no process found serving our connections")
            window["counter"] = SyscallCounter(pids, work, label)
            try:
                window["counter"].start()
            except (RuntimeError, OSError):
                window["counter"].abort()
                raise
            window["t0"] = time.perf_counter()

        start = fill.total
        try:
            if kind == "pipelined":
                saved = (fill.bucket_time.copy(), fill.bucket_count.copy(), fill.fill_wall, fill.fill_cpu,
                         fill.fill_msgs)
                fill.run_to(fill.total + count, before_go=attach)
                # Not part of the fill's rates: the traced daemon runs slower.
                (fill.bucket_time, fill.bucket_count, fill.fill_wall, fill.fill_cpu, fill.fill_msgs) = saved
            else:
                c = Client(target.port)
                c.login(target.user, target.password)
                attach([c.sock.getsockname()[1]])
                for _ in range(count):
                    msg, flags = fill.corpus.message(fill.next_msg)
                    fill.next_msg += 1
                    c.command(append_line(flags), literal=msg)
                    fill.add_single()
                c.logout()
        except (RuntimeError, OSError) as e:
            window["error"] = str(e)
        finally:
            counts = window["counter"].stop() if window["counter"] else None
        took = time.perf_counter() - window["t0"] if window["t0"] else 0.0
        if counts is None:
            out[kind] = (count, None, "not measured: %s" % window["error"])
        else:
            out[kind] = (fill.total - start, counts, "%.1f s under strace; %s" % (took, window["counter"].command))
    return out


def ms(x):
    if x != x:   # nan
        return "-"
    return "%.1f" % (x * 1000) if x < 10 else "%.0f" % (x * 1000)


def bucket_line(fill, b, upto=None):
    end = (b + 1) * fill.bucket if upto is None else upto
    count = fill.bucket_count.get(b, 0)
    if count == 0:
        return "  %16s %12s %10s %8d  (all added during the fsync count, under strace)" % (
            "%d-%d" % (b * fill.bucket, end), "-", "-", 0)
    return "  %16s %12s %10.1f %8d%s" % ("%d-%d" % (b * fill.bucket, end), fill.bucket_rate(b),
                                          fill.bucket_time.get(b, 0.0), count,
                                          "" if upto is None else "  (partial)")


def run_target(target, args, work, bucket, ceiling):
    """The whole run on one server; the server is stopped (or released) at the end."""
    print()
    print("== %s" % target.label)
    target.start()
    try:
        return measure_target(target, args, work, bucket, ceiling)
    finally:
        target.finish()


def measure_target(target, args, work, bucket, ceiling):
    corpus = Corpus(user=target.user)
    fill = Fill(target, corpus, bucket, multiappend=args.multiappend, window=args.window,
                connections=args.connections)
    target.prepare()
    probe = Client(target.port)
    caps = probe.login(target.user, target.password)
    probe.logout()
    if "LITERAL+" not in caps:
        print("  the server does not announce LITERAL+: APPENDs would need a round trip each; skipped")
        return None
    if args.multiappend > 1 and "MULTIAPPEND" not in caps:
        print("  --multiappend %d: the server does not announce MULTIAPPEND; skipped" % args.multiappend)
        return None
    print("  fill: %d connections, %d APPEND commands in flight on each, %d message%s per APPEND; "
          "SEARCH FROM %s" % (args.connections, args.window, args.multiappend,
                              "" if args.multiappend == 1 else "s", corpus.search_address))
    rate_title = ("  APPEND rate per %d messages of INBOX (timed: the fill's APPENDs in that range; "
                  "time spent filling only):" % bucket)
    rate_head = "  %16s %12s %10s %8s" % ("messages", "APPENDs/s", "seconds", "timed")
    print(rate_title)
    print(rate_head, flush=True)
    printed = set()

    def on_bucket(b):
        printed.add(b)
        print(bucket_line(fill, b), flush=True)

    def catch_up():
        # Buckets completed outside the timed fill (by the fsync window).
        for b in range(fill.total // bucket):
            if b not in printed:
                on_bucket(b)

    rows, fsync = [], None
    checkpoints = sorted(set(c for c in args.checkpoints if c <= args.max) | {args.max})
    for cp in checkpoints:
        catch_up()
        fill.run_to(cp, on_bucket)
        rows.append(checkpoint(target, fill, corpus))
        r = rows[-1]
        print("  -- at %d messages: SELECT cold %s ms, warm %s ms; APPEND %s ms; STATUS %s ms; SEARCH FROM %s ms"
              % (r["messages"], ms(r["select_cold"]), ms(r["select_warm"]), ms(r["append"]), ms(r["status"]),
                 ms(r["search"])), flush=True)
        if fsync is None and args.fsync_window > 0:
            fsync = fsync_window(target, fill, work, args.fsync_window, args.fsync_serial)
    catch_up()

    print()
    print(rate_title)
    print(rate_head)
    for b in range(fill.total // bucket):
        print(bucket_line(fill, b))
    if fill.total % bucket and fill.bucket_count.get(fill.total // bucket):
        print(bucket_line(fill, fill.total // bucket, fill.total))
    print()
    print("  At each size (ms; medians: warm SELECT and SEARCH of %d, APPEND and STATUS of %d):"
          % (REPEAT_SLOW, REPEAT))
    print("  %9s %11s %11s %10s %10s %9s %11s %12s" % ("messages", "SELECT cold", "SELECT warm", "re-SELECT",
                                                       "APPEND", "STATUS", "SEARCH FROM", "hits/expect"))
    for r in rows:
        print("  %9d %11s %11s %10s %10s %9s %11s %12s" % (
            r["messages"], ms(r["select_cold"]) + ("" if r["cold_restarted"] else "*"), ms(r["select_warm"]),
            ms(r["reselect"]), ms(r["append"]), ms(r["status"]), ms(r["search"]),
            "%d/%d" % (r["search_hits"], r["search_expected"])))
    print("  SELECT cold: %s%s." % (target.cold_method, "" if all(r["cold_restarted"] for r in rows)
                                    else " (marked *)"))
    print("  SELECT warm: a second connection while the first keeps INBOX selected; re-SELECT: the first again.")
    print("  SELECT reported EXISTS %s; last STATUS: %s" % (
        ", ".join(str(r["exists"]) for r in rows), rows[-1]["status_line"] if rows else "-"))
    if fsync:
        print()
        print("  fsync + fdatasync per APPEND (strace attached to every thread for the window only):")
        for kind, (count, counts, note) in fsync.items():
            if counts is None:
                print("    %-9s %d APPENDs: n/a (%s)" % (kind, count, note))
                continue
            total = sum(counts.values())
            detail = ", ".join("%s %d" % (k, v) for k, v in sorted(counts.items())) or "none"
            print("    %-9s %5d APPENDs: %6d calls (%s) = %.2f per APPEND" % (kind, count, total, detail,
                                                                           total / count if count else 0))
            print("              %s" % note)
    print()
    if fill.fill_wall > 0 and fill.fill_msgs:
        busy = fill.fill_cpu / fill.fill_wall
        overall = fill.fill_msgs / fill.fill_wall
        print("  load generator: %d messages in %.1f s of fill (%.0f/s overall); its CPU %.1f s = %.0f%% of one core"
              % (fill.fill_msgs, fill.fill_wall, overall, fill.fill_cpu, busy * 100))
        if busy > 0.85 or (ceiling and overall > 0.7 * ceiling):
            print("  WARNING: the load generator was busy %.0f%% of the time (ceiling %s/s): the rates above may "
                  "be the client's, not the server's." % (busy * 100, "%.0f" % ceiling if ceiling else "?"))
    return rows


# ----------------------------------------------------------------------------
# The load generator's own ceiling


class SinkProtocol(asyncio.Protocol):
    """A trivial IMAP server: OK to every command, literals skipped unread."""

    CAPS = b"[CAPABILITY IMAP4rev1 LITERAL+ MULTIAPPEND]"

    def connection_made(self, transport):
        self.tr = transport
        self.buf = bytearray()
        self.skip = 0            # literal bytes still to skip
        self.tag = None          # the command being read, after its first line
        self.verb = None
        self.messages = 0        # literals in the current command
        self.uid = 0
        transport.write(b"* OK " + self.CAPS + b" sink ready\r\n")

    def data_received(self, data):
        buf = self.buf
        buf += data
        pos, out = 0, []
        while True:
            if self.skip:
                take = min(self.skip, len(buf) - pos)
                pos += take
                self.skip -= take
                if self.skip:
                    break
            i = buf.find(b"\r\n", pos)
            if i < 0:
                break
            line = bytes(buf[pos:i])
            pos = i + 2
            if self.tag is None:
                words = line.split(b" ", 2)
                self.tag, self.verb, self.messages = words[0], (words[1:2] or [b""])[0].upper(), 0
            if line.endswith(b"+}"):
                self.skip = int(line[line.rindex(b"{") + 1:-2])
                self.messages += 1
                continue
            out.append(self.answer())
            self.tag = None
        del buf[:pos]
        if out:
            self.tr.write(b"".join(out))

    def answer(self):
        if self.verb == b"LOGIN":
            return self.tag + b" OK " + self.CAPS + b" in\r\n"
        if self.verb == b"APPEND":
            self.uid += self.messages
            return self.tag + b" OK [APPENDUID 1 %d] done\r\n" % self.uid
        if self.verb == b"LOGOUT":
            return b"* BYE\r\n" + self.tag + b" OK bye\r\n"
        return self.tag + b" OK done\r\n"


def serve_sink(port):
    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(SinkProtocol, "127.0.0.1", port)
        print("ready", flush=True)
        async with server:
            await server.serve_forever()
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass


class SinkTarget:
    name = "sink"
    user, password, host = "bench", "pass", "127.0.0.1"

    def __init__(self):
        self.port = benchlib.free_port()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve-sink", str(self.port)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, start_new_session=True)
        self.proc.stdout.readline()

    def finish(self):
        benchlib.stop_process(self.proc)


def client_ceiling(args, n):
    """Fills a sink that answers every command at once: the rate reached is
    the load generator's ceiling on this machine now. Prints and returns it."""
    sink = SinkTarget()
    sink.start()
    try:
        corpus = Corpus(user=sink.user)
        c0 = time.process_time()
        gen = 2000
        for i in range(gen):
            corpus.message(i)
        per_msg = (time.process_time() - c0) / gen
        fill = Fill(sink, corpus, 10 ** 9, multiappend=args.multiappend, window=args.window,
                    connections=args.connections)
        fill.run_to(n)
    finally:
        sink.finish()
    rate = fill.fill_msgs / fill.fill_wall
    print("load generator ceiling: %d APPENDs (%d connections x %d in flight, %d per command) to a trivial "
          "server that answers at once" % (fill.fill_msgs, args.connections, args.window, args.multiappend))
    print("  %.0f APPENDs/s; client CPU %.1f s of %.1f s (%.0f%% of a core); one message generated in %.0f us; %s"
          % (rate, fill.fill_cpu, fill.fill_wall, 100 * fill.fill_cpu / fill.fill_wall, per_msg * 1e6,
             "enough for 3,000 APPENDs/s" if rate >= 3000 else
             "WARNING: below 3,000 APPENDs/s, the client would limit a fast server"), flush=True)
    return rate


# ----------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max", type=int, default=100000, help="messages to fill INBOX with (default 100000)")
    ap.add_argument("--checkpoints", default="1000,10000,100000",
                    help="sizes at which the single commands are timed (default 1000,10000,100000; "
                         "--max is always one)")
    ap.add_argument("--bucket", type=int, default=0,
                    help="messages per APPEND rate line (default 10000, or max/5 for runs below 20000)")
    ap.add_argument("--connections", type=int, default=CONNECTIONS)
    ap.add_argument("--window", type=int, default=WINDOW, help="APPENDs in flight per connection (default 8)")
    ap.add_argument("--multiappend", type=int, default=1,
                    help="messages per APPEND command (MULTIAPPEND; only if the server announces it)")
    ap.add_argument("--fsync-window", type=int, default=1000,
                    help="pipelined APPENDs counted under strace at the first size (default 1000; 0: none)")
    ap.add_argument("--fsync-serial", type=int, default=100,
                    help="APPENDs sent one at a time counted under strace (default 100; 0: none)")
    ap.add_argument("--driver", default="sqlite", help="aerogramd driver (default sqlite)")
    ap.add_argument("--dovecot", action="store_true", help="then run the same against the reference Dovecot")
    ap.add_argument("--dovecot-user", default="testuser1")
    ap.add_argument("--no-aerogramd", action="store_true", help="skip aerogramd (with --dovecot)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, stores) and print it")
    ap.add_argument("--self-test", action="store_true",
                    help="only measure the load generator against a server that answers at once")
    ap.add_argument("--no-ceiling", dest="ceiling", action="store_false",
                    help="skip the short measurement of the load generator's ceiling before the run")
    ap.add_argument("--serve-sink", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_sink:
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
        serve_sink(args.serve_sink)
        return 0
    args.checkpoints = [int(x) for x in args.checkpoints.split(",") if x]
    bucket = args.bucket or (10000 if args.max >= 20000 else max(100, args.max // 5))
    benchlib.install_signal_handlers()

    if args.self_test:
        benchlib.header("bench-scale --self-test: the load generator's ceiling", [])
        try:
            client_ceiling(args, 50000)
        except KeyboardInterrupt:
            return 130
        return 0

    work = benchlib.Workdir("agbench-scale.")
    targets = []

    def clean_up():
        for t in targets:
            try:
                if isinstance(t, AerogramdTarget):
                    t.daemon.stop()
                else:
                    t.dovecot.release()
            except Exception as e:  # clean-up goes on whatever one step raised
                print("clean-up: %s" % e, file=sys.stderr)

    with benchlib.Run(work, args.keep, clean_up) as run:
        if not args.no_aerogramd:
            targets.append(AerogramdTarget(work.path, args.driver))
        if args.dovecot:
            targets.append(DovecotTarget(work.path, args.dovecot_user))
        desc = []
        for t in targets:
            desc += t.describe
        benchlib.header("bench-scale: one INBOX filled to %d messages" % args.max, desc + [
            "fill:        %d connections, each pipelining %d APPEND INBOX [(\\Seen)] {n+} (LITERAL+)%s;"
            % (args.connections, args.window, "" if args.multiappend == 1 else
               ", %d messages per command (MULTIAPPEND)" % args.multiappend),
            "             generated messages of 2-20 KB (seeded), From one of 100 senders, 70% \\Seen",
            "sizes:       %s (SELECT cold/warm, one APPEND, STATUS, SEARCH FROM); rates per %d messages"
            % (", ".join(str(c) for c in sorted(set(c for c in args.checkpoints if c <= args.max) | {args.max})),
               bucket),
            "fsync:       strace -f -c -e trace=%s -p PID..., attached for %d pipelined APPENDs and %d single "
            "ones after the first size" % (SyscallCounter.SYSCALLS, args.fsync_window, args.fsync_serial),
            "order:       %s, one server at a time" % ", ".join(t.label for t in targets),
        ])
        ceiling = client_ceiling(args, 10000) if args.ceiling else None
        for t in targets:
            run_target(t, args, work.path, bucket, ceiling)
    return run.status


if __name__ == "__main__":
    sys.exit(main())
