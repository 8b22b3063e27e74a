/* sqlite_commit.c - group commit: the write transactions of one process
 * share commits, and so share the fsync of each commit.
 *
 * At synchronous=full every commit fsyncs the WAL, and the fsync, not the
 * SQL, is what a write costs. So a write call does not run its own
 * transaction: it queues its work (a function that applies it on a
 * connection) and waits. One waiting thread at a time, the leader, takes
 * every queued call, runs them in ONE transaction (BEGIN IMMEDIATE), each
 * inside its own SAVEPOINT, and commits once. A call that fails (a refused
 * condition of row_insert_if, a missing blob to copy, a value over SQLite's
 * limit) is rolled back to its savepoint alone; the others commit. A call
 * alone in its transaction needs no savepoint. Calls that queue while the
 * leader runs the SQL of its group join that group before its COMMIT (the
 * leader waits for no one); calls that queue during the COMMIT, and its
 * fsync, wait for the next group. So under load each commit carries many
 * calls. A caller returns only after the COMMIT holding its work returned,
 * so an acknowledged write is as durable as before (one transaction per
 * call).
 *
 * The lead passes from hand to hand: a call that finds no leader leads at
 * once; a leader that is done hands the lead to the first queued call (or
 * to the checkpoint thread, below), never leaving it free while calls
 * wait. Each waiting call sleeps on a semaphore of its own and is posted
 * exactly once, outside any lock: either "done" (its group committed or
 * failed) or "lead". So a leader wakes the calls of its group and the next
 * leader, no one else, and a woken call needs no lock to learn why.
 *
 * A call's outcome is decided only by a transaction that commits. If a
 * transaction cannot go on (SQLite rolled it back itself after an I/O error
 * or a full disk in one call's statement), that call fails with its error
 * and the others run again from scratch in a new transaction: the work
 * functions start from scratch each time (sq_txn's contract). If BEGIN or
 * COMMIT fail, every call of the group gets that error, after the same
 * retries on SQLITE_BUSY as a lone transaction gets.
 *
 * Other processes are unaffected: a group is one ordinary SQLite write
 * transaction, so SQLite's locks serialise it with theirs.
 */
#include "drivers/sqlite/sqlite_internal.h"

#include <errno.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* At most this many calls in one transaction, so that one commit's work
 * (and the wait of the calls in it) stays bounded. */
#define SQ_GROUP_MAX 128
/* Checkpoint each time the WAL has grown by this many pages (SQLite's
 * default for its automatic checkpoints). */
#define SQ_CKPT_PAGES 1000

static int sq_wal_hook(void *arg, sqlite3 *db, const char *name, int pages);

/* How a call failed. A failure inside a transaction that then does not
 * commit is only provisional: the call runs again in the next one. */
enum { SQ_FAILED_NOT = 0, SQ_FAILED_PROVISIONAL = 1, SQ_FAILED_FINAL = 2 };

enum sq_call_state {
	SQ_CALL_QUEUED,  /* waiting in the queue */
	SQ_CALL_LEAD,    /* handed the lead: its thread runs the next group */
	SQ_CALL_RUNNING, /* in the group a leader is running */
	SQ_CALL_DONE     /* its transaction committed or failed: `code` is final */
};

/* One queued write call; lives on its caller's stack. */
struct sq_call {
	int (*fn)(struct sq_conn *, void *);
	void *arg;
	_Atomic int state;  /* enum sq_call_state; QUEUED and RUNNING change under commit_mu */
	int failed;         /* its own work failed (SQ_FAILED_*): `code` and `message` */
	int deferred;       /* durable with the next durable write (sq_commit_ex) */
	int code;
	char message[512];  /* the failure's text, copied from the leader's thread */
	struct sq_call *next;
	sem_t posted; /* posted once: DONE, or LEAD */
};

/* Takes the queued calls that fit into a running group of *n calls, marks
 * them RUNNING and links them after `last`; returns the first, or NULL. A
 * transaction that commits without a sync (`deferred_only`) takes only the
 * deferred calls at the head of the queue: a durable call waits for the
 * next group rather than return unsynced. */
static struct sq_call *sq_group_join(struct aerogram_store *st, struct sq_call *last, size_t *n, int deferred_only)
{
	pthread_mutex_lock(&st->commit_mu);
	struct sq_call *first = *n < SQ_GROUP_MAX ? st->commit_queue : NULL, *end = NULL;
	if (first && deferred_only && !first->deferred)
		first = NULL;
	size_t taken = 0;
	for (struct sq_call *c = first; c && *n + taken < SQ_GROUP_MAX && (!deferred_only || c->deferred);
	     c = c->next) {
		c->state = SQ_CALL_RUNNING;
		end = c;
		taken++;
	}
	if (end) {
		st->commit_queue = end->next;
		if (st->commit_queue == NULL)
			st->commit_tail = NULL;
		end->next = NULL;
		last->next = first;
		*n += taken;
		st->n_write_calls += taken;
	}
	pthread_mutex_unlock(&st->commit_mu);
	return end ? first : NULL;
}

static int sq_rc_busy(int rc)
{
	return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
}

static void sq_call_fail(struct sq_call *c, int code, int how)
{
	c->failed = how;
	c->code = code;
	snprintf(c->message, sizeof(c->message), "%s", agk_error_text());
}

/* Runs one call inside the transaction. With `alone` (the only call left in
 * the group) it needs no savepoint: if it fails, the transaction holds
 * nothing else and is rolled back whole. Returns 0 when the transaction can
 * go on or, alone, was rolled back after an ordinary failure of the call
 * (then final: decided under the write lock, and nothing else is lost), or
 * -1 when the transaction is lost; *culprit then says whether this call's
 * own work caused it (it has failed for good) or SQLite was busy (retry the
 * group). */
static int sq_call_run(struct sq_conn *conn, struct sq_call *c, int alone, int *culprit)
{
	*culprit = 0;
	if (!alone && sq_run(conn, SQ_TX_SAVEPOINT) != 0)
		return -1;
	size_t n_changes = conn->n_changes;
	conn->last_rc = 0;
	int code = c->fn(conn, c->arg);
	if (code == 0)
		return alone || sq_run(conn, SQ_TX_RELEASE) == 0 ? 0 : -1;
	int busy = sq_rc_busy(conn->last_rc);
	if (sqlite3_get_autocommit(conn->db) || busy) {
		/* SQLite ended the transaction, or it cannot go on */
		*culprit = !busy;
		if (*culprit)
			sq_call_fail(c, code, SQ_FAILED_FINAL);
		return -1;
	}
	if (alone) {
		sq_call_fail(c, code, SQ_FAILED_FINAL);
		sq_rollback(conn);
		return 0;
	}
	sq_call_fail(c, code, SQ_FAILED_PROVISIONAL);
	if (sq_run(conn, SQ_TX_ROLLBACK_TO) != 0 || sq_run(conn, SQ_TX_RELEASE) != 0)
		return -1;
	conn->n_changes = n_changes; /* its rows were not written after all */
	return 0;
}

/* The store's write connection, opened on first use by a leader; 0 or an
 * AEROGRAM_E* code. */
static int sq_writer_conn(struct aerogram_store *st, struct sq_conn **out)
{
	if (st->writer == NULL) {
		struct sq_conn *conn;
		int code = sq_conn_open(st, &conn);
		if (code != 0)
			return code;
		/* Its page cache survives between its commits: let it hold the
		 * pages a write touches (16 MiB). The savepoints of a group keep
		 * the pages they may have to restore in memory, never in a
		 * temporary file. After a burst, a WAL larger than 64 MiB is cut
		 * back when it starts over. */
		sqlite3_exec(conn->db, "PRAGMA cache_size=-16384", NULL, NULL, NULL);
		sqlite3_exec(conn->db, "PRAGMA temp_store=MEMORY", NULL, NULL, NULL);
		sqlite3_exec(conn->db, "PRAGMA journal_size_limit=67108864", NULL, NULL, NULL);
		/* opened at synchronous=full: sq_group_level switches it per
		 * transaction */
		st->writer_full = st->sync_full;
		if (st->ckpt.started)
			sqlite3_wal_hook(conn->db, sq_wal_hook, st);
		st->writer = conn;
	}
	st->writer->last_rc = 0;
	*out = st->writer;
	return 0;
}

/* At synchronous=full, the level the group's transaction commits at:
 * SQLite's FULL (the WAL synced inside the COMMIT, before any reader sees
 * it) when some call of the group that may still commit is durable, else
 * NORMAL (no sync: the next FULL commit carries it, the WAL keeping commit
 * order). Sets the write connection to it between transactions; 0 or an
 * AEROGRAM_E* code. */
static int sq_group_level(struct aerogram_store *st, struct sq_conn *conn, struct sq_call *group, int *full)
{
	*full = 0;
	if (!st->sync_full)
		return 0;
	for (struct sq_call *c = group; c && !*full; c = c->next)
		*full = c->failed == SQ_FAILED_NOT && !c->deferred;
	if (*full == st->writer_full)
		return 0;
	const char *sql = *full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL";
	int rc = sqlite3_exec(conn->db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return sq_db_fail(conn, rc, sql);
	st->writer_full = *full;
	return 0;
}

/* Runs a group of *n calls in one transaction and commits it; calls queued
 * meanwhile join it (*n grows). Every call gets its final code. Called by the
 * leader with no lock held. */
static void sq_group_run(struct aerogram_store *st, struct sq_call *group, size_t *n)
{
	struct sq_conn *conn = NULL;
	int code = sq_writer_conn(st, &conn);
	uint64_t deadline = agk_now_ms() + (uint64_t)st->busy_timeout_ms;
	unsigned attempt = 0;
	while (code == 0) {
		int left = 0, lost = 0, culprit = 0;
		for (struct sq_call *c = group; c; c = c->next) {
			if (c->failed == SQ_FAILED_PROVISIONAL)
				c->failed = SQ_FAILED_NOT; /* decided by a transaction that is gone */
			left += c->failed == SQ_FAILED_NOT;
		}
		if (left == 0)
			break;
		conn->last_rc = 0;
		sq_changes_reset(conn);
		int full = 0;
		code = sq_group_level(st, conn, group, &full);
		if (code != 0)
			break;
		code = sq_run(conn, SQ_TX_BEGIN_WRITE);
		struct sq_call *c = group, *last = NULL;
		for (;;) {
			for (; code == 0 && c && !lost; c = c->next) {
				last = c;
				if (c->failed == SQ_FAILED_NOT && sq_call_run(conn, c, left == 1, &culprit) != 0)
					lost = 1;
			}
			if (code != 0 || lost || sqlite3_get_autocommit(conn->db))
				break;
			if ((c = sq_group_join(st, last, n, st->sync_full && !full)) == NULL)
				break;
			left = 2; /* the calls that joined run in savepoints */
		}
		if (code == 0 && !lost) {
			if (sqlite3_get_autocommit(conn->db))
				break; /* a lone call failed and was rolled back: nothing to commit */
			sq_watch_preload(st, conn);
			code = sq_run(conn, SQ_TX_COMMIT);
			if (code == 0) {
				sq_watch_committed(st, conn);
				st->n_wal_syncs += (uint64_t)full;
				break;
			}
		}
		if (!sqlite3_get_autocommit(conn->db))
			sq_rollback(conn);
		if (lost && culprit) {
			/* that call failed for good; the others run again from scratch */
			code = 0;
			continue;
		}
		if (code == 0)
			code = sq_map_rc(conn->last_rc ? conn->last_rc : SQLITE_ERROR);
		/* The busy handler already waited inside SQLite; some cases (a
		 * snapshot that went stale, WAL recovery by another process) return
		 * BUSY at once, so retry the whole group until the timeout. */
		if (!sq_rc_busy(conn->last_rc) || agk_now_ms() >= deadline)
			break;
		attempt++;
		usleep(attempt < 10 ? 1000u * attempt : 10000u);
		code = 0;
	}
	/* code != 0: the group as a whole failed, with the message of this
	 * thread, and so did every call its transaction had decided (a refused
	 * condition seen in a transaction that did not commit proves nothing);
	 * else the calls that did not fail committed */
	for (struct sq_call *c = group; c; c = c->next) {
		if (c->failed != SQ_FAILED_FINAL && code != 0)
			sq_call_fail(c, code, SQ_FAILED_FINAL);
		else if (c->failed == SQ_FAILED_NOT)
			c->code = 0;
	}
	if (conn && !sqlite3_get_autocommit(conn->db))
		sq_rollback(conn); /* never leave the writer inside a transaction */
	if (conn)
		sq_changes_reset(conn);
}

/* Takes up to SQ_GROUP_MAX - 1 queued calls behind the leader's own call,
 * which starts the group. commit_mu held. */
static struct sq_call *sq_group_take(struct aerogram_store *st, struct sq_call *self, size_t *n)
{
	struct sq_call *last = self;
	*n = 1;
	while (st->commit_queue && *n < SQ_GROUP_MAX) {
		struct sq_call *c = st->commit_queue;
		st->commit_queue = c->next;
		c->state = SQ_CALL_RUNNING;
		last->next = c;
		last = c;
		(*n)++;
	}
	if (st->commit_queue == NULL)
		st->commit_tail = NULL;
	last->next = NULL;
	return self;
}

/* Removes a call that gave up waiting from the queue. commit_mu held. */
static void sq_queue_remove(struct aerogram_store *st, struct sq_call *call)
{
	struct sq_call **p = &st->commit_queue, *prev = NULL;
	while (*p && *p != call) {
		prev = *p;
		p = &(*p)->next;
	}
	if (*p == NULL)
		return;
	*p = call->next;
	if (st->commit_tail == call)
		st->commit_tail = prev;
}

/* Passes the lead on, commit_mu held: to the checkpoint thread when the
 * WAL has grown enough, else to the first queued call (returned: the caller
 * posts it once the lock is released), else nobody (`committing` drops). */
static struct sq_call *sq_lead_pass(struct aerogram_store *st, int may_checkpoint)
{
	if (may_checkpoint && st->ckpt.started && st->writer && st->wal_pages >= st->ckpt_next) {
		/* if readers keep the WAL from starting over, wait for another
		 * SQ_CKPT_PAGES before trying again */
		st->ckpt_next = st->wal_pages + SQ_CKPT_PAGES;
		st->ckpt_request = 1;
		pthread_cond_signal(&st->ckpt_cond);
		return NULL;
	}
	struct sq_call *next = st->commit_queue;
	if (next == NULL) {
		st->committing = 0;
		return NULL;
	}
	st->commit_queue = next->next;
	if (st->commit_queue == NULL)
		st->commit_tail = NULL;
	next->next = NULL;
	next->state = SQ_CALL_LEAD;
	return next;
}

/* Marks every call of a finished group but the leader's DONE and posts it,
 * outside the lock: each waits for exactly that post, so none can vanish
 * before it. */
static void sq_group_done(struct sq_call *group, struct sq_call *self)
{
	for (struct sq_call *c = group, *next; c; c = next) {
		next = c->next; /* c may return and vanish once posted */
		if (c == self)
			continue;
		c->state = SQ_CALL_DONE;
		sem_post(&c->posted);
	}
	self->state = SQ_CALL_DONE;
}

/* The write connection's WAL hook, called after each commit with the
 * number of frames in the WAL: replaces SQLite's automatic checkpoint,
 * which would run inside the COMMIT of a group and hold all its callers. */
static int sq_wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	(void)db;
	(void)name;
	struct aerogram_store *st = arg;
	if (pages < st->wal_pages) /* the WAL started over */
		st->ckpt_next = SQ_CKPT_PAGES;
	st->wal_pages = pages;
	return SQLITE_OK;
}

static void *sq_ckpt_main(void *arg)
{
	struct aerogram_store *st = arg;
	pthread_mutex_lock(&st->commit_mu);
	for (;;) {
		while (!st->ckpt_request && !st->ckpt.stop)
			pthread_cond_wait(&st->ckpt_cond, &st->commit_mu);
		if (!st->ckpt_request)
			break;
		pthread_mutex_unlock(&st->commit_mu);
		/* The lead is ours: no group uses the write connection. PASSIVE
		 * waits for no reader and no other process; frames some reader
		 * still needs are copied next time. */
		int log = 0, done = 0;
		int rc = sqlite3_wal_checkpoint_v2(st->writer->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
		                                   &log, &done);
		if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY)
			sq_log(st, AEROGRAM_LOG_WARNING, "checkpoint of %s: %s", st->path,
			       sqlite3_errmsg(st->writer->db));
		pthread_mutex_lock(&st->commit_mu);
		st->n_checkpoints++;
		st->ckpt_request = 0;
		struct sq_call *next = sq_lead_pass(st, 0);
		if (next) {
			pthread_mutex_unlock(&st->commit_mu);
			sem_post(&next->posted);
			pthread_mutex_lock(&st->commit_mu);
		}
	}
	pthread_mutex_unlock(&st->commit_mu);
	return NULL;
}

void sq_ckpt_start(struct aerogram_store *st)
{
	st->ckpt_next = SQ_CKPT_PAGES;
	if (agk_thread_start(&st->ckpt, sq_ckpt_main, st, "ag-sq-ckpt") != 0)
		sq_log(st, AEROGRAM_LOG_WARNING,
		       "cannot start the checkpoint thread of %s: SQLite checkpoints in commits", st->path);
}

void sq_ckpt_stop(struct aerogram_store *st)
{
	agk_thread_stop(&st->ckpt, &st->commit_mu, &st->ckpt_cond);
}

int sq_commit(struct aerogram_store *st, int (*fn)(struct sq_conn *, void *), void *arg)
{
	return sq_commit_ex(st, fn, arg, 0);
}

int sq_commit_ex(struct aerogram_store *st, int (*fn)(struct sq_conn *, void *), void *arg, int deferred)
{
	struct sq_call call = { .fn = fn, .arg = arg, .state = SQ_CALL_QUEUED, .deferred = deferred };
	if (sem_init(&call.posted, 0, 0) != 0)
		return agk_fail(AEROGRAM_EUNAVAILABLE, "sqlite: sem_init: %s", strerror(errno));
	struct timespec until = agk_timespec_ms(agk_now_ms() + (uint64_t)st->busy_timeout_ms);
	/* A queued call acts only on the state its one post announced (LEAD
	 * or DONE): once posted, nobody touches it again, so it may vanish.
	 * (Its state may change as soon as the lock is released: a leader can
	 * take it into its group at once.) */
	int waiting = 1, timed_out = 0, timed = 1;
	pthread_mutex_lock(&st->commit_mu);
	if (!st->committing) {
		st->committing = 1; /* nobody leads, so nobody waits: lead at once */
		call.state = SQ_CALL_LEAD;
		waiting = 0;
	} else {
		if (st->commit_tail)
			st->commit_tail->next = &call;
		else
			st->commit_queue = &call;
		st->commit_tail = &call;
	}
	pthread_mutex_unlock(&st->commit_mu);
	while (waiting) {
		int rc = timed ? sem_clockwait(&call.posted, CLOCK_MONOTONIC, &until)
		               : sem_wait(&call.posted);
		if (rc == 0) {
			waiting = 0;
		} else if (errno != EINTR) {
			pthread_mutex_lock(&st->commit_mu);
			if (call.state == SQ_CALL_QUEUED) {
				sq_queue_remove(st, &call);
				timed_out = 1;
				waiting = 0;
			}
			pthread_mutex_unlock(&st->commit_mu);
			timed = 0; /* taken meanwhile: its post comes, whatever the time */
		}
	}
	if (!timed_out && call.state == SQ_CALL_LEAD) {
		pthread_mutex_lock(&st->commit_mu);
		size_t n;
		struct sq_call *group = sq_group_take(st, &call, &n);
		st->n_write_calls += n;
		st->n_commits++;
		pthread_mutex_unlock(&st->commit_mu);
		sq_group_run(st, group, &n);
		sq_group_done(group, &call);
		pthread_mutex_lock(&st->commit_mu);
		struct sq_call *next = sq_lead_pass(st, 1);
		pthread_mutex_unlock(&st->commit_mu);
		if (next)
			sem_post(&next->posted);
	}
	sem_destroy(&call.posted);
	if (timed_out)
		return agk_fail(AEROGRAM_EUNAVAILABLE,
		               "sqlite: %s: database is locked: other writers of this process held it for %d ms",
		               st->path, st->busy_timeout_ms);
	if (call.code != 0)
		return agk_fail(call.code, "%s", call.message);
	return 0;
}
