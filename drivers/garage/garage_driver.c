/*
 * garage_driver.c - the Garage driver's descriptor, configuration, open and
 * close. Rows live in Garage's K2V API (garage_k2v.c, garage_watch.c), blobs
 * in its S3 API (garage_s3.c); both are signed with SigV4 (sigv4.c) and sent
 * by the engines of garage_http.c.
 */
#include "drivers/garage/garage.h"
#include "drivers/garage/sigv4.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TIMEOUT_MS 30000L
#define DEFAULT_POLL_TIMEOUT_S 300u
#define DEFAULT_MAX_CONNECTIONS 32L
#define DEFAULT_RETRIES 4

static const char *const garage_config_keys[] = {
	"k2v_endpoint", "s3_endpoint", "region", "bucket", "access_key_id",
	"secret_access_key", "secret_access_key_file", "timeout_ms", "poll_timeout_s",
	"max_connections", "retries", NULL,
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_code;

static void curl_init(void)
{
	curl_init_code = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Split "http://host:port[/]" into the base URL and the Host header value. */
static int parse_endpoint(const char *key, const char *url, char **base, char **host,
                          char *errbuf, size_t errlen)
{
	const char *rest;
	if (strncmp(url, "http://", 7) == 0)
		rest = url + 7;
	else if (strncmp(url, "https://", 8) == 0)
		rest = url + 8;
	else {
		snprintf(errbuf, errlen, "garage: %s '%s' must start with http:// or https://", key,
		         url);
		return -1;
	}
	size_t hlen = strcspn(rest, "/?#");
	if (hlen == 0) {
		snprintf(errbuf, errlen, "garage: %s '%s' has no host", key, url);
		return -1;
	}
	if (rest[hlen] == '?' || rest[hlen] == '#' ||
	    (rest[hlen] == '/' && rest[hlen + 1] != 0)) {
		snprintf(errbuf, errlen, "garage: %s '%s' must not have a path (Garage is "
		                         "addressed path-style at its root)",
		         key, url);
		return -1;
	}
	*host = strndup(rest, hlen);
	*base = strndup(url, (size_t)(rest - url) + hlen);
	if (!*host || !*base) {
		snprintf(errbuf, errlen, "garage: out of memory");
		return -1;
	}
	return 0;
}

static char *read_secret_file(const char *path, char *errbuf, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(errbuf, errlen, "garage: cannot open secret_access_key_file %s: %s", path,
		         strerror(errno));
		return NULL;
	}
	char line[512];
	char *s = fgets(line, sizeof(line), f) ? line : NULL;
	fclose(f);
	if (!s) {
		snprintf(errbuf, errlen, "garage: secret_access_key_file %s is empty", path);
		return NULL;
	}
	size_t len = strlen(line);
	while (len && isspace((unsigned char)line[len - 1]))
		line[--len] = 0;
	if (!len) {
		snprintf(errbuf, errlen, "garage: secret_access_key_file %s is empty", path);
		return NULL;
	}
	char *secret = strdup(line);
	if (!secret)
		snprintf(errbuf, errlen, "garage: out of memory");
	return secret;
}

static void store_free(struct gr_store *st)
{
	if (!st)
		return;
	gr_engine_stop(st->watches);
	gr_engine_stop(st->requests);
	free(st->k2v_base);
	free(st->k2v_host);
	free(st->s3_base);
	free(st->s3_host);
	free(st->region);
	free(st->bucket);
	free(st->bucket_enc);
	free(st->access_key_id);
	if (st->secret_access_key) {
		memset(st->secret_access_key, 0, strlen(st->secret_access_key));
		free(st->secret_access_key);
	}
	free(st);
}

static int garage_open(const struct aerogram_host *host, const struct aerogram_config_entry *config,
                       size_t n_config, struct aerogram_store **out, char *errbuf, size_t errlen)
{
	*out = NULL;
	if (errlen)
		errbuf[0] = 0;
	if (agk_config_check(garage_config_keys, config, n_config, "garage", errbuf, errlen) < 0)
		return AEROGRAM_EINVAL; /* the host refuses these keys too; the tests open it directly */
	pthread_once(&curl_once, curl_init);
	if (curl_init_code != CURLE_OK) {
		snprintf(errbuf, errlen, "garage: curl_global_init failed: %s",
		         curl_easy_strerror(curl_init_code));
		return AEROGRAM_EINTERNAL;
	}

	struct gr_store *st = agk_store_new(sizeof(*st), "garage", errbuf, errlen);
	if (!st)
		return AEROGRAM_EINTERNAL;
	st->host = host;
	const char *k2v = agk_config_value(config, n_config, "k2v_endpoint");
	const char *s3 = agk_config_value(config, n_config, "s3_endpoint");
	const char *bucket = agk_config_value(config, n_config, "bucket");
	const char *key_id = agk_config_value(config, n_config, "access_key_id");
	const char *secret = agk_config_value(config, n_config, "secret_access_key");
	const char *secret_file = agk_config_value(config, n_config, "secret_access_key_file");
	const char *region = agk_config_value(config, n_config, "region");
	long timeout_ms = DEFAULT_TIMEOUT_MS, poll_timeout_s = DEFAULT_POLL_TIMEOUT_S;
	long max_connections = DEFAULT_MAX_CONNECTIONS, retries = DEFAULT_RETRIES;

	if (!(k2v && *k2v) && !(s3 && *s3)) {
		snprintf(errbuf, errlen, "garage: set k2v_endpoint (rows) and s3_endpoint (blobs), "
		                         "e.g. k2v_endpoint = http://127.0.0.1:3904");
		goto fail;
	}
	if (k2v && *k2v && parse_endpoint("k2v_endpoint", k2v, &st->k2v_base, &st->k2v_host,
	                                  errbuf, errlen) < 0)
		goto fail;
	if (s3 && *s3 &&
	    parse_endpoint("s3_endpoint", s3, &st->s3_base, &st->s3_host, errbuf, errlen) < 0)
		goto fail;
	if (!bucket || !*bucket) {
		snprintf(errbuf, errlen, "garage: bucket is required (the bucket created with "
		                         "`garage bucket create`)");
		goto fail;
	}
	if (!key_id || !*key_id) {
		snprintf(errbuf, errlen, "garage: access_key_id is required (GK... from `garage key "
		                         "create`)");
		goto fail;
	}
	if (secret && secret_file) {
		snprintf(errbuf, errlen, "garage: set secret_access_key or secret_access_key_file, "
		                         "not both");
		goto fail;
	}
	if (secret_file) {
		st->secret_access_key = read_secret_file(secret_file, errbuf, errlen);
		if (!st->secret_access_key)
			goto fail;
	} else if (secret && *secret) {
		st->secret_access_key = strdup(secret);
	} else {
		snprintf(errbuf, errlen, "garage: secret_access_key or secret_access_key_file is "
		                         "required");
		goto fail;
	}
	st->bucket = strdup(bucket);
	st->bucket_enc = sigv4_uri_encode(bucket, strlen(bucket), 0);
	st->access_key_id = strdup(key_id);
	st->region = strdup(region && *region ? region : "garage");
	if (!st->bucket || !st->bucket_enc || !st->access_key_id || !st->region ||
	    !st->secret_access_key) {
		snprintf(errbuf, errlen, "garage: out of memory");
		goto fail;
	}

	if (agk_config_long(config, n_config, "timeout_ms", 100, 3600000, &timeout_ms, "garage",
	                    errbuf, errlen) < 0 ||
	    agk_config_long(config, n_config, "poll_timeout_s", 1, 600, &poll_timeout_s, "garage",
	                    errbuf, errlen) < 0 ||
	    agk_config_long(config, n_config, "max_connections", 1, 4096, &max_connections,
	                    "garage", errbuf, errlen) < 0 ||
	    agk_config_long(config, n_config, "retries", 0, 20, &retries, "garage", errbuf,
	                    errlen) < 0)
		goto fail;
	st->timeout_ms = timeout_ms;
	st->poll_timeout_s = (unsigned)poll_timeout_s;
	st->max_connections = max_connections;
	st->retries = (int)retries;

	st->requests = gr_engine_start(st, st->max_connections, errbuf, errlen);
	if (!st->requests)
		goto fail;
	st->watches = gr_engine_start(st, 0, errbuf, errlen);
	if (!st->watches)
		goto fail;
	*out = (struct aerogram_store *)st;
	return AEROGRAM_OK;
fail:
	store_free(st);
	return AEROGRAM_EINVAL;
}

static void garage_close(struct aerogram_store *store)
{
	store_free((struct gr_store *)store);
}

static const char *garage_error_message(struct aerogram_store *store)
{
	(void)store;
	const char *text = agk_error_text();
	return text[0] ? text : "garage: no error";
}

/* Refuse an operation whose API has no endpoint configured. */
static int need(struct aerogram_store *store, enum gr_api api)
{
	struct gr_store *st = (struct gr_store *)store;
	if (api == GR_K2V && !st->k2v_base)
		return agk_fail(AEROGRAM_ENOTSUP, "garage: no k2v_endpoint configured (rows)");
	if (api == GR_S3 && !st->s3_base)
		return agk_fail(AEROGRAM_ENOTSUP, "garage: no s3_endpoint configured (blobs)");
	return 0;
}

static int garage_row_read(struct aerogram_store *s, const struct aerogram_row_query *q, size_t n,
                           struct aerogram_row_result **out)
{
	*out = NULL;
	int rc = need(s, GR_K2V);
	return rc ? rc : gr_row_read(s, q, n, out);
}

static int garage_row_insert(struct aerogram_store *s, const struct aerogram_row_write *w,
                             size_t n)
{
	int rc = need(s, GR_K2V);
	return rc ? rc : gr_row_insert(s, w, n);
}

static int garage_row_delete(struct aerogram_store *s, const struct aerogram_row_query *q,
                             size_t n, uint64_t *deleted)
{
	if (deleted)
		*deleted = 0;
	int rc = need(s, GR_K2V);
	return rc ? rc : gr_row_delete(s, q, n, deleted);
}

static int garage_blob_get(struct aerogram_store *s, const struct aerogram_blob_request *r,
                           size_t n, struct aerogram_blob_result **out)
{
	*out = NULL;
	int rc = need(s, GR_S3);
	return rc ? rc : gr_blob_get(s, r, n, out);
}

static int garage_blob_put(struct aerogram_store *s, const char *key, const uint8_t *data,
                           size_t len, const struct aerogram_meta *meta, size_t n_meta)
{
	int rc = need(s, GR_S3);
	return rc ? rc : gr_blob_put(s, key, data, len, meta, n_meta);
}

static int garage_blob_copy(struct aerogram_store *s, const char *src, const char *dst)
{
	int rc = need(s, GR_S3);
	return rc ? rc : gr_blob_copy(s, src, dst);
}

static int garage_blob_list(struct aerogram_store *s, const char *prefix,
                            const char *continuation, uint32_t max_keys,
                            struct aerogram_blob_list **out)
{
	*out = NULL;
	int rc = need(s, GR_S3);
	return rc ? rc : gr_blob_list(s, prefix, continuation, max_keys, out);
}

static int garage_blob_delete(struct aerogram_store *s, const char *const *keys, size_t n)
{
	int rc = need(s, GR_S3);
	return rc ? rc : gr_blob_delete(s, keys, n);
}

static const struct aerogram_driver garage_driver = {
	AEROGRAM_DRIVER_HEADER,
	.name = "garage",
	.version = "1.0",
	.config_keys = garage_config_keys,
	.open = garage_open,
	AGK_DRIVER_CALLS(garage),
	.error_message = garage_error_message,
	.row_result_free = gr_row_result_free,
	.blob_result_free = agk_blob_result_free,
	.blob_list_free = gr_blob_list_free,
};

AEROGRAM_DRIVER_EXPORT(garage_driver)
