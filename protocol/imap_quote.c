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
	agbuf_printf(out, "{%zu}\r\n", len);
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
	agbuf_putc(out, '"');
	for (size_t i = 0; i < len; i++) {
		if (str[i] == '"' || str[i] == '\\')
			agbuf_putc(out, '\\');
		agbuf_putc(out, str[i]);
	}
	agbuf_putc(out, '"');
}

void imap_quote_nstring(struct agbuf *out, const char *str, size_t len)
{
	if (str == NULL)
		agbuf_puts(out, "NIL");
	else
		imap_quote_string(out, str, len);
}

void imap_quote_astring(struct agbuf *out, const char *str, size_t len)
{
	if (imap_is_atom(str, len) && !(len == 3 && strncasecmp(str, "NIL", 3) == 0))
		agbuf_append(out, str, len);
	else
		imap_quote_string(out, str, len);
}
