# tests/e2e/remote-lib.sh - helpers for the object-storage tests (11-, 12-)
#
# Sourced after lib.sh.
#   zf_stat MNT 'label'      the first number of a 'zerofs stats' line
#   dev_bytes DEV            bytes of segments + fetch cache in a dev-dir:
#                            what cache_size bounds (file sizes, as the
#                            daemon counts them)
#   wait_drained MNT SECS    poll until nothing is pending upload
#   make_tree DIR BIGSIZE    a tree with every file type, xattrs, ACLs,
#                            hard links, a sparse file and BIGSIZE random bytes
#   same_tree A B            rsync -aHAXn --itemize-changes prints nothing,
#                            with --delete (nothing extra in B) and with
#                            --checksum (contents) too
#   zf_mount_fg DEV MNT LOG [opts]  the daemon in the foreground (-f) in the
#                            background, its stderr in LOG; returns when the
#                            mount is live; pid in $T/fg.pid
#   zf_wait_gone PID         wait (bounded) until a daemon has exited
#   flip_byte FILE OFF       invert one byte in place
#   damage_file FILE HOW [REPLACEMENT [START]]  damage FILE one way: start
#                            (flip byte START, default 0), mid (or middle),
#                            end, trunc (or truncate: to half), delete,
#                            replace (by a copy of REPLACEMENT)
#   fetch_misses MNT         fetch-cache misses of a mount
#   cached_slices_match DEV SEGFN  the dev-dir fetched super-chunks, and each
#                            (cache/<seg>-<off>.sc) is exactly the bytes at
#                            <off> of its segment object, and less than all
#                            of it; SEGFN SEG prints the path of a copy of
#                            object seg/SEG.zseg
#   restore_same URL DEV MNT mkfs --restore URL into DEV, which mounted on MNT
#                            (cache_size=8M) holds the same tree as $T/ref;
#                            unmounted, fsck clean
#   mount_busy DEV MNT URL WHO  a mount of DEV is refused, the bucket "in use
#                            by WHO" (a grep pattern) and the lease-break
#                            command for URL said, stderr in $T/err
# Steps that 11-remote (file://) and 12-s3-remote (s3://) share, on the
# dev-dir DEV of bucket URL mounted on MNT, with $T/ref its reference copy:
#   kill_during_uploads DEV MNT URL MB  MB random MiB copied in through a
#                            slow store (1 s a request); the daemon killed
#                            by kill -9 while more than 16 MiB wait for upload
#   remount_takes_lease DEV MNT URL MB  the remount takes the dead daemon's
#                            lease over (said on stderr, in $T/err), the file
#                            is intact, a sync uploads the rest (less than
#                            MB MiB: no restart from zero)
#   outage_grows MNT LOG TENTHS  the bucket down (the uploader says so in
#                            LOG within TENTHS tenths of a second) and
#                            $T/ref/out1 on MNT: out2 (40 MiB) and a file in
#                            during/ copied in, read back; the backlog and
#                            the recovery point grow
#   victim_seg DEV MNT LIST  after a sync, $T/ref/victim (20 MiB) copied in
#                            and synced, unmounted; the segment object it
#                            went to (what LIST, which prints the segment
#                            objects one a line, lists now and did not
#                            before) in $T/victim.seg
#   victim_eio DEV MNT       with that object damaged and no fetch cache:
#                            reading victim is EIO, the daemon names its
#                            inode, other files read fine; unmounted, fsck
#                            --verify-data exits 4
#   flaky_copy DEV MNT URL MB  10 % of requests fail, 300 ms each, while MB
#                            MiB and a tree are copied in; after a sync and a
#                            remount without the cache, the tree is intact
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$T/san"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$T/san"
# Not reports: a file left empty (opened by a process killed before it wrote
# a byte, as the crash tests kill) and LeakSanitizer's "Unable to get
# registers from thread N" (its stop-the-world met a thread that was exiting;
# the leak check goes on and reports leaks, if any, in lines of their own).
no_san_reports() {
	local f bad=0
	for f in "$T"/san.*; do
		[ -e "$f" ] || continue
		if grep -qv '^==[0-9]*==Unable to get registers from thread [0-9]*\.$' "$f"; then
			cat "$f"
			bad=1
		else
			echo "# note: no report in sanitizer log $f:"
			sed 's/^/#   /' "$f"
		fi
	done
	return $bad
}

zf_stat() {
	"$ZEROFS" stats --bytes "$1" | sed -n "s/^$2: *\([0-9][0-9]*\).*/\1/p" | grep . ||
		{ echo "no '$2' in the stats of '$1'"; return 1; }
}

dev_bytes() {
	find "$1/seg" "$1/cache" -type f -printf '%s\n' 2>/dev/null |
		awk '{ s += $1 } END { print s + 0 }'
}

wait_drained() {
	local i
	for i in $(seq 1 $(($2 * 10))); do
		[ "$(zf_stat "$1" "pending upload")" = 0 ] && return 0
		sleep 0.1
	done
	echo "still pending after $2 s:"
	"$ZEROFS" stats --bytes "$1"
	return 1
}

make_tree() {
	local d=$1
	mkdir -p "$d/dir/sub" "$d/empty-dir" &&
		head -c "$2" /dev/urandom >"$d/big" &&
		head -c 3000001 /dev/urandom >"$d/dir/rand" &&
		printf 'hello\n' >"$d/small" && : >"$d/empty" &&
		truncate -s 50M "$d/sparse" &&
		printf x | dd of="$d/sparse" bs=1 seek=30000000 conv=notrunc status=none &&
		ln "$d/small" "$d/dir/hard" && ln "$d/small" "$d/dir/sub/hard2" &&
		ln -s ../small "$d/dir/sym" && ln -s /nowhere "$d/dangling" &&
		mkfifo "$d/fifo" && mknod "$d/chr" c 1 3 && mknod "$d/blk" b 7 0 &&
		python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' \
			"$d/sock" &&
		setfattr -n user.color -v blue "$d/small" &&
		setfattr -n user.bin -v 0x00ff00 "$d/dir" &&
		setfattr -n user.empty "$d/big" &&
		setfacl -m u:1234:rwx,g:99:r "$d/dir/rand" && setfacl -d -m g:55:rx "$d/dir/sub" &&
		chown 1234:5678 "$d/dir/rand" && chmod 1777 "$d/dir/sub" && chmod 2750 "$d/empty-dir" &&
		chmod 4711 "$d/dir/rand" &&
		touch -h -d '2001-02-03 04:05:06' "$d/dir/sym" "$d/small" "$d/dir"
}

same_tree() {
	local out
	out=$(rsync -aHAXn --itemize-changes "$1/" "$2/") || return 1
	[ -z "$out" ] || { echo "rsync -aHAXn --itemize-changes $1/ $2/:"; echo "$out"; return 1; }
	out=$(rsync -aHAXn --delete --checksum --itemize-changes "$1/" "$2/") || return 1
	[ -z "$out" ] || { echo "contents differ:"; echo "$out"; return 1; }
}

zf_mount_fg() {
	local dev=$1 mnt=$2 log=$3 i
	shift 3
	mkdir -p "$mnt"
	"$ZEROFS" mount -f "$@" "$dev" "$mnt" >/dev/null 2>"$log" &
	echo $! >"$T/fg.pid"
	echo "$mnt" >>"$T/.mounts"
	for i in $(seq 1 600); do
		mountpoint -q "$mnt" && return 0
		kill -0 "$(cat "$T/fg.pid")" 2>/dev/null || break
		sleep 0.05
	done
	echo "foreground mount of '$mnt' did not come up:"
	cat "$log"
	return 1
}

zf_wait_gone() {
	local i
	for i in $(seq 1 1200); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.05
	done
	echo "daemon $1 still alive after 60 s"
	return 1
}

flip_byte() {
	python3 -c '
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); b = f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0xff]))' \
		"$1" "$2"
}

damage_file() {
	local f=$1 size
	size=$(stat -c %s "$f") || return 1
	case $2 in
	start) flip_byte "$f" "${4:-0}" ;;
	mid | middle) flip_byte "$f" $((size / 2)) ;;
	end) flip_byte "$f" $((size - 1)) ;;
	trunc | truncate) truncate -s $((size / 2)) "$f" ;;
	delete) rm "$f" ;;
	replace) cp "$3" "$f" ;;
	*) echo "damage_file: no way '$2'"; return 1 ;;
	esac
}

fetch_misses() {
	"$ZEROFS" stats --bytes "$1" | sed -n 's/^fetch cache: .*, \([0-9]*\) misses.*/\1/p'
}

cached_slices_match() {
	local f n seg off len obj
	ls "$1/cache" | grep -q "\.sc\$" || { echo "nothing fetched into '$1/cache'"; return 1; }
	for f in "$1"/cache/*.sc; do
		n=${f##*/} && seg=${n%%-*} && off=$((16#$(echo "${n#*-}" | cut -d. -f1))) &&
			len=$(stat -c %s "$f") && obj=$("$2" "$seg") &&
			test "$len" -lt "$(stat -c %s "$obj")" &&
			tail -c +$((off + 1)) "$obj" | head -c "$len" | cmp - "$f" || return 1
	done
}

restore_same() {
	"$ZEROFS" mkfs --restore "$1" "$2" && zf_mount "$2" "$3" -o cache_size=8M &&
		same_tree "$T/ref" "$3" && zf_umount "$3" && zf_fsck_clean "$2"
}

mount_busy() {
	mkdir -p "$2" &&
		! timeout 60 "$ZEROFS" mount "$1" "$2" 2>"$T/err" && ! mountpoint -q "$2" &&
		cat "$T/err" && grep -q "in use by $4" "$T/err" &&
		grep -qF "zerofs lease-break $3" "$T/err"
}

kill_during_uploads() {
	local dev=$1 mnt=$2 url=$3 mb=$4 i
	echo "url fault:latency=1000;$url" >"$dev/remote.conf" &&
		zf_mount "$dev" "$mnt" &&
		head -c "$mb"M /dev/urandom >"$T/ref/crash" &&
		cp -p "$T/ref/crash" "$mnt/crash" && sync "$mnt/crash" && touch -r "$mnt" "$T/ref" &&
		for i in $(seq 1 600); do
			test "$(zf_stat "$mnt" "uploaded")" -ge $((16 << 20)) && break
			sleep 0.1
		done &&
		test "$(zf_stat "$mnt" "pending upload")" -gt $((16 << 20)) &&
		zf_kill9 "$dev" "$mnt"
}

# (the remount puts again at most what was in flight: four segments)
remount_takes_lease() {
	local dev=$1 mnt=$2 url=$3 mb=$4
	echo "url $url" >"$dev/remote.conf" &&
		zf_mount "$dev" "$mnt" 2>"$T/err" && cat "$T/err" &&
		grep -q "taking over the lease of .* no process holds any more" "$T/err" &&
		cmp "$T/ref/crash" "$mnt/crash" && "$ZEROFS" sync "$mnt" &&
		test "$(zf_stat "$mnt" "pending upload")" = 0 &&
		test "$(zf_stat "$mnt" "uploaded")" -lt $(((mb + 64) << 20)) &&
		zf_umount "$mnt"
}

# seed 8 fails the 5th request of each store (for uploads: the first round's
# lease check) and 6 of the first 40: failures are certain, not just likely
flaky_copy() {
	local dev=$1 mnt=$2 url=$3 mb=$4
	echo "url fault:rate=0.1,latency=300,seed=8;$url" >"$dev/remote.conf" &&
		zf_mount_fg "$dev" "$mnt" "$T/flaky.log" -o cache_size=16M &&
		head -c "$mb"M /dev/urandom >"$T/ref/flaky" && cp -a "$T/ref/dir" "$T/ref/dir-flaky" &&
		cp -p "$T/ref/flaky" "$mnt/flaky" && cp -a "$T/ref/dir" "$mnt/dir-flaky" &&
		touch -r "$mnt" "$T/ref" &&
		"$ZEROFS" sync "$mnt" && test "$(zf_stat "$mnt" "pending upload")" = 0 &&
		zf_umount "$mnt" && zf_wait_gone "$(cat "$T/fg.pid")" &&
		grep -q "failed: Input/output error (retrying" "$T/flaky.log" &&
		rm -f "$dev"/cache/* && zf_mount "$dev" "$mnt" -o cache_size=8M &&
		same_tree "$T/ref" "$mnt" && zf_umount "$mnt"
}

outage_grows() {
	local mnt=$1 log=$2 i p1
	cp -p "$T/ref/out2" "$mnt/out2" && mkdir "$mnt/during" "$T/ref/during" &&
		for i in $(seq 1 "$3"); do
			grep -q "upload to .* failed: Connection refused" "$log" && break
			sleep 0.1
		done &&
		p1=$(zf_stat "$mnt" "pending upload") && test "$p1" -ge 40000000 &&
		"$ZEROFS" stats --bytes "$mnt" | awk '/^recovery point:/ { exit !($3 > 0) }' &&
		cmp "$T/ref/out1" "$mnt/out1" && cmp "$T/ref/out2" "$mnt/out2" &&
		cp -a "$T/ref/dir/rand" "$mnt/during/rand" &&
		cp -a "$T/ref/dir/rand" "$T/ref/during/rand" &&
		sync "$mnt/during/rand" && test "$(zf_stat "$mnt" "pending upload")" -gt "$p1"
}

victim_seg() {
	local dev=$1 mnt=$2 list=$3
	zf_mount "$dev" "$mnt" -o cache_size=1M && "$ZEROFS" sync "$mnt" && "$list" >"$T/segs" &&
		head -c 20M /dev/urandom >"$T/ref/victim" && cp -p "$T/ref/victim" "$mnt/victim" &&
		"$ZEROFS" sync "$mnt" && touch -r "$mnt" "$T/ref" && zf_umount "$mnt" &&
		"$list" | comm -13 "$T/segs" - | head -n 1 >"$T/victim.seg" && test -s "$T/victim.seg"
}

victim_eio() {
	local dev=$1 mnt=$2 ino
	rm -f "$dev"/cache/* && zf_mount_fg "$dev" "$mnt" "$T/bad.log" -o cache_size=1M &&
		ino=$(stat -c %i "$mnt/victim") &&
		! cat "$mnt/victim" >/dev/null 2>"$T/err" && grep -q "Input/output error" "$T/err" &&
		grep -q "cannot read inode $ino at offset" "$T/bad.log" &&
		cmp "$T/ref/big" "$mnt/big" && cmp "$T/ref/crash" "$mnt/crash" &&
		zf_umount "$mnt" && zf_wait_gone "$(cat "$T/fg.pid")" &&
		expect_code 4 "$ZEROFS" fsck --verify-data "$dev"
}
