/* check_util.c - helpers of the driver conformance suite: assertions that
 * name driver errors, per-test unique keys and cleanup, row helpers. */
#include "sdk/conformance/check_util.h"

#include <dirent.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

const struct aerogram_driver *ck_driver;
struct aerogram_store *ck_store;

const char *ck_status_name(int rc)
{
	switch (rc) {
	case AEROGRAM_OK: return "AEROGRAM_OK";
	case AEROGRAM_ENOTFOUND: return "AEROGRAM_ENOTFOUND";
	case AEROGRAM_ECONFLICT: return "AEROGRAM_ECONFLICT";
	case AEROGRAM_EUNAVAILABLE: return "AEROGRAM_EUNAVAILABLE";
	case AEROGRAM_EINVAL: return "AEROGRAM_EINVAL";
	case AEROGRAM_EPERM: return "AEROGRAM_EPERM";
	case AEROGRAM_ETOOBIG: return "AEROGRAM_ETOOBIG";
	case AEROGRAM_EINTERNAL: return "AEROGRAM_EINTERNAL";
	case AEROGRAM_ENOTSUP: return "AEROGRAM_ENOTSUP";
	case AEROGRAM_ETIMEDOUT: return "AEROGRAM_ETIMEDOUT";
	default: return "(unknown status)";
	}
}

void ck_fail_at(int fatal, const char *file, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	CU_assertImplementation(CU_FALSE, (unsigned)line, msg, file, "", fatal ? CU_TRUE : CU_FALSE);
}

void ck_pass(const char *what, const char *file, int line)
{
	CU_assertImplementation(CU_TRUE, (unsigned)line, what, file, "", CU_FALSE);
}

static const char *driver_message(void)
{
	const char *m = ck_driver->error_message ? ck_driver->error_message(ck_store) : NULL;
	return m && m[0] ? m : "(no message)";
}

/* A pass when a call returned `want`. Otherwise ENOTSUP ends the test as
 * "not supported"; a call that had to succeed (`must_succeed`) ends it with
 * the driver's message, another mismatch is recorded and the test goes on. */
static void check_status(int rc, int want, int must_succeed, const char *op, const char *file,
                         int line)
{
	if (rc == want)
		ck_pass(op, file, line);
	else if (rc == AEROGRAM_ENOTSUP)
		ck_fail_at(1, file, line, "%s: not supported by the driver (%s)", op, driver_message());
	else if (must_succeed)
		ck_fail_at(1, file, line, "%s failed with %s: %s", op, ck_status_name(rc),
		           driver_message());
	else
		ck_fail_at(0, file, line, "%s returned %s, expected %s%s%s", op, ck_status_name(rc),
		           ck_status_name(want), rc != 0 ? ": " : "", rc != 0 ? driver_message() : "");
}

void ck_ok_at(int rc, const char *op, const char *file, int line)
{
	check_status(rc, AEROGRAM_OK, 1, op, file, line);
}

void ck_expect_at(int rc, int want, const char *op, const char *file, int line)
{
	check_status(rc, want, 0, op, file, line);
}

/* ---- per-test state ------------------------------------------------------ */

struct deferred {
	void (*fn)(void *);
	void *arg;
	struct deferred *next;
};

static char run_prefix[64];
static unsigned test_number;
static struct deferred *deferred;
static char **test_pks;
static size_t n_test_pks;

void ck_init_run_prefix(void)
{
	unsigned char rnd[6];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		uint64_t t = (uint64_t)time(NULL) ^ (uint64_t)clock();
		memcpy(rnd, &t, sizeof(rnd));
	}
	snprintf(run_prefix, sizeof(run_prefix), "agcheck-%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
	         rnd[2], rnd[3], rnd[4], rnd[5]);
}

const char *ck_run_prefix(void)
{
	return run_prefix;
}

void ck_defer(void (*fn)(void *), void *arg)
{
	struct deferred *d = calloc(1, sizeof(*d));
	if (d == NULL) {
		fn(arg);
		CK_FAIL("out of memory in the test runner");
		return;
	}
	d->fn = fn;
	d->arg = arg;
	d->next = deferred;
	deferred = d;
}

void *ck_alloc(size_t size)
{
	void *p = calloc(1, size ? size : 1);
	if (p == NULL)
		CK_FAIL("out of memory in the test runner");
	ck_defer(free, p);
	return p;
}

char *ck_fmt(const char *fmt, ...)
{
	char *s;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		CK_FAIL("out of memory in the test runner");
	ck_defer(free, s);
	return s;
}

const char *ck_pk(const char *name)
{
	char *pk;
	if (asprintf(&pk, "%s/t%03u/%s", run_prefix, test_number, name) < 0)
		CK_FAIL("out of memory in the test runner");
	for (size_t i = 0; i < n_test_pks; i++) {
		if (strcmp(test_pks[i], pk) == 0) {
			free(pk);
			return test_pks[i];
		}
	}
	char **grown = realloc(test_pks, (n_test_pks + 1) * sizeof(*grown));
	if (grown == NULL) {
		free(pk);
		CK_FAIL("out of memory in the test runner");
	}
	test_pks = grown;
	test_pks[n_test_pks++] = pk;
	return pk;
}

const char *ck_blob_prefix(void)
{
	return ck_fmt("%s/t%03u/", run_prefix, test_number);
}

const char *ck_blob_key(const char *name)
{
	return ck_fmt("%s/t%03u/%s", run_prefix, test_number, name);
}

void ck_test_setup(void)
{
	test_number++;
}

/* Deletes every row and blob the test made; errors are ignored here (the
 * test itself reported them). */
static void cleanup_store(void)
{
	/* one range delete per partition, batched */
	struct aerogram_row_query q[100];
	for (size_t off = 0; off < n_test_pks; off += 100) {
		size_t n = n_test_pks - off < 100 ? n_test_pks - off : 100;
		for (size_t i = 0; i < n; i++)
			q[i] = (struct aerogram_row_query){ .pk = test_pks[off + i] };
		uint64_t deleted;
		ck_driver->row_delete(ck_store, q, n, &deleted);
	}
	for (size_t i = 0; i < n_test_pks; i++)
		free(test_pks[i]);
	free(test_pks);
	test_pks = NULL;
	n_test_pks = 0;

	char prefix[128];
	snprintf(prefix, sizeof(prefix), "%s/t%03u/", run_prefix, test_number);
	for (int round = 0; round < 100; round++) {
		struct aerogram_blob_list *list = NULL;
		if (ck_driver->blob_list(ck_store, prefix, NULL, 1000, &list) != 0 || list == NULL)
			break;
		size_t n = list->n_keys;
		if (n > 0)
			ck_driver->blob_delete(ck_store, list->keys, n);
		ck_driver->blob_list_free(ck_store, list);
		if (n == 0)
			break;
	}
}

void ck_test_teardown(void)
{
	while (deferred != NULL) {
		struct deferred *d = deferred;
		deferred = d->next;
		d->fn(d->arg);
		free(d);
	}
	cleanup_store();
}

/* ---- rows ---------------------------------------------------------------- */

void ck_write(const char *pk, const char *sk, const char *value, const char *token)
{
	struct aerogram_row_write w = {
		.pk = pk, .sk = sk, .token = token,
		.value = (const uint8_t *)value, .len = value ? strlen(value) : 0,
		.tombstone = value == NULL,
	};
	CK_OK("row_insert", ck_driver->row_insert(ck_store, &w, 1));
}

void ck_write_batch(const struct aerogram_row_write *writes, size_t n)
{
	for (size_t off = 0; off < n; off += 500) {
		size_t chunk = n - off < 500 ? n - off : 500;
		CK_OK("row_insert", ck_driver->row_insert(ck_store, writes + off, chunk));
	}
}

static void free_result(void *arg)
{
	ck_driver->row_result_free(ck_store, arg);
}

struct aerogram_row_result *ck_read(const struct aerogram_row_query *q, size_t n)
{
	struct aerogram_row_result *res = NULL;
	CK_OK("row_read", ck_driver->row_read(ck_store, q, n, &res));
	CK_REQUIRE(res != NULL, "row_read succeeded but returned no result");
	ck_defer(free_result, res);
	CK_REQUIRE(res->n_pages == n, "row_read returned %zu pages for %zu queries", res->n_pages, n);
	return res;
}

const struct aerogram_row *ck_get(const char *pk, const char *sk, uint32_t flags)
{
	struct aerogram_row_query q = { .pk = pk, .sk = sk, .flags = flags };
	struct aerogram_row_result *res = ck_read(&q, 1);
	const struct aerogram_row_page *p = &res->pages[0];
	CK_REQUIRE(p->n_rows <= 1, "a single-item query returned %zu rows", p->n_rows);
	CK_CHECK(!p->more, "a single-item query says more");
	if (p->n_rows == 0)
		return NULL;
	CK_REQUIRE(p->rows[0].sk != NULL && strcmp(p->rows[0].sk, sk) == 0,
	           "a single-item query for '%s' returned row '%s'", sk,
	           p->rows[0].sk ? p->rows[0].sk : "(null)");
	CK_REQUIRE(p->rows[0].token != NULL && p->rows[0].token[0] != '\0',
	           "row '%s' has no causality token", sk);
	return &p->rows[0];
}

const struct aerogram_row *ck_row(const char *pk, const char *sk, uint32_t flags,
                                  const char *missing)
{
	const struct aerogram_row *r = ck_get(pk, sk, flags);
	CK_REQUIRE(r != NULL, "%s", missing);
	return r;
}

size_t ck_count_value(const struct aerogram_row *row, const char *text)
{
	size_t n = 0, len = strlen(text);
	if (row == NULL)
		return 0;
	for (size_t i = 0; i < row->n_values; i++) {
		const struct aerogram_value *v = &row->values[i];
		if (!v->tombstone && v->len == len && (len == 0 || memcmp(v->data, text, len) == 0))
			n++;
	}
	return n;
}

size_t ck_count_tombstones(const struct aerogram_row *row)
{
	size_t n = 0;
	if (row == NULL)
		return 0;
	for (size_t i = 0; i < row->n_values; i++)
		if (row->values[i].tombstone)
			n++;
	return n;
}

char *ck_token(const struct aerogram_row *row)
{
	CK_REQUIRE(row != NULL, "expected a row, got none");
	return ck_fmt("%s", row->token);
}

char *ck_put(const char *pk, const char *sk, const char *value, const char *token)
{
	ck_write(pk, sk, value, token);
	return ck_token(ck_get(pk, sk, 0));
}

/* ---- misc ---------------------------------------------------------------- */

/* ---- watch records ------------------------------------------------------ */

static void watch_rec_destroy(void *arg)
{
	struct ck_watch_rec *r = arg;
	if (r->watch)
		ck_driver->row_watch_release(ck_store, r->watch);
	if (r->child)
		watch_rec_destroy(r->child);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	free(r);
}

/* A record released (watch included) at the end of the test. */
struct ck_watch_rec *ck_watch_rec_new(void)
{
	struct ck_watch_rec *r = calloc(1, sizeof(*r));
	if (r == NULL)
		CK_FAIL("out of memory in the test runner");
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	r->caller = pthread_self();
	ck_defer(watch_rec_destroy, r);
	return r;
}

static void copy_row(struct ck_watch_rec *r, const struct aerogram_row *row)
{
	r->has_row = 1;
	snprintf(r->token, sizeof(r->token), "%s", row->token ? row->token : "");
	r->n_values = row->n_values;
	r->first_value[0] = '\0';
	for (size_t i = 0; i < row->n_values; i++) {
		if (!row->values[i].tombstone) {
			size_t n = row->values[i].len < sizeof(r->first_value) - 1 ? row->values[i].len
			                                                             : sizeof(r->first_value) - 1;
			memcpy(r->first_value, row->values[i].data, n);
			r->first_value[n] = '\0';
			break;
		}
	}
}

void ck_on_watch(void *arg, int status, const struct aerogram_row *row, const char *message)
{
	(void)message;
	struct ck_watch_rec *r = arg;
	pthread_mutex_lock(&r->lock);
	r->calls++;
	r->status = status;
	r->from_caller_thread = pthread_equal(pthread_self(), r->caller);
	if (row)
		copy_row(r, row);
	if (r->start_from_cb && r->child == NULL) {
		/* a callback may start new watches */
		struct ck_watch_rec *c = calloc(1, sizeof(*c));
		if (c) {
			pthread_mutex_init(&c->lock, NULL);
			pthread_cond_init(&c->cond, NULL);
			c->caller = pthread_self();
			r->child_rc = ck_driver->row_watch(ck_store, r->cb_pk, r->cb_sk, NULL, CK_WAIT_MS,
			                                   ck_on_watch, c, &c->watch);
			r->child = c;
		}
	}
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

/* Waits until the record has been called back; returns its call count. */
int ck_watch_wait(struct ck_watch_rec *r, unsigned ms)
{
	uint64_t deadline = ck_now_ms() + ms;
	pthread_mutex_lock(&r->lock);
	while (r->calls == 0 && ck_now_ms() < deadline) {
		pthread_mutex_unlock(&r->lock);
		ck_sleep_ms(2);
		pthread_mutex_lock(&r->lock);
	}
	int calls = r->calls;
	pthread_mutex_unlock(&r->lock);
	return calls;
}

int ck_watch_calls(struct ck_watch_rec *r)
{
	pthread_mutex_lock(&r->lock);
	int calls = r->calls;
	pthread_mutex_unlock(&r->lock);
	return calls;
}

void ck_run_threads(int n, void *(*fn)(void *), void *args, size_t size, const char *what)
{
	pthread_t *t = ck_alloc((size_t)n * sizeof(*t));
	int started = 0;
	while (started < n &&
	       pthread_create(&t[started], NULL, fn, (char *)args + (size_t)started * size) == 0)
		started++;
	for (int i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	CK_REQUIRE(started == n, "could not start %d %s threads", n, what);
}

int ck_thread_count(void)
{
	DIR *d = opendir("/proc/self/task");
	if (d == NULL)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

uint64_t ck_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void ck_sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0)
		;
}

static const char *skipped[16];
static size_t n_skipped;

int ck_skip_test(const char *name)
{
	if (n_skipped == sizeof(skipped) / sizeof(skipped[0]))
		return -1;
	skipped[n_skipped++] = name;
	return 0;
}

static int is_skipped(const char *name)
{
	for (size_t i = 0; i < n_skipped; i++)
		if (strcmp(skipped[i], name) == 0)
			return 1;
	return 0;
}

int ck_add_suite(const char *name, const struct ck_test *tests, size_t n)
{
	CU_pSuite s = CU_add_suite_with_setup_and_teardown(name, NULL, NULL, ck_test_setup,
	                                                   ck_test_teardown);
	if (s == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (is_skipped(tests[i].name)) {
			printf("aerogram-driver-check: left out (--skip): %s / %s\n", name, tests[i].name);
			continue;
		}
		if (CU_add_test(s, tests[i].name, tests[i].fn) == NULL)
			return -1;
	}
	return 0;
}
