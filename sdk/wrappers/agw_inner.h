/* agw_inner.h - how the loadable wrapper drivers load and open the driver
 * they wrap: with the tree's one loader (sdk/loader/ag_loader.h), named by
 * their `inner` and `inner_config` keys. */
#ifndef AGW_INNER_H
#define AGW_INNER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <aerogram/driver.h>

#include "sdk/kit/ag_kit.h"
#include "sdk/loader/ag_loader.h"
#include "sdk/wrappers/ag_wrap.h"

struct agw_inner {
	struct ag_driver *drv;                /* the loaded inner driver */
	const struct aerogram_driver *driver; /* its descriptor (the loader's copy) */
	struct aerogram_store *store;
	struct aerogram_config_entry *config; /* inner_config, split */
	size_t n_config;
	char *config_text;
};

/* Loads `inner` (a name looked up as aerogram_<name>.so in the directory of
 * the .so containing `self`, or a path), checks its ABI, and opens it with
 * `inner_config` ("key=value;key=value", may be NULL). On failure writes one
 * line into err and returns a negative AEROGRAM_E* code. The caller closes
 * *out with agw_inner_close. */
int agw_inner_open(const struct aerogram_host *outer, const char *inner, const char *inner_config,
                   const void *self, struct agw_inner **out, char *err, size_t errlen);
/* Closes the inner store and unloads its driver. */
void agw_inner_close(struct agw_inner *in);

/* Makes a wrapper around an open inner pair: agw_fault_new or agw_count_new. */
typedef struct agw_wrapper *(*agw_wrapper_new_fn)(const struct aerogram_driver *inner,
                                                  struct aerogram_store *inner_store);
/* The common start of a loadable wrapper's open: loads the driver named by
 * the `inner` and `inner_config` keys of `config` (as agw_inner_open) and
 * wraps its store with `make`. On success the caller owns *inner and *w
 * (agw_free the wrapper, then agw_inner_close); on failure both are NULL,
 * err holds one line and a negative AEROGRAM_E* code is returned. */
int agw_inner_wrap(const struct aerogram_host *outer, const struct aerogram_config_entry *config,
                   size_t n_config, const void *self, agw_wrapper_new_fn make,
                   struct agw_inner **inner, struct agw_wrapper **w, char *err, size_t errlen);

/*
 * The capability bits of a loadable wrapper's descriptor. The descriptor is
 * one object per .so, but each store opened from it wraps its own inner
 * driver: the bits in `managed` are set, at each open, to what the inner
 * drivers of the stores open at that moment all offer (the host reads them
 * after open). Define one per .so with AGW_SHARED_CAPS_INIT.
 */
struct agw_shared_caps {
	pthread_mutex_t lock;
	unsigned n_open;
	uint64_t managed;
};
#define AGW_SHARED_CAPS_INIT(bits) { PTHREAD_MUTEX_INITIALIZER, 0, (bits) }
/* A store opened over an inner driver offering `offered`: updates desc. */
void agw_shared_caps_opened(struct agw_shared_caps *sc, struct aerogram_driver *desc,
                            uint64_t offered);
/* A store of this .so closed. */
void agw_shared_caps_closed(struct agw_shared_caps *sc, struct aerogram_driver *desc);

#endif
