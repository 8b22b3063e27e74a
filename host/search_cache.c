/* search_cache.c - the per-process cache of what SEARCH takes from message
 * summaries (see search_cache.h).
 *
 * One mutex guards everything: a search holds it while it looks up a batch
 * of messages and evaluates its keys on what it found (microseconds per
 * message, no storage call), never while it reads summaries or decodes
 * headers. Entries sit in a chained hash table (doubling as it fills) and
 * in one LRU list; the byte count covers each entry, its fields and an
 * allowance per allocation, plus the table. */
#include "host/search_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "host/mail/htable.h"
#include "host/mail/mail.h"
#include "protocol/list.h"
#include "protocol/once.h"
#include "protocol/search_fields.h"

/* What malloc keeps per allocation beyond what was asked, roughly. */
#define ALLOC_OVERHEAD 16
#define NAME_MAX_LEN 64
#define ID_BYTES HTABLE_ID_BYTES

/* what FROM, TO, CC, BCC and SUBJECT read (search_fields.h) */
static const char *const standard_names[] = { "from" SEARCH_FIELD_ADDRESS, "to" SEARCH_FIELD_ADDRESS,
					      "cc" SEARCH_FIELD_ADDRESS, "bcc" SEARCH_FIELD_ADDRESS,
					      "subject" SEARCH_FIELD_LWSP };
#define N_STANDARD (sizeof(standard_names) / sizeof(standard_names[0]))

struct search_shelf {
	struct search_shelf *next;
	char *user;
	char mailbox_id[33];
	size_t refs;           /* open by searches */
	size_t entries;        /* entries of the cache on this shelf */
	char *extra[SEARCH_CACHE_EXTRA_NAMES]; /* oldest first */
	size_t n_extra;
};

struct entry {
	struct htable_idnode key;     /* its shelf and message id, hash and chain */
	struct entry *newer, *older;  /* LRU list */
	struct search_facts facts;
};

struct search_cache {
	pthread_mutex_t lock;
	size_t max_bytes, bytes;
	struct htable table;
	size_t n_entries;
	struct entry *newest, *oldest;
	struct search_shelf *shelves;
	uint64_t hits, misses, evictions;
};

static size_t entry_bytes(const struct entry *e)
{
	size_t b = sizeof(*e) + ALLOC_OVERHEAD;
	if (e->facts.fields)
		b += e->facts.fields->bytes + ALLOC_OVERHEAD;
	return b;
}

/* The shelf of an entry: its key's owner, which the cache changes (the
 * count of its entries). */
static struct search_shelf *entry_shelf(const struct entry *e)
{
	return (struct search_shelf *)(uintptr_t)e->key.owner;
}

struct search_cache *search_cache_new(size_t max_bytes)
{
	struct search_cache *c = calloc(1, sizeof(*c));
	if (c == NULL || htable_init_locked(&c->table, 1024, &c->lock) != 0) {
		free(c);
		return NULL;
	}
	c->max_bytes = max_bytes;
	c->bytes = c->table.n_buckets * sizeof(*c->table.buckets);
	return c;
}

static void shelf_free(struct search_shelf *sh)
{
	for (size_t i = 0; i < sh->n_extra; i++)
		free(sh->extra[i]);
	free(sh->user);
	free(sh);
}

/* Unlinks an empty shelf nobody holds; lock held. */
static void shelf_maybe_drop(struct search_cache *c, struct search_shelf *sh)
{
	if (sh->refs > 0 || sh->entries > 0)
		return;
	for (struct search_shelf **p = &c->shelves; *p; p = &(*p)->next)
		if (*p == sh) {
			*p = sh->next;
			break;
		}
	shelf_free(sh);
}

void search_cache_free(struct search_cache *c)
{
	if (c == NULL)
		return;
	for (struct entry *e = c->newest, *next; e; e = next) {
		next = e->older;
		free(e->facts.fields);
		free(e);
	}
	while (c->shelves) {
		struct search_shelf *sh = c->shelves;
		c->shelves = sh->next;
		shelf_free(sh);
	}
	htable_fini_locked(&c->table, &c->lock);
	free(c);
}

ONCE_VALUE(, struct search_cache *, search_cache_process, search_cache_new(SEARCH_CACHE_BYTES))

/* Makes `name` the most recent extra name of the shelf; lock held. */
static void shelf_want(struct search_shelf *sh, const char *name)
{
	for (size_t i = 0; i < N_STANDARD; i++)
		if (strcmp(standard_names[i], name) == 0)
			return;
	size_t len = strlen(name);
	if (len == 0 || len > NAME_MAX_LEN)
		return;
	char *kept = NULL;
	for (size_t i = 0; i < sh->n_extra; i++)
		if (strcmp(sh->extra[i], name) == 0) {
			kept = sh->extra[i];
			memmove(&sh->extra[i], &sh->extra[i + 1], (sh->n_extra - i - 1) * sizeof(sh->extra[0]));
			sh->n_extra--;
			break;
		}
	if (kept == NULL && (kept = strdup(name)) == NULL)
		return;
	if (sh->n_extra == SEARCH_CACHE_EXTRA_NAMES) {
		free(sh->extra[0]);
		memmove(&sh->extra[0], &sh->extra[1], (sh->n_extra - 1) * sizeof(sh->extra[0]));
		sh->n_extra--;
	}
	sh->extra[sh->n_extra++] = kept;
}

/* The names a search extracts: standard, the shelf's, the query's; lock held. */
static struct search_names *names_snapshot(const struct search_shelf *sh, const char *const *names, size_t n)
{
	size_t count = N_STANDARD + sh->n_extra + n, text = 0;
	for (size_t i = 0; i < N_STANDARD; i++)
		text += strlen(standard_names[i]) + 1;
	for (size_t i = 0; i < sh->n_extra; i++)
		text += strlen(sh->extra[i]) + 1;
	for (size_t i = 0; i < n; i++)
		text += strlen(names[i]) + 1;
	struct search_names *out = malloc(sizeof(*out) + count * sizeof(out->name[0]) + text);
	if (out == NULL)
		return NULL;
	char *p = (char *)&out->name[count];
	out->count = 0;
	for (size_t i = 0; i < count; i++) {
		const char *src = i < N_STANDARD ? standard_names[i]
			: i < N_STANDARD + sh->n_extra ? sh->extra[i - N_STANDARD]
						       : names[i - N_STANDARD - sh->n_extra];
		int dup = 0;
		for (size_t j = 0; j < out->count && !dup; j++)
			dup = strcmp(out->name[j], src) == 0;
		if (dup)
			continue;
		size_t len = strlen(src);
		memcpy(p, src, len + 1);
		out->name[out->count++] = p;
		p += len + 1;
	}
	return out;
}

struct search_shelf *search_cache_open(struct search_cache *c, const char *user, const char *mailbox_id,
				       const char *const *names, size_t n, struct search_names **all)
{
	*all = NULL;
	pthread_mutex_lock(&c->lock);
	struct search_shelf *sh = c->shelves;
	while (sh && (strcmp(sh->user, user) != 0 || strcmp(sh->mailbox_id, mailbox_id) != 0))
		sh = sh->next;
	size_t id_len = strlen(mailbox_id);
	if (sh == NULL && id_len < sizeof(sh->mailbox_id) && (sh = calloc(1, sizeof(*sh))) != NULL) {
		if ((sh->user = strdup(user)) == NULL) {
			free(sh);
			sh = NULL;
		} else {
			memcpy(sh->mailbox_id, mailbox_id, id_len + 1);
			sh->next = c->shelves;
			c->shelves = sh;
		}
	}
	if (sh != NULL) {
		for (size_t i = 0; i < n; i++)
			shelf_want(sh, names[i]);
		*all = names_snapshot(sh, names, n);
		sh->refs++;
		if (*all == NULL) {
			sh->refs--;
			shelf_maybe_drop(c, sh);
			sh = NULL;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return sh;
}

void search_cache_close(struct search_cache *c, struct search_shelf *shelf)
{
	pthread_mutex_lock(&c->lock);
	shelf->refs--;
	shelf_maybe_drop(c, shelf);
	pthread_mutex_unlock(&c->lock);
}

void search_cache_lock(struct search_cache *c)
{
	pthread_mutex_lock(&c->lock);
}

void search_cache_unlock(struct search_cache *c)
{
	pthread_mutex_unlock(&c->lock);
}

static struct entry *find(struct search_cache *c, const struct search_shelf *sh, const uint8_t id[ID_BYTES])
{
	struct htable_idnode *k = htable_find_id(&c->table, sh, id);
	return k != NULL ? HTABLE_ENTRY(k, struct entry, key) : NULL;
}

const struct search_facts *search_cache_get(struct search_cache *c, struct search_shelf *shelf,
					    const char *msg_id)
{
	uint8_t id[ID_BYTES];
	if (mail_unhex(msg_id, id, ID_BYTES) != 0)
		return NULL;
	struct entry *e = find(c, shelf, id);
	if (e == NULL) {
		c->misses++;
		return NULL;
	}
	c->hits++;
	if (c->newest != e) {
		LRU_UNLINK(c, e);
		LRU_PUSH_NEWEST(c, e);
	}
	return &e->facts;
}

/* Removes an entry from the table and the list and frees it; lock held. */
static void entry_drop(struct search_cache *c, struct entry *e)
{
	struct search_shelf *sh = entry_shelf(e);
	htable_remove(&c->table, &e->key.hn);
	LRU_UNLINK(c, e);
	c->bytes -= entry_bytes(e);
	c->n_entries--;
	sh->entries--;
	shelf_maybe_drop(c, sh);
	free(e->facts.fields);
	free(e);
}

/* Doubles the table when it holds more entries than buckets; lock held. */
static void maybe_grow(struct search_cache *c)
{
	if (c->n_entries <= c->table.n_buckets)
		return;
	size_t before = c->table.n_buckets;
	size_t extra = before * sizeof(*c->table.buckets);
	if (c->bytes + extra > c->max_bytes)
		return; /* long chains rather than more memory than allowed */
	htable_grow(&c->table);
	if (c->table.n_buckets != before)
		c->bytes += extra;
}

void search_cache_put(struct search_cache *c, struct search_shelf *shelf, const char *msg_id,
		      struct search_facts *facts)
{
	uint8_t id[ID_BYTES];
	struct entry *e = NULL;
	if (mail_unhex(msg_id, id, ID_BYTES) != 0 || (e = calloc(1, sizeof(*e))) == NULL) {
		free(facts->fields);
		facts->fields = NULL;
		return;
	}
	htable_idnode_set(&e->key, shelf, id);
	e->facts = *facts;
	facts->fields = NULL;
	size_t bytes = entry_bytes(e);
	pthread_mutex_lock(&c->lock);
	struct entry *old = find(c, shelf, id);
	if (old != NULL) {
		if (!e->facts.has_vsize && old->facts.has_vsize) {
			e->facts.has_vsize = 1;
			e->facts.vsize = old->facts.vsize;
		}
		entry_drop(c, old); /* the shelf stays: it is open */
	}
	if (bytes > c->max_bytes) {
		pthread_mutex_unlock(&c->lock);
		free(e->facts.fields);
		free(e);
		return;
	}
	while (c->oldest && c->bytes + bytes > c->max_bytes) {
		c->evictions++;
		entry_drop(c, c->oldest);
	}
	htable_insert(&c->table, &e->key.hn);
	LRU_PUSH_NEWEST(c, e);
	c->bytes += bytes;
	c->n_entries++;
	shelf->entries++;
	maybe_grow(c);
	pthread_mutex_unlock(&c->lock);
}

void search_cache_get_stats(struct search_cache *c, struct search_cache_stats *st)
{
	pthread_mutex_lock(&c->lock);
	st->entries = c->n_entries;
	st->bytes = c->bytes;
	st->hits = c->hits;
	st->misses = c->misses;
	st->evictions = c->evictions;
	pthread_mutex_unlock(&c->lock);
}
