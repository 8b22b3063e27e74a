"""LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819) and CREATE-SPECIAL-USE
(RFC 6154) through a real aerogramd: the RFCs' examples on their own
hierarchies (with '.' for the delimiter), then the hard cases: subscribed
names that do not exist, RECURSIVEMATCH with descendants inside and outside
the patterns, several patterns, STATUS only for selectable mailboxes, and
the BAD and NO answers. Run by `make check-server` (memory and SQLite)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from agtest import Session  # noqa: E402
from agtest.case import ServerCase  # noqa: E402


class Client(Session):
    def answer(self, text):
        """The tagged status word (OK, NO, BAD) and the rest of the line."""
        lines, tag = self.tagged(text)
        return lines[-1][len(tag) + 1:]

    def listing(self, text):
        """LIST / STATUS responses of a command as (kind, attrs, name, extra):
        attrs a frozenset of lower-case attributes, extra the extended data
        (or the STATUS items) as sent."""
        out = []
        for l in self.cmd(text):
            if l.startswith(b"* LIST ") or l.startswith(b"* LSUB "):
                kind = l[2:6]
                close = l.index(b")")
                attrs = frozenset(a.lower() for a in l[l.index(b"(") + 1:close].split())
                rest = l[close + 2:]
                assert rest.startswith(b'"."'), l
                rest = rest[4:]
                if rest.startswith(b'"'):
                    end = rest.index(b'"', 1)
                    name, extra = rest[1:end], rest[end + 1:].strip()
                else:
                    name, _, extra = rest.partition(b" ")
                out.append((kind, attrs, name, extra))
            elif l.startswith(b"* STATUS "):
                rest = l[len(b"* STATUS "):]
                name, _, items = rest.partition(b" ")
                out.append((b"STATUS", frozenset(), name.strip(b'"'), items))
        return out


def attrs(*names):
    return frozenset(n.lower().encode() for n in names)


class ListExtended(ServerCase):
    USERS = 10
    Client = Client

    def names(self, listing, kind=b"LIST"):
        return [(a, n, x) for k, a, n, x in listing if k == kind]

    def test_capabilities(self):
        c = self.client(b"u0")
        caps = c.capabilities()
        for name in (b"LIST-EXTENDED", b"LIST-STATUS", b"CREATE-SPECIAL-USE", b"SPECIAL-USE"):
            self.assertIn(name, caps)

    def fruit(self, c):
        """RFC 5258 section 5's hierarchy: Fruit.Peach was subscribed and
        then deleted."""
        for name in (b"Fruit", b"Fruit.Apple", b"Fruit.Banana", b"Fruit.Peach", b"Tofu", b"Vegetable",
                     b"Vegetable.Broccoli", b"Vegetable.Corn"):
            c.cmd(b"CREATE " + name)
        for name in (b"Fruit.Banana", b"Fruit.Peach", b"Vegetable", b"Vegetable.Broccoli"):
            c.cmd(b"SUBSCRIBE " + name)
        c.cmd(b"DELETE Fruit.Peach")

    def test_rfc5258_examples_1_to_6(self):
        c = self.client(b"u1")
        self.fruit(c)
        pats = b'("Fruit*" "Tofu" Vegetable*)'
        # 2: SUBSCRIBED selects (and returns) subscriptions, existing or not
        self.assertEqual(self.names(c.listing(b'LIST (SUBSCRIBED) "" ' + pats)), [
            (attrs("\\Subscribed", "\\HasNoChildren"), b"Fruit.Banana", b""),
            (attrs("\\Subscribed", "\\NonExistent", "\\HasNoChildren"), b"Fruit.Peach", b""),
            (attrs("\\Subscribed", "\\HasChildren"), b"Vegetable", b""),
            (attrs("\\Subscribed", "\\HasNoChildren"), b"Vegetable.Broccoli", b""),
        ])
        # 3 and 4: CHILDREN; REMOTE adds nothing here
        for sel in (b"()", b"(REMOTE)"):
            self.assertEqual(self.names(c.listing(b"LIST " + sel + b' "" ("Fruit" "Tofu" "Veg%") RETURN (CHILDREN)')), [
                (attrs("\\HasChildren"), b"Fruit", b""),
                (attrs("\\HasNoChildren"), b"Tofu", b""),
                (attrs("\\HasChildren"), b"Vegetable", b""),
            ])
        # 5: (REMOTE SUBSCRIBED) is (SUBSCRIBED) here
        self.assertEqual(len(self.names(c.listing(b'LIST (REMOTE SUBSCRIBED) "" ' + pats))), 4)
        # 6: RETURN (SUBSCRIBED) marks what is subscribed among all
        self.assertEqual(self.names(c.listing(b'LIST (REMOTE) "" ' + pats + b" RETURN (SUBSCRIBED)")), [
            (attrs("\\HasChildren"), b"Fruit", b""),
            (attrs("\\HasNoChildren"), b"Fruit.Apple", b""),
            (attrs("\\Subscribed", "\\HasNoChildren"), b"Fruit.Banana", b""),
            (attrs("\\HasNoChildren"), b"Tofu", b""),
            (attrs("\\Subscribed", "\\HasChildren"), b"Vegetable", b""),
            (attrs("\\Subscribed", "\\HasNoChildren"), b"Vegetable.Broccoli", b""),
            (attrs("\\HasNoChildren"), b"Vegetable.Corn", b""),
        ])
        # a plain LIST still shows no \Subscribed and no deleted name
        plain = self.names(c.listing(b'LIST "" Fruit*'))
        self.assertEqual([n for _, n, _ in plain], [b"Fruit", b"Fruit.Apple", b"Fruit.Banana"])
        self.assertTrue(all(b"\\subscribed" not in a for a, _, _ in plain))

    def test_rfc5258_example_8_childinfo(self):
        """Foo.Baz is the only subscription: RECURSIVEMATCH brings Foo
        back with CHILDINFO, but not Moo (no subscribed child)."""
        c = self.client(b"u2")
        for name in (b"Foo", b"Foo.Bar", b"Foo.Baz", b"Moo"):
            c.cmd(b"CREATE " + name)
        c.cmd(b"SUBSCRIBE Foo.Baz")
        self.assertEqual(self.names(c.listing(b'LIST (SUBSCRIBED) "" "*oo*"')),
                         [(attrs("\\Subscribed", "\\HasNoChildren"), b"Foo.Baz", b"")])
        self.assertEqual(self.names(c.listing(b'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%oo"')),
                         [(attrs("\\HasChildren"), b"Foo", b'("CHILDINFO" ("SUBSCRIBED"))')])
        # the child is returned itself: no CHILDINFO for Foo (RFC 5258 3.5)
        self.assertEqual(self.names(c.listing(b'LIST (SUBSCRIBED RECURSIVEMATCH) "" ("%oo" "Foo.%")')),
                         [(attrs("\\Subscribed", "\\HasNoChildren"), b"Foo.Baz", b"")])
        # Foo subscribed too: \Subscribed and CHILDINFO on one line
        c.cmd(b"SUBSCRIBE Foo")
        self.assertEqual(self.names(c.listing(b'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%oo" RETURN (CHILDREN)')),
                         [(attrs("\\Subscribed", "\\HasChildren"), b"Foo", b'("CHILDINFO" ("SUBSCRIBED"))')])
        # no subscription below: nothing, though Foo has children
        c.cmd(b"UNSUBSCRIBE Foo")
        c.cmd(b"UNSUBSCRIBE Foo.Baz")
        self.assertEqual(self.names(c.listing(b'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%oo"')), [])
        # a subscription below a name that exists neither as a mailbox nor
        # as a level: \NonExistent with CHILDINFO
        c.cmd(b"SUBSCRIBE Ghost.Child")
        self.assertEqual(self.names(c.listing(b'LIST (SUBSCRIBED RECURSIVEMATCH) "" "Gh%"')),
                         [(attrs("\\NonExistent", "\\HasNoChildren"), b"Ghost", b'("CHILDINFO" ("SUBSCRIBED"))')])
        self.assertEqual(self.names(c.listing(b'LIST "" "Gh*"')), [])

    def test_rfc5258_example_9(self):
        c = self.client(b"u3")
        for name in (b"baz2", b"baz2.bar2", b"baz2.bar22", b"baz2.bar222", b"eps2", b"eps2.mamba", b"qux2.bar2"):
            c.cmd(b"CREATE " + name)
            if name != b"baz2":
                c.cmd(b"SUBSCRIBE " + name)
        got = self.names(c.listing(b'LIST (RECURSIVEMATCH SUBSCRIBED) "" "*2"'))
        self.assertEqual([(n, x) for _, n, x in got], [
            (b"baz2.bar2", b""), (b"baz2.bar22", b""), (b"baz2.bar222", b""),
            (b"eps2", b'("CHILDINFO" ("SUBSCRIBED"))'), (b"qux2.bar2", b"")])
        self.assertIn(b"\\subscribed", got[3][0])

    def test_special_use_selection_and_create(self):
        c = self.client(b"u4")
        # RFC 6154 5.2's example
        self.assertEqual(c.answer(b"CREATE MySpecial (USE (\\Archive))"), b"OK CREATE completed.")
        c.cmd(b"CREATE Plain")
        self.assertEqual(c.answer(b"CREATE Both (USE (\\Sent \\Drafts))")[:2], b"OK")
        got = {n: a for a, n, _ in self.names(c.listing(b'LIST (SPECIAL-USE) "" "*"'))}
        self.assertNotIn(b"Plain", got)
        self.assertNotIn(b"INBOX", got)
        self.assertEqual(got[b"MySpecial"], attrs("\\Archive", "\\HasNoChildren"))
        self.assertEqual(got[b"Both"], attrs("\\Sent", "\\Drafts", "\\HasNoChildren"))
        self.assertEqual(got[b"Sent"], attrs("\\Sent", "\\HasNoChildren"))  # a default mailbox
        ret = {n: a for a, n, _ in self.names(c.listing(b'LIST "" "*" RETURN (SPECIAL-USE)'))}
        self.assertEqual(ret[b"Plain"], attrs("\\HasNoChildren"))
        self.assertEqual(ret[b"MySpecial"], attrs("\\Archive", "\\HasNoChildren"))
        # uses the server cannot give: NO [USEATTR], and nothing created
        for use in (b"\\All", b"\\Flagged", b"\\Important", b"\\Sent \\Bogus"):
            answer = c.answer(b"CREATE Unmade (USE (" + use + b"))")
            self.assertTrue(answer.startswith(b"NO [USEATTR]"), (use, answer))
        self.assertEqual(self.names(c.listing(b'LIST "" Unmade')), [])
        # an empty USE list creates a plain mailbox
        self.assertEqual(c.answer(b"CREATE Empty (USE ())")[:2], b"OK")
        self.assertEqual(self.names(c.listing(b'LIST "" Empty')), [(attrs("\\HasNoChildren"), b"Empty", b"")])
        # an existing name: the usual NO [ALREADYEXISTS]
        self.assertTrue(c.answer(b"CREATE MySpecial (USE (\\Junk))").startswith(b"NO [ALREADYEXISTS]"))

    def test_list_status(self):
        """RFC 5819: a STATUS after each selectable mailbox listed, not for
        a \\Noselect level or a \\NonExistent subscription."""
        c = self.client(b"u5")
        c.cmd(b"CREATE Box")
        c.cmd(b"CREATE Level.Box2")
        c.cmd(b"SUBSCRIBE Gone")
        for i in range(3):
            msg = b"Subject: %d\r\n\r\nbody\r\n" % i
            c.cmd(b"APPEND Box%s {%d+}\r\n" % (b" (\\Seen)" if i == 0 else b"", len(msg)) + msg)
        got = c.listing(b'LIST "" (Box Level* INBOX) RETURN (STATUS (MESSAGES UNSEEN UIDNEXT))')
        # each STATUS right after the LIST of its mailbox (LIST's order is free)
        status = {}
        for i, (k, _, n, x) in enumerate(got):
            if k == b"STATUS":
                self.assertEqual(got[i - 1][:1] + got[i - 1][2:3], (b"LIST", n), got)
                status[n] = x
        self.assertEqual(status, {b"Box": b"(MESSAGES 3 UNSEEN 2 UIDNEXT 4)",
                                  b"INBOX": b"(MESSAGES 0 UNSEEN 0 UIDNEXT 1)",
                                  b"Level.Box2": b"(MESSAGES 0 UNSEEN 0 UIDNEXT 1)"})
        listed = {n: a for k, a, n, _ in got if k == b"LIST"}
        self.assertEqual(sorted(listed), [b"Box", b"INBOX", b"Level", b"Level.Box2"])
        self.assertIn(b"\\noselect", listed[b"Level"])
        got = c.listing(b'LIST (SUBSCRIBED) "" "Gone" RETURN (STATUS (MESSAGES) CHILDREN)')
        self.assertEqual([(k, n) for k, _, n, _ in got], [(b"LIST", b"Gone")])
        # with other return options, and the selected mailbox included
        c.cmd(b"SELECT Box")
        got = c.listing(b'LIST "" "Box" RETURN (SUBSCRIBED STATUS (SIZE RECENT))')
        self.assertEqual(got[1][0], b"STATUS")
        self.assertTrue(got[1][3].startswith(b"(SIZE "), got)

    def test_bad_syntax_and_lsub(self):
        c = self.client(b"u6")
        for text in (b'LIST (RECURSIVEMATCH) "" %', b'LIST (REMOTE RECURSIVEMATCH) "" %', b'LIST (FOO) "" %',
                     b'LIST "" % RETURN (FOO)', b'LIST "" % RETURN (STATUS ())', b'LIST "" % RETURN (STATUS)',
                     b'LIST "" ()', b'LSUB (SUBSCRIBED) "" %', b"CREATE x (USE (Sent))", b"CREATE x (USE)",
                     b"CREATE x (FOO (\\Sent))"):
            self.assertTrue(c.answer(text).startswith(b"BAD"), text)
        # LSUB keeps RFC 3501's meaning of \Noselect
        c.cmd(b"CREATE A.B")
        c.cmd(b"SUBSCRIBE A.B")
        got = self.names(c.listing(b'LSUB "" "A"'), b"LSUB")
        self.assertEqual(got, [(attrs("\\Noselect"), b"A", b"")])
        self.assertEqual(self.names(c.listing(b'LIST "" ""')), [(attrs("\\Noselect"), b"", b"")])


if __name__ == "__main__":
    unittest.main()
