/* memory_rows.c - rows of the memory driver: queries, writes, range deletes.
 *
 * Causality is a single-node dotted version scheme. Each row has a counter;
 * each value remembers the counter value (its stamp) that wrote it; a token
 * names the counter value a read saw. A write carrying token t discards the
 * values stamped <= t (exactly those the read returned) and adds its own
 * value with a fresh stamp, so anything written after the read survives as a
 * sibling. A write without a token discards nothing.
 *
 * Every batch (row_insert and row_insert_if alike) is applied under the
 * write lock and whole: its rows are found or created, and room and copies
 * of its values made, before the first value changes, so running out of
 * memory half way applies nothing. row_insert_if compares the condition
 * row's counter with its token under that same lock. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/memory/memory_store.h"

#define TOKEN_TAG 'm'

/* ---- tokens ----------------------------------------------------------- */

void mem_format_stamp(char *buf, size_t len, char tag, uint64_t value)
{
	snprintf(buf, len, "%c%" PRIx64, tag, value);
}

int mem_parse_stamp(const char *text, char tag, uint64_t *out)
{
	if (text == NULL || text[0] != tag || text[1] == '\0')
		return -1;
	uint64_t v = 0;
	size_t n = 0;
	for (const char *p = text + 1; *p; p++, n++) {
		int d;
		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else
			return -1;
		if (n >= 16)
			return -1;
		v = v << 4 | (uint64_t)d;
	}
	*out = v;
	return 0;
}

/* ---- structure -------------------------------------------------------- */

static void row_free(void *value)
{
	struct mem_row *r = value;
	for (size_t i = 0; i < r->n_values; i++)
		free(r->values[i].data);
	free(r->values);
	free(r->sk);
	free(r);
}

static void partition_free(void *value)
{
	struct mem_partition *p = value;
	mem_sl_destroy(&p->rows, row_free);
	free(p->pk);
	free(p);
}

void mem_rows_destroy(struct aerogram_store *st)
{
	for (size_t i = 0; i < st->n_buckets; i++) {
		struct mem_partition *p = st->buckets[i];
		while (p != NULL) {
			struct mem_partition *next = p->hash_next;
			partition_free(p);
			p = next;
		}
	}
	free(st->buckets);
	st->buckets = NULL;
	st->n_buckets = st->n_partitions = 0;
}

/* FNV-1a over the key's bytes. */
static uint64_t hash_key(const char *key)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* Doubles the bucket array (n_buckets is a power of two); on failure the
 * table simply stays as it is, with longer chains. */
static void grow_buckets(struct aerogram_store *st)
{
	size_t n = st->n_buckets ? st->n_buckets * 2 : 64;
	struct mem_partition **b = calloc(n, sizeof(*b));
	if (b == NULL)
		return;
	for (size_t i = 0; i < st->n_buckets; i++) {
		struct mem_partition *p = st->buckets[i];
		while (p != NULL) {
			struct mem_partition *next = p->hash_next;
			p->hash_next = b[p->hash & (n - 1)];
			b[p->hash & (n - 1)] = p;
			p = next;
		}
	}
	free(st->buckets);
	st->buckets = b;
	st->n_buckets = n;
}

struct mem_partition *mem_partition_get(struct aerogram_store *st, const char *pk, int create)
{
	uint64_t h = hash_key(pk);
	if (st->n_buckets > 0) {
		for (struct mem_partition *p = st->buckets[h & (st->n_buckets - 1)]; p; p = p->hash_next)
			if (p->hash == h && strcmp(p->pk, pk) == 0)
				return p;
	}
	if (!create)
		return NULL;
	if (st->n_partitions >= st->n_buckets)
		grow_buckets(st);
	if (st->n_buckets == 0)
		return NULL;
	struct mem_partition *p = calloc(1, sizeof(*p));
	if (p == NULL || (p->pk = strdup(pk)) == NULL || mem_sl_init(&p->rows) != 0) {
		if (p)
			free(p->pk);
		free(p);
		return NULL;
	}
	p->hash = h;
	size_t b = h & (st->n_buckets - 1);
	p->hash_next = st->buckets[b];
	st->buckets[b] = p;
	st->n_partitions++;
	return p;
}

struct mem_row *mem_row_get(struct mem_partition *p, const char *sk, int create)
{
	struct mem_sl_node *n = mem_sl_find(&p->rows, sk);
	if (n != NULL)
		return n->value;
	if (!create)
		return NULL;
	struct mem_row *r = calloc(1, sizeof(*r));
	if (r == NULL || (r->sk = strdup(sk)) == NULL) {
		free(r);
		return NULL;
	}
	if (mem_sl_insert(&p->rows, r->sk, r) == NULL) {
		row_free(r);
		return NULL;
	}
	return r;
}

static int same_value(const struct mem_value *a, const struct mem_value *b)
{
	if (a->tombstone || b->tombstone)
		return a->tombstone && b->tombstone;
	return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* Whether value i repeats an earlier value of the row. */
static int is_duplicate(const struct mem_row *r, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (same_value(&r->values[j], &r->values[i]))
			return 1;
	return 0;
}

static size_t distinct_values(const struct mem_row *r)
{
	size_t n = 0;
	for (size_t i = 0; i < r->n_values; i++)
		if (!is_duplicate(r, i))
			n++;
	return n;
}

static int all_tombstones(const struct mem_row *r)
{
	for (size_t i = 0; i < r->n_values; i++)
		if (!r->values[i].tombstone)
			return 0;
	return 1;
}

static int row_visible(const struct mem_row *r, uint32_t flags)
{
	if (r->n_values == 0)
		return 0; /* a placeholder for a watch */
	if (!(flags & AEROGRAM_QUERY_TOMBSTONES) && all_tombstones(r))
		return 0;
	if ((flags & AEROGRAM_QUERY_CONFLICTS_ONLY) && distinct_values(r) < 2)
		return 0;
	return 1;
}

int mem_row_snapshot(struct agk_arena *a, const struct mem_row *row, struct aerogram_row *dst)
{
	char token[24];
	mem_format_stamp(token, sizeof(token), TOKEN_TAG, row->counter);
	dst->sk = agk_arena_strdup(a, row->sk);
	dst->token = agk_arena_strdup(a, token);
	struct aerogram_value *values = agk_arena_alloc(a, (row->n_values + 1) * sizeof(*values));
	if (dst->sk == NULL || dst->token == NULL || values == NULL)
		return -1;
	size_t n = 0;
	for (size_t i = 0; i < row->n_values; i++) {
		if (is_duplicate(row, i))
			continue;
		const struct mem_value *v = &row->values[i];
		if (v->tombstone) {
			values[n].tombstone = 1;
		} else {
			values[n].data = agk_arena_memdup(a, v->data, v->len);
			if (values[n].data == NULL)
				return -1;
			values[n].len = v->len;
		}
		n++;
	}
	dst->values = values;
	dst->n_values = n;
	return 0;
}

/* ---- queries ---------------------------------------------------------- */

static const char *nonempty(const char *s)
{
	return s != NULL && s[0] != '\0' ? s : NULL;
}

static int has_prefix(const char *key, const char *prefix)
{
	return prefix == NULL || strncmp(key, prefix, strlen(prefix)) == 0;
}

/* The smallest string greater than every string with this prefix, or NULL
 * when there is none (the prefix is all 0xff bytes). Caller frees. */
static char *prefix_successor(const char *prefix)
{
	char *s = strdup(prefix);
	if (s == NULL)
		return NULL;
	size_t n = strlen(s);
	while (n > 0 && (unsigned char)s[n - 1] == 0xff)
		n--;
	if (n == 0) {
		free(s);
		return NULL;
	}
	s[n - 1] = (char)((unsigned char)s[n - 1] + 1);
	s[n] = '\0';
	return s;
}

/* Where a reverse walk begins: the highest key <= start, or the last key of
 * the prefix, or the last key. */
static struct mem_sl_node *reverse_first(const struct mem_partition *p, const char *prefix,
                                         const char *start, int *oom)
{
	*oom = 0;
	if (start != NULL) {
		struct mem_sl_node *n = mem_sl_find(&p->rows, start);
		return n != NULL ? n : mem_sl_before(&p->rows, start);
	}
	if (prefix != NULL) {
		char *succ = prefix_successor(prefix);
		if (succ == NULL) {
			if (prefix[strlen(prefix) - 1] != (char)0xff)
				*oom = 1;
			return mem_sl_last(&p->rows);
		}
		struct mem_sl_node *n = mem_sl_before(&p->rows, succ);
		free(succ);
		return n;
	}
	return mem_sl_last(&p->rows);
}

/* A growable array of rows in the result arena. */
struct page_builder {
	struct agk_arena *arena;
	struct aerogram_row *rows;
	size_t n, cap;
};

static int page_add(struct page_builder *b, const struct mem_row *r)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		struct aerogram_row *rows = agk_arena_alloc(b->arena, cap * sizeof(*rows));
		if (rows == NULL)
			return -1;
		if (b->n)
			memcpy(rows, b->rows, b->n * sizeof(*rows));
		b->rows = rows;
		b->cap = cap;
	}
	if (mem_row_snapshot(b->arena, r, &b->rows[b->n]) != 0)
		return -1;
	b->n++;
	return 0;
}

static int read_page(struct aerogram_store *st, const struct aerogram_row_query *q,
                     struct agk_arena *a, struct aerogram_row_page *page)
{
	struct page_builder b = { .arena = a };
	struct mem_partition *p = mem_partition_get(st, q->pk, 0);
	if (p == NULL)
		return 0;
	if (q->sk != NULL) {
		struct mem_row *r = mem_row_get(p, q->sk, 0);
		if (r != NULL && row_visible(r, q->flags) && page_add(&b, r) != 0)
			return -1;
		page->rows = b.rows;
		page->n_rows = b.n;
		return 0;
	}
	const char *prefix = nonempty(q->prefix), *start = nonempty(q->start), *end = nonempty(q->end);
	int reverse = (q->flags & AEROGRAM_QUERY_REVERSE) != 0;
	struct mem_sl_node *n;
	if (reverse) {
		int oom;
		n = reverse_first(p, prefix, start, &oom);
		if (oom)
			return -1;
	} else {
		n = mem_sl_lower_bound(&p->rows, start ? start : prefix);
	}
	for (; n != NULL; n = reverse ? mem_sl_prev(n) : mem_sl_next(n)) {
		if (end != NULL && (reverse ? strcmp(n->key, end) <= 0 : strcmp(n->key, end) >= 0))
			break;
		if (!has_prefix(n->key, prefix))
			break;
		const struct mem_row *r = n->value;
		if (!row_visible(r, q->flags))
			continue;
		if (q->limit != 0 && b.n == q->limit) {
			page->more = 1;
			page->next_start = agk_arena_strdup(a, n->key);
			if (page->next_start == NULL)
				return -1;
			break;
		}
		if (page_add(&b, r) != 0)
			return -1;
	}
	page->rows = b.rows;
	page->n_rows = b.n;
	return 0;
}

int mem_row_read(struct aerogram_store *st, const struct aerogram_row_query *queries,
                 size_t n_queries, struct aerogram_row_result **out)
{
	*out = NULL;
	int rc = agk_check_queries("memory", queries, n_queries, 1);
	if (rc != 0)
		return rc;
	struct agk_row_result *res = agk_row_result_new();
	if (res == NULL)
		return agk_fail(AEROGRAM_EINTERNAL, "out of memory");
	struct aerogram_row_page *pages =
		agk_arena_alloc(&res->arena, (n_queries + 1) * sizeof(*pages));
	if (pages == NULL)
		goto oom;
	res->pub.pages = pages;
	res->pub.n_pages = n_queries;
	pthread_rwlock_rdlock(&st->rows_lock);
	for (size_t i = 0; i < n_queries; i++) {
		if (read_page(st, &queries[i], &res->arena, &pages[i]) != 0) {
			pthread_rwlock_unlock(&st->rows_lock);
			goto oom;
		}
	}
	pthread_rwlock_unlock(&st->rows_lock);
	return agk_row_result_done(0, res, out);
oom:
	return agk_row_result_done(agk_fail(AEROGRAM_EINTERNAL, "out of memory"), res, out);
}

/* ---- writes ----------------------------------------------------------- */

/* Makes room for `extra` more values in a row; -1 when out of memory. */
static int row_reserve(struct mem_row *r, size_t extra)
{
	if (extra == 0)
		return 0;
	return agk_grow(&r->values, &r->cap_values, r->n_values + extra - 1, sizeof(*r->values), 2);
}

/* Applies one write to a row whose room was reserved: drop what the token
 * covers, add the value (`copy` becomes the row's; NULL for a tombstone).
 * Cannot fail. */
static void row_apply_reserved(struct mem_row *r, int has_token, uint64_t token,
                               int tombstone, uint8_t *copy, size_t len)
{
	size_t kept = 0;
	for (size_t i = 0; i < r->n_values; i++) {
		if (has_token && r->values[i].stamp <= token)
			free(r->values[i].data);
		else
			r->values[kept++] = r->values[i];
	}
	r->n_values = kept;
	uint64_t base = has_token && token > r->counter ? token : r->counter;
	r->counter = base + 1;
	r->values[r->n_values++] = (struct mem_value){
		.stamp = r->counter, .tombstone = tombstone, .len = tombstone ? 0 : len, .data = copy
	};
}

/* Applies one write to a row; -1 when out of memory (nothing changed). */
static int row_apply(struct mem_row *r, int has_token, uint64_t token,
                     int tombstone, const uint8_t *data, size_t len)
{
	uint8_t *copy = NULL;
	if (!tombstone) {
		copy = malloc(len ? len : 1);
		if (copy == NULL)
			return -1;
		if (len)
			memcpy(copy, data, len);
	}
	if (row_reserve(r, 1) != 0) {
		free(copy);
		return -1;
	}
	row_apply_reserved(r, has_token, token, tombstone, copy, len);
	return 0;
}

/* Checks a batch of writes before anything is applied. */
static int check_writes(const char *call, const struct aerogram_row_write *writes,
                        size_t n_writes)
{
	if (n_writes > 0 && writes == NULL)
		return agk_fail(AEROGRAM_EINVAL, "%s: no writes given", call);
	for (size_t i = 0; i < n_writes; i++) {
		const struct aerogram_row_write *w = &writes[i];
		uint64_t t;
		int rc = agk_check_key("memory", "the partition key of a write", w->pk);
		if (rc == 0)
			rc = agk_check_key("memory", "the sort key of a write", w->sk);
		if (rc != 0)
			return rc;
		if (w->token != NULL && mem_parse_stamp(w->token, TOKEN_TAG, &t) != 0)
			return agk_fail(AEROGRAM_EINVAL, "write %zu: malformed causality token '%.40s'",
			                i, w->token);
		if (!w->tombstone && w->len > 0 && w->value == NULL)
			return agk_fail(AEROGRAM_EINVAL, "write %zu: value is NULL with length %zu", i,
			                w->len);
	}
	return 0;
}

/* One write of a batch made ready to apply: its row, with room reserved,
 * and its own copy of the value. */
struct prepared_write {
	struct mem_partition *part;
	struct mem_row *row;
	uint8_t *copy;
};

/* Frees what prepare_batch made for the first n writes (nothing applied). */
static void prepared_release(struct prepared_write *pw, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(pw[i].copy);
		pw[i].row->pending = 0;
	}
}

/* Finds or creates every row of the batch, reserves room for its values and
 * copies them, so that applying the batch afterwards cannot fail half way.
 * Rows created here hold no value: reads skip them as they skip a watch's
 * placeholder. rows_lock held for writing. */
static int prepare_batch(struct aerogram_store *st, const struct aerogram_row_write *writes,
                         size_t n_writes, struct prepared_write *pw)
{
	for (size_t i = 0; i < n_writes; i++) {
		const struct aerogram_row_write *w = &writes[i];
		struct mem_partition *p = mem_partition_get(st, w->pk, 1);
		struct mem_row *r = p ? mem_row_get(p, w->sk, 1) : NULL;
		uint8_t *copy = NULL;
		if (r != NULL && !w->tombstone) {
			copy = malloc(w->len ? w->len : 1);
			if (copy != NULL && w->len)
				memcpy(copy, w->value, w->len);
		}
		/* a row written k times by the batch needs room for k more values */
		if (r == NULL || (!w->tombstone && copy == NULL) || row_reserve(r, r->pending + 1) != 0) {
			free(copy);
			prepared_release(pw, i);
			return agk_fail(AEROGRAM_EINTERNAL, "out of memory at write %zu", i);
		}
		r->pending++;
		pw[i] = (struct prepared_write){ .part = p, .row = r, .copy = copy };
	}
	return 0;
}

/* Applies a prepared batch and wakes the watches of every row it wrote.
 * rows_lock held for writing. */
static void apply_batch(struct aerogram_store *st, const struct aerogram_row_write *writes,
                        size_t n_writes, struct prepared_write *pw)
{
	for (size_t i = 0; i < n_writes; i++) {
		const struct aerogram_row_write *w = &writes[i];
		uint64_t t = 0;
		if (w->token != NULL)
			mem_parse_stamp(w->token, TOKEN_TAG, &t);
		row_apply_reserved(pw[i].row, w->token != NULL, t, w->tombstone != 0, pw[i].copy,
		                   w->len);
		pw[i].copy = NULL;
		mem_watch_row_changed(st, pw[i].row);
	}
	prepared_release(pw, n_writes);
}

/* The shared body of row_insert and row_insert_if: checks the batch, then,
 * under the write lock, the condition (when `cond_pk` is set), and applies
 * the batch whole or not at all. */
static int write_batch(struct aerogram_store *st, const char *call, const char *cond_pk,
                       const char *cond_sk, const char *cond_token,
                       const struct aerogram_row_write *writes, size_t n_writes,
                       char *new_token, size_t new_token_len)
{
	int rc = check_writes(call, writes, n_writes);
	if (rc != 0)
		return rc;
	uint64_t want = 0;
	if (cond_pk != NULL && cond_token != NULL && mem_parse_stamp(cond_token, TOKEN_TAG, &want) != 0)
		return agk_fail(AEROGRAM_EINVAL, "%s: malformed condition token '%.40s'", call,
		                cond_token);
	struct prepared_write small[8];
	struct prepared_write *pw = small;
	if (n_writes > sizeof(small) / sizeof(small[0])) {
		pw = calloc(n_writes, sizeof(*pw));
		if (pw == NULL)
			return agk_fail(AEROGRAM_EINTERNAL, "out of memory");
	}
	pthread_rwlock_wrlock(&st->rows_lock);
	if (cond_pk != NULL) {
		struct mem_partition *p = mem_partition_get(st, cond_pk, 0);
		struct mem_row *r = p ? mem_row_get(p, cond_sk, 0) : NULL;
		int exists = r != NULL && r->n_values > 0; /* not a watch's placeholder */
		if (cond_token == NULL ? exists : !exists || r->counter != want) {
			char have[24] = "none";
			if (exists)
				mem_format_stamp(have, sizeof(have), TOKEN_TAG, r->counter);
			rc = agk_fail(AEROGRAM_ECONFLICT,
			              "%s: row '%s'/'%s' has token %s, the condition wants %.40s", call,
			              cond_pk, cond_sk, have, cond_token ? cond_token : "none");
		}
	}
	if (rc == 0)
		rc = prepare_batch(st, writes, n_writes, pw);
	if (rc == 0) {
		apply_batch(st, writes, n_writes, pw);
		if (cond_pk != NULL && new_token != NULL) {
			struct mem_partition *p = mem_partition_get(st, cond_pk, 0);
			struct mem_row *r = p ? mem_row_get(p, cond_sk, 0) : NULL;
			if (r != NULL && r->n_values > 0)
				mem_format_stamp(new_token, new_token_len, TOKEN_TAG, r->counter);
			else
				new_token[0] = '\0'; /* the row still does not exist */
		}
	}
	pthread_rwlock_unlock(&st->rows_lock);
	if (pw != small)
		free(pw);
	return rc;
}

int mem_row_insert(struct aerogram_store *st, const struct aerogram_row_write *writes,
                   size_t n_writes)
{
	return write_batch(st, "row_insert", NULL, NULL, NULL, writes, n_writes, NULL, 0);
}

/* The longest token this driver makes, NUL included: the tag and 16 digits. */
#define MEM_TOKEN_LEN 18

int mem_row_insert_if(struct aerogram_store *st, const char *cond_pk, const char *cond_sk,
                      const char *cond_token, const struct aerogram_row_write *writes,
                      size_t n_writes, char *new_token, size_t new_token_len)
{
	int rc = agk_check_key("memory", "row_insert_if: the condition's partition key", cond_pk);
	if (rc != 0)
		return rc;
	if ((rc = agk_check_key("memory", "row_insert_if: the condition's sort key", cond_sk)) != 0)
		return rc;
	if (new_token != NULL && new_token_len < MEM_TOKEN_LEN)
		return agk_fail(AEROGRAM_EINVAL,
		                "row_insert_if: new_token_len %zu is below the %d bytes a token may need",
		                new_token_len, MEM_TOKEN_LEN);
	return write_batch(st, "row_insert_if", cond_pk, cond_sk, cond_token, writes, n_writes,
	                   new_token, new_token_len);
}

/* Tombstones a live row with its current token; returns 1 if it was live. */
static int delete_row(struct aerogram_store *st, struct mem_row *r, int *oom)
{
	if (r->n_values == 0 || all_tombstones(r))
		return 0;
	if (row_apply(r, 1, r->counter, 1, NULL, 0) != 0) {
		*oom = 1;
		return 0;
	}
	mem_watch_row_changed(st, r);
	return 1;
}

int mem_row_delete(struct aerogram_store *st, const struct aerogram_row_query *queries,
                   size_t n_queries, uint64_t *deleted)
{
	if (deleted)
		*deleted = 0;
	int rc = agk_check_queries("memory", queries, n_queries, 0);
	if (rc != 0)
		return rc;
	uint64_t count = 0;
	int oom = 0;
	pthread_rwlock_wrlock(&st->rows_lock);
	for (size_t i = 0; i < n_queries && !oom; i++) {
		const struct aerogram_row_query *q = &queries[i];
		struct mem_partition *p = mem_partition_get(st, q->pk, 0);
		if (p == NULL)
			continue;
		if (q->sk != NULL) {
			struct mem_row *r = mem_row_get(p, q->sk, 0);
			if (r != NULL)
				count += (uint64_t)delete_row(st, r, &oom);
			continue;
		}
		const char *prefix = nonempty(q->prefix), *start = nonempty(q->start);
		const char *end = nonempty(q->end);
		for (struct mem_sl_node *n = mem_sl_lower_bound(&p->rows, start ? start : prefix);
		     n != NULL && !oom; n = mem_sl_next(n)) {
			if ((end != NULL && strcmp(n->key, end) >= 0) || !has_prefix(n->key, prefix))
				break;
			count += (uint64_t)delete_row(st, n->value, &oom);
		}
	}
	pthread_rwlock_unlock(&st->rows_lock);
	if (deleted)
		*deleted = count;
	if (oom)
		return agk_fail(AEROGRAM_EINTERNAL, "out of memory while deleting");
	return 0;
}
