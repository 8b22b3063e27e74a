/*
 * sim_appenders.c - concurrent appenders on K engines (as if K daemons),
 * scheduled deterministically from a seed.
 *
 * Each engine runs in a thread of its own, over its own fault wrapper on
 * one memory store. A baton lets exactly one thread run at a time: at every
 * store call (the wrappers' call hook) and every sleep of an engine, the
 * running thread hands the baton to a thread the seed picks. So every
 * interleaving of the engines' reads and writes can happen, and a seed
 * replays exactly. Each engine appends messages, sets flags and brings a
 * claiming view up to date; the clock moves a little at each switch (now
 * and then more than OPLOG_LATE_MS, so that late entries are written and
 * announced); store calls fail now and then (plainly, or applied and then
 * reported failed).
 *
 * Without crashes, it checks what issue "Stable UIDs with many daemons"
 * asks: UIDVALIDITY never changes, every APPENDUID is unique and names its
 * message at the end, every view sees UIDs only grow, every acknowledged
 * append is there once, and every engine (and a fresh one) ends with the
 * same state. With --crash, one engine stops answering at a random store
 * call (its store fails from then on, as a daemon that died mid-add), and
 * the old invariants must hold: within one UIDVALIDITY a UID never names
 * two messages, and every acknowledged append is there once.
 *
 * Both with conditional writes (the memory driver's row_insert_if) and
 * without (hidden: the turn protocol), alternating by seed.
 *
 * Usage: sim_appenders [--seeds N] [--first S] [--seed S] [--crash] [-v]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/mail/mail_internal.h"
#include "sdk/wrappers/ag_wrap.h"
#include "tests/engine/engine_util.h"

#define K 3
#define MAX_APPENDS 16
#define MAX_MSGS (K * MAX_APPENDS)

struct sim;

struct actor {
	struct sim *s;
	int e;
	struct agw_wrapper *fw;
	struct ag_store st;
	struct eu_clock clock;
	struct mail_engine *eng;
	struct mail_mailbox *mb;
	struct mail_view *view;
	pthread_t th;
	int appends;
	uint64_t calls;
	uint64_t crash_at;   /* 0: never */
	int crashed;
	/* what this engine was told */
	int acked[MAX_APPENDS];
	uint32_t uid[MAX_APPENDS];
	uint32_t uv[MAX_APPENDS];
	uint32_t max_seen_uid;
	uint32_t seen[MAX_MSGS * 2]; /* the view's UIDs at its last update */
	uint32_t n_seen;
};

struct sim {
	uint64_t seed, rng;
	int no_cas, crash, verbose;
	struct ag_driver *drv;
	uint64_t now;
	struct actor a[K];
	/* the baton */
	pthread_mutex_t m;
	pthread_cond_t c;
	int current;       /* the actor that runs, or -1 */
	int done[K];
	int running;       /* threads started: the hook schedules */
	uint32_t uv0;
	char why[512];
	int failed;
};

#define FAIL(s, ...)                                                   \
	do {                                                           \
		if (!(s)->failed)                                      \
			snprintf((s)->why, sizeof((s)->why), __VA_ARGS__); \
		(s)->failed = 1;                                       \
	} while (0)

static uint64_t rnd(struct sim *s)
{
	return eu_rnd(&s->rng);
}

/* ---- the baton ---- */

/* With s->m held: hands the baton to a thread the seed picks (maybe the
 * caller) and waits until the caller has it again. */
static void yield_locked(struct sim *s, int me)
{
	int alive[K], n = 0;
	for (int i = 0; i < K; i++)
		if (!s->done[i])
			alive[n++] = i;
	if (n == 0)
		return;
	s->current = alive[rnd(s) % (uint64_t)n];
	pthread_cond_broadcast(&s->c);
	while (s->current != me)
		pthread_cond_wait(&s->c, &s->m);
}

/* Every store call of an actor: maybe a fault, a clock step, then a switch. */
static void call_hook(void *arg, enum agw_op op)
{
	(void)op;
	struct actor *a = arg;
	struct sim *s = a->s;
	if (!s->running)
		return;
	pthread_mutex_lock(&s->m);
	a->calls++;
	if (a->crash_at && a->calls >= a->crash_at && !a->crashed) {
		/* this daemon dies here: nothing it sends arrives any more */
		a->crashed = 1;
		agw_fault_fail(a->fw, AGW_ALL, AEROGRAM_EUNAVAILABLE, 1.0, 1);
	}
	unsigned r = (unsigned)(rnd(s) % 1000);
	if (!a->crashed) {
		if (r < 15)
			agw_fault_fail_next(a->fw, AGW_ALL, AEROGRAM_EUNAVAILABLE, 1);
		else if (r < 30)
			agw_fault_fail_after_apply(a->fw, AGW_MASK(AGW_ROW_INSERT) | AGW_MASK(AGW_ROW_INSERT_IF) |
			                                      AGW_MASK(AGW_BLOB_PUT),
			                           0.5);
		else if (r < 60)
			agw_fault_clear(a->fw);
	}
	/* time passes: mostly a little, sometimes past the late window */
	s->now += r < 980 ? rnd(s) % 20 : 600 + rnd(s) % 1400;
	yield_locked(s, a->e);
	pthread_mutex_unlock(&s->m);
}

/* An engine's sleep: the clock moves, others run. */
static void sim_sleep(void *arg, uint32_t ms)
{
	struct actor *a = arg;
	struct sim *s = a->s;
	pthread_mutex_lock(&s->m);
	s->now += ms;
	yield_locked(s, a->e);
	pthread_mutex_unlock(&s->m);
}

/* ---- the actors ---- */

/* Brings the view up to date: without a crash it must never hear of a new
 * UIDVALIDITY, and a message it had not seen must never come below one it
 * had (RFC 3501 2.3.1.1: nothing is expunged in this run). */
static void observe(struct actor *a)
{
	struct sim *s = a->s;
	struct mail_changes *c = NULL;
	if (mail_view_update(a->view, 1, &c) != 0)
		return;
	if (c->uidvalidity_changed && !s->crash)
		FAIL(s, "seed %llu: engine %d's view was told a new UIDVALIDITY %u", (unsigned long long)s->seed, a->e,
		     c->uidvalidity);
	int new_uv = c->uidvalidity_changed;
	mail_changes_free(c);
	uint32_t n = mail_view_exists(a->view), prev = 0, max = a->max_seen_uid;
	for (uint32_t seq = 1; seq <= n; seq++) {
		uint32_t uid = mail_view_uid(a->view, seq);
		if (uid <= prev)
			FAIL(s, "engine %d: view not ascending", a->e);
		prev = uid;
		if (uid > max)
			max = uid;
	}
	/* the messages the view had are its first ones; any other is above */
	if (!new_uv && n < a->n_seen)
		FAIL(s, "seed %llu: engine %d's view lost messages", (unsigned long long)s->seed, a->e);
	for (uint32_t seq = 1; !new_uv && seq <= n && seq <= a->n_seen; seq++)
		if (mail_view_uid(a->view, seq) != a->seen[seq - 1])
			FAIL(s, "seed %llu: engine %d's view got UID %u below UIDs it had seen", (unsigned long long)s->seed,
			     a->e, mail_view_uid(a->view, seq));
	a->n_seen = n < MAX_MSGS * 2 ? n : MAX_MSGS * 2;
	for (uint32_t seq = 1; seq <= a->n_seen; seq++)
		a->seen[seq - 1] = mail_view_uid(a->view, seq);
	a->max_seen_uid = max;
}

static void *actor_main(void *arg)
{
	struct actor *a = arg;
	struct sim *s = a->s;
	pthread_mutex_lock(&s->m);
	while (s->current != a->e)
		pthread_cond_wait(&s->c, &s->m);
	pthread_mutex_unlock(&s->m);
	for (int i = 0; i < a->appends; i++) {
		char body[160];
		int bl = snprintf(body, sizeof(body), "X-Token: %d.%d\r\n\r\nmessage %d of engine %d\r\n", a->e, i, i, a->e);
		struct mail_new_message m = { .body = (const uint8_t *)body, .body_len = (size_t)bl,
		                              .header = (const uint8_t *)body, .header_len = 16,
		                              .flags = (uint32_t)(rnd(s) % 4) };
		uint32_t uv = 0, uid = 0;
		if (mail_append(a->mb, &m, &uv, &uid) == 0) {
			a->acked[i] = 1;
			a->uid[i] = uid;
			a->uv[i] = uv;
		}
		if (rnd(s) % 3 == 0 && a->view) {
			/* a flag change on the messages the view knows */
			uint32_t n = mail_view_exists(a->view), uids[8];
			size_t k = 0;
			for (uint32_t seq = 1; seq <= n && k < 8; seq++)
				if (rnd(s) % 2)
					uids[k++] = mail_view_uid(a->view, seq);
			mail_store(a->view, uids, k, MAIL_STORE_ADD, MAIL_F_FLAGGED, NULL, 0);
		}
		if (a->view && rnd(s) % 2)
			observe(a);
	}
	pthread_mutex_lock(&s->m);
	s->done[a->e] = 1;
	int any = 0;
	for (int i = 0; i < K; i++)
		any |= !s->done[i];
	if (any) {
		int alive[K], n = 0;
		for (int i = 0; i < K; i++)
			if (!s->done[i])
				alive[n++] = i;
		s->current = alive[rnd(s) % (uint64_t)n];
	} else {
		s->current = -1;
	}
	pthread_cond_broadcast(&s->c);
	pthread_mutex_unlock(&s->m);
	return NULL;
}

/* ---- the run ---- */

static int same_state(const struct uidx_state *x, const struct uidx_state *y)
{
	if (x->uidvalidity != y->uidvalidity || x->uidnext != y->uidnext || x->n != y->n ||
	    x->highestmodseq != y->highestmodseq) {
		if (eu_verbose)
			fprintf(stderr, "counters: uv %u/%u next %u/%u n %zu/%zu hms %llu/%llu\n", x->uidvalidity,
			        y->uidvalidity, x->uidnext, y->uidnext, x->n, y->n, (unsigned long long)x->highestmodseq,
			        (unsigned long long)y->highestmodseq);
		return 0;
	}
	for (size_t i = 0; i < x->n; i++)
		if (memcmp(x->msgs[i].id, y->msgs[i].id, UIDX_ID) || x->msgs[i].uid != y->msgs[i].uid ||
		    x->msgs[i].flags != y->msgs[i].flags) {
			if (eu_verbose)
				fprintf(stderr, "message %zu: uid %u/%u flags %llx/%llx\n", i, x->msgs[i].uid, y->msgs[i].uid,
				        (unsigned long long)x->msgs[i].flags, (unsigned long long)y->msgs[i].flags);
			return 0;
		}
	return 1;
}

/* The token of each message of a state, from its summary. */
static void tokens_of(struct sim *s, struct mail_mailbox *mb, int *engine_of, int *index_of, uint32_t *uids,
                      size_t *n_out)
{
	struct mail_view *v;
	uint32_t n;
	uint32_t *u = eu_view_open_uids(mb, &v, &n);
	*n_out = 0;
	if (u == NULL) {
		FAIL(s, "final view failed");
		return;
	}
	struct mail_summary *sm = NULL;
	if (mail_summaries(v, u, n, &sm) != 0) {
		FAIL(s, "final summaries failed");
	} else {
		for (uint32_t i = 0; i < n && i < MAX_MSGS * 2; i++) {
			int e = -1, k = -1;
			/* the header is a length, not a C string: copy what sscanf reads */
			char head[64] = "";
			if (sm[i].status == 0 && sm[i].header != NULL) {
				size_t len = sm[i].header_len < sizeof(head) - 1 ? sm[i].header_len : sizeof(head) - 1;
				memcpy(head, sm[i].header, len);
				head[len] = '\0';
			}
			if (sm[i].status != 0 || sscanf(head, "X-Token: %d.%d", &e, &k) != 2)
				FAIL(s, "UID %u has no summary", u[i]);
			engine_of[i] = e;
			index_of[i] = k;
			uids[i] = u[i];
		}
		*n_out = n < MAX_MSGS * 2 ? n : MAX_MSGS * 2;
	}
	mail_summaries_free(sm, n);
	free(u);
	mail_view_close(v);
}

/* Seeds (with a crash) whose UIDVALIDITY changed all the same. */
static unsigned g_uv_changed;

static int run_seed(uint64_t seed, int crash, int verbose)
{
	struct sim *s = calloc(1, sizeof(*s));
	s->seed = seed;
	s->rng = seed * 0x2545f4914f6cdd1dull + 7;
	s->no_cas = (int)(seed & 1);
	s->crash = crash;
	s->verbose = verbose;
	s->now = 1760000000000ull;
	s->current = -1;
	pthread_mutex_init(&s->m, NULL);
	pthread_cond_init(&s->c, NULL);
	s->drv = eu_load_memory();
	struct ag_store *inner = ag_driver_store(s->drv);
	int crasher = crash ? (int)(rnd(s) % K) : -1;
	for (int e = 0; e < K; e++) {
		struct actor *a = &s->a[e];
		a->s = s;
		a->e = e;
		a->fw = agw_fault_new(inner->driver, inner->store);
		if (s->no_cas)
			agw_fault_hide_caps(a->fw, AEROGRAM_CAP_CONDITIONAL | AEROGRAM_CAP_SNAPSHOT_READS);
		agw_set_call_hook(a->fw, call_hook, a);
		a->st.driver = agw_driver(a->fw);
		a->st.store = agw_store(a->fw);
		a->clock.shared = &s->now;
		a->clock.skew = (int64_t)(rnd(s) % 200) - 100;
		struct mail_engine_options o = eu_options(&a->clock, seed * 131 + (uint64_t)e + 1);
		o.sleep_ms = sim_sleep;
		o.sleep_arg = a;
		a->appends = 4 + (int)(rnd(s) % (MAX_APPENDS - 4));
		if (e == crasher)
			a->crash_at = 3 + rnd(s) % 40;
		if (mail_engine_new(&a->st, &o, &a->eng) != 0)
			FAIL(s, "engine_new");
	}
	for (int e = 0; e < K && !s->failed; e++) {
		struct actor *a = &s->a[e];
		if (mail_mailbox_open(a->eng, "u1", "INBOX", &a->mb) != 0 || mail_view_open(a->mb, 1, &a->view) != 0)
			FAIL(s, "setup open failed");
	}
	if (s->failed)
		goto out;
	s->uv0 = mail_view_uidvalidity(s->a[0].view);
	s->running = 1;
	for (int e = 0; e < K; e++)
		pthread_create(&s->a[e].th, NULL, actor_main, &s->a[e]);
	pthread_mutex_lock(&s->m);
	s->current = (int)(rnd(s) % K);
	pthread_cond_broadcast(&s->c);
	pthread_mutex_unlock(&s->m);
	for (int e = 0; e < K; e++)
		pthread_join(s->a[e].th, NULL);
	s->running = 0;

	/* quiescence: the live engines sync with a working store; the dead one
	 * stays dead; enough time passes for its claim to be presumed dead, and
	 * for a sync to read everything since the checkpoint again (a writer
	 * that died after a slow write never announced it) */
	s->now += OPLOG_TURN_LEASE_MS + OPLOG_DEEP_EVERY_MS + 1000;
	for (int e = 0; e < K; e++)
		if (!s->a[e].crashed)
			agw_fault_clear(s->a[e].fw);
	/* one more append per live engine: the turn must come back to them */
	for (int e = 0; e < K; e++) {
		struct actor *a = &s->a[e];
		if (a->crashed)
			continue;
		char body[64];
		int bl = snprintf(body, sizeof(body), "X-Token: %d.%d\r\n\r\nlast\r\n", e, MAX_APPENDS - 1);
		struct mail_new_message m = { .body = (const uint8_t *)body, .body_len = (size_t)bl,
		                              .header = (const uint8_t *)body, .header_len = 16 };
		uint32_t uv, uid;
		if (mail_append(a->mb, &m, &uv, &uid) != 0) {
			FAIL(s, "seed %llu: engine %d cannot append after the run", (unsigned long long)seed, e);
		} else {
			a->acked[MAX_APPENDS - 1] = 1;
			a->uid[MAX_APPENDS - 1] = uid;
			a->uv[MAX_APPENDS - 1] = uv;
		}
	}
	for (int round = 0; round < 2; round++)
		for (int e = 0; e < K; e++)
			if (!s->a[e].crashed && mail_mailbox_sync(s->a[e].mb) != 0)
				FAIL(s, "quiescent sync failed");
	for (int e = 0; e < K && !s->crash; e++)
		observe(&s->a[e]);

	struct eu_clock fc = { 0, 0, &s->now };
	struct mail_engine_options fo = eu_options(&fc, seed * 131 + 99);
	struct mail_engine *fresh = NULL;
	struct mail_mailbox *fmb = NULL;
	struct ag_store fst = *inner;
	if (mail_engine_new(&fst, &fo, &fresh) != 0 || mail_mailbox_open(fresh, "u1", "INBOX", &fmb) != 0) {
		FAIL(s, "fresh engine cannot open");
		goto out2;
	}
	const struct uidx_state *f = fmb->log.cur;
	for (int e = 0; e < K; e++)
		if (!s->a[e].crashed && !same_state(s->a[e].mb->log.cur, f))
			FAIL(s, "seed %llu: engine %d differs from a fresh engine", (unsigned long long)seed, e);
	if (f->uidvalidity != s->uv0)
		g_uv_changed++;
	if (!s->crash && f->uidvalidity != s->uv0)
		FAIL(s, "seed %llu: UIDVALIDITY went from %u to %u", (unsigned long long)seed, s->uv0, f->uidvalidity);
	int engine_of[MAX_MSGS * 2], index_of[MAX_MSGS * 2];
	uint32_t uids[MAX_MSGS * 2];
	size_t n = 0;
	tokens_of(s, fmb, engine_of, index_of, uids, &n);
	int count[K][MAX_APPENDS];
	memset(count, 0, sizeof(count));
	for (size_t i = 0; i < n; i++) {
		int e = engine_of[i], k = index_of[i];
		if (e < 0 || e >= K || k < 0 || k >= MAX_APPENDS) {
			FAIL(s, "a message nobody sent");
			continue;
		}
		count[e][k]++;
		/* an APPENDUID given under the final UIDVALIDITY names this message */
		struct actor *a = &s->a[e];
		if (a->acked[k] && a->uv[k] == f->uidvalidity && a->uid[k] != uids[i])
			FAIL(s, "seed %llu: engine %d's append %d was told UID %u, is UID %u", (unsigned long long)seed, e,
			     k, a->uid[k], uids[i]);
	}
	for (int e = 0; e < K; e++)
		for (int k = 0; k < MAX_APPENDS; k++) {
			if (count[e][k] > 1)
				FAIL(s, "seed %llu: append %d.%d is there %d times", (unsigned long long)seed, e, k,
				     count[e][k]);
			if (s->a[e].acked[k] && count[e][k] != 1)
				FAIL(s, "seed %llu: acknowledged append %d.%d is missing", (unsigned long long)seed, e, k);
			if (!s->crash && s->a[e].acked[k] && s->a[e].uv[k] != s->uv0)
				FAIL(s, "seed %llu: APPENDUID under UIDVALIDITY %u", (unsigned long long)seed, s->a[e].uv[k]);
		}
	/* APPENDUIDs are unique under one UIDVALIDITY */
	for (int e = 0; e < K; e++)
		for (int k = 0; k < MAX_APPENDS; k++)
			for (int e2 = 0; e2 < K; e2++)
				for (int k2 = 0; k2 < MAX_APPENDS; k2++) {
					if ((e2 < e || (e2 == e && k2 <= k)) || !s->a[e].acked[k] || !s->a[e2].acked[k2])
						continue;
					if (s->a[e].uv[k] == s->a[e2].uv[k2] && s->a[e].uid[k] == s->a[e2].uid[k2])
						FAIL(s, "seed %llu: UID %u given to two appends", (unsigned long long)seed,
						     s->a[e].uid[k]);
				}
out2:
	mail_mailbox_close(fmb);
	mail_engine_free(fresh);
out:
	if (verbose && !s->failed)
		printf("seed %llu (%s%s): UIDVALIDITY %u, turn waits %llu/%llu/%llu\n", (unsigned long long)seed,
		       s->no_cas ? "turns" : "conditional", crash ? ", crash" : "", s->uv0,
		       (unsigned long long)(s->a[0].mb ? s->a[0].mb->log.turn_waits : 0),
		       (unsigned long long)(s->a[1].mb ? s->a[1].mb->log.turn_waits : 0),
		       (unsigned long long)(s->a[2].mb ? s->a[2].mb->log.turn_waits : 0));
	for (int e = 0; e < K; e++) {
		struct actor *a = &s->a[e];
		/* a dead engine's calls keep failing while it is closed */
		mail_view_close(a->view);
		mail_mailbox_close(a->mb);
		mail_engine_free(a->eng);
		agw_free(a->fw);
	}
	ag_driver_unload(s->drv);
	int failed = s->failed;
	if (failed)
		fprintf(stderr, "sim_appenders: seed %llu FAILED: %s\n  replay: %s --seed %llu%s\n",
		        (unsigned long long)seed, s->why, "build/tests/engine/sim_appenders", (unsigned long long)seed,
		        crash ? " --crash" : "");
	pthread_mutex_destroy(&s->m);
	pthread_cond_destroy(&s->c);
	free(s);
	return failed;
}

int main(int argc, char **argv)
{
	struct eu_seeds a;
	int crash = 0;
	if (eu_seed_args(argc, argv, "--crash", &crash, &a) != 0)
		return 2;
	uint64_t first = a.first, count = a.one ? 1 : a.count;
	unsigned failures = 0;
	for (uint64_t sd = first; sd < first + count; sd++)
		failures += (unsigned)run_seed(sd, crash, a.verbose || a.one);
	printf("sim_appenders: %llu seeds from %llu%s, %u failed, %u with a new UIDVALIDITY (K=%d engines appending "
	       "at once; odd seeds without conditional writes)\n",
	       (unsigned long long)count, (unsigned long long)first, crash ? " with a crash each" : "", failures,
	       g_uv_changed, K);
	return failures ? 1 : 0;
}
