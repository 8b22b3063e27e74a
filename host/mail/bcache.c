/* bcache.c - message bodies kept in memory, least recently used first out.
 *
 * A body blob never changes once written (a message id names one body for
 * good: COPY and undelete write new ids), so a copy needs no invalidation:
 * what a FETCH reads twice, or right after its APPEND, comes from here
 * instead of the store (a SQLite read transaction, or a Garage round
 * trip). The removal of an expunged message's contents (after the grace
 * period, or the retention) drops its copy too, so that a view still
 * showing the message finds it gone, as from the store. Bodies larger than an eighth of the
 * budget are not kept: one large attachment must not empty the cache. */
#include "host/mail/mail_internal.h"

#include <stdlib.h>
#include <string.h>

#include "protocol/hash.h"
#include "protocol/list.h"

struct bnode {
	struct htable_node hn;       /* hash and chain */
	struct bnode *newer, *older; /* LRU list (protocol/list.h) */
	size_t len;
	size_t cost;
	char *key;                 /* points into data[] after the body */
	uint8_t data[];
};

struct bcache {
	pthread_mutex_t lock;
	struct htable table;
	struct bnode *newest, *oldest;
	size_t bytes, budget;
};

struct bcache *bcache_new(size_t budget)
{
	struct bcache *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	if (htable_init(&c->table, 4096) != 0) {
		free(c);
		return NULL;
	}
	c->budget = budget;
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

void bcache_free(struct bcache *c)
{
	if (c == NULL)
		return;
	for (struct bnode *n = c->newest, *next; n; n = next) {
		next = n->older;
		free(n);
	}
	htable_fini_locked(&c->table, &c->lock);
	free(c);
}

static int same_key(const struct htable_node *hn, const void *key)
{
	return strcmp(HTABLE_ENTRY(hn, const struct bnode, hn)->key, key) == 0;
}

/* With the lock held. */
static struct bnode *bfind(struct bcache *c, const char *key, uint64_t h)
{
	struct htable_node *hn = htable_find(&c->table, h, same_key, key);
	return hn != NULL ? HTABLE_ENTRY(hn, struct bnode, hn) : NULL;
}

/* Drops a node from the table and the list, and frees it. Lock held. */
static void bdrop(struct bcache *c, struct bnode *n)
{
	htable_remove(&c->table, &n->hn);
	LRU_UNLINK(c, n);
	c->bytes -= n->cost;
	free(n);
}

int bcache_get(struct bcache *c, const char *key, uint8_t **data, size_t *len)
{
	if (c == NULL)
		return 0;
	uint64_t h = ag_hash_str(key);
	pthread_mutex_lock(&c->lock);
	struct bnode *n = bfind(c, key, h);
	uint8_t *copy = NULL;
	if (n) {
		copy = malloc(n->len + 1);
		if (copy) {
			memcpy(copy, n->data, n->len);
			*len = n->len;
			LRU_UNLINK(c, n);
			LRU_PUSH_NEWEST(c, n);
		}
	}
	pthread_mutex_unlock(&c->lock);
	*data = copy;
	return copy != NULL;
}

void bcache_forget(struct bcache *c, const char *key)
{
	if (c == NULL)
		return;
	uint64_t h = ag_hash_str(key);
	pthread_mutex_lock(&c->lock);
	struct bnode *n = bfind(c, key, h);
	if (n)
		bdrop(c, n);
	pthread_mutex_unlock(&c->lock);
}

void bcache_put(struct bcache *c, const char *key, const uint8_t *data, size_t len)
{
	if (c == NULL || len > c->budget / 8)
		return;
	size_t klen = strlen(key) + 1;
	size_t cost = sizeof(struct bnode) + len + klen;
	struct bnode *n = malloc(cost);
	if (n == NULL)
		return;
	memcpy(n->data, data, len);
	n->key = (char *)n->data + len;
	memcpy(n->key, key, klen);
	n->len = len;
	n->cost = cost;
	n->hn.hash = ag_hash_str(key);
	n->newer = n->older = NULL;
	pthread_mutex_lock(&c->lock);
	if (bfind(c, key, n->hn.hash) != NULL) { /* already there: the same bytes */
		pthread_mutex_unlock(&c->lock);
		free(n);
		return;
	}
	htable_insert(&c->table, &n->hn);
	LRU_PUSH_NEWEST(c, n);
	c->bytes += cost;
	while (c->bytes > c->budget && c->oldest && c->oldest != n)
		bdrop(c, c->oldest);
	pthread_mutex_unlock(&c->lock);
}
