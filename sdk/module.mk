# sdk/: the test wrappers (libagwrap.a and the faulty/counting drivers), the
# driver conformance suite (aerogram-driver-check) and the skeleton driver.

# The test wrappers: a static library for in-process tests, and the same
# wrappers as loadable drivers for tests that run a whole aerogramd.
AGWRAP_LIB = $(B)/libagwrap.a
AGWRAP_OBJS = $(B)/obj/sdk/wrappers/agw_wrap.o
all: $(AGWRAP_LIB)
$(AGWRAP_LIB): $(AGWRAP_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

DRIVERS += $(B)/drivers/aerogram_faulty.so $(B)/drivers/aerogram_counting.so
$(B)/drivers/aerogram_faulty.so: $(B)/obj/sdk/wrappers/faulty_driver.o $(B)/obj/sdk/wrappers/agw_inner.o $(LOADER_OBJS) $(AGWRAP_OBJS) $(KIT_OBJS)
	@mkdir -p $(@D)
	$(CC) $(DRIVER_LDFLAGS) -o $@ $^ $(THREAD_LIBS) -ldl
$(B)/drivers/aerogram_counting.so: $(B)/obj/sdk/wrappers/counting_driver.o $(B)/obj/sdk/wrappers/agw_inner.o $(LOADER_OBJS) $(AGWRAP_OBJS) $(KIT_OBJS)
	@mkdir -p $(@D)
	$(CC) $(DRIVER_LDFLAGS) -o $@ $^ $(THREAD_LIBS) -ldl

# The conformance suite.
CONFORMANCE_SRCS = $(sort $(wildcard sdk/conformance/*.c))
CONFORMANCE_OBJS = $(CONFORMANCE_SRCS:%.c=$(B)/obj/%.o)
$(B)/obj/sdk/conformance/%.o: MOD_CFLAGS = $(CUNIT_CFLAGS)

PROGRAMS += aerogram-driver-check

$(B)/aerogram-driver-check: $(CONFORMANCE_OBJS) $(LOADER_OBJS) $(AGWRAP_LIB)
	$(CC) $(AG_LDFLAGS) -o $@ $^ $(CUNIT_LIBS) $(THREAD_LIBS) -ldl

# The conformance suite on the memory driver; then stacked under the
# in-process wrappers and under the loadable ones, which must forward every
# call faithfully.
CHECKS += check-conformance-memory
.PHONY: check-conformance-memory
check-conformance-memory: $(B)/aerogram-driver-check $(B)/drivers/aerogram_memory.so \
		$(B)/drivers/aerogram_faulty.so $(B)/drivers/aerogram_counting.so
	$(B)/aerogram-driver-check $(B)/drivers/aerogram_memory.so
	$(B)/aerogram-driver-check --wrap=fault,count $(B)/drivers/aerogram_memory.so
	$(B)/aerogram-driver-check $(B)/drivers/aerogram_counting.so inner=faulty inner_config=inner=memory

# The skeleton driver, built outside the tree against `make install`.
CHECKS += check-skeleton
.PHONY: check-skeleton
check-skeleton: all
	sh sdk/check_skeleton.sh $(B) $(pkgconfigdir)
