/*
 * storage/fs_range.c - operations on a range of a file's extent map:
 * unmapping (truncate, punching holes), fallocate, SEEK_DATA/SEEK_HOLE and
 * copy_file_range by sharing chunks (no byte is copied).
 *
 * Each flushes the files it touches first (their stored neighbours fetched
 * before fs->lock, fs_lock_for_flush), so it works on logged extents only.
 * Locking: every function here runs under fs->lock.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "storage/fs_internal.h"
#include "storage/meta_format.h"

/* unmap [a, b) of a clean file (the caller flushed it) */
void fs_file_unmap(struct zf_fs *fs, struct zf_inode *in, uint64_t a, uint64_t b)
{
	struct zf_buf rec = { 0 };

	rec_extents(&rec, in->ino, a, b, NULL, 0);
	fs_do(fs, ZF_REC_EXTENTS, &rec);
	zf_buf_free(&rec);
}

static void touch_mc(struct zf_inode *in)
{
	struct timespec now = zf_now();

	in->mtime = in->ctime = now.tv_sec;
	in->mtime_ns = in->ctime_ns = now.tv_nsec;
}

int zf_fs_fallocate(struct zf_fs *fs, uint64_t ino, int mode, uint64_t off, uint64_t len)
{
	struct zf_buf rec = { 0 };
	struct zf_inode *in;
	int r;

	if (fs->readonly)
		return -EROFS;
	if (len == 0 || off + len < off)
		return -EINVAL;
	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE))
		return -EOPNOTSUPP;
	if ((mode & FALLOC_FL_PUNCH_HOLE) && !(mode & FALLOC_FL_KEEP_SIZE))
		return -EINVAL;
	fs_lock_for_flush(fs, ino); /* it flushes: stored neighbours fetched first */
	in = fs_inode(fs, ino);
	r = !in ? -ENOENT : S_ISDIR(in->mode) ? -EISDIR : !S_ISREG(in->mode) ? -ENODEV : 0;
	if (r)
		goto out;
	r = fs_file_flush(fs, in, 0);
	if (r < 0)
		goto out;
	if (mode & FALLOC_FL_PUNCH_HOLE) {
		if (off < in->size)
			fs_file_unmap(fs, in, off, off + len);
		touch_mc(in);
	} else if (!(mode & FALLOC_FL_KEEP_SIZE) && off + len > in->size) {
		/* a copy-on-write store reserves nothing: the range reads as zeros */
		in->size = off + len;
		touch_mc(in);
	} else {
		goto out;
	}
	rec_inode(&rec, in);
	fs_do(fs, ZF_REC_INODE, &rec);
	fs_txn_end(fs);
out:
	zf_buf_free(&rec);
	fs_unlock(fs);
	return r;
}

int64_t zf_fs_lseek(struct zf_fs *fs, uint64_t ino, uint64_t off, int whence)
{
	struct zf_inode *in;
	struct zf_file *f;
	int64_t r;
	uint32_t i;

	fs_lock_for_flush(fs, ino); /* it flushes: stored neighbours fetched first */
	in = fs_inode(fs, ino);
	if (!in || !S_ISREG(in->mode)) {
		r = !in ? -ENOENT : -EINVAL;
		goto out;
	}
	r = fs_file_flush(fs, in, 0);
	if (r < 0)
		goto out;
	f = in->u.file;
	if (off >= in->size) {
		r = -ENXIO;
		goto out;
	}
	i = ext_first_after_pub(f, off);
	if (whence == SEEK_DATA) {
		r = i < f->n ? (int64_t)(f->ext[i].off > off ? f->ext[i].off : off) : -ENXIO;
		if (r >= (int64_t)in->size)
			r = -ENXIO;
	} else if (whence == SEEK_HOLE) {
		uint64_t pos = off;

		for (; i < f->n && f->ext[i].off <= pos; i++)
			pos = f->ext[i].off + f->ext[i].len;
		r = pos < in->size ? (int64_t)pos : (int64_t)in->size;
	} else {
		r = -EINVAL;
	}
out:
	fs_unlock(fs);
	return r;
}

ssize_t zf_fs_copy_range(struct zf_fs *fs, uint64_t src, uint64_t src_off, uint64_t dst,
			 uint64_t dst_off, size_t len)
{
	struct zf_inode *si, *di;
	struct zf_extent *ext = NULL;
	struct zf_buf rec = { 0 };
	uint32_t n = 0, i;
	ssize_t r;

	if (fs->readonly)
		return -EROFS;
	fs_lock_for_flush(fs, src); /* it flushes: stored neighbours fetched first */
	si = fs_inode(fs, src);
	di = fs_inode(fs, dst);
	if (!si || !di) {
		r = -ENOENT;
		goto out;
	}
	if (!S_ISREG(si->mode) || !S_ISREG(di->mode)) {
		r = S_ISDIR(si->mode) || S_ISDIR(di->mode) ? -EISDIR : -EINVAL;
		goto out;
	}
	r = fs_file_flush(fs, si, 0);
	if (r == 0 && di != si)
		r = fs_file_flush(fs, di, 0);
	if (r < 0)
		goto out;
	if (src_off >= si->size || len == 0) {
		r = 0;
		goto out;
	}
	if (len > si->size - src_off)
		len = si->size - src_off;
	if (dst_off + len < dst_off) {
		r = -EFBIG;
		goto out;
	}
	{
		struct zf_file *f = si->u.file;
		uint64_t end = src_off + len;

		ext = zf_malloc((f->n + 1) * sizeof(*ext));
		for (i = ext_first_after_pub(f, src_off); i < f->n && f->ext[i].off < end; i++) {
			struct zf_extent e = f->ext[i];
			uint64_t a = e.off > src_off ? e.off : src_off;
			uint64_t b = e.off + e.len < end ? e.off + e.len : end;

			e.coff += a - e.off;
			e.len = b - a;
			e.off = a - src_off + dst_off;
			ext[n++] = e;
		}
	}
	rec_extents(&rec, di->ino, dst_off, dst_off + len, ext, n);
	fs_do(fs, ZF_REC_EXTENTS, &rec);
	if (dst_off + len > di->size)
		di->size = dst_off + len;
	touch_mc(di);
	rec.len = 0;
	rec_inode(&rec, di);
	fs_do(fs, ZF_REC_INODE, &rec);
	fs_txn_end(fs);
	r = len;
out:
	free(ext);
	zf_buf_free(&rec);
	fs_unlock(fs);
	return r;
}
