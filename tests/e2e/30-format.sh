#!/usr/bin/env bash
# the on-disk format can evolve: feature flags, and filesystems made before them.
#
# tests/fixtures/format1.tar.gz is a dev-dir and its file:// bucket made by
# zerofs 0.1.0 (format 1 before the feature flags: superblock flags 0,
# uncompressed metadata in the bucket). It must mount, read back exactly,
# take new writes, pass fsck, and restore from its bucket. A new
# filesystem's bucket holds its metadata as zstd frames (feature
# meta-zstd). A superblock naming a feature this binary does not know is
# refused by every command with one line naming it, and nothing changes.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/remote-lib.sh"
require_fuse
require_cmds "Debian: python3 rsync attr" python3 rsync getfattr
FIX=$(cd "$(dirname "$0")/.." && pwd)/fixtures/format1.tar.gz
[ -f "$FIX" ] || FIX=$(cd "$(dirname "$0")/../.." && pwd)/tests/fixtures/format1.tar.gz
kill_daemons_at_exit

# set_sb_word DEV OFF VALUE: write a le32 into DEV's superblock, checksum fixed
set_sb_word() {
	python3 - "$1/superblock" "$2" "$3" <<'PY'
import ctypes, struct, sys
x = ctypes.CDLL("libxxhash.so.0")
x.XXH3_64bits.restype = ctypes.c_uint64
x.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
p, off, val = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
b = bytearray(open(p, "rb").read())
struct.pack_into("<I", b, off, val)
struct.pack_into("<Q", b, 120, x.XXH3_64bits(bytes(b[:120]), 120))
open(p, "wb").write(b)
PY
}

test_expect_success 'the fixture of format 1 (zerofs 0.1.0) unpacks' '
	tar -xzf "$FIX" -C "$T" && test -f "$T/dev/superblock" &&
	echo "url file://$T/bucket" >"$T/dev/remote.conf" &&
	od -An -tu4 -j12 -N4 "$T/dev/superblock" | grep -qx " *0"
'

test_expect_success 'it mounts and reads back exactly what 0.1.0 wrote' '
	zf_mount "$T/dev" "$T/mnt" &&
	test "$(sha256sum <"$T/mnt/dir/hello.txt" | cut -c1-64)" = "$(sed -n 1p "$T/sums")" &&
	test "$(sha256sum <"$T/mnt/gpl" | cut -c1-64)" = "$(sed -n 2p "$T/sums")" &&
	test "$(stat -c %h "$T/mnt/gpl")" = 2 && cmp "$T/mnt/gpl" "$T/mnt/gpl.hard" &&
	test "$(readlink "$T/mnt/link")" = dir/hello.txt &&
	test "$(getfattr --only-values -n user.note "$T/mnt/gpl")" = fixture
'

test_expect_success 'it takes new writes, which go to its bucket, and stays format 1' '
	head -c 300000 /dev/urandom >"$T/new" && cp "$T/new" "$T/mnt/new" &&
	"$ZEROFS" sync "$T/mnt" && zf_umount "$T/mnt" &&
	od -An -tu4 -j12 -N4 "$T/dev/superblock" | grep -qx " *0" &&
	zf_fsck_clean "$T/dev"
'

test_expect_success 'its bucket (uncompressed metadata) restores byte for byte' '
	cp -a "$T/bucket" "$T/bcopy" &&
	"$ZEROFS" mkfs --restore "file://$T/bcopy" "$T/r1" &&
	zf_mount "$T/r1" "$T/rm" &&
	cmp "$T/rm/new" "$T/new" &&
	test "$(sha256sum <"$T/rm/gpl" | cut -c1-64)" = "$(sed -n 2p "$T/sums")" &&
	zf_umount "$T/rm" && zf_fsck_clean "$T/r1"
'

test_expect_success 'a new filesystem keeps its bucket metadata as zstd frames' '
	"$ZEROFS" mkfs "$T/n" >/dev/null && zf_mount "$T/n" "$T/nm" &&
	cp -r "$T/mnt/../bucket" "$T/nm/tree" && "$ZEROFS" sync "$T/nm" && zf_umount "$T/nm" &&
	ls "$T/n.bucket/meta" | grep -q . &&
	for o in "$T"/n.bucket/meta/*; do
		test "$(od -An -tx1 -N4 "$o" | tr -d " ")" = 28b52ffd || { echo "$o is no zstd frame"; exit 1; }
	done &&
	od -An -tu4 -j12 -N4 "$T/n/superblock" | grep -qx " *1" &&
	zf_fsck_clean "$T/n"
'

test_expect_success 'an unknown incompatible feature: every command refuses, naming it' '
	cp "$T/n/superblock" "$T/sb.good" &&
	set_sb_word "$T/n" 12 $(( (1 << 9) | 1 )) && cp "$T/n/superblock" "$T/sb.future" &&
	mkdir -p "$T/fm" &&
	expect_code 1 "$ZEROFS" mount "$T/n" "$T/fm" 2>"$T/err" && cat "$T/err" &&
	grep -q "does not know (bit 9)" "$T/err" && grep -q "cannot be opened" "$T/err" &&
	grep -q "made by zerofs" "$T/err" && ! mountpoint -q "$T/fm" &&
	! "$ZEROFS" fsck "$T/n" >"$T/out" 2>&1 && grep -q "bit 9" "$T/out" &&
	! "$ZEROFS" gc "$T/n" >"$T/out" 2>&1 && grep -q "bit 9" "$T/out" &&
	cmp "$T/n/superblock" "$T/sb.future"
'

test_expect_success 'an unknown read-only-compatible feature: no writable mount' '
	cp "$T/sb.good" "$T/n/superblock" && set_sb_word "$T/n" 96 $((1 << 4)) &&
	! "$ZEROFS" mount "$T/n" "$T/fm" 2>"$T/err" && cat "$T/err" &&
	grep -q "bit 4" "$T/err" && grep -q "read-only" "$T/err" && ! mountpoint -q "$T/fm"
'

test_expect_success 'with the superblock back, all is as before' '
	cp "$T/sb.good" "$T/n/superblock" && zf_fsck_clean "$T/n" &&
	zf_mount "$T/n" "$T/nm" && test -d "$T/nm/tree" && zf_umount "$T/nm"
'

test_done
