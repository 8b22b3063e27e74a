# tests/mime: the message parser, ENVELOPE, BODYSTRUCTURE, sections and the
# serialised form against Dovecot's recorded answers; the fuzz target.
TESTBINS += $(B)/tests/test_mime
CHECKS += check-mime
FUZZERS += $(B)/fuzz/fuzz_mime
FUZZ_SMOKE += fuzz-smoke-mime

$(B)/obj/tests/mime/%.o: MOD_CFLAGS = $(CUNIT_CFLAGS)

$(B)/tests/test_mime: $(B)/obj/tests/mime/test_mime.o $(B)/obj/tests/mime/test_search.o \
		$(B)/obj/tests/mime/test_sort.o $(CU_MAIN) $(PROTOCOL_LIB)
	@mkdir -p $(@D)
	$(CC) $(AG_LDFLAGS) -o $@ $^ $(CUNIT_LIBS)

$(B)/fuzz/fuzz_mime: tests/mime/fuzz_mime.c $(PROTOCOL_SRCS)
	@mkdir -p $(@D)
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -g -O1 -I. -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -o $@ $^

.PHONY: check-mime fuzz-smoke-mime fuzz-smoke-sort
check-mime: $(B)/tests/test_mime
	$(B)/tests/test_mime
	@if [ -n "$(FUZZ_CC)" ]; then $(MAKE) --no-print-directory fuzz-smoke-mime fuzz-smoke-sort; fi

fuzz-smoke-mime: $(B)/fuzz/fuzz_mime
	@mkdir -p $(B)/fuzz/mime-work
	$(B)/fuzz/fuzz_mime -max_total_time=20 -print_final_stats=1 $(B)/fuzz/mime-work tests/mime/fuzz-corpus

# SORT and THREAD (protocol/sort_thread.c): both threading algorithms name
# every message once, in RFC 5256's grammar, whatever the links.
FUZZERS += $(B)/fuzz/fuzz_sort
FUZZ_SMOKE += fuzz-smoke-sort

$(B)/fuzz/fuzz_sort: tests/mime/fuzz_sort.c $(PROTOCOL_SRCS)
	@mkdir -p $(@D)
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -g -O1 -I. -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -o $@ $^

fuzz-smoke-sort: $(B)/fuzz/fuzz_sort
	@mkdir -p $(B)/fuzz/sort-work
	$(B)/fuzz/fuzz_sort -max_total_time=10 -print_final_stats=1 $(B)/fuzz/sort-work tests/mime/sort-fuzz-corpus
