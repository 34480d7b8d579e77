#!/usr/bin/env bash
# bench/bench_fuse.sh - zerofs against a native directory and two passthrough
# FUSE filesystems, same workloads, same machine, same run: libfuse's
# passthrough_ll example (built here from Debian's libfuse3-dev) and its
# multi-threaded C++ passthrough_hp example (the reference for the ratios).
# Every figure is the median of ZF_BENCH_RUNS runs; the kinds are interleaved
# within each run so that drift hits them all alike.
#
#   bench/bench_fuse.sh [ZEROFS_BINARY]        (root; default ./zerofs, then
#                                                build/zerofs)
#   full bench:  ZF_PASSTHROUGH_HP=/var/tmp/pthp/passthrough_hp \
#                bench/bench_fuse.sh build/zerofs
#   quick trial: ZF_BENCH_BIG_MB=64 ZF_BENCH_RUNS=1 bench/bench_fuse.sh build/zerofs
#
# Workloads (sizes: ZF_BENCH_BIG_MB, 1024 by default):
#   write+fsync   dd bs=1M conv=fsync of a text file and of a random file
#   cold read     dd bs=1M to /dev/null after unmount, mount, drop_caches
#   cold 4k read  fio randread 4k psync direct=0 on a 64 MiB file after
#                 unmount, mount, drop_caches; mean completion latency (clat)
#   zerofs daemon CPU (utime+stime of the daemon across each dd, fsync
#   included) against zstd's own CPU on the same text, zstd -1 -T2 and -d wall
#   times and compression ratio; zerofs daemon peak RSS (VmHWM, every daemon of the run)
#   ZF_BENCH_TREE=1 adds the file-tree workloads (cp -a, find, ls -lR, 10k
#   empty files)
#
# The text is real text: /usr/share/doc (decompressed) and /usr/include,
# license files and duplicate files left out, concatenated again and again
# with each line prefixed by a per-copy marker ("c<N>: "), so that no copy
# dedups against another while it compresses like text. The data is built
# once into ZF_BENCH_DIR/data and kept for the next run.
#
# passthrough_hp is not in Debian's packages (only its .c examples are), and
# this repository carries no libfuse code nor a recipe to build it: point
# ZF_PASSTHROUGH_HP at a passthrough_hp binary built from libfuse's
# example/passthrough_hp.cc and example/cxxopts.hpp (source: the libfuse
# repository, https://github.com/libfuse/libfuse). The revision must build against the
# installed libfuse3: on Debian bookworm (libfuse3 3.14.0) that is tag
# fuse-3.14.1 (commit d8d1f84200ca); newer ones include headers that 3.14
# lacks. Without it the bench says so and passthrough_ll is the reference.
#
# env: ZF_BENCH_BIG_MB (1024)   size of the big text and random files
#      ZF_BENCH_RUNS (3)        runs per kind; the median is printed
#      ZF_BENCH_RR_MB (64)      size of the file the 4k random reads go to
#      ZF_BENCH_RR_IOS (4096)   4k reads per fio run (also capped at 10 s)
#      ZF_PASSTHROUGH_HP        passthrough_hp binary (see above)
#      ZF_BENCH_LOAD (0)        1: run everything again with a competing
#                               'zstd -19 -T1' loop pinned to one core;
#                               only: the loaded pass alone
#      ZF_BENCH_TREE (0)        1: add the tree workloads
#      ZF_BENCH_TREE_MB (300)   size of the generated tree (~6000 files)
#      ZF_BENCH_MKFS_OPTS ()    extra 'zerofs mkfs' options (e.g. --remote none)
#      ZF_BENCH_DIR             scratch directory (default /var/tmp/zf-bench)
#
# Ratios are zerofs / reference: for throughput (MiB/s) > 1 means zerofs is
# faster; for latency and time (us, s) > 1 means zerofs is slower.
set -euo pipefail
ZEROFS=${1:-./zerofs}
[ $# -gt 0 ] || [ -x "$ZEROFS" ] || ZEROFS=build/zerofs
ZEROFS=$(realpath "$ZEROFS")
BIG=${ZF_BENCH_BIG_MB:-1024}
RUNS=${ZF_BENCH_RUNS:-3}
RR_MB=${ZF_BENCH_RR_MB:-64}
RR_IOS=${ZF_BENCH_RR_IOS:-4096}
LOAD=${ZF_BENCH_LOAD:-0}
TREE=${ZF_BENCH_TREE:-0}
TREE_MB=${ZF_BENCH_TREE_MB:-300}
MKFS_OPTS=${ZF_BENCH_MKFS_OPTS:-}
W=${ZF_BENCH_DIR:-/var/tmp/zf-bench}
D=$W/data
EX=/usr/share/doc/libfuse3-dev/examples

die() { echo "bench_fuse: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (drop_caches, mounts)"
[ -e /dev/fuse ] || die "no /dev/fuse"
[ -x "$ZEROFS" ] || die "no zerofs binary '$ZEROFS'"
if ! command -v fio >/dev/null; then
	apt-get update -qq && apt-get install -y -qq fio >/dev/null || die "cannot install 'fio'"
fi
for t in zstd fusermount3 pkg-config gcc taskset python3; do
	command -v $t >/dev/null || die "missing '$t'"
done

load_pgid=
# From the mount table, not mountpoint(1): a mount whose daemon died answers
# ENOTCONN and would be left behind. A zerofs umount flushes, so it gets a
# minute before the mount is torn down without it.
cleanup() {
	local m
	[ -z "$load_pgid" ] || kill -- -"$load_pgid" 2>/dev/null || true
	for m in $(awk -v p="$W/mnt-" 'index($2, p) == 1 {print $2}' /proc/self/mounts); do
		if [ "$m" = "$W/mnt-zerofs" ]; then
			timeout 60 "${ZF:-$ZEROFS}" umount "$m" 2>/dev/null || true
		fi
		grep -q " $m " /proc/self/mounts || continue
		fusermount3 -u "$m" 2>/dev/null || umount -l "$m" || true
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Everything but the data cache is made anew. A copy of the binary, so that a
# rebuild during the bench does not mix two versions.
mkdir -p "$W" "$D"
cleanup # what a killed run left mounted
find "$W" -mindepth 1 -maxdepth 1 ! -name data -exec rm -rf {} +
mkdir -p "$W/bin"
cp "$ZEROFS" "$W/bin/zerofs"
ZF=$W/bin/zerofs
RES=$W/results.tsv
: >"$RES"

# --- the references ---
src=$EX/passthrough_ll.c
[ -f "$src" ] || { [ -f "$src.gz" ] && zcat "$src.gz" >"$W/passthrough_ll.c" && src=$W/passthrough_ll.c; }
[ -f "$src" ] || die "no '$EX/passthrough_ll.c' (apt-get install libfuse3-dev)"
# shellcheck disable=SC2046 # the flags are words
gcc -O2 -I"$EX" -o "$W/bin/passthrough_ll" "$src" $(pkg-config --cflags --libs fuse3)
KINDS="native pt_ll"
REF=pt_ll
if [ -n "${ZF_PASSTHROUGH_HP:-}" ] && [ -x "$ZF_PASSTHROUGH_HP" ]; then
	KINDS="$KINDS pt_hp"
	REF=pt_hp
else
	echo "bench_fuse: passthrough_hp skipped: ZF_PASSTHROUGH_HP is not an executable" \
		"(see the header of $0); passthrough_ll is the reference" >&2
fi
KINDS="$KINDS zerofs"

# --- data, built once ---
. "$(dirname "$0")/data.sh" # build_text
TEXT=$D/text-${BIG}M
RANDOM_F=$D/random-${BIG}M
RR_TEXT=$D/rr-text-${RR_MB}M
RR_RANDOM=$D/rr-random-${RR_MB}M
[ -f "$TEXT" ] || build_text "$TEXT" "$BIG" c
[ -f "$RR_TEXT" ] || build_text "$RR_TEXT" "$RR_MB" r
[ -f "$RANDOM_F" ] || { head -c $((BIG << 20)) /dev/urandom >"$RANDOM_F.tmp" && mv "$RANDOM_F.tmp" "$RANDOM_F"; }
[ -f "$RR_RANDOM" ] || { head -c $((RR_MB << 20)) /dev/urandom >"$RR_RANDOM.tmp" && mv "$RR_RANDOM.tmp" "$RR_RANDOM"; }

if [ "$TREE" = 1 ] && [ ! -d "$D/tree-${TREE_MB}M" ]; then
	python3 - "$D/tree-${TREE_MB}M.tmp" "$TREE_MB" <<'PY'
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
        size = min(size, max(100, (target - total) // 2))
        if rnd.random() < 0.5:   # text-like, compressible
            data = (" ".join(rnd.choice(words) for _ in range(size // 6 + 1))).encode()[:size]
        else:
            data = os.urandom(size)
        open(os.path.join(p, "f%02d.dat" % f), "wb").write(data)
        total += size; n += 1
print(f"tree: {n} files in 600 directories, {total / 1e6:.0f} MB", file=sys.stderr)
PY
	mv "$D/tree-${TREE_MB}M.tmp" "$D/tree-${TREE_MB}M"
fi

# --- helpers ---
now() { echo "$EPOCHREALTIME"; }
since() { python3 -c "print(f'{$EPOCHREALTIME - $1:.6f}')"; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
warm() { cat "$@" >/dev/null; } # the source of a write is read from memory
record() { printf '%s\t%s\t%s\t%s\n' "$@" >>"$RES"; } # pass row kind value

wait_mounted() { # mnt: the passthrough_hp daemon forks before it mounts
	for _ in $(seq 200); do
		mountpoint -q "$1" && return 0
		sleep 0.05
	done
	die "'$1' did not appear"
}
mnt_of() { echo "$W/mnt-$1"; }
mount_kind() { # kind; the data of the kind survives (see wipe_kind)
	local m
	m=$(mnt_of "$1")
	mkdir -p "$m"
	case $1 in
	native) ;;
	pt_ll)
		mkdir -p "$W/src-pt_ll"
		"$W/bin/passthrough_ll" -o source="$W/src-pt_ll" "$m"
		wait_mounted "$m" ;;
	pt_hp)
		mkdir -p "$W/src-pt_hp"
		"$ZF_PASSTHROUGH_HP" "$W/src-pt_hp" "$m"
		wait_mounted "$m" ;;
	zerofs)
		[ -f "$W/zf-dev/superblock" ] || "$ZF" mkfs $MKFS_OPTS "$W/zf-dev" >/dev/null
		"$ZF" mount "$W/zf-dev" "$m" ;;
	esac
}
umount_kind() {
	case $1 in
	native) sync ;;
	pt_ll | pt_hp) fusermount3 -u "$(mnt_of "$1")" ;;
	zerofs) zf_note_rss; "$ZF" umount "$(mnt_of zerofs)" ;;
	esac
}
wipe_kind() { # a fresh, empty filesystem for the next run (zerofs would dedup)
	case $1 in
	native) rm -rf "$(mnt_of native)" ;;
	pt_ll | pt_hp) rm -rf "$W/src-$1" ;;
	zerofs) rm -rf "$W/zf-dev" "$W/zf-dev.bucket" ;;
	esac
}
remount_cold() { umount_kind "$1" && mount_kind "$1" && drop_caches; }

zf_pid() {
	local p
	p=$(pgrep -f -- "zerofs mount $W/zf-dev $(mnt_of zerofs)\$") || die "no zerofs daemon"
	[ "$(echo "$p" | wc -w)" = 1 ] || die "more than one zerofs daemon: $p"
	echo "$p"
}
zf_cpu() { # pid -> utime+stime in seconds
	python3 -c "import os; f=open('/proc/$1/stat').read().rsplit(')', 1)[1].split(); \
print((int(f[11]) + int(f[12])) / os.sysconf('SC_CLK_TCK'))"
}
zf_rss_peak=0 # KiB, across every daemon of the bench
zf_note_rss() {
	local pid hwm
	pid=$(zf_pid)
	hwm=$(awk '/^VmHWM/ {print $2}' /proc/"$pid"/status)
	[ "$hwm" -le "$zf_rss_peak" ] || zf_rss_peak=$hwm
}

mibps() { python3 -c "print(f'{$1 / 1048576 / $2:.3f}')"; } # bytes secs
timed_dd() { # pass row kind bytes dd-args...: records MiB/s
	local p=$1 row=$2 k=$3 bytes=$4 t s
	shift 4
	t=$(now)
	dd bs=1M status=none "$@"
	s=$(since "$t")
	record "$p" "$row" "$k" "$(mibps "$bytes" "$s")"
}
timed() { # pass row kind command...: records seconds
	local p=$1 row=$2 k=$3 t
	shift 3
	t=$(now)
	"$@"
	record "$p" "$row" "$k" "$(since "$t")"
}
fio_clat() { # file -> mean completion latency in us of cold 4k random reads
	fio --name=rr --filename="$1" --readonly --rw=randread --bs=4k --ioengine=psync \
		--direct=0 --size="${RR_MB}m" --number_ios="$RR_IOS" --runtime=10 \
		--randrepeat=1 --invalidate=1 --output-format=json |
		python3 -c "import json, sys; j = json.load(sys.stdin)['jobs'][0]['read']; \
print(f\"{j['clat_ns']['mean'] / 1000:.1f}\")"
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
zstd_ref() { # pass: zstd on the same text, CPU (user+sys) and wall
	local p=$1
	python3 - "$p" "$TEXT" "$D/text.zst" "$RES" <<'PY'
import os, resource, subprocess, sys, time
p, text, zst, res = sys.argv[1:]
def run(args, out):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.time()
    with open(out, "wb") as o:
        subprocess.run(args, stdout=o, check=True)
    wall = time.time() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
rows = []
w, c = run(["zstd", "-q", "-1", "-T1", "-c", text], zst)
rows += [("zstd -1 -T1 CPU s", c), ("zstd -1 -T1 wall s", w),
         ("zstd -1 ratio", os.path.getsize(text) / os.path.getsize(zst))]
w, c = run(["zstd", "-q", "-3", "-T1", "-c", text], "/dev/null")
rows += [("zstd -3 -T1 CPU s", c)]
w, c = run(["zstd", "-q", "-1", "-T2", "-c", text], "/dev/null")
rows += [("zstd -1 -T2 wall s", w)]
w, c = run(["zstd", "-q", "-d", "-c", zst], "/dev/null")
rows += [("zstd -d wall s", w)]
with open(res, "a") as o:
    for name, v in rows:
        o.write(f"{p}\t{name}\tref\t{v:.4f}\n")
PY
}

one_run() { # pass kind
	local p=$1 k=$2 m pid c0 tb rb
	tb=$(stat -c %s "$TEXT") rb=$(stat -c %s "$RANDOM_F")
	mount_kind "$k"
	m=$(mnt_of "$k")
	warm "$TEXT" "$RANDOM_F" "$RR_TEXT" "$RR_RANDOM"
	[ "$k" != zerofs ] || { pid=$(zf_pid); c0=$(zf_cpu "$pid"); }
	timed_dd "$p" "write+fsync text" "$k" "$tb" if="$TEXT" of="$m/text" conv=fsync
	[ "$k" != zerofs ] || { record "$p" "zerofs CPU text write" ref \
		"$(python3 -c "print($(zf_cpu "$pid") - $c0)")"; c0=$(zf_cpu "$pid"); }
	timed_dd "$p" "write+fsync random" "$k" "$rb" if="$RANDOM_F" of="$m/random" conv=fsync
	[ "$k" != zerofs ] || record "$p" "zerofs CPU random write" ref \
		"$(python3 -c "print($(zf_cpu "$pid") - $c0)")"
	cp "$RR_TEXT" "$m/rr-text"
	cp "$RR_RANDOM" "$m/rr-random"
	if [ "$TREE" = 1 ]; then
		timed "$p" "cp -a tree (s)" "$k" cp -a "$D/tree-${TREE_MB}M" "$m/tree"
		timed "$p" "create/stat/unlink 10k (s)" "$k" small_files "$m"
	fi
	sync

	remount_cold "$k"
	timed_dd "$p" "cold read text" "$k" "$tb" if="$m/text" of=/dev/null
	timed_dd "$p" "cold read random" "$k" "$rb" if="$m/random" of=/dev/null

	remount_cold "$k"
	record "$p" "cold 4k randread text" "$k" "$(fio_clat "$m/rr-text")"
	remount_cold "$k"
	record "$p" "cold 4k randread random" "$k" "$(fio_clat "$m/rr-random")"

	if [ "$TREE" = 1 ]; then
		remount_cold "$k"
		timed "$p" "find tree, cold (s)" "$k" find "$m/tree" -false
		timed "$p" "ls -lR tree (s)" "$k" sh -c "ls -lR '$m/tree' >/dev/null"
	fi
	umount_kind "$k"
	[ "$k" != zerofs ] || "$ZF" stats "$W/zf-dev" >"$W/zerofs-stats.txt" 2>&1 || true
	wipe_kind "$k"
}

bench_pass() { # pass
	local r k
	for r in $(seq "$RUNS"); do
		for k in $KINDS; do
			echo "bench_fuse: $1 run $r/$RUNS: $k" >&2
			one_run "$1" "$k"
		done
		zstd_ref "$1"
	done
}

start_load() { # a zstd -19 -T1 loop on the last core, in its own process group
	local cpu=$(($(nproc) - 1))
	setsid taskset -c "$cpu" bash -c \
		'while :; do zstd -q -19 -T1 -c "$1" >/dev/null; done' load "$TEXT" &
	load_pgid=$!
}
stop_load() {
	kill -- -"$load_pgid" 2>/dev/null || true
	wait "$load_pgid" 2>/dev/null || true
	load_pgid=
}

echo "bench_fuse: $("$ZF" --version 2>&1 | head -n1); $(nproc) cpus; big files $BIG MiB;" \
	"$RUNS run(s); kinds: $KINDS" >&2
PASSES=quiet
[ "$LOAD" = 1 ] && PASSES="quiet loaded"
[ "$LOAD" = only ] && PASSES=loaded
for p in $PASSES; do
	[ "$p" = loaded ] && start_load
	bench_pass "$p"
	[ "$p" = loaded ] && stop_load
done

# --- report ---
python3 - "$RES" "$REF" "$BIG" "$RR_MB" "$zf_rss_peak" "$KINDS" <<'PY'
import statistics, sys
from collections import defaultdict
res, ref, big, rr_mb, rss_kib, kinds = sys.argv[1:]
kinds = kinds.split()
v = defaultdict(list)
passes = []
for line in open(res):
    p, row, k, x = line.rstrip("\n").split("\t")
    v[p, row, k].append(float(x))
    if p not in passes:
        passes.append(p)
med = lambda p, row, k: statistics.median(v[p, row, k]) if v[p, row, k] else None
names = {"native": "native", "pt_ll": "passthrough_ll", "pt_hp": "passthrough_hp", "zerofs": "zerofs"}
refname = names[ref]
rows = [("write+fsync text", "MiB/s"), ("write+fsync random", "MiB/s"),
        ("cold read text", "MiB/s"), ("cold read random", "MiB/s"),
        ("cold 4k randread text", "us"), ("cold 4k randread random", "us"),
        ("cp -a tree (s)", "s"), ("create/stat/unlink 10k (s)", "s"),
        ("find tree, cold (s)", "s"), ("ls -lR tree (s)", "s")]
cols = ["native", "pt_ll", "pt_hp", "zerofs"]
fmt = lambda x: "-" if x is None else f"{x:.1f}" if x >= 10 else f"{x:.2f}"
for p in passes:
    runs = max(len(x) for (pp, _, _), x in v.items() if pp == p)
    print(f"\n== {p}: {big} MiB files, 4k reads on {rr_mb} MiB, median of {runs} run(s) ==")
    w = 30
    print(f"{'workload':<{w}} {'unit':>5} " + " ".join(f"{names[c]:>14}" for c in cols)
          + f" {'zerofs/' + refname:>22}")
    for row, unit in rows:
        if not any(v[p, row, c] for c in cols):
            continue
        z, r = med(p, row, "zerofs"), med(p, row, ref)
        ratio = "-" if z is None or not r else f"{z / r:.2f}x"
        label = row.replace(" (s)", "")
        if row.startswith("cold 4k"):
            label += " (clat)"
        print(f"{label:<{w}} {unit:>5} " + " ".join(f"{fmt(med(p, row, c)):>14}" for c in cols)
              + f" {ratio:>22}")
    print("(MiB/s: ratio > 1 = zerofs faster; us, s: ratio > 1 = zerofs slower)")
    g = lambda row: med(p, row, "ref")
    zt, zr = g("zerofs CPU text write"), g("zerofs CPU random write")
    z1, z3 = g("zstd -1 -T1 CPU s"), g("zstd -3 -T1 CPU s")
    gib = int(big) / 1024
    if zt is not None and z1:
        print(f"zerofs daemon CPU, text write:   {zt:7.2f} s ({zt / gib:.2f} s/GiB)"
              f" = {zt / z1:.2f}x zstd -1 -T1 CPU ({z1:.2f} s), {zt / z3:.2f}x zstd -3 -T1 ({z3:.2f} s)")
    if zr is not None:
        print(f"zerofs daemon CPU, random write: {zr:7.2f} s ({zr / gib:.2f} s/GiB)")
    if z1:
        print(f"zstd on the text: -1 -T1 {g('zstd -1 -T1 wall s'):.2f} s wall, ratio {g('zstd -1 ratio'):.2f};"
              f" -1 -T2 {g('zstd -1 -T2 wall s'):.2f} s wall; -d {g('zstd -d wall s'):.2f} s wall")
    n = med(p, "write+fsync text", "native")
    if n:
        print(f"disk limit: dd text to the native disk, conv=fsync: {n:.1f} MiB/s")
print(f"\nzerofs daemon peak RSS (VmHWM, whole bench): {int(rss_kib) / 1024:.1f} MiB")
PY
echo "zerofs stats of the last zerofs run:"
sed -n '1,8p' "$W/zerofs-stats.txt"
echo "raw results: $RES"
