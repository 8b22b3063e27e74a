# tests/imap/: unit tests (CUnit) and the libFuzzer target of the IMAP
# command parser, the response writer and modified UTF-7.
IMAP_TEST_OBJS = $(B)/obj/tests/imap/test_imap.o $(B)/obj/tests/imap/imap_dump.o

$(B)/obj/tests/imap/%.o: MOD_CFLAGS = $(CUNIT_CFLAGS)

TESTBINS += $(B)/tests/test_imap
CHECKS += check-imap

$(B)/tests/test_imap: $(IMAP_TEST_OBJS) $(CU_MAIN) $(PROTOCOL_LIB)
	@mkdir -p $(@D)
	$(CC) $(AG_LDFLAGS) -o $@ $^ $(CUNIT_LIBS)

# The fuzzer compiles the parser itself with the fuzzing compiler and its
# instrumentation, whatever $(CC) built the library with.
IMAP_FUZZ_SRCS = tests/imap/fuzz_imap_parse.c tests/imap/imap_dump.c protocol/agbuf.c \
	$(sort $(wildcard protocol/imap_*.c)) protocol/mutf7.c
IMAP_FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -g -O1 $(WARN) -I. -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined

FUZZERS += $(B)/fuzz/fuzz_imap_parse
FUZZ_SMOKE += fuzz-smoke-imap

$(B)/fuzz/fuzz_imap_parse: $(IMAP_FUZZ_SRCS) $(wildcard protocol/*.h) tests/imap/imap_dump.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(IMAP_FUZZ_CFLAGS) -o $@ $(IMAP_FUZZ_SRCS)

# New inputs the smoke run finds go under build/, the committed seeds stay as they are.
fuzz-smoke-imap: $(B)/fuzz/fuzz_imap_parse
	@mkdir -p $(B)/fuzz/imap-corpus
	$(B)/fuzz/fuzz_imap_parse -max_total_time=20 -max_len=8192 -print_final_stats=1 \
		$(B)/fuzz/imap-corpus tests/imap/fuzz-corpus

check-imap: $(B)/tests/test_imap
	$(B)/tests/test_imap
	@if [ -n "$(FUZZ_CC)" ]; then $(MAKE) --no-print-directory fuzz-smoke-imap; fi

.PHONY: check-imap fuzz-smoke-imap
