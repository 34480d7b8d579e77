/*
 * storage/segstore_codec.c - encoding and checking the bytes of segment
 * files and super-chunk headers: the code side of seg_format.h, which
 * docs/FORMAT.md "Segments" and "Super-chunks" specify.
 *
 * Pure functions, no store state and no locks; also the checks of segment
 * images the object-storage tier holds in memory (zf_sc_disk_len,
 * zf_seg_image_verify). Verifying a whole super-chunk (lengths, payload,
 * chunk ids) is segstore_read.c's.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
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

/* ---- segment images in memory, for the object-storage tier (see segstore.h) ---- */

uint64_t zf_sc_disk_len(const void *p, size_t avail)
{
	const uint8_t *h = p;

	if (avail < ZF_SC_HDR_SIZE || zf_get32(h) != ZF_SC_MAGIC)
		return 0;
	return ZF_SC_HDR_SIZE + (uint64_t)zf_get32(h + ZF_SC_NCHUNKS_OFF) * ZF_SC_ENT_SIZE +
	       zf_get32(h + ZF_SC_STORED_LEN_OFF);
}

int zf_seg_image_verify(const void *img, size_t len, uint64_t id, const uint8_t fsid[16],
			char *why, size_t wlen)
{
	const uint8_t *p = img;
	const uint8_t *ftr = p + len - ZF_SEG_FTR_SIZE;
	uint64_t off = ZF_SEG_HDR_SIZE, end;

	if (len < ZF_SEG_HDR_SIZE + ZF_SEG_FTR_SIZE) {
		snprintf(why, wlen, "truncated (%zu bytes)", len);
		return -EBADMSG;
	}
	if (memcmp(p, ZF_SEG_MAGIC, ZF_SEG_MAGIC_LEN) ||
	    zf_get64(p + ZF_SEG_HDR_CSUM_OFF) != XXH3_64bits(p, ZF_SEG_HDR_CSUM_OFF)) {
		snprintf(why, wlen, "its header does not verify");
		return -EBADMSG;
	}
	if (zf_get64(p + ZF_SEG_HDR_ID_OFF) != id || memcmp(p + ZF_SEG_HDR_FSID_OFF, fsid, 16)) {
		snprintf(why, wlen, "its header names segment %016" PRIx64 "%s (another segment under "
			 "this key)", zf_get64(p + ZF_SEG_HDR_ID_OFF),
			 memcmp(p + ZF_SEG_HDR_FSID_OFF, fsid, 16) ? " of another filesystem" : "");
		return -EBADMSG;
	}
	end = zf_get64(ftr + ZF_SEG_FTR_END_OFF);
	if (memcmp(ftr, ZF_SEG_FTR_MAGIC, 8) ||
	    zf_get64(ftr + ZF_SEG_FTR_CSUM_OFF) != XXH3_64bits(ftr, ZF_SEG_FTR_CSUM_OFF) ||
	    zf_get64(ftr + ZF_SEG_FTR_ID_OFF) != id || end != len - ZF_SEG_FTR_SIZE) {
		snprintf(why, wlen, "its footer does not verify (truncated, or damaged at its end)");
		return -EBADMSG;
	}
	while (off < end) {
		const uint8_t *h = p + off;
		uint64_t n, dlen;

		if (end - off < ZF_SC_HDR_SIZE || zf_get32(h) != ZF_SC_MAGIC)
			goto bad;
		n = zf_get32(h + ZF_SC_NCHUNKS_OFF);
		dlen = ZF_SC_HDR_SIZE + n * ZF_SC_ENT_SIZE + zf_get32(h + ZF_SC_STORED_LEN_OFF);
		if (n == 0 || n > ZF_SC_CHUNKS_MAX || dlen > end - off)
			goto bad;
		if (zf_sc_hdr_csum(h, (uint32_t)n) != zf_get64(h + ZF_SC_HCSUM_OFF) || zf_get64(h + ZF_SC_SEG_OFF) != id ||
		    zf_get64(h + ZF_SC_PCSUM_OFF) !=
			    XXH3_64bits(h + ZF_SC_HDR_SIZE + n * ZF_SC_ENT_SIZE,
					zf_get32(h + ZF_SC_STORED_LEN_OFF)))
			goto bad;
		off += dlen;
	}
	return 0;
bad:
	snprintf(why, wlen, "the super-chunk at offset %" PRIu64 " does not verify", off);
	return -EBADMSG;
}

