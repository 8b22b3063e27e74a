/* envelope.c - ENVELOPE: date, subject, six address lists, in-reply-to and
 * message-id. Subject and display names are written "for humans" (TABs and
 * blank runs folded), ids and dates with line ends removed, as Dovecot does;
 * Sender and Reply-To fall back to From. */
#include "protocol/envelope.h"

#include <string.h>

#include "protocol/imap_quote.h"

static void write_str_nolf(struct agbuf *out, const char *s)
{
	imap_quote_nstring_nolf(out, s, s ? strlen(s) : 0);
}

static void write_addresses(struct agbuf *out, const struct mime_address *a)
{
	if (a == NULL) {
		agbuf_puts(out, "NIL");
		return;
	}
	agbuf_putc(out, '(');
	for (; a; a = a->next) {
		agbuf_putc(out, '(');
		if (a->name == NULL)
			agbuf_puts(out, "NIL");
		else
			imap_quote_string_for_humans(out, a->name, strlen(a->name));
		agbuf_putc(out, ' ');
		write_str_nolf(out, a->route);
		agbuf_putc(out, ' ');
		write_str_nolf(out, a->mailbox);
		agbuf_putc(out, ' ');
		write_str_nolf(out, a->domain);
		agbuf_putc(out, ')');
	}
	agbuf_putc(out, ')');
}

void envelope_write(struct agbuf *out, const struct mime_envelope *env)
{
	if (env == NULL) {
		agbuf_puts(out, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
		return;
	}
	agbuf_putc(out, '(');
	write_str_nolf(out, env->raw[MIME_ENV_DATE]);
	agbuf_putc(out, ' ');
	const char *subject = env->raw[MIME_ENV_SUBJECT];
	if (subject == NULL)
		agbuf_puts(out, "NIL");
	else
		imap_quote_string_for_humans(out, subject, strlen(subject));
	const struct mime_address *from = env->addr[MIME_ENV_FROM];
	agbuf_putc(out, ' ');
	write_addresses(out, from);
	agbuf_putc(out, ' ');
	write_addresses(out, env->addr[MIME_ENV_SENDER] ? env->addr[MIME_ENV_SENDER] : from);
	agbuf_putc(out, ' ');
	write_addresses(out, env->addr[MIME_ENV_REPLY_TO] ? env->addr[MIME_ENV_REPLY_TO] : from);
	agbuf_putc(out, ' ');
	write_addresses(out, env->addr[MIME_ENV_TO]);
	agbuf_putc(out, ' ');
	write_addresses(out, env->addr[MIME_ENV_CC]);
	agbuf_putc(out, ' ');
	write_addresses(out, env->addr[MIME_ENV_BCC]);
	agbuf_putc(out, ' ');
	write_str_nolf(out, env->raw[MIME_ENV_IN_REPLY_TO]);
	agbuf_putc(out, ' ');
	write_str_nolf(out, env->raw[MIME_ENV_MESSAGE_ID]);
	agbuf_putc(out, ')');
}

void envelope_write_message(struct agbuf *out, const struct mime_message *msg)
{
	envelope_write(out, msg->root->envelope);
}
