/* sqlite_internal.h - what the files of the SQLite driver share: the open
 * store, its connection pool, statement cache, errors and result arenas. */
#ifndef AG_SQLITE_INTERNAL_H
#define AG_SQLITE_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include <aerogram/driver.h>

#include "drivers/sqlite/sqlite_sql.h"
#include "sdk/kit/ag_kit.h"

/* Statements a connection prepares once and keeps (index into conn->stmts). */
enum sq_stmt_id {
	SQ_TX_BEGIN,
	SQ_TX_BEGIN_WRITE,
	SQ_TX_COMMIT,
	SQ_TX_ROLLBACK,
	SQ_TX_SAVEPOINT,
	SQ_TX_RELEASE,
	SQ_TX_ROLLBACK_TO,
	SQ_CLOCK_GET,
	SQ_ROW_FIND,
	SQ_ROW_NEW,
	SQ_ROW_UPDATE,
	SQ_ROW_CHANGED,
	SQ_ROW_DEAD,
	SQ_ROW_DEL,
	SQ_BLOB_GET,
	SQ_BLOB_FILE,
	SQ_BLOB_PUT,
	SQ_BLOB_DEL,
	SQ_BLOB_FILE_USED,
	SQ_BLOB_LIST,
	SQ_BLOB_LIST_OPEN,
	SQ_RANGE_FIRST, /* SQ_RANGE_FIRST + sq_range_variant(): the range reads */
	SQ_STMT_COUNT = SQ_RANGE_FIRST + SQ_RANGE_VARIANTS
};

/* A growable byte buffer (malloc'd). */
struct sq_buf {
	uint8_t *p;
	size_t len, cap;
};

/* One value of a row as stored in ag_rows.vals. */
struct sq_val {
	uint64_t ver; /* its version */
	int tombstone;
	const uint8_t *data;
	size_t len;
};

/* A row written by the open write transaction: what its watchers are told
 * after the commit (sqlite_watch.c), without reading the database again. */
struct sq_change {
	const char *pk, *sk; /* in the connection's change arena */
	uint64_t ctx;        /* the row's new token */
	int loaded;          /* `row` holds its state at the end of the transaction */
	struct aerogram_row row;
};

/* One SQLite connection; used by one thread at a time (taken from the pool). */
struct sq_conn {
	sqlite3 *db;
	struct sq_buf vals; /* scratch: the values of the row being written */
	/* The write connection: the rows its open transaction wrote, in order,
	 * and the clock when the transaction began (sq_watch_*). */
	struct sq_change *changes;
	size_t n_changes, cap_changes;
	struct agk_arena change_arena;
	uint64_t txn_clock;
	int txn_clock_set;
	sqlite3_stmt *stmts[SQ_STMT_COUNT];
	int last_rc; /* the SQLite result code of the last failure, for retries */
	int busy_timeout_ms;
	uint64_t busy_since; /* when the current wait for a lock began */
	struct sq_conn *next;
};



struct aerogram_store {
	const struct aerogram_host *host;
	char *path;      /* the database file */
	char *blob_dir;  /* <path>.blobs */
	int sync_full;   /* synchronous=full: fsync blob files and directories too */
	int busy_timeout_ms;
	size_t blob_inline_max;
	int poll_interval_ms;
	unsigned orphan_age_s; /* blob files unnamed for this long are removed */

	/* Group commit (sqlite_commit.c): writers of this process queue their
	 * calls here rather than in SQLite's busy handler, which polls and can
	 * starve one thread for seconds; one of them at a time runs every
	 * queued call in one transaction. */
	pthread_mutex_t commit_mu;
	struct sq_call *commit_queue, *commit_tail;
	int committing;             /* the lead is taken: a group or a checkpoint runs, or is handed on */
	/* Checkpoints (sqlite_commit.c): when the WAL has grown by
	 * SQ_CKPT_PAGES, the leader that committed hands the lead to this
	 * thread, which checkpoints on the idle write connection, then hands
	 * the lead on. Its callers return at once; writers queue meanwhile. */
	struct agk_thread ckpt;
	int ckpt_request; /* under commit_mu */
	pthread_cond_t ckpt_cond;
	int wal_pages;     /* frames in the WAL after the last commit (the writer's hook) */
	int ckpt_next;     /* checkpoint once the WAL holds this many */
	uint64_t n_checkpoints;
	uint64_t n_write_calls, n_commits; /* for the log line at close */
	uint64_t n_wal_syncs;              /* commits that synced the WAL (synchronous=full) */
	int writer_full;                   /* the write connection is at PRAGMA synchronous=FULL now */
	/* The connection every group runs on (only the leader uses it). In
	 * WAL mode a connection drops its whole page cache when it finds that
	 * another connection committed; with one writer, its cache survives
	 * from one commit to the next (other processes aside), where
	 * connections taken from the pool in turn would each start cold. */
	struct sq_conn *writer;
	pthread_mutex_t pool_mu;
	struct sq_conn *idle; /* connections no thread is using */

	/* Watches: one thread serves them all (sqlite_watch.c). All under
	 * watch_mu. */
	pthread_mutex_t watch_mu;
	pthread_cond_t watch_wake; /* the thread waits on it */
	pthread_cond_t watch_done; /* a callback returned */
	struct agk_thread watch_thr;
	int watch_kick;  /* a watch to compare whole: look now */
	uint64_t watch_wake_at; /* when the sleeping thread wakes (UINT64_MAX: on a signal) */
	struct aerogram_watch *watches;
	size_t n_watches;
	struct aerogram_watch **watch_by_pk; /* SQ_WATCH_BUCKETS chains, by pk */
	struct aerogram_watch *fire_ready;   /* fired by a committing thread: call back */
	/* Every row with a ctx at or below it has been compared with the
	 * pending watches: the thread moves it to the clock it reads, a local
	 * commit moves it over its own versions when they follow on. */
	uint64_t watch_seen;
	struct sq_known *known; /* SQ_KNOWN_SLOTS: the last token seen of watched rows */

	/* Maintenance, at open and then hourly (sqlite_maint.c): orphan blob
	 * files, rows that hold only old tombstones. */
	unsigned tombstone_ttl_s;
	struct agk_thread sweep;
	pthread_mutex_t sweep_mu;
	pthread_cond_t sweep_cond;
};

/* ---- errors (sqlite_store.c) ---- */

/* Records "sqlite: <what>: <sqlite's message>" for a failed SQLite call,
 * remembers rc on the connection and returns the matching AEROGRAM_E* code. */
int sq_db_fail(struct sq_conn *conn, int rc, const char *what);
/* The AEROGRAM_E* code for an SQLite result code. */
int sq_map_rc(int rc);
/* Logs a line through the host. */
#define sq_log(st, level, ...) agk_log((st)->host, (level), __VA_ARGS__)

/* ---- connections and transactions (sqlite_store.c) ---- */

/* Opens a connection with the store's pragmas; 0 or an AEROGRAM_E* code. */
int sq_conn_open(struct aerogram_store *st, struct sq_conn **out);
/* Takes a connection from the pool or opens one; 0 or an AEROGRAM_E* code. */
int sq_conn_get(struct aerogram_store *st, struct sq_conn **out);
/* Returns a connection to the pool. */
void sq_conn_put(struct aerogram_store *st, struct sq_conn *conn);
/* The cached prepared statement `id`, reset and unbound; NULL after a
 * failure (recorded). */
sqlite3_stmt *sq_stmt(struct sq_conn *conn, enum sq_stmt_id id);
/* Runs a statement that returns no rows (transaction control: SQ_TX_*):
 * 0, or the AEROGRAM_E* code with the message set. */
int sq_run(struct sq_conn *conn, enum sq_stmt_id id);
/* Rolls back the open transaction, if any, leaving the thread's message as
 * it is (the failure that led here is the one to report). */
void sq_rollback(struct sq_conn *conn);
/* Appends one value to an encoded value list (ag_rows.vals: per value in
 * write order, its version and length as varints, a tombstone byte, the
 * bytes); 0, or -1 when out of memory. */
int sq_vals_encode_one(struct sq_buf *b, const struct sq_val *v);
/* The head of one row of ag_rows. */
struct sq_row_head {
	uint64_t ctx;      /* the row's counter: its causality token */
	uint64_t discard;  /* values written at or below it are superseded */
	int64_t n_live;    /* values that are not tombstones */
	int64_t n_values;
};
/* Reads the head of row (pk, sk): returns 1 and fills *head when the row
 * exists, 0 when it does not, or a negative AEROGRAM_E* code with the
 * message set (`what` names the step, e.g. "reading a row"). */
int sq_row_head(struct sq_conn *conn, const char *pk, const char *sk, struct sq_row_head *head,
                const char *what);
/* Steps the SQ_ROW_FIND statement on row (pk, sk): 1 with *out on the row
 * (columns ctx, discard, n_live, n_values, vals; reset it when done), 0 when
 * the row does not exist, or a negative AEROGRAM_E* code. */
int sq_row_find(struct sq_conn *conn, const char *pk, const char *sk, const char *what,
                sqlite3_stmt **out);
/* What sq_txn runs: a read, a write durable when it returns, or a write
 * made durable by the next durable one (see sq_commit_ex). */
enum { SQ_READ = 0, SQ_WRITE = 1, SQ_WRITE_DEFERRED = 2 };
/* Runs fn in a transaction on a pooled connection. A read runs alone inside
 * BEGIN ... COMMIT, retried while SQLite says BUSY and the busy timeout has
 * not passed. A write (`write` = SQ_WRITE or SQ_WRITE_DEFERRED) goes through
 * sq_commit_ex. fn returns 0 or
 * an AEROGRAM_E* code with the message set; it must start from scratch each
 * time it is called, and may be called on another thread than the caller's
 * (a write's fn runs on the thread leading its group). */
int sq_txn(struct aerogram_store *st, int write, int (*fn)(struct sq_conn *, void *), void *arg);

/* ---- group commit (sqlite_commit.c) ---- */

struct sq_call;
/* Queues a write call and waits until the transaction holding it committed
 * (its work is then durable as the store promises) or failed: fn runs
 * inside a savepoint of a transaction shared with the other calls queued at
 * the same time, and its failure rolls back its own work only. Returns fn's
 * result (0 or an AEROGRAM_E* code, message set for the calling thread), or
 * EUNAVAILABLE when the busy timeout passed before a transaction took it. */
int sq_commit(struct aerogram_store *st, int (*fn)(struct sq_conn *, void *), void *arg);
/* The same; with `deferred` (synchronous=full only) the call may return
 * from a transaction committed at SQLite's synchronous=NORMAL, without
 * waiting for the WAL to reach the disk: the next durable write's sync
 * carries it (the WAL keeps commit order, so
 * a power loss can only lose a suffix of such writes, never one that a
 * durable write after it depends on). Blob writes and deletes use it: a
 * blob is named by a row written after it, and a lost delete leaves only
 * garbage that is deleted again. */
int sq_commit_ex(struct aerogram_store *st, int (*fn)(struct sq_conn *, void *), void *arg, int deferred);
/* Starts / stops the checkpoint thread. */
void sq_ckpt_start(struct aerogram_store *st);
void sq_ckpt_stop(struct aerogram_store *st);
/* Milliseconds of CLOCK_REALTIME (the monotonic clock: agk_now_ms). */
uint64_t sq_wall_ms(void);

/* ---- keys (sqlite_rows.c) ---- */

/* 1 when s is valid UTF-8 without NUL (the length is strlen). */
int sq_utf8_valid(const char *s);
/* The smallest string greater than every string starting with `prefix`, in
 * *buf (malloc'd, the caller frees): returns 1, or 0 when there is none (the
 * prefix is empty or all 0xff bytes), or -1 when out of memory. */
int sq_prefix_successor(const char *prefix, char **buf);
/* Formats a causality token (17 bytes with NUL). */
void sq_token_format(uint64_t ctx, char out[32]);

/* Decodes a row's encoded values (ag_rows.vals) into `row` with its sort
 * key and token (from ctx), copied into the arena. 0 or an AEROGRAM_E* code. */
int sq_row_decode(struct agk_arena *a, const void *vals, size_t vals_len, const char *sk,
                  uint64_t ctx, struct aerogram_row *row);
/* Reads row (pk, sk) as sq_row_head does and, when it exists and `row` is
 * not NULL, decodes its values into `row` in the arena. */
int sq_row_get(struct sq_conn *conn, const char *pk, const char *sk, struct sq_row_head *head,
               struct agk_arena *a, struct aerogram_row *row, const char *what);

/* ---- the functions of the descriptor ---- */

AGK_DECLARE_ROW_CALLS(sq);

/* Starts / stops the watch thread; sq_watch_free_all frees what start
 * allocated, once the thread is stopped. */
int sq_watch_start(struct aerogram_store *st, char *errbuf, size_t errlen);
void sq_watch_stop(struct aerogram_store *st);
void sq_watch_free_all(struct aerogram_store *st);
/* Records a row written in the write connection's open transaction
 * (pk and sk are copied); 0, or -1 when out of memory. */
int sq_change_add(struct sq_conn *conn, const char *pk, const char *sk, uint64_t ctx);
/* Forgets the changes recorded by the open transaction (it is gone). */
void sq_changes_reset(struct sq_conn *conn);
/* Before COMMIT, on the write connection: reads the final state of every
 * written row that a single-row watch waits for, for sq_watch_committed. */
void sq_watch_preload(struct aerogram_store *st, struct sq_conn *conn);
/* After a COMMIT of the write connection (commits in order): moves
 * watch_seen over the transaction's versions when they follow on, and hands
 * the watches of the rows it wrote to the thread (fired with the preloaded
 * state, or to be compared again), waking it only when a watch matched;
 * then forgets the changes. */
void sq_watch_committed(struct aerogram_store *st, struct sq_conn *conn);
/* The clock when the file was opened: where watch_seen starts. */
void sq_watch_set_base(struct aerogram_store *st, uint64_t clock);
AGK_DECLARE_WATCH_CALLS(sq);

AGK_DECLARE_BLOB_CALLS(sq);
/* Removes blob files no row names (left by a crash between a file's
 * creation and its commit, or between a commit and the unlink of the file
 * it replaced) once older than orphan_age_s; returns how many. */
unsigned sq_blob_sweep_files(struct aerogram_store *st, struct sq_conn *conn);
/* Forgets rows whose values are all tombstones older than tombstone_ttl_s;
 * returns how many. */
uint64_t sq_rows_forget(struct aerogram_store *st);
/* Starts / stops the maintenance thread (sqlite_maint.c). */
void sq_sweep_start(struct aerogram_store *st);
void sq_sweep_stop(struct aerogram_store *st);

/* ---- schema (sqlite_schema.c) ---- */

/* Brings the database to the current schema version inside one write
 * transaction, or refuses a newer one. 0 or an AEROGRAM_E* code with a
 * message in errbuf; *sqlite_rc gets SQLite's code of a failure (so that a
 * busy file can be told from a broken one). */
int sq_schema_migrate(sqlite3 *db, int *sqlite_rc, char *errbuf, size_t errlen);

#endif
