# tests/sqlite: unit tests of the SQLite driver through its ABI (CUnit).
TESTBINS += $(B)/test-sqlite-driver
CHECKS += check-sqlite-unit

$(B)/obj/tests/sqlite/%.o: MOD_CFLAGS = $(CUNIT_CFLAGS) $(SQLITE_CFLAGS)

$(B)/test-sqlite-driver: $(B)/obj/tests/sqlite/test_sqlite_driver.o $(CU_MAIN) $(LOADER_OBJS)
	$(CC) $(AG_LDFLAGS) -o $@ $^ $(CUNIT_LIBS) $(SQLITE_LIBS) $(THREAD_LIBS) -ldl

.PHONY: check-sqlite-unit
check-sqlite-unit: $(B)/test-sqlite-driver $(SQLITE_DRIVER)
	$(B)/test-sqlite-driver $(SQLITE_DRIVER)
