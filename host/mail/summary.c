/* summary.c - message summaries: one row per message, read in batches.
 *
 * Row <u>/mail/<mbox> / <message id>: internal date, size, the header block
 * and the caller's serialised body structure, so ENVELOPE, BODYSTRUCTURE and
 * header fetches need no body blob. Results are paired with requests by
 * sort key, never by position, so a missing row shifts nothing. A summary
 * never changes, so the engine keeps recent ones in memory (the cache
 * below): FETCH ENVELOPE of what was just appended or fetched reads
 * nothing. */
#include "host/mail/mail_internal.h"
#include "protocol/list.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void key_summary_pk(char *out, size_t len, const char *user, const char *mbox_id)
{
	snprintf(out, len, "%s/mail/%s", user, mbox_id);
}

void key_body(char *out, size_t len, const char *user, const char *mbox_id, const uint8_t *msg_id)
{
	char hex[33];
	mail_hex(msg_id, UIDX_ID, hex);
	snprintf(out, len, "%s/mail/%s/%s", user, mbox_id, hex);
}

/* Picks the value of a summary row: the first live value in byte order
 * that decodes (siblings only come from a retried identical write, which
 * the store reports once, or from corruption). */
static int pick_summary(const struct aerogram_row *row, struct summary *out)
{
	const struct aerogram_value *best = NULL;
	for (size_t i = 0; i < row->n_values; i++) {
		const struct aerogram_value *v = &row->values[i];
		struct summary s;
		if (v->tombstone || codec_summary_decode(v->data, v->len, &s) != 0)
			continue;
		if (best) {
			size_t m = v->len < best->len ? v->len : best->len;
			int c = memcmp(v->data, best->data, m);
			if (c > 0 || (c == 0 && v->len >= best->len))
				continue;
		}
		best = v;
		*out = s;
	}
	return best ? 0 : AEROGRAM_ENOTFOUND;
}

/* ---- the cache ---- */

struct scache *scache_new(size_t budget)
{
	struct scache *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->budget = budget;
	if (htable_init(&c->table, 1024) != 0) {
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

static size_t entry_bytes(const struct scache_entry *e)
{
	return sizeof(*e) + e->header_len + e->bodystructure_len;
}

static void entry_remove(struct scache *c, struct scache_entry *e)
{
	htable_remove(&c->table, &e->key.hn);
	LRU_UNLINK(c, e);
	c->bytes -= entry_bytes(e);
	c->n--;
	free(e->header);
	free(e);
}

static struct scache_entry *lookup(struct scache *c, const struct mail_mailbox *mb, const uint8_t *id)
{
	struct htable_idnode *k = htable_find_id(&c->table, mb, id);
	return k != NULL ? HTABLE_ENTRY(k, struct scache_entry, key) : NULL;
}

void scache_put(struct scache *c, const struct mail_mailbox *mb, const uint8_t *id, const struct summary *s)
{
	size_t need = sizeof(struct scache_entry) + s->header_len + s->bodystructure_len;
	if (c->budget == 0 || need > c->budget / 16)
		return; /* a giant header is not worth a sixteenth of the cache */
	struct scache_entry *e = calloc(1, sizeof(*e));
	if (e == NULL)
		return;
	e->header = malloc(s->header_len + s->bodystructure_len + 1);
	if (e->header == NULL) {
		free(e);
		return;
	}
	if (s->header_len)
		memcpy(e->header, s->header, s->header_len);
	if (s->bodystructure_len)
		memcpy(e->header + s->header_len, s->bodystructure, s->bodystructure_len);
	e->header_len = s->header_len;
	e->bodystructure_len = s->bodystructure_len;
	e->internal_date_ms = s->internal_date_ms;
	e->size = s->size;
	htable_idnode_set(&e->key, mb, id);
	pthread_mutex_lock(&c->lock);
	struct scache_entry *old = lookup(c, mb, id);
	if (old) {
		entry_remove(c, old);
	}
	if (c->n >= c->table.n_buckets)
		htable_grow(&c->table);
	htable_insert(&c->table, &e->key.hn);
	LRU_PUSH_NEWEST(c, e);
	c->bytes += entry_bytes(e);
	c->n++;
	while (c->bytes > c->budget && c->oldest && c->oldest != e)
		entry_remove(c, c->oldest);
	pthread_mutex_unlock(&c->lock);
}

int scache_get(struct scache *c, const struct mail_mailbox *mb, const uint8_t *id, struct mail_summary *out)
{
	pthread_mutex_lock(&c->lock);
	struct scache_entry *e = lookup(c, mb, id);
	if (e == NULL) {
		c->misses++;
		pthread_mutex_unlock(&c->lock);
		return -1;
	}
	c->hits++;
	LRU_UNLINK(c, e);
	LRU_PUSH_NEWEST(c, e);
	out->header = malloc(e->header_len + 1);
	out->bodystructure = malloc(e->bodystructure_len + 1);
	int rc = 0;
	if (out->header == NULL || out->bodystructure == NULL) {
		free(out->header);
		free(out->bodystructure);
		out->header = out->bodystructure = NULL;
		rc = -1;
	} else {
		if (e->header_len)
			memcpy(out->header, e->header, e->header_len);
		if (e->bodystructure_len)
			memcpy(out->bodystructure, e->header + e->header_len, e->bodystructure_len);
		out->header_len = e->header_len;
		out->bodystructure_len = e->bodystructure_len;
		out->internal_date_ms = e->internal_date_ms;
		out->size = e->size;
		out->status = 0;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int scache_size(struct scache *c, const struct mail_mailbox *mb, const uint8_t *id, uint64_t *size)
{
	pthread_mutex_lock(&c->lock);
	struct scache_entry *e = lookup(c, mb, id);
	if (e != NULL)
		*size = e->size;
	pthread_mutex_unlock(&c->lock);
	return e != NULL ? 0 : -1;
}

void scache_forget(struct scache *c, const struct mail_mailbox *mb)
{
	pthread_mutex_lock(&c->lock);
	for (struct scache_entry *e = c->newest, *next; e; e = next) {
		next = e->older;
		if (e->key.owner == mb)
			entry_remove(c, e);
	}
	pthread_mutex_unlock(&c->lock);
}

void scache_free(struct scache *c)
{
	if (c == NULL)
		return;
	while (c->newest)
		entry_remove(c, c->newest);
	htable_fini_locked(&c->table, &c->lock);
	free(c);
}

/* ---- reads ---- */

struct want {
	char hex[33];
	size_t index;
};

static int want_cmp(const void *a, const void *b)
{
	return strcmp(((const struct want *)a)->hex, ((const struct want *)b)->hex);
}

struct fill {
	struct want *w;
	size_t n;
	struct mail_summary *out;
	struct scache *cache;
	const struct mail_mailbox *mb;
};

static int fill_row(void *arg, const struct aerogram_row *row)
{
	struct fill *f = arg;
	struct want key;
	snprintf(key.hex, sizeof(key.hex), "%s", row->sk);
	struct want *hit = bsearch(&key, f->w, f->n, sizeof(*f->w), want_cmp);
	if (hit == NULL)
		return 0;
	/* several requests may name one message: fill each of them */
	while (hit > f->w && strcmp(hit[-1].hex, key.hex) == 0)
		hit--;
	struct summary s = { 0 };
	if (pick_summary(row, &s) != 0)
		return 0;
	uint8_t id[UIDX_ID];
	if (f->cache && mail_unhex(key.hex, id, UIDX_ID) == 0)
		scache_put(f->cache, f->mb, id, &s);
	for (; hit < f->w + f->n && strcmp(hit->hex, key.hex) == 0; hit++) {
		struct mail_summary *o = &f->out[hit->index];
		if (o->status == 0)
			continue;
		o->header = malloc(s.header_len + 1);
		o->bodystructure = malloc(s.bodystructure_len + 1);
		if (o->header == NULL || o->bodystructure == NULL)
			return AEROGRAM_EINTERNAL;
		if (s.header_len)
			memcpy(o->header, s.header, s.header_len);
		if (s.bodystructure_len)
			memcpy(o->bodystructure, s.bodystructure, s.bodystructure_len);
		o->header_len = s.header_len;
		o->bodystructure_len = s.bodystructure_len;
		o->internal_date_ms = s.internal_date_ms;
		o->size = s.size;
		o->status = 0;
	}
	return 0;
}

/* One row_read of the summary rows of w[0..n); fn gets each row found. */
static int read_batch(struct mail_engine *eng, const char *pk, const struct want *w, size_t n,
                      int (*fn)(void *arg, const struct aerogram_row *row), void *arg)
{
	struct aerogram_row_query *qs = calloc(n, sizeof(*qs));
	struct aerogram_row_result *rr = NULL;
	if (qs == NULL)
		return AEROGRAM_EINTERNAL;
	for (size_t i = 0; i < n; i++) {
		qs[i].pk = pk;
		qs[i].sk = w[i].hex;
	}
	int rc = store_row_read(eng, qs, n, &rr, pk);
	for (size_t p = 0; rc == 0 && p < rr->n_pages; p++)
		for (size_t r = 0; rc == 0 && r < rr->pages[p].n_rows; r++)
			rc = fn(arg, &rr->pages[p].rows[r]);
	store_row_result_free(eng, rr);
	free(qs);
	return rc;
}

/* Reads the summary rows of w[0..nw) of a mailbox of n_all messages, at
 * most `batch` per row_read; fn gets each row found. For most of a large
 * mailbox one range read (paginated) beats nw lookups (it also reads the
 * rows of expunged messages not collected yet). */
static int read_wanted(struct mail_engine *eng, const char *pk, const struct want *w, size_t nw, size_t n_all,
                       size_t batch, int (*fn)(void *arg, const struct aerogram_row *row), void *arg)
{
	if (nw > 256 && nw * 2 > n_all) {
		struct aerogram_row_query q = { .pk = pk };
		return mail_read_range(eng, &q, fn, arg);
	}
	int rc = 0;
	for (size_t at = 0; rc == 0 && at < nw; at += batch)
		rc = read_batch(eng, pk, w + at, nw - at < batch ? nw - at : batch, fn, arg);
	return rc;
}

int mail_summaries(struct mail_view *v, const uint32_t *uids, size_t n, struct mail_summary **out)
{
	struct mail_engine *eng = v->mb->eng;
	*out = NULL;
	struct mail_summary *res = calloc(n ? n : 1, sizeof(*res));
	struct want *w = calloc(n ? n : 1, sizeof(*w));
	if (res == NULL || w == NULL) {
		free(res);
		free(w);
		return AEROGRAM_EINTERNAL;
	}
	size_t nw = 0;
	for (size_t i = 0; i < n; i++) {
		res[i].uid = uids[i];
		res[i].status = AEROGRAM_ENOTFOUND;
		const struct uidx_msg *m = uidx_find_uid(v->snap, uids[i]);
		if (m == NULL)
			continue;
		if (scache_get(eng->summaries, v->mb, m->id, &res[i]) == 0)
			continue;
		if (mail_would_block_read(eng, 1)) { /* a miss is a store read */
			mail_summaries_free(res, n);
			free(w);
			return MAIL_EAGAIN;
		}
		mail_hex(m->id, UIDX_ID, w[nw].hex);
		w[nw].index = i;
		nw++;
	}
	qsort(w, nw, sizeof(*w), want_cmp);
	char pk[512];
	key_summary_pk(pk, sizeof(pk), v->mb->user, v->mb->id);
	struct fill f = { w, nw, res, eng->summaries, v->mb };
	/* every miss in one row_read */
	int rc = read_wanted(eng, pk, w, nw, v->snap->n, nw, fill_row, &f);
	free(w);
	if (rc != 0) {
		mail_summaries_free(res, n);
		return rc;
	}
	*out = res;
	return 0;
}

void mail_summaries_free(struct mail_summary *s, size_t n)
{
	for (size_t i = 0; s && i < n; i++) {
		free(s[i].header);
		free(s[i].bodystructure);
	}
	free(s);
}

/* ---- sizes alone ---- */

struct size_fill {
	struct want *w;
	size_t n;
	uint64_t *sizes;
};

static int size_row(void *arg, const struct aerogram_row *row)
{
	struct size_fill *f = arg;
	struct want key;
	snprintf(key.hex, sizeof(key.hex), "%s", row->sk);
	struct want *hit = bsearch(&key, f->w, f->n, sizeof(*f->w), want_cmp);
	struct summary s = { 0 };
	if (hit == NULL || pick_summary(row, &s) != 0)
		return 0;
	while (hit > f->w && strcmp(hit[-1].hex, key.hex) == 0)
		hit--;
	for (; hit < f->w + f->n && strcmp(hit->hex, key.hex) == 0; hit++)
		f->sizes[hit->index] = s.size;
	return 0;
}

int summary_sizes(struct mail_mailbox *mb, const uint8_t (*ids)[UIDX_ID], size_t n, size_t n_all,
                  uint64_t *sizes)
{
	struct mail_engine *eng = mb->eng;
	struct want *w = calloc(n ? n : 1, sizeof(*w));
	if (w == NULL)
		return AEROGRAM_EINTERNAL;
	size_t nw = 0;
	for (size_t i = 0; i < n; i++) {
		sizes[i] = UIDX_SIZE_UNKNOWN;
		if (scache_size(eng->summaries, mb, ids[i], &sizes[i]) == 0)
			continue;
		mail_hex(ids[i], UIDX_ID, w[nw].hex);
		w[nw].index = i;
		nw++;
	}
	qsort(w, nw, sizeof(*w), want_cmp);
	char pk[512];
	key_summary_pk(pk, sizeof(pk), mb->user, mb->id);
	struct size_fill f = { w, nw, sizes };
	int rc = read_wanted(eng, pk, w, nw, n_all, OPLOG_PAGE, size_row, &f);
	free(w);
	return rc;
}
