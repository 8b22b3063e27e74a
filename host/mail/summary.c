/* summary.c - message summaries: one row per message, read in batches.
 *
 * Row <u>/mail/<mbox> / <message id>: internal date, size, the header block
 * and the caller's serialised body structure, so ENVELOPE, BODYSTRUCTURE and
 * header fetches need no body blob. Results are paired with requests by
 * sort key, never by position, so a missing row shifts nothing. */
#include "host/mail/mail_internal.h"

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
		mail_hex(m->id, UIDX_ID, w[nw].hex);
		w[nw].index = i;
		nw++;
	}
	qsort(w, nw, sizeof(*w), want_cmp);
	char pk[512];
	key_summary_pk(pk, sizeof(pk), v->mb->user, v->mb->id);
	struct fill f = { w, nw, res };
	int rc = 0;
	if (nw == 0) {
		rc = 0;
	} else if (nw * 2 > v->snap->n) {
		/* most of the mailbox: one range read (paginated) beats n lookups */
		struct aerogram_row_query q = { .pk = pk };
		rc = mail_read_range(eng, &q, fill_row, &f);
	} else {
		struct aerogram_row_query *qs = calloc(nw, sizeof(*qs));
		struct aerogram_row_result *rr = NULL;
		if (qs == NULL) {
			rc = AEROGRAM_EINTERNAL;
		} else {
			for (size_t i = 0; i < nw; i++) {
				qs[i].pk = pk;
				qs[i].sk = w[i].hex;
			}
			rc = eng->st.driver->row_read(eng->st.store, qs, nw, &rr);
			if (rc != 0)
				mail_log(eng, AEROGRAM_LOG_WARNING, "row_read %s: %s", pk, mail_store_error(eng));
			for (size_t p = 0; rc == 0 && p < rr->n_pages; p++)
				for (size_t r = 0; rc == 0 && r < rr->pages[p].n_rows; r++)
					rc = fill_row(&f, &rr->pages[p].rows[r]);
			if (rr)
				eng->st.driver->row_result_free(eng->st.store, rr);
		}
		free(qs);
	}
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
