/*
 * garage_k2v.c - rows on Garage's K2V API: row_read as ReadBatch, row_insert
 * as InsertBatch, row_delete as DeleteBatch, and the parsing of K2V items
 * that the watches share.
 */
#include "drivers/garage/garage.h"
#include "drivers/garage/sigv4.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

static int nonempty(const char *s)
{
	return s && *s;
}

/* ---- causality tokens and seen markers ---- */

int gr_token_valid(const char *token)
{
	/* Garage's format (docs/garage-api.md 1.3): URL-safe base64 without
	 * padding of checksum:u64be then (node:u64be, time:u64be)*, where the
	 * checksum is the XOR of every other word. */
	size_t len = strlen(token);
	if (len == 0 || len > 4096 || len % 4 == 1)
		return 0;
	char std[4100];
	for (size_t i = 0; i < len; i++) {
		char c = token[i];
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			std[i] = c;
		else if (c == '-')
			std[i] = '+';
		else if (c == '_')
			std[i] = '/';
		else
			return 0;
	}
	size_t n = len;
	while (n % 4)
		std[n++] = '=';
	std[n] = 0;
	uint8_t *bytes;
	size_t blen;
	if (gr_base64_decode(std, &bytes, &blen) < 0)
		return 0;
	int ok = blen % 16 == 8;
	if (ok) {
		uint64_t x = 0;
		for (size_t w = 0; w < blen / 8; w++) {
			uint64_t v = 0;
			for (size_t k = 0; k < 8; k++)
				v = v << 8 | bytes[w * 8 + k];
			x ^= v;
		}
		ok = x == 0; /* the checksum word cancels the XOR of the others */
	}
	free(bytes);
	return ok;
}

/* ---- parsing items ---- */

static struct aerogram_row *rows_push(struct gr_rows *r)
{
	if (agk_grow(&r->rows, &r->cap, r->n, sizeof(*r->rows), 8) < 0)
		return NULL;
	struct aerogram_row *row = &r->rows[r->n++];
	memset(row, 0, sizeof(*row));
	return row;
}

static int same_value(const struct aerogram_value *a, const struct aerogram_value *b)
{
	if (a->tombstone || b->tombstone)
		return a->tombstone && b->tombstone;
	return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* Fill row->values from a JSON array of base64 strings and nulls, dropping
 * duplicates (Garage already does; a lesser server might not). */
static int parse_values(struct gr_rows *r, struct aerogram_row *row, const json_t *v)
{
	if (!json_is_array(v))
		return -1;
	size_t n = json_array_size(v);
	struct aerogram_value *vals = agk_arena_alloc(&r->arena, (n ? n : 1) * sizeof(*vals));
	if (!vals)
		return -1;
	size_t count = 0;
	for (size_t i = 0; i < n; i++) {
		const json_t *e = json_array_get(v, i);
		struct aerogram_value val = {0};
		if (json_is_null(e)) {
			val.tombstone = 1;
		} else if (json_is_string(e)) {
			uint8_t *bytes;
			size_t len;
			if (gr_base64_decode(json_string_value(e), &bytes, &len) < 0)
				return -1;
			uint8_t *copy = (uint8_t *)agk_arena_strndup(&r->arena, (const char *)bytes, len);
			free(bytes);
			if (!copy)
				return -1;
			val.data = copy;
			val.len = len;
		} else {
			return -1;
		}
		int dup = 0;
		for (size_t k = 0; k < count && !dup; k++)
			dup = same_value(&vals[k], &val);
		if (!dup)
			vals[count++] = val;
	}
	row->values = vals;
	row->n_values = count;
	return 0;
}

int gr_rows_parse_item(struct gr_rows *r, const char *sk, const char *token,
                       const void *values_json)
{
	struct aerogram_row *row = rows_push(r);
	if (!row)
		return -1;
	row->sk = agk_arena_strdup(&r->arena, sk);
	row->token = agk_arena_strdup(&r->arena, token ? token : "");
	if (!row->sk || !row->token || parse_values(r, row, values_json) < 0) {
		r->n--;
		return -1;
	}
	return 0;
}

int gr_rows_parse(struct gr_rows *r, const void *items_json)
{
	const json_t *items = items_json;
	if (!json_is_array(items))
		return -1;
	for (size_t i = 0; i < json_array_size(items); i++) {
		const json_t *it = json_array_get(items, i);
		const char *sk = json_string_value(json_object_get(it, "sk"));
		const char *ct = json_string_value(json_object_get(it, "ct"));
		if (!sk || !ct)
			return -1;
		if (gr_rows_parse_item(r, sk, ct, json_object_get(it, "v")) < 0)
			return -1;
	}
	return 0;
}

void gr_rows_free(struct gr_rows *r)
{
	free(r->rows);
	agk_arena_free(&r->arena);
	memset(r, 0, sizeof(*r));
}

int gr_row_live(const struct aerogram_row *row)
{
	for (size_t i = 0; i < row->n_values; i++)
		if (!row->values[i].tombstone)
			return 1;
	return 0;
}

/* ---- shared request plumbing ---- */

/* A K2V request on the bucket itself (POST /{bucket}?keyword). */
static int bucket_request(struct gr_store *st, struct gr_request *req, const char *op,
                          const char *keyword, json_t *body)
{
	gr_request_init(req, st, GR_K2V, op, "POST");
	struct gbuf path = {0};
	gbuf_addf(&path, "/%s", st->bucket_enc);
	req->path = gbuf_take(&path);
	req->query = keyword ? strdup(keyword) : NULL;
	req->body = json_dumps(body, JSON_COMPACT);
	if (!req->path || (keyword && !req->query) || !req->body ||
	    gr_request_plain(req, "Content-Type: application/json") < 0)
		return agk_fail(AEROGRAM_EINTERNAL, "garage: out of memory building %s", op);
	req->body_len = strlen(req->body);
	return 0;
}

/* Run one request and parse its JSON answer into *out (NULL for an empty
 * 2xx body). Returns 0 or a recorded error. */
static int run_json(struct gr_store *st, struct gr_request *req, json_t **out)
{
	*out = NULL;
	gr_perform(st, &req, 1);
	int rc = gr_request_status(req);
	if (rc != AEROGRAM_OK)
		return rc;
	if (req->response.len == 0)
		return 0;
	json_error_t jerr;
	*out = json_loadb(req->response.data, req->response.len, 0, &jerr);
	if (!*out)
		return agk_fail(AEROGRAM_EINTERNAL, "garage: unreadable JSON from %s: %s", req->op,
		               jerr.text);
	return 0;
}

static int set_str(json_t *obj, const char *key, const char *value)
{
	return json_object_set_new(obj, key, json_string(value));
}

/* ---- row_read ---- */

struct read_state {
	const struct aerogram_row_query *q;
	const char *start; /* the start of the next round (q->start or a next_start) */
	char *next_start;  /* owned */
	int more;
	int finished;
	struct gr_rows rows;
};

struct gr_row_result_impl {
	struct aerogram_row_result pub; /* first: the handle the host sees */
	struct aerogram_row_page *pages;
	struct read_state *states;
	size_t n;
};

/* A JSON object naming the rows a query selects, in the form ReadBatch and
 * DeleteBatch share: partitionKey, then singleItem + start, or prefix /
 * start / end (start given separately: ReadBatch continues from nextStart).
 * NULL when out of memory. */
static json_t *selector_json(const struct aerogram_row_query *q, const char *start)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	set_str(o, "partitionKey", q->pk);
	if (q->sk) {
		set_str(o, "start", q->sk);
		json_object_set_new(o, "singleItem", json_true());
	} else {
		if (nonempty(q->prefix))
			set_str(o, "prefix", q->prefix);
		if (nonempty(start))
			set_str(o, "start", start);
		if (nonempty(q->end))
			set_str(o, "end", q->end);
	}
	return o;
}

/* Filters are applied here, after Garage has merged the replicas' answers,
 * never by Garage: each replica of a range read filters and cuts its own
 * page before the merge (src/table/table.rs, get_range_internal), so with
 * "tombstones: false" a replica holding the tombstone drops the row while a
 * lagging one still returns the live value, and the merge brings a deleted
 * row back. So every query asks for tombstones and every value, and the
 * ABI's filters (hide tombstones, conflicts only) run on the merged rows;
 * a limited query asks for what it still lacks and goes on from nextStart
 * while filtered rows leave its page short. */
static json_t *read_query_json(const struct read_state *s)
{
	const struct aerogram_row_query *q = s->q;
	json_t *o = selector_json(q, s->start);
	if (!o)
		return NULL;
	if (!q->sk) {
		if (q->limit)
			json_object_set_new(o, "limit", json_integer(q->limit - s->rows.n));
		json_object_set_new(o, "reverse", json_boolean(q->flags & AEROGRAM_QUERY_REVERSE));
	}
	json_object_set_new(o, "conflictsOnly", json_false());
	json_object_set_new(o, "tombstones", json_true());
	return o;
}

/* Whether a merged row passes the query's filters. */
static int row_wanted(const struct aerogram_row_query *q, const struct aerogram_row *row)
{
	if (!(q->flags & AEROGRAM_QUERY_TOMBSTONES) && !gr_row_live(row))
		return 0;
	if ((q->flags & AEROGRAM_QUERY_CONFLICTS_ONLY) && row->n_values < 2)
		return 0;
	return 1;
}

static void read_states_free(struct read_state *states, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(states[i].next_start);
		gr_rows_free(&states[i].rows);
	}
	free(states);
}

/* One ReadBatch round over the unfinished queries. *left receives how many
 * are still unfinished afterwards. */
static int read_round(struct gr_store *st, struct read_state *states, size_t n, size_t *left)
{
	size_t *idx = calloc(n, sizeof(*idx));
	json_t *arr = json_array();
	if (!idx || !arr) {
		free(idx);
		json_decref(arr);
		return agk_fail(AEROGRAM_EINTERNAL, "garage: out of memory");
	}
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		if (states[i].finished)
			continue;
		idx[m++] = i;
		json_array_append_new(arr, read_query_json(&states[i]));
	}
	struct gr_request req;
	int rc = bucket_request(st, &req, "ReadBatch", "search", arr);
	json_decref(arr);
	json_t *resp = NULL;
	if (rc == 0)
		rc = run_json(st, &req, &resp);
	gr_request_free(&req);
	if (rc == 0 && (!json_is_array(resp) || json_array_size(resp) != m))
		rc = agk_fail(AEROGRAM_EINTERNAL, "garage: ReadBatch answered %zu results for %zu "
		                                 "queries",
		             json_is_array(resp) ? json_array_size(resp) : 0, m);
	*left = 0;
	for (size_t k = 0; rc == 0 && k < m; k++) {
		struct read_state *s = &states[idx[k]];
		const json_t *res = json_array_get(resp, k);
		size_t had = s->rows.n;
		if (gr_rows_parse(&s->rows, json_object_get(res, "items")) < 0) {
			rc = agk_fail(AEROGRAM_EINTERNAL, "garage: malformed items in ReadBatch answer");
			break;
		}
		size_t kept = had;
		for (size_t r = had; r < s->rows.n; r++)
			if (row_wanted(s->q, &s->rows.rows[r]))
				s->rows.rows[kept++] = s->rows.rows[r];
		s->rows.n = kept;
		int more = json_is_true(json_object_get(res, "more"));
		const char *next = json_string_value(json_object_get(res, "nextStart"));
		free(s->next_start);
		s->next_start = more && next ? strdup(next) : NULL;
		if (more && !next) {
			rc = agk_fail(AEROGRAM_EINTERNAL, "garage: ReadBatch said more without nextStart");
			break;
		}
		if (more && !s->q->sk && (s->q->limit == 0 || s->rows.n < s->q->limit)) {
			/* Unlimited, or short of its limit after filtering:
			 * continue this query from nextStart. */
			s->start = s->next_start;
			(*left)++;
		} else {
			s->more = more;
			s->finished = 1;
		}
	}
	json_decref(resp);
	free(idx);
	return rc;
}

int gr_row_read(struct aerogram_store *store, const struct aerogram_row_query *queries,
                size_t n, struct aerogram_row_result **out)
{
	struct gr_store *st = (struct gr_store *)store;
	*out = NULL;
	int rc = agk_check_queries("garage", queries, n, 1);
	if (rc != 0)
		return rc;
	struct read_state *states = calloc(n ? n : 1, sizeof(*states));
	if (!states)
		return agk_fail(AEROGRAM_EINTERNAL, "garage: out of memory");
	for (size_t i = 0; i < n; i++) {
		states[i].q = &queries[i];
		states[i].start = queries[i].start;
	}
	size_t left = n;
	while (rc == 0 && left > 0)
		rc = read_round(st, states, n, &left);
	if (rc) {
		read_states_free(states, n);
		return rc;
	}
	struct gr_row_result_impl *res = calloc(1, sizeof(*res));
	struct aerogram_row_page *pages = calloc(n ? n : 1, sizeof(*pages));
	if (!res || !pages) {
		free(res);
		free(pages);
		read_states_free(states, n);
		return agk_fail(AEROGRAM_EINTERNAL, "garage: out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		pages[i].rows = states[i].rows.rows;
		pages[i].n_rows = states[i].rows.n;
		pages[i].more = states[i].more;
		pages[i].next_start = pages[i].more ? states[i].next_start : NULL;
	}
	res->pub.n_pages = n;
	res->pub.pages = pages;
	res->pages = pages;
	res->states = states;
	res->n = n;
	*out = &res->pub;
	return 0;
}

void gr_row_result_free(struct aerogram_store *store, struct aerogram_row_result *result)
{
	(void)store;
	if (!result)
		return;
	struct gr_row_result_impl *res = (struct gr_row_result_impl *)result;
	read_states_free(res->states, res->n);
	free(res->pages);
	free(res);
}

/* ---- row_insert ---- */

int gr_row_insert(struct aerogram_store *store, const struct aerogram_row_write *writes,
                  size_t n)
{
	struct gr_store *st = (struct gr_store *)store;
	if (n == 0)
		return 0;
	json_t *arr = json_array();
	if (!arr)
		return agk_fail(AEROGRAM_EINTERNAL, "garage: out of memory");
	int all_tokens = 1;
	for (size_t i = 0; i < n; i++) {
		const struct aerogram_row_write *w = &writes[i];
		int krc = agk_check_key("garage", "the partition key of a write", w->pk);
		if (krc == 0)
			krc = agk_check_key("garage", "the sort key of a write", w->sk);
		if (krc) {
			json_decref(arr);
			return krc;
		}
		if (!w->tombstone && w->len && !w->value) {
			json_decref(arr);
			return agk_fail(AEROGRAM_EINVAL, "garage: write %zu (%s/%s) has no value", i, w->pk, w->sk);
		}
		json_t *o = json_object();
		set_str(o, "pk", w->pk);
		set_str(o, "sk", w->sk);
		if (nonempty(w->token) && !gr_token_valid(w->token)) {
			json_decref(o);
			json_decref(arr);
			return agk_fail(AEROGRAM_EINVAL, "garage: write %zu (%s/%s) carries a malformed "
			                                "causality token",
			               i, w->pk, w->sk);
		}
		if (nonempty(w->token))
			set_str(o, "ct", w->token);
		else {
			json_object_set_new(o, "ct", json_null());
			all_tokens = 0;
		}
		if (w->tombstone) {
			json_object_set_new(o, "v", json_null());
		} else {
			char *b64 = gr_base64_encode(w->value, w->len);
			if (!b64) {
				json_decref(o);
				json_decref(arr);
				return agk_fail(AEROGRAM_ETOOBIG, "garage: value of %s/%s too large", w->pk,
				               w->sk);
			}
			set_str(o, "v", b64);
			free(b64);
		}
		json_array_append_new(arr, o);
	}
	struct gr_request req;
	int rc = bucket_request(st, &req, "InsertBatch", NULL, arr);
	json_decref(arr);
	if (rc == 0) {
		/* With every item carrying its token, repeating the batch writes
		 * the same values over the same contexts: identical siblings that
		 * reads merge. Without tokens a repeat adds siblings, so it is
		 * only repeated when the server provably never saw it. */
		req.retry = all_tokens ? GR_RETRY_ALWAYS : GR_RETRY_CONNECT;
		json_t *resp = NULL;
		rc = run_json(st, &req, &resp);
		json_decref(resp);
	}
	gr_request_free(&req);
	return rc;
}

/* ---- row_delete ---- */

/* Tombstones per InsertBatch when a delete covers many rows. */
#define DELETE_CHUNK 500

/* Not Garage's DeleteBatch: that reads the range on each replica with the
 * tombstones filtered out before the merge (src/api/k2v/batch.rs, range.rs),
 * so a replica that lags on a delete hands the row back live, and deleting
 * it again counts it again. The driver reads the rows itself (ReadBatch,
 * tombstones asked for and filtered after the merge, following nextStart)
 * and writes a tombstone with each live row's token (InsertBatch): exactly
 * the live rows of the merged view are deleted and counted, and a value
 * written since the read survives as a sibling, as the ABI says. It costs
 * one request more than DeleteBatch; the host deletes in bulk only when it
 * collects old log rows or removes a mailbox. */
int gr_row_delete(struct aerogram_store *store, const struct aerogram_row_query *queries,
                  size_t n, uint64_t *deleted)
{
	if (deleted)
		*deleted = 0;
	if (n == 0)
		return 0;
	int rc = agk_check_queries("garage", queries, n, 0);
	if (rc != 0)
		return rc;
	struct aerogram_row_query *rq = calloc(n, sizeof(*rq));
	if (!rq)
		return agk_fail(AEROGRAM_EINTERNAL, "garage: out of memory");
	for (size_t i = 0; i < n; i++) {
		rq[i] = queries[i];
		rq[i].limit = 0; /* every matching row */
		rq[i].flags = 0; /* live rows only (after the merge) */
	}
	struct aerogram_row_result *res = NULL;
	rc = gr_row_read(store, rq, n, &res);
	free(rq);
	if (rc)
		return rc;
	size_t total = 0;
	for (size_t i = 0; i < res->n_pages; i++)
		total += res->pages[i].n_rows;
	struct aerogram_row_write *w = calloc(total ? total : 1, sizeof(*w));
	if (!w) {
		gr_row_result_free(store, res);
		return agk_fail(AEROGRAM_EINTERNAL, "garage: out of memory");
	}
	size_t k = 0;
	for (size_t i = 0; i < res->n_pages; i++)
		for (size_t r = 0; r < res->pages[i].n_rows; r++) {
			const struct aerogram_row *row = &res->pages[i].rows[r];
			w[k++] = (struct aerogram_row_write){ .pk = queries[i].pk, .sk = row->sk,
				                              .token = row->token, .tombstone = 1 };
		}
	size_t done = 0;
	while (rc == 0 && done < k) {
		size_t m = k - done < DELETE_CHUNK ? k - done : DELETE_CHUNK;
		rc = gr_row_insert(store, w + done, m);
		if (rc == 0)
			done += m;
	}
	if (deleted)
		*deleted = done;
	free(w);
	gr_row_result_free(store, res);
	return rc;
}
