/* check.c - a read-only consistency check of one mailbox.
 *
 * Replays the mailbox's log as a daemon would, then reads its summary
 * partition and lists its bodies, and compares: every message of the
 * replayed state must have its summary (one that decodes) and its body;
 * summaries and bodies that no message refers to are orphans (expunged
 * messages not collected yet, or appends that failed or are still in
 * flight: those younger than the grace period are counted apart). Nothing
 * is written. */
#include "host/mail/mail_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


struct check_scan {
	struct uidx_state *state;
	uint8_t *have_summary; /* per message of the state, in msgs order */
	uint8_t *have_body;
	uint64_t cutoff;       /* ids older than this are orphans, younger ones young */
	struct mail_check *out;
};

/* The position in state->msgs of the message with this hex id, or -1
 * (*parsed says whether the text was an id at all). */
static long position(struct check_scan *c, const char *hex, uint8_t id[UIDX_ID], int *parsed)
{
	*parsed = strlen(hex) == 2 * UIDX_ID && mail_unhex(hex, id, UIDX_ID) == 0;
	if (!*parsed)
		return -1;
	const struct uidx_msg *m = uidx_find_id(c->state, id);
	return m != NULL ? (long)(m - c->state->msgs) : -1;
}

static int scan_summary(void *arg, const struct aerogram_row *row)
{
	struct check_scan *c = arg;
	int live = 0, decodes = 0;
	uint64_t size = 0;
	for (size_t i = 0; i < row->n_values; i++) {
		if (row->values[i].tombstone)
			continue;
		live = 1;
		struct summary s;
		if (codec_summary_decode(row->values[i].data, row->values[i].len, &s) == 0) {
			decodes = 1;
			size = s.size;
			break;
		}
	}
	if (!live)
		return 0; /* a deleted row */
	uint8_t id[UIDX_ID];
	int parsed;
	long pos = position(c, row->sk, id, &parsed);
	if (!parsed)
		return 0; /* not a message's summary: left alone, as orphan collection does */
	if (pos < 0) {
		if (msg_id_time(id) < c->cutoff)
			c->out->orphan_summaries++;
		else
			c->out->young_summaries++;
		return 0;
	}
	if (!decodes) {
		c->have_summary[pos] = 2;
		return 0;
	}
	c->have_summary[pos] = 1;
	c->out->bytes += size;
	return 0;
}

int mail_check_mailbox(struct mail_engine *eng, const char *user, const char *name, uint64_t grace_ms,
                       struct mail_check *out, void (*problem)(void *arg, uint32_t uid, const char *what),
                       void *arg)
{
	memset(out, 0, sizeof(*out));
	struct mailbox_look lk;
	int rc = mailbox_look_open(&lk, eng, user, name);
	if (rc != 0)
		return rc;
	struct uidx_state *cur = lk.log.cur;
	struct check_scan c = { cur, NULL, NULL, lk.now > grace_ms ? lk.now - grace_ms : 0, out };
	size_t n = cur != NULL ? cur->n : 0;
	if (rc == 0) {
		c.have_summary = calloc(n + 1, 1);
		c.have_body = calloc(n + 1, 1);
		if (c.have_summary == NULL || c.have_body == NULL)
			rc = AEROGRAM_EINTERNAL;
	}
	out->messages = n;
	if (rc == 0) {
		struct aerogram_row_query q = { .pk = lk.pk };
		rc = mail_read_range(eng, &q, scan_summary, &c);
	}
	char **keys = NULL;
	size_t nk = 0;
	if (rc == 0)
		rc = mail_list_blobs(eng, lk.pfx, &keys, &nk);
	size_t plen = strlen(lk.pfx);
	for (size_t i = 0; rc == 0 && i < nk; i++) {
		uint8_t id[UIDX_ID];
		int parsed;
		long pos = position(&c, keys[i] + plen, id, &parsed);
		if (!parsed)
			continue;
		if (pos >= 0)
			c.have_body[pos] = 1;
		else if (msg_id_time(id) < c.cutoff)
			out->orphan_bodies++;
		else
			out->young_bodies++;
	}
	mail_free_strv(keys, nk);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		uint32_t uid = cur->msgs[i].uid;
		if (c.have_summary[i] == 0) {
			out->missing_summaries++;
			if (problem)
				problem(arg, uid, "no summary");
		} else if (c.have_summary[i] == 2) {
			out->bad_summaries++;
			if (problem)
				problem(arg, uid, "a summary that does not decode");
		}
		if (!c.have_body[i]) {
			out->missing_bodies++;
			if (problem)
				problem(arg, uid, "no body");
		}
	}
	free(c.have_summary);
	free(c.have_body);
	mailbox_look_close(&lk);
	return rc;
}
