#!/usr/bin/env bash
# tests/fuzz/run.sh - build and run zerofs's libFuzzer targets
#
#   tests/fuzz/run.sh SRC_DIR OUT_DIR [CONFIG_DIR]
#
# Every decoder of untrusted bytes has a target, tests/fuzz/fuzz_<name>.c:
#   frame      record frames (zf_frame_parse), with a re-encoding check
#   mlog       a log file: zf_mlog_replay and zf_mlog_replay_salvage
#   ckpt       a checkpoint: zf_ckpt_load and zf_ckpt_load_salvage
#   records    the record payload decoders of replay and fsck (storage/fs.c):
#              checkpoint + log in a dev-dir, zf_fs_open read-only, with
#              salvage and zf_fs_check by a mode byte; frames re-sealed
#   superblock the superblock, and a dev-dir opened, written and closed with
#              its chunk sizes, zstd level and segment size limit
#   segment    a segment file: header, the super-chunk chain of resume,
#              local reads and verification of each super-chunk
#   sc         one super-chunk image read through the fetch hook
#   sc_pack    super-chunks built by the packer from the input, damaged
#              behind valid checksums: zstd and chunk checks on bad data
#   s3_xml     S3 answers: ListObjectsV2 pages, error bodies, DeleteObjects
#   s3_http    S3 answers' HTTP headers and body: Content-Range, Content-Length,
#              the window a ranged GET keeps
#   s3_url     object-store URLs (s3:// and fault:; file: is skipped)
#   s3_creds   the AWS credentials file
#   mount_opts the mount -o string (devdir/mount_opts.c)
#   seal       sealed and compressed bucket objects and segments (storage/seal.c)
# All are built with clang -fsanitize=fuzzer,address,undefined from the
# sources (not from build/libzf.a, which has no coverage instrumentation),
# with CONFIG_DIR's config.h (default SRC_DIR/build; generated if absent).
#
# Seeds: tests/fuzz/seeds.sh runs seedgen (a real dev-dir driven through the
# core, without FUSE) and copies its logs, checkpoints, segments and
# super-chunks into OUT_DIR/seeds/<target>, with the text seeds committed
# under tests/fuzz/seeds/. New inputs found are kept in OUT_DIR/corpus/.
#
# Each target runs FUZZ_SECONDS (30), FUZZ_JOBS (number of CPUs) at a time;
# FUZZ_TARGETS="mlog sc" picks some. One line per target: executions,
# coverage (cov, ft) and PASS/FAIL; a crash names the input that caused it
# (OUT_DIR/tests/fuzz/<target>-crash-*). Results are automake-style
# OUT_DIR/tests/fuzz/<target>.log and .trs for setup.sh's summary. Longer:
#
#   FUZZ_SECONDS=600 make -C build fuzz
#   FUZZ_SECONDS=600 FUZZ_TARGETS=records tests/fuzz/run.sh . build-fuzz
#
# Reproduce a crash: OUT_DIR/bin/fuzz_<target> <crash-file> (FUZZ_VERBOSE=1
# turns zerofs's log on).
set -uo pipefail

src=$(cd "${1:?usage: run.sh SRC_DIR OUT_DIR [CONFIG_DIR]}" && pwd)
mkdir -p "${2:?usage: run.sh SRC_DIR OUT_DIR [CONFIG_DIR]}"
out=$(cd "$2" && pwd)
cfg=${3:-$src/build}
seconds=${FUZZ_SECONDS:-30}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
cc=${FUZZ_CC:-clang}
all_targets="frame mlog ckpt records superblock segment sc sc_pack seal s3_xml s3_http s3_url s3_creds mount_opts"
targets=${FUZZ_TARGETS:-$all_targets}

command -v "$cc" >/dev/null || { echo "fuzz: no $cc (apt-get install clang)" >&2; exit 1; }
mkdir -p "$out/obj" "$out/bin" "$out/tests/fuzz" "$out/seeds" "$out/corpus"

# config.h of a configured build, else the little the sources need of it
if [ -f "$cfg/config.h" ]; then
	cfg=$(cd "$cfg" && pwd)
else
	cfg=$out/gen
	mkdir -p "$cfg"
	printf '#define _GNU_SOURCE 1\n#define PACKAGE_VERSION "fuzz"\n#define VERSION "fuzz"\n' \
		>"$cfg/config.h"
fi

pkgs="libzstd libxxhash libcurl openssl expat json-c libsodium"
san="-fsanitize=address,undefined -fno-sanitize-recover=all"
cflags="-g -O1 -fno-omit-frame-pointer $san -I$src -I$cfg $(pkg-config --cflags $pkgs fuse3)"
libs="$(pkg-config --libs $pkgs) -lpthread"

# ---- build ----

# compile one source into obj/ unless it is newer than every input
newest_h=$(find "$src/common" "$src/storage" "$src/tier" "$src/net" "$src/devdir" "$src/tests/fuzz" \
	-name '*.h' -printf '%T@\n' | sort -n | tail -n 1)
compile() { # source object
	local s=$1 o=$2
	if [ -f "$o" ] && [ "$o" -nt "$s" ] &&
		awk -v a="$(stat -c %Y "$o")" -v b="$newest_h" 'BEGIN { exit !(a > b) }'; then
		return 0
	fi
	"$cc" $cflags -fsanitize=fuzzer-no-link -c "$s" -o "$o" 2>"$o.err" ||
		{ echo "fuzz: cannot compile $s:"; cat "$o.err"; rm -f "$o"; return 1; }
	cat "$o.err"
	rm -f "$o.err"
}

# the C sources of libzf.a, as Makefile.am lists them (so a file joins the
# fuzz build when it joins the build)
sources() {
	awk '/\\$/ { sub(/\\$/, ""); printf "%s ", $0; next } { print }' "$src/Makefile.am" |
		grep -E '^libzf_a_SOURCES' | tr ' \t' '\n\n' | grep '\.c$'
}

build() {
	local s o objs=() pids=() t rc=0
	for s in $(sources); do
		o=$out/obj/$(dirname "$s")-$(basename "${s%.c}").o
		s=$src/$s
		objs+=("$o")
		compile "$s" "$o" &
		pids+=($!)
		if [ ${#pids[@]} -ge "$jobs" ]; then
			wait "${pids[0]}" || rc=1
			pids=("${pids[@]:1}")
		fi
	done
	for t in "${pids[@]}"; do wait "$t" || rc=1; done
	[ $rc -eq 0 ] || return 1
	rm -f "$out/obj/libzf-fuzz.a"
	ar rc "$out/obj/libzf-fuzz.a" "${objs[@]}" && ranlib "$out/obj/libzf-fuzz.a" || return 1
	# the seed generator: the same objects, no fuzzer main
	"$cc" $cflags -fsanitize=fuzzer-no-link "$src/tests/fuzz/seedgen.c" \
		"$out/obj/libzf-fuzz.a" $libs -o "$out/bin/seedgen" || return 1
}

link_target() { # target; 0 or 1 (the reason in bin/fuzz_<t>.err)
	local t=$1
	"$cc" $cflags -fsanitize=fuzzer "$src/tests/fuzz/fuzz_$t.c" "$out/obj/libzf-fuzz.a" \
		$libs -o "$out/bin/fuzz_$t" 2>"$out/bin/fuzz_$t.err"
}

# ---- run ----

write_trs() { # file PASS|FAIL, as automake's test driver writes them
	printf ':test-result: %s\n:global-test-result: %s\n:recheck: %s\n:copy-in-global-log: no\n' \
		"$2" "$2" "$([ "$2" = PASS ] && echo no || echo yes)" >"$1"
}

run_target() { # target
	local t=$1 log=$out/tests/fuzz/$t.log trs=$out/tests/fuzz/$t.trs
	local args=() rc execs cov ft res crash tmp
	rm -f "$log" "$trs"
	{
		echo "fuzz_$t: $seconds s, seeds $out/seeds/$t, corpus $out/corpus/$t"
		if ! link_target "$t"; then
			echo "cannot build fuzz_$t:"
			cat "$out/bin/fuzz_$t.err"
		fi
	} >"$log"
	if grep -q "^cannot build" "$log"; then
		res=FAIL
		printf '%-11s %s (does not build, see %s)\n' "$t" "$res" "$log"
		write_trs "$trs" "$res"
		return 1
	fi
	mkdir -p "$out/corpus/$t" "$out/seeds/$t"
	args=(-max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
		-artifact_prefix="$out/tests/fuzz/$t-")
	case $t in
	s3_*|mount_opts) args+=(-max_len=4096) ;;
	*) args+=(-max_len=131072) ;;
	esac
	[ -f "$src/tests/fuzz/$t.dict" ] && args+=(-dict="$src/tests/fuzz/$t.dict")
	tmp=$(mktemp -d "${FUZZ_TMPDIR_BASE:-/dev/shm}/zf-fuzz-run.XXXXXX" 2>/dev/null ||
		mktemp -d /tmp/zf-fuzz-run.XXXXXX)
	FUZZ_TMPDIR=$tmp "$out/bin/fuzz_$t" "${args[@]}" "$out/corpus/$t" "$out/seeds/$t" \
		>>"$log" 2>&1
	rc=$?
	rm -rf "$tmp"
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	cov=$(grep -o ' cov: [0-9]*' "$log" | tail -n 1 | awk '{print $2}')
	ft=$(grep -o ' ft: [0-9]*' "$log" | tail -n 1 | awk '{print $2}')
	if [ $rc -eq 0 ]; then
		res=PASS
		crash=""
	else
		res=FAIL
		crash=$(sed -n 's/.*Test unit written to //p' "$log" | tail -n 1)
		crash=", exit $rc, input ${crash:-unknown}"
	fi
	printf '%-11s execs %-10s cov %-6s ft %-6s %s%s\n' "$t" "${execs:-?}" "${cov:-?}" \
		"${ft:-?}" "$res" "$crash" | tee -a "$log"
	write_trs "$trs" "$res"
	[ $rc -eq 0 ]
}

start=$(date +%s)
echo "fuzz: building targets with $cc into $out"
if ! build >"$out/build.log" 2>&1; then
	cat "$out/build.log" >&2
	for t in $targets; do
		echo "cannot build the fuzzing objects: see $out/build.log" \
			>"$out/tests/fuzz/$t.log"
		write_trs "$out/tests/fuzz/$t.trs" FAIL
	done
	exit 1
fi
echo "fuzz: seeds"
"$src/tests/fuzz/seeds.sh" "$out/bin" "$out/seeds" >"$out/seeds.log" 2>&1 ||
	{ cat "$out/seeds.log" >&2; echo "fuzz: seeds incomplete, going on" >&2; }
echo "fuzz: $seconds s per target, $jobs at a time ($(($(date +%s) - start)) s to build)"

# FUZZ_JOBS targets at a time; each prints its own line when done
rc=0
pids=()
for t in $targets; do
	run_target "$t" &
	pids+=($!)
	if [ ${#pids[@]} -ge "$jobs" ]; then
		wait "${pids[0]}" || rc=1
		pids=("${pids[@]:1}")
	fi
done
for p in "${pids[@]}"; do wait "$p" || rc=1; done
echo "fuzz: done in $(($(date +%s) - start)) s"
exit $rc
