/* agbuf.c - a growable byte buffer. */
#include "protocol/agbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void agbuf_grow(struct agbuf *buf, size_t extra)
{
	if (buf->data != NULL && buf->cap - buf->len > extra)
		return;
	if (extra > SIZE_MAX - buf->len - 1)
		abort();
	size_t need = buf->len + extra + 1;
	size_t cap = buf->cap ? buf->cap : 64;
	while (cap < need) {
		if (cap > SIZE_MAX / 2)
			abort();
		cap *= 2;
	}
	char *p = realloc(buf->data, cap);
	if (p == NULL)
		abort(); /* out of memory: nothing sensible is left to do */
	buf->data = p;
	buf->cap = cap;
	/* keep the promise of agbuf.h: data is a C string once allocated */
	buf->data[buf->len] = '\0';
}

void agbuf_put_u64(struct agbuf *buf, uint64_t n)
{
	char digits[20]; /* 18446744073709551615 */
	size_t i = sizeof(digits);
	do {
		digits[--i] = (char)('0' + n % 10);
		n /= 10;
	} while (n != 0);
	agbuf_append(buf, digits + i, sizeof(digits) - i);
}

void agbuf_vprintf(struct agbuf *buf, const char *fmt, va_list ap)
{
	va_list copy;
	va_copy(copy, ap);
	int n = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	if (n < 0)
		return;
	agbuf_reserve(buf, (size_t)n);
	vsnprintf(buf->data + buf->len, (size_t)n + 1, fmt, ap);
	buf->len += (size_t)n;
}

void agbuf_printf(struct agbuf *buf, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	agbuf_vprintf(buf, fmt, ap);
	va_end(ap);
}

void agbuf_reset(struct agbuf *buf)
{
	buf->len = 0;
	if (buf->data != NULL)
		buf->data[0] = '\0';
}

void agbuf_consume(struct agbuf *buf, size_t n)
{
	if (n >= buf->len) {
		agbuf_reset(buf);
		return;
	}
	memmove(buf->data, buf->data + n, buf->len - n);
	buf->len -= n;
	buf->data[buf->len] = '\0';
}

char *agbuf_steal(struct agbuf *buf, size_t *len)
{
	if (buf->data == NULL)
		agbuf_reserve(buf, 0);
	char *p = buf->data;
	if (len != NULL)
		*len = buf->len;
	buf->data = NULL;
	buf->len = buf->cap = 0;
	return p;
}

void agbuf_free(struct agbuf *buf)
{
	free(buf->data);
	buf->data = NULL;
	buf->len = buf->cap = 0;
}

void *ag_array_room(void *array, size_t count, size_t *cap, size_t size, size_t first)
{
	if (count < *cap)
		return array;
	size_t bigger = *cap ? *cap * 2 : first;
	if (bigger < *cap || bigger > SIZE_MAX / size)
		return NULL;
	void *p = realloc(array, bigger * size);
	if (p != NULL)
		*cap = bigger;
	return p;
}
