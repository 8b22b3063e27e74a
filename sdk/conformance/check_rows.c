/* check_rows.c - conformance tests of rows: causality, siblings, tombstones,
 * queries, paging, range deletes, errors, concurrent writers. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sdk/conformance/check_util.h"

/* A write with the token of a read replaces exactly what that read returned:
 * a value written after the read survives as a sibling. */
static void test_token_supersedes_exactly_what_was_read(void)
{
	const char *pk = ck_pk("causal");
	char *t1 = ck_put(pk, "item", "v1", NULL);
	ck_write(pk, "item", "v2", NULL); /* concurrent with the coming write */
	ck_write(pk, "item", "v3", t1);
	const struct aerogram_row *r = ck_row(pk, "item", 0, "row disappeared after writes");
	CK_CHECK(ck_count_value(r, "v1") == 0, "v1 was read before the write with its token, yet survives");
	CK_CHECK(ck_count_value(r, "v2") == 1, "v2 was written after the read and must survive as a sibling");
	CK_CHECK(ck_count_value(r, "v3") == 1, "the new value v3 is missing");
	CK_CHECK(r->n_values == 2, "expected 2 values (v2, v3), got %zu", r->n_values);
	CK_CHECK(strcmp(r->token, t1) != 0, "the token did not change after writes");

	/* The token of this last read covers both: one write replaces them. */
	ck_write(pk, "item", "v4", ck_token(r));
	r = ck_row(pk, "item", 0, "row disappeared");
	CK_CHECK(r->n_values == 1 && ck_count_value(r, "v4") == 1,
	         "a write with the latest token must leave only its value (got %zu values)", r->n_values);
}

/* A write without a token replaces nothing. */
static void test_write_without_token_makes_siblings(void)
{
	const char *pk = ck_pk("siblings");
	ck_write(pk, "item", "a", NULL);
	ck_write(pk, "item", "b", NULL);
	const struct aerogram_row *r = ck_row(pk, "item", 0, "row missing");
	CK_CHECK(r->n_values == 2 && ck_count_value(r, "a") == 1 && ck_count_value(r, "b") == 1,
	         "two writes without a token must give two siblings (got %zu values)", r->n_values);
}

/* Two writers holding the same token each replace the old value but not
 * each other. */
static void test_same_token_two_writers(void)
{
	const char *pk = ck_pk("twowriters");
	char *t = ck_put(pk, "item", "old", NULL);
	ck_write(pk, "item", "left", t);
	ck_write(pk, "item", "right", t);
	const struct aerogram_row *r = ck_row(pk, "item", 0, "row missing");
	CK_CHECK(ck_count_value(r, "old") == 0, "the value both writers read survives");
	CK_CHECK(ck_count_value(r, "left") == 1 && ck_count_value(r, "right") == 1,
	         "both concurrent writes must survive");
	CK_CHECK(r->n_values == 2, "expected 2 values, got %zu", r->n_values);
}

/* Identical concurrent values are reported once; so are two tombstones. */
static void test_identical_values_dedup(void)
{
	const char *pk = ck_pk("dedup");
	ck_write(pk, "item", "same", NULL);
	ck_write(pk, "item", "same", NULL);
	const struct aerogram_row *r = ck_row(pk, "item", 0, "row missing");
	CK_CHECK(r->n_values == 1 && ck_count_value(r, "same") == 1,
	         "two identical concurrent values must be reported once (got %zu)", r->n_values);
	ck_write(pk, "item", "other", NULL);
	r = ck_get(pk, "item", 0);
	CK_CHECK(r != NULL && r->n_values == 2, "expected 'same' and 'other' once each");

	ck_write(pk, "tomb", NULL, NULL);
	ck_write(pk, "tomb", NULL, NULL);
	r = ck_row(pk, "tomb", AEROGRAM_QUERY_TOMBSTONES,
	           "a tombstoned row must be readable with AEROGRAM_QUERY_TOMBSTONES");
	CK_CHECK(r->n_values == 1 && ck_count_tombstones(r) == 1,
	         "two concurrent tombstones must be reported once (got %zu values)", r->n_values);
}

/* An empty value is a value, and values are bytes (NUL included). */
static void test_empty_and_binary_values(void)
{
	const char *pk = ck_pk("bytes");
	uint8_t bin[256];
	for (int i = 0; i < 256; i++)
		bin[i] = (uint8_t)(255 - i);
	struct aerogram_row_write w[2] = {
		{ .pk = pk, .sk = "empty", .value = (const uint8_t *)"", .len = 0 },
		{ .pk = pk, .sk = "binary", .value = bin, .len = sizeof(bin) },
	};
	ck_write_batch(w, 2);
	const struct aerogram_row *r = ck_row(pk, "empty", 0,
	                                      "a row holding an empty value must be visible");
	CK_CHECK(r->n_values == 1 && !r->values[0].tombstone && r->values[0].len == 0,
	         "an empty value must read back as one empty non-tombstone value");
	r = ck_get(pk, "binary", 0);
	CK_REQUIRE(r != NULL && r->n_values == 1, "binary row missing");
	CK_CHECK(r->values[0].len == sizeof(bin) && memcmp(r->values[0].data, bin, sizeof(bin)) == 0,
	         "binary value (256 bytes with NUL) did not round-trip");
}

/* A tombstone written with the token of a read deletes the row: hidden by
 * default, visible as one tombstone with AEROGRAM_QUERY_TOMBSTONES. */
static void test_delete_with_token(void)
{
	const char *pk = ck_pk("deltoken");
	char *t = ck_put(pk, "item", "v", NULL);
	ck_write(pk, "item", NULL, t);
	CK_CHECK(ck_get(pk, "item", 0) == NULL, "a deleted row must be hidden from plain reads");
	const struct aerogram_row *r = ck_row(pk, "item", AEROGRAM_QUERY_TOMBSTONES,
	                                      "a deleted row must be visible with AEROGRAM_QUERY_TOMBSTONES");
	CK_CHECK(r->n_values == 1 && r->values[0].tombstone == 1 && r->values[0].data == NULL &&
	         r->values[0].len == 0, "a deleted row must read as exactly one tombstone");
	/* writing again over the tombstone with its token revives the row */
	ck_write(pk, "item", "again", ck_token(r));
	r = ck_get(pk, "item", 0);
	CK_CHECK(r != NULL && r->n_values == 1 && ck_count_value(r, "again") == 1,
	         "a write with the tombstone's token must replace it");
}

/* A tombstone without a token is a sibling: the row shows both. */
static void test_delete_without_token(void)
{
	const char *pk = ck_pk("delnotoken");
	ck_write(pk, "item", "v", NULL);
	ck_write(pk, "item", NULL, NULL);
	const struct aerogram_row *r = ck_row(pk, "item", 0,
	                                      "a row with a value and a tombstone must stay visible");
	CK_CHECK(r->n_values == 2 && ck_count_value(r, "v") == 1 && ck_count_tombstones(r) == 1,
	         "expected [value, tombstone], got %zu values", r->n_values);
}

static void check_keys(const struct aerogram_row_page *p, const char *const *want, size_t n,
                       const char *what)
{
	int same = p->n_rows == n;
	for (size_t i = 0; same && i < n; i++)
		same = strcmp(p->rows[i].sk, want[i]) == 0;
	char got[512] = "";
	size_t off = 0;
	for (size_t i = 0; i < p->n_rows && off < sizeof(got) - 40; i++)
		off += (size_t)snprintf(got + off, sizeof(got) - off, "%s%s", i ? "," : "", p->rows[i].sk);
	char exp[512] = "";
	off = 0;
	for (size_t i = 0; i < n && off < sizeof(exp) - 40; i++)
		off += (size_t)snprintf(exp + off, sizeof(exp) - off, "%s%s", i ? "," : "", want[i]);
	CK_CHECK(same, "%s: got [%s], expected [%s]", what, got, exp);
}

/* Rows of only tombstones are hidden unless asked for, in ranges too;
 * rows mixing values and tombstones are always visible. */
static void test_tombstone_visibility(void)
{
	const char *pk = ck_pk("tombvis");
	struct aerogram_row_write w[4] = {
		{ .pk = pk, .sk = "a", .value = (const uint8_t *)"1", .len = 1 },
		{ .pk = pk, .sk = "b", .tombstone = 1 },
		{ .pk = pk, .sk = "c", .value = (const uint8_t *)"3", .len = 1 },
		{ .pk = pk, .sk = "c", .tombstone = 1 },
	};
	ck_write_batch(w, 4);
	struct aerogram_row_query q[2] = { { .pk = pk }, { .pk = pk, .flags = AEROGRAM_QUERY_TOMBSTONES } };
	struct aerogram_row_result *res = ck_read(q, 2);
	static const char *const live[] = { "a", "c" }, *const all[] = { "a", "b", "c" };
	check_keys(&res->pages[0], live, 2, "range without TOMBSTONES");
	check_keys(&res->pages[1], all, 3, "range with TOMBSTONES");
	CK_CHECK(ck_get(pk, "b", 0) == NULL, "a tombstone-only row must be hidden from a single-item read");
	CK_CHECK(ck_get(pk, "b", AEROGRAM_QUERY_TOMBSTONES) != NULL,
	         "a tombstone-only row must be visible with AEROGRAM_QUERY_TOMBSTONES");
}

/* AEROGRAM_QUERY_CONFLICTS_ONLY keeps rows with two or more values. */
static void test_conflicts_only(void)
{
	const char *pk = ck_pk("conflicts");
	struct aerogram_row_write w[4] = {
		{ .pk = pk, .sk = "one", .value = (const uint8_t *)"x", .len = 1 },
		{ .pk = pk, .sk = "two", .value = (const uint8_t *)"x", .len = 1 },
		{ .pk = pk, .sk = "two", .value = (const uint8_t *)"y", .len = 1 },
		{ .pk = pk, .sk = "zdup", .value = (const uint8_t *)"x", .len = 1 },
	};
	ck_write_batch(w, 4);
	ck_write(pk, "zdup", "x", NULL); /* identical: not a conflict once deduplicated */
	struct aerogram_row_query q = { .pk = pk, .flags = AEROGRAM_QUERY_CONFLICTS_ONLY };
	static const char *const want[] = { "two" };
	check_keys(&ck_read(&q, 1)->pages[0], want, 1, "CONFLICTS_ONLY");
}

static void write_keys(const char *pk, const char *const *keys, size_t n)
{
	struct aerogram_row_write *w = ck_alloc(n * sizeof(*w));
	for (size_t i = 0; i < n; i++)
		w[i] = (struct aerogram_row_write){ .pk = pk, .sk = keys[i],
		                                    .value = (const uint8_t *)keys[i],
		                                    .len = strlen(keys[i]) };
	ck_write_batch(w, n);
}

static const char *const range_keys[] = { "a", "b", "b1", "b2", "ba", "c", "d" };
#define N_RANGE_KEYS (sizeof(range_keys) / sizeof(range_keys[0]))

static const struct aerogram_row_page *query_page(struct aerogram_row_query q)
{
	return &ck_read(&q, 1)->pages[0];
}

/* start is inclusive, end exclusive; empty strings count as unset. */
static void test_range_bounds(void)
{
	const char *pk = ck_pk("range");
	write_keys(pk, range_keys, N_RANGE_KEYS);
	static const char *const b_to_c[] = { "b", "b1", "b2", "ba" };
	check_keys(query_page((struct aerogram_row_query){ .pk = pk, .start = "b", .end = "c" }),
	           b_to_c, 4, "start=b end=c");
	static const char *const from_b2[] = { "b2", "ba", "c", "d" };
	check_keys(query_page((struct aerogram_row_query){ .pk = pk, .start = "b2" }), from_b2, 4,
	           "start=b2");
	static const char *const below_b1[] = { "a", "b" };
	check_keys(query_page((struct aerogram_row_query){ .pk = pk, .end = "b1" }), below_b1, 2,
	           "end=b1");
	static const char *const between[] = { "b1", "b2" };
	check_keys(query_page((struct aerogram_row_query){ .pk = pk, .start = "b0", .end = "b3" }),
	           between, 2, "start=b0 end=b3 (bounds that are not keys)");
	check_keys(query_page((struct aerogram_row_query){ .pk = pk, .prefix = "", .start = "",
	                                                   .end = "" }),
	           range_keys, N_RANGE_KEYS, "empty prefix/start/end");
	const struct aerogram_row_page *p =
		query_page((struct aerogram_row_query){ .pk = pk, .start = "c", .end = "c" });
	CK_CHECK(p->n_rows == 0 && !p->more, "start == end must give an empty page");
	p = query_page((struct aerogram_row_query){ .pk = ck_pk("nothing-here") });
	CK_CHECK(p->n_rows == 0 && !p->more, "a partition without rows must give an empty page");
}

static void test_prefix(void)
{
	const char *pk = ck_pk("prefix");
	write_keys(pk, range_keys, N_RANGE_KEYS);
	static const char *const b[] = { "b", "b1", "b2", "ba" };
	check_keys(query_page((struct aerogram_row_query){ .pk = pk, .prefix = "b" }), b, 4, "prefix=b");
	static const char *const b1[] = { "b1", "b2", "ba" };
	check_keys(query_page((struct aerogram_row_query){ .pk = pk, .prefix = "b", .start = "b1" }),
	           b1, 3, "prefix=b start=b1");
	static const char *const bend[] = { "b", "b1" };
	check_keys(query_page((struct aerogram_row_query){ .pk = pk, .prefix = "b", .end = "b2" }),
	           bend, 2, "prefix=b end=b2");
	const struct aerogram_row_page *p = query_page((struct aerogram_row_query){ .pk = pk, .prefix = "bz" });
	CK_CHECK(p->n_rows == 0, "prefix=bz must match nothing (got %zu rows)", p->n_rows);
}

/* If both prefix and start are set, start must begin with prefix. */
static void test_prefix_start_validation(void)
{
	const char *pk = ck_pk("prefixstart");
	write_keys(pk, range_keys, N_RANGE_KEYS);
	struct aerogram_row_result *res = NULL;
	struct aerogram_row_query bad = { .pk = pk, .prefix = "b", .start = "a" };
	CK_EXPECT("row_read(prefix=b, start=a)", ck_driver->row_read(ck_store, &bad, 1, &res),
	          AEROGRAM_EINVAL);
	CK_CHECK(res == NULL, "a failed row_read must return no result");
	if (res)
		ck_driver->row_result_free(ck_store, res);
	res = NULL;
	bad.flags = AEROGRAM_QUERY_REVERSE;
	bad.start = "c";
	CK_EXPECT("row_read(prefix=b, start=c, REVERSE)", ck_driver->row_read(ck_store, &bad, 1, &res),
	          AEROGRAM_EINVAL);
	if (res)
		ck_driver->row_result_free(ck_store, res);
}

/* REVERSE: start is the highest key (inclusive), end is exclusive below. */
static void test_reverse(void)
{
	const char *pk = ck_pk("reverse");
	write_keys(pk, range_keys, N_RANGE_KEYS);
	uint32_t rev = AEROGRAM_QUERY_REVERSE;
	static const char *const all[] = { "d", "c", "ba", "b2", "b1", "b", "a" };
	check_keys(query_page((struct aerogram_row_query){ .pk = pk, .flags = rev }), all, 7,
	           "REVERSE, no bounds");
	static const char *const c_to_b[] = { "c", "ba", "b2", "b1" };
	check_keys(query_page((struct aerogram_row_query){ .pk = pk, .start = "c", .end = "b", .flags = rev }),
	           c_to_b, 4, "REVERSE start=c end=b");
	static const char *const from_bz[] = { "ba", "b2", "b1", "b", "a" };
	check_keys(query_page((struct aerogram_row_query){ .pk = pk, .start = "bz", .flags = rev }),
	           from_bz, 5, "REVERSE start=bz (not a key)");
	static const char *const pre[] = { "ba", "b2", "b1", "b" };
	check_keys(query_page((struct aerogram_row_query){ .pk = pk, .prefix = "b", .flags = rev }),
	           pre, 4, "REVERSE prefix=b");
	static const char *const pre_start[] = { "b2", "b1", "b" };
	check_keys(query_page((struct aerogram_row_query){ .pk = pk, .prefix = "b", .start = "b2",
	                                                   .flags = rev }),
	           pre_start, 3, "REVERSE prefix=b start=b2");
	static const char *const above_b1[] = { "d", "c", "ba", "b2" };
	check_keys(query_page((struct aerogram_row_query){ .pk = pk, .end = "b1", .flags = rev }),
	           above_b1, 4, "REVERSE end=b1");
	static const char *const lim[] = { "d", "c" };
	const struct aerogram_row_page *p =
		query_page((struct aerogram_row_query){ .pk = pk, .limit = 2, .flags = rev });
	check_keys(p, lim, 2, "REVERSE limit=2");
	CK_CHECK(p->more && p->next_start && strcmp(p->next_start, "ba") == 0,
	         "REVERSE limit=2 must say more with next_start 'ba' (got more=%d next_start=%s)",
	         p->more, p->next_start ? p->next_start : "(null)");
}

#define PAGING_ROWS 2600

/* Writes PAGING_ROWS rows "k00000".. plus rows outside the prefix "k". */
static const char *paging_setup(void)
{
	const char *pk = ck_pk("paging");
	struct aerogram_row_write *w = ck_alloc((PAGING_ROWS + 2) * sizeof(*w));
	for (size_t i = 0; i < PAGING_ROWS; i++) {
		char *sk = ck_fmt("k%05zu", i);
		w[i] = (struct aerogram_row_write){ .pk = pk, .sk = sk, .value = (const uint8_t *)sk,
		                                    .len = strlen(sk) };
	}
	w[PAGING_ROWS] = (struct aerogram_row_write){ .pk = pk, .sk = "a-before", .value = (const uint8_t *)"x", .len = 1 };
	w[PAGING_ROWS + 1] = (struct aerogram_row_write){ .pk = pk, .sk = "l-after", .value = (const uint8_t *)"x", .len = 1 };
	ck_write_batch(w, PAGING_ROWS + 2);
	return pk;
}

/* Pages through prefix "k" with the given limit and flags; checks order,
 * completeness and the more/next_start protocol. */
static void page_through(const char *pk, uint32_t limit, uint32_t flags)
{
	int reverse = (flags & AEROGRAM_QUERY_REVERSE) != 0;
	size_t seen = 0, pages = 0;
	const char *start = NULL;
	for (;;) {
		struct aerogram_row_query q = { .pk = pk, .prefix = "k", .start = start, .limit = limit,
		                                .flags = flags };
		const struct aerogram_row_page *p = &ck_read(&q, 1)->pages[0];
		pages++;
		CK_REQUIRE(p->n_rows <= limit, "a page has %zu rows, over the limit %u", p->n_rows, limit);
		for (size_t i = 0; i < p->n_rows; i++) {
			size_t want = reverse ? PAGING_ROWS - 1 - seen : seen;
			char expect[16];
			snprintf(expect, sizeof(expect), "k%05zu", want);
			CK_REQUIRE(strcmp(p->rows[i].sk, expect) == 0,
			           "paging (limit %u%s): row %zu is '%s', expected '%s'", limit,
			           reverse ? ", reverse" : "", seen, p->rows[i].sk, expect);
			seen++;
		}
		if (!p->more) {
			CK_CHECK(p->next_start == NULL, "a last page must have next_start NULL");
			break;
		}
		CK_REQUIRE(p->n_rows == limit, "a page with more=1 must be full (%zu of %u)", p->n_rows, limit);
		CK_REQUIRE(p->next_start != NULL, "more=1 without next_start");
		CK_REQUIRE(pages < PAGING_ROWS, "paging does not end");
		start = ck_fmt("%s", p->next_start);
	}
	CK_CHECK(seen == PAGING_ROWS, "paging saw %zu rows, expected %d", seen, PAGING_ROWS);
	CK_CHECK(pages == (PAGING_ROWS + limit - 1) / limit, "paging took %zu pages, expected %u",
	         pages, (PAGING_ROWS + limit - 1) / limit);
}

static void test_paging_forward(void)
{
	const char *pk = paging_setup();
	page_through(pk, 97, 0);
	page_through(pk, 1000, 0);
	/* without a limit everything comes in one page */
	const struct aerogram_row_page *p = query_page((struct aerogram_row_query){ .pk = pk });
	CK_CHECK(p->n_rows == PAGING_ROWS + 2 && !p->more,
	         "a query without limit must return all %d rows at once (got %zu, more=%d)",
	         PAGING_ROWS + 2, p->n_rows, p->more);
}

static void test_paging_reverse(void)
{
	const char *pk = paging_setup();
	page_through(pk, 97, AEROGRAM_QUERY_REVERSE);
	page_through(pk, 1000, AEROGRAM_QUERY_REVERSE);
}

/* A single-item query of a missing row is an empty page, not an error. */
static void test_single_missing_row(void)
{
	const char *pk = ck_pk("missing");
	CK_CHECK(ck_get(pk, "nope", 0) == NULL, "a missing row must give an empty page");
	CK_CHECK(ck_get(pk, "nope", AEROGRAM_QUERY_TOMBSTONES) == NULL,
	         "a missing row must give an empty page with TOMBSTONES too");
	ck_write(pk, "other", "x", NULL);
	CK_CHECK(ck_get(pk, "nope", 0) == NULL, "a missing row of an existing partition must give an empty page");
}

/* A batch of queries answers one page per query, in query order. */
static void test_batch_keeps_order(void)
{
	const char *pk1 = ck_pk("order1"), *pk2 = ck_pk("order2");
	ck_write(pk1, "x", "from-1", NULL);
	ck_write(pk2, "x", "from-2", NULL);
	ck_write(pk2, "y", "y-2", NULL);
	struct aerogram_row_query q[4] = {
		{ .pk = pk2, .sk = "x" },
		{ .pk = pk1 },
		{ .pk = pk2, .sk = "missing" },
		{ .pk = pk2, .flags = AEROGRAM_QUERY_REVERSE },
	};
	struct aerogram_row_result *res = ck_read(q, 4);
	CK_CHECK(res->pages[0].n_rows == 1 && ck_count_value(&res->pages[0].rows[0], "from-2") == 1,
	         "page 0 must answer query 0 (pk2/x)");
	CK_CHECK(res->pages[1].n_rows == 1 && ck_count_value(&res->pages[1].rows[0], "from-1") == 1,
	         "page 1 must answer query 1 (pk1 range)");
	CK_CHECK(res->pages[2].n_rows == 0, "page 2 must be the empty page of a missing row");
	CK_CHECK(res->pages[3].n_rows == 2 && strcmp(res->pages[3].rows[0].sk, "y") == 0,
	         "page 3 must answer query 3 (pk2 reverse)");
}

/* One batch may span many partitions, and partitions are independent. */
#define MANY_PARTITIONS 300

static void test_many_partitions(void)
{
	struct aerogram_row_write *w = ck_alloc(MANY_PARTITIONS * sizeof(*w));
	struct aerogram_row_query *q = ck_alloc(MANY_PARTITIONS * sizeof(*q));
	for (int i = 0; i < MANY_PARTITIONS; i++) {
		const char *pk = ck_pk(ck_fmt("part%03d", i));
		char *value = ck_fmt("value of %d", i);
		w[i] = (struct aerogram_row_write){ .pk = pk, .sk = "same-key", .value = (const uint8_t *)value,
		                                    .len = strlen(value) };
		q[MANY_PARTITIONS - 1 - i] = (struct aerogram_row_query){ .pk = pk };
	}
	ck_write_batch(w, MANY_PARTITIONS);
	struct aerogram_row_result *res = ck_read(q, MANY_PARTITIONS);
	int right = 0;
	for (int i = 0; i < MANY_PARTITIONS; i++) {
		const struct aerogram_row_page *p = &res->pages[MANY_PARTITIONS - 1 - i];
		right += p->n_rows == 1 && ck_count_value(&p->rows[0], ck_fmt("value of %d", i)) == 1;
	}
	CK_CHECK(right == MANY_PARTITIONS, "%d of %d partitions read back their own row", right,
	         MANY_PARTITIONS);
}

/* A range delete tombstones every live row with its current token and
 * counts them. */
static void test_range_delete(void)
{
	const char *pk = ck_pk("rangedel");
	write_keys(pk, range_keys, N_RANGE_KEYS);
	ck_write(pk, "b1", "sibling", NULL); /* two values: still one row */
	ck_write(pk, "d", NULL, NULL);       /* d: value + tombstone, still live */
	struct aerogram_row_query q = { .pk = pk, .prefix = "b" };
	uint64_t deleted = 12345;
	CK_OK("row_delete(prefix=b)", ck_driver->row_delete(ck_store, &q, 1, &deleted));
	CK_CHECK(deleted == 4, "row_delete(prefix=b) counted %llu rows, expected 4",
	         (unsigned long long)deleted);
	static const char *const left[] = { "a", "c", "d" };
	check_keys(query_page((struct aerogram_row_query){ .pk = pk }), left, 3, "after deleting prefix b");
	const struct aerogram_row *r = ck_get(pk, "b1", AEROGRAM_QUERY_TOMBSTONES);
	CK_CHECK(r != NULL && r->n_values == 1 && r->values[0].tombstone,
	         "a range delete must supersede every value of the row with one tombstone");

	/* deleting again counts nothing: the rows are no longer live */
	CK_OK("row_delete(prefix=b) again", ck_driver->row_delete(ck_store, &q, 1, &deleted));
	CK_CHECK(deleted == 0, "deleting deleted rows counted %llu", (unsigned long long)deleted);

	/* start/end and the single form, in one batch */
	struct aerogram_row_query q2[2] = { { .pk = pk, .start = "c", .end = "d" }, { .pk = pk, .sk = "d" } };
	CK_OK("row_delete(batch)", ck_driver->row_delete(ck_store, q2, 2, &deleted));
	CK_CHECK(deleted == 2, "row_delete(start=c end=d; sk=d) counted %llu, expected 2",
	         (unsigned long long)deleted);
	static const char *const only_a[] = { "a" };
	check_keys(query_page((struct aerogram_row_query){ .pk = pk }), only_a, 1, "after deleting c and d");
	/* a NULL count pointer is allowed */
	CK_OK("row_delete(deleted=NULL)", ck_driver->row_delete(ck_store, &q, 1, NULL));
}

static void expect_invalid_query(struct aerogram_row_query q, const char *what)
{
	struct aerogram_row_result *res = NULL;
	int rc = ck_driver->row_read(ck_store, &q, 1, &res);
	ck_expect_at(rc, AEROGRAM_EINVAL, what, __FILE__, __LINE__);
	if (rc == 0 && res)
		ck_driver->row_result_free(ck_store, res);
}

/* Malformed queries are refused with AEROGRAM_EINVAL, and a batch with one
 * bad query returns nothing. */
static void test_invalid_queries(void)
{
	const char *pk = ck_pk("invalid");
	ck_write(pk, "a", "x", NULL);
	expect_invalid_query((struct aerogram_row_query){ .pk = pk, .sk = "a", .prefix = "a" }, "single item with prefix");
	expect_invalid_query((struct aerogram_row_query){ .pk = pk, .sk = "a", .start = "a" }, "single item with start");
	expect_invalid_query((struct aerogram_row_query){ .pk = pk, .sk = "a", .end = "b" }, "single item with end");
	expect_invalid_query((struct aerogram_row_query){ .pk = pk, .sk = "a", .limit = 5 }, "single item with limit");
	expect_invalid_query((struct aerogram_row_query){ .pk = pk, .sk = "a", .flags = AEROGRAM_QUERY_REVERSE },
	                     "single item with REVERSE");
	expect_invalid_query((struct aerogram_row_query){ .pk = NULL }, "query without partition key");
	struct aerogram_row_query batch[2] = { { .pk = pk }, { .pk = pk, .sk = "a", .limit = 1 } };
	struct aerogram_row_result *res = NULL;
	int rc = ck_driver->row_read(ck_store, batch, 2, &res);
	CK_EXPECT("row_read(valid + invalid query)", rc, AEROGRAM_EINVAL);
	CK_CHECK(res == NULL, "a failed row_read must return no result");
	if (rc == 0 && res)
		ck_driver->row_result_free(ck_store, res);
	uint64_t deleted;
	struct aerogram_row_query del = { .pk = pk, .sk = "a", .prefix = "a" };
	CK_EXPECT("row_delete(single item with prefix)", ck_driver->row_delete(ck_store, &del, 1, &deleted),
	          AEROGRAM_EINVAL);
	CK_CHECK(ck_get(pk, "a", 0) != NULL, "a refused delete must delete nothing");
}

/* Malformed causality tokens and writes are refused with AEROGRAM_EINVAL. */
static void test_malformed_writes(void)
{
	const char *pk = ck_pk("badtoken");
	static const char *const bad_tokens[] = { "not a token", "!!!", "\x01\x02" };
	for (size_t i = 0; i < sizeof(bad_tokens) / sizeof(bad_tokens[0]); i++) {
		struct aerogram_row_write w = { .pk = pk, .sk = "a", .token = bad_tokens[i],
		                                .value = (const uint8_t *)"x", .len = 1 };
		CK_EXPECT(ck_fmt("row_insert with malformed token #%zu", i),
		          ck_driver->row_insert(ck_store, &w, 1), AEROGRAM_EINVAL);
	}
	struct aerogram_row_write nopk = { .pk = NULL, .sk = "a", .value = (const uint8_t *)"x", .len = 1 };
	CK_EXPECT("row_insert without partition key", ck_driver->row_insert(ck_store, &nopk, 1), AEROGRAM_EINVAL);
	struct aerogram_row_write nosk = { .pk = pk, .sk = NULL, .value = (const uint8_t *)"x", .len = 1 };
	CK_EXPECT("row_insert without sort key", ck_driver->row_insert(ck_store, &nosk, 1), AEROGRAM_EINVAL);
	CK_CHECK(ck_get(pk, "a", AEROGRAM_QUERY_TOMBSTONES) == NULL, "a refused write must write nothing");
}

/* Row keys (driver.h, AEROGRAM_ROW_KEY_MAX): 1 to 479 bytes. An empty key is
 * EINVAL and a longer one ETOOBIG in every call; dot segments are plain. */
static void test_row_keys(void)
{
	const char *pk = ck_pk("keys");
	char *longest = ck_alloc(AEROGRAM_ROW_KEY_MAX + 2);
	memset(longest, 'k', AEROGRAM_ROW_KEY_MAX);
	ck_write(pk, longest, "max", NULL);
	const struct aerogram_row *row = ck_get(pk, longest, 0);
	CK_CHECK(row && ck_count_value(row, "max") == 1, "a %d-byte sort key did not read back",
	         AEROGRAM_ROW_KEY_MAX);
	char *over = ck_alloc(AEROGRAM_ROW_KEY_MAX + 2);
	memset(over, 'k', AEROGRAM_ROW_KEY_MAX + 1);
	struct aerogram_row_write w = { .pk = pk, .sk = over, .value = (const uint8_t *)"x", .len = 1 };
	CK_EXPECT("row_insert with a 480-byte sort key", ck_driver->row_insert(ck_store, &w, 1), AEROGRAM_ETOOBIG);
	w = (struct aerogram_row_write){ .pk = over, .sk = "a", .value = (const uint8_t *)"x", .len = 1 };
	CK_EXPECT("row_insert with a 480-byte partition key", ck_driver->row_insert(ck_store, &w, 1),
	          AEROGRAM_ETOOBIG);
	struct aerogram_row_query q = { .pk = pk, .sk = over };
	struct aerogram_row_result *res = NULL;
	int rc = ck_driver->row_read(ck_store, &q, 1, &res);
	CK_EXPECT("row_read of a 480-byte sort key", rc, AEROGRAM_ETOOBIG);
	if (rc == 0 && res)
		ck_driver->row_result_free(ck_store, res);

	w = (struct aerogram_row_write){ .pk = pk, .sk = "", .value = (const uint8_t *)"x", .len = 1 };
	CK_EXPECT("row_insert with an empty sort key", ck_driver->row_insert(ck_store, &w, 1), AEROGRAM_EINVAL);
	w = (struct aerogram_row_write){ .pk = "", .sk = "a", .value = (const uint8_t *)"x", .len = 1 };
	CK_EXPECT("row_insert with an empty partition key", ck_driver->row_insert(ck_store, &w, 1),
	          AEROGRAM_EINVAL);
	q = (struct aerogram_row_query){ .pk = pk, .sk = "" };
	res = NULL;
	rc = ck_driver->row_read(ck_store, &q, 1, &res);
	CK_EXPECT("row_read of an empty sort key", rc, AEROGRAM_EINVAL);
	if (rc == 0 && res)
		ck_driver->row_result_free(ck_store, res);
	uint64_t deleted = 0;
	CK_EXPECT("row_delete of an empty sort key", ck_driver->row_delete(ck_store, &q, 1, &deleted),
	          AEROGRAM_EINVAL);
	struct aerogram_row_query all = { .pk = pk, .flags = AEROGRAM_QUERY_TOMBSTONES };
	res = ck_read(&all, 1);
	CK_CHECK(res->pages[0].n_rows == 1, "refused writes left rows behind (%zu rows, expected 1)",
	         res->pages[0].n_rows);

	/* dot segments, in partition and sort keys */
	const char *dpk = ck_pk("dots/./x/../y");
	static const char *const sks[] = { ".", "..", "./a", "../b", "c/./d", "e/../f" };
	const size_t n = sizeof(sks) / sizeof(sks[0]);
	for (size_t i = 0; i < n; i++)
		ck_write(dpk, sks[i], sks[i], NULL);
	for (size_t i = 0; i < n; i++) {
		row = ck_get(dpk, sks[i], 0);
		CK_CHECK(row && ck_count_value(row, sks[i]) == 1, "row '%s' of partition '%s' did not read back",
		         sks[i], dpk);
	}
	struct aerogram_row_query range = { .pk = dpk };
	res = ck_read(&range, 1);
	CK_CHECK(res->pages[0].n_rows == n, "a range read of the dot keys gave %zu rows, expected %zu",
	         res->pages[0].n_rows, n);
	CK_OK("row_delete(dot keys)", ck_driver->row_delete(ck_store, &range, 1, &deleted));
	CK_CHECK(deleted == n, "row_delete tombstoned %llu dot-key rows, expected %zu",
	         (unsigned long long)deleted, n);
	/* whole partition keys "." and ".." (user names a host may use); the
	 * sort key is this run's, and the rows are deleted again */
	static const char *const dot_pks[] = { ".", ".." };
	for (size_t i = 0; i < 2; i++) {
		const char *sk = ck_fmt("%s/dotpk", ck_run_prefix());
		ck_write(dot_pks[i], sk, dot_pks[i], NULL);
		row = ck_get(dot_pks[i], sk, 0);
		CK_CHECK(row && ck_count_value(row, dot_pks[i]) == 1, "row %s of partition '%s' did not read back",
		         sk, dot_pks[i]);
		struct aerogram_row_query one = { .pk = dot_pks[i], .sk = sk };
		CK_OK("row_delete in partition '.' or '..'", ck_driver->row_delete(ck_store, &one, 1, &deleted));
	}
}

/* ---- concurrent writers ---------------------------------------------------- */

#define WRITERS 4
#define ROWS_PER_WRITER 200
#define SHARED_PER_WRITER 50

struct writer {
	int id;
	const char *pk;
	int rc;
	char message[256];
};

static void *writer_main(void *arg)
{
	struct writer *wr = arg;
	char sks[20][32];
	char vals[20][32];
	struct aerogram_row_write w[20];
	for (int base = 0; base < ROWS_PER_WRITER && wr->rc == 0; base += 20) {
		for (int i = 0; i < 20; i++) {
			snprintf(sks[i], sizeof(sks[i]), "w%d-%04d", wr->id, base + i);
			snprintf(vals[i], sizeof(vals[i]), "value-%d-%d", wr->id, base + i);
			w[i] = (struct aerogram_row_write){ .pk = wr->pk, .sk = sks[i],
			                                    .value = (const uint8_t *)vals[i],
			                                    .len = strlen(vals[i]) };
		}
		wr->rc = ck_driver->row_insert(ck_store, w, 20);
	}
	for (int i = 0; i < SHARED_PER_WRITER && wr->rc == 0; i++) {
		snprintf(vals[0], sizeof(vals[0]), "shared-%d-%d", wr->id, i);
		w[0] = (struct aerogram_row_write){ .pk = wr->pk, .sk = "shared",
		                                    .value = (const uint8_t *)vals[0], .len = strlen(vals[0]) };
		wr->rc = ck_driver->row_insert(ck_store, w, 1);
	}
	if (wr->rc != 0)
		snprintf(wr->message, sizeof(wr->message), "%s", ck_driver->error_message(ck_store));
	return NULL;
}

/* Several threads writing at once lose nothing. */
static void test_concurrent_writers(void)
{
	const char *pk = ck_pk("concurrent");
	struct writer *wr = ck_alloc(WRITERS * sizeof(*wr));
	for (int i = 0; i < WRITERS; i++) {
		wr[i].id = i;
		wr[i].pk = pk;
	}
	ck_run_threads(WRITERS, writer_main, wr, sizeof(*wr), "writer");
	/* each thread's own message: driver_message() would read this thread's */
	for (int i = 0; i < WRITERS; i++)
		if (wr[i].rc == AEROGRAM_ENOTSUP)
			ck_fail_at(1, __FILE__, __LINE__, "row_insert from writer thread %d: not supported by the driver (%s)",
			           i, wr[i].message);
		else if (wr[i].rc != AEROGRAM_OK)
			ck_fail_at(1, __FILE__, __LINE__, "row_insert from writer thread %d failed with %s: %s", i,
			           ck_status_name(wr[i].rc), wr[i].message);
	const struct aerogram_row_page *p = query_page((struct aerogram_row_query){ .pk = pk, .prefix = "w" });
	CK_CHECK(p->n_rows == WRITERS * ROWS_PER_WRITER, "%d writers wrote %d rows, %zu are there",
	         WRITERS, WRITERS * ROWS_PER_WRITER, p->n_rows);
	const struct aerogram_row *shared = ck_get(pk, "shared", 0);
	CK_REQUIRE(shared != NULL, "the row written by every thread is missing");
	CK_CHECK(shared->n_values == WRITERS * SHARED_PER_WRITER,
	         "%d token-less writes to one row must give as many siblings; got %zu",
	         WRITERS * SHARED_PER_WRITER, shared->n_values);
}

int ck_register_rows(void)
{
	static const struct ck_test tests[] = {
		{ "token supersedes exactly what was read", test_token_supersedes_exactly_what_was_read },
		{ "write without token makes siblings", test_write_without_token_makes_siblings },
		{ "two writers with one token", test_same_token_two_writers },
		{ "identical values dedup", test_identical_values_dedup },
		{ "empty and binary values", test_empty_and_binary_values },
		{ "delete with token", test_delete_with_token },
		{ "delete without token", test_delete_without_token },
		{ "tombstone visibility", test_tombstone_visibility },
		{ "conflicts only", test_conflicts_only },
		{ "range start inclusive, end exclusive", test_range_bounds },
		{ "prefix", test_prefix },
		{ "prefix and start validation", test_prefix_start_validation },
		{ "reverse", test_reverse },
		{ "limit and continuation forward (2600 rows)", test_paging_forward },
		{ "limit and continuation reverse (2600 rows)", test_paging_reverse },
		{ "single item of a missing row", test_single_missing_row },
		{ "batch keeps query order", test_batch_keeps_order },
		{ "300 partitions in one batch", test_many_partitions },
		{ "range delete", test_range_delete },
		{ "invalid queries", test_invalid_queries },
		{ "malformed tokens and writes", test_malformed_writes },
		{ "key lengths, empty keys and dot segments", test_row_keys },
		{ "concurrent writers lose nothing", test_concurrent_writers },
	};
	return ck_add_suite("rows", tests, sizeof(tests) / sizeof(tests[0]));
}
