/* htable.c - the chained hash table under the caches (htable.h). */
#include "host/mail/htable.h"

#include <stdlib.h>
#include <string.h>

int htable_init(struct htable *t, size_t n_buckets)
{
	t->buckets = calloc(n_buckets, sizeof(*t->buckets));
	t->n_buckets = t->buckets != NULL ? n_buckets : 0;
	return t->buckets != NULL ? 0 : -1;
}

void htable_fini(struct htable *t)
{
	free(t->buckets);
	t->buckets = NULL;
	t->n_buckets = 0;
}

int htable_init_locked(struct htable *t, size_t n_buckets, pthread_mutex_t *lock)
{
	if (htable_init(t, n_buckets) != 0)
		return -1;
	if (pthread_mutex_init(lock, NULL) != 0) {
		htable_fini(t);
		return -1;
	}
	return 0;
}

void htable_fini_locked(struct htable *t, pthread_mutex_t *lock)
{
	htable_fini(t);
	pthread_mutex_destroy(lock);
}

static struct htable_node **bucket(const struct htable *t, uint64_t hash)
{
	return &t->buckets[hash & (t->n_buckets - 1)];
}

struct htable_node *htable_find(const struct htable *t, uint64_t hash,
                                int (*same)(const struct htable_node *node, const void *key), const void *key)
{
	for (struct htable_node *n = *bucket(t, hash); n; n = n->hnext)
		if (n->hash == hash && same(n, key))
			return n;
	return NULL;
}

void htable_insert(struct htable *t, struct htable_node *n)
{
	struct htable_node **b = bucket(t, n->hash);
	n->hnext = *b;
	*b = n;
}

void htable_remove(struct htable *t, struct htable_node *n)
{
	struct htable_node **pp = bucket(t, n->hash);
	while (*pp != NULL && *pp != n)
		pp = &(*pp)->hnext;
	if (*pp != NULL)
		*pp = n->hnext;
	n->hnext = NULL;
}

void htable_grow(struct htable *t)
{
	struct htable bigger;
	if (htable_init(&bigger, t->n_buckets * 2) != 0)
		return;
	for (size_t i = 0; i < t->n_buckets; i++) {
		for (struct htable_node *n = t->buckets[i], *next; n; n = next) {
			next = n->hnext;
			htable_insert(&bigger, n);
		}
	}
	free(t->buckets);
	*t = bigger;
}

static uint64_t mix64(uint64_t x)
{
	/* the splitmix64 finalizer */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

uint64_t htable_id_hash(const void *owner, const uint8_t id[HTABLE_ID_BYTES])
{
	uint64_t a, b;
	memcpy(&a, id, 8);
	memcpy(&b, id + 8, 8);
	return mix64(a ^ mix64(b ^ (uint64_t)(uintptr_t)owner));
}

void htable_idnode_set(struct htable_idnode *n, const void *owner, const uint8_t id[HTABLE_ID_BYTES])
{
	n->owner = owner;
	memcpy(n->id, id, HTABLE_ID_BYTES);
	n->hn.hash = htable_id_hash(owner, id);
}

struct id_key {
	const void *owner;
	const uint8_t *id;
};

static int same_id(const struct htable_node *hn, const void *arg)
{
	const struct htable_idnode *n = HTABLE_ENTRY(hn, const struct htable_idnode, hn);
	const struct id_key *k = arg;
	return n->owner == k->owner && memcmp(n->id, k->id, HTABLE_ID_BYTES) == 0;
}

struct htable_idnode *htable_find_id(const struct htable *t, const void *owner, const uint8_t id[HTABLE_ID_BYTES])
{
	struct id_key k = { owner, id };
	struct htable_node *hn = htable_find(t, htable_id_hash(owner, id), same_id, &k);
	return hn != NULL ? HTABLE_ENTRY(hn, struct htable_idnode, hn) : NULL;
}
