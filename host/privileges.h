/* privileges.h - [imap] user: aerogramd started as root runs as that user. */
#ifndef AG_HOST_PRIVILEGES_H
#define AG_HOST_PRIVILEGES_H

#include <stddef.h>

#include "host/config_file.h"

/* Before anything touches the store: with [imap] user set and aerogramd
 * running as root, becomes that user (its group and supplementary groups)
 * keeping only CAP_NET_BIND_SERVICE, so that the listeners can still bind
 * ports below 1024 while every file (the store, the LMTP socket) is made
 * and opened as the user (`aerogramd -t` switches too: it checks what the
 * user can read and creates nothing as root). Not root: fine when the user
 * is the one running, else an error. On failure writes one line into err
 * and returns -1. */
int ag_privileges_drop(const struct ag_config *cfg, char *err, size_t errlen);
/* Once every socket is bound: gives up the capability kept for binding
 * (nothing when ag_privileges_drop switched no user). */
void ag_privileges_bound(void);

#endif
