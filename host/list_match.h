/* list_match.h - LIST / LSUB mailbox patterns (RFC 3501 6.3.8) in bounded time. */
#ifndef AG_HOST_LIST_MATCH_H
#define AG_HOST_LIST_MATCH_H

#include <stddef.h>

/* A pattern prepared once for every name of a LIST: runs of wildcards are
 * collapsed ("**" is "*", "%*" is "*", "%%" is "%"), so its length is at most
 * twice its literal characters plus one. */
struct ag_list_pattern {
	char *text;      /* the collapsed pattern, NUL-terminated */
	size_t literals; /* characters that are not wildcards: a longer name is needed */
};

/* Prepares `pattern` (`len` bytes). Returns 0, or -1 when out of memory. */
int ag_list_pattern_init(struct ag_list_pattern *p, const char *pattern, size_t len);
void ag_list_pattern_free(struct ag_list_pattern *p);

/* Nonzero when `name` matches: '*' matches any characters, '%' any but
 * `delimiter`, every other character itself. Time is O(pattern length x name
 * length) whatever the pattern, with no recursion: one pass over the pattern
 * keeps the set of name positions reachable so far. */
int ag_list_match(const struct ag_list_pattern *p, const char *name, char delimiter);

#endif
