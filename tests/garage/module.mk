# tests/garage: the Garage driver's tests.
#   check-garage-sigv4  CUnit tests of the SigV4 signer (AWS's 38 cases + K2V/S3 rules)
#   check-garage-daemons  two aerogramd on one garage-emu (IDLE across daemons, convergence)
#   check-garage        the conformance suite against the driver on garage-emu (plain,
#                       then with latency and injected 503s), and the blob half against
#                       the third-party S3 server s3rver
GARAGE_SIGV4_TEST = $(B)/tests/garage-sigv4-test
TESTBINS += $(GARAGE_SIGV4_TEST)

$(B)/obj/tests/garage/%.o: MOD_CFLAGS = $(CUNIT_CFLAGS) $(JANSSON_CFLAGS) $(CURL_CFLAGS) $(OPENSSL_CFLAGS)

$(GARAGE_SIGV4_TEST): $(B)/obj/tests/garage/sigv4_test.o $(B)/obj/drivers/garage/sigv4.o \
		$(B)/obj/drivers/garage/garage_buf.o $(B)/obj/drivers/garage/garage_http.o \
		$(B)/obj/drivers/garage/garage_k2v.o
	@mkdir -p $(@D)
	$(CC) $(AG_LDFLAGS) -o $@ $^ $(CUNIT_LIBS) $(GARAGE_LIBS)

.PHONY: check-garage-sigv4
check-garage-sigv4: $(GARAGE_SIGV4_TEST)
	$(GARAGE_SIGV4_TEST)

CHECKS += check-garage-sigv4

GARAGE_TEST = $(B)/tests/garage-test
TESTBINS += $(GARAGE_TEST)

$(GARAGE_TEST): $(B)/obj/tests/garage/garage_test.o
	@mkdir -p $(@D)
	$(CC) $(AG_LDFLAGS) -o $@ $^ $(CUNIT_LIBS) $(CURL_LIBS) $(JANSSON_LIBS) $(THREAD_LIBS) -ldl

.PHONY: check-garage
check-garage: $(B)/drivers/aerogram_garage.so $(B)/aerogram-driver-check $(GARAGE_TEST)
	B=$(B) tests/garage/check-garage

CHECKS += check-garage

# Two aerogramd processes on one garage-emu: IDLE wake-up across daemons and
# convergence of concurrent APPENDs (tests/garage/two_daemons.py); then the
# K2V/S3 requests per IMAP operation, bounded independently of the mailbox
# size (tests/garage/requests_per_op.py prints the table and wall times).
.PHONY: check-garage-daemons
check-garage-daemons: $(B)/aerogramd $(B)/drivers/aerogram_garage.so
	B=$(B) AEROGRAMD=$(B)/aerogramd python3 tests/garage/two_daemons.py
	B=$(B) AEROGRAMD=$(B)/aerogramd python3 tests/garage/requests_per_op.py --check --sizes 100,250
	B=$(B) AEROGRAMD=$(B)/aerogramd python3 tests/garage/requests_per_op.py --check --sizes 100 --history 5000

CHECKS += check-garage-daemons
