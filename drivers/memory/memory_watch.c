/* memory_watch.c - row watches of the memory driver.
 *
 * One thread per store delivers every callback. A watch is in one of four
 * states, all guarded by the watcher mutex:
 *   ARMED    on its row's watch list and on the timer list;
 *   PENDING  on the pending queue with its status and a snapshot of the row;
 *   FIRING   taken by the thread, the callback is running;
 *   DONE     the callback has returned.
 * A writer, holding the rows lock, moves matching ARMED watches to PENDING
 * with a snapshot of the row it just wrote; the thread moves ARMED watches
 * whose deadline passed to PENDING with ETIMEDOUT, and calls back PENDING
 * ones without holding any lock. row_watch_release waits while its watch is
 * FIRING, then unlinks and frees it: after it returns the callback is not
 * running and never will. Lock order: rows lock, then watcher mutex. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "drivers/memory/memory_store.h"

#define TOKEN_TAG 'm'

enum watch_state { WATCH_ARMED, WATCH_PENDING, WATCH_FIRING, WATCH_DONE };

struct aerogram_watch {
	struct aerogram_store *st;
	enum watch_state state;
	struct mem_row *row;
	int has_token;
	uint64_t token;
	uint64_t deadline_ns;
	aerogram_watch_cb cb;
	void *arg;
	/* on row->watches while ARMED */
	struct aerogram_watch *key_prev, *key_next;
	/* on the timer list while ARMED, on the pending queue while PENDING */
	struct aerogram_watch *q_prev, *q_next;
	/* what the callback gets */
	int status;
	struct agk_arena snap;
	struct aerogram_row *row_snap;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- list plumbing (watcher mutex held) ------------------------------- */

static void key_link(struct aerogram_watch *w)
{
	struct aerogram_watch **head = &w->row->watches;
	w->key_prev = NULL;
	w->key_next = *head;
	if (*head)
		(*head)->key_prev = w;
	*head = w;
}

static void key_unlink(struct aerogram_watch *w)
{
	if (w->key_prev)
		w->key_prev->key_next = w->key_next;
	else
		w->row->watches = w->key_next;
	if (w->key_next)
		w->key_next->key_prev = w->key_prev;
	w->key_prev = w->key_next = NULL;
}

static void q_unlink(struct aerogram_watch **head, struct aerogram_watch **tail,
                     struct aerogram_watch *w)
{
	if (w->q_prev)
		w->q_prev->q_next = w->q_next;
	else
		*head = w->q_next;
	if (w->q_next)
		w->q_next->q_prev = w->q_prev;
	else
		*tail = w->q_prev;
	w->q_prev = w->q_next = NULL;
}

static void q_append(struct aerogram_watch **head, struct aerogram_watch **tail,
                     struct aerogram_watch *w)
{
	w->q_next = NULL;
	w->q_prev = *tail;
	if (*tail)
		(*tail)->q_next = w;
	else
		*head = w;
	*tail = w;
}

/* Timers are kept sorted by deadline. Most watches have similar timeouts,
 * so walking back from the tail finds the place in a step or two. */
static void timer_insert(struct mem_watcher *wr, struct aerogram_watch *w)
{
	struct aerogram_watch *after = wr->timers_tail;
	while (after != NULL && after->deadline_ns > w->deadline_ns)
		after = after->q_prev;
	w->q_prev = after;
	w->q_next = after ? after->q_next : wr->timers_head;
	if (w->q_next)
		w->q_next->q_prev = w;
	else
		wr->timers_tail = w;
	if (after)
		after->q_next = w;
	else
		wr->timers_head = w;
}

/* ARMED -> PENDING. The snapshot is already in w. */
static void make_pending(struct mem_watcher *wr, struct aerogram_watch *w, int status)
{
	key_unlink(w);
	q_unlink(&wr->timers_head, &wr->timers_tail, w);
	w->status = status;
	w->state = WATCH_PENDING;
	q_append(&wr->pending_head, &wr->pending_tail, w);
	pthread_cond_signal(&wr->wake);
}

/* ---- the thread ------------------------------------------------------- */

static void *watcher_main(void *arg)
{
	struct aerogram_store *st = arg;
	struct mem_watcher *wr = &st->watcher;
	pthread_mutex_lock(&wr->mutex);
	while (!wr->thr.stop) {
		struct aerogram_watch *w = wr->pending_head;
		if (w != NULL) {
			q_unlink(&wr->pending_head, &wr->pending_tail, w);
			w->state = WATCH_FIRING;
			pthread_mutex_unlock(&wr->mutex);
			w->cb(w->arg, w->status, w->status == AEROGRAM_OK ? w->row_snap : NULL,
			      w->status == AEROGRAM_OK ? NULL
			      : w->status == AEROGRAM_ETIMEDOUT ? "the watch timed out"
			                                       : "memory: out of memory taking a snapshot");
			pthread_mutex_lock(&wr->mutex);
			w->state = WATCH_DONE;
			pthread_cond_broadcast(&wr->done);
			continue;
		}
		uint64_t now = now_ns();
		while (wr->timers_head != NULL && wr->timers_head->deadline_ns <= now)
			make_pending(wr, wr->timers_head, AEROGRAM_ETIMEDOUT);
		if (wr->pending_head != NULL)
			continue;
		if (wr->timers_head != NULL) {
			uint64_t d = wr->timers_head->deadline_ns;
			struct timespec ts = { .tv_sec = (time_t)(d / 1000000000u),
			                       .tv_nsec = (long)(d % 1000000000u) };
			pthread_cond_timedwait(&wr->wake, &wr->mutex, &ts);
		} else {
			pthread_cond_wait(&wr->wake, &wr->mutex);
		}
	}
	pthread_mutex_unlock(&wr->mutex);
	return NULL;
}

int mem_watcher_start(struct aerogram_store *st)
{
	struct mem_watcher *wr = &st->watcher;
	pthread_mutex_init(&wr->mutex, NULL);
	agk_cond_init_monotonic(&wr->wake);
	pthread_cond_init(&wr->done, NULL);
	if (agk_thread_start(&wr->thr, watcher_main, st, NULL) != 0) {
		pthread_mutex_destroy(&wr->mutex);
		pthread_cond_destroy(&wr->wake);
		pthread_cond_destroy(&wr->done);
		return -1;
	}
	return 0;
}

void mem_watcher_stop(struct aerogram_store *st)
{
	struct mem_watcher *wr = &st->watcher;
	if (!wr->thr.started)
		return;
	agk_thread_stop(&wr->thr, &wr->mutex, &wr->wake);
	pthread_mutex_destroy(&wr->mutex);
	pthread_cond_destroy(&wr->wake);
	pthread_cond_destroy(&wr->done);
}

/* ---- firing on writes (rows lock held for writing) -------------------- */

static int row_watch_due(const struct aerogram_watch *w)
{
	const struct mem_row *r = w->row;
	if (r->counter == 0)
		return 0; /* nobody wrote it yet */
	return !w->has_token || r->counter != w->token;
}

/* Takes a snapshot of one row into the watch; on failure the watch fires
 * with AEROGRAM_EINTERNAL instead. */
static int snapshot_one(struct aerogram_watch *w, const struct mem_row *row)
{
	w->row_snap = agk_arena_alloc(&w->snap, sizeof(*w->row_snap));
	if (w->row_snap == NULL || mem_row_snapshot(&w->snap, row, w->row_snap) != 0) {
		agk_arena_free(&w->snap);
		w->row_snap = NULL;
		return AEROGRAM_EINTERNAL;
	}
	return AEROGRAM_OK;
}

void mem_watch_row_changed(struct aerogram_store *st, struct mem_row *row)
{
	struct mem_watcher *wr = &st->watcher;
	if (row->watches == NULL)
		return;
	pthread_mutex_lock(&wr->mutex);
	struct aerogram_watch *w = row->watches;
	while (w != NULL) {
		struct aerogram_watch *next = w->key_next;
		if (row_watch_due(w))
			make_pending(wr, w, snapshot_one(w, row));
		w = next;
	}
	pthread_mutex_unlock(&wr->mutex);
}

/* ---- registration ----------------------------------------------------- */

/* Arms a new watch, or queues it at once when `due`. Watcher mutex held. */
static void watch_start(struct mem_watcher *wr, struct aerogram_watch *w, int due, int status)
{
	w->state = WATCH_ARMED;
	key_link(w);
	timer_insert(wr, w);
	if (due)
		make_pending(wr, w, status);
	else
		pthread_cond_signal(&wr->wake); /* its deadline may be the earliest */
}

int mem_row_watch(struct aerogram_store *st, const char *pk, const char *sk, const char *token,
                  uint32_t timeout_ms, aerogram_watch_cb cb, void *arg,
                  struct aerogram_watch **out)
{
	*out = NULL;
	uint64_t t = 0;
	int rc = agk_check_key("memory", "partition key", pk);
	if (rc != 0)
		return rc;
	if ((rc = agk_check_key("memory", "row_watch: the sort key", sk)) != 0)
		return rc;
	if (cb == NULL)
		return agk_fail(AEROGRAM_EINVAL, "row_watch: no callback");
	if (token != NULL && mem_parse_stamp(token, TOKEN_TAG, &t) != 0)
		return agk_fail(AEROGRAM_EINVAL, "row_watch: malformed causality token '%.40s'", token);
	struct aerogram_watch *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return agk_fail(AEROGRAM_EINTERNAL, "out of memory");
	w->st = st;
	w->cb = cb;
	w->arg = arg;
	w->deadline_ns = now_ns() + (uint64_t)timeout_ms * 1000000u;
	w->has_token = token != NULL;
	w->token = t;
	pthread_rwlock_wrlock(&st->rows_lock);
	struct mem_partition *p = mem_partition_get(st, pk, 1);
	w->row = p ? mem_row_get(p, sk, 1) : NULL;
	if (w->row == NULL) {
		pthread_rwlock_unlock(&st->rows_lock);
		free(w);
		return agk_fail(AEROGRAM_EINTERNAL, "out of memory");
	}
	pthread_mutex_lock(&st->watcher.mutex);
	int due = row_watch_due(w);
	watch_start(&st->watcher, w, due, due ? snapshot_one(w, w->row) : 0);
	pthread_mutex_unlock(&st->watcher.mutex);
	pthread_rwlock_unlock(&st->rows_lock);
	*out = w;
	return 0;
}

static void watch_free(struct aerogram_watch *w)
{
	agk_arena_free(&w->snap);
	free(w);
}

void mem_row_watch_release(struct aerogram_store *st, struct aerogram_watch *w)
{
	if (w == NULL)
		return;
	struct mem_watcher *wr = &st->watcher;
	pthread_mutex_lock(&wr->mutex);
	while (w->state == WATCH_FIRING)
		pthread_cond_wait(&wr->done, &wr->mutex);
	if (w->state == WATCH_ARMED) {
		key_unlink(w);
		q_unlink(&wr->timers_head, &wr->timers_tail, w);
	} else if (w->state == WATCH_PENDING) {
		q_unlink(&wr->pending_head, &wr->pending_tail, w);
	}
	pthread_mutex_unlock(&wr->mutex);
	watch_free(w);
}
