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
/* Appends an astring: bare when every byte is an ASTRING-CHAR (ATOM-CHAR or
 * "]") and the string is not empty and not NIL, else as imap_quote_string. */
void imap_quote_astring(struct agbuf *out, const char *str, size_t len);
/* Appends an nstring with CR and LF removed first (header values that were
 * folded), as Dovecot writes ENVELOPE dates and ids and BODYSTRUCTURE ids. */
void imap_quote_nstring_nolf(struct agbuf *out, const char *str, size_t len);
/* Appends a string meant for people (ENVELOPE subjects and names): TABs
 * become spaces, runs of blanks collapse to one, leading and trailing blanks
 * and CR/LF go, NUL becomes 0x80. Written as plain "quoted" when nothing had
 * to change, else as a literal of the cleaned bytes (Dovecot's rule; a
 * string of blanks only becomes ""). */
void imap_quote_string_for_humans(struct agbuf *out, const char *str, size_t len);
/* Nonzero when every byte is an ATOM-CHAR of RFC 3501 and len > 0. */
int imap_is_atom(const char *str, size_t len);

#endif
