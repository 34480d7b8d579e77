#!/usr/bin/env bash
# bench/bench_s3.sh - zerofs on an S3 bucket next to s3fs and rclone mount
# (--vfs-cache-mode full), all three against the SAME local S3 server in the
# SAME run: npm's @20minutes/s3rver started as tests/e2e/s3rver.sh does it
# (that file is sourced; the server must be in ~/.cache/zerofs-test-npm or
# installable with npm), one bucket per system. A benchmark: it prints
# figures, it asserts nothing about time.
#
#   bench/bench_s3.sh [ZEROFS_BINARY]    (root; s3fs and rclone are installed
#                                         with apt-get when missing)
#   env: ZF_BENCH_S3_MB (512)    data copied in: one random file of half of it
#                                and a tree of files for the rest (half
#                                compressible text, half random; 1 KiB-8 MiB)
#        ZF_BENCH_S3_RATE (8)    MB/s of the steady writer of (3)
#        ZF_BENCH_S3_LAG_S (30)  how long the steady writer runs
#        ZF_BENCH_S3_DIR         scratch directory (default /var/tmp/zf-bench-s3)
#
# What is measured, for each system:
#  (1) write, then durable: `cp` of the big file and `cp -r` of the tree into
#      the mount, then the time until the bucket holds everything. zerofs:
#      `zerofs sync` returns (it returns once all is in the bucket; pending
#      upload 0 is checked). s3fs and rclone: every file is an object, so the
#      bucket is watched directly: the clock stops when every file's object is
#      complete in s3rver's data directory (object file of the right size and
#      its metadata file, which s3rver writes after the data, before it
#      answers the PUT / CompleteMultipartUpload). s3fs uploads in close(), so
#      this is ~0 s after cp; rclone uploads after close, in the background
#      (run with --vfs-write-back 0s here: uploads start at close, not after
#      its default 5 s, since zerofs is told to upload now by its sync).
#      MB/s = bytes of file data / seconds, 1 MB = 10^6 bytes.
#  (2) cold read: nothing of the data on the local side. zerofs: a fresh
#      dev-dir restored from the bucket (`zerofs mkfs --restore`: metadata
#      only; every data byte comes from ranged GETs, `fetched` in the stats is
#      printed), restore time shown apart; s3fs: a fresh mount (no use_cache);
#      rclone: a fresh mount on an empty --cache-dir. Then `dd bs=1M` of the
#      big file and `cat` of every file of the tree (find order), each timed;
#      the data is compared with the source afterwards, untimed.
#  (3) recovery-point lag while writing: a writer puts 4 MiB files of random
#      data at a steady ZF_BENCH_S3_RATE MB/s for ZF_BENCH_S3_LAG_S s (256
#      KiB writes, paced). zerofs: `zerofs stats` sampled every 0.5 s, max of
#      "recovery point" (age of the oldest byte not in the bucket), until it
#      is back to 0. s3fs and rclone (their defaults, rclone's 5 s
#      write-back included): for every file, time from its first write until
#      its object is complete in the bucket; the max over files is the same
#      quantity (the largest age a byte reached before it was in the bucket).
#      zerofs runs with its defaults too (max_delay=10, commit=5). Its
#      "recovery point" counts from the last moment the bucket held
#      everything, which overstates the age while writes never stop, so the
#      byte age is also derived from "pending upload" in the same samples
#      (see zflag below) and printed as a second row.
#
# Two accommodations of s3rver bugs, the same for all three systems: the
# server runs with --allow-mismatched-signatures (it mis-signs "/bucket/",
# which s3fs lists with; see below), and every directory of the tree holds a
# file of its own (its delimiter listing misses directories that hold only
# subdirectories, which rclone relies on).
set -euo pipefail
ZEROFS=$(realpath "${1:-./zerofs}")
MB=${ZF_BENCH_S3_MB:-512}
RATE=${ZF_BENCH_S3_RATE:-8}
LAG_S=${ZF_BENCH_S3_LAG_S:-30}
W=${ZF_BENCH_S3_DIR:-/var/tmp/zf-bench-s3}
HERE=$(cd "$(dirname "$0")" && pwd)
[ -x "$ZEROFS" ] || { echo "usage: $0 ZEROFS_BINARY (not executable: $ZEROFS)" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "$0: run as root (mounts, apt-get)" >&2; exit 2; }

# --- s3fs and rclone from Debian when missing ---
need=()
command -v s3fs >/dev/null || need+=(s3fs)
command -v rclone >/dev/null || need+=(rclone)
if [ ${#need[@]} -gt 0 ]; then
	echo "# installing ${need[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# --- the S3 server, as the end-to-end tests start it (one flag more, below) ---
# shellcheck disable=SC2034 # s3rver_start adds to it (tests/e2e/lib.sh convention)
cleanup_hooks=""
# shellcheck source=../tests/e2e/s3rver.sh
. "$HERE/../tests/e2e/s3rver.sh"

S3FS_PID='' RCLONE_PID='' SAMPLER_PID='' POLLER_PID=''
cleanup() {
	set +e
	for p in $SAMPLER_PID $POLLER_PID; do kill "$p" 2>/dev/null; done
	for m in "$W"/mnt-*; do
		mountpoint -q "$m" 2>/dev/null || continue
		case $m in
		*-zerofs) "$ZEROFS" umount "$m" 2>/dev/null || umount -l "$m" ;;
		*) umount "$m" 2>/dev/null || umount -l "$m" ;;
		esac
	done
	for p in $S3FS_PID $RCLONE_PID; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	s3rver_stop
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM
for m in "$W"/mnt-*; do mountpoint -q "$m" 2>/dev/null && umount -l "$m"; done
rm -rf "$W" && mkdir -p "$W"
cd "$W"

s3rver_install
# s3rver_start unchanged, but node gets one more server flag. s3rver
# canonicalises a bucket-level path "/bucket/" as "/bucket" when it checks a
# SigV4 signature (middleware/authentication.js), while S3 and s3fs sign the
# path as sent: every listing s3fs makes ("GET /bucket/?delimiter=/...") is a
# 403 SignatureDoesNotMatch and s3fs cannot mount at all. With
# --allow-mismatched-signatures the server still computes and compares every
# signature (same work per request for all three systems) but lets a
# well-formed mismatched one through.
printf '#!/bin/sh\nexec "%s" "$@" --allow-mismatched-signatures\n' "$S3RVER_NODE" >"$W/node"
chmod +x "$W/node"
S3RVER_NODE=$W/node
s3rver_start "$W/s3" zf-bench s3fs-bench rclone-bench
echo "# s3rver $S3RVER_PKG_VERSION on $S3_ENDPOINT, data in $W/s3"

export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=$W/aws-config AWS_SHARED_CREDENTIALS_FILE=$W/aws-credentials
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3
ZF_URL="s3://zf-bench/fs?endpoint=$S3_ENDPOINT"
ZF_LAG_URL="s3://zf-bench/lag?endpoint=$S3_ENDPOINT"
printf 'S3RVER:S3RVER\n' >"$W/s3fs.passwd" && chmod 600 "$W/s3fs.passwd"
cat >"$W/rclone.conf" <<EOF
[s3b]
type = s3
provider = Other
access_key_id = S3RVER
secret_access_key = S3RVER
endpoint = $S3_ENDPOINT
region = us-east-1
force_path_style = true
no_check_bucket = true
EOF

# --- helpers in Python: data, bucket watcher, steady writer ---
cat >"$W/h.py" <<'PY'
import os, random, sys, time
cmd = sys.argv[1]

def obj_path(bdir, key):
    d, _, name = key.rpartition("/")
    return os.path.join(bdir, d, name + "._S3rver_%s")

if cmd == "gen":            # root bytes: the tree
    root, target = sys.argv[2], int(sys.argv[3])
    rnd = random.Random(42)
    vocab = ["".join(rnd.choice("etaoinshrdlucmfwyp") for _ in range(rnd.randint(2, 9)))
             for _ in range(20000)]
    total = n = 0
    # every directory holds files of its own, not only subdirectories:
    # s3rver's delimiter listing walks one directory level below the prefix
    # only, so "tree/" (or "tree/d00/") would not be listed at all if no
    # object sat right in it, and rclone would not see the tree
    while total < target:
        i, dk = n % 20, "d%02d" % (n // 400)
        d = os.path.join(root, dk) if i == 0 else root if n == 1 else \
            os.path.join(root, dk, "s%02d" % (n // 20 % 20))
        os.makedirs(d, exist_ok=True)
        r = rnd.random()
        size = rnd.randint(1 << 10, 32 << 10) if r < 0.70 else \
            rnd.randint(64 << 10, 1 << 20) if r < 0.97 else rnd.randint(2 << 20, 8 << 20)
        size = min(size, target - total) or 1
        if rnd.random() < 0.5:  # text of its own (no file shares data with another)
            data = " ".join(rnd.choices(vocab, k=size // 5 + 2)).encode()[:size]
        else:
            data = os.urandom(size)
        with open(os.path.join(d, "f%05d.dat" % n), "wb") as f:
            f.write(data)
        total += size
        n += 1
    print("%d %d" % (n, total))

elif cmd == "manifest":     # root: "key size" for every file under root
    root = sys.argv[2]
    for dp, dns, fns in os.walk(root):
        for fn in fns:
            p = os.path.join(dp, fn)
            print(os.path.relpath(p, root), os.path.getsize(p))

elif cmd == "watch":        # bucketdir manifest out timeout: until all objects are complete
    bdir, man, out, timeout = sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
    want = {}
    for line in open(man):
        k, s = line.rsplit(" ", 1)
        want[k] = int(s)
    t0, done = time.time(), {}
    with open(out, "w") as o:
        while want:
            now = time.time()
            for k in list(want):
                p = obj_path(bdir, k)
                try:
                    if os.stat(p % "object").st_size == want[k] and os.path.exists(p % "metadata.json"):
                        done[k] = now
                        o.write("%s %.3f\n" % (k, now))
                        del want[k]
                except FileNotFoundError:
                    pass
            o.flush()
            if not want:
                break
            if now - t0 > timeout:
                print("watch: %d objects still missing after %.0f s, e.g. %s" %
                      (len(want), timeout, sorted(want)[:3]), file=sys.stderr)
                sys.exit(1)
            time.sleep(0.1)

elif cmd == "steady":       # dir nfiles fsize MB/s log: paced writer
    d, nfiles, fsize, rate, log = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), \
        float(sys.argv[5]) * 1e6, sys.argv[6]
    os.makedirs(d, exist_ok=True)
    blk, t0, written = 256 << 10, time.time(), 0
    with open(log, "w") as lg:
        for i in range(nfiles):
            name = os.path.join(d, "f%04d" % i)
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            first = None
            for off in range(0, fsize, blk):
                delay = t0 + written / rate - time.time()
                if delay > 0:
                    time.sleep(delay)
                if first is None:
                    first = time.time()
                os.write(fd, os.urandom(min(blk, fsize - off)))
                written += min(blk, fsize - off)
            os.close(fd)
            lg.write("%s %.3f %.3f\n" % (os.path.basename(name), first, time.time()))
            lg.flush()
    el = time.time() - t0
    print("%d bytes in %.1f s (%.1f MB/s)" % (written, el, written / el / 1e6))

elif cmd == "lag":          # writerlog watchout prefix: max age of a byte before it was in the bucket
    first = {}
    for line in open(sys.argv[2]):
        k, f, c = line.split()
        first[sys.argv[4] + k] = float(f)
    lags = []
    for line in open(sys.argv[3]):
        k, t = line.split()
        lags.append(float(t) - first[k])
    print("%.1f %.1f %d" % (max(lags), sum(lags) / len(lags), len(lags)))

elif cmd == "zflag":        # writerlog samples fsize: the same age for zerofs, from "pending upload"
    # the writer's bytes are numbered in order; file i holds [i*F, (i+1)*F),
    # written evenly from its first write to its close. A sample (t, pending)
    # says bytes up to W(t) - pending are in the bucket, so the oldest byte
    # not there was written at T(W(t) - pending). Random data: stored bytes
    # ~ written bytes (log records are a few KB more: a slight overestimate).
    F = int(sys.argv[4])
    fl = [tuple(map(float, l.split()[1:])) for l in open(sys.argv[2])]
    def written(t):
        w = 0.0
        for i, (a, b) in enumerate(fl):
            if t >= b:
                w = (i + 1) * F
            elif t > a:
                return i * F + F * (t - a) / (b - a)
            else:
                break
        return w
    def time_of(pos):
        i = min(int(pos // F), len(fl) - 1)
        a, b = fl[i]
        return a + (b - a) * min(1.0, (pos - i * F) / F)
    end, ages, during, pmax = fl[-1][1], [0.0], [0.0], 0
    for l in open(sys.argv[3]):
        t, rp, p = l.split()
        t, p = float(t), int(p)
        pmax = max(pmax, p)
        if p > 0 and t >= fl[0][0]:
            age = t - time_of(max(0.0, written(t) - p))
            ages.append(age)
            if t <= end:
                during.append(age)
    print("%.1f %.1f %d" % (max(ages), max(during), pmax))
PY
h() { python3 "$W/h.py" "$@"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
zf_field() { "$ZEROFS" stats --bytes "$1" | sed -n "s/^$2: *\([0-9.][0-9.]*\).*/\1/p"; }

# --- data ---
BIG_MB=$((MB / 2))
mkdir -p "$W/src"
head -c $((BIG_MB << 20)) /dev/urandom >"$W/src/big"
read -r NFILES TREE_BYTES < <(h gen "$W/src/tree" $(((MB - BIG_MB) << 20)))
BIG_BYTES=$(stat -c %s "$W/src/big")
ALL_BYTES=$((BIG_BYTES + TREE_BYTES))
h manifest "$W/src" | sort >"$W/manifest"
NDIRS=$(find "$W/src/tree" -type d | wc -l)
echo "# data: big random file $BIG_BYTES bytes + tree of $NFILES files in $NDIRS directories," \
	"$TREE_BYTES bytes (half text, half random)"
find "$W/src" -type f -print0 | xargs -0 cat >/dev/null	# the source is read from RAM by all
sync

declare -A R	# R[figure,system]

mount_sys() { # system mountpoint [extra options]: mount it, fresh
	local s=$1 m=$2
	shift 2
	mkdir -p "$m"
	case $s in
	zerofs) "$ZEROFS" mount "$@" "$ZF_DEV" "$m" ;;
	s3fs)
		s3fs s3fs-bench "$m" -f -o "url=$S3_ENDPOINT,use_path_request_style,passwd_file=$W/s3fs.passwd" \
			"$@" >>"$W/s3fs.log" 2>&1 &
		S3FS_PID=$! ;;
	rclone)
		rm -rf "$W/rc-cache" && mkdir -p "$W/rc-cache"
		# (rclone 1.60 fails on AWS_CA_BUNDLE with a plain-http endpoint:
		# "LoadCustomCABundleError ... transport unsupported type")
		env -u AWS_CA_BUNDLE rclone mount --config "$W/rclone.conf" s3b:rclone-bench "$m" --vfs-cache-mode full \
			--cache-dir "$W/rc-cache" --log-file "$W/rclone.log" "$@" &
		RCLONE_PID=$! ;;
	esac
	local i
	for i in $(seq 1 300); do
		mountpoint -q "$m" && return 0
		sleep 0.1
	done
	echo "$s did not mount on $m" >&2
	return 1
}
umount_sys() { # system mountpoint
	case $1 in
	zerofs) "$ZEROFS" umount "$2" ;;
	s3fs) umount "$2"; wait "$S3FS_PID" || true; S3FS_PID= ;;
	rclone) umount "$2"; wait "$RCLONE_PID" || true; RCLONE_PID= ;;
	esac
}
bucket_dir() { case $1 in zerofs) echo "$W/s3/zf-bench" ;; s3fs) echo "$W/s3/s3fs-bench" ;; rclone) echo "$W/s3/rclone-bench" ;; esac; }

for s in zerofs s3fs rclone; do
	echo "# --- $s"
	m=$W/mnt-$s
	ZF_DEV=$W/zf-dev
	[ $s = zerofs ] && "$ZEROFS" mkfs --remote "$ZF_URL" "$ZF_DEV" >/dev/null
	opts=()
	[ $s = rclone ] && opts=(--vfs-write-back 0s)
	mount_sys $s "$m" "${opts[@]}"

	# (1) write, then durable; zerofs: the recovery point sampled meanwhile
	if [ $s = zerofs ]; then
		(while :; do zf_field "$m" "recovery point" >>"$W/rp-copy"; sleep 0.5; done) &
		SAMPLER_PID=$!
	fi
	sync
	t0=$(now)
	cp "$W/src/big" "$m/big"
	cp -r "$W/src/tree" "$m/tree"
	R[cp,$s]=$(since "$t0")
	if [ $s = zerofs ]; then
		"$ZEROFS" sync "$m"
	else
		h watch "$(bucket_dir $s)" "$W/manifest" "$W/watch-$s" 1800
	fi
	R[durable,$s]=$(since "$t0")
	if [ $s = zerofs ]; then
		kill $SAMPLER_PID; wait $SAMPLER_PID 2>/dev/null || true; SAMPLER_PID=
		"$ZEROFS" stats --bytes "$m" >"$W/stats-write"
		grep -E "^(stored bytes|compression ratio|pending upload|recovery point|uploaded):" "$W/stats-write" | sed 's/^/#   /'
		[ "$(zf_field "$m" "pending upload")" = 0 ] ||
			{ echo "zerofs: pending upload is not 0 after zerofs sync" >&2; exit 1; }
		R[rp_copy,zerofs]=$(sort -g "$W/rp-copy" | tail -n 1)
	fi
	umount_sys $s "$m"
	R[bucket,$s]=$(du -sb "$(bucket_dir $s)" | cut -f1)
	echo "#   copy ${R[cp,$s]} s, durable ${R[durable,$s]} s, bucket ${R[bucket,$s]} bytes"

	# (2) cold read
	sync
	if [ $s = zerofs ]; then
		t0=$(now)
		"$ZEROFS" mkfs --restore "$ZF_URL" "$W/zf-dev2" >/dev/null
		R[restore,zerofs]=$(since "$t0")
		ZF_DEV=$W/zf-dev2
	fi
	mount_sys $s "$m"
	t0=$(now)
	dd if="$m/big" of=/dev/null bs=1M status=none
	R[rbig,$s]=$(since "$t0")
	t0=$(now)
	find "$m/tree" -type f -print0 | xargs -0 cat >/dev/null
	R[rtree,$s]=$(since "$t0")
	if [ $s = zerofs ]; then
		"$ZEROFS" stats --bytes "$m" >"$W/stats-read"
		grep -E "^(fetched|fetch cache|dev-dir data):" "$W/stats-read" | sed 's/^/#   /'
		R[fetched,zerofs]=$(zf_field "$m" fetched)
	fi
	cmp "$W/src/big" "$m/big" && diff -rq "$W/src/tree" "$m/tree" ||
		{ echo "$s: the data read back differs from the source" >&2; exit 1; }
	umount_sys $s "$m"
	echo "#   cold read: big ${R[rbig,$s]} s, tree ${R[rtree,$s]} s"

	# (3) recovery-point lag under a steady writer (defaults: no --vfs-write-back 0s)
	sync
	nfiles=$(((RATE * LAG_S * 1000000 + (4 << 20) - 1) / (4 << 20)))
	if [ $s = zerofs ]; then
		ZF_DEV=$W/zf-dev3
		"$ZEROFS" mkfs --remote "$ZF_LAG_URL" "$ZF_DEV" >/dev/null
	fi
	mount_sys $s "$m"
	if [ $s = zerofs ]; then
		rm -f "$W/rp-steady"
		(while :; do
			echo "$(now) $(zf_field "$m" "recovery point") $(zf_field "$m" "pending upload")" >>"$W/rp-steady"
			sleep 0.5
		done) &
		SAMPLER_PID=$!
		h steady "$m/lag" "$nfiles" $((4 << 20)) "$RATE" "$W/steady-$s" | sed 's/^/#   writer: /'
		# until everything is up by itself (max_delay), at most 120 s
		for i in $(seq 1 240); do
			[ "$(tail -n 1 "$W/rp-steady" | cut -d' ' -f3)" = 0 ] && break
			sleep 0.5
		done
		kill $SAMPLER_PID; wait $SAMPLER_PID 2>/dev/null || true; SAMPLER_PID=
		R[lag,zerofs]=$(cut -d' ' -f2 "$W/rp-steady" | sort -g | tail -n 1)
		R[lagmean,zerofs]=$(awk '{ s += $2; n++ } END { printf "%.1f", s / n }' "$W/rp-steady")
		R[lagn,zerofs]="$(wc -l <"$W/rp-steady") samples"
		read -r 'R[lag2,zerofs]' 'R[lagw,zerofs]' 'R[pendmax,zerofs]' < <(h zflag "$W/steady-$s" "$W/rp-steady" $((4 << 20)))
	else
		for i in $(seq 0 $((nfiles - 1))); do printf 'lag/f%04d %d\n' "$i" $((4 << 20)); done >"$W/lag-manifest"
		h watch "$(bucket_dir $s)" "$W/lag-manifest" "$W/lagwatch-$s" 600 &
		POLLER_PID=$!
		h steady "$m/lag" "$nfiles" $((4 << 20)) "$RATE" "$W/steady-$s" | sed 's/^/#   writer: /'
		wait $POLLER_PID; POLLER_PID=
		read -r l lm ln < <(h lag "$W/steady-$s" "$W/lagwatch-$s" lag/)
		R[lag,$s]=$l R[lag2,$s]=$l R[lagmean,$s]=$lm R[lagn,$s]="$ln files"
	fi
	umount_sys $s "$m"
	echo "#   recovery-point lag: max ${R[lag,$s]} s, mean ${R[lagmean,$s]} s (${R[lagn,$s]})"
done

# --- report ---
mbs() { awk -v b="$1" -v t="$2" 'BEGIN { printf "%.1f", b / t / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", (b > 0 ? a / b : 0) }'; }
row() { # label zerofs s3fs rclone unit
	printf '%-44s %9s %9s %9s %8s %10s %s\n' "$1" "$2" "$3" "$4" "$(ratio "$2" "$3")" "$(ratio "$2" "$4")" "${5:-}"
}
echo
echo "$MB MiB: big random file of $BIG_MB MiB + tree of $NFILES files ($TREE_BYTES bytes); s3rver on $S3_ENDPOINT"
printf '%-44s %9s %9s %9s %8s %10s\n' figure zerofs s3fs rclone zf/s3fs zf/rclone
for s in zerofs s3fs rclone; do
	R[cpmb,$s]=$(mbs $ALL_BYTES "${R[cp,$s]}")
	R[dmb,$s]=$(mbs $ALL_BYTES "${R[durable,$s]}")
	R[rbmb,$s]=$(mbs $BIG_BYTES "${R[rbig,$s]}")
	R[rtmb,$s]=$(mbs $TREE_BYTES "${R[rtree,$s]}")
	R[rall,$s]=$(mbs $ALL_BYTES "$(awk -v a="${R[rbig,$s]}" -v b="${R[rtree,$s]}" 'BEGIN { print a + b }')")
done
row "(1) copy into the mount (cp returns), MB/s" "${R[cpmb,zerofs]}" "${R[cpmb,s3fs]}" "${R[cpmb,rclone]}"
row "(1) write until the bucket holds all, MB/s" "${R[dmb,zerofs]}" "${R[dmb,s3fs]}" "${R[dmb,rclone]}"
row "    (seconds)" "${R[durable,zerofs]}" "${R[durable,s3fs]}" "${R[durable,rclone]}" "(time: < 1 is faster)"
row "(1) bucket size after, MB" "$(mbs "${R[bucket,zerofs]}" 1)" "$(mbs "${R[bucket,s3fs]}" 1)" "$(mbs "${R[bucket,rclone]}" 1)"
row "(2) cold read, big file, MB/s" "${R[rbmb,zerofs]}" "${R[rbmb,s3fs]}" "${R[rbmb,rclone]}"
row "(2) cold read, tree, MB/s" "${R[rtmb,zerofs]}" "${R[rtmb,s3fs]}" "${R[rtmb,rclone]}"
row "(2) cold read, all, MB/s" "${R[rall,zerofs]}" "${R[rall,s3fs]}" "${R[rall,rclone]}"
row "(3) max lag at $RATE MB/s, s: zerofs stats" "${R[lag,zerofs]}" "${R[lag,s3fs]}" "${R[lag,rclone]}" "(time: < 1 is lower)"
row "(3) max lag at $RATE MB/s, s: byte ages" "${R[lag2,zerofs]}" "${R[lag2,s3fs]}" "${R[lag2,rclone]}" "(time: < 1 is lower)"
echo
echo "zerofs: restore of the metadata before the cold read ${R[restore,zerofs]} s (not in (2));" \
	"fetched during the cold read ${R[fetched,zerofs]} bytes"
echo "zerofs: max recovery point during the full-speed copy of (1): ${R[rp_copy,zerofs]} s"
echo "(3) zerofs stats: the max 'recovery point' over ${R[lagn,zerofs]}; byte ages: derived from" \
	"'pending upload' in the same samples (max ${R[pendmax,zerofs]} bytes pending), max ${R[lagw,zerofs]} s" \
	"while the writer ran, ${R[lag2,zerofs]} s with the tail after it stopped"
echo "(3) zerofs: max over ${R[lagn,zerofs]} of 'zerofs stats' (their mean ${R[lagmean,zerofs]} s);" \
	"s3fs / rclone: max over ${R[lagn,s3fs]} / ${R[lagn,rclone]}, first write -> object complete" \
	"(mean over files ${R[lagmean,s3fs]} / ${R[lagmean,rclone]} s)"
