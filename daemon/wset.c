/*
 * daemon/wset.c - the working set's extended attributes (daemon/wset.h):
 * names to calls of the tier (tier/wset.c), or of the core alone when the
 * filesystem has no bucket.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "daemon/wset.h"
#include "storage/fs_tier.h"

enum { WS_PIN, WS_WARMUP, WS_EVICT, WS_STATUS, WS_UNKNOWN };

static int which(const char *name)
{
	static const char *const names[] = { "pin", "warmup", "evict", "status" };
	const char *s = name + strlen(ZF_WSET_PREFIX);
	int i;

	for (i = 0; i < WS_UNKNOWN; i++)
		if (!strcmp(s, names[i]))
			return i;
	return WS_UNKNOWN;
}

int zf_wset_name(const char *name)
{
	return !strncmp(name, ZF_WSET_PREFIX, strlen(ZF_WSET_PREFIX));
}

int zf_wset_evicts(const char *name)
{
	return zf_wset_name(name) && which(name) == WS_EVICT;
}

int zf_wset_set(struct zf_fs *fs, struct zf_remote *rm, uint64_t ino, const char *name)
{
	char why[200];
	int r;

	switch (which(name)) {
	case WS_PIN:
		if (!rm)
			return zf_fs_set_pinned(fs, ino, 1);
		r = zf_remote_pin(rm, ino, 1, why, sizeof(why));
		if (r == -ENOSPC)
			zf_warn("inode %" PRIu64 " not pinned: %s", ino, why);
		return r;
	case WS_WARMUP:
		return rm ? zf_remote_warmup(rm, ino, NULL) : 0;
	case WS_EVICT:
		return rm ? zf_remote_evict_file(rm, ino, NULL) : -EOPNOTSUPP;
	default:
		return -EOPNOTSUPP;
	}
}

/* status without a bucket: every byte the file maps is local */
static int local_status(struct zf_fs *fs, uint64_t ino, struct zf_file_status *st)
{
	struct zf_file_piece *p;
	size_t n, i;
	int r;

	memset(st, 0, sizeof(*st));
	r = zf_fs_pinned(fs, ino);
	if (r < 0)
		return r;
	st->pinned = r;
	r = zf_fs_file_pieces(fs, ino, &p, &n);
	if (r == -EISDIR)
		return 0;
	if (r < 0)
		return r;
	for (i = 0; i < n; i++)
		st->local += p[i].bytes;
	free(p);
	return 0;
}

/* a value into buf as getxattr returns it (size 0: its length only) */
static ssize_t value(const char *v, char *buf, size_t size)
{
	size_t len = strlen(v);

	if (size == 0)
		return len;
	if (size < len)
		return -ERANGE;
	memcpy(buf, v, len);
	return len;
}

ssize_t zf_wset_get(struct zf_fs *fs, struct zf_remote *rm, uint64_t ino, const char *name,
		    char *buf, size_t size)
{
	struct zf_file_status st;
	char v[160];
	int r;

	switch (which(name)) {
	case WS_PIN:
		r = zf_fs_pinned(fs, ino);
		if (r <= 0)
			return r < 0 ? r : -ENODATA;
		return value("1", buf, size);
	case WS_STATUS:
		r = rm ? zf_remote_file_status(rm, ino, &st) : local_status(fs, ino, &st);
		if (r < 0)
			return r;
		snprintf(v, sizeof(v), "local=%" PRIu64 " bucket=%" PRIu64 " pending=%" PRIu64
			 " pinned=%d\n", st.local, st.bucket, st.pending, st.pinned);
		return value(v, buf, size);
	case WS_WARMUP:
	case WS_EVICT:
		return -ENODATA; /* actions: nothing to read */
	default:
		return -EOPNOTSUPP;
	}
}

int zf_wset_remove(struct zf_fs *fs, struct zf_remote *rm, uint64_t ino, const char *name)
{
	if (which(name) != WS_PIN)
		return -EOPNOTSUPP;
	return rm ? zf_remote_pin(rm, ino, 0, NULL, 0) : zf_fs_set_pinned(fs, ino, 0);
}
