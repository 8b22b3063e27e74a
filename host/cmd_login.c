/* cmd_login.c - the not-authenticated state: STARTTLS, LOGIN, AUTHENTICATE.
 *
 * Passwords are verified on the password-check threads (limits.h; Argon2
 * takes tens of milliseconds and megabytes on purpose), never on the
 * storage workers, so that failing logins cannot delay anyone's mail. A
 * check from an address with recent failures first waits that address's
 * failure delay; one address has at most AG_AUTH_PER_ADDRESS checks in
 * flight (more wait their turn), the daemon AG_AUTH_IN_FLIGHT_MAX (more are
 * answered NO [UNAVAILABLE]). A failure is answered only after a delay that
 * grows with the failures of the client's address, and with one text
 * whatever went wrong, so neither timing nor wording tells whether the
 * user exists. */
#include <stdlib.h>
#include <string.h>

#include "host/auth.h"
#include "host/commands.h"
#include "host/log.h"
#include "host/mail_reply.h"
#include "protocol/imap_write.h"

/* Failed authentications one connection may make before it is closed. */
#define MAX_AUTH_FAILURES 5
/* How often a check waiting for its address's checks in flight looks again (ms). */
#define AUTH_WAIT_MS 50
#define AUTH_FAILED_TEXT "[AUTHENTICATIONFAILED] Authentication failed."
#define PRIVACY_TEXT "[PRIVACYREQUIRED] Plaintext authentication is disallowed on non-secure (SSL/TLS) connections."

void ag_cmd_starttls(struct ag_session *s)
{
	if (s->tls) {
		ag_session_tagged(s, IMAP_BAD, "TLS is already active.");
		ag_session_command_done(s);
		return;
	}
	if (s->srv->tls == NULL) {
		ag_session_tagged(s, IMAP_BAD, "STARTTLS is not available: no certificate is configured.");
		ag_session_command_done(s);
		return;
	}
	ag_session_tagged(s, IMAP_OK, "Begin TLS negotiation now.");
	if (ag_session_start_tls(s) != 0) {
		ag_log_error("%s: cannot start TLS (out of memory?)", s->peer);
		ag_session_close(s, NULL);
	}
	ag_session_command_done(s);
}

static void verify_run(void *arg)
{
	struct ag_session *s = arg;
	struct ag_auth_request *a = &s->auth;
	a->ok = ag_users_verify(a->users, a->user, a->user_len, a->password, a->password_len);
}

static void clear_request(struct ag_auth_request *a)
{
	if (a->password != NULL) {
		memset(a->password, 0, a->password_len);
		free(a->password);
	}
	free(a->user);
	if (a->users != NULL)
		ag_users_unref(a->users);
	memset(a, 0, sizeof(*a));
}

static void failure_reply(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct ag_session *s = arg;
	ag_session_tagged(s, IMAP_NO, AUTH_FAILED_TEXT);
	/* A client guessing passwords gets a few tries per connection; the
	 * delays grow per address across connections anyway. */
	if (++s->auth_failures >= MAX_AUTH_FAILURES) {
		ag_log_info("%s: %u failed authentications on one connection, disconnecting", s->peer,
		            s->auth_failures);
		ag_session_close(s, "Too many authentication failures.");
	}
	ag_session_command_done(s);
}

static void verify_done(struct ag_session *s)
{
	struct ag_auth_request *a = &s->auth;
	if (a->slot) {
		ag_limits_auth_release(s->srv->limits, s->address);
		a->slot = 0;
	}
	char name[256];
	ag_log_escape(name, sizeof(name), a->user, a->user_len);
	if (a->ok) {
		unsigned max = s->srv->cfg->max_user_connections, open_now = 0;
		if (ag_limits_user_add(s->srv->limits, a->user, max, &open_now) != 0) {
			/* As Dovecot's mail_max_userip_connections, but per user. */
			ag_log_warn("%s: login refused user=%s: %u sessions open (max_user_connections)", s->peer, name,
			            open_now);
			clear_request(a);
			ag_session_tagged(s, IMAP_NO, "[LIMIT] Too many connections for this user (max_user_connections=%u).",
			                  max);
			ag_session_command_done(s);
			return;
		}
		s->counted_user = 1;
		ag_log_info("%s: login user=%s method=%s%s", s->peer, name, a->mechanism,
		            s->tls ? " tls" : "");
		s->user = strndup(a->user, a->user_len);
		s->state = AG_STATE_AUTH;
		clear_request(a);
		struct agbuf caps = AGBUF_INIT, out = AGBUF_INIT;
		ag_session_capabilities(s, &caps);
		imap_write_status_begin(&out, s->cmd->tag.data, IMAP_OK);
		imap_write_code_capability(&out, caps.data);
		imap_write_status_end(&out, "Logged in");
		agbuf_free(&caps);
		ag_reply_send(s, &out);
		ag_session_command_done(s);
		return;
	}
	const char *mechanism = a->mechanism;
	clear_request(a);
	unsigned count;
	unsigned delay = ag_auth_failure_record(s->srv->failures, s->address, &count);
	ag_log_warn("%s: authentication failed user=%s method=%s (%u failures from %s; answering in %u ms)",
	            s->peer, name, mechanism, count, s->address, delay);
	if (s->delay_timer == NULL)
		s->delay_timer = evtimer_new(s->srv->base, failure_reply, s);
	if (s->delay_timer == NULL) {
		failure_reply(-1, 0, s);
		return;
	}
	struct timeval tv = { (time_t)(delay / 1000), (suseconds_t)(delay % 1000) * 1000 };
	evtimer_add(s->delay_timer, &tv);
	/* No job holds the session but s->cmd stays set: the session stays busy
	 * until failure_reply. The timer is freed with the session. */
}

static void on_auth_timer(evutil_socket_t fd, short what, void *arg);

/* Runs the check once its address's failure delay is over and a slot is
 * free; until then waits on the auth timer. */
static void verify_proceed(struct ag_session *s)
{
	struct ag_auth_request *a = &s->auth;
	unsigned wait_ms = 0;
	if (!a->delayed) {
		a->delayed = 1;
		wait_ms = ag_auth_failure_pending(s->srv->failures, s->address);
	}
	if (wait_ms == 0) {
		enum ag_auth_slot slot = ag_limits_auth_acquire(s->srv->limits, s->address);
		if (slot == AG_AUTH_SLOT_TAKEN) {
			a->slot = 1;
			if (ag_session_run_auth_job(s, verify_run, verify_done) == 0)
				return;
			ag_limits_auth_release(s->srv->limits, s->address); /* out of memory */
			a->slot = 0;
			slot = AG_AUTH_SLOT_FULL;
		}
		switch (slot) {
		case AG_AUTH_SLOT_TAKEN:
		case AG_AUTH_SLOT_FULL:
			ag_log_warn("%s: authentication refused: %u password checks in flight", s->peer,
			            AG_AUTH_IN_FLIGHT_MAX);
			clear_request(a);
			ag_session_tagged(s, IMAP_NO, "[UNAVAILABLE] Too many authentications in progress, try again later.");
			ag_session_command_done(s);
			return;
		case AG_AUTH_SLOT_ADDRESS_BUSY:
			if (!a->waited)
				ag_log_info("%s: authentication waits: %u password checks from %s in flight", s->peer,
				            AG_AUTH_PER_ADDRESS, s->address);
			a->waited = 1;
			wait_ms = AUTH_WAIT_MS;
			break;
		}
	}
	if (s->auth_timer == NULL)
		s->auth_timer = evtimer_new(s->srv->base, on_auth_timer, s);
	if (s->auth_timer == NULL) {
		clear_request(a);
		ag_session_tagged(s, IMAP_NO, "[UNAVAILABLE] Out of memory.");
		ag_session_command_done(s);
		return;
	}
	struct timeval tv = { (time_t)(wait_ms / 1000), (suseconds_t)(wait_ms % 1000) * 1000 };
	evtimer_add(s->auth_timer, &tv);
}

static void on_auth_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct ag_session *s = arg;
	if (ag_session_ending(s) || s->auth.user == NULL)
		return;
	verify_proceed(s);
}

/* Starts verifying; takes copies of user and password. */
static void verify_start(struct ag_session *s, const char *mechanism, const char *user, size_t user_len,
                         const char *password, size_t password_len)
{
	struct ag_auth_request *a = &s->auth;
	clear_request(a);
	a->mechanism = mechanism;
	a->user = malloc(user_len + 1);
	a->password = malloc(password_len + 1);
	if (a->user == NULL || a->password == NULL) {
		clear_request(a);
		ag_session_tagged(s, IMAP_NO, "[UNAVAILABLE] Out of memory.");
		ag_session_command_done(s);
		return;
	}
	memcpy(a->user, user, user_len);
	a->user[user_len] = '\0';
	a->user_len = user_len;
	memcpy(a->password, password, password_len);
	a->password[password_len] = '\0';
	a->password_len = password_len;
	a->users = ag_users_ref(s->srv->users);
	verify_proceed(s);
}

void ag_cmd_login(struct ag_session *s)
{
	if (!ag_session_plaintext_ok(s)) {
		ag_session_tagged(s, IMAP_NO, PRIVACY_TEXT);
		ag_session_command_done(s);
		return;
	}
	const struct imap_command *cmd = s->cmd;
	verify_start(s, "LOGIN", cmd->u.login.user.data, cmd->u.login.user.len, cmd->u.login.password.data,
	             cmd->u.login.password.len);
}

/* Decodes one SASL PLAIN response and starts verifying it. */
static void plain_response(struct ag_session *s, const char *b64, size_t len)
{
	char *decoded;
	const char *user, *password;
	size_t user_len, password_len;
	if (ag_sasl_plain_decode(b64, len, &decoded, &user, &user_len, &password, &password_len) != 0) {
		ag_session_tagged(s, IMAP_BAD, "Invalid SASL PLAIN response (base64 of [authzid] NUL user NUL password).");
		ag_session_command_done(s);
		return;
	}
	verify_start(s, "PLAIN", user, user_len, password, password_len);
	memset(decoded, 0, user_len + password_len + 2);
	free(decoded);
}

void ag_cmd_authenticate(struct ag_session *s)
{
	const struct imap_command *cmd = s->cmd;
	const struct imap_str *mech = &cmd->u.authenticate.mechanism;
	if (mech->len != 5 || strncasecmp(mech->data, "PLAIN", 5) != 0) {
		ag_session_tagged(s, IMAP_NO, "Unsupported authentication mechanism.");
		ag_session_command_done(s);
		return;
	}
	if (!ag_session_plaintext_ok(s)) {
		ag_session_tagged(s, IMAP_NO, PRIVACY_TEXT);
		ag_session_command_done(s);
		return;
	}
	if (cmd->u.authenticate.has_initial) {
		/* RFC 4959: "=" is an empty initial response. */
		const struct imap_str *ir = &cmd->u.authenticate.initial;
		if (ir->len == 1 && ir->data[0] == '=')
			plain_response(s, "", 0);
		else
			plain_response(s, ir->data, ir->len);
		return;
	}
	struct agbuf out = AGBUF_INIT;
	imap_write_continuation(&out, "");
	ag_reply_send(s, &out);
	ag_session_read_lines(s, IMAP_MODE_SASL);
}

/* The client's response line (the parser is back in command mode). */
static void authenticate_line(struct ag_session *s, const char *line, size_t len)
{
	if (len == 1 && line[0] == '*') {
		ag_session_tagged(s, IMAP_BAD, "Authentication aborted by the client.");
		ag_session_command_done(s);
		return;
	}
	plain_response(s, line, len);
}

static void authenticate_abort(struct ag_session *s, const char *why)
{
	ag_session_tagged(s, IMAP_BAD, "Invalid authentication response: %s.",
	                  why != NULL && why[0] ? why : "malformed line");
	ag_session_command_done(s);
}

const struct ag_command_input ag_cmd_authenticate_input = {
	.line = authenticate_line,
	.abort = authenticate_abort,
};
