/*
 * tier/evict.c - the dev-dir's budget: backpressure on writers and eviction
 *
 * With a budget (local_budget), a write is admitted once the dev-dir has room
 * for it after everything pending has landed: data the bucket holds leaves
 * at once (evicted, least recently used first), data it does not hold yet
 * is waited for (the uploader is woken). Eviction also keeps the stats'
 * byte counts. Pinned data (tier/wset.c) stays: its fetched copies are no
 * victims, and a segment holding some leaves after copying it to cache/.
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
#include "storage/fs_tier.h"
#include "storage/segstore.h"
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
		uint64_t held = rm->unevictable + rm->pinned_local;

		if (!(rm->unevictable && held + len > rm->o.local_budget)) {
			if (evicted || !rm->evictable ||
			    held + rm->evictable + len <= rm->o.local_budget)
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

/* the pinned super-chunks, sorted */
struct pins {
	struct zf_sc_loc *v;
	size_t n;
};

/* list a directory's files into v; returns their total size */
static uint64_t scan_dir(int dirfd, int is_seg, uint64_t up_seg, const struct pins *pins,
			 struct victim **v, size_t *n, uint64_t *ret_unevictable,
			 uint64_t *ret_pinned)
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
		struct zf_sc_loc loc = { 0 };
		struct stat st;

		if (e->d_name[0] == '.' || fstatat(dirfd, e->d_name, &st, 0) < 0)
			continue;
		total += st.st_size;
		if (is_seg && (sscanf(e->d_name, "%16llx.zseg", &id) != 1 || id > up_seg)) {
			*ret_unevictable += st.st_size; /* open, or not in the bucket yet */
			continue;
		}
		if (!is_seg && zf_tier_cache_parse(e->d_name, &loc.seg, &loc.off) &&
		    zf_tier_loc_in(pins->v, pins->n, &loc)) {
			*ret_pinned += st.st_size;
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

/* keep a copy of a pinned super-chunk of a segment about to leave; 0 or -errno */
static int keep_pinned(struct zf_remote *rm, int fd, const struct zf_sc_loc *loc)
{
	char name[64];
	void *buf;
	int r;

	zf_tier_cache_name(loc->seg, loc->off, name, sizeof(name));
	if (faccessat(rm->cachefd, name, F_OK, 0) == 0)
		return 0;
	buf = zf_malloc(loc->disk_len);
	if (zf_pread_full(fd, buf, loc->disk_len, loc->off) != (ssize_t)loc->disk_len) {
		free(buf);
		return -EIO;
	}
	r = zf_tier_cache_put(rm, name, buf, loc->disk_len);
	free(buf);
	return r;
}

int zf_tier_evict_seg(struct zf_remote *rm, uint64_t seg, const struct zf_sc_loc *pins,
		      size_t npins, uint64_t *ret_freed)
{
	struct zf_sc_loc first = { .seg = seg };
	uint64_t kept = 0;
	char name[32];
	struct stat st;
	size_t i;
	int fd, r = 0;

	*ret_freed = 0;
	zf_segstore_name(seg, name, sizeof(name));
	fd = openat(rm->segfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		r = -errno;
	for (i = zf_tier_loc_lower(pins, npins, &first); r == 0 && i < npins && pins[i].seg == seg;
	     i++) {
		r = keep_pinned(rm, fd, &pins[i]);
		kept += pins[i].disk_len;
	}
	close(fd);
	if (r == 0)
		r = zf_fs_evict_segment(rm->fs, seg);
	if (r < 0)
		return r;
	*ret_freed = (uint64_t)st.st_size > kept ? (uint64_t)st.st_size - kept : 0;
	return 0;
}

/* keep the dev-dir's segments and fetched data within the budget, LRU first */
void zf_tier_evict(struct zf_remote *rm)
{
	struct victim *v = NULL;
	uint64_t total, buffered, unevictable = 0, up_seg, pinned, pinned_local = 0;
	struct pins pins;
	size_t n = 0, i;

	zf_fs_pinned_scs(rm->fs, &pins.v, &pins.n);
	pinned = 0;
	for (i = 0; i < pins.n; i++)
		pinned += pins.v[i].disk_len;
	zf_mutex_lock(&rm->evict_lock);
	/* before the scan: bytes that move to a segment meanwhile count twice, not never */
	buffered = zf_fs_buffered_bytes(rm->fs);
	zf_mutex_lock(&rm->lock);
	up_seg = rm->up_seg;
	zf_mutex_unlock(&rm->lock);
	total = scan_dir(rm->segfd, 1, up_seg, &pins, &v, &n, &unevictable, &pinned_local);
	total += scan_dir(rm->cachefd, 0, up_seg, &pins, &v, &n, &unevictable, &pinned_local);
	/* what the dev-dir holds once buffered data has landed must fit */
	if (rm->o.local_budget && total + buffered > rm->o.local_budget && n) {
		qsort(v, n, sizeof(*v), cmp_victim);
		for (i = 0; i < n && total + buffered > rm->o.local_budget; i++) {
			uint64_t freed = v[i].size;
			int r = v[i].is_seg
					? zf_tier_evict_seg(rm, v[i].id, pins.v, pins.n, &freed)
					: (unlinkat(rm->cachefd, v[i].name, 0) < 0 ? -errno : 0);

			if (r < 0)
				continue;
			total -= freed;
			pinned_local += v[i].size - freed; /* pinned copies kept */
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
	rm->evictable = total - unevictable - pinned_local;
	rm->pinned_bytes = pinned;
	rm->pinned_local = pinned_local;
	zf_mutex_unlock(&rm->lock);
	zf_mutex_unlock(&rm->evict_lock);
	free(pins.v);
	free(v);
}

