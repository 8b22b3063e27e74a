# tests/uid-stability: UIDs stay stable while two aerogramd serve one store.
#   check-uid-stability  for each store, four clients (two per daemon) APPEND
#                        100 messages each to one mailbox and set flags, while
#                        a selected session per daemon NOOPs; UIDVALIDITY must
#                        not change, no session may get a BYE, every APPENDUID
#                        must name its message, UIDs only grow, and both
#                        daemons end identical (tests/uid-stability/uid_stability.py)
# Stores: sqlite (one SQLite file), garage (one garage-emu), garage-latency
# (one garage-emu answering after 5 ms). One store, and repeated runs:
#   make check-uid-stability UID_STORES=sqlite UID_REPEAT=10
# UID_ARGS passes more options, e.g. UID_ARGS=--one-daemon (the control: the
# same load through one daemon, which passes today) or UID_ARGS='--messages 20'.
UID_STORES = sqlite,garage,garage-latency
UID_REPEAT = 1
UID_ARGS =

.PHONY: check-uid-stability
check-uid-stability: $(B)/aerogramd $(SQLITE_DRIVER) $(B)/drivers/aerogram_garage.so
	B=$(B) AEROGRAMD=$(B)/aerogramd python3 tests/uid-stability/uid_stability.py \
		--stores $(UID_STORES) --repeat $(UID_REPEAT) $(UID_ARGS)

CHECKS += check-uid-stability
