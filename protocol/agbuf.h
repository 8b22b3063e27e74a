/* agbuf.h - a growable byte buffer, the unit every protocol/ writer appends to. */
#ifndef AG_AGBUF_H
#define AG_AGBUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* A byte buffer. `data` is always NUL-terminated (the NUL is not counted in
 * `len`) once anything was appended; the buffer owns `data`. */
struct agbuf {
	char *data;
	size_t len;
	size_t cap;
};

/* An empty buffer; no allocation until the first append. */
#define AGBUF_INIT { NULL, 0, 0 }

/* Appends `len` bytes. Aborts the process only if memory is exhausted. */
void agbuf_append(struct agbuf *buf, const void *bytes, size_t len);
/* Appends a NUL-terminated string. */
void agbuf_puts(struct agbuf *buf, const char *str);
/* Appends one byte. */
void agbuf_putc(struct agbuf *buf, char c);
/* Appends printf-style formatted text. */
void agbuf_printf(struct agbuf *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same with a va_list. */
void agbuf_vprintf(struct agbuf *buf, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Makes room for at least `extra` more bytes. */
void agbuf_reserve(struct agbuf *buf, size_t extra);
/* Forgets the content, keeps the allocation. */
void agbuf_reset(struct agbuf *buf);
/* Removes the first `n` bytes (for a buffer that is flushed from the front). */
void agbuf_consume(struct agbuf *buf, size_t n);
/* Hands the content over to the caller (who frees it with free()) and empties the buffer. */
char *agbuf_steal(struct agbuf *buf, size_t *len);
/* Frees the content. */
void agbuf_free(struct agbuf *buf);

#endif
