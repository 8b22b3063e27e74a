/* cmd_any.c - commands valid in every state: CAPABILITY, NOOP, LOGOUT, ID. */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "host/commands.h"
#include "host/log.h"
#include "protocol/imap_quote.h"

void ag_cmd_capability(struct ag_session *s)
{
	struct agbuf caps = AGBUF_INIT;
	ag_session_capabilities(s, &caps);
	ag_session_printf(s, "* CAPABILITY %s\r\n", caps.data);
	agbuf_free(&caps);
	ag_session_tagged(s, IMAP_OK, "Capability completed.");
	ag_session_command_done(s);
}

void ag_cmd_logout(struct ag_session *s)
{
	ag_session_printf(s, "* BYE Logging out.\r\n");
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
		for (size_t i = 0; i < cmd->u.id.count && i < 30; i++) {
			if (i > 0)
				agbuf_puts(&line, ", ");
			imap_quote_string(&line, cmd->u.id.names[i].data, cmd->u.id.names[i].len);
			agbuf_putc(&line, '=');
			if (cmd->u.id.values[i].data == NULL)
				agbuf_puts(&line, "NIL");
			else
				imap_quote_string(&line, cmd->u.id.values[i].data,
				                  cmd->u.id.values[i].len > 200 ? 200 : cmd->u.id.values[i].len);
		}
		/* Keep the log one line: a literal would carry CR/LF. */
		for (size_t i = 0; i < line.len; i++)
			if (line.data[i] == '\r' || line.data[i] == '\n')
				line.data[i] = ' ';
		ag_log_info("%s: client id %s", s->peer, line.data);
		agbuf_free(&line);
	}
	ag_session_printf(s, "* ID (\"name\" \"Aerogram\" \"version\" \"%s\")\r\n", AEROGRAM_VERSION);
	ag_session_tagged(s, IMAP_OK, "ID completed.");
	ag_session_command_done(s);
}
