#!/bin/sh
# Builds the libFuzzer targets (clang) and runs each for a bounded time
# over a scratch copy of its corpus; exits non-zero on any finding (the
# crash input is left in build-fuzz/findings/).
#   scripts/fuzz.sh [SECONDS]     default 60 per target
set -eu
cd "$(dirname "$0")/.."
secs=${1:-60}
scripts/setup-debian.sh
if [ ! -d build-fuzz ]; then
	CC=clang meson setup build-fuzz -Dfuzzing=true -Dbench=disabled \
		>/dev/null
fi
ninja -C build-fuzz fuzz/fuzz_block fuzz/fuzz_segment fuzz/fuzz_parse
mkdir -p build-fuzz/findings
status=0
for t in block segment parse; do
	work=$(mktemp -d)
	cp fuzz/corpus/$t/* "$work/"
	echo "=== fuzz_$t for ${secs}s"
	if ! TMPDIR=/dev/shm build-fuzz/fuzz/fuzz_$t -max_total_time="$secs" \
		-artifact_prefix=build-fuzz/findings/$t- -print_final_stats=1 \
		"$work" 2>build-fuzz/fuzz_$t.log; then
		echo "fuzz_$t: FINDING (see build-fuzz/findings/, build-fuzz/fuzz_$t.log)"
		tail -30 build-fuzz/fuzz_$t.log
		status=1
	fi
	grep -E "stat::number_of_executed_units|stat::peak_rss" \
		build-fuzz/fuzz_$t.log || true
	rm -rf "$work"
done
exit $status
