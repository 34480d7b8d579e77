#!/usr/bin/env bash
# A full dev-dir: a writer gets ENOSPC from write(2) itself (not from close,
# not on later reads), nothing acknowledged is lost, the mount keeps serving
# reads and metadata, and once space is freed (rm + gc) writes are accepted
# again without a remount.
#
# The dev-dir lives on a 64 MiB tmpfs, with no bucket (the default file://
# bucket would share the disk). Source data is random, so nothing dedups or
# compresses and the disk fills after about 55 MiB.
. "$(dirname "$0")/lib.sh"
require_fuse
command -v python3 >/dev/null || { echo "SKIP: python3 is needed"; exit 77; }
DISK=$T/disk D=$T/disk/dev M=$T/mnt
mkdir -p "$DISK" "$M"
mount -t tmpfs -o size=64m tmpfs "$DISK" || { echo "cannot mount a 64 MiB tmpfs"; exit 1; }
cleanup_hooks="fusermount3 -uz '$M' 2>/dev/null; umount -l '$DISK' 2>/dev/null; $cleanup_hooks"
head -c $((120 << 20)) /dev/urandom >"$T/src"

# write_until_full FILE MIB: write MIB MiB of src in write(2) calls of up to
# 1 MiB (a short write, as a disk that fills may give, is continued);
# prints the bytes acknowledged; fails unless a write (not fsync or close)
# got ENOSPC and fsync + close then succeed
write_until_full() {
	python3 - "$T/src" "$1" "$2" <<'PY'
import errno, os, sys
src, dst, mib = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = open(src, "rb").read(mib << 20)
fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
done, err = 0, None
while done < len(data):
    try:
        done += os.write(fd, data[done:done + (1 << 20)])
    except OSError as e:
        err = e
        break
os.fsync(fd)
os.close(fd)
print(done)
if err is None or err.errno != errno.ENOSPC:
    sys.exit("no ENOSPC from write(2): %r after %d bytes" % (err, done))
PY
}

test_expect_success 'mkfs without a bucket on a 64 MiB disk, mount' '
	$ZEROFS mkfs --remote none "$D" >/dev/null && zf_mount "$D" "$M"
'
test_expect_success 'a 120 MiB write gets ENOSPC from write(2); fsync and close succeed; every acknowledged byte reads back' '
	n=$(write_until_full "$M/big" 120) && echo "$n bytes acknowledged" &&
	test "$n" -gt $((16 << 20)) && test "$n" -lt $((64 << 20)) && echo "$n" >"$T/n" &&
	test "$(stat -c %s "$M/big")" -eq "$n" &&
	cmp -n "$n" "$T/src" "$M/big"
'
test_expect_success 'while full: another write gets ENOSPC from write(2) too, metadata operations and reads still work' '
	write_until_full "$M/more" 10 >"$T/more" && test "$(cat "$T/more")" -lt $((10 << 20)) &&
	mkdir "$M/d" && mv "$M/more" "$M/d/more" && ln -s big "$M/link" &&
	cmp -n "$(cat "$T/n")" "$T/src" "$M/link"
'
test_expect_success 'after a remount every acknowledged byte is there; fsck is clean' '
	zf_umount "$M" && zf_fsck_clean "$D" && zf_mount "$D" "$M" &&
	n=$(cat "$T/n") && test "$(stat -c %s "$M/big")" -eq "$n" &&
	cmp "$M/big" <(head -c "$n" "$T/src") && test -d "$M/d"
'
test_expect_success 'space freed (rm, zerofs gc): writes are accepted again without a remount' '
	rm "$M/big" && $ZEROFS gc "$M" >/dev/null &&
	python3 -c "
import os, sys
d = open(sys.argv[1], \"rb\").read(20 << 20)
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT, 0o644)
for i in range(20):
    os.write(fd, d[i << 20:(i + 1) << 20])
os.fsync(fd)
os.close(fd)
" "$T/src" "$M/again" &&
	cmp "$M/again" <(head -c $((20 << 20)) "$T/src")
'
test_expect_success 'unmount; fsck clean; the new file survives' '
	zf_umount "$M" && zf_fsck_clean "$D" && zf_mount "$D" "$M" &&
	cmp "$M/again" <(head -c $((20 << 20)) "$T/src") && zf_umount "$M"
'
test_done
