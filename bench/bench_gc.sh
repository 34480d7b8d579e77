#!/usr/bin/env bash
# bench/bench_gc.sh - zerofs gc: time and peak memory per GiB stored.
#
# Writes ZF_BENCH_GC_MB (1024) of mixed files (half random, half hex text)
# through a mount onto the embedded file:// bucket, deletes half of them and
# overwrites a quarter of the rest, unmounts, then runs 'zerofs gc' on the
# dev-dir (dry run first, then the real run) under a getrusage wrapper:
# wall time, CPU time and peak RSS, each per GiB stored before gc, with
# the dev-dir's and the bucket's segment bytes before and after.
#
#   bench/bench_gc.sh [ZEROFS_BINARY]     (root; run from the build dir)
#   env: ZF_BENCH_GC_MB (1024), ZF_BENCH_DIR (/var/tmp/zf-bench-gc)
set -euo pipefail
ZEROFS=$(realpath "${1:-./zerofs}")
MB=${ZF_BENCH_GC_MB:-1024}
W=${ZF_BENCH_DIR:-/var/tmp/zf-bench-gc}

cleanup() { mountpoint -q "$W/mnt" 2>/dev/null && fusermount3 -u "$W/mnt" || true; }
trap cleanup EXIT
rm -rf "$W" && mkdir -p "$W/mnt"
cd "$W"

# measure LABEL CMD...: wall, user+sys CPU and peak RSS of CMD (a child)
measure() {
	local label=$1
	shift
	python3 - "$label" "$@" <<'PY'
import resource, subprocess, sys, time
t = time.monotonic()
subprocess.run(sys.argv[2:], check=True, stdout=open(sys.argv[1] + ".out", "w"))
wall = time.monotonic() - t
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{sys.argv[1]} {wall:.3f} {ru.ru_utime + ru.ru_stime:.3f} {ru.ru_maxrss / 1024:.1f}")
PY
}
seg_bytes() { find "$1" -name '*.zseg' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }

"$ZEROFS" mkfs dev >/dev/null
"$ZEROFS" mount dev mnt
python3 - mnt "$MB" <<'PY'
import os, random, sys
d, mb = sys.argv[1], int(sys.argv[2])
rnd = random.Random(1)
total, i = 0, 0
while total < mb << 20:
    size = int(2 ** rnd.uniform(12, 25))
    data = os.urandom(size) if rnd.random() < 0.5 else os.urandom(size // 2 + 1).hex().encode()[:size]
    open(os.path.join(d, "f%05d" % i), "wb").write(data)
    total += size
    i += 1
names = sorted(os.listdir(d))
for n in names[1::2]:
    os.unlink(os.path.join(d, n))
for n in names[0::2][::4]:
    p = os.path.join(d, n)
    open(p, "wb").write(os.urandom(os.path.getsize(p)))
PY
"$ZEROFS" umount mnt
stored=$(seg_bytes dev/seg)
bucket=$(seg_bytes dev.bucket/seg)
read -r _ dwall dcpu drss < <(measure dry "$ZEROFS" gc --dry-run dev)
read -r _ wall cpu rss < <(measure gc "$ZEROFS" gc dev)
after=$(seg_bytes dev/seg)
bafter=$(seg_bytes dev.bucket/seg)
"$ZEROFS" mount dev mnt
live=$("$ZEROFS" stats --bytes mnt | sed -n 's/^stored live bytes: *\([0-9]*\).*/\1/p')
"$ZEROFS" umount mnt
cat gc.out
python3 - "$stored" "$bucket" "$after" "$bafter" "$live" "$dwall" "$dcpu" "$drss" "$wall" "$cpu" "$rss" <<'PY'
import sys
s, b, a, ba, live = (int(x) for x in sys.argv[1:6])
dw, dc, dr, w, c, r = (float(x) for x in sys.argv[6:12])
g = s / 2**30
print(f"stored before gc: {s / 2**20:.0f} MiB in the dev-dir, {b / 2**20:.0f} MiB in the bucket ({g:.2f} GiB)")
print(f"after gc:         {a / 2**20:.0f} MiB in the dev-dir, {ba / 2**20:.0f} MiB in the bucket; "
      f"live {live / 2**20:.0f} MiB (ratios {a / live:.3f}, {ba / live:.3f})")
print(f"gc --dry-run:     {dw:.2f} s wall, {dc:.2f} s CPU, peak RSS {dr:.1f} MiB "
      f"-> per GiB stored: {dw / g:.2f} s, {dr / g:.1f} MiB")
print(f"gc:               {w:.2f} s wall, {c:.2f} s CPU, peak RSS {r:.1f} MiB "
      f"-> per GiB stored: {w / g:.2f} s, {r / g:.1f} MiB")
PY
