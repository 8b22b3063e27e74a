/* crash_tool.c - the two halves of the crash test of a storage driver.
 *
 *   crash-tool write  DRIVER.so WRITER COUNT key=value...
 *     Appends messages the way the mail engine does: the body blob, then the
 *     summary row, then the log entry, then the mailbox's watch row; prints
 *     "OK <id>" (flushed) after each append the driver acknowledged. It
 *     resumes after the last id its log holds, so a restart after kill -9
 *     never appends an id twice. COUNT 0 runs until killed.
 *
 *   crash-tool write-group DRIVER.so FIRST THREADS ACKDIR key=value...
 *     The same from THREADS threads of one process, for writers FIRST ..
 *     FIRST+THREADS-1, so that the driver groups their commits; each append
 *     writes the summary row, the log entry and the watch row with one
 *     row_insert_if conditioned on the watch row's token (the engine's way
 *     with a driver that has it), retried on ECONFLICT. Each thread appends
 *     "OK <id>" lines to ACKDIR/w<writer>.out itself (one write(2) with
 *     O_APPEND each, so a kill never leaves half a line). Runs until killed.
 *
 *   crash-tool verify DRIVER.so WRITERS ACKDIR key=value...
 *     For each writer w, reads ACKDIR/w<w>.out and checks that every
 *     acknowledged append is present and byte-identical (body, metadata,
 *     summary), exactly once in the log, and that the log holds ids 1..n
 *     without gaps or duplicates. Exit 0 when all holds.
 *
 * Bodies are a pure function of (writer, id), so the verifier needs no copy.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <aerogram/driver.h>

#include "sdk/loader/ag_loader.h"

#define MAILBOX "INBOX"

static const struct aerogram_driver *drv;
static struct aerogram_store *store;
static struct ag_driver *loaded;

/* Body sizes cycle through small, medium and large ones so that both inline
 * and file blobs are written. */
static size_t body_size(unsigned writer, unsigned id)
{
	static const size_t sizes[] = { 300, 2500, 9000, 70000, 180000, 1200 };
	return sizes[(id + writer) % (sizeof(sizes) / sizeof(sizes[0]))] + id % 97;
}

/* The body of message id of a writer: a header block, then bytes from a
 * small xorshift generator seeded by (writer, id). */
static uint8_t *body_make(unsigned writer, unsigned id, size_t *len)
{
	size_t n = body_size(writer, id);
	uint8_t *b = malloc(n);
	if (b == NULL)
		return NULL;
	int h = snprintf((char *)b, n, "From: writer%u@example.org\r\nSubject: message %u\r\n\r\n",
	                 writer, id);
	uint64_t x = ((uint64_t)writer << 32) ^ id ^ 0x9e3779b97f4a7c15ull;
	for (size_t i = (size_t)h; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[i] = (uint8_t)(' ' + x % 94);
	}
	*len = n;
	return b;
}

static uint32_t checksum(const uint8_t *b, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

static void summary_make(unsigned writer, unsigned id, char *buf, size_t len)
{
	size_t n;
	uint8_t *b = body_make(writer, id, &n);
	snprintf(buf, len, "size=%zu sum=%08" PRIx32, n, b ? checksum(b, n) : 0);
	free(b);
}

/* Driver log lines: warnings and errors only. */
static void quiet_log(enum aerogram_log_level level, const char *tag, const char *message)
{
	if (level <= AEROGRAM_LOG_WARNING)
		fprintf(stderr, "%s: %s\n", tag ? tag : "host", message);
}

static int load(const char *path, int argc, char **argv)
{
	ag_driver_set_log(quiet_log);
	struct aerogram_config_entry cfg[16];
	size_t n = 0;
	for (int i = 0; i < argc && n < 16; i++) {
		char *eq = strchr(argv[i], '=');
		if (eq == NULL) {
			fprintf(stderr, "crash-tool: '%s' is not key=value\n", argv[i]);
			return -1;
		}
		*eq = '\0';
		cfg[n].key = argv[i];
		cfg[n].value = eq + 1;
		n++;
	}
	struct ag_driver *d;
	char err[512];
	if (ag_driver_load(path, NULL, cfg, n, &d, err, sizeof(err)) != 0) {
		fprintf(stderr, "crash-tool: %s\n", err);
		return -1;
	}
	loaded = d;
	drv = ag_driver_store(d)->driver;
	store = ag_driver_store(d)->store;
	return 0;
}

/* Calls fn(arg, id) for each log entry of a writer, in key order. */
static int log_scan(unsigned writer, void (*fn)(void *, unsigned, size_t), void *arg)
{
	char pk[64], next[256] = "";
	snprintf(pk, sizeof(pk), "u%u/index/%s", writer, MAILBOX);
	for (;;) {
		struct aerogram_row_query q = { .pk = pk, .prefix = "log-", .start = next, .limit = 500 };
		struct aerogram_row_result *r;
		int rc = drv->row_read(store, &q, 1, &r);
		if (rc != 0) {
			fprintf(stderr, "crash-tool: reading the log: %s\n", drv->error_message(store));
			return -1;
		}
		const struct aerogram_row_page *p = &r->pages[0];
		for (size_t i = 0; i < p->n_rows; i++) {
			const struct aerogram_row *row = &p->rows[i];
			for (size_t v = 0; v < row->n_values; v++) {
				unsigned id;
				char text[64];
				if (row->values[v].tombstone)
					continue;
				snprintf(text, sizeof(text), "%.*s", (int)row->values[v].len,
				         (const char *)row->values[v].data);
				if (sscanf(text, "append %u", &id) == 1)
					fn(arg, id, row->n_values);
			}
		}
		int more = p->more;
		if (more)
			snprintf(next, sizeof(next), "%s", p->next_start);
		drv->row_result_free(store, r);
		if (!more)
			return 0;
	}
}

static void max_id(void *arg, unsigned id, size_t n_values)
{
	(void)n_values;
	unsigned *m = arg;
	if (id > *m)
		*m = id;
}

/* The first step of an append: the body blob, with its internal date. */
static int put_body(unsigned writer, unsigned id)
{
	size_t len;
	uint8_t *body = body_make(writer, id, &len);
	if (body == NULL)
		return -1;
	char key[128], date[32];
	snprintf(key, sizeof(key), "u%u/mail/%s/%08u", writer, MAILBOX, id);
	snprintf(date, sizeof(date), "%u", id);
	struct aerogram_meta meta = { "internal-date", date };
	int rc = drv->blob_put(store, key, body, len, &meta, 1);
	free(body);
	return rc;
}

/* The token of the watch row of pk, "" when there is none yet. */
static int watch_token(const char *pk, char *token, size_t len)
{
	struct aerogram_row_query q = { .pk = pk, .sk = "watch" };
	struct aerogram_row_result *r;
	int rc = drv->row_read(store, &q, 1, &r);
	if (rc != 0)
		return rc;
	token[0] = '\0';
	if (r->pages[0].n_rows)
		snprintf(token, len, "%s", r->pages[0].rows[0].token);
	drv->row_result_free(store, r);
	return 0;
}

/* A log entry's sort key: the time now, then the append's id. */
static void log_sk(char *out, size_t len, unsigned id)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(out, len, "log-%016" PRIx64 "-%08u", (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec, id);
}

static int append_failed(unsigned writer, unsigned id)
{
	fprintf(stderr, "crash-tool: writer %u, append %u: %s\n", writer, id, drv->error_message(store));
	return -1;
}

static int append(unsigned writer, unsigned id)
{
	char pk[64], sk[64], summary[64], entry[64];
	int rc = put_body(writer, id);
	if (rc != 0)
		return append_failed(writer, id);

	snprintf(pk, sizeof(pk), "u%u/mail/%s", writer, MAILBOX);
	snprintf(sk, sizeof(sk), "%08u", id);
	summary_make(writer, id, summary, sizeof(summary));
	struct aerogram_row_write w = { pk, sk, NULL, (const uint8_t *)summary, strlen(summary), 0 };
	if ((rc = drv->row_insert(store, &w, 1)) != 0)
		return append_failed(writer, id);

	snprintf(pk, sizeof(pk), "u%u/index/%s", writer, MAILBOX);
	log_sk(sk, sizeof(sk), id);
	snprintf(entry, sizeof(entry), "append %u", id);
	w = (struct aerogram_row_write){ pk, sk, NULL, (const uint8_t *)entry, strlen(entry), 0 };
	if ((rc = drv->row_insert(store, &w, 1)) != 0)
		return append_failed(writer, id);

	/* The watch row: read, then rewrite with its token. */
	char token[AEROGRAM_TOKEN_MAX];
	if ((rc = watch_token(pk, token, sizeof(token))) != 0)
		return append_failed(writer, id);
	w = (struct aerogram_row_write){ pk, "watch", token[0] ? token : NULL,
		                         (const uint8_t *)entry, strlen(entry), 0 };
	if ((rc = drv->row_insert(store, &w, 1)) != 0)
		return append_failed(writer, id);
	return 0;
}

/* An append as the engine makes it with a 1.1 driver: the body blob, then
 * summary, log entry and watch row in one conditional batch on the watch
 * row's token. */
static int append_conditional(unsigned writer, unsigned id)
{
	char mail_pk[64], index_pk[64], sk[64], logsk[64], summary[64], entry[64];
	int rc = put_body(writer, id);
	if (rc != 0)
		return append_failed(writer, id);
	snprintf(mail_pk, sizeof(mail_pk), "u%u/mail/%s", writer, MAILBOX);
	snprintf(index_pk, sizeof(index_pk), "u%u/index/%s", writer, MAILBOX);
	snprintf(sk, sizeof(sk), "%08u", id);
	summary_make(writer, id, summary, sizeof(summary));
	snprintf(entry, sizeof(entry), "append %u", id);
	for (;;) {
		char token[AEROGRAM_TOKEN_MAX];
		if ((rc = watch_token(index_pk, token, sizeof(token))) != 0)
			return append_failed(writer, id);
		const char *cond = token[0] ? token : NULL;
		log_sk(logsk, sizeof(logsk), id);
		struct aerogram_row_write w[3] = {
			{ mail_pk, sk, NULL, (const uint8_t *)summary, strlen(summary), 0 },
			{ index_pk, logsk, NULL, (const uint8_t *)entry, strlen(entry), 0 },
			{ index_pk, "watch", cond, (const uint8_t *)entry, strlen(entry), 0 },
		};
		rc = drv->row_insert_if(store, index_pk, "watch", cond, w, 3, NULL, 0);
		if (rc == 0)
			return 0;
		if (rc != AEROGRAM_ECONFLICT) /* a conflict: somebody wrote the watch row */
			return append_failed(writer, id);
	}
}

struct group_writer {
	unsigned writer;
	const char *ackdir;
	int failed;
	pthread_t thread;
};

static void *group_writer_main(void *arg)
{
	struct group_writer *gw = arg;
	char path[512];
	snprintf(path, sizeof(path), "%s/w%u.out", gw->ackdir, gw->writer);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	unsigned last = 0;
	if (fd < 0 || log_scan(gw->writer, max_id, &last) != 0) {
		gw->failed = 1;
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	for (unsigned id = last + 1;; id++) {
		if (append_conditional(gw->writer, id) != 0) {
			gw->failed = 1;
			break;
		}
		char line[32];
		int n = snprintf(line, sizeof(line), "OK %u\n", id);
		if (write(fd, line, (size_t)n) != n) {
			gw->failed = 1;
			break;
		}
	}
	close(fd);
	return NULL;
}

static int cmd_write_group(unsigned first, unsigned threads, const char *ackdir)
{
	if (drv->row_insert_if == NULL ||
	    !(drv->capabilities & AEROGRAM_CAP_CONDITIONAL)) {
		fprintf(stderr, "crash-tool: %s has no row_insert_if\n", drv->name);
		return 1;
	}
	struct group_writer *gw = calloc(threads, sizeof(*gw));
	if (gw == NULL)
		return 1;
	unsigned started = 0;
	for (; started < threads; started++) {
		gw[started].writer = first + started;
		gw[started].ackdir = ackdir;
		if (pthread_create(&gw[started].thread, NULL, group_writer_main, &gw[started]) != 0)
			break;
	}
	int failed = started < threads;
	for (unsigned t = 0; t < started; t++) {
		pthread_join(gw[t].thread, NULL);
		failed |= gw[t].failed;
	}
	free(gw);
	return failed ? 1 : 0;
}

static int cmd_write(unsigned writer, unsigned count)
{
	unsigned last = 0;
	if (log_scan(writer, max_id, &last) != 0)
		return 1;
	for (unsigned id = last + 1; count == 0 || id <= count; id++) {
		if (append(writer, id) != 0)
			return 1;
		printf("OK %u\n", id);
		fflush(stdout);
	}
	return 0;
}

struct log_count {
	unsigned *seen;   /* occurrences per id */
	size_t cap;
	unsigned max;
	int multi_value;  /* a log row with more than one value */
};

static void count_id(void *arg, unsigned id, size_t n_values)
{
	struct log_count *c = arg;
	if (n_values != 1)
		c->multi_value++;
	if (id >= c->cap) {
		size_t cap = (id + 1) * 2;
		unsigned *n = realloc(c->seen, cap * sizeof(*n));
		if (n == NULL)
			abort();
		memset(n + c->cap, 0, (cap - c->cap) * sizeof(*n));
		c->seen = n;
		c->cap = cap;
	}
	c->seen[id]++;
	if (id > c->max)
		c->max = id;
}

/* Checks one acknowledged append; returns the number of problems. */
static int check_append(unsigned writer, unsigned id)
{
	int bad = 0;
	size_t len;
	uint8_t *body = body_make(writer, id, &len);
	char key[128], pk[64], sk[64], summary[64];
	snprintf(key, sizeof(key), "u%u/mail/%s/%08u", writer, MAILBOX, id);
	struct aerogram_blob_request rq = { key, 0, 0 };
	struct aerogram_blob_result *br;
	if (drv->blob_get(store, &rq, 1, &br) != 0) {
		fprintf(stderr, "verify: blob_get %s: %s\n", key, drv->error_message(store));
		free(body);
		return 1;
	}
	const struct aerogram_blob *b = &br->blobs[0];
	if (b->status != 0) {
		fprintf(stderr, "verify: writer %u id %u: body missing (status %d)\n", writer, id, b->status);
		bad++;
	} else if (b->len != len || memcmp(b->data, body, len) != 0) {
		fprintf(stderr, "verify: writer %u id %u: body differs (%zu vs %zu bytes)\n", writer, id,
		        b->len, len);
		bad++;
	} else if (b->n_meta != 1 || strcmp(b->meta[0].name, "internal-date") != 0 ||
	           (unsigned)atoi(b->meta[0].value) != id) {
		fprintf(stderr, "verify: writer %u id %u: metadata differs\n", writer, id);
		bad++;
	}
	drv->blob_result_free(store, br);
	free(body);

	snprintf(pk, sizeof(pk), "u%u/mail/%s", writer, MAILBOX);
	snprintf(sk, sizeof(sk), "%08u", id);
	summary_make(writer, id, summary, sizeof(summary));
	struct aerogram_row_query q = { .pk = pk, .sk = sk };
	struct aerogram_row_result *r;
	if (drv->row_read(store, &q, 1, &r) != 0) {
		fprintf(stderr, "verify: row_read: %s\n", drv->error_message(store));
		return bad + 1;
	}
	const struct aerogram_row_page *p = &r->pages[0];
	if (p->n_rows != 1 || p->rows[0].n_values != 1 || p->rows[0].values[0].tombstone ||
	    p->rows[0].values[0].len != strlen(summary) ||
	    memcmp(p->rows[0].values[0].data, summary, strlen(summary)) != 0) {
		fprintf(stderr, "verify: writer %u id %u: summary missing, duplicated or different\n",
		        writer, id);
		bad++;
	}
	drv->row_result_free(store, r);
	return bad;
}

static int cmd_verify(unsigned writers, const char *ackdir)
{
	int bad = 0;
	unsigned long acked_total = 0;
	for (unsigned w = 1; w <= writers; w++) {
		struct log_count c = { 0 };
		if (log_scan(w, count_id, &c) != 0)
			return 1;
		for (unsigned id = 1; id <= c.max; id++) {
			if (id >= c.cap || c.seen[id] != 1) {
				fprintf(stderr, "verify: writer %u: id %u is %u times in the log\n", w, id,
				        id < c.cap ? c.seen[id] : 0);
				bad++;
			}
		}
		if (c.multi_value) {
			fprintf(stderr, "verify: writer %u: %d log rows with several values\n", w,
			        c.multi_value);
			bad++;
		}
		char path[512];
		snprintf(path, sizeof(path), "%s/w%u.out", ackdir, w);
		FILE *f = fopen(path, "r");
		if (f == NULL) {
			fprintf(stderr, "verify: %s: %s\n", path, strerror(errno));
			return 1;
		}
		char line[128];
		unsigned acked = 0, last = 0;
		while (fgets(line, sizeof(line), f)) {
			unsigned id;
			if (sscanf(line, "OK %u", &id) != 1 || strchr(line, '\n') == NULL)
				continue; /* a line cut by kill -9 acknowledged nothing */
			acked++;
			if (id > last)
				last = id;
			if (id > c.max || c.seen[id] != 1) {
				fprintf(stderr, "verify: writer %u: acknowledged id %u not in the log once\n", w, id);
				bad++;
			}
			bad += check_append(w, id);
		}
		fclose(f);
		printf("writer %u: %u appends acknowledged, %u in the log\n", w, acked, c.max);
		acked_total += acked;
		free(c.seen);
	}
	printf("verify: %lu acknowledged appends checked, %d problems\n", acked_total, bad);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	int group = argc >= 6 && strcmp(argv[1], "write-group") == 0;
	if (!group && (argc < 5 || (strcmp(argv[1], "write") != 0 && strcmp(argv[1], "verify") != 0))) {
		fprintf(stderr, "usage: crash-tool write DRIVER.so WRITER COUNT key=value...\n"
		                "       crash-tool write-group DRIVER.so FIRST THREADS ACKDIR key=value...\n"
		                "       crash-tool verify DRIVER.so WRITERS ACKDIR key=value...\n");
		return 2;
	}
	int first_config = group ? 6 : 5;
	if (load(argv[2], argc - first_config, argv + first_config) != 0)
		return 1;
	int rc;
	if (group)
		rc = cmd_write_group((unsigned)atoi(argv[3]), (unsigned)atoi(argv[4]), argv[5]);
	else if (strcmp(argv[1], "write") == 0)
		rc = cmd_write((unsigned)atoi(argv[3]), (unsigned)atoi(argv[4]));
	else
		rc = cmd_verify((unsigned)atoi(argv[3]), argv[4]);
	ag_driver_unload(loaded);
	return rc;
}
