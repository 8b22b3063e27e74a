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
AGK_DECLARE_ROW_CALLS(agw_fn);
AGK_DECLARE_WATCH_CALLS(agw_fn);
AGK_DECLARE_BLOB_CALLS(agw_fn);
void agw_fn_row_result_free(struct aerogram_store *store, struct aerogram_row_result *result);
void agw_fn_blob_result_free(struct aerogram_store *store, struct aerogram_blob_result *result);
void agw_fn_blob_list_free(struct aerogram_store *store, struct aerogram_blob_list *list);

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
