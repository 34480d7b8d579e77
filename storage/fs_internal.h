/*
 * storage/fs_internal.h - in-memory state of the storage core, shared by
 * its files: fs.c (lifetime), fs_apply.c (the table and its applier),
 * fs_replay.c (load at open), fs_commit.c (commit, checkpoints),
 * fs_stats.c, fs_tier.c (the tier's hooks), fs_wset.c (pins), fs_walk.c
 * (gc's view), fs_inspect.c (fsck's view), fs_testing.c (unit tests'
 * hooks), fs_ns.c (namespace), fs_xattr.c and the data path (fs_write.c,
 * fs_read.c, fs_chunk.c, fs_range.c, fs_pipe.c). Not a public interface.
 *
 * Every durable mutation goes through fs_do(): the record is added to the
 * log's open transaction and then applied by fs_apply(), the same function
 * replay uses, so the table after replay is the table before the crash by
 * construction. Live operations validate first; fs_apply() on a live record
 * cannot fail.
 *
 * Locking: fs->lock guards everything here. Lock order: fs->lock -> segstore
 * locks. Reads of super-chunks (zf_segstore_read) may run without fs->lock.
 */
#ifndef ZF_STORAGE_FS_INTERNAL_H
#define ZF_STORAGE_FS_INTERNAL_H

#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>

#include "common/lock.h"
#include "common/buf.h"
#include "common/htab.h"
#include "storage/chunker.h"
#include "storage/seal.h"
#include "storage/fs.h"
#include "storage/fs_inspect.h"
#include "storage/fs_pipe.h"
#include "storage/fs_walk.h"
#include "storage/mlog.h"
#include "storage/segstore.h"

#define ZF_FLUSH_FILE_BYTES (8u << 20)	/* dirty bytes of one file before it is chunked */

/* a super-chunk that holds at least one indexed chunk (else it is freed) */
struct zf_sc {
	struct zf_sc_loc loc;
	uint32_t nchunks;	/* chunk entries located here, >= 1 */
	uint32_t idx;		/* position in fs->scs */
};

/* chunk flags */
#define ZF_CHUNK_BAD 0x1u	/* marked damaged (CHUNK_BAD record): reads fail with EIO */
#define ZF_CHUNK_LOST 0x2u	/* no location known: its super-chunk record was lost */

struct zf_chunk {
	struct zf_chunk_id id;
	struct zf_sc *sc;	/* NULL while the bytes wait in a pack, or when lost */
	struct zf_pack *pk;	/* the pack holding the bytes until its record is logged */
	uint32_t raw_off;	/* in the super-chunk, or in the pack */
	uint32_t len;		/* lost: the furthest byte an extent maps */
	uint32_t refs;		/* extents referencing it */
	uint32_t ckpt_refs;	/* count the checkpoint claimed (UINT32_MAX: none) */
	uint32_t flags;		/* ZF_CHUNK_* */
};

/* can the chunk's bytes be read? (not damaged, not lost) */
static inline int zf_chunk_readable(const struct zf_chunk *c)
{
	return !(c->flags & (ZF_CHUNK_BAD | ZF_CHUNK_LOST));
}

/* [off, off+len) of the file maps to chunk bytes [coff, coff+len) */
struct zf_extent {
	uint64_t off;
	uint32_t len;
	uint32_t coff;
	struct zf_chunk *c;
};

/* buffered write data, not yet chunked */
struct zf_dirty {
	uint64_t off;
	size_t len, cap;
	uint8_t *data;
};

/* write buffer of a file with unchunked data (allocated only while dirty) */
struct zf_wbuf {
	struct zf_dirty *v;	/* sorted, non-overlapping, non-adjacent */
	uint32_t n, cap;
	uint64_t bytes;		/* buffered bytes */
	uint64_t wsize;		/* size seen by users (>= the logged size) */
	uint64_t since;		/* zf_mono_ns() when the file became dirty */
	uint64_t last;		/* zf_mono_ns() of the last write */
	struct zf_inode *next, *prev; /* fs->dirty_files list */
};

struct zf_file {
	struct zf_extent *ext;	/* sorted, non-overlapping */
	uint32_t n, cap;
	uint64_t mapped;	/* bytes covered by extents */
	struct zf_wbuf *wb;	/* NULL when nothing is buffered */
	uint32_t tail_cut;	/* last extent ends at EOF, not at a content cut */
	uint64_t ra_next;	/* where the last read ended: the next one is sequential */
	uint64_t ra_until;	/* read-ahead asked for up to here */
};

struct zf_dirent {
	uint64_t ino;
	uint64_t cookie;
	uint8_t dtype;		/* mode >> 12 */
	uint16_t namelen;
	char name[];		/* NUL-terminated */
};

struct zf_dir {
	uint64_t parent;
	uint64_t next_cookie;
	struct zf_dirent **slot; /* by cookie order; NULL = removed */
	uint32_t nslot, cap, nents;
	struct zf_htab names;	 /* name hash -> dirent */
};

struct zf_xattr {
	char *name;
	uint8_t *val;
	uint32_t vlen;
};

/* 104 bytes: a million of them must fit well under 300 MB with their names */
struct zf_inode {
	uint64_t ino;
	uint64_t size;		/* as logged */
	int64_t atime, mtime, ctime;
	uint32_t atime_ns, mtime_ns, ctime_ns;
	uint32_t rdev;		/* Linux dev_t encoding fits 32 bits */
	uint32_t mode, uid, gid, nlink, gen;
	uint32_t flags;		/* ZF_INODE_* (meta_format.h), durable */
	uint32_t nxattr;
	uint32_t lookups;	/* the kernel's lookup references (not durable) */
	struct zf_xattr *xattr;
	union {
		struct zf_file *file;	/* S_ISREG */
		struct zf_dir *dir;	/* S_ISDIR */
		char *link;		/* S_ISLNK */
	} u;
};

struct zf_fs {
	/* rank ZF_RANK_FS: the table, dirty buffers, filling pack, log writer
	 * (lock order: common/lock.h, docs/ARCHITECTURE.md "Lock order") */
	struct zf_mutex lock;
	char *dev_dir;
	int dirfd, metafd, segfd, lockfd;
	int readonly, replaying;
	int salvage;		/* tolerant load (fsck): skip what does not verify or apply */
	char *snapshot;		/* opened as this snapshot (read-only), or NULL */
	struct zf_salvage_note *salv; /* what the tolerant load skipped */
	size_t nsalv;
	uint64_t torn_bytes;	/* torn tail of the last log file (an interrupted commit) */
	/* salvage: whole ranges of records are missing (a lost checkpoint or
	 * log file): unreferenced data is not garbage, and repairing would
	 * drop what they held */
	int meta_lost;
	/* salvage: records the durable mark covers are lost: every segment
	 * byte is kept (it may hold their data), none is cut or removed */
	int mark_lost;
	int ckpt_cut;		/* salvage: the checkpoint's END record is missing */
	/*
	 * The durable mark (meta/synced, mlog.h): durable_seq is the last
	 * record a commit fdatasync'd (fs->lock); synced_seq/synced_gen what
	 * the mark on disk says (mark_lock, taken without fs->lock or after it).
	 */
	uint64_t durable_seq;
	uint64_t synced_seq, synced_gen;
	struct zf_mutex mark_lock;	/* rank ZF_RANK_MARK: the synced_* fields */
	uint8_t fsid[16];
	uint8_t secret[ZF_SECRET_LEN];
	struct zf_seal seal;	/* what the bucket's objects look like (storage/seal.h) */
	int zstd_level;
	uint64_t seg_limit;
	struct zf_chunker *chunker;
	struct zf_segstore *seg;
	struct zf_mlog *log;

	struct zf_htab inodes;	/* zf_mix64(ino) -> inode */
	uint64_t next_ino;
	struct zf_htab chunks;	/* low 64 bits of id -> chunk */
	struct zf_sc **scs;
	size_t nscs, sccap;

	/* segments as the log knows them */
	uint64_t open_seg, open_end, last_sealed;

	/* new chunks' bytes until ZF_PACK_BYTES (fs_pipe.h); NULL: none yet */
	struct zf_pack *pack;
	struct zf_pipe *pipe;	/* compression and read-ahead workers (fs_pipe_get) */
	int pipe_threads;	/* how many to start (0: one per CPU); -1: none */

	/* buffered writes */
	struct zf_inode *dirty_files;
	uint64_t dirty_bytes, dirty_limit;
	uint64_t mem_budget;	/* zf_open_opts.mem_bytes */
	uint8_t *spare_buf;	/* a streaming write buffer kept for the next one */

	uint64_t ckpt_seq, ckpt_bytes;
	uint64_t ckpt_ref_errors;	/* checkpoint refcounts that did not match */
	/*
	 * First committed record that may reference the open segment (0: no
	 * open segment). The object-storage tier uploads log records only up
	 * to the one before it: a record never reaches the bucket before the
	 * segment it references.
	 */
	uint64_t open_first_seq;
	struct zf_buf pending_seal; /* a seal found at open, logged once the log is open */
	/* a full dev-dir (fs_write.c space_admit): free bytes when last asked */
	uint64_t space_free, space_ns, space_logged_ns;
	int space_full;
	zf_fs_admit_fn admit;	/* backpressure hook, called before a write */
	void *admit_ctx;
	uint64_t nfiles, ndirs;
	uint64_t npinned;	/* inodes with ZF_INODE_PINNED */
	uint64_t commits, fsyncs;
	/*
	 * gc: one run at a time (gc_lock, taken before fs->lock); seg_gen
	 * counts segment files removed, so a read planned before a removal
	 * and failing on the missing file plans again (chunks moved).
	 */
	struct zf_mutex gc_lock;	/* rank ZF_RANK_GC: one gc at a time */
	uint64_t seg_gen;
	/* a replica: a read met a segment the bucket no longer holds, and
	 * this brings the table up to the writer's (zf_fs_set_stale) */
	void (*stale)(void *ctx);
	void *stale_ctx;
};

/*
 * fs->lock, with a count per thread of the core locks it holds: the
 * segment store's fetch hook refuses to wait for the bucket while the
 * caller holds one (zf_fs_lock_held), so no operation can stall every
 * other one behind the network (DESIGN.md invariant 7).
 */
static inline void fs_lock(struct zf_fs *fs)
{
	zf_mutex_lock(&fs->lock);
	zf_nonet_locks++;
}

static inline void fs_unlock(struct zf_fs *fs)
{
	zf_nonet_locks--;
	zf_mutex_unlock(&fs->lock);
}

/* ---- fs_apply.c: the table and its applier ---- */
struct zf_inode *fs_inode(struct zf_fs *fs, uint64_t ino);
/* a regular file's inode into *ret; -ENOENT, or -EISDIR / -EINVAL (not a file) */
int fs_file_inode(struct zf_fs *fs, uint64_t ino, struct zf_inode **ret);
struct zf_chunk *fs_chunk_find(struct zf_fs *fs, const struct zf_chunk_id *id);
struct zf_dirent *dir_find(struct zf_dir *d, const char *name, size_t len);
/* first slot whose cookie is >= cookie */
uint32_t dir_slot_of(const struct zf_dir *d, uint64_t cookie);
/* first extent whose end is past off */
uint32_t ext_first_after_pub(const struct zf_file *f, uint64_t off);
/* a lost chunk (no location, damaged): extents may map it, reads fail */
struct zf_chunk *fs_chunk_add_lost(struct zf_fs *fs, const struct zf_chunk_id *id);
/* chunk c leaves its super-chunk (one left without chunks is forgotten) */
void fs_chunk_unlocate(struct zf_fs *fs, struct zf_chunk *c);
/* sorted, distinct ids of the segments the table references, the open one
 * included (malloc'd; fs->lock held) */
uint64_t *fs_segments_used(struct zf_fs *fs, size_t *ret_n);
/* "INODE", "EXTENTS", ... ("record type N" for others; buf >= 24 bytes) */
const char *fs_rec_name(int type, char *buf, size_t len);
void rec_inode(struct zf_buf *b, const struct zf_inode *in);
void rec_extents(struct zf_buf *b, uint64_t ino, uint64_t start, uint64_t end,
		 const struct zf_extent *ext, uint32_t n);
/* add rec to the open transaction and apply it (live operations) */
void fs_do(struct zf_fs *fs, uint8_t type, const struct zf_buf *rec);
void fs_txn_end(struct zf_fs *fs);
/* log and apply the seal of segment seg (the store sealed it) */
void fs_log_seal(struct zf_fs *fs, uint64_t seg);
/* log and apply a super-chunk record (ZF_REC_SC or ZF_REC_SC_MOVE) for loc */
void fs_log_sc(struct zf_fs *fs, uint8_t type, const struct zf_sc_loc *loc,
	       struct zf_chunk *const *chunks, uint32_t n);
/* why a record did not apply: the error object of fs_apply */
struct fs_apply_err {
	const char *why;	/* set on -EBADMSG (a static string) */
	int quiet;		/* note it here only, do not log it (salvage) */
};
/* apply one record to the table; -EBADMSG if it does not fit, its reason in
 * err (and logged unless err->quiet). err NULL: a live record, which is
 * validated before it is made and cannot fail */
int fs_apply(struct zf_fs *fs, const struct zf_frame *f, struct fs_apply_err *err);
/* the same for a checkpoint's record (STATE, and SC with reference counts) */
int fs_apply_ckpt(struct zf_fs *fs, const struct zf_frame *f, struct fs_apply_err *err);
/* free every inode, chunk and super-chunk of the table (closing) */
void fs_table_free(struct zf_fs *fs);
static inline uint64_t zf_get64_id(const struct zf_chunk_id *id)
{
	const uint8_t *p = id->b;

	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
	       (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
	       (uint64_t)p[7] << 56;
}

/* ---- fs_walk.c ---- */
/* chunk c as a walk shows it */
void fs_walk_chunk_of(const struct zf_chunk *c, struct zf_walk_chunk *w);

/* ---- fs_replay.c: loading the metadata at open ---- */
/* the files in meta/ */
struct fs_meta_files {
	uint64_t *logs;		/* first seqs, ascending */
	size_t nlogs;
	uint64_t ckpt;		/* newest checkpoint seq, 0 if none */
	int has_ckpt;
	uint64_t *ckpts;	/* every checkpoint seq */
	size_t nckpts;
};
/* list meta/ into *mf (removing stale .tmp files unless read-only);
 * fs_meta_files_free() it after, also on failure */
int fs_meta_list(struct zf_fs *fs, struct fs_meta_files *mf);
void fs_meta_files_free(struct fs_meta_files *mf);
/* remove checkpoints older than ckpt_seq and logs wholly before ckpt_seq + 1 */
void fs_meta_prune(struct zf_fs *fs, uint64_t ckpt_seq);
/* load the newest checkpoint, replay the logs after it, check the durable
 * mark: 0 with the last log's end offset and the next record's seq, or
 * -EBADMSG (salvage: what did not verify or apply noted in fs->salv) */
int fs_load(struct zf_fs *fs, const struct fs_meta_files *mf, uint64_t *ret_end,
	    uint64_t *ret_next_seq);

/* ---- fs_commit.c: durability ---- */
int fs_commit(struct zf_fs *fs);
/* write the durable mark (meta/synced) up to fs->durable_seq if it is
 * behind (exact: also when it is ahead, after a repair cut the log) */
int fs_mark_synced(struct zf_fs *fs, int exact);
/* commit, then write a checkpoint and drop the logs it covers (fs->lock held) */
int fs_checkpoint_locked(struct zf_fs *fs);

/* ---- fs_ns.c ---- */
/* an unlinked inode without lookup references is deleted (logged) */
void fs_maybe_reclaim(struct zf_fs *fs, struct zf_inode *in);
/* flush buffered data so that an inode record may be logged for in */
int fs_settle(struct zf_fs *fs, struct zf_inode *in);
/* log in's inode record in the open transaction */
void fs_log_inode(struct zf_fs *fs, struct zf_inode *in);
/* log a DIRENT_ADD (ino) or DIRENT_DEL record of name in directory parent */
void fs_log_dirent(struct zf_fs *fs, uint8_t type, uint64_t parent, const char *name,
		   uint64_t ino);
void fs_set_now(int64_t *sec, uint32_t *ns, struct timespec now);

/* ---- fs_xattr.c ---- */
#define ZF_ACL_ACCESS "system.posix_acl_access"
#define ZF_ACL_DEFAULT "system.posix_acl_default"
struct zf_xattr *fs_xattr_find(struct zf_inode *in, const char *name);
/*
 * Fit a POSIX ACL value v to *mode: chmod (masq 0) sets its owner, group
 * (or mask) and other entries from the mode; creation (masq 1) narrows
 * them by the mode, and *mode by them. 1 if the ACL says more than a mode
 * can, 0 if not, -EINVAL if malformed.
 */
int fs_acl_fit(uint8_t *v, size_t len, uint32_t *mode, int masq);
/* log an XATTR_SET (del 0) or XATTR_DEL record for ino */
void fs_log_xattr(struct zf_fs *fs, uint64_t ino, const char *name, const void *val,
		  size_t len, int del);

/* ---- the data path: fs_write.c, fs_read.c, fs_chunk.c, fs_range.c ---- */

/* a streaming writer's buffer: one flush's worth and the tail it keeps */
#define ZF_STREAM_BUF (ZF_FLUSH_FILE_BYTES + ZF_CHUNK_MAX)
/* a flush gives up waiting for a natural resync this far past the change */
#define ZF_RESYNC_LIMIT (1u << 20)

/* fs_write.c: the write buffer */
/* put data at off into in's write buffer, merging touching ranges */
void fs_dirty_write(struct zf_fs *fs, struct zf_inode *in, uint64_t off, const void *data,
		    size_t len);
/* give a detached range back to the write buffer as it is (no copy): 0, or
 * -EEXIST when it touches a buffered range (the caller merges by copying) */
int fs_dirty_reattach(struct zf_fs *fs, struct zf_inode *in, const struct zf_dirty *nd);
/* wb holds delta more (or fewer) buffered bytes */
void fs_dirty_account(struct zf_fs *fs, struct zf_wbuf *wb, int64_t delta);
/* drop an empty write buffer; the logged size is the size again */
void fs_wbuf_put(struct zf_fs *fs, struct zf_inode *in);
/* forget buffered bytes from offset from on (truncate) */
void fs_file_drop_dirty(struct zf_fs *fs, struct zf_inode *in, uint64_t from);
/* fs_read.c: stored (logged) bytes of [off, off+len): extents, holes as
 * zeros; 0 or -EIO (logged with the inode and offset) */
int fs_stored_read(struct zf_fs *fs, struct zf_inode *in, uint8_t *buf, uint64_t off,
		   size_t len);
/* fs_range.c: unmap [a, b) of a clean file (the caller flushed it) */
void fs_file_unmap(struct zf_fs *fs, struct zf_inode *in, uint64_t a, uint64_t b);
/* fs_chunk.c: how much of a file's buffered data a flush chunks */
#define ZF_FLUSH_ALL 0		/* everything (fsync, close, attribute changes) */
#define ZF_FLUSH_KEEP_TAILS 1	/* not the unterminated chunk at the end of an
				 * append, nor one before a gap, nor ranges past a
				 * gap at the end of the file (a writer's flush) */
#define ZF_FLUSH_KEEP_GAPS 2	/* not the unterminated chunk before a gap */
int fs_file_flush(struct zf_fs *fs, struct zf_inode *in, int keep_tail);
/* flush every file; keep_gaps: files written in the last second keep
 * ZF_FLUSH_KEEP_GAPS (a periodic sync), else ZF_FLUSH_ALL */
int fs_flush_all(struct zf_fs *fs, int keep_gaps);
/* fs_read.c: take fs->lock, ino's stored bytes that a flush reads fetched
 * first without it */
void fs_lock_for_flush(struct zf_fs *fs, uint64_t ino);
/* the same for every file with buffered data */
void fs_lock_for_flush_all(struct zf_fs *fs);
/* read stored bytes of a chunk (packer or segment) */
int fs_chunk_read(struct zf_fs *fs, const struct zf_chunk *c, uint32_t coff, uint32_t len,
		  void *dst);
static inline uint64_t fs_isize(const struct zf_inode *in)
{
	if (S_ISREG(in->mode) && in->u.file->wb)
		return in->u.file->wb->wsize;
	return in->size;
}

static inline uint64_t fs_dirty_bytes(const struct zf_inode *in)
{
	return S_ISREG(in->mode) && in->u.file->wb ? in->u.file->wb->bytes : 0;
}

#endif
