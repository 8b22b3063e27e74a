/* workers.h - a small pool of threads for work that must not block the event loop. */
#ifndef AG_HOST_WORKERS_H
#define AG_HOST_WORKERS_H

#include <event2/event.h>
#include <pthread.h>
#include <time.h>

struct ag_workers;

/* A job: `run` executes on a worker thread, then `done` on the event loop
 * thread, both with `arg`. The job struct belongs to the caller and must
 * live until `done` was called; typically it is embedded in the caller's
 * own state. */
struct ag_job {
	void (*run)(void *arg);
	void (*done)(void *arg);
	void *arg;
	struct ag_job *next; /* private */
};

/* Starts `threads` workers whose completions are delivered on `base`
 * (which must have been created after evthread_use_pthreads). Returns NULL
 * on failure. The caller owns the pool (ag_workers_free). */
struct ag_workers *ag_workers_new(struct event_base *base, unsigned threads);
/* Queues a job (event loop thread only). Jobs run in parallel, in no order. */
void ag_workers_submit(struct ag_workers *pool, struct ag_job *job);
/* Number of jobs queued or running whose `done` has not been called yet. */
unsigned ag_workers_pending(const struct ag_workers *pool);
/* Number of jobs waiting for a free thread (any thread; a snapshot). */
unsigned ag_workers_queued(struct ag_workers *pool);
/* Waits until no job is queued or running, or until `deadline`
 * (CLOCK_MONOTONIC), whichever comes first; returns how many jobs are still
 * queued or running (0: idle). Any thread. */
unsigned ag_workers_wait_idle(struct ag_workers *pool, const struct timespec *deadline);
/* Waits for queued and running jobs, calls no more `done`, stops the threads and frees the pool. */
void ag_workers_free(struct ag_workers *pool);

/* Starts threads[*started] up to threads[n - 1] running fn(arg), counting
 * them in *started; on failure logs "cannot start <what> thread i of n"
 * and returns -1 (the caller joins the *started ones). */
int ag_threads_start(pthread_t *threads, unsigned n, unsigned *started, void *(*fn)(void *), void *arg,
                     const char *what);
/* Sets *stopping under `lock`, wakes every thread waiting on `wake`, and
 * joins the *started threads (*started is 0 after). */
void ag_threads_stop(pthread_mutex_t *lock, pthread_cond_t *wake, int *stopping, pthread_t *threads,
                     unsigned *started);

#endif
