/* mailbox.c - the shared state of open mailboxes, their poller and
 * subscriptions.
 *
 * One mail_mailbox per (user, mailbox id) per engine, reference counted and
 * shared by every session that has it open. One engine thread (the poller)
 * owns the watches: a driver thread's watch callback only flags the mailbox
 * and wakes the poller, which releases the fired watch, syncs the log (it
 * may block), tells the subscribers and arms a new watch. */
#include "host/mail/mail_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
static void mailbox_unref(struct mail_mailbox *mb)
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
		eng->st.driver->row_watch_release(eng->st.store, w);
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

static int adopt_own_fire_locked(struct mail_mailbox *mb);

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
		if (adopt_own_fire_locked(mb))
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
		rc = eng->st.driver->blob_delete(eng->st.store, (const char *const *)keys + i, k);
		if (rc != 0)
			mail_log(eng, AEROGRAM_LOG_WARNING, "blob_delete %s: %s", prefix, mail_store_error(eng));
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
		rc = eng->st.driver->row_delete(eng->st.store, q, 2, NULL);
		if (rc != 0)
			mail_log(eng, AEROGRAM_LOG_WARNING, "row_delete %s: %s", idx_pk, mail_store_error(eng));
	}
	return rc;
}

/* ---- the poller ---- */

static void watch_cb(void *arg, int status, const struct aerogram_row *row, const char *message)
{
	(void)message;
	struct mail_mailbox *mb = arg;
	struct mail_engine *eng = mb->eng;
	/* From a driver thread: only flag and wake; the poller does the work. */
	pthread_mutex_lock(&eng->lock);
	if (status == AEROGRAM_OK) {
		mb->watch_fired = 1;
		mb->synced_since_fire = 0;
		/* Keep a single 16-byte value and its token: when it is this
		 * engine's own rewrite, the poller needs no sync (poll_one). */
		free(mb->fired_token);
		mb->fired_token = NULL;
		mb->fired_value_ok = 0;
		mb->n_fired_values = 0;
		int fits = row != NULL && row->n_values >= 1 && row->n_values <= MAIL_OWN_WATCH &&
		           row->token != NULL;
		for (size_t i = 0; fits && i < row->n_values; i++)
			if (row->values[i].tombstone || row->values[i].len != sizeof(mb->fired_value[0]))
				fits = 0;
		if (fits && (mb->fired_token = strdup(row->token)) != NULL) {
			for (size_t i = 0; i < row->n_values; i++)
				memcpy(mb->fired_value[i], row->values[i].data, sizeof(mb->fired_value[0]));
			mb->n_fired_values = row->n_values;
			mb->fired_value_ok = 1;
		}
	} else if (status == AEROGRAM_ETIMEDOUT) {
		mb->watch_fired = 2;
	} else {
		mb->watch_fired = 3;
	}
	pthread_cond_signal(&eng->poll_cond);
	pthread_mutex_unlock(&eng->lock);
}

void mailbox_watch_release(struct mail_mailbox *mb)
{
	if (mb->watch) {
		mb->eng->st.driver->row_watch_release(mb->eng->st.store, mb->watch);
		mb->watch = NULL;
	}
}

void mailbox_watch_arm(struct mail_mailbox *mb)
{
	struct mail_engine *eng = mb->eng;
	pthread_mutex_lock(&mb->lock);
	char *token = mb->log.watch_token ? strdup(mb->log.watch_token) : NULL;
	pthread_mutex_unlock(&mb->lock);
	struct aerogram_watch *w = NULL;
	int rc = eng->st.driver->row_watch(eng->st.store, mb->log.pk, "watch", token,
	                                   eng->opt.poll_timeout_ms, watch_cb, mb, &w);
	free(token);
	pthread_mutex_lock(&eng->lock);
	mb->rearm_pending = 0;
	if (rc == 0) {
		mb->watch = w;
	} else {
		mb->watch = NULL;
		mb->retry_at = mail_now(eng) + 1000;
		mail_log(eng, AEROGRAM_LOG_WARNING, "row_watch %s: %s", mb->log.pk, mail_store_error(eng));
	}
	pthread_mutex_unlock(&eng->lock);
}

/* True when v is one of the values this engine wrote to the watch row. */
static int own_watch_value(const struct oplog *log, const uint8_t *v)
{
	unsigned n = log->n_own_watch < MAIL_OWN_WATCH ? log->n_own_watch : MAIL_OWN_WATCH;
	for (unsigned i = 0; i < n; i++)
		if (memcmp(log->own_watch[i], v, sizeof(log->own_watch[i])) == 0)
			return 1;
	return 0;
}

/* With mb->lock held: when the last fire showed only values this engine
 * wrote itself, takes the fired token as the one to watch and write with,
 * counts as a sync and returns 1; else 0.
 *
 * Why that is enough: the engine wrote each such value with the token of a
 * sync, which read the watch row and then the log (or of such a fire). Any
 * other watch write either was covered by that token (its log entry,
 * written before it, was read then) or is not, and then stays beside our
 * values as a concurrent one, or was overwritten by a writer that read it,
 * whose own value then shows instead. So a row holding only our values
 * names no entry we have not read: a daemon's own writes no longer cost it
 * a sync each. (Two writes of ours before the first fire arrives are two
 * concurrent values: the next write with the fired token merges them.) */
static int adopt_own_fire_locked(struct mail_mailbox *mb)
{
	struct mail_engine *eng = mb->eng;
	int own = 0;
	pthread_mutex_lock(&eng->lock);
	int all_own = mb->fired_value_ok && mb->fired_token != NULL && !mb->deleted;
	if (all_own && mb->log.cas) {
		/* every write is conditional on the token: the row is ours when it
		 * still has the token our last write left */
		all_own = mb->log.watch_token != NULL && strcmp(mb->fired_token, mb->log.watch_token) == 0;
	} else {
		for (size_t i = 0; all_own && i < mb->n_fired_values; i++)
			all_own = own_watch_value(&mb->log, mb->fired_value[i]);
	}
	if (all_own) {
		free(mb->log.watch_token);
		mb->log.watch_token = mb->fired_token;
		mb->fired_token = NULL;
		mb->fired_value_ok = 0;
		mb->synced_since_fire = 1;
		own = 1;
	}
	pthread_mutex_unlock(&eng->lock);
	return own;
}

/* Handles one mailbox the poller picked (a reference is held). */
static void poll_one(struct mail_mailbox *mb, int fired)
{
	if (mb->watch && fired) {
		mailbox_watch_release(mb);
	}
	int need_sync = fired != 2; /* a change, a failure or a first arm */
	if (fired == 1 || fired == 0) {
		/* No sync when the fire was this engine's own write, or when a
		 * sync has completed since the fire (or, for a first arm, since
		 * the open): the token it read makes the new watch fire for
		 * anything newer. Holding mb->lock, no sync is half done. */
		pthread_mutex_lock(&mb->lock);
		if (fired == 1 && adopt_own_fire_locked(mb)) {
			/* Our own write: under a stream of them, a watch armed at
			 * once would fire at every one (two thread switches each).
			 * Arm it a moment later, with the newest token by then:
			 * another daemon's write is noticed at most that much later,
			 * and commands meanwhile take the state as quiet. */
			pthread_mutex_unlock(&mb->lock);
			pthread_mutex_lock(&mb->eng->lock);
			mb->rearm_pending = 1;
			mb->retry_at = mail_now(mb->eng) + MAIL_REARM_DELAY_MS;
			pthread_mutex_unlock(&mb->eng->lock);
			return;
		}
		if (adopt_own_fire_locked(mb)) {
			need_sync = 0;
		} else {
			pthread_mutex_lock(&mb->eng->lock);
			if (mb->synced_since_fire)
				need_sync = 0;
			pthread_mutex_unlock(&mb->eng->lock);
		}
		pthread_mutex_unlock(&mb->lock);
	}
	if (need_sync) {
		pthread_mutex_lock(&mb->lock);
		int rc = mb->deleted ? AEROGRAM_ENOTFOUND : mailbox_sync_locked(mb, 1);
		pthread_mutex_unlock(&mb->lock);
		if (rc != 0 && rc != AEROGRAM_ENOTFOUND) {
			pthread_mutex_lock(&mb->eng->lock);
			mb->retry_at = mail_now(mb->eng) + 1000;
			pthread_mutex_unlock(&mb->eng->lock);
			return;
		}
	}
	if (!mb->deleted)
		mailbox_watch_arm(mb);
}

/* With eng->lock held: whether a mailbox asked for a checkpoint since the
 * poller last looked. */
static int ckpt_pending_locked(struct mail_engine *eng)
{
	for (struct mail_mailbox *mb = eng->open; mb; mb = mb->next)
		if (mb->idle_tried_at == 0 && !mb->deleted)
			return 1;
	return 0;
}

/* With eng->lock held: a mailbox (open or cached) quiet long enough for a
 * checkpoint of its tail, or NULL. Reading its log fields without its own
 * lock is a hint only: idle_checkpoint decides under the lock. */
static struct mail_mailbox *idle_pick_locked(struct mail_engine *eng, uint64_t now)
{
	for (struct mail_mailbox *mb = eng->open; mb; mb = mb->next) {
		if (mb->deleted || mb->idle_tried_at + 1000 > now)
			continue;
		if (pthread_mutex_trylock(&mb->lock) != 0)
			continue;
		int due = oplog_idle_checkpoint_due(&mb->log, now);
		pthread_mutex_unlock(&mb->lock);
		mb->idle_tried_at = now;
		if (due)
			return mb;
	}
	return NULL;
}

/* A quiet mailbox's tail goes into a checkpoint, so that the next open
 * (here or in another daemon) reads a checkpoint and nothing else. */
static void idle_checkpoint(struct mail_mailbox *mb)
{
	pthread_mutex_lock(&mb->lock);
	uint64_t before = mb->log.version;
	int rc = 0;
	if (!mb->deleted && oplog_idle_checkpoint_due(&mb->log, mail_now(mb->eng)))
		rc = oplog_checkpoint(&mb->log, 1);
	int changed = mb->log.version != before;
	pthread_mutex_unlock(&mb->lock);
	if (rc != 0)
		mail_log(mb->eng, AEROGRAM_LOG_DEBUG, "%s: idle checkpoint failed (%d)", mb->log.pk, rc);
	if (changed)
		mailbox_notify(mb);
}

static void *poller_main(void *arg)
{
	struct mail_engine *eng = arg;
	uint64_t next_idle_scan = 0;
	pthread_mutex_lock(&eng->lock);
	while (!eng->stopping) {
		struct mail_mailbox *pick = NULL;
		int fired = 0;
		uint64_t now = mail_now(eng);
		for (struct mail_mailbox *mb = eng->open; mb; mb = mb->next) {
			/* a mailbox nobody has selected (an APPEND, a STATUS) needs
			 * no watch: its next use reads what changed */
			if (mb->deleted || mb->refs == 0 || (mb->watchers == 0 && mb->watch == NULL))
				continue;
			if (mb->watch_fired || (mb->watch == NULL && now >= mb->retry_at)) {
				pick = mb;
				fired = mb->watch_fired ? mb->watch_fired : 4;
				mb->watch_fired = 0;
				mb->in_poll = 1;
				break;
			}
		}
		if (pick == NULL && eng->reap_head && eng->reap_head->at <= now) {
			pthread_mutex_unlock(&eng->lock);
			mail_reap_due(eng, 0);
			pthread_mutex_lock(&eng->lock);
			continue;
		}
		if (pick == NULL && (now >= next_idle_scan || ckpt_pending_locked(eng))) {
			next_idle_scan = now + 1000;
			pick = idle_pick_locked(eng, now);
			if (pick) {
				pick->refs++;
				if (pick->refs == 1)
					eng->n_cached--;
				pthread_mutex_unlock(&eng->lock);
				idle_checkpoint(pick);
				mailbox_unref(pick);
				pthread_mutex_lock(&eng->lock);
				next_idle_scan = 0; /* there may be more */
				continue;
			}
		}
		if (pick == NULL) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 200 * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&eng->poll_cond, &eng->lock, &ts);
			continue;
		}
		pick->refs++;
		pthread_mutex_unlock(&eng->lock);
		poll_one(pick, fired == 4 ? 0 : fired);
		pthread_mutex_lock(&eng->lock);
		pick->in_poll = 0;
		pthread_mutex_unlock(&eng->lock);
		mailbox_unref(pick);
		pthread_mutex_lock(&eng->lock);
	}
	pthread_mutex_unlock(&eng->lock);
	return NULL;
}

void engine_poller_start(struct mail_engine *eng)
{
	if (pthread_create(&eng->poller, NULL, poller_main, eng) == 0)
		eng->poller_running = 1;
	else
		mail_log(eng, AEROGRAM_LOG_ERROR, "cannot start the poller thread: %s", strerror(errno));
}

void engine_poller_stop(struct mail_engine *eng)
{
	if (!eng->poller_running)
		return;
	pthread_mutex_lock(&eng->lock);
	eng->stopping = 1;
	pthread_cond_signal(&eng->poll_cond);
	pthread_mutex_unlock(&eng->lock);
	pthread_join(eng->poller, NULL);
	eng->poller_running = 0;
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
