/*
 * test_usage.c - CUnit tests of message sizes in the log and checkpoints
 * and of a user's usage (mail_user_usage): exact across engines, what it
 * costs in storage calls cold and warm, and what older logs and
 * checkpoints (without sizes) give. Over the memory driver, with and
 * without its conditional writes, through the counting wrapper.
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/mail/mail_internal.h"
#include "sdk/wrappers/ag_wrap.h"
#include "tests/engine/engine_util.h"
#include "tests/lib/cu_main.h"

/* Appends n messages of `size` bytes each (size >= 32) to name. */
static int append_sized(struct mail_engine *eng, const char *user, const char *name, int n, size_t size)
{
	struct mail_mailbox *mb;
	int rc = mail_mailbox_open(eng, user, name, &mb);
	char *body = malloc(size);
	for (int i = 0; rc == 0 && i < n; i++) {
		int hl = snprintf(body, size, "Subject: %d\r\n\r\n", i);
		memset(body + hl, 'x', size - (size_t)hl);
		struct mail_new_message m = { .body = (const uint8_t *)body, .body_len = size,
		                              .header = (const uint8_t *)body, .header_len = (size_t)hl };
		rc = mail_append(mb, &m, NULL, NULL);
	}
	free(body);
	if (mb && rc == 0)
		mail_mailbox_close(mb);
	return rc;
}

static void usage_of(struct mail_engine *eng, const char *user, uint64_t *bytes, uint64_t *messages)
{
	struct mail_usage u;
	CU_ASSERT_EQUAL(mail_user_usage(eng, user, &u), 0);
	*bytes = u.bytes;
	*messages = u.messages;
}

/* ---------------------------------------------------------------- codec */

static void test_codec_sizes(void)
{
	struct uidx_op *op = calloc(1, sizeof(*op));
	op->kind = UIDX_OP_ADD;
	op->seen_uidnext = 7;
	op->n = 3;
	op->ids = calloc(3, UIDX_ID);
	op->item_flags = calloc(3, sizeof(uint64_t));
	op->item_sizes = calloc(3, sizeof(uint64_t));
	for (int i = 0; i < 3; i++)
		memset(op->ids[i], 0x20 + i, UIDX_ID);
	op->item_sizes[0] = 0;
	op->item_sizes[1] = 123456789;
	op->item_sizes[2] = UIDX_SIZE_UNKNOWN;
	/* an add with sizes is version 3, with or without its anchor */
	for (int anchored = 0; anchored < 2; anchored++) {
		op->has_anchor = anchored;
		op->anchor = (struct ag_ts){ anchored ? 0x1122334455667788ull : 0, 9 * (uint64_t)anchored };
		struct cbuf b = { 0 };
		struct uidx_op *d = eu_op_roundtrip(op, 3, &b);
		CU_ASSERT_PTR_NOT_NULL_FATAL(d->item_sizes);
		CU_ASSERT_EQUAL(d->item_sizes[0], 0);
		CU_ASSERT_EQUAL(d->item_sizes[1], 123456789);
		CU_ASSERT_EQUAL(d->item_sizes[2], UIDX_SIZE_UNKNOWN);
		CU_ASSERT_EQUAL(d->has_anchor, anchored);
		if (anchored)
			CU_ASSERT_EQUAL(d->anchor.ms, op->anchor.ms);
		uidx_op_free(d);
		eu_check_op_damage(&b);
		b.p[2] = UIDX_OP_DEL; /* only an add has sizes */
		struct uidx_op *x = NULL;
		CU_ASSERT_NOT_EQUAL(codec_op_decode(b.p, b.len, &x), 0);
		free(b.p);
	}

	/* the state keeps sizes and their total; a DEL takes its part out */
	struct uidx_state *s = uidx_new();
	op->has_anchor = 0;
	CU_ASSERT_EQUAL(uidx_apply(s, op), 0);
	CU_ASSERT_EQUAL(s->total_size, 123456789);
	CU_ASSERT_EQUAL(s->n_unsized, 1);
	struct cbuf b = { 0 };
	struct uidx_state *d = eu_state_roundtrip(s, 4, &b);
	CU_ASSERT_EQUAL(d->total_size, 123456789);
	CU_ASSERT_EQUAL(d->n_unsized, 1);
	CU_ASSERT_EQUAL(d->msgs[1].size, 123456789);
	CU_ASSERT_EQUAL(d->msgs[2].size, UIDX_SIZE_UNKNOWN);
	uidx_set_size(d, op->ids[2], 5);
	CU_ASSERT_EQUAL(d->total_size, 123456794);
	CU_ASSERT_EQUAL(d->n_unsized, 0);
	uidx_set_size(d, op->ids[2], 6); /* a known size stays */
	CU_ASSERT_EQUAL(d->total_size, 123456794);
	for (size_t cut = 0; cut < b.len; cut++) {
		struct uidx_state *x = NULL;
		CU_ASSERT_NOT_EQUAL(codec_state_decode(b.p, cut, &x), 0);
	}
	free(b.p);
	struct uidx_op *del = eu_del_op(1);
	memcpy(del->ids[0], op->ids[1], UIDX_ID);
	CU_ASSERT_EQUAL(uidx_apply(d, del), 0);
	CU_ASSERT_EQUAL(d->total_size, 5);
	CU_ASSERT_EQUAL(d->n, 2);
	uidx_free(d);
	uidx_free(s);

	/* a state replayed from adds written before sizes: encoded as before
	 * (version 3 with an INIT), read back with every size unknown */
	free(op->item_sizes);
	op->item_sizes = NULL;
	struct uidx_op init = { .kind = UIDX_OP_INIT, .bump = 1700000000 };
	s = uidx_new();
	CU_ASSERT_EQUAL(uidx_apply(s, &init), 0);
	CU_ASSERT_EQUAL(uidx_apply(s, op), 0);
	CU_ASSERT_EQUAL(s->n_unsized, 3);
	CU_ASSERT_EQUAL(s->total_size, 0);
	struct cbuf c = { 0 };
	d = eu_state_roundtrip(s, 3, &c);
	CU_ASSERT_EQUAL(d->n, 3);
	CU_ASSERT_EQUAL(d->n_unsized, 3);
	CU_ASSERT_EQUAL(d->uv_init, 1700000000);
	free(c.p);
	/* and an add without sizes stays version 1 */
	struct cbuf o1 = { 0 };
	CU_ASSERT_EQUAL(codec_op_encode(op, &o1), 0);
	CU_ASSERT_EQUAL(o1.p[1], 1);
	free(o1.p);
	uidx_free(d);
	uidx_free(s);
	uidx_op_free(del);
	uidx_op_free(op);
}

/* ------------------------------------------------ usage across engines */

static void test_usage_two_engines(void)
{
	struct eu_env e;
	eu_env_open(&e, 11);
	struct mail_engine *other = eu_env_engine(&e, 12);
	uint64_t bytes, msgs;
	usage_of(e.eng, "amy", &bytes, &msgs);
	CU_ASSERT_EQUAL(bytes, 0);
	CU_ASSERT_EQUAL(msgs, 0);
	CU_ASSERT_EQUAL(append_sized(other, "amy", "INBOX", 3, 1000), 0);
	CU_ASSERT_EQUAL(mail_create(other, "amy", "Work", 0), 0);
	CU_ASSERT_EQUAL(append_sized(other, "amy", "Work", 2, 333), 0);
	CU_ASSERT_EQUAL(append_sized(e.eng, "amy", "Sent", 1, 50), 0);
	usage_of(e.eng, "amy", &bytes, &msgs);
	CU_ASSERT_EQUAL(bytes, 3000 + 666 + 50);
	CU_ASSERT_EQUAL(msgs, 6);
	usage_of(other, "amy", &bytes, &msgs);
	CU_ASSERT_EQUAL(bytes, 3716);
	CU_ASSERT_EQUAL(msgs, 6);
	/* another user's mail is not amy's */
	CU_ASSERT_EQUAL(append_sized(other, "bob", "INBOX", 1, 4096), 0);
	usage_of(e.eng, "amy", &bytes, &msgs);
	CU_ASSERT_EQUAL(bytes, 3716);

	/* expunge in one engine: the other's count goes down */
	struct mail_mailbox *mb;
	struct mail_view *v;
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(other, "amy", "INBOX", &mb), 0);
	v = eu_view(mb);
	uint32_t uid = mail_view_uid(v, 2);
	uint64_t vb, vn;
	CU_ASSERT_EQUAL(mail_view_sizes(v, &uid, 1, &vb, &vn), 0);
	CU_ASSERT_EQUAL(vb, 1000);
	CU_ASSERT_EQUAL(vn, 1);
	CU_ASSERT_EQUAL(mail_store(v, &uid, 1, MAIL_STORE_ADD, MAIL_F_DELETED, NULL, 0), 0);
	struct mail_status st;
	CU_ASSERT_EQUAL(mail_mailbox_status(mb, &st), 0);
	CU_ASSERT_EQUAL(st.size, 3000);
	CU_ASSERT_EQUAL(st.deleted, 1);
	CU_ASSERT_EQUAL(st.deleted_size, 1000);
	CU_ASSERT_EQUAL(mail_expunge(v, &uid, 1), 0);
	mail_view_close(v);
	mail_mailbox_close(mb);
	usage_of(e.eng, "amy", &bytes, &msgs);
	CU_ASSERT_EQUAL(bytes, 2716);
	CU_ASSERT_EQUAL(msgs, 5);

	/* copy adds, move does not */
	struct mail_mailbox *work;
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(other, "amy", "INBOX", &mb), 0);
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(other, "amy", "Work", &work), 0);
	v = eu_view(mb);
	uid = mail_view_uid(v, 1);
	CU_ASSERT_EQUAL(mail_copy(v, &uid, 1, work, NULL, NULL), 0);
	usage_of(e.eng, "amy", &bytes, &msgs);
	CU_ASSERT_EQUAL(bytes, 3716);
	CU_ASSERT_EQUAL(msgs, 6);
	CU_ASSERT_EQUAL(mail_move(v, &uid, 1, work, NULL, NULL), 0);
	usage_of(e.eng, "amy", &bytes, &msgs);
	CU_ASSERT_EQUAL(bytes, 3716);
	CU_ASSERT_EQUAL(msgs, 6);
	mail_view_close(v);
	mail_mailbox_close(mb);
	mail_mailbox_close(work);

	/* a deleted mailbox holds nothing any more */
	CU_ASSERT_EQUAL(mail_delete(other, "amy", "Work"), 0);
	usage_of(e.eng, "amy", &bytes, &msgs);
	/* (INBOX: one message left after the move; Sent: one) */
	CU_ASSERT_EQUAL(bytes, 1050);
	CU_ASSERT_EQUAL(msgs, 2);
	mail_engine_free(other);
	eu_env_close(&e);
}

/* ------------------------------------------------- storage calls, warm */

static void test_usage_calls(void)
{
	struct eu_env e;
	eu_env_open(&e, 21);
	CU_ASSERT_EQUAL(append_sized(e.eng, "cal", "INBOX", 3, 100), 0);
	CU_ASSERT_EQUAL(mail_create(e.eng, "cal", "Work", 0), 0);
	CU_ASSERT_EQUAL(append_sized(e.eng, "cal", "Work", 2, 100), 0);
	/* the default six and Work */
	struct mail_engine *fresh = eu_env_engine(&e, 22);
	agw_count_reset(e.cw);
	struct mail_usage u;
	CU_ASSERT_EQUAL(mail_user_usage(fresh, "cal", &u), 0);
	uint64_t cold = eu_total_calls(&e);
	CU_ASSERT_EQUAL(u.bytes, 500);
	CU_ASSERT_EQUAL(u.messages, 5);
	CU_ASSERT_EQUAL(u.mailboxes, 7);
	/* cold: the list, then per mailbox a checkpoint listing and a log
	 * read (two calls without snapshot batches); no checkpoint yet */
	CU_ASSERT_EQUAL(agw_count_get(e.cw, AGW_BLOB_LIST), 7);
	CU_ASSERT_EQUAL(agw_count_get(e.cw, AGW_ROW_READ), 1 + 7 * (eu_no_cas ? 2 : 1));

	/* warm, nothing changed: one call, whatever the number of mailboxes */
	agw_count_reset(e.cw);
	CU_ASSERT_EQUAL(mail_user_usage(fresh, "cal", &u), 0);
	uint64_t warm = eu_total_calls(&e);
	CU_ASSERT_EQUAL(warm, 1);
	CU_ASSERT_EQUAL(agw_count_items(e.cw, AGW_ROW_READ), 8);
	CU_ASSERT_EQUAL(u.bytes, 500);

	/* another engine appended to one mailbox: that one is read again */
	CU_ASSERT_EQUAL(append_sized(e.eng, "cal", "Work", 1, 77), 0);
	agw_count_reset(e.cw);
	CU_ASSERT_EQUAL(mail_user_usage(fresh, "cal", &u), 0);
	uint64_t one_changed = eu_total_calls(&e);
	CU_ASSERT_EQUAL(u.bytes, 577);
	CU_ASSERT_EQUAL(u.messages, 6);
	CU_ASSERT_EQUAL(one_changed, eu_no_cas ? 3 : 2);

	/* after a checkpoint, a cold count reads it and a short tail */
	struct mail_mailbox *mb = eu_box(e.eng, "cal", "INBOX", 0);
	CU_ASSERT_EQUAL(mail_mailbox_checkpoint(mb, 2), 0);
	mail_mailbox_close(mb);
	struct mail_engine *fresh2 = eu_env_engine(&e, 23);
	agw_count_reset(e.cw);
	CU_ASSERT_EQUAL(mail_user_usage(fresh2, "cal", &u), 0);
	uint64_t cold_ckpt = eu_total_calls(&e);
	CU_ASSERT_EQUAL(u.bytes, 577);
	CU_ASSERT_EQUAL(agw_count_get(e.cw, AGW_BLOB_GET), 1);
	printf("\n  usage calls (%s): cold %llu (7 mailboxes), cold with a checkpoint %llu, warm %llu, "
	       "one mailbox changed %llu\n",
	       eu_no_cas ? "no conditional writes" : "conditional writes", (unsigned long long)cold,
	       (unsigned long long)cold_ckpt, (unsigned long long)warm, (unsigned long long)one_changed);

	/* this engine's own append: with conditional writes it knows the
	 * token it left, so the next count is warm again */
	CU_ASSERT_EQUAL(append_sized(fresh, "cal", "INBOX", 1, 23), 0);
	agw_count_reset(e.cw);
	CU_ASSERT_EQUAL(mail_user_usage(fresh, "cal", &u), 0);
	CU_ASSERT_EQUAL(u.bytes, 600);
	if (!eu_no_cas)
		CU_ASSERT_EQUAL(eu_total_calls(&e), 1);
	mail_engine_free(fresh);
	mail_engine_free(fresh2);
	eu_env_close(&e);
}

/* ------------------------------- logs and checkpoints written before */

/* Writes, as a daemon of the previous version would, an add of n messages
 * without sizes (and their summaries, sizes[i] bytes each) to user's
 * mailbox `mbox`. */
static void write_legacy_add(struct eu_env *e, const char *user, const char *mbox, size_t n, const uint64_t *sizes)
{
	char spk[512], ipk[512];
	snprintf(spk, sizeof(spk), "%s/mail/%s", user, mbox);
	snprintf(ipk, sizeof(ipk), "%s/index/%s", user, mbox);
	struct uidx_op *op = calloc(1, sizeof(*op));
	op->kind = UIDX_OP_ADD;
	op->seen_uidnext = 1;
	op->n = n;
	op->ids = calloc(n, UIDX_ID);
	op->item_flags = calloc(n, sizeof(uint64_t));
	struct cbuf *sb = calloc(n, sizeof(*sb));
	struct aerogram_row_write *w = calloc(n + 2, sizeof(*w));
	char (*sks)[33] = calloc(n, sizeof(*sks));
	for (size_t i = 0; i < n; i++) {
		memset(op->ids[i], 0x40 + (int)i, UIDX_ID);
		op->ids[i][0] = 0; /* an old message id: time 0 */
		struct summary s = { 1000, sizes[i], (const uint8_t *)"Subject: old\r\n", 14, NULL, 0 };
		CU_ASSERT_EQUAL(codec_summary_encode(&s, &sb[i]), 0);
		mail_hex(op->ids[i], UIDX_ID, sks[i]);
		w[i] = (struct aerogram_row_write){ spk, sks[i], NULL, sb[i].p, sb[i].len, 0 };
	}
	struct cbuf ob = { 0 };
	CU_ASSERT_EQUAL(codec_op_encode(op, &ob), 0);
	CU_ASSERT_EQUAL(ob.p[1], 1);
	char ts[AG_TS_HEX + 1];
	ts_format((struct ag_ts){ e->clk.now, 42 }, ts);
	uint8_t wv[16] = { 7 };
	w[n] = (struct aerogram_row_write){ ipk, ts, NULL, ob.p, ob.len, 0 };
	w[n + 1] = (struct aerogram_row_write){ ipk, "watch", NULL, wv, sizeof(wv), 0 };
	CU_ASSERT_EQUAL(e->st.driver->row_insert(e->st.store, w, n + 2), 0);
	e->clk.now += 10;
	for (size_t i = 0; i < n; i++)
		free(sb[i].p);
	free(sb);
	free(ob.p);
	free(w);
	free(sks);
	uidx_op_free(op);
}

static void test_usage_legacy(void)
{
	struct eu_env e;
	eu_env_open(&e, 31);
	/* the list and INBOX as this version makes them, then an old add */
	struct mail_mailbox *mb = eu_box(e.eng, "old", "INBOX", 0);
	char id[33];
	snprintf(id, sizeof(id), "%s", mail_mailbox_id(mb));
	mail_mailbox_close(mb);
	static const uint64_t sizes[3] = { 100, 2000, 30000 };
	write_legacy_add(&e, "old", id, 3, sizes);

	/* a fresh engine: the state does not know the sizes; the count reads
	 * them from the summaries, once */
	struct mail_engine *a = eu_env_engine(&e, 32);
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(a, "old", "INBOX", &mb), 0);
	struct mail_status st;
	CU_ASSERT_EQUAL(mail_mailbox_status(mb, &st), 0);
	CU_ASSERT_EQUAL(st.exists, 3);
	CU_ASSERT_EQUAL(st.sizes_unknown, 3);
	struct mail_view *v = eu_view(mb);
	uint32_t uids[3] = { 1, 2, 3 };
	uint64_t vb, vn;
	CU_ASSERT_EQUAL(mail_view_sizes(v, uids, 3, &vb, &vn), 0);
	CU_ASSERT_EQUAL(vb, 32100);
	CU_ASSERT_EQUAL(vn, 3);
	mail_view_close(v);
	uint64_t bytes, msgs;
	usage_of(a, "old", &bytes, &msgs);
	CU_ASSERT_EQUAL(bytes, 32100);
	CU_ASSERT_EQUAL(msgs, 3);
	CU_ASSERT_EQUAL(mail_mailbox_status(mb, &st), 0);
	CU_ASSERT_EQUAL(st.sizes_unknown, 0);
	CU_ASSERT_EQUAL(st.size, 32100);
	/* a new message has its size in the log */
	mail_mailbox_close(mb);
	CU_ASSERT_EQUAL(append_sized(a, "old", "INBOX", 1, 64), 0);
	agw_count_reset(e.cw);
	usage_of(a, "old", &bytes, &msgs);
	CU_ASSERT_EQUAL(bytes, 32164);
	CU_ASSERT_EQUAL(msgs, 4);
	/* the checkpoint keeps the sizes read: a fresh engine reads no summary */
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(a, "old", "INBOX", &mb), 0);
	CU_ASSERT_EQUAL(mail_mailbox_checkpoint(mb, 2), 0);
	mail_mailbox_close(mb);
	struct mail_engine *b = eu_env_engine(&e, 33);
	usage_of(b, "old", &bytes, &msgs);
	CU_ASSERT_EQUAL(bytes, 32164);
	CU_ASSERT_EQUAL(msgs, 4);
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(b, "old", "INBOX", &mb), 0);
	CU_ASSERT_EQUAL(mail_mailbox_status(mb, &st), 0);
	CU_ASSERT_EQUAL(st.sizes_unknown, 0);
	mail_mailbox_close(mb);
	mail_engine_free(a);
	mail_engine_free(b);
	eu_env_close(&e);
}

static const struct agt_test tests[] = {
	{ "codec: sizes in adds and checkpoints; older versions read", test_codec_sizes },
	{ "usage: exact across engines (append, expunge, copy, move, delete)", test_usage_two_engines },
	{ "usage: storage calls cold and warm", test_usage_calls },
	{ "usage: adds and checkpoints without sizes", test_usage_legacy },
	AGT_END,
};

/* the codec does not depend on the store: once */
static const CU_TestFunc codec[] = { test_codec_sizes, NULL };

int main(int argc, char **argv)
{
	return eu_main(argc, argv, "usage", tests, codec, NULL);
}
