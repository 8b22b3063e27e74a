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


# What select_data() reads from the untagged answers of a SELECT (or NOOP).
SELECT_DATA = {
    "exists": re.compile(rb"^\* (\d+) EXISTS$"),
    "uidvalidity": re.compile(rb"\[UIDVALIDITY (\d+)\]"),
    "uidnext": re.compile(rb"\[UIDNEXT (\d+)\]"),
}


def select_data(untagged):
    """{exists, uidvalidity, uidnext: number or None} from the untagged
    answers ((text, literals) pairs) of a SELECT or NOOP; the last one wins."""
    found = dict.fromkeys(SELECT_DATA)
    for line, _ in untagged:
        for name, pattern in SELECT_DATA.items():
            m = pattern.search(line)
            if m:
                found[name] = int(m.group(1))
    return found


def select_info(untagged):
    """EXISTS and UIDVALIDITY from the untagged answers of a SELECT or NOOP."""
    data = select_data(untagged)
    return data["exists"], data["uidvalidity"]
