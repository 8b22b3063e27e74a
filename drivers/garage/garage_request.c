/*
 * garage_request.c - building one HTTP request of the Garage driver: the
 * encodings of keys and values, the request and its headers, the response
 * callbacks, and each attempt's easy handle, signed with AWS SigV4.
 */
#include "drivers/garage/garage.h"
#include "drivers/garage/sigv4.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

/* ---- encodings ---- */

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

char *gr_bucket_path(struct gr_store *st, char *enc)
{
	if (!enc)
		return NULL;
	struct gbuf b = {0};
	gbuf_addf(&b, "/%s/%s", st->bucket_enc, enc);
	free(enc);
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

size_t gr_response_on_body(char *data, size_t size, size_t nmemb, void *userp)
{
	struct gr_request *req = userp;
	size_t len = size * nmemb;
	if (gbuf_add(&req->response, data, len) < 0)
		return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
	return len;
}

size_t gr_response_on_header(char *data, size_t size, size_t nmemb, void *userp)
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

/* ---- one attempt ---- */

/* A fresh easy handle and empty response fields for a new attempt. */
static int attempt_reset(struct gr_request *req)
{
	gr_request_reset_response(req);
	curl_slist_free_all(req->sent_headers);
	req->sent_headers = NULL;
	if (req->easy) {
		curl_easy_reset(req->easy);
		return 0;
	}
	req->easy = curl_easy_init();
	return req->easy ? 0 : -1;
}

/* base + path [+ '?' query], malloc'ed. */
static char *request_url(const struct gr_request *req, const char *base)
{
	struct gbuf url = {0};
	gbuf_adds(&url, base);
	gbuf_adds(&url, req->path);
	if (req->query && *req->query) {
		gbuf_addc(&url, '?');
		gbuf_adds(&url, req->query);
	}
	return gbuf_take(&url);
}

/* Appends "name: value" to a header list; NULL (the list freed) on failure. */
static struct curl_slist *header_append(struct curl_slist *l, const char *name, const char *value)
{
	struct gbuf line = {0};
	gbuf_addf(&line, "%s: %s", name, value);
	char *s = gbuf_take(&line);
	struct curl_slist *nl = s ? curl_slist_append(l, s) : NULL;
	free(s);
	if (!nl)
		curl_slist_free_all(l);
	return nl;
}

/* The headers sent: the signed ones, the Authorization line, two that turn
 * libcurl defaults off, then the unsigned ones. NULL when out of memory. */
static struct curl_slist *header_list(const struct gr_request *req, const struct sigv4_header *sh,
                                      size_t n, const char *authorization)
{
	struct curl_slist *l = NULL;
	for (size_t i = 0; i < n; i++)
		if (!(l = header_append(l, sh[i].name, sh[i].value)))
			return NULL;
	if (!(l = header_append(l, "Authorization", authorization)))
		return NULL;
	/* No Expect: 100-continue round trip, and no default form
	 * Content-Type on bodies that are not forms. */
	const char *const off[] = { "Expect:", "Content-Type:" };
	for (size_t i = 0; i < 2; i++) {
		struct curl_slist *nl = curl_slist_append(l, off[i]);
		if (!nl) {
			curl_slist_free_all(l);
			return NULL;
		}
		l = nl;
	}
	for (struct curl_slist *pl = req->plain; pl; pl = pl->next) {
		struct curl_slist *nl = curl_slist_append(l, pl->data);
		if (!nl) {
			curl_slist_free_all(l);
			return NULL;
		}
		l = nl;
	}
	return l;
}

/* Signs the request (host, payload hash, date and the x-amz-* headers) and
 * sets req->sent_headers. Returns 0 or -1. */
static int request_sign(struct gr_request *req, const char *host)
{
	struct gr_store *st = req->store;
	char payload_hash[65];
	sigv4_sha256_hex(req->body ? req->body : "", req->body ? req->body_len : 0, payload_hash);
	char amz_date[17];
	sigv4_amz_date(time(NULL), amz_date);

	size_t n_amz = 0;
	for (struct gr_header *h = req->amz; h; h = h->next)
		n_amz++;
	struct sigv4_header *sh = calloc(n_amz + 3, sizeof(*sh));
	if (!sh)
		return -1;
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
		req->sent_headers = header_list(req, sh, n, sig.authorization);
		rc = req->sent_headers ? 0 : -1;
		sigv4_result_free(&sig);
	}
	free(sh);
	return rc;
}

/* The options of the easy handle: URL, transport, callbacks, method and body. */
static void easy_setup(struct gr_request *req, const char *url)
{
	CURL *e = req->easy;
	curl_easy_setopt(e, CURLOPT_URL, url); /* libcurl copies the URL */
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
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, gr_response_on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, gr_response_on_header);
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
}

int gr_request_prepare(struct gr_request *req)
{
	struct gr_store *st = req->store;
	if (attempt_reset(req) < 0)
		return -1;
	char *url = request_url(req, req->api == GR_K2V ? st->k2v_base : st->s3_base);
	if (!url || request_sign(req, req->api == GR_K2V ? st->k2v_host : st->s3_host) < 0) {
		free(url);
		return -1;
	}
	easy_setup(req, url);
	free(url);
	return 0;
}
