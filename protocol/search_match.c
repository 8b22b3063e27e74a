/* search_match.c - SEARCH primitives: decoded text substring tests, dates. */
#include "protocol/search_match.h"
#include "protocol/imap_date.h"
#include "protocol/search_fields.h"

#include <ctype.h>
#include <locale.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <wctype.h>

#include "protocol/agbuf.h"
#include "protocol/mime_charset.h"
#include "protocol/mime_decode.h"
#include "protocol/mime_header.h"
#include "protocol/once.h"
#include "protocol/utf8.h"

/* ---- charset conversion and decoding ----------------------------------- */

static void append_blanks(struct agbuf *out, size_t n)
{
	while (n--)
		agbuf_putc(out, ' ');
}

/* RFC 2047: decodes the encoded words of a header value into UTF-8; blanks
 * between two encoded words disappear. Other bytes are taken as UTF-8. */
static void decode_header_value(struct agbuf *out, const char *v, size_t len)
{
	size_t i = 0, pending_ws_len = 0;
	int last_was_word = 0;
	while (i < len) {
		if (v[i] == '\r' || v[i] == '\n') {
			i++; /* unfolding: the line end goes, the blank after it stays */
			continue;
		}
		if (v[i] == '=' && i + 1 < len && v[i + 1] == '?') {
			/* =?charset?X?text?= */
			const char *cs = v + i + 2;
			const char *q1 = memchr(cs, '?', len - (size_t)(cs - v));
			if (q1 && q1 + 2 < v + len && q1[2] == '?') {
				char enc = (char)toupper((unsigned char)q1[1]);
				const char *text = q1 + 3;
				const char *end = NULL;
				/* bounded, so that a value full of "=?" stays linear */
				const char *limit = (size_t)(v + len - text) > 4096 ? text + 4096 : v + len;
				for (const char *p = text; p + 1 < limit; p++)
					if (p[0] == '?' && p[1] == '=') {
						end = p;
						break;
					}
				if (end && (enc == 'B' || enc == 'Q') && q1 - cs < 64) {
					char charset[64];
					size_t cl = (size_t)(q1 - cs);
					memcpy(charset, cs, cl);
					charset[cl] = '\0';
					char *star = strchr(charset, '*'); /* RFC 2231 language */
					if (star)
						*star = '\0';
					if (!last_was_word && pending_ws_len)
						append_blanks(out, pending_ws_len);
					struct agbuf raw = AGBUF_INIT;
					agbuf_reserve(&raw, 1);
					if (enc == 'B')
						mime_decode_base64(&raw, text, (size_t)(end - text));
					else
						mime_decode_qp(&raw, text, (size_t)(end - text), 1);
					mime_charset_to_utf8(out, charset, raw.data, raw.len);
					agbuf_free(&raw);
					i = (size_t)(end - v) + 2;
					last_was_word = 1;
					pending_ws_len = 0;
					continue;
				}
			}
		}
		if (v[i] == ' ' || v[i] == '\t') {
			pending_ws_len++;
			i++;
			continue;
		}
		if (pending_ws_len)
			append_blanks(out, pending_ws_len);
		pending_ws_len = 0;
		last_was_word = 0;
		/* a run of ordinary bytes in one append */
		size_t j = i + 1;
		while (j < len && v[j] != '\r' && v[j] != '\n' && v[j] != ' ' && v[j] != '\t' && v[j] != '=')
			j++;
		agbuf_append(out, v + i, j - i);
		i = j;
	}
	if (pending_ws_len)
		append_blanks(out, pending_ws_len);
}

/* ---- substring ---------------------------------------------------------- */

/* ASCII case folding, whatever the locale. */
static char ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Lowercases UTF-8 text character by character (the simple, one-to-one
 * mappings of the C.UTF-8 locale, used through its own locale object so
 * the process locale plays no part); invalid bytes are kept as they are. */
static void fold_case(struct agbuf *out, const char *s, size_t n, locale_t loc)
{
	const unsigned char *u = (const unsigned char *)s;
	agbuf_reserve(out, n);
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t k;
		if (u[i] < 0x80) {
			/* ASCII runs through a small buffer, not byte by byte */
			char run[256];
			size_t r = 0;
			while (i < n && u[i] < 0x80 && r < sizeof(run))
				run[r++] = ascii_lower(s[i++]);
			agbuf_append(out, run, r);
			continue;
		}
		if (loc == (locale_t)0 || (k = utf8_decode(u + i, n - i, &cp)) == 0) {
			agbuf_putc(out, ascii_lower(s[i]));
			i++;
			continue;
		}
		wint_t low = towlower_l((wint_t)cp, loc);
		utf8_put(out, (low > 0 && (uint32_t)low <= 0x10ffff) ? (uint32_t)low : cp);
		i += k;
	}
}

/* The C.UTF-8 locale object folding uses, made once per process: a
 * newlocale per comparison cost more than the comparison. Read-only once
 * made, so every thread may use it; (locale_t)0 where it does not exist
 * (then only ASCII is folded). */
ONCE_VALUE(static, locale_t, fold_locale, newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0))

void search_fold(struct agbuf *out, const char *text, size_t len)
{
	fold_case(out, text, len, fold_locale());
}

void search_decode_header_value(struct agbuf *out, const char *value, size_t len)
{
	decode_header_value(out, value, len);
}

/* Substring test after case folding of both sides. */
static int contains_nocase(const char *hay, size_t hlen, const char *needle)
{
	size_t nlen = strlen(needle);
	if (nlen == 0)
		return 1;
	struct agbuf h = AGBUF_INIT, nd = AGBUF_INIT;
	search_fold(&h, hay, hlen);
	search_fold(&nd, needle, nlen);
	int found = nd.len <= h.len && memmem(h.data, h.len, nd.data, nd.len) != NULL;
	agbuf_free(&h);
	agbuf_free(&nd);
	return found;
}

static int header_block_matches(const char *data, size_t len, const struct mime_part *p,
				const char *field, const char *needle)
{
	struct mime_header_iter it;
	struct mime_header_field f;
	int found = 0;
	if (p->body_offset > len)
		return 0;
	if (data == NULL)
		return 0;
	/* "from" SEARCH_FIELD_ADDRESS etc.: the fields in another form */
	size_t field_len = 0;
	enum search_form form = field ? search_field_form(field, strlen(field), &field_len) : SEARCH_FORM_TEXT;
	mime_header_iter_init(&it, data, (size_t)p->hdr_offset, (size_t)p->body_offset);
	while (!found && mime_header_next(&it, &f)) {
		if (field == NULL || (field_len == f.name_len && strncasecmp(field, f.name, f.name_len) == 0)) {
			struct agbuf dec = AGBUF_INIT;
			agbuf_reserve(&dec, f.value_len);
			if (field == NULL) {
				agbuf_append(&dec, f.name, f.name_len);
				agbuf_puts(&dec, ": ");
			}
			if (form != SEARCH_FORM_TEXT)
				search_field_decode(&dec, form, f.value, f.value_len);
			else
				decode_header_value(&dec, f.value, f.value_len);
			found = contains_nocase(dec.data, dec.len, needle);
			agbuf_free(&dec);
		}
		free(f.value);
	}
	return found;
}

int search_match_header(const struct mime_message *msg, const char *data, size_t len,
			const char *field, const char *needle)
{
	return header_block_matches(data, len, msg->root, field, needle);
}

static const char *param_value(const struct mime_part *p, const char *name)
{
	for (size_t i = 0; i < p->nparams; i++)
		if (strcasecmp(p->params[i].name, name) == 0)
			return p->params[i].value;
	return NULL;
}

/* Searches the decoded text of every text leaf under `p`. */
static int body_matches(const struct mime_part *p, const char *data, size_t len, const char *needle)
{
	if (p->flags & (MIME_PART_MULTIPART | MIME_PART_RFC822)) {
		for (const struct mime_part *c = p->children; c; c = c->next) {
			if ((p->flags & MIME_PART_RFC822) && header_block_matches(data, len, c, NULL, needle))
				return 1;
			if (body_matches(c, data, len, needle))
				return 1;
		}
		return 0;
	}
	if (p->type != NULL && strcasecmp(p->type, "text") != 0)
		return 0;
	if (p->end_offset > len || data == NULL)
		return 0;
	const char *body = data + p->body_offset;
	size_t blen = (size_t)(p->end_offset - p->body_offset);
	struct agbuf raw = AGBUF_INIT, utf8 = AGBUF_INIT;
	agbuf_reserve(&raw, 1);
	agbuf_reserve(&utf8, 1);
	if (p->encoding && strcasecmp(p->encoding, "base64") == 0)
		mime_decode_base64(&raw, body, blen);
	else if (p->encoding && strcasecmp(p->encoding, "quoted-printable") == 0)
		mime_decode_qp(&raw, body, blen, 0);
	else
		agbuf_append(&raw, body, blen);
	mime_charset_to_utf8(&utf8, param_value(p, "charset"), raw.data, raw.len);
	int found = contains_nocase(utf8.data, utf8.len, needle);
	agbuf_free(&raw);
	agbuf_free(&utf8);
	return found;
}

int search_match_body(const struct mime_message *msg, const char *data, size_t len, const char *needle)
{
	return body_matches(msg->root, data, len, needle);
}

int search_match_text(const struct mime_message *msg, const char *data, size_t len, const char *needle)
{
	return header_block_matches(data, len, msg->root, NULL, needle) ||
	       body_matches(msg->root, data, len, needle);
}

/* ---- dates -------------------------------------------------------------- */

int64_t search_internal_day(time_t when, int zone_minutes)
{
	int64_t t = (int64_t)when + (int64_t)zone_minutes * 60;
	return t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
}

/* Skips blanks and (comments). */
static const char *skip_cfws(const char *p, const char *end)
{
	int depth = 0;
	while (p < end) {
		if (*p == '(')
			depth++;
		else if (*p == ')' && depth > 0)
			depth--;
		else if (depth == 0 && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
			break;
		p++;
	}
	return p;
}

int search_parse_date(const char *value, size_t len, int64_t *day)
{
	const char *p = value, *end = value + len;
	p = skip_cfws(p, end);
	/* optional day-of-week followed by a comma */
	if (p < end && isalpha((unsigned char)*p)) {
		const char *w = p;
		while (p < end && isalpha((unsigned char)*p))
			p++;
		p = skip_cfws(p, end);
		if (p < end && *p == ',')
			p = skip_cfws(p + 1, end);
		else
			p = w;
	}
	if (p >= end || !isdigit((unsigned char)*p))
		return -1;
	unsigned mday = 0;
	while (p < end && isdigit((unsigned char)*p) && mday < 100)
		mday = mday * 10 + (unsigned)(*p++ - '0');
	p = skip_cfws(p, end);
	if (end - p < 3)
		return -1;
	int month = imap_month_parse(p);
	if (month == 0)
		return -1;
	p += 3;
	while (p < end && isalpha((unsigned char)*p))
		p++; /* "March" */
	p = skip_cfws(p, end);
	if (p >= end || !isdigit((unsigned char)*p))
		return -1;
	int64_t year = 0;
	int digits = 0;
	while (p < end && isdigit((unsigned char)*p) && digits < 9) {
		year = year * 10 + (*p++ - '0');
		digits++;
	}
	/* obs-year: two digits are 19xx from 50 on, else 20xx; three are +1900 */
	if (digits == 2)
		year += year < 50 ? 2000 : 1900;
	else if (digits == 3)
		year += 1900;
	if (mday < 1 || mday > 31)
		return -1;
	*day = imap_days_from_civil(year, (unsigned)month, mday);
	return 0;
}

int search_sent_date(const struct mime_message *msg, const char *data, size_t len, int64_t *day)
{
	(void)data;
	(void)len;
	const struct mime_envelope *env = msg->root->envelope;
	if (env == NULL || env->raw[MIME_ENV_DATE] == NULL)
		return -1;
	return search_parse_date(env->raw[MIME_ENV_DATE], strlen(env->raw[MIME_ENV_DATE]), day);
}

int search_larger(const struct mime_message *msg, uint64_t n)
{
	return msg->vsize > n;
}

int search_smaller(const struct mime_message *msg, uint64_t n)
{
	return msg->vsize < n;
}
