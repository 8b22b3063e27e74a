/* lmtp_parse.c - LMTP command lines and the DATA stream (lmtp_parse.h).
 *
 * Addresses are taken as RFC 5321 4.1.2 writes them, ASCII only (no
 * SMTPUTF8 is offered): a dot-string or quoted-string local part, a domain
 * or an address literal; a source route ("<@a,@b:user@d>") is dropped. What
 * comes out goes into header fields (Return-Path, Delivered-To), so no
 * control character, CR or LF ever passes. */
#include "host/lmtp_parse.h"

#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	enum lmtp_verb verb;
} verbs[] = {
	{ "LHLO", LMTP_LHLO }, { "HELO", LMTP_HELO }, { "EHLO", LMTP_HELO }, { "MAIL", LMTP_MAIL },
	{ "RCPT", LMTP_RCPT }, { "DATA", LMTP_DATA }, { "RSET", LMTP_RSET }, { "NOOP", LMTP_NOOP },
	{ "QUIT", LMTP_QUIT }, { "VRFY", LMTP_VRFY }, { "HELP", LMTP_HELP },
};

static int is_atext(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static int is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Local part at s[0..n): a dot-string or a quoted-string. */
static int valid_local(const char *s, size_t n)
{
	if (n == 0 || n > 64 + 2)
		return 0;
	if (s[0] == '"') {
		if (n < 2 || s[n - 1] != '"')
			return 0;
		for (size_t i = 1; i < n - 1; i++) {
			unsigned char c = (unsigned char)s[i];
			if (c == '\\') {
				if (++i >= n - 1 || (unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
					return 0;
			} else if (c < 0x20 || c > 0x7e || c == '"') {
				return 0;
			}
		}
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (i == 0 || i == n - 1 || s[i + 1] == '.')
				return 0;
		} else if (!is_atext(s[i])) {
			return 0;
		}
	}
	return 1;
}

/* Domain at s[0..n): dotted labels of letters, digits and hyphens, or an
 * address literal in brackets. */
static int valid_domain(const char *s, size_t n)
{
	if (n == 0 || n > 253)
		return 0;
	if (s[0] == '[') {
		if (n < 3 || s[n - 1] != ']')
			return 0;
		for (size_t i = 1; i < n - 1; i++) {
			unsigned char c = (unsigned char)s[i];
			if (c < 0x21 || c > 0x7e || c == '[' || c == ']' || c == '\\')
				return 0;
		}
		return 1;
	}
	size_t label = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
		} else if (is_alnum(c) || (c == '-' && label > 0)) {
			if (++label > 63)
				return 0;
		} else {
			return 0;
		}
	}
	return label > 0 && s[n - 1] != '-';
}

size_t lmtp_address_at(const char *s, size_t n)
{
	size_t at = n;
	int quoted = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' && quoted)
			i++;
		else if (s[i] == '"')
			quoted = !quoted;
		else if (s[i] == '@' && !quoted)
			at = i;
	}
	return at;
}

/* The mailbox (local@domain) at s[0..n); for RCPT, "postmaster" alone
 * (RFC 5321 4.1.1.3) too. */
static int valid_mailbox(const char *s, size_t n, int rcpt)
{
	size_t at = lmtp_address_at(s, n);
	if (at == n)
		return rcpt && n == 10 && strncasecmp(s, "postmaster", 10) == 0;
	return valid_local(s, at) && valid_domain(s + at + 1, n - at - 1);
}

/* Reads "<path>" at *p (up to end); fills cmd->path. Returns NULL or the reply. */
static const char *parse_path(const char **pp, const char *end, struct lmtp_command *cmd, int rcpt)
{
	const char *syntax = rcpt ? "501 5.5.4 Syntax: RCPT TO:<address>\r\n" : "501 5.5.4 Syntax: MAIL FROM:<address>\r\n";
	const char *bad = rcpt ? "501 5.1.3 Bad recipient address syntax\r\n" : "501 5.1.7 Bad sender address syntax\r\n";
	const char *p = *pp;
	while (p < end && *p == ' ')
		p++;
	if (p >= end || *p != '<')
		return syntax;
	const char *start = ++p;
	int quoted = 0;
	for (; p < end; p++) {
		if (*p == '\\' && quoted && p + 1 < end)
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (*p == '>' && !quoted)
			break;
	}
	if (p >= end)
		return syntax;
	const char *stop = p++;
	/* a source route is obsolete and ignored (RFC 5321 4.1.1.3, C) */
	if (start < stop && *start == '@') {
		const char *colon = memchr(start, ':', (size_t)(stop - start));
		if (colon == NULL)
			return bad;
		start = colon + 1;
	}
	size_t n = (size_t)(stop - start);
	if (n > LMTP_PATH_MAX - 2)
		return rcpt ? "501 5.1.3 Recipient address too long\r\n" : "501 5.1.7 Sender address too long\r\n";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)start[i];
		if (c < 0x20 || c > 0x7e)
			return rcpt ? "553 5.6.7 Recipient address not ASCII (no SMTPUTF8 here)\r\n"
			            : "553 5.6.7 Sender address not ASCII (no SMTPUTF8 here)\r\n";
	}
	if (n == 0 ? rcpt : !valid_mailbox(start, n, rcpt))
		return bad;
	memcpy(cmd->path, start, n);
	cmd->path[n] = '\0';
	cmd->path_len = n;
	*pp = p;
	return NULL;
}

/* The ESMTP parameters after the path: MAIL knows SIZE and BODY. */
static const char *parse_params(const char *p, const char *end, struct lmtp_command *cmd, int rcpt)
{
	int seen_size = 0, seen_body = 0;
	while (p < end) {
		if (*p != ' ')
			return "501 5.5.4 Syntax: a space goes between parameters\r\n";
		while (p < end && *p == ' ')
			p++;
		if (p >= end)
			break;
		const char *key = p;
		while (p < end && (is_alnum(*p) || *p == '-'))
			p++;
		size_t key_len = (size_t)(p - key);
		const char *value = NULL;
		size_t value_len = 0;
		if (p < end && *p == '=') {
			value = ++p;
			while (p < end && *p != ' ' && *p != '=' && (unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f)
				p++;
			value_len = (size_t)(p - value);
		}
		if (key_len == 0 || (p < end && *p != ' ') || (value != NULL && value_len == 0))
			return "501 5.5.4 Syntax error in parameters\r\n";
		if (rcpt)
			return "555 5.5.4 Unsupported RCPT TO parameter\r\n";
		if (key_len == 4 && strncasecmp(key, "SIZE", 4) == 0) {
			if (seen_size++ || value == NULL)
				return "501 5.5.4 Syntax: SIZE=<bytes>, once\r\n";
			uint64_t v = 0;
			for (size_t i = 0; i < value_len; i++) {
				if (value[i] < '0' || value[i] > '9')
					return "501 5.5.4 Syntax: SIZE=<bytes>, once\r\n";
				unsigned d = (unsigned)(value[i] - '0');
				v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
			}
			cmd->has_size = 1;
			cmd->size = v;
		} else if (key_len == 4 && strncasecmp(key, "BODY", 4) == 0) {
			if (seen_body++ || value == NULL)
				return "501 5.5.4 Syntax: BODY=7BIT or BODY=8BITMIME, once\r\n";
			if (value_len == 4 && strncasecmp(value, "7BIT", 4) == 0)
				cmd->body = LMTP_BODY_7BIT;
			else if (value_len == 8 && strncasecmp(value, "8BITMIME", 8) == 0)
				cmd->body = LMTP_BODY_8BITMIME;
			else
				return "501 5.5.4 Syntax: BODY=7BIT or BODY=8BITMIME, once\r\n";
		} else {
			return "555 5.5.4 Unsupported MAIL FROM parameter\r\n";
		}
	}
	return NULL;
}

const char *lmtp_parse_command(const char *line, size_t len, struct lmtp_command *cmd)
{
	memset(cmd, 0, sizeof(*cmd));
	cmd->path[0] = '\0';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return "500 5.5.2 Control characters in the command line\r\n";
	}
	const char *end = line + len;
	size_t vlen = 0;
	while (vlen < len && line[vlen] != ' ')
		vlen++;
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (vlen == 4 && strncasecmp(line, verbs[i].name, 4) == 0)
			cmd->verb = verbs[i].verb;
	if (cmd->verb == LMTP_UNKNOWN)
		return "500 5.5.1 Command unrecognized\r\n";
	const char *p = line + vlen;
	const char *arg = p < end ? p + 1 : end;
	while (arg < end && *arg == ' ')
		arg++;
	size_t arg_len = (size_t)(end - arg);
	while (arg_len > 0 && (arg[arg_len - 1] == ' ' || arg[arg_len - 1] == '\t'))
		arg_len--;
	switch (cmd->verb) {
	case LMTP_LHLO:
		if (arg_len == 0)
			return "501 5.5.4 Syntax: LHLO hostname\r\n";
		break;
	case LMTP_HELO:
		return "500 5.5.1 This is LMTP: say LHLO\r\n";
	case LMTP_DATA:
	case LMTP_RSET:
	case LMTP_QUIT:
		if (arg_len != 0)
			return cmd->verb == LMTP_DATA ? "501 5.5.4 Syntax: DATA\r\n"
			       : cmd->verb == LMTP_RSET ? "501 5.5.4 Syntax: RSET\r\n" : "501 5.5.4 Syntax: QUIT\r\n";
		break;
	case LMTP_VRFY:
		if (arg_len == 0)
			return "501 5.5.4 Syntax: VRFY address\r\n";
		break;
	case LMTP_MAIL:
	case LMTP_RCPT: {
		int rcpt = cmd->verb == LMTP_RCPT;
		const char *kw = rcpt ? "TO:" : "FROM:";
		size_t kwlen = strlen(kw);
		p = arg;
		if ((size_t)(end - p) < kwlen || strncasecmp(p, kw, kwlen) != 0)
			return rcpt ? "501 5.5.4 Syntax: RCPT TO:<address>\r\n" : "501 5.5.4 Syntax: MAIL FROM:<address>\r\n";
		p += kwlen;
		/* trailing spaces are no parameter */
		const char *stop = end;
		while (stop > p && (stop[-1] == ' ' || stop[-1] == '\t'))
			stop--;
		const char *problem = parse_path(&p, stop, cmd, rcpt);
		if (problem == NULL)
			problem = parse_params(p, stop, cmd, rcpt);
		if (problem != NULL)
			return problem;
		break;
	}
	default:
		break;
	}
	cmd->arg = arg;
	cmd->arg_len = arg_len;
	return NULL;
}

enum { DATA_LINE_START, DATA_MID, DATA_CR, DATA_DOT, DATA_DOT_CR };

static void emit(struct lmtp_data *d, const char *bytes, size_t n, uint64_t max, struct agbuf *out)
{
	if (n == 0)
		return;
	if (!d->too_big && d->size + n <= max)
		agbuf_append(out, bytes, n);
	else
		d->too_big = 1;
	d->size += n;
}

size_t lmtp_data_feed(struct lmtp_data *d, const char *in, size_t len, uint64_t max, struct agbuf *out,
                      int *done)
{
	*done = 0;
	size_t i = 0;
	while (i < len) {
		char c = in[i];
		switch (d->state) {
		case DATA_MID: {
			/* the bulk of a message: copy up to the next CR at once */
			const char *cr = memchr(in + i, '\r', len - i);
			size_t n = cr != NULL ? (size_t)(cr - (in + i)) + 1 : len - i;
			emit(d, in + i, n, max, out);
			i += n;
			if (cr != NULL)
				d->state = DATA_CR;
			continue;
		}
		case DATA_LINE_START:
			if (c == '.') {
				d->state = DATA_DOT;
				i++;
				continue;
			}
			d->state = DATA_MID;
			continue;
		case DATA_CR:
			emit(d, &c, 1, max, out);
			i++;
			d->state = c == '\n' ? DATA_LINE_START : c == '\r' ? DATA_CR : DATA_MID;
			continue;
		case DATA_DOT:
			/* the leading dot goes; a CR may be the end */
			if (c == '\r') {
				d->state = DATA_DOT_CR;
				i++;
			} else {
				d->state = DATA_MID;
			}
			continue;
		case DATA_DOT_CR:
			if (c == '\n') {
				*done = 1;
				d->state = DATA_LINE_START;
				return i + 1;
			}
			/* "." CR then something else: a line holding a bare CR */
			emit(d, "\r", 1, max, out);
			d->state = DATA_CR;
			continue;
		default:
			d->state = DATA_MID;
			continue;
		}
	}
	return len;
}
