"""BINARY (RFC 3516) through a real aerogramd: FETCH BINARY[part]<partial>,
BINARY.PEEK and BINARY.SIZE decode base64 and quoted-printable parts (the
RFC's rules: soft line breaks, transport padding, CRLF); identity encodings
and multipart parts come as stored; an unknown encoding ends the FETCH
with NO [UNKNOWN-CTE]; NUL octets travel only in a literal8, which APPEND
accepts (~{n} and ~{n+}); BINARY sets \\Seen, BINARY.PEEK and BINARY.SIZE
do not; malformed BINARY items get BAD and the connection lives. Run by
`make check-server`, on the memory and the SQLite driver."""
import base64
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from agtest import Raw, Server  # noqa: E402

USERS = {"u": "{PLAIN}pw"}

PAYLOAD = bytes(range(256)) * 3          # every octet, NUL included
QP_TEXT = (b"hello  \r\n"                 # trailing blanks: transport padding
           b"bar=\r\n"                    # soft line break
           b"\r\n"
           b"foo\t= \r\n"                 # soft break with blanks after '='
           b"=62=3D=0D=0Ax\r\n"           # encoded octets, an encoded CRLF
           b"a=ZZb\r\n")                  # '=' not followed by hex stays
QP_DECODED = b"hello\r\nbar\r\nfoo\tb=\r\nx\r\na=ZZb\r\n"

MULTI = (b"From: a@example.org\r\n"
         b"Subject: parts\r\n"
         b"MIME-Version: 1.0\r\n"
         b"Content-Type: multipart/mixed; boundary=\"b\"\r\n"
         b"\r\n"
         b"--b\r\n"
         b"Content-Type: application/octet-stream\r\n"
         b"Content-Transfer-Encoding: base64\r\n"
         b"\r\n" + base64.encodebytes(PAYLOAD).replace(b"\n", b"\r\n") +
         b"\r\n--b\r\n"
         b"Content-Type: text/plain\r\n"
         b"Content-Transfer-Encoding: quoted-printable\r\n"
         b"\r\n" + QP_TEXT +
         b"\r\n--b\r\n"
         b"Content-Type: text/plain\r\n"
         b"Content-Transfer-Encoding: x-uuencode\r\n"
         b"\r\n"
         b"begin 644 x\r\n"
         b"\r\n--b\r\n"
         b"Content-Type: text/plain\r\n"
         b"\r\n"
         b"plain text\r\n"
         b"--b--\r\n")

RAW_PART = b"\x00\x01 binary \x00\r\n\xff\r\n"
BINARY_MSG = (b"From: a@example.org\r\n"
              b"MIME-Version: 1.0\r\n"
              b"Content-Type: application/octet-stream\r\n"
              b"Content-Transfer-Encoding: binary\r\n"
              b"\r\n" + RAW_PART)


class Client(Raw):
    def _fill(self, n=1):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk

    def _token(self):
        """The next word up to a space or ')' (at most one line)."""
        self._fill()
        i = 0
        while True:
            self._fill(i + 1)
            if self.buf[i:i + 1] in (b" ", b")", b"\r"):
                return self.exact(i)
            i += 1

    def fetch(self, tag, args):
        """Sends FETCH and returns (items, literal8, tagged line): items
        maps each item name of the untagged FETCH responses to its value
        (a literal's bytes, a parenthesised list or an atom, as bytes);
        literal8 holds the names whose value came as ~{n}."""
        self.send(b"%s FETCH %s\r\n" % (tag, args))
        items, literal8 = {}, set()
        while True:
            self._fill(2)
            if not self.buf.startswith(b"* "):
                line = self.line()
                assert line.startswith(tag + b" "), line
                return items, literal8, line
            self.exact(2)
            self._token()                          # sequence number
            assert self.exact(8) == b" FETCH (", self.buf[:40]
            while True:
                name = self._token()
                assert self.exact(1) == b" "
                self._fill()
                if self.buf[:1] == b"(":
                    end = self.buf.index(b")")
                    value = self.exact(end + 1)
                elif self.buf[:1] in (b"{", b"~"):
                    head = self.line()
                    if head.startswith(b"~"):
                        literal8.add(name)
                    value = self.exact(int(head.strip(b"~{}")))
                else:
                    value = self._token()
                items[name] = value
                sep = self.exact(1)
                if sep == b")":
                    assert self.line() == b""
                    break
                assert sep == b" ", sep


class Binary(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(USERS, tls=False)
        r = cls.connect_raw(cls.srv)
        for tag, msg in ((b"a1", MULTI), (b"a2", BINARY_MSG)):
            r.send(b"%s APPEND INBOX ~{%d+}\r\n" % (tag, len(msg)) + msg + b"\r\n")
            last = r.until_tagged(tag)[-1]
            assert last.startswith(tag + b" OK "), last
        r.close()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    @staticmethod
    def connect_raw(srv):
        r = Client(srv.port)
        r.line()
        r.send(b"l LOGIN u pw\r\n")
        last = r.until_tagged(b"l")[-1]
        assert last.startswith(b"l OK ") and b" BINARY" in last, last
        return r

    def connect(self, select=b"SELECT"):
        r = self.connect_raw(self.srv)
        self.addCleanup(r.close)
        r.send(b"s %s INBOX\r\n" % select)
        self.assertTrue(r.until_tagged(b"s")[-1].startswith(b"s OK"))
        return r

    def test_base64_part(self):
        r = self.connect(b"EXAMINE")
        items, lit8, last = r.fetch(b"f", b"1 (BINARY.PEEK[1] BINARY.SIZE[1])")
        self.assertEqual(last, b"f OK FETCH completed.")
        self.assertEqual(items[b"BINARY[1]"], PAYLOAD)
        self.assertIn(b"BINARY[1]", lit8)            # it holds NUL: literal8
        self.assertEqual(items[b"BINARY.SIZE[1]"], b"%d" % len(PAYLOAD))

    def test_partial_counts_decoded_octets(self):
        r = self.connect(b"EXAMINE")
        items, lit8, _ = r.fetch(b"f", b"1 (BINARY.PEEK[1]<260.10> BINARY.PEEK[1]<500.300>)")
        self.assertEqual(items[b"BINARY[1]<260>"], PAYLOAD[260:270])
        self.assertNotIn(b"BINARY[1]<260>", lit8)   # no NUL in these ten: a plain literal
        self.assertEqual(items[b"BINARY[1]<500>"], PAYLOAD[500:])
        self.assertIn(b"BINARY[1]<500>", lit8)       # this one holds NUL (at 512)
        items, _, _ = r.fetch(b"g", b"1 BINARY.PEEK[1]<5000.10>")
        self.assertEqual(items[b"BINARY[1]<5000>"], b"")

    def test_quoted_printable_part(self):
        r = self.connect(b"EXAMINE")
        items, lit8, last = r.fetch(b"f", b"1 (BINARY.SIZE[2] BINARY.PEEK[2])")
        self.assertEqual(last, b"f OK FETCH completed.")
        self.assertEqual(items[b"BINARY[2]"], QP_DECODED)
        self.assertNotIn(b"BINARY[2]", lit8)
        self.assertEqual(items[b"BINARY.SIZE[2]"], b"%d" % len(QP_DECODED))

    def test_identity_and_whole_message(self):
        r = self.connect(b"EXAMINE")
        items, _, _ = r.fetch(b"f", b"1 (BINARY.PEEK[4] BINARY.PEEK[] BINARY.SIZE[])")
        self.assertEqual(items[b"BINARY[4]"], b"plain text")
        self.assertEqual(items[b"BINARY[]"], MULTI)
        self.assertEqual(items[b"BINARY.SIZE[]"], b"%d" % len(MULTI))
        # a part that does not exist is empty, as BODY[] answers
        items, _, last = r.fetch(b"g", b"1 BINARY.PEEK[9]")
        self.assertEqual(items[b"BINARY[9]"], b"")
        self.assertEqual(last, b"g OK FETCH completed.")

    def test_unknown_encoding(self):
        r = self.connect(b"EXAMINE")
        items, _, last = r.fetch(b"f", b"1:2 (UID BINARY.PEEK[3])")
        self.assertTrue(last.startswith(b"f NO [UNKNOWN-CTE] "), last)
        # the other message is answered all the same
        self.assertEqual(items[b"BINARY[3]"], b"")
        items, _, last = r.fetch(b"g", b"1 BINARY.SIZE[3]")
        self.assertTrue(last.startswith(b"g NO [UNKNOWN-CTE] "), last)
        self.assertNotIn(b"BINARY.SIZE[3]", items)
        r.send(b"n NOOP\r\n")
        self.assertEqual(r.until_tagged(b"n")[-1], b"n OK NOOP completed.")

    def test_literal8_append_keeps_nul(self):
        r = self.connect(b"EXAMINE")
        items, lit8, _ = r.fetch(b"f", b"2 (BINARY.PEEK[1] BINARY.SIZE[1] BODY.PEEK[1])")
        self.assertEqual(items[b"BINARY[1]"], RAW_PART)
        self.assertIn(b"BINARY[1]", lit8)
        self.assertEqual(items[b"BINARY.SIZE[1]"], b"%d" % len(RAW_PART))
        # BODY[] has no literal8: NUL cannot go in a plain literal
        self.assertNotIn(b"\x00", items[b"BODY[1]"])
        self.assertNotIn(b"BODY[1]", lit8)

    def test_literal8_synchronising_append(self):
        r = self.connect()
        msg = b"Subject: sync\r\n\r\n\x00\x00\r\n"
        r.send(b"a APPEND INBOX ~{%d}\r\n" % len(msg))
        self.assertTrue(r.line().startswith(b"+ "))
        r.send(msg + b"\r\n")
        lines = r.until_tagged(b"a")
        self.assertTrue(lines[-1].startswith(b"a OK [APPENDUID "), lines)
        seq = [l for l in lines if l.endswith(b" EXISTS")][-1].split()[1]
        items, lit8, _ = r.fetch(b"f", seq + b" BINARY.PEEK[]")
        self.assertEqual(items[b"BINARY[]"], msg)
        self.assertIn(b"BINARY[]", lit8)
        r.send(b"x STORE %s +FLAGS.SILENT (\\Deleted)\r\ny EXPUNGE\r\n" % seq)
        self.assertTrue(r.until_tagged(b"y")[-1].startswith(b"y OK"))

    def test_seen(self):
        r = self.connect()
        r.send(b"s1 STORE 1 -FLAGS.SILENT (\\Seen)\r\n")
        r.until_tagged(b"s1")
        items, _, _ = r.fetch(b"f", b"1 (BINARY.PEEK[4] BINARY.SIZE[4] FLAGS)")
        self.assertNotIn(b"\\Seen", items[b"FLAGS"])
        items, _, _ = r.fetch(b"g", b"1 BINARY[4]")
        self.assertEqual(items[b"BINARY[4]"], b"plain text")
        self.assertIn(b"\\Seen", items[b"FLAGS"])   # the FETCH tells the new flag

    def test_malformed_items_are_bad(self):
        r = self.connect(b"EXAMINE")
        for tag, args in ((b"b1", b"1 BINARY[1.TEXT]"), (b"b2", b"1 BINARY.SIZE[1]<0.5>"),
                          (b"b3", b"1 BINARY"), (b"b4", b"1 BINARY[0]"), (b"b5", b"1 BINARY.PEEK[HEADER]")):
            r.send(b"%s FETCH %s\r\n" % (tag, args))
            self.assertTrue(r.until_tagged(tag)[-1].startswith(tag + b" BAD "), args)
        # literal8 is for APPEND only
        r.send(b"c CREATE ~{3+}\r\nabc\r\n")
        self.assertTrue(r.until_tagged(b"c")[-1].startswith(b"c BAD "))
        r.send(b"n NOOP\r\n")
        self.assertEqual(r.until_tagged(b"n")[-1], b"n OK NOOP completed.")


if __name__ == "__main__":
    unittest.main(verbosity=2)
