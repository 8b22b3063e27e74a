/* cu_main.h - how every CUnit test program of the tree starts and ends.
 *
 *   int main(int argc, char **argv)
 *   {
 *       agt_init(&argc, &argv);   // the registry, and the common options
 *       agt_suite("fetch cache", NULL, NULL, tests, NULL);
 *       return agt_run();         // 0 only when every test passed
 *   }
 *
 * where tests is a table, one test a row, ended by AGT_END:
 *
 *   static const struct agt_test tests[] = {
 *       { "miss, then hit", test_miss_then_hit },
 *       ...
 *       AGT_END,
 *   };
 *
 * Common options, taken out of argv before the program reads its own:
 *   -t TEXT  run only the tests whose name or "suite: test" contains TEXT
 *            (repeatable; any match runs the test)
 *   -l       list the tests ("suite: test", one a line) and run none
 *   -q       print failures and the summary only
 * `make check-engine` runs build/tests/engine/test_engine; to run one test:
 * build/tests/engine/test_engine -t "poller wakes". tests/README.md lists the
 * programs. */
#ifndef AGT_CU_MAIN_H
#define AGT_CU_MAIN_H

#include <CUnit/CUnit.h>

/* One test of a suite's table. */
struct agt_test {
	const char *name;
	CU_TestFunc fn;
};
#define AGT_END { NULL, NULL }

/* Initialises CUnit's registry and takes the common options out of
 * argc and argv. Exits with status 2 on a bad option or a failed init. */
void agt_init(int *argc, char ***argv);

/* Adds a suite with the tests of the table, in its order, but for those
 * whose function is in except (NULL-terminated; NULL for none): one table
 * can serve two suites that share most tests. Exits with status 2 when
 * CUnit cannot add them. */
CU_pSuite agt_suite(const char *name, CU_InitializeFunc init, CU_CleanupFunc clean,
                    const struct agt_test *tests, const CU_TestFunc *except);

/* The one argument of the program's own (argv after agt_init): argv[1];
 * with none or more, prints "usage: PROGRAM WHAT" and exits with status 2. */
const char *agt_arg(int argc, char **argv, const char *what);

/* Runs the registered tests as the options said and frees the registry.
 * Returns the program's exit status: 0 when every test ran and passed
 * (no failed assertion, no failed suite set-up or test), 1 otherwise, and
 * 2 when -t matched no test. */
int agt_run(void);

#endif
