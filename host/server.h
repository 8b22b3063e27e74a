/* server.h - the running daemon: event loop, listeners, workers, users, sessions. */
#ifndef AG_HOST_SERVER_H
#define AG_HOST_SERVER_H

#include <event2/event.h>
#include <openssl/ssl.h>

#include "host/auth.h"
#include "host/config_file.h"
#include "host/driver_loader.h"
#include "host/mail/mail.h"
#include "host/users.h"
#include "host/workers.h"

struct ag_session;
struct ag_listener;

enum ag_plaintext_auth { AG_PLAINTEXT_YES, AG_PLAINTEXT_NO, AG_PLAINTEXT_LOOPBACK };

struct ag_server {
	struct event_base *base;
	const struct ag_config *cfg;
	struct ag_driver *driver;
	struct mail_engine *engine;    /* mailboxes of every user, shared by all sessions */
	struct ag_workers *workers;
	struct ag_users *users;        /* current users table (one reference) */
	SSL_CTX *tls;                  /* NULL when no certificate is configured */
	enum ag_plaintext_auth plaintext_auth;
	struct ag_auth_failures *failures;
	struct ag_listener *listeners; /* linked list */
	struct ag_session *sessions;   /* doubly linked list of live sessions */
	unsigned n_sessions;
	int shutting_down;
	struct event *sig_term, *sig_int, *sig_hup;
	struct event *shutdown_deadline;
	/* SIGHUP: the users file is re-read on a worker. */
	int reloading;
	struct ag_job reload_job;
	struct ag_users *reload_result;
	SSL_CTX *reload_tls;
	char reload_error[512];
	char reload_tls_error[512];
};

/* Prepares everything that can fail at start-up (TLS context, users file,
 * listeners, workers); on failure writes one line into err and returns -1.
 * `driver` stays owned by the caller. */
int ag_server_init(struct ag_server *srv, const struct ag_config *cfg, struct ag_driver *driver,
                   char *err, size_t errlen);
/* Runs the event loop until SIGTERM/SIGINT has closed every session. */
int ag_server_run(struct ag_server *srv);
/* Frees what ag_server_init built. */
void ag_server_free(struct ag_server *srv);

/* Called by a session when it is freed; ends the loop when shutting down and none is left. */
void ag_server_session_gone(struct ag_server *srv);

/* Listeners (listener.c). */
/* Binds every address of `list` ("a:p [b]:q"); implicit TLS when `tls`.
 * On failure writes one line into err and returns -1 (listeners bound so far stay on srv). */
int ag_listeners_open(struct ag_server *srv, const char *list, int tls, char *err, size_t errlen);
/* Closes every listener (no new connections). */
void ag_listeners_close(struct ag_server *srv);

#endif
