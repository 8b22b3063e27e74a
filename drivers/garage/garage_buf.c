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
	char *s = NULL;
	if (gbuf_reserve(b, 0) == 0) { /* fails once an allocation failed */
		s = b->data;
		s[b->len] = 0; /* an empty buffer has no terminator yet */
		b->data = NULL;
	}
	gbuf_free(b);
	return s;
}

void gbuf_free(struct gbuf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->failed = 0;
}

