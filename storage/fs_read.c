/*
 * storage/fs_read.c - the read path: reads through a file's extents (holes
 * as zeros, bytes still in a pack read from it, buffered bytes laid over
 * the stored ones), read-ahead for sequential readers, and fetching stored
 * bytes before fs->lock is taken.
 *
 * A read without buffered data in the way is planned under fs->lock and its
 * super-chunk bytes fetched after dropping it; one that overlaps buffered
 * data, and a flush that must read stored neighbours, first bring those
 * super-chunks into the segment store's cache without the lock
 * (fs_lock_for_flush), so a slow disk or a stalled bucket holds up only the
 * caller (DESIGN.md invariant 7).
 *
 * Locking: fs->lock as each function says; no store call that may wait
 * for the bucket is made under it.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "storage/fs_internal.h"

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
int fs_stored_read(struct zf_fs *fs, struct zf_inode *in, uint8_t *buf, uint64_t off,
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
 * (fs_stored_read) are first brought into the segment store's cache without
 * it: a slow disk or an object store that stalls holds up only the caller,
 * never every other operation (DESIGN.md invariant 7). The cache may drop
 * them again before the lock is retaken; the operation then reads them
 * under the lock, which is correct, only not concurrent.
 */
#define ZF_WARM_MAX 16	/* super-chunks warmed per try (each up to 4 MiB raw) */

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
 * before it, and up to ZF_RESYNC_LIMIT after it (fs->lock held) */
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
		n = warm_range(fs, f, a, d->off + d->len + ZF_RESYNC_LIMIT + ZF_CHUNK_MAX, locs, n);
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

/*
 * A segment is gone: did gc move its chunks since the read was planned? A
 * replica asks its writer's newer metadata first (zf_fs_set_stale).
 */
static int gone_moved(struct zf_fs *fs, uint64_t gen)
{
	if (seg_gen_moved(fs, gen))
		return 1;
	if (!fs->stale)
		return 0;
	fs->stale(fs->stale_ctx);
	return seg_gen_moved(fs, gen);
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
	r = fs_file_inode(fs, ino, &in);
	if (r < 0)
		goto out;
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

		r = fs_stored_read(fs, in, buf, off, sl);
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

		if (e == -ENOENT && tries < 3 && gone_moved(fs, gen)) {
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

