# tests/loader: the host's driver loader against tiny bad drivers, and
# aerogramd -t against bad configurations.
LOADER_TEST_VARIANTS = good major minor small noentry undefined openfail missingfn cond condnofn
LOADER_TEST_DRIVERS = $(LOADER_TEST_VARIANTS:%=$(B)/tests/loader/aerogram_%.so)
TESTBINS += $(B)/tests/test_loader $(LOADER_TEST_DRIVERS)

# Each variant is test_driver.c built with -DTD_<VARIANT>. The "undefined"
# one is linked without -z defs on purpose: it must load only to fail.
$(B)/tests/loader/aerogram_%.so: tests/loader/test_driver.c $(SDK_HEADERS)
	@mkdir -p $(@D)
	$(CC) $(AG_CFLAGS) -DTD_$(shell echo $* | tr a-z A-Z) $(DRIVER_LDFLAGS) -o $@ $<
$(B)/tests/loader/aerogram_undefined.so: tests/loader/test_driver.c $(SDK_HEADERS)
	@mkdir -p $(@D)
	$(CC) $(AG_CFLAGS) -DTD_UNDEFINED -shared $(AG_LDFLAGS) -o $@ $<

$(B)/obj/tests/loader/%.o: MOD_CFLAGS = $(CUNIT_CFLAGS)
$(B)/tests/test_loader: $(B)/obj/tests/loader/test_loader.o $(CU_MAIN) $(LOADER_OBJS)
	@mkdir -p $(@D)
	$(CC) $(AG_LDFLAGS) -o $@ $^ $(CUNIT_LIBS) -ldl

CHECKS += check-loader
.PHONY: check-loader
check-loader: $(B)/tests/test_loader $(LOADER_TEST_DRIVERS) $(B)/aerogramd $(B)/drivers/aerogram_memory.so
	$(B)/tests/test_loader $(B)/tests/loader
	sh tests/loader/check_aerogramd.sh $(B)
