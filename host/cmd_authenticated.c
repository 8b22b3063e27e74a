/* cmd_authenticated.c - commands of the authenticated state that need no
 * mailbox: ENABLE, COMPRESS, NAMESPACE, IDLE. */
#include <string.h>
#include <strings.h>

#include "host/commands.h"
#include "host/log.h"
#include "host/mail_reply.h"
#include "protocol/imap_write.h"

/* RFC 5161: ENABLED lists what this command switched on; what was on
 * already, or is unknown, is left out. CONDSTORE and QRESYNC (RFC 7162;
 * QRESYNC implies CONDSTORE). */
void ag_cmd_enable(struct ag_session *s)
{
	struct agbuf out = AGBUF_INIT;
	int was = s->condstore;
	const char *enabled[2];
	size_t n = 0;
	for (size_t i = 0; i < s->cmd->u.enable.count && n < 2; i++) {
		const char *cap = s->cmd->u.enable.caps[i].data;
		if (strcasecmp(cap, "CONDSTORE") == 0 && !s->condstore) {
			s->condstore = 1;
			enabled[n++] = "CONDSTORE";
		} else if (strcasecmp(cap, "QRESYNC") == 0 && !s->qresync) {
			s->qresync = 1;
			s->condstore = 1;
			enabled[n++] = "QRESYNC";
		}
	}
	imap_write_enabled(&out, enabled, n);
	/* a CONDSTORE enabling command with a mailbox selected (RFC 7162 3.1):
	 * its HIGHESTMODSEQ (no job runs: the view is the loop's) */
	if (!was && s->condstore && s->view != NULL)
		ag_reply_highestmodseq(&out, s->view);
	ag_reply_send(s, &out);
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
	struct agbuf out = AGBUF_INIT;
	imap_write_namespace(&out, "", MAIL_DELIMITER);
	ag_reply_send(s, &out);
	ag_session_tagged(s, IMAP_OK, "NAMESPACE completed.");
	ag_session_command_done(s);
}

