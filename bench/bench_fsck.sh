#!/usr/bin/env bash
# bench/bench_fsck.sh - zerofs fsck: time and peak memory per GiB stored
#
#   bench/bench_fsck.sh [MiB=1024] [zerofs binary=build/zerofs]
#
# Builds a filesystem of MiB of mixed data through a real mount (needs root
# and /dev/fuse): half random (incompressible), a quarter base64 text
# (compressible), a quarter copies of random files (deduplicated), in files
# of 16 MiB, plus 2000 small files. Unmounts (everything is in the default
# file:// bucket then), and measures
#   1. fsck                      (metadata, segment headers and sizes)
#   2. fsck --verify-data        (every super-chunk read locally, every chunk re-hashed)
#   3. the same two with every local segment removed (evicted: sizes from
#      the bucket's listing, data by ranged GETs from file://)
# Wall time, CPU time and peak RSS (getrusage of the child), and per GiB
# stored (compressed segment bytes). Prints a markdown table.
set -euo pipefail
mib=${1:-1024}
Z=$(realpath "${2:-build/zerofs}")
T=$(mktemp -d /tmp/zf-bench-fsck.XXXXXX)
trap 'fusermount3 -uz "$T/mnt" 2>/dev/null; rm -rf "$T"' EXIT
D=$T/dev M=$T/mnt

"$Z" mkfs "$D" >/dev/null
mkdir "$M"
"$Z" mount "$D" "$M"
n=$((mib / 16))
for i in $(seq 1 $((n / 2))); do head -c 16M /dev/urandom >"$M/rand.$i"; done
for i in $(seq 1 $((n / 4))); do (base64 -w 100 /dev/urandom || true) | head -c 16M >"$M/text.$i"; done
for i in $(seq 1 $((n / 4))); do cp "$M/rand.$(( (i - 1) % (n / 2) + 1 ))" "$M/copy.$i"; done
mkdir "$M/small" && for i in $(seq 1 2000); do echo "small file $i" >"$M/small/f$i"; done
"$Z" umount "$M"

stored=$(find "$D/seg" -name '*.zseg' -printf '%s\n' | awk '{ s += $1 } END { print s }')
logical=$((mib << 20))

# run LABEL cmd...: one row of the table (exit 0 required)
run() {
	local label=$1
	shift
	python3 - "$label" "$stored" "$@" <<'PY'
import resource, subprocess, sys, time
label, stored, cmd = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
t = time.monotonic()
p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
wall = time.monotonic() - t
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
if p.returncode != 0:
    sys.exit("%s: exit %d" % (" ".join(cmd), p.returncode))
gib = stored / 2**30
print("| %s | %.2f | %.2f | %.2f | %.1f | %.1f |" % (label, wall, ru.ru_utime + ru.ru_stime,
      wall / gib, ru.ru_maxrss / 1024, ru.ru_maxrss / 1024 / gib))
PY
}

echo "logical $((logical >> 20)) MiB, stored $((stored >> 20)) MiB in $(ls "$D/seg" | wc -l) segments," \
	"$("$Z" stats "$D" | sed -n 's/^chunks: *//p' | head -n 1) chunks"
echo
echo "| fsck | wall s | CPU s | wall s per GiB stored | peak RSS MiB | RSS MiB per GiB stored |"
echo "|---|---:|---:|---:|---:|---:|"
run "plain, local" "$Z" fsck "$D"
run "--verify-data, local" "$Z" fsck --verify-data "$D"
rm -f "$D"/seg/*.zseg
rm -rf "$D/cache"
run "plain, evicted (bucket listing)" "$Z" fsck "$D"
run "--verify-data, evicted (ranged GETs, file://)" "$Z" fsck --verify-data "$D"
