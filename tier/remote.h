/*
 * tier/remote.h - the object-storage tier of one filesystem: uploads,
 * eviction, fetches on demand, the writers' lease, restore from a bucket.
 *
 * Bucket layout (keys under the store's URL prefix; docs/FORMAT.md
 * "Bucket"):
 *   superblock                  a copy of the dev-dir's superblock
 *   seg/<id>.zseg               sealed segments, byte-identical to local ones
 *   meta/ckpt.<seq>             checkpoints
 *   meta/log.<first>-<last>     log pieces: a log file holding records first..last
 *   lease                       who writes to this bucket, until when
 *   head                        how far its log reaches (put after what it counts)
 *
 * Upload order keeps the bucket restorable at every moment: a segment before
 * any log record that references it (the core seals the open segment when
 * the log must go further), log pieces in sequence order, a checkpoint only
 * after the segments it references; remote log pieces a checkpoint covers
 * are deleted only after that checkpoint is in the bucket.
 *
 * Threads: one uploader thread and one prefetch thread; fetches run on the
 * readers' threads; writers short of room evict on their own thread.
 * Lock order: rm->evict_lock -> fs->lock -> rm->lock (in practice a leaf;
 * the fetch hook may take it under fs->lock); no network call under any of
 * them. Details: tier/tier_internal.h.
 *
 * The tier lives in tier/, one concept per file: tier.c (lifecycle and the
 * uploader thread), state.c (upload.state, head), lease.c, attach.c,
 * upload.c, fetch.c, evict.c, gc.c, audit.c, restore.c, pending.c (what the
 * bucket lacks), and the object
 * verifiers and chain scanner they share (verify.c, scan.c).
 */
#ifndef ZF_TIER_REMOTE_H
#define ZF_TIER_REMOTE_H

#include <stddef.h>
#include <stdint.h>

#include "net/objstore.h"
#include "storage/fs.h"

struct zf_remote_opts {
	const char *url;		/* file:///dir or s3://bucket/prefix */
	struct zf_objstore_opts store;	/* endpoint, credentials, retries */
	uint64_t local_budget;		/* dev-dir budget for data, cache_size= (0: no limit) */
	unsigned int interval_ms;	/* upload round period (0: 1000) */
	unsigned int max_delay_s;	/* seal a segment to ship data this old (0: 1) */
	unsigned int merge_after;	/* merge small segments once this many went up (0: 64) */
	unsigned int fetch_timeout_ms;	/* a read of evicted data gives up (0: 30000) */
	unsigned int write_wait_ms;	/* a writer waits for room this long (0: 120000) */
	unsigned int lease_ttl_s;	/* lease lifetime; renewed at a third (0: 60) */
	int readonly;			/* fsck/stats: fetch only; no lease, no uploads */
	/* with readonly: a replica's mount, which fetches, caches and evicts
	 * like a writer's and follows the writer (zf_remote_follow_start) */
	int replica;
};

struct zf_remote_stats {
	uint64_t pending_bytes;		/* local segment + buffered bytes not in the bucket */
	uint64_t pending_segs;		/* segment files not in the bucket (the open one too) */
	uint64_t pending_records;	/* committed log records past the bucket's head */
	double oldest_pending_s;	/* age of the oldest of them: the recovery point */
	uint64_t uploaded_bytes, fetched_bytes;
	uint64_t uploaded_objects;	/* objects put: segments, checkpoints, log pieces, heads */
	unsigned int puts_in_flight;	/* segment and metadata PUTs under way now */
	double upload_rate, fetch_rate; /* bytes/s since start */
	uint64_t fetch_hits, fetch_misses; /* local fetch cache */
	uint64_t prefetched_bytes;	/* fetched ahead of sequential readers */
	uint64_t local_bytes, local_budget; /* dev-dir data and its budget */
	uint64_t evictions, stalls;	/* segments evicted, writes that had to wait */
	uint64_t pinned_bytes;		/* dev-dir bytes pinned data takes */
	uint64_t uploaded_seq;		/* last log record in the bucket */
	int fenced;			/* another writer took the lease */
	/* the bucket has not answered since then (wall clock; 0: it answers), and why */
	int64_t offline_since;
	char offline_why[240];
	/* uploads fail for another reason since then (0: they do not), and why */
	int64_t failing_since;
	char failing_why[400];
	/* a replica: the writer's last record as seen, the last one applied,
	 * how long it has been behind, the last head read (wall clock), tables
	 * loaded again, and why the last step did not apply ("" if it did) */
	int replica;
	uint64_t writer_seq, applied_seq;
	double behind_s;
	int64_t polled;
	uint64_t reloads;
	uint64_t stale_reads;		/* reads that met a segment the writer removed */
	char follow_why[240];
};

/* what the bucket lacks of a dev-dir */
struct zf_remote_pending {
	uint64_t bytes;		/* segment bytes (and, mounted, buffered writes) */
	uint64_t segs;		/* segment files past upload.state's segment mark */
	uint64_t records;	/* committed log records past its log mark (the bucket's head) */
};

struct zf_remote;

/*
 * Attach the bucket to an open fs: open the store, take the lease (-EBUSY
 * with a message naming the holder when another live writer has it), make
 * sure the bucket holds this filesystem's superblock, install the fetch and
 * backpressure hooks. No thread yet (the daemon may fork afterwards).
 * dev_dir is where fs lives.
 */
int zf_remote_open(struct zf_fs *fs, const char *dev_dir, const struct zf_remote_opts *o,
		   struct zf_remote **ret_rm);
/* start the uploader thread */
int zf_remote_start(struct zf_remote *rm);
/*
 * A replica (opts.replica): start following the writer (tier/follow.c),
 * every interval_ms. fn gets what changed, from the follower thread only
 * (never a FUSE request's): the daemon drops the kernel's caches of it.
 * 0, -EINVAL (not a replica), or -errno.
 */
/*
 * ---- snapshots in the bucket (tier/snap.c; storage/fs_snap.h) ----
 * put: once the bucket holds everything up to now (a sync), the dev-dir's
 * snapshot name goes up as snap/<name>; 0, or -errno with why. delete:
 * the bucket's copy goes (a missing one is fine): before the dev-dir's.
 * fetch: a snapshot the dev-dir lacks comes from the bucket, verified
 * (a replica's, a restored one's); 0, -ENOENT (said), or -errno.
 */
int zf_remote_snapshot_put(struct zf_remote *rm, const char *name, char *why, size_t len);
/*
 * What 'zerofs snapshot create|delete' does: the core's snapshot, then the
 * bucket's copy; delete: the bucket's copy, then the core's. rm may be NULL
 * (no bucket). 0, or -errno with why (one line).
 */
int zf_remote_snapshot_create(struct zf_fs *fs, struct zf_remote *rm, const char *name,
			      uint64_t *ret_seq, char *why, size_t len);
int zf_remote_snapshot_remove(struct zf_fs *fs, struct zf_remote *rm, const char *name,
			      char *why, size_t len);
int zf_remote_snapshot_delete(struct zf_remote *rm, const char *name);
int zf_remote_snapshot_fetch(struct zf_remote *rm, const char *name);

struct zf_fs_changes;
typedef void (*zf_remote_follow_fn)(void *ctx, const struct zf_fs_changes *ch);
int zf_remote_follow_start(struct zf_remote *rm, zf_remote_follow_fn fn, void *ctx);
/* stop following (the thread joined: fn is not called again); before the
 * daemon's FUSE session goes. rm may be NULL, or not a following replica */
void zf_remote_follow_stop(struct zf_remote *rm);
/* return once everything committed before the call is in the bucket */
int zf_remote_sync(struct zf_remote *rm);

struct zf_remote_sync_opts {
	/* give up once the bucket has taken no object for this long (0: write_wait) */
	unsigned int timeout_ms;
	/*
	 * Called about once a second while waiting, with no lock held; a
	 * non-zero return ends the wait (-ECANCELED: the caller went away).
	 */
	int (*progress)(void *ctx, const struct zf_remote_stats *s);
	void *ctx;
};

/* what a failed sync's why says last: "<reason>; not in the bucket: <pending>" */
#define ZF_REMOTE_LACKS "; not in the bucket: "

/*
 * zf_remote_sync with a time limit and progress (o NULL: the defaults).
 * Returns 0 once everything committed before the call is in the bucket;
 * else the error, with the reason, then ZF_REMOTE_LACKS and what the bucket
 * lacks (zf_remote_pending_say) in why (len bytes; may be NULL): the
 * store's errno when it refused or stopped
 * answering (see zf_remote_sync_why), -ETIMEDOUT when it took nothing for
 * the timeout without failing, -ECANCELED when the daemon is stopping
 * (zf_remote_stopping) or progress asked so, -EPERM when fenced.
 */
int zf_remote_sync_wait(struct zf_remote *rm, const struct zf_remote_sync_opts *o, char *why,
			size_t len);
/*
 * zf_remote_sync that says why it failed, one line into why: the store's
 * own reason ("bucket 'URL' full (No space left on device) (PUT 'seg/..')",
 * "bucket 'URL' unreachable since 12:03:04: Connection refused (..)"), the
 * dev-dir's, or a lost lease. The errno is the one that failed.
 */
int zf_remote_sync_why(struct zf_remote *rm, char *why, size_t len);
void zf_remote_stats(struct zf_remote *rm, struct zf_remote_stats *ret);
/*
 * ---- the working set (tier/wset.c) ----
 * Pin: keep a regular file's data in the dev-dir (fetched now; if the
 * bucket fails, later), or for a directory, pin what is made in it.
 * -ENOSPC with why when pinned data would exceed its share of the budget.
 * Unpin (on 0) clears the flag; the data becomes evictable.
 */
int zf_remote_pin(struct zf_remote *rm, uint64_t ino, int on, char *why, size_t wlen);
/* fetch what of a regular file is not local (several GETs at once); a
 * directory: nothing. *ret_fetched: bytes fetched. 0 or -errno. */
int zf_remote_warmup(struct zf_remote *rm, uint64_t ino, uint64_t *ret_fetched);
/*
 * Drop the dev-dir's copies of a regular file's data the bucket holds:
 * fetched super-chunks, and the segments holding its data (other files'
 * data in them goes too; pinned data stays). -EBUSY if the file is pinned.
 * *ret_freed: bytes the dev-dir freed.
 */
int zf_remote_evict_file(struct zf_remote *rm, uint64_t ino, uint64_t *ret_freed);

struct zf_file_status {
	uint64_t local;		/* file bytes in the dev-dir */
	uint64_t bucket;	/* file bytes only in the bucket */
	uint64_t pending;	/* local bytes not in the bucket yet */
	int pinned;
};
/* what of a file is where (a directory: only pinned) */
int zf_remote_file_status(struct zf_remote *rm, uint64_t ino, struct zf_file_status *st);

/*
 * The daemon is stopping: syncs that wait return now (-ECANCELED); the
 * uploader goes on until zf_remote_close. Call before waiting for the
 * callers of zf_remote_sync_wait (the control socket's clients).
 */
void zf_remote_stopping(struct zf_remote *rm);
/*
 * Stop the uploader and release the lease; before that a final upload of
 * everything written, unless the bucket is known unreachable (then nothing
 * waits for it: the close is prompt). 0 when the bucket holds everything
 * written; else -errno (the final upload's, or the outage's), logged with
 * what stays in the dev-dir for the next mount to upload.
 */
int zf_remote_close(struct zf_remote *rm);

/*
 * What the bucket lacks of the dev-dir dev_dir that fs (opened read-only
 * or not, but not attached to a bucket) serves, from the dev-dir alone:
 * upload.state's marks against seg/ and the log. No bucket, no lease: this
 * works while the bucket is unreachable. 0 and *ret, or -errno.
 */
int zf_remote_pending_read(struct zf_fs *fs, const char *dev_dir, struct zf_remote_pending *ret);
/* "<N> bytes in <S> segments and <R> log records" into buf (len bytes) */
void zf_remote_pending_say(const struct zf_remote_pending *p, char *buf, size_t len);

/*
 * zf_fs_gc() with the bucket: segments not in the bucket yet stay; then,
 * unless o->dry_run, a checkpoint goes up with the log (a restore no longer
 * needs what gc dropped) and the segment objects nothing references are
 * deleted from the bucket, as are fetched copies of them in the dev-dir.
 * rep->bucket_* count them (a dry run: what would go). 0 or -errno.
 */
int zf_remote_gc(struct zf_remote *rm, const struct zf_gc_opts *o, struct zf_gc_report *rep);

/* what a restore says, one line each (struct zf_restore_opts.say) */
enum {
	ZF_RESTORE_DAMAGE,	/* damage that costs data: a restore refuses (allow_loss: lost) */
	ZF_RESTORE_UNUSED,	/* an object the restore cannot use (it follows lost records) */
	ZF_RESTORE_WARN,	/* worth knowing: no head, an older checkpoint used, a damaged
				 * object another one stood in for */
};

struct zf_restore_opts {
	const struct zf_objstore_opts *store;	/* NULL: the defaults */
	/* restore the longest verified prefix of a damaged bucket (else refuse) */
	int allow_loss;
	/* also fetch and verify every super-chunk the files map (reads everything) */
	int verify_data;
	/* every finding, one line (NULL: the log) */
	void (*say)(void *ctx, int kind, const char *msg);
	/*
	 * An encrypted filesystem's passphrase into buf: its length, or -errno
	 * (said by the callback). NULL: an encrypted bucket is refused.
	 */
	int (*passphrase)(void *ctx, char *buf, size_t len);
	/* how far it is (NULL: not said): stage "metadata", bytes of verified
	 * objects kept so far (total 0: unknown), then stage "chunks", super-chunks
	 * checked of those the files map (zf_check_report.progress) */
	void (*progress)(void *ctx, const char *stage, uint64_t done, uint64_t total);
	void *ctx;
};

struct zf_restore_report {
	uint64_t seq;			/* the last log record restored */
	uint64_t lost_from, lost_to;	/* log records the bucket should hold and lost (0: none) */
	unsigned int problems;		/* ZF_RESTORE_DAMAGE lines (allow_loss) */
	int beyond;			/* log pieces past what was restored remain in the bucket */
};

/*
 * Rebuild dev_dir (empty or missing) from the bucket alone: superblock,
 * newest checkpoint and the log pieces after it; data stays in the bucket
 * and is fetched on demand. Every object of the chain is fetched and
 * verified whole (a bucket object that does not verify is damage, never a
 * torn tail), the chain must reach the bucket's head, and every super-chunk
 * the files map must be in a segment object long enough for it.
 *
 * Returns 0 (restored; with allow_loss *ret says what was lost),
 * -EBADMSG (the bucket is damaged, each finding said; dev_dir left as it
 * was), -ENOENT (no filesystem there), -EEXIST (dev_dir holds one), or the
 * store's -errno (logged).
 */
int zf_remote_restore(const char *url, const struct zf_restore_opts *o, const char *dev_dir,
		      struct zf_restore_report *ret);

/* ---- fsck (a read-only attach) ---- */

/*
 * The size of segment seg's object in the bucket (0 and *ret_size), -ENOENT
 * if absent, -errno if the bucket cannot be listed. The bucket is listed
 * once per rm. Matches zf_check_report.remote_seg_size (ctx: rm).
 */
int zf_remote_seg_size(void *rm, uint64_t seg, uint64_t *ret_size);

struct zf_remote_audit {
	const uint64_t *segs;		/* segments the metadata uses, sorted */
	size_t nsegs;
	int repair;			/* fix what the bucket lacks (upload.state, superblock, head) */
	int verify;			/* also fetch and verify the segments it holds */
	void (*problem)(void *ctx, const char *msg);
	void (*note)(void *ctx, const char *msg);
	void *ctx;
	uint64_t errors, notes, repaired;
	uint64_t objects, bytes;	/* in the bucket */
	uint64_t garbage_objects, garbage_bytes; /* referenced by nothing */
};

/*
 * Every object in the bucket is referenced or reported as garbage (a note:
 * a crash during gc leaves some); the superblock is there and this
 * filesystem's; the head is there, this filesystem's and not behind
 * upload.state; the log pieces after the newest checkpoint form a chain
 * that reaches the head and upload.state's mark; every segment upload.state
 * says is there is, as long as the local copy. The chain's objects (the
 * newest checkpoint and the log after it: small) are fetched and verified
 * frame by frame; with verify, those segments too (against the local copy,
 * else structurally). Damage is named with the key.
 *
 * With repair, what the bucket lacks or holds damaged while the dev-dir
 * holds it good is put back (superblock, head) or scheduled for the next
 * mount's uploader by lowering upload.state (segments: the segment mark;
 * the checkpoint or log: the checkpoint mark, so a fresh checkpoint goes
 * up, which replaces them). A second audit reports scheduled damage as a
 * note.
 *
 * 0 when the bucket answered every request; else the store's -errno, with
 * the reason in zf_remote_unreachable() (an outage is no mismatch: nothing
 * is concluded or repaired from it).
 */
int zf_remote_audit(struct zf_remote *rm, struct zf_remote_audit *a);

/*
 * Did the bucket fail to answer a request since the open (an outage, a
 * timeout, a refusal; not a missing object)? 0, or the first such -errno
 * with a one-line reason in why ("GET 'seg/..': Connection refused").
 * fsck's results are then incomplete (exit 8).
 */
int zf_remote_unreachable(struct zf_remote *rm, char *why, size_t len);

/* who holds a bucket's lease, as zf_remote_lease_read finds it */
struct zf_lease_info {
	char host[256];		/* the holder's host name */
	int pid;		/* its pid (the daemon's once its first round ran) */
	char dev[4096];		/* its dev-dir ("": an older zerofs did not say) */
	uint64_t expires;	/* unix time */
	int here;		/* host is this host */
	/* here, and pid is a live zerofs process: the holder is certainly
	 * alive (a false 0 is possible: a daemon whose lease still names the
	 * process that daemonized; its dev-dir's lock tells) */
	int alive_here;
};

/*
 * Read the lease of the bucket at url (so: store options, NULL for
 * defaults; seal: how the bucket's objects travel, storage/seal.h). 0 and
 * *ret; -ENOENT no lease; -EBADMSG a lease that does not parse (or does
 * not open: sealed under another key); or the store's -errno.
 */
struct zf_seal;
int zf_remote_lease_read(const char *url, const struct zf_objstore_opts *so,
			 const struct zf_seal *seal, struct zf_lease_info *ret);

/* delete the bucket's lease (a writer that is gone for good) */
int zf_remote_break_lease(const char *url, const struct zf_objstore_opts *so);


#endif
