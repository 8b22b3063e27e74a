/* mail_reply.h - how the engine's answers become IMAP responses, written
 * with protocol/imap_write.h, and the responses several commands share. */
#ifndef AG_HOST_MAIL_REPLY_H
#define AG_HOST_MAIL_REPLY_H

#include <stdint.h>

#include "host/mail/mail.h"
#include "protocol/agbuf.h"
#include "protocol/imap_parse.h"

struct ag_session;

/* Sends what `out` holds to the client at once and frees it: the untagged
 * answers of commands that run on the loop without the store (CAPABILITY,
 * ENABLE...), which then end with ag_session_tagged. */
void ag_reply_send(struct ag_session *s, struct agbuf *out);

/* Appends "<tag> NO [CODE] <what>: <reason>" for an engine error: not
 * found -> NONEXISTENT, exists -> ALREADYEXISTS, unavailable -> UNAVAILABLE,
 * invalid -> CANNOT, too big -> TOOBIG, permission -> NOPERM, else SERVERBUG. */
void ag_reply_error(struct agbuf *out, const char *tag, int rc, const char *what);
/* The end of a command: ag_reply_error for an engine error `rc`, else
 * "<tag> OK <what> completed.". */
void ag_reply_done(struct agbuf *out, const char *tag, int rc, const char *what);
/* Appends "<tag> NO [BADCHARSET (US-ASCII UTF-8)] ..." for a SEARCH, SORT
 * or THREAD in another charset (RFC 3501 6.4.4). */
void ag_reply_bad_charset(struct agbuf *out, const char *tag);
/* Appends "* OK [HIGHESTMODSEQ n] Highest" of the view (RFC 7162 3.1.2.1). */
void ag_reply_highestmodseq(struct agbuf *out, const struct mail_view *v);
/* Appends a flag list "(\Seen $Junk \Recent)" of a message of the view. */
void ag_reply_flags(struct agbuf *out, const struct mail_view *v, uint32_t flags, uint64_t keywords, int recent);
/* Appends "* FLAGS (...)" with every keyword of the view and the
 * PERMANENTFLAGS that go with it (none when `readonly`). */
void ag_reply_flag_list(struct agbuf *out, const struct mail_view *v, int readonly);
/* Features a session enabled that change how updates are told (RFC 7162). */
#define AG_REPLY_CONDSTORE 1u /* FETCH of a flag change carries MODSEQ */
#define AG_REPLY_QRESYNC 2u   /* VANISHED instead of EXPUNGE; FETCH carries UID */
/* Appends the untagged responses of a change set: EXPUNGE (VANISHED under
 * QRESYNC), EXISTS, RECENT, and FETCH (FLAGS) (with UID when `with_uid`),
 * skipping the flag changes of UIDs in `silent` (may be NULL); under
 * CONDSTORE those are told as FETCH (MODSEQ) alone (RFC 7162 3.1.3). */
void ag_reply_changes(struct agbuf *out, const struct mail_view *v, const struct mail_changes *c, int with_uid,
                      const uint32_t *silent, size_t n_silent, unsigned features);
/* Keeps of the ranges (ascending, disjoint) the parts in `set` (a UID set,
 * `star` the value of "*"), in place. */
void ag_ranges_intersect(uint32_t **lo, uint32_t **hi, size_t *n, const struct imap_seqset *set, uint32_t star);
/* Brings the view up to date and appends what changed (see ag_reply_changes);
 * `options` are mail_view_update_ex's (MAIL_VIEW_DEFER_EXPUNGE where EXPUNGE
 * must not be sent). When the mailbox has more keywords than the
 * *kw_announced the client was told of, a new FLAGS list goes first (RFC
 * 3501 7.2.6: a client learns the defined flags only from FLAGS, so no FETCH
 * may show a keyword before it) and *kw_announced is updated.
 * *uidvalidity_changed is set when the mailbox got a new UIDVALIDITY (then
 * nothing is appended). Returns 0 or an engine error. */
int ag_reply_update(struct agbuf *out, struct mail_view *v, int readonly, unsigned *kw_announced, unsigned options,
                    int with_uid, const uint32_t *silent, size_t n_silent, unsigned features,
                    int *uidvalidity_changed);
/* The system flag bit of "\Seen"... (case-insensitive), 0 when it is a keyword
 * (or \Recent, which clients cannot set: *is_recent says so). */
uint32_t ag_flag_bit(const char *name, size_t len, int *is_recent);
/* Resolves a sequence set of the view to UIDs (ascending, caller frees).
 * `uid_set` reads it as UIDs (missing ones skipped), else as sequence
 * numbers. Returns -1 when a sequence number is out of range (BAD), else 0. */
int ag_resolve_set(const struct mail_view *v, const struct imap_seqset *set, int uid_set, uint32_t **uids, size_t *n);

#endif
