/*
 * ctl.h - what aerogramctl's subcommands share.
 *
 * A subcommand that works on mail opens what aerogramd opens, the same way:
 * the configuration file (config_file.c, strictly), the storage driver it
 * names (sdk/loader/ag_loader.c: ABI checks, the driver's own keys) and the store,
 * and a mail engine over that store. Several engines on one store is the
 * engine's normal case (host/mail/README.md: every write is conditional or
 * takes its turn, every reader converges through the log), so aerogramctl
 * is one more engine beside the running daemons: nothing needs stopping.
 *
 *     struct ctl c;
 *     char err[1024];
 *     if (ctl_open(&c, config_path, err, sizeof(err)) != 0) {
 *             ctl_error("%s", err);
 *             return 1;
 *     }
 *     ... mail_list(c.engine, user, ...), mail_mailbox_open(c.engine, ...) ...
 *     ctl_close(&c);
 *
 * Subcommands are functions `int f(struct ctl *c, int argc, char **argv)`
 * listed in the table of aerogramctl.c (name, function, what it opens, one
 * line of help, usage); argv[0] is the subcommand's name, options follow
 * (getopt_long, optind reset by the framework, -c FILE already taken out).
 * They print errors with ctl_error (one line, "aerogramctl: ..."), and
 * return 0, 1 (failed) or 2 (bad usage). The framework answers `--help`
 * itself from the table, opens what the entry asks for before the call and
 * closes it after. A subcommand that works on a second store (another
 * configuration file) opens it with ctl_open on a struct ctl of its own.
 */
#ifndef AG_HOST_CTL_H
#define AG_HOST_CTL_H

#include <stddef.h>
#include <stdint.h>

#include "host/config_file.h"
#include "sdk/loader/ag_loader.h"
#include "host/mail/mail.h"

struct ctl {
	struct ag_config config;    /* the configuration file, as aerogramd reads it */
	int have_config;            /* config is loaded (ctl_open, ctl_open_config) */
	struct ag_driver *driver;   /* the loaded driver (ctl_open only) */
	struct ag_store *store;     /* its open store (owned by driver) */
	struct mail_engine *engine; /* an engine over the store (ctl_open only) */
	int read_only;              /* set by a subcommand that only reads: ctl_close
	                             * writes no checkpoint either */
	int keep_nothing;           /* set before ctl_open_store: expunged messages
	                             * are not kept for undelete (user del --purge) */
};

/* Loads the configuration file, the storage driver and its store, and
 * starts a mail engine over it (with its poller, as a daemon's). On failure
 * returns -1 with one line in err (the file and line, or the driver's
 * reason) and leaves nothing open. */
int ctl_open(struct ctl *c, const char *config_path, char *err, size_t errlen);
/* Loads the configuration file only (subcommands on the users file). */
int ctl_open_config(struct ctl *c, const char *config_path, char *err, size_t errlen);
/* After ctl_open_config: the driver, its store and the engine (ctl_open is
 * both). On failure -1 with one line in err; the configuration stays. */
int ctl_open_store(struct ctl *c, char *err, size_t errlen);
/* Checkpoints the mailboxes the engine wrote to (so that daemons open them
 * from a checkpoint), stops the engine, closes the store, unloads the
 * driver, frees the configuration. Safe on a zeroed or failed struct ctl. */
void ctl_close(struct ctl *c);

/* Prints "aerogramctl: <message>" and a newline on stderr. */
void ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A line of text for an engine or driver error code (with the driver's own
 * message for this thread's last failed call when c has a store). */
const char *ctl_strerror(const struct ctl *c, int rc, char *buf, size_t len);

/* Whether `user` is declared in the users file of c's configuration:
 * 0 when it is; -1 with one line in err when it is not or the file does not
 * load. Subcommands that take a user name check it first, so a typo does
 * not create mail for nobody. */
int ctl_user_known(const struct ctl *c, const char *user, char *err, size_t errlen);

/* The names of the users file's users, in file order (*names and each
 * name malloc'd; free with ctl_users_free). 0, or -1 with one line in err
 * (a users file the daemon would refuse is an error). */
int ctl_users_list(const struct ctl *c, char ***names, size_t *n, char *err, size_t errlen);
void ctl_users_free(char **names, size_t n);

/* A mailbox name as an operator types it (UTF-8, '.' between levels,
 * INBOX in any case) to the form the engine stores (modified UTF-7, RFC
 * 3501 5.1.3). Returns a malloc'd string, or NULL (not UTF-8, or empty). */
char *ctl_mailbox_name(const char *utf8);
/* A stored name back to UTF-8 for display (malloc'd; the name itself when
 * it is not valid modified UTF-7). */
char *ctl_display_name(const char *stored);

/* SIGINT and SIGTERM: after ctl_catch_interrupt, the first one only sets a
 * flag that long subcommands poll between batches (ctl_interrupted); the
 * second one ends the process as the default action would. */
void ctl_catch_interrupt(void);
int ctl_interrupted(void);

/* Writes all of p to fd, again after EINTR and short writes; 0 or -1
 * (errno set). */
int ctl_write_all(int fd, const char *p, size_t len);

/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t ctl_now_ms(void);

#endif
