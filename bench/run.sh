#!/bin/sh
# bench/run.sh - builds qlbench and runs the benchmark (bench/README.md).
#
#   bench/run.sh            10M records over 35 days (~20 min on 2 cores)
#   bench/run.sh --quick    1M records (~3 min)
#
# Other arguments go to qlbench (bench/run.sh --help lists them).
# Environment: BUILD, the build directory (default build-qlbench: a
# release build of its own, so neither the developers' build/ nor CI's
# build-bench/ (-O2, warnings as errors) changes configuration);
# OUT, where results go (default bench/out).
# Needs the peers: scripts/setup-debian.sh --bench.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
build=${BUILD:-$top/build-qlbench}
out=${OUT:-$here/out}

if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" --buildtype=release -Dbench=enabled >&2
else
	meson configure "$build" --buildtype=release -Dbench=enabled >&2
fi
ninja -C "$build" bench/qlbench >&2

# The library commit measured; "+dirty" if the library has uncommitted
# changes (the figures are then not reproducible from the commit alone).
commit=$(git -C "$top" log -1 --format=%h 2>/dev/null || echo unknown)
if [ -n "$(git -C "$top" status --porcelain --untracked-files=no -- \
	include store meson.build 2>/dev/null)" ]; then
	commit="$commit+dirty"
fi
exec "$build/bench/qlbench" --out "$out" --commit "$commit" "$@"
