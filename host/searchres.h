/* searchres.h - the saved search result of RFC 5182 (SEARCHRES).
 *
 * SEARCH ... RETURN (SAVE) keeps the UIDs it found in the session; "$" in a
 * later sequence set stands for them. The session holds them as UIDs, so a
 * message expunged since simply drops out, and "$" in a command that takes
 * sequence numbers names the current numbers of the UIDs still there. */
#ifndef AG_SEARCHRES_H
#define AG_SEARCHRES_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/imap_parse.h"

struct ag_session;

/* Before a command runs: every "$" set of it gets the saved UIDs as its
 * ranges (set->saved stays true: the ranges are UIDs, whatever the
 * command takes). An empty result gives an empty set. */
void ag_searchres_bind(struct ag_session *s, struct imap_command *cmd);
/* Replaces the saved result by `uids` (ascending, copied). 0, or -1 when
 * memory is exhausted (the result is then empty). */
int ag_searchres_save(struct ag_session *s, const uint32_t *uids, size_t n);
/* Empties it: SELECT, EXAMINE, CLOSE, UNSELECT, and a failed SEARCH that
 * was to save (RFC 5182 2.1). */
void ag_searchres_reset(struct ag_session *s);

#endif
