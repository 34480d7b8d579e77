/*
 * storage/fs.h - the zerofs storage core: a POSIX inode table over a
 * deduplicated, compressed, log-structured store, usable without FUSE.
 * This header: its lifetime (mkfs, open, close), durability (sync, fsync,
 * checkpoints) and stats. It includes the narrower headers of the other
 * parts, for callers that use several: fs_ns.h (namespace, xattrs, lookup
 * counts), fs_data.h (read, write), check.h (fsck), gc.h, fs_tier.h (the
 * object-storage tier's hooks).
 *
 * Every mutation is applied to the in-memory table and appended to the
 * metadata log as one transaction; zf_fs_sync()/zf_fs_fsync() make them
 * durable (group commit: segment data fdatasync'd first, then the log
 * records that reference it, then the log's fdatasync). Opening loads the
 * newest checkpoint and replays the log after it.
 *
 * Locking: one lock (fs->lock) serialises table mutations; reads of stored
 * data run outside it. Callers may use a struct zf_fs from many threads.
 * Return values: 0 / length, or -errno.
 */
#ifndef ZF_STORAGE_FS_H
#define ZF_STORAGE_FS_H

#include <stddef.h>
#include <stdint.h>

#include "storage/check.h"
#include "storage/fs_data.h"
#include "storage/fs_ns.h"
#include "storage/fs_tier.h"
#include "storage/gc.h"

struct zf_fs;

struct zf_mkfs_opts {
	int zstd_level;		/* 0 = 3 */
	uint64_t seg_limit;	/* 0 = 16 MiB */
	uint32_t chunk_min, chunk_avg, chunk_max; /* 0 = 16/64/256 KiB */
	int force;		/* format a non-empty directory */
	/* encrypt (ZF_FEAT_ENCRYPT): a new master key wrapped by this passphrase */
	const char *passphrase;
	size_t passphrase_len;
};

#define ZF_MEM_DEFAULT (256ull << 20)

struct zf_open_opts {
	int readonly;		/* no log writes, no replay side effects */
	/*
	 * Memory budget of the data path (0 = ZF_MEM_DEFAULT): an eighth for
	 * write buffers (a streaming writer needs 8 MiB), half for
	 * decompressed super-chunks (a random reader of compressed data
	 * decompresses 4 MiB per miss: the cache is what makes it fast), the
	 * pipeline's packs bounded by its workers (about 8 MiB each), the
	 * rest for the tables and the allocator. The two below override
	 * their share. zerofs stats shows the parts.
	 */
	uint64_t mem_bytes;
	uint64_t sc_cache_bytes; /* decompressed super-chunk cache (0 = mem / 2) */
	uint64_t dirty_bytes;	/* buffered write data before flushing (0 = mem / 8) */
	uint64_t ckpt_bytes;	/* log bytes that trigger a checkpoint (0 = 64 MiB) */
	int zstd_level;		/* 0 = the level given at mkfs */
	unsigned int threads;	/* compression and read-ahead workers (0 = one per CPU) */
	/* fsck: load what verifies; skip damaged frames and records that do
	 * not apply (each noted for zf_fs_check) instead of failing -EBADMSG */
	int salvage;
	/* open snapshot this (storage/fs_snap.h) instead of the newest state:
	 * its checkpoint alone, read-only */
	const char *snapshot;
};

struct zf_fs_stats {
	uint64_t inodes, files, dirs;
	uint64_t logical_bytes;	/* sum of file sizes */
	uint64_t referenced_bytes; /* bytes mapped by extents (holes excluded) */
	uint64_t unique_bytes;	/* raw bytes of chunks with references */
	uint64_t chunks, chunks_live;
	uint64_t chunks_shared;	/* referenced more than once */
	uint64_t stored_bytes;	/* super-chunk bytes on disk (compressed) */
	uint64_t stored_raw_bytes; /* their raw size */
	uint64_t stored_live_bytes; /* stored bytes of referenced chunks (each its
				     * share of its super-chunk): what gc keeps */
	uint64_t segments;
	uint64_t log_bytes;	/* metadata log bytes since the checkpoint */
	uint64_t dirty_bytes;	/* buffered, not yet chunked */
	uint64_t cache_hits, cache_misses;
	/* memory of the data path, against mem_budget */
	uint64_t mem_budget;
	uint64_t dirty_limit;	/* its share for write buffers */
	uint64_t pipe_bytes;	/* packs being filled, compressed or appended */
	uint64_t sc_cache_bytes, sc_cache_max; /* decompressed super-chunks; their bound */
	uint64_t fast_packs, raw_packs, packs; /* super-chunks built by the pipeline */
	uint64_t readahead;	/* super-chunks decompressed ahead of readers */
	uint64_t healed;	/* damaged local super-chunks replaced by the bucket's copy */
	uint64_t commits, fsyncs;
};

/* ---- lifetime ---- */

/* Format dev_dir: superblock, meta/, seg/, and an empty root directory.
 * -EEXIST if already formatted, -ENOTEMPTY if non-empty (unless force). */
int zf_fs_mkfs(const char *dev_dir, const struct zf_mkfs_opts *opts);

/* Open (load checkpoint, replay log, reclaim orphans). Errors: -ENOENT (not
 * formatted), -EBADMSG (corrupt metadata, logged with file and offset). */
int zf_fs_open(const char *dev_dir, const struct zf_open_opts *opts, struct zf_fs **ret_fs);

/* how this filesystem's objects travel to its bucket (storage/seal.h) */
struct zf_seal;
const struct zf_seal *zf_fs_seal(const struct zf_fs *fs);

/* Flush, commit, write a checkpoint, free. Returns the first error met while
 * making data durable (the fs is freed regardless). NULL is fine. */
int zf_fs_close(struct zf_fs *fs);

/* the dev-dir this fs was opened from (borrowed) */
const char *zf_fs_dev_dir(const struct zf_fs *fs);

/* Simulate a crash (tests): free everything without flushing or committing. */
void zf_fs_abandon(struct zf_fs *fs);

/* ---- durability ---- */
/* make ino's mutations (data and attributes) durable */
int zf_fs_fsync(struct zf_fs *fs, uint64_t ino);
/* make every mutation durable */
int zf_fs_sync(struct zf_fs *fs);

/*
 * The daemon's periodic commit: as zf_fs_sync, except that a file written
 * in the last second keeps the unchunked bytes before its gaps buffered
 * (writes still in flight fill them; cutting there would leave garbage).
 * Those reach the log at the next commit, or at the file's fsync or close.
 */
int zf_fs_commit_periodic(struct zf_fs *fs);
/* force a checkpoint now (after a commit) */
int zf_fs_checkpoint(struct zf_fs *fs);

/* ---- stats ---- */
void zf_fs_stats(struct zf_fs *fs, struct zf_fs_stats *ret);

#endif
