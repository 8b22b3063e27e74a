/* metrics.c - the daemon's counters and their /metrics page (metrics.h).
 *
 * Names follow Prometheus' conventions: counters end in _total, durations
 * are histograms in seconds, bytes in bytes. Each shard has one writer (its
 * thread), so a count is a relaxed load and a relaxed store, not a locked
 * read-modify-write; the scrape, on the root loop, reads with relaxed loads
 * and may see a command counted but its duration not yet: each series is
 * monotonic, which is all Prometheus needs. */
#include "host/metrics.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "config.h"
#include "host/commands.h"
#include "host/log.h"
#include "host/mail/mail.h"
#include "host/server.h"
#include "host/workers.h"

int ag_metrics_on;

/* Histogram bounds in microseconds: 0.5 ms to 10 s. */
static const uint64_t bounds_us[] = { 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000,
	                              250000, 500000, 1000000, 2500000, 5000000, 10000000 };
#define N_BOUNDS (sizeof(bounds_us) / sizeof(bounds_us[0]))

/* Storage calls by operation: the engine's storage layer tells each one
 * (mail.h, store_call). */
#define OP__COUNT MAIL_STORE__COUNT
/* The ABI's error codes, -1 to -9 (driver.h); anything else is "other". */
#define N_CODES 10
static const char *const code_names[N_CODES] = {
	"other", "notfound", "conflict", "unavailable", "invalid", "perm", "toobig", "internal", "notsup", "timedout",
};
static const char *const result_names[AG_RESULT__COUNT] = { "OK", "NO", "BAD", "none" };
static const char *const state_names[AG_MSTATE__COUNT] = { "not_authenticated", "authenticated", "selected",
	                                                   "logout" };

#define N_CMDS (IMAP_CMD__COUNT * 2) /* kind * 2 + uid */

typedef _Atomic uint64_t counter;

struct hist {
	counter buckets[N_BOUNDS + 1]; /* per bucket, not cumulative; the last is +Inf */
	counter sum_us;
};

struct shard {
	counter commands[N_CMDS][AG_RESULT__COUNT];
	struct hist command_time[N_CMDS];
	counter storage_calls[OP__COUNT];
	struct hist storage_time[OP__COUNT];
	counter storage_errors[OP__COUNT][N_CODES];
	_Atomic int64_t connections[AG_MSTATE__COUNT]; /* this thread's share of the gauge (+/-) */
	counter connections_total;
	counter bytes_in, bytes_out;
	counter malformed;
	counter lmtp_ok, lmtp_failed;
	struct shard *next;
};

static pthread_mutex_t shards_lock = PTHREAD_MUTEX_INITIALIZER;
static struct shard *shards;
static _Thread_local struct shard *mine;

static struct shard *my_shard(void)
{
	if (mine != NULL)
		return mine;
	struct shard *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	pthread_mutex_lock(&shards_lock);
	s->next = shards;
	shards = s;
	pthread_mutex_unlock(&shards_lock);
	mine = s;
	return s;
}

/* One writer per shard: no locked instruction needed. */
static inline void add(counter *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
}

static inline uint64_t get(counter *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static uint64_t since_us(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	int64_t us = (int64_t)(t1.tv_sec - t0->tv_sec) * 1000000 + (t1.tv_nsec - t0->tv_nsec) / 1000;
	return us > 0 ? (uint64_t)us : 0;
}

static void observe(struct hist *h, uint64_t us)
{
	size_t i = 0;
	while (i < N_BOUNDS && us > bounds_us[i])
		i++;
	add(&h->buckets[i], 1);
	add(&h->sum_us, us);
}

void ag_metrics_enable(void)
{
	ag_metrics_on = 1;
}

void ag_metrics_command(enum imap_cmd_kind kind, int uid, enum ag_metrics_result result,
                        const struct timespec *started)
{
	struct shard *s;
	if (!ag_metrics_on || (unsigned)kind >= IMAP_CMD__COUNT || (s = my_shard()) == NULL)
		return;
	size_t i = (size_t)kind * 2 + (uid ? 1 : 0);
	add(&s->commands[i][result], 1);
	observe(&s->command_time[i], since_us(started));
}

int ag_metrics_state_index(unsigned state_bit)
{
	switch (state_bit) {
	case 1: return AG_MSTATE_NOT_AUTH;
	case 2: return AG_MSTATE_AUTH;
	case 4: return AG_MSTATE_SELECTED;
	default: return AG_MSTATE_LOGOUT;
	}
}

void ag_metrics_state(int from, int to)
{
	struct shard *s;
	if (!ag_metrics_on || from == to || (s = my_shard()) == NULL)
		return;
	if (from >= 0 && from < AG_MSTATE__COUNT)
		atomic_store_explicit(&s->connections[from],
		                      atomic_load_explicit(&s->connections[from], memory_order_relaxed) - 1,
		                      memory_order_relaxed);
	if (to >= 0 && to < AG_MSTATE__COUNT)
		atomic_store_explicit(&s->connections[to],
		                      atomic_load_explicit(&s->connections[to], memory_order_relaxed) + 1,
		                      memory_order_relaxed);
	if (from < 0)
		add(&s->connections_total, 1);
}

void ag_metrics_bytes(uint64_t in, uint64_t out)
{
	struct shard *s;
	if (!ag_metrics_on || (s = my_shard()) == NULL)
		return;
	if (in)
		add(&s->bytes_in, in);
	if (out)
		add(&s->bytes_out, out);
}

void ag_metrics_malformed(void)
{
	struct shard *s;
	if (!ag_metrics_on || (s = my_shard()) == NULL)
		return;
	add(&s->malformed, 1);
}

void ag_metrics_lmtp(int ok)
{
	struct shard *s;
	if (!ag_metrics_on || (s = my_shard()) == NULL)
		return;
	add(ok ? &s->lmtp_ok : &s->lmtp_failed, 1);
}

/* ------------------------------------------------------------- storage calls */

static int storage_measured; /* the engine was given storage_done */

static void storage_done(void *arg, enum mail_store_op op, int rc, uint64_t us)
{
	(void)arg;
	struct shard *s = my_shard();
	if (s == NULL || (unsigned)op >= OP__COUNT)
		return;
	add(&s->storage_calls[op], 1);
	observe(&s->storage_time[op], us);
	if (rc < 0)
		add(&s->storage_errors[op][rc >= -(N_CODES - 1) ? -rc : 0], 1);
}

void ag_metrics_engine_options(struct mail_engine_options *opt)
{
	opt->store_call = storage_done;
	opt->store_call_arg = NULL;
	storage_measured = 1;
}

/* ------------------------------------------------------------------- /metrics */

static struct evhttp *http;

static void sum_hist(struct hist *out, struct hist *h)
{
	for (size_t b = 0; b <= N_BOUNDS; b++)
		out->buckets[b] += get(&h->buckets[b]);
	out->sum_us += get(&h->sum_us);
}

static void print_hist(struct evbuffer *o, const char *name, const char *label, const char *value,
                       const struct hist *h)
{
	uint64_t cum = 0;
	for (size_t b = 0; b < N_BOUNDS; b++) {
		cum += h->buckets[b];
		evbuffer_add_printf(o, "%s_bucket{%s=\"%s\",le=\"%g\"} %llu\n", name, label, value,
		                    (double)bounds_us[b] / 1e6, (unsigned long long)cum);
	}
	cum += h->buckets[N_BOUNDS];
	evbuffer_add_printf(o, "%s_bucket{%s=\"%s\",le=\"+Inf\"} %llu\n", name, label, value, (unsigned long long)cum);
	evbuffer_add_printf(o, "%s_sum{%s=\"%s\"} %.6f\n", name, label, value, (double)h->sum_us / 1e6);
	evbuffer_add_printf(o, "%s_count{%s=\"%s\"} %llu\n", name, label, value, (unsigned long long)cum);
}

static void command_name(size_t i, char *out, size_t outlen)
{
	const struct ag_command *c = ag_command_find((enum imap_cmd_kind)(i / 2));
	snprintf(out, outlen, "%s%s", i % 2 ? "UID " : "", c != NULL ? c->name : "?");
}

static void render(struct ag_server *root, struct evbuffer *o)
{
	/* Totals over the shards: a shard of their own, outside the list,
	 * zeroed, then summed (nobody else touches it). */
	struct shard *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return;
	pthread_mutex_lock(&shards_lock);
	for (struct shard *s = shards; s != NULL; s = s->next) {
		for (size_t i = 0; i < N_CMDS; i++) {
			for (size_t r = 0; r < AG_RESULT__COUNT; r++)
				t->commands[i][r] += get(&s->commands[i][r]);
			sum_hist(&t->command_time[i], &s->command_time[i]);
		}
		for (size_t op = 0; op < OP__COUNT; op++) {
			t->storage_calls[op] += get(&s->storage_calls[op]);
			sum_hist(&t->storage_time[op], &s->storage_time[op]);
			for (size_t c = 0; c < N_CODES; c++)
				t->storage_errors[op][c] += get(&s->storage_errors[op][c]);
		}
		for (size_t st = 0; st < AG_MSTATE__COUNT; st++)
			t->connections[st] += atomic_load_explicit(&s->connections[st], memory_order_relaxed);
		t->connections_total += get(&s->connections_total);
		t->bytes_in += get(&s->bytes_in);
		t->malformed += get(&s->malformed);
		t->bytes_out += get(&s->bytes_out);
		t->lmtp_ok += get(&s->lmtp_ok);
		t->lmtp_failed += get(&s->lmtp_failed);
	}
	pthread_mutex_unlock(&shards_lock);

	evbuffer_add_printf(o, "# HELP aerogram_build_info The running aerogramd's version.\n"
	                       "# TYPE aerogram_build_info gauge\n"
	                       "aerogram_build_info{version=\"%s\"} 1\n", AEROGRAM_VERSION);

	evbuffer_add_printf(o, "# HELP aerogram_connections IMAP connections open now, by session state.\n"
	                       "# TYPE aerogram_connections gauge\n");
	for (size_t st = 0; st < AG_MSTATE__COUNT; st++)
		evbuffer_add_printf(o, "aerogram_connections{state=\"%s\"} %lld\n", state_names[st],
		                    (long long)(t->connections[st] > 0 ? t->connections[st] : 0));
	evbuffer_add_printf(o, "# HELP aerogram_connections_accepted_total IMAP connections accepted.\n"
	                       "# TYPE aerogram_connections_accepted_total counter\n"
	                       "aerogram_connections_accepted_total %llu\n",
	                    (unsigned long long)t->connections_total);

	char name[64];
	evbuffer_add_printf(o, "# HELP aerogram_imap_commands_total IMAP commands answered, by command and result.\n"
	                       "# TYPE aerogram_imap_commands_total counter\n");
	for (size_t i = 0; i < N_CMDS; i++) {
		uint64_t any = 0;
		for (size_t r = 0; r < AG_RESULT__COUNT; r++)
			any += t->commands[i][r];
		if (any == 0)
			continue;
		command_name(i, name, sizeof(name));
		for (size_t r = 0; r < AG_RESULT__COUNT; r++)
			evbuffer_add_printf(o, "aerogram_imap_commands_total{command=\"%s\",result=\"%s\"} %llu\n", name,
			                    result_names[r], (unsigned long long)t->commands[i][r]);
	}
	evbuffer_add_printf(o, "# HELP aerogram_imap_malformed_commands_total Command lines the parser refused "
	                       "with BAD before they had a command name.\n"
	                       "# TYPE aerogram_imap_malformed_commands_total counter\n"
	                       "aerogram_imap_malformed_commands_total %llu\n", (unsigned long long)t->malformed);
	evbuffer_add_printf(o, "# HELP aerogram_imap_command_duration_seconds Time from a command's last byte to its "
	                       "tagged response.\n# TYPE aerogram_imap_command_duration_seconds histogram\n");
	for (size_t i = 0; i < N_CMDS; i++) {
		uint64_t any = 0;
		for (size_t b = 0; b <= N_BOUNDS; b++)
			any += t->command_time[i].buckets[b];
		if (any == 0)
			continue;
		command_name(i, name, sizeof(name));
		print_hist(o, "aerogram_imap_command_duration_seconds", "command", name, &t->command_time[i]);
	}

	evbuffer_add_printf(o, "# HELP aerogram_storage_calls_total Calls to the storage driver, by operation.\n"
	                       "# TYPE aerogram_storage_calls_total counter\n");
	for (size_t op = 0; op < OP__COUNT; op++)
		if (storage_measured)
			evbuffer_add_printf(o, "aerogram_storage_calls_total{operation=\"%s\"} %llu\n", mail_store_op_name((enum mail_store_op)op),
			                    (unsigned long long)t->storage_calls[op]);
	evbuffer_add_printf(o, "# HELP aerogram_storage_call_duration_seconds Time of a storage driver call.\n"
	                       "# TYPE aerogram_storage_call_duration_seconds histogram\n");
	for (size_t op = 0; op < OP__COUNT; op++)
		if (t->storage_calls[op] > 0)
			print_hist(o, "aerogram_storage_call_duration_seconds", "operation", mail_store_op_name((enum mail_store_op)op),
			           &t->storage_time[op]);
	evbuffer_add_printf(o, "# HELP aerogram_storage_errors_total Storage driver calls that failed, by operation "
	                       "and error code (notfound and conflict are often expected answers).\n"
	                       "# TYPE aerogram_storage_errors_total counter\n");
	for (size_t op = 0; op < OP__COUNT; op++)
		for (size_t c = 0; c < N_CODES; c++)
			if (t->storage_errors[op][c] > 0)
				evbuffer_add_printf(o, "aerogram_storage_errors_total{operation=\"%s\",code=\"%s\"} %llu\n",
				                    mail_store_op_name((enum mail_store_op)op), code_names[c], (unsigned long long)t->storage_errors[op][c]);

	evbuffer_add_printf(o, "# HELP aerogram_imap_received_bytes_total Bytes of IMAP commands read from clients "
	                       "(after TLS).\n# TYPE aerogram_imap_received_bytes_total counter\n"
	                       "aerogram_imap_received_bytes_total %llu\n", (unsigned long long)t->bytes_in);
	evbuffer_add_printf(o, "# HELP aerogram_imap_sent_bytes_total Bytes of IMAP responses written to clients "
	                       "(before TLS).\n# TYPE aerogram_imap_sent_bytes_total counter\n"
	                       "aerogram_imap_sent_bytes_total %llu\n", (unsigned long long)t->bytes_out);
	evbuffer_add_printf(o, "# HELP aerogram_lmtp_deliveries_total LMTP recipients, by result.\n"
	                       "# TYPE aerogram_lmtp_deliveries_total counter\n"
	                       "aerogram_lmtp_deliveries_total{result=\"delivered\"} %llu\n"
	                       "aerogram_lmtp_deliveries_total{result=\"failed\"} %llu\n",
	                    (unsigned long long)t->lmtp_ok, (unsigned long long)t->lmtp_failed);
	free(t);

	size_t in_use = 0, cached = 0;
	if (root->engine != NULL)
		mail_engine_mailbox_counts(root->engine, &in_use, &cached);
	evbuffer_add_printf(o, "# HELP aerogram_mailboxes_in_memory Mailbox states held in memory: in use by a "
	                       "session, or closed and cached.\n# TYPE aerogram_mailboxes_in_memory gauge\n"
	                       "aerogram_mailboxes_in_memory{state=\"in_use\"} %zu\n"
	                       "aerogram_mailboxes_in_memory{state=\"cached\"} %zu\n", in_use, cached);
	unsigned queued = 0;
	for (unsigned i = 0; i < root->n_loops; i++)
		if (root->loops[i]->workers != NULL)
			queued += ag_workers_queued(root->loops[i]->workers);
	evbuffer_add_printf(o, "# HELP aerogram_worker_queue_depth Storage jobs waiting for a worker thread, over "
	                       "every event loop.\n# TYPE aerogram_worker_queue_depth gauge\n"
	                       "aerogram_worker_queue_depth %u\n", queued);
}

static void on_metrics(struct evhttp_request *req, void *arg)
{
	struct ag_server *root = arg;
	struct evbuffer *o = evbuffer_new();
	if (o == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	render(root, o);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, HTTP_OK, "OK", o);
	evbuffer_free(o);
}

static void on_other(struct evhttp_request *req, void *arg)
{
	(void)arg;
	evhttp_send_error(req, HTTP_NOTFOUND, "only /metrics is served here");
}

int ag_metrics_start(struct ag_server *srv, const char *listen, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	int sslen = (int)sizeof(ss);
	char host[INET6_ADDRSTRLEN];
	unsigned port = 0;
	if (evutil_parse_sockaddr_port(listen, (struct sockaddr *)&ss, &sslen) != 0) {
		snprintf(err, errlen, "[metrics] listen: '%s' is not an address:port", listen);
		return -1;
	}
	if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
		evutil_inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
	} else {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
		evutil_inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
	}
	http = evhttp_new(srv->base);
	if (http == NULL) {
		snprintf(err, errlen, "[metrics] cannot create the HTTP server");
		return -1;
	}
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_timeout(http, 30);
	evhttp_set_cb(http, "/metrics", on_metrics, srv);
	evhttp_set_gencb(http, on_other, NULL);
	if (evhttp_bind_socket(http, host, (ev_uint16_t)port) != 0) {
		snprintf(err, errlen, "[metrics] listen %s: cannot listen there (in use, or not an address of this host)",
		         listen);
		evhttp_free(http);
		http = NULL;
		return -1;
	}
	ag_log_info("metrics on http://%s/metrics", listen);
	return 0;
}

void ag_metrics_stop(struct ag_server *srv)
{
	(void)srv;
	if (http != NULL)
		evhttp_free(http);
	http = NULL;
}
