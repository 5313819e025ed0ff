#!/bin/sh
# The main job on a demo store: installs what is missing (Debian 12, as
# root), builds, generates a realistic sample of the workload
# (shared/WORKLOAD.md: 1,000,000 records over 28 days ending
# 2026-11-01T00:00Z), imports it, prints stats, runs a one-hour scan, a
# pen-register / trap-and-trace lookup of one handle and a network lookup.
#   scripts/demo.sh [RECORDS]
set -eu
cd "$(dirname "$0")/.."
records=${1:-1000000}
scripts/setup-debian.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null
lt=build/logtool
store=demo-store
now=2026-11-01T01:00:00Z   # the sample's "now": just after its last record
rm -rf "$store" demo.ndjson
echo "== generate $records records (seed 1, 28 days)"
build/qlgen --records "$records" --days 28 > demo.ndjson
echo "== import"
$lt import "$store" demo.ndjson --now $now
echo "== stat"
$lt stat "$store" | sed -n '1,11p'
echo "== scan one hour (first 5 rows; rows counted)"
$lt scan "$store" --since 2026-10-20T19:00:00Z --until 2026-10-20T20:00:00Z --now $now \
	--limit 5
printf 'rows in that hour: '
$lt scan "$store" --since 2026-10-20T19:00:00Z --until 2026-10-20T20:00:00Z --now $now \
	-o csv | tail -n +2 | wc -l
h=$(head -n 1 demo.ndjson | sed 's/.*"requester":"\([^"]*\)".*/\1/')
echo "== whom did $h look up (pen register), last 3"
$lt query "$store" --handle "$h" --role requester --now $now | tail -n 3
printf 'records of %s in any role: ' "$h"
$lt query "$store" --handle "$h" --count --now $now
ip=$(head -n 1 demo.ndjson | sed 's/.*"ip":"\([^"]*\)".*/\1/')
case $ip in
*:*) net=$(echo "$ip" | cut -d: -f1-3)::/48 ;;
*) net=$(echo "$ip" | cut -d. -f1-3).0/24 ;;
esac
printf 'records from network %s: ' "$net"
$lt query "$store" --ip "$net" --count --now $now
echo "== verify"
$lt verify "$store" --now $now
later=2026-11-10T00:00:00Z
echo "== a court order holds 2026-10-05, then the cron audit at $later"
$lt hold place "$store" --order DEMO-ORDER-1 --from 2026-10-05 \
	--to 2026-10-05T23:59:59Z --until 2026-12-31 --period 90d \
	--reason "demo preservation order" --subject "$h" --by demo --now $later
$lt hold list "$store" --now $later
status=0
$lt audit "$store" --now $later || status=$?
echo "(audit exit status $status: 1 = violations found)"
echo "== the audit enforces retention, then finds nothing to say"
$lt audit "$store" --enforce --now $later
$lt audit "$store" --now $later && echo "(audit quiet, exit status 0)"
$lt stat "$store" | sed -n '1,2p'
