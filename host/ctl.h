/* ctl.h - what aerogramctl's subcommands share: the configuration, the
 * loaded driver and a mail engine over its store.
 *
 * PROVISIONAL: a minimal version so that the store subcommands
 * (ctl_store.c) build and are tested on their own; the aerogramctl
 * framework brings the full one, whose definitions replace these (the
 * subcommands use only the fields below). */
#ifndef AG_HOST_CTL_H
#define AG_HOST_CTL_H

#include <stddef.h>

#include "host/config_file.h"
#include "host/driver_loader.h"
#include "host/mail/mail.h"

struct ctl {
	struct ag_config *cfg;   /* the configuration file read (-c) */
	struct ag_driver *drv;   /* its storage driver, with the store open */
	struct mail_engine *eng; /* an engine over that store, without a poller */
};

/* Reads config_path, loads its driver and opens the store, and starts an
 * engine over it (with the file's expunge_retention). On failure returns
 * -1 with one line in err. */
int ctl_open(struct ctl *c, const char *config_path, char *err, size_t errlen);
/* Checkpoints what the engine wrote, then frees everything ctl_open made. */
void ctl_close(struct ctl *c);

#endif
