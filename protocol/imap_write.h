/* imap_write.h - building IMAP responses into an agbuf that the session
 * flushes. Nothing here does I/O or owns the buffer.
 *
 * A status response is three calls (or one, imap_write_status):
 *     imap_write_status_begin(out, "a1", IMAP_OK);   "a1 OK "
 *     imap_write_code_uidvalidity(out, 42);          "[UIDVALIDITY 42] "
 *     imap_write_status_end(out, "SELECT completed"); text + CRLF
 * Untagged data is one call a response (imap_write_exists, _list,
 * _status_response, _esearch...); a FETCH response is framed by
 * imap_write_fetch_begin and _end around its items, which the caller writes
 * with imap_write_atom, _number, _sp, _nil, _literal_header, _flags...
 * Strings go out as atoms, quoted strings or literals through imap_quote.
 * Free text (after OK/NO/BAD, after "+") never carries CR, LF or NUL: they
 * are replaced by spaces so a client cannot be fed an extra line. */
#ifndef AG_IMAP_WRITE_H
#define AG_IMAP_WRITE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/agbuf.h"
#include "protocol/imap_parse.h"

enum imap_status { IMAP_OK, IMAP_NO, IMAP_BAD, IMAP_PREAUTH, IMAP_BYE };

/* Response codes without arguments (RFC 3501 7.1, RFC 5530, RFC 4315,
 * RFC 7162, RFC 7889, RFC 4978, RFC 3516, RFC 6154). */
enum imap_code {
	IMAP_CODE_NONE,
	IMAP_CODE_ALERT,
	IMAP_CODE_ALREADYEXISTS,
	IMAP_CODE_AUTHENTICATIONFAILED,
	IMAP_CODE_AUTHORIZATIONFAILED,
	IMAP_CODE_CANNOT,
	IMAP_CODE_CLIENTBUG,
	IMAP_CODE_CLOSED,
	IMAP_CODE_COMPRESSIONACTIVE,
	IMAP_CODE_CONTACTADMIN,
	IMAP_CODE_CORRUPTION,
	IMAP_CODE_EXPIRED,
	IMAP_CODE_EXPUNGEISSUED,
	IMAP_CODE_INUSE,
	IMAP_CODE_LIMIT,
	IMAP_CODE_NOMODSEQ,
	IMAP_CODE_NONEXISTENT,
	IMAP_CODE_NOPERM,
	IMAP_CODE_OVERQUOTA,
	IMAP_CODE_PARSE,
	IMAP_CODE_PRIVACYREQUIRED,
	IMAP_CODE_READ_ONLY,
	IMAP_CODE_READ_WRITE,
	IMAP_CODE_SERVERBUG,
	IMAP_CODE_TOOBIG,
	IMAP_CODE_TRYCREATE,
	IMAP_CODE_UIDNOTSTICKY,
	IMAP_CODE_UNAVAILABLE,
	IMAP_CODE_UNKNOWN_CTE,
	IMAP_CODE_USEATTR,
	IMAP_CODE__COUNT
};

/* "<tag> OK " or "* OK " (tag NULL); BYE and PREAUTH are always untagged. */
void imap_write_status_begin(struct agbuf *out, const char *tag, enum imap_status status);
/* Free text then CRLF; CR and LF in `text` become spaces. */
void imap_write_status_end(struct agbuf *out, const char *text);
/* The same with the text given as printf's. */
void imap_write_status_endf(struct agbuf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A whole status response with an optional argument-less code, the text
 * given as printf's: imap_write_status(out, tag, IMAP_OK, IMAP_CODE_NONE,
 * "%s completed.", name). */
void imap_write_status(struct agbuf *out, const char *tag, enum imap_status status, enum imap_code code,
		       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* "[CODE] " for a code without arguments. */
void imap_write_code(struct agbuf *out, enum imap_code code);
/* "[UIDVALIDITY n] ", "[UIDNEXT n] ", "[UNSEEN n] ", "[HIGHESTMODSEQ n] ". */
void imap_write_code_uidvalidity(struct agbuf *out, uint32_t uidvalidity);
void imap_write_code_uidnext(struct agbuf *out, uint32_t uidnext);
void imap_write_code_unseen(struct agbuf *out, uint32_t seq);
void imap_write_code_highestmodseq(struct agbuf *out, uint64_t modseq);
/* "[APPENDUID uidvalidity uids] ": one UID, or for MULTIAPPEND the UIDs
 * in order as imap_write_number_set writes them (RFC 4315). */
void imap_write_code_appenduid(struct agbuf *out, uint32_t uidvalidity, const uint32_t *uids, size_t count);
/* "[COPYUID uidvalidity source-uids dest-uids] ": src[i] became dst[i];
 * the ascending source UIDs as a set, the destination UIDs one by one in
 * the same order ("3:4 1,2"). */
void imap_write_code_copyuid(struct agbuf *out, uint32_t uidvalidity, const uint32_t *src, const uint32_t *dst,
			     size_t count);
/* "[MODIFIED set] " (RFC 7162 3.1.3) of ascending numbers. */
void imap_write_code_modified(struct agbuf *out, const uint32_t *numbers, size_t count);
/* "[NOUPDATE \"tag\"] " (RFC 5267 4.3): no updates for that search. */
void imap_write_code_noupdate(struct agbuf *out, const char *tag);
/* "[BADURL \"url\"] " (RFC 4469 5): the URL without ']', CR and LF, which
 * url-resp-text cannot carry. */
void imap_write_code_badurl(struct agbuf *out, const char *url, size_t len);
/* "[PERMANENTFLAGS (flags... \*)] ", the "\*" when new keywords are allowed. */
void imap_write_code_permanentflags(struct agbuf *out, const char *const *flags, size_t count, int new_keywords);
/* "[CAPABILITY caps] " with caps a space-separated list of atoms. */
void imap_write_code_capability(struct agbuf *out, const char *caps);
/* "[BADCHARSET (charsets...)] ". */
void imap_write_code_badcharset(struct agbuf *out, const char *const *charsets, size_t count);

/* "+ text\r\n" (a continuation request; empty text allowed). */
void imap_write_continuation(struct agbuf *out, const char *text);
/* One space. */
void imap_write_sp(struct agbuf *out);
/* A bare atom the caller knows is valid (a keyword like FLAGS, a capability). */
void imap_write_atom(struct agbuf *out, const char *atom);
/* "NIL". */
void imap_write_nil(struct agbuf *out);
/* A decimal number. */
void imap_write_number(struct agbuf *out, uint64_t n);
/* A literal header "{n}\r\n" for bytes the caller appends (or streams) itself. */
void imap_write_literal_header(struct agbuf *out, uint64_t size);
/* Inclusive ascending ranges lo[i]:hi[i] as a set "1:3,7" (a range of one
 * number as that number). */
void imap_write_ranges(struct agbuf *out, const uint32_t *lo, const uint32_t *hi, size_t count);
/* "(\Seen $Junk)": flags are atoms (a leading '\' included). */
void imap_write_flags(struct agbuf *out, const char *const *flags, size_t count);
/* "\"17-Jul-1996 02:44:25 -0700\"": the instant `unix_time` shown in the
 * zone `zone_minutes` east of UTC. */
void imap_write_datetime(struct agbuf *out, int64_t unix_time, int zone_minutes);

/* The name a FETCH response gives an attribute: "UID", "RFC822.SIZE",
 * "BODY[1.2.HEADER.FIELDS (A B)]<0>" (BODY.PEEK answers as BODY, a partial
 * range shows its origin only, RFC 3501 7.4.2). */
void imap_write_fetch_att_name(struct agbuf *out, const struct imap_fetch_att *att);
/* "* STATUS name (MESSAGES 3 UIDNEXT 9)\r\n" of the items asked, in their
 * order: values[item] answers item (a table with an entry for every enum
 * imap_status_item). */
void imap_write_status_response(struct agbuf *out, const char *name, size_t name_len,
				const enum imap_status_item *items, size_t count, const uint64_t *values);

/* Common untagged responses, each a whole line. */
void imap_write_exists(struct agbuf *out, uint32_t count);   /* "* n EXISTS" */
void imap_write_recent(struct agbuf *out, uint32_t count);   /* "* n RECENT" */
void imap_write_expunge(struct agbuf *out, uint32_t seq);    /* "* n EXPUNGE" */
void imap_write_capability(struct agbuf *out, const char *caps);
/* "* FLAGS (...)". */
void imap_write_flags_response(struct agbuf *out, const char *const *flags, size_t count);
/* "* SEARCH 2 3 7" (no numbers: "* SEARCH"); a nonzero `modseq` adds
 * " (MODSEQ n)" (RFC 7162 3.1.5). */
void imap_write_search(struct agbuf *out, const uint32_t *numbers, size_t count, uint64_t modseq);
/* Numbers as a sequence set, each run of consecutive ascending numbers as
 * a range: 1 2 3 5 9 8 -> "1:3,5,9,8". Writes nothing for no numbers. */
void imap_write_number_set(struct agbuf *out, const uint32_t *numbers, size_t count);
/* "* SORT 5 3 4" (RFC 5256), the numbers in their order. */
void imap_write_sort(struct agbuf *out, const uint32_t *numbers, size_t count);
/* "* THREAD (1)(2 3)": `threads` as protocol/sort_thread.h writes them
 * ("* THREAD" alone for none). */
void imap_write_thread(struct agbuf *out, const char *threads, size_t len);
/* "* VANISHED 3:5,9" (RFC 7162 3.2.10) of ascending UIDs. */
void imap_write_vanished(struct agbuf *out, const uint32_t *uids, size_t count);
/* "* VANISHED (EARLIER) 3:5,9" of ranges as imap_write_ranges takes them. */
void imap_write_vanished_earlier(struct agbuf *out, const uint32_t *lo, const uint32_t *hi, size_t count);
/* A FETCH response is "* n FETCH (", its items separated by spaces, then
 * ")" and CRLF (imap_write_fetch_end). */
void imap_write_fetch_begin(struct agbuf *out, uint32_t seq);
void imap_write_fetch_end(struct agbuf *out);
/* The item "MODSEQ (n)" (RFC 7162 3.1.4). */
void imap_write_fetch_modseq(struct agbuf *out, uint64_t modseq);
/* One resource of a QUOTA response (RFC 9208 5.1): usage and limit in its units. */
struct imap_quota_resource {
	const char *name;
	uint64_t usage, limit;
};
/* "* QUOTA root (STORAGE 10 512 MESSAGE 1 100)". */
void imap_write_quota(struct agbuf *out, const char *root, const struct imap_quota_resource *res, size_t count);
/* "* QUOTAROOT mailbox root..." (RFC 9208 5.2), no roots allowed. */
void imap_write_quotaroot(struct agbuf *out, const char *mailbox, const char *const *roots, size_t count);
/* "* ENABLED CONDSTORE" (RFC 5161) of the capabilities given (atoms). */
void imap_write_enabled(struct agbuf *out, const char *const *caps, size_t count);
/* "* ID ("name" "Aerogram")" (RFC 2971) of `count` strings, field names and
 * values in turn; NIL for none. */
void imap_write_id(struct agbuf *out, const char *const *fields, size_t count);
/* "* NAMESPACE (("" ".")) NIL NIL" (RFC 2342): one personal namespace,
 * none shared. */
void imap_write_namespace(struct agbuf *out, const char *prefix, char delim);
/* The ESEARCH response of RFC 4731, which ESORT (RFC 5267) shares:
 * "* ESEARCH (TAG "a1") UID MIN 2 MAX 9 ALL 2:4,9 COUNT 4". `numbers` is
 * the result in its order (ascending for SEARCH, the sort order for SORT):
 * MIN and MAX are its first and last, ALL is imap_write_number_set of it.
 * `opts` are IMAP_SEARCH_RET_* bits (SAVE writes nothing); MIN, MAX and
 * ALL are left out of an empty result, COUNT is always there. With
 * IMAP_SEARCH_RET_PARTIAL (RFC 5267 4.4), "PARTIAL (first:last set)": the
 * results at positions first..last (from 1) of `numbers` in its order, or
 * NIL when there are none there. `tag` NULL leaves out the correlator; a
 * nonzero `modseq` ends it with "MODSEQ n" (RFC 7162 3.1.5). */
void imap_write_esearch(struct agbuf *out, const char *tag, int uid, unsigned opts, const uint32_t *numbers,
			size_t count, uint32_t first, uint32_t last, uint64_t modseq);
/* One pair of an ADDTO or REMOVEFROM return data item (RFC 5267 4.3):
 * the context position (0 for a SEARCH) and the results, in their order. */
struct imap_context_run {
	uint32_t position;
	const uint32_t *numbers;
	size_t count;
};
/* "* ESEARCH (TAG "t") [UID] ADDTO (pos set pos set ...)" (REMOVEFROM when
 * `add` is 0); nothing when n_runs is 0. */
void imap_write_context_update(struct agbuf *out, const char *tag, int uid, int add,
			       const struct imap_context_run *runs, size_t n_runs);
/* "* LIST (attrs) "delim" name", delim 0 for NIL; name already in mUTF-7
 * (or UTF-8 when the client enabled UTF8=ACCEPT). `lsub` says LSUB. */
void imap_write_list(struct agbuf *out, int lsub, const char *const *attrs, size_t attr_count, char delim,
		     const char *name, size_t name_len);
/* The same with the extended data items of RFC 5258 ("mbox-list-extended"),
 * written as given inside the parentheses: "\"CHILDINFO\" (\"SUBSCRIBED\")".
 * NULL writes none. */
void imap_write_list_ext(struct agbuf *out, int lsub, const char *const *attrs, size_t attr_count, char delim,
			 const char *name, size_t name_len, const char *extended);

#endif
