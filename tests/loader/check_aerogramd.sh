#!/bin/sh
# check_aerogramd.sh - `aerogramd -c FILE -t` stops with one clear line for
# each kind of bad driver or configuration, and accepts a good one.
# usage: check_aerogramd.sh BUILD_DIR
set -u
B=${1:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

# expect_fail NAME PATTERN...: aerogramd -t on $tmp/NAME.ini must exit non-zero
# with one line on stderr containing every pattern.
expect_fail() {
	name=$1; shift
	if "$B/aerogramd" -c "$tmp/$name.ini" -t >"$tmp/out" 2>"$tmp/err"; then
		echo "FAIL: $name: aerogramd -t exited 0"; failures=$((failures + 1)); return
	fi
	for pattern in "$@"; do
		if ! grep -qF -- "$pattern" "$tmp/err"; then
			echo "FAIL: $name: no '$pattern' in: $(cat "$tmp/err")"; failures=$((failures + 1)); return
		fi
	done
	if [ "$(wc -l <"$tmp/err")" -ne 1 ]; then
		echo "FAIL: $name: expected one line, got: $(cat "$tmp/err")"; failures=$((failures + 1)); return
	fi
	echo "ok: $name: $(cat "$tmp/err")"
}

printf '[storage]\ndriver = %s/nonexistent/aerogram_gone.so\n' "$tmp" >"$tmp/missing.ini"
expect_fail missing "$tmp/nonexistent/aerogram_gone.so" "not found"

major=$(sed -n 's/^#define AEROGRAM_ABI_MAJOR \([0-9]*\).*/\1/p' sdk/include/aerogram/driver.h)
minor=$(sed -n 's/^#define AEROGRAM_ABI_MINOR \([0-9]*\).*/\1/p' sdk/include/aerogram/driver.h)
printf '[storage]\ndriver = major\ndriver_dir = %s/tests/loader\n' "$B" >"$tmp/major.ini"
expect_fail major "$B/tests/loader/aerogram_major.so" "ABI major version $((major + 1))" "$major.$minor"

printf '[storage]\ndriver = memory\ndriver_dir = %s/drivers\nbogus_key = 1\n' "$B" >"$tmp/unknown.ini"
expect_fail unknown "aerogram_memory.so" "bogus_key"

printf '[storage\ndriver = memory\n' >"$tmp/broken.ini"
expect_fail broken "$tmp/broken.ini"

printf '[demo]\npassword = {PLAIN}demo\n' >"$tmp/users.ini"
chmod 600 "$tmp/users.ini"
printf '[storage]\ndriver = memory\ndriver_dir = %s/drivers\n[auth]\nusers_file = %s/users.ini\n' "$B" "$tmp" >"$tmp/good.ini"
if "$B/aerogramd" -c "$tmp/good.ini" -t >"$tmp/out" 2>"$tmp/err"; then
	echo "ok: good: $(cat "$tmp/out")"
else
	echo "FAIL: good: aerogramd -t exited non-zero: $(cat "$tmp/err")"; failures=$((failures + 1))
fi

if [ "$failures" -ne 0 ]; then
	echo "check_aerogramd.sh: $failures failure(s)"
	exit 1
fi
echo "check_aerogramd.sh: all passed"
