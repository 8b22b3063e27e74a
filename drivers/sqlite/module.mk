# drivers/sqlite: the durable embedded driver (one SQLite file in WAL mode,
# large blobs in files beside it). Builds build/drivers/aerogram_sqlite.so.
SQLITE_DRIVER_SRCS = $(sort $(wildcard drivers/sqlite/*.c))
SQLITE_DRIVER_OBJS = $(SQLITE_DRIVER_SRCS:%.c=$(B)/obj/%.o)
SQLITE_DRIVER = $(B)/drivers/aerogram_sqlite.so

$(B)/obj/drivers/sqlite/%.o: MOD_CFLAGS = $(SQLITE_CFLAGS)

DRIVERS += $(SQLITE_DRIVER)

$(SQLITE_DRIVER): $(SQLITE_DRIVER_OBJS)
	@mkdir -p $(@D)
	$(CC) $(DRIVER_LDFLAGS) -o $@ $^ $(SQLITE_LIBS) $(THREAD_LIBS)
