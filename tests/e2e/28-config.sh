#!/usr/bin/env bash
# zerofs.conf: the system file < the user's file < $ZEROFS_CONFIG <
# ZEROFS_<KEY> < the command line, shown by 'zerofs config' with each
# setting's file:line or variable, and what a mount really uses (its
# cache_size budget and memory, from zerofs stats --json); mkfs's remote
# with {name}; a bad line stops mount, mkfs and config with file:line, exit
# 2; the zerofs.conf(5) man page renders and names every key.
. "$(dirname "$0")/lib.sh"
require_fuse
kill_daemons_at_exit

build=$(dirname "$ZEROFS")
D=$T/dev M=$T/mnt
SYS=$T/system.conf USR=$T/xdg/zerofs/zerofs.conf ENVF=$T/env.conf
# this test's layers only: not the machine's /etc/zerofs or ~/.config
for v in $(env | sed -n 's/^\(ZEROFS_[A-Z_]*\)=.*/\1/p'); do
	[ "$v" = ZEROFS_CONFIG ] || [ "$v" = ZEROFS_SYSTEM_CONFIG ] || unset "$v"
done
export ZEROFS_SYSTEM_CONFIG=$SYS XDG_CONFIG_HOME=$T/xdg
unset ZEROFS_CONFIG
mkdir -p "$T/xdg/zerofs"
cat >"$SYS" <<EOF
# the system's
cache_size = 8M
max_delay = 1
commit = 1
mem = 32M
remote = file://$T/buckets/{name}
EOF
cat >"$USR" <<EOF

cache_size = 16M
commit = 2
mem = 48M
EOF
cat >"$ENVF" <<EOF
commit = 3
EOF

# json_val KEY: the number after "KEY": in zerofs stats --json of $M
json_val() { $ZEROFS stats --json "$M" | sed -n "s/.*\"$1\": \([0-9]*\).*/\1/p"; }

test_expect_success 'zerofs config: each setting from its layer, with file:line or variable' '
	ZEROFS_CONFIG=$ENVF ZEROFS_MEM=64M $ZEROFS config >"$T/out" && cat "$T/out" &&
	grep -q "^# system file *$SYS$" "$T/out" && grep -q "^# user file *$USR$" "$T/out" &&
	grep -q "^# \$ZEROFS_CONFIG *$ENVF$" "$T/out" &&
	grep -q "^max_delay = 1 *# $SYS:3$" "$T/out" &&
	grep -q "^cache_size = 16M *# $USR:2$" "$T/out" &&
	grep -q "^commit = 3 *# $ENVF:1$" "$T/out" &&
	grep -q "^mem = 64M *# environment: ZEROFS_MEM$" "$T/out" &&
	grep -q "^remote = file://$T/buckets/{name} *# $SYS:6$" "$T/out" &&
	grep -q "^# not set (the built-in defaults): fetch_timeout, write_wait," "$T/out"
'
test_expect_success 'mkfs: the remote of zerofs.conf, {name} the dev-dir'\''s; --remote wins' '
	$ZEROFS mkfs "$D" >"$T/out" && cat "$T/out" &&
	grep -q "object store: file://$T/buckets/dev)" "$T/out" && test -d "$T/buckets/dev" &&
	$ZEROFS mkfs --remote none "$T/other" | grep -q "object store: none"
'
test_expect_success 'a mount: the user file over the system file, the command line over both' '
	zf_mount "$D" "$M" && test "$(json_val local_budget_bytes)" = $((16 << 20)) &&
	test "$(json_val memory_budget_bytes)" = $((48 << 20)) && zf_umount "$M" &&
	zf_mount "$D" "$M" -o cache_size=32M &&
	test "$(json_val local_budget_bytes)" = $((32 << 20)) && zf_umount "$M"
'
test_expect_success 'a mount: ZEROFS_CONFIG over the user file, ZEROFS_<KEY> over both' '
	echo "cache_size = 24M" >>"$ENVF" &&
	ZEROFS_CONFIG=$ENVF zf_mount "$D" "$M" &&
	test "$(json_val local_budget_bytes)" = $((24 << 20)) && zf_umount "$M" &&
	ZEROFS_CONFIG=$ENVF ZEROFS_CACHE_SIZE=40M zf_mount "$D" "$M" &&
	test "$(json_val local_budget_bytes)" = $((40 << 20)) && zf_umount "$M"
'
test_expect_success 'a bad line: mount, mkfs and config say file:line in one line, exit 2' '
	cp "$USR" "$T/usr.good" && echo "cache_size = 10X" >>"$USR" &&
	expect_code 2 $ZEROFS mount "$D" "$M" 2>"$T/err" && cat "$T/err" &&
	test "$(wc -l <"$T/err")" = 1 && ! mountpoint -q "$M" &&
	grep -q "^zerofs mount: $USR:5: invalid .cache_size=10X. (like 64M or 2G)$" "$T/err" &&
	expect_code 2 $ZEROFS config 2>"$T/err" && grep -q "^zerofs config: $USR:5: " "$T/err" &&
	expect_code 2 $ZEROFS mkfs "$T/new" 2>"$T/err" && grep -q "^zerofs mkfs: $USR:5: " "$T/err" &&
	test ! -e "$T/new" &&
	cp "$T/usr.good" "$USR" && echo "cach_size = 1G" >>"$SYS" &&
	expect_code 2 $ZEROFS config 2>"$T/err" &&
	grep -q "^zerofs config: $SYS:7: unknown key .cach_size. (see zerofs.conf(5))$" "$T/err" &&
	sed -i "\$d" "$SYS" &&
	ZEROFS_LOG_LEVEL=loud expect_code 2 $ZEROFS config 2>"$T/err" &&
	grep -q "^zerofs config: environment variable ZEROFS_LOG_LEVEL: invalid" "$T/err" &&
	ZEROFS_CONFIG=$T/nonesuch expect_code 2 $ZEROFS config 2>"$T/err" &&
	grep -q "cannot read the configuration file .$T/nonesuch.: No such file" "$T/err" &&
	$ZEROFS config >/dev/null
'
if [ -f "$build/man/zerofs.conf.5" ]; then
	test_expect_success 'zerofs.conf(5) renders without warnings and names every key' '
		groff -ww -man -Tutf8 -z "$build/man/zerofs.conf.5" 2>"$T/warn" &&
		cat "$T/warn" && test ! -s "$T/warn" &&
		MANWIDTH=80 man -l "$build/man/zerofs.conf.5" >"$T/man.txt" 2>"$T/warn" &&
		test ! -s "$T/warn" &&
		keys=$(ZEROFS_SYSTEM_CONFIG=/dev/null XDG_CONFIG_HOME=$T/none $ZEROFS config |
			sed -n "s/^# not set (the built-in defaults): //p" | tr -d ,) &&
		test "$(echo $keys | wc -w)" -ge 13 &&
		for k in $keys; do
			grep -q "\b$k = " "$T/man.txt" || { echo "zerofs.conf(5) lacks $k"; return 1; }
		done
	'
else
	echo "# skip: zerofs.conf(5) was not built (no scdoc; Debian package scdoc)"
fi
test_expect_success 'fsck clean' '
	zf_fsck_clean "$D"
'
test_done
