#!/usr/bin/env bash
# bench/bench_replica.sh - how far behind its writer a replica is: a writer
# and a replica (zerofs mount --replica) of its bucket on this machine, the
# writer making a change every few seconds (a new file, a rename, an
# overwrite, a delete, each without sync), and the time from the change's
# return on the writer until the replica shows it. A benchmark: it prints
# figures, it asserts nothing about time.
#
#   bench/bench_replica.sh [ZEROFS_BINARY]     (root: it mounts)
#   env: ZF_BENCH_REPLICA_N (20)   changes of each kind
#        ZF_BENCH_DIR              scratch directory (default /var/tmp/zf-bench)
#        ZF_BENCH_URL              the bucket (default file://<dir>/bucket)
#        ZF_BENCH_POLL (1)         the replica's poll interval, seconds
#
# With the defaults the writer's data reaches the bucket within its upload
# round (1 s) after it is committed: a close of a small file commits at the
# next periodic commit (5 s, -o commit=) unless fsync'd. So the figures are
# given for both: changes made durable by fsync (the writer's upload round
# + the poll bound them) and changes left to the periodic commit. The
# reference is the writer's own recovery point (`zerofs stats`), the time a
# change takes to reach the bucket.
set -euo pipefail
ZEROFS=$(realpath "${1:-./zerofs}")
N=${ZF_BENCH_REPLICA_N:-20}
POLL=${ZF_BENCH_POLL:-1}
D=${ZF_BENCH_DIR:-/var/tmp/zf-bench}/replica
URL=${ZF_BENCH_URL:-file://$D/bucket}
for m in "$D/wm" "$D/rm"; do mountpoint -q "$m" && "$ZEROFS" umount "$m" || true; done
rm -rf "$D" && mkdir -p "$D/wm" "$D/rm"
"$ZEROFS" mkfs --remote "$URL" "$D/w" >/dev/null
"$ZEROFS" mount "$D/w" "$D/wm" -o log="$D/w.log"
"$ZEROFS" mount --replica "$URL" "$D/r" "$D/rm" -o poll="$POLL",log="$D/r.log"
trap '"$ZEROFS" umount "$D/rm" >/dev/null 2>&1; "$ZEROFS" umount "$D/wm" >/dev/null 2>&1' EXIT

now() { date +%s.%N; }
# seconds from t0 until CMD succeeds (polled every 20 ms, at most 60 s)
until_ok() {
	local t0=$1 i
	shift
	for i in $(seq 1 3000); do
		"$@" 2>/dev/null && { awk "BEGIN { printf \"%.2f\n\", $(now) - $t0 }"; return 0; }
		sleep 0.02
	done
	echo 60
}
stats3() { sort -g | awk '{ v[NR] = $1; s += $1 } END { printf "min %.2f  median %.2f  max %.2f  mean %.2f s (n=%d)", v[1], v[int((NR + 1) / 2)], v[NR], s / NR, NR }'; }

run() {
	local durable=$1 i t0 out=$D/lag-$1
	: >"$out"
	for i in $(seq 1 "$N"); do
		case $((i % 4)) in
		0) t0=$(now); echo "v$i" >"$D/wm/f$i"; [ "$durable" = 0 ] || sync "$D/wm/f$i"
		   until_ok "$t0" grep -qx "v$i" "$D/rm/f$i" >>"$out" ;;
		1) echo x >"$D/wm/g$i" && sync "$D/wm/g$i" && "$ZEROFS" sync "$D/wm" &&
		   until_ok "$(now)" test -e "$D/rm/g$i" >/dev/null
		   t0=$(now); mv "$D/wm/g$i" "$D/wm/h$i"; [ "$durable" = 0 ] || sync "$D/wm"
		   until_ok "$t0" test -e "$D/rm/h$i" >>"$out" ;;
		2) t0=$(now); head -c 100000 /dev/urandom >"$D/wm/f$((i - 2))"
		   [ "$durable" = 0 ] || sync "$D/wm/f$((i - 2))"
		   until_ok "$t0" cmp -s "$D/wm/f$((i - 2))" "$D/rm/f$((i - 2))" >>"$out" ;;
		3) t0=$(now); rm -f "$D/wm/h$((i - 2))"; [ "$durable" = 0 ] || sync "$D/wm"
		   until_ok "$t0" test ! -e "$D/rm/h$((i - 2))" >>"$out" ;;
		esac
	done
	echo "$(if [ "$durable" = 1 ]; then echo "fsync'd changes:  "; else echo "periodic commit:  "; fi) $(stats3 <"$out")"
}

echo "zerofs replica lag: $URL, poll $POLL s, $N changes each (new file, rename, overwrite, delete)"
echo "the time from a change's return on the writer until the replica shows it"
run 1
run 0
"$ZEROFS" stats "$D/rm" | grep "^replica:"
