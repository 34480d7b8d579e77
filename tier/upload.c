/*
 * tier/upload.c - an upload round
 *
 * Upload order keeps the bucket restorable at every moment: sealed segments
 * first (up to UPLOAD_PUTS at a time; upload.state's segment mark moves over
 * the ones up without a gap, so a crash redoes at most those in flight);
 * then a newer checkpoint (after the segments it references), after which
 * the log pieces it covers are pruned; then the log since, as one piece;
 * then the head. upload.state moves after each.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/lock.h"
#include "common/buf.h"
#include "common/util.h"
#include "storage/bucket_keys.h"
#include "storage/mlog.h"
#include "storage/segstore.h"
#include "storage/seal.h"
#include "storage/superblock.h"
#include "tier/tier_internal.h"

/*
 * Segment PUTs in flight in a round. Each holds its segment in memory
 * (16 MiB by default): 4 bound that to 64 MiB while a bucket far away
 * (one PUT at a time is a round trip per 16 MiB) gets 4 streams.
 */
#define UPLOAD_PUTS 4u

/*
 * Why a round failed, for 'zerofs sync' (zf_remote_sync_why): the store's
 * answer (local 0) or the dev-dir's (1), doing what. Returns r.
 */
static int round_fail(struct zf_remote *rm, int r, int local, const char *what, const char *key)
{
	zf_mutex_lock(&rm->lock);
	rm->fail_local = local;
	snprintf(rm->fail_what, sizeof(rm->fail_what), "%s%s%s%s", what, key ? " '" : "",
		 key ? key : "", key ? "'" : "");
	zf_mutex_unlock(&rm->lock);
	return r;
}

int zf_tier_put_file(struct zf_remote *rm, int dirfd, const char *name, const char *key)
{
	struct zf_bkey k;
	void *buf;
	size_t len;
	int r;

	r = zf_read_file(dirfd, name, &buf, &len);
	if (r == -ENOENT)
		return r; /* the caller knows what a missing file means */
	if (r < 0)
		return round_fail(rm, r, 1, "reading", name);
	zf_mutex_lock(&rm->lock);
	rm->puts_in_flight++;
	zf_mutex_unlock(&rm->lock);
	/* a segment is sealed in place: no second copy of 16 MiB per PUT */
	if (zf_bkey_parse(key, &k) == ZF_BKEY_IS_SEG)
		r = zf_seal_seg(&rm->seal, k.a, buf, len) < 0 ? -EIO
							      : zf_objstore_put(rm->up, key, buf, len);
	else
		r = zf_tier_put_obj(rm->up, &rm->seal, key, buf, len);
	free(buf);
	zf_mutex_lock(&rm->lock);
	rm->puts_in_flight--;
	if (r == 0)
		rm->puts++;
	zf_mutex_unlock(&rm->lock);
	if (r == 0) {
		zf_mutex_lock(&rm->lock);
		rm->uploaded += len;
		zf_mutex_unlock(&rm->lock);
	}
	return r < 0 ? round_fail(rm, r, 0, "PUT", key) : 0;
}

struct prune_ctx {
	uint64_t ckpt;
	char **keys;
	size_t n;
};

static int prune_fn(void *ctx, const char *key, uint64_t size)
{
	struct prune_ctx *p = ctx;
	struct zf_bkey k;

	zf_bkey_parse(key, &k);
	if ((k.kind == ZF_BKEY_IS_LOG && k.b <= p->ckpt) ||
	    (k.kind == ZF_BKEY_IS_CKPT && k.a < p->ckpt)) {
		p->keys = zf_realloc(p->keys, (p->n + 1) * sizeof(*p->keys));
		p->keys[p->n++] = zf_strdup(key);
	}
	return 0;
}

/* the bucket holds checkpoint ckpt: log pieces it covers can go */
static void prune_meta(struct zf_remote *rm, uint64_t ckpt)
{
	struct prune_ctx p = { .ckpt = ckpt };
	size_t i;

	if (zf_objstore_list(rm->up, ZF_BKEY_META_PREFIX, prune_fn, &p) == 0 && p.n)
		zf_objstore_multi_delete(rm->up, (const char *const *)p.keys, p.n);
	for (i = 0; i < p.n; i++)
		free(p.keys[i]);
	free(p.keys);
}

/* a failure that may pass (the store is down or slow), not a refusal */
int zf_tier_transient(int r)
{
	return r == -EIO || r == -ETIMEDOUT || r == -ECONNREFUSED || r == -EHOSTUNREACH ||
	       r == -EAGAIN;
}

/*
 * Write upload.state, the head first if it is behind: upload.state never
 * counts more than the bucket's head says, or a crash between the two
 * leaves a stale head (fsck's problem). A checkpoint raises up_seq with no
 * log piece and no head of its own, so the next save must bring the head
 * along. The failure is the round's (round_fail).
 */
static int state_save(struct zf_remote *rm)
{
	int r = zf_tier_head_update(rm);

	if (r < 0)
		return round_fail(rm, r, 0, "PUT", ZF_BKEY_HEAD);
	r = zf_tier_state_save(rm);
	if (r < 0)
		return round_fail(rm, r, 1, "writing", "upload.state");
	return 0;
}

/* the bucket may hold log records up to seq from us: on disk before they go up */
static int claim(struct zf_remote *rm, uint64_t seq)
{
	zf_mutex_lock(&rm->lock);
	if (seq <= rm->claim_seq) {
		zf_mutex_unlock(&rm->lock);
		return 0;
	}
	rm->claim_seq = seq;
	zf_mutex_unlock(&rm->lock);
	return state_save(rm);
}

/* segments first..last of a round, UPLOAD_PUTS at a time (put_segments) */
struct seg_job {
	struct zf_remote *rm;
	uint64_t first, last;
	uint64_t next;		/* the next to take (atomic) */
	pthread_mutex_t mu;	/* a leaf: up[], mark, err; held to save the mark */
	uint8_t *up;		/* up[seg - first]: in the bucket */
	uint64_t mark;		/* every segment up to it is in the bucket */
	int err;		/* the first failure: no more are taken */
};

/* one segment up; 0 or the PUT's error (round_fail says it) */
static int put_segment(struct zf_remote *rm, uint64_t seg)
{
	char name[64], key[ZF_BKEY_MAX];
	struct stat st;
	int r;

	zf_segstore_name(seg, name, sizeof(name));
	zf_bkey_seg(seg, key, sizeof(key));
	r = zf_tier_put_file(rm, rm->segfd, name, key);
	if (r == -ENOENT && zf_objstore_head(rm->up, key, &(struct zf_objstore_stat){ 0 }) == 0)
		return 0; /* evicted earlier: the bucket has it */
	if (r == -ENOENT)
		return round_fail(rm, r, 1, "reading", name);
	if (r == 0 && fstatat(rm->segfd, name, &st, 0) == 0)
		zf_tier_note_segment(rm, st.st_size);
	return r;
}

static void *seg_worker(void *arg)
{
	struct seg_job *j = arg;
	uint64_t seg;
	int r, moved;

	for (;;) {
		seg = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
		pthread_mutex_lock(&j->mu);
		if (seg > j->last || j->err) {
			pthread_mutex_unlock(&j->mu);
			return NULL;
		}
		pthread_mutex_unlock(&j->mu);
		r = put_segment(j->rm, seg);
		pthread_mutex_lock(&j->mu);
		if (r < 0 && !j->err)
			j->err = r;
		if (r == 0)
			j->up[seg - j->first] = 1;
		moved = 0;
		/* a run that is all up moves the mark, even after another failed */
		while (j->mark < j->last && j->up[j->mark + 1 - j->first]) {
			j->mark++;
			moved = 1;
		}
		if (moved) {
			zf_mutex_lock(&j->rm->lock);
			j->rm->up_seg = j->mark;
			j->rm->progress_ns = zf_mono_ns();
			j->rm->sync_err = 0;
			zf_mutex_unlock(&j->rm->lock);
			/* a crash now must not redo these segments: segments are the bulk */
			r = state_save(j->rm);
			if (r < 0 && !j->err)
				j->err = r;
		}
		pthread_mutex_unlock(&j->mu);
		if (moved) {
			/* room for stalled writers now, not after the whole round */
			zf_tier_evict(j->rm);
			zf_mutex_lock(&j->rm->lock);
			pthread_cond_broadcast(&j->rm->done);
			zf_mutex_unlock(&j->rm->lock);
		}
	}
}

/*
 * Put sealed segments first..last, UPLOAD_PUTS at a time. upload.state's
 * mark moves over every run of them that is up without a gap (so a crash
 * redoes only those that were in flight). 0 or the first failure.
 */
static int put_segments(struct zf_remote *rm, uint64_t first, uint64_t last)
{
	struct seg_job j = { .rm = rm, .first = first, .last = last, .next = first,
			     .mark = first - 1 };
	uint64_t n = last - first + 1;

	pthread_mutex_init(&j.mu, NULL);
	j.up = zf_calloc(n, 1);
	zf_run_workers(n < UPLOAD_PUTS ? (unsigned int)n : UPLOAD_PUTS, seg_worker, &j);
	pthread_mutex_destroy(&j.mu);
	free(j.up);
	return j.err;
}

int zf_tier_upload_round(struct zf_remote *rm, int seal)
{
	struct zf_upload_point pt;
	uint64_t up_seq, up_seg, up_ckpt, buffered_since;
	struct zf_buf img = { 0 };
	char name[64], key[ZF_BKEY_MAX];
	int r, flush;

	/* stalled writers wait for buffered data too: it must reach a segment */
	zf_mutex_lock(&rm->lock);
	flush = rm->waiters > 0;
	rm->fresh_since_ns = 0; /* writes from now on are not in this round */
	zf_mutex_unlock(&rm->lock);
	r = flush ? zf_fs_sync(rm->fs) : 0;
	if (r == 0)
		r = zf_fs_upload_point(rm->fs, seal, &pt);
	if (r < 0)
		return round_fail(rm, r, 1, "committing the log", NULL);
	/* written, not committed: not in this round either */
	buffered_since = zf_fs_buffered_since(rm->fs);
	/* the recovery point ages from now, even if the store is down */
	zf_mutex_lock(&rm->lock);
	if (pt.committed > rm->up_seq && !rm->pending_since_ns)
		rm->pending_since_ns = zf_mono_ns();
	zf_mutex_unlock(&rm->lock);
	r = rm->need_lease ? zf_tier_attach(rm) : zf_tier_lease_check(rm);
	if (r < 0)
		return round_fail(rm, r, 0, rm->need_lease ? "attaching" : "renewing the lease", NULL);
	/* the bucket answers: online before the backlog drains, never after it */
	zf_tier_online(rm);
	zf_mutex_lock(&rm->lock);
	up_seq = rm->up_seq;
	up_seg = rm->up_seg;
	up_ckpt = rm->up_ckpt;
	zf_mutex_unlock(&rm->lock);
	/* 1. sealed segments, several at a time; the mark moves over those up */
	if (pt.last_sealed > up_seg) {
		r = put_segments(rm, up_seg + 1, pt.last_sealed);
		if (r < 0)
			goto out;
	}
	/* 2. a newer checkpoint (all its segments are sealed and up by now) */
	if (pt.ckpt_seq > up_ckpt && pt.ckpt_seq <= pt.seq) {
		r = claim(rm, pt.ckpt_seq);
		if (r < 0)
			goto out;
		zf_ckpt_name(pt.ckpt_seq, name, sizeof(name));
		zf_bkey_ckpt(pt.ckpt_seq, key, sizeof(key));
		r = zf_tier_put_file(rm, rm->metafd, name, key);
		if (r == -ENOENT)
			r = 0; /* replaced by a newer one meanwhile: next round */
		else if (r == 0) {
			zf_mutex_lock(&rm->lock);
			rm->up_ckpt = pt.ckpt_seq;
			if (rm->up_seq < pt.ckpt_seq)
				rm->up_seq = pt.ckpt_seq;
			up_seq = rm->up_seq;
			zf_mutex_unlock(&rm->lock);
			prune_meta(rm, pt.ckpt_seq);
		}
		if (r < 0)
			goto out;
	}
	/* 3. the log since, as one piece */
	if (pt.seq > up_seq) {
		r = zf_fs_log_image(rm->fs, up_seq + 1, pt.seq, &img);
		if (r == -ENOENT) {
			r = 0; /* only in a checkpoint now: it goes up next round */
			goto out;
		}
		if (r < 0) {
			round_fail(rm, r, 1, "reading the log", NULL);
			goto out;
		}
		zf_bkey_log(up_seq + 1, pt.seq, key, sizeof(key));
		r = claim(rm, pt.seq);
		if (r < 0)
			goto out;
		r = zf_tier_put_obj(rm->up, &rm->seal, key, img.p, img.len);
		if (r < 0) {
			round_fail(rm, r, 0, "PUT", key);
			goto out;
		}
		zf_mutex_lock(&rm->lock);
		rm->uploaded += img.len;
		rm->puts++;
		rm->up_seq = pt.seq;
		rm->progress_ns = zf_mono_ns();
		zf_mutex_unlock(&rm->lock);
	}
	/* 4. the head, once what it counts is in the bucket */
	r = zf_tier_head_update(rm);
	if (r < 0) {
		round_fail(rm, r, 0, "PUT", ZF_BKEY_HEAD);
		goto out;
	}
	r = zf_tier_state_save(rm);
	if (r < 0)
		round_fail(rm, r, 1, "writing", "upload.state");
	zf_mutex_lock(&rm->lock);
	/*
	 * Caught up: what is pending now was written after the upload point,
	 * or was still buffered (not committed) then: the oldest of those.
	 */
	if (rm->up_seq >= pt.committed)
		rm->pending_since_ns = !buffered_since ? rm->fresh_since_ns
				       : !rm->fresh_since_ns || buffered_since < rm->fresh_since_ns
					       ? buffered_since
					       : rm->fresh_since_ns;
	else if (!rm->pending_since_ns)
		rm->pending_since_ns = zf_mono_ns();
	zf_mutex_unlock(&rm->lock);
out:
	zf_buf_free(&img);
	return r;
}

