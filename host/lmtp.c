/* lmtp.c - LMTP (RFC 2033): an MTA hands messages over, each is stored in
 * the INBOX of every recipient, with one reply per recipient.
 *
 * A connection lives on the root event loop. Commands are read line by
 * line (lmtp_parse.c) and answered at once: recipients are looked up in
 * the users table in memory (an `address` of a user, or local@domain for
 * a domain of `[lmtp] domains`), so nothing before DATA blocks. The
 * message is read to its final dot into one buffer, with room in front for
 * the two header fields added per recipient (Return-Path, Delivered-To).
 * Then one job on the loop's workers stores it: per recipient, the user's
 * quota checked as for APPEND (552 5.2.2 past it), the message with its own
 * header fields, parsed once for its summary, and one mail_append into the
 * user's INBOX. An append is one log entry written
 * after the body (host/mail/README.md): if it fails, the recipient has
 * nothing, and gets 451 while the others get 250. The loop then writes
 * the replies, in RCPT order, and reads on. Sessions of the same daemon
 * that watch that INBOX are told by the engine as for an IMAP APPEND.
 *
 * LMTP has no authentication: whoever reaches the socket can deliver to
 * every user, so it belongs on loopback or a unix socket (mode 0660).
 */
#include "host/lmtp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "host/lmtp_parse.h"
#include "host/log.h"
#include "host/metrics.h"
#include "host/mail/mail.h"
#include "host/quota.h"
#include "host/server.h"
#include "protocol/list.h"
#include "protocol/mime.h"
#include "protocol/mime_serial.h"

/* Replies waiting for a client that does not read: stop reading commands. */
#define OUTPUT_HIGH_WATER (1024 * 1024)
/* Bad commands in a row before the connection is closed. */
#define MAX_ERRORS_IN_ROW 100
/* Mode of a unix socket: the daemon's user and group (the MTA's user in
 * the daemon's group, or the daemon in the MTA's). */
#define UNIX_SOCKET_MODE 0660

struct lmtp_listener {
	struct lmtp_listener *next;
	struct ag_lmtp *lmtp;
	struct evconnlistener *listener;
	char address[128];
	int is_unix;
	dev_t dev;    /* the socket file we made, removed at the end if still ours */
	ino_t ino;
};

struct lmtp_rcpt {
	char *address;    /* as the client wrote it (no brackets) */
	char *user;       /* the user it reaches */
	struct ag_quota quota; /* the user's limits, taken at RCPT */
	int rc;           /* the delivery's result */
	int over_quota;   /* refused: the message would pass the user's quota */
	uint32_t uid;
};

enum conn_state {
	CONN_GREETED,   /* no LHLO yet */
	CONN_READY,     /* LHLO done, no transaction */
	CONN_MAIL,      /* MAIL accepted: RCPT, DATA */
	CONN_DATA,      /* reading the message */
};

struct lmtp_conn {
	struct lmtp_conn *prev, *next;
	struct ag_lmtp *lmtp;
	struct bufferevent *bev;
	char peer[128];
	enum conn_state state;
	char *sender;                /* MAIL FROM ("" for <>) */
	struct lmtp_rcpt *rcpts;
	size_t n_rcpts;
	struct lmtp_data data;       /* the DATA stream's state */
	struct agbuf content;        /* `reserve` free bytes, then the message */
	size_t reserve;
	int skipping_line;           /* an overlong command line is being skipped */
	unsigned errors_in_row;
	int job_running;             /* the delivery job holds the connection */
	int dead;                    /* the peer is gone: freed when the job ends */
	int closing;                 /* the last reply is out: freed once flushed */
	struct ag_job job;
	struct event *timer;         /* the idle timeout */
	struct event *free_event;    /* frees the connection outside its callbacks */
	unsigned messages, delivered, failed;
};

struct ag_lmtp {
	struct ag_server *srv;
	struct lmtp_listener *listeners;
	struct lmtp_conn *conns;
	unsigned n_conns;
	int shutting_down;
	char hostname[256];
};

static void conn_input(struct lmtp_conn *c);

/* ---- connections ---- */

static void conn_free(struct lmtp_conn *c)
{
	struct ag_lmtp *lmtp = c->lmtp;
	struct ag_server *srv = lmtp->srv;
	ag_log_info("lmtp %s: disconnected after %u messages (%u deliveries, %u failed)", c->peer, c->messages,
	            c->delivered, c->failed);
	DLIST_REMOVE(lmtp->conns, c);
	lmtp->n_conns--;
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	ag_event_free(c->timer);
	ag_event_free(c->free_event);
	for (size_t i = 0; i < c->n_rcpts; i++) {
		free(c->rcpts[i].address);
		free(c->rcpts[i].user);
	}
	free(c->rcpts);
	free(c->sender);
	agbuf_free(&c->content);
	free(c);
	srv->n_sessions--;
	ag_server_session_gone(srv);
}

static void on_free_event(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_free(arg);
}

static size_t output_pending(const struct lmtp_conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev));
}

static void reply(struct lmtp_conn *c, const char *text)
{
	bufferevent_write(c->bev, text, strlen(text));
}

static void replyf(struct lmtp_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void replyf(struct lmtp_conn *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
	va_end(ap);
}

/* Sends `text` (or nothing), then closes once it is written. */
static void conn_close(struct lmtp_conn *c, const char *text)
{
	if (c->closing)
		return;
	if (text != NULL)
		reply(c, text);
	c->closing = 1;
	bufferevent_disable(c->bev, EV_READ);
	evtimer_del(c->timer);
	if (output_pending(c) == 0)
		event_active(c->free_event, EV_READ, 0);
}

static void arm_timer(struct lmtp_conn *c)
{
	struct timeval tv = { (time_t)c->lmtp->srv->cfg->lmtp_timeout, 0 };
	evtimer_add(c->timer, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct lmtp_conn *c = arg;
	if (c->job_running) {
		arm_timer(c);
		return;
	}
	ag_log_info("lmtp %s: idle for %u s, disconnecting", c->peer, c->lmtp->srv->cfg->lmtp_timeout);
	conn_close(c, "421 4.4.2 Idle for too long, closing the connection\r\n");
}

/* Reads while there is nothing in flight and the client reads its replies. */
static void update_reading(struct lmtp_conn *c)
{
	if (c->closing || c->dead)
		return;
	if (c->job_running || output_pending(c) > OUTPUT_HIGH_WATER)
		bufferevent_disable(c->bev, EV_READ);
	else
		bufferevent_enable(c->bev, EV_READ);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	struct lmtp_conn *c = arg;
	if (c->closing || c->dead)
		return;
	arm_timer(c);
	conn_input(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	(void)bev;
	struct lmtp_conn *c = arg;
	if (c->closing) {
		if (output_pending(c) == 0)
			conn_free(c);
		return;
	}
	if (!c->job_running && !c->dead)
		conn_input(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	struct lmtp_conn *c = arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		if (c->state == CONN_DATA)
			ag_log_info("lmtp %s: the client left in the middle of a message: nothing delivered", c->peer);
		c->dead = 1;
		if (!c->job_running)
			conn_free(c);
	}
}

/* ---- transactions ---- */

static void reset_transaction(struct lmtp_conn *c)
{
	for (size_t i = 0; i < c->n_rcpts; i++) {
		free(c->rcpts[i].address);
		free(c->rcpts[i].user);
	}
	free(c->rcpts);
	c->rcpts = NULL;
	c->n_rcpts = 0;
	free(c->sender);
	c->sender = NULL;
	agbuf_free(&c->content);
	memset(&c->data, 0, sizeof(c->data));
	c->reserve = 0;
	if (c->state != CONN_GREETED)
		c->state = CONN_READY;
}

/* Is `domain` (len bytes) one of [lmtp] domains? */
static int domain_listed(const struct ag_config *cfg, const char *domain, size_t len)
{
	if (cfg->lmtp_domains == NULL)
		return 0;
	size_t n;
	for (const char *p = cfg->lmtp_domains; (n = ag_config_word(&p)) > 0; p += n)
		if (n == len && strncasecmp(p, domain, len) == 0)
			return 1;
	return 0;
}

/* The user an address reaches, or NULL: a user's own `address` first,
 * then local@domain for a listed domain (the user named `local`, in any
 * case when only one user has that name). */
static const char *find_recipient(const struct ag_server *srv, const char *address, size_t len)
{
	const char *user = ag_users_find_address(srv->users, address, len);
	if (user != NULL)
		return user;
	size_t local = lmtp_address_at(address, len);
	if (local == len || address[0] == '"')
		return NULL;
	const char *at = address + local;
	if (!domain_listed(srv->cfg, at + 1, len - local - 1))
		return NULL;
	return ag_users_find_name(srv->users, address, local);
}

static void escape(char *out, size_t outlen, const char *text)
{
	ag_log_escape(out, outlen, text, strlen(text));
}

/* On a worker: stores the message for one recipient. */
static int deliver_one(struct mail_engine *eng, const char *user, const char *msg, size_t len, uint32_t *uid)
{
	struct mime_message *mime = mime_parse(msg, len);
	if (mime == NULL)
		return AEROGRAM_EINTERNAL;
	struct agbuf structure = AGBUF_INIT;
	mime_serial_encode(mime, &structure);
	struct mail_new_message nm = {
		.body = (const uint8_t *)msg,
		.body_len = len,
		.header = (const uint8_t *)msg,
		.header_len = mime->root->body_offset <= len ? (size_t)mime->root->body_offset : len,
		.bodystructure = (const uint8_t *)structure.data,
		.bodystructure_len = structure.len,
	};
	/* INBOX always exists: the engine creates it with the other default
	 * mailboxes on the user's first use (and RENAME leaves a new one). */
	struct mail_mailbox *mb;
	int rc = mail_mailbox_open_flags(eng, user, "INBOX", MAIL_OPEN_FOR_ADD, &mb);
	if (rc == 0) {
		uint32_t uidvalidity;
		rc = mail_append(mb, &nm, &uidvalidity, uid);
		mail_mailbox_close(mb);
	}
	agbuf_free(&structure);
	mime_free(mime);
	return rc;
}

/* The job: every recipient in turn, each message its own header fields
 * written in the free room just before the content. */
static void deliver_run(void *arg)
{
	struct lmtp_conn *c = arg;
	struct mail_engine *eng = c->lmtp->srv->engine;
	char *content = c->content.data + c->reserve;
	/* line ends stored as APPEND stores them (mime_save_line_ends) */
	size_t content_len = mime_save_line_ends(content, content, c->content.len - c->reserve);
	c->content.len = c->reserve + content_len;
	for (size_t i = 0; i < c->n_rcpts; i++) {
		struct lmtp_rcpt *r = &c->rcpts[i];
		char fields[2 * LMTP_PATH_MAX + 64];
		int n = snprintf(fields, sizeof(fields), "Return-Path: <%s>\r\nDelivered-To: %s\r\n", c->sender,
		                 r->address);
		if (n < 0 || (size_t)n > c->reserve) {
			r->rc = AEROGRAM_EINTERNAL;
			continue;
		}
		memcpy(content - n, fields, (size_t)n);
		/* as APPEND: the user's usage from the store, plus this message */
		int over = 0;
		r->rc = ag_quota_check(&r->quota, r->user, content_len + (size_t)n, 1, &over);
		if (r->rc == 0 && over) {
			r->over_quota = 1;
			continue;
		}
		if (r->rc == 0)
			r->rc = deliver_one(eng, r->user, content - n, content_len + (size_t)n, &r->uid);
	}
}

static const char *error_name(int rc)
{
	switch (rc) {
	case AEROGRAM_ENOTFOUND: return "mailbox not found";
	case AEROGRAM_ECONFLICT: return "conflict";
	case AEROGRAM_EUNAVAILABLE: return "store unavailable";
	case AEROGRAM_EINVAL: return "invalid";
	case AEROGRAM_EPERM: return "permission denied";
	case AEROGRAM_ETOOBIG: return "too big";
	case AEROGRAM_ENOTSUP: return "not supported";
	default: return "internal error";
	}
}

/* On the loop: one reply per recipient, in RCPT order (RFC 2033 4.2). */
static void deliver_done(void *arg)
{
	struct lmtp_conn *c = arg;
	c->job_running = 0;
	char from[4 * LMTP_PATH_MAX + 1];
	escape(from, sizeof(from), c->sender);
	for (size_t i = 0; i < c->n_rcpts; i++) {
		struct lmtp_rcpt *r = &c->rcpts[i];
		char to[4 * LMTP_PATH_MAX + 1];
		escape(to, sizeof(to), r->address);
		ag_metrics_lmtp(!r->over_quota && r->rc == 0);
		if (r->over_quota) {
			c->failed++;
			ag_log_info("lmtp %s: from=<%s> to=<%s> user=%s: not delivered: over quota", c->peer, from, to,
			            r->user);
			if (!c->dead)
				replyf(c, "552 5.2.2 <%s> Mailbox full: quota exceeded\r\n", r->address);
		} else if (r->rc == 0) {
			c->delivered++;
			ag_log_info("lmtp %s: from=<%s> to=<%s> user=%s: saved in INBOX as UID %u (%zu bytes)", c->peer,
			            from, to, r->user, r->uid, c->content.len - c->reserve);
			if (!c->dead)
				replyf(c, "250 2.0.0 <%s> Saved as UID %u\r\n", r->address, r->uid);
		} else {
			c->failed++;
			ag_log_warn("lmtp %s: from=<%s> to=<%s> user=%s: not delivered: %s (error %d)", c->peer, from,
			            to, r->user, error_name(r->rc), r->rc);
			if (c->dead)
				continue;
			if (r->rc == AEROGRAM_ETOOBIG)
				replyf(c, "552 5.3.4 <%s> Message too big for the store\r\n", r->address);
			else
				replyf(c, "451 4.3.0 <%s> Temporary failure (%s), try again later\r\n", r->address,
				       error_name(r->rc));
		}
	}
	if (c->dead) {
		conn_free(c);
		return;
	}
	reset_transaction(c);
	if (c->lmtp->shutting_down) {
		conn_close(c, "421 4.3.2 Server shutting down\r\n");
		return;
	}
	arm_timer(c);
	conn_input(c);
}

/* The final dot arrived. */
static void end_of_data(struct lmtp_conn *c)
{
	c->messages++;
	if (c->data.too_big) {
		size_t max = c->lmtp->srv->cfg->max_message;
		char from[4 * LMTP_PATH_MAX + 1];
		escape(from, sizeof(from), c->sender);
		ag_log_info("lmtp %s: from=<%s>: message of %llu bytes refused (max_message %zu)", c->peer, from,
		            (unsigned long long)c->data.size, max);
		for (size_t i = 0; i < c->n_rcpts; i++)
			replyf(c, "552 5.3.4 <%s> Message too big: at most %zu bytes\r\n", c->rcpts[i].address, max);
		c->failed += (unsigned)c->n_rcpts;
		for (size_t i = 0; i < c->n_rcpts; i++)
			ag_metrics_lmtp(0);
		reset_transaction(c);
		return;
	}
	c->job_running = 1;
	c->job.run = deliver_run;
	c->job.done = deliver_done;
	c->job.arg = c;
	ag_workers_submit(c->lmtp->srv->workers, &c->job);
}

/* ---- commands ---- */

/* What the commands without a transaction step answer (RSET also resets). */
static const char *const fixed_replies[] = {
	[LMTP_RSET] = "250 2.0.0 OK\r\n",
	[LMTP_NOOP] = "250 2.0.0 OK\r\n",
	[LMTP_VRFY] = "252 2.5.2 Cannot VRFY; send the message and see\r\n",
	[LMTP_HELP] = "214 2.0.0 Commands: LHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP\r\n",
};

/* RCPT and DATA come after MAIL: 1 when they do, else 0 with the reply
 * that says what is missing. */
static int after_mail(struct lmtp_conn *c)
{
	if (c->state == CONN_MAIL)
		return 1;
	reply(c, c->state == CONN_GREETED ? "503 5.5.1 Bad sequence of commands: LHLO first\r\n"
	                                  : "503 5.5.1 Bad sequence of commands: MAIL first\r\n");
	return 0;
}

static void command(struct lmtp_conn *c, const char *line, size_t len)
{
	struct ag_server *srv = c->lmtp->srv;
	const struct ag_config *cfg = srv->cfg;
	struct lmtp_command cmd;
	const char *problem = lmtp_parse_command(line, len, &cmd);
	if (problem != NULL) {
		reply(c, problem);
		goto error;
	}
	switch (cmd.verb) {
	case LMTP_LHLO:
		/* a new LHLO ends the transaction, as EHLO does (RFC 5321 4.1.4) */
		reset_transaction(c);
		c->state = CONN_READY;
		replyf(c, "250-%s\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 SIZE %zu\r\n",
		       c->lmtp->hostname, cfg->max_message);
		break;
	case LMTP_MAIL:
		if (c->state == CONN_GREETED) {
			reply(c, "503 5.5.1 Bad sequence of commands: LHLO first\r\n");
			goto error;
		}
		if (c->state != CONN_READY) {
			reply(c, "503 5.5.1 Bad sequence of commands: MAIL already given (RSET first)\r\n");
			goto error;
		}
		if (cmd.has_size && cmd.size > cfg->max_message) {
			replyf(c, "552 5.3.4 Message too big: at most %zu bytes\r\n", cfg->max_message);
			goto error;
		}
		c->sender = strdup(cmd.path);
		if (c->sender == NULL) {
			reply(c, "451 4.3.0 Out of memory\r\n");
			goto error;
		}
		c->state = CONN_MAIL;
		reply(c, "250 2.1.0 Sender OK\r\n");
		break;
	case LMTP_RCPT: {
		if (!after_mail(c))
			goto error;
		if (c->n_rcpts >= cfg->lmtp_max_recipients) {
			reply(c, "452 4.5.3 Too many recipients\r\n");
			goto error;
		}
		const char *user = find_recipient(srv, cmd.path, cmd.path_len);
		if (user == NULL) {
			char to[4 * LMTP_PATH_MAX + 1];
			escape(to, sizeof(to), cmd.path);
			ag_log_info("lmtp %s: RCPT to=<%s>: no such user", c->peer, to);
			replyf(c, "550 5.1.1 <%s> User unknown\r\n", cmd.path);
			goto error;
		}
		struct lmtp_rcpt *n = realloc(c->rcpts, (c->n_rcpts + 1) * sizeof(*n));
		if (n == NULL) {
			reply(c, "451 4.3.0 Out of memory\r\n");
			goto error;
		}
		c->rcpts = n;
		struct lmtp_rcpt *r = &n[c->n_rcpts];
		memset(r, 0, sizeof(*r));
		r->address = strdup(cmd.path);
		r->user = strdup(user);
		ag_quota_for(srv, user, &r->quota);
		if (r->address == NULL || r->user == NULL) {
			free(r->address);
			free(r->user);
			reply(c, "451 4.3.0 Out of memory\r\n");
			goto error;
		}
		c->n_rcpts++;
		replyf(c, "250 2.1.5 <%s> Recipient OK\r\n", cmd.path);
		break;
	}
	case LMTP_DATA: {
		if (!after_mail(c))
			goto error;
		if (c->n_rcpts == 0) {
			/* RFC 2033 4.2: DATA without a recipient fails with 503 */
			reply(c, "503 5.5.1 No valid recipients\r\n");
			goto error;
		}
		/* room for the longest "Return-Path: <s>\r\nDelivered-To: r\r\n" */
		size_t longest = 0;
		for (size_t i = 0; i < c->n_rcpts; i++) {
			size_t l = strlen(c->rcpts[i].address);
			longest = l > longest ? l : longest;
		}
		c->reserve = strlen("Return-Path: <>\r\nDelivered-To: \r\n") + strlen(c->sender) + longest;
		agbuf_free(&c->content);
		agbuf_reserve(&c->content, c->reserve + 64 * 1024);
		c->content.len = c->reserve;
		memset(&c->data, 0, sizeof(c->data));
		c->state = CONN_DATA;
		reply(c, "354 Start mail input; end with <CRLF>.<CRLF>\r\n");
		break;
	}
	case LMTP_RSET:
	case LMTP_NOOP:
	case LMTP_VRFY:
	case LMTP_HELP:
		if (cmd.verb == LMTP_RSET)
			reset_transaction(c);
		reply(c, fixed_replies[cmd.verb]);
		break;
	case LMTP_QUIT:
		conn_close(c, "221 2.0.0 Bye\r\n");
		return;
	default:
		reply(c, "500 5.5.1 Command unrecognized\r\n");
		goto error;
	}
	c->errors_in_row = 0;
	return;
error:
	if (++c->errors_in_row >= MAX_ERRORS_IN_ROW) {
		ag_log_info("lmtp %s: %u bad commands in a row, disconnecting", c->peer, c->errors_in_row);
		conn_close(c, "421 4.7.0 Too many errors, closing the connection\r\n");
	}
}

/* Takes what the input holds: message bytes in DATA, else command lines. */
static void conn_input(struct lmtp_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t max = c->lmtp->srv->cfg->max_message;
	while (!c->closing && !c->dead && !c->job_running && output_pending(c) <= OUTPUT_HIGH_WATER) {
		size_t avail = evbuffer_get_length(in);
		if (avail == 0)
			break;
		if (c->state == CONN_DATA) {
			struct evbuffer_iovec v;
			if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
				break;
			int done;
			size_t used = lmtp_data_feed(&c->data, v.iov_base, v.iov_len, max, &c->content, &done);
			evbuffer_drain(in, used);
			if (done) {
				c->state = CONN_MAIL;
				end_of_data(c);
			}
			continue;
		}
		size_t eol_len = 0;
		struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
		if (eol.pos < 0) {
			if (avail > AG_LMTP_LINE_MAX) {
				/* no end of line in sight: drop it, answer once it ends */
				evbuffer_drain(in, avail);
				c->skipping_line = 1;
			}
			break;
		}
		size_t len = (size_t)eol.pos;
		if (c->skipping_line || len > AG_LMTP_LINE_MAX) {
			evbuffer_drain(in, len + eol_len);
			c->skipping_line = 0;
			reply(c, "500 5.5.2 Line too long\r\n");
			if (++c->errors_in_row >= MAX_ERRORS_IN_ROW)
				conn_close(c, "421 4.7.0 Too many errors, closing the connection\r\n");
			continue;
		}
		char line[AG_LMTP_LINE_MAX + 1];
		evbuffer_remove(in, line, len);
		evbuffer_drain(in, eol_len);
		line[len] = '\0';
		command(c, line, len);
	}
	update_reading(c);
}

/* ---- listeners ---- */

static int is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
	return sa->sa_family == AF_UNIX;
}

static void describe_peer(struct lmtp_conn *c, evutil_socket_t fd, const struct sockaddr *sa)
{
	char host[INET6_ADDRSTRLEN] = "?";
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(c->peer, sizeof(c->peer), "%s:%u", host, (unsigned)ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(c->peer, sizeof(c->peer), "[%s]:%u", host, (unsigned)ntohs(in6->sin6_port));
	} else {
		struct ucred cred;
		socklen_t len = sizeof(cred);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
			snprintf(c->peer, sizeof(c->peer), "unix(pid %ld uid %ld)", (long)cred.pid, (long)cred.uid);
		else
			snprintf(c->peer, sizeof(c->peer), "unix");
	}
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *peer, int peer_len,
                      void *arg)
{
	(void)l;
	(void)peer_len;
	struct lmtp_listener *li = arg;
	struct ag_lmtp *lmtp = li->lmtp;
	struct ag_server *srv = lmtp->srv;
	if (ag_listener_take(fd, lmtp->shutting_down || srv->shutting_down, !li->is_unix) != 0)
		return;
	if (lmtp->n_conns >= AG_LMTP_MAX_CONNECTIONS) {
		ag_listener_refuse(fd, "421 4.3.2 Too many LMTP connections, try again later\r\n");
		ag_log_warn("lmtp: refused a connection on %s: %u LMTP connections open", li->address, lmtp->n_conns);
		return;
	}
	struct lmtp_conn *c = calloc(1, sizeof(*c));
	if (c != NULL) {
		c->lmtp = lmtp;
		c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		c->timer = evtimer_new(srv->base, on_timer, c);
		c->free_event = event_new(srv->base, -1, 0, on_free_event, c);
	}
	if (c == NULL || c->bev == NULL || c->timer == NULL || c->free_event == NULL) {
		ag_log_error("lmtp: out of memory for a new connection on %s", li->address);
		if (c != NULL) {
			if (c->bev != NULL)
				bufferevent_free(c->bev);
			else
				evutil_closesocket(fd);
			ag_event_free(c->timer);
			ag_event_free(c->free_event);
			free(c);
		} else {
			evutil_closesocket(fd);
		}
		return;
	}
	describe_peer(c, fd, peer);
	DLIST_INSERT_HEAD(lmtp->conns, c);
	lmtp->conns = c;
	lmtp->n_conns++;
	srv->n_sessions++;
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	arm_timer(c);
	ag_log_info("lmtp %s: connected on %s", c->peer, li->address);
	replyf(c, "220 %s LMTP Aerogram ready\r\n", lmtp->hostname);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
	(void)l;
	struct lmtp_listener *li = arg;
	int err = EVUTIL_SOCKET_ERROR();
	ag_log_error("lmtp: accepting a connection on %s: %s", li->address, evutil_socket_error_to_string(err));
}

/* A unix socket at `path`: a stale one (nobody accepts on it) is removed
 * first, anything else there is an error. Returns the listening fd or -1. */
static evutil_socket_t unix_socket(const char *path, struct lmtp_listener *li, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "lmtp: unix:%s: path too long", path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	struct stat sb;
	if (lstat(path, &sb) == 0) {
		if (!S_ISSOCK(sb.st_mode)) {
			snprintf(err, errlen, "lmtp: unix:%s exists and is not a socket", path);
			return -1;
		}
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int in_use = probe >= 0 && connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0;
		int refused = !in_use && (errno == ECONNREFUSED || errno == ENOENT);
		if (probe >= 0)
			close(probe);
		if (in_use) {
			snprintf(err, errlen, "lmtp: unix:%s: another process listens on it", path);
			return -1;
		}
		if (!refused || (unlink(path) != 0 && errno != ENOENT)) {
			snprintf(err, errlen, "lmtp: unix:%s: cannot replace the stale socket: %s", path, strerror(errno));
			return -1;
		}
		ag_log_info("lmtp: removed the stale socket %s", path);
	}
	evutil_socket_t fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "lmtp: unix:%s: %s", path, strerror(errno));
		return -1;
	}
	/* no moment with a wider mode than UNIX_SOCKET_MODE */
	mode_t old = umask(0777 & ~UNIX_SOCKET_MODE);
	int rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	int bind_errno = errno;
	umask(old);
	if (rc != 0) {
		snprintf(err, errlen, "lmtp: cannot listen on unix:%s: %s", path, strerror(bind_errno));
		close(fd);
		return -1;
	}
	if (chmod(path, UNIX_SOCKET_MODE) != 0 || stat(path, &sb) != 0 || listen(fd, 128) != 0) {
		snprintf(err, errlen, "lmtp: cannot listen on unix:%s: %s", path, strerror(errno));
		unlink(path);
		close(fd);
		return -1;
	}
	li->dev = sb.st_dev;
	li->ino = sb.st_ino;
	return fd;
}

static int open_one(void *arg, const char *address, char *err, size_t errlen)
{
	struct ag_lmtp *lmtp = arg;
	struct ag_server *srv = lmtp->srv;
	struct lmtp_listener *li = calloc(1, sizeof(*li));
	if (li == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	li->lmtp = lmtp;
	snprintf(li->address, sizeof(li->address), "%s", address);
	unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC;
	if (strncmp(address, "unix:", 5) == 0) {
		li->is_unix = 1;
		evutil_socket_t fd = unix_socket(address + 5, li, err, errlen);
		if (fd < 0) {
			free(li);
			return -1;
		}
		li->listener = evconnlistener_new(srv->base, on_accept, li, flags, -1, fd);
		if (li->listener == NULL) {
			snprintf(err, errlen, "lmtp: cannot listen on %s", address);
			unlink(address + 5);
			close(fd);
			free(li);
			return -1;
		}
	} else {
		struct sockaddr_storage ss;
		int sslen = (int)sizeof(ss);
		if (evutil_parse_sockaddr_port(address, (struct sockaddr *)&ss, &sslen) != 0) {
			snprintf(err, errlen, "lmtp: %s: not an address:port", address);
			free(li);
			return -1;
		}
		if (ss.ss_family == AF_INET6)
			flags |= LEV_OPT_BIND_IPV6ONLY;
		li->listener = evconnlistener_new_bind(srv->base, on_accept, li, flags | LEV_OPT_REUSEABLE, 128,
		                                       (struct sockaddr *)&ss, sslen);
		if (li->listener == NULL) {
			snprintf(err, errlen, "lmtp: cannot listen on %s: %s", address, strerror(errno));
			free(li);
			return -1;
		}
	}
	evconnlistener_set_error_cb(li->listener, on_accept_error);
	li->next = lmtp->listeners;
	lmtp->listeners = li;
	ag_log_info("lmtp: listening on %s", address);
	return 0;
}

static void close_listeners(struct ag_lmtp *lmtp)
{
	struct lmtp_listener *li = lmtp->listeners;
	while (li != NULL) {
		struct lmtp_listener *next = li->next;
		evconnlistener_free(li->listener);
		struct stat sb;
		/* the socket file goes, unless another daemon has put its own there */
		if (li->is_unix && lstat(li->address + 5, &sb) == 0 && sb.st_dev == li->dev && sb.st_ino == li->ino)
			unlink(li->address + 5);
		free(li);
		li = next;
	}
	lmtp->listeners = NULL;
}

void ag_lmtp_check(const struct ag_config *cfg)
{
	size_t n;
	for (const char *p = cfg->lmtp_listen; p != NULL && (n = ag_config_word(&p)) > 0; p += n) {
		char address[128];
		struct sockaddr_storage ss;
		int sslen = (int)sizeof(ss);
		if (strncmp(p, "unix:", 5) != 0 && ag_config_word_copy(p, n, address, sizeof(address)) == 0) {
			if (evutil_parse_sockaddr_port(address, (struct sockaddr *)&ss, &sslen) == 0 &&
			    !is_loopback((struct sockaddr *)&ss))
				ag_log_warn("lmtp: %s is not a loopback address: LMTP has no authentication, whoever "
				            "reaches it can deliver mail to every user (firewall it, or use 127.0.0.1 "
				            "or unix:/path)", address);
		}
	}
	if (cfg->lmtp_listen != NULL && cfg->lmtp_domains == NULL)
		ag_log_info("lmtp: [lmtp] domains is not set: only the users' address lines are delivered to");
}

int ag_lmtp_open(struct ag_server *srv, char *err, size_t errlen)
{
	const char *list = srv->cfg->lmtp_listen;
	if (list == NULL)
		return 0;
	ag_lmtp_check(srv->cfg);
	struct ag_lmtp *lmtp = calloc(1, sizeof(*lmtp));
	if (lmtp == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	lmtp->srv = srv;
	if (gethostname(lmtp->hostname, sizeof(lmtp->hostname) - 1) != 0 || lmtp->hostname[0] == '\0')
		snprintf(lmtp->hostname, sizeof(lmtp->hostname), "localhost");
	/* a name with a space or a control would break the greeting */
	for (char *p = lmtp->hostname; *p != '\0'; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
			*p = '-';
	srv->lmtp = lmtp;
	return ag_listen_each(list, "lmtp: ", open_one, lmtp, err, errlen);
}

void ag_lmtp_shutdown(struct ag_server *srv)
{
	struct ag_lmtp *lmtp = srv->lmtp;
	if (lmtp == NULL || lmtp->shutting_down)
		return;
	lmtp->shutting_down = 1;
	close_listeners(lmtp);
	/* a delivery in flight answers first (deliver_done closes after it) */
	for (struct lmtp_conn *c = lmtp->conns; c != NULL; c = c->next)
		if (!c->job_running)
			conn_close(c, "421 4.3.2 Server shutting down\r\n");
}

void ag_lmtp_free(struct ag_server *srv)
{
	struct ag_lmtp *lmtp = srv->lmtp;
	if (lmtp == NULL)
		return;
	close_listeners(lmtp);
	while (lmtp->conns != NULL)
		conn_free(lmtp->conns);
	free(lmtp);
	srv->lmtp = NULL;
}
