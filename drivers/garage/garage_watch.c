/*
 * garage_watch.c - row watches as K2V long polls (ReadItem, then PollItem).
 *
 * Every watch is a small state machine run by the watch engine's thread:
 * each step submits one request and the next step happens in that request's
 * completion, on the same thread, where the callback is called too. So any
 * number of watches costs one thread and one multi handle, and a release
 * (run on that thread through gr_engine_call) can never race a callback.
 */
#include "drivers/garage/garage.h"
#include "drivers/garage/sigv4.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* The token of an empty context: PollItem with it waits for the first write. */
#define EMPTY_TOKEN "AAAAAAAAAAA"
/* How much longer than the long poll the HTTP request may take. */
#define POLL_HTTP_MARGIN_MS 5000

enum watch_phase { PHASE_READ, PHASE_POLL };

struct aerogram_watch {
	struct gr_store *st;
	char *pk, *sk;
	char *token;      /* the token polled against (owned) */
	int want_live;    /* watch created without a token */
	enum watch_phase phase;
	uint64_t deadline_ms;
	aerogram_watch_cb cb;
	void *arg;
	struct gr_request req;
	int in_flight;    /* req is in the engine */
	int fired;
};

static void watch_done(struct gr_request *req);

static void watch_free(struct aerogram_watch *w)
{
	gr_request_free(&w->req);
	free(w->pk);
	free(w->sk);
	free(w->token);
	free(w);
}

static void fire(struct aerogram_watch *w, int status, const struct aerogram_row *row,
                 const char *message)
{
	w->fired = 1;
	w->cb(w->arg, status, row, message);
}

static void fire_error(struct aerogram_watch *w, int status, const char *message)
{
	fire(w, status, NULL, message);
}

/* Seconds for the next long poll: what is left of the watch's timeout,
 * rounded up and clamped to Garage's [1, 600] and the configured bound. */
static unsigned poll_seconds(const struct aerogram_watch *w)
{
	uint64_t now = agk_now_ms();
	uint64_t left = w->deadline_ms > now ? w->deadline_ms - now : 0;
	uint64_t s = (left + 999) / 1000;
	if (s < 1)
		s = 1;
	if (s > w->st->poll_timeout_s)
		s = w->st->poll_timeout_s;
	return (unsigned)s;
}

/* Build and submit the request of the current phase. Returns 0 or -1. */
static int submit_step(struct aerogram_watch *w)
{
	struct gr_store *st = w->st;
	gr_request_free(&w->req);
	struct gr_request *req = &w->req;
	struct gbuf q = {0};
	char *sk = sigv4_uri_encode(w->sk, strlen(w->sk), 0);
	if (!sk)
		return -1;
	if (w->phase == PHASE_READ) {
		gr_request_init(req, st, GR_K2V, "ReadItem", "GET");
		gbuf_addf(&q, "sort_key=%s", sk);
	} else {
		gr_request_init(req, st, GR_K2V, "PollItem", "GET");
		char *ct = sigv4_uri_encode(w->token, strlen(w->token), 0);
		unsigned secs = poll_seconds(w);
		if (ct)
			gbuf_addf(&q, "sort_key=%s&causality_token=%s&timeout=%u", sk, ct, secs);
		else
			q.failed = 1;
		free(ct);
		req->timeout_ms = (long)secs * 1000 + POLL_HTTP_MARGIN_MS;
	}
	free(sk);
	req->path = gr_bucket_path(st, gr_encode_pk(w->pk));
	req->query = gbuf_take(&q);
	if (gr_request_plain(req, "Accept: application/json") < 0)
		return -1;
	if (!req->path || !req->query)
		return -1;
	req->retry = GR_RETRY_ALWAYS;
	req->done = watch_done;
	req->arg = w;
	w->in_flight = 1;
	gr_engine_submit(st->watches, req);
	return 0;
}

/* Poll again, or report the timeout when the watch's time is up. */
static void repoll_or_timeout(struct aerogram_watch *w)
{
	if (agk_now_ms() >= w->deadline_ms) {
		fire_error(w, AEROGRAM_ETIMEDOUT, "garage: watch timed out");
		return;
	}
	if (submit_step(w) < 0)
		fire_error(w, AEROGRAM_EINTERNAL, "garage: out of memory re-arming a watch");
}

static void item_done(struct aerogram_watch *w, struct gr_request *req)
{
	if (w->phase == PHASE_POLL && req->curl_code == CURLE_OK && req->status == 304) {
		repoll_or_timeout(w);
		return;
	}
	if (w->phase == PHASE_READ && req->curl_code == CURLE_OK && req->status == 404) {
		free(w->token);
		w->token = strdup(EMPTY_TOKEN);
		w->phase = PHASE_POLL;
		if (!w->token || submit_step(w) < 0)
			fire_error(w, AEROGRAM_EINTERNAL, "garage: out of memory arming a watch");
		return;
	}
	if (req->curl_code != CURLE_OK || req->status != 200) {
		char *msg;
		int code = gr_request_error(req, &msg);
		if (code == AEROGRAM_OK)
			code = AEROGRAM_EINTERNAL; /* a 2xx other than 200 */
		fire_error(w, code, msg ? msg : "garage: watch failed");
		free(msg);
		return;
	}
	const char *token = gr_response_header(req, "x-garage-causality-token");
	json_t *values = json_loadb(req->response.data ? req->response.data : "",
	                            req->response.len, 0, NULL);
	struct gr_rows rows = {0};
	if (!token || !values || gr_rows_parse_item(&rows, w->sk, token, values) < 0) {
		json_decref(values);
		gr_rows_free(&rows);
		char msg[256];
		snprintf(msg, sizeof(msg), "garage: malformed %s answer for %s/%s", req->op, w->pk,
		         w->sk);
		fire_error(w, AEROGRAM_EINTERNAL, msg);
		return;
	}
	json_decref(values);
	if (w->want_live && !gr_row_live(&rows.rows[0])) {
		/* Only tombstones so far: wait for the next write after them. */
		char *t = strdup(token);
		gr_rows_free(&rows);
		if (!t) {
			fire_error(w, AEROGRAM_EINTERNAL, "garage: out of memory");
			return;
		}
		free(w->token);
		w->token = t;
		w->phase = PHASE_POLL;
		repoll_or_timeout(w);
		return;
	}
	fire(w, AEROGRAM_OK, &rows.rows[0], NULL);
	gr_rows_free(&rows);
}

static void watch_done(struct gr_request *req)
{
	struct aerogram_watch *w = req->arg;
	w->in_flight = 0;
	item_done(w, req);
}

static int dup_opt(char **dst, const char *src)
{
	*dst = NULL;
	if (!src || !*src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -1;
}

static struct aerogram_watch *watch_new(struct gr_store *st, const char *pk, uint32_t timeout_ms,
                                        aerogram_watch_cb cb, void *arg)
{
	struct aerogram_watch *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->st = st;
	w->cb = cb;
	w->arg = arg;
	w->deadline_ms = agk_now_ms() + timeout_ms;
	w->pk = strdup(pk);
	if (!w->pk) {
		free(w);
		return NULL;
	}
	return w;
}

int garage_row_watch(struct aerogram_store *store, const char *pk, const char *sk,
                     const char *token, uint32_t timeout_ms, aerogram_watch_cb cb, void *arg,
                     struct aerogram_watch **out)
{
	struct gr_store *st = (struct gr_store *)store;
	*out = NULL;
	if (!st->k2v_base)
		return agk_fail(AEROGRAM_ENOTSUP, "garage: no k2v_endpoint configured");
	int rc = agk_check_key("garage", "the partition key of a watch", pk);
	if (rc == 0)
		rc = agk_check_key("garage", "the sort key of a watch", sk);
	if (rc)
		return rc;
	if (!cb)
		return agk_fail(AEROGRAM_EINVAL, "garage: a watch needs a callback");
	if (token && *token && !gr_token_valid(token))
		return agk_fail(AEROGRAM_EINVAL, "garage: row_watch on %s/%s with a malformed causality "
		                                "token",
		               pk, sk);
	struct aerogram_watch *w = watch_new(st, pk, timeout_ms, cb, arg);
	if (!w || !(w->sk = strdup(sk)) || dup_opt(&w->token, token) < 0) {
		if (w)
			watch_free(w);
		return agk_fail(AEROGRAM_EINTERNAL, "garage: out of memory");
	}
	w->want_live = w->token == NULL;
	w->phase = w->token ? PHASE_POLL : PHASE_READ;
	if (submit_step(w) < 0) {
		watch_free(w);
		return agk_fail(AEROGRAM_EINTERNAL, "garage: out of memory");
	}
	*out = w;
	return 0;
}

/* On the watch engine's thread: drop the poll in flight, free the watch. */
static void release_on_engine(void *arg)
{
	struct aerogram_watch *w = arg;
	if (w->in_flight)
		gr_engine_cancel(w->st->watches, &w->req);
	watch_free(w);
}

void garage_row_watch_release(struct aerogram_store *store, struct aerogram_watch *w)
{
	struct gr_store *st = (struct gr_store *)store;
	if (!w)
		return;
	gr_engine_call(st->watches, release_on_engine, w);
}
