/*
 * storage/fs_tier.c - the core's side of the object-storage tier: how far
 * the log may go to the bucket (zf_fs_upload_point), log images built from
 * the local log files (zf_fs_log_image), the write admission hook
 * (backpressure), the buffered bytes the tier's budget counts, and the
 * segment store's fetch hook, local segments and eviction.
 *
 * The tier itself is elsewhere (tier/); it reaches the core only through
 * these calls (declared in fs_tier.h). Each takes fs->lock, but the
 * segment store's (which take its own locks).
 * Format: docs/FORMAT.md "Log files".
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <xxhash.h>

#include "common/endian.h"
#include "storage/fs_internal.h"
#include "storage/fs_tier.h"
#include "storage/meta_format.h"

void zf_fs_set_fetch(struct zf_fs *fs, zf_segstore_fetch_fn fn, void *ctx)
{
	zf_segstore_set_fetch(fs->seg, fn, ctx);
}

int zf_fs_segment_local(struct zf_fs *fs, uint64_t seg)
{
	return zf_segstore_has(fs->seg, seg);
}

int zf_fs_evict_segment(struct zf_fs *fs, uint64_t seg)
{
	return zf_segstore_evict(fs->seg, seg);
}

void zf_fs_set_admit(struct zf_fs *fs, zf_fs_admit_fn fn, void *ctx)
{
	fs_lock(fs);
	fs->admit_ctx = ctx;
	fs->admit = fn;
	fs_unlock(fs);
}

uint64_t zf_fs_buffered_since(struct zf_fs *fs)
{
	struct zf_inode *in;
	uint64_t t = 0;

	fs_lock(fs);
	for (in = fs->dirty_files; in; in = in->u.file->wb->next)
		if (!t || in->u.file->wb->since < t)
			t = in->u.file->wb->since;
	fs_unlock(fs);
	return t;
}

uint64_t zf_fs_buffered_bytes(struct zf_fs *fs)
{
	uint64_t n;

	fs_lock(fs);
	n = fs->dirty_bytes + (fs->pack ? fs->pack->raw.len : 0);
	if (fs->pipe) {
		struct zf_pipe_stats ps;

		fs_pipe_stats(fs, &ps);
		n += ps.inflight_bytes;
	}
	fs_unlock(fs);
	return n;
}

uint64_t zf_fs_committed_seq(struct zf_fs *fs)
{
	return __atomic_load_n(&fs->durable_seq, __ATOMIC_RELAXED);
}

int zf_fs_upload_point(struct zf_fs *fs, int seal, struct zf_upload_point *ret)
{
	uint64_t sealed = 0;
	int r;

	fs_lock(fs);
	r = fs_commit(fs);
	if (r == 0 && seal && fs->open_seg) {
		r = zf_segstore_seal(fs->seg, &sealed);
		if (r == 0 && sealed) {
			fs_log_seal(fs, sealed);
			r = fs_commit(fs);
		}
	}
	if (r == 0) {
		ret->committed = zf_mlog_next_seq(fs->log) - 1;
		ret->seq = fs->open_first_seq ? fs->open_first_seq - 1 : ret->committed;
		ret->last_sealed = fs->last_sealed;
		ret->ckpt_seq = fs->ckpt_seq;
	}
	fs_unlock(fs);
	return r;
}

struct log_image {
	uint64_t from, to, next;
	struct zf_buf *out;
};

static int log_image_frame(void *ctx, const struct zf_frame *f)
{
	struct log_image *li = ctx;

	if (f->seq > li->to)
		return 0;
	if (f->seq != li->next)
		return -ENOENT; /* a gap: those records live in a checkpoint */
	zf_frame_put(li->out, f->type, f->flags, f->seq, f->payload, f->len);
	li->next++;
	return 0;
}

int zf_fs_log_image(struct zf_fs *fs, uint64_t from, uint64_t to, struct zf_buf *out)
{
	struct log_image li = { .from = from, .to = to, .next = from, .out = out };
	struct fs_meta_files mf = { 0 };
	struct zf_mlog_scan scan;
	size_t start = out->len, i;
	uint8_t *h;
	char name[64];
	int r;

	fs_lock(fs);
	h = zf_buf_grow(out, ZF_LOG_HDR_SIZE);
	memset(h, 0, ZF_LOG_HDR_SIZE);
	memcpy(h, ZF_LOG_MAGIC, 8);
	zf_put32(h + 8, ZF_LOG_VERSION);
	memcpy(h + 16, fs->fsid, 16);
	zf_put64(h + 32, from);
	zf_put64(h + 56, XXH3_64bits(h, 56));
	r = fs_meta_list(fs, &mf);
	for (i = 0; r == 0 && i < mf.nlogs && li.next <= to; i++) {
		if (i + 1 < mf.nlogs && mf.logs[i + 1] <= from)
			continue; /* wholly before the range */
		if (mf.logs[i] > to)
			break;
		zf_mlog_name(mf.logs[i], name, sizeof(name));
		r = zf_mlog_replay(fs->metafd, name, fs->fsid, li.next - 1, log_image_frame, &li,
				   &scan);
	}
	if (r == 0 && li.next != to + 1)
		r = -ENOENT;
	if (r)
		out->len = start;
	fs_unlock(fs);
	free(mf.logs);
	free(mf.ckpts);
	return r < 0 ? r : r ? -EIO : 0;
}

int zf_fs_seg_refs(struct zf_fs *fs, uint64_t **ret_ids, size_t *ret_n, uint64_t *ret_max,
		   uint64_t *ret_seq)
{
	int r;

	fs_lock(fs);
	r = fs_commit(fs);
	if (r == 0) {
		*ret_ids = fs_segments_used(fs, ret_n);
		*ret_max = fs->open_seg > fs->last_sealed ? fs->open_seg : fs->last_sealed;
		*ret_seq = fs->readonly ? 0 : zf_mlog_next_seq(fs->log) - 1;
	}
	fs_unlock(fs);
	return r;
}

int zf_fs_segments_used(struct zf_fs *fs, uint64_t **ret_ids, size_t *ret_n)
{
	fs_lock(fs);
	*ret_ids = fs_segments_used(fs, ret_n);
	fs_unlock(fs);
	return 0;
}
