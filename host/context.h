/* context.h - the updating search contexts of RFC 5267 (CONTEXT=SEARCH,
 * CONTEXT=SORT).
 *
 * SEARCH / SORT ... RETURN (UPDATE ...) leaves a context in the session: its
 * tag, its own copy of the search program and the result the client holds
 * (UIDs, in the requested order). Each time the session brings its view up
 * to date with something to tell (ag_session_update_view), every context
 * runs its search again on the new view and the difference is told as
 * "* ESEARCH (TAG "t") [UID] REMOVEFROM (...)" before the EXPUNGEs (so that
 * its sequence numbers are still valid) and "ADDTO (...)" after the EXISTS
 * and FETCHes. A SEARCH context gives position 0 and its sets in mailbox
 * order; a SORT context gives the positions in its sort order.
 *
 * Choices where the RFC leaves room:
 * - at most AG_CONTEXT_MAX contexts per session (Dovecot allows 10 too); one
 *   more gets "* NO [NOUPDATE "tag"]" and its other return options;
 * - sequence numbers in the search program stand for the messages they
 *   named when the command came (RFC 5267 4.3): the copy holds their UIDs;
 * - a context whose search fails on a later update (the store did not
 *   answer) ends with "* NO [NOUPDATE "tag"]", since what the client holds
 *   could no longer be kept right;
 * - OLDER / YOUNGER results that change with time alone are not told: a
 *   context is looked at again only when the mailbox changes;
 * - CANCELUPDATE with a tag that names no context answers NO and cancels
 *   nothing.
 *
 * The cost: one search of the mailbox per context each time something
 * changed (the search cache makes a header or flag search a hash lookup per
 * message), and for a SORT context to which messages are added, the sort
 * again (summaries of every match). Contexts live while the mailbox stays
 * selected. */
#ifndef AG_HOST_CONTEXT_H
#define AG_HOST_CONTEXT_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/agbuf.h"
#include "protocol/imap_parse.h"

struct ag_session;

#define AG_CONTEXT_MAX 10

struct ag_context;

/* 1 when `tag` names a context of the session (a new UPDATE with it is BAD). */
int ag_context_tag_in_use(const struct ag_session *s, const char *tag);
/* From the storage run of the searching command in flight, once its result
 * `uids` (in the requested order) is final: keeps a context, or writes
 * "* NO [NOUPDATE ...]" to s->reply when the session has too many (or
 * memory is short). */
void ag_context_add(struct ag_session *s, const uint32_t *uids, size_t n);
/* Ends every context (the mailbox is left). */
void ag_context_free_all(struct ag_session *s);
/* Ends every context, telling the client with "* NO [NOUPDATE ...]" each. */
void ag_context_end_all(struct ag_session *s, struct agbuf *out);
/* After the view was brought up to date: `before` are the UIDs the view
 * held before (by sequence number). Writes each context's REMOVEFROM to
 * `pre` and ADDTO to `post`. */
void ag_context_update(struct ag_session *s, const uint32_t *before, size_t n_before, struct agbuf *pre,
		       struct agbuf *post);

#endif
