/*
 * garage_s3.c - blobs on Garage's S3 API: GetObject (with Range, a batch in
 * parallel), PutObject with x-amz-meta-*, CopyObject, ListObjectsV2 and
 * DeleteObjects, the XML answers read with expat.
 */
#include "drivers/garage/garage.h"
#include "drivers/garage/sigv4.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <expat.h>
#include <openssl/evp.h>

#define S3_DELETE_CHUNK 1000
#define S3_MAX_KEYS 1000

/* The wire path of a key: /bucket/key with the key URI-encoded ('/' kept). */
static char *object_path(struct gr_store *st, const char *key)
{
	return gr_bucket_path(st, sigv4_uri_encode(key, strlen(key), 1));
}

static int check_key(const char *key)
{
	if (!key || !*key)
		return agk_fail(AEROGRAM_EINVAL, "garage: an empty blob key");
	if (*key == '/')
		return agk_fail(AEROGRAM_EINVAL, "garage: blob key '%s' starts with '/'", key);
	if (strlen(key) > 479)
		return agk_fail(AEROGRAM_ETOOBIG, "garage: blob key of %zu bytes (at most 479)",
		               strlen(key));
	return 0;
}

/* ---- blob_get ---- */

/* Parse "bytes a-b/total" or "bytes * /total" into *total. */
static int parse_content_range(const char *v, uint64_t *total)
{
	const char *slash = v ? strrchr(v, '/') : NULL;
	if (!slash || slash[1] == '*')
		return -1;
	char *end;
	unsigned long long t = strtoull(slash + 1, &end, 10);
	if (end == slash + 1)
		return -1;
	*total = t;
	return 0;
}

/* The <ActualObjectSize> of an InvalidRange error body. */
static int error_object_size(const struct gr_request *req, uint64_t *total)
{
	if (!req->response.len)
		return -1;
	struct gr_xml_field f = { "ActualObjectSize", {0} };
	int ok = gr_xml_fields(req->response.data, req->response.len, NULL, NULL, &f, 1) == 0 &&
	         f.text.len > 0;
	if (ok) {
		char *end;
		*total = strtoull(f.text.data, &end, 10);
		ok = *end == 0;
	}
	gbuf_free(&f.text);
	return ok ? 0 : -1;
}

static int fill_blob(struct agk_blob_result *res, struct aerogram_blob *b,
                     struct gr_request *req)
{
	if (req->curl_code != CURLE_OK || req->status >= 500 || req->status == 403)
		return gr_request_status(req); /* the store as a whole failed */
	if (req->status == 404) {
		b->status = AEROGRAM_ENOTFOUND;
		return 0;
	}
	if (req->status == 416) {
		/* An offset past the end: an empty range of a blob that exists.
		 * Garage gives the size in Content-Range (bytes * /size); other
		 * S3 servers only in the error's <ActualObjectSize>. */
		uint64_t total = 0;
		if (parse_content_range(gr_response_header(req, "content-range"), &total) < 0 &&
		    error_object_size(req, &total) < 0)
			return agk_fail(AEROGRAM_EINTERNAL, "garage: 416 on GetObject %s without the "
			                                   "object's size",
			               req->path);
		b->status = AEROGRAM_OK;
		b->total_size = total;
		b->data = (const uint8_t *)"";
		return 0;
	}
	if (req->status != 200 && req->status != 206) {
		char *msg;
		b->status = gr_request_error(req, &msg);
		if (b->status == AEROGRAM_OK)
			b->status = AEROGRAM_EINTERNAL;
		free(msg);
		return 0;
	}
	b->status = AEROGRAM_OK;
	b->len = req->response.len;
	b->data = (const uint8_t *)agk_arena_strndup(&res->arena,
	                                            req->response.data ? req->response.data : "",
	                                            req->response.len);
	if (!b->data)
		return agk_fail(AEROGRAM_EINTERNAL, "garage: out of memory");
	b->total_size = req->response.len;
	if (req->status == 206 &&
	    parse_content_range(gr_response_header(req, "content-range"), &b->total_size) < 0)
		return agk_fail(AEROGRAM_EINTERNAL, "garage: 206 without a usable Content-Range on "
		                                   "GetObject %s",
		               req->path);
	size_t n_meta = 0;
	for (const struct gr_header *h = req->headers; h; h = h->next)
		n_meta += strncmp(h->name, "x-amz-meta-", 11) == 0;
	struct aerogram_meta *meta = agk_arena_alloc(&res->arena, (n_meta ? n_meta : 1) *
	                                                                 sizeof(*meta));
	if (!meta)
		return agk_fail(AEROGRAM_EINTERNAL, "garage: out of memory");
	size_t k = 0;
	/* Headers were collected newest first; restore the order sent. */
	for (size_t pass = n_meta; pass > 0; pass--) {
		size_t seen = 0;
		for (const struct gr_header *h = req->headers; h; h = h->next) {
			if (strncmp(h->name, "x-amz-meta-", 11) != 0)
				continue;
			if (++seen == pass) {
				meta[k].name = agk_arena_strdup(&res->arena, h->name + 11);
				meta[k].value = agk_arena_strdup(&res->arena, h->value);
				if (!meta[k].name || !meta[k].value)
					return agk_fail(AEROGRAM_EINTERNAL, "garage: out of memory");
				k++;
			}
		}
	}
	b->meta = meta;
	b->n_meta = k;
	return 0;
}

int gr_blob_get(struct aerogram_store *store, const struct aerogram_blob_request *requests,
                size_t n, struct aerogram_blob_result **out)
{
	struct gr_store *st = (struct gr_store *)store;
	*out = NULL;
	for (size_t i = 0; i < n; i++) {
		int rc = check_key(requests[i].key);
		if (rc)
			return rc;
	}
	struct gr_request *reqs = calloc(n ? n : 1, sizeof(*reqs));
	struct gr_request **ptrs = calloc(n ? n : 1, sizeof(*ptrs));
	struct agk_blob_result *res = agk_blob_result_new();
	struct aerogram_blob *blobs =
		res ? agk_arena_alloc(&res->arena, (n ? n : 1) * sizeof(*blobs)) : NULL;
	int rc = 0;
	if (!reqs || !ptrs || !blobs) {
		rc = agk_fail(AEROGRAM_EINTERNAL, "garage: out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const struct aerogram_blob_request *r = &requests[i];
		struct gr_request *req = &reqs[i];
		ptrs[i] = req;
		gr_request_init(req, st, GR_S3, "GetObject", "GET");
		req->path = object_path(st, r->key);
		char range[80] = "";
		if (r->length > 0)
			snprintf(range, sizeof(range), "Range: bytes=%" PRIu64 "-%" PRIu64, r->offset,
			         r->offset + r->length - 1);
		else if (r->offset > 0)
			snprintf(range, sizeof(range), "Range: bytes=%" PRIu64 "-", r->offset);
		if (!req->path || (range[0] && gr_request_plain(req, range) < 0)) {
			rc = agk_fail(AEROGRAM_EINTERNAL, "garage: out of memory");
			goto out;
		}
	}
	gr_perform(st, ptrs, n);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = fill_blob(res, &blobs[i], &reqs[i]);
out:
	for (size_t i = 0; reqs && i < n; i++)
		gr_request_free(&reqs[i]);
	free(reqs);
	free(ptrs);
	if (!res)
		return rc;
	res->pub.n_blobs = n;
	res->pub.blobs = blobs;
	return agk_blob_result_done(rc, res, out);
}

/* ---- blob_put, blob_copy ---- */

static int check_meta_name(const char *name)
{
	if (!name || !*name)
		return -1;
	for (const char *c = name; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-'))
			return -1;
	return 0;
}

int gr_blob_put(struct aerogram_store *store, const char *key, const uint8_t *data, size_t len,
                const struct aerogram_meta *meta, size_t n_meta)
{
	struct gr_store *st = (struct gr_store *)store;
	int rc = check_key(key);
	if (rc)
		return rc;
	if (len && !data)
		return agk_fail(AEROGRAM_EINVAL, "garage: blob %s without its data", key);
	struct gr_request req;
	gr_request_init(&req, st, GR_S3, "PutObject", "PUT");
	/* Blobs are immutable: writing the same bytes again is harmless. */
	req.retry = GR_RETRY_ALWAYS;
	req.path = object_path(st, key);
	if (!req.path) {
		gr_request_free(&req);
		return agk_fail(AEROGRAM_EINTERNAL, "garage: out of memory");
	}
	/* The caller's bytes are sent as they are, without a copy: the call
	 * returns only once the request is done. */
	req.body = (char *)(uintptr_t)(data ? data : (const uint8_t *)"");
	req.body_borrowed = 1;
	req.body_len = len;
	/* Large bodies get more time than a small request. */
	req.timeout_ms = st->timeout_ms + (long)(len / (1024 * 1024)) * 1000;
	for (size_t i = 0; i < n_meta; i++) {
		if (check_meta_name(meta[i].name) < 0 || !meta[i].value) {
			gr_request_free(&req);
			return agk_fail(AEROGRAM_EINVAL, "garage: bad metadata name '%s' on %s",
			               meta[i].name ? meta[i].name : "(null)", key);
		}
		char name[128];
		if ((size_t)snprintf(name, sizeof(name), "x-amz-meta-%s", meta[i].name) >=
		    sizeof(name)) {
			gr_request_free(&req);
			return agk_fail(AEROGRAM_EINVAL, "garage: metadata name '%s' too long",
			               meta[i].name);
		}
		if (gr_request_amz(&req, name, meta[i].value) < 0) {
			gr_request_free(&req);
			return agk_fail(AEROGRAM_EINTERNAL, "garage: out of memory");
		}
	}
	gr_perform(st, (struct gr_request *[]){&req}, 1);
	rc = gr_request_status(&req);
	gr_request_free(&req);
	return rc;
}

int gr_blob_copy(struct aerogram_store *store, const char *src, const char *dst)
{
	struct gr_store *st = (struct gr_store *)store;
	int rc = check_key(src);
	if (!rc)
		rc = check_key(dst);
	if (rc)
		return rc;
	struct gr_request req;
	gr_request_init(&req, st, GR_S3, "CopyObject", "PUT");
	req.path = object_path(st, dst);
	char *src_path = object_path(st, src);
	if (!req.path || !src_path || gr_request_amz(&req, "x-amz-copy-source", src_path) < 0) {
		free(src_path);
		gr_request_free(&req);
		return agk_fail(AEROGRAM_EINTERNAL, "garage: out of memory");
	}
	free(src_path);
	gr_perform(st, (struct gr_request *[]){&req}, 1);
	rc = gr_request_status(&req);
	if (rc == 0 && req.response.len) {
		/* S3 may answer 200 with an <Error> body when the copy failed
		 * after the status was sent. */
		struct gr_xml_field f = { "Code", {0} };
		int is_error;
		gr_xml_fields(req.response.data, req.response.len, "Error", &is_error, &f, 1);
		if (is_error) {
			const char *code = f.text.data ? f.text.data : "unknown";
			rc = agk_fail(strcmp(code, "NoSuchKey") == 0 ? AEROGRAM_ENOTFOUND
			                                            : AEROGRAM_EUNAVAILABLE,
			             "garage: 200 with error %s on CopyObject %s", code, req.path);
		}
		gbuf_free(&f.text);
	}
	gr_request_free(&req);
	return rc;
}

/* ---- blob_list ---- */

struct gr_blob_list_impl {
	struct aerogram_blob_list pub; /* first: the handle the host sees */
	char **keys;
	uint64_t *sizes;
	size_t cap;
	char *next_token;
};

struct list_parse {
	struct gr_xml_walk walk; /* first: gr_xml_walk_text reads it */
	struct gr_blob_list_impl *list;
	int in_contents;
	struct gbuf key;
	uint64_t size;
	int truncated;
	int failed;
};

static void XMLCALL list_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	(void)attrs;
	struct list_parse *p = ud;
	gr_xml_walk_start(&p->walk);
	if (p->walk.depth == 2 && strcmp(name, "Contents") == 0) {
		p->in_contents = 1;
		gbuf_free(&p->key);
		p->size = 0;
	} else if (p->walk.depth == 3 && p->in_contents &&
	           (strcmp(name, "Key") == 0 || strcmp(name, "Size") == 0)) {
		p->walk.field = strcmp(name, "Key") == 0 ? "Key" : "Size";
	} else if (p->walk.depth == 2 &&
	           (strcmp(name, "IsTruncated") == 0 || strcmp(name, "NextContinuationToken") == 0)) {
		p->walk.field = strcmp(name, "IsTruncated") == 0 ? "IsTruncated" : "Next";
	}
}

static int list_push(struct gr_blob_list_impl *l, char *key, uint64_t size)
{
	size_t keys_cap = l->cap;
	if (agk_grow(&l->keys, &keys_cap, l->pub.n_keys, sizeof(*l->keys), 64) < 0 ||
	    agk_grow(&l->sizes, &l->cap, l->pub.n_keys, sizeof(*l->sizes), 64) < 0)
		return -1;
	l->keys[l->pub.n_keys] = key;
	l->sizes[l->pub.n_keys] = size;
	l->pub.n_keys++;
	return 0;
}

static void XMLCALL list_end(void *ud, const XML_Char *name)
{
	struct list_parse *p = ud;
	const char *text = p->walk.text.data ? p->walk.text.data : "";
	if (p->walk.field) {
		if (strcmp(p->walk.field, "Key") == 0) {
			gbuf_free(&p->key);
			gbuf_adds(&p->key, text);
		} else if (strcmp(p->walk.field, "Size") == 0) {
			p->size = strtoull(text, NULL, 10);
		} else if (strcmp(p->walk.field, "IsTruncated") == 0) {
			p->truncated = strcmp(text, "true") == 0;
		} else {
			free(p->list->next_token);
			p->list->next_token = strdup(text);
			if (!p->list->next_token)
				p->failed = 1;
		}
	}
	if (p->walk.depth == 2 && strcmp(name, "Contents") == 0) {
		p->in_contents = 0;
		char *key = gbuf_take(&p->key);
		if (!key || list_push(p->list, key, p->size) < 0) {
			free(key);
			p->failed = 1;
		}
	}
	gr_xml_walk_end(&p->walk);
}

void gr_blob_list_free(struct aerogram_store *store, struct aerogram_blob_list *list)
{
	(void)store;
	if (!list)
		return;
	struct gr_blob_list_impl *l = (struct gr_blob_list_impl *)list;
	for (size_t i = 0; i < l->pub.n_keys; i++)
		free(l->keys[i]);
	free(l->keys);
	free(l->sizes);
	free(l->next_token);
	free(l);
}

static void add_param(struct gbuf *q, const char *name, const char *value)
{
	char *enc = sigv4_uri_encode(value, strlen(value), 0);
	if (!enc) {
		q->failed = 1;
		return;
	}
	gbuf_addf(q, "%s%s=%s", q->len ? "&" : "", name, enc);
	free(enc);
}

int gr_blob_list(struct aerogram_store *store, const char *prefix, const char *continuation,
                 uint32_t max_keys, struct aerogram_blob_list **out)
{
	struct gr_store *st = (struct gr_store *)store;
	*out = NULL;
	if (max_keys == 0 || max_keys > S3_MAX_KEYS)
		max_keys = S3_MAX_KEYS;
	struct gr_request req;
	gr_request_init(&req, st, GR_S3, "ListObjectsV2", "GET");
	struct gbuf path = {0}, q = {0};
	gbuf_addf(&path, "/%s", st->bucket_enc);
	req.path = gbuf_take(&path);
	if (continuation && *continuation)
		add_param(&q, "continuation-token", continuation);
	gbuf_addf(&q, "%slist-type=2&max-keys=%u", q.len ? "&" : "", (unsigned)max_keys);
	if (prefix && *prefix)
		add_param(&q, "prefix", prefix);
	req.query = gbuf_take(&q);
	if (!req.path || !req.query) {
		gr_request_free(&req);
		return agk_fail(AEROGRAM_EINTERNAL, "garage: out of memory");
	}
	gr_perform(st, (struct gr_request *[]){&req}, 1);
	int rc = gr_request_status(&req);
	struct gr_blob_list_impl *l = NULL;
	if (rc == 0) {
		l = calloc(1, sizeof(*l));
		struct list_parse p = {.list = l};
		rc = l ? gr_xml_parse(req.response.data, req.response.len, &p, list_start, list_end,
		                      gr_xml_walk_text, "ListObjectsV2")
		       : agk_fail(AEROGRAM_EINTERNAL, "garage: out of memory");
		if (rc == 0 && p.failed)
			rc = agk_fail(AEROGRAM_EINTERNAL, "garage: out of memory");
		else if (rc == 0 && p.truncated && !(l->next_token && *l->next_token))
			rc = agk_fail(AEROGRAM_EINTERNAL, "garage: ListObjectsV2 truncated without "
			                                 "a continuation token");
		gbuf_free(&p.walk.text);
		gbuf_free(&p.key);
		if (rc == 0) {
			l->pub.keys = (const char *const *)l->keys;
			l->pub.sizes = l->sizes;
			l->pub.more = p.truncated;
			if (!p.truncated) {
				free(l->next_token);
				l->next_token = NULL;
			}
			l->pub.next_token = l->next_token;
		}
	}
	gr_request_free(&req);
	if (rc) {
		gr_blob_list_free(store, l ? &l->pub : NULL);
		return rc;
	}
	*out = &l->pub;
	return 0;
}

/* ---- blob_delete ---- */

static void xml_escape(struct gbuf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': gbuf_adds(b, "&amp;"); break;
		case '<': gbuf_adds(b, "&lt;"); break;
		case '>': gbuf_adds(b, "&gt;"); break;
		case '"': gbuf_adds(b, "&quot;"); break;
		case '\'': gbuf_adds(b, "&apos;"); break;
		default: gbuf_addc(b, *s);
		}
	}
}

struct delete_parse {
	struct gr_xml_walk walk; /* first: gr_xml_walk_text reads it */
	int in_error;
	struct gbuf code, key;
	struct gbuf first_error; /* "Code on key" of the first real error */
};

static void XMLCALL del_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	(void)attrs;
	struct delete_parse *p = ud;
	gr_xml_walk_start(&p->walk);
	if (p->walk.depth == 2 && strcmp(name, "Error") == 0) {
		p->in_error = 1;
		gbuf_free(&p->code);
		gbuf_free(&p->key);
	} else if (p->in_error && p->walk.depth == 3 &&
	           (strcmp(name, "Code") == 0 || strcmp(name, "Key") == 0)) {
		p->walk.field = strcmp(name, "Code") == 0 ? "Code" : "Key";
	}
}

static void XMLCALL del_end(void *ud, const XML_Char *name)
{
	struct delete_parse *p = ud;
	if (p->walk.field) {
		struct gbuf *dst = strcmp(p->walk.field, "Code") == 0 ? &p->code : &p->key;
		gbuf_free(dst);
		gbuf_adds(dst, p->walk.text.data ? p->walk.text.data : "");
	}
	if (p->walk.depth == 2 && strcmp(name, "Error") == 0) {
		p->in_error = 0;
		/* Garage reports a missing key as an error; it is not one here. */
		const char *code = p->code.data ? p->code.data : "";
		if (strcmp(code, "NoSuchKey") != 0 && p->first_error.len == 0)
			gbuf_addf(&p->first_error, "%s on %s", *code ? code : "(no code)",
			          p->key.data ? p->key.data : "(no key)");
	}
	gr_xml_walk_end(&p->walk);
}

static int delete_chunk(struct gr_store *st, const char *const *keys, size_t n)
{
	struct gbuf body = {0};
	/* Compact: Garage refuses whitespace between the elements. */
	gbuf_adds(&body, "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
	for (size_t i = 0; i < n; i++) {
		gbuf_adds(&body, "<Object><Key>");
		xml_escape(&body, keys[i]);
		gbuf_adds(&body, "</Key></Object>");
	}
	gbuf_adds(&body, "<Quiet>true</Quiet></Delete>");
	struct gr_request req;
	gr_request_init(&req, st, GR_S3, "DeleteObjects", "POST");
	req.body_len = body.len;
	req.body = gbuf_take(&body);
	struct gbuf path = {0};
	gbuf_addf(&path, "/%s", st->bucket_enc);
	req.path = gbuf_take(&path);
	req.query = strdup("delete");
	/* AWS requires Content-MD5 on this request; Garage ignores it. */
	unsigned char md5[16];
	unsigned int md5len = 0;
	char md5b64[32], line[64];
	if (!req.body || !req.path || !req.query ||
	    !EVP_Digest(req.body, req.body_len, md5, &md5len, EVP_md5(), NULL)) {
		gr_request_free(&req);
		return agk_fail(AEROGRAM_EINTERNAL, "garage: out of memory");
	}
	EVP_EncodeBlock((unsigned char *)md5b64, md5, (int)md5len);
	snprintf(line, sizeof(line), "Content-MD5: %s", md5b64);
	if (gr_request_plain(&req, line) < 0 ||
	    gr_request_plain(&req, "Content-Type: application/xml") < 0) {
		gr_request_free(&req);
		return agk_fail(AEROGRAM_EINTERNAL, "garage: out of memory");
	}
	gr_perform(st, (struct gr_request *[]){&req}, 1);
	int rc = gr_request_status(&req);
	if (rc == 0 && req.response.len) {
		struct delete_parse p = {0};
		rc = gr_xml_parse(req.response.data, req.response.len, &p, del_start, del_end,
		                  gr_xml_walk_text, "DeleteObjects");
		if (rc == 0 && p.first_error.len)
			rc = agk_fail(AEROGRAM_EUNAVAILABLE, "garage: DeleteObjects failed: %s",
			             p.first_error.data);
		gbuf_free(&p.walk.text);
		gbuf_free(&p.code);
		gbuf_free(&p.key);
		gbuf_free(&p.first_error);
	}
	gr_request_free(&req);
	return rc;
}

int gr_blob_delete(struct aerogram_store *store, const char *const *keys, size_t n)
{
	struct gr_store *st = (struct gr_store *)store;
	for (size_t i = 0; i < n; i++) {
		int rc = check_key(keys[i]);
		if (rc)
			return rc;
	}
	for (size_t i = 0; i < n; i += S3_DELETE_CHUNK) {
		size_t m = n - i < S3_DELETE_CHUNK ? n - i : S3_DELETE_CHUNK;
		int rc = delete_chunk(st, keys + i, m);
		if (rc)
			return rc;
	}
	return 0;
}
