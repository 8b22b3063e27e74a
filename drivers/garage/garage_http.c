/*
 * garage_http.c - the HTTP engines of the Garage driver: one thread, one
 * libcurl multi handle, a queue of requests fed from any thread and woken
 * with curl_multi_wakeup, a fresh signature at each attempt, retries with
 * exponential backoff and jitter, and synchronous batches on top.
 * Requests are built in garage_request.c; failures are mapped to the ABI's
 * codes in garage_error.c.
 */
#include "drivers/garage/garage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the engine ---- */

struct gr_call {
	void (*fn)(void *);
	void *arg;
	int done;
	struct gr_call *next;
};

struct gr_engine {
	struct gr_store *store;
	CURLM *multi;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;      /* signalled when a call completes */
	struct gr_request *incoming; /* under lock, LIFO; reversed when taken */
	struct gr_call *calls;       /* under lock, oldest first */
	int stop;                    /* under lock */
	/* Engine thread only. */
	struct gr_request *delayed;  /* attempts waiting for their backoff */
	struct gr_request *active;   /* in the multi handle (list by `next`) */
	uint64_t rng;
};

int gr_engine_on_thread(struct gr_engine *eng)
{
	return pthread_equal(pthread_self(), eng->thread);
}

static uint64_t engine_random(struct gr_engine *eng)
{
	/* xorshift64*: jitter only, needs no strength. */
	eng->rng ^= eng->rng >> 12;
	eng->rng ^= eng->rng << 25;
	eng->rng ^= eng->rng >> 27;
	return eng->rng * UINT64_C(2685821657736338717);
}

static void list_remove(struct gr_request **list, struct gr_request *req)
{
	for (struct gr_request **p = list; *p; p = &(*p)->next) {
		if (*p == req) {
			*p = req->next;
			req->next = NULL;
			return;
		}
	}
}

static void finish(struct gr_engine *eng, struct gr_request *req)
{
	(void)eng;
	req->done(req);
}

static void start_attempt(struct gr_engine *eng, struct gr_request *req)
{
	req->attempts++;
	if (gr_request_prepare(req) < 0) {
		req->curl_code = CURLE_OUT_OF_MEMORY;
		snprintf(req->curl_error, sizeof(req->curl_error), "out of memory");
		finish(eng, req);
		return;
	}
	if (curl_multi_add_handle(eng->multi, req->easy) != CURLM_OK) {
		req->curl_code = CURLE_FAILED_INIT;
		snprintf(req->curl_error, sizeof(req->curl_error), "curl_multi_add_handle failed");
		finish(eng, req);
		return;
	}
	req->next = eng->active;
	eng->active = req;
}

/* Whether a failed attempt may be repeated under the request's policy. */
static int should_retry(const struct gr_request *req)
{
	if (req->attempts > req->store->retries || req->retry == GR_RETRY_NEVER)
		return 0;
	CURLcode c = req->curl_code;
	if (req->retry == GR_RETRY_CONNECT)
		return c == CURLE_COULDNT_CONNECT || c == CURLE_COULDNT_RESOLVE_HOST;
	if (c != CURLE_OK)
		return c == CURLE_COULDNT_CONNECT || c == CURLE_COULDNT_RESOLVE_HOST ||
		       c == CURLE_SEND_ERROR || c == CURLE_RECV_ERROR || c == CURLE_GOT_NOTHING ||
		       c == CURLE_OPERATION_TIMEDOUT || c == CURLE_PARTIAL_FILE;
	return req->status == 502 || req->status == 503 || req->status == 504;
}

static void attempt_done(struct gr_engine *eng, struct gr_request *req, CURLcode code)
{
	list_remove(&eng->active, req);
	curl_multi_remove_handle(eng->multi, req->easy);
	req->curl_code = code;
	long status = 0;
	if (code == CURLE_OK)
		curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);
	req->status = status;
	if (should_retry(req)) {
		/* Exponential backoff with jitter: 25 ms doubling, capped at
		 * 2 s, a random point in the upper half of the window. */
		uint64_t window = 25u << (req->attempts < 7 ? req->attempts : 7);
		if (window > 2000)
			window = 2000;
		uint64_t delay = window / 2 + engine_random(eng) % (window / 2 + 1);
		req->retry_at_ms = agk_now_ms() + delay;
		req->next = eng->delayed;
		eng->delayed = req;
		return;
	}
	finish(eng, req);
}

void gr_engine_cancel(struct gr_engine *eng, struct gr_request *req)
{
	for (struct gr_request *r = eng->active; r; r = r->next) {
		if (r == req) {
			list_remove(&eng->active, req);
			curl_multi_remove_handle(eng->multi, req->easy);
			return;
		}
	}
	list_remove(&eng->delayed, req);
	pthread_mutex_lock(&eng->lock);
	list_remove(&eng->incoming, req);
	pthread_mutex_unlock(&eng->lock);
}

static void *engine_main(void *arg)
{
	struct gr_engine *eng = arg;
	for (;;) {
		pthread_mutex_lock(&eng->lock);
		struct gr_request *in = eng->incoming;
		eng->incoming = NULL;
		struct gr_call *calls = eng->calls;
		eng->calls = NULL;
		int stop = eng->stop;
		pthread_mutex_unlock(&eng->lock);
		if (stop)
			break;

		/* Start the new requests in submission order. */
		struct gr_request *rev = NULL;
		while (in) {
			struct gr_request *next = in->next;
			in->next = rev;
			rev = in;
			in = next;
		}
		while (rev) {
			struct gr_request *next = rev->next;
			rev->next = NULL;
			start_attempt(eng, rev);
			rev = next;
		}
		/* Calls from other threads, oldest first. */
		for (struct gr_call *c = calls; c;) {
			struct gr_call *next = c->next;
			c->fn(c->arg);
			pthread_mutex_lock(&eng->lock);
			c->done = 1;
			pthread_cond_broadcast(&eng->cond);
			pthread_mutex_unlock(&eng->lock);
			c = next;
		}

		/* Retries whose backoff has passed. */
		uint64_t now = agk_now_ms();
		for (struct gr_request **p = &eng->delayed; *p;) {
			struct gr_request *r = *p;
			if (r->retry_at_ms <= now) {
				*p = r->next;
				r->next = NULL;
				start_attempt(eng, r);
			} else {
				p = &r->next;
			}
		}

		int running = 0;
		curl_multi_perform(eng->multi, &running);
		CURLMsg *msg;
		int left;
		while ((msg = curl_multi_info_read(eng->multi, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			char *priv = NULL;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
			struct gr_request *req = (struct gr_request *)(void *)priv;
			CURLcode code = msg->data.result;
			if (req)
				attempt_done(eng, req, code);
		}
		/* Sleep until a socket is ready, a wake-up comes, or the next
		 * retry is due (computed after this round's failures were
		 * scheduled). */
		long wait_ms = 1000;
		now = agk_now_ms();
		for (struct gr_request *r = eng->delayed; r; r = r->next) {
			long due = r->retry_at_ms > now ? (long)(r->retry_at_ms - now) : 0;
			if (due < wait_ms)
				wait_ms = due;
		}
		pthread_mutex_lock(&eng->lock);
		int pending = eng->incoming || eng->calls || eng->stop;
		pthread_mutex_unlock(&eng->lock);
		if (!pending && wait_ms > 0)
			curl_multi_poll(eng->multi, NULL, 0, (int)wait_ms, NULL);
	}
	return NULL;
}

struct gr_engine *gr_engine_start(struct gr_store *store, long max_total, char *errbuf,
                                  size_t errlen)
{
	struct gr_engine *eng = calloc(1, sizeof(*eng));
	if (!eng) {
		snprintf(errbuf, errlen, "garage: out of memory");
		return NULL;
	}
	eng->store = store;
	eng->rng = (uint64_t)time(NULL) ^ ((uint64_t)(uintptr_t)eng << 16) ^ agk_now_ms();
	if (!eng->rng)
		eng->rng = 1;
	eng->multi = curl_multi_init();
	if (!eng->multi) {
		snprintf(errbuf, errlen, "garage: curl_multi_init failed");
		free(eng);
		return NULL;
	}
	if (max_total > 0) {
		curl_multi_setopt(eng->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, max_total);
		curl_multi_setopt(eng->multi, CURLMOPT_MAXCONNECTS, max_total);
	} else {
		curl_multi_setopt(eng->multi, CURLMOPT_MAXCONNECTS, 64L);
	}
	pthread_mutex_init(&eng->lock, NULL);
	pthread_cond_init(&eng->cond, NULL);
	int err = pthread_create(&eng->thread, NULL, engine_main, eng);
	if (err) {
		snprintf(errbuf, errlen, "garage: cannot start a thread: %s", strerror(err));
		curl_multi_cleanup(eng->multi);
		pthread_mutex_destroy(&eng->lock);
		pthread_cond_destroy(&eng->cond);
		free(eng);
		return NULL;
	}
	return eng;
}

void gr_engine_stop(struct gr_engine *eng)
{
	if (!eng)
		return;
	pthread_mutex_lock(&eng->lock);
	eng->stop = 1;
	pthread_mutex_unlock(&eng->lock);
	curl_multi_wakeup(eng->multi);
	pthread_join(eng->thread, NULL);
	for (struct gr_request *r = eng->active; r; r = r->next)
		curl_multi_remove_handle(eng->multi, r->easy);
	curl_multi_cleanup(eng->multi);
	pthread_mutex_destroy(&eng->lock);
	pthread_cond_destroy(&eng->cond);
	free(eng);
}

#ifdef GR_FUZZ_TRANSPORT
/* The fuzz build (tests/garage/fuzz_garage.c): no network. Each request
 * gets the next answer the harness hands out (status, header lines, body),
 * through the same header and body callbacks as libcurl's; when the input
 * runs out, the request fails as if the connection were refused. */
int gr_fuzz_next_answer(long *status, const char **headers, size_t *hlen, const char **body,
                        size_t *blen);

static void fuzz_answer(struct gr_request *req)
{
	gr_request_reset_response(req);
	req->attempts++;
	long status = 0;
	const char *h = NULL, *b = NULL;
	size_t hl = 0, bl = 0;
	if (!gr_fuzz_next_answer(&status, &h, &hl, &b, &bl)) {
		req->curl_code = CURLE_COULDNT_CONNECT;
		req->status = 0;
		return;
	}
	req->curl_code = CURLE_OK;
	req->status = status;
	for (const char *p = h, *end = h + hl; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		char *line = malloc(n); /* libcurl hands over a writable copy too */
		if (line) {
			memcpy(line, p, n);
			gr_response_on_header(line, 1, n, req);
		}
		free(line);
		p += n;
	}
	if (bl)
		gr_response_on_body((char *)(uintptr_t)b, 1, bl, req);
}
#endif

void gr_engine_submit(struct gr_engine *eng, struct gr_request *req)
{
#ifdef GR_FUZZ_TRANSPORT
	(void)eng;
	fuzz_answer(req);
	req->done(req);
	return;
#endif
	pthread_mutex_lock(&eng->lock);
	req->next = eng->incoming;
	eng->incoming = req;
	pthread_mutex_unlock(&eng->lock);
	curl_multi_wakeup(eng->multi);
}

void gr_engine_call(struct gr_engine *eng, void (*fn)(void *), void *arg)
{
	if (gr_engine_on_thread(eng)) {
		fn(arg);
		return;
	}
	struct gr_call call = {fn, arg, 0, NULL};
	pthread_mutex_lock(&eng->lock);
	struct gr_call **tail = &eng->calls; /* calls are few: appended in order */
	while (*tail)
		tail = &(*tail)->next;
	*tail = &call;
	pthread_mutex_unlock(&eng->lock);
	curl_multi_wakeup(eng->multi);
	pthread_mutex_lock(&eng->lock);
	while (!call.done)
		pthread_cond_wait(&eng->cond, &eng->lock);
	pthread_mutex_unlock(&eng->lock);
}

/* ---- synchronous batches ---- */

struct gr_batch {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	size_t left;
};

static void batch_done(struct gr_request *req)
{
	struct gr_batch *b = req->arg;
	pthread_mutex_lock(&b->lock);
	b->left--;
	if (b->left == 0)
		pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

void gr_perform(struct gr_store *store, struct gr_request **reqs, size_t n)
{
	if (n == 0)
		return;
#ifdef GR_FUZZ_TRANSPORT
	(void)store;
	for (size_t i = 0; i < n; i++)
		fuzz_answer(reqs[i]);
	return;
#endif
	struct gr_batch b;
	pthread_mutex_init(&b.lock, NULL);
	pthread_cond_init(&b.cond, NULL);
	b.left = n;
	/* Submit the whole batch under one lock and one wake-up. */
	struct gr_engine *eng = store->requests;
	pthread_mutex_lock(&eng->lock);
	for (size_t i = 0; i < n; i++) {
		reqs[i]->done = batch_done;
		reqs[i]->arg = &b;
		reqs[i]->next = eng->incoming;
		eng->incoming = reqs[i];
	}
	pthread_mutex_unlock(&eng->lock);
	curl_multi_wakeup(eng->multi);
	pthread_mutex_lock(&b.lock);
	while (b.left > 0)
		pthread_cond_wait(&b.cond, &b.lock);
	pthread_mutex_unlock(&b.lock);
	pthread_mutex_destroy(&b.lock);
	pthread_cond_destroy(&b.cond);
}

