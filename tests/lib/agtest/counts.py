"""The counters of the counting wrapper (sdk/wrappers/): how many storage
calls a daemon on build/drivers/aerogram_counting.so made.

The wrapper keeps its counters in a file (little-endian uint64, laid out as
sdk/wrappers/ag_wrap.h says: calls per operation, items per operation, then
the rows row_read returned and the bytes of their values); an action's cost
is the difference before and after it, once the counters stopped moving (the
engine's poller re-syncs after a write it was told of: that is part of the
cost)."""
import os
import struct
import time

from agtest.daemon import DRIVER

__all__ = ["COLUMNS", "COUNTING_DRIVER", "EXTRA", "OPS", "QUIET", "cost", "counting_storage", "read_counts",
           "settled_counts"]

# enum agw_op, in order; then the two counters that follow the calls and
# items blocks in the counts file.
OPS = ["row_read", "row_insert", "row_delete", "row_watch",
       "blob_get", "blob_put", "blob_copy", "blob_list", "blob_delete", "row_insert_if"]
EXTRA = ["rows", "bytes"]
COLUMNS = OPS + EXTRA
SLOTS = 2 * len(OPS) + len(EXTRA)
COUNTING_DRIVER = os.path.join(os.path.dirname(DRIVER), "aerogram_counting.so")


def counting_storage(directory, inner):
    """(counts file, [storage] lines) of a daemon on the counting wrapper
    over `inner` (memory, or sqlite with its database in `directory`)."""
    counts = os.path.join(directory, "counts")
    storage = ["inner = " + inner, "counts_file = " + counts]
    if inner == "sqlite":
        storage.append("inner_config = path=" + os.path.join(directory, "mail.sqlite"))
    return counts, storage


def read_counts(path):
    """Calls per operation, then rows read and value bytes read."""
    with open(path, "rb") as f:
        data = f.read(8 * SLOTS)
    if len(data) < 8 * SLOTS:
        return [0] * len(COLUMNS)
    values = struct.unpack("<%dQ" % SLOTS, data)
    return list(values[:len(OPS)]) + list(values[2 * len(OPS):])


# Longer than the engine's idle-checkpoint delay (OPLOG_CKPT_IDLE_MS, 2 s):
# a quiet mailbox's tail is checkpointed in the background, and that belongs
# to no command.
QUIET = 2.5


def settled_counts(path, quiet=QUIET, limit=30.0):
    """The counters once they did not move for `quiet` seconds."""
    deadline = time.monotonic() + limit
    last = read_counts(path)
    still_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = read_counts(path)
        if now != last:
            last, still_since = now, time.monotonic()
        elif time.monotonic() - still_since >= quiet:
            break
    return last


def cost(path, action):
    """(what action() returned, [the counters' differences across it]),
    measured once they settled before and after."""
    before = settled_counts(path)
    result = action()
    after = settled_counts(path)
    return result, [a - b for a, b in zip(after, before)]
