/* mime_header.c - header fields of an RFC 5322 header block. */
#include "protocol/mime_header.h"

#include <stdlib.h>
#include <string.h>

#include "protocol/agbuf.h"

void mime_header_iter_init(struct mime_header_iter *it, const char *data, size_t start, size_t end)
{
	it->data = data;
	it->pos = start;
	it->end = end;
}

/* End of the line starting at `pos` (index after its LF, or `end`). */
static size_t line_end(const char *data, size_t pos, size_t end)
{
	const char *lf = memchr(data + pos, '\n', end - pos);
	return lf ? (size_t)(lf - data) + 1 : end;
}

/* Appends a line's content without its line end (LF or CRLF); a CR
 * elsewhere stays part of the value. */
static void append_line(struct agbuf *buf, const char *p, size_t n)
{
	const char *lf = memchr(p, '\n', n);
	size_t keep = lf ? (size_t)(lf - p) : n;
	/* The CR of a CRLF goes too; a CR at the very end of the data stays
	 * (it ends no line). */
	if (lf && keep > 0 && p[keep - 1] == '\r')
		keep--;
	agbuf_append(buf, p, keep);
}

int mime_header_next_raw(struct mime_header_iter *it, struct mime_header_field *field)
{
	const char *d = it->data;
	if (it->pos >= it->end)
		return 0;
	if (d[it->pos] == '\n' || (d[it->pos] == '\r' && it->pos + 1 < it->end && d[it->pos + 1] == '\n'))
		return 0;
	size_t start = it->pos;
	size_t first_end = line_end(d, start, it->end);
	/* The name runs to the colon; a line without one is all name. */
	const char *colon = memchr(d + start, ':', first_end - start);
	size_t name_end = colon ? (size_t)(colon - d) : first_end;
	size_t value_pos = colon ? name_end + 1 : first_end;
	if (!colon) {
		while (name_end > start && (d[name_end - 1] == '\n' || d[name_end - 1] == '\r'))
			name_end--;
	}
	while (name_end > start && (d[name_end - 1] == ' ' || d[name_end - 1] == '\t'))
		name_end--;
	field->name = d + start;
	field->name_len = name_end - start;
	size_t pos = first_end;
	while (pos < it->end && (d[pos] == ' ' || d[pos] == '\t'))
		pos = line_end(d, pos, it->end);
	field->raw_start = start;
	field->value_start = value_pos;
	field->first_end = first_end;
	field->raw_end = pos;
	field->value = NULL;
	field->value_len = 0;
	it->pos = pos;
	return 1;
}

void mime_header_unfold(struct agbuf *out, const char *data, const struct mime_header_field *field)
{
	size_t p = field->value_start;
	while (p < field->first_end && (data[p] == ' ' || data[p] == '\t'))
		p++;
	append_line(out, data + p, field->first_end - p);
	size_t pos = field->first_end;
	while (pos < field->raw_end) {
		size_t e = line_end(data, pos, field->raw_end);
		agbuf_putc(out, '\n');
		append_line(out, data + pos, e - pos);
		pos = e;
	}
}

int mime_header_next(struct mime_header_iter *it, struct mime_header_field *field)
{
	if (!mime_header_next_raw(it, field))
		return 0;
	struct agbuf val = AGBUF_INIT;
	agbuf_reserve(&val, field->raw_end - field->value_start);
	mime_header_unfold(&val, it->data, field);
	field->value = agbuf_steal(&val, &field->value_len);
	return 1;
}
