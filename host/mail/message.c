/* message.c - append, flag changes, expunge, copy, move and body reads.
 *
 * Every mutation writes the immutable data first (body blob, summary row)
 * and the log entry last, so a crash or a store failure in between leaves
 * at worst an orphan (collected later), never a log entry that points at
 * nothing. Every command is one log entry, whatever its number of messages. */
#include "host/mail/mail_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A message id: 8 bytes of big-endian engine time (orphan collection reads
 * the age from it) then 8 random bytes. */
static void new_msg_id(struct mail_engine *eng, uint8_t id[UIDX_ID])
{
	uint64_t now = mail_now(eng);
	for (int i = 0; i < 8; i++)
		id[i] = (uint8_t)(now >> (56 - 8 * i));
	mail_rand_bytes(eng, id + 8, 8);
}

uint64_t msg_id_time(const uint8_t id[UIDX_ID])
{
	uint64_t t = 0;
	for (int i = 0; i < 8; i++)
		t = (t << 8) | id[i];
	return t;
}

static struct uidx_op *op_new(uint8_t kind, size_t n)
{
	struct uidx_op *op = calloc(1, sizeof(*op));
	if (op == NULL)
		return NULL;
	op->kind = kind;
	if (n) {
		op->ids = calloc(n, UIDX_ID);
		if (kind == UIDX_OP_ADD) {
			op->item_flags = calloc(n, sizeof(uint64_t));
			op->item_sizes = calloc(n, sizeof(uint64_t));
		}
		if (op->ids == NULL || (kind == UIDX_OP_ADD && (op->item_flags == NULL || op->item_sizes == NULL))) {
			uidx_op_free(op);
			return NULL;
		}
	}
	return op;
}

/* One add waiting to be written: adds to one mailbox that arrive while
 * another is being written are merged into one log entry (group commit:
 * one conditional batch or one turn for all of them). */
struct add_wait {
	struct uidx_op *op;
	const struct aerogram_row_write *extra;
	size_t n_extra;
	uint8_t (*ids)[UIDX_ID];
	size_t n;
	uint32_t *uids;
	/* when set: whether each item is a message of this entry, not one
	 * already there under the same id (undelete: two in the same ms) */
	uint8_t *fresh;
	uint32_t uv;
	int rc;
	int done;
	struct add_wait *next;
};

/* Adds of one entry, at most: beyond this a batch waits for the next. */
#define ADD_BATCH_MAX_ITEMS 512

/* Merges the ops of a batch into the first one's (keywords remapped into
 * one table). Returns the merged op, which takes the ops' items. */
static struct uidx_op *merge_adds(struct add_wait **batch, size_t nb)
{
	size_t n = 0;
	for (size_t i = 0; i < nb; i++)
		n += batch[i]->op->n;
	struct uidx_op *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->kind = UIDX_OP_ADD;
	/* One claimer for the merged entry only when every add had the same
	 * (or none); else the sessions claim with their next update. */
	for (size_t i = 0; i < nb; i++) {
		if (i == 0)
			memcpy(m->owner, batch[i]->op->owner, UIDX_ID);
		else if (memcmp(batch[i]->op->owner, m->owner, UIDX_ID) != 0)
			memset(m->owner, 0, UIDX_ID);
	}
	m->ids = malloc(n * UIDX_ID);
	m->item_flags = calloc(n, sizeof(uint64_t));
	m->item_sizes = calloc(n, sizeof(uint64_t));
	if (m->ids == NULL || m->item_flags == NULL || m->item_sizes == NULL) {
		uidx_op_free(m);
		return NULL;
	}
	for (size_t i = 0; i < nb; i++) {
		const struct uidx_op *o = batch[i]->op;
		for (size_t k = 0; k < o->n; k++) {
			uint64_t f = o->item_flags[k] & MAIL_F_SYSTEM;
			for (size_t b = 0; b < o->n_keywords; b++) {
				if (!(o->item_flags[k] & (1ull << (5 + b))))
					continue;
				size_t j;
				for (j = 0; j < m->n_keywords; j++)
					if (strcasecmp(m->keywords[j], o->keywords[b]) == 0)
						break;
				if (j == m->n_keywords) {
					char **nk = j < MAIL_MAX_KEYWORDS ? realloc(m->keywords, (j + 1) * sizeof(char *)) : NULL;
					if (nk == NULL)
						continue; /* past the table: dropped, as apply would */
					m->keywords = nk;
					if ((nk[j] = strdup(o->keywords[b])) == NULL)
						continue;
					m->n_keywords++;
				}
				f |= 1ull << (5 + j);
			}
			memcpy(m->ids[m->n], o->ids[k], UIDX_ID);
			m->item_sizes[m->n] = o->item_sizes ? o->item_sizes[k] : UIDX_SIZE_UNKNOWN;
			m->item_flags[m->n++] = f;
		}
	}
	return m;
}

/* Writes a batch of adds (the leader, without the queue lock), and gives
 * each its result. */
static void run_adds(struct mail_mailbox *mb, struct add_wait **batch, size_t nb)
{
	struct uidx_op *op = NULL;
	struct aerogram_row_write *extra = NULL;
	size_t n_extra = 0;
	int rc = 0;
	if (nb == 1) {
		op = batch[0]->op;
		extra = (struct aerogram_row_write *)batch[0]->extra;
		n_extra = batch[0]->n_extra;
	} else {
		op = merge_adds(batch, nb);
		for (size_t i = 0; i < nb; i++)
			n_extra += batch[i]->n_extra;
		extra = calloc(n_extra ? n_extra : 1, sizeof(*extra));
		if (op == NULL || extra == NULL)
			rc = AEROGRAM_EINTERNAL;
		for (size_t i = 0, k = 0; rc == 0 && i < nb; i++) {
			if (batch[i]->n_extra)
				memcpy(extra + k, batch[i]->extra, batch[i]->n_extra * sizeof(*extra));
			k += batch[i]->n_extra;
		}
		for (size_t i = 0; i < nb; i++)
			uidx_op_free(batch[i]->op);
	}
	for (size_t i = 0; i < nb; i++)
		batch[i]->op = NULL;
	uint32_t uv = 0;
	pthread_mutex_lock(&mb->lock);
	if (rc == 0) {
		rc = mb->deleted ? AEROGRAM_ENOTFOUND : oplog_push(&mb->log, op, extra, n_extra);
		op = NULL;
	}
	if (rc == AEROGRAM_ENOTFOUND)
		mb->deleted = 1;
	if (rc == 0) {
		uv = mailbox_uidvalidity(mb, mb->log.cur);
		for (size_t i = 0; i < nb; i++)
			for (size_t k = 0; batch[i]->uids && k < batch[i]->n; k++) {
				const struct uidx_msg *m = uidx_find_id(mb->log.cur, batch[i]->ids[k]);
				batch[i]->uids[k] = m ? m->uid : 0;
				/* the entry just applied is the newest: its modseq */
				if (batch[i]->fresh)
					batch[i]->fresh[k] = m && m->modseq == mb->log.cur->highestmodseq;
			}
	}
	pthread_mutex_unlock(&mb->lock);
	uidx_op_free(op);
	if (nb > 1)
		free(extra);
	for (size_t i = 0; i < nb; i++) {
		batch[i]->rc = rc;
		batch[i]->uv = uv;
	}
	if (rc == 0) {
		mailbox_notify(mb);
		mailbox_after_write(mb);
	}
}

/* Pushes an ADD of op->n ids into mb, with the rows `extra` (their
 * summaries) written before or with it, then reports their UIDs. The log
 * reads what it must first (README: UID allocation). Concurrent adds to
 * one mailbox share one entry: the first to come writes for everyone
 * queued meanwhile. */
static int push_add_ex(struct mail_mailbox *mb, struct uidx_op *op, const struct aerogram_row_write *extra,
                       size_t n_extra, uint32_t *uidvalidity, uint32_t *uids, uint8_t *fresh);

static int push_add(struct mail_mailbox *mb, struct uidx_op *op, const struct aerogram_row_write *extra,
                    size_t n_extra, uint32_t *uidvalidity, uint32_t *uids)
{
	return push_add_ex(mb, op, extra, n_extra, uidvalidity, uids, NULL);
}

/* push_add, and fresh (with uids) tells which items were new. */
static int push_add_ex(struct mail_mailbox *mb, struct uidx_op *op, const struct aerogram_row_write *extra,
                       size_t n_extra, uint32_t *uidvalidity, uint32_t *uids, uint8_t *fresh)
{
	if (mail_would_block()) { /* adds wait for one another: never inline */
		uidx_op_free(op);
		return MAIL_EAGAIN;
	}
	struct add_wait w = { op, extra, n_extra, NULL, op->n, uids, uids ? fresh : NULL, 0, 0, 0, NULL };
	if (uids && op->n) {
		w.ids = malloc(op->n * UIDX_ID);
		if (w.ids == NULL) {
			uidx_op_free(op);
			return AEROGRAM_EINTERNAL;
		}
		memcpy(w.ids, op->ids, op->n * UIDX_ID);
	}
	pthread_mutex_lock(&mb->add_lock);
	if (mb->add_tail)
		mb->add_tail->next = &w;
	else
		mb->add_head = &w;
	mb->add_tail = &w;
	while (!w.done) {
		if (mb->add_leader) {
			pthread_cond_wait(&mb->add_cond, &mb->add_lock);
			continue;
		}
		/* lead: take what is queued (up to a bound), write it, hand out */
		mb->add_leader = 1;
		struct add_wait *batch[64];
		size_t nb = 0, items = 0;
		while (mb->add_head && nb < 64 && (nb == 0 || items + mb->add_head->n <= ADD_BATCH_MAX_ITEMS)) {
			struct add_wait *a = mb->add_head;
			mb->add_head = a->next;
			if (mb->add_head == NULL)
				mb->add_tail = NULL;
			items += a->n;
			batch[nb++] = a;
		}
		pthread_mutex_unlock(&mb->add_lock);
		run_adds(mb, batch, nb);
		pthread_mutex_lock(&mb->add_lock);
		for (size_t i = 0; i < nb; i++)
			batch[i]->done = 1;
		mb->add_leader = 0;
		pthread_cond_broadcast(&mb->add_cond);
	}
	pthread_mutex_unlock(&mb->add_lock);
	if (w.rc == 0 && uidvalidity)
		*uidvalidity = w.uv;
	free(w.ids);
	return w.rc;
}

/* Pushes op (taken); `filter`, when not NULL, sees the state and op just
 * before op is applied, in every retry (the log's filter). */
static int push_op_filtered(struct mail_mailbox *mb, struct uidx_op *op,
                            void (*filter)(void *arg, struct uidx_state *cur, struct uidx_op *op),
                            void *filter_arg)
{
	if (mail_lock_or_again(&mb->lock) != 0) {
		uidx_op_free(op);
		return MAIL_EAGAIN;
	}
	/* Conditional writes check freshness themselves; otherwise read what
	 * the watch says changed first. */
	int rc = mb->log.cas && !mb->deleted ? 0 : mailbox_sync_locked(mb, 0);
	if (rc == 0) {
		mb->log.filter = filter;
		mb->log.filter_arg = filter_arg;
		rc = oplog_push(&mb->log, op, NULL, 0);
		mb->log.filter = NULL;
		mb->log.filter_arg = NULL;
	} else {
		uidx_op_free(op);
	}
	if (rc == AEROGRAM_ENOTFOUND)
		mb->deleted = 1;
	pthread_mutex_unlock(&mb->lock);
	if (rc == 0) {
		mailbox_notify(mb);
		mailbox_after_write(mb);
	}
	return rc;
}

static int push_op(struct mail_mailbox *mb, struct uidx_op *op)
{
	return push_op_filtered(mb, op, NULL, NULL);
}

int mail_append_many(struct mail_mailbox *mb, const struct mail_new_message *msgs, size_t n,
                     uint32_t *uidvalidity, uint32_t *uids)
{
	return mail_append_many_claim(mb, msgs, n, NULL, uidvalidity, uids);
}

int mail_append_many_claim(struct mail_mailbox *mb, const struct mail_new_message *msgs, size_t n,
                           const struct mail_view *claimer, uint32_t *uidvalidity, uint32_t *uids)
{
	if (mail_would_block()) /* adds are never tried inline (push_add) */
		return MAIL_EAGAIN;
	struct mail_engine *eng = mb->eng;
	if (mb->deleted)
		return AEROGRAM_ENOTFOUND;
	if (n == 0)
		return AEROGRAM_EINVAL;
	struct uidx_op *op = op_new(UIDX_OP_ADD, n);
	struct aerogram_row_write *ws = calloc(n, sizeof(*ws));
	char (*sks)[33] = calloc(n, sizeof(*sks));
	struct cbuf *bufs = calloc(n, sizeof(*bufs));
	char (*keys)[700] = calloc(n, sizeof(*keys));
	char **key_ptrs = calloc(n, sizeof(*key_ptrs));
	if (op == NULL || ws == NULL || sks == NULL || bufs == NULL || keys == NULL || key_ptrs == NULL) {
		uidx_op_free(op);
		free(ws);
		free(sks);
		free(bufs);
		free(keys);
		free(key_ptrs);
		return AEROGRAM_EINTERNAL;
	}
	char pk[512];
	key_summary_pk(pk, sizeof(pk), mb->user, mb->id);
	/* Bodies and summaries first (immutable, named by fresh ids), then one
	 * log entry for every message of the command. */
	for (size_t i = 0; i < n; i++) {
		new_msg_id(eng, op->ids[i]);
		key_body(keys[i], sizeof(keys[i]), mb->user, mb->id, op->ids[i]);
		key_ptrs[i] = keys[i];
	}
	int rc = mail_put_bodies(eng, key_ptrs, msgs, n);
	free(key_ptrs);
	free(keys);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const struct mail_new_message *msg = &msgs[i];
		uint8_t *id = op->ids[i];
		mail_hex(id, UIDX_ID, sks[i]);
		struct summary s = {
			.internal_date_ms = msg->internal_date_ms ? msg->internal_date_ms : mail_now(eng),
			.size = msg->body_len,
			.header = msg->header,
			.header_len = msg->header_len,
			.bodystructure = msg->bodystructure,
			.bodystructure_len = msg->bodystructure_len,
		};
		rc = codec_summary_encode(&s, &bufs[i]);
		if (rc != 0)
			break;
		scache_put(eng->summaries, mb, id, &s); /* a FETCH after the APPEND reads nothing */
		ws[i] = (struct aerogram_row_write){ pk, sks[i], NULL, bufs[i].p, bufs[i].len, 0 };
		/* keywords: the op's table is the union of every message's */
		uint64_t f = msg->flags & MAIL_F_SYSTEM;
		for (size_t k = 0; k < msg->n_keywords; k++) {
			int j = uidx_op_keyword(op, msg->keywords[k]);
			if (j == -2) {
				rc = AEROGRAM_EINTERNAL;
				break;
			}
			if (j >= 0)
				f |= 1ull << (5 + j);
		}
		op->item_flags[i] = f;
		op->item_sizes[i] = msg->body_len;
		op->n = i + 1;
	}
	if (rc == 0 && claimer != NULL && claimer->mb == mb)
		memcpy(op->owner, claimer->session, UIDX_ID);
	if (rc == 0)
		rc = push_add(mb, op, ws, n, uidvalidity, uids);
	else
		uidx_op_free(op);
	for (size_t i = 0; i < n; i++)
		free(bufs[i].p);
	free(bufs);
	free(ws);
	free(sks);
	return rc;
}

int mail_append(struct mail_mailbox *mb, const struct mail_new_message *msg, uint32_t *uidvalidity,
                uint32_t *uid)
{
	uint32_t u = 0;
	int rc = mail_append_many(mb, msg, 1, uidvalidity, &u);
	if (rc == 0 && uid)
		*uid = u;
	return rc;
}

/* The ids of the given UIDs of the snapshot (unknown UIDs are skipped). */
static int cmp_u32_msg(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static struct uidx_op *op_for_uids(struct mail_view *v, uint8_t kind, const uint32_t *uids, size_t n)
{
	struct uidx_op *op = op_new(kind, n);
	if (op == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const struct uidx_msg *m = uidx_find_uid(v->snap, uids[i]);
		if (m)
			memcpy(op->ids[op->n++], m->id, UIDX_ID);
	}
	return op;
}

int mail_store(struct mail_view *v, const uint32_t *uids, size_t n, enum mail_store_mode mode,
               uint32_t flags, const char *const *keywords, size_t n_keywords)
{
	MAIL_WRITE_CALL(v->mb->eng);
	uint8_t kind = mode == MAIL_STORE_ADD ? UIDX_OP_FLAG_ADD
	               : mode == MAIL_STORE_REMOVE ? UIDX_OP_FLAG_DEL : UIDX_OP_FLAG_SET;
	struct uidx_op *op = op_for_uids(v, kind, uids, n);
	if (op == NULL || uidx_op_set_keywords(op, keywords, n_keywords) != 0) {
		uidx_op_free(op);
		return AEROGRAM_EINTERNAL;
	}
	if (op->n == 0) {
		uidx_op_free(op);
		return 0;
	}
	op->flags = flags & MAIL_F_SYSTEM;
	for (size_t k = 0; k < op->n_keywords; k++)
		op->flags |= 1ull << (5 + k);
	return push_op(v->mb, op);
}

/* A conditional STORE: the items whose message changed after `since` are
 * left out (and listed), decided on the state the entry follows. */
struct unchanged_filter {
	uint64_t since;
	uint8_t (*ids)[UIDX_ID]; /* every item asked for */
	uint32_t *uids;          /* their UIDs in the view */
	size_t n;
	uint32_t *modified;      /* UIDs left out, ascending as uids */
	size_t n_modified;
};

static void unchanged_filter(void *arg, struct uidx_state *cur, struct uidx_op *op)
{
	struct unchanged_filter *f = arg;
	op->n = 0;
	f->n_modified = 0;
	for (size_t i = 0; i < f->n; i++) {
		const struct uidx_msg *m = uidx_find_id(cur, f->ids[i]);
		if (m != NULL && m->modseq > f->since) {
			f->modified[f->n_modified++] = f->uids[i];
			continue;
		}
		memcpy(op->ids[op->n++], f->ids[i], UIDX_ID);
	}
}

int mail_store_unchanged(struct mail_view *v, const uint32_t *uids, size_t n, enum mail_store_mode mode,
                         uint32_t flags, const char *const *keywords, size_t n_keywords, uint64_t since,
                         uint32_t *modified, size_t *n_modified)
{
	MAIL_WRITE_CALL(v->mb->eng);
	*n_modified = 0;
	uint8_t kind = mode == MAIL_STORE_ADD ? UIDX_OP_FLAG_ADD
	               : mode == MAIL_STORE_REMOVE ? UIDX_OP_FLAG_DEL : UIDX_OP_FLAG_SET;
	struct uidx_op *op = op_for_uids(v, kind, uids, n);
	struct unchanged_filter f = { since, NULL, NULL, 0, modified, 0 };
	f.ids = malloc((n ? n : 1) * UIDX_ID);
	f.uids = malloc((n ? n : 1) * sizeof(*f.uids));
	if (op == NULL || f.ids == NULL || f.uids == NULL || uidx_op_set_keywords(op, keywords, n_keywords) != 0) {
		uidx_op_free(op);
		free(f.ids);
		free(f.uids);
		return AEROGRAM_EINTERNAL;
	}
	for (size_t i = 0; i < n; i++) {
		const struct uidx_msg *m = uidx_find_uid(v->snap, uids[i]);
		if (m == NULL)
			continue;
		/* the client's own view decides first: a change it was not told of */
		if (m->modseq > since) {
			f.modified[f.n_modified++] = uids[i];
			continue;
		}
		memcpy(f.ids[f.n], m->id, UIDX_ID);
		f.uids[f.n++] = uids[i];
	}
	size_t view_modified = f.n_modified;
	f.modified = modified + view_modified;
	f.n_modified = 0;
	op->flags = flags & MAIL_F_SYSTEM;
	for (size_t k = 0; k < op->n_keywords; k++)
		op->flags |= 1ull << (5 + k);
	int rc = 0;
	if (f.n == 0) {
		uidx_op_free(op);
	} else {
		rc = push_op_filtered(v->mb, op, unchanged_filter, &f);
	}
	free(f.ids);
	free(f.uids);
	if (rc == 0) {
		*n_modified = view_modified + f.n_modified;
		/* both parts are ascending when uids is: merge them */
		qsort(modified, *n_modified, sizeof(*modified), cmp_u32_msg);
	}
	return rc;
}

/* Pushes a DEL, then queues the contents of its messages for removal after
 * the grace period. With a retention, the contents of expunged messages
 * are collected from the recently expunged list instead (oplog.c), once
 * the retention is over; those of moved ones (`moved`: they live on in
 * the destination) still go after the grace period. */
static int push_del(struct mail_mailbox *mb, struct uidx_op *op, int moved)
{
	size_t n = op->n;
	int reap = moved || mb->eng->retention_ms == 0;
	if (moved)
		op->flags |= UIDX_DEL_MOVED;
	uint8_t (*ids)[UIDX_ID] = reap ? malloc(n * UIDX_ID) : NULL;
	if (ids)
		memcpy(ids, op->ids, n * UIDX_ID);
	int rc = push_op(mb, op);
	if (rc == 0 && ids)
		mail_reap_later(mb->eng, mb->user, mb->id, (const uint8_t(*)[UIDX_ID])ids, n);
	free(ids);
	return rc;
}

int mail_expunge(struct mail_view *v, const uint32_t *uids, size_t n)
{
	MAIL_WRITE_CALL(v->mb->eng);
	struct uidx_op *op = op_for_uids(v, UIDX_OP_DEL, uids, n);
	if (op == NULL)
		return AEROGRAM_EINTERNAL;
	if (op->n == 0) {
		uidx_op_free(op);
		return 0;
	}
	return push_del(v->mb, op, 0);
}

void mail_reap_later(struct mail_engine *eng, const char *user, const char *mbox,
                     const uint8_t (*ids)[UIDX_ID], size_t n)
{
	struct reap *r = calloc(1, sizeof(*r));
	if (r == NULL || (r->user = strdup(user)) == NULL || (r->ids = malloc(n * UIDX_ID)) == NULL) {
		if (r)
			free(r->user);
		free(r);
		return; /* left for orphan collection */
	}
	snprintf(r->mbox, sizeof(r->mbox), "%s", mbox);
	memcpy(r->ids, ids, n * UIDX_ID);
	r->n = n;
	r->at = mail_now(eng) + eng->grace_ms;
	pthread_mutex_lock(&eng->lock);
	if (eng->reap_tail)
		eng->reap_tail->next = r;
	else
		eng->reap_head = r;
	eng->reap_tail = r;
	pthread_mutex_unlock(&eng->lock);
}

int mail_remove_messages(struct mail_engine *eng, const char *user, const char *mbox,
                         const uint8_t (*ids)[UIDX_ID], size_t n)
{
	if (n == 0)
		return 0;
	char pk[512];
	key_summary_pk(pk, sizeof(pk), user, mbox);
	char (*keys)[700] = calloc(n, sizeof(*keys));
	const char **kp = calloc(n, sizeof(*kp));
	char (*sks)[33] = calloc(n, sizeof(*sks));
	struct aerogram_row_query *qs = calloc(n, sizeof(*qs));
	int rc = AEROGRAM_EINTERNAL;
	if (keys && kp && sks && qs) {
		for (size_t i = 0; i < n; i++) {
			key_body(keys[i], sizeof(keys[i]), user, mbox, ids[i]);
			bcache_forget(eng->bodies, keys[i]);
			kp[i] = keys[i];
			mail_hex(ids[i], UIDX_ID, sks[i]);
			qs[i].pk = pk;
			qs[i].sk = sks[i];
		}
		/* on failure, orphan collection finds them later */
		rc = store_blob_delete(eng, kp, n, pk);
		if (rc == 0)
			rc = store_row_delete(eng, qs, n, pk);
	}
	free(keys);
	free(kp);
	free(sks);
	free(qs);
	return rc;
}

/* Removes one batch: the bodies, then the summaries (tombstones). */
static void reap_one(struct mail_engine *eng, const struct reap *r)
{
	mail_remove_messages(eng, r->user, r->mbox, (const uint8_t(*)[UIDX_ID])r->ids, r->n);
}

void mail_reap_due(struct mail_engine *eng, int all)
{
	uint64_t now = mail_now(eng);
	for (;;) {
		pthread_mutex_lock(&eng->lock);
		struct reap *r = eng->reap_head;
		if (r && (all || r->at <= now)) {
			eng->reap_head = r->next;
			if (eng->reap_head == NULL)
				eng->reap_tail = NULL;
		} else {
			r = NULL;
		}
		pthread_mutex_unlock(&eng->lock);
		if (r == NULL)
			return;
		reap_one(eng, r);
		free(r->user);
		free(r->ids);
		free(r);
	}
}

/* Copies into dst; *moved receives the DEL op of the copied sources when
 * not NULL (for move). */
static int copy_into(struct mail_view *v, const uint32_t *uids, size_t n, struct mail_mailbox *dst,
                     uint32_t *uidvalidity, uint32_t *out_uids, struct uidx_op **moved)
{
	struct mail_engine *eng = v->mb->eng;
	if (dst->deleted)
		return AEROGRAM_ENOTFOUND;
	struct uidx_op *add = op_new(UIDX_OP_ADD, n);
	struct uidx_op *del = op_new(UIDX_OP_DEL, n);
	size_t *pos = calloc(n ? n : 1, sizeof(size_t));
	const struct uidx_msg **src = calloc(n ? n : 1, sizeof(*src));
	char (*hex)[33] = calloc(n ? n : 1, sizeof(*hex));
	struct aerogram_row_query *qs = calloc(n ? n : 1, sizeof(*qs));
	struct aerogram_row_write *ws = calloc(n ? n : 1, sizeof(*ws));
	char (*dhex)[33] = calloc(n ? n : 1, sizeof(*dhex));
	int rc = 0;
	if (!add || !del || !pos || !src || !hex || !qs || !ws || !dhex)
		rc = AEROGRAM_EINTERNAL;
	char spk[512], dpk[512];
	key_summary_pk(spk, sizeof(spk), v->mb->user, v->mb->id);
	key_summary_pk(dpk, sizeof(dpk), dst->user, dst->id);
	size_t ns = 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (out_uids)
			out_uids[i] = 0;
		const struct uidx_msg *m = uidx_find_uid(v->snap, uids[i]);
		if (m == NULL)
			continue;
		src[ns] = m;
		pos[ns] = i;
		mail_hex(m->id, UIDX_ID, hex[ns]);
		qs[ns].pk = spk;
		qs[ns].sk = hex[ns];
		ns++;
	}
	struct aerogram_row_result *rr = NULL;
	if (rc == 0 && ns) {
		rc = store_row_read(eng, qs, ns, &rr, spk);
	}
	size_t nw = 0;
	size_t *wpos = calloc(ns ? ns : 1, sizeof(size_t));
	if (wpos == NULL)
		rc = rc ? rc : AEROGRAM_EINTERNAL;
	for (size_t i = 0; rc == 0 && i < ns; i++) {
		/* pages come in query order, one per query */
		const struct aerogram_row_page *pg = &rr->pages[i];
		if (pg->n_rows == 0 || strcmp(pg->rows[0].sk, hex[i]) != 0)
			continue; /* expunged and collected meanwhile: skipped */
		const struct aerogram_row *row = &pg->rows[0];
		const struct aerogram_value *val = NULL;
		uint64_t size = UIDX_SIZE_UNKNOWN;
		for (size_t k = 0; k < row->n_values; k++)
			if (!row->values[k].tombstone) {
				struct summary s;
				if (codec_summary_decode(row->values[k].data, row->values[k].len, &s) == 0) {
					val = &row->values[k];
					size = s.size;
					break;
				}
			}
		if (val == NULL)
			continue;
		uint8_t nid[UIDX_ID];
		new_msg_id(eng, nid);
		char skey[700], dkey[700];
		key_body(skey, sizeof(skey), v->mb->user, v->mb->id, src[i]->id);
		key_body(dkey, sizeof(dkey), dst->user, dst->id, nid);
		int crc = store_blob_copy(eng, skey, dkey);
		if (crc == AEROGRAM_ENOTFOUND)
			continue;
		if (crc != 0) {
			rc = crc;
			break;
		}
		mail_hex(nid, UIDX_ID, dhex[nw]);
		ws[nw].pk = dpk;
		ws[nw].sk = dhex[nw];
		ws[nw].value = val->data;
		ws[nw].len = val->len;
		memcpy(add->ids[add->n], nid, UIDX_ID);
		add->item_flags[add->n] = uidx_state_to_op_flags(add, v->snap, src[i]->flags);
		add->item_sizes[add->n] = size;
		add->n++;
		memcpy(del->ids[del->n++], src[i]->id, UIDX_ID);
		wpos[nw] = pos[i];
		nw++;
	}
	uint32_t *got = calloc(nw ? nw : 1, sizeof(uint32_t));
	if (rc == 0 && got == NULL)
		rc = AEROGRAM_EINTERNAL;
	if (rc == 0 && nw) {
		/* the summaries (values borrowed from rr) go with the entry */
		rc = push_add(dst, add, ws, nw, uidvalidity, got);
		add = NULL;
		for (size_t i = 0; rc == 0 && out_uids && i < nw; i++)
			out_uids[wpos[i]] = got[i];
	} else if (rc == 0 && uidvalidity) {
		struct mail_status st;
		rc = mail_mailbox_status(dst, &st);
		*uidvalidity = st.uidvalidity;
	}
	store_row_result_free(eng, rr);
	if (rc == 0 && moved) {
		*moved = del;
		del = NULL;
	}
	free(got);
	uidx_op_free(add);
	uidx_op_free(del);
	free(pos);
	free(wpos);
	free(src);
	free(hex);
	free(qs);
	free(ws);
	free(dhex);
	return rc;
}

int mail_copy(struct mail_view *v, const uint32_t *uids, size_t n, struct mail_mailbox *dst,
              uint32_t *uidvalidity, uint32_t *out_uids)
{
	if (mail_would_block())
		return MAIL_EAGAIN;
	return copy_into(v, uids, n, dst, uidvalidity, out_uids, NULL);
}

int mail_move(struct mail_view *v, const uint32_t *uids, size_t n, struct mail_mailbox *dst,
              uint32_t *uidvalidity, uint32_t *out_uids)
{
	if (mail_would_block())
		return MAIL_EAGAIN;
	struct uidx_op *del = NULL;
	int rc = copy_into(v, uids, n, dst, uidvalidity, out_uids, &del);
	if (rc != 0)
		return rc;
	if (del->n == 0) {
		uidx_op_free(del);
		return 0;
	}
	return push_del(v->mb, del, 1);
}

int mail_bodies(struct mail_view *v, const uint32_t *uids, size_t n, struct mail_body **out)
{
	struct mail_engine *eng = v->mb->eng;
	*out = NULL;
	struct mail_body *res = calloc(n ? n : 1, sizeof(*res));
	struct aerogram_blob_request *req = calloc(n ? n : 1, sizeof(*req));
	char (*keys)[700] = calloc(n ? n : 1, sizeof(*keys));
	size_t *pos = calloc(n ? n : 1, sizeof(size_t));
	int rc = (res && req && keys && pos) ? 0 : AEROGRAM_EINTERNAL;
	size_t nr = 0, hits = 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		res[i].uid = uids[i];
		res[i].status = AEROGRAM_ENOTFOUND;
		const struct uidx_msg *m = uidx_find_uid(v->snap, uids[i]);
		if (m == NULL)
			continue;
		key_body(keys[nr], sizeof(keys[nr]), v->mb->user, v->mb->id, m->id);
		if (bcache_get(eng->bodies, keys[nr], &res[i].data, &res[i].len)) {
			res[i].status = 0;
			hits++;
			continue;
		}
		req[nr].key = keys[nr];
		pos[nr] = i;
		nr++;
	}
	/* bodies from the cache cost no store call, but count against the
	 * inline budget: a long run of them still goes to a worker */
	if (rc == 0 && hits && mail_would_block_cpu((unsigned)hits))
		rc = MAIL_EAGAIN;
	if (rc == 0 && nr && mail_would_block_read(eng, 1 + (unsigned)nr))
		rc = MAIL_EAGAIN;
	struct aerogram_blob_result *br = NULL;
	if (rc == 0 && nr) {
		rc = store_blob_get(eng, req, nr, &br, req[0].key);
	}
	for (size_t i = 0; rc == 0 && i < nr && i < br->n_blobs; i++) {
		const struct aerogram_blob *b = &br->blobs[i];
		struct mail_body *o = &res[pos[i]];
		o->status = b->status;
		if (b->status != 0)
			continue;
		o->data = malloc(b->len + 1);
		if (o->data == NULL) {
			rc = AEROGRAM_EINTERNAL;
			break;
		}
		if (b->len)
			memcpy(o->data, b->data, b->len);
		o->len = b->len;
		bcache_put(eng->bodies, req[i].key, b->data, b->len);
	}
	store_blob_result_free(eng, br);
	free(req);
	free(keys);
	free(pos);
	if (rc != 0) {
		mail_bodies_free(res, n);
		return rc;
	}
	*out = res;
	return 0;
}

void mail_bodies_free(struct mail_body *b, size_t n)
{
	for (size_t i = 0; b && i < n; i++)
		free(b[i].data);
	free(b);
}

/* ---- undelete ---- */

/* The random half of a message id: a restored message keeps it, so that
 * its origin stays recognisable (and a second undelete skips it). */
static uint64_t id_rnd(const uint8_t id[UIDX_ID])
{
	uint64_t r = 0;
	for (int i = 8; i < 16; i++)
		r = (r << 8) | id[i];
	return r;
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

struct undel_cand {
	uint8_t old[UIDX_ID];
	uint32_t old_uid;
	uint64_t at;
	uint64_t op_flags; /* into the add's keyword table, without \Deleted */
	uint32_t flags;    /* MAIL_F_* */
};

static int cand_cmp(const void *a, const void *b)
{
	const struct undel_cand *x = a, *y = b;
	return x->old_uid < y->old_uid ? -1 : x->old_uid > y->old_uid;
}

/* The random halves of the live messages, sorted (caller frees). */
static uint64_t *live_rnds(const struct uidx_state *s)
{
	uint64_t *r = malloc((s->n ? s->n : 1) * sizeof(*r));
	if (r == NULL)
		return NULL;
	for (size_t i = 0; i < s->n; i++)
		r[i] = id_rnd(s->msgs[i].id);
	qsort(r, s->n, sizeof(*r), u64_cmp);
	return r;
}

struct rnd_uid {
	uint64_t rnd;
	uint32_t uid;
};

static int rnd_uid_cmp(const void *a, const void *b)
{
	const struct rnd_uid *x = a, *y = b;
	if (x->rnd != y->rnd)
		return x->rnd < y->rnd ? -1 : 1;
	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* After our add: a concurrent undelete of the same messages may have added
 * them first (both read the list before either add). Every add's writer
 * had every earlier add (README: UID allocation), so the later one sees the
 * earlier and expunges its own copies: of the live messages sharing a
 * random half, the lowest UID stays, and the others are expunged (a DEL
 * flagged moved: not listed for undelete). Any such pair is swept, so one
 * left by an undelete whose sweep failed goes with the next. Our ids that
 * went get uid 0. Returns the status of that DEL. */
static int undelete_sweep(struct mail_mailbox *mb, uint32_t *uids, size_t n)
{
	pthread_mutex_lock(&mb->lock);
	const struct uidx_state *s = mb->log.cur;
	struct uidx_op *del = op_new(UIDX_OP_DEL, s->n);
	struct rnd_uid *pairs = malloc((s->n ? s->n : 1) * sizeof(*pairs));
	if (del == NULL || pairs == NULL) {
		pthread_mutex_unlock(&mb->lock);
		uidx_op_free(del);
		free(pairs);
		return AEROGRAM_EINTERNAL;
	}
	for (size_t i = 0; i < s->n; i++)
		pairs[i] = (struct rnd_uid){ id_rnd(s->msgs[i].id), s->msgs[i].uid };
	qsort(pairs, s->n, sizeof(*pairs), rnd_uid_cmp);
	for (size_t i = 1; i < s->n; i++) {
		if (pairs[i].rnd != pairs[i - 1].rnd)
			continue;
		const struct uidx_msg *m = uidx_find_uid(s, pairs[i].uid);
		if (m == NULL)
			continue;
		memcpy(del->ids[del->n++], m->id, UIDX_ID);
		for (size_t k = 0; k < n; k++)
			if (uids[k] == pairs[i].uid)
				uids[k] = 0;
	}
	pthread_mutex_unlock(&mb->lock);
	free(pairs);
	if (del->n == 0) {
		uidx_op_free(del);
		return 0;
	}
	size_t gone = del->n;
	int rc = push_del(mb, del, 1);
	if (rc != 0)
		mail_log(mb->eng, AEROGRAM_LOG_WARNING, "undelete: expunging %zu duplicates failed (%d)", gone, rc);
	return rc;
}

int mail_mailbox_undelete(struct mail_mailbox *mb, uint64_t since_ms, size_t *restored,
                          struct mail_restored **list)
{
	if (restored)
		*restored = 0;
	if (list)
		*list = NULL;
	if (mail_would_block())
		return MAIL_EAGAIN;
	struct mail_engine *eng = mb->eng;
	/* 1. the candidates, from the state as fresh as the watch tells (a
	 * concurrent undelete is caught after the add): newest expunge first,
	 * one per random half, none whose message is live again */
	pthread_mutex_lock(&mb->lock);
	int rc = mb->deleted ? AEROGRAM_ENOTFOUND : mailbox_sync_locked(mb, MAIL_SYNC_QUIET);
	struct uidx_state *s = mb->log.cur;
	size_t ne = s->n_expunged;
	struct undel_cand *cand = calloc(ne ? ne : 1, sizeof(*cand));
	uint64_t *live = rc == 0 ? live_rnds(s) : NULL;
	uint64_t *taken = calloc(ne ? ne : 1, sizeof(*taken));
	struct uidx_op *add = op_new(UIDX_OP_ADD, ne);
	size_t nc = 0;
	if (rc == 0 && (cand == NULL || live == NULL || taken == NULL || add == NULL))
		rc = AEROGRAM_EINTERNAL;
	for (size_t i = ne; rc == 0 && i-- > 0;) {
		const struct uidx_expunged *e = &s->expunged[i];
		if (e->at < since_ms)
			continue;
		uint64_t r = id_rnd(e->id);
		if (bsearch(&r, live, s->n, sizeof(*live), u64_cmp) != NULL)
			continue; /* restored already (or never gone) */
		int dup = 0;
		for (size_t k = 0; k < nc && !dup; k++)
			dup = taken[k] == r;
		if (dup)
			continue; /* an older expunge of a message restored then expunged again */
		taken[nc] = r;
		struct undel_cand *c = &cand[nc++];
		memcpy(c->old, e->id, UIDX_ID);
		c->old_uid = e->uid;
		c->at = e->at;
		c->op_flags = uidx_state_to_op_flags(add, s, e->flags & ~(uint64_t)MAIL_F_DELETED);
		c->flags = (uint32_t)(e->flags & MAIL_F_SYSTEM & ~MAIL_F_DELETED);
	}
	if (rc == AEROGRAM_ENOTFOUND)
		mb->deleted = 1;
	pthread_mutex_unlock(&mb->lock);
	free(live);
	free(taken);
	if (rc != 0 || nc == 0) {
		free(cand);
		uidx_op_free(add);
		/* nothing to add; a duplicate an earlier call left still goes */
		return rc == 0 ? undelete_sweep(mb, NULL, 0) : rc;
	}
	/* they come back in their old order */
	qsort(cand, nc, sizeof(*cand), cand_cmp);
	/* 2. their summaries (one read), then a copy of each body under a new
	 * id: the time now (orphan collection spares it while the add is in
	 * flight) and the old random half */
	char pk[512];
	key_summary_pk(pk, sizeof(pk), mb->user, mb->id);
	char (*hex)[33] = calloc(nc, sizeof(*hex));
	char (*nhex)[33] = calloc(nc, sizeof(*nhex));
	struct aerogram_row_query *qs = calloc(nc, sizeof(*qs));
	struct aerogram_row_write *ws = calloc(nc, sizeof(*ws));
	struct mail_restored *res = calloc(nc, sizeof(*res));
	uint32_t *got = calloc(nc, sizeof(*got));
	uint8_t *fresh = calloc(nc, 1);
	if (!hex || !nhex || !qs || !ws || !res || !got || !fresh)
		rc = AEROGRAM_EINTERNAL;
	for (size_t i = 0; rc == 0 && i < nc; i++) {
		mail_hex(cand[i].old, UIDX_ID, hex[i]);
		qs[i].pk = pk;
		qs[i].sk = hex[i];
	}
	struct aerogram_row_result *rr = NULL;
	if (rc == 0) {
		rc = store_row_read(eng, qs, nc, &rr, pk);
	}
	size_t nw = 0;
	uint64_t now = mail_now(eng);
	for (size_t i = 0; rc == 0 && i < nc && i < rr->n_pages; i++) {
		const struct aerogram_row_page *pg = &rr->pages[i];
		if (pg->n_rows == 0 || strcmp(pg->rows[0].sk, hex[i]) != 0)
			continue; /* collected already */
		const struct aerogram_row *row = &pg->rows[0];
		const struct aerogram_value *val = NULL;
		struct summary sm;
		for (size_t k = 0; k < row->n_values && val == NULL; k++)
			if (!row->values[k].tombstone &&
			    codec_summary_decode(row->values[k].data, row->values[k].len, &sm) == 0)
				val = &row->values[k];
		if (val == NULL)
			continue;
		/* after the old one's time, so never the old id itself (each
		 * restore of a message is newer than what it restores) */
		uint64_t t = now > msg_id_time(cand[i].old) ? now : msg_id_time(cand[i].old) + 1;
		uint8_t nid[UIDX_ID];
		for (int b = 0; b < 8; b++)
			nid[b] = (uint8_t)(t >> (56 - 8 * b));
		memcpy(nid + 8, cand[i].old + 8, 8);
		char skey[700], dkey[700];
		key_body(skey, sizeof(skey), mb->user, mb->id, cand[i].old);
		key_body(dkey, sizeof(dkey), mb->user, mb->id, nid);
		int crc = store_blob_copy(eng, skey, dkey);
		if (crc == AEROGRAM_ENOTFOUND)
			continue; /* the body went first */
		if (crc != 0) {
			rc = crc;
			break;
		}
		mail_hex(nid, UIDX_ID, nhex[nw]);
		ws[nw] = (struct aerogram_row_write){ pk, nhex[nw], NULL, val->data, val->len, 0 };
		memcpy(add->ids[nw], nid, UIDX_ID);
		add->item_flags[nw] = cand[i].op_flags;
		res[nw] = (struct mail_restored){ .old_uid = cand[i].old_uid, .expunged_ms = cand[i].at,
		                                  .internal_date_ms = sm.internal_date_ms, .size = sm.size,
		                                  .flags = cand[i].flags };
		nw++;
	}
	add->n = nw;
	/* 3. one log entry for all of them (the summaries go with it) */
	if (rc == 0 && nw) {
		rc = push_add_ex(mb, add, ws, nw, NULL, got, fresh);
		add = NULL;
	}
	/* the same restore by another undelete in the same ms: the same ids,
	 * which the log took once (its add came first) */
	for (size_t i = 0; rc == 0 && i < nw; i++)
		if (!fresh[i])
			got[i] = 0;
	store_row_result_free(eng, rr);
	size_t n_ok = 0;
	if (rc == 0)
		rc = undelete_sweep(mb, got, nw);
	if (rc == 0 && nw) {
		/* the report keeps the ones that stayed, in order */
		for (size_t i = 0; i < nw; i++) {
			if (got[i] == 0)
				continue;
			res[i].uid = got[i];
			res[n_ok++] = res[i];
		}
	}
	uidx_op_free(add);
	free(cand);
	free(hex);
	free(nhex);
	free(qs);
	free(ws);
	free(got);
	free(fresh);
	if (rc == 0 && restored)
		*restored = n_ok;
	if (rc == 0 && list && n_ok)
		*list = res;
	else
		free(res);
	return rc;
}
