#!/usr/bin/env bash
# zerofs gc on real mounts and the embedded file:// bucket:
#   - 1 GiB of mixed files (256 MiB under the sanitizers), half deleted and a
#     quarter of the rest overwritten; gc on the mount: the dev-dir's and the
#     bucket's segment bytes end within 1.1x of the live stored bytes, every
#     remaining file is byte-identical, fsck is clean, a restore from the
#     bucket holds the same files;
#   - --dry-run changes nothing and predicts the bucket objects gc then
#     frees; nonsense arguments are refused;
#   - kill -9 of an unmounted gc at 20 random moments, each followed by fsck
#     and a rerun: clean, nothing lost;
#   - gc while another process copies files into the mount, and the daemon
#     killed in the middle of a gc.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/remote-lib.sh"
require_fuse
command -v python3 >/dev/null || { echo "SKIP: python3 is needed"; exit 77; }
D=$T/dev M=$T/mnt B=$T/dev.bucket
if [ -n "${ZF_SANITIZED:-}" ]; then
	total_mb=256 kill_mb=48 copy_mb=48
else
	total_mb=${ZF_GC_MB:-1024} kill_mb=96 copy_mb=160
fi
cleanup_hooks="kill -9 \$(pgrep -f -- 'zerofs (mount|gc) .*$T/') 2>/dev/null; $cleanup_hooks"

# gen DIR MB SEED PREFIX: files of 4 KiB .. 32 MiB (log-uniform), half random,
# half hex text (compresses 2:1), distinct contents; prints "sha256  name"
gen() {
	python3 - "$@" <<'PY'
import hashlib, os, random, sys
d, mb, seed, prefix = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rnd = random.Random(seed)
total, i = 0, 0
while total < mb << 20:
    size = int(2 ** rnd.uniform(12, 25))
    data = os.urandom(size) if rnd.random() < 0.5 else os.urandom(size // 2 + 1).hex().encode()[:size]
    name = "%s%05d" % (prefix, i)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
    print("%s  %s" % (hashlib.sha256(data).hexdigest(), name))
    total += size
    i += 1
PY
}

# live DEV|MNT: stored bytes of live chunks, as 'zerofs stats' says
live() { zf_stat "$1" "stored live bytes"; }
seg_bytes() { find "$1" -name '*.zseg' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }
# within_110 A B: A <= 1.1 B
within_110() { [ "$1" -le $(($2 * 11 / 10)) ] || { echo "$1 > 1.1 x $2"; return 1; }; }

test_expect_success "$total_mb MiB of mixed files written and in the bucket" '
	$ZEROFS mkfs "$D" >/dev/null && zf_mount "$D" "$M" &&
	gen "$M" $total_mb 1 f >"$T/all" &&
	test "$(wc -l <"$T/all")" -gt 20 &&
	$ZEROFS sync "$M" && wait_drained "$M" 60
'
test_expect_success 'half of them deleted, a quarter of the rest overwritten' '
	awk "NR % 2 == 0 { print \$2 }" "$T/all" | (cd "$M" && xargs rm) &&
	awk "NR % 2 == 1" "$T/all" >"$T/kept" &&
	awk "NR % 4 == 1 { print \$2 }" "$T/kept" >"$T/over" &&
	(cd "$M" && python3 -c "
import hashlib, os, sys
for n in open(sys.argv[1]).read().split():
    size = os.path.getsize(n)
    data = os.urandom(size)
    open(n, \"wb\").write(data)
    print(hashlib.sha256(data).hexdigest() + \"  \" + n)" "$T/over") >"$T/new" &&
	grep -vFwf "$T/over" "$T/kept" >"$T/sums" && cat "$T/new" >>"$T/sums" &&
	test "$(wc -l <"$T/sums")" = "$(wc -l <"$T/kept")" &&
	$ZEROFS sync "$M" && wait_drained "$M" 60 &&
	l=$(live "$M") && s=$(seg_bytes "$D/seg") &&
	echo "before gc: $s segment bytes, $l live" &&
	test "$s" -gt $((l * 3 / 2))
'
test_expect_success 'gc --dry-run reports garbage and changes nothing' '
	before=$(seg_bytes "$D/seg") bb=$(seg_bytes "$B/seg") &&
	$ZEROFS gc --dry-run "$M" >"$T/dry" && cat "$T/dry" &&
	grep -Eq "^would empty: +[1-9][0-9]* segments" "$T/dry" &&
	grep -Eq "^bucket, would free: +[1-9][0-9]* objects" "$T/dry" &&
	test "$(seg_bytes "$D/seg")" = "$before" && test "$(seg_bytes "$B/seg")" = "$bb"
'
test_expect_success 'gc on the mount: dev-dir and bucket within 1.1x of the live stored bytes' '
	$ZEROFS gc "$M" >"$T/gc" && cat "$T/gc" &&
	grep -Eq "^local, freed: +[1-9][0-9]* segment files" "$T/gc" &&
	grep -Eq "^bucket, freed: +[1-9][0-9]* objects" "$T/gc" &&
	dry=$(sed -n "s/^bucket, would free: *\([0-9]*\) objects.*/\1/p" "$T/dry") &&
	real=$(sed -n "s/^bucket, freed: *\([0-9]*\) objects.*/\1/p" "$T/gc") &&
	echo "bucket objects: dry run $dry, gc $real" && test "$dry" = "$real" &&
	l=$(live "$M") && s=$(seg_bytes "$D/seg") && b=$(seg_bytes "$B/seg") &&
	echo "after gc: $s bytes in the dev-dir, $b in the bucket, $l live" &&
	within_110 "$s" "$l" && within_110 "$b" "$l"
'
test_expect_success 'every remaining file is byte-identical; fsck is clean' '
	(cd "$M" && sha256sum --quiet -c "$T/sums") &&
	test "$(ls "$M" | wc -l)" = "$(wc -l <"$T/sums")" &&
	zf_umount "$M" && zf_fsck_clean "$D" | grep -q "clean"
'
test_expect_success 'a restore from the bucket alone holds the same files' '
	$ZEROFS mkfs --restore "file://$B" "$T/dev2" >/dev/null &&
	zf_mount "$T/dev2" "$T/mnt2" &&
	(cd "$T/mnt2" && sha256sum --quiet -c "$T/sums") &&
	zf_umount "$T/mnt2" && zf_fsck_clean "$T/dev2" | grep -q "clean" &&
	rm -rf "$T/dev2"
'
test_expect_success 'a second gc finds nothing to move; nonsense arguments are refused' '
	$ZEROFS gc "$D" >"$T/gc2" && cat "$T/gc2" &&
	grep -Eq "^moved: +0 chunks" "$T/gc2" &&
	expect_code 2 $ZEROFS gc --max-waste lots "$D" 2>"$T/err" &&
	grep -q "max-waste" "$T/err" && test "$(wc -l <"$T/err")" = 1 &&
	expect_code 2 $ZEROFS gc &&
	expect_code 1 $ZEROFS gc "$T/nowhere" 2>"$T/err" && cat "$T/err" && test "$(wc -l <"$T/err")" = 1
'
rm -rf "$D" "$B" "$M"

# --- kill -9 of gc at random moments ---
K=$T/kdev KM=$T/kmnt KB=$T/kdev.bucket
# forget F: file F is deleted, drop it from the sums
forget() {
	{ grep -vFw "$1" "$T/ksums" || true; } >"$T/ksums.new" && mv "$T/ksums.new" "$T/ksums"
}
# churn N: new files, as many bytes of old ones deleted (garbage for the next gc)
churn() {
	zf_mount "$K" "$KM" &&
		gen "$KM" 6 $((100 + $1)) "n$1-" >>"$T/ksums" &&
		for f in $(awk '{ print $2 }' "$T/ksums" | shuf -n 2 --random-source=<(yes $1)); do
			rm "$KM/$f" && forget "$f" || return 1
		done &&
		zf_umount "$KM"
}
test_expect_success "kill -9 of gc at 20 random moments: fsck clean, rerun clean, nothing lost" '
	$ZEROFS mkfs "$K" >/dev/null && zf_mount "$K" "$KM" &&
	gen "$KM" $kill_mb 7 k >"$T/ksums" && zf_umount "$KM" &&
	churn 0 && start=$(date +%s%N) && $ZEROFS gc "$K" >/dev/null &&
	ms=$((($(date +%s%N) - start) / 1000000)) && echo "one gc: $ms ms" &&
	hits=0 &&
	for i in $(seq 1 20); do
		churn $i || exit 1
		delay=$(python3 -c "import random; print(random.uniform(0, $ms * 1.2 / 1000))")
		$ZEROFS gc "$K" >"$T/kgc.log" 2>&1 &
		pid=$!
		sleep "$delay"
		kill -9 $pid 2>/dev/null && hits=$((hits + 1))
		wait $pid
		$ZEROFS fsck "$K" >"$T/kfsck" || { echo "fsck after kill $i (at $delay s):"; cat "$T/kfsck"; exit 1; }
		$ZEROFS gc "$K" >"$T/kgc.log" 2>&1 || { echo "rerun $i:"; cat "$T/kgc.log"; exit 1; }
		zf_fsck_clean "$K" >"$T/kfsck" || { echo "fsck after rerun $i:"; cat "$T/kfsck"; exit 1; }
	done &&
	echo "$hits of 20 kills hit a running gc" && test $hits -ge 10 &&
	zf_mount "$K" "$KM" && (cd "$KM" && sha256sum --quiet -c "$T/ksums") &&
	test "$(ls "$KM" | wc -l)" = "$(wc -l <"$T/ksums")" &&
	within_110 "$(seg_bytes "$K/seg")" "$(live "$KM")"
'
test_expect_success 'gc while another process copies files into the mount: no errors, nothing lost' '
	mkdir "$T/src" && gen "$T/src" $copy_mb 11 c >/dev/null &&
	(cp -a "$T/src" "$KM/copy" && echo done >"$T/cp.done") &
	cpid=$! && n=0 &&
	for f in $(awk "NR % 2 == 0 { print \$2 }" "$T/ksums"); do
		rm "$KM/$f" && forget "$f" || exit 1
	done &&
	while kill -0 $cpid 2>/dev/null || [ $n -lt 2 ]; do
		$ZEROFS gc --max-waste 0 "$KM" >"$T/gc.log" || { cat "$T/gc.log"; exit 1; }
		n=$((n + 1))
	done &&
	wait $cpid && test -f "$T/cp.done" && echo "$n gc runs during the copy" &&
	diff -r "$T/src" "$KM/copy" && (cd "$KM" && sha256sum --quiet -c "$T/ksums") &&
	zf_umount "$KM" && zf_fsck_clean "$K" | grep -q clean
'
test_expect_success 'the daemon killed in the middle of a gc: remount, nothing lost, fsck clean' '
	for i in 1 2; do
		zf_mount "$K" "$KM" || exit 1
		for f in $(awk "NR % 3 == 0 { print \$2 }" "$T/ksums"); do
			rm "$KM/$f" && forget "$f" || exit 1
		done
		rm -rf "$KM/copy/c0000$i"* && sync -f "$KM" || exit 1
		$ZEROFS gc --max-waste 0 "$KM" >/dev/null 2>&1 &
		sleep 0.$((2 * i))
		kill -9 $(pgrep -f -- "zerofs mount .*$K $KM\$") && wait
		fusermount3 -uz "$KM"
		zf_fsck_clean "$K" >"$T/kfsck" || { cat "$T/kfsck"; exit 1; }
	done &&
	zf_mount "$K" "$KM" && (cd "$KM" && sha256sum --quiet -c "$T/ksums") &&
	for f in "$T"/src/*; do
		n=${f##*/}; case $n in c00001* | c00002*) continue ;; esac
		cmp "$f" "$KM/copy/$n" || exit 1
	done &&
	$ZEROFS gc "$KM" >/dev/null && zf_umount "$KM" && zf_fsck_clean "$K" | grep -q clean
'
test_expect_success 'no sanitizer reports' 'no_san_reports'
test_done
