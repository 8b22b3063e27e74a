/* memory_blobs.c - blobs of the memory driver, in a skip list by key. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/memory/memory_store.h"

#define BLOB_KEY_MAX 479
#define LIST_PAGE_DEFAULT 1000

struct mem_blob {
	char *key;
	uint8_t *data;
	size_t len;
	size_t n_meta;
	const struct aerogram_meta *meta; /* in meta_arena, names and values too */
	struct agk_arena meta_arena;
};

/* A copy of n metadata entries (n + 1 slots) made in arena `a`, or NULL when
 * out of memory. */
static struct aerogram_meta *meta_copy(struct agk_arena *a, const struct aerogram_meta *meta,
                                       size_t n)
{
	struct aerogram_meta *m = agk_arena_alloc(a, (n + 1) * sizeof(*m));
	for (size_t i = 0; m != NULL && i < n; i++) {
		m[i].name = agk_arena_strdup(a, meta[i].name);
		m[i].value = agk_arena_strdup(a, meta[i].value);
		if (m[i].name == NULL || m[i].value == NULL)
			return NULL;
	}
	return m;
}

static void blob_free(void *value)
{
	struct mem_blob *b = value;
	if (b == NULL)
		return;
	agk_arena_free(&b->meta_arena);
	free(b->data);
	free(b->key);
	free(b);
}

void mem_blobs_destroy(struct aerogram_store *st)
{
	mem_sl_destroy(&st->blobs, blob_free);
}

static int check_blob_key(const char *key)
{
	if (key == NULL)
		return agk_fail(AEROGRAM_EINVAL, "blob key is missing");
	if (key[0] == '\0')
		return agk_fail(AEROGRAM_EINVAL, "blob key is empty");
	if (strlen(key) > BLOB_KEY_MAX)
		return agk_fail(AEROGRAM_ETOOBIG, "blob key is %zu bytes, over the limit of %d",
		                strlen(key), BLOB_KEY_MAX);
	return 0;
}

static int check_meta(const struct aerogram_meta *meta, size_t n_meta)
{
	if (n_meta > 0 && meta == NULL)
		return agk_fail(AEROGRAM_EINVAL, "metadata array is NULL");
	for (size_t i = 0; i < n_meta; i++) {
		const char *name = meta[i].name;
		if (name == NULL || name[0] == '\0' || meta[i].value == NULL)
			return agk_fail(AEROGRAM_EINVAL, "metadata entry %zu has no name or value", i);
		for (const char *p = name; *p; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
				return agk_fail(AEROGRAM_EINVAL,
				                "metadata name '%.40s' is not lower-case [a-z0-9-]", name);
	}
	return 0;
}

/* A private copy of a blob under a new key, or NULL when out of memory. */
static struct mem_blob *blob_new(const char *key, const uint8_t *data, size_t len,
                                 const struct aerogram_meta *meta, size_t n_meta)
{
	struct mem_blob *b = calloc(1, sizeof(*b));
	if (b == NULL)
		return NULL;
	b->key = strdup(key);
	b->data = malloc(len ? len : 1);
	b->meta = meta_copy(&b->meta_arena, meta, n_meta);
	if (b->key == NULL || b->data == NULL || b->meta == NULL) {
		blob_free(b);
		return NULL;
	}
	if (len)
		memcpy(b->data, data, len);
	b->len = len;
	b->n_meta = n_meta;
	return b;
}

/* Inserts or replaces; takes ownership of b. Blobs lock held for writing. */
static void blob_store(struct aerogram_store *st, struct mem_blob *b, int *oom)
{
	struct mem_sl_node *n = mem_sl_find(&st->blobs, b->key);
	if (n != NULL) {
		struct mem_blob *old = n->value;
		n->value = b;
		n->key = b->key;
		blob_free(old);
		return;
	}
	if (mem_sl_insert(&st->blobs, b->key, b) == NULL) {
		blob_free(b);
		*oom = 1;
	}
}

int mem_blob_put(struct aerogram_store *st, const char *key, const uint8_t *data, size_t len,
                 const struct aerogram_meta *meta, size_t n_meta)
{
	int rc = check_blob_key(key);
	if (rc == 0)
		rc = check_meta(meta, n_meta);
	if (rc != 0)
		return rc;
	if (len > 0 && data == NULL)
		return agk_fail(AEROGRAM_EINVAL, "blob data is NULL with length %zu", len);
	struct mem_blob *b = blob_new(key, data, len, meta, n_meta);
	if (b == NULL)
		return agk_fail(AEROGRAM_EINTERNAL, "out of memory");
	int oom = 0;
	pthread_rwlock_wrlock(&st->blobs_lock);
	blob_store(st, b, &oom);
	pthread_rwlock_unlock(&st->blobs_lock);
	return oom ? agk_fail(AEROGRAM_EINTERNAL, "out of memory") : 0;
}

int mem_blob_copy(struct aerogram_store *st, const char *src_key, const char *dst_key)
{
	int rc = check_blob_key(src_key);
	if (rc == 0)
		rc = check_blob_key(dst_key);
	if (rc != 0)
		return rc;
	int oom = 0;
	pthread_rwlock_wrlock(&st->blobs_lock);
	struct mem_sl_node *n = mem_sl_find(&st->blobs, src_key);
	if (n == NULL) {
		pthread_rwlock_unlock(&st->blobs_lock);
		return agk_fail(AEROGRAM_ENOTFOUND, "blob_copy: source '%.200s' does not exist",
		                src_key);
	}
	const struct mem_blob *src = n->value;
	struct mem_blob *b = blob_new(dst_key, src->data, src->len, src->meta, src->n_meta);
	if (b != NULL)
		blob_store(st, b, &oom);
	pthread_rwlock_unlock(&st->blobs_lock);
	return b == NULL || oom ? agk_fail(AEROGRAM_EINTERNAL, "out of memory") : 0;
}

static int get_one(struct aerogram_store *st, struct agk_arena *a,
                   const struct aerogram_blob_request *req, struct aerogram_blob *out)
{
	if (check_blob_key(req->key) != 0) {
		out->status = AEROGRAM_EINVAL;
		return 0;
	}
	struct mem_sl_node *n = mem_sl_find(&st->blobs, req->key);
	if (n == NULL) {
		out->status = AEROGRAM_ENOTFOUND;
		return 0;
	}
	const struct mem_blob *b = n->value;
	out->total_size = b->len;
	uint64_t from = req->offset < b->len ? req->offset : b->len;
	uint64_t len = b->len - from;
	if (req->length != 0 && req->length < len)
		len = req->length;
	out->data = agk_arena_memdup(a, b->data + from, (size_t)len);
	out->len = (size_t)len;
	out->meta = meta_copy(a, b->meta, b->n_meta);
	if (out->data == NULL || out->meta == NULL)
		return -1;
	out->n_meta = b->n_meta;
	out->status = AEROGRAM_OK;
	return 0;
}

int mem_blob_get(struct aerogram_store *st, const struct aerogram_blob_request *requests,
                 size_t n_requests, struct aerogram_blob_result **out)
{
	*out = NULL;
	if (n_requests > 0 && requests == NULL)
		return agk_fail(AEROGRAM_EINVAL, "blob_get: no requests given");
	struct agk_blob_result *res = agk_blob_result_new();
	if (res == NULL)
		return agk_fail(AEROGRAM_EINTERNAL, "out of memory");
	struct aerogram_blob *blobs = agk_arena_alloc(&res->arena, (n_requests + 1) * sizeof(*blobs));
	int failed = blobs == NULL;
	pthread_rwlock_rdlock(&st->blobs_lock);
	for (size_t i = 0; i < n_requests && !failed; i++)
		failed = get_one(st, &res->arena, &requests[i], &blobs[i]) != 0;
	pthread_rwlock_unlock(&st->blobs_lock);
	res->pub.blobs = blobs;
	res->pub.n_blobs = n_requests;
	return agk_blob_result_done(failed ? agk_fail(AEROGRAM_EINTERNAL, "out of memory") : 0, res,
	                            out);
}

/* The continuation token is the key to resume at, tagged so that a token
 * from elsewhere is recognised as malformed. */
#define LIST_TOKEN_TAG "k:"

int mem_blob_list(struct aerogram_store *st, const char *prefix, const char *continuation,
                  uint32_t max_keys, struct aerogram_blob_list **out)
{
	*out = NULL;
	if (prefix == NULL)
		prefix = "";
	const char *from = prefix;
	if (continuation != NULL) {
		size_t tl = strlen(LIST_TOKEN_TAG);
		if (strncmp(continuation, LIST_TOKEN_TAG, tl) != 0 || continuation[tl] == '\0' ||
		    strncmp(continuation + tl, prefix, strlen(prefix)) != 0)
			return agk_fail(AEROGRAM_EINVAL, "blob_list: malformed continuation token '%.40s'",
			                continuation);
		from = continuation + tl;
	}
	uint32_t page = max_keys ? max_keys : LIST_PAGE_DEFAULT;
	struct agk_blob_list *res = agk_blob_list_new();
	if (res == NULL)
		return agk_fail(AEROGRAM_EINTERNAL, "out of memory");
	struct agk_arena *a = &res->arena;
	size_t plen = strlen(prefix);
	pthread_rwlock_rdlock(&st->blobs_lock);
	size_t cap = page < 1024 ? page : 1024, n = 0;
	const char **keys = agk_arena_alloc(a, (cap + 1) * sizeof(*keys));
	uint64_t *sizes = agk_arena_alloc(a, (cap + 1) * sizeof(*sizes));
	int failed = keys == NULL || sizes == NULL;
	struct mem_sl_node *node = mem_sl_lower_bound(&st->blobs, from[0] ? from : NULL);
	for (; node != NULL && !failed; node = mem_sl_next(node)) {
		if (strncmp(node->key, prefix, plen) != 0)
			break;
		if (n == page) {
			size_t tl = strlen(LIST_TOKEN_TAG), kl = strlen(node->key);
			char *token = agk_arena_alloc(a, tl + kl + 1);
			if (token == NULL) {
				failed = 1;
				break;
			}
			memcpy(token, LIST_TOKEN_TAG, tl);
			memcpy(token + tl, node->key, kl + 1);
			res->pub.more = 1;
			res->pub.next_token = token;
			break;
		}
		if (n == cap) {
			size_t ncap = cap * 2;
			const char **nk = agk_arena_alloc(a, (ncap + 1) * sizeof(*nk));
			uint64_t *ns = agk_arena_alloc(a, (ncap + 1) * sizeof(*ns));
			if (nk == NULL || ns == NULL) {
				failed = 1;
				break;
			}
			memcpy(nk, keys, n * sizeof(*keys));
			memcpy(ns, sizes, n * sizeof(*sizes));
			keys = nk;
			sizes = ns;
			cap = ncap;
		}
		const struct mem_blob *b = node->value;
		keys[n] = agk_arena_strdup(a, node->key);
		sizes[n] = b->len;
		if (keys[n] == NULL)
			failed = 1;
		n++;
	}
	pthread_rwlock_unlock(&st->blobs_lock);
	res->pub.keys = keys;
	res->pub.sizes = sizes;
	res->pub.n_keys = n;
	return agk_blob_list_done(failed ? agk_fail(AEROGRAM_EINTERNAL, "out of memory") : 0, res,
	                          out);
}

int mem_blob_delete(struct aerogram_store *st, const char *const *keys, size_t n_keys)
{
	if (n_keys > 0 && keys == NULL)
		return agk_fail(AEROGRAM_EINVAL, "blob_delete: no keys given");
	for (size_t i = 0; i < n_keys; i++) {
		int rc = check_blob_key(keys[i]);
		if (rc != 0)
			return rc;
	}
	pthread_rwlock_wrlock(&st->blobs_lock);
	for (size_t i = 0; i < n_keys; i++)
		blob_free(mem_sl_remove(&st->blobs, keys[i]));
	pthread_rwlock_unlock(&st->blobs_lock);
	return 0;
}
