/* memory_driver.c - the memory driver's descriptor, open/close, errors and
 * result arenas.
 *
 * The reference implementation of the ABI: everything lives in this process
 * and disappears with it. It has no configuration keys. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/memory/memory_store.h"

/* ---- open / close ---------------------------------------------------- */

static int mem_open(const struct aerogram_host *host, const struct aerogram_config_entry *config,
                    size_t n_config, struct aerogram_store **out, char *errbuf, size_t errlen)
{
	(void)config, (void)n_config; /* the host refused any key: there are none */
	*out = NULL;
	struct aerogram_store *st = agk_store_new(sizeof(*st), "memory", errbuf, errlen);
	if (st == NULL)
		return AEROGRAM_EINTERNAL;
	st->host = host;
	pthread_rwlock_init(&st->rows_lock, NULL);
	pthread_rwlock_init(&st->blobs_lock, NULL);
	if (mem_sl_init(&st->blobs) != 0) {
		snprintf(errbuf, errlen, "out of memory");
		goto fail;
	}
	if (mem_watcher_start(st) != 0) {
		snprintf(errbuf, errlen, "cannot start the watch thread");
		goto fail;
	}
	*out = st;
	return 0;
fail:
	mem_sl_destroy(&st->blobs, NULL);
	pthread_rwlock_destroy(&st->rows_lock);
	pthread_rwlock_destroy(&st->blobs_lock);
	free(st);
	return AEROGRAM_EINTERNAL;
}

static void mem_close(struct aerogram_store *st)
{
	if (st == NULL)
		return;
	mem_watcher_stop(st);
	mem_rows_destroy(st);
	mem_blobs_destroy(st);
	pthread_rwlock_destroy(&st->rows_lock);
	pthread_rwlock_destroy(&st->blobs_lock);
	free(st);
}

static const char *const mem_config_keys[] = { NULL };

static const struct aerogram_driver mem_driver = {
	AEROGRAM_DRIVER_HEADER,
	.name = "memory",
	.version = "1.1",
	.capabilities = AEROGRAM_CAP_CONDITIONAL | AEROGRAM_CAP_LOCAL_READS | AEROGRAM_CAP_LOCAL_WRITES | AEROGRAM_CAP_SNAPSHOT_READS |
	                AEROGRAM_CAP_PRIVATE, /* reads hold rows_lock */
	.config_keys = mem_config_keys,
	.open = mem_open,
	AGK_DRIVER_CALLS(mem),
	AGK_KIT_METHODS,
	.row_insert_if = mem_row_insert_if,
};

AEROGRAM_DRIVER_EXPORT(mem_driver)
