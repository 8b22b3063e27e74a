/* mime_content.c - the Content-* fields of a part and the envelope fields of
 * a message header, kept the way BODYSTRUCTURE and ENVELOPE report them. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "protocol/mime.h"
#include "protocol/mime_rfc822.h"

/* Header values with NUL bytes get U+FFFD in their place, as Dovecot does,
 * so that values stay C strings. */
static char *value_dup(struct mime_arena *arena, const char *value, size_t len)
{
	size_t nuls = 0;
	for (size_t i = 0; i < len; i++)
		nuls += value[i] == '\0';
	if (nuls == 0)
		return mime_arena_strndup(arena, value, len);
	char *s = mime_arena_alloc(arena, len + 2 * nuls + 1);
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		if (value[i] == '\0') {
			memcpy(s + o, "\xef\xbf\xbd", 3);
			o += 3;
		} else {
			s[o++] = value[i];
		}
	}
	s[o] = '\0';
	return s;
}

/* The parsers of structured Content-* values: `c` is on the value's first
 * token, `str` an empty buffer to read tokens into. */
typedef void content_parser(struct mime_arena *arena, struct mime_part *part, struct rfc822_cursor *c,
			    struct agbuf *str);

static void parse_content_type(struct mime_arena *arena, struct mime_part *part, struct rfc822_cursor *c,
			       struct agbuf *str)
{
	agbuf_reserve(str, 32);
	int ret = rfc822_parse_content_type(c, str);
	const char *slash = memchr(str->data, '/', str->len);
	size_t tlen = slash ? (size_t)(slash - str->data) : str->len;
	part->type = mime_arena_strndup(arena, str->data, tlen);
	part->subtype = slash ? mime_arena_strndup(arena, slash + 1, str->len - tlen - 1)
			      : mime_arena_strndup(arena, "", 0);
	if (ret < 0)
		return; /* keep the type read so far, but no parameters */
	rfc2231_parse(c, arena, &part->params, &part->nparams);
}

static void parse_disposition(struct mime_arena *arena, struct mime_part *part, struct rfc822_cursor *c,
			      struct agbuf *str)
{
	if (rfc822_parse_mime_token(c, str) < 0)
		return;
	part->disposition = mime_arena_strndup(arena, str->data, str->len);
	rfc2231_parse(c, arena, &part->disp_params, &part->ndisp_params);
}

static void parse_language(struct mime_arena *arena, struct mime_part *part, struct rfc822_cursor *c,
			   struct agbuf *str)
{
	size_t cap = 0;
	for (;;) {
		agbuf_reset(str);
		if (rfc822_parse_atom(c, str) < 0)
			break;
		if (part->nlanguages == cap) {
			size_t ncap = cap ? cap * 2 : 4;
			char **n = mime_arena_alloc(arena, ncap * sizeof(*n));
			if (cap)
				memcpy(n, part->languages, cap * sizeof(*n));
			part->languages = n;
			cap = ncap;
		}
		part->languages[part->nlanguages++] = mime_arena_strndup(arena, str->data, str->len);
		if (c->p >= c->end || *c->p != ',')
			break;
		c->p++;
		rfc822_skip_lwsp(c);
	}
}

/* Content-Transfer-Encoding as Dovecot takes it: one token, with nothing
 * but blanks and comments around it. Anything else ("8 bit", an empty
 * value, "base64;", a quoted string) leaves the part without an encoding,
 * so that BODYSTRUCTURE shows the default "7bit", and a later
 * Content-Transfer-Encoding field of the same header may still set it. */
static void parse_encoding(struct mime_arena *arena, struct mime_part *part, struct rfc822_cursor *c,
			   struct agbuf *str)
{
	if (rfc822_parse_mime_token(c, str) >= 0 && rfc822_skip_lwsp(c) == 0 && str->len > 0)
		part->encoding = mime_arena_strndup(arena, str->data, str->len);
}

static void parse_value(content_parser *parse, struct mime_arena *arena, struct mime_part *part,
			const char *value, size_t len)
{
	struct rfc822_cursor c;
	struct agbuf str = AGBUF_INIT;
	rfc822_init(&c, value, len, NULL);
	rfc822_skip_lwsp(&c);
	parse(arena, part, &c, &str);
	agbuf_free(&str);
}

/* The Content-* fields kept as they are written (after "Content-"). */
static const struct {
	const char *name;
	size_t member; /* of struct mime_part, a char * */
} text_fields[] = {
	{ "ID", offsetof(struct mime_part, id) },
	{ "Description", offsetof(struct mime_part, description) },
	{ "MD5", offsetof(struct mime_part, md5) },
	{ "Location", offsetof(struct mime_part, location) },
};

void mime_content_add_header(struct mime_arena *arena, struct mime_part *part,
			     const char *name, size_t name_len, const char *value, size_t value_len)
{
	if (name_len < 8 || strncasecmp(name, "Content-", 8) != 0)
		return;
	const char *n = name + 8;
	size_t nl = name_len - 8;
#define IS(lit) (nl == strlen(lit) && strncasecmp(n, lit, nl) == 0)
	/* The first occurrence of each field counts. */
	if (IS("Type")) {
		if (part->type == NULL)
			parse_value(parse_content_type, arena, part, value, value_len);
	} else if (IS("Transfer-Encoding")) {
		if (part->encoding == NULL)
			parse_value(parse_encoding, arena, part, value, value_len);
	} else if (IS("Language")) {
		if (part->languages == NULL)
			parse_value(parse_language, arena, part, value, value_len);
	} else if (IS("Disposition")) {
		if (part->disposition == NULL)
			parse_value(parse_disposition, arena, part, value, value_len);
	} else {
		for (size_t i = 0; i < sizeof(text_fields) / sizeof(text_fields[0]); i++) {
			char **field = (char **)(void *)((char *)part + text_fields[i].member);
			if (IS(text_fields[i].name) && *field == NULL)
				*field = value_dup(arena, value, value_len);
		}
	}
#undef IS
}

static const char *const env_names[MIME_ENV_COUNT] = {
	"Date", "Subject", "From", "Sender", "Reply-To", "To", "Cc", "Bcc",
	"In-Reply-To", "Message-ID",
};

static int is_address_field(int f)
{
	return f >= MIME_ENV_FROM && f <= MIME_ENV_BCC;
}

/* Occurrences of an address header are kept in one raw value, separated by
 * an empty line (which no unfolded value contains). */
#define ADDR_SEP "\n\n"

static void append_addresses(struct mime_address **list, struct mime_address *more)
{
	while (*list)
		list = &(*list)->next;
	*list = more;
}

void mime_envelope_add_header(struct mime_arena *arena, struct mime_envelope *env,
			      const char *name, size_t name_len, const char *value, size_t value_len)
{
	for (int f = 0; f < MIME_ENV_COUNT; f++) {
		if (strlen(env_names[f]) != name_len || strncasecmp(env_names[f], name, name_len) != 0)
			continue;
		if (!is_address_field(f)) {
			env->raw[f] = value_dup(arena, value, value_len); /* the last one wins */
			return;
		}
		/* Addresses of repeated headers add up; a NUL ends the list. */
		const char *nul = memchr(value, '\0', value_len);
		size_t n = nul ? (size_t)(nul - value) : value_len;
		if (env->raw[f] == NULL) {
			env->raw[f] = mime_arena_strndup(arena, value, n);
		} else {
			size_t old = strlen(env->raw[f]);
			char *joined = mime_arena_alloc(arena, old + 2 + n + 1);
			memcpy(joined, env->raw[f], old);
			memcpy(joined + old, ADDR_SEP, 2);
			memcpy(joined + old + 2, value, n);
			env->raw[f] = joined;
		}
		append_addresses(&env->addr[f], mime_address_parse(arena, value, n));
		return;
	}
}

void mime_envelope_parse_addresses(struct mime_arena *arena, struct mime_envelope *env)
{
	for (int f = 0; f < MIME_ENV_COUNT; f++) {
		if (!is_address_field(f) || env->raw[f] == NULL)
			continue;
		const char *p = env->raw[f];
		for (;;) {
			const char *sep = strstr(p, ADDR_SEP);
			size_t n = sep ? (size_t)(sep - p) : strlen(p);
			append_addresses(&env->addr[f], mime_address_parse(arena, p, n));
			if (sep == NULL)
				break;
			p = sep + 2;
		}
	}
}
