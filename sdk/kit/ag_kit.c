/* ag_kit.c - the driver kit (see ag_kit.h). */
#include "sdk/kit/ag_kit.h"

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

void agk_row_result_free(struct aerogram_store *store, struct aerogram_row_result *result)
{
	(void)store;
	if (result == NULL)
		return;
	struct agk_row_result *r = (struct agk_row_result *)result;
	agk_arena_free(&r->arena);
	free(r);
}

void agk_blob_result_free(struct aerogram_store *store, struct aerogram_blob_result *result)
{
	(void)store;
	if (result == NULL)
		return;
	struct agk_blob_result *r = (struct agk_blob_result *)result;
	agk_arena_free(&r->arena);
	free(r);
}

void agk_blob_list_free(struct aerogram_store *store, struct aerogram_blob_list *list)
{
	(void)store;
	if (list == NULL)
		return;
	struct agk_blob_list *l = (struct agk_blob_list *)list;
	agk_arena_free(&l->arena);
	free(l);
}
