#!/usr/bin/env bash
# net/ against a real S3 server: conformance of zerofs's s3 client, checked
# by Debian's aws CLI as an independent client.
#
# The server is @20minutes/s3rver 5.0.0 on 127.0.0.1 (tests/e2e/s3rver.sh)
# or, with ZF_S3_SERVER=rgw (10-s3-rgw.sh), Ceph's RGW (tests/e2e/rgw.sh);
# both verify SigV4 signatures, so every request below also proves the
# signing. The client is driven by tests/e2e/objstore_tool, one
# net/objstore call per run. Where this server deviates from S3, a step
# says so and checks both the deviation (the test fails loudly if the server
# changes) and that zerofs copes; on RGW the same step checks the S3
# behaviour instead.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/s3-server.sh"

TOOL=${OBJSTORE_TOOL:-$(dirname "$ZEROFS")/tests/e2e/objstore_tool}
if [ ! -x "$TOOL" ]; then
	echo "no '$TOOL': build the tree first"
	exit 1
fi
s3_up zf-test
B=s3://zf-test/t1

ot() { "$TOOL" --endpoint "$S3_ENDPOINT" "$@"; }
# slice FILE OFF LEN: the bytes a range read must return
slice() { tail -c +$(($2 + 1)) "$1" | head -c "$3"; }
# keys (under t1/) as the aws CLI lists them, one a line, sorted
aws_keys() { aws_list_keys zf-test t1 "$@"; }

head -c 1000003 /dev/urandom >"$T/small"
head -c $((20 * 1024 * 1024 + 12345)) /dev/urandom >"$T/big"

test_expect_success 'zerofs puts, aws reads the same bytes, size and MD5 ETag' '
	ot --stats $B put small "$T/small" 2>"$T/err" &&
	grep -q "requests=1 retries=0" "$T/err" &&
	aws_s3api get-object --bucket zf-test --key t1/small "$T/small.aws" >"$T/meta" &&
	cmp "$T/small" "$T/small.aws" &&
	grep -q "\"ContentLength\": 1000003" "$T/meta" &&
	md5=$(md5sum <"$T/small" | cut -c1-32) &&
	grep ETag "$T/meta" | grep -q "$md5" &&
	test "$(ot $B head small)" = "1000003 $md5"
'
test_expect_success 'aws puts, zerofs reads the same bytes' '
	aws_s3api put-object --bucket zf-test --key t1/from-aws --body "$T/small" >/dev/null &&
	ot $B get from-aws | cmp - "$T/small" &&
	test "$(ot $B head from-aws | cut -d" " -f1)" = 1000003
'
test_expect_success 'ranged gets return exactly the bytes asked for' '
	for r in "1 1" "4096 65536" "999999 4" "1000002 1" "500000 0" "0 1000003"; do
		set -- $r
		len=$2
		[ "$len" -gt 0 ] || len=$((1000003 - $1))
		ot $B get small $1 $2 >"$T/part" &&
		slice "$T/small" $1 $len | cmp - "$T/part" || { echo "range $r"; exit 1; }
	done
'
test_expect_success 'a range outside the object is an error, not a short read' '
	expect_code 1 ot $B get small 999990 20 2>"$T/err" >"$T/out" &&
	grep -q "(EIO)" "$T/err" && test ! -s "$T/out" &&
	expect_code 1 ot $B get small 2000000 10 2>"$T/err" && grep -q "(EIO)" "$T/err"
'
if [ "$S3_SERVER" = s3rver ]; then
	r00_size=1000003 r00_what='s3rver deviation: Range bytes=0-0 returns the whole object'
else
	r00_size=1 r00_what='Range bytes=0-0 returns one byte'
fi
test_expect_success "$r00_what; zerofs returns 1 byte" '
	aws_s3api get-object --bucket zf-test --key t1/small --range bytes=0-0 "$T/r00" >/dev/null &&
	test "$(stat -c %s "$T/r00")" = $r00_size &&
	ot $B get small 0 1 >"$T/one" &&
	test "$(stat -c %s "$T/one")" = 1 && head -c 1 "$T/small" | cmp - "$T/one"
'

# keys whose signing libcurl 7.88 gets wrong, and other odd ones
odd_keys=("odd/~tilde" "odd/(paren)" "odd/sp ace" "odd/plus+eq=" "odd/deep/er/key"
	"odd/caf$(printf '\303\251')" "odd/star*!\$" "odd/pct%2Fslash" "odd/semi;comma,at@")
test_expect_success 'keys with ~ ( ) spaces + = % and / round-trip both ways' '
	for k in "${odd_keys[@]}"; do
		printf "%s" "$k" >"$T/kf" &&
		ot $B put "$k" "$T/kf" &&
		aws_s3api get-object --bucket zf-test --key "t1/$k" "$T/kf.aws" >/dev/null &&
		cmp "$T/kf" "$T/kf.aws" &&
		aws_s3api put-object --bucket zf-test --key "t1/$k.aws" --body "$T/kf" >/dev/null &&
		ot $B get "$k.aws" | cmp - "$T/kf" || { echo "key $k"; exit 1; }
	done
'
test_expect_success 'zerofs and aws list the odd keys identically' '
	{ for k in "${odd_keys[@]}"; do echo "$k"; echo "$k.aws"; done; } | LC_ALL=C sort >"$T/want" &&
	ot $B list odd/ | sed "s/ [0-9]*\$//" | LC_ALL=C sort >"$T/ours" &&
	aws_keys odd/ | LC_ALL=C sort >"$T/theirs" &&
	diff "$T/want" "$T/ours" && diff "$T/want" "$T/theirs"
'
test_expect_success 'list with continuation over several pages (page size 4)' '
	for i in $(seq -w 1 23); do
		printf "%s" "$i" >"$T/kf" && ot $B put "page/k$i" "$T/kf" || exit 1
	done &&
	ot --stats --page-size 4 $B list page/ >"$T/ours" 2>"$T/err" &&
	test "$(wc -l <"$T/ours")" = 23 &&
	grep -q "^page/k07 2\$" "$T/ours" &&
	grep -q "requests=6 " "$T/err" &&
	aws_keys page/ --page-size 5 >"$T/theirs" &&
	sed "s/ [0-9]*\$//" "$T/ours" | diff - "$T/theirs"
'
if [ "$S3_SERVER" = s3rver ]; then
test_expect_success 's3rver deviation: pages lose keys that sort around a "/" (aws sees the same)' '
	for k in cut/x cut/x-y cut/x/y; do ot $B put "$k" "$T/kf" || exit 1; done &&
	ot --page-size 1000 $B list cut/ | wc -l | grep -qx 3 &&
	test "$(ot --page-size 1 $B list cut/ | wc -l)" -lt 3 &&
	test "$(aws_keys cut/ --page-size 1 | wc -l)" -lt 3
'
test_expect_success 's3rver deviation: listed keys with & < > are XML-escaped twice (aws sees the same)' '
	ot $B put "amp/a&b" "$T/kf" &&
	test "$(ot $B list amp/)" = "amp/a&amp;b 2" &&
	test "$(aws_keys amp/)" = "amp/a&amp;b" &&
	ot $B get "amp/a&b" | cmp - "$T/kf"
'
test_expect_success 's3rver deviation: a list prefix with ( is refused (403) for aws and zerofs alike' '
	ot $B put "paren(x)/a" "$T/kf" &&
	! ot $B list "paren(" 2>"$T/err" && grep -q "HTTP 403 SignatureDoesNotMatch" "$T/err" &&
	! aws_s3api list-objects-v2 --bucket zf-test --prefix "t1/paren(" 2>"$T/aerr" &&
	grep -q SignatureDoesNotMatch "$T/aerr" &&
	ot $B list "paren" | grep -q "^paren(x)/a "
'
else
test_expect_success 'pages of one key list every key that sorts around a "/" (aws sees the same)' '
	for k in cut/x cut/x-y cut/x/y; do ot $B put "$k" "$T/kf" || exit 1; done &&
	printf "cut/x\ncut/x-y\ncut/x/y\n" >"$T/want" &&
	ot --page-size 1 $B list cut/ | sed "s/ [0-9]*\$//" | diff "$T/want" - &&
	aws_keys cut/ --page-size 1 | diff "$T/want" -
'
test_expect_success 'listed keys with & round-trip unescaped (aws sees the same)' '
	ot $B put "amp/a&b" "$T/kf" &&
	test "$(ot $B list amp/)" = "amp/a&b 2" &&
	test "$(aws_keys amp/)" = "amp/a&b" &&
	ot $B get "amp/a&b" | cmp - "$T/kf"
'
test_expect_success 'a list prefix with ( lists for aws and zerofs alike' '
	ot $B put "paren(x)/a" "$T/kf" &&
	ot $B list "paren(" | grep -q "^paren(x)/a " &&
	test "$(aws_keys "paren(")" = "paren(x)/a"
'
fi
test_expect_success '8 threads share one store: puts, ranged gets and deletes all correct' '
	ot --stats $B threads 8 20 2>"$T/err" | grep -qx ok &&
	grep -q "retries=0 errors=0" "$T/err" &&
	test -z "$(aws_keys threads/)"
'
test_expect_success 'multipart above the threshold (20 MiB in 5 MiB parts) is byte-identical via aws' '
	ot --stats --threshold 8M --part-size 5M $B put big "$T/big" 2>"$T/err" &&
	grep -q "requests=7 retries=0" "$T/err" &&
	aws_s3api get-object --bucket zf-test --key t1/big "$T/big.aws" >/dev/null &&
	cmp "$T/big" "$T/big.aws" &&
	ot $B get big | cmp - "$T/big" &&
	off=$((5 * 1024 * 1024 - 100)) &&
	ot $B get big $off 200 | cmp - <(slice "$T/big" $off 200) &&
	test "$(ot $B head big | cut -d" " -f1)" = $((20 * 1024 * 1024 + 12345))
'
test_expect_success 'below the threshold the same object is one PUT' '
	ot --stats $B put big2 "$T/big" 2>"$T/err" &&
	grep -q "requests=1 retries=0" "$T/err" &&
	aws_s3api get-object --bucket zf-test --key t1/big2 "$T/big.aws" >/dev/null &&
	cmp "$T/big" "$T/big.aws"
'
test_expect_success 'delete: gone for aws too; deleting a missing key succeeds' '
	ot $B put gone "$T/kf" &&
	ot $B delete gone &&
	! aws_s3api head-object --bucket zf-test --key t1/gone 2>"$T/err" &&
	grep -q "404" "$T/err" &&
	ot $B delete gone &&
	expect_code 1 ot $B get gone 2>"$T/err" && grep -q "(ENOENT)" "$T/err" &&
	expect_code 1 ot $B head gone 2>"$T/err" && grep -q "(ENOENT)" "$T/err"
'
test_expect_success 'multi-delete (one DeleteObjects request) of 30 keys, escaped ones and a missing one' '
	keys=() &&
	for i in $(seq -w 1 28); do keys+=("md/k$i"); done &&
	keys+=("md/a&b<c>" "md/q\"u'\''o") &&
	for k in "${keys[@]}"; do ot $B put "$k" "$T/kf" || exit 1; done &&
	n=$(aws_keys md/ | wc -l) && { test "$n" = 30 || { echo "aws lists $n keys"; exit 1; }; } &&
	ot --stats $B mdelete "${keys[@]}" md/missing 2>"$T/err" && cat "$T/err" &&
	req=$(sed -n "s/.*requests=\([0-9]*\) retries=\([0-9]*\).*/\1 \2/p" "$T/err") &&
	test $((${req% *} - ${req#* })) = 1 &&
	left=$(aws_keys md/) && { test -z "$left" || { echo "left: $left"; exit 1; }; } &&
	ot $B get page/k01 >/dev/null
'
test_expect_success 'wrong secret: a clear EACCES at once, never retried (and aws is refused too)' '
	! AWS_SECRET_ACCESS_KEY=wrong ot --stats --attempts 5 $B get small 2>"$T/err" >/dev/null &&
	cat "$T/err" &&
	grep -q "HTTP 403 SignatureDoesNotMatch: [a-zA-Z]" "$T/err" &&
	{ test "$S3_SERVER" != rgw || grep -q ": wrong secret key for this access key?" "$T/err"; } &&
	grep -q "(EACCES) after 1 attempt" "$T/err" &&
	grep -q "requests=1 retries=0" "$T/err" &&
	! AWS_SECRET_ACCESS_KEY=wrong aws_s3api head-object --bucket zf-test --key t1/small 2>"$T/aerr" &&
	grep -q 403 "$T/aerr"
'
test_expect_success 'unknown access key: InvalidAccessKeyId, EACCES, no retry' '
	! AWS_ACCESS_KEY_ID=NOBODY ot --stats $B put x "$T/kf" 2>"$T/err" &&
	grep -q "HTTP 403 InvalidAccessKeyId" "$T/err" &&
	grep -q "requests=1 retries=0" "$T/err" &&
	grep -q "(EACCES)" "$T/err"
'
test_expect_success 'zerofs mkfs and mount with a wrong secret: one clear line, exit 1, nothing done' '
	url="s3://zf-test/fs-cred?endpoint=$S3_ENDPOINT" &&
	expect_code 1 env AWS_SECRET_ACCESS_KEY=wrong timeout 60 \
		"$ZEROFS" mkfs --remote "$url" "$T/dev" 2>"$T/err" && cat "$T/err" &&
	test "$(wc -l <"$T/err")" = 1 &&
	grep -q "cannot write a test object .*: access denied (wrong credentials" "$T/err" &&
	test ! -e "$T/dev/superblock" &&
	"$ZEROFS" mkfs --remote "$url" "$T/dev" >/dev/null && mkdir "$T/mnt" &&
	expect_code 1 env AWS_SECRET_ACCESS_KEY=wrong timeout 60 \
		"$ZEROFS" mount "$T/dev" "$T/mnt" 2>"$T/err" && cat "$T/err" &&
	grep -q "HTTP 403 SignatureDoesNotMatch: [a-zA-Z]" "$T/err" &&
	{ test "$S3_SERVER" != rgw || grep -q ": wrong secret key for this access key?" "$T/err"; } &&
	grep -q "cannot use the object store .*: Permission denied" "$T/err" &&
	! mountpoint -q "$T/mnt"
'
test_expect_success 'credentials file: refused unless private, then used' '
	printf "[zf]\naws_access_key_id = %s\naws_secret_access_key = %s\n" "$S3_KEY" "$S3_SECRET" >"$T/creds" &&
	chmod 644 "$T/creds" &&
	! env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_SHARED_CREDENTIALS_FILE="$T/creds" \
		AWS_PROFILE=zf "$TOOL" --endpoint "$S3_ENDPOINT" $B head small 2>"$T/err" &&
	grep -q "mode 0644" "$T/err" && grep -q "chmod 600" "$T/err" &&
	chmod 600 "$T/creds" &&
	env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_SHARED_CREDENTIALS_FILE="$T/creds" \
		AWS_PROFILE=zf "$TOOL" --endpoint "$S3_ENDPOINT" $B head small | grep -q "^1000003 "
'
test_expect_success 'endpoint and addressing given in the URL instead of options' '
	"$TOOL" "s3://zf-test/t1?endpoint=$S3_ENDPOINT&addressing=path" get small | cmp - "$T/small"
'
# a "server" that accepts connections and never answers (bounded: 120 s)
python3 -c '
import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64)
print(s.getsockname()[1], flush=True); time.sleep(120)' >"$T/hole.port" &
hole=$!
cleanup_hooks="kill $hole 2>/dev/null; $cleanup_hooks"
test_expect_success 'a server that accepts but never answers: ETIMEDOUT within the timeout' '
	for i in $(seq 1 600); do test -s "$T/hole.port" && break; sleep 0.1; done &&
	port=$(cat "$T/hole.port") &&
	! timeout 60 "$TOOL" --endpoint "http://127.0.0.1:$port" --stats --timeout 2000 \
		--retry-base 100 $B get small 2>"$T/err" &&
	grep -q "(ETIMEDOUT)" "$T/err"
'
test_expect_success 'server stopped: retries with backoff, then ECONNREFUSED within the timeout' '
	s3_stop &&
	! timeout 60 "$TOOL" --endpoint "$S3_ENDPOINT" --stats --attempts 4 --retry-base 100 \
		--timeout 10000 $B get small 2>"$T/err" &&
	grep -q "(ECONNREFUSED) after 4 attempts" "$T/err" &&
	grep -q "requests=4 retries=3" "$T/err"
'
test_done
