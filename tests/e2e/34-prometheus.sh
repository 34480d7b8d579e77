#!/usr/bin/env bash
# Prometheus metrics: 'zerofs stats --prometheus' of an unmounted dev-dir
# and of a mount, and a mount's -o metrics_file= (node_exporter's textfile
# collector), each accepted by promtool (Debian: prometheus) as the text
# exposition format with its naming rules; the values move with what is
# written; the file is replaced whole (never seen half written) and goes
# away with the mount.
. "$(dirname "$0")/lib.sh"
require_fuse
require_cmds "Debian: prometheus (promtool)" promtool
kill_daemons_at_exit

D=$T/dev M=$T/mnt P=$T/metrics/zerofs.prom
# value NAME FILE: the sample of metric NAME in FILE
value() { sed -n "s/^$1 //p" "$2"; }
# promtool's check: exit 0 and no complaint (it lists lint problems on stdout)
check() { promtool check metrics <"$1" >"$T/lint" 2>&1 && cat "$T/lint" && test ! -s "$T/lint"; }

test_expect_success 'stats --prometheus of a dev-dir: promtool accepts it; HELP and TYPE for each' '
	$ZEROFS mkfs "$D" >/dev/null && $ZEROFS stats --prometheus "$D" >"$T/p0" && check "$T/p0" &&
	test "$(value zerofs_mounted "$T/p0")" = 0 && test "$(value zerofs_inodes "$T/p0")" = 1 &&
	test "$(grep -c "^# HELP zerofs_" "$T/p0")" = "$(grep -c "^zerofs_" "$T/p0")" &&
	test "$(grep -c "^# TYPE zerofs_" "$T/p0")" = "$(grep -c "^zerofs_" "$T/p0")" &&
	grep -q "^# TYPE zerofs_commits_total counter$" "$T/p0" &&
	grep -q "^# TYPE zerofs_logical_bytes gauge$" "$T/p0" &&
	! grep "^# TYPE" "$T/p0" | grep -v "_total counter\$" | grep -q " counter\$"
'
test_expect_success 'of a mount: promtool accepts it; bytes and counters move after a write and a sync' '
	mkdir -p "$T/metrics" &&
	zf_mount "$D" "$M" -o metrics_file=$P,metrics_interval=1 &&
	$ZEROFS stats --prometheus "$M" >"$T/p1" && check "$T/p1" &&
	test "$(value zerofs_mounted "$T/p1")" = 1 &&
	test "$(value zerofs_bucket_online "$T/p1")" = 1 &&
	head -c 3000000 /dev/urandom >"$M/f" && $ZEROFS sync "$M" &&
	$ZEROFS stats --prometheus "$M" >"$T/p2" && check "$T/p2" &&
	test "$(value zerofs_logical_bytes "$T/p2")" = 3000000 &&
	test "$(value zerofs_files "$T/p2")" = 1 &&
	test "$(value zerofs_bucket_uploaded_bytes_total "$T/p2")" -gt \
		"$(value zerofs_bucket_uploaded_bytes_total "$T/p1")" &&
	test "$(value zerofs_commits_total "$T/p2")" -gt "$(value zerofs_commits_total "$T/p1")" &&
	test "$(value zerofs_bucket_pending_bytes "$T/p2")" = 0
'
test_expect_success 'metrics_file: promtool accepts it, it follows the mount, it goes with the unmount' '
	for i in $(seq 1 600); do
		test "$(value zerofs_logical_bytes "$P" 2>/dev/null)" = 3000000 && break
		sleep 0.1
	done &&
	check "$P" && test "$(value zerofs_files "$P")" = 1 && test ! -e "$P.tmp" &&
	zf_umount "$M" && test ! -e "$P" && zf_fsck_clean "$D"
'
test_expect_success 'a bad metrics option is refused, naming it (exit 2)' '
	expect_code 2 $ZEROFS mount -o metrics_file=rel/path "$D" "$M" 2>"$T/err" &&
	grep -q "metrics_file=rel/path.*absolute path" "$T/err" &&
	expect_code 2 $ZEROFS mount -o metrics_interval=0 "$D" "$M" 2>"$T/err" &&
	grep -q "metrics_interval=0" "$T/err"
'
test_done
