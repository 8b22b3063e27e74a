/* mime_rfc822.c - RFC 822/5322 tokens and MIME parameters (RFC 2045, 2231). */
#include "protocol/mime_rfc822.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "protocol/mime.h"

/* atext of RFC 5322, plus every 8-bit byte (raw UTF-8 or Latin-1 names in
 * headers are common and must survive as they are). */
static int is_atext(unsigned char ch)
{
	if (ch >= 0x80)
		return 1;
	if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
		return 1;
	return ch != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL;
}

/* MIME token characters: not SPACE, not CTL, not a tspecial. */
static int is_token(unsigned char ch)
{
	if (ch <= 0x20 || ch == 0x7f)
		return 0;
	return strchr("()<>@,;:\\\"/[]?=", ch) == NULL;
}

void rfc822_init(struct rfc822_cursor *c, const char *data, size_t len, struct agbuf *last_comment)
{
	c->p = (const unsigned char *)data;
	c->end = c->p + len;
	c->last_comment = last_comment;
}

static int skip_comment(struct rfc822_cursor *c)
{
	int depth = 1;
	if (c->last_comment)
		agbuf_reset(c->last_comment);
	for (c->p++; c->p < c->end; c->p++) {
		unsigned char ch = *c->p;
		if (ch == '(') {
			depth++;
		} else if (ch == ')') {
			if (--depth == 0) {
				c->p++;
				return 1;
			}
		} else if (ch == '\\') {
			if (++c->p >= c->end)
				return -1;
			ch = *c->p;
		} else if (ch == '\r' || ch == '\n') {
			continue;
		}
		if (c->last_comment)
			agbuf_putc(c->last_comment, (char)ch);
	}
	return -1;
}

int rfc822_skip_lwsp(struct rfc822_cursor *c)
{
	while (c->p < c->end) {
		unsigned char ch = *c->p;
		if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
			c->p++;
		} else if (ch == '(') {
			if (skip_comment(c) < 0)
				return -1;
		} else {
			break;
		}
	}
	return c->p < c->end ? 1 : 0;
}

/* Appends the run of `in_run` characters at the cursor and skips what
 * follows it as rfc822_skip_lwsp does. An empty run is -1 when `need_one`
 * (nothing appended then). */
static int parse_run(struct rfc822_cursor *c, struct agbuf *out, int (*in_run)(unsigned char), int need_one)
{
	const unsigned char *start = c->p;
	while (c->p < c->end && in_run(*c->p))
		c->p++;
	if (need_one && c->p == start)
		return -1;
	agbuf_append(out, start, (size_t)(c->p - start));
	return rfc822_skip_lwsp(c);
}

int rfc822_parse_atom(struct rfc822_cursor *c, struct agbuf *out)
{
	return parse_run(c, out, is_atext, 1);
}

int rfc822_parse_dot_atom(struct rfc822_cursor *c, struct agbuf *out)
{
	int ret;
	for (;;) {
		if ((ret = rfc822_parse_atom(c, out)) <= 0)
			return ret;
		if (*c->p != '.')
			return 1;
		agbuf_putc(out, '.');
		c->p++;
		if ((ret = rfc822_skip_lwsp(c)) <= 0)
			return ret;
	}
}

/* Words of a phrase may contain dots (obs-phrase). */
static int is_atext_or_dot(unsigned char ch)
{
	return is_atext(ch) || ch == '.';
}

/* The text of a quoted string or a domain literal, from the cursor to the
 * byte `close`: line ends are dropped and a backslash takes the next byte
 * as it is. With `keep_close` (a domain literal) the closing ']' is kept,
 * as the '[' before it, and an escaped one closes too; a quoted string
 * ends only at a '"' that is not escaped, which is not kept. */
static int parse_quoted(struct rfc822_cursor *c, struct agbuf *out, unsigned char close, int keep_close)
{
	for (; c->p < c->end; c->p++) {
		unsigned char ch = *c->p;
		if (ch == close && !keep_close) {
			c->p++;
			return rfc822_skip_lwsp(c);
		}
		if (ch == '\r' || ch == '\n')
			continue;
		if (ch == '\\') {
			if (++c->p >= c->end)
				return -1;
			ch = *c->p;
		}
		agbuf_putc(out, (char)ch);
		if (ch == close && keep_close) {
			c->p++;
			return rfc822_skip_lwsp(c);
		}
	}
	return -1;
}

int rfc822_parse_quoted_string(struct rfc822_cursor *c, struct agbuf *out)
{
	c->p++; /* the opening '"' */
	return parse_quoted(c, out, '"', 0);
}

int rfc822_parse_phrase(struct rfc822_cursor *c, struct agbuf *out)
{
	int ret;
	if (c->p >= c->end)
		return 0;
	if (*c->p == '.')
		return -1;
	for (;;) {
		if (*c->p == '"')
			ret = rfc822_parse_quoted_string(c, out);
		else
			ret = parse_run(c, out, is_atext_or_dot, 1);
		if (ret <= 0)
			return ret;
		if (!is_atext(*c->p) && *c->p != '"' && *c->p != '.')
			break;
		agbuf_putc(out, ' ');
	}
	return rfc822_skip_lwsp(c);
}

int rfc822_parse_domain(struct rfc822_cursor *c, struct agbuf *out)
{
	int ret;
	c->p++; /* the '@' */
	if ((ret = rfc822_skip_lwsp(c)) <= 0)
		return -1;
	if (*c->p != '[')
		return rfc822_parse_dot_atom(c, out);
	return parse_quoted(c, out, ']', 1);
}

int rfc822_parse_mime_token(struct rfc822_cursor *c, struct agbuf *out)
{
	return parse_run(c, out, is_token, 0);
}

int rfc822_parse_content_type(struct rfc822_cursor *c, struct agbuf *out)
{
	if (rfc822_skip_lwsp(c) <= 0)
		return -1;
	if (rfc822_parse_mime_token(c, out) <= 0)
		return -1;
	if (*c->p != '/')
		return -1;
	c->p++;
	if (rfc822_skip_lwsp(c) <= 0)
		return -1;
	agbuf_putc(out, '/');
	return rfc822_parse_mime_token(c, out);
}

/* One ";" key "=" value; 1 with key and value set (malloc'd), 0 at the end,
 * -1 when broken (and then nothing is set). */
static int parse_param(struct rfc822_cursor *c, char **key, char **value)
{
	struct agbuf k = AGBUF_INIT, v = AGBUF_INIT;
	int ret;
	*key = *value = NULL;
	if (c->p >= c->end)
		return 0;
	if (*c->p != ';')
		return -1;
	c->p++;
	if (rfc822_skip_lwsp(c) <= 0)
		return -1;
	if (rfc822_parse_mime_token(c, &k) <= 0 || *c->p != '=') {
		agbuf_free(&k);
		return -1;
	}
	c->p++;
	agbuf_reserve(&v, 1);
	if ((ret = rfc822_skip_lwsp(c)) <= 0) {
		/* key= with nothing after it: an empty value */
	} else if (*c->p == '"') {
		ret = rfc822_parse_quoted_string(c, &v);
	} else if (*c->p == '=') {
		/* unquoted encoded word (name==?utf-8?...): take it as it is */
		const unsigned char *start = c->p;
		while (c->p < c->end && *c->p != ';' && *c->p != ' ' && *c->p != '\t' &&
		       *c->p != '\r' && *c->p != '\n')
			c->p++;
		agbuf_append(&v, start, (size_t)(c->p - start));
	} else {
		ret = rfc822_parse_mime_token(c, &v);
	}
	if (ret < 0) {
		agbuf_free(&k);
		agbuf_free(&v);
		return -1;
	}
	*key = agbuf_steal(&k, NULL);
	*value = agbuf_steal(&v, NULL);
	return 1;
}

struct ext_param {
	char *base;  /* name without "*N*" */
	unsigned idx;
	int has_idx;
	int encoded; /* ends with '*' */
	char *value;
	size_t order;
};

static int ext_cmp(const void *a, const void *b)
{
	const struct ext_param *x = a, *y = b;
	int r = strcmp(x->base, y->base);
	if (r != 0)
		return r;
	if (x->idx != y->idx)
		return x->idx < y->idx ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static void push_param(struct mime_arena *arena, struct mime_param **params, size_t *count,
		       size_t *cap, const char *name, size_t name_len, const char *value, size_t value_len)
{
	if (*count == *cap) {
		size_t ncap = *cap ? *cap * 2 : 4;
		struct mime_param *n = mime_arena_alloc(arena, ncap * sizeof(*n));
		if (*count)
			memcpy(n, *params, *count * sizeof(*n));
		*params = n;
		*cap = ncap;
	}
	(*params)[*count].name = mime_arena_strndup(arena, name, name_len);
	(*params)[*count].value = mime_arena_strndup(arena, value, value_len);
	(*count)++;
}

void rfc2231_parse(struct rfc822_cursor *c, struct mime_arena *arena,
		   struct mime_param **params, size_t *count)
{
	size_t cap = 0, next = 0, ecap = 0;
	struct ext_param *ext = NULL;
	char *key, *value;
	*params = NULL;
	*count = 0;
	for (;;) {
		int pr = parse_param(c, &key, &value);
		if (pr == 0)
			break;
		if (pr < 0) {
			/* a broken parameter: go on with the next ";" */
			while (c->p < c->end && *c->p != ';')
				c->p++;
			if (c->p >= c->end)
				break;
			continue;
		}
		char *star = strchr(key, '*');
		struct ext_param e = { 0 };
		int is_ext = 0;
		if (star != NULL) {
			char *q = star + 1;
			if (*q == '\0') {
				is_ext = 1;
				e.encoded = 1;
			} else if (*q >= '0' && *q <= '9') {
				unsigned long n = 0;
				while (*q >= '0' && *q <= '9' && n < 100000)
					n = n * 10 + (unsigned)(*q++ - '0');
				if (*q == '\0' || (*q == '*' && q[1] == '\0')) {
					is_ext = 1;
					e.has_idx = 1;
					e.idx = (unsigned)n;
					e.encoded = *q == '*';
				}
			}
		}
		if (!is_ext) {
			push_param(arena, params, count, &cap, key, strlen(key), value, strlen(value));
			free(key);
			free(value);
			continue;
		}
		*star = '\0';
		e.base = key;
		e.value = value;
		e.order = next;
		struct ext_param *n = ag_array_room(ext, next, &ecap, sizeof(*n), 4);
		if (n == NULL)
			abort();
		ext = n;
		ext[next++] = e;
	}
	if (next == 0) {
		free(ext);
		return;
	}
	qsort(ext, next, sizeof(*ext), ext_cmp);
	for (size_t i = 0; i < next;) {
		size_t j = i + 1;
		while (j < next && strcasecmp(ext[j].base, ext[i].base) == 0)
			j++;
		/* A run key*0, key*1... with no gap is joined into one value;
		 * anything else is reported parameter by parameter. */
		int contiguous = 1, encoded = 0;
		for (size_t k = i; k < j; k++) {
			if (!ext[k].has_idx ? (j - i != 1) : ext[k].idx != k - i)
				contiguous = 0;
			encoded |= ext[k].encoded;
		}
		if (contiguous) {
			struct agbuf name = AGBUF_INIT, val = AGBUF_INIT;
			agbuf_puts(&name, ext[i].base);
			if (encoded)
				agbuf_putc(&name, '*');
			agbuf_reserve(&val, 1);
			for (size_t k = i; k < j; k++)
				agbuf_puts(&val, ext[k].value);
			push_param(arena, params, count, &cap, name.data, name.len, val.data, val.len);
			agbuf_free(&name);
			agbuf_free(&val);
		} else {
			for (size_t k = i; k < j; k++) {
				struct agbuf name = AGBUF_INIT;
				agbuf_puts(&name, ext[k].base);
				if (ext[k].has_idx)
					agbuf_printf(&name, "*%u", ext[k].idx);
				if (ext[k].encoded)
					agbuf_putc(&name, '*');
				push_param(arena, params, count, &cap, name.data, name.len,
					   ext[k].value, strlen(ext[k].value));
				agbuf_free(&name);
			}
		}
		i = j;
	}
	for (size_t k = 0; k < next; k++) {
		free(ext[k].base);
		free(ext[k].value);
	}
	free(ext);
}
