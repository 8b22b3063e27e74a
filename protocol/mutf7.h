/* mutf7.h - modified UTF-7 for mailbox names (RFC 3501 5.1.3). */
#ifndef AG_MUTF7_H
#define AG_MUTF7_H

#include <stddef.h>

#include "protocol/agbuf.h"

/* Appends the modified UTF-7 form of `len` bytes of UTF-8 to `out`.
 * Returns 0, or -1 (with `out` unchanged) when the input is not valid
 * UTF-8 (overlong forms, surrogates, code points above U+10FFFF). */
int mutf7_encode(const char *utf8, size_t len, struct agbuf *out);
/* Appends the UTF-8 form of a modified UTF-7 name to `out`. Returns 0, or
 * -1 (with `out` unchanged) when the name is not valid modified UTF-7. */
int mutf7_decode(const char *name, size_t len, struct agbuf *out);
/* Nonzero when the name is valid modified UTF-7 in its one canonical form:
 * only printable ASCII, '&' written "&-", base64 runs closed by '-', from
 * the modified alphabet, minimal (no spare bits, no printable ASCII inside,
 * no run directly after another), holding well-paired UTF-16. */
int mutf7_is_valid(const char *name, size_t len);

#endif
