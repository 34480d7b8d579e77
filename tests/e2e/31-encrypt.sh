#!/usr/bin/env bash
# encryption at rest: the bucket holds no plaintext, tampering is caught,
# keys are managed with a passphrase.
#
# A filesystem made with --encrypt (file:// bucket) gets marker strings, a
# long run of one repeated line, real text and a tree with every kind of
# file. Then:
#   - no bucket object holds a marker, the repeated line, a zstd frame or
#     any zerofs structure's magic;
#   - a restore with the passphrase (from a file, then from the
#     environment) is byte-identical (rsync -aHAXc); a wrong or missing one
#     fails in one line, exit 1, nothing made; mounts of the dev-dir need none;
#   - tampering: a flipped byte in a segment, two segments of the same size
#     swapped, a log piece replaced by an older one's bytes, a log piece cut
#     short, a flipped byte in the checkpoint: fsck --verify-data exits 4 naming the object and
#     "authentication failed"; reads of a restored copy give EIO for the
#     files in the damaged objects and the right bytes for every other,
#     never wrong bytes; an old head replayed restores everything anyway;
#   - zerofs passwd: the new passphrase restores, the old one no longer; a
#     wrong old one changes nothing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/remote-lib.sh"
require_fuse
require_cmds "Debian: rsync python3 acl attr" rsync python3 setfacl setfattr
D=$T/dev M=$T/mnt B=$T/bucket
kill_daemons_at_exit
unset ZEROFS_PASSPHRASE ZEROFS_PASSPHRASE_FILE ZEROFS_NEW_PASSPHRASE ZEROFS_NEW_PASSPHRASE_FILE
printf 'first passphrase\n' >"$T/pass1"
printf 'second passphrase\n' >"$T/pass2"

# restore BUCKET into DIR with the passphrase file PASS (setsid: no terminal to ask on)
restore_with() {
	ZEROFS_PASSPHRASE_FILE=$3 setsid -w "$ZEROFS" mkfs --restore "file://$1" "$2" </dev/null
}

test_expect_success 'mkfs --encrypt takes the passphrase from a file, never asks without a terminal' '
	! setsid -w "$ZEROFS" mkfs --encrypt --remote "file://$B" "$T/nopass" </dev/null 2>"$T/err" &&
	cat "$T/err" && test "$(wc -l <"$T/err")" = 1 && grep -q "ZEROFS_PASSPHRASE" "$T/err" &&
	! test -e "$T/nopass/superblock" &&
	head -c 1500 /dev/zero | tr "\\0" y >"$T/long" &&
	! ZEROFS_PASSPHRASE_FILE=$T/long "$ZEROFS" mkfs --encrypt "$T/long-dev" 2>"$T/err" &&
	grep -q "the passphrase is longer than 1023 bytes" "$T/err" && ! test -e "$T/long-dev/superblock" &&
	! ZEROFS_PASSPHRASE=$(cat "$T/long") "$ZEROFS" mkfs --encrypt "$T/long-dev" 2>"$T/err" &&
	grep -q "the passphrase is longer than 1023 bytes" "$T/err" && ! test -e "$T/long-dev/superblock" &&
	ZEROFS_PASSPHRASE_FILE=$T/pass1 "$ZEROFS" mkfs --encrypt --remote "file://$B" "$D" |
		grep -q encrypted &&
	test "$(stat -c %a "$D/key")" = 600
'

test_expect_success 'an encrypted filesystem is written (no passphrase needed to mount)' '
	mkdir -p "$T/ref" && make_tree "$T/ref" 2000000 &&
	for i in $(seq 1 3000); do echo "REPEATED LINE OF KNOWN TEXT zerofs-marker-run"; done >"$T/ref/repeated" &&
	echo "MARKER-7f3a9c-SECRET" >"$T/ref/marker.txt" &&
	cp -r /usr/share/common-licenses "$T/ref/text" &&
	zf_mount "$D" "$M" && rsync -aHAX "$T/ref/" "$M/" && "$ZEROFS" sync "$M" &&
	same_tree "$T/ref" "$M"
'

test_expect_success 'three more rounds: two segments of the same size, and log pieces' '
	head -c 9000 /dev/urandom >"$T/ref/s1" && cp "$T/ref/s1" "$M/s1" && "$ZEROFS" sync "$M" &&
	cp "$B/head" "$T/old-head" &&
	head -c 9000 /dev/urandom >"$T/ref/s2" && cp "$T/ref/s2" "$M/s2" && "$ZEROFS" sync "$M" &&
	echo more >"$T/ref/last" && cp "$T/ref/last" "$M/last" && "$ZEROFS" sync "$M" &&
	zf_umount "$M" && zf_fsck_clean "$D" && cp -a "$B" "$T/good"
'

test_expect_success 'no bucket object holds plaintext, a zstd frame or a zerofs magic' '
	python3 - "$B" <<-PY
	import os, struct, sys
	# long strings must not occur anywhere; a 4-byte magic occurs by chance
	# in ciphertext (once in 4 GiB), so it must not be where the clear
	# structure has it, nor be frequent
	bad = [b"MARKER-7f3a9c", b"REPEATED LINE", b"zerofs-marker-run", b"GNU GENERAL PUBLIC",
	       b"ZFSEGMT1", b"ZFSEGEND", b"ZFCKPT01", b"ZFMLOG01", b"zerofs-head", b"zerofs-lease"]
	short = [b"\x28\xb5\x2f\xfd", struct.pack("<I", 0x4353465a), struct.pack("<I", 0x524c465a)]
	n = 0
	for root, _, files in os.walk(sys.argv[1]):
	    for f in files:
	        p = os.path.join(root, f)
	        data = open(p, "rb").read()
	        n += 1
	        for b in bad:
	            assert b not in data, "%s holds %r" % (p, b)
	        for b in short:
	            assert data.count(b) <= 2, "%s holds %r %d times" % (p, b, data.count(b))
	            assert data[:4] != b and data[64:68] != b, "%s starts a unit with %r" % (p, b)
	assert n >= 8, "only %d objects" % n
	print("%d objects, none with plaintext" % n)
	PY
'

test_expect_success 'restore with the passphrase is byte-identical; fsck clean' '
	cp -a "$T/good" "$T/b1" && restore_with "$T/b1" "$T/r1" "$T/pass1" &&
	zf_mount "$T/r1" "$T/rm" && same_tree "$T/ref" "$T/rm" && zf_umount "$T/rm" &&
	zf_fsck_clean "$T/r1"
'

test_expect_success 'a wrong or missing passphrase: one line, exit 1, nothing made' '
	printf "not it\n" >"$T/wrong" && cp -a "$T/good" "$T/b2" &&
	expect_code 1 restore_with "$T/b2" "$T/r2" "$T/wrong" 2>"$T/err" && cat "$T/err" &&
	grep -q "wrong passphrase" "$T/err" && ! test -e "$T/r2" &&
	! setsid -w "$ZEROFS" mkfs --restore "file://$T/b2" "$T/r2" </dev/null 2>"$T/err" &&
	grep -q "passphrase" "$T/err" && ! test -e "$T/r2" && diff -r "$T/good" "$T/b2"
'

# fsck_4 ARGS...: fsck exits 4 (damage found); its output in $T/out, shown
fsck_4() {
	local rc=0
	expect_code 4 "$ZEROFS" fsck "$@" >"$T/out" 2>&1 || rc=1
	cat "$T/out"
	return $rc
}

# segments holding s1 and s2: the two with the same size (9000 random bytes, one chunk)
seg_of_size_pairs() {
	find "$1/seg" -type f -printf "%s %p\n" | sort -n | awk "{ if (\$1 == s) { print p; print \$2; exit } s = \$1; p = \$2 }"
}

test_expect_success 'a flipped byte in a segment: fsck names it, reads give EIO, never wrong bytes' '
	seg=$(ls -S "$B"/seg/* | head -1) && flip_byte "$seg" $(( $(stat -c %s "$seg") / 2 )) &&
	fsck_4 --verify-data "$D" &&
	grep -q "${seg##*/}.*authentication failed" "$T/out" &&
	cp -a "$B" "$T/b3" && restore_with "$T/b3" "$T/r3" "$T/pass1" &&
	zf_mount "$T/r3" "$T/m3" && eio=0 &&
	for f in $(cd "$T/ref" && find . -type f); do
		if cat "$T/m3/$f" >"$T/got" 2>/dev/null; then
			cmp "$T/got" "$T/ref/$f" || { echo "WRONG BYTES in $f"; exit 1; }
		else eio=$((eio + 1)); fi
	done && echo "$eio files unreadable" && test "$eio" -ge 1 && zf_umount "$T/m3" &&
	fsck_4 --verify-data "$T/r3" &&
	grep -q "authentication failed" "$T/out" &&
	rm -rf "$B" && cp -a "$T/good" "$B"
'

test_expect_success 'two segments of the same size swapped: both named, never read as the other' '
	set -- $(seg_of_size_pairs "$B") && test -n "$2" &&
	mv "$1" "$T/x" && mv "$2" "$1" && mv "$T/x" "$2" &&
	fsck_4 --verify-data "$D" &&
	grep -q "${1##*/}.*authentication failed" "$T/out" &&
	grep -q "${2##*/}.*authentication failed" "$T/out" &&
	cp -a "$B" "$T/b4" && restore_with "$T/b4" "$T/r4" "$T/pass1" &&
	zf_mount "$T/r4" "$T/m4" && ! cat "$T/m4/s1" >/dev/null 2>&1 && ! cat "$T/m4/s2" >/dev/null 2>&1 &&
	cmp "$T/m4/marker.txt" "$T/ref/marker.txt" && zf_umount "$T/m4" &&
	rm -rf "$B" && cp -a "$T/good" "$B"
'

test_expect_success 'an older log piece replayed under a newer key: refused, named' '
	set -- $(ls "$B"/meta/log.* | sort) && test $# -ge 2 &&
	cp "$1" "${@: -1}" &&
	fsck_4 "$D" && grep -q "$(basename "${@: -1}").*authentication failed" "$T/out" &&
	cp -a "$B" "$T/b5" && ! restore_with "$T/b5" "$T/r5" "$T/pass1" 2>"$T/err" &&
	grep -q "authentication failed" "$T/err" && ! test -e "$T/r5" &&
	rm -rf "$B" && cp -a "$T/good" "$B"
'

test_expect_success 'a log piece cut short: named as an authentication failure, not read' '
	set -- $(ls "$B"/meta/log.* | sort) && lp=${@: -1} &&
	truncate -s $(( $(stat -c %s "$lp") - 7 )) "$lp" &&
	fsck_4 "$D" && grep -q "${lp##*/}.*authentication failed" "$T/out" &&
	cp -a "$B" "$T/b9" && ! restore_with "$T/b9" "$T/r9" "$T/pass1" 2>"$T/err" &&
	grep -q "${lp##*/}.*authentication failed" "$T/err" && ! test -e "$T/r9" &&
	rm -rf "$B" && cp -a "$T/good" "$B"
'

test_expect_success 'a flipped byte in the checkpoint: named as an authentication failure' '
	ck=$(ls "$B"/meta/ckpt.* | sort | tail -1) && flip_byte "$ck" 100 &&
	fsck_4 "$D" && grep -q "${ck##*/}.*authentication failed" "$T/out" &&
	cp -a "$B" "$T/b6" && { restore_with "$T/b6" "$T/r6" "$T/pass1" 2>"$T/err" || ! test -e "$T/r6"; } &&
	cat "$T/err" && grep -q "${ck##*/}.*authentication failed" "$T/err" &&
	rm -rf "$B" && cp -a "$T/good" "$B"
'

test_expect_success 'an old head replayed: the restore follows the chain to its end' '
	cp "$T/old-head" "$B/head" && cp -a "$B" "$T/b7" &&
	restore_with "$T/b7" "$T/r7" "$T/pass1" && zf_mount "$T/r7" "$T/m7" &&
	same_tree "$T/ref" "$T/m7" && zf_umount "$T/m7" &&
	rm -rf "$B" && cp -a "$T/good" "$B"
'

test_expect_success 'the bucket without its keys: fsck says a restore is impossible, --repair puts it back' '
	rm "$B/keys" && fsck_4 "$D" && grep -q "object .keys. is missing" "$T/out" &&
	expect_code 1 "$ZEROFS" fsck --repair "$D" >"$T/out" 2>&1 && cmp "$B/keys" "$D/keys" &&
	"$ZEROFS" fsck "$D"
'

test_expect_success 'zerofs passwd: a wrong old passphrase changes nothing' '
	cp "$D/keys" "$T/keys.before" &&
	! ZEROFS_PASSPHRASE_FILE=$T/wrong ZEROFS_NEW_PASSPHRASE_FILE=$T/pass2 \
		setsid -w "$ZEROFS" passwd "$D" </dev/null 2>"$T/err" &&
	grep -q "wrong passphrase" "$T/err" && cmp "$D/keys" "$T/keys.before" &&
	cmp "$B/keys" "$T/keys.before"
'

test_expect_success 'zerofs passwd: the new passphrase restores, the old one no longer' '
	ZEROFS_PASSPHRASE_FILE=$T/pass1 ZEROFS_NEW_PASSPHRASE="second passphrase" \
		setsid -w "$ZEROFS" passwd "$D" </dev/null &&
	cmp "$D/keys" "$B/keys" && ! cmp -s "$D/keys" "$T/keys.before" &&
	cp -a "$B" "$T/b8" && ! restore_with "$T/b8" "$T/r8" "$T/pass1" 2>"$T/err" &&
	grep -q "wrong passphrase" "$T/err" &&
	ZEROFS_PASSPHRASE="second passphrase" setsid -w "$ZEROFS" mkfs --restore "file://$T/b8" "$T/r8" </dev/null &&
	zf_mount "$T/r8" "$T/m8" && same_tree "$T/ref" "$T/m8" && zf_umount "$T/m8" &&
	zf_mount "$D" "$M" && same_tree "$T/ref" "$M" && zf_umount "$M"
'

test_expect_success 'a passwd interrupted after the bucket took the new keys: fsck says so, --repair finishes it' '
	cp "$D/keys" "$D/keys.new" && cp "$T/keys.before" "$D/keys" &&
	fsck_4 "$D" && grep -q "interrupted .zerofs passwd." "$T/out" &&
	expect_code 1 "$ZEROFS" fsck --repair "$D" >"$T/out" 2>&1 && cmp "$D/keys" "$B/keys" &&
	! test -e "$D/keys.new" && "$ZEROFS" fsck "$D"
'

test_done
