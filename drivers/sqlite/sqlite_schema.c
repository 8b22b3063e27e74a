/* sqlite_schema.c - the versioned schema of the SQLite driver.
 *
 * PRAGMA user_version holds the schema version of a file. Opening runs, in
 * one write transaction, every migration from the file's version up to
 * SQ_SCHEMA_VERSION, so a crash in the middle leaves the old version intact.
 * A file from a newer driver is refused rather than guessed at: an older
 * driver cannot know what a newer schema means.
 *
 * To change the schema: append a step to sq_migrations (never edit an
 * existing one; files in the field have already run it).
 */
#include "drivers/sqlite/sqlite_internal.h"

#include <stdio.h>
#include <stdlib.h>

/* The columns of a row's key and head, in ag_rows of every version. */
#define SQ_ROW_HEAD_COLUMNS                  \
	"  pk TEXT NOT NULL,"                \
	"  sk TEXT NOT NULL,"                \
	"  ctx INTEGER NOT NULL,"            \
	"  discard INTEGER NOT NULL,"        \
	"  n_live INTEGER NOT NULL,"         \
	"  n_values INTEGER NOT NULL,"       \
	"  mtime INTEGER NOT NULL,"

/* Version 0 -> 1: the first schema. */
static const char sq_schema_v1[] =
	"CREATE TABLE ag_clock ("
	"  id INTEGER PRIMARY KEY CHECK (id = 1),"
	"  clock INTEGER NOT NULL);"
	"INSERT INTO ag_clock(id, clock) VALUES (1, 0);"
	"CREATE TABLE ag_rows ("
	"  id INTEGER PRIMARY KEY,"
	SQ_ROW_HEAD_COLUMNS
	"  UNIQUE (pk, sk));"
	"CREATE INDEX ag_rows_ctx ON ag_rows(ctx);"
	"CREATE INDEX ag_rows_dead ON ag_rows(mtime) WHERE n_live = 0;"
	"CREATE TABLE ag_values ("
	"  ver INTEGER PRIMARY KEY,"
	"  row_id INTEGER NOT NULL,"
	"  tombstone INTEGER NOT NULL,"
	"  data BLOB);"
	"CREATE INDEX ag_values_row ON ag_values(row_id, ver);"
	"CREATE TABLE ag_blobs ("
	"  key TEXT PRIMARY KEY NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  data BLOB,"
	"  file TEXT,"
	"  meta BLOB NOT NULL,"
	"  mtime INTEGER NOT NULL);"
	"CREATE INDEX ag_blobs_file ON ag_blobs(file) WHERE file IS NOT NULL;";

/* Version 1 -> 2: ag_rows becomes a WITHOUT ROWID table on (pk, sk) that
 * holds the values of each row (vals, encoded by sq_vals_encode_one), and
 * ag_values goes. A row is stored once, in key order next to its
 * neighbours (a mailbox's newest log entries and its watch row share a
 * page), where it was a table row, an entry of the (pk, sk) index, an
 * ag_values row and an entry of its index, each written to its own page at
 * every commit. A write is one lookup and one INSERT or UPDATE, a read one
 * lookup. The clock row is no longer written: the clock is the largest of
 * ag_clock.clock (the floor left by version 1) and the largest ctx
 * (SQ_SQL_CLOCK_GET). */
static const char sq_schema_v2_before[] =
	"CREATE TABLE ag_rows2 ("
	SQ_ROW_HEAD_COLUMNS
	"  vals BLOB NOT NULL,"
	"  PRIMARY KEY (pk, sk)) WITHOUT ROWID;"
	"INSERT INTO ag_rows2 SELECT pk, sk, ctx, discard, n_live, n_values, mtime, x'' FROM ag_rows;";
static const char sq_schema_v2_after[] =
	"DROP TABLE ag_values;"
	"DROP TABLE ag_rows;"
	"ALTER TABLE ag_rows2 RENAME TO ag_rows;"
	"CREATE INDEX ag_rows_ctx ON ag_rows(ctx);"
	"CREATE INDEX ag_rows_dead ON ag_rows(mtime) WHERE n_live = 0;";

/* Fills ag_rows2.vals from ag_values, one pass over ag_values in (row_id,
 * ver) order (its index). */
static int sq_schema_v2_fill(sqlite3 *db)
{
	sqlite3_stmt *sel = NULL, *upd = NULL;
	int rc = sqlite3_prepare_v2(db,
	                            "SELECT v.row_id, r.pk, r.sk, v.ver, v.tombstone, v.data "
	                            "FROM ag_values v JOIN ag_rows r ON r.id = v.row_id "
	                            "ORDER BY v.row_id, v.ver",
	                            -1, &sel, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "UPDATE ag_rows2 SET vals = ?3 WHERE pk = ?1 AND sk = ?2",
		                        -1, &upd, NULL);
	struct sq_buf buf = { 0 };
	int64_t row = 0;
	int have_row = 0;
	while (rc == SQLITE_OK) {
		int step = sqlite3_step(sel);
		if (step != SQLITE_ROW && step != SQLITE_DONE) {
			rc = step;
			break;
		}
		int64_t id = step == SQLITE_ROW ? sqlite3_column_int64(sel, 0) : 0;
		if (have_row && (step == SQLITE_DONE || id != row)) {
			sqlite3_bind_blob64(upd, 3, buf.len ? buf.p : (const void *)"", buf.len,
			                    SQLITE_STATIC);
			rc = sqlite3_step(upd) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
			sqlite3_reset(upd);
			buf.len = 0;
			have_row = 0;
		}
		if (step == SQLITE_DONE || rc != SQLITE_OK)
			break;
		if (!have_row) {
			/* the keys of the row, for the update after its last value */
			sqlite3_bind_text(upd, 1, (const char *)sqlite3_column_text(sel, 1), -1,
			                  SQLITE_TRANSIENT);
			sqlite3_bind_text(upd, 2, (const char *)sqlite3_column_text(sel, 2), -1,
			                  SQLITE_TRANSIENT);
		}
		row = id;
		have_row = 1;
		struct sq_val v = {
			.ver = (uint64_t)sqlite3_column_int64(sel, 3),
			.tombstone = sqlite3_column_int(sel, 4) != 0,
			.data = sqlite3_column_blob(sel, 5),
			.len = (size_t)sqlite3_column_bytes(sel, 5),
		};
		if (v.tombstone)
			v.len = 0;
		if (sq_vals_encode_one(&buf, &v) != 0)
			rc = SQLITE_NOMEM;
	}
	free(buf.p);
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	return rc;
}

struct sq_migration {
	int to_version;
	const char *sql;          /* run first */
	int (*fill)(sqlite3 *db); /* then this, if any: an SQLite result code */
	const char *sql_after;    /* then this, if any */
};

static const struct sq_migration sq_migrations[] = {
	{ 1, sq_schema_v1, NULL, NULL },
	{ 2, sq_schema_v2_before, sq_schema_v2_fill, sq_schema_v2_after },
};

#define SQ_SCHEMA_VERSION ((int)(sizeof(sq_migrations) / sizeof(sq_migrations[0])))

static int sq_user_version(sqlite3 *db, int *out)
{
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int(s, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(s);
	return rc;
}

int sq_schema_migrate(sqlite3 *db, int *sqlite_rc, char *errbuf, size_t errlen)
{
	int version = 0;
	const char *what = "BEGIN IMMEDIATE";
	int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc == SQLITE_OK) {
		what = "reading the schema version";
		rc = sq_user_version(db, &version);
	}
	if (rc == SQLITE_OK && version > SQ_SCHEMA_VERSION) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		snprintf(errbuf, errlen,
		         "%s has schema version %d, newer than the %d this driver knows; "
		         "use a newer aerogram_sqlite.so",
		         sqlite3_db_filename(db, "main"), version, SQ_SCHEMA_VERSION);
		return AEROGRAM_EINVAL;
	}
	for (int i = version; rc == SQLITE_OK && i < SQ_SCHEMA_VERSION; i++) {
		what = "migrating the schema";
		rc = sqlite3_exec(db, sq_migrations[i].sql, NULL, NULL, NULL);
		if (rc == SQLITE_OK && sq_migrations[i].fill)
			rc = sq_migrations[i].fill(db);
		if (rc == SQLITE_OK && sq_migrations[i].sql_after)
			rc = sqlite3_exec(db, sq_migrations[i].sql_after, NULL, NULL, NULL);
		if (rc == SQLITE_OK) {
			char pragma[64];
			snprintf(pragma, sizeof(pragma), "PRAGMA user_version=%d", sq_migrations[i].to_version);
			rc = sqlite3_exec(db, pragma, NULL, NULL, NULL);
		}
	}
	if (rc == SQLITE_OK) {
		what = "COMMIT";
		rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	}
	*sqlite_rc = rc;
	if (rc != SQLITE_OK) {
		snprintf(errbuf, errlen, "%s: %s: %s", sqlite3_db_filename(db, "main"), what,
		         sqlite3_errmsg(db));
		if (!sqlite3_get_autocommit(db))
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return sq_map_rc(rc);
	}
	return 0;
}
