/*
 * storage/segstore_codec.c - encoding and checking the bytes of segment
 * files and super-chunk headers: the code side of seg_format.h, which
 * docs/FORMAT.md "Segments" and "Super-chunks" specify.
 *
 * Pure functions, no store state and no locks. Verifying a whole
 * super-chunk (lengths, payload, chunk ids) is segstore_read.c's.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "common/endian.h"
#include "common/log.h"
#include "storage/segstore_internal.h"

void zf_segstore_name(uint64_t seg, char *buf, size_t len)
{
	snprintf(buf, len, "%016llx" ZF_SEG_SUFFIX, (unsigned long long)seg);
}

/* parse a segment file name; 0 if it is not one (id 0 is never used) */
uint64_t zf_seg_parse_name(const char *name)
{
	uint64_t id = 0;
	unsigned int i;

	if (strlen(name) != ZF_SEG_NAME_LEN || strcmp(name + 16, ZF_SEG_SUFFIX) != 0)
		return 0;
	for (i = 0; i < 16; i++) {
		char c = name[i];

		if (c >= '0' && c <= '9')
			id = id << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			id = id << 4 | (uint64_t)(c - 'a' + 10);
		else
			return 0;
	}
	return id;
}

void zf_seg_hdr_encode(uint8_t *h, uint64_t seg, const uint8_t fsid[16])
{
	memset(h, 0, ZF_SEG_HDR_SIZE);
	memcpy(h, ZF_SEG_MAGIC, ZF_SEG_MAGIC_LEN);
	zf_put32(h + 8, ZF_SEG_VERSION);
	zf_put32(h + 12, 0);
	zf_put64(h + ZF_SEG_HDR_ID_OFF, seg);
	memcpy(h + ZF_SEG_HDR_FSID_OFF, fsid, 16);
	zf_put64(h + ZF_SEG_HDR_CSUM_OFF, XXH3_64bits(h, ZF_SEG_HDR_CSUM_OFF));
}

/* check a segment header; NULL if good, else what is wrong */
const char *zf_seg_hdr_check(const uint8_t *h, uint64_t seg, const uint8_t fsid[16])
{
	if (memcmp(h, ZF_SEG_MAGIC, ZF_SEG_MAGIC_LEN) != 0)
		return "bad segment magic";
	if (zf_get64(h + ZF_SEG_HDR_CSUM_OFF) != XXH3_64bits(h, ZF_SEG_HDR_CSUM_OFF))
		return "segment header checksum mismatch";
	if (zf_get32(h + 8) != ZF_SEG_VERSION)
		return "unsupported segment version";
	if (zf_get32(h + 12) != 0)
		return "unknown segment flags";
	if (zf_get64(h + ZF_SEG_HDR_ID_OFF) != seg)
		return "segment id does not match its file name";
	if (memcmp(h + ZF_SEG_HDR_FSID_OFF, fsid, 16) != 0)
		return "segment belongs to another filesystem";
	return NULL;
}

/*
 * Is a header that zf_seg_hdr_check refused merely damaged (bytes lost or
 * flipped: its super-chunks may still be read), rather than a whole header
 * of another version, segment or filesystem (the file is not this one)?
 */
bool zf_seg_hdr_damaged(const uint8_t *h, ssize_t n)
{
	return n < (ssize_t)ZF_SEG_HDR_SIZE || memcmp(h, ZF_SEG_MAGIC, ZF_SEG_MAGIC_LEN) != 0 ||
	       zf_get64(h + ZF_SEG_HDR_CSUM_OFF) != XXH3_64bits(h, ZF_SEG_HDR_CSUM_OFF);
}

void zf_seg_ftr_encode(uint8_t *f, uint64_t seg, uint64_t nsc, uint64_t end, uint64_t raw)
{
	memset(f, 0, ZF_SEG_FTR_SIZE);
	memcpy(f, ZF_SEG_FTR_MAGIC, ZF_SEG_MAGIC_LEN);
	zf_put32(f + 8, ZF_SEG_FTR_VERSION);
	zf_put32(f + 12, 0);
	zf_put64(f + ZF_SEG_FTR_ID_OFF, seg);
	zf_put64(f + ZF_SEG_FTR_NSC_OFF, nsc);
	zf_put64(f + ZF_SEG_FTR_END_OFF, end);
	zf_put64(f + ZF_SEG_FTR_RAW_OFF, raw);
	zf_put64(f + 48, 0);
	zf_put64(f + ZF_SEG_FTR_CSUM_OFF, XXH3_64bits(f, ZF_SEG_FTR_CSUM_OFF));
}

void zf_sc_hdr_decode(const uint8_t *p, struct zf_sc_hdr *h)
{
	h->version = zf_get16(p + 4);
	h->flags = zf_get16(p + ZF_SC_FLAGS_OFF);
	h->nchunks = zf_get32(p + ZF_SC_NCHUNKS_OFF);
	h->raw_len = zf_get32(p + ZF_SC_RAW_LEN_OFF);
	h->stored_len = zf_get32(p + ZF_SC_STORED_LEN_OFF);
	h->seg = zf_get64(p + ZF_SC_SEG_OFF);
	h->payload_csum = zf_get64(p + ZF_SC_PCSUM_OFF);
	h->hdr_csum = zf_get64(p + ZF_SC_HCSUM_OFF);
}

/* XXH3-64 of header bytes 0..39 followed by the chunk table at p + 48 */
uint64_t zf_sc_hdr_csum(const uint8_t *p, uint32_t nchunks)
{
	XXH3_state_t *s = XXH3_createState();
	uint64_t h;

	if (!s) {
		zf_err("out of memory allocating a checksum state");
		abort();
	}
	XXH3_64bits_reset(s);
	XXH3_64bits_update(s, p, ZF_SC_HCSUM_COVER);
	XXH3_64bits_update(s, p + ZF_SC_HDR_SIZE, (size_t)nchunks * ZF_SC_ENT_SIZE);
	h = XXH3_64bits_digest(s);
	XXH3_freeState(s);
	return h;
}

