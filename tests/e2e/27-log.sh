#!/usr/bin/env bash
# Logs are never lost: -o log=FILE gets the daemon's lines (time-stamped,
# at -o log_level's level and above); -o log=stderr keeps the mount
# command's stderr after daemonizing; a daemonized mount where syslog is
# not reachable (no /dev/log: made so in a private mount namespace) logs to
# <dev-dir>/zerofs.log and says so; an upload failure (the bucket offline)
# is in the log and in zerofs stats; bad values are refused.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/remote-lib.sh"
require_fuse
require_cmds 'Debian: util-linux' unshare
kill_daemons_at_exit

D=$T/dev M=$T/mnt L=$T/zf.log
# the bucket behind net/fault.c: unreachable while $T/outage exists
$ZEROFS mkfs "$D" >/dev/null && echo "url fault:outage_file=$T/outage;file://$T/dev.bucket" >"$D/remote.conf"

# wait_log FILE PATTERN: FILE has a line matching PATTERN within 30 s
wait_log() {
	local i
	for i in $(seq 1 300); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "no '$2' in $1:"
	cat "$1"
	return 1
}

test_expect_success 'log=FILE,log_level=info: the daemon'\''s lines, stamped, up to its unmount' '
	zf_mount "$D" "$M" -o "log=$L,log_level=info" && echo x >"$M/f" &&
	wait_log "$L" "^[0-9-]* [0-9:]* zerofs\[[0-9]*\]: info: mounted .$D. on .$M." &&
	zf_umount "$M" && wait_log "$L" "info: unmounted .$D. cleanly"
'
test_expect_success 'the default level (warn): no info lines; offline, the upload failures are there' '
	touch "$T/outage" && : >"$L" && zf_mount "$D" "$M" -o "log=$L" &&
	wait_log "$L" "zerofs\[[0-9]*\]: error: upload to .* failed: Connection refused (retrying" &&
	! grep -q "info:" "$L"
'
test_expect_success 'the offline warning reaches zerofs stats (and --json) too' '
	$ZEROFS stats "$M" >"$T/stats" && cat "$T/stats" &&
	grep -q "^bucket: *offline since [0-9-]* [0-9:]*: Connection refused" "$T/stats" &&
	$ZEROFS stats --json "$M" | grep -q "\"offline_reason\": \"Connection refused" &&
	rm "$T/outage" && zf_umount "$M"
'
test_expect_success 'log=stderr: the mount command'\''s stderr keeps the daemon'\''s lines' '
	zf_mount "$D" "$M" -o log=stderr,log_level=info 2>"$T/err" && zf_umount "$M" &&
	wait_log "$T/err" "^zerofs: info: unmounted .$D. cleanly"
'
if private_ns_ok; then
test_expect_success 'no /dev/log: a daemonized mount logs to <dev-dir>/zerofs.log and says so' '
	rm -f "$D/zerofs.log" && touch "$T/outage" &&
	unshare -m --propagation private env D="$D" M="$M" T="$T" ZEROFS="$ZEROFS" sh -euc "
		if [ -e /dev/log ] || [ -L /dev/log ]; then mount --bind /dev/null /dev/log; fi
		\$ZEROFS mount \"\$D\" \"\$M\" 2>\"\$T/err\"
		for i in \$(seq 1 300); do
			grep -q \"upload to .* failed\" \"\$D/zerofs.log\" 2>/dev/null && break
			sleep 0.1
		done
		rm \"\$T/outage\"
		\$ZEROFS umount \"\$M\"
	" && cat "$T/err" &&
	grep -q "^zerofs: warning: syslog is not reachable (no /dev/log): logging to .$D/zerofs.log." "$T/err" &&
	grep -q "zerofs\[[0-9]*\]: error: upload to .* failed: Connection refused" "$D/zerofs.log"
'
else
	skip_step 'no /dev/log: a daemonized mount logs to <dev-dir>/zerofs.log and says so' 'no private mount namespace here: / is not a mount point (a chroot)'
fi
test_expect_success 'bad log options: said, and nothing mounted' '
	expect_code 2 $ZEROFS mount -o log_level=loud "$D" "$M" 2>"$T/err" &&
	grep -q "^zerofs mount: invalid .log_level=loud. (error, warn, info or debug)" "$T/err" &&
	expect_code 2 $ZEROFS mount -o log= "$D" "$M" 2>"$T/err" &&
	grep -q "invalid .log=. (syslog, stderr or a file)" "$T/err" &&
	expect_code 1 $ZEROFS mount -o log=/proc/nonesuch/zf.log "$D" "$M" 2>"$T/err" &&
	grep -q "cannot open the log file ./proc/nonesuch/zf.log." "$T/err" && ! mountpoint -q "$M"
'
test_expect_success 'fsck clean; no sanitizer reports' '
	zf_fsck_clean "$D" && no_san_reports
'
test_done
