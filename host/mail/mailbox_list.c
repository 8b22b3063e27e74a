/* mailbox_list.c - the user's mailbox list: a state-based CRDT in one row.
 *
 * Row <u>/mailboxes / list holds a map name -> entry. Each entry merges
 * field by field: the mailbox id is last-writer-wins on (timestamp, has id,
 * id bytes), UIDVALIDITY is a max, the subscription and the special-use
 * attributes are last-writer-wins on (timestamp, value). The map merges by
 * union. So merge is commutative, associative and idempotent: a load merges
 * every sibling it finds, and a save with the token read supersedes them.
 * A deleted mailbox keeps its entry (no id) so that its UIDVALIDITY never
 * goes back when the name is created again. */
#include "host/mail/mail_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "protocol/hash.h"

void mblist_free(struct mblist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->e[i].name);
	free(l->e);
	memset(l, 0, sizeof(*l));
}

static size_t lower_bound(const struct mblist *l, const char *name)
{
	size_t lo = 0, hi = l->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(l->e[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct mblist_entry *mblist_find(struct mblist *l, const char *name)
{
	size_t i = lower_bound(l, name);
	return i < l->n && strcmp(l->e[i].name, name) == 0 ? &l->e[i] : NULL;
}

struct mblist_entry *mblist_get(struct mblist *l, const char *name)
{
	size_t i = lower_bound(l, name);
	if (i < l->n && strcmp(l->e[i].name, name) == 0)
		return &l->e[i];
	if (mail_grow(&l->e, &l->cap, l->n + 1, sizeof(*l->e), 16) != 0)
		return NULL;
	char *d = strdup(name);
	if (d == NULL)
		return NULL;
	memmove(&l->e[i + 1], &l->e[i], (l->n - i) * sizeof(*l->e));
	memset(&l->e[i], 0, sizeof(l->e[i]));
	l->e[i].name = d;
	l->n++;
	return &l->e[i];
}

int mblist_entry_cmp_id(const struct mblist_entry *a, const struct mblist_entry *b)
{
	if (a->id_ts != b->id_ts)
		return a->id_ts < b->id_ts ? -1 : 1;
	if (a->has_id != b->has_id)
		return a->has_id < b->has_id ? -1 : 1;
	return a->has_id ? memcmp(a->id, b->id, UIDX_ID) : 0;
}

static void merge_entry(struct mblist_entry *a, const struct mblist_entry *b)
{
	if (mblist_entry_cmp_id(b, a) > 0) {
		a->id_ts = b->id_ts;
		a->has_id = b->has_id;
		memcpy(a->id, b->id, UIDX_ID);
	}
	if (b->uidvalidity > a->uidvalidity)
		a->uidvalidity = b->uidvalidity;
	if (b->sub_ts > a->sub_ts || (b->sub_ts == a->sub_ts && b->subscribed > a->subscribed)) {
		a->sub_ts = b->sub_ts;
		a->subscribed = b->subscribed;
	}
	if (b->su_ts > a->su_ts || (b->su_ts == a->su_ts && b->special_use > a->special_use)) {
		a->su_ts = b->su_ts;
		a->special_use = b->special_use;
	}
}

int mblist_merge(struct mblist *a, const struct mblist *b)
{
	for (size_t i = 0; i < b->n; i++) {
		const struct mblist_entry *be = &b->e[i];
		struct mblist_entry *ae = mblist_find(a, be->name);
		if (ae == NULL) {
			ae = mblist_get(a, be->name);
			if (ae == NULL)
				return AEROGRAM_EINTERNAL;
			char *name = ae->name;
			*ae = *be;
			ae->name = name;
		} else {
			merge_entry(ae, be);
		}
	}
	return 0;
}

/* Names: non-empty, no empty level, no control characters, bounded. INBOX
 * in any case is INBOX (callers pass names through norm_name first). */
int mblist_valid_name(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 1000 || name[0] == MAIL_DELIMITER || name[n - 1] == MAIL_DELIMITER)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c == 0x7f)
			return 0;
		if (c == MAIL_DELIMITER && name[i + 1] == MAIL_DELIMITER)
			return 0;
	}
	return 1;
}

static int valid_user(const char *user)
{
	if (user == NULL || *user == '\0' || strlen(user) > 200)
		return 0;
	for (const char *p = user; *p; p++)
		if (*p == '/' || (unsigned char)*p < 0x20)
			return 0;
	return 1;
}

/* INBOX is case-insensitive (RFC 3501 5.1), also as the first level. */
static char *norm_name(const char *name)
{
	char *d = strdup(name);
	if (d && strncasecmp(d, "INBOX", 5) == 0 && (d[5] == '\0' || d[5] == MAIL_DELIMITER))
		memcpy(d, "INBOX", 5);
	return d;
}

static const struct {
	const char *name;
	uint32_t su;
} defaults[] = {
	{ "INBOX", 0 },
	{ "Drafts", MAIL_SU_DRAFTS },
	{ "Sent", MAIL_SU_SENT },
	{ "Trash", MAIL_SU_TRASH },
	{ "Archive", MAIL_SU_ARCHIVE },
	{ "Junk", MAIL_SU_JUNK },
};

/* A default mailbox's id is derived from (user, name), so that two engines
 * creating the defaults at once create the same mailboxes. */
static void default_id(const char *user, const char *name, uint8_t id[UIDX_ID])
{
	uint64_t h[2] = { 0x6a09e667f3bcc908ull, 0xbb67ae8584caa73bull };
	for (int k = 0; k < 2; k++) {
		for (const char *p = user; *p; p++)
			h[k] = (h[k] ^ (unsigned char)*p) * 0x100000001b3ull;
		h[k] = (h[k] ^ 0xff) * 0x100000001b3ull;
		for (const char *p = name; *p; p++)
			h[k] = (h[k] ^ (unsigned char)*p) * 0x100000001b3ull;
		h[k] ^= h[k] >> 31;
		h[k] *= 0x94d049bb133111ebull;
		h[k] ^= h[k] >> 29;
	}
	memcpy(id, &h[0], 8);
	memcpy(id + 8, &h[1], 8);
}

static void list_pk(char *out, size_t len, const char *user)
{
	snprintf(out, len, "%s/mailboxes", user);
}

void mblist_pk(char *out, size_t len, const char *user)
{
	list_pk(out, len, user);
}

int mblist_from_row(struct mail_engine *eng, const char *pk, const struct aerogram_row *row, struct mblist *out)
{
	int rc = 0;
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < row->n_values && rc == 0; i++) {
		if (row->values[i].tombstone)
			continue;
		struct mblist part;
		if (codec_mblist_decode(row->values[i].data, row->values[i].len, &part) != 0) {
			mail_log(eng, AEROGRAM_LOG_ERROR, "%s/list: undecodable value skipped", pk);
			continue;
		}
		rc = mblist_merge(out, &part);
		mblist_free(&part);
	}
	if (rc != 0)
		mblist_free(out);
	return rc;
}

/* The list cache.
 *
 * Every command that names a mailbox (SELECT, STATUS, APPEND, LIST...)
 * starts from the user's list, and reading it is a store round trip. So a
 * daemon keeps the lists it read, each with a watch on its row armed with
 * the token it read: while the watch has not fired, the row is as read and
 * the copy serves. A fire (any write of the row, ours or another daemon's),
 * a timeout or a failure of the watch drops the copy; the next use reads
 * the row again. A save here drops the user's copy too, and bumps
 * `list_gen`, so that a read that began before the save never installs
 * what it read. Another daemon's change is seen as soon as its write fires
 * the watch (on SQLite, within the driver's poll interval): a new mailbox
 * of another daemon may be missing from a LIST until then, as a change of
 * a selected mailbox is. Only with the poller (the daemon): tests that
 * drive engines by hand keep reading the row every time.
 *
 * The list is a CRDT (above), so a save with a token that another daemon's
 * write has meanwhile superseded loses nothing: the two values are
 * siblings, merged by the next read. */
struct list_cache {
	struct htable_node hn;    /* in eng->list_table, by user */
	struct list_cache *next;
	struct mail_engine *eng;
	char *user;
	struct mblist l;
	char *token;
	struct aerogram_watch *w; /* NULL while being armed, or after a failed arm */
	int valid;                /* the copy serves (cleared by the watch) */
	int arming;               /* a thread is arming its watch: not to be dropped */
	uint64_t used;            /* mail_now of its last use */
};

/* From a driver thread: the row changed (or the watch ended): the copy no
 * longer serves. */
static void list_watch_cb(void *arg, int status, const struct aerogram_row *row, const char *message)
{
	(void)status;
	(void)row;
	(void)message;
	struct list_cache *c = arg;
	pthread_mutex_lock(&c->eng->list_lock);
	c->valid = 0;
	pthread_mutex_unlock(&c->eng->list_lock);
}

static int list_cache_on(const struct mail_engine *eng)
{
	return !eng->opt.no_poller;
}

static int same_user(const struct htable_node *hn, const void *user)
{
	return strcmp(HTABLE_ENTRY(hn, const struct list_cache, hn)->user, user) == 0;
}

/* With list_lock held. */
static struct list_cache *list_cache_find(struct mail_engine *eng, const char *user)
{
	struct htable_node *hn = htable_find(&eng->list_table, ag_hash_str(user), same_user, user);
	return hn != NULL ? HTABLE_ENTRY(hn, struct list_cache, hn) : NULL;
}

/* Releases an entry's watch and frees it: not linked any more, and with no
 * thread arming it. */
static void list_cache_free(struct mail_engine *eng, struct list_cache *c)
{
	if (c->w)
		store_row_watch_release(eng, c->w);
	mblist_free(&c->l);
	free(c->token);
	free(c->user);
	free(c);
}

/* A copy of the cached list of `user` into *out and *token; 1, or 0 when
 * there is none that serves. */
static int list_cache_get(struct mail_engine *eng, const char *user, struct mblist *out, char **token)
{
	if (!list_cache_on(eng))
		return 0;
	int hit = 0;
	pthread_mutex_lock(&eng->list_lock);
	struct list_cache *c = list_cache_find(eng, user);
	if (c && c->valid) {
		memset(out, 0, sizeof(*out));
		*token = strdup(c->token);
		if (*token != NULL && mblist_merge(out, &c->l) == 0) {
			c->used = mail_now(eng);
			hit = 1;
		} else {
			mblist_free(out);
			free(*token);
			*token = NULL;
		}
	}
	pthread_mutex_unlock(&eng->list_lock);
	return hit;
}

static uint64_t list_cache_gen(struct mail_engine *eng)
{
	pthread_mutex_lock(&eng->list_lock);
	uint64_t gen = eng->list_gen;
	pthread_mutex_unlock(&eng->list_lock);
	return gen;
}

/* Keeps a copy of a list just read with `token`, the read having begun at
 * save generation `gen`, and arms its watch. Failures only cost the copy. */
static void list_cache_put(struct mail_engine *eng, const char *user, const char *pk, const struct mblist *l,
                           const char *token, uint64_t gen)
{
	struct aerogram_watch *old = NULL;
	struct list_cache *victim = NULL;
	pthread_mutex_lock(&eng->list_lock);
	struct list_cache *c = eng->list_gen == gen ? list_cache_find(eng, user) : NULL;
	if (eng->list_gen != gen || (c && (c->valid || c->arming))) {
		pthread_mutex_unlock(&eng->list_lock);
		return;
	}
	if (c == NULL) {
		if (eng->n_lists >= MAIL_LIST_CACHE_MAX) {
			/* the least recently used entry nobody is arming */
			struct list_cache **vp = NULL;
			for (struct list_cache **p = &eng->lists; *p; p = &(*p)->next)
				if (!(*p)->arming && (vp == NULL || (*p)->used < (*vp)->used))
					vp = p;
			if (vp == NULL) {
				pthread_mutex_unlock(&eng->list_lock);
				return;
			}
			victim = *vp;
			*vp = victim->next;
			htable_remove(&eng->list_table, &victim->hn);
			eng->n_lists--;
		}
		c = calloc(1, sizeof(*c));
		if (c && (c->user = strdup(user)) == NULL) {
			free(c);
			c = NULL;
		}
		if (c == NULL) {
			pthread_mutex_unlock(&eng->list_lock);
			if (victim)
				list_cache_free(eng, victim);
			return;
		}
		c->eng = eng;
		c->next = eng->lists;
		eng->lists = c;
		c->hn.hash = ag_hash_str(c->user);
		htable_insert(&eng->list_table, &c->hn);
		eng->n_lists++;
	} else {
		/* an entry whose watch fired: new contents, a new watch */
		old = c->w;
		c->w = NULL;
		mblist_free(&c->l);
		free(c->token);
		c->token = NULL;
	}
	c->token = strdup(token);
	int ok = c->token != NULL && mblist_merge(&c->l, l) == 0;
	c->valid = ok;
	c->arming = ok;
	c->used = mail_now(eng);
	pthread_mutex_unlock(&eng->list_lock);
	if (old)
		store_row_watch_release(eng, old);
	if (victim)
		list_cache_free(eng, victim);
	if (!ok)
		return;
	/* Armed with the token read: a write since then fires it at once. */
	struct aerogram_watch *w = NULL;
	int rc = store_row_watch(eng, pk, "list", token, eng->opt.poll_timeout_ms, list_watch_cb, c, &w, pk);
	pthread_mutex_lock(&eng->list_lock);
	c->arming = 0;
	if (rc == 0)
		c->w = w;
	else
		c->valid = 0;
	pthread_mutex_unlock(&eng->list_lock);
}

/* After a save of the user's list (done or failed): the copy may be old. */
static void list_cache_forget(struct mail_engine *eng, const char *user)
{
	pthread_mutex_lock(&eng->list_lock);
	eng->list_gen++;
	struct list_cache *c = list_cache_find(eng, user);
	if (c)
		c->valid = 0;
	pthread_mutex_unlock(&eng->list_lock);
}

void mblist_cache_flush(struct mail_engine *eng)
{
	for (;;) {
		pthread_mutex_lock(&eng->list_lock);
		struct list_cache *c = eng->lists;
		if (c) {
			eng->lists = c->next;
			htable_remove(&eng->list_table, &c->hn);
			eng->n_lists--;
		}
		pthread_mutex_unlock(&eng->list_lock);
		if (c == NULL)
			return;
		list_cache_free(eng, c);
	}
}

int mblist_load(struct mail_engine *eng, const char *user, struct mblist *out, char **token)
{
	if (list_cache_get(eng, user, out, token))
		return 0;
	uint64_t gen = list_cache_gen(eng);
	char pk[512];
	list_pk(pk, sizeof(pk), user);
	memset(out, 0, sizeof(*out));
	*token = NULL;
	struct aerogram_row_query q = { .pk = pk, .sk = "list" };
	struct aerogram_row_result *res = NULL;
	int rc = store_row_read(eng, &q, 1, &res, pk);
	if (rc != 0)
		return rc;
	if (res->n_pages && res->pages[0].n_rows) {
		const struct aerogram_row *row = &res->pages[0].rows[0];
		*token = strdup(row->token);
		rc = mblist_from_row(eng, pk, row, out);
	}
	store_row_result_free(eng, res);
	if (rc != 0) {
		mblist_free(out);
		free(*token);
		*token = NULL;
	} else if (*token != NULL && list_cache_on(eng)) {
		list_cache_put(eng, user, pk, out, *token, gen);
	}
	return rc;
}

int mblist_save(struct mail_engine *eng, const char *user, const struct mblist *l, const char *token)
{
	mail_nonblock_commit(); /* (write guards come before any save) */
	char pk[512];
	list_pk(pk, sizeof(pk), user);
	struct cbuf b = { 0 };
	int rc = codec_mblist_encode(l, &b);
	if (rc == 0) {
		struct aerogram_row_write w = { pk, "list", token, b.p, b.len, 0 };
		rc = store_row_insert(eng, &w, 1, pk);
	}
	free(b.p);
	list_cache_forget(eng, user);
	return rc;
}

/* The UIDVALIDITY of a new mailbox: the time in seconds, as Dovecot does,
 * so that a mailbox created on a wiped or restored store never reuses a
 * value a client may have cached from an earlier incarnation at the same
 * address; and above `at_least` (a re-created name). Two daemons creating
 * the same default mailbox at once merge to the larger (the list is a
 * CRDT); a session that saw the smaller one is told the change. */
static uint32_t initial_uidvalidity(struct mail_engine *eng, uint32_t at_least)
{
	uint64_t s = mail_now(eng) / 1000;
	uint32_t v = s > UINT32_MAX / 2 ? UINT32_MAX / 2 : (uint32_t)s;
	if (v < 1)
		v = 1;
	return v > at_least ? v : at_least;
}

/* Loads the list, adding (and saving) any default mailbox never created. */
static int load_defaults(struct mail_engine *eng, const char *user, struct mblist *l, char **token)
{
	if (!valid_user(user))
		return AEROGRAM_EINVAL;
	int rc = mblist_load(eng, user, l, token);
	if (rc != 0)
		return rc;
	int added = 0;
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
		if (mblist_find(l, defaults[i].name))
			continue;
		struct mblist_entry *e = mblist_get(l, defaults[i].name);
		if (e == NULL) {
			rc = AEROGRAM_EINTERNAL;
			break;
		}
		/* timestamp 1: any real change made later wins over the default */
		e->id_ts = 1;
		e->has_id = 1;
		default_id(user, defaults[i].name, e->id);
		e->uidvalidity = initial_uidvalidity(eng, 0);
		e->sub_ts = 1;
		e->subscribed = 1;
		e->su_ts = 1;
		e->special_use = defaults[i].su;
		added = 1;
	}
	if (rc == 0 && added && mail_would_block_write(eng))
		rc = MAIL_EAGAIN; /* creating the defaults is a write */
	if (rc == 0 && added)
		rc = mblist_save(eng, user, l, *token);
	if (rc != 0) {
		mblist_free(l);
		free(*token);
		*token = NULL;
	}
	return rc;
}

/* The UIDVALIDITY a mailbox id currently reports, read from its log. */
static int index_uidvalidity(struct mail_engine *eng, const char *user, const uint8_t *id, uint32_t *uv)
{
	char hex[33];
	mail_hex(id, UIDX_ID, hex);
	struct oplog log;
	int rc = oplog_init(&log, eng, user, hex);
	if (rc == 0)
		rc = oplog_sync(&log, 0);
	if (rc == 0)
		*uv = log.cur->uidvalidity;
	oplog_clear(&log);
	return rc;
}

static uint64_t next_ts(struct mail_engine *eng, uint64_t prev)
{
	uint64_t now = mail_now(eng);
	return now > prev ? now : prev + 1;
}

int mail_list(struct mail_engine *eng, const char *user, struct mail_mailbox_info **out, size_t *n)
{
	MAIL_READ_CALL(eng);
	struct mblist l;
	char *token = NULL;
	*out = NULL;
	*n = 0;
	int rc = load_defaults(eng, user, &l, &token);
	free(token);
	if (rc != 0)
		return rc;
	struct mail_mailbox_info *infos = calloc(l.n ? l.n : 1, sizeof(*infos));
	size_t k = 0;
	for (size_t i = 0; infos && i < l.n; i++) {
		struct mblist_entry *e = &l.e[i];
		if (!e->has_id && !e->subscribed)
			continue;
		infos[k].name = strdup(e->name);
		if (infos[k].name == NULL) {
			rc = AEROGRAM_EINTERNAL;
			break;
		}
		if (e->has_id)
			mail_hex(e->id, UIDX_ID, infos[k].id);
		infos[k].uidvalidity = e->uidvalidity;
		infos[k].special_use = e->special_use;
		infos[k].subscribed = e->subscribed;
		infos[k].exists = e->has_id;
		k++;
	}
	if (infos == NULL)
		rc = AEROGRAM_EINTERNAL;
	mblist_free(&l);
	if (rc != 0) {
		mail_list_free(infos, k);
		return rc;
	}
	*out = infos;
	*n = k;
	return 0;
}

void mail_list_free(struct mail_mailbox_info *infos, size_t n)
{
	for (size_t i = 0; infos && i < n; i++)
		free(infos[i].name);
	free(infos);
}

int mblist_lookup(struct mail_engine *eng, const char *user, const char *name, uint8_t *id, uint32_t *uv)
{
	char *nn = norm_name(name);
	if (nn == NULL)
		return AEROGRAM_EINTERNAL;
	struct mblist l;
	char *token = NULL;
	int rc = load_defaults(eng, user, &l, &token);
	free(token);
	if (rc == 0) {
		struct mblist_entry *e = mblist_find(&l, nn);
		if (e == NULL || !e->has_id) {
			rc = AEROGRAM_ENOTFOUND;
		} else {
			memcpy(id, e->id, UIDX_ID);
			*uv = e->uidvalidity;
		}
		mblist_free(&l);
	}
	free(nn);
	return rc;
}

/* Loads the list, lets `apply` change the entry of the normalised name and
 * saves the list with the token read (when apply returns 0). `valid`: a
 * name that is no valid mailbox name is refused first (EINVAL). */
static int edit_list(struct mail_engine *eng, const char *user, const char *name, int valid,
                     int (*apply)(struct mail_engine *eng, const char *user, struct mblist *l, const char *nn,
                                  void *arg),
                     void *arg)
{
	char *nn = norm_name(name);
	if (nn == NULL)
		return AEROGRAM_EINTERNAL;
	if (valid && !mblist_valid_name(nn)) {
		free(nn);
		return AEROGRAM_EINVAL;
	}
	struct mblist l;
	char *token = NULL;
	int rc = load_defaults(eng, user, &l, &token);
	if (rc == 0) {
		rc = apply(eng, user, &l, nn, arg);
		if (rc == 0)
			rc = mblist_save(eng, user, &l, token);
		mblist_free(&l);
		free(token);
	}
	free(nn);
	return rc;
}

static int apply_create(struct mail_engine *eng, const char *user, struct mblist *l, const char *nn, void *arg)
{
	(void)user;
	uint32_t special_use = *(const uint32_t *)arg;
	struct mblist_entry *e = mblist_find(l, nn);
	if (e && e->has_id)
		return MAIL_EEXIST;
	int existed = e != NULL;
	e = mblist_get(l, nn);
	if (e == NULL)
		return AEROGRAM_EINTERNAL;
	e->id_ts = next_ts(eng, e->id_ts);
	e->has_id = 1;
	mail_rand_bytes(eng, e->id, UIDX_ID);
	/* a re-created name starts above everything it reported before */
	e->uidvalidity = initial_uidvalidity(eng, existed ? e->uidvalidity + 1 : 0);
	if (special_use) {
		e->su_ts = next_ts(eng, e->su_ts);
		e->special_use = special_use;
	}
	return 0;
}

int mail_create(struct mail_engine *eng, const char *user, const char *name, uint32_t special_use)
{
	MAIL_WRITE_CALL(eng);
	return edit_list(eng, user, name, 1, apply_create, &special_use);
}

/* Marks e deleted, its UIDVALIDITY above anything its mailbox reported. */
static int entry_tombstone(struct mail_engine *eng, const char *user, struct mblist_entry *e)
{
	uint32_t uv = 0;
	int rc = index_uidvalidity(eng, user, e->id, &uv);
	if (rc != 0)
		return rc;
	if (uv > e->uidvalidity)
		e->uidvalidity = uv;
	e->uidvalidity++;
	e->id_ts = next_ts(eng, e->id_ts);
	e->has_id = 0;
	memset(e->id, 0, UIDX_ID);
	return 0;
}

/* Nonzero when a mailbox exists below `name` ("name.x..."). */
static int has_live_children(const struct mblist *l, const char *name)
{
	size_t len = strlen(name);
	for (size_t i = 0; i < l->n; i++)
		if (l->e[i].has_id && strncmp(l->e[i].name, name, len) == 0 && l->e[i].name[len] == MAIL_DELIMITER)
			return 1;
	return 0;
}

/* Tombstones the entry of a live mailbox; arg gets its id. */
static int apply_delete(struct mail_engine *eng, const char *user, struct mblist *l, const char *nn, void *arg)
{
	struct mblist_entry *e = mblist_find(l, nn);
	if (e == NULL || !e->has_id) {
		/* A level that exists only through mailboxes below it (LIST shows
		 * it \Noselect): RFC 3501 6.3.4 makes deleting it an error. */
		return has_live_children(l, nn) ? MAIL_ECHILDREN : AEROGRAM_ENOTFOUND;
	}
	memcpy(arg, e->id, UIDX_ID);
	return entry_tombstone(eng, user, e);
}

int mail_delete(struct mail_engine *eng, const char *user, const char *name)
{
	MAIL_WRITE_CALL(eng);
	char *nn = norm_name(name);
	if (nn == NULL)
		return AEROGRAM_EINTERNAL;
	int inbox = strcmp(nn, "INBOX") == 0;
	free(nn);
	if (inbox)
		return AEROGRAM_EPERM; /* RFC 3501 6.3.4: INBOX cannot be deleted */
	uint8_t id[UIDX_ID];
	int rc = edit_list(eng, user, name, 0, apply_delete, id);
	if (rc == 0) {
		char hex[33];
		mail_hex(id, UIDX_ID, hex);
		rc = mailbox_remove_contents(eng, user, hex);
	}
	return rc;
}

/* Moves the mailbox of entry src to name dst_name (dst must not be live). */
static int move_entry(struct mail_engine *eng, const char *user, struct mblist *l, const char *src_name,
                      const char *dst_name)
{
	struct mblist_entry *d = mblist_get(l, dst_name);
	if (d == NULL)
		return AEROGRAM_EINTERNAL;
	struct mblist_entry *s = mblist_find(l, src_name); /* after get: pointers move */
	uint8_t id[UIDX_ID];
	memcpy(id, s->id, UIDX_ID);
	uint32_t uv = 0;
	int rc = index_uidvalidity(eng, user, id, &uv);
	if (rc != 0)
		return rc;
	uint32_t src_uv = s->uidvalidity > uv ? s->uidvalidity : uv;
	uint32_t su = s->special_use;
	/* the old name: deleted, above anything it reported */
	s->uidvalidity = src_uv + 1;
	s->id_ts = next_ts(eng, s->id_ts);
	s->has_id = 0;
	memset(s->id, 0, UIDX_ID);
	d = mblist_find(l, dst_name);
	d->id_ts = next_ts(eng, d->id_ts);
	d->has_id = 1;
	memcpy(d->id, id, UIDX_ID);
	/* the new name: at least what both names reported (open bumps the log) */
	if (src_uv > d->uidvalidity)
		d->uidvalidity = src_uv;
	else
		d->uidvalidity++;
	if (su) {
		d->su_ts = next_ts(eng, d->su_ts);
		d->special_use = su;
	}
	return 0;
}

int mail_rename(struct mail_engine *eng, const char *user, const char *from, const char *to)
{
	MAIL_WRITE_CALL(eng);
	char *f = norm_name(from), *t = norm_name(to);
	int rc = 0;
	if (f == NULL || t == NULL)
		rc = AEROGRAM_EINTERNAL;
	else if (!mblist_valid_name(t) || !mblist_valid_name(f) || strcmp(t, "INBOX") == 0)
		rc = AEROGRAM_EINVAL;
	struct mblist l = { 0 };
	char *token = NULL;
	if (rc == 0)
		rc = load_defaults(eng, user, &l, &token);
	if (rc != 0) {
		free(f);
		free(t);
		return rc;
	}
	size_t fl = strlen(f);
	struct mblist_entry *src = mblist_find(&l, f);
	/* A name that exists only through its children (LIST shows it
	 * \Noselect) is renamed too: its children move (a.b.c -> x.b.c), as
	 * they would with it (RFC 3501 6.3.5). The new name must be free all
	 * the same. */
	int src_live = src != NULL && src->has_id;
	if (!src_live) {
		struct mblist_entry *te = mblist_find(&l, t);
		if (!has_live_children(&l, f))
			rc = AEROGRAM_ENOTFOUND;
		else if (te != NULL && te->has_id)
			rc = MAIL_EEXIST;
	}
	/* renaming into one's own hierarchy is refused */
	if (rc == 0 && strncmp(t, f, fl) == 0 && t[fl] == MAIL_DELIMITER)
		rc = AEROGRAM_EINVAL;
	int inbox = strcmp(f, "INBOX") == 0;
	/* collect the names to move: the mailbox and, except for INBOX, its children */
	char **names = NULL;
	size_t nn = 0;
	if (rc == 0) {
		names = calloc(l.n, sizeof(char *));
		if (names == NULL)
			rc = AEROGRAM_EINTERNAL;
		for (size_t i = 0; rc == 0 && i < l.n; i++) {
			const char *nm = l.e[i].name;
			int match = strcmp(nm, f) == 0 ||
			            (!inbox && strncmp(nm, f, fl) == 0 && nm[fl] == MAIL_DELIMITER);
			if (!match || !l.e[i].has_id)
				continue;
			names[nn] = strdup(nm);
			if (names[nn] == NULL)
				rc = AEROGRAM_EINTERNAL;
			else
				nn++;
		}
	}
	/* every target must be free */
	for (size_t i = 0; rc == 0 && i < nn; i++) {
		char target[2048];
		snprintf(target, sizeof(target), "%s%s", t, names[i] + fl);
		struct mblist_entry *te = mblist_find(&l, target);
		if (te && te->has_id)
			rc = MAIL_EEXIST;
	}
	for (size_t i = 0; rc == 0 && i < nn; i++) {
		char target[2048];
		snprintf(target, sizeof(target), "%s%s", t, names[i] + fl);
		rc = move_entry(eng, user, &l, names[i], target);
	}
	if (rc == 0 && inbox) {
		/* RFC 3501 6.3.5: the messages move, and INBOX is there again, empty */
		struct mblist_entry *e = mblist_find(&l, "INBOX");
		e->id_ts = next_ts(eng, e->id_ts);
		e->has_id = 1;
		mail_rand_bytes(eng, e->id, UIDX_ID);
	}
	if (rc == 0)
		rc = mblist_save(eng, user, &l, token);
	mail_free_strv(names, nn);
	mblist_free(&l);
	free(token);
	free(f);
	free(t);
	return rc;
}

/* A subscription may name a mailbox that does not exist (RFC 3501 6.3.6). */
static int apply_subscribe(struct mail_engine *eng, const char *user, struct mblist *l, const char *nn,
                           void *arg)
{
	(void)user;
	struct mblist_entry *e = mblist_get(l, nn);
	if (e == NULL)
		return AEROGRAM_EINTERNAL;
	e->sub_ts = next_ts(eng, e->sub_ts);
	e->subscribed = *(const int *)arg ? 1 : 0;
	return 0;
}

int mail_subscribe(struct mail_engine *eng, const char *user, const char *name, int on)
{
	MAIL_WRITE_CALL(eng);
	return edit_list(eng, user, name, 1, apply_subscribe, &on);
}

static int apply_special_use(struct mail_engine *eng, const char *user, struct mblist *l, const char *nn,
                             void *arg)
{
	(void)user;
	struct mblist_entry *e = mblist_find(l, nn);
	if (e == NULL || !e->has_id)
		return AEROGRAM_ENOTFOUND;
	e->su_ts = next_ts(eng, e->su_ts);
	e->special_use = *(const uint32_t *)arg;
	return 0;
}

int mail_set_special_use(struct mail_engine *eng, const char *user, const char *name, uint32_t su)
{
	MAIL_WRITE_CALL(eng);
	return edit_list(eng, user, name, 0, apply_special_use, &su);
}
