/* test_list_match.c - LIST patterns (host/list_match.c): the same answers as
 * the plain recursive definition of RFC 3501 6.3.8, on every small case and
 * random ones, and bounded time on the inputs that made backtracking blow up. */
#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host/list_match.h"
#include "tests/lib/cu_main.h"

/* The definition, exponential in the worst case: only for short inputs. */
static int reference(const char *p, const char *n)
{
	if (*p == '\0')
		return *n == '\0';
	if (*p == '*' || *p == '%') {
		for (const char *k = n;; k++) {
			if (reference(p + 1, k))
				return 1;
			if (*k == '\0' || (*p == '%' && *k == '.'))
				return 0;
		}
	}
	return *n != '\0' && *p == *n && reference(p + 1, n + 1);
}

static int match(const char *pattern, const char *name)
{
	struct ag_list_pattern p;
	CU_ASSERT_EQUAL_FATAL(ag_list_pattern_init(&p, pattern, strlen(pattern)), 0);
	int hit = ag_list_match(&p, name, '.');
	ag_list_pattern_free(&p);
	return hit;
}

static void test_examples(void)
{
	CU_ASSERT_TRUE(match("*", ""));
	CU_ASSERT_TRUE(match("%", ""));
	CU_ASSERT_TRUE(match("", ""));
	CU_ASSERT_FALSE(match("", "a"));
	CU_ASSERT_TRUE(match("*", "a.b.c"));
	CU_ASSERT_FALSE(match("%", "a.b"));
	CU_ASSERT_TRUE(match("%", "abc"));
	CU_ASSERT_TRUE(match("a.%", "a.b"));
	CU_ASSERT_FALSE(match("a.%", "a.b.c"));
	CU_ASSERT_TRUE(match("a.*", "a.b.c"));
	CU_ASSERT_TRUE(match("%.%", "a.b"));
	CU_ASSERT_TRUE(match("%*%", "a.b"));   /* a run with '*' is '*' */
	CU_ASSERT_FALSE(match("%%", "a.b"));   /* ... without, '%' */
	CU_ASSERT_TRUE(match("INBOX", "INBOX"));
	CU_ASSERT_FALSE(match("INBOX", "INBOX.x"));
	CU_ASSERT_TRUE(match("*x", "abx"));
	CU_ASSERT_FALSE(match("*x", "abxy"));
	CU_ASSERT_TRUE(match("a%b%c", "aXbYc"));
	CU_ASSERT_FALSE(match("a%c", "a.c"));
}

/* The index-th of the base^len strings of length len over alpha. */
static void nth_string(char *out, const char *alpha, int base, int len, int index)
{
	for (int i = 0; i < len; i++, index /= base)
		out[i] = alpha[index % base];
	out[len] = '\0';
}

static int power(int base, int e)
{
	int n = 1;
	while (e-- > 0)
		n *= base;
	return n;
}

/* A string of len random characters of alpha. */
static void random_string(char *out, const char *alpha, int len)
{
	int base = (int)strlen(alpha);
	for (int i = 0; i < len; i++)
		out[i] = alpha[rand() % base];
	out[len] = '\0';
}

/* Every pattern up to 5 characters over {a, ., *, %} against every name up
 * to 5 characters over {a, b, .}, then random longer ones. */
static void test_against_reference(void)
{
	char p[8], n[8];
	for (int pl = 0; pl <= 5; pl++) {
		for (int pi = 0; pi < power(4, pl); pi++) {
			nth_string(p, "a.*%", 4, pl, pi);
			for (int nl = 0; nl <= 5; nl++) {
				for (int ni = 0; ni < power(3, nl); ni++) {
					nth_string(n, "ab.", 3, nl, ni);
					if (match(p, n) != reference(p, n)) {
						CU_FAIL("differs from the definition");
						fprintf(stderr, "pattern '%s' name '%s'\n", p, n);
						return;
					}
				}
			}
		}
	}
	srand(12);
	for (int k = 0; k < 20000; k++) {
		char lp[16], ln[16];
		int pl = rand() % 15, nl = rand() % 15;
		random_string(lp, "ab.*%", pl);
		random_string(ln, "ab.", nl);
		CU_ASSERT_EQUAL(match(lp, ln), reference(lp, ln));
	}
}

/* "*a*a*a*ab" against 1,000 'a' took 84 s by backtracking; and the longest
 * pattern a command line carries against the longest name. */
static void test_bounded_time(void)
{
	char name[1001];
	memset(name, 'a', 1000);
	name[1000] = '\0';
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CU_ASSERT_FALSE(match("*a*a*a*ab", name));
	CU_ASSERT_TRUE(match("*a*a*a*a", name));
	CU_ASSERT_FALSE(match("%a%a%a%ab", name));
	size_t plen = 65536;
	char *pattern = malloc(plen + 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pattern);
	for (size_t i = 0; i < plen; i++)
		pattern[i] = i % 2 ? 'a' : '*';
	pattern[plen] = '\0';
	CU_ASSERT_FALSE(match(pattern, name)); /* more literals than the name has */
	for (size_t i = 0; i < plen; i++)
		pattern[i] = i % 500 == 499 ? 'a' : '*';
	CU_ASSERT_TRUE(match(pattern, name));
	free(pattern);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	/* milliseconds on a quiet machine; generous for sanitizers */
	CU_ASSERT(s < 5.0);
}

static const struct agt_test tests[] = {
	{ "examples", test_examples },
	{ "the same answers as the definition", test_against_reference },
	{ "bounded time on backtracking traps", test_bounded_time },
	AGT_END,
};

int main(int argc, char **argv)
{
	agt_init(&argc, &argv);
	agt_suite("list patterns", NULL, NULL, tests, NULL);
	return agt_run();
}
