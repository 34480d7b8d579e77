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
	$ZEROFS mount "$D" "$T/mnt2" 2>&1 | grep -q "is mounted on .$M., daemon pid [0-9]*: unmount it first"
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
	$ZEROFS stats --bytes "$M" >"$T/st" && grep -q "^inodes: *9 " "$T/st" &&
	grep -Eq "^chunks: .*, [1-9][0-9]* shared\)" "$T/st" &&
	$ZEROFS stats --bytes "$D" | grep -q "^dedup ratio: *[2-9]" &&
	expect_code 1 $ZEROFS sync "$T" &&
	$ZEROFS sync "$T" 2>&1 | grep -q "not a zerofs mount"
'
test_expect_success 'clean unmount, fsck, remount keeps everything' '
	zf_umount "$M" && zf_fsck_clean "$D" && zf_mount "$D" "$M" &&
	cmp "$T/big" "$M/big" && test "$(cat "$M/a")" = hello &&
	test "$(stat -c %h "$M/d/hard")" = 2 && test -p "$M/fifo"
'
# "stored bytes" and "stored live bytes" of a zerofs stats output
stored_live() {
	awk '/^stored bytes:/ { s = $3 } /^stored live bytes:/ { l = $4 } END { print s, l }' "$1"
}
# With the writeback cache and several daemon threads, cp's writes reach the
# daemon out of order; chunks cut at the gaps and redone later would stay
# behind as garbage (issue 11: 4 % before the write path kept such tails).
# The sanitizer build's slower threads reorder more: 1 % there (0.51 % seen
# on a loaded CI machine), 0.5 % in the plain build the target is about.
if [ -n "${ZF_SANITIZED:-}" ]; then garbage_per=100; else garbage_per=200; fi
test_expect_success 'cp of a 256 MiB random file leaves < 0.5 % of its stored bytes unreferenced (1 % sanitized)' '
	head -c 268435456 /dev/urandom >"$T/r256" && $ZEROFS sync "$M" &&
	$ZEROFS stats --bytes "$M" >"$T/s0" && cp "$T/r256" "$M/r256" && $ZEROFS sync "$M" &&
	$ZEROFS stats --bytes "$M" >"$T/s1" && cmp "$T/r256" "$M/r256" &&
	set -- $(stored_live "$T/s0") $(stored_live "$T/s1") &&
	added=$(($3 - $1)) && garbage=$((($3 - $4) - ($1 - $2))) &&
	echo "stored $added bytes for the copy, $garbage of them unreferenced" &&
	test "$added" -gt 268435456 && test $((garbage * garbage_per)) -lt "$added" &&
	rm "$M/r256" "$T/r256"
'
test_expect_success 'unmount and final fsck' '
	zf_umount "$M" && zf_fsck_clean "$D"
'
test_done
