# tests/sqlite-crash: kill -9 writers of one SQLite store at random moments
# and check that every acknowledged append survived, exactly once.
#   make check-sqlite-crash   small: 3 writers, 10 kills (part of make check)
#   make crash-test           large: 4 writers, 200 kills (CRASH_KILLS=n to change)
TESTBINS += $(B)/crash-tool
CHECKS += check-sqlite-crash
CRASH_WRITERS = 4
CRASH_KILLS = 200

$(B)/crash-tool: $(B)/obj/tests/sqlite-crash/crash_tool.o $(HOST_LOADER_OBJS)
	$(CC) $(AG_LDFLAGS) -o $@ $^ $(THREAD_LIBS) -ldl

.PHONY: check-sqlite-crash crash-test
check-sqlite-crash: $(B)/crash-tool $(SQLITE_DRIVER)
	tests/sqlite-crash/run-crash-test $(B) 3 10

crash-test: $(B)/crash-tool $(SQLITE_DRIVER)
	tests/sqlite-crash/run-crash-test $(B) $(CRASH_WRITERS) $(CRASH_KILLS)
