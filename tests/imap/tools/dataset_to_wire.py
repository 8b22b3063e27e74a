#!/usr/bin/env python3
"""Turns the command shapes of a recorded client workload (one Rust-debug
rendering per line, as imap-codec prints them) into IMAP wire syntax.

Usage (from tests/imap):
    tools/dataset_to_wire.py data/imap_commands_dataset.log > data/dataset_commands.txt

Each output line is "<Kind>\t<command without tag>"; an APPEND message is
the placeholder {MSG}, which the test replaces by a literal."""
import re
import sys

TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<dt>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d)'
                   r'|(?P<date>\d{4}-\d\d-\d\d)|(?P<num>\d+)|(?P<id>[A-Za-z_][A-Za-z0-9_]*)|(?P<p>[(){}\[\],:+]))')
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def tokenize(text):
    pos, out = 0, []
    text = text.replace("/* REDACTED */", "Redacted")
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m or m.end() == pos:
            if text[pos:].strip() == "":
                break
            raise ValueError("cannot tokenize at %r" % text[pos:])
        pos = m.end()
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
    return out


class P:
    def __init__(self, toks):
        self.t, self.i = toks, 0

    def peek(self):
        return self.t[self.i] if self.i < len(self.t) else (None, None)

    def take(self, v=None):
        tok = self.t[self.i]
        if v is not None and tok[1] != v:
            raise ValueError("expected %s got %s" % (v, tok))
        self.i += 1
        return tok

    def items(self, close):
        """Comma-separated values up to and including `close`."""
        items = []
        while self.peek()[1] != close:
            items.append(self.value())
            if self.peek()[1] == ",":
                self.take(",")
        self.take(close)
        return items

    def value(self):
        kind, v = self.take()
        if kind in ("str",):
            return ("str", v[1:-1].replace('\\"', '"').replace("\\\\", "\\"))
        if kind in ("num",):
            return ("num", int(v))
        if kind in ("date", "dt"):
            return (kind, v)
        if v == "[":
            items = self.items("]")
            if self.peek()[1] == "+":
                self.take("+")
            return ("list", items)
        if v == "(":
            return ("tuple", self.items(")"))
        if kind == "id":
            name = v
            if self.peek()[1] == "(":
                return ("call", name, self.value()[1])
            if self.peek()[1] == "{":
                self.take("{")
                fields = {}
                while self.peek()[1] != "}":
                    key = self.take()[1]
                    self.take(":")
                    fields[key] = self.value()
                    if self.peek()[1] == ",":
                        self.take(",")
                self.take("}")
                return ("struct", name, fields)
            return ("id", name)
        raise ValueError("unexpected %r" % (v,))


def quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def mailbox(v):
    if v == ("id", "Inbox"):
        return "INBOX"
    return astring(v)


def astring(v):
    # Other(MailboxOther(Atom(AtomExt("x")))) / String(Quoted(Quoted("x"))) / Token(ListCharString("*"))
    while v[0] == "call":
        name, args = v[1], v[2]
        if name in ("Atom", "AtomExt", "ListCharString", "Token") and args[0][0] == "str":
            return args[0][1]
        if name == "Quoted" and args[0][0] == "str":
            return quote(args[0][1])
        v = args[0]
    if v[0] == "str":
        return quote(v[1])
    raise ValueError("astring %r" % (v,))


def seqnum(v):
    if v == ("id", "Asterisk"):
        return "*"
    return str(v[2][0][1])


def seqset(v):
    while v[0] == "call" and v[1] == "SequenceSet":
        v = v[2][0]
    parts = []
    for item in v[1]:
        if item[1] == "Single":
            parts.append(seqnum(item[2][0]))
        else:
            parts.append(seqnum(item[2][0]) + ":" + seqnum(item[2][1]))
    return ",".join(parts)


FLAG = {"Seen": "\\Seen", "Draft": "\\Draft", "Deleted": "\\Deleted", "Answered": "\\Answered",
        "Flagged": "\\Flagged"}


def flag(v):
    if v[0] == "id":
        return FLAG[v[1]]
    return astring(v[2][0]) if v[1] == "Keyword" else astring(v)


def date(v):
    y, m, d = v[1].split("-")
    return "%d-%s-%s" % (int(d), MONTHS[int(m) - 1], y)


def section(v):
    if v == ("id", "None"):
        return ""
    inner = v[2][0]
    name, args = inner[1], inner[2]
    prefix = ""
    if args and args[0] != ("id", "None") and name != "Part":
        prefix = ".".join(str(n[1]) for n in args[0][2][0][1]) + "."
    if name == "Part":
        return ".".join(str(n[1]) for n in args[0][2][0][1])
    if name == "Header":
        return prefix + "HEADER"
    if name == "Text":
        return prefix + "TEXT"
    if name == "HeaderFields":
        return prefix + "HEADER.FIELDS (" + " ".join(astring(f) for f in args[1][1]) + ")"
    raise ValueError(name)


SIMPLE_ITEMS = {"Uid": "UID", "Flags": "FLAGS", "Envelope": "ENVELOPE", "InternalDate": "INTERNALDATE",
                "Rfc822Size": "RFC822.SIZE", "BodyStructure": "BODYSTRUCTURE", "Rfc822Header": "RFC822.HEADER",
                "ModSeq": "MODSEQ", "Body": "BODY", "Rfc822": "RFC822", "Rfc822Text": "RFC822.TEXT"}


def fetch_item(v):
    if v[0] == "id":
        return SIMPLE_ITEMS[v[1]]
    f = v[2]
    out = ("BODY.PEEK[" if f["peek"] == ("id", "true") else "BODY[") + section(f["section"]) + "]"
    if f["partial"] != ("id", "None"):
        a, b = f["partial"][2][0][1]
        out += "<%d.%d>" % (a[1], b[1])
    return out


def search(v):
    if v[0] == "id":
        return v[1].upper()
    name, args = v[1], v[2]
    if name == "And":
        return " ".join(search(a) for a in args[0][1])
    if name == "Not":
        return "NOT " + search(args[0])
    if name == "SequenceSet":
        return seqset(args[0])
    if name in ("Since", "Before", "On", "SentSince", "SentBefore", "SentOn"):
        return name.upper() + " " + date(args[0])
    if name == "Header":
        return "HEADER " + astring(args[0]) + " " + astring(args[1])
    raise ValueError(name)


def status_items(items):
    return "(" + " ".join(i[1].upper() for i in items) + ")"


def convert(line):
    line = line.strip()
    if line.endswith("} }"):
        line = line[:-2]
    v = P(tokenize(line)).value()
    if v[0] == "id":
        return v[1], v[1].upper()
    kind, f = v[1], v[2]
    uid = "UID " if f.get("uid") == ("id", "true") else ""
    if kind == "Append":
        flags = " (" + " ".join(flag(x) for x in f["flags"][1]) + ")" if f["flags"][1] else ""
        dt = ""
        if f["date"] != ("id", "None"):
            m = re.match(r"(\d+)-(\d+)-(\d+)T(\d+:\d+:\d+)([+-]\d\d):(\d\d)", f["date"][2][0][1])
            dt = ' "%s-%s-%s %s %s%s"' % (m.group(3), MONTHS[int(m.group(2)) - 1], m.group(1), m.group(4),
                                         m.group(5), m.group(6))
        return kind, "APPEND " + mailbox(f["mailbox"]) + flags + dt + " {MSG}"
    if kind in ("Create", "Subscribe"):
        return kind, kind.upper() + " " + mailbox(f["mailbox"])
    if kind in ("Select", "Examine"):
        mods = " (CONDSTORE)" if f["modifiers"][1] else ""
        return kind, kind.upper() + " " + mailbox(f["mailbox"]) + mods
    if kind == "Enable":
        caps = {"CondStore": "CONDSTORE", "Utf8": "UTF8=ACCEPT"}
        return kind, "ENABLE " + " ".join(caps[c[1]] for c in f["capabilities"][1])
    if kind == "Expunge":
        if f["uid_sequence_set"] == ("id", "None"):
            return kind, "EXPUNGE"
        return kind, "UID EXPUNGE " + seqset(f["uid_sequence_set"][2][0])
    if kind == "Fetch":
        items = f["macro_or_item_names"][2][0][1]
        mods = ""
        if f["modifiers"][1]:
            mods = " (CHANGEDSINCE %d)" % f["modifiers"][1][0][2][0][1]
        return kind, uid + "FETCH " + seqset(f["sequence_set"]) + " (" + " ".join(fetch_item(i) for i in items) + ")" + mods
    if kind in ("List", "Lsub"):
        ret = ""
        if f.get("return") and f["return"][1]:
            ret = " RETURN (STATUS " + status_items(f["return"][1][0][2][0][1]) + ")"
        return kind, kind.upper() + " " + mailbox(f["reference"]) + " " + astring(f["mailbox_wildcard"]) + ret
    if kind == "Login":
        return kind, "LOGIN " + astring(f["username"]) + ' "secret"'
    if kind == "Move":
        return kind, uid + "MOVE " + seqset(f["sequence_set"]) + " " + mailbox(f["mailbox"])
    if kind == "Search":
        cs = "" if f["charset"] == ("id", "None") else "CHARSET " + astring(f["charset"]) + " "
        return kind, uid + "SEARCH " + cs + search(f["criteria"])
    if kind == "Status":
        return kind, "STATUS " + mailbox(f["mailbox"]) + " " + status_items(f["item_names"][1])
    if kind == "Store":
        op = {"Add": "+", "Remove": "-", "Replace": ""}[f["kind"][1]]
        silent = ".SILENT" if f["response"] == ("id", "Silent") else ""
        return kind, uid + "STORE " + seqset(f["sequence_set"]) + " " + op + "FLAGS" + silent + " (" + \
            " ".join(flag(x) for x in f["flags"][1]) + ")"
    raise ValueError(kind)


for raw in open(sys.argv[1]):
    if raw.strip():
        k, wire = convert(raw)
        print(k + "\t" + wire)
