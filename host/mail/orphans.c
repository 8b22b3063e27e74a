/* orphans.c - collection of bodies and summaries no message refers to.
 *
 * An append writes its body and summary before its log entry, and a failed
 * or interrupted one leaves them behind; an expunge leaves the expunged
 * message's. Both are removed here once they are older than a grace period
 * (the age is in the message id), so an append in flight is never touched.
 * A message in the recently expunged list stays until the retention is
 * over (undelete). */
#include "host/mail/mail_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


struct orphan_scan {
	struct uidx_state *state;
	uint64_t cutoff;
	uint64_t expunged_cutoff; /* recently expunged before this: collectable */
	struct uidx_expunged *kept; /* the recently expunged still kept, by id */
	size_t n_kept;
	char **sks;
	size_t n, cap;
	int oom;
};

static int kept_cmp(const void *a, const void *b)
{
	return memcmp(a, b, UIDX_ID); /* an id first in both */
}

static int is_orphan(struct orphan_scan *o, const char *hex)
{
	uint8_t id[UIDX_ID];
	if (mail_unhex(hex, id, UIDX_ID) != 0)
		return 0; /* not ours: left alone */
	if (uidx_find_id(o->state, id) != NULL || msg_id_time(id) >= o->cutoff)
		return 0;
	/* expunged within the retention: kept for undelete */
	return bsearch(id, o->kept, o->n_kept, sizeof(*o->kept), kept_cmp) == NULL;
}

/* The recently expunged entries of s expunged at or after cutoff, sorted
 * by id (NULL and 0 when there are none). */
static struct uidx_expunged *kept_sorted(const struct uidx_state *s, uint64_t cutoff, size_t *n)
{
	*n = 0;
	struct uidx_expunged *k = malloc((s->n_expunged ? s->n_expunged : 1) * sizeof(*k));
	if (k == NULL)
		return NULL;
	for (size_t i = 0; i < s->n_expunged; i++)
		if (s->expunged[i].at >= cutoff)
			k[(*n)++] = s->expunged[i];
	qsort(k, *n, sizeof(*k), kept_cmp);
	return k;
}

static int scan_row(void *arg, const struct aerogram_row *row)
{
	struct orphan_scan *o = arg;
	if (!is_orphan(o, row->sk))
		return 0;
	if (mail_grow(&o->sks, &o->cap, o->n + 1, sizeof(char *), 64) != 0)
		return AEROGRAM_EINTERNAL;
	o->sks[o->n] = strdup(row->sk);
	if (o->sks[o->n] == NULL)
		return AEROGRAM_EINTERNAL;
	o->n++;
	return 0;
}

int mailbox_look_open(struct mailbox_look *lk, struct mail_engine *eng, const char *user, const char *name)
{
	uint8_t id[UIDX_ID];
	uint32_t uv;
	int rc = mblist_lookup(eng, user, name, id, &uv);
	if (rc != 0)
		return rc;
	mail_hex(id, UIDX_ID, lk->hex);
	rc = oplog_init(&lk->log, eng, user, lk->hex);
	if (rc != 0)
		return rc;
	rc = oplog_sync(&lk->log, 0);
	if (rc != 0) {
		oplog_clear(&lk->log);
		return rc;
	}
	lk->now = mail_now(eng);
	key_summary_pk(lk->pk, sizeof(lk->pk), user, lk->hex);
	snprintf(lk->pfx, sizeof(lk->pfx), "%s/", lk->pk);
	return 0;
}

void mailbox_look_close(struct mailbox_look *lk)
{
	oplog_clear(&lk->log);
}

int mail_collect_orphans(struct mail_engine *eng, const char *user, const char *name,
                         uint64_t grace_ms, uint64_t *removed)
{
	if (removed)
		*removed = 0;
	struct mailbox_look lk;
	int rc = mailbox_look_open(&lk, eng, user, name);
	if (rc != 0)
		return rc;
	uint64_t now = lk.now;
	uint64_t hold = mail_hold_ms(eng);
	struct orphan_scan o = { lk.log.cur, now > grace_ms ? now - grace_ms : 0, now > hold ? now - hold : 0,
	                         NULL, 0, NULL, 0, 0, 0 };
	o.kept = kept_sorted(lk.log.cur, o.expunged_cutoff, &o.n_kept);
	if (o.kept == NULL)
		rc = AEROGRAM_EINTERNAL;
	const char *pk = lk.pk, *pfx = lk.pfx;
	uint64_t count = 0;
	/* bodies */
	char **keys = NULL;
	size_t nk = 0;
	if (rc == 0)
		rc = mail_list_blobs(eng, pfx, &keys, &nk);
	if (rc == 0) {
		size_t w = 0;
		size_t plen = strlen(pfx);
		for (size_t i = 0; i < nk; i++) {
			if (is_orphan(&o, keys[i] + plen))
				keys[w++] = keys[i];
			else
				free(keys[i]);
		}
		nk = w;
		if (nk) {
			rc = store_blob_delete(eng, (const char *const *)keys, nk, pfx);
		}
		count += nk;
	}
	mail_free_strv(keys, nk);
	/* summaries */
	if (rc == 0) {
		struct aerogram_row_query q = { .pk = pk };
		rc = mail_read_range(eng, &q, scan_row, &o);
	}
	if (rc == 0 && o.n) {
		struct aerogram_row_query *qs = calloc(o.n, sizeof(*qs));
		if (qs == NULL) {
			rc = AEROGRAM_EINTERNAL;
		} else {
			for (size_t i = 0; i < o.n; i++) {
				qs[i].pk = pk;
				qs[i].sk = o.sks[i];
			}
			rc = store_row_delete(eng, qs, o.n, pk);
			free(qs);
		}
		if (o.n > count)
			count = o.n;
	}
	mail_free_strv(o.sks, o.n);
	free(o.kept);
	mailbox_look_close(&lk);
	if (removed)
		*removed = count;
	return rc;
}
