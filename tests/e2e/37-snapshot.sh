#!/usr/bin/env bash
# Snapshots: zerofs snapshot create|list|delete on a mounted filesystem.
# A snapshot keeps the tree of its moment byte-identical (rsync -aHAXc)
# while files are created, changed and deleted after it, mounted on its own
# (--snapshot, from the dev-dir and from a replica's cache-dir); gc keeps
# its data, and frees it once it is deleted (the bucket within 1.1x of the
# live data's); it survives a restore; kill -9 during create leaves no
# snapshot or a whole one; fsck is clean throughout.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/remote-lib.sh"
require_fuse
require_cmds "Debian: rsync attr acl python3" rsync setfattr setfacl python3
D=$T/dev M=$T/mnt B=$T/bucket S=$T/smnt
URL=file://$B
if [ -n "${ZF_SANITIZED:-}" ]; then big=6000000; else big=24000000; fi
exec 3>&1
kill_daemons_at_exit
# wait_for SECS CMD...: CMD succeeds within SECS
wait_for() {
	local secs=$1 i
	shift
	for i in $(seq 1 $((secs * 10))); do
		"$@" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "not within $secs s: $*"
	return 1
}
seg_bytes() { find "$1/seg" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }

test_expect_success 'setup: a tree; snapshot s1 of it; list shows it; the bucket holds it' '
	$ZEROFS mkfs --remote "$URL" "$D" >/dev/null && make_tree "$T/ref1" $big &&
	zf_mount "$D" "$M" -o log="$T/w.log" && rsync -aHAX "$T/ref1/" "$M/" &&
	$ZEROFS snapshot create s1 "$M" >"$T/out" && cat "$T/out" &&
	grep -q "^snapshot s1: log record [0-9]*$" "$T/out" &&
	$ZEROFS snapshot list "$M" >"$T/list" && cat "$T/list" && grep -q "^s1 .* log record " "$T/list" &&
	test -s "$B/snap/s1" && test -f "$D/meta/snap.s1" && zf_fsck_clean "$D" 2>&1 | grep -q "mounted" ||
	{ echo "fsck of a mounted dev-dir should refuse"; false; }
'
test_expect_success 'changes after it: the snapshot, mounted from a replica, is the tree as it was' '
	cp -a "$T/ref1" "$T/ref2" &&
	head -c 3000000 /dev/urandom >"$T/ref2/big" && cp "$T/ref2/big" "$M/big" &&
	rm -r "$T/ref2/dir" "$M/dir" && echo new >"$T/ref2/new" && echo new >"$M/new" &&
	setfattr -n user.color -v red "$M/small" && mv "$M/sparse" "$M/sparse2" &&
	$ZEROFS sync "$M" &&
	zf_mount "$T/r1" "$S" --replica "$URL" --snapshot s1 -o cache_size=8M &&
	same_tree "$T/ref1" "$S" && ! touch "$S/x" 2>/dev/null && zf_umount "$S" &&
	test -e "$M/new" && test ! -e "$M/dir"
'
test_expect_success 'gc keeps the data only the snapshot holds; a second snapshot; create refusals' '
	rm "$M/big" && $ZEROFS gc "$M" >"$T/gc" && cat "$T/gc" &&
	$ZEROFS snapshot create s2 "$M" >/dev/null &&
	rm -rf "$T/r1" && zf_mount "$T/r1" "$S" --replica "$URL" --snapshot s1 -o cache_size=8M &&
	same_tree "$T/ref1" "$S" &&
	before=$(zf_stat "$M" "stored bytes") && cp "$S/big" "$M/big-back" && $ZEROFS sync "$M" &&
	cmp "$T/ref1/big" "$M/big-back" && after=$(zf_stat "$M" "stored bytes") &&
	echo "# copied $big bytes back out of the snapshot: stored bytes $before -> $after" >&3 &&
	test $((after - before)) -lt $((big / 20)) && zf_umount "$S" &&
	expect_code 1 $ZEROFS snapshot create s1 "$M" 2>"$T/err" && grep -q "exists" "$T/err" &&
	expect_code 2 $ZEROFS snapshot create "../x" "$M" &&
	expect_code 2 $ZEROFS snapshot create ".hidden" "$M" &&
	expect_code 1 $ZEROFS snapshot delete nosuch "$M" 2>"$T/err" && grep -q "no snapshot" "$T/err" &&
	expect_code 2 $ZEROFS snapshot frobnicate "$M" &&
	$ZEROFS snapshot list "$M" | grep -c "log record" | grep -qx 2
'
test_expect_success 'a following replica gets the writer'"'"'s new snapshots, and loses deleted ones' '
	zf_mount "$T/r2" "$S" --replica "$URL" && $ZEROFS snapshot create s3 "$M" >/dev/null &&
	wait_for 60 test -e "$T/r2/meta/snap.s3" &&
	$ZEROFS snapshot list "$S" | grep -q "^s3 " &&
	$ZEROFS snapshot delete s3 "$M" && wait_for 60 test ! -e "$T/r2/meta/snap.s3" &&
	zf_umount "$S"
'
test_expect_success 'kill -9 during snapshot create: no snapshot, or a whole one; fsck clean' '
	for delay in 0 0.05 0.2; do
		head -c 20000000 /dev/urandom >"$M/k$delay" &&
		( $ZEROFS snapshot create "k$delay" "$M" >/dev/null 2>&1 & ) &&
		sleep $delay && zf_kill9 "$D" "$M" && zf_fsck_clean "$D" >/dev/null || exit 1
		if test -e "$D/meta/snap.k$delay"; then
			zf_mount "$D" "$S" --snapshot "k$delay" && ls "$S" >/dev/null &&
			cmp "$T/ref1/small" "$S/small" && zf_umount "$S" || exit 1
			echo "# kill after $delay s: a whole snapshot" >&3
		else
			echo "# kill after $delay s: no snapshot" >&3
		fi
		zf_mount "$D" "$M" -o log="$T/w.log" || exit 1
	done
'
test_expect_success 'the snapshots survive a restore from the bucket' '
	for delay in 0 0.05 0.2; do
		$ZEROFS snapshot delete "k$delay" "$M" 2>/dev/null
	done
	$ZEROFS sync "$M" &&
	$ZEROFS mkfs --restore "$URL" "$T/restored" >/dev/null &&
	$ZEROFS snapshot list "$T/restored" >"$T/list" && cat "$T/list" &&
	grep -q "^s1 " "$T/list" && grep -q "^s2 " "$T/list" &&
	zf_mount "$T/restored" "$S" --snapshot s1 && same_tree "$T/ref1" "$S" && zf_umount "$S" &&
	zf_fsck_clean "$T/restored"
'
test_expect_success 'deleted, then gc: the bucket holds about what the live tree needs' '
	$ZEROFS snapshot delete s1 "$M" && $ZEROFS snapshot delete s2 "$M" &&
	test ! -e "$B/snap/s1" && test ! -e "$D/meta/snap.s1" &&
	$ZEROFS snapshot list "$M" >"$T/list" && ! grep -q . "$T/list" &&
	{ $ZEROFS gc "$M" >"$T/gc" || { cat "$T/gc"; tail -n 8 "$T/w.log"; exit 1; }; } && cat "$T/gc" &&
	$ZEROFS sync "$M" && $ZEROFS mkfs --remote "file://$T/bucket2" "$T/fresh" >/dev/null &&
	zf_mount "$T/fresh" "$T/fmnt" && rsync -aHAX "$M/" "$T/fmnt/" && $ZEROFS sync "$T/fmnt" &&
	live=$(seg_bytes "$T/bucket2") && got=$(seg_bytes "$B") &&
	echo "# bucket segments: $got bytes; the live tree alone: $live bytes" >&3 &&
	test "$got" -le $((live * 11 / 10 + 65536)) && zf_umount "$T/fmnt"
'
test_expect_success 'on an unmounted dev-dir: create, mount, delete' '
	zf_umount "$M" && $ZEROFS snapshot create off "$D" | grep -q "^snapshot off: log record" &&
	test -s "$B/snap/off" && $ZEROFS snapshot list "$D" | grep -q "^off " &&
	zf_mount "$D" "$S" --snapshot off && cmp "$T/ref1/small" "$S/small" && zf_umount "$S" &&
	$ZEROFS snapshot delete off "$D" && test ! -e "$B/snap/off" && test ! -e "$D/meta/snap.off"
'
test_expect_success 'a snapshot that is not there; fsck clean; no sanitizer reports' '
	! $ZEROFS mount --snapshot s1 "$D" "$S" 2>"$T/err" && cat "$T/err" &&
	grep -q "no snapshot .s1." "$T/err" && ! mountpoint -q "$S" &&
	zf_fsck_clean "$D" && no_san_reports
'
test_done
