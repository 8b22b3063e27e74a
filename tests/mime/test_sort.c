/* test_sort.c - RFC 5256 pieces alone: base subjects, dates, address keys,
 * msg-ids, and the ORDEREDSUBJECT and REFERENCES threading algorithms. */
#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/mime.h"
#include "protocol/sort_thread.h"
#include "tests/lib/cu_main.h"
#include "tests/mime/test_sort.h"

/* The base subject of s, and whether it is a reply (through *reply). */
static char *base(const char *s, int *reply)
{
	struct agbuf out = AGBUF_INIT;
	int r = sort_base_subject(&out, s, strlen(s));
	if (reply)
		*reply = r;
	return out.data ? out.data : strdup("");
}

static void check_base(const char *subject, const char *expected, int expected_reply)
{
	int reply = -1;
	char *got = base(subject, &reply);
	if (strcmp(got, expected) != 0 || reply != expected_reply)
		fprintf(stderr, "\n  %s -> \"%s\" (reply %d), expected \"%s\" (reply %d)\n", subject, got, reply,
			expected, expected_reply);
	CU_ASSERT_STRING_EQUAL(got, expected);
	CU_ASSERT_EQUAL(reply, expected_reply);
	free(got);
}

static void test_base_subject(void)
{
	check_base("", "", 0);
	check_base("hello", "HELLO", 0);
	check_base("Re: hello", "HELLO", 1);
	check_base("RE:hello", "HELLO", 1);
	check_base("re : hello", "HELLO", 1);             /* WSP before the colon */
	check_base("Fwd: hello", "HELLO", 1);
	check_base("FW: hello", "HELLO", 1);
	check_base("Re[2]: hello", "HELLO", 1);           /* a blob inside subj-refwd */
	check_base("Re: Re: Fwd: hello", "HELLO", 1);
	check_base("[list] hello", "HELLO", 0);           /* a blob before text goes */
	check_base("[list] Re: hello", "HELLO", 1);
	check_base("[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)", "B", 1);
	check_base("hello (fwd)", "HELLO", 1);
	check_base("hello(fwd)", "HELLO", 1);
	check_base("hello (fwd) ", "HELLO", 1);
	check_base("[xyz]", "[XYZ]", 0);                  /* a blob alone stays */
	check_base("[a] [b]", "[B]", 0);                  /* the last blob is the base */
	check_base("Re: [FWD: c]", "C", 1);
	check_base("[fwd: hello]", "HELLO", 1);
	check_base("re: [fwd: [fwd: re: [fwd: babylon]]]", "BABYLON", 1);
	check_base("Ad: Re: Ad: x", "AD: RE: AD: X", 0);  /* only re, fw, fwd */
	check_base("Reply: x", "REPLY: X", 0);
	check_base("  tabs\tand   spaces  ", "TABS AND SPACES", 0);
	check_base("folded\n line", "FOLDED LINE", 0);
	check_base("=?iso-8859-1?q?_?=", "", 0);
	check_base("=?us-ascii?b?UmU6IGM=?=", "C", 1);    /* "Re: c" encoded */
	check_base("=?iso-8859-1?q?RE:_C?=", "C", 1);
	check_base("=?iso-8859-1?q?caf=E9?=", "CAF\xc3\xa9", 0); /* UTF-8, ASCII letters mapped only */
	check_base("Re:", "", 1);
	check_base("(fwd)", "", 1);
}

static void test_casemap(void)
{
	struct agbuf out = AGBUF_INIT;
	sort_casemap(&out, "aZ_[\xc3\xa9", 6);
	CU_ASSERT_STRING_EQUAL(out.data, "AZ_[\xc3\xa9");
	agbuf_free(&out);
	/* "[" and "_" sort after the letters once mapped to upper case */
	char *a = base("zebra", NULL), *b = base("[blob]", NULL), *c = base("_x", NULL);
	CU_ASSERT_TRUE(strcmp(a, b) < 0);
	CU_ASSERT_TRUE(strcmp(b, c) < 0);
	free(a);
	free(b);
	free(c);
}

static int64_t date_of(const char *s)
{
	int64_t t = 0;
	if (sort_parse_date(s, strlen(s), &t) != 0)
		return -1;
	return t;
}

static void test_dates(void)
{
	/* 2001-01-01T00:00:00Z */
	const int64_t base_2001 = 978307200;
	CU_ASSERT_EQUAL(date_of("Mon, 1 Jan 2001 00:00:00 +0000"), base_2001);
	CU_ASSERT_EQUAL(date_of("1 Jan 2001 01:00:00 +0100"), base_2001);
	CU_ASSERT_EQUAL(date_of("Sun, 31 Dec 2000 19:00 EST"), base_2001);
	CU_ASSERT_EQUAL(date_of("Sun, 31 Dec 2000 16:00:00 -0800 (PST)"), base_2001);
	CU_ASSERT_EQUAL(date_of("1 Jan 01 00:00:00 GMT"), base_2001);
	CU_ASSERT_EQUAL(date_of("1 Jan 2001 00:00:00"), base_2001);  /* no zone: +0000 */
	CU_ASSERT_EQUAL(date_of("Mon, 1 Jan 2001 00:00:05 +0000"), base_2001 + 5);
	CU_ASSERT_EQUAL(date_of("not a date"), -1);
	CU_ASSERT_EQUAL(date_of("1 Jan 2001"), -1);                 /* no time */
	CU_ASSERT_EQUAL(date_of("32 Jan 2001 00:00:00 +0000"), -1);
	CU_ASSERT_EQUAL(date_of("1 Foo 2001 00:00:00 +0000"), -1);
	CU_ASSERT_EQUAL(date_of(""), -1);
}

static char *addr_key(const char *value, int display)
{
	struct mime_arena *arena = mime_arena_new();
	struct mime_address *list = mime_address_parse(arena, value, strlen(value));
	struct agbuf out = AGBUF_INIT;
	if (display)
		sort_display_key(&out, list);
	else
		sort_address_key(&out, list);
	mime_arena_free(arena);
	return out.data ? out.data : strdup("");
}

static void check_addr(const char *value, int display, const char *expected)
{
	char *got = addr_key(value, display);
	CU_ASSERT_STRING_EQUAL(got, expected);
	free(got);
}

static void test_addresses(void)
{
	check_addr("Foo Bar <user@example.org>", 0, "USER");
	check_addr("user@example.org, other@example.org", 0, "USER");
	check_addr("list: a@b.c, d@e.f;", 0, "LIST");
	check_addr("", 0, "");
	check_addr("Foo Bar <user@example.org>", 1, "FOO BAR");
	check_addr("user@Example.org", 1, "USER@EXAMPLE.ORG");
	check_addr("=?iso-8859-1?q?foo_aar?= <e@f.g>", 1, "FOO AAR");
	check_addr("\"\" <e@f.g>", 1, "E@F.G");
	check_addr("z: a@b.c;", 1, "Z");
	check_addr("", 1, "");
}

static void test_msgids(void)
{
	const char *v = "<a@b> junk <no-at> < c @ d >\n\t<e@f>";
	struct agbuf id = AGBUF_INIT;
	size_t pos = 0;
	CU_ASSERT_EQUAL(sort_next_msgid(v, strlen(v), &pos, &id), 1);
	CU_ASSERT_STRING_EQUAL(id.data, "a@b");
	CU_ASSERT_EQUAL(sort_next_msgid(v, strlen(v), &pos, &id), 1);
	CU_ASSERT_STRING_EQUAL(id.data, "c@d");  /* <no-at> is not one */
	CU_ASSERT_EQUAL(sort_next_msgid(v, strlen(v), &pos, &id), 1);
	CU_ASSERT_STRING_EQUAL(id.data, "e@f");
	CU_ASSERT_EQUAL(sort_next_msgid(v, strlen(v), &pos, &id), 0);
	pos = 0;
	CU_ASSERT_EQUAL(sort_next_msgid("<unclosed@x", 11, &pos, &id), 0);
	agbuf_free(&id);
}

/* A message for the threading tests: num = its position + 1. */
struct tm_spec {
	int64_t date;
	const char *subject;        /* raw */
	const char *id;
	const char *refs[4];
};

static char *run_threads(const struct tm_spec *spec, size_t n, int references)
{
	struct thread_msg *msgs = calloc(n ? n : 1, sizeof(*msgs));
	char **subjects = calloc(n ? n : 1, sizeof(*subjects));
	for (size_t i = 0; i < n; i++) {
		size_t nr = 0;
		while (nr < 4 && spec[i].refs[nr])
			nr++;
		int reply = 0;
		subjects[i] = base(spec[i].subject ? spec[i].subject : "", &reply);
		msgs[i] = (struct thread_msg){ (uint32_t)(i + 1), spec[i].date, subjects[i], reply, spec[i].id,
					       spec[i].refs, nr };
	}
	struct agbuf out = AGBUF_INIT;
	int rc = references ? thread_references(&out, msgs, n) : thread_orderedsubject(&out, msgs, n);
	CU_ASSERT_EQUAL(rc, 0);
	for (size_t i = 0; i < n; i++)
		free(subjects[i]);
	free(subjects);
	free(msgs);
	return out.data ? out.data : strdup("");
}

static void check_threads(const struct tm_spec *spec, size_t n, int references, const char *expected)
{
	char *got = run_threads(spec, n, references);
	if (strcmp(got, expected) != 0)
		fprintf(stderr, "\n  got %s, expected %s\n", got, expected);
	CU_ASSERT_STRING_EQUAL(got, expected);
	free(got);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_orderedsubject(void)
{
	/* subjects grouped, each thread under its oldest message, threads by
	 * that message's date, equal dates by mailbox order */
	static const struct tm_spec s[] = {
		{ 50, "b", NULL, { NULL } },
		{ 40, "Re: a", NULL, { NULL } },
		{ 30, "a", NULL, { NULL } },
		{ 45, "Fwd: a", NULL, { NULL } },
		{ 10, NULL, NULL, { NULL } },
		{ 10, "", NULL, { NULL } },
		{ 50, "[x] B", NULL, { NULL } },
	};
	check_threads(s, N(s), 0, "(5 6)(3 (2)(4))(1 7)");
	check_threads(s, 0, 0, "");
	check_threads(s, 1, 0, "(1)");
}

static void test_references_basic(void)
{
	/* the RFC's shape: 3 6 (4 23)(44 7 96) with a single message before */
	static const struct tm_spec s[] = {
		{ 1, "two", "<2>", { NULL } },
		{ 2, "three", "3@x", { NULL } },
		{ 3, "Re: three", "6@x", { "3@x", NULL } },
		{ 4, "Re: three", "4@x", { "3@x", "6@x", NULL } },
		{ 5, "Re: three", "23@x", { "4@x", NULL } },
		{ 6, "Re: three", "44@x", { "6@x", NULL } },
		{ 7, "Re: three", "7@x", { "3@x", "6@x", "44@x", NULL } },
		{ 8, "Re: three", "96@x", { "7@x", NULL } },
	};
	check_threads(s, N(s), 1, "(1)(2 3 (4 5)(6 7 8))");
	check_threads(s, 0, 1, "");
}

static void test_references_missing_parents(void)
{
	/* two replies to a message that is not there: a dummy at the top with
	 * both under it; one reply alone is promoted to the top */
	static const struct tm_spec two[] = {
		{ 1, "x", "a@x", { "gone@x", NULL } },
		{ 2, "y", "b@x", { "gone@x", NULL } },
		{ 3, "z", "c@x", { "gone2@x", NULL } },
	};
	check_threads(two, N(two), 1, "((1)(2))(3)");
	/* a dummy in the middle of a chain goes, its child moves up */
	static const struct tm_spec mid[] = {
		{ 1, "x", "a@x", { NULL } },
		{ 2, "y", "c@x", { "a@x", "gone@x", NULL } },
	};
	check_threads(mid, N(mid), 1, "(1 2)");
	/* no Message-ID, same References: siblings under a dummy */
	static const struct tm_spec noid[] = {
		{ 1, NULL, NULL, { "a@b", NULL } },
		{ 2, NULL, NULL, { "a@b", NULL } },
	};
	check_threads(noid, N(noid), 1, "((1)(2))");
}

static void test_references_loops(void)
{
	/* 2 refs <a> <c>: c goes under a, 2 under c; 3 is c and says its
	 * parent is b (2): that would close a loop, so 3 loses the parent
	 * a gave it and stays on top (Dovecot answers the same) */
	static const struct tm_spec s[] = {
		{ 300, NULL, "a@b", { NULL } },
		{ 100, NULL, "b@b", { "a@b", "c@b", NULL } },
		{ 200, NULL, "c@b", { "b@b", NULL } },
	};
	check_threads(s, N(s), 1, "(3 2)(1)");
	/* a message naming itself, and two naming each other */
	static const struct tm_spec self[] = {
		{ 1, "s", "s@x", { "s@x", NULL } },
		{ 2, "p", "p@x", { "q@x", NULL } },
		{ 3, "q", "q@x", { "p@x", NULL } },
		{ 4, "r", "r@x", { "s@x", "r@x", NULL } },
	};
	/* 4: step A puts r under s, step B takes that parent away again and
	 * will not make r its own */
	check_threads(self, N(self), 1, "(1)(3 2)(4)");
}

static void test_references_duplicates(void)
{
	/* the first message with an id keeps it, later ones stand alone */
	static const struct tm_spec s[] = {
		{ 1, NULL, "a@b", { NULL } },
		{ 1, NULL, "b@b", { "a@b", NULL } },
		{ 1, NULL, "c@b", { "b@b", NULL } },
		{ 1, NULL, "b@b", { "a@b", NULL } },
	};
	check_threads(s, N(s), 1, "(1 (2 3)(4))");
	static const struct tm_spec same[] = {
		{ 1, NULL, "a@b", { NULL } },
		{ 1, NULL, "a@b", { NULL } },
	};
	check_threads(same, N(same), 1, "(1)(2)");
}

static void test_references_subjects(void)
{
	/* step 5: a reply joins the thread of the same subject that is not a
	 * reply; two non-replies go under a new dummy; empty subjects never
	 * join */
	static const struct tm_spec s[] = {
		{ 1, "Re: topic", "1@x", { NULL } },
		{ 2, "topic", "2@x", { NULL } },
		{ 3, "other", "3@x", { NULL } },
		{ 4, "[list] other", "4@x", { NULL } },
		{ 5, "", "5@x", { NULL } },
		{ 6, "Re:", "6@x", { NULL } },
	};
	check_threads(s, N(s), 1, "(2 1)((3)(4))(5)(6)");
	/* a dummy thread (two replies to a missing message) takes a later
	 * message of its subject */
	static const struct tm_spec d[] = {
		{ 1, "x", "1@x", { "gone@x", NULL } },
		{ 2, "Re: x", "2@x", { "gone@x", NULL } },
		{ 3, "Re: x", "3@x", { NULL } },
	};
	check_threads(d, N(d), 1, "((1)(2)(3))");
	/* two dummy threads of one subject merge, and a later message of the
	 * subject still finds them, though the merged dummy's first child
	 * has another subject until the siblings are sorted again */
	static const struct tm_spec dd[] = {
		{ 1, "s", "1@x", { "g1@x", NULL } },
		{ 2, "zz", "2@x", { "g1@x", NULL } },
		{ 3, "s", "3@x", { "g2@x", NULL } },
		{ 4, "yy", "4@x", { "g2@x", NULL } },
		{ 5, "Re: s", "5@x", { NULL } },
	};
	check_threads(dd, N(dd), 1, "((1)(2)(3)(4)(5))");
}

static void test_references_deep_chain(void)
{
	/* a chain as deep as the input: no recursion to run out of stack on */
	enum { DEPTH = 200000 };
	struct thread_msg *msgs = calloc(DEPTH, sizeof(*msgs));
	char (*ids)[16] = calloc(DEPTH, sizeof(*ids));
	const char **refs = calloc(DEPTH, sizeof(*refs));
	CU_ASSERT_PTR_NOT_NULL_FATAL(msgs);
	for (size_t i = 0; i < DEPTH; i++) {
		snprintf(ids[i], sizeof(ids[i]), "%zu@x", i);
		refs[i] = ids[i];
		msgs[i] = (struct thread_msg){ (uint32_t)(i + 1), (int64_t)i, "", 0, ids[i], i ? &refs[i - 1] : NULL,
					       i ? 1 : 0 };
	}
	struct agbuf out = AGBUF_INIT;
	CU_ASSERT_EQUAL(thread_references(&out, msgs, DEPTH), 0);
	CU_ASSERT_EQUAL(strncmp(out.data, "(1 2 3 ", 7), 0);
	const char *tail = " 199999 200000)";
	CU_ASSERT_EQUAL(strcmp(out.data + out.len - strlen(tail), tail), 0);
	agbuf_free(&out);
	free(msgs);
	free(ids);
	free(refs);
}

static const struct agt_test tests[] = {
	{ "base subject (RFC 5256 2.1)", test_base_subject },
	{ "i;ascii-casemap", test_casemap },
	{ "sent dates to seconds", test_dates },
	{ "address keys, DISPLAYFROM/DISPLAYTO", test_addresses },
	{ "msg-ids", test_msgids },
	{ "ORDEREDSUBJECT", test_orderedsubject },
	{ "REFERENCES: links and the response shape", test_references_basic },
	{ "REFERENCES: missing parents", test_references_missing_parents },
	{ "REFERENCES: loops", test_references_loops },
	{ "REFERENCES: duplicate Message-IDs", test_references_duplicates },
	{ "REFERENCES: subjects gathered", test_references_subjects },
	{ "REFERENCES: a very deep chain", test_references_deep_chain },
	AGT_END,
};

void sort_tests_add(void)
{
	agt_suite("sort and thread", NULL, NULL, tests, NULL);
}
