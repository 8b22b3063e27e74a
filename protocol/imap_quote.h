/* imap_quote.h - how a string goes out on the wire: atom, "quoted" or {literal}. */
#ifndef AG_IMAP_QUOTE_H
#define AG_IMAP_QUOTE_H

#include <stddef.h>

#include "protocol/agbuf.h"

/* Appends `len` bytes as a quoted string, or as a literal when the bytes
 * require it (NUL, CR, LF, 8-bit, or more quoted-specials than quoting is
 * worth, the rule Dovecot follows). */
void imap_quote_string(struct agbuf *out, const char *str, size_t len);
/* The same, NIL for a NULL string. */
void imap_quote_nstring(struct agbuf *out, const char *str, size_t len);
/* Appends an astring: a bare atom when every byte is an ATOM-CHAR (and the
 * string is not empty and not NIL), else as imap_quote_string. */
void imap_quote_astring(struct agbuf *out, const char *str, size_t len);
/* Nonzero when every byte is an ATOM-CHAR of RFC 3501 and len > 0. */
int imap_is_atom(const char *str, size_t len);

#endif
