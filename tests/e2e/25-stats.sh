#!/usr/bin/env bash
# zerofs stats in its three forms, of a mount and of an unmounted dev-dir:
# sizes for people by default (KiB, MiB), --bytes plain byte counts (what
# scripts grep), --json one object that python parses; no ratio of nothing
# (no data, no fetches, a store too small for its headers) and no budget
# line without a budget
. "$(dirname "$0")/lib.sh"
require_fuse
require_cmds "Debian: python3" python3
kill_daemons_at_exit

D=$T/dev M=$T/mnt
q="'"  # python's quote, in the tuples it prints
# json FILE EXPR: python's value of EXPR with j the parsed JSON object of FILE
json() { python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

test_expect_success 'a fresh dev-dir: sizes with units, no ratios of nothing' '
	$ZEROFS mkfs "$D" >/dev/null && $ZEROFS stats "$D" >"$T/st" && cat "$T/st" &&
	grep -q "^logical bytes: *0 B$" "$T/st" &&
	grep -q "^dedup ratio: *- (no data yet)$" "$T/st" &&
	grep -q "^compression ratio: *- (nothing stored yet)$" "$T/st" &&
	grep -q "^memory: *256.0 MiB budget: buffers 0 B of 32.0 MiB" "$T/st" &&
	$ZEROFS stats --bytes "$D" | grep -q "^logical bytes: *0$"
'
test_expect_success 'stats --json of an unmounted dev-dir: what python reads' '
	$ZEROFS stats --json "$D" >"$T/j" && cat "$T/j" &&
	test "$(json "$T/j" "j[\"source\"]")" = dev-dir &&
	test "$(json "$T/j" "j[\"inodes\"]")" = 1 &&
	test "$(json "$T/j" "j[\"dedup_ratio\"], j[\"compression_ratio\"]")" = "(None, None)" &&
	test "$(json "$T/j" "sorted(j[\"bucket\"])")" = "[${q}pending_bytes$q, ${q}pending_log_records$q, ${q}pending_segments$q]"
'
test_expect_success 'of a mount: sizes for people, no hit ratio without fetches, no budget said so' '
	zf_mount "$D" "$M" && head -c 5000 /dev/urandom >"$M/small" && $ZEROFS sync "$M" &&
	$ZEROFS stats "$M" >"$T/st" && cat "$T/st" &&
	grep -q "^logical bytes: *4.9 KiB$" "$T/st" &&
	grep -q "^fetch cache: *0 hits, 0 misses$" "$T/st" &&
	grep -q "^dev-dir data: *[0-9.]* [KM]iB (no budget: -o cache_size is not set)$" "$T/st" &&
	grep -q "^compression ratio: *- (too little stored to tell: [0-9.]* KiB raw in [0-9.]* KiB)$" "$T/st" &&
	grep -q "^bucket: *online$" "$T/st" &&
	$ZEROFS stats --bytes "$M" >"$T/st" && grep -q "^logical bytes: *5000$" "$T/st" &&
	grep -q "^pending upload: *0 bytes (0 segments, 0 log records)$" "$T/st"
'
test_expect_success 'stats --json of a mount (by mountpoint or dev-dir): python reads its numbers' '
	$ZEROFS stats --json "$M" >"$T/j" && cat "$T/j" &&
	test "$(json "$T/j" "j[\"source\"], j[\"logical_bytes\"], j[\"files\"]")" = "(${q}mount$q, 5000, 1)" &&
	test "$(json "$T/j" "j[\"bucket\"][\"online\"], j[\"bucket\"][\"offline_since\"]")" = "(True, None)" &&
	test "$(json "$T/j" "j[\"bucket\"][\"local_budget_bytes\"], j[\"bucket\"][\"fetch_cache_hit_ratio\"]")" = "(None, None)" &&
	test "$(json "$T/j" "j[\"bucket\"][\"pending_bytes\"]")" = 0 &&
	$ZEROFS stats --json "$D" >"$T/j2" && test "$(json "$T/j2" "j[\"source\"]")" = mount
'
test_expect_success 'with a budget and compressible data: the budget and a compression ratio' '
	zf_umount "$M" && zf_mount "$D" "$M" -o cache_size=64M &&
	yes "zerofs compresses this line well" | head -c 4M >"$M/text" && $ZEROFS sync "$M" &&
	$ZEROFS stats "$M" >"$T/st" && cat "$T/st" &&
	grep -q "^dev-dir data: *[0-9.]* [KM]iB of 64.0 MiB budget (cache_size)$" "$T/st" &&
	grep -Eq "^compression ratio: *([2-9]|[1-9][0-9]+)\.[0-9]{2}$" "$T/st" &&
	$ZEROFS stats --json "$M" >"$T/j" &&
	test "$(json "$T/j" "j[\"bucket\"][\"local_budget_bytes\"]")" = 67108864 &&
	test "$(json "$T/j" "j[\"compression_ratio\"] > 2")" = True
'
test_expect_success 'a mount without a bucket: "bucket": null; a bad option: exit 2' '
	$ZEROFS mkfs --remote none "$T/dev2" >/dev/null && zf_mount "$T/dev2" "$T/mnt2" &&
	$ZEROFS stats --json "$T/mnt2" >"$T/j" && test "$(json "$T/j" "j[\"bucket\"]")" = None &&
	zf_umount "$T/mnt2" && $ZEROFS stats --json "$T/dev2" >"$T/j" &&
	test "$(json "$T/j" "j[\"bucket\"], j[\"source\"]")" = "(None, ${q}dev-dir$q)" &&
	expect_code 2 $ZEROFS stats --yaml "$D" 2>/dev/null
'
test_expect_success 'unmounted: what is pending in all three forms; fsck clean' '
	zf_umount "$M" && $ZEROFS stats "$D" | grep -q "^pending upload: *0 B (0 segments" &&
	$ZEROFS stats --bytes "$D" | grep -q "^logical bytes: *4199304$" &&
	$ZEROFS stats --json "$D" >"$T/j" && test "$(json "$T/j" "j[\"logical_bytes\"]")" = 4199304 &&
	zf_fsck_clean "$D"
'
test_done
