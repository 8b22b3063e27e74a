# tests/engine: the mail engine's unit tests, simulation and benchmark.
ENGINE_T = $(B)/tests/engine
ENGINE_TEST_DEPS = $(B)/obj/tests/engine/engine_util.o $(CU_MAIN) $(MAIL_LIB) $(AGWRAP_LIB) $(LOADER_OBJS)
ENGINE_TEST_LIBS = $(CUNIT_LIBS) $(THREAD_LIBS) -ldl

$(B)/obj/tests/engine/%.o: MOD_CFLAGS = $(CUNIT_CFLAGS)

TESTBINS += $(ENGINE_T)/test_engine $(ENGINE_T)/sim_engine $(ENGINE_T)/sim_appenders $(B)/bench-open
TESTBINS += $(ENGINE_T)/test_usage

# test_engine, test_usage (message sizes in the log and a user's usage:
# quotas), sim_engine and sim_appenders: each of its .o and the helpers.
ENGINE_TEST_PROGS = $(addprefix $(ENGINE_T)/,test_engine test_usage sim_engine sim_appenders)
$(ENGINE_TEST_PROGS): $(ENGINE_T)/%: $(B)/obj/tests/engine/%.o $(ENGINE_TEST_DEPS)
	@mkdir -p $(@D)
	$(CC) $(AG_LDFLAGS) -o $@ $^ $(ENGINE_TEST_LIBS)

# A benchmark (bench/bench_open.c), built here with the engine tests' helpers.
$(B)/obj/bench/bench_open.o: MOD_CFLAGS = $(CUNIT_CFLAGS)
$(B)/bench-open: $(B)/obj/bench/bench_open.o $(ENGINE_TEST_DEPS)
	@mkdir -p $(@D)
	$(CC) $(AG_LDFLAGS) -o $@ $^ $(ENGINE_TEST_LIBS)

# aerogramctl's store commands (host/ctl_store.c: undelete, copy-store) end
# to end over stores opened from configuration files (SQLite, memory).
CTL_STORE_TEST_OBJS = $(B)/obj/tests/engine/test_ctl_store.o $(CU_MAIN) $(HOST_CTL_STORE_OBJS) $(B)/obj/host/ctl.o \
	$(HOST_COMMON_OBJS) \
	$(B)/obj/host/users.o $(B)/obj/host/log.o $(MAIL_LIB) $(B)/libagprotocol.a
TESTBINS += $(B)/tests/test_ctl_store

$(B)/tests/test_ctl_store: $(CTL_STORE_TEST_OBJS)
	@mkdir -p $(@D)
	$(CC) $(AG_LDFLAGS) -o $@ $^ $(CUNIT_LIBS) $(INIH_LIBS) $(EVENT_LIBS) $(ARGON2_LIBS) $(OPENSSL_LIBS) \
		$(THREAD_LIBS) -ldl

CHECKS += check-engine check-engine-sim
.PHONY: check-engine check-engine-sim sim sim-appenders bench-engine bench-ctl-store

check-engine: $(ENGINE_T)/test_engine $(ENGINE_T)/test_usage $(B)/tests/test_ctl_store \
		$(B)/drivers/aerogram_memory.so $(B)/drivers/aerogram_sqlite.so
	$(ENGINE_T)/test_engine
	$(ENGINE_T)/test_usage
	$(B)/tests/test_ctl_store

# The same copy into Garage (garage-emu), resumed, and an undelete there.
CTL_EMU_SECRET = 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
check-ctl-store-garage: $(B)/tests/test_ctl_store $(B)/drivers/aerogram_sqlite.so $(B)/drivers/aerogram_garage.so
	tests/garage-emu/garage-emu --k2v-port 0 --s3-port 0 --bucket mail --key-id GK0123456789abcdef01234567 \
		--secret $(CTL_EMU_SECRET) -- env AG_GARAGE_DRIVER=$(B)/drivers/aerogram_garage.so \
		AG_SQLITE_DRIVER=$(B)/drivers/aerogram_sqlite.so $(B)/tests/test_ctl_store

CHECKS += check-ctl-store-garage
.PHONY: check-ctl-store-garage

# copy-store's rate: `make bench-ctl-store N=10000` messages, SQLite to
# SQLite and to memory, then again with SQLite to garage-emu.
N = 2000
bench-ctl-store: $(B)/tests/test_ctl_store $(B)/drivers/aerogram_memory.so $(B)/drivers/aerogram_sqlite.so \
		$(B)/drivers/aerogram_garage.so
	$(B)/tests/test_ctl_store --bench $(N)
	tests/garage-emu/garage-emu --k2v-port 0 --s3-port 0 --bucket mail --key-id GK0123456789abcdef01234567 \
		--secret $(CTL_EMU_SECRET) -- env AG_GARAGE_DRIVER=$(B)/drivers/aerogram_garage.so \
		$(B)/tests/test_ctl_store --bench $(N)

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

bench-engine: $(B)/bench-open $(B)/drivers/aerogram_memory.so
	$(B)/bench-open

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
