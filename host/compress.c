/* compress.c - the DEFLATE layer of COMPRESS (RFC 4978) as a libevent
 * filter.
 *
 * Memory: zlib's state is the cost of a compressed connection. Inflating
 * needs the 32 KiB window the client may use (windowBits 15, allocated at
 * the first input) and ~7 KiB of tables. Deflating at zlib's defaults
 * (windowBits 15, memLevel 8) allocates about 256 KiB. The server's deflate
 * may use any window (the client's inflate copes with a smaller one), so it
 * uses windowBits 14 and memLevel 7: 128 KiB allocated, of which an idle
 * connection touches about half. Measured with 1,000 idle connections
 * (logged in, INBOX selected) on the memory driver: RSS grows by 5 KiB a
 * connection uncompressed and by 70 KiB compressed (103 KiB with zlib's
 * defaults); see host/README.md. */
#include "host/compress.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <event2/buffer.h>

/* The server's deflate parameters (see above); raw deflate: negative bits. */
#define DEFLATE_WINDOW_BITS 14
#define DEFLATE_MEM_LEVEL 7
/* zlib's speed/size trade-off: RFC 4978 4 finds the cheapest level already
 * compresses IMAP responses to 25-40%; 6 is zlib's default. */
#define DEFLATE_LEVEL 6
/* Output space asked of the evbuffer per deflate/inflate call. */
#define CHUNK 16384

struct zpair {
	z_stream in;  /* inflate: client to server */
	z_stream out; /* deflate: server to client */
	struct bufferevent *bev; /* the filter, told of a corrupt stream */
	int failed;
};

static void zpair_free(void *arg)
{
	struct zpair *z = arg;
	inflateEnd(&z->in);
	deflateEnd(&z->out);
	free(z);
}

/* Runs `in` (src's first chunk, or nothing) through zlib into dst;
 * returns zlib's code and sets *used and *made. */
static int step(z_stream *zs, int deflating, struct evbuffer *src, struct evbuffer *dst, int flush,
                size_t *used, size_t *made)
{
	struct evbuffer_iovec in_vec = { NULL, 0 }, out_vec;
	if (evbuffer_get_length(src) > 0)
		evbuffer_peek(src, -1, NULL, &in_vec, 1);
	if (evbuffer_reserve_space(dst, CHUNK, &out_vec, 1) < 1)
		return Z_MEM_ERROR;
	zs->next_in = in_vec.iov_base;
	zs->avail_in = (uInt)in_vec.iov_len;
	zs->next_out = out_vec.iov_base;
	zs->avail_out = (uInt)out_vec.iov_len;
	if (deflating && flush == Z_SYNC_FLUSH && in_vec.iov_len < evbuffer_get_length(src))
		flush = Z_NO_FLUSH; /* more input follows: flush after the last chunk only */
	int rc = deflating ? deflate(zs, flush) : inflate(zs, Z_SYNC_FLUSH);
	*used = in_vec.iov_len - zs->avail_in;
	*made = out_vec.iov_len - zs->avail_out;
	out_vec.iov_len = *made;
	evbuffer_commit_space(dst, &out_vec, 1);
	evbuffer_drain(src, *used);
	return rc;
}

/* What a filter returns: BEV_OK only when it made progress. libevent calls
 * a filter again as long as it answers BEV_OK and bytes are left (with no
 * high-water mark at all once the peer has closed), so BEV_OK without
 * progress would spin. */
static enum bufferevent_filter_result progress(int moved)
{
	return moved ? BEV_OK : BEV_NEED_MORE;
}

static enum bufferevent_filter_result inflate_filter(struct evbuffer *src, struct evbuffer *dst,
                                                     ev_ssize_t limit, enum bufferevent_flush_mode mode,
                                                     void *arg)
{
	(void)mode;
	struct zpair *z = arg;
	if (z->failed) {
		evbuffer_drain(src, evbuffer_get_length(src));
		return BEV_ERROR;
	}
	int moved = 0;
	for (;;) {
		/* At the high-water mark the rest waits, still compressed, in src
		 * (never inside zlib: the last call had room for all it made), so
		 * that a small input cannot fill memory with what it inflates to.
		 * The session asks for it again once it has read (see
		 * session_input). */
		if (limit > 0 && evbuffer_get_length(dst) >= (size_t)limit && z->in.avail_out != 0)
			return progress(moved);
		size_t used, made;
		int rc = step(&z->in, 0, src, dst, Z_SYNC_FLUSH, &used, &made);
		/* A client that ends its stream (Z_STREAM_END) or sends garbage
		 * cannot say anything more: the connection ends. */
		if (rc != Z_OK && rc != Z_BUF_ERROR) {
			/* libevent 2.1 ignores BEV_ERROR from an input filter:
			 * the session learns it as an error event and closes. */
			if (!z->failed && z->bev != NULL)
				bufferevent_trigger_event(z->bev, BEV_EVENT_ERROR, BEV_TRIG_DEFER_CALLBACKS);
			z->failed = 1;
			evbuffer_drain(src, evbuffer_get_length(src));
			return BEV_ERROR;
		}
		if (used == 0 && made == 0)
			return progress(moved);
		moved = 1;
	}
}

static enum bufferevent_filter_result deflate_filter(struct evbuffer *src, struct evbuffer *dst,
                                                     ev_ssize_t limit, enum bufferevent_flush_mode mode,
                                                     void *arg)
{
	(void)limit;
	(void)mode;
	struct zpair *z = arg;
	int moved = 0;
	for (;;) {
		size_t used, made;
		int rc = step(&z->out, 1, src, dst, Z_SYNC_FLUSH, &used, &made);
		if (rc != Z_OK && rc != Z_BUF_ERROR)
			return BEV_ERROR;
		moved |= used > 0 || made > 0;
		/* done when every byte went in and zlib had room for all it made */
		if (evbuffer_get_length(src) == 0 && z->out.avail_out != 0)
			return progress(moved);
		if (used == 0 && made == 0)
			return progress(moved);
	}
}

struct bufferevent *ag_compress_wrap(struct bufferevent *under)
{
	struct zpair *z = calloc(1, sizeof(*z));
	if (z == NULL)
		return NULL;
	z->in.avail_out = 1; /* nothing held back yet (see inflate_filter) */
	if (inflateInit2(&z->in, -15) != Z_OK) {
		free(z);
		return NULL;
	}
	if (deflateInit2(&z->out, DEFLATE_LEVEL, Z_DEFLATED, -DEFLATE_WINDOW_BITS, DEFLATE_MEM_LEVEL,
	                 Z_DEFAULT_STRATEGY) != Z_OK) {
		inflateEnd(&z->in);
		free(z);
		return NULL;
	}
	struct bufferevent *bev = bufferevent_filter_new(under, inflate_filter, deflate_filter,
	                                                 BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS, zpair_free, z);
	if (bev == NULL)
		zpair_free(z);
	else
		z->bev = bev;
	return bev;
}
