/* engine_util.c - see engine_util.h. */
#include "tests/engine/engine_util.h"

#include <stdio.h>
#include <stdlib.h>

unsigned long eu_warnings;
int eu_verbose;

struct ag_driver *eu_load_memory(void)
{
	const char *path = getenv("AG_MEMORY_DRIVER");
	if (path == NULL)
		path = "build/drivers/aerogram_memory.so";
	struct ag_driver *drv = NULL;
	char err[512];
	if (ag_driver_load(path, NULL, NULL, 0, &drv, err, sizeof(err)) != 0) {
		fprintf(stderr, "cannot load the memory driver: %s\n", err);
		exit(2);
	}
	return drv;
}

uint64_t eu_clock_ms(void *arg)
{
	struct eu_clock *c = arg;
	uint64_t base = c->shared ? *c->shared : c->now;
	return (uint64_t)((int64_t)base + c->skew);
}

static void quiet_log(void *arg, int level, const char *line)
{
	(void)arg;
	if (level <= 1)
		eu_warnings++;
	if (eu_verbose)
		fprintf(stderr, "engine log %d: %s\n", level, line);
}

/* A sleep moves the test's clock instead of waiting. */
static void clock_sleep(void *arg, uint32_t ms)
{
	struct eu_clock *c = arg;
	if (c->shared)
		__atomic_add_fetch(c->shared, ms, __ATOMIC_SEQ_CST);
	else
		__atomic_add_fetch(&c->now, ms, __ATOMIC_SEQ_CST);
}

struct mail_engine_options eu_options(struct eu_clock *clock, uint64_t seed)
{
	struct mail_engine_options o = { 0 };
	o.clock_ms = eu_clock_ms;
	o.clock_arg = clock;
	o.sleep_ms = clock ? clock_sleep : NULL;
	o.sleep_arg = clock;
	o.seed = seed;
	o.no_poller = 1;
	o.log = quiet_log;
	return o;
}
