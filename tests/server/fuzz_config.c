/* fuzz_config.c - libFuzzer target for the configuration file and the users
 * file readers (host/config_file.c, host/users.c).
 *
 * Every input is read both as a configuration and as a users file, from
 * memory. Checked for every input:
 *  - no crash, no leak, no undefined behaviour (the sanitizers);
 *  - a refusal is one non-empty line that starts with the file's name;
 *  - an accepted configuration has every numeric key within its bounds and
 *    at least one address to listen on. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/config_file.h"
#include "host/users.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_refusal(const char *what, const char *err, const char *path)
{
	if (err[0] == '\0' || strchr(err, '\n') != NULL ||
	    (strncmp(err, path, strlen(path)) != 0 && strcmp(err, "out of memory") != 0)) {
		fprintf(stderr, "%s: bad refusal: '%s'\n", what, err);
		abort();
	}
}

#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "accepted configuration: %s\n", #cond); \
			abort();                                             \
		}                                                            \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > 65536)
		return 0;
	char err[1024];

	FILE *f = fmemopen((void *)data, size, "r");
	if (f == NULL)
		return 0;
	struct ag_config cfg;
	err[0] = '\0';
	if (ag_config_parse(f, "fuzz.conf", &cfg, err, sizeof(err)) != 0) {
		check_refusal("configuration", err, "fuzz.conf");
	} else {
		CHECK(cfg.driver != NULL && cfg.driver_dir != NULL && cfg.listen != NULL);
		CHECK(cfg.max_line >= 1024 && cfg.max_line <= 16u * 1024 * 1024);
		CHECK(cfg.max_message >= 1024 && cfg.max_message <= 1024u * 1024 * 1024);
		CHECK(cfg.workers >= 1 && cfg.workers <= 256);
		CHECK(cfg.loops <= 64);
		CHECK(cfg.max_connections >= 1 && cfg.max_connections <= 1000000);
		CHECK(cfg.idle_timeout >= 1 && cfg.idle_timeout <= 86400);
		CHECK(cfg.failure_delay <= cfg.failure_delay_max && cfg.failure_delay_max <= 600000);
		CHECK(cfg.tls_min_version == AG_TLS_1_2 || cfg.tls_min_version == AG_TLS_1_3);
		CHECK((cfg.tls_cert == NULL) == (cfg.tls_key == NULL));
		CHECK(cfg.listen[strspn(cfg.listen, " \t")] != '\0' ||
		      (cfg.tls_listen != NULL && cfg.tls_listen[strspn(cfg.tls_listen, " \t")] != '\0'));
		ag_config_free(&cfg);
	}
	fclose(f);

	f = fmemopen((void *)data, size, "r");
	if (f == NULL)
		return 0;
	struct ag_users *users;
	err[0] = '\0';
	if (ag_users_parse(f, "fuzz.ini", &users, err, sizeof(err)) != 0)
		check_refusal("users file", err, "fuzz.ini");
	else
		ag_users_unref(users);
	fclose(f);
	return 0;
}
