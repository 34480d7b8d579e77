#!/usr/bin/env bash
# The AWS config file's profiles and credential_process against a real S3
# server (@20minutes/s3rver by default, tests/e2e/s3-server.sh; it checks
# SigV4 signatures, so keys that are wrong fail): no AWS_ACCESS_KEY_ID in
# the environment, no endpoint in the URL; the profile's endpoint_url and
# region, and keys from its credential_process (net/s3_creds.c). A mount
# that takes them end to end, a process with the wrong secret, one that
# fails, and one in a file other users may change.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/s3-server.sh"
require_fuse
kill_daemons_at_exit

TOOL=${OBJSTORE_TOOL:-$(dirname "$ZEROFS")/tests/e2e/objstore_tool}
[ -x "$TOOL" ] || { echo "no '$TOOL': build the tree first"; exit 1; }
s3_up zf-test
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION

D=$T/dev M=$T/mnt
# the process of profile P answers with secret S and counts its runs in $T/runs.P
proc() { echo "echo run >>$T/runs.$1; printf '{\"Version\": 1, \"AccessKeyId\": \"$S3_KEY\", \"SecretAccessKey\": \"$2\", \"Expiration\": \"2099-01-01T00:00:00Z\"}'"; }
cat >"$AWS_CONFIG_FILE" <<EOC
[profile zfp]
region = us-east-1
endpoint_url = $S3_ENDPOINT
credential_process = $(proc zfp "$S3_SECRET")

[profile wrong]
endpoint_url = $S3_ENDPOINT
credential_process = $(proc wrong not-the-secret)

[profile broken]
endpoint_url = $S3_ENDPOINT
credential_process = echo "no keys today" >&2; exit 7
EOC
chmod 600 "$AWS_CONFIG_FILE"
runs() { cat "$T/runs.$1" 2>/dev/null | wc -l; }
head -c 300000 /dev/urandom >"$T/obj"

test_expect_success 'profile= in the URL: endpoint from the config, keys from credential_process' '
	"$TOOL" "s3://zf-test/cfg?profile=zfp" put k1 "$T/obj" &&
	test "$(runs zfp)" = 1 &&
	AWS_ACCESS_KEY_ID=$S3_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET \
		aws_s3api get-object --bucket zf-test --key cfg/k1 "$T/obj.aws" >/dev/null &&
	cmp "$T/obj" "$T/obj.aws" &&
	"$TOOL" "s3://zf-test/cfg?profile=zfp" list "" | grep -q "^k1 300000$"
'
test_expect_success 'a process with the wrong secret: the server refuses, nothing written' '
	expect_code 1 "$TOOL" "s3://zf-test/cfg?profile=wrong" put k2 "$T/obj" 2>"$T/err" &&
	cat "$T/err" && grep -q "SignatureDoesNotMatch\|403" "$T/err" &&
	test "$(runs wrong)" = 1 &&
	! "$TOOL" "s3://zf-test/cfg?profile=zfp" list "" | grep -q "^k2 "
'
test_expect_success 'AWS_PROFILE: mkfs, mount, write, sync, unmount, fsck with the process keys' '
	AWS_PROFILE=zfp $ZEROFS mkfs --remote "s3://zf-test/fs" "$D" >/dev/null &&
	AWS_PROFILE=zfp zf_mount "$D" "$M" &&
	cp "$T/obj" "$M/f" && $ZEROFS sync "$M" && zf_umount "$M" &&
	AWS_ACCESS_KEY_ID=$S3_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET aws_list_keys zf-test fs >"$T/keys" &&
	grep -qx superblock "$T/keys" && grep -q "^seg/" "$T/keys" &&
	AWS_PROFILE=zfp zf_mount "$D" "$M" && cmp "$T/obj" "$M/f" && zf_umount "$M" &&
	AWS_PROFILE=zfp zf_fsck_clean "$D"
'
test_expect_success 'a failing credential_process: mkfs says which profile and its exit status' '
	expect_code 1 env AWS_PROFILE=broken $ZEROFS mkfs --remote "s3://zf-test/fs2" "$T/dev2" \
		2>"$T/err" &&
	cat "$T/err" &&
	grep -q "credential_process of profile .broken. for .s3://zf-test. failed: exit status 7" "$T/err" &&
	test ! -e "$T/dev2"
'
test_expect_success 'a config file others may change: its credential_process never runs' '
	chmod 666 "$AWS_CONFIG_FILE" && n=$(runs zfp) &&
	expect_code 1 "$TOOL" "s3://zf-test/cfg?profile=zfp" head k1 2>"$T/err" &&
	chmod 600 "$AWS_CONFIG_FILE" &&
	grep -q "refusing to run its credential_process" "$T/err" && test "$(runs zfp)" = "$n"
'
test_done
