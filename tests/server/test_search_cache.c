/* test_search_cache.c - the search cache: keys, the memory bound, LRU
 * order, replacement, the header names a shelf keeps, and concurrent use. */
#include <CUnit/Basic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/search_cache.h"
#include "tests/lib/cu_main.h"
#include "tests/server/test_search_cache.h"

static const char *const all_names[] = { "from", "to", "cc", "bcc", "subject" };

/* Facts of a small message from `from`. */
static struct search_facts facts_of(const char *from)
{
	char header[256];
	snprintf(header, sizeof(header), "From: %s\r\nSubject: hello\r\n\r\n", from);
	struct search_facts f = { .internal_date_ms = 1000 };
	f.fields = search_fields_extract(header, strlen(header), all_names, 5);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f.fields);
	return f;
}

/* A message id: 32 hex digits made from n. */
static const char *msg_id(unsigned n, char out[33])
{
	snprintf(out, 33, "%032x", n);
	return out;
}

static int has_from(struct search_cache *c, struct search_shelf *sh, unsigned n, const char *who)
{
	char id[33];
	search_cache_lock(c);
	const struct search_facts *f = search_cache_get(c, sh, msg_id(n, id));
	int found = 0;
	if (f != NULL) {
		const struct search_field *from = search_fields_find(f->fields, "from", 4);
		found = from != NULL && search_field_contains(f->fields, from, who, strlen(who));
	}
	search_cache_unlock(c);
	return found;
}

static int cached(struct search_cache *c, struct search_shelf *sh, unsigned n)
{
	char id[33];
	search_cache_lock(c);
	int found = search_cache_get(c, sh, msg_id(n, id)) != NULL;
	search_cache_unlock(c);
	return found;
}

static void test_keys(void)
{
	struct search_cache *c = search_cache_new(1 << 20);
	struct search_names *names = NULL;
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	struct search_shelf *a = search_cache_open(c, "alice", "0123456789abcdef0123456789abcdef", NULL, 0, &names);
	free(names);
	struct search_shelf *b = search_cache_open(c, "alice", "fedcba9876543210fedcba9876543210", NULL, 0, &names);
	free(names);
	struct search_shelf *u = search_cache_open(c, "bob", "0123456789abcdef0123456789abcdef", NULL, 0, &names);
	free(names);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_PTR_NOT_NULL_FATAL(u);
	CU_ASSERT_TRUE(a != b && a != u);
	char id[33];
	struct search_facts f = facts_of("carol");
	search_cache_put(c, a, msg_id(7, id), &f);
	CU_ASSERT_PTR_NULL(f.fields); /* the cache owns them now */
	f = facts_of("dave");
	search_cache_put(c, u, msg_id(7, id), &f);
	/* one message id, three (user, mailbox) pairs */
	CU_ASSERT_TRUE(has_from(c, a, 7, "carol"));
	CU_ASSERT_FALSE(cached(c, b, 7));
	CU_ASSERT_TRUE(has_from(c, u, 7, "dave"));
	CU_ASSERT_FALSE(cached(c, a, 8));
	/* what is not a 32-hex-digit id is neither kept nor found */
	f = facts_of("eve");
	search_cache_put(c, a, "not-an-id", &f);
	CU_ASSERT_PTR_NULL(f.fields);
	search_cache_lock(c);
	CU_ASSERT_PTR_NULL(search_cache_get(c, a, "not-an-id"));
	search_cache_unlock(c);
	struct search_cache_stats st;
	search_cache_get_stats(c, &st);
	CU_ASSERT_EQUAL(st.entries, 2);
	CU_ASSERT_EQUAL(st.hits, 2);
	CU_ASSERT_EQUAL(st.misses, 2);
	/* a shelf reopened is the same one while it holds entries */
	struct search_shelf *again = search_cache_open(c, "alice", "0123456789abcdef0123456789abcdef", NULL, 0,
						       &names);
	free(names);
	CU_ASSERT_PTR_EQUAL(again, a);
	search_cache_close(c, again);
	search_cache_close(c, a);
	search_cache_close(c, b);
	search_cache_close(c, u);
	search_cache_free(c);
}

static void test_replace(void)
{
	struct search_cache *c = search_cache_new(1 << 20);
	struct search_names *names = NULL;
	struct search_shelf *sh = search_cache_open(c, "u", "0123456789abcdef0123456789abcdef", NULL, 0, &names);
	free(names);
	CU_ASSERT_PTR_NOT_NULL_FATAL(sh);
	char id[33];
	struct search_facts f = facts_of("carol");
	f.has_vsize = 1;
	f.vsize = 1234;
	search_cache_put(c, sh, msg_id(1, id), &f);
	f = facts_of("carol again");
	search_cache_put(c, sh, msg_id(1, id), &f);
	struct search_cache_stats st;
	search_cache_get_stats(c, &st);
	CU_ASSERT_EQUAL(st.entries, 1);
	CU_ASSERT_TRUE(has_from(c, sh, 1, "again"));
	/* the size learnt before stays: a summary never changes */
	search_cache_lock(c);
	const struct search_facts *got = search_cache_get(c, sh, msg_id(1, id));
	CU_ASSERT_TRUE(got->has_vsize);
	CU_ASSERT_EQUAL(got->vsize, 1234);
	search_cache_unlock(c);
	search_cache_close(c, sh);
	search_cache_free(c);
}

static void test_bound_and_lru(void)
{
	const size_t bound = 64 << 10;
	struct search_cache *c = search_cache_new(bound);
	struct search_names *names = NULL;
	struct search_shelf *sh = search_cache_open(c, "u", "0123456789abcdef0123456789abcdef", NULL, 0, &names);
	free(names);
	CU_ASSERT_PTR_NOT_NULL_FATAL(sh);
	char id[33], who[32];
	struct search_cache_stats st;
	for (unsigned i = 0; i < 2000; i++) {
		snprintf(who, sizeof(who), "sender%u", i);
		struct search_facts f = facts_of(who);
		search_cache_put(c, sh, msg_id(i, id), &f);
		if (i >= 1)
			CU_ASSERT_TRUE(cached(c, sh, 0)); /* used after each put: never the oldest */
		search_cache_get_stats(c, &st);
		CU_ASSERT_TRUE(st.bytes <= bound);
	}
	search_cache_get_stats(c, &st);
	CU_ASSERT_TRUE(st.evictions > 0);
	CU_ASSERT_TRUE(st.entries > 10 && st.entries < 2000);
	/* the newest are there, the oldest (but message 0) went */
	CU_ASSERT_TRUE(has_from(c, sh, 1999, "sender1999"));
	CU_ASSERT_TRUE(has_from(c, sh, 0, "sender0"));
	CU_ASSERT_FALSE(cached(c, sh, 1));
	CU_ASSERT_FALSE(cached(c, sh, 2000 - (unsigned)st.entries));
	CU_ASSERT_TRUE(cached(c, sh, 2000 - (unsigned)st.entries + 1));
	search_cache_close(c, sh);
	search_cache_free(c);
}

static int has_name(const struct search_names *n, const char *name)
{
	for (size_t i = 0; i < n->count; i++)
		if (strcmp(n->name[i], name) == 0)
			return 1;
	return 0;
}

static void test_names(void)
{
	struct search_cache *c = search_cache_new(1 << 20);
	struct search_names *names = NULL;
	const char *mid[] = { "message-id", "from" SEARCH_FIELD_ADDRESS };
	struct search_shelf *sh = search_cache_open(c, "u", "0123456789abcdef0123456789abcdef", mid, 2, &names);
	CU_ASSERT_PTR_NOT_NULL_FATAL(sh);
	CU_ASSERT_EQUAL(names->count, 6); /* the five and message-id, each once */
	CU_ASSERT_TRUE(has_name(names, "subject" SEARCH_FIELD_LWSP));
	CU_ASSERT_TRUE(has_name(names, "message-id"));
	free(names);
	/* a later search of the mailbox extracts message-id too */
	struct search_shelf *again = search_cache_open(c, "u", "0123456789abcdef0123456789abcdef", NULL, 0, &names);
	CU_ASSERT_TRUE(has_name(names, "message-id"));
	free(names);
	search_cache_close(c, again);
	/* the shelf keeps the most recent SEARCH_CACHE_EXTRA_NAMES; a search
	 * always extracts its own */
	char buf[SEARCH_CACHE_EXTRA_NAMES][16];
	const char *many[SEARCH_CACHE_EXTRA_NAMES];
	for (int i = 0; i < SEARCH_CACHE_EXTRA_NAMES; i++) {
		snprintf(buf[i], sizeof(buf[i]), "x-name-%d", i);
		many[i] = buf[i];
	}
	again = search_cache_open(c, "u", "0123456789abcdef0123456789abcdef", many, SEARCH_CACHE_EXTRA_NAMES,
				  &names);
	CU_ASSERT_EQUAL(names->count, 5 + SEARCH_CACHE_EXTRA_NAMES);
	CU_ASSERT_FALSE(has_name(names, "message-id"));
	CU_ASSERT_TRUE(has_name(names, "x-name-0"));
	free(names);
	search_cache_close(c, again);
	/* another mailbox has its own names */
	again = search_cache_open(c, "u", "fedcba9876543210fedcba9876543210", NULL, 0, &names);
	CU_ASSERT_EQUAL(names->count, 5);
	free(names);
	search_cache_close(c, again);
	search_cache_close(c, sh);
	search_cache_free(c);
}

struct worker_arg {
	struct search_cache *cache;
	unsigned thread;
	int failures;
};

static void *worker(void *p)
{
	struct worker_arg *a = p;
	char mbox[33], id[33], who[32];
	struct search_names *names = NULL;
	snprintf(mbox, sizeof(mbox), "%032x", a->thread % 2);
	struct search_shelf *sh = search_cache_open(a->cache, "u", mbox, NULL, 0, &names);
	free(names);
	if (sh == NULL) {
		a->failures++;
		return NULL;
	}
	for (unsigned i = 0; i < 3000; i++) {
		unsigned n = (i * 7919u + a->thread) % 500;
		snprintf(who, sizeof(who), "sender%u", n);
		search_cache_lock(a->cache);
		const struct search_facts *f = search_cache_get(a->cache, sh, msg_id(n, id));
		/* whatever thread put it, it is this message's */
		if (f != NULL) {
			const struct search_field *from = search_fields_find(f->fields, "from", 4);
			if (from == NULL || !search_field_contains(f->fields, from, who, strlen(who)))
				a->failures++;
		}
		search_cache_unlock(a->cache);
		if (f == NULL) {
			struct search_facts nf = facts_of(who);
			search_cache_put(a->cache, sh, id, &nf);
		}
	}
	search_cache_close(a->cache, sh);
	return NULL;
}

static void test_threads(void)
{
	const size_t bound = 32 << 10; /* small: evictions all the time */
	struct search_cache *c = search_cache_new(bound);
	pthread_t t[4];
	struct worker_arg args[4];
	for (unsigned i = 0; i < 4; i++) {
		args[i] = (struct worker_arg){ c, i, 0 };
		CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, worker, &args[i]), 0);
	}
	for (unsigned i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		CU_ASSERT_EQUAL(args[i].failures, 0);
	}
	struct search_cache_stats st;
	search_cache_get_stats(c, &st);
	CU_ASSERT_TRUE(st.bytes <= bound);
	CU_ASSERT_TRUE(st.evictions > 0);
	search_cache_free(c);
}

static const struct agt_test tests[] = {
	{ "keyed by user, mailbox and message", test_keys },
	{ "a second put replaces", test_replace },
	{ "memory bound, least recently used out first", test_bound_and_lru },
	{ "header names of a shelf", test_names },
	{ "threads", test_threads },
	AGT_END,
};

void search_cache_tests_add(void)
{
	agt_suite("search cache", NULL, NULL, tests, NULL);
}
