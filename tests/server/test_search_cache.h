/* test_search_cache.h - the search cache tests, registered by test_server_unit.c. */
#ifndef AG_TESTS_SERVER_TEST_SEARCH_CACHE_H
#define AG_TESTS_SERVER_TEST_SEARCH_CACHE_H

/* Adds the "search cache" suite to the CUnit registry. */
void search_cache_tests_add(void);

#endif
