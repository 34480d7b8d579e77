/*
 * tier/compact.c - small segments merged while the filesystem serves
 *
 * A recovery point of seconds means sealing the open segment as soon as
 * its data is max_delay (1 s) old, so a slow trickle of writes leaves a
 * small segment (and a log piece) in the bucket every second. The
 * compaction thread keeps the bucket's object count proportional to the
 * data, not to time: once COMPACT_SEGS small segments (under SMALL_BYTES)
 * went up (merge_after=), at most once per merge_after seconds (a merge
 * writes a checkpoint: not a storm of them), it runs the bucket gc
 * (zf_remote_gc) with small_bytes set: their live chunks move into one new
 * segment, a checkpoint goes up (the log pieces before it go), and the
 * merged objects are deleted. gc is crash-safe at every moment, as when
 * `zerofs gc <mnt>` runs it.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "common/lock.h"
#include "common/log.h"
#include "common/util.h"
#include "tier/tier_internal.h"

#define SMALL_BYTES (1u << 20)	/* a segment smaller than this is small */
#define COMPACT_SEGS 64		/* merge once this many small ones went up (merge_after=) */

void zf_tier_compact_defaults(struct zf_remote_opts *o)
{
	if (!o->merge_after)
		o->merge_after = COMPACT_SEGS;
}

void zf_tier_note_segment(struct zf_remote *rm, uint64_t size)
{
	zf_mutex_lock(&rm->lock);
	if (size < SMALL_BYTES)
		rm->small_segs++;
	if (rm->small_segs >= rm->o.merge_after)
		pthread_cond_broadcast(&rm->compact_wake);
	zf_mutex_unlock(&rm->lock);
}

void *zf_tier_compact_main(void *arg)
{
	struct zf_remote *rm = arg;
	uint64_t last = 0;

	zf_mutex_lock(&rm->lock);
	while (!rm->stopping) {
		struct zf_gc_opts o = { .small_bytes = SMALL_BYTES };
		struct zf_gc_report rep;
		struct timespec ts;
		unsigned int had;
		int r;

		if (rm->small_segs < rm->o.merge_after || rm->fenced ||
		    (last && zf_mono_ns() - last < rm->o.merge_after * 1000000000ull)) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1; /* the rate limit passes without a wake */
			zf_cond_timedwait(&rm->compact_wake, &rm->lock, &ts);
			continue;
		}
		had = rm->small_segs;
		zf_mutex_unlock(&rm->lock);
		memset(&rep, 0, sizeof(rep));
		r = zf_remote_gc(rm, &o, &rep);
		last = zf_mono_ns();
		zf_mutex_lock(&rm->lock);
		if (r == 0) {
			rm->small_segs -= had < rm->small_segs ? had : rm->small_segs;
			rm->compactions++;
			zf_info("merged %u small segments: %llu segments rewritten, %llu bucket "
				"objects removed", had, (unsigned long long)rep.victims,
				(unsigned long long)rep.bucket_objects);
		}
		/* a failure (the bucket is down, a stop): the next try after the limit */
	}
	zf_mutex_unlock(&rm->lock);
	return NULL;
}
