/* limits.c - per-address and per-user counts and the password-check pool.
 *
 * Every event loop counts into the same tables, so they are locked; the
 * critical sections are a hash lookup each. Password checks (Argon2, tens of
 * milliseconds and megabytes each on purpose) do not run on the storage
 * workers: a flood of failing logins would otherwise queue in front of
 * every logged-in user's commands. They get AG_AUTH_THREADS threads of
 * their own, at most AG_AUTH_IN_FLIGHT_MAX queued or running, and at most
 * AG_AUTH_PER_ADDRESS from one address, so that one client cannot fill the
 * queue either. */
#include "host/limits.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/log.h"
#include "host/workers.h"
#include "protocol/list.h"

#define BUCKETS 1024

struct count_entry {
	struct count_entry *next;
	unsigned count;
	char key[];
};

/* A string -> count map; an entry exists only while its count is > 0. */
struct count_map {
	struct count_entry *bucket[BUCKETS];
};

struct ag_limits {
	pthread_mutex_t lock; /* the maps and in_flight */
	struct count_map connections, users, auth;
	unsigned in_flight;   /* password checks queued or running */
	/* the password-check pool */
	pthread_mutex_t queue_lock;
	pthread_cond_t wake;
	struct ag_auth_job *head, *tail;
	int stopping;
	pthread_t threads[AG_AUTH_THREADS];
	unsigned n_threads;
};

static size_t hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % BUCKETS;
}

/* Adds one to key's count unless it is at max already; -1 then (or out of memory). */
static int map_add(struct count_map *m, const char *key, unsigned max, unsigned *before)
{
	struct count_entry **slot = &m->bucket[hash(key)];
	struct count_entry *e = *slot;
	while (e != NULL && strcmp(e->key, key) != 0)
		e = e->next;
	*before = e != NULL ? e->count : 0;
	if (*before >= max)
		return -1;
	if (e == NULL) {
		size_t len = strlen(key);
		e = malloc(sizeof(*e) + len + 1);
		if (e == NULL)
			return -1;
		memcpy(e->key, key, len + 1);
		e->count = 0;
		e->next = *slot;
		*slot = e;
	}
	e->count++;
	return 0;
}

static void map_remove(struct count_map *m, const char *key)
{
	struct count_entry **p = &m->bucket[hash(key)];
	while (*p != NULL && strcmp((*p)->key, key) != 0)
		p = &(*p)->next;
	struct count_entry *e = *p;
	if (e == NULL)
		return;
	if (--e->count == 0) {
		*p = e->next;
		free(e);
	}
}

static void map_clear(struct count_map *m)
{
	for (size_t i = 0; i < BUCKETS; i++) {
		for (struct count_entry *e = m->bucket[i], *next; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
		m->bucket[i] = NULL;
	}
}

static void *auth_main(void *arg)
{
	struct ag_limits *l = arg;
	pthread_mutex_lock(&l->queue_lock);
	for (;;) {
		while (l->head == NULL && !l->stopping)
			pthread_cond_wait(&l->wake, &l->queue_lock);
		if (l->stopping)
			break;
		struct ag_auth_job *job;
		QUEUE_POP(l->head, l->tail, job);
		pthread_mutex_unlock(&l->queue_lock);
		job->run(job->arg);
		/* thread-safe once evthread_use_pthreads was called */
		event_active(job->done, EV_READ, 0);
		pthread_mutex_lock(&l->queue_lock);
	}
	pthread_mutex_unlock(&l->queue_lock);
	return NULL;
}

struct ag_limits *ag_limits_new(void)
{
	struct ag_limits *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return NULL;
	pthread_mutex_init(&l->lock, NULL);
	pthread_mutex_init(&l->queue_lock, NULL);
	pthread_cond_init(&l->wake, NULL);
	if (ag_threads_start(l->threads, AG_AUTH_THREADS, &l->n_threads, auth_main, l, "auth") != 0) {
		ag_limits_free(l);
		return NULL;
	}
	return l;
}

void ag_limits_stop(struct ag_limits *l)
{
	if (l == NULL)
		return;
	/* the threads take no job once stopping is set: those queued are dropped */
	ag_threads_stop(&l->queue_lock, &l->wake, &l->stopping, l->threads, &l->n_threads);
	pthread_mutex_lock(&l->queue_lock);
	l->head = l->tail = NULL;
	pthread_mutex_unlock(&l->queue_lock);
}

void ag_limits_free(struct ag_limits *l)
{
	if (l == NULL)
		return;
	ag_limits_stop(l);
	map_clear(&l->connections);
	map_clear(&l->users);
	map_clear(&l->auth);
	pthread_mutex_destroy(&l->lock);
	pthread_mutex_destroy(&l->queue_lock);
	pthread_cond_destroy(&l->wake);
	free(l);
}

/* map_add and map_remove under the lock, for the per-address and
 * per-user counts. */
static int locked_add(struct ag_limits *l, struct count_map *m, const char *key, unsigned max, unsigned *open_now)
{
	pthread_mutex_lock(&l->lock);
	int rc = map_add(m, key, max, open_now);
	pthread_mutex_unlock(&l->lock);
	return rc;
}

static void locked_remove(struct ag_limits *l, struct count_map *m, const char *key)
{
	pthread_mutex_lock(&l->lock);
	map_remove(m, key);
	pthread_mutex_unlock(&l->lock);
}

int ag_limits_connection_add(struct ag_limits *l, const char *address, unsigned max, unsigned *open_now)
{
	return locked_add(l, &l->connections, address, max, open_now);
}

void ag_limits_connection_remove(struct ag_limits *l, const char *address)
{
	locked_remove(l, &l->connections, address);
}

int ag_limits_user_add(struct ag_limits *l, const char *user, unsigned max, unsigned *open_now)
{
	return locked_add(l, &l->users, user, max, open_now);
}

void ag_limits_user_remove(struct ag_limits *l, const char *user)
{
	locked_remove(l, &l->users, user);
}

enum ag_auth_slot ag_limits_auth_acquire(struct ag_limits *l, const char *address)
{
	enum ag_auth_slot r = AG_AUTH_SLOT_TAKEN;
	unsigned before;
	pthread_mutex_lock(&l->lock);
	if (l->in_flight >= AG_AUTH_IN_FLIGHT_MAX)
		r = AG_AUTH_SLOT_FULL;
	else if (map_add(&l->auth, address, AG_AUTH_PER_ADDRESS, &before) != 0)
		r = before >= AG_AUTH_PER_ADDRESS ? AG_AUTH_SLOT_ADDRESS_BUSY : AG_AUTH_SLOT_FULL;
	else
		l->in_flight++;
	pthread_mutex_unlock(&l->lock);
	return r;
}

void ag_limits_auth_release(struct ag_limits *l, const char *address)
{
	pthread_mutex_lock(&l->lock);
	map_remove(&l->auth, address);
	l->in_flight--;
	pthread_mutex_unlock(&l->lock);
}

void ag_limits_auth_submit(struct ag_limits *l, struct ag_auth_job *job)
{
	pthread_mutex_lock(&l->queue_lock);
	QUEUE_PUSH(l->head, l->tail, job);
	pthread_mutex_unlock(&l->queue_lock);
	pthread_cond_signal(&l->wake);
}
