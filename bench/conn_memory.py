"""Memory per idle authenticated connection of aerogramd.

Starts one aerogramd (memory driver), reads its resident set size, opens N
(default 1,000) connections that each log in (and, with --select, SELECT
INBOX; with --compress, COMPRESS DEFLATE first), reads the RSS again and
prints the difference per connection.
Not part of `make check`: it prints numbers, it asserts nothing.

    make && python3 bench/conn_memory.py [--connections 1000] [--select] [--compress]
"""
import argparse
import os
import resource
import socket
import sys
import time
import zlib

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
from agtest.daemon import Server  # noqa: E402


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def read_until(sock, tag, buf=b""):
    while tag not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError(buf)
        buf += chunk
    return buf


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--select", action="store_true", help="also SELECT INBOX in each connection")
    ap.add_argument("--compress", action="store_true", help="COMPRESS DEFLATE after the login (RFC 4978)")
    args = ap.parse_args()
    n = args.connections
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 256
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    # The daemon inherits the raised limit.
    limit = n + 16
    srv = Server({"u": "{PLAIN}pw"}, tls=False, imap=["max_connections = %d" % limit,
                                                      "max_connections_per_ip = %d" % limit,
                                                      "max_user_connections = %d" % limit])
    socks = []
    try:
        # One login first, so the mailbox list and INBOX exist and the
        # lazily made structures of the first user are not counted.
        warm = socket.create_connection(("127.0.0.1", srv.port))
        read_until(warm, b"\r\n")
        warm.sendall(b"a LOGIN u pw\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
        read_until(warm, b"c OK")
        warm.close()
        time.sleep(0.5)
        before = rss_kib(srv.proc.pid)
        start = time.monotonic()
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", srv.port))
            read_until(s, b"\r\n")
            if args.compress:
                # the client waits for the OK of COMPRESS, then deflates
                s.sendall(b"a LOGIN u pw\r\nc COMPRESS DEFLATE\r\n")
                read_until(s, b"c OK")
                zout, zin = zlib.compressobj(6, zlib.DEFLATED, -15), zlib.decompressobj(-15)
                s.sendall(zout.compress(b"b SELECT INBOX\r\n" if args.select else b"b NOOP\r\n") +
                          zout.flush(zlib.Z_SYNC_FLUSH))
                out = b""
                while b"b OK" not in out:
                    out += zin.decompress(s.recv(65536))
                socks.append((s, zout, zin))
                continue
            cmd = b"a LOGIN u pw\r\n" + (b"b SELECT INBOX\r\n" if args.select else b"")
            s.sendall(cmd)
            read_until(s, b"b OK" if args.select else b"a OK")
            socks.append((s, None, None))
        elapsed = time.monotonic() - start
        time.sleep(1.0)
        after = rss_kib(srv.proc.pid)
        # Every connection still answers.
        for s, zout, zin in socks[:: max(1, n // 20)]:
            if zout is None:
                s.sendall(b"z NOOP\r\n")
                read_until(s, b"z OK")
                continue
            s.sendall(zout.compress(b"z NOOP\r\n") + zout.flush(zlib.Z_SYNC_FLUSH))
            out = b""
            while b"z OK" not in out:
                out += zin.decompress(s.recv(65536))
        print("connections:            %d (%s%s)" % (n, "logged in, INBOX selected" if args.select else "logged in",
                                                    ", COMPRESS=DEFLATE" if args.compress else ""))
        print("opened and logged in:   %.1f s" % elapsed)
        print("aerogramd RSS before:   %d KiB" % before)
        print("aerogramd RSS after:    %d KiB" % after)
        print("per connection:         %.1f KiB" % ((after - before) / n))
    finally:
        for s, _, _ in socks:
            s.close()
        srv.stop()


if __name__ == "__main__":
    main()
