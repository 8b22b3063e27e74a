/* agw_internal.h - what the loadable wrapper drivers need from the wrappers
 * beyond ag_wrap.h. Not installed. */
#ifndef AGW_INTERNAL_H
#define AGW_INTERNAL_H

#include "sdk/kit/ag_kit.h"
#include "sdk/wrappers/ag_wrap.h"

/* Called at the start of every wrapped call (the faulty driver re-reads its
 * control file there). */
void agw_set_before_call(struct agw_wrapper *w, void (*fn)(struct agw_wrapper *, void *), void *ctx);
/* Called by the descriptor's close (the loadable drivers close the inner
 * store and unload it there). */
void agw_set_on_close(struct agw_wrapper *w, void (*fn)(struct agw_wrapper *, void *), void *ctx);
/* Mirrors the counts into AGW_COUNT_SLOTS little-endian uint64 (calls, items,
 * rows read, value bytes read: the counts file layout of ag_wrap.h). */
void agw_count_set_mirror(struct agw_wrapper *w, uint64_t *mirror);
/* The capability bits a wrapper over `inner` advertises: the inner's bits,
 * less CONDITIONAL when row_insert_if is missing. */
uint64_t agw_offered_caps(const struct aerogram_driver *inner);
/* The wrapper behind a store handle made by agw_store. */
struct agw_wrapper *agw_from_store(struct aerogram_store *store);
/* The name of an operation ("row_read") and the reverse lookup (-1 if unknown). */
const char *agw_op_name(enum agw_op op);
int agw_op_from_name(const char *name);

/* The wrapper functions, for descriptors of the loadable drivers. */
void agw_fn_close(struct aerogram_store *store);
const char *agw_fn_error_message(struct aerogram_store *store);
int agw_fn_row_read(struct aerogram_store *store, const struct aerogram_row_query *queries,
                    size_t n_queries, struct aerogram_row_result **out);
void agw_fn_row_result_free(struct aerogram_store *store, struct aerogram_row_result *result);
int agw_fn_row_insert(struct aerogram_store *store, const struct aerogram_row_write *writes,
                      size_t n_writes);
int agw_fn_row_delete(struct aerogram_store *store, const struct aerogram_row_query *queries,
                      size_t n_queries, uint64_t *deleted);
int agw_fn_row_watch(struct aerogram_store *store, const char *pk, const char *sk,
                     const char *token, uint32_t timeout_ms, aerogram_watch_cb cb, void *arg,
                     struct aerogram_watch **out);
void agw_fn_row_watch_release(struct aerogram_store *store, struct aerogram_watch *watch);
int agw_fn_blob_get(struct aerogram_store *store, const struct aerogram_blob_request *requests,
                    size_t n_requests, struct aerogram_blob_result **out);
void agw_fn_blob_result_free(struct aerogram_store *store, struct aerogram_blob_result *result);
int agw_fn_blob_put(struct aerogram_store *store, const char *key, const uint8_t *data, size_t len,
                    const struct aerogram_meta *meta, size_t n_meta);
int agw_fn_blob_copy(struct aerogram_store *store, const char *src_key, const char *dst_key);
int agw_fn_blob_list(struct aerogram_store *store, const char *prefix, const char *continuation,
                     uint32_t max_keys, struct aerogram_blob_list **out);
void agw_fn_blob_list_free(struct aerogram_store *store, struct aerogram_blob_list *list);
int agw_fn_blob_delete(struct aerogram_store *store, const char *const *keys, size_t n_keys);
int agw_fn_row_insert_if(struct aerogram_store *store, const char *cond_pk, const char *cond_sk,
                         const char *cond_token, const struct aerogram_row_write *writes,
                         size_t n_writes, char *new_token, size_t new_token_len);

/* The forwarding methods of a wrapper descriptor, after AEROGRAM_DRIVER_HEADER
 * and the identity fields: every call goes through the wrapper behind the
 * store handle. One list for the in-process and the loadable wrappers, so a
 * method appended to the ABI is forwarded by all of them or by none. */
#define AGW_FORWARD_METHODS                            \
	AGK_DRIVER_CALLS(agw_fn),                      \
	.error_message = agw_fn_error_message,         \
	.row_result_free = agw_fn_row_result_free,     \
	.blob_result_free = agw_fn_blob_result_free,   \
	.blob_list_free = agw_fn_blob_list_free,       \
	.row_insert_if = agw_fn_row_insert_if

#endif
