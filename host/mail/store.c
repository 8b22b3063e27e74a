/* store.c - the engine's storage layer: every call into the driver (store.h).
 *
 * Each function makes one driver call, no more: the engine's batching is
 * its callers' (the costs in README: storage calls). Around the call it
 * times it for the store_call option when one is set, and logs a failure
 * with the driver's message, read on the calling thread as the ABI wants. */
#include "host/mail/mail_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const op_names[MAIL_STORE__COUNT] = {
	"row_read", "row_insert", "row_insert_if", "row_delete", "row_watch",
	"blob_get", "blob_put", "blob_copy", "blob_list", "blob_delete",
};

const char *mail_store_op_name(enum mail_store_op op)
{
	return (unsigned)op < MAIL_STORE__COUNT ? op_names[op] : "?";
}

const char *mail_store_error(struct mail_engine *eng)
{
	const char *m = eng->st.driver->error_message(eng->st.store);
	return m ? m : "(no message)";
}

static void call_begin(const struct mail_engine *eng, struct timespec *t0)
{
	if (eng->opt.store_call != NULL)
		clock_gettime(CLOCK_MONOTONIC, t0);
}

/* After the call: measured, and logged when it failed and the caller named
 * what it was about. Returns rc. */
static int call_end(struct mail_engine *eng, enum mail_store_op op, int rc, const struct timespec *t0,
                    const char *what)
{
	if (eng->opt.store_call != NULL) {
		struct timespec t1;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		int64_t us = (int64_t)(t1.tv_sec - t0->tv_sec) * 1000000 + (t1.tv_nsec - t0->tv_nsec) / 1000;
		eng->opt.store_call(eng->opt.store_call_arg, op, rc, us > 0 ? (uint64_t)us : 0);
	}
	if (rc != 0 && what != NULL)
		mail_log(eng, AEROGRAM_LOG_WARNING, "%s %s: %s", op_names[op], what, mail_store_error(eng));
	return rc;
}

/* One measured driver call: `call` names the driver's function, the
 * store goes first in its arguments. */
#define STORE_CALL(eng, op, what, call, ...)                                            \
	do {                                                                              \
		struct timespec t0_;                                                      \
		call_begin((eng), &t0_);                                                  \
		int rc_ = (eng)->st.driver->call((eng)->st.store, __VA_ARGS__);          \
		return call_end((eng), (op), rc_, &t0_, (what));                          \
	} while (0)

int store_row_read(struct mail_engine *eng, const struct aerogram_row_query *q, size_t n,
                   struct aerogram_row_result **out, const char *what)
{
	STORE_CALL(eng, MAIL_STORE_ROW_READ, what, row_read, q, n, out);
}

void store_row_result_free(struct mail_engine *eng, struct aerogram_row_result *res)
{
	if (res != NULL)
		eng->st.driver->row_result_free(eng->st.store, res);
}

int store_row_insert(struct mail_engine *eng, const struct aerogram_row_write *w, size_t n, const char *what)
{
	STORE_CALL(eng, MAIL_STORE_ROW_INSERT, what, row_insert, w, n);
}

int store_row_insert_tries(struct mail_engine *eng, const struct aerogram_row_write *w, size_t n, int tries,
                           const char *what)
{
	int rc = 0;
	for (int t = 0; t < tries; t++) {
		rc = store_row_insert(eng, w, n, NULL);
		if (rc != AEROGRAM_EUNAVAILABLE)
			break;
	}
	if (rc != 0 && what != NULL)
		mail_log(eng, AEROGRAM_LOG_WARNING, "row_insert %s: %s", what, mail_store_error(eng));
	return rc;
}

int store_row_insert_if(struct mail_engine *eng, const char *pk, const char *sk, const char *token,
                        const struct aerogram_row_write *w, size_t n, char *new_token, size_t new_token_len,
                        const char *what)
{
	STORE_CALL(eng, MAIL_STORE_ROW_INSERT_IF, what, row_insert_if, pk, sk, token, w, n, new_token,
	           new_token_len);
}

int store_row_delete(struct mail_engine *eng, const struct aerogram_row_query *q, size_t n, const char *what)
{
	STORE_CALL(eng, MAIL_STORE_ROW_DELETE, what, row_delete, q, n, NULL);
}

int store_row_watch(struct mail_engine *eng, const char *pk, const char *sk, const char *token,
                    uint32_t timeout_ms, aerogram_watch_cb cb, void *arg, struct aerogram_watch **out,
                    const char *what)
{
	STORE_CALL(eng, MAIL_STORE_ROW_WATCH, what, row_watch, pk, sk, token, timeout_ms, cb, arg, out);
}

void store_row_watch_release(struct mail_engine *eng, struct aerogram_watch *w)
{
	eng->st.driver->row_watch_release(eng->st.store, w);
}

int store_blob_get(struct mail_engine *eng, const struct aerogram_blob_request *r, size_t n,
                   struct aerogram_blob_result **out, const char *what)
{
	STORE_CALL(eng, MAIL_STORE_BLOB_GET, what, blob_get, r, n, out);
}

void store_blob_result_free(struct mail_engine *eng, struct aerogram_blob_result *res)
{
	if (res != NULL)
		eng->st.driver->blob_result_free(eng->st.store, res);
}

int store_blob_put(struct mail_engine *eng, const char *key, const uint8_t *data, size_t len)
{
	STORE_CALL(eng, MAIL_STORE_BLOB_PUT, key, blob_put, key, data, len, NULL, 0);
}

int store_blob_copy(struct mail_engine *eng, const char *src, const char *dst)
{
	struct timespec t0;
	call_begin(eng, &t0);
	int rc = eng->st.driver->blob_copy(eng->st.store, src, dst);
	return call_end(eng, MAIL_STORE_BLOB_COPY, rc, &t0, rc == AEROGRAM_ENOTFOUND ? NULL : src);
}

static int blob_list(struct mail_engine *eng, const char *prefix, const char *cont, struct aerogram_blob_list **out)
{
	STORE_CALL(eng, MAIL_STORE_BLOB_LIST, prefix, blob_list, prefix, cont, 0, out);
}

int store_blob_delete(struct mail_engine *eng, const char *const *keys, size_t n, const char *what)
{
	STORE_CALL(eng, MAIL_STORE_BLOB_DELETE, what, blob_delete, keys, n);
}

/* ---- paginated reads ---- */

int mail_read_range(struct mail_engine *eng, const struct aerogram_row_query *q,
                    int (*fn)(void *arg, const struct aerogram_row *row), void *arg)
{
	struct aerogram_row_query page = *q;
	char *next = NULL;
	int rc = 0;
	for (;;) {
		struct aerogram_row_result *res = NULL;
		page.start = next ? next : q->start;
		rc = store_row_read(eng, &page, 1, &res, q->pk);
		if (rc != 0)
			break;
		const struct aerogram_row_page *pg = res->n_pages ? &res->pages[0] : NULL;
		for (size_t i = 0; pg && i < pg->n_rows && rc == 0; i++)
			rc = fn(arg, &pg->rows[i]);
		char *nn = NULL;
		if (rc == 0 && pg && pg->more && pg->next_start) {
			nn = strdup(pg->next_start);
			if (nn == NULL)
				rc = AEROGRAM_EINTERNAL;
		}
		store_row_result_free(eng, res);
		free(next);
		next = nn;
		if (rc != 0 || next == NULL)
			break;
	}
	free(next);
	return rc;
}

int mail_list_blobs(struct mail_engine *eng, const char *prefix, char ***keys, size_t *n)
{
	char **out = NULL;
	size_t count = 0, cap = 0;
	char *cont = NULL;
	int rc = 0;
	*keys = NULL;
	*n = 0;
	for (;;) {
		struct aerogram_blob_list *l = NULL;
		rc = blob_list(eng, prefix, cont, &l);
		if (rc != 0)
			break;
		for (size_t i = 0; i < l->n_keys && rc == 0; i++) {
			if (mail_grow(&out, &cap, count + 1, sizeof(char *), 16) != 0) {
				rc = AEROGRAM_EINTERNAL;
				break;
			}
			out[count] = strdup(l->keys[i]);
			if (out[count] == NULL)
				rc = AEROGRAM_EINTERNAL;
			else
				count++;
		}
		char *nc = NULL;
		if (rc == 0 && l->more && l->next_token) {
			nc = strdup(l->next_token);
			if (nc == NULL)
				rc = AEROGRAM_EINTERNAL;
		}
		eng->st.driver->blob_list_free(eng->st.store, l);
		free(cont);
		cont = nc;
		if (rc != 0 || cont == NULL)
			break;
	}
	free(cont);
	if (rc != 0) {
		mail_free_strv(out, count);
		return rc;
	}
	*keys = out;
	*n = count;
	return 0;
}
