/* mime_charset.c - charset conversion with iconv and RFC 2231 values. */
#include "protocol/mime_charset.h"

#include <errno.h>
#include <iconv.h>
#include <string.h>
#include <strings.h>

#include "protocol/mime_decode.h"

void mime_charset_to_utf8(struct agbuf *out, const char *charset, const char *in, size_t len)
{
	agbuf_reserve(out, len);
	if (charset == NULL || *charset == '\0' || strcasecmp(charset, "utf-8") == 0 ||
	    strcasecmp(charset, "us-ascii") == 0) {
		agbuf_append(out, in, len);
		return;
	}
	iconv_t cd = iconv_open("UTF-8", charset);
	if (cd == (iconv_t)-1) {
		agbuf_append(out, in, len);
		return;
	}
	char *src = (char *)in;
	size_t left = len;
	while (left > 0) {
		char chunk[1024];
		char *dst = chunk;
		size_t room = sizeof(chunk);
		size_t r = iconv(cd, &src, &left, &dst, &room);
		agbuf_append(out, chunk, (size_t)(dst - chunk));
		if (r == (size_t)-1 && errno != E2BIG) {
			/* invalid or truncated input: keep one byte, go on */
			agbuf_putc(out, *src);
			src++;
			left--;
			iconv(cd, NULL, NULL, NULL, NULL);
		}
	}
	iconv_close(cd);
}

int mime_param_utf8(const struct mime_param *params, size_t count, const char *name, struct agbuf *out)
{
	size_t nlen = strlen(name);
	const struct mime_param *plain = NULL;
	for (size_t i = 0; i < count; i++) {
		const char *pn = params[i].name;
		if (strncasecmp(pn, name, nlen) != 0)
			continue;
		if (pn[nlen] == '\0' && plain == NULL)
			plain = &params[i];
		if (pn[nlen] != '*' || pn[nlen + 1] != '\0')
			continue;
		const char *v = params[i].value;
		const char *q1 = strchr(v, '\'');
		const char *q2 = q1 ? strchr(q1 + 1, '\'') : NULL;
		if (q2 == NULL)
			break; /* not charset'lang'text: take the plain one if any */
		char charset[64];
		size_t cl = (size_t)(q1 - v);
		if (cl >= sizeof(charset))
			cl = 0;
		memcpy(charset, v, cl);
		charset[cl] = '\0';
		struct agbuf raw = AGBUF_INIT;
		agbuf_reserve(&raw, strlen(q2));
		for (const char *p = q2 + 1; *p; p++) {
			int hi, lo;
			if (*p == '%' && (hi = mime_hex_value(p[1])) >= 0 && (lo = mime_hex_value(p[2])) >= 0) {
				agbuf_putc(&raw, (char)(hi * 16 + lo));
				p += 2;
			} else {
				agbuf_putc(&raw, *p);
			}
		}
		mime_charset_to_utf8(out, charset, raw.data, raw.len);
		agbuf_free(&raw);
		return 1;
	}
	if (plain == NULL)
		return 0;
	agbuf_puts(out, plain->value);
	return 1;
}
