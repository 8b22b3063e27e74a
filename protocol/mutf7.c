/* mutf7.c - modified UTF-7 (RFC 3501 5.1.3): UTF-16 in a base64 variant
 * ('+' and ',' for the last two digits, no padding) between '&' and '-',
 * printable ASCII as itself and '&' as "&-". */
#include "protocol/mutf7.h"

#include <stdint.h>

#include "protocol/mime_decode.h"
#include "protocol/utf8.h"

static const char b64_digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int is_direct(uint32_t c)
{
	return c >= 0x20 && c <= 0x7e;
}

/* Reads one code point at s[*i], ASCII included; -1 when invalid. */
static int32_t utf8_next(const unsigned char *s, size_t len, size_t *i)
{
	uint32_t cp;
	size_t n;
	if (s[*i] < 0x80)
		return s[(*i)++];
	if ((n = utf8_decode(s + *i, len - *i, &cp)) == 0)
		return -1;
	*i += n;
	return (int32_t)cp;
}

int mutf7_encode(const char *utf8, size_t len, struct agbuf *out)
{
	const unsigned char *s = (const unsigned char *)utf8;
	size_t start_len = out->len;
	size_t i = 0;
	while (i < len) {
		if (is_direct(s[i])) {
			if (s[i] == '&')
				agbuf_puts(out, "&-");
			else
				agbuf_putc(out, (char)s[i]);
			i++;
			continue;
		}
		/* A run of code points that are not printable ASCII. */
		agbuf_putc(out, '&');
		uint32_t bits = 0;
		unsigned nbits = 0;
		while (i < len && !is_direct(s[i])) {
			int32_t cp = utf8_next(s, len, &i);
			if (cp < 0) {
				out->len = start_len;
				if (out->data != NULL)
					out->data[start_len] = '\0';
				return -1;
			}
			uint16_t units[2];
			int count = 1;
			if (cp >= 0x10000) {
				units[0] = (uint16_t)(0xd800 + ((cp - 0x10000) >> 10));
				units[1] = (uint16_t)(0xdc00 + ((cp - 0x10000) & 0x3ff));
				count = 2;
			} else {
				units[0] = (uint16_t)cp;
			}
			for (int u = 0; u < count; u++) {
				bits = (bits << 16) | units[u];
				nbits += 16;
				while (nbits >= 6) {
					nbits -= 6;
					agbuf_putc(out, b64_digits[(bits >> nbits) & 0x3f]);
				}
				bits &= (1u << nbits) - 1;
			}
		}
		if (nbits > 0)
			agbuf_putc(out, b64_digits[(bits << (6 - nbits)) & 0x3f]);
		agbuf_putc(out, '-');
	}
	if (out->data == NULL)
		agbuf_append(out, "", 0); /* an empty result is still a string */
	return 0;
}

/* Decodes into `out` when non-NULL; the one validating walk for both. */
static int decode(const char *name, size_t len, struct agbuf *out)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t i = 0;
	int prev_run = 0; /* the previous item was a base64 run */
	while (i < len) {
		unsigned char c = s[i];
		if (!is_direct(c))
			return -1;
		if (c != '&') {
			if (out != NULL)
				agbuf_putc(out, (char)c);
			i++;
			prev_run = 0;
			continue;
		}
		i++;
		if (i < len && s[i] == '-') {
			if (out != NULL)
				agbuf_putc(out, '&');
			i++;
			prev_run = 0;
			continue;
		}
		if (prev_run)
			return -1; /* "&AAA-&AAA-" is one run written twice */
		uint32_t bits = 0, high = 0;
		unsigned nbits = 0;
		size_t digits = 0;
		for (;;) {
			if (i >= len)
				return -1; /* unterminated */
			if (s[i] == '-')
				break;
			int v = mime_base64_value(s[i], b64_digits);
			if (v < 0)
				return -1;
			i++;
			digits++;
			bits = (bits << 6) | (uint32_t)v;
			nbits += 6;
			if (nbits < 16)
				continue;
			nbits -= 16;
			uint32_t unit = (bits >> nbits) & 0xffff;
			bits &= (1u << nbits) - 1;
			if (high != 0) {
				if (unit < 0xdc00 || unit > 0xdfff)
					return -1;
				if (out != NULL)
					utf8_put(out, 0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00));
				high = 0;
			} else if (unit >= 0xd800 && unit <= 0xdbff) {
				high = unit;
			} else if (unit >= 0xdc00 && unit <= 0xdfff) {
				return -1;
			} else if (is_direct(unit)) {
				return -1; /* printable ASCII must not be encoded */
			} else if (out != NULL) {
				utf8_put(out, unit);
			}
		}
		i++; /* '-' */
		/* Minimal: at least one unit, fewer than 6 spare bits, all zero. */
		if (digits == 0 || high != 0 || nbits >= 6 || bits != 0)
			return -1;
		prev_run = 1;
	}
	return 0;
}

int mutf7_decode(const char *name, size_t len, struct agbuf *out)
{
	size_t start_len = out->len;
	if (decode(name, len, out) != 0) {
		out->len = start_len;
		if (out->data != NULL)
			out->data[start_len] = '\0';
		return -1;
	}
	if (out->data == NULL)
		agbuf_append(out, "", 0); /* an empty result is still a string */
	return 0;
}

int mutf7_is_valid(const char *name, size_t len)
{
	return decode(name, len, NULL) == 0;
}
