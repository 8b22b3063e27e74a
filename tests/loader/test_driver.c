/* test_driver.c - tiny drivers for the loader tests, one per way a driver
 * can be wrong. The fragment builds this file once per variant:
 *   TD_GOOD      a correct driver (every function answers ENOTSUP)
 *   TD_MAJOR     ABI major + 1
 *   TD_MINOR     ABI minor + 1
 *   TD_SMALL     struct_size smaller than the descriptor of this major version
 *   TD_NOENTRY   no aerogram_driver_entry symbol
 *   TD_UNDEFINED needs a symbol nobody defines (dlopen RTLD_NOW fails)
 *   TD_OPENFAIL  open fails with a reason
 *   TD_MISSINGFN blob_copy is NULL
 *   TD_COND      AEROGRAM_CAP_CONDITIONAL and row_insert_if
 *   TD_CONDNOFN  advertises AEROGRAM_CAP_CONDITIONAL with row_insert_if NULL */
#include <string.h>
#include <stdio.h>

#include <aerogram/driver.h>

struct aerogram_store {
	int unused;
};

static int td_open(const struct aerogram_host *host, const struct aerogram_config_entry *config,
                   size_t n_config, struct aerogram_store **out, char *errbuf, size_t errlen)
{
	(void)host, (void)config, (void)n_config;
#ifdef TD_OPENFAIL
	*out = NULL;
	snprintf(errbuf, errlen, "the test store refuses to open");
	return AEROGRAM_EUNAVAILABLE;
#else
	static struct aerogram_store td_store;
	(void)errbuf, (void)errlen;
	*out = &td_store;
	return 0;
#endif
}

#ifdef TD_UNDEFINED
/* Defined nowhere: the library links (undefined symbols are allowed in a
 * shared object without -z defs) but dlopen with RTLD_NOW refuses it. */
extern void aerogram_test_symbol_defined_nowhere(void);
#endif

static void td_close(struct aerogram_store *st)
{
	(void)st;
#ifdef TD_UNDEFINED
	aerogram_test_symbol_defined_nowhere();
#endif
}

static const char *td_error_message(struct aerogram_store *st)
{
	(void)st;
	return "the test driver does nothing";
}

static int td_row_read(struct aerogram_store *st, const struct aerogram_row_query *q, size_t n,
                       struct aerogram_row_result **out)
{
	(void)st, (void)q, (void)n;
	*out = NULL;
	return AEROGRAM_ENOTSUP;
}

static void td_row_result_free(struct aerogram_store *st, struct aerogram_row_result *r)
{
	(void)st, (void)r;
}

static int td_row_insert(struct aerogram_store *st, const struct aerogram_row_write *w, size_t n)
{
	(void)st, (void)w, (void)n;
	return AEROGRAM_ENOTSUP;
}

static int td_row_delete(struct aerogram_store *st, const struct aerogram_row_query *q, size_t n,
                         uint64_t *deleted)
{
	(void)st, (void)q, (void)n, (void)deleted;
	return AEROGRAM_ENOTSUP;
}

static int td_row_watch(struct aerogram_store *st, const char *pk, const char *sk, const char *token,
                        uint32_t timeout_ms, aerogram_watch_cb cb, void *arg,
                        struct aerogram_watch **out)
{
	(void)st, (void)pk, (void)sk, (void)token, (void)timeout_ms, (void)cb, (void)arg;
	*out = NULL;
	return AEROGRAM_ENOTSUP;
}

static void td_row_watch_release(struct aerogram_store *st, struct aerogram_watch *w)
{
	(void)st, (void)w;
}

static int td_blob_get(struct aerogram_store *st, const struct aerogram_blob_request *r, size_t n,
                       struct aerogram_blob_result **out)
{
	(void)st, (void)r, (void)n;
	*out = NULL;
	return AEROGRAM_ENOTSUP;
}

static void td_blob_result_free(struct aerogram_store *st, struct aerogram_blob_result *r)
{
	(void)st, (void)r;
}

static int td_blob_put(struct aerogram_store *st, const char *key, const uint8_t *data, size_t len,
                       const struct aerogram_meta *meta, size_t n_meta)
{
	(void)st, (void)key, (void)data, (void)len, (void)meta, (void)n_meta;
	return AEROGRAM_ENOTSUP;
}

#ifndef TD_MISSINGFN
static int td_blob_copy(struct aerogram_store *st, const char *src, const char *dst)
{
	(void)st, (void)src, (void)dst;
	return AEROGRAM_ENOTSUP;
}
#endif

static int td_blob_list(struct aerogram_store *st, const char *prefix, const char *cont,
                        uint32_t max, struct aerogram_blob_list **out)
{
	(void)st, (void)prefix, (void)cont, (void)max;
	*out = NULL;
	return AEROGRAM_ENOTSUP;
}

static void td_blob_list_free(struct aerogram_store *st, struct aerogram_blob_list *l)
{
	(void)st, (void)l;
}

static int td_blob_delete(struct aerogram_store *st, const char *const *keys, size_t n)
{
	(void)st, (void)keys, (void)n;
	return AEROGRAM_ENOTSUP;
}

#if defined(TD_COND)
static int td_row_insert_if(struct aerogram_store *st, const char *cond_pk, const char *cond_sk,
                            const char *cond_token, const struct aerogram_row_write *writes,
                            size_t n_writes, char *new_token, size_t new_token_len)
{
	(void)st, (void)cond_pk, (void)cond_sk, (void)cond_token, (void)writes, (void)n_writes;
	(void)new_token, (void)new_token_len;
	return AEROGRAM_ENOTSUP;
}
#endif

static const char *const td_keys[] = { "color", NULL };

static const struct aerogram_driver td_driver = {
#if defined(TD_MAJOR)
	.abi_major = AEROGRAM_ABI_MAJOR + 1, .abi_minor = 0,
	.struct_size = (uint32_t)sizeof(struct aerogram_driver),
#elif defined(TD_MINOR)
	.abi_major = AEROGRAM_ABI_MAJOR, .abi_minor = AEROGRAM_ABI_MINOR + 1,
	.struct_size = (uint32_t)sizeof(struct aerogram_driver),
#elif defined(TD_SMALL)
	.abi_major = AEROGRAM_ABI_MAJOR, .abi_minor = AEROGRAM_ABI_MINOR,
	.struct_size = (uint32_t)offsetof(struct aerogram_driver, blob_get),
#else
	AEROGRAM_DRIVER_HEADER,
#endif
	.name = "testdrv",
	.version = "0.1",
#if defined(TD_COND) || defined(TD_CONDNOFN)
	.capabilities = AEROGRAM_CAP_CONDITIONAL,
#endif
	.config_keys = td_keys,
	.open = td_open,
	.close = td_close,
	.error_message = td_error_message,
	.row_read = td_row_read,
	.row_result_free = td_row_result_free,
	.row_insert = td_row_insert,
	.row_delete = td_row_delete,
	.row_watch = td_row_watch,
	.row_watch_release = td_row_watch_release,
	.blob_get = td_blob_get,
	.blob_result_free = td_blob_result_free,
	.blob_put = td_blob_put,
#ifndef TD_MISSINGFN
	.blob_copy = td_blob_copy,
#endif
	.blob_list = td_blob_list,
	.blob_list_free = td_blob_list_free,
	.blob_delete = td_blob_delete,
#if defined(TD_COND)
	.row_insert_if = td_row_insert_if,
#endif
};

#if defined(TD_NOENTRY)
/* Exported under another name: a library that is not a driver. */
AEROGRAM_EXPORT const struct aerogram_driver *not_the_entry(void);
const struct aerogram_driver *not_the_entry(void)
{
	return &td_driver;
}
#else
AEROGRAM_DRIVER_EXPORT(td_driver)
#endif
