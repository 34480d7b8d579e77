/*
 * storage/bucket_keys.c - the bucket's keys (see bucket_keys.h)
 *
 * A key parses only if formatting what it parsed to gives it back: one
 * spelling per object, whatever sscanf would tolerate.
 * Format: docs/FORMAT.md "Bucket".
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "storage/bucket_keys.h"
#include "storage/fs_snap.h"
#include "storage/mlog.h"
#include "storage/segstore.h"

void zf_bkey_seg(uint64_t id, char *buf, size_t len)
{
	char name[32];

	zf_segstore_name(id, name, sizeof(name));
	snprintf(buf, len, ZF_BKEY_SEG_PREFIX "%s", name);
}

void zf_bkey_ckpt(uint64_t seq, char *buf, size_t len)
{
	char name[32];

	zf_ckpt_name(seq, name, sizeof(name));
	snprintf(buf, len, ZF_BKEY_META_PREFIX "%s", name);
}

void zf_bkey_log(uint64_t first, uint64_t last, char *buf, size_t len)
{
	snprintf(buf, len, ZF_BKEY_META_PREFIX "log.%016" PRIx64 "-%016" PRIx64, first, last);
}

void zf_bkey_snap(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, ZF_BKEY_SNAP_PREFIX "%s", name);
}

enum zf_bkey_kind zf_bkey_parse(const char *key, struct zf_bkey *ret)
{
	char canon[ZF_BKEY_MAX];
	unsigned long long a, b;

	memset(ret, 0, sizeof(*ret));
	if (!strcmp(key, ZF_BKEY_SUPERBLOCK))
		ret->kind = ZF_BKEY_IS_SUPERBLOCK;
	else if (!strcmp(key, ZF_BKEY_LEASE))
		ret->kind = ZF_BKEY_IS_LEASE;
	else if (!strcmp(key, ZF_BKEY_HEAD))
		ret->kind = ZF_BKEY_IS_HEAD;
	else if (!strcmp(key, ZF_BKEY_KEYS))
		ret->kind = ZF_BKEY_IS_KEYS;
	else if (!strncmp(key, ZF_BKEY_SNAP_PREFIX, 5) && zf_snap_name_ok(key + 5))
		ret->kind = ZF_BKEY_IS_SNAP;
	else if (sscanf(key, ZF_BKEY_SEG_PREFIX "%16llx", &a) == 1) {
		zf_bkey_seg(a, canon, sizeof(canon));
		if (!strcmp(key, canon))
			*ret = (struct zf_bkey){ ZF_BKEY_IS_SEG, a, a };
	} else if (sscanf(key, ZF_BKEY_META_PREFIX "ckpt.%16llx", &a) == 1) {
		zf_bkey_ckpt(a, canon, sizeof(canon));
		if (!strcmp(key, canon))
			*ret = (struct zf_bkey){ ZF_BKEY_IS_CKPT, a, a };
	} else if (sscanf(key, ZF_BKEY_META_PREFIX "log.%16llx-%16llx", &a, &b) == 2) {
		zf_bkey_log(a, b, canon, sizeof(canon));
		if (!strcmp(key, canon) && a >= 1 && a <= b)
			*ret = (struct zf_bkey){ ZF_BKEY_IS_LOG, a, b };
	}
	return ret->kind;
}
