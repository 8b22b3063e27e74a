"""FETCH answers that come from the per-message cache (host/fetch_cache.c)
are the answers built from the summaries: the first FETCH of a message fills
the cache, later ones (and whole batches answered without reading any
summary) must say the same bytes, for the right message, whatever user or
mailbox holds messages with the same UIDs. Run by `make check-server`."""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from agtest.case import ServerCase  # noqa: E402

ITEMS = "(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY BODYSTRUCTURE)"


def message(owner, i):
    """A message that names its owner and number in its subject and body;
    every third one is multipart."""
    head = (b"From: %s <%s@example.org>\r\nTo: x@example.org\r\nSubject: %s message %d\r\n"
            b"Message-ID: <%d.%s@example.org>\r\n" % (owner, owner, owner, i, i, owner))
    if i % 3:
        return head + b"\r\nbody %d of %s\r\n" % (i, owner)
    return (head + b"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b%d\r\n\r\n"
            b"--b%d\r\n\r\nplain %d\r\n--b%d\r\nContent-Type: text/html\r\n\r\n<b>%d</b>\r\n--b%d--\r\n"
            % (i, i, i, i, i, i))


def date(i):
    return '"%02d-Mar-2001 10:%02d:00 +0000"' % (i % 28 + 1, i % 60)


class FetchCacheTest(ServerCase):
    USERS = {"alice": "{PLAIN}pw", "bob": "{PLAIN}pw"}

    def fetch_all(self, m, items=ITEMS, which="1:*"):
        typ, data = m.fetch(which, items)
        self.assertEqual(typ, "OK", data)
        return data

    def check_owner(self, data, owner, count):
        """Each answer carries its own message's subject, size and date."""
        self.assertEqual(len(data), count, data)
        for i, line in enumerate(data, 1):
            self.assertIsInstance(line, bytes, line)
            self.assertIn(b'"%s message %d"' % (owner, i), line)
            self.assertIn(b"RFC822.SIZE %d " % len(message(owner, i)), line)
            self.assertIn(b"INTERNALDATE %s" % date(i).encode(), line)
            self.assertEqual(b'"alternative"' in line, i % 3 == 0, line)

    def test_cached_answers_equal_first_answers(self):
        count = 70  # more than one batch of 64
        for owner in (b"alice", b"bob"):
            m = self.imap(owner.decode())
            m.create("Box")
            for i in range(1, count + 1):
                self.assertEqual(m.append("Box", None, date(i), message(owner, i))[0], "OK")
        alice = self.imap("alice")
        bob = self.imap("bob")
        alice.select("Box")
        bob.select("Box")
        # Some messages cached first: the next batch mixes hits and misses.
        self.fetch_all(alice, "(ENVELOPE)", "1,5,64:66")
        first = self.fetch_all(alice)
        self.check_owner(first, b"alice", count)
        # Every message cached now: answered without summaries, same bytes.
        self.assertEqual(self.fetch_all(alice), first)
        # Bob's messages have the same UIDs and mailbox name, not the same data.
        bob_first = self.fetch_all(bob)
        self.check_owner(bob_first, b"bob", count)
        self.assertEqual(self.fetch_all(bob), bob_first)
        self.check_owner(self.fetch_all(alice), b"alice", count)
        # Sections and sizes from the cached part tree.
        typ, data = alice.fetch("3", "(BODY.PEEK[1] BODY.PEEK[2.MIME] RFC822.SIZE)")
        self.assertEqual(data[0], (b"3 (BODY[1] {7}", b"plain 3"))
        self.assertEqual(data[1], (b" BODY[2.MIME] {27}", b"Content-Type: text/html\r\n\r\n"))
        self.assertEqual(data[2], b" RFC822.SIZE %d)" % len(message(b"alice", 3)))

    def test_copy_answers_for_the_copy(self):
        m = self.imap("alice")
        m.create("Src")
        m.create("Dst")
        for i in range(1, 4):
            m.append("Src", None, date(i), message(b"carol", i))
        m.append("Dst", None, date(9), message(b"dave", 1))
        m.select("Src")
        src = self.fetch_all(m)
        self.check_owner(src, b"carol", 3)
        self.assertEqual(m.copy("2", "Dst")[0], "OK")
        m.select("Dst")
        dst = self.fetch_all(m)
        self.assertEqual(len(dst), 2)
        self.assertIn(b'"dave message 1"', dst[0])
        # The copy: carol's second message under its new UID and sequence number.
        want = re.sub(rb"^2 \(UID 2 FLAGS \([^)]*\)", b"", src[1])
        got = re.sub(rb"^2 \(UID 2 FLAGS \([^)]*\)", b"", dst[1])
        self.assertEqual(got, want)
        self.assertEqual(self.fetch_all(m), dst)


if __name__ == "__main__":
    unittest.main()
