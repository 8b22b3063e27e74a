/* test_caches.c - the engine's in-memory caches on their own: the body
 * cache (bcache.c) keeps what fits its budget, least recently used out. */
#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

#include "host/mail/mail_internal.h"
#include "tests/lib/cu_main.h"

/* 1 when key is cached with exactly `want` as its bytes. */
static int cached(struct bcache *c, const char *key, const char *want)
{
	uint8_t *data = NULL;
	size_t len = 0;
	if (!bcache_get(c, key, &data, &len))
		return 0;
	int same = len == strlen(want) && memcmp(data, want, len) == 0;
	free(data);
	return same;
}

static void test_bcache_hits_and_misses(void)
{
	struct bcache *c = bcache_new(1 << 20);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_FALSE(cached(c, "u/mail/a/1", "one"));
	bcache_put(c, "u/mail/a/1", (const uint8_t *)"one", 3);
	bcache_put(c, "u/mail/a/2", (const uint8_t *)"two", 3);
	CU_ASSERT_TRUE(cached(c, "u/mail/a/1", "one"));
	CU_ASSERT_TRUE(cached(c, "u/mail/a/2", "two"));
	CU_ASSERT_FALSE(cached(c, "u/mail/a/3", "one"));
	/* a second put of a key keeps the first bytes (a body never changes) */
	bcache_put(c, "u/mail/a/1", (const uint8_t *)"uno", 3);
	CU_ASSERT_TRUE(cached(c, "u/mail/a/1", "one"));
	/* an empty body is a body */
	bcache_put(c, "u/mail/a/4", (const uint8_t *)"", 0);
	CU_ASSERT_TRUE(cached(c, "u/mail/a/4", ""));
	bcache_free(c);
	/* no cache at all: every get misses, puts are ignored */
	bcache_put(NULL, "k", (const uint8_t *)"x", 1);
	CU_ASSERT_FALSE(cached(NULL, "k", "x"));
}

static void test_bcache_budget(void)
{
	/* 500-byte bodies, each costing a little more (its key and node): seven
	 * fit in 4,400 bytes, eight do not */
	struct bcache *c = bcache_new(4400);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	char bodies[8][501];
	char key[32];
	for (int i = 0; i < 8; i++) {
		memset(bodies[i], 'a' + i, 500);
		bodies[i][500] = '\0';
	}
	for (int i = 0; i < 7; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		bcache_put(c, key, (const uint8_t *)bodies[i], 500);
	}
	for (int i = 0; i < 7; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		CU_ASSERT_TRUE(cached(c, key, bodies[i]));
	}
	/* k0 used last: k1 is now the least recently used, and goes */
	CU_ASSERT_TRUE(cached(c, "k0", bodies[0]));
	bcache_put(c, "k7", (const uint8_t *)bodies[7], 500);
	CU_ASSERT_TRUE(cached(c, "k7", bodies[7]));
	CU_ASSERT_TRUE(cached(c, "k0", bodies[0]));
	CU_ASSERT_FALSE(cached(c, "k1", bodies[1]));
	for (int i = 2; i < 7; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		CU_ASSERT_TRUE(cached(c, key, bodies[i]));
	}
	/* a body over an eighth of the budget is never kept, and evicts nothing */
	char big[600];
	memset(big, 'y', sizeof(big));
	bcache_put(c, "big", (const uint8_t *)big, sizeof(big));
	uint8_t *data = NULL;
	size_t len = 0;
	CU_ASSERT_FALSE(bcache_get(c, "big", &data, &len));
	for (int i = 2; i < 8; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		CU_ASSERT_TRUE(cached(c, key, bodies[i]));
	}
	bcache_free(c);
}

static const struct agt_test tests[] = {
	{ "body cache: hits, misses, first bytes kept", test_bcache_hits_and_misses },
	{ "body cache: the budget, least recently used out", test_bcache_budget },
	AGT_END,
};

int main(int argc, char **argv)
{
	agt_init(&argc, &argv);
	agt_suite("caches", NULL, NULL, tests, NULL);
	return agt_run();
}
