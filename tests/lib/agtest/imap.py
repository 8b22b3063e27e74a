"""The IMAP client of the tests: exact bytes on the wire, no hidden retries.

A dropped connection is an exception the caller sees (EOFError or OSError),
so a caller knows that, say, an APPEND was not acknowledged. `Imap` reads
the greeting (and logs in if given a user); `Raw` is the same client for
the server tests, which read the greeting themselves. Standard library only."""
import re
import socket
import ssl

from agtest.daemon import IO_TIMEOUT, client_tls_context
from agtest.mail import select_info

__all__ = ["Imap", "ImapError", "Raw"]

LITERAL = re.compile(rb"\{(\d+)\}$")


class ImapError(AssertionError):
    """A tagged NO or BAD, a greeting that is not OK, or no continuation
    where one was due."""


class Imap:
    def __init__(self, port, host="127.0.0.1", tls=False, family=socket.AF_INET, timeout=IO_TIMEOUT,
                 greeting=True, user=None, password="pw"):
        sock = socket.create_connection((host, port), timeout=timeout)
        if tls:
            sock = client_tls_context().wrap_socket(sock, server_hostname="localhost")
        self.sock = sock
        self.buf = b""
        self.n = 0
        if greeting:
            line = self.line()
            if not line.startswith(b"* OK"):
                raise ImapError("greeting: %r" % line)
        if user:
            self.login(user, password)

    # --- the wire

    def send(self, data):
        self.sock.sendall(data)

    def line(self, timeout=None):
        """One line without its CRLF (`timeout`, if given, becomes the socket's)."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            chunk = self.recv(65536)
            if not chunk:
                raise EOFError("connection closed; pending: %r" % self.buf[:200])
            self.buf += chunk

    def exact(self, n):
        """Exactly n bytes (a literal)."""
        while len(self.buf) < n:
            chunk = self.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise EOFError("connection closed in a literal")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def recv(self, size):
        """What the connection brings next, as the protocol reads it (b""
        once closed): a subclass that transforms the stream (COMPRESS)
        overrides this."""
        return self.sock.recv(size)

    def response(self):
        """One response with its literals: (text with each literal replaced
        by '{}', [literal bytes...])."""
        text, lits = b"", []
        while True:
            line = self.line()
            m = LITERAL.search(line)
            if not m:
                return text + line, lits
            text += line[:m.start()] + b"{}"
            lits.append(self.exact(int(m.group(1))))

    def until_tagged(self, tag):
        """Lines up to and including the one tagged `tag` (literals not parsed)."""
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines

    def continued(self, tag, command, response):
        """Sends a command that waits for a continuation (AUTHENTICATE,
        IDLE), then `response` as the line that follows it: the
        continuation line and the lines up to the one tagged `tag`."""
        self.send(tag + b" " + command + b"\r\n")
        cont = self.line()
        self.send(response + b"\r\n")
        return cont, self.until_tagged(tag)

    def closed(self):
        """True once the server closed the connection (after what it sent)."""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, ssl.SSLError):
            return True

    def starttls(self):
        self.sock = client_tls_context().wrap_socket(self.sock, server_hostname="localhost")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # --- commands

    def tag(self):
        self.n += 1
        return b"t%d" % self.n

    def command(self, cmd, literal=None, literal_plus=False, on_untagged=None):
        """Sends one command (str or bytes), with one literal at its end if
        given (synchronizing, or LITERAL+ if literal_plus); returns
        (untagged, tagged line), untagged a list of (text, literals) unless
        on_untagged(text, literals) takes them. Untagged responses before the
        continuation are kept too; a tagged answer instead of the
        continuation ends the command."""
        tag = self.tag()
        if isinstance(cmd, str):
            cmd = cmd.encode()
        untagged = []
        if literal is None:
            self.send(tag + b" " + cmd + b"\r\n")
        elif literal_plus:
            self.send(tag + b" " + cmd + b" {%d+}\r\n" % len(literal) + literal + b"\r\n")
        else:
            self.send(tag + b" " + cmd + b" {%d}\r\n" % len(literal))
            while True:
                text, lits = self.response()
                if text.startswith(b"+"):
                    break
                if text.startswith(tag + b" "):
                    return untagged, text
                self._untagged(untagged, on_untagged, text, lits)
            self.send(literal + b"\r\n")
        return self.answer(tag, on_untagged, untagged)

    def answer(self, tag, on_untagged=None, untagged=None):
        """Reads up to the answer tagged `tag`: (untagged, tagged line)."""
        untagged = [] if untagged is None else untagged
        while True:
            text, lits = self.response()
            if text.startswith(tag + b" "):
                return untagged, text
            self._untagged(untagged, on_untagged, text, lits)

    @staticmethod
    def _untagged(untagged, on_untagged, text, lits):
        if on_untagged:
            on_untagged(text, lits)
        else:
            untagged.append((text, lits))

    @staticmethod
    def _check(cmd, tag, tagged):
        if not tagged.startswith(tag + b" OK"):
            raise ImapError("%s: %s" % (cmd if isinstance(cmd, str) else cmd.decode("latin-1"),
                                        tagged.decode("latin-1")))

    def ok(self, cmd, literal=None, literal_plus=False, on_untagged=None):
        """command(), raising ImapError unless the answer is OK."""
        untagged, tagged = self.command(cmd, literal, literal_plus, on_untagged)
        self._check(cmd, b"t%d" % self.n, tagged)
        return untagged, tagged

    def finish(self, tag, on_untagged=None):
        """answer(), raising ImapError unless it is OK (for a command sent by hand)."""
        untagged, tagged = self.answer(tag, on_untagged)
        self._check(tag, tag, tagged)
        return untagged, tagged

    # --- what the crash tests use

    def login(self, user, password):
        """LOGIN (str or bytes), which must answer OK."""
        self.ok(b"LOGIN %s %s" % tuple(x if isinstance(x, bytes) else x.encode() for x in (user, password)))

    def append_start(self, mailbox, size):
        """Sends the APPEND line and waits for the continuation; returns the tag."""
        tag = self.tag()
        self.send(b"%s APPEND %s {%d}\r\n" % (tag, mailbox.encode(), size))
        line = self.line()
        if not line.startswith(b"+"):
            raise ImapError(line.decode("latin-1"))
        return tag

    def append_end(self, tag):
        """Reads the answer to an APPEND; returns (uidvalidity, uid)."""
        _, tagged = self.finish(tag)
        m = re.search(rb"\[APPENDUID (\d+) (\d+)\]", tagged)
        if not m:
            raise ImapError("no APPENDUID in %r" % tagged)
        return int(m.group(1)), int(m.group(2))

    def append(self, mailbox, data):
        tag = self.append_start(mailbox, len(data))
        self.send(data + b"\r\n")
        return self.append_end(tag)

    def select(self, mailbox):
        """Returns (exists, uidvalidity)."""
        return select_info(self.ok("SELECT " + mailbox)[0])

    def uid_search(self, criteria):
        untagged, _ = self.ok(b"UID SEARCH " + criteria)
        uids = []
        for text, _ in untagged:
            if text.startswith(b"* SEARCH"):
                uids += [int(x) for x in text.split()[2:]]
        return uids

    def fetch_bodies(self, uids, batch=100):
        """{uid: bytes} of BODY.PEEK[] for the given UIDs, in batches."""
        out = {}
        uids = sorted(uids)
        for i in range(0, len(uids), batch):
            chunk = b",".join(b"%d" % u for u in uids[i:i + batch])
            untagged, _ = self.ok(b"UID FETCH " + chunk + b" (UID BODY.PEEK[])")
            for text, lits in untagged:
                m = re.search(rb"UID (\d+)", text)
                if b" FETCH " in text and m and lits:
                    out[int(m.group(1))] = lits[0]
        return out

    def logout(self):
        try:
            self.command("LOGOUT")
        except (OSError, EOFError):
            pass
        self.close()


class Raw(Imap):
    """The client without reading the greeting: for what imaplib cannot send
    (pipelining, garbage) and for tests that look at the greeting."""

    def __init__(self, port, host="127.0.0.1", tls=False, family=socket.AF_INET):
        super().__init__(port, host, tls, family, greeting=False)


class Session(Raw):
    """A logged-in line-level session for the server tests: each command is
    sent as given (bytes; literals inside it must be LITERAL+) and answered
    with its lines up to and including the tagged one."""

    def __init__(self, port, user, password=b"pw", tls=False):
        super().__init__(port, tls=tls)
        self.line()  # the greeting
        self.cmd(b"LOGIN " + user + b" " + password)

    def tagged(self, text, tag=None):
        """All lines of the command up to its tagged line, and its tag."""
        if tag is None:
            tag = self.tag()
        self.send(tag + b" " + text + b"\r\n")
        return self.until_tagged(tag), tag

    def cmd(self, text, tag=None):
        """The lines of a command that must answer OK."""
        lines, tag = self.tagged(text, tag)
        if not lines[-1].startswith(tag + b" OK"):
            raise AssertionError("%r: %r" % (text, lines[-3:]))
        return lines

    def status(self, text, tag=None):
        """The tagged line's status word (OK, NO, BAD) and all lines."""
        lines, tag = self.tagged(text, tag)
        return lines[-1].split(b" ")[1], lines

    def esearch(self, text, tag=None):
        """The data of the one ESEARCH line answering the command, its
        correlator checked and cut."""
        lines, tag = self.tagged(text, tag)
        assert lines[-1].startswith(tag + b" OK"), (text, lines)
        head = b'* ESEARCH (TAG "' + tag + b'")'
        found = [l for l in lines if l.startswith(head)]
        assert len(found) == 1, (text, lines)
        return found[0][len(head):].strip()

    def append(self, mailbox, msg, flags=b"", date=None):
        """APPEND with LITERAL+, optional flags (without parentheses) and date."""
        extra = (b" (" + flags + b")" if flags else b"") + (b' "' + date + b'"' if date else b"")
        self.cmd(b"APPEND " + mailbox + extra + b" {%d+}\r\n" % len(msg) + msg)

    def fill(self, mailbox, messages, create=False):
        """Appends the messages (each bytes, or the arguments of append()
        after the mailbox as a tuple) and selects the mailbox; returns self."""
        if create:
            self.cmd(b"CREATE " + mailbox)
        for m in messages:
            self.append(mailbox, *(m if isinstance(m, tuple) else (m,)))
        self.cmd(b"SELECT " + mailbox)
        return self

    def responses(self, text, name):
        """The data of every untagged `name` response (SEARCH, SORT, LIST,
        ...) of a command that must answer OK."""
        head = b"* " + name
        return [l[len(head):].strip() for l in self.cmd(text)
                if l.startswith(head) and l[len(head):len(head) + 1] in (b"", b" ")]

    def one(self, text, name):
        """The data of the one untagged `name` response of a command that
        must answer OK."""
        found = self.responses(text, name)
        assert len(found) == 1, (text, name, found)
        return found[0]

    def capabilities(self):
        return self.one(b"CAPABILITY", b"CAPABILITY").split()
