/*
 * storage/mlog.h - the append-only metadata log and checkpoint files
 *
 * Records are framed (header + payload, XXH3-64 checksummed, sequence
 * numbered) and grouped into transactions: the last record of a transaction
 * carries ZF_REC_F_TXN_END and replay applies a transaction whole or not at
 * all. Commits are group commits: every complete transaction added since the
 * last commit is written with one write(2) and one fdatasync(2).
 *
 * Replay of a log file stops at the first bad frame. If nothing valid
 * follows, it was a torn write (the tail is dropped with a log line and, when
 * writable, cut off); a valid frame after it is corruption before the tail:
 * -EBADMSG naming the file and offset.
 *
 * Checkpoints use the same framing; zf_ckpt_writer streams one to a .tmp
 * file, and zf_ckpt_writer_finish publishes it (fsync, rename, dir fsync).
 *
 * Not thread-safe: the caller (storage/fs.c) serialises under fs->lock.
 * Format: docs/FORMAT.md "Metadata log", "Records", "Checkpoints".
 */
#ifndef ZF_STORAGE_MLOG_H
#define ZF_STORAGE_MLOG_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* one decoded frame; payload points into the caller's buffer */
struct zf_frame {
	uint8_t type, flags;
	uint32_t len;
	uint64_t seq;
	const uint8_t *payload;
	uint64_t off;		/* offset of the frame in its file (replay and load only) */
};

/*
 * Parse the frame at p (avail bytes). Returns the frame's total size, 0 when
 * avail is too short to hold it (possibly torn), or -EBADMSG when the magic,
 * reserved fields or checksum do not match.
 */
ssize_t zf_frame_parse(const uint8_t *p, size_t avail, struct zf_frame *ret_frame);

/* append a framed record to b with its checksum (seq fixed now) */
void zf_frame_put(struct zf_buf *b, uint8_t type, uint8_t flags, uint64_t seq,
		  const void *payload, uint32_t len);

/* log file name for the file whose first record is first_seq */
void zf_mlog_name(uint64_t first_seq, char *buf, size_t len);
void zf_ckpt_name(uint64_t seq, char *buf, size_t len);

/* ---- replay ---- */

/* called for each record of a complete transaction, in order; non-zero stops */
typedef int (*zf_frame_fn)(void *ctx, const struct zf_frame *f);

struct zf_mlog_scan {
	uint64_t first_seq;	/* from the header */
	uint64_t last_seq;	/* last applied record (first_seq - 1 if none) */
	uint64_t end;		/* end offset of the last complete transaction */
	uint64_t dropped;	/* bytes of a torn tail that were dropped */
};

/*
 * Replay the log file name in dirfd: frames with seq <= skip_upto are checked
 * but not delivered. expect_seq, when non-zero, is the seq the file must
 * start with. Returns 0 (ret_scan filled), -EBADMSG (corrupt; logged), or
 * the callback's non-zero value, or -errno.
 */
int zf_mlog_replay(int dirfd, const char *name, const uint8_t fsid[16], uint64_t skip_upto,
		   zf_frame_fn fn, void *ctx, struct zf_mlog_scan *ret_scan);

/*
 * Salvage (fsck): bytes [off, off + len) of file name hold no valid frame
 * (a bad checksum, magic or header, or a stale frame out of sequence); p
 * points at them. p NULL (len 0): records from expect_seq are missing
 * before offset off (the next frame that verifies has a later seq).
 * expect_seq is the seq the next record should have had (in a checkpoint:
 * its record number). len 0 with p not NULL: a checkpoint's END is missing.
 */
typedef void (*zf_frame_bad_fn)(void *ctx, const char *name, uint64_t off, const uint8_t *p,
				size_t len, uint64_t expect_seq);

/*
 * zf_mlog_replay that survives damage: a bad region before the tail is
 * reported to bad and skipped (replay resumes at the next frame whose magic
 * and checksum verify); the complete frames of a transaction cut by damage
 * are delivered one by one; a file header that does not verify is reported
 * and the seq taken from the file name. A torn tail is dropped as usual
 * (ret_scan->dropped, not reported to bad). fn's non-zero still stops.
 */
int zf_mlog_replay_salvage(int dirfd, const char *name, const uint8_t fsid[16],
			   uint64_t skip_upto, zf_frame_fn fn, zf_frame_bad_fn bad, void *ctx,
			   struct zf_mlog_scan *ret_scan);

/* ---- writing ---- */

struct zf_mlog;

/* create a new log file starting at first_seq (fsync'd, directory too) */
int zf_mlog_create(int dirfd, const uint8_t fsid[16], uint64_t first_seq,
		   struct zf_mlog **ret_log);
/* continue an existing file: cut it at end (dropping a torn tail) and
 * append from there; next_seq is the seq of the next record */
int zf_mlog_reopen(int dirfd, const char *name, uint64_t end, uint64_t next_seq,
		   struct zf_mlog **ret_log);
void zf_mlog_close(struct zf_mlog *log);

/* add a record to the open transaction; early records are written before all
 * other pending ones at the next commit (used for super-chunk records that
 * pending records may reference) */
void zf_mlog_add(struct zf_mlog *log, uint8_t type, const void *payload, uint32_t len);
void zf_mlog_add_early(struct zf_mlog *log, uint8_t type, const void *payload, uint32_t len);
/* close the open transaction (no-op if empty) */
void zf_mlog_txn_end(struct zf_mlog *log);
/* drop the open, unterminated transaction (an operation failed midway) */
void zf_mlog_txn_abort(struct zf_mlog *log);

/* bytes of complete transactions waiting for a commit */
size_t zf_mlog_pending(const struct zf_mlog *log);

/*
 * Write every complete transaction and fdatasync. On error nothing is
 * considered written (the file is cut back) and the records stay pending.
 */
int zf_mlog_commit(struct zf_mlog *log);

/* bytes in the file, seq of the next record, and the file's first seq */
uint64_t zf_mlog_size(const struct zf_mlog *log);
uint64_t zf_mlog_next_seq(const struct zf_mlog *log);
uint64_t zf_mlog_first_seq(const struct zf_mlog *log);

/* ---- the durable mark (meta/synced) ---- */

/*
 * Every record up to a mark's seq had been fdatasync'd when the mark was
 * written, so a log that ends (or turns bad) before it is damaged, not torn.
 * Two slots, written alternately (slot = gen & 1), so a torn write of one
 * leaves the other. zf_synced_read returns 0 with *ret_seq = *ret_gen = 0
 * when there is no mark (an older dev-dir, or both slots bad: logged).
 */
int zf_synced_read(int dirfd, const uint8_t fsid[16], uint64_t *ret_seq, uint64_t *ret_gen);
/* write generation gen (slot gen & 1) with seq, fdatasync; 0 or -errno */
int zf_synced_write(int dirfd, const uint8_t fsid[16], uint64_t seq, uint64_t gen);

/* ---- checkpoints ---- */
struct zf_ckpt_writer;

int zf_ckpt_writer_new(int dirfd, const uint8_t fsid[16], uint64_t seq,
		       struct zf_ckpt_writer **ret_w);
/* add one record; flushes the write buffer as it fills; 0 or -errno */
int zf_ckpt_writer_add(struct zf_ckpt_writer *w, uint8_t type, const void *payload,
		       uint32_t len);
/* add the END record, fsync, publish as ckpt.<seq>; frees w in all cases */
int zf_ckpt_writer_finish(struct zf_ckpt_writer *w);
void zf_ckpt_writer_abort(struct zf_ckpt_writer *w);

/*
 * Load checkpoint name: header checked, every record delivered in order, the
 * END record's count verified. Returns 0, -EBADMSG (logged) or -errno.
 */
int zf_ckpt_load(int dirfd, const char *name, const uint8_t fsid[16], zf_frame_fn fn,
		 void *ctx, uint64_t *ret_seq);

/*
 * zf_ckpt_load that survives damage (fsck): bad regions, a bad header, a
 * missing or wrong END and trailing bytes are reported to bad and skipped;
 * every record that verifies is delivered. The seq comes from the name
 * when the header is damaged.
 */
int zf_ckpt_load_salvage(int dirfd, const char *name, const uint8_t fsid[16], zf_frame_fn fn,
			 zf_frame_bad_fn bad, void *ctx, uint64_t *ret_seq);

#endif
