#!/usr/bin/env bash
# bad input said clearly, in one line with a non-zero exit: mkfs checks the
# bucket before it formats (scheme, parameters, credentials, a probe object
# written, read back and deleted) unless --no-check; fsck and gc of a
# mounted dev-dir name the mountpoint and the daemon's pid and say what to
# do; lease-break refuses while the holder lives on this host (--force);
# mount refuses a non-empty mountpoint unless -o nonempty; stats and fsck
# of a directory that is no dev-dir
. "$(dirname "$0")/lib.sh"
require_fuse
kill_daemons_at_exit

D=$T/dev M=$T/mnt
# one_line CODE FILE CMD...: CMD exits CODE and says exactly one line on stderr (in FILE)
one_line() {
	local code=$1 err=$2
	shift 2
	expect_code "$code" "$@" 2>"$err" >/dev/null || { cat "$err"; return 1; }
	cat "$err" && test "$(wc -l <"$err")" = 1
}

test_expect_success 'mkfs refuses a bucket of an unknown scheme, formatting nothing (exit 2)' '
	for u in gs://b/x ftp://host/x; do
		one_line 2 "$T/err" $ZEROFS mkfs --remote "$u" "$D" &&
		grep -q "^zerofs mkfs: .*$u.*unknown scheme (file://, s3://, fault:); nothing formatted" "$T/err" &&
		test ! -e "$D" || return 1
	done
'
test_expect_success 'mkfs refuses an unknown URL parameter, naming it and the known ones' '
	one_line 2 "$T/err" $ZEROFS mkfs --remote "s3://zf-b/x?endpoint=http://127.0.0.1:1&foo=1" "$D" &&
	grep -q "unknown parameter .foo=1. (known: endpoint=URL, region=NAME" "$T/err" &&
	one_line 2 "$T/err" $ZEROFS mkfs --remote "file://$T/b?foo=1" "$D" &&
	grep -q "file:// takes no parameters" "$T/err" && test ! -e "$D" && test ! -e "$T/b?foo=1"
'
test_expect_success 'mkfs of an s3 bucket without credentials says where they go (exit 1)' '
	mkdir "$T/home" &&
	one_line 1 "$T/err" env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_PROFILE \
		-u AWS_SHARED_CREDENTIALS_FILE HOME="$T/home" \
		$ZEROFS mkfs --remote "s3://zf-b/x?endpoint=http://127.0.0.1:1" "$D" &&
	grep -q "no credentials for .s3://zf-b.: set AWS_ACCESS_KEY_ID" "$T/err" && test ! -e "$D"
'
test_expect_success 'mkfs of a dead endpoint fails at once: connection refused (exit 1)' '
	AWS_ACCESS_KEY_ID=k AWS_SECRET_ACCESS_KEY=s one_line 1 "$T/err" \
		$ZEROFS mkfs --remote "s3://zf-b/x?endpoint=http://127.0.0.1:1" "$D" &&
	grep -q "cannot write a test object .zerofs-probe\..* connection refused" "$T/err" &&
	test ! -e "$D"
'
test_expect_success 'mkfs of a file:// directory that cannot be created (exit 1)' '
	echo file >"$T/afile" &&
	one_line 1 "$T/err" $ZEROFS mkfs --remote "file://$T/afile/bucket" "$D" &&
	grep -q "cannot create object store directory .*afile/bucket.: Not a directory; nothing formatted" "$T/err" &&
	one_line 1 "$T/err" $ZEROFS mkfs --remote "file:///proc/zerofs-nonesuch" "$D" &&
	test ! -e "$D"
'
test_expect_success 'mkfs --no-check formats whatever the bucket' '
	$ZEROFS mkfs --no-check --remote gs://b/x "$T/nocheck" | grep -q "object store: gs://b/x" &&
	test -f "$T/nocheck/superblock"
'
test_expect_success 'mkfs of a usable bucket: the probe object is gone afterwards' '
	$ZEROFS mkfs --remote "file://$T/bucket" "$D" | grep -q "object store: file://$T/bucket" &&
	test -d "$T/bucket" && test -z "$(find "$T/bucket" -name "zerofs-probe*")"
'
test_expect_success 'stats and fsck of a directory that is no dev-dir: one line each' '
	mkdir "$T/plain" &&
	one_line 1 "$T/err" $ZEROFS stats "$T/plain" &&
	grep -q "is neither a zerofs mountpoint nor a zerofs dev-dir" "$T/err" &&
	one_line 8 "$T/err" $ZEROFS fsck "$T/plain" && grep -q "is not a zerofs dev-dir" "$T/err" &&
	one_line 1 "$T/err" $ZEROFS stats "$T/nonesuch" && grep -q "No such file" "$T/err" &&
	one_line 8 "$T/err" $ZEROFS fsck "$T/nonesuch"
'
test_expect_success 'mount over a non-empty directory is refused; -o nonempty mounts anyway' '
	mkdir -p "$M" && echo hidden >"$M/old" &&
	one_line 1 "$T/err" $ZEROFS mount "$D" "$M" &&
	grep -q "mountpoint .* is not empty.*-o nonempty" "$T/err" && ! mountpoint -q "$M" &&
	zf_mount "$D" "$M" -o nonempty && test ! -e "$M/old" && zf_umount "$M" &&
	test "$(cat "$M/old")" = hidden && rm "$M/old"
'
test_expect_success 'fsck, gc and a second mount of a mounted dev-dir name the mountpoint, the pid, what to do' '
	zf_mount "$D" "$M" && pid=$(zf_daemon_pid "$D" "$M") && test -n "$pid" &&
	one_line 8 "$T/err" $ZEROFS fsck "$D" &&
	grep -qF "is mounted on '\''$M'\'', daemon pid $pid: unmount it first ('\''zerofs umount $M'\'')" "$T/err" &&
	one_line 8 "$T/err" $ZEROFS fsck "$M" && grep -q "is a zerofs mountpoint" "$T/err" &&
	one_line 1 "$T/err" $ZEROFS gc "$D" &&
	grep -qF "is mounted on '\''$M'\'', daemon pid $pid: run '\''zerofs gc $M'\''" "$T/err" &&
	$ZEROFS gc "$M" | grep -q "segments:" &&
	mkdir -p "$T/mnt2" && one_line 1 "$T/err" $ZEROFS mount "$D" "$T/mnt2" &&
	grep -qF "zerofs mount: '\''$D'\'' is mounted on '\''$M'\'', daemon pid $pid" "$T/err" &&
	! mountpoint -q "$T/mnt2"
'
test_expect_success 'lease-break refuses while the holder lives on this host; --force breaks it' '
	pid=$(zf_daemon_pid "$D" "$M") &&
	for i in $(seq 1 300); do grep -q "^holder .* pid $pid\$" "$T/bucket/lease" && break; sleep 0.1; done &&
	one_line 1 "$T/err" $ZEROFS lease-break "file://$T/bucket" &&
	grep -q "belongs to a live zerofs on this host: unmount it (.zerofs umount $M.); --force" "$T/err" &&
	grep -q "pid $pid, dev-dir .$D., until [0-9-]* [0-9:]* [A-Z]* (in [0-9]* s)" "$T/err" &&
	test -e "$T/bucket/lease" &&
	$ZEROFS lease-break --force "file://$T/bucket" | grep -q "removed" && test ! -e "$T/bucket/lease"
'
test_expect_success 'a lease of another host: the refused mount says when it ends, human-readable' '
	zf_umount "$M" &&
	printf "zerofs-lease 1\nid 0123456789abcdef0123456789abcdef\nholder elsewhere.example pid 4242\nexpires %s\ntoken 7\n" \
		$(($(date +%s) + 3600)) >"$T/bucket/lease" &&
	! $ZEROFS mount "$D" "$M" 2>"$T/err" && cat "$T/err" && ! mountpoint -q "$M" &&
	grep -q "in use by elsewhere.example pid 4242 until [0-9-]* [0-9:]* [A-Z]* (in 3[56][0-9][0-9] s)" "$T/err" &&
	$ZEROFS lease-break "file://$T/bucket" | grep -q "elsewhere.example pid 4242.* removed" &&
	$ZEROFS lease-break "file://$T/bucket" | grep -q "has no lease: nothing to break"
'
test_expect_success 'a dead holder on this host: lease-break frees the bucket without --force' '
	zf_mount "$D" "$M" && pid=$(zf_daemon_pid "$D" "$M") &&
	for i in $(seq 1 300); do grep -q "^holder .* pid $pid\$" "$T/bucket/lease" && break; sleep 0.1; done &&
	zf_kill9 "$D" "$M" && test -e "$T/bucket/lease" &&
	$ZEROFS lease-break "file://$T/bucket" | grep -q "removed" && test ! -e "$T/bucket/lease" &&
	zf_fsck_clean "$D"
'
test_done
