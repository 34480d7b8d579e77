/*
 * storage/segstore.c - log-structured segment store of super-chunks: open,
 * close, statistics and the fetch hook.
 *
 * The contract is in segstore.h; the byte layout in seg_format.h and
 * docs/FORMAT.md "Segments" and "Super-chunks". The store's parts, their
 * invariants and the lock order are in segstore_internal.h.
 *
 * Not here: what is committed (the metadata log, storage/fs.c), which
 * chunks are live (gc), uploads and fetching evicted segments (the
 * object-storage tier, through the fetch hook).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zstd.h>

#include "common/lock.h"
#include "common/util.h"
#include "storage/segstore_internal.h"

#define ZF_SEG_DEFAULT_LEVEL 3
#define ZF_SEG_DEFAULT_LIMIT (16ull << 20)
/* the decompressed super-chunk cache when the caller sets no bound */
#define ZF_SEG_DEFAULT_SC_CACHE (64ull << 20)

int zf_segstore_open(int dirfd, const uint8_t fsid[16], const struct zf_chunker *chunker,
		     const struct zf_segstore_opts *opts, struct zf_segstore **ret_st)
{
	struct zf_segstore *st;
	uint64_t max = 0;
	int r;

	if (!fsid || !chunker || !ret_st)
		return -EINVAL;
	if (opts && (opts->zstd_level < 0 || opts->zstd_level > ZSTD_maxCLevel()))
		return -EINVAL;

	st = zf_calloc(1, sizeof(*st));
	st->dirfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	if (st->dirfd < 0) {
		r = -errno;
		free(st);
		return r;
	}
	memcpy(st->fsid, fsid, 16);
	st->chunker = chunker;
	st->level = opts && opts->zstd_level ? opts->zstd_level : ZF_SEG_DEFAULT_LEVEL;
	st->seg_limit = opts && opts->seg_limit ? opts->seg_limit : ZF_SEG_DEFAULT_LIMIT;
	st->cache_max = opts && opts->sc_cache_bytes ? opts->sc_cache_bytes : ZF_SEG_DEFAULT_SC_CACHE;
	st->readonly = opts ? opts->readonly : 0;
	st->wfd = -1;
	zf_mutex_init(&st->wlock, ZF_RANK_SEG_WRITE, "st->wlock");
	zf_mutex_init(&st->lock, ZF_RANK_SEG, "st->lock");
	zf_mutex_init(&st->cache_lock, ZF_RANK_SEG_CACHE, "st->cache_lock");
	pthread_cond_init(&st->loaded, NULL);
	zf_mutex_init(&st->dlock, ZF_RANK_SEG_DCTX, "st->dlock");
	zf_link_init(&st->fds);
	zf_link_init(&st->lru);

	zf_cache_init(st);

	st->pk = zf_sc_packer_new();
	if (!st->pk) {
		r = -ENOMEM;
		goto out_close;
	}

	/* without resume() new segments go after every existing one */
	r = zf_seg_scan(st, UINT64_MAX, &st->nsegs, &st->disk_bytes, &max, NULL);
	if (r < 0)
		goto out_close;
	st->next_id = max + 1;
	*ret_st = st;
	return 0;

out_close:
	zf_segstore_close(st);
	return r;
}

void zf_segstore_close(struct zf_segstore *st)
{
	unsigned int i;

	if (!st)
		return;
	zf_seg_writer_drop(st);
	zf_cache_flush(st);
	zf_segfd_flush(st);
	for (i = 0; i < st->ndpool; i++)
		ZSTD_freeDCtx(st->dpool[i]);
	zf_sc_packer_free(st->pk);
	zf_sc_image_free(&st->wimg);
	free(st->buckets);
	close(st->dirfd);
	zf_mutex_destroy(&st->dlock);
	pthread_cond_destroy(&st->loaded);
	zf_mutex_destroy(&st->cache_lock);
	zf_mutex_destroy(&st->lock);
	zf_mutex_destroy(&st->wlock);
	free(st);
}

void zf_segstore_stats(struct zf_segstore *st, struct zf_segstore_stats *ret)
{
	memset(ret, 0, sizeof(*ret));
	zf_mutex_lock(&st->lock);
	ret->segments = st->nsegs;
	ret->disk_bytes = st->disk_bytes;
	ret->raw_bytes = st->raw_bytes;
	ret->stored_bytes = st->stored_bytes;
	zf_mutex_unlock(&st->lock);
	zf_mutex_lock(&st->cache_lock);
	ret->cache_hits = st->hits;
	ret->cache_misses = st->misses;
	ret->sc_cache_bytes = st->cache_used;
	ret->sc_cache_max = st->cache_max;
	ret->healed = __atomic_load_n(&st->healed, __ATOMIC_RELAXED);
	zf_mutex_unlock(&st->cache_lock);
}

void zf_segstore_set_fetch(struct zf_segstore *st, zf_segstore_fetch_fn fn, void *ctx)
{
	st->fetch_ctx = ctx;
	st->fetch = fn;
}

int zf_segstore_has_fetch(struct zf_segstore *st)
{
	return st->fetch != NULL;
}

