/* envelope.h - the ENVELOPE structure of RFC 3501 §7.4.2, written exactly as
 * Dovecot writes it. */
#ifndef AG_ENVELOPE_H
#define AG_ENVELOPE_H

#include "protocol/agbuf.h"
#include "protocol/mime.h"

/* Appends the ENVELOPE list (with its parentheses) of an envelope; a NULL
 * envelope (a header without any envelope field) gives ten NILs. */
void envelope_write(struct agbuf *out, const struct mime_envelope *env);
/* Appends the ENVELOPE of a whole message (its root part). */
void envelope_write_message(struct agbuf *out, const struct mime_message *msg);

#endif
