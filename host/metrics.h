/* metrics.h - counters of the running daemon, served in Prometheus' text
 * format on [metrics] listen (off by default).
 *
 * Every thread that counts (event loops, storage workers, the poller)
 * writes its own shard, found through a thread-local pointer: a count is a
 * relaxed load and store on a cache line no other thread writes, with no
 * lock and no shared atomic on the path of a command. A scrape sums the
 * shards with relaxed loads; shards live until exit, so the totals only
 * grow. While metrics are off every hook returns at its first test. */
#ifndef AG_HOST_METRICS_H
#define AG_HOST_METRICS_H

#include <stdint.h>
#include <time.h>

#include "sdk/loader/ag_loader.h"
#include "protocol/imap_parse.h"

struct ag_server;
struct mail_engine_options;

/* The result of a command, from its tagged response. */
enum ag_metrics_result { AG_RESULT_OK, AG_RESULT_NO, AG_RESULT_BAD, AG_RESULT_NONE, AG_RESULT__COUNT };

/* Session states of the connections gauge (index, not the AG_STATE_* bits). */
enum ag_metrics_state { AG_MSTATE_NOT_AUTH, AG_MSTATE_AUTH, AG_MSTATE_SELECTED, AG_MSTATE_LOGOUT, AG_MSTATE__COUNT };

extern int ag_metrics_on; /* set once at start-up, before any thread starts */

/* Turns counting on (start-up, before threads start). */
void ag_metrics_enable(void);

/* Has the engine made with these options tell every storage driver call it
 * makes (storage calls by operation, latency, errors by code). */
void ag_metrics_engine_options(struct mail_engine_options *opt);

/* A command finished: its kind, UID prefix, result and how long it took
 * (from `started`, CLOCK_MONOTONIC). */
void ag_metrics_command(enum imap_cmd_kind kind, int uid, enum ag_metrics_result result,
                        const struct timespec *started);
/* A connection changes state (from < 0: new; to < 0: gone). */
void ag_metrics_state(int from, int to);
void ag_metrics_bytes(uint64_t in, uint64_t out);
/* A command the parser refused (BAD before it had a name). */
void ag_metrics_malformed(void);
/* An LMTP recipient delivered (ok) or refused for a failure (!ok). */
void ag_metrics_lmtp(int ok);

/* Serves /metrics on `listen` (host:port) on the root loop of srv. On
 * failure writes one line into err and returns -1. */
int ag_metrics_start(struct ag_server *srv, const char *listen, char *err, size_t errlen);
void ag_metrics_stop(struct ag_server *srv);

/* The AG_STATE_* bit as an ag_metrics_state. */
int ag_metrics_state_index(unsigned state_bit);

#endif
