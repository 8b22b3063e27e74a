#!/usr/bin/env python3
"""uid_stability.py - UIDs stay stable while two aerogramd serve one store.

Usage: uid_stability.py [--stores sqlite,garage,garage-latency] [--repeat N]
                        [--clients-per-daemon N] [--messages N] [--one-daemon]

For each store (two daemons on one SQLite file; two on one garage-emu; two
on one garage-emu that answers each request after 5 ms), the daemons serve
one fresh mailbox. Four clients (two per daemon), each with the mailbox
selected, APPEND 100 messages at once and, after each APPEND, set \\Seen on
the UID the APPENDUID named and, every third time, \\Flagged $Checked on one
of their earlier UIDs. Meanwhile one session per daemon has the mailbox
selected and NOOPs in a loop, fetching the UID of every message an EXISTS
announces. Every untagged response of every session is recorded.

A run passes when:
  - UIDVALIDITY is the same from the first SELECT to the end, in every
    SELECT, STATUS, APPENDUID and [UIDVALIDITY n] any session saw;
  - no session got a BYE other than the one answering its LOGOUT, and no
    connection was closed under a session;
  - every APPENDUID UID is unique across the clients and is the UID under
    which the message (known by its Message-ID) is found at the end, with
    the flags its client set on it;
  - in each NOOP session a new message never got a UID lower than or equal
    to one the session had already seen, and its sequence-number -> UID
    list is, at the end, exactly what it learnt step by step;
  - both daemons end in the same state (UIDVALIDITY, UIDNEXT, UID ->
    Message-ID and flags), in the NOOP sessions and in fresh ones.
The last point waits (NOOPs, up to 60 s) for the daemons to agree, as a
client would; nothing else waits on time. Each run prints UIDVALIDITY at the
start and the end, the BYEs, the APPENDs and the wall time. Every process a
run starts (daemons, emulator) is stopped by its PID before the next run.

Run from the top of the tree after `make` (make check-uid-stability)."""
import argparse
import binascii
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

from agtest.daemon import ROOT, Server  # noqa: E402
from agtest.garage import B, GARAGE_DRIVER, WAIT, Emu  # noqa: E402
from agtest.imap import Imap  # noqa: E402
from agtest.mail import select_data  # noqa: E402

SQLITE_DRIVER = os.path.abspath(os.path.join(ROOT, B, "drivers", "aerogram_sqlite.so"))
USER = "u"
USERS = {USER: "{PLAIN}pw"}
MAILBOX = "UidStability"
STORES = {
    "sqlite": "two daemons on one SQLite file",
    "garage": "two daemons on one garage-emu",
    "garage-latency": "two daemons on one garage-emu --latency-ms 5",
}
# Between two NOOPs of a selected session: only keeps the loop from taking a
# core of the small CI machine; no check depends on how many NOOPs happen.
NOOP_PACE = 0.02
# What a problem is about, in the order the report lists them.
KINDS = {
    "uidvalidity": "UIDVALIDITY changed",
    "bye": "sessions ended by the daemon",
    "appenduid": "APPENDUIDs not unique or not naming their message",
    "uid order": "UIDs or sequence numbers going back in a selected session",
    "agreement": "daemons or sessions disagreeing at the end",
    "flags": "flags not as the clients set them",
    "error": "other errors",
}
EXAMPLES = 3  # problems printed per kind


def start_daemon(driver, storage):
    """An aerogramd on `driver`; a start that fails (its port taken meanwhile
    by another program, say) is tried again on another port."""
    for attempt in range(3):
        try:
            return Server(USERS, tls=False, driver=driver, storage=storage)
        except RuntimeError:
            if attempt == 2:
                raise


class Run:
    """What one run saw; every session and thread reports here."""

    def __init__(self, label):
        self.label = label
        self.nonce = binascii.hexlify(os.urandom(4)).decode()
        self.lock = threading.Lock()
        self.problems = []
        self.start_uidvalidity = None
        self.uidvalidities = {}  # value -> [times seen, where first]
        self.byes = []           # (session, line)
        self.acked = {}          # Message-ID -> (client, uidvalidity, uid)
        self.unsure = set()      # Message-IDs whose APPEND got no answer
        self.flags = {}          # Message-ID -> flags set by an acknowledged STORE
        self.flags_unsure = set()  # Message-IDs a STORE without an answer was for
        self.appends = 0
        self.stores = 0
        self.noops = {}
        self.untagged = 0
        self.reconnects = 0
        self.append_time = 0.0   # from starting the clients to the last one's end
        self.rounds = 0          # NOOP rounds until the views agreed at the end
        self.end = {}            # view -> its state at the end

    def problem(self, kind, text):
        """Records a failed check; kind is one of KINDS."""
        assert kind in KINDS, kind
        with self.lock:
            self.problems.append((kind, text))

    def saw_uidvalidity(self, value, where):
        with self.lock:
            seen = self.uidvalidities.setdefault(value, [0, where])
            seen[0] += 1

    def saw_untagged(self, session, line):
        """Checks one untagged response as it arrives."""
        with self.lock:
            self.untagged += 1
            if line.startswith(b"* BYE") and not session.leaving:
                session.got_bye = True
                self.byes.append((session.name, line.decode(errors="replace")))
        m = re.search(rb"UIDVALIDITY (\d+)", line)
        if m:
            self.saw_uidvalidity(int(m.group(1)), "%s: %s" % (session.name, line.decode(errors="replace")))
        if re.match(rb"\* \d+ EXPUNGE", line):
            self.problem("uid order", "%s: unexpected %s (nobody expunges)" % (session.name, line.decode()))

    def lost(self, session, error):
        """A session's connection ended under it."""
        session.dead = True
        with self.lock:
            self.reconnects += 1
        if not session.got_bye:
            self.problem("bye", "%s: connection lost without BYE: %s: %s"
                         % (session.name, type(error).__name__, error))


class Session(Imap):
    """An IMAP session (logged in) whose untagged responses all go to the run."""

    def __init__(self, run, name, port):
        self.run = run
        self.name = name
        self.leaving = False
        self.dead = False
        self.got_bye = False  # a BYE other than LOGOUT's
        self.journal = []
        super().__init__(port, user=USER)

    def response(self):
        line, lits = super().response()
        if line.startswith(b"* "):
            self.journal.append(line)
            self.run.saw_untagged(self, line)
        return line, lits

    def select(self, mailbox):
        """SELECT; returns (EXISTS, UIDVALIDITY, UIDNEXT)."""
        untagged, _ = self.ok("SELECT " + mailbox)
        data = select_data(untagged)
        exists, uidvalidity, uidnext = data["exists"], data["uidvalidity"], data["uidnext"]
        if exists is None or uidvalidity is None or uidnext is None:
            raise AssertionError("%s: SELECT lacks EXISTS, UIDVALIDITY or UIDNEXT: %r"
                                 % (self.name, untagged))
        return exists, uidvalidity, uidnext

    def logout(self):
        if self.dead:
            return
        self.leaving = True
        mark = len(self.journal)
        try:
            untagged, _ = self.ok("LOGOUT")
            if not any(line.startswith(b"* BYE") for line, _ in untagged):
                self.run.problem("error", "%s: LOGOUT without BYE" % self.name)
        except (EOFError, OSError) as e:
            # No tagged OK: a BYE read meanwhile was the daemon's own doing.
            byes = [line for line in self.journal[mark:] if line.startswith(b"* BYE")]
            with self.run.lock:
                self.run.byes += [(self.name, line.decode(errors="replace")) for line in byes]
            self.got_bye = self.got_bye or bool(byes)
            self.run.lost(self, e)
        except AssertionError as e:
            self.run.problem("error", "%s: LOGOUT: %s" % (self.name, e))
        self.close()
        self.dead = True


def fetch_lines(untagged):
    """{sequence number: (UID, flags without \\Recent, Message-ID or None)}
    from the untagged FETCH responses of a command."""
    out = {}
    for line, lits in untagged:
        m = re.match(rb"\* (\d+) FETCH \((.*)$", line)
        if not m:
            continue
        uid = re.search(rb"\bUID (\d+)", line)
        flags = re.search(rb"\bFLAGS \(([^)]*)\)", line)
        mid = None
        for lit in lits:
            h = re.search(rb"Message-ID: *(<[^>]*>)", lit, re.I)
            if h:
                mid = h.group(1).decode()
        out[int(m.group(1))] = (int(uid.group(1)) if uid else None,
                                frozenset(f for f in flags.group(1).decode().split() if f != "\\Recent")
                                if flags else None, mid)
    return out


def open_selected(run, name, port):
    """A session with the test mailbox selected; its UIDVALIDITY goes to the run.
    Retries a NO for up to WAIT seconds (the other daemon's CREATE may not be
    visible at once)."""
    deadline = time.monotonic() + WAIT
    while True:
        s = Session(run, name, port)
        try:
            return s, s.select(MAILBOX)
        except AssertionError:
            s.logout()
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)


def message(run, client, k):
    mid = "<uidstab.%s.%s.%d@aerogram.test>" % (run.nonce, client, k)
    data = ("From: %s@aerogram.test\r\nTo: u@aerogram.test\r\nSubject: stable UIDs %s %d\r\n"
            "Message-ID: %s\r\n\r\nmessage %d of client %s in run %s\r\n"
            % (client, client, k, mid, k, client, run.label)).encode()
    return mid, data


def appender(run, name, port, count, barrier):
    """One client: `count` APPENDs, each followed by flag STOREs on its UIDs."""
    s = None
    try:
        s, _ = open_selected(run, name, port)
        try:
            barrier.wait(WAIT)
        except threading.BrokenBarrierError:
            pass  # another client failed to start: go on, its error is reported
        mine = []  # (Message-ID, UID) acknowledged to this client, in order
        for k in range(count):
            if s.dead:
                s, _ = open_selected(run, name, port)
            mid, data = message(run, name, k)
            try:
                _, tagged = s.command("APPEND " + MAILBOX, data)
            except (EOFError, OSError) as e:
                run.lost(s, e)
                with run.lock:
                    run.unsure.add(mid)
                continue
            m = re.search(rb" OK \[APPENDUID (\d+) (\d+)\]", tagged)
            if not m:
                run.problem("error", "%s: APPEND %d: %s" % (name, k, tagged.decode(errors="replace")))
                with run.lock:
                    run.unsure.add(mid)
                continue
            uidvalidity, uid = int(m.group(1)), int(m.group(2))
            run.saw_uidvalidity(uidvalidity, "%s: APPENDUID %d %d" % (name, uidvalidity, uid))
            with run.lock:
                run.appends += 1
                run.acked[mid] = (name, uidvalidity, uid)
            mine.append((mid, uid))
            targets = [(mid, uid, ("\\Seen",))]
            if k % 3 == 2 and len(mine) >= 3:
                targets.append(mine[-3] + (("\\Flagged", "$Checked"),))
            for tmid, tuid, flags in targets:
                try:
                    untagged, tagged = s.command("UID STORE %d +FLAGS (%s)" % (tuid, " ".join(flags)))
                except (EOFError, OSError) as e:
                    run.lost(s, e)
                    with run.lock:
                        run.flags_unsure.add(tmid)
                    break
                if b" OK " not in tagged:
                    run.problem("flags", "%s: UID STORE %d: %s"
                                % (name, tuid, tagged.decode(errors="replace")))
                    continue
                with run.lock:
                    run.stores += 1
                    run.flags.setdefault(tmid, set()).update(flags)
                # The APPEND told this session about the message, so the STORE
                # must answer with its new flags.
                answered = [f for u, f, _ in fetch_lines(untagged).values() if u == tuid]
                if not answered or not set(flags) <= answered[0]:
                    run.problem("flags", "%s: UID STORE %d +FLAGS (%s) answered %r"
                                % (name, tuid, " ".join(flags), [l for l, _ in untagged]))
        s.logout()
    except Exception as e:  # noqa: BLE001 - reported with the run
        barrier.abort()
        run.problem("error", "%s: %s: %s\n%s" % (name, type(e).__name__, e, traceback.format_exc(limit=3)))
        if s is not None:
            s.close()


class Watcher:
    """A session with the mailbox selected that NOOPs and learns the UID of
    each new sequence number, checking that new UIDs only grow."""

    def __init__(self, run, name, port):
        self.run = run
        self.name = name
        self.port = port
        self.noops = 0
        self.connect()

    def connect(self):
        self.s, (self.exists, self.uidvalidity, self.uidnext) = open_selected(self.run, self.name, self.port)
        self.uids = []  # UID of sequence number i + 1, as learnt
        self.catch_up()

    def absorb(self, untagged):
        for line, _ in untagged:
            m = re.match(rb"\* (\d+) EXISTS$", line)
            if m:
                n = int(m.group(1))
                if n < self.exists:
                    self.run.problem("uid order", "%s: EXISTS went down from %d to %d"
                                     % (self.name, self.exists, n))
                self.exists = n
        for seq, (uid, _, _) in fetch_lines(untagged).items():
            if uid is not None and seq <= len(self.uids) and self.uids[seq - 1] != uid:
                self.run.problem("uid order", "%s: message %d was UID %d, now a FETCH says UID %d"
                                 % (self.name, seq, self.uids[seq - 1], uid))

    def catch_up(self):
        """Fetches the UIDs of the messages announced but not yet known."""
        while len(self.uids) < self.exists:
            lo, hi = len(self.uids) + 1, self.exists
            untagged, _ = self.s.ok("FETCH %d:%d (UID)" % (lo, hi))
            got = fetch_lines(untagged)
            for seq in range(lo, hi + 1):
                uid = got.get(seq, (None,))[0]
                if uid is None:
                    raise AssertionError("%s: FETCH %d:%d (UID) did not answer for %d"
                                         % (self.name, lo, hi, seq))
                if self.uids and uid <= self.uids[-1]:
                    self.run.problem("uid order", "%s: new message %d has UID %d, not above UID %d seen"
                                     % (self.name, seq, uid, self.uids[-1]))
                self.uids.append(uid)
            self.absorb(untagged)

    def step(self):
        """One NOOP and the FETCH of what it announced; reconnects (after
        reporting it) when the daemon closed the session."""
        try:
            if self.s.dead:
                self.connect()
            untagged, _ = self.s.ok("NOOP")
            self.noops += 1
            self.absorb(untagged)
            self.catch_up()
        except (EOFError, OSError) as e:
            self.run.lost(self.s, e)

    def loop(self, stop):
        try:
            while not stop.is_set():
                self.step()
                time.sleep(NOOP_PACE)
        except Exception as e:  # noqa: BLE001 - reported with the run
            self.run.problem("error", "%s: %s: %s\n%s"
                             % (self.name, type(e).__name__, e, traceback.format_exc(limit=3)))


def mailbox_state(s):
    """(UIDVALIDITY, UIDNEXT, {UID: (Message-ID, flags)}, [UIDs in sequence
    order]) of the mailbox selected in s, with STATUS for the first two."""
    untagged, _ = s.ok("STATUS %s (UIDVALIDITY UIDNEXT MESSAGES)" % MAILBOX)
    status = [l for l, _ in untagged if l.startswith(b"* STATUS ")]
    if not status:
        raise AssertionError("%s: STATUS gave no answer" % s.name)
    uidvalidity = int(re.search(rb"UIDVALIDITY (\d+)", status[0]).group(1))
    uidnext = int(re.search(rb"UIDNEXT (\d+)", status[0]).group(1))
    messages = int(re.search(rb"MESSAGES (\d+)", status[0]).group(1))
    mapping, order = {}, []
    if messages:
        untagged, _ = s.ok("FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        for seq, (uid, flags, mid) in sorted(fetch_lines(untagged).items()):
            order.append(uid)
            mapping[uid] = (mid, flags)
    return uidvalidity, uidnext, mapping, order


def converge(run, watchers, ports):
    """NOOPs in the selected sessions and reads fresh sessions until all four
    views agree and hold every acknowledged message, or WAIT runs out.
    Returns ({view: state}, rounds)."""
    deadline = time.monotonic() + WAIT
    rounds = 0
    while True:
        rounds += 1
        states = {}
        for w in watchers:
            w.step()
            if w.s.dead:
                w.connect()
            states[w.name] = mailbox_state(w.s)
        for name, port in ports:
            fresh, _ = open_selected(run, "fresh session on " + name, port)
            states[fresh.name] = mailbox_state(fresh)
            fresh.logout()
        views = {(uv, nxt, tuple(sorted(m.items()))) for uv, nxt, m, _ in states.values()}
        complete = all(len(m) >= len(run.acked) for _, _, m, _ in states.values())
        if (len(views) == 1 and complete) or time.monotonic() > deadline:
            return states, rounds
        time.sleep(0.1)


def check(run, states, watchers):
    """The end-state assertions; problems go to the run."""
    for view, (uv, nxt, mapping, order) in states.items():
        if uv != run.start_uidvalidity:
            run.problem("uidvalidity", "%s: UIDVALIDITY %d at the end, %d at the start"
                        % (view, uv, run.start_uidvalidity))
        if mapping and nxt <= max(mapping):
            run.problem("agreement", "%s: UIDNEXT %d is not above the highest UID %d"
                        % (view, nxt, max(mapping)))
        if order != sorted(order) or len(set(order)) != len(order):
            run.problem("uid order", "%s: UIDs not strictly increasing with sequence numbers" % view)
    keys = {view: (uv, nxt, mapping) for view, (uv, nxt, mapping, _) in states.items()}
    first = next(iter(keys))
    for view, key in keys.items():
        if key != keys[first]:
            uv, nxt, mapping = key
            uv0, nxt0, mapping0 = keys[first]
            differ = sum(1 for u in set(mapping) | set(mapping0) if mapping.get(u) != mapping0.get(u))
            run.problem("agreement", "%s and %s differ: UIDVALIDITY %d/%d, UIDNEXT %d/%d, %d/%d messages, "
                        "%d UIDs differ"
                        % (first, view, uv0, uv, nxt0, nxt, len(mapping0), len(mapping), differ))
    for w in watchers:
        order = states[w.name][3]
        if order != w.uids:
            run.problem("uid order", "%s: FETCH 1:* gives %d UIDs, not the %d it learnt from EXISTS"
                        % (w.name, len(order), len(w.uids)))

    uv, _, mapping, _ = states[first]
    where = {}
    for uid, (mid, flags) in mapping.items():
        if mid in where:
            run.problem("appenduid", "%s is in the mailbox twice: UIDs %d and %d" % (mid, where[mid], uid))
        elif mid not in run.acked and mid not in run.unsure:
            run.problem("appenduid", "UID %d holds %s, which no client sent" % (uid, mid))
        where.setdefault(mid, uid)
    by_uid = {}
    for mid, (client, auv, auid) in sorted(run.acked.items()):
        if auid in by_uid:
            run.problem("appenduid", "APPENDUID %d given twice: to %s and to %s (%s)"
                        % (auid, by_uid[auid], client, mid))
        by_uid[auid] = "%s (%s)" % (client, mid)
        if mid not in where:
            run.problem("appenduid", "%s (APPENDUID %d %d to %s) is missing" % (mid, auv, auid, client))
            continue
        if auv != uv or auid != where[mid]:
            run.problem("appenduid", "%s: APPENDUID %d %d, found as UID %d under UIDVALIDITY %d"
                        % (mid, auv, auid, where[mid], uv))
        if mid not in run.flags_unsure and mapping[where[mid]][1] != frozenset(run.flags.get(mid, ())):
            run.problem("flags", "%s (UID %d): flags %s, its client set %s"
                        % (mid, where[mid], sorted(mapping[where[mid]][1]), sorted(run.flags.get(mid, ()))))
    for value, (count, where_seen) in sorted(run.uidvalidities.items()):
        if value != run.start_uidvalidity:
            run.problem("uidvalidity", "UIDVALIDITY %d seen %d times, first by %s"
                        % (value, count, where_seen))
    for name, line in run.byes:
        run.problem("bye", "%s got %s" % (name, line))


def scenario(run, port_a, port_b, args):
    setup = Session(run, "setup on A", port_a)
    setup.ok("CREATE " + MAILBOX)
    setup.logout()
    wa = Watcher(run, "NOOP session on A", port_a)
    wb = Watcher(run, "NOOP session on B", port_b)
    run.start_uidvalidity = wa.uidvalidity
    if wb.uidvalidity != wa.uidvalidity:
        run.problem("uidvalidity", "SELECT on B: UIDVALIDITY %d, on A %d" % (wb.uidvalidity, wa.uidvalidity))
    # STATUS too (its UIDVALIDITY is checked as it arrives): both daemons
    # start from the same empty mailbox.
    for w in (wa, wb):
        uv, uidnext, mapping, _ = mailbox_state(w.s)
        if mapping or uidnext != wa.uidnext:
            run.problem("agreement", "%s: STATUS at the start: %d messages, UIDNEXT %d "
                        "(SELECT on A: UIDNEXT %d)" % (w.name, len(mapping), uidnext, wa.uidnext))
    watchers = [wa, wb]
    stop = threading.Event()
    wthreads = [threading.Thread(target=w.loop, args=(stop,), daemon=True) for w in watchers]
    clients = [("%s%d" % (d, i), port) for d, port in (("A", port_a), ("B", port_b))
               for i in range(args.clients_per_daemon)]
    barrier = threading.Barrier(len(clients))
    athreads = [threading.Thread(target=appender, args=(run, name, port, args.messages, barrier),
                                 daemon=True) for name, port in clients]
    for t in wthreads + athreads:
        t.start()
    t0 = time.monotonic()
    # Each client's commands are bounded by the socket timeout (WAIT); this
    # only guards against a hang the socket timeout cannot see.
    for t in athreads:
        t.join(WAIT * 10)
    run.append_time = time.monotonic() - t0
    stop.set()
    for t in wthreads:
        t.join(WAIT * 2)
    if any(t.is_alive() for t in athreads + wthreads):
        raise AssertionError("a client thread did not finish")
    for w in watchers:
        run.noops[w.name] = w.noops
    states, run.rounds = converge(run, watchers, [("A", port_a), ("B", port_b)])
    run.end = states
    check(run, states, watchers)
    for w in watchers:
        w.s.logout()


def run_once(store, label, args):
    """One run on a new store; returns True when it passed."""
    run = Run(label)
    servers, emu, work = [], None, None
    daemons = 1 if args.one_daemon else 2
    disconnects = {}
    t0 = time.monotonic()
    try:
        if store == "sqlite":
            work = tempfile.mkdtemp(prefix="aguidstab.")
            storage = ["path = " + os.path.join(work, "mail.sqlite")]
            for _ in range(daemons):
                servers.append(start_daemon(SQLITE_DRIVER, storage))
        else:
            emu = Emu(*(["--latency-ms", "5"] if store == "garage-latency" else []))
            for _ in range(daemons):
                servers.append(start_daemon(GARAGE_DRIVER, emu.storage()))
        scenario(run, servers[0].port, servers[-1].port, args)
    except Exception as e:  # noqa: BLE001 - reported below, after the cleanup
        run.problem("error", "%s: %s\n%s" % (type(e).__name__, e, traceback.format_exc(limit=4)))
    finally:
        for name, srv in zip("AB", servers):
            disconnects[name] = srv.read_log().count("UIDVALIDITY changed, disconnecting")
            try:
                srv.stop()
            except AssertionError as e:
                run.problem("error", "daemon %s: %s" % (name, e))
        if emu is not None:
            emu.stop()
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
    wall = time.monotonic() - t0
    end_uv = sorted({s[0] for s in run.end.values()})
    values = sorted(run.uidvalidities)
    if len(values) > 6:
        values = values[:3] + ["..."] + values[-2:]
    print("uid-stability: %s: UIDVALIDITY start %s, end %s (%d values seen: %s); BYEs %d "
          "(daemons logged %d+%d 'UIDVALIDITY changed' disconnects); APPENDs %d acknowledged, %d unanswered, "
          "STOREs %d; NOOPs %s; untagged responses %d; views agreed after %d round(s); "
          "APPENDs took %.1f s, wall %.1f s"
          % (label, run.start_uidvalidity, ",".join(map(str, end_uv)) or "-", len(run.uidvalidities),
             " ".join(map(str, values)), len(run.byes), disconnects.get("A", 0), disconnects.get("B", 0),
             run.appends, len(run.unsure), run.stores,
             "/".join(str(n) for n in run.noops.values()) or "-", run.untagged, run.rounds,
             run.append_time, wall))
    for kind, title in KINDS.items():
        texts = [t for k, t in run.problems if k == kind]
        if texts:
            print("uid-stability: %s: %d problem(s): %s, e.g.:" % (label, len(texts), title))
            for t in texts[:EXAMPLES]:
                print("    " + t.rstrip().replace("\n", "\n    "))
    print("uid-stability: %s: %s" % (label, "FAIL" if run.problems else "PASS"))
    sys.stdout.flush()
    return not run.problems


def main():
    ap = argparse.ArgumentParser(description="stable UIDs with two aerogramd on one store")
    ap.add_argument("--stores", default=",".join(STORES),
                    help="comma-separated, from: %s (default: all)" % ", ".join(STORES))
    ap.add_argument("--repeat", type=int, default=1, help="runs per store")
    ap.add_argument("--clients-per-daemon", type=int, default=2)
    ap.add_argument("--messages", type=int, default=100, help="APPENDs per client")
    ap.add_argument("--one-daemon", action="store_true",
                    help="control: the same clients and sessions, all on one daemon (must pass)")
    args = ap.parse_args()
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    unknown = [s for s in stores if s not in STORES]
    if unknown or not stores or args.repeat < 1 or args.messages < 3 or args.clients_per_daemon < 1:
        ap.error("stores must be among %s; --repeat >= 1, --messages >= 3, --clients-per-daemon >= 1"
                 % ", ".join(STORES))
    # SIGTERM (a timeout of make or CI) unwinds like Ctrl-C, so that each
    # run's cleanup stops the daemons and the emulator it started.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    t0 = time.monotonic()
    failed = []
    for store in stores:
        for i in range(args.repeat):
            label = store if args.repeat == 1 else "%s run %d/%d" % (store, i + 1, args.repeat)
            if i == 0:
                print("uid-stability: %s (%d clients x %d APPENDs)"
                      % (STORES[store].replace("two daemons", "one daemon (control)") if args.one_daemon
                         else STORES[store], 2 * args.clients_per_daemon, args.messages))
            if not run_once(store, label, args):
                failed.append(label)
    print("uid-stability: %d run(s) in %.1f s: %s"
          % (len(stores) * args.repeat, time.monotonic() - t0,
             "FAILED: " + ", ".join(failed) if failed else "all passed"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
