#!/bin/sh
# Builds and runs the whole test suite (Debian 12, as root: installs what
# is missing first). Warnings are errors.
#   scripts/test.sh              normal build (build-test/)
#   scripts/test.sh --sanitize   under AddressSanitizer + UBSan (build-asan/)
#   scripts/test.sh --tsan       the concurrency tests under ThreadSanitizer
# QL_CRASH_TRIALS raises the number of kill -9 trials (default 200).
set -eu
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
dir=build-test
opts="--werror -Dbuildtype=debugoptimized"
if [ "${1:-}" = "--sanitize" ]; then
	dir=build-asan
	opts="--werror -Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false"
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi
suites=""
if [ "${1:-}" = "--tsan" ]; then
	dir=build-tsan
	opts="--werror -Dbuildtype=debugoptimized -Db_sanitize=thread -Db_lundef=false"
	export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
	suites="store concurrency"
fi
if [ -d "$dir" ]; then
	# shellcheck disable=SC2086
	meson configure "$dir" $opts >/dev/null
else
	# shellcheck disable=SC2086
	meson setup "$dir" $opts >/dev/null
fi
ninja -C "$dir"
# shellcheck disable=SC2086
meson test -C "$dir" --print-errorlogs --num-processes 2 $suites
