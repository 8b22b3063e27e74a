/* ag_kit.c - the driver kit (see ag_kit.h). */
#include "sdk/kit/ag_kit.h"

#include <errno.h>
#include <stdalign.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors ---- */

static _Thread_local char error_text[1024];

int agk_vfail(int code, const char *fmt, va_list ap)
{
	vsnprintf(error_text, sizeof(error_text), fmt, ap);
	return code;
}

int agk_fail(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	agk_vfail(code, fmt, ap);
	va_end(ap);
	return code;
}

const char *agk_error_text(void)
{
	return error_text;
}

const char *agk_error_message(struct aerogram_store *store)
{
	(void)store;
	return error_text;
}

/* ---- arenas ---- */

struct agk_chunk {
	struct agk_chunk *next;
	size_t used, size;
	alignas(max_align_t) unsigned char mem[];
};

/* A chunk holds this much; a block over a quarter of it gets a chunk of its
 * own, put behind the current one so that the current one's room stays in
 * use. */
#define CHUNK_SIZE 16384

static void *arena_raw(struct agk_arena *a, size_t size)
{
	const size_t align = alignof(max_align_t);
	if (size > SIZE_MAX - align)
		return NULL;
	size = size == 0 ? align : (size + align - 1) / align * align;
	struct agk_chunk *c = a->head;
	if (c == NULL || c->size - c->used < size) {
		size_t cap = size > CHUNK_SIZE / 4 ? size : CHUNK_SIZE;
		struct agk_chunk *n = malloc(sizeof(*n) + cap);
		if (n == NULL)
			return NULL;
		n->used = 0;
		n->size = cap;
		if (cap == size && c != NULL) {
			n->next = c->next;
			c->next = n;
		} else {
			n->next = c;
			a->head = n;
		}
		c = n;
	}
	void *p = c->mem + c->used;
	c->used += size;
	return p;
}

void *agk_arena_alloc(struct agk_arena *a, size_t size)
{
	void *p = arena_raw(a, size);
	if (p != NULL)
		memset(p, 0, size);
	return p;
}

void *agk_arena_memdup(struct agk_arena *a, const void *p, size_t len)
{
	void *d = arena_raw(a, len);
	if (d != NULL && len > 0)
		memcpy(d, p, len);
	return d;
}

char *agk_arena_strndup(struct agk_arena *a, const char *s, size_t len)
{
	if (len == SIZE_MAX)
		return NULL;
	char *d = arena_raw(a, len + 1);
	if (d == NULL)
		return NULL;
	if (len > 0)
		memcpy(d, s, len);
	d[len] = '\0';
	return d;
}

char *agk_arena_strdup(struct agk_arena *a, const char *s)
{
	return s != NULL ? agk_arena_strndup(a, s, strlen(s)) : NULL;
}

void agk_arena_free(struct agk_arena *a)
{
	while (a->head != NULL) {
		struct agk_chunk *next = a->head->next;
		free(a->head);
		a->head = next;
	}
}

void *agk_arena_restart(struct agk_arena *a, size_t n, size_t size)
{
	agk_arena_free(a);
	return agk_arena_alloc(a, (n ? n : 1) * size);
}

/* ---- growable arrays ---- */

int agk_grow(void *items, size_t *cap, size_t n, size_t size, size_t first)
{
	if (n < *cap)
		return 0;
	void *old;
	memcpy(&old, items, sizeof(old));
	size_t ncap = *cap ? *cap : first;
	while (ncap <= n)
		ncap *= 2;
	void *grown = realloc(old, ncap * size);
	if (grown == NULL)
		return -1;
	memcpy(items, &grown, sizeof(grown));
	*cap = ncap;
	return 0;
}

/* ---- results ---- */

struct agk_row_result *agk_row_result_new(void)
{
	return calloc(1, sizeof(struct agk_row_result));
}

struct agk_blob_result *agk_blob_result_new(void)
{
	return calloc(1, sizeof(struct agk_blob_result));
}

struct agk_blob_list *agk_blob_list_new(void)
{
	return calloc(1, sizeof(struct agk_blob_list));
}

/* The free and done functions of one kind of holder: the public part is
 * its first member, so the host's pointer is the holder's. */
#define AGK_HOLDER_FUNCTIONS(kind, pub_type)                                       \
	void agk_##kind##_free(struct aerogram_store *store, pub_type *pub)        \
	{                                                                          \
		(void)store;                                                       \
		if (pub == NULL)                                                   \
			return;                                                    \
		struct agk_##kind *h = (struct agk_##kind *)pub;                   \
		agk_arena_free(&h->arena);                                         \
		free(h);                                                           \
	}                                                                          \
	int agk_##kind##_done(int code, struct agk_##kind *h, pub_type **out)      \
	{                                                                          \
		if (code == 0)                                                     \
			*out = &h->pub;                                            \
		else                                                               \
			agk_##kind##_free(NULL, &h->pub);                          \
		return code;                                                       \
	}

AGK_HOLDER_FUNCTIONS(row_result, struct aerogram_row_result)
AGK_HOLDER_FUNCTIONS(blob_result, struct aerogram_blob_result)
AGK_HOLDER_FUNCTIONS(blob_list, struct aerogram_blob_list)

/* ---- keys and queries ---- */

int agk_check_key(const char *who, const char *what, const char *key)
{
	if (key == NULL || key[0] == '\0')
		return agk_fail(AEROGRAM_EINVAL, "%s: %s is %s", who, what, key ? "empty" : "missing");
	size_t len = strlen(key);
	if (len > AEROGRAM_ROW_KEY_MAX)
		return agk_fail(AEROGRAM_ETOOBIG, "%s: %s of %zu bytes is over the limit of %d", who,
		                what, len, AEROGRAM_ROW_KEY_MAX);
	return 0;
}

static int nonempty(const char *s)
{
	return s != NULL && s[0] != '\0';
}

static int check_query(const char *who, const struct aerogram_row_query *q, int for_read)
{
	int rc = agk_check_key(who, "the partition key of a query", q->pk);
	if (rc != 0)
		return rc;
	const uint32_t known = AEROGRAM_QUERY_REVERSE | AEROGRAM_QUERY_TOMBSTONES |
	                       AEROGRAM_QUERY_CONFLICTS_ONLY;
	if (for_read && (q->flags & ~known))
		return agk_fail(AEROGRAM_EINVAL, "%s: unknown query flags 0x%x", who,
		                (unsigned)(q->flags & ~known));
	if (q->sk != NULL) {
		if ((rc = agk_check_key(who, "the sort key of a query", q->sk)) != 0)
			return rc;
		if (nonempty(q->prefix) || nonempty(q->start) || nonempty(q->end))
			return agk_fail(AEROGRAM_EINVAL,
			                "%s: a single-item query on %s/%s takes no prefix, start or end",
			                who, q->pk, q->sk);
		if (for_read && (q->limit != 0 || (q->flags & AEROGRAM_QUERY_REVERSE)))
			return agk_fail(AEROGRAM_EINVAL,
			                "%s: a single-item query on %s/%s takes no limit and no REVERSE",
			                who, q->pk, q->sk);
		return 0;
	}
	if (nonempty(q->prefix) && nonempty(q->start) &&
	    strncmp(q->start, q->prefix, strlen(q->prefix)) != 0)
		return agk_fail(AEROGRAM_EINVAL, "%s: start '%s' does not begin with prefix '%s'", who,
		                q->start, q->prefix);
	return 0;
}

int agk_check_queries(const char *who, const struct aerogram_row_query *queries, size_t n,
                      int for_read)
{
	if (n > 0 && queries == NULL)
		return agk_fail(AEROGRAM_EINVAL, "%s: no queries given", who);
	for (size_t i = 0; i < n; i++) {
		int rc = check_query(who, &queries[i], for_read);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* ---- configuration ---- */

int agk_config_check(const char *const *keys, const struct aerogram_config_entry *config,
                     size_t n, const char *who, char *errbuf, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		size_t k = 0;
		while (keys[k] && !(config[i].key && strcmp(config[i].key, keys[k]) == 0))
			k++;
		if (keys[k] == NULL) {
			snprintf(errbuf, errlen, "%s: unknown configuration key '%s'", who,
			         config[i].key ? config[i].key : "(null)");
			return -1;
		}
	}
	return 0;
}

const char *agk_config_value(const struct aerogram_config_entry *config, size_t n,
                             const char *key)
{
	const char *v = NULL;
	for (size_t i = 0; i < n; i++)
		if (config[i].key && strcmp(config[i].key, key) == 0)
			v = config[i].value;
	return v;
}

int agk_config_long(const struct aerogram_config_entry *config, size_t n, const char *key,
                    long min, long max, long *out, const char *who, char *errbuf,
                    size_t errlen)
{
	const char *text = agk_config_value(config, n, key);
	if (text == NULL)
		return 0;
	char *end;
	errno = 0;
	long v = strtol(text, &end, 10);
	if (errno || end == text || *end || v < min || v > max) {
		snprintf(errbuf, errlen, "%s: %s must be an integer in [%ld, %ld], not '%s'", who, key,
		         min, max, text);
		return -1;
	}
	*out = v;
	return 0;
}

/* ---- open ---- */

void *agk_store_new(size_t size, const char *who, char *errbuf, size_t errlen)
{
	void *st = calloc(1, size);
	if (st == NULL)
		snprintf(errbuf, errlen, "%s: out of memory", who);
	return st;
}

/* ---- the host's log ---- */

void agk_log(const struct aerogram_host *host, enum aerogram_log_level level, const char *fmt,
             ...)
{
	if (host == NULL || host->log == NULL)
		return;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	host->log(host->ctx, level, line);
}

/* ---- time ---- */

uint64_t agk_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct timespec agk_timespec_ms(uint64_t ms)
{
	return (struct timespec){ .tv_sec = (time_t)(ms / 1000u),
		                  .tv_nsec = (long)(ms % 1000u) * 1000000L };
}

void agk_cond_init_monotonic(pthread_cond_t *c)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(c, &ca);
	pthread_condattr_destroy(&ca);
}

void agk_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, uint64_t until_ms)
{
	if (until_ms == UINT64_MAX) {
		pthread_cond_wait(c, m);
		return;
	}
	struct timespec ts = agk_timespec_ms(until_ms);
	pthread_cond_timedwait(c, m, &ts);
}

/* ---- background threads ---- */

int agk_thread_start(struct agk_thread *t, void *(*fn)(void *), void *arg, const char *name)
{
	t->stop = 0;
	int err = pthread_create(&t->thread, NULL, fn, arg);
	if (err != 0)
		return err;
	t->started = 1;
	if (name != NULL)
		pthread_setname_np(t->thread, name);
	return 0;
}

void agk_thread_stop(struct agk_thread *t, pthread_mutex_t *mu, pthread_cond_t *wake)
{
	if (!t->started)
		return;
	pthread_mutex_lock(mu);
	t->stop = 1;
	pthread_cond_broadcast(wake);
	pthread_mutex_unlock(mu);
	pthread_join(t->thread, NULL);
	t->started = 0;
}
