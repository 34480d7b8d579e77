#!/usr/bin/env bash
# tests/e2e/35-replica.sh over Ceph RGW on a one-node cluster (tests/e2e/rgw.sh)
# instead of s3rver; skipped, with the reason, where Ceph cannot be installed
ZF_S3_SERVER=rgw ZF_REPLICA_S3=1 exec "$(dirname "$0")/35-replica.sh" "$@"
