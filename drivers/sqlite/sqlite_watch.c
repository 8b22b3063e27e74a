/* sqlite_watch.c - row watches, all served by one thread per store.
 *
 * Writes of this process: the committing thread knows which rows its
 * transaction wrote (sq_change_add). Before COMMIT it reads the final state
 * of those a single-row watch waits for (sq_watch_preload); after COMMIT it
 * matches them with the watches in memory (sq_watch_committed) and hands
 * the ones that fire, row included, to the thread. The thread is woken only
 * then: a commit that no watch waits for costs a hash lookup per row.
 *
 * Writes of other processes: while watches are pending, the thread asks its
 * own connection every poll_interval_ms for PRAGMA data_version, which
 * changes when any other connection committed; only then does it read. A
 * read is one transaction: the clock, then the rows whose ctx is above
 * watch_seen (an index range on ag_rows(ctx)), compared with the watches on
 * those keys. A local commit moves watch_seen over its own versions when
 * they directly follow it, so under a local load the thread finds nothing
 * to read; a write of another process leaves a gap that only the thread's
 * read closes. So a write in another process is seen within
 * poll_interval_ms, and a tick with no writes costs one pragma, however many
 * watches there are.
 *
 * A new single-row watch is compared with its row by row_watch itself,
 * under watch_mu (so no commit is matched in between): a watch that does
 * not fire at once costs the thread nothing. The rare cases a committing
 * thread cannot decide are compared by the thread.
 *
 * Most new watches need no read at all: `known` remembers the last token
 * this process saw for rows that are watched (from its commits, the
 * thread's reads and the comparisons). A watch armed with that token waits
 * at once: any later local commit is matched with it, and any later write
 * of another process has a version above watch_seen, so the thread's next
 * read finds it. (The thread updates `known` for every row it reads, and
 * forgets it all when it reads rows too many to match one by one.)
 *
 * Callbacks run on the thread without any lock held, so they may start new
 * watches or release other ones.
 */
#include "drivers/sqlite/sqlite_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Watches are also chained by partition key, so that matching a written row
 * looks at the watches of its partition only. */
#define SQ_WATCH_BUCKETS 1024
/* Slots of the known-token cache (a slot per hash, the newest wins). */
#define SQ_KNOWN_SLOTS 1024

struct sq_known {
	char *key; /* pk, NUL, sk, NUL (malloc'd); NULL: free slot */
	size_t len;
	uint64_t ctx;
};

/* Past this many changed rows in one look, each pending watch reads its own
 * row instead (bounded by the number of watches, not of writes). */
#define SQ_CHANGED_MATCH_MAX 64

enum sq_watch_state {
	SQ_W_NEW,     /* registered; the thread has not compared it yet */
	SQ_W_PENDING, /* waiting for a change or the deadline */
	SQ_W_QUEUED,  /* about to be called back */
	SQ_W_RUNNING, /* its callback is running */
	SQ_W_DONE     /* called back; waits for release */
};

struct aerogram_watch {
	struct aerogram_watch *next, *prev; /* the store's list */
	struct aerogram_watch *hnext, *hprev; /* its chain in watch_by_pk */
	struct aerogram_watch *fire_next;   /* the thread's list of callbacks to make */
	char *pk, *sk;
	char *token; /* NULL: fire when the row holds anything */
	uint64_t token_ver; /* the token as a version */
	int row_absent;     /* PENDING: the row had no value when compared */
	uint64_t deadline;
	aerogram_watch_cb cb;
	void *arg;
	enum sq_watch_state state;
	int released; /* released while queued: the thread frees it */
	int status;
	int has_row;
	struct aerogram_row row;
	struct agk_arena arena;
};

static void sq_watch_add(struct aerogram_store *st, struct aerogram_watch *w, uint32_t timeout_ms);

static uint32_t sq_hash(uint32_t h, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		h = (h ^ *p) * 16777619u; /* FNV-1a */
	return h;
}

static size_t sq_bucket(const char *pk)
{
	return sq_hash(2166136261u, pk) % SQ_WATCH_BUCKETS;
}

/* The slot of row (pk, sk) in `known`, and whether it holds that row. */
static struct sq_known *sq_known_slot(struct aerogram_store *st, const char *pk, const char *sk,
                                      size_t *len, int *match)
{
	size_t lp = strlen(pk), ls = strlen(sk);
	*len = lp + ls + 2;
	struct sq_known *k = &st->known[sq_hash(sq_hash(2166136261u, pk) * 31u, sk) % SQ_KNOWN_SLOTS];
	*match = k->key && k->len == *len && memcmp(k->key, pk, lp + 1) == 0 &&
	         memcmp(k->key + lp + 1, sk, ls + 1) == 0;
	return k;
}

/* Notes the token of a watched row. Under watch_mu. */
static void sq_known_set(struct aerogram_store *st, const char *pk, const char *sk, uint64_t ctx)
{
	size_t len;
	int match;
	struct sq_known *k = sq_known_slot(st, pk, sk, &len, &match);
	if (!match) {
		char *key = malloc(len);
		if (key == NULL)
			return;
		memcpy(key, pk, strlen(pk) + 1);
		memcpy(key + strlen(pk) + 1, sk, strlen(sk) + 1);
		free(k->key);
		k->key = key;
		k->len = len;
	}
	k->ctx = ctx;
}

/* Updates the token of a row `known` holds (a row seen by a read). */
static void sq_known_update(struct aerogram_store *st, const char *pk, const char *sk, uint64_t ctx)
{
	size_t len;
	int match;
	struct sq_known *k = sq_known_slot(st, pk, sk, &len, &match);
	if (match)
		k->ctx = ctx;
}

static void sq_known_clear(struct aerogram_store *st)
{
	for (size_t i = 0; st->known && i < SQ_KNOWN_SLOTS; i++) {
		free(st->known[i].key);
		st->known[i].key = NULL;
	}
}

static void sq_watch_free(struct aerogram_watch *w)
{
	agk_arena_free(&w->arena);
	free(w->pk);
	free(w->sk);
	free(w->token);
	free(w);
}

static void sq_watch_link(struct aerogram_store *st, struct aerogram_watch *w)
{
	w->next = st->watches;
	if (st->watches)
		st->watches->prev = w;
	st->watches = w;
	struct aerogram_watch **chain = &st->watch_by_pk[sq_bucket(w->pk)];
	w->hnext = *chain;
	if (*chain)
		(*chain)->hprev = w;
	*chain = w;
	st->n_watches++;
}

static void sq_watch_unlink(struct aerogram_store *st, struct aerogram_watch *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		st->watches = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->next = w->prev = NULL;
	if (w->hprev)
		w->hprev->hnext = w->hnext;
	else
		st->watch_by_pk[sq_bucket(w->pk)] = w->hnext;
	if (w->hnext)
		w->hnext->hprev = w->hprev;
	w->hnext = w->hprev = NULL;
	st->n_watches--;
}

static void sq_queue(struct aerogram_watch *w, int status, struct aerogram_watch **fire)
{
	w->state = SQ_W_QUEUED;
	w->status = status;
	w->fire_next = *fire;
	*fire = w;
}

/* Compares a single-row watch with the row's current state: ctx and its
 * encoded values (found: the row exists). */
static int sq_watch_check(struct aerogram_watch *w, int found, uint64_t ctx, const void *vals,
                          size_t vals_len, struct aerogram_watch **fire)
{
	if (!found)
		return 0;
	char tok[32];
	sq_token_format(ctx, tok);
	if (w->token && strcmp(w->token, tok) == 0)
		return 0;
	agk_arena_free(&w->arena);
	int code = sq_row_decode(&w->arena, vals, vals_len, w->sk, ctx, &w->row);
	if (code)
		return code;
	w->has_row = 1;
	sq_queue(w, AEROGRAM_OK, fire);
	return 0;
}

static int sq_watch_check_new(struct aerogram_store *st, struct sq_conn *conn, struct aerogram_watch *w,
                              struct aerogram_watch **fire)
{
	struct sq_row_head head;
	struct agk_arena a = { 0 };
	struct aerogram_row row;
	int exists = sq_row_get(conn, w->pk, w->sk, &head, &a, &row, "reading a watched row");
	if (exists <= 0) {
		agk_arena_free(&a);
		if (exists == 0) { /* else it stays NEW and is compared whole next time */
			w->state = SQ_W_PENDING;
			w->row_absent = 1;
		}
		return exists;
	}
	w->state = SQ_W_PENDING;
	w->row_absent = head.n_values == 0;
	if (!w->row_absent)
		sq_known_set(st, w->pk, w->sk, head.ctx);
	char tok[32];
	sq_token_format(head.ctx, tok);
	if (head.n_values == 0 || (w->token && strcmp(w->token, tok) == 0)) {
		agk_arena_free(&a);
		return 0;
	}
	agk_arena_free(&w->arena);
	w->arena = a;
	w->row = row;
	w->has_row = 1;
	sq_queue(w, AEROGRAM_OK, fire);
	return 0;
}

/* Reads the clock inside the connection's open transaction. */
static int sq_clock_read(struct sq_conn *conn, uint64_t *clock)
{
	sqlite3_stmt *s = sq_stmt(conn, SQ_CLOCK_GET);
	if (s == NULL)
		return sq_map_rc(conn->last_rc);
	int rc = sqlite3_step(s);
	int code = 0;
	if (rc == SQLITE_ROW)
		*clock = (uint64_t)sqlite3_column_int64(s, 0);
	else
		code = sq_db_fail(conn, rc, "reading the clock");
	sqlite3_reset(s);
	return code;
}

/* Compares the watches of row (pk, sk) with its new state (ctx and its
 * encoded values). Under watch_mu. */
static int sq_watch_match_row(struct aerogram_store *st, const char *pk, const char *sk,
                              uint64_t ctx, const void *vals, size_t vals_len,
                              struct aerogram_watch **fire)
{
	int code = 0;
	sq_known_update(st, pk, sk, ctx);
	for (struct aerogram_watch *w = st->watch_by_pk[sq_bucket(pk)]; code == 0 && w;
	     w = w->hnext) {
		if (w->state != SQ_W_PENDING || strcmp(w->pk, pk) != 0)
			continue;
		if (strcmp(w->sk, sk) == 0)
			code = sq_watch_check(w, 1, ctx, vals, vals_len, fire);
	}
	return code;
}

/* One look at the database, under watch_mu: new watches, then the rows
 * changed since watch_seen. */
static int sq_watch_scan(struct aerogram_store *st, struct sq_conn *conn,
                         struct aerogram_watch **fire)
{
	int code = sq_run(conn, SQ_TX_BEGIN);
	if (code != 0)
		return code;
	uint64_t clock = 0;
	code = sq_clock_read(conn, &clock);
	for (struct aerogram_watch *w = st->watches; code == 0 && w; w = w->next) {
		if (w->state == SQ_W_NEW)
			code = sq_watch_check_new(st, conn, w, fire);
	}
	int check_all = 0;
	sqlite3_stmt *s;
	if (code == 0 && clock > st->watch_seen) {
		if ((s = sq_stmt(conn, SQ_ROW_CHANGED)) == NULL) {
			code = sq_map_rc(conn->last_rc);
		} else {
			sqlite3_bind_int64(s, 1, (int64_t)st->watch_seen);
			size_t seen = 0;
			int rc;
			while (code == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
				/* Many rows changed (a bulk import): looking up each
				 * watch's row is cheaper than matching every row. */
				if (++seen > SQ_CHANGED_MATCH_MAX) {
					check_all = 1;
					sq_known_clear(st); /* rows changed that it will not see */
					rc = SQLITE_DONE;
					break;
				}
				const char *pk = (const char *)sqlite3_column_text(s, 0);
				const char *sk = (const char *)sqlite3_column_text(s, 1);
				code = sq_watch_match_row(st, pk ? pk : "", sk ? sk : "",
				                          (uint64_t)sqlite3_column_int64(s, 2),
				                          sqlite3_column_blob(s, 3),
				                          (size_t)sqlite3_column_bytes(s, 3), fire);
			}
			if (code == 0 && rc != SQLITE_DONE)
				code = sq_db_fail(conn, rc, "reading changed rows");
			sqlite3_reset(s);
		}
	}
	for (struct aerogram_watch *w = st->watches; code == 0 && check_all && w; w = w->next)
		if (w->state == SQ_W_PENDING)
			code = sq_watch_check_new(st, conn, w, fire);
	if (code == 0)
		code = sq_run(conn, SQ_TX_COMMIT);
	if (code != 0) {
		sq_rollback(conn);
		return code;
	}
	if (clock > st->watch_seen)
		st->watch_seen = clock;
	return 0;
}

/* ---- local commits ---- */

int sq_change_add(struct sq_conn *conn, const char *pk, const char *sk, uint64_t ctx)
{
	if (agk_grow(&conn->changes, &conn->cap_changes, conn->n_changes, sizeof(*conn->changes),
	             16) < 0)
		return -1;
	struct sq_change *c = &conn->changes[conn->n_changes];
	c->pk = agk_arena_strdup(&conn->change_arena, pk);
	c->sk = agk_arena_strdup(&conn->change_arena, sk);
	if (c->pk == NULL || c->sk == NULL)
		return -1;
	c->ctx = ctx;
	c->loaded = 0;
	conn->n_changes++;
	return 0;
}

void sq_changes_reset(struct sq_conn *conn)
{
	conn->n_changes = 0;
	conn->txn_clock_set = 0;
	agk_arena_free(&conn->change_arena);
}

/* 1 when a later change of the transaction wrote the same row as change i
 * (then that one holds the row's final state). */
static int sq_change_overwritten(const struct sq_conn *conn, size_t i)
{
	const struct sq_change *c = &conn->changes[i];
	for (size_t j = i + 1; j < conn->n_changes; j++)
		if (strcmp(conn->changes[j].sk, c->sk) == 0 && strcmp(conn->changes[j].pk, c->pk) == 0)
			return 1;
	return 0;
}

/* 1 when a watch not yet fired waits on (pk, sk). Under watch_mu. */
static int sq_row_watched(struct aerogram_store *st, const char *pk, const char *sk)
{
	for (struct aerogram_watch *w = st->watch_by_pk[sq_bucket(pk)]; w; w = w->hnext)
		if ((w->state == SQ_W_NEW || w->state == SQ_W_PENDING) &&
		    strcmp(w->sk, sk) == 0 && strcmp(w->pk, pk) == 0)
			return 1;
	return 0;
}

void sq_watch_preload(struct aerogram_store *st, struct sq_conn *conn)
{
	if (conn->n_changes == 0)
		return;
	size_t want = 0;
	pthread_mutex_lock(&st->watch_mu);
	for (size_t i = 0; st->n_watches && i < conn->n_changes; i++) {
		struct sq_change *c = &conn->changes[i];
		c->loaded = sq_row_watched(st, c->pk, c->sk) && !sq_change_overwritten(conn, i) ? -1 : 0;
		want += c->loaded != 0;
	}
	pthread_mutex_unlock(&st->watch_mu);
	for (size_t i = 0; want && i < conn->n_changes; i++) {
		struct sq_change *c = &conn->changes[i];
		if (c->loaded == 0)
			continue;
		/* Inside the write transaction: the state this commit leaves.
		 * On a failure the watch is compared again by the thread. */
		struct sq_row_head head;
		int found = sq_row_get(conn, c->pk, c->sk, &head, &conn->change_arena, &c->row,
		                       "reading a watched row");
		c->loaded = found == 1 && head.ctx == c->ctx ? 1 : 0;
	}
}

/* After the commit, for a watch that came between the preload and the
 * commit: reads the row's state now, in a read transaction of the write
 * connection (its cache is warm). */
static void sq_change_load_now(struct sq_conn *conn, struct sq_change *c)
{
	c->loaded = 0;
	if (sq_run(conn, SQ_TX_BEGIN) != 0)
		return;
	struct sq_row_head head;
	int found = sq_row_get(conn, c->pk, c->sk, &head, &conn->change_arena, &c->row,
	                       "reading a watched row");
	if (sq_run(conn, SQ_TX_COMMIT) != 0)
		sq_rollback(conn);
	c->loaded = found == 1 && head.n_values > 0 ? 1 : 0;
}

/* Copies a row into an arena. */
static int sq_row_copy(struct agk_arena *a, struct aerogram_row *dst, const struct aerogram_row *src)
{
	dst->sk = agk_arena_strdup(a, src->sk);
	dst->token = agk_arena_strdup(a, src->token);
	dst->n_values = src->n_values;
	dst->values = NULL;
	if (dst->sk == NULL || dst->token == NULL)
		return -1;
	if (src->n_values == 0)
		return 0;
	struct aerogram_value *v = agk_arena_memdup(a, src->values, src->n_values * sizeof(*v));
	if (v == NULL)
		return -1;
	for (size_t i = 0; i < src->n_values; i++) {
		if (v[i].tombstone)
			continue;
		v[i].data = agk_arena_memdup(a, src->values[i].data, v[i].len ? v[i].len : 1);
		if (v[i].data == NULL)
			return -1;
	}
	dst->values = v;
	return 0;
}

void sq_watch_committed(struct aerogram_store *st, struct sq_conn *conn)
{
	if (conn->n_changes == 0) {
		sq_changes_reset(conn);
		return;
	}
	/* Versions only grow inside a transaction: the last change is the
	 * newest, and every version in (txn_clock, newest] is a row written
	 * here. */
	uint64_t newest = conn->changes[conn->n_changes - 1].ctx;
	pthread_mutex_lock(&st->watch_mu);
	if (conn->txn_clock_set && st->watch_seen == conn->txn_clock && newest > st->watch_seen)
		st->watch_seen = newest;
	/* every row written here that `known` holds, in order: the last write
	 * of a row leaves its token */
	for (size_t i = 0; i < conn->n_changes; i++)
		sq_known_update(st, conn->changes[i].pk, conn->changes[i].sk, conn->changes[i].ctx);
	int wake = 0;
	for (size_t i = conn->n_changes; st->n_watches && i-- > 0;) {
		struct sq_change *c = &conn->changes[i];
		int overwritten = -1; /* not known yet */
		for (struct aerogram_watch *w = st->watch_by_pk[sq_bucket(c->pk)]; w; w = w->hnext) {
			if (w->state != SQ_W_PENDING || strcmp(w->pk, c->pk) != 0 ||
			    strcmp(w->sk, c->sk) != 0)
				continue;
			if (overwritten < 0) {
				overwritten = sq_change_overwritten(conn, i);
				if (!overwritten)
					sq_known_set(st, c->pk, c->sk, c->ctx);
			}
			/* A later change decides; or the watch was compared with
			 * this commit's state or a newer one (a row's token only
			 * grows, and was the watch's when it was compared). */
			if (overwritten || (w->token && !w->row_absent && w->token_ver >= c->ctx))
				continue;
			if (c->loaded != 1)
				sq_change_load_now(conn, c);
			if (c->loaded == 1 && w->token && strcmp(w->token, c->row.token) == 0)
				continue;
			wake = 1;
			agk_arena_free(&w->arena);
			if (c->loaded == 1 && sq_row_copy(&w->arena, &w->row, &c->row) == 0) {
				w->has_row = 1;
				sq_queue(w, AEROGRAM_OK, &st->fire_ready);
			} else {
				w->state = SQ_W_NEW; /* the thread compares it whole */
				st->watch_kick = 1;
			}
		}
	}
	if (wake)
		pthread_cond_signal(&st->watch_wake);
	pthread_mutex_unlock(&st->watch_mu);
	sq_changes_reset(conn);
}

void sq_watch_set_base(struct aerogram_store *st, uint64_t clock)
{
	pthread_mutex_lock(&st->watch_mu);
	if (clock > st->watch_seen)
		st->watch_seen = clock;
	pthread_mutex_unlock(&st->watch_mu);
}

static int64_t sq_data_version(sqlite3_stmt *dv)
{
	int64_t v = -1;
	if (sqlite3_step(dv) == SQLITE_ROW)
		v = sqlite3_column_int64(dv, 0);
	sqlite3_reset(dv);
	return v;
}

static void *sq_watch_main(void *arg)
{
	struct aerogram_store *st = arg;
	struct sq_conn *conn = NULL;
	sqlite3_stmt *dv = NULL;
	int64_t last_dv = -2;
	int failing = 0;
	uint64_t next_poll = 0;

	pthread_mutex_lock(&st->watch_mu);
	while (!st->watch_thr.stop) {
		/* Sleep until something can have happened. */
		uint64_t now = agk_now_ms();
		uint64_t wake = UINT64_MAX;
		int active = 0;
		for (struct aerogram_watch *w = st->watches; w; w = w->next) {
			if (w->state != SQ_W_NEW && w->state != SQ_W_PENDING)
				continue;
			active = 1;
			if (w->deadline < wake)
				wake = w->deadline;
		}
		if (active && next_poll < wake)
			wake = next_poll;
		if (!st->watch_kick && st->fire_ready == NULL && wake > now) {
			/* row_watch wakes us for a watch due before `wake` */
			st->watch_wake_at = wake;
			agk_cond_wait_until(&st->watch_wake, &st->watch_mu, wake);
			st->watch_wake_at = 0;
			continue; /* recompute: the list or the flags changed */
		}
		int check = st->watch_kick;
		st->watch_kick = 0;
		/* fired by committing threads: called back below */
		struct aerogram_watch *fire = st->fire_ready;
		st->fire_ready = NULL;
		int polling = active && now >= next_poll;
		if (polling)
			next_poll = now + (uint64_t)st->poll_interval_ms;
		pthread_mutex_unlock(&st->watch_mu);

		if (conn == NULL && (check || polling)) {
			if (sq_conn_get(st, &conn) != 0 ||
			    sqlite3_prepare_v2(conn->db, "PRAGMA data_version", -1, &dv, NULL) != SQLITE_OK) {
				if (!failing)
					sq_log(st, AEROGRAM_LOG_WARNING, "watch: cannot open %s; retrying", st->path);
				failing = 1;
				if (conn)
					sq_conn_put(st, conn);
				conn = NULL;
				check = polling = 0;
			}
		}
		if (conn && (check || polling)) {
			int64_t v = sq_data_version(dv);
			if (v != last_dv || failing)
				check = 1;
			last_dv = v;
		}
		pthread_mutex_lock(&st->watch_mu);
		if (conn && check) {
			int code = sq_watch_scan(st, conn, &fire);
			if (code != 0 && !failing)
				sq_log(st, AEROGRAM_LOG_WARNING, "watch: %s; retrying", agk_error_text());
			failing = code != 0;
		}
		now = agk_now_ms();
		for (struct aerogram_watch *w = st->watches; w; w = w->next)
			if ((w->state == SQ_W_NEW || w->state == SQ_W_PENDING) && w->deadline <= now)
				sq_queue(w, AEROGRAM_ETIMEDOUT, &fire);
		pthread_mutex_unlock(&st->watch_mu);

		/* Each watch is independent: the order of the callbacks does not
		 * matter. */
		while (fire) {
			struct aerogram_watch *w = fire;
			fire = w->fire_next;
			pthread_mutex_lock(&st->watch_mu);
			if (w->released) {
				pthread_mutex_unlock(&st->watch_mu);
				sq_watch_free(w);
				continue;
			}
			w->state = SQ_W_RUNNING;
			pthread_mutex_unlock(&st->watch_mu);
			if (w->status == AEROGRAM_OK)
				w->cb(w->arg, AEROGRAM_OK, w->has_row ? &w->row : NULL, NULL);
			else
				w->cb(w->arg, w->status, NULL,
				      w->status == AEROGRAM_ETIMEDOUT ? "timeout" : "watch failed");
			pthread_mutex_lock(&st->watch_mu);
			w->state = SQ_W_DONE;
			pthread_cond_broadcast(&st->watch_done);
			pthread_mutex_unlock(&st->watch_mu);
		}
		pthread_mutex_lock(&st->watch_mu);
	}
	pthread_mutex_unlock(&st->watch_mu);
	if (dv)
		sqlite3_finalize(dv);
	if (conn)
		sq_conn_put(st, conn);
	return NULL;
}

int sq_watch_start(struct aerogram_store *st, char *errbuf, size_t errlen)
{
	st->watch_by_pk = calloc(SQ_WATCH_BUCKETS, sizeof(*st->watch_by_pk));
	st->known = calloc(SQ_KNOWN_SLOTS, sizeof(*st->known));
	if (st->watch_by_pk == NULL || st->known == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		return AEROGRAM_EUNAVAILABLE;
	}
	int err = agk_thread_start(&st->watch_thr, sq_watch_main, st, "ag-sq-watch"); /* the tests look for it */
	if (err != 0) {
		snprintf(errbuf, errlen, "cannot start the watch thread: %s", strerror(err));
		return AEROGRAM_EUNAVAILABLE;
	}
	return 0;
}

void sq_watch_stop(struct aerogram_store *st)
{
	if (!st->watch_thr.started)
		return;
	agk_thread_stop(&st->watch_thr, &st->watch_mu, &st->watch_wake);
	/* Fired by a commit and released before the thread called back: only
	 * that list still holds them. */
	while (st->fire_ready) {
		struct aerogram_watch *w = st->fire_ready;
		st->fire_ready = w->fire_next;
		if (w->released)
			sq_watch_free(w);
	}
	/* The contract says every watch was released; free any left anyway. */
	while (st->watches) {
		struct aerogram_watch *w = st->watches;
		sq_watch_unlink(st, w);
		sq_watch_free(w);
	}
}

void sq_watch_free_all(struct aerogram_store *st)
{
	free(st->watch_by_pk);
	st->watch_by_pk = NULL;
	sq_known_clear(st);
	free(st->known);
	st->known = NULL;
}

int sq_row_watch(struct aerogram_store *st, const char *pk, const char *sk, const char *token,
                 uint32_t timeout_ms, aerogram_watch_cb cb, void *arg,
                 struct aerogram_watch **out)
{
	*out = NULL;
	if (pk == NULL || pk[0] == '\0' || !sq_utf8_valid(pk))
		return agk_fail(AEROGRAM_EINVAL, "sqlite: watch: missing or invalid partition key");
	if (sk == NULL || sk[0] == '\0' || !sq_utf8_valid(sk))
		return agk_fail(AEROGRAM_EINVAL, "sqlite: watch: missing, empty or invalid sort key");
	if (strlen(pk) > AEROGRAM_ROW_KEY_MAX || strlen(sk) > AEROGRAM_ROW_KEY_MAX)
		return agk_fail(AEROGRAM_ETOOBIG, "sqlite: watch: a key is over %d bytes", AEROGRAM_ROW_KEY_MAX);
	if (cb == NULL)
		return agk_fail(AEROGRAM_EINVAL, "sqlite: watch: no callback");
	if (token) {
		size_t n = strlen(token);
		int ok = n == 16;
		for (size_t i = 0; ok && i < n; i++)
			ok = (token[i] >= '0' && token[i] <= '9') || (token[i] >= 'a' && token[i] <= 'f');
		if (!ok)
			return agk_fail(AEROGRAM_EINVAL, "sqlite: watch: bad causality token '%.40s'", token);
	}
	struct aerogram_watch *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return agk_fail(AEROGRAM_EUNAVAILABLE, "sqlite: out of memory");
	w->pk = strdup(pk);
	w->sk = strdup(sk);
	w->token = token ? strdup(token) : NULL;
	if (w->pk == NULL || w->sk == NULL || (token && w->token == NULL)) {
		sq_watch_free(w);
		return agk_fail(AEROGRAM_EUNAVAILABLE, "sqlite: out of memory");
	}
	for (const char *p = token; p && *p; p++)
		w->token_ver = (w->token_ver << 4) | (uint64_t)(*p <= '9' ? *p - '0' : *p - 'a' + 10);
	w->cb = cb;
	w->arg = arg;
	sq_watch_add(st, w, timeout_ms);
	*out = w;
	return 0;
}

/* Compares a new watch with its row on the calling thread, under
 * watch_mu: it becomes PENDING, or QUEUED on fire_ready with the row; on a
 * failure it stays NEW (the thread compares it). */
static void sq_watch_compare_now(struct aerogram_store *st, struct aerogram_watch *w)
{
	struct sq_conn *conn;
	if (sq_conn_get(st, &conn) != 0)
		return;
	if (sq_run(conn, SQ_TX_BEGIN) == 0) {
		sq_watch_check_new(st, conn, w, &st->fire_ready);
		if (sq_run(conn, SQ_TX_COMMIT) != 0)
			sq_rollback(conn);
	}
	sq_conn_put(st, conn);
}

/* Registers a new watch. It is compared at once (no commit can be matched
 * in between: watch_mu is held); the thread is woken only when the watch
 * fired, is due before the thread's next wake-up, or must be compared by it
 * (the comparison failed). */
static void sq_watch_add(struct aerogram_store *st, struct aerogram_watch *w, uint32_t timeout_ms)
{
	w->deadline = agk_now_ms() + timeout_ms;
	w->state = SQ_W_NEW;
	pthread_mutex_lock(&st->watch_mu);
	sq_watch_link(st, w);
	size_t len;
	int known = 0;
	if (w->token) {
		struct sq_known *k = sq_known_slot(st, w->pk, w->sk, &len, &known);
		known = known && k->ctx == w->token_ver;
	}
	if (known)
		w->state = SQ_W_PENDING; /* the row has the watch's token: wait */
	else
		sq_watch_compare_now(st, w);
	if (w->state == SQ_W_NEW)
		st->watch_kick = 1;
	if (w->state != SQ_W_PENDING || w->deadline < st->watch_wake_at)
		pthread_cond_signal(&st->watch_wake);
	pthread_mutex_unlock(&st->watch_mu);
}

void sq_row_watch_release(struct aerogram_store *st, struct aerogram_watch *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&st->watch_mu);
	while (w->state == SQ_W_RUNNING)
		pthread_cond_wait(&st->watch_done, &st->watch_mu);
	sq_watch_unlink(st, w);
	if (w->state == SQ_W_QUEUED) {
		/* The thread holds it in its list: it frees it there. */
		w->released = 1;
		pthread_mutex_unlock(&st->watch_mu);
		return;
	}
	pthread_mutex_unlock(&st->watch_mu);
	sq_watch_free(w);
}
