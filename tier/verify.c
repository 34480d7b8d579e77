/*
 * tier/verify.c - verifiers of bucket objects (see verify.h)
 *
 * Format: docs/FORMAT.md "Bucket" and the formats it refers to.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "common/endian.h"
#include "storage/meta_format.h"
#include "storage/mlog.h"
#include "tier/verify.h"

/* the superblock's fsid, or -EBADMSG with why */
int zf_tier_sb_verify(const uint8_t *p, size_t len, uint8_t fsid[16], char *why, size_t wlen)
{
	if (len != ZF_SB_SIZE) {
		snprintf(why, wlen, "%zu bytes, not %u", len, ZF_SB_SIZE);
		return -EBADMSG;
	}
	if (memcmp(p, ZF_SB_MAGIC, 8) || zf_get64(p + ZF_SB_CSUM_OFF) != XXH3_64bits(p, ZF_SB_CSUM_OFF)) {
		snprintf(why, wlen, "bad magic or checksum");
		return -EBADMSG;
	}
	if (zf_get32(p + 8) != ZF_SB_VERSION) {
		snprintf(why, wlen, "unsupported version %u", zf_get32(p + 8));
		return -EBADMSG;
	}
	memcpy(fsid, p + 16, 16);
	return 0;
}

/* the 64-byte header of a log piece or checkpoint: its kind, fsid and seq */
int zf_tier_file_hdr_verify(const uint8_t *p, size_t len, const char *magic, uint32_t version,
			    const uint8_t fsid[16], uint64_t seq, char *why, size_t wlen)
{
	if (len < ZF_LOG_HDR_SIZE) {
		snprintf(why, wlen, "truncated: %zu bytes, shorter than its header", len);
		return -EBADMSG;
	}
	if (memcmp(p, magic, 8) || zf_get64(p + 56) != XXH3_64bits(p, 56)) {
		snprintf(why, wlen, "its header does not verify (magic or checksum)");
		return -EBADMSG;
	}
	if (zf_get32(p + 8) != version) {
		snprintf(why, wlen, "unsupported version %u", zf_get32(p + 8));
		return -EBADMSG;
	}
	if (memcmp(p + 16, fsid, 16)) {
		snprintf(why, wlen, "belongs to another filesystem (its fsid is not the superblock's)");
		return -EBADMSG;
	}
	if (zf_get64(p + 32) != seq) {
		snprintf(why, wlen, "its header says record 0x%" PRIx64 ", its key 0x%" PRIx64
			 " (another object under this key)", zf_get64(p + 32), seq);
		return -EBADMSG;
	}
	return 0;
}

/*
 * A bucket log piece: a log file of fsid whose header says first, holding
 * exactly records first..last in complete transactions. 0, or -EBADMSG
 * with why. Either way *ret_ok_len and *ret_ok_last give the longest prefix
 * of complete transactions that verifies (the header alone: first - 1).
 */
int zf_tier_piece_verify(const uint8_t *p, size_t len, const uint8_t fsid[16], uint64_t first,
			 uint64_t last, zf_tier_frame_fn fn, void *ctx, size_t *ret_ok_len,
			 uint64_t *ret_ok_last, char *why, size_t wlen)
{
	uint64_t seq = first;
	struct zf_frame f = { 0 };
	size_t off = ZF_LOG_HDR_SIZE;
	int r;

	*ret_ok_len = 0;
	*ret_ok_last = first - 1;
	r = zf_tier_file_hdr_verify(p, len, ZF_LOG_MAGIC, ZF_LOG_VERSION, fsid, first, why, wlen);
	if (r < 0)
		return r;
	*ret_ok_len = off;
	while (off < len) {
		ssize_t n = zf_frame_parse(p + off, len - off, &f);

		if (n == 0) {
			snprintf(why, wlen, "truncated: record 0x%" PRIx64 " at offset %zu runs past "
				 "its end (%zu bytes)", seq, off, len);
			return -EBADMSG;
		}
		if (n < 0) {
			snprintf(why, wlen, "record 0x%" PRIx64 " at offset %zu does not verify "
				 "(checksum, magic or length)", seq, off);
			return -EBADMSG;
		}
		if (f.seq != seq || seq > last) {
			snprintf(why, wlen, "the record at offset %zu is 0x%" PRIx64 ", expected 0x%"
				 PRIx64 "%s", off, f.seq, seq, seq > last ? " (past its last)" : "");
			return -EBADMSG;
		}
		if (fn)
			fn(ctx, &f);
		off += n;
		if (f.flags & ZF_REC_F_TXN_END) {
			*ret_ok_len = off;
			*ret_ok_last = seq;
		}
		seq++;
	}
	if (seq - 1 != last) {
		snprintf(why, wlen, "truncated: it ends after record 0x%" PRIx64 ", its key says 0x%"
			 PRIx64, seq - 1, last);
		return -EBADMSG;
	}
	if (!(f.flags & ZF_REC_F_TXN_END)) {
		snprintf(why, wlen, "its last transaction is incomplete (record 0x%" PRIx64
			 " does not end it)", last);
		return -EBADMSG;
	}
	return 0;
}

/*
 * a bucket checkpoint as of record seq: every frame, STATE first, END last
 * and exactly at the end
 */
int zf_tier_ckpt_verify(const uint8_t *p, size_t len, const uint8_t fsid[16], uint64_t seq,
			zf_tier_frame_fn fn, void *ctx, char *why, size_t wlen)
{
	struct zf_frame f = { 0 };
	size_t off = ZF_CKPT_HDR_SIZE;
	uint64_t n = 1;
	int r;

	r = zf_tier_file_hdr_verify(p, len, ZF_CKPT_MAGIC, ZF_CKPT_VERSION, fsid, seq, why, wlen);
	if (r < 0)
		return r;
	while (off < len) {
		ssize_t k = zf_frame_parse(p + off, len - off, &f);

		if (k <= 0) {
			snprintf(why, wlen, "record %" PRIu64 " at offset %zu %s", n, off,
				 k == 0 ? "runs past its end (truncated)" : "does not verify");
			return -EBADMSG;
		}
		if (f.seq != n || (n == 1) != (f.type == ZF_REC_STATE)) {
			snprintf(why, wlen, "record %" PRIu64 " at offset %zu is out of order", n, off);
			return -EBADMSG;
		}
		if (fn)
			fn(ctx, &f);
		off += k;
		if (f.type == ZF_REC_END)
			break;
		n++;
	}
	if (f.type != ZF_REC_END) {
		snprintf(why, wlen, "truncated: no END record (%zu bytes)", len);
		return -EBADMSG;
	}
	if (f.len != 8 || zf_get64(f.payload) != n - 1 || off != len) {
		snprintf(why, wlen, "its END record does not match (record %" PRIu64 " at offset %zu "
			 "of %zu bytes)", n, off - ZF_REC_HDR_SIZE - f.len, len);
		return -EBADMSG;
	}
	return 0;
}
