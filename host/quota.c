/* quota.c - per-user quotas (quota.h). */
#include "host/quota.h"

#include <string.h>

#include "host/server.h"

void ag_quota_for(const struct ag_server *srv, const char *user, struct ag_quota *out)
{
	memset(out, 0, sizeof(*out));
	out->engine = srv->engine;
	out->max_bytes = srv->cfg->default_quota;
	out->max_messages = srv->cfg->default_quota_messages;
	struct ag_user_quota uq;
	if (srv->users != NULL && ag_users_quota(srv->users, user, &uq) == 0) {
		if (uq.has_bytes)
			out->max_bytes = uq.bytes;
		if (uq.has_messages)
			out->max_messages = uq.messages;
	}
}

int ag_quota_limited(const struct ag_quota *q)
{
	return q->max_bytes != 0 || q->max_messages != 0;
}

int ag_quota_check(const struct ag_quota *q, const char *user, uint64_t add_bytes, uint64_t add_messages,
                   int *over)
{
	*over = 0;
	if (!ag_quota_limited(q))
		return 0;
	struct mail_usage u;
	int rc = mail_user_usage(q->engine, user, &u);
	if (rc != 0)
		return rc;
	if (q->max_bytes != 0 && (add_bytes > q->max_bytes || u.bytes > q->max_bytes - add_bytes))
		*over = 1;
	if (q->max_messages != 0 && (add_messages > q->max_messages || u.messages > q->max_messages - add_messages))
		*over = 1;
	return 0;
}
