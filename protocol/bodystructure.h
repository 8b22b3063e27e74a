/* bodystructure.h - FETCH BODY and BODYSTRUCTURE (RFC 3501 §7.4.2), written
 * exactly as Dovecot writes them. */
#ifndef AG_BODYSTRUCTURE_H
#define AG_BODYSTRUCTURE_H

#include "protocol/agbuf.h"
#include "protocol/mime.h"

/* Appends the body structure of a part and everything under it:
 * extended = 1 for BODYSTRUCTURE (with md5, disposition, language,
 * location), 0 for BODY. */
void bodystructure_write(struct agbuf *out, const struct mime_part *part, int extended);

#endif
