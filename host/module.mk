# host/: the daemon and the admin tool.
HOST_LOADER_OBJS = $(B)/obj/host/driver_loader.o
HOST_COMMON_OBJS = $(B)/obj/host/config_file.o $(HOST_LOADER_OBJS)

$(B)/obj/host/%.o: MOD_CFLAGS = $(INIH_CFLAGS) $(EVENT_CFLAGS) $(OPENSSL_CFLAGS) $(ARGON2_CFLAGS)

SPROGRAMS += aerogramd
PROGRAMS += aerogramctl

$(B)/aerogramd: $(B)/obj/host/aerogramd.o $(HOST_COMMON_OBJS) $(PROTOCOL_LIB)
	$(CC) $(AG_LDFLAGS) -rdynamic -o $@ $^ $(INIH_LIBS) $(THREAD_LIBS) -ldl

$(B)/aerogramctl: $(B)/obj/host/aerogramctl.o
	$(CC) $(AG_LDFLAGS) -o $@ $^ $(ARGON2_LIBS) $(OPENSSL_LIBS)

# The mail engine (host/mail/) describes its own library.
include host/mail/module.mk
