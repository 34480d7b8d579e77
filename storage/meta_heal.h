/*
 * storage/meta_heal.h - rebuild a dev-dir's lost metadata from the bucket
 *
 * The bucket holds a copy of the metadata: checkpoints and the log in
 * pieces (docs/FORMAT.md "Bucket"). When the dev-dir's own copy lost
 * records — a checkpoint deleted or damaged, a log file deleted, damage
 * inside a log, a tail the durable mark says was synced — and the bucket's
 * verified objects, together with what the dev-dir still holds, give an
 * unbroken chain from a checkpoint to every record the dev-dir had,
 * zf_meta_heal rewrites meta/ as that chain: the checkpoint (fetched when
 * it is the bucket's) and one log file of every record after it, each
 * record from the dev-dir when it verifies there, else from the bucket.
 * Nothing the dev-dir held is dropped: the old files move to
 * meta/replaced.<unix time>/.
 *
 * Used by fsck (before it opens the filesystem): to say that the bucket
 * can undo the damage, and with --repair to undo it. It holds the
 * dev-dir's lock meanwhile (-EBUSY while a mount has it).
 */
#ifndef ZF_STORAGE_META_HEAL_H
#define ZF_STORAGE_META_HEAL_H

#include <stdint.h>

struct zf_objstore;

struct zf_meta_heal {
	int needed;		/* the dev-dir's metadata lost records */
	int possible;		/* the bucket fills every hole (a rebuild loses nothing) */
	int done;		/* apply: meta/ (or the superblock) was rewritten */
	int superblock;		/* the superblock is (apply: was) the bucket's copy */
	const char *sb_what;	/* then: "missing", "damaged" or "another filesystem's" */
	uint64_t base;		/* the checkpoint of the chain (0: none, from record 1) */
	int base_remote;	/* ... taken from the bucket */
	uint64_t end;		/* last record of the chain */
	uint64_t from_bucket;	/* records of the chain that came from the bucket */
	uint64_t local_end;	/* last record the dev-dir holds (complete transactions) */
	uint64_t synced;	/* the durable mark */
	char why[240];		/* what is lost locally, or why the bucket cannot help */
};

/*
 * Look at dev_dir's meta/ and (os, may be NULL) the bucket's meta/ and
 * fill *ret. With apply, rewrite meta/ when needed and possible. Returns
 * 0, or -errno (a bucket that cannot be listed or read: -EIO, -ETIMEDOUT
 * ...; the dev-dir's files: -errno), logged.
 */
int zf_meta_heal(const char *dev_dir, struct zf_objstore *os, int apply,
		 struct zf_meta_heal *ret);

#endif
