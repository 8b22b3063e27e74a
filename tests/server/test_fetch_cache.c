/* test_fetch_cache.c - host/fetch_cache.c: hits and misses, texts equal to
 * what the writers produce, keys that never mix two messages, eviction under
 * the byte budget (least recently used first), entries that outlive their
 * eviction while in use, and many threads at once. */
#include <CUnit/Basic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/fetch_cache.h"
#include "protocol/agbuf.h"
#include "protocol/bodystructure.h"
#include "protocol/envelope.h"
#include "protocol/mime.h"
#include "tests/lib/cu_main.h"

/* A small message whose ENVELOPE names `tag` (so texts tell messages apart). */
static struct mime_message *message(const char *tag, int multipart)
{
	char text[1024];
	if (multipart)
		snprintf(text, sizeof(text),
		         "From: %s <%s@example.org>\r\nSubject: %s\r\nMIME-Version: 1.0\r\n"
		         "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b\r\n"
		         "Content-Type: text/html\r\n\r\n<p>two</p>\r\n--b--\r\n",
		         tag, tag, tag);
	else
		snprintf(text, sizeof(text), "From: %s <%s@example.org>\r\nSubject: %s\r\n\r\nbody of %s\r\n", tag,
		         tag, tag, tag);
	struct mime_message *msg = mime_parse(text, strlen(text));
	CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
	return msg;
}

/* The entry's texts are exactly the writers' output for `msg`. */
static void assert_texts(const struct ag_fetch_entry *e, const struct mime_message *msg)
{
	struct agbuf want = AGBUF_INIT;
	envelope_write_message(&want, msg);
	CU_ASSERT_EQUAL(e->envelope_len, want.len);
	CU_ASSERT(e->envelope_len == want.len && memcmp(e->envelope, want.data, want.len) == 0);
	agbuf_reset(&want);
	bodystructure_write(&want, msg->root, 0);
	CU_ASSERT(e->body_len == want.len && memcmp(e->body, want.data, want.len) == 0);
	agbuf_reset(&want);
	bodystructure_write(&want, msg->root, 1);
	CU_ASSERT(e->bodystructure_len == want.len && memcmp(e->bodystructure, want.data, want.len) == 0);
	agbuf_free(&want);
	CU_ASSERT_EQUAL(e->skeleton->vsize, msg->vsize);
	CU_ASSERT_EQUAL(e->skeleton->size, msg->size);
	CU_ASSERT_EQUAL(mime_part_count(e->skeleton->root), mime_part_count(msg->root));
}

/* Does the entry's ENVELOPE carry `tag` as its subject? */
static int envelope_names(const struct ag_fetch_entry *e, const char *tag)
{
	char want[128];
	snprintf(want, sizeof(want), "(NIL \"%s\" ", tag);
	return e->envelope_len > strlen(want) && memcmp(e->envelope, want, strlen(want)) == 0;
}

static void test_miss_then_hit(void)
{
	struct ag_fetch_cache *c = ag_fetch_cache_new(1 << 20);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	struct ag_fetch_cache_stats st;
	CU_ASSERT_PTR_NULL(ag_fetch_cache_get(c, "alice", "mb1", "m1"));
	struct mime_message *msg = message("one", 1);
	const struct ag_fetch_entry *put = ag_fetch_cache_put(c, "alice", "mb1", "m1", msg, 1234567890123u);
	CU_ASSERT_PTR_NOT_NULL_FATAL(put);
	assert_texts(put, msg);
	CU_ASSERT_EQUAL(put->internal_date_ms, 1234567890123u);
	const struct ag_fetch_entry *got = ag_fetch_cache_get(c, "alice", "mb1", "m1");
	CU_ASSERT_PTR_EQUAL(got, put);
	ag_fetch_cache_get_stats(c, &st);
	CU_ASSERT_EQUAL(st.hits, 1);
	CU_ASSERT_EQUAL(st.misses, 1);
	CU_ASSERT_EQUAL(st.entries, 1);
	CU_ASSERT(st.bytes > 0 && st.bytes <= st.budget);
	/* A second put of the same message shares the stored entry. */
	const struct ag_fetch_entry *again = ag_fetch_cache_put(c, "alice", "mb1", "m1", msg, 0);
	CU_ASSERT_PTR_EQUAL(again, put);
	ag_fetch_cache_get_stats(c, &st);
	CU_ASSERT_EQUAL(st.entries, 1);
	ag_fetch_cache_release(c, again);
	ag_fetch_cache_release(c, got);
	ag_fetch_cache_release(c, put);
	mime_free(msg);
	ag_fetch_cache_free(c);
}

static void test_keys_never_mix(void)
{
	/* Every pair differs in one component, or only in where the
	 * components split ("ab"+"c" against "a"+"bc"). */
	static const char *const keys[][3] = {
		{ "alice", "mb1", "m1" }, { "alice", "mb1", "m2" }, { "alice", "mb2", "m1" },
		{ "bob", "mb1", "m1" },   { "ab", "c", "d" },       { "a", "bc", "d" },
		{ "a", "b", "cd" },       { "", "abc", "d" },       { "abcd", "", "" },
	};
	size_t n = sizeof(keys) / sizeof(keys[0]);
	struct ag_fetch_cache *c = ag_fetch_cache_new(1 << 20);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	for (size_t i = 0; i < n; i++) {
		char tag[16];
		snprintf(tag, sizeof(tag), "msg%zu", i);
		struct mime_message *msg = message(tag, (int)(i % 2));
		ag_fetch_cache_release(c, ag_fetch_cache_put(c, keys[i][0], keys[i][1], keys[i][2], msg, 0));
		mime_free(msg);
	}
	for (size_t i = 0; i < n; i++) {
		char tag[16];
		snprintf(tag, sizeof(tag), "msg%zu", i);
		const struct ag_fetch_entry *e = ag_fetch_cache_get(c, keys[i][0], keys[i][1], keys[i][2]);
		CU_ASSERT_PTR_NOT_NULL_FATAL(e);
		CU_ASSERT(envelope_names(e, tag));
		CU_ASSERT_EQUAL(mime_part_count(e->skeleton->root), i % 2 ? 3u : 1u);
		ag_fetch_cache_release(c, e);
	}
	CU_ASSERT_PTR_NULL(ag_fetch_cache_get(c, "alice", "mb2", "m2"));
	CU_ASSERT_PTR_NULL(ag_fetch_cache_get(c, "abc", "", "d"));
	ag_fetch_cache_free(c);
}

/* Bytes one stored entry of message("kNN", 0) takes. */
static size_t entry_cost(void)
{
	struct ag_fetch_cache *c = ag_fetch_cache_new(1 << 20);
	struct mime_message *msg = message("k00", 0);
	ag_fetch_cache_release(c, ag_fetch_cache_put(c, "u", "mb", "k00", msg, 0));
	struct ag_fetch_cache_stats st;
	ag_fetch_cache_get_stats(c, &st);
	mime_free(msg);
	ag_fetch_cache_free(c);
	return st.bytes;
}

static void put_tagged(struct ag_fetch_cache *c, int i)
{
	char tag[16];
	snprintf(tag, sizeof(tag), "k%02d", i);
	struct mime_message *msg = message(tag, 0);
	const struct ag_fetch_entry *e = ag_fetch_cache_put(c, "u", "mb", tag, msg, 0);
	CU_ASSERT_PTR_NOT_NULL(e);
	ag_fetch_cache_release(c, e);
	mime_free(msg);
}

static int present(struct ag_fetch_cache *c, int i)
{
	char tag[16];
	snprintf(tag, sizeof(tag), "k%02d", i);
	const struct ag_fetch_entry *e = ag_fetch_cache_get(c, "u", "mb", tag);
	if (e != NULL)
		CU_ASSERT(envelope_names(e, tag));
	ag_fetch_cache_release(c, e);
	return e != NULL;
}

static void test_eviction_under_budget(void)
{
	size_t cost = entry_cost();
	CU_ASSERT_FATAL(cost > 500);
	/* Room for three entries and a half (the keys "k00".."k19" all have
	 * the same length, so every entry costs the same). */
	struct ag_fetch_cache *c = ag_fetch_cache_new(3 * cost + cost / 2);
	struct ag_fetch_cache_stats st;
	for (int i = 0; i < 3; i++)
		put_tagged(c, i);
	ag_fetch_cache_get_stats(c, &st);
	CU_ASSERT_EQUAL(st.entries, 3);
	CU_ASSERT_EQUAL(st.evictions, 0);
	/* k00 used again: k01 is now the least recently used and goes first. */
	CU_ASSERT(present(c, 0));
	put_tagged(c, 3);
	CU_ASSERT(!present(c, 1));
	CU_ASSERT(present(c, 0));
	CU_ASSERT(present(c, 2));
	CU_ASSERT(present(c, 3));
	for (int i = 4; i < 20; i++) {
		put_tagged(c, i);
		ag_fetch_cache_get_stats(c, &st);
		CU_ASSERT(st.bytes <= st.budget);
		CU_ASSERT_EQUAL(st.entries, 3);
	}
	ag_fetch_cache_get_stats(c, &st);
	CU_ASSERT_EQUAL(st.evictions, 17);
	CU_ASSERT(present(c, 17) && present(c, 18) && present(c, 19));
	CU_ASSERT(!present(c, 16));
	ag_fetch_cache_free(c);
}

static void test_entry_outlives_eviction(void)
{
	size_t cost = entry_cost();
	struct ag_fetch_cache *c = ag_fetch_cache_new(cost);
	struct mime_message *msg = message("k00", 0);
	const struct ag_fetch_entry *held = ag_fetch_cache_put(c, "u", "mb", "k00", msg, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(held);
	put_tagged(c, 1); /* evicts k00 while it is held */
	CU_ASSERT(!present(c, 0));
	CU_ASSERT(present(c, 1));
	/* Still whole (under ASan, a use after free would stop the test here). */
	assert_texts(held, msg);
	ag_fetch_cache_release(c, held);
	mime_free(msg);
	ag_fetch_cache_free(c);
}

static void test_too_big_for_budget(void)
{
	struct ag_fetch_cache *c = ag_fetch_cache_new(100);
	struct mime_message *msg = message("big", 1);
	const struct ag_fetch_entry *e = ag_fetch_cache_put(c, "u", "mb", "big", msg, 0);
	/* Usable once, not stored. */
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	assert_texts(e, msg);
	ag_fetch_cache_release(c, e);
	CU_ASSERT_PTR_NULL(ag_fetch_cache_get(c, "u", "mb", "big"));
	struct ag_fetch_cache_stats st;
	ag_fetch_cache_get_stats(c, &st);
	CU_ASSERT_EQUAL(st.entries, 0);
	CU_ASSERT_EQUAL(st.bytes, 0);
	mime_free(msg);
	ag_fetch_cache_free(c);
}

/* Threads taking and storing entries of 64 messages in a cache that holds
 * about 16: every entry a thread gets must be the one of its key. */
#define THREADS 4
#define ROUNDS 3000
#define KEYS 64

struct worker {
	struct ag_fetch_cache *cache;
	struct mime_message **msgs;
	unsigned seed;
	int wrong;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	for (int r = 0; r < ROUNDS; r++) {
		w->seed = w->seed * 1103515245u + 12345u;
		unsigned k = (w->seed >> 16) % KEYS;
		char id[16], tag[16];
		snprintf(id, sizeof(id), "id%u", k);
		snprintf(tag, sizeof(tag), "t%02u", k);
		const struct ag_fetch_entry *e = ag_fetch_cache_get(w->cache, "u", "mb", id);
		if (e == NULL)
			e = ag_fetch_cache_put(w->cache, "u", "mb", id, w->msgs[k], 0);
		if (e == NULL || !envelope_names(e, tag))
			w->wrong++;
		ag_fetch_cache_release(w->cache, e);
	}
	return NULL;
}

static void test_threads(void)
{
	struct mime_message *msgs[KEYS];
	for (unsigned k = 0; k < KEYS; k++) {
		char tag[16];
		snprintf(tag, sizeof(tag), "t%02u", k);
		msgs[k] = message(tag, 0);
	}
	struct ag_fetch_cache *c = ag_fetch_cache_new(16 * entry_cost());
	struct worker w[THREADS];
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ .cache = c, .msgs = msgs, .seed = (unsigned)i * 7919u + 1u };
		CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		CU_ASSERT_EQUAL(w[i].wrong, 0);
	}
	struct ag_fetch_cache_stats st;
	ag_fetch_cache_get_stats(c, &st);
	CU_ASSERT(st.bytes <= st.budget);
	CU_ASSERT(st.entries <= 16);
	CU_ASSERT_EQUAL(st.hits + st.misses, (uint64_t)THREADS * ROUNDS);
	CU_ASSERT(st.evictions > 0);
	ag_fetch_cache_free(c);
	for (unsigned k = 0; k < KEYS; k++)
		mime_free(msgs[k]);
}

static void test_global(void)
{
	struct ag_fetch_cache *g = ag_fetch_cache_global();
	CU_ASSERT_PTR_NOT_NULL_FATAL(g);
	CU_ASSERT_PTR_EQUAL(ag_fetch_cache_global(), g);
	struct ag_fetch_cache_stats st;
	ag_fetch_cache_get_stats(g, &st);
	CU_ASSERT_EQUAL(st.budget, AG_FETCH_CACHE_DEFAULT_BYTES);
}

static const struct agt_test tests[] = {
	{ "miss, then hit", test_miss_then_hit },
	{ "keys never mix two messages", test_keys_never_mix },
	{ "eviction under the budget, unused entries first", test_eviction_under_budget },
	{ "an entry in use outlives its eviction", test_entry_outlives_eviction },
	{ "an entry over the budget is not stored", test_too_big_for_budget },
	{ "threads at once", test_threads },
	{ "the process-wide cache", test_global },
	AGT_END,
};

int main(int argc, char **argv)
{
	agt_init(&argc, &argv);
	agt_suite("fetch cache", NULL, NULL, tests, NULL);
	return agt_run();
}
