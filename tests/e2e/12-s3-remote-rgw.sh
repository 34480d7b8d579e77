#!/usr/bin/env bash
# tests/e2e/12-s3-remote.sh against Ceph RGW on a one-node cluster (tests/e2e/rgw.sh)
# instead of s3rver; skipped, with the reason, where Ceph cannot be installed
ZF_S3_SERVER=rgw exec "$(dirname "$0")/12-s3-remote.sh" "$@"
