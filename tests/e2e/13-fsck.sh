#!/usr/bin/env bash
# zerofs fsck and fsck --repair against a corruption matrix. Each case is a
# fresh small filesystem (file:// bucket unless said): /a (3 MB) and its copy
# /a2 (all chunks shared) in segment 1, /b (2 MB) with a hard link /d/b-link
# in segment 2, /c (1 MB) and /s (text) in segment 3; sha256sums recorded,
# unmounted (or the daemon killed, to keep records in the log). Then one
# kind of damage; fsck must exit 4 and name the affected paths and no
# others; fsck --repair exits 1; a second fsck --verify-data exits 0; on a
# mount every undamaged file is byte-identical and the damaged ones read EIO
# (or, when the bucket held a good copy, every file is intact).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/remote-lib.sh"
require_fuse
command -v python3 >/dev/null || { echo "SKIP: python3 is needed"; exit 77; }
ALL="a a2 b d/b-link c s"
cleanup_hooks="kill -9 \$(pgrep -f -- 'zerofs mount .*$T/') 2>/dev/null; $cleanup_hooks"

# frames FILE: "offset type seq payload-length field0 field8 field16" per record
# of a log or checkpoint (fields: le64, le64, le32 at payload offsets 0, 8, 16)
frames() {
	python3 - "$1" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
off = 64
while off + 32 <= len(d):
    magic, typ, flags, res, plen, res2, seq, csum = struct.unpack_from("<IBBHIIQQ", d, off)
    if magic != 0x524c465a or off + 32 + plen > len(d):
        break
    p = d[off + 32:off + 32 + plen] + bytes(24)
    f0, f8 = struct.unpack_from("<QQ", p, 0)
    f16 = struct.unpack_from("<I", p, 16)[0]
    print(off, typ, seq, plen, f0, f8, f16)
    off += 32 + plen
PY
}

# mkset NAME [none] [crash]: the filesystem of a case in $T/NAME/{dev,mnt}
mkset() {
	local n=$1 remote=${2:-} crash=${3:-} D=$T/$1/dev M=$T/$1/mnt
	mkdir -p "$T/$n" &&
		if [ "$remote" = none ]; then
			$ZEROFS mkfs --remote none "$D" >/dev/null
		else
			$ZEROFS mkfs "$D" >/dev/null
		fi &&
		zf_mount "$D" "$M" &&
		head -c 3000000 /dev/urandom >"$T/$n/a" && cp "$T/$n/a" "$M/a" && cp "$M/a" "$M/a2" &&
		sync "$M/a" "$M/a2" &&
		{ [ "$remote" = none ] || $ZEROFS sync "$M"; } &&
		head -c 2000000 /dev/urandom >"$M/b" && mkdir "$M/d" && ln "$M/b" "$M/d/b-link" &&
		sync "$M/b" && { [ "$remote" = none ] || $ZEROFS sync "$M"; } &&
		head -c 1000000 /dev/urandom >"$M/c" && seq 1 20000 >"$M/s" && sync "$M/c" "$M/s" &&
		(cd "$M" && sha256sum $ALL) >"$T/$n/sums" &&
		for f in a b c; do stat -c %i "$M/$f" >"$T/$n/ino.$f" || return 1; done &&
		if [ -n "$crash" ]; then
			$ZEROFS sync "$M" 2>/dev/null || true
			kill -9 $(pgrep -f -- "zerofs mount .*$D $M\$") && fusermount3 -uz "$M" &&
				flock -w 60 "$D/lock" true
		else
			zf_umount "$M"
		fi
}

# fsck_names NAME 'paths...': fsck exits 4 and names each path, and no other file
fsck_names() {
	local n=$1 want=$2 opt=${3:-} f
	expect_code 4 $ZEROFS fsck $opt "$T/$n/dev" >"$T/$n/fsck1" 2>"$T/$n/fsck1.err"
	cat "$T/$n/fsck1" && for f in $want; do
		grep -q "^problem: .* /$f[ ,)]" "$T/$n/fsck1" || { echo "/$f not named"; return 1; }
	done && for f in $ALL; do
		case " $want " in *" $f "*) continue ;; esac
		! grep -q "^problem: .* /$f[ ,)]" "$T/$n/fsck1" || { echo "/$f named"; return 1; }
	done
}

# repaired NAME 'damaged paths...': repair (exit 1), then clean; on a mount the
# damaged paths read EIO and every other file is byte-identical
repaired() {
	local n=$1 bad=$2 f D=$T/$1/dev M=$T/$1/mnt
	expect_code 1 $ZEROFS fsck --repair --verify-data "$D" >"$T/$n/repair" 2>&1 &&
		cat "$T/$n/repair" && grep -q "^note: repair: wrote a checkpoint\|rebuilt from the bucket" "$T/$n/repair" &&
		expect_code 0 $ZEROFS fsck --verify-data "$D" >"$T/$n/fsck2" 2>&1 &&
		cat "$T/$n/fsck2" && grep -q "(data verified).*: clean$" "$T/$n/fsck2" &&
		zf_mount "$D" "$M" &&
		for f in $ALL; do
			case " $bad " in
			*" $f "*)
				! cat "$M/$f" >/dev/null 2>"$T/$n/err" &&
					grep -q "Input/output error" "$T/$n/err" || { echo "/$f reads"; return 1; } ;;
			*)
				grep " $f\$" "$T/$n/sums" | (cd "$M" && sha256sum -c --quiet) ||
					{ echo "/$f differs"; return 1; } ;;
			esac
		done &&
		zf_umount "$M" && expect_code 0 $ZEROFS fsck --verify-data "$D" >/dev/null 2>&1
}

# flip FILE OFFSET
flip() { flip_byte "$1" "$2"; }

test_expect_success 'a log record: the EXTENTS record of /b flipped (daemon killed: records in the log); the bucket has the record: rebuilt, nothing lost' '
	mkset log "" crash && D=$T/log/dev && ino=$(cat "$T/log/ino.b") &&
	log=$(ls "$D"/meta/log.* | tail -n 1) &&
	off=$(frames "$log" | awk -v i=$ino '\''$2 == 5 && $5 == i { print $1; exit }'\'') &&
	test -n "$off" && flip "$log" $((off + 32 + 40)) &&
	fsck_names log "b d/b-link" &&
	grep -q "^problem: metadata: .log\.[0-9a-f]*. offset $off: record [0-9]* (EXTENTS of inode $ino" "$T/log/fsck1" &&
	grep -q "^problem: metadata: records .* the bucket holds them" "$T/log/fsck1" &&
	repaired log "" && grep -q "rebuilt from the bucket" "$T/log/repair"
'
test_expect_success 'a checkpoint record: the EXTENTS record of /c flipped; the bucket has the checkpoint: rebuilt, nothing lost' '
	mkset ckpt && D=$T/ckpt/dev && ino=$(cat "$T/ckpt/ino.c") &&
	ck=$(ls "$D"/meta/ckpt.* | tail -n 1) &&
	off=$(frames "$ck" | awk -v i=$ino '\''$2 == 5 && $5 == i { print $1; exit }'\'') &&
	test -n "$off" && flip "$ck" $((off + 32 + 40)) &&
	fsck_names ckpt "c" &&
	grep -q "^problem: metadata: .ckpt\.[0-9a-f]*. offset $off: record [0-9]* (EXTENTS of inode $ino .* is damaged (checksum mismatch)" "$T/ckpt/fsck1" &&
	repaired ckpt "" && grep -q "rebuilt from the bucket" "$T/ckpt/repair"
'
test_expect_success 'a checkpoint record: the SC record of segment 1 flipped (/a and /a2 named); rebuilt from the bucket, nothing lost' '
	mkset ckptsc && D=$T/ckptsc/dev && ck=$(ls "$D"/meta/ckpt.* | tail -n 1) &&
	off=$(frames "$ck" | awk '\''$2 == 8 && $5 == 1 { print $1; exit }'\'') &&
	test -n "$off" && flip "$ck" $((off + 32 + 60)) &&
	fsck_names ckptsc "a a2" && grep -q "super-chunk record is lost" "$T/ckptsc/fsck1" &&
	repaired ckptsc "" && grep -q "rebuilt from the bucket" "$T/ckptsc/repair"
'
test_expect_success 'a segment header flipped: named, no file lost (its super-chunks verify on their own); the repair rewrites it' '
	mkset seghdr && D=$T/seghdr/dev && seg=$D/seg/0000000000000002.zseg &&
	cmp "$seg" "$D.bucket/seg/0000000000000002.zseg" &&
	flip "$seg" 20 && fsck_names seghdr "" --verify-data &&
	grep -q "^problem: seg/0000000000000002.zseg: segment header checksum mismatch" "$T/seghdr/fsck1" &&
	repaired seghdr "" && cmp "$seg" "$D.bucket/seg/0000000000000002.zseg"
'
test_expect_success 'a super-chunk body flipped (no bucket): /a and /a2 named, EIO after the repair' '
	mkset scbody none && D=$T/scbody/dev && seg=$D/seg/0000000000000001.zseg &&
	flip "$seg" 100000 && expect_code 0 $ZEROFS fsck "$D" >/dev/null 2>&1 &&
	fsck_names scbody "a a2" --verify-data &&
	grep -q "payload checksum mismatch" "$T/scbody/fsck1" &&
	repaired scbody "a a2"
'
test_expect_success 'a truncated segment (no bucket, the open one): /b, /d/b-link, /c, /s named; /a intact' '
	mkset trunc none && D=$T/trunc/dev && seg=$D/seg/0000000000000001.zseg &&
	ck=$(ls "$D"/meta/ckpt.* | tail -n 1) &&
	end=$(frames "$ck" | awk '\''$2 == 8 && $5 == 1 { e = $6 + $7; if (e > m && n++ == 0) m = e } END { print m }'\'') &&
	test "$end" -gt 3000000 && truncate -s $((end + 1000)) "$seg" &&
	fsck_names trunc "b d/b-link c s" && grep -q "segment truncated" "$T/trunc/fsck1" &&
	repaired trunc "b d/b-link c s"
'
test_expect_success 'a segment deleted (no bucket): every file in it named without --verify-data, EIO after the repair' '
	mkset segdel none && D=$T/segdel/dev && rm "$D/seg/0000000000000001.zseg" &&
	fsck_names segdel "a a2 b d/b-link c s" && grep -q "segment missing from the dev-dir" "$T/segdel/fsck1" &&
	repaired segdel "a a2 b d/b-link c s"
'
test_expect_success 'an object in the bucket flipped, local copy evicted: /a and /a2 named, EIO after the repair' '
	mkset bucketflip && D=$T/bucketflip/dev && B=$D.bucket &&
	rm "$D/seg/0000000000000001.zseg" && rm -rf "$D/cache" &&
	expect_code 0 $ZEROFS fsck "$D" >/dev/null 2>&1 &&
	flip "$B/seg/0000000000000001.zseg" 200000 &&
	fsck_names bucketflip "a a2" --verify-data &&
	repaired bucketflip "a a2"
'
test_expect_success 'an object deleted from the bucket, local copy evicted: /b named, EIO after the repair' '
	mkset bucketrm && D=$T/bucketrm/dev && B=$D.bucket &&
	rm "$D/seg/0000000000000002.zseg" "$B/seg/0000000000000002.zseg" &&
	fsck_names bucketrm "b d/b-link" &&
	grep -q "seg/0000000000000002.zseg offset 64: segment missing from the dev-dir and from the bucket" "$T/bucketrm/fsck1" &&
	repaired bucketrm "b d/b-link"
'
test_expect_success 'an object deleted from the bucket, local copy kept: the repair has it uploaded again' '
	mkset bucketlost && D=$T/bucketlost/dev && B=$D.bucket && M=$T/bucketlost/mnt &&
	rm "$B/seg/0000000000000002.zseg" &&
	expect_code 4 $ZEROFS fsck "$D" >"$T/out" 2>&1 && cat "$T/out" &&
	grep -q "bucket object .seg/0000000000000002.zseg. is missing" "$T/out" &&
	expect_code 1 $ZEROFS fsck --repair "$D" >"$T/out" 2>&1 && cat "$T/out" &&
	ck=$(ls "$D"/meta/ckpt.* | tail -n 1) && test ! -e "$B/meta/${ck##*/}" &&
	zf_mount "$D" "$M" && $ZEROFS sync "$M" &&
	test -e "$B/meta/${ck##*/}" && zf_umount "$M" &&
	cmp "$D/seg/0000000000000002.zseg" "$B/seg/0000000000000002.zseg" &&
	expect_code 0 $ZEROFS fsck --verify-data "$D" >/dev/null
'
test_expect_success 'garbage (a stray bucket object, an unreferenced local segment) is a note, not an error' '
	D=$T/bucketlost/dev && B=$D.bucket &&
	cp "$B/seg/0000000000000001.zseg" "$B/seg/00000000000000ff.zseg" &&
	cp "$D/seg/0000000000000001.zseg" "$D/seg/00000000000000fe.zseg" &&
	expect_code 0 $ZEROFS fsck "$D" >"$T/out" 2>&1 && cat "$T/out" &&
	grep -q "^note: garbage: bucket object .seg/00000000000000ff.zseg. ([0-9]* bytes) .*reclaimable by zerofs gc" "$T/out" &&
	grep -q "^note: garbage: seg/00000000000000fe.zseg ([0-9]* bytes) .*reclaimable by zerofs gc" "$T/out"
'
test_expect_success 'a write of the damaged bytes stores a fresh copy that heals every file sharing them' '
	D=$T/bucketflip/dev M=$T/bucketflip/mnt && zf_mount "$D" "$M" &&
	! cat "$M/a" >/dev/null 2>&1 && ! cat "$M/a2" >/dev/null 2>&1 &&
	cp "$T/bucketflip/a" "$M/new" && sync "$M/new" &&
	cmp "$T/bucketflip/a" "$M/a" && cmp "$T/bucketflip/a" "$M/a2" && zf_umount "$M" &&
	expect_code 0 $ZEROFS fsck --verify-data "$D" >"$T/out" 2>&1 && cat "$T/out" &&
	! grep -q "known damage" "$T/out" && zf_mount "$D" "$M" &&
	cmp "$T/bucketflip/a" "$M/a" && (cd "$M" && grep " a2\$" "$T/bucketflip/sums" | sha256sum -c --quiet) &&
	zf_umount "$M"
'
test_expect_success 'exit 8 when the dev-dir cannot be checked; 0 and no progress bar off a terminal' '
	expect_code 8 $ZEROFS fsck "$T/nowhere" 2>"$T/err" && grep -q "cannot open" "$T/err" &&
	expect_code 8 $ZEROFS fsck 2>/dev/null &&
	expect_code 0 $ZEROFS fsck "$T/bucketlost/dev" >/dev/null 2>"$T/err" &&
	! grep -q "fsck: \[" "$T/err"
'
test_expect_success 'a bucket that cannot be attached: --repair refuses (exit 8), marks nothing' '
	cp -a "$T/bucketrm/dev" "$T/unreach" && echo "url file://$T/no-such-bucket" >"$T/unreach/remote.conf" &&
	rm -f "$T/unreach"/seg/*.zseg &&
	expect_code 8 $ZEROFS fsck --repair "$T/unreach" 2>"$T/err" && cat "$T/err" &&
	grep -q "is unreachable: evicted data cannot be checked, nothing repaired" "$T/err" &&
	echo "url file://$T/bucketrm/dev.bucket" >"$T/unreach/remote.conf" &&
	rm -f "$T/unreach/upload.state" && expect_code 0 $ZEROFS fsck "$T/unreach" >/dev/null 2>&1
'
test_expect_success 'on a terminal: a progress bar on stderr, cleared at the end' '
	command -v script >/dev/null || { echo "no script(1): skipped"; exit 0; }
	script -qec "$ZEROFS fsck --verify-data $T/bucketlost/dev 2>&1 >/dev/null" /dev/null >"$T/tty" &&
	grep -q "fsck: \[> *\]   0% 0 of [0-9]* chunks" "$T/tty" &&
	grep -q "fsck: \[=*\] 100% \([0-9]*\) of \1 chunks" "$T/tty" &&
	grep -q "$(printf "\\r\\033\\[K")" "$T/tty"
'
test_expect_success 'no sanitizer reports' 'no_san_reports'
test_done
