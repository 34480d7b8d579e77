#!/usr/bin/env bash
# bench/bench_fuse.sh - zerofs against a native directory and a plain
# passthrough FUSE mount (libfuse's passthrough_ll example), same workloads,
# same run. Every figure is printed with its ratio to native and to
# passthrough (time ratios: > 1 means slower than the reference).
#
#   bench/bench_fuse.sh [ZEROFS_BINARY]     (root; run from the build dir)
#   env: ZF_BENCH_BIG_MB (1024)  size of the big files
#        ZF_BENCH_TREE_MB (300)  size of the generated tree (~6000 files)
#        ZF_BENCH_DIR            scratch directory (default /var/tmp/zf-bench)
set -euo pipefail
ZEROFS=$(realpath "${1:-./zerofs}")
BIG=${ZF_BENCH_BIG_MB:-1024}
TREE=${ZF_BENCH_TREE_MB:-300}
W=${ZF_BENCH_DIR:-/var/tmp/zf-bench}
EX=/usr/share/doc/libfuse3-dev/examples

cleanup() {
	for m in "$W"/mnt-*; do mountpoint -q "$m" 2>/dev/null && fusermount3 -u "$m" 2>/dev/null || true; done
}
trap cleanup EXIT
rm -rf "$W" && mkdir -p "$W"
cd "$W"

# --- the passthrough reference, built from Debian's libfuse3 examples ---
src=$EX/passthrough_ll.c
[ -f "$src" ] || { [ -f "$src.gz" ] && zcat "$src.gz" >"$W/passthrough_ll.c" && src=$W/passthrough_ll.c; }
gcc -O2 -I"$EX" -o "$W/passthrough_ll" "$src" $(pkg-config --cflags --libs fuse3)

now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$(now) - $1:.3f}')"; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# --- data: a tree of mostly small files, some large, partly compressible ---
python3 - "$W/tree" "$TREE" <<'PY'
import os, random, sys
root, mb = sys.argv[1], int(sys.argv[2])
rnd = random.Random(42)
words = open("/usr/share/dict/words").read().split() if os.path.exists("/usr/share/dict/words") else \
    [("w%d" % i) for i in range(5000)]
target, total, n = mb << 20, 0, 0
for d in range(600):
    p = os.path.join(root, "d%03d/sub%d" % (d // 10, d % 10))
    os.makedirs(p, exist_ok=True)
    for f in range(10):
        r = rnd.random()
        size = rnd.randint(20 << 20, 40 << 20) if r < 0.001 else \
               rnd.randint(64 << 10, 1 << 20) if r < 0.05 else rnd.randint(100, 16 << 10)
        if rnd.random() < 0.5:   # text-like, compressible
            data = (" ".join(rnd.choice(words) for _ in range(size // 6 + 1))).encode()[:size]
        else:
            data = os.urandom(size)
        open(os.path.join(p, "f%02d.dat" % f), "wb").write(data)
        total += size; n += 1
print(f"tree: {n} files in 600 directories, {total / 1e6:.0f} MB")
PY
head -c $((BIG << 20)) /dev/urandom >"$W/big-random"
python3 - "$W/big-text" "$BIG" <<'PY'
import sys, random
rnd = random.Random(7)
words = [("".join(rnd.choice("etaoinshrdlucmfwyp") for _ in range(rnd.randint(2, 9)))) for _ in range(20000)]
out, size = open(sys.argv[1], "wb"), int(sys.argv[2]) << 20
chunk = (" ".join(rnd.choice(words) for _ in range(400000))).encode()
while size > 0:
    b = chunk[: min(size, len(chunk))]
    out.write(b); size -= len(b)
    chunk = chunk[1000:] + chunk[:1000]
PY

# --- mounting each kind ---
mount_kind() { # kind -> prints the directory to work in
	local k=$1
	case $k in
	native) mkdir -p "$W/native"; echo "$W/native" ;;
	passthrough)
		mkdir -p "$W/pt-src" "$W/mnt-pt"
		"$W/passthrough_ll" -o source="$W/pt-src" "$W/mnt-pt"
		echo "$W/mnt-pt" ;;
	zerofs)
		mkdir -p "$W/mnt-zf"
		[ -f "$W/zf-dev/superblock" ] || "$ZEROFS" mkfs "$W/zf-dev" >/dev/null
		"$ZEROFS" mount "$W/zf-dev" "$W/mnt-zf"
		echo "$W/mnt-zf" ;;
	esac
}
umount_kind() {
	case $1 in
	native) sync ;;
	passthrough) fusermount3 -u "$W/mnt-pt" ;;
	zerofs) "$ZEROFS" umount "$W/mnt-zf" ;;
	esac
}
zf_rss_peak=0
note_rss() {
	local pid
	pid=$(pgrep -f "zerofs mount $W/zf-dev" | head -n1 || true)
	[ -n "$pid" ] || return 0
	local hwm
	hwm=$(awk '/VmHWM/ {print $2}' /proc/"$pid"/status)
	[ "$hwm" -gt "$zf_rss_peak" ] && zf_rss_peak=$hwm
	return 0
}

declare -A R
run() { # workload kind command...
	local w=$1 k=$2 t
	shift 2
	t=$(now)
	"$@"
	R[$w,$k]=$(elapsed "$t")
	[ "$k" = zerofs ] && note_rss
	return 0
}

randread() { # file count seed: 4 KiB reads at random offsets
	python3 - "$@" <<'PY'
import os, random, sys
f, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fd = os.open(f, os.O_RDONLY)
size = os.fstat(fd).st_size
rnd = random.Random(seed)
for _ in range(n):
    os.pread(fd, 4096, rnd.randrange(0, size // 4096) * 4096)
os.close(fd)
PY
}
small_files() { # dir: create, stat and unlink 10,000 empty files
	python3 - "$1" <<'PY'
import os, sys
d = os.path.join(sys.argv[1], "small")
os.mkdir(d)
names = [os.path.join(d, "e%05d" % i) for i in range(10000)]
for p in names:
    os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))
for p in names:
    os.stat(p)
for p in names:
    os.unlink(p)
os.rmdir(d)
PY
}

for k in native passthrough zerofs; do
	m=$(mount_kind $k)
	run "cp -a tree (a)" $k cp -a "$W/tree" "$m/tree"
	run "write 1 GiB random (b)" $k dd if="$W/big-random" of="$m/big-random" bs=1M conv=fsync status=none
	run "write 1 GiB text (b)" $k dd if="$W/big-text" of="$m/big-text" bs=1M conv=fsync status=none
	run "create/stat/unlink 10k (d)" $k small_files "$m"
	umount_kind $k; drop_caches; m=$(mount_kind $k)
	run "read 1 GiB random (b)" $k dd if="$m/big-random" of=/dev/null bs=1M status=none
	run "read 1 GiB text (b)" $k dd if="$m/big-text" of=/dev/null bs=1M status=none
	umount_kind $k; drop_caches; m=$(mount_kind $k)
	run "find tree, cold (c)" $k find "$m/tree" -false
	run "ls -lR tree (c)" $k sh -c "ls -lR '$m/tree' >/dev/null"
	umount_kind $k; drop_caches; m=$(mount_kind $k)
	run "4k random reads x20000, cold (e)" $k randread "$m/big-random" 20000 1
	run "4k random reads x20000, warm (e)" $k randread "$m/big-random" 20000 1
	umount_kind $k
done

printf '\n%-36s %10s %10s %10s %9s %9s\n' workload native passthru zerofs "zf/nat" "zf/pt"
for w in "cp -a tree (a)" "write 1 GiB random (b)" "write 1 GiB text (b)" "read 1 GiB random (b)" \
	"read 1 GiB text (b)" "find tree, cold (c)" "ls -lR tree (c)" "create/stat/unlink 10k (d)" \
	"4k random reads x20000, cold (e)" "4k random reads x20000, warm (e)"; do
	n=${R[$w,native]} p=${R[$w,passthrough]} z=${R[$w,zerofs]}
	python3 -c "print(f'%-36s %9.2fs %9.2fs %9.2fs %8.2fx %8.2fx' % ('$w', $n, $p, $z, $z / max($n, 1e-3), $z / max($p, 1e-3)))"
done
echo
echo "zerofs daemon peak RSS: $((zf_rss_peak / 1024)) MB"
"$ZEROFS" stats "$W/zf-dev" | sed -n '2,8p'
