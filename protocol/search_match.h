/* search_match.h - the message tests of IMAP SEARCH (RFC 3501 §6.4.4) as
 * primitives over a parsed message; the evaluator of a whole search key
 * tree combines them.
 *
 * Text matching: header values are RFC 2047-decoded, bodies are
 * transfer-decoded (base64, quoted-printable) and every text is converted to
 * UTF-8 with iconv from its declared charset (unknown charsets are taken as
 * they are). A needle matches as a substring after both sides are
 * lowercased: ASCII always, other characters with the simple one-to-one
 * mappings of the C.UTF-8 locale (É/é, Ж/ж match; "ß" does not match "SS",
 * there is no full case folding nor normalisation). The needle is UTF-8. */
#ifndef AG_SEARCH_MATCH_H
#define AG_SEARCH_MATCH_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "protocol/agbuf.h"
#include "protocol/mime.h"

/* Appends the case-folded form of UTF-8 text (as above): what a needle
 * and a haystack are compared in. */
void search_fold(struct agbuf *out, const char *text, size_t len);
/* Appends the RFC 2047-decoded UTF-8 text of an unfolded header value
 * (mime_header_field.value); folded (search_fold), it is what a header
 * key's folded needle is looked for in. */
void search_decode_header_value(struct agbuf *out, const char *value, size_t len);

/* HEADER field needle: 1 when some `field` header of the message contains
 * `needle` (any such header when needle is ""), else 0. */
int search_match_header(const struct mime_message *msg, const char *data, size_t len,
			const char *field, const char *needle);
/* BODY needle: 1 when the decoded text of a text part contains it. */
int search_match_body(const struct mime_message *msg, const char *data, size_t len, const char *needle);
/* TEXT needle: 1 when the decoded header or body contains it. */
int search_match_text(const struct mime_message *msg, const char *data, size_t len, const char *needle);

/* Parses an RFC 2822 date-time (obsolete forms, zone names, missing
 * weekday or seconds) into the day it names in its own zone, as days since
 * 1970-01-01. Returns 0, or -1 when it is not a date. */
int search_parse_date(const char *value, size_t len, int64_t *day);
/* The day of the Date header for SENTBEFORE / SENTON / SENTSINCE; -1 when
 * the message has no valid Date. */
int search_sent_date(const struct mime_message *msg, const char *data, size_t len, int64_t *day);
/* The day of an internal date (time + its zone offset in minutes) for
 * BEFORE / ON / SINCE. */
int64_t search_internal_day(time_t when, int zone_minutes);
/* LARGER n / SMALLER n on RFC822.SIZE. */
int search_larger(const struct mime_message *msg, uint64_t n);
int search_smaller(const struct mime_message *msg, uint64_t n);

#endif
