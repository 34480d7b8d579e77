/*
 * tier/tier.c - the tier's lifecycle: open, start, sync, stats, close, and the
 * uploader thread
 *
 * The uploader runs a round per period (tier/upload.c), at once for a sync
 * or while the dev-dir's budget is tight, and backs off after failures.
 * Eviction after each round (tier/evict.c). zf_remote_open attaches
 * (tier/attach.c) and installs the fetch and admit hooks; close runs a final
 * round (not while the bucket is offline: a stop must not wait for it) and
 * releases the lease. Offline: from a request the bucket did not answer
 * (a round, a fetch) until one it answers; stats say since when.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/lock.h"
#include "common/log.h"
#include "common/util.h"
#include "storage/bucket_keys.h"
#include "tier/tier_internal.h"

/* zf_remote_opts defaults (remote.h) */
#define DEFAULT_INTERVAL_MS 1000
#define DEFAULT_MAX_DELAY_S 1	/* the recovery point: seconds, not tens (tier/compact.c
				 * merges the small segments this leaves) */
#define DEFAULT_FETCH_MS 30000
#define DEFAULT_WRITE_WAIT_MS 120000
#define DEFAULT_LEASE_S 60

/*
 * A request the bucket did not answer (an outage, a timeout, a refusal),
 * as opposed to an answer about an object: fsck cannot conclude anything
 * from it (zf_remote_unreachable). The first one is kept with its reason.
 */
void zf_tier_note_unreachable(struct zf_remote *rm, const char *what, const char *key, int err)
{
	zf_mutex_lock(&rm->lock);
	if (!rm->unreachable) {
		rm->unreachable = err;
		snprintf(rm->unreachable_why, sizeof(rm->unreachable_why), "%s%s%s%s: %s", what,
			 key ? " '" : "", key ? key : "", key ? "'" : "", strerror(-err));
	}
	zf_mutex_unlock(&rm->lock);
}

int zf_remote_unreachable(struct zf_remote *rm, char *why, size_t len)
{
	int r;

	zf_mutex_lock(&rm->lock);
	r = rm->unreachable;
	if (r && why)
		snprintf(why, len, "%s", rm->unreachable_why);
	zf_mutex_unlock(&rm->lock);
	return r;
}

void zf_tier_offline(struct zf_remote *rm, int err, const char *what)
{
	int first;

	zf_mutex_lock(&rm->lock);
	first = !rm->offline_since;
	if (first) {
		rm->offline_since = time(NULL);
		snprintf(rm->offline_why, sizeof(rm->offline_why), "%s%s%s%s", strerror(-err),
			 what && *what ? " (" : "", what ? what : "", what && *what ? ")" : "");
	}
	zf_mutex_unlock(&rm->lock);
	if (first)
		zf_warn("the bucket '%s' is unreachable (%s): offline; local data is served, "
			"uploads wait for it", rm->url, strerror(-err));
}

void zf_tier_online(struct zf_remote *rm)
{
	int64_t since;

	zf_mutex_lock(&rm->lock);
	since = rm->offline_since;
	rm->offline_since = 0;
	zf_mutex_unlock(&rm->lock);
	if (since)
		zf_info("the bucket '%s' answers again after %lld s offline", rm->url,
			(long long)(time(NULL) - since));
}

/* ------------------------------------------------------------ the thread */

static void *uploader_main(void *arg)
{
	struct zf_remote *rm = arg;
	uint64_t last_err_log = 0, progress = 0;
	int backoff = 0, first = 1;

	zf_mutex_lock(&rm->lock);
	while (!rm->stopping) {
		struct timespec ts;
		uint64_t want, age;
		int r, seal;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)(rm->o.interval_ms << backoff) % 1000 * 1000000;
		ts.tv_sec += (rm->o.interval_ms << backoff) / 1000 + ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		/*
		 * The first round at once (it renews the lease with this
		 * process's pid and resumes a backlog); then a round per period,
		 * or at once for a sync or while the budget is tight and rounds
		 * make progress. After a failure, the whole backoff: wakes from
		 * writers and readers must not turn an outage into a busy loop.
		 */
		if (backoff) {
			while (!rm->stopping &&
			       zf_cond_timedwait(&rm->wake, &rm->lock, &ts) != ETIMEDOUT)
				;
		} else if (!first && rm->sync_want <= rm->sync_done &&
			   !(rm->o.local_budget && rm->unevictable > rm->o.local_budget / 2 &&
			     rm->progress_ns != progress)) {
			zf_cond_timedwait(&rm->wake, &rm->lock, &ts);
		}
		first = 0;
		progress = rm->progress_ns;
		if (rm->stopping)
			break;
		want = rm->sync_want;
		age = rm->pending_since_ns ? zf_mono_ns() - rm->pending_since_ns : 0;
		/* seal for a sync, for old data, or to make room under the budget */
		seal = want > rm->sync_done || age >= (uint64_t)rm->o.max_delay_s * 1000000000ull ||
		       (rm->o.local_budget && rm->unevictable > rm->o.local_budget / 2);
		zf_mutex_unlock(&rm->lock);
		r = rm->fenced ? -EPERM : zf_tier_upload_round(rm, seal);
		zf_tier_evict(rm);
		zf_mutex_lock(&rm->lock);
		if (r == 0 || (zf_tier_transient(r) && !rm->fail_local)) {
			char what[sizeof(rm->fail_what)];

			/* outside rm->lock: the offline mark takes it, and logs */
			snprintf(what, sizeof(what), "%s", rm->fail_what);
			zf_mutex_unlock(&rm->lock);
			if (r == 0)
				zf_tier_online(rm); /* a round always asks the bucket for the lease */
			else
				zf_tier_offline(rm, r, what);
			zf_mutex_lock(&rm->lock);
		}
		if (r == 0) {
			backoff = 0;
			rm->sync_err = 0;
			rm->fail_since = 0;
			if (rm->up_seq >= want && want > rm->sync_done)
				rm->sync_done = want;
		} else {
			if (backoff < 4)
				backoff++;
			if (!rm->sync_err || !rm->fail_since)
				rm->fail_since = time(NULL);
			rm->sync_err = r;
			if (zf_mono_ns() - last_err_log > 10000000000ull) {
				zf_err("upload to '%s' failed: %s (retrying; local data is safe)", rm->url,
				       strerror(-r));
				last_err_log = zf_mono_ns();
			}
		}
		pthread_cond_broadcast(&rm->done);
	}
	zf_mutex_unlock(&rm->lock);
	return NULL;
}

/* --------------------------------------------------------------- public */

static int open_stores(const char *url, const struct zf_objstore_opts *so,
		       unsigned int fetch_ms, struct zf_objstore **up, struct zf_objstore **down)
{
	struct zf_objstore_opts f = *so;
	int r;

	r = zf_objstore_open(url, so, up);
	if (r < 0)
		return r;
	if (down) {
		f.timeout_ms = fetch_ms;
		r = zf_objstore_open(url, &f, down);
		if (r < 0) {
			zf_objstore_close(*up);
			*up = NULL;
		}
	}
	return r;
}

int zf_remote_open(struct zf_fs *fs, const char *dev_dir, const struct zf_remote_opts *o,
		   struct zf_remote **ret_rm)
{
	struct zf_remote *rm;
	int r;

	rm = zf_calloc(1, sizeof(*rm));
	rm->fs = fs;
	rm->o = *o;
	rm->url = zf_strdup(o->url);
	rm->o.url = rm->url;
	rm->dev_real = realpath(dev_dir, NULL);
	if (!rm->dev_real)
		rm->dev_real = zf_strdup(dev_dir);
	if (!rm->o.interval_ms)
		rm->o.interval_ms = DEFAULT_INTERVAL_MS;
	if (!rm->o.max_delay_s)
		rm->o.max_delay_s = DEFAULT_MAX_DELAY_S;
	zf_tier_compact_defaults(&rm->o);
	if (!rm->o.fetch_timeout_ms)
		rm->o.fetch_timeout_ms = DEFAULT_FETCH_MS;
	if (!rm->o.write_wait_ms)
		rm->o.write_wait_ms = DEFAULT_WRITE_WAIT_MS;
	if (!rm->o.lease_ttl_s)
		rm->o.lease_ttl_s = DEFAULT_LEASE_S;
	zf_mutex_init(&rm->evict_lock, ZF_RANK_EVICT, "rm->evict_lock");
	zf_mutex_init(&rm->lock, ZF_RANK_REMOTE, "rm->lock");
	zf_mutex_init(&rm->follow_lock, ZF_RANK_FOLLOW, "rm->follow_lock");
	pthread_cond_init(&rm->wake, NULL);
	pthread_cond_init(&rm->done, NULL);
	pthread_cond_init(&rm->arrived, NULL);
	pthread_cond_init(&rm->pf_wake, NULL);
	pthread_cond_init(&rm->compact_wake, NULL);
	rm->devfd = open(dev_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rm->devfd >= 0) {
		mkdirat(rm->devfd, "cache", 0700);
		rm->segfd = openat(rm->devfd, "seg", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		rm->metafd = openat(rm->devfd, "meta", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		rm->cachefd = openat(rm->devfd, "cache", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (rm->devfd < 0 || rm->segfd < 0 || rm->metafd < 0 || rm->cachefd < 0) {
		r = -errno;
		zf_err("cannot open the dev-dir '%s' for uploads: %s", dev_dir, strerror(-r));
		goto fail;
	}
	r = open_stores(rm->url, &o->store, rm->o.fetch_timeout_ms, &rm->up, &rm->down);
	if (r < 0) {
		zf_err("cannot open the object store '%s': %s", rm->url, strerror(-r));
		goto fail;
	}
	zf_tier_state_load(rm);
	rm->head_seq = rm->head_ckpt = UINT64_MAX;
	{
		void *sb;
		size_t len;

		if (zf_read_file(rm->devfd, "superblock", &sb, &len) == 0) {
			if (len >= 32)
				memcpy(rm->fsid, (uint8_t *)sb + 16, 16);
			free(sb);
		}
		rm->seal = *zf_fs_seal(fs);
	}
	if (!rm->o.readonly) {
		struct zf_upload_point pt;

		/*
		 * Records reach the bucket only once committed here, so a
		 * dev-dir behind the bucket lost committed records (a damaged
		 * log tail, dropped as torn): writing on would give new
		 * records the numbers of lost ones, a fork.
		 */
		r = zf_fs_upload_point(fs, 0, &pt);
		if (r == 0 && pt.committed < rm->up_seq) {
			zf_err("the dev-dir '%s' lacks log records %llu..%llu that the bucket '%s' "
			       "holds (its log lost them); writing on would fork the filesystem: "
			       "restore a new dev-dir from the bucket ('zerofs mkfs --restore'), "
			       "which has everything this one had",
			       dev_dir, (unsigned long long)pt.committed + 1,
			       (unsigned long long)rm->up_seq, rm->url);
			r = -ESTALE;
		}
		if (r < 0)
			goto fail;
	}
	rm->t0_ns = zf_mono_ns();
	rm->progress_ns = rm->t0_ns;
	zf_fs_set_fetch(fs, zf_tier_fetch, rm);
	if (rm->o.readonly) {
		*ret_rm = rm;
		return 0;
	}
	/*
	 * The lease, and the bucket must describe this filesystem. A bucket
	 * that is down now must not keep the local disk from serving: the
	 * uploader attaches before its first upload. A refusal (credentials,
	 * another writer) is final.
	 */
	r = zf_tier_attach(rm);
	if (r < 0 && zf_tier_transient(r)) {
		zf_warn("the bucket '%s' is unreachable (%s): serving local data, uploads start "
			"once it answers",
			rm->url, strerror(-r));
		rm->need_lease = 1;
		rm->offline_since = time(NULL);
		snprintf(rm->offline_why, sizeof(rm->offline_why), "%s (attaching)", strerror(-r));
		r = 0;
	}
	if (r < 0) {
		if (r != -EBUSY && r != -ESTALE && r != -EEXIST) /* refusals say why */
			zf_err("cannot attach the bucket '%s': %s", rm->url, strerror(-r));
		goto fail;
	}
	zf_tier_evict(rm);
	zf_fs_set_admit(fs, zf_tier_admit, rm);
	*ret_rm = rm;
	return 0;
fail:
	zf_fs_set_fetch(fs, NULL, NULL);
	zf_objstore_close(rm->up);
	zf_objstore_close(rm->down);
	if (rm->devfd >= 0)
		close(rm->devfd);
	free(rm->dev_real);
	free(rm->url);
	free(rm);
	return r;
}

int zf_tier_prefetch_start(struct zf_remote *rm)
{
	/* read-ahead is an optimisation: without its thread reads still work */
	if (pthread_create(&rm->pf_thread, NULL, zf_tier_prefetch_main, rm) != 0)
		return -EAGAIN;
	zf_mutex_lock(&rm->lock);
	rm->pf_started = 1;
	zf_mutex_unlock(&rm->lock);
	return 0;
}

int zf_remote_start(struct zf_remote *rm)
{
	int r;

	/* the daemon may have forked since the open: the first round names its pid */
	rm->lease_renew_ns = 0;
	r = -pthread_create(&rm->thread, NULL, uploader_main, rm);
	if (r < 0) { /* no uploads: zerofs stats says so ("uploads: failing since") */
		zf_mutex_lock(&rm->lock);
		rm->sync_err = r;
		rm->fail_since = time(NULL);
		zf_mutex_unlock(&rm->lock);
		return r;
	}
	rm->started = 1;
	if (zf_tier_prefetch_start(rm) == 0)
		zf_tier_want_pins(rm); /* after a restore or an eviction elsewhere */
	/* merging small segments is housekeeping: without its thread they stay */
	if (pthread_create(&rm->compact_thread, NULL, zf_tier_compact_main, rm) == 0)
		rm->compact_started = 1;
	return 0;
}

/* the reason of a failed sync, from the round that failed (rm->lock held) */
static void sync_why_locked(struct zf_remote *rm, int r, char *why, size_t len)
{
	char since[16] = "?", what[220] = "";
	struct tm tm;

	if (rm->fail_since && localtime_r(&rm->fail_since, &tm))
		strftime(since, sizeof(since), "%H:%M:%S", &tm);
	if (rm->fail_what[0])
		snprintf(what, sizeof(what), " (%s)", rm->fail_what);
	if (rm->fenced)
		snprintf(why, len, "the lease of bucket '%s' belongs to another writer: uploads "
			 "stopped here, local data stays", rm->url);
	else if (rm->fail_local)
		snprintf(why, len, "the dev-dir '%s': %s%s", rm->dev_real, strerror(-r), what);
	else if (r == -ENOSPC || r == -EDQUOT || r == -EFBIG)
		snprintf(why, len, "bucket '%s' full (%s)%s", rm->url, strerror(-r), what);
	else if (r == -EACCES || r == -EPERM)
		snprintf(why, len, "bucket '%s' refuses this writer (%s)%s", rm->url, strerror(-r),
			 what);
	else if (zf_tier_transient(r))
		snprintf(why, len, "bucket '%s' unreachable since %s: %s%s", rm->url, since,
			 strerror(-r), what);
	else
		snprintf(why, len, "bucket '%s': %s%s", rm->url, strerror(-r), what);
}

int zf_remote_sync(struct zf_remote *rm)
{
	return zf_remote_sync_wait(rm, NULL, NULL, 0);
}

int zf_remote_sync_why(struct zf_remote *rm, char *why, size_t len)
{
	return zf_remote_sync_wait(rm, NULL, why, len);
}

/* *ts = CLOCK_REALTIME now + ns, for zf_cond_timedwait */
static void deadline_in(struct timespec *ts, uint64_t ns)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ns += ts->tv_nsec;
	ts->tv_sec += ns / 1000000000ull;
	ts->tv_nsec = ns % 1000000000ull;
}

/* how long a sync has waited for the bucket to take something (rm->lock held) */
static uint64_t sync_stalled_ns(struct zf_remote *rm, uint64_t start)
{
	return zf_mono_ns() - (rm->progress_ns > start ? rm->progress_ns : start);
}

/* why a sync stopped waiting, and what the bucket lacks (rm->lock not held) */
static void sync_gave_up(struct zf_remote *rm, int r, unsigned int waited_s,
			 unsigned int timeout_s, char *why, size_t len)
{
	struct zf_remote_pending p;
	char lacks[160];
	size_t n;

	zf_mutex_lock(&rm->lock);
	if (r == -ECANCELED)
		snprintf(why, len, "%s", rm->stopping || rm->syncs_cancelled
						 ? "the filesystem is being unmounted"
						 : "the caller stopped waiting");
	else if (r == -ETIMEDOUT && !rm->sync_err)
		snprintf(why, len, "bucket '%s' has taken nothing for %u s", rm->url, timeout_s);
	else
		sync_why_locked(rm, r, why, len);
	zf_mutex_unlock(&rm->lock);
	zf_tier_pending(rm, &p);
	zf_remote_pending_say(&p, lacks, sizeof(lacks));
	n = strlen(why);
	if (r == -ETIMEDOUT || zf_tier_transient(r))
		snprintf(why + n, len - n, " (gave up after %u s)" ZF_REMOTE_LACKS "%s", waited_s,
			 lacks);
	else
		snprintf(why + n, len - n, ZF_REMOTE_LACKS "%s", lacks);
}

int zf_remote_sync_wait(struct zf_remote *rm, const struct zf_remote_sync_opts *o, char *why,
			size_t len)
{
	static const struct zf_remote_sync_opts defaults;
	uint64_t start, timeout_ns, tick_ns;
	struct zf_upload_point pt;
	int r;

	if (!o)
		o = &defaults;
	if (rm->o.replica)
		return 0; /* nothing is written here: the writer's bucket is all there is */
	timeout_ns = (uint64_t)(o->timeout_ms ? o->timeout_ms : rm->o.write_wait_ms) * 1000000ull;
	r = zf_fs_sync(rm->fs);
	if (r == 0)
		r = zf_fs_upload_point(rm->fs, 0, &pt);
	if (r < 0) {
		if (why)
			snprintf(why, len, "the dev-dir '%s': %s (committing the log)", rm->dev_real,
				 strerror(-r));
		return r;
	}
	zf_mutex_lock(&rm->lock);
	if (pt.committed > rm->sync_want)
		rm->sync_want = pt.committed;
	pthread_cond_broadcast(&rm->wake);
	start = tick_ns = zf_mono_ns();
	while (rm->sync_done < pt.committed) {
		uint64_t stalled = sync_stalled_ns(rm, start);
		struct timespec ts;

		if (rm->fenced) {
			r = -EPERM;
			break;
		}
		if (rm->stopping || rm->syncs_cancelled) {
			r = -ECANCELED;
			break;
		}
		/* a refusal is final; an outage or a stall is waited out for the timeout */
		if (rm->sync_err && !zf_tier_transient(rm->sync_err)) {
			r = rm->sync_err;
			break;
		}
		if (stalled >= timeout_ns) {
			r = rm->sync_err ? rm->sync_err : -ETIMEDOUT;
			break;
		}
		/* a round, a second for the progress report, or the timeout: what comes first */
		deadline_in(&ts, timeout_ns - stalled < 1000000000ull ? timeout_ns - stalled
								       : 1000000000ull);
		zf_cond_timedwait(&rm->done, &rm->lock, &ts);
		if (o->progress && zf_mono_ns() - tick_ns >= 1000000000ull) {
			struct zf_remote_stats s;

			tick_ns = zf_mono_ns();
			zf_mutex_unlock(&rm->lock);
			zf_remote_stats(rm, &s);
			r = o->progress(o->ctx, &s) ? -ECANCELED : 0;
			zf_mutex_lock(&rm->lock);
			if (r < 0)
				break;
		}
	}
	zf_mutex_unlock(&rm->lock);
	if (r < 0 && why)
		sync_gave_up(rm, r, (unsigned int)((zf_mono_ns() - start) / 1000000000ull),
			     (unsigned int)(timeout_ns / 1000000000ull), why, len);
	return r;
}

void zf_remote_stopping(struct zf_remote *rm)
{
	if (!rm)
		return;
	zf_mutex_lock(&rm->lock);
	rm->syncs_cancelled = 1;
	pthread_cond_broadcast(&rm->done);
	zf_mutex_unlock(&rm->lock);
}

void zf_remote_stats(struct zf_remote *rm, struct zf_remote_stats *ret)
{
	struct zf_remote_pending p;
	double el;

	memset(ret, 0, sizeof(*ret));
	zf_tier_pending(rm, &p);
	zf_mutex_lock(&rm->lock);
	el = (zf_mono_ns() - rm->t0_ns) / 1e9;
	/* the budget's count (measured each round, writes added as admitted) */
	ret->pending_bytes = rm->unevictable;
	ret->pending_segs = p.segs;
	ret->pending_records = p.records;
	ret->offline_since = rm->offline_since;
	snprintf(ret->offline_why, sizeof(ret->offline_why), "%s", rm->offline_why);
	if (rm->sync_err && !rm->offline_since) { /* logged, and said here too: data is not safe */
		ret->failing_since = rm->fail_since ? rm->fail_since : time(NULL);
		sync_why_locked(rm, rm->sync_err, ret->failing_why, sizeof(ret->failing_why));
	}
	ret->oldest_pending_s = rm->pending_since_ns ? (zf_mono_ns() - rm->pending_since_ns) / 1e9 : 0;
	ret->uploaded_bytes = rm->uploaded;
	ret->uploaded_objects = rm->puts;
	ret->puts_in_flight = rm->puts_in_flight;
	ret->fetched_bytes = rm->fetched;
	ret->upload_rate = el > 0 ? rm->uploaded / el : 0;
	ret->fetch_rate = el > 0 ? rm->fetched / el : 0;
	ret->fetch_hits = rm->fetch_hits;
	ret->prefetched_bytes = rm->prefetched;
	ret->fetch_misses = rm->fetch_misses;
	ret->local_bytes = rm->local_bytes;
	ret->local_budget = rm->o.local_budget;
	ret->evictions = rm->evictions;
	ret->stalls = rm->stalls;
	ret->pinned_bytes = rm->pinned_bytes;
	ret->uploaded_seq = rm->up_seq;
	ret->fenced = rm->fenced;
	if (rm->o.replica) {
		/* nothing goes up from here */
		ret->pending_bytes = ret->pending_segs = ret->pending_records = 0;
		ret->oldest_pending_s = 0;
		ret->replica = 1;
		ret->applied_seq = rm->follow_applied;
		ret->writer_seq = rm->follow_writer > rm->follow_applied ? rm->follow_writer
									  : rm->follow_applied;
		ret->behind_s = rm->follow_behind_ns ? (zf_mono_ns() - rm->follow_behind_ns) / 1e9
						     : 0;
		ret->polled = rm->follow_polled;
		ret->reloads = rm->follow_reloads;
		ret->stale_reads = rm->follow_stale;
		snprintf(ret->follow_why, sizeof(ret->follow_why), "%s", rm->follow_why);
	}
	zf_mutex_unlock(&rm->lock);
}

/*
 * At close, the uploader gone: everything written so far goes up now,
 * unless the bucket is known unreachable -- a round would wait out the
 * store's retries for nothing, and a stopping daemon must stop promptly.
 * What stays behind is said, and stays in the dev-dir for the next mount.
 */
static int final_upload(struct zf_remote *rm, int offline)
{
	struct zf_remote_pending p;
	char lacks[160], since[32] = "";
	int r;

	r = zf_fs_sync(rm->fs);
	if (r == 0 && offline)
		r = zf_tier_transient(rm->sync_err) ? rm->sync_err : -ECONNREFUSED;
	else if (r == 0)
		r = zf_tier_upload_round(rm, 1);
	if (r == 0)
		return 0;
	zf_tier_pending(rm, &p);
	zf_remote_pending_say(&p, lacks, sizeof(lacks));
	if (offline) {
		struct tm tm;
		time_t t = (time_t)rm->offline_since;

		if (localtime_r(&t, &tm))
			strftime(since, sizeof(since), " since %H:%M:%S", &tm);
	}
	zf_err("uploads left pending: %s are not in the bucket '%s' (%s%s: %s); they stay in "
	       "the dev-dir '%s' and the next mount uploads them", lacks, rm->url,
	       offline ? "unreachable" : "the final upload failed", since,
	       offline ? rm->offline_why : strerror(-r), rm->dev_real);
	return r;
}

int zf_remote_close(struct zf_remote *rm)
{
	int r = 0, offline;

	if (!rm)
		return 0;
	zf_mutex_lock(&rm->lock);
	rm->stopping = 1;
	pthread_cond_broadcast(&rm->wake);
	pthread_cond_broadcast(&rm->done);
	pthread_cond_broadcast(&rm->pf_wake);
	pthread_cond_broadcast(&rm->compact_wake);
	zf_mutex_unlock(&rm->lock);
	if (rm->compact_started) /* first: a merge waits for the uploader */
		pthread_join(rm->compact_thread, NULL);
	if (rm->started)
		pthread_join(rm->thread, NULL);
	if (rm->follow_started) {
		pthread_join(rm->follow_thread, NULL);
		zf_fs_set_stale(rm->fs, NULL, NULL);
	}
	if (rm->pf_started)
		pthread_join(rm->pf_thread, NULL);
	offline = rm->offline_since != 0; /* no thread is left to change it */
	if (rm->started && !rm->fenced && !rm->o.readonly)
		r = final_upload(rm, offline);
	zf_fs_set_fetch(rm->fs, NULL, NULL);
	if (!rm->o.readonly) {
		zf_fs_set_admit(rm->fs, NULL, NULL);
		if (!rm->fenced && !rm->need_lease &&
		    (offline || zf_objstore_delete(rm->up, ZF_BKEY_LEASE) < 0)) {
			/*
			 * A clean close during an outage: the lease stays in the
			 * bucket until it expires. Say here that it was released,
			 * so the next mount takes it without calling this a crash.
			 */
			zf_mutex_lock(&rm->lock);
			snprintf(rm->released, sizeof(rm->released), "%s", rm->lease_id);
			zf_mutex_unlock(&rm->lock);
			if (zf_tier_state_save(rm) < 0)
				zf_warn("cannot record in '%s/upload.state' that the lease of '%s' was "
					"released", rm->dev_real, rm->url);
		}
	}
	zf_objstore_close(rm->up);
	zf_objstore_close(rm->down);
	close(rm->cachefd);
	close(rm->metafd);
	close(rm->segfd);
	close(rm->devfd);
	pthread_cond_destroy(&rm->wake);
	pthread_cond_destroy(&rm->done);
	pthread_cond_destroy(&rm->arrived);
	pthread_cond_destroy(&rm->pf_wake);
	pthread_cond_destroy(&rm->compact_wake);
	zf_mutex_destroy(&rm->lock);
	zf_mutex_destroy(&rm->evict_lock);
	zf_mutex_destroy(&rm->follow_lock);
	zf_fs_changes_free(&rm->follow_q);
	for (size_t i = 0; i < rm->nobjs; i++)
		free(rm->objs[i].key);
	free(rm->objs);
	free(rm->dev_real);
	free(rm->url);
	free(rm);
	return r;
}
