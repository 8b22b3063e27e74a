"""Times IMAP SEARCH on header keys as a mailbox grows.

Fills one mailbox with varied messages (From, To, Cc and Subject drawn from
small vocabularies, some RFC 2047 encoded or folded; bodies from a corpus
of .eml files when --corpus names one, else generated) and, at each size,
times SEARCH FROM / SUBJECT / HEADER Message-ID / TO / TEXT in a new
session: the first run ("cold": at the first size nothing of the mailbox
was searched before; at a later size, the messages added since) and the
median of the following runs ("warm"), as wall time and as CPU time of the
server process that holds the connection (found through /proc, so any
local server is measured alike; CPU time is what a busy machine changes
least). Not part of `make check`: it prints numbers, it asserts nothing.

    make && python3 bench/search_headers.py [--sizes 1000,10000] [--corpus DIR]

starts its own aerogramd on the SQLite driver (build/). Against any other
server, e.g. a reference Dovecot, with a mailbox the run creates and deletes:

    python3 bench/search_headers.py --connect 127.0.0.1:10143 --user U --password P
"""
import argparse
import base64
import os
import random
import statistics
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
from agtest.imap import Imap  # noqa: E402

FIRST = ["Alice", "Bob", "Carol", "Dave", "Eve", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Mallory",
         "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent", "Victor", "Walter", "Zebulon"]
LAST = ["Smith", "Jones", "Garcia", "Martin", "Dubois", "Müller", "Novák", "Kowalski", "Rossi", "Tanaka"]
DOMAINS = ["example.org", "example.com", "example.net", "mail.example.edu", "lists.example.io"]
WORDS = ["report", "meeting", "budget", "quarterly", "invoice", "holiday", "release", "draft", "review",
         "lunch", "project", "deadline", "café", "résumé", "naïve", "Grüße", "update", "minutes"]
SEARCHES = [("SEARCH FROM zebulon", b"FROM zebulon"),
            ("SEARCH SUBJECT quarterly", b"SUBJECT quarterly"),
            ("SEARCH HEADER Message-ID <77@", b"HEADER Message-ID <77@"),
            ("SEARCH TO nobody-matches", b"TO nobody-matches"),
            ("SEARCH TEXT tortoise", b"TEXT tortoise")]


def encoded_word(text, rng):
    raw = text.encode()
    if rng.random() < 0.5:
        return "=?utf-8?b?" + base64.b64encode(raw).decode() + "?="
    q = "".join(c if c.isascii() and c.isalnum() else "".join("=%02X" % b for b in c.encode()) for c in text)
    return "=?utf-8?q?" + q + "?="


def display(text, rng):
    return encoded_word(text, rng) if not text.isascii() else text


def address(rng):
    first, last = rng.choice(FIRST), rng.choice(LAST)
    return "%s %s <%s.%s@%s>" % (first, display(last, rng), first.lower(), rng.randrange(1000),
                                 rng.choice(DOMAINS))


def subject(rng):
    words = [rng.choice(WORDS) for _ in range(rng.randrange(2, 8))]
    parts = [encoded_word(w, rng) if not w.isascii() else w for w in words]
    if rng.random() < 0.2:  # folded
        return " ".join(parts[:2]) + "\r\n " + " ".join(parts[2:])
    return " ".join(parts)


def load_bodies(corpus):
    """(MIME headers to keep, body) of each .eml file under corpus."""
    bodies = []
    skip = (b"from:", b"to:", b"cc:", b"subject:", b"message-id:", b"date:")
    for dirpath, _, files in os.walk(corpus):
        for name in sorted(files):
            if not name.endswith(".eml"):
                continue
            with open(os.path.join(dirpath, name), "rb") as f:
                data = f.read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            head, sep, body = data.partition(b"\r\n\r\n")
            if not sep:
                continue
            kept, keep = [], False
            for line in head.split(b"\r\n"):
                if line[:1] in (b" ", b"\t"):
                    if keep:
                        kept.append(line)
                    continue
                keep = not line.lower().startswith(skip)
                if keep:
                    kept.append(line)
            bodies.append((b"".join(l + b"\r\n" for l in kept), body))
    return bodies


def generated_bodies(rng):
    out = []
    for i in range(50):
        text = " ".join(rng.choice(WORDS + ["tortoise", "hare"] * (i % 2)) for _ in range(200))
        out.append((b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n", text.encode() + b"\r\n"))
    return out


def message(i, rng, bodies):
    head = ["From: " + address(rng), "To: " + ", ".join(address(rng) for _ in range(rng.randrange(1, 3)))]
    if rng.random() < 0.3:
        head.append("Cc: " + address(rng))
    head += ["Subject: " + subject(rng), "Date: Mon, 7 Feb 1994 21:52:25 -0800",
             "Message-ID: <%d@bench.example.org>" % i]
    mime_head, body = bodies[i % len(bodies)]
    return ("\r\n".join(head) + "\r\n").encode() + mime_head + b"\r\n" + body


class Conn(Imap):
    def __init__(self, host, port):
        super().__init__(port, host=host, timeout=600)

    def cmd(self, text, ok=True):
        tag = self.tag()
        self.sock.sendall(tag + b" " + text + b"\r\n")
        lines = self.until_tagged(tag)
        if ok and not lines[-1].startswith(tag + b" OK"):
            raise RuntimeError("%r: %r" % (text, lines[-1]))
        return lines

    def append_many(self, mailbox, messages, per_command=50, pipelined=20):
        """MULTIAPPEND (RFC 3502) commands of per_command messages each (aerogramd
        takes up to 64 literals in one command),
        pipelined by `pipelined` with LITERAL+."""
        step = per_command * pipelined
        for start in range(0, len(messages), step):
            tags, payload = [], b""
            for first in range(start, min(start + step, len(messages)), per_command):
                tag = self.tag()
                tags.append(tag)
                payload += tag + b" APPEND " + mailbox
                for m in messages[first:first + per_command]:
                    payload += b" {%d+}\r\n" % len(m) + m
                payload += b"\r\n"
            self.sock.sendall(payload)
            for tag in tags:
                last = self.until_tagged(tag)[-1]
                if not last.startswith(tag + b" OK"):
                    raise RuntimeError("APPEND failed: %r" % last)


def serving_pid(sock):
    """The local process that holds the server end of a loopback connection
    (through /proc), or None: its CPU time is what a search costs, whatever
    else the machine runs meanwhile."""
    port = sock.getsockname()[1]
    inode = None
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if int(fields[2].split(":")[1], 16) == port:
                inode = fields[9]
    if inode is None:
        return None
    target = "socket:[%s]" % inode
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir("/proc/%s/fd" % pid):
                if os.readlink("/proc/%s/fd/%s" % (pid, fd)) == target:
                    return int(pid)
        except OSError:
            continue
    return None


def cpu_ns(pid):
    """Time on a CPU of every thread of pid so far (schedstat, in ns)."""
    total = 0
    if pid is None:
        return 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except OSError:
            continue
    return total


def time_search(conn, pid, criteria, runs):
    times, cpu, hits = [], [], 0
    for _ in range(runs):
        c0 = cpu_ns(pid)
        start = time.perf_counter()
        lines = conn.cmd(b"SEARCH " + criteria)
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((cpu_ns(pid) - c0) / 1e6)
        hits = sum(len(l.split()) - 2 for l in lines if l.startswith(b"* SEARCH"))
    def warm(v):
        return statistics.median(v[1:]) if len(v) > 1 else v[0]
    return times[0], warm(times), cpu[0], warm(cpu), hits


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--corpus", help="directory of .eml files for the bodies")
    ap.add_argument("--runs", type=int, default=7, help="searches per key and size (the first is 'cold')")
    ap.add_argument("--connect", help="HOST:PORT of a running server instead of a new aerogramd")
    ap.add_argument("--user", default="u")
    ap.add_argument("--password", default="pw")
    ap.add_argument("--mailbox", default="BenchSearch")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--reuse", action="store_true",
                    help="keep the mailbox (and what it holds already) between runs")
    ap.add_argument("--no-text", action="store_true", help="leave out SEARCH TEXT (reads every body)")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = random.Random(args.seed)
    bodies = load_bodies(args.corpus) if args.corpus else generated_bodies(rng)
    srv = tmp = None
    if args.connect:
        host, port = args.connect.rsplit(":", 1)
        port = int(port)
        label = args.connect
    else:
        from agtest.daemon import DRIVER, Server
        tmp = tempfile.TemporaryDirectory(prefix="aerogram-bench-search-")
        sqlite = os.path.join(os.path.dirname(DRIVER), "aerogram_sqlite.so")
        # synchronous=normal: filling 100,000 messages with an fsync each
        # takes hours on a small machine, and no search reads differently
        srv = Server({args.user: "{PLAIN}" + args.password}, tls=False, driver=sqlite,
                     storage=["path = " + os.path.join(tmp.name, "mail.sqlite"), "synchronous = normal"])
        host, port, label = "127.0.0.1", srv.port, "aerogramd (sqlite, pid %d)" % srv.proc.pid
    mailbox = args.mailbox.encode()
    try:
        filler = Conn(host, port)
        filler.cmd(b"LOGIN %s %s" % (args.user.encode(), args.password.encode()))
        have = 0
        if args.reuse:
            filler.cmd(b"CREATE " + mailbox, ok=False)
            for line in filler.cmd(b"STATUS " + mailbox + b" (MESSAGES)"):
                if line.startswith(b"* STATUS"):
                    have = int(line.split(b"MESSAGES ")[1].split(b")")[0])
            for i in range(have):
                message(i, rng, bodies)  # the same random sequence as a fresh run
        else:
            filler.cmd(b"DELETE " + mailbox, ok=False)
            filler.cmd(b"CREATE " + mailbox)
        print("%s, %d bodies, %d messages there already" % (label, len(bodies), have))
        print("%-32s %6s %9s %9s %9s %9s %6s" % ("search", "msgs", "cold ms", "warm ms", "cold cpu",
                                                  "warm cpu", "hits"))
        for size in sizes:
            if size < have:
                continue
            filler.append_many(mailbox, [message(i, rng, bodies) for i in range(have, size)])
            have = size
            # A new session each time: what a client that just connected sees.
            c = Conn(host, port)
            c.cmd(b"LOGIN %s %s" % (args.user.encode(), args.password.encode()))
            c.cmd(b"SELECT " + mailbox)
            pid = serving_pid(c.sock)
            for label_s, criteria in SEARCHES:
                if args.no_text and criteria.startswith(b"TEXT"):
                    continue
                cold, warm, cold_cpu, warm_cpu, hits = time_search(c, pid, criteria, args.runs)
                print("%-32s %6d %9.1f %9.1f %9.1f %9.1f %6d" % (label_s, size, cold, warm, cold_cpu, warm_cpu,
                                                                 hits), flush=True)
            c.cmd(b"LOGOUT")
        if not args.reuse:
            filler.cmd(b"DELETE " + mailbox, ok=False)
        filler.cmd(b"LOGOUT")
    finally:
        if srv:
            srv.stop()
        if tmp:
            tmp.cleanup()


if __name__ == "__main__":
    main()
