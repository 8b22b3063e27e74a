/* imap_fetch_parse.c - FETCH arguments: macros, attributes, body sections
 * with partial ranges, and the CHANGEDSINCE modifier (RFC 3501 6.4.5,
 * RFC 7162). */
#include "protocol/imap_parse_int.h"

#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	enum imap_fetch_att_kind kind;
} simple_atts[] = {
	{ "ENVELOPE", IMAP_FETCH_ENVELOPE },
	{ "FLAGS", IMAP_FETCH_FLAGS },
	{ "INTERNALDATE", IMAP_FETCH_INTERNALDATE },
	{ "RFC822", IMAP_FETCH_RFC822 },
	{ "RFC822.HEADER", IMAP_FETCH_RFC822_HEADER },
	{ "RFC822.SIZE", IMAP_FETCH_RFC822_SIZE },
	{ "RFC822.TEXT", IMAP_FETCH_RFC822_TEXT },
	{ "BODY", IMAP_FETCH_BODY },
	{ "BODYSTRUCTURE", IMAP_FETCH_BODYSTRUCTURE },
	{ "UID", IMAP_FETCH_UID },
	{ "MODSEQ", IMAP_FETCH_MODSEQ },
};

static const struct {
	const char *name;
	enum imap_fetch_macro macro;
	enum imap_fetch_att_kind atts[5];
	size_t count;
} macros[] = {
	{ "ALL", IMAP_FETCH_ALL,
	  { IMAP_FETCH_FLAGS, IMAP_FETCH_INTERNALDATE, IMAP_FETCH_RFC822_SIZE, IMAP_FETCH_ENVELOPE }, 4 },
	{ "FAST", IMAP_FETCH_FAST,
	  { IMAP_FETCH_FLAGS, IMAP_FETCH_INTERNALDATE, IMAP_FETCH_RFC822_SIZE }, 3 },
	{ "FULL", IMAP_FETCH_FULL,
	  { IMAP_FETCH_FLAGS, IMAP_FETCH_INTERNALDATE, IMAP_FETCH_RFC822_SIZE, IMAP_FETCH_ENVELOPE,
	    IMAP_FETCH_BODY }, 5 },
};

/* The length of an attribute name: letters, digits and dots. */
static size_t name_len(const struct imap_gram *g)
{
	size_t n = 0;
	while (g->pos + n < g->len) {
		char c = g->buf[g->pos + n];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.'))
			break;
		n++;
	}
	return n;
}

/* One more header field name of the section `arg`. */
static bool header_field(struct imap_gram *g, void *arg)
{
	struct imap_section *sec = arg;
	if (imap_peek(g) == ')')
		return imap_fail(g, "Empty header field list");
	return imap_push_str(g, &sec->fields, &sec->field_count, imap_astring, "header field name");
}

static bool header_list(struct imap_gram *g, struct imap_section *sec)
{
	sec->field_count = 0;
	return imap_sp(g, "header field list") &&
	       imap_paren_list(g, "header field list", NULL, false, header_field, sec);
}

/* section-msgtext / "MIME" after an optional part number. */
static bool section_text(struct imap_gram *g, struct imap_section *sec)
{
	size_t n = name_len(g);
	const char *s = g->buf + g->pos;
	if (n == 6 && strncasecmp(s, "HEADER", 6) == 0) {
		sec->text = IMAP_SECTION_HEADER;
	} else if (n == 13 && strncasecmp(s, "HEADER.FIELDS", 13) == 0) {
		sec->text = IMAP_SECTION_HEADER_FIELDS;
	} else if (n == 17 && strncasecmp(s, "HEADER.FIELDS.NOT", 17) == 0) {
		sec->text = IMAP_SECTION_HEADER_FIELDS_NOT;
	} else if (n == 4 && strncasecmp(s, "TEXT", 4) == 0) {
		sec->text = IMAP_SECTION_TEXT;
	} else if (n == 4 && strncasecmp(s, "MIME", 4) == 0 && sec->part_count > 0) {
		sec->text = IMAP_SECTION_MIME;
	} else {
		return imap_fail(g, "Invalid body section");
	}
	g->pos += n;
	if (sec->text == IMAP_SECTION_HEADER_FIELDS || sec->text == IMAP_SECTION_HEADER_FIELDS_NOT)
		return header_list(g, sec);
	return true;
}

/* Allocates room for the part numbers of the section at the cursor, one
 * more than the dots before its ']' (or the line end), and returns it. */
static size_t section_parts(struct imap_gram *g, struct imap_section *sec)
{
	size_t max = 1;
	for (size_t i = g->pos; i < g->len && g->buf[i] != ']' && g->buf[i] != '\n'; i++)
		if (g->buf[i] == '.')
			max++;
	sec->parts = imap_arena_calloc(g->arena, max, sizeof(*sec->parts));
	return max;
}

static bool section(struct imap_gram *g, struct imap_section *sec)
{
	g->pos++; /* '[' */
	if (imap_peek(g) >= '0' && imap_peek(g) <= '9') {
		size_t max = section_parts(g, sec);
		for (;;) {
			if (sec->part_count == max)
				return imap_fail(g, "Invalid body section");
			uint32_t part;
			if (!imap_nz_number(g, &part, "body section part"))
				return false;
			sec->parts[sec->part_count++] = part;
			/* Deeper than the server can answer (SECTION_MAX_PATH): refused
			 * rather than answered for another section. */
			if (sec->part_count > IMAP_SECTION_MAX_PARTS)
				return imap_fail(g, "Body section nested too deeply (at most %d part numbers)",
				                 IMAP_SECTION_MAX_PARTS);
			if (imap_peek(g) != '.')
				break;
			g->pos++;
			if (!(imap_peek(g) >= '0' && imap_peek(g) <= '9')) {
				if (!section_text(g, sec))
					return false;
				break;
			}
		}
	} else if (imap_peek(g) != ']') {
		if (!section_text(g, sec))
			return false;
	}
	return imap_expect(g, ']', "Missing ']' at the end of the body section");
}

/* section-binary = "[" [section-part] "]" (RFC 3516) */
static bool section_binary(struct imap_gram *g, struct imap_section *sec)
{
	g->pos++; /* '[' */
	if (imap_peek(g) != ']') {
		size_t max = section_parts(g, sec);
		if (max > IMAP_SECTION_MAX_PARTS)
			return imap_fail(g, "Body section nested too deeply (at most %d part numbers)",
			                 IMAP_SECTION_MAX_PARTS);
		for (;;) {
			uint32_t part;
			if (!(imap_peek(g) >= '0' && imap_peek(g) <= '9'))
				return imap_fail(g, "Invalid BINARY section: only part numbers are allowed");
			if (!imap_nz_number(g, &part, "BINARY section part"))
				return false;
			if (sec->part_count == max)
				return imap_fail(g, "Invalid BINARY section");
			sec->parts[sec->part_count++] = part;
			if (imap_peek(g) != '.')
				break;
			g->pos++;
		}
	}
	return imap_expect(g, ']', "Invalid BINARY section: only part numbers are allowed");
}

static bool partial(struct imap_gram *g, struct imap_fetch_att *att)
{
	g->pos++; /* '<' */
	if (!imap_number(g, &att->partial_offset, "partial offset") ||
	    !imap_expect(g, '.', "Invalid partial range: expected <offset.count>") ||
	    !imap_nz_number(g, &att->partial_count, "partial count") ||
	    !imap_expect(g, '>', "Missing '>' at the end of the partial range"))
		return false;
	att->has_partial = true;
	return true;
}

static bool fetch_att(struct imap_gram *g, struct imap_fetch_att *att)
{
	size_t n = name_len(g);
	const char *s = g->buf + g->pos;
	if (n == 0) {
		if (imap_at_eol(g))
			return imap_fail(g, "Missing argument: FETCH attribute");
		return imap_fail(g, "Invalid FETCH attribute");
	}
	bool body = n == 4 && strncasecmp(s, "BODY", 4) == 0;
	bool peek = n == 9 && strncasecmp(s, "BODY.PEEK", 9) == 0;
	if ((body || peek) && g->pos + n < g->len && g->buf[g->pos + n] == '[') {
		g->pos += n;
		att->kind = IMAP_FETCH_BODY_SECTION;
		att->peek = peek;
		if (!section(g, &att->section))
			return false;
		if (imap_peek(g) == '<')
			return partial(g, att);
		return true;
	}
	if (peek)
		return imap_fail(g, "BODY.PEEK needs a section");
	bool bin = n == 6 && strncasecmp(s, "BINARY", 6) == 0;
	bool bin_peek = n == 11 && strncasecmp(s, "BINARY.PEEK", 11) == 0;
	bool bin_size = n == 11 && strncasecmp(s, "BINARY.SIZE", 11) == 0;
	if (bin || bin_peek || bin_size) {
		if (!(g->pos + n < g->len && g->buf[g->pos + n] == '['))
			return imap_fail(g, "%.*s needs a section", (int)n, s);
		g->pos += n;
		att->kind = bin_size ? IMAP_FETCH_BINARY_SIZE : IMAP_FETCH_BINARY;
		att->peek = bin_peek;
		if (!section_binary(g, &att->section))
			return false;
		if (imap_peek(g) == '<') {
			if (bin_size)
				return imap_fail(g, "BINARY.SIZE takes no partial range");
			return partial(g, att);
		}
		return true;
	}
	int i = IMAP_LOOKUP(g, n, simple_atts);
	if (i >= 0) {
		g->pos += n;
		att->kind = simple_atts[i].kind;
		return true;
	}
	return imap_fail(g, "Unknown FETCH attribute: %.*s", (int)(n > 40 ? 40 : n), s);
}

static bool fetch_modifier(struct imap_gram *g, void *arg)
{
	(void)arg;
	if (imap_keyword(g, "CHANGEDSINCE")) {
		if (!imap_sp(g, "CHANGEDSINCE value") ||
		    !imap_number64(g, &g->cmd->u.fetch.changedsince, "CHANGEDSINCE value"))
			return false;
		g->cmd->u.fetch.has_changedsince = true;
		return true;
	}
	if (imap_keyword(g, "VANISHED")) {
		g->cmd->u.fetch.vanished = true;
		return true;
	}
	return imap_fail(g, "Unknown FETCH modifier");
}

/* One attribute of a parenthesised list. */
static bool list_att(struct imap_gram *g, void *arg)
{
	struct imap_command *cmd = g->cmd;
	(void)arg;
	IMAP_GROW(g, cmd->u.fetch.atts, cmd->u.fetch.att_count);
	if (imap_peek(g) == ')')
		return imap_fail(g, "Empty FETCH attribute list");
	return fetch_att(g, &cmd->u.fetch.atts[cmd->u.fetch.att_count++]);
}

bool imap_gram_fetch(struct imap_gram *g)
{
	struct imap_command *cmd = g->cmd;
	if (!imap_sp(g, "sequence set") || !imap_seqset(g, &cmd->u.fetch.set) ||
	    !imap_sp(g, "FETCH attributes"))
		return false;
	size_t n = name_len(g);
	int i = IMAP_LOOKUP(g, n, macros);
	if (i >= 0) {
		g->pos += n;
		cmd->u.fetch.macro = macros[i].macro;
		cmd->u.fetch.att_count = macros[i].count;
		cmd->u.fetch.atts = imap_arena_calloc(g->arena, macros[i].count, sizeof(struct imap_fetch_att));
		for (size_t k = 0; k < macros[i].count; k++)
			cmd->u.fetch.atts[k].kind = macros[i].atts[k];
	} else if (imap_peek(g) == '(') {
		if (!imap_paren_list(g, "FETCH attributes", "Missing ')' in FETCH attribute list", false, list_att, NULL))
			return false;
	} else {
		cmd->u.fetch.atts = imap_arena_calloc(g->arena, 1, sizeof(struct imap_fetch_att));
		cmd->u.fetch.att_count = 1;
		if (!fetch_att(g, &cmd->u.fetch.atts[0]))
			return false;
	}
	if (imap_peek(g) == ' ' && g->pos + 1 < g->len && g->buf[g->pos + 1] == '(') {
		g->pos++;
		if (!imap_paren_list(g, "FETCH modifiers", NULL, false, fetch_modifier, NULL))
			return false;
	}
	return imap_eol(g);
}
