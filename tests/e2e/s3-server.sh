# tests/e2e/s3-server.sh - the S3 server of an S3 test, and the aws CLI
# that checks what zerofs did there
#
# Sourced after lib.sh. ZF_S3_SERVER chooses the server:
#   s3rver (default)  npm's @20minutes/s3rver, a small Node server
#                     (tests/e2e/s3rver.sh); fast, with known deviations
#                     from S3 that the tests name
#   rgw               Ceph's S3 gateway on a one-node cluster
#                     (tests/e2e/rgw.sh), installed with apt-get if needed
# The tests/e2e/*-rgw.sh scripts run an S3 test with ZF_S3_SERVER=rgw.
#
#   s3_up BUCKET            what a test does first: the server's tools
#                           (exit 77, with the reason, when they cannot be
#                           had), the server started under $T with BUCKET,
#                           its endpoint printed as a TAP comment, the
#                           test's own identity taken (s3_identity); exit
#                           1 on failure. Sets S3_ENDPOINT, S3_PORT, S3_LOG
#   s3_stop                 the server down (its data kept), now
#   s3_restart              the server up again on the same endpoint, ready
#   s3_identity             the server's key pair (S3_KEY, S3_SECRET) in the
#                           environment for zerofs and aws; no user config
#   s3_log_count STATUS KEYRE  requests for keys matching the extended
#                           regular expression KEYRE answered STATUS, from
#                           the server's log
#   aws_s3api ARGS...       Debian's aws CLI against the server
#   aws_list_keys BUCKET ROOT [SUB [ARGS...]]  the keys under ROOT/SUB as the
#                           aws CLI lists them (ARGS added to its call),
#                           without ROOT/, sorted, one a line
S3_SERVER=${ZF_S3_SERVER:-s3rver}
S3_LOG=
S3_BUCKET=
case $S3_SERVER in
s3rver)
	. "$(dirname "${BASH_SOURCE[0]}")/s3rver.sh"
	S3_KEY=S3RVER S3_SECRET=S3RVER ;;
rgw)
	. "$(dirname "${BASH_SOURCE[0]}")/rgw.sh"
	S3_KEY=$RGW_KEY S3_SECRET=$RGW_SECRET ;;
*)
	echo "ZF_S3_SERVER='$S3_SERVER': want s3rver or rgw"
	exit 1 ;;
esac

# Debian's aws CLI when installed (the one the CI machine gets), else any
if [ -x /usr/bin/aws ]; then
	AWS=${AWS:-/usr/bin/aws}
else
	AWS=${AWS:-aws}
fi

s3_up() {
	require_cmds "Debian: awscli python3; ./setup.sh deps" "$AWS" python3
	S3_BUCKET=$1
	case $S3_SERVER in
	s3rver)
		s3rver_require
		s3rver_install || exit 1
		s3rver_start "$T/s3" "$1" || exit 1
		S3_LOG=$T/s3.log ;;
	rgw)
		rgw_require
		rgw_start "$T/rgw" "$1" || exit 1 ;;
	esac
	echo "# $S3_SERVER on $S3_ENDPOINT"
	s3_identity
}

s3_stop() {
	case $S3_SERVER in
	s3rver) s3rver_stop ;;
	rgw) rgw_gateway_stop ;;
	esac
}

s3_restart() {
	case $S3_SERVER in
	s3rver) S3RVER_PORT=$S3_PORT s3rver_start "$T/s3" "$S3_BUCKET" ;;
	rgw) rgw_gateway_start ;;
	esac
}

s3_identity() {
	export AWS_ACCESS_KEY_ID=$S3_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET AWS_DEFAULT_REGION=us-east-1
	export AWS_CONFIG_FILE=$T/aws-config AWS_SHARED_CREDENTIALS_FILE=$T/aws-credentials
	export AWS_PAGER="" AWS_EC2_METADATA_DISABLED=true
	unset AWS_SESSION_TOKEN AWS_PROFILE AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3
}

# s3rver logs 'GET /bucket/key 206 ...', RGW '"GET /bucket/key HTTP/1.1" 206 ...'
s3_log_count() {
	grep -Eac "$2( HTTP/1\.1\")? $1 " "$S3_LOG"
}

aws_s3api() {
	"$AWS" --endpoint-url "$S3_ENDPOINT" --region us-east-1 s3api "$@"
}

aws_list_keys() {
	aws_s3api list-objects-v2 --bucket "$1" --prefix "$2/${3:-}" "${@:4}" \
		--query 'Contents[].Key' --output json |
		python3 -c 'import json, sys; [print(k[len(sys.argv[1]) + 1:]) for k in sorted(json.load(sys.stdin) or [])]' "$2"
}
