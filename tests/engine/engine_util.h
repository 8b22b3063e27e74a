/* engine_util.h - what the engine tests share: a fresh memory store loaded
 * through the real loader, a settable clock, a quiet log. */
#ifndef AG_ENGINE_UTIL_H
#define AG_ENGINE_UTIL_H

#include <stdint.h>

#include "host/mail/mail.h"

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

#endif
