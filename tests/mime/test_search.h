/* test_search.h - the SEARCH primitive tests, registered by test_mime.c. */
#ifndef AG_TESTS_MIME_TEST_SEARCH_H
#define AG_TESTS_MIME_TEST_SEARCH_H

/* Adds the "search" suite to the CUnit registry. */
void search_tests_add(void);

#endif
