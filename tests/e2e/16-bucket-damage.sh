#!/usr/bin/env bash
# the bucket never loses data silently (embedded file:// bucket).
#
# A filesystem of a few hundred files is built in rounds, each ending in a
# 'zerofs sync' (one segment and one log piece each): the bucket then holds
# one checkpoint, several log pieces, segments and its head. Every kind of
# bucket object (superblock, a segment, the newest checkpoint, the newest
# and a middle log piece, head) is damaged in every way: a byte flipped at
# its start, middle and end, truncated to half, deleted, replaced by another
# valid object of its kind. For each case:
#   - mkfs --restore into a fresh dir: refused when records or data would be
#     lost (the key named, the dir not created), else byte-identical;
#     --allow-loss restores what verifies and names what is lost (exit 3);
#   - fsck and fsck --verify-data of the original dev-dir: exit 4, the key
#     named (a plain fsck reads the bucket's metadata, not its segments);
#   - fsck --verify-data --repair heals from the dev-dir's good copy (exit
#     1, then 0); after one mount + sync the healed bucket restores
#     byte-identical (contents, modes, times, links).
# Restores read a copy of the bucket: mounting a restored dev-dir takes the
# lease and puts a head, which must not touch the original's bucket.
# Then: an outage (fault: backend) makes fsck exit 8, never 4, and repair
# nothing; bucket gc deletes nothing while the bucket's metadata does not
# verify; zerofs sync names the store's reason (an outage and since when, a
# full bucket); a clean unmount during an outage is not taken for a crash
# by the next mount.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/remote-lib.sh"
require_fuse
require_cmds "Debian: rsync python3" rsync python3
D=$T/dev M=$T/mnt B=$T/dev.bucket
URL=file://$B
cleanup_hooks="umount -l '$T/full' 2>/dev/null; $cleanup_hooks"
kill_daemons_at_exit

# one round of writes: a new directory of files, an overwrite, a chmod; then a
# sync. rsync compares contents (--checksum): d1/f2 keeps its size, and two
# rounds in the same second would leave the old bytes on the mount
add_round() {
	local n=$1 i
	mkdir -p "$T/ref/d$n" &&
		for i in $(seq 1 70); do head -c $((i * 211 + n)) /dev/urandom >"$T/ref/d$n/f$i"; done &&
		head -c 400000 /dev/urandom >"$T/ref/d$n/big" &&
		chmod 751 "$T/ref/d$n/f3" && ln "$T/ref/d$n/f4" "$T/ref/d$n/link" &&
		head -c 5000 /dev/urandom >"$T/ref/d1/f2" &&
		rsync -aH --checksum --delete "$T/ref/" "$M/" && $ZEROFS sync "$M"
}

# what a failed step left: unmount, wait until the daemons let their dev-dirs go
settle() {
	local m d
	for m in "$M" "$T/rmnt"; do mountpoint -q "$m" && fusermount3 -uz "$m"; done
	for d in "$D" "$T"/r[0-9]; do [ -e "$d/lock" ] && flock -w 60 "$d/lock" true; done
	return 0
}

# the restored dev-dir $1 serves exactly the reference tree
same_as_ref() {
	local rc=0
	zf_mount "$1" "$T/rmnt" || return 1
	same_tree "$T/ref" "$T/rmnt" || rc=1
	zf_umount "$T/rmnt" || rc=1
	return $rc
}

test_expect_success 'a filesystem of a few hundred files, built in rounds; the bucket holds a checkpoint, log pieces, segments, head' '
	$ZEROFS mkfs "$D" >/dev/null && mkdir -p "$T/ref" &&
	zf_mount "$D" "$M" && add_round 1 &&
	cp "$(ls "$B"/meta/ckpt.* | head -n 1)" "$T/old.ckpt" &&
	zf_umount "$M" && zf_mount "$D" "$M" &&
	add_round 2 && cp "$B/head" "$T/old.head" &&
	add_round 3 && add_round 4 && zf_umount "$M" &&
	test "$(find "$T/ref" -type f | wc -l)" -ge 250 &&
	test "$(ls "$B"/meta | grep -c "^ckpt\.")" = 1 &&
	test "$(ls "$B"/meta | grep -c "^log\.")" -ge 3 &&
	test "$(ls "$B"/seg | wc -l)" -ge 3 && grep -q "^zerofs-head 1$" "$B/head" &&
	$ZEROFS mkfs "$T/other" >/dev/null &&
	zf_fsck_clean "$D" | grep -q "(data verified): clean" &&
	cp -a "$D" "$T/base.dev" && cp -a "$B" "$T/base.bucket"
'
CK=meta/$(ls "$B/meta" | grep "^ckpt\." | head -n 1)
PIECES=($(cd "$B" && ls meta | grep "^log\." | sed "s|^|meta/|"))
NEWEST=${PIECES[${#PIECES[@]} - 1]} MIDDLE=${PIECES[1]} OLDEST=${PIECES[0]}
SEG=seg/$(ls -S "$B/seg" | head -n 1) SMALL=seg/$(ls -S "$B/seg" | tail -n 1)
echo "# checkpoint $CK, pieces ${PIECES[*]}, segment $SEG (replaced by $SMALL)"

key_of() {
	case $1 in
	sb) echo superblock ;; seg) echo "$SEG" ;; ckpt) echo "$CK" ;;
	newest) echo "$NEWEST" ;; middle) echo "$MIDDLE" ;; head) echo head ;;
	esac
}
# another valid object of the same kind
other_of() {
	case $1 in
	sb) echo "$T/other/superblock" ;; seg) echo "$T/base.bucket/$SMALL" ;;
	ckpt) echo "$T/old.ckpt" ;; newest) echo "$T/base.bucket/$MIDDLE" ;;
	middle) echo "$T/base.bucket/$OLDEST" ;; head) echo "$T/old.head" ;;
	esac
}
damage() { # KIND HOW
	damage_file "$B/$(key_of $1)" $2 "$(other_of $1)"
}

# damage_case KIND OP RESTORE ALLOW_LOSS FSCK FSCK_VERIFY: the exit codes expected
# (RESTORE 5: restored without complaint, but with damaged data -- a plain
# restore reads no segment; --verify-data refuses it)
damage_case() {
	local kind=$1 op=$2 key rc
	# the sanitized build runs the cases whose code paths differ (a flip at
	# the start or the end takes the same ones as in the middle); the plain
	# build runs them all
	case ${ZF_SANITIZED:-}/$op in 1/start | 1/end)
		echo "# $kind $op: not in the sanitized build (the plain build runs it)"
		return 0 ;;
	esac
	key=$(key_of "$kind")
	test_expect_success "$kind $op: restore $3, --allow-loss $4, fsck $5, --verify-data $6; repair heals" '
		settle && rm -rf "$D" "$B" "$T"/r[0-9]* "$T/copy.bucket" &&
		cp -a "$T/base.dev" "$D" && cp -a "$T/base.bucket" "$B" &&
		damage '"$kind $op"' && cp -a "$B" "$T/copy.bucket" &&
		C=file://$T/copy.bucket &&
		# the original dev-dir sees the damage, named with its key
		expect_code '"$5"' $ZEROFS fsck "$D" >"$T/fsck.out" &&
		{ test '"$5"' = 0 || grep "^problem:" "$T/fsck.out" | grep -qF "'"$key"'"; } &&
		expect_code '"$6"' $ZEROFS fsck --verify-data "$D" >"$T/fsck.out" &&
		grep "^problem:" "$T/fsck.out" | grep -qF "'"$key"'" &&
		# a restore refuses (nothing created), or restores all of it
		rc=$($ZEROFS mkfs --restore "$C" "$T/r1" >/dev/null 2>"$T/r1.err"; echo $?) &&
		cat "$T/r1.err" &&
		case '"$3"' in
		0) test $rc = 0 && same_as_ref "$T/r1" ;;
		5) test $rc = 0 && ! same_as_ref "$T/r1" && expect_code 4 $ZEROFS fsck --verify-data "$T/r1" &&
		   expect_code 1 $ZEROFS mkfs --restore "$C" --verify-data "$T/r4" 2>"$T/r4.err" &&
		   grep -qF "'"$key"'" "$T/r4.err" && test ! -e "$T/r4" ;;
		*) test $rc = '"$3"' && test ! -e "$T/r1" &&
		   grep "is damaged:" "$T/r1.err" | grep -qF "'"$key"'" ;;
		esac &&
		# --allow-loss: what verifies, and what is lost named
		rc=$($ZEROFS mkfs --restore "$C" --allow-loss "$T/r2" >"$T/r2.out" 2>"$T/r2.err"; echo $?) &&
		cat "$T/r2.err" && test $rc = '"$4"' &&
		case '"$4"' in
		3) grep -q "^zerofs mkfs: lost: " "$T/r2.err" && grep -qF "'"$key"'" "$T/r2.err" &&
		   grep -q "INCOMPLETE" "$T/r2.out" ;;
		1) test ! -e "$T/r2" ;;
		esac &&
		# the dev-dir holds every byte: the repair heals the bucket (exit 1:
		# its second pass found nothing; what the next mount re-ships is a note)
		expect_code 1 $ZEROFS fsck --verify-data --repair "$D" >"$T/repair.out" &&
		zf_mount "$D" "$M" && $ZEROFS sync "$M" && zf_umount "$M" &&
		$ZEROFS fsck --verify-data "$D" | grep -q "(data verified): clean" &&
		cp -a "$B" "$T/healed.bucket" &&
		$ZEROFS mkfs --restore "file://$T/healed.bucket" "$T/r3" >/dev/null &&
		same_as_ref "$T/r3" && rm -rf "$T/healed.bucket"
	'
}

#            kind   op      restore allow fsck verify
damage_case  sb     start   1       1     4    4
damage_case  sb     mid     1       1     4    4
damage_case  sb     end     1       1     4    4
damage_case  sb     trunc   1       1     4    4
damage_case  sb     delete  1       1     4    4
damage_case  sb     replace 1       1     4    4
# a segment's header and footer are redundant (its super-chunks verify on
# their own): the data survives; only --verify-data reads segments
damage_case  seg    start   0       0     0    4
damage_case  seg    mid     5       0     0    4
damage_case  seg    end     0       0     0    4
damage_case  seg    trunc   1       3     4    4
damage_case  seg    delete  1       3     4    4
damage_case  seg    replace 1       3     4    4
# the bucket's only checkpoint: nothing restorable without it
damage_case  ckpt   start   1       1     4    4
damage_case  ckpt   mid     1       1     4    4
damage_case  ckpt   end     1       1     4    4
damage_case  ckpt   trunc   1       1     4    4
damage_case  ckpt   delete  1       1     4    4
damage_case  ckpt   replace 1       1     4    4
damage_case  newest start   1       3     4    4
damage_case  newest mid     1       3     4    4
damage_case  newest end     1       3     4    4
damage_case  newest trunc   1       3     4    4
damage_case  newest delete  1       3     4    4
damage_case  newest replace 1       3     4    4
damage_case  middle start   1       3     4    4
damage_case  middle mid     1       3     4    4
damage_case  middle end     1       3     4    4
damage_case  middle trunc   1       3     4    4
damage_case  middle delete  1       3     4    4
damage_case  middle replace 1       3     4    4
# the head: damaged, the log's end is unknown (refused; --allow-loss says so);
# missing (as an older zerofs left it) or an older one: nothing is lost
damage_case  head   start   1       3     4    4
damage_case  head   mid     1       3     4    4
damage_case  head   end     1       3     4    4
damage_case  head   trunc   1       3     4    4
damage_case  head   delete  0       0     4    4
damage_case  head   replace 0       0     4    4

test_expect_success 'an outage: fsck and fsck --verify-data exit 8 (never 4); --repair changes nothing' '
	settle && rm -rf "$D" "$B" && cp -a "$T/base.dev" "$D" && cp -a "$T/base.bucket" "$B" &&
	cp "$D/upload.state" "$T/state.before" &&
	echo "url fault:outage=1;$URL" >"$D/remote.conf" &&
	expect_code 8 $ZEROFS fsck "$D" 2>"$T/err" && cat "$T/err" &&
	grep -q "cannot check the bucket .*Connection refused" "$T/err" &&
	expect_code 8 $ZEROFS fsck --verify-data "$D" &&
	expect_code 8 $ZEROFS fsck --verify-data --repair "$D" &&
	cmp "$D/upload.state" "$T/state.before" && diff -r "$B" "$T/base.bucket" &&
	expect_code 1 $ZEROFS mkfs --restore "fault:outage=1;$URL" "$T/r5" && test ! -e "$T/r5"
'
test_expect_success 'requests failing at random: fsck exits 0 or 8, never 4' '
	n8=0 && for seed in 1 2 3 4 5 6 7 8; do
		echo "url fault:rate=0.2,seed=$seed;$URL" >"$D/remote.conf" || exit 1
		rc=$($ZEROFS fsck --verify-data "$D" >"$T/out" 2>&1; echo $?)
		echo "seed $seed: exit $rc"
		case $rc in 0) ;; 8) n8=$((n8 + 1)) ;; *) cat "$T/out"; exit 1 ;; esac
	done && test $n8 -gt 0 &&
	echo "url fault:rate=1,err=ETIMEDOUT,ops=get;$URL" >"$D/remote.conf" &&
	expect_code 8 $ZEROFS fsck "$D" 2>"$T/err" && grep -q "timed out" "$T/err" &&
	echo "url $URL" >"$D/remote.conf" && zf_fsck_clean "$D" >/dev/null
'
test_expect_success 'gc deletes nothing from the bucket while its metadata does not verify; a real run heals it first' '
	settle && rm -rf "$D" "$B" && cp -a "$T/base.dev" "$D" && cp -a "$T/base.bucket" "$B" &&
	zf_mount_fg "$D" "$M" "$T/gc.log" && rm -rf "$M/d2" "$T/ref/d2" && $ZEROFS sync "$M" &&
	touch -r "$M" "$T/ref" &&
	f=$B/$(cd "$B" && ls meta/log.* | tail -n 1) && flip_byte "$f" $(($(stat -c %s "$f") / 2)) &&
	ls "$B/seg" >"$T/segs.before" &&
	! $ZEROFS gc --dry-run "$M" && cat "$T/gc.log" &&
	grep -q "gc: .*does not verify" "$T/gc.log" &&
	grep -q "nothing is deleted from the bucket" "$T/gc.log" &&
	ls "$B/seg" | diff - "$T/segs.before" &&
	$ZEROFS gc "$M" | grep "^bucket, freed" &&
	test "$(ls "$B/seg" | wc -l)" -lt "$(wc -l <"$T/segs.before")" &&
	zf_umount "$M" && zf_wait_gone "$(cat "$T/fg.pid")" &&
	zf_fsck_clean "$D" | grep -q "(data verified): clean" &&
	$ZEROFS mkfs --restore "$URL" "$T/r6" >/dev/null && same_as_ref "$T/r6"
'
test_expect_success 'zerofs sync names the cause of an outage; a clean unmount during it is no crash for the next mount' '
	settle && rm -rf "$D" "$B" && cp -a "$T/base.dev" "$D" && cp -a "$T/base.bucket" "$B" &&
	echo "url fault:outage_file=$T/outage;$URL" >"$D/remote.conf" &&
	zf_mount "$D" "$M" -o write_wait=2 && echo before >"$M/x" && $ZEROFS sync "$M" &&
	test -e "$B/lease" && touch "$T/outage" && echo during >"$M/y" &&
	! $ZEROFS sync "$M" 2>"$T/err" && cat "$T/err" &&
	grep -q "could not be made durable: bucket .* unreachable since [0-9][0-9]:[0-9][0-9]:[0-9][0-9]: Connection refused" "$T/err" &&
	expect_code 3 $ZEROFS umount "$M" && test -e "$B/lease" &&
	grep -q "^released [0-9a-f]\{32\}$" "$D/upload.state" &&
	rm "$T/outage" && zf_mount_fg "$D" "$M" "$T/remount.log" && $ZEROFS sync "$M" &&
	cat "$T/remount.log" && ! grep -q "taking over the lease" "$T/remount.log" &&
	! grep -q "^released" "$D/upload.state" && test "$(cat "$M/y")" = during &&
	zf_umount "$M" && zf_wait_gone "$(cat "$T/fg.pid")" && test ! -e "$B/lease"
'
test_expect_success 'zerofs sync names a full bucket (No space left on device)' '
	settle && mkdir -p "$T/full" && mount -t tmpfs -o size=2m tmpfs "$T/full" &&
	$ZEROFS mkfs --remote "file://$T/full/b" "$T/devfull" >/dev/null &&
	zf_mount "$T/devfull" "$T/mntfull" && head -c 6M /dev/urandom >"$T/mntfull/big" &&
	! $ZEROFS sync "$T/mntfull" 2>"$T/err" && cat "$T/err" &&
	grep -q "could not be made durable: bucket .* full (No space left on device)" "$T/err" &&
	expect_code 3 $ZEROFS umount "$T/mntfull" 2>"$T/err" && cat "$T/err" &&
	grep -q "is unmounted, but .* are not in the bucket (bucket .* full" "$T/err"
'
test_expect_success 'no sanitizer reports' '
	no_san_reports
'
test_done
