# host/: the daemon and the admin tool.
HOST_COMMON_OBJS = $(B)/obj/host/config_file.o $(LOADER_OBJS)
# (protocol/module.mk is read after this file: name its library directly.)
# The IMAP service: one object per concern (see each file's header).
HOST_SERVER_OBJS = $(addprefix $(B)/obj/host/,log.o users.o auth.o workers.o tls.o capability.o list_match.o \
	listener.o server.o session.o compress.o commands.o cmd_any.o cmd_login.o cmd_authenticated.o \
	mail_reply.o cmd_select.o cmd_mailbox.o cmd_append.o cmd_fetch.o cmd_store.o cmd_search.o cmd_sort.o search_cache.o \
	searchres.o)
# The updating SEARCH and SORT contexts of RFC 5267 (context.h).
HOST_SERVER_OBJS += $(B)/obj/host/context.o
# Per-user quotas and the QUOTA extension (quota.h).
HOST_SERVER_OBJS += $(B)/obj/host/quota.o $(B)/obj/host/cmd_quota.o
# Connections per address, sessions per user, the password-check pool (limits.h).
HOST_SERVER_OBJS += $(B)/obj/host/limits.o
# What FETCH derives from summaries, kept per message (fetch_cache.h).
HOST_SERVER_OBJS += $(B)/obj/host/fetch_cache.o
# aerogramctl's store subcommands, undelete and copy-store (ctl_store.h);
# they need HOST_COMMON_OBJS, users.o, log.o and the mail library.
HOST_CTL_STORE_OBJS = $(B)/obj/host/ctl_store.o
# LMTP delivery (lmtp.h) and its pure parser (lmtp_parse.h).
HOST_SERVER_OBJS += $(B)/obj/host/lmtp.o $(B)/obj/host/lmtp_parse.o
# /metrics (metrics.h) and [imap] user (privileges.h).
HOST_SERVER_OBJS += $(B)/obj/host/metrics.o $(B)/obj/host/privileges.o

$(B)/obj/host/%.o: MOD_CFLAGS = $(INIH_CFLAGS) $(EVENT_CFLAGS) $(OPENSSL_CFLAGS) $(ARGON2_CFLAGS) $(ZLIB_CFLAGS)

SPROGRAMS += aerogramd
PROGRAMS += aerogramctl

$(B)/aerogramd: $(B)/obj/host/aerogramd.o $(HOST_SERVER_OBJS) $(HOST_COMMON_OBJS) $(B)/libagmail.a $(B)/libagprotocol.a
	$(CC) $(AG_LDFLAGS) -rdynamic -o $@ $^ $(INIH_LIBS) $(EVENT_LIBS) $(OPENSSL_LIBS) $(ARGON2_LIBS) $(ZLIB_LIBS) $(THREAD_LIBS) -ldl

# aerogramctl: the subcommand table (aerogramctl.c), what they share (ctl.c,
# ctl.h) and one file per group of subcommands; it opens the configuration,
# the driver and a mail engine as aerogramd does.
HOST_CTL_OBJS = $(addprefix $(B)/obj/host/,aerogramctl.o ctl.o ctl_users.o ctl_import.o ctl_check.o ctl_store.o \
	users.o log.o)
$(B)/aerogramctl: $(HOST_CTL_OBJS) $(HOST_COMMON_OBJS) $(B)/libagmail.a $(B)/libagprotocol.a
	$(CC) $(AG_LDFLAGS) -o $@ $^ $(INIH_LIBS) $(EVENT_LIBS) $(OPENSSL_LIBS) $(ARGON2_LIBS) $(THREAD_LIBS) -ldl

# `make run`: a demo daemon in the foreground on 127.0.0.1:1143 (and LMTP on
# 127.0.0.1:2424 for demo@localhost) over the SQLite driver (its database in build/run/data, kept between runs), with a
# fresh configuration and users file in build/run and a new password for
# `demo` each time.
RUN_DIR = $(B)/run
run: all
	@mkdir -p $(RUN_DIR)/data
	@password=$$(openssl rand -hex 8) && \
	hash=$$(printf '%s\n' "$$password" | $(B)/aerogramctl hash-password) && \
	(umask 077 && printf '# Written by make run.\n[demo]\npassword = %s\n' "$$hash" > $(RUN_DIR)/users.ini) && \
	chmod 600 $(RUN_DIR)/users.ini && \
	printf '%s\n' '# Written by make run; see packaging/aerogram.conf.example.' \
		'[storage]' 'driver = sqlite' 'driver_dir = $(B)/drivers' 'path = $(CURDIR)/$(RUN_DIR)/data/mail.sqlite' '' \
		'[imap]' 'listen = 127.0.0.1:1143' 'plaintext_auth = loopback' '' \
		'[auth]' 'users_file = $(RUN_DIR)/users.ini' '' \
		'[lmtp]' 'listen = 127.0.0.1:2424' 'domains = localhost' > $(RUN_DIR)/aerogram.conf && \
	echo "aerogramd on 127.0.0.1:1143 (IMAP) and 127.0.0.1:2424 (LMTP), mail in $(RUN_DIR)/data/mail.sqlite (kept between runs)" && \
	echo "  user: demo   password: $$password   address: demo@localhost" && \
	echo "  deliver: python3 -c \"import smtplib; print(smtplib.LMTP('127.0.0.1', 2424).sendmail('me@example.org', 'demo@localhost', b'Subject: hello\\\\r\\\\n\\\\r\\\\nfirst message\\\\r\\\\n'))\"" && \
	echo "  read:    python3 -c \"import imaplib; m = imaplib.IMAP4('127.0.0.1', 1143); print(m.login('demo', '$$password')); m.select(); print(m.fetch('1:*', '(BODY[])'))\"" && \
	echo "  Ctrl-C stops it." && \
	exec $(B)/aerogramd -c $(RUN_DIR)/aerogram.conf

# The mail engine (host/mail/) describes its own library.
include host/mail/module.mk
