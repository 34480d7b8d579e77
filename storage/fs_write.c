/*
 * storage/fs_write.c - buffered writes: a write lands in the inode's dirty
 * buffer (sorted, merged ranges; fs_internal.h struct zf_wbuf) and is
 * chunked later by a flush (fs_chunk.c), when the file has
 * ZF_FLUSH_FILE_BYTES buffered, when all files together pass their budget
 * (biggest writer first), or at fsync, close and commit.
 *
 * Space admission: on a full dev-dir a write fails with ENOSPC at write(2)
 * time, not at close or in a later flush: every buffered byte plus room for
 * the log and a checkpoint must fit the free space.
 *
 * Locking: every function here runs under fs->lock, except zf_fs_write's
 * admission hook and its throttle, which wait without it.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "common/log.h"
#include "common/util.h"
#include "storage/fs_internal.h"

/* ------------------------------------------------------------ dirty data */

/* the file's write buffer, created (and put on the dirty list) on demand */
static struct zf_wbuf *wbuf_get(struct zf_fs *fs, struct zf_inode *in)
{
	struct zf_file *f = in->u.file;
	struct zf_wbuf *wb = f->wb;

	if (wb)
		return wb;
	wb = zf_calloc(1, sizeof(*wb));
	wb->since = zf_mono_ns();
	wb->wsize = in->size;
	wb->next = fs->dirty_files;
	if (fs->dirty_files)
		fs->dirty_files->u.file->wb->prev = in;
	fs->dirty_files = in;
	f->wb = wb;
	return wb;
}

/* drop an empty write buffer; the logged size is the size again */
void fs_wbuf_put(struct zf_fs *fs, struct zf_inode *in)
{
	struct zf_wbuf *wb = in->u.file->wb;

	if (!wb || wb->n)
		return;
	if (wb->prev)
		wb->prev->u.file->wb->next = wb->next;
	else
		fs->dirty_files = wb->next;
	if (wb->next)
		wb->next->u.file->wb->prev = wb->prev;
	free(wb->v);
	free(wb);
	in->u.file->wb = NULL;
}

void fs_dirty_account(struct zf_fs *fs, struct zf_wbuf *wb, int64_t delta)
{
	wb->bytes += delta;
	fs->dirty_bytes += delta;
}

/* remove buffered bytes in [a, b) */
static void dirty_punch(struct zf_fs *fs, struct zf_inode *in, uint64_t a, uint64_t b)
{
	struct zf_wbuf *wb = in->u.file->wb;
	uint32_t i = 0;
	int64_t removed = 0;

	if (!wb)
		return;
	while (i < wb->n) {
		struct zf_dirty *d = &wb->v[i];
		uint64_t dend = d->off + d->len;

		if (dend <= a || d->off >= b) {
			i++;
			continue;
		}
		if (d->off < a && dend > b) {
			/* split: the right part becomes its own extent */
			struct zf_dirty r = { .off = b, .len = dend - b, .cap = dend - b };

			r.data = zf_malloc(r.len);
			memcpy(r.data, d->data + (b - d->off), r.len);
			removed += b - a;
			d->len = a - d->off;
			wb->v = zf_realloc(wb->v, (wb->n + 1) * sizeof(*wb->v));
			memmove(wb->v + i + 2, wb->v + i + 1, (wb->n - i - 1) * sizeof(*wb->v));
			wb->v[i + 1] = r;
			wb->n++;
			wb->cap = wb->n;
			i += 2;
		} else if (d->off < a) {
			removed += dend - a;
			d->len = a - d->off;
			i++;
		} else if (dend > b) {
			removed += b - d->off;
			memmove(d->data, d->data + (b - d->off), dend - b);
			d->len = dend - b;
			d->off = b;
			i++;
		} else {
			removed += d->len;
			free(d->data);
			memmove(d, d + 1, (wb->n - i - 1) * sizeof(*d));
			wb->n--;
		}
	}
	fs_dirty_account(fs, wb, -removed);
}

void fs_file_drop_dirty(struct zf_fs *fs, struct zf_inode *in, uint64_t from)
{
	dirty_punch(fs, in, from, UINT64_MAX);
	if (in->u.file->wb)
		in->u.file->wb->wsize = from; /* the caller sets the logged size */
	fs_wbuf_put(fs, in);
}

/*
 * Capacity for a buffered range of need bytes: 64 KiB at least; past 1 MiB,
 * a streaming writer's whole flush at once, not a copy per doubling.
 */
static size_t dirty_cap(size_t need)
{
	if (need < (64u << 10))
		return 64u << 10;
	if (need > (1u << 20) && need <= ZF_STREAM_BUF)
		return ZF_STREAM_BUF;
	return need;
}

/* a buffer of cap bytes: the spare streaming buffer when it is one (its
 * pages were touched by an earlier flush), else a new one */
static uint8_t *dirty_alloc(struct zf_fs *fs, size_t cap)
{
	uint8_t *p = fs->spare_buf;

	if (cap != ZF_STREAM_BUF || !p)
		return zf_malloc(cap);
	fs->spare_buf = NULL;
	return p;
}

/* put data at off into the dirty buffer, merging touching extents */
void fs_dirty_write(struct zf_fs *fs, struct zf_inode *in, uint64_t off, const void *data,
		    size_t len)
{
	struct zf_wbuf *wb = wbuf_get(fs, in);
	uint64_t end = off + len, lo = off, hi = end;
	uint32_t i, j, k;
	struct zf_dirty *d, nd;
	int64_t old = 0;

	/* fast path: appending to, or overwriting inside, the last extent */
	if (wb->n) {
		d = &wb->v[wb->n - 1];
		if (off >= d->off && off <= d->off + d->len) {
			uint64_t before = d->len;

			if (end > d->off + d->cap) {
				size_t cap = d->cap;

				while (end > d->off + cap)
					cap *= 2;
				d->cap = dirty_cap(cap);
				if (d->cap == ZF_STREAM_BUF && fs->spare_buf) {
					uint8_t *p = dirty_alloc(fs, d->cap);

					memcpy(p, d->data, d->len);
					free(d->data);
					d->data = p;
				} else {
					d->data = zf_realloc(d->data, d->cap);
				}
			}
			memcpy(d->data + (off - d->off), data, len);
			if (end - d->off > d->len)
				d->len = end - d->off;
			fs_dirty_account(fs, wb, d->len - before);
			return;
		}
	}
	/* extents [i, j) overlap or touch [off, end) */
	for (i = 0; i < wb->n && wb->v[i].off + wb->v[i].len < off; i++)
		;
	for (j = i; j < wb->n && wb->v[j].off <= end; j++) {
		if (wb->v[j].off < lo)
			lo = wb->v[j].off;
		if (wb->v[j].off + wb->v[j].len > hi)
			hi = wb->v[j].off + wb->v[j].len;
	}
	nd.off = lo;
	nd.len = hi - lo;
	k = i;
	if (j > i && wb->v[i].off == lo && wb->v[i].cap >= nd.len) {
		/* a write filling a gap after a big range: extend it in place */
		nd.cap = wb->v[i].cap;
		nd.data = wb->v[i].data;
		old += wb->v[i].len;
		k = i + 1;
	} else {
		nd.cap = dirty_cap(nd.len);
		nd.data = dirty_alloc(fs, nd.cap);
	}
	for (; k < j; k++) {
		d = &wb->v[k];
		memcpy(nd.data + (d->off - lo), d->data, d->len);
		old += d->len;
		free(d->data);
	}
	memcpy(nd.data + (off - lo), data, len);
	if (j == i) {
		wb->v = zf_realloc(wb->v, (wb->n + 1) * sizeof(*wb->v));
		if (wb->n > i)
			memmove(wb->v + i + 1, wb->v + i, (wb->n - i) * sizeof(*wb->v));
		wb->n++;
	} else {
		memmove(wb->v + i + 1, wb->v + j, (wb->n - j) * sizeof(*wb->v));
		wb->n -= j - i - 1;
	}
	wb->v[i] = nd;
	fs_dirty_account(fs, wb, (int64_t)nd.len - old);
}

/*
 * Give a detached range back to the write buffer as it is (no copy): 0, or
 * -EEXIST when it touches a buffered range (the caller merges by copying).
 */
int fs_dirty_reattach(struct zf_fs *fs, struct zf_inode *in, const struct zf_dirty *nd)
{
	struct zf_wbuf *wb = wbuf_get(fs, in);
	uint32_t i;

	for (i = 0; i < wb->n && wb->v[i].off + wb->v[i].len < nd->off; i++)
		;
	if (i < wb->n && wb->v[i].off <= nd->off + nd->len)
		return -EEXIST;
	wb->v = zf_realloc(wb->v, (wb->n + 1) * sizeof(*wb->v));
	memmove(wb->v + i + 1, wb->v + i, (wb->n - i) * sizeof(*wb->v));
	wb->v[i] = *nd;
	wb->n++;
	wb->cap = wb->n;
	fs_dirty_account(fs, wb, nd->len);
	return 0;
}

/* keep buffered data under its budget: flush the biggest writers first */
static int dirty_balance(struct zf_fs *fs)
{
	int r = 0;

	while (fs->dirty_bytes > fs->dirty_limit && r == 0) {
		struct zf_inode *in, *big = fs->dirty_files;

		for (in = fs->dirty_files; in; in = in->u.file->wb->next)
			if (in->u.file->wb->bytes > big->u.file->wb->bytes)
				big = in;
		r = fs_file_flush(fs, big, 0);
	}
	return r;
}

/*
 * A full dev-dir: refuse a write the disk may not be able to keep at
 * write(2) time, not at close or in a later flush. Every buffered byte
 * (raw: an upper bound of what compression stores) plus room for the log
 * and a checkpoint must fit the free space. The free space is asked again
 * when it may be short, at most every 50 ms otherwise. fs->lock held.
 */
static uint64_t space_need(struct zf_fs *fs, uint64_t len)
{
	struct zf_pipe_stats ps;

	fs_pipe_stats(fs, &ps);
	/* the log until the next checkpoint, and the checkpoint (two of them
	 * while the new one is written) */
	return fs->dirty_bytes + (fs->pack ? fs->pack->raw.len : 0) + ps.inflight_bytes + len +
	       (8ull << 20) + 2 * (fs->inodes.n * 256 + fs->chunks.n * 64);
}

static int space_short(struct zf_fs *fs, uint64_t need)
{
	const uint64_t fresh_ns = 50 * 1000000ull;
	uint64_t now = zf_mono_ns();
	struct statvfs sv;

	if (fs->space_free >= 2 * need && now - fs->space_ns < fresh_ns)
		return 0;
	if (fstatvfs(fs->segfd, &sv) < 0)
		return 0; /* cannot tell: the append will say */
	fs->space_free = (uint64_t)sv.f_bavail * sv.f_frsize;
	fs->space_ns = now;
	return fs->space_free < need;
}

static int space_admit(struct zf_fs *fs, size_t len)
{
	uint64_t need = space_need(fs, len), now;

	if (!space_short(fs, need)) {
		if (fs->space_full)
			zf_warn("dev-dir '%s' has room again: writes accepted", fs->dev_dir);
		fs->space_full = 0;
		return 0;
	}
	now = zf_mono_ns();
	if (!fs->space_full || now - fs->space_logged_ns > 10 * 1000000000ull) {
		zf_err("dev-dir '%s' is full (%llu MiB free, %llu MiB needed for buffered "
		       "writes and metadata): writes fail with ENOSPC", fs->dev_dir,
		       (unsigned long long)(fs->space_free >> 20),
		       (unsigned long long)(need >> 20));
		fs->space_logged_ns = now;
	}
	fs->space_full = 1;
	return -ENOSPC;
}

int zf_fs_space_low(struct zf_fs *fs, uint64_t margin)
{
	int low;

	fs_lock(fs);
	low = fs->space_full || space_short(fs, space_need(fs, margin));
	fs_unlock(fs);
	return low;
}

ssize_t zf_fs_write(struct zf_fs *fs, uint64_t ino, const void *buf, size_t len, uint64_t off)
{
	struct zf_inode *in;
	struct timespec now;
	ssize_t r;

	if (fs->readonly)
		return -EROFS;
	if (off + len < off || off + len > (1ull << 60))
		return -EFBIG;
	/* backpressure: wait (unlocked) while the dev-dir has no room */
	if (fs->admit) {
		r = fs->admit(fs->admit_ctx, len);
		if (r < 0)
			return r;
	}
	fs_lock(fs);
	fs_pipe_reap(fs, 0);
	r = fs_file_inode(fs, ino, &in);
	if (r < 0)
		goto out;
	if (len == 0) {
		r = 0;
		goto out;
	}
	r = space_admit(fs, len);
	if (r < 0)
		goto out;
	fs_dirty_write(fs, in, off, buf, len);
	in->u.file->wb->last = zf_mono_ns();
	if (off + len > in->u.file->wb->wsize)
		in->u.file->wb->wsize = off + len;
	now = zf_now();
	in->mtime = in->ctime = now.tv_sec;
	in->mtime_ns = in->ctime_ns = now.tv_nsec;
	r = len;
	if (in->u.file->wb->bytes < ZF_FLUSH_FILE_BYTES && fs->dirty_bytes <= fs->dirty_limit)
		goto out;
	/* chunking the buffered bytes may read stored neighbours: fetched unlocked */
	fs_unlock(fs);
	fs_lock_for_flush(fs, ino);
	in = fs_inode(fs, ino);
	if (in && S_ISREG(in->mode) && in->u.file->wb &&
	    in->u.file->wb->bytes >= ZF_FLUSH_FILE_BYTES)
		fs_file_flush(fs, in, ZF_FLUSH_KEEP_TAILS);
	dirty_balance(fs);
	/* the bytes are buffered either way; a flush error surfaces at fsync */
out:
	fs_unlock(fs);
	/*
	 * Wait while the compression workers are behind: after buffering, so
	 * that writes enter the buffer in the order they arrived (waiting
	 * before would let later writes pass earlier ones and cut chunks at
	 * the gaps), and before replying, so that the writer slows down.
	 */
	if (r > 0)
		fs_pipe_throttle(fs);
	return r;
}
