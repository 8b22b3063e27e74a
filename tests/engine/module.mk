# tests/engine: the mail engine's unit tests, simulation and benchmark.
ENGINE_T = $(B)/tests/engine
ENGINE_TEST_DEPS = $(B)/obj/tests/engine/engine_util.o $(MAIL_LIB) $(AGWRAP_LIB) $(HOST_LOADER_OBJS)
ENGINE_TEST_LIBS = $(CUNIT_LIBS) $(THREAD_LIBS) -ldl

$(B)/obj/tests/engine/%.o: MOD_CFLAGS = $(CUNIT_CFLAGS)

TESTBINS += $(ENGINE_T)/test_engine $(ENGINE_T)/sim_engine $(ENGINE_T)/sim_appenders $(ENGINE_T)/bench_open
TESTBINS += $(ENGINE_T)/test_usage

$(ENGINE_T)/test_engine: $(B)/obj/tests/engine/test_engine.o $(ENGINE_TEST_DEPS)
	@mkdir -p $(@D)
	$(CC) $(AG_LDFLAGS) -o $@ $^ $(ENGINE_TEST_LIBS)

# Message sizes in the log and a user's usage (quotas).
$(ENGINE_T)/test_usage: $(B)/obj/tests/engine/test_usage.o $(ENGINE_TEST_DEPS)
	@mkdir -p $(@D)
	$(CC) $(AG_LDFLAGS) -o $@ $^ $(ENGINE_TEST_LIBS)

$(ENGINE_T)/sim_engine: $(B)/obj/tests/engine/sim_engine.o $(ENGINE_TEST_DEPS)
	@mkdir -p $(@D)
	$(CC) $(AG_LDFLAGS) -o $@ $^ $(ENGINE_TEST_LIBS)

$(ENGINE_T)/sim_appenders: $(B)/obj/tests/engine/sim_appenders.o $(ENGINE_TEST_DEPS)
	@mkdir -p $(@D)
	$(CC) $(AG_LDFLAGS) -o $@ $^ $(ENGINE_TEST_LIBS)

$(ENGINE_T)/bench_open: $(B)/obj/tests/engine/bench_open.o $(ENGINE_TEST_DEPS)
	@mkdir -p $(@D)
	$(CC) $(AG_LDFLAGS) -o $@ $^ $(ENGINE_TEST_LIBS)

CHECKS += check-engine check-engine-sim
.PHONY: check-engine check-engine-sim sim sim-appenders bench-engine

check-engine: $(ENGINE_T)/test_engine $(ENGINE_T)/test_usage $(B)/drivers/aerogram_memory.so
	$(ENGINE_T)/test_engine
	$(ENGINE_T)/test_usage

# At least 1,000 seeds on every `make check`: the sequential simulation
# (stale writers, every operation, faults) and the concurrent appenders
# (UIDVALIDITY must never change), without and with a crash.
check-engine-sim: $(ENGINE_T)/sim_engine $(ENGINE_T)/sim_appenders $(B)/drivers/aerogram_memory.so
	$(ENGINE_T)/sim_engine --seeds 1000
	$(ENGINE_T)/sim_appenders --seeds 1000
	$(ENGINE_T)/sim_appenders --seeds 1000 --crash

# `make sim SEEDS=N [FIRST=S]` runs more seeds; `make sim SEED=S` replays one
# (of each simulation). `make sim-appenders SEEDS=100000` is the long run.
SEEDS = 10000
FIRST = 1
sim: $(ENGINE_T)/sim_engine $(ENGINE_T)/sim_appenders $(B)/drivers/aerogram_memory.so
	$(ENGINE_T)/sim_engine $(if $(SEED),--seed $(SEED),--seeds $(SEEDS) --first $(FIRST))
	$(ENGINE_T)/sim_appenders $(if $(SEED),--seed $(SEED),--seeds $(SEEDS) --first $(FIRST))
	$(ENGINE_T)/sim_appenders --crash $(if $(SEED),--seed $(SEED),--seeds $(SEEDS) --first $(FIRST))

sim-appenders: $(ENGINE_T)/sim_appenders $(B)/drivers/aerogram_memory.so
	$(ENGINE_T)/sim_appenders $(if $(SEED),--seed $(SEED),--seeds $(SEEDS) --first $(FIRST))
	$(ENGINE_T)/sim_appenders --crash $(if $(SEED),--seed $(SEED),--seeds $(SEEDS) --first $(FIRST))

bench-engine: $(ENGINE_T)/bench_open $(B)/drivers/aerogram_memory.so
	$(ENGINE_T)/bench_open

# A libFuzzer target over every decoder (`make fuzz`, `make fuzz-smoke`).
FUZZ_ENGINE_FLAGS = -std=c11 -D_GNU_SOURCE -g -O1 -I. -Isdk/include -fsanitize=fuzzer-no-link,address,undefined
FUZZ_ENGINE_OBJS = $(patsubst %.c,$(B)/fuzzobj/%.o,$(MAIL_SRCS) tests/engine/fuzz_codec.c)
FUZZERS += $(ENGINE_T)/fuzz_codec
FUZZ_SMOKE += fuzz-smoke-engine-codec

$(B)/fuzzobj/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_ENGINE_FLAGS) -c -o $@ $<

$(ENGINE_T)/fuzz_codec: $(FUZZ_ENGINE_OBJS)
	@mkdir -p $(@D)
	$(FUZZ_CC) -fsanitize=fuzzer,address,undefined -o $@ $^ $(THREAD_LIBS)

.PHONY: fuzz-smoke-engine-codec
fuzz-smoke-engine-codec: $(ENGINE_T)/fuzz_codec
	$(ENGINE_T)/fuzz_codec -runs=200000 -max_len=4096
