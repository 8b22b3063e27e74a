/*
 * test_engine.c - CUnit tests of the mail engine over the memory driver,
 * loaded with the real loader and wrapped by the counting wrapper.
 */
#include <CUnit/Basic.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "host/mail/mail_internal.h"
#include "sdk/wrappers/ag_wrap.h"
#include "tests/engine/engine_util.h"
#include "tests/lib/cu_main.h"

/* The insert call the engine's log writes go through in this suite. */
static enum agw_op log_insert_op(void)
{
	return eu_no_cas ? AGW_ROW_INSERT : AGW_ROW_INSERT_IF;
}

static void env_open_hiding(struct eu_env *e, uint64_t seed, uint64_t hide)
{
	eu_env_open_with(e, seed, hide, 0);
}

static uint64_t calls(struct eu_env *e, enum agw_op op)
{
	return agw_count_get(e->cw, op);
}

/* ---------------------------------------------------------------- codec */

static struct uidx_op *sample_op(void)
{
	struct uidx_op *op = calloc(1, sizeof(*op));
	op->kind = UIDX_OP_ADD;
	op->seen_uidnext = 42;
	static const char *const kw[] = { "$Forwarded", "work" };
	uidx_op_set_keywords(op, kw, 2);
	op->n = 3;
	op->ids = calloc(3, UIDX_ID);
	op->item_flags = calloc(3, sizeof(uint64_t));
	for (int i = 0; i < 3; i++) {
		memset(op->ids[i], 0x10 + i, UIDX_ID);
		op->item_flags[i] = (uint64_t)i | (1ull << 6);
	}
	return op;
}

static void test_codec_op_roundtrip(void)
{
	struct uidx_op *op = sample_op();
	struct cbuf b = { 0 };
	CU_ASSERT_EQUAL(codec_op_encode(op, &b), 0);
	struct uidx_op *d = NULL;
	CU_ASSERT_EQUAL_FATAL(codec_op_decode(b.p, b.len, &d), 0);
	CU_ASSERT_EQUAL(d->kind, UIDX_OP_ADD);
	CU_ASSERT_EQUAL(d->seen_uidnext, 42);
	CU_ASSERT_EQUAL(d->n, 3);
	CU_ASSERT_EQUAL(d->n_keywords, 2);
	CU_ASSERT_STRING_EQUAL(d->keywords[1], "work");
	CU_ASSERT_EQUAL(memcmp(d->ids, op->ids, 3 * UIDX_ID), 0);
	CU_ASSERT_EQUAL(d->item_flags[2], 2 | (1ull << 6));
	/* every truncation and every single-byte change is refused or decodes
	 * to something; none crashes (ASan watches) */
	for (size_t cut = 0; cut < b.len; cut++) {
		struct uidx_op *x = NULL;
		CU_ASSERT_NOT_EQUAL(codec_op_decode(b.p, cut, &x), 0);
		CU_ASSERT_PTR_NULL(x);
	}
	for (size_t i = 0; i < b.len; i++)
		for (int v = 0; v < 256; v += 37) {
			uint8_t save = b.p[i];
			b.p[i] = (uint8_t)v;
			struct uidx_op *x = NULL;
			if (codec_op_decode(b.p, b.len, &x) == 0)
				uidx_op_free(x);
			b.p[i] = save;
		}
	/* trailing garbage is refused */
	uint8_t *longer = malloc(b.len + 1);
	memcpy(longer, b.p, b.len);
	longer[b.len] = 0;
	struct uidx_op *x = NULL;
	CU_ASSERT_NOT_EQUAL(codec_op_decode(longer, b.len + 1, &x), 0);
	free(longer);
	free(b.p);
	CU_ASSERT_EQUAL(d->has_anchor, 0);
	uidx_op_free(d);
	/* an add with an anchor: version 2, the anchor comes back */
	op->has_anchor = 1;
	op->anchor.ms = 0x0102030405060708ull;
	op->anchor.rnd = 0xf0e0d0c0b0a09080ull;
	struct cbuf b2 = { 0 };
	d = eu_op_roundtrip(op, 2, &b2);
	CU_ASSERT_EQUAL(d->has_anchor, 1);
	CU_ASSERT_EQUAL(d->anchor.ms, op->anchor.ms);
	CU_ASSERT_EQUAL(d->anchor.rnd, op->anchor.rnd);
	CU_ASSERT_EQUAL(d->seen_uidnext, 42);
	uidx_op_free(d);
	eu_check_op_damage(&b2);
	b2.p[2] = UIDX_OP_DEL; /* only an add has an anchor */
	x = NULL;
	CU_ASSERT_NOT_EQUAL(codec_op_decode(b2.p, b2.len, &x), 0);
	free(b2.p);
	uidx_op_free(op);
}

static void test_codec_state_summary_list(void)
{
	struct uidx_state *s = uidx_new();
	struct uidx_op *op = sample_op();
	uidx_apply(s, op);
	struct cbuf b = { 0 };
	CU_ASSERT_EQUAL(codec_state_encode(s, &b), 0);
	struct uidx_state *d = NULL;
	CU_ASSERT_EQUAL_FATAL(codec_state_decode(b.p, b.len, &d), 0);
	CU_ASSERT_EQUAL(d->n, 3);
	CU_ASSERT_EQUAL(d->uidnext, s->uidnext);
	CU_ASSERT_EQUAL(d->uidvalidity, s->uidvalidity);
	CU_ASSERT_EQUAL(d->msgs[2].uid, 3);
	CU_ASSERT_EQUAL(d->msgs[1].flags, s->msgs[1].flags);
	CU_ASSERT_STRING_EQUAL(d->keywords[0], s->keywords[0]);
	CU_ASSERT_PTR_NOT_NULL(uidx_find_id(d, op->ids[1]));
	eu_check_state_damage(&b);
	free(b.p);
	uidx_free(d);
	uidx_free(s);
	uidx_op_free(op);

	struct summary sm = { 1234, 99, (const uint8_t *)"Subject: x\r\n", 12, (const uint8_t *)"BS", 2 }, ds;
	struct cbuf c = { 0 };
	CU_ASSERT_EQUAL(codec_summary_encode(&sm, &c), 0);
	CU_ASSERT_EQUAL_FATAL(codec_summary_decode(c.p, c.len, &ds), 0);
	CU_ASSERT_EQUAL(ds.internal_date_ms, 1234);
	CU_ASSERT_EQUAL(ds.size, 99);
	CU_ASSERT_EQUAL(ds.header_len, 12);
	CU_ASSERT_EQUAL(memcmp(ds.bodystructure, "BS", 2), 0);
	for (size_t cut = 0; cut < c.len; cut++)
		CU_ASSERT_NOT_EQUAL(codec_summary_decode(c.p, cut, &ds), 0);
	free(c.p);

	struct mblist l = { 0 };
	struct mblist_entry *e = mblist_get(&l, "INBOX");
	e->has_id = 1;
	e->id_ts = 5;
	e->uidvalidity = 3;
	mblist_get(&l, "Archive")->subscribed = 1;
	struct cbuf lb = { 0 };
	CU_ASSERT_EQUAL(codec_mblist_encode(&l, &lb), 0);
	struct mblist dl;
	CU_ASSERT_EQUAL_FATAL(codec_mblist_decode(lb.p, lb.len, &dl), 0);
	CU_ASSERT_EQUAL(dl.n, 2);
	CU_ASSERT_EQUAL(mblist_find(&dl, "INBOX")->uidvalidity, 3);
	CU_ASSERT_EQUAL(mblist_find(&dl, "Archive")->subscribed, 1);
	for (size_t cut = 0; cut < lb.len; cut++) {
		struct mblist x;
		CU_ASSERT_NOT_EQUAL(codec_mblist_decode(lb.p, cut, &x), 0);
	}
	free(lb.p);
	mblist_free(&dl);
	mblist_free(&l);
}

/* ----------------------------------------------------------- timestamps */

static void test_timestamps(void)
{
	struct eu_env e;
	eu_env_open(&e, 7);
	struct ag_ts a = { 0x0123456789abcdefull, 0xfedcba9876543210ull }, b;
	char t[AG_TS_HEX + 1];
	ts_format(a, t);
	CU_ASSERT_STRING_EQUAL(t, "0123456789abcdeffedcba9876543210");
	CU_ASSERT_EQUAL(ts_parse(t, &b), 0);
	CU_ASSERT_EQUAL(ts_cmp(a, b), 0);
	CU_ASSERT_NOT_EQUAL(ts_parse("0123456789ABCDEFfedcba9876543210", &b), 0);
	CU_ASSERT_NOT_EQUAL(ts_parse("0123", &b), 0);
	CU_ASSERT_NOT_EQUAL(ts_parse("watch", &b), 0);
	/* text order is numeric order, and every key sorts below "watch" */
	struct ag_ts prev = { 0, 0 };
	char prevt[AG_TS_HEX + 1];
	ts_format(prev, prevt);
	for (int i = 0; i < 1000; i++) {
		struct ag_ts n = ts_after(e.eng, prev);
		CU_ASSERT(ts_cmp(n, prev) > 0);
		char nt[AG_TS_HEX + 1];
		ts_format(n, nt);
		CU_ASSERT(strcmp(nt, prevt) > 0);
		CU_ASSERT(strcmp(nt, "watch") < 0);
		prev = n;
		memcpy(prevt, nt, sizeof(nt));
	}
	/* a clock behind the previous timestamp still moves forward */
	struct ag_ts future = { e.clk.now + 100000, 5 };
	struct ag_ts n = ts_after(e.eng, future);
	CU_ASSERT_EQUAL(n.ms, future.ms + 1);
	eu_env_close(&e);
}

/* ------------------------------------------------------------ UID index */

static struct uidx_op *add_op(uint32_t seen, int n, uint8_t idbase)
{
	struct uidx_op *op = calloc(1, sizeof(*op));
	op->kind = UIDX_OP_ADD;
	op->seen_uidnext = seen;
	op->n = (size_t)n;
	op->ids = calloc((size_t)n, UIDX_ID);
	op->item_flags = calloc((size_t)n, sizeof(uint64_t));
	for (int i = 0; i < n; i++)
		memset(op->ids[i], idbase + i, UIDX_ID);
	return op;
}

static void test_uidx_rules(void)
{
	struct uidx_state *s = uidx_new();
	/* two writers that both saw uidnext 1: the second one in log order
	 * raises UIDVALIDITY by the UIDs it did not see */
	struct uidx_op *a = add_op(1, 2, 0x10), *b = add_op(1, 1, 0x20);
	uidx_apply(s, a);
	CU_ASSERT_EQUAL(s->uidvalidity, 1);
	CU_ASSERT_EQUAL(s->uidnext, 3);
	uidx_apply(s, b);
	CU_ASSERT_EQUAL(s->uidvalidity, 3);
	CU_ASSERT_EQUAL(s->msgs[2].uid, 3);
	/* a writer that saw everything causes no bump */
	struct uidx_op *c = add_op(4, 1, 0x30);
	uidx_apply(s, c);
	CU_ASSERT_EQUAL(s->uidvalidity, 3);
	CU_ASSERT_EQUAL(s->highestmodseq, 3);
	/* a duplicate id consumes a UID but adds nothing */
	struct uidx_op *dup = add_op(5, 1, 0x30);
	uidx_apply(s, dup);
	CU_ASSERT_EQUAL(s->n, 4);
	CU_ASSERT_EQUAL(s->uidnext, 6);
	/* flags: one op for many messages, modseq only where something changed */
	struct uidx_op *f = calloc(1, sizeof(*f));
	f->kind = UIDX_OP_FLAG_ADD;
	static const char *const kw[] = { "work" };
	uidx_op_set_keywords(f, kw, 1);
	f->flags = MAIL_F_SEEN | (1ull << 5);
	f->n = 2;
	f->ids = calloc(2, UIDX_ID);
	memset(f->ids[0], 0x10, UIDX_ID);
	memset(f->ids[1], 0x11, UIDX_ID);
	uint64_t hm = s->highestmodseq;
	uidx_apply(s, f);
	CU_ASSERT_EQUAL(s->highestmodseq, hm + 1);
	CU_ASSERT_EQUAL(s->msgs[0].modseq, hm + 1);
	CU_ASSERT_EQUAL(s->msgs[0].flags, MAIL_F_SEEN | (1ull << 5));
	CU_ASSERT_STRING_EQUAL(s->keywords[0], "work");
	uidx_apply(s, f); /* no change: no new modseq */
	CU_ASSERT_EQUAL(s->highestmodseq, hm + 1);
	f->kind = UIDX_OP_FLAG_DEL;
	f->flags = MAIL_F_SEEN;
	uidx_apply(s, f);
	CU_ASSERT_EQUAL(s->msgs[1].flags, 1ull << 5);
	f->kind = UIDX_OP_FLAG_SET;
	f->flags = MAIL_F_DELETED;
	uidx_apply(s, f);
	CU_ASSERT_EQUAL(s->msgs[1].flags, MAIL_F_DELETED);
	/* delete */
	struct uidx_op *d = eu_del_op(1);
	memset(d->ids[0], 0x11, UIDX_ID);
	uidx_apply(s, d);
	CU_ASSERT_EQUAL(s->n, 3);
	CU_ASSERT_PTR_NULL(uidx_find_uid(s, 2));
	CU_ASSERT_PTR_NOT_NULL(uidx_find_uid(s, 3));
	uint8_t gone[UIDX_ID];
	memset(gone, 0x11, UIDX_ID);
	CU_ASSERT_PTR_NULL(uidx_find_id(s, gone));
	/* a delete naming its messages in descending UID order removes them all */
	struct uidx_state *s2 = uidx_new();
	struct uidx_op *five = add_op(1, 5, 0x50);
	uidx_apply(s2, five);
	struct uidx_op *d2 = eu_del_op(2);
	memcpy(d2->ids[0], five->ids[4], UIDX_ID);
	memcpy(d2->ids[1], five->ids[3], UIDX_ID);
	uidx_apply(s2, d2);
	CU_ASSERT_EQUAL(s2->n, 3);
	CU_ASSERT_EQUAL(s2->msgs[2].uid, 3);
	CU_ASSERT_PTR_NULL(uidx_find_id(s2, five->ids[3]));
	CU_ASSERT_PTR_NULL(uidx_find_id(s2, five->ids[4]));
	uidx_op_free(five);
	uidx_op_free(d2);
	uidx_free(s2);
	/* bump */
	struct uidx_op bump = { .kind = UIDX_OP_BUMP, .bump = 10 };
	uidx_apply(s, &bump);
	CU_ASSERT_EQUAL(s->uidvalidity, 13);
	/* claims: the earliest wins, later ones only get what is left */
	struct uidx_op c1 = { .kind = UIDX_OP_CLAIM, .seen_uidnext = 4 }, c2 = { .kind = UIDX_OP_CLAIM, .seen_uidnext = 6 };
	memset(c1.owner, 1, UIDX_ID);
	memset(c2.owner, 2, UIDX_ID);
	uidx_apply(s, &c1);
	uidx_apply(s, &c2);
	CU_ASSERT(uidx_is_recent(s, c1.owner, 1));
	CU_ASSERT(uidx_is_recent(s, c1.owner, 3));
	CU_ASSERT(!uidx_is_recent(s, c2.owner, 3));
	CU_ASSERT(uidx_is_recent(s, c2.owner, 4));
	CU_ASSERT(!uidx_is_recent(s, c1.owner, 4));
	uidx_op_free(a);
	uidx_op_free(b);
	uidx_op_free(c);
	uidx_op_free(dup);
	uidx_op_free(f);
	uidx_op_free(d);
	uidx_free(s);

	/* One late add p (timestamp 2) missed by three adds of another writer
	 * that each name the newest add they knew: p counts once, not three
	 * times; without anchors it counts three times. */
	for (int anchored = 0; anchored < 2; anchored++) {
		struct uidx_state *t = uidx_new();
		struct uidx_op *x = add_op(1, 1, 0x40), *p = add_op(2, 1, 0x41);
		struct uidx_op *q[3];
		x->ts.ms = 1;
		p->ts.ms = 2;
		uidx_apply(t, x);
		uidx_apply(t, p);
		for (int i = 0; i < 3; i++) {
			q[i] = add_op(2 + (uint32_t)i, 1, (uint8_t)(0x50 + i)); /* saw x and its own */
			q[i]->ts.ms = 3 + (uint64_t)i;
			q[i]->has_anchor = anchored;
			q[i]->anchor.ms = i ? 3 + (uint64_t)i - 1 : 1;
			uidx_apply(t, q[i]);
		}
		CU_ASSERT_EQUAL(t->uidvalidity, anchored ? 2 : 4);
		CU_ASSERT_EQUAL(t->uidnext, 6);
		/* an anchor the state does not know falls back to uidnext - seen */
		struct uidx_op *z = add_op(5, 1, 0x60);
		z->ts.ms = 9;
		z->has_anchor = 1;
		z->anchor.ms = 99;
		uint32_t before = t->uidvalidity;
		uidx_apply(t, z);
		CU_ASSERT_EQUAL(t->uidvalidity, before + 1);
		uidx_op_free(z);
		for (int i = 0; i < 3; i++)
			uidx_op_free(q[i]);
		uidx_op_free(x);
		uidx_op_free(p);
		uidx_free(t);
	}
}

/* The UIDVALIDITY invariant on random op sets: for a view S and a superset
 * S' of it, equal UIDVALIDITY implies equal UIDs for every message of S. */
static void test_uidx_invariant_random(void)
{
	uint64_t r = 12345;
	for (int round = 0; round < 300; round++) {
		struct uidx_op *ops[12];
		int n = 12;
		struct uidx_state *w = uidx_new();
		/* writers with random stale views: seen = uidnext of a random prefix */
		uint32_t nexts[13];
		nexts[0] = 1;
		for (int i = 0; i < n; i++) {
			r = r * 6364136223846793005ull + 1442695040888963407ull;
			int back = (int)((r >> 33) % 3);
			int base = i - back < 0 ? 0 : i - back;
			ops[i] = add_op(nexts[base], 1 + (int)((r >> 40) % 3), (uint8_t)(i * 8 + 1));
			uidx_apply(w, ops[i]);
			nexts[i + 1] = w->uidnext;
		}
		uidx_free(w);
		/* S = a random subset closed under "the writer saw it" (a prefix of
		 * each op's own view); S' = all */
		uint32_t mask = 0;
		for (int i = 0; i < n; i++)
			if ((r >> (i + 3)) & 1)
				mask |= 1u << i;
		/* close it: an op whose seen exceeds what S holds before it is dropped */
		struct uidx_state *sv = uidx_new(), *sf = uidx_new();
		for (int i = 0; i < n; i++) {
			if ((mask & (1u << i)) && ops[i]->seen_uidnext <= sv->uidnext)
				uidx_apply(sv, ops[i]);
			uidx_apply(sf, ops[i]);
		}
		CU_ASSERT(sf->uidvalidity >= sv->uidvalidity);
		if (sf->uidvalidity == sv->uidvalidity)
			for (size_t k = 0; k < sv->n; k++) {
				const struct uidx_msg *m = uidx_find_id(sf, sv->msgs[k].id);
				CU_ASSERT(m != NULL && m->uid == sv->msgs[k].uid);
			}
		uidx_free(sv);
		uidx_free(sf);
		for (int i = 0; i < n; i++)
			uidx_op_free(ops[i]);
	}
}

/* The anchored rule on random histories. Op i (timestamp i) is committed
 * at time i + delay; its writer read at time i - 1/2, so its view holds the
 * ops committed before that (a closed view) and its anchor is the newest
 * add of that view. Views S_t (committed before t) grow with t; for each
 * pair UIDVALIDITY must not go back, and equal UIDVALIDITY must mean equal
 * UIDs. A replay from a checkpoint (encoded and decoded state) must agree
 * with the full replay, and the anchored rule never counts more than the
 * plain one. Long delays push anchors out of the window of UIDX_MARKS. */
static void test_uidx_anchor_random(void)
{
	uint64_t r = 777;
	enum { N = 48 };
	for (int round = 0; round < 300; round++) {
		struct uidx_op *ops[N];
		uint32_t commit2[N]; /* twice the commit time */
		for (int i = 0; i < N; i++) {
			r = r * 6364136223846793005ull + 1442695040888963407ull;
			uint32_t delay = (uint32_t)((r >> 33) % 4);
			if ((r >> 40) % (4 + (unsigned)round % 29) == 0)
				delay += 10 + (uint32_t)((r >> 44) % 40); /* a write that waited long */
			commit2[i] = 2 * (uint32_t)i + 2 * delay + 1;
			uint32_t seen = 1;
			int anchor = -1;
			for (int j = 0; j < i; j++)
				if (commit2[j] < 2 * (uint32_t)i - 1) {
					seen += (uint32_t)ops[j]->n;
					anchor = j;
				}
			int n = 1 + (int)((r >> 50) % 3);
			struct uidx_op *op = add_op(seen, n, 0);
			for (int k = 0; k < n; k++) {
				memset(op->ids[k], 0, UIDX_ID);
				op->ids[k][0] = (uint8_t)i;
				op->ids[k][1] = (uint8_t)k;
				op->ids[k][2] = 0xa5;
			}
			op->ts.ms = (uint64_t)i + 1;
			if (anchor >= 0) {
				op->has_anchor = 1;
				op->anchor.ms = (uint64_t)anchor + 1;
			}
			ops[i] = op;
		}
		/* every pair of views, not only neighbours */
		struct uidx_state *views[64];
		size_t nv = 0;
		for (uint32_t k = 0; k < 64; k++) {
			uint32_t t2 = k * (2 * N + 2 * 60 + 2) / 63; /* the last one holds every op */
			struct uidx_state *v = uidx_new(), *plain = uidx_new();
			for (int i = 0; i < N; i++) {
				if (commit2[i] >= t2)
					continue;
				uidx_apply(v, ops[i]);
				int h = ops[i]->has_anchor;
				ops[i]->has_anchor = 0; /* the plain rule */
				uidx_apply(plain, ops[i]);
				ops[i]->has_anchor = h;
			}
			CU_ASSERT(v->uidvalidity <= plain->uidvalidity);
			uidx_free(plain);
			views[nv++] = v;
		}
		for (size_t a = 0; a < nv; a++)
			for (size_t z = a + 1; z < nv; z++) {
				CU_ASSERT(views[z]->uidvalidity >= views[a]->uidvalidity);
				if (views[z]->uidvalidity != views[a]->uidvalidity)
					continue;
				for (size_t k = 0; k < views[a]->n; k++) {
					const struct uidx_msg *m = uidx_find_id(views[z], views[a]->msgs[k].id);
					if (m == NULL || m->uid != views[a]->msgs[k].uid) {
						CU_FAIL("same UIDVALIDITY, different UID");
						break;
					}
				}
			}
		struct uidx_state *prev = views[nv - 1];
		for (size_t a = 0; a + 1 < nv; a++)
			uidx_free(views[a]);
		/* everything: once in full, once from a checkpoint after op N/2 */
		struct uidx_state *full = uidx_new(), *half = uidx_new();
		for (int i = 0; i < N; i++)
			uidx_apply(full, ops[i]);
		for (int i = 0; i < N / 2; i++)
			uidx_apply(half, ops[i]);
		struct cbuf b = { 0 };
		CU_ASSERT_EQUAL(codec_state_encode(half, &b), 0);
		struct uidx_state *ck = NULL;
		CU_ASSERT_EQUAL_FATAL(codec_state_decode(b.p, b.len, &ck), 0);
		free(b.p);
		CU_ASSERT_EQUAL(ck->n_marks, half->n_marks);
		for (int i = N / 2; i < N; i++)
			uidx_apply(ck, ops[i]);
		CU_ASSERT_EQUAL(ck->uidvalidity, full->uidvalidity);
		CU_ASSERT_EQUAL(ck->uidnext, full->uidnext);
		CU_ASSERT(prev && prev->uidvalidity == full->uidvalidity);
		uidx_free(ck);
		uidx_free(half);
		uidx_free(full);
		uidx_free(prev);
		for (int i = 0; i < N; i++)
			uidx_op_free(ops[i]);
	}
}

/* ------------------------------------------------------- mailbox list */

static void random_list(struct mblist *l, uint64_t *r)
{
	static const char *const names[] = { "INBOX", "a", "a.b", "b", "c" };
	memset(l, 0, sizeof(*l));
	for (int i = 0; i < 5; i++) {
		*r = *r * 6364136223846793005ull + 1442695040888963407ull;
		if ((*r >> 60) & 1)
			continue;
		struct mblist_entry *e = mblist_get(l, names[i]);
		e->id_ts = (*r >> 10) % 4;
		e->has_id = (int)((*r >> 13) & 1);
		if (e->has_id)
			memset(e->id, (int)((*r >> 14) % 3), UIDX_ID);
		e->uidvalidity = (uint32_t)((*r >> 20) % 5);
		e->sub_ts = (*r >> 24) % 3;
		e->subscribed = (int)((*r >> 27) & 1);
		e->su_ts = (*r >> 28) % 3;
		e->special_use = (uint32_t)((*r >> 31) % 4);
	}
}

static int list_equal(const struct mblist *a, const struct mblist *b)
{
	struct cbuf x = { 0 }, y = { 0 };
	codec_mblist_encode(a, &x);
	codec_mblist_encode(b, &y);
	int eq = x.len == y.len && memcmp(x.p, y.p, x.len) == 0;
	free(x.p);
	free(y.p);
	return eq;
}

/* out, empty, becomes x merged with y */
static void merge2(struct mblist *out, const struct mblist *x, const struct mblist *y)
{
	mblist_merge(out, x);
	mblist_merge(out, y);
}

static void test_mblist_crdt(void)
{
	uint64_t r = 99;
	for (int i = 0; i < 500; i++) {
		struct mblist a, b, c, ab = { 0 }, ba = { 0 }, abc1 = { 0 }, abc2 = { 0 }, bc = { 0 };
		random_list(&a, &r);
		random_list(&b, &r);
		random_list(&c, &r);
		merge2(&ab, &a, &b);
		merge2(&ba, &b, &a);
		CU_ASSERT(list_equal(&ab, &ba)); /* commutative */
		struct mblist aa = { 0 };
		merge2(&aa, &a, &a);
		CU_ASSERT(list_equal(&aa, &a)); /* idempotent */
		merge2(&abc1, &ab, &c);
		merge2(&bc, &b, &c);
		merge2(&abc2, &a, &bc);
		CU_ASSERT(list_equal(&abc1, &abc2)); /* associative */
		mblist_free(&a);
		mblist_free(&b);
		mblist_free(&c);
		mblist_free(&ab);
		mblist_free(&ba);
		mblist_free(&aa);
		mblist_free(&abc1);
		mblist_free(&abc2);
		mblist_free(&bc);
	}
}

static int has_name(struct mail_mailbox_info *l, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(l[i].name, name) == 0 && l[i].exists)
			return 1;
	return 0;
}

static void test_mblist_defaults_and_rename(void)
{
	struct eu_env e;
	eu_env_open(&e, 11);
	struct mail_mailbox_info *l;
	size_t n;
	CU_ASSERT_EQUAL_FATAL(mail_list(e.eng, "bob", &l, &n), 0);
	const char *defs[] = { "INBOX", "Drafts", "Sent", "Trash", "Archive", "Junk" };
	for (int i = 0; i < 6; i++)
		CU_ASSERT(has_name(l, n, defs[i]));
	for (size_t i = 0; i < n; i++)
		if (strcmp(l[i].name, "Sent") == 0)
			CU_ASSERT_EQUAL(l[i].special_use, MAIL_SU_SENT);
	mail_list_free(l, n);
	/* two engines creating the defaults at once agree on the ids */
	struct mail_engine *e2 = eu_env_engine(&e, 12);
	struct mail_mailbox_info *l2;
	size_t n2;
	CU_ASSERT_EQUAL(mail_list(e2, "carol", &l2, &n2), 0);
	CU_ASSERT_EQUAL(mail_list(e.eng, "carol", &l, &n), 0);
	CU_ASSERT_EQUAL(n, n2);
	for (size_t i = 0; i < n && i < n2; i++)
		CU_ASSERT_STRING_EQUAL(l[i].id, l2[i].id);
	mail_list_free(l, n);
	mail_list_free(l2, n2);
	mail_engine_free(e2);

	CU_ASSERT_EQUAL(mail_create(e.eng, "bob", "work", 0), 0);
	CU_ASSERT_EQUAL(mail_create(e.eng, "bob", "work.a", 0), 0);
	CU_ASSERT_EQUAL(mail_create(e.eng, "bob", "work.a.b", 0), 0);
	CU_ASSERT_EQUAL(mail_create(e.eng, "bob", "work", 0), MAIL_EEXIST);
	CU_ASSERT_EQUAL(mail_create(e.eng, "bob", "bad..name", 0), AEROGRAM_EINVAL);
	CU_ASSERT_EQUAL(mail_create(e.eng, "bob", "bad.", 0), AEROGRAM_EINVAL);
	struct mail_mailbox *mb = eu_box(e.eng, "bob", "work.a", 3);
	char id_before[33];
	snprintf(id_before, sizeof(id_before), "%s", mail_mailbox_id(mb));
	mail_mailbox_close(mb);

	CU_ASSERT_EQUAL(mail_rename(e.eng, "bob", "work", "play"), 0);
	CU_ASSERT_EQUAL(mail_list(e.eng, "bob", &l, &n), 0);
	CU_ASSERT(!has_name(l, n, "work"));
	CU_ASSERT(!has_name(l, n, "work.a"));
	CU_ASSERT(has_name(l, n, "play"));
	CU_ASSERT(has_name(l, n, "play.a"));
	CU_ASSERT(has_name(l, n, "play.a.b"));
	mail_list_free(l, n);
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(e.eng, "bob", "play.a", &mb), 0);
	CU_ASSERT_STRING_EQUAL(mail_mailbox_id(mb), id_before);
	struct mail_status st;
	mail_mailbox_status(mb, &st);
	CU_ASSERT_EQUAL(st.exists, 3);
	mail_mailbox_close(mb);
	CU_ASSERT_EQUAL(mail_rename(e.eng, "bob", "nothere", "x"), AEROGRAM_ENOTFOUND);
	CU_ASSERT_EQUAL(mail_rename(e.eng, "bob", "play", "Sent"), MAIL_EEXIST);

	/* a name that exists only through its children: DELETE is refused
	 * (ECHILDREN), RENAME moves the children; the new name must be free */
	CU_ASSERT_EQUAL(mail_create(e.eng, "bob", "p.q.r", 0), 0);
	CU_ASSERT_EQUAL(mail_delete(e.eng, "bob", "p"), MAIL_ECHILDREN);
	CU_ASSERT_EQUAL(mail_delete(e.eng, "bob", "p.q"), MAIL_ECHILDREN);
	CU_ASSERT_EQUAL(mail_delete(e.eng, "bob", "p.q.r.s"), AEROGRAM_ENOTFOUND);
	CU_ASSERT_EQUAL(mail_rename(e.eng, "bob", "p", "Sent"), MAIL_EEXIST);
	CU_ASSERT_EQUAL(mail_rename(e.eng, "bob", "p", "p.z"), AEROGRAM_EINVAL);
	CU_ASSERT_EQUAL(mail_rename(e.eng, "bob", "p", "x"), 0);
	CU_ASSERT_EQUAL(mail_list(e.eng, "bob", &l, &n), 0);
	CU_ASSERT(!has_name(l, n, "p.q.r"));
	CU_ASSERT(has_name(l, n, "x.q.r"));
	mail_list_free(l, n);
	CU_ASSERT_EQUAL(mail_rename(e.eng, "bob", "p", "y"), AEROGRAM_ENOTFOUND);
	CU_ASSERT_EQUAL(mail_delete(e.eng, "bob", "x.q.r"), 0);
	CU_ASSERT_EQUAL(mail_delete(e.eng, "bob", "x"), AEROGRAM_ENOTFOUND);

	/* re-created name: UIDVALIDITY above anything the old one reported */
	CU_ASSERT_EQUAL(mail_create(e.eng, "bob", "work.a", 0), 0);
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(e.eng, "bob", "work.a", &mb), 0);
	struct mail_status st2;
	mail_mailbox_status(mb, &st2);
	CU_ASSERT(st2.uidvalidity > st.uidvalidity);
	CU_ASSERT_EQUAL(st2.exists, 0);
	mail_mailbox_close(mb);

	/* INBOX: its messages move, an empty INBOX stays, children stay */
	CU_ASSERT_EQUAL(mail_create(e.eng, "bob", "INBOX.kid", 0), 0);
	mb = eu_box(e.eng, "bob", "inbox", 2);
	mail_mailbox_status(mb, &st);
	mail_mailbox_close(mb);
	CU_ASSERT_EQUAL(mail_rename(e.eng, "bob", "INBOX", "old-inbox"), 0);
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(e.eng, "bob", "old-inbox", &mb), 0);
	mail_mailbox_status(mb, &st2);
	CU_ASSERT_EQUAL(st2.exists, 2);
	mail_mailbox_close(mb);
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(e.eng, "bob", "INBOX", &mb), 0);
	mail_mailbox_status(mb, &st2);
	CU_ASSERT_EQUAL(st2.exists, 0);
	CU_ASSERT(st2.uidvalidity > st.uidvalidity);
	mail_mailbox_close(mb);
	CU_ASSERT_EQUAL(mail_list(e.eng, "bob", &l, &n), 0);
	CU_ASSERT(has_name(l, n, "INBOX.kid"));
	mail_list_free(l, n);
	CU_ASSERT_EQUAL(mail_delete(e.eng, "bob", "INBOX"), AEROGRAM_EPERM);

	/* subscriptions survive a delete; LSUB-style listing shows them */
	CU_ASSERT_EQUAL(mail_subscribe(e.eng, "bob", "play", 1), 0);
	CU_ASSERT_EQUAL(mail_delete(e.eng, "bob", "play"), 0);
	CU_ASSERT_EQUAL(mail_list(e.eng, "bob", &l, &n), 0);
	int seen = 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(l[i].name, "play") == 0) {
			seen = 1;
			CU_ASSERT(l[i].subscribed);
			CU_ASSERT(!l[i].exists);
		}
	CU_ASSERT(seen);
	mail_list_free(l, n);
	eu_env_close(&e);
}

static size_t count_rows(struct eu_env *e, const char *pk)
{
	struct aerogram_row_query q = { .pk = pk };
	struct aerogram_row_result *res = NULL;
	size_t n = 0;
	if (e->st.driver->row_read(e->st.store, &q, 1, &res) == 0) {
		n = res->pages[0].n_rows;
		e->st.driver->row_result_free(e->st.store, res);
	}
	return n;
}

static size_t count_blobs(struct eu_env *e, const char *prefix)
{
	char **keys;
	size_t n = 0;
	if (mail_list_blobs(e->eng, prefix, &keys, &n) == 0)
		mail_free_strv(keys, n);
	return n;
}

static void test_delete_removes_contents(void)
{
	struct eu_env e;
	eu_env_open(&e, 13);
	CU_ASSERT_EQUAL_FATAL(mail_create(e.eng, "dan", "tmp", 0), 0);
	struct mail_mailbox *mb = eu_box(e.eng, "dan", "tmp", 5);
	e.clk.now += 10 * 60 * 1000;
	CU_ASSERT_EQUAL(mail_mailbox_checkpoint(mb, 1), 0);
	char id[33], pk[128], pfx[160];
	snprintf(id, sizeof(id), "%s", mail_mailbox_id(mb));
	mail_mailbox_close(mb);
	snprintf(pk, sizeof(pk), "dan/index/%s", id);
	CU_ASSERT(count_rows(&e, pk) > 0);
	snprintf(pfx, sizeof(pfx), "dan/index/%s/checkpoint/", id);
	CU_ASSERT_EQUAL(count_blobs(&e, pfx), 1);
	snprintf(pk, sizeof(pk), "dan/mail/%s", id);
	CU_ASSERT_EQUAL(count_rows(&e, pk), 5);
	snprintf(pfx, sizeof(pfx), "dan/mail/%s/", id);
	CU_ASSERT_EQUAL(count_blobs(&e, pfx), 5);

	CU_ASSERT_EQUAL(mail_delete(e.eng, "dan", "tmp"), 0);
	snprintf(pk, sizeof(pk), "dan/index/%s", id);
	CU_ASSERT_EQUAL(count_rows(&e, pk), 0);
	snprintf(pk, sizeof(pk), "dan/mail/%s", id);
	CU_ASSERT_EQUAL(count_rows(&e, pk), 0);
	CU_ASSERT_EQUAL(count_blobs(&e, pfx), 0);
	snprintf(pfx, sizeof(pfx), "dan/index/%s/", id);
	CU_ASSERT_EQUAL(count_blobs(&e, pfx), 0);
	CU_ASSERT_EQUAL(mail_mailbox_open(e.eng, "dan", "tmp", &mb), AEROGRAM_ENOTFOUND);
	CU_ASSERT_EQUAL(mail_delete(e.eng, "dan", "tmp"), AEROGRAM_ENOTFOUND);

	/* deleted by another daemon while open here: noticed at the next sync */
	CU_ASSERT_EQUAL_FATAL(mail_create(e.eng, "dan", "tmp2", 0), 0);
	mb = eu_box(e.eng, "dan", "tmp2", 1);
	struct mail_engine *other = eu_env_engine(&e, 14);
	CU_ASSERT_EQUAL(mail_delete(other, "dan", "tmp2"), 0);
	CU_ASSERT_EQUAL(mail_mailbox_sync(mb), AEROGRAM_ENOTFOUND);
	CU_ASSERT_EQUAL(eu_append_n(mb, 1, 0), -1);
	mail_mailbox_close(mb);
	mail_engine_free(other);
	eu_env_close(&e);
}

/* --------------------------------------------------------------- Recent */

static void test_recent(void)
{
	struct eu_env e;
	eu_env_open(&e, 17);
	struct mail_engine *e2 = eu_env_engine(&e, 18);
	struct mail_mailbox *m1, *m2;
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(e.eng, "eve", "INBOX", &m1), 0);
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(e2, "eve", "INBOX", &m2), 0);
	CU_ASSERT_EQUAL(eu_append_n(m1, 3, 0), 0);
	struct mail_view *exam, *sel1, *sel2;
	/* EXAMINE claims nothing, but shows what nobody claimed as \Recent */
	exam = eu_view(m2);
	CU_ASSERT_EQUAL(mail_view_recent_count(exam), 3);
	CU_ASSERT_EQUAL_FATAL(mail_view_open(m2, 1, &sel1), 0); /* first SELECT, other daemon */
	CU_ASSERT_EQUAL(mail_view_recent_count(sel1), 3);
	CU_ASSERT_EQUAL_FATAL(mail_view_open(m1, 1, &sel2), 0); /* second SELECT */
	CU_ASSERT_EQUAL(mail_view_recent_count(sel2), 0);
	struct mail_msg_info info;
	CU_ASSERT_EQUAL(mail_view_msg(sel1, 1, &info), 0);
	CU_ASSERT(info.recent);
	/* a new message goes to whichever session is told first */
	CU_ASSERT_EQUAL(eu_append_n(m1, 1, 0), 0);
	struct mail_changes *c;
	CU_ASSERT_EQUAL_FATAL(mail_view_update(sel2, 1, &c), 0);
	CU_ASSERT(c->exists_changed);
	CU_ASSERT_EQUAL(c->exists, 4);
	CU_ASSERT_EQUAL(c->recent, 1);
	mail_changes_free(c);
	CU_ASSERT_EQUAL(mail_mailbox_sync(m2), 0);
	CU_ASSERT_EQUAL_FATAL(mail_view_update(sel1, 1, &c), 0);
	CU_ASSERT_EQUAL(c->exists, 4);
	CU_ASSERT_EQUAL(c->recent, 3);
	mail_changes_free(c);
	struct mail_status st;
	mail_mailbox_status(m1, &st);
	CU_ASSERT_EQUAL(st.recent, 0);
	/* the EXAMINE view keeps its three (claimed since, no flag change)
	 * and does not see the fourth, claimed before it saw it */
	CU_ASSERT_EQUAL_FATAL(mail_view_update(exam, 0, &c), 0);
	CU_ASSERT_EQUAL(c->exists, 4);
	CU_ASSERT_EQUAL(c->recent, 3);
	CU_ASSERT_EQUAL(c->n_flags, 0);
	mail_changes_free(c);
	CU_ASSERT_EQUAL(mail_view_msg(exam, 4, &info), 0);
	CU_ASSERT_FALSE(info.recent);
	mail_view_close(exam);
	mail_view_close(sel1);
	mail_view_close(sel2);
	mail_mailbox_close(m1);
	mail_mailbox_close(m2);
	mail_engine_free(e2);
	eu_env_close(&e);
}

/* ----------------------------------------------------------- views, diff */

static void test_view_diff(void)
{
	struct eu_env e;
	eu_env_open(&e, 19);
	struct mail_mailbox *mb = eu_box(e.eng, "fay", "INBOX", 6);
	struct mail_view *a, *b;
	a = eu_view(mb);
	b = eu_view(mb);
	CU_ASSERT_EQUAL(mail_view_exists(a), 6);
	CU_ASSERT_EQUAL(mail_view_seq(a, 4), 4);
	uint32_t del[] = { 2, 3, 5 };
	CU_ASSERT_EQUAL(mail_expunge(a, del, 3), 0);
	uint32_t fl[] = { 4 };
	static const char *const kw[] = { "work" };
	CU_ASSERT_EQUAL(mail_store(a, fl, 1, MAIL_STORE_ADD, MAIL_F_FLAGGED, kw, 1), 0);
	CU_ASSERT_EQUAL(eu_append_n(mb, 1, MAIL_F_SEEN), 0);
	struct mail_changes *c;
	CU_ASSERT_EQUAL_FATAL(mail_view_update(b, 0, &c), 0);
	/* expunges of 2,3,5 from 1..6 are told as 2, 2, 3 */
	CU_ASSERT_EQUAL_FATAL(c->n_expunged, 3);
	CU_ASSERT_EQUAL(c->expunged[0], 2);
	CU_ASSERT_EQUAL(c->expunged[1], 2);
	CU_ASSERT_EQUAL(c->expunged[2], 3);
	CU_ASSERT(c->exists_changed);
	CU_ASSERT_EQUAL(c->exists, 4);
	CU_ASSERT_EQUAL_FATAL(c->n_flags, 1);
	CU_ASSERT_EQUAL(c->flags[0].uid, 4);
	CU_ASSERT_EQUAL(c->flags[0].seq, 2);
	CU_ASSERT_EQUAL(c->flags[0].flags, MAIL_F_FLAGGED);
	CU_ASSERT_EQUAL(c->flags[0].keywords, 1);
	CU_ASSERT_STRING_EQUAL(mail_view_keyword(b, 0), "work");
	CU_ASSERT(!c->uidvalidity_changed);
	mail_changes_free(c);
	CU_ASSERT_EQUAL(mail_view_uid(b, 4), 7);
	CU_ASSERT_EQUAL(mail_view_seq(b, 5), 0);
	/* nothing new: nothing to tell */
	CU_ASSERT_EQUAL_FATAL(mail_view_update(b, 0, &c), 0);
	CU_ASSERT_EQUAL(c->n_expunged + c->n_flags + (size_t)c->exists_changed, 0);
	mail_changes_free(c);
	mail_view_close(a);
	mail_view_close(b);
	mail_mailbox_close(mb);
	eu_env_close(&e);
}

/* RFC 3501 7.4.1: an update during FETCH/STORE/SEARCH takes new messages and
 * flags but keeps expunged ones, numbered as before, until a plain update. */
static void test_view_defer_expunge(void)
{
	struct eu_env e;
	eu_env_open(&e, 29);
	struct mail_mailbox *mb = eu_box(e.eng, "hal", "INBOX", 6);
	struct mail_view *a, *b;
	a = eu_view(mb);
	b = eu_view(mb);
	uint32_t del[] = { 2, 3, 5 };
	CU_ASSERT_EQUAL(mail_expunge(a, del, 3), 0);
	uint32_t fl[] = { 4 };
	CU_ASSERT_EQUAL(mail_store(a, fl, 1, MAIL_STORE_ADD, MAIL_F_FLAGGED, NULL, 0), 0);
	CU_ASSERT_EQUAL(eu_append_n(mb, 1, 0), 0);
	struct mail_changes *c;
	CU_ASSERT_EQUAL_FATAL(mail_view_update_ex(b, 0, MAIL_VIEW_DEFER_EXPUNGE, &c), 0);
	CU_ASSERT_EQUAL(c->n_expunged, 0);
	CU_ASSERT(c->exists_changed);
	CU_ASSERT_EQUAL(c->exists, 7); /* 6 kept + 1 new */
	CU_ASSERT_EQUAL_FATAL(c->n_flags, 1);
	CU_ASSERT_EQUAL(c->flags[0].uid, 4);
	CU_ASSERT_EQUAL(c->flags[0].seq, 4); /* numbers unchanged */
	CU_ASSERT_EQUAL(c->flags[0].flags, MAIL_F_FLAGGED);
	mail_changes_free(c);
	CU_ASSERT_EQUAL(mail_view_exists(b), 7);
	CU_ASSERT_EQUAL(mail_view_pending_expunges(b), 3);
	CU_ASSERT_EQUAL(mail_view_uid(b, 5), 5);
	CU_ASSERT_EQUAL(mail_view_uid(b, 7), 7);
	struct mail_msg_info info;
	CU_ASSERT_EQUAL(mail_view_msg(b, 3, &info), 0);
	CU_ASSERT(info.expunged);
	CU_ASSERT_EQUAL(mail_view_msg(b, 4, &info), 0);
	CU_ASSERT(!info.expunged);
	/* the data of an expunged message stays readable until collected */
	uint32_t three = 3;
	struct mail_summary *sm;
	CU_ASSERT_EQUAL_FATAL(mail_summaries(b, &three, 1, &sm), 0);
	CU_ASSERT_EQUAL(sm[0].status, 0);
	mail_summaries_free(sm, 1);
	/* storing on an expunged message changes nothing and fails nothing */
	CU_ASSERT_EQUAL(mail_store(b, &three, 1, MAIL_STORE_ADD, MAIL_F_SEEN, NULL, 0), 0);
	/* a second deferred update: still nothing expunged, nothing new */
	CU_ASSERT_EQUAL_FATAL(mail_view_update_ex(b, 0, MAIL_VIEW_DEFER_EXPUNGE, &c), 0);
	CU_ASSERT_EQUAL(c->n_expunged, 0);
	CU_ASSERT(!c->exists_changed);
	CU_ASSERT_EQUAL(c->n_flags, 0);
	mail_changes_free(c);
	CU_ASSERT_EQUAL(mail_view_exists(b), 7);
	/* a plain update, with nothing new in the log, tells them: 2, 2, 3 */
	CU_ASSERT_EQUAL_FATAL(mail_view_update(b, 0, &c), 0);
	CU_ASSERT_EQUAL_FATAL(c->n_expunged, 3);
	CU_ASSERT_EQUAL(c->expunged[0], 2);
	CU_ASSERT_EQUAL(c->expunged[1], 2);
	CU_ASSERT_EQUAL(c->expunged[2], 3);
	CU_ASSERT(!c->exists_changed); /* 7 - 3: the EXPUNGEs say it */
	CU_ASSERT_EQUAL(c->exists, 4);
	CU_ASSERT_EQUAL(c->n_flags, 0);
	mail_changes_free(c);
	CU_ASSERT_EQUAL(mail_view_pending_expunges(b), 0);
	CU_ASSERT_EQUAL(mail_view_uid(b, 3), 6);
	CU_ASSERT_EQUAL(mail_view_uid(b, 4), 7);
	/* and the same view agrees with a fresh one */
	struct mail_view *fresh = eu_view(mb);
	CU_ASSERT_EQUAL(mail_view_exists(fresh), 4);
	for (uint32_t seq = 1; seq <= 4; seq++)
		CU_ASSERT_EQUAL(mail_view_uid(fresh, seq), mail_view_uid(b, seq));
	/* a view that caught up defers the next expunge the same way */
	CU_ASSERT_EQUAL(mail_expunge(a, fl, 1), 0);
	CU_ASSERT_EQUAL_FATAL(mail_view_update_ex(fresh, 0, MAIL_VIEW_DEFER_EXPUNGE, &c), 0);
	CU_ASSERT_EQUAL(c->n_expunged, 0);
	CU_ASSERT(!c->exists_changed);
	mail_changes_free(c);
	CU_ASSERT_EQUAL(mail_view_msg(fresh, 2, &info), 0);
	CU_ASSERT_EQUAL(info.uid, 4);
	CU_ASSERT(info.expunged);
	CU_ASSERT_EQUAL_FATAL(mail_view_update(fresh, 0, &c), 0);
	CU_ASSERT_EQUAL_FATAL(c->n_expunged, 1);
	CU_ASSERT_EQUAL(c->expunged[0], 2);
	CU_ASSERT_EQUAL(c->exists, 3);
	mail_changes_free(c);
	mail_view_close(fresh);
	mail_view_close(a);
	mail_view_close(b);
	mail_mailbox_close(mb);
	eu_env_close(&e);
}

/* ----------------------------------------------------------- round trips */

/* Prints a line: the title, then "name a/b" for each of n counters. */
static void print_counts(const char *title, size_t n, const char *const *names, const uint64_t *a, const uint64_t *b)
{
	printf("\n  %s:", title);
	for (size_t i = 0; i < n; i++)
		printf(" %s %llu/%llu", names[i], (unsigned long long)a[i], (unsigned long long)b[i]);
	printf("\n");
}

struct cost {
	uint64_t open, append, store, list, bodies;
};

static void measure(int n_msgs, struct cost *cost)
{
	struct eu_env e;
	eu_env_open(&e, 23);
	struct mail_mailbox *mb = eu_box(e.eng, "gus", "INBOX", 0);
	CU_ASSERT_EQUAL_FATAL(eu_append_n(mb, n_msgs, 0), 0);
	/* a checkpoint bounds the log, as the size rule does in use */
	e.clk.now += 60000;
	CU_ASSERT_EQUAL(mail_mailbox_checkpoint(mb, 1), 0);
	mail_mailbox_close(mb);

	struct mail_engine *fresh = eu_env_engine(&e, 24);
	agw_count_reset(e.cw);
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(fresh, "gus", "INBOX", &mb), 0);
	cost->open = eu_total_calls(&e);
	/* open: list row, checkpoint list, the checkpoint, one log read (two
	 * calls, the watch row first, where batches are no snapshot) */
	CU_ASSERT_EQUAL(calls(&e, AGW_ROW_READ), eu_no_cas ? 3 : 2);
	CU_ASSERT_EQUAL(calls(&e, AGW_BLOB_LIST), 1);
	CU_ASSERT_EQUAL(calls(&e, AGW_BLOB_GET), 1);

	agw_count_reset(e.cw);
	CU_ASSERT_EQUAL(eu_append_n(mb, 1, 0), 0);
	cost->append = eu_total_calls(&e);
	CU_ASSERT_EQUAL(calls(&e, AGW_BLOB_PUT), 1);
	if (eu_no_cas) {
		/* claim + summary, log entry, watch + release; the log read under
		 * the claim (the watch row, then the log) */
		CU_ASSERT_EQUAL(calls(&e, AGW_ROW_INSERT), 3);
		CU_ASSERT_EQUAL(calls(&e, AGW_ROW_READ), 2);
	} else {
		/* summary, log entry and watch in one conditional batch; no read */
		CU_ASSERT_EQUAL(calls(&e, AGW_ROW_INSERT_IF), 1);
		CU_ASSERT_EQUAL(agw_count_items(e.cw, AGW_ROW_INSERT_IF), 3);
		CU_ASSERT_EQUAL(calls(&e, AGW_ROW_READ), 0);
	}

	struct mail_view *v = eu_view(mb);
	uint32_t n;
	uint32_t *uids = eu_view_uids(v, &n);
	agw_count_reset(e.cw);
	CU_ASSERT_EQUAL(mail_store(v, uids, n, MAIL_STORE_ADD, MAIL_F_SEEN, NULL, 0), 0);
	cost->store = eu_total_calls(&e);
	CU_ASSERT_EQUAL(agw_count_items(e.cw, log_insert_op()), 2); /* ONE log row + the watch */

	agw_count_reset(e.cw);
	struct mail_summary *sm;
	CU_ASSERT_EQUAL_FATAL(mail_summaries(v, uids, n, &sm), 0);
	cost->list = eu_total_calls(&e);
	for (uint32_t i = 0; i < n; i++)
		CU_ASSERT_EQUAL(sm[i].status, 0);
	mail_summaries_free(sm, n);

	agw_count_reset(e.cw);
	struct mail_body *bd;
	uint32_t nb = n < 50 ? n : 50;
	CU_ASSERT_EQUAL_FATAL(mail_bodies(v, uids, nb, &bd), 0);
	cost->bodies = eu_total_calls(&e);
	CU_ASSERT_EQUAL(calls(&e, AGW_BLOB_GET), 1);
	for (uint32_t i = 0; i < nb; i++)
		CU_ASSERT_EQUAL(bd[i].status, 0);
	mail_bodies_free(bd, nb);
	free(uids);
	mail_view_close(v);
	mail_mailbox_close(mb);
	mail_engine_free(fresh);
	eu_env_close(&e);
}

static void test_round_trips(void)
{
	struct cost small, big;
	measure(100, &small);
	measure(1000, &big);
	const char *const names[] = { "open", "append", "store-all", "list", "bodies(50)" };
	const uint64_t s[] = { small.open, small.append, small.store, small.list, small.bodies };
	const uint64_t b[] = { big.open, big.append, big.store, big.list, big.bodies };
	print_counts("driver calls (100 / 1000 messages)", 5, names, s, b);
	/* none of these grows with the number of messages */
	CU_ASSERT_EQUAL(small.append, big.append);
	CU_ASSERT_EQUAL(small.store, big.store);
	CU_ASSERT_EQUAL(small.list, big.list);
	CU_ASSERT_EQUAL(small.bodies, big.bodies);
	CU_ASSERT(big.open <= 5);
	CU_ASSERT(big.store <= 4);
	CU_ASSERT(big.list <= 2);
}

static int append_ticking(struct eu_env *e, struct mail_mailbox *mb, int n, uint64_t tick_ms);

/* ------------------------------------------- rows read per command */

/* What commands read from the store after a history of `history` flag
 * changes on a 1,000-message mailbox: rows (all queries together) and log
 * rows (entries) of the sync they did. */
struct reads {
	uint64_t noop_rows, noop_log, status_rows, select_rows, store_rows, append_rows;
	uint64_t cold_select_rows;
};

static void reads_after(uint64_t history, struct reads *r)
{
	struct eu_env e;
	eu_env_open(&e, 61);
	struct mail_mailbox *mb = eu_box(e.eng, "ros", "INBOX", 0);
	CU_ASSERT_EQUAL_FATAL(append_ticking(&e, mb, 1000, 2), 0);
	struct mail_view *v;
	CU_ASSERT_EQUAL_FATAL(mail_view_open(mb, 1, &v), 0);
	uint32_t uids[64];
	for (uint64_t i = 0; i < history; i++) {
		e.clk.now += 200; /* a command every 200 ms, for half an hour */
		size_t k = 0;
		for (uint32_t j = 0; j < 64; j++)
			uids[k++] = 1 + (uint32_t)((i * 131 + j * 17) % 1000);
		CU_ASSERT_EQUAL_FATAL(mail_store(v, uids, k, i & 1 ? MAIL_STORE_REMOVE : MAIL_STORE_ADD,
		                                 MAIL_F_FLAGGED, NULL, 0), 0);
	}
	/* the writes are over: the mailbox is quiet, as between two commands */
	e.clk.now += 5000;
	struct mail_changes *c;
	CU_ASSERT_EQUAL(mail_view_update(v, 1, &c), 0);
	mail_changes_free(c);

	/* NOOP on an unchanged mailbox */
	agw_count_reset(e.cw);
	CU_ASSERT_EQUAL(mail_view_update(v, 1, &c), 0);
	CU_ASSERT_EQUAL(c->n_flags + c->n_expunged, 0);
	mail_changes_free(c);
	r->noop_rows = agw_count_rows_read(e.cw);
	r->noop_log = mb->log.last_sync_rows;
	/* STATUS: the shared state, joined */
	agw_count_reset(e.cw);
	struct mail_mailbox *m2 = eu_box(e.eng, "ros", "INBOX", 0);
	struct mail_status st;
	CU_ASSERT_EQUAL(mail_mailbox_status(m2, &st), 0);
	CU_ASSERT_EQUAL(st.exists, 1000);
	r->status_rows = agw_count_rows_read(e.cw);
	/* SELECT: a new claiming view */
	agw_count_reset(e.cw);
	struct mail_view *v2;
	CU_ASSERT_EQUAL_FATAL(mail_view_open(m2, 1, &v2), 0);
	r->select_rows = agw_count_rows_read(e.cw);
	mail_view_close(v2);
	mail_mailbox_close(m2);
	/* a STORE, then an APPEND (with no checkpoint due: in a daemon the
	 * poller writes those, off the command's path) */
	e.clk.now += 5000;
	CU_ASSERT_EQUAL(mail_mailbox_checkpoint(mb, 1), 0);
	e.clk.now += 5000;
	agw_count_reset(e.cw);
	CU_ASSERT_EQUAL(mail_store(v, uids, 10, MAIL_STORE_ADD, MAIL_F_SEEN, NULL, 0), 0);
	r->store_rows = agw_count_rows_read(e.cw);
	e.clk.now += 5000;
	agw_count_reset(e.cw);
	CU_ASSERT_EQUAL(eu_append_n(mb, 1, 0), 0);
	r->append_rows = agw_count_rows_read(e.cw);
	/* SELECT in another daemon that never opened it (checkpoints and the
	 * quiet-mailbox rule bound what it reads) */
	e.clk.now += OPLOG_CKPT_IDLE_MS + 1000;
	if (oplog_idle_checkpoint_due(&mb->log, e.clk.now))
		CU_ASSERT_EQUAL(mail_mailbox_checkpoint(mb, 1), 0);
	struct mail_engine *other = eu_env_engine(&e, 62);
	agw_count_reset(e.cw);
	struct mail_mailbox *om = eu_box(other, "ros", "INBOX", 0);
	CU_ASSERT_EQUAL_FATAL(mail_view_open(om, 1, &v2), 0);
	r->cold_select_rows = agw_count_rows_read(e.cw);
	CU_ASSERT_EQUAL(mail_view_exists(v2), 1001);
	mail_view_close(v2);
	mail_mailbox_close(om);
	mail_engine_free(other);
	mail_view_close(v);
	mail_mailbox_close(mb);
	eu_env_close(&e);
}

static void test_rows_per_command(void)
{
	struct reads a, b;
	reads_after(1000, &a);
	reads_after(10000, &b);
	const char *const names[] = { "NOOP", "log", "STATUS", "SELECT", "STORE", "APPEND", "cold SELECT" };
	const uint64_t x[] = { a.noop_rows, a.noop_log, a.status_rows, a.select_rows, a.store_rows, a.append_rows,
		               a.cold_select_rows };
	const uint64_t y[] = { b.noop_rows, b.noop_log, b.status_rows, b.select_rows, b.store_rows, b.append_rows,
		               b.cold_select_rows };
	print_counts("rows read after 1,000 / 10,000 flag changes", 7, names, x, y);
	/* a NOOP on an unchanged mailbox reads no log row (the watch row only) */
	CU_ASSERT_EQUAL(a.noop_log, 0);
	CU_ASSERT_EQUAL(b.noop_log, 0);
	CU_ASSERT(b.noop_rows <= 1);
	/* nothing grows with the history */
	CU_ASSERT_EQUAL(a.status_rows, b.status_rows);
	CU_ASSERT_EQUAL(a.select_rows, b.select_rows);
	CU_ASSERT_EQUAL(a.store_rows, b.store_rows);
	CU_ASSERT_EQUAL(a.append_rows, b.append_rows);
	/* a daemon that never opened it: list row, checkpoint, watch row and
	 * a tail too short for a checkpoint of its own */
	CU_ASSERT(a.cold_select_rows <= 3 + OPLOG_CKPT_IDLE_MIN);
	CU_ASSERT(b.cold_select_rows <= 3 + OPLOG_CKPT_IDLE_MIN);
	CU_ASSERT(b.status_rows <= 4);
	CU_ASSERT(b.select_rows <= 4);
	CU_ASSERT(b.store_rows <= 4);
	CU_ASSERT(b.append_rows <= 8);
}

/* Non-blocking mode: what an event loop may call inline. */
static void test_nonblock(void)
{
	struct eu_env e;
	/* a store whose calls go over a network, as far as the engine knows */
	env_open_hiding(&e, 63, AEROGRAM_CAP_LOCAL_READS | AEROGRAM_CAP_LOCAL_WRITES);
	struct mail_mailbox *mb = eu_box(e.eng, "nob", "INBOX", 3);
	struct mail_view *v = eu_view(mb);
	uint32_t uids[] = { 1, 2, 3 };
	/* every call that would wait fails at once, changing nothing */
	mail_nonblock(1);
	struct mail_changes *c = NULL;
	struct mail_summary *sm = NULL;
	struct mail_body *bd = NULL;
	CU_ASSERT_EQUAL(mail_store(v, uids, 1, MAIL_STORE_ADD, MAIL_F_SEEN, NULL, 0), MAIL_EAGAIN);
	/* a body in the engine's cache (the APPEND put it there) needs no store */
	CU_ASSERT_EQUAL_FATAL(mail_bodies(v, uids, 1, &bd), 0);
	CU_ASSERT_EQUAL(bd[0].status, 0);
	mail_bodies_free(bd, 1);
	/* one that is not would be read from the store */
	bcache_free(e.eng->bodies);
	e.eng->bodies = bcache_new(1 << 20);
	CU_ASSERT_EQUAL(mail_bodies(v, uids, 1, &bd), MAIL_EAGAIN);
	CU_ASSERT_EQUAL(eu_append_n(mb, 1, 0), -1);
	struct mail_mailbox *m2;
	CU_ASSERT_EQUAL(mail_mailbox_open(e.eng, "nob", "INBOX", &m2), MAIL_EAGAIN);
	/* without a live watch the state may be stale: the update would read */
	CU_ASSERT_EQUAL(mail_view_update(v, 0, &c), MAIL_EAGAIN);
	CU_ASSERT(mail_nonblock_hit());
	/* summaries come from the cache (filled by the appends) */
	mail_nonblock(1);
	CU_ASSERT_EQUAL(mail_summaries(v, uids, 3, &sm), 0);
	CU_ASSERT(!mail_nonblock_hit());
	mail_summaries_free(sm, 3);
	mail_nonblock(0);
	struct mail_status st;
	CU_ASSERT_EQUAL(mail_mailbox_status(mb, &st), 0);
	CU_ASSERT_EQUAL(st.exists, 3);
	CU_ASSERT_EQUAL(mail_view_exists(v), 3);
	/* a summary not in the cache is a store read: another engine's view */
	struct mail_engine *other = eu_env_engine(&e, 64);
	struct mail_mailbox *om;
	struct mail_view *ov;
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(other, "nob", "INBOX", &om), 0);
	ov = eu_view(om);
	mail_nonblock(1);
	CU_ASSERT_EQUAL(mail_summaries(ov, uids, 3, &sm), MAIL_EAGAIN);
	mail_nonblock(0);
	CU_ASSERT_EQUAL_FATAL(mail_summaries(ov, uids, 3, &sm), 0);
	mail_summaries_free(sm, 3);
	mail_nonblock(1);
	CU_ASSERT_EQUAL(mail_summaries(ov, uids, 3, &sm), 0); /* now cached */
	mail_nonblock(0);
	mail_summaries_free(sm, 3);
	mail_view_close(ov);
	mail_mailbox_close(om);
	mail_engine_free(other);
	mail_view_close(v);
	mail_mailbox_close(mb);
	eu_env_close(&e);

	/* With a poller, a view update on a mailbox whose watch is live and
	 * quiet needs nothing from the store: it succeeds inline. */
	eu_env_open(&e, 65);
	struct mail_engine_options o = eu_options(NULL, 66);
	o.clock_ms = NULL;
	o.clock_arg = NULL;
	o.sleep_ms = NULL;
	o.no_poller = 0;
	struct mail_engine *pe = NULL;
	CU_ASSERT_EQUAL_FATAL(mail_engine_new(&e.st, &o, &pe), 0);
	mb = eu_box(pe, "nob", "INBOX", 2);
	v = eu_view(mb);
	/* wait (generously) for the poller to arm the watch and take in our
	 * own writes: an event, not a duration */
	int ok = 0;
	for (int i = 0; i < 6000 && !ok; i++) {
		mail_nonblock(1);
		int rc = mail_view_update(v, 0, &c);
		mail_nonblock(0);
		if (rc == 0) {
			ok = 1;
			CU_ASSERT_EQUAL(c->n_flags + c->n_expunged, 0);
			mail_changes_free(c);
		} else {
			CU_ASSERT_EQUAL(rc, MAIL_EAGAIN);
			usleep(10000);
		}
	}
	CU_ASSERT(ok);
	mail_view_close(v);
	mail_mailbox_close(mb);
	mail_engine_free(pe);
	eu_env_close(&e);

	/* A store whose calls are all local (the memory driver): reads and
	 * flag changes run inline, within a budget; adds never do. */
	eu_env_open(&e, 70);
	mb = eu_box(e.eng, "nob", "INBOX", 3);
	v = eu_view(mb);
	mail_nonblock(1);
	CU_ASSERT_EQUAL(mail_bodies(v, uids, 3, &bd), 0);
	mail_bodies_free(bd, 3);
	CU_ASSERT_EQUAL(mail_store(v, uids, 2, MAIL_STORE_ADD, MAIL_F_SEEN, NULL, 0), 0);
	CU_ASSERT(!mail_nonblock_hit());
	CU_ASSERT(!mail_is_nonblock()); /* a write happened: no throwing away from here on */
	CU_ASSERT_EQUAL(mail_view_update(v, 0, &c), 0);
	CU_ASSERT_EQUAL(c->n_flags, 2);
	mail_changes_free(c);
	mail_nonblock(1);
	CU_ASSERT_EQUAL(eu_append_n(mb, 1, 0), -1);
	CU_ASSERT(mail_nonblock_hit());
	/* the budget: a long run of reads goes to a worker, even of bodies
	 * in the cache (read here once, in blocking mode) */
	mail_nonblock(0);
	CU_ASSERT_EQUAL_FATAL(mail_bodies(v, uids, 3, &bd), 0);
	mail_bodies_free(bd, 3);
	mail_nonblock(1);
	int rc = 0, calls = 0;
	for (int i = 0; i < 1000 && rc == 0; i++) {
		rc = mail_bodies(v, uids, 3, &bd);
		if (rc == 0) {
			calls++;
			mail_bodies_free(bd, 3);
		}
	}
	CU_ASSERT_EQUAL(rc, MAIL_EAGAIN);
	CU_ASSERT(calls > 10); /* the first ones were served from memory */
	/* a lock held by another thread across a store call: not waited for */
	pthread_mutex_lock(&mb->lock);
	mail_nonblock(1);
	CU_ASSERT_EQUAL(mail_store(v, uids, 1, MAIL_STORE_ADD, MAIL_F_FLAGGED, NULL, 0), MAIL_EAGAIN);
	mail_nonblock(0);
	pthread_mutex_unlock(&mb->lock);
	mail_view_close(v);
	mail_mailbox_close(mb);
	eu_env_close(&e);
}

/* An add written late whose writer died before announcing it: a reader
 * whose window passed it learns of it from a later add whose writer had it
 * (its `seen` is above what the reader holds), and reads again: a view
 * never shows an add without every add before it. */
static void test_unannounced_late_add(void)
{
	struct eu_env e;
	eu_env_open(&e, 67);
	struct mail_engine *b = eu_env_engine(&e, 68);
	struct mail_mailbox *ma, *mb;
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(e.eng, "lat", "INBOX", &ma), 0);
	CU_ASSERT_EQUAL(append_ticking(&e, ma, 3, 100), 0);
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(b, "lat", "INBOX", &mb), 0);
	e.clk.now += 10000;
	/* a flag change now: b reads it, so b's window moves past the moment
	 * the late add will claim */
	struct mail_view *av = eu_view(ma);
	uint32_t one = 1;
	CU_ASSERT_EQUAL(mail_store(av, &one, 1, MAIL_STORE_ADD, MAIL_F_FLAGGED, NULL, 0), 0);
	mail_view_close(av);
	e.clk.now += 10000;
	CU_ASSERT_EQUAL(mail_mailbox_sync(mb), 0);
	/* the late add: timestamp 5 s back, written straight to the store,
	 * no LATE marker, no watch row */
	struct uidx_op *op = calloc(1, sizeof(*op));
	op->kind = UIDX_OP_ADD;
	op->n = 1;
	op->ids = calloc(1, UIDX_ID);
	op->item_flags = calloc(1, sizeof(uint64_t));
	memset(op->ids[0], 0x6c, UIDX_ID);
	pthread_mutex_lock(&ma->lock);
	op->seen_uidnext = ma->log.cur->uidnext;
	struct ag_ts late = ma->log.newest;
	pthread_mutex_unlock(&ma->lock);
	late.ms -= 5000; /* before the flag change b has read */
	late.rnd = 7;
	struct cbuf cb = { 0 };
	CU_ASSERT_EQUAL_FATAL(codec_op_encode(op, &cb), 0);
	uidx_op_free(op);
	char sk[AG_TS_HEX + 1], pk[128];
	ts_format(late, sk);
	snprintf(pk, sizeof(pk), "lat/index/%s", mail_mailbox_id(ma));
	struct aerogram_row_write w = { pk, sk, NULL, cb.p, cb.len, 0 };
	CU_ASSERT_EQUAL(e.st.driver->row_insert(e.st.store, &w, 1), 0);
	free(cb.p);
	/* a daemon that reads everything (a fresh one) has it, and adds */
	struct mail_engine *c = eu_env_engine(&e, 69);
	struct mail_mailbox *mc = eu_box(c, "lat", "INBOX", 0);
	struct mail_status st;
	mail_mailbox_status(mc, &st);
	CU_ASSERT_EQUAL(st.exists, 4);
	uint32_t uv = 0, uid = 0;
	struct mail_new_message m = { .body = (const uint8_t *)"x", .body_len = 1 };
	e.clk.now += 100;
	CU_ASSERT_EQUAL(mail_append(mc, &m, &uv, &uid), 0);
	CU_ASSERT_EQUAL(uid, 5);
	/* b reads c's add (in its window) but not the late one: it must find
	 * it before showing anything */
	unsigned long warn = eu_warnings;
	CU_ASSERT_EQUAL(mail_mailbox_sync(mb), 0);
	CU_ASSERT(eu_warnings > warn); /* "an add is missing before another" */
	struct mail_status sb;
	mail_mailbox_status(mb, &sb);
	CU_ASSERT_EQUAL(sb.exists, 5);
	CU_ASSERT_EQUAL(sb.uidnext, 6);
	CU_ASSERT_EQUAL(sb.uidvalidity, uv);
	struct mail_view *v = eu_view(mb);
	struct mail_msg_info info;
	CU_ASSERT_EQUAL(mail_view_msg(v, 4, &info), 0);
	CU_ASSERT_EQUAL(info.uid, 4);
	CU_ASSERT_STRING_EQUAL(info.id, "6c6c6c6c6c6c6c6c6c6c6c6c6c6c6c6c");
	mail_view_close(v);
	mail_mailbox_close(mc);
	mail_engine_free(c);
	mail_mailbox_close(ma);
	mail_mailbox_close(mb);
	mail_engine_free(b);
	eu_env_close(&e);
}

/* ----------------------------------------------------------- checkpoints */

/* Appends n messages, the clock moving tick_ms before each. */
static int append_ticking(struct eu_env *e, struct mail_mailbox *mb, int n, uint64_t tick_ms)
{
	for (int i = 0; i < n; i++) {
		e->clk.now += tick_ms;
		if (eu_append_n(mb, 1, 0) != 0)
			return -1;
	}
	return 0;
}

static void test_checkpoint_tail(void)
{
	struct eu_env e;
	eu_env_open(&e, 29);
	struct mail_mailbox *mb = eu_box(e.eng, "hal", "INBOX", 0);
	char pfx[160];
	snprintf(pfx, sizeof(pfx), "hal/index/%s/checkpoint/", mail_mailbox_id(mb));
	/* the size rule: a tail worth OPLOG_CKPT_FLOOR_BYTES gets a checkpoint
	 * by itself, without anyone asking */
	CU_ASSERT_EQUAL_FATAL(append_ticking(&e, mb, 600, 10), 0);
	CU_ASSERT(count_blobs(&e, pfx) >= 1);
	CU_ASSERT(mb->log.tail_bytes < OPLOG_CKPT_FLOOR_BYTES + 200);
	/* quiet long enough: a checkpoint of everything */
	e.clk.now += OPLOG_CKPT_IDLE_MS + 1000;
	CU_ASSERT(oplog_idle_checkpoint_due(&mb->log, e.clk.now));
	CU_ASSERT_EQUAL(mail_mailbox_checkpoint(mb, 1), 0);
	CU_ASSERT_EQUAL(mb->log.tail_n, 0);
	CU_ASSERT(!oplog_idle_checkpoint_due(&mb->log, e.clk.now));
	CU_ASSERT_EQUAL(append_ticking(&e, mb, OPLOG_CKPT_IDLE_MIN - 1, 10), 0);
	e.clk.now += OPLOG_CKPT_IDLE_MS + 1000;
	CU_ASSERT(!oplog_idle_checkpoint_due(&mb->log, e.clk.now)); /* too few to be worth it */
	CU_ASSERT_EQUAL(append_ticking(&e, mb, 10 - (OPLOG_CKPT_IDLE_MIN - 1), 10), 0);
	struct mail_status st;
	mail_mailbox_status(mb, &st);

	struct mail_engine *fresh = eu_env_engine(&e, 30);
	struct mail_mailbox *fm;
	agw_count_reset(e.cw);
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(fresh, "hal", "INBOX", &fm), 0);
	CU_ASSERT_EQUAL(calls(&e, AGW_BLOB_GET), 1);
	CU_ASSERT(fm->log.ckpt_loaded);
	/* only the tail after the checkpoint is read: the 10 late appends */
	CU_ASSERT_EQUAL(fm->log.last_sync_rows, 10);
	struct mail_status st2;
	mail_mailbox_status(fm, &st2);
	CU_ASSERT_EQUAL(st2.exists, st.exists);
	CU_ASSERT_EQUAL(st2.uidnext, st.uidnext);
	CU_ASSERT_EQUAL(st2.highestmodseq, st.highestmodseq);
	mail_mailbox_close(fm);

	/* the newest checkpoint corrupt: fall back to the older one (logged) */
	e.clk.now += OPLOG_CKPT_IDLE_MS + 1000;
	CU_ASSERT_EQUAL(mail_mailbox_checkpoint(mb, 1), 0);
	char **keys;
	size_t nk;
	CU_ASSERT_EQUAL_FATAL(mail_list_blobs(e.eng, pfx, &keys, &nk), 0);
	CU_ASSERT_FATAL(nk >= 2);
	CU_ASSERT_EQUAL(e.st.driver->blob_put(e.st.store, keys[nk - 1], (const uint8_t *)"junk", 4, NULL, 0), 0);
	mail_free_strv(keys, nk);
	unsigned long w = eu_warnings;
	struct mail_engine *fresh2 = eu_env_engine(&e, 31);
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(fresh2, "hal", "INBOX", &fm), 0);
	CU_ASSERT(eu_warnings > w);
	mail_mailbox_status(fm, &st2);
	CU_ASSERT_EQUAL(st2.exists, st.exists);
	CU_ASSERT_EQUAL(st2.uidnext, st.uidnext);
	mail_mailbox_close(fm);
	mail_engine_free(fresh2);

	/* an empty log after a checkpoint that covers everything */
	CU_ASSERT_EQUAL(eu_append_n(mb, 1, 0), 0);
	CU_ASSERT_EQUAL(mail_mailbox_checkpoint(mb, 2), 0);
	mail_mailbox_status(mb, &st);
	struct mail_engine *fresh3 = eu_env_engine(&e, 32);
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(fresh3, "hal", "INBOX", &fm), 0);
	CU_ASSERT_EQUAL(fm->log.last_sync_rows, 0);
	mail_mailbox_status(fm, &st2);
	CU_ASSERT_EQUAL(st2.exists, st.exists);
	mail_mailbox_close(fm);
	mail_engine_free(fresh3);

	/* collection: the newest three stay, and of the older ones only the
	 * newest one past the retention; log rows before the oldest kept and
	 * older than the retention go */
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(append_ticking(&e, mb, 2, 1000), 0);
		CU_ASSERT_EQUAL(mail_mailbox_checkpoint(mb, 2), 0);
	}
	CU_ASSERT_EQUAL(count_blobs(&e, pfx), OPLOG_CHECKPOINTS_TO_KEEP);
	e.clk.now += OPLOG_RETAIN_MS + 60000;
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(append_ticking(&e, mb, 2, 1000), 0);
		CU_ASSERT_EQUAL(mail_mailbox_checkpoint(mb, 2), 0);
	}
	CU_ASSERT_EQUAL(count_blobs(&e, pfx), OPLOG_CHECKPOINTS_TO_KEEP + 1);
	char pk[128];
	snprintf(pk, sizeof(pk), "hal/index/%s", mail_mailbox_id(mb));
	CU_ASSERT(count_rows(&e, pk) <= 10);
	eu_check_fresh_engine(&e, 33, "hal", "INBOX", mb);
	mail_mailbox_close(mb);
	mail_engine_free(fresh);
	eu_env_close(&e);
}

/* A flag change on a whole mailbox is one large entry: a few of them are
 * enough for a checkpoint, so that no open replays them for long. */
static void test_checkpoint_large_entries(void)
{
	struct eu_env e;
	eu_env_open(&e, 34);
	struct mail_mailbox *mb = eu_box(e.eng, "ian", "INBOX", 0);
	CU_ASSERT_EQUAL_FATAL(append_ticking(&e, mb, 1000, 5), 0);
	e.clk.now += OPLOG_CKPT_IDLE_MS + 1000;
	CU_ASSERT_EQUAL(mail_mailbox_checkpoint(mb, 1), 0);
	CU_ASSERT_EQUAL(mb->log.tail_n, 0);
	struct mail_view *v = eu_view(mb);
	uint32_t n;
	uint32_t *uids = eu_view_uids(v, &n);
	size_t max_tail = 0;
	for (int i = 0; i < 40; i++) {
		e.clk.now += 2000;
		CU_ASSERT_EQUAL(mail_store(v, uids, n, i & 1 ? MAIL_STORE_REMOVE : MAIL_STORE_ADD, MAIL_F_FLAGGED,
		                           NULL, 0), 0);
		if (mb->log.tail_n > max_tail)
			max_tail = mb->log.tail_n;
	}
	/* each entry is ~17 KB for 1,000 messages: the tail never holds more
	 * than what a quarter of the state (or the floor) allows, plus one */
	if (max_tail > 3)
		printf("\n  max tail %zu, state %zu bytes, tail %llu bytes\n", max_tail, mb->log.state_bytes,
		       (unsigned long long)mb->log.tail_bytes);
	CU_ASSERT(max_tail <= 3);
	free(uids);
	mail_view_close(v);
	mail_mailbox_close(mb);
	eu_env_close(&e);
}

static void test_log_sibling(void)
{
	struct eu_env e;
	eu_env_open(&e, 37);
	struct mail_engine *e2 = eu_env_engine(&e, 38);
	struct mail_mailbox *m1, *m2;
	m1 = eu_box(e.eng, "ivy", "INBOX", 2);
	/* a second value on the first log row: both engines pick the same */
	char pk[128];
	snprintf(pk, sizeof(pk), "ivy/index/%s", mail_mailbox_id(m1));
	struct aerogram_row_query q = { .pk = pk, .end = "watch" };
	struct aerogram_row_result *res;
	CU_ASSERT_EQUAL_FATAL(e.st.driver->row_read(e.st.store, &q, 1, &res), 0);
	char sk[64];
	snprintf(sk, sizeof(sk), "%s", res->pages[0].rows[0].sk);
	e.st.driver->row_result_free(e.st.store, res);
	struct uidx_op *op = add_op(1, 1, 0x77);
	struct cbuf b = { 0 };
	codec_op_encode(op, &b);
	struct aerogram_row_write w = { pk, sk, NULL, b.p, b.len, 0 };
	CU_ASSERT_EQUAL(e.st.driver->row_insert(e.st.store, &w, 1), 0);
	free(b.p);
	uidx_op_free(op);
	unsigned long warn = eu_warnings;
	CU_ASSERT_EQUAL(mail_mailbox_sync(m1), 0);
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(e2, "ivy", "INBOX", &m2), 0);
	CU_ASSERT(eu_warnings > warn);
	/* m1 replays from its own history; a fresh engine decides from the store:
	 * m1 re-syncs from scratch to compare */
	eu_check_fresh_engine(&e, 39, "ivy", "INBOX", m2);
	mail_mailbox_close(m1);
	mail_mailbox_close(m2);
	mail_engine_free(e2);
	eu_env_close(&e);
}

/* ------------------------------------------------------ appends, orphans */

static void test_append_failure_and_orphans(void)
{
	struct eu_env e;
	eu_env_open(&e, 41);
	struct mail_mailbox *mb = eu_box(e.eng, "jo", "INBOX", 0);
	/* APPEND's date and flags are kept */
	const char *kw[] = { "$Label1" };
	struct mail_new_message m = { .body = (const uint8_t *)"a\r\n", .body_len = 3,
	                              .internal_date_ms = 86400000, .flags = MAIL_F_SEEN | MAIL_F_DRAFT,
	                              .keywords = kw, .n_keywords = 1,
	                              .header = (const uint8_t *)"H", .header_len = 1 };
	uint32_t uv, uid;
	CU_ASSERT_EQUAL_FATAL(mail_append(mb, &m, &uv, &uid), 0);
	CU_ASSERT_EQUAL(uid, 1);
	struct mail_view *v = eu_view(mb);
	struct mail_msg_info info;
	CU_ASSERT_EQUAL(mail_view_msg(v, 1, &info), 0);
	CU_ASSERT_EQUAL(info.flags, MAIL_F_SEEN | MAIL_F_DRAFT);
	CU_ASSERT_STRING_EQUAL(mail_view_keyword(v, 0), "$Label1");
	struct mail_summary *sm;
	CU_ASSERT_EQUAL_FATAL(mail_summaries(v, &uid, 1, &sm), 0);
	CU_ASSERT_EQUAL(sm[0].internal_date_ms, 86400000);
	CU_ASSERT_EQUAL(sm[0].size, 3);
	mail_summaries_free(sm, 1);

	/* a second append, then one whose summary write fails: the body stays
	 * behind as an orphan and nothing is visible */
	struct mail_new_message m2 = m;
	m2.n_keywords = 0;
	CU_ASSERT_EQUAL(mail_append(mb, &m2, NULL, NULL), 0);
	agw_fault_fail(e.fw, AGW_MASK(AGW_ROW_INSERT) | AGW_MASK(AGW_ROW_INSERT_IF), AEROGRAM_EPERM, 1.0, 1);
	CU_ASSERT_EQUAL(mail_append(mb, &m2, NULL, NULL), AEROGRAM_EPERM);
	agw_fault_clear(e.fw);
	struct mail_status st;
	CU_ASSERT_EQUAL(mail_mailbox_sync(mb), 0);
	mail_mailbox_status(mb, &st);
	CU_ASSERT_EQUAL(st.exists, 2);
	/* a young orphan is left alone; an old one goes; live ones stay */
	uint32_t del = 1;
	CU_ASSERT_EQUAL(mail_expunge(v, &del, 1), 0);
	uint64_t removed = 0;
	CU_ASSERT_EQUAL(mail_collect_orphans(e.eng, "jo", "INBOX", 3600 * 1000, &removed), 0);
	CU_ASSERT_EQUAL(removed, 0);
	e.clk.now += 3600 * 1000 + 1;
	CU_ASSERT_EQUAL(mail_collect_orphans(e.eng, "jo", "INBOX", 3600 * 1000, &removed), 0);
	CU_ASSERT_EQUAL(removed, 2); /* the expunged message and the failed append's body */
	char pfx[160];
	snprintf(pfx, sizeof(pfx), "jo/mail/%s/", mail_mailbox_id(mb));
	mail_mailbox_status(mb, &st);
	CU_ASSERT_EQUAL(count_blobs(&e, pfx), st.exists);
	mail_view_close(v);
	mail_mailbox_close(mb);
	eu_env_close(&e);
}

/* The contents of expunged (and moved) messages go after the grace period,
 * so that a session still reading an older snapshot finds them meanwhile. */
static void test_expunged_contents_removed(void)
{
	struct eu_env e;
	eu_env_open(&e, 44);
	struct mail_mailbox *mb, *dst;
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(e.eng, "kit", "INBOX", &mb), 0);
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(e.eng, "kit", "Archive", &dst), 0);
	CU_ASSERT_EQUAL(eu_append_n(mb, 4, 0), 0);
	struct mail_view *v = eu_view(mb);
	uint32_t gone[] = { 1, 2 }, moved[] = { 3 }, out[1], uv;
	CU_ASSERT_EQUAL(mail_expunge(v, gone, 2), 0);
	CU_ASSERT_EQUAL(mail_move(v, moved, 1, dst, &uv, out), 0);
	char pfx[160], pk[128];
	snprintf(pfx, sizeof(pfx), "kit/mail/%s/", mail_mailbox_id(mb));
	snprintf(pk, sizeof(pk), "kit/mail/%s", mail_mailbox_id(mb));
	/* still there for a while: the old snapshot can read them (the test
	 * store hides AEROGRAM_CAP_PRIVATE: a shared store's grace, longer
	 * than a private one's) */
	mail_reap_due(e.eng, 0);
	CU_ASSERT_EQUAL(count_blobs(&e, pfx), 4);
	e.clk.now += MAIL_REAP_GRACE_PRIVATE_MS + 1000;
	mail_reap_due(e.eng, 0);
	CU_ASSERT_EQUAL(count_blobs(&e, pfx), 4);
	struct mail_body *bd;
	CU_ASSERT_EQUAL_FATAL(mail_bodies(v, gone, 2, &bd), 0);
	CU_ASSERT_EQUAL(bd[0].status, 0);
	mail_bodies_free(bd, 2);
	e.clk.now += MAIL_REAP_GRACE_MS + 1000;
	mail_reap_due(e.eng, 0);
	CU_ASSERT_EQUAL(count_blobs(&e, pfx), 1);
	CU_ASSERT_EQUAL(count_rows(&e, pk), 1);
	CU_ASSERT_EQUAL_FATAL(mail_bodies(v, gone, 2, &bd), 0);
	CU_ASSERT_EQUAL(bd[0].status, AEROGRAM_ENOTFOUND);
	mail_bodies_free(bd, 2);
	/* the moved message lives on in the destination */
	struct mail_view *dv = eu_view(dst);
	CU_ASSERT_EQUAL_FATAL(mail_bodies(dv, out, 1, &bd), 0);
	CU_ASSERT_EQUAL(bd[0].status, 0);
	mail_bodies_free(bd, 1);
	mail_view_close(dv);
	mail_view_close(v);
	mail_mailbox_close(mb);
	mail_mailbox_close(dst);
	eu_env_close(&e);
}

/* On a store private to this process (the memory driver itself, without
 * the wrappers), only this engine's commands can be reading an expunged
 * message: its contents go after the short grace. */
static void test_private_store_short_grace(void)
{
	struct ag_driver *drv = eu_load_memory();
	struct ag_store *st = ag_driver_store(drv);
	CU_ASSERT_FATAL((st->driver->capabilities & AEROGRAM_CAP_PRIVATE) != 0);
	struct eu_clock clk = { .now = 1750000000000ull };
	struct mail_engine_options o = eu_options(&clk, 45);
	struct mail_engine *eng;
	CU_ASSERT_FATAL(mail_engine_new(st, &o, &eng) == 0);
	CU_ASSERT_EQUAL(eng->grace_ms, MAIL_REAP_GRACE_PRIVATE_MS);
	struct mail_mailbox *mb;
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(eng, "pia", "INBOX", &mb), 0);
	CU_ASSERT_EQUAL(eu_append_n(mb, 3, 0), 0);
	struct mail_view *v = eu_view(mb);
	uint32_t gone[] = { 2 };
	CU_ASSERT_EQUAL(mail_expunge(v, gone, 1), 0);
	struct mail_body *bd;
	clk.now += MAIL_REAP_GRACE_PRIVATE_MS - 1000;
	mail_reap_due(eng, 0);
	CU_ASSERT_EQUAL_FATAL(mail_bodies(v, gone, 1, &bd), 0);
	CU_ASSERT_EQUAL(bd[0].status, 0); /* within the grace: still read */
	mail_bodies_free(bd, 1);
	clk.now += 2000;
	mail_reap_due(eng, 0);
	CU_ASSERT_EQUAL_FATAL(mail_bodies(v, gone, 1, &bd), 0);
	CU_ASSERT_EQUAL(bd[0].status, AEROGRAM_ENOTFOUND);
	mail_bodies_free(bd, 1);
	char **keys;
	size_t n = 0;
	char pfx[160];
	snprintf(pfx, sizeof(pfx), "pia/mail/%s/", mail_mailbox_id(mb));
	CU_ASSERT_EQUAL(mail_list_blobs(eng, pfx, &keys, &n), 0);
	mail_free_strv(keys, n);
	CU_ASSERT_EQUAL(n, 2);
	mail_view_close(v);
	mail_mailbox_close(mb);
	mail_engine_free(eng);
	ag_driver_unload(drv);
}

/* Failed after the summary: the body and summary stay as orphans, collected later. */
static void test_orphan_from_failed_log_write(void)
{
	struct eu_env e;
	eu_env_open(&e, 43);
	struct mail_mailbox *mb = eu_box(e.eng, "kim", "INBOX", 1);
	struct mail_new_message m = { .body = (const uint8_t *)"x", .body_len = 1 };
	char pfx[160], pk[128];
	snprintf(pfx, sizeof(pfx), "kim/mail/%s/", mail_mailbox_id(mb));
	snprintf(pk, sizeof(pk), "kim/mail/%s", mail_mailbox_id(mb));
	if (eu_no_cas) {
		/* the summary goes with the claim; the read under the claim fails,
		 * so the log entry never comes */
		agw_fault_fail_next(e.fw, AGW_MASK(AGW_ROW_READ), AEROGRAM_EUNAVAILABLE, 1);
		CU_ASSERT_NOT_EQUAL(mail_append(mb, &m, NULL, NULL), 0);
		agw_fault_clear(e.fw);
		CU_ASSERT_EQUAL(count_blobs(&e, pfx), 2);
		CU_ASSERT_EQUAL(count_rows(&e, pk), 2);
	} else {
		/* the summary and the entry are one batch: all or nothing */
		agw_fault_fail(e.fw, AGW_MASK(AGW_ROW_INSERT_IF), AEROGRAM_EUNAVAILABLE, 1.0, 1);
		CU_ASSERT_NOT_EQUAL(mail_append(mb, &m, NULL, NULL), 0);
		agw_fault_clear(e.fw);
		CU_ASSERT_EQUAL(count_blobs(&e, pfx), 2);
		CU_ASSERT_EQUAL(count_rows(&e, pk), 1);
	}
	struct mail_status st;
	mail_mailbox_sync(mb);
	mail_mailbox_status(mb, &st);
	CU_ASSERT_EQUAL(st.exists, 1);
	e.clk.now += 7200 * 1000;
	uint64_t removed = 0;
	CU_ASSERT_EQUAL(mail_collect_orphans(e.eng, "kim", "INBOX", 3600 * 1000, &removed), 0);
	CU_ASSERT_EQUAL(removed, 1);
	CU_ASSERT_EQUAL(count_blobs(&e, pfx), 1);
	CU_ASSERT_EQUAL(count_rows(&e, pk), 1);
	/* the claim was given back: the next add takes the turn at once */
	CU_ASSERT_EQUAL(eu_append_n(mb, 1, 0), 0);
	CU_ASSERT_EQUAL(mb->log.turn_waits, 0);
	mail_mailbox_close(mb);
	eu_env_close(&e);
}

/* ---------------------------------------------------------------- copy */

static void test_copy_move(void)
{
	struct eu_env e;
	eu_env_open(&e, 47);
	struct mail_mailbox *src, *dst;
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(e.eng, "lee", "INBOX", &src), 0);
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(e.eng, "lee", "Archive", &dst), 0);
	CU_ASSERT_EQUAL(eu_append_n(src, 4, MAIL_F_FLAGGED), 0);
	struct mail_view *v = eu_view(src);
	uint32_t uids[] = { 1, 3 }, out[2], uv;
	agw_count_reset(e.cw);
	CU_ASSERT_EQUAL(mail_copy(v, uids, 2, dst, &uv, out), 0);
	CU_ASSERT_EQUAL(out[0], 1);
	CU_ASSERT_EQUAL(out[1], 2);
	CU_ASSERT_EQUAL(calls(&e, AGW_BLOB_COPY), 2);
	if (e.eng->cas) { /* one conditional batch: 2 summaries, the entry, the watch */
		CU_ASSERT_EQUAL(agw_count_items(e.cw, AGW_ROW_INSERT_IF), 4);
	} else { /* claim + 2 summaries, the entry, the watch + release */
		CU_ASSERT_EQUAL(agw_count_items(e.cw, AGW_ROW_INSERT), 6);
	}
	uint32_t mv[] = { 2 };
	CU_ASSERT_EQUAL(mail_move(v, mv, 1, dst, &uv, out), 0);
	CU_ASSERT_EQUAL(out[0], 3);
	struct mail_status st;
	mail_mailbox_status(src, &st);
	CU_ASSERT_EQUAL(st.exists, 3);
	mail_mailbox_status(dst, &st);
	CU_ASSERT_EQUAL(st.exists, 3);
	struct mail_view *dv = eu_view(dst);
	struct mail_msg_info info;
	CU_ASSERT_EQUAL(mail_view_msg(dv, 3, &info), 0);
	CU_ASSERT_EQUAL(info.flags, MAIL_F_FLAGGED);
	uint32_t all[] = { 1, 2, 3 };
	struct mail_body *bd;
	CU_ASSERT_EQUAL_FATAL(mail_bodies(dv, all, 3, &bd), 0);
	CU_ASSERT(bd[2].status == 0 && bd[2].len > 0 && memcmp(bd[2].data, "Subject: 1", 10) == 0);
	mail_bodies_free(bd, 3);
	mail_view_close(dv);
	mail_view_close(v);
	mail_mailbox_close(src);
	mail_mailbox_close(dst);
	eu_env_close(&e);
}

/* ------------------------------------------ undelete, expunge retention */

#define DAY_MS (24ull * 3600 * 1000)

/* A checkpoint keeps the recently expunged messages (version 4); corrupt
 * or truncated ones are refused. */
static void test_codec_state_expunged(void)
{
	struct uidx_state *s = uidx_new();
	s->keep_expunged = 1;
	struct uidx_op *op = sample_op();
	op->ts.ms = 1000;
	uidx_apply(s, op);
	struct uidx_op *del = eu_del_op(2);
	memcpy(del->ids[0], op->ids[0], UIDX_ID);
	memcpy(del->ids[1], op->ids[2], UIDX_ID);
	del->ts.ms = 5000;
	uidx_apply(s, del);
	CU_ASSERT_EQUAL_FATAL(s->n_expunged, 2);
	CU_ASSERT_EQUAL(s->expunged[1].uid, 3);
	CU_ASSERT_EQUAL(s->expunged[1].at, 5000);
	/* a moved message is not listed */
	struct uidx_op *mv = eu_del_op(1);
	mv->flags = UIDX_DEL_MOVED;
	memcpy(mv->ids[0], op->ids[1], UIDX_ID);
	mv->ts.ms = 6000;
	uidx_apply(s, mv);
	CU_ASSERT_EQUAL(s->n, 0);
	CU_ASSERT_EQUAL(s->n_expunged, 2);
	struct cbuf b = { 0 };
	struct uidx_state *d = eu_state_roundtrip(s, 5, &b); /* with the expunges by modseq */
	CU_ASSERT_EQUAL_FATAL(d->n_expunged, 2);
	CU_ASSERT_EQUAL(memcmp(d->expunged[0].id, op->ids[0], UIDX_ID), 0);
	CU_ASSERT_EQUAL(d->expunged[0].uid, 1);
	CU_ASSERT_EQUAL(d->expunged[0].flags, s->expunged[0].flags);
	CU_ASSERT_EQUAL(d->expunged[1].flags, s->expunged[1].flags);
	CU_ASSERT_EQUAL(d->expunged[1].at, 5000);
	CU_ASSERT_EQUAL(d->uv_init, 1);
	/* a clone for a session's snapshot leaves it out */
	struct uidx_state *c = uidx_clone_ex(d, 0);
	CU_ASSERT_EQUAL(c->n_expunged, 0);
	uidx_free(c);
	c = uidx_clone(d);
	CU_ASSERT_EQUAL(c->n_expunged, 2);
	uidx_free(c);
	eu_check_state_damage(&b);
	/* without the expunges by modseq, version 4 as before */
	size_t nv = s->n_vanished;
	s->n_vanished = 0;
	struct cbuf b4 = { 0 };
	struct uidx_state *d4 = eu_state_roundtrip(s, 4, &b4);
	CU_ASSERT_EQUAL(d4->n_expunged, 2);
	CU_ASSERT_EQUAL(d4->n_vanished, 0);
	/* it knows no expunge by modseq: all of them are below its floor */
	CU_ASSERT_EQUAL(d4->vanished_floor, d4->highestmodseq);
	CU_ASSERT(d4->highestmodseq > 0);
	uidx_free(d4);
	free(b4.p);
	/* without either list, the state is written as before */
	s->n_expunged = 0;
	struct cbuf b1 = { 0 };
	CU_ASSERT_EQUAL(codec_state_encode(s, &b1), 0);
	CU_ASSERT_NOT_EQUAL(b1.p[1], 4);
	CU_ASSERT_NOT_EQUAL(b1.p[1], 5);
	free(b1.p);
	s->n_vanished = nv;
	free(b.p);
	uidx_free(d);
	uidx_free(s);
	uidx_op_free(op);
	uidx_op_free(del);
	uidx_op_free(mv);
}

/* RFC 7162: every expunge is kept with its modseq, as runs of UIDs, in the
 * state and across checkpoints (version 5), bounded with a floor. */
static void test_codec_state_vanished(void)
{
	struct uidx_state *s = uidx_new();
	struct uidx_op *op = sample_op(); /* 3 messages, UIDs 1..3 */
	uidx_apply(s, op);
	uint64_t after_add = s->highestmodseq;
	struct uidx_op *del = eu_del_op(3);
	memcpy(del->ids[0], op->ids[2], UIDX_ID); /* not in UID order */
	memcpy(del->ids[1], op->ids[0], UIDX_ID);
	memcpy(del->ids[2], op->ids[1], UIDX_ID);
	uidx_apply(s, del);
	CU_ASSERT_EQUAL(s->highestmodseq, after_add + 1);
	/* one run 1..3 at the DEL's modseq; a moved message counts as well */
	CU_ASSERT_EQUAL_FATAL(s->n_vanished, 1);
	CU_ASSERT_EQUAL(s->vanished[0].lo, 1);
	CU_ASSERT_EQUAL(s->vanished[0].hi, 3);
	CU_ASSERT_EQUAL(s->vanished[0].modseq, after_add + 1);
	/* deleting them again changes nothing */
	uidx_apply(s, del);
	CU_ASSERT_EQUAL(s->n_vanished, 1);
	CU_ASSERT_EQUAL(s->highestmodseq, after_add + 1);
	struct cbuf b = { 0 };
	struct uidx_state *d = eu_state_roundtrip(s, 5, &b);
	CU_ASSERT_EQUAL_FATAL(d->n_vanished, 1);
	CU_ASSERT_EQUAL(d->vanished[0].lo, 1);
	CU_ASSERT_EQUAL(d->vanished[0].hi, 3);
	CU_ASSERT_EQUAL(d->vanished[0].modseq, after_add + 1);
	CU_ASSERT_EQUAL(d->vanished_floor, 0);
	/* clones: the state's keep it, a session's snapshot does not */
	struct uidx_state *c = uidx_clone(d);
	CU_ASSERT_EQUAL(c->n_vanished, 1);
	uidx_free(c);
	c = uidx_clone_ex(d, 0);
	CU_ASSERT_EQUAL(c->n_vanished, 0);
	uidx_free(c);
	eu_check_state_damage(&b);
	free(b.p);
	/* Past UIDX_VANISHED_MAX runs the oldest go and the floor says up to
	 * which modseq expunges are no longer known one by one. */
	struct uidx_state *big = uidx_new();
	struct uidx_op *add = calloc(1, sizeof(*add));
	add->kind = UIDX_OP_ADD;
	add->seen_uidnext = 1;
	size_t n_add = 2 * UIDX_VANISHED_MAX + 2;
	add->ids = calloc(n_add, UIDX_ID);
	add->item_flags = calloc(n_add, sizeof(*add->item_flags));
	add->n = n_add;
	big->uidnext = 1;
	for (size_t i = 0; i < n_add; i++) {
		uint32_t v = (uint32_t)i + 1;
		memcpy(add->ids[i], &v, sizeof(v));
		add->ids[i][15] = 0x5a;
	}
	CU_ASSERT_EQUAL_FATAL(uidx_apply(big, add), 0);
	CU_ASSERT_EQUAL_FATAL(big->n, n_add);
	/* every other message, one DEL each: runs of one UID */
	struct uidx_op *d1 = eu_del_op(1);
	for (size_t i = 0; i < n_add; i += 2) {
		memcpy(d1->ids[0], add->ids[i], UIDX_ID);
		CU_ASSERT_EQUAL(uidx_apply(big, d1), 0);
	}
	CU_ASSERT(big->n_vanished <= UIDX_VANISHED_MAX);
	CU_ASSERT(big->n_vanished >= UIDX_VANISHED_MAX / 2);
	CU_ASSERT(big->vanished_floor > 0);
	CU_ASSERT_EQUAL(big->vanished[0].modseq > big->vanished_floor, 1);
	CU_ASSERT_EQUAL(big->vanished[big->n_vanished - 1].modseq, big->highestmodseq);
	CU_ASSERT_EQUAL(big->vanished[big->n_vanished - 1].lo, (uint32_t)n_add - 1);
	struct cbuf bb = { 0 };
	CU_ASSERT_EQUAL(codec_state_encode(big, &bb), 0);
	struct uidx_state *bd = NULL;
	CU_ASSERT_EQUAL_FATAL(codec_state_decode(bb.p, bb.len, &bd), 0);
	CU_ASSERT_EQUAL(bd->vanished_floor, big->vanished_floor);
	CU_ASSERT_EQUAL_FATAL(bd->n_vanished, big->n_vanished);
	CU_ASSERT_EQUAL(memcmp(bd->vanished, big->vanished, big->n_vanished * sizeof(*big->vanished)), 0);
	/* the cost the README states: bytes per run in the checkpoint */
	size_t keep_n = big->n_vanished;
	uint64_t keep_floor = big->vanished_floor;
	big->n_vanished = 0;
	big->vanished_floor = 0;
	struct cbuf without = { 0 };
	CU_ASSERT_EQUAL(codec_state_encode(big, &without), 0);
	big->n_vanished = keep_n;
	big->vanished_floor = keep_floor;
	double per_run = (double)(bb.len - without.len) / (double)keep_n;
	printf("\n    expunges by modseq: %zu runs, %.2f bytes each in the checkpoint\n", keep_n, per_run);
	CU_ASSERT(per_run <= 8.0);
	free(without.p);
	free(bb.p);
	uidx_free(bd);
	uidx_free(big);
	uidx_op_free(add);
	uidx_op_free(d1);
	uidx_free(d);
	uidx_free(s);
	uidx_op_free(op);
	uidx_op_free(del);
}

/* Two engines on one store: each reports the same modseqs and the same
 * expunges by modseq, from the log and from a checkpoint, and a view
 * answers VANISHED (EARLIER) exactly, with the floor's fallback. */
/* The view's runs of UIDs expunged since modseq `since`: n_want of them,
 * want[2 * i] to want[2 * i + 1], the answer exact or not. */
static void check_vanished(struct mail_view *v, uint64_t since, int exact, const uint32_t *want, size_t n_want)
{
	uint32_t *lo, *hi;
	size_t n;
	int got_exact;
	CU_ASSERT_EQUAL_FATAL(mail_view_vanished(v, since, &lo, &hi, &n, &got_exact), 0);
	CU_ASSERT_EQUAL(got_exact, exact);
	CU_ASSERT_EQUAL(n, n_want);
	for (size_t i = 0; i < n && i < n_want; i++) {
		CU_ASSERT_EQUAL(lo[i], want[2 * i]);
		CU_ASSERT_EQUAL(hi[i], want[2 * i + 1]);
	}
	free(lo);
	free(hi);
}

static void test_modseq_two_engines(void)
{
	struct eu_env e;
	eu_env_open(&e, 71);
	struct mail_mailbox *mb = eu_box(e.eng, "ivy", "INBOX", 10);
	struct mail_view *a = eu_view(mb);
	uint64_t m0 = mail_view_highestmodseq(a);
	CU_ASSERT(m0 > 0);
	uint32_t del1[] = { 2, 3, 4 };
	CU_ASSERT_EQUAL(mail_expunge(a, del1, 3), 0);
	uint32_t fl[] = { 5, 6 };
	CU_ASSERT_EQUAL(mail_store(a, fl, 2, MAIL_STORE_ADD, MAIL_F_SEEN, NULL, 0), 0);
	uint32_t del2[] = { 9 };
	CU_ASSERT_EQUAL(mail_expunge(a, del2, 1), 0);
	/* a conditional store: 5 changed after m0, 7 did not */
	uint32_t cs[] = { 5, 7 }, modified[2];
	size_t n_modified = 0;
	CU_ASSERT_EQUAL(mail_store_unchanged(a, cs, 2, MAIL_STORE_ADD, MAIL_F_FLAGGED, NULL, 0, m0, modified,
	                                     &n_modified), 0);
	CU_ASSERT_EQUAL_FATAL(n_modified, 1);
	CU_ASSERT_EQUAL(modified[0], 5);
	struct mail_changes *c;
	CU_ASSERT_EQUAL_FATAL(mail_view_update(a, 0, &c), 0);
	CU_ASSERT_EQUAL_FATAL(c->n_expunged, 4);
	CU_ASSERT_EQUAL(c->expunged_uids[0], 2);
	CU_ASSERT_EQUAL(c->expunged_uids[3], 9);
	mail_changes_free(c);
	struct mail_msg_info i5, i7;
	CU_ASSERT_EQUAL(mail_view_msg(a, mail_view_seq(a, 5), &i5), 0);
	CU_ASSERT_EQUAL(mail_view_msg(a, mail_view_seq(a, 7), &i7), 0);
	CU_ASSERT(!(i5.flags & MAIL_F_FLAGGED));
	CU_ASSERT(i7.flags & MAIL_F_FLAGGED);
	CU_ASSERT_EQUAL(i7.modseq, mail_view_highestmodseq(a));
	/* since m0: 2:4 and 9; since after the first expunge: 9 only */
	check_vanished(a, m0, 1, (const uint32_t[]){ 2, 4, 9, 9 }, 2);
	check_vanished(a, m0 + 1, 1, (const uint32_t[]){ 9, 9 }, 1);
	/* the other engine, first from the log, then from a checkpoint */
	for (int round = 0; round < 2; round++) {
		if (round == 1)
			CU_ASSERT_EQUAL(mail_mailbox_checkpoint(mb, 1), 0);
		struct mail_engine *other = eu_env_engine(&e, 72 + (uint64_t)round);
		struct mail_mailbox *mb2 = eu_box(other, "ivy", "INBOX", 0);
		struct mail_view *b = eu_view(mb2);
		CU_ASSERT_EQUAL(mail_view_highestmodseq(b), mail_view_highestmodseq(a));
		CU_ASSERT_EQUAL_FATAL(mail_view_exists(b), mail_view_exists(a));
		for (uint32_t seq = 1; seq <= mail_view_exists(a); seq++) {
			struct mail_msg_info x, y;
			CU_ASSERT_EQUAL(mail_view_msg(a, seq, &x), 0);
			CU_ASSERT_EQUAL(mail_view_msg(b, seq, &y), 0);
			CU_ASSERT_EQUAL(x.uid, y.uid);
			CU_ASSERT_EQUAL(x.modseq, y.modseq);
			CU_ASSERT_EQUAL(x.flags, y.flags);
		}
		/* round 0 expunged 1 */
		check_vanished(b, m0, 1, (const uint32_t[]){ round == 0 ? 2u : 1u, 4, 9, 9 }, 2);
		/* an expunge in this engine reaches the first one's view */
		uint32_t d3[] = { round == 0 ? 1u : 10u };
		CU_ASSERT_EQUAL(mail_expunge(b, d3, 1), 0);
		mail_view_close(b);
		mail_mailbox_close(mb2);
		mail_engine_free(other);
		CU_ASSERT_EQUAL(mail_mailbox_sync(mb), 0);
		CU_ASSERT_EQUAL_FATAL(mail_view_update(a, 0, &c), 0);
		CU_ASSERT_EQUAL_FATAL(c->n_expunged, 1);
		CU_ASSERT_EQUAL(c->expunged_uids[0], d3[0]);
		mail_changes_free(c);
	}
	/* While a view defers an expunge it reports the HIGHESTMODSEQ from
	 * before it: a client resyncing from there still learns of it. */
	struct mail_view *dv = eu_view(mb);
	uint64_t before = mail_view_highestmodseq(dv);
	uint32_t d8[] = { 8 };
	CU_ASSERT_EQUAL(mail_expunge(a, d8, 1), 0);
	uint32_t s7[] = { 7 };
	CU_ASSERT_EQUAL(mail_store(a, s7, 1, MAIL_STORE_ADD, MAIL_F_ANSWERED, NULL, 0), 0);
	CU_ASSERT_EQUAL_FATAL(mail_view_update_ex(dv, 0, MAIL_VIEW_DEFER_EXPUNGE, &c), 0);
	CU_ASSERT_EQUAL(c->n_flags, 1);
	mail_changes_free(c);
	CU_ASSERT_EQUAL(mail_view_pending_expunges(dv), 1);
	CU_ASSERT_EQUAL(mail_view_highestmodseq(dv), before);
	CU_ASSERT_EQUAL_FATAL(mail_view_update(dv, 0, &c), 0);
	CU_ASSERT_EQUAL(c->n_expunged, 1);
	mail_changes_free(c);
	CU_ASSERT_EQUAL(mail_view_highestmodseq(dv), before + 2);
	mail_view_close(dv);
	CU_ASSERT_EQUAL_FATAL(mail_view_update(a, 0, &c), 0);
	mail_changes_free(c);
	/* Forgetting: with a floor above `since`, every UID below UIDNEXT the
	 * view does not hold (the RFC's fallback). */
	pthread_mutex_lock(&mb->lock);
	mb->log.cur->vanished_floor = m0 + 1;
	pthread_mutex_unlock(&mb->lock);
	check_vanished(a, m0, 0, (const uint32_t[]){ 1, 4, 8, 10 }, 2); /* UIDs 5..7 live */
	mail_view_close(a);
	mail_mailbox_close(mb);
	eu_env_close(&e);
}

/* Appends one message with this body, internal date, flags and keyword. */
static uint32_t append_one(struct mail_mailbox *mb, const char *body, uint64_t date, uint32_t flags,
                           const char *kw)
{
	const char *kws[1] = { kw };
	struct mail_new_message m = { .body = (const uint8_t *)body, .body_len = strlen(body),
	                              .internal_date_ms = date, .flags = flags, .keywords = kws,
	                              .n_keywords = kw ? 1 : 0, .header = (const uint8_t *)"H: x\r\n",
	                              .header_len = 6 };
	uint32_t uid = 0;
	CU_ASSERT_EQUAL(mail_append(mb, &m, NULL, &uid), 0);
	return uid;
}

/* What a fresh view shows of one UID. */
struct shown {
	int found;
	char body[64];
	uint64_t date;
	uint32_t flags;
	char kw[64]; /* keyword names, space-separated */
};

static struct shown show(struct mail_mailbox *mb, uint32_t uid)
{
	struct shown g;
	memset(&g, 0, sizeof(g));
	struct mail_view *v;
	if (mail_view_open(mb, 0, &v) != 0)
		return g;
	uint32_t seq = mail_view_seq(v, uid);
	struct mail_msg_info info;
	if (seq && mail_view_msg(v, seq, &info) == 0) {
		g.found = 1;
		g.flags = info.flags;
		for (unsigned k = 0; k < MAIL_MAX_KEYWORDS; k++)
			if (info.keywords & (1ull << k))
				snprintf(g.kw + strlen(g.kw), sizeof(g.kw) - strlen(g.kw), "%s%s", g.kw[0] ? " " : "",
				         mail_view_keyword(v, k));
		struct mail_summary *sm;
		if (mail_summaries(v, &uid, 1, &sm) == 0) {
			g.date = sm[0].internal_date_ms;
			mail_summaries_free(sm, 1);
		}
		struct mail_body *bd;
		if (mail_bodies(v, &uid, 1, &bd) == 0) {
			if (bd[0].status == 0)
				snprintf(g.body, sizeof(g.body), "%.*s", (int)bd[0].len, (const char *)bd[0].data);
			mail_bodies_free(bd, 1);
		}
	}
	mail_view_close(v);
	return g;
}

static uint32_t exists_of(struct mail_mailbox *mb)
{
	struct mail_status st;
	mail_mailbox_sync(mb);
	mail_mailbox_status(mb, &st);
	return st.exists;
}

static void expunge_uids(struct mail_mailbox *mb, const uint32_t *uids, size_t n)
{
	struct mail_view *v = eu_view(mb);
	CU_ASSERT_EQUAL(mail_expunge(v, uids, n), 0);
	mail_view_close(v);
}

/* Expunged messages come back with new UIDs, their bodies, dates, flags
 * (but \Deleted) and keywords; `since` limits them; nothing comes back
 * twice, a moved message not at all; a checkpoint carries the list to
 * another engine; past the retention they are collected. */
static void test_undelete(void)
{
	struct eu_env e;
	eu_env_open_with(&e, 61, 0, 7 * DAY_MS);
	struct mail_mailbox *mb, *arch;
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(e.eng, "uma", "INBOX", &mb), 0);
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(e.eng, "uma", "Archive", &arch), 0);
	uint64_t d0 = 86400000;
	uint32_t a = append_one(mb, "body a\r\n", d0, MAIL_F_SEEN, "$Label1");
	uint32_t b = append_one(mb, "body b\r\n", d0 + 1000, MAIL_F_FLAGGED | MAIL_F_DELETED, NULL);
	uint32_t c = append_one(mb, "body c\r\n", d0 + 2000, MAIL_F_ANSWERED | MAIL_F_DELETED, "work");
	uint32_t d = append_one(mb, "body d\r\n", d0 + 3000, 0, NULL);
	uint32_t m = append_one(mb, "body m\r\n", d0 + 4000, 0, NULL);
	CU_ASSERT_EQUAL(m, 5);
	expunge_uids(mb, &a, 1);
	e.clk.now += 3600 * 1000;
	uint64_t t1 = e.clk.now;
	uint32_t bc[] = { b, c };
	expunge_uids(mb, bc, 2);
	struct mail_view *v = eu_view(mb);
	uint32_t out, uv;
	CU_ASSERT_EQUAL(mail_move(v, &m, 1, arch, &uv, &out), 0);
	mail_view_close(v);
	CU_ASSERT_EQUAL(mb->log.cur->n_expunged, 3);
	e.clk.now += 1000;

	size_t n = 99;
	struct mail_restored *r = NULL;
	CU_ASSERT_EQUAL(mail_mailbox_undelete(mb, t1 + 1, &n, &r), 0);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_PTR_NULL(r);
	/* since t1: b and c, after every UID given so far, in their old order */
	CU_ASSERT_EQUAL(mail_mailbox_undelete(mb, t1, &n, &r), 0);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	CU_ASSERT_EQUAL(r[0].old_uid, b);
	CU_ASSERT_EQUAL(r[0].uid, 6);
	CU_ASSERT_EQUAL(r[0].expunged_ms, t1);
	CU_ASSERT_EQUAL(r[0].internal_date_ms, d0 + 1000);
	CU_ASSERT_EQUAL(r[0].size, 8);
	CU_ASSERT_EQUAL(r[0].flags, MAIL_F_FLAGGED);
	CU_ASSERT_EQUAL(r[1].old_uid, c);
	CU_ASSERT_EQUAL(r[1].uid, 7);
	free(r);
	struct shown g = show(mb, 6);
	CU_ASSERT(g.found);
	CU_ASSERT_STRING_EQUAL(g.body, "body b\r\n");
	CU_ASSERT_EQUAL(g.date, d0 + 1000);
	CU_ASSERT_EQUAL(g.flags, MAIL_F_FLAGGED);
	CU_ASSERT_STRING_EQUAL(g.kw, "");
	g = show(mb, 7);
	CU_ASSERT_STRING_EQUAL(g.body, "body c\r\n");
	CU_ASSERT_EQUAL(g.date, d0 + 2000);
	CU_ASSERT_EQUAL(g.flags, MAIL_F_ANSWERED);
	CU_ASSERT_STRING_EQUAL(g.kw, "work");
	/* not twice */
	CU_ASSERT_EQUAL(mail_mailbox_undelete(mb, t1, &n, NULL), 0);
	CU_ASSERT_EQUAL(n, 0);
	/* everything: a, and not the moved message */
	CU_ASSERT_EQUAL(mail_mailbox_undelete(mb, 0, &n, &r), 0);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_EQUAL(r[0].old_uid, a);
	CU_ASSERT_EQUAL(r[0].uid, 8);
	free(r);
	g = show(mb, 8);
	CU_ASSERT_STRING_EQUAL(g.body, "body a\r\n");
	CU_ASSERT_EQUAL(g.flags, MAIL_F_SEEN);
	CU_ASSERT_STRING_EQUAL(g.kw, "$Label1");
	CU_ASSERT_EQUAL(exists_of(mb), 4);
	CU_ASSERT_EQUAL(exists_of(arch), 1);
	/* expunged again, back again, once: its first expunge and its second
	 * are one message */
	uint32_t six = 6;
	expunge_uids(mb, &six, 1);
	CU_ASSERT_EQUAL(mail_mailbox_undelete(mb, 0, &n, &r), 0);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_EQUAL(r[0].old_uid, 6);
	CU_ASSERT_EQUAL(r[0].uid, 9);
	free(r);
	CU_ASSERT_STRING_EQUAL(show(mb, 9).body, "body b\r\n");
	CU_ASSERT_EQUAL(mail_mailbox_undelete(mb, 0, &n, NULL), 0);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_EQUAL(exists_of(mb), 4);

	/* a checkpoint carries the list: another engine, from it alone */
	expunge_uids(mb, &d, 1);
	CU_ASSERT_EQUAL(mail_mailbox_checkpoint(mb, 2), 0);
	struct mail_engine_options o = eu_options(&e.clk, 62);
	o.expunge_retention_ms = 7 * DAY_MS;
	struct mail_engine *other = NULL;
	CU_ASSERT_FATAL(mail_engine_new(&e.st, &o, &other) == 0);
	struct mail_mailbox *ob = eu_box(other, "uma", "INBOX", 0);
	CU_ASSERT(ob->log.ckpt_loaded);
	CU_ASSERT_EQUAL(mail_mailbox_undelete(ob, 0, &n, &r), 0);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_EQUAL(r[0].old_uid, d);
	CU_ASSERT_EQUAL(r[0].uid, 10);
	free(r);
	mail_mailbox_close(ob);
	mail_engine_free(other);
	CU_ASSERT_EQUAL(exists_of(mb), 4);
	CU_ASSERT_STRING_EQUAL(show(mb, 10).body, "body d\r\n");

	/* within the retention, every expunged body is still there; past it,
	 * a checkpoint collects them and there is nothing left to undelete */
	char pfx[160], pk[128];
	snprintf(pfx, sizeof(pfx), "uma/mail/%s/", mail_mailbox_id(mb));
	snprintf(pk, sizeof(pk), "uma/mail/%s", mail_mailbox_id(mb));
	e.clk.now += 6 * DAY_MS;
	mail_reap_due(e.eng, 0); /* the moved message's body goes after the grace period */
	CU_ASSERT_EQUAL(mail_mailbox_checkpoint(mb, 2), 0);
	CU_ASSERT_EQUAL(count_blobs(&e, pfx), 4 + 5); /* live; a, b, c, 6, d */
	CU_ASSERT_EQUAL(oplog_idle_checkpoint_due(&mb->log, e.clk.now), 0);
	e.clk.now += 2 * DAY_MS;
	CU_ASSERT_EQUAL(oplog_idle_checkpoint_due(&mb->log, e.clk.now), 1);
	CU_ASSERT_EQUAL(mail_mailbox_checkpoint(mb, 2), 0);
	CU_ASSERT_EQUAL(mb->log.cur->n_expunged, 0);
	CU_ASSERT_EQUAL(oplog_idle_checkpoint_due(&mb->log, e.clk.now), 0);
	CU_ASSERT_EQUAL(count_blobs(&e, pfx), 4);
	CU_ASSERT_EQUAL(count_rows(&e, pk), 4);
	CU_ASSERT_EQUAL(mail_mailbox_undelete(mb, 0, &n, NULL), 0);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_EQUAL(exists_of(mb), 4);
	mail_mailbox_close(mb);
	mail_mailbox_close(arch);
	eu_env_close(&e);
}

/* Without a retention nothing is listed and the contents go after the
 * grace period, as before: nothing to undelete. */
static void test_undelete_without_retention(void)
{
	struct eu_env e;
	eu_env_open(&e, 63);
	struct mail_mailbox *mb = eu_box(e.eng, "val", "INBOX", 2);
	uint32_t one = 1;
	expunge_uids(mb, &one, 1);
	CU_ASSERT_EQUAL(mb->log.cur->n_expunged, 0);
	size_t n = 99;
	CU_ASSERT_EQUAL(mail_mailbox_undelete(mb, 0, &n, NULL), 0);
	CU_ASSERT_EQUAL(n, 0);
	char pfx[160];
	snprintf(pfx, sizeof(pfx), "val/mail/%s/", mail_mailbox_id(mb));
	CU_ASSERT_EQUAL(count_blobs(&e, pfx), 2);
	e.clk.now += MAIL_REAP_GRACE_MS + 1000;
	mail_reap_due(e.eng, 0);
	CU_ASSERT_EQUAL(count_blobs(&e, pfx), 1);
	CU_ASSERT_EQUAL(mail_mailbox_undelete(mb, 0, &n, NULL), 0);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_EQUAL(exists_of(mb), 1);
	mail_mailbox_close(mb);
	eu_env_close(&e);
}

/* A retention shorter than the collection: an undelete finds the bodies
 * gone and restores nothing; orphan collection spares what the retention
 * keeps, then takes it. */
static void test_retention_and_orphans(void)
{
	struct eu_env e;
	eu_env_open_with(&e, 64, 0, DAY_MS);
	struct mail_mailbox *mb = eu_box(e.eng, "wes", "INBOX", 3);
	uint32_t two[] = { 1, 2 };
	expunge_uids(mb, two, 2);
	char pfx[160];
	snprintf(pfx, sizeof(pfx), "wes/mail/%s/", mail_mailbox_id(mb));
	e.clk.now += 2 * 3600 * 1000;
	uint64_t removed = 9;
	CU_ASSERT_EQUAL(mail_collect_orphans(e.eng, "wes", "INBOX", 3600 * 1000, &removed), 0);
	CU_ASSERT_EQUAL(removed, 0);
	CU_ASSERT_EQUAL(count_blobs(&e, pfx), 3);
	e.clk.now += DAY_MS;
	CU_ASSERT_EQUAL(mail_collect_orphans(e.eng, "wes", "INBOX", 3600 * 1000, &removed), 0);
	CU_ASSERT_EQUAL(removed, 2);
	CU_ASSERT_EQUAL(count_blobs(&e, pfx), 1);
	/* still listed (no checkpoint since), but the bodies are gone */
	CU_ASSERT_EQUAL(mb->log.cur->n_expunged, 2);
	size_t n = 9;
	CU_ASSERT_EQUAL(mail_mailbox_undelete(mb, 0, &n, NULL), 0);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_EQUAL(exists_of(mb), 1);
	mail_mailbox_close(mb);
	eu_env_close(&e);
}

/* Two undeletes of the same messages at once (the second engine works
 * from a state read before the first one's add): the later add removes
 * its own copies, so every message is there once. */
static void test_undelete_concurrent(void)
{
	struct eu_env e;
	eu_env_open_with(&e, 65, 0, 7 * DAY_MS);
	struct mail_engine_options o = eu_options(&e.clk, 66);
	o.expunge_retention_ms = 7 * DAY_MS;
	struct mail_engine *other = NULL;
	CU_ASSERT_FATAL(mail_engine_new(&e.st, &o, &other) == 0);
	other->lazy = 1; /* reads only when told to: a stale reader */
	struct mail_mailbox *mb, *ob;
	mb = eu_box(e.eng, "xia", "INBOX", 3);
	uint32_t two[] = { 1, 3 };
	expunge_uids(mb, two, 2);
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(other, "xia", "INBOX", &ob), 0);
	CU_ASSERT_EQUAL(ob->log.cur->n_expunged, 2);
	size_t n = 0, n2 = 9;
	/* in the same ms: the same new ids, the log takes them once */
	CU_ASSERT_EQUAL(mail_mailbox_undelete(mb, 0, &n, NULL), 0);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_EQUAL(ob->log.cur->n, 1); /* has not seen it */
	CU_ASSERT_EQUAL(mail_mailbox_undelete(ob, 0, &n2, NULL), 0);
	CU_ASSERT_EQUAL(n2, 0);
	CU_ASSERT_EQUAL(exists_of(mb), 3);
	CU_ASSERT_EQUAL(exists_of(ob), 3);
	struct mail_view *v = eu_view(mb);
	CU_ASSERT_EQUAL(mail_view_uid(v, 2), 4);
	CU_ASSERT_EQUAL(mail_view_uid(v, 3), 5);
	mail_view_close(v);
	/* later: other ids, the second add expunges its own copies (the
	 * items of the first round's second add took UIDs 6 and 7) */
	uint32_t again[] = { 4, 5 };
	expunge_uids(mb, again, 2);
	e.clk.now += 1000;
	CU_ASSERT_EQUAL(mail_mailbox_sync(ob), 0);
	CU_ASSERT_EQUAL(ob->log.cur->n, 1);
	CU_ASSERT_EQUAL(mail_mailbox_undelete(mb, 0, &n, NULL), 0);
	CU_ASSERT_EQUAL(n, 2);
	e.clk.now += 1000;
	CU_ASSERT_EQUAL(mail_mailbox_undelete(ob, 0, &n2, NULL), 0);
	CU_ASSERT_EQUAL(n2, 0);
	CU_ASSERT_EQUAL(exists_of(mb), 3);
	CU_ASSERT_EQUAL(exists_of(ob), 3);
	v = eu_view(mb);
	CU_ASSERT_EQUAL(mail_view_uid(v, 2), 8);
	CU_ASSERT_EQUAL(mail_view_uid(v, 3), 9);
	mail_view_close(v);
	mail_mailbox_close(ob);
	mail_engine_free(other);
	mail_mailbox_close(mb);
	eu_env_close(&e);
}

/* -------------------------------------------------------- poller, sharing */

static int notified;
static pthread_mutex_t notified_lock = PTHREAD_MUTEX_INITIALIZER;

static void on_change(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&notified_lock);
	notified++;
	pthread_mutex_unlock(&notified_lock);
}

static void test_poller_and_sharing(void)
{
	struct eu_env e;
	eu_env_open(&e, 53);
	/* an engine with a real clock and a poller, as in the daemon */
	struct mail_engine *pe = eu_poller_engine(&e.st, 54, 500);
	struct mail_mailbox *a, *b, *w;
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(pe, "max", "INBOX", &a), 0);
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(pe, "max", "INBOX", &b), 0);
	CU_ASSERT_PTR_EQUAL(a, b); /* one shared state per mailbox per engine */
	struct mail_sub *sub = mail_mailbox_subscribe(a, on_change, NULL);
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(e.eng, "max", "INBOX", &w), 0);
	pthread_mutex_lock(&notified_lock);
	notified = 0;
	pthread_mutex_unlock(&notified_lock);
	CU_ASSERT_EQUAL(eu_append_n(w, 1, 0), 0); /* another "daemon" writes */
	int got = 0;
	for (int i = 0; i < 2000 && !got; i++) { /* up to 20 s: never fails for slowness alone */
		struct mail_status st;
		mail_mailbox_status(a, &st);
		pthread_mutex_lock(&notified_lock);
		got = notified > 0 && st.exists == 1;
		pthread_mutex_unlock(&notified_lock);
		if (!got)
			usleep(10000);
	}
	CU_ASSERT(got);
	mail_unsubscribe(sub);
	mail_mailbox_close(a);
	mail_mailbox_close(b);
	mail_mailbox_close(w);
	mail_engine_free(pe);
	eu_env_close(&e);
}

/* ------------------------------------------- batches that are no snapshot */

/* A store whose row_read answers a batch query by query, with another
 * daemon's write landing in between, as a Garage ReadBatch may (each query
 * is its own quorum read, run concurrently): the descriptor is the memory
 * driver's, with row_read replaced and AEROGRAM_CAP_SNAPSHOT_READS cleared.
 * When armed, the next read that asks for the watch row runs the batch's
 * other queries first, then the write, then the watch row; a read of the
 * watch row alone gets the write right after it. Both are orders a real
 * cluster can produce. */
static const struct aerogram_driver *split_inner;
static struct mail_mailbox *split_writer; /* another engine's handle, on the inner store */
static atomic_int split_armed, split_fired; /* set here, read on the poller's thread */

struct split_result {
	struct aerogram_row_result pub; /* first: the pointer the engine frees */
	struct aerogram_row_result *a, *b;
	struct aerogram_row_page *pages;
};

static int is_watch_query(const struct aerogram_row_query *q)
{
	return q->sk != NULL && strcmp(q->sk, "watch") == 0;
}

static void split_write(void)
{
	split_armed = 0;
	if (eu_append_n(split_writer, 1, 0) == 0)
		split_fired = 1;
}

static void split_row_result_free(struct aerogram_store *store, struct aerogram_row_result *res)
{
	struct split_result *r = (struct split_result *)res;
	if (r->a)
		split_inner->row_result_free(store, r->a);
	if (r->b)
		split_inner->row_result_free(store, r->b);
	free(r->pages);
	free(r);
}

static int split_row_read(struct aerogram_store *store, const struct aerogram_row_query *q, size_t n,
                          struct aerogram_row_result **out)
{
	struct split_result *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return AEROGRAM_EINTERNAL;
	int rc;
	if (split_armed && n >= 2 && is_watch_query(&q[0])) {
		rc = split_inner->row_read(store, q + 1, n - 1, &r->b);
		if (rc == 0) {
			split_write();
			rc = split_inner->row_read(store, q, 1, &r->a);
		}
		if (rc == 0 && (r->pages = calloc(n, sizeof(*r->pages))) == NULL)
			rc = AEROGRAM_EINTERNAL;
		if (rc == 0) {
			r->pages[0] = r->a->pages[0];
			for (size_t k = 1; k < n; k++)
				r->pages[k] = r->b->pages[k - 1];
			r->pub.n_pages = n;
			r->pub.pages = r->pages;
		}
	} else {
		rc = split_inner->row_read(store, q, n, &r->a);
		if (rc == 0) {
			if (split_armed && n == 1 && is_watch_query(&q[0]))
				split_write();
			r->pub = *r->a;
		}
	}
	if (rc != 0) {
		split_row_result_free(store, &r->pub);
		return rc;
	}
	*out = &r->pub;
	return 0;
}


/* A daemon whose store's batches are no snapshot (the engine must read the
 * watch row in a call of its own, before the log) is woken for a write that
 * lands while it reads: it must not wait for a token that already covers a
 * log entry it never read. With the watch row and the log in one batch, the
 * poller waits on a token past the missed entry, and an IDLE session never
 * hears of the message until some later write. */
static void test_batch_not_snapshot(void)
{
	struct ag_driver *drv = eu_load_memory();
	struct ag_store *in = ag_driver_store(drv);
	split_inner = in->driver;
	struct aerogram_driver d = *in->driver;
	d.capabilities &= ~AEROGRAM_CAP_SNAPSHOT_READS;
	d.row_read = split_row_read;
	d.row_result_free = split_row_result_free;
	struct ag_store st = { .driver = &d, .store = in->store };

	struct mail_engine_options o = { 0 };
	o.seed = 71;
	o.poll_timeout_ms = 500;
	o.log = eu_options(NULL, 0).log;
	struct mail_engine *watcher = NULL, *writer = NULL;
	CU_ASSERT_EQUAL_FATAL(mail_engine_new(&st, &o, &watcher), 0);
	CU_ASSERT_FALSE(watcher->snapshot_reads);
	struct mail_engine_options wo = o; /* real time too, and no poller */
	wo.seed = 72;
	wo.no_poller = 1;
	CU_ASSERT_EQUAL_FATAL(mail_engine_new(in, &wo, &writer), 0);

	struct mail_mailbox *a, *w;
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(writer, "sam", "INBOX", &w), 0);
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(watcher, "sam", "INBOX", &a), 0);
	split_writer = w;
	struct mail_sub *sub = mail_mailbox_subscribe(a, on_change, NULL);
	/* one write wakes the watcher; while it reads the log, a second lands */
	split_fired = 0;
	split_armed = 1;
	CU_ASSERT_EQUAL(eu_append_n(w, 1, 0), 0);
	uint32_t exists = 0;
	int fired = 0;
	for (int i = 0; i < 1000 && exists < 2; i++) { /* up to 10 s: never fails for slowness alone */
		struct mail_status s;
		mail_mailbox_status(a, &s);
		exists = s.exists;
		fired = split_fired;
		if (exists < 2)
			usleep(10000);
	}
	CU_ASSERT_EQUAL(fired, 1); /* the second write did land mid-read */
	CU_ASSERT_EQUAL(exists, 2);
	mail_unsubscribe(sub);
	mail_mailbox_close(a);
	mail_mailbox_close(w);
	mail_engine_free(watcher);
	mail_engine_free(writer);
	ag_driver_unload(drv);
}

/* ------------------------------------------------------- threads */

struct worker {
	struct mail_engine *eng;
	int failures;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct mail_mailbox *mb;
	if (mail_mailbox_open(w->eng, "ned", "INBOX", &mb) != 0) {
		w->failures++;
		return NULL;
	}
	struct mail_view *v;
	if (mail_view_open(mb, 1, &v) != 0) {
		w->failures++;
		mail_mailbox_close(mb);
		return NULL;
	}
	for (int i = 0; i < 40; i++) {
		if (eu_append_n(mb, 1, 0) != 0)
			w->failures++;
		struct mail_changes *c;
		if (mail_view_update(v, i & 1, &c) != 0)
			w->failures++;
		else
			mail_changes_free(c);
		uint32_t n = mail_view_exists(v);
		uint32_t uid = mail_view_uid(v, n);
		if (n && mail_store(v, &uid, 1, MAIL_STORE_ADD, MAIL_F_SEEN, NULL, 0) != 0)
			w->failures++;
	}
	mail_view_close(v);
	mail_mailbox_close(mb);
	return NULL;
}

/* Four threads on one engine (with its poller) and two on another, all on
 * one mailbox: every call succeeds and both engines end identical. */
static void test_threads(void)
{
	struct eu_env e;
	eu_env_open(&e, 59);
	struct mail_engine *a = eu_poller_engine(&e.st, 60, 300);
	struct mail_engine *b = eu_poller_engine(&e.st, 61, 300);
	pthread_t th[6];
	struct worker w[6];
	for (int i = 0; i < 6; i++) {
		w[i].eng = i < 4 ? a : b;
		w[i].failures = 0;
		pthread_create(&th[i], NULL, worker_main, &w[i]);
	}
	for (int i = 0; i < 6; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(w[i].failures, 0);
	}
	struct mail_mailbox *ma, *mb;
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(a, "ned", "INBOX", &ma), 0);
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(b, "ned", "INBOX", &mb), 0);
	CU_ASSERT_EQUAL(mail_mailbox_sync(ma), 0);
	CU_ASSERT_EQUAL(mail_mailbox_sync(mb), 0);
	struct mail_status sa, sb;
	mail_mailbox_status(ma, &sa);
	mail_mailbox_status(mb, &sb);
	CU_ASSERT_EQUAL(sa.exists, 240);
	CU_ASSERT_EQUAL(sa.exists, sb.exists);
	CU_ASSERT_EQUAL(sa.uidvalidity, sb.uidvalidity);
	CU_ASSERT_EQUAL(sa.uidnext, sb.uidnext);
	CU_ASSERT_EQUAL(sa.highestmodseq, sb.highestmodseq);
	CU_ASSERT_EQUAL(sa.unseen, sb.unseen);
	mail_mailbox_close(ma);
	mail_mailbox_close(mb);
	mail_engine_free(a);
	mail_engine_free(b);
	eu_env_close(&e);
}

/* ----------------------------------------- UIDVALIDITY across engines */

/* Two engines ("daemons") on one store. Adds take turns (or are written
 * conditionally), so concurrent appends never raise UIDVALIDITY, whatever
 * the interleaving; only a writer that bypasses that (as a daemon of an
 * older version would) still raises it, and correctly. */
struct uv_worker {
	struct mail_engine *eng;
	int appends;            /* appender: how many; 0: a viewer claiming \Recent */
	int *stop;
	int failures;
	uint32_t max_uv;        /* highest UIDVALIDITY an APPENDUID or view reported */
};

static void *uv_worker_main(void *arg)
{
	struct uv_worker *w = arg;
	if (w->appends == 0) {
		/* SELECT and update with claims until the appenders are done */
		struct mail_mailbox *mb;
		struct mail_view *v;
		if (mail_mailbox_open(w->eng, "ivy", "INBOX", &mb) != 0 || mail_view_open(mb, 1, &v) != 0) {
			w->failures++;
			return NULL;
		}
		while (!__atomic_load_n(w->stop, __ATOMIC_SEQ_CST)) {
			struct mail_changes *c;
			if (mail_view_update(v, 1, &c) != 0)
				w->failures++;
			else
				mail_changes_free(c);
			if (mail_view_uidvalidity(v) > w->max_uv)
				w->max_uv = mail_view_uidvalidity(v);
			usleep(200);
		}
		mail_view_close(v);
		mail_mailbox_close(mb);
		return NULL;
	}
	for (int i = 0; i < w->appends; i++) {
		/* as the server does: the mailbox opened for this APPEND alone */
		struct mail_mailbox *mb;
		if (mail_mailbox_open(w->eng, "ivy", "INBOX", &mb) != 0) {
			w->failures++;
			continue;
		}
		char body[96];
		int bl = snprintf(body, sizeof(body), "Subject: %d\r\n\r\nbody %d\r\n", i, i);
		struct mail_new_message m = { .body = (const uint8_t *)body, .body_len = (size_t)bl,
		                              .header = (const uint8_t *)body, .header_len = 14 };
		uint32_t uv = 0, uid = 0;
		if (mail_append(mb, &m, &uv, &uid) != 0)
			w->failures++;
		if (uv > w->max_uv)
			w->max_uv = uv;
		mail_mailbox_close(mb);
	}
	return NULL;
}

static void uv_status(struct mail_engine *eng, struct mail_status *st)
{
	struct mail_mailbox *mb = eu_box(eng, "ivy", "INBOX", 0);
	CU_ASSERT_EQUAL(mail_mailbox_sync(mb), 0);
	mail_mailbox_status(mb, st);
	mail_mailbox_close(mb);
}

static void test_uidvalidity_two_engines(void)
{
	struct eu_env e;
	eu_env_open(&e, 71);
	struct mail_engine *a = eu_poller_engine(&e.st, 72, 300);
	struct mail_engine *b = eu_poller_engine(&e.st, 73, 300);

	/* 1. alternating appends, each engine with a claiming view open */
	struct mail_mailbox *ma, *mb;
	struct mail_view *va, *vb;
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(a, "ivy", "INBOX", &ma), 0);
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(b, "ivy", "INBOX", &mb), 0);
	CU_ASSERT_EQUAL_FATAL(mail_view_open(ma, 1, &va), 0);
	CU_ASSERT_EQUAL_FATAL(mail_view_open(mb, 1, &vb), 0);
	/* a new mailbox starts at a time-based UIDVALIDITY (seconds) */
	uint32_t uv0 = mail_view_uidvalidity(va);
	CU_ASSERT(uv0 > 1700000000u);
	CU_ASSERT_EQUAL(mail_view_uidvalidity(vb), uv0);
	for (int i = 0; i < 20; i++) {
		uint32_t uv = 0, uid = 0;
		struct mail_new_message m = { .body = (const uint8_t *)"Subject: x\r\n\r\nx\r\n", .body_len = 17 };
		CU_ASSERT_EQUAL(mail_append(i & 1 ? mb : ma, &m, &uv, &uid), 0);
		CU_ASSERT_EQUAL(uv, uv0);
		CU_ASSERT_EQUAL(uid, (uint32_t)i + 1);
		struct mail_changes *c;
		CU_ASSERT_EQUAL(mail_view_update(i & 1 ? va : vb, 1, &c), 0);
		mail_changes_free(c);
	}
	mail_view_close(va);
	mail_view_close(vb);
	mail_mailbox_close(ma);
	mail_mailbox_close(mb);

	/* 2. threads on both engines at once, unordered: two appenders and one
	 * claiming viewer each. Whatever the interleaving, no add misses
	 * another. */
	int stop = 0;
	struct uv_worker w[6];
	pthread_t th[6];
	for (int i = 0; i < 6; i++) {
		w[i] = (struct uv_worker){ i & 1 ? b : a, i < 4 ? 25 : 0, &stop, 0, 0 };
		pthread_create(&th[i], NULL, uv_worker_main, &w[i]);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	__atomic_store_n(&stop, 1, __ATOMIC_SEQ_CST);
	for (int i = 4; i < 6; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 6; i++) {
		CU_ASSERT_EQUAL(w[i].failures, 0);
		CU_ASSERT(w[i].max_uv <= uv0);
	}
	struct mail_status sa, sb;
	uv_status(a, &sa);
	uv_status(b, &sb);
	CU_ASSERT_EQUAL(sa.exists, 120);
	CU_ASSERT_EQUAL(sb.exists, 120);
	CU_ASSERT_EQUAL(sa.uidvalidity, uv0);
	CU_ASSERT_EQUAL(sb.uidvalidity, uv0);
	CU_ASSERT_EQUAL(sa.uidnext, 121);

	/* 3. a writer that bypasses the protocol raises it: an add written
	 * straight to the store from a view that misses the newest add (UID
	 * 121), as a daemon of an older version would */
	ma = eu_box(a, "ivy", "INBOX", 1);
	struct uidx_op *op = calloc(1, sizeof(*op));
	CU_ASSERT_FATAL(op != NULL);
	op->kind = UIDX_OP_ADD;
	op->n = 1;
	op->ids = calloc(1, UIDX_ID);
	op->item_flags = calloc(1, sizeof(uint64_t));
	CU_ASSERT_FATAL(op->ids != NULL && op->item_flags != NULL);
	memset(op->ids[0], 0x5a, UIDX_ID);
	op->seen_uidnext = 121;
	struct cbuf cb = { 0 };
	CU_ASSERT_EQUAL_FATAL(codec_op_encode(op, &cb), 0);
	uidx_op_free(op);
	char sk[AG_TS_HEX + 1];
	pthread_mutex_lock(&ma->lock);
	ts_format(ts_after(a, ma->log.newest), sk);
	pthread_mutex_unlock(&ma->lock);
	char pk[128];
	snprintf(pk, sizeof(pk), "ivy/index/%s", mail_mailbox_id(ma));
	uint8_t wv[16] = { 1 };
	struct aerogram_row_write wr[2] = { { pk, sk, NULL, cb.p, cb.len, 0 }, { pk, "watch", NULL, wv, 16, 0 } };
	CU_ASSERT_EQUAL(e.st.driver->row_insert(e.st.store, wr, 2), 0);
	free(cb.p);
	mail_mailbox_close(ma);
	uv_status(a, &sa);
	uv_status(b, &sb);
	CU_ASSERT_EQUAL(sa.exists, 122);
	CU_ASSERT_EQUAL(sa.uidvalidity, uv0 + 1);
	CU_ASSERT_EQUAL(sb.uidvalidity, uv0 + 1);
	CU_ASSERT_EQUAL(sa.uidnext, sb.uidnext);
	mail_engine_free(a);
	mail_engine_free(b);
	eu_env_close(&e);
}

/* The body cache on its own (bcache.c): what fits its budget, least
 * recently used out. */
/* 1 when key is cached with exactly `want` as its bytes. */
static int bcache_has(struct bcache *c, const char *key, const char *want)
{
	uint8_t *data = NULL;
	size_t len = 0;
	if (!bcache_get(c, key, &data, &len))
		return 0;
	int same = len == strlen(want) && memcmp(data, want, len) == 0;
	free(data);
	return same;
}

static void test_bcache_hits_and_misses(void)
{
	struct bcache *c = bcache_new(1 << 20);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_FALSE(bcache_has(c, "u/mail/a/1", "one"));
	bcache_put(c, "u/mail/a/1", (const uint8_t *)"one", 3);
	bcache_put(c, "u/mail/a/2", (const uint8_t *)"two", 3);
	CU_ASSERT_TRUE(bcache_has(c, "u/mail/a/1", "one"));
	CU_ASSERT_TRUE(bcache_has(c, "u/mail/a/2", "two"));
	CU_ASSERT_FALSE(bcache_has(c, "u/mail/a/3", "one"));
	/* a second put of a key keeps the first bytes (a body never changes) */
	bcache_put(c, "u/mail/a/1", (const uint8_t *)"uno", 3);
	CU_ASSERT_TRUE(bcache_has(c, "u/mail/a/1", "one"));
	/* an empty body is a body */
	bcache_put(c, "u/mail/a/4", (const uint8_t *)"", 0);
	CU_ASSERT_TRUE(bcache_has(c, "u/mail/a/4", ""));
	bcache_free(c);
	/* no cache at all: every get misses, puts are ignored */
	bcache_put(NULL, "k", (const uint8_t *)"x", 1);
	CU_ASSERT_FALSE(bcache_has(NULL, "k", "x"));
}

static void test_bcache_budget(void)
{
	/* 500-byte bodies, each costing a little more (its key and node): seven
	 * fit in 4,400 bytes, eight do not */
	struct bcache *c = bcache_new(4400);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	char bodies[8][501];
	char key[32];
	for (int i = 0; i < 8; i++) {
		memset(bodies[i], 'a' + i, 500);
		bodies[i][500] = '\0';
	}
	for (int i = 0; i < 7; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		bcache_put(c, key, (const uint8_t *)bodies[i], 500);
	}
	for (int i = 0; i < 7; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		CU_ASSERT_TRUE(bcache_has(c, key, bodies[i]));
	}
	/* k0 used last: k1 is now the least recently used, and goes */
	CU_ASSERT_TRUE(bcache_has(c, "k0", bodies[0]));
	bcache_put(c, "k7", (const uint8_t *)bodies[7], 500);
	CU_ASSERT_TRUE(bcache_has(c, "k7", bodies[7]));
	CU_ASSERT_TRUE(bcache_has(c, "k0", bodies[0]));
	CU_ASSERT_FALSE(bcache_has(c, "k1", bodies[1]));
	for (int i = 2; i < 7; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		CU_ASSERT_TRUE(bcache_has(c, key, bodies[i]));
	}
	/* a body over an eighth of the budget is never kept, and evicts nothing */
	char big[600];
	memset(big, 'y', sizeof(big));
	bcache_put(c, "big", (const uint8_t *)big, sizeof(big));
	uint8_t *data = NULL;
	size_t len = 0;
	CU_ASSERT_FALSE(bcache_get(c, "big", &data, &len));
	for (int i = 2; i < 8; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		CU_ASSERT_TRUE(bcache_has(c, key, bodies[i]));
	}
	bcache_free(c);
}

static const struct agt_test tests[] = {
	{ "codec: ops round trip, corrupt input refused", test_codec_op_roundtrip },
	{ "codec: checkpoints, summaries, mailbox list", test_codec_state_summary_list },
	{ "timestamps: text order, after()", test_timestamps },
	{ "uid index: add, conflict bump, flags, modseq, delete, claims", test_uidx_rules },
	{ "uid index: same UIDVALIDITY and UID means same message", test_uidx_invariant_random },
	{ "uid index: anchored adds, random delays, checkpoints", test_uidx_anchor_random },
	{ "mailbox list CRDT: commutative, associative, idempotent", test_mblist_crdt },
	{ "mailbox list: defaults, rename with children, INBOX, re-create", test_mblist_defaults_and_rename },
	{ "mailbox delete removes log, checkpoints, summaries, bodies", test_delete_removes_contents },
	{ "\\Recent: exactly one session, across engines", test_recent },
	{ "view diff: EXPUNGE numbering, EXISTS, FETCH FLAGS", test_view_diff },
	{ "view update deferring expunges: numbers kept until told", test_view_defer_expunge },
	{ "round trips per operation do not grow with the mailbox", test_round_trips },
	{ "rows read per command do not grow with the history", test_rows_per_command },
	{ "non-blocking mode: inline calls never wait", test_nonblock },
	{ "an add written late and never announced is found from a later add", test_unannounced_late_add },
	{ "checkpoints: fresh open reads only the tail; fallback; GC", test_checkpoint_tail },
	{ "checkpoints: whole-mailbox flag changes do not pile up", test_checkpoint_large_entries },
	{ "log row with a sibling: deterministic choice", test_log_sibling },
	{ "append flags and date; failed append; orphans", test_append_failure_and_orphans },
	{ "orphans of an append whose log entry never came", test_orphan_from_failed_log_write },
	{ "expunged messages' contents go after the grace period", test_expunged_contents_removed },
	{ "a private store's grace is short", test_private_store_short_grace },
	{ "copy and move", test_copy_move },
	{ "codec: checkpoints with recently expunged messages", test_codec_state_expunged },
	{ "codec: expunges by modseq in checkpoints, bounded", test_codec_state_vanished },
	{ "modseq and expunges by modseq: same in two engines, log or checkpoint", test_modseq_two_engines },
	{ "undelete: new UIDs, same contents, since, once; retention", test_undelete },
	{ "undelete without a retention: nothing", test_undelete_without_retention },
	{ "expunge retention: orphan collection spares it, then takes it", test_retention_and_orphans },
	{ "undelete twice at once: every message once", test_undelete_concurrent },
	{ "poller wakes subscribers; one shared state", test_poller_and_sharing },
	{ "a batch that is no snapshot: no write missed while watching", test_batch_not_snapshot },
	{ "threads on two engines with pollers converge", test_threads },
	{ "UIDVALIDITY stays put across two engines unless an add bypasses the turn",
	  test_uidvalidity_two_engines },
	{ "body cache: hits, misses, first bytes kept", test_bcache_hits_and_misses },
	{ "body cache: the budget, least recently used out", test_bcache_budget },
	AGT_END,
};

/* The tests only one of the two suites runs. */
static const CU_TestFunc cas_only[] = {
	test_codec_op_roundtrip, test_codec_state_summary_list, test_timestamps, test_uidx_rules,
	test_uidx_invariant_random, test_uidx_anchor_random, test_mblist_crdt, test_mblist_defaults_and_rename,
	test_codec_state_expunged, test_codec_state_vanished, test_undelete_concurrent, test_batch_not_snapshot,
	test_bcache_hits_and_misses, test_bcache_budget, NULL,
};
static const CU_TestFunc turns_only[] = { test_unannounced_late_add, NULL };

/* the same tests over a store without conditional writes too (as Garage) */
int main(int argc, char **argv)
{
	return eu_main(argc, argv, "engine", tests, cas_only, turns_only);
}
