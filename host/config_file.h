/* config_file.h - aerogramd's configuration file (INI, read with inih). */
#ifndef AG_HOST_CONFIG_H
#define AG_HOST_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <aerogram/driver.h>

/* tls_min_version */
#define AG_TLS_1_2 0x0303
#define AG_TLS_1_3 0x0304

/* The whole configuration. Strings are owned by the struct. */
struct ag_config {
	char *path;             /* the file it was read from */
	/* [storage] */
	char *driver;           /* a driver name or a path to a .so */
	char *driver_dir;       /* where names are looked up */
	struct aerogram_config_entry *storage; /* every other [storage] key, for the driver */
	size_t n_storage;
	/* seconds expunged messages' bodies and summaries stay in the store
	 * (undelete) before collection; 0: as soon as sessions are done with
	 * them (default 7 days) */
	uint64_t expunge_retention_s;
	int expunge_retention_set;   /* the file names it (else the default) */
	uint64_t body_cache_bytes;   /* [storage] body_cache: 0 = none */
	/* [imap] */
	char *listen;           /* "127.0.0.1:1143 [::1]:1143" */
	char *tls_listen;
	char *tls_cert;
	char *tls_key;
	char *plaintext_auth;   /* yes | no | loopback */
	char *tls_ciphers;      /* OpenSSL cipher list for TLS 1.2 (NULL: forward-secret AEAD suites) */
	int tls_min_version;    /* AG_TLS_1_2 (default) or AG_TLS_1_3 */
	size_t max_line;
	size_t max_message;
	unsigned workers;        /* threads running storage and password work, per loop (default 4) */
	unsigned loops;          /* event loop threads; 0 = one per online CPU but one, 1 to 8 (default 0) */
	unsigned idle_timeout;   /* seconds without a command before autologout (default 1800) */
	unsigned max_connections; /* open connections at most; more are told BYE (default 1000) */
	unsigned login_timeout;  /* seconds from connect to authenticated at most (default 60) */
	unsigned max_connections_per_ip; /* open connections from one address at most (default 100) */
	unsigned max_user_connections;   /* sessions of one user at most (default 50) */
	char *user;              /* run as this user after binding when started as root (NULL: stay) */
	/* [auth] */
	char *users_file;
	unsigned failure_delay;     /* ms before answering the first failed login of an address (default 1000) */
	unsigned failure_delay_max; /* ms, the cap of the delay that doubles per failure (default 15000) */
	uint64_t default_quota;     /* bytes a user's mail may take; 0: unlimited (default) */
	uint64_t default_quota_messages; /* messages a user may have; 0: unlimited (default) */
	/* [lmtp] (host/lmtp.c); off while lmtp_listen is NULL */
	char *lmtp_listen;          /* "127.0.0.1:2424 unix:/run/aerogram/lmtp" */
	char *lmtp_domains;         /* "example.org example.net", lowercase, or NULL */
	unsigned lmtp_max_recipients; /* RCPTs accepted per transaction (default 1000) */
	unsigned lmtp_timeout;      /* seconds an LMTP client may stay silent (default 300) */
	/* [metrics]: /metrics in Prometheus' text format (host/metrics.h) */
	int metrics_enabled;        /* 0 (default) or 1 */
	char *metrics_listen;       /* host:port (default 127.0.0.1:9143) */
	/* [log] */
	int log_level;              /* an aerogram_log_level: messages above it are not written (default info) */
	/* The line of some keys, for messages about their value found after
	 * parsing (a key not set: 0). */
	struct {
		int listen, tls_listen, tls_cert, tls_key, tls_ciphers, users_file, failure_delay_max;
		int lmtp_listen, lmtp_domains;
		int user, metrics_listen;
	} lines;
};

/* Bounds of quota values (users file and [auth] defaults): 1 PiB, and
 * 2^32 - 1 messages. */
#define AG_QUOTA_BYTES_MAX (1ull << 50)
#define AG_QUOTA_MESSAGES_MAX 4294967295ull

/* Reads a quota value: "unlimited" (*out = 0), or a whole number from 1 to
 * max, with `suffixes` optionally followed by K, M, G or T (times 1024,
 * 1024^2...; either case). Returns 0, or -1 for anything else. */
int ag_config_parse_limit(const char *value, int suffixes, uint64_t max, uint64_t *out);

/* The words of a list separated by spaces and tabs (listen addresses,
 * domains): skips the blanks at *p and returns the length of the word that
 * starts there, 0 at the end of the list. The caller moves *p past it:
 *     for (const char *p = list; (n = ag_config_word(&p)) > 0; p += n) */
size_t ag_config_word(const char **p);
/* Copies the word p[0..n) into out as a string: 0, or -1 when it does not
 * fit in outlen bytes. */
int ag_config_word_copy(const char *p, size_t n, char *out, size_t outlen);

/* Reads and validates `path`. On failure returns -1 and writes one line
 * (file, line number, problem) into err. On success fills *cfg, which the
 * caller releases with ag_config_free. */
int ag_config_load(const char *path, struct ag_config *cfg, char *err, size_t errlen);
/* The same on an open stream; `path` is for messages. */
int ag_config_parse(FILE *f, const char *path, struct ag_config *cfg, char *err, size_t errlen);
/* Writes "FILE:LINE" (or "FILE" when line is 0) into out, for messages
 * about a key; returns what snprintf returns. */
int ag_config_where(const struct ag_config *cfg, int line, char *out, size_t outlen);
/* Frees everything ag_config_load allocated. */
void ag_config_free(struct ag_config *cfg);

#endif
