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
$lt scan "$store" --since 2026-10-20T19:00:00Z --until 2026-10-20T20:00:00Z \
	--limit 5
printf 'rows in that hour: '
$lt scan "$store" --since 2026-10-20T19:00:00Z --until 2026-10-20T20:00:00Z \
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
$lt verify "$store"
