#!/usr/bin/env bash
# Progress lines (common/progress.c) on a terminal and nowhere else: sync,
# umount, gc (of a mount, through the daemon, and of a dev-dir), fsck,
# warmup and mkfs --restore each draw "<cmd>: [====>   ]  NN% ..." on stderr when it
# is a terminal (script(1) gives them one), and print no progress at all
# (no carriage return, no bar) when it is a file. The bucket answers each
# request after 1.5 s (net/fault.c's latency), so a sync waits long enough
# for the daemon's once-a-second progress report.
. "$(dirname "$0")/lib.sh"
require_fuse
require_cmds "Debian: bsdutils (script)" script
kill_daemons_at_exit

D=$T/dev M=$T/mnt B=$T/dev.bucket
# tty CMD...: CMD run on a terminal; what the terminal showed in $T/tty
tty() { script -qec "$*" /dev/null >"$T/tty" </dev/null; }
# a progress bar of cmd in FILE
has_bar() { grep -aq "$1: \[[=> ]*\] *[0-9]*% " "$2"; }
# nothing of a progress line in FILE: no carriage return, no bar
no_bar() { ! grep -aq $'\r' "$1" && ! grep -aq '\] *[0-9]*% ' "$1"; }

test_expect_success 'sync on a terminal: a bar of bytes uploaded, rate; on a file: nothing' '
	$ZEROFS mkfs "$D" >/dev/null &&
	echo "url fault:latency=1500;file://$B" >"$D/remote.conf" &&
	zf_mount "$D" "$M" && head -c 12M /dev/urandom >"$M/a" &&
	tty $ZEROFS sync "$M" && cat -v "$T/tty" && has_bar sync "$T/tty" &&
	grep -aq "sync: .* of [0-9.]* MiB" "$T/tty" &&
	head -c 12M /dev/urandom >"$M/b" && $ZEROFS sync "$M" 2>"$T/err" && no_bar "$T/err"
'
test_expect_success 'gc of a mount on a terminal (through the daemon): live bytes copied' '
	head -c 8M /dev/urandom >"$M/c" && head -c 8M /dev/urandom >"$M/d" && $ZEROFS sync "$M" &&
	rm "$M/c" && $ZEROFS sync "$M" &&
	tty $ZEROFS gc "$M" && cat -v "$T/tty" && has_bar gc "$T/tty" &&
	grep -aq "freed" "$T/tty"
'
test_expect_success 'umount on a terminal: the sync bar first; on a file: nothing' '
	head -c 12M /dev/urandom >"$M/e" &&
	tty $ZEROFS umount "$M" && cat -v "$T/tty" && has_bar umount "$T/tty" &&
	! mountpoint -q "$M" &&
	zf_mount "$D" "$M" && head -c 12M /dev/urandom >"$M/f" &&
	$ZEROFS umount "$M" 2>"$T/err" && no_bar "$T/err"
'
test_expect_success 'gc of a dev-dir and fsck on a terminal: bars; on a file: none' '
	zf_mount "$D" "$M" && head -c 8M /dev/urandom >"$M/g" && head -c 8M /dev/urandom >"$M/h" &&
	$ZEROFS sync "$M" && rm "$M/g" && $ZEROFS sync "$M" && zf_umount "$M" &&
	tty $ZEROFS gc "$D" && cat -v "$T/tty" && has_bar gc "$T/tty" &&
	tty $ZEROFS fsck "$D" && cat -v "$T/tty" && has_bar fsck "$T/tty" &&
	grep -aq "fsck: .* of [0-9]* chunks" "$T/tty" &&
	$ZEROFS fsck "$D" >/dev/null 2>"$T/err" && no_bar "$T/err"
'
test_expect_success 'warmup on a terminal: a bar of bytes fetched and files; on a file: none' '
	echo "url file://$B" >"$D/remote.conf" && zf_mount "$D" "$M" &&
	head -c 6M /dev/urandom >"$M/w1" && head -c 6M /dev/urandom >"$M/w2" &&
	$ZEROFS sync "$M" && $ZEROFS evict "$M/w1" "$M/w2" >/dev/null &&
	tty $ZEROFS warmup "$M/w1" "$M/w2" && cat -v "$T/tty" && has_bar warmup "$T/tty" &&
	grep -aq "warmup: .* of [0-9.]* MiB, [0-9]/2 files" "$T/tty" &&
	$ZEROFS evict "$M/w1" >/dev/null && $ZEROFS warmup "$M/w1" 2>"$T/err" >/dev/null &&
	no_bar "$T/err" && zf_umount "$M"
'
test_expect_success 'mkfs --restore on a terminal: bars of the metadata and the chunks; on a file: none' '
	tty $ZEROFS mkfs --restore "file://$B" "$T/dev2" && cat -v "$T/tty" &&
	grep -aq "mkfs: restore: " "$T/tty" && has_bar "mkfs: restore" "$T/tty" &&
	$ZEROFS mkfs --restore "file://$B" "$T/dev3" 2>"$T/err" >/dev/null && no_bar "$T/err" &&
	zf_fsck_clean "$T/dev2"
'
test_done
