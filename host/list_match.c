/* list_match.c - LIST / LSUB mailbox patterns in bounded time.
 *
 * A backtracking matcher tries every split of the name at every wildcard:
 * "*a*a*a*ab" against 1,000 'a' is some 10^10 steps. Here the pattern is
 * read once, left to right, keeping reach[j] = "the pattern so far can end
 * just before name[j]" for every j; each pattern character updates the set
 * in one pass over the name, so a match costs at most
 * (pattern length) x (name length + 1) steps, and stops as soon as no
 * position is reachable. */
#include "host/list_match.h"

#include <stdlib.h>
#include <string.h>

int ag_list_pattern_init(struct ag_list_pattern *p, const char *pattern, size_t len)
{
	p->literals = 0;
	p->text = malloc(len + 1);
	if (p->text == NULL)
		return -1;
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		char c = pattern[i];
		if (c == '*' || c == '%') {
			/* A run of wildcards is '*' when it holds one, else '%'. */
			if (n > 0 && (p->text[n - 1] == '*' || p->text[n - 1] == '%')) {
				if (c == '*')
					p->text[n - 1] = '*';
				continue;
			}
		} else {
			p->literals++;
		}
		p->text[n++] = c;
	}
	p->text[n] = '\0';
	return 0;
}

void ag_list_pattern_free(struct ag_list_pattern *p)
{
	free(p->text);
	p->text = NULL;
}

int ag_list_match(const struct ag_list_pattern *p, const char *name, char delimiter)
{
	size_t n = strlen(name);
	if (p->literals > n)
		return 0;
	unsigned char small[256];
	unsigned char *reach = n + 1 <= sizeof(small) ? small : malloc(n + 1);
	if (reach == NULL)
		return 0;
	memset(reach, 0, n + 1);
	reach[0] = 1;
	int any = 1;
	for (const char *pp = p->text; *pp != '\0' && any; pp++) {
		char c = *pp;
		any = 0;
		if (c == '*') {
			/* reach[j] = some reach[k], k <= j */
			unsigned char on = 0;
			for (size_t j = 0; j <= n; j++) {
				on |= reach[j];
				reach[j] = on;
			}
			any = on;
		} else if (c == '%') {
			/* the same, but the skipped characters hold no delimiter */
			unsigned char on = 0;
			for (size_t j = 0; j <= n; j++) {
				if (j > 0 && name[j - 1] == delimiter)
					on = 0;
				on |= reach[j];
				reach[j] = on;
				any |= on;
			}
		} else {
			/* one character: backwards, so that reach[j - 1] is the old one */
			for (size_t j = n; j > 0; j--) {
				reach[j] = reach[j - 1] && name[j - 1] == c;
				any |= reach[j];
			}
			reach[0] = 0;
		}
	}
	int hit = any && reach[n];
	if (reach != small)
		free(reach);
	return hit;
}
