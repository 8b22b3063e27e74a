/* mime.h - RFC 5322 / MIME message structure: the part tree with the byte
 * offsets, sizes and line counts of every header and body, and the Content-*
 * and envelope data that FETCH BODYSTRUCTURE and ENVELOPE are written from.
 *
 * The parser follows the rules of Dovecot's lib-mail so that the answers
 * built from it match Dovecot's byte for byte:
 * - a header ends after its first empty line ("\n" or "\r\n") or at the end
 *   of the data; a line starting with "--" + a boundary of an enclosing
 *   multipart also ends it;
 * - a boundary matches by prefix ("--" + boundary at a line start, anything
 *   may follow), the newest boundary first, the longest one when several
 *   match; the [CR]LF before it belongs to the boundary, not the body;
 * - a part without Content-Type (or a message without MIME-Version nor
 *   Content-Type) is text/plain, or message/rfc822 inside multipart/digest;
 * - sizes come twice: physical (bytes as stored) and virtual (every LF not
 *   preceded by CR counted as CRLF), the latter is what IMAP reports.
 */
#ifndef AG_MIME_H
#define AG_MIME_H

#include <stddef.h>
#include <stdint.h>

/* Part flags (what the parser decided the part is). */
enum {
	MIME_PART_MULTIPART = 1u << 0,
	MIME_PART_RFC822 = 1u << 1,  /* message/rfc822: exactly one child, the message */
	MIME_PART_TEXT = 1u << 2,
	MIME_PART_IS_MIME = 1u << 3, /* Content-* headers count for this part */
	MIME_PART_DIGEST = 1u << 4,  /* multipart/digest: children default to message/rfc822 */
};

/* One Content-Type or Content-Disposition parameter (RFC 2231 continuations
 * already joined, the value still %-encoded as Dovecot reports it). */
struct mime_param {
	char *name;
	char *value;
};

/* One entry of an address list; a group start has only `mailbox` (the group
 * name), a group end has every field NULL. */
struct mime_address {
	char *name, *route, *mailbox, *domain;
	struct mime_address *next;
};

/* Which header the envelope field comes from (index into the arrays below). */
enum mime_env_field {
	MIME_ENV_DATE, MIME_ENV_SUBJECT, MIME_ENV_FROM, MIME_ENV_SENDER,
	MIME_ENV_REPLY_TO, MIME_ENV_TO, MIME_ENV_CC, MIME_ENV_BCC,
	MIME_ENV_IN_REPLY_TO, MIME_ENV_MESSAGE_ID, MIME_ENV_COUNT
};

/* The header values ENVELOPE is built from, as Dovecot takes them: for
 * date, subject, in-reply-to and message-id the unfolded value of the last
 * occurrence (NUL bytes as U+FFFD); for address fields every occurrence
 * (cut at a NUL), joined by an empty line, and their address lists one
 * after the other. */
struct mime_envelope {
	char *raw[MIME_ENV_COUNT];            /* NULL when the header is absent */
	struct mime_address *addr[MIME_ENV_COUNT]; /* only for address fields */
};

struct mime_part {
	struct mime_part *parent, *children, *next;
	unsigned flags;
	/* Physical byte offsets into the message: header [hdr_offset,
	 * body_offset), body [body_offset, end_offset). */
	uint64_t hdr_offset, body_offset, end_offset;
	/* Virtual sizes (bare LF counted as CRLF) and line counts (LFs). */
	uint64_t hdr_vsize, body_vsize;
	uint32_t hdr_lines, body_lines;

	/* Content-* data; NULL when absent. type/subtype keep their case. */
	char *type, *subtype;
	struct mime_param *params;
	size_t nparams;
	char *encoding, *id, *description, *md5, *location;
	char *disposition;
	struct mime_param *disp_params;
	size_t ndisp_params;
	char **languages;
	size_t nlanguages;
	/* Envelope of this part's header: set for the root and for the child
	 * of every message/rfc822 part, else NULL. */
	struct mime_envelope *envelope;
};

struct mime_arena;

/* A parsed message. Everything hangs off `arena` and goes with mime_free. */
struct mime_message {
	struct mime_part *root;
	uint64_t size;   /* physical size of the whole message */
	uint64_t vsize;  /* RFC822.SIZE */
	struct mime_arena *arena;
};

/* Parses `len` bytes. Never fails on malformed mail (every byte string is a
 * message); returns NULL only when memory runs out. Free with mime_free. The
 * message keeps no pointer into `data`. */
struct mime_message *mime_parse(const char *data, size_t len);
/* Frees a message from mime_parse or mime_serial_decode. */
void mime_free(struct mime_message *msg);

/* Number of parts in the tree under and including `part`. */
size_t mime_part_count(const struct mime_part *part);

/* A copy of the part tree with flags, offsets, sizes and line counts only
 * (no Content-* data, no envelope): all that section_fetch and RFC822.SIZE
 * read, in one allocation of exactly its size, for keeping many of them.
 * *bytes (may be NULL) receives what it takes from the heap. The caller
 * frees it with mime_free; NULL when memory runs out. */
struct mime_message *mime_message_skeleton(const struct mime_message *msg, size_t *bytes);

/* --- helpers shared by the protocol/mime* files ------------------------ */

/* An allocation that lives as long as the message (zeroed). */
void *mime_arena_alloc(struct mime_arena *arena, size_t size);
/* A NUL-terminated copy in the arena. */
char *mime_arena_strndup(struct mime_arena *arena, const char *str, size_t len);
/* A new empty arena, or NULL. */
struct mime_arena *mime_arena_new(void);
/* Frees an arena and all it holds. */
void mime_arena_free(struct mime_arena *arena);

/* Fills the envelope of a part from one header field (name, unfolded value). */
void mime_envelope_add_header(struct mime_arena *arena, struct mime_envelope *env,
			      const char *name, size_t name_len, const char *value, size_t value_len);
/* Parses the address fields of an envelope whose raw values are set. */
void mime_envelope_parse_addresses(struct mime_arena *arena, struct mime_envelope *env);

/* Parses an RFC 5322 address list as Dovecot does (missing parts filled with
 * MISSING_MAILBOX / MISSING_DOMAIN); NULL for an empty list. */
struct mime_address *mime_address_parse(struct mime_arena *arena, const char *value, size_t len);
/* Writes an address list back as Dovecot's message_address_write does
 * (comments dropped, "name <route:mailbox@domain>", groups as "name: ...;"):
 * the normalised text Dovecot's SEARCH FROM/TO/CC/BCC match against. */
struct agbuf;
void mime_address_write(struct agbuf *out, const struct mime_address *a);

/* Sets the Content-* data of a part from one header field. */
void mime_content_add_header(struct mime_arena *arena, struct mime_part *part,
			     const char *name, size_t name_len, const char *value, size_t value_len);

/* The bytes of a message as Dovecot keeps them when it is given them
 * (APPEND, delivery): its save path stores LF line ends, dropping the CR
 * right before each LF and a CR that ends the message, and serves every
 * LF as CRLF again. So a CR CR LF line end comes back as CR LF and a final
 * CR goes, while CRLF, bare LF and a CR before anything else stay. In
 * Aerogram's terms (which keep CRLF and bare LF as given): a run of two or
 * more CRs before a LF loses one CR, and so does a run that ends the
 * message. Writes the result to out (which may be in itself: it is never
 * longer) and returns its length. */
size_t mime_save_line_ends(char *out, const char *in, size_t len);
/* 1 when mime_save_line_ends would change data[0, len). */
int mime_save_line_ends_changes(const char *data, size_t len);

/* Virtual size of data[start, end): bare LFs count twice. */
uint64_t mime_vsize(const char *data, uint64_t start, uint64_t end);

#endif
