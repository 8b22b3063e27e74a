/* agw_wrap.c - the fault-injecting and counting wrappers (see ag_wrap.h).
 *
 * Both kinds share one implementation: every call first runs the call hook,
 * counts itself, then consults the fault rules (a counting wrapper simply
 * has none), then forwards to the inner driver. The store handle given out
 * is the wrapper itself. */
#include "sdk/wrappers/agw_internal.h"

#include <endian.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum agw_kind { AGW_KIND_FAULT, AGW_KIND_COUNT };

struct agw_wrapper {
	enum agw_kind kind;
	struct aerogram_driver desc;
	const struct aerogram_driver *inner;
	struct aerogram_store *inner_store;

	pthread_mutex_t lock; /* guards the rules and the PRNG */
	unsigned fail_mask;
	int fail_status;
	double fail_probability;
	uint64_t rng;
	unsigned next_mask;
	int next_status;
	unsigned next_count;
	unsigned after_mask;
	double after_probability;
	unsigned delay_mask;
	uint32_t delay_ms;

	uint64_t calls[AGW_OP_COUNT]; /* atomics */
	uint64_t items[AGW_OP_COUNT];
	uint64_t rows_read, value_bytes_read;
	uint64_t *mirror;

	uint64_t offered_caps; /* what the inner driver offers */
	uint64_t hidden_caps;  /* atomic: hidden by agw_fault_hide_caps */
	agw_call_hook call_hook;
	void *call_hook_arg;

	void (*before_call)(struct agw_wrapper *, void *);
	void *before_ctx;
	void (*on_close)(struct agw_wrapper *, void *);
	void *close_ctx;
};

/* The wrapper whose injected fault was the calling thread's last answer. */
static _Thread_local const struct agw_wrapper *agw_injected_by;
static _Thread_local const char *agw_injected_text;

static const char *const op_names[AGW_OP_COUNT] = {
	"row_read", "row_insert", "row_delete", "row_watch", "blob_get", "blob_put", "blob_copy", "blob_list", "blob_delete", "row_insert_if",
};

const char *agw_op_name(enum agw_op op)
{
	return (unsigned)op < AGW_OP_COUNT ? op_names[op] : "?";
}

int agw_op_from_name(const char *name)
{
	for (int i = 0; i < AGW_OP_COUNT; i++)
		if (strcmp(op_names[i], name) == 0)
			return i;
	return -1;
}

struct agw_wrapper *agw_from_store(struct aerogram_store *store)
{
	return (struct agw_wrapper *)store;
}

/* ---- rules ------------------------------------------------------------- */

static double next_random(struct agw_wrapper *w)
{
	/* splitmix64 */
	uint64_t z = (w->rng += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	return (double)(z >> 11) / 9007199254740992.0;
}

void agw_fault_fail(struct agw_wrapper *w, unsigned op_mask, int status, double probability, uint64_t seed)
{
	pthread_mutex_lock(&w->lock);
	w->fail_mask = op_mask;
	w->fail_status = status;
	w->fail_probability = probability;
	w->rng = seed;
	pthread_mutex_unlock(&w->lock);
}

void agw_fault_fail_next(struct agw_wrapper *w, unsigned op_mask, int status, unsigned count)
{
	pthread_mutex_lock(&w->lock);
	w->next_mask = op_mask;
	w->next_status = status;
	w->next_count = count;
	pthread_mutex_unlock(&w->lock);
}

void agw_fault_fail_after_apply(struct agw_wrapper *w, unsigned op_mask, double probability)
{
	pthread_mutex_lock(&w->lock);
	w->after_mask = op_mask;
	w->after_probability = probability;
	pthread_mutex_unlock(&w->lock);
}

void agw_fault_delay(struct agw_wrapper *w, unsigned op_mask, uint32_t delay_ms)
{
	pthread_mutex_lock(&w->lock);
	w->delay_mask = delay_ms ? op_mask : 0;
	w->delay_ms = delay_ms;
	pthread_mutex_unlock(&w->lock);
}

void agw_fault_clear(struct agw_wrapper *w)
{
	pthread_mutex_lock(&w->lock);
	w->fail_mask = w->next_mask = w->after_mask = w->delay_mask = 0;
	w->next_count = 0;
	w->delay_ms = 0;
	pthread_mutex_unlock(&w->lock);
}

/* ---- capabilities and the call hook ------------------------------------ */

uint64_t agw_offered_caps(const struct aerogram_driver *inner)
{
	uint64_t caps = inner->capabilities;
	if (inner->row_insert_if == NULL)
		caps &= ~AEROGRAM_CAP_CONDITIONAL;
	return caps;
}

void agw_fault_hide_caps(struct agw_wrapper *w, uint64_t mask)
{
	__atomic_store_n(&w->hidden_caps, mask, __ATOMIC_RELEASE);
	__atomic_store_n(&w->desc.capabilities, w->offered_caps & ~mask, __ATOMIC_RELEASE);
}

/* Whether a call standing for capability `cap` may be forwarded. */
static int cap_usable(const struct agw_wrapper *w, uint64_t cap)
{
	return (w->offered_caps & cap) && !(__atomic_load_n(&w->hidden_caps, __ATOMIC_ACQUIRE) & cap);
}

void agw_set_call_hook(struct agw_wrapper *w, agw_call_hook hook, void *arg)
{
	w->call_hook_arg = arg;
	w->call_hook = hook;
}

/* ---- counts ------------------------------------------------------------ */

static void mirror_add(uint64_t *slot, uint64_t n)
{
	uint64_t old = __atomic_load_n(slot, __ATOMIC_RELAXED);
	for (;;) {
		uint64_t next = htole64(le64toh(old) + n);
		if (__atomic_compare_exchange_n(slot, &old, next, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			return;
	}
}

static void count(struct agw_wrapper *w, enum agw_op op, uint64_t items)
{
	__atomic_fetch_add(&w->calls[op], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&w->items[op], items, __ATOMIC_RELAXED);
	uint64_t *mirror = __atomic_load_n(&w->mirror, __ATOMIC_ACQUIRE);
	if (mirror) {
		mirror_add(&mirror[op], 1);
		mirror_add(&mirror[AGW_OP_COUNT + op], items);
	}
}

uint64_t agw_count_get(struct agw_wrapper *w, enum agw_op op)
{
	return (unsigned)op < AGW_OP_COUNT ? __atomic_load_n(&w->calls[op], __ATOMIC_RELAXED) : 0;
}

uint64_t agw_count_items(struct agw_wrapper *w, enum agw_op op)
{
	return (unsigned)op < AGW_OP_COUNT ? __atomic_load_n(&w->items[op], __ATOMIC_RELAXED) : 0;
}

uint64_t agw_count_rows_read(struct agw_wrapper *w)
{
	return __atomic_load_n(&w->rows_read, __ATOMIC_RELAXED);
}

uint64_t agw_count_value_bytes_read(struct agw_wrapper *w)
{
	return __atomic_load_n(&w->value_bytes_read, __ATOMIC_RELAXED);
}

/* Counts the rows and value bytes a row_read hands back. */
static void count_rows_read(struct agw_wrapper *w, const struct aerogram_row_result *res)
{
	uint64_t rows = 0, bytes = 0;
	for (size_t p = 0; p < res->n_pages; p++) {
		const struct aerogram_row_page *page = &res->pages[p];
		rows += page->n_rows;
		for (size_t r = 0; r < page->n_rows; r++)
			for (size_t v = 0; v < page->rows[r].n_values; v++)
				if (!page->rows[r].values[v].tombstone)
					bytes += page->rows[r].values[v].len;
	}
	__atomic_fetch_add(&w->rows_read, rows, __ATOMIC_RELAXED);
	__atomic_fetch_add(&w->value_bytes_read, bytes, __ATOMIC_RELAXED);
	uint64_t *mirror = __atomic_load_n(&w->mirror, __ATOMIC_ACQUIRE);
	if (mirror) {
		mirror_add(&mirror[AGW_SLOT_ROWS_READ], rows);
		mirror_add(&mirror[AGW_SLOT_VALUE_BYTES_READ], bytes);
	}
}

void agw_count_reset(struct agw_wrapper *w)
{
	uint64_t *mirror = __atomic_load_n(&w->mirror, __ATOMIC_ACQUIRE);
	for (int i = 0; i < AGW_OP_COUNT; i++) {
		__atomic_store_n(&w->calls[i], 0, __ATOMIC_RELAXED);
		__atomic_store_n(&w->items[i], 0, __ATOMIC_RELAXED);
		if (mirror) {
			__atomic_store_n(&mirror[i], 0, __ATOMIC_RELAXED);
			__atomic_store_n(&mirror[AGW_OP_COUNT + i], 0, __ATOMIC_RELAXED);
		}
	}
	__atomic_store_n(&w->rows_read, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&w->value_bytes_read, 0, __ATOMIC_RELAXED);
	if (mirror) {
		__atomic_store_n(&mirror[AGW_SLOT_ROWS_READ], 0, __ATOMIC_RELAXED);
		__atomic_store_n(&mirror[AGW_SLOT_VALUE_BYTES_READ], 0, __ATOMIC_RELAXED);
	}
}

void agw_count_set_mirror(struct agw_wrapper *w, uint64_t *mirror)
{
	__atomic_store_n(&w->mirror, mirror, __ATOMIC_RELEASE);
}

/* ---- the call path ----------------------------------------------------- */

static void sleep_ms(uint32_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0)
		;
}

static int inject(const struct agw_wrapper *w, int status, const char *text)
{
	agw_injected_by = w;
	agw_injected_text = text;
	return status;
}

/* Counts the call, applies delay and failure rules. Returns the status to
 * answer instead of forwarding (0: forward), and whether to report the
 * forwarded call as unavailable afterwards. */
static int before(struct agw_wrapper *w, enum agw_op op, uint64_t items, int *after_apply)
{
	unsigned bit = AGW_MASK(op);
	*after_apply = 0;
	if (w->call_hook)
		w->call_hook(w->call_hook_arg, op);
	agw_injected_by = NULL;
	count(w, op, items);
	if (w->before_call)
		w->before_call(w, w->before_ctx);
	pthread_mutex_lock(&w->lock);
	uint32_t delay = (w->delay_mask & bit) ? w->delay_ms : 0;
	int status = 0;
	if ((w->next_mask & bit) && w->next_count > 0) {
		w->next_count--;
		status = w->next_status;
	} else if ((w->fail_mask & bit) && next_random(w) < w->fail_probability) {
		status = w->fail_status;
	} else if ((w->after_mask & bit) && next_random(w) < w->after_probability) {
		*after_apply = 1;
	}
	pthread_mutex_unlock(&w->lock);
	if (delay)
		sleep_ms(delay);
	if (status != 0)
		return inject(w, status, "injected fault");
	return 0;
}

/* The start of every forwarding call, in a function whose store handle is
 * `store`: the wrapper behind it as `w`, the rules applied before the call
 * (their answer returned at once), `rc` and `aa` (report the forwarded call
 * as unavailable afterwards) for the rest of the function. */
#define FORWARD_BEGIN(op, items)                               \
	struct agw_wrapper *w = agw_from_store(store);         \
	int aa;                                                \
	int rc = before(w, (op), (items), &aa);                \
	if (rc != 0)                                           \
		return rc

/* After a forwarded call that handed out *out: when the rules turn it into
 * a failure, the result is released with the inner driver's `release`. */
#define DROP_IF_FAILED(release)                                 \
	do {                                                    \
		if (rc == 0 && aa) {                            \
			w->inner->release(w->inner_store, *out); \
			*out = NULL;                            \
		}                                               \
	} while (0)

static int after(struct agw_wrapper *w, int rc, int after_apply)
{
	if (rc == 0 && after_apply)
		return inject(w, AEROGRAM_EUNAVAILABLE,
		              "injected fault: the call was applied, then reported unavailable");
	return rc;
}

void agw_fn_close(struct aerogram_store *store)
{
	struct agw_wrapper *w = agw_from_store(store);
	if (w->on_close)
		w->on_close(w, w->close_ctx);
}

const char *agw_fn_error_message(struct aerogram_store *store)
{
	struct agw_wrapper *w = agw_from_store(store);
	if (agw_injected_by == w)
		return agw_injected_text;
	return w->inner->error_message(w->inner_store);
}

int agw_fn_row_read(struct aerogram_store *store, const struct aerogram_row_query *queries,
                    size_t n_queries, struct aerogram_row_result **out)
{
	*out = NULL;
	FORWARD_BEGIN(AGW_ROW_READ, n_queries);
	rc = w->inner->row_read(w->inner_store, queries, n_queries, out);
	DROP_IF_FAILED(row_result_free);
	if (rc == 0 && *out != NULL)
		count_rows_read(w, *out);
	return after(w, rc, aa);
}

void agw_fn_row_result_free(struct aerogram_store *store, struct aerogram_row_result *result)
{
	struct agw_wrapper *w = agw_from_store(store);
	w->inner->row_result_free(w->inner_store, result);
}

int agw_fn_row_insert(struct aerogram_store *store, const struct aerogram_row_write *writes,
                      size_t n_writes)
{
	FORWARD_BEGIN(AGW_ROW_INSERT, n_writes);
	return after(w, w->inner->row_insert(w->inner_store, writes, n_writes), aa);
}

int agw_fn_row_delete(struct aerogram_store *store, const struct aerogram_row_query *queries,
                      size_t n_queries, uint64_t *deleted)
{
	if (deleted)
		*deleted = 0;
	FORWARD_BEGIN(AGW_ROW_DELETE, n_queries);
	return after(w, w->inner->row_delete(w->inner_store, queries, n_queries, deleted), aa);
}

int agw_fn_row_watch(struct aerogram_store *store, const char *pk, const char *sk,
                     const char *token, uint32_t timeout_ms, aerogram_watch_cb cb, void *arg,
                     struct aerogram_watch **out)
{
	*out = NULL;
	FORWARD_BEGIN(AGW_ROW_WATCH, 1);
	rc = w->inner->row_watch(w->inner_store, pk, sk, token, timeout_ms, cb, arg, out);
	DROP_IF_FAILED(row_watch_release);
	return after(w, rc, aa);
}

void agw_fn_row_watch_release(struct aerogram_store *store, struct aerogram_watch *watch)
{
	struct agw_wrapper *w = agw_from_store(store);
	w->inner->row_watch_release(w->inner_store, watch);
}

int agw_fn_blob_get(struct aerogram_store *store, const struct aerogram_blob_request *requests,
                    size_t n_requests, struct aerogram_blob_result **out)
{
	*out = NULL;
	FORWARD_BEGIN(AGW_BLOB_GET, n_requests);
	rc = w->inner->blob_get(w->inner_store, requests, n_requests, out);
	DROP_IF_FAILED(blob_result_free);
	return after(w, rc, aa);
}

void agw_fn_blob_result_free(struct aerogram_store *store, struct aerogram_blob_result *result)
{
	struct agw_wrapper *w = agw_from_store(store);
	w->inner->blob_result_free(w->inner_store, result);
}

int agw_fn_blob_put(struct aerogram_store *store, const char *key, const uint8_t *data, size_t len,
                    const struct aerogram_meta *meta, size_t n_meta)
{
	FORWARD_BEGIN(AGW_BLOB_PUT, 1);
	return after(w, w->inner->blob_put(w->inner_store, key, data, len, meta, n_meta), aa);
}

int agw_fn_blob_copy(struct aerogram_store *store, const char *src_key, const char *dst_key)
{
	FORWARD_BEGIN(AGW_BLOB_COPY, 1);
	return after(w, w->inner->blob_copy(w->inner_store, src_key, dst_key), aa);
}

int agw_fn_blob_list(struct aerogram_store *store, const char *prefix, const char *continuation,
                     uint32_t max_keys, struct aerogram_blob_list **out)
{
	*out = NULL;
	FORWARD_BEGIN(AGW_BLOB_LIST, 0);
	rc = w->inner->blob_list(w->inner_store, prefix, continuation, max_keys, out);
	if (rc == 0 && *out != NULL) {
		/* the keys a listing carries are only known afterwards */
		__atomic_fetch_add(&w->items[AGW_BLOB_LIST], (uint64_t)(*out)->n_keys, __ATOMIC_RELAXED);
		uint64_t *mirror = __atomic_load_n(&w->mirror, __ATOMIC_ACQUIRE);
		if (mirror)
			mirror_add(&mirror[AGW_OP_COUNT + AGW_BLOB_LIST], (uint64_t)(*out)->n_keys);
	}
	DROP_IF_FAILED(blob_list_free);
	return after(w, rc, aa);
}

void agw_fn_blob_list_free(struct aerogram_store *store, struct aerogram_blob_list *list)
{
	struct agw_wrapper *w = agw_from_store(store);
	w->inner->blob_list_free(w->inner_store, list);
}

int agw_fn_blob_delete(struct aerogram_store *store, const char *const *keys, size_t n_keys)
{
	FORWARD_BEGIN(AGW_BLOB_DELETE, n_keys);
	return after(w, w->inner->blob_delete(w->inner_store, keys, n_keys), aa);
}

int agw_fn_row_insert_if(struct aerogram_store *store, const char *cond_pk, const char *cond_sk,
                         const char *cond_token, const struct aerogram_row_write *writes,
                         size_t n_writes, char *new_token, size_t new_token_len)
{
	FORWARD_BEGIN(AGW_ROW_INSERT_IF, n_writes);
	if (!cap_usable(w, AEROGRAM_CAP_CONDITIONAL))
		return inject(w, AEROGRAM_ENOTSUP, (w->offered_caps & AEROGRAM_CAP_CONDITIONAL)
		                                           ? "row_insert_if is hidden by the wrapper"
		                                           : "the wrapped driver does not support row_insert_if");
	return after(w, w->inner->row_insert_if(w->inner_store, cond_pk, cond_sk, cond_token, writes,
	                                        n_writes, new_token, new_token_len),
	             aa);
}

/* ---- construction ------------------------------------------------------ */

static int agw_fn_open(const struct aerogram_host *host, const struct aerogram_config_entry *config,
                       size_t n_config, struct aerogram_store **out, char *errbuf, size_t errlen)
{
	(void)host;
	(void)config;
	(void)n_config;
	*out = NULL;
	if (errbuf && errlen)
		snprintf(errbuf, errlen, "an in-process wrapper is made with agw_fault_new or agw_count_new");
	return AEROGRAM_ENOTSUP;
}

static const char *const no_keys[] = { NULL };

static struct agw_wrapper *wrapper_new(enum agw_kind kind, const struct aerogram_driver *inner,
                                       struct aerogram_store *inner_store)
{
	if (inner == NULL)
		return NULL;
	struct agw_wrapper *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return NULL;
	w->kind = kind;
	w->inner = inner;
	w->inner_store = inner_store;
	pthread_mutex_init(&w->lock, NULL);
	w->offered_caps = agw_offered_caps(inner);
	w->desc = (struct aerogram_driver){
		AEROGRAM_DRIVER_HEADER,
		.name = kind == AGW_KIND_FAULT ? "faulty" : "counting",
		.version = inner->version,
		.capabilities = w->offered_caps,
		.config_keys = no_keys,
		.open = agw_fn_open,
		AGW_FORWARD_METHODS,
	};
	return w;
}

struct agw_wrapper *agw_fault_new(const struct aerogram_driver *inner, struct aerogram_store *inner_store)
{
	return wrapper_new(AGW_KIND_FAULT, inner, inner_store);
}

struct agw_wrapper *agw_count_new(const struct aerogram_driver *inner, struct aerogram_store *inner_store)
{
	return wrapper_new(AGW_KIND_COUNT, inner, inner_store);
}

const struct aerogram_driver *agw_driver(struct agw_wrapper *w)
{
	return &w->desc;
}

struct aerogram_store *agw_store(struct agw_wrapper *w)
{
	return (struct aerogram_store *)w;
}

void agw_set_before_call(struct agw_wrapper *w, void (*fn)(struct agw_wrapper *, void *), void *ctx)
{
	w->before_ctx = ctx;
	w->before_call = fn;
}

void agw_set_on_close(struct agw_wrapper *w, void (*fn)(struct agw_wrapper *, void *), void *ctx)
{
	w->close_ctx = ctx;
	w->on_close = fn;
}

void agw_free(struct agw_wrapper *w)
{
	if (w == NULL)
		return;
	pthread_mutex_destroy(&w->lock);
	free(w);
}
