/*
 * garage_test.c - tests of the Garage driver against garage-emu that the
 * conformance suite does not cover: configuration errors, watches (item and
 * range, timeouts, release, thousands of polls on one thread), and the
 * number of K2V/S3 requests each ABI operation costs, read from the
 * emulator's /_emu/stats (the table is printed for the README).
 *
 * usage: garage-test DRIVER.so K2V_URL S3_URL BUCKET KEY_ID SECRET [retries|paging]
 *
 * With "retries" the emulator must run with --fail-rate 1 (every request
 * answered 503, nothing applied): the tests then count how many attempts
 * each operation makes, which is the driver's retry policy. With "paging"
 * K2V_URL is tests/garage/k2v-paging-server, which cuts every range after
 * one item: row_read with limit 0 must follow nextStart to the end. With
 * "replicas" the emulator runs with --replicas 3 --test-control: a row
 * tombstoned on two replicas must stay hidden from reads that ask the third.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <curl/curl.h>
#include <jansson.h>

#include "aerogram/driver.h"
#include "tests/lib/cu_main.h"

static const struct aerogram_driver *drv;
static struct aerogram_store *store;
static const char *k2v_url, *s3_url, *bucket, *key_id, *secret;
static char prefix[64];

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* ---- emulator statistics ---- */

struct body {
	char *p;
	size_t len;
};

static size_t collect(char *data, size_t size, size_t n, void *userp)
{
	size_t len = size * n;
	struct body *buf = userp;
	char *np = realloc(buf->p, buf->len + len + 1);
	if (!np)
		return 0;
	memcpy(np + buf->len, data, len);
	buf->p = np;
	buf->len += len;
	np[buf->len] = 0;
	return len;
}

static json_t *emu_hook_body(const char *path, const char *body);

/* POST or GET a hook of the emulator; returns the parsed JSON (or NULL). */
static json_t *emu_hook(const char *path, int post)
{
	return emu_hook_body(path, post ? "" : NULL);
}

/* POST body (GET when NULL) to a hook; the parsed JSON answer or NULL. */
static json_t *emu_hook_body(const char *path, const char *body)
{
	char url[256];
	snprintf(url, sizeof(url), "%s%s", k2v_url, path);
	CURL *c = curl_easy_init();
	struct body buf = {NULL, 0};
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &buf);
	if (body)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	CURLcode rc = curl_easy_perform(c);
	curl_easy_cleanup(c);
	json_t *j = NULL;
	if (rc == CURLE_OK && buf.p)
		j = json_loads(buf.p, 0, NULL);
	free(buf.p);
	return j;
}

static void stats_reset(void)
{
	json_decref(emu_hook("/_emu/reset-stats", 1));
}

/* The non-zero endpoint counters as "ReadBatch=1 PutObject=2", and the total. */
static long stats_text(char *out, size_t len)
{
	json_t *j = emu_hook("/_emu/stats", 0);
	out[0] = 0;
	if (!j)
		return -1;
	const char *name;
	json_t *v;
	size_t used = 0;
	json_object_foreach(json_object_get(j, "endpoints"), name, v)
	{
		if (json_integer_value(v) > 0 && used < len)
			used += (size_t)snprintf(out + used, len - used, "%s%s=%lld", used ? " " : "",
			                         name, (long long)json_integer_value(v));
	}
	long total = (long)json_integer_value(json_object_get(j, "total"));
	json_decref(j);
	return total;
}

static void expect_requests(const char *operation, const char *want)
{
	char got[512];
	stats_text(got, sizeof(got));
	printf("\n    requests | %-52s | %s", operation, got);
	CU_ASSERT_STRING_EQUAL(got, want);
	stats_reset();
}

/* ---- helpers ---- */

static char *pk(const char *name)
{
	static _Thread_local char buf[8][128];
	static _Thread_local int next;
	char *b = buf[next++ % 8];
	snprintf(b, 128, "%s/%s", prefix, name);
	return b;
}

static int put_row(const char *p, const char *sk, const char *value, const char *token)
{
	struct aerogram_row_write w = {p, sk, token, (const uint8_t *)value, strlen(value), 0};
	return drv->row_insert(store, &w, 1);
}

/* The token of a row, copied (NULL when missing). */
static char *row_token(const char *p, const char *sk)
{
	struct aerogram_row_query q = {.pk = p, .sk = sk};
	struct aerogram_row_result *r;
	if (drv->row_read(store, &q, 1, &r) != 0)
		return NULL;
	char *t = r->pages[0].n_rows ? strdup(r->pages[0].rows[0].token) : NULL;
	drv->row_result_free(store, r);
	return t;
}

struct watch_rec {
	pthread_mutex_t lock;
	int calls;
	int status;
	char value[64];
	pthread_t thread;
};

static void watch_rec_init(struct watch_rec *w)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
}

static void on_watch(void *arg, int status, const struct aerogram_row *row, const char *message)
{
	(void)message;
	struct watch_rec *w = arg;
	pthread_mutex_lock(&w->lock);
	w->calls++;
	w->status = status;
	w->thread = pthread_self();
	if (row && row->n_values && !row->values[0].tombstone)
		snprintf(w->value, sizeof(w->value), "%.*s", (int)row->values[0].len,
		         (const char *)row->values[0].data);
	pthread_mutex_unlock(&w->lock);
}

static int calls_of(struct watch_rec *w)
{
	pthread_mutex_lock(&w->lock);
	int c = w->calls;
	pthread_mutex_unlock(&w->lock);
	return c;
}

/* Wait up to 20 s for a callback; a slow machine only makes this slower. */
static int wait_fired(struct watch_rec *w)
{
	for (int i = 0; i < 2000 && calls_of(w) == 0; i++)
		sleep_ms(10);
	return calls_of(w);
}

/* Watches p/sk (with tok, or none) until it fires, value (when not NULL)
 * written to the row 100 ms after the watch began; then releases it. */
static void watch_row_fired(const char *p, const char *sk, const char *tok, const char *value)
{
	struct watch_rec rec;
	watch_rec_init(&rec);
	struct aerogram_watch *wa;
	CU_ASSERT_EQUAL_FATAL(drv->row_watch(store, p, sk, tok, 30000, on_watch, &rec, &wa), 0);
	if (value) {
		sleep_ms(100);
		CU_ASSERT_EQUAL(put_row(p, sk, value, tok), 0);
	}
	wait_fired(&rec);
	drv->row_watch_release(store, wa);
}

/* ---- configuration ---- */

static int try_open(const struct aerogram_config_entry *cfg, size_t n, char *err, size_t errlen)
{
	struct aerogram_store *s = NULL;
	int rc = drv->open(NULL, cfg, n, &s, err, errlen);
	if (rc == 0)
		drv->close(s);
	return rc;
}

static void test_config(void)
{
	char err[256];
	struct aerogram_config_entry good[5] = {{"k2v_endpoint", k2v_url}, {"s3_endpoint", s3_url},
	                                        {"bucket", bucket}, {"access_key_id", key_id},
	                                        {"secret_access_key", secret}};
	CU_ASSERT_EQUAL(try_open(good, 5, err, sizeof(err)), 0);

	struct aerogram_config_entry unknown[6] = {good[0], good[1], good[2], good[3], good[4],
	                                           {"endpoint", "x"}};
	CU_ASSERT_NOT_EQUAL(try_open(unknown, 6, err, sizeof(err)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "endpoint"));

	CU_ASSERT_NOT_EQUAL(try_open(good, 4, err, sizeof(err)), 0); /* no secret */
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "secret_access_key"));

	struct aerogram_config_entry nobucket[4] = {good[0], good[1], good[3], good[4]};
	CU_ASSERT_NOT_EQUAL(try_open(nobucket, 4, err, sizeof(err)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "bucket"));

	struct aerogram_config_entry badurl[5] = {{"k2v_endpoint", "127.0.0.1:3904"}, good[1],
	                                          good[2], good[3], good[4]};
	CU_ASSERT_NOT_EQUAL(try_open(badurl, 5, err, sizeof(err)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "k2v_endpoint"));

	struct aerogram_config_entry badnum[6] = {good[0], good[1], good[2], good[3], good[4],
	                                          {"retries", "many"}};
	CU_ASSERT_NOT_EQUAL(try_open(badnum, 6, err, sizeof(err)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "retries"));

	/* The secret from a file (with its trailing newline) opens and works. */
	char path[] = "/tmp/aerogram-garage-secret-XXXXXX";
	int fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT(write(fd, secret, strlen(secret)) == (ssize_t)strlen(secret));
	CU_ASSERT(write(fd, "\n", 1) == 1);
	close(fd);
	struct aerogram_config_entry file[5] = {good[0], good[1], good[2], good[3],
	                                        {"secret_access_key_file", path}};
	struct aerogram_store *s = NULL;
	CU_ASSERT_EQUAL_FATAL(drv->open(NULL, file, 5, &s, err, sizeof(err)), 0);
	struct aerogram_row_query q = {.pk = pk("cfg"), .sk = "x"};
	struct aerogram_row_result *r = NULL;
	CU_ASSERT_EQUAL(drv->row_read(s, &q, 1, &r), 0);
	drv->row_result_free(s, r);
	drv->close(s);

	/* A wrong secret: the store answers 403, mapped to EPERM, with the
	 * operation and Garage's code in the message. */
	struct aerogram_config_entry wrong[5] = {good[0], good[1], good[2], good[3],
	                                         {"secret_access_key", "0000"}};
	CU_ASSERT_EQUAL_FATAL(drv->open(NULL, wrong, 5, &s, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(drv->row_read(s, &q, 1, &r), AEROGRAM_EPERM);
	const char *msg = drv->error_message(s);
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, "403"));
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, "AccessDenied"));
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, "ReadBatch"));
	drv->close(s);

	/* Both forms of the secret at once are refused. */
	struct aerogram_config_entry both[6] = {good[0], good[1], good[2], good[3], good[4],
	                                        {"secret_access_key_file", path}};
	CU_ASSERT_NOT_EQUAL(try_open(both, 6, err, sizeof(err)), 0);
	unlink(path);
}

/* ---- watches ---- */

static void test_watch_token_fires_on_write(void)
{
	const char *p = pk("w1");
	CU_ASSERT_EQUAL_FATAL(put_row(p, "watch", "one", NULL), 0);
	char *tok = row_token(p, "watch");
	CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
	struct watch_rec rec;
	watch_rec_init(&rec);
	struct aerogram_watch *w;
	CU_ASSERT_EQUAL_FATAL(drv->row_watch(store, p, "watch", tok, 30000, on_watch, &rec, &w), 0);
	sleep_ms(200);
	CU_ASSERT_EQUAL(calls_of(&rec), 0); /* nothing changed yet */
	CU_ASSERT_EQUAL(put_row(p, "watch", "two", tok), 0);
	CU_ASSERT_EQUAL(wait_fired(&rec), 1);
	CU_ASSERT_EQUAL(rec.status, AEROGRAM_OK);
	CU_ASSERT_STRING_EQUAL(rec.value, "two");
	CU_ASSERT(!pthread_equal(rec.thread, pthread_self()));
	drv->row_watch_release(store, w);
	free(tok);
}

static void test_watch_null_token(void)
{
	/* Existing row: fires at once. */
	const char *p = pk("w2");
	CU_ASSERT_EQUAL_FATAL(put_row(p, "here", "present", NULL), 0);
	struct watch_rec rec;
	watch_rec_init(&rec);
	struct aerogram_watch *w;
	CU_ASSERT_EQUAL_FATAL(drv->row_watch(store, p, "here", NULL, 30000, on_watch, &rec, &w), 0);
	CU_ASSERT_EQUAL(wait_fired(&rec), 1);
	CU_ASSERT_EQUAL(rec.status, AEROGRAM_OK);
	CU_ASSERT_STRING_EQUAL(rec.value, "present");
	drv->row_watch_release(store, w);

	/* Missing row: waits, fires on the first write. */
	watch_rec_init(&rec);
	CU_ASSERT_EQUAL_FATAL(drv->row_watch(store, p, "later", NULL, 30000, on_watch, &rec, &w),
	                      0);
	sleep_ms(300);
	CU_ASSERT_EQUAL(calls_of(&rec), 0);
	CU_ASSERT_EQUAL(put_row(p, "later", "arrived", NULL), 0);
	CU_ASSERT_EQUAL(wait_fired(&rec), 1);
	CU_ASSERT_EQUAL(rec.status, AEROGRAM_OK);
	CU_ASSERT_STRING_EQUAL(rec.value, "arrived");
	drv->row_watch_release(store, w);
}

static void test_watch_timeout(void)
{
	struct watch_rec rec;
	watch_rec_init(&rec);
	struct aerogram_watch *w;
	CU_ASSERT_EQUAL_FATAL(drv->row_watch(store, pk("w3"), "never", NULL, 1000, on_watch, &rec,
	                                     &w),
	                      0);
	CU_ASSERT_EQUAL(wait_fired(&rec), 1);
	CU_ASSERT_EQUAL(rec.status, AEROGRAM_ETIMEDOUT);
	sleep_ms(1200);
	CU_ASSERT_EQUAL(calls_of(&rec), 1); /* exactly once */
	drv->row_watch_release(store, w);
}

static void test_watch_release_before_fire(void)
{
	const char *p = pk("w4");
	struct watch_rec rec;
	watch_rec_init(&rec);
	struct aerogram_watch *w;
	CU_ASSERT_EQUAL_FATAL(drv->row_watch(store, p, "x", NULL, 30000, on_watch, &rec, &w), 0);
	sleep_ms(100);
	drv->row_watch_release(store, w);
	CU_ASSERT_EQUAL(put_row(p, "x", "after release", NULL), 0);
	sleep_ms(300);
	CU_ASSERT_EQUAL(calls_of(&rec), 0);
}

static int thread_count(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return -1;
	char line[256];
	int n = -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Threads: %d", &n) == 1)
			break;
	fclose(f);
	return n;
}

#define MANY_WATCHES 200

/* Hundreds of parked polls cost no thread each, all fire from one thread,
 * and releasing them is prompt. */
static void test_many_watches_one_thread(void)
{
	static struct watch_rec recs[MANY_WATCHES];
	static struct aerogram_watch *ws[MANY_WATCHES];
	static struct aerogram_row_write writes[MANY_WATCHES];
	static char sks[MANY_WATCHES][16];
	int before = thread_count();
	const char *p = pk("many");
	for (int i = 0; i < MANY_WATCHES; i++) {
		watch_rec_init(&recs[i]);
		snprintf(sks[i], sizeof(sks[i]), "r%04d", i);
		CU_ASSERT_EQUAL_FATAL(drv->row_watch(store, p, sks[i], NULL, 60000, on_watch,
		                                     &recs[i], &ws[i]),
		                      0);
		writes[i] = (struct aerogram_row_write){p, sks[i], NULL, (const uint8_t *)"v", 1, 0};
	}
	sleep_ms(300);
	int during = thread_count();
	CU_ASSERT(during - before <= 2);
	printf("\n    threads before %d, with %d watches %d", before, MANY_WATCHES, during);
	CU_ASSERT_EQUAL(drv->row_insert(store, writes, MANY_WATCHES), 0);
	int fired = 0;
	for (int t = 0; t < 3000 && fired < MANY_WATCHES; t++) {
		fired = 0;
		for (int i = 0; i < MANY_WATCHES; i++)
			fired += calls_of(&recs[i]) > 0;
		if (fired < MANY_WATCHES)
			sleep_ms(10);
	}
	CU_ASSERT_EQUAL(fired, MANY_WATCHES);
	for (int i = 0; i < MANY_WATCHES; i++) {
		CU_ASSERT_EQUAL(recs[i].status, AEROGRAM_OK);
		CU_ASSERT(pthread_equal(recs[i].thread, recs[0].thread));
		drv->row_watch_release(store, ws[i]);
	}
	/* A second round released while parked. */
	for (int i = 0; i < MANY_WATCHES; i++) {
		watch_rec_init(&recs[i]);
		CU_ASSERT_EQUAL_FATAL(drv->row_watch(store, p, sks[i], "AAAAAAAAAAA", 60000, on_watch,
		                                     &recs[i], &ws[i]),
		                      0);
	}
	for (int i = 0; i < MANY_WATCHES; i++)
		drv->row_watch_release(store, ws[i]);
}

/* ---- requests per operation ---- */

static void test_request_counts(void)
{
	const char *p = pk("count");
	struct aerogram_row_write w[100];
	char sks[100][16];
	for (int i = 0; i < 100; i++) {
		snprintf(sks[i], sizeof(sks[i]), "k%03d", i);
		w[i] = (struct aerogram_row_write){p, sks[i], NULL, (const uint8_t *)"value", 5, 0};
	}
	/* Polls released by the previous test may still be reaching the
	 * server: let them land before counting. */
	sleep_ms(500);
	stats_reset();
	CU_ASSERT_EQUAL(drv->row_insert(store, w, 100), 0);
	expect_requests("row_insert, 100 rows", "InsertBatch=1");

	struct aerogram_row_query q[20];
	for (int i = 0; i < 20; i++)
		q[i] = (struct aerogram_row_query){.pk = p, .sk = sks[i]};
	struct aerogram_row_result *r;
	CU_ASSERT_EQUAL(drv->row_read(store, q, 20, &r), 0);
	drv->row_result_free(store, r);
	expect_requests("row_read, 20 single-item queries", "ReadBatch=1");

	struct aerogram_row_query range = {.pk = p};
	CU_ASSERT_EQUAL(drv->row_read(store, &range, 1, &r), 0);
	CU_ASSERT_EQUAL(r->pages[0].n_rows, 100);
	drv->row_result_free(store, r);
	expect_requests("row_read, range of 100 rows, limit 0", "ReadBatch=1");

	range.limit = 10;
	CU_ASSERT_EQUAL(drv->row_read(store, &range, 1, &r), 0);
	CU_ASSERT_EQUAL(r->pages[0].n_rows, 10);
	CU_ASSERT(r->pages[0].more);
	drv->row_result_free(store, r);
	expect_requests("row_read, range with limit 10", "ReadBatch=1");

	char *tok = row_token(p, "k000");
	stats_reset();
	struct watch_rec rec;
	watch_rec_init(&rec);
	watch_row_fired(p, "k000", tok, "changed");
	expect_requests("row_watch with a token, fired by a write (+ the write)",
	                "InsertBatch=1 PollItem=1");
	free(tok);

	watch_row_fired(p, "k001", NULL, NULL);
	expect_requests("row_watch without a token, row present", "ReadItem=1");

	watch_row_fired(p, "new", NULL, "v");
	expect_requests("row_watch without a token, row written later (+ the write)",
	                "ReadItem=1 InsertBatch=1 PollItem=1");

	uint64_t deleted = 0;
	struct aerogram_row_query del = {.pk = p};
	CU_ASSERT_EQUAL(drv->row_delete(store, &del, 1, &deleted), 0);
	CU_ASSERT_EQUAL(deleted, 101);
	expect_requests("row_delete, a range of 101 rows", "ReadBatch=1 InsertBatch=1");

	char key[128], key2[128];
	snprintf(key, sizeof(key), "%s/blob", prefix);
	snprintf(key2, sizeof(key2), "%s/copy", prefix);
	struct aerogram_meta meta[2] = {{"from", "a@b"}, {"size", "5"}};
	CU_ASSERT_EQUAL(drv->blob_put(store, key, (const uint8_t *)"hello", 5, meta, 2), 0);
	expect_requests("blob_put with 2 metadata entries", "PutObject=1");
	CU_ASSERT_EQUAL(drv->blob_copy(store, key, key2), 0);
	expect_requests("blob_copy", "CopyObject=1");

	struct aerogram_blob_request br[10];
	for (int i = 0; i < 10; i++)
		br[i] = (struct aerogram_blob_request){i % 2 ? key : key2, (uint64_t)(i % 3), 0};
	struct aerogram_blob_result *b;
	CU_ASSERT_EQUAL(drv->blob_get(store, br, 10, &b), 0);
	drv->blob_result_free(store, b);
	expect_requests("blob_get, 10 blobs (in parallel)", "GetObject=10");

	struct aerogram_blob_list *l;
	CU_ASSERT_EQUAL(drv->blob_list(store, prefix, NULL, 0, &l), 0);
	drv->blob_list_free(store, l);
	expect_requests("blob_list, one page", "ListObjectsV2=1");

	static char keys[2500][96];
	static const char *kp[2500];
	for (int i = 0; i < 2500; i++) {
		snprintf(keys[i], sizeof(keys[i]), "%s/gone/%04d", prefix, i);
		kp[i] = keys[i];
	}
	CU_ASSERT_EQUAL(drv->blob_delete(store, kp, 2500), 0);
	expect_requests("blob_delete, 2500 keys (missing ones included)", "DeleteObjects=3");
	const char *both[2] = {key, key2};
	CU_ASSERT_EQUAL(drv->blob_delete(store, both, 2), 0);
	stats_reset();
	printf("\n");
}

/* blob_get on N keys costs about one round trip: prints the timing (the
 * emulator adds its latency to each request). A benchmark, not a check. */
static void test_parallel_get_timing(void)
{
	char key[128];
	snprintf(key, sizeof(key), "%s/timing", prefix);
	CU_ASSERT_EQUAL_FATAL(drv->blob_put(store, key, (const uint8_t *)"0123456789", 10, NULL, 0),
	                      0);
	struct aerogram_blob_request br[16];
	for (int i = 0; i < 16; i++)
		br[i] = (struct aerogram_blob_request){key, 0, 0};
	for (int n = 1; n <= 16; n *= 4) {
		struct timespec a, z;
		clock_gettime(CLOCK_MONOTONIC, &a);
		struct aerogram_blob_result *b;
		CU_ASSERT_EQUAL(drv->blob_get(store, br, (size_t)n, &b), 0);
		clock_gettime(CLOCK_MONOTONIC, &z);
		for (int i = 0; i < n; i++)
			CU_ASSERT_EQUAL(b->blobs[i].len, 10);
		drv->blob_result_free(store, b);
		printf("\n    blob_get of %2d blobs: %.1f ms", n,
		       (double)(z.tv_sec - a.tv_sec) * 1e3 + (double)(z.tv_nsec - a.tv_nsec) / 1e6);
	}
	const char *k[1] = {key};
	drv->blob_delete(store, k, 1);
	printf("\n");
}

/* ---- the retry policy, against an emulator that fails everything ---- */

#define RETRIES "2"

static void expect_unavailable(const char *what, int rc, const char *op)
{
	CU_ASSERT_EQUAL(rc, AEROGRAM_EUNAVAILABLE);
	const char *msg = drv->error_message(store);
	if (rc != AEROGRAM_EUNAVAILABLE || !strstr(msg, "503") || !strstr(msg, op))
		printf("\n    %s: rc %d, message '%s'", what, rc, msg);
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, "503"));
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, "ServiceUnavailable"));
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, op));
}

static void test_retry_policy(void)
{
	stats_reset();
	struct aerogram_row_write w = {pk("r"), "sk", NULL, (const uint8_t *)"v", 1, 0};
	expect_unavailable("insert without token", drv->row_insert(store, &w, 1), "InsertBatch");
	expect_requests("row_insert without a token: never repeated", "InsertBatch=1");

	w.token = "AAAAAAAAAAA";
	expect_unavailable("insert with token", drv->row_insert(store, &w, 1), "InsertBatch");
	expect_requests("row_insert with tokens: repeated (retries=" RETRIES ")", "InsertBatch=3");

	struct aerogram_row_write mixed[2] = {
		{pk("r"), "a", "AAAAAAAAAAA", (const uint8_t *)"v", 1, 0},
		{pk("r"), "b", NULL, NULL, 0, 1},
	};
	expect_unavailable("insert, one item without token", drv->row_insert(store, mixed, 2),
	                   "InsertBatch");
	expect_requests("row_insert, one item of two without a token", "InsertBatch=1");

	struct aerogram_row_query q = {.pk = pk("r")};
	struct aerogram_row_result *r = NULL;
	expect_unavailable("read", drv->row_read(store, &q, 1, &r), "ReadBatch");
	CU_ASSERT_PTR_NULL(r);
	expect_requests("row_read", "ReadBatch=3");

	uint64_t deleted = 7;
	/* a delete reads first: the read is retried, then the delete fails */
	expect_unavailable("delete", drv->row_delete(store, &q, 1, &deleted), "ReadBatch");
	expect_requests("row_delete", "ReadBatch=3");
	CU_ASSERT_EQUAL(deleted, 0);

	expect_unavailable("put", drv->blob_put(store, "k", (const uint8_t *)"x", 1, NULL, 0),
	                   "PutObject");
	expect_requests("blob_put", "PutObject=3");

	expect_unavailable("copy", drv->blob_copy(store, "k", "k2"), "CopyObject");
	expect_requests("blob_copy", "CopyObject=3");

	struct aerogram_blob_request br = {"k", 0, 0};
	struct aerogram_blob_result *b = NULL;
	expect_unavailable("get", drv->blob_get(store, &br, 1, &b), "GetObject");
	CU_ASSERT_PTR_NULL(b);
	expect_requests("blob_get", "GetObject=3");

	struct aerogram_blob_list *l = NULL;
	expect_unavailable("list", drv->blob_list(store, "", NULL, 0, &l), "ListObjectsV2");
	expect_requests("blob_list", "ListObjectsV2=3");

	const char *keys[1] = {"k"};
	expect_unavailable("delete blobs", drv->blob_delete(store, keys, 1), "DeleteObjects");
	expect_requests("blob_delete", "DeleteObjects=3");

	struct watch_rec rec;
	watch_rec_init(&rec);
	struct aerogram_watch *wa;
	CU_ASSERT_EQUAL_FATAL(drv->row_watch(store, pk("r"), "sk", "AAAAAAAAAAA", 30000, on_watch,
	                                     &rec, &wa),
	                      0);
	CU_ASSERT_EQUAL(wait_fired(&rec), 1);
	CU_ASSERT_EQUAL(rec.status, AEROGRAM_EUNAVAILABLE);
	drv->row_watch_release(store, wa);
	expect_requests("row_watch (the poll fails)", "PollItem=3");
	printf("\n");
}

/* Nothing listens: every request fails to connect, which proves it never
 * reached a server, so even an insert without a token may be repeated. */
static void test_connection_refused(void)
{
	char err[256];
	struct aerogram_store *s = NULL;
	struct aerogram_config_entry cfg[7] = {{"k2v_endpoint", "http://127.0.0.1:1"},
	                                       {"s3_endpoint", "http://127.0.0.1:1"},
	                                       {"bucket", bucket}, {"access_key_id", key_id},
	                                       {"secret_access_key", secret}, {"retries", "1"},
	                                       {"timeout_ms", "2000"}};
	CU_ASSERT_EQUAL_FATAL(drv->open(NULL, cfg, 7, &s, err, sizeof(err)), 0);
	struct aerogram_row_write w = {"p", "sk", NULL, (const uint8_t *)"v", 1, 0};
	CU_ASSERT_EQUAL(drv->row_insert(s, &w, 1), AEROGRAM_EUNAVAILABLE);
	const char *msg = drv->error_message(s);
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, "InsertBatch"));
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, "2 attempts"));
	drv->close(s);
}

/* ---- following nextStart, against k2v-paging-server ---- */

static void test_follow_next_start(void)
{
	struct aerogram_row_query q[3] = {
		{.pk = "paged"},            /* a, b, c: three rounds */
		{.pk = "short"},            /* x: done in the first round */
		{.pk = "paged", .limit = 1}, /* a caller's limit: one round, more + next_start */
	};
	struct aerogram_row_result *r = NULL;
	CU_ASSERT_EQUAL_FATAL(drv->row_read(store, q, 3, &r), 0);
	CU_ASSERT_EQUAL_FATAL(r->n_pages, 3);
	CU_ASSERT_EQUAL(r->pages[0].n_rows, 3);
	if (r->pages[0].n_rows == 3) {
		CU_ASSERT_STRING_EQUAL(r->pages[0].rows[0].sk, "a");
		CU_ASSERT_STRING_EQUAL(r->pages[0].rows[1].sk, "b");
		CU_ASSERT_STRING_EQUAL(r->pages[0].rows[2].sk, "c");
		CU_ASSERT_EQUAL(r->pages[0].rows[2].n_values, 1);
		CU_ASSERT_EQUAL(r->pages[0].rows[2].values[0].len, 1);
	}
	CU_ASSERT_EQUAL(r->pages[0].more, 0);
	CU_ASSERT_PTR_NULL(r->pages[0].next_start);
	CU_ASSERT_EQUAL(r->pages[1].n_rows, 1);
	CU_ASSERT_EQUAL(r->pages[1].more, 0);
	CU_ASSERT_EQUAL(r->pages[2].n_rows, 1);
	CU_ASSERT_EQUAL(r->pages[2].more, 1);
	CU_ASSERT_STRING_EQUAL(r->pages[2].next_start ? r->pages[2].next_start : "", "b");
	drv->row_result_free(store, r);

	/* Three ReadBatch calls: all three queries, then only the unfinished
	 * unlimited one, from b, then from c. */
	json_t *log = emu_hook("/_log", 0);
	CU_ASSERT_FATAL(json_is_array(log));
	CU_ASSERT_EQUAL(json_array_size(log), 3);
	if (json_array_size(log) == 3) {
		CU_ASSERT_EQUAL(json_array_size(json_array_get(log, 0)), 3);
		json_t *second = json_array_get(log, 1), *third = json_array_get(log, 2);
		CU_ASSERT_EQUAL(json_array_size(second), 1);
		CU_ASSERT_EQUAL(json_array_size(third), 1);
		CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_array_get(second, 0),
		                                                         "start")),
		                       "b");
		CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_array_get(third, 0),
		                                                         "start")),
		                       "c");
		CU_ASSERT_PTR_NULL(json_object_get(json_array_get(second, 0), "limit"));
	}
	json_decref(log);
}

/* ---- replicas (garage-emu --replicas 3 --test-control) ---- */

/* Sets the emulator's cluster controls (JSON); fails the test otherwise. */
static void cluster(const char *json)
{
	json_t *j = emu_hook_body("/_emu/cluster", json);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	json_decref(j);
}

/* Rows of a range read of partition p (hide tombstones unless flags say). */
static size_t range_rows(const char *p, uint32_t flags, uint32_t limit, const char *want_sk, int *found)
{
	struct aerogram_row_query q = {.pk = p, .limit = limit, .flags = flags};
	struct aerogram_row_result *r = NULL;
	*found = 0;
	int rc = drv->row_read(store, &q, 1, &r);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	size_t n = 0;
	/* follow the pages, as a caller does */
	for (;;) {
		const struct aerogram_row_page *pg = &r->pages[0];
		n += pg->n_rows;
		for (size_t i = 0; i < pg->n_rows; i++)
			if (strcmp(pg->rows[i].sk, want_sk) == 0)
				*found = 1;
		if (!pg->more) {
			drv->row_result_free(store, r);
			break;
		}
		char next[256];
		snprintf(next, sizeof(next), "%s", pg->next_start);
		drv->row_result_free(store, r);
		q.start = next;
		CU_ASSERT_EQUAL_FATAL(drv->row_read(store, &q, 1, &r), 0);
	}
	return n;
}

/* A row deleted while one replica lags stays deleted for a read that asks
 * that replica: Garage's replicas filter tombstones before the merge, so
 * the driver asks for tombstones and filters after it. Then the same with
 * pages of two rows and with conflicts only. */
static void test_deleted_row_on_stale_replica(void)
{
	const char *p = pk("stale-delete");
	cluster("{\"write\": [0, 1, 2], \"read\": null, \"hold\": false}");
	const char *sks[] = { "a", "b", "c", "d", "e" };
	for (size_t i = 0; i < 5; i++)
		CU_ASSERT_EQUAL_FATAL(put_row(p, sks[i], "v", NULL), 0);
	cluster("{\"flush\": true}");
	/* the tombstone reaches replicas 0 and 1; 2 keeps the live value */
	cluster("{\"hold\": true, \"write\": [0, 1]}");
	char *t = row_token(p, "c");
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	struct aerogram_row_write w = {p, "c", t, NULL, 0, 1};
	CU_ASSERT_EQUAL(drv->row_insert(store, &w, 1), 0);
	free(t);
	/* reads ask the stale replica and one that has the tombstone */
	cluster("{\"read\": [2, 0]}");
	int found = 0;
	size_t n = range_rows(p, 0, 0, "c", &found);
	CU_ASSERT_EQUAL(n, 4);
	CU_ASSERT_FALSE(found);
	n = range_rows(p, 0, 2, "c", &found);
	CU_ASSERT_EQUAL(n, 4);
	CU_ASSERT_FALSE(found);
	n = range_rows(p, AEROGRAM_QUERY_TOMBSTONES, 0, "c", &found);
	CU_ASSERT_EQUAL(n, 5);
	CU_ASSERT_TRUE(found);
	struct aerogram_row_query one = {.pk = p, .sk = "c"};
	struct aerogram_row_result *r = NULL;
	CU_ASSERT_EQUAL_FATAL(drv->row_read(store, &one, 1, &r), 0);
	CU_ASSERT_EQUAL(r->pages[0].n_rows, 0);
	drv->row_result_free(store, r);
	cluster("{\"hold\": false, \"flush\": true, \"read\": null, \"write\": null}");
	printf("\n    replicas | a row tombstoned on 2 of 3 replicas, read with the stale one: %s",
	       CU_get_number_of_failures() ? "FAILED" : "stays hidden");
}

static const struct agt_test garage_tests[] = {
	{ "configuration errors and the secret file", test_config },
	{ "watch with a token fires on a write", test_watch_token_fires_on_write },
	{ "watch without a token: present row, later row", test_watch_null_token },
	{ "watch timeout fires once with ETIMEDOUT", test_watch_timeout },
	{ "released watch never fires", test_watch_release_before_fire },
	{ "200 watches on one thread", test_many_watches_one_thread },
	{ "requests per ABI operation", test_request_counts },
	{ "parallel blob_get timing", test_parallel_get_timing },
	AGT_END,
};

static const struct agt_test retries_tests[] = {
	{ "attempts per operation when every answer is 503", test_retry_policy },
	{ "connection refused: even a tokenless insert is retried", test_connection_refused },
	AGT_END,
};

static const struct agt_test paging_tests[] = {
	{ "limit 0 follows nextStart for the unfinished queries only", test_follow_next_start },
	AGT_END,
};

static const struct agt_test replicas_tests[] = {
	{ "a row deleted on two replicas stays deleted", test_deleted_row_on_stale_replica },
	AGT_END,
};

/* The suite the optional last argument names; the first, without one. */
static const struct {
	const char *name;
	const struct agt_test *tests;
} suites[] = {
	{ "garage", garage_tests },
	{ "retries", retries_tests },
	{ "paging", paging_tests },
	{ "replicas", replicas_tests },
};

int main(int argc, char **argv)
{
	agt_init(&argc, &argv);
	int pick = argc == 7 ? 0 : -1;
	for (int i = 1; argc == 8 && i < (int)(sizeof(suites) / sizeof(suites[0])); i++)
		if (strcmp(argv[7], suites[i].name) == 0)
			pick = i;
	if (pick < 0) {
		fprintf(stderr, "usage: garage-test DRIVER.so K2V_URL S3_URL BUCKET KEY_ID SECRET "
		                "[retries|paging|replicas]\n");
		return 2;
	}
	int retry_mode = suites[pick].tests == retries_tests;
	k2v_url = argv[2];
	s3_url = argv[3];
	bucket = argv[4];
	key_id = argv[5];
	secret = argv[6];
	snprintf(prefix, sizeof(prefix), "garage-test-%ld-%d", (long)time(NULL), (int)getpid());
	void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr, "garage-test: %s\n", dlerror());
		return 2;
	}
	aerogram_driver_entry_fn entry = (aerogram_driver_entry_fn)dlsym(h,
	                                                                 AEROGRAM_DRIVER_ENTRY_SYMBOL);
	if (!entry) {
		fprintf(stderr, "garage-test: %s\n", dlerror());
		return 2;
	}
	drv = entry();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	struct aerogram_config_entry cfg[6] = {{"k2v_endpoint", k2v_url}, {"s3_endpoint", s3_url},
	                                       {"bucket", bucket}, {"access_key_id", key_id},
	                                       {"secret_access_key", secret}, {"retries", RETRIES}};
	char err[256];
	if (drv->open(NULL, cfg, retry_mode ? 6 : 5, &store, err, sizeof(err)) != 0) {
		fprintf(stderr, "garage-test: open: %s\n", err);
		return 2;
	}
	agt_suite(suites[pick].name, NULL, NULL, suites[pick].tests, NULL);
	int failed = agt_run();
	drv->close(store);
	curl_global_cleanup();
	dlclose(h);
	return failed;
}
