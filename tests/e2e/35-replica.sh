#!/usr/bin/env bash
# Read-only replicas: two dev-dirs on this machine stand in for two hosts
# over one bucket (a file:// one here; 36-replica-s3.sh runs this script
# against s3rver, 36-replica-s3-rgw.sh against Ceph RGW). The writer's
# files written, renamed, deleted and overwritten appear on the replica
# byte-identical (the delay is printed, not asserted: tests wait for
# conditions, bench/bench_replica.sh measures); the replica's writes fail
# with EROFS; the writer's gc while the replica reads a large file gives
# it no error and no wrong byte (a removed segment is re-resolved through
# newer metadata); the writer killed with kill -9 and remounted, the
# replica follows on; a replica restarted resumes from its cache-dir.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/remote-lib.sh"
require_fuse
require_cmds "Debian: rsync attr acl python3" rsync setfattr setfacl python3
W=$T/writer WM=$T/wmnt R=$T/replica RM=$T/rmnt
if [ -n "${ZF_REPLICA_S3:-}" ]; then
	. "$(dirname "$0")/s3-server.sh"
	s3_up zf-replica
	URL="s3://zf-replica/fs?endpoint=$S3_ENDPOINT"
else
	URL=file://$T/bucket
fi
if [ -n "${ZF_SANITIZED:-}" ]; then big=24000000; else big=48000000; fi
exec 3>&1
kill_daemons_at_exit

# wait_for SECS CMD...: CMD succeeds within SECS; the time it took to fd 3
wait_for() {
	local secs=$1 t0 i
	shift
	t0=$(date +%s.%N)
	for i in $(seq 1 $((secs * 10))); do
		if "$@" >/dev/null 2>&1; then
			echo "# $(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $t0 }") s until: $*" >&3
			return 0
		fi
		sleep 0.1
	done
	echo "not within $secs s: $*"
	"$ZEROFS" stats "$RM" | grep -i "replica\|bucket"
	return 1
}
# the replica shows the tree $T/ref (contents and metadata)
shows_ref() { same_tree "$T/ref" "$RM"; }
applied() { "$ZEROFS" stats --json "$RM" | sed -n 's/.*"applied_log_record": \([0-9]*\).*/\1/p'; }
writer_seq() { "$ZEROFS" stats --json "$RM" | sed -n 's/.*"writer_log_record": \([0-9]*\).*/\1/p'; }
# the replica's meta/ holds at most two log files
few_logs() { test "$(ls "$R/meta" | grep -c "^log\.")" -le 2; }
# the replica read the head and applied everything it named
caught_up() {
	"$ZEROFS" stats --json "$RM" | grep -q '"head_read_at": [1-9]' && test "$(applied)" -ge "$(writer_seq)"
}

test_expect_success 'setup: a writer with every file type; a replica of its bucket shows the same tree' '
	$ZEROFS mkfs --remote "$URL" "$W" >/dev/null && make_tree "$T/ref" $big &&
	zf_mount "$W" "$WM" -o log="$T/w.log" && rsync -aHAX "$T/ref/" "$WM/" && $ZEROFS sync "$WM" &&
	zf_mount "$R" "$RM" --replica "$URL" -o cache_size=16M >"$T/out" 2>&1 && cat "$T/out" &&
	grep -q "zerofs replica of $URL" "$R/replica" &&
	same_tree "$T/ref" "$RM" &&
	grep -q "^zerofs:$(realpath "$R") .* ro[,\ ]" /proc/mounts &&
	$ZEROFS stats "$RM" >"$T/st" && cat "$T/st" &&
	grep -q "^replica: *at log record [0-9]* of the writer.s [0-9]* (0 behind" "$T/st" &&
	! grep -q "^uploaded up to" "$T/st"
'
test_expect_success 'writes, renames, deletes and overwrites on the writer appear on the replica' '
	echo new >"$T/ref/new" && cp -p "$T/ref/new" "$WM/new" &&
	mv "$T/ref/dir/rand" "$T/ref/moved" && mv "$WM/dir/rand" "$WM/moved" &&
	touch -r "$WM/dir" "$T/ref/dir" &&
	rm "$T/ref/small" && rm "$WM/small" &&
	head -c 2000000 /dev/urandom >"$T/ref/big" && cp "$T/ref/big" "$WM/big" &&
	touch -r "$T/ref/big" "$WM/big" && mkdir "$T/ref/newdir" "$WM/newdir" &&
	touch -r "$WM" "$T/ref" && touch -r "$WM/newdir" "$T/ref/newdir" &&
	setfattr -n user.k -v v "$T/ref/new" && setfattr -n user.k -v v "$WM/new" &&
	wait_for 60 shows_ref && same_tree "$T/ref" "$RM"
'
test_expect_success 'a file the replica has open and cached changes under it: it reads the new bytes' '
	head -c 300000 /dev/urandom >"$T/ref/over" && cp "$T/ref/over" "$WM/over" &&
	wait_for 60 cmp "$T/ref/over" "$RM/over" &&
	exec 7<"$RM/over" && cat <&7 >/dev/null &&
	head -c 300000 /dev/urandom >"$T/ref/over" && cp "$T/ref/over" "$WM/over" &&
	wait_for 60 cmp "$T/ref/over" "$RM/over" && cmp "$T/ref/over" /proc/self/fd/7 &&
	touch -r "$WM/over" "$T/ref/over"
'
test_expect_success 'the replica is read-only: every write fails with EROFS' '
	for c in "touch $RM/x" "mkdir $RM/d" "rm $RM/new" "mv $RM/new $RM/n2" \
		"setfattr -n user.a -v b $RM/new" "truncate -s 0 $RM/new" "ln -s a $RM/l" \
		"chmod 600 $RM/new"; do
		! $c 2>"$T/err" && grep -q "Read-only file system" "$T/err" || { echo "$c"; cat "$T/err"; exit 1; }
	done &&
	same_tree "$T/ref" "$RM"
'
test_expect_success 'the writer'"'"'s gc moves a file'"'"'s data while the replica reads it: no error, no wrong byte' '
	zf_umount "$RM" && zf_mount "$R" "$RM" --replica "$URL" -o cache_size=16M,poll=3600 &&
	: >"$WM/gcfile" && : >"$WM/gcjunk" &&
	for i in $(seq 1 12); do
		head -c 1000000 /dev/urandom >>"$WM/gcfile" && sync "$WM/gcfile" &&
		head -c 1000000 /dev/urandom >>"$WM/gcjunk" && sync "$WM/gcjunk" || exit 1
	done &&
	cp "$WM/gcfile" "$T/ref/gcfile" && touch -r "$WM/gcfile" "$T/ref/gcfile" &&
	$ZEROFS sync "$WM" && $ZEROFS umount "$RM" &&
	zf_mount "$R" "$RM" --replica "$URL" -o cache_size=16M,poll=3600 &&
	wait_for 60 caught_up &&
	rm "$WM/gcjunk" && $ZEROFS gc "$WM" >"$T/gc" && cat "$T/gc" &&
	grep -q "^moved: *[1-9][0-9]* chunks" "$T/gc" && grep -q "^bucket, freed: *[1-9]" "$T/gc" &&
	cmp "$T/ref/gcfile" "$RM/gcfile" && $ZEROFS stats "$RM" >"$T/st" && cat "$T/st" &&
	grep -q "^replica: .* [1-9][0-9]* reads re-resolved" "$T/st" && caught_up
'
test_expect_success 'reads go on through gc after gc (poll 1 s): the same bytes every time' '
	zf_umount "$RM" && zf_mount "$R" "$RM" --replica "$URL" -o cache_size=8M &&
	( for i in 1 2 3 4 5 6; do cmp "$T/ref/gcfile" "$RM/gcfile" || exit 1; done ) &
	reader=$! &&
	for i in 1 2 3; do
		head -c 3000000 /dev/urandom >"$WM/churn$i" && $ZEROFS sync "$WM" &&
		rm "$WM/churn$i" && $ZEROFS gc "$WM" >/dev/null || exit 1
	done &&
	wait $reader && cmp "$T/ref/gcfile" "$RM/gcfile"
'
test_expect_success 'the writer killed with kill -9 and mounted again: the replica follows on' '
	echo before >"$WM/k1" && sync "$WM/k1" && echo before >"$T/ref/k1" && touch -r "$WM/k1" "$T/ref/k1" &&
	$ZEROFS sync "$WM" && zf_kill9 "$W" "$WM" &&
	zf_mount "$W" "$WM" -o log="$T/w.log" && echo after >"$WM/k2" && echo after >"$T/ref/k2" &&
	touch -r "$WM/k2" "$T/ref/k2" && touch -r "$WM" "$T/ref" &&
	wait_for 60 shows_ref
'
test_expect_success 'a replica restarted resumes from its cache-dir and catches up' '
	zf_umount "$RM" &&
	echo while-away >"$WM/away" && echo while-away >"$T/ref/away" &&
	touch -r "$WM/away" "$T/ref/away" && touch -r "$WM" "$T/ref" && $ZEROFS sync "$WM" &&
	zf_mount "$R" "$RM" --replica "$URL" && wait_for 60 shows_ref
'
test_expect_success 'the writer'"'"'s checkpoint removes the log pieces the replica needs: it loads the table again' '
	zf_umount "$RM" &&
	for i in $(seq 1 300); do echo $i >"$WM/m$i" && echo $i >"$T/ref/m$i" || exit 1; done &&
	for i in $(seq 1 300); do touch -r "$WM/m$i" "$T/ref/m$i"; done && touch -r "$WM" "$T/ref" &&
	$ZEROFS sync "$WM" && { $ZEROFS gc "$WM" >/dev/null || { tail -5 "$T/w.log"; exit 1; }; } &&
	$ZEROFS sync "$WM" &&
	zf_mount "$R" "$RM" --replica "$URL" && wait_for 60 shows_ref &&
	$ZEROFS stats "$RM" | grep -q "^replica: .* [1-9][0-9]* reloads"
'
test_expect_success 'the replica'"'"'s meta/ does not grow: the writer'"'"'s checkpoint replaces its logs there' '
	for i in $(seq 1 12); do
		echo $i >"$WM/t$i" && echo $i >"$T/ref/t$i" && $ZEROFS sync "$WM" || exit 1
	done &&
	for i in $(seq 1 12); do touch -r "$WM/t$i" "$T/ref/t$i"; done && touch -r "$WM" "$T/ref" &&
	wait_for 60 shows_ref && ls "$R/meta" | grep -c "^log\." >"$T/nlogs" &&
	echo "# replica meta/ before the writer'"'"'s checkpoint: $(cat "$T/nlogs") log files" >&3 &&
	test "$(cat "$T/nlogs")" -ge 6 &&
	$ZEROFS gc "$WM" >/dev/null && $ZEROFS sync "$WM" &&
	wait_for 60 few_logs && test "$(ls "$R/meta" | grep -c "^ckpt\.")" = 1 &&
	zf_umount "$RM" && zf_mount "$R" "$RM" --replica "$URL" && shows_ref
'
test_expect_success 'refusals: a writer mount of the cache-dir, a replica of a dev-dir or of no filesystem' '
	zf_umount "$RM" &&
	! $ZEROFS mount "$R" "$RM" 2>"$T/err" && cat "$T/err" &&
	grep -q "is a replica.s cache-dir" "$T/err" && ! mountpoint -q "$RM" &&
	mkdir -p "$T/o" && $ZEROFS mkfs "$T/o/dev" >/dev/null &&
	! $ZEROFS mount --replica "$URL" "$T/o/dev" "$RM" 2>"$T/err" && cat "$T/err" &&
	grep -q "is a writer.s dev-dir, not a replica.s cache-dir" "$T/err" &&
	! $ZEROFS mount --replica "file://$T/nothing" "$T/o/r2" "$RM" 2>"$T/err" && cat "$T/err" &&
	test "$(wc -l <"$T/err")" -le 3 && ! mountpoint -q "$RM" && test ! -e "$T/o/r2/replica" &&
	expect_code 2 $ZEROFS mount --replica "" "$T/o/r3" "$RM" &&
	expect_code 2 $ZEROFS mount --replica /not/a/url "$T/o/r3" "$RM"
'
test_expect_success 'failover: the writer lost, its bucket restored into another dev-dir that writes on; the replica follows' '
	zf_mount "$R" "$RM" --replica "$URL" && wait_for 60 caught_up &&
	zf_kill9 "$W" "$WM" && $ZEROFS lease-break "$URL" &&
	$ZEROFS mkfs --restore "$URL" "$T/writer2" >/dev/null &&
	zf_mount "$T/writer2" "$WM" -o log="$T/w2.log" &&
	echo after-failover >"$WM/fo" && echo after-failover >"$T/ref/fo" && rm "$WM/new" "$T/ref/new" &&
	touch -r "$WM/fo" "$T/ref/fo" && touch -r "$WM" "$T/ref" &&
	wait_for 60 shows_ref
'
test_expect_success 'the writer unmounts cleanly and passes fsck; no sanitizer reports' '
	zf_umount "$RM" && zf_umount "$WM" && zf_fsck_clean "$T/writer2" && no_san_reports
'
test_done
