/* mime_decode.h - Content-Transfer-Encoding decoders (RFC 2045 6.7, 6.8)
 * and the "Q" / "B" encodings of RFC 2047 header words. Shared by SEARCH
 * (text of decoded parts) and FETCH BINARY (RFC 3516). */
#ifndef AG_MIME_DECODE_H
#define AG_MIME_DECODE_H

#include <stddef.h>

#include "protocol/agbuf.h"

/* The value of `c` in a base64 alphabet `digits`: 64 characters, the first
 * 62 A-Z, a-z, 0-9 as in every variant, the last two those of the variant
 * ("+/" in RFC 2045 6.8, "+," in modified UTF-7, RFC 3501 5.1.3).
 * -1 when `c` is not one of them. Inline: the decoders call it for every
 * byte. */
static inline int mime_base64_value(unsigned char c, const char *digits)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (unsigned char)digits[62])
		return 62;
	if (c == (unsigned char)digits[63])
		return 63;
	return -1;
}

/* The value of the hexadecimal digit `c` (either case), -1 when it is none:
 * quoted-printable's "=XX" and RFC 2231's "%XX". */
static inline int mime_hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20); /* 'A'-'F' to 'a'-'f'; no other byte lands there */
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Appends the bytes that base64 text decodes to. Line ends, padding and
 * any other character outside the alphabet are skipped (RFC 2045 6.8:
 * "ignored by decoding software"). */
void mime_decode_base64(struct agbuf *out, const char *in, size_t len);

/* Quoted-printable. With `q_word` the RFC 2047 "Q" form: '_' is a space and
 * there are no line breaks. Without it (a body, RFC 2045 6.7): a soft line
 * break ("=" then blanks then the line end) disappears, blanks before a
 * hard line break are dropped (rule 3) and a hard line break, LF or CRLF,
 * is written as CRLF. An '=' not followed by two hex digits stays as it
 * is, as Dovecot leaves it. */
void mime_decode_qp(struct agbuf *out, const char *in, size_t len, int q_word);

#endif
