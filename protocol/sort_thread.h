/* sort_thread.h - the message facts SORT and THREAD (RFC 5256) order by,
 * and the two threading algorithms, over plain data: the host gathers one
 * record per message (from the summaries, never the bodies) and these
 * functions do the rest.
 *
 * Collation: i;ascii-casemap (RFC 4790). Strings are compared bytewise
 * after a-z were mapped to A-Z; other bytes (UTF-8 included) compare as
 * they are. So "[" and "_" sort after letters, as with Dovecot. */
#ifndef AG_SORT_THREAD_H
#define AG_SORT_THREAD_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/agbuf.h"
#include "protocol/mime.h"

/* Appends the base subject (RFC 5256 section 2.1) of an unfolded Subject
 * value: RFC 2047 decoded, blanks collapsed, the reply and forward
 * artifacts removed, then case-mapped (i;ascii-casemap). Returns 1 when
 * the subject is a reply or forward (a subj-refwd, a "(fwd)" trailer or a
 * "[fwd: ...]" wrapper was removed), else 0. out gets no bytes for an
 * empty base subject. */
int sort_base_subject(struct agbuf *out, const char *value, size_t len);

/* Appends text case-mapped as i;ascii-casemap compares it. */
void sort_casemap(struct agbuf *out, const char *text, size_t len);

/* Parses an RFC 5322 date-time (obsolete forms: two-digit years, zone
 * names, missing weekday or seconds; a missing zone is +0000) into
 * seconds since the epoch, UTC. Returns 0, or -1 when it is not one. */
int sort_parse_date(const char *value, size_t len, int64_t *when);

/* SORT FROM / TO / CC: the case-mapped local part (addr-mailbox) of the
 * first address of a list; nothing for an empty list. A group's first
 * entry is its name, which stands in the mailbox position (Dovecot does
 * the same). */
void sort_address_key(struct agbuf *out, const struct mime_address *list);

/* SORT DISPLAYFROM / DISPLAYTO (RFC 5957): of the first address, its
 * RFC 2047-decoded display name when it has a non-empty one, else its
 * addr-spec (mailbox@domain, or the group name); case-mapped. */
void sort_display_key(struct agbuf *out, const struct mime_address *list);

/* Finds the next msg-id ("<local@domain>") in [*pos, len) of value. On
 * success stores its text between the brackets, blanks removed, in out
 * (replacing what it held), moves *pos past it and returns 1; 0 when
 * there is none. */
int sort_next_msgid(const char *value, size_t len, size_t *pos, struct agbuf *out);

/* One message for THREAD. */
struct thread_msg {
	uint32_t num;              /* what the response names: sequence number or UID */
	int64_t date;              /* sent date (Date, else the internal date), seconds UTC */
	const char *subject;       /* base subject, case-mapped; "" when none */
	int reply;                 /* the subject is a reply or forward */
	const char *message_id;    /* without brackets; NULL when none or invalid */
	const char *const *refs;   /* References (else In-Reply-To's first id), oldest first */
	size_t n_refs;
};

/* THREAD ORDEREDSUBJECT and REFERENCES over msgs[0, n), given in mailbox
 * order (which breaks ties of dates, and decides which of the messages
 * sharing a Message-ID keeps it). Appends the thread lists, without the
 * "* THREAD" prefix (" (1)(2 3)", nothing when n is 0). Return 0, or -1
 * when memory runs out. */
int thread_orderedsubject(struct agbuf *out, const struct thread_msg *msgs, size_t n);
int thread_references(struct agbuf *out, const struct thread_msg *msgs, size_t n);

#endif
