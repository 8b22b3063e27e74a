/* ag_kit.h - what every driver needs and no driver should write again: the
 * thread-local error message of error_message(), result arenas, results
 * whose memory is one arena (with the descriptor's free functions for them),
 * configuration values, the host's log, and background threads.
 *
 * A static library (build/libagkit.a) a driver links into its .so; built
 * with -fvisibility=hidden it exports nothing, and each driver gets its own
 * copy of the thread-local message. The drivers of this tree use it; it
 * depends on the ABI header and libc only. */
#ifndef AG_KIT_H
#define AG_KIT_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <aerogram/driver.h>

/* ---- errors: the message error_message() returns ---- */

/* Records a message for the calling thread and returns `code`, so that
 * `return agk_fail(AEROGRAM_EINVAL, "bad key '%s'", k);` reports a failure. */
int agk_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* As agk_fail, with a va_list. */
int agk_vfail(int code, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* The calling thread's last message ("" before the first). */
const char *agk_error_text(void);
/* The same as the descriptor's error_message (AGK_KIT_METHODS). */
const char *agk_error_message(struct aerogram_store *store);

/* ---- arenas: many allocations freed together ---- */

struct agk_chunk;
struct agk_arena {
	struct agk_chunk *head;
};
/* `size` zeroed bytes aligned for any type; NULL when memory runs out. */
void *agk_arena_alloc(struct agk_arena *a, size_t size);
/* A copy of `len` bytes (not zeroed past them); NULL when memory runs out. */
void *agk_arena_memdup(struct agk_arena *a, const void *p, size_t len);
/* A copy of `len` bytes and a NUL. */
char *agk_arena_strndup(struct agk_arena *a, const char *s, size_t len);
/* A copy of a string; NULL stays NULL. */
char *agk_arena_strdup(struct agk_arena *a, const char *s);
/* Frees every allocation; the arena is empty and usable again. */
void agk_arena_free(struct agk_arena *a);
/* Empties the arena, then allocates `n` (at least one) zeroed items of
 * `size` bytes from it: a result filled again from the start (a retried
 * transaction). NULL when memory runs out. */
void *agk_arena_restart(struct agk_arena *a, size_t n, size_t size);

/* ---- growable arrays ---- */

/* Makes room for item n of a malloc'ed array: `items` is the address of the
 * array pointer, *cap its capacity in items of `size` bytes. When n reaches
 * *cap the capacity doubles (from `first` items the first time) until it
 * holds item n. 0, or -1 when memory runs out (the array is unchanged). */
int agk_grow(void *items, size_t *cap, size_t n, size_t size, size_t first);

/* ---- results whose memory is one arena ---- */

/* Build `pub` from `arena`, hand &x->pub to the host, and give the matching
 * free function to the descriptor: it frees the arena and the holder. */
struct agk_row_result {
	struct aerogram_row_result pub; /* first: the pointer the host holds */
	struct agk_arena arena;
};
struct agk_blob_result {
	struct aerogram_blob_result pub;
	struct agk_arena arena;
};
struct agk_blob_list {
	struct aerogram_blob_list pub;
	struct agk_arena arena;
};
/* Zeroed holders; NULL when memory runs out. */
struct agk_row_result *agk_row_result_new(void);
struct agk_blob_result *agk_blob_result_new(void);
struct agk_blob_list *agk_blob_list_new(void);
/* The descriptor's row_result_free, blob_result_free and blob_list_free for
 * results made by the functions above (NULL is allowed). */
void agk_row_result_free(struct aerogram_store *store, struct aerogram_row_result *result);
void agk_blob_result_free(struct aerogram_store *store, struct aerogram_blob_result *result);
void agk_blob_list_free(struct aerogram_store *store, struct aerogram_blob_list *list);
/* The end of a call that filled a holder: with code 0, *out is its public
 * part for the host; otherwise the holder is freed. Returns code. */
int agk_row_result_done(int code, struct agk_row_result *res, struct aerogram_row_result **out);
int agk_blob_result_done(int code, struct agk_blob_result *res, struct aerogram_blob_result **out);
int agk_blob_list_done(int code, struct agk_blob_list *res, struct aerogram_blob_list **out);

/* ---- the descriptor ---- */

/* The calls of a descriptor after .open, bound by name to the functions
 * <p>_close, <p>_row_read, ... <p>_blob_delete: the list of struct
 * aerogram_driver in order, less open, error_message, the three free
 * functions and row_insert_if, which each descriptor names itself
 * (AGK_KIT_METHODS for a driver that fails with agk_fail and makes its
 * results with the holders above). One list, so that a call added to the
 * ABI is added to every driver or to none. */
#define AGK_DRIVER_CALLS(p)                                      \
	.close = p##_close,                                      \
	.row_read = p##_row_read, .row_insert = p##_row_insert,  \
	.row_delete = p##_row_delete, .row_watch = p##_row_watch, \
	.row_watch_release = p##_row_watch_release,              \
	.blob_get = p##_blob_get, .blob_put = p##_blob_put,      \
	.blob_copy = p##_blob_copy, .blob_list = p##_blob_list,  \
	.blob_delete = p##_blob_delete
/* The error_message and free functions of a descriptor whose messages are
 * the kit's and whose results are the kit's holders. */
#define AGK_KIT_METHODS                                   \
	.error_message = agk_error_message,               \
	.row_result_free = agk_row_result_free,           \
	.blob_result_free = agk_blob_result_free,         \
	.blob_list_free = agk_blob_list_free

/* The prototypes of the calls above, for the header a driver's files share:
 * <p>_row_read ... <p>_row_insert_if, <p>_row_watch and its release,
 * <p>_blob_get ... <p>_blob_delete. The signatures are those of struct
 * aerogram_driver, written once here rather than in every driver. */
#define AGK_DECLARE_ROW_CALLS(p)                                                          \
	int p##_row_read(struct aerogram_store *st, const struct aerogram_row_query *queries, \
	                 size_t n_queries, struct aerogram_row_result **out);                 \
	int p##_row_insert(struct aerogram_store *st, const struct aerogram_row_write *writes, \
	                   size_t n_writes);                                                  \
	int p##_row_delete(struct aerogram_store *st, const struct aerogram_row_query *queries, \
	                   size_t n_queries, uint64_t *deleted);                              \
	int p##_row_insert_if(struct aerogram_store *st, const char *cond_pk, const char *cond_sk, \
	                      const char *cond_token, const struct aerogram_row_write *writes,  \
	                      size_t n_writes, char *new_token, size_t new_token_len)
#define AGK_DECLARE_WATCH_CALLS(p)                                                        \
	int p##_row_watch(struct aerogram_store *st, const char *pk, const char *sk,          \
	                  const char *token, uint32_t timeout_ms, aerogram_watch_cb cb,       \
	                  void *arg, struct aerogram_watch **out);                            \
	void p##_row_watch_release(struct aerogram_store *st, struct aerogram_watch *watch)
#define AGK_DECLARE_BLOB_CALLS(p)                                                         \
	int p##_blob_get(struct aerogram_store *st, const struct aerogram_blob_request *requests, \
	                 size_t n_requests, struct aerogram_blob_result **out);               \
	int p##_blob_put(struct aerogram_store *st, const char *key, const uint8_t *data,     \
	                 size_t len, const struct aerogram_meta *meta, size_t n_meta);         \
	int p##_blob_copy(struct aerogram_store *st, const char *src_key, const char *dst_key); \
	int p##_blob_list(struct aerogram_store *st, const char *prefix, const char *continuation, \
	                  uint32_t max_keys, struct aerogram_blob_list **out);                \
	int p##_blob_delete(struct aerogram_store *st, const char *const *keys, size_t n_keys)

/* ---- the ABI's rules for keys and queries ---- */

/* 0 for a row key of 1 to AEROGRAM_ROW_KEY_MAX bytes; else records
 * "<who>: <what> is missing" or "... is empty" (AEROGRAM_EINVAL) or
 * "... of N bytes is over the limit of M" (AEROGRAM_ETOOBIG) and returns the code. */
int agk_check_key(const char *who, const char *what, const char *key);
/* Checks a batch of queries against the forms of driver.h: each one's
 * partition key, then either a single item (a sort key, no prefix, start or
 * end; for a read no limit and no REVERSE) or a range (start beginning with
 * prefix). A read (`for_read`) also refuses unknown flags; a delete ignores
 * limit and flags. 0, or the code with a message naming `who`. */
int agk_check_queries(const char *who, const struct aerogram_row_query *queries, size_t n,
                      int for_read);

/* ---- configuration (the host refused unknown keys before open) ---- */

/* For a driver that may be opened without the host (its own tests): 0 when
 * every key is in `keys` (NULL-terminated), else -1 with "<who>: unknown
 * configuration key '<key>'" in errbuf. */
int agk_config_check(const char *const *keys, const struct aerogram_config_entry *config,
                     size_t n, const char *who, char *errbuf, size_t errlen);
/* The value of `key` (the last one when repeated), or NULL when unset. */
const char *agk_config_value(const struct aerogram_config_entry *config, size_t n,
                             const char *key);
/* Reads `key` as a decimal integer in [min, max] into *out, which keeps its
 * default when the key is unset. 0, or -1 with "<who>: <key> must be an
 * integer in [min, max], not '<text>'" in errbuf. */
int agk_config_long(const struct aerogram_config_entry *config, size_t n, const char *key,
                    long min, long max, long *out, const char *who, char *errbuf,
                    size_t errlen);

/* ---- open ---- */

/* The zeroed store of `size` bytes open() allocates first; NULL with
 * "<who>: out of memory" in errbuf. */
void *agk_store_new(size_t size, const char *who, char *errbuf, size_t errlen);

/* ---- the host's log ---- */

/* Formats one line and hands it to host->log (nothing without a host or a
 * log service). */
void agk_log(const struct aerogram_host *host, enum aerogram_log_level level, const char *fmt,
             ...) __attribute__((format(printf, 3, 4)));

/* ---- time: the monotonic clock of deadlines and timed waits ---- */

/* Milliseconds of CLOCK_MONOTONIC: the instants deadlines are kept in. */
uint64_t agk_now_ms(void);
/* The timespec of such an instant, for the *_timedwait and *_clockwait calls. */
struct timespec agk_timespec_ms(uint64_t ms);
/* Initializes a condition variable whose timed waits count on CLOCK_MONOTONIC. */
void agk_cond_init_monotonic(pthread_cond_t *c);
/* Waits on `c` (made by agk_cond_init_monotonic, `m` held) until it is
 * signalled or the instant `until_ms` passes; UINT64_MAX: no time limit.
 * Wakes spuriously as pthread_cond_wait does: the caller checks its state. */
void agk_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, uint64_t until_ms);

/* ---- background threads ---- */

/* A thread of the driver that runs until told to stop. */
struct agk_thread {
	pthread_t thread;
	int started;
	_Atomic int stop; /* set by agk_thread_stop; the thread returns once it sees it */
};
/* Starts fn(arg), named `name` for ps and top (NULL: unnamed); 0 or an errno. */
int agk_thread_start(struct agk_thread *t, void *(*fn)(void *), void *arg, const char *name);
/* Sets t->stop with `mu` held, wakes every waiter of `wake`, and joins the
 * thread. Does nothing for a thread that was not started. */
void agk_thread_stop(struct agk_thread *t, pthread_mutex_t *mu, pthread_cond_t *wake);

#endif
