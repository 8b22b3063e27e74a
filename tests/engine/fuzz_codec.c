/* fuzz_codec.c - libFuzzer target: every decoder of host/mail/codec.c on
 * arbitrary bytes. Whatever decodes must encode again and decode to the
 * same bytes (the encoding is canonical). */
#include <stdlib.h>
#include <string.h>

#include "host/mail/mail_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(const struct cbuf *b, const uint8_t *data, size_t size)
{
	if (b->oom)
		return;
	if (b->len != size || memcmp(b->p, data, size) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct uidx_op *op = NULL;
	if (codec_op_decode(data, size, &op) == 0) {
		struct cbuf b = { 0 };
		codec_op_encode(op, &b);
		struct uidx_op *again = NULL;
		if (codec_op_decode(b.p, b.len, &again) != 0)
			abort();
		struct uidx_state *s = uidx_new();
		uidx_apply(s, op); /* apply is total on anything that decodes */
		uidx_free(s);
		uidx_op_free(again);
		free(b.p);
		uidx_op_free(op);
	}
	struct uidx_state *st = NULL;
	if (codec_state_decode(data, size, &st) == 0) {
		struct cbuf b = { 0 };
		codec_state_encode(st, &b);
		same(&b, data, size);
		free(b.p);
		uidx_free(st);
	}
	struct summary sm;
	if (codec_summary_decode(data, size, &sm) == 0) {
		struct cbuf b = { 0 };
		codec_summary_encode(&sm, &b);
		same(&b, data, size);
		free(b.p);
	}
	struct mblist l;
	if (codec_mblist_decode(data, size, &l) == 0) {
		struct cbuf b = { 0 };
		codec_mblist_encode(&l, &b);
		mblist_free(&l);
		free(b.p);
	}
	return 0;
}
