/*
 * storage/superblock.c - the superblock's codec and its feature flags
 * (storage/superblock.h; layout in storage/meta_format.h, FORMAT.md).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <xxhash.h>

#include "common/endian.h"
#include "storage/meta_format.h"
#include "storage/superblock.h"

/* every feature this binary knows: which set, its name, the version that brought it */
static const struct feature {
	int set;			/* 0 incompat, 1 ro_compat, 2 compat */
	uint32_t bit;
	const char *name;
	const char *since;
} features[] = {
	{ 0, ZF_FEAT_META_ZSTD, "meta-zstd", "0.2.0" },
	{ 0, ZF_FEAT_ENCRYPT, "encrypt", "0.2.0" },
};

uint32_t zf_version_code(const char *version)
{
	unsigned int a = 0, b = 0, c = 0;

	if (sscanf(version, "%u.%u.%u", &a, &b, &c) < 1)
		return 0;
	return (a & 0xffff) << 16 | (b & 0xff) << 8 | (c & 0xff);
}

const char *zf_version_text(uint32_t code, char *buf, size_t len)
{
	if (!code)
		snprintf(buf, len, "a zerofs before 0.2.0");
	else
		snprintf(buf, len, "zerofs %u.%u.%u", code >> 16, (code >> 8) & 0xff, code & 0xff);
	return buf;
}

void zf_sb_encode(const struct zf_sb *sb, uint8_t *out)
{
	memset(out, 0, ZF_SB_SIZE);
	memcpy(out, ZF_SB_MAGIC, 8);
	zf_put32(out + 8, ZF_SB_VERSION);
	zf_put32(out + ZF_SB_INCOMPAT_OFF, sb->incompat);
	memcpy(out + 16, sb->fsid, 16);
	memcpy(out + 32, sb->secret, ZF_SECRET_LEN);
	zf_put32(out + 64, sb->chunk_min);
	zf_put32(out + 68, sb->chunk_avg);
	zf_put32(out + 72, sb->chunk_max);
	zf_put32(out + 76, sb->zstd_level);
	zf_put64(out + 80, sb->seg_limit);
	zf_put64(out + 88, (uint64_t)sb->created);
	zf_put32(out + ZF_SB_RO_COMPAT_OFF, sb->ro_compat);
	zf_put32(out + ZF_SB_COMPAT_OFF, sb->compat);
	zf_put32(out + ZF_SB_MADE_BY_OFF, sb->made_by);
	zf_put64(out + ZF_SB_CSUM_OFF, XXH3_64bits(out, ZF_SB_CSUM_OFF));
}

int zf_sb_decode(const void *buf, size_t len, struct zf_sb *ret, char *why, size_t why_len)
{
	const uint8_t *p = buf;
	const char *bad = NULL;
	size_t i;

	if (len != ZF_SB_SIZE)
		bad = "wrong size";
	else if (memcmp(p, ZF_SB_MAGIC, 8) != 0)
		bad = "bad magic";
	else if (zf_get64(p + ZF_SB_CSUM_OFF) != XXH3_64bits(p, ZF_SB_CSUM_OFF))
		bad = "bad checksum";
	else if (zf_get32(p + 8) != ZF_SB_VERSION)
		bad = "unknown version";
	for (i = ZF_SB_RESERVED_OFF; !bad && i < ZF_SB_CSUM_OFF; i++)
		if (p[i])
			bad = "reserved bytes are not zero";
	if (bad) {
		snprintf(why, why_len, "%s", bad);
		return -EBADMSG;
	}
	memset(ret, 0, sizeof(*ret));
	ret->incompat = zf_get32(p + ZF_SB_INCOMPAT_OFF);
	memcpy(ret->fsid, p + 16, 16);
	memcpy(ret->secret, p + 32, ZF_SECRET_LEN);
	ret->chunk_min = zf_get32(p + 64);
	ret->chunk_avg = zf_get32(p + 68);
	ret->chunk_max = zf_get32(p + 72);
	ret->zstd_level = zf_get32(p + 76);
	ret->seg_limit = zf_get64(p + 80);
	ret->created = (int64_t)zf_get64(p + 88);
	ret->ro_compat = zf_get32(p + ZF_SB_RO_COMPAT_OFF);
	ret->compat = zf_get32(p + ZF_SB_COMPAT_OFF);
	ret->made_by = zf_get32(p + ZF_SB_MADE_BY_OFF);
	return 0;
}

/* "bit 5, bit 7" of the bits in set not in known */
static void unknown_bits(uint32_t set, uint32_t known, char *buf, size_t len)
{
	size_t n = 0;
	int b;

	buf[0] = 0;
	for (b = 0; b < 32; b++)
		if ((set & ~known) & (1u << b))
			n += snprintf(buf + n, n < len ? len - n : 0, "%sbit %d", n ? ", " : "", b);
}

int zf_sb_check_features(const struct zf_sb *sb, int writable, char *why, size_t why_len)
{
	char bits[160], made[48];
	const char *what;

	if (sb->incompat & ~ZF_FEAT_INCOMPAT_KNOWN) {
		unknown_bits(sb->incompat, ZF_FEAT_INCOMPAT_KNOWN, bits, sizeof(bits));
		what = "it cannot be opened";
	} else if (writable && (sb->ro_compat & ~ZF_FEAT_RO_COMPAT_KNOWN)) {
		unknown_bits(sb->ro_compat, ZF_FEAT_RO_COMPAT_KNOWN, bits, sizeof(bits));
		what = "it can only be opened read-only";
	} else {
		return 0;
	}
	snprintf(why, why_len, "it uses features this zerofs (%s) does not know (%s): %s; it was "
		 "made by %s, which knows them", PACKAGE_VERSION, bits, what,
		 zf_version_text(sb->made_by, made, sizeof(made)));
	return -EOPNOTSUPP;
}

const char *zf_sb_feature_names(uint32_t incompat, char *buf, size_t len)
{
	size_t i, n = 0;

	buf[0] = 0;
	for (i = 0; i < sizeof(features) / sizeof(features[0]); i++)
		if (features[i].set == 0 && (incompat & features[i].bit))
			n += snprintf(buf + n, n < len ? len - n : 0, "%s%s", n ? "," : "",
				      features[i].name);
	if (!n)
		snprintf(buf, len, "none");
	return buf;
}
