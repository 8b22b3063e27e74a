/* config_file.c - aerogramd's configuration file, read with inih.
 *
 * Sections and keys are checked strictly, as Dovecot does: a misspelt key is
 * an error at start-up, not a setting silently ignored. The exception is
 * [storage], whose keys other than `driver` and `driver_dir` belong to the
 * driver: they are collected here and the driver loader refuses the ones the
 * driver does not declare.
 */
#include "host/config_file.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/util.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "config.h"

struct parse_state {
	struct ag_config *cfg;
	char *err;
	size_t errlen;
	int failed;
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

static int parse_size(const char *value, size_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' || value[0] == '-')
		return -1;
	*out = (size_t)v;
	return 0;
}

/* inih calls this for each name = value; returning 0 stops with an error. */
static int on_entry(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state *st = user;
	struct ag_config *cfg = st->cfg;
	const char *problem = NULL;

	if (strcmp(section, "storage") == 0) {
		if (strcmp(name, "driver") == 0) {
			if (set_string(&cfg->driver, value) != 0)
				problem = "out of memory";
		} else if (strcmp(name, "driver_dir") == 0) {
			if (set_string(&cfg->driver_dir, value) != 0)
				problem = "out of memory";
		} else {
			for (size_t i = 0; i < cfg->n_storage; i++) {
				if (strcmp(cfg->storage[i].key, name) == 0) {
					problem = "key set twice";
					break;
				}
			}
			if (problem == NULL) {
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
		if (strcmp(name, "listen") == 0)
			problem = set_string(&cfg->listen, value) ? "out of memory" : NULL;
		else if (strcmp(name, "tls_listen") == 0)
			problem = set_string(&cfg->tls_listen, value) ? "out of memory" : NULL;
		else if (strcmp(name, "tls_cert") == 0)
			problem = set_string(&cfg->tls_cert, value) ? "out of memory" : NULL;
		else if (strcmp(name, "tls_key") == 0)
			problem = set_string(&cfg->tls_key, value) ? "out of memory" : NULL;
		else if (strcmp(name, "plaintext_auth") == 0) {
			if (strcmp(value, "yes") && strcmp(value, "no") && strcmp(value, "loopback"))
				problem = "plaintext_auth must be yes, no or loopback";
			else
				problem = set_string(&cfg->plaintext_auth, value) ? "out of memory" : NULL;
		} else if (strcmp(name, "max_line") == 0) {
			if (parse_size(value, &cfg->max_line) != 0 || cfg->max_line < 1024)
				problem = "max_line must be a number of bytes, at least 1024";
		} else if (strcmp(name, "max_message") == 0) {
			if (parse_size(value, &cfg->max_message) != 0 || cfg->max_message < 1024)
				problem = "max_message must be a number of bytes, at least 1024";
		} else if (strcmp(name, "workers") == 0) {
			if (parse_uint(value, 1, 256, &cfg->workers) != 0)
				problem = "workers must be a number from 1 to 256";
		} else if (strcmp(name, "loops") == 0) {
			if (parse_uint(value, 0, 64, &cfg->loops) != 0)
				problem = "loops must be a number from 0 (one per CPU but one) to 64";
		} else if (strcmp(name, "max_connections") == 0) {
			if (parse_uint(value, 1, 1000000, &cfg->max_connections) != 0)
				problem = "max_connections must be a number from 1 to 1000000";
		} else if (strcmp(name, "idle_timeout") == 0) {
			if (parse_uint(value, 1, 86400, &cfg->idle_timeout) != 0)
				problem = "idle_timeout must be a number of seconds from 1 to 86400";
		} else if (strcmp(name, "login_timeout") == 0) {
			if (parse_uint(value, 1, 3600, &cfg->login_timeout) != 0)
				problem = "login_timeout must be a number of seconds from 1 to 3600";
		} else if (strcmp(name, "max_connections_per_ip") == 0) {
			if (parse_uint(value, 1, 1000000, &cfg->max_connections_per_ip) != 0)
				problem = "max_connections_per_ip must be a number from 1 to 1000000";
		} else if (strcmp(name, "max_user_connections") == 0) {
			if (parse_uint(value, 1, 1000000, &cfg->max_user_connections) != 0)
				problem = "max_user_connections must be a number from 1 to 1000000";
		} else
			problem = "unknown key";
	} else if (strcmp(section, "auth") == 0) {
		if (strcmp(name, "users_file") == 0)
			problem = set_string(&cfg->users_file, value) ? "out of memory" : NULL;
		else if (strcmp(name, "failure_delay") == 0) {
			if (parse_uint(value, 0, 600000, &cfg->failure_delay) != 0)
				problem = "failure_delay must be a number of milliseconds up to 600000";
		} else if (strcmp(name, "failure_delay_max") == 0) {
			if (parse_uint(value, 0, 600000, &cfg->failure_delay_max) != 0)
				problem = "failure_delay_max must be a number of milliseconds up to 600000";
		} else
			problem = "unknown key";
	} else if (section[0] == '\0') {
		problem = "key outside any section";
	} else {
		problem = "unknown section";
	}

	if (problem != NULL) {
		/* The line number is added by ag_config_load: inih returns it. */
		snprintf(st->err, st->errlen, "%s%s%s%s '%s'", problem, section[0] ? " [" : "",
		         section, section[0] ? "]" : "", name);
		st->failed = 1;
		return 0;
	}
	return 1;
}

static unsigned sockaddr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return 0;
}

/* Checks that `list` is one or more host:port addresses separated by spaces
 * ("127.0.0.1:1143 [::1]:1143"); NULL and "" are an empty list. */
static int check_addresses(const char *list, char *bad, size_t badlen)
{
	if (list == NULL)
		return 0;
	const char *p = list;
	while (*p != '\0') {
		while (*p == ' ' || *p == '\t')
			p++;
		size_t n = strcspn(p, " \t");
		if (n == 0)
			break;
		char addr[256];
		struct sockaddr_storage ss;
		int sslen = (int)sizeof(ss);
		if (n >= sizeof(addr) || (memcpy(addr, p, n), addr[n] = '\0',
		                          evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sslen) != 0)
		    || sockaddr_port(&ss) == 0) {
			snprintf(bad, badlen, "%.*s", (int)(n > 200 ? 200 : n), p);
			return -1;
		}
		p += n;
	}
	return 0;
}

/* Cross-key checks and defaults, after every line was read. */
static int finish(struct ag_config *cfg, char *err, size_t errlen)
{
	const char *path = cfg->path;
	char bad[256];
	if (cfg->listen == NULL && set_string(&cfg->listen, "127.0.0.1:1143") != 0)
		goto oom;
	if (cfg->plaintext_auth == NULL && set_string(&cfg->plaintext_auth, "loopback") != 0)
		goto oom;
	if (check_addresses(cfg->listen, bad, sizeof(bad)) != 0) {
		snprintf(err, errlen, "%s: [imap] listen: '%s' is not an address:port (e.g. 127.0.0.1:1143 or [::1]:1143)", path, bad);
		return -1;
	}
	if (check_addresses(cfg->tls_listen, bad, sizeof(bad)) != 0) {
		snprintf(err, errlen, "%s: [imap] tls_listen: '%s' is not an address:port (e.g. 127.0.0.1:1993 or [::1]:1993)", path, bad);
		return -1;
	}
	if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
		snprintf(err, errlen, "%s: [imap] tls_cert and tls_key go together: set both or neither", path);
		return -1;
	}
	if (cfg->tls_listen != NULL && cfg->tls_listen[strspn(cfg->tls_listen, " \t")] != '\0' && cfg->tls_cert == NULL) {
		snprintf(err, errlen, "%s: [imap] tls_listen needs tls_cert and tls_key", path);
		return -1;
	}
	if (cfg->failure_delay_max < cfg->failure_delay) {
		snprintf(err, errlen, "%s: [auth] failure_delay_max is smaller than failure_delay", path);
		return -1;
	}
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
	return -1;
}

int ag_config_load(const char *path, struct ag_config *cfg, char *err, size_t errlen)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->path = strdup(path);
	cfg->max_line = 65536;
	cfg->max_message = 67108864;
	cfg->workers = 4;
	cfg->idle_timeout = 1800;
	cfg->max_connections = 1000;
	cfg->login_timeout = 60;
	cfg->max_connections_per_ip = 100;
	cfg->max_user_connections = 50;
	cfg->failure_delay = 1000;
	cfg->failure_delay_max = 15000;
	if (cfg->path == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		snprintf(err, errlen, "%s: cannot open the configuration file: %s", path, strerror(errno));
		ag_config_free(cfg);
		return -1;
	}
	struct parse_state st = { cfg, err, errlen, 0 };
	int rc = ini_parse_file(f, on_entry, &st);
	fclose(f);
	if (rc != 0) {
		if (st.failed) {
			char detail[512];
			snprintf(detail, sizeof(detail), "%s", err);
			snprintf(err, errlen, "%s:%d: %s", path, rc, detail);
		} else {
			snprintf(err, errlen, "%s:%d: syntax error", path, rc);
		}
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
	free(cfg->driver);
	free(cfg->driver_dir);
	for (size_t i = 0; i < cfg->n_storage; i++) {
		free((char *)cfg->storage[i].key);
		free((char *)cfg->storage[i].value);
	}
	free(cfg->storage);
	free(cfg->listen);
	free(cfg->tls_listen);
	free(cfg->tls_cert);
	free(cfg->tls_key);
	free(cfg->plaintext_auth);
	free(cfg->users_file);
	memset(cfg, 0, sizeof(*cfg));
}
