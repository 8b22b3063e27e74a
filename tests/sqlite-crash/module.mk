# tests/sqlite-crash: kill -9 the users of one SQLite store at random moments
# and check that every acknowledged append survived, exactly once.
#   check-sqlite-crash        driver level, small: 3 writers, 10 kills; then 2 writer
#                             processes of 4 threads each (grouped commits), 10 kills (make check)
#   check-sqlite-imap-crash   through aerogramd over IMAP, small: 3 clients, 10 kills (make check)
#   check-sqlite-two-daemons  two aerogramd on one database: IDLE sees the other's APPEND,
#                             concurrent APPENDs converge (make check)
#   crash-test                both crash tests, large: 4 writers and 200 kills
#                             (CRASH_KILLS=n), the same with 4 threads per writer,
#                             3 clients and 200 kills (IMAP_CRASH_KILLS=n)
TESTBINS += $(B)/crash-tool
CHECKS += check-sqlite-crash check-sqlite-imap-crash
CRASH_WRITERS = 4
CRASH_KILLS = 200
IMAP_CRASH_CLIENTS = 3
IMAP_CRASH_KILLS = 200

$(B)/crash-tool: $(B)/obj/tests/sqlite-crash/crash_tool.o $(LOADER_OBJS)
	$(CC) $(AG_LDFLAGS) -o $@ $^ $(THREAD_LIBS) -ldl

.PHONY: check-sqlite-crash check-sqlite-imap-crash crash-test
check-sqlite-crash: $(B)/crash-tool $(SQLITE_DRIVER)
	tests/sqlite-crash/run-crash-test $(B) 3 10
	tests/sqlite-crash/run-crash-test --threads 4 $(B) 2 10

check-sqlite-imap-crash: $(B)/aerogramd $(SQLITE_DRIVER)
	python3 tests/sqlite-crash/imap-crash-test --build $(B) --clients 3 --kills 10

crash-test: $(B)/crash-tool $(B)/aerogramd $(SQLITE_DRIVER)
	tests/sqlite-crash/run-crash-test $(B) $(CRASH_WRITERS) $(CRASH_KILLS)
	tests/sqlite-crash/run-crash-test --threads 4 $(B) $(CRASH_WRITERS) $(CRASH_KILLS)
	python3 tests/sqlite-crash/imap-crash-test --build $(B) --clients $(IMAP_CRASH_CLIENTS) \
		--kills $(IMAP_CRASH_KILLS)

# Two aerogramd on one database: an IDLE on one sees an APPEND through the
# other, and concurrent APPENDs through both converge.
CHECKS += check-sqlite-two-daemons
.PHONY: check-sqlite-two-daemons
check-sqlite-two-daemons: $(B)/aerogramd $(SQLITE_DRIVER)
	python3 tests/sqlite-crash/two-daemons-test --build $(B)
