/*
 * storage/check.h - the consistency checker and its repair, behind
 * `zerofs fsck`: what is checked, how problems are reported, what a repair
 * may change. Implemented in storage/check.c, storage/check_chunks.c and
 * storage/repair.c.
 */
#ifndef ZF_STORAGE_CHECK_H
#define ZF_STORAGE_CHECK_H

#include <stdint.h>

struct zf_fs;

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

#endif
