/*
 * storage/bucket_keys.h - the bucket's keys: one codec to format and parse them
 *
 * Every object of a filesystem's bucket lives under one of these keys,
 * below the store URL's prefix (docs/FORMAT.md "Bucket"):
 *   superblock                  a copy of the dev-dir's superblock
 *   seg/<id>.zseg               a sealed segment ("seg/" + its dev-dir name)
 *   meta/ckpt.<seq>             a checkpoint ("meta/" + its dev-dir name)
 *   meta/log.<first>-<last>     a log piece: records first..last (1 <= first <= last)
 *   lease                       who writes to this bucket, until when
 *   head                        how far its log reaches
 *   keys                        the master key, wrapped (encrypted filesystems)
 *   snap/<name>                 a snapshot: its checkpoint (storage/fs_snap.h)
 * Numbers are 16 lower-case hex digits. A key is one of these exactly as
 * the formatters below write it, or it is no zerofs key.
 *
 * This is in storage/, not tier/, because storage/meta_heal.c (fsck's
 * rebuild of lost metadata) reads the bucket's log pieces too, and
 * storage/ may not include tier/: the codec sits at the lowest layer that
 * uses it. It names objects only; what they hold is the tier's business
 * (tier/verify.c) and meta_heal's.
 */
#ifndef ZF_STORAGE_BUCKET_KEYS_H
#define ZF_STORAGE_BUCKET_KEYS_H

#include <stddef.h>
#include <stdint.h>

#define ZF_BKEY_SUPERBLOCK "superblock"
#define ZF_BKEY_LEASE "lease"
#define ZF_BKEY_HEAD "head"
#define ZF_BKEY_KEYS "keys"		/* an encrypted filesystem's wrapped master key */
#define ZF_BKEY_SEG_PREFIX "seg/"	/* list this for the segment objects */
#define ZF_BKEY_META_PREFIX "meta/"	/* ... for the checkpoints and log pieces */
#define ZF_BKEY_SNAP_PREFIX "snap/"	/* ... for the snapshots */

/* a buffer for any key: "meta/log." + 16 + "-" + 16 + NUL is 43 bytes */
#define ZF_BKEY_MAX 64

/* the key of segment id */
void zf_bkey_seg(uint64_t id, char *buf, size_t len);
/* the key of the checkpoint as of record seq */
void zf_bkey_ckpt(uint64_t seq, char *buf, size_t len);
/* the key of the log piece holding records first..last */
void zf_bkey_log(uint64_t first, uint64_t last, char *buf, size_t len);
/* the key of snapshot name */
void zf_bkey_snap(const char *name, char *buf, size_t len);

enum zf_bkey_kind {
	ZF_BKEY_OTHER,		/* not a zerofs key (garbage to fsck) */
	ZF_BKEY_IS_SUPERBLOCK,
	ZF_BKEY_IS_LEASE,
	ZF_BKEY_IS_HEAD,
	ZF_BKEY_IS_KEYS,
	ZF_BKEY_IS_SEG,		/* a = the segment id */
	ZF_BKEY_IS_CKPT,	/* a = the checkpoint's seq */
	ZF_BKEY_IS_LOG,		/* a..b = the piece's records */
	ZF_BKEY_IS_SNAP,	/* a snapshot (its name follows the prefix) */
};

struct zf_bkey {
	enum zf_bkey_kind kind;
	uint64_t a, b;
};

/* what key names: returns ret->kind (always set; a, b only for SEG, CKPT, LOG) */
enum zf_bkey_kind zf_bkey_parse(const char *key, struct zf_bkey *ret);

#endif
