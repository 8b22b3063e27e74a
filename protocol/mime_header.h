/* mime_header.h - iterating over the fields of an RFC 5322 header block. */
#ifndef AG_MIME_HEADER_H
#define AG_MIME_HEADER_H

#include <stddef.h>

#include "protocol/agbuf.h"

/* One header field: name (trailing blanks removed), the raw bytes of all
 * its lines (with their line ends) and the unfolded value. */
struct mime_header_field {
	const char *name;
	size_t name_len;
	size_t raw_start, raw_end; /* offsets of the field's lines in the block */
	size_t value_start;        /* after the colon (the first line's end without one) */
	size_t first_end;          /* end of the first line, its line end included */
	char *value;               /* malloc'd, CRs dropped, LWSP after ':' skipped,
				      continuation lines joined by "\n" */
	size_t value_len;
};

/* Iterator over the fields of data[start, end). */
struct mime_header_iter {
	const char *data;
	size_t pos, end;
};

/* Starts iterating over the header fields in data[start, end). */
void mime_header_iter_init(struct mime_header_iter *it, const char *data, size_t start, size_t end);
/* Next field; 1 when one was returned (free field->value with free()), 0 at
 * the end of the header (the empty line or end of data). */
int mime_header_next(struct mime_header_iter *it, struct mime_header_field *field);
/* The same without the unfolded value (field->value NULL, nothing to free),
 * for callers that only need names and where the lines are (HEADER.FIELDS,
 * SEARCH, which unfolds just the fields it wants with mime_header_unfold). */
int mime_header_next_raw(struct mime_header_iter *it, struct mime_header_field *field);

/* Appends the unfolded value (as mime_header_next makes it) of a field
 * that mime_header_next_raw returned from `data`. */
void mime_header_unfold(struct agbuf *out, const char *data, const struct mime_header_field *field);

#endif
