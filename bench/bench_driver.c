/* bench_driver.c - measures the basic operations of any storage driver.
 *
 * Usage: bench-driver [-n COUNT] [-b BYTES] DRIVER.so [key=value...]
 *   -b BYTES  only blob put and get of this size (to choose blob_inline_max)
 *   -w        only watch latency: a write in this process, and a write in
 *             another process (a child running this program) of the same store
 *   -a THREADS [-m own|shared]
 *             only the mail engine's APPEND, from THREADS threads at once,
 *             COUNT appends in all: the body blob (4 to 16 KiB), then a read
 *             of the mailbox's watch row and row_insert_if of the message's
 *             summary row, a log entry and the watch row, conditioned on the
 *             watch row's token (retried on ECONFLICT). -m own: each thread
 *             appends to a mailbox of its own; shared: all to one mailbox.
 *             bench/bench-append runs it under strace to count fsyncs.
 *
 * One thread, one operation at a time, so the numbers are latencies of the
 * driver as the mail engine sees them: single-row insert, single-row read,
 * a range read of 1,000 rows, blob put and get of 4 KiB and 1 MiB. Prints
 * operations per second and mean, median and 99th-percentile latency. It
 * never fails on speed: it only reports.
 */
#include <inttypes.h>
#include <pthread.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <aerogram/driver.h>

#include "sdk/loader/ag_loader.h"

static const struct aerogram_driver *drv;
static struct aerogram_store *store;
static char run[64]; /* a key prefix unique to this run */

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Prints one line of results from n latencies (microseconds). */
static void report(const char *name, double *lat, size_t n)
{
	double total = 0;
	for (size_t i = 0; i < n; i++)
		total += lat[i];
	qsort(lat, n, sizeof(*lat), cmp_double);
	double p50 = lat[n / 2], p99 = lat[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1];
	printf("%-22s %7zu %12.0f %10.1f %10.1f %10.1f\n", name, n, total > 0 ? n / (total / 1e6) : 0,
	       total / (double)n, p50, p99);
	fflush(stdout);
}

static void die(const char *what)
{
	fprintf(stderr, "bench-driver: %s: %s\n", what, drv->error_message(store));
	exit(1);
}


/* One read of one query, its time in *lat; exits unless it found `rows` rows. */
static void timed_read(const struct aerogram_row_query *q, double *lat, size_t rows,
                       const char *what)
{
	struct aerogram_row_result *r;
	double t0 = now_us();
	if (drv->row_read(store, q, 1, &r) != 0)
		die(what);
	*lat = now_us() - t0;
	if (r->pages[0].n_rows != rows) {
		fprintf(stderr, "bench-driver: %s found %zu rows, not %zu\n", what, r->pages[0].n_rows,
		        rows);
		exit(1);
	}
	drv->row_result_free(store, r);
}
static void bench_rows(size_t n, double *lat)
{
	char pk[96], sk[32], value[200];
	memset(value, 'v', sizeof(value));
	snprintf(pk, sizeof(pk), "%s/rows", run);
	for (size_t i = 0; i < n; i++) {
		snprintf(sk, sizeof(sk), "%08zu", i);
		struct aerogram_row_write w = { pk, sk, NULL, (const uint8_t *)value, sizeof(value), 0 };
		double t0 = now_us();
		if (drv->row_insert(store, &w, 1) != 0)
			die("row_insert");
		lat[i] = now_us() - t0;
	}
	report("row insert (200 B)", lat, n);

	unsigned seed = 12345;
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		snprintf(sk, sizeof(sk), "%08zu", (size_t)(seed >> 8) % n);
		struct aerogram_row_query q = { .pk = pk, .sk = sk };
		timed_read(&q, &lat[i], 1, "row_read");
	}
	report("row read (single)", lat, n);
}

static void bench_range(size_t n, double *lat)
{
	enum { ROWS = 1000, BATCH = 250 };
	char pk[96], sk[BATCH][32], value[200];
	memset(value, 'r', sizeof(value));
	snprintf(pk, sizeof(pk), "%s/range", run);
	struct aerogram_row_write w[BATCH];
	for (size_t b = 0; b < ROWS; b += BATCH) {
		for (size_t i = 0; i < BATCH; i++) {
			snprintf(sk[i], sizeof(sk[i]), "%08zu", b + i);
			w[i] = (struct aerogram_row_write){ pk, sk[i], NULL, (const uint8_t *)value,
				                            sizeof(value), 0 };
		}
		if (drv->row_insert(store, w, BATCH) != 0)
			die("row_insert (batch)");
	}
	for (size_t i = 0; i < n; i++) {
		struct aerogram_row_query q = { .pk = pk, .limit = ROWS };
		timed_read(&q, &lat[i], ROWS, "row_read (range)");
	}
	report("range read (1000 rows)", lat, n);
}

static void bench_blobs(const char *label, size_t size, size_t n, double *lat)
{
	uint8_t *data = malloc(size);
	if (data == NULL)
		exit(1);
	for (size_t i = 0; i < size; i++)
		data[i] = (uint8_t)(i * 31 + 7);
	char key[128], name[64];
	struct aerogram_meta meta = { "content-type", "message/rfc822" };
	for (size_t i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "%s/%s/%06zu", run, label, i);
		data[0] = (uint8_t)i;
		double t0 = now_us();
		if (drv->blob_put(store, key, data, size, &meta, 1) != 0)
			die("blob_put");
		lat[i] = now_us() - t0;
	}
	snprintf(name, sizeof(name), "blob put (%s)", label);
	report(name, lat, n);
	for (size_t i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "%s/%s/%06zu", run, label, (i * 7) % n);
		struct aerogram_blob_request rq = { key, 0, 0 };
		struct aerogram_blob_result *r;
		double t0 = now_us();
		if (drv->blob_get(store, &rq, 1, &r) != 0)
			die("blob_get");
		lat[i] = now_us() - t0;
		if (r->blobs[0].status != 0 || r->blobs[0].len != size) {
			fprintf(stderr, "bench-driver: blob %s missing or short\n", key);
			exit(1);
		}
		drv->blob_result_free(store, r);
	}
	snprintf(name, sizeof(name), "blob get (%s)", label);
	report(name, lat, n);
	/* Leave the store as it was: these are benchmark keys. */
	for (size_t i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "%s/%s/%06zu", run, label, i);
		const char *k = key;
		if (drv->blob_delete(store, &k, 1) != 0)
			die("blob_delete");
	}
	free(data);
}

/* ---- watch latency ---- */

struct fired {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int done;
	int status;
	double at_us;
	long long value; /* the writer's CLOCK_REALTIME in microseconds */
};

static double wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void on_fire(void *arg, int status, const struct aerogram_row *row, const char *message)
{
	(void)message;
	struct fired *f = arg;
	pthread_mutex_lock(&f->mu);
	f->at_us = wall_us();
	f->status = status;
	f->value = 0;
	if (row && row->n_values) {
		const struct aerogram_value *v = &row->values[row->n_values - 1];
		char text[32];
		snprintf(text, sizeof(text), "%.*s", (int)v->len, v->data ? (const char *)v->data : "");
		f->value = atoll(text);
	}
	f->done = 1;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->mu);
}

static void write_now(const char *pk)
{
	char value[32];
	snprintf(value, sizeof(value), "%lld", (long long)wall_us());
	struct aerogram_row_write w = { pk, "tick", NULL, (const uint8_t *)value, strlen(value), 0 };
	if (drv->row_insert(store, &w, 1) != 0)
		die("row_insert (watch)");
}

/* Arms a watch on the current token of pk/tick; `local` writes right after
 * arming. Returns the latency in microseconds, or -1 on a timeout. */
static double watch_once(const char *pk, int local)
{
	struct aerogram_row_query q = { .pk = pk, .sk = "tick" };
	struct aerogram_row_result *r;
	if (drv->row_read(store, &q, 1, &r) != 0)
		die("row_read (watch)");
	char token[128] = "";
	if (r->pages[0].n_rows)
		snprintf(token, sizeof(token), "%s", r->pages[0].rows[0].token);
	drv->row_result_free(store, r);
	struct fired f = { .done = 0 };
	pthread_mutex_init(&f.mu, NULL);
	pthread_cond_init(&f.cond, NULL);
	struct aerogram_watch *w;
	if (drv->row_watch(store, pk, "tick", token[0] ? token : NULL, 5000, on_fire, &f, &w) != 0)
		die("row_watch");
	if (local)
		write_now(pk);
	pthread_mutex_lock(&f.mu);
	while (!f.done)
		pthread_cond_wait(&f.cond, &f.mu);
	pthread_mutex_unlock(&f.mu);
	drv->row_watch_release(store, w);
	pthread_mutex_destroy(&f.mu);
	pthread_cond_destroy(&f.cond);
	if (f.status != AEROGRAM_OK)
		return -1;
	return f.at_us - (double)f.value;
}

static void bench_watch(size_t n, double *lat, char **child_argv)
{
	char pk[96];
	snprintf(pk, sizeof(pk), "%s/watch", run);
	for (size_t i = 0; i < n; i++) {
		lat[i] = watch_once(pk, 1);
		if (lat[i] < 0)
			die("watch timed out after a local write");
	}
	report("watch, same process", lat, n);
	/* a store whose every write stays in memory is not another process's */
	if (drv->capabilities & AEROGRAM_CAP_LOCAL_WRITES) {
		printf("%-22s (the driver does not share its store between processes)\n",
		       "watch, other process");
		return;
	}
	/* The child writes n times at random intervals; each write is one
	 * sample here. */
	child_argv[0] = "bench-driver";
	child_argv[1] = "--watch-writer";
	child_argv[2] = pk;
	char count[32];
	snprintf(count, sizeof(count), "%zu", n);
	child_argv[3] = count;
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		execv("/proc/self/exe", child_argv);
		_exit(127);
	}
	size_t got = 0;
	while (got < n) {
		double l = watch_once(pk, 0);
		if (l < 0)
			break; /* the writer is done or died */
		lat[got++] = l;
	}
	int status = 0;
	waitpid(pid, &status, 0);
	if (got == 0)
		die("no write of the other process was seen");
	report("watch, other process", lat, got);
}

/* ---- the engine's APPEND from several threads ---- */

struct appender {
	pthread_t thread;
	int id;
	size_t count;      /* appends to make */
	const char *mbox;  /* the mailbox id */
	double *lat;       /* count latencies, microseconds */
	unsigned long conflicts;
};

static void *appender_main(void *arg)
{
	struct appender *ap = arg;
	uint8_t *body = malloc(16384);
	if (body == NULL)
		exit(1);
	unsigned seed = 7919u * (unsigned)(ap->id + 1);
	char mail_pk[160], index_pk[160], key[256], msgid[64], logsk[64];
	snprintf(mail_pk, sizeof(mail_pk), "%s/mail/%s", run, ap->mbox);
	snprintf(index_pk, sizeof(index_pk), "%s/index/%s", run, ap->mbox);
	char summary[300], entry[96];
	memset(summary, 's', sizeof(summary));
	struct aerogram_meta meta = { "content-type", "message/rfc822" };
	for (size_t i = 0; i < ap->count; i++) {
		seed = seed * 1103515245u + 12345u;
		size_t len = 4096 + (seed >> 8) % (16384 - 4096 + 1);
		for (size_t b = 0; b < len; b += 64)
			body[b] = (uint8_t)(seed >> (b & 15));
		snprintf(msgid, sizeof(msgid), "m%02d-%08zu", ap->id, i);
		snprintf(key, sizeof(key), "%s/%s", mail_pk, msgid);
		double t0 = now_us();
		if (drv->blob_put(store, key, body, len, &meta, 1) != 0)
			die("blob_put (append)");
		for (;;) {
			struct aerogram_row_query q = { .pk = index_pk, .sk = "watch" };
			struct aerogram_row_result *r;
			if (drv->row_read(store, &q, 1, &r) != 0)
				die("row_read (append)");
			char token[AEROGRAM_TOKEN_MAX] = "";
			if (r->pages[0].n_rows)
				snprintf(token, sizeof(token), "%s", r->pages[0].rows[0].token);
			drv->row_result_free(store, r);
			const char *cond = token[0] ? token : NULL;
			snprintf(logsk, sizeof(logsk), "%016.0f-%02d-%08zu", wall_us(), ap->id, i);
			int n = snprintf(entry, sizeof(entry), "add %s", msgid);
			struct aerogram_row_write w[3] = {
				{ mail_pk, msgid, NULL, (const uint8_t *)summary, sizeof(summary), 0 },
				{ index_pk, logsk, NULL, (const uint8_t *)entry, (size_t)n, 0 },
				{ index_pk, "watch", cond, (const uint8_t *)logsk, strlen(logsk), 0 },
			};
			char new_token[AEROGRAM_TOKEN_MAX];
			int rc = drv->row_insert_if(store, index_pk, "watch", cond, w, 3, new_token,
			                            sizeof(new_token));
			if (rc == 0)
				break;
			if (rc != AEROGRAM_ECONFLICT)
				die("row_insert_if (append)");
			ap->conflicts++;
		}
		ap->lat[i] = now_us() - t0;
	}
	free(body);
	return NULL;
}

static void bench_append(size_t n, unsigned threads, int shared)
{
	if (drv->row_insert_if == NULL ||
	    !(drv->capabilities & AEROGRAM_CAP_CONDITIONAL)) {
		fprintf(stderr, "bench-driver: %s has no row_insert_if (AEROGRAM_CAP_CONDITIONAL)\n",
		        drv->name);
		exit(1);
	}
	struct appender *ap = calloc(threads, sizeof(*ap));
	double *lat = calloc(n, sizeof(*lat));
	char (*mbox)[16] = calloc(threads, sizeof(*mbox));
	if (ap == NULL || lat == NULL || mbox == NULL)
		exit(1);
	size_t given = 0;
	for (unsigned t = 0; t < threads; t++) {
		snprintf(mbox[t], sizeof(mbox[t]), "box%02u", shared ? 0 : t);
		ap[t].id = (int)t;
		ap[t].mbox = mbox[t];
		ap[t].count = n / threads + (t < n % threads);
		ap[t].lat = lat + given;
		given += ap[t].count;
	}
	double t0 = now_us();
	for (unsigned t = 0; t < threads; t++)
		if (pthread_create(&ap[t].thread, NULL, appender_main, &ap[t]) != 0)
			exit(1);
	unsigned long conflicts = 0;
	for (unsigned t = 0; t < threads; t++) {
		pthread_join(ap[t].thread, NULL);
		conflicts += ap[t].conflicts;
	}
	double wall = (now_us() - t0) / 1e6;
	char name[64];
	snprintf(name, sizeof(name), "append %ut %s", threads, shared ? "shared" : "own");
	report(name, lat, n);
	/* report()'s ops/s is 1 / mean latency, one thread's view; with
	 * several threads the throughput is the wall-clock one */
	printf("append throughput: threads=%u mailbox=%s: %zu appends in %.2f s = %.0f appends/s, %lu conflicts retried\n",
	       threads, shared ? "shared" : "own", n, wall, (double)n / wall, conflicts);
	free(ap);
	free(lat);
	free(mbox);
}

static void quiet_log(enum aerogram_log_level level, const char *tag, const char *message)
{
	if (level <= AEROGRAM_LOG_WARNING)
		fprintf(stderr, "%s: %s\n", tag ? tag : "host", message);
}

int main(int argc, char **argv)
{
	size_t n = 2000, only_blob = 0;
	int arg = 1, only_watch = 0, shared = 0;
	unsigned append_threads = 0;
	/* The writer half of -w: bench-driver --watch-writer PK COUNT DRIVER.so k=v... */
	const char *writer_pk = NULL;
	if (argc > 4 && strcmp(argv[1], "--watch-writer") == 0) {
		writer_pk = argv[2];
		n = (size_t)strtoul(argv[3], NULL, 10);
		arg = 4;
	}
	if (arg < argc && strcmp(argv[arg], "-w") == 0) {
		only_watch = 1;
		arg++;
	}
	while (arg + 1 < argc && argv[arg][0] == '-' && strchr("nbam", argv[arg][1]) != NULL &&
	       argv[arg][2] == '\0') {
		const char *v = argv[arg + 1];
		switch (argv[arg][1]) {
		case 'n': n = (size_t)strtoul(v, NULL, 10); break;
		case 'b': only_blob = (size_t)strtoul(v, NULL, 10); break;
		case 'a': append_threads = (unsigned)strtoul(v, NULL, 10); break;
		default: shared = strcmp(v, "shared") == 0; break;
		}
		arg += 2;
	}
	if (arg >= argc || n == 0 || (append_threads > 0 && n < append_threads)) {
		fprintf(stderr, "usage: bench-driver [-n COUNT] [-b BYTES | -w | -a THREADS [-m own|shared]] DRIVER.so [key=value...]\n");
		return 2;
	}
	const int driver_arg = arg;
	const char *path = argv[arg++];
	struct aerogram_config_entry cfg[16];
	size_t n_cfg = 0;
	for (; arg < argc && n_cfg < 16; arg++) {
		/* Parse a copy: the arguments are handed on to the -w child as given. */
		char *kv = strdup(argv[arg]);
		char *eq = kv ? strchr(kv, '=') : NULL;
		if (eq == NULL) {
			free(kv);
			fprintf(stderr, "bench-driver: '%s' is not key=value\n", argv[arg]);
			return 2;
		}
		*eq = '\0';
		cfg[n_cfg].key = kv;
		cfg[n_cfg].value = eq + 1;
		n_cfg++;
	}
	ag_driver_set_log(quiet_log);
	struct ag_driver *d;
	char err[512];
	if (ag_driver_load(path, NULL, cfg, n_cfg, &d, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench-driver: %s\n", err);
		return 1;
	}
	drv = ag_driver_store(d)->driver;
	store = ag_driver_store(d)->store;
	if (writer_pk) {
		unsigned seed = (unsigned)getpid();
		usleep(200000);
		for (size_t i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			usleep(60000 + (seed >> 8) % 90000);
			write_now(writer_pk);
		}
		ag_driver_unload(d);
		for (size_t i = 0; i < n_cfg; i++)
			free((char *)cfg[i].key);
		return 0;
	}
	snprintf(run, sizeof(run), "bench-%ld-%d", (long)time(NULL), (int)getpid());

	size_t n_range = n / 20 > 20 ? n / 20 : 20;
	size_t n_4k = n;
	size_t n_1m = n / 40 > 20 ? n / 40 : 20;
	double *lat = malloc(n * sizeof(*lat) + (n_range + n_1m) * sizeof(*lat));
	if (lat == NULL)
		return 1;
	if (append_threads)
		printf("driver %s %s, %zu appends from %u threads\n", drv->name, drv->version, n,
		       append_threads);
	else
		printf("driver %s %s, %zu operations per kind (range: %zu, 1 MiB: %zu)\n", drv->name,
		       drv->version, n, n_range, n_1m);
	printf("%-22s %7s %12s %10s %10s %10s\n", "operation", "count", "ops/s", "mean us", "p50 us",
	       "p99 us");
	if (only_watch) {
		/* The child gets: name, --watch-writer, pk, count, then the driver
		 * path and the configuration as given, unparsed. */
		char **child_argv = calloc((size_t)(argc - driver_arg) + 5, sizeof(char *));
		if (child_argv == NULL)
			return 1;
		for (int i = 0; i < argc - driver_arg; i++)
			child_argv[4 + i] = argv[driver_arg + i];
		bench_watch(n > 50 ? 50 : n, lat, child_argv);
		free(child_argv);
	} else if (append_threads) {
		bench_append(n, append_threads, shared);
	} else if (only_blob) {
		char label[32];
		snprintf(label, sizeof(label), "%zuB", only_blob);
		bench_blobs(label, only_blob, n, lat);
	} else {
		bench_rows(n, lat);
		bench_range(n_range, lat);
		bench_blobs("4KiB", 4096, n_4k, lat);
		bench_blobs("1MiB", 1024 * 1024, n_1m, lat);
	}
	free(lat);
	ag_driver_unload(d);
	for (size_t i = 0; i < n_cfg; i++)
		free((char *)cfg[i].key);
	return 0;
}
