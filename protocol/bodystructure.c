/* bodystructure.c - BODY / BODYSTRUCTURE. Types and parameter names keep the
 * case of the message; a text part without charset gets charset us-ascii
 * appended; a multipart without parts gets one empty text/plain part; sizes
 * are virtual (CRLF) sizes. */
#include "protocol/bodystructure.h"

#include <string.h>
#include <strings.h>

#include "protocol/envelope.h"
#include "protocol/imap_quote.h"

#define EMPTY_BODY "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)"
#define EMPTY_BODYSTRUCTURE \
	"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)"

static void write_string(struct agbuf *out, const char *s)
{
	imap_quote_string(out, s, strlen(s));
}

static void write_nstring_nolf(struct agbuf *out, const char *s)
{
	imap_quote_nstring_nolf(out, s, s ? strlen(s) : 0);
}

static void write_params(struct agbuf *out, const struct mime_param *params, size_t n, int default_charset)
{
	if (!default_charset && n == 0) {
		agbuf_puts(out, "NIL");
		return;
	}
	int seen_charset = 0;
	agbuf_putc(out, '(');
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			agbuf_putc(out, ' ');
		if (default_charset && strcasecmp(params[i].name, "charset") == 0)
			seen_charset = 1;
		write_string(out, params[i].name);
		agbuf_putc(out, ' ');
		write_string(out, params[i].value);
	}
	if (default_charset && !seen_charset) {
		if (n > 0)
			agbuf_putc(out, ' ');
		agbuf_puts(out, "\"charset\" \"us-ascii\"");
	}
	agbuf_putc(out, ')');
}

/* disposition, language, location: the extension data every part has. */
static void write_common_ext(struct agbuf *out, const struct mime_part *p)
{
	agbuf_putc(out, ' ');
	if (p->disposition == NULL) {
		agbuf_puts(out, "NIL");
	} else {
		agbuf_putc(out, '(');
		write_string(out, p->disposition);
		agbuf_putc(out, ' ');
		write_params(out, p->disp_params, p->ndisp_params, 0);
		agbuf_putc(out, ')');
	}
	agbuf_putc(out, ' ');
	if (p->nlanguages == 0) {
		agbuf_puts(out, "NIL");
	} else {
		agbuf_putc(out, '(');
		for (size_t i = 0; i < p->nlanguages; i++) {
			if (i > 0)
				agbuf_putc(out, ' ');
			write_string(out, p->languages[i]);
		}
		agbuf_putc(out, ')');
	}
	agbuf_putc(out, ' ');
	write_nstring_nolf(out, p->location);
}

static void write_siblings(struct agbuf *out, const struct mime_part *p, int extended);

static void write_multipart(struct agbuf *out, const struct mime_part *p, int extended)
{
	if (p->children)
		write_siblings(out, p->children, extended);
	else
		agbuf_puts(out, extended ? EMPTY_BODYSTRUCTURE : EMPTY_BODY);
	agbuf_putc(out, ' ');
	write_string(out, p->subtype ? p->subtype : "");
	if (!extended)
		return;
	agbuf_putc(out, ' ');
	write_params(out, p->params, p->nparams, 0);
	write_common_ext(out, p);
}

static void write_single(struct agbuf *out, const struct mime_part *p, int extended)
{
	int text;
	if (p->flags & MIME_PART_RFC822) {
		agbuf_puts(out, "\"message\" \"rfc822\"");
		text = 0;
	} else if (p->type == NULL) {
		agbuf_puts(out, "\"text\" \"plain\"");
		text = 1;
	} else {
		text = strcasecmp(p->type, "text") == 0;
		write_string(out, p->type);
		agbuf_putc(out, ' ');
		write_string(out, p->subtype ? p->subtype : "");
	}
	agbuf_putc(out, ' ');
	write_params(out, p->params, p->nparams, text);
	agbuf_putc(out, ' ');
	write_nstring_nolf(out, p->id);
	agbuf_putc(out, ' ');
	write_nstring_nolf(out, p->description);
	agbuf_putc(out, ' ');
	if (p->encoding)
		write_string(out, p->encoding);
	else
		agbuf_puts(out, "\"7bit\"");
	agbuf_putc(out, ' ');
	agbuf_put_u64(out, p->body_vsize);
	if (text) {
		agbuf_putc(out, ' ');
		agbuf_put_u64(out, p->body_lines);
	} else if ((p->flags & MIME_PART_RFC822) && p->children) {
		agbuf_putc(out, ' ');
		envelope_write(out, p->children->envelope);
		agbuf_putc(out, ' ');
		write_siblings(out, p->children, extended);
		agbuf_putc(out, ' ');
		agbuf_put_u64(out, p->body_lines);
	}
	if (!extended)
		return;
	agbuf_putc(out, ' ');
	write_nstring_nolf(out, p->md5);
	write_common_ext(out, p);
}

static void write_siblings(struct agbuf *out, const struct mime_part *p, int extended)
{
	for (; p; p = p->next)
		bodystructure_write(out, p, extended);
}

void bodystructure_write(struct agbuf *out, const struct mime_part *part, int extended)
{
	agbuf_putc(out, '(');
	if (part->flags & MIME_PART_MULTIPART)
		write_multipart(out, part, extended);
	else
		write_single(out, part, extended);
	agbuf_putc(out, ')');
}
