/* mime_address.c - RFC 5322 address lists (with groups and obsolete routes),
 * read with the recovery rules of Dovecot's message-address parser so that
 * ENVELOPE shows the same addresses for broken headers: missing parts become
 * MISSING_MAILBOX / MISSING_DOMAIN, a broken angle address SYNTAX_ERROR, and
 * parsing stops at the first error keeping what was read. */
#include <string.h>

#include "protocol/mime.h"
#include "protocol/mime_rfc822.h"

struct addr_parser {
	struct rfc822_cursor c;
	struct mime_arena *arena;
	struct agbuf str, comment;
	struct mime_address addr; /* the one being read */
	int invalid;
	struct mime_address *first, **tail;
};

static char *dup_buf(struct addr_parser *ap, const struct agbuf *b)
{
	return mime_arena_strndup(ap->arena, b->data ? b->data : "", b->len);
}

static void add_address(struct addr_parser *ap)
{
	struct mime_address *a = mime_arena_alloc(ap->arena, sizeof(*a));
	*a = ap->addr;
	a->next = NULL;
	*ap->tail = a;
	ap->tail = &a->next;
	memset(&ap->addr, 0, sizeof(ap->addr));
	ap->invalid = 0;
}

static void add_fixed_address(struct addr_parser *ap)
{
	if (ap->addr.mailbox == NULL)
		ap->addr.mailbox = mime_arena_strndup(ap->arena, "MISSING_MAILBOX", 15);
	if (ap->addr.domain == NULL || ap->addr.domain[0] == '\0')
		ap->addr.domain = mime_arena_strndup(ap->arena, "MISSING_DOMAIN", 14);
	add_address(ap);
}

/* `ret`, what reading a token into ap->str returned, and the token kept
 * in *field unless that failed. */
static int keep_str(struct addr_parser *ap, int ret, char **field)
{
	if (ret < 0)
		return -1;
	*field = dup_buf(ap, &ap->str);
	return ret;
}

static int parse_local_part(struct addr_parser *ap)
{
	agbuf_reset(&ap->str);
	int ret = *ap->c.p == '"' ? rfc822_parse_quoted_string(&ap->c, &ap->str)
				  : rfc822_parse_dot_atom(&ap->c, &ap->str);
	return keep_str(ap, ret, &ap->addr.mailbox);
}

static int parse_domain(struct addr_parser *ap)
{
	agbuf_reset(&ap->str);
	return keep_str(ap, rfc822_parse_domain(&ap->c, &ap->str), &ap->addr.domain);
}

/* obs-domain-list: "@" domain *("," [CFWS] "@" domain) */
static int parse_domain_list(struct addr_parser *ap)
{
	int ret;
	agbuf_reset(&ap->str);
	for (;;) {
		if (ap->c.p >= ap->c.end)
			return 0;
		if (*ap->c.p != '@')
			break;
		if (ap->str.len > 0)
			agbuf_putc(&ap->str, ',');
		agbuf_putc(&ap->str, '@');
		if ((ret = rfc822_parse_domain(&ap->c, &ap->str)) <= 0)
			return ret;
		while (rfc822_skip_lwsp(&ap->c) > 0 && *ap->c.p == ',')
			ap->c.p++;
	}
	ap->addr.route = dup_buf(ap, &ap->str);
	return 1;
}

static int parse_angle_addr(struct addr_parser *ap)
{
	ap->c.p++; /* '<' */
	if (rfc822_skip_lwsp(&ap->c) <= 0)
		return -1;
	if (*ap->c.p == '@') {
		if (parse_domain_list(ap) > 0 && *ap->c.p == ':') {
			ap->c.p++;
		} else {
			ap->addr.mailbox = mime_arena_strndup(ap->arena, "INVALID_ROUTE", 13);
			if (ap->c.p >= ap->c.end)
				return -1;
		}
		if (rfc822_skip_lwsp(&ap->c) <= 0)
			return -1;
	}
	if (*ap->c.p != '>') {
		if (parse_local_part(ap) <= 0)
			return -1;
		if (*ap->c.p == '@') {
			if (parse_domain(ap) <= 0)
				return -1;
		}
	}
	if (*ap->c.p != '>')
		return -1;
	ap->c.p++;
	return rfc822_skip_lwsp(&ap->c);
}

static int parse_name_addr(struct addr_parser *ap)
{
	agbuf_reset(&ap->str);
	if (*ap->c.p != '<') {
		if (rfc822_parse_phrase(&ap->c, &ap->str) <= 0 || *ap->c.p != '<')
			return -1;
	}
	ap->addr.name = ap->str.len ? dup_buf(ap, &ap->str) : NULL;
	if (parse_angle_addr(ap) < 0) {
		ap->addr.domain = mime_arena_strndup(ap->arena, "SYNTAX_ERROR", 12);
		ap->invalid = 1;
	}
	return ap->c.p < ap->c.end ? 1 : 0;
}

static int parse_addr_spec(struct addr_parser *ap)
{
	int ret, ret2 = -2;
	agbuf_reset(&ap->comment);
	int quoted = *ap->c.p == '"';
	ret = parse_local_part(ap);
	if (ret <= 0)
		ap->invalid = 1;
	if (ret != 0 && ap->c.p < ap->c.end && *ap->c.p == '@') {
		ret2 = parse_domain(ap);
		if (ret2 <= 0)
			ret = ret2;
	}
	if (ap->comment.len > 0) {
		ap->addr.name = dup_buf(ap, &ap->comment);
	} else if (ret2 == -2) {
		/* "user" alone is a mailbox, "user more words" a display name */
		agbuf_putc(&ap->str, ' ');
		size_t before = ap->str.len;
		(void)rfc822_parse_phrase(&ap->c, &ap->str);
		if (ap->str.len != before) {
			ap->addr.mailbox = NULL;
			ap->addr.name = dup_buf(ap, &ap->str);
		} else if (!quoted) {
			ap->addr.domain = mime_arena_strndup(ap->arena, "", 0);
		}
		ap->invalid = 1;
		ret = -1;
	}
	return ret;
}

/* `first`, or when it fails, `second` from the same place with the
 * address read so far forgotten. */
static int parse_either(struct addr_parser *ap, int (*first)(struct addr_parser *ap),
			int (*second)(struct addr_parser *ap))
{
	const unsigned char *start = ap->c.p;
	int ret = first(ap);
	if (ret < 0) {
		ap->c.p = start;
		memset(&ap->addr, 0, sizeof(ap->addr));
		ret = second(ap);
	}
	return ret;
}

/* An addr-spec where a name-addr was not: a lone invalid word is a name. */
static int parse_bare_addr_spec(struct addr_parser *ap)
{
	int ret = parse_addr_spec(ap);
	if (ap->invalid && ap->addr.name == NULL && ap->addr.mailbox != NULL && ap->addr.domain == NULL) {
		ap->addr.name = ap->addr.mailbox;
		ap->addr.mailbox = NULL;
	}
	return ret;
}

static int parse_mailbox(struct addr_parser *ap)
{
	int ret = parse_either(ap, parse_name_addr, parse_bare_addr_spec);
	add_fixed_address(ap);
	return ret;
}

static int parse_group(struct addr_parser *ap)
{
	int ret;
	agbuf_reset(&ap->str);
	if (rfc822_parse_phrase(&ap->c, &ap->str) <= 0 || *ap->c.p != ':')
		return -1;
	ap->c.p++;
	ret = rfc822_skip_lwsp(&ap->c);
	ap->addr.mailbox = dup_buf(ap, &ap->str);
	add_address(ap);
	if (ret > 0 && *ap->c.p != ';') {
		for (;;) {
			if (parse_mailbox(ap) <= 0) {
				ret = -1;
				break;
			}
			if (*ap->c.p != ',')
				break;
			ap->c.p++;
			if (rfc822_skip_lwsp(&ap->c) <= 0) {
				ret = -1;
				break;
			}
		}
	}
	if (ret >= 0) {
		if (ap->c.p >= ap->c.end || *ap->c.p != ';') {
			ret = -1;
		} else {
			ap->c.p++;
			ret = rfc822_skip_lwsp(&ap->c);
		}
	}
	add_address(ap); /* end of group */
	return ret == 0 ? 0 : 1;
}

static int parse_address(struct addr_parser *ap)
{
	return parse_either(ap, parse_group, parse_mailbox);
}

struct mime_address *mime_address_parse(struct mime_arena *arena, const char *value, size_t len)
{
	struct addr_parser ap;
	memset(&ap, 0, sizeof(ap));
	ap.arena = arena;
	ap.tail = &ap.first;
	rfc822_init(&ap.c, value, len, &ap.comment);
	agbuf_reserve(&ap.str, 64);
	agbuf_reserve(&ap.comment, 64);
	if (rfc822_skip_lwsp(&ap.c) > 0) {
		/* A bound on the list keeps hostile headers from costing much. */
		for (unsigned n = 0; n < 10000; n++) {
			int ret = parse_address(&ap);
			if (ret == 0)
				break;
			if (ap.c.p >= ap.c.end || *ap.c.p != ',')
				break;
			ap.c.p++;
			if ((ret = rfc822_skip_lwsp(&ap.c)) <= 0) {
				if (ret < 0)
					add_fixed_address(&ap);
				break;
			}
		}
	}
	agbuf_free(&ap.str);
	agbuf_free(&ap.comment);
	return ap.first;
}

/* A byte that may stand unquoted in an atom (8-bit bytes included, as the
 * parser reads them). */
static int atext_byte(unsigned char ch)
{
	if (ch >= 0x80 || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
		return 1;
	return ch != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL;
}

/* s as an atom when it is one (a dot counts as atext unless quote_dot),
 * else quoted, with '"', '\\' and '\'' escaped. */
static void write_maybe_quoted(struct agbuf *out, const char *s, int quote_dot)
{
	const char *p = s;
	while (*p != '\0' && (atext_byte((unsigned char)*p) || (!quote_dot && *p == '.')))
		p++;
	if (*p == '\0') {
		agbuf_puts(out, s);
		return;
	}
	agbuf_putc(out, '"');
	for (p = s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\' || *p == '\'')
			agbuf_putc(out, '\\');
		agbuf_putc(out, *p);
	}
	agbuf_putc(out, '"');
}

/* A phrase: encoded words may not sit inside a quoted string, so a phrase
 * holding one is written as it is (obsolete phrase syntax). */
static void write_phrase(struct agbuf *out, const char *s)
{
	if (strstr(s, "=?") != NULL)
		agbuf_puts(out, s);
	else
		write_maybe_quoted(out, s, 1);
}

void mime_address_write(struct agbuf *out, const struct mime_address *a)
{
	if (a == NULL)
		return;
	if (a->mailbox == NULL && a->domain == NULL && a->next == NULL) {
		agbuf_puts(out, "<>");
		return;
	}
	int first = 1, in_group = 0;
	for (; a != NULL; a = a->next) {
		if (!first)
			agbuf_puts(out, ", ");
		first = 0;
		if (a->domain == NULL) {
			if (!in_group) {
				/* group start: mailbox holds the group name */
				if (a->mailbox != NULL && a->mailbox[0] != '\0')
					write_phrase(out, a->mailbox);
				else
					agbuf_puts(out, "\"\"");
				agbuf_puts(out, ": ");
				first = 1;
			} else {
				/* group end: drop the ", " after the last member,
				 * or the blank after the colon of an empty group */
				if (out->len >= 2 && out->data[out->len - 2] == ',')
					out->len -= 2;
				else if (out->len >= 2 && out->data[out->len - 2] == ':')
					out->len -= 1;
				agbuf_putc(out, ';');
			}
			in_group = !in_group;
			continue;
		}
		const char *mailbox = a->mailbox ? a->mailbox : "";
		if (a->name != NULL)
			write_phrase(out, a->name);
		if (a->route != NULL || mailbox[0] != '\0' || a->domain[0] != '\0') {
			if (a->name != NULL && a->name[0] != '\0')
				agbuf_putc(out, ' ');
			agbuf_putc(out, '<');
			if (a->route != NULL) {
				agbuf_puts(out, a->route);
				agbuf_putc(out, ':');
			}
			if (mailbox[0] == '\0')
				agbuf_puts(out, "\"\"");
			else
				write_maybe_quoted(out, mailbox, 0);
			if (a->domain[0] != '\0') {
				agbuf_putc(out, '@');
				agbuf_puts(out, a->domain);
			}
			agbuf_putc(out, '>');
		}
	}
}
