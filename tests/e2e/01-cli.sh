#!/usr/bin/env bash
# the zerofs command without a mount: arguments, mkfs, fsck, stats, corruption
. "$(dirname "$0")/lib.sh"

test_expect_success 'help and version' '
	$ZEROFS --help | grep -q "usage: zerofs" &&
	$ZEROFS --version | grep -q "^zerofs "
'
test_expect_success 'nonsense arguments fail with a message and exit 2' '
	expect_code 2 $ZEROFS &&
	expect_code 2 $ZEROFS frobnicate &&
	expect_code 2 $ZEROFS mkfs &&
	expect_code 2 $ZEROFS mkfs --zstd-level 99 "$T/x" &&
	$ZEROFS frobnicate 2>&1 | grep -q "unknown command"
'
test_expect_success 'mkfs formats an empty directory' '
	$ZEROFS mkfs "$T/dev" &&
	test -f "$T/dev/superblock" && test -d "$T/dev/meta" && test -d "$T/dev/seg"
'
test_expect_success 'sizes that would wrap or are negative are refused, not taken modulo 2^64' '
	mkdir -p "$T/mnt-bad" &&
	for o in mem=16777217T mem=-1 cache_size=18446744073709551616 cache_size=-5M; do
		expect_code 2 $ZEROFS mount -o "$o" "$T/dev" "$T/mnt-bad" 2>"$T/err" ||
			{ cat "$T/err"; return 1; }
		grep -q "invalid" "$T/err" || return 1
	done && ! mountpoint -q "$T/mnt-bad"
'
test_expect_success 'mkfs refuses a formatted or non-empty directory' '
	expect_code 1 $ZEROFS mkfs "$T/dev" &&
	$ZEROFS mkfs "$T/dev" 2>&1 | grep -q "already holds a zerofs" &&
	mkdir "$T/full" && echo x >"$T/full/file" &&
	expect_code 1 $ZEROFS mkfs "$T/full" &&
	$ZEROFS mkfs --force "$T/full" && test -f "$T/full/file"
'
test_expect_success 'fsck of a fresh filesystem is clean' '
	$ZEROFS fsck --verify-data "$T/dev" | grep -q clean
'
test_expect_success 'stats prints the counters' '
	$ZEROFS stats --bytes "$T/dev" | grep -q "^inodes: *1 "
'
test_expect_success 'fsck of something that is not a dev-dir is an operational error' '
	mkdir -p "$T/empty" &&
	expect_code 8 $ZEROFS fsck "$T/empty" &&
	$ZEROFS fsck "$T/empty" 2>&1 | grep -q "not a zerofs dev-dir"
'
test_expect_success 'a corrupt superblock is refused with a clear message' '
	cp -a "$T/dev" "$T/bad" &&
	python3 -c "import sys; f=open(sys.argv[1],\"r+b\"); f.seek(30); b=f.read(1); f.seek(30); f.write(bytes([b[0]^0x40]))" "$T/bad/superblock" &&
	expect_code 4 $ZEROFS fsck "$T/bad" &&
	$ZEROFS fsck "$T/bad" 2>&1 | grep -q "corrupt superblock"
'
test_expect_success 'a damaged checkpoint is reported as errors (exit 4)' '
	cp -a "$T/dev" "$T/bad2" &&
	ck=$(ls "$T/bad2/meta"/ckpt.* | head -n1) &&
	python3 -c "import sys; f=open(sys.argv[1],\"r+b\"); f.seek(100); b=f.read(1); f.seek(100); f.write(bytes([b[0]^0x40]))" "$ck" &&
	expect_code 4 $ZEROFS fsck "$T/bad2" &&
	$ZEROFS fsck "$T/bad2" 2>&1 | grep -q "^problem: metadata: .ckpt\.[0-9a-f]*. offset 64: record 1 (STATE) is damaged"
'
test_done
