/* poller.c - the engine's poller thread and the mailboxes' watches.
 *
 * One engine thread (the poller) owns the watches: a driver thread's watch
 * callback only flags the mailbox and wakes the poller, which releases the
 * fired watch, syncs the log (it may block), tells the subscribers and arms
 * a new watch. Between fires it removes the contents of expunged messages
 * that are due and checkpoints the tails of quiet mailboxes. */
#include "host/mail/mail_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
		store_row_watch_release(mb->eng, mb->watch);
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
	int rc = store_row_watch(eng, mb->log.pk, "watch", token, eng->opt.poll_timeout_ms, watch_cb, mb, &w,
	                         mb->log.pk);
	free(token);
	pthread_mutex_lock(&eng->lock);
	mb->rearm_pending = 0;
	if (rc == 0) {
		mb->watch = w;
	} else {
		mb->watch = NULL;
		mb->retry_at = mail_now(eng) + 1000;
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
int mailbox_adopt_own_fire_locked(struct mail_mailbox *mb)
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
		if (fired == 1 && mailbox_adopt_own_fire_locked(mb)) {
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
		if (mailbox_adopt_own_fire_locked(mb)) {
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
	if (pthread_create(&eng->poller, NULL, poller_main, eng) == 0) {
		pthread_setname_np(eng->poller, "ag-poller");
		eng->poller_running = 1;
	} else
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
