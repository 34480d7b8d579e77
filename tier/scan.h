/*
 * tier/scan.h - the chain scanner: the bucket's metadata as a restore sees it
 *
 * Finds the newest checkpoint that verifies and the longest chain of log
 * pieces after it, and compares the chain's end with what the bucket
 * should hold (its head, upload.state, the newest object). Shared by
 * restore (which keeps the chain's objects), fsck's audit and bucket gc
 * (which collects the segments the chain references). Each finding is said
 * once, through say, with a SAY_* kind.
 */
#ifndef ZF_TIER_SCAN_H
#define ZF_TIER_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "tier/tier_internal.h"
#include "tier/verify.h"

struct zf_objstore;

enum {
	SAY_DAMAGE,		/* damage that costs log records (a restore refuses) */
	SAY_DAMAGE_OK,		/* damage a restore can do without (another copy, an older
				 * checkpoint whose log reaches as far) */
	SAY_UNUSED,		/* an object a restore cannot use (past a gap) */
	SAY_WARN,		/* worth saying, not damage */
};

struct mkey {
	uint64_t a, b;		/* checkpoint: a = its seq; log piece: records a..b */
};

struct mscan {
	/* in */
	struct zf_objstore *os;
	const struct zf_seal *seal;	/* how the objects travel (storage/seal.h) */
	uint8_t fsid[16];	/* the superblock's */
	int fetch;		/* GET and verify every object of the chain (else: keys only) */
	int partial;		/* keep the verified prefix of a damaged last piece (allow-loss) */
	uint64_t expect;	/* the bucket should hold records up to this (0: no opinion) */
	/* a replica holds records up to this one: when pieces reach back to
	 * after + 1, the chain starts there (no checkpoint is fetched) and
	 * pieces are kept from after + 1 on */
	uint64_t after;
	const char *expect_src;	/* who says so ("upload.state") */
	zf_tier_frame_fn frame;	/* every frame of the chain's objects (gc: SC records) */
	/* restore: a verified object of the chain, under its dev-dir name in meta/ */
	int (*keep)(void *ctx, const char *name, const void *buf, size_t len);
	void (*say)(void *ctx, int kind, const char *msg);
	void *ctx;
	/* out */
	struct mkey *ckpts, *pieces;	/* checkpoints newest first; pieces by first, longest first */
	size_t nckpts, npieces;
	int head_state;		/* 0 absent, 1 verified and this filesystem's, -1 not */
	char head_why[200];
	struct zf_tier_head head;
	int along;		/* the chain starts at after + 1 */
	int has_ckpt;		/* the chain starts after checkpoint ckpt (else at record 1) */
	uint64_t ckpt;
	int usable;		/* a chain exists (a checkpoint or pieces from record 1 verify) */
	uint64_t end;		/* the chain's last record */
	uint64_t target;	/* the last record the bucket should hold */
	unsigned int damaged;	/* SAY_DAMAGE lines */
};

/* a zf_objstore_list callback over "meta/" (ctx: a struct mscan): collects the keys */
int zf_mscan_list_fn(void *ctx, const char *key, uint64_t size);

/* free what a scan collected (the struct itself is the caller's) */
void zf_mscan_free(struct mscan *s);

/*
 * Run the scan described by s's "in" fields, filling its "out" fields.
 * 0, or the store's -errno when it did not answer (nothing is concluded
 * then). Damage is said, not returned: s->damaged counts it.
 */
int zf_mscan_run(struct mscan *s);

/*
 * Whose metadata does the bucket hold? The fsid in the header of its newest
 * checkpoint (the bulk of it), else in its head. 1 and *ret_fsid, 0 when
 * neither verifies, or the store's -errno.
 */
int zf_tier_meta_fsid(struct zf_objstore *os, const struct zf_seal *seal, uint8_t ret_fsid[16]);

#endif
