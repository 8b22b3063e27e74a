/* check_conditional.c - conformance tests of row_insert_if
 * (AEROGRAM_CAP_CONDITIONAL): the condition on a row's causality token, the
 * all-or-nothing batch, the token handed back, watches, and a counter
 * incremented by several threads with read-then-compare-and-set.
 *
 * A driver without the capability skips every test but the first, with a
 * note on standard output, and must then leave the pointer NULL or answer
 * AEROGRAM_ENOTSUP. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sdk/conformance/check_util.h"

/* Whether the conditional tests apply; prints the note of a skipped test. */
static int conditional_or_skip(void)
{
	if ((ck_driver->capabilities & AEROGRAM_CAP_CONDITIONAL) && ck_driver->row_insert_if != NULL)
		return 1;
	printf("(skipped: %s does not advertise AEROGRAM_CAP_CONDITIONAL) ", ck_driver->name);
	fflush(stdout);
	return 0;
}

/* A fresh partition for a conditional test, or NULL (the test is skipped,
 * with its note) when the driver lacks the capability. */
static const char *cas_pk(const char *name)
{
	return conditional_or_skip() ? ck_pk(name) : NULL;
}

/* As cas_pk, with row `sk` written with `value` first; its token in *token. */
static const char *cas_start(const char *name, const char *sk, const char *value, char **token)
{
	const char *pk = cas_pk(name);
	if (pk != NULL)
		*token = ck_put(pk, sk, value, NULL);
	return pk;
}

/* Calls row_insert_if; `new_token` may be NULL. */
static int insert_if(const char *pk, const char *sk, const char *token,
                     const struct aerogram_row_write *writes, size_t n, char *new_token)
{
	return ck_driver->row_insert_if(ck_store, pk, sk, token, writes, n, new_token,
	                      new_token ? AEROGRAM_TOKEN_MAX : 0);
}

static struct aerogram_row_write value_write(const char *pk, const char *sk, const char *value,
                                             const char *token)
{
	return (struct aerogram_row_write){ .pk = pk, .sk = sk, .token = token,
		                            .value = (const uint8_t *)value, .len = strlen(value) };
}

/* Without the capability the call is absent or refuses with ENOTSUP. */
static void test_without_capability(void)
{
	if (ck_driver->capabilities & AEROGRAM_CAP_CONDITIONAL) {
		CK_REQUIRE(ck_driver->row_insert_if != NULL,
		           "AEROGRAM_CAP_CONDITIONAL is advertised, but row_insert_if is NULL");
		return;
	}
	if (ck_driver->row_insert_if == NULL)
		return;
	const char *pk = ck_pk("nocap");
	struct aerogram_row_write w = value_write(pk, "a", "x", NULL);
	char tok[AEROGRAM_TOKEN_MAX];
	CK_EXPECT("row_insert_if without AEROGRAM_CAP_CONDITIONAL",
	          ck_driver->row_insert_if(ck_store, pk, "a", NULL, &w, 1, tok, sizeof(tok)), AEROGRAM_ENOTSUP);
	CK_CHECK(ck_get(pk, "a", AEROGRAM_QUERY_TOMBSTONES) == NULL,
	         "a refused row_insert_if must write nothing");
}

/* The engine's append: condition on the watch row's token; the batch writes
 * a summary, a log entry and the watch row with that token. */
static void test_condition_met_applies_all(void)
{
	char *t;
	const char *pk = cas_start("cas-met", "watch", "w0", &t);
	if (pk == NULL)
		return;
	struct aerogram_row_write w[3] = {
		value_write(pk, "summary", "the summary", NULL),
		value_write(pk, "log-0001", "the entry", NULL),
		value_write(pk, "watch", "w1", t),
	};
	char new_token[AEROGRAM_TOKEN_MAX];
	memset(new_token, 'x', sizeof(new_token));
	CK_OK("row_insert_if(condition met)", insert_if(pk, "watch", t, w, 3, new_token));
	CK_REQUIRE(memchr(new_token, '\0', sizeof(new_token)) != NULL,
	           "new_token is not NUL-terminated within AEROGRAM_TOKEN_MAX bytes");
	const struct aerogram_row *r = ck_row(pk, "watch", 0, "the condition row disappeared");
	CK_CHECK(r->n_values == 1 && ck_count_value(r, "w1") == 1,
	         "the watch row must hold only the value written with its token (got %zu values)",
	         r->n_values);
	CK_CHECK(strcmp(new_token, r->token) == 0,
	         "new_token '%s' differs from the token '%s' a read returns right after", new_token,
	         r->token);
	CK_CHECK(strcmp(new_token, t) != 0, "the condition row was written, yet its token is unchanged");
	CK_CHECK(ck_count_value(ck_get(pk, "summary", 0), "the summary") == 1, "the summary row is missing");
	CK_CHECK(ck_count_value(ck_get(pk, "log-0001", 0), "the entry") == 1, "the log row is missing");

	/* The new token is the condition of the next batch; new_token may be NULL. */
	struct aerogram_row_write w2[2] = {
		value_write(pk, "log-0002", "second", NULL),
		value_write(pk, "watch", "w2", new_token),
	};
	CK_OK("row_insert_if(with the returned token, new_token NULL)",
	      insert_if(pk, "watch", new_token, w2, 2, NULL));
	CK_CHECK(ck_count_value(ck_get(pk, "log-0002", 0), "second") == 1, "the second log row is missing");
}

/* A token that is no longer current fails with ECONFLICT and applies nothing. */
static void test_stale_token_conflicts(void)
{
	char *stale;
	const char *pk = cas_start("cas-stale", "watch", "w0", &stale);
	if (pk == NULL)
		return;
	char *current = ck_put(pk, "watch", "other writer", stale); /* somebody else wrote it since */
	struct aerogram_row_write w[3] = {
		value_write(pk, "summary", "s", NULL),
		value_write(pk, "log-0001", "e", NULL),
		value_write(pk, "watch", "mine", stale),
	};
	char new_token[AEROGRAM_TOKEN_MAX] = "untouched";
	CK_EXPECT("row_insert_if(stale token)", insert_if(pk, "watch", stale, w, 3, new_token),
	          AEROGRAM_ECONFLICT);
	CK_CHECK(ck_get(pk, "summary", AEROGRAM_QUERY_TOMBSTONES) == NULL,
	         "a conflicting batch wrote its first row");
	CK_CHECK(ck_get(pk, "log-0001", AEROGRAM_QUERY_TOMBSTONES) == NULL,
	         "a conflicting batch wrote its second row");
	const struct aerogram_row *r = ck_row(pk, "watch", 0, "the condition row disappeared");
	CK_CHECK(strcmp(r->token, current) == 0 && r->n_values == 1 &&
	         ck_count_value(r, "other writer") == 1,
	         "a conflicting batch changed the condition row");
	/* a token of another row is not the token of this one */
	char *foreign = ck_put(pk, "elsewhere", "x", NULL);
	if (strcmp(foreign, current) != 0)
		CK_EXPECT("row_insert_if(token of another row)",
		          insert_if(pk, "watch", foreign, w, 2, NULL), AEROGRAM_ECONFLICT);
	/* the current token succeeds */
	w[2].token = current;
	CK_OK("row_insert_if(current token)", insert_if(pk, "watch", current, w, 3, NULL));
}

/* A NULL condition token means "the row does not exist at all": it holds on a
 * row never written and fails on a row with values or only tombstones. */
static void test_null_token_means_absent(void)
{
	const char *pk = cas_pk("cas-null");
	if (pk == NULL)
		return;
	struct aerogram_row_write create = value_write(pk, "watch", "first", NULL);
	char new_token[AEROGRAM_TOKEN_MAX] = "";
	CK_OK("row_insert_if(NULL token, missing row)", insert_if(pk, "watch", NULL, &create, 1, new_token));
	const struct aerogram_row *r = ck_get(pk, "watch", 0);
	CK_REQUIRE(r != NULL && ck_count_value(r, "first") == 1, "the created row is missing");
	CK_CHECK(strcmp(r->token, new_token) == 0, "new_token '%s' is not the token read after, '%s'",
	         new_token, r->token);

	struct aerogram_row_write again = value_write(pk, "watch", "second", NULL);
	CK_EXPECT("row_insert_if(NULL token, existing row)",
	          insert_if(pk, "watch", NULL, &again, 1, NULL), AEROGRAM_ECONFLICT);
	r = ck_get(pk, "watch", 0);
	CK_CHECK(r != NULL && r->n_values == 1 && ck_count_value(r, "first") == 1,
	         "a refused create changed the row");

	/* a row of only tombstones exists */
	ck_write(pk, "dead", "v", NULL);
	ck_write(pk, "dead", NULL, ck_token(ck_get(pk, "dead", 0)));
	const struct aerogram_row *dead = ck_get(pk, "dead", AEROGRAM_QUERY_TOMBSTONES);
	CK_REQUIRE(dead != NULL && ck_count_tombstones(dead) == 1, "the tombstoned row is not readable");
	struct aerogram_row_write revive = value_write(pk, "dead", "revived", NULL);
	CK_EXPECT("row_insert_if(NULL token, tombstone-only row)",
	          insert_if(pk, "dead", NULL, &revive, 1, NULL), AEROGRAM_ECONFLICT);
	CK_CHECK(ck_get(pk, "dead", 0) == NULL, "a refused batch revived a tombstoned row");
	/* ... and its token (read with TOMBSTONES) is its current token */
	revive.token = ck_token(dead);
	CK_OK("row_insert_if(token of a tombstone-only row)",
	      insert_if(pk, "dead", ck_token(dead), &revive, 1, NULL));
	r = ck_get(pk, "dead", 0);
	CK_CHECK(r != NULL && r->n_values == 1 && ck_count_value(r, "revived") == 1,
	         "the row written over its tombstone must hold only the new value");

	/* a token on a row that does not exist fails */
	struct aerogram_row_write ghost = value_write(pk, "ghost", "g", NULL);
	CK_EXPECT("row_insert_if(a token, missing row)",
	          insert_if(pk, "ghost", new_token, &ghost, 1, NULL), AEROGRAM_ECONFLICT);
	CK_CHECK(ck_get(pk, "ghost", AEROGRAM_QUERY_TOMBSTONES) == NULL, "a refused batch wrote its row");
}

/* An invalid item anywhere in the batch applies nothing, condition met or not. */
static void test_invalid_item_applies_nothing(void)
{
	char *t;
	const char *pk = cas_start("cas-invalid", "watch", "w0", &t);
	if (pk == NULL)
		return;
	struct aerogram_row_write w[3] = {
		value_write(pk, "summary", "s", NULL),
		value_write(pk, "watch", "w1", t),
		value_write(NULL, "log", "e", NULL), /* no partition key */
	};
	CK_EXPECT("row_insert_if(third write without partition key)",
	          insert_if(pk, "watch", t, w, 3, NULL), AEROGRAM_EINVAL);
	w[2] = value_write(pk, "log", "e", "not a token!");
	CK_EXPECT("row_insert_if(third write with a malformed token)",
	          insert_if(pk, "watch", t, w, 3, NULL), AEROGRAM_EINVAL);
	w[2] = value_write(pk, NULL, "e", NULL);
	CK_EXPECT("row_insert_if(third write without sort key)",
	          insert_if(pk, "watch", t, w, 3, NULL), AEROGRAM_EINVAL);
	CK_CHECK(ck_get(pk, "summary", AEROGRAM_QUERY_TOMBSTONES) == NULL,
	         "an invalid batch wrote its first row");
	const struct aerogram_row *r = ck_get(pk, "watch", 0);
	CK_CHECK(r != NULL && strcmp(r->token, t) == 0 && ck_count_value(r, "w1") == 0,
	         "an invalid batch wrote the condition row");
	/* a malformed condition token is refused (as invalid or as a mismatch) */
	w[2] = value_write(pk, "log", "e", NULL);
	int rc = insert_if(pk, "watch", "not a token!", w, 3, NULL);
	CK_CHECK(rc == AEROGRAM_EINVAL || rc == AEROGRAM_ECONFLICT,
	         "row_insert_if(malformed condition token) returned %s, expected EINVAL or ECONFLICT",
	         ck_status_name(rc));
	CK_EXPECT("row_insert_if(condition without partition key)",
	          ck_driver->row_insert_if(ck_store, NULL, "watch", t, w, 3, NULL, 0), AEROGRAM_EINVAL);
	CK_CHECK(ck_get(pk, "summary", AEROGRAM_QUERY_TOMBSTONES) == NULL &&
	         ck_get(pk, "log", AEROGRAM_QUERY_TOMBSTONES) == NULL,
	         "a refused batch wrote something");
}

/* The condition row need not be written: it is only read, and keeps its token. */
static void test_condition_row_not_written(void)
{
	char *t;
	const char *pk = cas_start("cas-readonly", "guard", "g", &t);
	if (pk == NULL)
		return;
	const char *other = ck_pk("cas-readonly-other");
	struct aerogram_row_write w = value_write(other, "item", "one", NULL);
	char new_token[AEROGRAM_TOKEN_MAX] = "";
	CK_OK("row_insert_if(condition row not among the writes)",
	      insert_if(pk, "guard", t, &w, 1, new_token));
	CK_CHECK(strcmp(new_token, t) == 0,
	         "the condition row was not written, but new_token '%s' differs from its token '%s'",
	         new_token, t);
	CK_CHECK(ck_count_value(ck_get(other, "item", 0), "one") == 1, "the write was not applied");
	/* the token is still current: a second batch on it succeeds too */
	w = value_write(other, "item2", "two", NULL);
	CK_OK("row_insert_if(same condition again)", insert_if(pk, "guard", t, &w, 1, NULL));
	CK_CHECK(ck_count_value(ck_get(other, "item2", 0), "two") == 1, "the second write was not applied");
	/* a NULL condition on a missing row that stays missing: new_token is empty */
	w = value_write(other, "item3", "three", NULL);
	strcpy(new_token, "untouched");
	CK_OK("row_insert_if(missing condition row, not written)",
	      insert_if(pk, "never-written", NULL, &w, 1, new_token));
	CK_CHECK(new_token[0] == '\0',
	         "the condition row still does not exist, but new_token is '%s' (expected empty)",
	         new_token);
	CK_CHECK(ck_get(pk, "never-written", AEROGRAM_QUERY_TOMBSTONES) == NULL,
	         "the condition row was created though no write named it");
}

/* ---- a watch on the condition row ---------------------------------------- */

static void test_watch_on_condition_row_fires(void)
{
	char *t;
	const char *pk = cas_start("cas-watch", "watch", "w0", &t);
	if (pk == NULL)
		return;
	struct ck_watch_rec *f = ck_watch_rec_new();
	CK_OK("row_watch",
	      ck_driver->row_watch(ck_store, pk, "watch", t, CK_WAIT_MS, ck_on_watch, f, &f->watch));
	struct aerogram_row_write w[2] = {
		value_write(pk, "log-0001", "entry", NULL),
		value_write(pk, "watch", "w1", t),
	};
	char new_token[AEROGRAM_TOKEN_MAX] = "";
	int rc = insert_if(pk, "watch", t, w, 2, new_token);
	int calls = rc == 0 ? ck_watch_wait(f, CK_WAIT_MS + 5000) : ck_watch_calls(f);
	pthread_mutex_lock(&f->lock);
	int status = f->status;
	char token[sizeof(f->token)], value[sizeof(f->first_value)];
	memcpy(token, f->token, sizeof(token));
	memcpy(value, f->first_value, sizeof(value));
	pthread_mutex_unlock(&f->lock);
	CK_OK("row_insert_if", rc);
	CK_REQUIRE(calls == 1, "the watch on the condition row fired %d times, expected once", calls);
	CK_CHECK(status == AEROGRAM_OK, "the watch fired with %s, expected AEROGRAM_OK",
	         ck_status_name(status));
	CK_CHECK(strcmp(token, new_token) == 0 && strcmp(value, "w1") == 0,
	         "the watch reported token '%s' value '%s', expected '%s' and 'w1'", token, value,
	         new_token);
}

/* ---- linearizability: a counter incremented by compare-and-set ----------- */

#define CAS_THREADS 6
#define CAS_INCREMENTS 40

struct incrementer {
	int id;
	const char *pk;
	int rc;
	unsigned done, conflicts;
	char message[256];
};

/* Reads the counter row: its value (0 when absent) and token ("" when absent). */
static int read_counter(const char *pk, unsigned long *value, char *token)
{
	struct aerogram_row_query q = { .pk = pk, .sk = "counter" };
	struct aerogram_row_result *res = NULL;
	int rc = ck_driver->row_read(ck_store, &q, 1, &res);
	if (rc != 0)
		return rc;
	*value = 0;
	token[0] = '\0';
	const struct aerogram_row_page *p = &res->pages[0];
	if (p->n_rows == 1) {
		const struct aerogram_row *r = &p->rows[0];
		snprintf(token, AEROGRAM_TOKEN_MAX, "%s", r->token);
		/* a second value would be a lost update made visible: report it */
		if (r->n_values != 1 || r->values[0].tombstone) {
			ck_driver->row_result_free(ck_store, res);
			return AEROGRAM_EINTERNAL;
		}
		char text[32];
		snprintf(text, sizeof(text), "%.*s", (int)r->values[0].len, (const char *)r->values[0].data);
		*value = strtoul(text, NULL, 10);
	}
	ck_driver->row_result_free(ck_store, res);
	return 0;
}

static void *incrementer_main(void *arg)
{
	struct incrementer *in = arg;
	while (in->done < CAS_INCREMENTS && in->rc == 0) {
		unsigned long v;
		char token[AEROGRAM_TOKEN_MAX];
		in->rc = read_counter(in->pk, &v, token);
		if (in->rc != 0) {
			snprintf(in->message, sizeof(in->message), "reading the counter: %s",
			         in->rc == AEROGRAM_EINTERNAL ? "it holds siblings"
			                                      : ck_driver->error_message(ck_store));
			break;
		}
		/* let the other threads read the same value: the CAS must sort them out */
		ck_sleep_ms(1);
		char next[32], sk[32], who[32];
		snprintf(next, sizeof(next), "%lu", v + 1);
		snprintf(sk, sizeof(sk), "inc-%06lu", v + 1);
		snprintf(who, sizeof(who), "thread %d", in->id);
		const char *cond = token[0] ? token : NULL;
		struct aerogram_row_write w[2] = {
			value_write(in->pk, sk, who, NULL),
			value_write(in->pk, "counter", next, cond),
		};
		int rc = insert_if(in->pk, "counter", cond, w, 2, NULL);
		if (rc == 0) {
			in->done++;
		} else if (rc == AEROGRAM_ECONFLICT) {
			in->conflicts++;
		} else {
			in->rc = rc;
			snprintf(in->message, sizeof(in->message), "%s", ck_driver->error_message(ck_store));
		}
	}
	return NULL;
}

/* N threads each make M read-then-CAS increments, retrying on conflict: the
 * counter ends at exactly N*M, and each value was claimed by exactly one
 * increment (its log row holds one value). */
static void test_cas_counter_is_linearizable(void)
{
	const char *pk = cas_pk("cas-counter");
	if (pk == NULL)
		return;
	struct incrementer *in = ck_alloc(CAS_THREADS * sizeof(*in));
	for (int i = 0; i < CAS_THREADS; i++) {
		in[i].id = i;
		in[i].pk = pk;
	}
	ck_run_threads(CAS_THREADS, incrementer_main, in, sizeof(*in), "incrementer");
	unsigned conflicts = 0;
	for (int i = 0; i < CAS_THREADS; i++) {
		CK_CHECK(in[i].rc == 0, "increments of thread %d stopped after %u with %s: %s", i,
		         in[i].done, ck_status_name(in[i].rc), in[i].message);
		conflicts += in[i].conflicts;
	}
	const unsigned long total = (unsigned long)CAS_THREADS * CAS_INCREMENTS;
	const struct aerogram_row *r = ck_row(pk, "counter", 0, "the counter row is missing");
	CK_CHECK(r->n_values == 1, "the counter row holds %zu values: an increment was lost",
	         r->n_values);
	CK_CHECK(ck_count_value(r, ck_fmt("%lu", total)) == 1,
	         "%d threads x %d increments: the counter does not read %lu", CAS_THREADS,
	         CAS_INCREMENTS, total);
	struct aerogram_row_query q = { .pk = pk, .prefix = "inc-" };
	const struct aerogram_row_page *p = &ck_read(&q, 1)->pages[0];
	CK_CHECK(p->n_rows == total, "%zu increment rows, expected %lu", p->n_rows, total);
	size_t doubled = 0;
	for (size_t i = 0; i < p->n_rows; i++)
		doubled += p->rows[i].n_values != 1;
	CK_CHECK(doubled == 0, "%zu counter values were claimed by two increments", doubled);
	printf("(%u conflicts retried) ", conflicts);
	fflush(stdout);
}

int ck_register_conditional(void)
{
	static const struct ck_test tests[] = {
		{ "without the capability: absent or ENOTSUP", test_without_capability },
		{ "condition met applies the whole batch", test_condition_met_applies_all },
		{ "stale token conflicts and applies nothing", test_stale_token_conflicts },
		{ "NULL token: the row must not exist", test_null_token_means_absent },
		{ "invalid item applies nothing", test_invalid_item_applies_nothing },
		{ "condition row need not be written", test_condition_row_not_written },
		{ "watch on the condition row fires", test_watch_on_condition_row_fires },
		{ "compare-and-set counter from 6 threads", test_cas_counter_is_linearizable },
	};
	return ck_add_suite("conditional", tests, sizeof(tests) / sizeof(tests[0]));
}
