#!/usr/bin/env python3
"""Tests of the Garage emulator (tests/garage-emu/garage-emu).

They start the emulator on free loopback ports and talk to it over HTTP/1.1
with a small SigV4 client written here from docs/garage-api.md (real
signing: the emulator recomputes every signature).  Standard library only.
Run: python3 tests/garage-emu/test_emu.py [-v]
"""

import base64
import datetime
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
EMU = os.path.join(HERE, "garage-emu")
BUCKET = "mail-test"
KEY_ID = "GK0123456789abcdef01234567"
SECRET = "7b3e1c2a9f8d6e5b4a3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a"
REGION = "garage"
S3NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


# ---------------------------------------------------------------------------
# A SigV4 client, independent of the emulator's code.

def aws_encode(s, keep_slash):
    safe = "-_.~" + ("/" if keep_slash else "")
    return urllib.parse.quote(s, safe=safe)


def sha256_hex(b):
    return hashlib.sha256(b).hexdigest()


def sign_key(secret, day, region, service):
    k = ("AWS4" + secret).encode()
    for part in (day, region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


class Client:
    """One keep-alive connection that signs each request for one service."""

    def __init__(self, port, service, key_id=KEY_ID, secret=SECRET, region=REGION):
        self.port = port
        self.service = service
        self.key_id = key_id
        self.secret = secret
        self.region = region
        self.conn = None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method, path, query=(), body=b"", headers=None, *, sign=True,
                date=None, payload_hash=None, unsigned_headers=None, canon_uri=None,
                scope_region=None, raw_query=None, timeout=30):
        """Send a signed request; return (status, headers dict, body bytes).

        path is the wire path, already percent-encoded.  query is a list of
        (name, value) pairs, value None for a bare keyword.  The keyword
        arguments break the signature in controlled ways for the tests;
        raw_query replaces the wire query (query then only feeds the signature).
        """
        headers = dict(headers or {})
        qs = "&".join(aws_encode(k, False) if v is None else
                      aws_encode(k, False) + "=" + aws_encode(v, False) for k, v in query)
        if raw_query is not None:
            qs = raw_query
        target = path + ("?" + qs if qs else "")
        if sign:
            now = date or datetime.datetime.now(datetime.timezone.utc)
            amz_date = now.strftime("%Y%m%dT%H%M%SZ")
            day = amz_date[:8]
            headers["x-amz-date"] = amz_date
            headers["x-amz-content-sha256"] = payload_hash or sha256_hex(body)
            headers["host"] = "127.0.0.1:%d" % self.port
            lower = {k.lower(): v for k, v in headers.items()}
            skip = {h.lower() for h in (unsigned_headers or ())}
            signed = sorted(h for h in lower
                            if h not in skip and (h == "host" or h.startswith("x-amz-")
                                                  or h == "content-type"))
            canon_q = "&".join(sorted(aws_encode(k, False) + "=" + aws_encode(v or "", False)
                                      for k, v in query))
            if canon_uri is None:
                canon_uri = path if self.service == "s3" else aws_encode(path, True)
            creq = "\n".join([method, canon_uri, canon_q,
                              "".join("%s:%s\n" % (h, lower[h].strip()) for h in signed),
                              ";".join(signed), lower["x-amz-content-sha256"]])
            scope = "%s/%s/%s/aws4_request" % (day, scope_region or self.region, self.service)
            sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, sha256_hex(creq.encode())])
            sig = hmac.new(sign_key(self.secret, day, self.region, self.service),
                           sts.encode(), hashlib.sha256).hexdigest()
            headers["Authorization"] = ("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, "
                                        "Signature=%s" % (self.key_id, scope, ";".join(signed),
                                                          sig))
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        self.conn.timeout = timeout
        if self.conn.sock is not None:
            self.conn.sock.settimeout(timeout)
        try:
            self.conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            if "host" not in {k.lower() for k in headers}:
                headers["host"] = "127.0.0.1:%d" % self.port
            for k, v in headers.items():
                self.conn.putheader(k, v)
            self.conn.putheader("Content-Length", str(len(body)))
            self.conn.endheaders(body)
            r = self.conn.getresponse()
            data = r.read()
        except Exception:
            self.close()
            raise
        if r.getheader("Connection", "").lower() == "close":
            self.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def b64(s):
    if isinstance(s, str):
        s = s.encode()
    return base64.b64encode(s).decode()


def decode_token(tok):
    raw = base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4))
    assert len(raw) % 16 == 8, raw
    csum = struct.unpack(">Q", raw[:8])[0]
    vc = {}
    x = 0
    for off in range(8, len(raw), 16):
        n, t = struct.unpack(">QQ", raw[off:off + 16])
        vc[n] = t
        x ^= n ^ t
    assert x == csum
    return vc


def encode_token(vc):
    words = []
    for n in sorted(vc):
        words += [n, vc[n]]
    x = 0
    for w in words:
        x ^= w
    raw = struct.pack(">Q", x) + b"".join(struct.pack(">Q", w) for w in words)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# ---------------------------------------------------------------------------
# Starting and stopping emulators.

class Emu:
    def __init__(self, *extra):
        self.proc = subprocess.Popen(
            [sys.executable, EMU, "--k2v-port", "0", "--s3-port", "0", "--bucket", BUCKET,
             "--key-id", KEY_ID, "--secret", SECRET] + list(extra),
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("ready "):
            self.proc.kill()
            raise RuntimeError("emulator did not start: %r" % line)
        fields = dict(f.split("=") for f in line.split()[1:])
        self.k2v_port = int(fields["k2v"])
        self.s3_port = int(fields["s3"])
        self.clients = []

    def k2v(self, **kw):
        c = Client(self.k2v_port, "k2v", **kw)
        self.clients.append(c)
        return c

    def s3(self, **kw):
        c = Client(self.s3_port, "s3", **kw)
        self.clients.append(c)
        return c

    def stats(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.k2v_port, timeout=10)
        conn.request("GET", "/_emu/stats")
        r = conn.getresponse()
        data = json.loads(r.read())
        conn.close()
        return data

    def reset_stats(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.k2v_port, timeout=10)
        conn.request("POST", "/_emu/reset-stats")
        r = conn.getresponse()
        r.read()
        conn.close()
        return r.status

    def stop(self):
        for c in self.clients:
            c.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
            self.proc.stdout.close()
            return rc
        self.proc.stdout.close()
        return self.proc.returncode


EMU_MAIN = None


def setUpModule():
    global EMU_MAIN
    EMU_MAIN = Emu()


def tearDownModule():
    rc = EMU_MAIN.stop()
    assert rc == 0, "emulator exit status %r" % rc


class Base(unittest.TestCase):
    pk = "base"

    def setUp(self):
        self.k = EMU_MAIN.k2v()
        self.s = EMU_MAIN.s3()
        # Each test gets its own partition / key space.
        self.pk = "%s-%s" % (type(self).__name__, self._testMethodName)

    def item_path(self, pk=None):
        return "/%s/%s" % (BUCKET, aws_encode(pk or self.pk, True))

    def insert(self, sk, value, ct=None, pk=None):
        h = {"X-Garage-Causality-Token": ct} if ct else {}
        st, _, _ = self.k.request("PUT", self.item_path(pk), [("sort_key", sk)],
                                  value if isinstance(value, bytes) else value.encode(), h)
        self.assertEqual(st, 204)

    def read(self, sk, accept=None, pk=None):
        h = {"Accept": accept} if accept else {}
        return self.k.request("GET", self.item_path(pk), [("sort_key", sk)], headers=h)

    def read_json(self, sk, pk=None):
        st, h, body = self.read(sk, pk=pk)
        self.assertEqual(st, 200, body)
        self.assertEqual(h["content-type"], "application/json")
        vals = [None if v is None else base64.b64decode(v) for v in json.loads(body)]
        return h["x-garage-causality-token"], vals

    def wait_for_polls(self, kind, n):
        """Wait until n polls of this kind are blocked in the emulator."""
        deadline = time.monotonic() + 30
        while EMU_MAIN.stats()["waiting"][kind] != n and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(EMU_MAIN.stats()["waiting"][kind], n)

    def batch(self, method, query, payload):
        st, h, body = self.k.request(method, "/" + BUCKET, query,
                                     json.dumps(payload).encode())
        return st, (json.loads(body) if body else None)


# ---------------------------------------------------------------------------

class TokenTests(Base):
    def test_example_token_of_the_spec(self):
        tok = encode_token({0x0123456789abcdef: 1700000000000})
        self.assertEqual(tok, "ASNE7EZOpe8BI0VniavN7wAAAYvP5WgA")
        self.assertEqual(encode_token({}), "AAAAAAAAAAA")

    def test_token_format_and_foreign_nodes_persist(self):
        self.insert("a", "one")
        ct, vals = self.read_json("a")
        self.assertEqual(vals, [b"one"])
        vc = decode_token(ct)
        self.assertEqual(len(vc), 1)
        self.assertNotIn("=", ct)
        # A token carrying a foreign node: the entry survives into later tokens.
        vc2 = dict(vc)
        vc2[0x0123456789abcdef] = 1700000000000
        self.insert("a", "two", ct=encode_token(vc2))
        ct2, vals2 = self.read_json("a")
        self.assertEqual(vals2, [b"two"])
        got = decode_token(ct2)
        self.assertEqual(got[0x0123456789abcdef], 1700000000000)
        (mine,) = [n for n in vc]
        self.assertGreater(got[mine], vc[mine])

    def test_bad_tokens_rejected(self):
        for bad in ("!!!", "AAAAAAAAAAAA" + "A", "ASNE7EZOpe8BI0VniavN7wAAAYvP5WgB",
                    "ASNE7EZOpe8BI0VniavN7w"):
            st, _, body = self.k.request("PUT", self.item_path(), [("sort_key", "x")], b"v",
                                         {"X-Garage-Causality-Token": bad})
            self.assertEqual(st, 400, bad)
            self.assertEqual(json.loads(body)["code"], "CausalityToken")
        st, _, body = self.read("x")
        self.assertEqual(st, 404)


class DvvsTests(Base):
    def test_write_without_token_makes_siblings_and_dedups(self):
        self.insert("k", "v1")
        self.insert("k", "v2")
        _, vals = self.read_json("k")
        self.assertEqual(vals, [b"v1", b"v2"])
        self.insert("k", "v2")
        _, vals = self.read_json("k")
        self.assertEqual(vals, [b"v1", b"v2"])

    def test_token_supersedes_exactly_what_was_read(self):
        self.insert("k", "v1")
        ct, vals = self.read_json("k")
        self.assertEqual(vals, [b"v1"])
        self.insert("k", "v2")             # written after our read
        self.insert("k", "v3", ct=ct)
        _, vals = self.read_json("k")
        self.assertEqual(vals, [b"v2", b"v3"])
        ct, _ = self.read_json("k")
        self.insert("k", "v4", ct=ct)
        _, vals = self.read_json("k")
        self.assertEqual(vals, [b"v4"])

    def test_two_writers_one_old_token(self):
        self.insert("k", "old")
        ct, _ = self.read_json("k")
        self.insert("k", "alice", ct=ct)
        self.insert("k", "bob", ct=ct)
        _, vals = self.read_json("k")
        self.assertEqual(sorted(vals), [b"alice", b"bob"])

    def test_delete_without_token_is_concurrent(self):
        self.insert("k", "v")
        st, _, _ = self.k.request("DELETE", self.item_path(), [("sort_key", "k")])
        self.assertEqual(st, 204)
        _, vals = self.read_json("k")
        self.assertEqual(vals, [b"v", None])
        ct, _ = self.read_json("k")
        st, _, _ = self.k.request("DELETE", self.item_path(), [("sort_key", "k")],
                                  headers={"X-Garage-Causality-Token": ct})
        self.assertEqual(st, 204)
        _, vals = self.read_json("k")
        self.assertEqual(vals, [None])

    def test_empty_value_is_not_a_tombstone(self):
        self.insert("e", b"")
        _, vals = self.read_json("e")
        self.assertEqual(vals, [b""])
        st, h, body = self.read("e", accept="application/octet-stream")
        self.assertEqual((st, body), (200, b""))


class ReadItemTests(Base):
    def test_negotiation(self):
        self.insert("one", b"\x00\xffbin")
        st, h, body = self.read("one")
        self.assertEqual((st, h["content-type"]), (200, "application/json"))
        self.assertEqual(json.loads(body), [b64(b"\x00\xffbin")])
        st, h, body = self.read("one", accept="application/octet-stream")
        self.assertEqual((st, h["content-type"], body),
                         (200, "application/octet-stream", b"\x00\xffbin"))
        self.assertIn("x-garage-causality-token", h)
        st, h, body = self.read("one", accept="*/*")
        self.assertEqual((st, body), (200, b"\x00\xffbin"))
        st, h, body = self.read("one", accept="application/json , application/octet-stream")
        self.assertEqual((st, body), (200, b"\x00\xffbin"))
        st, h, body = self.read("one", accept="application/json;q=0.9")
        self.assertEqual(st, 406)
        self.assertEqual(json.loads(body)["code"], "NotAcceptable")
        st, h, body = self.read("one", accept="text/plain")
        self.assertEqual(st, 406)

    def test_conflict_and_tombstone(self):
        self.insert("c", "a")
        self.insert("c", "b")
        st, h, body = self.read("c", accept="application/octet-stream")
        self.assertEqual((st, body), (409, b""))
        self.assertNotIn("content-type", h)
        self.assertIn("x-garage-causality-token", h)
        st, h, body = self.read("c", accept="application/octet-stream, application/json")
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(body), [b64("a"), b64("b")])
        ct = h["x-garage-causality-token"]
        st, _, _ = self.k.request("DELETE", self.item_path(), [("sort_key", "c")],
                                  headers={"X-Garage-Causality-Token": ct})
        st, h, body = self.read("c", accept="application/octet-stream")
        self.assertEqual((st, body), (204, b""))
        self.assertEqual(h["content-type"], "application/octet-stream")
        self.assertIn("x-garage-causality-token", h)
        st, h, body = self.read("c")
        self.assertEqual((st, json.loads(body)), (200, [None]))

    def test_not_found_error_body(self):
        st, h, body = self.read("nope")
        self.assertEqual(st, 404)
        err = json.loads(body)
        self.assertEqual(list(err), ["code", "message", "region", "path"])
        self.assertEqual(err["code"], "NoSuchKey")
        self.assertEqual(err["region"], REGION)
        self.assertEqual(err["path"], self.item_path())

    def test_pk_with_space_slash_and_plus_in_query(self):
        pk = "INBOX Sent/sub+x"
        self.insert("a b+c", "v", pk=pk)
        _, vals = self.read_json("a b+c", pk=pk)
        self.assertEqual(vals, [b"v"])
        # '+' in a query means a space.
        st, _, body = self.k.request("GET", self.item_path(pk), [("sort_key", "a b+c")],
                                     raw_query="sort_key=a+b%2Bc")
        self.assertEqual((st, json.loads(body)), (200, [b64("v")]))
        # A raw '/' in the pk is the same as %2F.
        st, _, body = self.k.request("GET", "/%s/INBOX%%20Sent%%2Fsub%%2Bx" % BUCKET,
                                     [("sort_key", "a b+c")])
        self.assertEqual(st, 200)


class QueryQuirkTests(Base):
    def test_repeated_empty_and_unknown(self):
        st, _, body = self.k.request("GET", self.item_path(), [("sort_key", "a"),
                                                                ("sort_key", "b")])
        self.assertEqual(st, 400)
        self.assertEqual(json.loads(body)["code"], "InvalidRequest")
        st, _, body = self.k.request("GET", self.item_path(), [("sort_key", "")])
        self.assertEqual(st, 400)
        self.assertIn("Missing argument", json.loads(body)["message"])
        self.insert("a", "v")
        st, _, _ = self.k.request("GET", self.item_path(), [("sort_key", "a"),
                                                            ("whatever", "1")])
        self.assertEqual(st, 200)

    def test_methods(self):
        st, _, body = self.k.request("HEAD", self.item_path(), [("sort_key", "a")])
        self.assertEqual((st, body), (400, b""))
        st, _, body = self.k.request("PATCH", self.item_path(), [("sort_key", "a")])
        self.assertEqual(st, 400)
        self.assertEqual(json.loads(body)["message"], "Bad request: Unknown method")
        st, _, body = self.k.request("SEARCH", "/" + BUCKET, [("search", None)], b"[]")
        self.assertEqual(st, 400)
        st, _, _ = self.k.request("PUT", "/" + BUCKET, [], b"")
        self.assertEqual(st, 400)

    def test_keywords(self):
        body = json.dumps([{"partitionKey": self.pk}]).encode()
        for raw in ("search=", "search=anything"):
            st, _, res = self.k.request("POST", "/" + BUCKET, [("search", raw[7:])], body,
                                        raw_query=raw)
            self.assertEqual(st, 200, raw)
            self.assertEqual(json.loads(res)[0]["items"], [])
        st, _, res = self.k.request("POST", "/" + BUCKET, [("search", None), ("delete", None)],
                                    body)
        self.assertEqual(st, 400)
        self.assertIn("Multiple keywords", json.loads(res)["message"])
        st, _, _ = self.k.request("GET", "/" + BUCKET, [("limit", "ten")])
        self.assertEqual(st, 400)
        st, _, _ = self.k.request("GET", "/" + BUCKET, [("limit", "")])
        self.assertEqual(st, 200)

    def test_duplicate_names_fail_the_signature_check(self):
        # Unknown names are ignored by routing, but the signature code keys
        # the query by header name: a repeat, in any case, is a 400.
        st, _, body = self.k.request("GET", self.item_path(), [("sort_key", "a"), ("x", "1"),
                                                              ("X", "2")])
        self.assertEqual(st, 400)
        self.assertIn("duplicate query parameter", json.loads(body)["message"])

    def test_wrong_bucket(self):
        st, _, body = self.k.request("GET", "/other-bucket/pk", [("sort_key", "a")])
        self.assertEqual(st, 404)
        self.assertEqual(json.loads(body)["code"], "NoSuchBucket")


class BatchTests(Base):
    def fill(self, n, pk=None):
        items = [{"pk": pk or self.pk, "sk": "item%05d" % i, "ct": None, "v": b64("v%d" % i)}
                 for i in range(n)]
        st, _ = self.batch("POST", [], items)
        self.assertEqual(st, 204)

    def test_pagination_2500_forward_and_reverse(self):
        self.fill(2500)
        got = []
        start = None
        pages = 0
        while True:
            q = {"partitionKey": self.pk, "start": start, "limit": 1000}
            st, res = self.batch("POST", [("search", None)], [q])
            self.assertEqual(st, 200)
            r = res[0]
            self.assertEqual(list(r), ["partitionKey", "prefix", "start", "end", "limit",
                                       "reverse", "singleItem", "conflictsOnly", "tombstones",
                                       "items", "more", "nextStart"])
            got += [it["sk"] for it in r["items"]]
            pages += 1
            if not r["more"]:
                self.assertIsNone(r["nextStart"])
                break
            self.assertEqual(r["nextStart"], "item%05d" % len(got))
            start = r["nextStart"]
        self.assertEqual(pages, 3)
        self.assertEqual(got, ["item%05d" % i for i in range(2500)])
        # Without limit: everything at once (bare SEARCH method).
        st, res = self.batch("SEARCH", [], [{"partitionKey": self.pk}])
        self.assertEqual(st, 200)
        self.assertEqual(len(res[0]["items"]), 2500)
        self.assertEqual(res[0]["items"][7]["v"], [b64("v7")])
        decode_token(res[0]["items"][7]["ct"])
        # Reverse from the top, then from a start key, with end exclusive.
        st, res = self.batch("POST", [("search", None)],
                             [{"partitionKey": self.pk, "reverse": True, "limit": 3},
                              {"partitionKey": self.pk, "reverse": True, "start": "item01000",
                               "end": "item00996"},
                              {"partitionKey": self.pk, "prefix": "item0249", "reverse": True,
                               "limit": 2},
                              {"partitionKey": self.pk, "start": "item00010", "end": "item00013"},
                              {"partitionKey": self.pk, "limit": 0}])
        self.assertEqual([i["sk"] for i in res[0]["items"]], ["item02499", "item02498",
                                                               "item02497"])
        self.assertEqual((res[0]["more"], res[0]["nextStart"]), (True, "item02496"))
        self.assertEqual([i["sk"] for i in res[1]["items"]],
                         ["item01000", "item00999", "item00998", "item00997"])
        self.assertEqual([i["sk"] for i in res[2]["items"]], ["item02499", "item02498"])
        self.assertEqual([i["sk"] for i in res[3]["items"]],
                         ["item00010", "item00011", "item00012"])
        self.assertEqual((res[4]["items"], res[4]["more"], res[4]["nextStart"]),
                         ([], True, "item00000"))

    def test_unicode_keys(self):
        self.batch("POST", [], [{"pk": self.pk, "sk": "bo\u00eete/\u00e9t\u00e9", "v": b64("x")},
                                {"pk": self.pk, "sk": "\U0001F600", "v": b64("y")},
                                {"pk": self.pk, "sk": "z", "v": b64("z")}])
        st, res = self.batch("POST", [("search", None)], [{"partitionKey": self.pk}])
        # Sorted by UTF-8 bytes: U+1F600 (F0 ...) after 'z'.
        self.assertEqual([i["sk"] for i in res[0]["items"]],
                         ["bo\u00eete/\u00e9t\u00e9", "z", "\U0001F600"])
        _, vals = self.read_json("bo\u00eete/\u00e9t\u00e9")
        self.assertEqual(vals, [b"x"])

    def test_errors(self):
        st, res = self.batch("POST", [("search", None)],
                             [{"partitionKey": self.pk, "prefix": "a", "start": "b"}])
        self.assertEqual(st, 400)
        st, res = self.batch("POST", [("search", None)],
                             [{"partitionKey": self.pk, "singleItem": True}])
        self.assertEqual(st, 400)
        st, res = self.batch("POST", [("search", None)],
                             [{"partitionKey": self.pk, "singleItem": True, "start": "a",
                               "limit": 3}])
        self.assertEqual(st, 400)
        st, _, body = self.k.request("POST", "/" + BUCKET, [("search", None)], b"[{")
        self.assertEqual(st, 400)
        self.assertEqual(json.loads(body)["code"], "InvalidRequest")
        st, _, body = self.k.request("POST", "/" + BUCKET, [],
                                     json.dumps([{"pk": "p", "sk": "s", "v": "@@"}]).encode())
        self.assertEqual(st, 400)
        self.assertEqual(json.loads(body)["code"], "InvalidRequest")
        self.assertIn("Invalid base64 value", json.loads(body)["message"])

    def test_tombstones_conflicts_and_single_item(self):
        self.batch("POST", [], [{"pk": self.pk, "sk": "a", "v": b64("1")},
                                {"pk": self.pk, "sk": "b", "v": b64("2")},
                                {"pk": self.pk, "sk": "b", "v": b64("3")},
                                {"pk": self.pk, "sk": "c"},            # v omitted: tombstone
                                {"pk": self.pk, "sk": "d", "v": None}])
        st, res = self.batch("POST", [("search", None)], [
            {"partitionKey": self.pk, "prefix": None, "start": None, "end": None, "limit": None},
            {"partitionKey": self.pk, "tombstones": True},
            {"partitionKey": self.pk, "conflictsOnly": True},
            {"partitionKey": self.pk, "singleItem": True, "start": "c"},
            {"partitionKey": self.pk, "singleItem": True, "start": "c", "tombstones": True},
            {"partitionKey": self.pk, "singleItem": True, "start": "zz"}])
        self.assertEqual(st, 200)
        self.assertEqual([i["sk"] for i in res[0]["items"]], ["a", "b"])
        self.assertEqual([i["sk"] for i in res[1]["items"]], ["a", "b", "c", "d"])
        self.assertEqual(res[1]["items"][2]["v"], [None])
        self.assertEqual([i["sk"] for i in res[2]["items"]], ["b"])
        self.assertEqual(res[2]["items"][0]["v"], [b64("2"), b64("3")])
        self.assertEqual(res[3]["items"], [])
        self.assertEqual([i["sk"] for i in res[4]["items"]], ["c"])
        self.assertEqual(res[5]["items"], [])
        # Insert with ct from the batch read resolves the conflict.
        ct = res[2]["items"][0]["ct"]
        self.batch("POST", [], [{"pk": self.pk, "sk": "b", "ct": ct, "v": b64("4")}])
        _, vals = self.read_json("b")
        self.assertEqual(vals, [b"4"])

    def test_delete_batch(self):
        self.fill(10)
        self.batch("POST", [], [{"pk": self.pk, "sk": "item00003", "v": b64("x")}])
        st, res = self.batch("POST", [("delete", None)], [
            {"partitionKey": self.pk, "start": "item00002", "end": "item00005"},
            {"partitionKey": self.pk, "singleItem": True, "start": "item00008"},
            {"partitionKey": self.pk, "singleItem": True, "start": "nothing"}])
        self.assertEqual(st, 200)
        self.assertEqual(list(res[0]), ["partitionKey", "prefix", "start", "end",
                                        "singleItem", "deletedItems"])
        self.assertEqual([r["deletedItems"] for r in res], [3, 1, 0])
        _, vals = self.read_json("item00003")
        self.assertEqual(vals, [None])       # both concurrent values were covered
        st, res = self.batch("POST", [("search", None)], [{"partitionKey": self.pk}])
        self.assertEqual([i["sk"] for i in res[0]["items"]],
                         ["item0000%d" % i for i in (0, 1, 5, 6, 7, 9)])
        st, res = self.batch("POST", [("delete", None)], [{"partitionKey": self.pk,
                                                           "prefix": "item0000"}])
        self.assertEqual(res[0]["deletedItems"], 6)
        st, res = self.batch("POST", [("delete", None)], [{"partitionKey": self.pk}])
        self.assertEqual(res[0]["deletedItems"], 0)

    def test_read_index(self):
        pfx = self.pk + "/"
        self.batch("POST", [], [{"pk": pfx + "a", "sk": "1", "v": b64("xyz")},
                                {"pk": pfx + "a", "sk": "2", "v": b64("ab")},
                                {"pk": pfx + "a", "sk": "2", "v": b64("c")},
                                {"pk": pfx + "b", "sk": "1", "v": b64("q")},
                                {"pk": pfx + "c", "sk": "1"}])
        st, h, body = self.k.request("GET", "/" + BUCKET, [("prefix", pfx)])
        self.assertEqual(st, 200)
        res = json.loads(body)
        self.assertEqual(list(res), ["prefix", "start", "end", "limit", "reverse",
                                     "partitionKeys", "more", "nextStart"])
        self.assertEqual(res["partitionKeys"], [
            {"pk": pfx + "a", "entries": 2, "conflicts": 1, "values": 3, "bytes": 6},
            {"pk": pfx + "b", "entries": 1, "conflicts": 0, "values": 1, "bytes": 1}])
        st, h, body = self.k.request("GET", "/" + BUCKET, [("prefix", pfx), ("limit", "1"),
                                                           ("reverse", "true")])
        res = json.loads(body)
        self.assertEqual([p["pk"] for p in res["partitionKeys"]], [pfx + "b"])
        self.assertEqual((res["more"], res["nextStart"]), (True, pfx + "a"))
        st, _, _ = self.k.request("GET", "/" + BUCKET, [("reverse", "yes")])
        self.assertEqual(st, 400)


class PollTests(Base):
    def test_poll_item_fires_on_change(self):
        self.insert("w", "1")
        ct, _ = self.read_json("w")
        out = {}

        def poll():
            c = EMU_MAIN.k2v()
            out["r"] = c.request("GET", self.item_path(),
                                 [("sort_key", "w"), ("causality_token", ct),
                                  ("timeout", "20")])
        t = threading.Thread(target=poll)
        t.start()
        self.wait_for_polls("PollItem", 1)
        # The poll must not block other requests.
        _, vals = self.read_json("w")
        self.assertEqual(vals, [b"1"])
        self.assertTrue(t.is_alive())
        self.insert("w", "2", ct=ct)
        t.join(20)
        self.assertFalse(t.is_alive())
        self.assertEqual(EMU_MAIN.stats()["waiting"]["PollItem"], 0)
        st, h, body = out["r"]
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(body), [b64("2")])
        self.assertNotEqual(h["x-garage-causality-token"], ct)

    def test_poll_item_returns_at_once_when_already_newer(self):
        self.insert("w", "1")
        ct, _ = self.read_json("w")
        self.insert("w", "2")
        st, _, body = self.k.request("GET", self.item_path(),
                                     [("sort_key", "w"), ("causality_token", ct)])
        self.assertEqual((st, json.loads(body)), (200, [b64("1"), b64("2")]))

    def test_poll_item_timeout_304_and_empty_token(self):
        self.insert("w", "1")
        ct, _ = self.read_json("w")
        st, h, body = self.k.request("GET", self.item_path(),
                                     [("sort_key", "w"), ("causality_token", ct),
                                      ("timeout", "1")])
        self.assertEqual((st, body), (304, b""))
        self.assertNotIn("x-garage-causality-token", h)
        st, _, body = self.k.request("GET", self.item_path(),
                                     [("sort_key", "w"), ("causality_token", "AAAAAAAAAAA"),
                                      ("timeout", "1")])
        self.assertEqual(st, 200)
        st, _, _ = self.k.request("GET", self.item_path(),
                                  [("sort_key", "new"), ("causality_token", "AAAAAAAAAAA"),
                                   ("timeout", "1")])
        self.assertEqual(st, 304)
        st, _, _ = self.k.request("GET", self.item_path(),
                                  [("sort_key", "w"), ("causality_token", ct),
                                   ("timeout", "x")])
        self.assertEqual(st, 400)
        st, _, body = self.k.request("GET", self.item_path(),
                                     [("sort_key", "w"), ("causality_token", "AAAA")])
        self.assertEqual((st, json.loads(body)["code"]), (400, "InvalidRequest"))

    def test_poll_range(self):
        self.batch("POST", [], [{"pk": self.pk, "sk": "a1", "v": b64("1")},
                                {"pk": self.pk, "sk": "a2"},
                                {"pk": self.pk, "sk": "b1", "v": b64("x")}])
        path = self.item_path()
        st, _, body = self.k.request("POST", path, [("poll_range", None)],
                                     json.dumps({"prefix": "a", "start": None, "end": None,
                                                 "seenMarker": None, "timeout": 5}).encode())
        self.assertEqual(st, 200)
        res = json.loads(body)
        self.assertEqual(list(res), ["items", "seenMarker"])
        self.assertEqual([i["sk"] for i in res["items"]], ["a1", "a2"])
        marker = res["seenMarker"]
        base64.b64decode(marker, validate=True)
        st, _, body = self.k.request("POST", path, [("poll_range", None)],
                                     json.dumps({"prefix": "a", "seenMarker": marker,
                                                 "timeout": 1}).encode())
        self.assertEqual((st, body), (304, b""))
        out = {}

        def poll():
            c = EMU_MAIN.k2v()
            out["r"] = c.request("SEARCH", path, [("poll_range", None)],
                                 json.dumps({"prefix": "a", "seenMarker": marker,
                                             "timeout": 20}).encode())
        t = threading.Thread(target=poll)
        t.start()
        self.wait_for_polls("PollRange", 1)
        self.insert("b2", "outside")            # not in the range: no wake-up
        time.sleep(0.2)
        self.assertTrue(t.is_alive())
        self.insert("a3", "new")
        t.join(20)
        st, _, body = out["r"]
        self.assertEqual(st, 200)
        res = json.loads(body)
        self.assertEqual([(i["sk"], i["v"]) for i in res["items"]], [("a3", [b64("new")])])
        # The new marker covers a3; an overwrite of a1 is new again.
        self.insert("a1", "again")
        st, _, body = self.k.request("POST", path, [("poll_range", None)],
                                     json.dumps({"prefix": "a", "seenMarker": res["seenMarker"],
                                                 "timeout": 5}).encode())
        self.assertEqual(st, 200)
        self.assertEqual([i["sk"] for i in json.loads(body)["items"]], ["a1"])
        st, _, body = self.k.request("POST", path, [("poll_range", None)],
                                     json.dumps({"seenMarker": "%%%"}).encode())
        self.assertEqual(st, 400)


class PollRangeQuirkTests(Base):
    def poll(self, payload):
        st, _, body = self.k.request("POST", self.item_path(), [("poll_range", None)],
                                     json.dumps(payload).encode())
        return st, (json.loads(body) if body else None)

    def test_prefix_without_start_stops_at_first_key(self):
        # Garage walks the partition from its first key and stops at the
        # first key outside the range: "0first" hides the "a" items.
        self.batch("POST", [], [{"pk": self.pk, "sk": "0first", "v": b64("x")},
                                {"pk": self.pk, "sk": "a1", "v": b64("1")}])
        st, res = self.poll({"prefix": "a"})
        self.assertEqual((st, res["items"]), (200, []))
        st, res2 = self.poll({"prefix": "a", "start": "a"})
        self.assertEqual([i["sk"] for i in res2["items"]], ["a1"])
        # A later write inside the range is still seen through the marker.
        out = {}

        def poll():
            c = EMU_MAIN.k2v()
            out["r"] = c.request("POST", self.item_path(), [("poll_range", None)],
                                 json.dumps({"prefix": "a", "seenMarker": res["seenMarker"],
                                             "timeout": 20}).encode())
        t = threading.Thread(target=poll)
        t.start()
        self.wait_for_polls("PollRange", 1)
        self.insert("a2", "2")
        t.join(20)
        st, _, body = out["r"]
        self.assertEqual(st, 200)
        self.assertEqual([i["sk"] for i in json.loads(body)["items"]], ["a2"])


class S3Tests(Base):
    def key(self, name):
        return "%s/%s" % (self.pk, name)

    def opath(self, name):
        return "/%s/%s" % (BUCKET, aws_encode(self.key(name), True))

    def put(self, name, data, headers=None):
        st, h, body = self.s.request("PUT", self.opath(name), (), data, headers)
        self.assertEqual(st, 200, body)
        return h

    def test_put_get_head_metadata(self):
        data = b"From: a@b\r\n\r\nhello world"
        h = self.put("m1", data, {"x-amz-meta-Flags": "Seen", "Content-Type": "message/rfc822",
                                  "Content-MD5": base64.b64encode(hashlib.md5(data).digest())
                                  .decode()})
        self.assertEqual(h["etag"], '"%s"' % hashlib.md5(data).hexdigest())
        self.assertEqual(len(h["x-amz-version-id"]), 64)
        st, h, body = self.s.request("GET", self.opath("m1"))
        self.assertEqual((st, body), (200, data))
        self.assertEqual(h["x-amz-meta-flags"], "Seen")
        self.assertEqual(h["content-type"], "message/rfc822")
        self.assertEqual(h["accept-ranges"], "bytes")
        self.assertIn("last-modified", h)
        st, h, body = self.s.request("HEAD", self.opath("m1"))
        self.assertEqual((st, body, h["content-length"]), (200, b"", str(len(data))))
        self.put("m2", b"x")
        st, h, _ = self.s.request("GET", self.opath("m2"))
        self.assertNotIn("content-type", h)
        st, h, body = self.s.request("PUT", self.opath("m3"), (), b"abc",
                                     {"Content-MD5": base64.b64encode(b"0" * 16).decode()})
        self.assertEqual(st, 400)
        self.assertIn(b"<Code>InvalidDigest</Code>", body)
        # x-amz-checksum-*: CRC-32C of "123456789" is e3069283.
        self.put("m4", b"123456789", {"x-amz-checksum-crc32c": base64.b64encode(
            bytes.fromhex("e3069283")).decode()})
        st, h, body = self.s.request("PUT", self.opath("m5"), (), b"123456789",
                                     {"x-amz-checksum-crc32": "AAAAAA=="})
        self.assertEqual(st, 400)
        self.assertIn(b"<Code>InvalidDigest</Code>", body)
        st, h, body = self.s.request("GET", self.opath("missing"))
        self.assertEqual(st, 404)
        self.assertTrue(body.startswith(b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>'
                                        b'NoSuchKey</Code>'))
        self.assertEqual(h["content-type"], "application/xml")
        st, h, body = self.s.request("HEAD", self.opath("missing"))
        self.assertEqual((st, body), (404, b""))
        st, _, _ = self.s.request("GET", "/other-bucket/x")
        self.assertEqual(st, 404)

    def test_ranges(self):
        data = bytes(range(100))
        self.put("r", data)
        for rng, want in (("bytes=10-19", data[10:20]), ("bytes=95-", data[95:]),
                          ("bytes=-5", data[95:]), ("bytes=90-200", data[90:])):
            st, h, body = self.s.request("GET", self.opath("r"), headers={"Range": rng})
            self.assertEqual((st, body), (206, want), rng)
            first = 100 - len(want) if rng != "bytes=10-19" else 10
            self.assertEqual(h["content-range"], "bytes %d-%d/100" % (first, first + len(want) - 1))
        st, h, body = self.s.request("GET", self.opath("r"), headers={"Range": "bytes=0-1,5-6"})
        self.assertEqual((st, body), (200, data))
        st, h, body = self.s.request("GET", self.opath("r"), headers={"Range": "bytes=100-"})
        self.assertEqual(st, 416)
        self.assertEqual(h["content-range"], "bytes */100")
        self.assertIn(b"<Code>InvalidRange</Code>", body)
        st, h, _ = self.s.request("GET", self.opath("r"),
                                  headers={"If-None-Match": '"%s"' % hashlib.md5(data).hexdigest()})
        self.assertEqual(st, 304)
        st, h, _ = self.s.request("GET", self.opath("r"), headers={"If-Match": '"nope"'})
        self.assertEqual(st, 412)

    def test_copy(self):
        self.put("src file", b"payload", {"Content-Type": "text/plain", "x-amz-meta-a": "1"})
        src = "/%s/%s" % (BUCKET, urllib.parse.quote(self.key("src file")))
        st, h, body = self.s.request("PUT", self.opath("dst1"), (), b"",
                                     {"x-amz-copy-source": src, "Content-Type": "ignored/x"})
        self.assertEqual(st, 200, body)
        root = ET.fromstring(body)
        self.assertEqual(root.tag, "CopyObjectResult")
        self.assertEqual([c.tag for c in root], ["LastModified", "ETag"])
        self.assertEqual(root.find("ETag").text, '"%s"' % hashlib.md5(b"payload").hexdigest())
        self.assertRegex(root.find("LastModified").text,
                         r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertIn("x-amz-copy-source-version-id", h)
        st, h, body = self.s.request("GET", self.opath("dst1"))
        self.assertEqual((body, h["content-type"], h["x-amz-meta-a"]),
                         (b"payload", "text/plain", "1"))
        st, h, body = self.s.request("PUT", self.opath("dst2"), (), b"",
                                     {"x-amz-copy-source": src[1:], "Content-Type": "new/y",
                                      "x-amz-metadata-directive": "REPLACE"})
        self.assertEqual(st, 200)
        st, h, body = self.s.request("GET", self.opath("dst2"))
        self.assertEqual((body, h["content-type"]), (b"payload", "new/y"))
        self.assertNotIn("x-amz-meta-a", h)
        st, h, body = self.s.request("PUT", self.opath("dst3"), (), b"",
                                     {"x-amz-copy-source": "/%s/nothing" % BUCKET})
        self.assertEqual(st, 404)
        # Copies share the bytes: they survive the source's deletion, and
        # rewriting an object with the same bytes keeps them.
        self.s.request("DELETE", self.opath("src file"))
        self.put("dst1", b"payload")
        for name in ("dst1", "dst2"):
            st, h, body = self.s.request("GET", self.opath(name))
            self.assertEqual((st, body), (200, b"payload"))

    def test_list_pagination_and_delimiter(self):
        names = ["a/%03d" % i for i in range(25)] + ["b/x", "b/y", "c", "d/z"]
        for n in names:
            self.put(n, n.encode())
        pfx = self.pk + "/"
        seen = []
        token = None
        pages = 0
        while True:
            q = [("list-type", "2"), ("prefix", pfx), ("max-keys", "10")]
            if token:
                q.append(("continuation-token", token))
            st, h, body = self.s.request("GET", "/" + BUCKET, q)
            self.assertEqual(st, 200, body)
            root = ET.fromstring(body)
            tags = [c.tag.replace(S3NS, "") for c in root]
            base = ["Name", "Prefix"] + (["ContinuationToken"] if token else [])
            trunc = root.find(S3NS + "IsTruncated").text == "true"
            base += (["NextContinuationToken"] if trunc else []) + ["KeyCount", "MaxKeys",
                                                                     "IsTruncated"]
            self.assertEqual([t for t in tags if t != "Contents"], base)
            keys = [c.find(S3NS + "Key").text for c in root.findall(S3NS + "Contents")]
            self.assertEqual(int(root.find(S3NS + "KeyCount").text), len(keys))
            seen += keys
            pages += 1
            if not trunc:
                break
            token = root.find(S3NS + "NextContinuationToken").text
        self.assertEqual(pages, 3)
        self.assertEqual(seen, [pfx + n for n in sorted(names)])
        st, h, body = self.s.request("GET", "/" + BUCKET, [("list-type", "2"), ("prefix", pfx),
                                                           ("delimiter", "/")])
        root = ET.fromstring(body)
        self.assertEqual([c.find(S3NS + "Key").text for c in root.findall(S3NS + "Contents")],
                         [pfx + "c"])
        self.assertEqual([c.find(S3NS + "Prefix").text
                          for c in root.findall(S3NS + "CommonPrefixes")],
                         [pfx + "a/", pfx + "b/", pfx + "d/"])
        self.assertEqual(root.find(S3NS + "KeyCount").text, "4")
        # Common prefixes count against max-keys and paginate too.
        st, h, body = self.s.request("GET", "/" + BUCKET, [("list-type", "2"), ("prefix", pfx),
                                                           ("delimiter", "/"), ("max-keys", "2")])
        root = ET.fromstring(body)
        self.assertEqual(root.find(S3NS + "IsTruncated").text, "true")
        tok = root.find(S3NS + "NextContinuationToken").text
        st, h, body = self.s.request("GET", "/" + BUCKET, [("list-type", "2"), ("prefix", pfx),
                                                           ("delimiter", "/"), ("max-keys", "2"),
                                                           ("continuation-token", tok)])
        root = ET.fromstring(body)
        self.assertEqual([c.find(S3NS + "Key").text for c in root.findall(S3NS + "Contents")],
                         [pfx + "c"])
        self.assertEqual([c.find(S3NS + "Prefix").text
                          for c in root.findall(S3NS + "CommonPrefixes")], [pfx + "d/"])
        # max-keys=0 is clamped to 1; start-after.
        st, h, body = self.s.request("GET", "/" + BUCKET, [("list-type", "2"), ("prefix", pfx),
                                                           ("max-keys", "0"),
                                                           ("start-after", pfx + "a/023")])
        root = ET.fromstring(body)
        self.assertEqual(root.find(S3NS + "MaxKeys").text, "1")
        self.assertEqual(root.find(S3NS + "StartAfter").text, pfx + "a/023")
        self.assertEqual([c.find(S3NS + "Key").text for c in root.findall(S3NS + "Contents")],
                         [pfx + "a/024"])
        st, _, _ = self.s.request("GET", "/" + BUCKET, [("list-type", "1")])
        self.assertEqual(st, 400)

    def test_delete_and_delete_objects(self):
        st, _, body = self.s.request("DELETE", self.opath("never"))
        self.assertEqual((st, body), (204, b""))
        for n in ("d1", "d2", "d3"):
            self.put(n, b"x")
        st, _, _ = self.s.request("DELETE", self.opath("d3"))
        self.assertEqual(st, 204)
        xml_body = ('<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                    '<Object><Key>%s</Key></Object><Object><Key>%s</Key></Object>'
                    '</Delete>' % (self.key("d1"), self.key("nope"))).encode()
        st, h, body = self.s.request("POST", "/" + BUCKET, [("delete", None)], xml_body)
        self.assertEqual(st, 200, body)
        root = ET.fromstring(body)
        self.assertEqual(root.tag, S3NS + "DeleteResult")
        self.assertEqual([d.find(S3NS + "Key").text for d in root.findall(S3NS + "Deleted")],
                         [self.key("d1")])
        errs = root.findall(S3NS + "Error")
        self.assertEqual([(e.find(S3NS + "Code").text, e.find(S3NS + "Key").text)
                          for e in errs], [("NoSuchKey", self.key("nope"))])
        # Quiet: errors only.
        quiet = ('<Delete><Object><Key>%s</Key></Object><Object><Key>%s</Key></Object>'
                 '<Quiet>true</Quiet></Delete>' % (self.key("d2"), self.key("d1"))).encode()
        st, h, body = self.s.request("POST", "/" + BUCKET, [("delete", None)], quiet)
        root = ET.fromstring(body)
        self.assertEqual(root.findall(S3NS + "Deleted"), [])
        self.assertEqual(len(root.findall(S3NS + "Error")), 1)
        st, _, _ = self.s.request("GET", self.opath("d2"))
        self.assertEqual(st, 404)
        # Whitespace between elements is rejected, like Garage's strict parser.
        self.put("d4", b"x")
        pretty = ('<Delete>\n  <Object><Key>%s</Key></Object>\n</Delete>'
                  % self.key("d4")).encode()
        st, h, body = self.s.request("POST", "/" + BUCKET, [("delete", None)], pretty)
        self.assertEqual(st, 400)
        self.assertIn(b"<Code>InvalidRequest</Code>", body)
        self.assertIn(b"Invalid delete XML query", body)
        st, _, _ = self.s.request("GET", self.opath("d4"))
        self.assertEqual(st, 200)
        st, _, _ = self.s.request("POST", "/" + BUCKET, [("delete", None)],
                                  b"<Delete><Object><Key></Key></Object></Delete>")
        self.assertEqual(st, 400)


class SigV4Tests(Base):
    def test_good_request_and_unsigned_payload(self):
        st, _, _ = self.s.request("PUT", "/%s/%s/u" % (BUCKET, self.pk), (), b"data",
                                  payload_hash="UNSIGNED-PAYLOAD")
        self.assertEqual(st, 200)

    def test_bad_signature(self):
        bad = Client(EMU_MAIN.k2v_port, "k2v", secret="0" * 64)
        st, _, body = bad.request("GET", self.item_path(), [("sort_key", "a")])
        bad.close()
        self.assertEqual(st, 403)
        err = json.loads(body)
        self.assertEqual(err["code"], "AccessDenied")
        self.assertIn("Invalid signature", err["message"])
        bad = Client(EMU_MAIN.s3_port, "s3", secret="0" * 64)
        st, _, body = bad.request("GET", "/%s/x" % BUCKET)
        bad.close()
        self.assertEqual(st, 403)
        self.assertIn(b"<Code>AccessDenied</Code>", body)

    def test_k2v_double_encoding(self):
        pk = "INBOX Sent"
        self.insert("a", "v", pk=pk)
        wire = "/%s/INBOX%%20Sent" % BUCKET
        # Signing the wire path instead of its re-encoding must fail for K2V.
        st, _, _ = self.k.request("GET", wire, [("sort_key", "a")], canon_uri=wire)
        self.assertEqual(st, 403)
        st, _, _ = self.k.request("GET", wire, [("sort_key", "a")],
                                  canon_uri="/%s/INBOX%%2520Sent" % BUCKET)
        self.assertEqual(st, 200)
        st, _, _ = self.k.request("GET", wire, [("sort_key", "a")])
        self.assertEqual(st, 200)

    def test_old_date_unknown_key_no_auth(self):
        old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=25)
        st, _, body = self.k.request("GET", self.item_path(), [("sort_key", "a")], date=old)
        self.assertEqual(st, 400)
        self.assertIn("Date is too old", json.loads(body)["message"])
        future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=2)
        self.insert("a", "v")
        st, _, _ = self.k.request("GET", self.item_path(), [("sort_key", "a")], date=future)
        self.assertEqual(st, 200)
        other = Client(EMU_MAIN.k2v_port, "k2v", key_id="GK" + "f" * 24)
        st, _, body = other.request("GET", self.item_path(), [("sort_key", "a")])
        other.close()
        self.assertEqual((st, json.loads(body)["code"]), (403, "AccessDenied"))
        st, _, body = self.k.request("GET", self.item_path(), [("sort_key", "a")], sign=False)
        self.assertEqual(st, 403)
        st, _, body = self.k.request("GET", self.item_path(), [("sort_key", "a")],
                                     scope_region="us-east-1")
        self.assertEqual((st, json.loads(body)["code"]), (400, "AuthorizationHeaderMalformed"))

    def test_unsigned_amz_header_and_payload_hash(self):
        st, _, body = self.s.request("PUT", "/%s/%s/h" % (BUCKET, self.pk), (), b"x",
                                     {"x-amz-meta-secret": "1"},
                                     unsigned_headers=["x-amz-meta-secret"])
        self.assertEqual(st, 400)
        self.assertIn(b"<Code>InvalidRequest</Code>", body)
        st, _, body = self.k.request("PUT", self.item_path(), [("sort_key", "p")], b"abc",
                                     payload_hash=sha256_hex(b"abd"))
        self.assertEqual(st, 400)
        self.assertEqual(json.loads(body)["code"], "InvalidDigest")
        st, _, _ = self.read("p")
        self.assertEqual(st, 404)
        st, _, body = self.s.request("PUT", "/%s/%s/h" % (BUCKET, self.pk), (), b"x",
                                     unsigned_headers=["host"])
        self.assertEqual(st, 400)


class PresignTests(Base):
    def presign(self, method, path, expires=300, secret=SECRET, age=0):
        now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=age)
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        scope = "%s/%s/s3/aws4_request" % (amz_date[:8], REGION)
        q = [("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
             ("X-Amz-Credential", "%s/%s" % (KEY_ID, scope)),
             ("X-Amz-Date", amz_date), ("X-Amz-Expires", str(expires)),
             ("X-Amz-SignedHeaders", "host")]
        canon_q = "&".join(sorted(aws_encode(k, False) + "=" + aws_encode(v, False)
                                  for k, v in q))
        creq = "\n".join([method, path, canon_q, "host:127.0.0.1:%d\n" % EMU_MAIN.s3_port,
                          "host", "UNSIGNED-PAYLOAD"])
        sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, sha256_hex(creq.encode())])
        sig = hmac.new(sign_key(secret, amz_date[:8], REGION, "s3"), sts.encode(),
                       hashlib.sha256).hexdigest()
        return canon_q + "&X-Amz-Signature=" + sig

    def test_presigned_get(self):
        path = "/%s/%s/obj" % (BUCKET, self.pk)
        self.s.request("PUT", path, (), b"shared")
        st, _, body = self.s.request("GET", path, sign=False, raw_query=self.presign("GET", path))
        self.assertEqual((st, body), (200, b"shared"))
        st, _, body = self.s.request("GET", path, sign=False,
                                     raw_query=self.presign("GET", path, secret="1" * 64))
        self.assertEqual(st, 403)
        st, _, body = self.s.request("GET", path, sign=False,
                                     raw_query=self.presign("GET", path, expires=60, age=120))
        self.assertEqual(st, 400)
        self.assertIn(b"Date is too old", body)


class ConcurrencyTests(Base):
    def test_many_connections_and_siblings(self):
        errors = []

        def writer(i):
            try:
                c = EMU_MAIN.k2v()
                for j in range(5):
                    st, _, _ = c.request("PUT", self.item_path(), [("sort_key", "shared")],
                                         b"w%d-%d" % (i, j))
                    if st != 204:
                        errors.append(st)
            except Exception as e:    # reported below
                errors.append(e)
        threads = [threading.Thread(target=writer, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        _, vals = self.read_json("shared")
        self.assertEqual(sorted(vals), sorted(b"w%d-%d" % (i, j)
                                              for i in range(16) for j in range(5)))


class ShutdownTests(unittest.TestCase):
    def test_sigterm_with_idle_connection_and_pending_poll(self):
        emu = Emu()
        k = emu.k2v()
        st, _, _ = k.request("PUT", "/%s/p" % BUCKET, [("sort_key", "a")], b"v")
        self.assertEqual(st, 204)
        poller = emu.k2v()

        def poll():
            try:
                poller.request("GET", "/%s/p" % BUCKET, [("sort_key", "b"),
                                                         ("causality_token", "AAAAAAAAAAA")])
            except Exception:
                pass                  # the connection dies with the emulator
        t = threading.Thread(target=poll, daemon=True)
        t.start()
        time.sleep(0.3)
        # k keeps its keep-alive connection open while the emulator stops.
        emu.proc.send_signal(signal.SIGTERM)
        self.assertEqual(emu.proc.wait(timeout=10), 0)
        emu.stop()
        t.join(10)


class StatsTests(Base):
    def test_counters(self):
        self.assertEqual(EMU_MAIN.reset_stats(), 204)
        self.insert("s", "1")
        self.read("s")
        self.read("s")
        self.batch("POST", [("search", None)], [{"partitionKey": self.pk}])
        self.s.request("PUT", "/%s/%s/s" % (BUCKET, self.pk), (), b"x")
        self.s.request("GET", "/%s" % BUCKET, [("list-type", "2")])
        st = EMU_MAIN.stats()
        ep = st["endpoints"]
        self.assertEqual(set(ep), {"ReadItem", "InsertItem", "DeleteItem", "ReadBatch",
                                   "InsertBatch", "DeleteBatch", "ReadIndex", "PollItem",
                                   "PollRange", "GetObject", "HeadObject", "PutObject",
                                   "CopyObject", "DeleteObject", "DeleteObjects",
                                   "ListObjectsV2"})
        self.assertEqual((ep["InsertItem"], ep["ReadItem"], ep["ReadBatch"], ep["PutObject"],
                          ep["ListObjectsV2"], ep["GetObject"]), (1, 2, 1, 1, 1, 0))
        self.assertEqual(st["total"], 6)
        self.assertEqual(EMU_MAIN.stats()["total"], 6)   # the stats call is not counted


class FaultTests(unittest.TestCase):
    def run_sequence(self, seed):
        emu = Emu("--fail-rate", "0.4", "--seed", str(seed))
        try:
            k = emu.k2v()
            statuses = []
            for i in range(30):
                st, _, body = k.request("PUT", "/%s/f" % BUCKET, [("sort_key", "k%d" % i)], b"v")
                statuses.append(st)
                if st == 503:
                    self.assertEqual(json.loads(body)["code"], "ServiceUnavailable")
            s3 = emu.s3()
            st, _, body = s3.request("GET", "/%s/x" % BUCKET)
            s3_status = st
            if st == 503:
                self.assertIn(b"<Code>ServiceUnavailable</Code>", body)
            # A failed write was not applied.
            st, res = None, None
            for _ in range(50):
                st, _, body = k.request("POST", "/" + BUCKET, [("search", None)],
                                        json.dumps([{"partitionKey": "f"}]).encode())
                if st == 200:
                    res = json.loads(body)
                    break
            written = {it["sk"] for it in res[0]["items"]}
            want = {"k%d" % i for i, s in enumerate(statuses) if s == 204}
            self.assertEqual(written, want)
            stats = emu.stats()
            self.assertEqual(stats["faults"]["fail"],
                             statuses.count(503) + (s3_status == 503)
                             + stats["endpoints"]["ReadBatch"] - 1)
            return statuses
        finally:
            self.assertEqual(emu.stop(), 0)

    def test_fail_rate_is_reproducible_and_not_applied(self):
        a = self.run_sequence(7)
        b = self.run_sequence(7)
        self.assertEqual(a, b)
        self.assertIn(503, a)
        self.assertIn(204, a)

    def test_reset_and_latency(self):
        emu = Emu("--reset-rate", "1", "--latency-ms", "150")
        try:
            k = emu.k2v()
            with self.assertRaises((ConnectionError, http.client.HTTPException, OSError)):
                k.request("PUT", "/%s/f" % BUCKET, [("sort_key", "a")], b"v")
            self.assertEqual(emu.stats()["faults"]["reset"], 1)
        finally:
            self.assertEqual(emu.stop(), 0)
        emu = Emu("--latency-ms", "150")
        try:
            k = emu.k2v()
            t0 = time.monotonic()
            st, _, _ = k.request("PUT", "/%s/f" % BUCKET, [("sort_key", "a")], b"v")
            self.assertEqual(st, 204)
            self.assertGreaterEqual(time.monotonic() - t0, 0.15)
        finally:
            self.assertEqual(emu.stop(), 0)

    def test_fail_after_apply(self):
        emu = Emu("--fail-after-apply-rate", "1")
        try:
            k = emu.k2v()
            st, _, _ = k.request("PUT", "/%s/f" % BUCKET, [("sort_key", "a")], b"v")
            self.assertEqual(st, 503)
        finally:
            self.assertEqual(emu.stop(), 0)


class TombstoneGcTests(unittest.TestCase):
    def test_tombstone_only_items_disappear(self):
        emu = Emu("--tombstone-gc-seconds", "0.5")
        try:
            k = emu.k2v()
            path = "/%s/gc" % BUCKET
            for sk in ("dead", "alive", "mixed"):
                k.request("PUT", path, [("sort_key", sk)], b"v")
            st, h, _ = k.request("GET", path, [("sort_key", "dead")])
            k.request("DELETE", path, [("sort_key", "dead")],
                      headers={"X-Garage-Causality-Token": h["x-garage-causality-token"]})
            k.request("DELETE", path, [("sort_key", "mixed")])
            st, _, body = k.request("GET", path, [("sort_key", "dead")])
            self.assertEqual((st, json.loads(body)), (200, [None]))
            deadline = time.monotonic() + 30
            while st != 404 and time.monotonic() < deadline:
                time.sleep(0.2)
                st, _, _ = k.request("GET", path, [("sort_key", "dead")])
            self.assertEqual(st, 404)
            st, _, body = k.request("POST", "/" + BUCKET, [("search", None)],
                                    json.dumps([{"partitionKey": "gc",
                                                 "tombstones": True}]).encode())
            self.assertEqual([i["sk"] for i in json.loads(body)[0]["items"]],
                             ["alive", "mixed"])
        finally:
            self.assertEqual(emu.stop(), 0)


class CommandModeTests(unittest.TestCase):
    def test_runs_command_and_returns_its_status(self):
        script = ("import json, os, sys, urllib.request\n"
                  "port = os.environ['GARAGE_EMU_K2V_PORT']\n"
                  "assert sys.argv[1] == port, sys.argv\n"
                  "assert os.environ['GARAGE_EMU_BUCKET'] == %r\n"
                  "url = 'http://127.0.0.1:%%s/_emu/stats' %% port\n"
                  "stats = json.load(urllib.request.urlopen(url))\n"
                  "sys.exit(5 if stats['total'] == 0 else 1)\n" % BUCKET)
        r = subprocess.run([sys.executable, EMU, "--k2v-port", "0", "--s3-port", "0",
                            "--bucket", BUCKET, "--key-id", KEY_ID, "--secret", SECRET,
                            "--", sys.executable, "-c", script, "{k2v_port}"],
                           stdout=subprocess.PIPE, timeout=60)
        self.assertTrue(r.stdout.startswith(b"ready k2v="), r.stdout)
        self.assertEqual(r.returncode, 5)


class PersistenceTests(unittest.TestCase):
    def test_restart_keeps_data(self):
        d = tempfile.mkdtemp(prefix="garage-emu-test-")
        try:
            emu = Emu("--data-dir", d)
            k, s = emu.k2v(), emu.s3()
            k.request("PUT", "/%s/p" % BUCKET, [("sort_key", "a")], b"one")
            k.request("PUT", "/%s/p" % BUCKET, [("sort_key", "a")], b"two")
            s.request("PUT", "/%s/obj" % BUCKET, (), b"blob bytes", {"x-amz-meta-x": "y"})
            s.request("PUT", "/%s/gone" % BUCKET, (), b"gone")
            s.request("DELETE", "/%s/gone" % BUCKET)
            st, h, _ = k.request("GET", "/%s/p" % BUCKET, [("sort_key", "a")])
            ct = h["x-garage-causality-token"]
            self.assertEqual(emu.stop(), 0)
            emu = Emu("--data-dir", d)
            k, s = emu.k2v(), emu.s3()
            st, h, body = k.request("GET", "/%s/p" % BUCKET, [("sort_key", "a")])
            self.assertEqual((st, json.loads(body)), (200, [b64("one"), b64("two")]))
            self.assertEqual(h["x-garage-causality-token"], ct)
            st, h, body = s.request("GET", "/%s/obj" % BUCKET)
            self.assertEqual((st, body, h["x-amz-meta-x"]), (200, b"blob bytes", "y"))
            st, _, _ = s.request("GET", "/%s/gone" % BUCKET)
            self.assertEqual(st, 404)
            # New writes get larger timestamps than the restored ones.
            k.request("PUT", "/%s/p" % BUCKET, [("sort_key", "a")], b"three",
                      {"X-Garage-Causality-Token": ct})
            st, h, body = k.request("GET", "/%s/p" % BUCKET, [("sort_key", "a")])
            self.assertEqual(json.loads(body), [b64("three")])
            self.assertEqual(emu.stop(), 0)
        finally:
            shutil.rmtree(d)


class StrictDecodingTests(Base):
    """Garage's serde structs and base64 crate, not Python's leniency."""

    def read_batch(self, queries):
        return self.batch("POST", [("search", None)], queries)

    def test_null_booleans_refused_null_options_accepted(self):
        for field in ("reverse", "singleItem", "conflictsOnly", "tombstones"):
            st, res = self.read_batch([{"partitionKey": self.pk, field: None}])
            self.assertEqual(st, 400, field)
            self.assertEqual(res["code"], "InvalidRequest")
            self.assertIn("null", res["message"])
        st, res = self.batch("POST", [("delete", None)],
                             [{"partitionKey": self.pk, "singleItem": None}])
        self.assertEqual(st, 400)
        for field in ("prefix", "start", "end", "limit"):
            st, _ = self.read_batch([{"partitionKey": self.pk, field: None}])
            self.assertEqual(st, 200, field)
        st, res = self.read_batch([{"partitionKey": None}])
        self.assertEqual(st, 400)
        st, _ = self.batch("POST", [], [{"pk": self.pk, "sk": "a", "ct": None, "v": None}])
        self.assertEqual(st, 204)

    def test_duplicate_field_and_json_extensions_refused(self):
        body = ('[{"partitionKey": "%s", "reverse": false, "reverse": true}]' % self.pk).encode()
        st, _, raw = self.k.request("POST", "/" + BUCKET, [("search", None)], body)
        self.assertEqual(st, 400, raw)
        # An unknown field may repeat, as serde ignores it.
        body = ('[{"partitionKey": "%s", "x": 1, "x": 2}]' % self.pk).encode()
        st, _, _ = self.k.request("POST", "/" + BUCKET, [("search", None)], body)
        self.assertEqual(st, 200)
        for bad in ('[{"partitionKey": "%s", "limit": NaN}]' % self.pk,
                    '[{"partitionKey": "\\ud800"}]', '[{"partitionKey": "p", "limit": 1.0}]'):
            st, _, _ = self.k.request("POST", "/" + BUCKET, [("search", None)], bad.encode())
            self.assertEqual(st, 400, bad)

    def test_non_canonical_base64_refused(self):
        st, _ = self.batch("POST", [], [{"pk": self.pk, "sk": "a", "v": "QQ=="}])
        self.assertEqual(st, 204)
        for v in ("QR==", "QQ", "QQ=", "QUI=x", " QQ==", "QUJ="):
            st, res = self.batch("POST", [], [{"pk": self.pk, "sk": "a", "v": v}])
            self.assertEqual(st, 400, v)
            self.assertEqual(res["code"], "InvalidRequest")
        # A 40-byte token is 54 characters with 2 trailing bits: set one.
        tok = encode_token({1: 2, 3: 4})
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        bad = tok[:-1] + alphabet[alphabet.index(tok[-1]) | 1]
        self.assertNotEqual(bad, tok)
        st, _, body = self.k.request("PUT", self.item_path(), [("sort_key", "t")], b"x",
                                     {"X-Garage-Causality-Token": bad})
        self.assertEqual(st, 400)
        self.assertEqual(json.loads(body)["code"], "CausalityToken")
        self.insert("t", "x", ct=tok)
        st, _, body = self.k.request("POST", self.item_path(), [("poll_range", None)],
                                     json.dumps({"seenMarker": "e30"}).encode())
        self.assertEqual(st, 400)


class ReplicaTests(unittest.TestCase):
    """--replicas 3: quorums, lag, per-replica filtering, partial writes.

    Deterministic through --test-control: hold replication, pin the replicas
    a write reaches before its answer and those a read asks."""

    @classmethod
    def setUpClass(cls):
        cls.emu = Emu("--replicas", "3", "--replica-lag-ms", "50", "--seed", "3",
                      "--test-control")
        cls.k = cls.emu.k2v()

    @classmethod
    def tearDownClass(cls):
        assert cls.emu.stop() == 0

    def setUp(self):
        self.pk = self._testMethodName
        self.control(hold=False, flush=True, write=None, read=None, fail_next=None)

    def control(self, **req):
        conn = http.client.HTTPConnection("127.0.0.1", self.emu.k2v_port, timeout=10)
        conn.request("POST", "/_emu/cluster", json.dumps(req).encode())
        r = conn.getresponse()
        body = r.read()
        conn.close()
        self.assertEqual(r.status, 200, body)
        return json.loads(body)

    def replica(self, i):
        conn = http.client.HTTPConnection("127.0.0.1", self.emu.k2v_port, timeout=10)
        conn.request("GET", "/_emu/replica?i=%d&pk=%s" % (i, urllib.parse.quote(self.pk)))
        r = conn.getresponse()
        data = json.loads(r.read())
        conn.close()
        return data

    def put(self, items, status=204):
        st, _, body = self.k.request("POST", "/" + BUCKET, [],
                                     json.dumps([dict(pk=self.pk, **i) for i in items]).encode())
        self.assertEqual(st, status, body)

    def search(self, queries):
        st, _, body = self.k.request("POST", "/" + BUCKET, [("search", None)],
                                     json.dumps([dict(partitionKey=self.pk, **q)
                                                 for q in queries]).encode())
        self.assertEqual(st, 200, body)
        return json.loads(body)

    def test_control_is_off_by_default(self):
        conn = http.client.HTTPConnection("127.0.0.1", EMU_MAIN.k2v_port, timeout=10)
        conn.request("POST", "/_emu/cluster", b"{}")
        self.assertEqual(conn.getresponse().status, 404)
        conn.close()

    def test_write_quorum_then_lag(self):
        state = self.control(hold=True)
        self.assertEqual((state["replicas"], state["read_quorum"], state["write_quorum"]),
                         (3, 2, 2))
        self.put([{"sk": "a", "v": b64("1")}])
        have = [i for i in range(3) if "a" in self.replica(i)]
        self.assertEqual(len(have), 2)           # acknowledged at the write quorum
        self.assertEqual(self.control()["pending"], 1)
        self.control(hold=False)                 # the third one within 50 ms
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.control()["pending"]:
            time.sleep(0.01)
        self.assertEqual([i for i in range(3) if "a" in self.replica(i)], [0, 1, 2])
        # The coordinator's node id is in the token: replicas write under their own.
        ids = set()
        for i in range(20):
            self.control(write=[i % 3, (i + 1) % 3])
            self.put([{"sk": "n%d" % i, "v": b64("x")}])
            ids |= set(decode_token(self.replica(i % 3)["n%d" % i]["ct"]))
        self.assertEqual(len(ids), 3)

    def test_partly_applied_write_and_paged_read_skips_it(self):
        self.put([{"sk": k, "v": b64(k)} for k in ("a", "b", "c", "d", "e")])
        self.control(flush=True)
        # A write answered 503 that reached replica 2 only.
        self.control(fail_next=[2])
        self.put([{"sk": "bb", "v": b64("bb")}], status=503)
        self.assertEqual(["bb" in self.replica(i) for i in range(3)], [False, False, True])
        # Page 1 asks replicas 0 and 1: a, b, more from c.  Page 2 asks 1
        # and 2 from c: "bb" sorts before c, so the paged read never sees it.
        self.control(read=[0, 1])
        p1 = self.search([{"limit": 2}])[0]
        self.assertEqual(([i["sk"] for i in p1["items"]], p1["more"], p1["nextStart"]),
                         (["a", "b"], True, "c"))
        self.control(read=[1, 2])
        p2 = self.search([{"start": p1["nextStart"]}])[0]
        seen = [i["sk"] for i in p1["items"] + p2["items"]]
        self.assertEqual(seen, ["a", "b", "c", "d", "e"])
        # One unpaged read from the same replicas has it.
        self.assertIn("bb", [i["sk"] for i in self.search([{}])[0]["items"]])
        # Anti-entropy brings it everywhere.
        self.control(read=None, sync=True)
        self.assertEqual(["bb" in self.replica(i) for i in range(3)], [True, True, True])

    def test_random_partial_failures(self):
        emu = Emu("--replicas", "3", "--fail-rate", "0.5", "--seed", "5", "--test-control")
        try:
            k = emu.k2v()
            status = {}
            for i in range(24):
                st, _, _ = k.request("PUT", "/%s/f" % BUCKET, [("sort_key", "k%02d" % i)], b"v")
                status["k%02d" % i] = st
            conn = http.client.HTTPConnection("127.0.0.1", emu.k2v_port, timeout=10)
            conn.request("POST", "/_emu/cluster", b'{"sync": true}')
            conn.getresponse().read()
            conn.request("GET", "/_emu/replica?i=0&pk=f")
            present = set(json.loads(conn.getresponse().read()))
            conn.close()
            ok = {s for s, st in status.items() if st == 204}
            failed = {s for s, st in status.items() if st == 503}
            self.assertTrue(ok <= present)
            self.assertTrue(failed & present, "no failed write was applied anywhere")
            self.assertTrue(failed - present, "every failed write was applied")
        finally:
            self.assertEqual(emu.stop(), 0)

    def test_hidden_tombstone_resurrects_from_stale_replica(self):
        self.put([{"sk": "x", "v": b64("old")}, {"sk": "y", "v": b64("y")}])
        self.control(flush=True)
        ct = self.replica(0)["x"]["ct"]
        self.control(hold=True, write=[0, 1])
        self.put([{"sk": "x", "ct": ct, "v": None}])       # delete on 0 and 1
        self.control(read=[1, 2])
        res = self.search([{}, {"tombstones": True}, {"singleItem": True, "start": "x"},
                           {"singleItem": True, "start": "x", "tombstones": True}])
        # Replica 1 hides its tombstone, replica 2 still has the value: back.
        self.assertEqual([(i["sk"], i["v"]) for i in res[0]["items"]],
                         [("x", [b64("old")]), ("y", [b64("y")])])
        # Asked for tombstones, both answer x and the merge is the deletion.
        self.assertEqual([(i["sk"], i["v"]) for i in res[1]["items"]],
                         [("x", [None]), ("y", [b64("y")])])
        # Single items are merged first, then filtered.
        self.assertEqual(res[2]["items"], [])
        self.assertEqual(res[3]["items"][0]["v"], [None])
        # Those reads found differing copies: the repair waits in the queue.
        self.assertGreater(self.control()["pending"], 0)
        self.control(flush=True)
        self.assertEqual([i["sk"] for i in self.search([{}])[0]["items"]], ["y"])

    def test_batch_queries_are_separate_quorum_reads(self):
        self.control(fail_next=[0])
        self.put([{"sk": "x", "v": b64("x")}], status=503)      # on replica 0 only
        outcomes = set()
        for _ in range(30):
            res = self.search([{"singleItem": True, "start": "x"}] * 2)
            outcomes.add(tuple(len(r["items"]) for r in res))
        # Each query asks its own random quorum: some batches disagree.
        self.assertIn((1, 0), outcomes)
        self.assertIn((0, 1), outcomes)

    def test_poll_item_needs_a_read_quorum_of_newer_copies(self):
        self.control(fail_next=[1])
        self.put([{"sk": "p", "v": b64("1")}], status=503)      # on replica 1 only
        path = "/%s/%s" % (BUCKET, self.pk)
        st, _, _ = self.k.request("GET", path, [("sort_key", "p"),
                                                ("causality_token", "AAAAAAAAAAA"),
                                                ("timeout", "1")])
        self.assertEqual(st, 304)
        self.control(sync=True)
        st, _, body = self.k.request("GET", path, [("sort_key", "p"),
                                                   ("causality_token", "AAAAAAAAAAA"),
                                                   ("timeout", "1")])
        self.assertEqual((st, json.loads(body)), (200, [b64("1")]))

    def test_poll_range_answers_from_the_replicas_it_hears(self):
        path = "/%s/%s" % (BUCKET, self.pk)
        st, _, body = self.k.request("POST", path, [("poll_range", None)], b"{}")
        marker = json.loads(body)["seenMarker"]
        self.control(fail_next=[2])
        self.put([{"sk": "r", "v": b64("1")}], status=503)      # on replica 2 only
        self.control(read=[0, 1])
        st, _, _ = self.k.request("POST", path, [("poll_range", None)],
                                  json.dumps({"seenMarker": marker, "timeout": 1}).encode())
        self.assertEqual(st, 304)
        self.control(read=[1, 2])
        st, _, body = self.k.request("POST", path, [("poll_range", None)],
                                     json.dumps({"seenMarker": marker, "timeout": 1}).encode())
        self.assertEqual(st, 200)
        self.assertEqual([i["sk"] for i in json.loads(body)["items"]], ["r"])


if __name__ == "__main__":
    unittest.main()
