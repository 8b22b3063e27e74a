/* test_sort.h - the SORT and THREAD algorithm tests, registered by test_mime.c. */
#ifndef AG_TESTS_MIME_TEST_SORT_H
#define AG_TESTS_MIME_TEST_SORT_H

/* Adds the "sort and thread" suite to the CUnit registry. */
void sort_tests_add(void);

#endif
