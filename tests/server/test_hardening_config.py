"""What the configuration, the users file, the log and TLS refuse: each bad
file is refused both by `aerogramd -t` and by start-up, in one line with the
file, the line and the reason; a client's ID cannot put escape sequences in
the log; TLS 1.2 offers forward-secret AEAD suites only. Run by
`make check-server`."""
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from agtest import (AEROGRAMD, DRIVER, IO_TIMEOUT, Raw, Server,  # noqa: E402
                               free_port, make_certificate)

ARGON2_OK = ("$argon2id$v=19$m=65536,t=3,p=1$c29tZXNhbHRzb21lc2FsdA"
             "$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g")


def make_rsa_certificate(directory, name="rsa"):
    cert = os.path.join(directory, name + "-cert.pem")
    key = os.path.join(directory, name + "-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=localhost"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.chmod(key, 0o600)
    return cert, key


class Files:
    """A temporary directory with a configuration, a users file and a certificate."""

    def __init__(self, test):
        self.dir = tempfile.mkdtemp(prefix="aerogram-hardening-")
        test.addCleanup(shutil.rmtree, self.dir, True)
        self.users = self.write("users.ini", "[alice]\npassword = {PLAIN}secret\n")
        self.cert, self.key = make_certificate(self.dir)
        os.chmod(self.key, 0o600)
        self.port = free_port()

    def write(self, name, text, mode=0o600):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def config(self, imap=(), auth=None, storage=()):
        """A configuration file: `imap` lines after listen; `auth` replaces [auth]."""
        lines = ["[storage]", "driver = " + DRIVER] + list(storage)
        lines += ["[imap]", "listen = 127.0.0.1:%d" % self.port] + list(imap)
        lines += ["[auth]"] + (list(auth) if auth is not None else ["users_file = " + self.users])
        return self.write("aerogram.conf", "\n".join(lines) + "\n")


def check(path):
    return subprocess.run([AEROGRAMD, "-t", "-c", path], capture_output=True, text=True, timeout=IO_TIMEOUT)


def start(path):
    """Starts aerogramd on `path`, expecting it to stop at start-up."""
    proc = subprocess.Popen([AEROGRAMD, "-c", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=IO_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError("aerogramd started on a configuration it should refuse")
    return proc.returncode, out


def errors(text):
    return [line for line in text.splitlines() if line and ": warning: " not in line and ": info: " not in line]


class Refusals(unittest.TestCase):
    def assert_refused(self, path, *needles):
        """-t and start-up both refuse `path` with one line holding every needle."""
        out = check(path)
        self.assertNotEqual(out.returncode, 0, out.stdout)
        lines = errors(out.stderr)
        self.assertEqual(len(lines), 1, out.stderr)
        for needle in needles:
            self.assertIn(needle, lines[0])
        rc, log = start(path)
        self.assertEqual(rc, 1, log)
        lines = errors(log)
        self.assertEqual(len(lines), 1, log)
        for needle in needles:
            self.assertIn(needle, lines[0])
        return lines[0]

    def assert_accepted(self, path):
        out = check(path)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("is valid", out.stdout)
        return out


class CheckIsStartUp(Refusals):
    """Item 6: -t refuses what start-up refuses, and the other way round."""

    def test_check_refuses_what_start_up_refuses(self):
        f = Files(self)
        self.assert_accepted(f.config(["tls_cert = " + f.cert, "tls_key = " + f.key]))
        # the users file: missing, a directory, an invalid entry, not set
        path = f.config(auth=["users_file = %s/none.ini" % f.dir])
        self.assert_refused(path, "%s/none.ini: cannot open the users file" % f.dir, "aerogram.conf:6")
        path = f.config(auth=["users_file = " + f.dir])
        self.assert_refused(path, f.dir + ": the users file is a directory")
        bad = f.write("bad.ini", "[alice]\npassword = secret\n")
        path = f.config(auth=["users_file = " + bad])
        self.assert_refused(path, bad + ":2: [alice] password: password must be an Argon2 hash")
        path = f.config(auth=[])
        self.assert_refused(path, "users_file is not set")
        # listen empty, no tls_listen
        path = f.write("empty.conf", "[storage]\ndriver = %s\n[imap]\nlisten =\n[auth]\nusers_file = %s\n"
                       % (DRIVER, f.users))
        self.assert_refused(path, "empty.conf:4: [imap] listen: empty", "no address to listen on")
        # tls_key missing, then a key of another certificate
        path = f.config(["tls_cert = " + f.cert, "tls_key = %s/none.pem" % f.dir])
        self.assert_refused(path, "aerogram.conf:6: [imap] tls_key %s/none.pem: cannot load the key" % f.dir)
        other_dir = os.path.join(f.dir, "other")
        os.mkdir(other_dir)
        _, other_key = make_certificate(other_dir)
        os.chmod(other_key, 0o600)
        path = f.config(["tls_cert = " + f.cert, "tls_key = " + other_key])
        self.assert_refused(path, "aerogram.conf:6: [imap] tls_key %s does not match the certificate" % other_key)


class NumericRanges(Refusals):
    """Item 7: every numeric key has a minimum and a maximum."""

    KEYS = (("imap", "max_line", 1024, 16777216), ("imap", "max_message", 1024, 1073741824),
            ("imap", "workers", 1, 256), ("imap", "loops", 0, 64), ("imap", "max_connections", 1, 1000000),
            ("imap", "idle_timeout", 1, 86400), ("auth", "failure_delay", 0, 600000),
            ("auth", "failure_delay_max", 0, 600000))

    def test_every_numeric_key_has_bounds(self):
        f = Files(self)
        for section, key, low, high in self.KEYS:
            values = ["18446744073709551615", "18446744073709551616", str(high + 1), "-1", "12abc", ""]
            if low > 0:
                values.append(str(low - 1))
            for value in values:
                line = "%s = %s" % (key, value)
                if section == "imap":
                    path, lineno = f.config([line]), 5
                else:
                    path, lineno = f.config(auth=["users_file = " + f.users, line]), 7
                with self.subTest(key=key, value=value):
                    self.assert_refused(path, "aerogram.conf:%d: [%s] %s: must be" % (lineno, section, key),
                                        "from %d to %d" % (low, high))
            # both bounds themselves are accepted
            for value in (low, high):
                extra = ["failure_delay = 0"] if key == "failure_delay_max" else []
                if key == "failure_delay":
                    extra = ["failure_delay_max = 600000"]
                line = "%s = %d" % (key, value)
                path = (f.config([line]) if section == "imap"
                        else f.config(auth=["users_file = " + f.users, line] + extra))
                with self.subTest(key=key, value=value):
                    self.assert_accepted(path)

    def test_key_set_twice(self):
        f = Files(self)
        self.assert_refused(f.config(["max_line = 2048", "max_line = 4096"]),
                            "aerogram.conf:6: [imap] max_line: set twice")


class UsersFile(Refusals):
    """Item 9: the users file refuses what used to log in wrongly or cost gigabytes."""

    BAD = (("[alice]\npassword = {PLAIN}\n", ":2: [alice] password: empty {PLAIN} password"),
           ("[alice]\n[bob]\npassword = {PLAIN}x\n", ":1: [alice]: no password line for this user"),
           ("[bob]\npassword = {PLAIN}x\n[alice]\n", ":3: [alice]: no password line for this user"),
           ("[alice]\npassword = $argon2id$garbage\n", ":2: [alice] password: Argon2 hash"),
           ("[alice]\npassword = $argon2id$v=19$m=4194304,t=3,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNo\n",
            ":2: [alice] password: Argon2 hash: costs m=4194304,t=3,p=1 out of bounds"),
           ("[alice]\npassword = $argon2id$v=19$m=65536,t=100,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNo\n",
            ":2: [alice] password: Argon2 hash: costs m=65536,t=100,p=1 out of bounds"),
           ("[alice]\npassword = {PLAIN}a\npassword = {PLAIN}b\n", ":3: [alice] password: password set twice"),
           ("[alice]\npassword = {PLAIN}a\n[alice]\npassword = {PLAIN}b\n", ":3: [alice]: user declared twice"),
           ("[alice]\npasswd = {PLAIN}a\n", ":2: [alice] passwd: unknown key"))

    def test_bad_entries_refused_with_file_and_line(self):
        f = Files(self)
        for text, needle in self.BAD:
            users = f.write("users.ini", text)
            with self.subTest(text=text):
                self.assert_refused(f.config(), users + needle)
        f.write("users.ini", "[alice]\npassword = %s\n" % ARGON2_OK)
        self.assert_accepted(f.config())

    def test_a_value_runs_to_the_end_of_its_line(self):
        srv = Server({"alice": "{PLAIN}pa ;ss"}, tls=False)
        try:
            for password, ok in (("pa", False), ("pa ;ss", True)):
                r = Raw(srv.port)
                r.line()
                r.send(b'a LOGIN alice "%s"\r\n' % password.encode())
                answer = r.until_tagged(b"a")[-1]
                self.assertTrue(answer.startswith(b"a OK" if ok else b"a NO"), (password, answer))
                r.close()
        finally:
            srv.stop()

    def test_warnings_for_files_others_can_read_or_write(self):
        f = Files(self)
        driver_dir = os.path.join(f.dir, "drivers")
        os.mkdir(driver_dir)
        driver = os.path.join(driver_dir, os.path.basename(DRIVER))
        shutil.copy(DRIVER, driver)
        f.write("users.ini", "[alice]\npassword = %s\n" % ARGON2_OK)
        imap = ["tls_cert = " + f.cert, "tls_key = " + f.key]
        # private files: no warning
        out = self.assert_accepted(f.config(imap, storage=()))
        self.assertNotIn("warning", out.stderr)
        os.chmod(f.users, 0o644)
        os.chmod(f.key, 0o644)
        os.chmod(driver, 0o777)
        lines = [l for l in open(f.config(imap)).read().splitlines() if not l.startswith("driver =")]
        lines.insert(1, "driver = " + driver)
        path = f.write("aerogram.conf", "\n".join(lines) + "\n")
        out = self.assert_accepted(path)
        for needle in ("%s: the users file is readable by other users (mode 0644)" % f.users,
                       "%s: the TLS key is readable by other users (mode 0644)" % f.key,
                       "%s: the storage driver is writable by other users (mode 0777)" % driver):
            self.assertIn("aerogramd: warning: " + needle, out.stderr)
        # start-up says the same, and serves
        srv_log = os.path.join(f.dir, "log")
        with open(srv_log, "w") as log:
            proc = subprocess.Popen([AEROGRAMD, "-c", path], stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + IO_TIMEOUT
            while time.monotonic() < deadline and "ready (" not in open(srv_log).read():
                self.assertIsNone(proc.poll(), open(srv_log).read())
                time.sleep(0.1)
            text = open(srv_log).read()
            self.assertIn("warning: %s: the users file is readable" % f.users, text)
            self.assertIn("warning: %s: the TLS key is readable" % f.key, text)
            self.assertIn("warning: %s: the storage driver is writable" % driver, text)
        finally:
            proc.terminate()
            proc.wait(IO_TIMEOUT)


class LogEscaping(unittest.TestCase):
    """Item 10: what a client sends reaches the log escaped."""

    def test_id_values_are_escaped(self):
        srv = Server({"alice": "{PLAIN}secret"}, tls=False)
        try:
            r = Raw(srv.port)
            r.line()
            evil = b"\x1b[31mred\x07\r\nfake: line"
            r.send(b'a ID ("name" {%d+}\r\n%s "ve\x1b]0;title\x07" "x")\r\n' % (len(evil), evil))
            self.assertTrue(r.until_tagged(b"a")[-1].startswith(b"a OK"))
            r.send(b"b LOGIN \"\x1b[1m\" x\r\n")
            r.until_tagged(b"b")
            r.close()
            self.assertTrue(srv.wait_log("authentication failed"))
            with open(srv.log_path, "rb") as f:
                log = f.read()
            self.assertNotIn(b"\x1b", log)
            self.assertNotIn(b"\x07", log)
            self.assertIn(b'"name"="\\x1b[31mred\\x07\\x0d\\x0afake: line", "ve\\x1b]0;title\\x07"="x"', log)
            self.assertIn(b"user=\\x1b[1m", log)
            self.assertNotIn(b"\nfake: line", log)
        finally:
            srv.stop()


class TlsPolicy(Refusals):
    """Item 11: TLS 1.2 with forward-secret AEAD suites only by default; tls_ciphers, tls_min_version."""

    def server(self, f, extra=()):
        cert, key = make_rsa_certificate(f.dir)
        port = free_port()
        srv = Server({"alice": "{PLAIN}secret"}, tls=False,
                     imap=["tls_cert = " + cert, "tls_key = " + key, "tls_listen = 127.0.0.1:%d" % port]
                     + list(extra))
        self.addCleanup(srv.stop)
        return srv, port

    def handshake(self, port, ciphers=None, version=ssl.TLSVersion.TLSv1_2):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = version
        ctx.maximum_version = version
        if ciphers:
            ctx.set_ciphers(ciphers + ":@SECLEVEL=0")
        with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as sock:
            try:
                with ctx.wrap_socket(sock, server_hostname="localhost") as tls:
                    greeting = tls.recv(1024)
                    self.assertTrue(greeting.startswith(b"* OK"), greeting)
                    return tls.version(), tls.cipher()[0]
            except (ssl.SSLError, ConnectionResetError):
                return None

    def test_default_policy_is_forward_secret_aead(self):
        f = Files(self)
        srv, port = self.server(f)
        self.assertIsNone(self.handshake(port, "AES128-SHA"))
        self.assertIsNone(self.handshake(port, "AES256-GCM-SHA384"))
        self.assertIsNone(self.handshake(port, "ECDHE-RSA-AES128-SHA"))
        self.assertEqual(self.handshake(port, "ECDHE-RSA-AES128-GCM-SHA256"),
                         ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256"))
        self.assertEqual(self.handshake(port, "ECDHE-RSA-CHACHA20-POLY1305"),
                         ("TLSv1.2", "ECDHE-RSA-CHACHA20-POLY1305"))
        self.assertEqual(self.handshake(port, version=ssl.TLSVersion.TLSv1_3)[0], "TLSv1.3")

    def test_operator_cipher_list_is_applied(self):
        # the client above can offer ECDHE-RSA-AES128-SHA: a server told to takes it
        f = Files(self)
        srv, port = self.server(f, ["tls_ciphers = ECDHE-RSA-AES128-SHA"])
        self.assertEqual(self.handshake(port, "ECDHE-RSA-AES128-SHA"), ("TLSv1.2", "ECDHE-RSA-AES128-SHA"))
        self.assertIsNone(self.handshake(port, "ECDHE-RSA-AES128-GCM-SHA256"))

    def test_min_version_tls13_refuses_tls12(self):
        f = Files(self)
        srv, port = self.server(f, ["tls_min_version = TLSv1.3"])
        self.assertIsNone(self.handshake(port, "ECDHE-RSA-AES128-GCM-SHA256"))
        self.assertEqual(self.handshake(port, version=ssl.TLSVersion.TLSv1_3)[0], "TLSv1.3")
        # STARTTLS on the cleartext port follows the same policy
        r = Raw(srv.port)
        r.line()
        r.send(b"s STARTTLS\r\n")
        self.assertTrue(r.until_tagged(b"s")[-1].startswith(b"s OK"))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with self.assertRaises((ssl.SSLError, ConnectionResetError)):
            ctx.wrap_socket(r.sock, server_hostname="localhost")
        r.close()

    def test_bad_tls_keys_refused(self):
        f = Files(self)
        tls = ["tls_cert = " + f.cert, "tls_key = " + f.key]
        self.assert_refused(f.config(tls + ["tls_min_version = TLSv1.1"]),
                            "aerogram.conf:7: [imap] tls_min_version: must be TLSv1.2 or TLSv1.3")
        self.assert_refused(f.config(tls + ["tls_ciphers = NO-SUCH-CIPHER"]),
                            "aerogram.conf:7: [imap] tls_ciphers: 'NO-SUCH-CIPHER' names no cipher suite")
        # without a certificate the list is checked all the same
        self.assert_refused(f.config(["tls_ciphers = NO-SUCH-CIPHER"]),
                            "aerogram.conf:5: [imap] tls_ciphers")


if __name__ == "__main__":
    unittest.main(verbosity=1)
