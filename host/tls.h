/* tls.h - the server's TLS context (OpenSSL), shared by STARTTLS and implicit TLS. */
#ifndef AG_HOST_TLS_H
#define AG_HOST_TLS_H

#include <stddef.h>
#include <openssl/ssl.h>

/* Loads the certificate chain and key (PEM) into a server context that
 * accepts TLS 1.2 and newer only. Returns NULL and writes one line into err
 * on failure; the caller frees the context with SSL_CTX_free. */
SSL_CTX *ag_tls_context_new(const char *cert_file, const char *key_file, char *err, size_t errlen);
/* A new SSL object for one accepted connection (caller owns it; the
 * bufferevent takes it over), or NULL. */
SSL *ag_tls_new_ssl(SSL_CTX *ctx);
/* Writes the last OpenSSL errors of this thread as one line into buf and clears them. */
void ag_tls_last_error(char *buf, size_t len);

#endif
