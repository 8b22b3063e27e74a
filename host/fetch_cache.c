/* fetch_cache.c - per-message FETCH texts in an LRU cache under a byte
 * budget (see fetch_cache.h). A chained hash table finds entries; a doubly
 * linked list orders them by insertion, and a hit only marks its entry
 * (second chance, the CLOCK approximation of LRU): eviction moves a marked
 * entry to the new end, unmarked, instead of dropping it. A hit so touches
 * nothing but its own entry; a FETCH of a whole mailbox looks up every
 * message, and moving each one in the list cost more than finding it. */
#include "host/fetch_cache.h"

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "host/mail/htable.h"
#include "protocol/agbuf.h"
#include "protocol/bodystructure.h"
#include "protocol/envelope.h"
#include "protocol/list.h"
#include "protocol/once.h"

struct node {
	/* what a lookup reads first, together at the start */
	struct htable_node hn;       /* its hash and chain in the table */
	size_t key_len;
	char *key;                   /* user NUL mailbox id NUL message id (no ambiguity:
	                                none of them contains a NUL) */
	size_t refs;                 /* the table's reference (while in it) + callers' */
	int referenced;              /* hit since it was last inserted or spared */
	int in_table;
	struct node *newer, *older;  /* insertion order, while in the table */
	size_t cost;                 /* heap bytes of the node and its skeleton */
	struct mime_message *skeleton;
	struct ag_fetch_entry pub;   /* what callers get (node_of finds the node) */
	char bytes[];                /* key, then the three texts */
};

static struct node *node_of(const struct ag_fetch_entry *entry)
{
	return (struct node *)((const char *)entry - offsetof(struct node, pub));
}

struct ag_fetch_cache {
	pthread_mutex_t lock;
	struct htable table;
	struct node *newest, *oldest;
	struct ag_fetch_cache_stats stats;
};

/* What an allocation of `n` bytes takes from glibc's heap: a chunk of the
 * size plus an 8-byte header, rounded up to 16, at least 32. */
static size_t heap_cost(size_t n)
{
	size_t c = (n + 8 + 15) & ~(size_t)15;
	return c < 32 ? 32 : c;
}

/* A 64-bit hash of the key (its NULs included), eight bytes a step, with
 * a final mix so that the low bits (the bucket) depend on every byte. */
static uint64_t hash_key(const char *key, size_t len)
{
	uint64_t h = 0x9e3779b97f4a7c15u ^ len;
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, key, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdu;
		h ^= h >> 32;
		key += 8;
		len -= 8;
	}
	uint64_t tail = 0;
	memcpy(&tail, key, len);
	h = (h ^ tail) * 0xc4ceb9fe1a85ec53u;
	h ^= h >> 29;
	h *= 0xff51afd7ed558ccdu;
	return h ^ (h >> 32);
}

/* The key of a message into `buf` (room for `cap` bytes); its length, or 0
 * when it does not fit. */
static size_t make_key(char *buf, size_t cap, const char *user, const char *mailbox_id, const char *message_id)
{
	size_t lu = strlen(user), lm = strlen(mailbox_id), li = strlen(message_id);
	size_t len = lu + 1 + lm + 1 + li;
	if (len > cap)
		return 0;
	memcpy(buf, user, lu);
	buf[lu] = '\0';
	memcpy(buf + lu + 1, mailbox_id, lm);
	buf[lu + 1 + lm] = '\0';
	memcpy(buf + lu + 1 + lm + 1, message_id, li);
	return len;
}

struct ag_fetch_cache *ag_fetch_cache_new(size_t budget)
{
	struct ag_fetch_cache *c = calloc(1, sizeof(*c));
	if (c == NULL || htable_init_locked(&c->table, 256, &c->lock) != 0) {
		free(c);
		return NULL;
	}
	c->stats.budget = budget;
	return c;
}

static void node_free(struct node *n)
{
	mime_free(n->skeleton);
	free(n);
}

void ag_fetch_cache_free(struct ag_fetch_cache *cache)
{
	if (cache == NULL)
		return;
	for (struct node *n = cache->newest; n;) {
		struct node *older = n->older;
		node_free(n);
		n = older;
	}
	htable_fini_locked(&cache->table, &cache->lock);
	free(cache);
}

ONCE_VALUE(, struct ag_fetch_cache *, ag_fetch_cache_global, ag_fetch_cache_new(AG_FETCH_CACHE_DEFAULT_BYTES))

/* --- under the lock ---------------------------------------------------- */

struct key {
	const char *bytes;
	size_t len;
};

static int same_key(const struct htable_node *hn, const void *arg)
{
	const struct node *n = HTABLE_ENTRY(hn, const struct node, hn);
	const struct key *k = arg;
	return n->key_len == k->len && memcmp(n->key, k->bytes, k->len) == 0;
}

static struct node *find(struct ag_fetch_cache *c, uint64_t hash, const char *key, size_t key_len)
{
	struct key k = { key, key_len };
	struct htable_node *hn = htable_find(&c->table, hash, same_key, &k);
	return hn != NULL ? HTABLE_ENTRY(hn, struct node, hn) : NULL;
}

/* Takes a node out of the table; returns 1 when nobody holds it any more
 * (the caller frees it after unlocking). */
static int remove_node(struct ag_fetch_cache *c, struct node *n)
{
	htable_remove(&c->table, &n->hn);
	LRU_UNLINK(c, n);
	n->in_table = 0;
	c->stats.entries--;
	c->stats.bytes -= n->cost;
	return --n->refs == 0;
}

/* Doubles the table when it holds more entries than buckets (chains stay
 * short); keeps the old one when memory is short. */
static void maybe_grow(struct ag_fetch_cache *c)
{
	if (c->stats.entries > c->table.n_buckets)
		htable_grow(&c->table);
}

/* --- API ----------------------------------------------------------------- */

const struct ag_fetch_entry *ag_fetch_cache_get(struct ag_fetch_cache *cache, const char *user,
                                                const char *mailbox_id, const char *message_id)
{
	char key[512];
	size_t key_len = make_key(key, sizeof(key), user, mailbox_id, message_id);
	if (key_len == 0)
		return NULL;
	uint64_t hash = hash_key(key, key_len);
	pthread_mutex_lock(&cache->lock);
	struct node *n = find(cache, hash, key, key_len);
	if (n != NULL) {
		n->refs++;
		n->referenced = 1;
		cache->stats.hits++;
	} else {
		cache->stats.misses++;
	}
	pthread_mutex_unlock(&cache->lock);
	return n ? &n->pub : NULL;
}

/* Renders the texts of `msg` and builds an unlinked node holding one reference. */
static struct node *build(const char *key, size_t key_len, const struct mime_message *msg,
                          uint64_t internal_date_ms)
{
	struct agbuf texts = AGBUF_INIT;
	envelope_write_message(&texts, msg);
	size_t env_end = texts.len;
	bodystructure_write(&texts, msg->root, 0);
	size_t body_end = texts.len;
	bodystructure_write(&texts, msg->root, 1);
	size_t skeleton_bytes = 0;
	struct mime_message *skeleton = mime_message_skeleton(msg, &skeleton_bytes);
	size_t size = sizeof(struct node) + key_len + texts.len;
	struct node *n = skeleton ? malloc(size) : NULL;
	if (n == NULL) {
		mime_free(skeleton);
		agbuf_free(&texts);
		return NULL;
	}
	memset(n, 0, sizeof(*n));
	n->key = n->bytes;
	n->key_len = key_len;
	memcpy(n->key, key, key_len);
	char *t = n->bytes + key_len;
	memcpy(t, texts.data, texts.len);
	agbuf_free(&texts);
	n->skeleton = skeleton;
	n->pub.skeleton = skeleton;
	n->pub.envelope = t;
	n->pub.envelope_len = env_end;
	n->pub.body = t + env_end;
	n->pub.body_len = body_end - env_end;
	n->pub.bodystructure = t + body_end;
	n->pub.bodystructure_len = size - sizeof(struct node) - key_len - body_end;
	n->pub.internal_date_ms = internal_date_ms;
	n->hn.hash = hash_key(key, key_len);
	n->refs = 1;
	/* the skeleton's own heap blocks are counted by mime_message_skeleton */
	n->cost = heap_cost(size) + skeleton_bytes + 2 * 16;
	return n;
}

const struct ag_fetch_entry *ag_fetch_cache_put(struct ag_fetch_cache *cache, const char *user,
                                                const char *mailbox_id, const char *message_id,
                                                const struct mime_message *msg, uint64_t internal_date_ms)
{
	char key[512];
	size_t key_len = make_key(key, sizeof(key), user, mailbox_id, message_id);
	struct node *n = build(key, key_len, msg, internal_date_ms);
	if (n == NULL)
		return NULL;
	if (key_len == 0)
		return &n->pub; /* an absurdly long key: used once, not stored */
	struct node *evicted = NULL, *existing;
	pthread_mutex_lock(&cache->lock);
	if ((existing = find(cache, n->hn.hash, n->key, key_len)) != NULL) {
		/* Another FETCH built the same texts meanwhile: share its entry. */
		existing->refs++;
		pthread_mutex_unlock(&cache->lock);
		node_free(n);
		return &existing->pub;
	}
	if (n->cost <= cache->stats.budget) {
		while (cache->stats.bytes + n->cost > cache->stats.budget) {
			struct node *old = cache->oldest;
			if (old->referenced) {
				/* used since it came in: spared once */
				old->referenced = 0;
				LRU_UNLINK(cache, old);
				LRU_PUSH_NEWEST(cache, old);
				continue;
			}
			cache->stats.evictions++;
			if (remove_node(cache, old)) {
				/* freed after unlocking, chained through older */
				old->older = evicted;
				evicted = old;
			}
		}
		n->refs++; /* the table's */
		n->in_table = 1;
		htable_insert(&cache->table, &n->hn);
		LRU_PUSH_NEWEST(cache, n);
		cache->stats.entries++;
		cache->stats.bytes += n->cost;
		maybe_grow(cache);
	}
	pthread_mutex_unlock(&cache->lock);
	while (evicted) {
		struct node *next = evicted->older;
		node_free(evicted);
		evicted = next;
	}
	return &n->pub;
}

void ag_fetch_cache_release(struct ag_fetch_cache *cache, const struct ag_fetch_entry *entry)
{
	if (entry == NULL)
		return;
	struct node *n = node_of(entry);
	pthread_mutex_lock(&cache->lock);
	int last = --n->refs == 0;
	pthread_mutex_unlock(&cache->lock);
	if (last)
		node_free(n);
}

void ag_fetch_cache_get_stats(struct ag_fetch_cache *cache, struct ag_fetch_cache_stats *out)
{
	pthread_mutex_lock(&cache->lock);
	*out = cache->stats;
	pthread_mutex_unlock(&cache->lock);
}
