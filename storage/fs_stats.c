/*
 * storage/fs_stats.c - zf_fs_stats: counts of the table, the segment store,
 * the data path's memory and the commit path, for `zerofs stats` and the
 * tests. Takes fs->lock for a consistent snapshot.
 */
#include "config.h"

#include <string.h>
#include <sys/stat.h>

#include "storage/fs_internal.h"

void zf_fs_stats(struct zf_fs *fs, struct zf_fs_stats *ret)
{
	struct zf_segstore_stats ss;
	struct zf_hent *e;
	size_t i;

	memset(ret, 0, sizeof(*ret));
	fs_lock(fs);
	ret->inodes = fs->inodes.n;
	ret->files = fs->nfiles;
	ret->dirs = fs->ndirs;
	zf_htab_foreach(&fs->inodes, e)
	{
		struct zf_inode *in = e->val;

		if (S_ISREG(in->mode)) {
			ret->logical_bytes += fs_isize(in);
			ret->referenced_bytes += in->u.file->mapped;
		}
	}
	zf_htab_foreach(&fs->chunks, e)
	{
		struct zf_chunk *c = e->val;

		ret->chunks++;
		if (c->refs) {
			ret->chunks_live++;
			ret->unique_bytes += c->len;
			if (c->sc)
				ret->stored_live_bytes +=
					(uint64_t)c->len * c->sc->loc.disk_len / c->sc->loc.raw_len;
		}
		if (c->refs > 1)
			ret->chunks_shared++;
	}
	for (i = 0; i < fs->nscs; i++) {
		ret->stored_bytes += fs->scs[i]->loc.disk_len;
		ret->stored_raw_bytes += fs->scs[i]->loc.raw_len;
	}
	ret->log_bytes = fs->log ? zf_mlog_size(fs->log) : 0;
	ret->dirty_bytes = fs->dirty_bytes;
	ret->mem_budget = fs->mem_budget;
	ret->dirty_limit = fs->dirty_limit;
	ret->pipe_bytes = fs->pack ? fs->pack->raw.len : 0;
	ret->commits = fs->commits;
	ret->fsyncs = fs->fsyncs;
	fs_unlock(fs);
	zf_segstore_stats(fs->seg, &ss);
	ret->segments = ss.segments;
	ret->cache_hits = ss.cache_hits;
	ret->cache_misses = ss.cache_misses;
	ret->sc_cache_bytes = ss.sc_cache_bytes;
	ret->sc_cache_max = ss.sc_cache_max;
	ret->healed = ss.healed;
	{
		struct zf_pipe_stats ps;

		fs_pipe_stats(fs, &ps);
		ret->pipe_bytes += 2 * ps.inflight_bytes; /* raw bytes and image */
		ret->packs = ps.packs;
		ret->fast_packs = ps.fast_packs;
		ret->raw_packs = ps.raw_packs;
		ret->readahead = ps.readahead;
	}
}
