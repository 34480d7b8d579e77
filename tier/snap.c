/*
 * tier/snap.c - snapshots in the bucket (storage/fs_snap.h has what one is)
 *
 * A snapshot's checkpoint goes to snap/<name>, sealed like the bucket's
 * checkpoints, once everything it references is in the bucket (a sync
 * first): a restore brings it back whole. It leaves the bucket before the
 * dev-dir's copy goes: while the dev-dir has it, gc keeps its segments, so
 * the bucket's copy never names a segment gc removed. A replica (or a
 * restored dev-dir) fetches a snapshot it lacks, verified.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/endian.h"
#include "common/log.h"
#include "common/util.h"
#include "net/objstore.h"
#include "storage/bucket_keys.h"
#include "storage/fs_snap.h"
#include "tier/tier_internal.h"
#include "tier/verify.h"

int zf_remote_snapshot_put(struct zf_remote *rm, const char *name, char *why, size_t len)
{
	char file[64], key[ZF_BKEY_MAX + ZF_SNAP_NAME_MAX];
	void *buf;
	size_t blen;
	int r;

	if (rm->o.readonly)
		return -EROFS;
	/* its segments and the log up to it first: the object must restore whole */
	r = zf_remote_sync_wait(rm, NULL, why, len);
	if (r < 0)
		return r;
	zf_snap_file(name, file, sizeof(file));
	r = zf_read_file(rm->metafd, file, &buf, &blen);
	if (r < 0) {
		snprintf(why, len, "cannot read '%s/meta/%s': %s", rm->dev_real, file, strerror(-r));
		return r;
	}
	zf_bkey_snap(name, key, sizeof(key));
	r = zf_tier_put_obj(rm->up, &rm->seal, key, buf, blen);
	free(buf);
	if (r < 0)
		snprintf(why, len, "cannot put '%s' into '%s': %s", key, rm->url, strerror(-r));
	return r;
}

int zf_remote_snapshot_create(struct zf_fs *fs, struct zf_remote *rm, const char *name,
			      uint64_t *ret_seq, char *why, size_t len)
{
	int r = zf_fs_snapshot_create(fs, name, ret_seq);

	if (r == -EINVAL)
		snprintf(why, len, "'%s' is not a snapshot name (1 to %d letters, digits, '.', "
			 "'_' and '-', not starting with '.' or '-', no '.tmp')", name,
			 ZF_SNAP_NAME_MAX);
	else if (r == -EEXIST)
		snprintf(why, len, "snapshot '%s' exists", name);
	else if (r < 0)
		snprintf(why, len, "%s", strerror(-r));
	if (r == -EEXIST && rm && !rm->o.readonly) {
		char w2[8];

		zf_remote_snapshot_put(rm, name, w2, sizeof(w2)); /* one that did not go up goes */
	}
	if (r < 0 || !rm)
		return r;
	r = zf_remote_snapshot_put(rm, name, why, len);
	if (r < 0) {
		char w[400];

		snprintf(w, sizeof(w), "%s", why);
		snprintf(why, len, "snapshot '%s' is made in the dev-dir, not in the bucket yet (%s): "
			 "'zerofs snapshot create %s' again puts it there", name, w, name);
	}
	return r;
}

int zf_remote_snapshot_remove(struct zf_fs *fs, struct zf_remote *rm, const char *name,
			      char *why, size_t len)
{
	int r = 0;

	if (!zf_snap_name_ok(name)) {
		snprintf(why, len, "no snapshot '%s'", name);
		return -ENOENT;
	}
	if (rm)
		r = zf_remote_snapshot_delete(rm, name);
	if (r < 0) {
		snprintf(why, len, "cannot delete it from '%s' (%s): it stays", rm->url,
			 strerror(-r));
		return r;
	}
	r = zf_fs_snapshot_delete(fs, name);
	if (r == -ENOENT)
		snprintf(why, len, "no snapshot '%s'", name);
	else if (r < 0)
		snprintf(why, len, "%s", strerror(-r));
	return r;
}

int zf_remote_snapshot_delete(struct zf_remote *rm, const char *name)
{
	char key[ZF_BKEY_MAX + ZF_SNAP_NAME_MAX];

	if (rm->o.readonly)
		return -EROFS;
	zf_bkey_snap(name, key, sizeof(key));
	return zf_objstore_delete(rm->up, key);
}

struct snap_names {
	char **v;
	size_t n;
};

static int snap_name(void *ctx, const char *key, uint64_t size)
{
	struct snap_names *s = ctx;
	struct zf_bkey k;

	(void)size;
	if (zf_bkey_parse(key, &k) == ZF_BKEY_IS_SNAP) {
		s->v = zf_realloc(s->v, (s->n + 1) * sizeof(*s->v));
		s->v[s->n++] = zf_strdup(key + strlen(ZF_BKEY_SNAP_PREFIX));
	}
	return 0;
}

int zf_tier_snapshot_names(struct zf_objstore *os, char ***ret, size_t *ret_n)
{
	struct snap_names s = { 0 };
	int r = zf_objstore_list(os, ZF_BKEY_SNAP_PREFIX, snap_name, &s);

	if (r < 0) {
		zf_tier_names_free(s.v, s.n);
		return r;
	}
	*ret = s.v;
	*ret_n = s.n;
	return 0;
}

void zf_tier_names_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int zf_tier_snapshot_get(struct zf_objstore *os, const struct zf_seal *seal,
			 const uint8_t fsid[16], const char *key, void **ret, size_t *ret_len,
			 char *why, size_t wlen)
{
	void *buf;
	size_t len;
	int r;

	r = zf_tier_get_obj(os, seal, key, &buf, &len, why, wlen);
	if (r < 0)
		return r;
	/* a checkpoint as of the record its header names */
	r = len >= 64 ? zf_tier_ckpt_verify(buf, len, fsid, zf_get64((uint8_t *)buf + 32), NULL,
					    NULL, why, wlen)
		      : (snprintf(why, wlen, "too short for a checkpoint"), -EBADMSG);
	if (r < 0) {
		free(buf);
		return r;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}

int zf_remote_snapshot_fetch(struct zf_remote *rm, const char *name)
{
	char file[64], key[ZF_BKEY_MAX + ZF_SNAP_NAME_MAX], why[256];
	void *buf;
	size_t len;
	int r;

	zf_snap_file(name, file, sizeof(file));
	if (faccessat(rm->metafd, file, F_OK, 0) == 0)
		return 0;
	zf_bkey_snap(name, key, sizeof(key));
	r = zf_tier_snapshot_get(rm->up, &rm->seal, rm->fsid, key, &buf, &len, why, sizeof(why));
	if (r == -ENOENT) {
		zf_err("the bucket '%s' has no snapshot '%s'", rm->url, name);
		return r;
	}
	if (r < 0) {
		zf_err("snapshot '%s' in '%s': %s", name, rm->url, r == -EBADMSG ? why : strerror(-r));
		return r;
	}
	r = zf_publish_file(rm->metafd, file, buf, len);
	free(buf);
	return r;
}
