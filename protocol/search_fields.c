/* search_fields.c - the folded header fields a header search looks at, of
 * one message (see search_fields.h).
 *
 * One pass over the header block: each field whose name was asked for is
 * unfolded, decoded and folded into one scratch buffer (the others are
 * only stepped over), with a record of which name
 * it belongs to; then the runs are packed, grouped by name, into a single
 * allocation that a cache can keep and free as a unit. */
#include "protocol/search_fields.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "protocol/agbuf.h"
#include "protocol/mime.h"
#include "protocol/mime_header.h"
#include "protocol/search_match.h"

/* One folded value in the scratch buffer. */
struct piece {
	size_t name_index;
	size_t off, len;
};

static char lower_ascii(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Index in names[0, n) of the field name (any case), or n. */
static size_t name_index(const char *const *names, const size_t *lens, size_t n, const char *name, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (lens[i] == len && strncasecmp(names[i], name, len) == 0)
			return i;
	return n;
}

enum search_form search_field_form(const char *name, size_t len, size_t *base_len)
{
	static const struct {
		const char *suffix;
		enum search_form form;
	} forms[] = { { SEARCH_FIELD_ADDRESS, SEARCH_FORM_ADDRESS }, { SEARCH_FIELD_LWSP, SEARCH_FORM_LWSP } };
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		size_t sl = strlen(forms[i].suffix);
		if (len > sl && strncasecmp(name + len - sl, forms[i].suffix, sl) == 0) {
			*base_len = len - sl;
			return forms[i].form;
		}
	}
	*base_len = len;
	return SEARCH_FORM_TEXT;
}

/* The next entry at or after `from` that reads header field `name`, or n. */
static size_t next_reader(const char *const *names, const size_t *bases, size_t n, size_t from, const char *name,
			  size_t len)
{
	for (size_t i = from; i < n; i++)
		if (bases[i] == len && strncasecmp(names[i], name, len) == 0)
			return i;
	return n;
}

/* An address field as Dovecot searches it: parsed, then written back
 * without comments (mime_address_write), so that "user (c) @ (c) host"
 * matches "user@host" and "user@host (Name)" matches "Name". A subject:
 * each run of blanks one space, none at the start (Dovecot's
 * compress_lwsp), so that "a<TAB> b" matches "a b". */
void search_field_decode(struct agbuf *out, enum search_form form, const char *value, size_t len)
{
	struct agbuf normal = AGBUF_INIT;
	if (form == SEARCH_FORM_ADDRESS) {
		struct mime_arena *arena = mime_arena_new();
		if (arena != NULL)
			mime_address_write(&normal, mime_address_parse(arena, value, len));
		mime_arena_free(arena);
	} else if (form == SEARCH_FORM_LWSP) {
		agbuf_reserve(&normal, len);
		int blank = 1;
		for (size_t i = 0; i < len; i++) {
			if (value[i] == ' ' || value[i] == '\t') {
				if (!blank)
					agbuf_putc(&normal, ' ');
				blank = 1;
			} else {
				agbuf_putc(&normal, value[i]);
				blank = 0;
			}
		}
	} else {
		search_decode_header_value(out, value, len);
		return;
	}
	search_decode_header_value(out, normal.data ? normal.data : "", normal.len);
	agbuf_free(&normal);
}

static int is_date(const char *name, size_t len)
{
	return len == 4 && strncasecmp(name, "date", 4) == 0;
}

struct search_fields *search_fields_extract(const char *header, size_t len, const char *const *names,
					    size_t count)
{
	/* The distinct names, and where each one's text will go. */
	const char **uniq = calloc(count ? count : 1, sizeof(*uniq));
	size_t *lens = calloc(count ? count : 1, sizeof(*lens));
	size_t *bases = calloc(count ? count : 1, sizeof(*bases));
	enum search_form *form = calloc(count ? count : 1, sizeof(*form));
	size_t *text_len = calloc(count ? count : 1, sizeof(*text_len));
	int *present = calloc(count ? count : 1, sizeof(*present));
	struct piece *pieces = NULL;
	size_t n_pieces = 0, cap_pieces = 0, n = 0, names_bytes = 0;
	struct agbuf scratch = AGBUF_INIT, unfolded = AGBUF_INIT, decoded = AGBUF_INIT;
	struct search_fields *out = NULL;
	int has_day = 0;
	int64_t day = 0;
	if (uniq == NULL || lens == NULL || bases == NULL || form == NULL || text_len == NULL || present == NULL)
		goto done;
	for (size_t i = 0; i < count; i++) {
		size_t l = strlen(names[i]);
		if (name_index(uniq, lens, n, names[i], l) < n)
			continue;
		uniq[n] = names[i];
		lens[n] = l;
		form[n] = search_field_form(names[i], l, &bases[n]);
		names_bytes += l + 1;
		n++;
	}

	/* Only the fields wanted are unfolded and decoded, in buffers
	 * reused from one field to the next. */
	const char *data = header ? header : "";
	struct mime_header_iter it;
	struct mime_header_field f;
	mime_header_iter_init(&it, data, 0, header ? len : 0);
	while (mime_header_next_raw(&it, &f)) {
		int date = is_date(f.name, f.name_len);
		size_t k = next_reader(uniq, bases, n, 0, f.name, f.name_len);
		if (!date && k == n)
			continue;
		agbuf_reset(&unfolded);
		agbuf_reserve(&unfolded, f.raw_end - f.value_start);
		mime_header_unfold(&unfolded, data, &f);
		/* the envelope's Date: the last one counts */
		if (date)
			has_day = search_parse_date(unfolded.data, unfolded.len, &day) == 0;
		for (; k < n; k = next_reader(uniq, bases, n, k + 1, f.name, f.name_len)) {
			struct piece *grown = ag_array_room(pieces, n_pieces, &cap_pieces, sizeof(*pieces), 8);
			if (grown == NULL)
				goto done;
			pieces = grown;
			agbuf_reset(&decoded);
			search_field_decode(&decoded, form[k], unfolded.data, unfolded.len);
			size_t off = scratch.len;
			search_fold(&scratch, decoded.data ? decoded.data : "", decoded.len);
			agbuf_putc(&scratch, '\0');
			pieces[n_pieces++] = (struct piece){ k, off, scratch.len - off };
			present[k] = 1;
			text_len[k] += scratch.len - off;
		}
	}

	size_t bytes = sizeof(*out) + n * sizeof(out->field[0]) + names_bytes + scratch.len;
	if (bytes > UINT32_MAX || (out = malloc(bytes)) == NULL)
		goto done;
	out->bytes = bytes;
	out->has_sent_day = has_day;
	out->sent_day = has_day ? day : 0;
	out->count = n;
	char *base = (char *)out;
	char *p = (char *)&out->field[n];
	for (size_t k = 0; k < n; k++) {
		struct search_field *sf = &out->field[k];
		for (size_t c = 0; c < lens[k]; c++)
			p[c] = lower_ascii(uniq[k][c]);
		p[lens[k]] = '\0';
		sf->name_off = (uint32_t)(p - base);
		sf->name_len = (uint32_t)lens[k];
		p += lens[k] + 1;
		sf->present = (uint32_t)present[k];
		sf->text_len = (uint32_t)text_len[k];
	}
	/* the texts, grouped by name in the order of the header */
	for (size_t k = 0; k < n; k++) {
		out->field[k].text_off = (uint32_t)(p - base);
		for (size_t i = 0; i < n_pieces; i++)
			if (pieces[i].name_index == k) {
				memcpy(p, scratch.data + pieces[i].off, pieces[i].len);
				p += pieces[i].len;
			}
	}
done:
	agbuf_free(&decoded);
	agbuf_free(&unfolded);
	agbuf_free(&scratch);
	free(pieces);
	free(present);
	free(text_len);
	free(form);
	free(bases);
	free(lens);
	free(uniq);
	return out;
}

const struct search_field *search_fields_find(const struct search_fields *f, const char *name, size_t name_len)
{
	const char *base = (const char *)f;
	for (size_t i = 0; i < f->count; i++)
		if (f->field[i].name_len == name_len && memcmp(base + f->field[i].name_off, name, name_len) == 0)
			return &f->field[i];
	return NULL;
}

int search_field_contains(const struct search_fields *f, const struct search_field *field, const char *folded,
			  size_t folded_len)
{
	if (!field->present)
		return 0;
	if (folded_len == 0)
		return 1;
	const char *text = (const char *)f + field->text_off;
	return folded_len <= field->text_len && memmem(text, field->text_len, folded, folded_len) != NULL;
}

struct search_fields *search_fields_dup(const struct search_fields *f)
{
	struct search_fields *d = malloc(f->bytes);
	if (d != NULL)
		memcpy(d, f, f->bytes);
	return d;
}
