#!/usr/bin/env bash
# the working set under the user's control: pin, unpin, warmup, evict and
# status (the CLI and the user.zerofs.* extended attributes behind it);
# pinned data stays local through eviction, an outage, a remount, a kill -9
# and a restore; pins beyond their share of cache_size are refused; a
# warmed-up file reads during an outage.
#
# The bucket is file://<dev-dir>.bucket behind the fault backend
# (remote.conf "url fault:outage_file=...;file://..."): touching the
# outage file takes the bucket away.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/remote-lib.sh"
require_fuse
require_cmds "Debian: rsync attr acl python3" rsync setfattr getfattr setfacl python3
D=$T/dev M=$T/mnt B=$T/dev.bucket
URL=file://$B
kill_daemons_at_exit

# Pins keep super-chunks (up to 4 MiB of chunks; the files written in one
# commit are packed together): an unpinned file's bytes packed with pinned
# ones stay too. So keep/, other/big and other/small are written in
# separate commits (a sync ends a super-chunk), and the assertions can be
# exact about what leaves.
# the first number of the status line of PATH (-b: bytes): COL 1 local, 2 bucket, 3 pending
st_col() { "$ZEROFS" status -b "$1" | awk -v c="$2" 'NR == 2 { print $c }'; }
st_pin() { "$ZEROFS" status -b "$1" | awk 'NR == 2 { print $4 }'; }
# on a failure: where the bytes of the tree at MNT are
show() { "$ZEROFS" status -b "$1" "$1/keep" "$1/keep/text" "$1/keep/sub/rand" "$1/other" \
	"$1/other/big" "$1/other/small"; cat "$T/evict.out" "$T/warm.out" 2>/dev/null; }
# wait (bounded) until every byte of PATH is local
wait_local() {
	local i
	for i in $(seq 1 600); do
		[ "$(st_col "$1" 2)" = 0 ] && return 0
		sleep 0.1
	done
	echo "still not local after 60 s: $("$ZEROFS" status "$1")"
	return 1
}

test_expect_success 'a tree: keep/ (real text and a random file), other/ (random), all in the bucket' '
	$ZEROFS mkfs "$D" >/dev/null &&
	echo "url fault:outage_file=$T/outage;$URL" >"$D/remote.conf" &&
	mkdir -p "$T/ref/keep/sub" "$T/ref/other" &&
	cat /usr/share/doc/*/copyright /usr/include/*.h 2>/dev/null | head -c 2000000 \
		>"$T/ref/keep/text" && test "$(stat -c %s "$T/ref/keep/text")" = 2000000 &&
	head -c 3000000 /dev/urandom >"$T/ref/keep/sub/rand" &&
	head -c 10000000 /dev/urandom >"$T/ref/other/big" &&
	head -c 300000 /dev/urandom >"$T/ref/other/small" &&
	zf_mount_fg "$D" "$M" "$T/daemon.log" -o cache_size=16M,fetch_timeout=3 &&
	rsync -a "$T/ref/keep" "$M/" && $ZEROFS sync "$M" &&
	mkdir "$M/other" && cp -p "$T/ref/other/big" "$M/other/" && $ZEROFS sync "$M" &&
	cp -p "$T/ref/other/small" "$M/other/" && $ZEROFS sync "$M" &&
	touch -r "$T/ref/other" "$M/other" && touch -r "$T/ref" "$M" &&
	test "$(st_col "$M" 3)" = 0 && test "$(st_col "$M" 2)" = 0 &&
	test "$(st_col "$M" 1)" = $((2000000 + 3000000 + 10000000 + 300000)) &&
	test "$(st_pin "$M")" = no
'
test_expect_success 'pin keep/: recursive, the flag readable as user.zerofs.pin, new files inherit it' '
	$ZEROFS pin "$M/keep" &&
	test "$(st_pin "$M/keep")" = yes && test "$(st_pin "$M/keep/sub/rand")" = yes &&
	test "$(st_pin "$M")" = some && test "$(st_pin "$M/other")" = no &&
	test "$(getfattr --only-values -n user.zerofs.pin "$M/keep/text")" = 1 &&
	! getfattr -n user.zerofs.pin "$M/other/big" 2>/dev/null &&
	echo fresh >"$M/keep/sub/new" && echo fresh >"$T/ref/keep/sub/new" &&
	test "$(st_pin "$M/keep/sub/new")" = yes &&
	mkdir "$M/keep/newdir" "$T/ref/keep/newdir" && test "$(st_pin "$M/keep/newdir")" = yes &&
	! getfattr -d "$M/keep/text" | grep -q zerofs &&
	! setfattr -n user.zerofs.bogus -v 1 "$M/keep/text" 2>/dev/null
'
test_expect_success 'evict everything: unpinned data leaves the dev-dir, pinned data stays' '
	$ZEROFS sync "$M" && $ZEROFS evict "$M" >"$T/evict.out" &&
	grep -q "pinned files kept" "$T/evict.out" &&
	test "$(st_col "$M/other" 1)" = 0 && test "$(st_col "$M/other" 2)" = 10300000 &&
	test "$(st_col "$M/keep" 2)" = 0 && test "$(st_col "$M/keep" 1)" = 5000006 &&
	$ZEROFS evict "$M/keep/text" | grep -q "1 pinned file kept" &&
	test "$(st_col "$M/keep/text" 1)" = 2000000 &&
	test "$(zf_stat "$M" "pinned data")" -gt 3000000 || { show "$M"; exit 1; }
'
test_expect_success 'outage: pinned files read and written; an evicted file fails with EIO once, named' '
	touch "$T/outage" &&
	cmp "$T/ref/keep/text" "$M/keep/text" && cmp "$T/ref/keep/sub/rand" "$M/keep/sub/rand" &&
	echo offline >>"$M/keep/text" && echo offline >>"$T/ref/keep/text" &&
	ino=$(stat -c %i "$M/other/big") &&
	! timeout 60 cat "$M/other/big" >/dev/null 2>"$T/err" && grep -q "Input/output error" "$T/err" &&
	grep -q "inode $ino" "$T/daemon.log" &&
	rm "$T/outage" && wait_drained "$M" 90 &&
	same_tree "$T/ref" "$M"
'
test_expect_success 'pinning more than fits is refused, said clearly, nothing pinned' '
	! $ZEROFS pin "$M/other" 2>"$T/err" &&
	grep -q "not pinned: pinned data would exceed its share" "$T/err" &&
	test "$(st_pin "$M/other")" = no && test "$(st_pin "$M/other/small")" = no &&
	! getfattr -n user.zerofs.pin "$M/other" 2>/dev/null && test "$(st_pin "$M/keep")" = yes
'
test_expect_success 'warmup then outage: the warmed files read fine' '
	$ZEROFS evict "$M/other" >/dev/null && test "$(st_col "$M/other" 2)" = 10300000 &&
	$ZEROFS warmup "$M/other" >"$T/warm.out" 2>&1 && grep -q "fetched" "$T/warm.out" &&
	test "$(st_col "$M/other" 2)" = 0 &&
	touch "$T/outage" && cmp "$T/ref/other/big" "$M/other/big" &&
	cmp "$T/ref/other/small" "$M/other/small" && rm "$T/outage" || { rm -f "$T/outage"; show "$M"; exit 1; }
'
test_expect_success 'unpin: the data may leave again; pinned again, it is fetched back' '
	$ZEROFS unpin "$M/keep/sub" && test "$(st_pin "$M/keep/sub/rand")" = no &&
	test "$(st_pin "$M/keep/text")" = yes && test "$(st_pin "$M/keep")" = some &&
	$ZEROFS unpin "$M/keep" && test "$(st_pin "$M")" = no && $ZEROFS sync "$M" &&
	$ZEROFS evict "$M/keep" >/dev/null && test "$(st_col "$M/keep" 1)" = 0 &&
	$ZEROFS pin "$M/keep" && test "$(st_col "$M/keep" 2)" = 0 && test "$(st_pin "$M/keep")" = yes
'
test_expect_success 'pins survive a remount and a kill -9 after a sync' '
	zf_umount "$M" && zf_wait_gone "$(cat "$T/fg.pid")" &&
	zf_mount_fg "$D" "$M" "$T/daemon2.log" -o cache_size=16M,fetch_timeout=3 &&
	test "$(st_pin "$M/keep/text")" = yes && test "$(st_pin "$M/other/big")" = no &&
	$ZEROFS pin "$M/other/small" && $ZEROFS sync "$M" &&
	kill -9 "$(cat "$T/fg.pid")" && zf_wait_gone "$(cat "$T/fg.pid")" &&
	fusermount3 -uz "$M" && zf_fsck_clean "$D" &&
	zf_mount_fg "$D" "$M" "$T/daemon3.log" -o cache_size=16M,fetch_timeout=3 &&
	test "$(st_pin "$M/other/small")" = yes && test "$(st_pin "$M/keep/sub/rand")" = yes &&
	same_tree "$T/ref" "$M" && zf_umount "$M" && zf_wait_gone "$(cat "$T/fg.pid")"
'
test_expect_success 'pins survive a restore: the restored mount fetches pinned data by itself' '
	$ZEROFS mkfs --restore "$URL" "$T/dev2" >/dev/null &&
	echo "url fault:outage_file=$T/outage2;$URL" >"$T/dev2/remote.conf" &&
	zf_mount_fg "$T/dev2" "$T/mnt2" "$T/restored.log" -o cache_size=16M,fetch_timeout=3 &&
	test "$(st_pin "$T/mnt2/keep/text")" = yes && wait_local "$T/mnt2/keep" &&
	wait_local "$T/mnt2/other/small" && test "$(st_col "$T/mnt2/other/big" 1)" = 0 &&
	touch "$T/outage2" &&
	cmp "$T/ref/keep/text" "$T/mnt2/keep/text" &&
	cmp "$T/ref/keep/sub/rand" "$T/mnt2/keep/sub/rand" &&
	cmp "$T/ref/other/small" "$T/mnt2/other/small" && rm "$T/outage2" &&
	zf_umount "$T/mnt2" && zf_wait_gone "$(cat "$T/fg.pid")" && zf_fsck_clean "$T/dev2" ||
		{ rm -f "$T/outage2"; show "$T/mnt2"; exit 1; }
'
test_expect_success 'without a bucket: pin sets the flag, status shows all local, evict says why not' '
	$ZEROFS mkfs --remote none "$T/dev3" >/dev/null && zf_mount "$T/dev3" "$T/mnt3" &&
	cp "$T/ref/keep/text" "$T/mnt3/f" && $ZEROFS pin "$T/mnt3" &&
	test "$(st_pin "$T/mnt3/f")" = yes && test "$(st_col "$T/mnt3/f" 1)" -gt 0 &&
	! $ZEROFS evict "$T/mnt3/f" 2>"$T/err" && grep -q "has no bucket" "$T/err" &&
	zf_umount "$T/mnt3" && zf_mount "$T/dev3" "$T/mnt3" && test "$(st_pin "$T/mnt3/f")" = yes &&
	zf_umount "$T/mnt3" && zf_fsck_clean "$T/dev3"
'
test_expect_success 'nonsense: not a zerofs path, no path, a missing path' '
	expect_code 1 $ZEROFS pin /tmp 2>"$T/err" && grep -q "is not on a zerofs mount" "$T/err" &&
	expect_code 2 $ZEROFS status 2>/dev/null &&
	expect_code 1 $ZEROFS warmup "$T/nothing-here" 2>"$T/err" && grep -q "No such file" "$T/err"
'
test_done
