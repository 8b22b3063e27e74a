/* auth.h - authentication: failure delays per client address, SASL PLAIN. */
#ifndef AG_HOST_AUTH_H
#define AG_HOST_AUTH_H

#include <stddef.h>

/* Failed attempts per client address (event loop thread only). */
struct ag_auth_failures;

/* A new table; delays start at `base_ms` and double per failure up to `max_ms`. */
struct ag_auth_failures *ag_auth_failures_new(unsigned base_ms, unsigned max_ms);
/* Frees the table. */
void ag_auth_failures_free(struct ag_auth_failures *t);
/* Records one failure from `address`; returns how long to wait before
 * answering it (ms) and sets *count to the failures now on record. */
unsigned ag_auth_failure_record(struct ag_auth_failures *t, const char *address, unsigned *count);
/* The delay the last failure from `address` got (ms), 0 when it has no
 * recent failure: a new check from there waits that long before it runs. */
unsigned ag_auth_failure_pending(struct ag_auth_failures *t, const char *address);

/*
 * Decodes a SASL PLAIN message (RFC 4616) given in base64 (RFC 4648, as the
 * client sent it). On success returns 0, *authcid and *password point into
 * *decoded (caller frees *decoded), and *authcid_len / *password_len are set.
 * An authorization identity other than empty or equal to authcid is refused
 * (no proxy logins). Returns -1 for malformed input.
 */
int ag_sasl_plain_decode(const char *b64, size_t b64_len, char **decoded, const char **authcid,
                         size_t *authcid_len, const char **password, size_t *password_len);

#endif
