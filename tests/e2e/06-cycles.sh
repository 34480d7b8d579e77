#!/usr/bin/env bash
# lifecycle: many mount/unmount cycles without an error or a daemon left
# behind; SIGTERM, SIGINT and SIGHUP of the daemon and a plain
# 'fusermount3 -u' unmount cleanly and flush what was written without fsync
. "$(dirname "$0")/lib.sh"
require_fuse
D=$T/dev M=$T/mnt
cycles=20
# sanitizer reports of every zerofs process (daemons too) land in $T
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$T/san"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$T/san"
no_san_reports() { ! ls "$T"/san.* >/dev/null 2>&1 || { cat "$T"/san.*; return 1; }; }

# daemons serving $M (the background process keeps its argv)
daemon_pids() { pgrep -f -- "zerofs mount .*$D $M\$"; }
# on the way out: no daemon, no dead mount left behind
cleanup_hooks="kill -9 \$(daemon_pids) 2>/dev/null; fusermount3 -uz '$M' 2>/dev/null; $cleanup_hooks"

# No daemon of this dev-dir is alive (a zombie waiting for init is dead).
# The daemon releases the dev-dir lock (what 'zerofs umount' waits for) just
# before it exits: give it a moment to be gone.
no_daemon() {
	local i pid st alive
	for i in $(seq 1 400); do
		alive=""
		for pid in $(daemon_pids); do
			st=$(ps -o stat= -p "$pid") || continue
			case $st in
			Z*) ;;
			*) alive="$alive $pid" ;;
			esac
		done
		[ -z "$alive" ] && return 0
		sleep 0.05
	done
	echo "daemon still alive after unmount:"
	ps -o pid,stat,args -p "${alive# }"
	return 1
}

# a step failed half-way: say why, leave nothing mounted for the next one
fail() {
	echo "$*"
	grep -q " $M " /proc/mounts && zf_umount "$M"
	exit 1
}

one_daemon() {
	[ "$(daemon_pids | wc -w)" -eq 1 ] || { echo "want one daemon, found: $(daemon_pids)"; return 1; }
}

test_expect_success 'mkfs' '
	$ZEROFS mkfs "$D"
'
test_expect_success "$cycles mount/unmount cycles: write, read back, no daemon left" '
	: >"$T/prev" &&
	for i in $(seq 1 $cycles); do
		zf_mount "$D" "$M" && one_daemon || fail "cycle $i: mount"
		# what the previous cycle wrote (rewritten in place, size changes)
		cmp "$T/prev" "$M/data" 2>/dev/null || [ $i -eq 1 ] ||
			fail "cycle $i: the file of cycle $((i - 1)) differs"
		head -c $((RANDOM * 7)) /dev/urandom >"$T/prev" &&
		cp "$T/prev" "$M/data" && echo "cycle $i" >"$M/c$i" &&
		cmp "$T/prev" "$M/data" && test "$(cat "$M/c$i")" = "cycle $i" ||
			fail "cycle $i: write and read back"
		zf_umount "$M" || fail "cycle $i: umount"
		no_daemon || fail "cycle $i: daemon left behind"
		! grep -q " $M " /proc/mounts || fail "cycle $i: still mounted"
	done
'
test_expect_success 'after the cycles: fsck clean, every file there' '
	zf_fsck_clean "$D" && zf_mount "$D" "$M" && cmp "$T/prev" "$M/data" &&
	for i in $(seq 1 $cycles); do
		test "$(cat "$M/c$i")" = "cycle $i" || fail "c$i lost"
	done &&
	zf_umount "$M" && no_daemon || fail "after the cycles"
'

# stop_by HOW: write without fsync, stop the daemon by HOW (TERM, INT,
# HUP or fusermount), wait until it released the dev-dir, remount, compare
stop_by() {
	local how=$1 pid
	# (not zf_mount: the daemon must not inherit an ignored SIGINT)
	env --default-signal "$ZEROFS" mount "$D" "$M" && mountpoint -q "$M" &&
	one_daemon && pid=$(daemon_pids) &&
	head -c 3000000 /dev/urandom >"$T/big.$how" && cp "$T/big.$how" "$M/big.$how" &&
	cp "$T/big.$how" "$M/data" && echo "$how" >"$M/small.$how" &&
	mkdir "$M/dir.$how" && ln -s "small.$how" "$M/sym.$how" || return 1
	if [ "$how" = fusermount ]; then
		fusermount3 -u "$M" || return 1
	else
		kill -"$how" "$pid" || return 1
	fi
	# the daemon holds the lock until everything is flushed
	flock -w 60 "$D/lock" true && no_daemon || return 1
	! grep -q " $M " /proc/mounts || { echo "the daemon left its mount behind"; return 1; }
	zf_fsck_clean "$D" && zf_mount "$D" "$M" &&
	cmp "$T/big.$how" "$M/big.$how" && cmp "$T/big.$how" "$M/data" &&
	test "$(cat "$M/sym.$how")" = "$how" && test -d "$M/dir.$how" &&
	zf_umount "$M" && no_daemon
}

for how in TERM INT HUP; do
	test_expect_success "SIG$how: the daemon unmounts, flushes unsynced writes, exits" "
		stop_by $how || fail 'SIG$how'
	"
done
test_expect_success 'SIGTERM of a daemon mounted by relative paths: no dead mount left' '
	rel=$(basename "$T") &&
	(cd "$T/.." && env --default-signal "$ZEROFS" mount "$rel/dev" "$rel/mnt") &&
	pid=$(pgrep -f -- "zerofs mount $rel/dev $rel/mnt\$") && [ "$(echo $pid | wc -w)" -eq 1 ] &&
	echo rel >"$M/rel" && kill -TERM "$pid" && flock -w 60 "$D/lock" true && no_daemon &&
	! grep -q " $M " /proc/mounts && zf_mount "$D" "$M" && test "$(cat "$M/rel")" = rel &&
	zf_umount "$M" && no_daemon || fail "relative"
'
test_expect_success 'fusermount3 -u: the daemon flushes unsynced writes and exits' '
	stop_by fusermount || fail fusermount
'
# fg_cycle HOW: a foreground daemon (-f, its log on stderr) ended by HOW
# (umount, TERM or INT) must exit 0 without logging an error or a warning
fg_cycle() {
	local how=$1 pid i rc=0
	# a background job of a script starts with SIGINT ignored: undo that
	env --default-signal "$ZEROFS" mount -f "$D" "$M" 2>"$T/fg.$how" &
	pid=$!
	for i in $(seq 1 400); do # the mount is live once /proc/mounts says so
		grep -q " $M fuse.zerofs " /proc/mounts && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	grep -q " $M fuse.zerofs " /proc/mounts || { echo "no foreground mount"; cat "$T/fg.$how"; return 1; }
	head -c 500000 /dev/urandom >"$T/fg" && cp "$T/fg" "$M/fg.$how" || return 1
	if [ "$how" = umount ]; then
		zf_umount "$M" || return 1
	else
		kill -"$how" "$pid" || return 1
	fi
	for i in $(seq 1 1200); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$pid" 2>/dev/null && { echo "no exit 60 s after $how"; kill -9 "$pid"; }
	wait "$pid" || rc=$?
	[ "$rc" -eq 0 ] || { echo "the daemon exited with $rc"; cat "$T/fg.$how"; return 1; }
	! grep -Ei "error|warning" "$T/fg.$how" || return 1
	zf_mount "$D" "$M" && cmp "$T/fg" "$M/fg.$how" && zf_umount "$M" && no_daemon
}

for how in umount TERM INT; do
	test_expect_success "foreground daemon ended by $how: exit status 0, nothing logged" "
		fg_cycle $how || fail 'foreground $how'
	"
done
test_expect_success 'SIGTERM in the middle of a write storm: fsck clean, no daemon left' '
	zf_mount "$D" "$M" && one_daemon && pid=$(daemon_pids) &&
	mkdir -p "$M/storm" && head -c 1000000 /dev/urandom >"$T/r" &&
	{ for i in $(seq 1 400); do cp "$T/r" "$M/storm/f$((i % 20))" 2>/dev/null || break; done & } &&
	cp "$T/r" "$M/first" && kill -TERM "$pid" && wait &&
	flock -w 60 "$D/lock" true && no_daemon && zf_fsck_clean "$D" &&
	zf_mount "$D" "$M" && cmp "$T/r" "$M/first" || fail "storm"
'
test_expect_success 'unmount and final fsck, no sanitizer reports' '
	zf_umount "$M" && no_daemon && zf_fsck_clean "$D" && no_san_reports
'
test_done
