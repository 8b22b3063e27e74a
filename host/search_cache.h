/* search_cache.h - what SEARCH takes from message summaries, kept per
 * process, bounded in memory, least recently used out first.
 *
 * A message's summary never changes (its id is never reused for another
 * message), so what a search derives from it holds forever: the folded
 * header fields the header keys compare with (protocol/search_fields.h),
 * the day of its Date header, its internal date and its size. Entries are
 * keyed by (user, mailbox id, message id); a message that is expunged
 * simply stops being asked for and ages out.
 *
 * A search first opens the shelf of its user's mailbox, which says which
 * header fields an entry keeps: From, To, Cc, Bcc and Subject always, plus
 * the few other names (SEARCH_CACHE_EXTRA_NAMES) that HEADER keys asked
 * for most recently in that mailbox. Then, holding the cache lock, it
 * looks its messages up; for those missing or lacking a field it reads
 * the summaries, extracts the facts without the lock, and puts them in.
 * Every function is thread-safe. */
#ifndef AG_SEARCH_CACHE_H
#define AG_SEARCH_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/search_fields.h"

/* The memory bound of the process's cache (entries, their fields and the
 * hash table): 64 MiB. An entry takes some 430 bytes for the headers of
 * bench/search_headers.py (one or two addressees, a short subject), so
 * about 150,000 messages fit. */
#define SEARCH_CACHE_BYTES ((size_t)64 << 20)
/* HEADER field names, beyond the five standard ones, a shelf keeps. */
#define SEARCH_CACHE_EXTRA_NAMES 8

/* What the cache keeps of one message. */
struct search_facts {
	uint64_t internal_date_ms;
	int has_vsize;                  /* vsize is known (it needs the body structure) */
	uint64_t vsize;                 /* RFC822.SIZE */
	struct search_fields *fields;   /* owned */
};

/* The header field names a search extracts: one allocation, free(). */
struct search_names {
	size_t count;
	const char *name[];             /* lowercase */
};

struct search_cache;
struct search_shelf;

/* A cache holding at most max_bytes; NULL when out of memory. Owned by
 * the caller: search_cache_free. */
struct search_cache *search_cache_new(size_t max_bytes);
/* Frees a cache and every entry; no shelf may be open. */
void search_cache_free(struct search_cache *c);
/* The process's cache (SEARCH_CACHE_BYTES), made on first use and kept
 * until exit; NULL only when out of memory. */
struct search_cache *search_cache_process(void);

/* Opens the shelf of (user, mailbox_id) and adds the lowercase field
 * names[0, n) to the names it keeps. *all receives what a search that
 * needs `names` extracts from a summary: the shelf's names and `names`
 * (caller-owned, free()). Returns NULL when out of memory. Close it with
 * search_cache_close. */
struct search_shelf *search_cache_open(struct search_cache *c, const char *user, const char *mailbox_id,
				       const char *const *names, size_t n, struct search_names **all);
/* Closes a shelf opened by search_cache_open. */
void search_cache_close(struct search_cache *c, struct search_shelf *shelf);

/* Takes and releases the cache lock, which search_cache_get needs. */
void search_cache_lock(struct search_cache *c);
void search_cache_unlock(struct search_cache *c);
/* With the lock held: the facts of the message whose id is msg_id (32
 * hex digits) on the shelf, or NULL; borrowed until the lock is released.
 * Counts as a use. */
const struct search_facts *search_cache_get(struct search_cache *c, struct search_shelf *shelf,
					    const char *msg_id);
/* Stores the facts of a message on an open shelf (lock not held), replacing what the
 * shelf had for it, and evicts the least recently used entries beyond the
 * bound. Takes ownership of facts->fields in every case. */
void search_cache_put(struct search_cache *c, struct search_shelf *shelf, const char *msg_id,
		      struct search_facts *facts);

/* Counters, for tests and logs. */
struct search_cache_stats {
	size_t entries;
	size_t bytes;
	uint64_t hits, misses, evictions;
};
void search_cache_get_stats(struct search_cache *c, struct search_cache_stats *st);

#endif
