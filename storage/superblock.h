/*
 * storage/superblock.h - the superblock's codec and its feature flags
 *
 * The superblock (docs/FORMAT.md "Superblock") names a filesystem: its id,
 * its chunking parameters, and the features a reader must know to read it.
 * Features come in three sets, as in ext4:
 *   compat      a binary that does not know one may read and write anyway;
 *   ro_compat   ... may read, but must not write (it would break them);
 *   incompat    ... must not open the filesystem at all.
 * Every open checks them (zf_sb_check_features); an unknown incompatible
 * feature is refused naming its bit and the version of zerofs that made the
 * filesystem. Adding a feature: take the next free bit of the right set, add
 * it to the table in superblock.c with its name and the version that brings
 * it, and document it in FORMAT.md ("Features").
 * Not here: reading the file (storage/fs.c), the bucket's copy (tier/).
 */
#ifndef ZF_STORAGE_SUPERBLOCK_H
#define ZF_STORAGE_SUPERBLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "storage/chunker.h"

/* incompatible features */
#define ZF_FEAT_META_ZSTD 0x1u	/* metadata objects in the bucket are zstd frames */
#define ZF_FEAT_ENCRYPT 0x2u	/* bucket objects are sealed (storage/seal.h); the
				 * chunking secret comes from the master key */
#define ZF_FEAT_INCOMPAT_KNOWN (ZF_FEAT_META_ZSTD | ZF_FEAT_ENCRYPT)
#define ZF_FEAT_RO_COMPAT_KNOWN 0u
#define ZF_FEAT_COMPAT_KNOWN 0u

/* what a new filesystem gets unless asked otherwise */
#define ZF_FEAT_DEFAULT ZF_FEAT_META_ZSTD

struct zf_sb {
	uint8_t fsid[16];
	uint8_t secret[ZF_SECRET_LEN];	/* zero with ZF_FEAT_ENCRYPT (derived from the key) */
	uint32_t chunk_min, chunk_avg, chunk_max;
	uint32_t zstd_level;
	uint64_t seg_limit;
	int64_t created;		/* unix seconds */
	uint32_t incompat, ro_compat, compat;
	uint32_t made_by;		/* ZF_VERSION_CODE of the mkfs; 0: before 0.2.0 */
};

/* a version as one number: major << 16 | minor << 8 | patch */
uint32_t zf_version_code(const char *version);
/* and back, into buf ("0.2.0"; "before 0.2.0" for 0) */
const char *zf_version_text(uint32_t code, char *buf, size_t len);

/* the 128 bytes of sb, checksummed */
void zf_sb_encode(const struct zf_sb *sb, uint8_t *out);

/*
 * Decode and verify buf[0..len): size, magic, checksum, version, reserved
 * bytes. 0, or -EBADMSG with the reason in why (e.g. "bad checksum").
 */
int zf_sb_decode(const void *buf, size_t len, struct zf_sb *ret, char *why, size_t why_len);

/*
 * May this binary open sb, for writing when writable? 0, or -EOPNOTSUPP
 * with one line in why naming the unknown features (bits), that they make
 * the filesystem unreadable (or read-only) here, and which zerofs made it.
 */
int zf_sb_check_features(const struct zf_sb *sb, int writable, char *why, size_t why_len);

/* the names of the known features in a set ("meta-zstd,encrypt"), for messages */
const char *zf_sb_feature_names(uint32_t incompat, char *buf, size_t len);

#endif
