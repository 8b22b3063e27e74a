# tests/lib/: the CUnit main every CUnit program links (cu_main.c) and the
# Python harness package of every Python test and benchmark (agtest/), with
# the test of that package: it must see a daemon that died, a sanitizer
# report, a NO and a dropped connection, or no test built on it could.
CHECKS += check-agtest
.PHONY: check-agtest
check-agtest: $(B)/aerogramd $(B)/aerogramctl $(B)/drivers/aerogram_memory.so $(B)/drivers/aerogram_sqlite.so \
		$(B)/drivers/aerogram_faulty.so $(B)/drivers/aerogram_counting.so
	AEROGRAMD=$(B)/aerogramd AEROGRAMCTL=$(B)/aerogramctl AG_TEST_DRIVER=$(B)/drivers/aerogram_memory.so \
		python3 tests/lib/test_agtest.py
