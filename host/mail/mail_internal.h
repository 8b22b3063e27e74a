/* mail_internal.h - what the files of host/mail/ share with each other. */
#ifndef AG_MAIL_INTERNAL_H
#define AG_MAIL_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "host/mail/mail.h"

/* ------------------------------------------------------------------ engine */

struct mail_engine {
	struct ag_store st;
	struct mail_engine_options opt;
	pthread_mutex_t rng_lock;
	uint64_t rng;
	pthread_mutex_t lock;          /* the open-mailbox table */
	struct mail_mailbox *open;     /* linked list of open mailboxes */
	/* the poller thread: syncs mailboxes whose watch fired */
	pthread_t poller;
	int poller_running;
	int stopping;
	pthread_cond_t poll_cond;
	/* 1: never sync implicitly before a write (only mail_mailbox_sync and
	 * the poller do); the simulation uses it to create stale writers. */
	int lazy;
};

uint64_t mail_now(struct mail_engine *eng);
uint64_t mail_rand64(struct mail_engine *eng);
void mail_rand_bytes(struct mail_engine *eng, uint8_t *out, size_t n);
void mail_log(struct mail_engine *eng, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The driver's message for the last failed call of this thread. */
const char *mail_store_error(struct mail_engine *eng);
void mail_hex(const uint8_t *in, size_t n, char *out); /* out: 2n+1 */
int mail_unhex(const char *in, uint8_t *out, size_t n); /* 0 or -1 */
/* Reads every page of one range query (pk and bounds copied per page);
 * calls fn for each row. Returns the status and counts the calls made. */
int mail_read_range(struct mail_engine *eng, const struct aerogram_row_query *q,
                    int (*fn)(void *arg, const struct aerogram_row *row), void *arg);
/* Lists every blob key under prefix (all pages); *keys owned by caller. */
int mail_list_blobs(struct mail_engine *eng, const char *prefix, char ***keys, size_t *n);
void mail_free_strv(char **v, size_t n);

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
struct uidx_msg {
	uint8_t id[UIDX_ID];
	uint32_t uid;
	uint32_t gone;  /* view snapshots only: expunged in the shared state, not yet told */
	uint64_t modseq;
	uint64_t flags; /* bits 0-4 system flags, bit 5+k keyword k of the state */
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
	uint32_t uidvalidity;    /* starts at 1 */
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
};

enum uidx_op_kind {
	UIDX_OP_ADD = 1,
	UIDX_OP_DEL = 2,
	UIDX_OP_FLAG_ADD = 3,
	UIDX_OP_FLAG_DEL = 4,
	UIDX_OP_FLAG_SET = 5,
	UIDX_OP_BUMP = 6,
	UIDX_OP_CLAIM = 7,
};
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
	int has_anchor;               /* ADD: anchor is set */
	struct ag_ts anchor;          /* ADD: the newest add of the writer's view */
	struct ag_ts ts;              /* the log entry's timestamp (not encoded) */
};

struct uidx_state *uidx_new(void);
struct uidx_state *uidx_clone(const struct uidx_state *s);
void uidx_free(struct uidx_state *s);
/* Applies op (deterministic, total: never fails except out of memory). */
int uidx_apply(struct uidx_state *s, const struct uidx_op *op);
const struct uidx_msg *uidx_find_uid(const struct uidx_state *s, uint32_t uid);
const struct uidx_msg *uidx_find_id(struct uidx_state *s, const uint8_t *id);
int uidx_is_recent(const struct uidx_state *s, const uint8_t *owner, uint32_t uid);
void uidx_op_free(struct uidx_op *op);
/* Helpers to build an op's keyword table and flag bits from API flags. */
int uidx_op_set_keywords(struct uidx_op *op, const char *const *kw, size_t n);
uint64_t uidx_state_to_op_flags(struct uidx_op *op, const struct uidx_state *s, uint64_t flags);
void uidx_prune_recent(struct uidx_state *s);

int codec_op_encode(const struct uidx_op *op, struct cbuf *b);
int codec_op_decode(const uint8_t *p, size_t len, struct uidx_op **out);
int codec_state_encode(const struct uidx_state *s, struct cbuf *b);
int codec_state_decode(const uint8_t *p, size_t len, struct uidx_state **out);

/* ------------------------------------------------------------------- oplog */

/* How often a full state is cached in the history, so that a rewind
 * replays at most this many operations. */
#define OPLOG_KEEP_STATE_EVERY 128
/* Time-based checkpoints, as in the original: operations older than this,
 * checkpoints at least this far apart, at least CHECKPOINT_MIN_OPS. */
#define OPLOG_CHECKPOINT_INTERVAL_MS (6ull * 3600 * 1000)
#define OPLOG_CHECKPOINT_MIN_OPS 16
/* Count-based checkpoints: once this many settled operations follow the
 * newest checkpoint, write one, so that an open replays a bounded tail. */
#define OPLOG_CHECKPOINT_MAX_OPS 256
/* An operation is settled (every writer's copy of it is visible) this long
 * after its timestamp; count-based checkpoints include only settled ones. */
#define OPLOG_SETTLE_MS (5ull * 60 * 1000)
/* Checkpoint attempts after a push are throttled to one per this long. */
#define OPLOG_CHECKPOINT_TRY_MS (60ull * 1000)
#define OPLOG_CHECKPOINTS_TO_KEEP 3
/* Range reads ask for pages of this many rows. */
#define OPLOG_PAGE 1000
/* A log-entry write that fails as "unavailable" is retried (same key, same
 * bytes, so it can never be applied twice) this many times. */
#define OPLOG_WRITE_TRIES 3

struct oplog_entry {
	struct ag_ts ts;
	struct uidx_op *op;
	struct uidx_state *cached; /* state after this entry, or NULL */
};
/* How many of its own watch-row values an engine remembers. */
#define MAIL_OWN_WATCH 8

struct oplog {
	struct mail_engine *eng;
	char *pk;            /* <u>/index/<mbox> */
	char *ckpt_prefix;   /* <u>/index/<mbox>/checkpoint/ */
	struct ag_ts ckpt_ts;
	struct uidx_state *ckpt_state;
	struct oplog_entry *hist;
	size_t n, cap;
	struct uidx_state *cur;
	char *watch_token;
	/* The values this engine last wrote to the watch row (a ring of the
	 * newest MAIL_OWN_WATCH). A fired watch showing only such values reports
	 * nothing the engine has not seen (see adopt_own_fire_locked). */
	uint8_t own_watch[MAIL_OWN_WATCH][16];
	unsigned n_own_watch;
	uint64_t version;          /* bumped whenever cur changes */
	uint64_t last_ckpt_try;
	/* statistics of the last sync, for tests */
	uint64_t last_sync_rows;
	int ckpt_loaded;           /* a checkpoint was loaded by the last sync */
};

int oplog_init(struct oplog *log, struct mail_engine *eng, const char *user, const char *mbox_id);
void oplog_clear(struct oplog *log);
/* Reads the newest checkpoint and the log, rewinding and replaying as needed. */
int oplog_sync(struct oplog *log);
/* Writes one operation (after the caller synced), then the watch row, and
 * applies it locally. Takes ownership of op in every case. */
int oplog_push(struct oplog *log, struct uidx_op *op);
/* Checkpoints if due (force: see mail_mailbox_checkpoint). */
int oplog_checkpoint(struct oplog *log, int force);

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
int mblist_valid_name(const char *name);
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
	int refs;                   /* under eng->lock */
	char *user;
	char id[33];
	uint32_t uv_base;           /* the list's UIDVALIDITY for this name, minus 1 */
	pthread_mutex_t lock;       /* the oplog and the state */
	struct oplog log;
	int deleted;
	/* poller */
	struct aerogram_watch *watch;
	int watch_fired;
	int watch_failed;
	uint64_t retry_at;
	int synced_since_fire;      /* no remote change known since the last sync */
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
#define MAIL_SYNC_QUIET 0
#define MAIL_SYNC_FORCE 1
int mailbox_sync_locked(struct mail_mailbox *mb, int mode);
void mailbox_notify(struct mail_mailbox *mb);
uint32_t mailbox_uidvalidity(const struct mail_mailbox *mb, const struct uidx_state *s);
void engine_poller_start(struct mail_engine *eng);
void engine_poller_stop(struct mail_engine *eng);
void mailbox_watch_arm(struct mail_mailbox *mb);
void mailbox_watch_release(struct mail_mailbox *mb);
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
};

#endif
