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

uint64_t msg_id_time(const uint8_t id[UIDX_ID]);
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
static int push_add(struct mail_mailbox *mb, struct uidx_op *op, const struct aerogram_row_write *extra,
                    size_t n_extra, uint32_t *uidvalidity, uint32_t *uids)
{
	if (mail_would_block()) { /* adds wait for one another: never inline */
		uidx_op_free(op);
		return MAIL_EAGAIN;
	}
	struct add_wait w = { op, extra, n_extra, NULL, op->n, uids, 0, 0, 0, NULL };
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

static int push_op(struct mail_mailbox *mb, struct uidx_op *op)
{
	if (mail_lock_or_again(&mb->lock) != 0) {
		uidx_op_free(op);
		return MAIL_EAGAIN;
	}
	/* Conditional writes check freshness themselves; otherwise read what
	 * the watch says changed first. */
	int rc = mb->log.cas && !mb->deleted ? 0 : mailbox_sync_locked(mb, 0);
	if (rc == 0)
		rc = oplog_push(&mb->log, op, NULL, 0);
	else
		uidx_op_free(op);
	if (rc == AEROGRAM_ENOTFOUND)
		mb->deleted = 1;
	pthread_mutex_unlock(&mb->lock);
	if (rc == 0) {
		mailbox_notify(mb);
		mailbox_after_write(mb);
	}
	return rc;
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
	if (op == NULL || ws == NULL || sks == NULL || bufs == NULL) {
		uidx_op_free(op);
		free(ws);
		free(sks);
		free(bufs);
		return AEROGRAM_EINTERNAL;
	}
	char pk[512];
	key_summary_pk(pk, sizeof(pk), mb->user, mb->id);
	int rc = 0;
	/* Bodies and summaries first (immutable, named by fresh ids), then one
	 * log entry for every message of the command. */
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const struct mail_new_message *msg = &msgs[i];
		uint8_t *id = op->ids[i];
		new_msg_id(eng, id);
		char key[700];
		key_body(key, sizeof(key), mb->user, mb->id, id);
		mail_hex(id, UIDX_ID, sks[i]);
		rc = eng->st.driver->blob_put(eng->st.store, key, msg->body, msg->body_len, NULL, 0);
		if (rc != 0) {
			mail_log(eng, AEROGRAM_LOG_WARNING, "blob_put %s: %s", key, mail_store_error(eng));
			break;
		}
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
			size_t j;
			for (j = 0; j < op->n_keywords; j++)
				if (strcasecmp(op->keywords[j], msg->keywords[k]) == 0)
					break;
			if (j == op->n_keywords) {
				if (j >= MAIL_MAX_KEYWORDS)
					continue;
				char **nk = realloc(op->keywords, (j + 1) * sizeof(char *));
				if (nk == NULL || (nk[j] = strdup(msg->keywords[k])) == NULL) {
					if (nk)
						op->keywords = nk;
					rc = AEROGRAM_EINTERNAL;
					break;
				}
				op->keywords = nk;
				op->n_keywords++;
			}
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

/* Pushes a DEL, then queues the contents of its messages for removal. */
static int push_del(struct mail_mailbox *mb, struct uidx_op *op)
{
	size_t n = op->n;
	uint8_t (*ids)[UIDX_ID] = malloc(n * UIDX_ID);
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
	return push_del(v->mb, op);
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
	r->at = mail_now(eng) + MAIL_REAP_GRACE_MS;
	pthread_mutex_lock(&eng->lock);
	if (eng->reap_tail)
		eng->reap_tail->next = r;
	else
		eng->reap_head = r;
	eng->reap_tail = r;
	pthread_mutex_unlock(&eng->lock);
}

/* Removes one batch: the bodies, then the summaries (tombstones). */
static void reap_one(struct mail_engine *eng, const struct reap *r)
{
	char pk[512];
	key_summary_pk(pk, sizeof(pk), r->user, r->mbox);
	char (*keys)[700] = calloc(r->n, sizeof(*keys));
	const char **kp = calloc(r->n, sizeof(*kp));
	char (*sks)[33] = calloc(r->n, sizeof(*sks));
	struct aerogram_row_query *qs = calloc(r->n, sizeof(*qs));
	if (keys && kp && sks && qs) {
		for (size_t i = 0; i < r->n; i++) {
			key_body(keys[i], sizeof(keys[i]), r->user, r->mbox, r->ids[i]);
			kp[i] = keys[i];
			mail_hex(r->ids[i], UIDX_ID, sks[i]);
			qs[i].pk = pk;
			qs[i].sk = sks[i];
		}
		int rc = eng->st.driver->blob_delete(eng->st.store, kp, r->n);
		if (rc == 0)
			rc = eng->st.driver->row_delete(eng->st.store, qs, r->n, NULL);
		if (rc != 0) /* orphan collection finds them later */
			mail_log(eng, AEROGRAM_LOG_WARNING, "removing expunged messages of %s: %s", pk, mail_store_error(eng));
	}
	free(keys);
	free(kp);
	free(sks);
	free(qs);
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
		rc = eng->st.driver->row_read(eng->st.store, qs, ns, &rr);
		if (rc != 0)
			mail_log(eng, AEROGRAM_LOG_WARNING, "row_read %s: %s", spk, mail_store_error(eng));
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
		int crc = eng->st.driver->blob_copy(eng->st.store, skey, dkey);
		if (crc == AEROGRAM_ENOTFOUND)
			continue;
		if (crc != 0) {
			mail_log(eng, AEROGRAM_LOG_WARNING, "blob_copy %s: %s", skey, mail_store_error(eng));
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
	if (rr)
		eng->st.driver->row_result_free(eng->st.store, rr);
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
	return push_del(v->mb, del);
}

int mail_bodies(struct mail_view *v, const uint32_t *uids, size_t n, struct mail_body **out)
{
	if (mail_would_block_read(v->mb->eng, 1 + (unsigned)n))
		return MAIL_EAGAIN;
	struct mail_engine *eng = v->mb->eng;
	*out = NULL;
	struct mail_body *res = calloc(n ? n : 1, sizeof(*res));
	struct aerogram_blob_request *req = calloc(n ? n : 1, sizeof(*req));
	char (*keys)[700] = calloc(n ? n : 1, sizeof(*keys));
	size_t *pos = calloc(n ? n : 1, sizeof(size_t));
	int rc = (res && req && keys && pos) ? 0 : AEROGRAM_EINTERNAL;
	size_t nr = 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		res[i].uid = uids[i];
		res[i].status = AEROGRAM_ENOTFOUND;
		const struct uidx_msg *m = uidx_find_uid(v->snap, uids[i]);
		if (m == NULL)
			continue;
		key_body(keys[nr], sizeof(keys[nr]), v->mb->user, v->mb->id, m->id);
		req[nr].key = keys[nr];
		pos[nr] = i;
		nr++;
	}
	struct aerogram_blob_result *br = NULL;
	if (rc == 0 && nr) {
		rc = eng->st.driver->blob_get(eng->st.store, req, nr, &br);
		if (rc != 0)
			mail_log(eng, AEROGRAM_LOG_WARNING, "blob_get: %s", mail_store_error(eng));
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
	}
	if (br)
		eng->st.driver->blob_result_free(eng->st.store, br);
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
