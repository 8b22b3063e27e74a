/* session.h - one IMAP connection: its state, its input, its responses. */
#ifndef AG_HOST_SESSION_H
#define AG_HOST_SESSION_H

#include <event2/bufferevent.h>
#include <stdarg.h>
#include <sys/socket.h>

#include "host/quota.h"
#include "host/server.h"
#include "host/workers.h"
#include "protocol/agbuf.h"
#include "protocol/imap_parse.h"
#include "protocol/imap_write.h"

/* RFC 3501 section 3; bits, so that a command lists where it is valid. */
enum ag_session_state {
	AG_STATE_NOT_AUTH = 1,
	AG_STATE_AUTH = 2,
	AG_STATE_SELECTED = 4,
	AG_STATE_LOGOUT = 8,
};

/* Where a connection is in its life, apart from the IMAP state. One
 * command is in flight at a time; the transitions (session.c, enter()):
 *
 *   READING --a command--> COMMAND --ag_session_read_lines--> LINES
 *   LINES --a client line, or a malformed one--> COMMAND
 *   COMMAND|LINES --a job--> JOB --it ended--> COMMAND (LINES again when
 *                                              the command stays: IDLE)
 *   COMMAND --a long answer waits for the client--> PAUSED --it read--> JOB
 *   COMMAND --ag_session_command_done--> READING
 *   any --ag_session_close--> CLOSING --BYE flushed--> freed
 *   JOB --the peer went--> DEAD --the job ended--> freed (with no job the
 *                                                  session is freed at once)
 *
 * The order matters: from CLOSING on the connection takes no more input. */
enum ag_session_phase {
	AG_PHASE_READING,   /* no command in flight: commands are read */
	AG_PHASE_COMMAND,   /* a command in flight on the loop (its handler, a timer) */
	AG_PHASE_LINES,     /* the command in flight reads client lines (IDLE, AUTHENTICATE) */
	AG_PHASE_JOB,       /* a worker job holds a pointer to the session */
	AG_PHASE_PAUSED,    /* a long answer waits for the client to read before it goes on */
	AG_PHASE_CLOSING,   /* BYE is out; freed once flushed */
	AG_PHASE_DEAD,      /* the connection is gone; freed when the job ends */
};

/* What an authentication in flight carries to the worker and back. */
struct ag_auth_request {
	char *user;
	size_t user_len;
	char *password;
	size_t password_len;
	struct ag_users *users;  /* the table it is checked against (one reference) */
	int ok;
	const char *mechanism;   /* "LOGIN" or "PLAIN", for the log */
	int delayed;             /* the address's failure delay was waited out */
	int waited;              /* it waited for the address's checks in flight (logged once) */
	int slot;                /* it holds a password-check slot (ag_limits_auth_acquire) */
};

struct ag_session {
	struct ag_server *srv;
	struct ag_session *prev, *next;
	struct bufferevent *bev;
	struct imap_parser *parser;
	enum ag_session_state state;
	enum ag_session_phase phase; /* change it with enter() (session.c) only */
	atomic_int abandoned;     /* nobody waits for the job's answer any more (worker reads it) */
	char peer[80];            /* "127.0.0.1:40312" or "[::1]:40312", for the log */
	char address[64];         /* the address alone: the key of the failure table */
	/* The connection's layers and input, independent of the phase. */
	int loopback;             /* the peer is a loopback address */
	int tls;                  /* TLS is active on the connection */
	int compressed;           /* COMPRESS DEFLATE is active (RFC 4978) */
	int in_input;             /* session_input is running (no re-entry) */
	int reading_paused;       /* EV_READ is off: buffered input waits for the command in flight */
	unsigned bad_in_row;      /* consecutive malformed commands */
	unsigned auth_failures;   /* failed LOGIN / AUTHENTICATE on this connection */
	unsigned commands;        /* commands received, for the closing log line */
	unsigned inline_runs;     /* of them, answered on the loop thread (no worker) */
	unsigned wakeups;         /* socket callbacks run (read, write, event), for the same line */
	unsigned quick_acks;      /* TCP_QUICKACK set, for the same line */
	/* The command in flight, for metrics and the debug line (when either
	 * is on): when it came, and the status of its tagged response. */
	struct timespec cmd_started;
	int cmd_result;           /* an ag_metrics_result */
	int metrics_state;        /* the state the connections gauge counts it in */
	uint64_t literal_left;    /* literal bytes the parser still expected after the last read */
	struct imap_command *cmd; /* the command in flight, or NULL */
	char *user;               /* after authentication */
	struct event *autologout;
	struct event *close_timer;
	struct event *delay_timer;
	struct event *auth_timer;   /* a password check waits: failure delay, busy address */
	struct event *auth_done;    /* a password check ended (made active by its thread) */
	struct event *login_deadline; /* login_timeout after connect */
	int counted_address;        /* counted in the connections of its address */
	int counted_user;           /* counted in the sessions of its user */
	unsigned close_ticks;
	struct ag_job job;
	struct ag_auth_job auth_job;
	void (*job_done)(struct ag_session *s);
	struct ag_auth_request auth;
	/* The selected mailbox (SELECTED state). */
	struct mail_view *view;
	struct mail_sub *sub;     /* change notifications of the view's mailbox */
	char *mailbox;            /* its name */
	int readonly;             /* EXAMINE */
	/* RFC 7162: CONDSTORE enabled (ENABLE, or a CONDSTORE enabling command:
	 * MODSEQ in every FETCH with FLAGS), QRESYNC enabled (ENABLE only:
	 * VANISHED instead of EXPUNGE, UID in unsolicited FETCH). */
	int condstore;
	int qresync;
	unsigned kw_announced;    /* keywords the client was told of by FLAGS */
	struct event *notify;     /* made active from engine threads on a change */
	int changed;              /* a change was notified and not yet told */
	struct event *keepalive;  /* "* OK Still here" during IDLE */
	/* UIDs this session marked \Seen by reading them (FETCH BODY[]) whose
	 * view was not brought up to date since: a plain FETCH may not carry
	 * EXPUNGEs, so the view waits for the next update and these flags are
	 * laid over it until then. Ascending. */
	uint32_t *seen_overlay;
	size_t n_seen_overlay;
	/* The result SEARCH RETURN (SAVE) kept (RFC 5182, host/searchres.h):
	 * UIDs as ascending ranges; emptied when the mailbox is left. */
	struct imap_seqrange *searchres;
	size_t n_searchres;
	/* The updating SEARCH / SORT contexts (RFC 5267, host/context.h);
	 * ended when the mailbox is left. */
	struct ag_context *contexts;
	unsigned n_contexts;
	/* A storage command in flight: run on a worker, answer in `reply`. */
	void (*storage_run)(struct ag_session *s);
	struct agbuf reply;
	enum ag_session_state next_state; /* 0: unchanged */
	int keep_command;         /* the reply is not the end of the command (IDLE updates) */
	int uidvalidity_lost;     /* the selected mailbox got a new UIDVALIDITY: disconnect */
	int storage_more;         /* set by `storage_run`: send the reply, then run it again
	                           * (once the client has read it: AG_PHASE_PAUSED) */
	void *cont;               /* the command's state between such runs */
	void (*cont_free)(void *cont);
	/* APPEND messages as the parser streams them. */
	struct ag_append_buffer *append;
	size_t n_append;
	uint64_t append_total;    /* bytes of all of them */
	int append_too_big;       /* a MULTIAPPEND passed max_message in total */
	int append_receiving;     /* the message being streamed has a buffer (the last one) */
	/* The user's quota, looked up on the loop when a command that needs
	 * it starts (the users table is the loop's), for its storage run. */
	struct ag_quota quota;
};

/* One APPEND message received so far. */
struct ag_append_buffer {
	char *data;
	size_t len;
	size_t cap;               /* the size the literal announced */
};

/* Starts a session on an accepted connection whose bufferevent is `bev`
 * (the session owns it from now on) and sends the greeting. Returns NULL
 * (and frees bev) on failure. */
struct ag_session *ag_session_new(struct ag_server *srv, struct bufferevent *bev,
                                  const struct sockaddr *peer, int tls);
/* Frees the session at once (the connection is closed without a word). */
void ag_session_free(struct ag_session *s);
/* Server shutdown: BYE now, or after the command in flight ends. */
void ag_session_shutdown(struct ag_session *s);
/* Loop thread: no one will read the answer of the job in flight (the
 * client left, or shutdown gave up waiting); long work should stop. */
void ag_session_abandon(struct ag_session *s);
/* From a storage run (any thread): nonzero once the job is abandoned.
 * Work whose time grows with the client's input (LIST over every mailbox)
 * checks it now and then and ends early; its answer is thrown away. */
int ag_session_abandoned(struct ag_session *s);

/* Appends raw bytes to the output. */
void ag_session_write(struct ag_session *s, const void *data, size_t len);
/* Writes "<tag> <status> <text>\r\n" for the command in flight. */
void ag_session_tagged(struct ag_session *s, enum imap_status status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The command in flight is answered: frees it and reads the next one. The
 * session may be freed inside: return right after calling it. */
void ag_session_command_done(struct ag_session *s);
/* Sends "* BYE <text>" (when text is not NULL) and closes once it is flushed. */
void ag_session_close(struct ag_session *s, const char *bye_text);
/* The command in flight reads client lines: the parser goes to `mode`
 * (IDLE or SASL) and each line goes to the command table's `line` hook. */
void ag_session_read_lines(struct ag_session *s, enum imap_parser_mode mode);
/* Nonzero while the session is closing or its connection is gone. */
int ag_session_ending(const struct ag_session *s);
/* Runs `job_run` on a worker with the session as argument, then `job_done`
 * on the loop; while it runs the session is kept alive. */
void ag_session_run_job(struct ag_session *s, void (*job_run)(void *), void (*job_done)(struct ag_session *));
/* The same on the password-check threads (the caller holds a slot);
 * -1 when out of memory. */
int ag_session_run_auth_job(struct ag_session *s, void (*job_run)(void *), void (*job_done)(struct ag_session *));

/* Runs `run` on a worker thread; it may use the engine and the view and
 * writes its whole answer (untagged lines and the tagged status) into
 * s->reply, which the loop then sends before ending the command. With
 * `keep_command` the command stays in flight (IDLE). */
void ag_session_storage(struct ag_session *s, void (*run)(struct ag_session *s), int keep_command);
/* From a storage run: keeps `cont` (freed with cont_free when the command
 * ends) and asks to be run again after the reply so far went out, so that
 * a large answer never sits in memory whole. */
void ag_session_storage_continue(struct ag_session *s, void *cont, void (*cont_free)(void *));

/* Brings the view up to date and appends what changed to s->reply (see
 * ag_reply_update); forgets the \Seen overlay. Returns 0 or an engine error. */
int ag_session_update_view(struct ag_session *s, unsigned options, int with_uid, const uint32_t *silent,
                           size_t n_silent);
/* A CONDSTORE enabling command (RFC 7162 3.1): switches CONDSTORE on; the
 * first time with a mailbox selected, tells its HIGHESTMODSEQ. */
void ag_session_enable_condstore(struct ag_session *s);
/* The AG_REPLY_* features this session has enabled. */
unsigned ag_session_features(const struct ag_session *s);
/* Adds UIDs (ascending) to the \Seen overlay. */
void ag_session_overlay_seen(struct ag_session *s, const uint32_t *uids, size_t n);
/* The flags of a message as this session's client knows them: the view's plus the overlay. */
uint32_t ag_session_flags(const struct ag_session *s, uint32_t uid, uint32_t view_flags);

/* Closes the selected mailbox's view and notifications (worker or loop). */
void ag_session_unselect(struct ag_session *s);
/* Frees the APPEND buffers. */
void ag_session_append_clear(struct ag_session *s);

/* Nonzero when LOGIN / AUTHENTICATE PLAIN may be used on this connection. */
int ag_session_plaintext_ok(const struct ag_session *s);
/* Appends this connection's current capability list. */
void ag_session_capabilities(const struct ag_session *s, struct agbuf *out);
/* After "OK Begin TLS negotiation now": wraps the connection in TLS. */
int ag_session_start_tls(struct ag_session *s);
/* After "OK DEFLATE active": compresses the connection from here on. */
int ag_session_start_compress(struct ag_session *s);
/* Name of a state, for messages ("not-authenticated"...). */
const char *ag_session_state_name(enum ag_session_state state);

#endif
