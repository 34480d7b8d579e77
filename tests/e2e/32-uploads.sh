#!/usr/bin/env bash
# segments go up several at a time, and a crash among them loses nothing.
#
# The bucket is a file:// directory behind fault: latency (each request
# takes 1.5 s), so uploads are slow enough to watch: 96 MiB of random data
# make six 16 MiB segments; zerofs stats must show more than one PUT in
# flight, and count the objects put. Then a daemon is killed (-9) while
# several PUTs are under way (its data fsynced before): the remount takes up where upload.state's
# mark (which only moves over segments up without a gap) says, the bucket
# ends up complete, a restore from it alone is byte-identical, fsck clean.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/remote-lib.sh"
require_fuse
require_cmds "Debian: rsync" rsync
D=$T/dev M=$T/mnt B=$T/bucket
kill_daemons_at_exit

# in_flight MNT: the PUTs under way now, from zerofs stats
in_flight() {
	"$ZEROFS" stats --bytes "$1" | sed -n 's/^uploaded: .* \([0-9][0-9]*\) PUTs in flight.*/\1/p'
}

# wait_in_flight MNT N: until at least N PUTs are under way at once (120 s)
wait_in_flight() {
	local i n
	for i in $(seq 1 1200); do
		n=$(in_flight "$1")
		[ "${n:-0}" -ge "$2" ] && { echo "$n PUTs in flight"; return 0; }
		sleep 0.1
	done
	echo "never $2 PUTs in flight:"
	"$ZEROFS" stats "$1"
	return 1
}

test_expect_success 'six segments to a slow bucket: several PUTs in flight at once' '
	"$ZEROFS" mkfs --remote "file://$B" "$D" >/dev/null &&
	echo "url fault:latency=1500;file://$B" >"$D/remote.conf" &&
	zf_mount "$D" "$M" -o max_delay=1 &&
	mkdir -p "$T/ref" && head -c 96M /dev/urandom >"$T/ref/big" &&
	cp -p "$T/ref/big" "$M/big" && touch -r "$M" "$T/ref" && wait_in_flight "$M" 2 &&
	"$ZEROFS" sync "$M" &&
	"$ZEROFS" stats --bytes "$M" | grep "^uploaded:" &&
	test "$("$ZEROFS" stats --bytes "$M" | sed -n "s/^uploaded: .*; \([0-9]*\) objects.*/\1/p")" -ge 7 &&
	test "$(in_flight "$M")" = 0 && zf_umount "$M" && zf_fsck_clean "$D"
'

test_expect_success 'kill -9 with PUTs in flight: the remount finishes, nothing is lost' '
	zf_mount "$D" "$M" -o max_delay=1 &&
	head -c 96M /dev/urandom >"$T/ref/big2" && cp -p "$T/ref/big2" "$M/big2" && touch -r "$M" "$T/ref" &&
	sync "$M/big2" && wait_in_flight "$M" 2 && zf_kill9 "$D" "$M" &&
	zf_mount "$D" "$M" && "$ZEROFS" sync "$M" && same_tree "$T/ref" "$M" && zf_umount "$M" &&
	zf_fsck_clean "$D"
'

test_expect_success 'the bucket alone restores it byte for byte' '
	cp -a "$B" "$T/b2" && "$ZEROFS" mkfs --restore "file://$T/b2" "$T/r" >/dev/null &&
	zf_mount "$T/r" "$T/rm" && same_tree "$T/ref" "$T/rm" && zf_umount "$T/rm" &&
	zf_fsck_clean "$T/r"
'

test_done
