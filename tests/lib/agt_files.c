/* agt_files.c - see agt_files.h. */
#include "tests/lib/agt_files.h"

#include <CUnit/CUnit.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void agt_tmpdir(char *out, size_t len, const char *name)
{
	const char *t = getenv("TMPDIR");
	snprintf(out, len, "%s/%s.XXXXXX", t && *t ? t : "/tmp", name);
	if (mkdtemp(out) == NULL) {
		perror(out);
		exit(2);
	}
}

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int agt_rm_rf(const char *path)
{
	return nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

int agt_write_file(const char *path, const char *text)
{
	char tmp[1024];
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	FILE *f = fopen(tmp, "w");
	if (f == NULL)
		return -1;
	int bad = fputs(text, f) < 0;
	bad |= fclose(f) != 0;
	if (bad || rename(tmp, path) != 0) {
		remove(tmp);
		return -1;
	}
	return 0;
}

const char *agt_file(const char *dir, const char *name, const char *text)
{
	static char path[1024];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	CU_ASSERT_EQUAL_FATAL(agt_write_file(path, text), 0);
	return path;
}

void agt_check_refusals(const char *dir, const char *name, const char *prefix, const struct agt_refusal *r,
                        size_t n, int (*load)(const char *path, char *err, size_t errlen))
{
	for (size_t i = 0; i < n; i++) {
		char text[4096], err[512] = "";
		snprintf(text, sizeof(text), "%s%s", prefix ? prefix : "", r[i].text);
		const char *path = agt_file(dir, name, text);
		CU_ASSERT_EQUAL(load(path, err, sizeof(err)), -1);
		CU_ASSERT_PTR_NULL(strchr(err, '\n'));
		CU_ASSERT_PTR_NOT_NULL(strstr(err, r[i].needle));
		if (strstr(err, r[i].needle) == NULL)
			fprintf(stderr, "%s %zu: '%s'\n", name, i, err);
	}
}

char *agt_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	char *p = NULL;
	size_t n = 0, cap = 0, got;
	do {
		if (cap - n < 65536) {
			char *q = realloc(p, cap = cap * 2 + 65536 + 1);
			if (q == NULL) {
				free(p);
				fclose(f);
				return NULL;
			}
			p = q;
		}
		got = fread(p + n, 1, cap - n - 1, f);
		n += got;
	} while (got > 0);
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		free(p);
		return NULL;
	}
	p[n] = '\0';
	if (len)
		*len = n;
	return p;
}
