# tests/server/: a real aerogramd on free loopback ports, driven by Python's imaplib.
SERVER_TEST_ENV = AEROGRAMD=$(B)/aerogramd AEROGRAMCTL=$(B)/aerogramctl \
	AG_TEST_DRIVER=$(B)/drivers/aerogram_memory.so

check-server: $(B)/aerogramd $(B)/aerogramctl $(B)/drivers/aerogram_memory.so $(B)/drivers/aerogram_faulty.so
	$(SERVER_TEST_ENV) python3 tests/server/test_server.py
	$(SERVER_TEST_ENV) python3 tests/server/test_mail.py

CHECKS += check-server
.PHONY: check-server
