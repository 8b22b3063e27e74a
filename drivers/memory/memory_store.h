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
int mem_row_read(struct aerogram_store *st, const struct aerogram_row_query *queries,
                 size_t n_queries, struct aerogram_row_result **out);
int mem_row_insert(struct aerogram_store *st, const struct aerogram_row_write *writes,
                   size_t n_writes);
int mem_row_delete(struct aerogram_store *st, const struct aerogram_row_query *queries,
                   size_t n_queries, uint64_t *deleted);
int mem_row_insert_if(struct aerogram_store *st, const char *cond_pk, const char *cond_sk,
                      const char *cond_token, const struct aerogram_row_write *writes,
                      size_t n_writes, char *new_token, size_t new_token_len);
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
int mem_row_watch(struct aerogram_store *st, const char *pk, const char *sk, const char *token,
                  uint32_t timeout_ms, aerogram_watch_cb cb, void *arg,
                  struct aerogram_watch **out);
void mem_row_watch_release(struct aerogram_store *st, struct aerogram_watch *w);

/* Blobs (memory_blobs.c). */
void mem_blobs_destroy(struct aerogram_store *st);
int mem_blob_get(struct aerogram_store *st, const struct aerogram_blob_request *requests,
                 size_t n_requests, struct aerogram_blob_result **out);
int mem_blob_put(struct aerogram_store *st, const char *key, const uint8_t *data, size_t len,
                 const struct aerogram_meta *meta, size_t n_meta);
int mem_blob_copy(struct aerogram_store *st, const char *src_key, const char *dst_key);
int mem_blob_list(struct aerogram_store *st, const char *prefix, const char *continuation,
                  uint32_t max_keys, struct aerogram_blob_list **out);
int mem_blob_delete(struct aerogram_store *st, const char *const *keys, size_t n_keys);

#endif
