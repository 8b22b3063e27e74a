/* users.h - the users file: one INI section per user with its password hash. */
#ifndef AG_HOST_USERS_H
#define AG_HOST_USERS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The largest Argon2 costs a hash in the users file may ask for: memory in
 * KiB (256 MiB), passes, lanes. Every login of that user, and of unknown
 * names, pays them; aerogramctl hash-password writes m=65536,t=3,p=1. */
#define AG_ARGON2_MAX_M_KIB 262144u
#define AG_ARGON2_MAX_T 16u
#define AG_ARGON2_MAX_P 16u

/* A loaded users file. Immutable once loaded and reference-counted, so a
 * SIGHUP reload can replace it while worker threads still verify against
 * the old one. */
struct ag_users;

/*
 * Reads `path` strictly: every section is a user name, with the key
 * `password` = an Argon2 PHC string ($argon2id$..., costs within the bounds
 * above) or {PLAIN}text, not empty (logged as a warning: for tests and demos
 * only), and optionally `quota` (bytes, with K, M, G or T) and
 * `quota_messages`, each a number from 1 or `unlimited`, and `address` = the
 * addresses LMTP delivers to the user besides local@<[lmtp] domains> (each
 * valid, and listed once in the file). A value runs to the end of its line (no inline comments). A user
 * without a password, a key set twice, a directory: refused. A file readable
 * by others is logged as a warning. Also prepares the dummy hash that
 * unknown users are checked against. Slow (one Argon2 hash): call it off the
 * event loop. On failure returns -1 and writes one line (file, line,
 * problem) into err. On success *out holds one reference for the caller
 * (ag_users_unref).
 */
int ag_users_load(const char *path, struct ag_users **out, char *err, size_t errlen);
/* The parsing part of ag_users_load alone, on an open stream (no dummy
 * hash: such a table can be freed, not verified against). `path` is for
 * messages. */
int ag_users_parse(FILE *f, const char *path, struct ag_users **out, char *err, size_t errlen);
/* A user's own quota (`quota = 10G`, `quota_messages = 100000` in its
 * section): has_* says the file sets it, and a value of 0 there means
 * `unlimited` (above any [auth] default). */
struct ag_user_quota {
	int has_bytes, has_messages;
	uint64_t bytes, messages;
};
/* Fills *out with user's quota keys; -1 (and nothing set) for an unknown
 * user. */
int ag_users_quota(const struct ag_users *users, const char *user, struct ag_user_quota *out);
/* 1 when `name` may name a user: 1 to 255 letters, digits and . _ - + @
 * (names become key prefixes in the store: no '/', no controls, no spaces). */
int ag_users_valid_name(const char *name);
/* Takes one more reference; returns `users`. Safe from any thread. */
struct ag_users *ag_users_ref(struct ag_users *users);
/* Drops a reference; the last one frees the table. Safe from any thread. */
void ag_users_unref(struct ag_users *users);
/* The user that lists `address` (any case) in its `address` line, or NULL.
 * The name belongs to the table. */
const char *ag_users_find_address(const struct ag_users *users, const char *address, size_t len);
/* The user called `name`: the exact name, else the one user whose name
 * differs from it in case only (NULL when there are several, or none). The
 * name belongs to the table. */
const char *ag_users_find_name(const struct ag_users *users, const char *name, size_t len);
/* How many users the file declares. */
size_t ag_users_count(const struct ag_users *users);
/* The name of user i (0 to count - 1) in file order, or NULL; owned by
 * the table. */
const char *ag_users_name(const struct ag_users *users, size_t i);
/*
 * Returns 1 when `password` is the password of `user`, else 0. An unknown
 * user costs one Argon2 verification as a known one does, so timing does not
 * tell which names exist. Slow: run it on a worker thread.
 */
int ag_users_verify(const struct ag_users *users, const char *user, size_t user_len,
                    const char *password, size_t password_len);

#endif
