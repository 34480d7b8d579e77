/*
 * storage/fs.h - the zerofs storage core: a POSIX inode table over a
 * deduplicated, compressed, log-structured store, usable without FUSE.
 *
 * Every mutation is applied to the in-memory table and appended to the
 * metadata log as one transaction; zf_fs_sync()/zf_fs_fsync() make them
 * durable (group commit: segment data fdatasync'd first, then the log
 * records that reference it, then the log's fdatasync). Opening loads the
 * newest checkpoint and replays the log after it.
 *
 * File data written through zf_fs_write() is buffered per inode and cut into
 * content-defined chunks when flushed (fsync, release, memory pressure);
 * unchanged regions are never re-chunked.
 *
 * Locking: one lock (fs->lock) serialises table mutations; reads of stored
 * data run outside it. Callers may use a struct zf_fs from many threads.
 * Return values: 0 / length, or -errno. Names are single path components.
 *
 * Inode numbers are never reused within a filesystem; ZF_ROOT_INO is the
 * root directory.
 */
#ifndef ZF_STORAGE_FS_H
#define ZF_STORAGE_FS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define ZF_ROOT_INO 1ull
#define ZF_NAME_LEN 255

struct zf_fs;

struct zf_attr {
	uint64_t ino;
	uint64_t size;
	uint64_t blocks;	/* 512-byte units holding data (holes excluded) */
	uint64_t rdev;
	uint32_t mode, uid, gid, nlink;
	uint32_t gen;
	struct timespec atime, mtime, ctime;
};

/* attribute bits for zf_fs_setattr */
#define ZF_SET_MODE (1u << 0)
#define ZF_SET_UID (1u << 1)
#define ZF_SET_GID (1u << 2)
#define ZF_SET_SIZE (1u << 3)
#define ZF_SET_ATIME (1u << 4)
#define ZF_SET_MTIME (1u << 5)
#define ZF_SET_ATIME_NOW (1u << 6)
#define ZF_SET_MTIME_NOW (1u << 7)
#define ZF_SET_CTIME (1u << 8)

struct zf_mkfs_opts {
	int zstd_level;		/* 0 = 3 */
	uint64_t seg_limit;	/* 0 = 16 MiB */
	uint32_t chunk_min, chunk_avg, chunk_max; /* 0 = 16/64/256 KiB */
	int force;		/* format a non-empty directory */
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
	uint64_t cache_bytes;	/* decompressed super-chunk cache (0 = mem / 2) */
	uint64_t dirty_bytes;	/* buffered write data before flushing (0 = mem / 8) */
	uint64_t ckpt_bytes;	/* log bytes that trigger a checkpoint (0 = 64 MiB) */
	int zstd_level;		/* 0 = the level given at mkfs */
	unsigned int threads;	/* compression and read-ahead workers (0 = one per CPU) */
	/* fsck: load what verifies; skip damaged frames and records that do
	 * not apply (each noted for zf_fs_check) instead of failing -EBADMSG */
	int salvage;
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
	uint64_t cache_bytes, cache_max; /* decompressed super-chunks; their share */
	uint64_t fast_packs, raw_packs, packs; /* super-chunks built by the pipeline */
	uint64_t readahead;	/* super-chunks decompressed ahead of readers */
	uint64_t healed;	/* damaged local super-chunks replaced by the bucket's copy */
	uint64_t commits, fsyncs;
};

/*
 * Is the dev-dir (nearly) full: would margin more bytes of writes not fit?
 * Writes are refused with ENOSPC once they would not (zf_fs_write); the
 * daemon opens files uncached while space is low, so that a writer gets
 * the error from write(2) rather than from close(2).
 */
int zf_fs_space_low(struct zf_fs *fs, uint64_t margin);

/* ---- lifetime ---- */

/* Format dev_dir: superblock, meta/, seg/, and an empty root directory.
 * -EEXIST if already formatted, -ENOTEMPTY if non-empty (unless force). */
int zf_fs_mkfs(const char *dev_dir, const struct zf_mkfs_opts *opts);

/* Open (load checkpoint, replay log, reclaim orphans). Errors: -ENOENT (not
 * formatted), -EBADMSG (corrupt metadata, logged with file and offset). */
int zf_fs_open(const char *dev_dir, const struct zf_open_opts *opts, struct zf_fs **ret_fs);

/* Flush, commit, write a checkpoint, free. Returns the first error met while
 * making data durable (the fs is freed regardless). NULL is fine. */
int zf_fs_close(struct zf_fs *fs);

/* the dev-dir this fs was opened from (borrowed) */
const char *zf_fs_dev_dir(const struct zf_fs *fs);

/* Simulate a crash (tests): free everything without flushing or committing. */
void zf_fs_abandon(struct zf_fs *fs);

/* ---- namespace ---- */
int zf_fs_getattr(struct zf_fs *fs, uint64_t ino, struct zf_attr *ret_attr);
int zf_fs_lookup(struct zf_fs *fs, uint64_t parent, const char *name, struct zf_attr *ret_attr);
/* regular files, fifos, sockets, devices (S_IFMT in mode; 0 = regular) */
int zf_fs_mknod(struct zf_fs *fs, uint64_t parent, const char *name, uint32_t mode,
		uint64_t rdev, uint32_t uid, uint32_t gid, struct zf_attr *ret_attr);
int zf_fs_mkdir(struct zf_fs *fs, uint64_t parent, const char *name, uint32_t mode,
		uint32_t uid, uint32_t gid, struct zf_attr *ret_attr);
/* Either of the two (S_IFDIR in mode: a directory) for a caller whose umask
 * is still to be applied. Any new node but a symlink gets the parent's
 * default POSIX ACL, masked by mode, in place of the umask (umask_bits 0 in
 * zf_fs_mknod/zf_fs_mkdir). */
int zf_fs_create(struct zf_fs *fs, uint64_t parent, const char *name, uint32_t mode,
		 uint64_t rdev, uint32_t umask_bits, uint32_t uid, uint32_t gid,
		 struct zf_attr *ret_attr);
int zf_fs_symlink(struct zf_fs *fs, uint64_t parent, const char *name, const char *target,
		  uint32_t uid, uint32_t gid, struct zf_attr *ret_attr);
int zf_fs_link(struct zf_fs *fs, uint64_t ino, uint64_t parent, const char *name,
	       struct zf_attr *ret_attr);
int zf_fs_unlink(struct zf_fs *fs, uint64_t parent, const char *name);
int zf_fs_rmdir(struct zf_fs *fs, uint64_t parent, const char *name);
/* flags: RENAME_NOREPLACE, RENAME_EXCHANGE (linux/fs.h values) */
int zf_fs_rename(struct zf_fs *fs, uint64_t parent, const char *name, uint64_t newparent,
		 const char *newname, unsigned int flags);
/* readlink: copies at most len bytes (no NUL), returns the target length */
ssize_t zf_fs_readlink(struct zf_fs *fs, uint64_t ino, char *buf, size_t len);
int zf_fs_setattr(struct zf_fs *fs, uint64_t ino, unsigned int to_set,
		  const struct zf_attr *attr, struct zf_attr *ret_attr);

/*
 * Directory listing. Entries "." (offset 1) and ".." (offset 2) come first;
 * each entry's offset is the cookie to resume after it, stable while other
 * entries are added or removed. The callback returns non-zero to stop (the
 * entry it was given is then not consumed). Called with fs->lock held: it
 * must not call back into the fs.
 */
typedef int (*zf_readdir_fn)(void *ctx, const char *name, uint64_t ino, uint32_t mode,
			     uint64_t next_off);
int zf_fs_readdir(struct zf_fs *fs, uint64_t ino, uint64_t off, zf_readdir_fn fn, void *ctx);

/*
 * ---- the kernel's lookup counts (FUSE "nlookup") ----
 * Every inode reference handed to the kernel is counted; an unlinked inode
 * lives while the count is not zero (the kernel holds one on every open
 * file). Not durable: a reopen starts at zero.
 */
/* zf_fs_lookup and one reference on what it found, in one step */
int zf_fs_lookup_ref(struct zf_fs *fs, uint64_t parent, const char *name,
		     struct zf_attr *ret_attr);
/* one reference on ino (a node just created, a readdirplus entry);
 * -ENOENT if it is gone, -EMFILE if its count is at its limit */
int zf_fs_ref(struct zf_fs *fs, uint64_t ino);
/* drop n references; an unlinked inode left without any is reclaimed.
 * Dropping more than were taken is a bug: fatal in a debug build
 * (ZF_DEBUG), logged once and clamped to zero otherwise. */
void zf_fs_forget(struct zf_fs *fs, uint64_t ino, uint64_t n);

/* ---- data ---- */
ssize_t zf_fs_read(struct zf_fs *fs, uint64_t ino, void *buf, size_t len, uint64_t off);
ssize_t zf_fs_write(struct zf_fs *fs, uint64_t ino, const void *buf, size_t len, uint64_t off);
/* chunk buffered data of ino into the store (no sync) */
int zf_fs_flush(struct zf_fs *fs, uint64_t ino);
/* make ino's mutations (data and attributes) durable */
int zf_fs_fsync(struct zf_fs *fs, uint64_t ino);
/* make every mutation durable */
int zf_fs_sync(struct zf_fs *fs);

/*
 * Does the calling thread hold the core's lock? The object-storage tier's
 * fetch hook refuses network waits then (-EIO, logged): the core takes
 * care to fetch what it needs before it locks (fs_lock_for_flush), so a
 * refusal means the bucket failed that earlier fetch, or a bug.
 */
int zf_fs_lock_held(void);
/*
 * The daemon's periodic commit: as zf_fs_sync, except that a file written
 * in the last second keeps the unchunked bytes before its gaps buffered
 * (writes still in flight fill them; cutting there would leave garbage).
 * Those reach the log at the next commit, or at the file's fsync or close.
 */
int zf_fs_commit_periodic(struct zf_fs *fs);
/* FALLOC_FL_* semantics: 0 (allocate/extend), KEEP_SIZE, PUNCH_HOLE|KEEP_SIZE */
int zf_fs_fallocate(struct zf_fs *fs, uint64_t ino, int mode, uint64_t off, uint64_t len);
/* SEEK_DATA / SEEK_HOLE; -ENXIO past the end */
int64_t zf_fs_lseek(struct zf_fs *fs, uint64_t ino, uint64_t off, int whence);
/* share src's chunks into dst (no bytes copied where chunks align) */
ssize_t zf_fs_copy_range(struct zf_fs *fs, uint64_t src, uint64_t src_off, uint64_t dst,
			 uint64_t dst_off, size_t len);

/* ---- xattrs ---- */
/* system.posix_acl_access sets the mode's permission bits (and is not kept
 * when the mode says it all); chmod rewrites it; removing an absent ACL is
 * no error */
int zf_fs_setxattr(struct zf_fs *fs, uint64_t ino, const char *name, const void *val,
		   size_t len, int flags);
/* copies at most len bytes; returns the value's size (len 0 = size query) */
ssize_t zf_fs_getxattr(struct zf_fs *fs, uint64_t ino, const char *name, void *buf, size_t len);
/* NUL-separated names; returns the total size */
ssize_t zf_fs_listxattr(struct zf_fs *fs, uint64_t ino, char *buf, size_t len);
int zf_fs_removexattr(struct zf_fs *fs, uint64_t ino, const char *name);

/* ---- whole filesystem ---- */
void zf_fs_stats(struct zf_fs *fs, struct zf_fs_stats *ret);
/* force a checkpoint now (after a commit) */
int zf_fs_checkpoint(struct zf_fs *fs);

/* ---- consistency checker and repair (storage/check.c, storage/repair.c) ---- */
struct zf_check_report {
	uint64_t errors;	/* problems found */
	uint64_t notes;		/* worth knowing, not errors (known damage, garbage) */
	uint64_t repaired;	/* repair actions taken (repair) */
	uint64_t inodes, dirents, chunks, superchunks;
	uint64_t damaged_chunks; /* chunks found damaged or lost (not yet marked) */
	uint64_t unchecked;	/* super-chunks that could not be read (an outage, an I/O
				 * error): neither damage nor clean (fsck exits 8) */
	/* called for every problem / note, one line each; NULL = the log */
	void (*problem)(void *ctx, const char *msg);
	void (*note)(void *ctx, const char *msg);
	/* now and then while chunks are checked: done of total (NULL: none) */
	void (*progress)(void *ctx, uint64_t done, uint64_t total);
	void *ctx;
	int verify_data;	/* re-read and re-hash every referenced chunk */
	/*
	 * Fix what was found (the fs must be open writable, with salvage):
	 * reference counts and the chunk index rebuilt from the files, link
	 * counts, unreachable inodes into /lost+found as #<ino>, damaged
	 * chunks marked (CHUNK_BAD: reads return EIO), damaged local copies
	 * of segments the bucket holds dropped, ranges whose mapping was
	 * lost marked damaged; then a checkpoint.
	 */
	int repair;
	/*
	 * The size of segment seg's object in the bucket (0), -ENOENT when
	 * absent, or -errno. NULL: no bucket to ask (evicted segments are read
	 * through the segment store's fetch hook instead).
	 */
	int (*remote_seg_size)(void *rctx, uint64_t seg, uint64_t *ret_size);
	void *rctx;
	/*
	 * The dev-dir has a bucket that could not be attached: a segment
	 * missing locally cannot be checked (not damage). Without a bucket
	 * (and without this), a missing segment's chunks are lost.
	 */
	int bucket_unreachable;
};
/* Check the open fs (and repair it with rep->repair); fills report.
 * Returns 0 when clean, -EUCLEAN when problems were found (repaired or
 * not), or -errno when checking itself failed. */
int zf_fs_check(struct zf_fs *fs, struct zf_check_report *report);

/* ---- garbage collection (storage/gc.c) ---- */
#define ZF_GC_MAX_WASTE 0.05

struct zf_gc_opts {
	/* rewrite segments, least live first, until the dead bytes left in the
	 * others are at most this fraction of the live bytes (0: 5 %) */
	double max_waste;
	int dry_run;		/* count only */
	/* with keep: segments above keep_above stay (not in the bucket yet) */
	int keep;
	uint64_t keep_above;
};

struct zf_gc_report {
	uint64_t segments;	/* segments the table references */
	uint64_t stored_bytes;	/* their bytes before gc */
	uint64_t live_bytes;	/* stored bytes of live chunks (estimate) */
	uint64_t victims;	/* segments chosen to be emptied */
	uint64_t reclaim_bytes;	/* dead bytes in the victims (estimate) */
	uint64_t moved_bytes;	/* stored bytes of their live chunks (estimate) */
	uint64_t moved_chunks, moved_raw_bytes; /* live chunks rewritten */
	uint64_t dead_chunks;	/* index entries of unreferenced chunks dropped */
	uint64_t freed_segments, freed_bytes; /* segment files removed (dry run: would be) */
	uint64_t kept_damaged;	/* victims kept: a live chunk could not be read */
	uint64_t bucket_objects, bucket_bytes; /* deleted from the bucket (zf_remote_gc) */
};

/*
 * Reclaim the space of unreferenced chunks: move the live chunks of the
 * least live sealed segments into new ones, drop dead chunks, remove segment
 * files nothing references. Safe to kill at any moment and to rerun; runs
 * alongside reads and writes. 0 or -errno (-EROFS on a read-only fs).
 */
int zf_fs_gc(struct zf_fs *fs, const struct zf_gc_opts *o, struct zf_gc_report *rep);

/*
 * After a commit: the sorted ids of the segments the table references
 * (*ret_ids malloc'd), the highest segment id it knows, and the last
 * committed log record. A segment with an id up to *ret_max that is not
 * listed is garbage once the bucket holds the log up to *ret_seq.
 */
int zf_fs_seg_refs(struct zf_fs *fs, uint64_t **ret_ids, size_t *ret_n, uint64_t *ret_max,
		   uint64_t *ret_seq);
/* segments holding chunks the metadata knows, and the open one: sorted ids
 * (malloc'd, *ret_n entries), for the bucket's audit */
int zf_fs_segments_used(struct zf_fs *fs, uint64_t **ret_ids, size_t *ret_n);

/* ---- hooks for the object-storage tier (storage/remote.c) ---- */

struct zf_segstore;
struct zf_segstore *zf_fs_segstore(struct zf_fs *fs);

struct zf_upload_point {
	uint64_t seq;		/* last committed log record the bucket may hold */
	uint64_t committed;	/* last committed log record */
	uint64_t last_sealed;	/* every segment up to this one is sealed */
	uint64_t ckpt_seq;	/* the newest local checkpoint (0: none) */
};

/*
 * Commit, optionally seal the open segment (so that every committed record
 * may be uploaded), and say how far the log may go to the bucket.
 */
int zf_fs_upload_point(struct zf_fs *fs, int seal, struct zf_upload_point *ret);

/*
 * A log file image (header + records from..to) built from the local log
 * files, appended to out (a struct zf_buf). -ENOENT if some of those
 * records are only in a checkpoint now.
 */
struct zf_buf;
int zf_fs_log_image(struct zf_fs *fs, uint64_t from, uint64_t to, struct zf_buf *out);

/* called before each write with its length; a negative errno fails it */
typedef int (*zf_fs_admit_fn)(void *ctx, size_t len);
void zf_fs_set_admit(struct zf_fs *fs, zf_fs_admit_fn fn, void *ctx);

/*
 * Written bytes not in a segment yet (write buffers and the packer): they
 * reach the dev-dir later, so the tier's budget counts them. Takes fs->lock.
 */
uint64_t zf_fs_buffered_bytes(struct zf_fs *fs);

/* zf_mono_ns() when the oldest buffered write was made (0: none buffered) */
uint64_t zf_fs_buffered_since(struct zf_fs *fs);

#endif
