"""Test messages, and what the tests read back from messages and answers."""
import re

MESSAGE_ID = re.compile(rb"^Message-ID: (<[^>\r\n]+>)\r$", re.M | re.I)


def message(i, tag="m"):
    """A small message whose Message-ID names it."""
    return ("From: a@example.org\r\nTo: b@example.org\r\nSubject: %s %d\r\n"
            "Message-ID: <%s-%d@aerogram.test>\r\n\r\nbody of %s %d\r\n" % (tag, i, tag, i, tag, i)).encode()


def message_id(data):
    """The Message-ID of a message of these tests, or None."""
    head = data.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    m = MESSAGE_ID.search(head)
    return m.group(1).decode() if m else None


def select_info(untagged):
    """EXISTS and UIDVALIDITY from the untagged answers of a SELECT or NOOP."""
    exists = uidvalidity = None
    for line, _ in untagged:
        m = re.match(rb"\* (\d+) EXISTS", line)
        if m:
            exists = int(m.group(1))
        m = re.search(rb"\[UIDVALIDITY (\d+)\]", line)
        if m:
            uidvalidity = int(m.group(1))
    return exists, uidvalidity
