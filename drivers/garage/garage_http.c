/*
 * garage_http.c - the HTTP engines of the Garage driver: one thread, one
 * libcurl multi handle, a queue of requests fed from any thread and woken
 * with curl_multi_wakeup, signing at each attempt, retries with exponential
 * backoff and jitter, and the mapping of failures to the ABI's codes.
 */
#include "drivers/garage/garage.h"
#include "drivers/garage/sigv4.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <expat.h>
#include <jansson.h>
#include <openssl/evp.h>

uint64_t gr_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- small helpers ---- */

char *gr_encode_pk(const char *pk)
{
	/* '/' may travel raw inside a pk, but Garage strips leading slashes
	 * before decoding, so those are sent as %2F. */
	struct gbuf b = {0};
	size_t lead = 0;
	while (pk[lead] == '/') {
		gbuf_adds(&b, "%2F");
		lead++;
	}
	char *rest = sigv4_uri_encode(pk + lead, strlen(pk + lead), 1);
	if (!rest) {
		gbuf_free(&b);
		return NULL;
	}
	gbuf_adds(&b, rest);
	free(rest);
	return gbuf_take(&b);
}

char *gr_base64_encode(const uint8_t *data, size_t len)
{
	if (len > (size_t)INT32_MAX / 2)
		return NULL;
	char *out = malloc(4 * ((len + 2) / 3) + 1);
	if (!out)
		return NULL;
	if (len == 0) {
		out[0] = 0;
		return out;
	}
	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

int gr_base64_decode(const char *text, uint8_t **out, size_t *outlen)
{
	size_t len = strlen(text);
	*out = NULL;
	*outlen = 0;
	if (len % 4 != 0 || len > (size_t)INT32_MAX / 2)
		return -1;
	uint8_t *buf = malloc(len / 4 * 3 + 1);
	if (!buf)
		return -1;
	if (len == 0) {
		*out = buf;
		return 0;
	}
	int n = EVP_DecodeBlock(buf, (const unsigned char *)text, (int)len);
	if (n < 0) {
		free(buf);
		return -1;
	}
	size_t pad = 0;
	if (text[len - 1] == '=')
		pad++;
	if (text[len - 2] == '=')
		pad++;
	*out = buf;
	*outlen = (size_t)n - pad;
	return 0;
}

/* ---- requests ---- */

void gr_request_init(struct gr_request *req, struct gr_store *store, enum gr_api api,
                     const char *op, const char *method)
{
	memset(req, 0, sizeof(*req));
	req->store = store;
	req->api = api;
	req->op = op;
	req->method = method;
	req->timeout_ms = store->timeout_ms;
	req->retry = GR_RETRY_ALWAYS;
}

int gr_request_plain(struct gr_request *req, const char *line)
{
	struct curl_slist *l = curl_slist_append(req->plain, line);
	if (!l)
		return -1;
	req->plain = l;
	return 0;
}

int gr_request_amz(struct gr_request *req, const char *name, const char *value)
{
	struct gr_header *h = calloc(1, sizeof(*h));
	if (!h)
		return -1;
	h->name = strdup(name);
	h->value = strdup(value);
	if (!h->name || !h->value) {
		free(h->name);
		free(h->value);
		free(h);
		return -1;
	}
	for (char *c = h->name; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	/* Keep insertion order: append at the tail. */
	struct gr_header **tail = &req->amz;
	while (*tail)
		tail = &(*tail)->next;
	*tail = h;
	return 0;
}

static void free_headers(struct gr_header *h)
{
	while (h) {
		struct gr_header *next = h->next;
		free(h->name);
		free(h->value);
		free(h);
		h = next;
	}
}

void gr_request_reset_response(struct gr_request *req)
{
	gbuf_free(&req->response);
	free_headers(req->headers);
	req->headers = NULL;
	req->status = 0;
	req->curl_code = CURLE_OK;
	req->curl_error[0] = 0;
}

void gr_request_free(struct gr_request *req)
{
	gr_request_reset_response(req);
	free(req->path);
	free(req->query);
	if (!req->body_borrowed)
		free(req->body);
	free_headers(req->amz);
	curl_slist_free_all(req->plain);
	curl_slist_free_all(req->sent_headers);
	if (req->easy)
		curl_easy_cleanup(req->easy);
	req->path = req->query = req->body = NULL;
	req->amz = NULL;
	req->plain = req->sent_headers = NULL;
	req->easy = NULL;
}

const char *gr_response_header(const struct gr_request *req, const char *name)
{
	for (const struct gr_header *h = req->headers; h; h = h->next)
		if (strcmp(h->name, name) == 0)
			return h->value;
	return NULL;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
	struct gr_request *req = userp;
	size_t len = size * nmemb;
	if (gbuf_add(&req->response, data, len) < 0)
		return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
	return len;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
	struct gr_request *req = userp;
	size_t len = size * nmemb;
	if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		/* A new response (after a 100 Continue or a redirect): start over. */
		free_headers(req->headers);
		req->headers = NULL;
		return len;
	}
	const char *colon = memchr(data, ':', len);
	if (!colon)
		return len;
	size_t nlen = (size_t)(colon - data);
	const char *v = colon + 1;
	size_t vlen = len - nlen - 1;
	while (vlen && (*v == ' ' || *v == '\t')) {
		v++;
		vlen--;
	}
	while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' ' ||
	                v[vlen - 1] == '\t'))
		vlen--;
	struct gr_header *h = calloc(1, sizeof(*h));
	if (!h)
		return 0;
	h->name = strndup(data, nlen);
	h->value = strndup(v, vlen);
	if (!h->name || !h->value) {
		free(h->name);
		free(h->value);
		free(h);
		return 0;
	}
	for (char *c = h->name; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	h->next = req->headers;
	req->headers = h;
	return len;
}

/* Build the easy handle for one attempt: URL, body, headers and signature. */
static int request_prepare(struct gr_request *req)
{
	struct gr_store *st = req->store;
	const char *base = req->api == GR_K2V ? st->k2v_base : st->s3_base;
	const char *host = req->api == GR_K2V ? st->k2v_host : st->s3_host;

	gr_request_reset_response(req);
	curl_slist_free_all(req->sent_headers);
	req->sent_headers = NULL;
	if (!req->easy) {
		req->easy = curl_easy_init();
		if (!req->easy)
			return -1;
	} else {
		curl_easy_reset(req->easy);
	}
	CURL *e = req->easy;

	struct gbuf url = {0};
	gbuf_adds(&url, base);
	gbuf_adds(&url, req->path);
	if (req->query && *req->query) {
		gbuf_addc(&url, '?');
		gbuf_adds(&url, req->query);
	}
	char *url_s = gbuf_take(&url);
	if (!url_s)
		return -1;

	char payload_hash[65];
	sigv4_sha256_hex(req->body ? req->body : "", req->body ? req->body_len : 0, payload_hash);
	char amz_date[17];
	sigv4_amz_date(time(NULL), amz_date);

	size_t n_amz = 0;
	for (struct gr_header *h = req->amz; h; h = h->next)
		n_amz++;
	struct sigv4_header *sh = calloc(n_amz + 3, sizeof(*sh));
	if (!sh) {
		free(url_s);
		return -1;
	}
	size_t n = 0;
	sh[n++] = (struct sigv4_header){"host", host};
	sh[n++] = (struct sigv4_header){"x-amz-content-sha256", payload_hash};
	sh[n++] = (struct sigv4_header){"x-amz-date", amz_date};
	for (struct gr_header *h = req->amz; h; h = h->next)
		sh[n++] = (struct sigv4_header){h->name, h->value};

	struct sigv4_params p = {
		.method = req->method,
		.path = req->path,
		.query = req->query,
		.headers = sh,
		.n_headers = n,
		.payload_hash = payload_hash,
		.amz_date = amz_date,
		.region = st->region,
		.service = req->api == GR_K2V ? "k2v" : "s3",
		.access_key_id = st->access_key_id,
		.secret_access_key = st->secret_access_key,
		.double_encode_path = req->api == GR_K2V,
	};
	struct sigv4_result sig;
	int rc = sigv4_sign(&p, &sig);
	if (rc == 0) {
		struct gbuf line = {0};
		struct curl_slist *l = NULL;
		for (size_t i = 0; i < n; i++) {
			gbuf_addf(&line, "%s: %s", sh[i].name, sh[i].value);
			char *s = gbuf_take(&line);
			struct curl_slist *nl = s ? curl_slist_append(l, s) : NULL;
			free(s);
			if (!nl) {
				rc = -1;
				break;
			}
			l = nl;
		}
		gbuf_addf(&line, "Authorization: %s", sig.authorization);
		char *s = gbuf_take(&line);
		struct curl_slist *nl = (rc == 0 && s) ? curl_slist_append(l, s) : NULL;
		free(s);
		if (nl) {
			l = nl;
			/* No Expect: 100-continue round trip, and no default
			 * form Content-Type on bodies that are not forms. */
			l = curl_slist_append(l, "Expect:");
			if (l)
				l = curl_slist_append(l, "Content-Type:");
		} else {
			rc = -1;
		}
		for (struct curl_slist *pl = req->plain; l && pl; pl = pl->next)
			l = curl_slist_append(l, pl->data);
		if (!l)
			rc = -1;
		req->sent_headers = l;
		sigv4_result_free(&sig);
	}
	free(sh);
	if (rc < 0) {
		free(url_s);
		return -1;
	}

	curl_easy_setopt(e, CURLOPT_URL, url_s);
	free(url_s); /* libcurl copies the URL */
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	/* The path goes out exactly as it was signed: without this, libcurl
	 * squashes "/./" and "/../" (a key or a user name "." or "..") and the
	 * server checks the signature against another path (403). */
	curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	                 req->store->timeout_ms < 10000 ? req->store->timeout_ms : 10000L);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->sent_headers);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, req);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->curl_error);
	curl_easy_setopt(e, CURLOPT_PRIVATE, req);
	if (strcmp(req->method, "GET") == 0) {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(req->method, "DELETE") == 0 && !req->body) {
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE");
	} else {
		/* POST and PUT: the body from memory, not copied. */
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body ? req->body : "");
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
	}
	return 0;
}

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
	struct gr_call *calls;       /* under lock */
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
	if (request_prepare(req) < 0) {
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
		req->retry_at_ms = gr_now_ms() + delay;
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
		struct gr_call *crev = NULL;
		while (calls) {
			struct gr_call *next = calls->next;
			calls->next = crev;
			crev = calls;
			calls = next;
		}
		for (struct gr_call *c = crev; c;) {
			struct gr_call *next = c->next;
			c->fn(c->arg);
			pthread_mutex_lock(&eng->lock);
			c->done = 1;
			pthread_cond_broadcast(&eng->cond);
			pthread_mutex_unlock(&eng->lock);
			c = next;
		}

		/* Retries whose backoff has passed. */
		uint64_t now = gr_now_ms();
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
		now = gr_now_ms();
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
	eng->rng = (uint64_t)time(NULL) ^ ((uint64_t)(uintptr_t)eng << 16) ^ gr_now_ms();
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
			on_header(line, 1, n, req);
		}
		free(line);
		p += n;
	}
	if (bl)
		on_body((char *)(uintptr_t)b, 1, bl, req);
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
	call.next = eng->calls;
	eng->calls = &call;
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

/* ---- errors ---- */

struct xml_error {
	int depth;
	int in_code, in_message;
	struct gbuf code, message;
};

static void XMLCALL xml_error_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	(void)attrs;
	struct xml_error *x = ud;
	x->depth++;
	x->in_code = x->depth == 2 && strcmp(name, "Code") == 0;
	x->in_message = x->depth == 2 && strcmp(name, "Message") == 0;
}

static void XMLCALL xml_error_end(void *ud, const XML_Char *name)
{
	(void)name;
	struct xml_error *x = ud;
	x->depth--;
	x->in_code = x->in_message = 0;
}

static void XMLCALL xml_error_text(void *ud, const XML_Char *s, int len)
{
	struct xml_error *x = ud;
	if (x->in_code)
		gbuf_add(&x->code, s, (size_t)len);
	else if (x->in_message)
		gbuf_add(&x->message, s, (size_t)len);
}

/* Garage's error code and message from a K2V JSON or S3 XML error body. */
static void parse_error_body(const struct gr_request *req, char **code, char **message)
{
	*code = *message = NULL;
	const char *body = req->response.data;
	size_t len = req->response.len;
	while (len && isspace((unsigned char)*body)) {
		body++;
		len--;
	}
	if (!len)
		return;
	if (*body == '{') {
		json_t *j = json_loadb(body, len, 0, NULL);
		if (j) {
			const char *c = json_string_value(json_object_get(j, "code"));
			const char *m = json_string_value(json_object_get(j, "message"));
			*code = c ? strdup(c) : NULL;
			*message = m ? strdup(m) : NULL;
			json_decref(j);
		}
	} else if (*body == '<') {
		struct xml_error x = {0};
		XML_Parser p = XML_ParserCreate("UTF-8");
		if (!p)
			return;
		XML_SetUserData(p, &x);
		XML_SetElementHandler(p, xml_error_start, xml_error_end);
		XML_SetCharacterDataHandler(p, xml_error_text);
		if (XML_Parse(p, body, (int)len, 1) != XML_STATUS_ERROR) {
			*code = gbuf_take(&x.code);
			*message = gbuf_take(&x.message);
		}
		XML_ParserFree(p);
		gbuf_free(&x.code);
		gbuf_free(&x.message);
	}
}

static int status_code(long status)
{
	if (status >= 200 && status < 300)
		return AEROGRAM_OK;
	switch (status) {
	case 404: return AEROGRAM_ENOTFOUND;
	case 403: return AEROGRAM_EPERM;
	case 400: return AEROGRAM_EINVAL;
	case 409:
	case 412: return AEROGRAM_ECONFLICT;
	case 413: return AEROGRAM_ETOOBIG;
	default: break;
	}
	if (status >= 500)
		return AEROGRAM_EUNAVAILABLE;
	return AEROGRAM_EINTERNAL;
}

int gr_request_error(const struct gr_request *req, char **msg)
{
	if (msg)
		*msg = NULL;
	if (req->curl_code != CURLE_OK) {
		int code = req->curl_code == CURLE_OUT_OF_MEMORY ? AEROGRAM_EINTERNAL
		                                                  : AEROGRAM_EUNAVAILABLE;
		if (msg) {
			struct gbuf b = {0};
			gbuf_addf(&b, "garage: %s on %s %s (%s; %d attempt%s)", req->curl_error[0]
			                                                            ? req->curl_error
			                                                            : curl_easy_strerror(req->curl_code),
			          req->op, req->path, curl_easy_strerror(req->curl_code), req->attempts,
			          req->attempts == 1 ? "" : "s");
			*msg = gbuf_take(&b);
		}
		return code;
	}
	int code = status_code(req->status);
	if (code == AEROGRAM_OK || !msg)
		return code;
	char *gcode, *gmsg;
	parse_error_body(req, &gcode, &gmsg);
	struct gbuf b = {0};
	gbuf_addf(&b, "garage: %ld %s on %s %s", req->status, gcode && *gcode ? gcode : "(no code)",
	          req->op, req->path);
	if (gmsg && *gmsg)
		gbuf_addf(&b, " (%s)", gmsg);
	if (req->attempts > 1)
		gbuf_addf(&b, " after %d attempts", req->attempts);
	free(gcode);
	free(gmsg);
	*msg = gbuf_take(&b);
	return code;
}

int gr_request_status(const struct gr_request *req)
{
	char *msg;
	int code = gr_request_error(req, &msg);
	if (code != AEROGRAM_OK)
		agk_fail(code, "%s", msg ? msg : "garage: out of memory");
	free(msg);
	return code;
}
