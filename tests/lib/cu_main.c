/* cu_main.c - the one main of the CUnit test programs (see cu_main.h). */
#include "tests/lib/cu_main.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILTERS 16

static const char *filters[MAX_FILTERS];
static int n_filters, list_only, quiet;

static void usage_exit(const char *prog, const char *why)
{
	fprintf(stderr, "%s: %s\n(common options: -t TEXT run the tests whose name contains TEXT; "
	                "-l list the tests; -q failures only)\n", prog, why);
	exit(2);
}

void agt_init(int *argc, char ***argv)
{
	char **av = *argv;
	int out = 1;
	for (int i = 1; i < *argc; i++) {
		if (strcmp(av[i], "-t") == 0) {
			if (i + 1 >= *argc)
				usage_exit(av[0], "-t needs a text");
			if (n_filters == MAX_FILTERS)
				usage_exit(av[0], "too many -t options");
			filters[n_filters++] = av[++i];
		} else if (strcmp(av[i], "-l") == 0) {
			list_only = 1;
		} else if (strcmp(av[i], "-q") == 0) {
			quiet = 1;
		} else {
			av[out++] = av[i]; /* the program's own */
		}
	}
	av[out] = NULL;
	*argc = out;
	if (CU_initialize_registry() != CUE_SUCCESS) {
		fprintf(stderr, "%s: cannot initialise CUnit: %s\n", av[0], CU_get_error_msg());
		exit(2);
	}
}

const char *agt_arg(int argc, char **argv, const char *what)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s %s\n", argv[0], what);
		exit(2);
	}
	return argv[1];
}

static int excepted(CU_TestFunc fn, const CU_TestFunc *except)
{
	for (; except != NULL && *except != NULL; except++)
		if (*except == fn)
			return 1;
	return 0;
}

CU_pSuite agt_suite(const char *name, CU_InitializeFunc init, CU_CleanupFunc clean,
                    const struct agt_test *tests, const CU_TestFunc *except)
{
	CU_pSuite s = CU_add_suite(name, init, clean);
	if (s == NULL) {
		fprintf(stderr, "cannot add the suite %s: %s\n", name, CU_get_error_msg());
		exit(2);
	}
	for (const struct agt_test *t = tests; t->name != NULL; t++) {
		if (excepted(t->fn, except))
			continue;
		if (CU_add_test(s, t->name, t->fn) == NULL) {
			fprintf(stderr, "cannot add the test %s: %s\n", t->name, CU_get_error_msg());
			exit(2);
		}
	}
	return s;
}

static int selected(const char *suite, const char *test)
{
	if (n_filters == 0)
		return 1;
	char full[512];
	snprintf(full, sizeof(full), "%s: %s", suite, test);
	for (int i = 0; i < n_filters; i++)
		if (strstr(full, filters[i]) != NULL)
			return 1;
	return 0;
}

int agt_run(void)
{
	CU_pTestRegistry reg = CU_get_registry();
	unsigned n_selected = 0;
	for (CU_pSuite s = reg ? reg->pSuite : NULL; s != NULL; s = s->pNext) {
		unsigned in_suite = 0;
		for (CU_pTest t = s->pTest; t != NULL; t = t->pNext) {
			int on = selected(s->pName, t->pName);
			if (list_only && on)
				printf("%s: %s\n", s->pName, t->pName);
			CU_set_test_active(t, on && !list_only ? CU_TRUE : CU_FALSE);
			in_suite += (unsigned)on;
		}
		/* a suite with nothing to run skips its set-up too */
		CU_set_suite_active(s, in_suite > 0 && !list_only ? CU_TRUE : CU_FALSE);
		n_selected += in_suite;
	}
	int status = 0;
	if (n_filters > 0 && n_selected == 0) {
		fprintf(stderr, "no test matches the -t option(s)\n");
		status = 2;
	} else if (!list_only) {
		CU_set_fail_on_inactive(CU_FALSE); /* what -t left out is not a failure */
		CU_basic_set_mode(quiet ? CU_BRM_SILENT : CU_BRM_VERBOSE);
		CU_basic_run_tests();
		if (quiet)
			CU_basic_show_failures(CU_get_failure_list());
		/* failed assertions, and tests or suite set-ups that failed without one */
		unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed() +
		                  CU_get_number_of_suites_failed();
		status = failed ? 1 : 0;
	}
	CU_cleanup_registry();
	return status;
}
