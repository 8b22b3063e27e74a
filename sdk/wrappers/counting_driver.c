/* counting_driver.c - aerogram_counting.so: the counting wrapper as a
 * loadable driver, publishing its counts in a mapped file (layout in
 * ag_wrap.h). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sdk/wrappers/agw_inner.h"
#include "sdk/wrappers/agw_internal.h"

#define COUNTS_BYTES (AGW_COUNT_SLOTS * sizeof(uint64_t))

/* The capabilities this .so's descriptor passes on from its inner drivers. */
#define COUNTING_CAPS \
	(AEROGRAM_CAP_CONDITIONAL | AEROGRAM_CAP_SNAPSHOT_READS)
static struct agw_loadable counting_so;

struct counting {
	struct agw_inner *inner;
	uint64_t *map;
};

static void counting_close(struct agw_wrapper *w, void *ctx)
{
	struct counting *c = ctx;
	agw_count_set_mirror(w, NULL);
	agw_inner_close(c->inner);
	agw_loadable_closed(&counting_so);
	if (c->map)
		munmap(c->map, COUNTS_BYTES);
	free(c);
	agw_free(w);
}

/* Creates (or truncates) the counts file and maps it. */
static uint64_t *map_counts(const char *path, char *errbuf, size_t errlen)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(errbuf, errlen, "counts_file %s: cannot be created: %m", path);
		return NULL;
	}
	if (ftruncate(fd, (off_t)COUNTS_BYTES) != 0) {
		snprintf(errbuf, errlen, "counts_file %s: cannot be sized: %m", path);
		close(fd);
		return NULL;
	}
	void *p = mmap(NULL, COUNTS_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		snprintf(errbuf, errlen, "counts_file %s: cannot be mapped: %m", path);
		return NULL;
	}
	return p;
}

static int counting_open(const struct aerogram_host *host, const struct aerogram_config_entry *config,
                         size_t n_config, struct aerogram_store **out, char *errbuf, size_t errlen)
{
	*out = NULL;
	struct counting *c = agk_store_new(sizeof(*c), "counting", errbuf, errlen);
	if (c == NULL)
		return AEROGRAM_EINTERNAL;
	const char *path = agk_config_value(config, n_config, "counts_file");
	if (path != NULL && (c->map = map_counts(path, errbuf, errlen)) == NULL) {
		free(c);
		return AEROGRAM_EINVAL;
	}
	struct agw_wrapper *w;
	int rc = agw_inner_wrap(host, config, n_config, &counting_so, agw_count_new, &c->inner, &w,
	                        errbuf, errlen);
	if (rc != 0) {
		if (c->map)
			munmap(c->map, COUNTS_BYTES);
		free(c);
		return rc;
	}
	if (c->map)
		agw_count_set_mirror(w, c->map);
	agw_loadable_opened(&counting_so, agw_offered_caps(c->inner->driver));
	agw_set_on_close(w, counting_close, c);
	*out = agw_store(w);
	return 0;
}

static const char *const counting_keys[] = { "inner", "inner_config", "counts_file", NULL };

AGW_LOADABLE_DRIVER(counting_so, "counting", COUNTING_CAPS, counting_keys, counting_open)
