#!/usr/bin/env bash
# the recovery point: how much of what was written the bucket alone can give
# back after a kill -9 of the daemon (restore into a fresh dev-dir), for a
# steady writer and for the last write of a burst; and a trickle of small
# files leaves no more bucket objects than its data needs (small segments
# merged, tier/compact.c). The figures are printed; the assertions have
# margin for a loaded machine (bench/bench_s3.sh measures them precisely).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/remote-lib.sh"
require_fuse
require_cmds "Debian: python3" python3
D=$T/dev M=$T/mnt B=$T/dev.bucket
URL=file://$B
kill_daemons_at_exit
# seconds the recovery point may be behind in these assertions (targets: 2 s
# behind a steady writer; commit (5 s) + 1 s for the last write of a burst)
STEADY_MAX=4 BURST_MAX=11

# the writer: 256 KiB blocks at RATE MB/s into FILE, fdatasync after every
# 4th; each block is its offset repeated, so a prefix can be checked; every
# fdatasync's time (CLOCK_MONOTONIC) and end offset go to LOG. Runs until
# killed or the file system fails it.
cat >"$T/writer.py" <<'EOF'
import os, sys, time
path, rate, log = sys.argv[1], float(sys.argv[2]) * 1e6, open(sys.argv[3], "w", buffering=1)
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
blk, off, t0 = 256 * 1024, 0, time.monotonic()
try:
    while True:
        os.write(fd, (b"%016x" % off) * (blk // 16))
        off += blk
        if off % (4 * blk) == 0:
            os.fdatasync(fd)
            log.write("%f %d\n" % (time.monotonic(), off))
        pause = t0 + off / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
except OSError:
    pass
EOF
# the restored file FILE: its longest prefix of blocks written as the writer
# writes them, in bytes
cat >"$T/prefix.py" <<'EOF'
import sys
blk, off = 256 * 1024, 0
with open(sys.argv[1], "rb") as f:
    while True:
        b = f.read(blk)
        if len(b) < blk or b != (b"%016x" % off) * (blk // 16):
            break
        off += blk
print(off)
EOF
# seconds between the kill (monotonic time in KILLED) and the last fdatasync
# whose bytes the restored copy holds
lost_s() {
	python3 - "$1" "$2" "$3" <<'EOF'
import sys
killed, held = float(open(sys.argv[1]).read()), int(sys.argv[3])
last = 0.0
for line in open(sys.argv[2]):
    t, off = line.split()
    if int(off) <= held:
        last = float(t)
print("%.2f" % (killed - last))
EOF
}
mono() { python3 -c 'import time; print(time.monotonic())'; }

test_expect_success 'a trickle of small files: small segments are merged, objects follow the data' '
	$ZEROFS mkfs "$D" >/dev/null &&
	zf_mount_fg "$D" "$M" "$T/d1.log" -o merge_after=4 &&
	mkdir "$M/trickle" && for i in $(seq 1 40); do
		{ echo "file $i"; head -c 3000 /usr/share/common-licenses/GPL-3; } >"$M/trickle/f$i" &&
			sleep 0.25
	done &&
	$ZEROFS sync "$M" && last=$(ls "$D/seg" | sort | tail -1) && last=$((16#${last%.zseg})) &&
	for i in $(seq 1 900); do
		n=$(ls "$B/seg" | wc -l) && [ "$n" -le $((last / 2 + 1)) ] && break
		sleep 0.1
	done &&
	echo "# $last segments sealed by the trickle, $n segment objects and" \
		"$(ls "$B/meta" | wc -l) metadata objects in the bucket" >>"$T/figures" &&
	test "$n" -le $((last / 2 + 1)) && test "$n" -lt "$last" && test "$last" -ge 5 &&
	for i in $(seq 1 40); do
		{ echo "file $i"; head -c 3000 /usr/share/common-licenses/GPL-3; } |
			cmp - "$M/trickle/f$i" || exit 1
	done &&
	zf_umount "$M" && zf_wait_gone "$(cat "$T/fg.pid")" && zf_fsck_clean "$D"
'
test_expect_success "a steady writer at 8 MB/s, kill -9: the bucket holds all but <= $STEADY_MAX s" '
	zf_mount_fg "$D" "$M" "$T/d2.log" &&
	{ python3 "$T/writer.py" "$M/steady" 8 "$T/fsyncs" & echo $! >"$T/writer.pid"; } &&
	for i in $(seq 1 600); do [ "$(cat "$T/fsyncs" 2>/dev/null | wc -l)" -ge 60 ] && break; sleep 0.1; done &&
	mono >"$T/killed" && kill -9 "$(cat "$T/fg.pid")" && zf_wait_gone "$(cat "$T/fg.pid")" &&
	fusermount3 -uz "$M"; kill "$(cat "$T/writer.pid")" 2>/dev/null; wait
	rm -rf "$T/dev2" && $ZEROFS mkfs --restore "$URL" "$T/dev2" >/dev/null &&
	$ZEROFS lease-break "$URL" && zf_mount "$T/dev2" "$T/mnt2" && held=$(python3 "$T/prefix.py" "$T/mnt2/steady") &&
	lost=$(lost_s "$T/killed" "$T/fsyncs" "$held") &&
	echo "# steady writer: $(tail -1 "$T/fsyncs" | cut -d" " -f2) bytes fsynced, $held in" \
		"the bucket, lost ${lost} s" >>"$T/figures" &&
	python3 -c "import sys; sys.exit(0 if float(\"$lost\") <= $STEADY_MAX else 1)" &&
	zf_umount "$T/mnt2"
'
test_expect_success "the last write of a burst reaches the bucket within commit + 1 s (<= $BURST_MAX s)" '
	rm -rf "$T/dev2" && zf_mount_fg "$D" "$M" "$T/d3.log" &&
	cat /usr/share/doc/*/copyright /usr/include/*.h 2>/dev/null | head -c 5000000 >"$T/burst" &&
	t0=$(mono) && cp "$T/burst" "$M/burst" &&
	for i in $(seq 1 $((BURST_MAX * 10))); do
		[ "$(zf_stat "$M" "pending upload")" = 0 ] && break
		sleep 0.1
	done && t1=$(mono) && kill -9 "$(cat "$T/fg.pid")" && zf_wait_gone "$(cat "$T/fg.pid")" &&
	fusermount3 -uz "$M"
	took=$(python3 -c "print(\"%.1f\" % ($t1 - $t0))") &&
	echo "# the burst was in the bucket after $took s" >>"$T/figures" &&
	$ZEROFS mkfs --restore "$URL" "$T/dev2" >/dev/null && $ZEROFS lease-break "$URL" &&
	zf_mount "$T/dev2" "$T/mnt2" && cmp "$T/burst" "$T/mnt2/burst" &&
	python3 -c "import sys; sys.exit(0 if $took <= $BURST_MAX else 1)" &&
	zf_umount "$T/mnt2" && zf_fsck_clean "$T/dev2"
'
cat "$T/figures" 2>/dev/null
test_done
