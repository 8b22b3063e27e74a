/* usage.c - what a user's mailboxes hold: the sum of their messages' sizes
 * and their count, for quotas.
 *
 * Nothing is counted here: every add carries its messages' sizes and the
 * replayed state of a mailbox keeps their total (uidindex.c), so a user's
 * usage is the sum over the mailboxes of the list of states synced with the
 * store. That is exact in every daemon sharing the store, whatever wrote
 * the messages. The states are the shared ones (mailbox.c), kept warm in
 * the engine's cache of closed mailboxes: one row_read answers both "which
 * mailboxes" (the list row) and "did any of them change" (the watch row of
 * each state held here, which every log entry rewrites), and only the
 * mailboxes that did change, or have no state here yet, are read further.
 * README: usage. */
#include "host/mail/mail_internal.h"

#include <stdlib.h>
#include <string.h>

/* A state of the user's held during the count. */
struct held {
	struct mail_mailbox *mb;
	char *token;  /* its watch row's token as read now (NULL: no row) */
};

/* Takes a reference on every state of user this engine has in memory. */
static int hold_states(struct mail_engine *eng, const char *user, struct held **out, size_t *n_out)
{
	size_t n = 0, cap = 0;
	struct held *h = NULL;
	int rc = 0;
	pthread_mutex_lock(&eng->lock);
	for (struct mail_mailbox *mb = eng->open; mb; mb = mb->next) {
		if (mb->deleted || strcmp(mb->user, user) != 0)
			continue;
		if (mail_grow(&h, &cap, n + 1, sizeof(*h), 16) != 0) {
			rc = AEROGRAM_EINTERNAL;
			break;
		}
		if (mb->refs++ == 0)
			eng->n_cached--; /* out of the cache while counted */
		h[n++] = (struct held){ mb, NULL };
	}
	pthread_mutex_unlock(&eng->lock);
	*out = h;
	*n_out = n;
	return rc;
}

static void release_states(struct held *h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(h[i].token);
		mail_mailbox_close(h[i].mb);
	}
	free(h);
}

/* One read (a row_read per OPLOG_PAGE queries): the list row, then the
 * watch row of each held state. */
static int read_list_and_watches(struct mail_engine *eng, const char *user, struct held *h, size_t n,
                                 struct mblist *list)
{
	char pk[512];
	mblist_pk(pk, sizeof(pk), user);
	size_t nq = n + 1;
	struct aerogram_row_query *q = calloc(nq, sizeof(*q));
	if (q == NULL)
		return AEROGRAM_EINTERNAL;
	q[0] = (struct aerogram_row_query){ .pk = pk, .sk = "list" };
	for (size_t i = 0; i < n; i++)
		q[i + 1] = (struct aerogram_row_query){ .pk = h[i].mb->log.pk, .sk = "watch" };
	int rc = 0;
	for (size_t at = 0; rc == 0 && at < nq; at += OPLOG_PAGE) {
		size_t k = nq - at < OPLOG_PAGE ? nq - at : OPLOG_PAGE;
		struct aerogram_row_result *res = NULL;
		rc = store_row_read(eng, q + at, k, &res, pk);
		if (rc != 0)
			break;
		/* pages come in query order, one per query */
		for (size_t j = 0; rc == 0 && j < k && j < res->n_pages; j++) {
			const struct aerogram_row_page *pg = &res->pages[j];
			if (pg->n_rows == 0)
				continue;
			if (at + j == 0) {
				rc = mblist_from_row(eng, pk, &pg->rows[0], list);
			} else if ((h[at + j - 1].token = strdup(pg->rows[0].token)) == NULL) {
				rc = AEROGRAM_EINTERNAL;
			}
		}
		store_row_result_free(eng, res);
	}
	free(q);
	return rc;
}

int mail_user_usage(struct mail_engine *eng, const char *user, struct mail_usage *out)
{
	memset(out, 0, sizeof(*out));
	if (mail_would_block())
		return MAIL_EAGAIN;
	struct held *h = NULL;
	size_t n = 0;
	struct mblist list = { 0 };
	int rc = hold_states(eng, user, &h, &n);
	if (rc == 0)
		rc = read_list_and_watches(eng, user, h, n, &list);
	for (size_t i = 0; rc == 0 && i < list.n; i++) {
		const struct mblist_entry *e = &list.e[i];
		if (!e->has_id)
			continue; /* a deleted name */
		char hex[33];
		mail_hex(e->id, UIDX_ID, hex);
		const struct held *mine = NULL;
		for (size_t k = 0; k < n && mine == NULL; k++)
			if (strcmp(h[k].mb->id, hex) == 0)
				mine = &h[k];
		struct mail_mailbox *mb = mine ? mine->mb : NULL;
		if (mb == NULL && (rc = mailbox_ref(eng, user, hex, &mb)) != 0)
			break;
		pthread_mutex_lock(&mb->lock);
		/* The watch row is rewritten with every entry: a state that saw
		 * the token just read has every entry whose watch write that
		 * read shows (README: reading the log), as a live watch that
		 * has not fired would tell. Otherwise read what changed (a
		 * state not loaded yet: its checkpoint and tail). */
		int current = mine != NULL && !mb->deleted && mb->log.loaded &&
		              (mine->token == NULL ? mb->log.watch_token == NULL
		                                   : mb->log.watch_token != NULL &&
		                                             strcmp(mine->token, mb->log.watch_token) == 0);
		/* (a forced read: a live watch may not have fired yet for the
		 * change the token shows) */
		int src = current ? 0 : mb->deleted ? AEROGRAM_ENOTFOUND : mailbox_sync_locked(mb, MAIL_SYNC_FORCE);
		if (src == 0)
			src = mailbox_load_sizes_locked(mb);
		if (src == 0) {
			const struct uidx_state *s = mb->log.cur;
			out->bytes += s->total_size;
			out->messages += s->n;
			out->mailboxes++;
		} else if (src != AEROGRAM_ENOTFOUND) {
			rc = src; /* (a mailbox deleted since the list was read holds nothing) */
		}
		pthread_mutex_unlock(&mb->lock);
		if (mine == NULL)
			mail_mailbox_close(mb);
	}
	mblist_free(&list);
	release_states(h, n);
	if (rc != 0)
		memset(out, 0, sizeof(*out));
	return rc;
}

int mail_view_sizes(struct mail_view *v, const uint32_t *uids, size_t n, uint64_t *bytes, uint64_t *count)
{
	*bytes = *count = 0;
	uint32_t *unknown = NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const struct uidx_msg *m = uidx_find_uid(v->snap, uids[i]);
		if (m == NULL)
			continue;
		(*count)++;
		if (m->size != UIDX_SIZE_UNKNOWN) {
			*bytes += m->size;
			continue;
		}
		if (unknown == NULL && (unknown = malloc(n * sizeof(*unknown))) == NULL)
			return AEROGRAM_EINTERNAL;
		unknown[k++] = uids[i];
	}
	if (k == 0)
		return 0;
	/* messages added before adds carried sizes: their summaries say */
	struct mail_summary *s = NULL;
	int rc = mail_summaries(v, unknown, k, &s);
	for (size_t i = 0; rc == 0 && i < k; i++)
		if (s[i].status == 0)
			*bytes += s[i].size;
	if (rc == 0)
		mail_summaries_free(s, k);
	free(unknown);
	return rc;
}
