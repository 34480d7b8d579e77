#!/usr/bin/env bash
# The dev-dir corruption matrix: every kind of local object (superblock,
# newest checkpoint, newest log file, the durable mark, a sealed segment,
# upload.state) damaged every way (a byte flipped at the start, the middle
# and the end; truncated to half; deleted; replaced by another valid object
# of the same kind), once with the bucket holding a good copy of everything
# and once without a bucket. Each case asserts:
#   - fsck --verify-data exits 0, 4 or 8 (never 1 without --repair), and a
#     "clean" report holds every inode the filesystem had;
#   - fsck --repair --verify-data exits 1 (corrected, and a second fsck is
#     clean) or 4; with a good copy in the bucket the repair loses nothing;
#   - after it, every file is byte-identical, or named in fsck's output (a
#     problem line with its path) — nothing differs silently;
#   - a mount that refuses says why in one line.
# The reference: a tree written, unmounted (checkpoint), written again,
# `zerofs sync`ed (the bucket has it all, the durable mark covers it) and
# the daemon killed, so the newest log file holds synced records.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/remote-lib.sh"
require_fuse
require_cmds "Debian: python3" python3
REF=$T/ref M=$T/mnt
kill_daemons_at_exit

# the reference filesystem and a foreign one (the source of "another valid
# object of the same kind")
setup() {
	local D=$REF/dev i
	mkdir -p "$REF" "$T/other" &&
		$ZEROFS mkfs "$D" >/dev/null && zf_mount "$D" "$M" &&
		mkdir "$M/d1" "$M/d2" "$M/d3" &&
		for i in $(seq 1 40); do
			seq $((i * 1000)) $((i * 1000 + 300)) >"$M/d$((i % 3 + 1))/t$i" || return 1
		done &&
		head -c 1500000 /dev/urandom >"$M/big1" && head -c 700000 /dev/urandom >"$M/d1/big2" &&
		ln "$M/big1" "$M/d2/big1-link" && ln -s ../big1 "$M/d3/sym" &&
		$ZEROFS sync "$M" && zf_umount "$M" && zf_mount "$D" "$M" &&
		mkdir "$M/d4" && for i in $(seq 1 20); do
			seq $((i * 7)) $((i * 7 + 500)) >"$M/d4/n$i" || return 1
		done &&
		head -c 300000 /dev/urandom | dd of="$M/big1" bs=1 seek=200000 conv=notrunc status=none &&
		head -c 900000 /dev/urandom >"$M/d4/big3" &&
		$ZEROFS sync "$M" &&
		(cd "$M" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$REF/sums" &&
		(cd "$M" && find . -type f -printf '%i %p\n') >"$REF/inos" &&
		(cd "$M" && find . -printf '%i\n' | sort -u | wc -l) >"$REF/inodes" &&
		zf_kill9 "$D" "$M" &&
		ls "$D"/meta/log.* >/dev/null && test -s "$D/meta/synced" &&
		test -e "$D/seg/0000000000000002.zseg" &&
		rm -f "$D.bucket/lease" &&
		$ZEROFS mkfs "$T/other/dev" >/dev/null && zf_mount "$T/other/dev" "$T/omnt" &&
		seq 1 5000 >"$T/omnt/x" && zf_umount "$T/omnt" && zf_mount "$T/other/dev" "$T/omnt" &&
		seq 1 7000 >"$T/omnt/y" && $ZEROFS sync "$T/omnt" && zf_kill9 "$T/other/dev" "$T/omnt"
}

# target KIND DEV: the file a case damages
target() {
	case $1 in
	superblock) echo "$2/superblock" ;;
	ckpt) ls "$2"/meta/ckpt.* | tail -n 1 ;;
	log) ls "$2"/meta/log.* | tail -n 1 ;;
	mark) echo "$2/meta/synced" ;;
	seg) echo "$2/seg/0000000000000001.zseg" ;;
	state) echo "$2/upload.state" ;;
	esac
}

# replacement KIND DEV: another valid object of the same kind
replacement() {
	case $1 in
	seg) echo "$2/seg/0000000000000002.zseg" ;;
	state) printf 'seq 1\nseg 0\nckpt 0\nclaim 1\n' >"$T/state.other" && echo "$T/state.other" ;;
	*) target "$1" "$T/other/dev" ;;
	esac
}

# compare MNT OUTPUTS...: every reference file identical, or named in one
# of the fsck outputs (by path, or by inode when its name was lost), or its bytes in /lost+found (its name was lost and
# fsck said so), or lost with log records fsck named as lost (their range:
# which paths they touched died with them); prints the counts; fails on a
# file that differs silently
compare() {
	python3 - "$REF/sums" "$REF/inos" "$1" "${@:2}" <<'PY'
import hashlib, os, re, sys
sums, inos, mnt, outs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
ino = {p[1:]: i for i, p in (l.rstrip("\n").split(" ", 1) for l in open(inos))}
said = "".join(open(o, errors="replace").read() for o in outs if os.path.exists(o))
def digest(p):
    try:
        with open(p, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None
found = set()
for root, _, files in os.walk(mnt + "/lost+found"):
    found.update(digest(os.path.join(root, f)) for f in files)
records_lost = re.search(r"problem: .*(were synced but are damaged or missing|records missing before|the END record is missing)", said)
ok = named = lf = rec = 0
silent = []
for line in open(sums):
    want, path = line.rstrip("\n").split("  ", 1)
    path = path[1:]  # "./x" -> "/x"
    got = digest(mnt + path)
    if got == want:
        ok += 1
    elif path in said or os.path.basename(path) in said or \
            re.search(r"(inode |#)%s\b" % ino.get(path, "x"), said):
        named += 1
    elif want in found:
        lf += 1
    elif records_lost:
        rec += 1
    else:
        silent.append(path)
print("identical %d, named %d, in lost+found %d, lost with named records %d" % (ok, named, lf, rec))
if silent:
    sys.exit("differ without being named: " + " ".join(silent))
PY
}

# run_case KIND HOW BUCKET(yes|no) EXPECT(heal|harmless|named)
run_case() {
	local kind=$1 how=$2 bucket=$3 expect=$4 C=$T/case D f rc1 rc2 rc3 rcm=0 n_ref n
	test -s "$REF/sums" || { echo "no reference"; return 1; }
	rm -rf "$C" && mkdir -p "$C" && cp -a "$REF/dev" "$C/dev" && D=$C/dev &&
		if [ "$bucket" = yes ]; then
			cp -a "$REF/dev.bucket" "$C/dev.bucket" &&
				echo "url file://$C/dev.bucket" >"$D/remote.conf"
		else
			echo "url none" >"$D/remote.conf"
		fi || return 1
	f=$(target "$kind" "$D") && test -e "$f" &&
		damage_file "$f" "$how" "$(replacement "$kind" "$D")" 1 ||
		{ echo "cannot damage $kind ($how)"; return 1; }
	n_ref=$(cat "$REF/inodes")
	rc1=0 && $ZEROFS fsck --verify-data "$D" >"$C/fsck1" 2>&1 || rc1=$?
	sed 's/^/  fsck: /' "$C/fsck1" | head -n 30
	case $rc1 in 0 | 4 | 8) ;; *) echo "fsck exit $rc1"; return 1 ;; esac
	if [ "$rc1" = 0 ]; then
		# clean: all of it there (the root is not in the inode count's paths)
		n=$(sed -n "s/^.*': \([0-9]*\) inodes.*clean$/\1/p" "$C/fsck1")
		test "$n" = "$n_ref" || { echo "clean with $n inodes, the reference has $n_ref"; return 1; }
	fi
	rc2=0 && $ZEROFS fsck --repair --verify-data "$D" >"$C/fsck2" 2>&1 || rc2=$?
	sed 's/^/  repair: /' "$C/fsck2" | head -n 30
	case $rc1/$rc2 in 0/0 | [48]/1 | [48]/4 | 8/8) ;; *) echo "fsck exit $rc1, then --repair exit $rc2"; return 1 ;; esac
	if [ "$rc2" = 1 ]; then
		rc3=0 && $ZEROFS fsck --verify-data "$D" >"$C/fsck3" 2>&1 || rc3=$?
		test "$rc3" = 0 || { cat "$C/fsck3"; echo "not clean after a repair that said corrected"; return 1; }
	fi
	$ZEROFS mount "$D" "$M" 2>"$C/mount.err" || rcm=$?
	if [ "$rcm" != 0 ]; then
		echo "mount refused: $(cat "$C/mount.err")"
		case $rc2 in 4 | 8) ;; *) return 1 ;; esac
		test "$(wc -l <"$C/mount.err")" -ge 1 &&
			test "$expect" != heal && test "$expect" != harmless || return 1
		return 0
	fi
	echo "$M" >>"$T/.mounts"
	compare "$M" "$C/fsck1" "$C/fsck2" >"$C/cmp" 2>&1 || { cat "$C/cmp"; zf_umount "$M"; return 1; }
	cat "$C/cmp"
	zf_umount "$M" || return 1
	case $expect in
	heal | harmless)
		grep -q "identical $(wc -l <"$REF/sums"), named 0, in lost+found 0, lost with named records 0" "$C/cmp" ||
			{ echo "expected every file back ($expect)"; return 1; }
		;;
	esac
	test "$expect" != harmless || test "$rc1" = 0 || { echo "harmless damage, but fsck exit $rc1"; return 1; }
}

test_expect_success 'the reference: a tree, a checkpoint, synced records in the log, the daemon killed' 'setup'

hows="start middle end truncate delete replace"
# the sanitized build runs the damage whose code paths differ (a flip at the
# start or the end takes the same ones as in the middle); the plain build
# runs them all
if [ -n "${ZF_SANITIZED:-}" ]; then
	hows="middle truncate delete replace"
	echo "# sanitized build: damage '$hows' only (the plain build runs all six)"
fi
for kind in superblock ckpt log mark seg state; do
	for how in $hows; do
		case $kind in
		mark | state) with=harmless without=harmless ;;
		seg) with=heal without=named ;;
		*) with=heal without=named ;;
		esac
		[ "$kind/$how" = seg/delete ] && with=harmless
		test_expect_success "$kind, $how, the bucket holds a good copy: $with" "run_case $kind $how yes $with"
		test_expect_success "$kind, $how, no bucket: $without" "run_case $kind $how no $without"
	done
done
test_expect_success 'a read through the mount heals a damaged local super-chunk from the bucket (no fsck): stats count it, the segment file is the bucket copy again' '
	C=$T/heal && rm -rf "$C" && mkdir -p "$C" && cp -a "$REF/dev" "$REF/dev.bucket" "$C/" &&
	D=$C/dev && echo "url file://$C/dev.bucket" >"$D/remote.conf" &&
	seg=$D/seg/0000000000000001.zseg && cmp "$seg" "$C/dev.bucket/seg/0000000000000001.zseg" &&
	flip_byte "$seg" $(($(stat -c %s "$seg") / 2)) && ! cmp -s "$seg" "$C/dev.bucket/seg/0000000000000001.zseg" &&
	zf_mount "$D" "$M" && compare "$M" >"$C/cmp" && cat "$C/cmp" &&
	grep -q "identical $(wc -l <"$REF/sums"), named 0" "$C/cmp" &&
	for i in $(seq 1 300); do
		[ "$(zf_stat "$M" healed)" -ge 1 ] && cmp -s "$seg" "$C/dev.bucket/seg/0000000000000001.zseg" && break
		sleep 0.1
	done &&
	{ test "$(zf_stat "$M" healed)" -ge 1 || { "$ZEROFS" stats "$M"; false; }; } &&
	cmp "$seg" "$C/dev.bucket/seg/0000000000000001.zseg" && zf_umount "$M" &&
	zf_fsck_clean "$D" >/dev/null
'
test_expect_success 'no sanitizer reports' 'no_san_reports'
test_done
