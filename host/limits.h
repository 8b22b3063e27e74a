/* limits.h - what one client may hold at once, shared by every event loop:
 * connections per address, sessions per user, and password checks, which
 * run on a small pool of their own with a bounded number in flight and at
 * most a few per address. */
#ifndef AG_HOST_LIMITS_H
#define AG_HOST_LIMITS_H

#include <event2/event.h>

struct ag_limits;

/* Password checks: threads, checks queued or running at most in the whole
 * daemon, and at most per client address. */
#define AG_AUTH_THREADS 2
#define AG_AUTH_IN_FLIGHT_MAX 64
#define AG_AUTH_PER_ADDRESS 2

/* A password check: `run` on an authentication thread, then `done` made
 * active (on the loop that created it). The struct belongs to the caller
 * and must live until `done` ran. */
struct ag_auth_job {
	void (*run)(void *arg);
	void *arg;
	struct event *done;
	struct ag_auth_job *next; /* private */
};

/* Starts the authentication threads; NULL on failure. */
struct ag_limits *ag_limits_new(void);
/* Stops the authentication threads: the checks running finish, queued ones
 * are dropped (their `done` never runs). Idempotent. */
void ag_limits_stop(struct ag_limits *l);
/* Stops and frees. */
void ag_limits_free(struct ag_limits *l);

/* Counts one more connection from `address` unless `max` are open already
 * (returns -1 then). *open_now: the count before. */
int ag_limits_connection_add(struct ag_limits *l, const char *address, unsigned max, unsigned *open_now);
void ag_limits_connection_remove(struct ag_limits *l, const char *address);
/* The same for the sessions of one user. */
int ag_limits_user_add(struct ag_limits *l, const char *user, unsigned max, unsigned *open_now);
void ag_limits_user_remove(struct ag_limits *l, const char *user);

enum ag_auth_slot { AG_AUTH_SLOT_TAKEN, AG_AUTH_SLOT_ADDRESS_BUSY, AG_AUTH_SLOT_FULL };
/* Takes a slot for one password check from `address`: refused when that
 * address has AG_AUTH_PER_ADDRESS in flight or the daemon AG_AUTH_IN_FLIGHT_MAX. */
enum ag_auth_slot ag_limits_auth_acquire(struct ag_limits *l, const char *address);
/* Gives the slot back (after the check's `done`). */
void ag_limits_auth_release(struct ag_limits *l, const char *address);
/* Queues a check whose slot is taken (so the queue is bounded). */
void ag_limits_auth_submit(struct ag_limits *l, struct ag_auth_job *job);

#endif
