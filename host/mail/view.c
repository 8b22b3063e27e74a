/* view.c - one session's snapshot of a mailbox and the diff against the
 * shared state.
 *
 * The snapshot is what the client has been told: it maps sequence numbers
 * to UIDs. mail_view_update() moves it to the shared state and lists what
 * to send: EXPUNGE (numbers adjusted as they are emitted), EXISTS, FETCH
 * FLAGS/MODSEQ for changed messages, or a new UIDVALIDITY. An update with
 * MAIL_VIEW_DEFER_EXPUNGE keeps expunged messages in the snapshot (marked
 * gone) so that sequence numbers stay put until EXPUNGE may be sent. */
#include "host/mail/mail_internal.h"

#include <stdlib.h>
#include <string.h>

/* Claims \Recent for the messages no session claimed yet (one log entry).
 * Called with mb->lock held. */
static int claim_recent(struct mail_view *v)
{
	struct mail_mailbox *mb = v->mb;
	const struct uidx_state *s = mb->log.cur;
	if (s->uidnext <= s->recent_upto)
		return 0;
	MAIL_WRITE_CALL(mb->eng); /* a claim is a log entry */
	struct uidx_op *op = calloc(1, sizeof(*op));
	if (op == NULL)
		return AEROGRAM_EINTERNAL;
	op->kind = UIDX_OP_CLAIM;
	op->seen_uidnext = s->uidnext;
	memcpy(op->owner, v->session, UIDX_ID);
	return oplog_push(&mb->log, op, NULL, 0);
}

/* Best effort: a store that refuses writes (a full disk) must not keep a
 * client from reading its mail. The view goes on without \Recent; only a
 * non-blocking attempt (MAIL_EAGAIN) is retried. */
static int claim_recent_best_effort(struct mail_view *v)
{
	int crc = claim_recent(v);
	if (crc == MAIL_EAGAIN)
		return crc;
	if (crc != 0)
		mail_log(v->mb->eng, AEROGRAM_LOG_WARNING, "%s: cannot claim \\Recent (error %d), going on without",
		         v->mb->log.pk, crc);
	return 0;
}

/* For a view that does not claim: the messages of cur it sees for the first
 * time (UIDs from `from` on) that nobody has claimed become \Recent for it.
 * Ranges that cover no message of cur any more are dropped. */
/* What opening and updating a view start with: takes the mailbox's lock,
 * syncs the mailbox and, for a claiming view, claims its \Recent; the
 * outcome in *rc, the lock held. -1 when another thread holds the lock
 * (across a store call): nothing done. */
static int lock_sync_claim(struct mail_view *v, int claim, int *rc)
{
	if (mail_lock_or_again(&v->mb->lock) != 0)
		return -1;
	*rc = mailbox_sync_locked(v->mb, 0);
	if (*rc == 0 && claim)
		*rc = claim_recent_best_effort(v);
	return 0;
}

static int note_unclaimed(struct mail_view *v, const struct uidx_state *cur, uint32_t from)
{
	uint32_t lowest = cur->n ? cur->msgs[0].uid : cur->uidnext;
	/* the snapshot may still hold messages expunged since (not told yet) */
	if (v->snap != NULL && v->snap->n > 0 && v->snap->msgs[0].uid < lowest)
		lowest = v->snap->msgs[0].uid;
	if (from == 0)
		v->n_ro_recent = 0; /* a new UIDVALIDITY: the old UIDs mean nothing */
	size_t w = 0;
	for (size_t i = 0; i < v->n_ro_recent; i++)
		if (v->ro_recent[i].hi > lowest)
			v->ro_recent[w++] = v->ro_recent[i];
	v->n_ro_recent = w;
	uint32_t lo = cur->recent_upto > from ? cur->recent_upto : from;
	if (lo >= cur->uidnext)
		return 0;
	if (w > 0 && v->ro_recent[w - 1].hi == lo) {
		v->ro_recent[w - 1].hi = cur->uidnext;
		return 0;
	}
	struct mail_view_range *r = realloc(v->ro_recent, (w + 1) * sizeof(*r));
	if (r == NULL)
		return AEROGRAM_EINTERNAL;
	v->ro_recent = r;
	r[w].lo = lo;
	r[w].hi = cur->uidnext;
	v->n_ro_recent = w + 1;
	return 0;
}

int mail_view_open(struct mail_mailbox *mb, int claim, struct mail_view **out)
{
	MAIL_READ_CALL(mb->eng);
	*out = NULL;
	struct mail_view *v = calloc(1, sizeof(*v));
	if (v == NULL)
		return AEROGRAM_EINTERNAL;
	v->mb = mb;
	v->claims = claim != 0;
	mail_rand_bytes(mb->eng, v->session, UIDX_ID);
	pthread_mutex_lock(&mb->eng->lock);
	mb->refs++;
	mb->watchers++;
	if (mb->watchers == 1 && mb->watch == NULL && !mb->eng->opt.no_poller)
		pthread_cond_signal(&mb->eng->poll_cond); /* the poller arms a watch */
	pthread_mutex_unlock(&mb->eng->lock);
	v->counted = 1;
	int rc;
	if (lock_sync_claim(v, claim, &rc) != 0) {
		mail_view_close(v);
		return MAIL_EAGAIN;
	}
	if (rc == 0) {
		v->snap = uidx_clone_ex(mb->log.cur, 0);
		v->told_modseq = v->snap ? v->snap->highestmodseq : 0;
		v->version = mb->log.version;
		v->uv = mailbox_uidvalidity(mb, mb->log.cur);
		if (v->snap == NULL)
			rc = AEROGRAM_EINTERNAL;
		else if (!claim) {
			struct uidx_state *snap = v->snap;
			v->snap = NULL;
			rc = note_unclaimed(v, snap, 0);
			v->snap = snap;
		}
	}
	pthread_mutex_unlock(&mb->lock);
	if (rc != 0) {
		mail_view_close(v);
		return rc;
	}
	*out = v;
	return 0;
}

void mail_view_close(struct mail_view *v)
{
	if (v == NULL)
		return;
	if (v->counted) {
		pthread_mutex_lock(&v->mb->eng->lock);
		v->mb->watchers--;
		pthread_mutex_unlock(&v->mb->eng->lock);
	}
	uidx_free(v->snap);
	free(v->ro_recent);
	mail_mailbox_close(v->mb);
	free(v);
}

struct mail_mailbox *mail_view_mailbox(struct mail_view *v)
{
	return v->mb;
}

static int recent_of(const struct mail_view *v, const struct uidx_state *s, uint32_t uid)
{
	if (!v->claims) {
		size_t lo = uidx_range_search(v->ro_recent, v->n_ro_recent, sizeof(*v->ro_recent),
		                              offsetof(struct mail_view_range, hi), uid);
		return lo < v->n_ro_recent && uid >= v->ro_recent[lo].lo;
	}
	return uidx_is_recent(s, v->session, uid);
}

/* Diffs the snapshot `old` against `cur` into c, and turns `cur` into the
 * next snapshot: with MAIL_VIEW_DEFER_EXPUNGE the messages of old that cur
 * lacks are merged back (marked gone) instead of being reported. */
static int diff(struct mail_view *v, struct uidx_state *old, struct uidx_state *cur, uint32_t new_uv,
                unsigned options, struct mail_changes *c)
{
	int defer = (options & MAIL_VIEW_DEFER_EXPUNGE) != 0;
	c->uidnext = cur->uidnext;
	c->uidvalidity = new_uv;
	c->exists = (uint32_t)cur->n;
	if (new_uv != v->uv) {
		/* UIDs no longer mean what the client knows: it must resync. */
		c->uidvalidity_changed = 1;
		c->exists_changed = 1;
		v->n_gone = 0;
		return 0;
	}
	struct uidx_msg *merged = NULL;
	if (defer) {
		merged = malloc((old->n + cur->n ? old->n + cur->n : 1) * sizeof(*merged));
		if (merged == NULL)
			return AEROGRAM_EINTERNAL;
	}
	c->expunged = malloc((old->n ? old->n : 1) * sizeof(uint32_t));
	c->expunged_uids = malloc((old->n ? old->n : 1) * sizeof(uint32_t));
	c->flags = malloc((cur->n ? cur->n : 1) * sizeof(*c->flags));
	if (c->expunged == NULL || c->expunged_uids == NULL || c->flags == NULL) {
		free(merged);
		return AEROGRAM_EINTERNAL;
	}
	/* k: position in the next snapshot (cur's own, or the merged one). */
	size_t i = 0, j = 0, k = 0, removed = 0, gone = 0;
	while (i < old->n || j < cur->n) {
		uint32_t ou = i < old->n ? old->msgs[i].uid : UINT32_MAX;
		uint32_t nu = j < cur->n ? cur->msgs[j].uid : UINT32_MAX;
		if (ou < nu) {
			if (defer) {
				/* kept, with what the client knows of it, until it may be told */
				merged[k] = old->msgs[i];
				merged[k].gone = 1;
				k++;
				gone++;
			} else {
				/* gone: its number is its position minus those already expunged */
				c->expunged_uids[c->n_expunged] = ou;
				c->expunged[c->n_expunged++] = (uint32_t)(i + 1 - removed);
				removed++;
			}
			i++;
		} else if (nu < ou) {
			if (defer)
				merged[k] = cur->msgs[j];
			k++;
			j++; /* new: announced by EXISTS */
		} else {
			const struct uidx_msg *a = &old->msgs[i], *b = &cur->msgs[j];
			int ra = recent_of(v, old, a->uid), rb = recent_of(v, cur, b->uid);
			if (a->flags != b->flags || a->modseq != b->modseq || ra != rb) {
				struct mail_flag_change *f = &c->flags[c->n_flags++];
				f->seq = (uint32_t)(k + 1);
				f->uid = b->uid;
				f->flags = (uint32_t)(b->flags & MAIL_F_SYSTEM);
				f->keywords = b->flags >> 5;
				f->modseq = b->modseq;
				f->recent = rb;
			}
			if (defer)
				merged[k] = cur->msgs[j];
			k++;
			i++;
			j++;
		}
	}
	if (defer) {
		/* cur's id hash (if any) does not cover the merged messages */
		free(cur->msgs);
		free(cur->hash);
		cur->hash = NULL;
		cur->hash_cap = cur->hash_used = 0;
		cur->msgs = merged;
		cur->n = cur->cap = k;
	}
	v->n_gone = gone;
	c->exists = (uint32_t)k;
	c->exists_changed = k != old->n - removed;
	return 0;
}

int mail_view_update(struct mail_view *v, int claim, struct mail_changes **out)
{
	return mail_view_update_ex(v, claim, 0, out);
}

int mail_view_update_ex(struct mail_view *v, int claim, unsigned options, struct mail_changes **out)
{
	*out = NULL;
	struct mail_changes *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return AEROGRAM_EINTERNAL;
	struct mail_mailbox *mb = v->mb;
	struct uidx_state *cur = NULL;
	uint32_t new_uv = 0;
	uint64_t new_version = 0;
	int defer = (options & MAIL_VIEW_DEFER_EXPUNGE) != 0;
	int rc;
	if (lock_sync_claim(v, claim, &rc) != 0) {
		mail_changes_free(c);
		return MAIL_EAGAIN;
	}
	/* Deferred expunges are told by the first update that may tell them,
	 * even when nothing new happened since. */
	if (rc == 0 && (mb->log.version != v->version || (!defer && v->n_gone > 0))) {
		new_uv = mailbox_uidvalidity(mb, mb->log.cur);
		new_version = mb->log.version;
		if (!(defer && new_uv != v->uv)) {
			cur = uidx_clone_ex(mb->log.cur, 0);
			if (cur == NULL)
				rc = AEROGRAM_EINTERNAL;
		}
	}
	pthread_mutex_unlock(&mb->lock);
	if (rc == 0 && cur && !v->claims)
		rc = note_unclaimed(v, cur, new_uv == v->uv ? v->snap->uidnext : 0);
	if (rc == 0 && cur) {
		size_t gone_before = v->n_gone;
		rc = diff(v, v->snap, cur, new_uv, options, c);
		if (rc == 0) {
			uidx_free(v->snap);
			v->snap = cur;
			v->uv = new_uv;
			v->version = new_version;
			if (v->n_gone == 0)
				v->told_modseq = cur->highestmodseq;
			cur = NULL;
		} else {
			v->n_gone = gone_before;
		}
	} else if (rc == 0) {
		c->exists = (uint32_t)v->snap->n;
		c->uidvalidity = v->uv;
		c->uidnext = v->snap->uidnext;
	}
	uidx_free(cur);
	if (rc != 0) {
		mail_changes_free(c);
		return rc;
	}
	c->recent = mail_view_recent_count(v);
	*out = c;
	return 0;
}

static int cmp_range(const void *a, const void *b)
{
	const uint32_t *x = a, *y = b;
	return x[0] < y[0] ? -1 : x[0] > y[0];
}

int mail_view_vanished(struct mail_view *v, uint64_t since, uint32_t **lo_out, uint32_t **hi_out, size_t *n_out,
                       int *exact)
{
	MAIL_READ_CALL(v->mb->eng);
	*lo_out = *hi_out = NULL;
	*n_out = 0;
	*exact = 1;
	struct mail_mailbox *mb = v->mb;
	const struct uidx_state *snap = v->snap;
	uint32_t uidnext = snap->uidnext;
	/* pairs (lo, hi) of candidate runs, clipped to below uidnext */
	uint32_t (*runs)[2] = NULL;
	size_t n = 0;
	if (mail_lock_or_again(&mb->lock) != 0)
		return MAIL_EAGAIN;
	const struct uidx_state *s = mb->log.cur;
	if (since < s->vanished_floor) {
		*exact = 0;
	} else {
		size_t first = s->n_vanished;
		while (first > 0 && s->vanished[first - 1].modseq > since)
			first--;
		runs = malloc((s->n_vanished - first + 1) * sizeof(*runs));
		if (runs == NULL) {
			pthread_mutex_unlock(&mb->lock);
			return AEROGRAM_EINTERNAL;
		}
		for (size_t i = first; i < s->n_vanished; i++) {
			if (s->vanished[i].lo >= uidnext)
				continue;
			runs[n][0] = s->vanished[i].lo;
			runs[n][1] = s->vanished[i].hi < uidnext ? s->vanished[i].hi : uidnext - 1;
			n++;
		}
	}
	pthread_mutex_unlock(&mb->lock);
	if (!*exact) {
		/* everything below uidnext the view does not hold */
		runs = malloc((snap->n + 1) * sizeof(*runs));
		if (runs == NULL)
			return AEROGRAM_EINTERNAL;
		uint32_t next = 1;
		for (size_t i = 0; i <= snap->n; i++) {
			uint32_t u = i < snap->n ? snap->msgs[i].uid : uidnext;
			if (u > next) {
				runs[n][0] = next;
				runs[n][1] = u - 1;
				n++;
			}
			next = u + 1;
		}
	}
	qsort(runs, n, sizeof(*runs), cmp_range);
	uint32_t *lo = malloc((n ? n : 1) * sizeof(*lo)), *hi = malloc((n ? n : 1) * sizeof(*hi));
	if (lo == NULL || hi == NULL) {
		free(runs);
		free(lo);
		free(hi);
		return AEROGRAM_EINTERNAL;
	}
	/* Split each run at the UIDs the view still holds (expunged in the
	 * shared state after this view's snapshot: told later, as expunges)
	 * and merge adjacent runs. The runs are disjoint: a UID is expunged
	 * once. */
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t a = runs[i][0], b = runs[i][1];
		while (a <= b) {
			const struct uidx_msg *held = NULL;
			/* the first message of the view at or above a */
			size_t l = 0, r = snap->n;
			while (l < r) {
				size_t mid = (l + r) / 2;
				if (snap->msgs[mid].uid < a)
					l = mid + 1;
				else
					r = mid;
			}
			if (l < snap->n && snap->msgs[l].uid <= b)
				held = &snap->msgs[l];
			uint32_t end = held ? held->uid - 1 : b;
			if (end >= a) {
				if (m > 0 && hi[m - 1] + 1 == a) {
					hi[m - 1] = end;
				} else {
					lo[m] = a;
					hi[m] = end;
					m++;
				}
			}
			if (held == NULL || held->uid == UINT32_MAX)
				break;
			a = held->uid + 1;
		}
	}
	free(runs);
	*lo_out = lo;
	*hi_out = hi;
	*n_out = m;
	return 0;
}

size_t mail_view_pending_expunges(const struct mail_view *v)
{
	return v->n_gone;
}

void mail_changes_free(struct mail_changes *c)
{
	if (c == NULL)
		return;
	free(c->expunged);
	free(c->expunged_uids);
	free(c->flags);
	free(c);
}

uint32_t mail_view_exists(const struct mail_view *v)
{
	return (uint32_t)v->snap->n;
}

uint32_t mail_view_uidvalidity(const struct mail_view *v)
{
	return v->uv;
}

uint32_t mail_view_uidnext(const struct mail_view *v)
{
	return v->snap->uidnext;
}

uint64_t mail_view_highestmodseq(const struct mail_view *v)
{
	return v->n_gone > 0 ? v->told_modseq : v->snap->highestmodseq;
}

uint32_t mail_view_recent_count(const struct mail_view *v)
{
	uint32_t n = 0;
	for (size_t i = 0; i < v->snap->n; i++)
		n += (uint32_t)recent_of(v, v->snap, v->snap->msgs[i].uid);
	return n;
}

uint32_t mail_view_uid(const struct mail_view *v, uint32_t seq)
{
	return seq >= 1 && seq <= v->snap->n ? v->snap->msgs[seq - 1].uid : 0;
}

uint32_t mail_view_seq(const struct mail_view *v, uint32_t uid)
{
	const struct uidx_msg *m = uidx_find_uid(v->snap, uid);
	return m ? (uint32_t)(m - v->snap->msgs) + 1 : 0;
}

int mail_view_msg(const struct mail_view *v, uint32_t seq, struct mail_msg_info *info)
{
	if (seq < 1 || seq > v->snap->n)
		return AEROGRAM_ENOTFOUND;
	const struct uidx_msg *m = &v->snap->msgs[seq - 1];
	info->uid = m->uid;
	info->flags = (uint32_t)(m->flags & MAIL_F_SYSTEM);
	info->keywords = m->flags >> 5;
	info->modseq = m->modseq;
	info->recent = recent_of(v, v->snap, m->uid);
	info->expunged = m->gone != 0;
	mail_hex(m->id, UIDX_ID, info->id);
	return 0;
}

const char *mail_view_keyword(const struct mail_view *v, unsigned bit)
{
	return bit < v->snap->n_keywords ? v->snap->keywords[bit] : NULL;
}

unsigned mail_view_keyword_count(const struct mail_view *v)
{
	return (unsigned)v->snap->n_keywords;
}
