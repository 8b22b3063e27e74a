/* config_file.c - aerogramd's configuration file, read with inih.
 *
 * Sections and keys are checked strictly, as Dovecot does: a misspelt key is
 * an error at start-up, not a setting silently ignored. The exception is
 * [storage], whose keys other than `driver`, `driver_dir`,
 * `expunge_retention` and `body_cache` belong to the driver: they are collected here and the
 * driver loader refuses the ones the driver does not declare.
 */
#include "host/config_file.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/util.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "config.h"

/* Bounds of the numeric keys: large enough for any real use, small enough
 * that no arithmetic on them (max_line * 2, a delay doubled, a count of
 * threads) can overflow or ask for absurd memory. */
#define MAX_LINE_MIN 1024
#define MAX_LINE_MAX (16u * 1024 * 1024)
#define MAX_MESSAGE_MIN 1024
#define MAX_MESSAGE_MAX (1024u * 1024 * 1024)
/* body_cache: up to 16 GiB */
#define BODY_CACHE_MAX (16ull << 30)
#define BODY_CACHE_DEFAULT (32ull << 20)
/* expunge_retention: up to a year */
#define RETENTION_MAX_S (365ull * 86400)
#define RETENTION_DEFAULT_S (7ull * 86400)
#define LMTP_RECIPIENTS_MAX 100000
#define LMTP_TIMEOUT_MIN 10
#define LMTP_TIMEOUT_MAX 3600

struct parse_state {
	struct ag_config *cfg;
	char *err;
	size_t errlen;
	int failed;
	int fail_line;
	/* the line inih is parsing (counted by read_line) */
	FILE *f;
	int line;
	/* "section\nname" of every key seen, to refuse a key set twice */
	char **seen;
	size_t n_seen;
};

static int set_string(char **field, const char *value)
{
	char *copy = strdup(value);
	if (copy == NULL)
		return -1;
	free(*field);
	*field = copy;
	return 0;
}

static int parse_uint(const char *value, unsigned min, unsigned max, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' || value[0] == '-' || v < min || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int parse_size(const char *value, size_t min, size_t max, size_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' || value[0] == '-' || value[0] == '+' || v < min ||
	    v > max)
		return -1;
	*out = (size_t)v;
	return 0;
}

int ag_config_parse_limit(const char *value, int suffixes, uint64_t max, uint64_t *out)
{
	if (strcasecmp(value, "unlimited") == 0) {
		*out = 0;
		return 0;
	}
	uint64_t v = 0;
	size_t n = 0;
	for (; value[n] >= '0' && value[n] <= '9'; n++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(value[n] - '0');
	}
	if (n == 0)
		return -1;
	const char *units = "KMGT";
	const char *u = value[n] != '\0' && suffixes ? strchr(units, toupper((unsigned char)value[n])) : NULL;
	if (u != NULL) {
		for (const char *k = units; k <= u; k++) {
			if (v > UINT64_MAX / 1024)
				return -1;
			v *= 1024;
		}
		n++;
	}
	if (value[n] != '\0' || v < 1 || v > max)
		return -1;
	*out = v;
	return 0;
}

/* A duration: a number of seconds, or a number and one unit s, m, h, d or
 * w ("7d", "12h", "0"), at most max seconds. */
static int parse_duration(const char *value, uint64_t max, uint64_t *out)
{
	char *end;
	errno = 0;
	if (value[0] < '0' || value[0] > '9')
		return -1;
	unsigned long long v = strtoull(value, &end, 10);
	if (errno != 0)
		return -1;
	uint64_t unit = 1;
	if (*end != '\0') {
		switch (*end) {
		case 's': unit = 1; break;
		case 'm': unit = 60; break;
		case 'h': unit = 3600; break;
		case 'd': unit = 86400; break;
		case 'w': unit = 7 * 86400; break;
		default: return -1;
		}
		if (end[1] != '\0')
			return -1;
	}
	if (v > max / unit)
		return -1;
	*out = (uint64_t)v * unit;
	return 0;
}

/* 1 when `name` was already set in `section`; else remembers it. */
static int seen_before(struct parse_state *st, const char *section, const char *name, int *oom)
{
	size_t sl = strlen(section), nl = strlen(name);
	for (size_t i = 0; i < st->n_seen; i++) {
		const char *k = st->seen[i];
		if (strncmp(k, section, sl) == 0 && k[sl] == '\n' && strcmp(k + sl + 1, name) == 0)
			return 1;
	}
	char **n = realloc(st->seen, (st->n_seen + 1) * sizeof(*n));
	char *k = malloc(sl + nl + 2);
	if (n == NULL || k == NULL) {
		if (n != NULL)
			st->seen = n;
		free(k);
		*oom = 1;
		return 0;
	}
	st->seen = n;
	memcpy(k, section, sl);
	k[sl] = '\n';
	memcpy(k + sl + 1, name, nl + 1);
	st->seen[st->n_seen++] = k;
	return 0;
}

/* "must be <what> from <min> to <max>", in `range` */
#define RANGE(what, min, max) (snprintf(range, sizeof(range), "must be %s from %llu to %llu", what, \
                                        (unsigned long long)(min), (unsigned long long)(max)), range)

/* Most keys are rows of a table by the type of their value, not a branch
 * each: what every row starts with. */
struct key_name {
	const char *section, *name;
};

/* The row of `table` (n rows of `size` bytes, each starting with a struct
 * key_name) for section and name, or NULL. */
static const void *find_key(const void *table, size_t n, size_t size, const char *section, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		const struct key_name *k = (const void *)((const char *)table + i * size);
		if (strcmp(k->section, section) == 0 && strcmp(k->name, name) == 0)
			return k;
	}
	return NULL;
}
#define FIND_KEY(table, section, name) find_key(table, sizeof(table) / sizeof(table[0]), sizeof(table[0]), section, name)

/* The keys whose value is a whole number in a range (README.md lists the
 * same ranges). */
static const struct uint_key {
	struct key_name key;
	const char *what;
	unsigned min, max;
	size_t offset;
} uint_keys[] = {
	{ { "imap", "workers" }, "a number of threads", 1, 256, offsetof(struct ag_config, workers) },
	{ { "imap", "loops" }, "a number of event loops (0: one per CPU but one)", 0, 64,
	  offsetof(struct ag_config, loops) },
	{ { "imap", "max_connections" }, "a number of connections", 1, 1000000, offsetof(struct ag_config, max_connections) },
	{ { "imap", "idle_timeout" }, "a number of seconds", 1, 86400, offsetof(struct ag_config, idle_timeout) },
	{ { "imap", "login_timeout" }, "a number of seconds", 1, 3600, offsetof(struct ag_config, login_timeout) },
	{ { "imap", "max_connections_per_ip" }, "a number of connections", 1, 1000000,
	  offsetof(struct ag_config, max_connections_per_ip) },
	{ { "imap", "max_user_connections" }, "a number of connections", 1, 1000000,
	  offsetof(struct ag_config, max_user_connections) },
	{ { "auth", "failure_delay" }, "a number of milliseconds", 0, 600000, offsetof(struct ag_config, failure_delay) },
	{ { "lmtp", "max_recipients" }, "a number of recipients", 1, LMTP_RECIPIENTS_MAX,
	  offsetof(struct ag_config, lmtp_max_recipients) },
	{ { "lmtp", "timeout" }, "a number of seconds", LMTP_TIMEOUT_MIN, LMTP_TIMEOUT_MAX,
	  offsetof(struct ag_config, lmtp_timeout) },
};

/* The keys whose value is kept as it is written: one table as well. `line`
 * is where the key's line number is kept for later messages, or NO_LINE. */
#define NO_LINE ((size_t)-1)
#define CFG_STRING(section, name, field, line) { { section, name }, offsetof(struct ag_config, field), line }
#define CFG_LINE(field) offsetof(struct ag_config, lines.field)
static const struct string_key {
	struct key_name key;
	size_t offset, line;
} string_keys[] = {
	CFG_STRING("storage", "driver", driver, NO_LINE),
	CFG_STRING("storage", "driver_dir", driver_dir, NO_LINE),
	CFG_STRING("imap", "listen", listen, CFG_LINE(listen)),
	CFG_STRING("imap", "tls_listen", tls_listen, CFG_LINE(tls_listen)),
	CFG_STRING("imap", "tls_cert", tls_cert, CFG_LINE(tls_cert)),
	CFG_STRING("imap", "tls_key", tls_key, CFG_LINE(tls_key)),
	CFG_STRING("lmtp", "listen", lmtp_listen, CFG_LINE(lmtp_listen)),
	CFG_STRING("lmtp", "domains", lmtp_domains, CFG_LINE(lmtp_domains)),
	CFG_STRING("metrics", "listen", metrics_listen, CFG_LINE(metrics_listen)),
};

/* The string a row of string_keys keeps. */
static char **string_field(struct ag_config *cfg, const struct string_key *k)
{
	return (char **)(void *)((char *)cfg + k->offset);
}

/* The keys whose value is one word of a list, kept as an int. */
struct choice {
	const char *word;
	int value;
};
static const struct choice_key {
	struct key_name key;
	const char *problem;
	size_t offset;
	struct choice choices[5]; /* ended by a NULL word */
} choice_keys[] = {
	{ { "imap", "tls_min_version" }, "must be TLSv1.2 or TLSv1.3", offsetof(struct ag_config, tls_min_version),
	  { { "TLSv1.2", AG_TLS_1_2 }, { "TLSv1.3", AG_TLS_1_3 }, { NULL, 0 } } },
	{ { "metrics", "enabled" }, "must be yes or no", offsetof(struct ag_config, metrics_enabled),
	  { { "yes", 1 }, { "no", 0 }, { NULL, 0 } } },
	{ { "log", "level" }, "must be error, warning, info or debug", offsetof(struct ag_config, log_level),
	  { { "error", AEROGRAM_LOG_ERROR },
	    { "warning", AEROGRAM_LOG_WARNING },
	    { "info", AEROGRAM_LOG_INFO },
	    { "debug", AEROGRAM_LOG_DEBUG },
	    { NULL, 0 } } },
};

/* inih calls this for each name = value; returning 0 stops with an error. */
static int on_entry(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state *st = user;
	struct ag_config *cfg = st->cfg;
	const char *problem = NULL;
	char range[160];
	int oom = 0;
	const struct uint_key *uk;
	const struct string_key *sk;
	const struct choice_key *ck;

	/* inih goes on after an error: the first one is the one reported. */
	if (st->failed)
		return 0;
	if (section[0] != '\0' && seen_before(st, section, name, &oom))
		problem = "set twice (or an indented line continues it)";
	else if (oom)
		problem = "out of memory";
	else if ((uk = FIND_KEY(uint_keys, section, name)) != NULL) {
		if (parse_uint(value, uk->min, uk->max, (unsigned *)(void *)((char *)cfg + uk->offset)) != 0)
			problem = RANGE(uk->what, uk->min, uk->max);
	} else if ((ck = FIND_KEY(choice_keys, section, name)) != NULL) {
		const struct choice *ch = ck->choices;
		while (ch->word != NULL && strcmp(ch->word, value) != 0)
			ch++;
		if (ch->word != NULL)
			*(int *)(void *)((char *)cfg + ck->offset) = ch->value;
		else
			problem = ck->problem;
	} else if ((sk = FIND_KEY(string_keys, section, name)) != NULL) {
		if (set_string(string_field(cfg, sk), value) != 0)
			problem = "out of memory";
		if (sk->line != NO_LINE)
			*(int *)(void *)((char *)cfg + sk->line) = st->line;
	} else if (strcmp(section, "storage") == 0) {
		if (strcmp(name, "expunge_retention") == 0) {
			/* the engine's, not the driver's */
			cfg->expunge_retention_set = 1;
			if (parse_duration(value, RETENTION_MAX_S, &cfg->expunge_retention_s) != 0)
				problem = RANGE("a duration in seconds, or with a unit s, m, h, d or w (7d, 12h, 0)", 0,
				                RETENTION_MAX_S);
		} else if (strcmp(name, "body_cache") == 0) {
			/* the engine's too: the bodies it keeps in memory */
			if (strcmp(value, "0") == 0)
				cfg->body_cache_bytes = 0;
			else if (ag_config_parse_limit(value, 1, BODY_CACHE_MAX, &cfg->body_cache_bytes) != 0)
				problem = RANGE("a number of bytes, or with a unit K, M or G (32M, 0: none)", 0,
				                BODY_CACHE_MAX);
		} else {
			{
				struct aerogram_config_entry *n =
					realloc(cfg->storage, (cfg->n_storage + 1) * sizeof(*n));
				if (n == NULL) {
					problem = "out of memory";
				} else {
					cfg->storage = n;
					n[cfg->n_storage].key = strdup(name);
					n[cfg->n_storage].value = strdup(value);
					cfg->n_storage++;
					if (!n[cfg->n_storage - 1].key || !n[cfg->n_storage - 1].value)
						problem = "out of memory";
				}
			}
		}
	} else if (strcmp(section, "imap") == 0) {
		if (strcmp(name, "plaintext_auth") == 0) {
			if (strcmp(value, "yes") && strcmp(value, "no") && strcmp(value, "loopback"))
				problem = "plaintext_auth must be yes, no or loopback";
			else
				problem = set_string(&cfg->plaintext_auth, value) ? "out of memory" : NULL;
		} else if (strcmp(name, "max_line") == 0) {
			if (parse_size(value, MAX_LINE_MIN, MAX_LINE_MAX, &cfg->max_line) != 0)
				problem = RANGE("a number of bytes", MAX_LINE_MIN, MAX_LINE_MAX);
		} else if (strcmp(name, "max_message") == 0) {
			if (parse_size(value, MAX_MESSAGE_MIN, MAX_MESSAGE_MAX, &cfg->max_message) != 0)
				problem = RANGE("a number of bytes", MAX_MESSAGE_MIN, MAX_MESSAGE_MAX);
		} else if (strcmp(name, "tls_ciphers") == 0) {
			if (value[0] == '\0' || strlen(value) > 1024)
				problem = "must be an OpenSSL cipher list (e.g. ECDHE+AESGCM:ECDHE+CHACHA20)";
			else if (set_string(&cfg->tls_ciphers, value) != 0)
				problem = "out of memory";
			else
				cfg->lines.tls_ciphers = st->line;
		} else if (strcmp(name, "user") == 0) {
			if (value[0] == '\0' || strlen(value) > 64)
				problem = "must name a user of this system";
			else
				problem = set_string(&cfg->user, value) ? "out of memory" : NULL;
			cfg->lines.user = st->line;
		} else
			problem = "unknown key";
	} else if (strcmp(section, "auth") == 0) {
		if (strcmp(name, "users_file") == 0) {
			if (value[0] == '\0')
				problem = "must name a file";
			else
				problem = set_string(&cfg->users_file, value) ? "out of memory" : NULL;
			cfg->lines.users_file = st->line;
		} else if (strcmp(name, "failure_delay_max") == 0) {
			if (parse_uint(value, 0, 600000, &cfg->failure_delay_max) != 0)
				problem = RANGE("a number of milliseconds", 0, 600000);
			cfg->lines.failure_delay_max = st->line;
		} else if (strcmp(name, "default_quota") == 0) {
			if (ag_config_parse_limit(value, 1, AG_QUOTA_BYTES_MAX, &cfg->default_quota) != 0)
				problem = RANGE("unlimited, or a number of bytes with an optional K, M, G or T (x1024)", 1,
				                AG_QUOTA_BYTES_MAX);
		} else if (strcmp(name, "default_quota_messages") == 0) {
			if (ag_config_parse_limit(value, 0, AG_QUOTA_MESSAGES_MAX, &cfg->default_quota_messages) != 0)
				problem = RANGE("unlimited, or a number of messages", 1, AG_QUOTA_MESSAGES_MAX);
		} else
			problem = "unknown key";
	} else if (strcmp(section, "lmtp") == 0 || strcmp(section, "metrics") == 0 || strcmp(section, "log") == 0) {
		problem = "unknown key"; /* their keys are all in the tables */
	} else if (section[0] == '\0') {
		problem = "key outside any section";
	} else {
		problem = "unknown section";
	}

	if (problem != NULL) {
		if (section[0] != '\0')
			snprintf(st->err, st->errlen, "%s:%d: [%s] %s: %s", cfg->path, st->line, section, name,
			         problem);
		else
			snprintf(st->err, st->errlen, "%s:%d: %s: %s", cfg->path, st->line, name, problem);
		st->failed = 1;
		st->fail_line = st->line;
		return 0;
	}
	return 1;
}

/* inih's reader: counts lines (for messages about a key) and refuses a line
 * inih would split or cut: longer than its buffer, or with a NUL byte. The
 * line goes to inih without its newline. */
static char *read_line(char *str, int num, void *stream)
{
	struct parse_state *st = stream;
	if (st->failed)
		return NULL;
	int c = getc(st->f);
	if (c == EOF)
		return NULL;
	st->line++;
	size_t len = 0;
	int bad = 0;
	for (; c != EOF && c != '\n'; c = getc(st->f)) {
		if (c == '\0' || len + 1 >= (size_t)num) {
			bad = 1;
			continue;
		}
		str[len++] = (char)c;
	}
	str[len] = '\0';
	if (bad) {
		snprintf(st->err, st->errlen, "%s:%d: line too long (at most %d characters) or with a NUL byte",
		         st->cfg->path, st->line, num - 1);
		st->failed = 1;
		st->fail_line = st->line;
		return NULL;
	}
	return str;
}

static unsigned sockaddr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return 0;
}

size_t ag_config_word(const char **p)
{
	*p += strspn(*p, " \t");
	return strcspn(*p, " \t");
}

int ag_config_word_copy(const char *p, size_t n, char *out, size_t outlen)
{
	if (n >= outlen)
		return -1;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

/* Checks that `list` is one or more host:port addresses separated by spaces
 * ("127.0.0.1:1143 [::1]:1143"); NULL and "" are an empty list. */
static int check_addresses(const char *list, char *bad, size_t badlen)
{
	if (list == NULL)
		return 0;
	size_t n;
	for (const char *p = list; (n = ag_config_word(&p)) > 0; p += n) {
		char addr[256];
		struct sockaddr_storage ss;
		int sslen = (int)sizeof(ss);
		if (ag_config_word_copy(p, n, addr, sizeof(addr)) != 0 ||
		    evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sslen) != 0 || sockaddr_port(&ss) == 0) {
			snprintf(bad, badlen, "%.*s", (int)(n > 200 ? 200 : n), p);
			return -1;
		}
	}
	return 0;
}

/* True when `list` holds at least one address. */
static int has_address(const char *list)
{
	return list != NULL && list[strspn(list, " \t")] != '\0';
}

/* [lmtp] listen: host:port addresses as [imap] listen, or unix:PATH with an
 * absolute PATH that fits a socket address. */
static int check_lmtp_addresses(const char *list, char *bad, size_t badlen)
{
	size_t n;
	for (const char *p = list; (n = ag_config_word(&p)) > 0; p += n) {
		int ok;
		if (n > 5 && strncmp(p, "unix:", 5) == 0) {
			/* sockaddr_un's sun_path holds 108 bytes with the NUL */
			ok = p[5] == '/' && n - 5 < 108;
		} else {
			char one[256];
			ok = ag_config_word_copy(p, n, one, sizeof(one)) == 0 && check_addresses(one, bad, badlen) == 0;
		}
		if (!ok) {
			snprintf(bad, badlen, "%.*s", (int)(n > 200 ? 200 : n), p);
			return -1;
		}
	}
	return 0;
}

/* [lmtp] domains: domain names separated by spaces, kept in lowercase;
 * NULL when the problem is in *why. */
static const char *check_domains(char *list, char *why, size_t whylen)
{
	for (char *p = list; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	size_t n, m;
	for (const char *p = list; (n = ag_config_word(&p)) > 0; p += n) {
		int ok = n <= 253 && p[0] != '.' && p[n - 1] != '.' && p[0] != '-';
		for (size_t i = 0; ok && i < n; i++) {
			char c = p[i];
			ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
			     (c == '.' && p[i + 1] != '.');
		}
		if (!ok) {
			snprintf(why, whylen, "'%.*s' is not a domain name", (int)(n > 200 ? 200 : n), p);
			return NULL;
		}
		/* the same domain twice is a typo or a merge gone wrong */
		for (const char *q = list; (m = ag_config_word(&q)) > 0 && q < p; q += m) {
			if (m == n && memcmp(q, p, n) == 0) {
				snprintf(why, whylen, "'%.*s' is listed twice", (int)(n > 200 ? 200 : n), p);
				return NULL;
			}
		}
	}
	return list;
}

int ag_config_where(const struct ag_config *cfg, int line, char *out, size_t outlen)
{
	if (line > 0)
		return snprintf(out, outlen, "%s:%d", cfg->path, line);
	return snprintf(out, outlen, "%s", cfg->path);
}

/* Cross-key checks and defaults, after every line was read. */
static int finish(struct ag_config *cfg, char *err, size_t errlen)
{
	char at[1024];
	char bad[256];
	if (cfg->listen == NULL && set_string(&cfg->listen, "127.0.0.1:1143") != 0)
		goto oom;
	if (cfg->plaintext_auth == NULL && set_string(&cfg->plaintext_auth, "loopback") != 0)
		goto oom;
	if (check_addresses(cfg->listen, bad, sizeof(bad)) != 0) {
		ag_config_where(cfg, cfg->lines.listen, at, sizeof(at));
		snprintf(err, errlen, "%s: [imap] listen: '%s' is not an address:port (e.g. 127.0.0.1:1143 or [::1]:1143)", at, bad);
		return -1;
	}
	if (check_addresses(cfg->tls_listen, bad, sizeof(bad)) != 0) {
		ag_config_where(cfg, cfg->lines.tls_listen, at, sizeof(at));
		snprintf(err, errlen, "%s: [imap] tls_listen: '%s' is not an address:port (e.g. 127.0.0.1:1993 or [::1]:1993)", at, bad);
		return -1;
	}
	if (!has_address(cfg->listen) && !has_address(cfg->tls_listen)) {
		ag_config_where(cfg, cfg->lines.listen, at, sizeof(at));
		snprintf(err, errlen, "%s: [imap] listen: empty, and no tls_listen either: no address to listen on", at);
		return -1;
	}
	if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
		ag_config_where(cfg, cfg->tls_cert ? cfg->lines.tls_cert : cfg->lines.tls_key, at, sizeof(at));
		snprintf(err, errlen, "%s: [imap] tls_cert and tls_key go together: set both or neither", at);
		return -1;
	}
	if (has_address(cfg->tls_listen) && cfg->tls_cert == NULL) {
		ag_config_where(cfg, cfg->lines.tls_listen, at, sizeof(at));
		snprintf(err, errlen, "%s: [imap] tls_listen needs tls_cert and tls_key", at);
		return -1;
	}
	if (cfg->lmtp_listen != NULL && check_lmtp_addresses(cfg->lmtp_listen, bad, sizeof(bad)) != 0) {
		ag_config_where(cfg, cfg->lines.lmtp_listen, at, sizeof(at));
		snprintf(err, errlen, "%s: [lmtp] listen: '%s' is not an address:port or unix:/absolute/path "
		         "(e.g. 127.0.0.1:2424 or unix:/run/aerogram/lmtp)", at, bad);
		return -1;
	}
	if (cfg->lmtp_listen != NULL && !has_address(cfg->lmtp_listen)) {
		/* set but empty: off, as when unset */
		free(cfg->lmtp_listen);
		cfg->lmtp_listen = NULL;
	}
	if (cfg->lmtp_domains != NULL) {
		char why[300];
		if (check_domains(cfg->lmtp_domains, why, sizeof(why)) == NULL) {
			ag_config_where(cfg, cfg->lines.lmtp_domains, at, sizeof(at));
			snprintf(err, errlen, "%s: [lmtp] domains: %s", at, why);
			return -1;
		}
	}
	if (cfg->metrics_listen == NULL && set_string(&cfg->metrics_listen, "127.0.0.1:9143") != 0)
		goto oom;
	if (check_addresses(cfg->metrics_listen, bad, sizeof(bad)) != 0 || !has_address(cfg->metrics_listen) ||
	    strpbrk(cfg->metrics_listen + strspn(cfg->metrics_listen, " \t"), " \t") != NULL) {
		ag_config_where(cfg, cfg->lines.metrics_listen, at, sizeof(at));
		snprintf(err, errlen, "%s: [metrics] listen: '%s' is not one address:port (e.g. 127.0.0.1:9143)", at,
		         cfg->metrics_listen);
		return -1;
	}
	if (cfg->failure_delay_max < cfg->failure_delay) {
		ag_config_where(cfg, cfg->lines.failure_delay_max, at, sizeof(at));
		snprintf(err, errlen, "%s: [auth] failure_delay_max is smaller than failure_delay", at);
		return -1;
	}
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
	return -1;
}

int ag_config_load(const char *path, struct ag_config *cfg, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		memset(cfg, 0, sizeof(*cfg));
		snprintf(err, errlen, "%s: cannot open the configuration file: %s", path, strerror(errno));
		return -1;
	}
	int rc = ag_config_parse(f, path, cfg, err, errlen);
	fclose(f);
	return rc;
}

int ag_config_parse(FILE *f, const char *path, struct ag_config *cfg, char *err, size_t errlen)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->path = strdup(path);
	cfg->max_line = 65536;
	cfg->max_message = 67108864;
	/* Eight: on a store that syncs each commit (sqlite, synchronous=full)
	 * more writes in flight share a commit; imaptest's stress load on two
	 * CPUs answered 5% more commands than with four (README). */
	cfg->workers = 8;
	cfg->idle_timeout = 1800;
	cfg->max_connections = 1000;
	cfg->login_timeout = 60;
	cfg->max_connections_per_ip = 100;
	cfg->max_user_connections = 50;
	cfg->failure_delay = 1000;
	cfg->failure_delay_max = 15000;
	cfg->tls_min_version = AG_TLS_1_2;
	cfg->expunge_retention_s = RETENTION_DEFAULT_S;
	cfg->body_cache_bytes = BODY_CACHE_DEFAULT;
	cfg->lmtp_max_recipients = 1000;
	cfg->lmtp_timeout = 300;
	cfg->log_level = AEROGRAM_LOG_INFO;
	if (cfg->path == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	struct parse_state st = { .cfg = cfg, .err = err, .errlen = errlen, .f = f };
	int rc = ini_parse_stream(read_line, &st, on_entry, &st);
	for (size_t i = 0; i < st.n_seen; i++)
		free(st.seen[i]);
	free(st.seen);
	if (rc != 0 || st.failed) {
		/* inih names the first bad line, which may be a syntax error
		 * before the key on_entry refused. */
		if (!st.failed || (rc > 0 && rc < st.fail_line))
			snprintf(err, errlen, "%s:%d: syntax error (expected [section], key = value or a comment)",
			         path, rc);
		ag_config_free(cfg);
		return -1;
	}
	if (cfg->driver == NULL) {
		snprintf(err, errlen, "%s: [storage] driver is not set (e.g. driver = sqlite)", path);
		ag_config_free(cfg);
		return -1;
	}
	if (finish(cfg, err, errlen) != 0) {
		ag_config_free(cfg);
		return -1;
	}
	if (cfg->driver_dir == NULL && set_string(&cfg->driver_dir, AG_DRIVER_DIR) != 0) {
		snprintf(err, errlen, "out of memory");
		ag_config_free(cfg);
		return -1;
	}
	return 0;
}

void ag_config_free(struct ag_config *cfg)
{
	free(cfg->path);
	for (size_t i = 0; i < sizeof(string_keys) / sizeof(string_keys[0]); i++)
		free(*string_field(cfg, &string_keys[i]));
	for (size_t i = 0; i < cfg->n_storage; i++) {
		free((char *)cfg->storage[i].key);
		free((char *)cfg->storage[i].value);
	}
	free(cfg->storage);
	free(cfg->plaintext_auth);
	free(cfg->users_file);
	free(cfg->tls_ciphers);
	free(cfg->user);
	memset(cfg, 0, sizeof(*cfg));
}
