/* sqlite_rows.c - rows of the K2V model in SQLite: reads, writes, deletes.
 *
 * Causality is a single-node dotted version vector. Every value written gets
 * a version from the clock row (one counter for the whole file, advanced in
 * the write transaction, so it is shared by every process on the file). A
 * row's token is the newest version it has seen (ctx). A write carrying a
 * token T drops the values with version <= T, that is exactly the values the
 * read that produced T returned; a write without a token drops nothing. The
 * new value gets version max(clock, T) + 1, so the row's token changes on
 * every write, which is what watches wait for.
 *
 * Identical values are merged when written (the older copy is dropped): a
 * value survives a later token write if and only if its newest copy does, so
 * merging early gives the same reads as merging when reading.
 */
#include "drivers/sqlite/sqlite_internal.h"

#include <stdlib.h>
#include <string.h>

int sq_utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		unsigned c = *p;
		size_t n;
		unsigned min;
		if (c < 0x80) {
			p++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			min = 0x80;
			c &= 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			min = 0x800;
			c &= 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			min = 0x10000;
			c &= 0x07;
		} else {
			return 0;
		}
		p++;
		for (size_t i = 0; i < n; i++, p++) {
			if ((*p & 0xc0) != 0x80)
				return 0;
			c = (c << 6) | (*p & 0x3f);
		}
		if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
			return 0;
	}
	return 1;
}

void sq_token_format(uint64_t ctx, char out[32])
{
	static const char hex[] = "0123456789abcdef";
	for (int i = 15; i >= 0; i--) {
		out[i] = hex[ctx & 0xf];
		ctx >>= 4;
	}
	out[16] = '\0';
}

/* Parses a token made by sq_token_format. */
static int sq_token_parse(const char *tok, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;
	for (i = 0; tok[i]; i++) {
		char c = tok[i];
		unsigned d;
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else
			return -1;
		if (i >= 16)
			return -1;
		v = (v << 4) | d;
	}
	if (i != 16)
		return -1;
	*out = v;
	return 0;
}

static int nonempty(const char *s)
{
	return s != NULL && s[0] != '\0';
}

/* is_bound: a range bound (may be empty, any length); else a row key
 * (1 to AEROGRAM_ROW_KEY_MAX bytes, driver.h). */
static int sq_check_key(const char *what, const char *s, int is_bound)
{
	int code = is_bound ? 0 : agk_check_key("sqlite", what, s);
	if (code)
		return code;
	if (!sq_utf8_valid(s))
		return agk_fail(AEROGRAM_EINVAL, "sqlite: %s is not valid UTF-8", what);
	return 0;
}

/* Checks a batch of queries (the ABI's rules, then UTF-8); `for_delete`
 * ignores limit, REVERSE and the flags. */
static int sq_check_queries(const struct aerogram_row_query *queries, size_t n, int for_delete)
{
	int code = agk_check_queries("sqlite", queries, n, !for_delete);
	static const char *const names[5] = { "partition key", "sort key", "prefix", "start", "end" };
	for (size_t i = 0; code == 0 && i < n; i++) {
		const struct aerogram_row_query *q = &queries[i];
		const char *parts[5] = { q->pk, q->sk, q->prefix, q->start, q->end };
		for (int k = 0; code == 0 && k < 5; k++)
			if (parts[k])
				code = sq_check_key(names[k], parts[k], 1); /* the UTF-8 check */
	}
	return code;
}

int sq_prefix_successor(const char *prefix, char **buf)
{
	size_t n = strlen(prefix);
	while (n > 0 && (unsigned char)prefix[n - 1] == 0xff)
		n--;
	if (n == 0)
		return 0;
	char *s = malloc(n + 1);
	if (s == NULL)
		return -1;
	memcpy(s, prefix, n);
	s[n - 1] = (char)((unsigned char)s[n - 1] + 1);
	s[n] = '\0';
	*buf = s;
	return 1;
}

/* A query turned into SQL bounds. */
struct sq_bounds {
	int variant;
	const char *lower;
	const char *upper; /* NULL: none */
	char *owned;       /* a computed prefix successor */
};

static int sq_bounds_make(const struct aerogram_row_query *q, int reverse, struct sq_bounds *b)
{
	const char *prefix = nonempty(q->prefix) ? q->prefix : NULL;
	const char *start = nonempty(q->start) ? q->start : NULL;
	const char *end = nonempty(q->end) ? q->end : NULL;
	char *succ = NULL;
	int has_succ = prefix ? sq_prefix_successor(prefix, &succ) : 0;
	if (has_succ < 0)
		return agk_fail(AEROGRAM_EUNAVAILABLE, "sqlite: out of memory");
	b->owned = succ;
	enum sq_range_lower lo_op;
	/* Unless a bound of the query is tighter, the keys with the prefix end
	 * before its successor (none: no upper bound), in both directions. */
	enum sq_range_upper up_op = has_succ ? SQ_UPPER_LT : SQ_UPPER_NONE;
	b->upper = has_succ ? succ : NULL;
	if (!reverse) {
		lo_op = SQ_LOWER_GE;
		b->lower = start ? start : prefix ? prefix : "";
		if (end && (!has_succ || strcmp(end, succ) < 0)) {
			up_op = SQ_UPPER_LT;
			b->upper = end;
		}
	} else {
		if (start) {
			up_op = SQ_UPPER_LE;
			b->upper = start;
		}
		if (end && (!prefix || strcmp(end, prefix) >= 0)) {
			lo_op = SQ_LOWER_GT;
			b->lower = end;
		} else {
			lo_op = SQ_LOWER_GE;
			b->lower = prefix ? prefix : "";
		}
	}
	b->variant = sq_range_variant(reverse, lo_op, up_op);
	return 0;
}

/* ---- the encoded values of a row (ag_rows.vals) ---- */

static int sq_buf_reserve(struct sq_buf *b, size_t more)
{
	if (b->cap - b->len >= more)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap - b->len < more) {
		if (cap > SIZE_MAX / 2)
			return -1;
		cap *= 2;
	}
	uint8_t *p = realloc(b->p, cap);
	if (p == NULL)
		return -1;
	b->p = p;
	b->cap = cap;
	return 0;
}

static size_t sq_varint_put(uint8_t *out, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		out[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8_t)v;
	return n;
}

static int sq_varint_get(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
	uint64_t v = 0;
	for (unsigned shift = 0; *p < end && shift < 64; shift += 7) {
		uint8_t c = *(*p)++;
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return -1;
}

int sq_vals_encode_one(struct sq_buf *b, const struct sq_val *v)
{
	size_t len = v->tombstone ? 0 : v->len;
	if (sq_buf_reserve(b, 21 + len) != 0)
		return -1;
	b->len += sq_varint_put(b->p + b->len, v->ver);
	b->len += sq_varint_put(b->p + b->len, len);
	b->p[b->len++] = v->tombstone ? 1 : 0;
	if (len)
		memcpy(b->p + b->len, v->data, len);
	b->len += len;
	return 0;
}

/* The next value of an encoded list: 1 and *v (pointing into the list), 0
 * at its end, -1 when the list is malformed. */
static int sq_vals_next(const uint8_t **p, const uint8_t *end, struct sq_val *v)
{
	if (*p == end)
		return 0;
	uint64_t len;
	if (sq_varint_get(p, end, &v->ver) != 0 || sq_varint_get(p, end, &len) != 0 || *p == end)
		return -1;
	uint8_t flag = *(*p)++;
	if (flag > 1 || len > (uint64_t)(end - *p) || (flag && len))
		return -1;
	v->tombstone = flag;
	v->data = *p;
	v->len = (size_t)len;
	*p += len;
	return 1;
}

static int sq_vals_malformed(const char *sk)
{
	return agk_fail(AEROGRAM_EINTERNAL, "sqlite: the values of row '%.200s' are malformed", sk);
}

int sq_row_decode(struct agk_arena *a, const void *vals, size_t vals_len, const char *sk,
                  uint64_t ctx, struct aerogram_row *row)
{
	char tok[32];
	sq_token_format(ctx, tok);
	row->sk = agk_arena_strdup(a, sk);
	row->token = agk_arena_strdup(a, tok);
	row->n_values = 0;
	row->values = NULL;
	if (row->sk == NULL || row->token == NULL)
		return agk_fail(AEROGRAM_EUNAVAILABLE, "sqlite: out of memory");
	const uint8_t *p = vals ? vals : (const uint8_t *)"", *end = p + (vals ? vals_len : 0);
	struct sq_val v;
	size_t n = 0;
	int r;
	while ((r = sq_vals_next(&p, end, &v)) == 1)
		n++;
	if (r < 0)
		return sq_vals_malformed(sk);
	if (n == 0)
		return 0;
	struct aerogram_value *out = agk_arena_alloc(a, n * sizeof(*out));
	if (out == NULL)
		return agk_fail(AEROGRAM_EUNAVAILABLE, "sqlite: out of memory");
	p = vals;
	for (size_t i = 0; i < n && sq_vals_next(&p, end, &v) == 1; i++) {
		out[i].tombstone = v.tombstone;
		out[i].len = v.len;
		out[i].data = NULL;
		if (!v.tombstone) {
			/* an empty value still has data, distinct from a tombstone */
			uint8_t *d = agk_arena_alloc(a, v.len ? v.len : 1);
			if (d == NULL)
				return agk_fail(AEROGRAM_EUNAVAILABLE, "sqlite: out of memory");
			if (v.len)
				memcpy(d, v.data, v.len);
			out[i].data = d;
		}
	}
	row->values = out;
	row->n_values = n;
	return 0;
}

/* ---- read ---- */

struct sq_read_ctx {
	const struct aerogram_row_query *queries;
	size_t n_queries;
	struct agk_row_result *res;
};

/* A growable array of rows for one page (copied into the arena when done). */
struct sq_rowvec {
	struct aerogram_row *v;
	size_t n, cap;
};

static struct aerogram_row *sq_rowvec_push(struct sq_rowvec *rv)
{
	if (agk_grow(&rv->v, &rv->cap, rv->n, sizeof(*rv->v), 16) < 0)
		return NULL;
	return &rv->v[rv->n++];
}

static int sq_read_single(struct sq_conn *conn, struct agk_arena *a,
                          const struct aerogram_row_query *q, struct aerogram_row_page *page)
{
	struct aerogram_row *row = agk_arena_alloc(a, sizeof(*row));
	if (row == NULL)
		return agk_fail(AEROGRAM_EUNAVAILABLE, "sqlite: out of memory");
	struct sq_row_head head;
	int found = sq_row_get(conn, q->pk, q->sk, &head, a, row, "reading a row");
	if (found <= 0)
		return found;
	if (head.n_values == 0 || (head.n_live == 0 && !(q->flags & AEROGRAM_QUERY_TOMBSTONES)))
		return 0;
	if ((q->flags & AEROGRAM_QUERY_CONFLICTS_ONLY) && head.n_values < 2)
		return 0;
	page->rows = row;
	page->n_rows = 1;
	return 0;
}

/* The range statement of bounds b, bound: the query's partition and bounds,
 * whether tombstone-only rows count, the least number of values a row needs
 * and the row limit (-1: none). NULL (b's buffer freed) when it cannot be
 * prepared. */
static sqlite3_stmt *sq_range_stmt(struct sq_conn *conn, const struct aerogram_row_query *q,
                                   struct sq_bounds *b, int tombstones, int min_values,
                                   int64_t limit)
{
	sqlite3_stmt *s = sq_stmt(conn, (enum sq_stmt_id)(SQ_RANGE_FIRST + b->variant));
	if (s == NULL) {
		free(b->owned);
		return NULL;
	}
	sqlite3_bind_text(s, 1, q->pk, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, b->lower, -1, SQLITE_STATIC);
	if (b->upper)
		sqlite3_bind_text(s, 3, b->upper, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 4, tombstones);
	sqlite3_bind_int(s, 5, min_values);
	sqlite3_bind_int64(s, 6, limit);
	return s;
}

/* Reads one range query into page. */
static int sq_read_range(struct sq_conn *conn, struct agk_arena *a,
                         const struct aerogram_row_query *q, struct aerogram_row_page *page)
{
	struct sq_bounds b;
	int code = sq_bounds_make(q, (q->flags & AEROGRAM_QUERY_REVERSE) != 0, &b);
	if (code)
		return code;
	struct sq_rowvec rv = { 0 };
	sqlite3_stmt *s = sq_range_stmt(conn, q, &b, (q->flags & AEROGRAM_QUERY_TOMBSTONES) != 0,
	                                (q->flags & AEROGRAM_QUERY_CONFLICTS_ONLY) ? 2 : 1,
	                                q->limit ? (int64_t)q->limit + 1 : -1);
	if (s == NULL)
		return sq_map_rc(conn->last_rc);
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *sk = (const char *)sqlite3_column_text(s, 0);
		if (q->limit && rv.n == q->limit) {
			page->more = 1;
			page->next_start = agk_arena_strdup(a, sk ? sk : "");
			if (page->next_start == NULL)
				code = agk_fail(AEROGRAM_EUNAVAILABLE, "sqlite: out of memory");
			break;
		}
		struct aerogram_row *row = sq_rowvec_push(&rv);
		if (row == NULL) {
			code = agk_fail(AEROGRAM_EUNAVAILABLE, "sqlite: out of memory");
			break;
		}
		code = sq_row_decode(a, sqlite3_column_blob(s, 4), (size_t)sqlite3_column_bytes(s, 4),
		                     sk ? sk : "", (uint64_t)sqlite3_column_int64(s, 1), row);
		if (code)
			break;
	}
	if (code == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
		code = sq_db_fail(conn, rc, "reading a range");
	sqlite3_reset(s);
	free(b.owned);
	if (code == 0 && rv.n) {
		page->rows = agk_arena_memdup(a, rv.v, rv.n * sizeof(*rv.v));
		page->n_rows = rv.n;
		if (page->rows == NULL)
			code = agk_fail(AEROGRAM_EUNAVAILABLE, "sqlite: out of memory");
	}
	free(rv.v);
	return code;
}

static int sq_read_txn(struct sq_conn *conn, void *arg)
{
	struct sq_read_ctx *c = arg;
	struct agk_row_result *res = c->res;
	memset(&res->pub, 0, sizeof(res->pub));
	struct aerogram_row_page *pages = agk_arena_restart(&res->arena, c->n_queries, sizeof(*pages));
	if (pages == NULL)
		return agk_fail(AEROGRAM_EUNAVAILABLE, "sqlite: out of memory");
	for (size_t i = 0; i < c->n_queries; i++) {
		const struct aerogram_row_query *q = &c->queries[i];
		int code = q->sk ? sq_read_single(conn, &res->arena, q, &pages[i])
		                 : sq_read_range(conn, &res->arena, q, &pages[i]);
		if (code)
			return code;
	}
	res->pub.pages = pages;
	res->pub.n_pages = c->n_queries;
	return 0;
}

int sq_row_read(struct aerogram_store *st, const struct aerogram_row_query *queries,
                size_t n_queries, struct aerogram_row_result **out)
{
	*out = NULL;
	int code = sq_check_queries(queries, n_queries, 0);
	if (code)
		return code;
	struct agk_row_result *res = agk_row_result_new();
	if (res == NULL)
		return agk_fail(AEROGRAM_EUNAVAILABLE, "sqlite: out of memory");
	struct sq_read_ctx c = { queries, n_queries, res };
	code = sq_txn(st, 0, sq_read_txn, &c);
	return agk_row_result_done(code, res, out);
}

/* ---- write ---- */

/* The state of one write transaction. */
struct sq_writer {
	struct sq_conn *conn;
	uint64_t clock; /* the newest version handed out */
	int64_t now;    /* wall clock ms, for forgetting old tombstones later */
};

static int sq_writer_begin(struct sq_conn *conn, struct sq_writer *w)
{
	w->conn = conn;
	w->now = (int64_t)sq_wall_ms();
	sqlite3_stmt *s = sq_stmt(conn, SQ_CLOCK_GET);
	if (s == NULL)
		return sq_map_rc(conn->last_rc);
	int rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		int code = sq_db_fail(conn, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, "reading the clock");
		sqlite3_reset(s);
		return code;
	}
	w->clock = (uint64_t)sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (!conn->txn_clock_set) {
		/* the first look of the transaction: the clock it began with */
		conn->txn_clock = w->clock;
		conn->txn_clock_set = 1;
	}
	return 0;
}

static int sq_step_done(struct sq_conn *conn, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);
	int code = rc == SQLITE_DONE ? 0 : sq_db_fail(conn, rc, what);
	sqlite3_reset(s);
	return code;
}

/* Applies one write (token: has_token/token) inside the transaction: reads
 * the row, computes its new values in memory and writes the row back in
 * one statement. *ver_out gets the row's new token (its ctx). */
static int sq_write_one(struct sq_writer *w, const char *pk, const char *sk, int has_token,
                        uint64_t token, int tombstone, const uint8_t *value, size_t len,
                        uint64_t *ver_out)
{
	struct sq_conn *conn = w->conn;
	sqlite3_stmt *s;
	int found = sq_row_find(conn, pk, sk, "finding a row", &s);
	if (found < 0)
		return found;

	/* Tokens are versions; one larger than the clock (from a file that was
	 * restored from an older copy, say) pushes the clock forward so the new
	 * value still supersedes it. */
	uint64_t ver = (has_token && token > w->clock ? token : w->clock) + 1;
	w->clock = ver;
	*ver_out = ver;
	struct sq_val nv = { ver, tombstone, tombstone ? NULL : value, tombstone ? 0 : len };
	int64_t n_live = 0, n_values = 0;
	uint64_t discard = 0;
	struct sq_buf *b = &conn->vals;
	b->len = 0;
	int code = 0;
	if (found) {
		discard = (uint64_t)sqlite3_column_int64(s, 1);
		const uint8_t *p = sqlite3_column_blob(s, 4);
		const uint8_t *end = p ? p + sqlite3_column_bytes(s, 4) : p;
		struct sq_val v;
		int r;
		while (code == 0 && (r = sq_vals_next(&p, end, &v)) == 1) {
			/* A token drops exactly the values the read that made it
			 * returned; an identical value is merged with the new one. */
			if (has_token && v.ver <= token)
				continue;
			if (v.tombstone == nv.tombstone &&
			    (v.tombstone || (v.len == nv.len && (v.len == 0 || memcmp(v.data, nv.data, v.len) == 0))))
				continue;
			if (sq_vals_encode_one(b, &v) != 0)
				code = agk_fail(AEROGRAM_EUNAVAILABLE, "sqlite: out of memory");
			n_values++;
			n_live += !v.tombstone;
		}
		if (code == 0 && r < 0)
			code = sq_vals_malformed(sk);
	}
	sqlite3_reset(s);
	if (code)
		return code;
	if (has_token && token > discard)
		discard = token;
	if (sq_vals_encode_one(b, &nv) != 0)
		return agk_fail(AEROGRAM_EUNAVAILABLE, "sqlite: out of memory");
	n_values++;
	n_live += !tombstone;

	if ((s = sq_stmt(conn, found ? SQ_ROW_UPDATE : SQ_ROW_NEW)) == NULL)
		return sq_map_rc(conn->last_rc);
	/* the same parameters for both; a bind fails only for values over
	 * SQLite's length limit */
	sqlite3_bind_text(s, 1, pk, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, sk, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, (int64_t)ver);
	sqlite3_bind_int64(s, 4, (int64_t)discard);
	sqlite3_bind_int64(s, 5, n_live);
	sqlite3_bind_int64(s, 6, n_values);
	sqlite3_bind_int64(s, 7, w->now);
	int rc_bind = sqlite3_bind_blob64(s, 8, b->p, b->len, SQLITE_STATIC);
	if (rc_bind != SQLITE_OK)
		return sq_db_fail(conn, rc_bind, "storing a value");
	code = sq_step_done(conn, s, found ? "updating a row" : "creating a row");
	if (code == 0 && sq_change_add(conn, pk, sk, ver) != 0)
		code = agk_fail(AEROGRAM_EUNAVAILABLE, "sqlite: out of memory");
	return code;
}

struct sq_insert_ctx {
	const struct aerogram_row_write *writes;
	const uint64_t *tokens;
	size_t n;
	/* row_insert_if: the condition, and where the new token goes */
	const char *cond_pk, *cond_sk;
	int cond_has_token;
	uint64_t cond_token;
	char *new_token;
};

/* The condition of row_insert_if, inside the write transaction: the row has
 * exactly the token (or, without one, does not exist at all). On success
 * *exists says whether the row exists (then with the token). */
static int sq_check_condition(struct sq_conn *conn, const struct sq_insert_ctx *c, int *exists_out)
{
	struct sq_row_head head;
	int found = sq_row_head(conn, c->cond_pk, c->cond_sk, &head, "reading the condition row");
	if (found < 0)
		return found;
	int exists = found && head.n_values > 0;
	*exists_out = exists;
	if (c->cond_has_token ? exists && head.ctx == c->cond_token : !exists)
		return 0;
	char have[32] = "none", want[32] = "none";
	if (exists)
		sq_token_format(head.ctx, have);
	if (c->cond_has_token)
		sq_token_format(c->cond_token, want);
	return agk_fail(AEROGRAM_ECONFLICT,
	               "sqlite: row_insert_if: row '%.200s'/'%.200s' has token %s, the condition wants %s",
	               c->cond_pk, c->cond_sk, have, want);
}

static int sq_insert_txn(struct sq_conn *conn, void *arg)
{
	struct sq_insert_ctx *c = arg;
	int exists = 0;
	int code = c->cond_pk ? sq_check_condition(conn, c, &exists) : 0;
	if (code)
		return code;
	/* the token a read right after the commit returns: the condition's
	 * (it exists, with that token) unless the batch writes the row */
	uint64_t cond_ctx = c->cond_token;
	struct sq_writer w;
	code = sq_writer_begin(conn, &w);
	for (size_t i = 0; code == 0 && i < c->n; i++) {
		const struct aerogram_row_write *wr = &c->writes[i];
		uint64_t ver;
		code = sq_write_one(&w, wr->pk, wr->sk, wr->token != NULL, c->tokens[i],
		                    wr->tombstone != 0, wr->value, wr->len, &ver);
		if (code == 0 && c->cond_pk && strcmp(wr->sk, c->cond_sk) == 0 &&
		    strcmp(wr->pk, c->cond_pk) == 0) {
			exists = 1;
			cond_ctx = ver;
		}
	}
	if (code == 0 && c->new_token) {
		if (exists)
			sq_token_format(cond_ctx, c->new_token);
		else
			c->new_token[0] = '\0'; /* it still does not exist */
	}
	return code;
}

/* Checks a batch of writes and parses their tokens into tokens[]: a bad item
 * applies nothing. */
static int sq_check_writes(const struct aerogram_row_write *writes, size_t n_writes,
                           uint64_t *tokens)
{
	int code = 0;
	for (size_t i = 0; code == 0 && i < n_writes; i++) {
		const struct aerogram_row_write *wr = &writes[i];
		if ((code = sq_check_key("partition key", wr->pk, 0)) != 0 ||
		    (code = sq_check_key("sort key", wr->sk, 0)) != 0)
			break;
		if (!wr->tombstone && wr->len > 0 && wr->value == NULL)
			code = agk_fail(AEROGRAM_EINVAL, "sqlite: value of %zu bytes without data", wr->len);
		else if (!wr->tombstone && wr->len > (size_t)INT32_MAX)
			code = agk_fail(AEROGRAM_ETOOBIG, "sqlite: value of %zu bytes is over the 2 GiB limit",
			               wr->len);
		else if (wr->token && sq_token_parse(wr->token, &tokens[i]) != 0)
			code = agk_fail(AEROGRAM_EINVAL, "sqlite: bad causality token '%.40s'", wr->token);
	}
	return code;
}

/* row_insert and row_insert_if: checks the batch, then runs it in one write
 * transaction (with the condition checked first when c->cond_pk is set). */
static int sq_insert_batch(struct aerogram_store *st, struct sq_insert_ctx *c)
{
	if (c->n && c->writes == NULL)
		return agk_fail(AEROGRAM_EINVAL, "sqlite: no writes");
	uint64_t *tokens = calloc(c->n ? c->n : 1, sizeof(*tokens));
	if (tokens == NULL)
		return agk_fail(AEROGRAM_EUNAVAILABLE, "sqlite: out of memory");
	int code = sq_check_writes(c->writes, c->n, tokens);
	if (code == 0) {
		c->tokens = tokens;
		code = sq_txn(st, SQ_WRITE, sq_insert_txn, c);
	}
	free(tokens);
	return code;
}

int sq_row_insert(struct aerogram_store *st, const struct aerogram_row_write *writes,
                  size_t n_writes)
{
	if (n_writes == 0)
		return 0;
	struct sq_insert_ctx c = { .writes = writes, .n = n_writes };
	return sq_insert_batch(st, &c);
}

/* Tokens are 16 hex digits: with the NUL, what new_token must hold. */
#define SQ_TOKEN_LEN 17

int sq_row_insert_if(struct aerogram_store *st, const char *cond_pk, const char *cond_sk,
                     const char *cond_token, const struct aerogram_row_write *writes,
                     size_t n_writes, char *new_token, size_t new_token_len)
{
	int code;
	if ((code = sq_check_key("condition partition key", cond_pk, 0)) != 0 ||
	    (code = sq_check_key("condition sort key", cond_sk, 0)) != 0)
		return code;
	struct sq_insert_ctx c = { .writes = writes, .n = n_writes, .cond_pk = cond_pk,
		                   .cond_sk = cond_sk, .cond_has_token = cond_token != NULL };
	if (cond_token && sq_token_parse(cond_token, &c.cond_token) != 0)
		return agk_fail(AEROGRAM_EINVAL, "sqlite: bad condition token '%.40s'", cond_token);
	if (new_token && new_token_len < SQ_TOKEN_LEN)
		return agk_fail(AEROGRAM_EINVAL, "sqlite: new_token_len %zu is below the %d bytes of a token",
		               new_token_len, SQ_TOKEN_LEN);
	char token[32];
	c.new_token = new_token ? token : NULL;
	code = sq_insert_batch(st, &c);
	if (code == 0 && new_token)
		memcpy(new_token, token, strlen(token) + 1);
	return code;
}

/* ---- delete ---- */

struct sq_delete_ctx {
	const struct aerogram_row_query *queries;
	size_t n_queries;
	uint64_t deleted;
};

/* Tombstones the live rows one query matches. */
static int sq_delete_query(struct sq_writer *w, const struct aerogram_row_query *q,
                           uint64_t *deleted)
{
	struct sq_conn *conn = w->conn;
	if (q->sk) {
		struct sq_row_head head;
		int found = sq_row_head(conn, q->pk, q->sk, &head, "finding a row");
		if (found <= 0)
			return found;
		if (head.n_live == 0)
			return 0;
		(*deleted)++;
		uint64_t ver;
		return sq_write_one(w, q->pk, q->sk, 1, head.ctx, 1, NULL, 0, &ver);
	}
	struct sq_bounds b;
	int code = sq_bounds_make(q, 0, &b);
	if (code)
		return code;
	/* Collect first, then write: never modify the table under a running scan. */
	struct agk_arena a = { 0 };
	struct { const char *sk; uint64_t ctx; } *items = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *s = sq_range_stmt(conn, q, &b, 0, 1, -1);
	if (s == NULL)
		return sq_map_rc(conn->last_rc);
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (agk_grow(&items, &cap, n, sizeof(*items), 64) < 0) {
			code = agk_fail(AEROGRAM_EUNAVAILABLE, "sqlite: out of memory");
			break;
		}
		const char *sk = (const char *)sqlite3_column_text(s, 0);
		items[n].sk = agk_arena_strdup(&a, sk ? sk : "");
		items[n].ctx = (uint64_t)sqlite3_column_int64(s, 1);
		if (items[n].sk == NULL) {
			code = agk_fail(AEROGRAM_EUNAVAILABLE, "sqlite: out of memory");
			break;
		}
		n++;
	}
	if (code == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
		code = sq_db_fail(conn, rc, "reading a range to delete");
	sqlite3_reset(s);
	free(b.owned);
	for (size_t i = 0; code == 0 && i < n; i++) {
		uint64_t ver;
		code = sq_write_one(w, q->pk, items[i].sk, 1, items[i].ctx, 1, NULL, 0, &ver);
		if (code == 0)
			(*deleted)++;
	}
	free(items);
	agk_arena_free(&a);
	return code;
}

static int sq_delete_txn(struct sq_conn *conn, void *arg)
{
	struct sq_delete_ctx *c = arg;
	c->deleted = 0;
	struct sq_writer w;
	int code = sq_writer_begin(conn, &w);
	for (size_t i = 0; code == 0 && i < c->n_queries; i++)
		code = sq_delete_query(&w, &c->queries[i], &c->deleted);
	return code;
}

int sq_row_delete(struct aerogram_store *st, const struct aerogram_row_query *queries,
                  size_t n_queries, uint64_t *deleted)
{
	if (deleted)
		*deleted = 0;
	int code = sq_check_queries(queries, n_queries, 1);
	if (code)
		return code;
	if (n_queries == 0)
		return 0;
	struct sq_delete_ctx c = { queries, n_queries, 0 };
	code = sq_txn(st, SQ_WRITE_DEFERRED, sq_delete_txn, &c);
	if (code == 0 && deleted)
		*deleted = c.deleted;
	return code;
}

/* ---- forgetting old tombstones ---- */

struct sq_forget_ctx {
	int64_t before; /* wall clock ms */
	uint64_t forgotten;
	int full; /* the batch was full: there may be more */
};

static int sq_forget_txn(struct sq_conn *conn, void *arg)
{
	struct sq_forget_ctx *c = arg;
	struct { const char *pk, *sk; } keys[500];
	struct agk_arena a = { 0 };
	size_t n = 0;
	int code = 0;
	c->forgotten = 0;
	c->full = 0;
	sqlite3_stmt *s = sq_stmt(conn, SQ_ROW_DEAD);
	if (s == NULL)
		return sq_map_rc(conn->last_rc);
	sqlite3_bind_int64(s, 1, c->before);
	int rc = SQLITE_DONE;
	/* Collect first, then delete: never modify the table under a running scan. */
	while (code == 0 && n < 500 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *pk = (const char *)sqlite3_column_text(s, 0);
		const char *sk = (const char *)sqlite3_column_text(s, 1);
		keys[n].pk = agk_arena_strdup(&a, pk ? pk : "");
		keys[n].sk = agk_arena_strdup(&a, sk ? sk : "");
		if (keys[n].pk == NULL || keys[n].sk == NULL)
			code = agk_fail(AEROGRAM_EUNAVAILABLE, "sqlite: out of memory");
		n++;
	}
	if (code == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
		code = sq_db_fail(conn, rc, "finding old tombstones");
	sqlite3_reset(s);
	for (size_t i = 0; code == 0 && i < n; i++) {
		if ((s = sq_stmt(conn, SQ_ROW_DEL)) == NULL) {
			code = sq_map_rc(conn->last_rc);
			break;
		}
		sqlite3_bind_text(s, 1, keys[i].pk, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, keys[i].sk, -1, SQLITE_STATIC);
		code = sq_step_done(conn, s, "forgetting a row");
	}
	agk_arena_free(&a);
	if (code)
		return code;
	c->forgotten = n;
	c->full = n == 500;
	return 0;
}

uint64_t sq_rows_forget(struct aerogram_store *st)
{
	struct sq_forget_ctx c = { 0 };
	c.before = (int64_t)sq_wall_ms() - (int64_t)st->tombstone_ttl_s * 1000;
	uint64_t total = 0;
	/* Batches of 500, each its own short transaction, so writers wait
	 * milliseconds, not the length of the whole cleanup. */
	do {
		if (sq_txn(st, SQ_WRITE_DEFERRED, sq_forget_txn, &c) != 0)
			break;
		total += c.forgotten;
	} while (c.full && !st->sweep.stop);
	return total;
}
