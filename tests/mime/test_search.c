/* test_search.c - SEARCH primitives: decoded header/body/text matching,
 * RFC 2822 dates by day, internal dates by day, sizes. */
#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/imap_date.h"
#include "protocol/mime.h"
#include "protocol/search_fields.h"
#include "protocol/search_match.h"
#include "tests/lib/cu_main.h"
#include "tests/mime/test_search.h"

static const char msg_text[] =
	"From: =?iso-8859-1?q?Andr=E9?= Pirard <pirard@example.org>\r\n"
	"Subject: =?UTF-8?B?0JjQstCw0L0=?= and\r\n"
	" =?iso-8859-1?q?caf=E9?= =?iso-8859-1?q?_au_lait?=\r\n"
	"Date: Thu, 13 Feb 1969 23:32:54 -0330\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed; boundary=b\r\n"
	"\r\n"
	"--b\r\n"
	"Content-Type: text/plain; charset=iso-8859-1\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n"
	"\r\n"
	"Gr=FC=DFe aus K=F6ln, soft=\r\n"
	"break here\r\n"
	"--b\r\n"
	"Content-Type: text/html; charset=utf-8\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"\r\n"
	"PHA+SGVsbG8gV29ybGQ8L3A+\r\n"
	"--b\r\n"
	"Content-Type: application/octet-stream\r\n"
	"\r\n"
	"hidden binary words\r\n"
	"--b--\r\n";

static struct mime_message *parse(void)
{
	return mime_parse(msg_text, sizeof(msg_text) - 1);
}

static void test_header(void)
{
	struct mime_message *m = parse();
	const size_t n = sizeof(msg_text) - 1;
	CU_ASSERT_TRUE(search_match_header(m, msg_text, n, "FROM", "andré"));
	CU_ASSERT_TRUE(search_match_header(m, msg_text, n, "from", "PIRARD@EXAMPLE"));
	CU_ASSERT_TRUE(search_match_header(m, msg_text, n, "subject", "Иван and café au lait"));
	CU_ASSERT_TRUE(search_match_header(m, msg_text, n, "subject", "ИВАН AND CAFÉ"));
	CU_ASSERT_FALSE(search_match_header(m, msg_text, n, "subject", "pirard"));
	CU_ASSERT_TRUE(search_match_header(m, msg_text, n, "date", ""));
	CU_ASSERT_FALSE(search_match_header(m, msg_text, n, "cc", ""));
	mime_free(m);
}

static void test_body_and_text(void)
{
	struct mime_message *m = parse();
	const size_t n = sizeof(msg_text) - 1;
	CU_ASSERT_TRUE(search_match_body(m, msg_text, n, "GRüßE AUS köln"));
	CU_ASSERT_TRUE(search_match_body(m, msg_text, n, "GRÜßE AUS KÖLN"));
	CU_ASSERT_FALSE(search_match_body(m, msg_text, n, "GRÜSSE")); /* no full folding */
	CU_ASSERT_FALSE(search_match_body(m, msg_text, n, "grüsse"));
	CU_ASSERT_TRUE(search_match_body(m, msg_text, n, "softbreak here"));
	CU_ASSERT_TRUE(search_match_body(m, msg_text, n, "hello world"));
	CU_ASSERT_FALSE(search_match_body(m, msg_text, n, "binary words"));
	CU_ASSERT_FALSE(search_match_body(m, msg_text, n, "Pirard"));
	CU_ASSERT_TRUE(search_match_text(m, msg_text, n, "Pirard"));
	CU_ASSERT_TRUE(search_match_text(m, msg_text, n, "hello"));
	mime_free(m);
}

static void test_dates(void)
{
	int64_t day, want;
	struct mime_message *m = parse();
	CU_ASSERT_EQUAL(search_sent_date(m, msg_text, sizeof(msg_text) - 1, &day), 0);
	CU_ASSERT_EQUAL(day, imap_days_from_civil(1969, 2, 13)); /* its own zone's day */
	mime_free(m);
	want = imap_days_from_civil(1997, 11, 21);
	CU_ASSERT_EQUAL(search_parse_date("21 Nov 97 09:55:06 GMT", 22, &day), 0);
	CU_ASSERT_EQUAL(day, want);
	CU_ASSERT_EQUAL(search_parse_date("Fri, 21 Nov 1997 09:55:06 -0600", 31, &day), 0);
	CU_ASSERT_EQUAL(day, want);
	CU_ASSERT_EQUAL(search_parse_date(" (c) Fri , 21 November 1997", 27, &day), 0);
	CU_ASSERT_EQUAL(day, want);
	CU_ASSERT_EQUAL(search_parse_date("1 Jan 49 00:00 EST", 18, &day), 0);
	CU_ASSERT_EQUAL(day, imap_days_from_civil(2049, 1, 1));
	CU_ASSERT_EQUAL(search_parse_date("garbage", 7, &day), -1);
	CU_ASSERT_EQUAL(search_parse_date("32 Jan 2020", 11, &day), -1);
	CU_ASSERT_EQUAL(imap_days_from_civil(1970, 1, 1), 0);
	CU_ASSERT_EQUAL(imap_days_from_civil(2000, 3, 1), 11017);
	/* 2024-01-01 02:00 UTC is still 31 Dec 2023 in -0500 */
	time_t t = (time_t)imap_days_from_civil(2024, 1, 1) * 86400 + 7200;
	CU_ASSERT_EQUAL(search_internal_day(t, -300), imap_days_from_civil(2023, 12, 31));
	CU_ASSERT_EQUAL(search_internal_day(t, 60), imap_days_from_civil(2024, 1, 1));
	CU_ASSERT_EQUAL(search_internal_day(-1, 0), -1);
}

static void test_sizes(void)
{
	struct mime_message *m = mime_parse("a: b\n\nxy\n", 9);
	CU_ASSERT_EQUAL(m->vsize, 12);
	CU_ASSERT_TRUE(search_larger(m, 11));
	CU_ASSERT_FALSE(search_larger(m, 12));
	CU_ASSERT_TRUE(search_smaller(m, 13));
	CU_ASSERT_FALSE(search_smaller(m, 12));
	mime_free(m);
}

/* Whether the extracted field `name` contains `needle` (folded here). */
static int field_has(const struct search_fields *f, const char *name, const char *needle)
{
	const struct search_field *sf = search_fields_find(f, name, strlen(name));
	CU_ASSERT_PTR_NOT_NULL_FATAL(sf);
	struct agbuf folded = AGBUF_INIT;
	search_fold(&folded, needle, strlen(needle));
	int found = search_field_contains(f, sf, folded.data ? folded.data : "", folded.len);
	agbuf_free(&folded);
	return found;
}

static void test_fields(void)
{
	static const char header[] =
		"Received: from a by b; Thu, 13 Feb 1969 23:32:54 -0330\r\n"
		"FROM: =?iso-8859-1?q?Andr=E9?= Pirard <pirard@example.org>\r\n"
		"To: one@example.org,\r\n"
		"\ttwo@example.org\r\n"
		"Subject: =?UTF-8?B?0JjQstCw0L0=?= and\r\n"
		" =?iso-8859-1?q?caf=E9?= =?iso-8859-1?q?_au_lait?=\r\n"
		"Cc: first@example.org\r\n"
		"Date: Fri, 21 Nov 1997 09:55:06 -0600\r\n"
		"cc: second@example.org\r\n"
		"X-Empty:\r\n"
		"Date: 1 Jan 2001 00:00 +0000\r\n"
		"\r\n";
	const char *names[] = { "from", "To", "cc", "bcc", "subject", "x-empty", "CC" };
	struct search_fields *f = search_fields_extract(header, sizeof(header) - 1, names, 7);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(f->count, 6); /* "cc" once */
	static const struct {
		const char *name, *needle;
		int has;
	} want[] = {
		{ "from", "ANDRÉ PIRARD", 1 },
		{ "from", "pirard@EXAMPLE", 1 },
		/* folded: the line end goes, the tab after it is a blank */
		{ "to", "org, two@", 1 },
		{ "subject", "Иван and café au lait", 1 },
		{ "subject", "ИВАН AND CAFÉ", 1 },
		{ "subject", "pirard", 0 },
		/* both Cc fields, and a needle never spans two of them */
		{ "cc", "first@", 1 },
		{ "cc", "second@", 1 },
		{ "cc", "orgsecond", 0 },
		{ "cc", "org second", 0 },
		/* an empty needle asks whether the field is there at all */
		{ "x-empty", "", 1 },
		{ "x-empty", "a", 0 },
		{ "bcc", "", 0 },
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		int has = field_has(f, want[i].name, want[i].needle) != 0;
		CU_ASSERT_EQUAL(has, want[i].has);
		if (has != want[i].has)
			fprintf(stderr, "field %s, needle '%s': not %d\n", want[i].name, want[i].needle, want[i].has);
	}
	/* a name not asked for is unknown, not absent */
	CU_ASSERT_PTR_NULL(search_fields_find(f, "received", 8));
	/* the last Date counts, as in the envelope */
	CU_ASSERT_TRUE(f->has_sent_day);
	CU_ASSERT_EQUAL(f->sent_day, imap_days_from_civil(2001, 1, 1));
	free(f);

	/* no header at all, no Date */
	f = search_fields_extract("", 0, names, 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_FALSE(f->has_sent_day);
	CU_ASSERT_FALSE(field_has(f, "from", ""));
	free(f);
}

/* search_fields and search_match_header agree on every field and needle. */
static void test_fields_agree_with_header_match(void)
{
	struct mime_message *m = parse();
	const size_t n = sizeof(msg_text) - 1;
	const char *names[] = { "from", "subject", "date", "cc", "mime-version" };
	const char *needles[] = { "", "andré", "PIRARD", "Иван", "café au", "lait", "1969", "1.0", "x", "=?" };
	struct search_fields *f = search_fields_extract(msg_text, (size_t)m->root->body_offset, names, 5);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	for (size_t i = 0; i < 5; i++)
		for (size_t j = 0; j < sizeof(needles) / sizeof(needles[0]); j++)
			CU_ASSERT_EQUAL(field_has(f, names[i], needles[j]),
					search_match_header(m, msg_text, n, names[i], needles[j]));
	free(f);
	mime_free(m);
}

static const struct agt_test tests[] = {
	{ "header match after RFC 2047 decoding", test_header },
	{ "body and text after transfer and charset decoding", test_body_and_text },
	{ "dates by day", test_dates },
	{ "sizes", test_sizes },
	{ "header fields extracted once, matched many times", test_fields },
	{ "extracted fields agree with the header match", test_fields_agree_with_header_match },
	AGT_END,
};

void search_tests_add(void)
{
	agt_suite("search", NULL, NULL, tests, NULL);
}
