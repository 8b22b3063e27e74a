/* server.c - the daemon's life: start-up, signals, shutdown.
 *
 * SIGTERM/SIGINT: stop accepting, let each command in flight finish, say
 * BYE to every client, exit 0 once every session is gone (or after a grace
 * period). SIGHUP: re-read the users file on a worker; a broken file keeps
 * the previous table. */
#include "host/server.h"

#include <event2/thread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "host/log.h"
#include "host/session.h"
#include "host/tls.h"

/* How long shutdown waits for commands in flight and BYEs to flush. */
#define SHUTDOWN_GRACE_S 20

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
		srv->reload_tls = ag_tls_context_new(srv->cfg->tls_cert, srv->cfg->tls_key, srv->reload_tls_error,
		                                     sizeof(srv->reload_tls_error));
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
	event_base_loopexit(srv->base, NULL);
}

static void on_sigterm(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	struct ag_server *srv = arg;
	if (srv->shutting_down)
		return;
	ag_log_info("%s: shutting down (%u connections)", sig == SIGINT ? "SIGINT" : "SIGTERM",
	            srv->n_sessions);
	srv->shutting_down = 1;
	ag_listeners_close(srv);
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

static void engine_log(void *arg, int level, const char *line)
{
	(void)arg;
	ag_log_driver_line((enum aerogram_log_level)level, "mail", line);
}

int ag_server_init(struct ag_server *srv, const struct ag_config *cfg, struct ag_driver *driver,
                   char *err, size_t errlen)
{
	memset(srv, 0, sizeof(*srv));
	srv->cfg = cfg;
	srv->driver = driver;
	if (strcmp(cfg->plaintext_auth, "yes") == 0)
		srv->plaintext_auth = AG_PLAINTEXT_YES;
	else if (strcmp(cfg->plaintext_auth, "no") == 0)
		srv->plaintext_auth = AG_PLAINTEXT_NO;
	else
		srv->plaintext_auth = AG_PLAINTEXT_LOOPBACK;
	if (cfg->users_file == NULL) {
		snprintf(err, errlen, "%s: [auth] users_file is not set", cfg->path);
		return -1;
	}
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
	if (ag_users_load(cfg->users_file, &srv->users, err, errlen) != 0)
		return -1;
	ag_log_info("%s: %zu users", cfg->users_file, ag_users_count(srv->users));
	if (cfg->tls_cert != NULL) {
		srv->tls = ag_tls_context_new(cfg->tls_cert, cfg->tls_key, err, errlen);
		if (srv->tls == NULL)
			return -1;
	}
	struct mail_engine_options engine_options = { .log = engine_log };
	int rc = mail_engine_new(ag_driver_store(driver), &engine_options, &srv->engine);
	if (rc != 0) {
		snprintf(err, errlen, "cannot start the mail engine (error %d)", rc);
		return -1;
	}
	srv->failures = ag_auth_failures_new(cfg->failure_delay, cfg->failure_delay_max);
	srv->workers = ag_workers_new(srv->base, cfg->workers);
	if (srv->failures == NULL || srv->workers == NULL) {
		snprintf(err, errlen, "cannot start %u worker threads", cfg->workers);
		return -1;
	}
	if (ag_listeners_open(srv, cfg->listen, 0, err, errlen) != 0 ||
	    ag_listeners_open(srv, cfg->tls_listen, 1, err, errlen) != 0)
		return -1;
	if (srv->listeners == NULL) {
		snprintf(err, errlen, "%s: no address to listen on", cfg->path);
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
	return 0;
}

int ag_server_run(struct ag_server *srv)
{
	ag_log_info("ready (storage driver %s, %u workers)", ag_driver_store(srv->driver)->driver->name,
	            srv->cfg->workers);
	if (event_base_dispatch(srv->base) < 0)
		return -1;
	ag_log_info("stopped");
	return 0;
}

void ag_server_free(struct ag_server *srv)
{
	ag_listeners_close(srv);
	/* Jobs still running reference sessions: let them end first. */
	if (srv->workers != NULL) {
		ag_workers_free(srv->workers);
		srv->workers = NULL;
	}
	srv->shutting_down = 1;
	while (srv->sessions != NULL) {
		srv->sessions->job_running = 0;
		ag_session_free(srv->sessions);
	}
	if (srv->engine != NULL) {
		/* the next start opens every mailbox from a checkpoint alone */
		mail_engine_checkpoint_all(srv->engine, 5000);
		mail_engine_free(srv->engine);
	}
	if (srv->reload_result != NULL)
		ag_users_unref(srv->reload_result);
	if (srv->reload_tls != NULL)
		SSL_CTX_free(srv->reload_tls);
	if (srv->users != NULL)
		ag_users_unref(srv->users);
	ag_auth_failures_free(srv->failures);
	if (srv->tls != NULL)
		SSL_CTX_free(srv->tls);
	if (srv->sig_term)
		event_free(srv->sig_term);
	if (srv->sig_int)
		event_free(srv->sig_int);
	if (srv->sig_hup)
		event_free(srv->sig_hup);
	if (srv->shutdown_deadline)
		event_free(srv->shutdown_deadline);
	if (srv->base != NULL)
		event_base_free(srv->base);
	memset(srv, 0, sizeof(*srv));
}
