/* session.c - one IMAP connection from the socket to the response.
 *
 * Bytes arrive in the bufferevent's input; session_input() hands them to the
 * streaming parser and acts on each event. One command is in flight at a
 * time: while it runs (for instance on a worker thread) further input stays
 * in the buffer, which is how pipelined commands are answered in order. A
 * command that reads client lines itself (IDLE's DONE, AUTHENTICATE's
 * responses) enters AG_PHASE_LINES and the parser keeps being fed; the
 * lines go to the hooks its row of the command table names.
 *
 * The phase (session.h) says where the session is in its life and only
 * enter() changes it. A session is freed in exactly three ways: the peer
 * went away and no job holds it (event_cb), the BYE was flushed (close
 * timer), or the server frees what is left at exit. A worker job in flight
 * always delays it.
 */
#include "host/session.h"
#include "host/searchres.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/capability.h"
#include "host/commands.h"
#include "host/context.h"
#include "host/log.h"
#include "host/mail/mail.h"
#include "host/mail_reply.h"
#include "host/compress.h"
#include "host/metrics.h"
#include "host/tls.h"
#include "protocol/list.h"

/* Malformed commands in a row before the server gives up on a client. */
#define MAX_BAD_IN_ROW 20
/* The input buffer stops reading past this; the parser drains it. */
#define INPUT_HIGH_WATER (256 * 1024)
/* Input waiting behind a command in flight: reading pauses from this much on. */
#define INPUT_PAUSE (16 * 1024)
/* Responses waiting for a client that does not read: stop reading its
 * commands until they went out. */
#define OUTPUT_HIGH_WATER (4 * 1024 * 1024)
/* A reply buffer up to this size is kept for the next command. */
#define REPLY_KEEP (64 * 1024)
/* Seconds a connection may stay idle before it authenticated. */
#define PREAUTH_TIMEOUT_S 180
/* The close timer polls for the BYE to be flushed every CLOSE_TICK_MS, at most CLOSE_MAX_TICKS times. */
#define CLOSE_TICK_MS 20
#define CLOSE_MAX_TICKS 250

static void session_input(struct ag_session *s);

/* The one place the phase changes. */
static void enter(struct ag_session *s, enum ag_session_phase phase)
{
	s->phase = phase;
}

/* A worker job holds the session (the peer may be gone meanwhile). */
static int job_holds(const struct ag_session *s)
{
	return s->phase == AG_PHASE_JOB || s->phase == AG_PHASE_DEAD;
}

int ag_session_ending(const struct ag_session *s)
{
	return s->phase >= AG_PHASE_CLOSING;
}

/* The command table's input hooks of the command in flight, or NULL. */
static const struct ag_command_input *command_input(const struct ag_session *s)
{
	const struct ag_command *c = s->cmd != NULL ? ag_command_find(s->cmd->kind) : NULL;
	return c != NULL ? c->input : NULL;
}

/* The selected mailbox changed: a command waiting for client lines may
 * tell it now (IDLE); others leave it to the next command. */
static void tell_change(struct ag_session *s)
{
	const struct ag_command_input *in = command_input(s);
	/* LINES only: while a job runs, s->view belongs to its thread. */
	if (s->phase == AG_PHASE_LINES && in != NULL && in->changed != NULL)
		in->changed(s);
}

/* Metrics or the per-command debug line want what a command answered. */
static int observing(void)
{
	return ag_metrics_on || ag_log_enabled(AEROGRAM_LOG_DEBUG);
}

/* Bytes going out: counted, and a command's tagged response recognised by
 * the last line of the write that carries it (the tagged line is the last
 * thing a command writes). Only that line is looked at, and at most 1 KiB
 * of it: a status line is short. */
static void note_output(struct ag_session *s, const char *data, size_t len)
{
	if (!observing())
		return;
	ag_metrics_bytes(0, len);
	if (s->cmd == NULL || len < 2 || data[len - 1] != '\n')
		return;
	size_t end = len - 1, start = end;
	size_t limit = end > 1024 ? end - 1024 : 0;
	while (start > limit && data[start - 1] != '\n')
		start--;
	if (start == limit && limit > 0)
		return;
	const char *line = data + start;
	size_t n = end - start, tl = s->cmd->tag.len;
	if (tl == 0 || n < tl + 3 || memcmp(line, s->cmd->tag.data, tl) != 0 || line[tl] != ' ')
		return;
	line += tl + 1;
	n -= tl + 1;
	if (n >= 2 && memcmp(line, "OK", 2) == 0)
		s->cmd_result = AG_RESULT_OK;
	else if (n >= 2 && memcmp(line, "NO", 2) == 0)
		s->cmd_result = AG_RESULT_NO;
	else if (n >= 3 && memcmp(line, "BAD", 3) == 0)
		s->cmd_result = AG_RESULT_BAD;
}

static const char *const result_text[AG_RESULT__COUNT] = { "OK", "NO", "BAD", "none" };

/* A command ends: counted, logged at debug, and the connections gauge
 * follows the state it left the session in. */
static void observe_command_end(struct ag_session *s)
{
	const struct imap_command *cmd = s->cmd;
	ag_metrics_command(cmd->kind, cmd->uid, (enum ag_metrics_result)s->cmd_result, &s->cmd_started);
	int ms = ag_metrics_state_index(s->state);
	if (ms != s->metrics_state) {
		ag_metrics_state(s->metrics_state, ms);
		s->metrics_state = ms;
	}
	if (ag_log_enabled(AEROGRAM_LOG_DEBUG)) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		double ms_taken = (double)(now.tv_sec - s->cmd_started.tv_sec) * 1e3 +
		                  (double)(now.tv_nsec - s->cmd_started.tv_nsec) / 1e6;
		const struct ag_command *c = ag_command_find(cmd->kind);
		ag_log_debug("%s: %s%s%scommand=%s%s result=%s %.3f ms", s->peer, s->user ? "user=" : "",
		             s->user ? s->user : "", s->user ? " " : "", cmd->uid ? "UID " : "", c != NULL ? c->name : "?",
		             result_text[s->cmd_result], ms_taken);
	}
}

/* Frees what a multi-run storage command kept between runs. */
static void free_cont(struct ag_session *s)
{
	if (s->cont != NULL && s->cont_free != NULL)
		s->cont_free(s->cont);
	s->cont = NULL;
	s->cont_free = NULL;
	s->storage_more = 0;
}

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

const char *ag_session_state_name(enum ag_session_state state)
{
	switch (state) {
	case AG_STATE_NOT_AUTH: return "not-authenticated";
	case AG_STATE_AUTH: return "authenticated";
	case AG_STATE_SELECTED: return "selected";
	default: return "logout";
	}
}

static int is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return 1;
		return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
	}
	return 0;
}

static void describe_peer(struct ag_session *s, const struct sockaddr *sa)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
		snprintf(s->peer, sizeof(s->peer), "%s:%u", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
		snprintf(s->peer, sizeof(s->peer), "[%s]:%u", host, port);
	} else {
		snprintf(s->peer, sizeof(s->peer), "unknown");
	}
	snprintf(s->address, sizeof(s->address), "%s", host);
}

static struct imap_parser *new_parser(const struct ag_config *cfg)
{
	struct imap_parser_limits limits;
	imap_parser_default_limits(&limits);
	limits.max_line = cfg->max_line;
	limits.max_append = cfg->max_message;
	if (limits.max_command < cfg->max_line * 2)
		limits.max_command = cfg->max_line * 2;
	return imap_parser_new(&limits);
}

static void arm_autologout(struct ag_session *s)
{
	/* Before login a connection costs without serving anyone: it gets
	 * at most PREAUTH_TIMEOUT_S (the 30 minutes of RFC 3501 5.4 are for
	 * authenticated clients). */
	unsigned seconds = s->srv->cfg->idle_timeout;
	if (s->state == AG_STATE_NOT_AUTH && seconds > PREAUTH_TIMEOUT_S)
		seconds = PREAUTH_TIMEOUT_S;
	struct timeval tv = { (time_t)seconds, 0 };
	evtimer_add(s->autologout, &tv);
}

static void on_autologout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct ag_session *s = arg;
	if (job_holds(s) || s->phase == AG_PHASE_CLOSING) {
		arm_autologout(s);
		return;
	}
	ag_log_info("%s: autologout: idle for too long%s%s", s->peer, s->user ? " user=" : "", s->user ? s->user : "");
	ag_session_close(s, "Autologout; idle for too long.");
}

static void on_login_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct ag_session *s = arg;
	if (s->state != AG_STATE_NOT_AUTH || s->phase == AG_PHASE_CLOSING)
		return;
	if (job_holds(s)) {
		/* a password check is running: its answer decides */
		struct timeval tv = { 1, 0 };
		evtimer_add(s->login_deadline, &tv);
		return;
	}
	ag_log_info("%s: login timeout: not authenticated %u s after connecting, disconnecting", s->peer,
	            s->srv->cfg->login_timeout);
	ag_session_close(s, "Login timeout: not authenticated in time.");
}

/* The selected mailbox changed (made active from an engine thread). */
static void on_notify(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct ag_session *s = arg;
	s->changed = 1;
	tell_change(s);
}

static void setup_bev(struct ag_session *s)
{
	bufferevent_setcb(s->bev, on_read, on_write, on_event, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, INPUT_HIGH_WATER);
	bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	s->reading_paused = 0;
}

void ag_session_capabilities(const struct ag_session *s, struct agbuf *out)
{
	struct ag_capability_context ctx = {
		.authenticated = s->state == AG_STATE_AUTH || s->state == AG_STATE_SELECTED,
		.starttls = s->srv->tls != NULL && !s->tls,
		.plaintext_ok = ag_session_plaintext_ok(s),
	};
	ag_capability_append(out, &ctx);
}

int ag_session_plaintext_ok(const struct ag_session *s)
{
	if (s->tls)
		return 1;
	switch (s->srv->plaintext_auth) {
	case AG_PLAINTEXT_YES: return 1;
	case AG_PLAINTEXT_NO: return 0;
	default: return s->loopback;
	}
}

struct ag_session *ag_session_new(struct ag_server *srv, struct bufferevent *bev,
                                  const struct sockaddr *peer, int tls)
{
	struct ag_session *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		bufferevent_free(bev);
		return NULL;
	}
	s->srv = srv;
	s->bev = bev;
	s->state = AG_STATE_NOT_AUTH;
	s->metrics_state = AG_MSTATE_NOT_AUTH;
	ag_metrics_state(-1, AG_MSTATE_NOT_AUTH);
	s->tls = tls;
	s->loopback = is_loopback(peer);
	describe_peer(s, peer);
	s->parser = new_parser(srv->cfg);
	s->autologout = evtimer_new(srv->base, on_autologout, s);
	s->notify = event_new(srv->base, -1, 0, on_notify, s);
	if (s->parser == NULL || s->autologout == NULL || s->notify == NULL) {
		ag_log_error("%s: out of memory for a new connection", s->peer);
		if (s->parser)
			imap_parser_free(s->parser);
		ag_event_free(s->autologout);
		ag_event_free(s->notify);
		bufferevent_free(bev);
		free(s);
		return NULL;
	}
	DLIST_INSERT_HEAD(srv->sessions, s);
	srv->n_sessions++;
	atomic_fetch_add(&srv->root->total_sessions, 1);
	setup_bev(s);
	unsigned from_there = 0;
	if (ag_limits_connection_add(srv->limits, s->address, srv->cfg->max_connections_per_ip, &from_there) != 0) {
		ag_log_warn("%s: refused: %u connections open from %s (max_connections_per_ip)", s->peer, from_there,
		            s->address);
		ag_session_close(s, "Too many connections from your address.");
		return s;
	}
	s->counted_address = 1;
	/* However it trickles its bytes, a client has login_timeout in all
	 * to authenticate (the idle timer is re-armed by every byte). */
	s->login_deadline = evtimer_new(srv->base, on_login_deadline, s);
	if (s->login_deadline != NULL) {
		struct timeval tv = { (time_t)srv->cfg->login_timeout, 0 };
		evtimer_add(s->login_deadline, &tv);
	}
	arm_autologout(s);

	struct agbuf caps = AGBUF_INIT, line = AGBUF_INIT;
	ag_session_capabilities(s, &caps);
	imap_write_status_begin(&line, NULL, IMAP_OK);
	imap_write_code_capability(&line, caps.data);
	imap_write_status_end(&line, "Aerogram ready.");
	ag_reply_send(s, &line);
	agbuf_free(&caps);
	return s;
}

static void clear_auth(struct ag_auth_request *a)
{
	if (a->password != NULL) {
		OPENSSL_cleanse(a->password, a->password_len);
		free(a->password);
	}
	free(a->user);
	ag_users_unref(a->users);
	memset(a, 0, sizeof(*a));
}

void ag_session_free(struct ag_session *s)
{
	struct ag_server *srv = s->srv;
	ag_log_info("%s: disconnected%s%s after %u commands%s (%u wakeups, %u quick ACKs, %u inline; loop %u)",
	            s->peer, s->user ? " user=" : "", s->user ? s->user : "", s->commands, s->tls ? (s->compressed ? " (tls, deflate)" : " (tls)") : s->compressed ? " (deflate)" : "",
	            s->wakeups, s->quick_acks, s->inline_runs, srv->loop_index);
	ag_metrics_state(s->metrics_state, -1);
	DLIST_REMOVE(srv->sessions, s);
	srv->n_sessions--;
	atomic_fetch_sub(&srv->root->total_sessions, 1);
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	imap_parser_free(s->parser);
	imap_command_free(s->cmd);
	event_free(s->autologout);
	ag_event_free(s->close_timer);
	ag_event_free(s->delay_timer);
	ag_event_free(s->auth_timer);
	ag_event_free(s->auth_done);
	ag_event_free(s->login_deadline);
	if (s->auth.slot)
		ag_limits_auth_release(srv->limits, s->address);
	if (s->counted_address)
		ag_limits_connection_remove(srv->limits, s->address);
	if (s->counted_user && s->user != NULL)
		ag_limits_user_remove(srv->limits, s->user);
	clear_auth(&s->auth);
	ag_session_unselect(s);
	ag_event_free(s->notify);
	ag_event_free(s->keepalive);
	agbuf_free(&s->reply);
	ag_session_append_clear(s);
	free_cont(s);
	free(s->user);
	free(s);
	ag_server_session_gone(srv);
}

void ag_session_write(struct ag_session *s, const void *data, size_t len)
{
	if (s->bev != NULL && s->phase != AG_PHASE_DEAD) {
		note_output(s, data, len);
		bufferevent_write(s->bev, data, len);
	}
}

/* One status response (tag NULL: untagged), through the response writer. */
static void __attribute__((format(printf, 5, 6)))
send_status(struct ag_session *s, const char *tag, enum imap_status status, enum imap_code code, const char *fmt, ...)
{
	struct agbuf text = AGBUF_INIT, line = AGBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	agbuf_vprintf(&text, fmt, ap);
	va_end(ap);
	imap_write_status(&line, tag, status, code, "%s", text.data ? text.data : "");
	ag_reply_send(s, &line);
	agbuf_free(&text);
}

void ag_session_tagged(struct ag_session *s, enum imap_status status, const char *fmt, ...)
{
	struct agbuf text = AGBUF_INIT, line = AGBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	agbuf_vprintf(&text, fmt, ap);
	va_end(ap);
	imap_write_status_begin(&line, s->cmd != NULL ? s->cmd->tag.data : NULL, status);
	imap_write_status_end(&line, text.data);
	ag_session_write(s, line.data, line.len);
	agbuf_free(&text);
	agbuf_free(&line);
}

static size_t output_pending(const struct ag_session *s)
{
	if (s->bev == NULL)
		return 0;
	/* every layer's output: COMPRESS over TLS over the socket */
	size_t n = 0;
	for (struct bufferevent *b = s->bev; b != NULL; b = bufferevent_get_underlying(b))
		n += evbuffer_get_length(bufferevent_get_output(b));
	return n;
}

static void on_close_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct ag_session *s = arg;
	s->close_ticks++;
	if (s->phase == AG_PHASE_CLOSING && (output_pending(s) == 0 || s->close_ticks >= CLOSE_MAX_TICKS)) {
		ag_session_free(s);
		return;
	}
	struct timeval tv = { 0, CLOSE_TICK_MS * 1000 };
	evtimer_add(s->close_timer, &tv);
}

void ag_session_close(struct ag_session *s, const char *bye_text)
{
	if (ag_session_ending(s))
		return;
	if (bye_text != NULL)
		send_status(s, NULL, IMAP_BYE, IMAP_CODE_NONE, "%s", bye_text);
	enter(s, AG_PHASE_CLOSING);
	s->state = AG_STATE_LOGOUT;
	if (s->bev != NULL)
		bufferevent_disable(s->bev, EV_READ);
	evtimer_del(s->autologout);
	s->close_timer = evtimer_new(s->srv->base, on_close_tick, s);
	if (s->close_timer == NULL)
		return; /* out of memory: freed when the peer goes or at exit */
	struct timeval tv = { 0, 0 };
	evtimer_add(s->close_timer, &tv);
}

void ag_session_shutdown(struct ag_session *s)
{
	/* A command that runs on a worker finishes first; IDLE and an
	 * unfinished AUTHENTICATE are only waiting for the client, a password
	 * check not started yet for its turn. */
	switch (s->phase) {
	case AG_PHASE_READING:
	case AG_PHASE_LINES:
		break;
	case AG_PHASE_COMMAND:
		if (s->auth.user == NULL)
			return;
		break;
	default:
		return;
	}
	ag_session_close(s, "Server shutting down.");
}

void ag_session_abandon(struct ag_session *s)
{
	if (job_holds(s))
		atomic_store(&s->abandoned, 1);
}

int ag_session_abandoned(struct ag_session *s)
{
	return atomic_load_explicit(&s->abandoned, memory_order_relaxed);
}

void ag_session_command_done(struct ag_session *s)
{
	if (s->cmd != NULL && observing())
		observe_command_end(s);
	ag_session_append_clear(s);
	free_cont(s);
	imap_command_free(s->cmd);
	s->cmd = NULL;
	if (ag_session_ending(s))
		return;
	enter(s, AG_PHASE_READING);
	if (s->srv->shutting_down) {
		ag_session_close(s, "Server shutting down.");
		return;
	}
	if (!s->in_input)
		session_input(s);
}

/* The worker job's completion: the session was kept alive for it. */
static void job_done(void *arg)
{
	struct ag_session *s = arg;
	atomic_store(&s->abandoned, 0);
	if (s->phase == AG_PHASE_DEAD) {
		ag_session_free(s);
		return;
	}
	enter(s, AG_PHASE_COMMAND);
	s->job_done(s);
}

void ag_session_run_job(struct ag_session *s, void (*job_run)(void *), void (*done)(struct ag_session *))
{
	s->job.run = job_run;
	s->job.done = job_done;
	s->job.arg = s;
	s->job_done = done;
	enter(s, AG_PHASE_JOB);
	ag_workers_submit(s->srv->workers, &s->job);
}

static void auth_job_done(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	job_done(arg);
}

int ag_session_run_auth_job(struct ag_session *s, void (*job_run)(void *), void (*done)(struct ag_session *))
{
	if (s->auth_done == NULL)
		s->auth_done = event_new(s->srv->base, -1, 0, auth_job_done, s);
	if (s->auth_done == NULL)
		return -1;
	s->auth_job.run = job_run;
	s->auth_job.arg = s;
	s->auth_job.done = s->auth_done;
	s->job_done = done;
	enter(s, AG_PHASE_JOB);
	ag_limits_auth_submit(s->srv->limits, &s->auth_job);
	return 0;
}

static void storage_run(void *arg)
{
	struct ag_session *s = arg;
	s->storage_run(s);
}

static void storage_done(struct ag_session *s);

void ag_session_storage_continue(struct ag_session *s, void *cont, void (*cont_free)(void *))
{
	s->cont = cont;
	s->cont_free = cont_free;
	s->storage_more = 1;
}


/* Sends a storage command's reply. When nothing is queued before it (one
 * response per command, the common case) it goes straight to the socket:
 * through the bufferevent, every response would cost an epoll_ctl to watch
 * for writability, a loop turn to write and another epoll_ctl to stop
 * watching. Whatever the socket does not take at once, and everything on
 * TLS or COMPRESS, goes through the bufferevent, which keeps the order. */
static void send_reply(struct ag_session *s, const char *data, size_t len)
{
	if (s->bev == NULL || s->phase == AG_PHASE_DEAD || len == 0)
		return;
	note_output(s, data, len);
	/* (an implicit-TLS bufferevent has no layer below: test tls itself) */
	if (!s->tls && !s->compressed && evbuffer_get_length(bufferevent_get_output(s->bev)) == 0) {
		ssize_t sent = send(bufferevent_getfd(s->bev), data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (sent > 0) {
			data += sent;
			len -= (size_t)sent;
		}
	}
	if (len > 0)
		bufferevent_write(s->bev, data, len);
}

static void storage_done(struct ag_session *s)
{
	send_reply(s, s->reply.data, s->reply.len);
	/* A long answer's buffer is not kept for the session's next commands. */
	if (s->reply.cap > REPLY_KEEP)
		agbuf_free(&s->reply);
	else
		agbuf_reset(&s->reply);
	if (s->uidvalidity_lost && !ag_session_ending(s)) {
		ag_log_info("%s: user=%s: mailbox UIDVALIDITY changed, disconnecting", s->peer,
		            s->user ? s->user : "");
		ag_session_close(s, "Mailbox UIDVALIDITY changed");
		return;
	}
	if (s->storage_more && !ag_session_ending(s)) {
		s->storage_more = 0;
		/* Go on once the client has read: on_write resumes a pause. */
		if (output_pending(s) > OUTPUT_HIGH_WATER) {
			enter(s, AG_PHASE_PAUSED);
			return;
		}
		ag_session_run_job(s, storage_run, storage_done);
		return;
	}
	if (s->next_state != 0) {
		s->state = s->next_state;
		s->next_state = 0;
	}
	if (!s->keep_command) {
		ag_session_command_done(s);
		return;
	}
	/* The command goes on reading client lines (IDLE). */
	s->keep_command = 0;
	enter(s, AG_PHASE_LINES);
	tell_change(s);
	if (!s->in_input && s->phase == AG_PHASE_LINES)
		session_input(s);
}

/* Commands tried on the loop thread first (below): those whose every
 * change of the session's state comes after their engine calls, so that an
 * attempt the engine refuses can be thrown away and run again. */
static int may_run_inline(const struct ag_session *s, const struct imap_command *cmd)
{
	/* An update of the view runs the searches of the updating contexts
	 * after it: an attempt refused there could not be thrown away, the
	 * view having moved. */
	if (s->contexts != NULL && cmd->kind != IMAP_CMD_FETCH && cmd->kind != IMAP_CMD_SEARCH &&
	    cmd->kind != IMAP_CMD_SORT && cmd->kind != IMAP_CMD_THREAD)
		return 0;
	switch (cmd->kind) {
	case IMAP_CMD_FETCH:
	case IMAP_CMD_SEARCH:
	case IMAP_CMD_SORT:
	case IMAP_CMD_THREAD:
	case IMAP_CMD_NOOP:
	case IMAP_CMD_CHECK:
	case IMAP_CMD_STORE:
	case IMAP_CMD_EXPUNGE:
	case IMAP_CMD_STATUS:
	case IMAP_CMD_LIST:
	case IMAP_CMD_LSUB:
		return 1;
	default:
		return 0;
	}
}

void ag_session_storage(struct ag_session *s, void (*run)(struct ag_session *s), int keep_command)
{
	agbuf_reset(&s->reply);
	s->storage_run = run;
	s->keep_command = keep_command;
	/* A read-only command whose answer is in memory (a view that is
	 * current, summaries in the engine's cache) runs here, on the loop:
	 * handing it to a worker and back costs more than the command. The
	 * engine's non-blocking mode makes any call that would wait (a store
	 * call, a lock held across one) fail before it changes anything; the
	 * command is then thrown away and run on a worker as usual. */
	if (!keep_command && s->cmd != NULL && may_run_inline(s, s->cmd)) {
		mail_nonblock(1);
		run(s);
		mail_nonblock(0);
		if (!mail_nonblock_hit()) {
			s->inline_runs++;
			storage_done(s);
			return;
		}
		agbuf_reset(&s->reply);
		if (s->cont != NULL && s->cont_free != NULL)
			s->cont_free(s->cont);
		s->cont = NULL;
		s->cont_free = NULL;
		s->storage_more = 0;
	}
	ag_session_run_job(s, storage_run, storage_done);
}

int ag_session_update_view(struct ag_session *s, unsigned options, int with_uid, const uint32_t *silent,
                           size_t n_silent)
{
	int changed = 0;
	/* With updating contexts (RFC 5267), the changes go to a buffer of
	 * their own: each context's REMOVEFROM is told before them (before the
	 * EXPUNGEs, while its sequence numbers hold) and its ADDTO after (after
	 * the EXISTS). The UIDs of the view before the update give those
	 * sequence numbers. */
	struct agbuf changes = AGBUF_INIT, added = AGBUF_INIT;
	uint32_t *before = NULL;
	size_t n_before = 0;
	if (s->contexts != NULL) {
		n_before = mail_view_exists(s->view);
		before = malloc((n_before ? n_before : 1) * sizeof(*before));
		for (size_t i = 0; before != NULL && i < n_before; i++)
			before[i] = mail_view_uid(s->view, (uint32_t)i + 1);
	}
	struct agbuf *out = s->contexts != NULL ? &changes : &s->reply;
	int rc = ag_reply_update(out, s->view, s->readonly, &s->kw_announced, options, with_uid, silent,
	                         n_silent, ag_session_features(s), &changed);
	if (rc == 0 && changed) {
		/* Concurrent daemons collided on UIDs and the mailbox has a new
		 * UIDVALIDITY. RFC 3501 gives no way to tell a client mid-session
		 * that its UIDs changed meaning; like Dovecot, disconnect it so
		 * that it resyncs the mailbox when it comes back. */
		s->uidvalidity_lost = 1;
	}
	if (rc == 0) {
		free(s->seen_overlay);
		s->seen_overlay = NULL;
		s->n_seen_overlay = 0;
	}
	if (s->contexts != NULL) {
		/* Nothing told (and no silent STORE) is nothing changed: the
		 * searches are not run again. */
		if (rc == 0 && !changed && (changes.len > 0 || n_silent > 0)) {
			if (before == NULL)
				ag_context_end_all(s, &added); /* out of memory: they cannot be kept right */
			else
				ag_context_update(s, before, n_before, &s->reply, &added);
		}
		agbuf_append(&s->reply, changes.data, changes.len);
		agbuf_append(&s->reply, added.data, added.len);
	}
	agbuf_free(&changes);
	agbuf_free(&added);
	free(before);
	return rc;
}

unsigned ag_session_features(const struct ag_session *s)
{
	return (s->condstore ? AG_REPLY_CONDSTORE : 0u) | (s->qresync ? AG_REPLY_QRESYNC : 0u);
}

void ag_session_enable_condstore(struct ag_session *s)
{
	if (s->condstore)
		return;
	s->condstore = 1;
	if (s->view != NULL)
		ag_reply_highestmodseq(&s->reply, s->view);
}

static int cmp_uid(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

void ag_session_overlay_seen(struct ag_session *s, const uint32_t *uids, size_t n)
{
	uint32_t *grown = realloc(s->seen_overlay, (s->n_seen_overlay + n) * sizeof(*grown));
	if (grown == NULL || n == 0) {
		if (grown != NULL)
			s->seen_overlay = grown;
		return;
	}
	memcpy(grown + s->n_seen_overlay, uids, n * sizeof(*uids));
	s->seen_overlay = grown;
	s->n_seen_overlay += n;
	qsort(s->seen_overlay, s->n_seen_overlay, sizeof(*s->seen_overlay), cmp_uid);
}

uint32_t ag_session_flags(const struct ag_session *s, uint32_t uid, uint32_t view_flags)
{
	if (s->n_seen_overlay > 0 &&
	    bsearch(&uid, s->seen_overlay, s->n_seen_overlay, sizeof(uid), cmp_uid) != NULL)
		return view_flags | MAIL_F_SEEN;
	return view_flags;
}

void ag_session_unselect(struct ag_session *s)
{
	free(s->seen_overlay);
	s->seen_overlay = NULL;
	s->n_seen_overlay = 0;
	ag_searchres_reset(s);
	ag_context_free_all(s);
	if (s->sub != NULL)
		mail_unsubscribe(s->sub);
	s->sub = NULL;
	if (s->view != NULL)
		mail_view_close(s->view);
	s->view = NULL;
	free(s->mailbox);
	s->mailbox = NULL;
	s->readonly = 0;
	s->kw_announced = 0;
}

int ag_session_start_tls(struct ag_session *s)
{
	SSL *ssl = ag_tls_new_ssl(s->srv->tls);
	if (ssl == NULL)
		return -1;
	/* Whatever the client pipelined after STARTTLS was sent in the clear:
	 * it must not be taken as coming from inside TLS. */
	evbuffer_drain(bufferevent_get_input(s->bev), evbuffer_get_length(bufferevent_get_input(s->bev)));
	struct bufferevent *filter = bufferevent_openssl_filter_new(
		s->srv->base, s->bev, ssl, BUFFEREVENT_SSL_ACCEPTING,
		BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (filter == NULL) {
		SSL_free(ssl);
		return -1;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(filter, 1);
	struct imap_parser *parser = new_parser(s->srv->cfg);
	if (parser == NULL) {
		/* The filter owns the socket now; the caller closes the session. */
		s->bev = filter;
		return -1;
	}
	imap_parser_free(s->parser);
	s->parser = parser;
	s->bev = filter;
	s->tls = 1;
	setup_bev(s);
	return 0;
}

int ag_session_start_compress(struct ag_session *s)
{
	/* The tagged OK is in the output of the layer below already: it goes
	 * out uncompressed, and everything after it compressed (RFC 4978 3).
	 * The client sends nothing until it has read that OK. */
	struct bufferevent *filter = ag_compress_wrap(s->bev);
	if (filter == NULL)
		return -1;
	s->bev = filter;
	s->compressed = 1;
	setup_bev(s);
	return 0;
}

/* A client that sends a command line and then its LITERAL+ literal, or a
 * literal and then the CRLF that ends the command, in two writes is held
 * by its own Nagle algorithm until the first part is acknowledged, and the
 * server, having nothing to answer yet, would delay that ACK by 40 ms. So
 * a read that leaves a command unfinished and nothing else buffered is
 * acknowledged at once, except while a literal's bytes stream in: those
 * come in full segments that are acknowledged anyway, and one setsockopt
 * per read of a large message would be pure cost. A finished command needs
 * nothing: its answer carries the ACK. */
static void ack_if_waiting(struct ag_session *s)
{
	uint64_t left = imap_parser_literal_remaining(s->parser);
	uint64_t before = s->literal_left;
	s->literal_left = left;
	if (ag_session_ending(s) || imap_parser_at_command_start(s->parser) ||
	    evbuffer_get_length(bufferevent_get_input(s->bev)) > 0)
		return;
	if (left > 0 && before > 0 && left < before)
		return; /* the middle of a literal */
	struct bufferevent *sock = s->bev;
	while (bufferevent_get_underlying(sock) != NULL)
		sock = bufferevent_get_underlying(sock);
	evutil_socket_t fd = bufferevent_getfd(sock);
	int one = 1;
	if (fd >= 0 && setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one)) == 0)
		s->quick_acks++;
}

static void on_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	struct ag_session *s = arg;
	s->wakeups++;
	if (ag_session_ending(s))
		return;
	arm_autologout(s);
	session_input(s);
	ack_if_waiting(s);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	(void)bev;
	struct ag_session *s = arg;
	s->wakeups++;
	/* A long answer paused for a slow reader goes on once it has read. */
	if (s->phase == AG_PHASE_PAUSED) {
		ag_session_run_job(s, storage_run, storage_done);
		return;
	}
	/* Input paused for a slow reader resumes once its responses are out. */
	if (s->phase == AG_PHASE_READING || s->phase == AG_PHASE_LINES)
		session_input(s);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	struct ag_session *s = arg;
	s->wakeups++;
	if (what & BEV_EVENT_ERROR) {
		unsigned long e = bufferevent_get_openssl_error(s->bev);
		if (e != 0) {
			char why[256];
			ERR_error_string_n(e, why, sizeof(why));
			/* A client that closes its socket without TLS's
			 * close_notify (most do, after LOGOUT or when
			 * quitting) is a normal end, not a failure. */
			if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
				ag_log_debug("%s: TLS: the client closed without close_notify: %s", s->peer, why);
			else
				ag_log_warn("%s: TLS error: %s", s->peer, why);
		}
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		if (!job_holds(s)) {
			ag_session_free(s);
			return;
		}
		enter(s, AG_PHASE_DEAD);
		ag_session_abandon(s);
	}
}

static void send_bad(struct ag_session *s, const char *tag, const char *text)
{
	send_status(s, tag, IMAP_BAD, IMAP_CODE_NONE, "%s", text);
	if (++s->bad_in_row >= MAX_BAD_IN_ROW) {
		ag_log_info("%s: %u malformed commands in a row, disconnecting", s->peer, s->bad_in_row);
		ag_session_close(s, "Too many invalid commands.");
	}
}

static void on_error_event(struct ag_session *s, const struct imap_event *ev)
{
	ag_metrics_malformed();
	const char *text = ev->text != NULL && ev->text[0] ? ev->text : "Error in IMAP command.";
	if (ev->error == IMAP_ERR_LITERAL_TOO_LARGE && ev->tag != NULL) {
		send_status(s, ev->tag, IMAP_NO, IMAP_CODE_TOOBIG, "%s", text);
		if (++s->bad_in_row >= MAX_BAD_IN_ROW)
			ag_session_close(s, "Too many invalid commands.");
		return;
	}
	send_bad(s, ev->tag, text);
}

void ag_session_read_lines(struct ag_session *s, enum imap_parser_mode mode)
{
	imap_parser_set_mode(s->parser, mode);
	enter(s, AG_PHASE_LINES);
}

/* A client line for the command in flight (IDLE's DONE, a SASL response):
 * the parser is back in command mode and the command takes the line. */
static void command_line(struct ag_session *s, const char *line, size_t len)
{
	const struct ag_command_input *in = command_input(s);
	imap_parser_set_mode(s->parser, IMAP_MODE_COMMAND);
	if (s->phase != AG_PHASE_LINES || in == NULL || in->line == NULL)
		return;
	enter(s, AG_PHASE_COMMAND);
	in->line(s, line, len);
}

/* An error event while the command in flight reads client lines: the
 * command ends with its own tag; the parser is back in command mode, and
 * so is the session. */
static void end_waiting_command(struct ag_session *s, const struct imap_event *ev)
{
	const struct ag_command_input *in = command_input(s);
	s->bad_in_row++;
	imap_parser_set_mode(s->parser, IMAP_MODE_COMMAND);
	enter(s, AG_PHASE_COMMAND);
	if (in != NULL && in->abort != NULL) {
		in->abort(s, ev->text);
		return;
	}
	ag_session_tagged(s, IMAP_BAD, "%s", ev->text != NULL && ev->text[0] ? ev->text : "Error in IMAP command.");
	ag_session_command_done(s);
}

/* A synchronising literal is announced: accept it ("+") or refuse the command. */
static void on_literal(struct ag_session *s, const struct imap_event *ev)
{
	const char *tag = ev->tag != NULL ? ev->tag : "*";
	if (ev->literal_is_message) {
		const struct ag_command *c = ag_command_find(IMAP_CMD_APPEND);
		if (!(c->states & s->state)) {
			imap_parser_literal_reject(s->parser);
			send_bad(s, tag, "APPEND is not valid before authentication.");
			return;
		}
		if (c->handler == NULL) {
			imap_parser_literal_reject(s->parser);
			send_status(s, tag, IMAP_NO, IMAP_CODE_CANNOT, "APPEND is not supported by this server yet.");
			return;
		}
		if (ev->literal_size > s->srv->cfg->max_message) {
			imap_parser_literal_reject(s->parser);
			send_status(s, tag, IMAP_NO, IMAP_CODE_TOOBIG, "The message is larger than %zu bytes.",
			            s->srv->cfg->max_message);
			return;
		}
	}
	imap_parser_literal_accept(s->parser);
	struct agbuf line = AGBUF_INIT;
	imap_write_continuation(&line, "Ready for literal data");
	ag_reply_send(s, &line);
}

/* A complete command: check its state and run its handler. */
static void dispatch(struct ag_session *s, struct imap_command *cmd)
{
	s->commands++;
	const struct ag_command *c = ag_command_find(cmd->kind);
	s->cmd = cmd;
	enter(s, AG_PHASE_COMMAND);
	if (observing()) {
		clock_gettime(CLOCK_MONOTONIC, &s->cmd_started);
		s->cmd_result = AG_RESULT_NONE;
	}
	if (c == NULL) {
		ag_session_tagged(s, IMAP_BAD, "Unknown command.");
		ag_session_command_done(s);
		return;
	}
	if (!(c->states & s->state)) {
		s->bad_in_row++;
		if (s->state == AG_STATE_NOT_AUTH)
			ag_session_tagged(s, IMAP_BAD, "%s%s is not valid before authentication.",
			                  cmd->uid ? "UID " : "", c->name);
		else if (c->states == AG_STATE_NOT_AUTH)
			ag_session_tagged(s, IMAP_BAD, "%s is not valid after authentication.", c->name);
		else
			ag_session_tagged(s, IMAP_BAD, "%s%s is not valid in the %s state (no mailbox is selected).",
			                  cmd->uid ? "UID " : "", c->name, ag_session_state_name(s->state));
		ag_session_command_done(s);
		return;
	}
	s->bad_in_row = 0;
	ag_searchres_bind(s, cmd);
	if (c->handler == NULL) {
		ag_session_tagged(s, IMAP_NO, "[CANNOT] %s is not supported by this server yet.", c->name);
		ag_session_command_done(s);
		return;
	}
	c->handler(s);
}

void ag_session_append_clear(struct ag_session *s)
{
	for (size_t i = 0; i < s->n_append; i++)
		free(s->append[i].data);
	free(s->append);
	s->append = NULL;
	s->n_append = 0;
	s->append_total = 0;
	s->append_too_big = 0;
	s->append_receiving = 0;
}

/* An APPEND message starts: its size is known (and within max_message, the
 * parser's limit), so the buffer is allocated once. */
static void append_begin(struct ag_session *s, const struct imap_event *ev)
{
	if (ev->message_index == 0)
		ag_session_append_clear(s);
	s->append_receiving = 0;
	/* Before authentication the command fails anyway: keep nothing. */
	if (!(s->state & (AG_STATE_AUTH | AG_STATE_SELECTED)) || s->append_too_big)
		return;
	/* Each message is within max_message (the parser's limit); a
	 * MULTIAPPEND of many is held to the same total. */
	if (s->append_total + ev->literal_size > s->srv->cfg->max_message) {
		s->append_too_big = 1;
		return;
	}
	s->append_total += ev->literal_size;
	struct ag_append_buffer *n = realloc(s->append, (s->n_append + 1) * sizeof(*n));
	if (n == NULL)
		return;
	s->append = n;
	n[s->n_append].len = 0;
	n[s->n_append].cap = (size_t)ev->literal_size;
	n[s->n_append].data = malloc(ev->literal_size + 1);
	if (n[s->n_append].data != NULL) {
		s->n_append++;
		s->append_receiving = 1;
	}
}

static void append_data(struct ag_session *s, const struct imap_event *ev)
{
	if (!s->append_receiving || s->n_append == 0)
		return; /* a message that is not kept (too big, not authenticated) */
	struct ag_append_buffer *b = &s->append[s->n_append - 1];
	if (ev->len > b->cap - b->len)
		return; /* never past the announced size */
	memcpy(b->data + b->len, ev->data, ev->len);
	b->len += ev->len;
}

/* Nonzero when the session would hand input to the parser now. */
static int takes_input(const struct ag_session *s)
{
	return (s->phase == AG_PHASE_READING || s->phase == AG_PHASE_LINES) &&
	       output_pending(s) <= OUTPUT_HIGH_WATER;
}

/* Stops reading from the socket while input piles up that cannot be used
 * yet, behind a command in flight (pipelining) or behind responses the
 * client does not read: the rest stays in the kernel. Left reading, libevent
 * would call on_read again on every loop turn once the input buffer is past
 * its high-water mark, a busy loop for as long as the command runs. A few
 * pipelined commands (less than INPUT_PAUSE) wait in the buffer without
 * this: turning EV_READ off and on costs two epoll_ctl per command, and
 * usually no more bytes come meanwhile. Every path that ends a wait goes
 * through session_input, which calls this again. */
static void update_reading(struct ag_session *s)
{
	if (s->bev == NULL || ag_session_ending(s))
		return;
	int pause = !takes_input(s) && evbuffer_get_length(bufferevent_get_input(s->bev)) >= INPUT_PAUSE;
	if (pause == s->reading_paused)
		return;
	s->reading_paused = pause;
	if (pause)
		bufferevent_disable(s->bev, EV_READ);
	else
		bufferevent_enable(s->bev, EV_READ);
}

/* Feeds the parser from the input buffer and acts on its events until the
 * input is used up, a command is in flight or the session is closing. */
static void session_input(struct ag_session *s)
{
	if (s->in_input)
		return;
	s->in_input = 1;
	uint64_t consumed = 0;
	/* Past OUTPUT_HIGH_WATER on_write resumes once the client has read. */
	while (takes_input(s)) {
		struct evbuffer *in = bufferevent_get_input(s->bev);
		struct evbuffer_iovec chunk;
		const char *bytes = "";
		size_t len = 0;
		if (evbuffer_peek(in, -1, NULL, &chunk, 1) > 0) {
			bytes = chunk.iov_base;
			len = chunk.iov_len;
		}
		size_t used = 0;
		struct imap_event ev;
		enum imap_event_kind kind = imap_parser_next(s->parser, bytes, len, &used, &ev);
		if (kind == IMAP_EV_APPEND_DATA) {
			/* ev.data points into the input chunk: use it before draining. */
			append_data(s, &ev);
			evbuffer_drain(in, used);
			consumed += used;
			continue;
		}
		evbuffer_drain(in, used);
		consumed += used;
		switch (kind) {
		case IMAP_EV_NONE:
			if (len == 0 || evbuffer_get_length(in) == 0)
				goto out;
			break;
		case IMAP_EV_COMMAND:
			if (s->cmd != NULL) {
				/* The parser is in command mode only when no command waits for lines. */
				send_status(s, ev.cmd->tag.data, IMAP_BAD, IMAP_CODE_NONE, "Unexpected command.");
				imap_command_free(ev.cmd);
				break;
			}
			dispatch(s, ev.cmd);
			break;
		case IMAP_EV_ERROR:
			ag_session_append_clear(s);
			if (s->phase == AG_PHASE_LINES) {
				end_waiting_command(s, &ev);
				break;
			}
			on_error_event(s, &ev);
			break;
		case IMAP_EV_LITERAL:
			on_literal(s, &ev);
			break;
		case IMAP_EV_APPEND_BEGIN:
			append_begin(s, &ev);
			break;
		case IMAP_EV_APPEND_DATA:
		case IMAP_EV_APPEND_END:
			break;
		case IMAP_EV_IDLE_DONE:
			command_line(s, "DONE", 4);
			break;
		case IMAP_EV_SASL_LINE:
			command_line(s, ev.data, ev.len);
			break;
		}
	}
out:
	if (consumed > 0)
		ag_metrics_bytes(consumed, 0);
	s->in_input = 0;
	update_reading(s);
	/* COMPRESS: the inflating layer stops at the input high-water mark,
	 * the rest of the compressed bytes waiting in the layer below, and
	 * libevent 2.1 does not call it again when the input is read: ask. */
	struct bufferevent *under = s->compressed && !ag_session_ending(s) && !s->reading_paused
	                                ? bufferevent_get_underlying(s->bev)
	                                : NULL;
	if (under != NULL && evbuffer_get_length(bufferevent_get_input(under)) > 0 &&
	    evbuffer_get_length(bufferevent_get_input(s->bev)) < INPUT_HIGH_WATER)
		bufferevent_trigger(under, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
}
