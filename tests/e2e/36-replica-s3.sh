#!/usr/bin/env bash
# tests/e2e/35-replica.sh with the writer's bucket on an S3 server: s3rver,
# or with ZF_S3_SERVER=rgw (36-replica-s3-rgw.sh) Ceph's RGW
ZF_REPLICA_S3=1 exec "$(dirname "$0")/35-replica.sh" "$@"
