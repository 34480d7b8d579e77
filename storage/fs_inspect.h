/*
 * storage/fs_inspect.h - what the checker (storage/check.c) and its repair
 * (storage/repair.c) may see and do in the core, without the core's
 * structures (gc's counterpart is storage/fs_walk.h, whose chunk walk and
 * segment list this builds on).
 *
 * Seeing: every inode (a walk), one inode by number, a directory's entries
 * through a cursor (the path walk recurses, so no callback), a file's
 * extents, the chunk index with each chunk's flags, and what the tolerant
 * (salvage) load skipped. A view is a copy, or borrows the table's memory,
 * and is true while fs->lock is held. Nothing here copies the whole table:
 * fsck's memory stays proportional to what it finds. A chunk's identity is
 * an opaque pointer (hash keys, comparisons): damaged metadata may leave an
 * extent mapping a chunk object that the index does not hold, so an id does
 * not name one chunk.
 *
 * Doing: the few changes a repair makes, each done where the table is.
 * Those that must last are logged through fs_do() like a live operation,
 * one transaction per record; the others (zf_fs_fix_refs) are made durable
 * by the checkpoint that ends the repair (zf_fs_fix_checkpoint).
 *
 * Locking: zf_fs_inspect_lock() takes fs->lock for the whole check; every
 * other call needs it held. A walk's callback may call the reads here,
 * never a change. Implemented in storage/fs_inspect.c.
 */
#ifndef ZF_STORAGE_FS_INSPECT_H
#define ZF_STORAGE_FS_INSPECT_H

#include <stddef.h>
#include <stdint.h>

#include "storage/chunker.h"
#include "storage/fs_ns.h"
#include "storage/fs_walk.h"

struct zf_fs;
struct zf_chunk;	/* opaque: an identity only */

/*
 * What a tolerant (salvage) load skipped: bytes of a log or checkpoint that
 * hold no valid frame, or a verified record that no longer applies. Fields
 * taken from a damaged frame are unverified.
 */
struct zf_salvage_note {
	char file[32];		/* "log.<seq>" or "ckpt.<seq>" */
	uint64_t off, len;	/* the skipped bytes in that file */
	uint64_t seq;		/* the record's seq (in a checkpoint: its number) */
	int type;		/* record type; -1 unknown */
	int verified;		/* the frame verified, but did not apply */
	uint64_t ino;		/* first payload field (entries: the directory); 0 unknown */
	uint64_t start, end;	/* EXTENTS: the range it maps */
	char name[ZF_NAME_LEN + 1]; /* DIRENT_*: the entry's name */
	char why[96];
};

/* the core as the checker finds it */
struct zf_inspect_state {
	struct zf_walk_state w;	/* read-only?, segments, the segment store */
	uint64_t nchunks;	/* entries of the chunk index */
	/* salvage: whole ranges of records are missing (a lost checkpoint or
	 * log file): unreferenced data is not garbage */
	int meta_lost;
	uint64_t torn_bytes;	/* torn tail of the last log file (an interrupted commit) */
	uint64_t ckpt_ref_errors; /* checkpoint reference counts that did not match */
	const struct zf_salvage_note *notes; /* what the load skipped (borrowed) */
	size_t nnotes;
};

struct zf_inspect_inode {
	uint64_t ino;
	uint32_t mode, nlink;
	uint32_t lookups;	/* the kernel's lookup references (not durable) */
	uint64_t size;		/* as logged */
	uint64_t parent;	/* directories: the parent pointer */
	uint32_t nents;		/* directories: the entries it counts */
	uint32_t nextents;	/* regular files */
	uint64_t mapped;	/* regular files: bytes covered by extents, as counted */
};

struct zf_inspect_dirent {
	uint64_t ino;
	const char *name;	/* NUL-terminated (borrowed) */
	uint16_t namelen;
	uint8_t dtype;		/* mode >> 12, as the entry records it */
	int by_name;		/* the directory's name index finds this entry */
};

/* [off, off + len) of the file maps bytes [coff, coff + len) of chunk */
struct zf_inspect_extent {
	uint64_t off;
	uint32_t len, coff;
	const struct zf_chunk *chunk;	/* identity */
	uint32_t chunk_len;
};

struct zf_inspect_chunk {
	struct zf_walk_chunk w;		/* id, location, length, references */
	const struct zf_chunk *chunk;	/* identity */
	int bad;		/* marked damaged (CHUNK_BAD): reads fail */
	int lost;		/* no location known: its super-chunk record was lost */
	int in_pack;		/* not located: its bytes wait in a pack that holds them */
};

/*
 * fs->lock, not counted as a core lock (fs_lock in fs_internal.h): the
 * checker fetches and verifies bucket copies under it, which is fine
 * because it runs on a dev-dir nothing else uses (fsck refuses a mounted
 * one).
 */
void zf_fs_inspect_lock(struct zf_fs *fs);
void zf_fs_inspect_unlock(struct zf_fs *fs);

void zf_fs_inspect_state(struct zf_fs *fs, struct zf_inspect_state *ret);

/* inode ino into *ret: 0 or -ENOENT */
int zf_fs_inspect_inode(struct zf_fs *fs, uint64_t ino, struct zf_inspect_inode *ret);
/* every inode, in the table's order; fn returns non-zero to stop (returned) */
int zf_fs_inspect_inodes(struct zf_fs *fs, int (*fn)(void *ctx, const struct zf_inspect_inode *in),
			 void *ctx);
/*
 * A directory's entries in cookie order: the entry at cursor *pos or the
 * first one after it into *ret, *pos moved past it. Start with *pos = 0.
 * 0, or -ENOENT when none is left (or dir is not a directory).
 */
int zf_fs_inspect_dirent(struct zf_fs *fs, uint64_t dir, uint32_t *pos,
			 struct zf_inspect_dirent *ret);
/* the inode entry name of directory dir names: 0 or -ENOENT */
int zf_fs_inspect_lookup(struct zf_fs *fs, uint64_t dir, const char *name, uint64_t *ret_ino);
/* every extent of regular file ino, in order; fn returns non-zero to stop
 * (returned); 0 when ino is not a regular file */
int zf_fs_inspect_extents(struct zf_fs *fs, uint64_t ino,
			  int (*fn)(void *ctx, const struct zf_inspect_extent *x), void *ctx);
/* every chunk of the index; fn returns non-zero to stop (returned) */
int zf_fs_inspect_chunks(struct zf_fs *fs, int (*fn)(void *ctx, const struct zf_inspect_chunk *c),
			 void *ctx);
/* "INODE", "EXTENTS", ... ("record type N" for others, in buf of >= 24 bytes) */
const char *zf_fs_inspect_rec_name(int type, char *buf, size_t len);

/*
 * Repair's reference counts, in memory: every indexed chunk's count becomes
 * count(ctx, chunk), every chunk an extent maps is put in the index, every
 * file's mapped bytes are recounted from its extents, and the checkpoint's
 * reference errors are forgotten. Returns how many counts and index
 * entries changed.
 */
uint64_t zf_fs_fix_refs(struct zf_fs *fs, uint32_t (*count)(void *ctx, const struct zf_chunk *c),
			void *ctx);
/* a new directory (permissions perm, link count 2) as entry name of parent,
 * logged; its number in *ret_ino. 0, -EEXIST or -ENOTDIR */
int zf_fs_fix_mkdir(struct zf_fs *fs, uint64_t parent, const char *name, uint32_t perm,
		    uint64_t *ret_ino);
/* entry name in directory dir for inode ino, logged; link counts are left
 * as they are (zf_fs_fix_nlink). 0, -EEXIST or -ENOTDIR */
int zf_fs_fix_link(struct zf_fs *fs, uint64_t dir, uint64_t ino, const char *name);
/* ino's link count becomes nlink, logged. 0 or -ENOENT */
int zf_fs_fix_nlink(struct zf_fs *fs, uint64_t ino, uint32_t nlink);
/* mark chunks ids[0..n) damaged (CHUNK_BAD records: reads return EIO, dedup
 * never shares them); ids the index lacks are added as lost chunks */
void zf_fs_fix_mark_bad(struct zf_fs *fs, const struct zf_chunk_id *ids, size_t n);
/*
 * Map [start, end) of regular file ino to chunks ids[0..n), piece bytes
 * each (the last one shorter), logged as one EXTENTS record. Every id must
 * be in the index (zf_fs_fix_mark_bad adds lost ones), and n must cover the
 * range.
 */
void zf_fs_fix_map(struct zf_fs *fs, uint64_t ino, uint64_t start, uint64_t end,
		   const struct zf_chunk_id *ids, size_t n, uint32_t piece);
/* commit, write a checkpoint of the repaired table and drop the log files
 * it covers: 0 or -errno */
int zf_fs_fix_checkpoint(struct zf_fs *fs);

#endif
