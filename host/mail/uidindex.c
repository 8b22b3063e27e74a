/* uidindex.c - the UID index of one mailbox: the state the log replays to.
 *
 * Each operation covers every message of one IMAP command. apply() is pure
 * and deterministic, so every engine that replays the same set of operations
 * in timestamp order reaches the same state. See README.md for the proof
 * that "same UIDVALIDITY and same UID" always names the same message.
 *
 * Messages are kept in an array sorted by UID (UIDs are allocated in
 * increasing order, so adds append), plus an id -> UID hash so that an
 * operation on 1,000 messages of a 100,000-message mailbox costs 1,000
 * lookups, not 10^8 comparisons. */
#include "host/mail/mail_internal.h"

#include <stdlib.h>
#include <string.h>

struct uidx_state *uidx_new(void)
{
	struct uidx_state *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->uidvalidity = 1;
	s->uv_init = 1;
	s->uidnext = 1;
	s->recent_upto = 1;
	return s;
}

void uidx_free(struct uidx_state *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n_keywords; i++)
		free(s->keywords[i]);
	free(s->msgs);
	free(s->recent);
	free(s->hash);
	free(s->expunged);
	free(s->vanished);
	free(s);
}

struct uidx_state *uidx_clone(const struct uidx_state *s)
{
	return uidx_clone_ex(s, 1);
}

/* Sets *pa (a pointer to an array's pointer) to a copy of the n items of
 * `size` bytes at src, NULL when n is 0: 0, or -1 (*pa untouched). */
static int dup_items(void *pa, const void *src, size_t n, size_t size)
{
	void *a = NULL;
	if (n) {
		a = malloc(n * size);
		if (a == NULL)
			return -1;
		memcpy(a, src, n * size);
	}
	memcpy(pa, &a, sizeof(a));
	return 0;
}

struct uidx_state *uidx_clone_ex(const struct uidx_state *s, int with_expunged)
{
	struct uidx_state *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	*c = *s;
	/* nothing of s's is c's until copied: a failure frees only copies */
	c->msgs = NULL;
	c->recent = NULL;
	c->hash = NULL;
	c->hash_cap = c->hash_used = 0;
	c->n_keywords = 0;
	c->expunged = NULL;
	c->n_expunged = c->cap_expunged = 0;
	c->vanished = NULL;
	c->n_vanished = c->cap_vanished = 0;
	if (with_expunged) {
		if (dup_items(&c->expunged, s->expunged, s->n_expunged, sizeof(*c->expunged)) != 0 ||
		    dup_items(&c->vanished, s->vanished, s->n_vanished, sizeof(*c->vanished)) != 0)
			goto fail;
		c->n_expunged = c->cap_expunged = s->n_expunged;
		c->n_vanished = c->cap_vanished = s->n_vanished;
	}
	c->cap = s->n;
	if (dup_items(&c->msgs, s->msgs, s->n, sizeof(*c->msgs)) != 0 ||
	    dup_items(&c->recent, s->recent, s->n_recent, sizeof(*c->recent)) != 0)
		goto fail;
	for (size_t i = 0; i < s->n_keywords; i++) {
		c->keywords[i] = strdup(s->keywords[i]);
		if (c->keywords[i] == NULL)
			goto fail;
		c->n_keywords++;
	}
	return c;
fail:
	uidx_free(c);
	return NULL;
}

/* ---- id -> uid hash ---- */

static size_t id_hash(const uint8_t *id)
{
	uint64_t a, b;
	memcpy(&a, id, 8);
	memcpy(&b, id + 8, 8);
	uint64_t h = (a ^ (b * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;
	return (size_t)(h ^ (h >> 29));
}

/* Rebuilds the hash with room for `extra` more ids (load stays <= 1/2). */
static int hash_rebuild(struct uidx_state *s, size_t extra)
{
	size_t cap = 64;
	while (cap < (s->n + extra) * 3)
		cap *= 2;
	struct uidx_slot *h = calloc(cap, sizeof(*h));
	if (h == NULL)
		return -1;
	free(s->hash);
	s->hash = h;
	s->hash_cap = cap;
	s->hash_used = 0;
	for (size_t i = 0; i < s->n; i++) {
		size_t j = id_hash(s->msgs[i].id) & (cap - 1);
		while (h[j].uid != 0)
			j = (j + 1) & (cap - 1);
		memcpy(h[j].id, s->msgs[i].id, UIDX_ID);
		h[j].uid = s->msgs[i].uid;
		s->hash_used++;
	}
	return 0;
}

/* The slot holding id, or the empty slot where it would go. Removed ids
 * keep their slot with uid 0 so probe chains stay intact. */
static struct uidx_slot *hash_slot(struct uidx_state *s, const uint8_t *id)
{
	if (s->hash == NULL && hash_rebuild(s, 0) < 0)
		return NULL;
	size_t j = id_hash(id) & (s->hash_cap - 1);
	for (;;) {
		struct uidx_slot *sl = &s->hash[j];
		static const uint8_t zero[UIDX_ID];
		if (memcmp(sl->id, id, UIDX_ID) == 0)
			return sl;
		if (sl->uid == 0 && memcmp(sl->id, zero, UIDX_ID) == 0)
			return sl;
		j = (j + 1) & (s->hash_cap - 1);
	}
}

const struct uidx_msg *uidx_find_uid(const struct uidx_state *s, uint32_t uid)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < s->n && s->msgs[lo].uid == uid ? &s->msgs[lo] : NULL;
}

const struct uidx_msg *uidx_find_id(struct uidx_state *s, const uint8_t *id)
{
	struct uidx_slot *sl = hash_slot(s, id);
	if (sl == NULL || sl->uid == 0)
		return NULL;
	return uidx_find_uid(s, sl->uid);
}

/* ---- flags ---- */

static int keyword_index(struct uidx_state *s, const char *kw, int add)
{
	for (size_t i = 0; i < s->n_keywords; i++)
		if (strcasecmp(s->keywords[i], kw) == 0)
			return (int)i;
	if (!add || s->n_keywords >= MAIL_MAX_KEYWORDS)
		return -1; /* the table is full: the keyword is dropped, deterministically */
	char *d = strdup(kw);
	if (d == NULL)
		return -1;
	s->keywords[s->n_keywords] = d;
	return (int)s->n_keywords++;
}

/* Op-local flag bits to state bits. */
static uint64_t op_to_state_flags(struct uidx_state *s, const struct uidx_op *op, uint64_t f, int add)
{
	uint64_t out = f & MAIL_F_SYSTEM;
	for (size_t k = 0; k < op->n_keywords && k < MAIL_MAX_KEYWORDS; k++) {
		if (!(f & (1ull << (5 + k))))
			continue;
		int j = keyword_index(s, op->keywords[k], add);
		if (j >= 0)
			out |= 1ull << (5 + j);
	}
	return out;
}

int uidx_op_keyword(struct uidx_op *op, const char *kw)
{
	size_t k;
	for (k = 0; k < op->n_keywords; k++)
		if (strcasecmp(op->keywords[k], kw) == 0)
			return (int)k;
	if (k >= MAIL_MAX_KEYWORDS)
		return -1;
	char **nk = realloc(op->keywords, (k + 1) * sizeof(char *));
	if (nk == NULL)
		return -2;
	op->keywords = nk;
	nk[k] = strdup(kw);
	if (nk[k] == NULL)
		return -2;
	op->n_keywords++;
	return (int)k;
}

uint64_t uidx_state_to_op_flags(struct uidx_op *op, const struct uidx_state *s, uint64_t flags)
{
	uint64_t out = flags & MAIL_F_SYSTEM;
	for (size_t j = 0; j < s->n_keywords; j++) {
		if (!(flags & (1ull << (5 + j))))
			continue;
		int k = uidx_op_keyword(op, s->keywords[j]);
		if (k >= 0) /* else dropped: the op's table is full, or no memory */
			out |= 1ull << (5 + k);
	}
	return out;
}

int uidx_op_set_keywords(struct uidx_op *op, const char *const *kw, size_t n)
{
	if (n > MAIL_MAX_KEYWORDS)
		n = MAIL_MAX_KEYWORDS;
	op->keywords = n ? calloc(n, sizeof(char *)) : NULL;
	if (n && op->keywords == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		op->keywords[i] = strdup(kw[i]);
		if (op->keywords[i] == NULL)
			return -1;
		op->n_keywords++;
	}
	return 0;
}

void uidx_op_free(struct uidx_op *op)
{
	if (op == NULL)
		return;
	mail_free_strv(op->keywords, op->n_keywords);
	free(op->ids);
	free(op->item_flags);
	free(op->item_sizes);
	free(op);
}

/* ---- apply ---- */

static int msgs_reserve(struct uidx_state *s, size_t extra)
{
	return mail_grow(&s->msgs, &s->cap, s->n + extra, sizeof(*s->msgs), 16);
}

static uint32_t sat_add32(uint32_t a, uint64_t b)
{
	uint64_t v = (uint64_t)a + b;
	return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* The totals kept beside msgs: a message comes in or goes out. */
static void size_in(struct uidx_state *s, uint64_t size)
{
	if (size == UIDX_SIZE_UNKNOWN)
		s->n_unsized++;
	else
		s->total_size = size > UINT64_MAX - 1 - s->total_size ? UINT64_MAX - 1 : s->total_size + size;
}

static void size_out(struct uidx_state *s, uint64_t size)
{
	if (size == UIDX_SIZE_UNKNOWN)
		s->n_unsized -= s->n_unsized > 0;
	else
		s->total_size = size > s->total_size ? 0 : s->total_size - size;
}

void uidx_set_size(struct uidx_state *s, const uint8_t *id, uint64_t size)
{
	struct uidx_msg *m = (struct uidx_msg *)uidx_find_id(s, id);
	if (m == NULL || m->size != UIDX_SIZE_UNKNOWN || size == UIDX_SIZE_UNKNOWN)
		return;
	size_out(s, m->size);
	m->size = size;
	size_in(s, size);
}

static int apply_add(struct uidx_state *s, const struct uidx_op *op)
{
	/* The conflict term: UIDs allocated before this op that its writer did
	 * not see. It is never negative for a causally closed view; clamp it
	 * anyway so that a corrupt op cannot lower UIDVALIDITY. */
	uint32_t term = s->uidnext > op->seen_uidnext ? s->uidnext - op->seen_uidnext : 0;
	/* Its writer had more adds before it than we do: we miss one (late,
	 * and its announcement lost). The log reads again (oplog.c). */
	if (op->seen_uidnext > s->uidnext)
		s->add_gaps++;
	/* With an anchor still in the window, only the UIDs allocated after the
	 * anchor count: an add the writer missed before its anchor was charged
	 * to the op whose own anchor precedes it, once (README proof). */
	for (size_t i = s->n_marks; op->has_anchor && i-- > 0;) {
		if (ts_cmp(s->marks[i].ts, op->anchor) != 0)
			continue;
		uint32_t gap = s->uidnext - s->marks[i].uidnext;
		if (gap < term)
			term = gap;
		break;
	}
	s->uidvalidity = sat_add32(s->uidvalidity, term);
	if (msgs_reserve(s, op->n) < 0)
		return AEROGRAM_EINTERNAL;
	if (s->hash == NULL || (s->hash_used + op->n) * 2 > s->hash_cap)
		if (hash_rebuild(s, op->n) < 0)
			return AEROGRAM_EINTERNAL;
	uint64_t modseq = s->highestmodseq + 1;
	for (size_t i = 0; i < op->n; i++) {
		uint32_t uid = s->uidnext;
		s->uidnext = sat_add32(s->uidnext, 1);
		/* Every item consumes a UID, even a duplicate id that is skipped:
		 * UID allocation depends on the op sequence alone (README proof). */
		struct uidx_slot *sl = hash_slot(s, op->ids[i]);
		if (sl == NULL)
			return AEROGRAM_EINTERNAL;
		if (sl->uid != 0 || uid == UINT32_MAX)
			continue;
		if (memcmp(sl->id, op->ids[i], UIDX_ID) != 0) {
			memcpy(sl->id, op->ids[i], UIDX_ID);
			s->hash_used++;
		}
		sl->uid = uid;
		struct uidx_msg *m = &s->msgs[s->n++];
		memset(m, 0, sizeof(*m));
		memcpy(m->id, op->ids[i], UIDX_ID);
		m->uid = uid;
		m->modseq = modseq;
		m->flags = op_to_state_flags(s, op, op->item_flags[i], 1);
		m->size = op->item_sizes ? op->item_sizes[i] : UIDX_SIZE_UNKNOWN;
		size_in(s, m->size);
	}
	s->highestmodseq = modseq;
	if (s->n_marks == UIDX_MARKS) {
		memmove(s->marks, s->marks + 1, (UIDX_MARKS - 1) * sizeof(s->marks[0]));
		s->n_marks--;
	}
	s->marks[s->n_marks].ts = op->ts;
	s->marks[s->n_marks].uidnext = s->uidnext;
	s->n_marks++;
	return 0;
}

/* Records an expunged message (a failure to grow the list only loses the
 * chance to undelete it: the list is advisory). */
static void expunged_add(struct uidx_state *s, const struct uidx_msg *m, uint64_t at)
{
	if (s->n_expunged == s->cap_expunged) {
		size_t cap = s->cap_expunged ? s->cap_expunged * 2 : 16;
		struct uidx_expunged *e = realloc(s->expunged, cap * sizeof(*e));
		if (e == NULL)
			return;
		s->expunged = e;
		s->cap_expunged = cap;
	}
	struct uidx_expunged *e = &s->expunged[s->n_expunged++];
	memcpy(e->id, m->id, UIDX_ID);
	e->uid = m->uid;
	e->flags = m->flags;
	e->at = at;
}

void uidx_expunged_filter(struct uidx_state *s, int (*drop)(void *arg, const struct uidx_expunged *e), void *arg)
{
	size_t w = 0;
	for (size_t r = 0; r < s->n_expunged; r++)
		if (!drop(arg, &s->expunged[r]))
			s->expunged[w++] = s->expunged[r];
	s->n_expunged = w;
}

/* Records the UIDs `uids` (ascending) expunged at `modseq` as runs. A
 * failure to grow the list forgets the oldest runs instead (the floor
 * rises), so what is listed is always exact above the floor. */
static void vanished_add(struct uidx_state *s, const uint32_t *uids, size_t n, uint64_t modseq)
{
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j + 1 < n && uids[j + 1] == uids[j] + 1)
			j++;
		if (s->n_vanished == s->cap_vanished) {
			size_t cap = s->cap_vanished ? s->cap_vanished * 2 : 16;
			struct uidx_vanished *v = realloc(s->vanished, cap * sizeof(*v));
			if (v != NULL) {
				s->vanished = v;
				s->cap_vanished = cap;
			}
		}
		if (s->n_vanished == s->cap_vanished || s->n_vanished == UIDX_VANISHED_MAX) {
			if (s->n_vanished == 0) {
				s->vanished_floor = modseq;
				return;
			}
			/* drop the oldest quarter at once: amortised O(1) */
			size_t drop = (s->n_vanished + 3) / 4;
			s->vanished_floor = s->vanished[drop - 1].modseq;
			memmove(s->vanished, s->vanished + drop, (s->n_vanished - drop) * sizeof(*s->vanished));
			s->n_vanished -= drop;
		}
		struct uidx_vanished *v = &s->vanished[s->n_vanished++];
		v->modseq = modseq;
		v->lo = uids[i];
		v->hi = uids[j];
		i = j + 1;
	}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int apply_del(struct uidx_state *s, const struct uidx_op *op)
{
	size_t removed = 0;
	int record = s->keep_expunged && !(op->flags & UIDX_DEL_MOVED);
	/* Find every message first, then mark them: a mark (uid 0) in the
	 * sorted array would mislead the search for the next one unless the
	 * ids come in ascending UID order. */
	size_t *pos = malloc((op->n ? op->n : 1) * sizeof(*pos));
	uint32_t *uids = malloc((op->n ? op->n : 1) * sizeof(*uids)); /* for QRESYNC */
	if (pos == NULL || uids == NULL) {
		free(pos);
		free(uids);
		return AEROGRAM_EINTERNAL;
	}
	for (size_t i = 0; i < op->n; i++) {
		struct uidx_slot *sl = hash_slot(s, op->ids[i]);
		if (sl == NULL) {
			free(pos);
			free(uids);
			return AEROGRAM_EINTERNAL;
		}
		if (sl->uid == 0)
			continue;
		struct uidx_msg *m = (struct uidx_msg *)uidx_find_uid(s, sl->uid);
		sl->uid = 0;
		if (m) {
			size_out(s, m->size);
			if (record)
				expunged_add(s, m, op->ts.ms);
			pos[removed++] = (size_t)(m - s->msgs);
		}
	}
	if (removed == 0) {
		free(pos);
		free(uids);
		return 0;
	}
	for (size_t i = 0; i < removed; i++) {
		uids[i] = s->msgs[pos[i]].uid;
		s->msgs[pos[i]].uid = 0; /* marked; compacted below */
	}
	qsort(uids, removed, sizeof(*uids), cmp_u32);
	vanished_add(s, uids, removed, s->highestmodseq + 1);
	free(uids);
	free(pos);
	size_t w = 0;
	for (size_t r = 0; r < s->n; r++)
		if (s->msgs[r].uid != 0)
			s->msgs[w++] = s->msgs[r];
	s->n = w;
	s->highestmodseq++;
	return 0;
}

static int apply_flags(struct uidx_state *s, const struct uidx_op *op)
{
	int add = op->kind != UIDX_OP_FLAG_DEL;
	uint64_t f = op_to_state_flags(s, op, op->flags, add);
	uint64_t modseq = s->highestmodseq + 1;
	int changed = 0;
	for (size_t i = 0; i < op->n; i++) {
		struct uidx_msg *m = (struct uidx_msg *)uidx_find_id(s, op->ids[i]);
		if (m == NULL)
			continue;
		uint64_t nf = op->kind == UIDX_OP_FLAG_ADD ? (m->flags | f)
		              : op->kind == UIDX_OP_FLAG_DEL ? (m->flags & ~f) : f;
		if (nf == m->flags)
			continue;
		m->flags = nf;
		m->modseq = modseq;
		changed = 1;
	}
	if (changed)
		s->highestmodseq = modseq;
	return 0;
}

static int claim_upto(struct uidx_state *s, const uint8_t *owner, uint32_t upto)
{
	/* The earliest claim (in log order) of a UID wins: recent_upto only
	 * grows, so the ranges handed out never overlap. */
	if (upto > s->uidnext)
		upto = s->uidnext;
	if (upto <= s->recent_upto)
		return 0;
	if (s->n_recent > 0 && s->recent[s->n_recent - 1].hi == s->recent_upto &&
	    memcmp(s->recent[s->n_recent - 1].owner, owner, UIDX_ID) == 0) {
		/* the same session again, right after its last range: one range */
		s->recent[s->n_recent - 1].hi = upto;
		s->recent_upto = upto;
		return 0;
	}
	struct uidx_recent *r = realloc(s->recent, (s->n_recent + 1) * sizeof(*r));
	if (r == NULL)
		return AEROGRAM_EINTERNAL;
	s->recent = r;
	memcpy(r[s->n_recent].owner, owner, UIDX_ID);
	r[s->n_recent].lo = s->recent_upto;
	r[s->n_recent].hi = upto;
	s->n_recent++;
	s->recent_upto = upto;
	return 0;
}

static int apply_claim(struct uidx_state *s, const struct uidx_op *op)
{
	return claim_upto(s, op->owner, op->seen_uidnext);
}

/* An ADD whose owner is set claims \Recent for that session up to the new
 * uidnext, as a CLAIM right after it would (the appending session has the
 * mailbox selected and is told of the new messages at once): one log entry
 * where there were two. ADDs written before this carry a zero owner. */
static int owner_set(const uint8_t *owner)
{
	for (size_t i = 0; i < UIDX_ID; i++)
		if (owner[i])
			return 1;
	return 0;
}

int uidx_apply(struct uidx_state *s, const struct uidx_op *op)
{
	switch (op->kind) {
	case UIDX_OP_ADD: {
		int rc = apply_add(s, op);
		if (rc == 0 && owner_set(op->owner))
			rc = claim_upto(s, op->owner, s->uidnext);
		return rc;
	}
	case UIDX_OP_DEL:
		return apply_del(s, op);
	case UIDX_OP_FLAG_ADD:
	case UIDX_OP_FLAG_DEL:
	case UIDX_OP_FLAG_SET:
		return apply_flags(s, op);
	case UIDX_OP_BUMP:
		s->uidvalidity = sat_add32(s->uidvalidity, op->bump);
		return 0;
	case UIDX_OP_CLAIM:
		return apply_claim(s, op);
	case UIDX_OP_INIT:
		/* The largest INIT wins: concurrent first opens converge, and
		 * UIDVALIDITY = max(INIT) + the additive terms keeps the proof's
		 * "equal value means equal terms" (README). */
		if (op->bump > s->uv_init) {
			s->uidvalidity = sat_add32(s->uidvalidity, op->bump - s->uv_init);
			s->uv_init = op->bump;
		}
		return 0;
	case UIDX_OP_LATE:
		return 0; /* read by the log, not the state */
	default:
		return 0; /* unknown kinds were refused by the decoder */
	}
}

size_t uidx_range_search(const void *ranges, size_t n, size_t stride, size_t hi_offset, uint32_t uid)
{
	const char *base = ranges;
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint32_t end;
		memcpy(&end, base + mid * stride + hi_offset, sizeof(end));
		if (end <= uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int uidx_is_recent(const struct uidx_state *s, const uint8_t *owner, uint32_t uid)
{
	/* ranges are disjoint and ascending (recent_upto only grows) */
	size_t lo = uidx_range_search(s->recent, s->n_recent, sizeof(*s->recent), offsetof(struct uidx_recent, hi), uid);
	if (lo < s->n_recent && uid >= s->recent[lo].lo && uid < s->recent[lo].hi)
		return memcmp(s->recent[lo].owner, owner, UIDX_ID) == 0;
	return 0;
}

/* Drops claim ranges that cover no message any more (before a checkpoint). */
void uidx_prune_recent(struct uidx_state *s)
{
	uint32_t lowest = s->n ? s->msgs[0].uid : s->uidnext;
	size_t w = 0;
	for (size_t i = 0; i < s->n_recent; i++)
		if (s->recent[i].hi > lowest)
			s->recent[w++] = s->recent[i];
	s->n_recent = w;
}
