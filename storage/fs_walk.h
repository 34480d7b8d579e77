/*
 * storage/fs_walk.h - what the storage core's gc (gc.c) may see and do in
 * the core, without the core's structures: walk the chunk index and the
 * super-chunks, move chunks to a new super-chunk, drop dead index entries,
 * remove segment files, commit. fsck's check and repair see the core
 * through storage/fs_inspect.h, which builds on the chunk walk and the
 * segment list here.
 *
 * Locking: zf_fs_walk_lock() takes fs->lock (after fs->gc_lock, which
 * zf_fs_gc_lock() takes: one gc run at a time). Every call below but the
 * lock calls needs fs->lock held, and a walk's callback must not call back
 * into the fs. What a walk shows is a copy, true while fs->lock is held.
 * Implemented in storage/fs_walk.c.
 */
#ifndef ZF_STORAGE_FS_WALK_H
#define ZF_STORAGE_FS_WALK_H

#include <stddef.h>
#include <stdint.h>

#include "storage/chunker.h"
#include "storage/segstore.h"

#define ZF_PACK_BYTES (4u << 20)	/* raw bytes per super-chunk */

struct zf_fs;

/* a chunk of the index, as a walk shows it */
struct zf_walk_chunk {
	struct zf_chunk_id id;
	int located;		/* in a super-chunk (not waiting in a pack, not lost) */
	struct zf_sc_loc loc;	/* that super-chunk (located only) */
	uint32_t raw_off;	/* in it */
	uint32_t len;
	uint32_t refs;		/* extents referencing it */
	int readable;		/* neither marked damaged nor lost */
};

/* the core's segments and where they live */
struct zf_walk_state {
	int readonly;
	const char *dev_dir;		/* borrowed */
	uint64_t open_seg;		/* 0: none */
	uint64_t last_sealed;		/* every segment up to this one is sealed */
	int segfd;			/* the seg/ directory (borrowed) */
	struct zf_segstore *seg;	/* borrowed */
};

void zf_fs_gc_lock(struct zf_fs *fs);
void zf_fs_gc_unlock(struct zf_fs *fs);
void zf_fs_walk_lock(struct zf_fs *fs);
void zf_fs_walk_unlock(struct zf_fs *fs);

void zf_fs_walk_state(struct zf_fs *fs, struct zf_walk_state *ret);

/* every located super-chunk: fn(ctx, its location) */
void zf_fs_walk_scs(struct zf_fs *fs, void (*fn)(void *ctx, const struct zf_sc_loc *loc),
		    void *ctx);
/* every chunk of the index; fn returns non-zero to stop (returned) */
int zf_fs_walk_chunks(struct zf_fs *fs, int (*fn)(void *ctx, const struct zf_walk_chunk *c),
		      void *ctx);
/* sorted, distinct ids of the segments the table references, the open one
 * included (malloc'd, *ret_n entries) */
uint64_t *zf_fs_walk_segments(struct zf_fs *fs, size_t *ret_n);

/* flush every buffered write and commit: the table is the committed one */
int zf_fs_walk_settle(struct zf_fs *fs);
/* commit what was logged (segment data first, then the records) */
int zf_fs_walk_commit(struct zf_fs *fs);

/*
 * Move chunks: ch[i] whose ok[i] is set and that are still where ch[i]
 * says, their bytes at raw (ch[i].len each, in order, consumed ones
 * compacted in place), become one new super-chunk, logged as moved and
 * committed. *ret_moved / *ret_bytes: chunks and raw bytes moved. 0 or
 * -errno (logged).
 */
int zf_fs_walk_move(struct zf_fs *fs, const struct zf_walk_chunk *ch, const int *ok, size_t n,
		    uint8_t *raw, uint32_t *ret_moved, uint32_t *ret_bytes);
/* drop the index entries of chunks ids[0..n) (unreferenced, logged as one
 * transaction per record's worth) */
void zf_fs_walk_drop(struct zf_fs *fs, const struct zf_chunk_id *ids, size_t n);
/*
 * Remove segment file seg, which the committed table no longer references.
 * Readers that planned a read in it before plan again. 0 or -errno.
 */
int zf_fs_walk_seg_remove(struct zf_fs *fs, uint64_t seg);

#endif
