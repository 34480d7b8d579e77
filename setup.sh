#!/usr/bin/env bash
# setup.sh - everything needed on a fresh Debian machine, in one place.
#
#   ./setup.sh demo   install dependencies, build, mount a demo filesystem
#   ./setup.sh test   install dependencies, build (plain and ASan+UBSan), run
#                     every test suite (the S3 ones also against Ceph RGW,
#                     which they install); prints "N passed, N failed" last
#   ./setup.sh deps   only install the Debian packages of both (needs root)
#   ./setup.sh build  only build (into ./build)
#
# Builds are out of tree: ./build (plain) and ./build-asan (sanitizers).
set -euo pipefail
cd "$(dirname "$0")"
top=$(pwd)
jobs=$(nproc 2>/dev/null || echo 2)

# Debian packages. The demo needs the build chain and the libraries
# configure.ac requires (their -dev packages) and fuse3 (fusermount3) to
# mount; the tests need the rest: check (unit tests), scdoc (builds the man
# pages) and man-db (renders them in a test), the S3 test server (nodejs,
# npm) and client (awscli), clang/llvm (fuzz targets), prometheus (its
# promtool checks the metrics; ~100 MB, the server is not started), and the
# tools the end-to-end tests call.
demo_pkgs=(build-essential autoconf automake pkg-config
	libfuse3-dev fuse3 libzstd-dev libxxhash-dev libcurl4-openssl-dev libssl-dev
	libexpat1-dev libjson-c-dev libsodium-dev)
test_pkgs=(libtool check zstd rsync git tar python3 attr acl xxd procps psmisc
	util-linux scdoc man-db awscli nodejs $(command -v npm >/dev/null 2>&1 || echo npm)
	clang llvm libclang-rt-dev prometheus)
# (npm only where no npm is on the PATH: NodeSource's nodejs bundles one and
# conflicts with Debian's npm package)

deps() { # packages...
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	local sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	echo "setup: installing ${missing[*]}"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

configure_in() { # dir, configure args...
	local dir=$1
	shift
	[ -x configure ] || ./autogen.sh >/dev/null 2>&1 || { ./autogen.sh; exit 1; }
	mkdir -p "$dir"
	if [ ! -f "$dir/Makefile" ] || [ configure -nt "$dir/Makefile" ]; then
		(cd "$dir" && "$top/configure" -q "$@")
	fi
}

build() {
	configure_in build
	make -s -C build -j"$jobs"
}

# Sum every suite's results: Check programs report their test cases, other
# tests (shell end-to-end) count as one each.
summarize() {
	python3 - "$@" <<'PY'
import re, sys, os, glob
passed = failed = skipped = 0
for d in sys.argv[1:]:
    for trs in glob.glob(os.path.join(d, "tests", "**", "*.trs"), recursive=True):
        res = re.search(r":test-result: (\w+)", open(trs).read()).group(1)
        log = open(trs[:-4] + ".log", errors="replace").read()
        m = re.search(r"Checks: (\d+), Failures: (\d+), Errors: (\d+)", log)
        if m:
            n, f, e = map(int, m.groups())
            passed += n - f - e
            failed += f + e
            if res not in ("PASS", "SKIP") and f + e == 0:
                failed += 1     # crashed outside a test case
        elif res == "PASS":
            passed += 1
        elif res == "SKIP":
            skipped += 1
        else:
            failed += 1
        if res not in ("PASS", "SKIP"):
            print(f"FAILED: {trs[:-4]} ({res})")
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if failed else 0)
PY
}

run_tests() {
	local rc=0
	build
	make -s -C build -j"$jobs" check >/dev/null 2>&1 || rc=1
	# the S3 tests again against Ceph RGW (plain build only; they install
	# Ceph with apt-get, or are skipped saying why: tests/e2e/rgw.sh)
	make -s -C build -j"$jobs" check-rgw-ci >/dev/null 2>&1 || rc=1
	configure_in build-asan --enable-asan --enable-ubsan
	make -s -C build-asan -j"$jobs" >/dev/null
	ZF_SANITIZED=1 make -s -C build-asan -j"$jobs" check >/dev/null 2>&1 || rc=1
	# libFuzzer targets of every decoder (tests/fuzz/run.sh), a short run each
	FUZZ_SECONDS=${FUZZ_SECONDS:-20} tests/fuzz/run.sh "$top" "$top/build-fuzz" "$top/build" || rc=1
	for f in build/tests/*/*.log build-asan/tests/*/*.log build-fuzz/tests/*/*.log; do
		[ -f "$f" ] || continue
		grep -q ':test-result: \(FAIL\|ERROR\)' "${f%.log}.trs" 2>/dev/null && { echo "=== $f"; tail -n 40 "$f"; }
	done
	summarize build build-asan build-fuzz || rc=1
	return $rc
}

demo() {
	build
	local dir=${ZF_DEMO_DIR:-$HOME/zerofs-demo}
	mkdir -p "$dir/mnt"
	# the embedded default object store: a directory beside the dev-dir
	[ -f "$dir/dev/superblock" ] || build/zerofs mkfs "$dir/dev"
	if ! mountpoint -q "$dir/mnt"; then
		build/zerofs mount "$dir/dev" "$dir/mnt"
	fi
	cp -r "$top/docs" "$dir/mnt/" 2>/dev/null || true
	build/zerofs sync "$dir/mnt"
	build/zerofs stats "$dir/mnt"
	cat <<-EOF

	zerofs is mounted on $dir/mnt (dev-dir $dir/dev, bucket $dir/dev.bucket).
	  use it:       cd $dir/mnt
	  statistics:   $top/build/zerofs stats $dir/mnt
	  unmount:      $top/build/zerofs umount $dir/mnt
	EOF
}

case "${1:-}" in
deps) deps "${demo_pkgs[@]}" "${test_pkgs[@]}" ;;
build) deps "${demo_pkgs[@]}" && build ;;
test) deps "${demo_pkgs[@]}" "${test_pkgs[@]}" && run_tests ;;
demo) deps "${demo_pkgs[@]}" && demo ;;
*) echo "usage: $0 demo|test|deps|build" >&2; exit 2 ;;
esac
