/* sigv4.c - AWS Signature Version 4 as Garage verifies it (see sigv4.h). */
#include "drivers/garage/sigv4.h"
#include "drivers/garage/garage_buf.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/crypto.h>

static const char hexdigits[] = "0123456789abcdef";

static void hex_encode(const unsigned char *in, size_t len, char *out)
{
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = hexdigits[in[i] >> 4];
		out[2 * i + 1] = hexdigits[in[i] & 15];
	}
	out[2 * len] = 0;
}

void sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32) {
		out[0] = 0;
		return;
	}
	hex_encode(md, 32, out);
}

/* HMAC-SHA256(key, msg) into out (32 bytes). Returns 0 or -1. */
static int hmac_sha256(const unsigned char *key, size_t keylen, const char *msg,
                       unsigned char out[32])
{
	size_t outlen = 0;
	if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, keylen, (const unsigned char *)msg,
	               strlen(msg), out, 32, &outlen) ||
	    outlen != 32)
		return -1;
	return 0;
}

static int is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

static void uri_encode_into(struct gbuf *b, const char *data, size_t len, int keep_slash)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)data[i];
		if (is_unreserved(c) || (keep_slash && c == '/')) {
			gbuf_addc(b, (char)c);
		} else {
			char esc[3] = {'%', "0123456789ABCDEF"[c >> 4], "0123456789ABCDEF"[c & 15]};
			gbuf_add(b, esc, 3);
		}
	}
}

char *sigv4_uri_encode(const char *data, size_t len, int keep_slash)
{
	struct gbuf b = {0};
	uri_encode_into(&b, data, len, keep_slash);
	return gbuf_take(&b);
}

void sigv4_amz_date(time_t t, char out[17])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	if (strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
		out[0] = 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Form-decode s[0..len) ('+' is a space, %XX a byte; a broken escape is kept
 * as it is, like a lenient server) and re-encode it into b. */
static void query_component(struct gbuf *b, const char *s, size_t len)
{
	struct gbuf raw = {0};
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '+') {
			gbuf_addc(&raw, ' ');
		} else if (s[i] == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 &&
		           hexval(s[i + 2]) >= 0) {
			gbuf_addc(&raw, (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2])));
			i += 2;
		} else {
			gbuf_addc(&raw, s[i]);
		}
	}
	if (raw.failed)
		b->failed = 1;
	else
		uri_encode_into(b, raw.data ? raw.data : "", raw.len, 0);
	gbuf_free(&raw);
}

static int cmp_strings(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The canonical query string of a wire query, appended to b. */
static int canonical_query(struct gbuf *b, const char *query)
{
	if (!query || !*query)
		return 0;
	size_t n = 1;
	for (const char *p = query; *p; p++)
		n += *p == '&';
	char **pairs = calloc(n, sizeof(*pairs));
	if (!pairs)
		return -1;
	size_t count = 0;
	int rc = 0;
	const char *p = query;
	while (*p) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		if (len > 0) {
			const char *eq = memchr(p, '=', len);
			size_t klen = eq ? (size_t)(eq - p) : len;
			struct gbuf pair = {0};
			query_component(&pair, p, klen);
			gbuf_addc(&pair, '=');
			if (eq)
				query_component(&pair, eq + 1, len - klen - 1);
			pairs[count] = gbuf_take(&pair);
			if (!pairs[count]) {
				rc = -1;
				break;
			}
			count++;
		}
		p += len;
		if (*p == '&')
			p++;
	}
	if (rc == 0) {
		qsort(pairs, count, sizeof(*pairs), cmp_strings);
		for (size_t i = 0; i < count; i++) {
			if (i)
				gbuf_addc(b, '&');
			gbuf_adds(b, pairs[i]);
		}
	}
	for (size_t i = 0; i < count; i++)
		free(pairs[i]);
	free(pairs);
	return rc;
}

struct canon_header {
	char *name;        /* lower-case, malloc'ed */
	const char *value; /* trimmed start, length below */
	size_t value_len;
	size_t order;      /* position in the input, for a stable sort */
};

static int cmp_headers(const void *a, const void *b)
{
	const struct canon_header *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Appends the canonical header lines (each followed by '\n'), a blank line,
 * and the signed header list to b; the list alone goes to signed_list. */
static int canonical_headers(struct gbuf *b, struct gbuf *signed_list,
                             const struct sigv4_header *headers, size_t n)
{
	struct canon_header *h = calloc(n ? n : 1, sizeof(*h));
	if (!h)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		h[i].name = strdup(headers[i].name);
		if (!h[i].name) {
			rc = -1;
			goto out;
		}
		for (char *c = h[i].name; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		const char *v = headers[i].value ? headers[i].value : "";
		size_t len = strlen(v);
		while (len && is_blank(*v)) {
			v++;
			len--;
		}
		while (len && is_blank(v[len - 1]))
			len--;
		h[i].value = v;
		h[i].value_len = len;
		h[i].order = i;
	}
	qsort(h, n, sizeof(*h), cmp_headers);
	for (size_t i = 0; i < n; i++) {
		int repeat = i > 0 && strcmp(h[i].name, h[i - 1].name) == 0;
		if (repeat) {
			gbuf_addc(b, ',');
		} else {
			if (i > 0) {
				gbuf_addc(b, '\n');
				gbuf_addc(signed_list, ';');
			}
			gbuf_adds(b, h[i].name);
			gbuf_addc(b, ':');
			gbuf_adds(signed_list, h[i].name);
		}
		gbuf_add(b, h[i].value, h[i].value_len);
	}
	gbuf_adds(b, "\n\n");
	gbuf_add(b, signed_list->data ? signed_list->data : "", signed_list->len);
out:
	for (size_t i = 0; i < n; i++)
		free(h[i].name);
	free(h);
	return rc;
}

int sigv4_sign(const struct sigv4_params *p, struct sigv4_result *out)
{
	memset(out, 0, sizeof(*out));
	if (!p->method || !p->path || !p->payload_hash || !p->amz_date ||
	    strlen(p->amz_date) != 16 || !p->region || !p->service || !p->access_key_id ||
	    !p->secret_access_key)
		return -1;

	struct gbuf creq = {0}, signed_list = {0}, sts = {0}, auth = {0}, key = {0};
	int rc = -1;

	gbuf_adds(&creq, p->method);
	gbuf_addc(&creq, '\n');
	if (p->double_encode_path)
		uri_encode_into(&creq, p->path, strlen(p->path), 1);
	else
		gbuf_adds(&creq, p->path);
	gbuf_addc(&creq, '\n');
	if (canonical_query(&creq, p->query) < 0)
		goto out;
	gbuf_addc(&creq, '\n');
	if (canonical_headers(&creq, &signed_list, p->headers, p->n_headers) < 0)
		goto out;
	gbuf_addc(&creq, '\n');
	gbuf_adds(&creq, p->payload_hash);
	if (creq.failed || signed_list.failed)
		goto out;

	char date[9];
	memcpy(date, p->amz_date, 8);
	date[8] = 0;
	char creq_hash[65];
	sigv4_sha256_hex(creq.data, creq.len, creq_hash);
	gbuf_addf(&sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", p->amz_date, date,
	          p->region, p->service, creq_hash);
	if (sts.failed)
		goto out;

	unsigned char k[32];
	gbuf_addf(&key, "AWS4%s", p->secret_access_key);
	if (key.failed ||
	    hmac_sha256((const unsigned char *)key.data, key.len, date, k) < 0 ||
	    hmac_sha256(k, 32, p->region, k) < 0 || hmac_sha256(k, 32, p->service, k) < 0 ||
	    hmac_sha256(k, 32, "aws4_request", k) < 0)
		goto out;
	unsigned char sig[32];
	if (hmac_sha256(k, 32, sts.data, sig) < 0)
		goto out;
	hex_encode(sig, 32, out->signature);

	gbuf_addf(&auth, "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, "
	                 "Signature=%s",
	          p->access_key_id, date, p->region, p->service,
	          signed_list.data ? signed_list.data : "", out->signature);
	out->canonical_request = gbuf_take(&creq);
	out->string_to_sign = gbuf_take(&sts);
	out->authorization = gbuf_take(&auth);
	if (out->canonical_request && out->string_to_sign && out->authorization)
		rc = 0;
	OPENSSL_cleanse(k, sizeof(k));
out:
	if (key.data)
		OPENSSL_cleanse(key.data, key.len);
	gbuf_free(&key);
	gbuf_free(&creq);
	gbuf_free(&signed_list);
	gbuf_free(&sts);
	gbuf_free(&auth);
	if (rc < 0)
		sigv4_result_free(out);
	return rc;
}

void sigv4_result_free(struct sigv4_result *r)
{
	free(r->canonical_request);
	free(r->string_to_sign);
	free(r->authorization);
	r->canonical_request = r->string_to_sign = r->authorization = NULL;
}
