# host/: the daemon and the admin tool.
HOST_LOADER_OBJS = $(B)/obj/host/driver_loader.o
HOST_COMMON_OBJS = $(B)/obj/host/config_file.o $(HOST_LOADER_OBJS)
# (protocol/module.mk is read after this file: name its library directly.)
# The IMAP service: one object per concern (see each file's header).
HOST_SERVER_OBJS = $(addprefix $(B)/obj/host/,log.o users.o auth.o workers.o tls.o capability.o \
	listener.o server.o session.o commands.o cmd_any.o cmd_login.o cmd_authenticated.o)

$(B)/obj/host/%.o: MOD_CFLAGS = $(INIH_CFLAGS) $(EVENT_CFLAGS) $(OPENSSL_CFLAGS) $(ARGON2_CFLAGS)

SPROGRAMS += aerogramd
PROGRAMS += aerogramctl

$(B)/aerogramd: $(B)/obj/host/aerogramd.o $(HOST_SERVER_OBJS) $(HOST_COMMON_OBJS) $(B)/libagprotocol.a
	$(CC) $(AG_LDFLAGS) -rdynamic -o $@ $^ $(INIH_LIBS) $(EVENT_LIBS) $(OPENSSL_LIBS) $(ARGON2_LIBS) $(THREAD_LIBS) -ldl

$(B)/aerogramctl: $(B)/obj/host/aerogramctl.o
	$(CC) $(AG_LDFLAGS) -o $@ $^ $(ARGON2_LIBS) $(OPENSSL_LIBS)
