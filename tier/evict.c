/*
 * tier/evict.c - the dev-dir's budget: backpressure on writers and eviction
 *
 * With a budget (local_budget), a write is admitted once the dev-dir has room
 * for it after everything pending has landed: data the bucket holds leaves
 * at once (evicted, least recently used first), data it does not hold yet
 * is waited for (the uploader is woken). Eviction also keeps the stats'
 * byte counts.
 */
#include "config.h"

#include <dirent.h>
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
#include "tier/tier_internal.h"

/* a write is admitted now: the recovery point ages from its oldest byte */
static void note_write_locked(struct zf_remote *rm)
{
	uint64_t now = zf_mono_ns();

	if (!rm->pending_since_ns)
		rm->pending_since_ns = now;
	if (!rm->fresh_since_ns)
		rm->fresh_since_ns = now;
}

int zf_tier_admit(void *ctx, size_t len)
{
	struct zf_remote *rm = ctx;
	struct timespec ts;
	int r = 0, stalled = 0, evicted = 0;

	if (!rm->o.local_budget) {
		zf_mutex_lock(&rm->lock);
		rm->unevictable += len; /* no budget, but stats show what is pending */
		note_write_locked(rm);
		zf_mutex_unlock(&rm->lock);
		return 0;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += rm->o.write_wait_ms / 1000;
	ts.tv_nsec += (long)(rm->o.write_wait_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	zf_mutex_lock(&rm->lock);
	while (!rm->stopping && !rm->fenced) {
		/*
		 * The dev-dir must have room for len once everything pending
		 * has landed: data the bucket holds leaves at once, in this
		 * thread; data it does not hold yet is waited for.
		 */
		if (!(rm->unevictable && rm->unevictable + len > rm->o.local_budget)) {
			if (evicted || !rm->evictable ||
			    rm->unevictable + rm->evictable + len <= rm->o.local_budget)
				break;
			evicted = 1;
			zf_mutex_unlock(&rm->lock);
			zf_tier_evict(rm);
			zf_mutex_lock(&rm->lock);
			continue;
		}
		if (!stalled) {
			stalled = 1;
			rm->stalls++;
			rm->waiters++;
		}
		pthread_cond_broadcast(&rm->wake);
		if (zf_cond_timedwait(&rm->done, &rm->lock, &ts) == ETIMEDOUT) {
			zf_err("write waited %u ms for room in the dev-dir of '%s' (uploads to '%s' "
			       "are behind)",
			       rm->o.write_wait_ms, zf_fs_dev_dir(rm->fs), rm->url);
			r = -ENOSPC;
			break;
		}
	}
	if (r == 0) {
		rm->unevictable += len; /* counted until the next round measures */
		note_write_locked(rm);
	}
	if (stalled)
		rm->waiters--;
	zf_mutex_unlock(&rm->lock);
	return r;
}

/* ------------------------------------------------------------- eviction */

struct victim {
	int is_seg;
	uint64_t id;		/* segment id */
	char name[256];		/* cache file name */
	uint64_t size;
	int64_t when;		/* last access (cache files: atime) */
};

static int cmp_victim(const void *a, const void *b)
{
	const struct victim *x = a, *y = b;

	return x->when < y->when ? -1 : x->when > y->when;
}

/* list a directory's files into v; returns their total size */
static uint64_t scan_dir(int dirfd, int is_seg, uint64_t up_seg, struct victim **v, size_t *n,
			 uint64_t *ret_unevictable)
{
	uint64_t total = 0;
	struct dirent *e;
	DIR *d;
	int fd = dup(dirfd);

	if (fd < 0)
		return 0;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return 0;
	}
	rewinddir(d);
	while ((e = readdir(d))) {
		unsigned long long id = 0;
		struct stat st;

		if (e->d_name[0] == '.' || fstatat(dirfd, e->d_name, &st, 0) < 0)
			continue;
		total += st.st_size;
		if (is_seg && (sscanf(e->d_name, "%16llx.zseg", &id) != 1 || id > up_seg)) {
			*ret_unevictable += st.st_size; /* open, or not in the bucket yet */
			continue;
		}
		*v = zf_realloc(*v, (*n + 1) * sizeof(**v));
		(*v)[*n].is_seg = is_seg;
		(*v)[*n].id = id;
		snprintf((*v)[*n].name, sizeof((*v)[*n].name), "%s", e->d_name);
		(*v)[*n].size = st.st_size;
		/* segments are read through the kernel: their atime is the age */
		(*v)[*n].when = (int64_t)st.st_atim.tv_sec * 1000000000 + st.st_atim.tv_nsec;
		if (st.st_mtim.tv_sec > st.st_atim.tv_sec)
			(*v)[*n].when = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
		(*n)++;
	}
	closedir(d);
	return total;
}

/* keep the dev-dir's segments and fetched data within the budget, LRU first */
void zf_tier_evict(struct zf_remote *rm)
{
	struct victim *v = NULL;
	uint64_t total, buffered, unevictable = 0, up_seg;
	size_t n = 0, i;

	zf_mutex_lock(&rm->evict_lock);
	/* before the scan: bytes that move to a segment meanwhile count twice, not never */
	buffered = zf_fs_buffered_bytes(rm->fs);
	zf_mutex_lock(&rm->lock);
	up_seg = rm->up_seg;
	zf_mutex_unlock(&rm->lock);
	total = scan_dir(rm->segfd, 1, up_seg, &v, &n, &unevictable);
	total += scan_dir(rm->cachefd, 0, up_seg, &v, &n, &unevictable);
	/* what the dev-dir holds once buffered data has landed must fit */
	if (rm->o.local_budget && total + buffered > rm->o.local_budget && n) {
		qsort(v, n, sizeof(*v), cmp_victim);
		for (i = 0; i < n && total + buffered > rm->o.local_budget; i++) {
			int r = v[i].is_seg ? zf_fs_evict_segment(rm->fs, v[i].id)
					    : (unlinkat(rm->cachefd, v[i].name, 0) < 0 ? -errno : 0);

			if (r < 0)
				continue;
			total -= v[i].size;
			if (v[i].is_seg) {
				zf_mutex_lock(&rm->lock);
				rm->evictions++;
				zf_mutex_unlock(&rm->lock);
			}
		}
	}
	zf_mutex_lock(&rm->lock);
	rm->local_bytes = total;
	rm->unevictable = unevictable + buffered;
	rm->evictable = total - unevictable;
	zf_mutex_unlock(&rm->lock);
	zf_mutex_unlock(&rm->evict_lock);
	free(v);
}

