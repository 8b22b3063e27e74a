/* mime_decode.c - base64 and quoted-printable decoding. */
#include "protocol/mime_decode.h"

/* RFC 2045 6.8, table 1 */
static const char mime_base64_digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void mime_decode_base64(struct agbuf *out, const char *in, size_t len)
{
	unsigned acc = 0;
	int bits = 0;
	agbuf_reserve(out, len / 4 * 3 + 3);
	for (size_t i = 0; i < len; i++) {
		int v = mime_base64_value((unsigned char)in[i], mime_base64_digits);
		if (v < 0)
			continue; /* line ends, padding and junk */
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			agbuf_putc(out, (char)((acc >> bits) & 0xff));
		}
	}
}

void mime_decode_qp(struct agbuf *out, const char *in, size_t len, int q_word)
{
	agbuf_reserve(out, len);
	size_t blanks = 0; /* blanks written since the last other byte: dropped at a hard break */
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		if (c == '=' && i + 2 < len && mime_hex_value(in[i + 1]) >= 0 &&
		    mime_hex_value(in[i + 2]) >= 0) {
			agbuf_putc(out, (char)(mime_hex_value(in[i + 1]) * 16 +
					       mime_hex_value(in[i + 2])));
			i += 2;
			blanks = 0;
		} else if (c == '=' && !q_word) {
			/* soft line break: "=" [blanks] [CR] LF, or "=" [blanks] at the end */
			size_t j = i + 1;
			while (j < len && (in[j] == ' ' || in[j] == '\t' || in[j] == '\r'))
				j++;
			if (j < len && in[j] == '\n') {
				i = j;
			} else if (j == len) {
				i = j - 1;
			} else {
				agbuf_putc(out, c);
			}
			blanks = 0;
		} else if (c == '_' && q_word) {
			agbuf_putc(out, ' ');
		} else if (!q_word && (c == '\n' || (c == '\r' && i + 1 < len && in[i + 1] == '\n'))) {
			out->len -= blanks; /* transport padding before a hard break */
			out->data[out->len] = '\0';
			blanks = 0;
			agbuf_append(out, "\r\n", 2);
			if (c == '\r')
				i++;
		} else {
			agbuf_putc(out, c);
			blanks = (c == ' ' || c == '\t') ? blanks + 1 : 0;
		}
	}
}
