/*
 * storage/meta_format.h - on-disk layout of the superblock, the metadata log
 * and checkpoints. The only place these layouts are written down in code;
 * docs/FORMAT.md is their specification ("Superblock", "Metadata log",
 * "Records", "Checkpoints").
 *
 * Every integer is little-endian and every structure starts with a magic and
 * a version and is covered by an XXH3-64 checksum verified on every read.
 * Layouts are given as byte offsets; codecs use common/endian.h.
 */
#ifndef ZF_STORAGE_META_FORMAT_H
#define ZF_STORAGE_META_FORMAT_H

#include <stdint.h>

/* ---- superblock: <dev-dir>/superblock, 128 bytes (storage/superblock.c) ---- */
#define ZF_SB_MAGIC "ZFSUPER1"		/*  0: 8 bytes */
#define ZF_SB_VERSION 1u		/*  8: le32 version */
#define ZF_SB_INCOMPAT_OFF 12u		/* 12: le32 incompatible features (once "flags", 0) */
					/* 16: fsid[16] */
					/* 32: secret[32] (chunking + id key; 0 when encrypted) */
					/* 64: le32 chunk min, 68: avg, 72: max */
					/* 76: le32 zstd level */
					/* 80: le64 segment size limit */
					/* 88: le64 creation time (unix s) */
#define ZF_SB_RO_COMPAT_OFF 96u		/* 96: le32 read-only-compatible features */
#define ZF_SB_COMPAT_OFF 100u		/* 100: le32 compatible features */
#define ZF_SB_MADE_BY_OFF 104u		/* 104: le32 version of the zerofs that made it */
#define ZF_SB_RESERVED_OFF 108u		/* 108: 12 reserved zero bytes */
#define ZF_SB_SIZE 128u			/* 120: le64 XXH3-64 of bytes 0..119 */
#define ZF_SB_CSUM_OFF 120u

/* ---- log file: <dev-dir>/meta/log.<first seq, %016llx> ---- */
#define ZF_LOG_MAGIC "ZFMLOG01"		/*  0: 8 bytes */
#define ZF_LOG_VERSION 1u		/*  8: le32 version, 12: le32 flags (0) */
					/* 16: fsid[16] */
					/* 32: le64 first seq of this file */
					/* 40: 16 reserved zero bytes */
#define ZF_LOG_HDR_SIZE 64u		/* 56: le64 XXH3-64 of bytes 0..55 */

/* ---- checkpoint: <dev-dir>/meta/ckpt.<seq, %016llx> ---- */
#define ZF_CKPT_MAGIC "ZFCKPT01"	/*  0: 8 bytes */
#define ZF_CKPT_VERSION 1u		/*  8: le32 version, 12: le32 flags (0) */
					/* 16: fsid[16] */
					/* 32: le64 seq: the last log record it covers */
					/* 40: 16 reserved zero bytes */
#define ZF_CKPT_HDR_SIZE 64u		/* 56: le64 XXH3-64 of bytes 0..55 */
/* then records (framing below, seq = 1, 2, ... within the file), the last
 * one of type ZF_REC_END */

/* ---- durable mark: <dev-dir>/meta/synced, two 64-byte slots ---- */
#define ZF_SYNCED_NAME "synced"
#define ZF_SYNCED_MAGIC "ZFSYNC01"	/*  0: 8 bytes */
#define ZF_SYNCED_VERSION 1u		/*  8: le32 version, 12: le32 flags (0) */
					/* 16: fsid[16] */
					/* 32: le64 seq: every log record <= seq was
					 *     durable (fdatasync'd) when this was written */
					/* 40: le64 generation (slot = generation & 1) */
					/* 48: 8 reserved zero bytes */
#define ZF_SYNCED_SLOT 64u		/* 56: le64 XXH3-64 of bytes 0..55 */

/* ---- record framing (log and checkpoint) ---- */
#define ZF_REC_MAGIC 0x524c465au	/*  0: le32 "ZFLR" */
					/*  4: u8 type, 5: u8 flags, 6: le16 0 */
					/*  8: le32 payload length */
					/* 12: le32 reserved 0 */
					/* 16: le64 seq */
					/* 24: le64 checksum: XXH3-64 of the payload,
					 *     seeded with XXH3-64 of bytes 0..23 */
#define ZF_REC_HDR_SIZE 32u
#define ZF_REC_MAX_PAYLOAD (64u << 20)	/* sanity bound, far above any record */
#define ZF_REC_F_TXN_END 0x01u		/* last record of a transaction */

/* record types and payload layouts (offsets within the payload) */
enum zf_rec_type {
	/* an inode's full attributes (insert or replace):
	 *  0 ino le64, 8 size le64, 16 rdev le64, 24 mode le32, 28 uid le32,
	 * 32 gid le32, 36 nlink le32, 40 gen le32, 44 flags le32 (ZF_INODE_*),
	 * 48 atime sec le64, 56 atime nsec le32, 60 mtime sec le64,
	 * 68 mtime nsec le32, 72 ctime sec le64, 80 ctime nsec le32,
	 * 84 symlink target length le32, 88 target bytes */
	ZF_REC_INODE = 1,
	/* an inode is gone: 0 ino le64 */
	ZF_REC_INODE_DEL = 2,
	/* a directory entry: 0 parent le64, 8 ino le64, 16 name length le16,
	 * 18 name bytes (1..255, no '/' and no NUL) */
	ZF_REC_DIRENT_ADD = 3,
	/* removal: 0 parent le64, 8 name length le16, 10 name bytes */
	ZF_REC_DIRENT_DEL = 4,
	/* a file's data mapping in [start, end) is replaced by n extents:
	 *  0 ino le64, 8 start le64, 16 end le64, 24 n le32, 28 then n x 32:
	 *  file offset le64, length le32, offset within the chunk le32,
	 *  chunk id 16 bytes. Gaps are holes. */
	ZF_REC_EXTENTS = 5,
	/* 0 ino le64, 8 name length le16, 10 value length le32, 14 name, value */
	ZF_REC_XATTR_SET = 6,
	/* 0 ino le64, 8 name length le16, 10 name */
	ZF_REC_XATTR_DEL = 7,
	/* a super-chunk was written:
	 *  0 seg le64, 8 offset le64, 16 disk length le32, 20 raw length le32,
	 * 24 n le32, 28 then n x 28: chunk id 16 bytes, raw offset le32,
	 * length le32, reference count le32 (0 in the log; in a checkpoint the
	 * count the image holds, which replay re-derives and compares) */
	ZF_REC_SC = 8,
	/* a segment was sealed: 0 seg le64, 8 length le64 */
	ZF_REC_SEG_SEAL = 9,
	/* checkpoint only, first record: 0 next ino le64, 8 open segment le64,
	 * 16 open segment committed end le64, 24 last sealed segment le64 */
	ZF_REC_STATE = 10,
	/* checkpoint only, last record: 0 number of records before it le64 */
	ZF_REC_END = 11,
	/* chunks no longer stored (gc): 0 n le32, 4 then n chunk ids */
	ZF_REC_CHUNK_DEL = 12,
	/* gc rewrote live chunks into a new super-chunk: payload as ZF_REC_SC;
	 * every listed chunk exists and now lives here (its old copy becomes
	 * garbage), where ZF_REC_SC keeps a chunk's first location */
	ZF_REC_SC_MOVE = 13,
	/* 14 is unused (reserved once for gc) */
	/* chunks found damaged by fsck --repair: 0 n le32, 4 then n chunk ids.
	 * Reads of them fail with EIO; a chunk id the index does not know is
	 * added as damaged without a location (its super-chunk record was
	 * lost). A later SC record storing the same id heals the chunk. */
	ZF_REC_CHUNK_BAD = 15,
};

#define ZF_REC_INODE_FIXED 88u
/* INODE flags: bit 0 pinned (a regular file's data kept in the dev-dir; a
 * directory's new entries are made pinned); other bits must be 0 */
#define ZF_INODE_PINNED (1u << 0)
#define ZF_INODE_FLAGS_KNOWN ZF_INODE_PINNED
#define ZF_REC_EXT_SIZE 32u
#define ZF_REC_SC_ENT_SIZE 28u

#endif
