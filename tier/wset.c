/*
 * tier/wset.c - the working set under the user's control: pin, warm up,
 * evict, and what of a file is local
 *
 * A pinned file's data stays in the dev-dir: eviction skips its fetched
 * super-chunks, and a segment that holds some of it leaves only after they
 * are copied into cache/ (tier/evict.c zf_tier_evict_seg), so a pin costs
 * the pinned bytes, not whole segments. Pinned data counts against the
 * budget (cache_size): pins may use at most PIN_SHARE of it, the rest is
 * room for writes and fetches. Pinning fetches what is not local; if the
 * bucket cannot be reached then, the prefetch thread keeps trying
 * (zf_tier_warm_pins) until every pinned byte is local, as it does after a
 * mount or a restore.
 *
 * The flag itself is the core's (storage/fs_wset.c, durable).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/lock.h"
#include "common/log.h"
#include "common/util.h"
#include "storage/fs_tier.h"
#include "storage/segstore.h"
#include "tier/tier_internal.h"

#define PIN_SHARE_NUM 3		/* pins may use 3/4 of the budget */
#define PIN_SHARE_DEN 4
#define WARM_THREADS 4		/* GETs in flight for one warmup */
#define WARM_RETRY_NS (10ull * 1000000000ull) /* pins not local: try again after */

/* is the super-chunk at loc in the dev-dir (its segment, or a fetched copy)? */
static int sc_local(struct zf_remote *rm, const struct zf_sc_loc *loc)
{
	char name[64];

	if (zf_fs_segment_local(rm->fs, loc->seg))
		return 1;
	zf_tier_cache_name(loc->seg, loc->off, name, sizeof(name));
	return faccessat(rm->cachefd, name, F_OK, 0) == 0;
}

size_t zf_tier_loc_lower(const struct zf_sc_loc *v, size_t n, const struct zf_sc_loc *loc)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid].seg < loc->seg || (v[mid].seg == loc->seg && v[mid].off < loc->off))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int zf_tier_loc_in(const struct zf_sc_loc *v, size_t n, const struct zf_sc_loc *loc)
{
	size_t i = zf_tier_loc_lower(v, n, loc);

	return i < n && v[i].seg == loc->seg && v[i].off == loc->off;
}

/* the distinct super-chunks of a regular file (sorted), and its unlocated bytes */
static int file_scs(struct zf_remote *rm, uint64_t ino, struct zf_sc_loc **ret, size_t *ret_n,
		    uint64_t *ret_unlocated)
{
	struct zf_file_piece *p;
	struct zf_sc_loc *v;
	size_t n, i, k = 0;
	int r = zf_fs_file_pieces(rm->fs, ino, &p, &n);

	*ret = NULL;
	*ret_n = 0;
	if (ret_unlocated)
		*ret_unlocated = 0;
	if (r < 0)
		return r;
	v = zf_malloc((n ? n : 1) * sizeof(*v));
	for (i = 0; i < n; i++) {
		if (p[i].located)
			v[k++] = p[i].loc;
		else if (ret_unlocated)
			*ret_unlocated += p[i].bytes;
	}
	free(p);
	*ret_n = zf_fs_sort_locs(v, k);
	*ret = v;
	return 0;
}

static uint64_t disk_bytes(const struct zf_sc_loc *v, size_t n)
{
	uint64_t b = 0;
	size_t i;

	for (i = 0; i < n; i++)
		b += v[i].disk_len;
	return b;
}

/* ------------------------------------------------------------- warm up */

struct warm {
	struct zf_remote *rm;
	const struct zf_sc_loc *v;
	size_t n;
	size_t next;		/* atomic: the next one to fetch */
	uint64_t fetched;	/* atomic */
	int err;		/* the first failure */
};

static void *warm_main(void *arg)
{
	struct warm *w = arg;
	void *buf = NULL;
	size_t cap = 0, i;

	while ((i = __atomic_fetch_add(&w->next, 1, __ATOMIC_RELAXED)) < w->n) {
		const struct zf_sc_loc *loc = &w->v[i];
		int r;

		if (__atomic_load_n(&w->err, __ATOMIC_RELAXED))
			break; /* the bucket failed one: the rest would wait too */
		if (sc_local(w->rm, loc))
			continue;
		if (loc->disk_len > cap) {
			cap = loc->disk_len;
			buf = zf_realloc(buf, cap);
		}
		r = zf_tier_fetch_only(w->rm, loc, buf);
		if (r < 0) {
			int zero = 0;

			__atomic_compare_exchange_n(&w->err, &zero, r, 0, __ATOMIC_RELAXED,
						    __ATOMIC_RELAXED);
		} else {
			__atomic_fetch_add(&w->fetched, loc->disk_len, __ATOMIC_RELAXED);
		}
	}
	free(buf);
	return NULL;
}

/* fetch every super-chunk of v[0..n) that is not local, several at a time */
static int warm_scs(struct zf_remote *rm, const struct zf_sc_loc *v, size_t n,
		    uint64_t *ret_fetched)
{
	struct warm w = { .rm = rm, .v = v, .n = n };

	zf_run_workers(n < WARM_THREADS ? (unsigned int)n : WARM_THREADS, warm_main, &w);
	if (ret_fetched)
		*ret_fetched = w.fetched;
	return w.err;
}

int zf_remote_warmup(struct zf_remote *rm, uint64_t ino, uint64_t *ret_fetched)
{
	struct zf_sc_loc *v;
	size_t n;
	int r;

	if (ret_fetched)
		*ret_fetched = 0;
	r = file_scs(rm, ino, &v, &n, NULL);
	if (r == -EISDIR)
		return 0; /* a directory: its files are warmed one by one */
	if (r == 0)
		r = warm_scs(rm, v, n, ret_fetched);
	free(v);
	return r;
}

void zf_tier_warm_pins(struct zf_remote *rm)
{
	struct zf_sc_loc *v;
	size_t n;
	int r;

	zf_fs_pinned_scs(rm->fs, &v, &n);
	r = warm_scs(rm, v, n, NULL);
	free(v);
	zf_mutex_lock(&rm->lock);
	if (r < 0) {
		rm->pins_retry_ns = zf_mono_ns() + WARM_RETRY_NS;
	} else {
		rm->pins_cold = 0;
		rm->pins_retry_ns = 0;
	}
	zf_mutex_unlock(&rm->lock);
}

/* ask the prefetch thread to bring every pinned byte into the dev-dir */
void zf_tier_want_pins(struct zf_remote *rm)
{
	zf_mutex_lock(&rm->lock);
	rm->pins_cold = 1;
	rm->pins_retry_ns = 0;
	pthread_cond_signal(&rm->pf_wake);
	zf_mutex_unlock(&rm->lock);
}

/* ---------------------------------------------------------------- pin */

int zf_remote_pin(struct zf_remote *rm, uint64_t ino, int on, char *why, size_t wlen)
{
	struct zf_sc_loc *pins = NULL, *mine = NULL, *all;
	size_t npins = 0, nmine = 0, n;
	uint64_t need, allow = rm->o.local_budget / PIN_SHARE_DEN * PIN_SHARE_NUM;
	int r, warm;

	if (why && wlen)
		why[0] = 0;
	if (!on)
		return zf_fs_set_pinned(rm->fs, ino, 0);
	r = file_scs(rm, ino, &mine, &nmine, NULL);
	if (r < 0 && r != -EISDIR)
		return r;
	if (rm->o.local_budget && nmine) {
		zf_fs_pinned_scs(rm->fs, &pins, &npins);
		all = zf_malloc((npins + nmine) * sizeof(*all));
		if (npins)
			memcpy(all, pins, npins * sizeof(*all));
		memcpy(all + npins, mine, nmine * sizeof(*all));
		n = zf_fs_sort_locs(all, npins + nmine);
		need = disk_bytes(all, n);
		free(all);
		free(pins);
		if (need > allow) {
			if (why)
				snprintf(why, wlen,
					 "pinned data would take %" PRIu64 " bytes; pins may use "
					 "%" PRIu64 " of the %" PRIu64 "-byte cache_size",
					 need, allow, rm->o.local_budget);
			free(mine);
			return -ENOSPC;
		}
	}
	r = zf_fs_set_pinned(rm->fs, ino, 1);
	if (r == 0 && nmine) {
		warm = warm_scs(rm, mine, nmine, NULL);
		if (warm < 0) {
			zf_warn("pinned inode %" PRIu64 ", but part of its data is only in the "
				"bucket, which failed (%s): fetched when it answers",
				ino, strerror(-warm));
			zf_tier_want_pins(rm);
		}
	}
	free(mine);
	return r;
}

/* --------------------------------------------------------------- evict */

int zf_remote_evict_file(struct zf_remote *rm, uint64_t ino, uint64_t *ret_freed)
{
	struct zf_sc_loc *v, *pins = NULL;
	size_t n, npins = 0, i;
	uint64_t freed = 0, up_seg, last = 0;
	int r;

	if (ret_freed)
		*ret_freed = 0;
	r = zf_fs_pinned(rm->fs, ino);
	if (r < 0)
		return r;
	if (r)
		return -EBUSY; /* pinned: unpin it first */
	r = file_scs(rm, ino, &v, &n, NULL);
	if (r == -EISDIR)
		return 0;
	if (r < 0)
		return r;
	zf_fs_pinned_scs(rm->fs, &pins, &npins);
	zf_mutex_lock(&rm->evict_lock);
	zf_mutex_lock(&rm->lock);
	up_seg = rm->up_seg;
	zf_mutex_unlock(&rm->lock);
	for (i = 0; i < n; i++) {
		char name[64];
		struct stat st;

		if (v[i].seg > up_seg || zf_tier_loc_in(pins, npins, &v[i]))
			continue; /* not in the bucket yet, or another file's pin */
		zf_tier_cache_name(v[i].seg, v[i].off, name, sizeof(name));
		if (fstatat(rm->cachefd, name, &st, 0) == 0 && unlinkat(rm->cachefd, name, 0) == 0)
			freed += st.st_size;
		if (v[i].seg != last && zf_fs_segment_local(rm->fs, v[i].seg)) {
			uint64_t size = 0;

			if (zf_tier_evict_seg(rm, v[i].seg, pins, npins, &size) == 0)
				freed += size;
		}
		last = v[i].seg;
	}
	zf_mutex_unlock(&rm->evict_lock);
	free(pins);
	free(v);
	zf_tier_evict(rm); /* the byte counts, measured again */
	if (ret_freed)
		*ret_freed = freed;
	return 0;
}

/* -------------------------------------------------------------- status */

int zf_remote_file_status(struct zf_remote *rm, uint64_t ino, struct zf_file_status *st)
{
	struct zf_file_piece *p;
	uint64_t up_seg;
	size_t n, i;
	int r;

	memset(st, 0, sizeof(*st));
	r = zf_fs_pinned(rm->fs, ino);
	if (r < 0)
		return r;
	st->pinned = r;
	r = zf_fs_file_pieces(rm->fs, ino, &p, &n);
	if (r == -EISDIR)
		return 0;
	if (r < 0)
		return r;
	zf_mutex_lock(&rm->lock);
	up_seg = rm->up_seg;
	zf_mutex_unlock(&rm->lock);
	for (i = 0; i < n; i++) {
		if (!p[i].located || p[i].loc.seg > up_seg) {
			st->local += p[i].bytes;
			st->pending += p[i].bytes;
		} else if (sc_local(rm, &p[i].loc)) {
			st->local += p[i].bytes;
		} else {
			st->bucket += p[i].bytes;
		}
	}
	free(p);
	return 0;
}
