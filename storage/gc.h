/*
 * storage/gc.h - garbage collection of the segment store (`zerofs gc`):
 * options and report. Implemented in storage/gc.c; the bucket's side is the
 * object-storage tier's.
 */
#ifndef ZF_STORAGE_GC_H
#define ZF_STORAGE_GC_H

#include <stdint.h>

struct zf_fs;

#define ZF_GC_MAX_WASTE 0.05

struct zf_gc_opts {
	/* rewrite segments, least live first, until the dead bytes left in the
	 * others are at most this fraction of the live bytes (0: 5 %) */
	double max_waste;
	int dry_run;		/* count only */
	/* dry_run: the segments gc would empty, when not NULL (malloc'd, sorted,
	 * *ret_nvictims of them; the caller frees): what a bucket gc would free */
	uint64_t **ret_victims;
	size_t *ret_nvictims;
	/* with keep: segments above keep_above stay (not in the bucket yet) */
	int keep;
	uint64_t keep_above;
	/* also merge sealed segments smaller than this (when there are two or
	 * more), however live: the small ones uploads sealed by time (0: no) */
	uint64_t small_bytes;
	/* called after each batch of live chunks copied: done of total bytes
	 * (uncompressed) to copy, from the caller's thread; NULL: none */
	void (*progress)(void *ctx, uint64_t done, uint64_t total);
	void *ctx;
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

#endif
