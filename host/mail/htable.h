/* htable.h - the chained hash table under the daemon's caches (the FETCH,
 * SEARCH, summary and body caches): intrusive, so an entry embeds a
 * struct htable_node and the caller keeps its own typed entries, key
 * comparison, locking and eviction order (protocol/list.h).
 *
 * The node caches its hash; buckets are a power of two; the table grows
 * only when its owner asks (each cache has its own rule: entries per
 * bucket, or a byte budget that covers the buckets too). Nothing here
 * allocates but the bucket array. */
#ifndef AG_HOST_MAIL_HTABLE_H
#define AG_HOST_MAIL_HTABLE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct htable_node {
	struct htable_node *hnext;   /* the chain of its bucket */
	uint64_t hash;
};

struct htable {
	struct htable_node **buckets;
	size_t n_buckets;            /* a power of two */
};

/* The entry of type `type` whose member `member` is `node`. */
#define HTABLE_ENTRY(node, type, member) ((type *)(void *)((char *)(node) - offsetof(type, member)))

/* Allocates `n_buckets` (a power of two) empty buckets: 0, or -1 when
 * memory is short. */
int htable_init(struct htable *t, size_t n_buckets);
/* Frees the buckets (not the nodes). */
void htable_fini(struct htable *t);
/* A cache's table and the lock that guards it, made and undone together:
 * htable_init_locked is 0, or -1 with neither made. */
int htable_init_locked(struct htable *t, size_t n_buckets, pthread_mutex_t *lock);
void htable_fini_locked(struct htable *t, pthread_mutex_t *lock);

/* The node of hash `hash` for which same(node, key) is true, or NULL. */
struct htable_node *htable_find(const struct htable *t, uint64_t hash,
                                int (*same)(const struct htable_node *node, const void *key), const void *key);
/* Puts `n` (its hash set) first in its chain. */
void htable_insert(struct htable *t, struct htable_node *n);
/* Takes `n` out of its chain, if it is in the table. */
void htable_remove(struct htable *t, struct htable_node *n);
/* Doubles the buckets; keeps the old ones when memory is short (chains
 * get longer, nothing is lost). */
void htable_grow(struct htable *t);

/* The key of the summary and SEARCH caches: an owner (a mailbox, a shelf
 * of the cache), compared by address, and a message id. */
#define HTABLE_ID_BYTES 16
struct htable_idnode {
	struct htable_node hn;
	const void *owner;
	uint8_t id[HTABLE_ID_BYTES];
};

/* The hash of an owner and an id. */
uint64_t htable_id_hash(const void *owner, const uint8_t id[HTABLE_ID_BYTES]);
/* Sets the key of `n` and its hash. */
void htable_idnode_set(struct htable_idnode *n, const void *owner, const uint8_t id[HTABLE_ID_BYTES]);
/* The node of `owner` and `id`, or NULL. */
struct htable_idnode *htable_find_id(const struct htable *t, const void *owner, const uint8_t id[HTABLE_ID_BYTES]);

#endif
