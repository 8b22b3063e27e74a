# tests/server/: a real aerogramd on free loopback ports, driven by Python's
# imaplib, smtplib (LMTP), mbsync, curl and a private Postfix; the mail tests
# run on the memory and the SQLite driver.
TESTBINS += $(B)/tests/test_server_unit
$(B)/obj/tests/server/%.o: MOD_CFLAGS = $(CUNIT_CFLAGS) $(EVENT_CFLAGS) $(OPENSSL_CFLAGS) $(ARGON2_CFLAGS)

$(B)/tests/test_server_unit: $(B)/obj/tests/server/test_server_unit.o $(CU_MAIN) $(B)/obj/tests/server/test_search_cache.o \
		$(B)/obj/host/auth.o $(B)/obj/host/users.o $(B)/obj/host/log.o $(B)/obj/host/capability.o \
		$(B)/obj/host/config_file.o $(B)/obj/host/search_cache.o $(B)/libagprotocol.a $(B)/libagmail.a
	@mkdir -p $(@D)
	$(CC) $(AG_LDFLAGS) -o $@ $^ $(CUNIT_LIBS) $(INIH_LIBS) $(EVENT_LIBS) $(OPENSSL_LIBS) $(ARGON2_LIBS) $(THREAD_LIBS)

# LMTP's parser, the users file's addresses and the [lmtp] keys.
TESTBINS += $(B)/tests/test_lmtp_unit
$(B)/tests/test_lmtp_unit: $(B)/obj/tests/server/test_lmtp_unit.o $(CU_MAIN) $(B)/obj/host/lmtp_parse.o \
		$(B)/obj/host/users.o $(B)/obj/host/log.o $(B)/obj/host/config_file.o $(B)/libagprotocol.a
	@mkdir -p $(@D)
	$(CC) $(AG_LDFLAGS) -o $@ $^ $(CUNIT_LIBS) $(INIH_LIBS) $(EVENT_LIBS) $(OPENSSL_LIBS) $(ARGON2_LIBS) $(THREAD_LIBS)

# LIST patterns alone (host/list_match.c).
TESTBINS += $(B)/tests/test_list_match
$(B)/tests/test_list_match: $(B)/obj/tests/server/test_list_match.o $(CU_MAIN) $(B)/obj/host/list_match.o
	@mkdir -p $(@D)
	$(CC) $(AG_LDFLAGS) -o $@ $^ $(CUNIT_LIBS)

# The FETCH cache alone (host/fetch_cache.c), with threads.
TESTBINS += $(B)/tests/test_fetch_cache
$(B)/tests/test_fetch_cache: $(B)/obj/tests/server/test_fetch_cache.o $(CU_MAIN) $(B)/obj/host/fetch_cache.o \
		$(B)/obj/host/mail/htable.o $(B)/libagprotocol.a
	@mkdir -p $(@D)
	$(CC) $(AG_LDFLAGS) -o $@ $^ $(CUNIT_LIBS) $(THREAD_LIBS)

SERVER_TEST_ENV = AEROGRAMD=$(B)/aerogramd AEROGRAMCTL=$(B)/aerogramctl \
	AG_TEST_DRIVER=$(B)/drivers/aerogram_memory.so

# The Python tests, in the order they run (NAME or NAME:CLASS, for
# tests/server/NAME.py [CLASS]): each on the memory driver, then those of
# SERVER_SQLITE_TESTS again on SQLite.
SERVER_PY_TESTS = test_server test_mail test_clients test_robustness test_pipelining \
	test_fetch_cache test_search test_esearch test_listext test_sort test_condstore test_context \
	test_hardening_mailbox test_hardening_sessions test_quota test_lmtp test_operations test_compress \
	test_binary test_catenate
SERVER_SQLITE_TESTS = test_mail test_robustness test_search test_esearch test_listext test_sort \
	test_condstore test_context test_hardening_mailbox test_quota test_binary test_catenate \
	test_lmtp:LmtpDelivery test_operations:Metrics

# One recipe line per test: $(call server_py,ENV,NAME[:CLASS])
define server_py
	$(strip $(SERVER_TEST_ENV) $(1) python3 tests/server/$(word 1,$(subst :, ,$(2))).py $(word 2,$(subst :, ,$(2))))

endef

check-server: $(B)/tests/test_server_unit $(B)/tests/test_lmtp_unit $(B)/tests/test_list_match $(B)/tests/test_fetch_cache \
		$(B)/aerogramd $(B)/aerogramctl $(B)/drivers/aerogram_memory.so \
		$(B)/drivers/aerogram_faulty.so $(B)/drivers/aerogram_sqlite.so $(B)/drivers/aerogram_counting.so \
		$(B)/drivers/aerogram_garage.so
	$(B)/tests/test_server_unit
	$(B)/tests/test_lmtp_unit
	$(B)/tests/test_list_match
	$(B)/tests/test_fetch_cache
	$(foreach t,$(SERVER_PY_TESTS),$(call server_py,,$(t)))
	$(foreach t,$(SERVER_SQLITE_TESTS),$(call server_py,AG_TEST_STORE=sqlite,$(t)))
	$(SERVER_TEST_ENV) python3 tests/server/roundtrips.py --check
	$(SERVER_TEST_ENV) python3 tests/server/test_hardening_config.py
	$(SERVER_TEST_ENV) python3 tests/server/test_aerogramctl.py
	@if [ -n "$(FUZZ_CC)" ]; then $(MAKE) --no-print-directory fuzz-smoke-config; fi

CHECKS += check-server
.PHONY: check-server

# The libFuzzer target of the configuration and users-file readers, built
# from their sources with the fuzzing compiler (inih, libevent, OpenSSL and
# libargon2 stay the system's).
CONFIG_FUZZ_SRCS = tests/server/fuzz_config.c host/config_file.c host/users.c host/log.c
FUZZERS += $(B)/fuzz/fuzz_config
FUZZ_SMOKE += fuzz-smoke-config

$(B)/fuzz/fuzz_config: $(CONFIG_FUZZ_SRCS) host/config_file.h host/users.h host/log.h config.h
	@mkdir -p $(@D)
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -g -O1 $(WARN) -I. -Isdk/include $(INIH_CFLAGS) $(EVENT_CFLAGS) \
		$(OPENSSL_CFLAGS) $(ARGON2_CFLAGS) -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-o $@ $(CONFIG_FUZZ_SRCS) $(INIH_LIBS) $(EVENT_LIBS) $(OPENSSL_LIBS) $(ARGON2_LIBS) $(THREAD_LIBS)

# New inputs the smoke run finds go under build/, the committed seeds stay as they are.
fuzz-smoke-config: $(B)/fuzz/fuzz_config
	@mkdir -p $(B)/fuzz/config-corpus
	$(B)/fuzz/fuzz_config -max_total_time=20 -max_len=4096 -print_final_stats=1 \
		$(B)/fuzz/config-corpus tests/server/fuzz-corpus

.PHONY: fuzz-smoke-config
