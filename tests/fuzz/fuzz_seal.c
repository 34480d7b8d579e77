/*
 * tests/fuzz/fuzz_seal.c - bucket objects as they travel (storage/seal.c):
 * what a GET can hand to zf_unseal_obj, zf_unseal_seg, zf_unseal_peek and
 * zf_unseal_unit
 *
 * The first input byte picks a mode, the rest is the object:
 *   0  a sealed, compressed checkpoint (encrypt + meta-zstd): opened
 *   1  a compressed checkpoint (meta-zstd only): a zstd frame of any
 *      declared size, which must be bounded before anything is allocated
 *   2  a sealed segment: opened whole
 *   3  a sealed segment read as a range from the offset in bytes 1..2: peek
 *      and open one unit
 *   4  round trip: the object sealed and opened again is itself; with one
 *      byte flipped (at a place the input picks) it no longer opens
 * Without the key an input never authenticates: the targets reach every
 * length and bounds check in front of the authentication.
 */
#include "config.h"

#include "common/endian.h"
#include "storage/bucket_keys.h"
#include "storage/seal.h"
#include "storage/seg_format.h"
#include "storage/superblock.h"
#include "tests/fuzz/fuzz.h"

static const uint8_t fsid[16] = "fuzz filesystem";
static const uint8_t master[32] = "fuzz master key, not a secret!!";
static struct zf_seal enc, zst;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_quiet();
	zf_seal_init(&enc, ZF_FEAT_ENCRYPT | ZF_FEAT_META_ZSTD, fsid, master);
	zf_seal_init(&zst, ZF_FEAT_META_ZSTD, fsid, NULL);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t nonce[ZF_SEG_NONCE_LEN] = { 0 }, *p;
	void *out = NULL, *back = NULL;
	size_t olen, blen, len;
	char why[256], key[ZF_BKEY_MAX];
	uint64_t ulen, off;
	int footer, r;

	if (size < 1)
		return 0;
	len = size - 1;
	p = malloc(len ? len : 1); /* exactly len bytes: ASan sees a read past the end */
	memcpy(p, data + 1, len);
	zf_bkey_ckpt(7, key, sizeof(key));
	switch (data[0] % 5) {
	case 0:
	case 1:
		r = zf_unseal_obj(data[0] % 5 ? &zst : &enc, key, p, len, &out, &olen, why,
				  sizeof(why));
		fz_check(r == 0 || r == -EBADMSG);
		free(out);
		break;
	case 2:
		r = zf_unseal_seg(&enc, 3, p, len, why, sizeof(why));
		fz_check(r == -EBADMSG); /* nothing forged opens */
		break;
	case 3:
		off = len >= 2 ? zf_get16(p) % (len - 1) : 0;
		r = zf_unseal_peek(&enc, nonce, off, p + off, len - off, &ulen, &footer);
		fz_check(r == 0 || r == -EBADMSG);
		if (r == 0 && !footer && ulen <= len - off)
			fz_check(zf_unseal_unit(&enc, 3, nonce, off, p + off, ulen, why,
						sizeof(why)) == -EBADMSG);
		break;
	default:
		fz_check(zf_seal_obj(&enc, key, p, len, &out, &olen) == 0);
		fz_check(zf_unseal_obj(&enc, key, out, olen, &back, &blen, why, sizeof(why)) == 0);
		fz_check(blen == len && !memcmp(back, p, len));
		free(back);
		((uint8_t *)out)[(len ? p[0] * 131u + len : 0) % olen] ^= 0x40;
		fz_check(zf_unseal_obj(&enc, key, out, olen, &back, &blen, why, sizeof(why)) ==
			 -EBADMSG);
		free(out);
		break;
	}
	free(p);
	return 0;
}
