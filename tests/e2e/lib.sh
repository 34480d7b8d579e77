# tests/e2e/lib.sh - helpers for the end-to-end tests (git t/ style)
#
# Every script runs in its own scratch directory (removed by an EXIT trap),
# counts its steps, and exits non-zero if any failed; 77 means skipped.
set -u
ZEROFS=${ZEROFS:-$(pwd)/zerofs}
T=$(mktemp -d /tmp/zf-e2e.XXXXXX)
steps=0
failed=0
cleanup_hooks=""
# mounts are recorded in a file: steps run in subshells, variables set there are lost
at_exit() {
	local m
	eval "$cleanup_hooks"
	if [ -f "$T/.mounts" ]; then
		while read -r m; do fusermount3 -uz "$m" 2>/dev/null; done <"$T/.mounts"
	fi
	rm -rf "$T"
}
trap at_exit EXIT

# test_expect_success 'what' 'commands'
test_expect_success() {
	[ -n "${ZF_ONLY:-}" ] && ! echo "$1" | grep -q "$ZF_ONLY" && return 0
	steps=$((steps + 1))
	if (eval "$2") >"$T/step.log" 2>&1; then
		echo "ok $steps - $1"
	else
		echo "not ok $steps - $1"
		sed 's/^/#   /' "$T/step.log"
		failed=$((failed + 1))
	fi
}

# expect_code N cmd...: run cmd, require exit code N
expect_code() {
	local want=$1 rc=0
	shift
	"$@" || rc=$?
	[ "$rc" -eq "$want" ] || { echo "expected exit $want, got $rc: $*"; return 1; }
}

test_done() {
	echo "# $steps steps, $failed failed"
	[ "$failed" -eq 0 ]
}

# require_cmds 'Debian: PACKAGES' CMD...: skip (77, naming what is missing
# and where it comes from) unless every CMD is installed
require_cmds() {
	local hint=$1 c
	shift
	for c in "$@"; do
		command -v "$c" >/dev/null || { echo "SKIP: '$c' is needed ($hint)"; exit 77; }
	done
}

# private_ns_ok: can this machine make a private mount namespace? Not in a
# chroot (the fresh-root check), where / is not a mount point: unshare
# cannot change its propagation. Steps that need one say they are skipped.
private_ns_ok() {
	unshare -m --propagation private true 2>/dev/null
}

# skip_step 'what' 'why': say that a step did not run, and why (not a pass)
skip_step() {
	echo "# SKIP: $1 ($2)"
}

# ---- mounts ----

# skip (77, with a reason) when this machine cannot mount FUSE
require_fuse() {
	if [ ! -c /dev/fuse ] || ! command -v fusermount3 >/dev/null; then
		echo "SKIP: no /dev/fuse or fusermount3 on this machine"
		exit 77
	fi
	if [ "$(id -u)" -ne 0 ]; then
		echo "SKIP: end-to-end mounts need root"
		exit 77
	fi
	# A root directory other users cannot search (a chroot made with
	# mktemp -d is 0700) lets no other uid run any program: the
	# permission tests need one. Say so and repair it.
	if [ "$(stat -c %a /)" = 700 ]; then
		echo "# note: / is mode 0700 here (a chroot?); making it searchable for other users"
		chmod o+rx / || exit 1
	fi
}

# zf_mount DEV MNT [mount options...]: returns when the mount is live
zf_mount() {
	local dev=$1 mnt=$2
	shift 2
	mkdir -p "$mnt"
	"$ZEROFS" mount "$@" "$dev" "$mnt" || return 1
	mountpoint -q "$mnt" || { echo "mount of $mnt is not live"; return 1; }
	echo "$mnt" >>"$T/.mounts"
}

# zf_umount MNT: unmount and wait until the daemon has flushed and exited
zf_umount() {
	"$ZEROFS" umount "$1"
}

# fsck must be clean, with data verified
zf_fsck_clean() {
	"$ZEROFS" fsck --verify-data "$1"
}

# ---- daemons ----

# kill_daemons_at_exit: the EXIT trap kill -9s every daemon mounting
# something under $T (a failed step can leave one behind)
kill_daemons_at_exit() {
	cleanup_hooks="kill -9 \$(pgrep -f -- 'zerofs mount .*$T/') 2>/dev/null; $cleanup_hooks"
}

# zf_daemon_pid DEV MNT: the pid of the daemon serving DEV on MNT
zf_daemon_pid() {
	pgrep -f -- "zerofs mount .*$1 $2\$"
}

# zf_kill9 DEV MNT: kill -9 that daemon, drop its dead mount, and return once
# the dev-dir's lock is free (the daemon is gone)
zf_kill9() {
	kill -9 $(zf_daemon_pid "$1" "$2") && fusermount3 -uz "$2" && flock -w 60 "$1/lock" true
}
