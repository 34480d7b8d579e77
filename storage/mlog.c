/*
 * storage/mlog.c - metadata log and checkpoint files (see mlog.h)
 *
 * Commit order inside this module: frames are written with one write(2) at
 * the file's end, then fdatasync(2). If either fails the file is cut back to
 * its previous size so a later commit does not leave a hole of garbage
 * between good records. Ordering against segment data is the caller's job:
 * storage/fs.c syncs the segment store before calling zf_mlog_commit().
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "common/endian.h"
#include "common/log.h"
#include "common/util.h"
#include "storage/meta_format.h"
#include "storage/mlog.h"

struct zf_mlog {
	int dirfd;
	int fd;
	char name[64];
	uint64_t first_seq;
	uint64_t next_seq;
	uint64_t size;		/* bytes durable (or at least written) in the file */
	struct zf_buf early;	/* complete records written first */
	struct zf_buf pending;	/* framed records, seq not yet assigned */
	size_t txn_start;	/* pending[0..txn_start) are complete transactions */
	size_t last_frame;	/* offset of the last frame added to pending */
};

static uint64_t frame_csum(const uint8_t *hdr, const uint8_t *payload, uint32_t len)
{
	return XXH3_64bits_withSeed(payload, len, XXH3_64bits(hdr, 24));
}

static void frame_header(uint8_t *h, uint8_t type, uint8_t flags, uint64_t seq, uint32_t len)
{
	zf_put32(h, ZF_REC_MAGIC);
	h[4] = type;
	h[5] = flags;
	zf_put16(h + 6, 0);
	zf_put32(h + 8, len);
	zf_put32(h + 12, 0);
	zf_put64(h + 16, seq);
}

void zf_frame_put(struct zf_buf *b, uint8_t type, uint8_t flags, uint64_t seq,
		  const void *payload, uint32_t len)
{
	uint8_t *h = zf_buf_grow(b, ZF_REC_HDR_SIZE + len);

	frame_header(h, type, flags, seq, len);
	if (len)
		memcpy(h + ZF_REC_HDR_SIZE, payload, len);
	zf_put64(h + 24, frame_csum(h, h + ZF_REC_HDR_SIZE, len));
}

ssize_t zf_frame_parse(const uint8_t *p, size_t avail, struct zf_frame *ret_frame)
{
	uint32_t len;

	if (avail < ZF_REC_HDR_SIZE)
		return 0;
	if (zf_get32(p) != ZF_REC_MAGIC || zf_get16(p + 6) != 0 || zf_get32(p + 12) != 0)
		return -EBADMSG;
	len = zf_get32(p + 8);
	if (len > ZF_REC_MAX_PAYLOAD)
		return -EBADMSG;
	if (avail - ZF_REC_HDR_SIZE < len)
		return 0;
	if (zf_get64(p + 24) != frame_csum(p, p + ZF_REC_HDR_SIZE, len))
		return -EBADMSG;
	ret_frame->type = p[4];
	ret_frame->flags = p[5];
	ret_frame->len = len;
	ret_frame->seq = zf_get64(p + 16);
	ret_frame->payload = p + ZF_REC_HDR_SIZE;
	return ZF_REC_HDR_SIZE + len;
}

void zf_mlog_name(uint64_t first_seq, char *buf, size_t len)
{
	snprintf(buf, len, "log.%016llx", (unsigned long long)first_seq);
}

void zf_ckpt_name(uint64_t seq, char *buf, size_t len)
{
	snprintf(buf, len, "ckpt.%016llx", (unsigned long long)seq);
}

/* a 64-byte file header shared by logs and checkpoints */
static void file_header(uint8_t *h, const char *magic, uint32_t version, const uint8_t fsid[16],
			uint64_t seq)
{
	memset(h, 0, 64);
	memcpy(h, magic, 8);
	zf_put32(h + 8, version);
	memcpy(h + 16, fsid, 16);
	zf_put64(h + 32, seq);
	zf_put64(h + 56, XXH3_64bits(h, 56));
}

static int file_header_check(const uint8_t *h, size_t len, const char *magic, uint32_t version,
			     const uint8_t fsid[16], const char *name, uint64_t *ret_seq)
{
	if (len < 64) {
		zf_err("cannot read '%s': truncated header (%zu bytes)", name, len);
		return -EBADMSG;
	}
	if (memcmp(h, magic, 8) != 0 || zf_get64(h + 56) != XXH3_64bits(h, 56)) {
		zf_err("cannot read '%s': bad header magic or checksum", name);
		return -EBADMSG;
	}
	if (zf_get32(h + 8) != version) {
		zf_err("cannot read '%s': unsupported version %u", name, zf_get32(h + 8));
		return -EBADMSG;
	}
	if (memcmp(h + 16, fsid, 16) != 0) {
		zf_err("cannot read '%s': belongs to another filesystem", name);
		return -EXDEV; /* a whole header: not damage, a file that is not ours */
	}
	*ret_seq = zf_get64(h + 32);
	return 0;
}

/* map a whole file read-only; *ret_map is NULL for an empty file */
static int map_file(int dirfd, const char *name, const uint8_t **ret_map, size_t *ret_len)
{
	struct stat st;
	void *m = NULL;
	int fd, r = 0;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (st.st_size > 0) {
		m = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m == MAP_FAILED) {
			r = -errno;
			goto out;
		}
		madvise(m, st.st_size, MADV_SEQUENTIAL);
	}
	*ret_map = m;
	*ret_len = st.st_size;
out:
	close(fd);
	return r;
}

/*
 * Parsed pages of a mapped file are not needed again: give them back as the
 * parse moves on, so a big checkpoint does not count twice in the resident
 * set (once mapped, once as the table built from it).
 */
static void map_release(const uint8_t *m, size_t upto, size_t *released)
{
	const size_t step = 32u << 20;
	size_t end = upto & ~(size_t)(4096 - 1);

	if (end < *released + step)
		return;
	madvise((void *)(m + *released), end - *released, MADV_DONTNEED);
	*released = end;
}

/* offset of the first valid frame after p (0: none) */
static size_t next_valid_frame(const uint8_t *p, size_t avail)
{
	struct zf_frame f;
	size_t i;

	for (i = 1; i + ZF_REC_HDR_SIZE <= avail; i++) {
		if (zf_get32(p + i) != ZF_REC_MAGIC)
			continue;
		if (zf_frame_parse(p + i, avail - i, &f) > 0)
			return i;
	}
	return 0;
}

/* the seq in a file name "log.<hex>" or "ckpt.<hex>" (0: none) */
static uint64_t seq_of_name(const char *name)
{
	const char *dot = strchr(name, '.');

	return dot ? strtoull(dot + 1, NULL, 16) : 0;
}

/*
 * Hand the frames in m[from, to) (verified already) past skip_upto to fn;
 * *ret_last (if not NULL) follows the last one handed. fn's non-zero
 * return stops it and is returned.
 */
static int deliver(const uint8_t *m, size_t from, size_t to, uint64_t skip_upto, zf_frame_fn fn,
		   void *ctx, uint64_t *ret_last)
{
	while (from < to) {
		struct zf_frame g;
		int r;

		from += zf_frame_parse(m + from, to - from, &g);
		g.off = from - ZF_REC_HDR_SIZE - g.len;
		if (g.seq <= skip_upto)
			continue;
		r = fn(ctx, &g);
		if (r)
			return r;
		if (ret_last)
			*ret_last = g.seq;
	}
	return 0;
}

static int mlog_replay(int dirfd, const char *name, const uint8_t fsid[16], uint64_t skip_upto,
		       zf_frame_fn fn, zf_frame_bad_fn bad, void *ctx,
		       struct zf_mlog_scan *ret_scan)
{
	const uint8_t *m = NULL;
	struct zf_frame f;
	size_t len = 0, off, txn_off, released = 0;
	uint64_t seq, expect;
	int r, after_bad = 0;	/* salvage: the last thing seen was a damaged region */

	r = map_file(dirfd, name, &m, &len);
	if (r < 0) {
		zf_err("cannot open log '%s': %s", name, strerror(-r));
		return r;
	}
	r = file_header_check(m, len, ZF_LOG_MAGIC, ZF_LOG_VERSION, fsid, name, &seq);
	if (r == -EXDEV)
		r = -EBADMSG; /* even a salvage reads nothing of another filesystem's file */
	else if (r < 0 && bad && (seq = seq_of_name(name)) != 0) {
		bad(ctx, name, 0, m, len < ZF_LOG_HDR_SIZE ? len : ZF_LOG_HDR_SIZE, seq);
		r = 0;
	}
	if (r < 0)
		goto out;
	ret_scan->first_seq = seq;
	ret_scan->last_seq = seq - 1;
	ret_scan->dropped = 0;
	expect = seq;
	/* salvage of a file shorter than its header: no records, nothing dropped */
	off = txn_off = len < ZF_LOG_HDR_SIZE ? len : ZF_LOG_HDR_SIZE;
	while (off < len) {
		ssize_t n = zf_frame_parse(m + off, len - off, &f);
		size_t next;

		if (n > 0 && f.seq != expect && !bad) {
			zf_err("corrupt log '%s' at offset %zu: sequence %llu, expected %llu", name,
			       off, (unsigned long long)f.seq, (unsigned long long)expect);
			r = -EBADMSG;
			goto out;
		}
		if (n > 0 && f.seq != expect) {
			/* salvage: records before it are missing (p NULL, nothing to
			 * skip), or it is a stale copy (skipped like damage); either
			 * way the transaction it cuts ends here */
			r = deliver(m, txn_off, off, skip_upto, fn, ctx, &ret_scan->last_seq);
			if (r)
				goto out;
			if (f.seq > expect) {
				/* right after a damaged region: its records */
				if (!after_bad)
					bad(ctx, name, off, NULL, 0, expect);
				expect = f.seq;
				txn_off = off;
			} else {
				bad(ctx, name, off, m + off, n, expect);
				off += n;
				txn_off = off;
				continue;
			}
		}
		if (n <= 0) {
			/* a frame that verifies further on: damage, not a torn tail
			 * (also when a damaged length runs past the end, n == 0) */
			next = next_valid_frame(m + off, len - off);
			if (next && !bad) {
				zf_err("corrupt log '%s' at offset %zu: bad record before the tail",
				       name, off);
				r = -EBADMSG;
				goto out;
			}
			if (!next)
				break; /* a torn tail */
			/* salvage: the verified frames of the cut transaction, then skip */
			r = deliver(m, txn_off, off, skip_upto, fn, ctx, &ret_scan->last_seq);
			if (r)
				goto out;
			bad(ctx, name, off, m + off, next, expect);
			off += next;
			txn_off = off;
			after_bad = 1;
			continue;
		}
		after_bad = 0;
		expect = f.seq + 1;
		off += n;
		if (!(f.flags & ZF_REC_F_TXN_END))
			continue;
		map_release(m, txn_off, &released);
		/* a whole transaction [txn_off, off) is here: deliver it */
		r = deliver(m, txn_off, off, skip_upto, fn, ctx, NULL);
		if (r)
			goto out;
		txn_off = off;
		ret_scan->last_seq = f.seq;
	}
	ret_scan->end = txn_off;
	ret_scan->dropped = len - txn_off;
	if (ret_scan->dropped)
		zf_warn("log '%s': dropped torn tail at offset %zu (%llu bytes)", name, txn_off,
			(unsigned long long)ret_scan->dropped);
	r = 0;
out:
	if (m)
		munmap((void *)m, len);
	return r;
}

int zf_mlog_replay(int dirfd, const char *name, const uint8_t fsid[16], uint64_t skip_upto,
		   zf_frame_fn fn, void *ctx, struct zf_mlog_scan *ret_scan)
{
	return mlog_replay(dirfd, name, fsid, skip_upto, fn, NULL, ctx, ret_scan);
}

int zf_mlog_replay_salvage(int dirfd, const char *name, const uint8_t fsid[16],
			   uint64_t skip_upto, zf_frame_fn fn, zf_frame_bad_fn bad, void *ctx,
			   struct zf_mlog_scan *ret_scan)
{
	return mlog_replay(dirfd, name, fsid, skip_upto, fn, bad, ctx, ret_scan);
}

/* ---- the durable mark ---- */

int zf_synced_read(int dirfd, const uint8_t fsid[16], uint64_t *ret_seq, uint64_t *ret_gen)
{
	uint8_t b[2 * ZF_SYNCED_SLOT];
	ssize_t n;
	int fd, i, valid = 0;

	*ret_seq = *ret_gen = 0;
	fd = openat(dirfd, ZF_SYNCED_NAME, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	n = zf_pread_full(fd, b, sizeof(b), 0);
	close(fd);
	if (n < 0)
		return (int)n;
	for (i = 0; i < 2 && (size_t)n >= (i + 1) * ZF_SYNCED_SLOT; i++) {
		const uint8_t *h = b + i * ZF_SYNCED_SLOT;

		if (memcmp(h, ZF_SYNCED_MAGIC, 8) != 0 || zf_get64(h + 56) != XXH3_64bits(h, 56) ||
		    zf_get32(h + 8) != ZF_SYNCED_VERSION || memcmp(h + 16, fsid, 16) != 0 ||
		    (zf_get64(h + 40) & 1) != (uint64_t)i)
			continue;
		valid++;
		if (zf_get64(h + 40) >= *ret_gen) {
			*ret_gen = zf_get64(h + 40);
			*ret_seq = zf_get64(h + 32);
		}
	}
	if (!valid && n > 0)
		zf_warn("meta/%s: no slot verifies; the durable mark is ignored", ZF_SYNCED_NAME);
	return 0;
}

int zf_synced_write(int dirfd, const uint8_t fsid[16], uint64_t seq, uint64_t gen)
{
	uint8_t h[ZF_SYNCED_SLOT] = { 0 };
	int fd, r = 0;

	memcpy(h, ZF_SYNCED_MAGIC, 8);
	zf_put32(h + 8, ZF_SYNCED_VERSION);
	memcpy(h + 16, fsid, 16);
	zf_put64(h + 32, seq);
	zf_put64(h + 40, gen);
	zf_put64(h + 56, XXH3_64bits(h, 56));
	fd = openat(dirfd, ZF_SYNCED_NAME, O_WRONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		fd = openat(dirfd, ZF_SYNCED_NAME, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd >= 0 && zf_fsync_dir(dirfd) < 0)
			r = -errno;
	}
	if (fd < 0)
		return -errno;
	if (r == 0 && pwrite(fd, h, sizeof(h), (off_t)(gen & 1) * ZF_SYNCED_SLOT) != (ssize_t)sizeof(h))
		r = -EIO;
	else if (fdatasync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* ---- writing ---- */

static struct zf_mlog *mlog_new(int dirfd, int fd, const char *name)
{
	struct zf_mlog *log = zf_calloc(1, sizeof(*log));

	log->dirfd = dirfd;
	log->fd = fd;
	snprintf(log->name, sizeof(log->name), "%s", name);
	log->last_frame = SIZE_MAX;
	return log;
}

int zf_mlog_create(int dirfd, const uint8_t fsid[16], uint64_t first_seq,
		   struct zf_mlog **ret_log)
{
	uint8_t h[ZF_LOG_HDR_SIZE];
	char name[64], tmp[72];
	struct zf_mlog *log;
	int fd, r;

	/*
	 * Published whole: the header is written and synced under a .tmp name
	 * (removed at open if a crash leaves it), then renamed, so a crash
	 * never leaves a log file without its header.
	 */
	zf_mlog_name(first_seq, name, sizeof(name));
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	file_header(h, ZF_LOG_MAGIC, ZF_LOG_VERSION, fsid, first_seq);
	r = zf_pwrite_full(fd, h, sizeof(h), 0);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (r == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
		r = -errno;
	if (r == 0)
		r = zf_fsync_dir(dirfd);
	if (r < 0) {
		close(fd);
		unlinkat(dirfd, tmp, 0);
		unlinkat(dirfd, name, 0);
		return r;
	}
	log = mlog_new(dirfd, fd, name);
	log->first_seq = log->next_seq = first_seq;
	log->size = sizeof(h);
	*ret_log = log;
	return 0;
}

int zf_mlog_reopen(int dirfd, const char *name, uint64_t end, uint64_t next_seq,
		   struct zf_mlog **ret_log)
{
	struct zf_mlog *log;
	struct stat st;
	int fd;

	fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || ((uint64_t)st.st_size != end && ftruncate(fd, end) < 0) ||
	    ((uint64_t)st.st_size != end && fsync(fd) < 0)) {
		int r = -errno;

		close(fd);
		return r;
	}
	log = mlog_new(dirfd, fd, name);
	log->next_seq = next_seq;
	log->size = end;
	sscanf(name, "log.%16llx", (unsigned long long *)&log->first_seq);
	*ret_log = log;
	return 0;
}

void zf_mlog_close(struct zf_mlog *log)
{
	if (!log)
		return;
	close(log->fd);
	zf_buf_free(&log->early);
	zf_buf_free(&log->pending);
	free(log);
}

void zf_mlog_add(struct zf_mlog *log, uint8_t type, const void *payload, uint32_t len)
{
	log->last_frame = log->pending.len;
	/* seq and checksum are filled in at commit */
	zf_frame_put(&log->pending, type, 0, 0, payload, len);
}

void zf_mlog_add_early(struct zf_mlog *log, uint8_t type, const void *payload, uint32_t len)
{
	zf_frame_put(&log->early, type, ZF_REC_F_TXN_END, 0, payload, len);
}

void zf_mlog_txn_end(struct zf_mlog *log)
{
	if (log->pending.len == log->txn_start)
		return;
	log->pending.p[log->last_frame + 5] |= ZF_REC_F_TXN_END;
	log->txn_start = log->pending.len;
}

void zf_mlog_txn_abort(struct zf_mlog *log)
{
	log->pending.len = log->txn_start;
}

size_t zf_mlog_pending(const struct zf_mlog *log)
{
	return log->early.len + log->txn_start;
}

/* number frames in buf[0..len) from *seq on and compute their checksums */
static void seal_frames(uint8_t *p, size_t len, uint64_t *seq)
{
	size_t off = 0;

	while (off < len) {
		uint8_t *h = p + off;
		uint32_t plen = zf_get32(h + 8);

		zf_put64(h + 16, (*seq)++);
		zf_put64(h + 24, frame_csum(h, h + ZF_REC_HDR_SIZE, plen));
		off += ZF_REC_HDR_SIZE + plen;
	}
}

int zf_mlog_commit(struct zf_mlog *log)
{
	size_t n = log->txn_start;
	uint64_t seq = log->next_seq;
	struct zf_buf out = { 0 };
	int r;

	if (log->early.len == 0 && n == 0)
		return 0;
	zf_buf_add(&out, log->early.p, log->early.len);
	zf_buf_add(&out, log->pending.p, n);
	seal_frames(out.p, out.len, &seq);
	r = zf_pwrite_full(log->fd, out.p, out.len, log->size);
	if (r == 0 && fdatasync(log->fd) < 0)
		r = -errno;
	if (r < 0) {
		/* keep the file exactly as before: no garbage between records */
		if (ftruncate(log->fd, log->size) == 0)
			fdatasync(log->fd);
		zf_err("cannot commit to metadata log '%s': %s", log->name, strerror(-r));
		goto out;
	}
	log->size += out.len;
	log->next_seq = seq;
	log->early.len = 0;
	zf_buf_consume(&log->pending, n);
	log->txn_start = 0;
	if (log->last_frame != SIZE_MAX)
		log->last_frame = log->last_frame >= n ? log->last_frame - n : SIZE_MAX;
out:
	zf_buf_free(&out);
	return r;
}

uint64_t zf_mlog_size(const struct zf_mlog *log)
{
	return log->size;
}

uint64_t zf_mlog_next_seq(const struct zf_mlog *log)
{
	return log->next_seq;
}

uint64_t zf_mlog_first_seq(const struct zf_mlog *log)
{
	return log->first_seq;
}

/* ---- checkpoints ---- */

#define CKPT_FLUSH (1u << 20) /* write in 1 MiB pieces */

struct zf_ckpt_writer {
	int dirfd, fd;
	uint64_t seq, nrec;
	char name[64], tmp[80];
	struct zf_buf buf;
};

int zf_ckpt_writer_new(int dirfd, const uint8_t fsid[16], uint64_t seq,
		       struct zf_ckpt_writer **ret_w)
{
	struct zf_ckpt_writer *w = zf_calloc(1, sizeof(*w));

	w->dirfd = dirfd;
	w->seq = seq;
	zf_ckpt_name(seq, w->name, sizeof(w->name));
	snprintf(w->tmp, sizeof(w->tmp), "%s.tmp", w->name);
	unlinkat(dirfd, w->tmp, 0);
	w->fd = openat(dirfd, w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (w->fd < 0) {
		int r = -errno;

		free(w);
		return r;
	}
	file_header(zf_buf_grow(&w->buf, ZF_CKPT_HDR_SIZE), ZF_CKPT_MAGIC, ZF_CKPT_VERSION, fsid,
		    seq);
	*ret_w = w;
	return 0;
}

static int ckpt_flush(struct zf_ckpt_writer *w)
{
	int r = zf_write_full(w->fd, w->buf.p, w->buf.len);

	w->buf.len = 0;
	return r;
}

int zf_ckpt_writer_add(struct zf_ckpt_writer *w, uint8_t type, const void *payload,
		       uint32_t len)
{
	zf_frame_put(&w->buf, type, 0, ++w->nrec, payload, len);
	return w->buf.len >= CKPT_FLUSH ? ckpt_flush(w) : 0;
}

void zf_ckpt_writer_abort(struct zf_ckpt_writer *w)
{
	if (!w)
		return;
	close(w->fd);
	unlinkat(w->dirfd, w->tmp, 0);
	zf_buf_free(&w->buf);
	free(w);
}

int zf_ckpt_writer_finish(struct zf_ckpt_writer *w)
{
	uint8_t p[8];
	int r;

	zf_put64(p, w->nrec);
	zf_frame_put(&w->buf, ZF_REC_END, ZF_REC_F_TXN_END, ++w->nrec, p, sizeof(p));
	r = ckpt_flush(w);
	/* publish order: data, fsync, rename, directory fsync */
	if (r == 0 && fsync(w->fd) < 0)
		r = -errno;
	if (r == 0 && renameat(w->dirfd, w->tmp, w->dirfd, w->name) < 0)
		r = -errno;
	if (r < 0) {
		zf_ckpt_writer_abort(w);
		return r;
	}
	r = zf_fsync_dir(w->dirfd);
	close(w->fd);
	zf_buf_free(&w->buf);
	free(w);
	return r;
}

static int ckpt_load(int dirfd, const char *name, const uint8_t fsid[16], zf_frame_fn fn,
		     zf_frame_bad_fn bad, void *ctx, uint64_t *ret_seq)
{
	const uint8_t *m = NULL;
	struct zf_frame f = { 0 };
	size_t len = 0, off, released = 0;
	uint64_t seq, nrec = 0;
	int r, ended = 0, after_bad = 0;

	r = map_file(dirfd, name, &m, &len);
	if (r < 0) {
		zf_err("cannot open checkpoint '%s': %s", name, strerror(-r));
		return r;
	}
	r = file_header_check(m, len, ZF_CKPT_MAGIC, ZF_CKPT_VERSION, fsid, name, &seq);
	if (r == -EXDEV)
		r = -EBADMSG; /* even a salvage reads nothing of another filesystem's file */
	else if (r < 0 && bad && (seq = seq_of_name(name)) != 0) {
		bad(ctx, name, 0, m, len < ZF_CKPT_HDR_SIZE ? len : ZF_CKPT_HDR_SIZE, 1);
		r = 0;
	}
	if (r < 0)
		goto out;
	off = ZF_CKPT_HDR_SIZE;
	while (off < len || !bad) {
		ssize_t n = zf_frame_parse(m + off, len - off, &f);

		if (n > 0 && (f.seq == nrec + 1 || (bad && f.seq > nrec))) {
			/* salvage: records before it are missing (unless a damaged
			 * region just before held them) */
			if (f.seq > nrec + 1 && !after_bad)
				bad(ctx, name, off, NULL, 0, nrec + 1);
			after_bad = 0;
			f.off = off;
			off += n;
			nrec = f.seq - 1;
			if (f.type == ZF_REC_END) {
				ended = 1;
				break;
			}
			nrec++;
			map_release(m, off - n, &released);
			r = fn(ctx, &f);
			if (r)
				goto out;
			continue;
		}
		if (!bad) {
			zf_err("corrupt checkpoint '%s' at offset %zu: %s", name, off,
			       n == 0 ? "truncated" : "bad record");
			r = -EBADMSG;
			goto out;
		}
		/* salvage: skip to the next frame that verifies, or to the end */
		{
			size_t next = next_valid_frame(m + off, len - off);

			if (!next)
				next = len - off;
			bad(ctx, name, off, m + off, next, nrec + 1);
			off += next;
			after_bad = 1;
		}
	}
	if (!ended || f.len != 8 || zf_get64(f.payload) != nrec || off != len) {
		if (!bad) {
			zf_err("corrupt checkpoint '%s': record count or length mismatch", name);
			r = -EBADMSG;
			goto out;
		}
		if (ended && (f.len != 8 || zf_get64(f.payload) != nrec))
			bad(ctx, name, f.off, m + f.off, off - f.off, f.seq);
		if (ended && off < len)
			bad(ctx, name, off, m + off, len - off, nrec + 2);
		if (!ended)
			/* the END record is missing (m is NULL for an empty file) */
			bad(ctx, name, len, len ? m + len : m, 0, nrec + 1);
	}
	*ret_seq = seq;
	r = 0;
out:
	if (m)
		munmap((void *)m, len);
	return r;
}

int zf_ckpt_load(int dirfd, const char *name, const uint8_t fsid[16], zf_frame_fn fn,
		 void *ctx, uint64_t *ret_seq)
{
	return ckpt_load(dirfd, name, fsid, fn, NULL, ctx, ret_seq);
}

int zf_ckpt_load_salvage(int dirfd, const char *name, const uint8_t fsid[16], zf_frame_fn fn,
			 zf_frame_bad_fn bad, void *ctx, uint64_t *ret_seq)
{
	return ckpt_load(dirfd, name, fsid, fn, bad, ctx, ret_seq);
}
