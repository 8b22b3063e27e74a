/* search_fields.h - what the header keys of SEARCH look at in one message,
 * taken from its header block in one pass and kept in one allocation.
 *
 * FROM, TO, CC, BCC, SUBJECT and HEADER <field> compare a folded needle
 * with the folded text of the message's fields of one name
 * (search_fold_header_value: RFC 2047 decoded, UTF-8, case folded). That
 * text depends on the message alone, so it can be made once per message
 * and field name and matched many times: per name asked for, this keeps
 * whether the message has such a field and the folded text of each of
 * them, each followed by a NUL. A needle holds no NUL, so one substring
 * search over the whole run never matches across two fields. It also keeps
 * the day of the Date header (SENTBEFORE, SENTON, SENTSINCE). */
#ifndef AG_SEARCH_FIELDS_H
#define AG_SEARCH_FIELDS_H

#include <stddef.h>
#include <stdint.h>

/* The fields of one name. Offsets count from the start of the
 * search_fields allocation, so that a copy is one memcpy. */
struct search_field {
	uint32_t name_off, name_len;  /* the lowercase name, NUL-terminated */
	uint32_t text_off, text_len;  /* the folded value of each field, each followed by a NUL */
	uint32_t present;             /* the message has at least one such field */
};

struct search_fields {
	size_t bytes;         /* size of the allocation, for copies and cache accounting */
	int has_sent_day;     /* the (last) Date header holds a date */
	int64_t sent_day;     /* its day, days since 1970-01-01 in its own zone */
	size_t count;
	struct search_field field[]; /* in the order the names were given */
};

/* A name ending in one of these suffixes stands for the fields of the name
 * before it, in the form Dovecot searches them for a key:
 * - "from" SEARCH_FIELD_ADDRESS: read as address lists and written back
 *   (mime_address_write: comments dropped), as FROM, TO, CC, BCC match;
 * - "subject" SEARCH_FIELD_LWSP: runs of blanks as one space, leading ones
 *   dropped, as SUBJECT matches.
 * The plain name keeps the text as written, as HEADER matches it. No header
 * field name holds a ':', so such a name never means a field of its own. */
#define SEARCH_FIELD_ADDRESS ":addr"
#define SEARCH_FIELD_LWSP ":lwsp"

struct agbuf;
enum search_form { SEARCH_FORM_TEXT, SEARCH_FORM_ADDRESS, SEARCH_FORM_LWSP };
/* The form `name` asks for; *base_len is the length of the field name. */
enum search_form search_field_form(const char *name, size_t len, size_t *base_len);
/* Appends the RFC 2047-decoded UTF-8 text of one unfolded field value in
 * that form (search_decode_header_value after the rewrite). */
void search_field_decode(struct agbuf *out, enum search_form form, const char *value, size_t len);

/* Extracts the fields named by names[0, count) (any case; duplicates are
 * kept once) and the Date header's day from the header block
 * header[0, len). Returns one allocation (free with free()), NULL when out
 * of memory. */
struct search_fields *search_fields_extract(const char *header, size_t len, const char *const *names,
					    size_t count);
/* The entry of field `name` (lowercase), or NULL when it was not asked
 * for at extraction; borrowed from f. */
const struct search_field *search_fields_find(const struct search_fields *f, const char *name, size_t name_len);
/* 1 when a field of the entry `field` of f contains the folded needle
 * (search_fold); an empty needle matches when the message has such a field
 * at all. */
int search_field_contains(const struct search_fields *f, const struct search_field *field, const char *folded,
			  size_t folded_len);
/* A copy of f (free with free()), NULL when out of memory. */
struct search_fields *search_fields_dup(const struct search_fields *f);

#endif
