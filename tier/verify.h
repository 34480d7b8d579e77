/*
 * tier/verify.h - verifiers of bucket objects
 *
 * What the bucket's objects must be, checked the same way by restore,
 * fsck's audit and bucket gc (docs/FORMAT.md "Bucket"). Bucket objects are
 * published whole (a put replaces an object atomically), so anything in one
 * that does not verify is damage, never a torn tail. Each verifier returns
 * 0, or -EBADMSG with a one-line reason in why. Segment objects are
 * verified by the segment store's zf_seg_image_verify (storage/segstore.h):
 * their format is its business.
 */
#ifndef ZF_TIER_VERIFY_H
#define ZF_TIER_VERIFY_H

#include <stddef.h>
#include <stdint.h>

struct zf_frame;

/* called with every frame of a verified log piece or checkpoint */
typedef void (*zf_tier_frame_fn)(void *ctx, const struct zf_frame *f);

/* a superblock: its fsid into fsid */
int zf_tier_sb_verify(const uint8_t *p, size_t len, uint8_t fsid[16], char *why, size_t wlen);

/* the 64-byte header of a log piece or checkpoint: its kind, fsid and seq */
int zf_tier_file_hdr_verify(const uint8_t *p, size_t len, const char *magic, uint32_t version,
			    const uint8_t fsid[16], uint64_t seq, char *why, size_t wlen);

/*
 * A bucket log piece: a log file of fsid whose header says first, holding
 * exactly records first..last in complete transactions; fn (may be NULL)
 * sees every frame. Either way *ret_ok_len and *ret_ok_last give the
 * longest prefix of complete transactions that verifies (the header
 * alone: first - 1).
 */
int zf_tier_piece_verify(const uint8_t *p, size_t len, const uint8_t fsid[16], uint64_t first,
			 uint64_t last, zf_tier_frame_fn fn, void *ctx, size_t *ret_ok_len,
			 uint64_t *ret_ok_last, char *why, size_t wlen);

/*
 * A bucket checkpoint as of record seq: every frame, STATE first, END last
 * and exactly at the end; fn (may be NULL) sees every frame.
 */
int zf_tier_ckpt_verify(const uint8_t *p, size_t len, const uint8_t fsid[16], uint64_t seq,
			zf_tier_frame_fn fn, void *ctx, char *why, size_t wlen);

#endif
