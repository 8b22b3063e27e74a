/* imap_quote.c - atom, quoted string or literal, as the bytes require. */
#include "protocol/imap_quote.h"

#include <string.h>
#include <strings.h>

/* After this many quoted-specials a literal is shorter than escaping them
 * (for strings of a few dozen bytes); Dovecot switches at the same point. */
#define MAX_ESCAPES 4

int imap_is_atom(const char *str, size_t len)
{
	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)str[i];
		if (c <= 0x20 || c >= 0x7f)
			return 0;
		if (strchr("(){%*\"\\]", c) != NULL)
			return 0;
	}
	return 1;
}

static void append_literal(struct agbuf *out, const char *str, size_t len)
{
	agbuf_putc(out, '{');
	agbuf_put_u64(out, len);
	agbuf_append(out, "}\r\n", 3);
	agbuf_append(out, str, len);
}

void imap_quote_string(struct agbuf *out, const char *str, size_t len)
{
	unsigned escapes = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)str[i];
		if (c == '"' || c == '\\') {
			if (++escapes > MAX_ESCAPES) {
				append_literal(out, str, len);
				return;
			}
		} else if (c == '\0' || c == '\r' || c == '\n' || c >= 0x80) {
			append_literal(out, str, len);
			return;
		}
	}
	agbuf_reserve(out, len + escapes + 2);
	char *p = out->data + out->len;
	*p++ = '"';
	if (escapes == 0) {
		if (len > 0)
			memcpy(p, str, len);
		p += len;
	} else {
		for (size_t i = 0; i < len; i++) {
			if (str[i] == '"' || str[i] == '\\')
				*p++ = '\\';
			*p++ = str[i];
		}
	}
	*p++ = '"';
	out->len = (size_t)(p - out->data);
	out->data[out->len] = '\0';
}

void imap_quote_nstring_nolf(struct agbuf *out, const char *str, size_t len)
{
	if (str == NULL) {
		agbuf_puts(out, "NIL");
		return;
	}
	if (memchr(str, '\r', len) == NULL && memchr(str, '\n', len) == NULL) {
		imap_quote_string(out, str, len);
		return;
	}
	struct agbuf clean = AGBUF_INIT;
	agbuf_reserve(&clean, len);
	for (size_t i = 0; i < len; i++)
		if (str[i] != '\r' && str[i] != '\n')
			agbuf_putc(&clean, str[i]);
	imap_quote_string(out, clean.data, clean.len);
	agbuf_free(&clean);
}

void imap_quote_string_for_humans(struct agbuf *out, const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t removed = 0;
	int modify = 0, last_lwsp = 1, ws_prefix = 1;
	for (size_t i = 0; i < len; i++) {
		switch (s[i]) {
		case 0:
			last_lwsp = 0;
			modify = 1;
			break;
		case '\t':
			modify = 1;
			/* fall through */
		case ' ':
			if (last_lwsp) {
				modify = 1;
				removed++;
			}
			last_lwsp = 1;
			break;
		case '\r':
		case '\n':
			removed++;
			modify = 1;
			break;
		case '"':
		case '\\':
			modify = 1;
			last_lwsp = 0;
			break;
		default:
			if (s[i] & 0x80)
				modify = 1;
			last_lwsp = 0;
			break;
		}
		if (!last_lwsp)
			ws_prefix = 0;
	}
	if (last_lwsp && len > 0 && !ws_prefix) {
		modify = 1;
		removed++;
	}
	if (!modify) {
		agbuf_putc(out, '"');
		agbuf_append(out, str, len);
		agbuf_putc(out, '"');
		return;
	}
	if (removed == len) {
		agbuf_puts(out, "\"\"");
		return;
	}
	agbuf_putc(out, '{');
	agbuf_put_u64(out, len - removed);
	agbuf_append(out, "}\r\n", 3);
	size_t start = out->len;
	last_lwsp = 1;
	ws_prefix = 1;
	for (size_t i = 0; i < len; i++) {
		switch (s[i]) {
		case 0:
			agbuf_putc(out, (char)0x80);
			last_lwsp = 0;
			break;
		case '\t':
		case ' ':
			if (!last_lwsp)
				agbuf_putc(out, ' ');
			last_lwsp = 1;
			break;
		case '\r':
		case '\n':
			break;
		default:
			last_lwsp = 0;
			agbuf_putc(out, (char)s[i]);
			break;
		}
		if (!last_lwsp)
			ws_prefix = 0;
	}
	if (last_lwsp && len > 0 && !ws_prefix && out->len > start)
		out->len--;
	out->data[out->len] = '\0';
}

void imap_quote_nstring(struct agbuf *out, const char *str, size_t len)
{
	if (str == NULL)
		agbuf_puts(out, "NIL");
	else
		imap_quote_string(out, str, len);
}

/* ASTRING-CHAR: an ATOM-CHAR or "]" (resp-specials are allowed in astrings). */
static int is_astring(const char *str, size_t len)
{
	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (str[i] != ']' && !imap_is_atom(str + i, 1))
			return 0;
	return 1;
}

void imap_quote_astring(struct agbuf *out, const char *str, size_t len)
{
	if (is_astring(str, len) && !(len == 3 && strncasecmp(str, "NIL", 3) == 0))
		agbuf_append(out, str, len);
	else
		imap_quote_string(out, str, len);
}
