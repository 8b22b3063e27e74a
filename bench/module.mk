# bench/: bench-driver measures any driver's basic operations (never a test:
# it prints numbers and does not fail on speed).
#   make bench                      sqlite (synchronous=full, normal) and memory
#   build/bench-driver [-n N] DRIVER.so key=value...   any driver
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
