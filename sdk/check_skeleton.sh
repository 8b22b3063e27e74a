#!/bin/sh
# check_skeleton.sh - the skeleton driver builds outside the tree against an
# installed SDK found with pkg-config only, loads, and fails the conformance
# suite with nothing but "not supported" answers.
# usage: check_skeleton.sh BUILD_DIR PKGCONFIGDIR   (run from the top of the tree)
set -u
B=$1
PCDIR=$2
top=$(pwd)
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT

make --no-print-directory -s install DESTDIR="$dest" >"$dest.log" 2>&1 || { cat "$dest.log"; rm -f "$dest.log"; echo "FAIL: make install"; exit 1; }
rm -f "$dest.log"

work="$dest/work"
mkdir -p "$work"
cp sdk/examples/skeleton/skeleton.c "$work/"
cflags=$(PKG_CONFIG_PATH= PKG_CONFIG_LIBDIR="$dest$PCDIR" PKG_CONFIG_SYSROOT_DIR="$dest" pkg-config --cflags aerogram-driver) || {
	echo "FAIL: pkg-config does not find aerogram-driver in $dest$PCDIR"; exit 1; }
case "$cflags" in *"$dest"*) ;; *) echo "FAIL: pkg-config cflags do not point into DESTDIR: $cflags"; exit 1 ;; esac
driver_cflags=$(PKG_CONFIG_PATH= PKG_CONFIG_LIBDIR="$dest$PCDIR" PKG_CONFIG_SYSROOT_DIR="$dest" pkg-config --variable=driver_cflags aerogram-driver)
[ -n "$driver_cflags" ] || { echo "FAIL: aerogram-driver.pc has no driver_cflags"; exit 1; }
cflags="$cflags $driver_cflags"
echo "pkg-config --cflags aerogram-driver, --variable=driver_cflags: $cflags"
(cd "$work" && ${CC:-cc} -shared $cflags -o aerogram_skeleton.so skeleton.c) || { echo "FAIL: the skeleton does not build"; exit 1; }
exports=$(nm -D --defined-only "$work/aerogram_skeleton.so" | awk '{print $3}')
[ "$exports" = aerogram_driver_entry ] || { echo "FAIL: the skeleton exports: $exports"; exit 1; }

"$top/$B/aerogram-driver-check" "$work/aerogram_skeleton.so" >"$work/out" 2>&1
rc=$?
if [ $rc -eq 0 ]; then
	echo "FAIL: the conformance suite passed on a driver that does nothing"; exit 1
fi
if [ $rc -ne 1 ]; then
	cat "$work/out"; echo "FAIL: the skeleton did not load (exit $rc)"; exit 1
fi
grep -q '^aerogram-driver-check: driver skeleton' "$work/out" || { cat "$work/out"; echo "FAIL: the skeleton did not load"; exit 1; }
total=$(grep -c '^FAILURE: ' "$work/out")
other=$(grep '^FAILURE: ' "$work/out" | grep -vc 'not supported')
if [ "$total" -eq 0 ] || [ "$other" -ne 0 ]; then
	grep '^FAILURE: ' "$work/out" | grep -v 'not supported'
	echo "FAIL: $other of $total failures are not 'not supported'"; exit 1
fi
grep '^aerogram-driver-check: .* tests run' "$work/out"
echo "check-skeleton: the skeleton loads and fails with $total 'not supported' failures only"
