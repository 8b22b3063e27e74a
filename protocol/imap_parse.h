/* imap_parse.h - the streaming IMAP4rev1 command parser (RFC 3501 plus
 * LITERAL+, IDLE, UIDPLUS, MOVE, UNSELECT, NAMESPACE, ID, ENABLE, SASL-IR,
 * MULTIAPPEND, QUOTA, ESEARCH, SEARCHRES, WITHIN, LIST-EXTENDED,
 * LIST-STATUS, CREATE-SPECIAL-USE and the CONDSTORE modifiers clients
 * send).
 *
 * The parser does no I/O. The session hands it whatever bytes arrived, in
 * pieces of any size, and pulls events out of it:
 *
 *     for (;;) {
 *         size_t used;
 *         struct imap_event ev;
 *         enum imap_event_kind k = imap_parser_next(p, bytes, len, &used, &ev);
 *         drain `used` bytes from the input (e.g. evbuffer_drain);
 *         if (k == IMAP_EV_NONE) break;          // every byte was taken: wait for more
 *         act on ev (and for a command, maybe stop pulling until it is done)
 *     }
 *
 * With libevent the session peeks the first contiguous chunk of its input
 * evbuffer (evbuffer_peek or evbuffer_pullup of at most a chunk), passes it,
 * and drains what was used. One call returns at most one event; a call that
 * returns IMAP_EV_NONE has used all `len` bytes. The parser copies what it
 * must keep (at most one command line and its small literals, within the
 * limits), so the input may be freed after each call.
 *
 * Events and what the caller must do:
 *   IMAP_EV_COMMAND       a complete command; ev->cmd now belongs to the
 *                         caller (imap_command_free).
 *   IMAP_EV_ERROR         a malformed command or an over-limit line/literal:
 *                         answer "<tag> BAD <text>" (or "* BAD" when ev->tag
 *                         is NULL). The parser has already arranged to skip
 *                         the rest of the command and resumes at the next one.
 *   IMAP_EV_LITERAL       the client announced a synchronising literal {n}
 *                         and waits: call imap_parser_literal_accept() and
 *                         send "+ ..." , or imap_parser_literal_reject() and
 *                         send a tagged NO/BAD (the client then drops the
 *                         command). Until one of them is called, the parser
 *                         returns this event again and takes no bytes.
 *                         ev->literal_size is n; when the literal is an
 *                         APPEND message, ev->cmd (borrowed) holds what was
 *                         parsed so far so the caller may refuse early
 *                         ([TRYCREATE], [TOOBIG], [OVERQUOTA]).
 *   IMAP_EV_APPEND_BEGIN  an APPEND message literal starts: ev->cmd
 *                         (borrowed) has the mailbox; ev->literal_size is
 *                         its size. ev->message_index counts the streamed
 *                         literals of the command from 0: one per message,
 *                         or one per TEXT part of CATENATE (RFC 4469); a
 *                         message's `literal` or a part's says which.
 *   IMAP_EV_APPEND_DATA   ev->data/ev->len: the next bytes of that message,
 *                         pointing into the caller's own input (no copy).
 *   IMAP_EV_APPEND_END    the message's bytes are complete. The command then
 *                         goes on: another message (MULTIAPPEND), or an
 *                         IMAP_EV_COMMAND (success) or IMAP_EV_ERROR (the
 *                         caller discards what it stored) concludes it.
 *   IMAP_EV_IDLE_DONE     in IMAP_MODE_IDLE, the client sent DONE. The parser
 *                         is back in IMAP_MODE_COMMAND.
 *   IMAP_EV_SASL_LINE     in IMAP_MODE_SASL, one client response line
 *                         (ev->data/ev->len, without CRLF, parser-owned until
 *                         the next call); "*" means the client cancels.
 *
 * Borrowed pointers (ev->tag, ev->text, ev->data of a SASL line, ev->cmd of
 * IMAP_EV_LITERAL / IMAP_EV_APPEND_*) stay valid until the event that
 * concludes the command (for ev->cmd) or the next call (for the rest).
 *
 * Modes: the parser does not switch to IDLE or SASL by itself, because only
 * the session knows whether it accepted the IDLE or AUTHENTICATE command.
 * After accepting one it calls imap_parser_set_mode() before pulling again;
 * after the last SASL exchange it sets IMAP_MODE_COMMAND back. An error in
 * IDLE or SASL mode (a line other than DONE, an over-long line) has no tag:
 * it ends the IDLE or AUTHENTICATE command, which the session answers with
 * its own tag and BAD, and the parser is back in IMAP_MODE_COMMAND.
 *
 * Line ends: CRLF, or a bare LF (as lenient servers accept); a CR anywhere
 * else is an error. Empty lines between commands are skipped silently.
 *
 * Limits (struct imap_parser_limits): a line longer than max_line is
 * refused as soon as that many bytes arrived without a line end, and its
 * remaining bytes are dropped unbuffered. A literal larger than its limit
 * is refused when announced. max_command bounds the bytes one command keeps
 * (its lines and small literals), measured at each line end.
 *
 * Grammar notes: a command is parsed again from its start at each literal
 * it announces (cheap next to the I/O, and it keeps the grammar a plain
 * recursive descent); max_literals bounds that work.
 */
#ifndef AG_IMAP_PARSE_H
#define AG_IMAP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A byte string. `data` is NUL-terminated (not counted in `len`) and may
 * contain NUL bytes when it came from a literal. */
struct imap_str {
	const char *data;
	size_t len;
};

/* A sequence-set range a:b as written; `*` is IMAP_SEQ_STAR. A single
 * number n is the range n:n. */
#define IMAP_SEQ_STAR 0u
struct imap_seqrange {
	uint32_t first;
	uint32_t last;
};
struct imap_seqset {
	size_t count;
	struct imap_seqrange *ranges;
	/* "$" (RFC 5182 SEARCHRES): the result the last SEARCH ... RETURN
	 * (SAVE) kept. The parser takes "$" only as the whole set (as Dovecot
	 * does); count is then 0 and the session supplies the UIDs. */
	bool saved;
};

/* A calendar date (SEARCH BEFORE/ON/SINCE...). */
struct imap_date {
	int year;
	int month; /* 1..12 */
	int day;   /* 1..31 */
};

/* An APPEND / INTERNALDATE date-time: local time plus its zone. */
struct imap_datetime {
	struct imap_date date;
	int hour, minute, second;
	int zone_minutes; /* east of UTC, e.g. -0700 is -420 */
};

/* A mailbox name: the bytes as sent and the name with INBOX folded to
 * upper case when it matches INBOX case-insensitively (RFC 3501 5.1). */
struct imap_mailbox {
	struct imap_str raw;
	struct imap_str name;
};

struct imap_flags {
	size_t count;
	struct imap_str *flags; /* "\Seen", "\Deleted", "$Junk", "NonJunk"... */
};

enum imap_cmd_kind {
	IMAP_CMD_CAPABILITY,
	IMAP_CMD_NOOP,
	IMAP_CMD_LOGOUT,
	IMAP_CMD_STARTTLS,
	IMAP_CMD_AUTHENTICATE,
	IMAP_CMD_LOGIN,
	IMAP_CMD_SELECT,
	IMAP_CMD_EXAMINE,
	IMAP_CMD_CREATE,
	IMAP_CMD_DELETE,
	IMAP_CMD_RENAME,
	IMAP_CMD_SUBSCRIBE,
	IMAP_CMD_UNSUBSCRIBE,
	IMAP_CMD_LIST,
	IMAP_CMD_LSUB,
	IMAP_CMD_STATUS,
	IMAP_CMD_APPEND,
	IMAP_CMD_CHECK,
	IMAP_CMD_CLOSE,
	IMAP_CMD_EXPUNGE,
	IMAP_CMD_SEARCH,
	IMAP_CMD_FETCH,
	IMAP_CMD_STORE,
	IMAP_CMD_COPY,
	IMAP_CMD_MOVE,
	IMAP_CMD_IDLE,
	IMAP_CMD_UNSELECT,
	IMAP_CMD_NAMESPACE,
	IMAP_CMD_ID,
	IMAP_CMD_ENABLE,
	IMAP_CMD_GETQUOTA,     /* RFC 9208 */
	IMAP_CMD_GETQUOTAROOT,
	IMAP_CMD_SETQUOTA,
	IMAP_CMD_SORT,         /* RFC 5256 */
	IMAP_CMD_THREAD,       /* RFC 5256 */
	IMAP_CMD_COMPRESS,     /* RFC 4978 */
	IMAP_CMD_CANCELUPDATE, /* RFC 5267 */
	IMAP_CMD__COUNT
};

/* FETCH */
enum imap_fetch_macro { IMAP_FETCH_NO_MACRO, IMAP_FETCH_ALL, IMAP_FETCH_FAST, IMAP_FETCH_FULL };

enum imap_fetch_att_kind {
	IMAP_FETCH_ENVELOPE,
	IMAP_FETCH_FLAGS,
	IMAP_FETCH_INTERNALDATE,
	IMAP_FETCH_RFC822,
	IMAP_FETCH_RFC822_HEADER,
	IMAP_FETCH_RFC822_SIZE,
	IMAP_FETCH_RFC822_TEXT,
	IMAP_FETCH_BODY,          /* BODY without a section: the non-extensible structure */
	IMAP_FETCH_BODYSTRUCTURE,
	IMAP_FETCH_UID,
	IMAP_FETCH_BODY_SECTION,  /* BODY[...] or BODY.PEEK[...] */
	IMAP_FETCH_MODSEQ,        /* RFC 7162 */
	IMAP_FETCH_BINARY,        /* BINARY[part] or BINARY.PEEK[part] (RFC 3516): section.parts only */
	IMAP_FETCH_BINARY_SIZE    /* BINARY.SIZE[part] */
};

enum imap_section_text {
	IMAP_SECTION_ALL,          /* BODY[] or BODY[1.2]: the whole part */
	IMAP_SECTION_HEADER,
	IMAP_SECTION_HEADER_FIELDS,
	IMAP_SECTION_HEADER_FIELDS_NOT,
	IMAP_SECTION_TEXT,
	IMAP_SECTION_MIME
};

/* Part numbers a body section may have (1.2.3 has three); a deeper one is
 * refused with BAD. The same bound as protocol/section.h's SECTION_MAX_PATH. */
#define IMAP_SECTION_MAX_PARTS 32

struct imap_section {
	size_t part_count;        /* 0 for the top-level message; at most IMAP_SECTION_MAX_PARTS */
	uint32_t *parts;          /* 1.2.3 -> {1, 2, 3} */
	enum imap_section_text text;
	size_t field_count;       /* HEADER.FIELDS (A B) */
	struct imap_str *fields;
};

struct imap_fetch_att {
	enum imap_fetch_att_kind kind;
	bool peek;                /* BODY.PEEK, BINARY.PEEK */
	struct imap_section section;
	bool has_partial;         /* <offset.count> */
	uint32_t partial_offset;
	uint32_t partial_count;
};

/* SEARCH */
enum imap_search_kind {
	IMAP_SEARCH_AND,          /* top level and "( ... )": all of u.list */
	IMAP_SEARCH_OR,
	IMAP_SEARCH_NOT,
	IMAP_SEARCH_SEQSET,
	IMAP_SEARCH_UID,
	IMAP_SEARCH_ALL,
	IMAP_SEARCH_ANSWERED,
	IMAP_SEARCH_DELETED,
	IMAP_SEARCH_DRAFT,
	IMAP_SEARCH_FLAGGED,
	IMAP_SEARCH_NEW,
	IMAP_SEARCH_OLD,
	IMAP_SEARCH_RECENT,
	IMAP_SEARCH_SEEN,
	IMAP_SEARCH_UNANSWERED,
	IMAP_SEARCH_UNDELETED,
	IMAP_SEARCH_UNDRAFT,
	IMAP_SEARCH_UNFLAGGED,
	IMAP_SEARCH_UNSEEN,
	IMAP_SEARCH_KEYWORD,
	IMAP_SEARCH_UNKEYWORD,
	IMAP_SEARCH_BCC,
	IMAP_SEARCH_BODY,
	IMAP_SEARCH_CC,
	IMAP_SEARCH_FROM,
	IMAP_SEARCH_SUBJECT,
	IMAP_SEARCH_TEXT,
	IMAP_SEARCH_TO,
	IMAP_SEARCH_HEADER,
	IMAP_SEARCH_BEFORE,
	IMAP_SEARCH_ON,
	IMAP_SEARCH_SINCE,
	IMAP_SEARCH_SENTBEFORE,
	IMAP_SEARCH_SENTON,
	IMAP_SEARCH_SENTSINCE,
	IMAP_SEARCH_LARGER,
	IMAP_SEARCH_SMALLER,
	IMAP_SEARCH_MODSEQ,       /* RFC 7162, the entry name/type are skipped */
	IMAP_SEARCH_OLDER,        /* RFC 5032 WITHIN: u.size seconds */
	IMAP_SEARCH_YOUNGER
};

/* SEARCH RETURN options (RFC 4731, SAVE: RFC 5182), bits of
 * u.search.return_opts. RETURN () is taken as RETURN (ALL). */
#define IMAP_SEARCH_RET_MIN   0x01u
#define IMAP_SEARCH_RET_MAX   0x02u
#define IMAP_SEARCH_RET_ALL   0x04u
#define IMAP_SEARCH_RET_COUNT 0x08u
#define IMAP_SEARCH_RET_SAVE  0x10u
/* RFC 5267 (CONTEXT=SEARCH, CONTEXT=SORT): PARTIAL low:high (the range in
 * u.search.partial_first/last, low first), UPDATE, and CONTEXT (a hint that
 * the server takes as nothing: RETURN (CONTEXT) alone is RETURN ()). */
#define IMAP_SEARCH_RET_PARTIAL 0x20u
#define IMAP_SEARCH_RET_UPDATE  0x40u
#define IMAP_SEARCH_RET_CONTEXT 0x80u

struct imap_search_key {
	enum imap_search_kind kind;
	union {
		struct { size_t count; struct imap_search_key *keys; } list; /* AND */
		struct { struct imap_search_key *left, *right; } or;
		struct imap_search_key *not;
		struct imap_seqset set;     /* SEQSET, UID */
		struct imap_str str;        /* KEYWORD..TO: flag keyword or text */
		struct { struct imap_str name, value; } header;
		struct imap_date date;
		uint32_t size;              /* LARGER, SMALLER */
		uint64_t modseq;
	} u;
};

/* SORT keys (RFC 5256; DISPLAYFROM and DISPLAYTO of RFC 5957). */
enum imap_sort_key {
	IMAP_SORT_ARRIVAL,
	IMAP_SORT_CC,
	IMAP_SORT_DATE,
	IMAP_SORT_FROM,
	IMAP_SORT_SIZE,
	IMAP_SORT_SUBJECT,
	IMAP_SORT_TO,
	IMAP_SORT_DISPLAYFROM,
	IMAP_SORT_DISPLAYTO
};
struct imap_sort_criterion {
	enum imap_sort_key key;
	bool reverse;
};
/* THREAD algorithms (RFC 5256). */
enum imap_thread_alg { IMAP_THREAD_ORDEREDSUBJECT, IMAP_THREAD_REFERENCES };

/* STATUS items, also used by LIST RETURN (STATUS (...)). */
enum imap_status_item {
	IMAP_STATUS_MESSAGES,
	IMAP_STATUS_RECENT,
	IMAP_STATUS_UIDNEXT,
	IMAP_STATUS_UIDVALIDITY,
	IMAP_STATUS_UNSEEN,
	IMAP_STATUS_HIGHESTMODSEQ,
	IMAP_STATUS_SIZE,
	IMAP_STATUS_DELETED,          /* RFC 9208 (and RFC 9051) */
	IMAP_STATUS_DELETED_STORAGE   /* RFC 9208 */
};
struct imap_status_items {
	size_t count;
	enum imap_status_item *items; /* in the order the client wrote them */
};

enum imap_store_mode { IMAP_STORE_REPLACE, IMAP_STORE_ADD, IMAP_STORE_REMOVE };

/* LIST-EXTENDED options (RFC 5258 / 5819 / 6154), bits. */
#define IMAP_LIST_SEL_SUBSCRIBED     0x01u
#define IMAP_LIST_SEL_REMOTE         0x02u
#define IMAP_LIST_SEL_RECURSIVEMATCH 0x04u
#define IMAP_LIST_SEL_SPECIAL_USE    0x08u
#define IMAP_LIST_RET_SUBSCRIBED     0x01u
#define IMAP_LIST_RET_CHILDREN       0x02u
#define IMAP_LIST_RET_STATUS         0x04u
#define IMAP_LIST_RET_SPECIAL_USE    0x08u

/* One part of CATENATE (RFC 4469): TEXT literal or URL. */
struct imap_cat_part {
	bool is_url;
	struct imap_str url;         /* URL: the IMAP URL as sent */
	uint64_t size;               /* TEXT: the literal's size */
	size_t literal;              /* TEXT: which streamed literal of the command */
	bool binary;                 /* TEXT as a literal8 */
};

struct imap_append_message {
	bool has_flags;
	struct imap_flags flags;
	bool has_date;
	struct imap_datetime date;
	uint64_t size;               /* the literal's size; its bytes went out as events */
	bool binary;                 /* sent as a literal8 ~{n} (RFC 3516): may hold NUL */
	size_t literal;              /* which streamed literal of the command holds it */
	bool catenate;               /* CATENATE (...) instead of one literal */
	size_t part_count;
	struct imap_cat_part *parts;
};

/* A parsed command. Every pointer inside points into memory the command
 * owns; imap_command_free releases all of it. */
struct imap_command {
	struct imap_str tag;
	enum imap_cmd_kind kind;
	const char *name;            /* canonical upper-case name, static */
	bool uid;                    /* UID FETCH / STORE / SEARCH / COPY / MOVE / EXPUNGE */
	union {
		struct { struct imap_str mechanism; bool has_initial; struct imap_str initial; } authenticate;
		struct { struct imap_str user, password; } login;
		/* SELECT, EXAMINE, CREATE, DELETE, SUBSCRIBE, UNSUBSCRIBE;
		 * `use` is CREATE's (USE (\Sent ...)) of RFC 6154 */
		struct {
			struct imap_mailbox mailbox;
			bool condstore;
			/* SELECT / EXAMINE (QRESYNC (uidvalidity modseq
			 * [known-uids [(known-seqs known-uids)]])), RFC 7162 3.2.5 */
			bool qresync;
			uint32_t qr_uidvalidity;
			uint64_t qr_modseq;
			bool qr_has_known;
			struct imap_seqset qr_known;
			bool qr_has_match;
			struct imap_seqset qr_match_seqs, qr_match_uids;
			bool has_use;
			struct imap_flags use;
		} mailbox;
		struct { struct imap_mailbox from, to; } rename;
		struct {
			unsigned selection;          /* IMAP_LIST_SEL_* */
			struct imap_mailbox reference;
			size_t pattern_count;
			struct imap_str *patterns;   /* list-mailbox, wildcards * and % kept */
			unsigned returns;            /* IMAP_LIST_RET_* */
			struct imap_status_items status; /* RETURN (STATUS (...)) */
		} list;                          /* LIST, LSUB */
		struct { struct imap_mailbox mailbox; struct imap_status_items items; } status;
		struct {
			struct imap_mailbox mailbox;
			size_t message_count;        /* >1 only with MULTIAPPEND */
			struct imap_append_message *messages;
		} append;
		struct {
			bool has_charset;
			struct imap_str charset;
			bool esearch;                /* RETURN (...) given (RFC 4731) */
			unsigned return_opts;        /* IMAP_SEARCH_RET_* */
			uint32_t partial_first;      /* PARTIAL first:last, first <= last */
			uint32_t partial_last;
			struct imap_search_key *key; /* an AND of the keys given */
			/* SORT (charset mandatory, so has_charset is set) */
			size_t sort_count;
			struct imap_sort_criterion *sort; /* in the order given */
			/* THREAD (charset mandatory too) */
			enum imap_thread_alg thread;
		} search;                            /* SEARCH, SORT, THREAD */
		struct {
			struct imap_seqset set;
			enum imap_fetch_macro macro; /* also expanded into atts */
			size_t att_count;
			struct imap_fetch_att *atts;
			bool has_changedsince;
			uint64_t changedsince;
			bool vanished;               /* the VANISHED modifier (RFC 7162 3.2.6) */
		} fetch;
		struct {
			struct imap_seqset set;
			enum imap_store_mode mode;
			bool silent;
			struct imap_flags flags;
			bool has_unchangedsince;
			uint64_t unchangedsince;
		} store;
		struct { struct imap_seqset set; struct imap_mailbox mailbox; } copy; /* COPY, MOVE */
		struct { bool has_set; struct imap_seqset set; } expunge; /* UID EXPUNGE */
		struct { bool nil; size_t count; struct imap_str *names, *values; } id; /* value.data NULL for NIL */
		struct { size_t count; struct imap_str *caps; } enable;
		struct { struct imap_str mechanism; } compress; /* an atom, "DEFLATE" the only one defined */
		struct { size_t count; struct imap_str *tags; } cancelupdate; /* RFC 5267 */
		/* GETQUOTA root, SETQUOTA root (name limit ...) (RFC 9208);
		 * GETQUOTAROOT takes `mailbox` above */
		struct {
			struct imap_str root;
			size_t count;                /* SETQUOTA resources */
			struct imap_str *names;      /* atoms as sent ("STORAGE") */
			uint64_t *limits;
		} quota;
	} u;
	struct imap_arena *arena;    /* private */
};

enum imap_event_kind {
	IMAP_EV_NONE,
	IMAP_EV_COMMAND,
	IMAP_EV_ERROR,
	IMAP_EV_LITERAL,
	IMAP_EV_APPEND_BEGIN,
	IMAP_EV_APPEND_DATA,
	IMAP_EV_APPEND_END,
	IMAP_EV_IDLE_DONE,
	IMAP_EV_SASL_LINE
};

enum imap_error_kind {
	IMAP_ERR_SYNTAX,             /* BAD <text> */
	IMAP_ERR_LINE_TOO_LONG,      /* a line passed limits.max_line */
	IMAP_ERR_LITERAL_TOO_LARGE,  /* a literal passed its limit; answer [TOOBIG] for APPEND */
	IMAP_ERR_COMMAND_TOO_LARGE   /* line plus literals passed max_command, or too many literals */
};

struct imap_event {
	enum imap_event_kind kind;
	const char *tag;             /* ERROR, LITERAL: the tag when one was read, else NULL */
	enum imap_error_kind error;  /* ERROR */
	const char *text;            /* ERROR: the reason, for "tag BAD <text>" */
	struct imap_command *cmd;    /* see the contract above */
	uint64_t literal_size;       /* LITERAL, APPEND_BEGIN */
	bool literal_is_message;     /* LITERAL: the literal is an APPEND message */
	size_t message_index;        /* APPEND_*: which message of a MULTIAPPEND */
	const char *data;            /* APPEND_DATA, SASL_LINE */
	size_t len;
};

enum imap_parser_mode { IMAP_MODE_COMMAND, IMAP_MODE_IDLE, IMAP_MODE_SASL };

struct imap_parser_limits {
	size_t max_line;             /* bytes of one line, CRLF excluded (default 65536) */
	size_t max_literal;          /* a literal outside APPEND (default 65536) */
	uint64_t max_append;         /* one APPEND message (default 64 MiB) */
	size_t max_command;          /* buffered bytes of one command, lines + small literals (default 262144) */
	size_t max_literals;         /* literals in one command (default 64) */
	unsigned max_depth;          /* SEARCH nesting (default 32) */
};

/* Fills `limits` with the defaults above. */
void imap_parser_default_limits(struct imap_parser_limits *limits);
/* A new parser in IMAP_MODE_COMMAND; NULL limits means the defaults. The
 * caller owns it (imap_parser_free). Returns NULL when memory is exhausted. */
struct imap_parser *imap_parser_new(const struct imap_parser_limits *limits);
/* Frees the parser and anything it still holds (an unfinished command). */
void imap_parser_free(struct imap_parser *p);
/* Takes bytes from `in` (len may be 0) and returns the next event, also
 * stored in *ev. *used says how many bytes were taken; IMAP_EV_NONE means
 * all of them were and more are needed. */
enum imap_event_kind imap_parser_next(struct imap_parser *p, const char *in, size_t len,
				      size_t *used, struct imap_event *ev);
/* After IMAP_EV_LITERAL: the caller sent "+ " and the literal bytes may come. */
void imap_parser_literal_accept(struct imap_parser *p);
/* After IMAP_EV_LITERAL: the caller refused the literal (and answers the
 * command itself); the parser drops the command and expects a new one. */
void imap_parser_literal_reject(struct imap_parser *p);
/* Switches between commands, the DONE line of IDLE and SASL responses. */
void imap_parser_set_mode(struct imap_parser *p, enum imap_parser_mode mode);
/* The current mode. */
enum imap_parser_mode imap_parser_mode(const struct imap_parser *p);

/* Nonzero when the parser holds nothing of a command: no partial line, no
 * literal in progress, command mode. A session checks it after STARTTLS
 * (bytes pipelined behind STARTTLS must not survive the TLS handshake). */
int imap_parser_at_command_start(const struct imap_parser *p);
/* The bytes still expected for the literal being read, passed through or
 * skipped; 0 when no literal is in progress. */
uint64_t imap_parser_literal_remaining(const struct imap_parser *p);

/* Frees a command returned by IMAP_EV_COMMAND (NULL is fine). */
void imap_command_free(struct imap_command *cmd);

/* Nonzero when the name is INBOX in any case. */
int imap_mailbox_is_inbox(const char *name, size_t len);
/* Nonzero when `n` (1-based) is in `set`, `*` standing for `star` (the
 * highest sequence number or UID in use). */
int imap_seqset_contains(const struct imap_seqset *set, uint32_t n, uint32_t star);
/* The numbers *lo <= *hi a range covers, `*` standing for `star` ("5:2" is 2:5). */
void imap_seqrange_bounds(const struct imap_seqrange *r, uint32_t star, uint32_t *lo, uint32_t *hi);

/* Parses an RFC 3501 date ("1-Feb-1994", quotes not included). 0 on success. */
int imap_date_parse(const char *s, size_t len, struct imap_date *out);
/* Parses a date-time ("17-Jul-1996 02:44:25 -0700", quotes not included,
 * the day may be space-padded). 0 on success. */
int imap_datetime_parse(const char *s, size_t len, struct imap_datetime *out);
/* The instant a date-time names, in seconds since the epoch (UTC). */
int64_t imap_datetime_to_unix(const struct imap_datetime *dt);

#endif
