/* compress.h - COMPRESS=DEFLATE (RFC 4978): a libevent filter that
 * inflates what the client sends and deflates what the server answers,
 * raw deflate (no zlib header) both ways. */
#ifndef AG_COMPRESS_H
#define AG_COMPRESS_H

#include <event2/bufferevent.h>

/* A filtering bufferevent over `under` (which it frees when freed). Bytes
 * already waiting in under's input are inflated too: after the tagged OK
 * of COMPRESS the client compresses everything (RFC 4978 3). Every write
 * is followed by a Z_SYNC_FLUSH, so that each response reaches the client
 * whole (an IDLE update, a continuation request) without waiting for more
 * output. NULL when memory is exhausted (`under` is then left alone). */
struct bufferevent *ag_compress_wrap(struct bufferevent *under);

#endif
