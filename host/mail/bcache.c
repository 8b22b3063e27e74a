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

struct bnode {
	struct bnode *hnext;       /* hash chain */
	struct bnode *prev, *next; /* LRU list, most recent first */
	uint64_t hash;
	size_t len;
	size_t cost;
	char *key;                 /* points into data[] after the body */
	uint8_t data[];
};

struct bcache {
	pthread_mutex_t lock;
	struct bnode **buckets;
	size_t n_buckets;
	struct bnode *head, *tail;
	size_t bytes, budget;
};

static uint64_t bhash(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

struct bcache *bcache_new(size_t budget)
{
	struct bcache *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->n_buckets = 4096;
	c->buckets = calloc(c->n_buckets, sizeof(*c->buckets));
	if (c->buckets == NULL) {
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
	for (struct bnode *n = c->head, *next; n; n = next) {
		next = n->next;
		free(n);
	}
	free(c->buckets);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* With the lock held. */
static struct bnode **bfind(struct bcache *c, const char *key, uint64_t h)
{
	struct bnode **p = &c->buckets[h % c->n_buckets];
	while (*p && ((*p)->hash != h || strcmp((*p)->key, key) != 0))
		p = &(*p)->hnext;
	return p;
}

static void lru_unlink(struct bcache *c, struct bnode *n)
{
	if (n->prev)
		n->prev->next = n->next;
	else
		c->head = n->next;
	if (n->next)
		n->next->prev = n->prev;
	else
		c->tail = n->prev;
	n->prev = n->next = NULL;
}

static void lru_push(struct bcache *c, struct bnode *n)
{
	n->prev = NULL;
	n->next = c->head;
	if (c->head)
		c->head->prev = n;
	else
		c->tail = n;
	c->head = n;
}

/* Drops a node from the table and the list, and frees it. Lock held. */
static void bdrop(struct bcache *c, struct bnode *n)
{
	struct bnode **p = bfind(c, n->key, n->hash);
	if (*p == n)
		*p = n->hnext;
	lru_unlink(c, n);
	c->bytes -= n->cost;
	free(n);
}

int bcache_get(struct bcache *c, const char *key, uint8_t **data, size_t *len)
{
	if (c == NULL)
		return 0;
	uint64_t h = bhash(key);
	pthread_mutex_lock(&c->lock);
	struct bnode *n = *bfind(c, key, h);
	uint8_t *copy = NULL;
	if (n) {
		copy = malloc(n->len + 1);
		if (copy) {
			memcpy(copy, n->data, n->len);
			*len = n->len;
			lru_unlink(c, n);
			lru_push(c, n);
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
	uint64_t h = bhash(key);
	pthread_mutex_lock(&c->lock);
	struct bnode *n = *bfind(c, key, h);
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
	n->hash = bhash(key);
	n->prev = n->next = NULL;
	pthread_mutex_lock(&c->lock);
	struct bnode **p = bfind(c, key, n->hash);
	if (*p) { /* already there: the same bytes */
		pthread_mutex_unlock(&c->lock);
		free(n);
		return;
	}
	n->hnext = NULL;
	*p = n;
	lru_push(c, n);
	c->bytes += cost;
	while (c->bytes > c->budget && c->tail && c->tail != n)
		bdrop(c, c->tail);
	pthread_mutex_unlock(&c->lock);
}
