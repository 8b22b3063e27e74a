/* aerogramd.c - the daemon's entry point: options, configuration, driver. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "host/config_file.h"
#include "host/driver_loader.h"
#include "host/log.h"
#include "host/server.h"

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: aerogramd [-c FILE] [-t] [-s]\n"
	        "  -c FILE  configuration file (default %s)\n"
	        "  -t       check the configuration and the storage driver it names, then exit\n"
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
	struct ag_driver *drv;
	if (ag_driver_load(cfg.driver, cfg.driver_dir, cfg.storage, cfg.n_storage, &drv, err,
	                   sizeof(err)) != 0) {
		fprintf(stderr, "aerogramd: %s\n", err);
		ag_config_free(&cfg);
		return 1;
	}
	const struct aerogram_driver *d = ag_driver_store(drv)->driver;
	if (test_only) {
		printf("aerogramd: %s is valid; storage driver %s %s (ABI %u.%u) from %s\n", config_path,
		       d->name, d->version ? d->version : "", (unsigned)d->abi_major,
		       (unsigned)d->abi_minor, ag_driver_path(drv));
		ag_driver_unload(drv);
		ag_config_free(&cfg);
		return 0;
	}
	struct ag_server srv;
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
