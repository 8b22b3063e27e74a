/* server.h - the running daemon: event loop, listeners, workers, users, sessions. */
#ifndef AG_HOST_SERVER_H
#define AG_HOST_SERVER_H

#include <event2/event.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>

#include "host/auth.h"
#include "host/config_file.h"
#include "sdk/loader/ag_loader.h"
#include "host/limits.h"
#include "host/mail/mail.h"
#include "host/users.h"
#include "host/workers.h"

struct ag_session;
struct ag_listener;
struct ag_handoff;
struct ag_lmtp;

enum ag_plaintext_auth { AG_PLAINTEXT_YES, AG_PLAINTEXT_NO, AG_PLAINTEXT_LOOPBACK };

/* One per event loop. The first loop's (the root) owns the engine, the
 * listeners, the signals and the auth-failure table; every other loop has
 * its own base, worker pool and sessions, and pointers to the root's shared
 * parts (engine, config, failures) plus references to the users table and
 * TLS context, which the root hands over again after a SIGHUP. The root
 * accepts every connection and hands it to the loops in turn. A session
 * lives on one loop for its whole life: its `srv` is its loop. */
struct ag_server {
	struct event_base *base;
	struct ag_server *root;        /* the first loop (itself for the root) */
	struct ag_server **loops;      /* root: every loop, loops[0] = root */
	unsigned n_loops;              /* root */
	unsigned loop_index;           /* 0 for the root */
	unsigned next_loop;            /* root: where the next connection goes */
	atomic_uint total_sessions;    /* root: sessions of every loop */
	pthread_t thread;              /* other loops: the thread running it */
	/* Other loops: what the root hands over, under `inbox_lock`, announced
	 * by event_active(inbox_event). */
	pthread_mutex_t inbox_lock;
	struct ag_handoff *inbox_head, *inbox_tail;
	int inbox_shutdown;            /* SIGTERM reached the root */
	struct ag_users *inbox_users;  /* a reloaded users table (one reference) */
	SSL_CTX *inbox_tls;            /* a reloaded TLS context (one reference) */
	struct event *inbox_event;
	const struct ag_config *cfg;
	struct ag_driver *driver;
	struct mail_engine *engine;    /* mailboxes of every user, shared by all sessions */
	struct ag_workers *workers;
	struct ag_users *users;        /* current users table (one reference) */
	SSL_CTX *tls;                  /* NULL when no certificate is configured */
	enum ag_plaintext_auth plaintext_auth;
	struct ag_auth_failures *failures;
	struct ag_limits *limits;      /* the root's, shared: per-address and per-user counts, password checks */
	struct ag_listener *listeners; /* linked list */
	struct ag_lmtp *lmtp;          /* root: the LMTP listeners and connections (lmtp.h), or NULL */
	struct ag_session *sessions;   /* doubly linked list of live sessions */
	unsigned n_sessions;           /* of them, and of the LMTP connections (root) */
	int shutting_down;
	struct timespec shutdown_at;   /* root: when SIGTERM came (CLOCK_MONOTONIC) */
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

/* Loads what start-up reads besides the configuration and the driver: the
 * users file (*users, one reference) and, when tls_cert is set, the TLS
 * context (*tls; else the TLS policy is checked alone). `aerogramd -t` runs
 * it too, so that it refuses what start-up would. On failure writes one
 * line into err, leaves both NULL and returns -1. */
int ag_server_load_files(const struct ag_config *cfg, struct ag_users **users, SSL_CTX **tls, char *err,
                         size_t errlen);
/* The first half of ag_server_init, before any thread starts: the event
 * loop and every listening socket (IMAP, LMTP, metrics), then gives up the
 * capability ag_privileges_drop kept for binding. On failure writes one
 * line into err and returns -1 (free with ag_server_free). */
int ag_server_bind(struct ag_server *srv, const struct ag_config *cfg, char *err, size_t errlen);
/* Prepares everything that can fail at start-up (TLS context, users file,
 * listeners, workers); on failure writes one line into err and returns -1.
 * `driver` stays owned by the caller. Calls ag_server_bind first unless
 * the caller did. */
int ag_server_init(struct ag_server *srv, const struct ag_config *cfg, struct ag_driver *driver,
                   char *err, size_t errlen);
/* Runs the event loop until SIGTERM/SIGINT has closed every session. */
int ag_server_run(struct ag_server *srv);
/* Frees what ag_server_init built. */
void ag_server_free(struct ag_server *srv);

/* Called by a session when it is freed; ends the loop when shutting down and none is left. */
void ag_server_session_gone(struct ag_server *srv);
/* On the root's thread, for a connection just accepted: hands it to the
 * next loop (a session is made there), or returns 0 when the root serves
 * it itself. -1: the connection could not be handed over (closed). */
int ag_server_hand_off(struct ag_server *root, evutil_socket_t fd, const struct sockaddr *peer, int peer_len,
                       int tls);

/* Listeners (listener.c). */
/* Binds every address of `list` ("a:p [b]:q"); implicit TLS when `tls`.
 * On failure writes one line into err and returns -1 (listeners bound so far stay on srv). */
int ag_listeners_open(struct ag_server *srv, const char *list, int tls, char *err, size_t errlen);
/* Closes every listener (no new connections). */
void ag_listeners_close(struct ag_server *srv);
/* Makes a session of an accepted (non-blocking) connection on srv's loop,
 * from that loop's thread; closes it on failure. */
void ag_listener_serve(struct ag_server *srv, evutil_socket_t fd, const struct sockaddr *peer, int tls);
/* event_free, and nothing for NULL (an event never created). */
void ag_event_free(struct event *ev);
/* Refuses an accepted connection: sends `line` (without waiting) and closes fd. */
void ag_listener_refuse(evutil_socket_t fd, const char *line);
/* What every listener does first with an accepted connection: closes fd
 * when `stopping`; else makes it non-blocking and, on TCP (`tcp`), sends
 * without delay. 0: go on with fd; -1: fd is closed. */
int ag_listener_take(evutil_socket_t fd, int stopping, int tcp);
/* Calls `open` on each address of the space-separated `list` and stops at
 * the first failure; an address of 128 bytes or more is one, its error
 * after `prefix`. 0, or -1 with err written. */
int ag_listen_each(const char *list, const char *prefix,
                   int (*open)(void *arg, const char *address, char *err, size_t errlen), void *arg, char *err,
                   size_t errlen);

#endif
