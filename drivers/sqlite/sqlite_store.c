/* sqlite_store.c - the SQLite driver's descriptor, configuration, connection
 * pool, transactions and error mapping.
 *
 * One database file in WAL mode holds rows and small blobs; larger blobs live
 * in files beside it (sqlite_blobs.c). Every thread that calls in takes a
 * connection from a small pool, so calls run in parallel (WAL lets readers
 * proceed while one writer commits) and statements are prepared once per
 * connection. Several processes may open the same file: SQLite's locks
 * serialise the writers and the shared clock row keeps tokens ordered.
 */
#include "drivers/sqlite/sqlite_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SQ_DEFAULT_BUSY_TIMEOUT_MS 5000
/* Bodies up to this size stay in the database (see README.md for the
 * measurements behind it). */
#define SQ_DEFAULT_BLOB_INLINE_MAX (64 * 1024)
#define SQ_DEFAULT_POLL_INTERVAL_MS 50
#define SQ_DEFAULT_ORPHAN_AGE_S 3600
/* As Garage: rows of tombstones only are readable for a day, then forgotten. */
#define SQ_DEFAULT_TOMBSTONE_TTL_S 86400

int sq_map_rc(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return AEROGRAM_OK;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
	case SQLITE_FULL: /* the disk is full: freeing space makes it work again */
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
	case SQLITE_PROTOCOL:
	case SQLITE_NOMEM:
		return AEROGRAM_EUNAVAILABLE;
	case SQLITE_TOOBIG:
		return AEROGRAM_ETOOBIG;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return AEROGRAM_EPERM;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
	default:
		return AEROGRAM_EINTERNAL;
	}
}

int sq_db_fail(struct sq_conn *conn, int rc, const char *what)
{
	if (conn) {
		conn->last_rc = rc;
		const char *msg = sqlite3_errmsg(conn->db), *str = sqlite3_errstr(rc);
		const char *file = sqlite3_db_filename(conn->db, "main");
		if (strcmp(msg, str) == 0)
			return agk_fail(sq_map_rc(rc), "sqlite: %s: %s (%s)", what, msg,
			               file ? file : "?");
		return agk_fail(sq_map_rc(rc), "sqlite: %s: %s: %s (%s)", what, str, msg,
		               file ? file : "?");
	}
	return agk_fail(sq_map_rc(rc), "sqlite: %s: %s", what, sqlite3_errstr(rc));
}

uint64_t sq_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- connections ---- */

static const char *const sq_fixed_sql[SQ_RANGE_FIRST] = {
	[SQ_TX_BEGIN] = SQ_SQL_TX_BEGIN,
	[SQ_TX_BEGIN_WRITE] = SQ_SQL_TX_BEGIN_WRITE,
	[SQ_TX_COMMIT] = SQ_SQL_TX_COMMIT,
	[SQ_TX_ROLLBACK] = SQ_SQL_TX_ROLLBACK,
	[SQ_TX_SAVEPOINT] = SQ_SQL_TX_SAVEPOINT,
	[SQ_TX_RELEASE] = SQ_SQL_TX_RELEASE,
	[SQ_TX_ROLLBACK_TO] = SQ_SQL_TX_ROLLBACK_TO,
	[SQ_CLOCK_GET] = SQ_SQL_CLOCK_GET,
	[SQ_ROW_FIND] = SQ_SQL_ROW_FIND,
	[SQ_ROW_NEW] = SQ_SQL_ROW_NEW,
	[SQ_ROW_UPDATE] = SQ_SQL_ROW_UPDATE,
	[SQ_ROW_CHANGED] = SQ_SQL_ROW_CHANGED,
	[SQ_ROW_DEAD] = SQ_SQL_ROW_DEAD,
	[SQ_ROW_DEL] = SQ_SQL_ROW_DEL,
	[SQ_BLOB_GET] = SQ_SQL_BLOB_GET,
	[SQ_BLOB_FILE] = SQ_SQL_BLOB_FILE,
	[SQ_BLOB_PUT] = SQ_SQL_BLOB_PUT,
	[SQ_BLOB_DEL] = SQ_SQL_BLOB_DEL,
	[SQ_BLOB_FILE_USED] = SQ_SQL_BLOB_FILE_USED,
	[SQ_BLOB_LIST] = SQ_SQL_BLOB_LIST,
	[SQ_BLOB_LIST_OPEN] = SQ_SQL_BLOB_LIST_OPEN,
};

sqlite3_stmt *sq_stmt(struct sq_conn *conn, enum sq_stmt_id id)
{
	sqlite3_stmt *s = conn->stmts[id];
	if (s) {
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
		return s;
	}
	char range_sql[512];
	const char *sql;
	if (id >= SQ_RANGE_FIRST) {
		sq_range_sql((int)(id - SQ_RANGE_FIRST), range_sql, sizeof(range_sql));
		sql = range_sql;
	} else {
		sql = sq_fixed_sql[id];
	}
	int rc = sqlite3_prepare_v3(conn->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
	if (rc != SQLITE_OK) {
		sq_db_fail(conn, rc, "prepare");
		return NULL;
	}
	conn->stmts[id] = s;
	return s;
}

int sq_run(struct sq_conn *conn, enum sq_stmt_id id)
{
	sqlite3_stmt *s = sq_stmt(conn, id);
	if (s == NULL)
		return sq_map_rc(conn->last_rc);
	int rc = sqlite3_step(s);
	int code = rc == SQLITE_DONE ? 0 : sq_db_fail(conn, rc, sq_fixed_sql[id]);
	sqlite3_reset(s);
	return code;
}

void sq_rollback(struct sq_conn *conn)
{
	sqlite3_stmt *s = conn->stmts[SQ_TX_ROLLBACK];
	if (s == NULL) {
		sqlite3_exec(conn->db, SQ_SQL_TX_ROLLBACK, NULL, NULL, NULL);
		return;
	}
	sqlite3_reset(s);
	sqlite3_step(s);
	sqlite3_reset(s);
}

int sq_row_head(struct sq_conn *conn, const char *pk, const char *sk, struct sq_row_head *head,
                const char *what)
{
	return sq_row_get(conn, pk, sk, head, NULL, NULL, what);
}

int sq_row_find(struct sq_conn *conn, const char *pk, const char *sk, const char *what,
                sqlite3_stmt **out)
{
	sqlite3_stmt *s = *out = sq_stmt(conn, SQ_ROW_FIND);
	if (s == NULL)
		return sq_map_rc(conn->last_rc);
	sqlite3_bind_text(s, 1, pk, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, sk, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		return 1;
	int code = rc == SQLITE_DONE ? 0 : sq_db_fail(conn, rc, what);
	sqlite3_reset(s);
	return code;
}

int sq_row_get(struct sq_conn *conn, const char *pk, const char *sk, struct sq_row_head *head,
               struct agk_arena *a, struct aerogram_row *row, const char *what)
{
	sqlite3_stmt *s;
	int found = sq_row_find(conn, pk, sk, what, &s);
	if (found <= 0)
		return found;
	head->ctx = (uint64_t)sqlite3_column_int64(s, 0);
	head->discard = (uint64_t)sqlite3_column_int64(s, 1);
	head->n_live = sqlite3_column_int64(s, 2);
	head->n_values = sqlite3_column_int64(s, 3);
	int code = 0;
	if (row)
		code = sq_row_decode(a, sqlite3_column_blob(s, 4), (size_t)sqlite3_column_bytes(s, 4),
		                     sk, head->ctx, row);
	sqlite3_reset(s);
	return code ? code : 1;
}

static void sq_conn_close(struct sq_conn *conn)
{
	free(conn->vals.p);
	free(conn->changes);
	agk_arena_free(&conn->change_arena);
	for (size_t i = 0; i < SQ_STMT_COUNT; i++)
		sqlite3_finalize(conn->stmts[i]);
	sqlite3_close(conn->db);
	free(conn);
}

static int sq_exec(struct sq_conn *conn, const char *sql)
{
	int rc = sqlite3_exec(conn->db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return sq_db_fail(conn, rc, sql);
	return 0;
}

/* Waits for a lock held by another connection: short sleeps, so that a
 * waiter notices a released lock within a few milliseconds, until the busy
 * timeout has passed since the wait began. */
static int sq_busy_handler(void *arg, int count)
{
	struct sq_conn *conn = arg;
	uint64_t now = agk_now_ms();
	if (count == 0)
		conn->busy_since = now;
	if (now - conn->busy_since >= (uint64_t)conn->busy_timeout_ms)
		return 0;
	usleep(count < 20 ? 500u : 2000u);
	return 1;
}

int sq_conn_open(struct aerogram_store *st, struct sq_conn **out)
{
	*out = NULL;
	struct sq_conn *conn = calloc(1, sizeof(*conn));
	if (conn == NULL)
		return agk_fail(AEROGRAM_EUNAVAILABLE, "sqlite: out of memory");
	int rc = sqlite3_open_v2(st->path, &conn->db,
	                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	                         NULL);
	if (rc != SQLITE_OK) {
		int code = agk_fail(sq_map_rc(rc), "sqlite: cannot open %s: %s", st->path,
		                   conn->db ? sqlite3_errmsg(conn->db) : sqlite3_errstr(rc));
		sqlite3_close(conn->db);
		free(conn);
		return code;
	}
	sqlite3_extended_result_codes(conn->db, 1);
	conn->busy_timeout_ms = st->busy_timeout_ms;
	sqlite3_busy_handler(conn->db, sq_busy_handler, conn);
	int code = sq_exec(conn, st->sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
	if (code == 0)
		code = sq_exec(conn, "PRAGMA foreign_keys=OFF");
	if (code != 0) {
		sq_conn_close(conn);
		return code;
	}
	*out = conn;
	return 0;
}

/* Takes a connection off the idle list (pool_mu held, or the store closing);
 * NULL when the list is empty. */
static struct sq_conn *sq_idle_pop(struct aerogram_store *st)
{
	struct sq_conn *conn = st->idle;
	if (conn)
		st->idle = conn->next;
	return conn;
}

int sq_conn_get(struct aerogram_store *st, struct sq_conn **out)
{
	pthread_mutex_lock(&st->pool_mu);
	struct sq_conn *conn = sq_idle_pop(st);
	pthread_mutex_unlock(&st->pool_mu);
	if (conn) {
		conn->next = NULL;
		conn->last_rc = 0;
		*out = conn;
		return 0;
	}
	return sq_conn_open(st, out);
}

void sq_conn_put(struct aerogram_store *st, struct sq_conn *conn)
{
	if (conn == NULL)
		return;
	if (!sqlite3_get_autocommit(conn->db)) {
		/* A transaction left open by a failure: never hand it on. */
		sq_rollback(conn);
	}
	pthread_mutex_lock(&st->pool_mu);
	conn->next = st->idle;
	st->idle = conn;
	pthread_mutex_unlock(&st->pool_mu);
}

static int sq_is_busy(int rc)
{
	return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
}

int sq_txn(struct aerogram_store *st, int write, int (*fn)(struct sq_conn *, void *), void *arg)
{
	if (write)
		return sq_commit_ex(st, fn, arg, write == SQ_WRITE_DEFERRED);
	struct sq_conn *conn;
	int code = sq_conn_get(st, &conn);
	if (code != 0)
		return code;
	uint64_t deadline = agk_now_ms() + (uint64_t)st->busy_timeout_ms;
	unsigned attempt = 0;
	for (;;) {
		conn->last_rc = 0;
		code = sq_run(conn, SQ_TX_BEGIN);
		if (code == 0) {
			code = fn(conn, arg);
			if (code == 0)
				code = sq_run(conn, SQ_TX_COMMIT);
		}
		if (code == 0)
			break;
		if (!sqlite3_get_autocommit(conn->db))
			sq_rollback(conn);
		/* A snapshot that went stale or WAL recovery by another process
		 * return BUSY at once: retry until the timeout. */
		if (!sq_is_busy(conn->last_rc) || agk_now_ms() >= deadline)
			break;
		attempt++;
		usleep(attempt < 10 ? 1000u * attempt : 10000u);
	}
	sq_conn_put(st, conn);
	return code;
}

/* ---- configuration, open and close ---- */

static const char *const sq_config_keys[] = {
	"path", "synchronous", "busy_timeout_ms", "blob_inline_max", "poll_interval_ms",
	"blob_orphan_age_s", "tombstone_ttl_s", NULL
};

static int parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return -1;
	*out = v;
	return 0;
}

static int sq_configure(struct aerogram_store *st, const struct aerogram_config_entry *config,
                        size_t n_config, char *errbuf, size_t errlen)
{
	st->sync_full = 1;
	st->busy_timeout_ms = SQ_DEFAULT_BUSY_TIMEOUT_MS;
	st->blob_inline_max = SQ_DEFAULT_BLOB_INLINE_MAX;
	st->poll_interval_ms = SQ_DEFAULT_POLL_INTERVAL_MS;
	st->orphan_age_s = SQ_DEFAULT_ORPHAN_AGE_S;
	st->tombstone_ttl_s = SQ_DEFAULT_TOMBSTONE_TTL_S;
	for (size_t i = 0; i < n_config; i++) {
		const char *k = config[i].key, *v = config[i].value ? config[i].value : "";
		unsigned long long n;
		if (strcmp(k, "path") == 0) {
			if (*v == '\0') {
				snprintf(errbuf, errlen, "path must not be empty");
				return AEROGRAM_EINVAL;
			}
			free(st->path);
			st->path = strdup(v);
			if (st->path == NULL)
				goto oom;
		} else if (strcmp(k, "synchronous") == 0) {
			if (strcmp(v, "full") == 0) {
				st->sync_full = 1;
			} else if (strcmp(v, "normal") == 0) {
				st->sync_full = 0;
			} else {
				snprintf(errbuf, errlen, "synchronous must be 'full' or 'normal', not '%s'", v);
				return AEROGRAM_EINVAL;
			}
		} else if (strcmp(k, "busy_timeout_ms") == 0) {
			if (parse_uint(v, 3600000, &n) != 0) {
				snprintf(errbuf, errlen, "busy_timeout_ms must be 0..3600000, not '%s'", v);
				return AEROGRAM_EINVAL;
			}
			st->busy_timeout_ms = (int)n;
		} else if (strcmp(k, "blob_inline_max") == 0) {
			if (parse_uint(v, 512u * 1024 * 1024, &n) != 0) {
				snprintf(errbuf, errlen, "blob_inline_max must be a byte count up to 512 MiB, not '%s'", v);
				return AEROGRAM_EINVAL;
			}
			st->blob_inline_max = (size_t)n;
		} else if (strcmp(k, "poll_interval_ms") == 0) {
			if (parse_uint(v, 60000, &n) != 0 || n == 0) {
				snprintf(errbuf, errlen, "poll_interval_ms must be 1..60000, not '%s'", v);
				return AEROGRAM_EINVAL;
			}
			st->poll_interval_ms = (int)n;
		} else if (strcmp(k, "blob_orphan_age_s") == 0) {
			if (parse_uint(v, 365u * 86400, &n) != 0 || n == 0) {
				snprintf(errbuf, errlen, "blob_orphan_age_s must be 1..31536000, not '%s'", v);
				return AEROGRAM_EINVAL;
			}
			st->orphan_age_s = (unsigned)n;
		} else if (strcmp(k, "tombstone_ttl_s") == 0) {
			if (parse_uint(v, 10u * 365 * 86400, &n) != 0 || n == 0) {
				snprintf(errbuf, errlen, "tombstone_ttl_s must be 1..315360000, not '%s'", v);
				return AEROGRAM_EINVAL;
			}
			st->tombstone_ttl_s = (unsigned)n;
		} /* the host refused other keys */
	}
	if (st->path == NULL) {
		snprintf(errbuf, errlen, "the key 'path' (the database file) is required");
		return AEROGRAM_EINVAL;
	}
	size_t n = strlen(st->path) + sizeof(".blobs");
	st->blob_dir = malloc(n);
	if (st->blob_dir == NULL)
		goto oom;
	snprintf(st->blob_dir, n, "%s.blobs", st->path);
	return 0;
oom:
	snprintf(errbuf, errlen, "out of memory");
	return AEROGRAM_EINTERNAL;
}

static void sq_store_free(struct aerogram_store *st)
{
	if (st->writer)
		sq_conn_close(st->writer);
	for (struct sq_conn *c; (c = sq_idle_pop(st)) != NULL;)
		sq_conn_close(c);
	pthread_mutex_destroy(&st->pool_mu);
	pthread_mutex_destroy(&st->commit_mu);
	pthread_cond_destroy(&st->ckpt_cond);
	pthread_mutex_destroy(&st->sweep_mu);
	pthread_cond_destroy(&st->sweep_cond);
	sq_watch_free_all(st);
	pthread_mutex_destroy(&st->watch_mu);
	pthread_cond_destroy(&st->watch_wake);
	pthread_cond_destroy(&st->watch_done);
	free(st->path);
	free(st->blob_dir);
	free(st);
}

/* One attempt of sq_prepare_file; *busy is set when it failed on a lock. */
static int sq_prepare_once(struct aerogram_store *st, struct sq_conn *conn, int *busy,
                           char *errbuf, size_t errlen)
{
	*busy = 0;
	char *mode = NULL;
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(conn->db, "PRAGMA journal_mode=WAL", -1, &s, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		const unsigned char *m = sqlite3_column_text(s, 0);
		mode = strdup(m ? (const char *)m : "");
		rc = SQLITE_OK;
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_OK) {
		*busy = sq_is_busy(rc);
		snprintf(errbuf, errlen, "cannot open %s as a database: %s", st->path,
		         sqlite3_errmsg(conn->db));
		free(mode);
		return sq_map_rc(rc);
	}
	if (mode == NULL || strcmp(mode, "wal") != 0) {
		snprintf(errbuf, errlen, "%s: cannot switch to WAL mode (journal mode is %s)", st->path,
		         mode ? mode : "unknown");
		free(mode);
		return AEROGRAM_EUNAVAILABLE;
	}
	free(mode);
	rc = SQLITE_OK;
	int code = sq_schema_migrate(conn->db, &rc, errbuf, errlen);
	*busy = code != 0 && sq_is_busy(rc);
	if (code == 0) {
		/* Watches start here: rows written before open do not matter,
		 * every new watch is compared with its row whole. */
		sqlite3_stmt *cs = sq_stmt(conn, SQ_CLOCK_GET);
		rc = cs ? sqlite3_step(cs) : conn->last_rc;
		if (rc == SQLITE_ROW)
			sq_watch_set_base(st, (uint64_t)sqlite3_column_int64(cs, 0));
		if (cs)
			sqlite3_reset(cs);
		if (rc != SQLITE_ROW) {
			*busy = sq_is_busy(rc);
			snprintf(errbuf, errlen, "%s: reading the clock: %s", st->path, sqlite3_errstr(rc));
			return sq_map_rc(rc);
		}
	}
	return code;
}

/* Switches the file to WAL and migrates the schema, on the first connection.
 *
 * Several processes may do this at once on a new file (two daemons started
 * together). Switching a file to WAL needs an exclusive lock, and when two
 * connections both hold a shared lock and want it, SQLite answers
 * SQLITE_BUSY at once to one of them instead of calling its busy handler
 * (waiting could deadlock). So a busy failure is retried from the start,
 * with the shared lock released in between, until busy_timeout_ms. */
static int sq_prepare_file(struct aerogram_store *st, char *errbuf, size_t errlen)
{
	struct sq_conn *conn;
	int code = sq_conn_get(st, &conn);
	if (code != 0) {
		snprintf(errbuf, errlen, "%s", agk_error_text());
		return code;
	}
	uint64_t deadline = agk_now_ms() + (uint64_t)st->busy_timeout_ms;
	unsigned seed = (unsigned)getpid() ^ (unsigned)agk_now_ms();
	for (unsigned attempt = 1;; attempt++) {
		int busy;
		code = sq_prepare_once(st, conn, &busy, errbuf, errlen);
		if (code == 0 || !busy || agk_now_ms() >= deadline)
			break;
		/* Random back-off: the two losers of a round must not meet again. */
		unsigned ms = attempt < 10 ? attempt : 10;
		usleep(500u + (unsigned)rand_r(&seed) % (1000u * ms));
	}
	sq_conn_put(st, conn);
	return code;
}

static int sq_open(const struct aerogram_host *host, const struct aerogram_config_entry *config,
                   size_t n_config, struct aerogram_store **out, char *errbuf, size_t errlen)
{
	*out = NULL;
	if (errlen)
		errbuf[0] = '\0';
	struct aerogram_store *st = agk_store_new(sizeof(*st), "sqlite", errbuf, errlen);
	if (st == NULL)
		return AEROGRAM_EINTERNAL;
	st->host = host;
	pthread_mutex_init(&st->pool_mu, NULL);
	pthread_mutex_init(&st->commit_mu, NULL);
	pthread_mutex_init(&st->sweep_mu, NULL);
	pthread_mutex_init(&st->watch_mu, NULL);
	agk_cond_init_monotonic(&st->watch_wake);
	agk_cond_init_monotonic(&st->watch_done);
	agk_cond_init_monotonic(&st->sweep_cond);
	agk_cond_init_monotonic(&st->ckpt_cond);

	int code = sq_configure(st, config, n_config, errbuf, errlen);
	if (code == 0 && sqlite3_threadsafe() == 0) {
		snprintf(errbuf, errlen, "the SQLite library was built without thread support");
		code = AEROGRAM_EINTERNAL;
	}
	if (code == 0) {
		/* Say which directory is missing rather than SQLite's "unable to
		 * open database file". */
		char *dir = strdup(st->path);
		char *slash = dir ? strrchr(dir, '/') : NULL;
		struct stat sb;
		if (slash && slash != dir) {
			*slash = '\0';
			if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
				snprintf(errbuf, errlen, "the directory of path, %s, does not exist", dir);
				code = AEROGRAM_EINVAL;
			}
		}
		free(dir);
	}
	if (code == 0 && mkdir(st->blob_dir, 0750) != 0 && errno != EEXIST) {
		snprintf(errbuf, errlen, "cannot create the blob directory %s: %s", st->blob_dir,
		         strerror(errno));
		code = errno == EACCES || errno == EROFS ? AEROGRAM_EPERM : AEROGRAM_EUNAVAILABLE;
	}
	if (code == 0) {
		/* The file holds every user's mail: create it private (SQLite
		 * would make it 0644), and SQLite gives its -wal and -shm files
		 * the same mode. An existing file keeps the mode its owner set. */
		int fd = open(st->path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
		if (fd >= 0)
			close(fd);
	}
	if (code == 0)
		code = sq_prepare_file(st, errbuf, errlen);
	if (code == 0)
		code = sq_watch_start(st, errbuf, errlen);
	if (code != 0) {
		sq_watch_stop(st);
		sq_store_free(st);
		return code;
	}
	sq_ckpt_start(st);
	sq_sweep_start(st);
	sq_log(st, AEROGRAM_LOG_INFO, "opened %s (synchronous=%s, blobs over %zu bytes in %s)",
	       st->path, st->sync_full ? "full" : "normal", st->blob_inline_max, st->blob_dir);
	*out = st;
	return 0;
}

static void sq_close(struct aerogram_store *st)
{
	if (st == NULL)
		return;
	sq_sweep_stop(st);
	sq_watch_stop(st);
	sq_ckpt_stop(st);
	sq_log(st, AEROGRAM_LOG_INFO, "closed %s: %llu write calls in %llu commits, %llu checkpoints, %llu WAL syncs",
	       st->path, (unsigned long long)st->n_write_calls, (unsigned long long)st->n_commits,
	       (unsigned long long)st->n_checkpoints, (unsigned long long)st->n_wal_syncs);
	sq_store_free(st);
}

static const struct aerogram_driver sq_driver = {
	AEROGRAM_DRIVER_HEADER,
	.name = "sqlite",
	.version = "1.1",
	.capabilities = AEROGRAM_CAP_CONDITIONAL | AEROGRAM_CAP_LOCAL_READS |
	                AEROGRAM_CAP_SNAPSHOT_READS, /* a row_read is one read transaction */
	.config_keys = sq_config_keys,
	.open = sq_open,
	AGK_DRIVER_CALLS(sq),
	AGK_KIT_METHODS,
	.row_insert_if = sq_row_insert_if,
};

AEROGRAM_DRIVER_EXPORT(sq_driver)
