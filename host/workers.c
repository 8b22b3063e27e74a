/* workers.c - the worker pool.
 *
 * Jobs wait in a FIFO guarded by one mutex; a thread takes one, runs it and
 * moves it to the completed list, then wakes the event loop with
 * event_active() (thread-safe once evthread_use_pthreads was called) when
 * the list was empty. The loop runs every completed job's `done`, so
 * callers never touch their session state from two threads. */
#include "host/workers.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "host/log.h"
#include "protocol/list.h"

struct ag_workers {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_cond_t idle;    /* signalled when a job ends (ag_workers_wait_idle) */
	unsigned busy;          /* jobs running now */
	struct ag_job *queue_head, *queue_tail;
	struct ag_job *done_head, *done_tail;
	int stopping;
	unsigned pending;       /* loop thread only */
	atomic_uint queued;     /* jobs waiting for a thread (any thread reads it: metrics) */
	struct event *done_event;
	pthread_t *threads;
	unsigned n_threads;
};

static void *worker_main(void *arg)
{
	struct ag_workers *pool = arg;
	pthread_mutex_lock(&pool->lock);
	for (;;) {
		while (pool->queue_head == NULL && !pool->stopping)
			pthread_cond_wait(&pool->wake, &pool->lock);
		if (pool->queue_head == NULL)
			break;
		struct ag_job *job;
		QUEUE_POP(pool->queue_head, pool->queue_tail, job);
		atomic_fetch_sub_explicit(&pool->queued, 1, memory_order_relaxed);
		pool->busy++;
		pthread_mutex_unlock(&pool->lock);
		job->run(job->arg);
		pthread_mutex_lock(&pool->lock);
		pool->busy--;
		int first = pool->done_head == NULL;
		QUEUE_PUSH(pool->done_head, pool->done_tail, job);
		pthread_cond_broadcast(&pool->idle);
		pthread_mutex_unlock(&pool->lock);
		/* A list that was not empty has its wake-up on the way already:
		 * one wake-up (a lock on the loop's base and a write to its
		 * notification fd) serves every job finished meanwhile. */
		if (first)
			event_active(pool->done_event, EV_READ, 0);
		pthread_mutex_lock(&pool->lock);
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

/* On the loop thread: hand every finished job back to its owner. */
static void on_done(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct ag_workers *pool = arg;
	pthread_mutex_lock(&pool->lock);
	struct ag_job *job;
	QUEUE_TAKE_ALL(pool->done_head, pool->done_tail, job);
	pthread_mutex_unlock(&pool->lock);
	while (job != NULL) {
		struct ag_job *next = job->next;
		pool->pending--;
		job->done(job->arg);
		job = next;
	}
}

struct ag_workers *ag_workers_new(struct event_base *base, unsigned threads)
{
	struct ag_workers *pool = calloc(1, sizeof(*pool));
	if (pool == NULL)
		return NULL;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->wake, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&pool->idle, &attr);
	pthread_condattr_destroy(&attr);
	pool->done_event = event_new(base, -1, 0, on_done, pool);
	pool->threads = calloc(threads, sizeof(pthread_t));
	if (pool->done_event == NULL || pool->threads == NULL) {
		ag_workers_free(pool);
		return NULL;
	}
	if (ag_threads_start(pool->threads, threads, &pool->n_threads, worker_main, pool, "worker") != 0) {
		ag_workers_free(pool);
		return NULL;
	}
	return pool;
}

void ag_threads_stop(pthread_mutex_t *lock, pthread_cond_t *wake, int *stopping, pthread_t *threads,
                     unsigned *started)
{
	pthread_mutex_lock(lock);
	*stopping = 1;
	pthread_cond_broadcast(wake);
	pthread_mutex_unlock(lock);
	for (unsigned i = 0; i < *started; i++)
		pthread_join(threads[i], NULL);
	*started = 0;
}

int ag_threads_start(pthread_t *threads, unsigned n, unsigned *started, void *(*fn)(void *), void *arg,
                     const char *what)
{
	for (; *started < n; (*started)++) {
		if (pthread_create(&threads[*started], NULL, fn, arg) != 0) {
			ag_log_error("cannot start %s thread %u of %u", what, *started + 1, n);
			return -1;
		}
		/* named, so that top -H and per-thread numbers say which is which */
		char name[16];
		snprintf(name, sizeof(name), "ag-%s", what);
		pthread_setname_np(threads[*started], name);
	}
	return 0;
}

void ag_workers_submit(struct ag_workers *pool, struct ag_job *job)
{
	pool->pending++;
	pthread_mutex_lock(&pool->lock);
	QUEUE_PUSH(pool->queue_head, pool->queue_tail, job);
	atomic_fetch_add_explicit(&pool->queued, 1, memory_order_relaxed);
	pthread_mutex_unlock(&pool->lock);
	/* Signalled after the unlock: a worker woken while the lock is still
	 * held would only go to sleep again on the mutex (two more futex
	 * calls per job). A worker that is not waiting yet sees the job when
	 * it checks the queue under the lock. */
	pthread_cond_signal(&pool->wake);
}

unsigned ag_workers_pending(const struct ag_workers *pool)
{
	return pool->pending;
}

unsigned ag_workers_queued(struct ag_workers *pool)
{
	return atomic_load_explicit(&pool->queued, memory_order_relaxed);
}

unsigned ag_workers_wait_idle(struct ag_workers *pool, const struct timespec *deadline)
{
	pthread_mutex_lock(&pool->lock);
	while (pool->busy > 0 || pool->queue_head != NULL) {
		if (pthread_cond_timedwait(&pool->idle, &pool->lock, deadline) == ETIMEDOUT)
			break;
	}
	unsigned left = pool->busy;
	for (const struct ag_job *j = pool->queue_head; j != NULL; j = j->next)
		left++;
	pthread_mutex_unlock(&pool->lock);
	return left;
}

void ag_workers_free(struct ag_workers *pool)
{
	if (pool == NULL)
		return;
	ag_threads_stop(&pool->lock, &pool->wake, &pool->stopping, pool->threads, &pool->n_threads);
	if (pool->done_event != NULL)
		event_free(pool->done_event);
	pthread_mutex_destroy(&pool->lock);
	pthread_cond_destroy(&pool->wake);
	pthread_cond_destroy(&pool->idle);
	free(pool->threads);
	free(pool);
}
