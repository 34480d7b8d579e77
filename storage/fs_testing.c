/*
 * storage/fs_testing.c - the core's side of storage/fs_testing.h: unit
 * tests' ways to damage the in-memory table. Not used by zerofs itself.
 *
 * Locking: each hook takes fs->lock.
 */
#include "config.h"

#include <errno.h>
#include <sys/stat.h>

#include "common/buf.h"
#include "common/htab.h"
#include "storage/fs_internal.h"
#include "storage/fs_testing.h"

void zf_fs_test_log(struct zf_fs *fs, uint8_t type, const void *payload, size_t len)
{
	struct zf_buf b = { 0 };

	zf_buf_add(&b, payload, len);
	fs_lock(fs);
	fs_do(fs, type, &b);
	fs_txn_end(fs);
	fs_unlock(fs);
	zf_buf_free(&b);
}

void zf_fs_test_add_refs(struct zf_fs *fs, uint32_t n)
{
	struct zf_hent *e;

	fs_lock(fs);
	zf_htab_foreach(&fs->chunks, e)((struct zf_chunk *)e->val)->refs += n;
	fs_unlock(fs);
}

int zf_fs_test_set_nlink(struct zf_fs *fs, uint64_t ino, uint32_t nlink)
{
	struct zf_inode *in;
	int r = -ENOENT;

	fs_lock(fs);
	in = fs_inode(fs, ino);
	if (in) {
		in->nlink = nlink;
		r = 0;
	}
	fs_unlock(fs);
	return r;
}

int zf_fs_test_extent_chunk(struct zf_fs *fs, uint64_t ino, uint32_t i,
			    struct zf_chunk_id *ret_id)
{
	struct zf_inode *in;
	int r = -ENOENT;

	fs_lock(fs);
	in = fs_inode(fs, ino);
	if (in && S_ISREG(in->mode) && i < in->u.file->n) {
		*ret_id = in->u.file->ext[i].c->id;
		r = 0;
	}
	fs_unlock(fs);
	return r;
}
