/* fetch_cache.h - what FETCH derives from a message summary, kept per message.
 *
 * A message's summary (its header block and serialised MIME structure)
 * never changes for a message id, yet FETCH decoded the structure, parsed
 * the address lists and wrote ENVELOPE/BODY/BODYSTRUCTURE again on every
 * request: a third of the daemon's CPU under a mixed client load. This
 * cache keeps, per (user, mailbox id, message id):
 *   - the rendered ENVELOPE, BODY and BODYSTRUCTURE texts, byte for byte
 *     what envelope_write_message / bodystructure_write append;
 *   - a skeleton of the part tree (mime_message_skeleton: offsets, sizes,
 *     flags), which is all that sections and RFC822.SIZE read;
 *   - the internal date, so that a FETCH of only these items and
 *     INTERNALDATE reads no summary when every message is cached.
 * Entries are immutable once built, so they are never invalidated: an
 * expunged message's entry simply ages out.
 *
 * One cache serves the whole process (the FETCH runs of every worker
 * thread); a mutex guards the table, the list and the reference counts,
 * and is held for a lookup or an insert only, never while rendering.
 * Memory: the sum of what entries take from the heap (their texts, key,
 * skeleton and bookkeeping, counted as allocated) stays under the budget;
 * the oldest entries not used since they came in go first (used ones are
 * spared once: second chance, close to least recently used at the cost of
 * a mark per hit). An entry still in use by a
 * FETCH when it is evicted is freed by its last release. A message of
 * imaptest's test mailbox (2.1 parts on average) costs about 1.6 KiB, so the
 * default budget of AG_FETCH_CACHE_DEFAULT_BYTES holds some 20,000. */
#ifndef AG_HOST_FETCH_CACHE_H
#define AG_HOST_FETCH_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/mime.h"

/* The budget of the process-wide cache. */
#define AG_FETCH_CACHE_DEFAULT_BYTES ((size_t)32 * 1024 * 1024)

/* What FETCH answers from for one message. Read-only for its users. */
struct ag_fetch_entry {
	const struct mime_message *skeleton; /* part tree for sections, RFC822.SIZE */
	const char *envelope;                /* "(date subject ...)" */
	size_t envelope_len;
	const char *body;                    /* BODY's "(...)" */
	size_t body_len;
	const char *bodystructure;           /* BODYSTRUCTURE's "(...)" */
	size_t bodystructure_len;
	uint64_t internal_date_ms;           /* INTERNALDATE, from the summary */
};

struct ag_fetch_cache;

/* Counters for tests and diagnostics. */
struct ag_fetch_cache_stats {
	size_t entries;   /* entries in the table */
	size_t bytes;     /* heap bytes they take */
	size_t budget;
	uint64_t hits, misses, evictions;
};

/* A new empty cache of `budget` bytes (0 keeps nothing); NULL when out of
 * memory. Free with ag_fetch_cache_free once no entry is in use. */
struct ag_fetch_cache *ag_fetch_cache_new(size_t budget);
/* Frees a cache and its entries. */
void ag_fetch_cache_free(struct ag_fetch_cache *cache);
/* The process-wide cache (AG_FETCH_CACHE_DEFAULT_BYTES), created on first
 * use; NULL only when it could not be allocated. Owned by the process. */
struct ag_fetch_cache *ag_fetch_cache_global(void);

/* The entry of a message, or NULL (a miss). A returned entry stays valid
 * until the caller gives it back with ag_fetch_cache_release. */
const struct ag_fetch_entry *ag_fetch_cache_get(struct ag_fetch_cache *cache, const char *user,
                                                const char *mailbox_id, const char *message_id);
/* Builds the entry of a message from its decoded structure `msg` (which
 * the caller keeps) and its summary's internal date, and stores it. Returns it like ag_fetch_cache_get (when
 * another thread stored the same message meanwhile, that entry; when it
 * does not fit the budget, an entry that is not stored but valid until its
 * release), or NULL when out of memory. */
const struct ag_fetch_entry *ag_fetch_cache_put(struct ag_fetch_cache *cache, const char *user,
                                                const char *mailbox_id, const char *message_id,
                                                const struct mime_message *msg, uint64_t internal_date_ms);
/* Gives back an entry from ag_fetch_cache_get or _put (NULL is ignored). */
void ag_fetch_cache_release(struct ag_fetch_cache *cache, const struct ag_fetch_entry *entry);
/* Current counters. */
void ag_fetch_cache_get_stats(struct ag_fetch_cache *cache, struct ag_fetch_cache_stats *out);

#endif
