/*
 * garage.h - internals shared by the files of the Garage driver.
 *
 * Every HTTP request goes through an engine: one thread driving one libcurl
 * multi handle. A store has two of them. The request engine carries the
 * synchronous calls (the calling thread submits a batch and waits, so a batch
 * of N requests costs about one round trip, and connections are kept alive
 * in the multi handle's pool). The watch engine carries every long poll,
 * whatever the number of watches, and runs the watch callbacks. Keeping the
 * polls apart means thousands of parked polls never hold back a read.
 */
#ifndef AG_GARAGE_H
#define AG_GARAGE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <expat.h>

#include "aerogram/driver.h"
#include "drivers/garage/garage_buf.h"

struct gr_engine;

struct gr_store {
	const struct aerogram_host *host;
	char *k2v_base;   /* scheme://authority, no trailing slash */
	char *k2v_host;   /* authority: the Host header we send and sign */
	char *s3_base;
	char *s3_host;
	char *region;
	char *bucket;
	char *bucket_enc; /* bucket URI-encoded for paths */
	char *access_key_id;
	char *secret_access_key;
	long timeout_ms;        /* per ordinary request */
	unsigned poll_timeout_s; /* upper bound of one long poll, in [1, 600] */
	long max_connections;   /* requests in flight at once on the request engine */
	int retries;            /* extra attempts for a retryable failure */
	struct gr_engine *requests;
	struct gr_engine *watches;
};

enum gr_api { GR_K2V, GR_S3 };

/* When a failed attempt may be sent again. */
enum gr_retry {
	GR_RETRY_NEVER,    /* never */
	GR_RETRY_CONNECT,  /* only when the request provably never reached the server */
	GR_RETRY_ALWAYS    /* idempotent: on connection errors, timeouts and 502/503/504 */
};

struct gr_header {
	char *name;  /* lower-case */
	char *value; /* trimmed */
	struct gr_header *next;
};

struct gr_request;
typedef void (*gr_done_fn)(struct gr_request *req);

/* One HTTP request and, once done, its response. Filled by the caller with
 * gr_request_init and the setters; owned by the caller, who frees it with
 * gr_request_free after `done` ran. */
struct gr_request {
	struct gr_store *store;
	enum gr_api api;
	const char *op;          /* static: the operation name for messages ("ReadBatch") */
	const char *method;      /* static */
	char *path;              /* wire path, malloc'ed */
	char *query;             /* wire query without '?', malloc'ed or NULL */
	struct gr_header *amz;   /* x-amz-* headers to sign (besides date and sha256) */
	struct curl_slist *plain; /* unsigned headers ("Accept: ...") */
	char *body;              /* request body, may be NULL; malloc'ed unless body_borrowed */
	size_t body_len;
	int body_borrowed;       /* body belongs to the caller, who keeps it until done */
	long timeout_ms;
	enum gr_retry retry;
	gr_done_fn done;         /* called on the engine thread */
	void *arg;

	/* Results, valid in `done`. */
	long status;             /* HTTP status, 0 when no response */
	CURLcode curl_code;
	char curl_error[CURL_ERROR_SIZE];
	struct gbuf response;
	struct gr_header *headers; /* response headers */
	int attempts;

	/* Engine internals. */
	CURL *easy;
	struct curl_slist *sent_headers;
	uint64_t retry_at_ms;
	struct gr_request *next;
};

/* Start an engine thread; NULL on failure (reason in errbuf). max_total 0 =
 * no limit on connections in flight. */
struct gr_engine *gr_engine_start(struct gr_store *store, long max_total, char *errbuf,
                                  size_t errlen);
/* Stop the thread, abandon every request still in it (their `done` is not
 * called) and free the engine. */
void gr_engine_stop(struct gr_engine *engine);
/* Queue a request (any thread, the engine's own included). */
void gr_engine_submit(struct gr_engine *engine, struct gr_request *req);
/* Run fn(arg) on the engine thread and wait for it to return. Called from the
 * engine thread itself it runs at once. */
void gr_engine_call(struct gr_engine *engine, void (*fn)(void *), void *arg);
/* Whether the calling thread is the engine's thread. */
int gr_engine_on_thread(struct gr_engine *engine);
/* Remove a request from the engine if it is there (engine thread only): its
 * `done` will not be called. */
void gr_engine_cancel(struct gr_engine *engine, struct gr_request *req);

/* Requests (garage_request.c). */
/* Set the common fields of a request; the path is built by the caller. */
void gr_request_init(struct gr_request *req, struct gr_store *store, enum gr_api api,
                     const char *op, const char *method);
/* Add a header that is sent but not signed ("Name: value"). Returns 0 or -1. */
int gr_request_plain(struct gr_request *req, const char *line);
/* Add an x-amz-* header, signed. Returns 0 or -1. */
int gr_request_amz(struct gr_request *req, const char *name, const char *value);
/* Reset the response fields before a new attempt. */
void gr_request_reset_response(struct gr_request *req);
/* Free everything the request holds (not the struct). */
void gr_request_free(struct gr_request *req);
/* The value of a response header (name lower-case), or NULL. */
const char *gr_response_header(const struct gr_request *req, const char *name);
/* Prepare the easy handle of one attempt: a fresh response, the URL, the
 * signed headers, the method and body. Returns 0 or -1 (out of memory). */
int gr_request_prepare(struct gr_request *req);
/* libcurl's body and header callbacks (userp: the request): they collect
 * the response into req->response and req->headers. */
size_t gr_response_on_body(char *data, size_t size, size_t nmemb, void *userp);
size_t gr_response_on_header(char *data, size_t size, size_t nmemb, void *userp);

/* Run n requests on the request engine in parallel and wait for all
 * (garage_http.c). */
void gr_perform(struct gr_store *store, struct gr_request **reqs, size_t n);

/* The text of an element at depth 2 of an XML document (garage_xml.c). */
struct gr_xml_field {
	const char *name;
	struct gbuf text; /* appended to; the caller frees it */
};
/* Collects the text of the root's children named in fields[0..n) from an
 * XML document, only under a root element named `root` (NULL: any root);
 * *is_root (when not NULL) says whether the root had that name. Returns 0
 * for a well-formed document, -1 otherwise (the fields then hold what came
 * before the error). */
int gr_xml_fields(const char *data, size_t len, const char *root, int *is_root,
                  struct gr_xml_field *fields, size_t n);
/* The state the parsers of answers with repeated elements share: put it
 * first in their user data. */
struct gr_xml_walk {
	int depth;
	const char *field; /* the leaf element being read, or NULL */
	struct gbuf text;  /* its text so far */
};
/* At each element's start: one level deeper, no leaf yet. */
void gr_xml_walk_start(struct gr_xml_walk *w);
/* At each element's end (after reading the leaf): one level up. */
void gr_xml_walk_end(struct gr_xml_walk *w);
/* The character data handler: collects the leaf's text. */
void XMLCALL gr_xml_walk_text(void *ud, const XML_Char *s, int len);
/* Parses a whole XML document with these expat handlers and user data.
 * Returns 0; or records "garage: unreadable XML from <op>: <expat's
 * reason>" (or out of memory) and returns AEROGRAM_EINTERNAL. */
int gr_xml_parse(const char *data, size_t len, void *ud, XML_StartElementHandler start,
                 XML_EndElementHandler end, XML_CharacterDataHandler text, const char *op);

/* Errors (garage_error.c). */
/* Map a finished request that failed to an AEROGRAM_E* code and record the
 * message (thread-local) naming the operation, status and Garage's code.
 * Returns AEROGRAM_OK for a 2xx response. */
int gr_request_status(const struct gr_request *req);
/* The status code for a request, without recording a message; *msg (when not
 * NULL) receives a malloc'ed message the caller frees. */
int gr_request_error(const struct gr_request *req, char **msg);


/* URI-encode a partition key for a K2V path (leading '/' encoded, others kept). */
char *gr_encode_pk(const char *pk);
/* "/<bucket>/<enc>" for an encoded name, which it frees (NULL: NULL). */
char *gr_bucket_path(struct gr_store *st, char *enc);
/* Base64 (standard alphabet, padded) of len bytes; malloc'ed. */
char *gr_base64_encode(const uint8_t *data, size_t len);
/* Decode standard base64 into a malloc'ed buffer; -1 on bad input. */
int gr_base64_decode(const char *text, uint8_t **out, size_t *outlen);

/* K2V operations (garage_k2v.c). */
int gr_row_read(struct aerogram_store *s, const struct aerogram_row_query *q, size_t n,
                struct aerogram_row_result **out);
void gr_row_result_free(struct aerogram_store *s, struct aerogram_row_result *r);
int gr_row_insert(struct aerogram_store *s, const struct aerogram_row_write *w, size_t n);
int gr_row_delete(struct aerogram_store *s, const struct aerogram_row_query *q, size_t n,
                  uint64_t *deleted);

/* Whether a string has the shape of a Garage causality token. */
int gr_token_valid(const char *token);

/* Parsed rows, shared by reads and watches: the rows array and an arena that
 * owns their strings and values. */
struct gr_rows {
	struct aerogram_row *rows;
	size_t n, cap;
	struct agk_arena arena;
};
/* Append the rows of a JSON items array ([{sk, ct, v}], a json_t *) to rows.
 * Returns 0 or -1 on a malformed array or no memory. */
int gr_rows_parse(struct gr_rows *rows, const void *items_json);
/* Append one row built from ReadItem's JSON value array and its token. */
int gr_rows_parse_item(struct gr_rows *rows, const char *sk, const char *token,
                       const void *values_json);
void gr_rows_free(struct gr_rows *rows);
/* Whether a row holds at least one value that is not a tombstone. */
int gr_row_live(const struct aerogram_row *row);

/* Watches (garage_watch.c). */
AGK_DECLARE_WATCH_CALLS(garage);

/* S3 operations (garage_s3.c). */
AGK_DECLARE_BLOB_CALLS(gr);
void gr_blob_list_free(struct aerogram_store *s, struct aerogram_blob_list *l);

#endif
