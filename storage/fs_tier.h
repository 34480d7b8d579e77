/*
 * storage/fs_tier.h - what the object-storage tier asks of the storage core:
 * how far the log may be uploaded, log images, the segments the metadata
 * references (bucket gc and audit), write admission (backpressure), the
 * bytes still buffered, and whether the caller holds the core's lock.
 * Implemented in storage/fs_tier.c.
 */
#ifndef ZF_STORAGE_FS_TIER_H
#define ZF_STORAGE_FS_TIER_H

#include <stddef.h>
#include <stdint.h>

#include "storage/segstore.h"

struct zf_fs;

/*
 * Does the calling thread hold the core's lock? The object-storage tier's
 * fetch hook refuses network waits then (-EIO, logged): the core takes
 * care to fetch what it needs before it locks (fs_lock_for_flush), so a
 * refusal means the bucket failed that earlier fetch, or a bug.
 */
int zf_fs_lock_held(void);
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

/*
 * The segment store, as far as the tier uses it: its fetch hook (a
 * zf_segstore_fetch_fn: segstore.h), installed once before concurrent
 * reads (NULL removes it); whether a segment's file is local; eviction.
 */
void zf_fs_set_fetch(struct zf_fs *fs,
		     int (*fn)(void *ctx, const struct zf_sc_loc *loc, void *buf, int refetch),
		     void *ctx);
/* is segment seg's file in the dev-dir? */
int zf_fs_segment_local(struct zf_fs *fs, uint64_t seg);
/*
 * Remove sealed segment seg's file from the dev-dir (the caller made sure
 * the bucket holds it). 0, -EBUSY for the open segment, or -errno.
 */
int zf_fs_evict_segment(struct zf_fs *fs, uint64_t seg);

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

/*
 * ---- the working set (storage/fs_wset.c; the tier's tier/wset.c) ----
 * A pinned regular file's data is kept in the dev-dir; a pinned directory
 * makes the files and directories made in it pinned. Durable (logged).
 */
/* set (on) or clear the flag: -ENOENT, -EINVAL (neither a file nor a
 * directory), -EROFS */
int zf_fs_set_pinned(struct zf_fs *fs, uint64_t ino, int on);
/* 1 pinned, 0 not, -ENOENT */
int zf_fs_pinned(struct zf_fs *fs, uint64_t ino);

/* where some of a regular file's bytes are */
struct zf_file_piece {
	uint64_t bytes;		/* the file's bytes there */
	int located;		/* in the super-chunk loc; else buffered or packing: local,
				 * not in the bucket yet */
	struct zf_sc_loc loc;
};
/*
 * A regular file's bytes by place, in file order (neighbours in the same
 * place merged; holes and bytes lost to damage left out): *ret malloc'd,
 * *ret_n pieces. -ENOENT, -EISDIR, -EINVAL (not a regular file).
 */
int zf_fs_file_pieces(struct zf_fs *fs, uint64_t ino, struct zf_file_piece **ret,
		      size_t *ret_n);
/* the distinct super-chunks holding pinned files' data, sorted by (seg, off) */
int zf_fs_pinned_scs(struct zf_fs *fs, struct zf_sc_loc **ret, size_t *ret_n);
/* sort locations by (seg, off) and drop repeats; returns how many are left */
size_t zf_fs_sort_locs(struct zf_sc_loc *v, size_t n);

/*
 * The last log record a commit made durable (of a read-only fs: the last
 * one its load replayed). No lock taken: a snapshot, for stats of what the
 * bucket lacks.
 */
uint64_t zf_fs_committed_seq(struct zf_fs *fs);

/*
 * ---- a replica (storage/fs_follow.c; the tier's tier/follow.c) ----
 * A read-only table follows the log its writer publishes. The tier puts
 * what the bucket holds past the last applied record into meta/ (log files
 * after it; or, when the log went past a newer checkpoint, that checkpoint
 * and the log after it), then zf_fs_follow applies them: the records after
 * the last applied one, or with reload (or when they do not join up) the
 * whole table loaded again from meta/'s newest checkpoint in a second open
 * and swapped in (a load that fails changes nothing; older meta/ files are
 * removed). What changed goes to ch for the kernel's caches.
 */
struct zf_fs_change {
	uint64_t ino;		/* an inode whose attributes or data changed, or */
	char *name;		/* with a name: an entry of directory ino came or went */
};
struct zf_fs_changes {
	struct zf_fs_change *v;
	size_t n, cap;
	int reloaded;		/* loaded again: v holds every inode the kernel has */
	uint64_t applied;	/* the last record applied now */
};
/* 0, -EROFS (a writable fs), or a load's -errno (logged): the table as it was */
int zf_fs_follow(struct zf_fs *fs, int reload, struct zf_fs_changes *ch);
void zf_fs_changes_free(struct zf_fs_changes *ch);
/*
 * checkpoint ckpt (in meta/ now) is of a state the table is past: it is
 * what meta/ starts from; older checkpoints and logs before it go
 */
void zf_fs_follow_prune(struct zf_fs *fs, uint64_t ckpt);
/* the last record the table holds, and the checkpoint meta/ starts from */
uint64_t zf_fs_applied(struct zf_fs *fs);
uint64_t zf_fs_ckpt_seq(struct zf_fs *fs);
/*
 * A read met a segment the bucket no longer holds (the writer's gc moved
 * its chunks): fn brings the table up to the writer's, and the read plans
 * again against the new locations. Installed once before reads.
 */
void zf_fs_set_stale(struct zf_fs *fs, void (*fn)(void *ctx), void *ctx);

#endif
