/*
 * storage/fs_chunk.c - flushing buffered writes into chunks: content-defined
 * re-chunking of only the changed region, dedup against known chunks, and
 * the EXTENTS and INODE records of the new mapping.
 *
 * A flush re-chunks from the start of the chunk containing the first changed
 * byte and stops as soon as a cut point falls on an old extent boundary
 * past the change (the content-defined boundaries resynchronise), so an
 * overwrite in the middle of a large file touches a chunk or two. While a
 * file is being appended, the bytes after its last cut point stay buffered
 * (keep_tail) so streaming writes are chunked exactly once. All-zero chunks
 * become holes. New chunks go into the filling pack (fs_pipe.h).
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
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "storage/fs_internal.h"
#include "storage/meta_format.h"

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
	r = fs_stored_read(fs, in, buf, e->off, e->len);
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
			r = fs_stored_read(fs, in, zf_buf_grow(&w, off - r0), r0, off - r0);
			if (r < 0)
				goto out;
		}
		zf_buf_add(&w, data, len);
	}
	/* the rest of an old extent the change ends inside */
	if (i < f->n && f->ext[i].off < loaded) {
		uint64_t e = f->ext[i].off + f->ext[i].len;

		r = fs_stored_read(fs, in, zf_buf_grow(&w, e - loaded), loaded, e - loaded);
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
			if (i < f->n && f->ext[i].off == loaded && loaded - change_end < ZF_RESYNC_LIMIT) {
				uint32_t el = f->ext[i].len;

				r = fs_stored_read(fs, in, zf_buf_grow(&w, el), loaded, el);
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
		fs_dirty_write(fs, in, r0 + pos, w.p + pos, w.len - pos);
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
	fs_dirty_account(fs, wb, -(int64_t)wb->bytes);
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
			if (fs_dirty_reattach(fs, in, &d[i]) == 0)
				continue;
			fs_dirty_write(fs, in, d[i].off, d[i].data, d[i].len);
		} else if (r == 0) {
			r = rechunk(fs, in, d[i].off, d[i].data, d[i].len, kt, &end, &tail);
			if (r == 0 && tail > flushed_end)
				flushed_end = tail;
		}
		if (r < 0) /* keep what could not be chunked for a later try */
			fs_dirty_write(fs, in, d[i].off, d[i].data, d[i].len);
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
	fs_wbuf_put(fs, in);
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
