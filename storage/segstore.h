/*
 * storage/segstore.h - log-structured segment store of super-chunks
 *
 * New chunks are packed by the caller into a super-chunk (a few MiB of raw
 * bytes plus a table of chunk ids and lengths); zf_segstore_append()
 * compresses it with zstd (kept raw when it does not shrink) and appends it to
 * the open segment file. A segment is sealed (footer written, fsynced) once it
 * reaches its size limit and is immutable afterwards. Reads decompress a
 * super-chunk at most once while it is hot: a bounded LRU cache keeps
 * decompressed super-chunks; every chunk of a super-chunk is re-hashed when
 * it enters the cache, so bytes served from it are verified.
 *
 * The segment store does not decide what is committed: the metadata log does.
 * After replay the core calls zf_segstore_resume() with the open segment and
 * the end of its last committed super-chunk; anything beyond is a torn,
 * uncommitted tail and is cut off.
 *
 * Durability: append() does not sync. zf_segstore_sync() makes every appended
 * super-chunk durable (fdatasync of the open segment, plus the directory when
 * a segment file was created). The caller runs it before it commits any log
 * record that references those super-chunks.
 *
 * Locking: every function may be called from any thread. Writers (append,
 * seal, sync, resume, evict) are serialised by the store's writer lock;
 * readers never wait for it, and run concurrently with the appender: the
 * region a reader asks for is committed and therefore never rewritten.
 * Callers may hold fs->lock (it comes before every store lock); the store
 * calls nothing of theirs under its locks. Which lock guards what, and
 * their order: segstore_internal.h.
 *
 * Format: docs/FORMAT.md "Segments" and "Super-chunks" (seg_format.h).
 * Not here: which chunks are live (storage/fs.c, gc), when to compress
 * (the core's write pipeline, storage/fs_pipe.c), uploads and fetching
 * evicted segments (the object-storage tier, through the fetch hook).
 */
#ifndef ZF_STORAGE_SEGSTORE_H
#define ZF_STORAGE_SEGSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "storage/chunker.h"

/* where one super-chunk lives: exactly the bytes a ranged GET must fetch */
struct zf_sc_loc {
	uint64_t seg;		/* segment id, >= 1 */
	uint64_t off;		/* offset of the super-chunk header in the segment */
	uint32_t disk_len;	/* header + chunk table + stored payload */
	uint32_t raw_len;	/* decompressed payload length */
};

/* one entry of a super-chunk's chunk table */
struct zf_sc_chunk {
	struct zf_chunk_id id;
	uint32_t len;
};

struct zf_segstore_opts {
	int zstd_level;		  /* 1..19; 0 = default (3) */
	uint64_t seg_limit;	  /* seal once a segment reaches this size */
	uint64_t sc_cache_bytes;  /* decompressed super-chunk cache bound; 0: 64 MiB */
	int readonly;		  /* never write (no healing of damaged local copies) */
};

struct zf_segstore_stats {
	uint64_t segments;	/* segment files present */
	uint64_t disk_bytes;	/* bytes in segment files */
	uint64_t raw_bytes;	/* raw bytes appended since open */
	uint64_t stored_bytes;	/* on-disk bytes appended since open */
	uint64_t cache_hits, cache_misses;
	uint64_t sc_cache_bytes, sc_cache_max; /* decompressed super-chunks held; bound */
	uint64_t healed;	/* damaged local super-chunks replaced by the bucket's copy */
};

struct zf_segstore;

/*
 * What a failed verification or segment check found, in words for fsck's
 * report (the same words the log line has). A caller that wants them
 * passes one; it is written only when the call fails, and then never left
 * empty ("unreadable" when nothing more precise is known).
 */
struct zf_seg_err {
	char why[256];
};

/*
 * Open the store in directory dirfd (borrowed; dup'd inside). fsid tags every
 * segment so that a segment from another filesystem is rejected. The chunker
 * (borrowed, must outlive the store) re-hashes chunks on read.
 * Returns 0, -ENOMEM, or -errno from the directory.
 */
int zf_segstore_open(int dirfd, const uint8_t fsid[16], const struct zf_chunker *chunker,
		     const struct zf_segstore_opts *opts, struct zf_segstore **ret_st);
void zf_segstore_close(struct zf_segstore *st);

/*
 * Declare what the metadata log knows: open_seg is the segment that receives
 * appends (0: none yet), committed_end the end of its last committed
 * super-chunk; the file is truncated there (an uncommitted tail is dropped
 * with a log line), and segment files with an id above open_seg are deleted.
 * The next new segment gets id max(open_seg, last_sealed) + 1.
 * Returns 0 or -errno (-EBADMSG if the open segment's header is corrupt).
 */
/*
 * Resume without an open segment and without removing or cutting anything
 * (fsck --repair after synced log records were lost: bytes the log no
 * longer knows may hold their data). *last_sealed is raised to the highest
 * segment id present; new segments get ids above it.
 */
int zf_segstore_resume_keep(struct zf_segstore *st, uint64_t *last_sealed);

int zf_segstore_resume(struct zf_segstore *st, uint64_t open_seg, uint64_t committed_end,
		       uint64_t last_sealed);

/*
 * Compress and append one super-chunk of n chunks whose bytes are raw[0..
 * raw_len) in table order (sum of lens == raw_len). Creates a segment when
 * none is open. When the segment reaches its size limit it is sealed and
 * *ret_sealed is set to its id (else 0); the caller logs the seal.
 * Returns 0 and fills *ret_loc, or -errno (-ENOSPC on a full disk: the open
 * segment is left as it was before the call).
 */
int zf_segstore_append(struct zf_segstore *st, const struct zf_sc_chunk *chunks, uint32_t n,
		       const void *raw, uint32_t raw_len, struct zf_sc_loc *ret_loc,
		       uint64_t *ret_sealed);

/*
 * A super-chunk built ahead of its append: header, chunk table and payload,
 * compressed (or raw when it does not shrink). The segment id and the header
 * checksum are filled in by zf_segstore_append_image().
 */
struct zf_sc_image {
	uint8_t *p;		/* owned; reused by the next build into it */
	size_t cap;
	uint32_t len;		/* disk length */
	uint32_t raw_len;
	uint32_t n;		/* chunks in the table */
};

/* a zstd compression context; used by one thread at a time */
struct zf_sc_packer;

/* NULL when out of memory */
struct zf_sc_packer *zf_sc_packer_new(void);
void zf_sc_packer_free(struct zf_sc_packer *pk);

/*
 * Build a super-chunk of n chunks (raw[0..raw_len) in table order) into img
 * at zstd level (negative levels are zstd's fast ones). Takes no store lock:
 * this is the CPU-heavy part of an append. 0 or -EINVAL.
 */
int zf_sc_packer_build(struct zf_sc_packer *pk, int level, const struct zf_sc_chunk *chunks,
		       uint32_t n, const void *raw, uint32_t raw_len, struct zf_sc_image *img);

/* free img's buffer (NULL or an empty image is fine) */
void zf_sc_image_free(struct zf_sc_image *img);

/*
 * Append a built super-chunk: as zf_segstore_append() without the
 * compression. img is borrowed (its header gets the segment id).
 */
int zf_segstore_append_image(struct zf_segstore *st, struct zf_sc_image *img,
			     struct zf_sc_loc *ret_loc, uint64_t *ret_sealed);

/* Seal the open segment now even if small (for upload). *ret_sealed as above. */
int zf_segstore_seal(struct zf_segstore *st, uint64_t *ret_sealed);

/* make every appended super-chunk durable; 0 or -errno */
int zf_segstore_sync(struct zf_segstore *st);

/*
 * Copy len bytes at raw_off of the super-chunk at loc into dst, through the
 * cache. On a miss the super-chunk is read, its header and payload checksums
 * verified, decompressed, and every chunk re-hashed against its id.
 * Returns 0, -EIO on any mismatch (logged with segment and offset), -ENOENT
 * when the segment file is missing, or -errno.
 */
int zf_segstore_read(struct zf_segstore *st, const struct zf_sc_loc *loc, uint32_t raw_off,
		     uint32_t len, void *dst);

/*
 * Load the super-chunk at loc into the cache ahead of a reader (read-ahead
 * on a worker thread, or before taking a lock). Readers missing it
 * meanwhile wait for this load instead of repeating it; with wait, so does
 * this call when another one is loading it. Returns 1 if it was loaded, 0
 * if it was cached or being loaded already, or -errno as zf_segstore_read.
 */
#define ZF_PREFETCH_WAIT 0x1	/* wait for a load another thread has under way */
#define ZF_PREFETCH_LOCAL 0x2	/* only from a local segment, never the bucket */
int zf_segstore_prefetch(struct zf_segstore *st, const struct zf_sc_loc *loc, int flags);

/* is the super-chunk at loc in the cache now? (a hint: it may leave it) */
int zf_segstore_cached(struct zf_segstore *st, const struct zf_sc_loc *loc);

/*
 * Like zf_segstore_read, for bytes [coff, coff+len) of one chunk: the
 * super-chunk's verified table must list a chunk with want's id and length
 * at raw offset chunk_off, so a stale or wrong location is caught (-EIO,
 * logged) instead of serving another chunk's bytes.
 */
int zf_segstore_read_chunk(struct zf_segstore *st, const struct zf_sc_loc *loc,
			   const struct zf_sc_chunk *want, uint32_t chunk_off, uint32_t coff,
			   uint32_t len, void *dst);

/*
 * Read and fully verify one super-chunk without caching (fsck). On success
 * *ret_chunks (malloc'd, n entries) is the chunk table and *ret_n its size;
 * either may be NULL. Returns 0, -EIO (with a log line saying what failed,
 * and err, which may be NULL, saying it too) or -errno.
 */
int zf_segstore_verify(struct zf_segstore *st, const struct zf_sc_loc *loc,
		       struct zf_sc_chunk **ret_chunks, uint32_t *ret_n, struct zf_seg_err *err);

/*
 * zf_segstore_verify of the bucket's copy only (through the fetch hook,
 * bypassing the dev-dir's file and fetch cache): can the bucket replace a
 * damaged local copy? -EOPNOTSUPP without a fetch hook.
 */
int zf_segstore_verify_remote(struct zf_segstore *st, const struct zf_sc_loc *loc,
			      struct zf_sc_chunk **ret_chunks, uint32_t *ret_n,
			      struct zf_seg_err *err);

/*
 * Is segment seg's file in the dev-dir with a valid header? 0 and its size;
 * -EUCLEAN and its size when the header is damaged (err says how; its
 * super-chunks still read, each verified on its own); -EIO when the header
 * verifies but names another segment, version or filesystem (the file is
 * refused; err says which); -ENOENT (no file) or -errno. err may be NULL.
 */
int zf_segstore_seg_check(struct zf_segstore *st, uint64_t seg, uint64_t *ret_size,
			  struct zf_seg_err *err);

/* rewrite segment seg's header (fsck --repair; it is fixed by seg and fsid) */
int zf_segstore_seg_fix_header(struct zf_segstore *st, uint64_t seg);

/*
 * A thread with zf_nonet_locks set (common/util.h: it holds the core lock)
 * never calls the fetch hook nor waits for a load that may: reads of
 * evicted data fail with -EIO instead.
 *
 * Where an evicted segment's super-chunks come from: fill buf with exactly
 * [loc->off, loc->off + loc->disk_len) of segment loc->seg. refetch asks
 * to bypass any local copy (the previous bytes did not verify). Returns 0
 * or -errno (-EIO, -ETIMEDOUT, ...), having logged what failed. Called
 * without storage locks, from reader threads.
 */
typedef int (*zf_segstore_fetch_fn)(void *ctx, const struct zf_sc_loc *loc, void *buf,
				    int refetch);

/* install the fetch hook (once, before concurrent reads start) */
void zf_segstore_set_fetch(struct zf_segstore *st, zf_segstore_fetch_fn fn, void *ctx);

/* is a fetch hook installed? */
int zf_segstore_has_fetch(struct zf_segstore *st);

/* is segment seg's file in the dev-dir? */
int zf_segstore_has(struct zf_segstore *st, uint64_t seg);

/*
 * Remove a sealed segment's file from the dev-dir (the object store holds
 * it; the caller made sure of that). -EBUSY for the open segment.
 */
int zf_segstore_evict(struct zf_segstore *st, uint64_t seg);

/* drop every cached super-chunk (tests, fsck) */
void zf_segstore_cache_drop(struct zf_segstore *st);

void zf_segstore_stats(struct zf_segstore *st, struct zf_segstore_stats *ret);

/* segment file name for id, e.g. "0000000000000001.zseg"; buf >= 32 bytes */
void zf_segstore_name(uint64_t seg, char *buf, size_t len);

/*
 * ---- segment images in memory (the object-storage tier reads segment
 * objects whole or in ranges from the bucket: tier/fetch.c, tier/audit.c) ----
 */

/*
 * The on-disk length (header + chunk table + stored payload) of the
 * super-chunk whose header starts at p, where avail bytes are: it may run
 * past avail. 0 when p holds no super-chunk header's magic (a segment's
 * footer) or fewer than a header's bytes. Nothing is verified.
 */
uint64_t zf_sc_disk_len(const void *p, size_t avail);
/* XXH3-64 of header bytes 0..39 followed by the chunk table at p + 48 */
uint64_t zf_sc_hdr_csum(const uint8_t *p, uint32_t nchunks);

/*
 * A whole segment image (a bucket object), structurally: header and
 * footer (magic, checksum, id; the header's fsid), and every super-chunk
 * between them by its header and payload checksums and its segment id (no
 * decompression: the chunk ids are checked by reads and by fsck's data
 * pass). 0, or -EBADMSG with a one-line reason in why.
 */
int zf_seg_image_verify(const void *img, size_t len, uint64_t id, const uint8_t fsid[16],
			char *why, size_t wlen);

#endif
