/* check_main.c - aerogram-driver-check: load a driver and run the
 * conformance suite against it.
 *
 *   aerogram-driver-check [--rows-only|--blobs-only] [--wrap=fault,count]
 *                         PATH/TO/driver.so [key=value ...]
 *
 * --wrap stacks the in-process test wrappers (sdk/wrappers) over the driver,
 * innermost first, with no fault rules: the suite then proves that they
 * forward every call faithfully.
 *
 * Prints CUnit's report, then one "FAILURE: <suite> / <test>: <message>" line
 * per failed assertion, and exits 0 only when every test passed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "sdk/loader/ag_loader.h"
#include "sdk/conformance/check_util.h"
#include "sdk/wrappers/ag_wrap.h"

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: aerogram-driver-check [--rows-only|--blobs-only] [--wrap=fault,count]\n"
	        "                             [--skip=TEST NAME]... PATH/TO/driver.so [key=value ...]\n"
	        "  Runs the Aerogram driver conformance suite against a driver. Each key=value\n"
	        "  is passed to the driver as a configuration entry. Every key and blob the\n"
	        "  suite writes starts with a random prefix and is deleted afterwards.\n"
	        "  --wrap stacks the test wrappers over the driver (innermost first).\n"
	        "  --skip leaves out the test of that exact name and says so (for a test\n"
	        "  server that cannot do what the test needs, never for a driver).\n");
}

static void print_failures(void)
{
	for (CU_pFailureRecord f = CU_get_failure_list(); f != NULL; f = f->pNext) {
		printf("FAILURE: %s / %s: %s (%s:%u)\n", f->pSuite ? f->pSuite->pName : "?",
		       f->pTest ? f->pTest->pName : "?", f->strCondition ? f->strCondition : "",
		       f->strFileName ? f->strFileName : "?", f->uiLineNumber);
	}
}

int main(int argc, char **argv)
{
	int rows = 1, blobs = 1;
	const char *wrap = NULL;
	int i = 1;
	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--rows-only") == 0) {
			blobs = 0;
		} else if (strcmp(argv[i], "--blobs-only") == 0) {
			rows = 0;
		} else if (strncmp(argv[i], "--wrap=", 7) == 0) {
			wrap = argv[i] + 7;
		} else if (strncmp(argv[i], "--skip=", 7) == 0) {
			if (ck_skip_test(argv[i] + 7) != 0) {
				fprintf(stderr, "aerogram-driver-check: too many --skip options\n");
				return 2;
			}
		} else if (strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "aerogram-driver-check: unknown option %s\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc || (!rows && !blobs)) {
		usage(stderr);
		return 2;
	}
	const char *path = argv[i++];
	size_t n_config = (size_t)(argc - i);
	struct aerogram_config_entry *config = calloc(n_config + 1, sizeof(*config));
	char **copies = calloc(n_config + 1, sizeof(*copies));
	if (config == NULL || copies == NULL)
		return 2;
	for (size_t k = 0; k < n_config; k++) {
		copies[k] = strdup(argv[i + (int)k]);
		char *eq = copies[k] ? strchr(copies[k], '=') : NULL;
		if (eq == NULL || eq == copies[k]) {
			fprintf(stderr, "aerogram-driver-check: '%s' is not key=value\n", argv[i + (int)k]);
			return 2;
		}
		*eq = '\0';
		config[k].key = copies[k];
		config[k].value = eq + 1;
	}

	/* A name without a slash would be looked up in a driver directory; the
	 * suite takes paths, so make "driver.so" mean the file here. */
	char *load_path = strchr(path, '/') ? strdup(path) : NULL;
	if (load_path == NULL && asprintf(&load_path, "./%s", path) < 0)
		return 2;
	char err[1024];
	struct ag_driver *drv = NULL;
	if (ag_driver_load(load_path, NULL, config, n_config, &drv, err, sizeof(err)) != 0) {
		fprintf(stderr, "aerogram-driver-check: %s\n", err);
		return 2;
	}
	struct ag_store *st = ag_driver_store(drv);
	ck_driver = st->driver;
	ck_store = st->store;
	struct agw_wrapper *wrappers[8];
	size_t n_wrappers = 0;
	int status = 2;
	char wrap_names[128] = "";
	if (wrap != NULL) {
		char list[128];
		snprintf(list, sizeof(list), "%s", wrap);
		char *save = NULL;
		for (char *w = strtok_r(list, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
			struct agw_wrapper *x = NULL;
			if (n_wrappers < 8 && strcmp(w, "fault") == 0)
				x = agw_fault_new(ck_driver, ck_store);
			else if (n_wrappers < 8 && strcmp(w, "count") == 0)
				x = agw_count_new(ck_driver, ck_store);
			if (x == NULL) {
				fprintf(stderr, "aerogram-driver-check: --wrap: '%s' is not fault or count\n", w);
				goto out;
			}
			wrappers[n_wrappers++] = x;
			ck_driver = agw_driver(x);
			ck_store = agw_store(x);
			/* shown outermost first */
			char prev[sizeof(wrap_names)];
			memcpy(prev, wrap_names, sizeof(prev));
			size_t wl = strlen(w);
			if (wl + 6 + strlen(prev) < sizeof(wrap_names)) {
				memcpy(wrap_names, w, wl);
				memcpy(wrap_names + wl, " over ", 6);
				memcpy(wrap_names + wl + 6, prev, strlen(prev) + 1);
			}
		}
	}
	ck_init_run_prefix();
	printf("aerogram-driver-check: driver %s%s %s (ABI %u.%u) from %s; key prefix %s\n",
	       wrap_names, st->driver->name, st->driver->version ? st->driver->version : "",
	       (unsigned)st->driver->abi_major, (unsigned)st->driver->abi_minor, load_path,
	       ck_run_prefix());
	if (CU_initialize_registry() != CUE_SUCCESS) {
		fprintf(stderr, "aerogram-driver-check: cannot initialise CUnit\n");
		goto out;
	}
	if ((rows && (ck_register_rows() != 0 || ck_register_conditional() != 0 ||
	              ck_register_watches() != 0)) ||
	    (blobs && ck_register_blobs() != 0)) {
		fprintf(stderr, "aerogram-driver-check: cannot register tests: %s\n", CU_get_error_msg());
		CU_cleanup_registry();
		goto out;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	uint64_t started = ck_now_ms();
	CU_basic_run_tests();
	double wall = (double)(ck_now_ms() - started) / 1000.0;
	printf("\n");
	print_failures();
	unsigned failed_tests = CU_get_number_of_tests_failed();
	unsigned failures = CU_get_number_of_failures();
	const CU_RunSummary *sum = CU_get_run_summary();
	printf("aerogram-driver-check: %u tests run, %u failed (%u failed assertions of %u) in %.2f s\n",
	       sum->nTestsRun, failed_tests, failures, sum->nAsserts, wall);
	status = failed_tests == 0 && failures == 0 && sum->nTestsRun > 0 ? 0 : 1;
	CU_cleanup_registry();
out:
	while (n_wrappers > 0)
		agw_free(wrappers[--n_wrappers]);
	ag_driver_unload(drv);
	for (size_t k = 0; k < n_config; k++)
		free(copies[k]);
	free(copies);
	free(config);
	free(load_path);
	return status;
}
