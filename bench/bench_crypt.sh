#!/usr/bin/env bash
# bench/bench_crypt.sh - what encryption costs: the same writes and cold
# reads on a filesystem made with and without `mkfs --encrypt`, in one run,
# next to zstd and the disk on the same bytes. A benchmark: it prints
# figures and ratios, it asserts nothing about time.
#
#   bench/bench_crypt.sh [ZEROFS_BINARY]     (root: it mounts)
#   env: ZF_BENCH_CRYPT_MB (512)  MiB of real text (bench/data.sh) and as many
#                                 of random bytes
#        ZF_BENCH_DIR             scratch directory (default /var/tmp/zf-bench)
#        ZF_BENCH_RUNS (3)        runs of each; the median is printed
#
# The bucket is file:// on the same disk, so no network hides the cost:
#  write, durable   cp of the text and the random file into the mount, then
#                   `zerofs sync` (returns once the bucket holds everything:
#                   every segment sealed and, encrypted, sealed again for the
#                   bucket); MiB/s of file data
#  cold read        a fresh dev-dir restored from the bucket (metadata only),
#                   then cat of both files: every byte is a ranged read of the
#                   bucket, opened (encrypted: authenticated and decrypted),
#                   verified and decompressed; MiB/s
# References in the same run: `zstd -1 -T1` and `zstd -d` of the text (the
# work zerofs does on it either way), `cat` of the files from the disk
# after drop_caches (the physical limit of a cold read), and libsodium's
# XChaCha20-Poly1305 alone on the same bytes (`ENC` row).
set -euo pipefail
ZEROFS=$(realpath "${1:-./zerofs}")
MB=${ZF_BENCH_CRYPT_MB:-512}
RUNS=${ZF_BENCH_RUNS:-3}
D=${ZF_BENCH_DIR:-/var/tmp/zf-bench}/crypt
mkdir -p "$D"
. "$(dirname "$0")/data.sh"
TEXT=$D/text-${MB}M RAND=$D/random-${MB}M
[ -f "$TEXT" ] || build_text "$TEXT" "$MB" e
[ -f "$RAND" ] || head -c $((MB << 20)) /dev/urandom >"$RAND"
export ZEROFS_PASSPHRASE="bench passphrase"

now() { date +%s.%N; }
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
mibs() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b / 1048576 / s }'; }
BYTES=$(( $(stat -c %s "$TEXT") + $(stat -c %s "$RAND") ))

# one_run KIND (plain|encrypt): prints "write_s read_s"
one_run() {
	local k=$1 w0 w1 r0 r1 dev=$D/dev-$1 mnt=$D/mnt-$1
	rm -rf "$dev" "$dev.bucket" "$D/r-$k" "$mnt"
	mkdir -p "$mnt"
	"$ZEROFS" mkfs $([ "$k" = encrypt ] && echo --encrypt) "$dev" >/dev/null
	"$ZEROFS" mount "$dev" "$mnt"
	drop
	w0=$(now)
	cp "$TEXT" "$RAND" "$mnt/"
	"$ZEROFS" sync "$mnt" >/dev/null
	w1=$(now)
	"$ZEROFS" umount "$mnt"
	"$ZEROFS" mkfs --restore "file://$dev.bucket" "$D/r-$k" >/dev/null
	"$ZEROFS" mount "$D/r-$k" "$mnt"
	drop
	r0=$(now)
	cat "$mnt/${TEXT##*/}" "$mnt/${RAND##*/}" >/dev/null
	r1=$(now)
	cmp "$mnt/${TEXT##*/}" "$TEXT" && cmp "$mnt/${RAND##*/}" "$RAND"
	"$ZEROFS" umount "$mnt"
	rm -rf "$dev" "$dev.bucket" "$D/r-$k"
	echo "$(echo "$w1 - $w0" | bc -l) $(echo "$r1 - $r0" | bc -l)"
}

for i in $(seq 1 "$RUNS"); do
	for k in plain encrypt; do
		one_run $k >>"$D/$k.times"
	done
done 2>&1
for k in plain encrypt; do
	w=$(tail -n "$RUNS" "$D/$k.times" | cut -d" " -f1 | median)
	r=$(tail -n "$RUNS" "$D/$k.times" | cut -d" " -f2 | median)
	eval "W_$k=$w R_$k=$r"
done
rm -f "$D"/*.times

# references on the same bytes
drop
t0=$(now); zstd -q -1 -T1 -c "$TEXT" >"$D/text.zst"; t1=$(now); ZC=$(echo "$t1 - $t0" | bc -l)
drop
t0=$(now); zstd -q -d -c "$D/text.zst" >/dev/null; t1=$(now); ZD=$(echo "$t1 - $t0" | bc -l)
drop
t0=$(now); cat "$TEXT" "$RAND" >/dev/null; t1=$(now); DISK=$(echo "$t1 - $t0" | bc -l)
ENC=$(python3 - "$TEXT" "$RAND" <<'PY'
import ctypes, sys, time
s = ctypes.CDLL("libsodium.so.23")
s.sodium_init()
total, t = 0, 0.0
key, nonce = ctypes.create_string_buffer(32), ctypes.create_string_buffer(24)
for p in sys.argv[1:]:
    data = open(p, "rb").read()
    out = ctypes.create_string_buffer(len(data) + 16)
    t0 = time.perf_counter()
    for i in range(0, len(data), 4 << 20):
        piece = data[i:i + (4 << 20)]
        s.crypto_aead_xchacha20poly1305_ietf_encrypt(out, None, piece, ctypes.c_ulonglong(len(piece)),
                                                     None, ctypes.c_ulonglong(0), None, nonce, key)
    t += time.perf_counter() - t0
    total += len(data)
print("%.3f" % t)
PY
)
rm -f "$D/text.zst"

echo "bench_crypt: ${MB} MiB text + ${MB} MiB random, median of $RUNS, zerofs $("$ZEROFS" version)"
printf '%-34s %10s %10s %8s\n' "" plain encrypted ratio
printf '%-34s %10s %10s %8s\n' "write until durable, MiB/s" "$(mibs "$BYTES" "$W_plain")" \
	"$(mibs "$BYTES" "$W_encrypt")" "$(awk -v a="$W_plain" -v b="$W_encrypt" 'BEGIN { printf "%.2f", a / b }')"
printf '%-34s %10s %10s %8s\n' "cold read from the bucket, MiB/s" "$(mibs "$BYTES" "$R_plain")" \
	"$(mibs "$BYTES" "$R_encrypt")" "$(awk -v a="$R_plain" -v b="$R_encrypt" 'BEGIN { printf "%.2f", a / b }')"
echo "references on the same bytes (MiB/s of input):"
printf '  %-32s %10s\n' "zstd -1 -T1 of the text" "$(mibs "$(stat -c %s "$TEXT")" "$ZC")"
printf '  %-32s %10s\n' "zstd -d of the text" "$(mibs "$(stat -c %s "$TEXT")" "$ZD")"
printf '  %-32s %10s\n' "disk, cold cat of both files" "$(mibs "$BYTES" "$DISK")"
printf '  %-32s %10s\n' "XChaCha20-Poly1305, 4 MiB pieces" "$(mibs "$BYTES" "$ENC")"
