/* cmd_authenticated.c - commands of the authenticated state that need no
 * mailbox: ENABLE, COMPRESS, NAMESPACE, IDLE. */
#include <string.h>
#include <strings.h>

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

/* RFC 4978, in the authenticated and selected states (as Dovecot; STARTTLS,
 * only before authentication, therefore always comes first). A second
 * COMPRESS gets NO [COMPRESSIONACTIVE], as Dovecot answers, where the RFC's
 * result list would also allow BAD. OpenSSL's own compression is off
 * (OpenSSL 1.1 and newer), so TLS never compresses already. */
void ag_cmd_compress(struct ag_session *s)
{
	const struct imap_str *m = &s->cmd->u.compress.mechanism;
	if (m->len != 7 || strncasecmp(m->data, "DEFLATE", 7) != 0) {
		ag_session_tagged(s, IMAP_BAD, "Unknown compression mechanism.");
	} else if (s->compressed) {
		ag_session_tagged(s, IMAP_NO, "[COMPRESSIONACTIVE] DEFLATE is active already.");
	} else {
		ag_session_tagged(s, IMAP_OK, "DEFLATE active.");
		if (ag_session_start_compress(s) != 0) {
			ag_log_error("%s: cannot start compression (out of memory?)", s->peer);
			ag_session_close(s, NULL);
		}
	}
	ag_session_command_done(s);
}

/* RFC 2342: one personal namespace, the root, with the engine's delimiter. */
void ag_cmd_namespace(struct ag_session *s)
{
	ag_session_printf(s, "* NAMESPACE ((\"\" \".\")) NIL NIL\r\n");
	ag_session_tagged(s, IMAP_OK, "NAMESPACE completed.");
	ag_session_command_done(s);
}

