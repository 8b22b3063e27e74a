/* aerogramd.c - the daemon's entry point: options, configuration, driver. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "host/config_file.h"
#include "sdk/loader/ag_loader.h"
#include "host/lmtp.h"
#include "host/log.h"
#include "host/metrics.h"
#include "host/privileges.h"
#include "host/server.h"

/* A driver others may write to runs their code in the daemon. */
static void warn_if_writable(const char *path)
{
	struct stat sb;
	if (path != NULL && stat(path, &sb) == 0 && (sb.st_mode & S_IWOTH))
		ag_log_warn("%s: the storage driver is writable by other users (mode %04o): chmod o-w %s", path,
		            (unsigned)(sb.st_mode & 07777), path);
}

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: aerogramd [-c FILE] [-t] [-s]\n"
	        "  -c FILE  configuration file (default %s)\n"
	        "  -t       check the configuration, the storage driver, the users file and the TLS\n"
	        "           certificate as start-up does, then exit\n"
	        "  -s       log to syslog instead of stderr\n"
	        "  -V       print the version and exit\n",
	        AG_DEFAULT_CONFIG);
}

int main(int argc, char **argv)
{
	const char *config_path = AG_DEFAULT_CONFIG;
	int test_only = 0;
	int use_syslog = 0;
	int opt;
	while ((opt = getopt(argc, argv, "c:tshV")) != -1) {
		switch (opt) {
		case 'c': config_path = optarg; break;
		case 't': test_only = 1; break;
		case 's': use_syslog = 1; break;
		case 'V': printf("aerogramd %s (driver ABI %d.%d)\n", AEROGRAM_VERSION, AEROGRAM_ABI_MAJOR, AEROGRAM_ABI_MINOR); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	if (use_syslog && !test_only)
		ag_log_use_syslog();
	ag_driver_set_log(ag_log_driver_line);

	char err[1024];
	struct ag_config cfg;
	if (ag_config_load(config_path, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "aerogramd: %s\n", err);
		return 1;
	}
	ag_log_set_level(cfg.log_level);
	/* Before the driver opens the store: its files are the user's. */
	if (ag_privileges_drop(&cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "aerogramd: %s\n", err);
		ag_config_free(&cfg);
		return 1;
	}
	if (test_only)
		ag_privileges_bound(); /* nothing to bind */
	if (cfg.metrics_enabled && !test_only)
		ag_metrics_enable();
	/* Sockets before the driver: it may start threads, which would
	 * inherit the capability kept for binding. */
	struct ag_server srv;
	if (!test_only && ag_server_bind(&srv, &cfg, err, sizeof(err)) != 0) {
		ag_log_error("%s", err);
		ag_server_free(&srv);
		ag_config_free(&cfg);
		return 1;
	}
	struct ag_driver *drv;
	if (ag_driver_load(cfg.driver, cfg.driver_dir, cfg.storage, cfg.n_storage, &drv, err,
	                   sizeof(err)) != 0) {
		fprintf(stderr, "aerogramd: %s\n", err);
		if (!test_only)
			ag_server_free(&srv);
		ag_config_free(&cfg);
		return 1;
	}
	const struct aerogram_driver *d = ag_driver_store(drv)->driver;
	warn_if_writable(ag_driver_path(drv));
	if (test_only) {
		/* What start-up reads next, as start-up reads it; only the
		 * listening sockets are not opened (their addresses were
		 * checked with the configuration). */
		struct ag_users *users;
		SSL_CTX *tls;
		ag_lmtp_check(&cfg);
		if (ag_server_load_files(&cfg, &users, &tls, err, sizeof(err)) != 0) {
			fprintf(stderr, "aerogramd: %s\n", err);
			ag_driver_unload(drv);
			ag_config_free(&cfg);
			return 1;
		}
		printf("aerogramd: %s is valid; storage driver %s %s (ABI %u.%u) from %s; %zu users in %s%s\n",
		       config_path, d->name, d->version ? d->version : "", (unsigned)d->abi_major,
		       (unsigned)d->abi_minor, ag_driver_path(drv), ag_users_count(users), cfg.users_file,
		       tls != NULL ? "; TLS certificate and key match" : "");
		ag_users_unref(users);
		if (tls != NULL)
			SSL_CTX_free(tls);
		ag_driver_unload(drv);
		ag_config_free(&cfg);
		return 0;
	}
	int rc = 0;
	if (ag_server_init(&srv, &cfg, drv, err, sizeof(err)) != 0) {
		ag_log_error("%s", err);
		rc = 1;
	} else if (ag_server_run(&srv) != 0) {
		rc = 1;
	}
	ag_server_free(&srv);
	ag_driver_unload(drv);
	ag_config_free(&cfg);
	return rc;
}
