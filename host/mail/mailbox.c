/* mailbox.c - the shared state of open mailboxes and their subscriptions.
 *
 * One mail_mailbox per (user, mailbox id) per engine, reference counted and
 * shared by every session that has it open. The watches and the thread that
 * waits on them are in poller.c. */
#include "host/mail/mail_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint32_t mailbox_uidvalidity(const struct mail_mailbox *mb, const struct uidx_state *s)
{
	(void)mb;
	return s->uidvalidity;
}

static void mailbox_free(struct mail_mailbox *mb)
{
	scache_forget(mb->eng->summaries, mb);
	mailbox_watch_release(mb);
	free(mb->fired_token);
	oplog_clear(&mb->log);
	pthread_mutex_destroy(&mb->lock);
	pthread_mutex_destroy(&mb->add_lock);
	pthread_cond_destroy(&mb->add_cond);
	pthread_mutex_destroy(&mb->sub_lock);
	pthread_cond_destroy(&mb->sub_cond);
	free(mb->user);
	free(mb);
}

static void unlink_locked(struct mail_engine *eng, struct mail_mailbox *mb)
{
	for (struct mail_mailbox **pp = &eng->open; *pp; pp = &(*pp)->next)
		if (*pp == mb) {
			*pp = mb->next;
			break;
		}
}

/* With eng->lock held: the least recently closed cached state beyond the
 * limit, unlinked (the caller frees it), or NULL. */
static struct mail_mailbox *cache_evict_locked(struct mail_engine *eng)
{
	if (eng->n_cached <= eng->opt.cache_mailboxes)
		return NULL;
	struct mail_mailbox *old = NULL;
	for (struct mail_mailbox *m = eng->open; m; m = m->next)
		if (m->refs == 0 && (old == NULL || m->closed_at < old->closed_at))
			old = m;
	if (old) {
		unlink_locked(eng, old);
		eng->n_cached--;
	}
	return old;
}

/* Drops a reference taken under eng->lock. The last one keeps the state
 * warm in the cache (no watch: the next open reads what changed), unless
 * the mailbox was deleted. */
void mailbox_unref(struct mail_mailbox *mb)
{
	struct mail_engine *eng = mb->eng;
	pthread_mutex_lock(&eng->lock);
	int last = --mb->refs == 0;
	struct mail_mailbox *evict = NULL;
	int free_now = 0;
	struct aerogram_watch *w = NULL;
	if (last) {
		if (mb->deleted || eng->stopping) {
			unlink_locked(eng, mb);
			free_now = 1;
		} else {
			w = mb->watch;
			mb->watch = NULL;
			mb->watch_fired = 0;
			mb->synced_since_fire = 0;
			mb->retry_at = 0;
			mb->rearm_pending = 0;
			mb->closed_at = mail_now(eng);
			eng->n_cached++;
			evict = cache_evict_locked(eng);
		}
	}
	pthread_mutex_unlock(&eng->lock);
	if (w)
		store_row_watch_release(eng, w);
	if (free_now)
		mailbox_free(mb);
	if (evict)
		mailbox_free(evict);
}

void mailbox_cache_flush(struct mail_engine *eng)
{
	for (;;) {
		pthread_mutex_lock(&eng->lock);
		struct mail_mailbox *m;
		for (m = eng->open; m; m = m->next)
			if (m->refs == 0)
				break;
		if (m) {
			unlink_locked(eng, m);
			eng->n_cached--;
		}
		pthread_mutex_unlock(&eng->lock);
		if (m == NULL)
			return;
		mailbox_free(m);
	}
}

void mailbox_after_write(struct mail_mailbox *mb)
{
	if (!mb->log.ckpt_wanted || mb->eng->opt.no_poller)
		return;
	pthread_mutex_lock(&mb->eng->lock);
	mb->idle_tried_at = 0;
	pthread_cond_signal(&mb->eng->poll_cond);
	pthread_mutex_unlock(&mb->eng->lock);
}

void mailbox_notify(struct mail_mailbox *mb)
{
	pthread_mutex_lock(&mb->sub_lock);
	for (struct mail_sub *s = mb->subs; s; s = s->next)
		s->cb(s->arg);
	pthread_mutex_unlock(&mb->sub_lock);
}

int mailbox_sync_locked(struct mail_mailbox *mb, int mode)
{
	int force = mode == MAIL_SYNC_FORCE;
	if (mb->deleted)
		return AEROGRAM_ENOTFOUND;
	/* With a live watch that has not fired, nothing changed as far as
	 * anyone can tell: skip the round trip. */
	if (!force) {
		/* the watch fields belong to the poller: read them under its lock */
		pthread_mutex_lock(&mb->eng->lock);
		int quiet = mb->watch != NULL && !mb->watch_fired && mb->synced_since_fire;
		/* A fire already taken in (by a sync since, or as our own write)
		 * reports nothing new, but the watch is not live again until the
		 * poller re-arms it. A view update, a flag change or a \Recent
		 * claim can go ahead; an ADD never gets here: it always reads
		 * (MAIL_SYNC_FORCE), see push_add. */
		if (mb->synced_since_fire && mb->watch_fired != 3 &&
		    (mb->watch != NULL || mb->in_poll || mb->rearm_pending))
			quiet = 1;
		pthread_mutex_unlock(&mb->eng->lock);
		if (quiet)
			return 0;
		if (mailbox_adopt_own_fire_locked(mb))
			return 0;
	}
	if (!force && mb->eng->lazy && mb->synced_since_fire)
		return 0;
	MAIL_READ_CALL(mb->eng); /* a read of the store */
	uint64_t before = mb->log.version;
	pthread_mutex_lock(&mb->eng->lock);
	mb->synced_since_fire = 1; /* a fire from now on clears it again */
	pthread_mutex_unlock(&mb->eng->lock);
	int rc = oplog_sync(&mb->log, 0);
	if (rc == AEROGRAM_ENOTFOUND) {
		mb->deleted = 1;
		mail_log(mb->eng, AEROGRAM_LOG_INFO, "%s: mailbox deleted elsewhere", mb->log.pk);
		mailbox_notify(mb);
	}
	if (rc != 0) {
		pthread_mutex_lock(&mb->eng->lock);
		mb->synced_since_fire = 0;
		pthread_mutex_unlock(&mb->eng->lock);
	}
	if (rc == 0 && mb->log.version != before)
		mailbox_notify(mb);
	return rc;
}

int mailbox_ref(struct mail_engine *eng, const char *user, const char *hex, struct mail_mailbox **out)
{
	pthread_mutex_lock(&eng->lock);
	struct mail_mailbox *mb;
	for (mb = eng->open; mb; mb = mb->next)
		if (strcmp(mb->id, hex) == 0 && strcmp(mb->user, user) == 0 && !mb->deleted)
			break;
	if (mb) {
		if (mb->refs++ == 0)
			eng->n_cached--; /* warm from the cache */
	} else {
		mb = calloc(1, sizeof(*mb));
		if (mb == NULL || (mb->user = strdup(user)) == NULL ||
		    oplog_init(&mb->log, eng, user, hex) != 0) {
			pthread_mutex_unlock(&eng->lock);
			if (mb)
				free(mb->user);
			free(mb);
			return AEROGRAM_EINTERNAL;
		}
		mb->eng = eng;
		mb->log.defer_ckpt = !eng->opt.no_poller;
		memcpy(mb->id, hex, sizeof(mb->id));
		mb->refs = 1;
		pthread_mutex_init(&mb->lock, NULL);
		pthread_mutex_init(&mb->add_lock, NULL);
		pthread_cond_init(&mb->add_cond, NULL);
		pthread_mutex_init(&mb->sub_lock, NULL);
		pthread_cond_init(&mb->sub_cond, NULL);
		mb->next = eng->open;
		eng->open = mb;
	}
	pthread_mutex_unlock(&eng->lock);
	*out = mb;
	return 0;
}

int mail_mailbox_open(struct mail_engine *eng, const char *user, const char *name,
                      struct mail_mailbox **out)
{
	return mail_mailbox_open_flags(eng, user, name, 0, out);
}

int mail_mailbox_open_flags(struct mail_engine *eng, const char *user, const char *name, unsigned flags,
                            struct mail_mailbox **out)
{
	MAIL_READ_CALL(eng);
	*out = NULL;
	uint8_t id[UIDX_ID];
	uint32_t list_uv = 0;
	int rc = mblist_lookup(eng, user, name, id, &list_uv);
	if (rc != 0)
		return rc;
	char hex[33];
	mail_hex(id, UIDX_ID, hex);
	struct mail_mailbox *mb;
	rc = mailbox_ref(eng, user, hex, &mb);
	if (rc != 0)
		return rc;

	rc = mail_lock_or_again(&mb->lock);
	if (rc != 0) {
		mailbox_unref(mb);
		return rc;
	}
	/* (an add reads or checks what it must itself: a state in memory does
	 * not need a read first) */
	if (!(flags & MAIL_OPEN_FOR_ADD) || !mb->log.loaded)
		rc = mailbox_sync_locked(mb, 0);
	/* A new mailbox starts at the list's UIDVALIDITY (time-based), and a
	 * name re-created or renamed must report at least the list's value:
	 * INIT raises it (the largest INIT wins, so concurrent first opens
	 * agree). */
	if (rc == 0 && mb->log.cur->uidvalidity < list_uv && mail_would_block_write(eng))
		rc = MAIL_EAGAIN;
	if (rc == 0 && mb->log.cur->uidvalidity < list_uv) {
		struct uidx_op *op = calloc(1, sizeof(*op));
		if (op == NULL) {
			rc = AEROGRAM_EINTERNAL;
		} else {
			op->kind = UIDX_OP_INIT;
			op->bump = list_uv;
			rc = oplog_push(&mb->log, op, NULL, 0);
		}
	}
	pthread_mutex_unlock(&mb->lock);
	if (rc != 0) {
		mailbox_unref(mb);
		return rc;
	}
	if (!eng->opt.no_poller) {
		pthread_mutex_lock(&eng->lock);
		if (mb->watch == NULL && mb->retry_at == 0)
			mb->in_poll = 1; /* first open: armed at once with the token just read */
		pthread_cond_signal(&eng->poll_cond); /* the poller arms the watch */
		pthread_mutex_unlock(&eng->lock);
	}
	*out = mb;
	return 0;
}

void mail_mailbox_close(struct mail_mailbox *mb)
{
	if (mb)
		mailbox_unref(mb);
}

int mail_mailbox_sync(struct mail_mailbox *mb)
{
	MAIL_READ_CALL(mb->eng);
	if (mail_lock_or_again(&mb->lock) != 0)
		return MAIL_EAGAIN;
	int rc = mailbox_sync_locked(mb, 1);
	pthread_mutex_unlock(&mb->lock);
	return rc;
}

int mail_mailbox_status(struct mail_mailbox *mb, struct mail_status *st)
{
	memset(st, 0, sizeof(*st));
	if (mail_lock_or_again(&mb->lock) != 0)
		return MAIL_EAGAIN;
	int rc = mb->deleted ? AEROGRAM_ENOTFOUND : 0;
	const struct uidx_state *s = mb->log.cur;
	if (rc == 0) {
		st->exists = (uint32_t)s->n;
		st->uidvalidity = mailbox_uidvalidity(mb, s);
		st->uidnext = s->uidnext;
		st->highestmodseq = s->highestmodseq;
		for (size_t i = 0; i < s->n; i++) {
			if (!(s->msgs[i].flags & MAIL_F_SEEN))
				st->unseen++;
			if (s->msgs[i].uid >= s->recent_upto)
				st->recent++;
			if (s->msgs[i].flags & MAIL_F_DELETED) {
				st->deleted++;
				if (s->msgs[i].size != UIDX_SIZE_UNKNOWN)
					st->deleted_size += s->msgs[i].size;
			}
		}
		st->size = s->total_size;
		st->sizes_unknown = (uint32_t)s->n_unsized;
	}
	pthread_mutex_unlock(&mb->lock);
	return rc;
}

int mailbox_load_sizes_locked(struct mail_mailbox *mb)
{
	struct uidx_state *s = mb->log.cur;
	if (s == NULL || s->n_unsized == 0)
		return 0;
	if (mail_would_block_read(mb->eng, 1))
		return MAIL_EAGAIN;
	size_t n = s->n_unsized, k = 0;
	uint8_t(*ids)[UIDX_ID] = malloc(n * UIDX_ID);
	uint64_t *sizes = calloc(n, sizeof(*sizes));
	int rc = ids != NULL && sizes != NULL ? 0 : AEROGRAM_EINTERNAL;
	for (size_t i = 0; rc == 0 && i < s->n && k < n; i++)
		if (s->msgs[i].size == UIDX_SIZE_UNKNOWN)
			memcpy(ids[k++], s->msgs[i].id, UIDX_ID);
	if (rc == 0)
		rc = summary_sizes(mb, (const uint8_t(*)[UIDX_ID])ids, k, s->n, sizes);
	size_t missing = 0;
	for (size_t i = 0; rc == 0 && i < k; i++) {
		if (sizes[i] == UIDX_SIZE_UNKNOWN) {
			/* its summary is gone (a summary is written before the
			 * entry that names it): a broken message, counted as 0
			 * rather than read again at every count */
			missing++;
			sizes[i] = 0;
		}
		/* the same fact for every state that has the message: the
		 * replay base too, so that a replay keeps what it can */
		uidx_set_size(s, ids[i], sizes[i]);
		if (mb->log.base)
			uidx_set_size(mb->log.base, ids[i], sizes[i]);
	}
	if (missing)
		mail_log(mb->eng, AEROGRAM_LOG_WARNING, "%s: %zu messages without a summary: their size counts as 0",
		         mb->log.pk, missing);
	free(ids);
	free(sizes);
	return rc;
}

int mail_mailbox_load_sizes(struct mail_mailbox *mb)
{
	if (mail_lock_or_again(&mb->lock) != 0)
		return MAIL_EAGAIN;
	int rc = mb->deleted ? AEROGRAM_ENOTFOUND : mailbox_load_sizes_locked(mb);
	pthread_mutex_unlock(&mb->lock);
	return rc;
}

int mail_mailbox_checkpoint(struct mail_mailbox *mb, int force)
{
	if (mail_would_block())
		return MAIL_EAGAIN;
	pthread_mutex_lock(&mb->lock);
	uint64_t before = mb->log.version;
	int rc = mailbox_sync_locked(mb, 1);
	if (rc == 0)
		rc = oplog_checkpoint(&mb->log, force);
	int changed = mb->log.version != before;
	pthread_mutex_unlock(&mb->lock);
	if (changed)
		mailbox_notify(mb);
	return rc;
}

const char *mail_mailbox_id(const struct mail_mailbox *mb)
{
	return mb->id;
}

struct mail_sub *mail_mailbox_subscribe(struct mail_mailbox *mb, void (*cb)(void *arg), void *arg)
{
	struct mail_sub *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->mb = mb;
	s->cb = cb;
	s->arg = arg;
	pthread_mutex_lock(&mb->sub_lock);
	s->next = mb->subs;
	mb->subs = s;
	pthread_mutex_unlock(&mb->sub_lock);
	pthread_mutex_lock(&mb->eng->lock);
	if (mb->watchers++ == 0 && mb->watch == NULL && !mb->eng->opt.no_poller)
		pthread_cond_signal(&mb->eng->poll_cond); /* the poller arms a watch */
	pthread_mutex_unlock(&mb->eng->lock);
	return s;
}

void mail_unsubscribe(struct mail_sub *sub)
{
	if (sub == NULL)
		return;
	struct mail_mailbox *mb = sub->mb;
	/* notify() calls back under sub_lock, so once we hold it no call runs */
	pthread_mutex_lock(&mb->sub_lock);
	for (struct mail_sub **pp = &mb->subs; *pp; pp = &(*pp)->next)
		if (*pp == sub) {
			*pp = sub->next;
			break;
		}
	pthread_mutex_unlock(&mb->sub_lock);
	pthread_mutex_lock(&mb->eng->lock);
	mb->watchers--;
	pthread_mutex_unlock(&mb->eng->lock);
	free(sub);
}

/* ---- contents removal (mailbox delete) ---- */

static int delete_blobs_under(struct mail_engine *eng, const char *prefix)
{
	char **keys = NULL;
	size_t n = 0;
	int rc = mail_list_blobs(eng, prefix, &keys, &n);
	for (size_t i = 0; rc == 0 && i < n; i += 1000) {
		size_t k = n - i < 1000 ? n - i : 1000;
		rc = store_blob_delete(eng, (const char *const *)keys + i, k, prefix);
	}
	mail_free_strv(keys, n);
	return rc;
}

int mailbox_remove_contents(struct mail_engine *eng, const char *user, const char *mbox_id)
{
	pthread_mutex_lock(&eng->lock);
	for (struct mail_mailbox *mb = eng->open; mb; mb = mb->next)
		if (strcmp(mb->id, mbox_id) == 0 && strcmp(mb->user, user) == 0)
			mb->deleted = 1;
	pthread_mutex_unlock(&eng->lock);

	char idx_pk[512], mail_pk[512], pfx[600];
	snprintf(idx_pk, sizeof(idx_pk), "%s/index/%s", user, mbox_id);
	key_summary_pk(mail_pk, sizeof(mail_pk), user, mbox_id);
	/* bodies and checkpoints first, rows last: an interrupted delete leaves
	 * rows that a retry (or orphan collection) finds again */
	snprintf(pfx, sizeof(pfx), "%s/", mail_pk);
	int rc = delete_blobs_under(eng, pfx);
	if (rc == 0) {
		snprintf(pfx, sizeof(pfx), "%s/checkpoint/", idx_pk);
		rc = delete_blobs_under(eng, pfx);
	}
	if (rc == 0) {
		struct aerogram_row_query q[2] = { { .pk = mail_pk }, { .pk = idx_pk } };
		rc = store_row_delete(eng, q, 2, idx_pk);
	}
	return rc;
}

void mail_engine_checkpoint_all(struct mail_engine *eng, uint32_t budget_ms)
{
	uint64_t deadline = mail_now(eng) + budget_ms;
	for (;;) {
		/* one mailbox at a time, a reference held, none visited twice */
		struct mail_mailbox *pick = NULL;
		pthread_mutex_lock(&eng->lock);
		for (struct mail_mailbox *mb = eng->open; mb; mb = mb->next)
			if (!mb->deleted && !mb->shutdown_done) {
				pick = mb;
				break;
			}
		if (pick) {
			pick->shutdown_done = 1;
			if (pick->refs++ == 0)
				eng->n_cached--;
		}
		pthread_mutex_unlock(&eng->lock);
		if (pick == NULL)
			return;
		if (mail_now(eng) < deadline) {
			pthread_mutex_lock(&pick->lock);
			if (pick->log.loaded && pick->log.tail_n > 0 && !pick->deleted)
				oplog_checkpoint(&pick->log, 1);
			pthread_mutex_unlock(&pick->lock);
		}
		mailbox_unref(pick);
	}
}

void mail_engine_mailbox_counts(struct mail_engine *eng, size_t *in_use, size_t *cached)
{
	size_t n = 0;
	pthread_mutex_lock(&eng->lock);
	for (const struct mail_mailbox *mb = eng->open; mb != NULL; mb = mb->next)
		if (mb->refs > 0)
			n++;
	*cached = eng->n_cached;
	pthread_mutex_unlock(&eng->lock);
	*in_use = n;
}
