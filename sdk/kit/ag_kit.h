/* ag_kit.h - what every driver needs and no driver should write again: the
 * thread-local error message of error_message(), result arenas, and results
 * whose memory is one arena (with the descriptor's free functions for them).
 *
 * A static library (build/libagkit.a) a driver links into its .so; built
 * with -fvisibility=hidden it exports nothing, and each driver gets its own
 * copy of the thread-local message. The drivers of this tree use it; it
 * depends on the ABI header and libc only. */
#ifndef AG_KIT_H
#define AG_KIT_H

#include <stdarg.h>
#include <stddef.h>

#include <aerogram/driver.h>

/* ---- errors: the message error_message() returns ---- */

/* Records a message for the calling thread and returns `code`, so that
 * `return agk_fail(AEROGRAM_EINVAL, "bad key '%s'", k);` reports a failure. */
int agk_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* As agk_fail, with a va_list. */
int agk_vfail(int code, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* The calling thread's last message ("" before the first). */
const char *agk_error_text(void);

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

#endif
