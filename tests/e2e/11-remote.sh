#!/usr/bin/env bash
# the object-storage tier on the embedded default bucket (file://<dev-dir>.bucket):
# sync, eviction under a tiny cache_size and reads back through ranged
# fetches, restore on empty dev-dirs (mkfs --restore and mount -o remote=),
# the lease (a second writer refused, a foreign lease broken, a crashed
# daemon's lease taken over on remount), kill -9 during uploads, faults
# (10 % errors + 300 ms latency, an outage mid-copy, a read of evicted data
# during an outage) and a corrupted object in the bucket.
#
# Faults come from net/fault.c through the dev-dir's remote.conf
# ("url fault:<params>;file:///..."): -o remote= cannot carry the commas
# of several fault parameters.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/remote-lib.sh"
require_fuse
require_cmds "Debian: rsync attr acl python3" rsync setfattr setfacl python3
D=$T/dev M=$T/mnt B=$T/dev.bucket
URL=file://$B
# crash_mb: more than the four 16 MiB segments a round puts at once, so
# that some are still pending when kill_during_uploads kills the daemon
if [ -n "${ZF_SANITIZED:-}" ]; then
	big=24000000 crash_mb=112 flaky_mb=24
else
	big=40000000 crash_mb=112 flaky_mb=40
fi
kill_daemons_at_exit
# a segment object, and the names of them all: files in the bucket's directory
bucket_seg() { echo "$B/seg/$1.zseg"; }
bucket_segs() { ls "$B/seg"; }

test_expect_success 'mkfs: the bucket defaults to <dev-dir>.bucket' '
	$ZEROFS mkfs "$D" | grep -qF "(object store: $URL)" &&
	test "$(cat "$D/remote.conf")" = "url $URL" &&
	make_tree "$T/ref" $big
'
test_expect_success 'every file type copied in with cache_size=8M; sync puts it all in the bucket' '
	zf_mount "$D" "$M" -o cache_size=8M &&
	rsync -aHAX "$T/ref/" "$M/" && same_tree "$T/ref" "$M" &&
	$ZEROFS sync "$M" &&
	test "$(zf_stat "$M" "pending upload")" = 0 &&
	test "$(zf_stat "$M" "evictions")" -gt 0 &&
	test "$(dev_bytes "$D")" -le $(((8 + 16) << 20)) &&
	cmp "$D/superblock" "$B/superblock" && grep -q "^zerofs-lease 1" "$B/lease" &&
	ls "$B/meta" | grep -Eq "^(ckpt|log)\." &&
	n=0 && for s in "$B"/seg/*.zseg; do
		n=$((n + 1)) &&
		if [ -f "$D/seg/${s##*/}" ]; then cmp "$s" "$D/seg/${s##*/}" || exit 1; fi
	done && test $n -ge 3
'
test_expect_success 'evicted data reads back byte-identical through ranged fetches of super-chunks' '
	zf_umount "$M" && rm -f "$D"/cache/* &&
	zf_mount "$D" "$M" -o cache_size=8M &&
	cmp "$T/ref/big" "$M/big" && same_tree "$T/ref" "$M" &&
	test "$(zf_stat "$M" "fetched")" -gt 0 && test "$(fetch_misses "$M")" -gt 0 &&
	cached_slices_match "$D" bucket_seg
'
test_expect_success 'while it is mounted, a second writer on the bucket is refused, holder named' '
	pid=$(zf_daemon_pid "$D" "$M") &&
	for i in $(seq 1 300); do grep -q "^holder .* pid $pid\$" "$B/lease" && break; sleep 0.1; done &&
	$ZEROFS mkfs --restore "$URL" "$T/dev2" | grep -q "restored" &&
	mount_busy "$T/dev2" "$T/mnt2" "$URL" "$(hostname) pid $pid (dev-dir '\''$D'\'')"
'
test_expect_success 'mkfs --restore: once the writer is gone, the restored dev-dir holds the same tree' '
	zf_umount "$M" && test ! -e "$B/lease" &&
	zf_mount "$T/dev2" "$T/mnt2" -o cache_size=8M && same_tree "$T/ref" "$T/mnt2" &&
	zf_umount "$T/mnt2" && zf_fsck_clean "$T/dev2" | grep -q "(data verified): clean"
'
test_expect_success 'mount of an empty dev-dir with -o remote=URL restores it too' '
	mkdir "$T/dev3" && zf_mount "$T/dev3" "$T/mnt3" -o remote=$URL,cache_size=8M &&
	test "$(cat "$T/dev3/remote.conf")" = "url $URL" &&
	same_tree "$T/ref" "$T/mnt3" &&
	zf_umount "$T/mnt3" && zf_fsck_clean "$T/dev3"
'
test_expect_success 'a live lease of another host refuses the mount; zerofs lease-break frees it' '
	printf "zerofs-lease 1\nid 0123456789abcdef0123456789abcdef\nholder elsewhere.example pid 4242\nexpires %s\ntoken 7\n" \
		$(($(date +%s) + 3600)) >"$B/lease" &&
	mount_busy "$D" "$M" "$URL" "elsewhere.example pid 4242" &&
	$ZEROFS lease-break "$URL" | grep -q "removed" && test ! -e "$B/lease" &&
	zf_mount "$D" "$M" && pid=$(zf_daemon_pid "$D" "$M") &&
	for i in $(seq 1 300); do
		grep -q "^holder $(hostname) pid $pid\$" "$B/lease" && break
		sleep 0.1
	done &&
	grep -q "^holder $(hostname) pid $pid\$" "$B/lease" && grep -q "^dev $D\$" "$B/lease" &&
	zf_umount "$M"
'
test_expect_success 'kill -9 while segments go up to a slow store (1 s a request)' '
	kill_during_uploads "$D" "$M" "$URL" $crash_mb &&
	grep -q "^holder $(hostname) " "$B/lease" && zf_fsck_clean "$D"
'
test_expect_success 'remount on this host takes the dead daemon'\''s lease over; uploads resume; nothing lost' '
	remount_takes_lease "$D" "$M" "$URL" $crash_mb &&
	restore_same "$URL" "$T/dev4" "$T/mnt4" && zf_fsck_clean "$D"
'
test_expect_success 'faults: 10 % of requests fail, 300 ms each, during a copy; intact after sync + remount' '
	flaky_copy "$D" "$M" "$URL" $flaky_mb
'
test_expect_success 'an outage mid-copy: local work goes on, the backlog grows, a sync waits (stats answer), all drains by itself' '
	echo "url fault:outage_file=$T/outage;$URL" >"$D/remote.conf" &&
	zf_mount_fg "$D" "$M" "$T/outage.log" -o cache_size=256M,max_delay=1 &&
	head -c 20M /dev/urandom >"$T/ref/out1" && head -c 40M /dev/urandom >"$T/ref/out2" &&
	cp -p "$T/ref/out1" "$M/out1" && $ZEROFS sync "$M" &&
	touch "$T/outage" && outage_grows "$M" "$T/outage.log" 600 || exit 1
	# a zerofs sync waits through the outage; stats answer meanwhile
	( $ZEROFS sync "$M"; echo $? >"$T/sync.rc" ) &
	for i in $(seq 1 600); do
		c=$(pgrep -P $! -f "zerofs sync") && ls -l /proc/$c/fd | grep -q "socket:" && break
		sleep 0.1
	done
	ls -l /proc/$c/fd | grep -q "socket:" &&
	timeout 60 $ZEROFS stats --bytes "$M" | grep -q "^pending upload:" && test ! -e "$T/sync.rc" &&
	rm "$T/outage" && wait_drained "$M" 90 &&
	for i in $(seq 1 600); do test -s "$T/sync.rc" && break; sleep 0.1; done &&
	test "$(cat "$T/sync.rc")" = 0 &&
	touch -r "$M/during" "$T/ref/during" && touch -r "$M" "$T/ref" && same_tree "$T/ref" "$M" &&
	zf_umount "$M" && zf_wait_gone "$(cat "$T/fg.pid")"
'
test_expect_success 'a mount during an outage serves local data; evicted data: EIO after fetch_timeout, inode logged' '
	rm -f "$D"/cache/* && touch "$T/outage" &&
	zf_mount_fg "$D" "$M" "$T/eio.log" -o cache_size=1M,fetch_timeout=3 &&
	grep -q "is unreachable (Connection refused): serving local data" "$T/eio.log" &&
	test ! -e "$B/lease" && ino=$(stat -c %i "$M/big") &&
	echo during >"$M/during/new" && test "$(cat "$M/during/new")" = during &&
	! timeout 60 cat "$M/big" >/dev/null 2>"$T/err" && grep -q "Input/output error" "$T/err" &&
	grep -q "cannot fetch segment .*Connection refused" "$T/eio.log" &&
	grep -q "cannot read inode $ino at offset" "$T/eio.log" &&
	rm "$T/outage" && cmp "$T/ref/big" "$M/big" && $ZEROFS sync "$M" &&
	grep -q "^holder $(hostname) pid $(cat "$T/fg.pid")\$" "$B/lease" &&
	echo during >"$T/ref/during/new" && touch -r "$M/during/new" "$T/ref/during/new" &&
	touch -r "$M/during" "$T/ref/during" &&
	same_tree "$T/ref" "$M" &&
	zf_umount "$M" && zf_wait_gone "$(cat "$T/fg.pid")"
'
test_expect_success 'a corrupted segment object: EIO naming the inode of its file, other files fine' '
	echo "url $URL" >"$D/remote.conf" &&
	victim_seg "$D" "$M" bucket_segs && seg=$(cat "$T/victim.seg") &&
	off=$(($(stat -c %s "$B/seg/$seg") / 2)) && flip_byte "$B/seg/$seg" $off &&
	victim_eio "$D" "$M" &&
	flip_byte "$B/seg/$seg" $off && zf_fsck_clean "$D"
'
test_expect_success 'the bucket restores everything once more, and the restored copy writes on' '
	$ZEROFS mkfs --restore "$URL" "$T/dev5" && zf_mount "$T/dev5" "$T/mnt5" -o cache_size=8M &&
	same_tree "$T/ref" "$T/mnt5" && echo newer >"$T/mnt5/newer" && zf_umount "$T/mnt5" &&
	zf_fsck_clean "$T/dev5"
'
test_expect_success 'the original dev-dir, now behind the bucket, is refused: no fork' '
	cp -a "$B/meta" "$T/meta.before" &&
	! $ZEROFS mount "$D" "$M" 2>"$T/err" && ! mountpoint -q "$M" && cat "$T/err" &&
	grep -q "another dev-dir (a restored copy?) has written to it since" "$T/err" &&
	diff -r "$T/meta.before" "$B/meta" && test ! -e "$B/lease"
'
test_expect_success 'a new filesystem pointed at the bucket is refused: the bucket holds another one' '
	$ZEROFS mkfs --remote "$URL" "$T/dev6" >/dev/null &&
	! $ZEROFS mount "$T/dev6" "$M" 2>"$T/err" && ! mountpoint -q "$M" &&
	grep -q "holds another filesystem" "$T/err" &&
	diff -r "$T/meta.before" "$B/meta" && test ! -e "$B/lease"
'
test_expect_success 'a dev-dir whose log lost records the bucket holds is refused; a restore has them' '
	L=$T/devL && $ZEROFS mkfs "$L" >/dev/null &&
	zf_mount_fg "$L" "$T/mntL" "$T/L.log" &&
	echo one >"$T/mntL/one" && $ZEROFS sync "$T/mntL" &&
	echo two >"$T/mntL/two" && $ZEROFS sync "$T/mntL" &&
	pid=$(cat "$T/fg.pid") && kill -9 $pid && zf_wait_gone $pid && fusermount3 -uz "$T/mntL" &&
	log=$(ls "$L"/meta/log.* | tail -n 1) && truncate -s -8 "$log" &&
	! $ZEROFS mount "$L" "$T/mntL" 2>"$T/err" && cat "$T/err" &&
	grep -q "lacks log records .* that the bucket .* holds" "$T/err" && ! mountpoint -q "$T/mntL" &&
	$ZEROFS lease-break "file://$L.bucket" >/dev/null &&
	$ZEROFS mkfs --restore "file://$L.bucket" "$T/devL2" >/dev/null &&
	zf_mount "$T/devL2" "$T/mntL2" && test "$(cat "$T/mntL2/two")" = two &&
	test "$(cat "$T/mntL2/one")" = one && zf_umount "$T/mntL2" && zf_fsck_clean "$T/devL2"
'
test_expect_success 'a sequential cold read is fetched ahead of the reader, byte-identical' '
	for s in "$T"/dev5/seg/*.zseg; do
		b="$B/seg/${s##*/}" && test -f "$b" && cmp -s "$s" "$b" && rm "$s"
	done; rm -f "$T"/dev5/cache/* &&
	zf_mount "$T/dev5" "$T/mnt5" -o cache_size=64M &&
	cmp "$T/ref/big" "$T/mnt5/big" &&
	ahead=$("$ZEROFS" stats --bytes "$T/mnt5" | sed -n "s/^fetched: .*; \([0-9]*\) read ahead.*/\1/p") &&
	hits=$("$ZEROFS" stats --bytes "$T/mnt5" | sed -n "s/^fetch cache: *\([0-9]*\) hits.*/\1/p") &&
	echo "read ahead $ahead bytes, $hits hits, $(fetch_misses "$T/mnt5") misses" &&
	test "$ahead" -gt 0 && test "$hits" -gt 0 && cmp "$T/ref/dir/rand" "$T/mnt5/dir/rand" &&
	zf_umount "$T/mnt5"
'
test_expect_success 'final fsck clean; no sanitizer reports' '
	zf_fsck_clean "$D" && zf_fsck_clean "$T/dev5" && no_san_reports
'
test_expect_success 'mkfs --force on a used dev-dir: the old upload marks and fetched data go; the new data reaches its bucket' '
	test -s "$T/dev5/upload.state" && ls "$T/dev5/cache" | grep -q "\.sc$" &&
	$ZEROFS mkfs --force --remote "file://$T/newbucket" "$T/dev5" >/dev/null &&
	test ! -e "$T/dev5/upload.state" && ! ls "$T/dev5/cache" | grep -q . &&
	zf_mount "$T/dev5" "$T/mnt5" -o cache_size=8M && cp "$T/ref/big" "$T/mnt5/big" &&
	$ZEROFS sync "$T/mnt5" && zf_umount "$T/mnt5" &&
	test "$(ls "$T/newbucket/seg" | wc -l)" -ge 1 && zf_fsck_clean "$T/dev5" &&
	zf_mount "$T/dev5" "$T/mnt5" && cmp "$T/ref/big" "$T/mnt5/big" && zf_umount "$T/mnt5"
'
test_done
