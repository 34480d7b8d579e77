#!/usr/bin/env bash
# Offline, and honest about it: with the bucket unreachable (net/fault.c's
# outage_file) a mount starts and serves local data; a read of evicted data
# fails with EIO after fetch_timeout and the log names its inode; zerofs
# stats says "offline since"; zerofs sync and zerofs umount give up after
# --timeout, exit non-zero and say what is pending; SIGTERM stops the
# daemon promptly (exit 3: uploads left pending); zerofs stats of the
# unmounted dev-dir shows what is pending without the bucket. With the
# bucket back, the backlog drains by itself and a restore elsewhere holds
# the same tree.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/remote-lib.sh"
require_fuse
D=$T/dev M=$T/mnt B=$T/dev.bucket
URL=file://$B
kill_daemons_at_exit

# mount_fg NAME [opts]: D on M by a foreground daemon in the background, its
# stderr in $T/NAME.log, its exit status in $T/NAME.rc once it exits, its
# pid in $T/NAME.pid; returns when the mount is live
mount_fg() {
	local name=$1 i
	shift
	mkdir -p "$M" && rm -f "$T/$name.rc"
	(
		"$ZEROFS" mount -f "$@" "$D" "$M" >/dev/null 2>"$T/$name.log"
		echo $? >"$T/$name.rc"
	) &
	echo "$M" >>"$T/.mounts"
	for i in $(seq 1 600); do
		mountpoint -q "$M" && { zf_daemon_pid "$D" "$M" >"$T/$name.pid"; return 0; }
		test -e "$T/$name.rc" && break
		sleep 0.05
	done
	echo "foreground mount did not come up:"
	cat "$T/$name.log"
	return 1
}

# daemon_rc NAME SECS: the foreground daemon's exit status, once it exited within SECS
daemon_rc() {
	local i
	for i in $(seq 1 $(($2 * 20))); do
		test -s "$T/$1.rc" && { cat "$T/$1.rc"; return 0; }
		sleep 0.05
	done
	echo "the daemon did not exit within $2 s"
	return 1
}

# wait_log FILE PATTERN SECS: FILE has a line matching PATTERN within SECS
wait_log() {
	local i
	for i in $(seq 1 $(($3 * 10))); do
		grep -q "$2" "$1" && return 0
		sleep 0.1
	done
	echo "no '$2' in $1 after $3 s:"
	cat "$1"
	return 1
}

test_expect_success 'setup: cold data only in the bucket, warm data in both; umount exits 0' '
	$ZEROFS mkfs "$D" >/dev/null &&
	echo "url fault:outage_file=$T/outage;$URL" >"$D/remote.conf" &&
	mkdir -p "$T/ref/dir" && head -c 4M /dev/urandom >"$T/ref/cold" &&
	zf_mount "$D" "$M" && cp "$T/ref/cold" "$M/cold" && $ZEROFS sync "$M" &&
	$ZEROFS umount "$M" && $ZEROFS stats --bytes "$D" | grep -q "^pending upload: *0 bytes" &&
	rm -f "$D"/cache/* && zf_mount "$D" "$M" -o cache_size=1M &&
	test "$(zf_stat "$M" "evictions")" -gt 0 && $ZEROFS umount "$M" &&
	test "$(dev_bytes "$D")" -lt 4000000 &&
	zf_mount "$D" "$M" && echo warm >"$T/ref/dir/warm" && cp -a "$T/ref/dir" "$M/" &&
	$ZEROFS sync "$M" && $ZEROFS umount "$M"
'
test_expect_success 'a mount without the bucket serves local data; stats say offline since' '
	touch "$T/outage" && mount_fg off1 -o fetch_timeout=2 &&
	grep -q "is unreachable (Connection refused): serving local data" "$T/off1.log" &&
	test "$(cat "$M/dir/warm")" = warm &&
	head -c 3M /dev/urandom >"$T/ref/hot" && cp "$T/ref/hot" "$M/hot" && cmp "$T/ref/hot" "$M/hot" &&
	mkdir "$M/new" "$T/ref/new" && echo new >"$M/new/f" && echo new >"$T/ref/new/f" &&
	$ZEROFS stats --bytes "$M" >"$T/stats" && cat "$T/stats" &&
	grep -q "^bucket: *offline since [0-9-]* [0-9:]*: Connection refused" "$T/stats"
'
test_expect_success 'a read of evicted data: EIO after fetch_timeout, the log names the inode' '
	ino=$(stat -c %i "$M/cold") &&
	! timeout 60 cat "$M/cold" >/dev/null 2>"$T/err" && grep -q "Input/output error" "$T/err" &&
	grep -q "cannot fetch segment .*Connection refused" "$T/off1.log" &&
	grep -q "cannot read inode $ino at offset" "$T/off1.log" &&
	! timeout 60 cat "$M/cold" >/dev/null 2>&1 && cmp "$T/ref/hot" "$M/hot"
'
test_expect_success 'zerofs sync --timeout 2: exit 1, why and what is pending said' '
	expect_code 1 $ZEROFS sync --timeout 2 "$M" 2>"$T/err" && cat "$T/err" &&
	grep -q "could not be made durable: bucket .* unreachable since [0-9:]*: Connection refused" "$T/err" &&
	grep -q "(gave up after [0-9]* s); not in the bucket: [1-9][0-9]* bytes in [1-9][0-9]* segments* and [0-9]* log records*" "$T/err" &&
	grep -q "next mount resumes it" "$T/err" &&
	test "$(zf_stat "$M" "pending upload")" -gt 3000000
'
test_expect_success 'zerofs umount --timeout 2: unmounted, exit 3, what stays pending said; the daemon exits 3' '
	expect_code 3 $ZEROFS umount --timeout 2 "$M" 2>"$T/err" && cat "$T/err" &&
	grep -q "is unmounted, but [1-9][0-9]* bytes in [1-9][0-9]* segments* and [1-9][0-9]* log records* are not in the bucket (bucket .* unreachable since .*(gave up after [0-9]* s)): they stay in the dev-dir .* and the next mount uploads them" "$T/err" &&
	! mountpoint -q "$M" && test "$(daemon_rc off1 30)" = 3 &&
	grep -q "error: uploads left pending: [1-9][0-9]* bytes" "$T/off1.log"
'
test_expect_success 'zerofs stats of the unmounted dev-dir (no bucket): what is pending' '
	$ZEROFS stats --bytes "$D" >"$T/stats" && cat "$T/stats" &&
	test "$(zf_stat "$D" "pending upload")" -gt 3000000 &&
	grep -q "^pending upload: .*([1-9][0-9]* segments, [1-9][0-9]* log records): not in the bucket yet" "$T/stats"
'
test_expect_success 'SIGTERM while a sync waits for the bucket: the daemon stops within seconds, exit 3' '
	mount_fg off2 && head -c 1M /dev/urandom >"$T/ref/term" && cp "$T/ref/term" "$M/term" &&
	( $ZEROFS sync "$M" 2>"$T/sync.err"; echo $? >"$T/sync.rc" ) &
	wait_log "$T/off2.log" "upload to .* failed: Connection refused" 30 &&
	for i in $(seq 1 600); do
		c=$(pgrep -f "zerofs sync $M\$") && ls -l /proc/$c/fd 2>/dev/null | grep -q "socket:" && break
		sleep 0.1
	done &&
	ls -l /proc/$c/fd | grep -q "socket:" && test ! -e "$T/sync.rc" &&
	kill -TERM "$(cat "$T/off2.pid")" && test "$(daemon_rc off2 20)" = 3 &&
	grep -q "uploads left pending: [1-9][0-9]* bytes" "$T/off2.log" &&
	for i in $(seq 1 600); do test -s "$T/sync.rc" && break; sleep 0.1; done &&
	cat "$T/sync.err" && test "$(cat "$T/sync.rc")" = 1 &&
	grep -q "being unmounted; not in the bucket: " "$T/sync.err" && ! mountpoint -q "$M"
'
test_expect_success 'the bucket comes back during a mount: the backlog drains by itself, stats say online' '
	mount_fg back && $ZEROFS stats --bytes "$M" >"$T/stats" && cat "$T/stats" &&
	test "$(zf_stat "$M" "pending upload")" -gt 4000000 &&
	grep -q "^bucket: *offline since" "$T/stats" &&
	rm "$T/outage" && wait_drained "$M" 60 &&
	$ZEROFS stats --bytes "$M" >"$T/stats" && cat "$T/stats" &&
	grep -q "^bucket: *online" "$T/stats" &&
	cmp "$T/ref/cold" "$M/cold" && diff -r "$T/ref" "$M" &&
	$ZEROFS umount "$M" && test "$(daemon_rc back 30)" = 0 &&
	$ZEROFS stats --bytes "$D" | grep -q "^pending upload: *0 bytes (0 segments, 0 log records)$"
'
test_expect_success 'a restore from the bucket alone holds the same tree' '
	$ZEROFS mkfs --restore "$URL" "$T/dev2" >/dev/null && zf_mount "$T/dev2" "$T/mnt2" &&
	diff -r "$T/ref" "$T/mnt2" && $ZEROFS umount "$T/mnt2" && zf_fsck_clean "$T/dev2"
'
test_expect_success 'fsck clean; no sanitizer reports' '
	zf_fsck_clean "$D" && no_san_reports
'
test_done
