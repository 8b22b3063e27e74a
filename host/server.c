/* server.c - the daemon's life: start-up, signals, shutdown.
 *
 * SIGTERM/SIGINT: stop accepting, let each command in flight finish, say
 * BYE to every client, exit 0 once every session is gone, or after a grace
 * period, and within SHUTDOWN_LIMIT_S whatever a worker is doing: a storage
 * call that never returns (a wedged store, a runaway command) is left
 * behind and the process exits without joining its thread. That is safe
 * because every driver write is transactional (a write cut short is not
 * applied) and nothing else is left half done. SIGHUP: re-read the users file on a worker; a broken file keeps
 * the previous table.
 *
 * Event loops: the root (the thread that called ag_server_run) accepts
 * every connection and hands each to the next loop in turn (round robin);
 * a loop runs its sessions and its own worker pool on its own thread, so
 * the daemon's network and inline work uses every CPU. Connections, a
 * SIGTERM and a reloaded users table or certificate reach another loop
 * through its inbox (a locked list and event_active, which libevent makes
 * thread-safe). The mail engine, the configuration and the auth-failure
 * table are shared by every loop. */
#include "host/server.h"

#include <event2/thread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/lmtp.h"
#include "host/metrics.h"
#include "host/privileges.h"
#include "host/log.h"
#include "host/session.h"
#include "host/tls.h"
#include "protocol/list.h"

/* How long shutdown waits for commands in flight and BYEs to flush. */
#define SHUTDOWN_GRACE_S 5
/* Seconds after the signal by which the workers must be idle; the process
 * then exits without the stuck ones (the whole shutdown stays under 10 s). */
#define SHUTDOWN_LIMIT_S 8
/* ... and by which the final checkpoints end (they are an optimisation). */
#define SHUTDOWN_END_MS 9500
/* Event loops at most when `loops` is 0 (one per online CPU but one). */
#define AUTO_LOOPS_MAX 8

/* A connection accepted by the root for another loop. */
struct ag_handoff {
	struct ag_handoff *next;
	evutil_socket_t fd;
	struct sockaddr_storage peer;
	int tls;
};

static void loop_shutdown(struct ag_server *srv);

/* On the root's thread: gives every other loop what its inbox carries. */
static void post_to_loops(struct ag_server *root, int shutdown, int users, int tls)
{
	for (unsigned i = 1; i < root->n_loops; i++) {
		struct ag_server *l = root->loops[i];
		pthread_mutex_lock(&l->inbox_lock);
		if (shutdown)
			l->inbox_shutdown = 1;
		if (users) {
			ag_users_unref(l->inbox_users);
			l->inbox_users = ag_users_ref(root->users);
		}
		if (tls && root->tls != NULL) {
			SSL_CTX_free(l->inbox_tls);
			SSL_CTX_up_ref(root->tls);
			l->inbox_tls = root->tls;
		}
		pthread_mutex_unlock(&l->inbox_lock);
		event_active(l->inbox_event, EV_READ, 0);
	}
}

/* On another loop's thread: takes what the root handed over. */
static void on_inbox(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct ag_server *srv = arg;
	pthread_mutex_lock(&srv->inbox_lock);
	struct ag_handoff *h;
	QUEUE_TAKE_ALL(srv->inbox_head, srv->inbox_tail, h);
	int shutdown = srv->inbox_shutdown;
	struct ag_users *users = srv->inbox_users;
	SSL_CTX *tls = srv->inbox_tls;
	srv->inbox_users = NULL;
	srv->inbox_tls = NULL;
	pthread_mutex_unlock(&srv->inbox_lock);
	if (users != NULL) {
		ag_users_unref(srv->users);
		srv->users = users;
	}
	if (tls != NULL) {
		SSL_CTX_free(srv->tls);
		srv->tls = tls;
	}
	while (h != NULL) {
		struct ag_handoff *next = h->next;
		if (srv->shutting_down || shutdown)
			evutil_closesocket(h->fd);
		else
			ag_listener_serve(srv, h->fd, (const struct sockaddr *)&h->peer, h->tls);
		free(h);
		h = next;
	}
	if (shutdown)
		loop_shutdown(srv);
}

int ag_server_hand_off(struct ag_server *root, evutil_socket_t fd, const struct sockaddr *peer, int peer_len,
                       int tls)
{
	if (root->n_loops <= 1)
		return 0;
	unsigned k = root->next_loop++ % root->n_loops;
	if (k == 0)
		return 0;
	struct ag_server *l = root->loops[k];
	struct ag_handoff *h = calloc(1, sizeof(*h));
	if (h == NULL) {
		evutil_closesocket(fd);
		return -1;
	}
	h->fd = fd;
	h->tls = tls;
	size_t len = peer_len > 0 ? (size_t)peer_len : 0;
	memcpy(&h->peer, peer, len < sizeof(h->peer) ? len : sizeof(h->peer));
	pthread_mutex_lock(&l->inbox_lock);
	QUEUE_PUSH(l->inbox_head, l->inbox_tail, h);
	pthread_mutex_unlock(&l->inbox_lock);
	event_active(l->inbox_event, EV_READ, 0);
	return 1;
}

static void reload_run(void *arg)
{
	struct ag_server *srv = arg;
	srv->reload_result = NULL;
	srv->reload_error[0] = '\0';
	if (ag_users_load(srv->cfg->users_file, &srv->reload_result, srv->reload_error,
	                  sizeof(srv->reload_error)) != 0)
		srv->reload_result = NULL;
	/* A renewed certificate is taken too; connections already open keep theirs. */
	srv->reload_tls = NULL;
	srv->reload_tls_error[0] = '\0';
	if (srv->cfg->tls_cert != NULL)
		srv->reload_tls = ag_tls_context_new(srv->cfg, srv->reload_tls_error, sizeof(srv->reload_tls_error));
}

static void reload_done(void *arg)
{
	struct ag_server *srv = arg;
	srv->reloading = 0;
	if (srv->reload_tls != NULL) {
		SSL_CTX_free(srv->tls);
		srv->tls = srv->reload_tls;
		srv->reload_tls = NULL;
		ag_log_info("SIGHUP: reloaded the TLS certificate %s", srv->cfg->tls_cert);
		post_to_loops(srv, 0, 0, 1);
	} else if (srv->cfg->tls_cert != NULL) {
		ag_log_error("SIGHUP: keeping the previous TLS certificate: %s", srv->reload_tls_error);
	}
	if (srv->reload_result == NULL) {
		ag_log_error("SIGHUP: keeping the previous users: %s", srv->reload_error);
		return;
	}
	ag_users_unref(srv->users);
	srv->users = srv->reload_result;
	srv->reload_result = NULL;
	ag_log_info("SIGHUP: reloaded %s: %zu users", srv->cfg->users_file, ag_users_count(srv->users));
	post_to_loops(srv, 0, 1, 0);
}

static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	struct ag_server *srv = arg;
	if (srv->reloading || srv->shutting_down)
		return;
	srv->reloading = 1;
	srv->reload_job.run = reload_run;
	srv->reload_job.done = reload_done;
	srv->reload_job.arg = srv;
	ag_workers_submit(srv->workers, &srv->reload_job);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct ag_server *srv = arg;
	ag_log_warn("shutdown: %u connections still open after %d s, closing them", srv->n_sessions,
	            SHUTDOWN_GRACE_S);
	/* Commands still running on a worker are told to stop where they can. */
	for (struct ag_session *s = srv->sessions; s != NULL; s = s->next)
		ag_session_abandon(s);
	event_base_loopexit(srv->base, NULL);
}

static void on_sigterm(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	struct ag_server *srv = arg;
	if (srv->shutting_down)
		return;
	clock_gettime(CLOCK_MONOTONIC, &srv->shutdown_at);
	ag_log_info("%s: shutting down (%u connections)", sig == SIGINT ? "SIGINT" : "SIGTERM",
	            atomic_load(&srv->total_sessions));
	post_to_loops(srv, 1, 0, 0);
	loop_shutdown(srv);
}

/* On a loop's thread: no new connections, every session ends after its
 * command in flight; the loop ends when none is left (or after a grace). */
static void loop_shutdown(struct ag_server *srv)
{
	if (srv->shutting_down)
		return;
	srv->shutting_down = 1;
	ag_listeners_close(srv);
	ag_lmtp_shutdown(srv);
	/* Sessions may free themselves inside: walk with care. */
	struct ag_session *s = srv->sessions;
	while (s != NULL) {
		struct ag_session *next = s->next;
		ag_session_shutdown(s);
		s = next;
	}
	if (srv->n_sessions == 0) {
		event_base_loopexit(srv->base, NULL);
		return;
	}
	srv->shutdown_deadline = evtimer_new(srv->base, on_deadline, srv);
	struct timeval tv = { SHUTDOWN_GRACE_S, 0 };
	if (srv->shutdown_deadline != NULL)
		evtimer_add(srv->shutdown_deadline, &tv);
}

void ag_server_session_gone(struct ag_server *srv)
{
	if (srv->shutting_down && srv->n_sessions == 0)
		event_base_loopexit(srv->base, NULL);
}

static unsigned loops_wanted(const struct ag_config *cfg)
{
	if (cfg->loops > 0)
		return cfg->loops;
	/* One CPU is left to the workers, the storage threads and the rest
	 * of the machine: on the project's 2-core machine a second loop gave
	 * the sqlite driver 12-19% more commands under imaptest but the memory
	 * driver 20% fewer, the load generator on the same cores losing CPU to
	 * it (host/README.md). */
	long n = sysconf(_SC_NPROCESSORS_ONLN) - 1;
	if (n < 1)
		return 1;
	return n > AUTO_LOOPS_MAX ? AUTO_LOOPS_MAX : (unsigned)n;
}

void ag_event_free(struct event *ev)
{
	if (ev != NULL)
		event_free(ev);
}

/* Frees a loop's workers first (their jobs reference its sessions), then
 * its sessions. */
static void free_sessions(struct ag_server *l)
{
	if (l->workers != NULL)
		ag_workers_free(l->workers);
	l->workers = NULL;
	l->shutting_down = 1;
	while (l->sessions != NULL)
		ag_session_free(l->sessions);
}

/* What every loop (the root too) holds besides its sessions: the users
 * table and TLS context it serves with, those handed over to it, its
 * events and, last, its event base. */
static void free_loop_state(struct ag_server *l)
{
	ag_users_unref(l->inbox_users);
	SSL_CTX_free(l->inbox_tls);
	ag_users_unref(l->users);
	SSL_CTX_free(l->tls);
	ag_event_free(l->inbox_event);
	ag_event_free(l->shutdown_deadline);
	if (l->base != NULL)
		event_base_free(l->base);
}

/* Frees a loop other than the root once its thread has ended (or never
 * started): its sessions before the root frees the engine they use. */
static void loop_free(struct ag_server *l)
{
	free_sessions(l);
	for (struct ag_handoff *h = l->inbox_head, *next; h != NULL; h = next) {
		next = h->next;
		evutil_closesocket(h->fd);
		free(h);
	}
	free_loop_state(l);
	pthread_mutex_destroy(&l->inbox_lock);
	free(l);
}

/* The loops besides the root, ready to run (their threads start in
 * ag_server_run). */
static int loops_init(struct ag_server *srv, char *err, size_t errlen)
{
	unsigned n = loops_wanted(srv->cfg);
	srv->loops = calloc(n, sizeof(*srv->loops));
	if (srv->loops == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	srv->loops[0] = srv;
	srv->n_loops = 1;
	for (unsigned i = 1; i < n; i++) {
		struct ag_server *l = calloc(1, sizeof(*l));
		if (l == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		pthread_mutex_init(&l->inbox_lock, NULL);
		l->loop_index = i;
		l->root = srv;
		l->cfg = srv->cfg;
		l->driver = srv->driver;
		l->engine = srv->engine;
		l->plaintext_auth = srv->plaintext_auth;
		l->failures = srv->failures;
		l->limits = srv->limits;
		l->users = ag_users_ref(srv->users);
		if (srv->tls != NULL) {
			SSL_CTX_up_ref(srv->tls);
			l->tls = srv->tls;
		}
		l->base = event_base_new();
		l->inbox_event = l->base ? event_new(l->base, -1, 0, on_inbox, l) : NULL;
		l->workers = l->base ? ag_workers_new(l->base, srv->cfg->workers) : NULL;
		if (l->base == NULL || l->inbox_event == NULL || l->workers == NULL) {
			loop_free(l);
			snprintf(err, errlen, "cannot start event loop %u of %u", i + 1, n);
			return -1;
		}
		srv->loops[srv->n_loops++] = l;
	}
	return 0;
}

static void *loop_main(void *arg)
{
	struct ag_server *l = arg;
	/* ended by event_base_loopexit once shut down and empty */
	event_base_loop(l->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

static void engine_log(void *arg, int level, const char *line)
{
	(void)arg;
	ag_log_driver_line((enum aerogram_log_level)level, "mail", line);
}

int ag_server_load_files(const struct ag_config *cfg, struct ag_users **users, SSL_CTX **tls, char *err,
                         size_t errlen)
{
	*users = NULL;
	*tls = NULL;
	if (cfg->users_file == NULL) {
		snprintf(err, errlen, "%s: [auth] users_file is not set", cfg->path);
		return -1;
	}
	if (ag_users_load(cfg->users_file, users, err, errlen) != 0) {
		/* the message names the users file; say where it was named */
		if (cfg->lines.users_file > 0 && strncmp(err, cfg->users_file, strlen(cfg->users_file)) == 0) {
			char detail[1024];
			snprintf(detail, sizeof(detail), "%s", err);
			snprintf(err, errlen, "%s (users_file, %s:%d)", detail, cfg->path, cfg->lines.users_file);
		}
		return -1;
	}
	if (cfg->tls_cert != NULL ? (*tls = ag_tls_context_new(cfg, err, errlen)) == NULL
	                          : ag_tls_check_policy(cfg, err, errlen) != 0) {
		ag_users_unref(*users);
		*users = NULL;
		return -1;
	}
	return 0;
}

int ag_server_bind(struct ag_server *srv, const struct ag_config *cfg, char *err, size_t errlen)
{
	memset(srv, 0, sizeof(*srv));
	srv->root = srv;
	srv->cfg = cfg;
	if (strcmp(cfg->plaintext_auth, "yes") == 0)
		srv->plaintext_auth = AG_PLAINTEXT_YES;
	else if (strcmp(cfg->plaintext_auth, "no") == 0)
		srv->plaintext_auth = AG_PLAINTEXT_NO;
	else
		srv->plaintext_auth = AG_PLAINTEXT_LOOPBACK;
	if (evthread_use_pthreads() != 0) {
		snprintf(err, errlen, "libevent: no thread support");
		return -1;
	}
	/* A client that goes away must not kill the daemon with SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	srv->base = event_base_new();
	if (srv->base == NULL) {
		snprintf(err, errlen, "libevent: cannot create the event loop");
		return -1;
	}
	/* Every socket first, before any thread starts (aerogramd calls this
	 * before it loads the driver): a daemon that switched to [imap] user
	 * binds ports below 1024 with a capability it gives up right after,
	 * and threads inherit capabilities (privileges.c). Nothing is
	 * accepted before the loop runs. */
	if (ag_listeners_open(srv, cfg->listen, 0, err, errlen) != 0 ||
	    ag_listeners_open(srv, cfg->tls_listen, 1, err, errlen) != 0)
		return -1;
	if (srv->listeners == NULL) {
		snprintf(err, errlen, "%s: no address to listen on", cfg->path);
		return -1;
	}
	if (ag_lmtp_open(srv, err, errlen) != 0)
		return -1;
	if (ag_metrics_on && ag_metrics_start(srv, cfg->metrics_listen, err, errlen) != 0)
		return -1;
	ag_privileges_bound();
	return 0;
}

int ag_server_init(struct ag_server *srv, const struct ag_config *cfg, struct ag_driver *driver,
                   char *err, size_t errlen)
{
	if (srv->base == NULL && ag_server_bind(srv, cfg, err, errlen) != 0)
		return -1;
	srv->driver = driver;
	if (ag_server_load_files(cfg, &srv->users, &srv->tls, err, errlen) != 0)
		return -1;
	ag_log_info("%s: %zu users", cfg->users_file, ag_users_count(srv->users));
	/* A store private to this process (the memory driver) keeps nothing
	 * for undelete unless the file asks: aerogramctl, another process,
	 * could never reach what it kept, and it would only grow the memory. */
	uint64_t retention_s = cfg->expunge_retention_s;
	if ((ag_driver_store(driver)->driver->capabilities & AEROGRAM_CAP_PRIVATE) && !cfg->expunge_retention_set) {
		retention_s = 0;
		ag_log_info("expunge_retention: 0, the store is this process's own (nothing could undelete from it)");
	}
	struct mail_engine_options engine_options = { .log = engine_log,
	                                              .expunge_retention_ms = retention_s * 1000,
	                                              .cache_body_bytes = (size_t)cfg->body_cache_bytes,
	                                              .no_body_cache = cfg->body_cache_bytes == 0 };
	/* With metrics on, the engine's storage layer tells metrics.c of each
	 * driver call it makes, counted and timed. */
	if (ag_metrics_on)
		ag_metrics_engine_options(&engine_options);
	int rc = mail_engine_new(ag_driver_store(driver), &engine_options, &srv->engine);
	if (rc != 0) {
		snprintf(err, errlen, "cannot start the mail engine (error %d)", rc);
		return -1;
	}
	srv->failures = ag_auth_failures_new(cfg->failure_delay, cfg->failure_delay_max);
	srv->limits = ag_limits_new();
	srv->workers = ag_workers_new(srv->base, cfg->workers);
	if (srv->failures == NULL || srv->limits == NULL || srv->workers == NULL) {
		snprintf(err, errlen, "cannot start %u worker threads", cfg->workers);
		return -1;
	}
	srv->sig_term = evsignal_new(srv->base, SIGTERM, on_sigterm, srv);
	srv->sig_int = evsignal_new(srv->base, SIGINT, on_sigterm, srv);
	srv->sig_hup = evsignal_new(srv->base, SIGHUP, on_sighup, srv);
	if (srv->sig_term == NULL || srv->sig_int == NULL || srv->sig_hup == NULL ||
	    evsignal_add(srv->sig_term, NULL) != 0 || evsignal_add(srv->sig_int, NULL) != 0 ||
	    evsignal_add(srv->sig_hup, NULL) != 0) {
		snprintf(err, errlen, "libevent: cannot install signal handlers");
		return -1;
	}
	return loops_init(srv, err, errlen);
}

static struct timespec after_signal(const struct ag_server *srv, long ms)
{
	struct timespec t = srv->shutdown_at;
	t.tv_sec += ms / 1000;
	t.tv_nsec += (ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

/* Milliseconds left until `ms` after the signal (0 when past). */
static uint32_t ms_left(const struct ag_server *srv, long ms)
{
	struct timespec end = after_signal(srv, ms), now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long long left = (long long)(end.tv_sec - now.tv_sec) * 1000 + (end.tv_nsec - now.tv_nsec) / 1000000;
	return left > 0 ? (uint32_t)left : 0;
}

/* After SIGTERM, once the loops have ended: waits for the workers up to
 * SHUTDOWN_LIMIT_S after the signal; when some are still busy (a storage
 * call that does not return), exits the process now rather than join them.
 * The store is safe: each driver write is a transaction, applied whole or
 * not at all, and no other state is kept outside it. */
static void leave_stuck_workers(struct ag_server *srv, int rc)
{
	struct timespec limit = after_signal(srv, SHUTDOWN_LIMIT_S * 1000L);
	unsigned busy = 0;
	for (unsigned i = 0; i < srv->n_loops; i++)
		if (srv->loops[i]->workers != NULL)
			busy += ag_workers_wait_idle(srv->loops[i]->workers, &limit);
	if (busy == 0)
		return;
	ag_log_warn("shutdown: %u storage jobs still running %d s after the signal; exiting without them",
	            busy, SHUTDOWN_LIMIT_S);
	ag_log_info("stopped");
	_exit(rc == 0 ? 0 : 1);
}

int ag_server_run(struct ag_server *srv)
{
	unsigned started = 1;
	for (; started < srv->n_loops; started++) {
		struct ag_server *l = srv->loops[started];
		if (pthread_create(&l->thread, NULL, loop_main, l) != 0) {
			ag_log_error("cannot start event loop thread %u of %u", started + 1, srv->n_loops);
			break;
		}
	}
	int rc = 0;
	if (started < srv->n_loops) {
		rc = -1;
	} else {
		ag_log_info("ready (storage driver %s, %u event loops, %u workers each)",
		            ag_driver_store(srv->driver)->driver->name, srv->n_loops, srv->cfg->workers);
		if (event_base_dispatch(srv->base) < 0)
			rc = -1;
	}
	/* every loop stops: shut down (SIGTERM reached them) or told now */
	if (!srv->shutting_down)
		post_to_loops(srv, 1, 0, 0);
	for (unsigned i = 1; i < started; i++)
		pthread_join(srv->loops[i]->thread, NULL);
	/* loops that never ran are freed as they are */
	if (srv->shutdown_at.tv_sec != 0 || srv->shutdown_at.tv_nsec != 0)
		leave_stuck_workers(srv, rc);
	if (rc == 0)
		ag_log_info("stopped");
	return rc;
}

void ag_server_free(struct ag_server *srv)
{
	ag_listeners_close(srv);
	ag_metrics_stop(srv);
	/* Password checks reference sessions of every loop: let them end first. */
	ag_limits_stop(srv->limits);
	/* Jobs still running reference sessions: let them end first. */
	free_sessions(srv);
	ag_lmtp_free(srv);
	/* the other loops (their threads ended in ag_server_run) */
	for (unsigned i = 1; i < srv->n_loops; i++)
		loop_free(srv->loops[i]);
	free(srv->loops);
	srv->loops = NULL;
	srv->n_loops = 0;
	if (srv->engine != NULL) {
		/* the next start opens every mailbox from a checkpoint alone;
		 * after SIGTERM within the shutdown's bound */
		uint32_t budget = 5000;
		if (srv->shutdown_at.tv_sec != 0 || srv->shutdown_at.tv_nsec != 0) {
			uint32_t left = ms_left(srv, SHUTDOWN_END_MS);
			budget = left < budget ? left : budget;
		}
		if (budget > 0)
			mail_engine_checkpoint_all(srv->engine, budget);
		mail_engine_free(srv->engine);
	}
	ag_users_unref(srv->reload_result);
	SSL_CTX_free(srv->reload_tls);
	ag_auth_failures_free(srv->failures);
	ag_limits_free(srv->limits);
	ag_event_free(srv->sig_term);
	ag_event_free(srv->sig_int);
	ag_event_free(srv->sig_hup);
	free_loop_state(srv);
	memset(srv, 0, sizeof(*srv));
}
