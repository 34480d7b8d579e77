/*
 * storage/chunker.c - content-defined chunking (FastCDC) and keyed chunk ids
 *
 * Cut points: a gear rolling hash h = (h << 1) + gear[byte] whose 256-entry
 * table is derived from the filesystem secret. Normalized chunking: below the
 * average size a cut needs (log2 avg + 2) zero bits at the top of h, at or
 * above it only (log2 avg - 2), so sizes cluster around the average. No cut
 * is taken before min bytes; a cut is forced at max. The decision for a cut
 * after L bytes depends only on buf[0..L), so a caller that feeds a stream in
 * arbitrary pieces gets the same cuts as one that has it all in memory.
 *
 * Chunk ids: XXH3-128 with a 192-byte secret derived from the same key by the
 * XXH3_generateSecret() algorithm of libxxhash 0.8.1, spelled out here with
 * the stable one-shot API only (that function is "experimental" upstream, its
 * signature and output differ in 0.8.0, and ids are on-disk names).
 *
 * Invariants: the struct is immutable after zf_chunker_new(); cut and id are
 * pure functions of (secret, sizes, bytes) and are safe from any thread.
 * Not here: what is done with chunks (dedup index, super-chunk packer).
 * Format: docs/FORMAT.md "Chunking" (every constant below is part of it).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "common/endian.h"
#include "common/util.h"
#include "storage/chunker.h"

/* upper bound on max from chunker.h: bounds super-chunk and buffer sizes */
#define ZF_CHUNKER_MAX_LIMIT (16u << 20)

/*
 * Window of the gear hash: bit 63 of h is the last byte to forget a byte,
 * 64 steps after it was added. Hashing starts this many bytes before min so
 * the first testable position already sees a full window.
 */
#define ZF_GEAR_WINDOW 64

/* normalization level 2 (FastCDC paper, NC2): masks are log2(avg) +/- 2 bits */
#define ZF_NC_LEVEL 2

/*
 * Domain tag appended to the secret when deriving the gear table, so that the
 * gear table and the id secret are computed from different messages.
 */
static const char zf_gear_tag[6] = { 'z', 'f', 'g', 'e', 'a', 'r' };

/* XXH3 secret length for chunk ids: the library's default secret size */
#define ZF_ID_SECRET_LEN 192

struct zf_chunker {
	uint64_t gear[256];
	/* a cut after L bytes: top bits of h zero, i.e. h < thr (see cut) */
	uint64_t thr_small; /* L < avg: harder, log2(avg) + 2 bits */
	uint64_t thr_large; /* L >= avg: easier, log2(avg) - 2 bits */
	uint32_t min, avg, max;
	uint8_t id_secret[ZF_ID_SECRET_LEN];
};

/*
 * XXH3_generateSecret(dst, 192, seed, seed_len) of libxxhash 0.8.1, written
 * with the stable API: fill dst with seed repeated; scrambler = canonical
 * (big-endian) XXH128(seed, 0); for each 16-byte segment n, xor in
 * XXH128(scrambler, 16, n) as two little-endian u64 (low, high); finally xor
 * XXH128(seed, 0) itself into the last 16 bytes.
 */
static void zf_chunker_derive_id_secret(uint8_t *dst, size_t dst_len,
					const uint8_t *seed, size_t seed_len)
{
	XXH128_canonical_t scrambler;
	XXH128_hash_t h;
	size_t pos, n;

	for (pos = 0; pos < dst_len; pos += n) {
		n = dst_len - pos < seed_len ? dst_len - pos : seed_len;
		memcpy(dst + pos, seed, n);
	}
	h = XXH3_128bits_withSeed(seed, seed_len, 0);
	XXH128_canonicalFromHash(&scrambler, h);
	for (n = 0; n < dst_len / 16; n++) {
		XXH128_hash_t s = XXH3_128bits_withSeed(&scrambler, sizeof(scrambler), n);
		uint8_t *p = dst + n * 16;

		zf_put64(p, zf_get64(p) ^ s.low64);
		zf_put64(p + 8, zf_get64(p + 8) ^ s.high64);
	}
	pos = dst_len - 16;
	zf_put64(dst + pos, zf_get64(dst + pos) ^ h.low64);
	zf_put64(dst + pos + 8, zf_get64(dst + pos + 8) ^ h.high64);
}

/* gear[i] = XXH3_64bits(secret || "zfgear" || le16(i)), a 40-byte message */
static void zf_chunker_derive_gear(uint64_t gear[256], const uint8_t *secret)
{
	uint8_t msg[ZF_SECRET_LEN + sizeof(zf_gear_tag) + 2];
	unsigned int i;

	memcpy(msg, secret, ZF_SECRET_LEN);
	memcpy(msg + ZF_SECRET_LEN, zf_gear_tag, sizeof(zf_gear_tag));
	for (i = 0; i < 256; i++) {
		zf_put16(msg + ZF_SECRET_LEN + sizeof(zf_gear_tag), (uint16_t)i);
		gear[i] = XXH3_64bits(msg, sizeof(msg));
	}
}

/* h < thr  <=>  the top `bits` bits of h are zero */
static uint64_t zf_chunker_threshold(unsigned int bits)
{
	return bits >= 64 ? 0 : UINT64_C(1) << (64 - bits);
}

int zf_chunker_new(const uint8_t secret[ZF_SECRET_LEN], uint32_t min, uint32_t avg,
		   uint32_t max, struct zf_chunker **ret_chunker)
{
	struct zf_chunker *c;
	unsigned int bits, bits_l;

	if (!secret || !ret_chunker)
		return -EINVAL;
	if (!(min < avg && avg < max) || max > ZF_CHUNKER_MAX_LIMIT)
		return -EINVAL;
	if (avg & (avg - 1))
		return -EINVAL;

	c = zf_calloc(1, sizeof(*c));
	c->min = min;
	c->avg = avg;
	c->max = max;
	bits = (unsigned int)__builtin_ctz(avg);
	/* avg >= 2 here (min < avg); keep at least one bit for tiny test sizes */
	bits_l = bits > ZF_NC_LEVEL ? bits - ZF_NC_LEVEL : 1;
	c->thr_small = zf_chunker_threshold(bits + ZF_NC_LEVEL);
	c->thr_large = zf_chunker_threshold(bits_l);
	zf_chunker_derive_gear(c->gear, secret);
	zf_chunker_derive_id_secret(c->id_secret, sizeof(c->id_secret), secret,
				    ZF_SECRET_LEN);
	*ret_chunker = c;
	return 0;
}

void zf_chunker_free(struct zf_chunker *c)
{
	if (!c)
		return;
	/* the gear table and id secret are key material */
	explicit_bzero(c, sizeof(*c));
	free(c);
}

uint32_t zf_chunker_max(const struct zf_chunker *c)
{
	return c->max;
}

/*
 * Roll buf[i..end) into *hp and return the chunk length (index + 1) of the
 * first position whose hash is below thr, or 0 if there is none. The hash
 * chain is serial (one lea per byte), so unrolling only removes loop
 * overhead; the per-byte branch is almost never taken and predicts well.
 */
static inline __attribute__((always_inline)) size_t
zf_chunker_scan(const uint64_t *gear, const uint8_t *buf, size_t i, size_t end,
		uint64_t thr, uint64_t *hp)
{
	uint64_t h = *hp;

#define ZF_GEAR_STEP(k)                                                        \
	do {                                                                   \
		h = (h << 1) + gear[buf[i + (k)]];                             \
		if (__builtin_expect(h < thr, 0))                              \
			return i + (k) + 1;                                    \
	} while (0)

	for (; i + 8 <= end; i += 8) {
		ZF_GEAR_STEP(0);
		ZF_GEAR_STEP(1);
		ZF_GEAR_STEP(2);
		ZF_GEAR_STEP(3);
		ZF_GEAR_STEP(4);
		ZF_GEAR_STEP(5);
		ZF_GEAR_STEP(6);
		ZF_GEAR_STEP(7);
	}
	for (; i < end; i++)
		ZF_GEAR_STEP(0);
#undef ZF_GEAR_STEP
	*hp = h;
	return 0;
}

size_t zf_chunker_cut(const struct zf_chunker *c, const uint8_t *buf, size_t len, int at_eof)
{
	const uint64_t *gear = c->gear;
	size_t n = len < c->max ? len : c->max;
	size_t first, norm, i, cut;
	uint64_t h = 0;

	/*
	 * Index i is the last byte of a chunk of length i + 1. The first index
	 * tested is min - 1 (chunk length min); the window of 64 bytes ending
	 * there is hashed first, without testing.
	 */
	first = c->min ? c->min - 1 : 0;
	if (n <= first)
		goto no_cut;
	i = c->min > ZF_GEAR_WINDOW ? c->min - ZF_GEAR_WINDOW : 0;
	for (; i < first; i++)
		h = (h << 1) + gear[buf[i]];

	/* lengths below avg use the hard threshold: index < avg - 1 */
	norm = c->avg - 1 < n ? c->avg - 1 : n;
	cut = zf_chunker_scan(gear, buf, first, norm, c->thr_small, &h);
	if (cut)
		return cut;
	cut = zf_chunker_scan(gear, buf, norm, n, c->thr_large, &h);
	if (cut)
		return cut;
no_cut:
	if (n == c->max)
		return n;
	return at_eof ? len : 0;
}

void zf_chunker_id(const struct zf_chunker *c, const void *buf, size_t len,
		   struct zf_chunk_id *ret_id)
{
	XXH128_hash_t h;

	h = XXH3_128bits_withSecret(buf, len, c->id_secret, sizeof(c->id_secret));
	zf_put64(ret_id->b, h.low64);
	zf_put64(ret_id->b + 8, h.high64);
}
