/*
 * tests/fuzz/fuzz_sc_pack.c - super-chunks built by the packer, then
 * damaged (zf_sc_packer_build, and the reader's checks and zstd
 * decompression behind valid checksums; storage/segstore_pack.c, segstore_read.c)
 *
 * A raw super-chunk rarely gets past two XXH3 checksums and a keyed hash
 * per chunk. Here the input chooses the chunks and a zstd level; the
 * packer builds a valid image (the segment id and header checksum filled
 * in as zf_segstore_append_image does), which must read back exactly. Then
 * the input's damage is applied -- bytes XORed in a chosen range, then
 * optionally the checksums recomputed over the damage, the location taken
 * from the damaged header -- and the image is read again through the fetch
 * hook: the zstd decoder and the chunk checks see damaged data that the
 * checksums let through.
 *
 * Input: [0] level, [1] number of chunks - 1 (mod 16), [2] damage flags
 * (bit 0 damage, bit 1 fix the header checksum, bit 2 fix the payload
 * checksum, bit 3 raw length from the damaged header), [3..4] le16 damage
 * offset (mod image length), [5] damage length, [6] XOR value,
 * [7..7+n) chunk length bytes, then the raw bytes the chunks split.
 */
#include "config.h"

#include <xxhash.h>

#include "common/endian.h"
#include "storage/chunker.h"
#include "storage/seg_format.h"
#include "storage/segstore.h"
#include "tests/fuzz/fuzz.h"

#define SEG 7

static struct zf_chunker *chunker;
static struct zf_segstore *st;
static struct zf_sc_packer *pk;
static const uint8_t *cur;
static size_t cur_size;

static int fetch(void *ctx, const struct zf_sc_loc *loc, void *buf, int refetch)
{
	if (loc->disk_len != cur_size)
		return -EIO;
	memcpy(buf, cur, cur_size);
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct zf_segstore_opts so = { .sc_cache_bytes = 64u << 20 };
	uint8_t fsid[16] = { 0 };

	fz_quiet();
	fz_scratch();
	if (zf_chunker_new(fz_secret, ZF_CHUNK_MIN, ZF_CHUNK_AVG, ZF_CHUNK_MAX, &chunker) < 0 ||
	    zf_segstore_open(fz_dirfd, fsid, chunker, &so, &st) < 0 || !(pk = zf_sc_packer_new()))
		abort();
	zf_segstore_set_fetch(st, fetch, NULL);
	return 0;
}

static void seal_header(uint8_t *p, uint32_t n)
{
	XXH3_state_t *s = XXH3_createState();

	XXH3_64bits_reset(s);
	XXH3_64bits_update(s, p, ZF_SC_HCSUM_COVER);
	XXH3_64bits_update(s, p + ZF_SC_HDR_SIZE, (size_t)n * ZF_SC_ENT_SIZE);
	zf_put64(p + ZF_SC_HCSUM_OFF, XXH3_64bits_digest(s));
	XXH3_freeState(s);
}

/* verify and read all of loc (fetched from cur); 0 or -EIO */
static int read_back(const struct zf_sc_loc *loc, uint8_t *out, struct zf_sc_chunk **ret_tab,
		     uint32_t *ret_n)
{
	int r = zf_segstore_verify_remote(st, loc, ret_tab, ret_n, NULL);

	fz_check(r == 0 || r == -EIO);
	if (r == 0) {
		r = zf_segstore_read(st, loc, 0, loc->raw_len, out);
		fz_check(r == 0);
		zf_segstore_cache_drop(st);
	}
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zf_sc_chunk chunks[16], *tab = NULL;
	struct zf_sc_image img = { 0 };
	struct zf_sc_loc loc;
	const uint8_t *raw;
	uint32_t n, raw_len, i, pos, ntab = 0;
	uint8_t *out = NULL;
	int level, r;

	if (size < 7)
		return 0;
	/* fast levels and a few normal ones: -5..10 */
	level = (int)(data[0] % 16) - 5;
	if (level == 0)
		level = 1;
	n = 1 + data[1] % 16;
	if (size < 7 + n + n)
		return 0;
	raw = data + 7 + n;
	raw_len = (uint32_t)(size - 7 - n);
	if (raw_len > (1u << 20))
		return 0;
	/* chunk lengths: each at least one byte, in proportion to its byte */
	for (i = 0, pos = 0; i < n; i++) {
		uint32_t left = raw_len - pos, need = n - i - 1, len;

		len = i == n - 1 ? left :
				   1 + (uint32_t)((uint64_t)(left - need - 1) * data[7 + i] / 255);
		chunks[i].len = len;
		zf_chunker_id(chunker, raw + pos, len, &chunks[i].id);
		pos += len;
	}
	fz_check(pos == raw_len);

	r = zf_sc_packer_build(pk, level, chunks, n, raw, raw_len, &img);
	fz_check(r == 0);
	fz_check(img.len >= ZF_SC_HDR_SIZE + n * ZF_SC_ENT_SIZE);
	fz_check(img.raw_len == raw_len && img.n == n);
	zf_put64(img.p + ZF_SC_SEG_OFF, SEG);
	seal_header(img.p, n);

	/* undamaged: it reads back exactly, with the table it was built from */
	loc = (struct zf_sc_loc){ .seg = SEG, .off = ZF_SEG_HDR_SIZE, .disk_len = img.len,
				  .raw_len = raw_len };
	out = malloc(raw_len);
	cur = img.p;
	cur_size = img.len;
	r = read_back(&loc, out, &tab, &ntab);
	fz_check(r == 0);
	fz_check(ntab == n && memcmp(out, raw, raw_len) == 0);
	for (i = 0; i < n; i++)
		fz_check(tab[i].len == chunks[i].len && !memcmp(tab[i].id.b, chunks[i].id.b, 16));
	free(tab);
	tab = NULL;

	if (data[2] & 1) {
		uint32_t doff = (data[3] | (uint32_t)data[4] << 8) % img.len;
		uint32_t dlen = 1 + data[5] % 64, payload;

		if (dlen > img.len - doff)
			dlen = img.len - doff;
		for (i = 0; i < dlen; i++)
			img.p[doff + i] ^= data[6] ? data[6] : 0x5a;
		payload = ZF_SC_HDR_SIZE + n * ZF_SC_ENT_SIZE;
		if (data[2] & 4) {
			/* a payload checksum over the damage, as its writer would */
			uint64_t plen = zf_get32(img.p + ZF_SC_STORED_LEN_OFF);

			if (payload + plen <= img.len)
				zf_put64(img.p + ZF_SC_PCSUM_OFF, XXH3_64bits(img.p + payload, plen));
		}
		if (data[2] & 2) {
			uint32_t hn = zf_get32(img.p + ZF_SC_NCHUNKS_OFF);

			if (hn <= n)
				seal_header(img.p, hn);
		}
		if (data[2] & 8) {
			/* the damaged header's raw length (out holds raw_len bytes) */
			uint32_t hraw = zf_get32(img.p + ZF_SC_RAW_LEN_OFF);

			if (hraw <= raw_len)
				loc.raw_len = hraw;
		}
		r = read_back(&loc, out, &tab, &ntab);
		if (r == 0) {
			/* what still verifies holds chunks that hash to their ids */
			for (i = 0, pos = 0; i < ntab; i++) {
				struct zf_chunk_id id;

				zf_chunker_id(chunker, out + pos, tab[i].len, &id);
				fz_check(!memcmp(id.b, tab[i].id.b, 16));
				pos += tab[i].len;
			}
			fz_check(pos == loc.raw_len);
		}
		free(tab);
	}
	free(out);
	zf_sc_image_free(&img);
	return 0;
}
