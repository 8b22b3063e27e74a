/* ctl_store.h - aerogramctl's store subcommands: undelete and copy-store.
 *
 * Both talk to the store only through the mail engine (host/mail/mail.h),
 * so they work on every driver and are safe while daemons run on the same
 * store: what they write goes through the log like any daemon's command. */
#ifndef AG_HOST_CTL_STORE_H
#define AG_HOST_CTL_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "host/ctl.h"
#include "host/mail/mail.h"

/* ---- undelete ---- */

/* Brings back the messages of user's mailbox expunged at or after since_ms
 * (0: every one still kept) and prints a line per message and a summary on
 * out (may be NULL). *restored (may be NULL) gets their number. 0, or -1
 * with one line in err. */
int ctl_undelete(struct mail_engine *eng, const char *user, const char *mailbox, uint64_t since_ms, FILE *out,
                 size_t *restored, char *err, size_t errlen);

/* `undelete NAME BOX [--since TIME]`: argv[0] is the subcommand's name.
 * TIME is an ISO 8601 date or date and time (2025-06-01, 2025-06-01T14:30,
 * 2025-06-01T14:30:00Z, ...+02:00; local time without a zone) or a duration
 * ago (30m, 2h, 7d, 1w). Returns the exit status (0, 1 error, 2 usage). */
int ctl_cmd_undelete(struct ctl *c, int argc, char **argv);

/* TIME as above to milliseconds since the epoch, durations counted back
 * from now_ms. 0 or -1. */
int ctl_parse_since(const char *text, uint64_t now_ms, uint64_t *out_ms);

/* ---- copy-store ---- */

struct ctl_copy_options {
	uint64_t limit;  /* stop once this many messages were copied (0: no limit); a run resumes */
	size_t batch;    /* messages per append, one log entry each (0: 100) */
	FILE *out;       /* a line per mailbox and a summary (NULL: quiet) */
};

struct ctl_copy_stats {
	size_t users, mailboxes;
	uint64_t messages, bytes;   /* in the source */
	uint64_t copied, bytes_copied;
	uint64_t skipped;           /* already in the destination (an earlier run) */
	size_t mismatches;          /* mailboxes whose count or bytes differ after the copy */
	double seconds;
};

/*
 * Copies the mailboxes of each user from src into dst: the mailbox list
 * (names, special-use attributes, subscriptions; a mailbox dst has and src
 * lacks is deleted when it is empty), then every message with its body,
 * flags, keywords and internal date (UIDs are dst's own). A message already
 * in the destination mailbox (same size, internal date and header block,
 * counted: two identical messages need two) is not copied again, so an
 * interrupted run resumes where it stopped. At the end of each mailbox the
 * message counts and total bytes of both sides must be equal.
 * Returns 0 when everything was copied and verified, 1 when the limit
 * stopped it (run again to go on), -1 on an error or a mismatch (one line
 * in err; the per-mailbox lines say which).
 * Not copied: \Recent, UIDs and UIDVALIDITY (clients resynchronise), and
 * expunged messages still kept for undelete in the source. Listing a user
 * who never logged in creates the default mailboxes in the source, as a
 * first login would.
 */
int ctl_copy_store(struct mail_engine *src, struct mail_engine *dst, const char *const *users, size_t n_users,
                   const struct ctl_copy_options *opt, struct ctl_copy_stats *st, char *err, size_t errlen);

/* `copy-store --to OTHER.conf [--user NAME] [--limit N]`: every user of
 * this configuration's users file (or NAME) into the store OTHER.conf
 * names. Returns the exit status (0; 1 error or mismatch; 2 usage; 3
 * stopped by --limit). */
int ctl_cmd_copy_store(struct ctl *c, int argc, char **argv);

/* The user names of a users file, in file order; *names (each and the
 * array) freed by the caller. 0, or -1 with one line in err. */
int ctl_users_from_file(const char *path, char ***names, size_t *n, char *err, size_t errlen);

#endif
