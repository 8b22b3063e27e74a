# bench/: benchmarks. They print numbers and never fail on speed (none is
# part of `make check`).
#   make bench                      bench-driver: a driver's basic operations,
#                                   sqlite (synchronous=full, normal) and memory
#   build/bench-driver [-n N] DRIVER.so key=value...   any driver
#   make bench-append               the engine's APPEND on sqlite from 1, 4, 10
#                                   threads: appends/s and fsyncs per append
#   make bench-imap                 aerogramd (sqlite, memory) and the reference
#                                   Dovecot under imaptest's mixed load, then a
#                                   decay run (bench/imap_stress.py)
#   make bench-import               aerogramctl import: messages/s for the test
#                                   mbox and IMPORT_COUNT generated messages, on
#                                   sqlite and garage-emu (bench/import_rate.py)
#   make bench-scale                one INBOX filled to SCALE_MAX messages with
#                                   pipelined APPENDs; SELECT/APPEND/STATUS/SEARCH
#                                   timed on the way; fsyncs per APPEND
#                                   (bench/mailbox_scale.py)
# bench-imap and bench-scale use the team's shared scripts (imaptest and the
# reference Dovecot) from BENCH_TOOLS; pass more options in BENCH_IMAP_ARGS or
# BENCH_SCALE_ARGS (e.g. BENCH_SCALE_ARGS=--dovecot; see --help of each script).
# Built by `make all`, not installed: a development tool.
TESTBINS += $(B)/bench-driver
BENCH_N = 2000
BENCH_TOOLS = /work/shared/tools
IMAP_SECS = 20
IMAP_DECAY_SECS = 60
BENCH_IMAP_ARGS =
SCALE_MAX = 100000
BENCH_SCALE_ARGS =
BENCH_ENV = AG_BUILD=$(B) AG_BENCH_TOOLS=$(BENCH_TOOLS)

# host/module.mk is read after this file: name the loader object directly.
$(B)/bench-driver: $(B)/obj/bench/bench_driver.o $(LOADER_OBJS)
	$(CC) $(AG_LDFLAGS) -o $@ $^ $(THREAD_LIBS) -ldl

.PHONY: bench bench-imap bench-scale
bench: $(B)/bench-driver $(DRIVERS)
	@dir=$$(mktemp -d "$${TMPDIR:-/tmp}/agbench.XXXXXX") && \
	echo "== sqlite, synchronous=full (default)" && \
	$(B)/bench-driver -n $(BENCH_N) $(B)/drivers/aerogram_sqlite.so path=$$dir/full.db synchronous=full && \
	echo "== sqlite, synchronous=normal" && \
	$(B)/bench-driver -n $(BENCH_N) $(B)/drivers/aerogram_sqlite.so path=$$dir/normal.db synchronous=normal && \
	echo "== memory" && \
	$(B)/bench-driver -n $(BENCH_N) $(B)/drivers/aerogram_memory.so && \
	echo "== watch latency, sqlite (poll_interval_ms default)" && \
	$(B)/bench-driver -w -n 40 $(B)/drivers/aerogram_sqlite.so path=$$dir/watch.db && \
	rm -rf "$$dir"

# The mail engine's APPEND (blob, then a conditional batch of summary, log
# entry and watch row) from 1, 4 and 10 threads on the SQLite driver at
# synchronous=full, with fsyncs per append counted by strace.
BENCH_APPEND_N = 600
.PHONY: bench-append
bench-append: $(B)/bench-driver $(B)/drivers/aerogram_sqlite.so
	sh bench/bench-append $(B) $(BENCH_APPEND_N) synchronous=full

bench-imap: $(B)/aerogramd $(B)/drivers/aerogram_sqlite.so $(B)/drivers/aerogram_memory.so
	$(BENCH_ENV) python3 bench/imap_stress.py --secs $(IMAP_SECS) --decay-secs $(IMAP_DECAY_SECS) $(BENCH_IMAP_ARGS)

bench-scale: $(B)/aerogramd $(B)/drivers/aerogram_sqlite.so $(B)/drivers/aerogram_memory.so
	$(BENCH_ENV) python3 bench/mailbox_scale.py --max $(SCALE_MAX) $(BENCH_SCALE_ARGS)

IMPORT_COUNT = 10000
BENCH_IMPORT_ARGS =
.PHONY: bench-import
bench-import: $(B)/aerogramctl $(B)/drivers/aerogram_sqlite.so $(B)/drivers/aerogram_garage.so
	B=$(B) python3 bench/import_rate.py --count $(IMPORT_COUNT) $(BENCH_IMPORT_ARGS)

# The MIME parser's speed on files given by hand (it prints numbers):
# build/bench-mime FILE... (protocol/module.mk is read after this file: the library by name)
TESTBINS += $(B)/bench-mime
$(B)/bench-mime: $(B)/obj/bench/bench_mime.o $(B)/libagprotocol.a
	@mkdir -p $(@D)
	$(CC) $(AG_LDFLAGS) -o $@ $^
