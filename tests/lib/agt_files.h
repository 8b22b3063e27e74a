/* agt_files.h - the files of the C test programs: a temporary directory,
 * whole files written and read. Linked with cu_main.c ($(CU_MAIN)). */
#ifndef AGT_FILES_H
#define AGT_FILES_H

#include <stddef.h>

/* Makes a new directory $TMPDIR/NAME.XXXXXX (/tmp without TMPDIR) into
 * out; exits the program with status 2 when it cannot. */
void agt_tmpdir(char *out, size_t len, const char *name);

/* Removes path and everything below it; 0, or -1 when something stayed. */
int agt_rm_rf(const char *path);

/* Writes text into path: into path.new first, renamed over path, so a
 * reader never sees half of it. 0, or -1 with errno. */
int agt_write_file(const char *path, const char *text);

/* In a test: writes text into DIR/NAME and returns that path (valid until
 * the next call); a fatal CUnit failure when it cannot. */
const char *agt_file(const char *dir, const char *name, const char *text);

/* A text that a loader must refuse, and what its error must contain. */
struct agt_refusal {
	const char *text;
	const char *needle;
};

/* In a test, for each of the n refusals: writes prefix (NULL: none) and
 * the text into DIR/NAME and checks that load fails (-1) with an error of
 * one line that contains the needle; prints the error that does not. */
void agt_check_refusals(const char *dir, const char *name, const char *prefix, const struct agt_refusal *r,
                        size_t n, int (*load)(const char *path, char *err, size_t errlen));

/* The whole of a file, NUL-terminated (*len, when not NULL, without the
 * NUL), to free(); NULL when it cannot be read. */
char *agt_read_file(const char *path, size_t *len);

#endif
