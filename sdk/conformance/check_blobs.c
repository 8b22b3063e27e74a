/* check_blobs.c - conformance tests of blobs: metadata, byte ranges, copy,
 * listing with pagination, batch get and delete. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sdk/conformance/check_util.h"

static void put(const char *key, const void *data, size_t len, const struct aerogram_meta *meta,
                size_t n_meta)
{
	CK_OK(ck_fmt("blob_put(%s)", key),
	      ck_driver->blob_put(ck_store, key, data, len, meta, n_meta));
}

static void free_blob_result(void *arg)
{
	ck_driver->blob_result_free(ck_store, arg);
}

static struct aerogram_blob_result *get_batch(const struct aerogram_blob_request *req, size_t n)
{
	struct aerogram_blob_result *res = NULL;
	CK_OK("blob_get", ck_driver->blob_get(ck_store, req, n, &res));
	CK_REQUIRE(res != NULL, "blob_get succeeded but returned no result");
	ck_defer(free_blob_result, res);
	CK_REQUIRE(res->n_blobs == n, "blob_get returned %zu blobs for %zu requests", res->n_blobs, n);
	return res;
}

static const struct aerogram_blob *get_range(const char *key, uint64_t offset, uint64_t length)
{
	struct aerogram_blob_request req = { .key = key, .offset = offset, .length = length };
	return &get_batch(&req, 1)->blobs[0];
}

static const char *meta_value(const struct aerogram_blob *b, const char *name)
{
	for (size_t i = 0; i < b->n_meta; i++)
		if (b->meta[i].name && strcmp(b->meta[i].name, name) == 0)
			return b->meta[i].value;
	return NULL;
}

static uint8_t *pattern(size_t len)
{
	uint8_t *p = ck_alloc(len);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 7 + i / 251);
	return p;
}

/* Bytes and metadata come back as they were put; a put replaces. */
static void test_metadata_round_trip(void)
{
	const char *key = ck_blob_key("meta");
	uint8_t *data = pattern(3000);
	struct aerogram_meta meta[2] = { { "internal-date", "Mon, 7 Feb 1994 21:52:25 -0800" },
	                                 { "flags", "seen,answered" } };
	put(key, data, 3000, meta, 2);
	const struct aerogram_blob *b = get_range(key, 0, 0);
	CK_REQUIRE(b->status == AEROGRAM_OK, "blob_get of a blob just put: %s", ck_status_name(b->status));
	CK_CHECK(b->len == 3000 && b->total_size == 3000 && memcmp(b->data, data, 3000) == 0,
	         "blob bytes did not round-trip (len %zu, total %llu)", b->len,
	         (unsigned long long)b->total_size);
	CK_CHECK(b->n_meta == 2, "expected 2 metadata entries, got %zu", b->n_meta);
	const char *v = meta_value(b, "internal-date");
	CK_CHECK(v && strcmp(v, "Mon, 7 Feb 1994 21:52:25 -0800") == 0, "metadata internal-date: got '%s'",
	         v ? v : "(missing)");
	v = meta_value(b, "flags");
	CK_CHECK(v && strcmp(v, "seen,answered") == 0, "metadata flags: got '%s'", v ? v : "(missing)");

	put(key, "new", 3, NULL, 0);
	b = get_range(key, 0, 0);
	CK_REQUIRE(b->status == AEROGRAM_OK, "blob_get after replacing: %s", ck_status_name(b->status));
	CK_CHECK(b->len == 3 && memcmp(b->data, "new", 3) == 0, "a put must replace the blob's bytes");
	CK_CHECK(b->n_meta == 0, "a put without metadata must drop the old metadata (%zu left)", b->n_meta);

	put(ck_blob_key("empty"), "", 0, NULL, 0);
	b = get_range(ck_blob_key("empty"), 0, 0);
	CK_CHECK(b->status == AEROGRAM_OK && b->len == 0 && b->total_size == 0,
	         "an empty blob must exist with size 0 (status %s)", ck_status_name(b->status));
}

/* Byte ranges: from the start, the middle, to the end, past the end. */
static void test_byte_ranges(void)
{
	const char *key = ck_blob_key("ranges");
	size_t size = 10000;
	uint8_t *data = pattern(size);
	put(key, data, size, NULL, 0);
	struct {
		uint64_t offset, length;
		size_t want_off, want_len;
		const char *what;
	} cases[] = {
		{ 0, 100, 0, 100, "the first 100 bytes" },
		{ 5000, 1000, 5000, 1000, "1000 bytes from the middle" },
		{ 9000, 0, 9000, 1000, "from 9000 to the end (length 0)" },
		{ 9990, 100, 9990, 10, "a range running past the end" },
		{ 0, 0, 0, 10000, "the whole blob" },
		{ 9999, 1, 9999, 1, "the last byte" },
		{ 20000, 10, 0, 0, "an offset past the end" },
		{ 10000, 0, 0, 0, "an offset at the end" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct aerogram_blob *b = get_range(key, cases[i].offset, cases[i].length);
		CK_REQUIRE(b->status == AEROGRAM_OK, "%s: status %s", cases[i].what, ck_status_name(b->status));
		CK_CHECK(b->total_size == size, "%s: total_size %llu, expected %zu", cases[i].what,
		         (unsigned long long)b->total_size, size);
		CK_CHECK(b->len == cases[i].want_len, "%s: got %zu bytes, expected %zu", cases[i].what,
		         b->len, cases[i].want_len);
		if (b->len == cases[i].want_len && b->len > 0)
			CK_CHECK(memcmp(b->data, data + cases[i].want_off, b->len) == 0,
			         "%s: wrong bytes", cases[i].what);
	}
}

/* A batch get answers per item; a missing key is a per-item ENOTFOUND. */
static void test_get_batch_with_missing_key(void)
{
	const char *k1 = ck_blob_key("one"), *k2 = ck_blob_key("two");
	put(k1, "first", 5, NULL, 0);
	put(k2, "second", 6, NULL, 0);
	struct aerogram_blob_request req[3] = { { .key = k2 }, { .key = ck_blob_key("missing") }, { .key = k1 } };
	struct aerogram_blob_result *res = get_batch(req, 3);
	CK_CHECK(res->blobs[0].status == AEROGRAM_OK && res->blobs[0].len == 6 &&
	         memcmp(res->blobs[0].data, "second", 6) == 0, "item 0 must be blob 'two'");
	CK_CHECK(res->blobs[1].status == AEROGRAM_ENOTFOUND, "a missing key must be a per-item ENOTFOUND, got %s",
	         ck_status_name(res->blobs[1].status));
	CK_CHECK(res->blobs[2].status == AEROGRAM_OK && res->blobs[2].len == 5 &&
	         memcmp(res->blobs[2].data, "first", 5) == 0, "item 2 must be blob 'one'");
}

/* Copy keeps bytes and metadata; the copy is independent; a missing source
 * is ENOTFOUND. */
static void test_copy(void)
{
	const char *src = ck_blob_key("src"), *dst = ck_blob_key("dst");
	struct aerogram_meta meta[1] = { { "kind", "original" } };
	put(src, "payload", 7, meta, 1);
	CK_OK("blob_copy", ck_driver->blob_copy(ck_store, src, dst));
	put(src, "changed", 7, NULL, 0);
	const struct aerogram_blob *b = get_range(dst, 0, 0);
	CK_REQUIRE(b->status == AEROGRAM_OK, "the copy is missing: %s", ck_status_name(b->status));
	CK_CHECK(b->len == 7 && memcmp(b->data, "payload", 7) == 0, "the copy must keep the bytes of the source at copy time");
	const char *v = meta_value(b, "kind");
	CK_CHECK(v && strcmp(v, "original") == 0, "the copy must keep the metadata");
	CK_EXPECT("blob_copy from a missing source",
	          ck_driver->blob_copy(ck_store, ck_blob_key("no-such-source"), ck_blob_key("dst2")),
	          AEROGRAM_ENOTFOUND);
	b = get_range(ck_blob_key("dst2"), 0, 0);
	CK_CHECK(b->status == AEROGRAM_ENOTFOUND, "a failed copy must not create the destination");
}

/* A batch delete removes what exists and ignores missing keys. */
static void test_batch_delete_with_missing_keys(void)
{
	const char *a = ck_blob_key("a"), *b = ck_blob_key("b"), *c = ck_blob_key("c");
	put(a, "a", 1, NULL, 0);
	put(b, "b", 1, NULL, 0);
	put(c, "c", 1, NULL, 0);
	const char *keys[3] = { a, ck_blob_key("never-existed"), c };
	CK_OK("blob_delete(with a missing key)", ck_driver->blob_delete(ck_store, keys, 3));
	struct aerogram_blob_request req[3] = { { .key = a }, { .key = b }, { .key = c } };
	struct aerogram_blob_result *res = get_batch(req, 3);
	CK_CHECK(res->blobs[0].status == AEROGRAM_ENOTFOUND, "deleted blob a is still there");
	CK_CHECK(res->blobs[1].status == AEROGRAM_OK, "blob b was not in the batch but is gone");
	CK_CHECK(res->blobs[2].status == AEROGRAM_ENOTFOUND, "deleted blob c is still there");
	CK_OK("blob_delete(empty batch)", ck_driver->blob_delete(ck_store, keys, 0));
}

#define LIST_KEYS 2500
#define PUT_THREADS 8

struct putter {
	const char *prefix;
	int first, step;
	int rc;
	char message[256];
};

static void *putter_main(void *arg)
{
	struct putter *p = arg;
	char key[512];
	for (int i = p->first; i < LIST_KEYS && p->rc == 0; i += p->step) {
		snprintf(key, sizeof(key), "%sk%05d", p->prefix, i);
		p->rc = ck_driver->blob_put(ck_store, key, (const uint8_t *)key, (size_t)(i % 17), NULL, 0);
	}
	if (p->rc != 0)
		snprintf(p->message, sizeof(p->message), "%s", ck_driver->error_message(ck_store));
	return NULL;
}

static void free_list(void *arg)
{
	ck_driver->blob_list_free(ck_store, arg);
}

static struct aerogram_blob_list *list_page(const char *prefix, const char *cont, uint32_t max)
{
	struct aerogram_blob_list *l = NULL;
	CK_OK("blob_list", ck_driver->blob_list(ck_store, prefix, cont, max, &l));
	CK_REQUIRE(l != NULL, "blob_list succeeded but returned no list");
	ck_defer(free_list, l);
	return l;
}

/* Listing by prefix in pages of a few keys returns every key once, in
 * byte order, with sizes, and nothing outside the prefix. */
static void test_list_pagination(void)
{
	const char *prefix = ck_blob_key("list/");
	struct putter *p = ck_alloc(PUT_THREADS * sizeof(*p));
	for (int i = 0; i < PUT_THREADS; i++)
		p[i] = (struct putter){ .prefix = prefix, .first = i, .step = PUT_THREADS };
	ck_run_threads(PUT_THREADS, putter_main, p, sizeof(*p), "put");
	for (int i = 0; i < PUT_THREADS; i++)
		ck_ok_at(p[i].rc, ck_fmt("blob_put from thread %d (%s)", i, p[i].message), __FILE__, __LINE__);
	/* neighbours that share part of the prefix must not be listed */
	put(ck_blob_key("list"), "x", 1, NULL, 0);
	put(ck_blob_key("lisu/k00000"), "x", 1, NULL, 0);
	put(ck_blob_key("list0"), "x", 1, NULL, 0);

	size_t seen = 0, pages = 0;
	const char *cont = NULL;
	uint32_t max = 37;
	for (;;) {
		struct aerogram_blob_list *l = list_page(prefix, cont, max);
		pages++;
		CK_REQUIRE(l->n_keys <= max, "a page of %zu keys, over max_keys %u", l->n_keys, max);
		for (size_t i = 0; i < l->n_keys; i++) {
			char want[512];
			snprintf(want, sizeof(want), "%sk%05zu", prefix, seen);
			CK_REQUIRE(l->keys[i] != NULL && strcmp(l->keys[i], want) == 0,
			           "listing: key %zu is '%s', expected '%s'", seen,
			           l->keys[i] ? l->keys[i] : "(null)", want);
			CK_REQUIRE(l->sizes[i] == seen % 17, "listing: size of key %zu is %llu, expected %zu",
			           seen, (unsigned long long)l->sizes[i], seen % 17);
			seen++;
		}
		if (!l->more)
			break;
		CK_REQUIRE(l->next_token != NULL, "more=1 without next_token");
		CK_REQUIRE(l->n_keys > 0, "a page with more=1 and no keys");
		CK_REQUIRE(pages <= LIST_KEYS, "listing does not end");
		cont = ck_fmt("%s", l->next_token);
	}
	CK_CHECK(seen == LIST_KEYS, "listing saw %zu keys, expected %d", seen, LIST_KEYS);

	/* max_keys 0 means the driver's own page size, at least one key */
	struct aerogram_blob_list *l = list_page(prefix, NULL, 0);
	CK_CHECK(l->n_keys >= 1 && strcmp(l->keys[0], ck_fmt("%sk00000", prefix)) == 0,
	         "max_keys 0 must list at least the first key");
	l = list_page(ck_blob_key("nothing/"), NULL, 10);
	CK_CHECK(l->n_keys == 0 && !l->more, "a prefix without keys must give an empty last page");
}

/* Keys with dot segments ("./", "../", ".", "..") are keys like any other:
 * a driver over HTTP must send the path as it signed it, unnormalised. */
static void test_dot_segment_keys(void)
{
	static const char *const names[] = { "dots/./a", "dots/../b", "dots/x/./c", "dots/y/../d",
		                             "dots/.", "dots/.." };
	const size_t n = sizeof(names) / sizeof(names[0]);
	const char *keys[sizeof(names) / sizeof(names[0])];
	for (size_t i = 0; i < n; i++) {
		keys[i] = ck_blob_key(names[i]);
		put(keys[i], names[i], strlen(names[i]), NULL, 0);
	}
	for (size_t i = 0; i < n; i++) {
		const struct aerogram_blob *b = get_range(keys[i], 0, 0);
		CK_CHECK(b->status == AEROGRAM_OK && b->len == strlen(names[i]) &&
		                 memcmp(b->data, names[i], b->len) == 0,
		         "blob '%s' did not come back as put (%s)", keys[i], ck_status_name(b->status));
	}
	struct aerogram_blob_list *l = list_page(ck_blob_key("dots/"), NULL, 100);
	CK_CHECK(l->n_keys == n, "listing the dot keys gave %zu keys, expected %zu", l->n_keys, n);
	CK_OK("blob_delete(dot keys)", ck_driver->blob_delete(ck_store, keys, n));
	for (size_t i = 0; i < n; i++)
		CK_CHECK(get_range(keys[i], 0, 0)->status == AEROGRAM_ENOTFOUND, "blob '%s' survived its delete",
		         keys[i]);
}

int ck_register_blobs(void)
{
	static const struct ck_test tests[] = {
		{ "metadata round trip and replace", test_metadata_round_trip },
		{ "byte ranges", test_byte_ranges },
		{ "batch get with a missing key", test_get_batch_with_missing_key },
		{ "copy", test_copy },
		{ "batch delete with missing keys", test_batch_delete_with_missing_keys },
		{ "list pagination (2500 keys)", test_list_pagination },
		{ "keys with dot segments", test_dot_segment_keys },
	};
	return ck_add_suite("blobs", tests, sizeof(tests) / sizeof(tests[0]));
}
