/* check_util.h - shared state and helpers of the driver conformance suite. */
#ifndef CK_UTIL_H
#define CK_UTIL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <CUnit/CUnit.h>
#include <aerogram/driver.h>

/* The driver and store under test (set by check_main.c). */
extern const struct aerogram_driver *ck_driver;
extern struct aerogram_store *ck_store;

/* The name of a status code, e.g. "AEROGRAM_EINVAL". */
const char *ck_status_name(int rc);

/* Fails the running test (fatally) with a formatted message. */
void ck_fail_at(int fatal, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
#define CK_FAIL(...) ck_fail_at(1, __FILE__, __LINE__, __VA_ARGS__)
/* Records a passed assertion. */
void ck_pass(const char *what, const char *file, int line);
/* Asserts cond; on failure records the formatted message, and ends the
 * test when `fatal`. */
#define CK_ASSERT_(fatal, cond, ...)                                     \
	do {                                                             \
		if (cond)                                                \
			ck_pass(#cond, __FILE__, __LINE__);                    \
		else                                                     \
			ck_fail_at((fatal), __FILE__, __LINE__, __VA_ARGS__); \
	} while (0)
/* Asserts cond; on failure records the formatted message (not fatal). */
#define CK_CHECK(cond, ...) CK_ASSERT_(0, cond, __VA_ARGS__)
/* Asserts cond; on failure ends the test with the formatted message. */
#define CK_REQUIRE(cond, ...) CK_ASSERT_(1, cond, __VA_ARGS__)

/* Checks that a driver call succeeded; ends the test otherwise, saying
 * "not supported" when the driver answered AEROGRAM_ENOTSUP. */
void ck_ok_at(int rc, const char *op, const char *file, int line);
#define CK_OK(op, expr) ck_ok_at((expr), (op), __FILE__, __LINE__)
/* Checks that a driver call returned exactly `want` (ENOTSUP ends the test). */
void ck_expect_at(int rc, int want, const char *op, const char *file, int line);
#define CK_EXPECT(op, expr, want) ck_expect_at((expr), (want), (op), __FILE__, __LINE__)

/* ---- per-test keys and cleanup ---------------------------------------- */

/* A partition key unique to this run and test ("<run>/tNNN/<name>"),
 * remembered so that the test's rows are deleted afterwards. The string
 * lives until the end of the test. */
const char *ck_pk(const char *name);
/* A blob key unique to this run and test; blobs under the test's prefix are
 * deleted afterwards. */
const char *ck_blob_key(const char *name);
/* The blob prefix of the running test ("<run>/tNNN/"). */
const char *ck_blob_prefix(void);
/* printf into memory freed at the end of the test. */
char *ck_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Zeroed memory freed at the end of the test. */
void *ck_alloc(size_t size);
/* Registers a cleanup run at the end of the test (last registered, first run). */
void ck_defer(void (*fn)(void *), void *arg);
/* Per-test setup and teardown (CUnit hooks). */
void ck_test_setup(void);
void ck_test_teardown(void);
/* Sets the run's unique prefix. */
void ck_init_run_prefix(void);
const char *ck_run_prefix(void);

/* ---- row helpers (all end the test on failure) ------------------------- */

/* Writes one value (or a tombstone when value is NULL) with an optional token. */
void ck_write(const char *pk, const char *sk, const char *value, const char *token);
/* Writes in batches of at most 500. */
void ck_write_batch(const struct aerogram_row_write *writes, size_t n);
/* Runs queries; the result is freed at the end of the test. */
struct aerogram_row_result *ck_read(const struct aerogram_row_query *q, size_t n);
/* Reads one row (single-item query with the given flags); NULL when the page is empty. */
const struct aerogram_row *ck_get(const char *pk, const char *sk, uint32_t flags);
/* As ck_get for a row that must be there: ends the test with `missing` when not. */
const struct aerogram_row *ck_row(const char *pk, const char *sk, uint32_t flags,
                                  const char *missing);
/* Number of values of a row equal to the text. */
size_t ck_count_value(const struct aerogram_row *row, const char *text);
size_t ck_count_tombstones(const struct aerogram_row *row);
/* A copy of a token (freed at the end of the test). */
char *ck_token(const struct aerogram_row *row);
/* ck_write, then the token the row has after it (as ck_token). */
char *ck_put(const char *pk, const char *sk, const char *value, const char *token);

/* How long a test waits for a watch: long enough that a loaded machine
 * never trips it; a correct driver answers long before. */
#define CK_WAIT_MS 30000

/* What a watch callback saw, copied out of the driver's memory (ck_on_watch
 * records into it). */
struct ck_watch_rec {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int calls;
	int status;
	int from_caller_thread;
	pthread_t caller;
	int has_row;
	char token[256];
	size_t n_values;
	char first_value[64];
	struct aerogram_watch *watch;
	/* a watch started from the callback */
	int start_from_cb;
	const char *cb_pk, *cb_sk;
	struct ck_watch_rec *child;
	int child_rc;
};
/* A record released (its watch included) at the end of the test. */
struct ck_watch_rec *ck_watch_rec_new(void);
/* The watch callback that fills a record (arg: the record). */
void ck_on_watch(void *arg, int status, const struct aerogram_row *row, const char *message);
/* Waits up to ms until the record was called back; returns its call count. */
int ck_watch_wait(struct ck_watch_rec *r, unsigned ms);
/* Its call count now. */
int ck_watch_calls(struct ck_watch_rec *r);

/* Runs fn on n threads at once, the i-th given args + i * size, and waits
 * for them all; ends the test when one cannot start ("<what> threads"). */
void ck_run_threads(int n, void *(*fn)(void *), void *args, size_t size, const char *what);
/* The number of threads of this process (from /proc/self/task). */
int ck_thread_count(void);
/* Monotonic milliseconds. */
uint64_t ck_now_ms(void);
void ck_sleep_ms(unsigned ms);

/* One test of a suite: its name in the report and its function. */
struct ck_test {
	const char *name;
	CU_TestFunc fn;
};
/* Adds a suite of n tests, each run between ck_test_setup and
 * ck_test_teardown; -1 when CUnit refuses it. */
int ck_add_suite(const char *name, const struct ck_test *tests, size_t n);
/* Leaves the test of that exact name out of every suite (--skip); -1 when
 * too many are given. ck_add_suite prints each test it leaves out. */
int ck_skip_test(const char *name);

/* Registration of the suites. */
int ck_register_rows(void);
int ck_register_conditional(void);
int ck_register_watches(void);
int ck_register_blobs(void);

#endif
