/*
 * tests/unit/check_seal.c - unit tests for storage/seal.c, storage/keys.c
 * and storage/superblock.c: what bucket objects look like on the wire.
 *
 * Segment images are built by hand from docs/FORMAT.md "Segments" (a
 * header, super-chunks, a footer), verified with the segment codec first,
 * then sealed and opened: whole, and one super-chunk at a time as a ranged
 * GET brings it. Every kind of damage (a flipped byte in each unit, a cut,
 * another segment's or filesystem's object) must fail to open.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/endian.h"
#include "storage/bucket_keys.h"
#include "storage/keys.h"
#include "storage/meta_format.h"
#include "storage/seal.h"
#include "storage/seg_format.h"
#include "storage/segstore.h"
#include "storage/superblock.h"

static const uint8_t fsid[16] = "0123456789abcdef";
static const uint8_t master[ZF_KEY_LEN] = "master key for the unit tests!!";

/* a super-chunk of one chunk holding len bytes of c, stored raw, at p */
static size_t put_sc(uint8_t *p, uint64_t seg, uint8_t c, uint32_t len)
{
	uint8_t *payload = p + ZF_SC_HDR_SIZE + ZF_SC_ENT_SIZE;

	memset(p, 0, ZF_SC_HDR_SIZE + ZF_SC_ENT_SIZE);
	zf_put32(p, ZF_SC_MAGIC);
	zf_put16(p + 4, ZF_SC_VERSION);
	zf_put32(p + ZF_SC_NCHUNKS_OFF, 1);
	zf_put32(p + ZF_SC_RAW_LEN_OFF, len);
	zf_put32(p + ZF_SC_STORED_LEN_OFF, len);
	zf_put64(p + ZF_SC_SEG_OFF, seg);
	memset(p + ZF_SC_HDR_SIZE, c, 16); /* the chunk id */
	zf_put32(p + ZF_SC_HDR_SIZE + ZF_SC_ENT_LEN_OFF, len);
	memset(payload, c, len);
	zf_put64(p + ZF_SC_PCSUM_OFF, XXH3_64bits(payload, len));
	zf_put64(p + ZF_SC_HCSUM_OFF, zf_sc_hdr_csum(p, 1));
	return ZF_SC_HDR_SIZE + ZF_SC_ENT_SIZE + len;
}

/* segment seg: header, super-chunks of 1000 'A' and 3000 'B', footer; its length */
static size_t make_seg(uint8_t *img, uint64_t seg, size_t *ret_sc2)
{
	size_t off = ZF_SEG_HDR_SIZE;
	uint8_t *f;

	memset(img, 0, ZF_SEG_HDR_SIZE);
	memcpy(img, ZF_SEG_MAGIC, 8);
	zf_put32(img + 8, ZF_SEG_VERSION);
	zf_put64(img + ZF_SEG_HDR_ID_OFF, seg);
	memcpy(img + ZF_SEG_HDR_FSID_OFF, fsid, 16);
	zf_put64(img + ZF_SEG_HDR_CSUM_OFF, XXH3_64bits(img, ZF_SEG_HDR_CSUM_OFF));
	off += put_sc(img + off, seg, 'A', 1000);
	*ret_sc2 = off;
	off += put_sc(img + off, seg, 'B', 3000);
	f = img + off;
	memset(f, 0, ZF_SEG_FTR_SIZE);
	memcpy(f, ZF_SEG_FTR_MAGIC, 8);
	zf_put32(f + 8, ZF_SEG_FTR_VERSION);
	zf_put64(f + ZF_SEG_FTR_ID_OFF, seg);
	zf_put64(f + ZF_SEG_FTR_NSC_OFF, 2);
	zf_put64(f + ZF_SEG_FTR_END_OFF, off);
	zf_put64(f + ZF_SEG_FTR_RAW_OFF, 4000);
	zf_put64(f + ZF_SEG_FTR_CSUM_OFF, XXH3_64bits(f, ZF_SEG_FTR_CSUM_OFF));
	return off + ZF_SEG_FTR_SIZE;
}

static int has(const uint8_t *p, size_t len, const void *what, size_t wlen)
{
	return memmem(p, len, what, wlen) != NULL;
}

START_TEST(test_segment_round_trip)
{
	uint8_t img[8192], sealed[8192], nonce[ZF_SEG_NONCE_LEN], zmagic[4] = { 0x28, 0xb5, 0x2f, 0xfd };
	uint8_t scmagic[4];
	struct zf_seal s;
	char why[256];
	size_t len, sc2;
	uint64_t ulen;
	int footer;

	zf_seal_init(&s, ZF_FEAT_ENCRYPT | ZF_FEAT_META_ZSTD, fsid, master);
	len = make_seg(img, 7, &sc2);
	ck_assert_int_eq(zf_seg_image_verify(img, len, 7, fsid, why, sizeof(why)), 0);
	memcpy(sealed, img, len);
	ck_assert_int_eq(zf_seal_seg(&s, 7, sealed, len), 0);
	/* nothing of the clear text or its structure is left */
	zf_put32(scmagic, ZF_SC_MAGIC);
	ck_assert(!has(sealed, len, ZF_SEG_MAGIC, 8));
	ck_assert(!has(sealed, len, ZF_SEG_FTR_MAGIC, 8));
	ck_assert(!has(sealed, len, scmagic, 4));
	ck_assert(!has(sealed, len, zmagic, 4));
	ck_assert(!has(sealed, len, "AAAAAAAA", 8));
	ck_assert(!has(sealed, len, "BBBBBBBB", 8));
	ck_assert(!has(sealed, len, fsid, 16));
	/* one super-chunk, as a ranged GET brings it */
	ck_assert_int_eq(zf_unseal_seg_nonce(&s, 7, sealed, nonce, why, sizeof(why)), 0);
	{
		uint8_t unit[4096];

		memcpy(unit, sealed + sc2, len - sc2);
		ck_assert_int_eq(zf_unseal_peek(&s, nonce, sc2, unit, len - sc2, &ulen, &footer), 0);
		ck_assert_int_eq(footer, 0);
		ck_assert_uint_eq(ulen, ZF_SC_HDR_SIZE + ZF_SC_ENT_SIZE + 3000);
		ck_assert_int_eq(zf_unseal_unit(&s, 7, nonce, sc2, unit, ulen, why, sizeof(why)), 0);
		ck_assert(!memcmp(unit, img + sc2, ulen));
		ck_assert_int_eq(zf_unseal_peek(&s, nonce, sc2 + ulen, sealed + sc2 + ulen,
						ZF_SEG_FTR_SIZE, &ulen, &footer), 0);
		ck_assert_int_eq(footer, 1);
	}
	/* whole */
	ck_assert_int_eq(zf_unseal_seg(&s, 7, sealed, len, why, sizeof(why)), 0);
	ck_assert(!memcmp(sealed, img, len));
}
END_TEST

START_TEST(test_segment_damage)
{
	uint8_t img[8192], sealed[8192], bad[8192];
	struct zf_seal s, other;
	uint8_t fsid2[16];
	size_t len, sc2, i;
	char why[256];
	/* a byte in the header, the first super-chunk (tag, table, payload), the second, the footer */
	size_t at[] = { 3, 30, 60, ZF_SEG_HDR_SIZE + 5, ZF_SEG_HDR_SIZE + 70, 0, 0, 0 };

	zf_seal_init(&s, ZF_FEAT_ENCRYPT, fsid, master);
	len = make_seg(img, 9, &sc2);
	memcpy(sealed, img, len);
	ck_assert_int_eq(zf_seal_seg(&s, 9, sealed, len), 0);
	at[5] = sc2 + 100;
	at[6] = len - 40;
	at[7] = len - 1;
	for (i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		memcpy(bad, sealed, len);
		bad[at[i]] ^= 0x20;
		ck_assert_msg(zf_unseal_seg(&s, 9, bad, len, why, sizeof(why)) == -EBADMSG,
			      "a flipped byte at %zu opened", at[i]);
		ck_assert(strstr(why, "authentication failed") != NULL);
	}
	/* cut */
	memcpy(bad, sealed, len);
	ck_assert_int_eq(zf_unseal_seg(&s, 9, bad, len - 64, why, sizeof(why)), -EBADMSG);
	memcpy(bad, sealed, len);
	ck_assert_int_eq(zf_unseal_seg(&s, 9, bad, len - 1, why, sizeof(why)), -EBADMSG);
	/* under another segment's key */
	memcpy(bad, sealed, len);
	ck_assert_int_eq(zf_unseal_seg(&s, 10, bad, len, why, sizeof(why)), -EBADMSG);
	/* another filesystem's key, another fsid */
	memcpy(fsid2, fsid, 16);
	fsid2[0] ^= 1;
	zf_seal_init(&other, ZF_FEAT_ENCRYPT, fsid2, master);
	memcpy(bad, sealed, len);
	ck_assert_int_eq(zf_unseal_seg(&other, 9, bad, len, why, sizeof(why)), -EBADMSG);
	/* the same segment sealed twice: other nonces, both open */
	memcpy(bad, img, len);
	ck_assert_int_eq(zf_seal_seg(&s, 9, bad, len), 0);
	ck_assert(memcmp(bad, sealed, len) != 0);
	ck_assert_int_eq(zf_unseal_seg(&s, 9, bad, len, why, sizeof(why)), 0);
	ck_assert(!memcmp(bad, img, len));
}
END_TEST

START_TEST(test_segment_without_footer)
{
	uint8_t img[8192], sealed[8192], nonce[ZF_SEG_NONCE_LEN];
	struct zf_seal s;
	uint64_t ulen;
	char why[256];
	size_t len, sc2;
	int footer;

	/* a segment kept as it is after damage: no footer, its last super-chunk cut */
	zf_seal_init(&s, ZF_FEAT_ENCRYPT, fsid, master);
	len = make_seg(img, 11, &sc2) - ZF_SEG_FTR_SIZE - 100;
	memcpy(sealed, img, len);
	ck_assert_int_eq(zf_seal_seg(&s, 11, sealed, len), 0);
	ck_assert(!has(sealed, len, "BBBBBBBB", 8) && !has(sealed, len, "AAAAAAAA", 8));
	/* the whole first super-chunk still opens by range; the rest is no unit */
	ck_assert_int_eq(zf_unseal_seg_nonce(&s, 11, sealed, nonce, why, sizeof(why)), 0);
	ck_assert_int_eq(zf_unseal_peek(&s, nonce, ZF_SEG_HDR_SIZE, sealed + ZF_SEG_HDR_SIZE,
					len - ZF_SEG_HDR_SIZE, &ulen, &footer), 0);
	ck_assert_uint_eq(ulen, sc2 - ZF_SEG_HDR_SIZE);
	ck_assert_int_eq(zf_unseal_unit(&s, 11, nonce, ZF_SEG_HDR_SIZE, sealed + ZF_SEG_HDR_SIZE,
					ulen, why, sizeof(why)), 0);
	ck_assert(!memcmp(sealed + ZF_SEG_HDR_SIZE, img + ZF_SEG_HDR_SIZE, ulen));
	/* whole, it is damage (no footer), never an error of the sealer */
	ck_assert_int_eq(zf_unseal_seg(&s, 11, sealed, len, why, sizeof(why)), -EBADMSG);
	/* shorter than a header: sealed to nothing readable */
	memcpy(sealed, img, 40);
	ck_assert_int_eq(zf_seal_seg(&s, 11, sealed, 40), 0);
	ck_assert(!has(sealed, 40, ZF_SEG_MAGIC, 8));
}
END_TEST

START_TEST(test_objects)
{
	static const char text[] = "ZFCKPT01 a checkpoint, MARKER text MARKER text MARKER text MARKER";
	char key[ZF_BKEY_MAX], key2[ZF_BKEY_MAX], why[256];
	struct zf_seal s, z, plain;
	void *out, *back;
	size_t olen, blen;

	zf_seal_init(&s, ZF_FEAT_ENCRYPT | ZF_FEAT_META_ZSTD, fsid, master);
	zf_seal_init(&z, ZF_FEAT_META_ZSTD, fsid, NULL);
	zf_seal_init(&plain, 0, fsid, NULL);
	zf_bkey_ckpt(5, key, sizeof(key));
	zf_bkey_ckpt(6, key2, sizeof(key2));
	/* sealed: no clear text; opens under its key only */
	ck_assert_int_eq(zf_seal_obj(&s, key, text, sizeof(text), &out, &olen), 0);
	ck_assert(!has(out, olen, "MARKER", 6) && !has(out, olen, "ZFCKPT01", 8));
	ck_assert_int_eq(zf_unseal_obj(&s, key, out, olen, &back, &blen, why, sizeof(why)), 0);
	ck_assert_uint_eq(blen, sizeof(text));
	ck_assert(!memcmp(back, text, blen));
	free(back);
	ck_assert_int_eq(zf_unseal_obj(&s, key2, out, olen, &back, &blen, why, sizeof(why)), -EBADMSG);
	ck_assert(strstr(why, "authentication failed") != NULL);
	ck_assert_int_eq(zf_unseal_obj(&s, key, out, olen - 1, &back, &blen, why, sizeof(why)),
			 -EBADMSG);
	((uint8_t *)out)[olen / 2] ^= 1;
	ck_assert_int_eq(zf_unseal_obj(&s, key, out, olen, &back, &blen, why, sizeof(why)), -EBADMSG);
	free(out);
	/* compressed only: a zstd frame that opens back */
	ck_assert_int_eq(zf_seal_obj(&z, key, text, sizeof(text), &out, &olen), 0);
	ck_assert_uint_eq(zf_get32(out), 0xfd2fb528u);
	ck_assert_int_eq(zf_unseal_obj(&z, key, out, olen, &back, &blen, why, sizeof(why)), 0);
	ck_assert(blen == sizeof(text) && !memcmp(back, text, blen));
	free(back);
	/* a plain checkpoint where a compressed one is expected is damage */
	ck_assert_int_eq(zf_unseal_obj(&z, key, text, sizeof(text), &back, &blen, why, sizeof(why)),
			 -EBADMSG);
	free(out);
	/* the superblock and keys travel as they are; without features, everything does */
	ck_assert(zf_seal_is_plain(&s, ZF_BKEY_SUPERBLOCK) && zf_seal_is_plain(&s, ZF_BKEY_KEYS));
	ck_assert(!zf_seal_is_plain(&s, ZF_BKEY_HEAD) && !zf_seal_is_plain(&s, ZF_BKEY_LEASE));
	ck_assert(zf_seal_is_plain(&z, ZF_BKEY_HEAD) && !zf_seal_is_plain(&z, key));
	ck_assert(zf_seal_is_plain(&plain, key));
}
END_TEST

START_TEST(test_keys)
{
	uint8_t m[ZF_KEY_LEN], m2[ZF_KEY_LEN], keys[ZF_KEYS_SIZE], keys2[ZF_KEYS_SIZE];
	uint8_t other[16] = { 0 };
	char why[256];

	ck_assert_int_eq(zf_keys_create(fsid, "correct horse", 13, m, keys), 0);
	ck_assert(!has(keys, sizeof(keys), m, ZF_KEY_LEN));
	ck_assert_int_eq(zf_keys_unwrap(keys, sizeof(keys), fsid, "correct horse", 13, m2, why,
					sizeof(why)), 0);
	ck_assert(!memcmp(m, m2, ZF_KEY_LEN));
	ck_assert_int_eq(zf_keys_unwrap(keys, sizeof(keys), fsid, "correct horsf", 13, m2, why,
					sizeof(why)), -EKEYREJECTED);
	ck_assert_str_eq(why, "wrong passphrase");
	ck_assert_int_eq(zf_keys_unwrap(keys, sizeof(keys), other, "correct horse", 13, m2, why,
					sizeof(why)), -EBADMSG);
	/* rewrapped: the new passphrase opens the same key, the old one no longer */
	ck_assert_int_eq(zf_keys_wrap(fsid, m, "battery staple", 14, keys2), 0);
	ck_assert_int_eq(zf_keys_unwrap(keys2, sizeof(keys2), fsid, "battery staple", 14, m2, why,
					sizeof(why)), 0);
	ck_assert(!memcmp(m, m2, ZF_KEY_LEN));
	ck_assert_int_eq(zf_keys_unwrap(keys2, sizeof(keys2), fsid, "correct horse", 13, m2, why,
					sizeof(why)), -EKEYREJECTED);
	/* a damaged one says so, not "wrong passphrase" */
	keys2[100] ^= 1;
	ck_assert_int_eq(zf_keys_unwrap(keys2, sizeof(keys2), fsid, "battery staple", 14, m2, why,
					sizeof(why)), -EBADMSG);
}
END_TEST

START_TEST(test_superblock_features)
{
	struct zf_sb sb = { .chunk_min = 1, .chunk_avg = 2, .chunk_max = 4, .zstd_level = 3,
			    .seg_limit = 99, .created = 1234, .incompat = ZF_FEAT_META_ZSTD,
			    .made_by = 0x000200 };
	uint8_t buf[ZF_SB_SIZE], old[ZF_SB_SIZE];
	struct zf_sb got;
	char why[320];

	memcpy(sb.fsid, fsid, 16);
	zf_sb_encode(&sb, buf);
	ck_assert_int_eq(zf_sb_decode(buf, sizeof(buf), &got, why, sizeof(why)), 0);
	ck_assert(!memcmp(&got, &sb, sizeof(sb)));
	ck_assert_int_eq(zf_sb_check_features(&got, 1, why, sizeof(why)), 0);
	/* an unknown incompatible feature: refused, named by its bit and its maker */
	sb.incompat |= 1u << 9;
	sb.made_by = zf_version_code("0.7.1");
	zf_sb_encode(&sb, buf);
	ck_assert_int_eq(zf_sb_decode(buf, sizeof(buf), &got, why, sizeof(why)), 0);
	ck_assert_int_eq(zf_sb_check_features(&got, 0, why, sizeof(why)), -EOPNOTSUPP);
	ck_assert_msg(strstr(why, "bit 9") && strstr(why, "zerofs 0.7.1") &&
		      strstr(why, "cannot be opened"), "%s", why);
	/* an unknown read-only-compatible one: read-only opens only */
	sb.incompat = 0;
	sb.ro_compat = 1u << 3;
	zf_sb_encode(&sb, buf);
	ck_assert_int_eq(zf_sb_decode(buf, sizeof(buf), &got, why, sizeof(why)), 0);
	ck_assert_int_eq(zf_sb_check_features(&got, 0, why, sizeof(why)), 0);
	ck_assert_int_eq(zf_sb_check_features(&got, 1, why, sizeof(why)), -EOPNOTSUPP);
	ck_assert(strstr(why, "read-only") != NULL);
	/* compatible ones never stop anything */
	sb.ro_compat = 0;
	sb.compat = 1u << 30;
	zf_sb_encode(&sb, buf);
	ck_assert_int_eq(zf_sb_decode(buf, sizeof(buf), &got, why, sizeof(why)), 0);
	ck_assert_int_eq(zf_sb_check_features(&got, 1, why, sizeof(why)), 0);
	/* a superblock of format 1 before the features (flags 0, reserved 0) reads as none */
	memset(old, 0, sizeof(old));
	memcpy(old, ZF_SB_MAGIC, 8);
	zf_put32(old + 8, 1);
	memcpy(old + 16, fsid, 16);
	zf_put64(old + ZF_SB_CSUM_OFF, XXH3_64bits(old, ZF_SB_CSUM_OFF));
	ck_assert_int_eq(zf_sb_decode(old, sizeof(old), &got, why, sizeof(why)), 0);
	ck_assert(got.incompat == 0 && got.ro_compat == 0 && got.compat == 0 && got.made_by == 0);
	ck_assert_int_eq(zf_sb_check_features(&got, 1, why, sizeof(why)), 0);
	/* damage */
	buf[50] ^= 1;
	ck_assert_int_eq(zf_sb_decode(buf, sizeof(buf), &got, why, sizeof(why)), -EBADMSG);
	ck_assert_str_eq(why, "bad checksum");
}
END_TEST

static Suite *seal_suite(void)
{
	Suite *s = suite_create("seal");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_segment_round_trip);
	tcase_add_test(tc, test_segment_damage);
	tcase_add_test(tc, test_segment_without_footer);
	tcase_add_test(tc, test_objects);
	tcase_add_test(tc, test_keys);
	tcase_add_test(tc, test_superblock_features);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(seal_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
