"""Packaging and operations: install-deps, .ci/run, the manual pages, the
Debian packages built by `make deb` (run `make check-packaging`, which
builds them first).

- packaging/install-deps --print installs no mail server, Node.js or
  mbsync; --test --print adds the test tools (lintian, prometheus, ...);
  .ci/run runs exactly the README's test command.
- Every key the configuration parser knows (host/config_file.c) is in
  aerogram.conf(5) under its section; every page passes man --warnings and
  lexgrog.
- build/deb/: the contents of both packages, lintian without errors, the
  control files (conffiles, maintainer scripts, md5sums), the unit's
  hardening; the package unpacked into a scratch root: its aerogramd -t
  passes on its own configuration, its unit passes systemd-analyze verify,
  and the -dev package builds the skeleton driver with its pkg-config file
  and checks the package's memory driver with its aerogram-driver-check.
"""
import gzip
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEB_DIR = os.path.join(ROOT, "build", "deb")


def sh(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)


def version():
    with open(os.path.join(ROOT, "configure")) as f:
        m = re.search(r"^VERSION=(\S+)$", f.read(), re.M)
    return m.group(1)


def deb(name):
    arch = sh(["dpkg", "--print-architecture"]).stdout.strip()
    path = os.path.join(DEB_DIR, "%s_%s-1_%s.deb" % (name, version(), arch))
    assert os.path.exists(path), "%s is missing: run make deb" % path
    return path


class InstallDeps(unittest.TestCase):
    def packages(self, *args):
        r = sh([os.path.join(ROOT, "packaging", "install-deps"), "--print"] + list(args))
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.split()

    def test_run_needs_no_other_servers(self):
        run = self.packages()
        for p in ("dovecot-imapd", "nodejs", "npm", "isync", "postfix", "prometheus", "lintian"):
            self.assertNotIn(p, run)
        for p in ("build-essential", "libssl-dev", "libevent-dev", "libsqlite3-dev", "openssl"):
            self.assertIn(p, run)

    def test_test_adds_the_test_tools(self):
        run, test = self.packages(), self.packages("--test")
        self.assertTrue(set(run) <= set(test))
        for p in ("dovecot-imapd", "nodejs", "npm", "isync", "postfix", "lintian", "prometheus", "systemd",
                  "man-db", "clang"):
            self.assertIn(p, test)

    def test_unknown_option(self):
        r = sh([os.path.join(ROOT, "packaging", "install-deps"), "--bogus"])
        self.assertEqual(r.returncode, 2)

    def test_ci_runs_the_readme_test_command(self):
        with open(os.path.join(ROOT, "README.md")) as f:
            readme = f.read()
        m = re.search(r"\*\*Run the whole test suite:\*\*\n\n    (.+)\n", readme)
        self.assertTrue(m, "the README's test command")
        command = m.group(1)
        self.assertIn("install-deps --test", command)
        with open(os.path.join(ROOT, ".ci", "run")) as f:
            ci = [l for l in f.read().splitlines() if l and not l.startswith("#") and not l.startswith("echo")]
        self.assertIn(command, ci)
        # and the run command installs without --test
        self.assertIn("    packaging/install-deps && ./configure && make -j2 && make run\n", readme)


def parser_keys():
    """{section: {key}} from host/config_file.c: its key tables (rows that
    start with { "section", "key" } or CFG_STRING("section", "key", ...)) and
    every strcmp(name, ...) inside a strcmp(section, ...) branch."""
    with open(os.path.join(ROOT, "host", "config_file.c")) as f:
        src = f.read()
    keys = {}
    for sec, name in re.findall(r'(?:\{\s*\{\s*|CFG_\w+\(\s*)"(\w+)",\s*"(\w+)"', src):
        keys.setdefault(sec, set()).add(name)
    body = src[src.index("static int on_entry("):src.index("static char *read_line(")]
    section = None
    for m in re.finditer(r'strcmp\((section|name), "(\w+)"\)', body):
        if m.group(1) == "section":
            section = m.group(2)
        elif section is not None:
            keys.setdefault(section, set()).add(m.group(2))
    return keys


def man_keys():
    """{section: {key}} from aerogram.conf(5): the .B / .BR lines right
    after each .TP under .SH [section]."""
    with open(os.path.join(ROOT, "packaging", "aerogram.conf.5")) as f:
        lines = f.read().splitlines()
    keys, section = {}, None
    for i, line in enumerate(lines):
        m = re.match(r"\.SH \[(\w+)\]$", line)
        if m:
            section = m.group(1)
            keys[section] = set()
            continue
        if line.startswith(".SH"):
            section = None
        if section and line == ".TP" and i + 1 < len(lines):
            tag = lines[i + 1]
            if tag.startswith(".B ") or tag.startswith(".BR "):
                words = re.findall(r'"[^"]*"|\S+', tag)[1:]
                for w in words:
                    if not w.startswith('"'):
                        keys[section].add(w)
    return keys


class ManPages(unittest.TestCase):
    PAGES = ["aerogramd.8", "aerogramctl.8", "aerogram.conf.5", "aerogram-driver-check.1"]

    def test_every_parser_key_is_documented(self):
        parsed, documented = parser_keys(), man_keys()
        # the parser has every section the page has, and the reverse
        self.assertEqual(set(parsed), set(documented))
        for section, names in parsed.items():
            self.assertEqual(names - documented[section], set(), "[%s] keys missing in aerogram.conf(5)" % section)
            self.assertEqual(documented[section] - names, set(),
                             "[%s] keys in aerogram.conf(5) the parser does not know" % section)
        # packaging/aerogram.conf.example names each too (set, or commented out)
        with open(os.path.join(ROOT, "packaging", "aerogram.conf.example")) as f:
            example, section = {}, None
            for line in f:
                m = re.match(r"\[(\w+)\]", line)
                if m:
                    section = m.group(1)
                m = re.match(r"#?(\w+) = ", line)
                if m and section:
                    example.setdefault(section, set()).add(m.group(1))
        for section, names in parsed.items():
            self.assertEqual(names - example.get(section, set()), set(),
                             "[%s] keys missing in aerogram.conf.example" % section)
        # the extraction found the keys at all
        self.assertIn("workers", parsed["imap"])
        self.assertIn("level", parsed["log"])

    def test_pages_lint_clean(self):
        for page in self.PAGES:
            path = os.path.join(ROOT, "packaging", page)
            r = sh(["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", path],
                   env=dict(os.environ, LC_ALL="C.UTF-8", MANROFFSEQ=""))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stderr, "", page)
            r = sh(["lexgrog", path])
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn(" - ", r.stdout)


class DebianPackages(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pkg, cls.dev = deb("aerogram"), deb("aerogram-dev")

    def contents(self, path):
        r = sh(["dpkg-deb", "--contents", path])
        self.assertEqual(r.returncode, 0, r.stderr)
        out = {}
        for line in r.stdout.splitlines():
            f = line.split()
            out[f[5].lstrip(".")] = (f[0], f[1])
        return out

    def test_contents(self):
        c = self.contents(self.pkg)
        for path, mode in (("/usr/sbin/aerogramd", "-rwxr-xr-x"), ("/usr/bin/aerogramctl", "-rwxr-xr-x"),
                           ("/usr/lib/aerogram/drivers/aerogram_sqlite.so", "-rw-r--r--"),
                           ("/usr/lib/aerogram/drivers/aerogram_memory.so", "-rw-r--r--"),
                           ("/usr/lib/aerogram/drivers/aerogram_garage.so", "-rw-r--r--"),
                           ("/etc/aerogram/aerogram.conf", "-rw-r--r--"),
                           ("/etc/aerogram/users.ini", "-rw-r-----"),
                           ("/lib/systemd/system/aerogramd.service", "-rw-r--r--"),
                           ("/usr/share/man/man8/aerogramd.8.gz", "-rw-r--r--"),
                           ("/usr/share/man/man8/aerogramctl.8.gz", "-rw-r--r--"),
                           ("/usr/share/man/man5/aerogram.conf.5.gz", "-rw-r--r--"),
                           ("/usr/share/doc/aerogram/copyright", "-rw-r--r--"),
                           ("/usr/share/doc/aerogram/changelog.Debian.gz", "-rw-r--r--"),
                           ("/var/lib/aerogram/", "drwxr-xr-x")):
            self.assertIn(path, c)
            self.assertEqual(c[path], (mode, "root/root"), path)
        # no test wrapper, no SDK file in the daemon's package
        self.assertFalse([p for p in c if "faulty" in p or "counting" in p or "/include/" in p], c.keys())
        d = self.contents(self.dev)
        for path in ("/usr/include/aerogram/driver.h", "/usr/share/pkgconfig/aerogram-driver.pc",
                     "/usr/bin/aerogram-driver-check", "/usr/share/man/man1/aerogram-driver-check.1.gz",
                     "/usr/share/doc/aerogram-dev/examples/skeleton/skeleton.c",
                     "/usr/share/doc/aerogram-dev/copyright", "/usr/share/doc/aerogram-dev/changelog.Debian.gz"):
            self.assertIn(path, d)
        self.assertFalse(set(c) & set(p for p in d if not p.endswith("/")), "a file in both packages")

    def test_lintian_has_no_errors(self):
        r = sh(["lintian", "--fail-on", "error", "--tag-display-limit", "0", self.pkg, self.dev])
        errors = [l for l in r.stdout.splitlines() if l.startswith("E:")]
        self.assertEqual(errors, [], r.stdout)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_control(self):
        tmp = tempfile.mkdtemp(prefix="aerogram-deb-control-")
        self.addCleanup(shutil.rmtree, tmp)
        self.assertEqual(sh(["dpkg-deb", "--control", self.pkg, tmp]).returncode, 0)
        with open(os.path.join(tmp, "control")) as f:
            control = f.read()
        self.assertIn("\nVersion: %s-1\n" % version(), control)
        self.assertRegex(control, r"\nDepends: adduser, .*libc6 .*libevent-2\.1-7.*libsqlite3-0")
        with open(os.path.join(tmp, "conffiles")) as f:
            self.assertEqual(f.read().split(), ["/etc/aerogram/aerogram.conf", "/etc/aerogram/users.ini"])
        with open(os.path.join(tmp, "postinst")) as f:
            postinst = f.read()
        self.assertIn("adduser --system --group", postinst)
        self.assertIn("chown aerogram:aerogram /var/lib/aerogram", postinst)
        for s in ("postinst", "prerm", "postrm"):
            self.assertTrue(os.access(os.path.join(tmp, s), os.X_OK), s)
            self.assertEqual(sh(["sh", "-n", os.path.join(tmp, s)]).returncode, 0, s)
        # md5sums covers every file, and matches
        root = tempfile.mkdtemp(prefix="aerogram-deb-root-")
        self.addCleanup(shutil.rmtree, root)
        self.assertEqual(sh(["dpkg-deb", "-x", self.pkg, root]).returncode, 0)
        r = sh(["md5sum", "--check", "--quiet", os.path.join(tmp, "md5sums")], cwd=root)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(os.path.join(tmp, "md5sums")) as f:
            listed = {l.split(None, 1)[1].strip() for l in f}
        files = {os.path.relpath(os.path.join(d, n), root) for d, _, ns in os.walk(root) for n in ns}
        self.assertEqual(listed, files)
        with gzip.open(os.path.join(root, "usr/share/doc/aerogram/changelog.Debian.gz"), "rt") as f:
            self.assertTrue(f.readline().startswith("aerogram (%s-1) " % version()))

    def test_unit_hardening(self):
        with open(os.path.join(ROOT, "packaging", "aerogramd.service")) as f:
            unit = f.read()
        for line in ("User=aerogram", "Group=aerogram", "ProtectSystem=strict", "PrivateTmp=yes",
                     "NoNewPrivileges=yes", "ReadWritePaths=/var/lib/aerogram",
                     "AmbientCapabilities=CAP_NET_BIND_SERVICE",
                     "ExecStart=/usr/sbin/aerogramd -c /etc/aerogram/aerogram.conf"):
            self.assertIn("\n" + line + "\n", unit)

    def test_scratch_root(self):
        root = tempfile.mkdtemp(prefix="aerogram-deb-root-")
        self.addCleanup(shutil.rmtree, root)
        for p in (self.pkg, self.dev):
            self.assertEqual(sh(["dpkg-deb", "-x", p, root]).returncode, 0)
        aerogramd = os.path.join(root, "usr/sbin/aerogramd")
        r = sh([aerogramd, "-V"])
        self.assertIn("aerogramd %s " % version(), r.stdout)
        r = sh([aerogramd, "-h"])
        self.assertIn("(default /etc/aerogram/aerogram.conf)", r.stdout)
        # The shipped configuration, its absolute paths moved into the
        # scratch root (the package's drivers, users file, data directory).
        with open(os.path.join(root, "etc/aerogram/aerogram.conf")) as f:
            conf = f.read()
        for d in ("/usr/lib/aerogram/", "/var/lib/aerogram/", "/etc/aerogram/"):
            self.assertIn(d, conf)
            conf = conf.replace(" = " + d, " = " + root + d)
        test_conf = os.path.join(root, "etc/aerogram/aerogram-scratch.conf")
        with open(test_conf, "w") as f:
            f.write(conf)
        r = sh([aerogramd, "-t", "-c", test_conf])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("storage driver sqlite", r.stdout)
        self.assertIn(root + "/usr/lib/aerogram/drivers/aerogram_sqlite.so", r.stdout)
        self.assertIn("0 users in", r.stdout)
        # The -dev package: the skeleton builds with its pkg-config file,
        # and its conformance suite passes on the package's memory driver.
        env = dict(os.environ, PKG_CONFIG_PATH="", PKG_CONFIG_LIBDIR=os.path.join(root, "usr/share/pkgconfig"),
                   PKG_CONFIG_SYSROOT_DIR=root)
        cflags = sh(["pkg-config", "--cflags", "aerogram-driver"], env=env).stdout.split()
        cflags += sh(["pkg-config", "--variable=driver_cflags", "aerogram-driver"], env=env).stdout.split()
        self.assertIn("-I" + root + "/usr/include", cflags)
        so = os.path.join(root, "aerogram_skeleton.so")
        r = sh(["cc", "-shared"] + cflags + ["-o", so,
                os.path.join(root, "usr/share/doc/aerogram-dev/examples/skeleton/skeleton.c")])
        self.assertEqual(r.returncode, 0, r.stderr)
        check = os.path.join(root, "usr/bin/aerogram-driver-check")
        r = sh([check, os.path.join(root, "usr/lib/aerogram/drivers/aerogram_memory.so")])
        self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr)
        r = sh([check, so])
        self.assertEqual(r.returncode, 1, r.stdout[-2000:] + r.stderr)   # loads, and does nothing
        self.assertIn("driver skeleton", r.stdout + r.stderr)

    def test_systemd_analyze_verify(self):
        if shutil.which("systemd-analyze") is None:
            # Said, not hidden: this machine cannot check the unit.
            print("\nDebianPackages: systemd-analyze is not installed: the unit was NOT verified")
            return
        root = tempfile.mkdtemp(prefix="aerogram-deb-root-")
        self.addCleanup(shutil.rmtree, root)
        self.assertEqual(sh(["dpkg-deb", "-x", self.pkg, root]).returncode, 0)
        # What the unit refers to beyond the package: the system's targets
        # and /bin/kill (ExecReload).
        units = os.path.join(root, "lib/systemd/system")
        for name in os.listdir("/lib/systemd/system"):
            if name.endswith(".target"):
                shutil.copy(os.path.join("/lib/systemd/system", name), units)
        os.makedirs(os.path.join(root, "bin"), exist_ok=True)
        shutil.copy("/bin/kill", os.path.join(root, "bin/kill"))
        r = sh(["systemd-analyze", "verify", "--man=no", "--root=" + root, "/lib/systemd/system/aerogramd.service"])
        # unknown keys are only warnings to systemd-analyze: any output fails
        self.assertEqual((r.returncode, r.stdout.strip(), r.stderr.strip()), (0, "", ""))


if __name__ == "__main__":
    unittest.main(verbosity=1)
