/*
 * tier/tier_internal.h - what the object-storage tier's files share
 *
 * struct zf_remote (one attached bucket) and the functions one file of the
 * tier calls in another. Nothing outside tier/ includes this; the public
 * API is tier/remote.h. The object verifiers are in tier/verify.h, the
 * chain scanner in tier/scan.h.
 *
 * Locking (the tier's part of the one order: common/lock.h ZF_RANK_EVICT,
 * ZF_RANK_REMOTE; docs/ARCHITECTURE.md has the whole tree's list):
 *   rm->evict_lock -> fs->lock -> rm->lock
 *  - rm->evict_lock: one eviction at a time (zf_tier_evict). Under it the
 *    eviction asks the core how much is buffered (fs->lock, briefly), takes
 *    rm->lock, and evicts segments (the segment store's locks, which rank
 *    after rm->lock but are never taken under it).
 *  - rm->lock: every field marked "under lock" below. In practice a leaf:
 *    nothing else is taken while it is held, and the tier calls out of
 *    itself only without it. The fetch hook may take it with fs->lock held
 *    (a fetch cache hit while the core holds its lock).
 * No network call (net/) under any lock of the tier, nor under fs->lock:
 * the fetch hook refuses to fetch when the caller holds the core's lock.
 */
#ifndef ZF_TIER_TIER_INTERNAL_H
#define ZF_TIER_TIER_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/lock.h"
#include "storage/fs_tier.h"
#include "storage/seal.h"
#include "tier/remote.h"

#define ZF_TIER_NONCES 16	/* segments whose nonce is kept (tier/sealed.c) */

struct zf_sc_loc;

struct zf_remote {
	struct zf_fs *fs;
	struct zf_objstore *up;		/* uploads: patient */
	struct zf_objstore *down;	/* fetches: bounded by fetch_timeout_ms */
	struct zf_remote_opts o;	/* defaults filled in by zf_remote_open */
	char *url;
	char *dev_real;			/* the dev-dir's real path, named in the lease */
	int devfd, segfd, cachefd, metafd;
	pthread_t thread;		/* the uploader (tier/tier.c) */
	int started;

	/* one eviction at a time; rank ZF_RANK_EVICT; order: evict_lock -> fs->lock -> lock
	 * (common/lock.h, docs/ARCHITECTURE.md "Lock order") */
	struct zf_mutex evict_lock;
	/* guards the fields below marked so; rank ZF_RANK_REMOTE, a leaf */
	struct zf_mutex lock;
	pthread_cond_t wake;		/* the uploader has work */
	pthread_cond_t done;		/* a round finished */
	pthread_cond_t arrived;		/* a fetch finished (or failed) */
	/* protected by lock: */
	struct fetching {
		uint64_t seg, off;
		struct fetching *next;
	} *fetching;			/* super-chunks on their way: one GET each */
	int stopping;
	int syncs_cancelled;		/* zf_remote_stopping: syncs stop waiting */
	uint64_t up_seq, up_seg, up_ckpt; /* upload.state: what the bucket holds */
	uint64_t claim_seq;		/* records this dev-dir may have put (>= up_seq) */
	uint64_t sync_want, sync_done;	/* committed seqs asked for / reached */
	int sync_err;
	/* the last failed round: which side, doing what, since when (wall clock); under lock */
	int fail_local;
	char fail_what[200];
	time_t fail_since;
	/* the bucket stopped answering then (wall clock; 0: it answers), and why; under lock */
	int64_t offline_since;
	char offline_why[240];
	char released[33];		/* our lease, released by a clean close that could not
					 * delete it (upload.state "released"): no crash */
	uint64_t pending_since_ns;	/* 0: nothing pending */
	uint64_t fresh_since_ns;	/* first write admitted since the round's
					 * upload point was taken (0: none) */
	uint64_t progress_ns;		/* last time an object went up (or start) */
	uint64_t local_bytes;		/* segments + fetch cache in the dev-dir */
	uint64_t unevictable;		/* written bytes not yet in the bucket: segments,
					 * write buffers, admitted writes */
	uint64_t evictable;		/* local bytes the bucket holds: they may go */
	unsigned int waiters;		/* writers waiting for room */
	uint64_t uploaded, fetched, fetch_hits, fetch_misses, evictions, stalls;
	uint64_t puts;			/* objects put (segments, metadata, head...) */
	unsigned int puts_in_flight;	/* PUTs of files under way (tier/upload.c) */
	uint64_t t0_ns;
	/*
	 * Read-ahead of evicted data (the prefetch thread; under lock): a
	 * reader whose fetches follow each other through a segment gets the
	 * next super-chunks fetched into cache/ before it asks.
	 */
	pthread_t pf_thread;
	int pf_started, pf_pending;
	pthread_cond_t pf_wake;
	uint64_t seq_seg, seq_end;	/* where the last super-chunk a reader got ended */
	uint64_t pf_seg, pf_from, pf_to; /* asked: bytes [from, to) of segment seg */
	uint64_t pf_done_seg, pf_done_end; /* fetched ahead up to here */
	uint64_t pf_size_seg, pf_size;	/* size of the segment object pf_size_seg */
	uint64_t pf_window;		/* how far ahead of a sequential reader (grows) */
	uint64_t prefetched;		/* bytes fetched ahead */
	int pins_cold;			/* pinned data may be missing: warm it (tier/wset.c) */
	uint64_t pins_retry_ns;		/* not before (0: at once) */
	uint64_t pinned_bytes;		/* pinned data, measured by the last eviction pass */
	uint64_t pinned_local;		/* of it, in cache/ (no victim): counts in the budget */
	/* merging small segments (tier/compact.c) */
	pthread_t compact_thread;
	int compact_started;
	pthread_cond_t compact_wake;	/* enough small segments went up */
	unsigned int small_segs;	/* small segments uploaded, not merged yet; under lock */
	uint64_t compactions;		/* under lock */
	int fenced;			/* under lock */
	uint8_t fsid[16];		/* this filesystem's, from the dev-dir's superblock */
	struct zf_seal seal;		/* how its objects travel (storage/seal.h) */
	/* segments' nonces, read from their headers (tier/sealed.c); under lock */
	struct {
		uint64_t seg, used;	/* used: 0 free, else the clock when last used */
		uint8_t nonce[ZF_SEG_NONCE_LEN];
	} nonces[ZF_TIER_NONCES];
	uint64_t nonce_clock;
	uint64_t head_seq, head_ckpt;	/* the head this process put last (UINT64_MAX: none);
					 * under lock */
	/* a request the bucket did not answer (fsck: its results are incomplete) */
	int unreachable;		/* protected by lock */
	char unreachable_why[320];	/* protected by lock */
	/* the lease: the uploader thread's (and the open's, before it starts) */
	int need_lease;			/* the bucket was unreachable at open: lease first */
	char lease_id[33];
	uint64_t lease_token, lease_renew_ns;
	/* a replica (tier/follow.c): its follower thread, one step at a time
	 * (follow_lock, rank ZF_RANK_FOLLOW: before fs->lock and rm->lock) */
	pthread_t follow_thread;
	int follow_started;
	struct zf_mutex follow_lock;
	zf_remote_follow_fn follow_fn;	/* the kernel's caches (the daemon) */
	void *follow_ctx;
	/* under lock: */
	struct zf_fs_changes follow_q;	/* changes for the follower to hand on */
	uint64_t follow_applied;	/* the last record the table holds */
	uint64_t follow_writer;		/* the last record the writer published, as seen */
	uint64_t follow_behind_ns;	/* since then the replica is behind (0: it is not) */
	uint64_t follow_step_ns;	/* when the last step began */
	uint64_t follow_reloads;	/* tables loaded again from a newer checkpoint */
	uint64_t follow_stale;		/* reads that met a removed segment: steps run for them */
	int64_t follow_polled;		/* the last head read (wall clock) */
	char follow_why[240];		/* why the last step did not apply */
	/* fsck (tier/audit.c): the bucket's objects, listed once, sorted by key */
	struct bucket_obj {
		char *key;
		uint64_t size;
	} *objs;
	size_t nobjs;
	int listed;			/* 0 not yet, 1 done, < 0 the listing's error */
};

/* the names of the bucket's snapshots (*ret malloc'd: zf_tier_names_free); 0 or -errno */
int zf_tier_snapshot_names(struct zf_objstore *os, char ***ret, size_t *ret_n);
void zf_tier_names_free(char **v, size_t n);
/* GET snapshot object key and verify it (a checkpoint of fsid): *ret malloc'd */
int zf_tier_snapshot_get(struct zf_objstore *os, const struct zf_seal *seal,
			 const uint8_t fsid[16], const char *key, void **ret, size_t *ret_len,
			 char *why, size_t wlen);

/* fsck's (or stats') bucket: fetched bytes are checked, not kept; an outage is
 * reported, not waited out (a replica's fetches are a mount's) */
static inline int tier_fsck(const struct zf_remote *rm)
{
	return rm->o.readonly && !rm->o.replica;
}

/* ---- tier/state.c: upload.state and the bucket's head ---- */

/* rewrite <dev-dir>/upload.state from the marks (.tmp, fsync, rename); 0 or -errno */
int zf_tier_state_save(struct zf_remote *rm);
/* read upload.state into the marks (missing or unreadable: they stay 0) */
void zf_tier_state_load(struct zf_remote *rm);

#define ZF_TIER_HEAD_MAX 160	/* a version 1 head is 117 bytes */

/* the bucket object "head" (docs/FORMAT.md "Bucket") */
struct zf_tier_head {
	uint8_t fsid[16];
	uint64_t seq;		/* the bucket holds log records up to seq */
	uint64_t ckpt;		/* and a checkpoint at least this new */
};

/* h as text into buf (ZF_TIER_HEAD_MAX bytes); returns its length */
size_t zf_tier_head_format(const struct zf_tier_head *h, char *buf);
/* 0 and *ret, or -EBADMSG with why: the head must be exactly what head_format wrote */
int zf_tier_head_parse(const void *buf, size_t len, struct zf_tier_head *ret, char *why,
		       size_t wlen);
/*
 * After a round that moved the bucket's log end or its checkpoint, put the
 * head (after the objects it counts). 0 or the store's -errno.
 */
int zf_tier_head_update(struct zf_remote *rm);

/* ---- tier/lease.c ---- */

/* -EBUSY (logged) if another writer holds the lease, else 0 or the store's -errno */
int zf_tier_lease_acquire(struct zf_remote *rm);
/* fencing, before each round: -EPERM (logged, rm->fenced) when the lease is lost */
int zf_tier_lease_check(struct zf_remote *rm);

/* ---- tier/fetch.c ---- */

/* the segment store's fetch hook (zf_segstore_fetch_fn; ctx: rm) */
int zf_tier_fetch(void *ctx, const struct zf_sc_loc *loc, void *buf, int refetch);
/* zf_tier_fetch without the read-ahead it starts for readers (warm-ups:
 * what follows a pinned super-chunk is not wanted) */
int zf_tier_fetch_only(struct zf_remote *rm, const struct zf_sc_loc *loc, void *buf);
/* the prefetch thread (arg: rm); returns when rm->stopping */
void *zf_tier_prefetch_main(void *arg);
/* start the prefetch thread (tier/tier.c); 0, or -EAGAIN: no read-ahead */
int zf_tier_prefetch_start(struct zf_remote *rm);
/* keep a super-chunk's bytes as cache/<name> (.tmp, rename; no fsync: a
 * cache file is verified on every use); 0 or -errno */
int zf_tier_cache_put(struct zf_remote *rm, const char *name, const void *buf, size_t len);
/* the fetch cache's file name of the super-chunk at seg, off: buf >= 40 bytes */
void zf_tier_cache_name(uint64_t seg, uint64_t off, char *buf, size_t len);
/* is name a fetch cache file? 1 and *ret_seg, *ret_off (may be NULL), or 0 */
int zf_tier_cache_parse(const char *name, uint64_t *ret_seg, uint64_t *ret_off);

/* ---- tier/evict.c ---- */

/* the core's admit hook (zf_fs_admit_fn; ctx: rm): backpressure on writers */
int zf_tier_admit(void *ctx, size_t len);
/* keep the dev-dir's segments and fetched data within the budget, LRU first;
 * pinned data stays */
void zf_tier_evict(struct zf_remote *rm);
/*
 * Evict sealed segment seg, which the bucket holds (rm->evict_lock held):
 * its super-chunks listed in pins (sorted: pinned data) are copied into
 * cache/ first. *ret_freed: the bytes the dev-dir lost net. 0 or -errno.
 */
int zf_tier_evict_seg(struct zf_remote *rm, uint64_t seg, const struct zf_sc_loc *pins,
		      size_t npins, uint64_t *ret_freed);

/* ---- tier/compact.c: merging the small segments time-sealing leaves ---- */
/* fill in merge_after's default */
void zf_tier_compact_defaults(struct zf_remote_opts *o);
/* a sealed segment of size bytes went up */
void zf_tier_note_segment(struct zf_remote *rm, uint64_t size);
/* the compaction thread (arg: rm); returns when rm->stopping */
void *zf_tier_compact_main(void *arg);

/* ---- tier/wset.c: pin, warm up, evict a file, status ---- */
/* in v[0..n) (sorted by seg, off): the first at or after loc; is loc there? */
size_t zf_tier_loc_lower(const struct zf_sc_loc *v, size_t n, const struct zf_sc_loc *loc);
int zf_tier_loc_in(const struct zf_sc_loc *v, size_t n, const struct zf_sc_loc *loc);
/* fetch every pinned super-chunk not local (the prefetch thread) */
void zf_tier_warm_pins(struct zf_remote *rm);
/* ask the prefetch thread to do that */
void zf_tier_want_pins(struct zf_remote *rm);

/* ---- tier/upload.c ---- */

/* a failure that may pass (the store is down or slow), not a refusal */
int zf_tier_transient(int r);
/* put the dev-dir file dirfd/name as key; 0 or -errno (the round's reason noted) */
int zf_tier_put_file(struct zf_remote *rm, int dirfd, const char *name, const char *key);

/* ---- tier/sealed.c: objects through storage/seal.h ---- */


/*
 * GET key whole and open it (a segment: every unit; else the object). 0,
 * the store's -errno, or -EBADMSG with why when it does not open.
 */
int zf_tier_get_obj(struct zf_objstore *os, const struct zf_seal *s, const char *key,
		    void **ret, size_t *ret_len, char *why, size_t why_len);
/* seal buf[0..len) as the object key and PUT it */
int zf_tier_put_obj(struct zf_objstore *os, const struct zf_seal *s, const char *key,
		    const void *buf, size_t len);
/*
 * Encrypted: segment seg's nonce known (read from its header in the bucket
 * unless kept). 0 (also without encryption), the store's -errno, or
 * -EBADMSG when the header does not open (logged).
 */
int zf_tier_seg_nonce(struct zf_remote *rm, uint64_t seg);
/*
 * Open in place the units of segment seg that a ranged GET at off brought
 * (buf[0..len)): *ret_len the bytes of the whole super-chunks opened from
 * the start (the rest: a unit cut by the range, the footer (*ret_footer
 * set, when not NULL), or damage, logged). Without encryption, all of it. -EBADMSG when not even the first
 * opens, or the store's -errno reading the segment's header.
 */
int zf_tier_open_units(struct zf_remote *rm, uint64_t seg, uint64_t off, void *buf, size_t len,
		       size_t *ret_len, int *ret_footer);
/* one upload round (seal: the open segment too); 0 or -errno, the reason noted */
int zf_tier_upload_round(struct zf_remote *rm, int seal);

/* ---- tier/attach.c ---- */

/* whose is the bucket's superblock? (zf_tier_sb_classify) */
enum {
	SB_OURS,	/* byte for byte the dev-dir's */
	SB_ABSENT,
	SB_HEAL,	/* damaged or replaced, but the bucket's metadata is ours: put ours back */
	SB_FOREIGN,	/* a valid superblock of another filesystem, nothing says the bucket is ours */
	SB_UNSURE,	/* damaged, and nothing tells whose it is */
};

/* is the bucket's superblock this dev-dir's? SB_*, or the store's -errno; why says what differs */
int zf_tier_sb_classify(struct zf_remote *rm, char *why, size_t wlen);
/*
 * Take the lease and check the bucket before anything goes up. 0; a
 * refusal is -EEXIST, -EBUSY or -ESTALE (logged); other errors come from
 * the store.
 */
int zf_tier_attach(struct zf_remote *rm);

/* ---- tier/pending.c ---- */

/* what the bucket lacks of this mount (rm->lock not held: it asks the core) */
void zf_tier_pending(struct zf_remote *rm, struct zf_remote_pending *ret);

/* ---- tier/tier.c ---- */

/*
 * The bucket failed to answer (err, transient) doing what: offline from
 * now, unless it already is (logged once). zf_tier_online: it answered.
 */
void zf_tier_offline(struct zf_remote *rm, int err, const char *what);
void zf_tier_online(struct zf_remote *rm);

/* note a request the bucket did not answer (zf_remote_unreachable); the first one is kept */
void zf_tier_note_unreachable(struct zf_remote *rm, const char *what, const char *key, int err);

#endif
