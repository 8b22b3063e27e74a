/* agbuf.h - a growable byte buffer, the unit every protocol/ writer appends to. */
#ifndef AG_AGBUF_H
#define AG_AGBUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A byte buffer. `data` is always NUL-terminated (the NUL is not counted in
 * `len`) once anything was appended; the buffer owns `data`. */
struct agbuf {
	char *data;
	size_t len;
	size_t cap;
};

/* An empty buffer; no allocation until the first append. */
#define AGBUF_INIT { NULL, 0, 0 }

/* Makes room for more than `extra` bytes past `len` (the slow path of
 * agbuf_reserve: reallocates). Aborts only if memory is exhausted. */
void agbuf_grow(struct agbuf *buf, size_t extra);

/* Makes room for at least `extra` more bytes (and the NUL after them). The
 * writers below are inline because responses are built from many short
 * pieces: a call and a capacity check per byte was a tenth of FETCH. */
static inline void agbuf_reserve(struct agbuf *buf, size_t extra)
{
	if (buf->data == NULL || buf->cap - buf->len <= extra)
		agbuf_grow(buf, extra);
}

/* Appends `len` bytes. Aborts the process only if memory is exhausted. */
static inline void agbuf_append(struct agbuf *buf, const void *bytes, size_t len)
{
	agbuf_reserve(buf, len);
	if (len > 0)
		memcpy(buf->data + buf->len, bytes, len);
	buf->len += len;
	buf->data[buf->len] = '\0';
}

/* Appends a NUL-terminated string. */
static inline void agbuf_puts(struct agbuf *buf, const char *str)
{
	agbuf_append(buf, str, strlen(str));
}

/* Appends one byte. */
static inline void agbuf_putc(struct agbuf *buf, char c)
{
	agbuf_reserve(buf, 1);
	buf->data[buf->len++] = c;
	buf->data[buf->len] = '\0';
}

/* Appends `n` in decimal (what printf's %llu writes, without printf). */
void agbuf_put_u64(struct agbuf *buf, uint64_t n);
/* Appends printf-style formatted text. */
void agbuf_printf(struct agbuf *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same with a va_list. */
void agbuf_vprintf(struct agbuf *buf, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Forgets the content, keeps the allocation. */
void agbuf_reset(struct agbuf *buf);
/* Removes the first `n` bytes (for a buffer that is flushed from the front). */
void agbuf_consume(struct agbuf *buf, size_t n);
/* Hands the content over to the caller (who frees it with free()) and empties the buffer. */
char *agbuf_steal(struct agbuf *buf, size_t *len);
/* Frees the content. */
void agbuf_free(struct agbuf *buf);

/* Room for array[count] in a malloc'd array with room for *cap elements of
 * `size` bytes: the array itself while there is room, else the array
 * reallocated twice as large (`first` elements the first time) with *cap
 * updated. NULL when out of memory; the array is then left as it was. */
void *ag_array_room(void *array, size_t count, size_t *cap, size_t size, size_t first);

#endif
