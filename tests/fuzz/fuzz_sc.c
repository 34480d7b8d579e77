/*
 * tests/fuzz/fuzz_sc.c - one super-chunk image (zf_sc_load_once through
 * zf_segstore_verify_remote and zf_segstore_read; storage/segstore_read.c):
 * header, chunk table and its checksum, payload checksum, zstd frame
 * checks and decompression, chunk lengths and ids
 *
 * The input is the exact bytes of one super-chunk. A segment store opened
 * on an empty directory gets a fetch hook that returns them, so every read
 * goes the way of an evicted segment's: the bytes are fetched, then
 * verified in full. The location is the header's (segment id, raw length;
 * 1 if the id is 0) and the input's size, so a consistent header reaches
 * the payload checks; the deep paths behind the checksums are for
 * fuzz_sc_pack, which builds valid images.
 */
#include "config.h"

#include "common/endian.h"
#include "storage/chunker.h"
#include "storage/seg_format.h"
#include "storage/segstore.h"
#include "tests/fuzz/fuzz.h"

static struct zf_chunker *chunker;
static struct zf_segstore *st;
static const uint8_t *cur;
static size_t cur_size;

static int fetch(void *ctx, const struct zf_sc_loc *loc, void *buf, int refetch)
{
	fz_check(loc->disk_len == cur_size);
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
	    zf_segstore_open(fz_dirfd, fsid, chunker, &so, &st) < 0)
		abort();
	zf_segstore_set_fetch(st, fetch, NULL);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zf_sc_loc loc = { .seg = 1, .off = ZF_SEG_HDR_SIZE };
	struct zf_sc_chunk *tab = NULL;
	uint32_t n = 0;
	uint8_t *copy;
	int r;

	if (size > ZF_SC_DISK_MAX)
		return 0;
	/* a copy of exactly size bytes, so that ASan sees any read past it */
	copy = malloc(size ? size : 1);
	memcpy(copy, data, size);
	cur = copy;
	cur_size = size;
	if (size >= ZF_SC_HDR_SIZE) {
		loc.seg = zf_get64(data + ZF_SC_SEG_OFF) ? zf_get64(data + ZF_SC_SEG_OFF) : 1;
		loc.raw_len = zf_get32(data + ZF_SC_RAW_LEN_OFF);
	}
	loc.disk_len = (uint32_t)size;

	r = zf_segstore_verify_remote(st, &loc, &tab, &n, NULL);
	fz_check(r == 0 || r == -EIO);
	if (r == 0) {
		uint64_t sum = 0;
		uint8_t buf[64];
		uint32_t k;

		for (k = 0; k < n; k++)
			sum += tab[k].len;
		fz_check(n >= 1 && sum == loc.raw_len);
		/* the reader's path: through the cache, then out of it */
		r = zf_segstore_read(st, &loc, 0,
				     loc.raw_len < sizeof(buf) ? loc.raw_len : sizeof(buf), buf);
		fz_check(r == 0);
		r = zf_segstore_read_chunk(st, &loc, &tab[n - 1], loc.raw_len - tab[n - 1].len, 0,
					   tab[n - 1].len < 8 ? tab[n - 1].len : 8, buf);
		fz_check(r == 0);
		zf_segstore_cache_drop(st);
	}
	free(tab);
	free(copy);
	return 0;
}
