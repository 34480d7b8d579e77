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
	"$ZEROFS" stats "$1" | sed -n "s/^$2: *\([0-9][0-9]*\).*/\1/p" | grep . ||
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
	"$ZEROFS" stats "$1"
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
