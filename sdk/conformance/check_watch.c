/* check_watch.c - conformance tests of row watches: firing on change and
 * on timeout, NULL tokens, a thousand watches on few threads, release
 * before and while firing, watches started from a callback. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sdk/conformance/check_util.h"

static void watch(const char *pk, const char *sk, const char *token, uint32_t timeout_ms, struct ck_watch_rec *r)
{
	CK_OK("row_watch", ck_driver->row_watch(ck_store, pk, sk, token, timeout_ms, ck_on_watch, r, &r->watch));
	CK_REQUIRE(r->watch != NULL, "row_watch succeeded but returned no watch");
}

/* A watch fires when the row changes, with the row's new state and token. */
static void test_watch_fires_on_change(void)
{
	const char *pk = ck_pk("watch");
	char *t = ck_put(pk, "row", "v1", NULL);
	struct ck_watch_rec *r = ck_watch_rec_new();
	watch(pk, "row", t, CK_WAIT_MS, r);
	ck_sleep_ms(100);
	CK_CHECK(ck_watch_calls(r) == 0, "a watch fired although the row did not change");
	ck_write(pk, "other-row", "x", NULL); /* another row of the partition: no wake-up */
	ck_sleep_ms(50);
	CK_CHECK(ck_watch_calls(r) == 0, "a watch fired on a write to another row");
	ck_write(pk, "row", "v2", t);
	CK_REQUIRE(ck_watch_wait(r, CK_WAIT_MS) == 1, "the watch did not fire after the row changed");
	CK_CHECK(r->status == AEROGRAM_OK, "the watch fired with %s, expected AEROGRAM_OK",
	         ck_status_name(r->status));
	CK_CHECK(!r->from_caller_thread, "the callback ran on the thread that called row_watch");
	CK_REQUIRE(r->has_row, "the callback got no row");
	CK_CHECK(r->n_values == 1 && strcmp(r->first_value, "v2") == 0,
	         "the callback's row must hold the new value v2 (got %zu values, '%s')", r->n_values,
	         r->first_value);
	const struct aerogram_row *now = ck_get(pk, "row", 0);
	CK_CHECK(now && strcmp(now->token, r->token) == 0,
	         "the callback's token must be the row's new token");
	CK_CHECK(strcmp(r->token, t) != 0, "the callback's token is the old token");
	ck_sleep_ms(50);
	CK_CHECK(ck_watch_calls(r) == 1, "a watch must be called back exactly once (got %d)", ck_watch_calls(r));
}

/* A watch that sees no change fires with ETIMEDOUT after its timeout. */
static void test_watch_timeout(void)
{
	const char *pk = ck_pk("timeout");
	char *t = ck_put(pk, "row", "v", NULL);
	struct ck_watch_rec *r = ck_watch_rec_new();
	uint64_t t0 = ck_now_ms();
	watch(pk, "row", t, 300, r);
	CK_REQUIRE(ck_watch_wait(r, CK_WAIT_MS) == 1, "a watch with a 300 ms timeout never fired");
	uint64_t elapsed = ck_now_ms() - t0;
	CK_CHECK(r->status == AEROGRAM_ETIMEDOUT, "the timeout fired with %s, expected AEROGRAM_ETIMEDOUT",
	         ck_status_name(r->status));
	CK_CHECK(!r->has_row, "a timed-out watch must pass no row");
	CK_CHECK(elapsed >= 250, "a 300 ms watch fired after only %llu ms", (unsigned long long)elapsed);

	/* a watch on a row nobody writes times out too */
	struct ck_watch_rec *r2 = ck_watch_rec_new();
	watch(pk, "never-written", NULL, 200, r2);
	CK_REQUIRE(ck_watch_wait(r2, CK_WAIT_MS) == 1, "a watch on a missing row never timed out");
	CK_CHECK(r2->status == AEROGRAM_ETIMEDOUT, "expected AEROGRAM_ETIMEDOUT, got %s",
	         ck_status_name(r2->status));
}

/* With a NULL token a watch fires as soon as the row holds a value: at once
 * for an existing row, on the first write for a missing one. Never from
 * inside row_watch. */
static void test_watch_null_token(void)
{
	const char *pk = ck_pk("nulltoken");
	ck_write(pk, "exists", "here", NULL);
	struct ck_watch_rec *r = ck_watch_rec_new();
	watch(pk, "exists", NULL, CK_WAIT_MS, r);
	CK_REQUIRE(ck_watch_wait(r, CK_WAIT_MS) == 1, "a NULL-token watch on an existing row did not fire");
	CK_CHECK(r->status == AEROGRAM_OK && r->has_row && strcmp(r->first_value, "here") == 0,
	         "a NULL-token watch must report the row's value (status %s)", ck_status_name(r->status));
	CK_CHECK(!r->from_caller_thread, "the callback ran on the thread that called row_watch");

	struct ck_watch_rec *m = ck_watch_rec_new();
	watch(pk, "later", NULL, CK_WAIT_MS, m);
	ck_sleep_ms(100);
	CK_CHECK(ck_watch_calls(m) == 0, "a NULL-token watch on a missing row fired before any write");
	ck_write(pk, "later", "arrived", NULL);
	CK_REQUIRE(ck_watch_wait(m, CK_WAIT_MS) == 1, "a NULL-token watch did not fire on the first write");
	CK_CHECK(m->status == AEROGRAM_OK && strcmp(m->first_value, "arrived") == 0,
	         "the watch must report the first value");
}

/* After release an unfired watch is never called back. */
static void test_watch_release_unfired(void)
{
	const char *pk = ck_pk("release");
	char *t = ck_put(pk, "row", "v", NULL);
	struct ck_watch_rec *r = ck_watch_rec_new();
	watch(pk, "row", t, 150, r);
	ck_driver->row_watch_release(ck_store, r->watch);
	r->watch = NULL;
	ck_write(pk, "row", "changed", NULL);
	ck_sleep_ms(400); /* past the timeout too */
	CK_CHECK(ck_watch_calls(r) == 0, "a released watch was called back %d time(s)", ck_watch_calls(r));
}

/* Release racing with firing: after row_watch_release returns, the callback
 * is not running and never runs. */
#define RACE_ROUNDS 300

struct race_slot {
	pthread_mutex_t lock;
	int released;
	int late_calls;
	int calls;
	int slow;
};

static void on_race(void *arg, int status, const struct aerogram_row *row, const char *message)
{
	(void)status, (void)row, (void)message;
	struct race_slot *s = arg;
	pthread_mutex_lock(&s->lock);
	if (s->released)
		s->late_calls++;
	s->calls++;
	int slow = s->slow;
	pthread_mutex_unlock(&s->lock);
	if (slow) {
		/* stay in the callback while the test thread releases the watch:
		 * the release must wait for us */
		ck_sleep_ms(3);
		pthread_mutex_lock(&s->lock);
		if (s->released)
			s->late_calls++;
		pthread_mutex_unlock(&s->lock);
	}
}

static void free_slots(void *arg)
{
	struct race_slot *slots = arg;
	for (int i = 0; i < RACE_ROUNDS; i++)
		pthread_mutex_destroy(&slots[i].lock);
	free(slots);
}

static void test_watch_release_races_firing(void)
{
	const char *pk = ck_pk("race");
	ck_write(pk, "row", "v", NULL);
	struct race_slot *slots = calloc(RACE_ROUNDS, sizeof(*slots));
	if (slots == NULL)
		CK_FAIL("out of memory in the test runner");
	for (int i = 0; i < RACE_ROUNDS; i++) {
		pthread_mutex_init(&slots[i].lock, NULL);
		slots[i].slow = i % 4 == 1;
	}
	ck_defer(free_slots, slots);
	int fired = 0;
	for (int i = 0; i < RACE_ROUNDS; i++) {
		struct aerogram_watch *w = NULL;
		/* odd: a NULL token on an existing row, due at once; even: a 1 ms
		 * timeout on a row nobody writes */
		int rc = (i % 2) ? ck_driver->row_watch(ck_store, pk, "row", NULL, CK_WAIT_MS, on_race, &slots[i], &w)
		                 : ck_driver->row_watch(ck_store, pk, "missing", NULL, 1, on_race, &slots[i], &w);
		CK_OK("row_watch", rc);
		if (i % 3 == 0)
			ck_sleep_ms(1);
		ck_driver->row_watch_release(ck_store, w);
		pthread_mutex_lock(&slots[i].lock);
		slots[i].released = 1;
		fired += slots[i].calls;
		pthread_mutex_unlock(&slots[i].lock);
	}
	ck_sleep_ms(100);
	int late = 0;
	for (int i = 0; i < RACE_ROUNDS; i++) {
		pthread_mutex_lock(&slots[i].lock);
		late += slots[i].late_calls;
		CK_CHECK(slots[i].calls <= 1, "watch %d was called back %d times", i, slots[i].calls);
		pthread_mutex_unlock(&slots[i].lock);
	}
	CK_CHECK(late == 0, "%d callbacks ran after row_watch_release returned", late);
	printf(" [%d of %d watches fired before release] ", fired, RACE_ROUNDS);
}

/* A thousand watches at once: all fire after writes, and none needs a
 * thread of its own. */
#define MANY 1000

static void test_thousand_watches(void)
{
	const char *pk = ck_pk("many");
	struct aerogram_row_write *w = ck_alloc(MANY * sizeof(*w));
	for (int i = 0; i < MANY; i++) {
		char *sk = ck_fmt("r%04d", i);
		w[i] = (struct aerogram_row_write){ .pk = pk, .sk = sk, .value = (const uint8_t *)"a", .len = 1 };
	}
	ck_write_batch(w, MANY);
	struct aerogram_row_query q = { .pk = pk };
	const struct aerogram_row_page *p = &ck_read(&q, 1)->pages[0];
	CK_REQUIRE(p->n_rows == MANY, "expected %d rows, got %zu", MANY, p->n_rows);
	int threads_before = ck_thread_count();
	struct ck_watch_rec **recs = ck_alloc(MANY * sizeof(*recs));
	for (int i = 0; i < MANY; i++) {
		recs[i] = ck_watch_rec_new();
		watch(pk, p->rows[i].sk, p->rows[i].token, 60000, recs[i]);
	}
	int threads_during = ck_thread_count();
	CK_CHECK(threads_during - threads_before <= 16,
	         "%d watches raised the thread count from %d to %d: a watch must not need a thread",
	         MANY, threads_before, threads_during);
	ck_sleep_ms(50);
	int early = 0;
	for (int i = 0; i < MANY; i++)
		early += ck_watch_calls(recs[i]);
	CK_CHECK(early == 0, "%d watches fired before any write", early);
	for (int i = 0; i < MANY; i++)
		w[i].value = (const uint8_t *)"b";
	ck_write_batch(w, MANY);
	int fired = 0, ok = 0;
	for (int i = 0; i < MANY; i++) {
		fired += ck_watch_wait(recs[i], CK_WAIT_MS) == 1;
		ok += recs[i]->status == AEROGRAM_OK;
	}
	CK_CHECK(fired == MANY, "%d of %d watches fired after the writes", fired, MANY);
	CK_CHECK(ok == MANY, "%d of %d watches fired with AEROGRAM_OK", ok, MANY);
	printf(" [threads: %d before, %d with %d watches] ", threads_before, threads_during, MANY);
}

/* A callback may start a new watch. */
static void test_watch_from_callback(void)
{
	const char *pk = ck_pk("fromcb");
	ck_write(pk, "a", "1", NULL);
	ck_write(pk, "b", "2", NULL);
	struct ck_watch_rec *r = ck_watch_rec_new();
	r->start_from_cb = 1;
	r->cb_pk = pk;
	r->cb_sk = "b";
	watch(pk, "a", NULL, CK_WAIT_MS, r);
	CK_REQUIRE(ck_watch_wait(r, CK_WAIT_MS) == 1, "the first watch did not fire");
	pthread_mutex_lock(&r->lock);
	struct ck_watch_rec *c = r->child;
	int child_rc = r->child_rc;
	pthread_mutex_unlock(&r->lock);
	CK_REQUIRE(c != NULL, "the callback could not start its watch");
	ck_ok_at(child_rc, "row_watch from inside a callback", __FILE__, __LINE__);
	CK_REQUIRE(ck_watch_wait(c, CK_WAIT_MS) == 1, "a watch started from a callback did not fire");
	CK_CHECK(c->status == AEROGRAM_OK && strcmp(c->first_value, "2") == 0,
	         "the watch started from a callback reported the wrong row");
}

/* Malformed watch requests are refused. */
static void test_watch_errors(void)
{
	const char *pk = ck_pk("watcherr");
	struct aerogram_watch *w = NULL;
	int rc = ck_driver->row_watch(ck_store, pk, "row", "not a token", 1000, ck_on_watch, NULL, &w);
	CK_EXPECT("row_watch with a malformed token", rc, AEROGRAM_EINVAL);
	if (rc == 0 && w)
		ck_driver->row_watch_release(ck_store, w);
	w = NULL;
	rc = ck_driver->row_watch(ck_store, pk, "", NULL, 1000, ck_on_watch, NULL, &w);
	CK_EXPECT("row_watch of an empty sort key", rc, AEROGRAM_EINVAL);
	if (rc == 0 && w)
		ck_driver->row_watch_release(ck_store, w);
}

int ck_register_watches(void)
{
	static const struct ck_test tests[] = {
		{ "watch fires on change with the new token", test_watch_fires_on_change },
		{ "watch times out", test_watch_timeout },
		{ "NULL-token watch", test_watch_null_token },
		{ "released watch never calls back", test_watch_release_unfired },
		{ "release racing with firing", test_watch_release_races_firing },
		{ "1000 watches on few threads", test_thousand_watches },
		{ "watch started from a callback", test_watch_from_callback },
		{ "malformed watch requests", test_watch_errors },
	};
	return ck_add_suite("watches", tests, sizeof(tests) / sizeof(tests[0]));
}
