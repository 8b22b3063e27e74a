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
		} else
			problem = "unknown key";
	} else if (strcmp(section, "auth") == 0) {
		if (strcmp(name, "users_file") == 0)
			problem = set_string(&cfg->users_file, value) ? "out of memory" : NULL;
		else
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

int ag_config_load(const char *path, struct ag_config *cfg, char *err, size_t errlen)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->path = strdup(path);
	cfg->max_line = 65536;
	cfg->max_message = 67108864;
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
