/* test_mime.c - protocol/ message side against Dovecot's recorded answers
 * (tests/mime/fixtures, see tests/mime/README.md), from a fresh parse and
 * from the serialised form, plus unit checks of the pieces. */
#include <CUnit/Basic.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/agbuf.h"
#include "protocol/bodystructure.h"
#include "protocol/envelope.h"
#include "protocol/imap_quote.h"
#include "protocol/mime.h"
#include "protocol/mime_charset.h"
#include "protocol/mime_serial.h"
#include "protocol/section.h"
#include "tests/mime/fixture_items.h"
#include "tests/mime/test_search.h"
#include "tests/lib/agt_files.h"
#include "tests/lib/cu_main.h"
#include "tests/mime/test_sort.h"

#define CORPUS "tests/mime/corpus"
#define FIXTURES "tests/mime/fixtures"
/* The acceptance bar: every item of every corpus message identical (each
 * hard/ case exists for a difference that once was; none may come back). */
#define MIN_MATCH_PERCENT 100.0

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Relative paths (dir/name.eml) of the corpus messages, sorted. */
static char **corpus_list(size_t *count)
{
	static const char *const dirs[] = { "hard", "legacy", "rfc" };
	char **names = NULL;
	size_t n = 0, cap = 0;
	for (size_t d = 0; d < sizeof(dirs) / sizeof(dirs[0]); d++) {
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", CORPUS, dirs[d]);
		DIR *dir = opendir(path);
		if (dir == NULL)
			continue;
		struct dirent *e;
		while ((e = readdir(dir)) != NULL) {
			size_t l = strlen(e->d_name);
			if (l < 5 || strcmp(e->d_name + l - 4, ".eml") != 0)
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				names = realloc(names, cap * sizeof(*names));
			}
			size_t sz = strlen(dirs[d]) + l + 2;
			names[n] = malloc(sz);
			snprintf(names[n], sz, "%s/%s", dirs[d], e->d_name);
			n++;
		}
		closedir(dir);
	}
	qsort(names, n, sizeof(*names), cmp_str);
	*count = n;
	return names;
}

/* Our answer for one fixture item, written into `out`. */
static void answer(struct agbuf *out, const struct mime_message *msg, const char *data, size_t len,
		   const struct fixture_item *item)
{
	if (strcmp(item->file, "envelope") == 0) {
		agbuf_puts(out, "ENVELOPE ");
		envelope_write_message(out, msg);
	} else if (strcmp(item->file, "body") == 0) {
		agbuf_puts(out, "BODY ");
		bodystructure_write(out, msg->root, 0);
	} else if (strcmp(item->file, "bodystructure") == 0) {
		agbuf_puts(out, "BODYSTRUCTURE ");
		bodystructure_write(out, msg->root, 1);
	} else if (strcmp(item->file, "rfc822.size") == 0) {
		agbuf_printf(out, "RFC822.SIZE %llu", (unsigned long long)msg->vsize);
	} else {
		char text[256];
		const char *fields[16];
		struct section_spec spec;
		struct section_result res;
		snprintf(text, sizeof(text), "%s", item->section);
		CU_ASSERT_FATAL(section_spec_parse(text, &spec, fields, 16) == 0);
		CU_ASSERT_FATAL(section_fetch(msg, data, len, &spec, &res) == 0);
		section_write_item(out, &spec, &res);
		section_result_free(&res);
	}
}

static int verbose;

/* What Dovecot's save path does to line ends (recorded in the corpus as
 * rfc/003, hard/46, hard/51 and hard/57), byte for byte. */
static void test_save_line_ends(void)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "a\r\nb\n", "a\r\nb\n" },              /* CRLF and bare LF stay */
		{ "a\r\r\nb", "a\r\nb" },                 /* CR CR LF: one CR goes */
		{ "a\r\r\r\n", "a\r\r\n" },             /* one of a longer run */
		{ "a\rb\r\rc", "a\rb\r\rc" },            /* CRs before other bytes stay */
		{ "a\r", "a" },                            /* a final CR goes */
		{ "a\r\r", "a\r" },
		{ "\r", "" },
		{ "", "" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = strlen(cases[i].in);
		char buf[32], copy[32];
		memcpy(buf, cases[i].in, len);
		memcpy(copy, cases[i].in, len);
		size_t n = mime_save_line_ends(buf, buf, len);
		CU_ASSERT_EQUAL(n, strlen(cases[i].out));
		CU_ASSERT(n == strlen(cases[i].out) && memcmp(buf, cases[i].out, n) == 0);
		CU_ASSERT_EQUAL(mime_save_line_ends_changes(copy, len), strcmp(cases[i].in, cases[i].out) != 0);
	}
}

static void test_against_dovecot(void)
{
	size_t count;
	char **names = corpus_list(&count);
	CU_ASSERT_FATAL(count > 50);
	size_t same_fresh[FIXTURE_ITEM_COUNT] = { 0 }, same_serial[FIXTURE_ITEM_COUNT] = { 0 };
	for (size_t m = 0; m < count; m++) {
		char path[1024];
		size_t len, elen;
		snprintf(path, sizeof(path), "%s/%s", CORPUS, names[m]);
		char *data = agt_read_file(path, &len);
		CU_ASSERT_PTR_NOT_NULL_FATAL(data);
		/* the bytes as the server stores them (as Dovecot did) */
		len = mime_save_line_ends(data, data, len);
		struct mime_message *msg = mime_parse(data, len);
		CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
		struct agbuf enc = AGBUF_INIT;
		mime_serial_encode(msg, &enc);
		struct mime_message *dec = mime_serial_decode(enc.data, enc.len);
		CU_ASSERT_PTR_NOT_NULL(dec);
		for (size_t i = 0; i < FIXTURE_ITEM_COUNT; i++) {
			snprintf(path, sizeof(path), "%s/%s/%s", FIXTURES, names[m], fixture_items[i].file);
			char *expect = agt_read_file(path, &elen);
			CU_ASSERT_PTR_NOT_NULL_FATAL(expect);
			struct agbuf got = AGBUF_INIT;
			answer(&got, msg, data, len, &fixture_items[i]);
			if (got.len == elen && memcmp(got.data, expect, elen) == 0)
				same_fresh[i]++;
			else if (verbose)
				printf("\nDIFF %s %s\n  want: %.*s\n  got:  %.*s\n", names[m], fixture_items[i].file,
				       (int)(elen > 600 ? 600 : elen), expect, (int)(got.len > 600 ? 600 : got.len),
				       got.data);
			if (dec) {
				struct agbuf got2 = AGBUF_INIT;
				answer(&got2, dec, data, len, &fixture_items[i]);
				if (got2.len == elen && memcmp(got2.data, expect, elen) == 0)
					same_serial[i]++;
				agbuf_free(&got2);
			}
			agbuf_free(&got);
			free(expect);
		}
		agbuf_free(&enc);
		mime_free(dec);
		mime_free(msg);
		free(data);
		free(names[m]);
	}
	free(names);
	printf("\n  %-20s %8s %8s   (%zu messages)\n", "FETCH item", "parse", "serial", count);
	for (size_t i = 0; i < FIXTURE_ITEM_COUNT; i++) {
		double a = 100.0 * (double)same_fresh[i] / (double)count;
		double b = 100.0 * (double)same_serial[i] / (double)count;
		printf("  %-20s %7.1f%% %7.1f%%\n", fixture_items[i].file, a, b);
		CU_ASSERT(a >= MIN_MATCH_PERCENT);
		CU_ASSERT(b >= MIN_MATCH_PERCENT);
	}
}

/* The skeleton of the part tree (what the FETCH cache keeps) answers every
 * section and RFC822.SIZE exactly as the whole decoded message does, from
 * the whole message and from its header block alone. */
static void test_skeleton_sections(void)
{
	size_t count;
	char **names = corpus_list(&count);
	CU_ASSERT_FATAL(count > 50);
	size_t compared = 0;
	for (size_t m = 0; m < count; m++) {
		char path[1024];
		size_t len;
		snprintf(path, sizeof(path), "%s/%s", CORPUS, names[m]);
		char *data = agt_read_file(path, &len);
		CU_ASSERT_PTR_NOT_NULL_FATAL(data);
		struct mime_message *msg = mime_parse(data, len);
		CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
		size_t bytes = 0;
		struct mime_message *skel = mime_message_skeleton(msg, &bytes);
		CU_ASSERT_PTR_NOT_NULL_FATAL(skel);
		CU_ASSERT_EQUAL(mime_part_count(skel->root), mime_part_count(msg->root));
		CU_ASSERT(bytes >= mime_part_count(msg->root) * sizeof(struct mime_part));
		CU_ASSERT_PTR_NULL(skel->root->envelope);
		size_t hdr_len = (size_t)msg->root->body_offset;
		for (size_t i = 0; i < FIXTURE_ITEM_COUNT; i++) {
			if (fixture_items[i].section == NULL && strcmp(fixture_items[i].file, "rfc822.size") != 0)
				continue;
			for (int header_only = 0; header_only < 2; header_only++) {
				size_t n = header_only ? hdr_len : len;
				struct agbuf want = AGBUF_INIT, got = AGBUF_INIT;
				char text[256];
				const char *fields[16];
				struct section_spec spec;
				struct section_result res;
				if (fixture_items[i].section == NULL) {
					answer(&want, msg, data, n, &fixture_items[i]);
					answer(&got, skel, data, n, &fixture_items[i]);
				} else {
					snprintf(text, sizeof(text), "%s", fixture_items[i].section);
					CU_ASSERT_FATAL(section_spec_parse(text, &spec, fields, 16) == 0);
					/* -1 (bytes beyond the header) must agree too */
					int rc = section_fetch(msg, data, n, &spec, &res);
					agbuf_printf(&want, "%d ", rc);
					if (rc == 0) {
						section_write_item(&want, &spec, &res);
						section_result_free(&res);
					}
					rc = section_fetch(skel, data, n, &spec, &res);
					agbuf_printf(&got, "%d ", rc);
					if (rc == 0) {
						section_write_item(&got, &spec, &res);
						section_result_free(&res);
					}
				}
				CU_ASSERT(got.len == want.len && memcmp(got.data, want.data, want.len) == 0);
				compared++;
				agbuf_free(&want);
				agbuf_free(&got);
			}
		}
		mime_free(skel);
		mime_free(msg);
		free(data);
		free(names[m]);
	}
	free(names);
	CU_ASSERT(compared > 1000);
}

/* Sections whose bytes change on the wire: bare LFs become CRLF, a CRLF
 * stays as it is, NUL becomes 0x80 (the same bytes as Dovecot sends). */
static void test_section_wire_bytes(void)
{
	static const char data[] = "Subject: a\n  b\nTo: x\r\n\nl1\nl2\r\nz\0y\n";
	size_t len = sizeof(data) - 1;
	struct mime_message *msg = mime_parse(data, len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
	static const struct {
		const char *section, *want;
		size_t want_len;
	} cases[] = {
		{ "TEXT]", "BODY[TEXT] {13}\r\nl1\r\nl2\r\nz\x80y\r\n", 30 },
		{ "HEADER]", "BODY[HEADER] {26}\r\nSubject: a\r\n  b\r\nTo: x\r\n\r\n", 45 },
		{ "HEADER.FIELDS (SUBJECT)]", "BODY[HEADER.FIELDS (SUBJECT)] {19}\r\nSubject: a\r\n  b\r\n\r\n", 55 },
		{ "HEADER.FIELDS.NOT (SUBJECT)]", "BODY[HEADER.FIELDS.NOT (SUBJECT)] {9}\r\nTo: x\r\n\r\n", 48 },
		/* partial offsets count in the CRLF form */
		{ "TEXT]<3.4>", "BODY[TEXT]<3> {4}\r\n\nl2\r", 23 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[64];
		const char *fields[4];
		struct section_spec spec;
		struct section_result res;
		snprintf(text, sizeof(text), "%s", cases[i].section);
		CU_ASSERT_FATAL(section_spec_parse(text, &spec, fields, 4) == 0);
		CU_ASSERT_FATAL(section_fetch(msg, data, len, &spec, &res) == 0);
		struct agbuf out = AGBUF_INIT;
		section_write_item(&out, &spec, &res);
		section_result_free(&res);
		CU_ASSERT_EQUAL(out.len, cases[i].want_len);
		CU_ASSERT(out.len == cases[i].want_len && memcmp(out.data, cases[i].want, out.len) == 0);
		if (out.len != cases[i].want_len || memcmp(out.data, cases[i].want, out.len) != 0)
			printf("\n%s: got %zu bytes: %.*s\n", cases[i].section, out.len, (int)out.len, out.data);
		agbuf_free(&out);
	}
	mime_free(msg);
}

/* One way out for a string: the quoting function, its input and the bytes it must write. */
static const struct {
	void (*quote)(struct agbuf *out, const char *str, size_t len);
	const char *in;
	size_t len;
	const char *want;
} quote_cases[] = {
	{ imap_quote_string_for_humans, "plain words", 11, "\"plain words\"" },
	{ imap_quote_string_for_humans, " a\t\tb  c \r\n", 11, "{5}\r\na b c" },
	{ imap_quote_string_for_humans, " \t ", 3, "\"\"" },
	{ imap_quote_string_for_humans, "say \"hi\"", 8, "{8}\r\nsay \"hi\"" },
	{ imap_quote_nstring_nolf, "a\r\n b", 5, "\"a b\"" },
	{ imap_quote_string, "\\\\\\\\\\", 5, "{5}\r\n\\\\\\\\\\" }, /* five backslashes: a literal */
	{ imap_quote_string, "\\\\\\\\", 4, "\"\\\\\\\\\\\\\\\\\"" }, /* four still fit a quoted string */
	{ imap_quote_astring, "INBOX]x", 7, "INBOX]x" },
	{ imap_quote_astring, "nil", 3, "\"nil\"" },
	{ imap_quote_astring, "a b", 3, "\"a b\"" },
	{ imap_quote_string, "caf\xc3\xa9", 5, "{5}\r\ncaf\xc3\xa9" },
};

static void test_quote_for_humans(void)
{
	struct agbuf b = AGBUF_INIT;
	for (size_t i = 0; i < sizeof(quote_cases) / sizeof(quote_cases[0]); i++) {
		agbuf_reset(&b);
		quote_cases[i].quote(&b, quote_cases[i].in, quote_cases[i].len);
		if (strcmp(b.data, quote_cases[i].want) != 0)
			fprintf(stderr, "\n  quote case %zu: expect %s  got %s\n", i, quote_cases[i].want, b.data);
		CU_ASSERT_STRING_EQUAL(b.data, quote_cases[i].want);
	}
	agbuf_free(&b);
}

static void test_rfc2231_and_defaults(void)
{
	const char *m = "Content-Type: text/plain; name*0*=utf-8''a%20b; name*1=c;\r\n"
			" charset=\"UTF-8\"\r\n\r\nbody\r\n";
	struct mime_message *msg = mime_parse(m, strlen(m));
	struct agbuf b = AGBUF_INIT;
	bodystructure_write(&b, msg->root, 1);
	CU_ASSERT_STRING_EQUAL(b.data, "(\"text\" \"plain\" (\"charset\" \"UTF-8\" \"name*\" \"utf-8''a%20bc\") "
				       "NIL NIL \"7bit\" 6 1 NIL NIL NIL NIL)");
	mime_free(msg);
	agbuf_reset(&b);
	msg = mime_parse("Subject: x\n\nhello\n", 18);
	bodystructure_write(&b, msg->root, 0);
	CU_ASSERT_STRING_EQUAL(b.data, "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 7 1)");
	CU_ASSERT_EQUAL(msg->vsize, 21);
	mime_free(msg);
	agbuf_free(&b);
}

static void test_param_utf8(void)
{
	const char *m = "Content-Type: application/pdf; name=\"plain.pdf\"\r\n"
			"Content-Disposition: attachment; filename*0*=iso-8859-1'fr'caf%E9;\r\n"
			" filename*1=\" au lait.pdf\"\r\n\r\nx";
	struct mime_message *msg = mime_parse(m, strlen(m));
	const struct mime_part *p = msg->root;
	struct agbuf b = AGBUF_INIT;
	CU_ASSERT_TRUE(mime_param_utf8(p->disp_params, p->ndisp_params, "FILENAME", &b));
	CU_ASSERT_STRING_EQUAL(b.data, "caf\xc3\xa9 au lait.pdf");
	agbuf_reset(&b);
	CU_ASSERT_TRUE(mime_param_utf8(p->params, p->nparams, "name", &b));
	CU_ASSERT_STRING_EQUAL(b.data, "plain.pdf");
	CU_ASSERT_FALSE(mime_param_utf8(p->params, p->nparams, "charset", &b));
	agbuf_free(&b);
	mime_free(msg);
}

static void test_serial_rejects_corruption(void)
{
	const char *m = "From: a@b\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\none\r\n--x--\r\n";
	struct mime_message *msg = mime_parse(m, strlen(m));
	struct agbuf enc = AGBUF_INIT;
	mime_serial_encode(msg, &enc);
	for (size_t i = 0; i < enc.len; i++) {
		enc.data[i] ^= 0x01;
		struct mime_message *dec = mime_serial_decode(enc.data, enc.len);
		CU_ASSERT_PTR_NULL(dec);
		mime_free(dec);
		enc.data[i] ^= 0x01;
	}
	for (size_t n = 0; n < enc.len; n++)
		CU_ASSERT_PTR_NULL(mime_serial_decode(enc.data, n));
	struct mime_message *dec = mime_serial_decode(enc.data, enc.len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dec);
	CU_ASSERT_EQUAL(mime_part_count(dec->root), 2);
	mime_free(dec);
	agbuf_free(&enc);
	mime_free(msg);
}

static const struct agt_test tests[] = {
	{ "quote for humans", test_quote_for_humans },
	{ "rfc2231 and defaults", test_rfc2231_and_defaults },
	{ "RFC 2231 values to UTF-8", test_param_utf8 },
	{ "serial rejects corruption", test_serial_rejects_corruption },
	{ "skeleton answers sections like the whole tree", test_skeleton_sections },
	{ "section bytes on the wire", test_section_wire_bytes },
	{ "line ends as stored at APPEND", test_save_line_ends },
	{ "answers equal Dovecot's", test_against_dovecot },
	AGT_END,
};

int main(int argc, char **argv)
{
	agt_init(&argc, &argv);
	verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
	agt_suite("mime", NULL, NULL, tests, NULL);
	search_tests_add();
	sort_tests_add();
	return agt_run();
}
