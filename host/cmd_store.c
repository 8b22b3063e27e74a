/* cmd_store.c - changing messages: STORE, EXPUNGE (and UID EXPUNGE), COPY, MOVE.
 *
 * Each command is one engine call, so one log entry, whatever the number of
 * messages. The untagged answers (FETCH FLAGS, EXPUNGE) come from bringing
 * the session's view up to date afterwards, so they are exactly what
 * changed, including what other sessions changed meanwhile. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/commands.h"
#include "host/mail_reply.h"
#include "protocol/imap_write.h"

/* The UIDs (ascending, caller frees) of `set` (none when NULL), read as
 * UIDs or as sequence numbers. Returns 1 after answering when the command
 * cannot run: NO [READ-ONLY] for a change (`writes`) to an EXAMINEd
 * mailbox, BAD for a sequence number out of range. */
static int command_uids(struct ag_session *s, int writes, const struct imap_seqset *set, int uid_set,
                        uint32_t **uids, size_t *n)
{
	const char *tag = s->cmd->tag.data;
	*uids = NULL;
	*n = 0;
	if (writes && s->readonly) {
		imap_write_status(&s->reply, tag, IMAP_NO, IMAP_CODE_READ_ONLY, "The mailbox is read-only (EXAMINE).");
		return 1;
	}
	if (set != NULL && ag_resolve_set(s->view, set, uid_set, uids, n) != 0) {
		imap_write_status(&s->reply, tag, IMAP_BAD, IMAP_CODE_NONE, "Invalid message sequence number.");
		return 1;
	}
	return 0;
}

static void store_run(struct ag_session *s)
{
	const struct imap_command *cmd = s->cmd;
	const char *tag = cmd->tag.data;
	const char *name = cmd->uid ? "UID STORE" : "STORE";
	uint32_t *uids;
	size_t n;
	if (command_uids(s, 1, &cmd->u.store.set, cmd->uid, &uids, &n))
		return;
	uint32_t flags = 0;
	const char **keywords = calloc(cmd->u.store.flags.count + 1, sizeof(*keywords));
	size_t n_keywords = 0;
	for (size_t i = 0; keywords != NULL && i < cmd->u.store.flags.count; i++) {
		const struct imap_str *f = &cmd->u.store.flags.flags[i];
		int is_recent;
		uint32_t bit = ag_flag_bit(f->data, f->len, &is_recent);
		if (bit != 0)
			flags |= bit;
		else if (!is_recent && f->data[0] != '\\')
			keywords[n_keywords++] = f->data;
	}
	enum mail_store_mode mode = cmd->u.store.mode == IMAP_STORE_ADD      ? MAIL_STORE_ADD
	                            : cmd->u.store.mode == IMAP_STORE_REMOVE ? MAIL_STORE_REMOVE
	                                                                     : MAIL_STORE_SET;
	int rc = 0;
	uint32_t *modified = NULL;
	size_t n_modified = 0;
	if (cmd->u.store.has_unchangedsince)
		ag_session_enable_condstore(s); /* RFC 7162 3.1 */
	if (keywords == NULL)
		rc = AEROGRAM_EINTERNAL;
	else if (n > 0 && cmd->u.store.has_unchangedsince) {
		/* RFC 7162 3.1.3: only the messages unchanged since; the
		 * others are listed in MODIFIED */
		modified = malloc(n * sizeof(*modified));
		rc = modified == NULL ? AEROGRAM_EINTERNAL
		                      : mail_store_unchanged(s->view, uids, n, mode, flags, keywords, n_keywords,
		                                             cmd->u.store.unchangedsince, modified, &n_modified);
		/* .SILENT hides only what this command did: a message it left
		 * alone because another client changed it is told in full */
		size_t w = 0, k = 0;
		for (size_t i = 0; rc == 0 && i < n; i++) {
			while (k < n_modified && modified[k] < uids[i])
				k++;
			if (k < n_modified && modified[k] == uids[i])
				continue;
			uids[w++] = uids[i];
		}
		if (rc == 0)
			n = w;
	} else if (n > 0)
		rc = mail_store(s->view, uids, n, mode, flags, keywords, n_keywords);
	free(keywords);
	/* MODIFIED of a STORE lists sequence numbers (of the view, which keeps
	 * them: a plain STORE sends no EXPUNGE) */
	for (size_t i = 0; rc == 0 && !cmd->uid && i < n_modified; i++)
		modified[i] = mail_view_seq(s->view, modified[i]);
	if (rc == 0)
		/* A plain STORE must not send EXPUNGE (RFC 3501 7.4.1); UID STORE may. */
		rc = ag_session_update_view(s, cmd->uid ? 0 : MAIL_VIEW_DEFER_EXPUNGE, cmd->uid,
		                     cmd->u.store.silent ? uids : NULL, cmd->u.store.silent ? n : 0);
	free(uids);
	if (rc != 0) {
		ag_reply_error(&s->reply, tag, rc, name);
	} else if (n_modified > 0) {
		imap_write_status_begin(&s->reply, tag, IMAP_OK);
		imap_write_code_modified(&s->reply, modified, n_modified);
		imap_write_status_end(&s->reply, "Conditional STORE failed.");
	} else {
		ag_reply_done(&s->reply, tag, 0, name);
	}
	free(modified);
}

static void expunge_run(struct ag_session *s)
{
	const struct imap_command *cmd = s->cmd;
	const char *tag = cmd->tag.data;
	const char *name = cmd->uid ? "UID EXPUNGE" : "EXPUNGE";
	struct mail_view *v = s->view;
	uint32_t *candidates;
	size_t n_candidates;
	if (command_uids(s, 1, cmd->u.expunge.has_set ? &cmd->u.expunge.set : NULL, 1, &candidates, &n_candidates))
		return;
	uint32_t exists = mail_view_exists(v);
	uint32_t *uids = malloc((exists ? exists : 1) * sizeof(*uids));
	size_t n = 0, c = 0;
	for (uint32_t seq = 1; uids != NULL && seq <= exists; seq++) {
		struct mail_msg_info info;
		if (mail_view_msg(v, seq, &info) != 0 || !(info.flags & MAIL_F_DELETED))
			continue;
		if (cmd->u.expunge.has_set) {
			/* Both lists are ascending. */
			while (c < n_candidates && candidates[c] < info.uid)
				c++;
			if (c == n_candidates || candidates[c] != info.uid)
				continue;
		}
		uids[n++] = info.uid;
	}
	free(candidates);
	int rc = uids == NULL ? AEROGRAM_EINTERNAL : 0;
	if (rc == 0 && n > 0)
		rc = mail_expunge(v, uids, n);
	free(uids);
	if (rc == 0)
		rc = ag_session_update_view(s, 0, 0, NULL, 0);
	if (rc != 0 || !s->condstore) {
		ag_reply_done(&s->reply, tag, rc, name);
		return;
	}
	/* RFC 7162 3.2.10 (3.1.9 of CONDSTORE alone): expunges tell no
	 * modseq, the tagged response does */
	imap_write_status_begin(&s->reply, tag, IMAP_OK);
	imap_write_code_highestmodseq(&s->reply, mail_view_highestmodseq(v));
	imap_write_status_endf(&s->reply, "%s completed.", name);
}

static void copy_run(struct ag_session *s)
{
	const struct imap_command *cmd = s->cmd;
	const char *tag = cmd->tag.data;
	int move = cmd->kind == IMAP_CMD_MOVE;
	char name[16];
	snprintf(name, sizeof(name), "%s%s", cmd->uid ? "UID " : "", move ? "MOVE" : "COPY");
	uint32_t *uids;
	size_t n;
	if (command_uids(s, move, &cmd->u.copy.set, cmd->uid, &uids, &n))
		return;
	struct mail_mailbox *dst;
	int rc = mail_mailbox_open_flags(s->srv->engine, s->user, cmd->u.copy.mailbox.name.data, MAIL_OPEN_FOR_ADD,
	                                 &dst);
	if (rc == AEROGRAM_ENOTFOUND) {
		imap_write_status(&s->reply, tag, IMAP_NO, IMAP_CODE_TRYCREATE, "%s: no such mailbox.", name);
		free(uids);
		return;
	}
	if (rc != 0) {
		ag_reply_error(&s->reply, tag, rc, name);
		free(uids);
		return;
	}
	/* COPY adds to the user's mail, MOVE only moves it (and is allowed
	 * whatever the quota, as Dovecot does within one quota root) */
	int over = 0;
	if (!move && n > 0 && ag_quota_limited(&s->quota)) {
		uint64_t bytes, count;
		rc = mail_view_sizes(s->view, uids, n, &bytes, &count);
		if (rc == 0 && count > 0)
			rc = ag_quota_check(&s->quota, s->user, bytes, count, &over);
		if (rc == 0 && over) {
			mail_mailbox_close(dst);
			free(uids);
			imap_write_status(&s->reply, tag, IMAP_NO, IMAP_CODE_OVERQUOTA,
			                  "Quota exceeded (mailbox for user is full)");
			return;
		}
	}
	uint32_t uidvalidity = 0;
	uint32_t *dst_uids = calloc(n ? n : 1, sizeof(*dst_uids));
	if (rc == 0 && dst_uids == NULL)
		rc = AEROGRAM_EINTERNAL;
	else if (rc == 0 && n > 0)
		rc = move ? mail_move(s->view, uids, n, dst, &uidvalidity, dst_uids)
		          : mail_copy(s->view, uids, n, dst, &uidvalidity, dst_uids);
	mail_mailbox_close(dst);
	if (rc == 0 && n > 0) {
		/* RFC 6851: a MOVE tells COPYUID in an untagged OK, then the EXPUNGEs */
		imap_write_status_begin(&s->reply, move ? NULL : tag, IMAP_OK);
		imap_write_code_copyuid(&s->reply, uidvalidity, uids, dst_uids, n);
		if (move)
			imap_write_status_end(&s->reply, "Moved.");
		else
			imap_write_status_endf(&s->reply, "%s completed.", name);
	}
	free(uids);
	free(dst_uids);
	if (rc == 0 && move)
		rc = ag_session_update_view(s, 0, 0, NULL, 0);
	if (rc != 0 || move || n == 0)
		ag_reply_done(&s->reply, tag, rc, name);
}

void ag_cmd_store(struct ag_session *s) { ag_session_storage(s, store_run, 0); }
void ag_cmd_expunge(struct ag_session *s) { ag_session_storage(s, expunge_run, 0); }
void ag_cmd_copy(struct ag_session *s)
{
	ag_quota_for(s->srv, s->user, &s->quota);
	ag_session_storage(s, copy_run, 0);
}
