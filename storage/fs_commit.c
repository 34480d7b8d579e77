/*
 * storage/fs_commit.c - making the core's mutations durable: group commit,
 * the durable mark, checkpoints, sync and fsync.
 *
 * Commit order (invariant 1 of DESIGN.md), in fs_commit():
 *   1. the filling pack is submitted and every submitted pack is appended
 *      to the open segment and reaped (fs_pipe.c): each gets its
 *      super-chunk record before any record that references its chunks,
 *   2. zf_segstore_sync(): segment data (and new segment files) durable,
 *   3. zf_mlog_commit(): super-chunk records first, then every complete
 *      transaction, one write and one fdatasync.
 * A record never reaches the log before the data it references.
 *
 * Checkpoints are written right after a commit, when the table equals the
 * log: .tmp, fsync, rename, directory fsync; then a new log file starts and
 * older logs and checkpoints are removed.
 *
 * Locking: fs->lock held (the zf_fs_* entry points take it); the durable
 * mark's own mark_lock is taken without fs->lock or after it.
 * Format: docs/FORMAT.md "Checkpoints", "Durable mark".
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/lock.h"
#include "common/endian.h"
#include "common/log.h"
#include "common/util.h"
#include "storage/fs_internal.h"
#include "storage/meta_format.h"

int fs_commit(struct zf_fs *fs)
{
	uint64_t seq0;
	int r;

	if (fs->readonly)
		return 0;
	if (zf_mlog_pending(fs->log) == 0 && !fs->pack && !fs_pipe_pending(fs))
		return 0;
	/* every chunk a pending record references gets its super-chunk record */
	r = fs_pack_submit(fs);
	if (r == 0)
		r = fs_pipe_reap(fs, 1);
	if (r == 0)
		r = zf_segstore_sync(fs->seg);
	seq0 = zf_mlog_next_seq(fs->log);
	if (r == 0)
		r = zf_mlog_commit(fs->log);
	if (r < 0)
		return r;
	fs->durable_seq = zf_mlog_next_seq(fs->log) - 1;
	/* this batch may be the first to reference the open segment */
	if (!fs->open_seg)
		fs->open_first_seq = 0;
	else if (!fs->open_first_seq)
		fs->open_first_seq = seq0;
	fs->commits++;
	if (zf_mlog_size(fs->log) >= fs->ckpt_bytes)
		return fs_checkpoint_locked(fs);
	return 0;
}

/* ----------------------------------------------------------- checkpoints */

static int cmp_chunk_sc(const void *a, const void *b)
{
	const struct zf_chunk *x = *(struct zf_chunk *const *)a, *y = *(struct zf_chunk *const *)b;

	if (x->sc != y->sc)
		return zf_cmp_u64(&x->sc->loc.seg, &y->sc->loc.seg) ?: zf_cmp_u64(&x->sc->loc.off,
									     &y->sc->loc.off);
	return x->raw_off < y->raw_off ? -1 : x->raw_off > y->raw_off;
}

#define BAD_PER_RECORD 65536u /* 1 MiB of ids: far below the record size bound */

/* damaged chunks after the super-chunks that locate them (lost ones: nowhere) */
static int ckpt_write_bad(struct zf_fs *fs, struct zf_ckpt_writer *w, struct zf_buf *b)
{
	struct zf_hent *e;
	uint32_t n = 0;
	int r = 0;

	b->len = 0;
	zf_buf_grow(b, 4);
	zf_htab_foreach(&fs->chunks, e)
	{
		struct zf_chunk *c = e->val;

		if (zf_chunk_readable(c) || (!c->sc && !c->refs))
			continue; /* a lost chunk nothing maps any more is gone */
		memcpy(zf_buf_grow(b, ZF_CHUNK_ID_LEN), c->id.b, ZF_CHUNK_ID_LEN);
		if (++n == BAD_PER_RECORD) {
			zf_put32(b->p, n);
			r = zf_ckpt_writer_add(w, ZF_REC_CHUNK_BAD, b->p, b->len);
			if (r)
				return r;
			b->len = 4;
			n = 0;
		}
	}
	if (n) {
		zf_put32(b->p, n);
		r = zf_ckpt_writer_add(w, ZF_REC_CHUNK_BAD, b->p, b->len);
	}
	return r;
}

static int ckpt_write_chunks(struct zf_fs *fs, struct zf_ckpt_writer *w, struct zf_buf *b)
{
	struct zf_chunk **all;
	struct zf_hent *e;
	size_t n = 0, i, j;
	int r = 0;

	all = zf_malloc((fs->chunks.n ? fs->chunks.n : 1) * sizeof(*all));
	zf_htab_foreach(&fs->chunks, e)
	{
		struct zf_chunk *c = e->val;

		if (c->sc) /* lost chunks have no super-chunk: CHUNK_BAD only */
			all[n++] = c;
	}
	qsort(all, n, sizeof(*all), cmp_chunk_sc);
	for (i = 0; i < n && r == 0; i = j) {
		struct zf_sc *sc = all[i]->sc;
		uint8_t *p;

		for (j = i; j < n && all[j]->sc == sc; j++)
			;
		b->len = 0;
		p = zf_buf_grow(b, 28 + (j - i) * ZF_REC_SC_ENT_SIZE);
		zf_put64(p, sc->loc.seg);
		zf_put64(p + 8, sc->loc.off);
		zf_put32(p + 16, sc->loc.disk_len);
		zf_put32(p + 20, sc->loc.raw_len);
		zf_put32(p + 24, j - i);
		for (size_t k = i; k < j; k++) {
			uint8_t *q = p + 28 + (k - i) * ZF_REC_SC_ENT_SIZE;

			memcpy(q, all[k]->id.b, ZF_CHUNK_ID_LEN);
			zf_put32(q + 16, all[k]->raw_off);
			zf_put32(q + 20, all[k]->len);
			zf_put32(q + 24, all[k]->refs);
		}
		r = zf_ckpt_writer_add(w, ZF_REC_SC, b->p, b->len);
	}
	free(all);
	return r ? r : ckpt_write_bad(fs, w, b);
}

static int ckpt_write_inodes(struct zf_fs *fs, struct zf_ckpt_writer *w, struct zf_buf *b)
{
	struct zf_hent *e;
	int r = 0;

	/* pass 1: every inode, so that entries and extents find theirs */
	zf_htab_foreach(&fs->inodes, e)
	{
		b->len = 0;
		rec_inode(b, e->val);
		r = zf_ckpt_writer_add(w, ZF_REC_INODE, b->p, b->len);
		if (r)
			return r;
	}
	zf_htab_foreach(&fs->inodes, e)
	{
		struct zf_inode *in = e->val;
		uint32_t i;

		if (S_ISDIR(in->mode)) {
			struct zf_dir *d = in->u.dir;

			for (i = 0; i < d->nslot && r == 0; i++) {
				struct zf_dirent *de = d->slot[i];
				uint8_t *p;

				if (!de)
					continue;
				b->len = 0;
				p = zf_buf_grow(b, 18 + de->namelen);
				zf_put64(p, in->ino);
				zf_put64(p + 8, de->ino);
				zf_put16(p + 16, de->namelen);
				memcpy(p + 18, de->name, de->namelen);
				r = zf_ckpt_writer_add(w, ZF_REC_DIRENT_ADD, b->p, b->len);
			}
		} else if (S_ISREG(in->mode) && in->u.file->n) {
			b->len = 0;
			rec_extents(b, in->ino, 0, UINT64_MAX, in->u.file->ext, in->u.file->n);
			r = zf_ckpt_writer_add(w, ZF_REC_EXTENTS, b->p, b->len);
		}
		for (i = 0; i < in->nxattr && r == 0; i++) {
			struct zf_xattr *x = &in->xattr[i];
			size_t nl = strlen(x->name);
			uint8_t *p;

			b->len = 0;
			p = zf_buf_grow(b, 14 + nl + x->vlen);
			zf_put64(p, in->ino);
			zf_put16(p + 8, nl);
			zf_put32(p + 10, x->vlen);
			memcpy(p + 14, x->name, nl);
			memcpy(p + 14 + nl, x->val, x->vlen);
			r = zf_ckpt_writer_add(w, ZF_REC_XATTR_SET, b->p, b->len);
		}
		if (r)
			return r;
	}
	return 0;
}

int fs_mark_synced(struct zf_fs *fs, int exact)
{
	uint64_t seq = __atomic_load_n(&fs->durable_seq, __ATOMIC_RELAXED);
	int r = 0;

	if (fs->readonly)
		return 0;
	zf_mutex_lock(&fs->mark_lock);
	if (exact ? seq != fs->synced_seq : seq > fs->synced_seq) {
		r = zf_synced_write(fs->metafd, fs->fsid, seq, fs->synced_gen + 1);
		if (r == 0) {
			fs->synced_seq = seq;
			fs->synced_gen++;
		} else {
			zf_err("cannot write '%s/meta/%s': %s", fs->dev_dir, ZF_SYNCED_NAME,
			       strerror(-r));
		}
	}
	zf_mutex_unlock(&fs->mark_lock);
	return r;
}

int fs_checkpoint_locked(struct zf_fs *fs)
{
	struct zf_ckpt_writer *w;
	struct zf_mlog *nlog;
	struct zf_buf b = { 0 };
	uint64_t seq;
	int r;

	if (fs->readonly)
		return 0;
	r = fs_commit(fs);
	if (r < 0)
		return r;
	seq = zf_mlog_next_seq(fs->log) - 1;
	r = zf_ckpt_writer_new(fs->metafd, fs->fsid, seq, &w);
	if (r < 0)
		goto out;
	{
		uint8_t *p = zf_buf_grow(&b, 32);

		zf_put64(p, fs->next_ino);
		zf_put64(p + 8, fs->open_seg);
		zf_put64(p + 16, fs->open_end);
		zf_put64(p + 24, fs->last_sealed);
	}
	r = zf_ckpt_writer_add(w, ZF_REC_STATE, b.p, b.len);
	if (r == 0)
		r = ckpt_write_chunks(fs, w, &b);
	if (r == 0)
		r = ckpt_write_inodes(fs, w, &b);
	if (r < 0) {
		zf_ckpt_writer_abort(w);
		goto out;
	}
	r = zf_ckpt_writer_finish(w);
	if (r < 0)
		goto out;
	fs->ckpt_seq = seq;
	/* the checkpoint is durable: start a new log and drop what it covers */
	if (zf_mlog_first_seq(fs->log) <= seq) {
		r = zf_mlog_create(fs->metafd, fs->fsid, seq + 1, &nlog);
		if (r < 0)
			goto out;
		zf_mlog_close(fs->log);
		fs->log = nlog;
	}
	fs_meta_prune(fs, seq);
	fs->durable_seq = seq;
	r = fs_mark_synced(fs, 1);
out:
	if (r < 0)
		zf_err("cannot write checkpoint of '%s': %s", fs->dev_dir, strerror(-r));
	zf_buf_free(&b);
	return r;
}

int zf_fs_checkpoint(struct zf_fs *fs)
{
	int r;

	fs_lock(fs);
	r = fs_flush_all(fs, 0);
	if (r == 0)
		r = fs_checkpoint_locked(fs);
	fs_unlock(fs);
	return r;
}

/* ------------------------------------------------------------ sync */

/* flush every file (keep_gaps: see fs_flush_all) and commit */
static int sync_all(struct zf_fs *fs, int keep_gaps)
{
	int r;

	fs_lock_for_flush_all(fs);
	r = fs_flush_all(fs, keep_gaps);
	if (r == 0)
		r = fs_commit(fs);
	fs->fsyncs += !keep_gaps;
	fs_unlock(fs);
	/* the mark follows outside the lock: one small fdatasync per sync */
	if (r == 0)
		r = fs_mark_synced(fs, 0);
	return r;
}

int zf_fs_commit_periodic(struct zf_fs *fs)
{
	return sync_all(fs, 1);
}

int zf_fs_sync(struct zf_fs *fs)
{
	return sync_all(fs, 0);
}

int zf_fs_fsync(struct zf_fs *fs, uint64_t ino)
{
	struct zf_inode *in;
	int r = 0;

	fs_lock_for_flush(fs, ino);
	in = fs_inode(fs, ino);
	if (!in)
		r = -ENOENT;
	else if (S_ISREG(in->mode))
		r = fs_file_flush(fs, in, 0);
	if (r == 0)
		r = fs_commit(fs);
	fs->fsyncs++;
	fs_unlock(fs);
	return r;
}
