/* memory_store.h - the memory driver's store, shared by its rows, watches
 * and blobs files. Nothing here is visible outside the .so. */
#ifndef MEM_STORE_H
#define MEM_STORE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <aerogram/driver.h>

#include "drivers/memory/skiplist.h"
#include "sdk/kit/ag_kit.h"


/* One stored value of a row: `stamp` is the row counter value that wrote it. */
struct mem_value {
	uint64_t stamp;
	int tombstone;
	size_t len;
	uint8_t *data;
};

/* One row. Rows are never freed before the store closes (a tombstoned row
 * stays readable with AEROGRAM_QUERY_TOMBSTONES), so a watch may keep a
 * pointer to its row. A row with counter 0 is a placeholder created by a
 * watch on a row nobody has written yet: reads skip it. */
struct mem_row {
	char *sk;
	uint64_t counter;         /* the causality token: the highest stamp seen */
	size_t n_values, cap_values;
	struct mem_value *values;
	size_t pending; /* writes of the batch being prepared (rows_lock held) */
	struct aerogram_watch *watches; /* row watches, guarded by the watcher mutex */
};

/* One partition: rows by sort key. Never freed before close either. */
struct mem_partition {
	char *pk;
	uint64_t hash;
	struct mem_partition *hash_next; /* chain of its bucket */
	struct mem_skiplist rows;
};

/* The single thread that delivers every watch callback and timeout. */
struct mem_watcher {
	pthread_mutex_t mutex;
	pthread_cond_t wake; /* CLOCK_MONOTONIC: new work or an earlier deadline */
	pthread_cond_t done; /* a callback finished (for row_watch_release) */
	struct agk_thread thr;
	struct aerogram_watch *timers_head, *timers_tail;   /* armed, by deadline */
	struct aerogram_watch *pending_head, *pending_tail; /* ready to be called back */
};

struct aerogram_store {
	const struct aerogram_host *host;
	/* Rows: one lock for every partition; reads share it. */
	pthread_rwlock_t rows_lock;
	/* Partitions by key: a chained hash table (no order is ever needed
	 * across partitions); NULL until the first partition is made. */
	struct mem_partition **buckets;
	size_t n_buckets, n_partitions;
	/* Blobs. */
	pthread_rwlock_t blobs_lock;
	struct mem_skiplist blobs;
	struct mem_watcher watcher;
};

/* Rows (memory_rows.c). */
void mem_rows_destroy(struct aerogram_store *st);
AGK_DECLARE_ROW_CALLS(mem);
/* Helpers the watcher shares (call with rows_lock held). */
int mem_parse_stamp(const char *text, char tag, uint64_t *out);
void mem_format_stamp(char *buf, size_t len, char tag, uint64_t value);
struct mem_partition *mem_partition_get(struct aerogram_store *st, const char *pk, int create);
struct mem_row *mem_row_get(struct mem_partition *p, const char *sk, int create);
/* Copies the visible state of a row (deduplicated values, token) into `dst`. */
int mem_row_snapshot(struct agk_arena *a, const struct mem_row *row, struct aerogram_row *dst);

/* Watches (memory_watch.c). */
int mem_watcher_start(struct aerogram_store *st);
void mem_watcher_stop(struct aerogram_store *st);
/* Called by a writer, with rows_lock held for writing, after `row` changed. */
void mem_watch_row_changed(struct aerogram_store *st, struct mem_row *row);
AGK_DECLARE_WATCH_CALLS(mem);

/* Blobs (memory_blobs.c). */
void mem_blobs_destroy(struct aerogram_store *st);
AGK_DECLARE_BLOB_CALLS(mem);

#endif
