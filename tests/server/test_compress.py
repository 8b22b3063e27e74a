"""COMPRESS=DEFLATE (RFC 4978) through a real aerogramd: a client that
deflates what it sends and inflates what it reads (raw deflate, zlib with
wbits=-15) logs in, selects, fetches a large message, IDLEs while another
connection appends, APPENDs with both kinds of literal; COMPRESS repeated
(NO [COMPRESSIONACTIVE]), with an unknown mechanism or before login (BAD,
the connection lives); COMPRESS over STARTTLS, STARTTLS after it refused;
a corrupt compressed stream ends only its own connection. Run by
`make check-server`."""
import base64
import os
import sys
import time
import unittest
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from agtest import IO_TIMEOUT, Raw, Server  # noqa: E402

USERS = {"u": "{PLAIN}pw", "v": "{PLAIN}pw"}


class Deflated(Raw):
    """Raw, plus COMPRESS: once `compress()` is called every byte sent is
    deflated (flushed after each send) and every byte read inflated. The
    compressed byte counts are kept to show that compression happens."""

    def __init__(self, port, **kw):
        super().__init__(port, **kw)
        self.zout = None
        self.zin = None
        self.wire_in = 0

    def compress(self):
        # whatever followed the tagged OK in the same read is compressed already
        self.zout = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.zin = zlib.decompressobj(-15)
        pending, self.buf = self.buf, b""
        if pending:
            self.buf = self.zin.decompress(pending)

    def send(self, data):
        if self.zout is not None:
            data = self.zout.compress(data) + self.zout.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)

    def recv(self, size):
        chunk = self.sock.recv(size)
        if self.zin is not None:
            self.wire_in += len(chunk)
            chunk = self.zin.decompress(chunk)
        return chunk


def assert_alive(test, r):
    """The connection is still served: a NOOP answers OK."""
    r.send(b"n NOOP\r\n")
    test.assertEqual(r.until_tagged(b"n")[-1], b"n OK NOOP completed.")


def big_message(size):
    """A compressible message of exactly `size` bytes, lines of text."""
    head = b"From: a@example.org\r\nSubject: big\r\n\r\n"
    line = b"The quick brown fox jumps over the lazy dog again and again.\r\n"
    body = (line * (size // len(line) + 1))[:size - len(head) - 2]
    if body.endswith(b"\r"):  # CR CR LF would be stored as CR LF (as Dovecot does)
        body = body[:-1] + b"."
    return head + body + b"\r\n"


class Compress(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(USERS, tls=True)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def connect(self, user=b"u", tls=False, implicit_tls=False):
        r = Deflated(self.srv.tls_port, tls=True) if implicit_tls else Deflated(self.srv.port)
        self.addCleanup(r.close)
        self.assertTrue(r.line().startswith(b"* OK "))
        if tls:
            r.send(b"t STARTTLS\r\n")
            self.assertTrue(r.until_tagged(b"t")[-1].startswith(b"t OK "))
            r.starttls()
        r.send(b"l LOGIN %s pw\r\n" % user)
        last = r.until_tagged(b"l")[-1]
        self.assertTrue(last.startswith(b"l OK "), last)
        return r, last

    def start_compress(self, r):
        r.send(b"z COMPRESS DEFLATE\r\n")
        self.assertEqual(r.until_tagged(b"z")[-1], b"z OK DEFLATE active.")
        r.compress()

    def append(self, r, tag, mailbox, msg, nonsync=False):
        if nonsync:
            r.send(b"%s APPEND %s {%d+}\r\n" % (tag, mailbox, len(msg)) + msg + b"\r\n")
        else:
            r.send(b"%s APPEND %s {%d}\r\n" % (tag, mailbox, len(msg)))
            self.assertTrue(r.line().startswith(b"+ "))
            r.send(msg + b"\r\n")
        lines = r.until_tagged(tag)
        self.assertTrue(lines[-1].startswith(tag + b" OK "), lines)
        return lines

    def assert_fetched(self, r, tag, seq, section, data):
        """FETCH seq BODY.PEEK[section] answers exactly `data`."""
        r.send(b"%s FETCH %d BODY.PEEK[%s]\r\n" % (tag, seq, section))
        self.assertEqual(r.line(), b"* %d FETCH (BODY[%s] {%d}" % (seq, section, len(data)))
        self.assertEqual(r.exact(len(data)), data)
        self.assertEqual(r.line(), b")")
        self.assertEqual(r.line(), tag + b" OK FETCH completed.")

    def test_capability_only_after_login(self):
        r = Deflated(self.srv.port)
        self.addCleanup(r.close)
        greeting = r.line()
        self.assertNotIn(b"COMPRESS=DEFLATE", greeting)
        r.send(b"c COMPRESS DEFLATE\r\n")
        self.assertTrue(r.until_tagged(b"c")[-1].startswith(b"c BAD "))
        r.send(b"l LOGIN u pw\r\n")
        last = r.until_tagged(b"l")[-1]
        self.assertIn(b" COMPRESS=DEFLATE", last)

    def test_compressed_session(self):
        r, _ = self.connect()
        r.send(b"c CREATE zbox\r\n")
        self.assertTrue(r.until_tagged(b"c")[-1].startswith(b"c OK"))
        self.start_compress(r)
        # the connection is compressed from here on, both ways
        r.send(b"s SELECT zbox\r\n")
        lines = r.until_tagged(b"s")
        self.assertIn(b"* 0 EXISTS", lines)
        self.assertTrue(lines[-1].startswith(b"s OK "))
        msg = big_message(400000)
        # APPEND to the selected mailbox tells the new message at once
        self.assertIn(b"* 1 EXISTS", self.append(r, b"a1", b"zbox", msg))  # synchronising literal
        self.assertIn(b"* 2 EXISTS", self.append(r, b"a2", b"zbox", b"Subject: two\r\n\r\nsmall\r\n",
                                                 nonsync=True))          # LITERAL+
        before = r.wire_in
        self.assert_fetched(r, b"f", 1, b"", msg)
        # it really is compressed: the message is repetitive text
        self.assertLess(r.wire_in - before, len(msg) // 10)
        self.assert_fetched(r, b"f2", 2, b"TEXT", b"small\r\n")

        # IDLE: an update from another connection reaches the compressed
        # client while it waits (the server flushes after each response)
        r.send(b"i IDLE\r\n")
        self.assertTrue(r.line().startswith(b"+ "))
        other, _ = self.connect()
        self.append(other, b"o", b"zbox", b"Subject: three\r\n\r\nhello\r\n")
        self.assertEqual(r.line(), b"* 3 EXISTS")
        r.send(b"DONE\r\n")
        self.assertEqual(r.until_tagged(b"i")[-1], b"i OK IDLE terminated.")

        # a second COMPRESS is refused, compressed, and the session goes on
        r.send(b"z2 COMPRESS DEFLATE\r\n")
        self.assertEqual(r.until_tagged(b"z2")[-1], b"z2 NO [COMPRESSIONACTIVE] DEFLATE is active already.")
        self.assert_fetched(r, b"x", 3, b"TEXT", b"hello\r\n")
        r.send(b"q LOGOUT\r\n")
        lines = r.until_tagged(b"q")
        self.assertTrue(lines[0].startswith(b"* BYE"))
        self.assertTrue(r.closed())

    def test_unknown_mechanism_is_bad(self):
        r, _ = self.connect()
        r.send(b"z COMPRESS GZIP\r\n")
        self.assertEqual(r.until_tagged(b"z")[-1], b"z BAD Unknown compression mechanism.")
        r.send(b"z2 COMPRESS\r\n")
        self.assertTrue(r.until_tagged(b"z2")[-1].startswith(b"z2 BAD "))
        # still uncompressed, still alive
        assert_alive(self, r)

    def test_over_starttls(self):
        r, _ = self.connect(tls=True)
        self.start_compress(r)
        r.send(b"l2 LIST \"\" INBOX\r\n")
        lines = r.until_tagged(b"l2")
        self.assertTrue(lines[-1].startswith(b"l2 OK"), lines)
        # STARTTLS belongs before login: after COMPRESS it is refused
        r.send(b"t STARTTLS\r\n")
        self.assertTrue(r.until_tagged(b"t")[-1].startswith(b"t BAD "))
        assert_alive(self, r)

    def test_over_implicit_tls(self):
        r, _ = self.connect(implicit_tls=True)
        self.start_compress(r)
        msg = big_message(200000)
        r.send(b"c CREATE tlsbox\r\ns SELECT tlsbox\r\n")
        self.assertTrue(r.until_tagged(b"s")[-1].startswith(b"s OK"))
        self.assertIn(b"* 1 EXISTS", self.append(r, b"a", b"tlsbox", msg))
        self.assert_fetched(r, b"f", 1, b"", msg)

    def test_plain_starttls_after_compress_refused(self):
        r, _ = self.connect()
        self.start_compress(r)
        r.send(b"t STARTTLS\r\n")
        self.assertTrue(r.until_tagged(b"t")[-1].startswith(b"t BAD "))

    def test_corrupt_stream_ends_only_that_connection(self):
        r, _ = self.connect()
        r.send(b"z COMPRESS DEFLATE\r\n")
        self.assertEqual(r.until_tagged(b"z")[-1], b"z OK DEFLATE active.")
        # not a deflate stream (block type 3 is reserved)
        r.sock.sendall(b"\xff\xff\xff\xff garbage")
        r.sock.settimeout(IO_TIMEOUT)
        self.assertTrue(r.closed())
        # the server goes on
        other, _ = self.connect()
        self.start_compress(other)
        assert_alive(self, other)

    def test_fetch_in_several_runs(self):
        # A FETCH answer larger than one run (about 1 MiB) and, compressed,
        # larger than the output the server lets wait (4 MiB): the later
        # runs go out as the client reads, through the deflate layer.
        r, _ = self.connect(user=b"v")
        self.start_compress(r)
        msgs = []
        for i in range(4):
            m = b"Subject: %d\r\n\r\n" % i + base64.encodebytes(os.urandom(1200000)).replace(b"\n", b"\r\n")
            msgs.append(m)
            self.append(r, b"a%d" % i, b"INBOX", m, nonsync=True)
        r.send(b"s SELECT INBOX\r\nf FETCH 1:4 BODY.PEEK[]\r\n")
        self.assertTrue(r.until_tagged(b"s")[-1].startswith(b"s OK"))
        for i, m in enumerate(msgs):
            self.assertEqual(r.line(), b"* %d FETCH (BODY[] {%d}" % (i + 1, len(m)))
            self.assertEqual(r.exact(len(m)), m)
            self.assertEqual(r.line(), b")")
        self.assertEqual(r.line(), b"f OK FETCH completed.")

    def test_many_small_commands_in_one_write(self):
        r, _ = self.connect()
        self.start_compress(r)
        r.send(b"".join(b"n%d NOOP\r\n" % i for i in range(200)))
        lines = r.until_tagged(b"n199")
        tagged = [l for l in lines if not l.startswith(b"* ")]
        self.assertEqual(tagged, [b"n%d OK NOOP completed." % i for i in range(200)])


class ClientVanishes(unittest.TestCase):
    """A compressed client that goes away with much more input sent than
    the server has inflated: the rest waits, compressed, below the
    inflating layer (the input high-water mark), and the server must
    neither spin on it nor keep the session. The daemon is stopped inside
    the test: a loop that never returns would miss SIGTERM and fail it."""

    def test_close_with_pending_compressed_input(self):
        srv = Server(USERS, tls=False)
        try:
            for what in (b"append", b"pipelined"):
                r = Deflated(srv.port)
                r.line()
                r.send(b"l LOGIN u pw\r\nz COMPRESS DEFLATE\r\n")
                self.assertEqual(r.until_tagged(b"z")[-1], b"z OK DEFLATE active.")
                r.compress()
                if what == b"append":
                    # 8 MiB of zeros deflate to a few KiB: one read
                    size = 8 * 1024 * 1024
                    r.send(b"a APPEND INBOX {%d+}\r\n" % size + b"\0" * size)
                else:
                    # a command in flight and 100,000 NOOPs behind it
                    r.send(b"s SELECT INBOX\r\n" + b"n NOOP\r\n" * 100000)
                r.close()
                # the session ends: its closing log line
                gone = 1 if what == b"append" else 2
                deadline = time.monotonic() + IO_TIMEOUT
                while srv.read_log().count(" user=u after") < gone and time.monotonic() < deadline:
                    time.sleep(0.05)
                self.assertEqual(srv.read_log().count(" user=u after"), gone, srv.read_log()[-2000:])
            # the server still serves, compressed
            r = Deflated(srv.port)
            self.addCleanup(r.close)
            r.line()
            r.send(b"l LOGIN u pw\r\nz COMPRESS DEFLATE\r\n")
            r.until_tagged(b"z")
            r.compress()
            assert_alive(self, r)
        finally:
            srv.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
