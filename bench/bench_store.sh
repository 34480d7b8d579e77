#!/usr/bin/env bash
# bench/bench_store.sh - bytes stored: zerofs's bucket next to a borg
# repository of the same mixed corpus, in one run. A benchmark: it prints
# figures, it asserts nothing.
#
#   bench/bench_store.sh [ZEROFS_BINARY]     (root: it mounts; borgbackup is
#                                            installed with apt-get if missing)
#   env: ZF_BENCH_DIR   scratch directory (default /var/tmp/zf-bench)
#
# The corpus (built once, from this machine's files; about 450 MB):
#   src/v1..v3      three versions of a source tree (/usr/include): v2 edits
#                   one file in 20 (a line added in the middle), v3 deletes
#                   one in 50 of v2 and adds a new file per directory
#   img/a, img/b    VM-like images (96 MiB): 4 KiB blocks of zeros, text and
#                   random bytes; b is a with one block in 100 rewritten
#   shift/*         64 MiB of text, then the same with 1 byte and with 5000
#                   bytes inserted at its start and in its middle
#   text/           96 MiB of real text (bench/data.sh, no dedup inside)
#   small/          40,000 files of 40 bytes to 8 KiB cut from real text
# zerofs: mkfs (defaults: zstd 3, meta-zstd), cp -a of the corpus into the
# mount, zerofs sync, unmount; the bucket's bytes (every object: segments,
# checkpoint, log pieces, head, superblock), and again after zerofs gc.
# borg: borg create --chunker-params 14,18,16,4095 --compression zstd,3
# into an unencrypted repository; the repository's bytes (du -sb).
# Also printed: the corpus's bytes and zstd -3 of a tar of it (no dedup).
set -euo pipefail
ZEROFS=$(realpath "${1:-./zerofs}")
D=${ZF_BENCH_DIR:-/var/tmp/zf-bench}/store
C=$D/corpus
mkdir -p "$D"
command -v borg >/dev/null || { apt-get update -qq && apt-get install -y -qq borgbackup >/dev/null; }
. "$(dirname "$0")/data.sh"

build_corpus() {
	rm -rf "$C.tmp" && mkdir -p "$C.tmp"/{src,img,shift,text,small}
	cp -a /usr/include "$C.tmp/src/v1"
	cp -a "$C.tmp/src/v1" "$C.tmp/src/v2"
	python3 - "$C.tmp" <<'PY'
import os, random, sys
c = sys.argv[1]
rnd = random.Random(7)
files = []
for d, _, fs in os.walk(os.path.join(c, "src/v2")):
    for f in sorted(fs):
        p = os.path.join(d, f)
        if os.path.isfile(p) and not os.path.islink(p):
            files.append(p)
files.sort()
for p in files[::20]:
    b = open(p, "rb").read()
    m = len(b) // 2
    open(p, "wb").write(b[:m] + b"/* edited in v2 */\n" + b[m:])
os.system("cp -a '%s/src/v2' '%s/src/v3'" % (c, c))
v3 = [p.replace("/src/v2/", "/src/v3/") for p in files]
for p in v3[::50]:
    os.unlink(p)
for d, _, _ in os.walk(os.path.join(c, "src/v3")):
    open(os.path.join(d, "added-in-v3.h"), "w").write("#define V3 %d\n" % rnd.randrange(1 << 30) * 40)
# images: 4 KiB blocks of zeros, text, random
text = open("/usr/share/common-licenses/GPL-3", "rb").read()
blocks = []
for i in range(96 * 256):
    k = rnd.random()
    if k < 0.45:
        blocks.append(b"\0" * 4096)
    elif k < 0.8:
        o = rnd.randrange(len(text) - 4096)
        blocks.append(text[o:o + 4096])
    else:
        blocks.append(rnd.randbytes(4096))
open(os.path.join(c, "img/a"), "wb").write(b"".join(blocks))
for i in rnd.sample(range(len(blocks)), len(blocks) // 100):
    blocks[i] = rnd.randbytes(4096)
open(os.path.join(c, "img/b"), "wb").write(b"".join(blocks))
PY
	build_text "$C.tmp/shift/orig" 64 s 2>/dev/null
	python3 - "$C.tmp" <<'PY'
import os, sys
c = sys.argv[1]
b = open(os.path.join(c, "shift/orig"), "rb").read()
m = len(b) // 2
open(os.path.join(c, "shift/front1"), "wb").write(b"x" + b)
open(os.path.join(c, "shift/mid5000"), "wb").write(b[:m] + os.urandom(5000) + b[m:])
PY
	build_text "$C.tmp/text/doc" 96 t 2>/dev/null
	build_text "$D/small.src" 160 m 2>/dev/null
	python3 - "$C.tmp" "$D/small.src" <<'PY'
import os, random, sys
c, src = sys.argv[1], sys.argv[2]
rnd = random.Random(11)
b = open(src, "rb").read()
o = 0
for i in range(40000):
    d = os.path.join(c, "small", "d%03d" % (i // 400))
    os.makedirs(d, exist_ok=True)
    n = rnd.randrange(40, 8192)
    open(os.path.join(d, "f%05d" % i), "wb").write(b[o:o + n])
    o += n
PY
	rm -f "$D/small.src"
	mv "$C.tmp" "$C"
}
[ -d "$C" ] || build_corpus

CORPUS=$(du -sb --apparent-size "$C" | cut -f1)
NFILES=$(find "$C" -type f | wc -l)
TARZ=$(tar -C "$C" -cf - . | zstd -q -3 -T0 | wc -c)

# zerofs
rm -rf "$D/dev" "$D/dev.bucket" "$D/mnt"
mkdir -p "$D/mnt"
"$ZEROFS" mkfs "$D/dev" >/dev/null
"$ZEROFS" mount "$D/dev" "$D/mnt"
t0=$(date +%s.%N)
cp -a "$C/." "$D/mnt/"
"$ZEROFS" sync "$D/mnt" >/dev/null
t1=$(date +%s.%N)
"$ZEROFS" umount "$D/mnt"
ZB=$(du -sb "$D/dev.bucket" | cut -f1)
ZMETA=$(du -sb "$D/dev.bucket/meta" | cut -f1)
"$ZEROFS" gc "$D/dev" >/dev/null
ZGC=$(du -sb "$D/dev.bucket" | cut -f1)

# borg
rm -rf "$D/borg"
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
borg init -e none "$D/borg" >/dev/null
t2=$(date +%s.%N)
(cd "$C" && borg create --chunker-params 14,18,16,4095 --compression zstd,3 "$D/borg::a" .)
t3=$(date +%s.%N)
BB=$(du -sb "$D/borg" | cut -f1)

mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
echo "bench_store: corpus $(mb "$CORPUS") in $NFILES files; zerofs $("$ZEROFS" version)"
printf '  %-44s %12s\n' "tar | zstd -3 (no dedup)" "$(mb "$TARZ")"
printf '  %-44s %12s  (%.0f s)\n' "borg (chunks 16 KiB..256 KiB, avg 64, zstd 3)" "$(mb "$BB")" \
	"$(echo "$t3 - $t2" | bc -l)"
printf '  %-44s %12s  (%.0f s; metadata %s)\n' "zerofs bucket after cp + sync" "$(mb "$ZB")" \
	"$(echo "$t1 - $t0" | bc -l)" "$(mb "$ZMETA")"
printf '  %-44s %12s\n' "zerofs bucket after zerofs gc" "$(mb "$ZGC")"
awk -v z="$ZB" -v g="$ZGC" -v b="$BB" \
	'BEGIN { printf "  zerofs / borg: %.3f (after gc %.3f)\n", z / b, g / b }'
rm -rf "$D/dev" "$D/dev.bucket" "$D/borg"
