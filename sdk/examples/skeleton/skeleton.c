/*
 * skeleton.c - the smallest complete Aerogram storage driver: it loads,
 * opens, and answers AEROGRAM_ENOTSUP to everything. Copy it to start a
 * driver, then make aerogram-driver-check pass one operation at a time.
 *
 * Build it outside the source tree, against an installed SDK:
 *
 *   cc -shared $(pkg-config --cflags aerogram-driver) $(pkg-config --variable=driver_cflags aerogram-driver) -o aerogram_skeleton.so skeleton.c
 */
#include <stdio.h>
#include <stdlib.h>

#include <aerogram/driver.h>

/* Your store: everything `open` sets up. The host only ever holds a pointer. */
struct aerogram_store {
	const struct aerogram_host *host;
};

/* The message of the calling thread's last failure (see "Errors" in driver.h). */
static _Thread_local const char *skel_error = "";

static int not_supported(const char *op)
{
	skel_error = op;
	return AEROGRAM_ENOTSUP;
}

static int skel_open(const struct aerogram_host *host, const struct aerogram_config_entry *config,
                     size_t n_config, struct aerogram_store **out, char *errbuf, size_t errlen)
{
	(void)config;
	(void)n_config; /* the host already refused keys not in skel_keys */
	struct aerogram_store *st = calloc(1, sizeof(*st));
	if (st == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		return AEROGRAM_EINTERNAL;
	}
	st->host = host;
	host->log(host->ctx, AEROGRAM_LOG_INFO, "skeleton store opened: every operation is unsupported");
	*out = st;
	return 0;
}

static void skel_close(struct aerogram_store *st)
{
	free(st);
}

static const char *skel_error_message(struct aerogram_store *st)
{
	(void)st;
	return skel_error;
}

static int skel_row_read(struct aerogram_store *st, const struct aerogram_row_query *queries,
                         size_t n_queries, struct aerogram_row_result **out)
{
	(void)st, (void)queries, (void)n_queries;
	*out = NULL;
	return not_supported("skeleton: row_read is not implemented");
}

static void skel_row_result_free(struct aerogram_store *st, struct aerogram_row_result *result)
{
	(void)st, (void)result;
}

static int skel_row_insert(struct aerogram_store *st, const struct aerogram_row_write *writes,
                           size_t n_writes)
{
	(void)st, (void)writes, (void)n_writes;
	return not_supported("skeleton: row_insert is not implemented");
}

static int skel_row_delete(struct aerogram_store *st, const struct aerogram_row_query *queries,
                           size_t n_queries, uint64_t *deleted)
{
	(void)st, (void)queries, (void)n_queries;
	if (deleted)
		*deleted = 0;
	return not_supported("skeleton: row_delete is not implemented");
}

static int skel_row_watch(struct aerogram_store *st, const char *pk, const char *sk,
                          const char *token, uint32_t timeout_ms, aerogram_watch_cb cb, void *arg,
                          struct aerogram_watch **out)
{
	(void)st, (void)pk, (void)sk, (void)token, (void)timeout_ms, (void)cb, (void)arg;
	*out = NULL;
	return not_supported("skeleton: row_watch is not implemented");
}

static void skel_row_watch_release(struct aerogram_store *st, struct aerogram_watch *watch)
{
	(void)st, (void)watch;
}

static int skel_blob_get(struct aerogram_store *st, const struct aerogram_blob_request *requests,
                         size_t n_requests, struct aerogram_blob_result **out)
{
	(void)st, (void)requests, (void)n_requests;
	*out = NULL;
	return not_supported("skeleton: blob_get is not implemented");
}

static void skel_blob_result_free(struct aerogram_store *st, struct aerogram_blob_result *result)
{
	(void)st, (void)result;
}

static int skel_blob_put(struct aerogram_store *st, const char *key, const uint8_t *data,
                         size_t len, const struct aerogram_meta *meta, size_t n_meta)
{
	(void)st, (void)key, (void)data, (void)len, (void)meta, (void)n_meta;
	return not_supported("skeleton: blob_put is not implemented");
}

static int skel_blob_copy(struct aerogram_store *st, const char *src_key, const char *dst_key)
{
	(void)st, (void)src_key, (void)dst_key;
	return not_supported("skeleton: blob_copy is not implemented");
}

static int skel_blob_list(struct aerogram_store *st, const char *prefix, const char *continuation,
                          uint32_t max_keys, struct aerogram_blob_list **out)
{
	(void)st, (void)prefix, (void)continuation, (void)max_keys;
	*out = NULL;
	return not_supported("skeleton: blob_list is not implemented");
}

static void skel_blob_list_free(struct aerogram_store *st, struct aerogram_blob_list *list)
{
	(void)st, (void)list;
}

static int skel_blob_delete(struct aerogram_store *st, const char *const *keys, size_t n_keys)
{
	(void)st, (void)keys, (void)n_keys;
	return not_supported("skeleton: blob_delete is not implemented");
}

/* The configuration keys this driver accepts (none yet). */
static const char *const skel_keys[] = { NULL };

static const struct aerogram_driver skel_driver = {
	AEROGRAM_DRIVER_HEADER,
	.name = "skeleton",
	.version = "0.1",
	.capabilities = 0,
	.config_keys = skel_keys,
	.open = skel_open,
	.close = skel_close,
	.error_message = skel_error_message,
	.row_read = skel_row_read,
	.row_result_free = skel_row_result_free,
	.row_insert = skel_row_insert,
	.row_delete = skel_row_delete,
	.row_watch = skel_row_watch,
	.row_watch_release = skel_row_watch_release,
	.blob_get = skel_blob_get,
	.blob_result_free = skel_blob_result_free,
	.blob_put = skel_blob_put,
	.blob_copy = skel_blob_copy,
	.blob_list = skel_blob_list,
	.blob_list_free = skel_blob_list_free,
	.blob_delete = skel_blob_delete,
	/* .row_insert_if is left NULL and AEROGRAM_CAP_CONDITIONAL
	 * unset, which is a complete driver: the host then coordinates writers
	 * with row_insert and reads. Offer it only when your store can compare a
	 * row's token and apply a batch in one atomic step, for every process
	 * that shares the store (a transaction holding the write lock, a
	 * compare-and-set primitive); then set the bit and the pointer together
	 * and the suite's "conditional" tests run instead of being skipped. */
};

AEROGRAM_DRIVER_EXPORT(skel_driver)
