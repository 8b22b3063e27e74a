/* imap_parse_int.h - what the files of the command parser share: the arena
 * commands live in, and the grammar state a command is parsed with.
 *
 * The streaming side (imap_parse.c) keeps the bytes of the current command
 * in wire form, lines ending in a single '\n', small literals inline after
 * their "{n}\n" announcement. The grammar side parses that buffer from the
 * start each time it is complete or ends with a literal announcement; the
 * literal table tells it which literals are present, streamed (an APPEND
 * message, not kept) or still to come. */
#ifndef AG_IMAP_PARSE_INT_H
#define AG_IMAP_PARSE_INT_H

#include "protocol/imap_parse.h"

/* A chunked bump allocator: a command and everything it points to. */
struct imap_arena;
struct imap_arena *imap_arena_new(void);
void imap_arena_free(struct imap_arena *a);
/* Zeroed memory for `n` objects of `size` bytes, NULL on overflow. */
void *imap_arena_calloc(struct imap_arena *a, size_t n, size_t size);
/* `array` (holding `count` objects of `size` bytes) or a copy with room
 * for more, so that array[count] can be written. The room follows from
 * the count (4, doubled whenever it is full), so an array grown only
 * through here keeps no capacity of its own. */
void *imap_arena_grow(struct imap_arena *a, void *array, size_t count, size_t size);
/* Room for array[count] in an array of the parse `g`. */
#define IMAP_GROW(g, array, count) ((array) = imap_arena_grow((g)->arena, (array), (count), sizeof(*(array))))
/* A NUL-terminated copy of `len` bytes. */
char *imap_arena_strdup(struct imap_arena *a, const char *s, size_t len);

enum imap_lit_state { IMAP_LIT_INLINE, IMAP_LIT_STREAMED, IMAP_LIT_PENDING };
struct imap_lit {
	size_t data_offset;          /* where the bytes start (or would) in the buffer */
	uint64_t size;
	enum imap_lit_state state;
};

/* Why a parse stopped. */
enum imap_gram_result { IMAP_GRAM_OK, IMAP_GRAM_ERROR, IMAP_GRAM_NEED_LITERAL };

struct imap_gram {
	const char *buf;
	size_t len;
	size_t pos;
	const struct imap_lit *lits;
	size_t lit_count;
	size_t lit_next;
	struct imap_arena *arena;
	struct imap_command *cmd;
	unsigned max_depth;
	unsigned depth;
	bool failed;                 /* an error or a pending literal stopped the parse */
	bool need_literal;
	bool literal_is_message;     /* the pending literal is an APPEND message */
	bool in_message;             /* set by APPEND around reading the message */
	size_t message_index;        /* the message being parsed */
	size_t literal_index;        /* streamed literals passed so far (APPEND) */
	char error[200];
};

/* Parses the command in g->buf into g->cmd (allocated in g->arena). */
enum imap_gram_result imap_gram_command(struct imap_gram *g);

/* Lexer and grammar helpers (imap_lex.c). Each returns false after
 * recording an error (the first one wins) or a pending literal. */
bool imap_fail(struct imap_gram *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int imap_peek(const struct imap_gram *g);
bool imap_at_eol(const struct imap_gram *g);
bool imap_sp(struct imap_gram *g, const char *what);
bool imap_eol(struct imap_gram *g);
/* Moves past the character `c` at the cursor; `error` when another is there. */
bool imap_expect(struct imap_gram *g, int c, const char *error);
bool imap_is_atom_char(int c);
bool imap_atom(struct imap_gram *g, struct imap_str *out, const char *what);
/* An atom that may also hold ']' (ASTRING-CHAR) or list wildcards. */
bool imap_atom_ext(struct imap_gram *g, struct imap_str *out, const char *what, bool bracket, bool wildcards);
bool imap_string(struct imap_gram *g, struct imap_str *out, const char *what);
bool imap_astring(struct imap_gram *g, struct imap_str *out, const char *what);
bool imap_nstring(struct imap_gram *g, struct imap_str *out, const char *what);
/* Reads one more string into (*array)[*count] with `read` (imap_atom,
 * imap_string, imap_astring...), counting it. */
bool imap_push_str(struct imap_gram *g, struct imap_str **array, size_t *count,
		   bool (*read)(struct imap_gram *g, struct imap_str *out, const char *what), const char *what);
bool imap_number(struct imap_gram *g, uint32_t *out, const char *what);
bool imap_number64(struct imap_gram *g, uint64_t *out, const char *what);
bool imap_nz_number(struct imap_gram *g, uint32_t *out, const char *what);
bool imap_seqset(struct imap_gram *g, struct imap_seqset *out);
bool imap_mailbox(struct imap_gram *g, struct imap_mailbox *out);
bool imap_flag_list(struct imap_gram *g, struct imap_flags *out, bool allow_recent);
bool imap_flag(struct imap_gram *g, struct imap_str *out, bool allow_recent);
bool imap_search_date(struct imap_gram *g, struct imap_date *out);
bool imap_date_time(struct imap_gram *g, struct imap_datetime *out);
/* Case-insensitive match of a keyword at the cursor that is followed by a
 * delimiter (not an atom char); moves past it when it matches. */
bool imap_keyword(struct imap_gram *g, const char *word);
/* Reads an atom's extent without consuming it, for table lookups. */
size_t imap_atom_len_at(const struct imap_gram *g);

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/* The entry of a keyword table that the `n` bytes at the cursor name,
 * without regard to case: its index, or -1. The entries are `size` bytes
 * each and begin with their name (a const char *). The cursor stays. */
int imap_lookup(const struct imap_gram *g, size_t n, const void *table, size_t count, size_t size);
#define IMAP_LOOKUP(g, n, table) imap_lookup((g), (n), (table), COUNT_OF(table), sizeof((table)[0]))

/* A parenthesised list at the cursor: "(" item *(SP item) ")". `item`
 * reads one element (given `arg`); it also meets the ')' of an empty list
 * and says what is wrong with that. With `loose`, "()" and a space before
 * the ')' pass too, as they always have in the LIST and SEARCH RETURN
 * options, ID and SETQUOTA. The errors: "Missing '(' before the <what>",
 * and when an element is followed by neither a space nor ')', `unclosed`
 * or, when that is NULL, "Missing ')' at the end of the <what>". */
bool imap_paren_list(struct imap_gram *g, const char *what, const char *unclosed, bool loose,
		     bool (*item)(struct imap_gram *g, void *arg), void *arg);
bool imap_status_item_list(struct imap_gram *g, struct imap_status_items *out);

/* Command bodies in their own files. */
bool imap_gram_fetch(struct imap_gram *g);
bool imap_gram_search(struct imap_gram *g);
bool imap_gram_sort(struct imap_gram *g);
bool imap_gram_thread(struct imap_gram *g);

#endif
