/*
 * storage/segstore_cache.c - the bounded LRU cache of decompressed,
 * verified super-chunks, and read-ahead into it.
 *
 * A super-chunk is decompressed at most once while it is hot: a reader
 * missing it loads it (segstore_read.c, segstore_heal.c) and offers it
 * here; a super-chunk a read-ahead is loading is waited for instead of
 * being loaded twice. The bound is opts->sc_cache_bytes.
 *
 * Locking (segstore_internal.h): st->cache_lock guards the table, the LRU,
 * the counters and the read-aheads at work; loads run without it. A thread
 * holding fs->lock (zf_nonet_locks) never waits for another thread's load,
 * which may be a GET from the bucket.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/lock.h"
#include "common/util.h"
#include "storage/segstore_internal.h"

/* smallest hash table of the super-chunk cache; one bucket per 64 KiB of
 * cache bound above that keeps chains short for super-chunks of >= 64 KiB */
#define ZF_SEG_MIN_BUCKETS 64u
#define ZF_SEG_MAX_BUCKETS (1u << 16)
#define ZF_SEG_BYTES_PER_BUCKET (64u << 10)

void zf_cache_init(struct zf_segstore *st)
{
	size_t nb;

	for (nb = ZF_SEG_MIN_BUCKETS;
	     nb < ZF_SEG_MAX_BUCKETS && nb * ZF_SEG_BYTES_PER_BUCKET < st->cache_max; nb <<= 1)
		;
	st->nbuckets = nb;
	st->buckets = zf_calloc(nb, sizeof(*st->buckets));
}

static size_t zf_cache_bucket(const struct zf_segstore *st, uint64_t seg, uint64_t off)
{
	/* a multiplicative mix: offsets are not random, their low bits repeat */
	uint64_t h = (seg * 0x9e3779b97f4a7c15ull) ^ (off * 0xc2b2ae3d27d4eb4full);

	return (size_t)((h ^ (h >> 29)) & (st->nbuckets - 1));
}

static uint64_t zf_scent_size(const struct zf_scent *e)
{
	return sizeof(*e) + e->raw_len + (uint64_t)e->ntab * (sizeof(*e->tab) + 4);
}

static void zf_scent_unref_locked(struct zf_scent *e)
{
	if (--e->refs == 0)
		zf_scent_free(e);
}

static void zf_cache_remove_locked(struct zf_segstore *st, struct zf_scent *e)
{
	struct zf_scent **pp = &st->buckets[zf_cache_bucket(st, e->seg, e->off)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	zf_link_del(&e->lru);
	e->cached = false;
	st->cache_used -= zf_scent_size(e);
	zf_scent_unref_locked(e);
}

static struct zf_scent *zf_cache_find_locked(struct zf_segstore *st, uint64_t seg, uint64_t off)
{
	struct zf_scent *e;

	for (e = st->buckets[zf_cache_bucket(st, seg, off)]; e; e = e->hnext)
		if (e->seg == seg && e->off == off)
			break;
	if (e) {
		e->refs++;
		zf_link_del(&e->lru);
		zf_link_add_head(&st->lru, &e->lru);
	}
	return e;
}

/* is (seg, off) being loaded by another thread? (cache_lock held) */
static bool zf_cache_loading_locked(struct zf_segstore *st, uint64_t seg, uint64_t off)
{
	unsigned int i;

	for (i = 0; i < ZF_SEG_LOADING_MAX; i++)
		if (st->loading[i].seg == seg && st->loading[i].off == off)
			return true;
	return false;
}

/*
 * A pinned entry for (seg, off), or NULL; counts the hit or miss. A
 * super-chunk another thread is loading (a read-ahead worker, say) is waited
 * for instead of being decompressed twice.
 */
struct zf_scent *zf_cache_get(struct zf_segstore *st, uint64_t seg, uint64_t off)
{
	struct zf_scent *e;

	zf_mutex_lock(&st->cache_lock);
	/* (never while holding the core lock: that load may be a GET) */
	while (!(e = zf_cache_find_locked(st, seg, off)) && !zf_nonet_locks &&
	       zf_cache_loading_locked(st, seg, off))
		zf_cond_wait(&st->loaded, &st->cache_lock);
	if (e)
		st->hits++;
	else
		st->misses++;
	zf_mutex_unlock(&st->cache_lock);
	return e;
}

/*
 * Offer a freshly loaded entry (pinned once by the caller) to the cache.
 * Least recently used entries are evicted until it fits; an entry larger
 * than the whole bound is not cached. If another reader loaded the same
 * super-chunk meanwhile, theirs stays and ours is only used by the caller.
 */
static void zf_cache_insert(struct zf_segstore *st, struct zf_scent *e)
{
	size_t b = zf_cache_bucket(st, e->seg, e->off);
	uint64_t size = zf_scent_size(e);
	struct zf_scent *o;

	if (size > st->cache_max)
		return;
	zf_mutex_lock(&st->cache_lock);
	for (o = st->buckets[b]; o; o = o->hnext)
		if (o->seg == e->seg && o->off == e->off)
			goto out_unlock;
	while (st->cache_used + size > st->cache_max)
		zf_cache_remove_locked(st, zf_container_of(st->lru.prev, struct zf_scent, lru));
	e->hnext = st->buckets[b];
	st->buckets[b] = e;
	zf_link_add_head(&st->lru, &e->lru);
	e->cached = true;
	e->refs++;
	st->cache_used += size;
out_unlock:
	zf_mutex_unlock(&st->cache_lock);
}

void zf_cache_put(struct zf_segstore *st, struct zf_scent *e)
{
	zf_mutex_lock(&st->cache_lock);
	zf_scent_unref_locked(e);
	zf_mutex_unlock(&st->cache_lock);
}

void zf_cache_flush(struct zf_segstore *st)
{
	zf_mutex_lock(&st->cache_lock);
	while (st->lru.next != &st->lru)
		zf_cache_remove_locked(st, zf_container_of(st->lru.next, struct zf_scent, lru));
	zf_mutex_unlock(&st->cache_lock);
}

void zf_segstore_cache_drop(struct zf_segstore *st)
{
	zf_cache_flush(st);
	/* also forget open fds, so a replaced or removed file is noticed */
	zf_segfd_flush(st);
}

/*
 * The cached, verified super-chunk at loc (a reference the caller puts).
 * The read-ahead that claimed loc (ahead) does not wait for itself.
 */
static int zf_cache_load_as(struct zf_segstore *st, const struct zf_sc_loc *loc,
			    struct zf_scent **ret_e, bool ahead)
{
	struct zf_scent *e;
	uint32_t i, off = 0;
	int r;

	if (ahead) {
		zf_mutex_lock(&st->cache_lock);
		e = zf_cache_find_locked(st, loc->seg, loc->off);
		zf_mutex_unlock(&st->cache_lock);
	} else {
		e = zf_cache_get(st, loc->seg, loc->off);
	}
	if (e && (e->disk_len != loc->disk_len || e->raw_len != loc->raw_len)) {
		/* the cached super-chunk was verified: the location is wrong */
		zf_cache_put(st, e);
		return zf_sc_bad(NULL, loc, "location does not match the super-chunk (disk length %"
				 PRIu32 ", raw length %" PRIu32 ")", e->disk_len, e->raw_len);
	}
	if (!e) {
		struct zf_sc_chunk *tab;
		uint32_t ntab;

		r = zf_sc_load(st, loc, &e, &tab, &ntab, NULL);
		if (r < 0)
			return r;
		e->tab = tab;
		e->ntab = ntab;
		e->tab_off = zf_malloc((e->ntab ? e->ntab : 1) * sizeof(uint32_t));
		for (i = 0; i < e->ntab; i++) {
			e->tab_off[i] = off;
			off += e->tab[i].len;
		}
		zf_cache_insert(st, e);
	}
	*ret_e = e;
	return 0;
}

int zf_cache_load(struct zf_segstore *st, const struct zf_sc_loc *loc, struct zf_scent **ret_e)
{
	return zf_cache_load_as(st, loc, ret_e, false);
}

int zf_segstore_cached(struct zf_segstore *st, const struct zf_sc_loc *loc)
{
	struct zf_scent *e;

	zf_mutex_lock(&st->cache_lock);
	for (e = st->buckets[zf_cache_bucket(st, loc->seg, loc->off)]; e; e = e->hnext)
		if (e->seg == loc->seg && e->off == loc->off)
			break;
	zf_mutex_unlock(&st->cache_lock);
	return e != NULL;
}

int zf_segstore_prefetch(struct zf_segstore *st, const struct zf_sc_loc *loc, int flags)
{
	bool wait = flags & ZF_PREFETCH_WAIT;
	struct zf_scent *e;
	unsigned int slot;
	int r;

	if (!loc || loc->seg == 0)
		return -EINVAL;
	if ((flags & ZF_PREFETCH_LOCAL) && zf_segfd_exists(st, loc->seg) == -ENOENT)
		return 0; /* evicted: the object-storage tier reads ahead from the bucket */
	zf_mutex_lock(&st->cache_lock);
	/* wait: for a load another thread has under way, not only to start one */
	while (!(e = zf_cache_find_locked(st, loc->seg, loc->off)) && wait &&
	       zf_cache_loading_locked(st, loc->seg, loc->off))
		zf_cond_wait(&st->loaded, &st->cache_lock);
	if (e || zf_cache_loading_locked(st, loc->seg, loc->off)) {
		if (e)
			zf_scent_unref_locked(e);
		zf_mutex_unlock(&st->cache_lock);
		return 0;
	}
	for (slot = 0; slot < ZF_SEG_LOADING_MAX && st->loading[slot].seg; slot++)
		;
	if (slot == ZF_SEG_LOADING_MAX) { /* enough in progress already */
		zf_mutex_unlock(&st->cache_lock);
		return 0;
	}
	st->loading[slot].seg = loc->seg;
	st->loading[slot].off = loc->off;
	zf_mutex_unlock(&st->cache_lock);

	/* a local-only read-ahead never waits for the bucket (the segment
	 * may be evicted since it was checked): as if the core lock were held */
	if (flags & ZF_PREFETCH_LOCAL)
		zf_nonet_locks++;
	r = zf_cache_load_as(st, loc, &e, true);
	if (flags & ZF_PREFETCH_LOCAL)
		zf_nonet_locks--;
	if (r == 0)
		zf_cache_put(st, e);

	zf_mutex_lock(&st->cache_lock);
	st->loading[slot].seg = 0;
	pthread_cond_broadcast(&st->loaded);
	zf_mutex_unlock(&st->cache_lock);
	return r < 0 ? r : 1;
}
