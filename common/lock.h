/*
 * common/lock.h - mutexes that know their place in the lock order.
 *
 * Every mutex in zerofs is a struct zf_mutex with a rank from enum
 * zf_lock_rank below, which IS the lock order (docs/ARCHITECTURE.md "Lock
 * order" explains each entry): a thread may take a lock only while every
 * lock it already holds has a smaller rank. Each lock's declaration says
 * what it guards and names its rank.
 *
 * The order is checked when checking is on: in debug and sanitizer builds
 * (ZF_DEBUG or -fsanitize=address), or with ZF_LOCK_CHECK=1 in the
 * environment, or after zf_lock_check_enable(). A thread that takes a lock
 * out of order, unlocks one it does not hold, or waits on a condition with
 * a lock it does not hold, aborts with both locks' names. Unchecked, the
 * calls are pthread's plus one branch.
 *
 * Which locks forbid waiting for the network is a separate matter: see
 * zf_nonet_locks (common/util.h) and fs_lock() (storage/fs_internal.h).
 */
#ifndef ZF_COMMON_LOCK_H
#define ZF_COMMON_LOCK_H

#include <pthread.h>
#include <time.h>

/* The lock order, outermost first (docs/ARCHITECTURE.md "Lock order"). */
enum zf_lock_rank {
	ZF_RANK_DAEMON_STOP = 1,	/* daemon/daemon.c d->stop_lock */
	ZF_RANK_CONTROL,		/* daemon/control.c ctl->lock */
	ZF_RANK_FOLLOW,			/* tier: rm->follow_lock, a replica's steps */
	ZF_RANK_EVICT,			/* tier: rm->evict_lock, one eviction at a time */
	ZF_RANK_GC,			/* storage: fs->gc_lock, one gc at a time */
	ZF_RANK_FS,			/* storage: fs->lock, the core */
	ZF_RANK_MARK,			/* storage: fs->mark_lock, the durable mark */
	ZF_RANK_REMOTE,			/* tier: rm->lock, the tier's state */
	ZF_RANK_PIPE,			/* storage: pipe->lock, compression workers */
	ZF_RANK_SEG_WRITE,		/* storage: st->wlock, the open segment */
	ZF_RANK_SEG,			/* storage: st->lock, segment files and fds */
	ZF_RANK_SEG_CACHE,		/* storage: st->cache_lock, decompressed cache */
	ZF_RANK_SEG_DCTX,		/* storage: st->dlock, decompressor pool */
	ZF_RANK_FAULT,			/* net: the fault store's parameters */
	ZF_RANK_S3_POOL,		/* net: the S3 client's connection pool */
	ZF_RANK_S3_CREDS,		/* net: the S3 client's keys (credential_process) */
	ZF_RANK_METRICS,		/* daemon/metrics.c m->lock, the metrics file's stop */
	ZF_RANK_MAX
};

struct zf_mutex {
	pthread_mutex_t m;
	enum zf_lock_rank rank;
	const char *name;		/* for reports: "fs->lock" */
};

void zf_mutex_init(struct zf_mutex *mu, enum zf_lock_rank rank, const char *name);
void zf_mutex_destroy(struct zf_mutex *mu);
void zf_mutex_lock(struct zf_mutex *mu);
void zf_mutex_unlock(struct zf_mutex *mu);
/* pthread_cond_wait / _timedwait on mu (which the caller holds) */
void zf_cond_wait(pthread_cond_t *c, struct zf_mutex *mu);
int zf_cond_timedwait(pthread_cond_t *c, struct zf_mutex *mu, const struct timespec *abstime);

/* is the order checked (see above)? */
int zf_lock_checking(void);
/* check from now on, whatever the build (tests) */
void zf_lock_check_enable(void);
/* checking on: abort unless the calling thread holds mu */
void zf_mutex_assert_held(const struct zf_mutex *mu);

#endif
