#!/usr/bin/env bash
# make install: the layout under DESTDIR (the command, mount(8)'s helpers in
# the mount helper directory, /sbin by default, the man pages, the bash
# completion, the systemd mount unit and zerofs.conf examples); then, in a
# private mount namespace where that install is laid over the real
# directories (nothing is left on the machine), an fstab line mounted with
# 'mount -T' and unmounted with umount(8), and the generic mount.fuse3
# helper's form 'zerofs <dev-dir> <mnt> -o <opts>' (what a missing
# mount.fuse.zerofs falls back to); and that ./setup.sh demo installs what
# configure requires
. "$(dirname "$0")/lib.sh"
require_fuse
require_cmds 'Debian: util-linux' unshare findmnt flock
kill_daemons_at_exit

build=$(dirname "$ZEROFS")
I=$T/inst D=$T/dev M=$T/mnt
prefix=$(sed -n 's/^prefix = //p' "$build/Makefile")
helperdir=$(sed -n 's/^mounthelperdir = //p' "$build/Makefile")
# what the real helper directory holds of ours (before and after: the same)
helpers_state() { ls -l "$helperdir"/mount.zerofs "$helperdir"/mount.fuse.zerofs 2>&1 || true; }
helpers_state >"$T/before"

test_expect_success 'make install DESTDIR=: the command, mount helpers, docs, completion' '
	test -n "$prefix" && test -n "$helperdir" &&
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$build" install DESTDIR="$I" >/dev/null &&
	test -x "$I$prefix/bin/zerofs" &&
	test "$(readlink "$I$helperdir/mount.fuse.zerofs")" = "$prefix/bin/zerofs" &&
	test "$(readlink "$I$helperdir/mount.zerofs")" = "$prefix/bin/zerofs" &&
	grep -q "^Type=fuse.zerofs" "$I$prefix/share/doc/zerofs/examples/mnt-work.mount" &&
	test -f "$I$prefix/share/bash-completion/completions/zerofs" &&
	grep -q "^cache_size = " "$I$prefix/share/doc/zerofs/examples/zerofs.conf" &&
	if [ -f "$build/man/zerofs.8" ]; then
		test -f "$I$prefix/share/man/man8/zerofs.8" &&
		test -f "$I$prefix/share/man/man5/zerofs.conf.5"
	fi &&
	helpers_state >"$T/after" &&
	diff "$T/before" "$T/after"
'
test_expect_success 'make uninstall DESTDIR=: no file left behind' '
	mk() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$build" "$@" >/dev/null; } &&
	mk install DESTDIR="$T/inst2" && test -n "$(find "$T/inst2" ! -type d)" &&
	mk uninstall DESTDIR="$T/inst2" && find "$T/inst2" ! -type d >"$T/left" &&
	cat "$T/left" && test ! -s "$T/left"
'
test_expect_success './setup.sh demo installs the package of every library configure requires' '
	src=$(cd "$(dirname "$0")/../.." && pwd) &&
	demo=$(bash -c "source <(sed -n \"/^demo_pkgs=/,/)/p\" \"$src/setup.sh\"); echo \${demo_pkgs[*]}") &&
	echo "demo: $demo" && test -n "$demo" &&
	for p in $(sed -n "s/^ZF_REQUIRE(\[[A-Z]*\], \[[^]]*\], \[\([^]]*\)\]).*/\1/p" "$src/configure.ac"); do
		echo " $demo " | grep -q " $p " || { echo "setup.sh demo lacks $p"; return 1; }
	done &&
	for p in build-essential autoconf automake pkg-config fuse3; do
		echo " $demo " | grep -q " $p " || { echo "setup.sh demo lacks $p"; return 1; }
	done
'

"$ZEROFS" mkfs "$D" >/dev/null && mkdir -p "$M"
printf '%s %s fuse.zerofs _netdev,nofail,cache_size=64M,max_delay=1 0 0\n' "$D" "$M" >"$T/fstab"

# in_ns SCRIPT: run SCRIPT (sh) in a private mount namespace where the
# install is laid over the real helper and bin directories (an overlay;
# a bind mount where overlayfs is not there)
in_ns() {
	unshare -m --propagation private env I="$I" D="$D" M="$M" T="$T" \
		ihelper="$I$helperdir" helperdir="$(realpath "$helperdir")" bindir="$prefix/bin" \
		PATH="$prefix/bin:$PATH" sh -euc '
		over() { # install dir, real dir
			mkdir -p "$2" 2>/dev/null || true
			mount -t overlay overlay -o "lowerdir=$1:$2" "$2" 2>/dev/null ||
				mount --bind "$1" "$2"
		}
		over "$ihelper" "$helperdir"
		over "$I$bindir" "$bindir"
		'"$1"
}

# daemon_gone PATTERN: no process matches PATTERN within 60 s (once the
# dev-dir's lock is free the daemon only exits; a sanitizer's exit takes time)
daemon_gone() {
	local i
	for i in $(seq 1 600); do
		pgrep -f -- "$1" >/dev/null || return 0
		sleep 0.1
	done
	echo "still running: $(pgrep -af -- "$1")"
	return 1
}

if private_ns_ok; then
test_expect_success 'an fstab line: mount -T, files written, umount(8) flushes' '
	test -d "$prefix/bin" || { echo "no $prefix/bin to lay the install over"; return 1; }
	in_ns "
		mount -T \"\$T/fstab\" \"\$M\"
		findmnt -n -o FSTYPE,SOURCE \"\$M\" >\"\$T/fstype\"
		echo written-by-fstab >\"\$M/f\"
		umount \"\$M\"
		flock -w 60 \"\$D/lock\" true
	" &&
	cat "$T/fstype" && grep -q "^fuse.zerofs *zerofs:$D" "$T/fstype" &&
	! mountpoint -q "$M" && daemon_gone "zerofs.* $D $M" &&
	zf_mount "$D" "$M" && test "$(cat "$M/f")" = written-by-fstab && zf_umount "$M"
'
test_expect_success 'mount.fuse3 (type fuse.zerofs, no helper of ours) runs "zerofs DEV MNT -o ..."' '
	command -v mount.fuse3 >/dev/null || { echo "no mount.fuse3 (Debian: fuse3)"; return 1; }
	in_ns "
		mount.fuse3 \"\$D\" \"\$M\" -t zerofs -o cache_size=64M
		findmnt -n -o FSTYPE \"\$M\" >\"\$T/fstype\"
		echo via-mount-fuse >\"\$M/g\"
		umount \"\$M\"
		flock -w 60 \"\$D/lock\" true
	" &&
	grep -q "^fuse.zerofs" "$T/fstype" &&
	zf_mount "$D" "$M" && test "$(cat "$M/g")" = via-mount-fuse && zf_umount "$M"
'
else
	skip_step 'an fstab line: mount -T, files written, umount(8) flushes' 'no private mount namespace here: / is not a mount point (a chroot)'
	skip_step 'mount.fuse3 (type fuse.zerofs, no helper of ours) runs "zerofs DEV MNT -o ..."' 'the same'
	# what the next step reads, written by a plain mount instead
	zf_mount "$D" "$M" && echo written-by-fstab >"$M/f" && zf_umount "$M"
fi
test_expect_success 'zerofs DEV MNT with mount(8)'\''s options, and a bad one said as mount' '
	$ZEROFS "$D" "$M" -o rw,dev,suid,_netdev && echo "$M" >>"$T/.mounts" &&
	mountpoint -q "$M" && test "$(cat "$M/f")" = written-by-fstab && zf_umount "$M" &&
	expect_code 2 $ZEROFS "$D" "$M" -o commit=0 2>"$T/err" &&
	grep -q "^zerofs mount: invalid .commit=0." "$T/err" &&
	expect_code 2 $ZEROFS frobnicate 2>"$T/err" && grep -q "unknown command .frobnicate." "$T/err"
'
test_expect_success 'fsck is clean after all of them' '
	zf_fsck_clean "$D"
'
test_done
