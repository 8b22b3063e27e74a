# drivers/sqlite: the durable embedded driver (one SQLite file in WAL mode,
# large blobs in files beside it). Builds build/drivers/aerogram_sqlite.so.
SQLITE_DRIVER_SRCS = $(sort $(wildcard drivers/sqlite/*.c))
SQLITE_DRIVER_OBJS = $(SQLITE_DRIVER_SRCS:%.c=$(B)/obj/%.o)
SQLITE_DRIVER = $(B)/drivers/aerogram_sqlite.so

$(B)/obj/drivers/sqlite/%.o: MOD_CFLAGS = $(SQLITE_CFLAGS)

DRIVERS += $(SQLITE_DRIVER)

$(SQLITE_DRIVER): $(SQLITE_DRIVER_OBJS) $(KIT_OBJS)
	@mkdir -p $(@D)
	$(CC) $(DRIVER_LDFLAGS) -o $@ $^ $(SQLITE_LIBS) $(THREAD_LIBS)

# The conformance suite on a fresh database file, then again on the same file
# to prove that re-runs on a persistent store work.
CHECKS += check-conformance-sqlite
.PHONY: check-conformance-sqlite
check-conformance-sqlite: $(B)/aerogram-driver-check $(SQLITE_DRIVER)
	@dir=$$(mktemp -d "$${TMPDIR:-/tmp}/agsqlcheck.XXXXXX") && \
	$(B)/aerogram-driver-check $(SQLITE_DRIVER) path=$$dir/db && \
	$(B)/aerogram-driver-check $(SQLITE_DRIVER) path=$$dir/db && \
	sqlite3 $$dir/db "PRAGMA integrity_check" | grep -qx ok && \
	rm -rf "$$dir"
