#!/bin/sh
# cli.sh - logtool end to end: outputs and exit codes as documented in
# logtool(1). Usage: cli.sh LOGTOOL QLGEN
set -u
lt=$1
gen=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/qlcli.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
now=2026-11-01T01:00:00Z
pass=0
fail=0

ok() {
	pass=$((pass + 1))
}

bad() {
	fail=$((fail + 1))
	echo "FAIL: $*" >&2
}

# expect STATUS DESCRIPTION -- COMMAND...: runs COMMAND, output in
# $tmp/out and $tmp/err, checks the exit status.
expect() {
	e_want=$1
	e_what=$2
	shift 3
	"$@" >"$tmp/out" 2>"$tmp/err"
	e_got=$?
	if [ "$e_got" -eq "$e_want" ]; then
		ok
	else
		bad "$e_what: exit $e_got, want $e_want"
		sed 's/^/  stderr: /' "$tmp/err" | head -5 >&2
	fi
}

contains() {
	if grep -q -- "$2" "$1"; then
		ok
	else
		bad "$3: '$2' not in $1"
		head -5 "$1" | sed 's/^/  /' >&2
	fi
}

same() {
	if [ "$1" = "$2" ]; then
		ok
	else
		bad "$3: got '$1', want '$2'"
	fi
}

"$gen" --records 20000 --days 7 >"$tmp/in.ndjson" || exit 1
n=$(wc -l <"$tmp/in.ndjson")

# import, stat
expect 0 "import" -- "$lt" import "$tmp/s" "$tmp/in.ndjson" --now $now
contains "$tmp/err" "imported $n records, 0 bad lines" "import summary"
expect 0 "stat" -- "$lt" stat "$tmp/s"
contains "$tmp/out" "records: *$n" "stat records"
expect 0 "stat json" -- "$lt" stat "$tmp/s" -o json
contains "$tmp/out" "\"records\": *$n" "stat json records"

# an export imports back unchanged
expect 0 "scan json" -- "$lt" scan "$tmp/s" -o json
cp "$tmp/out" "$tmp/export1"
same "$(wc -l <"$tmp/export1")" "$n" "scan row count"
expect 0 "re-import" -- "$lt" import "$tmp/s2" "$tmp/export1" --now $now
expect 0 "scan again" -- "$lt" scan "$tmp/s2" -o json
if cmp -s "$tmp/out" "$tmp/export1"; then ok; else bad "round trip differs"; fi

# queries agree with a brute-force count over the input
h=$(sed -n '77p' "$tmp/in.ndjson" | sed 's/.*"requester":"\([^"]*\)".*/\1/')
want=$(grep -c "\"$h\"" "$tmp/in.ndjson")
expect 0 "query handle" -- "$lt" query "$tmp/s" --handle "$h" --count --now $now
same "$(cat "$tmp/out")" "$want" "handle $h any role"
want=$(grep -c "\"requester\":\"$h\"" "$tmp/in.ndjson")
expect 0 "query requester" -- "$lt" query "$tmp/s" --handle "$h" \
	--role requester --count --now $now
same "$(cat "$tmp/out")" "$want" "handle $h as requester"
ip=$(sed -n '5p' "$tmp/in.ndjson" | sed 's/.*"ip":"\([^"]*\)".*/\1/')
want=$(grep -c "\"ip\":\"$ip\"" "$tmp/in.ndjson")
expect 0 "query ip" -- "$lt" query "$tmp/s" --ip "$ip" --count --now $now
same "$(cat "$tmp/out")" "$want" "ip $ip"
expect 0 "query ip json" -- "$lt" query "$tmp/s" --ip "$ip" -o json
same "$(wc -l <"$tmp/out")" "$want" "ip $ip rows"
expect 1 "nothing matched" -- "$lt" query "$tmp/s" --handle +19995550100 \
	--now $now
expect 2 "malformed handle" -- "$lt" query "$tmp/s" --handle "415-555" \
	--now $now
contains "$tmp/err" "415-555" "malformed handle names the value"
expect 2 "host bits" -- "$lt" query "$tmp/s" --ip 10.1.2.3/24 --now $now
contains "$tmp/err" "10.1.2.0/24" "host bits suggests the network"
expect 2 "both subjects" -- "$lt" query "$tmp/s" --handle +14155550100 \
	--ip 10.0.0.1 --now $now
expect 2 "unknown option" -- "$lt" scan "$tmp/s" --bogus
expect 2 "unknown command" -- "$lt" frobnicate
expect 0 "help" -- "$lt" --help
contains "$tmp/out" "query" "help lists query"

# time windows
expect 0 "scan window" -- "$lt" scan "$tmp/s" --since 2026-10-30T00:00:00Z \
	--until 2026-10-30T01:00:00Z -o csv
head -n 1 "$tmp/out" | grep -q '^ts,requester,target,ip,service,result' &&
	ok || bad "csv header"
expect 1 "empty window" -- "$lt" scan "$tmp/s" --since 2020-01-01 \
	--until 2020-01-02

# bad lines: reported with their line numbers, the rest imported
{
	head -n 3 "$tmp/in.ndjson"
	echo '{"ts":1793400000000000,"requester":"+1415","target":"+14155550123","ip":"1.2.3.4","service":0,"result":1}'
	echo '{"ts":1793400000000000,"requester":"+14155550124","target":"+14155550123","ip":"01.2.3.4","service":0,"result":1}'
	echo 'not json'
	sed -n '4,6p' "$tmp/in.ndjson"
	printf '{"ts":1,\033[2J\r}\n'
} >"$tmp/bad.ndjson"
expect 1 "bad lines" -- "$lt" import "$tmp/s3" "$tmp/bad.ndjson" --now $now
contains "$tmp/err" "bad.ndjson:4:.*requester" "line 4 named"
contains "$tmp/err" "bad.ndjson:5:.*ip" "line 5 named"
contains "$tmp/err" "bad.ndjson:6:" "line 6 named"
# the input jansson quotes in its message comes out escaped (fuzz_ndjson)
contains "$tmp/err" "bad.ndjson:10: invalid JSON.*near '.x1b'" "line 10 escaped"
if tr -d '\n' <"$tmp/err" | LC_ALL=C grep -q '[[:cntrl:]]'; then
	bad "control characters in import messages"
else
	ok
fi
contains "$tmp/err" "imported 6 records, 4 bad lines" "bad line summary"

# a second writer is refused while the first holds the store
mkfifo "$tmp/fifo"
"$lt" import "$tmp/s" "$tmp/fifo" --now $now 2>/dev/null &
writer=$!
exec 9>"$tmp/fifo"
sleep 1
expect 4 "second writer" -- "$lt" import "$tmp/s" "$tmp/in.ndjson" --now $now
expect 0 "reader beside a writer" -- "$lt" query "$tmp/s" --handle "$h" \
	--count --now $now
exec 9>&-
wait $writer

# reindex gives the same answers
before=$("$lt" query "$tmp/s" --handle "$h" -o json --now $now | cksum)
expect 0 "reindex" -- "$lt" reindex "$tmp/s" --now $now
after=$("$lt" query "$tmp/s" --handle "$h" -o json --now $now | cksum)
same "$after" "$before" "query after reindex"

# verify: clean, then a flipped byte is found and the segment named
expect 0 "verify clean" -- "$lt" verify "$tmp/s"
seg=$(ls "$tmp/s/seg" | head -n 1)
printf 'X' | dd of="$tmp/s/seg/$seg" bs=1 seek=300 conv=notrunc 2>/dev/null
expect 1 "verify damaged" -- "$lt" verify "$tmp/s"
contains "$tmp/out" "$seg" "verify names the segment"

# holds, expiry and the cron audit (on the undamaged copy), at a later "now" when the first
# days of the sample are past the 30-day retention
later=2026-11-27T00:00:00Z
expect 0 "hold place" -- "$lt" hold place "$tmp/s2" --order "ORD-1" \
	--from 2026-10-25 --to 2026-10-25T23:59:59Z --until 2026-12-31 \
	--reason "test order" --subject +14155550123 --by tester --now $later
expect 2 "hold duplicate" -- "$lt" hold place "$tmp/s2" --order "ORD-1" \
	--from 2026-10-25 --reason r --now $later
expect 2 "hold reversed" -- "$lt" hold place "$tmp/s2" --order "ORD-2" \
	--from 2026-10-25 --to 2026-10-20 --reason r --now $later
expect 0 "hold show" -- "$lt" hold show "$tmp/s2" --order ORD-1 --now $later
contains "$tmp/out" "subject +14155550123" "hold show subjects"
expect 1 "hold show unknown" -- "$lt" hold show "$tmp/s2" --order NOPE \
	--now $later
expect 1 "audit finds violations" -- "$lt" audit "$tmp/s2" --now $later \
	--report "$tmp/report.json"
contains "$tmp/out" "violation retention" "audit lists the violation"
contains "$tmp/report.json" '"violations"' "audit report written"
expect 0 "expire dry run" -- "$lt" expire "$tmp/s2" --dry-run --now $later
contains "$tmp/out" "held .*20261025T000000Z.*ORD-1" "held segment named"
expect 0 "audit enforce" -- "$lt" audit "$tmp/s2" --enforce --now $later
contains "$tmp/out" "enforced" "enforcement reported"
expect 0 "audit clean" -- "$lt" audit "$tmp/s2" --now $later
same "$(wc -c <"$tmp/out")" "0" "a clean audit is quiet"
expect 0 "held data still there" -- "$lt" scan "$tmp/s2" \
	--since 2026-10-25 --until 2026-10-26 --now $later
expect 1 "expired data gone" -- "$lt" scan "$tmp/s2" --since 2026-10-25 \
	--until 2026-10-26 --now 2027-01-10
expect 0 "audit-log" -- "$lt" audit-log "$tmp/s2" --order ORD-1
contains "$tmp/out" "hold_placed" "audit-log has the hold"
expect 0 "query under an order" -- "$lt" query "$tmp/s2" --handle "$h" \
	--count --order ORD-1 --by investigator --now $later
expect 0 "audit-log query" -- "$lt" audit-log "$tmp/s2" --order ORD-1 -o json
contains "$tmp/out" '"event":"query"' "query recorded under its order"
expect 0 "hold release" -- "$lt" hold release "$tmp/s2" --order ORD-1 \
	--now $later
expect 1 "released: due again" -- "$lt" audit "$tmp/s2" --now $later
# two audits never run at once
exec 8>"$tmp/s2/AUDIT.lock"
flock -n 8 || bad "could not take the audit lock"
expect 4 "audit lock held" -- "$lt" audit "$tmp/s2" --now $later
exec 8>&-

echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
