/* tls.c - TLS server context: certificate, key, protocol floor. */
#include "host/tls.h"

#include <openssl/err.h>
#include <stdio.h>
#include <string.h>

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

SSL_CTX *ag_tls_context_new(const char *cert_file, const char *key_file, char *err, size_t errlen)
{
	char why[512];
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		ag_tls_last_error(why, sizeof(why));
		snprintf(err, errlen, "cannot create a TLS context: %s", why);
		return NULL;
	}
	/* TLS 1.0 and 1.1 are deprecated (RFC 8996). */
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
	                         SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		ag_tls_last_error(why, sizeof(why));
		snprintf(err, errlen, "tls_cert %s: cannot load the certificate: %s", cert_file, why);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		ag_tls_last_error(why, sizeof(why));
		snprintf(err, errlen, "tls_key %s: cannot load the key: %s", key_file, why);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "tls_key %s does not match the certificate in %s", key_file, cert_file);
		ERR_clear_error();
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

SSL *ag_tls_new_ssl(SSL_CTX *ctx)
{
	return SSL_new(ctx);
}
