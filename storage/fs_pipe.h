/*
 * storage/fs_pipe.h - the core's write and read pipeline (internal to the
 * storage core; see fs_pipe.c).
 *
 * New chunks are packed into a super-chunk (struct zf_pack) under fs->lock.
 * A full pack is handed to a pool of workers that compress it without any
 * lock and append it to the segment store in submission order; whoever holds
 * fs->lock next logs its super-chunk record ("reaping"). Until then the
 * chunks' bytes are read from the pack itself (c->pk).
 *
 * The same workers decompress super-chunks ahead of sequential readers into
 * the segment store's cache (read-ahead of local data).
 *
 * Locking: the pipe's lock guards its queues, pack states, spares, idle
 * compressors, read-ahead ring and counters. It is taken alone or under
 * fs->lock (submit, reap, fs_pack_cur, stats), and nothing is taken while
 * it is held: it is dropped before every segment store call (a worker's
 * append or read-ahead, an inline retry in reap) and before fs->lock
 * (fs_pipe_throttle reaps). So: fs->lock -> pipe lock, and the pipe lock
 * is a leaf. Workers never take fs->lock, so fs->lock holders may wait for
 * them (the pipe's done condition, waited on with the pipe lock): a worker
 * appending under the store's st->wlock never waits for fs->lock.
 * Segment store locks and their order: storage/segstore_internal.h.
 */
#ifndef ZF_STORAGE_FS_PIPE_H
#define ZF_STORAGE_FS_PIPE_H

#include <stdint.h>

#include "common/buf.h"
#include "storage/segstore.h"

struct zf_fs;
struct zf_chunk;

/* where a pack is (protected by the pipe's lock once submitted) */
enum zf_pack_state {
	ZF_PACK_FILLING,	/* fs->pack: chunks are still added (fs->lock) */
	ZF_PACK_QUEUED,		/* submitted: waits for a worker */
	ZF_PACK_BUSY,		/* a worker compresses or appends it */
	ZF_PACK_DONE,		/* appended at loc: waits to be reaped */
	ZF_PACK_FAILED,		/* not appended (err): reaping retries it */
};

/* one super-chunk on its way to the segment store */
struct zf_pack {
	struct zf_pack *next;	/* submission order (pipe lock) */
	uint64_t ticket;	/* submission number: appends go in this order */
	struct zf_buf raw;	/* the chunks' bytes; immutable once submitted */
	struct zf_chunk **chunks;
	uint32_t n, cap;
	enum zf_pack_state state;
	int err;
	struct zf_sc_image img;
	struct zf_sc_loc loc;
	uint64_t sealed;	/* segment the append sealed, 0 if none */
};

struct zf_pipe_stats {
	unsigned int threads;
	uint64_t inflight_bytes;	/* raw bytes submitted, not yet reaped */
	uint64_t packs, raw_packs;	/* super-chunks built; stored raw */
	uint64_t fast_packs;		/* built at the fast level (a backlog) */
	uint64_t readahead;		/* super-chunks decompressed ahead of readers */
};

/*
 * The workers, started on first use (fs->lock held): not at open, since a
 * daemon forks after opening and threads do not survive a fork. NULL when
 * the filesystem has none (read-only, salvage) or they could not start:
 * packs are then appended inline.
 */
struct zf_pipe *fs_pipe_get(struct zf_fs *fs);
/* wait for every submitted pack, stop the workers; packs not reaped stay */
void fs_pipe_stop(struct zf_fs *fs);

/* free a pack that no worker holds (NULL is fine) */
void fs_pack_free(struct zf_pack *pack);

/* the pack new chunks go into (created on demand; fs->lock held) */
struct zf_pack *fs_pack_cur(struct zf_fs *fs);
/*
 * Hand the filling pack to the workers (fs->lock held): 0. Without workers
 * it is appended and logged here: 0 or -errno (the pack stays filling).
 */
int fs_pack_submit(struct zf_fs *fs);

/*
 * Log the super-chunk records of appended packs, in append order (fs->lock
 * held). all: wait for every submitted pack, retrying failed appends inline;
 * returns the first error (the rest stay submitted). Without all, only packs
 * already appended are reaped and 0 is returned.
 */
int fs_pipe_reap(struct zf_fs *fs, int all);

/* packs submitted and not yet reaped? */
int fs_pipe_pending(struct zf_fs *fs);

/* wait (fs->lock NOT held) while the pipeline holds more than its budget */
void fs_pipe_throttle(struct zf_fs *fs);

/* decompress the super-chunk at loc ahead of a reader, if a worker is free
 * and it is local (any locks) */
void fs_pipe_readahead(struct zf_fs *fs, const struct zf_sc_loc *loc);

void fs_pipe_stats(struct zf_fs *fs, struct zf_pipe_stats *ret);

#endif
