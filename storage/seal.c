/*
 * storage/seal.c - compressed metadata and authenticated encryption of
 * bucket objects (storage/seal.h; layouts in docs/FORMAT.md).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <xxhash.h>
#include <zstd.h>

#include "common/endian.h"
#include "common/log.h"
#include "common/util.h"
#include "storage/bucket_keys.h"
#include "storage/seal.h"
#include "storage/seg_format.h"
#include "storage/segstore.h"
#include "storage/superblock.h"

#define TAG 16u				/* crypto_aead_xchacha20poly1305_ietf_ABYTES */
#define NONCE 24u			/* ..._NPUBBYTES */
#define META_ZSTD_LEVEL 3
/*
 * A metadata object's declared size is bounded before anything is
 * allocated: at most 16 GiB, and at most 64 times its frame plus 1 MiB
 * (checkpoints and logs compress about 4x; a frame claiming more is damage,
 * not a reason to allocate gigabytes).
 */
#define META_RAW_MAX (16ull << 30)
#define META_RATIO_MAX 64u
#define KDF_CTX "zerofs01"
enum { SUBKEY_CHUNKS = 1, SUBKEY_OBJECTS = 2 };

/* the associated data of a segment unit and of a whole object */
#define AD_SEG "ZFSEGU01"
#define AD_OBJ "ZFOBJT01"

static void sodium_ready(void)
{
	if (sodium_init() < 0) {
		zf_err("libsodium cannot start");
		abort();
	}
}

void zf_seal_chunk_secret(const uint8_t master[ZF_KEY_LEN], uint8_t secret[ZF_KEY_LEN])
{
	sodium_ready();
	crypto_kdf_derive_from_key(secret, ZF_KEY_LEN, SUBKEY_CHUNKS, KDF_CTX, master);
}

void zf_seal_init(struct zf_seal *s, uint32_t features, const uint8_t fsid[16],
		  const uint8_t *master)
{
	memset(s, 0, sizeof(*s));
	s->features = features;
	memcpy(s->fsid, fsid, 16);
	if (features & ZF_FEAT_ENCRYPT) {
		sodium_ready();
		crypto_kdf_derive_from_key(s->key, ZF_KEY_LEN, SUBKEY_OBJECTS, KDF_CTX, master);
	}
}

int zf_seal_is_plain(const struct zf_seal *s, const char *key)
{
	struct zf_bkey k;
	enum zf_bkey_kind kind = zf_bkey_parse(key, &k);

	if (kind == ZF_BKEY_IS_SUPERBLOCK || kind == ZF_BKEY_IS_KEYS)
		return 1;
	if (s->features & ZF_FEAT_ENCRYPT)
		return 0;
	return !((s->features & ZF_FEAT_META_ZSTD) &&
		 (kind == ZF_BKEY_IS_CKPT || kind == ZF_BKEY_IS_LOG || kind == ZF_BKEY_IS_SNAP));
}

static int is_meta(const char *key)
{
	struct zf_bkey k;
	enum zf_bkey_kind kind = zf_bkey_parse(key, &k);

	return kind == ZF_BKEY_IS_CKPT || kind == ZF_BKEY_IS_LOG || kind == ZF_BKEY_IS_SNAP;
}

/* "ZFOBJT01" | fsid | key */
static size_t obj_ad(const struct zf_seal *s, const char *key, uint8_t *ad, size_t len)
{
	size_t klen = strlen(key);

	if (24 + klen > len)
		klen = len - 24;
	memcpy(ad, AD_OBJ, 8);
	memcpy(ad + 8, s->fsid, 16);
	memcpy(ad + 24, key, klen);
	return 24 + klen;
}

int zf_seal_obj(const struct zf_seal *s, const char *key, const void *in, size_t len,
		void **ret, size_t *ret_len)
{
	uint8_t ad[24 + 1100];
	void *z = NULL;
	uint8_t *out;
	size_t zlen, adlen;

	if (zf_seal_is_plain(s, key)) {
		*ret = zf_malloc(len ? len : 1);
		memcpy(*ret, in, len);
		*ret_len = len;
		return 0;
	}
	if ((s->features & ZF_FEAT_META_ZSTD) && is_meta(key)) {
		z = zf_malloc(ZSTD_compressBound(len));
		zlen = ZSTD_compress(z, ZSTD_compressBound(len), in, len, META_ZSTD_LEVEL);
		if (ZSTD_isError(zlen)) {
			zf_err("cannot compress '%s': %s", key, ZSTD_getErrorName(zlen));
			free(z);
			return -EIO;
		}
		in = z;
		len = zlen;
	}
	if (!(s->features & ZF_FEAT_ENCRYPT)) {
		*ret = z ? z : zf_malloc(1);
		*ret_len = len;
		return 0;
	}
	out = zf_malloc(NONCE + len + TAG);
	randombytes_buf(out, NONCE);
	adlen = obj_ad(s, key, ad, sizeof(ad));
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + NONCE, NULL, in, len, ad, adlen, NULL, out,
						   s->key);
	free(z);
	*ret = out;
	*ret_len = NONCE + len + TAG;
	return 0;
}

int zf_unseal_obj(const struct zf_seal *s, const char *key, const void *in, size_t len,
		  void **ret, size_t *ret_len, char *why, size_t why_len)
{
	const uint8_t *p = in;
	uint8_t ad[24 + 1100];
	uint8_t *plain = NULL, *raw;
	unsigned long long size;
	size_t plen, r;

	if (zf_seal_is_plain(s, key)) {
		*ret = zf_malloc(len ? len : 1);
		memcpy(*ret, in, len);
		*ret_len = len;
		return 0;
	}
	if (s->features & ZF_FEAT_ENCRYPT) {
		if (len < NONCE + TAG) {
			snprintf(why, why_len, "authentication failed (%zu bytes: too short for a "
				 "sealed object)", len);
			return -EBADMSG;
		}
		plen = len - NONCE - TAG;
		plain = zf_malloc(plen ? plen : 1);
		if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, NULL, NULL, p + NONCE,
							       len - NONCE, ad,
							       obj_ad(s, key, ad, sizeof(ad)), p,
							       s->key) != 0) {
			free(plain);
			snprintf(why, why_len, "authentication failed (damaged, truncated, another "
				 "object's or another key's)");
			return -EBADMSG;
		}
		p = plain;
		len = plen;
	}
	if ((s->features & ZF_FEAT_META_ZSTD) && is_meta(key)) {
		size = ZSTD_getFrameContentSize(p, len);
		if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN ||
		    size > META_RAW_MAX || size > (unsigned long long)len * META_RATIO_MAX + (1u << 20)) {
			free(plain);
			snprintf(why, why_len, "not a zstd frame of a known, plausible size");
			return -EBADMSG;
		}
		raw = zf_malloc(size ? size : 1);
		r = ZSTD_decompress(raw, size, p, len);
		free(plain);
		if (ZSTD_isError(r) || r != size) {
			free(raw);
			snprintf(why, why_len, "its zstd frame does not decompress");
			return -EBADMSG;
		}
		*ret = raw;
		*ret_len = size;
		return 0;
	}
	*ret = plain;
	*ret_len = len;
	return 0;
}

/* ---- segments ---- */

/* unit k's nonce: the segment's, its offset xored into the last 8 bytes */
static void unit_nonce(const uint8_t seg_nonce[NONCE], uint64_t off, uint8_t out[NONCE])
{
	memcpy(out, seg_nonce, NONCE);
	zf_put64(out + 16, zf_get64(out + 16) ^ off);
}

/* "ZFSEGU01" | fsid | seg | off | len */
static void seg_ad(const struct zf_seal *s, uint64_t seg, uint64_t off, uint64_t len,
		   uint8_t ad[48])
{
	memcpy(ad, AD_SEG, 8);
	memcpy(ad + 8, s->fsid, 16);
	zf_put64(ad + 24, seg);
	zf_put64(ad + 32, off);
	zf_put64(ad + 40, len);
}

/* seal m[0..mlen) in place, its tag to mac */
static void unit_seal(const struct zf_seal *s, uint64_t seg, const uint8_t seg_nonce[NONCE],
		      uint64_t off, uint64_t unit_len, uint8_t *m, size_t mlen, uint8_t *mac)
{
	uint8_t nonce[NONCE], ad[48];

	unit_nonce(seg_nonce, off, nonce);
	seg_ad(s, seg, off, unit_len, ad);
	crypto_aead_xchacha20poly1305_ietf_encrypt_detached(m, mac, NULL, m, mlen, ad, sizeof(ad),
							    NULL, nonce, s->key);
}

static int unit_open(const struct zf_seal *s, uint64_t seg, const uint8_t seg_nonce[NONCE],
		     uint64_t off, uint64_t unit_len, uint8_t *c, size_t clen, const uint8_t *mac)
{
	uint8_t nonce[NONCE], ad[48];

	unit_nonce(seg_nonce, off, nonce);
	seg_ad(s, seg, off, unit_len, ad);
	return crypto_aead_xchacha20poly1305_ietf_decrypt_detached(c, NULL, c, clen, mac, ad,
								   sizeof(ad), nonce, s->key);
}

/*
 * A super-chunk or footer unit of length len: tag (16) | sealed bytes; the
 * 16 bytes dropped are the super-chunk's two checksums (32..48), the
 * footer's reserved word and checksum (48..64), all recomputed on opening.
 */
static void seal_tail_unit(const struct zf_seal *s, uint64_t seg, const uint8_t nonce[NONCE],
			   uint64_t off, uint8_t *u, size_t len, int footer)
{
	uint8_t tag[TAG];

	memmove(u + TAG, u, footer ? 48 : 32);
	unit_seal(s, seg, nonce, off, len, u + TAG, len - TAG, tag);
	memcpy(u, tag, TAG);
}

int zf_seal_seg(const struct zf_seal *s, uint64_t seg, void *img, size_t len)
{
	uint8_t *p = img, nonce[NONCE];
	uint64_t off = ZF_SEG_HDR_SIZE, dlen;

	if (!(s->features & ZF_FEAT_ENCRYPT))
		return 0;
	if (len < ZF_SEG_HDR_SIZE) {
		memset(p, 0, len); /* no segment at all: nothing readable, nothing leaks */
		return 0;
	}
	sodium_ready();
	/* super-chunks first: their lengths come from the clear headers */
	randombytes_buf(nonce, NONCE);
	while (len - off >= ZF_SC_HDR_SIZE) {
		dlen = zf_sc_disk_len(p + off, len - off);
		if (!dlen || dlen > len - off)
			break; /* the footer, or damage */
		seal_tail_unit(s, seg, nonce, off, p + off, dlen, 0);
		off += dlen;
	}
	if (len - off == ZF_SEG_FTR_SIZE && !memcmp(p + off, ZF_SEG_FTR_MAGIC, 8)) {
		seal_tail_unit(s, seg, nonce, off, p + off, ZF_SEG_FTR_SIZE, 1);
	} else if (len - off > TAG) {
		/*
		 * A segment kept as it is after damage (no footer, a cut or
		 * broken super-chunk): what follows its last whole unit is
		 * sealed as one unit of its own, its last 16 bytes given to
		 * the tag. Nothing reads it as data (it opens to no
		 * super-chunk), and nothing of it leaks.
		 */
		uint8_t tag[TAG];

		unit_seal(s, seg, nonce, off, len - off, p + off, len - off - TAG, tag);
		memcpy(p + len - TAG, tag, TAG);
	} else {
		memset(p + off, 0, len - off);
	}
	/* the header: nonce | its first 24 bytes sealed | tag */
	memmove(p + NONCE, p, 24);
	unit_seal(s, seg, nonce, 0, ZF_SEG_HDR_SIZE, p + NONCE, 24, p + NONCE + 24);
	memcpy(p, nonce, NONCE);
	return 0;
}

int zf_unseal_seg_nonce(const struct zf_seal *s, uint64_t seg, const void *hdr,
			uint8_t nonce[ZF_SEG_NONCE_LEN], char *why, size_t why_len)
{
	uint8_t h[ZF_SEG_HDR_SIZE];

	memcpy(h, hdr, ZF_SEG_HDR_SIZE);
	if (unit_open(s, seg, h, 0, ZF_SEG_HDR_SIZE, h + NONCE, 24, h + NONCE + 24) != 0) {
		snprintf(why, why_len, "authentication failed in its header (damaged, another "
			 "segment's, or another key's)");
		return -EBADMSG;
	}
	memcpy(nonce, h, NONCE);
	return 0;
}

int zf_unseal_peek(const struct zf_seal *s, const uint8_t nonce[ZF_SEG_NONCE_LEN], uint64_t off,
		   const void *u, size_t avail, uint64_t *ret_len, int *ret_footer)
{
	uint8_t n[NONCE], sub[32], ietf[12] = { 0 }, head[32];

	if (avail < TAG + 32)
		return -EBADMSG;
	/*
	 * XChaCha20-Poly1305 (IETF) is ChaCha20 under HChaCha20(key, nonce
	 * 0..16) with nonce 0000 | nonce 16..24, the message from block 1:
	 * the first 32 bytes decrypt alone, unauthenticated; they only say how
	 * long the unit is, and zf_unseal_unit authenticates all of it.
	 */
	unit_nonce(nonce, off, n);
	crypto_core_hchacha20(sub, n, s->key, NULL);
	memcpy(ietf + 4, n + 16, 8);
	crypto_stream_chacha20_ietf_xor_ic(head, (const uint8_t *)u + TAG, 32, ietf, 1, sub);
	sodium_memzero(sub, sizeof(sub));
	*ret_footer = 0;
	if (!memcmp(head, ZF_SEG_FTR_MAGIC, 8)) {
		*ret_footer = 1;
		*ret_len = ZF_SEG_FTR_SIZE;
		return 0;
	}
	/* the checksums are not there: zf_sc_disk_len reads magic and sizes only */
	{
		uint8_t h[ZF_SC_HDR_SIZE] = { 0 };

		memcpy(h, head, 32);
		*ret_len = zf_sc_disk_len(h, sizeof(h));
	}
	return *ret_len && *ret_len <= ZF_SC_DISK_MAX ? 0 : -EBADMSG;
}

int zf_unseal_unit(const struct zf_seal *s, uint64_t seg, const uint8_t nonce[ZF_SEG_NONCE_LEN],
		   uint64_t off, void *unit, size_t len, char *why, size_t why_len)
{
	uint8_t *u = unit, tag[TAG];
	uint32_t n;

	if (!(s->features & ZF_FEAT_ENCRYPT))
		return 0;
	if (len < ZF_SC_HDR_SIZE) {
		snprintf(why, why_len, "authentication failed (a unit of %zu bytes)", len);
		return -EBADMSG;
	}
	memcpy(tag, u, TAG);
	if (unit_open(s, seg, nonce, off, len, u + TAG, len - TAG, tag) != 0) {
		snprintf(why, why_len, "authentication failed in the super-chunk at %llu (damaged, "
			 "moved, or another segment's)", (unsigned long long)off);
		return -EBADMSG;
	}
	memmove(u, u + TAG, 32);
	n = zf_get32(u + ZF_SC_NCHUNKS_OFF);
	if ((uint64_t)ZF_SC_HDR_SIZE + (uint64_t)n * ZF_SC_ENT_SIZE > len) {
		snprintf(why, why_len, "the super-chunk at %llu does not fit its unit",
			 (unsigned long long)off);
		return -EBADMSG;
	}
	zf_put64(u + ZF_SC_PCSUM_OFF, XXH3_64bits(u + ZF_SC_HDR_SIZE + (size_t)n * ZF_SC_ENT_SIZE,
						  len - ZF_SC_HDR_SIZE - (size_t)n * ZF_SC_ENT_SIZE));
	zf_put64(u + ZF_SC_HCSUM_OFF, zf_sc_hdr_csum(u, n));
	return 0;
}

static int unseal_footer(const struct zf_seal *s, uint64_t seg, const uint8_t nonce[NONCE],
			 uint64_t off, uint8_t *f)
{
	uint8_t tag[TAG];

	memcpy(tag, f, TAG);
	if (unit_open(s, seg, nonce, off, ZF_SEG_FTR_SIZE, f + TAG, ZF_SEG_FTR_SIZE - TAG, tag))
		return -EBADMSG;
	memmove(f, f + TAG, 48);
	memset(f + 48, 0, 8);
	zf_put64(f + ZF_SEG_FTR_CSUM_OFF, XXH3_64bits(f, ZF_SEG_FTR_CSUM_OFF));
	return 0;
}

int zf_unseal_seg(const struct zf_seal *s, uint64_t seg, void *img, size_t len, char *why,
		  size_t why_len)
{
	uint8_t *p = img, nonce[NONCE];
	uint64_t off = ZF_SEG_HDR_SIZE, ulen;
	int r, footer = 0;

	if (!(s->features & ZF_FEAT_ENCRYPT))
		return 0;
	if (len < ZF_SEG_HDR_SIZE + ZF_SEG_FTR_SIZE) {
		snprintf(why, why_len, "truncated (%zu bytes)", len);
		return -EBADMSG;
	}
	r = zf_unseal_seg_nonce(s, seg, p, nonce, why, why_len);
	if (r < 0)
		return r;
	while (!footer) {
		r = zf_unseal_peek(s, nonce, off, p + off, len - off, &ulen, &footer);
		if (r < 0 || ulen > len - off) {
			snprintf(why, why_len, "authentication failed at %llu (truncated or damaged)",
				 (unsigned long long)off);
			return -EBADMSG;
		}
		if (footer) {
			if (off + ulen != len || unseal_footer(s, seg, nonce, off, p + off)) {
				snprintf(why, why_len, "authentication failed in its footer "
					 "(truncated or damaged)");
				return -EBADMSG;
			}
			break;
		}
		r = zf_unseal_unit(s, seg, nonce, off, p + off, ulen, why, why_len);
		if (r < 0)
			return r;
		off += ulen;
	}
	/* the header in the clear: its first 24 bytes, the fsid, its checksum */
	{
		uint8_t h[ZF_SEG_HDR_SIZE] = { 0 };

		memcpy(h, p + NONCE, 24);
		if (unit_open(s, seg, nonce, 0, ZF_SEG_HDR_SIZE, h, 24, p + NONCE + 24)) {
			snprintf(why, why_len, "authentication failed in its header");
			return -EBADMSG;
		}
		memcpy(h + ZF_SEG_HDR_FSID_OFF, s->fsid, 16);
		zf_put64(h + ZF_SEG_HDR_CSUM_OFF, XXH3_64bits(h, ZF_SEG_HDR_CSUM_OFF));
		memcpy(p, h, ZF_SEG_HDR_SIZE);
	}
	return 0;
}
