/* bench_driver.c - measures the basic operations of any storage driver.
 *
 * Usage: bench-driver [-n COUNT] [-b BYTES] DRIVER.so [key=value...]
 *   -b BYTES  only blob put and get of this size (to choose blob_inline_max)
 *
 * One thread, one operation at a time, so the numbers are latencies of the
 * driver as the mail engine sees them: single-row insert, single-row read,
 * a range read of 1,000 rows, blob put and get of 4 KiB and 1 MiB. Prints
 * operations per second and mean, median and 99th-percentile latency. It
 * never fails on speed: it only reports.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <aerogram/driver.h>

#include "host/driver_loader.h"

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
		struct aerogram_row_result *r;
		double t0 = now_us();
		if (drv->row_read(store, &q, 1, &r) != 0)
			die("row_read");
		lat[i] = now_us() - t0;
		if (r->pages[0].n_rows != 1) {
			fprintf(stderr, "bench-driver: row %s missing\n", sk);
			exit(1);
		}
		drv->row_result_free(store, r);
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
		struct aerogram_row_result *r;
		double t0 = now_us();
		if (drv->row_read(store, &q, 1, &r) != 0)
			die("row_read (range)");
		lat[i] = now_us() - t0;
		if (r->pages[0].n_rows != ROWS) {
			fprintf(stderr, "bench-driver: range read %zu rows, not %d\n", r->pages[0].n_rows, ROWS);
			exit(1);
		}
		drv->row_result_free(store, r);
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

static void quiet_log(enum aerogram_log_level level, const char *tag, const char *message)
{
	if (level <= AEROGRAM_LOG_WARNING)
		fprintf(stderr, "%s: %s\n", tag ? tag : "host", message);
}

int main(int argc, char **argv)
{
	size_t n = 2000, only_blob = 0;
	int arg = 1;
	while (arg + 1 < argc && (strcmp(argv[arg], "-n") == 0 || strcmp(argv[arg], "-b") == 0)) {
		size_t v = (size_t)strtoul(argv[arg + 1], NULL, 10);
		if (argv[arg][1] == 'n')
			n = v;
		else
			only_blob = v;
		arg += 2;
	}
	if (arg >= argc || n == 0) {
		fprintf(stderr, "usage: bench-driver [-n COUNT] [-b BYTES] DRIVER.so [key=value...]\n");
		return 2;
	}
	const char *path = argv[arg++];
	struct aerogram_config_entry cfg[16];
	size_t n_cfg = 0;
	for (; arg < argc && n_cfg < 16; arg++) {
		char *eq = strchr(argv[arg], '=');
		if (eq == NULL) {
			fprintf(stderr, "bench-driver: '%s' is not key=value\n", argv[arg]);
			return 2;
		}
		*eq = '\0';
		cfg[n_cfg].key = argv[arg];
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
	snprintf(run, sizeof(run), "bench-%ld-%d", (long)time(NULL), (int)getpid());

	size_t n_range = n / 20 > 20 ? n / 20 : 20;
	size_t n_4k = n;
	size_t n_1m = n / 40 > 20 ? n / 40 : 20;
	double *lat = malloc(n * sizeof(*lat) + (n_range + n_1m) * sizeof(*lat));
	if (lat == NULL)
		return 1;
	printf("driver %s %s, %zu operations per kind (range: %zu, 1 MiB: %zu)\n", drv->name,
	       drv->version, n, n_range, n_1m);
	printf("%-22s %7s %12s %10s %10s %10s\n", "operation", "count", "ops/s", "mean us", "p50 us",
	       "p99 us");
	if (only_blob) {
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
	return 0;
}
