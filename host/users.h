/* users.h - the users file: one INI section per user with its password hash. */
#ifndef AG_HOST_USERS_H
#define AG_HOST_USERS_H

#include <stddef.h>

/* A loaded users file. Immutable once loaded and reference-counted, so a
 * SIGHUP reload can replace it while worker threads still verify against
 * the old one. */
struct ag_users;

/*
 * Reads `path` strictly: every section is a user name, whose only key is
 * `password` = an Argon2 PHC string ($argon2id$...) or {PLAIN}text (logged
 * as a warning: for tests and demos only). Also prepares the dummy hash that
 * unknown users are checked against. Slow (one Argon2 hash): call it off the
 * event loop. On failure returns -1 and writes one line into err. On success
 * *out holds one reference for the caller (ag_users_unref).
 */
int ag_users_load(const char *path, struct ag_users **out, char *err, size_t errlen);
/* Takes one more reference; returns `users`. Safe from any thread. */
struct ag_users *ag_users_ref(struct ag_users *users);
/* Drops a reference; the last one frees the table. Safe from any thread. */
void ag_users_unref(struct ag_users *users);
/* How many users the file declares. */
size_t ag_users_count(const struct ag_users *users);
/*
 * Returns 1 when `password` is the password of `user`, else 0. An unknown
 * user costs one Argon2 verification as a known one does, so timing does not
 * tell which names exist. Slow: run it on a worker thread.
 */
int ag_users_verify(const struct ag_users *users, const char *user, size_t user_len,
                    const char *password, size_t password_len);

#endif
