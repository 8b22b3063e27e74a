/* cmd_select.c - the selected state's life: SELECT, EXAMINE, CLOSE,
 * UNSELECT, CHECK, and the updates NOOP and IDLE deliver.
 *
 * The session's view is the snapshot its client has seen; the mailbox's
 * shared state moves under it (other sessions, other daemons through the
 * log). Changes are told on NOOP, CHECK and during IDLE, where the engine's
 * change notification wakes the session. */
#include <stdlib.h>
#include <string.h>

#include "host/commands.h"
#include "host/log.h"
#include "host/mail_reply.h"
#include "protocol/imap_write.h"

/* Seconds between the untagged OKs that keep an idling connection alive. */
#define IDLE_KEEPALIVE_S 120

/* From an engine thread: only wake the loop. */
static void on_mailbox_change(void *arg)
{
	struct ag_session *s = arg;
	event_active(s->notify, EV_READ, 0);
}

/* SELECT (QRESYNC (uidvalidity modseq [known-uids [seq-match]])) with the
 * client's UIDVALIDITY (RFC 7162 3.2.5.1): VANISHED (EARLIER) for the
 * UIDs of known-uids (all UIDs without it) expunged since modseq, then
 * FETCH (UID FLAGS MODSEQ) of every message changed since. When the
 * mailbox no longer knows its expunges that far back, the VANISHED list
 * is every UID of known-uids it does not hold, as the RFC allows; the
 * sequence match data would only narrow that, so it is not used. */
static int qresync_report(struct ag_session *s, struct mail_view *v)
{
	const struct imap_command *cmd = s->cmd;
	struct agbuf *out = &s->reply;
	uint32_t *lo, *hi;
	size_t n;
	int exact;
	int rc = mail_view_vanished(v, cmd->u.mailbox.qr_modseq, &lo, &hi, &n, &exact);
	if (rc != 0)
		return rc;
	uint32_t exists = mail_view_exists(v);
	/* "*": every UID given out so far (the highest may be expunged) */
	if (cmd->u.mailbox.qr_has_known)
		ag_ranges_intersect(&lo, &hi, &n, &cmd->u.mailbox.qr_known, mail_view_uidnext(v) - 1);
	if (n > 0)
		imap_write_vanished_earlier(out, lo, hi, n);
	free(lo);
	free(hi);
	for (uint32_t seq = 1; seq <= exists; seq++) {
		struct mail_msg_info info;
		if (mail_view_msg(v, seq, &info) != 0 || info.modseq <= cmd->u.mailbox.qr_modseq)
			continue;
		imap_write_fetch_begin(out, seq);
		imap_write_atom(out, "UID ");
		imap_write_number(out, info.uid);
		imap_write_atom(out, " FLAGS ");
		ag_reply_flags(out, v, info.flags, info.keywords, info.recent);
		imap_write_sp(out);
		imap_write_fetch_modseq(out, info.modseq);
		imap_write_fetch_end(out);
	}
	return 0;
}

static void select_run(struct ag_session *s)
{
	const struct imap_command *cmd = s->cmd;
	const char *tag = cmd->tag.data;
	int examine = cmd->kind == IMAP_CMD_EXAMINE;
	/* RFC 7162 3.2.5: QRESYNC only once enabled; the selected mailbox stays */
	if (cmd->u.mailbox.qresync && !s->qresync) {
		imap_write_status(&s->reply, tag, IMAP_BAD, IMAP_CODE_NONE, "QRESYNC is not enabled.");
		return;
	}
	if (cmd->u.mailbox.condstore)
		s->condstore = 1; /* a CONDSTORE enabling command; no mailbox selected now */
	/* A failed SELECT leaves no mailbox selected (RFC 3501 6.3.1). */
	if (s->view != NULL) {
		ag_session_unselect(s);
		imap_write_status(&s->reply, NULL, IMAP_OK, IMAP_CODE_CLOSED, "Previous mailbox closed.");
	}
	s->next_state = AG_STATE_AUTH;
	struct mail_mailbox *mb;
	int rc = mail_mailbox_open(s->srv->engine, s->user, cmd->u.mailbox.mailbox.name.data, &mb);
	if (rc != 0) {
		ag_reply_error(&s->reply, tag, rc, examine ? "EXAMINE" : "SELECT");
		return;
	}
	struct mail_view *v;
	rc = mail_view_open(mb, !examine, &v);
	mail_mailbox_close(mb);
	if (rc != 0) {
		ag_reply_error(&s->reply, tag, rc, examine ? "EXAMINE" : "SELECT");
		return;
	}
	s->view = v;
	s->readonly = examine;
	s->mailbox = strdup(cmd->u.mailbox.mailbox.name.data);
	s->sub = mail_mailbox_subscribe(mail_view_mailbox(v), on_mailbox_change, s);

	struct agbuf *out = &s->reply;
	ag_reply_flag_list(out, v, examine);
	s->kw_announced = mail_view_keyword_count(v);
	uint32_t exists = mail_view_exists(v);
	imap_write_exists(out, exists);
	imap_write_recent(out, mail_view_recent_count(v));
	for (uint32_t seq = 1; seq <= exists; seq++) {
		struct mail_msg_info info;
		if (mail_view_msg(v, seq, &info) == 0 && !(info.flags & MAIL_F_SEEN)) {
			imap_write_status_begin(out, NULL, IMAP_OK);
			imap_write_code_unseen(out, seq);
			imap_write_status_end(out, "First unseen.");
			break;
		}
	}
	imap_write_status_begin(out, NULL, IMAP_OK);
	imap_write_code_uidvalidity(out, mail_view_uidvalidity(v));
	imap_write_status_end(out, "UIDs valid.");
	imap_write_status_begin(out, NULL, IMAP_OK);
	imap_write_code_uidnext(out, mail_view_uidnext(v));
	imap_write_status_end(out, "Predicted next UID.");
	/* RFC 7162 3.1.2.1: every mailbox keeps its modseqs, so every
	 * successful SELECT/EXAMINE says HIGHESTMODSEQ, enabled or not (as
	 * Dovecot does) */
	ag_reply_highestmodseq(out, v);
	if (cmd->u.mailbox.qresync && cmd->u.mailbox.qr_uidvalidity == mail_view_uidvalidity(v)) {
		rc = qresync_report(s, v);
		if (rc != 0) {
			/* the store failed: the SELECT fails as a whole */
			ag_session_unselect(s);
			ag_reply_error(out, tag, rc, examine ? "EXAMINE" : "SELECT");
			return;
		}
	}
	imap_write_status(out, tag, IMAP_OK, examine ? IMAP_CODE_READ_ONLY : IMAP_CODE_READ_WRITE, "%s completed.",
	                  examine ? "EXAMINE" : "SELECT");
	s->next_state = AG_STATE_SELECTED;
}

void ag_cmd_select(struct ag_session *s)
{
	ag_session_storage(s, select_run, 0);
}

/* Expunges the \Deleted messages; 0 or an engine error. */
static int expunge_deleted(struct ag_session *s)
{
	struct mail_view *v = s->view;
	uint32_t exists = mail_view_exists(v);
	uint32_t *uids = malloc((exists ? exists : 1) * sizeof(*uids));
	size_t n = 0;
	int rc = 0;
	if (uids == NULL)
		return AEROGRAM_EINTERNAL;
	for (uint32_t seq = 1; seq <= exists; seq++) {
		struct mail_msg_info info;
		if (mail_view_msg(v, seq, &info) == 0 && (info.flags & MAIL_F_DELETED))
			uids[n++] = info.uid;
	}
	if (n > 0) {
		rc = mail_expunge(v, uids, n);
		if (rc != 0) {
			char name[1024];
			ag_log_escape(name, sizeof(name), s->mailbox, strlen(s->mailbox));
			ag_log_warn("CLOSE: expunging %zu messages of %s failed (error %d)", n, name, rc);
		}
	}
	free(uids);
	return rc;
}

/* CLOSE expunges silently (unless read-only); UNSELECT does not. A CLOSE
 * whose expunge failed says so and keeps the mailbox selected, so the client
 * does not believe its \Deleted messages are gone and may try again. */
static void close_run(struct ag_session *s)
{
	const struct imap_command *cmd = s->cmd;
	if (cmd->kind == IMAP_CMD_CLOSE && !s->readonly) {
		int rc = expunge_deleted(s);
		if (rc != 0) {
			ag_reply_error(&s->reply, cmd->tag.data, rc, cmd->name);
			return;
		}
	}
	ag_session_unselect(s);
	s->next_state = AG_STATE_AUTH;
	ag_reply_done(&s->reply, cmd->tag.data, 0, cmd->name);
}

void ag_cmd_close(struct ag_session *s)
{
	ag_session_storage(s, close_run, 0);
}

/* NOOP and CHECK in the selected state: tell what changed. */
static void update_run(struct ag_session *s)
{
	const struct imap_command *cmd = s->cmd;
	int rc = ag_session_update_view(s, 0, 0, NULL, 0);
	ag_reply_done(&s->reply, cmd->tag.data, rc, cmd->name);
}

void ag_cmd_noop(struct ag_session *s)
{
	if (s->state == AG_STATE_SELECTED && s->view != NULL) {
		ag_session_storage(s, update_run, 0);
		return;
	}
	ag_session_tagged(s, IMAP_OK, "NOOP completed.");
	ag_session_command_done(s);
}

void ag_cmd_check(struct ag_session *s)
{
	ag_session_storage(s, update_run, 0);
}

/* During IDLE: untagged updates only, the command goes on. */
static void idle_update_run(struct ag_session *s)
{
	int rc = ag_session_update_view(s, 0, 0, NULL, 0);
	if (rc != 0)
		imap_write_status(&s->reply, NULL, IMAP_OK, IMAP_CODE_UNAVAILABLE,
		                  "The mail store did not answer; updates will follow.");
}

/* The mailbox changed while IDLE waits for DONE (the session calls this
 * only then: no job holds the view): tell the changes. */
static void idle_changed(struct ag_session *s)
{
	if (s->changed && s->view != NULL) {
		s->changed = 0;
		ag_session_storage(s, idle_update_run, 1);
	}
}

/* NAT boxes and firewalls forget quiet connections: say something now and then. */
static void on_keepalive(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct ag_session *s = arg;
	if (ag_session_ending(s) || s->cmd == NULL || s->cmd->kind != IMAP_CMD_IDLE)
		return;
	struct agbuf out = AGBUF_INIT;
	imap_write_status(&out, NULL, IMAP_OK, IMAP_CODE_NONE, "Still here");
	ag_reply_send(s, &out);
	struct timeval tv = { IDLE_KEEPALIVE_S, 0 };
	evtimer_add(s->keepalive, &tv);
}

void ag_cmd_idle(struct ag_session *s)
{
	struct agbuf out = AGBUF_INIT;
	imap_write_continuation(&out, "idling");
	ag_reply_send(s, &out);
	if (s->keepalive == NULL)
		s->keepalive = evtimer_new(s->srv->base, on_keepalive, s);
	if (s->keepalive != NULL) {
		struct timeval tv = { IDLE_KEEPALIVE_S, 0 };
		evtimer_add(s->keepalive, &tv);
	}
	ag_session_read_lines(s, IMAP_MODE_IDLE);
	/* A change that came before IDLE is told at once. */
	if (s->view != NULL)
		s->changed = 1;
	idle_changed(s);
}

/* The client ended IDLE with DONE (the parser takes no other line). */
static void idle_done(struct ag_session *s, const char *line, size_t len)
{
	(void)line;
	(void)len;
	if (s->keepalive != NULL)
		evtimer_del(s->keepalive);
	ag_session_tagged(s, IMAP_OK, "IDLE terminated.");
	ag_session_command_done(s);
}

/* As Dovecot: a line other than DONE ends IDLE with "BAD Expected DONE.",
 * and the session reads commands again (the parser is back in command mode). */
static void idle_abort(struct ag_session *s, const char *why)
{
	(void)why;
	if (s->keepalive != NULL)
		evtimer_del(s->keepalive);
	ag_session_tagged(s, IMAP_BAD, "Expected DONE.");
	ag_session_command_done(s);
}

const struct ag_command_input ag_cmd_idle_input = {
	.line = idle_done,
	.abort = idle_abort,
	.changed = idle_changed,
};
