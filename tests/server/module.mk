# tests/server/: a real aerogramd on free loopback ports, driven by Python's imaplib.
check-server: $(B)/aerogramd $(B)/aerogramctl $(B)/drivers/aerogram_memory.so
	AEROGRAMD=$(B)/aerogramd AEROGRAMCTL=$(B)/aerogramctl AG_TEST_DRIVER=$(B)/drivers/aerogram_memory.so \
		python3 tests/server/test_server.py

CHECKS += check-server
.PHONY: check-server
