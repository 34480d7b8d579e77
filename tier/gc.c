/*
 * tier/gc.c - garbage collection with a bucket
 *
 * zf_fs_gc() keeps segments the bucket lacks; then the log goes up with a
 * checkpoint, and segment objects neither the dev-dir's table nor the
 * bucket's own metadata references are deleted from the bucket, as are
 * fetched copies of them. Nothing is deleted when the bucket's metadata
 * cannot be read whole.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/lock.h"
#include "common/endian.h"
#include "common/log.h"
#include "common/util.h"
#include "storage/bucket_keys.h"
#include "storage/fs_snap.h"
#include "storage/meta_format.h"
#include "storage/mlog.h"
#include "tier/scan.h"

/* segments up to max that the table (ids, sorted) no longer references */
struct sweep {
	const uint64_t *ids;
	size_t nids;
	const uint64_t *keep;		/* segments the bucket's metadata references, sorted */
	size_t nkeep;
	uint64_t max;
	char **keys;
	size_t nkeys;
	uint64_t bytes;
};

static int garbage_seg(const struct sweep *s, uint64_t id)
{
	return id && id <= s->max && !bsearch(&id, s->ids, s->nids, sizeof(*s->ids), zf_cmp_u64) &&
	       !(s->nkeep && bsearch(&id, s->keep, s->nkeep, sizeof(*s->keep), zf_cmp_u64));
}

struct bucket_refs {
	uint64_t *ids;
	size_t n;
	char first[400];		/* the first damage found */
	int quiet;			/* found, not logged: the scan is tried again */
};

static void refs_frame(void *ctx, const struct zf_frame *f)
{
	struct bucket_refs *b = ctx;

	if ((f->type == ZF_REC_SC || f->type == ZF_REC_SC_MOVE) && f->len >= 8) {
		b->ids = zf_realloc(b->ids, (b->n + 1) * sizeof(*b->ids));
		b->ids[b->n++] = zf_get64(f->payload);
	}
}

static void refs_say(void *ctx, int kind, const char *msg)
{
	struct bucket_refs *b = ctx;

	if (kind == SAY_WARN || kind == SAY_UNUSED)
		return;
	if (!b->quiet)
		zf_err("gc: %s", msg);
	if (!b->first[0])
		snprintf(b->first, sizeof(b->first), "%s", msg);
}

/*
 * The segments the bucket's own metadata references (SC and SC_MOVE
 * records of its newest checkpoint and of the log after it), every object
 * of it fetched and verified, and the log reaching the head: a restore from
 * the bucket needs them whatever the dev-dir's table says. -EBADMSG (logged)
 * when the metadata is damaged or incomplete, or the store's -errno.
 *
 * What does not verify is looked at again, twice, before it is called
 * damage: the uploader removes log pieces once a newer checkpoint is up
 * (a merge's, say), and a scan that listed them before may find them gone.
 */
static int bucket_refs_once(struct zf_remote *rm, int quiet, uint64_t **ret_ids, size_t *ret_n)
{
	struct bucket_refs b = { .quiet = quiet };
	struct mscan s = { .os = rm->up, .seal = &rm->seal, .fetch = 1, .frame = refs_frame, .say = refs_say,
			   .ctx = &b, .expect_src = "upload.state" };
	int r;

	memcpy(s.fsid, rm->fsid, 16);
	zf_mutex_lock(&rm->lock);
	s.expect = rm->up_seq;
	zf_mutex_unlock(&rm->lock);
	r = zf_mscan_run(&s);
	if (r == 0 && !b.first[0] && s.head_state <= 0 && (s.nckpts || s.npieces))
		snprintf(b.first, sizeof(b.first), "bucket object 'head' %s", s.head_state < 0 ?
			 s.head_why : "missing");
	if (r == 0 && b.first[0])
		r = -EBADMSG;
	if (r == -EBADMSG && quiet) {
		free(b.ids);
	} else if (r < 0) {
		zf_err("gc: the metadata of the bucket '%s' %s: nothing is deleted from the bucket "
		       "(run 'zerofs fsck --verify-data')", rm->url,
		       r == -EBADMSG ? "is damaged or incomplete" : "cannot be read");
		if (r != -EBADMSG)
			zf_err("gc: reading it failed: %s", strerror(-r));
		free(b.ids);
	} else {
		if (b.n)
			qsort(b.ids, b.n, sizeof(*b.ids), zf_cmp_u64);
		*ret_ids = b.ids;
		*ret_n = b.n;
	}
	zf_mscan_free(&s);
	return r;
}

static int bucket_refs(struct zf_remote *rm, uint64_t **ret_ids, size_t *ret_n)
{
	int r = -EBADMSG, i;

	for (i = 0; i < 3 && r == -EBADMSG; i++)
		r = bucket_refs_once(rm, i < 2, ret_ids, ret_n);
	return r;
}

static int sweep_fn(void *ctx, const char *key, uint64_t size)
{
	struct sweep *s = ctx;
	struct zf_bkey k;

	if (zf_bkey_parse(key, &k) != ZF_BKEY_IS_SEG || !garbage_seg(s, k.a))
		return 0;
	s->keys = zf_realloc(s->keys, (s->nkeys + 1) * sizeof(*s->keys));
	s->keys[s->nkeys++] = zf_strdup(key);
	s->bytes += size;
	return 0;
}

/* fetched super-chunks of garbage segments leave the dev-dir's cache */
static void sweep_cache(struct zf_remote *rm, const struct sweep *s)
{
	struct dirent *e;
	DIR *d;
	int fd = openat(rm->cachefd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(d))) {
		uint64_t id;

		if (zf_tier_cache_parse(e->d_name, &id, NULL) && garbage_seg(s, id))
			unlinkat(rm->cachefd, e->d_name, 0);
	}
	closedir(d);
}

/* v (sorted, *n of them) without the sorted drop[0..ndrop) */
static void drop_ids(uint64_t *v, size_t *n, const uint64_t *drop, size_t ndrop)
{
	size_t i, k = 0;

	for (i = 0; i < *n; i++)
		if (!bsearch(&v[i], drop, ndrop, sizeof(*drop), zf_cmp_u64))
			v[k++] = v[i];
	*n = k;
}

int zf_remote_gc(struct zf_remote *rm, const struct zf_gc_opts *o, struct zf_gc_report *rep)
{
	struct zf_gc_opts lo = *o;
	struct sweep s = { 0 };
	uint64_t *ids = NULL, *keep = NULL, *victims = NULL, seq, up_seq;
	size_t i, nvictims = 0;
	int r;

	if (rm->o.readonly)
		return -EROFS;
	/* only segments the bucket holds may leave the dev-dir */
	zf_mutex_lock(&rm->lock);
	lo.keep = 1;
	lo.keep_above = rm->up_seg;
	zf_mutex_unlock(&rm->lock);
	if (o->dry_run) {
		lo.ret_victims = &victims;
		lo.ret_nvictims = &nvictims;
	}
	r = zf_fs_gc(rm->fs, &lo, rep);
	if (r == 0)
		r = zf_fs_seg_refs(rm->fs, &ids, &s.nids, &s.max, &seq);
	if (r < 0)
		return r;
	s.ids = ids;
	if (!o->dry_run) {
		/*
		 * The bucket's log must reach seq before objects go: from then
		 * on a restore replays past every move gc made. A checkpoint
		 * with it lets the log pieces before it go as well.
		 */
		r = zf_fs_checkpoint(rm->fs);
		if (r == 0)
			r = zf_remote_sync(rm);
		zf_mutex_lock(&rm->lock);
		up_seq = rm->up_seq;
		zf_mutex_unlock(&rm->lock);
		if (r == 0 && up_seq < seq)
			r = -EAGAIN;
		if (r < 0) {
			zf_err("gc: the bucket '%s' did not take the log (%s): its garbage stays "
			       "until the next run", rm->url, strerror(-r));
			goto out;
		}
	}
	/* nothing the bucket's own metadata references goes, and nothing when it cannot be read */
	r = bucket_refs(rm, &keep, &s.nkeep);
	if (r < 0)
		goto out;
	/* nor what a snapshot holds (the table keeps referencing it too: twice sure) */
	{
		uint64_t *pins = NULL;
		size_t npins = 0;

		r = zf_fs_snapshot_segs(rm->fs, &pins, &npins);
		if (r < 0)
			goto out;
		keep = zf_realloc(keep, (s.nkeep + npins + 1) * sizeof(*keep));
		if (npins)
			memcpy(keep + s.nkeep, pins, npins * sizeof(*pins));
		s.nkeep += npins;
		free(pins);
		if (s.nkeep)
			qsort(keep, s.nkeep, sizeof(*keep), zf_cmp_u64);
	}
	if (o->dry_run && nvictims) {
		/*
		 * What the real run frees: it empties the victims, and then
		 * neither the table nor the bucket's metadata (a checkpoint goes
		 * up first) references them.
		 */
		drop_ids(ids, &s.nids, victims, nvictims);
		drop_ids(keep, &s.nkeep, victims, nvictims);
	}
	s.keep = keep;
	if (!o->dry_run)
		sweep_cache(rm, &s);
	r = zf_objstore_list(rm->up, ZF_BKEY_SEG_PREFIX, sweep_fn, &s);
	if (r == 0 && s.nkeys && !o->dry_run)
		r = zf_objstore_multi_delete(rm->up, (const char *const *)s.keys, s.nkeys);
	if (r < 0)
		zf_err("gc: cannot delete garbage in the bucket '%s': %s", rm->url, strerror(-r));
	else {
		rep->bucket_objects = s.nkeys;
		rep->bucket_bytes = s.bytes;
	}
out:
	for (i = 0; i < s.nkeys; i++)
		free(s.keys[i]);
	free(s.keys);
	free(ids);
	free(keep);
	free(victims);
	return r;
}

