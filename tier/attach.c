/*
 * tier/attach.c - attaching a bucket: is it this filesystem's, and ours to write?
 *
 * Before anything goes up: the bucket's superblock must be this dev-dir's
 * (or absent, or damaged in a bucket whose metadata is ours: put back), the
 * lease is taken, and the bucket must hold no log record this dev-dir did
 * not put -- unless upload.state was merely behind and every such object is
 * byte for byte what this dev-dir would put (adopted).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lock.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "storage/bucket_keys.h"
#include "storage/keys.h"
#include "storage/superblock.h"
#include "storage/mlog.h"
#include "tier/scan.h"

struct foreign {
	uint64_t seq, claim;	/* this dev-dir put records up to seq, maybe up to claim */
	uint64_t last;		/* last record of an object it did not put (0: none) */
	/* those objects (they may still be this dev-dir's: see adopt_foreign) */
	struct fobj {
		uint64_t a, b;	/* a log piece a..b; a checkpoint: a = b = its seq, ckpt */
		int ckpt;
	} *objs;
	size_t nobjs;
	uint64_t ckpt;		/* the newest checkpoint among them */
};

/*
 * Objects beyond seq are foreign unless they are the one put this dev-dir
 * may have made before a crash: log.<seq+1>-<claim> or ckpt.<claim>.
 */
static int foreign_fn(void *ctx, const char *key, uint64_t size)
{
	struct foreign *f = ctx;
	struct zf_bkey k;
	uint64_t a, b;

	(void)size;
	zf_bkey_parse(key, &k);
	a = k.a;
	b = k.b;
	if (k.kind == ZF_BKEY_IS_LOG) {
		if (b > f->seq && !(a == f->seq + 1 && b == f->claim)) {
			if (b > f->last)
				f->last = b;
			f->objs = zf_realloc(f->objs, (f->nobjs + 1) * sizeof(*f->objs));
			f->objs[f->nobjs++] = (struct fobj){ a, b, 0 };
		}
	} else if (k.kind == ZF_BKEY_IS_CKPT) {
		if (a > f->seq && a != f->claim) {
			if (a > f->last)
				f->last = a;
			f->objs = zf_realloc(f->objs, (f->nobjs + 1) * sizeof(*f->objs));
			f->objs[f->nobjs++] = (struct fobj){ a, a, 1 };
			if (a > f->ckpt)
				f->ckpt = a;
		}
	}
	return 0;
}

/*
 * The bucket holds metadata beyond what upload.state says this dev-dir put:
 * another dev-dir wrote it — or upload.state was lost or damaged (it is
 * not checksummed). Objects this dev-dir put are byte for byte what it can
 * build again: a log piece is the image of its records (zf_fs_log_image),
 * a checkpoint the local file of the same name. When every such object is
 * identical, they are this dev-dir's: the watermarks move up to them (and
 * segments are shipped again from the first: re-uploads cost bytes, never
 * data). Anything that differs, or cannot be compared, stays foreign.
 * Returns 1 (adopted), 0 (foreign), or the store's -errno.
 */
static int adopt_foreign(struct zf_remote *rm, const struct foreign *f)
{
	char key[ZF_BKEY_MAX], name[64], why[200];
	size_t i;
	int r;

	for (i = 0; i < f->nobjs; i++) {
		const struct fobj *o = &f->objs[i];
		struct zf_buf mine = { 0 };
		void *theirs = NULL;
		size_t len = 0;

		if (o->ckpt) {
			zf_ckpt_name(o->a, name, sizeof(name));
			zf_bkey_ckpt(o->a, key, sizeof(key));
			r = zf_read_file(rm->metafd, name, (void **)&mine.p, &mine.len);
		} else {
			zf_bkey_log(o->a, o->b, key, sizeof(key));
			r = zf_fs_log_image(rm->fs, o->a, o->b, &mine);
		}
		if (r == 0)
			r = zf_tier_get_obj(rm->up, &rm->seal, key, &theirs, &len, why,
					    sizeof(why));
		if (r == 0 && (len != mine.len || memcmp(theirs, mine.p, len)))
			r = 1;
		free(theirs);
		zf_buf_free(&mine);
		if (r != 0)
			return r < 0 && r != -ENOENT && r != -EBADMSG ? r : 0;
	}
	zf_mutex_lock(&rm->lock);
	rm->up_seq = rm->claim_seq = f->last;
	if (f->ckpt > rm->up_ckpt)
		rm->up_ckpt = f->ckpt;
	rm->up_seg = 0;
	zf_mutex_unlock(&rm->lock);
	zf_warn("upload.state of '%s' was behind the bucket, whose log is this dev-dir's (every "
		"object beyond it identical): taken up to record %llu; segments are shipped "
		"again", rm->dev_real, (unsigned long long)f->last);
	r = zf_tier_state_save(rm);
	return r < 0 ? r : 1;
}

/* does the bucket's own metadata say it is this filesystem's? 1, 0, or -errno */
static int bucket_is_ours(struct zf_remote *rm)
{
	uint8_t fsid[16];
	int r = zf_tier_meta_fsid(rm->up, &rm->seal, fsid);

	return r > 0 ? !memcmp(fsid, rm->fsid, 16) : r;
}

/*
 * Is the bucket's superblock this dev-dir's? SB_OURS, SB_ABSENT, SB_HEAL
 * (damaged or replaced, but the bucket's metadata is ours: put ours back),
 * SB_FOREIGN (a valid superblock of another filesystem, and nothing says
 * the bucket is ours), SB_UNSURE (damaged, and nothing tells whose it is);
 * or the store's -errno (an outage is not a mismatch). why says what differs.
 */
int zf_tier_sb_classify(struct zf_remote *rm, char *why, size_t wlen)
{
	void *ours = NULL, *theirs = NULL;
	size_t olen = 0, tlen = 0;
	uint8_t fsid[16];
	int r, damaged, mine;

	why[0] = 0;
	r = zf_objstore_get(rm->up, ZF_BKEY_SUPERBLOCK, 0, 0, &theirs, &tlen);
	if (r == -ENOENT)
		return SB_ABSENT;
	if (r < 0)
		return r;
	r = zf_read_file(rm->devfd, "superblock", &ours, &olen);
	if (r < 0)
		goto out;
	if (olen == tlen && !memcmp(ours, theirs, olen)) {
		r = SB_OURS;
		goto out;
	}
	damaged = zf_tier_sb_verify(theirs, tlen, fsid, why, wlen) < 0;
	if (!damaged)
		snprintf(why, wlen, "%s", memcmp(fsid, rm->fsid, 16) ? "another filesystem's"
				: "this filesystem's id, but other bytes");
	mine = bucket_is_ours(rm);
	if (mine < 0)
		r = mine;
	else if (mine)
		r = SB_HEAL;
	else
		r = damaged ? SB_UNSURE : SB_FOREIGN;
out:
	free(ours);
	free(theirs);
	return r;
}

/*
 * 0 if the bucket's superblock is ours, absent (*ret_put) or to be healed
 * (*ret_put: damaged or replaced in a bucket whose metadata is ours);
 * -EEXIST (logged) if the bucket is another filesystem's; the store's
 * -errno when it did not answer.
 */
static int check_superblock(struct zf_remote *rm, int *ret_put)
{
	char why[200];
	int r;

	*ret_put = 0;
	r = zf_tier_sb_classify(rm, why, sizeof(why));
	if (r < 0)
		return r;
	switch (r) {
	case SB_OURS:
		return 0;
	case SB_ABSENT:
		*ret_put = 1;
		return 0;
	case SB_HEAL:
		zf_warn("the superblock in the bucket '%s' is damaged (%s) while the bucket's "
			"metadata is this filesystem's: putting back '%s/superblock'",
			rm->url, why, rm->dev_real);
		*ret_put = 1;
		return 0;
	case SB_UNSURE:
		zf_err("the superblock in the bucket '%s' is damaged (%s) and the bucket's metadata "
		       "does not tell whose it is; if the bucket is this filesystem's, 'zerofs fsck "
		       "--repair' puts it back", rm->url, why);
		return -EEXIST;
	default:
		zf_err("the bucket '%s' holds another filesystem: its superblock differs from "
		       "'%s/superblock'",
		       rm->url, rm->dev_real);
		return -EEXIST;
	}
}

/*
 * Take the lease and check the bucket before anything goes up: it must hold
 * this filesystem (or nothing yet) and no log record this dev-dir did not
 * put. A refusal is -EEXIST, -EBUSY or -ESTALE (logged); other errors come
 * from the store.
 */
int zf_tier_attach(struct zf_remote *rm)
{
	struct foreign f = { 0 };
	int r, put_sb;

	r = check_superblock(rm, &put_sb);
	if (r < 0)
		return r;
	r = zf_tier_lease_acquire(rm);
	if (r == -EBUSY) {
		zf_mutex_lock(&rm->lock);
		rm->fenced = 1;
		zf_mutex_unlock(&rm->lock);
	}
	if (r < 0)
		return r;
	zf_mutex_lock(&rm->lock);
	f.seq = rm->up_seq;
	f.claim = rm->claim_seq;
	zf_mutex_unlock(&rm->lock);
	/* an encrypted filesystem's wrapped key goes first: the bucket alone restores it */
	if (put_sb && (rm->seal.features & ZF_FEAT_ENCRYPT))
		r = zf_tier_put_file(rm, rm->devfd, ZF_KEYS_NAME, ZF_BKEY_KEYS);
	if (r == 0 && put_sb)
		r = zf_tier_put_file(rm, rm->devfd, "superblock", ZF_BKEY_SUPERBLOCK);
	if (r == 0)
		r = zf_objstore_list(rm->up, ZF_BKEY_META_PREFIX, foreign_fn, &f);
	if (r == 0 && f.last && adopt_foreign(rm, &f) == 1)
		f.last = 0;
	free(f.objs);
	if (r < 0)
		return r;
	if (f.last) {
		zf_err("the bucket '%s' holds log records up to %llu that this dev-dir did not put "
		       "(it put up to %llu): another dev-dir (a restored copy?) has written to it "
		       "since, and uploading would fork the filesystem; restore a new dev-dir from "
		       "the bucket ('zerofs mkfs --restore') or give this one a new bucket",
		       rm->url, (unsigned long long)f.last, (unsigned long long)f.seq);
		zf_objstore_delete(rm->up, ZF_BKEY_LEASE);
		zf_mutex_lock(&rm->lock);
		rm->fenced = 1;
		zf_mutex_unlock(&rm->lock);
		return -ESTALE;
	}
	rm->need_lease = 0;
	return 0;
}
