#!/usr/bin/env python3
"""Two aerogramd processes on one garage-emu serve the same mailbox.

1. IDLE wake-up across daemons: a client of daemon B IDLEs on INBOX, a
   client of daemon A APPENDs; B must send "* n EXISTS" within 2 s of the
   APPEND's OK (the issue's bound; the latency is printed). Run on a plain
   emulator and on one with 5 ms per request.
2. Convergence: 20 APPENDs on each daemon at once (two connections per
   daemon, from threads). Both daemons must end with the same messages
   (each exactly once, bodies intact), UIDs unique, and the same
   UIDVALIDITY and UID -> message mapping, both in the sessions that were
   selected during the appends (after a NOOP) and in fresh SELECTs.

Run from the top of the tree after `make` (make check-garage-daemons).
`two_daemons.py --soak SECONDS` runs rounds of concurrent APPENDs and
EXPUNGEs for that long instead, on the emulator that GARAGE_EMU_ARGS
describes (e.g. "--replicas 3 --replica-lag-ms 200 --fail-rate 0.05"), and
checks that nothing answered OK is lost, nothing expunged comes back and
both daemons converge (see soak)."""
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from agtest.garage import WAIT, Emu, daemon  # noqa: E402
from agtest.imap import Imap  # noqa: E402
from agtest.mail import message, select_info  # noqa: E402

USERS = {"u": "{PLAIN}pw"}
IDLE_BOUND = 2.0
PER_DAEMON = 20
CONNECTIONS = 2


def idle_wakeup(a, b, emu, label):
    """Returns the latency from the APPEND's OK on A to EXISTS on B."""
    watcher = Imap(b.port, user="u")
    untagged, _ = watcher.ok("SELECT INBOX")
    before, _ = select_info(untagged)
    watcher.send(b"i1 IDLE\r\n")
    line = watcher.line()
    assert line.startswith(b"+"), line
    # B's poller on the INBOX watch row is parked in the emulator.
    emu.wait_polls(1)
    writer = Imap(a.port, user="u")
    t0 = time.monotonic()
    writer.ok("APPEND INBOX", message(0, "idle-" + label))
    t1 = time.monotonic()
    line = watcher.line(timeout=WAIT)
    t2 = time.monotonic()
    assert line == b"* %d EXISTS" % (before + 1), line
    latency = t2 - t1
    print("  %s: APPEND on A took %.1f ms; B's IDLE got '%s' %.1f ms after the APPEND's OK"
          % (label, (t1 - t0) * 1000, line.decode(), latency * 1000))
    assert latency < IDLE_BOUND, "IDLE wake-up took %.3f s (bound %.1f s)" % (latency, IDLE_BOUND)
    watcher.send(b"DONE\r\n")
    while not watcher.line().startswith(b"i1 "):
        pass
    writer.ok("LOGOUT")
    watcher.ok("LOGOUT")
    writer.close()
    watcher.close()
    return before + 1


def fetch_all(c):
    """{uid: (message-id, body)} of the selected mailbox, plus the UIDs in order."""
    untagged, _ = c.ok("UID FETCH 1:* (UID BODY.PEEK[])")
    out = {}
    uids = []
    for line, lits in untagged:
        if b" FETCH " not in line:
            continue
        uid = int(re.search(rb"UID (\d+)", line).group(1))
        body = lits[0]
        mid = re.search(rb"Message-ID: (<[^>]*>)", body).group(1).decode()
        uids.append(uid)
        out[uid] = (mid, body)
    return out, uids


def wait_count(c, n, name):
    """NOOPs until the selected mailbox shows n messages (generous wait)."""
    deadline = time.monotonic() + WAIT
    exists = None
    while time.monotonic() < deadline:
        untagged, _ = c.ok("NOOP")
        e, _ = select_info(untagged)
        if e is not None:
            exists = e
        if exists == n:
            return
        time.sleep(0.1)
    raise AssertionError("%s shows %s messages, expected %d" % (name, exists, n))


def convergence(a, b, start_count, label):
    sessions = {}
    for name, srv in (("A", a), ("B", b)):
        c = Imap(srv.port, user="u")
        untagged, _ = c.ok("SELECT INBOX")
        assert select_info(untagged)[0] == start_count, untagged
        sessions[name] = c
    sent = {}
    errors = []
    appenduids = []
    lock = threading.Lock()

    def writer(name, port, conn):
        try:
            c = Imap(port, user="u")
            for i in range(PER_DAEMON // CONNECTIONS):
                tag = "%s%s-%s" % (name, conn, label)
                data = message(i, tag)
                _, tagged = c.ok("APPEND INBOX", data)
                with lock:
                    sent["<%s-%d@aerogram.test>" % (tag, i)] = data
                    m = re.search(rb"APPENDUID (\d+) (\d+)", tagged)
                    appenduids.append((name, int(m.group(1)), int(m.group(2))))
            c.ok("LOGOUT")
            c.close()
        except Exception as e:  # reported by the main thread
            with lock:
                errors.append("%s%d: %r" % (name, conn, e))

    threads = [threading.Thread(target=writer, args=(name, srv.port, k))
               for name, srv in (("A", a), ("B", b)) for k in range(CONNECTIONS)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    assert not errors, errors
    total = start_count + 2 * PER_DAEMON
    assert len(sent) == 2 * PER_DAEMON
    uvs = sorted({uv for _, uv, _ in appenduids})
    print("  %s: %d concurrent APPENDs in %.2f s; APPENDUID UIDVALIDITYs seen: %s"
          % (label, len(sent), elapsed, uvs))

    results = {}
    for name, srv in (("A", a), ("B", b)):
        old = sessions[name]
        try:
            wait_count(old, total, name)
            old_map, old_uids = fetch_all(old)
        except EOFError:
            # The collisions raised UIDVALIDITY while this session had INBOX
            # selected: the daemon says BYE and closes (as Dovecot does), so
            # the client resyncs in a new session. Only allowed when the
            # UIDVALIDITY really changed.
            assert len(uvs) > 1 or uvs[0] != 1, "%s: disconnected without a UIDVALIDITY change" % name
            print("  %s: %s's selected session was disconnected: UIDVALIDITY changed" % (label, name))
            old = Imap(srv.port, user="u")
            untagged, _ = old.ok("SELECT INBOX")
            if select_info(untagged)[0] != total:
                wait_count(old, total, name)
            old_map, old_uids = fetch_all(old)
        fresh = Imap(srv.port, user="u")
        untagged, _ = fresh.ok("SELECT INBOX")
        exists, uv = select_info(untagged)
        assert exists == total, (name, exists, total)
        fresh.ok("NOOP")
        fresh_map, fresh_uids = fetch_all(fresh)
        for m, uids in ((old_map, old_uids), (fresh_map, fresh_uids)):
            assert len(uids) == total, (name, len(uids))
            assert len(set(uids)) == total, "%s: duplicate UIDs %s" % (name, uids)
            assert uids == sorted(uids), (name, uids)
            mids = [mid for mid, _ in m.values()]
            assert len(set(mids)) == total, "%s: a message appears twice" % name
            for mid, body in m.values():
                if mid in sent:
                    assert body == sent[mid], "%s: body of %s differs" % (name, mid)
            assert set(sent) <= set(mids), "%s: missing %s" % (name, set(sent) - set(mids))
        assert old_map == fresh_map, "%s: the selected session and a fresh one disagree" % name
        results[name] = (uv, {uid: mid for uid, (mid, _) in fresh_map.items()})
        old.ok("LOGOUT")
        fresh.ok("LOGOUT")
        old.close()
        fresh.close()
    assert results["A"][0] == results["B"][0], "UIDVALIDITY: A %s, B %s" % (results["A"][0], results["B"][0])
    assert results["A"][1] == results["B"][1], "UID mapping differs between A and B"
    print("  %s: both daemons show %d messages, UIDVALIDITY %d, UIDs %d..%d, same mapping"
          % (label, total, results["A"][0], min(results["A"][1]), max(results["A"][1])))


def run(label, *emu_options):
    emu = Emu(*emu_options)
    servers = []
    try:
        a = daemon(emu, USERS)
        servers.append(a)
        b = daemon(emu, USERS)
        servers.append(b)
        count = idle_wakeup(a, b, emu, label)
        convergence(a, b, count, label)
    finally:
        failures = []
        for s in servers:
            try:
                s.stop()
            except AssertionError as e:
                failures.append(str(e))
        emu.stop()
        if failures:
            raise AssertionError("\n".join(failures))


def retrying(c, text, literal=None, tries=50):
    """c.ok(text), repeated while the store answers NO [UNAVAILABLE] (the
    emulator injects 503s in a soak run). Returns (untagged, tagged)."""
    for _ in range(tries):
        untagged, tagged = c.command(text, literal)
        if tagged.split(b" ", 2)[1] == b"OK":
            return untagged, tagged
        if b"[UNAVAILABLE]" not in tagged:
            raise AssertionError("%s: %r" % (text, tagged))
        time.sleep(0.05)
    raise AssertionError("%s: still unavailable after %d tries" % (text, tries))


def login(port):
    """A session logged in (retrying an unavailable store) with INBOX selected."""
    for _ in range(50):
        c = Imap(port)
        _, tagged = c.command("LOGIN u pw")
        if tagged.split(b" ", 2)[1] == b"OK":
            retrying(c, "SELECT INBOX")
            return c
        c.close()
        time.sleep(0.05)
    raise AssertionError("cannot log in on port %d" % port)


def soak(seconds):
    """Rounds of concurrent APPENDs on two daemons (two connections each)
    and EXPUNGEs on A, on the emulator GARAGE_EMU_ARGS describes (e.g. three
    lagging replicas with injected 503s), for `seconds`. An APPEND answered
    OK must end on both daemons exactly once with its body; one answered NO
    [UNAVAILABLE] may or may not (the store may have applied part of it), but
    once at most and the same on both; an expunged message never comes back;
    both daemons end with the same UIDVALIDITY and UID -> message map."""
    emu = Emu()
    servers = []
    t_end = time.monotonic() + seconds
    ok_ids, doubtful, expunged = set(), set(), set()
    rounds = failed_appends = 0
    try:
        a = daemon(emu, USERS)
        servers.append(a)
        b = daemon(emu, USERS)
        servers.append(b)
        lock = threading.Lock()
        errors = []

        def writer(name, port, conn, r):
            try:
                c = Imap(port)
                retrying(c, "LOGIN u pw")
                for i in range(5):
                    tag = "%s%d-r%d" % (name, conn, r)
                    mid = "<%s-%d@aerogram.test>" % (tag, i)
                    _, tagged = c.command("APPEND INBOX", message(i, tag))
                    with lock:
                        if tagged.split(b" ", 2)[1] == b"OK":
                            ok_ids.add(mid)
                        elif b"[UNAVAILABLE]" in tagged:
                            doubtful.add(mid)
                        else:
                            errors.append("%s: %r" % (mid, tagged))
                c.close()
            except Exception as e:  # reported by the main thread
                with lock:
                    errors.append("%s%d: %r" % (name, conn, e))

        while time.monotonic() < t_end:
            rounds += 1
            threads = [threading.Thread(target=writer, args=(name, srv.port, k, rounds))
                       for name, srv in (("A", a), ("B", b)) for k in range(CONNECTIONS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert not errors, errors
            # expunge a few messages answered OK in an earlier round, on A
            c = login(a.port)
            m, _ = fetch_all_retrying(c)
            victims = [uid for uid, (mid, _) in sorted(m.items()) if mid in ok_ids][: 3]
            if victims:
                ids = ",".join(str(u) for u in victims)
                retrying(c, "UID STORE %s +FLAGS.SILENT (\\Deleted)" % ids)
                retrying(c, "UID EXPUNGE %s" % ids)
                for u in victims:
                    expunged.add(m[u][0])
                    ok_ids.discard(m[u][0])
            c.close()
        failed_appends = len(doubtful)
        # both daemons converge on one state
        deadline = time.monotonic() + WAIT
        while True:
            maps = {}
            uvs = {}
            for name, srv in (("A", a), ("B", b)):
                c = login(srv.port)
                untagged, _ = retrying(c, "NOOP")
                maps[name], _ = fetch_all_retrying(c)
                st, _ = retrying(c, "STATUS INBOX (UIDVALIDITY)")
                uvs[name] = re.search(rb"UIDVALIDITY (\d+)", st[0][0]).group(1)
                c.close()
            same = ({u: mid for u, (mid, _) in maps["A"].items()} ==
                    {u: mid for u, (mid, _) in maps["B"].items()} and uvs["A"] == uvs["B"])
            if same or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert same, "the daemons did not converge: %d vs %d messages, UIDVALIDITY %s" % (
            len(maps["A"]), len(maps["B"]), uvs)
        mids = [mid for mid, _ in maps["A"].values()]
        assert len(mids) == len(set(mids)), "a message appears twice"
        present = set(mids)
        assert ok_ids <= present, "lost: %s" % sorted(ok_ids - present)[:10]
        assert not (expunged & present), "expunged and back: %s" % sorted(expunged & present)[:10]
        assert present <= ok_ids | doubtful, "unknown messages: %s" % sorted(present - ok_ids - doubtful)[:10]
        for mid, body in maps["A"].values():
            assert mid.encode() in body, "body of %s is not its own" % mid
        st = emu.stats()
        print("  soak: %d rounds in %d s; %d APPENDs OK, %d answered UNAVAILABLE (%d of them stored), "
              "%d expunged; both daemons show %d messages, UIDVALIDITY %s; emulator: %d requests, "
              "faults %s" % (rounds, seconds, len(ok_ids) + len(expunged), failed_appends,
                             len(doubtful & present), len(expunged), len(present), uvs["A"].decode(),
                             st["total"], st["faults"]))
    finally:
        for s_ in servers:
            try:
                s_.stop()
            except AssertionError as e:
                print("  %s" % e)
        emu.stop()


def fetch_all_retrying(c):
    for _ in range(50):
        untagged, tagged = c.command("UID FETCH 1:* (UID BODY.PEEK[])")
        if tagged.split(b" ", 2)[1] == b"OK":
            break
        if b"[UNAVAILABLE]" not in tagged:
            raise AssertionError("FETCH: %r" % tagged)
        time.sleep(0.05)
    else:
        raise AssertionError("FETCH still unavailable")
    out, uids = {}, []
    for line, lits in untagged:
        if b" FETCH " not in line:
            continue
        uid = int(re.search(rb"UID (\d+)", line).group(1))
        mid = re.search(rb"Message-ID: (<[^>]*>)", lits[0]).group(1).decode()
        uids.append(uid)
        out[uid] = (mid, lits[0])
    return out, uids


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--soak":
        print("two-daemons: soak of %s s on garage-emu %s" % (sys.argv[2], os.environ.get("GARAGE_EMU_ARGS", "")))
        soak(int(sys.argv[2]))
        print("two-daemons: soak passed")
        return 0
    t0 = time.monotonic()
    print("two-daemons: garage-emu, plain")
    run("plain")
    print("two-daemons: garage-emu --latency-ms 5")
    run("latency 5 ms", "--latency-ms", "5")
    print("two-daemons: all passed (%.1f s)" % (time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
