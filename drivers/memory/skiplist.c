/* skiplist.c - ordered map for the memory driver (see skiplist.h).
 *
 * A skip list rather than a balanced tree because it gives ordered walks in
 * both directions (range and reverse queries) with very little code. Keys
 * compare with strcmp, which compares as unsigned char: the memcmp order the
 * ABI defines for sort keys. */
#include "drivers/memory/skiplist.h"

#include <stdlib.h>
#include <string.h>

static struct mem_sl_node *node_new(int levels, const char *key, void *value)
{
	struct mem_sl_node *n = calloc(1, sizeof(*n) + (size_t)levels * sizeof(n->next[0]));
	if (n == NULL)
		return NULL;
	n->key = key;
	n->value = value;
	n->levels = levels;
	return n;
}

int mem_sl_init(struct mem_skiplist *sl)
{
	sl->head = node_new(MEM_SL_MAX_LEVEL, NULL, NULL);
	sl->level = 1;
	sl->count = 0;
	sl->rng = 0x9e3779b97f4a7c15ULL;
	return sl->head ? 0 : -1;
}

void mem_sl_destroy(struct mem_skiplist *sl, void (*free_value)(void *))
{
	if (sl->head == NULL)
		return;
	struct mem_sl_node *n = sl->head->next[0];
	while (n != NULL) {
		struct mem_sl_node *next = n->next[0];
		if (free_value)
			free_value(n->value);
		free(n);
		n = next;
	}
	free(sl->head);
	sl->head = NULL;
	sl->count = 0;
}

/* Fills update[i] with the last node at level i whose key is < key. */
static void find_preds(const struct mem_skiplist *sl, const char *key,
                       struct mem_sl_node **update)
{
	struct mem_sl_node *x = sl->head;
	for (int i = sl->level - 1; i >= 0; i--) {
		while (x->next[i] != NULL && strcmp(x->next[i]->key, key) < 0)
			x = x->next[i];
		if (update)
			update[i] = x;
	}
}

static struct mem_sl_node *last_below(const struct mem_skiplist *sl, const char *key)
{
	struct mem_sl_node *x = sl->head;
	for (int i = sl->level - 1; i >= 0; i--)
		while (x->next[i] != NULL && strcmp(x->next[i]->key, key) < 0)
			x = x->next[i];
	return x;
}

struct mem_sl_node *mem_sl_find(const struct mem_skiplist *sl, const char *key)
{
	struct mem_sl_node *n = last_below(sl, key)->next[0];
	return n != NULL && strcmp(n->key, key) == 0 ? n : NULL;
}

struct mem_sl_node *mem_sl_lower_bound(const struct mem_skiplist *sl, const char *key)
{
	if (key == NULL)
		return sl->head->next[0];
	return last_below(sl, key)->next[0];
}

struct mem_sl_node *mem_sl_before(const struct mem_skiplist *sl, const char *key)
{
	struct mem_sl_node *x = last_below(sl, key);
	return x == sl->head ? NULL : x;
}

struct mem_sl_node *mem_sl_last(const struct mem_skiplist *sl)
{
	struct mem_sl_node *x = sl->head;
	for (int i = sl->level - 1; i >= 0; i--)
		while (x->next[i] != NULL)
			x = x->next[i];
	return x == sl->head ? NULL : x;
}

struct mem_sl_node *mem_sl_next(const struct mem_sl_node *n)
{
	return n->next[0];
}

struct mem_sl_node *mem_sl_prev(const struct mem_sl_node *n)
{
	return n->prev;
}

static int random_level(struct mem_skiplist *sl)
{
	/* xorshift64: a level grows with probability 1/4 per step */
	uint64_t x = sl->rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	sl->rng = x;
	int level = 1;
	while (level < MEM_SL_MAX_LEVEL && (x & 3) == 0) {
		level++;
		x >>= 2;
	}
	return level;
}

struct mem_sl_node *mem_sl_insert(struct mem_skiplist *sl, const char *key, void *value)
{
	struct mem_sl_node *update[MEM_SL_MAX_LEVEL];
	find_preds(sl, key, update);
	int level = random_level(sl);
	struct mem_sl_node *n = node_new(level, key, value);
	if (n == NULL)
		return NULL;
	for (int i = sl->level; i < level; i++)
		update[i] = sl->head;
	if (level > sl->level)
		sl->level = level;
	for (int i = 0; i < level; i++) {
		n->next[i] = update[i]->next[i];
		update[i]->next[i] = n;
	}
	n->prev = update[0] == sl->head ? NULL : update[0];
	if (n->next[0] != NULL)
		n->next[0]->prev = n;
	sl->count++;
	return n;
}

void *mem_sl_remove(struct mem_skiplist *sl, const char *key)
{
	struct mem_sl_node *update[MEM_SL_MAX_LEVEL];
	find_preds(sl, key, update);
	struct mem_sl_node *n = update[0]->next[0];
	if (n == NULL || strcmp(n->key, key) != 0)
		return NULL;
	for (int i = 0; i < n->levels; i++)
		update[i]->next[i] = n->next[i];
	if (n->next[0] != NULL)
		n->next[0]->prev = n->prev;
	while (sl->level > 1 && sl->head->next[sl->level - 1] == NULL)
		sl->level--;
	void *value = n->value;
	free(n);
	sl->count--;
	return value;
}
