/* tls.c - TLS server context: certificate, key, protocol floor, cipher policy. */
#include "host/tls.h"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "host/log.h"

void ag_tls_last_error(char *buf, size_t len)
{
	unsigned long e;
	size_t used = 0;
	buf[0] = '\0';
	while ((e = ERR_get_error()) != 0) {
		char one[256];
		ERR_error_string_n(e, one, sizeof(one));
		int n = snprintf(buf + used, len - used, "%s%s", used ? "; " : "", one);
		if (n < 0 || (size_t)n >= len - used)
			break;
		used += (size_t)n;
	}
	if (buf[0] == '\0')
		snprintf(buf, len, "unknown TLS error");
	ERR_clear_error();
}

/* The protocol floor and the TLS 1.2 suites (TLS 1.3's are all forward
 * secret AEAD: OpenSSL's defaults stay). */
static int apply_policy(SSL_CTX *ctx, const struct ag_config *cfg, char *err, size_t errlen)
{
	char at[1024];
	/* TLS 1.0 and 1.1 are deprecated (RFC 8996). */
	int min = cfg->tls_min_version == AG_TLS_1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
	if (SSL_CTX_set_min_proto_version(ctx, min) != 1) {
		snprintf(err, errlen, "%s: [imap] tls_min_version: not supported by this OpenSSL", cfg->path);
		ERR_clear_error();
		return -1;
	}
	const char *ciphers = cfg->tls_ciphers ? cfg->tls_ciphers : AG_TLS_DEFAULT_CIPHERS;
	if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
		ag_config_where(cfg, cfg->lines.tls_ciphers, at, sizeof(at));
		snprintf(err, errlen, "%s: [imap] tls_ciphers: '%.200s' names no cipher suite OpenSSL knows", at,
		         ciphers);
		ERR_clear_error();
		return -1;
	}
	/* the DHE suites of the default list, with RFC 7919 groups */
	SSL_CTX_set_dh_auto(ctx, 1);
	return 0;
}

int ag_tls_check_policy(const struct ag_config *cfg, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		char why[512];
		ag_tls_last_error(why, sizeof(why));
		snprintf(err, errlen, "cannot create a TLS context: %s", why);
		return -1;
	}
	int rc = apply_policy(ctx, cfg, err, errlen);
	SSL_CTX_free(ctx);
	return rc;
}

SSL_CTX *ag_tls_context_new(const struct ag_config *cfg, char *err, size_t errlen)
{
	char why[512], at[1024];
	const char *cert_file = cfg->tls_cert, *key_file = cfg->tls_key;
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		ag_tls_last_error(why, sizeof(why));
		snprintf(err, errlen, "cannot create a TLS context: %s", why);
		return NULL;
	}
	if (apply_policy(ctx, cfg, err, errlen) != 0) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
	                         SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		ag_tls_last_error(why, sizeof(why));
		ag_config_where(cfg, cfg->lines.tls_cert, at, sizeof(at));
		snprintf(err, errlen, "%s: [imap] tls_cert %s: cannot load the certificate: %s", at, cert_file, why);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		/* OpenSSL 3 compares the key with the certificate here already */
		if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
			ERR_clear_error();
			goto mismatch;
		}
		ag_tls_last_error(why, sizeof(why));
		ag_config_where(cfg, cfg->lines.tls_key, at, sizeof(at));
		snprintf(err, errlen, "%s: [imap] tls_key %s: cannot load the key: %s", at, key_file, why);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
mismatch:
		ag_config_where(cfg, cfg->lines.tls_key, at, sizeof(at));
		snprintf(err, errlen, "%s: [imap] tls_key %s does not match the certificate in %s", at, key_file,
		         cert_file);
		ERR_clear_error();
		SSL_CTX_free(ctx);
		return NULL;
	}
	struct stat sb;
	if (stat(key_file, &sb) == 0 && (sb.st_mode & (S_IROTH | S_IWOTH)))
		ag_log_warn("%s: the TLS key is %s by other users (mode %04o): chmod o-rwx %s", key_file,
		            sb.st_mode & S_IWOTH ? "writable" : "readable", (unsigned)(sb.st_mode & 07777), key_file);
	return ctx;
}

SSL *ag_tls_new_ssl(SSL_CTX *ctx)
{
	return SSL_new(ctx);
}
