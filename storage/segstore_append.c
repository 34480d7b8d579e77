/*
 * storage/segstore_append.c - the open segment: creating it, appending
 * super-chunks, sealing it (footer, fsync), syncing, and resuming it after
 * a restart from what the metadata log knows (cutting an uncommitted tail,
 * removing segment files the log never heard of).
 *
 * The invariants of the open segment (a failed append leaves it as it
 * was; a failed sync is sticky until resume) are in segstore_internal.h.
 * Locking: st->wlock serialises all of this and guards the writer state;
 * st->lock is taken under it for the segment counters and the fd cache,
 * st->cache_lock for dropping the cache at resume.
 * Not here: compressing (segstore_pack.c), what is committed (the log).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/lock.h"
#include "common/endian.h"
#include "common/log.h"
#include "common/util.h"
#include "storage/segstore_internal.h"

/* forget the open segment without sealing it (its tail is the log's business) */
void zf_seg_writer_drop(struct zf_segstore *st)
{
	if (st->wfd >= 0)
		close(st->wfd);
	st->wfd = -1;
	st->wseg = st->wend = st->wnsc = st->wraw = 0;
	st->wdirty = false;
}

/* make a failed fsync/ftruncate sticky (the invariants in segstore_internal.h) */
static int zf_seg_fail(struct zf_segstore *st, int r)
{
	if (!st->werr)
		st->werr = r;
	return r;
}

static int zf_seg_create(struct zf_segstore *st)
{
	uint8_t h[ZF_SEG_HDR_SIZE];
	uint64_t id = st->next_id;
	char name[32];
	int fd, r;

	zf_segstore_name(id, name, sizeof(name));
	fd = openat(st->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		zf_err("cannot create segment '%s': %s", name, strerror(-r));
		return r;
	}
	zf_seg_hdr_encode(h, id, st->fsid);
	r = zf_pwrite_full(fd, h, sizeof(h), 0);
	if (r < 0) {
		zf_err("cannot write segment '%s': %s", name, strerror(-r));
		close(fd);
		unlinkat(st->dirfd, name, 0);
		return r;
	}
	st->wfd = fd;
	st->wseg = id;
	st->wend = ZF_SEG_HDR_SIZE;
	st->wnsc = 0;
	st->wraw = 0;
	st->wdirty = true;
	st->dir_dirty = true;
	st->next_id = id + 1;
	zf_mutex_lock(&st->lock);
	st->nsegs++;
	st->disk_bytes += ZF_SEG_HDR_SIZE;
	zf_mutex_unlock(&st->lock);
	return 0;
}

/* undo zf_seg_create() after the first append into it failed */
static void zf_seg_uncreate(struct zf_segstore *st)
{
	char name[32];

	zf_segstore_name(st->wseg, name, sizeof(name));
	if (unlinkat(st->dirfd, name, 0) < 0)
		zf_warn("cannot remove empty segment '%s': %s", name, strerror(errno));
	st->next_id = st->wseg;
	zf_seg_writer_drop(st);
	zf_mutex_lock(&st->lock);
	st->nsegs--;
	st->disk_bytes -= ZF_SEG_HDR_SIZE;
	zf_mutex_unlock(&st->lock);
}

/* write the footer, fsync file (and directory if needed), close; wlock held */
static int zf_seg_seal_locked(struct zf_segstore *st, uint64_t *ret_sealed)
{
	uint8_t f[ZF_SEG_FTR_SIZE];
	char name[32];
	int r;

	zf_segstore_name(st->wseg, name, sizeof(name));
	zf_seg_ftr_encode(f, st->wseg, st->wnsc, st->wend, st->wraw);
	r = zf_pwrite_full(st->wfd, f, sizeof(f), (off_t)st->wend);
	if (r < 0) {
		zf_err("cannot seal segment '%s': %s", name, strerror(-r));
		if (ftruncate(st->wfd, (off_t)st->wend) < 0)
			zf_seg_fail(st, -errno);
		return r;
	}
	if (fsync(st->wfd) < 0) {
		r = zf_seg_fail(st, -errno);
		zf_err("cannot sync segment '%s': %s", name, strerror(-r));
		return r;
	}
	if (st->dir_dirty) {
		r = zf_fsync_dir(st->dirfd);
		if (r < 0) {
			zf_err("cannot sync the segment directory: %s", strerror(-r));
			return zf_seg_fail(st, r);
		}
		st->dir_dirty = false;
	}
	*ret_sealed = st->wseg;
	zf_seg_writer_drop(st);
	zf_mutex_lock(&st->lock);
	st->disk_bytes += ZF_SEG_FTR_SIZE;
	zf_mutex_unlock(&st->lock);
	return 0;
}

/* ---- appending ---- */

/* append a built super-chunk to the open segment (wlock held) */
static int zf_seg_append_locked(struct zf_segstore *st, struct zf_sc_image *img,
				struct zf_sc_loc *ret_loc, uint64_t *ret_sealed)
{
	uint64_t sealed = 0, off;
	bool created = false;
	char name[32];
	uint8_t *p = img->p;
	int r;

	if (st->werr)
		return st->werr;
	if (st->wfd < 0) {
		r = zf_seg_create(st);
		if (r < 0)
			return r;
		created = true;
	}
	zf_segstore_name(st->wseg, name, sizeof(name));
	/* the segment id is only known now; it is covered by the header checksum */
	zf_put64(p + ZF_SC_SEG_OFF, st->wseg);
	zf_put64(p + ZF_SC_HCSUM_OFF, zf_sc_hdr_csum(p, img->n));
	off = st->wend;
	r = zf_pwrite_full(st->wfd, p, img->len, (off_t)off);
	if (r < 0) {
		zf_err("cannot append to segment '%s' at offset %" PRIu64 ": %s", name, off,
		       strerror(-r));
		if (created) {
			zf_seg_uncreate(st);
		} else if (ftruncate(st->wfd, (off_t)off) < 0) {
			zf_err("cannot cut segment '%s' back to %" PRIu64 ": %s", name, off,
			       strerror(errno));
			zf_seg_fail(st, -errno);
		}
		return r;
	}
	st->wend += img->len;
	st->wnsc++;
	st->wraw += img->raw_len;
	st->wdirty = true;
	zf_mutex_lock(&st->lock);
	st->disk_bytes += img->len;
	st->raw_bytes += img->raw_len;
	st->stored_bytes += img->len;
	zf_mutex_unlock(&st->lock);

	ret_loc->seg = st->wseg;
	ret_loc->off = off;
	ret_loc->disk_len = img->len;
	ret_loc->raw_len = img->raw_len;

	/*
	 * The super-chunk is appended whatever happens to the seal: a failed
	 * seal is logged, the segment stays open, and the next append tries
	 * again (a failed fsync makes the next sync() fail instead).
	 */
	if (st->wend >= st->seg_limit && zf_seg_seal_locked(st, &sealed) < 0)
		sealed = 0;
	if (ret_sealed)
		*ret_sealed = sealed;
	return 0;
}

int zf_segstore_append_image(struct zf_segstore *st, struct zf_sc_image *img,
			     struct zf_sc_loc *ret_loc, uint64_t *ret_sealed)
{
	int r;

	if (!img || !img->p || !ret_loc || img->len < ZF_SC_HDR_SIZE + ZF_SC_ENT_SIZE)
		return -EINVAL;
	zf_mutex_lock(&st->wlock);
	r = zf_seg_append_locked(st, img, ret_loc, ret_sealed);
	zf_mutex_unlock(&st->wlock);
	return r;
}

int zf_segstore_append(struct zf_segstore *st, const struct zf_sc_chunk *chunks, uint32_t n,
		       const void *raw, uint32_t raw_len, struct zf_sc_loc *ret_loc,
		       uint64_t *ret_sealed)
{
	int r;

	if (!ret_loc)
		return -EINVAL;
	zf_mutex_lock(&st->wlock);
	r = zf_sc_packer_build(st->pk, st->level, chunks, n, raw, raw_len, &st->wimg);
	if (r == 0)
		r = zf_seg_append_locked(st, &st->wimg, ret_loc, ret_sealed);
	zf_mutex_unlock(&st->wlock);
	return r;
}

int zf_segstore_seal(struct zf_segstore *st, uint64_t *ret_sealed)
{
	uint64_t sealed = 0;
	int r = 0;

	zf_mutex_lock(&st->wlock);
	if (st->werr)
		r = st->werr;
	else if (st->wfd >= 0)
		r = zf_seg_seal_locked(st, &sealed);
	if (r == 0 && ret_sealed)
		*ret_sealed = sealed;
	zf_mutex_unlock(&st->wlock);
	return r;
}

int zf_segstore_sync(struct zf_segstore *st)
{
	char name[32];
	int r = 0;

	zf_mutex_lock(&st->wlock);
	if (st->werr) {
		r = st->werr;
		goto out_unlock;
	}
	if (st->wfd >= 0 && st->wdirty) {
		if (fdatasync(st->wfd) < 0) {
			r = zf_seg_fail(st, -errno);
			zf_segstore_name(st->wseg, name, sizeof(name));
			zf_err("cannot sync segment '%s': %s", name, strerror(-r));
			goto out_unlock;
		}
		st->wdirty = false;
	}
	if (st->dir_dirty) {
		r = zf_fsync_dir(st->dirfd);
		if (r < 0) {
			zf_err("cannot sync the segment directory: %s", strerror(-r));
			zf_seg_fail(st, r);
			goto out_unlock;
		}
		st->dir_dirty = false;
	}
out_unlock:
	zf_mutex_unlock(&st->wlock);
	return r;
}

/* ---- resume ---- */

/*
 * Count the super-chunks in [ZF_SEG_HDR_SIZE, end) of the open segment for
 * its footer. Only headers and tables are read. A broken chain inside the
 * committed region is logged and the count stays partial: refusing to mount
 * over it would hide every other segment, and reads of the damaged
 * super-chunk fail with -EIO on their own.
 */
static void zf_seg_count(struct zf_segstore *st, int fd, const char *name, uint64_t end)
{
	uint64_t off = ZF_SEG_HDR_SIZE, nsc = 0, raw = 0;
	uint8_t *buf = NULL;
	size_t cap = 0;

	while (off < end) {
		uint8_t h[ZF_SC_HDR_SIZE];
		struct zf_sc_hdr sh;
		uint64_t tlen, len;
		ssize_t n;

		n = zf_pread_full(fd, h, sizeof(h), (off_t)off);
		if (n != (ssize_t)sizeof(h) || zf_get32(h) != ZF_SC_MAGIC)
			goto broken;
		zf_sc_hdr_decode(h, &sh);
		tlen = (uint64_t)sh.nchunks * ZF_SC_ENT_SIZE;
		len = ZF_SC_HDR_SIZE + tlen + sh.stored_len;
		if (sh.nchunks == 0 || sh.nchunks > ZF_SC_CHUNKS_MAX || sh.seg != st->wseg ||
		    len > end - off)
			goto broken;
		if (cap < ZF_SC_HDR_SIZE + tlen) {
			cap = ZF_SC_HDR_SIZE + tlen;
			free(buf);
			buf = zf_malloc(cap);
		}
		memcpy(buf, h, sizeof(h));
		n = zf_pread_full(fd, buf + ZF_SC_HDR_SIZE, tlen, (off_t)(off + ZF_SC_HDR_SIZE));
		if (n != (ssize_t)tlen || zf_sc_hdr_csum(buf, sh.nchunks) != sh.hdr_csum)
			goto broken;
		nsc++;
		raw += sh.raw_len;
		off += len;
	}
	goto out;
broken:
	zf_err("segment '%s': super-chunk chain broken at offset %" PRIu64
	       " below the committed end %" PRIu64 "; its footer will count %" PRIu64
	       " super-chunks", name, off, end, nsc);
out:
	free(buf);
	st->wnsc = nsc;
	st->wraw = raw;
}

int zf_segstore_resume(struct zf_segstore *st, uint64_t open_seg, uint64_t committed_end,
		       uint64_t last_sealed)
{
	uint64_t keep = open_seg > last_sealed ? open_seg : last_sealed;
	uint8_t h[ZF_SEG_HDR_SIZE];
	uint64_t nsegs, bytes, max;
	const char *why;
	bool removed;
	char name[32];
	struct stat sb;
	ssize_t n;
	int fd = -1, r;

	if (open_seg && (open_seg <= last_sealed || committed_end < ZF_SEG_HDR_SIZE)) {
		zf_err("cannot resume the segment store: open segment %" PRIu64
		       " ending at %" PRIu64 " after sealed segment %" PRIu64 " is inconsistent",
		       open_seg, committed_end, last_sealed);
		return -EINVAL;
	}

	zf_mutex_lock(&st->wlock);
	/* the metadata log is the truth from here on: forget every cached view */
	zf_seg_writer_drop(st);
	st->werr = 0;
	zf_cache_flush(st);
	zf_segfd_flush(st);

	r = zf_seg_scan(st, keep, &nsegs, &bytes, &max, &removed);
	if (r < 0)
		goto out_unlock;
	if (removed) {
		/* so that a re-created id never meets a resurrected old file */
		r = zf_fsync_dir(st->dirfd);
		if (r < 0) {
			zf_err("cannot sync the segment directory: %s", strerror(-r));
			goto out_unlock;
		}
	}

	if (open_seg) {
		zf_segstore_name(open_seg, name, sizeof(name));
		r = zf_seg_open_hdr(st, open_seg, O_RDWR, h, &fd, &n, &why);
		if (r == -ENOENT)
			zf_err("cannot open segment '%s': %s", name, strerror(-r));
		if (r < 0)
			goto out_unlock;
		if (why) {
			zf_err("cannot resume segment '%s': %s", name, why);
			r = -EBADMSG;
			goto out_close;
		}
		if (fstat(fd, &sb) < 0) {
			r = -errno;
			zf_err("cannot stat segment '%s': %s", name, strerror(-r));
			goto out_close;
		}
		if ((uint64_t)sb.st_size < committed_end) {
			zf_err("cannot resume segment '%s': %" PRIu64
			       " bytes, shorter than its committed end %" PRIu64,
			       name, (uint64_t)sb.st_size, committed_end);
			r = -EBADMSG;
			goto out_close;
		}
		if ((uint64_t)sb.st_size > committed_end) {
			if (ftruncate(fd, (off_t)committed_end) < 0) {
				r = -errno;
				zf_err("cannot truncate segment '%s': %s", name, strerror(-r));
				goto out_close;
			}
			zf_warn("segment '%s': dropped %" PRIu64
				" uncommitted bytes after offset %" PRIu64,
				name, (uint64_t)sb.st_size - committed_end, committed_end);
			bytes -= (uint64_t)sb.st_size - committed_end;
		}
		st->wfd = fd;
		st->wseg = open_seg;
		st->wend = committed_end;
		/* the cut is made durable by the next sync, before any commit */
		st->wdirty = true;
		zf_seg_count(st, fd, name, committed_end);
	}
	st->next_id = keep + 1;
	zf_mutex_lock(&st->lock);
	st->nsegs = nsegs;
	st->disk_bytes = bytes;
	zf_mutex_unlock(&st->lock);
	r = 0;
	goto out_unlock;

out_close:
	close(fd);
out_unlock:
	zf_mutex_unlock(&st->wlock);
	return r;
}

int zf_segstore_resume_keep(struct zf_segstore *st, uint64_t *last_sealed)
{
	uint64_t nsegs, bytes, max;
	int r;

	zf_mutex_lock(&st->wlock);
	zf_seg_writer_drop(st);
	st->werr = 0;
	zf_cache_flush(st);
	zf_segfd_flush(st);
	r = zf_seg_scan(st, UINT64_MAX, &nsegs, &bytes, &max, NULL);
	if (r == 0) {
		if (max > *last_sealed)
			*last_sealed = max;
		st->next_id = *last_sealed + 1;
		zf_mutex_lock(&st->lock);
		st->nsegs = nsegs;
		st->disk_bytes = bytes;
		zf_mutex_unlock(&st->lock);
	}
	zf_mutex_unlock(&st->wlock);
	return r;
}

