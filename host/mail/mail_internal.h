/* mail_internal.h - what the files of host/mail/ share with each other. */
#ifndef AG_MAIL_INTERNAL_H
#define AG_MAIL_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "host/mail/htable.h"
#include "host/mail/mail.h"
#include "host/mail/store.h"

/* ------------------------------------------------------------------ engine */

struct scache;
struct add_wait;
struct list_cache;
struct bcache;

struct mail_engine {
	struct ag_store st;
	struct mail_engine_options opt;
	pthread_mutex_t rng_lock;
	uint64_t rng;
	uint8_t id[16];                /* random: names this engine's claim rows */
	pthread_mutex_t lock;          /* the open-mailbox table */
	struct mail_mailbox *open;     /* linked list of open mailboxes */
	/* the poller thread: syncs mailboxes whose watch fired */
	pthread_t poller;
	int poller_running;
	int stopping;
	pthread_cond_t poll_cond;
	/* 1: never sync implicitly before a write (only mail_mailbox_sync and
	 * the poller do), and, without conditional writes, add without taking
	 * the turn: the simulation uses it to create stale writers, as a daemon
	 * of an older version would be. */
	int lazy;
	/* the driver offers row_insert_if (ABI 1.1, AEROGRAM_CAP_CONDITIONAL) */
	int cas;
	/* its reads (and writes) wait for nothing remote: AEROGRAM_CAP_LOCAL_* */
	int local_reads, local_writes;
	int snapshot_reads; /* AEROGRAM_CAP_SNAPSHOT_READS */
	/* closed mailboxes kept warm (LRU, most recent first) */
	size_t n_cached;
	struct scache *summaries;
	struct bcache *bodies;         /* bodies read or written lately (bcache.c) */
	/* bodies and summaries of messages this engine expunged, removed by
	 * the poller after MAIL_REAP_GRACE_MS (under lock) */
	struct reap *reap_head, *reap_tail;
	/* expunge_retention (option): 0, or how long expunged messages'
	 * contents stay; then the states keep the recently expunged list and
	 * checkpoints collect from it (mail_hold_ms) instead of the reap queue */
	uint64_t retention_ms;
	/* MAIL_REAP_GRACE_MS, or MAIL_REAP_GRACE_PRIVATE_MS on a private store */
	uint64_t grace_ms;
	/* users' mailbox lists kept in memory while a watch on their row has
	 * not fired (mailbox_list.c); `list_gen` counts the saves */
	pthread_mutex_t list_lock;
	struct list_cache *lists;      /* every entry (eviction, flush) */
	struct htable list_table;      /* the same, by user */
	size_t n_lists;
	uint64_t list_gen;
};

/* How long the contents of a message expunged at `at` stay: the retention,
 * and never less than the grace period. */
uint64_t mail_hold_ms(const struct mail_engine *eng);
/* With a retention, a mailbox's recently expunged list holds at most this
 * many entries: past it, the oldest are collected first whatever their age
 * (a checkpoint carries the list; README: expunge retention). */
#define MAIL_EXPUNGED_MAX 100000
/* Removes the bodies, then the summaries, of messages of mailbox `mbox`
 * (the engine's log names a failure). */
int mail_remove_messages(struct mail_engine *eng, const char *user, const char *mbox,
                         const uint8_t (*ids)[16], size_t n);

/* Expunged messages' contents stay this long, for sessions still reading
 * them from an older snapshot: in any daemon sharing the store, or, on a
 * store private to this process (AEROGRAM_CAP_PRIVATE), only in this one,
 * where a command holds a snapshot for far less. Past it, a FETCH of such
 * a message answers NO [EXPUNGEISSUED], as Dovecot's does at once. */
#define MAIL_REAP_GRACE_MS (60ull * 1000)
#define MAIL_REAP_GRACE_PRIVATE_MS (5ull * 1000)
struct reap {
	struct reap *next;
	char *user;
	char mbox[33];
	uint64_t at;
	size_t n;
	uint8_t (*ids)[16];
};
/* Queues the contents of expunged messages (ids copied) for removal. */
void mail_reap_later(struct mail_engine *eng, const char *user, const char *mbox,
                     const uint8_t (*ids)[16], size_t n);
/* Removes what is due (poller thread; `all`: everything, at shutdown). */
void mail_reap_due(struct mail_engine *eng, int all);

/* Non-blocking mode (mail.h): whether it is on for this thread; and, when
 * it is, record that a call would have waited and return 1: any store call
 * (mail_would_block), a read of `cost` units (unless the driver's reads are
 * local and the attempt's budget allows), a write (unless the driver's
 * writes are local too). */
int mail_is_nonblock(void);
int mail_would_block(void);
int mail_would_block_read(const struct mail_engine *eng, unsigned cost);
int mail_would_block_write(const struct mail_engine *eng);
/* Work from memory of `cost` units: spends the attempt's budget, and
 * past it records a would-wait and returns 1, whatever the driver. */
int mail_would_block_cpu(unsigned cost);
void mail_nonblock_spend(unsigned cost);
/* After a write made in non-blocking mode: the rest of the call sequence
 * runs in blocking mode (it cannot be thrown away any more). */
void mail_nonblock_commit(void);
/* Locks m, or in non-blocking mode takes it only if free (MAIL_EAGAIN). */
int mail_lock_or_again(pthread_mutex_t *m);
/* At the entry of a call that reads or writes the store. */
#define MAIL_READ_CALL(eng)                          \
	do {                                         \
		if (mail_would_block_read((eng), 1)) \
			return MAIL_EAGAIN;          \
	} while (0)
#define MAIL_WRITE_CALL(eng)                       \
	do {                                       \
		if (mail_would_block_write((eng))) \
			return MAIL_EAGAIN;        \
	} while (0)
/* Puts the bodies of an add (keys[i] <- msgs[i].body), up to
 * MAIL_PUT_PARALLEL at once on a store whose reads are not local
 * (bodies.c). 0 or the first error. */
#define MAIL_PUT_PARALLEL 8
int mail_put_bodies(struct mail_engine *eng, char *const *keys, const struct mail_new_message *msgs, size_t n);
/* Sleeps ms milliseconds (the engine's sleep option, or nanosleep). */
void mail_sleep(struct mail_engine *eng, uint32_t ms);

uint64_t mail_now(struct mail_engine *eng);

uint64_t mail_rand64(struct mail_engine *eng);
void mail_rand_bytes(struct mail_engine *eng, uint8_t *out, size_t n);
void mail_log(struct mail_engine *eng, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void mail_free_strv(char **v, size_t n);
/* Grows the array *pa (a pointer to the array's pointer; *cap elements of
 * `size` bytes) to hold at least `need`, doubling from `first`: 0, or -1
 * with the array and *cap as they were. */
int mail_grow(void *pa, size_t *cap, size_t need, size_t size, size_t first);

/* --------------------------------------------------------------- timestamp */

struct ag_ts {
	uint64_t ms;
	uint64_t rnd;
};
#define AG_TS_HEX 32
void ts_format(struct ag_ts ts, char out[AG_TS_HEX + 1]);
int ts_parse(const char *s, struct ag_ts *out); /* 0 or -1 */
int ts_cmp(struct ag_ts a, struct ag_ts b);
/* A timestamp strictly after prev: ms = max(now, prev.ms + 1), random rnd. */
struct ag_ts ts_after(struct mail_engine *eng, struct ag_ts prev);

/* ------------------------------------------------------------------- codec */

struct cbuf {
	uint8_t *p;
	size_t len, cap;
	int oom;
};
struct crd {
	const uint8_t *p;
	size_t len, pos;
	int bad;
};
void cb_u8(struct cbuf *b, uint8_t v);
void cb_var(struct cbuf *b, uint64_t v);
void cb_raw(struct cbuf *b, const void *p, size_t n);
void cb_bytes(struct cbuf *b, const void *p, size_t n); /* length-prefixed */
uint8_t cr_u8(struct crd *r);
uint64_t cr_var(struct crd *r);
uint32_t cr_u32(struct crd *r);  /* a varint that must fit 32 bits */
const uint8_t *cr_raw(struct crd *r, size_t n);
const uint8_t *cr_bytes(struct crd *r, size_t *n, size_t max);

/* ---------------------------------------------------------------- uidindex */

#define UIDX_ID 16
/* The time (ms) a message id was made at: its first 8 bytes (message.c). */
uint64_t msg_id_time(const uint8_t id[UIDX_ID]);
/* The size of a message added by an entry written before adds carried
 * sizes (README: sizes): read from its summary when needed. */
#define UIDX_SIZE_UNKNOWN UINT64_MAX
struct uidx_msg {
	uint8_t id[UIDX_ID];
	uint32_t uid;
	uint32_t gone;  /* view snapshots only: expunged in the shared state, not yet told */
	uint64_t modseq;
	uint64_t flags; /* bits 0-4 system flags, bit 5+k keyword k of the state */
	uint64_t size;  /* RFC822.SIZE, or UIDX_SIZE_UNKNOWN */
};
struct uidx_recent {
	uint8_t owner[UIDX_ID];
	uint32_t lo, hi; /* UIDs [lo, hi) are recent to owner */
};
/* Where each of the last UIDX_MARKS adds of the replayed log ended, so that
 * an add naming the newest add its writer knew (its anchor) is charged only
 * for the UIDs allocated since (README: the UID index). */
#define UIDX_MARKS 32
struct uidx_mark {
	struct ag_ts ts;  /* the add's log timestamp */
	uint32_t uidnext; /* uidnext right after it */
};
struct uidx_state {
	struct uidx_msg *msgs; /* ascending uid */
	size_t n, cap;
	char *keywords[MAIL_MAX_KEYWORDS];
	size_t n_keywords;
	uint32_t uidvalidity;    /* uv_init + every collision term and BUMP */
	uint32_t uv_init;        /* the largest INIT value (1 without one) */
	uint32_t uidnext;        /* next UID to allocate, starts at 1 */
	uint64_t highestmodseq;  /* number of modifying operations, starts at 0 */
	uint32_t recent_upto;    /* UIDs below this have been claimed */
	struct uidx_recent *recent;
	size_t n_recent;
	/* id -> uid hash (open addressing; uid 0 = removed) */
	struct uidx_slot { uint8_t id[UIDX_ID]; uint32_t uid; } *hash;
	size_t hash_cap, hash_used;
	struct uidx_mark marks[UIDX_MARKS]; /* the last adds, oldest first */
	size_t n_marks;
	/* Adds applied whose writer had seen more adds before them than this
	 * state holds: the state misses a late add (not encoded; README). */
	uint32_t add_gaps;
	/* The sum of the known sizes of msgs, and how many sizes are unknown
	 * (derived: recomputed on decode, kept by apply). */
	uint64_t total_size;
	size_t n_unsized;
	/* Recently expunged messages, oldest first, kept for undelete while
	 * their contents stay in the store (expunge_retention; README). Only
	 * recorded when keep_expunged is set (not encoded: the engine sets it
	 * on every state it makes); the engine prunes them once collected.
	 * Advisory: nothing else in the state depends on them. */
	struct uidx_expunged *expunged;
	size_t n_expunged, cap_expunged;
	int keep_expunged;
	/* Every expunge of the log as runs of UIDs with the modseq of their
	 * DEL, oldest first (QRESYNC, RFC 7162 3.2.5; README: MODSEQ). Kept
	 * in every state and every checkpoint; at most UIDX_VANISHED_MAX runs,
	 * the oldest dropped first, and vanished_floor is then the highest
	 * modseq dropped: expunges at or below it are no longer known one by
	 * one. Not copied to views' snapshots. */
	struct uidx_vanished *vanished;
	size_t n_vanished, cap_vanished;
	uint64_t vanished_floor;
};
struct uidx_vanished {
	uint64_t modseq; /* of the DEL that expunged them */
	uint32_t lo, hi; /* UIDs lo..hi, inclusive */
};
#define UIDX_VANISHED_MAX 100000
struct uidx_expunged {
	uint8_t id[UIDX_ID];
	uint32_t uid;    /* its UID when it was expunged */
	uint64_t flags;  /* its flags then, as state bits */
	uint64_t at;     /* the ms of the DEL entry's timestamp */
};
/* Op flags of a DEL: its messages live on elsewhere (the DEL of a MOVE), so
 * they are not recorded as recently expunged. Other daemons ignore it. */
#define UIDX_DEL_MOVED 1u

enum uidx_op_kind {
	UIDX_OP_ADD = 1,
	UIDX_OP_DEL = 2,
	UIDX_OP_FLAG_ADD = 3,
	UIDX_OP_FLAG_DEL = 4,
	UIDX_OP_FLAG_SET = 5,
	UIDX_OP_BUMP = 6,
	UIDX_OP_CLAIM = 7,
	UIDX_OP_INIT = 8,   /* the mailbox's first UIDVALIDITY (bump: the value); largest wins */
	UIDX_OP_LATE = 9,   /* no effect on the state: names (anchor) an entry written late */
};
#define UIDX_OP_LAST UIDX_OP_LATE
struct uidx_op {
	uint8_t kind;
	uint32_t seen_uidnext;        /* ADD: the writer's uidnext; CLAIM: claim up to */
	uint32_t bump;                /* BUMP */
	uint8_t owner[UIDX_ID];       /* CLAIM */
	char **keywords;              /* op-local keyword table */
	size_t n_keywords;
	uint64_t flags;               /* FLAG_*: op-local flag bits */
	size_t n;                     /* items */
	uint8_t (*ids)[UIDX_ID];
	uint64_t *item_flags;         /* ADD: op-local flag bits per item */
	uint64_t *item_sizes;         /* ADD: each item's size (UIDX_SIZE_UNKNOWN allowed);
	                               * NULL in adds written before sizes were logged */
	int has_anchor;               /* ADD: anchor is set; LATE: always */
	struct ag_ts anchor;          /* ADD: the newest add of the writer's view; LATE: the late entry */
	struct ag_ts ts;              /* the log entry's timestamp (not encoded) */
};

struct uidx_state *uidx_new(void);
struct uidx_state *uidx_clone(const struct uidx_state *s);
/* The same, without the recently expunged list when with_expunged is 0
 * (sessions' snapshots do not need it). */
struct uidx_state *uidx_clone_ex(const struct uidx_state *s, int with_expunged);
/* Removes the recently expunged entries for which drop(arg, e) is true. */
void uidx_expunged_filter(struct uidx_state *s, int (*drop)(void *arg, const struct uidx_expunged *e), void *arg);
void uidx_free(struct uidx_state *s);
/* Applies op (deterministic, total: never fails except out of memory). */
int uidx_apply(struct uidx_state *s, const struct uidx_op *op);
const struct uidx_msg *uidx_find_uid(const struct uidx_state *s, uint32_t uid);
const struct uidx_msg *uidx_find_id(struct uidx_state *s, const uint8_t *id);
int uidx_is_recent(const struct uidx_state *s, const uint8_t *owner, uint32_t uid);
/* In an array of n disjoint ascending UID ranges [lo, hi), `stride` bytes
 * each with their uint32_t hi at `hi_offset`: the index of the first range
 * whose hi is above uid (n when none). Serves the claims of a state and the
 * \Recent ranges of a view that does not claim. */
size_t uidx_range_search(const void *ranges, size_t n, size_t stride, size_t hi_offset, uint32_t uid);
void uidx_op_free(struct uidx_op *op);
/* Helpers to build an op's keyword table and flag bits from API flags. */
int uidx_op_set_keywords(struct uidx_op *op, const char *const *kw, size_t n);
/* The index of keyword kw in op's table, added if new (case-insensitive):
 * -1 when the table is full (MAIL_MAX_KEYWORDS: kw is dropped), -2 out of
 * memory. */
int uidx_op_keyword(struct uidx_op *op, const char *kw);
uint64_t uidx_state_to_op_flags(struct uidx_op *op, const struct uidx_state *s, uint64_t flags);
void uidx_prune_recent(struct uidx_state *s);
/* Sets the size of message `id` when it is unknown (read from its summary:
 * a message's size never changes, so every state may take it). */
void uidx_set_size(struct uidx_state *s, const uint8_t *id, uint64_t size);

int codec_op_encode(const struct uidx_op *op, struct cbuf *b);
int codec_op_decode(const uint8_t *p, size_t len, struct uidx_op **out);
int codec_state_encode(const struct uidx_state *s, struct cbuf *b);
int codec_state_decode(const uint8_t *p, size_t len, struct uidx_state **out);

/* ------------------------------------------------------------------- oplog */

/* Range reads ask for pages of this many rows. */
#define OPLOG_PAGE 1000
/* A log-entry write that fails as "unavailable" is retried (same key, same
 * bytes, so it can never be applied twice) this many times. */
#define OPLOG_WRITE_TRIES 3
/* Without conditional writes, entries can become visible out of timestamp
 * order ("late"): a write is *timely* when the store acknowledged it within
 * OPLOG_LATE_MS of its timestamp (the writer checks; a slower one announces
 * itself with a LATE entry), and clocks differ by at most OPLOG_SKEW_MS. A
 * sync then re-reads from OPLOG_OVERLAP_MS before the previous sync began,
 * and a checkpoint includes only entries older than that before its own
 * sync began (README: incremental sync). With conditional writes nothing is
 * ever late and no window is needed. */
#define OPLOG_LATE_MS 500
#define OPLOG_SKEW_MS 500
#define OPLOG_OVERLAP_MS (OPLOG_LATE_MS + OPLOG_SKEW_MS)
#define OPLOG_LATE_PENDING 16
/* Without conditional writes, a sync reads everything since the newest
 * checkpoint at least this often (a writer may die between a slow write
 * and its LATE announcement). */
#define OPLOG_DEEP_EVERY_MS (60ull * 1000)
/* Without conditional writes, the entries of the last OPLOG_FOLD_MS stay in
 * memory so that a late one can be merged by replaying them; older ones are
 * folded into a base state. */
#define OPLOG_FOLD_MS (60ull * 1000)
#define OPLOG_FOLD_BATCH 64
/* Log rows and checkpoints younger than this are never collected, and a
 * state not synced for half of it reloads from a checkpoint. */
#define OPLOG_RETAIN_MS (10ull * 60 * 1000)
/* Checkpoints: written once the entries after the newest one weigh a
 * quarter of the state (encoded, with a floor), or number CKPT_MAX whatever
 * their size; and when a mailbox has been quiet for CKPT_IDLE_MS with a
 * tail of at least CKPT_IDLE_MIN entries worth folding (README): a command
 * or two leaves no checkpoint behind, a burst of writes does. */
#define OPLOG_CKPT_MAX 2048
#define OPLOG_CKPT_FLOOR_BYTES 16384
#define OPLOG_CKPT_IDLE_MS 2000
#define OPLOG_CKPT_IDLE_MIN 8
/* After a failed checkpoint attempt, the next one waits this long. */
#define OPLOG_CKPT_RETRY_MS (60ull * 1000)
#define OPLOG_CHECKPOINTS_TO_KEEP 3
/* Without conditional writes, adds take turns (README: UID allocation): a
 * claim not released within OPLOG_TURN_LEASE_MS, as seen by the waiter's
 * own clock, is presumed dead. A holder that has not written its add
 * within half of it gives the turn back and tries again. */
#define OPLOG_TURN_LEASE_MS 30000
/* Claim rows sort after "watch", outside the log's range. */
#define OPLOG_TURN_PREFIX "xturn/"

struct oplog_entry {
	struct ag_ts ts;
	struct uidx_op *op;
	uint32_t bytes;   /* encoded size */
};
/* How many of its own watch-row values an engine remembers. */
#define MAIL_OWN_WATCH 8
/* How many busy turn claims a waiter tracks (for the lease). */
#define OPLOG_TURN_SEEN 8

struct oplog {
	struct mail_engine *eng;
	char *pk;            /* <u>/index/<mbox> */
	char *ckpt_prefix;   /* <u>/index/<mbox>/checkpoint/ */
	int cas;             /* the driver has row_insert_if: every write is conditional */
	int loaded;          /* a first sync (checkpoint and tail) completed */
	struct uidx_state *cur;  /* every known entry applied, in timestamp order */
	/* Without conditional writes only: the state after every known entry
	 * before base_ts (NULL: the empty state), and the known entries from
	 * base_ts on, ascending, so that a late entry can be merged. */
	struct uidx_state *base;
	struct ag_ts base_ts;
	struct oplog_entry *hist;
	size_t n, cap;
	struct ag_ts newest;       /* the newest entry applied (or the checkpoint cut) */
	uint64_t prev_sync_start;  /* engine clock when the last complete read began */
	uint64_t last_sync_done;   /* engine clock when it ended */
	uint64_t last_deep_sync;   /* engine clock of the last read since the checkpoint */
	struct ag_ts ckpt_ts;      /* cut of the newest checkpoint this state knows */
	uint64_t tail_n, tail_bytes; /* entries applied since that cut */
	size_t state_bytes;        /* encoded size of the last checkpoint seen or written */
	uint64_t ckpt_retry_at;    /* no checkpoint attempt before (after a failure) */
	int defer_ckpt;            /* a poller writes checkpoints (not the writer) */
	int ckpt_wanted;           /* a checkpoint is due by size */
	uint64_t last_activity;    /* engine clock of the last entry applied */
	char *watch_token;
	/* The values this engine last wrote to the watch row (a ring of the
	 * newest MAIL_OWN_WATCH). A fired watch showing only such values reports
	 * nothing the engine has not seen (see mailbox_adopt_own_fire_locked). */
	uint8_t own_watch[MAIL_OWN_WATCH][16];
	unsigned n_own_watch;
	uint64_t version;          /* bumped whenever cur changes */
	/* Set by a writer around one oplog_push (mb->lock held): called with
	 * the state the entry will follow, before every attempt to write it,
	 * it may narrow the op's items (a conditional STORE, RFC 7162
	 * UNCHANGEDSINCE). An op left with no item is not written. */
	void (*filter)(void *arg, struct uidx_state *cur, struct uidx_op *op);
	void *filter_arg;
	/* turn claims of others seen busy, with when first seen (lease) */
	struct oplog_turn_seen {
		uint8_t id[16];
		uint64_t since;
	} turn_seen[OPLOG_TURN_SEEN];
	size_t n_turn_seen;
	/* statistics, for tests */
	uint64_t last_sync_rows;   /* log rows the last sync read */
	uint64_t rows_read;        /* log rows read since the state was created */
	int ckpt_loaded;           /* the last sync loaded a checkpoint */
	uint64_t turn_waits;       /* adds that found the turn busy */
	/* our entries whose write and read-back both failed (see doubt()) */
	struct ag_ts doubtful[OPLOG_LATE_PENDING];
	size_t n_doubtful;
	/* late entries of ours not announced yet (the announcement failed) */
	struct ag_ts late_pending[OPLOG_LATE_PENDING];
	size_t n_late_pending;
	char turn_sk[48];          /* this engine's claim row */
	char *turn_token;          /* its token, from our last read of it */
	uint64_t turn_dead_logged;
	int in_gap_reload;
	uint32_t gaps_given_up;    /* add_gaps that a full reload did not explain */
	/* set while a conditional write's outcome is unknown: the sync that
	 * follows says whether it read that entry */
	struct ag_ts probe;
	int probe_hit;
};

int oplog_init(struct oplog *log, struct mail_engine *eng, const char *user, const char *mbox_id);
void oplog_clear(struct oplog *log);
/* Reads what changed since the last sync (the first one: the newest
 * checkpoint and the log after it), merging late entries. `deep` re-reads
 * everything since the newest checkpoint's cut (before writing the next). */
int oplog_sync(struct oplog *log, int deep);
/* Writes one operation and applies it locally. Takes ownership of op in
 * every case. An ADD is given its `seen` and anchor here, on the freshest
 * state the write allows; `extra` rows (the messages' summaries) are
 * written before or with the entry. */
int oplog_push(struct oplog *log, struct uidx_op *op, const struct aerogram_row_write *extra,
               size_t n_extra);
/* Checkpoints if due (force: see mail_mailbox_checkpoint). */
int oplog_checkpoint(struct oplog *log, int force);
/* Whether the poller should write a checkpoint now: due by size, or the
 * mailbox has been quiet with a tail worth folding. */
int oplog_idle_checkpoint_due(const struct oplog *log, uint64_t now);

/* ----------------------------------------------------------- mailbox list */

struct mblist_entry {
	char *name;
	uint64_t id_ts;
	int has_id;
	uint8_t id[UIDX_ID];
	uint32_t uidvalidity;
	uint64_t sub_ts;
	int subscribed;
	uint64_t su_ts;
	uint32_t special_use;
};
struct mblist {
	struct mblist_entry *e; /* sorted by name */
	size_t n, cap;
};
void mblist_free(struct mblist *l);
struct mblist_entry *mblist_find(struct mblist *l, const char *name);
struct mblist_entry *mblist_get(struct mblist *l, const char *name); /* find or add */
/* Merges b into a (commutative, associative, idempotent). */
int mblist_merge(struct mblist *a, const struct mblist *b);
int mblist_entry_cmp_id(const struct mblist_entry *a, const struct mblist_entry *b);
int codec_mblist_encode(const struct mblist *l, struct cbuf *b);
int codec_mblist_decode(const uint8_t *p, size_t len, struct mblist *out);
/* Loads the user's list (merging siblings); *token owned by caller. */
int mblist_load(struct mail_engine *eng, const char *user, struct mblist *out, char **token);
int mblist_save(struct mail_engine *eng, const char *user, const struct mblist *l, const char *token);
/* Message bodies in memory (bcache.c), thread-safe. get: a malloc'd copy
 * (one spare byte at the end) and 1, or 0 when not cached. */
struct bcache *bcache_new(size_t budget);
void bcache_free(struct bcache *c);
int bcache_get(struct bcache *c, const char *key, uint8_t **data, size_t *len);
void bcache_put(struct bcache *c, const char *key, const uint8_t *data, size_t len);
void bcache_forget(struct bcache *c, const char *key);

/* Drops every cached list and releases their watches (engine shutdown). */
void mblist_cache_flush(struct mail_engine *eng);
/* At most this many users' lists stay cached (the least recently used
 * goes first). */
#define MAIL_LIST_CACHE_MAX 256
int mblist_valid_name(const char *name);
/* The list row's partition key, and the list a read row holds (its
 * siblings merged). */
void mblist_pk(char *out, size_t len, const char *user);
int mblist_from_row(struct mail_engine *eng, const char *pk, const struct aerogram_row *row, struct mblist *out);
/* Looks up a live mailbox by name: its id and the list's UIDVALIDITY. */
int mblist_lookup(struct mail_engine *eng, const char *user, const char *name, uint8_t *id, uint32_t *uv);

/* ----------------------------------------------------------------- summary */


struct summary {
	uint64_t internal_date_ms;
	uint64_t size;
	const uint8_t *header;
	size_t header_len;
	const uint8_t *bodystructure;
	size_t bodystructure_len;
};
int codec_summary_encode(const struct summary *s, struct cbuf *b);
int codec_summary_decode(const uint8_t *p, size_t len, struct summary *out); /* borrows p */

/* The summary cache: summaries never change (a message id names one
 * message for ever), so the engine keeps the recently used ones, keyed by
 * (mailbox, message id), within a byte budget (least recently used out). */
struct scache_entry {
	struct htable_idnode key;            /* mailbox and message id, hash and chain */
	struct scache_entry *newer, *older;  /* LRU list (protocol/list.h) */
	uint64_t internal_date_ms, size;
	size_t header_len, bodystructure_len;
	uint8_t *header;                     /* header then bodystructure, one allocation */
};
_Static_assert(UIDX_ID == HTABLE_ID_BYTES, "a summary is cached under its message id");
struct scache {
	pthread_mutex_t lock;
	struct htable table;
	size_t n;
	struct scache_entry *newest, *oldest;
	size_t bytes, budget;
	uint64_t hits, misses;
};
struct scache *scache_new(size_t budget);
void scache_free(struct scache *c);
/* Adds a summary (copied). */
void scache_put(struct scache *c, const struct mail_mailbox *mb, const uint8_t *id, const struct summary *s);
/* Fills *out (malloc'd copies) from the cache; 0 on a hit. */
int scache_get(struct scache *c, const struct mail_mailbox *mb, const uint8_t *id, struct mail_summary *out);
/* Drops every summary of mb (it is freed). */
void scache_forget(struct scache *c, const struct mail_mailbox *mb);
/* The size of a cached summary; 0 on a hit. */
int scache_size(struct scache *c, const struct mail_mailbox *mb, const uint8_t *id, uint64_t *size);
/* The sizes of n messages of mb from their summaries (cache, then one
 * row_read per OPLOG_PAGE of them, or one range read when they are most of
 * the n_all messages): sizes[i] is UIDX_SIZE_UNKNOWN for a summary gone. */
int summary_sizes(struct mail_mailbox *mb, const uint8_t (*ids)[UIDX_ID], size_t n, size_t n_all,
                  uint64_t *sizes);

/* Key helpers: out must hold at least 600 bytes. */
void key_summary_pk(char *out, size_t len, const char *user, const char *mbox_id);
void key_body(char *out, size_t len, const char *user, const char *mbox_id, const uint8_t *msg_id);

/* -------------------------------------------------------------- mailboxes */

struct mail_sub {
	struct mail_mailbox *mb;
	void (*cb)(void *arg);
	void *arg;
	struct mail_sub *next;
};

struct mail_mailbox {
	struct mail_engine *eng;
	struct mail_mailbox *next;  /* in eng->open */
	int refs;                   /* under eng->lock; 0: cached, closed */
	int watchers;               /* views and subscriptions (under eng->lock): only
	                             * with some is a watch kept armed */
	uint64_t closed_at;         /* when refs went to 0 (LRU) */
	uint64_t idle_tried_at;     /* the poller's last idle-checkpoint look (under eng->lock) */
	int shutdown_done;          /* mail_engine_checkpoint_all visited it */
	char *user;
	char id[33];
	uint32_t uv_base;           /* the list's UIDVALIDITY for this name, minus 1 */
	pthread_mutex_t lock;       /* the oplog and the state */
	struct oplog log;
	/* adds waiting to be written together (message.c: push_add) */
	pthread_mutex_t add_lock;
	pthread_cond_t add_cond;
	struct add_wait *add_head, *add_tail;
	int add_leader;
	int deleted;
	/* poller */
	struct aerogram_watch *watch;
	int watch_fired;
	int watch_failed;
	uint64_t retry_at;
	int synced_since_fire;      /* no remote change known since the last sync */
	int rearm_pending;          /* the watch fired for our own write: re-armed at retry_at */
	int in_poll;                /* the poller is about to arm the watch, or handling its
	                             * fire, with the token of the last sync (under eng->lock) */
	/* what the last fire showed, when the row held at most MAIL_OWN_WATCH
	 * 16-byte values: those and the row's token (under eng->lock) */
	uint8_t fired_value[MAIL_OWN_WATCH][16];
	size_t n_fired_values;
	int fired_value_ok;
	char *fired_token;
	/* subscribers */
	pthread_mutex_t sub_lock;
	pthread_cond_t sub_cond;
	int notifying;
	struct mail_sub *subs;
};

/* Syncs under mb->lock if the poller says something changed (or always
 * when there is no poller); notifies subscribers of a change. `mode`:
 * MAIL_SYNC_FORCE always reads (before an ADD, whose UIDs must be allocated
 * on the freshest state); MAIL_SYNC_QUIET (0) skips the read when the watch
 * is live and has not fired, or fired only for this engine's own writes. */
/* After the watch fired for this engine's own write, it is re-armed this
 * much later (README: sharing, poller). */
#define MAIL_REARM_DELAY_MS 50
#define MAIL_SYNC_QUIET 0
#define MAIL_SYNC_FORCE 1
int mailbox_sync_locked(struct mail_mailbox *mb, int mode);
void mailbox_notify(struct mail_mailbox *mb);
/* After a write: wakes the poller when the log wants a checkpoint. */
void mailbox_after_write(struct mail_mailbox *mb);
uint32_t mailbox_uidvalidity(const struct mail_mailbox *mb, const struct uidx_state *s);
/* Drops a reference; the last one keeps the state in the cache of closed
 * mailboxes (or frees it once deleted). */
void mailbox_unref(struct mail_mailbox *mb);

/* poller.c: the thread that waits on the watches (not started with
 * no_poller), and the watch of one mailbox. */
void engine_poller_start(struct mail_engine *eng);
void engine_poller_stop(struct mail_engine *eng);
void mailbox_watch_arm(struct mail_mailbox *mb);
void mailbox_watch_release(struct mail_mailbox *mb);
/* With mb->lock held: 1 when the last fire showed only this engine's own
 * watch writes, taken as a sync (its token adopted); else 0. */
int mailbox_adopt_own_fire_locked(struct mail_mailbox *mb);
/* Finds or makes the shared state of mailbox id `hex` of user and takes a
 * reference (release it with mail_mailbox_close); nothing is read. */
int mailbox_ref(struct mail_engine *eng, const char *user, const char *hex, struct mail_mailbox **out);
/* With mb->lock held: reads the sizes the state does not know from the
 * messages' summaries (nothing when it knows them all). */
int mailbox_load_sizes_locked(struct mail_mailbox *mb);
/* Frees every cached (closed) mailbox state. */
void mailbox_cache_flush(struct mail_engine *eng);
/* Removes the contents (log, checkpoints, summaries, bodies) of a mailbox id. */
int mailbox_remove_contents(struct mail_engine *eng, const char *user, const char *mbox_id);

/* -------------------------------------------------------------------- view */

struct mail_view {
	struct mail_mailbox *mb;
	uint8_t session[UIDX_ID];
	struct uidx_state *snap;   /* copy of the state the client has seen */
	uint32_t uv;               /* reported UIDVALIDITY of snap */
	uint64_t version;
	size_t n_gone;             /* messages of snap marked gone (deferred expunges) */
	/* HIGHESTMODSEQ of the last snapshot without deferred expunges: what
	 * the client may be told (mail_view_highestmodseq) */
	uint64_t told_modseq;
	int counted;               /* counted in mb->views */
	/* A view that claims no \Recent (EXAMINE) shows as \Recent the
	 * messages nobody had claimed when it first saw them, as Dovecot does:
	 * ascending, disjoint UID ranges [lo, hi). Sticky like a claim, so a
	 * later SELECT elsewhere does not take the flag away from this view. */
	int claims;
	struct mail_view_range { uint32_t lo, hi; } *ro_recent;
	size_t n_ro_recent;
};

/* ------------------------------------------- a mailbox seen from the side */

/* What aerogramctl check and orphan collection look at (orphans.c): the
 * mailbox's log, read into a log of its own (not the shared state of an
 * open mailbox), and where its summaries and bodies are. */
struct mailbox_look {
	struct oplog log;
	char hex[33];  /* the mailbox id */
	char pk[512];  /* the partition of its summaries */
	char pfx[600]; /* the prefix of its bodies' keys */
	uint64_t now;  /* the engine's clock when it was read */
};
/* Reads user's mailbox `name`; on an error there is nothing to close. */
int mailbox_look_open(struct mailbox_look *lk, struct mail_engine *eng, const char *user, const char *name);
void mailbox_look_close(struct mailbox_look *lk);

#endif
