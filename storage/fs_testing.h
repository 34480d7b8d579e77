/*
 * storage/fs_testing.h - hooks for unit tests that damage the core's
 * in-memory table the way lost or wrong records would, so that the checker
 * and its repair have something to find. zerofs itself never calls them;
 * only tests include this header.
 *
 * Locking: each takes fs->lock itself (call it without). Implemented in
 * storage/fs_testing.c.
 */
#ifndef ZF_STORAGE_FS_TESTING_H
#define ZF_STORAGE_FS_TESTING_H

#include <stddef.h>
#include <stdint.h>

#include "storage/chunker.h"

struct zf_fs;

/* log and apply one record (type, payload) as its own transaction; the
 * record must fit the table (a misfit aborts, as for a live record) */
void zf_fs_test_log(struct zf_fs *fs, uint8_t type, const void *payload, size_t len);
/* every indexed chunk's reference count goes up by n, in memory only */
void zf_fs_test_add_refs(struct zf_fs *fs, uint32_t n);
/* ino's link count becomes nlink, in memory only: 0 or -ENOENT */
int zf_fs_test_set_nlink(struct zf_fs *fs, uint64_t ino, uint32_t nlink);
/* the id of the chunk extent i of regular file ino maps: 0 or -ENOENT */
int zf_fs_test_extent_chunk(struct zf_fs *fs, uint64_t ino, uint32_t i,
			    struct zf_chunk_id *ret_id);

#endif
