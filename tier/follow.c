/*
 * tier/follow.c - a replica follows its writer through the bucket
 *
 * A replica mounts a filesystem from its bucket read-only, with a
 * cache-dir of its own: it takes no lease and writes nothing to the
 * bucket. Its follower thread reads the bucket's head every poll
 * interval; once the writer's log is past the last record the replica
 * applied, a step fetches what follows through the chain scanner
 * (tier/scan.c, every object verified) into the cache-dir's meta/: the
 * log pieces from that record on, or, when the writer removed them behind
 * a newer checkpoint (or they do not join up), that checkpoint and the log
 * after it. The core applies them (zf_fs_follow: along, or a reload
 * swapped in whole) and the daemon drops what the kernel cached of what
 * changed (the notify callback; only this thread calls it, never a FUSE
 * request's thread, where an invalidation of the inode being read would
 * deadlock).
 *
 * A read that meets a segment the writer's gc removed (the bucket holds
 * the metadata that moved its chunks before the segment goes) runs a step
 * at once, unless one started after the read failed, and plans again
 * (zf_fs_set_stale); its changes wait in rm->follow_q for this thread.
 *
 * rm->follow_lock: one step at a time, held across its requests (taken by
 * this thread and by such a reader, which waits for the bucket anyway);
 * before fs->lock and rm->lock.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "net/objstore.h"
#include "storage/bucket_keys.h"
#include "storage/fs_snap.h"
#include "storage/fs_tier.h"
#include "storage/mlog.h"
#include "tier/scan.h"
#include "tier/tier_internal.h"

/* a verified object of the chain: into the cache-dir's meta/ */
static int follow_keep(void *ctx, const char *name, const void *buf, size_t len)
{
	struct zf_remote *rm = ctx;
	int r = zf_publish_file(rm->metafd, name, buf, len);

	if (r < 0)
		zf_err("replica: cannot write '%s/meta/%s': %s", rm->dev_real, name, strerror(-r));
	return r;
}

/* what the scan finds is said once per problem, not once a poll */
static void follow_say(void *ctx, int kind, const char *msg)
{
	struct zf_remote *rm = ctx;

	if (kind != SAY_DAMAGE)
		return;
	zf_mutex_lock(&rm->lock);
	snprintf(rm->follow_why, sizeof(rm->follow_why), "%s", msg);
	zf_mutex_unlock(&rm->lock);
}

/* the changes of a step, for this thread to hand to the daemon */
static void queue_changes(struct zf_remote *rm, struct zf_fs_changes *ch)
{
	struct zf_fs_changes *q = &rm->follow_q;
	size_t i;

	zf_mutex_lock(&rm->lock);
	if (q->n + ch->n > q->cap) {
		q->cap = q->n + ch->n;
		q->v = zf_realloc(q->v, q->cap * sizeof(*q->v));
	}
	for (i = 0; i < ch->n; i++)
		q->v[q->n++] = ch->v[i];
	q->reloaded |= ch->reloaded;
	ch->n = 0; /* the names moved to the queue */
	zf_mutex_unlock(&rm->lock);
	zf_fs_changes_free(ch);
}

/*
 * The writer's snapshots, as the bucket has them: new ones fetched into
 * meta/ (verified), deleted ones gone from it. After a step that applied
 * something (a snapshot is made with a checkpoint: the head moves).
 */
static void follow_snapshots(struct zf_remote *rm)
{
	struct zf_snap_info *v = NULL;
	size_t n = 0, i, j, nb = 0;
	char file[64], **b = NULL;

	if (zf_tier_snapshot_names(rm->up, &b, &nb) < 0)
		return;
	for (i = 0; i < nb; i++)
		zf_remote_snapshot_fetch(rm, b[i]);
	if (zf_fs_snapshot_list(rm->fs, &v, &n) == 0) {
		for (i = 0; i < n; i++) {
			for (j = 0; j < nb && strcmp(b[j], v[i].name); j++)
				;
			if (j < nb)
				continue;
			zf_snap_file(v[i].name, file, sizeof(file));
			unlinkat(rm->metafd, file, 0);
		}
		free(v);
	}
	zf_tier_names_free(b, nb);
}

/*
 * Scan the bucket from after + 1 (0: from its newest checkpoint) and apply
 * what it holds. 0 (nothing new), 1 (applied something), or -errno.
 */
static int follow_scan(struct zf_remote *rm, uint64_t after)
{
	struct mscan m = { .os = rm->up, .seal = &rm->seal, .fetch = 1, .after = after,
			   .keep = follow_keep, .say = follow_say, .ctx = rm };
	uint64_t applied = zf_fs_applied(rm->fs), ckpt = zf_fs_ckpt_seq(rm->fs);
	struct zf_fs_changes ch = { 0 };
	int r;

	memcpy(m.fsid, rm->fsid, sizeof(m.fsid));
	r = zf_mscan_run(&m);
	if (r < 0)
		goto out;
	if (m.along && m.end < m.target && m.nckpts && m.ckpts[0].a > after) {
		/* the writer removed pieces behind a newer checkpoint meanwhile */
		zf_mscan_free(&m);
		return follow_scan(rm, 0);
	}
	if (!m.usable) {
		r = -EBADMSG;
		goto out;
	}
	/* nothing the table lacks (a scan without a head to go by finds that out) */
	if (m.along ? m.end <= after : m.end <= applied && (!m.has_ckpt || m.ckpt <= ckpt))
		goto out;
	r = zf_fs_follow(rm->fs, !m.along, &ch);
	/* what did apply counts, and the kernel hears of it, even when a later part failed */
	applied = zf_fs_applied(rm->fs); /* fs->lock: before rm->lock */
	zf_mutex_lock(&rm->lock);
	rm->follow_applied = applied;
	if (r == 0) {
		if (m.end > rm->follow_writer)
			rm->follow_writer = m.end;
		if (ch.reloaded)
			rm->follow_reloads++;
		rm->follow_why[0] = 0;
	}
	zf_mutex_unlock(&rm->lock);
	queue_changes(rm, &ch);
	if (r == 0) {
		follow_snapshots(rm);
		r = 1;
	}
out:
	zf_fs_changes_free(&ch);
	zf_mscan_free(&m);
	return r;
}

/*
 * The writer put checkpoint ckpt, which the table is past already: keep it
 * in meta/ in place of the log before it (a remount loads it; meta/ does
 * not grow with every round). No reload: the table is the same.
 */
static void follow_prune(struct zf_remote *rm, uint64_t ckpt)
{
	char key[ZF_BKEY_MAX], file[64], why[256];
	void *buf;
	size_t len;

	zf_bkey_ckpt(ckpt, key, sizeof(key));
	if (zf_tier_snapshot_get(rm->up, &rm->seal, rm->fsid, key, &buf, &len, why,
				 sizeof(why)) < 0)
		return; /* removed meanwhile, or not answered: the next one */
	zf_ckpt_name(ckpt, file, sizeof(file));
	if (zf_publish_file(rm->metafd, file, buf, len) == 0)
		zf_fs_follow_prune(rm->fs, ckpt);
	free(buf);
}

/* one step: the head, then what is new. 0 nothing new, 1 applied, -errno */
static int follow_step(struct zf_remote *rm)
{
	struct zf_tier_head h;
	char why[256];
	uint64_t applied = zf_fs_applied(rm->fs);
	void *buf;
	size_t len;
	int r;

	zf_mutex_lock(&rm->lock);
	rm->follow_step_ns = zf_mono_ns();
	zf_mutex_unlock(&rm->lock);
	r = zf_tier_get_obj(rm->up, &rm->seal, ZF_BKEY_HEAD, &buf, &len, why, sizeof(why));
	if (r == 0) {
		r = zf_tier_head_parse(buf, len, &h, why, sizeof(why));
		free(buf);
		if (r == 0 && memcmp(h.fsid, rm->fsid, 16)) {
			snprintf(why, sizeof(why), "belongs to another filesystem");
			r = -EBADMSG;
		}
	}
	if (r == -ENOENT || r == -EBADMSG) {
		/* no head to go by (a writer that never finished a round): scan */
		h.seq = UINT64_MAX;
		r = 0;
	}
	if (r < 0)
		return r;
	zf_mutex_lock(&rm->lock);
	rm->follow_polled = time(NULL);
	if (h.seq != UINT64_MAX && h.seq > rm->follow_writer)
		rm->follow_writer = h.seq;
	if (rm->follow_writer > applied && !rm->follow_behind_ns)
		rm->follow_behind_ns = zf_mono_ns();
	zf_mutex_unlock(&rm->lock);
	if (h.seq == UINT64_MAX)
		r = follow_scan(rm, 0);
	else if (h.seq <= applied)
		r = 0;
	else
		r = follow_scan(rm, applied);
	if (r >= 0 && h.seq != UINT64_MAX && h.ckpt > zf_fs_ckpt_seq(rm->fs) &&
	    h.ckpt <= zf_fs_applied(rm->fs))
		follow_prune(rm, h.ckpt);
	zf_mutex_lock(&rm->lock);
	if (r >= 0 && rm->follow_applied >= rm->follow_writer)
		rm->follow_behind_ns = 0;
	zf_mutex_unlock(&rm->lock);
	return r;
}

/* a read met a removed segment: bring the table up to the writer's */
static void follow_stale(void *ctx)
{
	struct zf_remote *rm = ctx;
	uint64_t failed = zf_mono_ns();
	int fresh;

	zf_mutex_lock(&rm->follow_lock);
	zf_mutex_lock(&rm->lock);
	fresh = rm->follow_step_ns > failed; /* a step began after the failure */
	zf_mutex_unlock(&rm->lock);
	if (!fresh) {
		zf_mutex_lock(&rm->lock);
		rm->follow_stale++;
		zf_mutex_unlock(&rm->lock);
		follow_step(rm);
	}
	zf_mutex_unlock(&rm->follow_lock);
	pthread_cond_broadcast(&rm->wake); /* the follower hands on the changes */
}

/* hand the queued changes to the daemon until the deadline (or a stop); rm->lock held */
static int follow_wait(struct zf_remote *rm, uint64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	for (;;) {
		struct zf_fs_changes q = rm->follow_q;

		if (rm->stopping)
			return 1; /* the session may be gone: nothing more for the daemon */
		if (q.n) {
			memset(&rm->follow_q, 0, sizeof(rm->follow_q));
			zf_mutex_unlock(&rm->lock);
			if (rm->follow_fn)
				rm->follow_fn(rm->follow_ctx, &q);
			zf_fs_changes_free(&q);
			zf_mutex_lock(&rm->lock);
			continue;
		}
		if (zf_cond_timedwait(&rm->wake, &rm->lock, &ts) == ETIMEDOUT && !rm->follow_q.n)
			return rm->stopping;
	}
}

static void *follower_main(void *arg)
{
	struct zf_remote *rm = arg;
	uint64_t last_err_log = 0, steps = 0;
	int backoff = 0, stop;

	do {
		int r;

		zf_mutex_lock(&rm->follow_lock);
		r = follow_step(rm);
		/* snapshots come and go without a log record: looked at now and then */
		if (r >= 0 && steps++ % 10 == 0)
			follow_snapshots(rm);
		zf_mutex_unlock(&rm->follow_lock);
		if (r < 0 && zf_tier_transient(r))
			zf_tier_offline(rm, r, "following the writer");
		else if (r >= 0)
			zf_tier_online(rm);
		if (r < 0 && zf_mono_ns() - last_err_log > 60000000000ull) {
			char why[sizeof(rm->follow_why)];

			zf_mutex_lock(&rm->lock);
			snprintf(why, sizeof(why), "%s", rm->follow_why);
			zf_mutex_unlock(&rm->lock);
			zf_err("replica: cannot follow '%s': %s%s%s (retrying)", rm->url,
			       strerror(-r), *why ? ": " : "", why);
			last_err_log = zf_mono_ns();
		}
		backoff = r < 0 ? (backoff < 4 ? backoff + 1 : 4) : 0;
		zf_tier_evict(rm); /* fetched data within cache_size */
		zf_mutex_lock(&rm->lock);
		stop = follow_wait(rm, (uint64_t)rm->o.interval_ms << backoff);
		zf_mutex_unlock(&rm->lock);
	} while (!stop);
	return NULL;
}

void zf_remote_follow_stop(struct zf_remote *rm)
{
	if (!rm || !rm->follow_started)
		return;
	zf_mutex_lock(&rm->lock);
	rm->stopping = 1;
	pthread_cond_broadcast(&rm->wake);
	zf_mutex_unlock(&rm->lock);
	pthread_join(rm->follow_thread, NULL);
	rm->follow_started = 0;
	zf_fs_set_stale(rm->fs, NULL, NULL);
}

int zf_remote_follow_start(struct zf_remote *rm, zf_remote_follow_fn fn, void *ctx)
{
	int r;

	if (!rm->o.replica)
		return -EINVAL;
	rm->follow_fn = fn;
	rm->follow_ctx = ctx;
	rm->follow_applied = zf_fs_applied(rm->fs);
	zf_fs_set_stale(rm->fs, follow_stale, rm);
	r = -pthread_create(&rm->follow_thread, NULL, follower_main, rm);
	if (r < 0)
		return r;
	rm->follow_started = 1;
	zf_tier_prefetch_start(rm);
	return 0;
}
