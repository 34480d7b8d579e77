#!/usr/bin/env bash
# a mounted filesystem: basic files, remount, clean unmount, fsck
. "$(dirname "$0")/lib.sh"
require_fuse
D=$T/dev M=$T/mnt

test_expect_success 'mkfs and mount' '
	$ZEROFS mkfs "$D" && zf_mount "$D" "$M" &&
	grep -q " $M fuse.zerofs " /proc/mounts
'
test_expect_success 'a second mount of the same dev-dir is refused' '
	mkdir -p "$T/mnt2" &&
	expect_code 1 $ZEROFS mount "$D" "$T/mnt2" &&
	$ZEROFS mount "$D" "$T/mnt2" 2>&1 | grep -q "in use by another zerofs process"
'
test_expect_success 'files, directories, links and special files' '
	echo hello >"$M/a" && mkdir -p "$M/d/e" && ln "$M/a" "$M/d/hard" &&
	ln -s ../a "$M/d/sym" && mkfifo "$M/fifo" && mknod "$M/null" c 1 3 &&
	test "$(cat "$M/d/sym")" = hello && test "$(stat -c %h "$M/a")" = 2 &&
	test -p "$M/fifo" && test -c "$M/null" &&
	test "$(stat -c %t:%T "$M/null")" = 1:3
'
test_expect_success 'large file written and read back' '
	head -c 20000000 /dev/urandom >"$T/big" && cp "$T/big" "$M/big" &&
	cmp "$T/big" "$M/big"
'
test_expect_success 'stats and sync through the control socket while mounted' '
	cp "$M/big" "$M/big2" && $ZEROFS sync "$M" &&
	$ZEROFS stats "$M" >"$T/st" && grep -q "^inodes: *9 " "$T/st" &&
	grep -Eq "^chunks: .*, [1-9][0-9]* shared\)" "$T/st" &&
	$ZEROFS stats "$D" | grep -q "^dedup ratio: *[2-9]" &&
	expect_code 1 $ZEROFS sync "$T" &&
	$ZEROFS sync "$T" 2>&1 | grep -q "not a zerofs mount"
'
test_expect_success 'clean unmount, fsck, remount keeps everything' '
	zf_umount "$M" && zf_fsck_clean "$D" && zf_mount "$D" "$M" &&
	cmp "$T/big" "$M/big" && test "$(cat "$M/a")" = hello &&
	test "$(stat -c %h "$M/d/hard")" = 2 && test -p "$M/fifo"
'
test_expect_success 'unmount and final fsck' '
	zf_umount "$M" && zf_fsck_clean "$D"
'
test_done
