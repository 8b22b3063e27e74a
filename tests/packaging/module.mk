# tests/packaging/: install-deps' package lists, .ci/run against the README,
# the manual pages against the configuration parser, and the Debian
# packages (`make deb`, then lintian, their contents, a scratch root).
CHECKS += check-packaging
.PHONY: check-packaging
check-packaging:
	$(MAKE) --no-print-directory deb
	python3 tests/packaging/test_packaging.py
