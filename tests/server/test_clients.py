"""Real IMAP clients against aerogramd: mbsync (isync) syncing a Maildir
both ways, and curl fetching over STARTTLS. Run by `make check-server`."""
import imaplib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from aerogramd_fixture import IO_TIMEOUT, Server  # noqa: E402

MBSYNCRC = """IMAPAccount test
Host 127.0.0.1
Port {port}
User u
Pass pw
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account test

MaildirStore local
Path {root}/
Inbox {root}/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
"""


def maildir(path):
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)


def files_of(path):
    out = []
    for sub in ("new", "cur"):
        for name in sorted(os.listdir(os.path.join(path, sub))):
            with open(os.path.join(path, sub, name), "rb") as f:
                out.append((name, f.read()))
    return out


class Clients(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server({"u": "{PLAIN}pw"})

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def test_mbsync_both_ways(self):
        self.assertIsNotNone(shutil.which("mbsync"), "mbsync (package isync) is needed: packaging/install-deps")
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        root = os.path.join(tmp.name, "mail")
        maildir(os.path.join(root, "INBOX"))
        maildir(os.path.join(root, "Projects"))
        for i in range(3):
            with open(os.path.join(root, "INBOX", "new", "%d.local:2," % i), "wb") as f:
                f.write(b"From: a@example.org\r\nSubject: local %d\r\n\r\nbody %d\r\n" % (i, i))
        with open(os.path.join(root, "Projects", "cur", "p.local:2,S"), "wb") as f:
            f.write(b"Subject: project\r\n\r\nplan\r\n")
        rc_path = os.path.join(tmp.name, "mbsyncrc")
        with open(rc_path, "w") as f:
            f.write(MBSYNCRC.format(port=self.srv.port, root=root))

        def sync():
            out = subprocess.run(["mbsync", "-c", rc_path, "-a"], capture_output=True, text=True,
                                 timeout=IO_TIMEOUT)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

        sync()
        m = imaplib.IMAP4("127.0.0.1", self.srv.port, timeout=IO_TIMEOUT)
        self.addCleanup(lambda: m.sock.close())
        m.login("u", "pw")
        self.assertEqual(m.status("INBOX", "(MESSAGES)")[1], [b"INBOX (MESSAGES 3)"])
        self.assertEqual(m.status("Projects", "(MESSAGES)")[1], [b"Projects (MESSAGES 1)"])
        m.select("Projects")
        # mbsync's own session claimed \Recent; it adds an X-TUID header of its own.
        head, body = m.fetch("1", "(FLAGS BODY.PEEK[])")[1][0]
        self.assertTrue(head.startswith(b"1 (FLAGS (\\Seen) BODY[] {"), head)
        self.assertTrue(body.startswith(b"Subject: project\r\n"), body)
        self.assertTrue(body.endswith(b"\r\n\r\nplan\r\n"), body)
        m.select("INBOX")
        typ, data = m.search(None, "SUBJECT", '"local 0"')
        first = data[0]
        typ, data = m.search(None, "SUBJECT", '"local 1"')
        second = data[0]
        m.store(first, "+FLAGS", "(\\Flagged)")
        m.store(second, "+FLAGS", "(\\Deleted)")
        m.expunge()
        m.append("INBOX", None, None, b"Subject: from the server\r\n\r\nhello\r\n")
        sync()
        local = files_of(os.path.join(root, "INBOX"))
        subjects = sorted(re.search(rb"Subject: ([^\r\n]*)", body).group(1) for _, body in local)
        self.assertEqual(subjects, [b"from the server", b"local 0", b"local 2"])
        flagged = [name for name, body in local if b"local 0" in body]
        self.assertEqual(len(flagged), 1)
        self.assertTrue(flagged[0].endswith("F"), flagged)

    def test_curl_over_starttls(self):
        self.assertIsNotNone(shutil.which("curl"), "curl is needed: packaging/install-deps")
        m = imaplib.IMAP4("127.0.0.1", self.srv.port, timeout=IO_TIMEOUT)
        self.addCleanup(lambda: m.sock.close())
        m.login("u", "pw")
        m.create("Curl")
        typ, data = m.append("Curl", None, None, b"Subject: via curl\r\n\r\nfetched by curl\r\n")
        uid = data[0].split(b"]")[0].split(b" ")[-1].decode()
        out = subprocess.run(["curl", "--silent", "--show-error", "--ssl-reqd", "--insecure",
                              "--user", "u:pw", "imap://127.0.0.1:%d/Curl;UID=%s" % (self.srv.port, uid)],
                             capture_output=True, timeout=IO_TIMEOUT)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout, b"Subject: via curl\r\n\r\nfetched by curl\r\n")


if __name__ == "__main__":
    unittest.main(verbosity=1)
