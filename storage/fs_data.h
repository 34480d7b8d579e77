/*
 * storage/fs_data.h - file data in the storage core: read, write, flush,
 * fallocate, SEEK_DATA/SEEK_HOLE, chunk-sharing copies, and the dev-dir's
 * free space as writes see it.
 *
 * Data written is buffered per inode and cut into content-defined chunks
 * when flushed (fsync, release, memory pressure); unchanged regions are
 * never re-chunked. Reads of stored data run outside fs->lock. Returns a
 * length or -errno. Implemented by the data path (storage/fs_write.c,
 * fs_read.c, fs_chunk.c, fs_range.c).
 */
#ifndef ZF_STORAGE_FS_DATA_H
#define ZF_STORAGE_FS_DATA_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct zf_fs;

/*
 * Is the dev-dir (nearly) full: would margin more bytes of writes not fit?
 * Writes are refused with ENOSPC once they would not (zf_fs_write); the
 * daemon opens files uncached while space is low, so that a writer gets
 * the error from write(2) rather than from close(2).
 */
int zf_fs_space_low(struct zf_fs *fs, uint64_t margin);

ssize_t zf_fs_read(struct zf_fs *fs, uint64_t ino, void *buf, size_t len, uint64_t off);
ssize_t zf_fs_write(struct zf_fs *fs, uint64_t ino, const void *buf, size_t len, uint64_t off);
/* chunk buffered data of ino into the store (no sync) */
int zf_fs_flush(struct zf_fs *fs, uint64_t ino);
/* FALLOC_FL_* semantics: 0 (allocate/extend), KEEP_SIZE, PUNCH_HOLE|KEEP_SIZE */
int zf_fs_fallocate(struct zf_fs *fs, uint64_t ino, int mode, uint64_t off, uint64_t len);
/* SEEK_DATA / SEEK_HOLE; -ENXIO past the end */
int64_t zf_fs_lseek(struct zf_fs *fs, uint64_t ino, uint64_t off, int whence);
/* share src's chunks into dst (no bytes copied where chunks align) */
ssize_t zf_fs_copy_range(struct zf_fs *fs, uint64_t src, uint64_t src_off, uint64_t dst,
			 uint64_t dst_off, size_t len);

#endif
