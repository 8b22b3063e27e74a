# tests/wrappers: the fault and count wrappers, in-process and loadable.
$(B)/obj/tests/wrappers/%.o: MOD_CFLAGS = $(CUNIT_CFLAGS)
TESTBINS += $(B)/tests/test_wrappers

$(B)/tests/test_wrappers: $(B)/obj/tests/wrappers/test_wrappers.o $(CU_MAIN) $(LOADER_OBJS) $(AGWRAP_LIB)
	@mkdir -p $(@D)
	$(CC) $(AG_LDFLAGS) -o $@ $^ $(CUNIT_LIBS) $(THREAD_LIBS) -ldl

CHECKS += check-wrappers
.PHONY: check-wrappers
check-wrappers: $(B)/tests/test_wrappers $(DRIVERS)
	$(B)/tests/test_wrappers $(B)/drivers
