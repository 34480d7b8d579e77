/*
 * storage/fs_walk.c - the core's side of storage/fs_walk.h: the chunk index
 * and super-chunks shown to the maintenance passes as copies, and the few
 * changes they make (chunks moved, dead entries dropped, segment files
 * removed) done here, where the table is.
 *
 * Locking: as fs_walk.h says; fs->gc_lock before fs->lock.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/lock.h"
#include "common/endian.h"
#include "common/log.h"
#include "common/util.h"
#include "storage/fs_internal.h"
#include "storage/fs_walk.h"
#include "storage/meta_format.h"

#define DEL_IDS_PER_RECORD 65536u /* 1 MiB of ids: far below the record size bound */

void zf_fs_gc_lock(struct zf_fs *fs)
{
	zf_mutex_lock(&fs->gc_lock);
}

void zf_fs_gc_unlock(struct zf_fs *fs)
{
	zf_mutex_unlock(&fs->gc_lock);
}

void zf_fs_walk_lock(struct zf_fs *fs)
{
	fs_lock(fs);
}

void zf_fs_walk_unlock(struct zf_fs *fs)
{
	fs_unlock(fs);
}

void zf_fs_walk_state(struct zf_fs *fs, struct zf_walk_state *ret)
{
	ret->readonly = fs->readonly;
	ret->dev_dir = fs->dev_dir;
	ret->open_seg = fs->open_seg;
	ret->last_sealed = fs->last_sealed;
	ret->segfd = fs->segfd;
	ret->seg = fs->seg;
}

void zf_fs_walk_scs(struct zf_fs *fs, void (*fn)(void *ctx, const struct zf_sc_loc *loc),
		    void *ctx)
{
	size_t i;

	for (i = 0; i < fs->nscs; i++)
		fn(ctx, &fs->scs[i]->loc);
}

void fs_walk_chunk_of(const struct zf_chunk *c, struct zf_walk_chunk *w)
{
	memset(w, 0, sizeof(*w));
	w->id = c->id;
	w->located = c->sc != NULL;
	if (c->sc)
		w->loc = c->sc->loc;
	w->raw_off = c->raw_off;
	w->len = c->len;
	w->refs = c->refs;
	w->readable = zf_chunk_readable(c);
}

int zf_fs_walk_chunks(struct zf_fs *fs, int (*fn)(void *ctx, const struct zf_walk_chunk *c),
		      void *ctx)
{
	struct zf_walk_chunk w;
	struct zf_hent *e;
	int r;

	zf_htab_foreach(&fs->chunks, e)
	{
		fs_walk_chunk_of(e->val, &w);
		r = fn(ctx, &w);
		if (r)
			return r;
	}
	return 0;
}

uint64_t *zf_fs_walk_segments(struct zf_fs *fs, size_t *ret_n)
{
	return fs_segments_used(fs, ret_n);
}

int zf_fs_walk_settle(struct zf_fs *fs)
{
	int r = fs_flush_all(fs, 0);

	return r ? r : fs_commit(fs);
}

int zf_fs_walk_commit(struct zf_fs *fs)
{
	return fs_commit(fs);
}

int zf_fs_walk_move(struct zf_fs *fs, const struct zf_walk_chunk *ch, const int *ok, size_t n,
		    uint8_t *raw, uint32_t *ret_moved, uint32_t *ret_bytes)
{
	struct zf_chunk **cs = zf_malloc((n ? n : 1) * sizeof(*cs));
	struct zf_sc_chunk *tab = zf_malloc((n ? n : 1) * sizeof(*tab));
	struct zf_sc_loc loc;
	uint64_t sealed = 0;
	uint32_t k = 0, pos = 0, src = 0;
	size_t i;
	int r;

	for (i = 0; i < n; src += ch[i].len, i++) {
		struct zf_chunk *c = fs_chunk_find(fs, &ch[i].id);

		/* moved, dropped or rewritten since it was read: leave it */
		if (!ok[i] || !c || !c->sc || c->sc->loc.seg != ch[i].loc.seg ||
		    c->sc->loc.off != ch[i].loc.off || c->raw_off != ch[i].raw_off)
			continue;
		memmove(raw + pos, raw + src, ch[i].len);
		cs[k] = c;
		tab[k].id = c->id;
		tab[k].len = c->len;
		pos += c->len;
		k++;
	}
	/* writers' packs in flight go to the segment first: appends and their
	 * records stay in one order */
	r = fs_pipe_reap(fs, 1);
	if (k && r == 0) {
		r = zf_segstore_append(fs->seg, tab, k, raw, pos, &loc, &sealed);
		if (r == 0) {
			fs_log_sc(fs, ZF_REC_SC_MOVE, &loc, cs, k);
			if (sealed)
				fs_log_seal(fs, sealed);
			r = fs_commit(fs);
		}
		if (r < 0)
			zf_err("gc: cannot write moved chunks in '%s': %s", fs->dev_dir, strerror(-r));
	}
	*ret_moved = r == 0 ? k : 0;
	*ret_bytes = r == 0 ? pos : 0;
	free(cs);
	free(tab);
	return r;
}

void zf_fs_walk_drop(struct zf_fs *fs, const struct zf_chunk_id *ids, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint32_t k = n - i < DEL_IDS_PER_RECORD ? (uint32_t)(n - i) : DEL_IDS_PER_RECORD;
		struct zf_buf b = { 0 };
		uint32_t j;

		zf_put32(zf_buf_grow(&b, 4), k);
		for (j = 0; j < k; j++)
			zf_buf_add(&b, ids[i + j].b, ZF_CHUNK_ID_LEN);
		fs_do(fs, ZF_REC_CHUNK_DEL, &b);
		fs_txn_end(fs);
		zf_buf_free(&b);
		i += k;
	}
}

int zf_fs_walk_seg_remove(struct zf_fs *fs, uint64_t seg)
{
	fs->seg_gen++; /* before the file goes: readers in flight plan again */
	return zf_segstore_evict(fs->seg, seg);
}
