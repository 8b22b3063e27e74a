/*
 * mail.h - the mail engine: mailboxes, messages and flags over the driver ABI.
 *
 * The engine knows the storage driver (through an ag_store pair) and nothing
 * of IMAP syntax. Every function here blocks on storage and is thread-safe:
 * the server calls them from worker threads. Errors are the driver's
 * AEROGRAM_E* codes (NOTFOUND -> [NONEXISTENT], UNAVAILABLE -> [UNAVAILABLE],
 * ...) plus MAIL_EEXIST for "that mailbox name is taken".
 *
 * Objects:
 *   mail_engine   one per process (or one per simulated daemon in tests);
 *                 owns the table of open mailboxes and the poller thread.
 *   mail_mailbox  the shared state of one open mailbox (reference counted,
 *                 shared by every session that opened it in this engine).
 *   mail_view     one session's snapshot of a mailbox: sequence numbers,
 *                 what the client has been told, and the diff to tell more.
 * See host/mail/README.md for the data model and the storage calls each
 * operation costs.
 */
#ifndef AG_MAIL_H
#define AG_MAIL_H

#include <stddef.h>
#include <stdint.h>

#include "sdk/loader/ag_loader.h"

#define MAIL_EEXIST (-20) /* the mailbox name already exists */
#define MAIL_EAGAIN (-21) /* non-blocking mode: the call would wait (see mail_nonblock) */
#define MAIL_ECHILDREN (-22) /* DELETE: the name exists only through mailboxes below it */

/* System flags (bit values of `flags` everywhere in this API). */
#define MAIL_F_SEEN     (1u << 0)
#define MAIL_F_ANSWERED (1u << 1)
#define MAIL_F_FLAGGED  (1u << 2)
#define MAIL_F_DELETED  (1u << 3)
#define MAIL_F_DRAFT    (1u << 4)
#define MAIL_F_SYSTEM   0x1fu
/* Per mailbox, at most this many distinct keywords exist; more are ignored. */
#define MAIL_MAX_KEYWORDS 59

/* Special-use attributes (RFC 6154), bits of mail_mailbox_info.special_use. */
#define MAIL_SU_DRAFTS  (1u << 0)
#define MAIL_SU_SENT    (1u << 1)
#define MAIL_SU_TRASH   (1u << 2)
#define MAIL_SU_ARCHIVE (1u << 3)
#define MAIL_SU_JUNK    (1u << 4)

/* The hierarchy delimiter of mailbox names. */
#define MAIL_DELIMITER '.'

struct mail_engine;
struct mail_mailbox;
struct mail_view;
struct mail_sub;

/* Engine options. Zeroed fields take the documented defaults. */
/* The storage driver calls the engine makes, for the store_call option. */
enum mail_store_op {
	MAIL_STORE_ROW_READ, MAIL_STORE_ROW_INSERT, MAIL_STORE_ROW_INSERT_IF, MAIL_STORE_ROW_DELETE,
	MAIL_STORE_ROW_WATCH, MAIL_STORE_BLOB_GET, MAIL_STORE_BLOB_PUT,
	MAIL_STORE_BLOB_COPY, MAIL_STORE_BLOB_LIST, MAIL_STORE_BLOB_DELETE, MAIL_STORE__COUNT
};
/* The driver function's name ("row_read"...). */
const char *mail_store_op_name(enum mail_store_op op);

struct mail_engine_options {
	/* Milliseconds since the epoch; default: CLOCK_REALTIME. */
	uint64_t (*clock_ms)(void *arg);
	void *clock_arg;
	/* Seed of the engine's random numbers (timestamps, ids); 0: from
	 * /dev/urandom. Two engines with one seed and one clock behave alike. */
	uint64_t seed;
	/* 1: no poller thread (tests drive syncs with mail_mailbox_sync). */
	int no_poller;
	/* Watch timeout of the poller (default 60000 ms). */
	uint32_t poll_timeout_ms;
	/* Sleeps between retries (default: nanosleep); a simulation can switch
	 * threads instead. */
	void (*sleep_ms)(void *arg, uint32_t ms);
	void *sleep_arg;
	/* Closed mailboxes whose state stays in memory for the next open
	 * (default 256; the least recently used goes first). */
	size_t cache_mailboxes;
	/* Bytes of message summaries kept in memory (default 64 MiB; the least
	 * recently used go first). */
	size_t cache_summary_bytes;
	/* Bytes of message bodies kept in memory (default 32 MiB; the least
	 * recently used go first; bodies over an eighth of it are not kept). */
	size_t cache_body_bytes;
	/* 1: no body cache at all (every body is read from the store). */
	int no_body_cache;
	/* How long the bodies and summaries of expunged messages stay in the
	 * store before collection removes them, for mail_mailbox_undelete
	 * ([storage] expunge_retention). 0 (the default): only the grace
	 * period sessions reading an older snapshot need (a minute), and no
	 * list of recently expunged messages is kept: nothing to undelete. */
	uint64_t expunge_retention_ms;
	/* Log sink (default: stderr). level is an aerogram_log_level. */
	void (*log)(void *arg, int level, const char *line);
	void *log_arg;
	/* Told of every storage driver call the engine makes, after it
	 * returns, on the thread that made it: the operation, its result and
	 * its duration in microseconds (the daemon's metrics). NULL: no
	 * measure taken. */
	void (*store_call)(void *arg, enum mail_store_op op, int rc, uint64_t us);
	void *store_call_arg;
};

/* Creates an engine over `store` (the pair is copied; the store must outlive
 * the engine). *out is owned by the caller: mail_engine_free. */
int mail_engine_new(const struct ag_store *store, const struct mail_engine_options *opt,
                    struct mail_engine **out);
/* Stops the poller and frees the engine; every mailbox must be closed. */
void mail_engine_free(struct mail_engine *eng);
/* Before a clean shutdown: checkpoints the mailboxes still in memory whose
 * log has entries after their newest checkpoint, within budget_ms, so that
 * the next start (here or elsewhere) opens them from a checkpoint alone. */
void mail_engine_checkpoint_all(struct mail_engine *eng, uint32_t budget_ms);
/* The mailbox states held in memory now: in use by some session, and closed
 * but kept warm in the cache (for the daemon's metrics; any thread). */
void mail_engine_mailbox_counts(struct mail_engine *eng, size_t *in_use, size_t *cached);

/* ---- Mailbox list (per user; `user` is a stable id used as key prefix) ---- */

struct mail_mailbox_info {
	char *name;            /* full name, '.'-separated */
	char id[33];           /* mailbox id (32 hex) */
	uint32_t uidvalidity;  /* base UIDVALIDITY of this name */
	uint32_t special_use;  /* MAIL_SU_* */
	int subscribed;
	int exists;            /* 0: deleted but still subscribed */
};

/* Lists the user's mailboxes (and subscribed deleted names), sorted by name,
 * creating the default ones on first use. *out is owned by the caller:
 * mail_list_free. */
int mail_list(struct mail_engine *eng, const char *user, struct mail_mailbox_info **out, size_t *n);
/* Frees a mail_list result. */
void mail_list_free(struct mail_mailbox_info *infos, size_t n);
/* Creates a mailbox (MAIL_EEXIST if it exists; EINVAL for a bad name). */
int mail_create(struct mail_engine *eng, const char *user, const char *name, uint32_t special_use);
/* Deletes a mailbox and removes its contents from the store (its children
 * stay). MAIL_ECHILDREN when the name is no mailbox but has some below it. */
int mail_delete(struct mail_engine *eng, const char *user, const char *name);
/* Renames a mailbox and its children, or the children of a name that has
 * some but is no mailbox itself; renaming INBOX moves its messages to the
 * new name and leaves an empty INBOX (RFC 3501 6.3.5). */
int mail_rename(struct mail_engine *eng, const char *user, const char *from, const char *to);
/* Sets or clears the subscription of a name (it need not exist). */
int mail_subscribe(struct mail_engine *eng, const char *user, const char *name, int on);
/* Sets the special-use attributes of an existing mailbox. */
int mail_set_special_use(struct mail_engine *eng, const char *user, const char *name, uint32_t su);

/* ---- Usage (quota) ---- */

/* What a user's mailboxes hold, as the store has it now. */
struct mail_usage {
	uint64_t bytes;     /* the sum of RFC822.SIZE over every message */
	uint64_t messages;
	uint32_t mailboxes;
};
/* Counts every message of every mailbox of user: one row_read of the
 * mailbox list and of the watch row of each of the user's mailbox states
 * this engine holds, then a sync of each state that is not current (README:
 * usage). Exact across engines: derived from the logs, not counted here. */
int mail_user_usage(struct mail_engine *eng, const char *user, struct mail_usage *out);
/* The sum of the sizes of the given UIDs of the snapshot (the messages a
 * COPY would add) and how many of them it has; reads only the summaries of
 * messages whose size the snapshot does not know. */
int mail_view_sizes(struct mail_view *v, const uint32_t *uids, size_t n, uint64_t *bytes, uint64_t *count);

/* ---- Open mailboxes (shared per engine) ---- */

struct mail_status {
	uint32_t exists;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint32_t unseen;  /* messages without \Seen */
	uint32_t recent;  /* messages no session has claimed yet */
	uint64_t size;    /* the sum of the messages' RFC822.SIZE (sizes known) */
	uint32_t deleted; /* messages with \Deleted */
	uint64_t deleted_size; /* the sum of their sizes (sizes known) */
	/* messages whose size the state does not know (added by entries
	 * written before adds carried sizes): mail_mailbox_load_sizes */
	uint32_t sizes_unknown;
};

/* Opens (or joins) the shared state of a mailbox, syncing it with the store.
 * *out holds one reference: release it with mail_mailbox_close. */
int mail_mailbox_open(struct mail_engine *eng, const char *user, const char *name,
                      struct mail_mailbox **out);
/* mail_mailbox_open_flags: the caller is about to add messages (APPEND,
 * the destination of COPY or MOVE): a state already in memory is not read
 * again first, since the add reads or checks what it must itself. */
#define MAIL_OPEN_FOR_ADD 1u
int mail_mailbox_open_flags(struct mail_engine *eng, const char *user, const char *name, unsigned flags,
                            struct mail_mailbox **out);
/* Releases one reference; the last one stops the poller and frees the state. */
void mail_mailbox_close(struct mail_mailbox *mb);
/* Reads the log (and a newer checkpoint) from the store now. */
int mail_mailbox_sync(struct mail_mailbox *mb);
/* Counters of the shared state as of the last sync. */
int mail_mailbox_status(struct mail_mailbox *mb, struct mail_status *st);
/* Reads the sizes the state does not know from the messages' summaries
 * (nothing when it knows them all, as for every message added since adds
 * carry their sizes), so that mail_mailbox_status's sizes are exact. */
int mail_mailbox_load_sizes(struct mail_mailbox *mb);
/* Writes a checkpoint now if one is due; `force` ignores the thresholds
 * (without conditional writes the cut still leaves out entries younger
 * than 1 s, unless force > 1, which tests use). */
int mail_mailbox_checkpoint(struct mail_mailbox *mb, int force);
/* The mailbox id (owned by mb). */
const char *mail_mailbox_id(const struct mail_mailbox *mb);

/* Registers `cb(arg)`, called whenever the shared state changes, from any
 * engine or worker thread and with internal locks held: it must only signal
 * (e.g. event_active) and never call the engine. Owned by the caller:
 * cancel with mail_unsubscribe, which waits for a running call to finish. */
struct mail_sub *mail_mailbox_subscribe(struct mail_mailbox *mb, void (*cb)(void *arg), void *arg);
/* Cancels a subscription. */
void mail_unsubscribe(struct mail_sub *sub);

/* ---- Messages ---- */

struct mail_new_message {
	const uint8_t *body;        /* raw RFC 5322 bytes */
	size_t body_len;
	uint64_t internal_date_ms;  /* 0: now */
	uint32_t flags;             /* MAIL_F_* */
	const char *const *keywords;
	size_t n_keywords;
	const uint8_t *header;      /* the header block, for the summary */
	size_t header_len;
	const uint8_t *bodystructure; /* opaque serialised structure */
	size_t bodystructure_len;
};

/* Appends one message: body blob, summary row, then one log entry. On
 * success *uidvalidity / *uid are the values as computed locally. */
int mail_append(struct mail_mailbox *mb, const struct mail_new_message *msg, uint32_t *uidvalidity,
                uint32_t *uid);
/* Appends n messages (MULTIAPPEND, RFC 3502) with one log entry: all of
 * them or, on failure, none (their bodies and summaries become orphans).
 * uids (n entries, caller-owned, may be NULL) receives their UIDs. */
int mail_append_many(struct mail_mailbox *mb, const struct mail_new_message *msgs, size_t n,
                     uint32_t *uidvalidity, uint32_t *uids);
/* The same, and when `claimer` is a view of mb that claims \Recent (a
 * SELECT, not an EXAMINE), its session claims the new messages (and any
 * other not claimed yet) in the same log entry: the claim its next update
 * would write costs no write of its own. */
int mail_append_many_claim(struct mail_mailbox *mb, const struct mail_new_message *msgs, size_t n,
                           const struct mail_view *claimer, uint32_t *uidvalidity, uint32_t *uids);

/* One message summary (from one batch read). Strings/bytes owned by the
 * array: free with mail_summaries_free. */
struct mail_summary {
	uint32_t uid;
	int status;                 /* 0 or AEROGRAM_ENOTFOUND (gone) */
	uint64_t internal_date_ms;
	uint64_t size;
	uint8_t *header;
	size_t header_len;
	uint8_t *bodystructure;
	size_t bodystructure_len;
};

/* One message body (from one batch blob read). Free with mail_bodies_free. */
struct mail_body {
	uint32_t uid;
	int status;                 /* 0 or AEROGRAM_ENOTFOUND */
	uint8_t *data;
	size_t len;
};

/* ---- Views (one per session) ---- */

/* Opens a session's view on mb (takes its own reference). `claim_recent`
 * (SELECT, not EXAMINE) claims \Recent for the messages no session has
 * seen yet. *out owned by caller: mail_view_close. */
int mail_view_open(struct mail_mailbox *mb, int claim_recent, struct mail_view **out);
/* Closes a view. */
void mail_view_close(struct mail_view *v);
/* The mailbox a view looks at (borrowed). */
struct mail_mailbox *mail_view_mailbox(struct mail_view *v);

/* What the client must be told, in order: expunges (sequence numbers
 * already adjusted as they are emitted), then EXISTS, then FETCH FLAGS. */
struct mail_flag_change {
	uint32_t seq;
	uint32_t uid;
	uint32_t flags;          /* MAIL_F_* */
	uint64_t keywords;       /* bits into mail_view_keyword() */
	uint64_t modseq;
	int recent;
};
struct mail_changes {
	uint32_t *expunged;      /* sequence numbers, in emission order */
	uint32_t *expunged_uids; /* their UIDs, in the same order (VANISHED) */
	size_t n_expunged;
	int exists_changed;
	uint32_t exists;
	int uidvalidity_changed;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint32_t recent;
	struct mail_flag_change *flags;
	size_t n_flags;
};

/* UIDs below the view's UIDNEXT that the view does not hold and that were
 * expunged by a change whose modseq is above `since` (RFC 7162 VANISHED
 * (EARLIER)), as ascending inclusive ranges (*lo, *hi, caller frees both).
 * The mailbox keeps the expunges of its last UIDX_VANISHED_MAX DELs one
 * by one; when `since` is older than what it keeps, *exact is set to 0 and
 * every UID below UIDNEXT that the view does not hold is returned (the
 * RFC's fallback: the client drops what it did not have anyway). */
int mail_view_vanished(struct mail_view *v, uint64_t since, uint32_t **lo, uint32_t **hi, size_t *n, int *exact);

/* Moves the view to the shared state and returns the difference. With
 * `claim_recent`, new messages nobody saw are claimed as \Recent for this
 * session (one log entry). *out owned by caller: mail_changes_free. */
int mail_view_update(struct mail_view *v, int claim_recent, struct mail_changes **out);

/* mail_view_update_ex option: take new messages and flag changes but keep
 * the messages expunged meanwhile in the snapshot, with their last flags
 * and their sequence numbers, and report no expunge. RFC 3501 7.4.1 forbids
 * EXPUNGE during FETCH, STORE and SEARCH; the next update without this
 * option reports them (numbers adjusted as usual). A new UIDVALIDITY is not
 * taken either: the snapshot stays as it was until such an update. */
#define MAIL_VIEW_DEFER_EXPUNGE 1u
/* mail_view_update with options (MAIL_VIEW_*). *out owned by caller. */
int mail_view_update_ex(struct mail_view *v, int claim_recent, unsigned options, struct mail_changes **out);
/* Messages of the snapshot that are expunged but not reported yet. */
size_t mail_view_pending_expunges(const struct mail_view *v);
/* Frees a change set. */
void mail_changes_free(struct mail_changes *c);

/* Snapshot accessors (valid until the next mail_view_update). */
uint32_t mail_view_exists(const struct mail_view *v);
uint32_t mail_view_uidvalidity(const struct mail_view *v);
uint32_t mail_view_uidnext(const struct mail_view *v);
/* The HIGHESTMODSEQ the client may be told: the snapshot's, or while
 * expunges are deferred that of the last snapshot without any (a client
 * that resyncs from it must not miss the expunges it was not told yet). */
uint64_t mail_view_highestmodseq(const struct mail_view *v);
uint32_t mail_view_recent_count(const struct mail_view *v);
/* UID of sequence number seq (1-based), 0 if out of range. */
uint32_t mail_view_uid(const struct mail_view *v, uint32_t seq);
/* Sequence number of uid, 0 if the snapshot has no such UID. */
uint32_t mail_view_seq(const struct mail_view *v, uint32_t uid);
struct mail_msg_info {
	uint32_t uid;
	uint32_t flags;
	uint64_t keywords;
	uint64_t modseq;
	int recent;
	int expunged;  /* gone from the mailbox; kept until an EXPUNGE may be sent */
	char id[33];
};
/* The info of sequence number seq; 0 or AEROGRAM_ENOTFOUND. */
int mail_view_msg(const struct mail_view *v, uint32_t seq, struct mail_msg_info *info);
/* Name of keyword bit `bit` (0..58), or NULL; owned by the view. */
const char *mail_view_keyword(const struct mail_view *v, unsigned bit);
/* How many keywords the mailbox defines, as of the view (bits 0..n-1; the
 * list only grows, so a larger count means new keywords). */
unsigned mail_view_keyword_count(const struct mail_view *v);

/* Summaries of the given UIDs of the snapshot (one row_read, paginated).
 * *out (n entries, in the order of uids) owned by caller. */
int mail_summaries(struct mail_view *v, const uint32_t *uids, size_t n, struct mail_summary **out);
void mail_summaries_free(struct mail_summary *s, size_t n);
/* Bodies of the given UIDs (one blob_get). *out owned by caller. */
int mail_bodies(struct mail_view *v, const uint32_t *uids, size_t n, struct mail_body **out);
void mail_bodies_free(struct mail_body *b, size_t n);

enum mail_store_mode { MAIL_STORE_ADD, MAIL_STORE_REMOVE, MAIL_STORE_SET };
/* Changes flags of the given UIDs in one log entry. */
int mail_store(struct mail_view *v, const uint32_t *uids, size_t n, enum mail_store_mode mode,
               uint32_t flags, const char *const *keywords, size_t n_keywords);
/* mail_store on the messages whose modseq is at most `since` (RFC 7162
 * UNCHANGEDSINCE), decided on the state the entry follows (atomic with
 * conditional writes: an entry written meanwhile makes it decide again).
 * The UIDs of the others go to `modified` (room for n), ascending when
 * `uids` is, and their count to *n_modified. */
int mail_store_unchanged(struct mail_view *v, const uint32_t *uids, size_t n, enum mail_store_mode mode,
                         uint32_t flags, const char *const *keywords, size_t n_keywords, uint64_t since,
                         uint32_t *modified, size_t *n_modified);
/* Expunges the given UIDs in one log entry (bodies go with orphan collection). */
int mail_expunge(struct mail_view *v, const uint32_t *uids, size_t n);
/* Copies the given UIDs into dst (blob copies, one summary batch, one log
 * entry). On success *uidvalidity and out_uids[i] (n entries, caller-owned
 * array, may be NULL) say where they went, as computed locally. */
int mail_copy(struct mail_view *v, const uint32_t *uids, size_t n, struct mail_mailbox *dst,
              uint32_t *uidvalidity, uint32_t *out_uids);
/* Copy, then expunge from the source (RFC 6851). */
int mail_move(struct mail_view *v, const uint32_t *uids, size_t n, struct mail_mailbox *dst,
              uint32_t *uidvalidity, uint32_t *out_uids);

/* ---- Non-blocking mode ----
 *
 * An event loop may try a read-only command inline: with mail_nonblock(1)
 * on its thread, the engine never waits (no store call, no lock held by
 * another thread): a call that would fails with MAIL_EAGAIN before it
 * changes anything, and mail_nonblock_hit() says so since the last
 * mail_nonblock(1); the caller then discards what it did and runs the
 * command on a worker. Only these calls can succeed in that mode:
 * mail_view_update(_ex) without a \Recent claim to write, with the state
 * already current (a live watch that has not fired); mail_summaries from
 * the cache; and the accessors of views. With a driver whose reads are
 * local (AEROGRAM_CAP_LOCAL_READS), calls that only read also succeed,
 * within a budget of reads; with one whose writes are local too, so do
 * writes other than adds (APPEND, COPY, MOVE). Once a write succeeded, the
 * thread is back in blocking mode for the rest of the command: it cannot
 * be thrown away any more. */
void mail_nonblock(int on);
int mail_nonblock_hit(void);

/* ---- Undelete ---- */

/* One message brought back by mail_mailbox_undelete. */
struct mail_restored {
	uint32_t old_uid;           /* its UID when it was expunged */
	uint32_t uid;               /* its new UID */
	uint64_t expunged_ms;       /* when it was expunged (the entry's time) */
	uint64_t internal_date_ms;  /* kept */
	uint64_t size;
	uint32_t flags;             /* MAIL_F_* it came back with (never \Deleted) */
};

/* Brings back the messages of mb expunged at or after since_ms (0: all)
 * whose body and summary are still in the store (the engine's
 * expunge_retention keeps them; without one nothing is listed): each is
 * added again as a COPY would, under a new UID, with its internal date,
 * keywords and flags but \Deleted, all in one log entry. A message that
 * is back already (restored before, even by a concurrent call, or never
 * gone) is not added again. Moved messages are not listed (they live on
 * in the destination). *restored (may be NULL) receives how many came
 * back; *list (may be NULL; free() it) one entry each, in the order of
 * their new UIDs. */
int mail_mailbox_undelete(struct mail_mailbox *mb, uint64_t since_ms, size_t *restored,
                          struct mail_restored **list);

/* ---- Maintenance ---- */

/* Removes blobs and summaries of mailbox `name` that no message of its
 * replayed state refers to and whose id is older than grace_ms. *removed
 * (may be NULL) receives the number of messages collected. */
int mail_collect_orphans(struct mail_engine *eng, const char *user, const char *name,
                         uint64_t grace_ms, uint64_t *removed);

/* What mail_check_mailbox found. */
struct mail_check {
	uint64_t messages;          /* in the replayed state */
	uint64_t bytes;             /* their sizes, from their summaries */
	uint64_t missing_summaries; /* messages without a summary row */
	uint64_t bad_summaries;     /* messages whose summary does not decode */
	uint64_t missing_bodies;    /* messages without a body */
	uint64_t orphan_summaries;  /* summaries no message refers to, older than the grace */
	uint64_t orphan_bodies;     /* bodies no message refers to, older than the grace */
	uint64_t young_summaries;   /* the same, younger (appends possibly in flight) */
	uint64_t young_bodies;
};
/* Checks mailbox `name` without writing anything: replays its log, then
 * reads its summaries and lists its bodies. `problem` (may be NULL) is
 * called for each message missing a part. */
int mail_check_mailbox(struct mail_engine *eng, const char *user, const char *name, uint64_t grace_ms,
                       struct mail_check *out, void (*problem)(void *arg, uint32_t uid, const char *what),
                       void *arg);

/* Message ids as text: n bytes to 2n lowercase hex digits and a NUL
 * (out: 2n+1 bytes), and back (exactly 2n lowercase digits; 0 or -1). */
void mail_hex(const uint8_t *in, size_t n, char *out);
int mail_unhex(const char *in, uint8_t *out, size_t n);

#endif
