/* hash.h - the string hash of the tree's hash tables (FNV-1a, 64 bits):
 * THREAD's Message-ID and subject tables, the body cache, the mailbox list
 * cache. Not for anything an attacker could aim collisions at on purpose
 * beyond what a chain walk costs. */
#ifndef AG_PROTOCOL_HASH_H
#define AG_PROTOCOL_HASH_H

#include <stdint.h>

static inline uint64_t ag_hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

#endif
