/* commands.h - the command table: which states allow a command, and its handler. */
#ifndef AG_HOST_COMMANDS_H
#define AG_HOST_COMMANDS_H

#include "host/session.h"

/* A handler answers s->cmd, now or later, and then calls ag_session_command_done. */
typedef void (*ag_command_fn)(struct ag_session *s);

/* A command that reads client lines while in flight (it called
 * ag_session_read_lines) declares how it takes them; the session has no
 * other knowledge of such commands. */
struct ag_command_input {
	/* One client line (IDLE: "DONE"); the parser is back in command mode. */
	void (*line)(struct ag_session *s, const char *line, size_t len);
	/* A malformed or over-long line: the command ends with BAD. `why` is
	 * the parser's text, NULL or empty when it had none. */
	void (*abort)(struct ag_session *s, const char *why);
	/* The selected mailbox changed while the command waits for a line
	 * (s->changed is set); NULL: the change waits for the next command. */
	void (*changed)(struct ag_session *s);
};

struct ag_command {
	enum imap_cmd_kind kind;
	const char *name;
	unsigned states;        /* AG_STATE_* bits where the command is valid */
	ag_command_fn handler;  /* NULL: not implemented yet */
	const struct ag_command_input *input; /* NULL: it reads no client lines */
};

/* The table entry of a parsed command kind, or NULL. */
const struct ag_command *ag_command_find(enum imap_cmd_kind kind);

/* cmd_any.c: valid in every state. */
void ag_cmd_capability(struct ag_session *s);
void ag_cmd_noop(struct ag_session *s);
void ag_cmd_logout(struct ag_session *s);
void ag_cmd_id(struct ag_session *s);
/* cmd_login.c: the not-authenticated state. */
void ag_cmd_starttls(struct ag_session *s);
void ag_cmd_login(struct ag_session *s);
void ag_cmd_authenticate(struct ag_session *s);
/* How AUTHENTICATE takes the client's SASL responses. */
extern const struct ag_command_input ag_cmd_authenticate_input;
/* cmd_authenticated.c: the authenticated and selected states. */
void ag_cmd_enable(struct ag_session *s);
void ag_cmd_compress(struct ag_session *s);
void ag_cmd_namespace(struct ag_session *s);
/* cmd_mailbox.c: the mailbox list. */
void ag_cmd_create(struct ag_session *s);
void ag_cmd_delete(struct ag_session *s);
void ag_cmd_rename(struct ag_session *s);
void ag_cmd_subscribe(struct ag_session *s); /* SUBSCRIBE and UNSUBSCRIBE */
void ag_cmd_list(struct ag_session *s);      /* LIST and LSUB */
void ag_cmd_status(struct ag_session *s);
/* cmd_append.c, cmd_fetch.c */
void ag_cmd_append(struct ag_session *s);
void ag_cmd_fetch(struct ag_session *s);    /* FETCH and UID FETCH */
/* cmd_store.c */
void ag_cmd_store(struct ag_session *s);
void ag_cmd_expunge(struct ag_session *s);  /* EXPUNGE and UID EXPUNGE */
void ag_cmd_copy(struct ag_session *s);     /* COPY and MOVE */
/* cmd_quota.c: RFC 9208 */
void ag_cmd_getquota(struct ag_session *s);
void ag_cmd_getquotaroot(struct ag_session *s);
void ag_cmd_setquota(struct ag_session *s);
/* cmd_search.c */
void ag_cmd_search(struct ag_session *s);   /* SEARCH and UID SEARCH */
/* From a storage run: the sequence numbers (ascending, *seqs malloc'd) of
 * the view's messages that match key; 0 or an engine error. */
int ag_search_matches(struct ag_session *s, const struct imap_search_key *key, uint32_t **seqs, size_t *count);
/* 1 when the command's CHARSET (SEARCH, SORT, THREAD) is one the keys can
 * be taken in: US-ASCII or UTF-8. */
int ag_search_charset_ok(const struct imap_command *cmd);
/* The RETURN options that ask for result data: CONTEXT left out, none
 * meaning ALL (RFC 4731, RFC 5267 4.2). */
unsigned ag_search_data_opts(unsigned opts);
/* On the loop, before a SEARCH or SORT runs: when it asks for UPDATE with
 * the tag of a context still there (RFC 5267 4.3), answers BAD, ends the
 * command and returns 1. */
int ag_search_update_tag_reused(struct ag_session *s);
/* cmd_sort.c */
void ag_cmd_sort(struct ag_session *s);     /* SORT and UID SORT (RFC 5256) */
void ag_cmd_thread(struct ag_session *s);   /* THREAD and UID THREAD (RFC 5256) */
/* From a storage run: the sequence numbers (*seqs malloc'd) of the view's
 * messages that match key, in the order of the sort criteria; 0 or an
 * engine error. */
int ag_sort_matches(struct ag_session *s, const struct imap_sort_criterion *crit, size_t n_crit,
		    const struct imap_search_key *key, uint32_t **seqs, size_t *count);
/* context.c: CANCELUPDATE (RFC 5267) */
void ag_cmd_cancelupdate(struct ag_session *s);
/* cmd_select.c: the selected state's life and its updates. */
void ag_cmd_select(struct ag_session *s);   /* SELECT and EXAMINE */
void ag_cmd_close(struct ag_session *s);    /* CLOSE and UNSELECT */
void ag_cmd_check(struct ag_session *s);
void ag_cmd_idle(struct ag_session *s);
/* How IDLE takes DONE and tells the mailbox's changes meanwhile. */
extern const struct ag_command_input ag_cmd_idle_input;

#endif
