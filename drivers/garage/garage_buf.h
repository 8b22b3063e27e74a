/*
 * garage_buf.h - a growable byte buffer, always NUL-terminated, used to
 * build request bodies, canonical strings and to collect response bodies.
 */
#ifndef AG_GARAGE_BUF_H
#define AG_GARAGE_BUF_H

#include <stddef.h>

#include "sdk/kit/ag_kit.h"

struct gbuf {
	char *data;  /* NULL until the first append; data[len] is always 0 after one */
	size_t len;
	size_t cap;
	int failed;  /* set when an allocation failed; later appends do nothing */
};

/* Append len bytes. Returns 0, or -1 (and sets failed) when memory runs out. */
int gbuf_add(struct gbuf *b, const void *data, size_t len);
/* Append a NUL-terminated string. */
int gbuf_adds(struct gbuf *b, const char *s);
/* Append one byte. */
int gbuf_addc(struct gbuf *b, char c);
/* Append printf-style formatted text. */
int gbuf_addf(struct gbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hand the string over to the caller (who frees it); the buffer is emptied.
 * Returns NULL when an allocation failed earlier. */
char *gbuf_take(struct gbuf *b);
/* Free the contents and reset the buffer. */
void gbuf_free(struct gbuf *b);



#endif
