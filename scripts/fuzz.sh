#!/bin/sh
# Builds the libFuzzer targets (clang) and runs each for a bounded time
# over a scratch copy of its corpus; exits non-zero on any finding (the
# crash input is left in build-fuzz/findings/). One line per target,
# "TARGET ok" or "TARGET FINDING", goes to build-fuzz/fuzz-results (.ci/run
# counts them).
#   scripts/fuzz.sh [SECONDS]     default 60 per target
set -eu
cd "$(dirname "$0")/.."
secs=${1:-60}
# the targets of fuzz/meson.build (fuzz_targets); each has a corpus
targets="block segment parse ndjson holds audit catalog minib dgroup"
for d in fuzz/corpus/*/; do
	case " $targets " in
	*" $(basename "$d") "*) ;;
	*) echo "fuzz.sh: $d: target missing from \$targets" >&2; exit 2 ;;
	esac
done
scripts/setup-debian.sh
if [ ! -d build-fuzz ]; then
	CC=clang meson setup build-fuzz -Dfuzzing=true -Dbench=disabled \
		>/dev/null
fi
results=build-fuzz/fuzz-results
rm -f "$results"
ninja -C build-fuzz $(for t in $targets; do echo fuzz/fuzz_$t; done)
mkdir -p build-fuzz/findings
: >"$results"
status=0
for t in $targets; do
	work=$(mktemp -d)
	cp fuzz/corpus/$t/* "$work/"
	echo "=== fuzz_$t for ${secs}s"
	if TMPDIR=/dev/shm build-fuzz/fuzz/fuzz_$t -max_total_time="$secs" \
		-artifact_prefix=build-fuzz/findings/$t- -print_final_stats=1 \
		"$work" 2>build-fuzz/fuzz_$t.log; then
		echo "$t ok" >>"$results"
	else
		echo "fuzz_$t: FINDING (see build-fuzz/findings/, build-fuzz/fuzz_$t.log)"
		tail -30 build-fuzz/fuzz_$t.log
		echo "$t FINDING" >>"$results"
		status=1
	fi
	grep -E "stat::number_of_executed_units|stat::peak_rss" \
		build-fuzz/fuzz_$t.log || true
	rm -rf "$work"
done
exit $status
