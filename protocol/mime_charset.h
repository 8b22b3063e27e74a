/* mime_charset.h - text in a MIME charset to UTF-8 (iconv), and parameter
 * values with their RFC 2231 charset'language'%XX encoding undone. */
#ifndef AG_MIME_CHARSET_H
#define AG_MIME_CHARSET_H

#include <stddef.h>

#include "protocol/agbuf.h"
#include "protocol/mime.h"

/* Appends `len` bytes in `charset` as UTF-8. NULL, empty, us-ascii and
 * utf-8 are copied; bytes iconv cannot convert (or an unknown charset) are
 * copied as they are, so that no text is lost. */
void mime_charset_to_utf8(struct agbuf *out, const char *charset, const char *in, size_t len);

/* The value of parameter `name` (any case) of a list, as UTF-8 into `out`:
 * "name*" (RFC 2231: charset'language'%XX) is preferred and decoded, else
 * "name" is copied. Returns 1 when found, 0 when not. */
int mime_param_utf8(const struct mime_param *params, size_t count, const char *name, struct agbuf *out);

#endif
