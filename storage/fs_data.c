/*
 * storage/fs_data.c - the data path: buffered writes, content-defined
 * re-chunking of only the changed region, reads through extents, holes,
 * truncation, punching, SEEK_DATA/SEEK_HOLE and chunk-sharing copies.
 *
 * A write lands in the inode's dirty buffer. A flush re-chunks from the
 * start of the chunk containing the first changed byte and stops as soon as
 * a cut point falls on an old extent boundary past the change (the
 * content-defined boundaries resynchronise), so an overwrite in the middle
 * of a large file touches a chunk or two. While a file is being appended, the
 * bytes after its last cut point stay buffered (keep_tail) so streaming
 * writes are chunked exactly once. All-zero chunks become holes.
 *
 * Size rule: an inode's logged size never covers bytes that are not yet in
 * the log (a crash shows the file as of its last flush, never zeros where
 * data was written). Any other attribute change of a dirty file flushes it
 * first (fs_ns.c).
 *
 * Locking: every function here runs under fs->lock.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "storage/fs_internal.h"
#include "storage/meta_format.h"

/* a streaming writer's buffer: one flush's worth and the tail it keeps */
#define ZF_STREAM_BUF (ZF_FLUSH_FILE_BYTES + ZF_CHUNK_MAX)

/* give up waiting for a natural resync this far past the change */
#define RESYNC_LIMIT (1u << 20)

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
static void wbuf_put(struct zf_fs *fs, struct zf_inode *in)
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

static void dirty_account(struct zf_fs *fs, struct zf_wbuf *wb, int64_t delta)
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
	dirty_account(fs, wb, -removed);
}

void fs_file_drop_dirty(struct zf_fs *fs, struct zf_inode *in, uint64_t from)
{
	dirty_punch(fs, in, from, UINT64_MAX);
	if (in->u.file->wb)
		in->u.file->wb->wsize = from; /* the caller sets the logged size */
	wbuf_put(fs, in);
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
static void dirty_write(struct zf_fs *fs, struct zf_inode *in, uint64_t off, const void *data,
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
			dirty_account(fs, wb, d->len - before);
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
	dirty_account(fs, wb, (int64_t)nd.len - old);
}

/*
 * Give a detached range back to the write buffer as it is (no copy): 0, or
 * -EEXIST when it touches a buffered range (the caller merges by copying).
 */
static int dirty_reattach(struct zf_fs *fs, struct zf_inode *in, const struct zf_dirty *nd)
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
	dirty_account(fs, wb, nd->len);
	return 0;
}

/* ------------------------------------------------------------- reading */

int fs_chunk_read(struct zf_fs *fs, const struct zf_chunk *c, uint32_t coff, uint32_t len,
		  void *dst)
{
	struct zf_sc_chunk want = { .id = c->id, .len = c->len };

	if (!zf_chunk_readable(c))
		return -EIO; /* damaged: never wrong bytes (the caller logs) */
	if (!c->sc) {
		memcpy(dst, c->pk->raw.p + c->raw_off + coff, len);
		return 0;
	}
	return zf_segstore_read_chunk(fs->seg, &c->sc->loc, &want, c->raw_off, coff, len, dst);
}

/* stored (logged) bytes of [off, off+len): extents, holes as zeros */
static int stored_read(struct zf_fs *fs, struct zf_inode *in, uint8_t *buf, uint64_t off,
		       size_t len)
{
	struct zf_file *f = in->u.file;
	uint64_t end = off + len, pos = off;
	uint32_t i;

	for (i = ext_first_after_pub(f, off); i < f->n && pos < end; i++) {
		struct zf_extent *e = &f->ext[i];
		uint64_t a, b;
		int r;

		if (e->off >= end)
			break;
		a = e->off > pos ? e->off : pos;
		b = e->off + e->len < end ? e->off + e->len : end;
		if (a > pos)
			memset(buf + (pos - off), 0, a - pos);
		r = fs_chunk_read(fs, e->c, e->coff + (a - e->off), b - a, buf + (a - off));
		if (r < 0) {
			zf_err("cannot read inode %llu at offset %llu: %s",
			       (unsigned long long)in->ino, (unsigned long long)a,
			       zf_chunk_readable(e->c) ? strerror(-r) : "damaged (marked by fsck)");
			return -EIO;
		}
		pos = b;
	}
	if (pos < end)
		memset(buf + (pos - off), 0, end - pos);
	return 0;
}

/* one piece of a read to fetch from the segment store after unlocking */
struct read_piece {
	struct zf_sc_loc loc;
	struct zf_sc_chunk want;
	uint32_t chunk_off, coff, len;
	uint8_t *dst;
};

/*
 * Plan a read of stored bytes without buffered data in the way: holes and
 * packer bytes are filled now (under fs->lock), super-chunk bytes become
 * pieces fetched later without the lock. Segments are immutable and chunk
 * locations only change through gc; a piece whose segment gc removed
 * meanwhile fails with -ENOENT and zf_fs_read() plans again (fs->seg_gen).
 */
static ssize_t plan_read(struct zf_fs *fs, struct zf_inode *in, uint8_t *buf, uint64_t off,
			 size_t len, struct read_piece **ret_pieces)
{
	struct zf_file *f = in->u.file;
	struct read_piece *p = NULL;
	uint64_t end = off + len, pos = off;
	size_t n = 0, cap = 0;
	uint32_t i;

	for (i = ext_first_after_pub(f, off); i < f->n && pos < end; i++) {
		struct zf_extent *e = &f->ext[i];
		uint64_t a, b;

		if (e->off >= end)
			break;
		a = e->off > pos ? e->off : pos;
		b = e->off + e->len < end ? e->off + e->len : end;
		if (a > pos)
			memset(buf + (pos - off), 0, a - pos);
		if (!zf_chunk_readable(e->c)) {
			zf_err("cannot read inode %llu at offset %llu: damaged (marked by fsck)",
			       (unsigned long long)in->ino, (unsigned long long)a);
			free(p);
			return -EIO;
		}
		if (!e->c->sc) {
			memcpy(buf + (a - off), e->c->pk->raw.p + e->c->raw_off + e->coff + (a - e->off),
			       b - a);
		} else {
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				p = zf_realloc(p, cap * sizeof(*p));
			}
			p[n].loc = e->c->sc->loc;
			p[n].want.id = e->c->id;
			p[n].want.len = e->c->len;
			p[n].chunk_off = e->c->raw_off;
			p[n].coff = e->coff + (a - e->off);
			p[n].len = b - a;
			p[n].dst = buf + (a - off);
			n++;
		}
		pos = b;
	}
	if (pos < end)
		memset(buf + (pos - off), 0, end - pos);
	*ret_pieces = p;
	return n;
}

static int dirty_overlaps(const struct zf_file *f, uint64_t off, size_t len)
{
	uint32_t i;

	for (i = 0; f->wb && i < f->wb->n; i++)
		if (f->wb->v[i].off < off + len && f->wb->v[i].off + f->wb->v[i].len > off)
			return 1;
	return 0;
}

/*
 * Read-ahead of local data: a reader that continues where the last read
 * ended gets the super-chunks of the next ZF_RA_BYTES of the file
 * decompressed by the pipeline's workers while the kernel copies this
 * reply, so a sequential reader of compressed data uses every core. At
 * most ZF_RA_MAX super-chunks are asked for per read (fs->lock held).
 */
#define ZF_RA_BYTES (2 * ZF_PACK_BYTES)
#define ZF_RA_MAX 4

static size_t plan_readahead(struct zf_file *f, uint64_t off, size_t len,
			     struct zf_sc_loc *ret_locs)
{
	uint64_t end = off + len, until = end + ZF_RA_BYTES;
	size_t n = 0;
	uint32_t i;

	if (off != f->ra_next) {
		f->ra_next = end;
		f->ra_until = end;
		return 0; /* not sequential (yet) */
	}
	f->ra_next = end;
	if (f->ra_until < end)
		f->ra_until = end;
	if (f->ra_until >= until)
		return 0;
	for (i = ext_first_after_pub(f, f->ra_until); i < f->n && n < ZF_RA_MAX; i++) {
		const struct zf_extent *e = &f->ext[i];

		if (e->off >= until)
			break;
		if (!e->c->sc || (n && ret_locs[n - 1].seg == e->c->sc->loc.seg &&
				  ret_locs[n - 1].off == e->c->sc->loc.off))
			continue;
		ret_locs[n++] = e->c->sc->loc;
	}
	f->ra_until = i < f->n && n == ZF_RA_MAX ? f->ext[i].off : until;
	return n;
}

/* ------------------------------------------- fetching before the lock */

/*
 * Stored bytes that a flush or a read of buffered data reads under fs->lock
 * (stored_read) are first brought into the segment store's cache without
 * it: a slow disk or an object store that stalls holds up only the caller,
 * never every other operation (DESIGN.md invariant 7). The cache may drop
 * them again before the lock is retaken; the operation then reads them
 * under the lock, which is correct, only not concurrent.
 */
#define ZF_WARM_MAX 16	/* super-chunks warmed per try: 64 MiB, the default cache */

/* super-chunks of the extents meeting [a, b) that are not cached (fs->lock) */
static size_t warm_range(struct zf_fs *fs, const struct zf_file *f, uint64_t a, uint64_t b,
			 struct zf_sc_loc *locs, size_t n)
{
	uint32_t i;

	for (i = ext_first_after_pub(f, a); i < f->n && f->ext[i].off < b && n < ZF_WARM_MAX; i++) {
		const struct zf_chunk *c = f->ext[i].c;

		if (!c->sc || !zf_chunk_readable(c) || zf_segstore_cached(fs->seg, &c->sc->loc) ||
		    (n && locs[n - 1].seg == c->sc->loc.seg && locs[n - 1].off == c->sc->loc.off))
			continue;
		locs[n++] = c->sc->loc;
	}
	return n;
}

/* ... of what a flush of in may read: around each buffered range, the chunk
 * before it, and up to RESYNC_LIMIT after it (fs->lock held) */
static size_t warm_flush(struct zf_fs *fs, const struct zf_inode *in, struct zf_sc_loc *locs)
{
	const struct zf_file *f = in->u.file;
	size_t n = 0;
	uint32_t i;

	for (i = 0; f->wb && i < f->wb->n; i++) {
		const struct zf_dirty *d = &f->wb->v[i];
		uint32_t e = ext_first_after_pub(f, d->off);
		uint64_t a = d->off;

		/* the chunk before, if rechunk() starts there (an append after a
		 * cut that was not content-defined, or a change in the middle) */
		if (e > 0 && f->ext[e - 1].off + f->ext[e - 1].len == d->off &&
		    (e < f->n || f->tail_cut))
			a = f->ext[e - 1].off;
		n = warm_range(fs, f, a, d->off + d->len + RESYNC_LIMIT + ZF_CHUNK_MAX, locs, n);
	}
	return n;
}

/*
 * Take fs->lock for an operation that reads stored bytes: while what it
 * would read is not cached (want() names it, under the lock), fetch that
 * unlocked and look again (twice at most, and not after a failed fetch).
 * Returns with fs->lock held.
 */
static void lock_warm(struct zf_fs *fs, size_t (*want)(struct zf_fs *, struct zf_sc_loc *,
							const void *),
		      const void *arg)
{
	struct zf_sc_loc locs[ZF_WARM_MAX];
	unsigned int tries;
	size_t n, i;
	int failed = 0;

	for (tries = 0;; tries++) {
		fs_lock(fs);
		if (tries == 2 || failed || !(n = want(fs, locs, arg)))
			return;
		fs_unlock(fs);
		/* errors (the bucket is unreachable): the operation meets them
		 * again under the lock, where the fetch hook refuses to wait */
		for (i = 0; i < n; i++)
			failed |= zf_segstore_prefetch(fs->seg, &locs[i], ZF_PREFETCH_WAIT) < 0;
	}
}

/* the regular file ino, or NULL */
static const struct zf_inode *reg_inode(struct zf_fs *fs, uint64_t ino)
{
	const struct zf_inode *in = fs_inode(fs, ino);

	return in && S_ISREG(in->mode) ? in : NULL;
}

static size_t want_flush(struct zf_fs *fs, struct zf_sc_loc *locs, const void *arg)
{
	const struct zf_inode *in = reg_inode(fs, *(const uint64_t *)arg);

	return in ? warm_flush(fs, in, locs) : 0;
}

static size_t want_flush_all(struct zf_fs *fs, struct zf_sc_loc *locs, const void *arg)
{
	struct zf_inode *in;
	size_t n = 0, k, i;

	(void)arg;
	for (in = fs->dirty_files; in && n < ZF_WARM_MAX; in = in->u.file->wb->next) {
		struct zf_sc_loc more[ZF_WARM_MAX];

		k = warm_flush(fs, in, more);
		for (i = 0; i < k && n < ZF_WARM_MAX; i++)
			locs[n++] = more[i];
	}
	return n;
}

/* a read [off, off+len) of ino that overlaps buffered data reads the rest stored */
struct read_span {
	uint64_t ino, off, len;
};

static size_t want_read(struct zf_fs *fs, struct zf_sc_loc *locs, const void *arg)
{
	const struct read_span *s = arg;
	const struct zf_inode *in = reg_inode(fs, s->ino);

	if (!in || !dirty_overlaps(in->u.file, s->off, s->len))
		return 0; /* plan_read() reads without the lock */
	return warm_range(fs, in->u.file, s->off, s->off + s->len, locs, 0);
}

/* fs->lock for a flush of ino, its stored neighbours cached */
void fs_lock_for_flush(struct zf_fs *fs, uint64_t ino)
{
	lock_warm(fs, want_flush, &ino);
}

void fs_lock_for_flush_all(struct zf_fs *fs)
{
	lock_warm(fs, want_flush_all, NULL);
}

/* has gc removed a segment file since gen was read? */
static int seg_gen_moved(struct zf_fs *fs, uint64_t gen)
{
	int moved;

	fs_lock(fs);
	moved = fs->seg_gen != gen;
	fs_unlock(fs);
	return moved;
}

ssize_t zf_fs_read(struct zf_fs *fs, uint64_t ino, void *buf, size_t len, uint64_t off)
{
	struct read_piece *pieces = NULL;
	struct zf_sc_loc ra[ZF_RA_MAX];
	size_t nra = 0;
	struct zf_inode *in;
	struct zf_file *f;
	size_t npieces = 0, k;
	uint64_t size, gen;
	unsigned int tries = 0;
	ssize_t r;
	uint32_t i;

again:
	{
		struct read_span span = { ino, off, len };

		lock_warm(fs, want_read, &span);
	}
	gen = fs->seg_gen;
	in = fs_inode(fs, ino);
	if (!in) {
		r = -ENOENT;
		goto out;
	}
	if (!S_ISREG(in->mode)) {
		r = S_ISDIR(in->mode) ? -EISDIR : -EINVAL;
		goto out;
	}
	f = in->u.file;
	size = fs_isize(in);
	if (off >= size) {
		r = 0;
		goto out;
	}
	if (len > size - off)
		len = size - off;
	r = len;
	if (!dirty_overlaps(f, off, len)) {
		/* the common case: fetch stored bytes after dropping the lock */
		ssize_t n = plan_read(fs, in, buf, off, len, &pieces);

		if (n < 0)
			r = n;
		else
			npieces = n;
		if (n > 0 && fs_pipe_get(fs))
			nra = plan_readahead(f, off, len, ra);
		goto out;
	}
	/* logged bytes beyond the logged size are none: zeros until overlaid */
	if (off < in->size) {
		size_t sl = off + len <= in->size ? len : in->size - off;

		r = stored_read(fs, in, buf, off, sl);
		if (r < 0)
			goto out;
		if (sl < len)
			memset((uint8_t *)buf + sl, 0, len - sl);
	} else {
		memset(buf, 0, len);
	}
	for (i = 0; f->wb && i < f->wb->n; i++) {
		struct zf_dirty *d = &f->wb->v[i];
		uint64_t a = d->off > off ? d->off : off;
		uint64_t b = d->off + d->len < off + len ? d->off + d->len : off + len;

		if (a < b)
			memcpy((uint8_t *)buf + (a - off), d->data + (a - d->off), b - a);
	}
	r = len;
out:
	fs_unlock(fs);
	for (k = 0; k < nra; k++)
		fs_pipe_readahead(fs, &ra[k]);
	for (k = 0; k < npieces && r >= 0; k++) {
		struct read_piece *p = &pieces[k];
		int e = zf_segstore_read_chunk(fs->seg, &p->loc, &p->want, p->chunk_off, p->coff,
					       p->len, p->dst);

		if (e == -ENOENT && tries < 3 && seg_gen_moved(fs, gen)) {
			/* gc moved the chunk and removed its old segment: plan again */
			free(pieces);
			pieces = NULL;
			npieces = 0;
			tries++;
			goto again;
		}
		if (e < 0) {
			zf_err("cannot read inode %llu at offset %llu: %s", (unsigned long long)ino,
			       (unsigned long long)(off + (p->dst - (uint8_t *)buf)), strerror(-e));
			r = -EIO;
		}
	}
	free(pieces);
	return r;
}

/* ------------------------------------------------------------ chunking */

static int all_zero(const uint8_t *p, size_t len)
{
	static const uint8_t zero[4096];

	while (len >= sizeof(zero)) {
		if (memcmp(p, zero, sizeof(zero)))
			return 0;
		p += sizeof(zero);
		len -= sizeof(zero);
	}
	return memcmp(p, zero, len) == 0;
}

/* look up or create the chunk for bytes p[0..len) (new ones go to the packer) */
static int chunk_get(struct zf_fs *fs, const uint8_t *p, uint32_t len, struct zf_chunk **ret)
{
	struct zf_pack *pk;
	struct zf_chunk_id id;
	struct zf_chunk *c;
	int r;

	zf_chunker_id(fs->chunker, p, len, &id);
	c = fs_chunk_find(fs, &id);
	if (c && c->len != len && !(c->flags & ZF_CHUNK_LOST)) {
		zf_err("chunk id collision or corrupt index (length %u vs %u)", c->len, len);
		return -EIO;
	}
	if (c && zf_chunk_readable(c)) {
		*ret = c;
		return 0;
	}
	if (fs->pack && fs->pack->n && fs->pack->raw.len + len > ZF_PACK_BYTES) {
		r = fs_pack_submit(fs);
		if (r < 0)
			return r;
	}
	pk = fs_pack_cur(fs);
	if (c) {
		/*
		 * A damaged chunk is never shared: these bytes are a fresh copy,
		 * and the SC record that stores them heals it, for every file
		 * that maps it (same id, same bytes). Until then it is in the
		 * packer like a new chunk.
		 */
		fs_chunk_unlocate(fs, c);
		c->flags = 0;
	} else {
		c = zf_calloc(1, sizeof(*c));
		c->id = id;
		c->ckpt_refs = UINT32_MAX;
		zf_htab_insert(&fs->chunks, zf_get64_id(&id), c);
	}
	c->len = len;
	c->raw_off = pk->raw.len;
	c->pk = pk;
	zf_buf_add(&pk->raw, p, len);
	if (pk->n == pk->cap) {
		pk->cap = pk->cap ? pk->cap * 2 : 64;
		pk->chunks = zf_realloc(pk->chunks, pk->cap * sizeof(*pk->chunks));
	}
	pk->chunks[pk->n++] = c;
	*ret = c;
	return 0;
}

struct rechunk_out {
	struct zf_extent *ext;
	uint32_t n, cap;
};

static int emit(struct zf_fs *fs, struct rechunk_out *o, const uint8_t *p, uint32_t len,
		uint64_t abs)
{
	struct zf_chunk *c;
	int r;

	if (all_zero(p, len))
		return 0; /* a hole: stores nothing */
	r = chunk_get(fs, p, len, &c);
	if (r < 0)
		return r;
	if (o->n == o->cap) {
		o->cap = o->cap ? o->cap * 2 : 16;
		o->ext = zf_realloc(o->ext, o->cap * sizeof(*o->ext));
	}
	o->ext[o->n++] = (struct zf_extent){ .off = abs, .len = len, .coff = 0, .c = c };
	return 0;
}

/* does extent e end at a content-defined cut (not one forced by the end of
 * the data a flush had, e.g. before a gap that writes arriving out of order
 * fill later)? */
static int content_cut(struct zf_fs *fs, struct zf_inode *in, const struct zf_extent *e)
{
	uint8_t *buf;
	int r;

	if (e->coff || e->len != e->c->len)
		return 0;
	buf = zf_malloc(e->len);
	r = stored_read(fs, in, buf, e->off, e->len);
	r = r < 0 || zf_chunker_cut(fs->chunker, buf, e->len, 0) == e->len;
	free(buf);
	return r;
}

/*
 * Re-chunk the file around the new bytes data[0..len) at off and replace the
 * mapping of the region. With keep_tail, bytes after the last cut point that
 * reaches past the old data are not chunked: *ret_tail is where they start
 * (else the region's end). *ret_end is the end of the remapped region.
 */
static int rechunk(struct zf_fs *fs, struct zf_inode *in, uint64_t off, const uint8_t *data,
		   size_t len, int keep_tail, uint64_t *ret_end, uint64_t *ret_tail)
{
	struct zf_file *f = in->u.file;
	struct rechunk_out o = { 0 };
	struct zf_buf w = { 0 }, rec = { 0 };
	uint64_t r0 = off, loaded, change_end = off + len;
	size_t pos = 0;
	int at_eof = 0, r = 0, tail = 0, borrowed = 0;
	uint32_t i;

	i = ext_first_after_pub(f, off);
	if (i < f->n && f->ext[i].off <= off)
		r0 = f->ext[i].off;
	else if (i > 0 && f->ext[i - 1].off + f->ext[i - 1].len == off &&
		 (i == f->n ? f->tail_cut : !content_cut(fs, in, &f->ext[i - 1])))
		r0 = f->ext[i - 1].off; /* the chunk before was cut where the data ended */
	loaded = change_end;
	i = ext_first_after_pub(f, loaded);
	if (r0 == off && i == f->n) {
		/* appending past all old data: chunk the caller's bytes in place */
		w.p = (uint8_t *)data;
		w.len = len;
		borrowed = 1;
	} else {
		if (r0 < off) {
			r = stored_read(fs, in, zf_buf_grow(&w, off - r0), r0, off - r0);
			if (r < 0)
				goto out;
		}
		zf_buf_add(&w, data, len);
	}
	/* the rest of an old extent the change ends inside */
	if (i < f->n && f->ext[i].off < loaded) {
		uint64_t e = f->ext[i].off + f->ext[i].len;

		r = stored_read(fs, in, zf_buf_grow(&w, e - loaded), loaded, e - loaded);
		if (r < 0)
			goto out;
		loaded = e;
	}
	for (;;) {
		size_t cut = zf_chunker_cut(fs->chunker, w.p + pos, w.len - pos, at_eof);

		if (cut == 0) {
			if (w.len == pos)
				break;
			i = ext_first_after_pub(f, loaded);
			if (i < f->n && f->ext[i].off == loaded && loaded - change_end < RESYNC_LIMIT) {
				uint32_t el = f->ext[i].len;

				r = stored_read(fs, in, zf_buf_grow(&w, el), loaded, el);
				if (r < 0)
					goto out;
				loaded += el;
				continue;
			}
			if (keep_tail && i == f->n) {
				tail = 1;
				break;
			}
			at_eof = 1; /* a hole, the end of data, or no resync in sight */
			continue;
		}
		r = emit(fs, &o, w.p + pos, cut, r0 + pos);
		if (r < 0)
			goto out;
		pos += cut;
		if (pos == w.len && (r0 + pos >= change_end || at_eof))
			break;
	}
	if (pos) {
		rec_extents(&rec, in->ino, r0, r0 + pos, o.ext, o.n);
		fs_do(fs, ZF_REC_EXTENTS, &rec);
		/* a cut at the end of data is not content-defined: redo it later;
		 * one before a kept tail is (and ends the file's extents) */
		if (tail)
			f->tail_cut = 0;
		else if (r0 + pos >= fs_isize(in) || at_eof)
			f->tail_cut = at_eof;
	}
	*ret_end = r0 + pos;
	*ret_tail = tail ? r0 + pos : *ret_end;
	if (tail && pos < w.len) {
		/* hand the unchunked tail back to the dirty buffer */
		dirty_write(fs, in, r0 + pos, w.p + pos, w.len - pos);
	}
out:
	free(o.ext);
	if (!borrowed)
		zf_buf_free(&w);
	zf_buf_free(&rec);
	return r;
}

int fs_file_flush(struct zf_fs *fs, struct zf_inode *in, int keep_tail)
{
	struct zf_wbuf *wb = in->u.file->wb;
	struct zf_dirty *d;
	uint64_t flushed_end = 0, end, tail, wsize;
	struct zf_buf rec = { 0 };
	uint32_t nd, i;
	int r = 0;

	if (!wb || !wb->n)
		return 0;
	/* detach the buffered extents: rechunk() may hand a tail back */
	d = wb->v;
	nd = wb->n;
	wsize = wb->wsize;
	wb->v = NULL;
	wb->n = wb->cap = 0;
	dirty_account(fs, wb, -(int64_t)wb->bytes);
	for (i = 0; i < nd; i++) {
		/*
		 * A threshold flush keeps the unterminated tail of the last
		 * range (an append goes on) and of every range before a gap:
		 * with the kernel's writeback cache and several daemon threads,
		 * a sequential copy's writes arrive out of order, and a cut at
		 * a gap that the next write fills would be redone then,
		 * leaving the first chunk behind as garbage.
		 */
		int kt = i < nd - 1 ? keep_tail != ZF_FLUSH_ALL
				    : keep_tail == ZF_FLUSH_KEEP_TAILS && d[i].off + d[i].len == wsize;
		uint64_t prev_end = i ? d[i - 1].off + d[i - 1].len : in->size;

		if (r == 0 && keep_tail == ZF_FLUSH_KEEP_TAILS && d[i].off > in->size &&
		    d[i].off > prev_end) {
			/* past a gap at the end of the file: its start is no cut
			 * either, so it waits for the gap to fill (a writer's
			 * flush only: a periodic one logs it, so that a sparse
			 * writer's data never waits for more than a commit) */
			if (dirty_reattach(fs, in, &d[i]) == 0)
				continue;
			dirty_write(fs, in, d[i].off, d[i].data, d[i].len);
		} else if (r == 0) {
			r = rechunk(fs, in, d[i].off, d[i].data, d[i].len, kt, &end, &tail);
			if (r == 0 && tail > flushed_end)
				flushed_end = tail;
		}
		if (r < 0) /* keep what could not be chunked for a later try */
			dirty_write(fs, in, d[i].off, d[i].data, d[i].len);
		if (d[i].cap == ZF_STREAM_BUF && !fs->spare_buf)
			fs->spare_buf = d[i].data; /* the next streaming buffer */
		else
			free(d[i].data);
	}
	free(d);
	if (flushed_end || !wb->n) {
		/* never log a size that covers bytes the log does not hold */
		uint64_t logged = wb->n ? flushed_end : wsize;

		if (logged > in->size)
			in->size = logged;
		if (!wb->n)
			in->size = wsize;
		rec_inode(&rec, in);
		fs_do(fs, ZF_REC_INODE, &rec);
		zf_buf_free(&rec);
	}
	wbuf_put(fs, in);
	fs_txn_end(fs);
	return r;
}

/*
 * How long after its last write a file counts as being written: a sync
 * then leaves the tails before its gaps buffered, since the writes that
 * fill them are in flight (fs_file_flush). Well below a commit interval, so
 * such bytes reach the log at the next one when the writer has stopped.
 */
#define ZF_WRITING_NS 1000000000ull

int fs_flush_all(struct zf_fs *fs, int keep_gaps)
{
	struct zf_inode **v, *in;
	uint64_t now = zf_mono_ns();
	size_t n = 0, i;
	int r = 0;

	if (!keep_gaps) {
		while (fs->dirty_files && r == 0)
			r = fs_file_flush(fs, fs->dirty_files, ZF_FLUSH_ALL);
		return r;
	}
	/* a file that keeps a tail stays on the list: go through it once */
	for (in = fs->dirty_files; in; in = in->u.file->wb->next)
		n++;
	v = zf_malloc((n ? n : 1) * sizeof(*v));
	for (n = 0, in = fs->dirty_files; in; in = in->u.file->wb->next)
		v[n++] = in;
	for (i = 0; i < n && r == 0; i++)
		r = fs_file_flush(fs, v[i],
				  now - v[i]->u.file->wb->last < ZF_WRITING_NS ? ZF_FLUSH_KEEP_GAPS
									      : ZF_FLUSH_ALL);
	free(v);
	return r;
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
	in = fs_inode(fs, ino);
	if (!in) {
		r = -ENOENT;
		goto out;
	}
	if (!S_ISREG(in->mode)) {
		r = S_ISDIR(in->mode) ? -EISDIR : -EINVAL;
		goto out;
	}
	if (len == 0) {
		r = 0;
		goto out;
	}
	r = space_admit(fs, len);
	if (r < 0)
		goto out;
	dirty_write(fs, in, off, buf, len);
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

int zf_fs_flush(struct zf_fs *fs, uint64_t ino)
{
	struct zf_inode *in;
	int r = 0;

	fs_lock_for_flush(fs, ino);
	in = fs_inode(fs, ino);
	if (in && S_ISREG(in->mode))
		r = fs_file_flush(fs, in, 0);
	fs_unlock(fs);
	return r;
}

/* ------------------------------------------------- truncate, punch, seek */

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
