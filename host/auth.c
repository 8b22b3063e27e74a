/* auth.c - what authentication needs besides the users file: failure delays
 * and the SASL PLAIN message. */
#include "host/auth.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Addresses remembered at most; the oldest entry makes room for a new one. */
#define MAX_ADDRESSES 4096
/* An address without a failure for this long starts again from the base delay. */
#define FORGET_AFTER_S 900

struct failure_entry {
	char address[64];
	unsigned count;
	time_t last;
};

struct ag_auth_failures {
	pthread_mutex_t lock; /* every event loop records into one table */
	unsigned base_ms, max_ms;
	struct failure_entry *entries;
	size_t n;
};

struct ag_auth_failures *ag_auth_failures_new(unsigned base_ms, unsigned max_ms)
{
	struct ag_auth_failures *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->base_ms = base_ms;
	t->max_ms = max_ms;
	t->entries = calloc(MAX_ADDRESSES, sizeof(*t->entries));
	if (t->entries == NULL || pthread_mutex_init(&t->lock, NULL) != 0) {
		free(t->entries);
		free(t);
		return NULL;
	}
	return t;
}

void ag_auth_failures_free(struct ag_auth_failures *t)
{
	if (t == NULL)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t->entries);
	free(t);
}

/* The delay of the count-th failure in a row: doubling from base_ms, capped. */
static unsigned delay_for(const struct ag_auth_failures *t, unsigned count)
{
	unsigned long long delay = t->base_ms;
	for (unsigned i = 1; i < count && delay < t->max_ms; i++)
		delay *= 2;
	if (delay > t->max_ms)
		delay = t->max_ms;
	return (unsigned)delay;
}

unsigned ag_auth_failure_record(struct ag_auth_failures *t, const char *address, unsigned *count)
{
	time_t now = time(NULL);
	pthread_mutex_lock(&t->lock);
	struct failure_entry *e = NULL, *oldest = NULL;
	for (size_t i = 0; i < t->n; i++) {
		if (strcmp(t->entries[i].address, address) == 0) {
			e = &t->entries[i];
			break;
		}
		if (oldest == NULL || t->entries[i].last < oldest->last)
			oldest = &t->entries[i];
	}
	if (e == NULL) {
		e = t->n < MAX_ADDRESSES ? &t->entries[t->n++] : oldest;
		memset(e, 0, sizeof(*e));
		size_t len = strlen(address);
		if (len >= sizeof(e->address))
			len = sizeof(e->address) - 1;
		memcpy(e->address, address, len);
	}
	if (e->count > 0 && now - e->last > FORGET_AFTER_S)
		e->count = 0;
	e->count++;
	e->last = now;
	*count = e->count;
	pthread_mutex_unlock(&t->lock);
	return delay_for(t, *count);
}

unsigned ag_auth_failure_pending(struct ag_auth_failures *t, const char *address)
{
	time_t now = time(NULL);
	unsigned count = 0;
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->n; i++) {
		if (strcmp(t->entries[i].address, address) == 0) {
			if (now - t->entries[i].last <= FORGET_AFTER_S)
				count = t->entries[i].count;
			break;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return count > 0 ? delay_for(t, count) : 0;
}

static int is_base64(const char *s, size_t len)
{
	if (len % 4 != 0)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		         c == '+' || c == '/' || (c == '=' && i >= len - 2);
		if (!ok)
			return 0;
	}
	if (len >= 2 && s[len - 2] == '=' && s[len - 1] != '=')
		return 0;
	return 1;
}

int ag_sasl_plain_decode(const char *b64, size_t b64_len, char **decoded, const char **authcid,
                         size_t *authcid_len, const char **password, size_t *password_len)
{
	*decoded = NULL;
	if (!is_base64(b64, b64_len) || b64_len > 8192)
		return -1;
	unsigned char *out = malloc(b64_len / 4 * 3 + 1);
	if (out == NULL)
		return -1;
	EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
	int n = 0, tail = 0;
	if (ctx == NULL) {
		free(out);
		return -1;
	}
	EVP_DecodeInit(ctx);
	int rc = EVP_DecodeUpdate(ctx, out, &n, (const unsigned char *)b64, (int)b64_len);
	if (rc >= 0)
		rc = EVP_DecodeFinal(ctx, out + n, &tail);
	EVP_ENCODE_CTX_free(ctx);
	if (rc < 0) {
		free(out);
		return -1;
	}
	size_t len = (size_t)n + (size_t)tail;
	out[len] = '\0';
	/* message = [authzid] NUL authcid NUL passwd */
	const char *p = (const char *)out;
	const char *nul1 = memchr(p, '\0', len);
	const char *nul2 = nul1 ? memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - p)) : NULL;
	if (nul1 == NULL || nul2 == NULL) {
		free(out);
		return -1;
	}
	size_t authzid_len = (size_t)(nul1 - p);
	*authcid = nul1 + 1;
	*authcid_len = (size_t)(nul2 - *authcid);
	*password = nul2 + 1;
	*password_len = len - (size_t)(*password - p);
	if (*authcid_len == 0 || memchr(*password, '\0', *password_len) != NULL ||
	    (authzid_len != 0 && (authzid_len != *authcid_len || memcmp(p, *authcid, authzid_len) != 0))) {
		free(out);
		return -1;
	}
	*decoded = (char *)out;
	return 0;
}
