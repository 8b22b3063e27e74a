/* garage_buf.c - the growable buffer of the Garage driver. */
#include "drivers/garage/garage_buf.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int gbuf_reserve(struct gbuf *b, size_t extra)
{
	if (b->failed)
		return -1;
	if (b->len + extra + 1 <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < b->len + extra + 1) {
		if (cap > ((size_t)-1) / 2) {
			b->failed = 1;
			return -1;
		}
		cap *= 2;
	}
	char *p = realloc(b->data, cap);
	if (!p) {
		b->failed = 1;
		return -1;
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

int gbuf_add(struct gbuf *b, const void *data, size_t len)
{
	if (gbuf_reserve(b, len) < 0)
		return -1;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = 0;
	return 0;
}

int gbuf_adds(struct gbuf *b, const char *s)
{
	return gbuf_add(b, s, strlen(s));
}

int gbuf_addc(struct gbuf *b, char c)
{
	return gbuf_add(b, &c, 1);
}

int gbuf_addf(struct gbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || gbuf_reserve(b, (size_t)n) < 0) {
		b->failed = 1;
		return -1;
	}
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

char *gbuf_take(struct gbuf *b)
{
	if (b->failed) {
		gbuf_free(b);
		return NULL;
	}
	if (!b->data && gbuf_reserve(b, 0) < 0)
		return NULL;
	if (b->len == 0)
		b->data[0] = 0;
	char *s = b->data;
	b->data = NULL;
	b->len = b->cap = 0;
	return s;
}

void gbuf_free(struct gbuf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->failed = 0;
}

struct gr_arena_block {
	struct gr_arena_block *next;
	size_t used, size;
	max_align_t data[];
};

void *gr_arena_alloc(struct gr_arena *a, size_t size)
{
	size_t align = sizeof(max_align_t);
	size = (size + align - 1) / align * align;
	if (size == 0)
		size = align;
	struct gr_arena_block *b = a->head;
	if (!b || b->size - b->used < size) {
		size_t bsize = size > 4096 ? size : 4096;
		b = malloc(sizeof(*b) + bsize);
		if (!b)
			return NULL;
		b->used = 0;
		b->size = bsize;
		b->next = a->head;
		a->head = b;
	}
	void *p = (char *)b->data + b->used;
	b->used += size;
	memset(p, 0, size);
	return p;
}

char *gr_arena_strndup(struct gr_arena *a, const char *s, size_t len)
{
	char *p = gr_arena_alloc(a, len + 1);
	if (!p)
		return NULL;
	if (len)
		memcpy(p, s, len);
	p[len] = 0;
	return p;
}

char *gr_arena_strdup(struct gr_arena *a, const char *s)
{
	return s ? gr_arena_strndup(a, s, strlen(s)) : NULL;
}

void gr_arena_free(struct gr_arena *a)
{
	while (a->head) {
		struct gr_arena_block *next = a->head->next;
		free(a->head);
		a->head = next;
	}
}
