# tests/e2e/rgw.sh - a one-node Ceph cluster with its S3 gateway (RGW) on
# 127.0.0.1, the distributed object store the S3 tests also run against
#
# Sourced after lib.sh (normally through s3-server.sh, ZF_S3_SERVER=rgw).
# Debian's packages ceph-mon ceph-osd radosgw ceph-common (Ceph 16 on
# Debian 12), installed by apt-get when missing and this is root. One
# monitor, one OSD whose object store is memstore (objects in its memory:
# nothing written to disk, everything gone when it dies), and radosgw with
# the beast frontend; no manager, no systemd: plain background processes
# whose pids are in DIR/*.pid, configuration, logs and sockets all in DIR.
# Ready in about 15 s; about 35 + 150-300 + 150 MB of memory.
#
#   rgw_require             exit 77 (skip, with the reason) when the Ceph
#                           packages are missing and cannot be installed
#                           (not root, no apt-get, apt-get failed)
#   rgw_start DIR B...      start the cluster in DIR with buckets B... owned
#                           by user zf (key pair in RGW_KEY, RGW_SECRET);
#                           sets S3_ENDPOINT, S3_PORT, S3_LOG (the gateway's
#                           log: one access line per request, with the
#                           status); the EXIT trap of lib.sh kills it all
#   rgw_gateway_stop        stop the gateway only (the cluster keeps the
#                           data), as a server going down (idempotent)
#   rgw_gateway_start       start it again on the same endpoint, ready
#   rgw_kill                kill -9 every daemon (idempotent): nothing of
#                           a memstore is worth saving
#
# Pitfalls met on the way, each answered in the configuration below:
# with "auth ... = none" radosgw never reaches the monitor unless "ms mon
# client mode" allows crc; a single replica needs "osd pool default size
# = 1" and "mon allow pool size one"; the OSD's uuid given to "osd new" must
# be the one its --mkfs writes, or the monitor never marks it up; RGW
# creates about 8 pools, which at the default 32 placement groups each
# exceed the per-OSD limit (250); deleted data is freed only at RGW's gc
# pass, 2 hours after the delete by default; on a wrong secret RGW answers
# 403 SignatureDoesNotMatch with an empty <Message/> (and the aws CLI then
# fails with "argument of type 'NoneType' is not iterable" on some calls).

RGW_PKGS="ceph-mon ceph-osd radosgw ceph-common"
RGW_KEY=ZFTESTACCESSKEY0
RGW_SECRET=zftestsecretkey0zftestsecretkey0
RGW_DIR=

rgw_installed() {
	local c
	for c in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool; do
		command -v "$c" >/dev/null 2>&1 || return 1
	done
}

rgw_require() {
	rgw_installed && return 0
	if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
		echo "SKIP: Ceph is not installed and cannot be installed here (needs root and" \
			"apt-get): Debian packages $RGW_PKGS"
		exit 77
	fi
	(
		# tests run in parallel may both want to install: one at a time
		flock 9
		rgw_installed && exit 0
		echo "# installing $RGW_PKGS (apt-get)"
		{
			# (another apt-get may be running: wait for its lock, bounded)
			apt-get update -qq -o DPkg::Lock::Timeout=600 &&
				DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
					-o DPkg::Lock::Timeout=600 --no-install-recommends $RGW_PKGS
		} >"$T/apt.log" 2>&1
	) 9>"${TMPDIR:-/tmp}/zerofs-test-ceph-install.lock"
	if ! rgw_installed; then
		tail -n 20 "$T/apt.log" 2>/dev/null
		echo "SKIP: the Ceph packages ($RGW_PKGS) could not be installed with apt-get" \
			"(see its last lines above)"
		exit 77
	fi
}

# a free TCP port on 127.0.0.1 (the kernel's choice; free when this returns)
rgw_free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

rgw_uuid() {
	python3 -c 'import uuid; print(uuid.uuid4())'
}

# rgw_daemon NAME CMD...: CMD in the foreground (-f) in the background,
# its pid in $RGW_DIR/NAME.pid, its stderr in $RGW_DIR/log/NAME.err
rgw_daemon() {
	local name=$1
	shift
	"$@" -f </dev/null >/dev/null 2>"$RGW_DIR/log/$name.err" &
	echo $! >"$RGW_DIR/$name.pid"
	# no "Killed" notice from the shell when rgw_kill ends it
	disown $!
}

# rgw_ceph CMD ARGS...: a Ceph tool on this cluster, bounded to a minute
rgw_ceph() {
	local cmd=$1
	shift
	timeout 60 "$cmd" -c "$RGW_DIR/ceph.conf" "$@"
}

rgw_start() {
	local dir=$1 fsid osd_uuid mon_port i
	shift
	RGW_DIR=$dir
	mkdir -p "$dir/mon" "$dir/osd" "$dir/run" "$dir/log" || return 1
	cleanup_hooks="rgw_kill; $cleanup_hooks"
	fsid=$(rgw_uuid) && osd_uuid=$(rgw_uuid) && mon_port=$(rgw_free_port) &&
		S3_PORT=$(rgw_free_port) || return 1
	echo "$S3_PORT" >"$dir/port"
	cat >"$dir/ceph.conf" <<-EOF
	[global]
	fsid = $fsid
	mon host = v2:127.0.0.1:$mon_port
	public addr = 127.0.0.1
	auth cluster required = none
	auth service required = none
	auth client required = none
	ms mon client mode = crc secure
	keyring = /dev/null
	run dir = $dir/run
	admin socket = $dir/run/\$name.\$pid.asok
	log file = $dir/log/\$name.log
	mon data = $dir/mon/\$name
	osd data = $dir/osd/\$name
	# objects in the OSD's memory, up to 8 GiB (the tests write about 1.5)
	osd objectstore = memstore
	memstore device bytes = 8589934592
	osd pool default size = 1
	osd pool default min size = 1
	mon allow pool size one = true
	mon allow pool delete = true
	mon warn on pool no redundancy = false
	# about 8 RGW pools x 8 stay under the limit of 250 per OSD
	osd pool default pg num = 8
	osd pool default pgp num = 8
	osd pool default pg autoscale mode = off
	osd crush chooseleaf type = 0
	# the monitor's disk-space warnings and checks are about the host's
	# disk, not this cluster's (which is in memory)
	mon data avail crit = 0
	mon data avail warn = 0
	[client.rgw]
	rgw frontends = beast endpoint=127.0.0.1:$S3_PORT
	rgw data = $dir/rgw
	# free deleted objects within seconds, not after 2 hours
	rgw gc obj min wait = 1
	rgw gc processor period = 5
	EOF
	monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$dir/monmap" \
		>"$dir/log/setup.log" 2>&1 &&
		rgw_ceph ceph-mon --mkfs -i a --monmap "$dir/monmap" >>"$dir/log/setup.log" 2>&1 ||
		{ echo "cannot create the Ceph monitor:"; cat "$dir/log/setup.log"; return 1; }
	rgw_daemon mon ceph-mon -c "$dir/ceph.conf" -i a
	# osd new waits (bounded) for the monitor to be up
	mkdir -p "$dir/osd/osd.0" &&
		rgw_ceph ceph --connect-timeout 50 osd new "$osd_uuid" >>"$dir/log/setup.log" 2>&1 &&
		rgw_ceph ceph-osd -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$dir/log/setup.log" 2>&1 ||
		{ echo "cannot create the Ceph OSD:"; cat "$dir/log/setup.log" "$dir/log/mon.err"; return 1; }
	rgw_daemon osd ceph-osd -c "$dir/ceph.conf" -i 0
	rgw_gateway_start || return 1
	rgw_ceph radosgw-admin user create --uid zf --display-name "zerofs tests" \
		--access-key "$RGW_KEY" --secret "$RGW_SECRET" >>"$dir/log/setup.log" 2>&1 ||
		{ echo "cannot create the RGW user:"; cat "$dir/log/setup.log"; return 1; }
	for i in "$@"; do
		AWS_ACCESS_KEY_ID=$RGW_KEY AWS_SECRET_ACCESS_KEY=$RGW_SECRET AWS_CONFIG_FILE=/dev/null \
			AWS_SHARED_CREDENTIALS_FILE=/dev/null "$AWS" --endpoint-url "$S3_ENDPOINT" \
			--region us-east-1 s3api create-bucket --bucket "$i" >>"$dir/log/setup.log" 2>&1 ||
			{ echo "cannot create bucket '$i':"; cat "$dir/log/setup.log"; return 1; }
	done
}

# the gateway answers HTTP (any status) on its port
rgw_answers() {
	python3 -c '
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=5)
c.request("GET", "/"); c.getresponse()' "$S3_PORT" 2>/dev/null
}

rgw_gateway_start() {
	local i
	[ -n "$RGW_DIR" ] || RGW_DIR=$T/rgw
	S3_PORT=$(cat "$RGW_DIR/port") || return 1
	S3_LOG=$RGW_DIR/log/client.rgw.log
	rgw_daemon rgw radosgw -c "$RGW_DIR/ceph.conf" -n client.rgw
	# the gateway opens its port once it has reached the cluster and made
	# its pools, which waits for the OSD to be up: allow 3 minutes
	for i in $(seq 1 900); do
		rgw_answers && break
		kill -0 "$(cat "$RGW_DIR/rgw.pid")" 2>/dev/null || break
		sleep 0.2
	done
	if ! rgw_answers; then
		echo "the Ceph RGW gateway did not come up on 127.0.0.1:$S3_PORT:"
		tail -n 20 "$RGW_DIR"/log/*.err "$S3_LOG" "$RGW_DIR/log/osd.0.log" 2>/dev/null
		return 1
	fi
	S3_ENDPOINT=http://127.0.0.1:$S3_PORT
	export S3_ENDPOINT
}

# stop a daemon by its pid file and wait until it is gone (bounded)
rgw_stop_daemon() { # NAME SIGNAL
	local f=$RGW_DIR/$1.pid pid i
	[ -f "$f" ] || return 0
	pid=$(cat "$f")
	kill "-$2" "$pid" 2>/dev/null
	for i in $(seq 1 600); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
	rm -f "$f"
}

rgw_gateway_stop() {
	[ -n "$RGW_DIR" ] || RGW_DIR=$T/rgw
	rgw_stop_daemon rgw TERM
}

rgw_kill() {
	[ -n "$RGW_DIR" ] || return 0
	rgw_stop_daemon rgw KILL
	rgw_stop_daemon osd KILL
	rgw_stop_daemon mon KILL
}
