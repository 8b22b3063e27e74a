/* oplog.c - the Bayou-like operation log of one mailbox.
 *
 * Rows: pk <u>/index/<mbox>, sk <timestamp> (one operation each, written
 * once without a token) and sk "watch" (rewritten after each append; the
 * pollers wait on it). Blobs: <u>/index/<mbox>/checkpoint/<ts>, the state
 * after every operation older than <ts>.
 *
 * Every engine replays the operations it knows in timestamp order. When a
 * sync finds an operation older than ones already applied, the state is
 * rewound to the last cached state before it and replayed (states are
 * cached every OPLOG_KEEP_STATE_EVERY operations). The local history is the
 * union of what was read and what this engine wrote: operations are
 * immutable and named by their timestamp, so a union never loses one. */
#include "host/mail/mail_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int oplog_init(struct oplog *log, struct mail_engine *eng, const char *user, const char *mbox_id)
{
	memset(log, 0, sizeof(*log));
	log->eng = eng;
	size_t n = strlen(user) + strlen(mbox_id) + 32;
	log->pk = malloc(n);
	log->ckpt_prefix = malloc(n);
	log->cur = uidx_new();
	if (!log->pk || !log->ckpt_prefix || !log->cur) {
		oplog_clear(log);
		return AEROGRAM_EINTERNAL;
	}
	snprintf(log->pk, n, "%s/index/%s", user, mbox_id);
	snprintf(log->ckpt_prefix, n, "%s/index/%s/checkpoint/", user, mbox_id);
	return 0;
}

static void hist_free_from(struct oplog *log, size_t from)
{
	for (size_t i = from; i < log->n; i++) {
		uidx_op_free(log->hist[i].op);
		uidx_free(log->hist[i].cached);
	}
	if (from < log->n)
		log->n = from;
}

void oplog_clear(struct oplog *log)
{
	hist_free_from(log, 0);
	free(log->hist);
	uidx_free(log->ckpt_state);
	uidx_free(log->cur);
	free(log->pk);
	free(log->ckpt_prefix);
	free(log->watch_token);
	memset(log, 0, sizeof(*log));
}

static int hist_reserve(struct oplog *log, size_t extra)
{
	if (log->n + extra <= log->cap)
		return 0;
	size_t cap = log->cap ? log->cap : 64;
	while (cap < log->n + extra)
		cap *= 2;
	struct oplog_entry *h = realloc(log->hist, cap * sizeof(*h));
	if (h == NULL)
		return -1;
	log->hist = h;
	log->cap = cap;
	return 0;
}

/* Applies hist[i] to cur and caches a copy on the boundaries. */
static int apply_entry(struct oplog *log, size_t i)
{
	int rc = uidx_apply(log->cur, log->hist[i].op);
	if (rc != 0)
		return rc;
	uidx_free(log->hist[i].cached);
	log->hist[i].cached = NULL;
	if ((i + 1) % OPLOG_KEEP_STATE_EVERY == 0) {
		log->hist[i].cached = uidx_clone(log->cur);
		if (log->hist[i].cached == NULL)
			return AEROGRAM_EINTERNAL;
	}
	return 0;
}

/* The state after the first `upto` entries, as a fresh copy. */
static struct uidx_state *state_at(struct oplog *log, size_t upto)
{
	if (upto == log->n)
		return uidx_clone(log->cur);
	size_t j = upto;
	while (j > 0 && log->hist[j - 1].cached == NULL)
		j--;
	struct uidx_state *s;
	if (j > 0)
		s = uidx_clone(log->hist[j - 1].cached);
	else
		s = log->ckpt_state ? uidx_clone(log->ckpt_state) : uidx_new();
	for (size_t i = j; s && i < upto; i++)
		if (uidx_apply(s, log->hist[i].op) != 0) {
			uidx_free(s);
			return NULL;
		}
	return s;
}

/* Rewinds to the state before entry `from` and replays from there. */
static int replay_from(struct oplog *log, size_t from)
{
	for (size_t i = from; i < log->n; i++) {
		uidx_free(log->hist[i].cached);
		log->hist[i].cached = NULL;
	}
	struct uidx_state *s = state_at(log, from);
	if (s == NULL)
		return AEROGRAM_EINTERNAL;
	uidx_free(log->cur);
	log->cur = s;
	for (size_t i = from; i < log->n; i++) {
		int rc = apply_entry(log, i);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* ---- reading ---- */

struct remote {
	struct oplog_entry *e;
	size_t n, cap;
	struct oplog *log;
};

/* Chooses among a row's values: the single live one, or with siblings (which
 * a correct writer never creates: log keys are unique) the first in byte
 * order that decodes, so every engine makes the same choice. */
static int remote_row(void *arg, const struct aerogram_row *row)
{
	struct remote *r = arg;
	struct ag_ts ts;
	if (ts_parse(row->sk, &ts) != 0)
		return 0;
	const struct aerogram_value *best = NULL;
	struct uidx_op *best_op = NULL;
	size_t live = 0;
	for (size_t i = 0; i < row->n_values; i++) {
		const struct aerogram_value *v = &row->values[i];
		if (v->tombstone)
			continue;
		live++;
		struct uidx_op *op = NULL;
		if (codec_op_decode(v->data, v->len, &op) != 0)
			continue;
		int better = best == NULL;
		if (!better) {
			size_t m = v->len < best->len ? v->len : best->len;
			int c = memcmp(v->data, best->data, m);
			better = c < 0 || (c == 0 && v->len < best->len);
		}
		if (better) {
			uidx_op_free(best_op);
			best_op = op;
			best = v;
		} else {
			uidx_op_free(op);
		}
	}
	if (live > 1)
		r->log->eng->opt.log(r->log->eng->opt.log_arg, AEROGRAM_LOG_WARNING,
		                     "log entry has sibling values; the first in byte order is used");
	if (live > 0 && best_op == NULL) {
		mail_log(r->log->eng, AEROGRAM_LOG_ERROR, "%s/%s: undecodable log entry skipped",
		         r->log->pk, row->sk);
		return 0;
	}
	if (best_op == NULL)
		return 0;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 64;
		struct oplog_entry *g = realloc(r->e, cap * sizeof(*g));
		if (g == NULL) {
			uidx_op_free(best_op);
			return AEROGRAM_EINTERNAL;
		}
		r->e = g;
		r->cap = cap;
	}
	best_op->ts = ts;
	r->e[r->n].ts = ts;
	r->e[r->n].op = best_op;
	r->e[r->n].cached = NULL;
	r->n++;
	r->log->last_sync_rows++;
	return 0;
}

/* Finds the newest checkpoint newer than the one held, falling back to
 * older ones when a blob is missing or corrupt. *out is NULL when there is
 * none; nothing changes in log until the caller commits it. */
static int load_checkpoint(struct oplog *log, struct uidx_state **out, struct ag_ts *out_ts,
                           size_t *n_listed)
{
	struct mail_engine *eng = log->eng;
	char **keys = NULL;
	size_t nk = 0;
	*out = NULL;
	int rc = mail_list_blobs(eng, log->ckpt_prefix, &keys, &nk);
	if (rc != 0)
		return rc;
	*n_listed = nk;
	size_t plen = strlen(log->ckpt_prefix);
	/* keys come in byte order, which is timestamp order: walk from the end */
	for (size_t i = nk; i-- > 0;) {
		struct ag_ts ts;
		if (ts_parse(keys[i] + plen, &ts) != 0)
			continue;
		if (ts_cmp(ts, log->ckpt_ts) <= 0)
			break;
		struct aerogram_blob_request req = { keys[i], 0, 0 };
		struct aerogram_blob_result *res = NULL;
		rc = eng->st.driver->blob_get(eng->st.store, &req, 1, &res);
		if (rc != 0) {
			mail_log(eng, AEROGRAM_LOG_WARNING, "blob_get %s: %s", keys[i], mail_store_error(eng));
			break;
		}
		struct uidx_state *s = NULL;
		int st = res->n_blobs ? res->blobs[0].status : AEROGRAM_ENOTFOUND;
		if (st == 0)
			st = codec_state_decode(res->blobs[0].data, res->blobs[0].len, &s);
		eng->st.driver->blob_result_free(eng->st.store, res);
		if (st == AEROGRAM_ENOTFOUND || st == AEROGRAM_EINVAL) {
			mail_log(eng, AEROGRAM_LOG_WARNING, "checkpoint %s unusable (%d); trying an older one",
			         keys[i], st);
			continue;
		}
		if (st != 0) { /* a transient failure of this one read: try again later */
			rc = st;
			break;
		}
		*out = s;
		*out_ts = ts;
		break;
	}
	mail_free_strv(keys, nk);
	return rc;
}

int oplog_sync(struct oplog *log)
{
	struct mail_engine *eng = log->eng;
	struct uidx_state *nck = NULL;
	struct ag_ts nts = { 0, 0 };
	log->last_sync_rows = 0;
	log->ckpt_loaded = 0;
	size_t n_ckpts = 0;
	int rc = load_checkpoint(log, &nck, &nts, &n_ckpts);
	if (rc != 0)
		return rc;
	struct ag_ts from = nck ? nts : log->ckpt_ts;
	char start[AG_TS_HEX + 1];
	int has_start = from.ms != 0 || from.rnd != 0;
	if (has_start)
		ts_format(from, start);
	struct aerogram_row_query q[2] = {
		{ .pk = log->pk, .sk = "watch" },
		{ .pk = log->pk, .start = has_start ? start : NULL, .end = "watch", .limit = OPLOG_PAGE },
	};
	struct aerogram_row_result *res = NULL;
	rc = eng->st.driver->row_read(eng->st.store, q, 2, &res);
	if (rc != 0) {
		mail_log(eng, AEROGRAM_LOG_WARNING, "row_read %s: %s", log->pk, mail_store_error(eng));
		uidx_free(nck);
		return rc;
	}
	struct remote r = { NULL, 0, 0, log };
	char *next = NULL;
	int watch_seen = res->n_pages >= 1 && res->pages[0].n_rows >= 1;
	if (watch_seen) {
		free(log->watch_token);
		log->watch_token = strdup(res->pages[0].rows[0].token);
	}
	if (res->n_pages >= 2) {
		const struct aerogram_row_page *pg = &res->pages[1];
		for (size_t i = 0; i < pg->n_rows && rc == 0; i++)
			rc = remote_row(&r, &pg->rows[i]);
		if (rc == 0 && pg->more && pg->next_start)
			next = strdup(pg->next_start);
	}
	eng->st.driver->row_result_free(eng->st.store, res);
	if (rc == 0 && next) {
		struct aerogram_row_query more = q[1];
		more.start = next;
		rc = mail_read_range(eng, &more, remote_row, &r);
	}
	free(next);
	if (rc != 0) {
		/* nothing is committed: a half-read sync never shows a state */
		for (size_t i = 0; i < r.n; i++)
			uidx_op_free(r.e[i].op);
		free(r.e);
		uidx_free(nck);
		return rc;
	}
	if (!watch_seen && n_ckpts == 0 && r.n == 0 &&
	    (log->n > 0 || log->ckpt_ts.ms != 0 || log->ckpt_ts.rnd != 0)) {
		/* Everything this engine knew is gone from the store: the mailbox
		 * was deleted (by another daemon). */
		free(r.e);
		return AEROGRAM_ENOTFOUND;
	}
	if (nck) {
		/* Start over from the newer checkpoint and the tail just read. */
		struct uidx_state *c = uidx_clone(nck);
		if (c == NULL) {
			for (size_t i = 0; i < r.n; i++)
				uidx_op_free(r.e[i].op);
			free(r.e);
			uidx_free(nck);
			return AEROGRAM_EINTERNAL;
		}
		hist_free_from(log, 0);
		uidx_free(log->ckpt_state);
		log->ckpt_state = nck;
		log->ckpt_ts = nts;
		log->ckpt_loaded = 1;
		uidx_free(log->cur);
		log->cur = c;
		log->version++;
	}

	/* Merge: the union of the local history and what was read. */
	size_t n_new = 0;
	size_t li = 0, first_new = SIZE_MAX;
	struct oplog_entry *merged = NULL;
	size_t merged_cap = log->n + r.n + 1;
	if (rc == 0) {
		merged = malloc(merged_cap * sizeof(*merged));
		if (merged == NULL)
			rc = AEROGRAM_EINTERNAL;
	}
	if (rc == 0) {
		size_t ri = 0, m = 0;
		while (li < log->n || ri < r.n) {
			int c = li == log->n ? 1 : ri == r.n ? -1 : ts_cmp(log->hist[li].ts, r.e[ri].ts);
			if (c < 0) {
				merged[m++] = log->hist[li++];
			} else if (c == 0) {
				merged[m++] = log->hist[li++];
				uidx_op_free(r.e[ri++].op);
			} else {
				if (first_new == SIZE_MAX)
					first_new = m;
				merged[m++] = r.e[ri++];
				n_new++;
			}
		}
		free(log->hist);
		log->hist = merged;
		log->n = m;
		log->cap = merged_cap;
	} else {
		for (size_t i = 0; i < r.n; i++)
			uidx_op_free(r.e[i].op);
	}
	free(r.e);
	if (rc != 0)
		return rc;
	if (n_new == 0)
		return 0;
	rc = replay_from(log, first_new);
	log->version++;
	return rc;
}

/* ---- writing ---- */

int oplog_push(struct oplog *log, struct uidx_op *op)
{
	struct mail_engine *eng = log->eng;
	struct ag_ts prev = log->n ? log->hist[log->n - 1].ts : log->ckpt_ts;
	struct ag_ts ts = ts_after(eng, prev);
	op->ts = ts;
	char sk[AG_TS_HEX + 1];
	ts_format(ts, sk);
	struct cbuf b = { 0 };
	int rc = codec_op_encode(op, &b);
	if (rc == 0 && hist_reserve(log, 1) < 0)
		rc = AEROGRAM_EINTERNAL;
	if (rc != 0) {
		free(b.p);
		uidx_op_free(op);
		return rc;
	}
	struct aerogram_row_write w = { log->pk, sk, NULL, b.p, b.len, 0 };
	for (int t = 0; t < OPLOG_WRITE_TRIES; t++) {
		/* Same key and bytes on every try: an earlier try that was applied
		 * and reported failed makes this one a no-op, never a duplicate. */
		rc = eng->st.driver->row_insert(eng->st.store, &w, 1);
		if (rc != AEROGRAM_EUNAVAILABLE)
			break;
	}
	free(b.p);
	if (rc != 0) {
		mail_log(eng, AEROGRAM_LOG_WARNING, "log append %s/%s: %s", log->pk, sk, mail_store_error(eng));
		uidx_op_free(op);
		return rc;
	}
	uint8_t wv[16];
	mail_rand_bytes(eng, wv, sizeof(wv));
	struct aerogram_row_write ww = { log->pk, "watch", log->watch_token, wv, sizeof(wv), 0 };
	int wrc = eng->st.driver->row_insert(eng->st.store, &ww, 1);
	if (wrc == 0)
		memcpy(log->own_watch[log->n_own_watch++ % MAIL_OWN_WATCH], wv, sizeof(wv));
	else /* the entry is written: others learn of it at their next sync */
		mail_log(eng, AEROGRAM_LOG_WARNING, "watch rewrite %s: %s", log->pk, mail_store_error(eng));

	log->hist[log->n].ts = ts;
	log->hist[log->n].op = op;
	log->hist[log->n].cached = NULL;
	log->n++;
	rc = apply_entry(log, log->n - 1);
	log->version++;
	if (rc == 0)
		oplog_checkpoint(log, 0);
	return rc;
}

/* ---- checkpoints ---- */

static struct ag_ts ts_succ(struct ag_ts t)
{
	if (t.rnd == UINT64_MAX) {
		t.ms++;
		t.rnd = 0;
	} else {
		t.rnd++;
	}
	return t;
}

/* Keeps the newest OPLOG_CHECKPOINTS_TO_KEEP checkpoints and deletes the
 * log entries older than the oldest one kept. */
static int checkpoint_gc(struct oplog *log)
{
	struct mail_engine *eng = log->eng;
	char **keys = NULL;
	size_t nk = 0;
	int rc = mail_list_blobs(eng, log->ckpt_prefix, &keys, &nk);
	if (rc != 0)
		return rc;
	size_t plen = strlen(log->ckpt_prefix);
	size_t valid = 0;
	for (size_t i = 0; i < nk; i++) {
		struct ag_ts t;
		if (ts_parse(keys[i] + plen, &t) == 0)
			keys[valid++] = keys[i];
		else
			free(keys[i]);
	}
	if (valid > OPLOG_CHECKPOINTS_TO_KEEP) {
		size_t drop = valid - OPLOG_CHECKPOINTS_TO_KEEP;
		rc = eng->st.driver->blob_delete(eng->st.store, (const char *const *)keys, drop);
		if (rc == 0) {
			struct aerogram_row_query q = { .pk = log->pk, .end = keys[drop] + plen };
			rc = eng->st.driver->row_delete(eng->st.store, &q, 1, NULL);
		}
		if (rc != 0)
			mail_log(eng, AEROGRAM_LOG_WARNING, "checkpoint collection %s: %s", log->pk,
			         mail_store_error(eng));
	}
	mail_free_strv(keys, valid);
	return rc;
}

int oplog_checkpoint(struct oplog *log, int force)
{
	struct mail_engine *eng = log->eng;
	uint64_t now = mail_now(eng);
	if (!force && log->last_ckpt_try && now - log->last_ckpt_try < OPLOG_CHECKPOINT_TRY_MS)
		return 0;
	log->last_ckpt_try = now;
	if (log->n == 0)
		return 0;
	/* Everything below the checkpoint must be known: a stale writer that
	 * checkpointed its own view would hide others' older operations. */
	int synced = 0;
again:;
	size_t settled = 0, old = 0;
	while (settled < log->n && log->hist[settled].ts.ms + OPLOG_SETTLE_MS <= now)
		settled++;
	while (old < log->n && log->hist[old].ts.ms + OPLOG_CHECKPOINT_INTERVAL_MS <= now)
		old++;
	size_t icp = 0;
	if (force > 1)
		icp = log->n;
	else if (settled >= OPLOG_CHECKPOINT_MAX_OPS || (force && settled > 0))
		icp = settled;
	else if (old >= OPLOG_CHECKPOINT_MIN_OPS &&
	         log->hist[old - 1].ts.ms >= log->ckpt_ts.ms + OPLOG_CHECKPOINT_INTERVAL_MS)
		icp = old;
	if (icp == 0 || log->n == 0)
		return 0;
	if (!synced) {
		int rc = oplog_sync(log);
		if (rc != 0)
			return rc;
		synced = 1;
		goto again;
	}
	/* The checkpoint's timestamp is that of the first operation it does not
	 * include; with every operation included, just after the last one. */
	struct ag_ts cts = icp < log->n ? log->hist[icp].ts : ts_succ(log->hist[log->n - 1].ts);
	struct uidx_state *s = state_at(log, icp);
	if (s == NULL)
		return AEROGRAM_EINTERNAL;
	uidx_prune_recent(s);
	struct cbuf b = { 0 };
	int rc = codec_state_encode(s, &b);
	char key[1024];
	char tsx[AG_TS_HEX + 1];
	ts_format(cts, tsx);
	snprintf(key, sizeof(key), "%s%s", log->ckpt_prefix, tsx);
	if (rc == 0) {
		rc = eng->st.driver->blob_put(eng->st.store, key, b.p, b.len, NULL, 0);
		if (rc != 0)
			mail_log(eng, AEROGRAM_LOG_WARNING, "checkpoint %s: %s", key, mail_store_error(eng));
	}
	free(b.p);
	if (rc != 0) {
		uidx_free(s);
		return rc;
	}
	/* Adopt it: drop the history it covers. */
	uidx_free(log->ckpt_state);
	log->ckpt_state = s;
	log->ckpt_ts = cts;
	for (size_t i = 0; i < icp; i++) {
		uidx_op_free(log->hist[i].op);
		uidx_free(log->hist[i].cached);
	}
	memmove(log->hist, log->hist + icp, (log->n - icp) * sizeof(*log->hist));
	log->n -= icp;
	/* cached states sit on boundaries counted from the start: re-place them */
	for (size_t i = 0; i < log->n; i++) {
		uidx_free(log->hist[i].cached);
		log->hist[i].cached = NULL;
	}
	return checkpoint_gc(log);
}
