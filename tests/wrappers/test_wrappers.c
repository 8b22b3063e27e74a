/* test_wrappers.c - the fault-injecting and counting wrappers do what
 * ag_wrap.h says: counts per operation, each kind of fault rule, stacking,
 * pass-through of errors and watches, row_insert_if and the capabilities
 * passed on, hidden capabilities, the call hook, rows counted, and the
 * loadable versions with their control and counts files.
 *
 * usage: test_wrappers DRIVER_DIR   (the directory holding aerogram_memory.so) */
#include <CUnit/Basic.h>
#include <endian.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sdk/loader/ag_loader.h"
#include "sdk/wrappers/ag_wrap.h"
#include "tests/lib/agt_files.h"
#include "tests/lib/cu_main.h"

static const char *driver_dir;
static struct ag_driver *mem_drv;
static const struct aerogram_driver *mem;
static struct aerogram_store *mem_store;
static char tmpdir[256];

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int write_row(const struct aerogram_driver *d, struct aerogram_store *s, const char *pk,
                     const char *sk, const char *value)
{
	struct aerogram_row_write w = { .pk = pk, .sk = sk, .value = (const uint8_t *)value,
	                                .len = strlen(value) };
	return d->row_insert(s, &w, 1);
}

/* Whether the memory store holds a value for pk/sk (read directly). */
static int row_exists(const char *pk, const char *sk)
{
	struct aerogram_row_query q = { .pk = pk, .sk = sk };
	struct aerogram_row_result *res = NULL;
	if (mem->row_read(mem_store, &q, 1, &res) != 0)
		return -1;
	int n = (int)res->pages[0].n_rows;
	mem->row_result_free(mem_store, res);
	return n;
}

static void test_counts(void)
{
	struct agw_wrapper *c = agw_count_new(mem, mem_store);
	const struct aerogram_driver *d = agw_driver(c);
	struct aerogram_store *s = agw_store(c);
	CU_ASSERT_EQUAL(ag_driver_check_descriptor(d, "count wrapper", NULL, 0), 0);
	struct aerogram_row_write w[3] = {
		{ .pk = "cnt", .sk = "a", .value = (const uint8_t *)"1", .len = 1 },
		{ .pk = "cnt", .sk = "b", .value = (const uint8_t *)"2", .len = 1 },
		{ .pk = "cnt", .sk = "c", .value = (const uint8_t *)"3", .len = 1 },
	};
	CU_ASSERT_EQUAL(d->row_insert(s, w, 3), 0);
	struct aerogram_row_query q[2] = { { .pk = "cnt" }, { .pk = "cnt", .sk = "a" } };
	struct aerogram_row_result *res = NULL;
	CU_ASSERT_EQUAL(d->row_read(s, q, 2, &res), 0);
	CU_ASSERT_EQUAL_FATAL(res != NULL, 1);
	CU_ASSERT_EQUAL(res->pages[0].n_rows, 3);
	d->row_result_free(s, res);
	CU_ASSERT_EQUAL(d->blob_put(s, "cnt/1", (const uint8_t *)"x", 1, NULL, 0), 0);
	CU_ASSERT_EQUAL(d->blob_put(s, "cnt/2", (const uint8_t *)"y", 1, NULL, 0), 0);
	struct aerogram_blob_list *l = NULL;
	CU_ASSERT_EQUAL(d->blob_list(s, "cnt/", NULL, 0, &l), 0);
	d->blob_list_free(s, l);
	const char *keys[3] = { "cnt/1", "cnt/2", "cnt/none" };
	CU_ASSERT_EQUAL(d->blob_delete(s, keys, 3), 0);

	CU_ASSERT_EQUAL(agw_count_get(c, AGW_ROW_INSERT), 1);
	CU_ASSERT_EQUAL(agw_count_items(c, AGW_ROW_INSERT), 3);
	CU_ASSERT_EQUAL(agw_count_get(c, AGW_ROW_READ), 1);
	CU_ASSERT_EQUAL(agw_count_items(c, AGW_ROW_READ), 2);
	CU_ASSERT_EQUAL(agw_count_get(c, AGW_BLOB_PUT), 2);
	CU_ASSERT_EQUAL(agw_count_get(c, AGW_BLOB_LIST), 1);
	CU_ASSERT_EQUAL(agw_count_items(c, AGW_BLOB_LIST), 2);
	CU_ASSERT_EQUAL(agw_count_get(c, AGW_BLOB_DELETE), 1);
	CU_ASSERT_EQUAL(agw_count_items(c, AGW_BLOB_DELETE), 3);
	CU_ASSERT_EQUAL(agw_count_get(c, AGW_BLOB_GET), 0);
	agw_count_reset(c);
	CU_ASSERT_EQUAL(agw_count_get(c, AGW_ROW_INSERT), 0);
	CU_ASSERT_EQUAL(agw_count_items(c, AGW_BLOB_DELETE), 0);
	agw_free(c);
}

static void test_fail_next(void)
{
	struct agw_wrapper *f = agw_fault_new(mem, mem_store);
	const struct aerogram_driver *d = agw_driver(f);
	struct aerogram_store *s = agw_store(f);
	CU_ASSERT_EQUAL(write_row(d, s, "fn", "a", "1"), 0);
	agw_fault_fail_next(f, AGW_MASK(AGW_ROW_READ), AEROGRAM_EUNAVAILABLE, 2);
	struct aerogram_row_query q = { .pk = "fn", .sk = "a" };
	struct aerogram_row_result *res = NULL;
	CU_ASSERT_EQUAL(d->row_read(s, &q, 1, &res), AEROGRAM_EUNAVAILABLE);
	CU_ASSERT_PTR_NULL(res);
	CU_ASSERT_STRING_EQUAL(d->error_message(s), "injected fault");
	/* other operations are not affected */
	CU_ASSERT_EQUAL(write_row(d, s, "fn", "b", "2"), 0);
	CU_ASSERT_EQUAL(d->row_read(s, &q, 1, &res), AEROGRAM_EUNAVAILABLE);
	CU_ASSERT_EQUAL(d->row_read(s, &q, 1, &res), 0);
	CU_ASSERT_PTR_NOT_NULL(res);
	if (res)
		d->row_result_free(s, res);
	agw_free(f);
}

static void test_fail_probability(void)
{
	struct agw_wrapper *f = agw_fault_new(mem, mem_store);
	const struct aerogram_driver *d = agw_driver(f);
	struct aerogram_store *s = agw_store(f);
	agw_fault_fail(f, AGW_MASK(AGW_BLOB_PUT), AEROGRAM_EPERM, 1.0, 42);
	CU_ASSERT_EQUAL(d->blob_put(s, "prob/1", (const uint8_t *)"x", 1, NULL, 0), AEROGRAM_EPERM);
	CU_ASSERT_STRING_EQUAL(d->error_message(s), "injected fault");
	/* the inner store was not reached */
	struct aerogram_blob_request req = { .key = "prob/1" };
	struct aerogram_blob_result *res = NULL;
	CU_ASSERT_EQUAL(mem->blob_get(mem_store, &req, 1, &res), 0);
	CU_ASSERT_EQUAL(res->blobs[0].status, AEROGRAM_ENOTFOUND);
	mem->blob_result_free(mem_store, res);

	agw_fault_fail(f, AGW_MASK(AGW_BLOB_PUT), AEROGRAM_EPERM, 0.0, 42);
	CU_ASSERT_EQUAL(d->blob_put(s, "prob/1", (const uint8_t *)"x", 1, NULL, 0), 0);

	/* half the calls, deterministic for a seed */
	int failed[2] = { 0, 0 };
	for (int round = 0; round < 2; round++) {
		agw_fault_fail(f, AGW_MASK(AGW_BLOB_PUT), AEROGRAM_EUNAVAILABLE, 0.5, 7);
		for (int i = 0; i < 400; i++)
			failed[round] += d->blob_put(s, "prob/2", (const uint8_t *)"x", 1, NULL, 0) != 0;
	}
	CU_ASSERT(failed[0] > 120 && failed[0] < 280);
	CU_ASSERT_EQUAL(failed[0], failed[1]);
	agw_fault_clear(f);
	CU_ASSERT_EQUAL(d->blob_put(s, "prob/2", (const uint8_t *)"x", 1, NULL, 0), 0);
	const char *keys[2] = { "prob/1", "prob/2" };
	mem->blob_delete(mem_store, keys, 2);
	agw_free(f);
}

static void test_fail_after_apply(void)
{
	struct agw_wrapper *f = agw_fault_new(mem, mem_store);
	const struct aerogram_driver *d = agw_driver(f);
	struct aerogram_store *s = agw_store(f);
	agw_fault_fail_after_apply(f, AGW_MASK(AGW_ROW_INSERT), 1.0);
	CU_ASSERT_EQUAL(row_exists("faa", "a"), 0);
	CU_ASSERT_EQUAL(write_row(d, s, "faa", "a", "1"), AEROGRAM_EUNAVAILABLE);
	CU_ASSERT_PTR_NOT_NULL(strstr(d->error_message(s), "injected fault"));
	CU_ASSERT_EQUAL(row_exists("faa", "a"), 1); /* applied nonetheless */
	agw_fault_clear(f);
	CU_ASSERT_EQUAL(write_row(d, s, "faa", "b", "1"), 0);
	agw_free(f);
}

static void test_delay(void)
{
	struct agw_wrapper *f = agw_fault_new(mem, mem_store);
	const struct aerogram_driver *d = agw_driver(f);
	struct aerogram_store *s = agw_store(f);
	agw_fault_delay(f, AGW_MASK(AGW_ROW_READ), 150);
	struct aerogram_row_query q = { .pk = "delay" };
	struct aerogram_row_result *res = NULL;
	uint64_t t0 = now_ms();
	CU_ASSERT_EQUAL(d->row_read(s, &q, 1, &res), 0);
	CU_ASSERT(now_ms() - t0 >= 150);
	d->row_result_free(s, res);
	agw_fault_delay(f, AGW_MASK(AGW_ROW_READ), 0);
	agw_free(f);
}

/* Errors of the inner driver pass through with its own message. */
static void test_inner_errors_pass_through(void)
{
	struct agw_wrapper *f = agw_fault_new(mem, mem_store);
	const struct aerogram_driver *d = agw_driver(f);
	struct aerogram_store *s = agw_store(f);
	struct aerogram_row_query q = { .pk = "x", .sk = "a", .limit = 3 };
	struct aerogram_row_result *res = NULL;
	CU_ASSERT_EQUAL(d->row_read(s, &q, 1, &res), AEROGRAM_EINVAL);
	CU_ASSERT_PTR_NULL(strstr(d->error_message(s), "injected"));
	CU_ASSERT_STRING_EQUAL(d->error_message(s), mem->error_message(mem_store));
	CU_ASSERT_EQUAL(d->blob_copy(s, "no/such", "dst"), AEROGRAM_ENOTFOUND);
	agw_free(f);
}

/* count over fault over memory: the count sees failed calls; the message
 * of the injected fault reaches the top. */
static void test_stacking(void)
{
	struct agw_wrapper *f = agw_fault_new(mem, mem_store);
	struct agw_wrapper *c = agw_count_new(agw_driver(f), agw_store(f));
	const struct aerogram_driver *d = agw_driver(c);
	struct aerogram_store *s = agw_store(c);
	agw_fault_fail_next(f, AGW_ALL, AEROGRAM_EINTERNAL, 1);
	CU_ASSERT_EQUAL(write_row(d, s, "stack", "a", "1"), AEROGRAM_EINTERNAL);
	CU_ASSERT_STRING_EQUAL(d->error_message(s), "injected fault");
	CU_ASSERT_EQUAL(write_row(d, s, "stack", "a", "1"), 0);
	CU_ASSERT_EQUAL(agw_count_get(c, AGW_ROW_INSERT), 2);
	CU_ASSERT_EQUAL(agw_count_get(f, AGW_ROW_INSERT), 2);
	CU_ASSERT_EQUAL(row_exists("stack", "a"), 1);
	agw_free(c);
	agw_free(f);
}

struct fired {
	pthread_mutex_t lock;
	int calls, status;
};

static void on_fire(void *arg, int status, const struct aerogram_row *row, const char *message)
{
	(void)row, (void)message;
	struct fired *f = arg;
	pthread_mutex_lock(&f->lock);
	f->calls++;
	f->status = status;
	pthread_mutex_unlock(&f->lock);
}

/* Watches pass through, callbacks included; a watch fault fails registration. */
static void test_watch_pass_through(void)
{
	struct agw_wrapper *f = agw_fault_new(mem, mem_store);
	struct agw_wrapper *c = agw_count_new(agw_driver(f), agw_store(f));
	const struct aerogram_driver *d = agw_driver(c);
	struct aerogram_store *s = agw_store(c);
	CU_ASSERT_EQUAL(write_row(d, s, "watch", "a", "1"), 0);
	struct fired fired = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct aerogram_watch *w = NULL;
	CU_ASSERT_EQUAL_FATAL(d->row_watch(s, "watch", "a", NULL, 10000, on_fire, &fired, &w), 0);
	for (int i = 0; i < 5000; i++) {
		pthread_mutex_lock(&fired.lock);
		int n = fired.calls;
		pthread_mutex_unlock(&fired.lock);
		if (n)
			break;
		usleep(1000);
	}
	CU_ASSERT_EQUAL(fired.calls, 1);
	CU_ASSERT_EQUAL(fired.status, AEROGRAM_OK);
	d->row_watch_release(s, w);
	CU_ASSERT_EQUAL(agw_count_get(c, AGW_ROW_WATCH), 1);
	CU_ASSERT(d->capabilities & AEROGRAM_CAP_SNAPSHOT_READS);

	agw_fault_fail_next(f, AGW_MASK(AGW_ROW_WATCH), AEROGRAM_EUNAVAILABLE, 1);
	w = (struct aerogram_watch *)&fired;
	CU_ASSERT_EQUAL(d->row_watch(s, "watch", "a", NULL, 10000, on_fire, &fired, &w), AEROGRAM_EUNAVAILABLE);
	CU_ASSERT_PTR_NULL(w);
	agw_free(c);
	agw_free(f);
}

/* ---- row_insert_if, capabilities, the call hook, rows read ------------- */

static int insert_if(const struct aerogram_driver *d, struct aerogram_store *s, const char *pk,
                     const char *token, const char *value, char *new_token)
{
	struct aerogram_row_write w = { .pk = pk, .sk = "watch", .token = token,
		                        .value = (const uint8_t *)value, .len = strlen(value) };
	return d->row_insert_if(s, pk, "watch", token, &w, 1, new_token,
	                        new_token ? AEROGRAM_TOKEN_MAX : 0);
}

/* Both wrappers forward row_insert_if, count it and steer it with rules. */
static void test_insert_if_forwarded(void)
{
	CU_ASSERT_FATAL(mem->capabilities & AEROGRAM_CAP_CONDITIONAL);
	struct agw_wrapper *f = agw_fault_new(mem, mem_store);
	struct agw_wrapper *c = agw_count_new(agw_driver(f), agw_store(f));
	const struct aerogram_driver *d = agw_driver(c);
	struct aerogram_store *s = agw_store(c);
	CU_ASSERT(d->capabilities & AEROGRAM_CAP_CONDITIONAL);
	char t1[AEROGRAM_TOKEN_MAX] = "", t2[AEROGRAM_TOKEN_MAX] = "";
	CU_ASSERT_EQUAL(insert_if(d, s, "cas", NULL, "1", t1), 0);
	CU_ASSERT(t1[0] != '\0');
	CU_ASSERT_EQUAL(insert_if(d, s, "cas", NULL, "again", NULL), AEROGRAM_ECONFLICT);
	CU_ASSERT_PTR_NULL(strstr(d->error_message(s), "injected"));
	CU_ASSERT_EQUAL(agw_count_get(c, AGW_ROW_INSERT_IF), 2);
	CU_ASSERT_EQUAL(agw_count_items(c, AGW_ROW_INSERT_IF), 2);
	CU_ASSERT_EQUAL(agw_count_get(c, AGW_ROW_INSERT), 0);

	/* fail_next: a conflict the inner store never saw */
	agw_fault_fail_next(f, AGW_MASK(AGW_ROW_INSERT_IF), AEROGRAM_ECONFLICT, 1);
	CU_ASSERT_EQUAL(insert_if(d, s, "cas", t1, "2", t2), AEROGRAM_ECONFLICT);
	CU_ASSERT_STRING_EQUAL(d->error_message(s), "injected fault");
	CU_ASSERT_EQUAL(insert_if(d, s, "cas", t1, "2", t2), 0);
	CU_ASSERT(strcmp(t1, t2) != 0);
	/* fail_after_apply: applied, then reported unavailable */
	agw_fault_fail_after_apply(f, AGW_MASK(AGW_ROW_INSERT_IF), 1.0);
	CU_ASSERT_EQUAL(insert_if(d, s, "cas", t2, "3", NULL), AEROGRAM_EUNAVAILABLE);
	agw_fault_clear(f);
	CU_ASSERT_EQUAL(insert_if(d, s, "cas", t2, "4", NULL), AEROGRAM_ECONFLICT); /* "3" landed */
	/* delay */
	agw_fault_delay(f, AGW_MASK(AGW_ROW_INSERT_IF), 100);
	uint64_t t0 = now_ms();
	CU_ASSERT_EQUAL(insert_if(d, s, "cas", t2, "5", NULL), AEROGRAM_ECONFLICT);
	CU_ASSERT(now_ms() - t0 >= 100);
	agw_fault_clear(f);
	CU_ASSERT_EQUAL(agw_count_get(f, AGW_ROW_INSERT_IF), 7);
	agw_free(c);
	agw_free(f);
}

/* A wrapper advertises CONDITIONAL only over an inner driver that has it:
 * the bit and the pointer. */
static void test_conditional_follows_inner(void)
{
	struct aerogram_driver no_fn = *mem; /* the bit without the call */
	no_fn.row_insert_if = NULL;
	struct aerogram_driver no_bit = *mem; /* the call without the bit */
	no_bit.capabilities &= ~AEROGRAM_CAP_CONDITIONAL;
	const struct aerogram_driver *inners[2] = { &no_fn, &no_bit };
	for (int i = 0; i < 2; i++) {
		struct agw_wrapper *c = agw_count_new(inners[i], mem_store);
		const struct aerogram_driver *d = agw_driver(c);
		CU_ASSERT_FALSE(d->capabilities & AEROGRAM_CAP_CONDITIONAL);
		CU_ASSERT(d->capabilities & AEROGRAM_CAP_SNAPSHOT_READS);
		CU_ASSERT_EQUAL(insert_if(d, agw_store(c), "nocond", NULL, "x", NULL), AEROGRAM_ENOTSUP);
		CU_ASSERT_EQUAL(row_exists("nocond", "watch"), 0);
		agw_free(c);
	}
}

/* Hidden capabilities leave the descriptor, and their calls answer ENOTSUP
 * without reaching the inner store, until shown again. */
static void test_hide_caps(void)
{
	struct agw_wrapper *f = agw_fault_new(mem, mem_store);
	const struct aerogram_driver *d = agw_driver(f);
	struct aerogram_store *s = agw_store(f);
	agw_fault_hide_caps(f, AEROGRAM_CAP_CONDITIONAL | AEROGRAM_CAP_SNAPSHOT_READS);
	CU_ASSERT_FALSE(d->capabilities & AEROGRAM_CAP_CONDITIONAL);
	CU_ASSERT_FALSE(d->capabilities & AEROGRAM_CAP_SNAPSHOT_READS);
	CU_ASSERT_EQUAL(insert_if(d, s, "hidden", NULL, "x", NULL), AEROGRAM_ENOTSUP);
	CU_ASSERT_PTR_NOT_NULL(strstr(d->error_message(s), "hidden"));
	CU_ASSERT_EQUAL(row_exists("hidden", "watch"), 0);
	/* the other calls are untouched, and clearing fault rules keeps caps hidden */
	CU_ASSERT_EQUAL(write_row(d, s, "hidden", "plain", "x"), 0);
	agw_fault_clear(f);
	CU_ASSERT_FALSE(d->capabilities & AEROGRAM_CAP_CONDITIONAL);
	agw_fault_hide_caps(f, 0);
	CU_ASSERT(d->capabilities & AEROGRAM_CAP_CONDITIONAL);
	CU_ASSERT_EQUAL(insert_if(d, s, "hidden", NULL, "x", NULL), 0);
	CU_ASSERT_EQUAL(row_exists("hidden", "watch"), 1);
	agw_free(f);
}

struct hook_log {
	pthread_t caller;
	int other_thread;
	unsigned n;
	enum agw_op ops[16];
	struct agw_wrapper *fault;
	int fault_count_at_hook; /* the inner wrapper's count when the outer hook ran */
};

static void record_op(void *arg, enum agw_op op)
{
	struct hook_log *h = arg;
	if (!pthread_equal(pthread_self(), h->caller))
		h->other_thread = 1;
	if (h->n < 16)
		h->ops[h->n] = op;
	h->n++;
	if (h->fault)
		h->fault_count_at_hook = (int)agw_count_get(h->fault, op);
}

/* The hook runs on the calling thread, once per call of an operation,
 * before the call goes on (and before a fault answers it). */
static void test_call_hook(void)
{
	struct agw_wrapper *f = agw_fault_new(mem, mem_store);
	struct agw_wrapper *c = agw_count_new(agw_driver(f), agw_store(f));
	const struct aerogram_driver *d = agw_driver(c);
	struct aerogram_store *s = agw_store(c);
	struct hook_log h = { .caller = pthread_self(), .fault = f, .fault_count_at_hook = -1 };
	agw_set_call_hook(c, record_op, &h);
	CU_ASSERT_EQUAL(write_row(d, s, "hook", "a", "1"), 0);
	CU_ASSERT_EQUAL(h.fault_count_at_hook, 0); /* before the call reached the inner wrapper */
	struct aerogram_row_query q = { .pk = "hook" };
	struct aerogram_row_result *res = NULL;
	CU_ASSERT_EQUAL(d->row_read(s, &q, 1, &res), 0);
	d->row_result_free(s, res); /* not hooked */
	CU_ASSERT_EQUAL(insert_if(d, s, "hook", NULL, "x", NULL), 0);
	agw_fault_fail_next(f, AGW_MASK(AGW_BLOB_PUT), AEROGRAM_EUNAVAILABLE, 1);
	CU_ASSERT_EQUAL(d->blob_put(s, "hook/b", (const uint8_t *)"x", 1, NULL, 0), AEROGRAM_EUNAVAILABLE);
	d->error_message(s); /* not hooked */
	struct fired fired = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct aerogram_watch *w = NULL;
	CU_ASSERT_EQUAL_FATAL(d->row_watch(s, "hook", "a", NULL, 10000, on_fire, &fired, &w), 0);
	for (int i = 0; i < 5000 && !fired.calls; i++)
		usleep(1000); /* the callback comes from the driver's thread: not hooked */
	d->row_watch_release(s, w);
	CU_ASSERT_EQUAL(h.n, 5);
	enum agw_op want[5] = { AGW_ROW_INSERT, AGW_ROW_READ, AGW_ROW_INSERT_IF, AGW_BLOB_PUT, AGW_ROW_WATCH };
	for (unsigned i = 0; i < 5 && i < h.n; i++)
		CU_ASSERT_EQUAL(h.ops[i], want[i]);
	CU_ASSERT_FALSE(h.other_thread);
	agw_set_call_hook(c, NULL, NULL);
	CU_ASSERT_EQUAL(write_row(d, s, "hook", "b", "1"), 0);
	CU_ASSERT_EQUAL(h.n, 5);
	agw_free(c);
	agw_free(f);
}

/* Rows returned and their value bytes are counted, not only calls. */
static void test_rows_read_counted(void)
{
	struct agw_wrapper *c = agw_count_new(mem, mem_store);
	const struct aerogram_driver *d = agw_driver(c);
	struct aerogram_store *s = agw_store(c);
	struct aerogram_row_write w[4] = {
		{ .pk = "rows", .sk = "a", .value = (const uint8_t *)"1", .len = 1 },
		{ .pk = "rows", .sk = "b", .value = (const uint8_t *)"22", .len = 2 },
		{ .pk = "rows", .sk = "b", .value = (const uint8_t *)"333", .len = 3 }, /* a sibling */
		{ .pk = "rows", .sk = "c", .tombstone = 1 },
	};
	CU_ASSERT_EQUAL(d->row_insert(s, w, 4), 0);
	struct aerogram_row_query q[3] = {
		{ .pk = "rows" },                                         /* a, b */
		{ .pk = "rows", .flags = AEROGRAM_QUERY_TOMBSTONES },     /* a, b, c */
		{ .pk = "rows", .sk = "missing" },                        /* nothing */
	};
	struct aerogram_row_result *res = NULL;
	CU_ASSERT_EQUAL(d->row_read(s, q, 3, &res), 0);
	d->row_result_free(s, res);
	CU_ASSERT_EQUAL(agw_count_get(c, AGW_ROW_READ), 1);
	CU_ASSERT_EQUAL(agw_count_items(c, AGW_ROW_READ), 3);
	CU_ASSERT_EQUAL(agw_count_rows_read(c), 5);
	CU_ASSERT_EQUAL(agw_count_value_bytes_read(c), 12); /* 1 + 2 + 3, twice */
	/* a failed read returns no rows */
	struct aerogram_row_query bad = { .pk = "rows", .sk = "a", .limit = 1 };
	CU_ASSERT_EQUAL(d->row_read(s, &bad, 1, &res), AEROGRAM_EINVAL);
	CU_ASSERT_EQUAL(agw_count_rows_read(c), 5);
	agw_count_reset(c);
	CU_ASSERT_EQUAL(agw_count_rows_read(c), 0);
	CU_ASSERT_EQUAL(agw_count_value_bytes_read(c), 0);
	agw_free(c);
}

/* ---- the loadable wrappers --------------------------------------------- */

static void test_faulty_driver(void)
{
	char control[512], path[512], err[512];
	snprintf(control, sizeof(control), "%s/control", tmpdir);
	snprintf(path, sizeof(path), "%s/aerogram_faulty.so", driver_dir);
	struct aerogram_config_entry cfg[2] = { { "inner", "memory" }, { "control_file", control } };
	struct ag_driver *drv = NULL;
	int rc = ag_driver_load(path, NULL, cfg, 2, &drv, err, sizeof(err));
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	const struct aerogram_driver *d = ag_driver_store(drv)->driver;
	struct aerogram_store *s = ag_driver_store(drv)->store;
	CU_ASSERT_STRING_EQUAL(d->name, "faulty");
	/* no control file yet: no rules */
	CU_ASSERT_EQUAL(write_row(d, s, "so", "a", "1"), 0);
	struct aerogram_row_query q = { .pk = "so", .sk = "a" };
	struct aerogram_row_result *res = NULL;

	CU_ASSERT_EQUAL_FATAL(agt_write_file(control, "# rules\nfail row_read,blob_get unavailable\n"), 0);
	CU_ASSERT_EQUAL(d->row_read(s, &q, 1, &res), AEROGRAM_EUNAVAILABLE);
	CU_ASSERT_STRING_EQUAL(d->error_message(s), "injected fault");
	struct aerogram_blob_request breq = { .key = "x" };
	struct aerogram_blob_result *bres = NULL;
	CU_ASSERT_EQUAL(d->blob_get(s, &breq, 1, &bres), AEROGRAM_EUNAVAILABLE);
	CU_ASSERT_EQUAL(write_row(d, s, "so", "b", "1"), 0);

	CU_ASSERT_EQUAL_FATAL(agt_write_file(control, "ok\n"), 0);
	CU_ASSERT_EQUAL(d->row_read(s, &q, 1, &res), 0);
	d->row_result_free(s, res);

	CU_ASSERT_EQUAL_FATAL(agt_write_file(control, "fail all perm\n"), 0);
	CU_ASSERT_EQUAL(write_row(d, s, "so", "c", "1"), AEROGRAM_EPERM);

	CU_ASSERT_EQUAL_FATAL(agt_write_file(control, "this is not a rule\nfail_next row_insert conflict 1\n"), 0);
	CU_ASSERT_EQUAL(write_row(d, s, "so", "c", "1"), AEROGRAM_ECONFLICT);
	CU_ASSERT_EQUAL(write_row(d, s, "so", "c", "1"), 0);

	CU_ASSERT_EQUAL_FATAL(agt_write_file(control, "delay all 200\n"), 0);
	uint64_t t0 = now_ms();
	CU_ASSERT_EQUAL(d->row_read(s, &q, 1, &res), 0);
	CU_ASSERT(now_ms() - t0 >= 200);
	d->row_result_free(s, res);

	CU_ASSERT_EQUAL_FATAL(agt_write_file(control, "fail_next row_insert_if conflict 1\n"), 0);
	CU_ASSERT(d->capabilities & AEROGRAM_CAP_CONDITIONAL);
	CU_ASSERT_EQUAL(insert_if(d, s, "so", NULL, "w", NULL), AEROGRAM_ECONFLICT);
	CU_ASSERT_STRING_EQUAL(d->error_message(s), "injected fault");
	CU_ASSERT_EQUAL(insert_if(d, s, "so", NULL, "w", NULL), 0);

	CU_ASSERT_EQUAL_FATAL(agt_write_file(control, "fail_after_apply blob_put\n"), 0);
	CU_ASSERT_EQUAL(d->blob_put(s, "so/blob", (const uint8_t *)"x", 1, NULL, 0), AEROGRAM_EUNAVAILABLE);
	CU_ASSERT_EQUAL_FATAL(agt_write_file(control, ""), 0);
	CU_ASSERT_EQUAL(d->blob_get(s, &(struct aerogram_blob_request){ .key = "so/blob" }, 1, &bres), 0);
	CU_ASSERT_EQUAL(bres->blobs[0].status, AEROGRAM_OK);
	d->blob_result_free(s, bres);

	unlink(control);
	ag_driver_unload(drv);

	/* hide_caps: the descriptor of this store lacks them, their calls answer ENOTSUP */
	struct aerogram_config_entry hide[2] = { { "inner", "memory" }, { "hide_caps", "conditional" } };
	CU_ASSERT_EQUAL_FATAL(ag_driver_load(path, NULL, hide, 2, &drv, err, sizeof(err)), 0);
	d = ag_driver_store(drv)->driver;
	s = ag_driver_store(drv)->store;
	CU_ASSERT_FALSE(d->capabilities & AEROGRAM_CAP_CONDITIONAL);
	CU_ASSERT(d->capabilities & AEROGRAM_CAP_SNAPSHOT_READS);
	CU_ASSERT_EQUAL(insert_if(d, s, "so-hidden", NULL, "w", NULL), AEROGRAM_ENOTSUP);
	ag_driver_unload(drv);
	/* the next store opened shows what its inner driver offers again */
	CU_ASSERT_EQUAL_FATAL(ag_driver_load(path, NULL, cfg, 1, &drv, err, sizeof(err)), 0);
	CU_ASSERT(ag_driver_store(drv)->driver->capabilities & AEROGRAM_CAP_CONDITIONAL);
	ag_driver_unload(drv);
	struct aerogram_config_entry badhide[2] = { { "inner", "memory" }, { "hide_caps", "teleport" } };
	CU_ASSERT_NOT_EQUAL(ag_driver_load(path, NULL, badhide, 2, &drv, err, sizeof(err)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "hide_caps"));
}

static void read_counts(const char *path, uint64_t *counts)
{
	memset(counts, 0, AGW_COUNT_SLOTS * sizeof(uint64_t));
	int fd = open(path, O_RDONLY);
	CU_ASSERT_FATAL(fd >= 0);
	unsigned char buf[AGW_COUNT_SLOTS * 8 + 8];
	/* exactly AGW_COUNT_SLOTS values, as ag_wrap.h says */
	CU_ASSERT_EQUAL(read(fd, buf, sizeof(buf)), (ssize_t)(AGW_COUNT_SLOTS * 8));
	close(fd);
	for (int i = 0; i < AGW_COUNT_SLOTS; i++) {
		uint64_t v = 0;
		for (int b = 7; b >= 0; b--)
			v = v << 8 | buf[i * 8 + b];
		counts[i] = v;
	}
}

static void test_counting_driver(void)
{
	char counts_path[512], path[512], err[512];
	snprintf(counts_path, sizeof(counts_path), "%s/counts", tmpdir);
	snprintf(path, sizeof(path), "%s/aerogram_counting.so", driver_dir);
	struct aerogram_config_entry cfg[3] = { { "inner", "faulty" }, { "inner_config", "inner=memory" },
	                                        { "counts_file", counts_path } };
	struct ag_driver *drv = NULL;
	int rc = ag_driver_load(path, NULL, cfg, 3, &drv, err, sizeof(err));
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	const struct aerogram_driver *d = ag_driver_store(drv)->driver;
	struct aerogram_store *s = ag_driver_store(drv)->store;
	uint64_t counts[AGW_COUNT_SLOTS];
	read_counts(counts_path, counts);
	CU_ASSERT_EQUAL(counts[AGW_ROW_INSERT], 0);
	/* the inner chain (faulty over memory) has CONDITIONAL: so has this */
	CU_ASSERT(d->capabilities & AEROGRAM_CAP_CONDITIONAL);
	CU_ASSERT_EQUAL(write_row(d, s, "cd", "a", "1"), 0);
	CU_ASSERT_EQUAL(write_row(d, s, "cd", "b", "1"), 0);
	struct aerogram_blob_request req[3] = { { .key = "a" }, { .key = "b" }, { .key = "c" } };
	struct aerogram_blob_result *res = NULL;
	CU_ASSERT_EQUAL(d->blob_get(s, req, 3, &res), 0);
	d->blob_result_free(s, res);
	read_counts(counts_path, counts);
	CU_ASSERT_EQUAL(counts[AGW_ROW_INSERT], 2);
	CU_ASSERT_EQUAL(counts[AGW_BLOB_GET], 1);
	CU_ASSERT_EQUAL(counts[AGW_OP_COUNT + AGW_BLOB_GET], 3);
	CU_ASSERT_EQUAL(counts[AGW_ROW_READ], 0);
	/* rows read and their bytes, in the last two slots */
	CU_ASSERT_EQUAL(insert_if(d, s, "cd", NULL, "watch!", NULL), 0);
	struct aerogram_row_query q = { .pk = "cd" };
	struct aerogram_row_result *rr = NULL;
	CU_ASSERT_EQUAL(d->row_read(s, &q, 1, &rr), 0);
	d->row_result_free(s, rr);
	read_counts(counts_path, counts);
	CU_ASSERT_EQUAL(counts[AGW_ROW_INSERT_IF], 1);
	CU_ASSERT_EQUAL(counts[AGW_OP_COUNT + AGW_ROW_INSERT_IF], 1);
	CU_ASSERT_EQUAL(counts[AGW_ROW_READ], 1);
	CU_ASSERT_EQUAL(counts[AGW_SLOT_ROWS_READ], 3);        /* a, b, watch */
	CU_ASSERT_EQUAL(counts[AGW_SLOT_VALUE_BYTES_READ], 8); /* "1", "1", "watch!" */
	ag_driver_unload(drv);

	/* bad configurations are refused with a reason */
	struct aerogram_config_entry bad[1] = { { "inner", "no-such-driver" } };
	CU_ASSERT_NOT_EQUAL(ag_driver_load(path, NULL, bad, 1, &drv, err, sizeof(err)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "aerogram_no-such-driver.so"));
	struct aerogram_config_entry bad2[2] = { { "inner", "memory" }, { "inner_config", "unknown=1" } };
	CU_ASSERT_NOT_EQUAL(ag_driver_load(path, NULL, bad2, 2, &drv, err, sizeof(err)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown"));
	CU_ASSERT_NOT_EQUAL(ag_driver_load(path, NULL, NULL, 0, &drv, err, sizeof(err)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "inner"));
}

static const struct agt_test tests[] = {
	{ "counts per operation", test_counts },
	{ "fail next", test_fail_next },
	{ "fail with a probability", test_fail_probability },
	{ "fail after apply", test_fail_after_apply },
	{ "delay", test_delay },
	{ "inner errors pass through", test_inner_errors_pass_through },
	{ "stacking", test_stacking },
	{ "watches pass through", test_watch_pass_through },
	{ "row_insert_if is forwarded, counted and steered", test_insert_if_forwarded },
	{ "CONDITIONAL is advertised only over a driver that has it", test_conditional_follows_inner },
	{ "hidden capabilities", test_hide_caps },
	{ "the call hook", test_call_hook },
	{ "rows and value bytes read are counted", test_rows_read_counted },
	{ "aerogram_faulty.so and its control file", test_faulty_driver },
	{ "aerogram_counting.so and its counts file", test_counting_driver },
	AGT_END,
};

int main(int argc, char **argv)
{
	agt_init(&argc, &argv);
	driver_dir = agt_arg(argc, argv, "DRIVER_DIR");
	char err[512], path[512];
	snprintf(path, sizeof(path), "%s/aerogram_memory.so", driver_dir);
	if (ag_driver_load(path, NULL, NULL, 0, &mem_drv, err, sizeof(err)) != 0) {
		fprintf(stderr, "test_wrappers: %s\n", err);
		return 2;
	}
	mem = ag_driver_store(mem_drv)->driver;
	mem_store = ag_driver_store(mem_drv)->store;
	agt_tmpdir(tmpdir, sizeof(tmpdir), "agw-test");

	agt_suite("wrappers", NULL, NULL, tests, NULL);
	int failed = agt_run();
	ag_driver_unload(mem_drv);
	agt_rm_rf(tmpdir);
	return failed;
}
