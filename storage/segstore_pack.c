/*
 * storage/segstore_pack.c - building a super-chunk image: the chunk table,
 * the payload compressed with zstd (or kept raw when it does not shrink by
 * 1/32), and the payload checksum. The segment id and the header checksum
 * are filled in by the append (segstore_append.c).
 *
 * Building is the CPU-heavy half of an append, so it runs under no store
 * lock, on whichever thread owns the packer. Format: docs/FORMAT.md
 * "Super-chunks".
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "common/endian.h"
#include "common/log.h"
#include "common/util.h"
#include "storage/segstore_internal.h"

/*
 * A compression context. Building is the CPU-heavy half of an append, so it
 * runs outside every store lock, on whichever thread owns the packer (the
 * core's compression workers each take one; append() uses the store's own
 * under wlock).
 */
struct zf_sc_packer {
	ZSTD_CCtx *cctx;
	int level;		/* level cctx is set to */
};

struct zf_sc_packer *zf_sc_packer_new(void)
{
	struct zf_sc_packer *pk = zf_calloc(1, sizeof(*pk));

	pk->cctx = ZSTD_createCCtx();
	if (!pk->cctx ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(pk->cctx, ZSTD_c_contentSizeFlag, 1))) {
		zf_sc_packer_free(pk);
		return NULL;
	}
	pk->level = INT32_MIN;
	return pk;
}

void zf_sc_packer_free(struct zf_sc_packer *pk)
{
	if (!pk)
		return;
	ZSTD_freeCCtx(pk->cctx);
	free(pk);
}

void zf_sc_image_free(struct zf_sc_image *img)
{
	if (!img)
		return;
	free(img->p);
	memset(img, 0, sizeof(*img));
}

/*
 * Compress src into dst[0..cap): the frame length, or 0 when it does not
 * fit (the data does not shrink enough to be worth a decompression).
 */
static size_t zf_sc_zstd(struct zf_sc_packer *pk, void *dst, size_t cap, const void *src,
			 size_t len)
{
	size_t z = ZSTD_compress2(pk->cctx, dst, cap, src, len);

	if (!ZSTD_isError(z))
		return z;
	if (ZSTD_getErrorCode(z) != ZSTD_error_dstSize_tooSmall)
		zf_warn("zstd compression failed, storing raw: %s", ZSTD_getErrorName(z));
	/* ZSTD_compress2() starts a new frame on every call: cctx is reusable */
	return 0;
}

/*
 * Is this payload worth compressing? Two 64 KiB samples (start and middle)
 * are tried first: media, archives and encrypted data fail both at a
 * fraction of the cost of compressing 4 MiB only to store it raw. A payload
 * whose samples do not shrink by 1/32 is stored raw; one that compresses
 * only elsewhere loses that gain, which is rare in real files.
 */
#define ZF_SC_SAMPLE (64u << 10)

static bool zf_sc_compressible(struct zf_sc_packer *pk, const uint8_t *raw, uint32_t raw_len,
			       uint8_t *scratch)
{
	const size_t cap = ZF_SC_SAMPLE - ZF_SC_SAMPLE / 32 - 1;

	if (raw_len < 4 * ZF_SC_SAMPLE)
		return true; /* small: the whole try is as cheap as the samples */
	return zf_sc_zstd(pk, scratch, cap, raw, ZF_SC_SAMPLE) ||
	       zf_sc_zstd(pk, scratch, cap, raw + raw_len / 2, ZF_SC_SAMPLE);
}

int zf_sc_packer_build(struct zf_sc_packer *pk, int level, const struct zf_sc_chunk *chunks,
		       uint32_t n, const void *raw, uint32_t raw_len, struct zf_sc_image *img)
{
	size_t tlen = (size_t)n * ZF_SC_ENT_SIZE;
	size_t need = ZF_SC_HDR_SIZE + tlen + raw_len;
	size_t cap = raw_len - raw_len / 32 - 1;
	uint64_t sum = 0;
	uint8_t *p, *payload;
	uint16_t flags = 0;
	uint32_t i, stored = 0;

	if (!chunks || !raw || n == 0 || n > ZF_SC_CHUNKS_MAX || raw_len == 0 ||
	    raw_len > ZF_SC_RAW_MAX)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (chunks[i].len == 0)
			return -EINVAL;
		sum += chunks[i].len;
	}
	if (sum != raw_len)
		return -EINVAL;
	if (level != pk->level) {
		if (ZSTD_isError(ZSTD_CCtx_setParameter(pk->cctx, ZSTD_c_compressionLevel, level)))
			return -EINVAL;
		pk->level = level;
	}
	if (img->cap < need) {
		free(img->p);
		img->p = zf_malloc(need);
		img->cap = need;
	}
	p = img->p;
	payload = p + ZF_SC_HDR_SIZE + tlen;

	/* the breakeven rule: a frame that saves less than 1/32 is not kept */
	if (cap && zf_sc_compressible(pk, raw, raw_len, payload))
		stored = (uint32_t)zf_sc_zstd(pk, payload, cap, raw, raw_len);
	if (stored) {
		flags |= ZF_SC_F_ZSTD;
	} else {
		memcpy(payload, raw, raw_len);
		stored = raw_len;
	}

	for (i = 0; i < n; i++) {
		uint8_t *ent = p + ZF_SC_HDR_SIZE + (size_t)i * ZF_SC_ENT_SIZE;

		memcpy(ent, chunks[i].id.b, ZF_CHUNK_ID_LEN);
		zf_put32(ent + ZF_SC_ENT_LEN_OFF, chunks[i].len);
	}
	zf_put32(p, ZF_SC_MAGIC);
	zf_put16(p + 4, ZF_SC_VERSION);
	zf_put16(p + ZF_SC_FLAGS_OFF, flags);
	zf_put32(p + ZF_SC_NCHUNKS_OFF, n);
	zf_put32(p + ZF_SC_RAW_LEN_OFF, raw_len);
	zf_put32(p + ZF_SC_STORED_LEN_OFF, stored);
	zf_put32(p + 20, 0);
	zf_put64(p + ZF_SC_SEG_OFF, 0); /* and the header checksum: set by the append */
	zf_put64(p + ZF_SC_PCSUM_OFF, XXH3_64bits(payload, stored));
	img->len = (uint32_t)(ZF_SC_HDR_SIZE + tlen + stored);
	img->raw_len = raw_len;
	img->n = n;
	return 0;
}

