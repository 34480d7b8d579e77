/*
 * storage/chunker.h - content-defined chunking (FastCDC) and chunk ids
 *
 * Cut points come from a gear rolling hash whose 256-entry table is derived
 * from the filesystem's secret (created at mkfs), so chunk boundaries do not
 * reveal content to someone who sees only chunk sizes. Normalized chunking
 * (FastCDC, two masks around the average size) keeps sizes near the average.
 * Chunk ids are XXH3-128 keyed with a secret derived from the same key.
 *
 * A chunker is immutable after zf_chunker_new() and may be shared by threads.
 * Format: docs/FORMAT.md "Chunking".
 */
#ifndef ZF_STORAGE_CHUNKER_H
#define ZF_STORAGE_CHUNKER_H

#include <stddef.h>
#include <stdint.h>

#define ZF_SECRET_LEN 32
#define ZF_CHUNK_ID_LEN 16

/* default sizes: min/avg/max 16/64/256 KiB */
#define ZF_CHUNK_MIN (16u << 10)
#define ZF_CHUNK_AVG (64u << 10)
#define ZF_CHUNK_MAX (256u << 10)

struct zf_chunk_id {
	uint8_t b[ZF_CHUNK_ID_LEN];
};

struct zf_chunker;

/*
 * Create a chunker. min < avg < max, avg a power of two, max <= 16 MiB.
 * Returns 0, or -EINVAL for bad sizes.
 */
int zf_chunker_new(const uint8_t secret[ZF_SECRET_LEN], uint32_t min, uint32_t avg,
		   uint32_t max, struct zf_chunker **ret_chunker);
void zf_chunker_free(struct zf_chunker *c);

/*
 * Length of the first chunk of buf[0..len). If no cut point is found and
 * len < max: returns len when at_eof (the stream ends here), else 0 (the
 * caller must supply more bytes). Never returns more than max or len.
 */
size_t zf_chunker_cut(const struct zf_chunker *c, const uint8_t *buf, size_t len, int at_eof);

/* keyed XXH3-128 of one chunk's bytes, stored little-endian (low64 first) */
void zf_chunker_id(const struct zf_chunker *c, const void *buf, size_t len,
		   struct zf_chunk_id *ret_id);

uint32_t zf_chunker_max(const struct zf_chunker *c);

#endif
