/*
 * sigv4.h - AWS Signature Version 4 (header form) as Garage verifies it.
 *
 * Pure functions: no I/O, no clock, no global state. The caller gives every
 * input (including the X-Amz-Date value) and gets back the canonical
 * request, the string to sign, the signature and the Authorization value,
 * so each step can be checked against a test vector.
 *
 * What the signer does, and where it differs from AWS's generic rules
 * (Garage is the server that counts; see docs/garage-api.md section 2):
 *  - Canonical URI: the path exactly as sent on the wire, or (double_encode,
 *    for K2V and any service other than s3) that wire path URI-encoded once
 *    more, every byte but A-Za-z0-9 - _ . ~ / becoming %XX. No removal of
 *    "." / ".." segments or duplicate slashes: Garage does none.
 *  - Canonical query: each pair form-decoded ('+' is a space), key and value
 *    re-encoded with the unreserved set ('/' encoded too), joined as "k=v"
 *    and sorted as whole strings by bytes, which is Garage's order. A
 *    keyword without '=' signs as "k=".
 *  - Canonical headers: lower-case names sorted by bytes, values with leading
 *    and trailing blanks removed; inner runs of spaces are kept (Garage does
 *    not collapse them). A name given twice gets its values joined with ','
 *    in the order given (the driver never sends a header twice).
 */
#ifndef AG_GARAGE_SIGV4_H
#define AG_GARAGE_SIGV4_H

#include <stddef.h>
#include <time.h>

struct sigv4_header {
	const char *name;  /* any case */
	const char *value; /* as sent */
};

struct sigv4_params {
	const char *method;       /* "GET", "PUT", ... */
	const char *path;         /* the path as sent on the wire, starting with '/' */
	const char *query;        /* the query as sent, without '?'; NULL or "" for none */
	const struct sigv4_header *headers; /* every header to sign, host and x-amz-* included */
	size_t n_headers;
	const char *payload_hash; /* lower-case hex SHA-256 of the body (or UNSIGNED-PAYLOAD) */
	const char *amz_date;     /* YYYYMMDDTHHMMSSZ, the X-Amz-Date header value */
	const char *region;
	const char *service;      /* "s3" or "k2v" */
	const char *access_key_id;
	const char *secret_access_key;
	int double_encode_path;   /* 1 for K2V: sign aws_encode(wire path) */
};

struct sigv4_result {
	char *canonical_request;  /* malloc'ed */
	char *string_to_sign;     /* malloc'ed */
	char *authorization;      /* malloc'ed: the Authorization header value */
	char signature[65];       /* lower-case hex */
};

/* Sign a request. Returns 0, or -1 when an input is missing or memory runs
 * out. On success the caller frees *out with sigv4_result_free. */
int sigv4_sign(const struct sigv4_params *params, struct sigv4_result *out);

/* Free the strings of a result (the struct itself is the caller's). */
void sigv4_result_free(struct sigv4_result *result);

/* Lower-case hex SHA-256 of len bytes into out (65 bytes with the NUL). */
void sigv4_sha256_hex(const void *data, size_t len, char out[65]);

/* URI-encode len bytes the AWS way: A-Za-z0-9-_.~ kept, and '/' kept when
 * keep_slash; everything else %XX upper-case. Returns a malloc'ed string
 * (the caller frees it) or NULL when memory runs out. */
char *sigv4_uri_encode(const char *data, size_t len, int keep_slash);

/* Format t (UTC) as YYYYMMDDTHHMMSSZ into out (17 bytes with the NUL). */
void sigv4_amz_date(time_t t, char out[17]);

#endif
