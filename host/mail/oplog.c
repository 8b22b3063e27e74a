/* oplog.c - the operation log of one mailbox: sync, push, checkpoints.
 *
 * Rows: pk <u>/index/<mbox>, sk <timestamp> (one operation each, written
 * once), sk "watch" (rewritten after each entry; pollers wait on it) and,
 * without conditional writes, sk "xturn/<engine id>" (each engine's claim
 * of the turn to add messages). Blobs: <u>/index/<mbox>/checkpoint/<ts>, the state after every
 * entry older than <ts> (the cut).
 *
 * Every engine applies the entries it knows in timestamp order. How it
 * learns them depends on the driver (README: incremental sync):
 *
 * - With row_insert_if (sqlite, memory), every entry is written on the
 *   condition that the watch row is unchanged since the writer read the log,
 *   so entries become visible in timestamp order: a sync reads only the
 *   rows after the newest entry it applied, nothing is ever late, and the
 *   engine keeps the current state alone.
 * - Without it (Garage), an entry can become visible after newer ones. A
 *   sync re-reads from OPLOG_OVERLAP_MS before the previous sync began; a
 *   writer whose write took longer than OPLOG_LATE_MS announces it with a
 *   LATE entry; the last OPLOG_FOLD_MS of entries stay in memory over a base
 *   state, so that a late one is merged by replaying them in order. */
#include "host/mail/mail_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void announce_if_late(struct oplog *log, struct ag_ts ts, int late_depth);

/* An empty state, keeping the recently expunged list when the engine has a
 * retention (every state of the log is made here or cloned from one). */
static struct uidx_state *new_state(const struct oplog *log)
{
	struct uidx_state *s = uidx_new();
	if (s)
		s->keep_expunged = log->eng->retention_ms > 0;
	return s;
}

int oplog_init(struct oplog *log, struct mail_engine *eng, const char *user, const char *mbox_id)
{
	memset(log, 0, sizeof(*log));
	log->eng = eng;
	log->cas = eng->cas;
	size_t n = strlen(user) + strlen(mbox_id) + 32;
	log->pk = malloc(n);
	log->ckpt_prefix = malloc(n);
	log->cur = new_state(log);
	char eid[33];
	mail_hex(eng->id, sizeof(eng->id), eid);
	snprintf(log->turn_sk, sizeof(log->turn_sk), "%s%s", OPLOG_TURN_PREFIX, eid);
	if (!log->pk || !log->ckpt_prefix || !log->cur) {
		oplog_clear(log);
		return AEROGRAM_EINTERNAL;
	}
	snprintf(log->pk, n, "%s/index/%s", user, mbox_id);
	snprintf(log->ckpt_prefix, n, "%s/index/%s/checkpoint/", user, mbox_id);
	return 0;
}

static void hist_free(struct oplog_entry *h, size_t n)
{
	for (size_t i = 0; i < n; i++)
		uidx_op_free(h[i].op);
}

void oplog_clear(struct oplog *log)
{
	hist_free(log->hist, log->n);
	free(log->hist);
	uidx_free(log->base);
	uidx_free(log->cur);
	free(log->pk);
	free(log->ckpt_prefix);
	free(log->watch_token);
	free(log->turn_token);
	memset(log, 0, sizeof(*log));
}

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

static int ts_zero(struct ag_ts t)
{
	return t.ms == 0 && t.rnd == 0;
}

/* The position of ts in hist, or where it would go; *found says which. */
static size_t hist_find(const struct oplog *log, struct ag_ts ts, int *found)
{
	size_t lo = 0, hi = log->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = ts_cmp(log->hist[mid].ts, ts);
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < log->n && ts_cmp(log->hist[lo].ts, ts) == 0;
	return lo;
}

static int hist_reserve(struct oplog *log, size_t extra)
{
	return mail_grow(&log->hist, &log->cap, log->n + extra, sizeof(*log->hist), 64);
}

/* Whether the entry ts is known: applied and still in memory, or older
 * than what memory holds (folded into the base, or covered by the
 * checkpoint the state started from). */
static int entry_known(const struct oplog *log, struct ag_ts ts)
{
	if (log->cas)
		return ts_cmp(ts, log->newest) <= 0;
	if (ts_cmp(ts, log->base_ts) < 0)
		return 1;
	int found;
	hist_find(log, ts, &found);
	return found;
}

/* Counts an entry applied after the newest checkpoint's cut. */
static void tail_count(struct oplog *log, struct ag_ts ts, uint32_t bytes)
{
	if (ts_cmp(ts, log->ckpt_ts) >= 0) {
		log->tail_n++;
		log->tail_bytes += bytes;
	}
	log->last_activity = mail_now(log->eng);
}

/* Applies an entry newer than every other one to cur (and, without
 * conditional writes, records it in hist, which takes the op). */
static int apply_newest(struct oplog *log, struct ag_ts ts, struct uidx_op *op, uint32_t bytes)
{
	op->ts = ts;
	int rc = uidx_apply(log->cur, op);
	if (rc == 0 && !log->cas) {
		if (hist_reserve(log, 1) < 0) {
			rc = AEROGRAM_EINTERNAL;
		} else {
			log->hist[log->n].ts = ts;
			log->hist[log->n].op = op;
			log->hist[log->n].bytes = bytes;
			log->n++;
			op = NULL;
		}
	}
	uidx_op_free(op);
	if (rc != 0)
		return rc;
	if (ts_cmp(ts, log->newest) > 0)
		log->newest = ts;
	tail_count(log, ts, bytes);
	log->version++;
	return 0;
}

/* The state after the first `upto` entries of hist, as a fresh copy. */
static struct uidx_state *state_at(struct oplog *log, size_t upto)
{
	if (log->cas || upto == log->n)
		return uidx_clone(log->cur);
	struct uidx_state *s = log->base ? uidx_clone(log->base) : new_state(log);
	for (size_t i = 0; s && i < upto; i++)
		if (uidx_apply(s, log->hist[i].op) != 0) {
			uidx_free(s);
			return NULL;
		}
	return s;
}

/* Without conditional writes: rebuilds cur from the base and every entry in
 * memory (after a late entry was inserted among them), and recounts the
 * tail. */
static int rebuild(struct oplog *log)
{
	struct uidx_state *s = log->base ? uidx_clone(log->base) : new_state(log);
	for (size_t i = 0; s && i < log->n; i++)
		if (uidx_apply(s, log->hist[i].op) != 0) {
			uidx_free(s);
			s = NULL;
		}
	if (s == NULL)
		return AEROGRAM_EINTERNAL;
	uidx_free(log->cur);
	log->cur = s;
	log->tail_n = log->tail_bytes = 0;
	for (size_t i = 0; i < log->n; i++)
		if (ts_cmp(log->hist[i].ts, log->ckpt_ts) >= 0) {
			log->tail_n++;
			log->tail_bytes += log->hist[i].bytes;
		}
	if (log->n && ts_cmp(log->hist[log->n - 1].ts, log->newest) > 0)
		log->newest = log->hist[log->n - 1].ts;
	log->version++;
	return 0;
}

/* Without conditional writes: folds the entries older than OPLOG_FOLD_MS
 * into the base state, in batches. */
static void fold(struct oplog *log)
{
	if (log->cas || log->n < 2 * OPLOG_FOLD_BATCH)
		return;
	uint64_t now = mail_now(log->eng);
	size_t k = 0;
	while (k < log->n - 1 && log->hist[k].ts.ms + OPLOG_FOLD_MS <= now)
		k++;
	if (k < OPLOG_FOLD_BATCH)
		return;
	struct uidx_state *b = log->base ? log->base : new_state(log);
	if (b == NULL)
		return;
	size_t done = 0;
	while (done < k && uidx_apply(b, log->hist[done].op) == 0)
		done++;
	log->base = b;
	if (done == 0)
		return;
	log->base_ts = log->hist[done].ts; /* done < n: the first entry kept */
	hist_free(log->hist, done);
	memmove(log->hist, log->hist + done, (log->n - done) * sizeof(*log->hist));
	log->n -= done;
}

/* ---- reading ---- */

/* Entries read by one sync, ascending. */
struct remote {
	struct oplog_entry *e;
	size_t n, cap;
	struct oplog *log;
};

static void remote_free(struct remote *r)
{
	hist_free(r->e, r->n);
	free(r->e);
	r->e = NULL;
	r->n = r->cap = 0;
}

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
	r->log->last_sync_rows++;
	r->log->rows_read++;
	if (live > 1)
		mail_log(r->log->eng, AEROGRAM_LOG_WARNING, "%s/%s: log entry has sibling values; the first in byte order is used",
		         r->log->pk, row->sk);
	if (live > 0 && best_op == NULL) {
		mail_log(r->log->eng, AEROGRAM_LOG_ERROR, "%s/%s: undecodable log entry skipped", r->log->pk, row->sk);
		return 0;
	}
	if (best_op == NULL)
		return 0;
	if (mail_grow(&r->e, &r->cap, r->n + 1, sizeof(*r->e), 64) != 0) {
		uidx_op_free(best_op);
		return AEROGRAM_EINTERNAL;
	}
	best_op->ts = ts;
	r->e[r->n].ts = ts;
	r->e[r->n].op = best_op;
	r->e[r->n].bytes = (uint32_t)(best->len > UINT32_MAX ? UINT32_MAX : best->len);
	r->n++;
	return 0;
}

/* One read of the log: the watch row, the range from `start` (paginated)
 * and optionally the claim rows of the turn to add (every engine's). */
struct read_result {
	int watch_seen;
	char *watch_token;
	char *own_token;     /* the token of this engine's claim row */
	struct turn_value {
		int own;         /* in this engine's row */
		uint8_t state, claim[16];
		struct ag_ts add;
	} *turn;
	size_t n_turn;
};

static void read_result_clear(struct read_result *rr)
{
	free(rr->watch_token);
	free(rr->own_token);
	free(rr->turn);
	memset(rr, 0, sizeof(*rr));
}

static int turn_decode(const struct aerogram_value *v, struct turn_value *out);

static int read_log(struct oplog *log, const char *start, int with_turn, struct remote *r,
                    struct read_result *rr)
{
	struct mail_engine *eng = log->eng;
	memset(rr, 0, sizeof(*rr));
	struct aerogram_row_query q[3] = {
		{ .pk = log->pk, .sk = "watch" },
		{ .pk = log->pk, .start = start, .end = "watch", .limit = OPLOG_PAGE },
		{ .pk = log->pk, .prefix = OPLOG_TURN_PREFIX },
	};
	/* The watch row's token must cover nothing the range read missed: a
	 * poll waits on that token, and a quiet mailbox skips its reads until
	 * the token changes. A writer writes its entry, then the watch row. In
	 * one batch that holds only when the batch is one snapshot; otherwise
	 * (Garage: each query of a ReadBatch is its own quorum read) the watch
	 * row is read first, in a call of its own, and the log after it, so
	 * every entry whose watch write the token shows was acknowledged before
	 * the range read began and is in it (host/mail/README.md, "Reading the
	 * log"). */
	struct aerogram_row_result *wres = NULL, *res = NULL;
	size_t first = 0, nq = with_turn ? 3 : 2;
	int rc = 0;
	if (!eng->snapshot_reads) {
		rc = store_row_read(eng, q, 1, &wres, log->pk);
		first = 1;
	}
	if (rc == 0)
		rc = store_row_read(eng, q + first, nq - first, &res, log->pk);
	if (rc != 0) {
		store_row_result_free(eng, wres);
		return rc;
	}
	/* pages[k] of the combined answer, k as in q */
	const struct aerogram_row_page *pages[3] = { NULL, NULL, NULL };
	for (size_t k = 0; k < nq; k++) {
		const struct aerogram_row_result *from = k < first ? wres : res;
		size_t at = k < first ? k : k - first;
		if (at < from->n_pages)
			pages[k] = &from->pages[at];
	}
	char *next = NULL;
	if (pages[0] && pages[0]->n_rows >= 1) {
		rr->watch_seen = 1;
		rr->watch_token = strdup(pages[0]->rows[0].token);
		if (rr->watch_token == NULL)
			rc = AEROGRAM_EINTERNAL;
	}
	if (rc == 0 && pages[1]) {
		const struct aerogram_row_page *pg = pages[1];
		for (size_t i = 0; i < pg->n_rows && rc == 0; i++)
			rc = remote_row(r, &pg->rows[i]);
		if (rc == 0 && pg->more && pg->next_start && (next = strdup(pg->next_start)) == NULL)
			rc = AEROGRAM_EINTERNAL;
	}
	if (rc == 0 && with_turn && pages[2]) {
		/* a few rows (one per engine that ever added here), one value each */
		const struct aerogram_row_page *pg = pages[2];
		size_t nv = 0;
		for (size_t i = 0; i < pg->n_rows; i++)
			nv += pg->rows[i].n_values;
		rr->turn = calloc(nv ? nv : 1, sizeof(*rr->turn));
		if (rr->turn == NULL)
			rc = AEROGRAM_EINTERNAL;
		for (size_t i = 0; rc == 0 && i < pg->n_rows; i++) {
			const struct aerogram_row *row = &pg->rows[i];
			int own = strcmp(row->sk, log->turn_sk) == 0;
			if (own && (rr->own_token = strdup(row->token)) == NULL)
				rc = AEROGRAM_EINTERNAL;
			for (size_t k = 0; rc == 0 && k < row->n_values; k++)
				if (turn_decode(&row->values[k], &rr->turn[rr->n_turn]) == 0)
					rr->turn[rr->n_turn++].own = own;
		}
	}
	store_row_result_free(eng, res);
	store_row_result_free(eng, wres);
	if (rc == 0 && next) {
		struct aerogram_row_query more = q[1];
		more.start = next;
		rc = mail_read_range(eng, &more, remote_row, r);
	}
	free(next);
	if (rc != 0)
		read_result_clear(rr);
	return rc;
}

/* Finds the newest checkpoint (with a cut at most `bound`, unless bound is
 * zero), falling back to older ones when a blob is missing or corrupt. *out
 * is NULL when there is none; *n_listed counts the checkpoints listed. */
static int load_checkpoint(struct oplog *log, struct ag_ts bound, struct uidx_state **out,
                           struct ag_ts *out_ts, size_t *out_bytes, size_t *n_listed)
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
		if (!ts_zero(bound) && ts_cmp(ts, bound) > 0)
			continue;
		struct aerogram_blob_request req = { keys[i], 0, 0 };
		struct aerogram_blob_result *res = NULL;
		rc = store_blob_get(eng, &req, 1, &res, keys[i]);
		if (rc != 0)
			break;
		struct uidx_state *s = NULL;
		int st = res->n_blobs ? res->blobs[0].status : AEROGRAM_ENOTFOUND;
		size_t len = st == 0 ? res->blobs[0].len : 0;
		if (st == 0)
			st = codec_state_decode(res->blobs[0].data, res->blobs[0].len, &s);
		if (s)
			s->keep_expunged = eng->retention_ms > 0;
		store_blob_result_free(eng, res);
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
		*out_bytes = len;
		break;
	}
	mail_free_strv(keys, nk);
	return rc;
}

static int handle_late(struct oplog *log, const struct ag_ts *late, size_t n_late, int may_reload);
static int fill_gaps(struct oplog *log);
static void collect_late(const struct remote *r, struct ag_ts **late, size_t *n_late);
static int fetch_entry(struct oplog *log, struct ag_ts ts, int *found);

/* The first sync of a state, or a reload: the newest checkpoint (at most
 * `bound` when not zero) and every entry after it. Nothing changes in log
 * unless the whole read succeeded. */
static int cold_load(struct oplog *log, struct ag_ts bound)
{
	struct mail_engine *eng = log->eng;
	uint64_t t_s = mail_now(eng);
	struct uidx_state *ck = NULL;
	struct ag_ts cut = { 0, 0 };
	size_t ck_bytes = 0, n_ckpts = 0;
	log->last_sync_rows = 0;
	log->ckpt_loaded = 0;
	int rc = load_checkpoint(log, bound, &ck, &cut, &ck_bytes, &n_ckpts);
	if (rc != 0)
		return rc;
	char start[AG_TS_HEX + 1];
	if (ck)
		ts_format(cut, start);
	struct remote r = { NULL, 0, 0, log };
	struct read_result rr;
	rc = read_log(log, ck ? start : NULL, 0, &r, &rr);
	if (rc != 0) {
		uidx_free(ck);
		return rc;
	}
	if (!rr.watch_seen && n_ckpts == 0 && r.n == 0 &&
	    (log->watch_token != NULL || !ts_zero(log->newest))) {
		/* Everything this engine knew is gone from the store: the mailbox
		 * was deleted (by another daemon). */
		mail_log(eng, AEROGRAM_LOG_DEBUG, "%s: nothing left (start %s, bound %llu)", log->pk, ck ? start : "-",
		         (unsigned long long)bound.ms);
		read_result_clear(&rr);
		remote_free(&r);
		uidx_free(ck);
		return AEROGRAM_ENOTFOUND;
	}
	/* Build the new state aside, then commit it. */
	struct ag_ts *late = NULL;
	size_t n_late = 0;
	if (!log->cas)
		collect_late(&r, &late, &n_late);
	struct uidx_state *cur = ck ? uidx_clone(ck) : new_state(log);
	for (size_t i = 0; cur && i < r.n; i++)
		if (uidx_apply(cur, r.e[i].op) != 0) {
			uidx_free(cur);
			cur = NULL;
		}
	if (cur == NULL) {
		read_result_clear(&rr);
		remote_free(&r);
		uidx_free(ck);
		free(late);
		return AEROGRAM_EINTERNAL;
	}
	uidx_free(log->cur);
	log->cur = cur;
	hist_free(log->hist, log->n);
	log->n = 0;
	uidx_free(log->base);
	log->base = NULL;
	log->base_ts = cut;
	log->ckpt_ts = cut;
	log->newest = cut;
	log->state_bytes = ck_bytes;
	log->tail_n = log->tail_bytes = 0;
	if (log->cas) {
		uidx_free(ck);
	} else {
		log->base = ck;
		if (hist_reserve(log, r.n) < 0) {
			/* out of memory keeping the history: start it afresh from now */
			uidx_free(log->base);
			log->base = uidx_clone(cur);
			log->base_ts = r.n ? ts_succ(r.e[r.n - 1].ts) : cut;
		}
	}
	for (size_t i = 0; i < r.n; i++) {
		if (!log->cas && log->cap >= r.n && ts_cmp(r.e[i].ts, log->base_ts) >= 0)
			log->hist[log->n++] = r.e[i];
		else
			uidx_op_free(r.e[i].op);
		log->tail_n++;
		log->tail_bytes += r.e[i].bytes;
		if (ts_cmp(r.e[i].ts, log->newest) > 0)
			log->newest = r.e[i].ts;
	}
	free(r.e);
	free(log->watch_token);
	log->watch_token = rr.watch_token;
	rr.watch_token = NULL;
	read_result_clear(&rr);
	log->ckpt_loaded = ck != NULL;
	log->loaded = 1;
	log->prev_sync_start = t_s;
	log->last_sync_done = mail_now(eng);
	log->last_deep_sync = t_s;
	log->last_activity = log->last_sync_done;
	log->version++;
	/* a late entry the checkpoint may lack: from a reload to before a late
	 * entry, fetch only (no second reload) */
	rc = handle_late(log, late, n_late, ts_zero(bound));
	free(late);
	if (rc == 0 && log->cur->add_gaps > log->gaps_given_up && !log->in_gap_reload) {
		log->in_gap_reload = 1;
		rc = fill_gaps(log);
		log->in_gap_reload = 0;
	}
	return rc;
}

/* Without conditional writes: merges the entries of r (ascending) into
 * memory, replaying when one is older than the newest applied. Takes the
 * ops of r. */
static int merge_remote(struct oplog *log, struct remote *r)
{
	int need_rebuild = 0, rc = 0;
	size_t i;
	for (i = 0; i < r->n && rc == 0; i++) {
		struct oplog_entry *e = &r->e[i];
		if (ts_cmp(e->ts, log->base_ts) < 0) {
			uidx_op_free(e->op); /* folded already (or older than memory) */
			e->op = NULL;
			continue;
		}
		int found;
		size_t at = hist_find(log, e->ts, &found);
		if (found) {
			uidx_op_free(e->op);
			e->op = NULL;
			continue;
		}
		if (at == log->n && !need_rebuild) {
			rc = apply_newest(log, e->ts, e->op, e->bytes);
			e->op = NULL;
			continue;
		}
		if (hist_reserve(log, 1) < 0) {
			rc = AEROGRAM_EINTERNAL;
			break;
		}
		memmove(log->hist + at + 1, log->hist + at, (log->n - at) * sizeof(*log->hist));
		log->hist[at] = *e;
		log->n++;
		e->op = NULL;
		need_rebuild = 1;
	}
	for (; i < r->n; i++)
		uidx_op_free(r->e[i].op);
	free(r->e);
	r->e = NULL;
	r->n = r->cap = 0;
	if (rc == 0 && need_rebuild) {
		mail_log(log->eng, AEROGRAM_LOG_DEBUG, "%s: a late entry: replaying %zu entries", log->pk, log->n);
		rc = rebuild(log);
	}
	return rc;
}

/* With conditional writes: applies the entries of r, all newer than the
 * newest applied. An older unknown one means a writer that did not write
 * conditionally (it should not exist): reload from the store. */
static int apply_remote_cas(struct oplog *log, struct remote *r, int *reload)
{
	int rc = 0;
	size_t i;
	for (i = 0; i < r->n && rc == 0; i++) {
		struct oplog_entry *e = &r->e[i];
		if (ts_cmp(e->ts, log->newest) <= 0) {
			*reload = 1;
			continue;
		}
		if (ts_cmp(e->ts, log->probe) == 0)
			log->probe_hit = 1;
		rc = apply_newest(log, e->ts, e->op, e->bytes);
		e->op = NULL;
	}
	for (i = 0; i < r->n; i++)
		uidx_op_free(r->e[i].op);
	free(r->e);
	r->e = NULL;
	r->n = r->cap = 0;
	return rc;
}

/* Without conditional writes: reads the single entry ts and merges it.
 * When that entry is itself a LATE marker, *late_ref (when not NULL)
 * receives the entry it names (else it is zeroed). */
static int fetch_entry_ex(struct oplog *log, struct ag_ts ts, int *found, struct ag_ts *late_ref);

static int fetch_entry(struct oplog *log, struct ag_ts ts, int *found)
{
	return fetch_entry_ex(log, ts, found, NULL);
}

static int fetch_entry_ex(struct oplog *log, struct ag_ts ts, int *found, struct ag_ts *late_ref)
{
	char sk[AG_TS_HEX + 1];
	ts_format(ts, sk);
	struct aerogram_row_query q = { .pk = log->pk, .sk = sk };
	struct aerogram_row_result *res = NULL;
	struct mail_engine *eng = log->eng;
	*found = 0;
	int rc = store_row_read(eng, &q, 1, &res, NULL);
	if (rc != 0)
		return rc;
	struct remote r = { NULL, 0, 0, log };
	for (size_t i = 0; rc == 0 && res->n_pages && i < res->pages[0].n_rows; i++)
		rc = remote_row(&r, &res->pages[0].rows[0]);
	store_row_result_free(eng, res);
	if (rc == 0 && r.n == 1)
		*found = 1;
	if (late_ref) {
		late_ref->ms = late_ref->rnd = 0;
		if (rc == 0 && r.n == 1 && r.e[0].op->kind == UIDX_OP_LATE)
			*late_ref = r.e[0].op->anchor;
	}
	if (rc == 0)
		rc = log->cas ? 0 : merge_remote(log, &r);
	remote_free(&r);
	return rc;
}

/* The start of an incremental read (see the file comment). */
static struct ag_ts read_start(const struct oplog *log, int deep)
{
	struct ag_ts s = ts_succ(log->newest);
	if (log->cas)
		return s;
	if (deep) /* what the next checkpoint takes in, read again in full */
		return ts_cmp(log->ckpt_ts, log->base_ts) > 0 ? log->ckpt_ts : log->base_ts;
	uint64_t w = log->prev_sync_start > OPLOG_OVERLAP_MS ? log->prev_sync_start - OPLOG_OVERLAP_MS : 0;
	struct ag_ts win = { w, 0 };
	if (ts_cmp(win, s) < 0)
		s = win;
	if (ts_cmp(s, log->base_ts) < 0)
		s = log->base_ts;
	return s;
}

/* LATE markers name entries that may have become visible after a reader's
 * window passed them: fetch those this state lacks (reload from an older
 * checkpoint when one is older than what memory holds, at most once). */
static int handle_late(struct oplog *log, const struct ag_ts *late, size_t n_late, int may_reload)
{
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < n_late; i++) {
		/* a LATE marker can itself be late: follow the chain it starts */
		struct ag_ts t = late[i];
		for (int depth = 0; rc == 0 && depth < 8 && !ts_zero(t) && !entry_known(log, t); depth++) {
			if (ts_cmp(t, log->base_ts) < 0) {
				if (may_reload) {
					mail_log(log->eng, AEROGRAM_LOG_WARNING, "%s: a late entry older than memory: reloading",
					         log->pk);
					rc = cold_load(log, t);
					may_reload = 0;
				}
				break;
			}
			int found;
			struct ag_ts next;
			rc = fetch_entry_ex(log, t, &found, &next);
			if (rc == 0 && !found)
				mail_log(log->eng, AEROGRAM_LOG_WARNING, "%s: late entry not found", log->pk);
			t = found ? next : (struct ag_ts){ 0, 0 };
		}
	}
	return rc;
}

/* Looks for our entries of unknown outcome (see doubt()). */
static int resolve_doubtful(struct oplog *log)
{
	uint64_t now = mail_now(log->eng);
	size_t w = 0;
	int rc = 0;
	for (size_t i = 0; i < log->n_doubtful; i++) {
		struct ag_ts ts = log->doubtful[i];
		int found = 0;
		if (rc == 0 && !entry_known(log, ts))
			rc = fetch_entry(log, ts, &found);
		if (rc == 0 && (found || entry_known(log, ts))) {
			announce_if_late(log, ts, 1);
			continue;
		}
		if (rc == 0 && now > ts.ms + OPLOG_OVERLAP_MS)
			continue; /* not there, and nothing can still be on its way */
		log->doubtful[w++] = ts;
	}
	log->n_doubtful = w;
	return rc;
}

/* The state holds an add whose writer had seen an add we do not have
 * (late, and not announced: its writer died first). A view that shows
 * UIDs must hold every add before each of its adds (README: the proof
 * needs closed views): read everything since the checkpoint again, then,
 * if that is not enough, reload from the checkpoint. */
static int fill_gaps(struct oplog *log)
{
	mail_log(log->eng, AEROGRAM_LOG_WARNING, "%s: an add is missing before another: reading the log again",
	         log->pk);
	int was_in = log->in_gap_reload;
	log->in_gap_reload = 1;
	struct ag_ts st = read_start(log, 1);
	char start[AG_TS_HEX + 1];
	ts_format(st, start);
	struct remote r = { NULL, 0, 0, log };
	struct read_result rr;
	int rc = read_log(log, start, 0, &r, &rr);
	read_result_clear(&rr);
	if (rc == 0)
		rc = log->cas ? 0 : merge_remote(log, &r);
	remote_free(&r);
	/* then from the newest checkpoint, and from older ones: a checkpoint
	 * written while the add was in flight lacks it */
	struct ag_ts bound = { 0, 0 };
	for (int tries = 0; rc == 0 && log->cur->add_gaps > 0 && tries < 1 + OPLOG_CHECKPOINTS_TO_KEEP; tries++) {
		rc = cold_load(log, bound);
		if (ts_zero(log->ckpt_ts))
			break; /* replayed from the first entry: nothing older to try */
		bound = log->ckpt_ts;
		if (bound.rnd > 0)
			bound.rnd--;
		else
			bound.ms--, bound.rnd = UINT64_MAX;
	}
	if (rc == 0 && log->cur->add_gaps > 0) {
		/* (a corrupt entry, or an add slower than the retention): do not
		 * read everything again at every sync for it */
		mail_log(log->eng, AEROGRAM_LOG_ERROR, "%s: an add is missing and cannot be found", log->pk);
		log->gaps_given_up = log->cur->add_gaps;
	}
	log->in_gap_reload = was_in;
	return rc;
}

/* Collects the entries named by the LATE markers among r's. */
static void collect_late(const struct remote *r, struct ag_ts **late, size_t *n_late)
{
	for (size_t i = 0; i < r->n; i++) {
		if (r->e[i].op == NULL || r->e[i].op->kind != UIDX_OP_LATE)
			continue;
		struct ag_ts *g = realloc(*late, (*n_late + 1) * sizeof(**late));
		if (g == NULL)
			return;
		*late = g;
		g[(*n_late)++] = r->e[i].op->anchor;
	}
}

/* Reads what changed; with turn_out, also the turn row (kept for the
 * caller, who clears it). */
static int sync_read(struct oplog *log, int deep, struct read_result *turn_out)
{
	struct mail_engine *eng = log->eng;
	if (!log->loaded) {
		int rc = cold_load(log, (struct ag_ts){ 0, 0 });
		if (rc != 0 || turn_out == NULL)
			return rc;
	}
	/* A state not synced for half the retention may lack rows collected
	 * since: if anything was written meanwhile, start from a checkpoint. */
	int stale = mail_now(eng) - log->last_sync_done > OPLOG_RETAIN_MS / 2;
	uint64_t t_s = mail_now(eng);
	/* Without conditional writes, now and then read again everything since
	 * the newest checkpoint: a writer that died right after a slow write
	 * never announced it (README: late entries). */
	if (!log->cas && t_s - log->last_deep_sync >= OPLOG_DEEP_EVERY_MS)
		deep = 1;
	log->last_sync_rows = 0;
	log->ckpt_loaded = 0;
	struct ag_ts st = read_start(log, deep);
	char start[AG_TS_HEX + 1];
	ts_format(st, start);
	struct remote r = { NULL, 0, 0, log };
	struct read_result rr;
	int rc = read_log(log, start, turn_out != NULL, &r, &rr);
	if (rc != 0)
		return rc;
	int changed = (rr.watch_token == NULL) != (log->watch_token == NULL) ||
	              (rr.watch_token != NULL && strcmp(rr.watch_token, log->watch_token) != 0);
	int gone = !rr.watch_seen && (log->watch_token != NULL || !ts_zero(log->newest));
	if (gone || (stale && changed)) {
		/* The watch row is gone (the mailbox was deleted, or the store was
		 * replaced under us), or the state is stale: a full read decides. */
		remote_free(&r);
		rc = cold_load(log, (struct ag_ts){ 0, 0 });
		if (rc == 0 && turn_out) {
			*turn_out = rr;
			memset(&rr, 0, sizeof(rr));
		}
		read_result_clear(&rr);
		return rc;
	}
	struct ag_ts *late = NULL;
	size_t n_late = 0;
	int reload = 0;
	if (log->cas) {
		rc = apply_remote_cas(log, &r, &reload);
	} else {
		collect_late(&r, &late, &n_late);
		rc = merge_remote(log, &r);
	}
	remote_free(&r);
	if (rc == 0 && reload) {
		mail_log(eng, AEROGRAM_LOG_WARNING, "%s: an entry older than the newest one appeared; reloading",
		         log->pk);
		rc = cold_load(log, (struct ag_ts){ 0, 0 });
	}
	if (rc == 0)
		rc = handle_late(log, late, n_late, 1);
	free(late);
	if (rc == 0 && log->n_doubtful)
		rc = resolve_doubtful(log);
	if (rc == 0 && log->cur->add_gaps > log->gaps_given_up)
		rc = fill_gaps(log);
	if (rc == 0) {
		free(log->watch_token);
		log->watch_token = rr.watch_token;
		rr.watch_token = NULL;
		log->prev_sync_start = t_s;
		log->last_sync_done = mail_now(eng);
		if (deep)
			log->last_deep_sync = t_s;
		fold(log);
	}
	if (rc == 0 && turn_out) {
		*turn_out = rr;
		memset(&rr, 0, sizeof(rr));
	}
	read_result_clear(&rr);
	return rc;
}

int oplog_sync(struct oplog *log, int deep)
{
	return sync_read(log, deep, NULL);
}

/* ---- writing ---- */

/* Encodes op as the value of its entry. */
static int encode_op(const struct uidx_op *op, struct cbuf *b)
{
	b->len = 0;
	return codec_op_encode(op, b);
}

static void prepare_add(struct oplog *log, struct uidx_op *op)
{
	if (op->kind != UIDX_OP_ADD)
		return;
	op->seen_uidnext = log->cur->uidnext;
	op->has_anchor = 0;
	if (log->cur->n_marks) {
		op->has_anchor = 1;
		op->anchor = log->cur->marks[log->cur->n_marks - 1].ts;
	}
}

static void remember_own_watch(struct oplog *log, const uint8_t *v)
{
	memcpy(log->own_watch[log->n_own_watch++ % MAIL_OWN_WATCH], v, 16);
}

/* With conditional writes: the entry, the extra rows and the watch row in
 * one batch, on the condition that the watch row is what the last sync or
 * write saw; on a conflict, read what changed and try again. */
static int push_cas(struct oplog *log, struct uidx_op *op, const struct aerogram_row_write *extra,
                    size_t n_extra)
{
	struct mail_engine *eng = log->eng;
	struct aerogram_row_write *w = calloc(n_extra + 2, sizeof(*w));
	struct cbuf b = { 0 };
	int rc = w ? 0 : AEROGRAM_EINTERNAL;
	if (rc == 0 && !log->loaded)
		rc = oplog_sync(log, 0);
	int unavailable = 0;
	for (unsigned attempt = 0; rc == 0; attempt++) {
		if (log->filter != NULL) {
			log->filter(log->filter_arg, log->cur, op);
			if (op->n == 0)
				break; /* nothing left to write */
		}
		prepare_add(log, op);
		struct ag_ts ts = ts_after(eng, log->newest);
		op->ts = ts;
		char sk[AG_TS_HEX + 1];
		ts_format(ts, sk);
		rc = encode_op(op, &b);
		if (rc != 0)
			break;
		uint8_t wv[16];
		mail_rand_bytes(eng, wv, sizeof(wv));
		if (n_extra)
			memcpy(w, extra, n_extra * sizeof(*w));
		w[n_extra] = (struct aerogram_row_write){ log->pk, sk, NULL, b.p, b.len, 0 };
		w[n_extra + 1] = (struct aerogram_row_write){ log->pk, "watch", log->watch_token, wv, sizeof(wv), 0 };
		char tok[AEROGRAM_TOKEN_MAX];
		rc = store_row_insert_if(eng, log->pk, "watch", log->watch_token, w, n_extra + 2, tok, sizeof(tok),
		                         NULL);
		if (rc == 0) {
			char *t = strdup(tok);
			if (t == NULL) {
				rc = AEROGRAM_EINTERNAL;
				break;
			}
			free(log->watch_token);
			log->watch_token = t;
			remember_own_watch(log, wv);
			rc = apply_newest(log, ts, op, (uint32_t)b.len);
			op = NULL;
			break;
		}
		/* a conflict, or the store unavailable a few times, is retried */
		if ((rc != AEROGRAM_ECONFLICT && rc != AEROGRAM_EUNAVAILABLE) ||
		    (rc == AEROGRAM_EUNAVAILABLE && ++unavailable > OPLOG_WRITE_TRIES)) {
			mail_log(eng, AEROGRAM_LOG_WARNING, "log append %s/%s: %s", log->pk, sk, mail_store_error(eng));
			break;
		}
		int was_unavailable = rc == AEROGRAM_EUNAVAILABLE;
		/* Someone wrote since our read, or the write may or may not have
		 * happened: read what changed (our own entry included, if it was
		 * applied after all). */
		log->probe = ts;
		log->probe_hit = 0;
		rc = oplog_sync(log, 0);
		int hit = log->probe_hit;
		log->probe.ms = log->probe.rnd = 0;
		if (rc != 0)
			break;
		if (was_unavailable && hit)
			break; /* applied before the failure was reported: the sync took it in */
		if (attempt > 1000) {
			rc = AEROGRAM_EUNAVAILABLE;
			break;
		}
	}
	free(b.p);
	free(w);
	uidx_op_free(op);
	return rc;
}

/* Without conditional writes: writes the entry row (retried with the same
 * key and bytes, so an attempt applied but reported failed is never
 * doubled). *applied tells whether it is in the store. */
static int write_entry(struct oplog *log, struct ag_ts ts, const struct cbuf *b)
{
	struct mail_engine *eng = log->eng;
	char sk[AG_TS_HEX + 1];
	ts_format(ts, sk);
	struct aerogram_row_write w = { log->pk, sk, NULL, b->p, b->len, 0 };
	char what[600];
	snprintf(what, sizeof(what), "%s/%s", log->pk, sk);
	return store_row_insert_tries(eng, &w, 1, OPLOG_WRITE_TRIES, what);
}

/* Without conditional writes: rewrites the watch row (and, when turn_value
 * is not NULL, releases the turn in the same batch). */
static void write_watch(struct oplog *log, const uint8_t *turn_value, size_t turn_len, const char *turn_token)
{
	struct mail_engine *eng = log->eng;
	uint8_t wv[16];
	mail_rand_bytes(eng, wv, sizeof(wv));
	struct aerogram_row_write w[2] = {
		{ log->pk, "watch", log->watch_token, wv, sizeof(wv), 0 },
		{ log->pk, log->turn_sk, turn_token, turn_value, turn_len, 0 },
	};
	/* on failure the entry is written: others learn of it at their next sync */
	if (store_row_insert(eng, w, turn_value ? 2 : 1, log->pk) == 0)
		remember_own_watch(log, wv);
}

static int push_plain(struct oplog *log, struct uidx_op *op, int late_depth);
static int checkpoint_due(const struct oplog *log);
/* Without conditional writes: an entry of ours whose write failed and
 * whose reading back failed too may be in the store, and our window may
 * pass it: every sync looks for it until a read says (OPLOG_OVERLAP_MS
 * after the write at least, so that nothing in flight is missed) whether it
 * is there; found, it is merged and announced if late. */
static void doubt(struct oplog *log, struct ag_ts ts)
{
	if (log->n_doubtful < OPLOG_LATE_PENDING)
		log->doubtful[log->n_doubtful++] = ts;
	else
		mail_log(log->eng, AEROGRAM_LOG_WARNING, "%s: too many writes of unknown outcome", log->pk);
}

/* Without conditional writes: after a write acknowledged later than
 * OPLOG_LATE_MS past its timestamp, a new entry names it, so that readers
 * whose window passed it fetch it (README: late entries). An announcement
 * that fails is kept and tried again after the next write. */
static void announce_if_late(struct oplog *log, struct ag_ts ts, int late_depth)
{
	uint64_t now = mail_now(log->eng);
	if (now > ts.ms + OPLOG_LATE_MS && late_depth < 2) {
		mail_log(log->eng, AEROGRAM_LOG_INFO, "%s: a write took %llu ms: announcing it", log->pk,
		         (unsigned long long)(now - ts.ms));
		if (log->n_late_pending < OPLOG_LATE_PENDING)
			log->late_pending[log->n_late_pending++] = ts;
	}
	while (log->n_late_pending > 0 && late_depth == 0) {
		struct uidx_op *m = calloc(1, sizeof(*m));
		if (m == NULL)
			return;
		m->kind = UIDX_OP_LATE;
		m->has_anchor = 1;
		m->anchor = log->late_pending[0];
		if (push_plain(log, m, late_depth + 1) != 0)
			return; /* the next write tries again */
		memmove(log->late_pending, log->late_pending + 1, --log->n_late_pending * sizeof(log->late_pending[0]));
	}
}

/* Without conditional writes: an entry other than an add (or an add of a
 * lazy engine): entry, then the watch row. A write that failed may have
 * been applied all the same: look before reporting the failure. */
static int push_plain(struct oplog *log, struct uidx_op *op, int late_depth)
{
	struct mail_engine *eng = log->eng;
	prepare_add(log, op);
	struct ag_ts ts = ts_after(eng, log->newest);
	op->ts = ts;
	struct cbuf b = { 0 };
	int rc = encode_op(op, &b);
	if (rc == 0)
		rc = write_entry(log, ts, &b);
	if (rc != 0 && b.p != NULL) {
		int found = 0;
		int frc = fetch_entry(log, ts, &found);
		if (frc == 0 && found) {
			/* applied after all: the read merged it */
			free(b.p);
			uidx_op_free(op);
			announce_if_late(log, ts, late_depth);
			write_watch(log, NULL, 0, NULL);
			return 0;
		}
		if (frc != 0)
			doubt(log, ts);
	}
	if (rc != 0) {
		free(b.p);
		uidx_op_free(op);
		return rc;
	}
	rc = apply_newest(log, ts, op, (uint32_t)b.len);
	free(b.p);
	announce_if_late(log, ts, late_depth);
	write_watch(log, NULL, 0, NULL);
	return rc;
}

/* ---- the turn to add (without conditional writes) ----
 *
 * Each engine has one claim row, xturn/<engine id>, written by it alone:
 * HELD(claim) while it adds, FREE(claim, the add it wrote) otherwise. An
 * add writes HELD, then reads every claim row with the log: it may write
 * its entry only if no other row is HELD (README: UID allocation). */

#define TURN_HELD 1
#define TURN_FREE 2
#define TURN_VALUE_LEN 35

static void turn_encode(uint8_t out[TURN_VALUE_LEN], uint8_t state, const uint8_t claim[16], struct ag_ts add)
{
	out[0] = 'T';
	out[1] = 1;
	out[2] = state;
	memcpy(out + 3, claim, 16);
	for (int i = 0; i < 8; i++) {
		out[19 + i] = (uint8_t)(add.ms >> (56 - 8 * i));
		out[27 + i] = (uint8_t)(add.rnd >> (56 - 8 * i));
	}
}

static int turn_decode(const struct aerogram_value *v, struct turn_value *out)
{
	if (v->tombstone || v->len != TURN_VALUE_LEN || v->data[0] != 'T' || v->data[1] != 1 ||
	    (v->data[2] != TURN_HELD && v->data[2] != TURN_FREE))
		return -1;
	out->state = v->data[2];
	memcpy(out->claim, v->data + 3, 16);
	out->add.ms = out->add.rnd = 0;
	for (int i = 0; i < 8; i++) {
		out->add.ms = (out->add.ms << 8) | v->data[19 + i];
		out->add.rnd = (out->add.rnd << 8) | v->data[27 + i];
	}
	return 0;
}

/* Whether claim has a FREE value (a release written beside its HELD). */
static int turn_freed(const struct read_result *rr, const uint8_t *claim)
{
	for (size_t i = 0; i < rr->n_turn; i++)
		if (rr->turn[i].state == TURN_FREE && memcmp(rr->turn[i].claim, claim, 16) == 0)
			return 1;
	return 0;
}

/* Whether another engine's claim is busy: HELD, not released, and not
 * presumed dead (seen busy for less than the lease by our clock). Keeps
 * the first-seen times of busy claims. */
static int turn_busy(struct oplog *log, const struct read_result *rr, uint64_t now)
{
	struct oplog_turn_seen seen[OPLOG_TURN_SEEN];
	size_t n_seen = 0;
	int busy = 0;
	for (size_t i = 0; i < rr->n_turn; i++) {
		const struct turn_value *t = &rr->turn[i];
		if (t->own || t->state != TURN_HELD || turn_freed(rr, t->claim))
			continue;
		uint64_t since = now;
		for (size_t j = 0; j < log->n_turn_seen; j++)
			if (memcmp(log->turn_seen[j].id, t->claim, 16) == 0)
				since = log->turn_seen[j].since;
		if (n_seen < OPLOG_TURN_SEEN) {
			memcpy(seen[n_seen].id, t->claim, 16);
			seen[n_seen++].since = since;
		}
		if (now - since < OPLOG_TURN_LEASE_MS) {
			busy = 1;
		} else if (since + OPLOG_TURN_LEASE_MS > log->turn_dead_logged) {
			log->turn_dead_logged = now;
			mail_log(log->eng, AEROGRAM_LOG_WARNING,
			         "%s: a claim of the turn to add was not released for %llu ms: presumed dead", log->pk,
			         (unsigned long long)(now - since));
		}
	}
	memcpy(log->turn_seen, seen, n_seen * sizeof(seen[0]));
	log->n_turn_seen = n_seen;
	return busy;
}

/* Whether our claim is in our row, held and not released. */
static int turn_ours(const struct read_result *rr, const uint8_t *claim)
{
	for (size_t i = 0; i < rr->n_turn; i++)
		if (rr->turn[i].own && rr->turn[i].state == TURN_HELD && memcmp(rr->turn[i].claim, claim, 16) == 0)
			return !turn_freed(rr, claim);
	return 0;
}

/* The newest add any engine reports having written under a claim. */
static struct ag_ts turn_last_add(const struct read_result *rr)
{
	struct ag_ts best = { 0, 0 };
	for (size_t i = 0; i < rr->n_turn; i++)
		if (rr->turn[i].state == TURN_FREE && ts_cmp(rr->turn[i].add, best) > 0)
			best = rr->turn[i].add;
	return best;
}

/* Writes our claim row (with the token of our last read of it, so that it
 * keeps one value), with the extra rows when given. */
static int turn_write(struct oplog *log, uint8_t state, const uint8_t claim[16], struct ag_ts add,
                      const struct aerogram_row_write *extra, size_t n_extra)
{
	struct mail_engine *eng = log->eng;
	uint8_t v[TURN_VALUE_LEN];
	turn_encode(v, state, claim, add);
	struct aerogram_row_write *w = calloc(n_extra + 1, sizeof(*w));
	if (w == NULL)
		return AEROGRAM_EINTERNAL;
	if (n_extra)
		memcpy(w, extra, n_extra * sizeof(*w));
	w[n_extra] = (struct aerogram_row_write){ log->pk, log->turn_sk, log->turn_token, v, sizeof(v), 0 };
	int rc = store_row_insert_tries(eng, w, n_extra + 1, OPLOG_WRITE_TRIES, log->pk);
	free(w);
	return rc;
}

/* Keeps the token of our claim row from a read, for the next write. */
static void turn_keep_token(struct oplog *log, struct read_result *rr)
{
	if (rr->own_token == NULL)
		return;
	free(log->turn_token);
	log->turn_token = rr->own_token;
	rr->own_token = NULL;
}

/* Without conditional writes, an add takes the turn (README: UID
 * allocation): claim it, read the claims back with the log, and write the
 * entry only when no other claim is busy, so that every add is written by
 * a writer that had read every earlier add. */
static int push_add_turn(struct oplog *log, struct uidx_op *op, const struct aerogram_row_write *extra,
                         size_t n_extra)
{
	struct mail_engine *eng = log->eng;
	uint8_t claim[16];
	mail_rand_bytes(eng, claim, sizeof(claim));
	int rc = turn_write(log, TURN_HELD, claim, (struct ag_ts){ 0, 0 }, extra, n_extra);
	if (rc != 0) {
		turn_write(log, TURN_FREE, claim, (struct ag_ts){ 0, 0 }, NULL, 0);
		uidx_op_free(op);
		return rc;
	}
	uint64_t held_at = mail_now(eng);
	unsigned lost = 0;
	struct read_result rr;
	memset(&rr, 0, sizeof(rr));
	for (;;) {
		read_result_clear(&rr);
		rc = sync_read(log, 0, &rr);
		if (rc != 0)
			break;
		turn_keep_token(log, &rr);
		uint64_t now = mail_now(eng);
		int busy = turn_busy(log, &rr, now);
		int ours = turn_ours(&rr, claim);
		struct ag_ts last = turn_last_add(&rr);
		int have_last = ts_zero(last) || entry_known(log, last);
		if (!busy && ours && !have_last) {
			/* the previous holder's add is not in what the range read
			 * returned (a batch is not a snapshot): fetch it */
			int found = 0;
			rc = fetch_entry(log, last, &found);
			if (rc != 0)
				break;
			have_last = entry_known(log, last);
		}
		if (!busy && ours && have_last && now - held_at < OPLOG_TURN_LEASE_MS / 2)
			break; /* our turn */
		if (lost >= 100000) {
			mail_log(eng, AEROGRAM_LOG_WARNING, "%s: the turn to add stayed busy", log->pk);
			turn_write(log, TURN_FREE, claim, (struct ag_ts){ 0, 0 }, NULL, 0);
			rc = AEROGRAM_EUNAVAILABLE;
			break;
		}
		/* Someone else holds it (or we held it too long): give ours back
		 * and try again after a random pause, growing with each try. */
		log->turn_waits++;
		rc = turn_write(log, TURN_FREE, claim, (struct ag_ts){ 0, 0 }, NULL, 0);
		uint32_t cap = 1u << (lost < 6 ? lost : 6);
		mail_sleep(eng, 1 + (uint32_t)(mail_rand64(eng) % cap));
		lost++;
		mail_rand_bytes(eng, claim, sizeof(claim));
		if (rc == 0)
			rc = turn_write(log, TURN_HELD, claim, (struct ag_ts){ 0, 0 }, NULL, 0);
		if (rc != 0)
			break;
		held_at = mail_now(eng);
	}
	read_result_clear(&rr);
	if (rc != 0) {
		/* give the claim back, so that others need not wait for the lease
		 * (best effort: the store is failing) */
		turn_write(log, TURN_FREE, claim, (struct ag_ts){ 0, 0 }, NULL, 0);
		uidx_op_free(op);
		return rc;
	}
	/* Our turn: every earlier add is applied. */
	prepare_add(log, op);
	struct ag_ts ts = ts_after(eng, log->newest);
	op->ts = ts;
	struct cbuf b = { 0 };
	rc = encode_op(op, &b);
	if (rc == 0)
		rc = write_entry(log, ts, &b);
	if (rc != 0) {
		/* It may still have been applied: look before letting go. An add
		 * that may land later must not be followed by another: keep the
		 * claim (our next add replaces it; others wait for the lease). */
		int found = 0;
		int frc = b.p ? fetch_entry(log, ts, &found) : AEROGRAM_EINTERNAL;
		if (frc == 0 && found) {
			rc = 0;
			uidx_op_free(op);
			op = NULL;
		} else if (frc != 0) {
			doubt(log, ts);
		}
		if (rc != 0) {
			free(b.p);
			uidx_op_free(op);
			return rc;
		}
	} else {
		rc = apply_newest(log, ts, op, (uint32_t)b.len);
		op = NULL;
	}
	free(b.p);
	announce_if_late(log, ts, 0);
	uint8_t v[TURN_VALUE_LEN];
	turn_encode(v, TURN_FREE, claim, ts);
	write_watch(log, v, sizeof(v), log->turn_token);
	return rc;
}

int oplog_push(struct oplog *log, struct uidx_op *op, const struct aerogram_row_write *extra,
               size_t n_extra)
{
	struct mail_engine *eng = log->eng;
	int rc;
	if (log->cas) {
		rc = push_cas(log, op, extra, n_extra);
	} else {
		rc = 0;
		if (!log->loaded)
			rc = oplog_sync(log, 0);
		if (rc == 0 && n_extra && (op->kind != UIDX_OP_ADD || eng->lazy)) {
			/* the immutable rows first */
			rc = store_row_insert(eng, extra, n_extra, extra[0].pk);
		}
		if (rc != 0)
			uidx_op_free(op);
		else if (op->kind == UIDX_OP_ADD && !eng->lazy)
			rc = push_add_turn(log, op, extra, n_extra);
		else {
			/* Without conditional writes the state was just synced; a
			 * filter decides on it (not atomic against another daemon's
			 * concurrent write: README, MODSEQ). */
			if (log->filter != NULL)
				log->filter(log->filter_arg, log->cur, op);
			if (op->n == 0 && log->filter != NULL) {
				uidx_op_free(op);
				return 0;
			}
			rc = push_plain(log, op, 0);
		}
	}
	if (rc == 0) {
		mail_nonblock_commit();
		fold(log);
		if (!log->defer_ckpt)
			oplog_checkpoint(log, 0);
		else if (checkpoint_due(log))
			log->ckpt_wanted = 1; /* the poller writes it, off the command's path */
	}
	return rc;
}

/* ---- checkpoints ---- */

/* Keeps the newest OPLOG_CHECKPOINTS_TO_KEEP checkpoints, and of the older
 * ones those younger than OPLOG_RETAIN_MS plus the newest older one (so
 * that a reload to before a late entry finds one); then deletes the log
 * rows older than the oldest kept and than OPLOG_RETAIN_MS. keys (sorted)
 * is the listing; ours is the checkpoint just written. */
static int checkpoint_gc(struct oplog *log, char *const *keys, size_t nk)
{
	struct mail_engine *eng = log->eng;
	size_t plen = strlen(log->ckpt_prefix);
	uint64_t now = mail_now(eng);
	const char **del = calloc(nk ? nk : 1, sizeof(*del));
	if (del == NULL)
		return AEROGRAM_EINTERNAL;
	size_t n_del = 0, n_kept = 0;
	int kept_old = 0;
	struct ag_ts oldest_kept = { 0, 0 };
	for (size_t i = nk; i-- > 0;) {
		struct ag_ts t;
		if (ts_parse(keys[i] + plen, &t) != 0)
			continue;
		int keep = n_kept < OPLOG_CHECKPOINTS_TO_KEEP;
		if (!keep && !kept_old && t.ms + OPLOG_RETAIN_MS <= now) {
			keep = 1; /* the newest one older than the retention */
			kept_old = 1;
		}
		if (keep) {
			n_kept++;
			oldest_kept = t;
		} else {
			del[n_del++] = keys[i];
		}
	}
	int rc = 0;
	if (n_del)
		rc = store_blob_delete(eng, del, n_del, log->pk);
	struct ag_ts end = { now > OPLOG_RETAIN_MS ? now - OPLOG_RETAIN_MS : 0, 0 };
	if (ts_cmp(oldest_kept, end) < 0)
		end = oldest_kept;
	if (rc == 0 && end.ms > 0 && n_del) {
		char e[AG_TS_HEX + 1];
		ts_format(end, e);
		struct aerogram_row_query q = { .pk = log->pk, .end = e };
		rc = store_row_delete(eng, &q, 1, log->pk);
	}
	free(del);
	return rc;
}

/* ---- collection of expunged messages (expunge retention) ---- */

/* Whether the recently expunged list has entries to collect: the oldest is
 * past the retention, or the list is over its bound. */
static int expunged_due(const struct oplog *log, uint64_t now)
{
	const struct uidx_state *s = log->cur;
	if (s == NULL || s->n_expunged == 0)
		return 0;
	return s->n_expunged > MAIL_EXPUNGED_MAX || s->expunged[0].at + mail_hold_ms(log->eng) <= now;
}

static int id_cmp(const void *a, const void *b)
{
	return memcmp(a, b, UIDX_ID);
}

static int drop_collected(void *arg, const struct uidx_expunged *e)
{
	const struct { uint8_t (*ids)[UIDX_ID]; size_t n; } *set = arg;
	return bsearch(e->id, set->ids, set->n, UIDX_ID, id_cmp) != NULL;
}

/* Removes the contents of the recently expunged messages that are due (in
 * batches, oldest first) and drops them from the list of every state kept
 * here; the next checkpoint carries the shorter list. A message that is
 * live again (never, unless a log holds an id twice) is only dropped. On a
 * store failure the entries stay for the next attempt. */
static int collect_expunged(struct oplog *log)
{
	struct mail_engine *eng = log->eng;
	uint64_t now = mail_now(eng);
	if (!expunged_due(log, now))
		return 0;
	struct uidx_state *s = log->cur;
	uint64_t hold = mail_hold_ms(eng);
	size_t over = s->n_expunged > MAIL_EXPUNGED_MAX ? s->n_expunged - MAIL_EXPUNGED_MAX : 0;
	uint8_t (*ids)[UIDX_ID] = malloc(s->n_expunged * UIDX_ID);
	if (ids == NULL)
		return AEROGRAM_EINTERNAL;
	size_t n = 0, n_del = 0;
	for (size_t i = 0; i < s->n_expunged; i++) {
		const struct uidx_expunged *e = &s->expunged[i];
		if (i >= over && e->at + hold > now)
			break; /* ascending: the rest is younger */
		memcpy(ids[n++], e->id, UIDX_ID);
	}
	/* live ids go to the end, dropped without removing their contents */
	for (size_t i = 0; i < n;) {
		if (uidx_find_id(s, ids[i]) != NULL) {
			uint8_t t[UIDX_ID];
			memcpy(t, ids[i], UIDX_ID);
			memmove(ids[i], ids[i + 1], (n - i - 1) * UIDX_ID);
			memcpy(ids[n - 1], t, UIDX_ID);
			n--;
			n_del++;
			continue;
		}
		i++;
	}
	size_t total = n + n_del;
	/* <u>/index/<mbox>: the user has no '/' */
	const char *slash = strchr(log->pk, '/');
	const char *mbox = strrchr(log->pk, '/');
	char user[512];
	int rc = 0;
	if (slash == NULL || mbox == NULL || (size_t)(slash - log->pk) >= sizeof(user)) {
		rc = AEROGRAM_EINTERNAL;
	} else {
		memcpy(user, log->pk, (size_t)(slash - log->pk));
		user[slash - log->pk] = '\0';
		for (size_t i = 0; rc == 0 && i < n; i += 1000)
			rc = mail_remove_messages(eng, user, mbox + 1, (const uint8_t(*)[UIDX_ID])ids + i,
			                          n - i < 1000 ? n - i : 1000);
	}
	if (rc != 0) {
		log->ckpt_retry_at = now + OPLOG_CKPT_RETRY_MS;
		free(ids);
		return rc;
	}
	qsort(ids, total, UIDX_ID, id_cmp);
	struct { uint8_t (*ids)[UIDX_ID]; size_t n; } set = { ids, total };
	uidx_expunged_filter(log->cur, drop_collected, &set);
	if (log->base)
		uidx_expunged_filter(log->base, drop_collected, &set);
	mail_log(eng, AEROGRAM_LOG_DEBUG, "%s: %zu expunged messages collected", log->pk, n);
	free(ids);
	return 0;
}

/* Whether the tail after the newest checkpoint is worth a new one. */
static int checkpoint_due(const struct oplog *log)
{
	if (log->tail_n >= OPLOG_CKPT_MAX)
		return 1;
	uint64_t need = log->state_bytes / 4;
	if (need < OPLOG_CKPT_FLOOR_BYTES)
		need = OPLOG_CKPT_FLOOR_BYTES;
	return log->tail_n > 0 && log->tail_bytes >= need;
}

int oplog_idle_checkpoint_due(const struct oplog *log, uint64_t now)
{
	if (log->ckpt_wanted && now >= log->ckpt_retry_at)
		return 1;
	/* expunged messages past the retention: collected, then a checkpoint
	 * without them */
	if (log->loaded && now >= log->ckpt_retry_at && expunged_due(log, now))
		return 1;
	if (!log->loaded || log->tail_n < OPLOG_CKPT_IDLE_MIN || now < log->ckpt_retry_at ||
	    now - log->last_activity < OPLOG_CKPT_IDLE_MS)
		return 0;
	/* a small state is cheap to write; a large one only for a real tail */
	return log->state_bytes <= 65536 || log->tail_bytes * 16 >= log->state_bytes;
}

int oplog_checkpoint(struct oplog *log, int force)
{
	struct mail_engine *eng = log->eng;
	uint64_t now = mail_now(eng);
	if (!force && (now < log->ckpt_retry_at || !checkpoint_due(log)))
		return 0;
	log->ckpt_wanted = 0;
	if (!log->loaded && !force)
		return 0;
	if (!force && log->tail_n == 0)
		return 0;
	/* Everything below the cut must be known: a stale writer that
	 * checkpointed its own view would hide others' entries. */
	int rc = oplog_sync(log, !log->cas);
	if (rc != 0)
		return rc;
	/* a failure leaves the entries for later; the checkpoint goes on */
	collect_expunged(log);
	struct ag_ts cut;
	size_t k = log->n;
	if (log->cas || force > 1) {
		cut = ts_succ(log->newest);
	} else {
		/* Only entries that no timely late entry can precede. */
		uint64_t bound = log->prev_sync_start > OPLOG_OVERLAP_MS ? log->prev_sync_start - OPLOG_OVERLAP_MS : 0;
		k = 0;
		while (k < log->n && log->hist[k].ts.ms < bound)
			k++;
		cut = k < log->n ? log->hist[k].ts : ts_succ(log->newest);
		if (k == 0 && log->n > 0)
			cut = log->hist[0].ts;
	}
	/* Nothing to write unless the cut takes in an entry the newest
	 * checkpoint lacks. */
	int news = log->cas || force > 1 ? log->tail_n > 0 || force : ts_cmp(log->base_ts, log->ckpt_ts) > 0;
	for (size_t i = 0; !news && i < k; i++)
		news = ts_cmp(log->hist[i].ts, log->ckpt_ts) >= 0;
	if (ts_cmp(cut, log->ckpt_ts) <= 0 || !news)
		return 0;
	char **keys = NULL;
	size_t nk = 0;
	rc = mail_list_blobs(eng, log->ckpt_prefix, &keys, &nk);
	if (rc != 0) {
		log->ckpt_retry_at = now + OPLOG_CKPT_RETRY_MS;
		return rc;
	}
	size_t plen = strlen(log->ckpt_prefix);
	struct ag_ts newest_ck = { 0, 0 };
	for (size_t i = 0; i < nk; i++) {
		struct ag_ts t;
		if (ts_parse(keys[i] + plen, &t) == 0 && ts_cmp(t, newest_ck) > 0)
			newest_ck = t;
	}
	if (!force && ts_cmp(newest_ck, cut) >= 0) {
		/* another engine wrote one that covers as much: count from it */
		log->ckpt_ts = newest_ck;
		log->tail_n = log->tail_bytes = 0;
		for (size_t i = 0; i < log->n; i++)
			if (ts_cmp(log->hist[i].ts, newest_ck) >= 0) {
				log->tail_n++;
				log->tail_bytes += log->hist[i].bytes;
			}
		mail_free_strv(keys, nk);
		return 0;
	}
	struct uidx_state *s = state_at(log, k);
	if (s == NULL) {
		mail_free_strv(keys, nk);
		return AEROGRAM_EINTERNAL;
	}
	uidx_prune_recent(s);
	struct cbuf b = { 0 };
	rc = codec_state_encode(s, &b);
	uidx_free(s);
	char key[1024];
	char tsx[AG_TS_HEX + 1];
	ts_format(cut, tsx);
	snprintf(key, sizeof(key), "%s%s", log->ckpt_prefix, tsx);
	if (rc == 0) {
		rc = store_blob_put(eng, key, b.p, b.len);
	}
	size_t len = b.len;
	free(b.p);
	if (rc != 0) {
		log->ckpt_retry_at = now + OPLOG_CKPT_RETRY_MS;
		mail_free_strv(keys, nk);
		return rc;
	}
	log->ckpt_ts = cut;
	log->state_bytes = len;
	log->tail_n = log->tail_bytes = 0;
	for (size_t i = k; i < log->n; i++) {
		log->tail_n++;
		log->tail_bytes += log->hist[i].bytes;
	}
	/* the listing plus ours, in order, for the collection */
	char **all = realloc(keys, (nk + 1) * sizeof(char *));
	if (all == NULL) {
		mail_free_strv(keys, nk);
		return 0;
	}
	keys = all;
	keys[nk] = strdup(key);
	if (keys[nk] == NULL) {
		mail_free_strv(keys, nk);
		return 0;
	}
	nk++;
	for (size_t i = nk - 1; i > 0 && strcmp(keys[i - 1], keys[i]) > 0; i--) {
		char *t = keys[i];
		keys[i] = keys[i - 1];
		keys[i - 1] = t;
	}
	checkpoint_gc(log, keys, nk);
	mail_free_strv(keys, nk);
	return 0;
}
