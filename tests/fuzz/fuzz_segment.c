/*
 * tests/fuzz/fuzz_segment.c - segment files (header check, the super-chunk
 * chain walk of zf_segstore_resume, local super-chunk reads;
 * storage/segstore_file.c, segstore_append.c, segstore_read.c)
 *
 * The input is a segment file, written per input as <id>.zseg where id is
 * its header's segment id (1 if that is 0), into a directory a segment
 * store is opened on with the header's fsid. Then: zf_segstore_seg_check
 * (header), zf_segstore_resume with the file as the open segment committed
 * to its end (header again, then the chain of super-chunk headers and
 * tables that counts the footer's figures), and zf_segstore_verify plus a
 * read of every super-chunk found walking the chain the same way.
 *
 * Nothing in zerofs decodes a segment footer (it is written for tools and
 * the bucket; reads go by the metadata's locations), so there is no footer
 * decoder to reach.
 */
#include "config.h"

#include "common/endian.h"
#include "storage/chunker.h"
#include "storage/seg_format.h"
#include "storage/segstore.h"
#include "tests/fuzz/fuzz.h"

static struct zf_chunker *chunker;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_quiet();
	fz_scratch();
	if (zf_chunker_new(fz_secret, ZF_CHUNK_MIN, ZF_CHUNK_AVG, ZF_CHUNK_MAX, &chunker) < 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zf_segstore_opts so = { .sc_cache_bytes = 8u << 20 };
	uint8_t fsid[16] = { 0 };
	uint64_t id = size >= 24 ? fz_le64(data + ZF_SEG_HDR_ID_OFF) : 1, fsize, off;
	struct zf_segstore *st;
	char name[32];
	unsigned int i;
	int r;

	if (id == 0)
		id = 1;
	if (size >= 40)
		memcpy(fsid, data + ZF_SEG_HDR_FSID_OFF, 16);
	zf_segstore_name(id, name, sizeof(name));
	fz_write_file(fz_dirfd, name, data, size, 0600);
	if (zf_segstore_open(fz_dirfd, fsid, chunker, &so, &st) < 0)
		abort();

	/* errors: what is wrong is the store's business, that it is an errno ours */
	r = zf_segstore_seg_check(st, id, &fsize, NULL);
	fz_check(r <= 0 && r > -4096);
	fz_check(r < 0 || fsize == size);
	r = zf_segstore_resume(st, id, size < ZF_SEG_HDR_SIZE ? ZF_SEG_HDR_SIZE : size, 0);
	fz_check(r <= 0 && r > -4096);

	/* every super-chunk of the chain, as the metadata would locate it */
	for (off = ZF_SEG_HDR_SIZE, i = 0; off + ZF_SC_HDR_SIZE <= size && i < 32; i++) {
		const uint8_t *h = data + off;
		uint64_t disk = ZF_SC_HDR_SIZE +
				(uint64_t)zf_get32(h + ZF_SC_NCHUNKS_OFF) * ZF_SC_ENT_SIZE +
				zf_get32(h + ZF_SC_STORED_LEN_OFF);
		struct zf_sc_loc loc = { .seg = id, .off = off };
		struct zf_sc_chunk *tab = NULL;
		uint32_t n = 0;
		uint8_t buf[64];

		if (disk > UINT32_MAX)
			break;
		loc.disk_len = (uint32_t)disk;
		loc.raw_len = zf_get32(h + ZF_SC_RAW_LEN_OFF);
		r = zf_segstore_verify(st, &loc, &tab, &n, NULL);
		fz_check(r <= 0 && r > -4096);
		if (r == 0) {
			uint64_t sum = 0;
			uint32_t k;

			fz_check(n >= 1 && tab);
			for (k = 0; k < n; k++)
				sum += tab[k].len;
			fz_check(sum == loc.raw_len);
			r = zf_segstore_read(st, &loc, 0,
					     loc.raw_len < sizeof(buf) ? loc.raw_len : sizeof(buf), buf);
			fz_check(r == 0);
			r = zf_segstore_read_chunk(st, &loc, &tab[0], 0, 0,
						   tab[0].len < 8 ? tab[0].len : 8, buf);
			fz_check(r == 0);
		}
		free(tab);
		if (off + disk > size)
			break;
		off += disk;
	}
	zf_segstore_close(st);
	unlinkat(fz_dirfd, name, 0);
	return 0;
}
