/* test_sqlite_driver.c - unit tests of the SQLite driver through its ABI:
 * configuration, causality, ranges, blobs inline and in files, watches in
 * one process and across processes, schema versions, busy mapping, and the
 * query plans of its statements.
 *
 * Usage: test-sqlite-driver PATH/TO/aerogram_sqlite.so
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <sqlite3.h>

#include <aerogram/driver.h>

#include "drivers/sqlite/sqlite_sql.h"
#include "sdk/loader/ag_loader.h"
#include "tests/lib/agt_files.h"
#include "tests/lib/cu_main.h"

static const char *driver_path;
static char tmpdir[256];
static int db_counter;
/* The driver's last "closed ...: N write calls in M commits" line. */
static char closed_line[512];

/* A fresh database path in the temporary directory. */
static void new_db(char *buf, size_t len)
{
	snprintf(buf, len, "%s/db%d", tmpdir, ++db_counter);
}

static struct ag_driver *load(const char *db, const char *k2, const char *v2, char *err,
                              size_t errlen)
{
	/* a short poll interval, unless the test sets its own */
	struct aerogram_config_entry cfg[3] = { { "path", db } };
	size_t n = 1;
	if (k2)
		cfg[n++] = (struct aerogram_config_entry){ k2, v2 };
	if (!k2 || strcmp(k2, "poll_interval_ms") != 0)
		cfg[n++] = (struct aerogram_config_entry){ "poll_interval_ms", "20" };
	struct ag_driver *drv = NULL;
	char local[512];
	if (err == NULL) {
		err = local;
		errlen = sizeof(local);
	}
	if (ag_driver_load(driver_path, NULL, cfg, n, &drv, err, errlen) != 0) {
		if (err == local)
			fprintf(stderr, "load: %s\n", err);
		return NULL;
	}
	return drv;
}

/* A new database in db, opened with that key (or none); a fatal CUnit
 * failure when it does not open. */
static struct ag_driver *open_new(char *db, size_t len, const char *k2, const char *v2)
{
	new_db(db, len);
	struct ag_driver *drv = load(db, k2, v2, NULL, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(drv);
	return drv;
}

#define D(drv) (ag_driver_store(drv)->driver)
#define S(drv) (ag_driver_store(drv)->store)

static int put(struct ag_driver *drv, const char *pk, const char *sk, const char *token,
               const char *value)
{
	struct aerogram_row_write w = { pk, sk, token, (const uint8_t *)value,
	                                value ? strlen(value) : 0, value == NULL };
	return D(drv)->row_insert(S(drv), &w, 1);
}

/* Reads one row; returns the number of values, copies the token. */
static int get(struct ag_driver *drv, const char *pk, const char *sk, uint32_t flags, char *token,
               char vals[][64])
{
	struct aerogram_row_query q = { .pk = pk, .sk = sk, .flags = flags };
	struct aerogram_row_result *r;
	if (D(drv)->row_read(S(drv), &q, 1, &r) != 0)
		return -1;
	int n = 0;
	if (r->pages[0].n_rows == 1) {
		const struct aerogram_row *row = &r->pages[0].rows[0];
		if (token)
			snprintf(token, 64, "%s", row->token);
		n = (int)row->n_values;
		for (int i = 0; vals && i < n && i < 8; i++) {
			if (row->values[i].tombstone)
				snprintf(vals[i], 64, "<tomb>");
			else
				snprintf(vals[i], 64, "%.*s", (int)row->values[i].len,
				         (const char *)row->values[i].data);
		}
	}
	D(drv)->row_result_free(S(drv), r);
	return n;
}

static void test_config(void)
{
	char db[300], err[512];
	new_db(db, sizeof(db));
	struct aerogram_config_entry none[1] = { { "synchronous", "full" } };
	struct ag_driver *drv = NULL;
	CU_ASSERT(ag_driver_load(driver_path, NULL, none, 1, &drv, err, sizeof(err)) != 0);
	CU_ASSERT(strstr(err, "path") != NULL);
	CU_ASSERT(load(db, "synchronous", "sometimes", err, sizeof(err)) == NULL);
	CU_ASSERT(strstr(err, "synchronous") != NULL);
	CU_ASSERT(load(db, "colour", "blue", err, sizeof(err)) == NULL);
	CU_ASSERT(strstr(err, "colour") != NULL);
	CU_ASSERT(load(db, "busy_timeout_ms", "-5", err, sizeof(err)) == NULL);
	char nodir[400];
	snprintf(nodir, sizeof(nodir), "%s/no-such-dir/db", tmpdir);
	CU_ASSERT(load(nodir, NULL, NULL, err, sizeof(err)) == NULL);
	CU_ASSERT(strstr(err, "no-such-dir") != NULL && strstr(err, "does not exist") != NULL);
	drv = load(db, "synchronous", "normal", NULL, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(drv);
	ag_driver_unload(drv);
}

static void test_causality(void)
{
	char db[300], tok[64], tok2[64], vals[8][64];
	struct ag_driver *drv = open_new(db, sizeof(db), NULL, NULL);
	CU_ASSERT(get(drv, "p", "a", 0, tok, vals) == 0);
	CU_ASSERT(put(drv, "p", "a", NULL, "one") == 0);
	CU_ASSERT(get(drv, "p", "a", 0, tok, vals) == 1);
	CU_ASSERT_STRING_EQUAL(vals[0], "one");
	/* No token: a sibling. */
	CU_ASSERT(put(drv, "p", "a", NULL, "two") == 0);
	CU_ASSERT(get(drv, "p", "a", 0, tok2, vals) == 2);
	CU_ASSERT(strcmp(tok, tok2) != 0);
	/* The old token supersedes only "one". */
	CU_ASSERT(put(drv, "p", "a", tok, "three") == 0);
	CU_ASSERT(get(drv, "p", "a", 0, tok, vals) == 2);
	CU_ASSERT_STRING_EQUAL(vals[0], "two");
	CU_ASSERT_STRING_EQUAL(vals[1], "three");
	/* The current token supersedes both. */
	CU_ASSERT(put(drv, "p", "a", tok, "four") == 0);
	CU_ASSERT(get(drv, "p", "a", 0, tok, vals) == 1);
	CU_ASSERT_STRING_EQUAL(vals[0], "four");
	/* Identical concurrent values are reported once. */
	CU_ASSERT(put(drv, "p", "a", NULL, "four") == 0);
	CU_ASSERT(get(drv, "p", "a", 0, tok, vals) == 1);
	/* Two writers with the same token: two siblings. */
	CU_ASSERT(put(drv, "p", "a", tok, "x") == 0);
	CU_ASSERT(put(drv, "p", "a", tok, "y") == 0);
	CU_ASSERT(get(drv, "p", "a", 0, tok, vals) == 2);
	/* A tombstone with the token hides the row unless asked. */
	CU_ASSERT(put(drv, "p", "a", tok, NULL) == 0);
	CU_ASSERT(get(drv, "p", "a", 0, tok, vals) == 0);
	CU_ASSERT(get(drv, "p", "a", AEROGRAM_QUERY_TOMBSTONES, tok, vals) == 1);
	CU_ASSERT_STRING_EQUAL(vals[0], "<tomb>");
	/* An empty value is a value. */
	CU_ASSERT(put(drv, "p", "e", NULL, "") == 0);
	CU_ASSERT(get(drv, "p", "e", 0, tok, vals) == 1);
	/* Bad tokens and bad keys are refused and change nothing. */
	CU_ASSERT(put(drv, "p", "a", "not a token", "z") == AEROGRAM_EINVAL);
	CU_ASSERT(strlen(D(drv)->error_message(S(drv))) > 0);
	CU_ASSERT(put(drv, NULL, "a", NULL, "z") == AEROGRAM_EINVAL);
	CU_ASSERT(put(drv, "p", "\xff", NULL, "z") == AEROGRAM_EINVAL);
	CU_ASSERT(get(drv, "p", "a", AEROGRAM_QUERY_TOMBSTONES, tok, vals) == 1);
	ag_driver_unload(drv);

	/* Everything survives a reopen. */
	drv = load(db, NULL, NULL, NULL, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(drv);
	CU_ASSERT(get(drv, "p", "e", 0, tok, vals) == 1);
	CU_ASSERT(get(drv, "p", "a", AEROGRAM_QUERY_TOMBSTONES, tok, vals) == 1);
	ag_driver_unload(drv);
}

/* Reads a range and writes the keys as "k1,k2,..|next". */
static int range(struct ag_driver *drv, const struct aerogram_row_query *q, char *out, size_t len)
{
	struct aerogram_row_result *r;
	int rc = D(drv)->row_read(S(drv), q, 1, &r);
	if (rc != 0)
		return rc;
	size_t off = 0;
	out[0] = '\0';
	const struct aerogram_row_page *p = &r->pages[0];
	for (size_t i = 0; i < p->n_rows; i++)
		off += (size_t)snprintf(out + off, len - off, "%s%s", i ? "," : "", p->rows[i].sk);
	if (p->more)
		snprintf(out + off, len - off, "|%s", p->next_start);
	D(drv)->row_result_free(S(drv), r);
	return 0;
}

static void test_ranges(void)
{
	char db[300], out[512];
	struct ag_driver *drv = open_new(db, sizeof(db), NULL, NULL);
	const char *keys[] = { "a", "b1", "b2", "b3", "c", "d" };
	for (size_t i = 0; i < 6; i++)
		CU_ASSERT(put(drv, "r", keys[i], NULL, "v") == 0);
	CU_ASSERT(put(drv, "other", "b1", NULL, "v") == 0);
	struct aerogram_row_query q = { .pk = "r" };
	CU_ASSERT(range(drv, &q, out, sizeof(out)) == 0);
	CU_ASSERT_STRING_EQUAL(out, "a,b1,b2,b3,c,d");
	q.prefix = "b";
	CU_ASSERT(range(drv, &q, out, sizeof(out)) == 0);
	CU_ASSERT_STRING_EQUAL(out, "b1,b2,b3");
	q.limit = 2;
	CU_ASSERT(range(drv, &q, out, sizeof(out)) == 0);
	CU_ASSERT_STRING_EQUAL(out, "b1,b2|b3");
	q.start = "b3";
	CU_ASSERT(range(drv, &q, out, sizeof(out)) == 0);
	CU_ASSERT_STRING_EQUAL(out, "b3");
	q.start = "c";
	CU_ASSERT(range(drv, &q, out, sizeof(out)) == AEROGRAM_EINVAL);
	q = (struct aerogram_row_query){ .pk = "r", .start = "b2", .end = "d" };
	CU_ASSERT(range(drv, &q, out, sizeof(out)) == 0);
	CU_ASSERT_STRING_EQUAL(out, "b2,b3,c");
	q.flags = AEROGRAM_QUERY_REVERSE;
	q.start = "c";
	q.end = "b1";
	CU_ASSERT(range(drv, &q, out, sizeof(out)) == 0);
	CU_ASSERT_STRING_EQUAL(out, "c,b3,b2");
	q = (struct aerogram_row_query){ .pk = "r", .prefix = "b", .flags = AEROGRAM_QUERY_REVERSE, .limit = 2 };
	CU_ASSERT(range(drv, &q, out, sizeof(out)) == 0);
	CU_ASSERT_STRING_EQUAL(out, "b3,b2|b1");
	q = (struct aerogram_row_query){ .pk = "r", .flags = AEROGRAM_QUERY_REVERSE };
	CU_ASSERT(range(drv, &q, out, sizeof(out)) == 0);
	CU_ASSERT_STRING_EQUAL(out, "d,c,b3,b2,b1,a");
	/* A single-item query refuses range parameters. */
	q = (struct aerogram_row_query){ .pk = "r", .sk = "a", .limit = 3 };
	CU_ASSERT(range(drv, &q, out, sizeof(out)) == AEROGRAM_EINVAL);

	/* Delete a range: tombstones hide the rows, the count says how many. */
	uint64_t deleted = 0;
	q = (struct aerogram_row_query){ .pk = "r", .prefix = "b" };
	CU_ASSERT(D(drv)->row_delete(S(drv), &q, 1, &deleted) == 0);
	CU_ASSERT(deleted == 3);
	CU_ASSERT(D(drv)->row_delete(S(drv), &q, 1, &deleted) == 0);
	CU_ASSERT(deleted == 0);
	q = (struct aerogram_row_query){ .pk = "r" };
	CU_ASSERT(range(drv, &q, out, sizeof(out)) == 0);
	CU_ASSERT_STRING_EQUAL(out, "a,c,d");
	q.flags = AEROGRAM_QUERY_TOMBSTONES;
	CU_ASSERT(range(drv, &q, out, sizeof(out)) == 0);
	CU_ASSERT_STRING_EQUAL(out, "a,b1,b2,b3,c,d");
	/* Conflicts only. */
	CU_ASSERT(put(drv, "r", "c", NULL, "w") == 0);
	q.flags = AEROGRAM_QUERY_CONFLICTS_ONLY;
	CU_ASSERT(range(drv, &q, out, sizeof(out)) == 0);
	CU_ASSERT_STRING_EQUAL(out, "c");
	q = (struct aerogram_row_query){ .pk = "other" };
	CU_ASSERT(range(drv, &q, out, sizeof(out)) == 0);
	CU_ASSERT_STRING_EQUAL(out, "b1");
	ag_driver_unload(drv);
}

static int count_files(const char *dir)
{
	int n = 0;
	DIR *d = opendir(dir);
	if (d == NULL)
		return 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char sub[600];
		snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
		struct stat st;
		if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode))
			n += count_files(sub);
		else
			n++;
	}
	closedir(d);
	return n;
}

static void test_blobs(void)
{
	char db[300], blobdir[320];
	struct ag_driver *drv = open_new(db, sizeof(db), "blob_inline_max", "100");
	snprintf(blobdir, sizeof(blobdir), "%s.blobs", db);
	const struct aerogram_driver *d = D(drv);
	uint8_t small[50], big[5000];
	for (size_t i = 0; i < sizeof(small); i++)
		small[i] = (uint8_t)i;
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	struct aerogram_meta meta[2] = { { "content-type", "message/rfc822" }, { "x", "" } };
	CU_ASSERT(d->blob_put(S(drv), "m/small", small, sizeof(small), meta, 2) == 0);
	CU_ASSERT(d->blob_put(S(drv), "m/big", big, sizeof(big), NULL, 0) == 0);
	CU_ASSERT(count_files(blobdir) == 1);
	struct aerogram_meta bad = { "Upper", "v" };
	CU_ASSERT(d->blob_put(S(drv), "m/bad", small, 1, &bad, 1) == AEROGRAM_EINVAL);

	struct aerogram_blob_request rq[4] = {
		{ "m/small", 0, 0 }, { "m/big", 4990, 100 }, { "m/none", 0, 0 }, { "m/big", 10, 5 }
	};
	struct aerogram_blob_result *r;
	CU_ASSERT_FATAL(d->blob_get(S(drv), rq, 4, &r) == 0);
	CU_ASSERT(r->n_blobs == 4);
	CU_ASSERT(r->blobs[0].status == 0 && r->blobs[0].len == 50 &&
	          memcmp(r->blobs[0].data, small, 50) == 0);
	CU_ASSERT(r->blobs[0].n_meta == 2 && strcmp(r->blobs[0].meta[0].name, "content-type") == 0 &&
	          strcmp(r->blobs[0].meta[0].value, "message/rfc822") == 0);
	CU_ASSERT(r->blobs[1].status == 0 && r->blobs[1].len == 10 && r->blobs[1].total_size == 5000 &&
	          memcmp(r->blobs[1].data, big + 4990, 10) == 0);
	CU_ASSERT(r->blobs[2].status == AEROGRAM_ENOTFOUND);
	CU_ASSERT(r->blobs[3].status == 0 && r->blobs[3].len == 5 &&
	          memcmp(r->blobs[3].data, big + 10, 5) == 0);
	d->blob_result_free(S(drv), r);

	/* Copy of a file blob is a second file; deleting the source keeps it. */
	CU_ASSERT(d->blob_copy(S(drv), "m/big", "n/big") == 0);
	CU_ASSERT(d->blob_copy(S(drv), "m/none", "n/x") == AEROGRAM_ENOTFOUND);
	CU_ASSERT(count_files(blobdir) == 2);
	const char *del[2] = { "m/big", "m/none" };
	CU_ASSERT(d->blob_delete(S(drv), del, 2) == 0);
	CU_ASSERT(count_files(blobdir) == 1);
	struct aerogram_blob_request rq2 = { "n/big", 0, 0 };
	CU_ASSERT_FATAL(d->blob_get(S(drv), &rq2, 1, &r) == 0);
	CU_ASSERT(r->blobs[0].status == 0 && r->blobs[0].len == 5000 &&
	          memcmp(r->blobs[0].data, big, 5000) == 0);
	d->blob_result_free(S(drv), r);
	/* Replacing a file blob by a small one removes the file. */
	CU_ASSERT(d->blob_put(S(drv), "n/big", small, 10, NULL, 0) == 0);
	CU_ASSERT(count_files(blobdir) == 0);

	/* Listing with pages. */
	char key[32];
	for (int i = 0; i < 25; i++) {
		snprintf(key, sizeof(key), "l/%03d", i);
		CU_ASSERT(d->blob_put(S(drv), key, small, 1, NULL, 0) == 0);
	}
	const char *cont = NULL;
	char contbuf[64];
	int total = 0, pages = 0;
	for (;;) {
		struct aerogram_blob_list *l;
		CU_ASSERT_FATAL(d->blob_list(S(drv), "l/", cont, 10, &l) == 0);
		for (size_t i = 0; i < l->n_keys; i++) {
			snprintf(key, sizeof(key), "l/%03d", total);
			CU_ASSERT_STRING_EQUAL(l->keys[i], key);
			CU_ASSERT(l->sizes[i] == 1);
			total++;
		}
		pages++;
		int more = l->more;
		if (more)
			snprintf(contbuf, sizeof(contbuf), "%s", l->next_token);
		d->blob_list_free(S(drv), l);
		if (!more)
			break;
		cont = contbuf;
	}
	CU_ASSERT(total == 25);
	CU_ASSERT(pages == 3);
	ag_driver_unload(drv);
}

/* Files no row names (a crash between file and commit) are removed at the
 * next open once old enough; named files stay. Rows of old tombstones are
 * forgotten; rows with a live value stay. */
static void test_orphan_sweep(void)
{
	char db[300], blobdir[320], orphan[400], tmp[400], tok[64];
	new_db(db, sizeof(db));
	snprintf(blobdir, sizeof(blobdir), "%s.blobs", db);
	struct aerogram_config_entry cfg[4] = { { "path", db }, { "blob_inline_max", "10" },
		                                { "blob_orphan_age_s", "1" }, { "tombstone_ttl_s", "1" } };
	struct ag_driver *drv;
	char err[512];
	CU_ASSERT_FATAL(ag_driver_load(driver_path, NULL, cfg, 4, &drv, err, sizeof(err)) == 0);
	static const uint8_t body[100] = { 1, 2, 3 };
	CU_ASSERT(D(drv)->blob_put(S(drv), "kept", body, sizeof(body), NULL, 0) == 0);
	CU_ASSERT(put(drv, "t", "gone", NULL, "v") == 0);
	CU_ASSERT(get(drv, "t", "gone", 0, tok, NULL) == 1);
	CU_ASSERT(put(drv, "t", "gone", tok, NULL) == 0);
	CU_ASSERT(put(drv, "t", "live", NULL, "v") == 0);
	CU_ASSERT(put(drv, "t", "mixed", NULL, "v") == 0);
	CU_ASSERT(put(drv, "t", "mixed", NULL, NULL) == 0);
	CU_ASSERT(get(drv, "t", "gone", AEROGRAM_QUERY_TOMBSTONES, tok, NULL) == 1);
	/* The newest write of all is a delete: that row holds the clock and is
	 * kept, so that tokens never go back. */
	char last_tok[64];
	CU_ASSERT(put(drv, "t", "last", NULL, "v") == 0);
	CU_ASSERT(get(drv, "t", "last", 0, tok, NULL) == 1);
	CU_ASSERT(put(drv, "t", "last", tok, NULL) == 0);
	CU_ASSERT(get(drv, "t", "last", AEROGRAM_QUERY_TOMBSTONES, last_tok, NULL) == 1);
	ag_driver_unload(drv);
	CU_ASSERT(count_files(blobdir) == 1);
	snprintf(orphan, sizeof(orphan), "%s/ab", blobdir);
	mkdir(orphan, 0750);
	snprintf(orphan, sizeof(orphan), "%s/ab/ab0123456789abcdef0123456789abcd", blobdir);
	snprintf(tmp, sizeof(tmp), "%s/ab/.tmp-ab0123456789abcdef0123456789abce", blobdir);
	FILE *f = fopen(orphan, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fclose(f);
	f = fopen(tmp, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fclose(f);
	usleep(2100000); /* older than blob_orphan_age_s, at a 1 s clock granularity */
	CU_ASSERT_FATAL(ag_driver_load(driver_path, NULL, cfg, 4, &drv, err, sizeof(err)) == 0);
	for (int i = 0; i < 100 && (access(orphan, F_OK) == 0 || access(tmp, F_OK) == 0 ||
	                            get(drv, "t", "gone", AEROGRAM_QUERY_TOMBSTONES, tok, NULL) != 0);
	     i++)
		usleep(50000);
	CU_ASSERT(access(orphan, F_OK) != 0);
	CU_ASSERT(access(tmp, F_OK) != 0);
	CU_ASSERT(get(drv, "t", "gone", AEROGRAM_QUERY_TOMBSTONES, tok, NULL) == 0);
	CU_ASSERT(get(drv, "t", "live", 0, tok, NULL) == 1);
	CU_ASSERT(get(drv, "t", "mixed", 0, tok, NULL) == 2);
	CU_ASSERT(get(drv, "t", "last", AEROGRAM_QUERY_TOMBSTONES, tok, NULL) == 1);
	CU_ASSERT_STRING_EQUAL(tok, last_tok);
	/* A forgotten row can be written again, with a newer token than any. */
	CU_ASSERT(put(drv, "t", "gone", NULL, "back") == 0);
	CU_ASSERT(get(drv, "t", "gone", 0, tok, NULL) == 1);
	CU_ASSERT(strcmp(tok, last_tok) > 0);
	struct aerogram_blob_request rq = { "kept", 0, 0 };
	struct aerogram_blob_result *r;
	CU_ASSERT_FATAL(D(drv)->blob_get(S(drv), &rq, 1, &r) == 0);
	CU_ASSERT(r->blobs[0].status == 0 && r->blobs[0].len == sizeof(body));
	D(drv)->blob_result_free(S(drv), r);
	ag_driver_unload(drv);
}

/* ---- watches ---- */

struct seen {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int calls;
	int status;
	char value[64];
	char token[64];    /* the token of the row fired */
};

static void seen_init(struct seen *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cond, NULL);
}

static void on_watch(void *arg, int status, const struct aerogram_row *row, const char *message)
{
	(void)message;
	struct seen *s = arg;
	pthread_mutex_lock(&s->mu);
	s->calls++;
	s->status = status;
	if (row && row->n_values)
		snprintf(s->value, sizeof(s->value), "%.*s", (int)row->values[row->n_values - 1].len,
		         (const char *)row->values[row->n_values - 1].data);
	snprintf(s->token, sizeof(s->token), "%s", row && row->token ? row->token : "");
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
}

/* Waits up to ms for a callback; returns the number of calls. */
static int seen_wait(struct seen *s, int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->mu);
	while (s->calls == 0 && pthread_cond_timedwait(&s->cond, &s->mu, &ts) == 0)
		;
	int n = s->calls;
	pthread_mutex_unlock(&s->mu);
	return n;
}

static void test_watch_local(void)
{
	char db[300], tok[64];
	struct ag_driver *drv = open_new(db, sizeof(db), NULL, NULL);
	const struct aerogram_driver *d = D(drv);
	CU_ASSERT(put(drv, "w", "row", NULL, "v1") == 0);
	CU_ASSERT(get(drv, "w", "row", 0, tok, NULL) == 1);

	/* The current token: waits, then sees the write. */
	struct seen s1;
	seen_init(&s1);
	struct aerogram_watch *w1;
	CU_ASSERT_FATAL(d->row_watch(S(drv), "w", "row", tok, 10000, on_watch, &s1, &w1) == 0);
	usleep(100000);
	CU_ASSERT(s1.calls == 0);
	CU_ASSERT(put(drv, "w", "row", tok, "v2") == 0);
	CU_ASSERT(seen_wait(&s1, 5000) == 1);
	CU_ASSERT(s1.status == AEROGRAM_OK);
	CU_ASSERT_STRING_EQUAL(s1.value, "v2");
	d->row_watch_release(S(drv), w1);

	/* The old token: fires at once. No token on an existing row: at once. */
	struct seen s2, s3, s4, s5;
	seen_init(&s2);
	seen_init(&s3);
	seen_init(&s4);
	seen_init(&s5);
	struct aerogram_watch *w2, *w3, *w4, *w5;
	CU_ASSERT_FATAL(d->row_watch(S(drv), "w", "row", tok, 10000, on_watch, &s2, &w2) == 0);
	CU_ASSERT_FATAL(d->row_watch(S(drv), "w", "row", NULL, 10000, on_watch, &s3, &w3) == 0);
	/* Timeout on a missing row. */
	CU_ASSERT_FATAL(d->row_watch(S(drv), "w", "missing", NULL, 150, on_watch, &s4, &w4) == 0);
	/* Released before it fires: never called. */
	CU_ASSERT_FATAL(d->row_watch(S(drv), "w", "never", NULL, 100, on_watch, &s5, &w5) == 0);
	d->row_watch_release(S(drv), w5);
	CU_ASSERT(seen_wait(&s2, 5000) == 1 && s2.status == AEROGRAM_OK);
	CU_ASSERT(seen_wait(&s3, 5000) == 1 && s3.status == AEROGRAM_OK);
	CU_ASSERT(seen_wait(&s4, 5000) == 1 && s4.status == AEROGRAM_ETIMEDOUT);
	usleep(200000);
	CU_ASSERT(s5.calls == 0);
	CU_ASSERT(s2.calls == 1 && s3.calls == 1 && s4.calls == 1);
	d->row_watch_release(S(drv), w2);
	d->row_watch_release(S(drv), w3);
	d->row_watch_release(S(drv), w4);
	CU_ASSERT(d->row_watch(S(drv), "w", "row", "bogus", 100, on_watch, &s5, &w5) == AEROGRAM_EINVAL);

	/* Many watches, one thread: all fire on their own row's write. */
	enum { N = 200 };
	static struct seen many[N];
	struct aerogram_watch *ws[N];
	char sk[32];
	for (int i = 0; i < N; i++) {
		seen_init(&many[i]);
		snprintf(sk, sizeof(sk), "m%03d", i);
		CU_ASSERT_FATAL(d->row_watch(S(drv), "w", sk, NULL, 20000, on_watch, &many[i], &ws[i]) == 0);
	}
	for (int i = 0; i < N; i += 2) {
		snprintf(sk, sizeof(sk), "m%03d", i);
		CU_ASSERT(put(drv, "w", sk, NULL, "x") == 0);
	}
	for (int i = 0; i < N; i += 2)
		CU_ASSERT(seen_wait(&many[i], 5000) == 1);
	for (int i = 1; i < N; i += 2)
		CU_ASSERT(many[i].calls == 0);
	for (int i = 0; i < N; i++)
		d->row_watch_release(S(drv), ws[i]);

	/* A batch of many rows in one commit (past the thread's row-matching
	 * limit) still fires the watch on one of them, and only that one. */
	struct seen sb, sq;
	seen_init(&sb);
	seen_init(&sq);
	struct aerogram_watch *wb, *wq;
	CU_ASSERT_FATAL(d->row_watch(S(drv), "bulk", "k0150", NULL, 20000, on_watch, &sb, &wb) == 0);
	CU_ASSERT_FATAL(d->row_watch(S(drv), "bulk", "quiet", NULL, 20000, on_watch, &sq, &wq) == 0);
	usleep(50000);
	enum { BULK = 300 };
	static char bulk_sk[BULK][16];
	struct aerogram_row_write bw[BULK];
	for (int i = 0; i < BULK; i++) {
		snprintf(bulk_sk[i], sizeof(bulk_sk[i]), "k%04d", i);
		bw[i] = (struct aerogram_row_write){ "bulk", bulk_sk[i], NULL, (const uint8_t *)"b", 1, 0 };
	}
	CU_ASSERT(d->row_insert(S(drv), bw, BULK) == 0);
	CU_ASSERT(seen_wait(&sb, 5000) == 1 && sb.status == AEROGRAM_OK);
	usleep(100000);
	CU_ASSERT(sq.calls == 0);
	d->row_watch_release(S(drv), wb);
	d->row_watch_release(S(drv), wq);
	ag_driver_unload(drv);
}

/* A thread that writes one row over and over until told to stop. */
struct busy_writer {
	struct ag_driver *drv;
	const char *pk, *sk;
	atomic_int stop;
	int failed;
	pthread_t thread;
};

static void *busy_writer_main(void *arg)
{
	struct busy_writer *bw = arg;
	char v[32], tok[64];
	for (unsigned long i = 0; !atomic_load(&bw->stop); i++) {
		snprintf(v, sizeof(v), "%lu", i);
		int n = get(bw->drv, bw->pk, bw->sk, 0, tok, NULL);
		if (n < 0 || put(bw->drv, bw->pk, bw->sk, n > 0 ? tok : NULL, v) != 0)
			bw->failed = 1;
	}
	return NULL;
}

static void busy_writer_start(struct busy_writer *bw, struct ag_driver *drv, const char *pk,
                              const char *sk)
{
	bw->drv = drv;
	bw->pk = pk;
	bw->sk = sk;
	atomic_store(&bw->stop, 0);
	bw->failed = 0;
	CU_ASSERT_FATAL(pthread_create(&bw->thread, NULL, busy_writer_main, bw) == 0);
}

static int busy_writer_stop(struct busy_writer *bw)
{
	atomic_store(&bw->stop, 1);
	pthread_join(bw->thread, NULL);
	return bw->failed;
}

/* The voluntary context switches of this process's watch thread so far
 * (the driver names it), or -1 when there is none. */
static long watch_thread_switches(void)
{
	DIR *d = opendir("/proc/self/task");
	if (d == NULL)
		return -1;
	long n = -1;
	struct dirent *e;
	while ((e = readdir(d)) != NULL && n < 0) {
		char path[300], line[256];
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (f == NULL)
			continue;
		int ours = fgets(line, sizeof(line), f) && strncmp(line, "ag-sq-watch", 11) == 0;
		fclose(f);
		if (!ours)
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/status", e->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "voluntary_ctxt_switches: %ld", &n) == 1)
				break;
		fclose(f);
	}
	closedir(d);
	return n;
}

/* Commits of this process are matched with the watches in memory by the
 * committing thread: a watch armed with the token just read, while another
 * thread keeps writing the row, always fires with a newer token; commits
 * that no watch waits for do not wake the watch thread; and a write of
 * another process in the middle of this one's commits is still seen. */
static void test_watch_local_commits(void)
{
	char db[300], tok[64];
	struct ag_driver *drv = open_new(db, sizeof(db), "poll_interval_ms", "60000");
	const struct aerogram_driver *d = D(drv);
	CU_ASSERT(put(drv, "lc", "x", NULL, "start") == 0);

	struct busy_writer bw;
	busy_writer_start(&bw, drv, "lc", "x");
	int fired = 0, newer = 0;
	for (int i = 0; i < 100; i++) {
		struct seen s;
		seen_init(&s);
		struct aerogram_watch *w;
		if (get(drv, "lc", "x", 0, tok, NULL) < 1 ||
		    d->row_watch(S(drv), "lc", "x", tok, 20000, on_watch, &s, &w) != 0)
			break;
		fired += seen_wait(&s, 20000) == 1 && s.status == AEROGRAM_OK;
		newer += strcmp(s.token, tok) > 0;
		d->row_watch_release(S(drv), w);
	}
	CU_ASSERT(busy_writer_stop(&bw) == 0);
	CU_ASSERT_EQUAL(fired, 100);
	CU_ASSERT_EQUAL(newer, 100);

	/* One watch pending on a row nobody writes; 100 commits elsewhere. */
	struct seen sq;
	seen_init(&sq);
	struct aerogram_watch *wq;
	CU_ASSERT_FATAL(d->row_watch(S(drv), "lc", "quiet", NULL, 60000, on_watch, &sq, &wq) == 0);
	/* Let the thread finish its first poll of the new watch: wait until
	 * it sleeps (its count stays the same for 200 ms). */
	long before = watch_thread_switches();
	for (int i = 0; i < 50; i++) {
		usleep(200000);
		long now = watch_thread_switches();
		if (now == before)
			break;
		before = now;
	}
	for (int i = 0; i < 100; i++) {
		char sk[32];
		snprintf(sk, sizeof(sk), "other-%03d", i);
		CU_ASSERT(put(drv, "lc", sk, NULL, "v") == 0);
	}
	long after = watch_thread_switches();
	CU_ASSERT(before >= 0);
	CU_ASSERT(after - before < 20); /* one per commit would be 100 */
	CU_ASSERT(sq.calls == 0);
	CU_ASSERT(put(drv, "lc", "quiet", NULL, "now") == 0);
	CU_ASSERT(seen_wait(&sq, 10000) == 1 && strcmp(sq.value, "now") == 0);
	d->row_watch_release(S(drv), wq);

	/* A row written while nobody watches it: a watch armed with the token
	 * before that write fires at once. */
	char old[64];
	CU_ASSERT(get(drv, "lc", "quiet", 0, old, NULL) == 1);
	CU_ASSERT(put(drv, "lc", "quiet", old, "later") == 0);
	seen_init(&sq);
	CU_ASSERT_FATAL(d->row_watch(S(drv), "lc", "quiet", old, 60000, on_watch, &sq, &wq) == 0);
	CU_ASSERT(seen_wait(&sq, 10000) == 1 && strcmp(sq.value, "later") == 0);
	d->row_watch_release(S(drv), wq);
	ag_driver_unload(drv);

	/* Another process writes while this one commits all the time: the
	 * watch thread's poll (20 ms here) finds the gap the write left. */
	drv = load(db, NULL, NULL, NULL, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(drv);
	d = D(drv);
	struct seen sr;
	seen_init(&sr);
	struct aerogram_watch *wr;
	CU_ASSERT_FATAL(d->row_watch(S(drv), "lc", "remote", NULL, 20000, on_watch, &sr, &wr) == 0);
	busy_writer_start(&bw, drv, "lc", "x");
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		execl("/proc/self/exe", "test-sqlite-driver", driver_path, "--put", db, "lc", "remote",
		      "hello", (char *)NULL);
		_exit(3);
	}
	int status = 0;
	CU_ASSERT(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CU_ASSERT(seen_wait(&sr, 20000) == 1);
	CU_ASSERT(sr.status == AEROGRAM_OK);
	CU_ASSERT_STRING_EQUAL(sr.value, "hello");
	CU_ASSERT(busy_writer_stop(&bw) == 0);
	d->row_watch_release(S(drv), wr);
	ag_driver_unload(drv);
}

enum { WRITES = 100 };

/* The body of a writer process of test_multi_process. */
static int writer_main(const char *db, int c)
{
	struct ag_driver *cd = load(db, NULL, NULL, NULL, 0);
	if (cd == NULL)
		return 2;
	char sk[32], t[64];
	int bad = 0;
	for (int i = 0; i < WRITES; i++) {
		snprintf(sk, sizeof(sk), "c%d-%03d", c, i);
		bad |= put(cd, "mp", sk, NULL, "v") != 0;
		/* Both update one shared row with read-modify-write. */
		int n = get(cd, "mp", "shared", 0, t, NULL);
		bad |= put(cd, "mp", "shared", n > 0 ? t : NULL, sk) != 0;
	}
	if (c == 1)
		bad |= put(cd, "mp", "done-1", NULL, "yes") != 0;
	ag_driver_unload(cd);
	return bad ? 1 : 0;
}

/* Two child processes write to one file while this one watches. */
static void test_multi_process(void)
{
	char db[300], out[64], tok[64];
	struct ag_driver *drv = open_new(db, sizeof(db), NULL, NULL);
	const struct aerogram_driver *d = D(drv);
	struct seen s;
	seen_init(&s);
	struct aerogram_watch *w;
	CU_ASSERT_FATAL(d->row_watch(S(drv), "mp", "done-1", NULL, 20000, on_watch, &s, &w) == 0);

	pid_t pids[2];
	for (int c = 0; c < 2; c++) {
		fflush(NULL);
		pids[c] = fork();
		if (pids[c] == 0) {
			/* A fresh process image: nothing of this one's SQLite state. */
			char cs[8];
			snprintf(cs, sizeof(cs), "%d", c);
			execl("/proc/self/exe", "test-sqlite-driver", driver_path, "--writer", db, cs,
			      (char *)NULL);
			_exit(3);
		}
	}
	for (int c = 0; c < 2; c++) {
		int status = 0;
		CU_ASSERT(waitpid(pids[c], &status, 0) == pids[c]);
		CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	CU_ASSERT(seen_wait(&s, 5000) == 1);
	CU_ASSERT(s.status == AEROGRAM_OK);
	CU_ASSERT_STRING_EQUAL(s.value, "yes");
	d->row_watch_release(S(drv), w);
	struct aerogram_row_query q = { .pk = "mp", .prefix = "c" };
	struct aerogram_row_result *r;
	CU_ASSERT_FATAL(d->row_read(S(drv), &q, 1, &r) == 0);
	CU_ASSERT(r->pages[0].n_rows == 2 * WRITES);
	d->row_result_free(S(drv), r);
	/* Read-modify-write with tokens never loses: at most a few siblings,
	 * at least one value. */
	int n = get(drv, "mp", "shared", 0, tok, NULL);
	CU_ASSERT(n >= 1 && n <= 2);
	(void)out;
	ag_driver_unload(drv);
}

enum { CAS_PROCESSES = 3, CAS_THREADS = 2, CAS_INCREMENTS = 30 };

struct cas_thread {
	struct ag_driver *drv;
	int bad;
};

/* Read-then-compare-and-set increments of the counter row "cas"/"counter",
 * each also writing "inc-<new value>", retrying on ECONFLICT. */
static void *cas_thread_main(void *arg)
{
	struct cas_thread *ct = arg;
	const struct aerogram_driver *d = D(ct->drv);
	for (int done = 0; done < CAS_INCREMENTS && !ct->bad;) {
		char tok[64] = "", vals[8][64];
		int n = get(ct->drv, "cas", "counter", 0, tok, vals);
		if (n < 0 || n > 1) {
			ct->bad = 1; /* a failed read, or siblings: a lost update */
			break;
		}
		unsigned long v = n == 1 ? strtoul(vals[0], NULL, 10) : 0;
		usleep(500); /* let the other writers read the same value */
		char next[32], sk[32];
		snprintf(next, sizeof(next), "%lu", v + 1);
		snprintf(sk, sizeof(sk), "inc-%06lu", v + 1);
		const char *cond = n == 1 ? tok : NULL;
		struct aerogram_row_write w[2] = {
			{ "cas", sk, NULL, (const uint8_t *)"x", 1, 0 },
			{ "cas", "counter", cond, (const uint8_t *)next, strlen(next), 0 },
		};
		char new_token[AEROGRAM_TOKEN_MAX];
		int rc = d->row_insert_if(S(ct->drv), "cas", "counter", cond, w, 2, new_token,
		                          sizeof(new_token));
		if (rc == 0)
			done++;
		else if (rc != AEROGRAM_ECONFLICT)
			ct->bad = 1;
	}
	return NULL;
}

/* The body of a process of test_cas_processes: CAS_THREADS threads. */
static int cas_main(const char *db)
{
	struct ag_driver *cd = load(db, NULL, NULL, NULL, 0);
	if (cd == NULL)
		return 2;
	struct cas_thread ct[CAS_THREADS];
	pthread_t th[CAS_THREADS];
	for (int i = 0; i < CAS_THREADS; i++) {
		ct[i] = (struct cas_thread){ cd, 0 };
		if (pthread_create(&th[i], NULL, cas_thread_main, &ct[i]) != 0)
			return 3;
	}
	int bad = 0;
	for (int i = 0; i < CAS_THREADS; i++) {
		pthread_join(th[i], NULL);
		bad |= ct[i].bad;
	}
	ag_driver_unload(cd);
	return bad ? 1 : 0;
}

/* row_insert_if is a compare-and-set across processes and threads: every
 * increment lands exactly once, none is lost. */
static void test_cas_processes(void)
{
	char db[300];
	struct ag_driver *drv = open_new(db, sizeof(db), NULL, NULL);
	CU_ASSERT(D(drv)->capabilities & AEROGRAM_CAP_CONDITIONAL);
	pid_t pids[CAS_PROCESSES];
	for (int c = 0; c < CAS_PROCESSES; c++) {
		fflush(NULL);
		pids[c] = fork();
		if (pids[c] == 0) {
			execl("/proc/self/exe", "test-sqlite-driver", driver_path, "--cas", db,
			      (char *)NULL);
			_exit(3);
		}
	}
	for (int c = 0; c < CAS_PROCESSES; c++) {
		int status = 0;
		CU_ASSERT(waitpid(pids[c], &status, 0) == pids[c]);
		CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	char vals[8][64];
	CU_ASSERT(get(drv, "cas", "counter", 0, NULL, vals) == 1);
	char want[32];
	snprintf(want, sizeof(want), "%d", CAS_PROCESSES * CAS_THREADS * CAS_INCREMENTS);
	CU_ASSERT_STRING_EQUAL(vals[0], want);
	struct aerogram_row_query q = { .pk = "cas", .prefix = "inc-" };
	struct aerogram_row_result *r;
	CU_ASSERT_FATAL(D(drv)->row_read(S(drv), &q, 1, &r) == 0);
	CU_ASSERT_EQUAL(r->pages[0].n_rows, CAS_PROCESSES * CAS_THREADS * CAS_INCREMENTS);
	int doubled = 0;
	for (size_t i = 0; i < r->pages[0].n_rows; i++)
		doubled += r->pages[0].rows[i].n_values != 1;
	CU_ASSERT_EQUAL(doubled, 0);
	D(drv)->row_result_free(S(drv), r);
	ag_driver_unload(drv);
}

/* ---- group commit ---- */

enum { GROUP_CALLS = 5 };

/* One write call of test_group_commit, made from its own thread. */
struct group_call {
	struct ag_driver *drv;
	int kind; /* 0: row_insert, 1: row_insert_if, 2: blob_copy */
	const char *sk, *cond_token;
	int rc;
	char message[512];
	pthread_t thread;
};

static void *group_call_main(void *arg)
{
	struct group_call *gc = arg;
	const struct aerogram_driver *d = D(gc->drv);
	struct aerogram_row_write w[2] = {
		{ "grp", gc->sk, NULL, (const uint8_t *)gc->sk, strlen(gc->sk), 0 },
		{ "grp", "watch", gc->cond_token, (const uint8_t *)gc->sk, strlen(gc->sk), 0 },
	};
	if (gc->kind == 0)
		gc->rc = d->row_insert(S(gc->drv), w, 1);
	else if (gc->kind == 1)
		gc->rc = d->row_insert_if(S(gc->drv), "grp", "watch", gc->cond_token, w, 2, NULL, 0);
	else
		gc->rc = d->blob_copy(S(gc->drv), "grp/no-such-blob", "grp/copy");
	/* the message is read on the calling thread, whichever thread committed */
	snprintf(gc->message, sizeof(gc->message), "%s", gc->rc ? d->error_message(S(gc->drv)) : "");
	return NULL;
}

/* Counts "N write calls in M commits" from the close line. */
static int closed_counts(unsigned long long *calls, unsigned long long *commits)
{
	const char *p = strstr(closed_line, ": ");
	return p && sscanf(p, ": %llu write calls in %llu commits", calls, commits) == 2 ? 0 : -1;
}

/* Writes queued while another writer holds the lock share a commit; a call
 * that fails inside the shared transaction (a refused condition, a missing
 * blob) is rolled back alone, with its own message on its own thread. */
static void test_group_commit(void)
{
	char db[300], tok[64], stale[64], vals[8][64];
	struct ag_driver *drv = open_new(db, sizeof(db), "busy_timeout_ms", "30000");
	CU_ASSERT(put(drv, "grp", "watch", NULL, "w0") == 0);
	CU_ASSERT(get(drv, "grp", "watch", 0, stale, NULL) == 1);
	CU_ASSERT(put(drv, "grp", "watch", stale, "w1") == 0);
	CU_ASSERT(get(drv, "grp", "watch", 0, tok, NULL) == 1);

	/* Another connection holds the write lock: the first call leads and
	 * waits for it, the others queue behind it. */
	sqlite3 *h;
	CU_ASSERT_FATAL(sqlite3_open(db, &h) == SQLITE_OK);
	sqlite3_busy_timeout(h, 10000);
	CU_ASSERT_FATAL(sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
	struct group_call gc[GROUP_CALLS] = {
		{ drv, 0, "a", NULL, -1, "", 0 },
		{ drv, 1, "b-stale", stale, -1, "", 0 },  /* its token is no longer current */
		{ drv, 2, "c-copy", NULL, -1, "", 0 },    /* the source does not exist */
		{ drv, 1, "d-current", tok, -1, "", 0 },  /* the current token: applies */
		{ drv, 0, "e", NULL, -1, "", 0 },
	};
	for (int i = 0; i < GROUP_CALLS; i++)
		CU_ASSERT_FATAL(pthread_create(&gc[i].thread, NULL, group_call_main, &gc[i]) == 0);
	/* generous: every thread has long queued when the lock goes */
	usleep(2000000);
	CU_ASSERT(sqlite3_exec(h, "COMMIT", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(h);
	for (int i = 0; i < GROUP_CALLS; i++)
		pthread_join(gc[i].thread, NULL);

	CU_ASSERT_EQUAL(gc[0].rc, 0);
	CU_ASSERT_EQUAL(gc[1].rc, AEROGRAM_ECONFLICT);
	CU_ASSERT_PTR_NOT_NULL(strstr(gc[1].message, "row_insert_if"));
	CU_ASSERT_EQUAL(gc[2].rc, AEROGRAM_ENOTFOUND);
	CU_ASSERT_PTR_NOT_NULL(strstr(gc[2].message, "grp/no-such-blob"));
	CU_ASSERT_EQUAL(gc[3].rc, 0);
	CU_ASSERT_EQUAL(gc[4].rc, 0);
	CU_ASSERT(get(drv, "grp", "a", 0, NULL, NULL) == 1);
	CU_ASSERT(get(drv, "grp", "e", 0, NULL, NULL) == 1);
	CU_ASSERT(get(drv, "grp", "d-current", 0, NULL, NULL) == 1);
	CU_ASSERT(get(drv, "grp", "b-stale", AEROGRAM_QUERY_TOMBSTONES, NULL, NULL) == 0);
	CU_ASSERT(get(drv, "grp", "watch", 0, NULL, vals) == 1);
	CU_ASSERT_STRING_EQUAL(vals[0], "d-current");
	struct aerogram_blob_request rq = { "grp/copy", 0, 0 };
	struct aerogram_blob_result *br = NULL;
	CU_ASSERT_FATAL(D(drv)->blob_get(S(drv), &rq, 1, &br) == 0);
	CU_ASSERT_EQUAL(br->blobs[0].status, AEROGRAM_ENOTFOUND);
	D(drv)->blob_result_free(S(drv), br);

	closed_line[0] = '\0';
	ag_driver_unload(drv);
	unsigned long long calls = 0, commits = 0;
	CU_ASSERT_FATAL(closed_counts(&calls, &commits) == 0);
	/* 2 writes before, the 5 calls, and the start-up cleanup's: the 5
	 * calls took at most 2 commits (the leader's, then one for all who
	 * queued behind it), each other call one at most */
	CU_ASSERT(calls >= 2 + GROUP_CALLS);
	CU_ASSERT(commits + GROUP_CALLS - 2 <= calls);
	printf("[%s] ", closed_line);
}

/* synchronous=full: a row write syncs the WAL before it returns; blob
 * writes and deletes (of blobs and rows) do not (they are carried to the disk by the next row
 * write's sync, the WAL keeping commit order), so an APPEND's body costs no
 * sync of its own. Counted with the driver's closing line. */
static void test_deferred_blob_syncs(void)
{
	char db[300];
	struct ag_driver *drv = open_new(db, sizeof(db), NULL, NULL);
	static const unsigned char body[] = "Subject: deferred\r\n\r\nbody\r\n";
	char key[32];
	for (int i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), "d/%02d", i);
		CU_ASSERT(D(drv)->blob_put(S(drv), key, body, sizeof(body) - 1, NULL, 0) == 0);
	}
	CU_ASSERT(D(drv)->blob_copy(S(drv), "d/00", "d/copy") == 0);
	const char *del[1] = { "d/01" };
	CU_ASSERT(D(drv)->blob_delete(S(drv), del, 1) == 0);
	struct aerogram_row_query q = { .pk = "d", .sk = "gone" };
	CU_ASSERT(D(drv)->row_delete(S(drv), &q, 1, NULL) == 0);
	closed_line[0] = '\0';
	ag_driver_unload(drv);
	unsigned long long calls = 0, commits = 0, syncs = 0;
	const char *p = strstr(closed_line, ": ");
	CU_ASSERT_FATAL(p != NULL && sscanf(p, ": %llu write calls in %llu commits, %*u checkpoints, %llu WAL syncs", &calls, &commits,
	                                    &syncs) == 3);
	/* the 22 blob calls and the delete synced nothing (the start-up
	 * cleanup's writes may) */
	CU_ASSERT(calls >= 23);
	CU_ASSERT(syncs + 23 <= commits);
	unsigned long long syncs_before = syncs, commits_before = commits;

	/* a row write syncs, whatever came before it; the blobs are all there */
	drv = load(db, NULL, NULL, NULL, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(drv);
	CU_ASSERT(put(drv, "d", "row", NULL, "v") == 0);
	struct aerogram_blob_request rq[2] = { { "d/19", 0, 0 }, { "d/copy", 0, 0 } };
	struct aerogram_blob_result *br = NULL;
	CU_ASSERT_FATAL(D(drv)->blob_get(S(drv), rq, 2, &br) == 0);
	CU_ASSERT_EQUAL(br->blobs[0].status, 0);
	CU_ASSERT_EQUAL(br->blobs[1].status, 0);
	D(drv)->blob_result_free(S(drv), br);
	closed_line[0] = '\0';
	ag_driver_unload(drv);
	p = strstr(closed_line, ": ");
	CU_ASSERT_FATAL(p != NULL && sscanf(p, ": %llu write calls in %llu commits, %*u checkpoints, %llu WAL syncs", &calls, &commits,
	                                    &syncs) == 3);
	CU_ASSERT(syncs >= 1);
	CU_ASSERT(syncs <= commits);
	printf("[blobs: %llu commits, %llu syncs; then a row: %llu commits, %llu syncs] ", commits_before,
	       syncs_before, commits, syncs);

	/* synchronous=normal never syncs on commit */
	new_db(db, sizeof(db));
	drv = load(db, "synchronous", "normal", NULL, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(drv);
	CU_ASSERT(put(drv, "d", "row", NULL, "v") == 0);
	closed_line[0] = '\0';
	ag_driver_unload(drv);
	p = strstr(closed_line, ": ");
	CU_ASSERT_FATAL(p != NULL && sscanf(p, ": %llu write calls in %llu commits, %*u checkpoints, %llu WAL syncs", &calls, &commits,
	                                    &syncs) == 3);
	CU_ASSERT_EQUAL(syncs, 0);
}

/* Checkpoints run off the commit path but still keep the WAL short: after
 * thousands of small commits it stays near SQLite's 1,000 pages. */
static void test_checkpoints(void)
{
	char db[300], wal[320];
	/* normal: no fsync per commit, so that the test is quick */
	struct ag_driver *drv = open_new(db, sizeof(db), "synchronous", "normal");
	snprintf(wal, sizeof(wal), "%s-wal", db);
	static char value[1001];
	memset(value, 'w', sizeof(value) - 1);
	long max_wal = 0;
	for (int i = 0; i < 3000; i++) {
		char sk[32];
		snprintf(sk, sizeof(sk), "k%05d", i);
		CU_ASSERT(put(drv, "ckpt", sk, NULL, value) == 0);
		struct stat sb;
		if (i % 100 == 99 && stat(wal, &sb) == 0 && sb.st_size > max_wal)
			max_wal = (long)sb.st_size;
	}
	/* without checkpoints: 3,000 commits of several 4 KiB pages each */
	CU_ASSERT(max_wal > 0 && max_wal < 16L * 1024 * 1024);
	closed_line[0] = '\0';
	ag_driver_unload(drv);
	const char *p = strstr(closed_line, " commits, ");
	unsigned long long n = 0;
	CU_ASSERT(p && sscanf(p, " commits, %llu checkpoints", &n) == 1 && n >= 1);
	printf("[WAL at most %ld bytes; %s] ", max_wal, closed_line);
}

enum { STORM_THREADS = 8, STORM_WRITES = 300 };

struct storm {
	struct ag_driver *drv;
	int id;
	int missing; /* writes not visible right after their call returned */
	pthread_t thread;
};

static void *storm_main(void *arg)
{
	struct storm *sm = arg;
	char sk[32], v[32], vals[8][64];
	for (int i = 0; i < STORM_WRITES; i++) {
		snprintf(sk, sizeof(sk), "t%d-%04d", sm->id, i);
		snprintf(v, sizeof(v), "%d", i);
		if (put(sm->drv, "storm", sk, NULL, v) != 0 || get(sm->drv, "storm", sk, 0, NULL, vals) != 1 ||
		    strcmp(vals[0], v) != 0)
			sm->missing++;
	}
	return NULL;
}

/* Many threads write at once with no pause: calls are queued, joined to
 * running groups and handed the lead all the time; each call returns only
 * once its write is committed (a read right after it sees it). */
static void test_group_storm(void)
{
	char db[300];
	struct ag_driver *drv = open_new(db, sizeof(db), "synchronous", "normal");
	struct storm sm[STORM_THREADS];
	for (int i = 0; i < STORM_THREADS; i++) {
		sm[i] = (struct storm){ drv, i, 0, 0 };
		CU_ASSERT_FATAL(pthread_create(&sm[i].thread, NULL, storm_main, &sm[i]) == 0);
	}
	int missing = 0;
	for (int i = 0; i < STORM_THREADS; i++) {
		pthread_join(sm[i].thread, NULL);
		missing += sm[i].missing;
	}
	CU_ASSERT_EQUAL(missing, 0);
	struct aerogram_row_query q = { .pk = "storm" };
	struct aerogram_row_result *r;
	CU_ASSERT_FATAL(D(drv)->row_read(S(drv), &q, 1, &r) == 0);
	CU_ASSERT_EQUAL(r->pages[0].n_rows, STORM_THREADS * STORM_WRITES);
	D(drv)->row_result_free(S(drv), r);
	closed_line[0] = '\0';
	ag_driver_unload(drv);
	printf("[%s] ", closed_line);
}

enum { OPENERS = 6, OPEN_ROUNDS = 12 };

/* The body of an opener process of test_concurrent_open: waits until the
 * parent closes the start pipe, then opens the store and writes one row. */
static int opener_main(const char *db, int start_fd, int c)
{
	char byte;
	if (read(start_fd, &byte, 1) != 0)
		return 4;
	char err[512];
	struct ag_driver *cd = load(db, NULL, NULL, err, sizeof(err));
	if (cd == NULL) {
		fprintf(stderr, "opener %d: %s\n", c, err);
		return 2;
	}
	char sk[32];
	snprintf(sk, sizeof(sk), "o%d", c);
	int bad = put(cd, "open", sk, NULL, "v") != 0;
	ag_driver_unload(cd);
	return bad ? 1 : 0;
}

/* Several processes open one new file at the same moment (two daemons
 * started together on a fresh install): every one must succeed. Switching a
 * new file to WAL takes an exclusive lock, and SQLite answers SQLITE_BUSY at
 * once, without the busy handler, to one of two connections that both hold
 * a shared lock and want it. */
static void test_concurrent_open(void)
{
	int failed = 0;
	for (int round = 0; round < OPEN_ROUNDS; round++) {
		char db[300];
		new_db(db, sizeof(db));
		int fds[2];
		CU_ASSERT_FATAL(pipe(fds) == 0);
		pid_t pids[OPENERS];
		for (int c = 0; c < OPENERS; c++) {
			fflush(NULL);
			pids[c] = fork();
			if (pids[c] == 0) {
				close(fds[1]);
				char fd[16], cs[16];
				snprintf(fd, sizeof(fd), "%d", fds[0]);
				snprintf(cs, sizeof(cs), "%d", c);
				execl("/proc/self/exe", "test-sqlite-driver", driver_path, "--opener", db, fd,
				      cs, (char *)NULL);
				_exit(3);
			}
		}
		close(fds[0]);
		usleep(100000); /* let every child reach its read() */
		close(fds[1]);
		for (int c = 0; c < OPENERS; c++) {
			int status = 0;
			CU_ASSERT(waitpid(pids[c], &status, 0) == pids[c]);
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
				failed++;
		}
		/* Every user's mail is in it: not readable by others. */
		struct stat sb;
		CU_ASSERT(stat(db, &sb) == 0 && (sb.st_mode & 0007) == 0);
		struct ag_driver *drv = load(db, NULL, NULL, NULL, 0);
		CU_ASSERT_PTR_NOT_NULL_FATAL(drv);
		struct aerogram_row_query q = { .pk = "open" };
		struct aerogram_row_result *r;
		CU_ASSERT_FATAL(D(drv)->row_read(S(drv), &q, 1, &r) == 0);
		CU_ASSERT(r->pages[0].n_rows == OPENERS);
		D(drv)->row_result_free(S(drv), r);
		ag_driver_unload(drv);
	}
	CU_ASSERT_EQUAL(failed, 0);
}

static void test_schema_version(void)
{
	char db[300], err[512];
	struct ag_driver *drv = open_new(db, sizeof(db), NULL, NULL);
	ag_driver_unload(drv);
	sqlite3 *h;
	CU_ASSERT_FATAL(sqlite3_open(db, &h) == SQLITE_OK);
	sqlite3_stmt *s;
	CU_ASSERT(sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK);
	CU_ASSERT(sqlite3_step(s) == SQLITE_ROW && sqlite3_column_int(s, 0) == 2);
	sqlite3_finalize(s);
	CU_ASSERT(sqlite3_exec(h, "PRAGMA user_version=99", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(h);
	CU_ASSERT(load(db, NULL, NULL, err, sizeof(err)) == NULL);
	CU_ASSERT(strstr(err, "newer") != NULL);
	CU_ASSERT(strstr(err, "99") != NULL);

	/* Not a database at all: a clear failure, not a crash. */
	new_db(db, sizeof(db));
	FILE *f = fopen(db, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs("this is not a database, it is a text file of some length.......\n", f);
	fclose(f);
	CU_ASSERT(load(db, NULL, NULL, err, sizeof(err)) == NULL);
}

/* A file of schema version 1 (values in their own table ag_values) is
 * migrated at open: the same values, siblings, tombstones and tokens, and a
 * clock that does not go back below the one it had. */
/* The wall clock in ms, as an SQL expression. */
#define NOW_MS "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"

static void test_schema_migration(void)
{
	char db[300], tok[64], vals[8][64];
	new_db(db, sizeof(db));
	sqlite3 *h;
	CU_ASSERT_FATAL(sqlite3_open(db, &h) == SQLITE_OK);
	const char *v1 =
		"PRAGMA journal_mode=WAL;"
		"CREATE TABLE ag_clock (id INTEGER PRIMARY KEY CHECK (id = 1), clock INTEGER NOT NULL);"
		"CREATE TABLE ag_rows (id INTEGER PRIMARY KEY, pk TEXT NOT NULL, sk TEXT NOT NULL,"
		"  ctx INTEGER NOT NULL, discard INTEGER NOT NULL, n_live INTEGER NOT NULL,"
		"  n_values INTEGER NOT NULL, mtime INTEGER NOT NULL, UNIQUE (pk, sk));"
		"CREATE INDEX ag_rows_ctx ON ag_rows(ctx);"
		"CREATE INDEX ag_rows_dead ON ag_rows(mtime) WHERE n_live = 0;"
		"CREATE TABLE ag_values (ver INTEGER PRIMARY KEY, row_id INTEGER NOT NULL,"
		"  tombstone INTEGER NOT NULL, data BLOB);"
		"CREATE INDEX ag_values_row ON ag_values(row_id, ver);"
		"CREATE TABLE ag_blobs (key TEXT PRIMARY KEY NOT NULL, size INTEGER NOT NULL, data BLOB,"
		"  file TEXT, meta BLOB NOT NULL, mtime INTEGER NOT NULL);"
		"CREATE INDEX ag_blobs_file ON ag_blobs(file) WHERE file IS NOT NULL;"
		/* the newest versions (up to 32) were those of rows since forgotten */
		"INSERT INTO ag_clock VALUES (1, 32);"
		/* mtime now: a tombstone row of 1970 would be forgotten by the
		 * maintenance thread at open, racing the reads below */
		"INSERT INTO ag_rows VALUES (1, 'm', 'a', 5, 2, 2, 2, " NOW_MS ");"
		"INSERT INTO ag_values VALUES (3, 1, 0, x'78');"
		"INSERT INTO ag_values VALUES (5, 1, 0, x'79');"
		"INSERT INTO ag_rows VALUES (2, 'm', 'b', 6, 4, 0, 1, " NOW_MS ");"
		"INSERT INTO ag_values VALUES (6, 2, 1, NULL);"
		"INSERT INTO ag_rows VALUES (3, 'm', 'c', 7, 0, 1, 1, " NOW_MS ");"
		"INSERT INTO ag_values VALUES (7, 3, 0, x'');"
		"PRAGMA user_version=1;";
	CU_ASSERT_FATAL(sqlite3_exec(h, v1, NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(h);

	struct ag_driver *drv = load(db, NULL, NULL, NULL, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(drv);
	CU_ASSERT(get(drv, "m", "a", 0, tok, vals) == 2);
	CU_ASSERT_STRING_EQUAL(tok, "0000000000000005");
	CU_ASSERT_STRING_EQUAL(vals[0], "x");
	CU_ASSERT_STRING_EQUAL(vals[1], "y");
	CU_ASSERT(get(drv, "m", "b", 0, tok, vals) == 0);
	CU_ASSERT(get(drv, "m", "b", AEROGRAM_QUERY_TOMBSTONES, tok, vals) == 1);
	CU_ASSERT_STRING_EQUAL(vals[0], "<tomb>");
	struct aerogram_row_query q = { .pk = "m", .sk = "c" };
	struct aerogram_row_result *r;
	CU_ASSERT_FATAL(D(drv)->row_read(S(drv), &q, 1, &r) == 0);
	CU_ASSERT_FATAL(r->pages[0].n_rows == 1 && r->pages[0].rows[0].n_values == 1);
	CU_ASSERT(!r->pages[0].rows[0].values[0].tombstone && r->pages[0].rows[0].values[0].len == 0);
	D(drv)->row_result_free(S(drv), r);
	/* a token supersedes what it read: one of the two siblings was read */
	CU_ASSERT(put(drv, "m", "a", "0000000000000003", "z") == 0);
	CU_ASSERT(get(drv, "m", "a", 0, tok, vals) == 2);
	CU_ASSERT_STRING_EQUAL(vals[0], "y");
	CU_ASSERT_STRING_EQUAL(vals[1], "z");
	CU_ASSERT_STRING_EQUAL(tok, "0000000000000021"); /* above the old clock */
	ag_driver_unload(drv);

	CU_ASSERT_FATAL(sqlite3_open(db, &h) == SQLITE_OK);
	sqlite3_stmt *s;
	CU_ASSERT(sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK);
	CU_ASSERT(sqlite3_step(s) == SQLITE_ROW && sqlite3_column_int(s, 0) == 2);
	sqlite3_finalize(s);
	CU_ASSERT(sqlite3_prepare_v2(h, "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'ag_values%'",
	                             -1, &s, NULL) == SQLITE_OK);
	CU_ASSERT(sqlite3_step(s) == SQLITE_ROW && sqlite3_column_int(s, 0) == 0);
	sqlite3_finalize(s);
	/* the rows are stored in key order, without a separate index */
	CU_ASSERT(sqlite3_prepare_v2(h, "SELECT sql FROM sqlite_schema WHERE name = 'ag_rows'", -1, &s,
	                             NULL) == SQLITE_OK);
	CU_ASSERT(sqlite3_step(s) == SQLITE_ROW &&
	          strstr((const char *)sqlite3_column_text(s, 0), "WITHOUT ROWID") != NULL);
	sqlite3_finalize(s);
	sqlite3_close(h);
}

static void test_busy(void)
{
	char db[300];
	struct ag_driver *drv = open_new(db, sizeof(db), "busy_timeout_ms", "100");
	sqlite3 *h;
	CU_ASSERT_FATAL(sqlite3_open(db, &h) == SQLITE_OK);
	/* The driver's cleanup pass may hold the write lock for a moment right
	 * after open: wait for it rather than fail to take the lock ourselves. */
	sqlite3_busy_timeout(h, 10000);
	CU_ASSERT_FATAL(sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
	CU_ASSERT(put(drv, "b", "x", NULL, "v") == AEROGRAM_EUNAVAILABLE);
	CU_ASSERT(strstr(D(drv)->error_message(S(drv)), "locked") != NULL);
	/* Readers are not blocked by a writer in WAL mode. */
	CU_ASSERT(get(drv, "b", "x", 0, NULL, NULL) == 0);
	CU_ASSERT(sqlite3_exec(h, "COMMIT", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(h);
	CU_ASSERT(put(drv, "b", "x", NULL, "v") == 0);
	ag_driver_unload(drv);
}

/* A damaged file gives EINTERNAL with SQLite's message, not a crash. */
static void test_corrupt(void)
{
	char db[300], tok[64];
	struct ag_driver *drv = open_new(db, sizeof(db), NULL, NULL);
	static char value[3000];
	memset(value, 'c', sizeof(value) - 1);
	char sk[32];
	for (int i = 0; i < 200; i++) {
		snprintf(sk, sizeof(sk), "k%04d", i);
		CU_ASSERT(put(drv, "c", sk, NULL, value) == 0);
	}
	ag_driver_unload(drv); /* the last close checkpoints the WAL into the file */
	/* Overwrite the pages after the schema's with garbage. */
	FILE *f = fopen(db, "r+b");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT(fseek(f, 4096 * 8, SEEK_SET) == 0);
	static unsigned char junk[4096 * 40];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)(i * 131 + 17);
	CU_ASSERT(fwrite(junk, 1, sizeof(junk), f) == sizeof(junk));
	fclose(f);
	char err[512];
	drv = load(db, NULL, NULL, err, sizeof(err));
	if (drv == NULL) {
		/* Refused at open: also acceptable, with a reason. */
		CU_ASSERT(strlen(err) > 0);
		return;
	}
	struct aerogram_row_query q = { .pk = "c" };
	struct aerogram_row_result *r = NULL;
	int rc = D(drv)->row_read(S(drv), &q, 1, &r);
	CU_ASSERT(rc == AEROGRAM_EINTERNAL);
	if (rc == 0)
		D(drv)->row_result_free(S(drv), r);
	else
		CU_ASSERT(strstr(D(drv)->error_message(S(drv)), "malformed") != NULL);
	(void)tok;
	ag_driver_unload(drv);
}

/* Every statement is an index search, never a full scan of a table. */
static void check_plan(sqlite3 *h, const char *sql, const char *must)
{
	int found = must == NULL;
	sqlite3_stmt *s;
	char q[700];
	snprintf(q, sizeof(q), "EXPLAIN QUERY PLAN %s", sql);
	CU_ASSERT_FATAL(sqlite3_prepare_v2(h, q, -1, &s, NULL) == SQLITE_OK);
	int rows = 0;
	while (sqlite3_step(s) == SQLITE_ROW) {
		const char *detail = (const char *)sqlite3_column_text(s, 3);
		rows++;
		/* a SELECT without FROM (the clock) scans its one constant row */
		int ok = strncmp(detail, "SCAN ", 5) != 0 || strcmp(detail, "SCAN CONSTANT ROW") == 0;
		if (must && strstr(detail, must))
			found = 1;
		if (!ok)
			fprintf(stderr, "plan of %s: %s\n", sql, detail);
		CU_ASSERT(ok);
		/* Ranges come out of the index in order: no sorting step. */
		CU_ASSERT(strstr(detail, "TEMP B-TREE") == NULL);
	}
	sqlite3_finalize(s);
	CU_ASSERT(rows > 0);
	CU_ASSERT(found);
}

static void test_query_plans(void)
{
	char db[300];
	struct ag_driver *drv = open_new(db, sizeof(db), NULL, NULL);
	/* Some rows so the planner has statistics-free but realistic tables. */
	for (int i = 0; i < 50; i++) {
		char sk[16];
		snprintf(sk, sizeof(sk), "%04d", i);
		CU_ASSERT(put(drv, "plan", sk, NULL, "v") == 0);
	}
	ag_driver_unload(drv);
	sqlite3 *h;
	CU_ASSERT_FATAL(sqlite3_open(db, &h) == SQLITE_OK);
	const char *fixed[] = { SQ_SQL_ROW_FIND,       SQ_SQL_ROW_UPDATE, SQ_SQL_ROW_CHANGED,
		                SQ_SQL_BLOB_GET,       SQ_SQL_BLOB_FILE,  SQ_SQL_BLOB_DEL,
		                SQ_SQL_BLOB_LIST,      SQ_SQL_BLOB_LIST_OPEN,
		                SQ_SQL_BLOB_FILE_USED, SQ_SQL_ROW_DEAD,   SQ_SQL_ROW_DEL };
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		check_plan(h, fixed[i], "SEARCH ");
	/* the clock is the last entry of the ctx index, not a scan of it */
	check_plan(h, SQ_SQL_CLOCK_GET, "SEARCH ag_rows USING COVERING INDEX ag_rows_ctx");
	for (int v = 0; v < SQ_RANGE_VARIANTS; v++) {
		char sql[512];
		sq_range_sql(v, sql, sizeof(sql));
		check_plan(h, sql, "SEARCH ag_rows USING PRIMARY KEY (pk=? AND sk>");
	}
	sqlite3_close(h);
}

/* Driver log lines: only warnings and errors. */
static void quiet_log(enum aerogram_log_level level, const char *tag, const char *message)
{
	if (strncmp(message, "closed ", 7) == 0 && strstr(message, " write calls in ") != NULL)
		snprintf(closed_line, sizeof(closed_line), "%s", message);
	if (level <= AEROGRAM_LOG_WARNING)
		fprintf(stderr, "%s: %s\n", tag ? tag : "host", message);
}

static const struct agt_test tests[] = {
	{ "configuration keys are checked", test_config },
	{ "tokens supersede exactly what was read", test_causality },
	{ "ranges, prefixes, reverse, limits, deletes", test_ranges },
	{ "blobs inline and in files, copy, delete, list", test_blobs },
	{ "orphan blob files are swept", test_orphan_sweep },
	{ "watches in one process", test_watch_local },
	{ "local commits are matched with watches in memory", test_watch_local_commits },
	{ "two processes write, a third watches", test_multi_process },
	{ "compare-and-set across processes and threads", test_cas_processes },
	{ "queued writes share a commit; a failed call rolls back alone", test_group_commit },
	{ "blob writes and deletes sync nothing, row writes do", test_deferred_blob_syncs },
	{ "a storm of concurrent writers: every call returns committed", test_group_storm },
	{ "checkpoints keep the WAL short", test_checkpoints },
	{ "processes opening a new file at once all succeed", test_concurrent_open },
	{ "schema version is checked", test_schema_version },
	{ "a file of schema version 1 is migrated", test_schema_migration },
	{ "a locked database is UNAVAILABLE", test_busy },
	{ "a damaged file is EINTERNAL", test_corrupt },
	{ "statements search indexes", test_query_plans },
	AGT_END,
};

int main(int argc, char **argv)
{
	agt_init(&argc, &argv);
	ag_driver_set_log(quiet_log);
	if (argc == 5 && strcmp(argv[2], "--writer") == 0) {
		driver_path = argv[1];
		return writer_main(argv[3], atoi(argv[4]));
	}
	if (argc == 4 && strcmp(argv[2], "--cas") == 0) {
		driver_path = argv[1];
		return cas_main(argv[3]);
	}
	if (argc == 7 && strcmp(argv[2], "--put") == 0) {
		/* one write from another process: --put DB PK SK VALUE */
		driver_path = argv[1];
		struct ag_driver *cd = load(argv[3], NULL, NULL, NULL, 0);
		int bad = cd == NULL || put(cd, argv[4], argv[5], NULL, argv[6]) != 0;
		if (cd)
			ag_driver_unload(cd);
		return bad;
	}
	if (argc == 6 && strcmp(argv[2], "--opener") == 0) {
		driver_path = argv[1];
		return opener_main(argv[3], atoi(argv[4]), atoi(argv[5]));
	}
	driver_path = agt_arg(argc, argv, "PATH/TO/aerogram_sqlite.so");
	agt_tmpdir(tmpdir, sizeof(tmpdir), "agsqlite");
	agt_suite("sqlite driver", NULL, NULL, tests, NULL);
	int failures = agt_run();
	if (failures != 0)
		fprintf(stderr, "databases kept in %s\n", tmpdir);
	else if (agt_rm_rf(tmpdir) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
	return failures;
}
