/* cmd_authenticated.c - commands of the authenticated state that need no
 * mailbox: ENABLE, NAMESPACE, IDLE. */
#include <string.h>

#include "host/commands.h"
#include "host/log.h"

/* RFC 5161. No extension that ENABLE can switch on is implemented yet
 * (CONDSTORE, QRESYNC, UTF8=ACCEPT), so the ENABLED list stays empty: the
 * RFC makes that the answer for capabilities the server does not know. */
void ag_cmd_enable(struct ag_session *s)
{
	ag_session_printf(s, "* ENABLED\r\n");
	ag_session_tagged(s, IMAP_OK, "ENABLE completed.");
	ag_session_command_done(s);
}

/* RFC 2342: one personal namespace, the root, with the engine's delimiter. */
void ag_cmd_namespace(struct ag_session *s)
{
	ag_session_printf(s, "* NAMESPACE ((\"\" \".\")) NIL NIL\r\n");
	ag_session_tagged(s, IMAP_OK, "NAMESPACE completed.");
	ag_session_command_done(s);
}

