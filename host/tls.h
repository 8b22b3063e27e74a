/* tls.h - the server's TLS context (OpenSSL), shared by STARTTLS and implicit TLS. */
#ifndef AG_HOST_TLS_H
#define AG_HOST_TLS_H

#include <stddef.h>
#include <openssl/ssl.h>

#include "host/config_file.h"

/* The TLS 1.2 suites when [imap] tls_ciphers is not set: forward secret
 * (ECDHE, DHE) and AEAD (AES-GCM, ChaCha20-Poly1305) only, as Mozilla's
 * "intermediate" policy. No RSA key exchange, no CBC, no SHA-1 MAC. */
#define AG_TLS_DEFAULT_CIPHERS                                                                     \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:" \
	"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"   \
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"

/* Loads cfg's certificate chain and key (PEM) into a server context with
 * its protocol floor (tls_min_version) and TLS 1.2 suites (tls_ciphers).
 * Logs a warning when the key is readable by others. Returns NULL and
 * writes one line (file, line, problem) into err on failure; the caller
 * frees the context with SSL_CTX_free. */
SSL_CTX *ag_tls_context_new(const struct ag_config *cfg, char *err, size_t errlen);
/* Checks tls_min_version and tls_ciphers without a certificate; 0 or -1
 * with one line in err. */
int ag_tls_check_policy(const struct ag_config *cfg, char *err, size_t errlen);
/* A new SSL object for one accepted connection (caller owns it; the
 * bufferevent takes it over), or NULL. */
SSL *ag_tls_new_ssl(SSL_CTX *ctx);
/* Writes the last OpenSSL errors of this thread as one line into buf and clears them. */
void ag_tls_last_error(char *buf, size_t len);

#endif
