/*
 * bench_open.c - time to open a 100,000-message mailbox from a checkpoint
 * on the memory driver (checkpoint list, checkpoint read and decode, tail
 * read and replay). Not run by `make check`: `make bench-engine`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host/mail/mail_internal.h"
#include "tests/engine/engine_util.h"

#define MESSAGES 100000
#define TAIL 100
#define RUNS 10

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(void)
{
	struct ag_driver *drv = eu_load_memory();
	struct ag_store *st = ag_driver_store(drv);
	struct eu_clock clk = { .now = 1750000000000ull };
	struct mail_engine_options o = eu_options(&clk, 1);
	struct mail_engine *eng;
	if (mail_engine_new(st, &o, &eng) != 0)
		return 1;
	struct mail_mailbox *mb;
	if (mail_mailbox_open(eng, "bench", "INBOX", &mb) != 0)
		return 1;
	/* 100,000 messages in 100 operations of 1,000 (as 100 large COPYs
	 * would write them), flags on every other one, then a checkpoint */
	for (int k = 0; k < MESSAGES / 1000; k++) {
		struct uidx_op *op = calloc(1, sizeof(*op));
		op->kind = UIDX_OP_ADD;
		op->n = 1000;
		op->ids = calloc(1000, UIDX_ID);
		op->item_flags = calloc(1000, sizeof(uint64_t));
		for (int i = 0; i < 1000; i++) {
			mail_rand_bytes(eng, op->ids[i], UIDX_ID);
			op->item_flags[i] = (uint64_t)(i & 1) * MAIL_F_SEEN;
		}
		pthread_mutex_lock(&mb->lock);
		op->seen_uidnext = mb->log.cur->uidnext;
		int rc = oplog_push(&mb->log, op, NULL, 0);
		pthread_mutex_unlock(&mb->lock);
		if (rc != 0)
			return 1;
	}
	clk.now += 60000;
	if (mail_mailbox_checkpoint(mb, 1) != 0)
		return 1;
	for (int i = 0; i < TAIL; i++) {
		struct mail_new_message m = { .body = (const uint8_t *)"x\r\n", .body_len = 3 };
		if (mail_append(mb, &m, NULL, NULL) != 0)
			return 1;
	}
	char pfx[128];
	snprintf(pfx, sizeof(pfx), "bench/index/%s/checkpoint/", mail_mailbox_id(mb));
	char **keys;
	size_t nk;
	mail_list_blobs(eng, pfx, &keys, &nk);
	struct aerogram_blob_request req = { keys[nk - 1], 0, 0 };
	struct aerogram_blob_result *res;
	st->driver->blob_get(st->store, &req, 1, &res);
	size_t ckpt_size = res->blobs[0].len;
	st->driver->blob_result_free(st->store, res);
	mail_free_strv(keys, nk);
	mail_mailbox_close(mb);

	double best = 1e9, sum = 0;
	uint32_t exists = 0;
	for (int r = 0; r < RUNS; r++) {
		struct mail_engine *fresh;
		struct mail_engine_options fo = eu_options(&clk, 100 + (uint64_t)r);
		mail_engine_new(st, &fo, &fresh);
		double t0 = now_s();
		struct mail_mailbox *fm;
		if (mail_mailbox_open(fresh, "bench", "INBOX", &fm) != 0)
			return 1;
		double t = now_s() - t0;
		struct mail_status s;
		mail_mailbox_status(fm, &s);
		exists = s.exists;
		mail_mailbox_close(fm);
		mail_engine_free(fresh);
		sum += t;
		if (t < best)
			best = t;
	}
	printf("bench_open: %u messages (checkpoint %zu bytes + %d-entry tail): open best %.1f ms, mean %.1f ms "
	       "over %d runs\n",
	       exists, ckpt_size, TAIL, best * 1000, sum / RUNS * 1000, RUNS);
	mail_engine_free(eng);
	ag_driver_unload(drv);
	return exists == MESSAGES + TAIL ? 0 : 1;
}
