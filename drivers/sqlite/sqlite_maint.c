/* sqlite_maint.c - the maintenance thread of an open store.
 *
 * At open, then every hour while the store stays open, it removes blob files
 * no row names (sq_blob_sweep_files) and forgets rows that have held only
 * tombstones for tombstone_ttl_s (sq_rows_forget), as Garage does after a
 * day. Both work in small steps and stop as soon as the store closes.
 */
#include "drivers/sqlite/sqlite_internal.h"

#include <time.h>

#define SQ_MAINT_INTERVAL_MS (3600u * 1000u)

static void sq_maint_once(struct aerogram_store *st)
{
	struct sq_conn *conn;
	if (sq_conn_get(st, &conn) != 0)
		return;
	unsigned files = sq_blob_sweep_files(st, conn);
	sq_conn_put(st, conn);
	if (files)
		sq_log(st, AEROGRAM_LOG_INFO, "removed %u orphan blob files from %s", files,
		       st->blob_dir);
	uint64_t rows = st->sweep.stop ? 0 : sq_rows_forget(st);
	if (rows)
		sq_log(st, AEROGRAM_LOG_INFO, "forgot %llu rows of old tombstones",
		       (unsigned long long)rows);
}

static void *sq_maint_main(void *arg)
{
	struct aerogram_store *st = arg;
	pthread_mutex_lock(&st->sweep_mu);
	while (!st->sweep.stop) {
		pthread_mutex_unlock(&st->sweep_mu);
		sq_maint_once(st);
		pthread_mutex_lock(&st->sweep_mu);
		uint64_t until = agk_now_ms() + SQ_MAINT_INTERVAL_MS;
		while (!st->sweep.stop && agk_now_ms() < until)
			agk_cond_wait_until(&st->sweep_cond, &st->sweep_mu, until);
	}
	pthread_mutex_unlock(&st->sweep_mu);
	return NULL;
}

void sq_sweep_start(struct aerogram_store *st)
{
	if (agk_thread_start(&st->sweep, sq_maint_main, st, "ag-sq-maint") != 0)
		sq_log(st, AEROGRAM_LOG_WARNING, "cannot start the maintenance thread of %s", st->path);
}

void sq_sweep_stop(struct aerogram_store *st)
{
	agk_thread_stop(&st->sweep, &st->sweep_mu, &st->sweep_cond);
}
