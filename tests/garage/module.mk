# tests/garage: the Garage driver's tests.
#   check-garage-sigv4  CUnit tests of the SigV4 signer (AWS's 38 cases + K2V/S3 rules)
#   check-garage-daemons  two aerogramd on one garage-emu (IDLE across daemons, convergence)
#   check-garage        the conformance suite against the driver on garage-emu (plain,
#                       then with latency and injected 503s), and the blob half against
#                       the third-party S3 server s3rver
GARAGE_SIGV4_TEST = $(B)/tests/garage-sigv4-test
TESTBINS += $(GARAGE_SIGV4_TEST)

$(B)/obj/tests/garage/%.o: MOD_CFLAGS = $(CUNIT_CFLAGS) $(JANSSON_CFLAGS) $(CURL_CFLAGS) $(OPENSSL_CFLAGS)

$(GARAGE_SIGV4_TEST): $(B)/obj/tests/garage/sigv4_test.o $(CU_MAIN) $(B)/obj/drivers/garage/sigv4.o \
		$(B)/obj/drivers/garage/garage_buf.o $(B)/obj/drivers/garage/garage_http.o \
		$(B)/obj/drivers/garage/garage_request.o $(B)/obj/drivers/garage/garage_error.o \
		$(B)/obj/drivers/garage/garage_xml.o \
		$(B)/obj/drivers/garage/garage_k2v.o $(KIT_OBJS)
	@mkdir -p $(@D)
	$(CC) $(AG_LDFLAGS) -o $@ $^ $(CUNIT_LIBS) $(GARAGE_LIBS)

.PHONY: check-garage-sigv4
check-garage-sigv4: $(GARAGE_SIGV4_TEST)
	$(GARAGE_SIGV4_TEST)

CHECKS += check-garage-sigv4

GARAGE_TEST = $(B)/tests/garage-test
TESTBINS += $(GARAGE_TEST)

$(GARAGE_TEST): $(B)/obj/tests/garage/garage_test.o $(CU_MAIN)
	@mkdir -p $(@D)
	$(CC) $(AG_LDFLAGS) -o $@ $^ $(CUNIT_LIBS) $(CURL_LIBS) $(JANSSON_LIBS) $(THREAD_LIBS) -ldl

.PHONY: check-garage
check-garage: $(B)/drivers/aerogram_garage.so $(B)/aerogram-driver-check $(GARAGE_TEST)
	B=$(B) tests/garage/check-garage
	@if [ -n "$(FUZZ_CC)" ]; then $(MAKE) --no-print-directory fuzz-smoke-garage; fi

CHECKS += check-garage

# Two aerogramd processes on one garage-emu: IDLE wake-up across daemons and
# convergence of concurrent APPENDs (tests/garage/two_daemons.py); then the
# K2V/S3 requests per IMAP operation, bounded independently of the mailbox
# size (tests/garage/requests_per_op.py prints the table and wall times).
.PHONY: check-garage-daemons
check-garage-daemons: $(B)/aerogramd $(B)/drivers/aerogram_garage.so
	B=$(B) AEROGRAMD=$(B)/aerogramd python3 tests/garage/two_daemons.py
	GARAGE_EMU_ARGS="--replicas 3 --replica-lag-ms 50" B=$(B) AEROGRAMD=$(B)/aerogramd python3 tests/garage/two_daemons.py
	B=$(B) AEROGRAMD=$(B)/aerogramd python3 tests/garage/requests_per_op.py --check --sizes 100,250
	B=$(B) AEROGRAMD=$(B)/aerogramd python3 tests/garage/requests_per_op.py --check --sizes 100 --history 5000

CHECKS += check-garage-daemons

# libFuzzer targets: the garage driver's parsing of answers from a broken or
# hostile Garage node (tests/garage/fuzz_garage.c): K2V JSON, then S3 XML and
# headers. The driver is compiled with GR_FUZZ_TRANSPORT (no network: every
# request gets the next answer cut from the input). `make check-garage` runs
# each for 20 s when a libFuzzer-capable clang is there.
GARAGE_FUZZ_SRCS = $(GARAGE_SRCS) sdk/kit/ag_kit.c tests/garage/fuzz_garage.c
GARAGE_FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -g -O1 $(WARN) -I. -Isdk/include -DGR_FUZZ_TRANSPORT \
	$(CURL_CFLAGS) $(JANSSON_CFLAGS) $(EXPAT_CFLAGS) $(OPENSSL_CFLAGS) \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZERS += $(B)/fuzz/fuzz_garage_k2v $(B)/fuzz/fuzz_garage_s3
FUZZ_SMOKE += fuzz-smoke-garage

$(B)/fuzz/fuzz_garage_k2v: $(GARAGE_FUZZ_SRCS) $(wildcard drivers/garage/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(GARAGE_FUZZ_CFLAGS) -o $@ $(GARAGE_FUZZ_SRCS) $(GARAGE_LIBS)

$(B)/fuzz/fuzz_garage_s3: $(GARAGE_FUZZ_SRCS) $(wildcard drivers/garage/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(GARAGE_FUZZ_CFLAGS) -DFUZZ_S3 -o $@ $(GARAGE_FUZZ_SRCS) $(GARAGE_LIBS)

# New inputs go under build/; the committed seeds stay as they are.
FUZZ_GARAGE_SECS = 20
fuzz-smoke-garage: $(B)/fuzz/fuzz_garage_k2v $(B)/fuzz/fuzz_garage_s3
	@mkdir -p $(B)/fuzz/garage-k2v-corpus $(B)/fuzz/garage-s3-corpus
	$(B)/fuzz/fuzz_garage_k2v -max_total_time=$(FUZZ_GARAGE_SECS) -max_len=8192 -print_final_stats=1 \
		$(B)/fuzz/garage-k2v-corpus tests/garage/fuzz-corpus/k2v
	$(B)/fuzz/fuzz_garage_s3 -max_total_time=$(FUZZ_GARAGE_SECS) -max_len=8192 -print_final_stats=1 \
		$(B)/fuzz/garage-s3-corpus tests/garage/fuzz-corpus/s3

.PHONY: fuzz-smoke-garage
