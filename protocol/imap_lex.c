/* imap_lex.c - the tokens of RFC 3501 section 9 (atoms, strings, literals,
 * numbers, sequence sets, flags, dates) over a buffered command, and the
 * arena a parsed command lives in. */
#include "protocol/imap_parse_int.h"
#include "protocol/imap_date.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- arena ---- */

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;
	_Alignas(16) unsigned char bytes[];
};

struct imap_arena {
	struct arena_chunk *head;
};

#define ARENA_CHUNK 4096

struct imap_arena *imap_arena_new(void)
{
	return calloc(1, sizeof(struct imap_arena));
}

void imap_arena_free(struct imap_arena *a)
{
	if (a == NULL)
		return;
	struct arena_chunk *c = a->head;
	while (c != NULL) {
		struct arena_chunk *next = c->next;
		free(c);
		c = next;
	}
	free(a);
}

void *imap_arena_calloc(struct imap_arena *a, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size / 2)
		return NULL;
	size_t bytes = (n * size + 15) & ~(size_t)15;
	if (bytes == 0)
		bytes = 16;
	struct arena_chunk *c = a->head;
	if (c == NULL || c->cap - c->used < bytes) {
		size_t cap = bytes > ARENA_CHUNK ? bytes : ARENA_CHUNK;
		c = malloc(sizeof(*c) + cap);
		if (c == NULL)
			abort(); /* out of memory, as agbuf does */
		c->used = 0;
		c->cap = cap;
		c->next = a->head;
		a->head = c;
	}
	void *p = c->bytes + c->used;
	c->used += bytes;
	memset(p, 0, bytes);
	return p;
}

void *imap_arena_grow(struct imap_arena *a, void *array, size_t count, size_t size)
{
	/* full at 4, 8, 16...: the powers of two from 4 */
	if (count != 0 && (count < 4 || (count & (count - 1)) != 0))
		return array;
	void *p = imap_arena_calloc(a, count ? count * 2 : 4, size);
	if (count > 0)
		memcpy(p, array, count * size);
	return p;
}

bool imap_push_str(struct imap_gram *g, struct imap_str **array, size_t *count,
		   bool (*read)(struct imap_gram *g, struct imap_str *out, const char *what), const char *what)
{
	IMAP_GROW(g, *array, *count);
	if (!read(g, &(*array)[*count], what))
		return false;
	(*count)++;
	return true;
}

char *imap_arena_strdup(struct imap_arena *a, const char *s, size_t len)
{
	char *p = imap_arena_calloc(a, len + 1, 1);
	if (p != NULL && len > 0)
		memcpy(p, s, len);
	return p;
}

/* ---- cursor ---- */

bool imap_fail(struct imap_gram *g, const char *fmt, ...)
{
	if (!g->failed) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(g->error, sizeof(g->error), fmt, ap);
		va_end(ap);
		g->failed = true;
	}
	return false;
}

int imap_peek(const struct imap_gram *g)
{
	return g->pos < g->len ? (unsigned char)g->buf[g->pos] : -1;
}

bool imap_at_eol(const struct imap_gram *g)
{
	return imap_peek(g) == '\n';
}

bool imap_sp(struct imap_gram *g, const char *what)
{
	if (imap_peek(g) == ' ') {
		g->pos++;
		return true;
	}
	if (imap_at_eol(g))
		return imap_fail(g, "Missing argument: %s", what);
	return imap_fail(g, "Expected a space before %s", what);
}

bool imap_eol(struct imap_gram *g)
{
	if (imap_at_eol(g) && g->pos + 1 == g->len) {
		g->pos++;
		return true;
	}
	if (imap_peek(g) == ' ')
		return imap_fail(g, "Unexpected extra arguments");
	if (imap_peek(g) == '\r')
		return imap_fail(g, "Bare CR in command");
	return imap_fail(g, "Unexpected characters after the last argument");
}

bool imap_expect(struct imap_gram *g, int c, const char *error)
{
	if (imap_peek(g) != c)
		return imap_fail(g, "%s", error);
	g->pos++;
	return true;
}

bool imap_is_atom_char(int c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	return strchr("(){%*\"\\]", c) == NULL;
}

static bool atom_ext_char(int c, bool bracket, bool wildcards)
{
	if (imap_is_atom_char(c))
		return true;
	if (bracket && c == ']')
		return true;
	return wildcards && (c == '*' || c == '%');
}

size_t imap_atom_len_at(const struct imap_gram *g)
{
	size_t n = 0;
	while (g->pos + n < g->len && imap_is_atom_char((unsigned char)g->buf[g->pos + n]))
		n++;
	return n;
}

int imap_lookup(const struct imap_gram *g, size_t n, const void *table, size_t count, size_t size)
{
	for (size_t i = 0; i < count; i++) {
		const char *name = *(const char *const *)(const void *)((const char *)table + i * size);
		if (strlen(name) == n && strncasecmp(g->buf + g->pos, name, n) == 0)
			return (int)i;
	}
	return -1;
}

bool imap_paren_list(struct imap_gram *g, const char *what, const char *unclosed, bool loose,
		     bool (*item)(struct imap_gram *g, void *arg), void *arg)
{
	if (imap_peek(g) != '(')
		return imap_fail(g, "Missing '(' before the %s", what);
	g->pos++;
	while (!loose || imap_peek(g) != ')') {
		if (!item(g, arg))
			return false;
		if (imap_peek(g) == ')')
			break;
		if (imap_peek(g) != ' ') {
			if (unclosed != NULL)
				return imap_fail(g, "%s", unclosed);
			return imap_fail(g, "Missing ')' at the end of the %s", what);
		}
		g->pos++;
	}
	g->pos++;
	return true;
}

bool imap_atom_ext(struct imap_gram *g, struct imap_str *out, const char *what, bool bracket, bool wildcards)
{
	size_t start = g->pos;
	while (g->pos < g->len && atom_ext_char((unsigned char)g->buf[g->pos], bracket, wildcards))
		g->pos++;
	if (g->pos == start) {
		if (imap_at_eol(g))
			return imap_fail(g, "Missing argument: %s", what);
		return imap_fail(g, "Invalid characters in %s", what);
	}
	/* 8-bit bytes, controls or quotes glued to an atom are part of what
	 * the client meant as this argument: say so rather than "extra
	 * characters" later. */
	int c = imap_peek(g);
	if (c != '\n' && (c >= 0x80 || (c >= 0 && c < 0x20) || c == 0x7f || c == '"' || c == '\\'))
		return imap_fail(g, "Invalid characters in %s", what);
	out->len = g->pos - start;
	out->data = imap_arena_strdup(g->arena, g->buf + start, out->len);
	return true;
}

bool imap_atom(struct imap_gram *g, struct imap_str *out, const char *what)
{
	return imap_atom_ext(g, out, what, false, false);
}

bool imap_keyword(struct imap_gram *g, const char *word)
{
	size_t n = strlen(word);
	if (g->len - g->pos < n || strncasecmp(g->buf + g->pos, word, n) != 0)
		return false;
	if (g->pos + n < g->len && imap_is_atom_char((unsigned char)g->buf[g->pos + n]))
		return false;
	g->pos += n;
	return true;
}

static bool quoted(struct imap_gram *g, struct imap_str *out, const char *what)
{
	g->pos++; /* the opening quote */
	size_t start = g->pos, escapes = 0;
	for (;;) {
		int c = imap_peek(g);
		if (c == '"')
			break;
		if (c == -1 || c == '\n')
			return imap_fail(g, "Missing '\"' at the end of %s", what);
		if (c == '\r' || c == '\0')
			return imap_fail(g, "Invalid character in quoted %s", what);
		if (c == '\\') {
			int next = g->pos + 1 < g->len ? (unsigned char)g->buf[g->pos + 1] : -1;
			if (next != '"' && next != '\\')
				return imap_fail(g, "Invalid '\\' escape in quoted %s", what);
			escapes++;
			g->pos++;
		}
		g->pos++;
	}
	size_t raw_len = g->pos - start;
	g->pos++; /* the closing quote */
	char *s = imap_arena_calloc(g->arena, raw_len - escapes + 1, 1);
	size_t n = 0;
	for (size_t i = start; i < start + raw_len; i++) {
		if (g->buf[i] == '\\')
			i++;
		s[n++] = g->buf[i];
	}
	out->data = s;
	out->len = n;
	return true;
}

/* "{n}\n" or "{n+}\n" then the bytes, looked up in the literal table. */
static bool literal(struct imap_gram *g, struct imap_str *out, const char *what)
{
	g->pos++; /* '{' */
	uint64_t size = 0;
	size_t digits = 0;
	while (imap_peek(g) >= '0' && imap_peek(g) <= '9') {
		if (size > (UINT64_MAX - 9) / 10)
			return imap_fail(g, "Literal size too large in %s", what);
		size = size * 10 + (uint64_t)(imap_peek(g) - '0');
		g->pos++;
		digits++;
	}
	if (digits == 0)
		return imap_fail(g, "Invalid literal size in %s", what);
	if (imap_peek(g) == '+')
		g->pos++;
	if (imap_peek(g) != '}')
		return imap_fail(g, "Missing '}' in literal size of %s", what);
	g->pos++;
	if (!imap_at_eol(g))
		return imap_fail(g, "A literal size must end the line (%s)", what);
	g->pos++;
	if (g->lit_next >= g->lit_count || g->lits[g->lit_next].data_offset != g->pos ||
	    g->lits[g->lit_next].size != size)
		return imap_fail(g, "Invalid literal in %s", what);
	const struct imap_lit *lit = &g->lits[g->lit_next++];
	switch (lit->state) {
	case IMAP_LIT_PENDING:
		g->need_literal = true;
		g->literal_is_message = g->in_message;
		g->failed = true;
		return false;
	case IMAP_LIT_STREAMED:
		if (!g->in_message)
			return imap_fail(g, "Invalid literal in %s", what);
		out->data = NULL;
		out->len = (size_t)size;
		return true;
	case IMAP_LIT_INLINE:
		break;
	}
	if (g->in_message)
		return imap_fail(g, "Invalid literal in %s", what);
	if (size > g->len - g->pos)
		return imap_fail(g, "Invalid literal in %s", what);
	/* CHAR8 excludes NUL (RFC 3501 9): names, passwords and search strings
	 * become C strings, which a NUL would cut short ("zz\0yy" is "zz"). */
	if (memchr(g->buf + g->pos, '\0', (size_t)size) != NULL)
		return imap_fail(g, "Invalid character (NUL) in literal %s", what);
	out->len = (size_t)size;
	out->data = imap_arena_strdup(g->arena, g->buf + g->pos, out->len);
	g->pos += out->len;
	return true;
}

bool imap_string(struct imap_gram *g, struct imap_str *out, const char *what)
{
	int c = imap_peek(g);
	if (c == '"')
		return quoted(g, out, what);
	if (c == '{')
		return literal(g, out, what);
	if (c == '\n' || c == -1)
		return imap_fail(g, "Missing argument: %s", what);
	return imap_fail(g, "Expected a quoted string or a literal for %s", what);
}

bool imap_astring(struct imap_gram *g, struct imap_str *out, const char *what)
{
	int c = imap_peek(g);
	if (c == '"' || c == '{')
		return imap_string(g, out, what);
	return imap_atom_ext(g, out, what, true, false);
}

bool imap_nstring(struct imap_gram *g, struct imap_str *out, const char *what)
{
	if (imap_keyword(g, "NIL")) {
		out->data = NULL;
		out->len = 0;
		return true;
	}
	return imap_string(g, out, what);
}

bool imap_number64(struct imap_gram *g, uint64_t *out, const char *what)
{
	uint64_t v = 0;
	size_t digits = 0;
	while (imap_peek(g) >= '0' && imap_peek(g) <= '9') {
		unsigned d = (unsigned)(imap_peek(g) - '0');
		if (v > (UINT64_MAX - d) / 10)
			return imap_fail(g, "Number too large in %s", what);
		v = v * 10 + d;
		g->pos++;
		digits++;
	}
	if (digits == 0) {
		if (imap_at_eol(g))
			return imap_fail(g, "Missing argument: %s", what);
		return imap_fail(g, "Expected a number for %s", what);
	}
	*out = v;
	return true;
}

bool imap_number(struct imap_gram *g, uint32_t *out, const char *what)
{
	uint64_t v;
	if (!imap_number64(g, &v, what))
		return false;
	if (v > UINT32_MAX)
		return imap_fail(g, "Number too large in %s", what);
	*out = (uint32_t)v;
	return true;
}

bool imap_nz_number(struct imap_gram *g, uint32_t *out, const char *what)
{
	if (!imap_number(g, out, what))
		return false;
	if (*out == 0)
		return imap_fail(g, "Zero is not allowed in %s", what);
	return true;
}

/* seq-number: nz-number or '*'; returns false without a message. */
static bool seq_number(struct imap_gram *g, uint32_t *out)
{
	if (imap_peek(g) == '*') {
		g->pos++;
		*out = IMAP_SEQ_STAR;
		return true;
	}
	uint64_t v = 0;
	size_t digits = 0;
	while (imap_peek(g) >= '0' && imap_peek(g) <= '9') {
		v = v * 10 + (uint64_t)(imap_peek(g) - '0');
		if (v > UINT32_MAX)
			return false;
		g->pos++;
		digits++;
	}
	if (digits == 0 || v == 0)
		return false;
	*out = (uint32_t)v;
	return true;
}

bool imap_seqset(struct imap_gram *g, struct imap_seqset *out)
{
	if (imap_at_eol(g))
		return imap_fail(g, "Missing argument: sequence set");
	if (imap_peek(g) == '$') {
		/* RFC 5182: the saved search result, only as the whole set */
		g->pos++;
		if (imap_is_atom_char(imap_peek(g)) || imap_peek(g) == '*')
			return imap_fail(g, "Invalid sequence set");
		out->count = 0;
		out->ranges = NULL;
		out->saved = true;
		return true;
	}
	/* Count the ranges first so the array is allocated once. */
	size_t count = 1;
	for (size_t i = g->pos; i < g->len && g->buf[i] != ' ' && g->buf[i] != '\n' && g->buf[i] != ')'; i++)
		if (g->buf[i] == ',')
			count++;
	struct imap_seqrange *r = imap_arena_calloc(g->arena, count, sizeof(*r));
	if (r == NULL)
		return imap_fail(g, "Invalid sequence set");
	size_t n = 0;
	for (;;) {
		if (n == count || !seq_number(g, &r[n].first))
			return imap_fail(g, "Invalid sequence set");
		r[n].last = r[n].first;
		if (imap_peek(g) == ':') {
			g->pos++;
			if (!seq_number(g, &r[n].last))
				return imap_fail(g, "Invalid sequence set");
		}
		n++;
		if (imap_peek(g) != ',')
			break;
		g->pos++;
	}
	if (imap_is_atom_char(imap_peek(g)) || imap_peek(g) == '*')
		return imap_fail(g, "Invalid sequence set");
	out->count = n;
	out->ranges = r;
	out->saved = false;
	return true;
}

int imap_mailbox_is_inbox(const char *name, size_t len)
{
	return len == 5 && strncasecmp(name, "INBOX", 5) == 0;
}

bool imap_mailbox(struct imap_gram *g, struct imap_mailbox *out)
{
	if (!imap_astring(g, &out->raw, "mailbox name"))
		return false;
	if (imap_mailbox_is_inbox(out->raw.data, out->raw.len)) {
		out->name.data = "INBOX";
		out->name.len = 5;
	} else {
		out->name = out->raw;
	}
	return true;
}

bool imap_flag(struct imap_gram *g, struct imap_str *out, bool allow_recent)
{
	size_t start = g->pos;
	if (imap_peek(g) == '\\')
		g->pos++;
	size_t n = imap_atom_len_at(g);
	if (n == 0) {
		g->pos = start;
		if (imap_at_eol(g))
			return imap_fail(g, "Missing argument: flag");
		return imap_fail(g, "Invalid flag");
	}
	g->pos += n;
	out->len = g->pos - start;
	out->data = imap_arena_strdup(g->arena, g->buf + start, out->len);
	if (!allow_recent && out->len == 7 && strcasecmp(out->data, "\\Recent") == 0)
		return imap_fail(g, "\\Recent cannot be set by a client");
	return true;
}

bool imap_flag_list(struct imap_gram *g, struct imap_flags *out, bool allow_recent)
{
	bool paren = imap_peek(g) == '(';
	if (paren)
		g->pos++;
	size_t count = 0;
	for (size_t i = g->pos; i < g->len && g->buf[i] != '\n' && g->buf[i] != ')'; i++)
		if (g->buf[i] == ' ')
			count++;
	out->flags = imap_arena_calloc(g->arena, count + 1, sizeof(*out->flags));
	out->count = 0;
	if (paren && imap_peek(g) == ')') {
		g->pos++;
		return true;
	}
	for (;;) {
		if (out->count > count)
			return imap_fail(g, "Invalid flag list");
		if (!imap_flag(g, &out->flags[out->count], allow_recent))
			return false;
		out->count++;
		if (imap_peek(g) != ' ')
			break;
		if (!paren && g->pos + 1 < g->len && g->buf[g->pos + 1] == '\n')
			break;
		g->pos++;
	}
	if (paren) {
		if (imap_peek(g) != ')')
			return imap_fail(g, "Missing ')' at the end of the flag list");
		g->pos++;
	}
	return true;
}

/* ---- dates ---- */


static int days_in_month(int year, int month)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (month == 2 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
		return 29;
	return days[month - 1];
}

static bool digits_at(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static int num_at(const char *s, size_t n)
{
	int v = 0;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

/* "d-Mon-yyyy" or "dd-Mon-yyyy"; a leading space pads a one-digit day
 * only when `fixed` (date-day-fixed of date-time). */
static int parse_date_text(const char *s, size_t len, bool fixed, struct imap_date *out)
{
	size_t day_len;
	int day;
	if (len == 11 && fixed && s[0] == ' ' && digits_at(s + 1, 1)) {
		day_len = 2;
		day = s[1] - '0';
	} else if (len == 11 && digits_at(s, 2)) {
		day_len = 2;
		day = num_at(s, 2);
	} else if (len == 10 && digits_at(s, 1)) {
		day_len = 1;
		day = s[0] - '0';
	} else {
		return -1;
	}
	const char *m = s + day_len;
	if (m[0] != '-' || m[4] != '-' || !digits_at(m + 5, 4))
		return -1;
	int month = imap_month_parse(m + 1);
	int year = num_at(m + 5, 4);
	if (month == 0 || day < 1 || day > days_in_month(year, month))
		return -1;
	out->year = year;
	out->month = month;
	out->day = day;
	return 0;
}

int imap_date_parse(const char *s, size_t len, struct imap_date *out)
{
	return parse_date_text(s, len, false, out);
}

int imap_datetime_parse(const char *s, size_t len, struct imap_datetime *out)
{
	/* dd-Mon-yyyy hh:mm:ss +zzzz, the day space-padded; a one-digit day
	 * without the pad is accepted too, as clients send it. */
	size_t date_len = len == 25 ? 10 : 11;
	if ((len != 26 && len != 25) || s[date_len] != ' ' || s[date_len + 9] != ' ')
		return -1;
	if (parse_date_text(s, date_len, true, &out->date) != 0)
		return -1;
	const char *t = s + date_len + 1;
	if (!digits_at(t, 2) || t[2] != ':' || !digits_at(t + 3, 2) || t[5] != ':' || !digits_at(t + 6, 2))
		return -1;
	out->hour = num_at(t, 2);
	out->minute = num_at(t + 3, 2);
	out->second = num_at(t + 6, 2);
	if (out->hour > 23 || out->minute > 59 || out->second > 60)
		return -1;
	const char *z = t + 9;
	if ((z[0] != '+' && z[0] != '-') || !digits_at(z + 1, 4))
		return -1;
	int zh = num_at(z + 1, 2), zm = num_at(z + 3, 2);
	if (zm > 59)
		return -1;
	out->zone_minutes = (zh * 60 + zm) * (z[0] == '-' ? -1 : 1);
	return 0;
}

int64_t imap_datetime_to_unix(const struct imap_datetime *dt)
{
	int64_t days = imap_days_from_civil(dt->date.year, (unsigned)dt->date.month, (unsigned)dt->date.day);
	return days * 86400 + dt->hour * 3600 + dt->minute * 60 + dt->second - (int64_t)dt->zone_minutes * 60;
}

bool imap_search_date(struct imap_gram *g, struct imap_date *out)
{
	size_t start = g->pos, end;
	bool q = imap_peek(g) == '"';
	if (q) {
		start++;
		end = start;
		while (end < g->len && g->buf[end] != '"' && g->buf[end] != '\n')
			end++;
		if (end >= g->len || g->buf[end] != '"')
			return imap_fail(g, "Invalid date");
		g->pos = end + 1;
	} else {
		end = start + imap_atom_len_at(g);
		g->pos = end;
	}
	if (end == start && imap_at_eol(g))
		return imap_fail(g, "Missing argument: date");
	if (imap_date_parse(g->buf + start, end - start, out) != 0)
		return imap_fail(g, "Invalid date");
	return true;
}

bool imap_date_time(struct imap_gram *g, struct imap_datetime *out)
{
	if (imap_peek(g) != '"')
		return imap_fail(g, "Invalid date-time");
	size_t start = g->pos + 1, end = start;
	while (end < g->len && g->buf[end] != '"' && g->buf[end] != '\n')
		end++;
	if (end >= g->len || g->buf[end] != '"')
		return imap_fail(g, "Invalid date-time");
	if (imap_datetime_parse(g->buf + start, end - start, out) != 0)
		return imap_fail(g, "Invalid date-time");
	g->pos = end + 1;
	return true;
}

/* ---- sequence sets and STATUS items (shared by several commands) ---- */

void imap_seqrange_bounds(const struct imap_seqrange *r, uint32_t star, uint32_t *lo, uint32_t *hi)
{
	uint32_t a = r->first == IMAP_SEQ_STAR ? star : r->first;
	uint32_t b = r->last == IMAP_SEQ_STAR ? star : r->last;
	*lo = a < b ? a : b;
	*hi = a < b ? b : a;
}

int imap_seqset_contains(const struct imap_seqset *set, uint32_t n, uint32_t star)
{
	for (size_t i = 0; i < set->count; i++) {
		uint32_t a, b;
		imap_seqrange_bounds(&set->ranges[i], star, &a, &b);
		if (n >= a && n <= b)
			return 1;
	}
	return 0;
}

static const struct {
	const char *name;
	enum imap_status_item item;
} status_items[] = {
	{ "MESSAGES", IMAP_STATUS_MESSAGES },
	{ "RECENT", IMAP_STATUS_RECENT },
	{ "UIDNEXT", IMAP_STATUS_UIDNEXT },
	{ "UIDVALIDITY", IMAP_STATUS_UIDVALIDITY },
	{ "UNSEEN", IMAP_STATUS_UNSEEN },
	{ "HIGHESTMODSEQ", IMAP_STATUS_HIGHESTMODSEQ },
	{ "SIZE", IMAP_STATUS_SIZE },
	{ "DELETED", IMAP_STATUS_DELETED },
	{ "DELETED-STORAGE", IMAP_STATUS_DELETED_STORAGE },
};

/* A STATUS item list being read: the items and the room they have. */
struct status_list {
	struct imap_status_items *out;
	size_t max;
};

static bool status_item(struct imap_gram *g, void *arg)
{
	struct status_list *l = arg;
	size_t n = imap_atom_len_at(g);
	if (n == 0)
		return imap_fail(g, imap_peek(g) == ')' ? "Empty STATUS item list" : "Invalid STATUS item");
	int k = IMAP_LOOKUP(g, n, status_items);
	if (k < 0)
		return imap_fail(g, "Unknown STATUS item: %.*s", (int)(n > 40 ? 40 : n), g->buf + g->pos);
	if (l->out->count == l->max)
		return imap_fail(g, "Invalid STATUS item list");
	l->out->items[l->out->count++] = status_items[k].item;
	g->pos += n;
	return true;
}

bool imap_status_item_list(struct imap_gram *g, struct imap_status_items *out)
{
	if (imap_at_eol(g))
		return imap_fail(g, "Missing argument: STATUS items");
	/* room for one item more than the spaces after the '(' */
	struct status_list l = { out, 1 };
	for (size_t i = g->pos + 1; i < g->len && g->buf[i] != ')' && g->buf[i] != '\n'; i++)
		if (g->buf[i] == ' ')
			l.max++;
	out->items = imap_arena_calloc(g->arena, l.max, sizeof(*out->items));
	out->count = 0;
	return imap_paren_list(g, "STATUS items", NULL, false, status_item, &l);
}
