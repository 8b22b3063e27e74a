/* engine_util.c - see engine_util.h. */
#include "tests/engine/engine_util.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/mail/mail_internal.h"

unsigned long eu_warnings;
int eu_verbose;

struct ag_driver *eu_load_memory(void)
{
	const char *path = getenv("AG_MEMORY_DRIVER");
	if (path == NULL)
		path = "build/drivers/aerogram_memory.so";
	struct ag_driver *drv = NULL;
	char err[512];
	if (ag_driver_load(path, NULL, NULL, 0, &drv, err, sizeof(err)) != 0) {
		fprintf(stderr, "cannot load the memory driver: %s\n", err);
		exit(2);
	}
	return drv;
}

uint64_t eu_rnd(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

int eu_seed_args(int argc, char **argv, const char *flag, int *flag_set, struct eu_seeds *out)
{
	*out = (struct eu_seeds){ .first = 1, .count = 1000 };
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seeds") == 0 && i + 1 < argc) {
			out->count = strtoull(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--first") == 0 && i + 1 < argc) {
			out->first = strtoull(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
			out->first = strtoull(argv[++i], NULL, 10);
			out->one = 1;
		} else if (flag != NULL && strcmp(argv[i], flag) == 0) {
			*flag_set = 1;
		} else if (strcmp(argv[i], "-v") == 0) {
			out->verbose = 1;
			eu_verbose = 1;
		} else {
			fprintf(stderr, "usage: %s [--seeds N] [--first S] [--seed S]%s%s%s [-v]\n", argv[0],
			        flag ? " [" : "", flag ? flag : "", flag ? "]" : "");
			return 2;
		}
	}
	return 0;
}

uint64_t eu_clock_ms(void *arg)
{
	struct eu_clock *c = arg;
	uint64_t base = c->shared ? *c->shared : c->now;
	return (uint64_t)((int64_t)base + c->skew);
}

static void quiet_log(void *arg, int level, const char *line)
{
	(void)arg;
	if (level <= 1)
		eu_warnings++;
	if (eu_verbose)
		fprintf(stderr, "engine log %d: %s\n", level, line);
}

/* A sleep moves the test's clock instead of waiting. */
static void clock_sleep(void *arg, uint32_t ms)
{
	struct eu_clock *c = arg;
	if (c->shared)
		__atomic_add_fetch(c->shared, ms, __ATOMIC_SEQ_CST);
	else
		__atomic_add_fetch(&c->now, ms, __ATOMIC_SEQ_CST);
}

struct mail_engine_options eu_options(struct eu_clock *clock, uint64_t seed)
{
	struct mail_engine_options o = { 0 };
	o.clock_ms = eu_clock_ms;
	o.clock_arg = clock;
	o.sleep_ms = clock ? clock_sleep : NULL;
	o.sleep_arg = clock;
	o.seed = seed;
	o.no_poller = 1;
	o.log = quiet_log;
	return o;
}

int eu_no_cas;

int eu_suite_cas(void)
{
	eu_no_cas = 0;
	return 0;
}

int eu_suite_turns(void)
{
	eu_no_cas = 1;
	return 0;
}

void eu_add_suites(const char *name, const struct agt_test *tests, const CU_TestFunc *cas_only,
                   const CU_TestFunc *turns_only)
{
	char turns[256];
	snprintf(turns, sizeof(turns), "%s, without conditional writes", name);
	agt_suite(name, eu_suite_cas, NULL, tests, turns_only);
	agt_suite(turns, eu_suite_turns, NULL, tests, cas_only);
}

int eu_main(int argc, char **argv, const char *name, const struct agt_test *tests, const CU_TestFunc *cas_only,
            const CU_TestFunc *turns_only)
{
	agt_init(&argc, &argv);
	eu_add_suites(name, tests, cas_only, turns_only);
	return agt_run();
}

void eu_env_open_with(struct eu_env *e, uint64_t seed, uint64_t hide, uint64_t retention_ms)
{
	memset(e, 0, sizeof(*e));
	e->drv = eu_load_memory();
	struct ag_store *in = ag_driver_store(e->drv);
	e->fw = agw_fault_new(in->driver, in->store);
	if (eu_no_cas)
		hide |= AEROGRAM_CAP_CONDITIONAL | AEROGRAM_CAP_SNAPSHOT_READS;
	/* several engines on one store stand for daemons sharing it: not the
	 * memory driver's private store */
	agw_fault_hide_caps(e->fw, hide | AEROGRAM_CAP_PRIVATE);
	e->cw = agw_count_new(agw_driver(e->fw), agw_store(e->fw));
	e->st.driver = agw_driver(e->cw);
	e->st.store = agw_store(e->cw);
	e->clk.now = 1750000000000ull;
	struct mail_engine_options o = eu_options(&e->clk, seed);
	o.expunge_retention_ms = retention_ms;
	CU_ASSERT_FATAL(mail_engine_new(&e->st, &o, &e->eng) == 0);
	CU_ASSERT_EQUAL(e->eng->cas, !eu_no_cas);
}

void eu_env_open(struct eu_env *e, uint64_t seed)
{
	eu_env_open_with(e, seed, 0, 0);
}

struct mail_engine *eu_env_engine(struct eu_env *e, uint64_t seed)
{
	struct mail_engine_options o = eu_options(&e->clk, seed);
	struct mail_engine *eng = NULL;
	CU_ASSERT_FATAL(mail_engine_new(&e->st, &o, &eng) == 0);
	return eng;
}

void eu_env_close(struct eu_env *e)
{
	mail_engine_free(e->eng);
	agw_free(e->cw);
	agw_free(e->fw);
	ag_driver_unload(e->drv);
}

uint64_t eu_total_calls(struct eu_env *e)
{
	uint64_t n = 0;
	for (int op = 0; op < AGW_OP_COUNT; op++)
		n += agw_count_get(e->cw, (enum agw_op)op);
	return n;
}

int eu_append_n(struct mail_mailbox *mb, int n, uint32_t flags)
{
	for (int i = 0; i < n; i++) {
		char hdr[64], body[128];
		int hl = snprintf(hdr, sizeof(hdr), "Subject: %d\r\n", i);
		int bl = snprintf(body, sizeof(body), "Subject: %d\r\n\r\nbody %d\r\n", i, i);
		struct mail_new_message m = { .body = (const uint8_t *)body, .body_len = (size_t)bl,
		                              .flags = flags, .header = (const uint8_t *)hdr,
		                              .header_len = (size_t)hl };
		if (mail_append(mb, &m, NULL, NULL) != 0)
			return -1;
	}
	return 0;
}

struct mail_engine *eu_poller_engine(const struct ag_store *st, uint64_t seed, uint32_t poll_timeout_ms)
{
	struct mail_engine_options o = { 0 };
	o.seed = seed;
	o.poll_timeout_ms = poll_timeout_ms;
	o.log = quiet_log;
	struct mail_engine *eng = NULL;
	CU_ASSERT_FATAL(mail_engine_new(st, &o, &eng) == 0);
	return eng;
}

struct mail_mailbox *eu_box(struct mail_engine *eng, const char *user, const char *name, int n)
{
	struct mail_mailbox *mb = NULL;
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(eng, user, name, &mb), 0);
	CU_ASSERT_EQUAL_FATAL(eu_append_n(mb, n, 0), 0);
	return mb;
}

struct mail_view *eu_view(struct mail_mailbox *mb)
{
	struct mail_view *v = NULL;
	CU_ASSERT_EQUAL_FATAL(mail_view_open(mb, 0, &v), 0);
	return v;
}

uint32_t *eu_view_uids(struct mail_view *v, uint32_t *n)
{
	*n = mail_view_exists(v);
	uint32_t *uids = malloc((*n + 1) * sizeof(uint32_t));
	for (uint32_t i = 0; i < *n; i++)
		uids[i] = mail_view_uid(v, i + 1);
	return uids;
}

uint32_t *eu_view_open_uids(struct mail_mailbox *mb, struct mail_view **v, uint32_t *n)
{
	*v = NULL;
	*n = 0;
	if (mail_view_open(mb, 0, v) != 0)
		return NULL;
	return eu_view_uids(*v, n);
}

void eu_check_fresh_engine(struct eu_env *e, uint64_t seed, const char *user, const char *name,
                           struct mail_mailbox *mb)
{
	struct mail_engine *fresh = eu_env_engine(e, seed);
	struct mail_mailbox *fm = NULL;
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(fresh, user, name, &fm), 0);
	struct mail_status st, st2;
	mail_mailbox_status(mb, &st);
	mail_mailbox_status(fm, &st2);
	CU_ASSERT_EQUAL(st2.exists, st.exists);
	CU_ASSERT_EQUAL(st2.uidnext, st.uidnext);
	mail_mailbox_close(fm);
	mail_engine_free(fresh);
}

struct uidx_op *eu_del_op(size_t n)
{
	struct uidx_op *d = calloc(1, sizeof(*d));
	CU_ASSERT_FATAL(d != NULL);
	d->kind = UIDX_OP_DEL;
	d->n = n;
	d->ids = calloc(n, UIDX_ID);
	CU_ASSERT_FATAL(d->ids != NULL);
	return d;
}

/* Decodes an op (state 0) or a checkpoint (1), frees what it got and
 * returns the decoding's result; a refused op leaves nothing behind. */
static int decode_free(int state, const uint8_t *p, size_t len)
{
	struct uidx_op *op = NULL;
	struct uidx_state *st = NULL;
	int rc = state ? codec_state_decode(p, len, &st) : codec_op_decode(p, len, &op);
	CU_ASSERT(rc == 0 || op == NULL);
	uidx_op_free(op);
	uidx_free(st);
	return rc;
}

static void check_damage(struct cbuf *b, uint8_t flip, int state)
{
	for (size_t cut = 0; cut < b->len; cut++)
		CU_ASSERT_NOT_EQUAL(decode_free(state, b->p, cut), 0);
	for (size_t i = 0; i < b->len; i++) {
		uint8_t save = b->p[i];
		b->p[i] ^= flip;
		decode_free(state, b->p, b->len);
		b->p[i] = save;
	}
}

void eu_check_op_damage(struct cbuf *b)
{
	check_damage(b, 0x5a, 0);
}

void eu_check_state_damage(struct cbuf *b)
{
	check_damage(b, 0xa5, 1);
}

/* The round trips of ops and of checkpoints: one body, two types. */
#define EU_ROUNDTRIP(fn, type, encode, decode)                                  \
	type *fn(const type *x, int version, struct cbuf *b)                    \
	{                                                                       \
		CU_ASSERT_EQUAL_FATAL(encode(x, b), 0);                         \
		CU_ASSERT_EQUAL(b->p[1], version);                              \
		type *d = NULL;                                                 \
		CU_ASSERT_EQUAL_FATAL(decode(b->p, b->len, &d), 0);             \
		return d;                                                       \
	}
EU_ROUNDTRIP(eu_op_roundtrip, struct uidx_op, codec_op_encode, codec_op_decode)
EU_ROUNDTRIP(eu_state_roundtrip, struct uidx_state, codec_state_encode, codec_state_decode)
