/* engine.c - the engine object: clock, randomness, logging, non-blocking attempts.
 *
 * Time and randomness come from the options so that K engines in one
 * process behave like K daemons and a simulation replays from its seed. */
#include "host/mail/mail_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t real_clock(void *arg)
{
	(void)arg;
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static void stderr_log(void *arg, int level, const char *line)
{
	(void)arg;
	static const char *const names[] = { "error", "warning", "info", "debug" };
	fprintf(stderr, "aerogram: mail: %s: %s\n", level >= 0 && level < 4 ? names[level] : "log", line);
}

int mail_engine_new(const struct ag_store *store, const struct mail_engine_options *opt,
                    struct mail_engine **out)
{
	*out = NULL;
	if (store == NULL || store->driver == NULL)
		return AEROGRAM_EINVAL;
	struct mail_engine *eng = calloc(1, sizeof(*eng));
	if (eng == NULL)
		return AEROGRAM_EINTERNAL;
	eng->st = *store;
	if (opt)
		eng->opt = *opt;
	if (eng->opt.clock_ms == NULL)
		eng->opt.clock_ms = real_clock;
	if (eng->opt.log == NULL)
		eng->opt.log = stderr_log;
	if (eng->opt.poll_timeout_ms == 0)
		eng->opt.poll_timeout_ms = 60000;
	if (eng->opt.cache_mailboxes == 0)
		eng->opt.cache_mailboxes = 256;
	if (eng->opt.cache_summary_bytes == 0)
		eng->opt.cache_summary_bytes = 64u << 20;
	if (eng->opt.cache_body_bytes == 0)
		eng->opt.cache_body_bytes = 32u << 20;
	eng->retention_ms = eng->opt.expunge_retention_ms;
	eng->summaries = scache_new(eng->opt.cache_summary_bytes);
	eng->bodies = eng->opt.no_body_cache ? NULL : bcache_new(eng->opt.cache_body_bytes);
	/* MAIL_LIST_CACHE_MAX entries at most: a fixed table */
	int tables = htable_init(&eng->list_table, 2 * MAIL_LIST_CACHE_MAX);
	if (eng->summaries == NULL || (eng->bodies == NULL && !eng->opt.no_body_cache) || tables != 0) {
		scache_free(eng->summaries);
		bcache_free(eng->bodies);
		if (tables == 0)
			htable_fini(&eng->list_table);
		free(eng);
		return AEROGRAM_EINTERNAL;
	}
	const struct aerogram_driver *d = store->driver;
	eng->cas = (d->capabilities & AEROGRAM_CAP_CONDITIONAL) &&
	           d->row_insert_if != NULL;
	eng->local_reads = (d->capabilities & AEROGRAM_CAP_LOCAL_READS) != 0;
	eng->local_writes = eng->local_reads && (d->capabilities & AEROGRAM_CAP_LOCAL_WRITES) != 0;
	eng->snapshot_reads = (d->capabilities & AEROGRAM_CAP_SNAPSHOT_READS) != 0;
	eng->grace_ms = (d->capabilities & AEROGRAM_CAP_PRIVATE) ? MAIL_REAP_GRACE_PRIVATE_MS : MAIL_REAP_GRACE_MS;
	eng->rng = eng->opt.seed;
	if (eng->rng == 0) {
		FILE *f = fopen("/dev/urandom", "rb");
		if (f == NULL || fread(&eng->rng, sizeof(eng->rng), 1, f) != 1)
			eng->rng = real_clock(NULL) ^ (uint64_t)(uintptr_t)eng;
		if (f)
			fclose(f);
	}
	pthread_mutex_init(&eng->rng_lock, NULL);
	mail_rand_bytes(eng, eng->id, sizeof(eng->id));
	pthread_mutex_init(&eng->lock, NULL);
	pthread_mutex_init(&eng->list_lock, NULL);
	pthread_cond_init(&eng->poll_cond, NULL);
	if (!eng->opt.no_poller)
		engine_poller_start(eng);
	*out = eng;
	return 0;
}

uint64_t mail_hold_ms(const struct mail_engine *eng)
{
	return eng->retention_ms > eng->grace_ms ? eng->retention_ms : eng->grace_ms;
}

void mail_engine_free(struct mail_engine *eng)
{
	if (eng == NULL)
		return;
	engine_poller_stop(eng);
	mail_reap_due(eng, 1);
	mailbox_cache_flush(eng);
	mblist_cache_flush(eng);
	if (eng->open)
		mail_log(eng, AEROGRAM_LOG_ERROR, "engine freed with open mailboxes (a leak)");
	scache_free(eng->summaries);
	bcache_free(eng->bodies);
	pthread_cond_destroy(&eng->poll_cond);
	pthread_mutex_destroy(&eng->lock);
	htable_fini(&eng->list_table);
	pthread_mutex_destroy(&eng->list_lock);
	pthread_mutex_destroy(&eng->rng_lock);
	free(eng);
}

static __thread int nonblock_on, nonblock_hit;
static __thread int nonblock_budget;

/* Store reads an inline attempt may make (a call costs 1, a body 1 more
 * per 4 KB): past that the command goes to a worker, so that a SEARCH of
 * every body of a large mailbox never holds the event loop. */
#define NONBLOCK_BUDGET 256

void mail_nonblock(int on)
{
	nonblock_on = on;
	if (on) {
		nonblock_hit = 0;
		nonblock_budget = NONBLOCK_BUDGET;
	}
}

int mail_nonblock_hit(void)
{
	return nonblock_hit;
}

int mail_would_block(void)
{
	if (!nonblock_on)
		return 0;
	nonblock_hit = 1;
	return 1;
}

int mail_would_block_read(const struct mail_engine *eng, unsigned cost)
{
	if (!nonblock_on)
		return 0;
	if (eng->local_reads && nonblock_budget >= (int)cost) {
		nonblock_budget -= (int)cost;
		return 0;
	}
	nonblock_hit = 1;
	return 1;
}

int mail_would_block_write(const struct mail_engine *eng)
{
	if (!nonblock_on || eng->local_writes)
		return 0;
	nonblock_hit = 1;
	return 1;
}

void mail_nonblock_commit(void)
{
	/* a write happened: the rest of the command must not be thrown away
	 * and run again, so it may wait from now on (briefly: the driver is
	 * local) */
	nonblock_on = 0;
}

int mail_would_block_cpu(unsigned cost)
{
	if (!nonblock_on)
		return 0;
	if (nonblock_budget >= (int)cost) {
		nonblock_budget -= (int)cost;
		return 0;
	}
	nonblock_hit = 1;
	return 1;
}

void mail_nonblock_spend(unsigned cost)
{
	if (nonblock_on)
		nonblock_budget -= (int)cost;
}

int mail_is_nonblock(void)
{
	return nonblock_on;
}

int mail_lock_or_again(pthread_mutex_t *m)
{
	if (!nonblock_on) {
		pthread_mutex_lock(m);
		return 0;
	}
	if (pthread_mutex_trylock(m) == 0)
		return 0;
	nonblock_hit = 1;
	return MAIL_EAGAIN;
}

void mail_sleep(struct mail_engine *eng, uint32_t ms)
{
	if (eng->opt.sleep_ms) {
		eng->opt.sleep_ms(eng->opt.sleep_arg, ms);
		return;
	}
	struct timespec t = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&t, &t) != 0)
		;
}

uint64_t mail_now(struct mail_engine *eng)
{
	return eng->opt.clock_ms(eng->opt.clock_arg);
}

/* splitmix64: tiny, good enough for ids and tie-breakers, and seedable. */
uint64_t mail_rand64(struct mail_engine *eng)
{
	pthread_mutex_lock(&eng->rng_lock);
	uint64_t z = (eng->rng += 0x9e3779b97f4a7c15ull);
	pthread_mutex_unlock(&eng->rng_lock);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void mail_rand_bytes(struct mail_engine *eng, uint8_t *out, size_t n)
{
	while (n) {
		uint64_t r = mail_rand64(eng);
		size_t k = n < 8 ? n : 8;
		memcpy(out, &r, k);
		out += k;
		n -= k;
	}
}

void mail_log(struct mail_engine *eng, int level, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	eng->opt.log(eng->opt.log_arg, level, line);
}

int mail_grow(void *pa, size_t *cap, size_t need, size_t size, size_t first)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : first;
	while (n < need)
		n *= 2;
	void *a;
	memcpy(&a, pa, sizeof(a));
	void *g = realloc(a, n * size);
	if (g == NULL)
		return -1;
	memcpy(pa, &g, sizeof(g));
	*cap = n;
	return 0;
}

void mail_free_strv(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}
