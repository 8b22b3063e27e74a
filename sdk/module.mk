# sdk/: the driver conformance suite (aerogram-driver-check), the test
# wrappers (libagwrap.a and the faulty/counting drivers) and the skeleton.

CONFORMANCE_SRCS = $(sort $(wildcard sdk/conformance/*.c))
CONFORMANCE_OBJS = $(CONFORMANCE_SRCS:%.c=$(B)/obj/%.o)
$(B)/obj/sdk/conformance/%.o: MOD_CFLAGS = $(CUNIT_CFLAGS)

PROGRAMS += aerogram-driver-check

$(B)/aerogram-driver-check: $(CONFORMANCE_OBJS) $(HOST_LOADER_OBJS)
	$(CC) $(AG_LDFLAGS) -o $@ $^ $(CUNIT_LIBS) $(THREAD_LIBS) -ldl

# The conformance suite on the memory driver.
CHECKS += check-memory
.PHONY: check-memory
check-memory: $(B)/aerogram-driver-check $(B)/drivers/aerogram_memory.so
	$(B)/aerogram-driver-check $(B)/drivers/aerogram_memory.so
