/* mime_serial.h - a compact, versioned byte encoding of a parsed message
 * (part tree with offsets, sizes, line counts, Content-* data and the raw
 * envelope header values), to keep in a message summary row so that
 * ENVELOPE, BODY, BODYSTRUCTURE and the header sections can be answered
 * without the body.
 *
 * Layout (version 1): "AGMS", a version byte, then unsigned LEB128 varints
 * and strings (varint length + 1, 0 meaning NULL, then the bytes): message
 * size and virtual size, then the parts in pre-order (flags, header offset,
 * header length, body length, header and body virtual sizes and lines,
 * child count, Content-* strings and parameter lists, then an envelope
 * marker and its ten raw values), and last a 4-byte little-endian FNV-1a
 * checksum of everything before it. Integers have no fixed width, so the
 * encoding is the same on every host. */
#ifndef AG_MIME_SERIAL_H
#define AG_MIME_SERIAL_H

#include <stddef.h>

#include "protocol/agbuf.h"
#include "protocol/mime.h"

#define MIME_SERIAL_VERSION 1

/* Appends the encoding of `msg` to `out`. */
void mime_serial_encode(const struct mime_message *msg, struct agbuf *out);
/* Decodes an encoding; NULL when it is corrupt, truncated, of another
 * version or out of memory. The caller frees the result with mime_free. */
struct mime_message *mime_serial_decode(const void *data, size_t len);

#endif
