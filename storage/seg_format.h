/*
 * storage/seg_format.h - on-disk layout of segment files and super-chunks.
 * The only place these layouts are written down in code; docs/FORMAT.md is
 * their specification ("Segments", "Super-chunks").
 *
 * A segment file <dev-dir>/seg/<id, %016llx>.zseg is
 *
 *	segment header (64 bytes)
 *	super-chunk 1 | super-chunk 2 | ... (back to back, no padding)
 *	segment footer (64 bytes, only once sealed)
 *
 * and a super-chunk is
 *
 *	super-chunk header (48 bytes) | chunk table (n x 20 bytes) | payload
 *
 * Every integer is little-endian; every checksum is XXH3-64 (seed 0, the
 * default secret). Layouts are given as byte offsets; codecs use
 * common/endian.h, never packed structs. A super-chunk is self-verifying: a
 * ranged read of exactly [off, off + disk_len) checks without any other byte
 * of the segment.
 */
#ifndef ZF_STORAGE_SEG_FORMAT_H
#define ZF_STORAGE_SEG_FORMAT_H

#include <stdint.h>

/* ---- segment header: offset 0 of every segment file, 64 bytes ---- */
#define ZF_SEG_MAGIC "ZFSEGMT1"		/*  0: 8 bytes */
#define ZF_SEG_MAGIC_LEN 8u
#define ZF_SEG_VERSION 1u		/*  8: le32 version */
					/* 12: le32 flags (0) */
#define ZF_SEG_HDR_ID_OFF 16u		/* 16: le64 segment id (== file name) */
#define ZF_SEG_HDR_FSID_OFF 24u		/* 24: fsid[16] */
					/* 40: 16 reserved zero bytes */
#define ZF_SEG_HDR_CSUM_OFF 56u		/* 56: le64 XXH3-64 of bytes 0..55 */
#define ZF_SEG_HDR_SIZE 64u

/* ---- super-chunk header: 48 bytes, then the chunk table ---- */
#define ZF_SC_MAGIC 0x4353465au		/*  0: le32 "ZFSC" */
#define ZF_SC_VERSION 1u		/*  4: le16 version */
#define ZF_SC_FLAGS_OFF 6u		/*  6: le16 flags (ZF_SC_F_*) */
#define ZF_SC_NCHUNKS_OFF 8u		/*  8: le32 n, number of chunks (>= 1) */
#define ZF_SC_RAW_LEN_OFF 12u		/* 12: le32 raw (decompressed) length */
#define ZF_SC_STORED_LEN_OFF 16u	/* 16: le32 stored payload length */
					/* 20: le32 reserved 0 */
#define ZF_SC_SEG_OFF 24u		/* 24: le64 id of the segment it is in */
#define ZF_SC_PCSUM_OFF 32u		/* 32: le64 XXH3-64 of the stored payload */
#define ZF_SC_HCSUM_OFF 40u		/* 40: le64 XXH3-64 of bytes 0..39
					 *     followed by the whole chunk table */
#define ZF_SC_HDR_SIZE 48u
#define ZF_SC_HCSUM_COVER 40u		/* header bytes covered by the checksum */

/* chunk table entry: 0 chunk id (16 bytes), 16 le32 chunk length (>= 1) */
#define ZF_SC_ENT_SIZE 20u
#define ZF_SC_ENT_LEN_OFF 16u

/* payload follows the table: stored_len bytes, see ZF_SC_F_ZSTD */

/* flags */
#define ZF_SC_F_ZSTD 0x0001u		/* payload is one zstd frame (with its
					 * content size) of raw_len bytes; else
					 * the raw bytes, stored_len == raw_len */
#define ZF_SC_F_ENCRYPTED 0x0002u	/* reserved for authenticated encryption:
					 * must be 0 in version 1, rejected on
					 * read */
#define ZF_SC_F_KNOWN (ZF_SC_F_ZSTD | ZF_SC_F_ENCRYPTED)

/*
 * Sanity bounds, checked on write and on read before anything is
 * allocated. The packer fills a super-chunk with a few MiB (ZF_CHUNK_MAX is
 * 256 KiB); 64 MiB of raw data is far above that and keeps a hostile or
 * corrupt header from making the reader allocate gigabytes. Every chunk is
 * at least one byte, so n <= raw_len; the table is bounded separately so a
 * super-chunk's disk length always fits the le32 disk_len of a location.
 */
#define ZF_SC_RAW_MAX (64u << 20)
#define ZF_SC_CHUNKS_MAX (1u << 20)
#define ZF_SC_DISK_MAX                                                         \
	(ZF_SC_HDR_SIZE + ZF_SC_CHUNKS_MAX * ZF_SC_ENT_SIZE + ZF_SC_RAW_MAX)

/* ---- segment footer: the last 64 bytes of a sealed segment ---- */
#define ZF_SEG_FTR_MAGIC "ZFSEGEND"	/*  0: 8 bytes */
#define ZF_SEG_FTR_VERSION 1u		/*  8: le32 version */
					/* 12: le32 flags (0) */
#define ZF_SEG_FTR_ID_OFF 16u		/* 16: le64 segment id */
#define ZF_SEG_FTR_NSC_OFF 24u		/* 24: le64 number of super-chunks */
#define ZF_SEG_FTR_END_OFF 32u		/* 32: le64 data end: offset of the
					 *     footer = header + super-chunks */
#define ZF_SEG_FTR_RAW_OFF 40u		/* 40: le64 sum of raw_len of them */
					/* 48: le64 reserved 0 */
#define ZF_SEG_FTR_CSUM_OFF 56u		/* 56: le64 XXH3-64 of bytes 0..55 */
#define ZF_SEG_FTR_SIZE 64u

/* segment file names: 16 lower-case hex digits of the id + ".zseg" */
#define ZF_SEG_SUFFIX ".zseg"
#define ZF_SEG_NAME_LEN 21u		/* without the terminating NUL */

/* a super-chunk header decoded by storage/segstore_codec.c (host byte order) */
struct zf_sc_hdr {
	uint16_t version;
	uint16_t flags;
	uint32_t nchunks;
	uint32_t raw_len;
	uint32_t stored_len;
	uint64_t seg;
	uint64_t payload_csum;
	uint64_t hdr_csum;
};

#endif
