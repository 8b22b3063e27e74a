/* mime_rfc822.h - RFC 822/5322 lexical tokens (atoms, quoted strings,
 * comments, domains) and MIME tokens, as Dovecot's rfc822 parser reads them.
 * Internal to protocol/mime*.c. */
#ifndef AG_MIME_RFC822_H
#define AG_MIME_RFC822_H

#include <stddef.h>

#include "protocol/agbuf.h"

/* A cursor over a header value. `last_comment`, when non-NULL, receives the
 * text of the last comment skipped. Return values of the parse functions:
 * -1 syntax error, 0 the end of data reached, 1 more data follows. */
struct rfc822_cursor {
	const unsigned char *p, *end;
	struct agbuf *last_comment;
};

void rfc822_init(struct rfc822_cursor *c, const char *data, size_t len, struct agbuf *last_comment);
/* Skips whitespace, line ends and (nested) comments. */
int rfc822_skip_lwsp(struct rfc822_cursor *c);
int rfc822_parse_atom(struct rfc822_cursor *c, struct agbuf *out);
int rfc822_parse_dot_atom(struct rfc822_cursor *c, struct agbuf *out);
int rfc822_parse_quoted_string(struct rfc822_cursor *c, struct agbuf *out);
int rfc822_parse_phrase(struct rfc822_cursor *c, struct agbuf *out);
/* Parses "@" domain; the cursor is on the "@". */
int rfc822_parse_domain(struct rfc822_cursor *c, struct agbuf *out);
int rfc822_parse_mime_token(struct rfc822_cursor *c, struct agbuf *out);
/* type "/" subtype into `out`; -1 when broken (out holds what was read). */
int rfc822_parse_content_type(struct rfc822_cursor *c, struct agbuf *out);
/* The ";" key "=" value parameters (RFC 2231 joined); params are appended
 * name, value, name, value... to the NULL-free array grown in *list. */
struct mime_arena;
struct mime_param;
void rfc2231_parse(struct rfc822_cursor *c, struct mime_arena *arena,
		   struct mime_param **params, size_t *count);

#endif
