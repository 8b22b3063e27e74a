/* skiplist.h - an ordered map from NUL-terminated keys (memcmp order) to
 * pointers, with O(log n) lookup, insertion and removal and walks both ways.
 * The memory driver keeps the rows of a partition, and blobs, in it. Not thread-safe:
 * the caller holds the lock that protects the data. */
#ifndef MEM_SKIPLIST_H
#define MEM_SKIPLIST_H

#include <stddef.h>
#include <stdint.h>

#define MEM_SL_MAX_LEVEL 24

struct mem_sl_node {
	const char *key; /* owned by whoever owns `value`; must outlive the node */
	void *value;
	struct mem_sl_node *prev; /* level-0 backward link; NULL for the first node */
	int levels;
	struct mem_sl_node *next[]; /* `levels` forward links */
};

struct mem_skiplist {
	struct mem_sl_node *head; /* sentinel with MEM_SL_MAX_LEVEL links */
	int level;
	size_t count;
	uint64_t rng;
};

/* Initialises an empty list. Returns 0 or -1 when out of memory. */
int mem_sl_init(struct mem_skiplist *sl);
/* Frees every node, calling free_value (when not NULL) on each value. */
void mem_sl_destroy(struct mem_skiplist *sl, void (*free_value)(void *));
/* The node of `key`, or NULL. */
struct mem_sl_node *mem_sl_find(const struct mem_skiplist *sl, const char *key);
/* The first node whose key is >= `key` (NULL key: the first node), or NULL. */
struct mem_sl_node *mem_sl_lower_bound(const struct mem_skiplist *sl, const char *key);
/* The last node whose key is < `key`, or NULL. */
struct mem_sl_node *mem_sl_before(const struct mem_skiplist *sl, const char *key);
/* The last node, or NULL when the list is empty. */
struct mem_sl_node *mem_sl_last(const struct mem_skiplist *sl);
/* The node after / before `n`, or NULL. */
struct mem_sl_node *mem_sl_next(const struct mem_sl_node *n);
struct mem_sl_node *mem_sl_prev(const struct mem_sl_node *n);
/* Inserts a key that is not present; returns its node or NULL when out of memory. */
struct mem_sl_node *mem_sl_insert(struct mem_skiplist *sl, const char *key, void *value);
/* Removes `key`; returns its value, or NULL when it was not there. */
void *mem_sl_remove(struct mem_skiplist *sl, const char *key);

#endif
