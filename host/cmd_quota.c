/* cmd_quota.c - the QUOTA extension (RFC 9208): GETQUOTAROOT, GETQUOTA,
 * SETQUOTA.
 *
 * One quota root per user, named "", over every mailbox of the user, with
 * the resources STORAGE and MESSAGE (quota.h). A user without any limit has
 * no quota root, as a Dovecot user no quota root applies to:
 * GETQUOTAROOT answers "* QUOTAROOT INBOX" alone and GETQUOTA "" is NO
 * [NONEXISTENT]. A resource without a limit is left out of the QUOTA
 * response (Dovecot does the same). STORAGE is in units of 1024 octets,
 * rounded down, usage and limit alike (so a usage within the limit in
 * octets never shows above it). Limits are the administrator's (users file,
 * configuration): SETQUOTA is refused and QUOTASET not announced. */
#include <stdio.h>
#include <string.h>

#include "host/commands.h"
#include "host/mail_reply.h"
#include "protocol/imap_write.h"

/* "* QUOTA "" (STORAGE used limit MESSAGE used limit)", or an engine
 * error. */
static int write_quota(struct ag_session *s)
{
	const struct ag_quota *q = &s->quota;
	struct mail_usage u;
	int rc = mail_user_usage(q->engine, s->user, &u);
	if (rc != 0)
		return rc;
	struct imap_quota_resource res[2];
	size_t n = 0;
	if (q->max_bytes != 0)
		res[n++] = (struct imap_quota_resource){ "STORAGE", u.bytes / 1024, q->max_bytes / 1024 };
	if (q->max_messages != 0)
		res[n++] = (struct imap_quota_resource){ "MESSAGE", u.messages, q->max_messages };
	imap_write_quota(&s->reply, "", res, n);
	return 0;
}

/* Whether the user has a mailbox of that name (one read of the list). */
static int mailbox_exists(struct ag_session *s, const char *name, int *exists)
{
	struct mail_mailbox_info *infos;
	size_t n;
	*exists = 0;
	int rc = mail_list(s->srv->engine, s->user, &infos, &n);
	if (rc != 0)
		return rc;
	for (size_t i = 0; i < n && !*exists; i++)
		*exists = infos[i].exists && strcmp(infos[i].name, name) == 0;
	mail_list_free(infos, n);
	return 0;
}

static void getquotaroot_run(struct ag_session *s)
{
	const struct imap_command *cmd = s->cmd;
	const char *tag = cmd->tag.data;
	const char *name = cmd->u.mailbox.mailbox.name.data;
	int exists;
	int rc = mailbox_exists(s, name, &exists);
	if (rc == 0 && !exists)
		rc = AEROGRAM_ENOTFOUND;
	if (rc != 0) {
		ag_reply_error(&s->reply, tag, rc, "GETQUOTAROOT");
		return;
	}
	static const char *const root = "";
	int limited = ag_quota_limited(&s->quota);
	imap_write_quotaroot(&s->reply, name, &root, limited ? 1 : 0);
	if (limited && (rc = write_quota(s)) != 0)
		agbuf_reset(&s->reply);
	ag_reply_done(&s->reply, tag, rc, "GETQUOTAROOT");
}

static void getquota_run(struct ag_session *s)
{
	const struct imap_command *cmd = s->cmd;
	const char *tag = cmd->tag.data;
	if (cmd->u.quota.root.len != 0 || !ag_quota_limited(&s->quota)) {
		imap_write_status(&s->reply, tag, IMAP_NO, IMAP_CODE_NONEXISTENT, "GETQUOTA: no such quota root.");
		return;
	}
	int rc = write_quota(s);
	if (rc != 0)
		agbuf_reset(&s->reply);
	ag_reply_done(&s->reply, tag, rc, "GETQUOTA");
}

void ag_cmd_getquotaroot(struct ag_session *s)
{
	ag_quota_for(s->srv, s->user, &s->quota);
	ag_session_storage(s, getquotaroot_run, 0);
}

void ag_cmd_getquota(struct ag_session *s)
{
	ag_quota_for(s->srv, s->user, &s->quota);
	ag_session_storage(s, getquota_run, 0);
}

void ag_cmd_setquota(struct ag_session *s)
{
	/* RFC 9208 4.1.3 lets a server refuse; QUOTASET is not announced */
	ag_session_tagged(s, IMAP_NO, "[NOPERM] SETQUOTA: quotas are set by the administrator.");
	ag_session_command_done(s);
}
