/* engine_util.h - what the engine tests share: a fresh memory store loaded
 * through the real loader, a settable clock, a quiet log, and the CUnit
 * tests' environment: an engine over that store behind the wrappers. */
#ifndef AG_ENGINE_UTIL_H
#define AG_ENGINE_UTIL_H

#include <stdint.h>

#include "host/mail/mail.h"
#include "sdk/wrappers/ag_wrap.h"
#include "tests/lib/cu_main.h"

/* Loads build/drivers/aerogram_memory.so (or $AG_MEMORY_DRIVER) with a new,
 * empty store. Exits the test program on failure. */
struct ag_driver *eu_load_memory(void);

/* A clock the test moves by hand. */
struct eu_clock {
	uint64_t now;
	int64_t skew;
	uint64_t *shared; /* when set, now = *shared + skew */
};
uint64_t eu_clock_ms(void *arg);

/* Engine options with the given clock and seed, no poller, quiet log. */
struct mail_engine_options eu_options(struct eu_clock *clock, uint64_t seed);
/* Warnings logged by engines made with eu_options, and whether to print them. */
extern unsigned long eu_warnings;
extern int eu_verbose;

/* The seeds a simulation runs, from its options: --seeds N (1000), --first S
 * (1), --seed S (that one only, verbose), -v (verbose, the engines' log too)
 * and the program's own flag (NULL: none), which sets *flag_set. Prints the
 * usage and returns 2 on anything else; 0. */
/* The simulations' random numbers: splitmix64 over *state. */
uint64_t eu_rnd(uint64_t *state);

struct eu_seeds {
	uint64_t first, count;
	int one, verbose;
};
int eu_seed_args(int argc, char **argv, const char *flag, int *flag_set, struct eu_seeds *out);

/* An engine over a fresh memory store, through the fault wrapper (hidden
 * capabilities, injected failures) under the counting wrapper. */
struct eu_env {
	struct ag_driver *drv;
	struct agw_wrapper *cw; /* counting */
	struct agw_wrapper *fw; /* faults, under the counter */
	struct ag_store st;
	struct eu_clock clk;
	struct mail_engine *eng;
};

/* 1 in the suites whose store offers no conditional writes and, as on
 * Garage, no snapshot batches either; the two suite set-ups set it. */
extern int eu_no_cas;
int eu_suite_cas(void);
int eu_suite_turns(void);
/* Adds the suites NAME (with conditional writes) and "NAME, without
 * conditional writes" over one table of tests; each leaves out the tests
 * of the other's list (NULL-terminated, or NULL). */
void eu_add_suites(const char *name, const struct agt_test *tests, const CU_TestFunc *cas_only,
                   const CU_TestFunc *turns_only);
/* The main of a program of those two suites: agt_init, eu_add_suites,
 * agt_run. */
int eu_main(int argc, char **argv, const char *name, const struct agt_test *tests, const CU_TestFunc *cas_only,
            const CU_TestFunc *turns_only);

/* Opens an environment whose store hides these capability bits (and
 * conditional writes when eu_no_cas), whose engine keeps expunged messages
 * retention_ms long; a CUnit failure, fatal, when the engine does not open
 * or does not see the store's conditional writes as it should. */
void eu_env_open_with(struct eu_env *e, uint64_t seed, uint64_t hide, uint64_t retention_ms);
void eu_env_open(struct eu_env *e, uint64_t seed);
/* Another engine (another "daemon") on the same store and clock. */
struct mail_engine *eu_env_engine(struct eu_env *e, uint64_t seed);
void eu_env_close(struct eu_env *e);
/* Calls of every operation the counting wrapper saw. */
uint64_t eu_total_calls(struct eu_env *e);

/* A real-time engine on st with a poller (poll_timeout_ms), the quiet log;
 * a fatal CUnit failure when it does not open. */
struct mail_engine *eu_poller_engine(const struct ag_store *st, uint64_t seed, uint32_t poll_timeout_ms);

/* Appends n small messages ("Subject: i") with these flags: 0, or -1. */
int eu_append_n(struct mail_mailbox *mb, int n, uint32_t flags);
/* Opens the mailbox and appends n small messages to it; a fatal CUnit
 * failure when either fails. */
struct mail_mailbox *eu_box(struct mail_engine *eng, const char *user, const char *name, int n);
/* A view of mb that claims no \Recent; a fatal CUnit failure otherwise. */
struct mail_view *eu_view(struct mail_mailbox *mb);
/* The UIDs of the view's messages in order (*n of them, room for n + 1),
 * to free(); the simulations use it too. */
uint32_t *eu_view_uids(struct mail_view *v, uint32_t *n);
/* A view of mb (claiming no \Recent) in *v, and its UIDs as eu_view_uids
 * gives them; NULL when the view does not open. */
uint32_t *eu_view_open_uids(struct mail_mailbox *mb, struct mail_view **v, uint32_t *n);
/* Opens the user's mailbox name in a new engine on e's store and checks
 * that it sees what mb (the same mailbox) sees: EXISTS, UIDNEXT. */
void eu_check_fresh_engine(struct eu_env *e, uint64_t seed, const char *user, const char *name,
                           struct mail_mailbox *mb);

struct cbuf;
struct uidx_op;
struct uidx_state;
/* A DEL op of n messages whose ids are left to fill; uidx_op_free frees it. */
struct uidx_op *eu_del_op(size_t n);
/* Encodes op or s into b (empty), checks the format version (the second
 * byte) and returns what decoding b gives; fatal CUnit failures when
 * decoding fails. */
struct uidx_op *eu_op_roundtrip(const struct uidx_op *op, int version, struct cbuf *b);
struct uidx_state *eu_state_roundtrip(const struct uidx_state *s, int version, struct cbuf *b);
/* An encoded op, or checkpoint, damaged: every cut short is refused, every
 * byte flipped is refused or decodes to something that frees cleanly. The
 * bytes are as they were on return. */
void eu_check_op_damage(struct cbuf *b);
void eu_check_state_damage(struct cbuf *b);

#endif
