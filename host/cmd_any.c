/* cmd_any.c - commands valid in every state: CAPABILITY, NOOP, LOGOUT, ID. */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "host/commands.h"
#include "host/log.h"
#include "host/mail_reply.h"
#include "protocol/imap_write.h"

void ag_cmd_capability(struct ag_session *s)
{
	struct agbuf caps = AGBUF_INIT, out = AGBUF_INIT;
	ag_session_capabilities(s, &caps);
	imap_write_capability(&out, caps.data);
	agbuf_free(&caps);
	ag_reply_send(s, &out);
	ag_session_tagged(s, IMAP_OK, "Capability completed.");
	ag_session_command_done(s);
}

void ag_cmd_logout(struct ag_session *s)
{
	struct agbuf out = AGBUF_INIT;
	imap_write_status(&out, NULL, IMAP_BYE, IMAP_CODE_NONE, "Logging out.");
	ag_reply_send(s, &out);
	ag_session_tagged(s, IMAP_OK, "Logout completed.");
	if (s->user != NULL)
		ag_log_info("%s: logout user=%s", s->peer, s->user);
	ag_session_close(s, NULL);
	ag_session_command_done(s);
}

/* RFC 2971: the client's fields are logged (they help support); the server
 * answers with its name and version only. */
void ag_cmd_id(struct ag_session *s)
{
	const struct imap_command *cmd = s->cmd;
	if (!cmd->u.id.nil && cmd->u.id.count > 0) {
		struct agbuf line = AGBUF_INIT;
		/* Unauthenticated input: every name and value escaped
		 * (ag_log_escape), at most 30 pairs and 200 bytes a value. */
		char esc[4 * 200 + 1];
		for (size_t i = 0; i < cmd->u.id.count && i < 30; i++) {
			if (i > 0)
				agbuf_puts(&line, ", ");
			const struct imap_str *name = &cmd->u.id.names[i], *value = &cmd->u.id.values[i];
			ag_log_escape(esc, sizeof(esc), name->data, name->len > 200 ? 200 : name->len);
			agbuf_putc(&line, '"');
			agbuf_puts(&line, esc);
			agbuf_puts(&line, "\"=");
			if (value->data == NULL) {
				agbuf_puts(&line, "NIL");
			} else {
				ag_log_escape(esc, sizeof(esc), value->data, value->len > 200 ? 200 : value->len);
				agbuf_putc(&line, '"');
				agbuf_puts(&line, esc);
				agbuf_putc(&line, '"');
			}
		}
		ag_log_info("%s: client id %s", s->peer, line.data);
		agbuf_free(&line);
	}
	static const char *const fields[] = { "name", "Aerogram", "version", AEROGRAM_VERSION };
	struct agbuf out = AGBUF_INIT;
	imap_write_id(&out, fields, 4);
	ag_reply_send(s, &out);
	ag_session_tagged(s, IMAP_OK, "ID completed.");
	ag_session_command_done(s);
}
