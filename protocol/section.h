/* section.h - FETCH BODY[section]<partial> (RFC 3501 §6.4.5) over a parsed
 * message: which bytes of the original a section is, matching Dovecot's
 * answers byte for byte (line ends are sent as CRLF, offsets of partial
 * fetches count in that CRLF form, a missing part is an empty string). */
#ifndef AG_SECTION_H
#define AG_SECTION_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/agbuf.h"
#include "protocol/mime.h"

#define SECTION_MAX_PATH 32

enum section_kind {
	SECTION_BODY,              /* BODY[] or BODY[1.2]: the whole message / part body */
	SECTION_HEADER,            /* [path.]HEADER */
	SECTION_HEADER_FIELDS,     /* [path.]HEADER.FIELDS (f1 f2 ...) */
	SECTION_HEADER_FIELDS_NOT, /* [path.]HEADER.FIELDS.NOT (f1 f2 ...) */
	SECTION_TEXT,              /* [path.]TEXT */
	SECTION_MIME,              /* path.MIME (path required) */
};

/* A section as the command parser hands it over (after conversion). The
 * caller owns `fields`; names are compared without regard to case. */
struct section_spec {
	unsigned path[SECTION_MAX_PATH]; /* part numbers, 1-based */
	size_t path_len;
	enum section_kind kind;
	const char *const *fields;
	size_t nfields;
	int partial;                     /* <offset.length> given */
	uint64_t partial_offset, partial_length;
};

/* The bytes of a section: `data` points into the message buffer when the
 * bytes could be sent as they are, else into `owned` (free with
 * section_result_free). */
struct section_result {
	const char *data;
	size_t len;
	char *owned;
};

/* Computes a section of a message whose bytes are data[0, len) (for a
 * message from mime_serial_decode, the header block alone is enough for
 * HEADER, HEADER.FIELDS and MIME of top-level parts). Returns 0, or -1 when
 * the needed bytes are beyond `len`. */
int section_fetch(const struct mime_message *msg, const char *data, size_t len,
		  const struct section_spec *spec, struct section_result *out);
/* FETCH BINARY[path] (RFC 3516): the part's body with its
 * Content-Transfer-Encoding undone (base64, quoted-printable; 7bit, 8bit,
 * binary and none as they are), or the whole message for an empty path.
 * A multipart or message/rfc822 part is given as it is stored. Only
 * spec->path, path_len and the partial range are used; the bytes are not
 * converted for the wire (NUL stays NUL: the caller sends a literal8).
 * *full_len is the decoded size before the partial range (BINARY.SIZE).
 * Returns 0; -1 when the needed bytes are beyond `len`; -2 when the
 * encoding is one this server cannot decode ([UNKNOWN-CTE]). A missing
 * part is an empty string, as for BODY[]. */
int section_binary(const struct mime_message *msg, const char *data, size_t len,
		   const struct section_spec *spec, struct section_result *out, uint64_t *full_len);
/* Frees what section_fetch allocated. */
void section_result_free(struct section_result *res);
/* Appends the item name as the response echoes it: BODY[1.HEADER.FIELDS (A B)]<0>. */
void section_write_name(struct agbuf *out, const struct section_spec *spec);
/* Appends "name {n}\r\n" + bytes, the whole FETCH item. */
void section_write_item(struct agbuf *out, const struct section_spec *spec,
			const struct section_result *res);
/* Parses the text between BODY[ and ] plus an optional <o.n> (for tests and
 * tools; "1.2.HEADER.FIELDS (A B)"). Field names point into `fields_buf`,
 * an array of `fields_cap` entries the caller provides, and into `text`,
 * which is modified. Returns 0 or -1. */
int section_spec_parse(char *text, struct section_spec *spec, const char **fields_buf, size_t fields_cap);

#endif
