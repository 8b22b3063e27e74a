/* quota.h - per-user quotas: limits from the users file and the [auth]
 * defaults, usage from the store (mail_user_usage), the check every path
 * that adds mail makes first (IMAP APPEND and COPY here, LMTP delivery).
 *
 * A user's quota root is named "" (RFC 9208's examples; Dovecot calls its
 * one "User quota"): one root per user covering every mailbox, with the
 * resources STORAGE (the sum of RFC822.SIZE, reported in units of 1024
 * octets, rounded down) and MESSAGE. A limit not set is no limit; a user
 * without any limit has no quota root at all. */
#ifndef AG_HOST_QUOTA_H
#define AG_HOST_QUOTA_H

#include <stdint.h>

#include "host/mail/mail.h"

struct ag_server;

/* What a check needs for one user: the engine and that user's limits. */
struct ag_quota {
	struct mail_engine *engine;
	uint64_t max_bytes;     /* 0: no limit */
	uint64_t max_messages;  /* 0: no limit */
};

/* The quota of `user`: its `quota` / `quota_messages` in the users file,
 * else [auth] default_quota / default_quota_messages. Reads srv's users
 * table, which a SIGHUP replaces on srv's loop: call it on that loop's
 * thread (a command handler), then pass *out to a worker. No storage call. */
void ag_quota_for(const struct ag_server *srv, const char *user, struct ag_quota *out);

/* Nonzero when q limits anything. */
int ag_quota_limited(const struct ag_quota *q);

/* Whether adding add_bytes in add_messages messages to user's mailboxes
 * would pass a limit of q: *over = 1 when the usage (derived from the
 * store, mail_user_usage) plus the addition is above max_bytes or
 * max_messages, else 0; exactly at a limit is not over. Returns 0, or an
 * engine error (AEROGRAM_*, *over left 0). Any thread but the event loop's:
 * it makes storage calls (none when q limits nothing; one row_read when the
 * user's mailbox states are current here, host/mail/README.md: usage). A
 * check, not a reservation: two deliveries checked at once may together
 * pass the limit by what they add. */
int ag_quota_check(const struct ag_quota *q, const char *user, uint64_t add_bytes, uint64_t add_messages,
                   int *over);

#endif
