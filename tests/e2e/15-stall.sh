#!/usr/bin/env bash
# A slow object store must slow down only the readers of the slow object.
#
# A 32 MiB file A goes to the bucket (file:// through net/fault.c) and its
# segments leave the dev-dir; small files (small/b*, st/s*) stay local. Then
# one of A's segment objects stalls (stall_file naming it, stall_ms=20000):
#   part 1: a read of A in that segment waits for the stall, while stat,
#           readdir and reads of the small files answer at once;
#   part 2: a 4 KiB overwrite in the middle of the evicted part of A (its
#           re-chunking needs the stalled bytes) waits for the stall, while
#           stat, readdir and reads of other small files answer at once;
# then the stall ends, both complete, A holds the expected bytes, fsck.
#
# Every probe (see probe() below) goes to the daemon. Each must answer within
# PROBE_LIMIT_MS: ten times the issue's 100 ms, so that a loaded machine does
# not fail it, and still 20 times shorter than the stall, so that a probe
# frozen behind the stalled get cannot pass. Every probe's time is printed.
#
# Run (as root): cd build && ../tests/e2e/15-stall.sh, or once it is in
# E2E_TESTS: make -C build check TESTS=tests/e2e/15-stall.sh
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/remote-lib.sh"
require_fuse
command -v python3 >/dev/null || { echo "SKIP: python3 is needed"; exit 77; }
D=$T/dev M=$T/mnt B=$T/dev.bucket
STALL=$T/stall
PROBE_LIMIT_MS=1000
STALL_MS=20000
cleanup_hooks="rm -f '$STALL'; kill \$(cat '$T'/*.pid 2>/dev/null) 2>/dev/null;
	kill -9 \$(pgrep -f -- 'zerofs mount .*$T/') 2>/dev/null; $cleanup_hooks"

# probe FIRST N: for i in FIRST .. FIRST+N-1: stat of st/s<i> (a lookup: st/
# is never listed, so no readdirplus put s<i> in the kernel's cache), readdir
# of the root and of small/, open + read of small/b<i> (never read since the
# mount) with its contents checked; prints each kind's times, fails on one
# above PROBE_LIMIT_MS or on wrong contents (said on stderr); the times go
# to $T/probe.FIRST, which show_probe prints after the step, passed or not
probe() {
	timeout -s KILL 120 python3 - "$M" "$T/ref" "$1" "$2" "$PROBE_LIMIT_MS" <<'PY' >"$T/probe.$1"
import os, sys, time
mnt, ref, first, n, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
times = {"stat": [], "readdir /": [], "readdir small/": [], "read": []}
def timed(kind, fn):
    t = time.monotonic()
    r = fn()
    times[kind].append((time.monotonic() - t) * 1000)
    return r
def read(path):
    with open(path, "rb") as f:
        return f.read()
bad = []
for i in range(first, first + n):
    name = "small/b%02d" % i
    timed("stat", lambda: os.stat(os.path.join(mnt, "st/s%02d" % i)))
    if "A" not in timed("readdir /", lambda: os.listdir(mnt)):
        bad.append("readdir of the root does not list A")
    if "b00" not in timed("readdir small/", lambda: os.listdir(os.path.join(mnt, "small"))):
        bad.append("readdir of small/ does not list b00")
    if timed("read", lambda: read(os.path.join(mnt, name))) != read(os.path.join(ref, name)):
        bad.append("%s: wrong contents" % name)
for kind, ms in times.items():
    print("%-15s %2d calls, max %8.1f ms, each: %s" % (kind, len(ms), max(ms),
          " ".join("%.1f" % x for x in ms)))
    if max(ms) >= limit:
        bad.append("%s took %.0f ms (limit %.0f ms): frozen behind the stalled get" %
                   (kind, max(ms), limit))
for b in bad:
    print("FAILED: " + b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
	local rc=$?
	[ $rc -ne 137 ] || echo "FAILED: a probe did not answer within 120 s"
	return $rc
}
show_probe() {
	[ -f "$T/probe.$1" ] || return 0
	echo "# $2 (limit $PROBE_LIMIT_MS ms):"
	sed 's/^/#   /' "$T/probe.$1"
}

# wait_stalls N: until the daemon has logged N stalls (bounded: 30 s)
wait_stalls() {
	local i
	for i in $(seq 1 600); do
		[ "$(grep -c "fault: get '.*' stalls for" "$T/daemon.log" 2>/dev/null)" -ge "$1" ] 2>/dev/null && return 0
		sleep 0.05
	done
	echo "no stall number $1 within 30 s; daemon log:"
	cat "$T/daemon.log"
	return 1
}

# while_stalled NAME N FIRST WHAT CMD...: switch the stall on, run CMD in the
# background (its exit code to $T/NAME.rc), wait for stall number N, probe
# FIRST.., and fail if CMD (WHAT, for the message) finished meanwhile
while_stalled() {
	local name=$1 n=$2 first=$3 what=$4
	shift 4
	cp "$T/key" "$STALL" || return 1
	( "$@"; echo $? >"$T/$name.rc" ) &
	echo $! >"$T/$name.pid"
	wait_stalls "$n" && grep "stalls for" "$T/daemon.log" | tail -n 1 &&
	probe "$first" 10 || return 1
	if [ -e "$T/$name.rc" ]; then
		echo "FAILED: $what was not blocked by the stall (rc $(cat "$T/$name.rc"))"
		return 1
	fi
}

# wait_file F SECS: until F exists
wait_file() {
	local i
	for i in $(seq 1 $(($2 * 20))); do
		[ -e "$1" ] && return 0
		sleep 0.05
	done
	echo "'$1' did not appear within $2 s"
	return 1
}

test_expect_success 'setup: small files, then a 32 MiB file A, both synced to the bucket' '
	$ZEROFS mkfs "$D" >/dev/null &&
	echo "url fault:stall_ms=$STALL_MS,stall_file=$STALL;file://$B" >"$D/remote.conf" &&
	zf_mount_fg "$D" "$M" "$T/setup.log" -o cache_size=256M &&
	mkdir -p "$T/ref/small" "$M/small" "$M/st" &&
	for i in $(seq -w 0 23); do
		head -c 65536 /dev/urandom >"$T/ref/small/b$i" && cp "$T/ref/small/b$i" "$M/small/" &&
		echo "$i" >"$M/st/s$i" || exit 1
	done &&
	$ZEROFS sync "$M" && ls "$B/seg" >"$T/segs.small" &&
	head -c 32M /dev/urandom >"$T/ref/A" && cp "$T/ref/A" "$M/A" &&
	$ZEROFS sync "$M" && test "$(zf_stat "$M" "pending upload")" = 0 &&
	zf_umount "$M" && zf_wait_gone "$(cat "$T/fg.pid")" &&
	ls "$B/seg" | comm -13 "$T/segs.small" - >"$T/segs.A" &&
	echo "segments of A: $(tr "\n" " " <"$T/segs.A")" && test "$(wc -l <"$T/segs.A")" -ge 2
'
test_expect_success 'A evicted from the dev-dir; a segment object of A picked, offsets in it found' '
	while read -r s; do
		cmp "$D/seg/$s" "$B/seg/$s" && rm "$D/seg/$s" || exit 1
	done <"$T/segs.A" && rm -f "$D"/cache/* &&
	seg=$(sed -n "$(( ($(wc -l <"$T/segs.A") + 1) / 2 ))p" "$T/segs.A") &&
	echo "seg/$seg" >"$T/key" &&
	python3 - "$B/seg/$seg" "$T/ref/A" >"$T/offsets" <<-\PY &&
	import sys
	seg, a = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
	# random data is stored raw: 256 bytes of the object at 3/4 (read) and
	# at 1/4 (overwrite) of it found in A give the file offsets they hold;
	# the read lies after the overwrite, so read-ahead cannot fetch the latter
	for frac in (0.75, 0.25):
	    for k in range(64):
	        p = int(len(seg) * frac) + k * 4096
	        i = a.find(seg[p:p + 256])
	        if i >= 0 and a.find(seg[p:p + 256], i + 1) < 0:
	            print(p, i)
	            break
	    else:
	        sys.exit("no bytes of A found at %.2f of %s" % (frac, sys.argv[1]))
	PY
	cat "$T/offsets" && test "$(wc -l <"$T/offsets")" = 2
'
read -r _ read_off <<<"$(sed -n 1p "$T/offsets" 2>/dev/null)"
read -r write_pos write_off <<<"$(sed -n 2p "$T/offsets" 2>/dev/null)"
read_blk=$((${read_off:-0} / 65536)) write_blk=$((${write_off:-0} / 4096))
echo "# stalled object: $(cat "$T/key" 2>/dev/null); read at block $read_blk of 64 KiB, overwrite at block $write_blk of 4 KiB"

test_expect_success 'part 1: a read of A waits for the stalled object; stat, readdir and reads of other files answer' '
	zf_mount_fg "$D" "$M" "$T/daemon.log" -o cache_size=256M &&
	while_stalled part1 1 0 "the reader of A" \
		dd if="$M/A" of="$T/part1.out" bs=64K skip=$read_blk count=1 status=none
'
show_probe 0 "part 1 probes while the read of A was stalled"
test_expect_success 'part 1: the stall ends; the reader of A gets the right bytes' '
	rm -f "$STALL" && wait_file "$T/part1.rc" 60 && test "$(cat "$T/part1.rc")" = 0 &&
	dd if="$T/ref/A" bs=64K skip=$read_blk count=1 status=none | cmp - "$T/part1.out" &&
	seg=$(sed "s|^seg/||; s|\.zseg\$||" "$T/key") &&
	for f in "$D"/cache/$seg-*.sc; do
		[ -e "$f" ] || continue
		n=${f##*/} && off=$((16#$(echo "${n#*-}" | cut -d. -f1))) && len=$(stat -c %s "$f") &&
		if [ "$off" -le "$write_pos" ] && [ "$write_pos" -lt $((off + len)) ]; then
			echo "FAILED: part 1 fetched the super-chunk part 2 must find evicted: $n"
			exit 1
		fi
	done
'
test_expect_success 'part 2: an overwrite of 4 KiB in the evicted middle of A waits for the stalled object; stat, readdir and reads of other files answer' '
	head -c 4096 /dev/urandom >"$T/patch" &&
	while_stalled part2 2 10 "the overwrite of A" \
		dd if="$T/patch" of="$M/A" bs=4K seek=$write_blk count=1 conv=notrunc status=none
'
show_probe 10 "part 2 probes while the overwrite of A was stalled"
test_expect_success 'part 2: the stall ends; the overwrite completes; A holds the expected bytes' '
	rm -f "$STALL" && wait_file "$T/part2.rc" 60 && test "$(cat "$T/part2.rc")" = 0 || exit 1
	cp "$T/ref/A" "$T/A.expected" &&
	dd if="$T/patch" of="$T/A.expected" bs=4K seek=$write_blk count=1 conv=notrunc status=none &&
	want=$(sha256sum "$T/A.expected") || exit 1
	if ! got=$(timeout 120 sha256sum "$M/A"); then
		echo "FAILED: A could not be read back within 120 s; the end of the daemon log:"
		tail -n 20 "$T/daemon.log"
		exit 1
	fi
	echo "sha256 of A: ${got%% *}" && test "${got%% *}" = "${want%% *}" &&
	for i in $(seq -w 0 23); do timeout 60 cmp "$T/ref/small/b$i" "$M/small/b$i" || exit 1; done
'
test_expect_success 'unmount; fsck clean with data verified; no sanitizer reports' '
	rm -f "$STALL" && timeout 120 $ZEROFS umount "$M" && zf_wait_gone "$(cat "$T/fg.pid")" &&
	zf_fsck_clean "$D" && no_san_reports
'
test_done
