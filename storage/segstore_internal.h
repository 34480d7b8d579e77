/*
 * storage/segstore_internal.h - what the files of the segment store share.
 * Not a public interface: the contract is segstore.h.
 *
 * The store is one concept split by what each part does:
 *   segstore.c         open, close, stats, the fetch hook
 *   segstore_codec.c   encoding and checking the bytes of seg_format.h
 *   segstore_file.c    segment files: names, the read-only fd cache, header
 *                      checks and fixes, the directory scan, eviction
 *   segstore_pack.c    building super-chunk images (zstd), under no lock
 *   segstore_append.c  the open segment: append, seal, sync, resume
 *   segstore_read.c    reading and verifying one super-chunk, serving reads
 *   segstore_cache.c   the cache of decompressed super-chunks, read-ahead
 *   segstore_heal.c    where a super-chunk comes from when the local copy
 *                      fails: the bucket, and replacing the damaged bytes
 *
 * Invariants:
 *  - [0, wend) of the open segment is a valid header followed by whole
 *    super-chunks. An append writes one super-chunk at wend with a single
 *    pwrite; if it fails the file is cut back to wend, so a failed call
 *    leaves the segment exactly as it was (a brand-new segment is removed).
 *  - A sealed segment is never written again, except that a self-healing
 *    read (segstore_heal.c) and fsck --repair's header fix rewrite damaged
 *    bytes with the same bytes the bucket or the header codec says they
 *    must hold. Only resume() reopens a segment for appends, and only up to
 *    its committed end.
 *  - Every byte handed to a reader comes from a super-chunk whose header and
 *    payload checksums matched and whose chunks were all re-hashed against
 *    their ids when it was loaded.
 *  - After a failed fsync/fdatasync (or a failed ftruncate while undoing an
 *    append) the kernel may have dropped dirty pages or left garbage behind:
 *    the writer then refuses every write with that error ("sticky") until
 *    resume() re-establishes the state from the metadata log.
 *
 * Locking. Four mutexes; who takes what while holding what:
 *  - st->wlock serialises writers (append, append_image, seal, sync, resume,
 *    resume_keep, evict) and guards the writer state: the open segment,
 *    next_id, the sticky error and append()'s compressor. Disk writes of
 *    appends run under wlock only, so a reader missing the cache is never
 *    stuck behind a slow append. Under wlock a writer takes st->lock (the
 *    segment counters, the fd cache in evict and resume) and
 *    st->cache_lock (resume drops the cache). Readers never take wlock.
 *  - st->lock guards the read-only fd cache and the segment counters of the
 *    stats. Nothing else is taken while it is held.
 *  - st->cache_lock guards the super-chunk cache, its hit counters and the
 *    table of read-aheads at work (the loaded condition waits on it).
 *    Entries are refcounted: a reader pins one, copies out without the
 *    lock, and unpins it. Nothing else is taken while it is held.
 *  - st->dlock guards the pool of zstd decompression contexts. A leaf.
 * So the order is st->wlock -> { st->lock, st->cache_lock }; st->lock,
 * st->cache_lock and st->dlock are never held together.
 *
 * With the rest of the core: fs->lock -> st->wlock (an inline append and
 * the sync of a commit run under fs->lock), fs->lock -> st->lock,
 * st->cache_lock, st->dlock (reads under fs->lock). The pipeline's lock
 * (fs_pipe.h) is never held while any store lock is taken. No store lock
 * is held while the fetch hook runs (it may wait for the network) or while
 * a healed super-chunk is written back; a thread holding fs->lock
 * (zf_nonet_locks) never calls the hook nor waits for a load that may.
 * Readers run while a writer appends: the range a reader asks for is
 * committed and never rewritten (segstore.h).
 */
#ifndef ZF_STORAGE_SEGSTORE_INTERNAL_H
#define ZF_STORAGE_SEGSTORE_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <zstd.h>

#include "common/lock.h"
#include "storage/seg_format.h"
#include "storage/segstore.h"

/*
 * Read-only fds kept open: with 16 MiB segments 64 fds cover a 1 GiB hot set,
 * and 64 stays far below the usual RLIMIT_NOFILE soft limit of 1024 that the
 * daemon shares with FUSE and the log.
 */
#define ZF_SEG_FD_CACHE 64

/* idle zstd decompression contexts kept (~100 KiB each), about one per
 * FUSE worker thread that can miss the cache at the same time */
#define ZF_SEG_DCTX_POOL 4

/* read-aheads loading at once: one per pipeline worker is plenty */
#define ZF_SEG_LOADING_MAX 8

/* intrusive doubly-linked list; a head is a link pointing at itself */
struct zf_link {
	struct zf_link *prev, *next;
};

#define zf_container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

static inline void zf_link_init(struct zf_link *h)
{
	h->prev = h->next = h;
}

static inline void zf_link_del(struct zf_link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
	l->prev = l->next = l;
}

static inline void zf_link_add_head(struct zf_link *h, struct zf_link *l)
{
	l->next = h->next;
	l->prev = h;
	h->next->prev = l;
	h->next = l;
}

/* one cached read-only fd of a segment file */
struct zf_segfd {
	struct zf_link lru;	/* in st->fds, most recent first; st->lock */
	uint64_t seg;
	int fd;
	unsigned int refs;	/* users + 1 while in st->fds; st->lock */
	bool cached;		/* in st->fds; st->lock */
};

/* one decompressed, verified super-chunk */
struct zf_scent {
	struct zf_scent *hnext; /* hash chain; st->cache_lock */
	struct zf_link lru;	/* in st->lru, most recent first; st->cache_lock */
	uint64_t seg, off;
	uint32_t disk_len, raw_len;
	unsigned int refs;	/* readers + 1 while in the table; st->cache_lock */
	bool cached;		/* in the table; st->cache_lock */
	struct zf_sc_chunk *tab; /* the verified chunk table, for zf_segstore_read_chunk */
	uint32_t *tab_off;	/* raw offset of each table entry */
	uint32_t ntab;
	uint8_t data[];		/* raw_len bytes */
};

struct zf_segstore {
	zf_segstore_fetch_fn fetch;	/* evicted segments come from here; set once */
	void *fetch_ctx;
	int dirfd;		/* our dup of the directory */
	uint8_t fsid[16];
	const struct zf_chunker *chunker;
	int level;
	uint64_t seg_limit;
	int readonly;		/* opts->readonly: no healing */
	uint64_t healed;	/* local super-chunks replaced by the bucket's copy (atomic) */

	/* writer state; see "Locking" above; rank ZF_RANK_SEG_WRITE */
	struct zf_mutex wlock;
	struct zf_sc_packer *pk; /* protected by wlock: append()'s compressor */
	struct zf_sc_image wimg; /* protected by wlock: append()'s super-chunk */
	int wfd;		/* protected by wlock: open segment, -1: none */
	uint64_t wseg;		/* protected by wlock: its id */
	uint64_t wend;		/* protected by wlock: end of its last sc */
	uint64_t wnsc;		/* protected by wlock: super-chunks in it */
	uint64_t wraw;		/* protected by wlock: their raw bytes */
	uint64_t next_id;	/* protected by wlock: id of the next new segment */
	bool wdirty;		/* protected by wlock: appended since fdatasync */
	bool dir_dirty;		/* protected by wlock: created since dir fsync */
	int werr;		/* protected by wlock: sticky error, 0 if none */

	/* taken under wlock or alone; a leaf; rank ZF_RANK_SEG */
	struct zf_mutex lock;
	struct zf_link fds;	/* protected by lock: struct zf_segfd LRU */
	unsigned int nfds;	/* protected by lock */
	uint64_t nsegs;		/* protected by lock: segment files present */
	uint64_t disk_bytes;	/* protected by lock: their bytes */
	uint64_t raw_bytes;	/* protected by lock: appended since open */
	uint64_t stored_bytes;	/* protected by lock: appended since open */

	/* taken under wlock or alone; a leaf; rank ZF_RANK_SEG_CACHE */
	struct zf_mutex cache_lock;
	struct zf_scent **buckets; /* protected by cache_lock; set at open */
	size_t nbuckets;	/* set at open */
	struct zf_link lru;	/* protected by cache_lock */
	uint64_t cache_max;	/* set at open: opts->sc_cache_bytes */
	uint64_t cache_used;	/* protected by cache_lock: entries in table */
	uint64_t hits, misses;	/* protected by cache_lock */
	struct {
		uint64_t seg, off;	/* seg 0: free slot */
	} loading[ZF_SEG_LOADING_MAX];	/* protected by cache_lock: read-aheads at work */
	pthread_cond_t loaded;	/* with cache_lock: a read-ahead finished */

	/* a leaf; rank ZF_RANK_SEG_DCTX */
	struct zf_mutex dlock;
	ZSTD_DCtx *dpool[ZF_SEG_DCTX_POOL]; /* protected by dlock */
	unsigned int ndpool;	/* protected by dlock */
};

/* ---- segstore_codec.c: the bytes of seg_format.h ---- */

/* parse a segment file name; 0 if it is not one (id 0 is never used) */
uint64_t zf_seg_parse_name(const char *name);
void zf_seg_hdr_encode(uint8_t *h, uint64_t seg, const uint8_t fsid[16]);
/* check a segment header; NULL if good, else what is wrong */
const char *zf_seg_hdr_check(const uint8_t *h, uint64_t seg, const uint8_t fsid[16]);
/*
 * Is a header of n bytes that zf_seg_hdr_check refused merely damaged (bytes
 * lost or flipped: its super-chunks may still be read), rather than a whole
 * header of another version, segment or filesystem (the file is not this one)?
 */
bool zf_seg_hdr_damaged(const uint8_t *h, ssize_t n);
void zf_seg_ftr_encode(uint8_t *f, uint64_t seg, uint64_t nsc, uint64_t end, uint64_t raw);
void zf_sc_hdr_decode(const uint8_t *p, struct zf_sc_hdr *h);

/* ---- segstore_file.c: segment files ---- */

/* 0 if the segment file is in the dev-dir, -ENOENT if not (evicted) */
int zf_segfd_exists(struct zf_segstore *st, uint64_t seg);
/*
 * Get a read-only fd of segment seg (put it back with zf_segfd_put),
 * opening it (and checking its header) when it is not cached. Returns 0,
 * -ENOENT when the file is missing (not logged: the caller knows the
 * context), -EIO for a header of another segment, version or filesystem
 * (logged, and said in err, which may be NULL) or -errno (logged).
 * Takes st->lock.
 */
int zf_segfd_get(struct zf_segstore *st, uint64_t seg, struct zf_segfd **ret_f,
		 struct zf_seg_err *err);
void zf_segfd_put(struct zf_segstore *st, struct zf_segfd *f);
/*
 * Open segment seg (open(2) flags) and read its header into h (64 bytes):
 * 0 with *ret_fd (the caller closes it), *ret_n (header bytes read) and
 * *ret_why (NULL: the header is good and this segment's, else what is
 * wrong); -ENOENT (not logged) or -errno (logged). No lock.
 */
int zf_seg_open_hdr(struct zf_segstore *st, uint64_t seg, int flags, uint8_t *h, int *ret_fd,
		    ssize_t *ret_n, const char **ret_why);
/* close every cached fd (users keep theirs until they put it); takes st->lock */
void zf_segfd_flush(struct zf_segstore *st);
/* write bytes [off, off + len) of segment seg in place, durably; no lock */
int zf_seg_patch(struct zf_segstore *st, uint64_t seg, uint64_t off, const void *buf,
		 size_t len);
/*
 * Walk the segment files of the store: count them and their bytes into
 * *ret_n and *ret_bytes, the highest id into *ret_max, and unlink every one
 * with an id above remove_above (UINT64_MAX: none), logging each.
 * Returns 0 or -errno (logged).
 */
int zf_seg_scan(struct zf_segstore *st, uint64_t remove_above, uint64_t *ret_n,
		uint64_t *ret_bytes, uint64_t *ret_max, bool *ret_removed);

/* ---- segstore_append.c: the open segment ---- */

/* forget the open segment without sealing it (wlock held, or at close) */
void zf_seg_writer_drop(struct zf_segstore *st);

/* ---- segstore_read.c: one super-chunk ---- */

/* set err->why (err may be NULL) */
void zf_seg_err_set(struct zf_seg_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* log "cannot read segment '<file>' at offset <off>: <what>", say <what>
 * in err (may be NULL); returns -EIO */
int zf_sc_bad(struct zf_seg_err *err, const struct zf_sc_loc *loc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/*
 * Read the super-chunk at loc and verify all of it. refetch: 0 the dev-dir's
 * file, or the fetch hook when it is evicted; 1 the same, asking the hook to
 * bypass its local copy; 2 the bucket's copy only. On success *ret_e is a
 * new entry pinned once (not in the cache) and, if ret_chunks, *ret_chunks
 * and *ret_n the decoded chunk table (malloc'd). *ret_fetched says whether
 * the bytes came from the fetch hook (also on failure). On failure err
 * (may be NULL) says why. No store lock is held while the hook runs.
 */
int zf_sc_load_once(struct zf_segstore *st, const struct zf_sc_loc *loc,
		    struct zf_scent **ret_e, struct zf_sc_chunk **ret_chunks, uint32_t *ret_n,
		    int refetch, int *ret_fetched, struct zf_seg_err *err);
void zf_scent_free(struct zf_scent *e);

/* ---- segstore_heal.c: when the local copy fails ---- */

/*
 * zf_sc_load_once, then what the bucket can do: fetched bytes that do not
 * verify are fetched once more straight from the bucket; a damaged local
 * copy is replaced by the bucket's verified copy (and served). Same
 * returns; on failure err (may be NULL) says why the last copy tried
 * failed (for a damaged local copy: the local copy's damage).
 */
int zf_sc_load(struct zf_segstore *st, const struct zf_sc_loc *loc, struct zf_scent **ret_e,
	       struct zf_sc_chunk **ret_chunks, uint32_t *ret_n, struct zf_seg_err *err);

/* ---- segstore_cache.c: decompressed super-chunks ---- */

/* a pinned entry for (seg, off), or NULL; counts the hit or miss */
struct zf_scent *zf_cache_get(struct zf_segstore *st, uint64_t seg, uint64_t off);
/* unpin an entry of zf_cache_get or zf_cache_load */
void zf_cache_put(struct zf_segstore *st, struct zf_scent *e);
/* the cached, verified super-chunk at loc, loaded on a miss (pinned) */
int zf_cache_load(struct zf_segstore *st, const struct zf_sc_loc *loc, struct zf_scent **ret_e);
/* drop every entry (pinned ones live on until unpinned) */
void zf_cache_flush(struct zf_segstore *st);
/* size the hash table for the bound st->cache_max (at open) */
void zf_cache_init(struct zf_segstore *st);

#endif
