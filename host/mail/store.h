/* store.h - the engine's storage layer (store.c): the only way from the
 * engine to the driver.
 *
 * One thin function per driver call, as SQLite's os.c wraps its VFS: each
 * makes the call on the engine's store, tells the engine's store_call
 * option (the daemon's metrics) what it cost, and logs a failure with the
 * driver's message. `what` names the partition or key for that line; NULL
 * when the caller expects some failures as answers (it retries, or tells
 * them apart) and logs itself with mail_store_error. */
#ifndef AG_MAIL_STORE_H
#define AG_MAIL_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <aerogram/driver.h>

struct mail_engine;

int store_row_read(struct mail_engine *eng, const struct aerogram_row_query *q, size_t n,
                   struct aerogram_row_result **out, const char *what);
/* NULL-safe. */
void store_row_result_free(struct mail_engine *eng, struct aerogram_row_result *res);
int store_row_insert(struct mail_engine *eng, const struct aerogram_row_write *w, size_t n, const char *what);
/* row_insert again while the driver answers AEROGRAM_EUNAVAILABLE, at most
 * `tries` calls in all; a failure is logged once, after the last. */
int store_row_insert_tries(struct mail_engine *eng, const struct aerogram_row_write *w, size_t n, int tries,
                           const char *what);
int store_row_insert_if(struct mail_engine *eng, const char *pk, const char *sk, const char *token,
                        const struct aerogram_row_write *w, size_t n, char *new_token, size_t new_token_len,
                        const char *what);
int store_row_delete(struct mail_engine *eng, const struct aerogram_row_query *q, size_t n, const char *what);
int store_row_watch(struct mail_engine *eng, const char *pk, const char *sk, const char *token,
                    uint32_t timeout_ms, aerogram_watch_cb cb, void *arg, struct aerogram_watch **out,
                    const char *what);
void store_row_watch_release(struct mail_engine *eng, struct aerogram_watch *w);

int store_blob_get(struct mail_engine *eng, const struct aerogram_blob_request *r, size_t n,
                   struct aerogram_blob_result **out, const char *what);
/* NULL-safe. */
void store_blob_result_free(struct mail_engine *eng, struct aerogram_blob_result *res);
int store_blob_put(struct mail_engine *eng, const char *key, const uint8_t *data, size_t len);
/* AEROGRAM_ENOTFOUND (no source) is an answer, not logged. */
int store_blob_copy(struct mail_engine *eng, const char *src, const char *dst);
int store_blob_delete(struct mail_engine *eng, const char *const *keys, size_t n, const char *what);

/* The driver's message for the last failed call of this thread. */
const char *mail_store_error(struct mail_engine *eng);
/* Reads every page of one range query (pk and bounds copied per page);
 * calls fn for each row. Returns the status and counts the calls made. */
int mail_read_range(struct mail_engine *eng, const struct aerogram_row_query *q,
                    int (*fn)(void *arg, const struct aerogram_row *row), void *arg);
/* Lists every blob key under prefix (all pages); *keys owned by caller. */
int mail_list_blobs(struct mail_engine *eng, const char *prefix, char ***keys, size_t *n);

#endif
