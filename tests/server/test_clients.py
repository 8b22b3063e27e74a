"""Real IMAP clients against aerogramd: mbsync (isync) syncing a Maildir
both ways (500 messages, changes on both sides), and curl listing, fetching
and searching, in cleartext and over STARTTLS. Run by `make check-server`."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from agtest import IO_TIMEOUT  # noqa: E402
from agtest.case import ServerCase  # noqa: E402

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


N_LOCAL = 500


def message(subject):
    return (b"From: a@example.org\r\nSubject: %s\r\nMessage-ID: <%s@example.org>\r\n\r\nbody of %s\r\n"
            % (subject.encode(), subject.replace(" ", ".").encode(), subject.encode()))


def subject_of(data):
    return re.search(rb"Subject: ([^\r\n]*)", data).group(1).decode()


def local_files(path):
    """subject -> path of every message file of a Maildir (asserting no subject twice)."""
    out = {}
    for sub in ("new", "cur"):
        for name in os.listdir(os.path.join(path, sub)):
            full = os.path.join(path, sub, name)
            with open(full, "rb") as f:
                subject = subject_of(f.read())
            assert subject not in out, "duplicate: " + subject
            out[subject] = full
    return out


def server_state(m):
    """subject -> flags string of the selected mailbox (asserting no subject twice)."""
    typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK", data
    out = {}
    for item in data:
        if not isinstance(item, tuple):
            continue
        flags = re.search(rb"FLAGS \(([^)]*)\)", item[0]).group(1).decode()
        subject = subject_of(item[1])
        assert subject not in out, "duplicate: " + subject
        out[subject] = flags
    return out


def server_uids(m):
    typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    out = {}
    for item in data:
        if isinstance(item, tuple):
            out[subject_of(item[1])] = re.search(rb"UID (\d+)", item[0]).group(1).decode()
    return out


class Clients(ServerCase):
    USERS = {"u": "{PLAIN}pw"}
    SERVER = {"tls": True}  # curl's STARTTLS

    def test_mbsync_both_ways(self):
        """A 500-message Maildir synced into the server and back, with flags,
        deletions and new messages on both sides, converges with no
        duplicate and no loss, and a third sync changes nothing."""
        self.assertIsNotNone(shutil.which("mbsync"), "mbsync (package isync) is needed: packaging/install-deps")
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        root = os.path.join(tmp.name, "mail")
        inbox = os.path.join(root, "INBOX")
        maildir(inbox)
        maildir(os.path.join(root, "Projects"))
        for i in range(N_LOCAL):
            # Some arrive already read; all differ in Message-ID and subject.
            flags = "S" if i % 3 == 0 else ""
            sub = "cur" if flags else "new"
            with open(os.path.join(inbox, sub, "%d.local:2,%s" % (i, flags)), "wb") as f:
                f.write(message("local %d" % i))
        with open(os.path.join(root, "Projects", "cur", "p.local:2,S"), "wb") as f:
            f.write(b"Subject: project\r\n\r\nplan\r\n")
        rc_path = os.path.join(tmp.name, "mbsyncrc")
        with open(rc_path, "w") as f:
            f.write(MBSYNCRC.format(port=self.srv.port, root=root))

        def sync():
            out = subprocess.run(["mbsync", "-c", rc_path, "-a"], capture_output=True, text=True,
                                 timeout=IO_TIMEOUT * 5)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

        sync()
        m = self.imap("u")
        self.assertEqual(m.status("INBOX", "(MESSAGES)")[1], [b"INBOX (MESSAGES %d)" % N_LOCAL])
        self.assertEqual(m.status("Projects", "(MESSAGES)")[1], [b"Projects (MESSAGES 1)"])
        m.select("Projects")
        # mbsync's own session claimed \Recent; it adds an X-TUID header of its own.
        head, body = m.fetch("1", "(FLAGS BODY.PEEK[])")[1][0]
        self.assertTrue(head.startswith(b"1 (FLAGS (\\Seen) BODY[] {"), head)
        self.assertTrue(body.startswith(b"Subject: project\r\n"), body)
        self.assertTrue(body.endswith(b"\r\n\r\nplan\r\n"), body)
        m.select("INBOX")
        server = server_state(m)
        self.assertEqual(sorted(server), sorted("local %d" % i for i in range(N_LOCAL)))
        for i in range(N_LOCAL):
            self.assertEqual("\\Seen" in server["local %d" % i], i % 3 == 0, i)

        # Server side: flag 0-9, unflag nothing, read 1-19 (not multiples of 3),
        # delete 10-14, and two new messages.
        uid_of = server_uids(m)
        m.uid("STORE", ",".join(uid_of["local %d" % i] for i in range(10)), "+FLAGS", "(\\Flagged)")
        m.uid("STORE", ",".join(uid_of["local %d" % i] for i in range(15, 20)), "+FLAGS", "(\\Seen)")
        m.uid("STORE", ",".join(uid_of["local %d" % i] for i in range(10, 15)), "+FLAGS", "(\\Deleted)")
        m.expunge()
        for i in range(2):
            m.append("INBOX", None, None, message("server %d" % i))
        # Local side: answer 100-109, read 110-119, delete 200-204, two new files.
        local = local_files(inbox)
        for i in range(100, 120):
            path = local["local %d" % i]
            base, _, flags = os.path.basename(path).partition(":2,")
            flags = "".join(sorted(set(flags) | {"R" if i < 110 else "S"}))
            os.rename(path, os.path.join(inbox, "cur", base + ":2," + flags))
        for i in range(200, 205):
            os.unlink(local["local %d" % i])
        for i in range(2):
            with open(os.path.join(inbox, "new", "new%d.local:2," % i), "wb") as f:
                f.write(message("new local %d" % i))

        sync()
        expected = ({"local %d" % i for i in range(N_LOCAL)} - {"local %d" % i for i in range(10, 15)}
                    - {"local %d" % i for i in range(200, 205)}
                    | {"server 0", "server 1", "new local 0", "new local 1"})

        def check_converged():
            local = local_files(inbox)
            self.assertEqual(set(local), expected)
            self.assertEqual(len(local), len(expected))  # no duplicate file
            m.noop()
            server = server_state(m)
            self.assertEqual(set(server), expected)
            self.assertEqual(m.status("INBOX", "(MESSAGES)")[1], [b"INBOX (MESSAGES %d)" % len(expected)])
            for subject, path in local.items():
                local_flags = os.path.basename(path).partition(":2,")[2]
                have = server[subject]
                for letter, flag in (("F", "\\Flagged"), ("R", "\\Answered"), ("S", "\\Seen")):
                    self.assertEqual(letter in local_flags, flag in have, (subject, local_flags, have))
            for i in range(10):
                self.assertIn("\\Flagged", server["local %d" % i])
            for i in range(100, 110):
                self.assertIn("\\Answered", server["local %d" % i])
            for i in list(range(15, 20)) + list(range(110, 120)):
                self.assertIn("\\Seen", server["local %d" % i])

        check_converged()
        before = sorted(local_files(inbox).values())
        sync()
        check_converged()
        self.assertEqual(sorted(local_files(inbox).values()), before)  # nothing moved

    def curl(self, *args):
        """curl's output (logged in as u), which must exit 0."""
        self.assertIsNotNone(shutil.which("curl"), "curl is needed: packaging/install-deps")
        out = subprocess.run(["curl", "--silent", "--show-error", "--user", "u:pw"] + list(args),
                             capture_output=True, timeout=IO_TIMEOUT)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout

    def test_curl_lists_and_fetches(self):
        m = self.imap("u")
        m.create("Listed.Child")
        for i in range(3):
            m.append("Listed.Child", None, None, b"Subject: n%d\r\n\r\nnumber %d\r\n" % (i, i))

        base = "imap://127.0.0.1:%d" % self.srv.port
        listing = self.curl(base + "/").splitlines()
        self.assertIn(b'* LIST (\\HasNoChildren) "." INBOX', listing)
        self.assertIn(b'* LIST (\\Noselect \\HasChildren) "." Listed', listing)
        self.assertIn(b'* LIST (\\HasNoChildren) "." Listed.Child', listing)
        # Sequence number and UID, and a SEARCH through a custom request.
        self.assertEqual(self.curl(base + "/Listed.Child;MAILINDEX=2"), b"Subject: n1\r\n\r\nnumber 1\r\n")
        self.assertEqual(self.curl(base + "/Listed.Child;UID=3;SECTION=TEXT"), b"number 2\r\n")
        self.assertEqual(self.curl(base + "/Listed.Child?SUBJECT%20n2"), b"* SEARCH 3\r\n")

    def test_curl_over_starttls(self):
        m = self.imap("u")
        m.create("Curl")
        typ, data = m.append("Curl", None, None, b"Subject: via curl\r\n\r\nfetched by curl\r\n")
        uid = data[0].split(b"]")[0].split(b" ")[-1].decode()
        url = "imap://127.0.0.1:%d/Curl;UID=%s" % (self.srv.port, uid)
        self.assertEqual(self.curl("--ssl-reqd", "--insecure", url), b"Subject: via curl\r\n\r\nfetched by curl\r\n")


if __name__ == "__main__":
    unittest.main(verbosity=1)
