/* cu_main.h - how every CUnit test program of the tree starts and ends.
 *
 *   int main(int argc, char **argv)
 *   {
 *       agt_init(&argc, &argv);   // the registry, and the common options
 *       CU_pSuite s = CU_add_suite(...); CU_add_test(s, ...); ...
 *       return agt_run();         // 0 only when every test passed
 *   }
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

/* Initialises CUnit's registry and takes the common options out of
 * argc and argv. Exits with status 2 on a bad option or a failed init. */
void agt_init(int *argc, char ***argv);

/* Runs the registered tests as the options said and frees the registry.
 * Returns the program's exit status: 0 when every test ran and passed
 * (no failed assertion, no failed suite set-up or test), 1 otherwise, and
 * 2 when -t matched no test. */
int agt_run(void);

#endif
