/* sqlite_sql.h - the SQL the SQLite driver runs, in one place so that the
 * tests can ask SQLite for the plan of exactly these statements.
 *
 * Tables (schema version 2, see sqlite_schema.c):
 *   ag_clock   one row: a floor for the clock (the newest version handed out
 *              by a file of schema version 1; no longer written).
 *   ag_rows    one row per (pk, sk), its primary key (WITHOUT ROWID: a row
 *              is stored in key order, next to its neighbours, in the one
 *              b-tree that finds it): ctx (the causality token: the newest
 *              version written or discarded), discard (values up to this
 *              version are superseded), counts of live and all values, and
 *              the concurrent values themselves in `vals` (sq_vals_*).
 *   ag_blobs   blobs: inline bytes, or the name of a file beside the database.
 *
 * The clock (the newest version handed out, shared by every process on the
 * file) is the largest ctx of ag_rows, or the floor if that is larger: a
 * write takes it inside its transaction, and the maintenance never forgets
 * the row holding it, so it never goes back.
 */
#ifndef AG_SQLITE_SQL_H
#define AG_SQLITE_SQL_H

/* Transaction control, prepared once per connection like the rest: at
 * thousands of transactions a second, parsing them each time shows. */
#define SQ_SQL_TX_BEGIN "BEGIN"
#define SQ_SQL_TX_BEGIN_WRITE "BEGIN IMMEDIATE"
#define SQ_SQL_TX_COMMIT "COMMIT"
#define SQ_SQL_TX_ROLLBACK "ROLLBACK"
#define SQ_SQL_TX_SAVEPOINT "SAVEPOINT ag_call"
#define SQ_SQL_TX_RELEASE "RELEASE ag_call"
#define SQ_SQL_TX_ROLLBACK_TO "ROLLBACK TO ag_call"

#define SQ_SQL_CLOCK_GET \
	"SELECT max((SELECT clock FROM ag_clock WHERE id = 1), " \
	"coalesce((SELECT max(ctx) FROM ag_rows), 0))"
#define SQ_SQL_ROW_FIND \
	"SELECT ctx, discard, n_live, n_values, vals FROM ag_rows WHERE pk = ?1 AND sk = ?2"
#define SQ_SQL_ROW_NEW \
	"INSERT INTO ag_rows(pk, sk, ctx, discard, n_live, n_values, mtime, vals) " \
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
#define SQ_SQL_ROW_UPDATE \
	"UPDATE ag_rows SET ctx = ?3, discard = ?4, n_live = ?5, n_values = ?6, mtime = ?7, " \
	"vals = ?8 WHERE pk = ?1 AND sk = ?2"
/* Rows written since a clock value: what the watch thread looks at. */
#define SQ_SQL_ROW_CHANGED \
	"SELECT pk, sk, ctx, vals FROM ag_rows WHERE ctx > ?1 ORDER BY ctx"

/* Forgetting rows that hold only tombstones, once old (a partial index),
 * except the one holding the clock. */
#define SQ_SQL_ROW_DEAD \
	"SELECT pk, sk FROM ag_rows WHERE n_live = 0 AND mtime < ?1 " \
	"AND ctx < (SELECT max(ctx) FROM ag_rows) LIMIT 500"
#define SQ_SQL_ROW_DEL "DELETE FROM ag_rows WHERE pk = ?1 AND sk = ?2"

#define SQ_SQL_BLOB_GET "SELECT size, data, file, meta FROM ag_blobs WHERE key = ?1"
#define SQ_SQL_BLOB_FILE "SELECT file FROM ag_blobs WHERE key = ?1"
#define SQ_SQL_BLOB_PUT \
	"INSERT OR REPLACE INTO ag_blobs(key, size, data, file, meta, mtime) " \
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
/* Is a blob file named by a row? (the orphan sweep, on a partial index) */
#define SQ_SQL_BLOB_FILE_USED "SELECT 1 FROM ag_blobs WHERE file = ?1 AND file IS NOT NULL"
#define SQ_SQL_BLOB_DEL "DELETE FROM ag_blobs WHERE key = ?1"
#define SQ_SQL_BLOB_LIST \
	"SELECT key, size FROM ag_blobs WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT ?3"
#define SQ_SQL_BLOB_LIST_OPEN \
	"SELECT key, size FROM ag_blobs WHERE key >= ?1 ORDER BY key LIMIT ?3"

/*
 * Range reads. A query becomes a lower bound (>= or >), an optional upper
 * bound (< or <=) and a direction: 2 x 3 x 2 statements, built by
 * sq_range_sql(). Parameters: ?1 pk, ?2 lower, ?3 upper, ?4 include
 * tombstone-only rows, ?5 minimum number of values, ?6 limit (-1: none).
 */
#define SQ_RANGE_VARIANTS 12
enum sq_range_lower { SQ_LOWER_GE = 0, SQ_LOWER_GT = 1 };
enum sq_range_upper { SQ_UPPER_NONE = 0, SQ_UPPER_LT = 1, SQ_UPPER_LE = 2 };

static inline int sq_range_variant(int reverse, enum sq_range_lower lower, enum sq_range_upper upper)
{
	return (reverse ? 6 : 0) + (int)lower * 3 + (int)upper;
}

#include <stdio.h>

/* Writes the SQL of range variant v into buf. */
static inline void sq_range_sql(int v, char *buf, size_t len)
{
	int reverse = v >= 6;
	int lower = (v % 6) / 3;
	int upper = v % 3;
	snprintf(buf, len,
	         "SELECT sk, ctx, n_live, n_values, vals FROM ag_rows WHERE pk = ?1 AND sk %s ?2%s "
	         "AND (n_live > 0 OR ?4) AND n_values >= ?5 ORDER BY sk %s LIMIT ?6",
	         lower == SQ_LOWER_GT ? ">" : ">=",
	         upper == SQ_UPPER_LT ? " AND sk < ?3" : upper == SQ_UPPER_LE ? " AND sk <= ?3" : "",
	         reverse ? "DESC" : "ASC");
}

#endif
