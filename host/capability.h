/* capability.h - the CAPABILITY list, from one table. */
#ifndef AG_HOST_CAPABILITY_H
#define AG_HOST_CAPABILITY_H

#include "protocol/agbuf.h"

/* What decides the list of one connection at one moment. */
struct ag_capability_context {
	int authenticated;   /* after LOGIN / AUTHENTICATE */
	int starttls;        /* STARTTLS can be offered (TLS configured, not yet active) */
	int plaintext_ok;    /* LOGIN / AUTH=PLAIN allowed on this connection */
};

/* Appends the space-separated capability names (without "* CAPABILITY ")
 * that `ctx` calls for: only implemented ones, in the table's order. */
void ag_capability_append(struct agbuf *out, const struct ag_capability_context *ctx);

#endif
