/* section.c - BODY[section] byte ranges. */
#include "protocol/section.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "protocol/mime_decode.h"
#include "protocol/mime_header.h"

/* Finds the part a numeric path names, the way Dovecot walks it: in a
 * non-multipart part only "1" exists (the part itself), and a
 * message/rfc822 part is entered when more numbers follow. */
static const struct mime_part *find_part(const struct mime_message *msg, const struct section_spec *spec)
{
	const struct mime_part *part = msg->root;
	for (size_t i = 0; i < spec->path_len && part; i++) {
		unsigned num = spec->path[i];
		int more = i + 1 < spec->path_len;
		if (part->flags & MIME_PART_MULTIPART) {
			part = part->children;
			for (; num > 1 && part; num--)
				part = part->next;
			if (num == 0)
				part = NULL;
		} else if (num != 1 || (more && !(part->flags & MIME_PART_RFC822))) {
			part = NULL;
		}
		if (part && more && (part->flags & MIME_PART_RFC822))
			part = part->children;
	}
	return part;
}

/* LFs in data[start, end) not preceded by CR (the byte before `start`
 * counts: a range may begin between a CR and its LF). */
static size_t count_bare_lf(const char *data, size_t start, size_t end)
{
	size_t n = 0;
	const char *p = data + start, *e = data + end;
	while (p < e && (p = memchr(p, '\n', (size_t)(e - p))) != NULL) {
		if (p == data || p[-1] != '\r')
			n++;
		p++;
	}
	return n;
}

/* Appends data[start, end) as it goes on the wire: a bare LF as CRLF, NUL
 * (not allowed in a literal) as 0x80, as Dovecot sends them. `bare_lfs` is
 * count_bare_lf of the range. Copies runs between line ends, not bytes. */
static void append_wire(struct agbuf *b, const char *data, size_t start, size_t end, size_t bare_lfs)
{
	agbuf_reserve(b, end - start + bare_lfs);
	char *o = b->data + b->len, *o_start = o;
	const char *p = data + start, *e = data + end;
	while (p < e) {
		const char *lf = bare_lfs ? memchr(p, '\n', (size_t)(e - p)) : NULL;
		const char *stop = lf ? lf : e;
		memcpy(o, p, (size_t)(stop - p));
		o += stop - p;
		if (lf == NULL)
			break;
		if (lf == data || lf[-1] != '\r')
			*o++ = '\r';
		*o++ = '\n';
		p = lf + 1;
	}
	/* Only the message's own bytes can be NUL, never an added CR. */
	for (char *z = o_start; (z = memchr(z, '\0', (size_t)(o - z))) != NULL; z++)
		*z = (char)0x80;
	b->len = (size_t)(o - b->data);
	b->data[b->len] = '\0';
}

/* Sets *res to data[start, end) with bare LFs turned into CRLF. */
static int take_range(const char *data, size_t len, uint64_t start, uint64_t end,
		      struct section_result *res)
{
	if (end > len || start > end)
		return -1;
	res->data = data + start;
	res->len = (size_t)(end - start);
	size_t bare = count_bare_lf(data, (size_t)start, (size_t)end);
	if (bare == 0 && memchr(res->data, '\0', res->len) == NULL)
		return 0;
	struct agbuf b = AGBUF_INIT;
	append_wire(&b, data, (size_t)start, (size_t)end, bare);
	res->owned = agbuf_steal(&b, &res->len);
	res->data = res->owned;
	return 0;
}

static int field_listed(const struct section_spec *spec, const char *name, size_t len)
{
	for (size_t i = 0; i < spec->nfields; i++)
		if (strlen(spec->fields[i]) == len && strncasecmp(spec->fields[i], name, len) == 0)
			return 1;
	return 0;
}

/* Dovecot answers HEADER.FIELDS of the message from its cache, which
 * keeps each line's value (the CR before the LF counted as the line end,
 * any other CR as part of the value) with a bare LF, and parses that again:
 * so a line ending in two or more CRs before its LF goes out with one CR
 * fewer. Applies that to b from `from` on (already in wire form). */
static void drop_cached_cr(struct agbuf *b, size_t from)
{
	char *d = b->data;
	size_t o = from;
	for (size_t i = from; i < b->len; i++) {
		if (d[i] == '\r' && i + 1 < b->len && d[i + 1] == '\r') {
			/* the first CR of a run: drop it when the run ends in LF
			 * and holds two or more */
			size_t j = i;
			while (j < b->len && d[j] == '\r')
				j++;
			size_t run = j - i;
			size_t keep = (j < b->len && d[j] == '\n') ? run - 1 : run;
			memmove(d + o, d + i, keep);
			o += keep;
			i = j - 1;
			continue;
		}
		d[o++] = d[i];
	}
	b->len = o;
	if (d != NULL)
		d[o] = '\0';
}

/* HEADER.FIELDS[.NOT]: the chosen fields in message order, then CRLF. */
static int filter_header(const char *data, size_t len, const struct mime_part *p,
			 const struct section_spec *spec, struct section_result *res)
{
	if (p->body_offset > len)
		return -1;
	struct agbuf b = AGBUF_INIT;
	struct mime_header_iter it;
	struct mime_header_field f;
	agbuf_reserve(&b, 256);
	mime_header_iter_init(&it, data, (size_t)p->hdr_offset, (size_t)p->body_offset);
	int want_listed = spec->kind == SECTION_HEADER_FIELDS;
	while (mime_header_next_raw(&it, &f)) {
		if (field_listed(spec, f.name, f.name_len) != want_listed)
			continue;
		size_t from = b.len;
		append_wire(&b, data, f.raw_start, f.raw_end, count_bare_lf(data, f.raw_start, f.raw_end));
		if (want_listed && spec->path_len == 0)
			drop_cached_cr(&b, from);
	}
	/* The empty line that ends the block, as Dovecot writes it (recorded
	 * behaviour): HEADER.FIELDS of the message always has one; of an
	 * attached message only when its header had one or a field was
	 * written; HEADER.FIELDS.NOT passes the header's own empty line
	 * through, if it has one (the iterator stopped before the end of the
	 * header at that line). */
	int has_eoh = it.pos < p->body_offset;
	if (want_listed ? (p->parent == NULL || has_eoh || b.len > 0) : has_eoh)
		agbuf_puts(&b, "\r\n");
	res->owned = agbuf_steal(&b, &res->len);
	res->data = res->owned;
	return 0;
}

static void apply_partial(const struct section_spec *spec, struct section_result *res)
{
	if (!spec->partial)
		return;
	if (spec->partial_offset >= res->len) {
		res->data += res->len;
		res->len = 0;
	} else {
		res->data += spec->partial_offset;
		res->len -= (size_t)spec->partial_offset;
		if (spec->partial_length < res->len)
			res->len = (size_t)spec->partial_length;
	}
}

/* How section_fetch and section_binary begin: an empty result, NULL data
 * read as an empty message, and the part the section names (NULL when
 * there is none, which both answer with the empty string). */
static const struct mime_part *section_begin(const struct mime_message *msg, const char **data, size_t *len,
					     const struct section_spec *spec, struct section_result *res)
{
	memset(res, 0, sizeof(*res));
	res->data = "";
	if (*data == NULL) {
		*data = "";
		*len = 0;
	}
	return find_part(msg, spec);
}

int section_fetch(const struct mime_message *msg, const char *data, size_t len,
		  const struct section_spec *spec, struct section_result *res)
{
	const struct mime_part *part = section_begin(msg, &data, &len, spec, res);
	int ret = 0;
	if (part == NULL)
		return 0; /* no such part: an empty string */
	if (spec->path_len > 0 && spec->kind != SECTION_BODY && spec->kind != SECTION_MIME) {
		/* HEADER / TEXT of a numbered part exist only for message/rfc822 */
		if (!(part->flags & MIME_PART_RFC822) || part->children == NULL)
			return 0;
		part = part->children;
	}
	switch (spec->kind) {
	case SECTION_BODY:
		if (spec->path_len == 0)
			ret = take_range(data, len, 0, msg->size, res);
		else
			ret = take_range(data, len, part->body_offset, part->end_offset, res);
		break;
	case SECTION_MIME:
		if (spec->path_len == 0)
			return 0;
		/* fall through */
	case SECTION_HEADER:
		ret = take_range(data, len, part->hdr_offset, part->body_offset, res);
		break;
	case SECTION_TEXT:
		ret = take_range(data, len, part->body_offset, part->end_offset, res);
		break;
	case SECTION_HEADER_FIELDS:
	case SECTION_HEADER_FIELDS_NOT:
		ret = filter_header(data, len, part, spec, res);
		break;
	}
	if (ret < 0) {
		section_result_free(res);
		return -1;
	}
	apply_partial(spec, res);
	return 0;
}

int section_binary(const struct mime_message *msg, const char *data, size_t len,
		   const struct section_spec *spec, struct section_result *res, uint64_t *full_len)
{
	const struct mime_part *part = section_begin(msg, &data, &len, spec, res);
	*full_len = 0;
	if (part == NULL)
		return 0;
	uint64_t start = spec->path_len == 0 ? 0 : part->body_offset;
	uint64_t end = spec->path_len == 0 ? msg->size : part->end_offset;
	if (end > len || start > end)
		return -1;
	const char *enc = part->encoding;
	int leaf = !(part->flags & (MIME_PART_MULTIPART | MIME_PART_RFC822));
	if (spec->path_len == 0 || !leaf || enc == NULL || strcasecmp(enc, "7bit") == 0 ||
	    strcasecmp(enc, "8bit") == 0 || strcasecmp(enc, "binary") == 0) {
		res->data = data + start;
		res->len = (size_t)(end - start);
	} else if (strcasecmp(enc, "base64") == 0 || strcasecmp(enc, "quoted-printable") == 0) {
		struct agbuf b = AGBUF_INIT;
		agbuf_reserve(&b, 1);
		if (enc[0] == 'b' || enc[0] == 'B')
			mime_decode_base64(&b, data + start, (size_t)(end - start));
		else
			mime_decode_qp(&b, data + start, (size_t)(end - start), 0);
		res->owned = agbuf_steal(&b, &res->len);
		res->data = res->owned;
	} else {
		return -2;
	}
	*full_len = res->len;
	apply_partial(spec, res);
	return 0;
}

/* `name` "[" then the part numbers, the start of a section's name. */
static void write_name_start(struct agbuf *out, const char *name, const struct section_spec *spec)
{
	agbuf_puts(out, name);
	agbuf_putc(out, '[');
	for (size_t i = 0; i < spec->path_len; i++) {
		if (i)
			agbuf_putc(out, '.');
		agbuf_put_u64(out, spec->path[i]);
	}
}

/* "]" then the partial's "<offset>", the end of a section's name. */
static void write_name_end(struct agbuf *out, const struct section_spec *spec)
{
	agbuf_putc(out, ']');
	if (spec->partial) {
		agbuf_putc(out, '<');
		agbuf_put_u64(out, spec->partial_offset);
		agbuf_putc(out, '>');
	}
}

void section_result_free(struct section_result *res)
{
	free(res->owned);
	res->owned = NULL;
	res->data = "";
	res->len = 0;
}

void section_write_name(struct agbuf *out, const struct section_spec *spec)
{
	static const char *const kinds[] = {
		[SECTION_BODY] = "", [SECTION_HEADER] = "HEADER",
		[SECTION_HEADER_FIELDS] = "HEADER.FIELDS", [SECTION_HEADER_FIELDS_NOT] = "HEADER.FIELDS.NOT",
		[SECTION_TEXT] = "TEXT", [SECTION_MIME] = "MIME",
	};
	write_name_start(out, "BODY", spec);
	if (spec->kind != SECTION_BODY) {
		if (spec->path_len)
			agbuf_putc(out, '.');
		agbuf_puts(out, kinds[spec->kind]);
	}
	if (spec->kind == SECTION_HEADER_FIELDS || spec->kind == SECTION_HEADER_FIELDS_NOT) {
		agbuf_puts(out, " (");
		/* field names are echoed upper-cased, as Dovecot does */
		for (size_t i = 0; i < spec->nfields; i++) {
			if (i)
				agbuf_putc(out, ' ');
			for (const char *c = spec->fields[i]; *c; c++)
				agbuf_putc(out, (*c >= 'a' && *c <= 'z') ? (char)(*c - 'a' + 'A') : *c);
		}
		agbuf_putc(out, ')');
	}
	write_name_end(out, spec);
}

void section_write_item(struct agbuf *out, const struct section_spec *spec,
			const struct section_result *res)
{
	section_write_name(out, spec);
	agbuf_append(out, " {", 2);
	agbuf_put_u64(out, res->len);
	agbuf_append(out, "}\r\n", 3);
	agbuf_append(out, res->data, res->len);
}

int section_spec_parse(char *text, struct section_spec *spec, const char **fields_buf, size_t fields_cap)
{
	memset(spec, 0, sizeof(*spec));
	char *p = text;
	while (*p >= '0' && *p <= '9') {
		unsigned long n = strtoul(p, &p, 10);
		if (n == 0 || n > 1000000 || spec->path_len == SECTION_MAX_PATH)
			return -1;
		spec->path[spec->path_len++] = (unsigned)n;
		if (*p != '.')
			break;
		p++;
	}
	char *close = strchr(p, ']');
	if (close == NULL)
		return -1;
	*close = '\0';
	char *after = close + 1;
	if (*p == '\0' || (spec->path_len > 0 && p[-1] != '.' && *p == '\0')) {
		spec->kind = SECTION_BODY;
	} else if (strcasecmp(p, "HEADER") == 0) {
		spec->kind = SECTION_HEADER;
	} else if (strcasecmp(p, "TEXT") == 0) {
		spec->kind = SECTION_TEXT;
	} else if (strcasecmp(p, "MIME") == 0) {
		spec->kind = SECTION_MIME;
	} else if (strncasecmp(p, "HEADER.FIELDS", 13) == 0) {
		char *q = p + 13;
		spec->kind = SECTION_HEADER_FIELDS;
		if (strncasecmp(q, ".NOT", 4) == 0) {
			spec->kind = SECTION_HEADER_FIELDS_NOT;
			q += 4;
		}
		while (*q == ' ')
			q++;
		if (*q++ != '(')
			return -1;
		spec->fields = fields_buf;
		for (;;) {
			while (*q == ' ')
				q++;
			if (*q == ')' || *q == '\0')
				break;
			if (spec->nfields == fields_cap)
				return -1;
			fields_buf[spec->nfields++] = q;
			while (*q && *q != ' ' && *q != ')')
				q++;
			char c = *q;
			*q = '\0';
			if (c == ')')
				break;
			if (c)
				q++;
		}
	} else {
		return -1;
	}
	if (*after == '<') {
		char *e;
		spec->partial = 1;
		spec->partial_offset = strtoull(after + 1, &e, 10);
		if (*e != '.')
			return -1;
		spec->partial_length = strtoull(e + 1, &e, 10);
		if (*e != '>')
			return -1;
	}
	return 0;
}
