/*
 * sim_engine.c - deterministic simulation of K mail engines (as if in K
 * daemons) sharing one store through the fault-injecting wrapper.
 *
 * Each seed drives a random interleaving of appends, flag changes,
 * expunges, copies, moves, syncs, view updates, checkpoints, orphan
 * collections and reopenings, with injected store failures (plain and
 * applied-then-failed) and delays. Some engines are "lazy" for a step (they
 * write without syncing first, like a daemon whose poller has not fired),
 * which creates concurrent, conflicting operations. After quiescence it
 * checks:
 *   - every engine, and a fresh one that loads the newest checkpoint, holds
 *     the identical state;
 *   - every acknowledged append not targeted by an expunge or move is in
 *     INBOX exactly once; no append (acknowledged, failed or ambiguous) is
 *     there twice;
 *   - every message of the final state has its summary and body (no log
 *     entry points at nothing);
 *   - within one UIDVALIDITY a UID never names two messages: in each
 *     engine's successive views, and between any view and the final state;
 *   - every view's change lists, applied to a model of the client, give
 *     exactly the view's new snapshot;
 *   - a message is \Recent to at most one session.
 *
 * Odd seeds run over a store without conditional writes (the engine takes
 * turns to add, and reads with a window for late entries), even seeds with
 * them (the memory driver's row_insert_if). Seeds 2 and 3 mod 4 give the
 * engines an expunge retention and undelete now and then: what comes back
 * must still be in INBOX at most once, and every message of the final
 * state has its summary and body (collection never takes a live one).
 *
 * Usage: sim_engine [--seeds N] [--first S] [--seed S] [-v]
 * A failure prints its seed; `make sim SEED=<n>` replays exactly that one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/mail/mail_internal.h"
#include "sdk/wrappers/ag_wrap.h"
#include "tests/engine/engine_util.h"

#define K 3
#define STEPS 100
#define MAX_TOKENS 256

struct obs {
	uint64_t key; /* uv << 32 | uid; 0 = empty */
	uint8_t id[UIDX_ID];
};
struct obsmap {
	struct obs *slots;
	size_t cap, used;
};

struct sim {
	uint64_t seed, rng;
	struct ag_driver *drv;
	struct agw_wrapper *fw;
	struct ag_store st;
	uint64_t now;
	struct eu_clock clocks[K + 1];
	struct mail_engine *eng[K];
	struct mail_mailbox *mb[K][2]; /* INBOX, Other */
	struct mail_view *view[K][2];  /* two sessions on INBOX */
	uint32_t *model[K][2];
	size_t nmodel[K][2];
	uint32_t model_uv[K][2];
	int n_tokens;
	unsigned char acked[MAX_TOKENS], maybe_gone[MAX_TOKENS];
	struct obsmap obs[K][2];
	char why[512];
	int failed;
	/* per test name: the last mailbox id and UIDVALIDITY seen under it */
	char name_id[3][33];
	uint32_t name_uv[3];
	int retention; /* engines keep expunged messages; undeletes happen */
};

/* The X-Token of a summary's header (a length, not a C string), or -1. */
static int header_token(const struct mail_summary *sm)
{
	char head[64];
	size_t len = sm->header_len < sizeof(head) - 1 ? sm->header_len : sizeof(head) - 1;
	if (sm->status != 0 || sm->header == NULL)
		return -1;
	memcpy(head, sm->header, len);
	head[len] = '\0';
	int t = -1;
	return sscanf(head, "X-Token: %d", &t) == 1 ? t : -1;
}

static const char *const test_names[3] = { "T1", "T1.c", "T2" };

static uint64_t rnd(struct sim *s)
{
	return eu_rnd(&s->rng);
}

static unsigned pick(struct sim *s, unsigned n)
{
	return (unsigned)(rnd(s) % n);
}

#define FAIL(s, ...)                                                   \
	do {                                                           \
		if (!(s)->failed)                                      \
			snprintf((s)->why, sizeof((s)->why), __VA_ARGS__); \
		(s)->failed = 1;                                       \
	} while (0)

/* ---- UID observations ---- */

static void obs_put(struct sim *s, struct obsmap *m, uint32_t uv, uint32_t uid, const uint8_t *id,
                    const char *who)
{
	if (m->used * 2 >= m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 256;
		struct obs *n = calloc(cap, sizeof(*n));
		for (size_t i = 0; i < m->cap; i++) {
			if (!m->slots[i].key)
				continue;
			size_t j = (size_t)(m->slots[i].key * 0x9e3779b97f4a7c15ull >> 20) & (cap - 1);
			while (n[j].key)
				j = (j + 1) & (cap - 1);
			n[j] = m->slots[i];
		}
		free(m->slots);
		m->slots = n;
		m->cap = cap;
	}
	uint64_t key = (uint64_t)uv << 32 | uid;
	size_t j = (size_t)(key * 0x9e3779b97f4a7c15ull >> 20) & (m->cap - 1);
	while (m->slots[j].key && m->slots[j].key != key)
		j = (j + 1) & (m->cap - 1);
	if (m->slots[j].key == key) {
		if (memcmp(m->slots[j].id, id, UIDX_ID) != 0)
			FAIL(s, "%s: UIDVALIDITY %u UID %u named two messages", who, uv, uid);
		return;
	}
	m->slots[j].key = key;
	memcpy(m->slots[j].id, id, UIDX_ID);
	m->used++;
}

static void observe(struct sim *s, int e, int b)
{
	struct mail_mailbox *mb = s->mb[e][b];
	if (mb == NULL)
		return;
	pthread_mutex_lock(&mb->lock);
	const struct uidx_state *st = mb->log.cur;
	for (size_t i = 0; i < st->n; i++)
		obs_put(s, &s->obs[e][b], st->uidvalidity, st->msgs[i].uid, st->msgs[i].id, "engine history");
	pthread_mutex_unlock(&mb->lock);
}

/* ---- faults ---- */

static void maybe_fault(struct sim *s)
{
	unsigned r = pick(s, 100);
	if (r < 12)
		agw_fault_fail(s->fw, AGW_ALL, AEROGRAM_EUNAVAILABLE, 0.3, rnd(s));
	else if (r < 24)
		agw_fault_fail_after_apply(s->fw,
		                           AGW_MASK(AGW_ROW_INSERT) | AGW_MASK(AGW_BLOB_PUT) |
		                               AGW_MASK(AGW_BLOB_COPY) | AGW_MASK(AGW_ROW_DELETE) |
		                               AGW_MASK(AGW_BLOB_DELETE),
		                           0.3);
	else if (r < 27)
		agw_fault_fail_next(s->fw, AGW_MASK(AGW_ROW_INSERT), AEROGRAM_EUNAVAILABLE, 1 + pick(s, 3));
	else if (r < 29)
		agw_fault_delay(s->fw, AGW_MASK(AGW_ROW_READ), 1);
}

/* ---- actions ---- */

static void act_append(struct sim *s, int e)
{
	if (s->n_tokens >= MAX_TOKENS)
		return;
	int t = s->n_tokens++;
	char hdr[64], body[128];
	int hl = snprintf(hdr, sizeof(hdr), "X-Token: %d\r\n", t);
	int bl = snprintf(body, sizeof(body), "X-Token: %d\r\n\r\nbody of message %d\r\n", t, t);
	static const char *const kws[] = { "$Forwarded", "work", "$Junk" };
	struct mail_new_message m = {
		.body = (const uint8_t *)body, .body_len = (size_t)bl,
		.internal_date_ms = pick(s, 2) ? 1700000000000ull + (uint64_t)t : 0,
		.flags = pick(s, 32) & MAIL_F_SYSTEM,
		.keywords = kws, .n_keywords = pick(s, 4),
		.header = (const uint8_t *)hdr, .header_len = (size_t)hl,
		.bodystructure = (const uint8_t *)"(\"text\" \"plain\")", .bodystructure_len = 16,
	};
	uint32_t uv = 0, uid = 0;
	if (mail_append(s->mb[e][0], &m, &uv, &uid) == 0) {
		s->acked[t] = 1;
		if (uid == 0)
			FAIL(s, "append acknowledged without a UID");
	}
}

/* Random subset of the UIDs a view knows. */
static size_t some_uids(struct sim *s, struct mail_view *v, uint32_t *out, size_t max)
{
	uint32_t n = mail_view_exists(v);
	size_t k = 0;
	for (uint32_t seq = 1; seq <= n && k < max; seq++)
		if (pick(s, 3) == 0)
			out[k++] = mail_view_uid(v, seq);
	return k;
}

static void mark_gone(struct sim *s, struct mail_view *v, const uint32_t *uids, size_t n)
{
	struct mail_summary *sm = NULL;
	agw_fault_clear(s->fw); /* the bookkeeping read must not fail */
	if (mail_summaries(v, uids, n, &sm) != 0) {
		FAIL(s, "summaries for bookkeeping failed");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		int t = header_token(&sm[i]);
		if (t >= 0 && t < MAX_TOKENS)
			s->maybe_gone[t] = 1;
	}
	mail_summaries_free(sm, n);
}

static void act_store(struct sim *s, int e)
{
	struct mail_view *v = s->view[e][pick(s, 2)];
	uint32_t uids[64];
	size_t n = some_uids(s, v, uids, 64);
	static const char *const kws[] = { "work", "later", "$Forwarded" };
	mail_store(v, uids, n, (enum mail_store_mode)pick(s, 3), pick(s, 32) & MAIL_F_SYSTEM, kws, pick(s, 4));
}

static void act_expunge(struct sim *s, int e)
{
	struct mail_view *v = s->view[e][pick(s, 2)];
	uint32_t uids[16];
	size_t n = some_uids(s, v, uids, 16);
	if (n == 0)
		return;
	unsigned save = pick(s, 100);
	mark_gone(s, v, uids, n);
	if (save < 30)
		maybe_fault(s);
	mail_expunge(v, uids, n);
}

static void act_copy(struct sim *s, int e, int move)
{
	struct mail_view *v = s->view[e][pick(s, 2)];
	uint32_t uids[16], out[16];
	size_t n = some_uids(s, v, uids, 16);
	if (n == 0)
		return;
	unsigned f = pick(s, 100);
	if (move)
		mark_gone(s, v, uids, n);
	if (f < 30)
		maybe_fault(s);
	uint32_t uv;
	if (move)
		mail_move(v, uids, n, s->mb[e][1], &uv, out);
	else
		mail_copy(v, uids, n, s->mb[e][1], &uv, out);
}

/* Undelete in INBOX (seeds with a retention): what comes back is counted
 * as in INBOX again, and nothing may come back twice (final checks). A
 * stale engine undeletes too; only the writes' own freshness (conditional
 * writes, the turn to add) keep it from adding twice, so the engine is not
 * lazy for this call (a lazy one stands for a daemon of an older version,
 * which has no undelete). */
static unsigned long undeletes, restored;

static void act_undelete(struct sim *s, int e)
{
	int lazy = s->eng[e]->lazy;
	s->eng[e]->lazy = 0;
	if (pick(s, 100) < 30)
		maybe_fault(s);
	uint64_t since = pick(s, 2) ? 0 : s->now - pick(s, 600000);
	size_t n = 0;
	int rc = mail_mailbox_undelete(s->mb[e][0], since, &n, NULL);
	agw_fault_clear(s->fw);
	if (rc != 0 && mail_mailbox_undelete(s->mb[e][0], since, &n, NULL) != 0)
		FAIL(s, "undelete failed twice, the second time without faults");
	undeletes++;
	restored += n;
	s->eng[e]->lazy = lazy;
}

/* Create, delete, rename, subscribe on a few names, then open one: a name
 * whose mailbox changed must report a higher UIDVALIDITY than before. */
static void act_list(struct sim *s, int e)
{
	const char *a = test_names[pick(s, 3)], *b = test_names[pick(s, 3)];
	switch (pick(s, 4)) {
	case 0:
		mail_create(s->eng[e], "u1", a, 0);
		break;
	case 1:
		mail_delete(s->eng[e], "u1", a);
		break;
	case 2:
		mail_rename(s->eng[e], "u1", a, b);
		break;
	default:
		mail_subscribe(s->eng[e], "u1", a, (int)pick(s, 2));
		break;
	}
	agw_fault_clear(s->fw);
	int k = (int)pick(s, 3);
	struct mail_mailbox *mb = NULL;
	if (mail_mailbox_open(s->eng[e], "u1", test_names[k], &mb) != 0)
		return;
	struct mail_status st;
	if (mail_mailbox_status(mb, &st) == 0) {
		if (s->name_id[k][0] && strcmp(s->name_id[k], mail_mailbox_id(mb)) != 0 && st.uidvalidity <= s->name_uv[k])
			FAIL(s, "%s re-created with UIDVALIDITY %u, was %u", test_names[k], st.uidvalidity, s->name_uv[k]);
		if (st.uidvalidity < s->name_uv[k] && strcmp(s->name_id[k], mail_mailbox_id(mb)) == 0)
			FAIL(s, "%s UIDVALIDITY went back", test_names[k]);
		snprintf(s->name_id[k], sizeof(s->name_id[k]), "%s", mail_mailbox_id(mb));
		s->name_uv[k] = st.uidvalidity;
		if (pick(s, 2)) {
			struct mail_new_message m = { .body = (const uint8_t *)"x", .body_len = 1 };
			mail_append(mb, &m, NULL, NULL);
		}
	}
	mail_mailbox_close(mb);
}

/* Applies a change list to the client model and checks it against the view. */
static void act_view_update(struct sim *s, int e, int k)
{
	struct mail_view *v = s->view[e][k];
	struct mail_changes *c = NULL;
	if (mail_view_update(v, pick(s, 2), &c) != 0)
		return;
	uint32_t *m = s->model[e][k];
	size_t n = s->nmodel[e][k];
	if (!c->uidvalidity_changed) {
		for (size_t i = 0; i < c->n_expunged; i++) {
			uint32_t seq = c->expunged[i];
			if (seq < 1 || seq > n) {
				FAIL(s, "EXPUNGE %u out of range 1..%zu", seq, n);
				break;
			}
			memmove(m + seq - 1, m + seq, (n - seq) * sizeof(*m));
			n--;
		}
		if (c->exists < n)
			FAIL(s, "EXISTS %u below the client's %zu", c->exists, n);
		if (mail_view_exists(v) != c->exists)
			FAIL(s, "EXISTS %u but the view has %u", c->exists, mail_view_exists(v));
		for (size_t i = 0; i < n; i++)
			if (m[i] != mail_view_uid(v, (uint32_t)i + 1)) {
				FAIL(s, "client model differs from the view at %zu", i + 1);
				break;
			}
		for (size_t i = 0; i < c->n_flags; i++)
			if (mail_view_uid(v, c->flags[i].seq) != c->flags[i].uid)
				FAIL(s, "FETCH %u names UID %u, view says %u", c->flags[i].seq, c->flags[i].uid,
				     mail_view_uid(v, c->flags[i].seq));
	} else if (c->uidvalidity <= s->model_uv[e][k]) {
		FAIL(s, "UIDVALIDITY went from %u to %u", s->model_uv[e][k], c->uidvalidity);
	}
	uint32_t ex = mail_view_exists(v);
	free(s->model[e][k]);
	s->model[e][k] = malloc((ex ? ex : 1) * sizeof(uint32_t));
	for (uint32_t i = 0; i < ex; i++)
		s->model[e][k][i] = mail_view_uid(v, i + 1);
	s->nmodel[e][k] = ex;
	s->model_uv[e][k] = mail_view_uidvalidity(v);
	mail_changes_free(c);
}

static int open_all(struct sim *s, int e)
{
	if (mail_mailbox_open(s->eng[e], "u1", "INBOX", &s->mb[e][0]) != 0 ||
	    mail_mailbox_open(s->eng[e], "u1", "Other", &s->mb[e][1]) != 0)
		return -1;
	for (int k = 0; k < 2; k++) {
		if (mail_view_open(s->mb[e][0], k == 0, &s->view[e][k]) != 0)
			return -1;
		s->nmodel[e][k] = mail_view_exists(s->view[e][k]);
		free(s->model[e][k]);
		s->model[e][k] = malloc((s->nmodel[e][k] + 1) * sizeof(uint32_t));
		for (size_t i = 0; i < s->nmodel[e][k]; i++)
			s->model[e][k][i] = mail_view_uid(s->view[e][k], (uint32_t)i + 1);
		s->model_uv[e][k] = mail_view_uidvalidity(s->view[e][k]);
	}
	return 0;
}

static void close_all(struct sim *s, int e)
{
	for (int k = 0; k < 2; k++) {
		mail_view_close(s->view[e][k]);
		s->view[e][k] = NULL;
	}
	for (int b = 0; b < 2; b++) {
		mail_mailbox_close(s->mb[e][b]);
		s->mb[e][b] = NULL;
	}
}

/* ---- final checks ---- */

static int same_state(const struct uidx_state *a, const struct uidx_state *b, char *why, size_t wl)
{
	if (a->uidvalidity != b->uidvalidity || a->uidnext != b->uidnext ||
	    a->highestmodseq != b->highestmodseq || a->n != b->n || a->recent_upto != b->recent_upto ||
	    a->n_keywords != b->n_keywords) {
		snprintf(why, wl, "counters differ: uv %u/%u next %u/%u hms %llu/%llu n %zu/%zu", a->uidvalidity,
		         b->uidvalidity, a->uidnext, b->uidnext, (unsigned long long)a->highestmodseq,
		         (unsigned long long)b->highestmodseq, a->n, b->n);
		return 0;
	}
	for (size_t i = 0; i < a->n_keywords; i++)
		if (strcmp(a->keywords[i], b->keywords[i]) != 0) {
			snprintf(why, wl, "keyword tables differ");
			return 0;
		}
	for (size_t i = 0; i < a->n; i++) {
		const struct uidx_msg *x = &a->msgs[i], *y = &b->msgs[i];
		if (memcmp(x->id, y->id, UIDX_ID) || x->uid != y->uid || x->modseq != y->modseq ||
		    x->flags != y->flags) {
			snprintf(why, wl, "message %zu differs", i);
			return 0;
		}
	}
	/* the expunges by modseq (QRESYNC) above what either forgot */
	uint64_t floor = a->vanished_floor > b->vanished_floor ? a->vanished_floor : b->vanished_floor;
	size_t i = 0, j = 0;
	while (i < a->n_vanished && a->vanished[i].modseq <= floor)
		i++;
	while (j < b->n_vanished && b->vanished[j].modseq <= floor)
		j++;
	if (a->n_vanished - i != b->n_vanished - j) {
		snprintf(why, wl, "expunges by modseq differ: %zu/%zu runs above %llu", a->n_vanished - i,
		         b->n_vanished - j, (unsigned long long)floor);
		return 0;
	}
	for (; i < a->n_vanished; i++, j++)
		if (a->vanished[i].modseq != b->vanished[j].modseq || a->vanished[i].lo != b->vanished[j].lo ||
		    a->vanished[i].hi != b->vanished[j].hi) {
			snprintf(why, wl, "expunge run %zu differs", i);
			return 0;
		}
	return 1;
}

static void check_final_obs(struct sim *s, const struct uidx_state *f, int b)
{
	for (int e = 0; e < K; e++) {
		struct obsmap *m = &s->obs[e][b];
		for (size_t i = 0; i < m->cap; i++) {
			if (!m->slots[i].key || (uint32_t)(m->slots[i].key >> 32) != f->uidvalidity)
				continue;
			uint32_t uid = (uint32_t)m->slots[i].key;
			const struct uidx_msg *x = uidx_find_uid(f, uid);
			if (x && memcmp(x->id, m->slots[i].id, UIDX_ID) != 0)
				FAIL(s, "UID %u of UIDVALIDITY %u named another message earlier", uid, f->uidvalidity);
			const struct uidx_msg *y = uidx_find_id((struct uidx_state *)f, m->slots[i].id);
			if (y && y->uid != uid)
				FAIL(s, "a message seen as UID %u is now UID %u under UIDVALIDITY %u", uid, y->uid,
				     f->uidvalidity);
		}
	}
}

static void check_contents(struct sim *s, struct mail_mailbox *mb, int is_inbox)
{
	struct mail_view *v;
	uint32_t n;
	uint32_t *uids = eu_view_open_uids(mb, &v, &n);
	if (uids == NULL) {
		FAIL(s, "final view open failed");
		return;
	}
	struct mail_summary *sm = NULL;
	struct mail_body *bd = NULL;
	int count[MAX_TOKENS] = { 0 };
	if (mail_summaries(v, uids, n, &sm) != 0 || mail_bodies(v, uids, n, &bd) != 0) {
		FAIL(s, "final reads failed");
	} else {
		for (uint32_t i = 0; i < n; i++) {
			int t = -1, tb = -2;
			if (sm[i].status != 0 || bd[i].status != 0) {
				FAIL(s, "UID %u has no %s", uids[i], sm[i].status ? "summary" : "body");
				continue;
			}
			char tmp[64];
			size_t l = bd[i].len < 63 ? bd[i].len : 63;
			memcpy(tmp, bd[i].data, l);
			tmp[l] = 0;
			t = header_token(&sm[i]);
			sscanf(tmp, "X-Token: %d", &tb);
			if (t != tb || t < 0 || t >= MAX_TOKENS)
				FAIL(s, "UID %u: summary and body disagree (%d, %d)", uids[i], t, tb);
			else
				count[t]++;
		}
		if (is_inbox)
			for (int t = 0; t < s->n_tokens; t++) {
				if (count[t] > 1)
					FAIL(s, "append %d is in INBOX %d times", t, count[t]);
				if (s->acked[t] && !s->maybe_gone[t] && count[t] != 1)
					FAIL(s, "acknowledged append %d is missing", t);
			}
	}
	mail_summaries_free(sm, n);
	mail_bodies_free(bd, n);
	free(uids);
	mail_view_close(v);
}

static int run_seed(uint64_t seed, int verbose)
{
	struct sim *s = calloc(1, sizeof(*s));
	s->seed = seed;
	s->rng = seed * 0x2545f4914f6cdd1dull + 1;
	s->drv = eu_load_memory();
	struct ag_store *inner = ag_driver_store(s->drv);
	s->fw = agw_fault_new(inner->driver, inner->store);
	/* odd seeds: a store without conditional writes (as Garage) */
	if (seed & 1)
		agw_fault_hide_caps(s->fw, AEROGRAM_CAP_CONDITIONAL | AEROGRAM_CAP_SNAPSHOT_READS);
	s->st.driver = agw_driver(s->fw);
	s->st.store = agw_store(s->fw);
	s->now = 1750000000000ull;
	s->retention = (seed & 2) != 0;
	for (int e = 0; e <= K; e++) {
		s->clocks[e].shared = &s->now;
		s->clocks[e].skew = (int64_t)pick(s, 200) - 100;
	}
	for (int e = 0; e < K; e++) {
		struct mail_engine_options o = eu_options(&s->clocks[e], seed * 31 + (uint64_t)e + 1);
		/* seeds 2, 3 mod 4: a retention (collected within a run), undeletes */
		o.expunge_retention_ms = s->retention ? 20 * 60 * 1000 : 0;
		if (mail_engine_new(&s->st, &o, &s->eng[e]) != 0) {
			FAIL(s, "engine_new");
			goto out;
		}
	}
	if (mail_create(s->eng[0], "u1", "Other", 0) != 0) {
		FAIL(s, "create Other");
		goto out;
	}
	for (int e = 0; e < K; e++)
		if (open_all(s, e) != 0) {
			FAIL(s, "setup open failed");
			goto out;
		}

	for (int step = 0; step < STEPS && !s->failed; step++) {
		int e = (int)pick(s, K);
		if (e > 0)
			s->eng[e]->lazy = (int)pick(s, 2);
		s->now += pick(s, 3000);
		unsigned a = pick(s, 100);
		if (a < 60)
			maybe_fault(s);
		unsigned act = pick(s, 100);
		if (act < 30)
			act_append(s, e);
		else if (act < 44)
			act_store(s, e);
		else if (act < 51)
			act_expunge(s, e);
		else if (act < 56)
			act_copy(s, e, 0);
		else if (act < 61)
			act_copy(s, e, 1);
		else if (act < 73)
			mail_mailbox_sync(s->mb[e][pick(s, 2)]);
		else if (act < 86) {
			agw_fault_clear(s->fw);
			act_view_update(s, e, (int)pick(s, 2));
		} else if (act < 91) {
			s->now += 6 * 60 * 1000;
			mail_mailbox_checkpoint(s->mb[e][pick(s, 2)], 1);
		} else if (act < 92) {
			mail_collect_orphans(s->eng[e], "u1", "INBOX", 10 * 60 * 1000, NULL);
		} else if (act < 94 && s->retention) {
			act_undelete(s, e);
		} else if (act < 99) {
			act_list(s, e);
		} else {
			agw_fault_clear(s->fw);
			close_all(s, e);
			if (open_all(s, e) != 0)
				FAIL(s, "reopen failed");
		}
		agw_fault_clear(s->fw);
		for (int b = 0; b < 2; b++)
			observe(s, e, b);
	}
	if (s->failed)
		goto out;

	/* quiescence: no faults, everyone syncs */
	agw_fault_clear(s->fw);
	for (int round = 0; round < 2; round++)
		for (int e = 0; e < K; e++)
			for (int b = 0; b < 2; b++)
				if (mail_mailbox_sync(s->mb[e][b]) != 0)
					FAIL(s, "quiescent sync failed");
	for (int e = 0; e < K; e++)
		for (int b = 0; b < 2; b++)
			observe(s, e, b);
	/* every engine lists the same mailboxes */
	struct mail_mailbox_info *l0 = NULL;
	size_t n0 = 0;
	if (mail_list(s->eng[0], "u1", &l0, &n0) != 0)
		FAIL(s, "final list failed");
	for (int e = 1; e < K && !s->failed; e++) {
		struct mail_mailbox_info *l = NULL;
		size_t n = 0;
		if (mail_list(s->eng[e], "u1", &l, &n) != 0 || n != n0)
			FAIL(s, "engine %d lists differently", e);
		for (size_t i = 0; i < n && i < n0; i++)
			if (strcmp(l[i].name, l0[i].name) || strcmp(l[i].id, l0[i].id) || l[i].exists != l0[i].exists ||
			    l[i].subscribed != l0[i].subscribed)
				FAIL(s, "engine %d lists %s differently", e, l[i].name);
		mail_list_free(l, n);
	}
	mail_list_free(l0, n0);
	/* a fresh engine loads the newest checkpoint and the tail */
	struct mail_engine *fresh = NULL;
	struct mail_engine_options o = eu_options(&s->clocks[K], seed * 31 + 99);
	struct mail_mailbox *fmb[2] = { NULL, NULL };
	if (mail_engine_new(&s->st, &o, &fresh) != 0 || mail_mailbox_open(fresh, "u1", "INBOX", &fmb[0]) != 0 ||
	    mail_mailbox_open(fresh, "u1", "Other", &fmb[1]) != 0) {
		FAIL(s, "fresh engine cannot open");
	} else {
		for (int b = 0; b < 2 && !s->failed; b++) {
			const struct uidx_state *ref = fmb[b]->log.cur;
			for (int e = 0; e < K; e++) {
				char why[256];
				if (!same_state(s->mb[e][b]->log.cur, ref, why, sizeof(why)))
					FAIL(s, "engine %d differs from a fresh engine on %s: %s", e, b ? "Other" : "INBOX",
					     why);
			}
			check_final_obs(s, ref, b);
			check_contents(s, fmb[b], b == 0);
		}
		/* \Recent: at most one session per message */
		const struct uidx_state *f = fmb[0]->log.cur;
		for (size_t i = 0; i < f->n; i++) {
			int owners = 0;
			for (int e = 0; e < K; e++)
				for (int k = 0; k < 2; k++)
					owners += uidx_is_recent(f, s->view[e][k]->session, f->msgs[i].uid);
			if (owners > 1)
				FAIL(s, "UID %u is recent to %d sessions", f->msgs[i].uid, owners);
		}
	}
	mail_mailbox_close(fmb[0]);
	mail_mailbox_close(fmb[1]);
	mail_engine_free(fresh);
out:
	if (verbose && !s->failed) {
		struct mail_status st;
		mail_mailbox_status(s->mb[0][0], &st);
		printf("seed %llu: %d appends, INBOX exists %u uidvalidity %u modseq %llu\n",
		       (unsigned long long)seed, s->n_tokens, st.exists, st.uidvalidity,
		       (unsigned long long)st.highestmodseq);
	}
	for (int e = 0; e < K; e++) {
		if (s->eng[e] == NULL)
			continue;
		close_all(s, e);
		mail_engine_free(s->eng[e]);
		for (int k = 0; k < 2; k++)
			free(s->model[e][k]);
		for (int b = 0; b < 2; b++)
			free(s->obs[e][b].slots);
	}
	agw_free(s->fw);
	ag_driver_unload(s->drv);
	int failed = s->failed;
	if (failed)
		fprintf(stderr, "sim_engine: seed %llu FAILED: %s\n  replay: make sim SEED=%llu\n",
		        (unsigned long long)seed, s->why, (unsigned long long)seed);
	free(s);
	return failed;
}

int main(int argc, char **argv)
{
	struct eu_seeds a;
	if (eu_seed_args(argc, argv, NULL, NULL, &a) != 0)
		return 2;
	const char *env = getenv("AG_SIM_SEED");
	if (env && *env) {
		a.first = strtoull(env, NULL, 10);
		a.one = 1;
	}
	uint64_t first = a.first, count = a.one ? 1 : a.count;
	unsigned failures = 0;
	for (uint64_t sd = first; sd < first + count; sd++)
		failures += (unsigned)run_seed(sd, a.verbose || a.one);
	printf("sim_engine: %llu seeds from %llu, %u failed (K=%d engines, %d steps each; %lu undeletes "
	       "brought back %lu messages)\n",
	       (unsigned long long)count, (unsigned long long)first, failures, K, STEPS, undeletes, restored);
	return failures ? 1 : 0;
}
