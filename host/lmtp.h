/* lmtp.h - LMTP delivery (RFC 2033) into the users' INBOX.
 *
 * The `[lmtp] listen` addresses (TCP, or unix:/path, the way Postfix hands
 * mail over) are served on the root event loop; each message is stored
 * on the root loop's workers, one mail_append per recipient. */
#ifndef AG_HOST_LMTP_H
#define AG_HOST_LMTP_H

#include <stddef.h>

struct ag_config;
struct ag_server;
struct ag_lmtp;

/* LMTP connections served at once; one more is told 421 and closed. */
#define AG_LMTP_MAX_CONNECTIONS 256
/* Longest command line (RFC 5321 allows 512; parameters make it longer). */
#define AG_LMTP_LINE_MAX 4096

/* Logs what deserves a warning in [lmtp]: an address that is not loopback
 * (LMTP has no authentication). Start-up and aerogramd -t call it. */
void ag_lmtp_check(const struct ag_config *cfg);
/* Opens the [lmtp] listeners on the root loop `srv` (nothing when [lmtp]
 * listen is not set). A stale unix socket is replaced, one that a process
 * still listens on is an error. On failure writes one line into err and
 * returns -1. */
int ag_lmtp_open(struct ag_server *srv, char *err, size_t errlen);
/* SIGTERM: no new connections (the unix sockets are removed); idle
 * connections are told 421 and closed; a delivery in flight ends, its
 * replies are sent, then 421. Every connection counts in srv->n_sessions
 * until it is freed, so the loop ends when the last one is gone. */
void ag_lmtp_shutdown(struct ag_server *srv);
/* Frees what is left, once the workers are stopped. */
void ag_lmtp_free(struct ag_server *srv);

#endif
