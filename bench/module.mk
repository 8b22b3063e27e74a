# bench/: bench-driver measures any driver's basic operations (never a test:
# it prints numbers and does not fail on speed).
#   make bench                      sqlite (synchronous=full, normal) and memory
#   build/bench-driver [-n N] DRIVER.so key=value...   any driver
#   make bench-append               the engine's APPEND on sqlite from 1, 4, 10
#                                   threads: appends/s and fsyncs per append
# Built by `make all`, not installed: a development tool.
TESTBINS += $(B)/bench-driver
BENCH_N = 2000

# host/module.mk is read after this file: name the loader object directly.
$(B)/bench-driver: $(B)/obj/bench/bench_driver.o $(B)/obj/host/driver_loader.o
	$(CC) $(AG_LDFLAGS) -o $@ $^ $(THREAD_LIBS) -ldl

.PHONY: bench
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
