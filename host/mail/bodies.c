/* bodies.c - the bodies of an add, put several at a time on a remote store.
 *
 * An add of n messages writes n body blobs before its one log entry. One
 * after the other, each waits for a round trip: over the Garage driver
 * that made an import (or a large MULTIAPPEND) latency-bound, 153 messages
 * a second against garage-emu with 5 ms of latency. The driver is
 * thread-safe (a daemon's workers call it at once), so a remote store gets
 * up to MAIL_PUT_PARALLEL puts in flight; a local one (sqlite, memory:
 * AEROGRAM_CAP_LOCAL_READS) keeps them sequential, where threads would only
 * contend for its lock. The order of the bodies is of no consequence: the
 * log entry, written after all of them, is what makes the messages exist. */
#include "host/mail/mail_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct put_job {
	struct mail_engine *eng;
	char *const *keys;
	const struct mail_new_message *msgs;
	size_t n;
	atomic_size_t next;
	atomic_int rc;
};

static int put_one(struct mail_engine *eng, const char *key, const struct mail_new_message *m)
{
	int rc = store_blob_put(eng, key, m->body, m->body_len); /* logs on this thread */
	if (rc == 0) /* a new message is often read at once (a client's FETCH after APPEND) */
		bcache_put(eng->bodies, key, m->body, m->body_len);
	return rc;
}

static void *put_worker(void *arg)
{
	struct put_job *j = arg;
	for (;;) {
		if (atomic_load(&j->rc) != 0)
			break;
		size_t i = atomic_fetch_add(&j->next, 1);
		if (i >= j->n)
			break;
		int rc = put_one(j->eng, j->keys[i], &j->msgs[i]);
		if (rc != 0) {
			int zero = 0;
			atomic_compare_exchange_strong(&j->rc, &zero, rc);
		}
	}
	return NULL;
}

int mail_put_bodies(struct mail_engine *eng, char *const *keys, const struct mail_new_message *msgs, size_t n)
{
	size_t threads = eng->local_reads || n < 2 ? 1 : n < MAIL_PUT_PARALLEL ? n : MAIL_PUT_PARALLEL;
	if (threads == 1) {
		for (size_t i = 0; i < n; i++) {
			int rc = put_one(eng, keys[i], &msgs[i]);
			if (rc != 0)
				return rc;
		}
		return 0;
	}
	struct put_job j = { .eng = eng, .keys = keys, .msgs = msgs, .n = n };
	atomic_init(&j.next, 0);
	atomic_init(&j.rc, 0);
	pthread_t tids[MAIL_PUT_PARALLEL];
	size_t started = 0;
	/* this thread is one of the workers */
	for (; started + 1 < threads; started++)
		if (pthread_create(&tids[started], NULL, put_worker, &j) != 0)
			break;
	put_worker(&j);
	for (size_t i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	return atomic_load(&j.rc);
}
