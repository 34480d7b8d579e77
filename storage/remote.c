/*
 * storage/remote.c - the object-storage tier (see remote.h)
 *
 * Local state: <dev-dir>/upload.state ("seq S", "seg N", "ckpt C" lines)
 * says what the bucket holds: log records up to S, every sealed segment up
 * to N, checkpoint C. It is rewritten (.tmp, fsync, rename) after each
 * segment and each round; if it is lost or stale, uploads are redone —
 * objects are immutable and named by content position, so a second put
 * writes the same bytes. A fourth line "claim L" is saved before a
 * checkpoint or log piece goes up: the bucket may hold records up to L from
 * this dev-dir. Records beyond it in the bucket were written by another
 * dev-dir (a restored copy): uploading would fork the filesystem, so
 * attaching refuses.
 *
 * Eviction: a sealed segment whose id is <= N may leave the dev-dir. Reads
 * of it then go through the fetch hook: a ranged GET of exactly the
 * super-chunk, kept in <dev-dir>/cache/<seg>-<off>.sc (unsynced: it is
 * verified on every use and re-fetched when it does not verify).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/endian.h"
#include "common/log.h"
#include "common/util.h"
#include "storage/mlog.h"
#include "storage/remote.h"
#include "storage/seg_format.h"
#include "storage/segstore.h"

struct zf_remote {
	struct zf_fs *fs;
	struct zf_objstore *up;		/* uploads: patient */
	struct zf_objstore *down;	/* fetches: bounded by fetch_timeout_ms */
	struct zf_remote_opts o;
	char *url;
	char *dev_real;			/* the dev-dir's real path, named in the lease */
	int devfd, segfd, cachefd, metafd;
	pthread_t thread;
	int started;

	pthread_mutex_t evict_lock;	/* one eviction at a time; taken before lock */
	pthread_mutex_t lock;
	pthread_cond_t wake;		/* the uploader has work */
	pthread_cond_t done;		/* a round finished */
	pthread_cond_t arrived;		/* a fetch finished (or failed) */
	/* protected by lock: */
	struct fetching {
		uint64_t seg, off;
		struct fetching *next;
	} *fetching;			/* super-chunks on their way: one GET each */
	int stopping;
	uint64_t up_seq, up_seg, up_ckpt;
	uint64_t claim_seq;		/* records this dev-dir may have put (>= up_seq) */
	uint64_t sync_want, sync_done;	/* committed seqs asked for / reached */
	int sync_err;
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
	uint64_t prefetched;		/* bytes fetched ahead */
	int fenced;
	int need_lease;			/* the bucket was unreachable at open: lease first */
	char lease_id[33];
	uint64_t lease_token, lease_renew_ns;
	/* fsck: the bucket's objects, listed once, sorted by key */
	struct bucket_obj {
		char *key;
		uint64_t size;
	} *objs;
	size_t nobjs;
	int listed;			/* 0 not yet, 1 done, < 0 the listing's error */
};

#define DEFAULT_INTERVAL_MS 1000
#define DEFAULT_MAX_DELAY_S 10
#define DEFAULT_FETCH_MS 30000
#define DEFAULT_WRITE_WAIT_MS 120000
#define DEFAULT_LEASE_S 60
#define PREFETCH_SCS 4		/* super-chunks fetched ahead of a sequential reader */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t now_ns(void)
{
	return zf_mono_ns();
}

static void evict(struct zf_remote *rm);

/* ---------------------------------------------------------------- state */

static int state_save(struct zf_remote *rm)
{
	char buf[160];
	int n;

	pthread_mutex_lock(&rm->lock);
	if (rm->claim_seq < rm->up_seq)
		rm->claim_seq = rm->up_seq;
	n = snprintf(buf, sizeof(buf),
		     "seq %" PRIu64 "\nseg %" PRIu64 "\nckpt %" PRIu64 "\nclaim %" PRIu64 "\n",
		     rm->up_seq, rm->up_seg, rm->up_ckpt, rm->claim_seq);
	pthread_mutex_unlock(&rm->lock);
	return zf_publish_file(rm->devfd, "upload.state", buf, n);
}

static void state_load(struct zf_remote *rm)
{
	unsigned long long seq = 0, seg = 0, ckpt = 0, claim = 0;
	void *buf;
	size_t len;

	if (zf_read_file(rm->devfd, "upload.state", &buf, &len) < 0)
		return;
	((char *)buf)[len] = 0;
	if (sscanf(buf, "seq %llu\nseg %llu\nckpt %llu\nclaim %llu", &seq, &seg, &ckpt,
		   &claim) >= 3) {
		rm->up_seq = seq;
		rm->up_seg = seg;
		rm->up_ckpt = ckpt;
		rm->claim_seq = claim > seq ? claim : seq;
	}
	free(buf);
}

/* ---------------------------------------------------------------- lease */

struct lease {
	char id[64];
	char who[256];			/* "<host> pid <pid>" */
	char dev[4096];			/* the holder's dev-dir ("": an older zerofs) */
	uint64_t token, expires;
};

static int lease_read(struct zf_objstore *os, struct lease *ret)
{
	unsigned long long t = 0, e = 0;
	struct lease l = { 0 };
	const char *dev;
	size_t len;
	void *buf;
	int r;

	r = zf_objstore_get(os, "lease", 0, 0, &buf, &len);
	if (r < 0)
		return r;
	buf = zf_realloc(buf, len + 1);
	((char *)buf)[len] = 0;
	if (sscanf(buf, "zerofs-lease 1\nid %63s\nholder %255[^\n]\nexpires %llu\ntoken %llu", l.id,
		   l.who, &e, &t) != 4) {
		free(buf);
		return -EBADMSG;
	}
	dev = strstr(buf, "\ndev ");
	if (dev && sscanf(dev + 5, "%4095[^\n]", l.dev) != 1)
		l.dev[0] = 0;
	free(buf);
	l.expires = e;
	l.token = t;
	*ret = l;
	return 0;
}

static int lease_write(struct zf_remote *rm)
{
	char buf[4608], host[128] = "?";
	int n;

	gethostname(host, sizeof(host) - 1);
	n = snprintf(buf, sizeof(buf),
		     "zerofs-lease 1\nid %s\nholder %s pid %d\nexpires %llu\ntoken %" PRIu64
		     "\ndev %s\n",
		     rm->lease_id, host, (int)getpid(),
		     (unsigned long long)(time(NULL) + rm->o.lease_ttl_s), rm->lease_token,
		     rm->dev_real);
	if (n >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	return zf_objstore_put(rm->up, "lease", buf, n);
}

/*
 * Is the holder of an unexpired lease certainly gone? Only when it served
 * this very dev-dir on this host: a zerofs daemon holds its dev-dir's lock
 * from open to exit, and we hold that lock now (zf_fs_open took it), so
 * that daemon is dead — a kill -9 or a crash. Its pid proves nothing: the
 * lease may name the process that daemonized, and pids are reused.
 */
static int lease_holder_gone(const struct zf_remote *rm, const struct lease *l)
{
	char host[256] = "", holder[256] = "";

	if (!l->dev[0] || sscanf(l->who, "%255s pid", holder) != 1)
		return 0;
	gethostname(host, sizeof(host) - 1);
	return strcmp(host, holder) == 0 && strcmp(l->dev, rm->dev_real) == 0;
}

/* -EBUSY (logged) if another writer holds the lease, else 0 or the store's -errno */
static int lease_acquire(struct zf_remote *rm)
{
	struct lease l = { 0 };
	uint8_t raw[16];
	int r, i;

	zf_random(raw, sizeof(raw));
	for (i = 0; i < 16; i++)
		sprintf(rm->lease_id + 2 * i, "%02x", raw[i]);
	r = lease_read(rm->up, &l);
	if (r == 0 && l.expires > (uint64_t)time(NULL)) {
		if (!lease_holder_gone(rm, &l)) {
			zf_err("bucket '%s' is in use by %s%s%s%s until %llu (unix time, %llu s from "
			       "now); if that writer is gone for good, run 'zerofs lease-break %s'",
			       rm->url, l.who, l.dev[0] ? " (dev-dir '" : "", l.dev,
			       l.dev[0] ? "')" : "", (unsigned long long)l.expires,
			       (unsigned long long)(l.expires - time(NULL)), rm->url);
			return -EBUSY;
		}
		zf_warn("taking over the lease of '%s' from %s: it served this dev-dir, which no "
			"process holds any more (a crashed mount)",
			rm->url, l.who);
	}
	if (r < 0 && r != -ENOENT && r != -EBADMSG)
		return r;
	rm->lease_token = (r == 0 ? l.token : 0) + 1;
	r = lease_write(rm);
	if (r < 0)
		return r;
	/* two writers racing for an expired lease: the last put wins, check it */
	r = lease_read(rm->up, &l);
	if (r < 0 && r != -ENOENT && r != -EBADMSG)
		return r;
	if (r < 0 || strcmp(l.id, rm->lease_id) != 0) {
		zf_err("lost the race for the lease of '%s' to %s", rm->url, r < 0 ? "?" : l.who);
		return -EBUSY;
	}
	rm->lease_renew_ns = now_ns() + (uint64_t)rm->o.lease_ttl_s * 1000000000ull / 3;
	return 0;
}

/* fencing: before each round, the lease must still be ours */
static int lease_check(struct zf_remote *rm)
{
	struct lease l;
	int r;

	r = lease_read(rm->up, &l);
	if (r == 0 && strcmp(l.id, rm->lease_id) != 0) {
		zf_err("the lease of '%s' now belongs to %s: uploads stop here, local data stays",
		       rm->url, l.who);
		pthread_mutex_lock(&rm->lock);
		rm->fenced = 1;
		pthread_mutex_unlock(&rm->lock);
		return -EPERM;
	}
	if (r < 0 && r != -ENOENT && r != -EBADMSG)
		return r;
	if (r < 0 || now_ns() >= rm->lease_renew_ns) {
		r = lease_write(rm);
		if (r == 0)
			rm->lease_renew_ns =
				now_ns() + (uint64_t)rm->o.lease_ttl_s * 1000000000ull / 3;
	}
	return r;
}

/* ---------------------------------------------------------------- fetch */

static void cache_name(const struct zf_sc_loc *loc, char *buf, size_t len)
{
	snprintf(buf, len, "%016" PRIx64 "-%016" PRIx64 ".sc", loc->seg, loc->off);
}

/* is the super-chunk at loc being fetched? (rm->lock held) */
/* keep a fetched super-chunk in cache/; no fsync: it is verified on every use */
static void cache_put(struct zf_remote *rm, const char *name, const void *buf, size_t len)
{
	char tmp[80];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	fd = openat(rm->cachefd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	if (zf_write_full(fd, buf, len) == 0)
		renameat(rm->cachefd, tmp, rm->cachefd, name);
	else
		unlinkat(rm->cachefd, tmp, 0);
	close(fd);
}

/*
 * A reader got the super-chunk at loc. When it follows the previous one (in
 * the segment, or the first of the next segment), ask the prefetch thread
 * for the next PREFETCH_SCS super-chunks' worth, at most a quarter of the
 * dev-dir budget.
 */
static void read_ahead(struct zf_remote *rm, const struct zf_sc_loc *loc)
{
	uint64_t end = loc->off + loc->disk_len, allow, from;
	int seq;

	allow = (uint64_t)PREFETCH_SCS * loc->disk_len;
	if (rm->o.cache_bytes && allow > rm->o.cache_bytes / 4)
		allow = rm->o.cache_bytes / 4;
	pthread_mutex_lock(&rm->lock);
	seq = (loc->seg == rm->seq_seg && loc->off == rm->seq_end) ||
	      (loc->seg == rm->seq_seg + 1 && loc->off == ZF_SEG_HDR_SIZE);
	rm->seq_seg = loc->seg;
	rm->seq_end = end;
	if (seq && rm->pf_started && !rm->pf_pending) {
		from = rm->pf_done_seg == loc->seg && rm->pf_done_end > end ? rm->pf_done_end : end;
		if (from + loc->disk_len <= end + allow) {
			rm->pf_seg = loc->seg;
			rm->pf_from = from;
			rm->pf_to = end + allow;
			rm->pf_pending = 1;
			pthread_cond_signal(&rm->pf_wake);
		}
	}
	pthread_mutex_unlock(&rm->lock);
}

/*
 * Fetch [from, to) of segment seg (cut at the object's end) with one ranged
 * GET and keep every whole super-chunk in it in cache/. Returns the end of
 * the last one kept (from if none; to when the segment has no more).
 */
static uint64_t prefetch_range(struct zf_remote *rm, uint64_t seg, uint64_t from, uint64_t to)
{
	struct zf_objstore_stat st;
	char segname[32], key[64], name[64];
	uint64_t size, pos = from;
	void *data = NULL;
	size_t len = 0, i = 0;
	int at_end = 0;

	zf_segstore_name(seg, segname, sizeof(segname));
	snprintf(key, sizeof(key), "seg/%s", segname);
	pthread_mutex_lock(&rm->lock);
	size = rm->pf_size_seg == seg ? rm->pf_size : 0;
	pthread_mutex_unlock(&rm->lock);
	if (!size) {
		if (zf_objstore_head(rm->down, key, &st) < 0)
			return to; /* the reader's own fetch reports it */
		size = st.size;
		pthread_mutex_lock(&rm->lock);
		rm->pf_size_seg = seg;
		rm->pf_size = size;
		pthread_mutex_unlock(&rm->lock);
	}
	if (to > size)
		to = size;
	if (from + ZF_SC_HDR_SIZE >= to)
		return to; /* the segment's end (its footer) */
	if (zf_objstore_get(rm->down, key, from, to - from, &data, &len) < 0)
		return to;
	while (len - i >= ZF_SC_HDR_SIZE) {
		const uint8_t *p = (const uint8_t *)data + i;
		uint64_t dlen = ZF_SC_HDR_SIZE + (uint64_t)zf_get32(p + ZF_SC_NCHUNKS_OFF) * ZF_SC_ENT_SIZE +
				zf_get32(p + ZF_SC_STORED_LEN_OFF);
		struct zf_sc_loc loc = { .seg = seg, .off = pos };

		if (zf_get32(p) != ZF_SC_MAGIC) {
			at_end = 1; /* the footer: nothing more to fetch here */
			break;
		}
		if (dlen > len - i)
			break; /* cut by the range: the next ask starts with it */
		cache_name(&loc, name, sizeof(name));
		if (faccessat(rm->cachefd, name, F_OK, 0) < 0) {
			cache_put(rm, name, p, dlen);
			pthread_mutex_lock(&rm->lock);
			rm->prefetched += dlen;
			rm->fetched += dlen;
			rm->local_bytes += dlen;
			rm->evictable += dlen;
			pthread_mutex_unlock(&rm->lock);
		}
		i += dlen;
		pos += dlen;
	}
	free(data);
	/* nothing kept (the first one did not fit): no new ask before the reader gets there */
	return at_end || pos == from ? to : pos;
}

static void *prefetch_main(void *arg)
{
	struct zf_remote *rm = arg;

	pthread_mutex_lock(&rm->lock);
	while (!rm->stopping) {
		uint64_t seg, from, to, end;

		if (!rm->pf_pending) {
			pthread_cond_wait(&rm->pf_wake, &rm->lock);
			continue;
		}
		seg = rm->pf_seg;
		from = rm->pf_from;
		to = rm->pf_to;
		pthread_mutex_unlock(&rm->lock);
		end = prefetch_range(rm, seg, from, to);
		pthread_mutex_lock(&rm->lock);
		rm->pf_done_seg = seg;
		rm->pf_done_end = end;
		rm->pf_pending = 0;
		pthread_cond_broadcast(&rm->arrived); /* readers waiting for it */
		pthread_cond_broadcast(&rm->wake); /* the budget may need eviction */
	}
	pthread_mutex_unlock(&rm->lock);
	return NULL;
}

/* is the prefetch thread fetching the range that holds loc? */
static int prefetching_locked(struct zf_remote *rm, const struct zf_sc_loc *loc)
{
	return rm->pf_pending && rm->pf_seg == loc->seg && loc->off >= rm->pf_from &&
	       loc->off + loc->disk_len <= rm->pf_to;
}

static int fetching_locked(struct zf_remote *rm, const struct zf_sc_loc *loc)
{
	struct fetching *f;

	for (f = rm->fetching; f; f = f->next)
		if (f->seg == loc->seg && f->off == loc->off)
			return 1;
	return 0;
}

static int fetch(void *ctx, const struct zf_sc_loc *loc, void *buf, int refetch)
{
	struct zf_remote *rm = ctx;
	uint64_t deadline = now_ns() + (uint64_t)rm->o.fetch_timeout_ms * 1000000ull;
	char name[64], key[64], seg[32];
	struct fetching me = { loc->seg, loc->off, NULL }, **pp;
	void *data = NULL;
	size_t len = 0;
	int fd, r;

	cache_name(loc, name, sizeof(name));
again:
	if (!refetch) {
		fd = openat(rm->cachefd, name, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			ssize_t n = zf_pread_full(fd, buf, loc->disk_len, 0);

			close(fd);
			if (n == (ssize_t)loc->disk_len) {
				pthread_mutex_lock(&rm->lock);
				rm->fetch_hits++;
				pthread_mutex_unlock(&rm->lock);
				read_ahead(rm, loc);
				return 0;
			}
		}
	}
	if (zf_fs_lock_held()) {
		/*
		 * Never wait for the bucket with the core lock held: every
		 * other operation would wait too. The core fetches what it
		 * needs before it locks; landing here means that fetch failed
		 * (or a bug): the operation fails instead of freezing the rest.
		 */
		zf_segstore_name(loc->seg, seg, sizeof(seg));
		zf_err("segment '%s' at offset %" PRIu64 " is not local and the caller holds the "
		       "core lock: not fetched", seg, loc->off);
		return -EIO;
	}
	/*
	 * One GET per super-chunk: the kernel reads ahead with several
	 * threads, which all miss on the same one. Later readers wait for the
	 * first and take its copy from the cache.
	 */
	pthread_mutex_lock(&rm->lock);
	if (!refetch && prefetching_locked(rm, loc)) {
		/* the prefetch thread is on its way with it: take its copy */
		while (prefetching_locked(rm, loc) && now_ns() < deadline)
			pthread_cond_wait(&rm->arrived, &rm->lock);
		pthread_mutex_unlock(&rm->lock);
		if (now_ns() < deadline)
			goto again;
		pthread_mutex_lock(&rm->lock);
	}
	if (fetching_locked(rm, loc)) {
		while (fetching_locked(rm, loc))
			pthread_cond_wait(&rm->arrived, &rm->lock);
		pthread_mutex_unlock(&rm->lock);
		refetch = 0; /* what arrived came straight from the store */
		if (now_ns() < deadline)
			goto again;
		return -EIO; /* the first reader logged why */
	}
	me.next = rm->fetching;
	rm->fetching = &me;
	pthread_mutex_unlock(&rm->lock);

	zf_segstore_name(loc->seg, seg, sizeof(seg));
	snprintf(key, sizeof(key), "seg/%s", seg);
	for (;;) {
		r = zf_objstore_get(rm->down, key, loc->off, loc->disk_len, &data, &len);
		if (r == 0 || r == -ENOENT || r == -EACCES || now_ns() >= deadline)
			break;
		usleep(200000); /* the store is down: try until the deadline */
	}
	if (r < 0) {
		zf_err("cannot fetch segment '%s' at offset %" PRIu64 " from '%s': %s", seg, loc->off,
		       rm->url, strerror(-r));
		goto out; /* -ENOENT: not in the bucket; else the store's error (fsck tells apart) */
	}
	memcpy(buf, data, loc->disk_len);
	free(data);
	pthread_mutex_lock(&rm->lock);
	rm->fetch_misses++;
	rm->fetched += loc->disk_len;
	if (!rm->o.readonly) {
		rm->local_bytes += loc->disk_len;
		rm->evictable += loc->disk_len;
	}
	pthread_mutex_unlock(&rm->lock);
	/*
	 * Keep it locally; no fsync: it is verified whenever it is used. Not
	 * for fsck (read-only): nothing would evict it, and a check of the
	 * whole filesystem would copy the whole bucket into the dev-dir.
	 */
	if (!rm->o.readonly) {
		cache_put(rm, name, buf, loc->disk_len);
		read_ahead(rm, loc);
	}
	pthread_cond_broadcast(&rm->wake); /* the budget may need eviction */
out:
	pthread_mutex_lock(&rm->lock);
	for (pp = &rm->fetching; *pp != &me; pp = &(*pp)->next)
		;
	*pp = me.next;
	pthread_cond_broadcast(&rm->arrived);
	pthread_mutex_unlock(&rm->lock);
	return r;
}

/* ---------------------------------------------------------- backpressure */

/* a write is admitted now: the recovery point ages from its oldest byte */
static void note_write_locked(struct zf_remote *rm)
{
	uint64_t now = now_ns();

	if (!rm->pending_since_ns)
		rm->pending_since_ns = now;
	if (!rm->fresh_since_ns)
		rm->fresh_since_ns = now;
}

static int admit(void *ctx, size_t len)
{
	struct zf_remote *rm = ctx;
	struct timespec ts;
	int r = 0, stalled = 0, evicted = 0;

	if (!rm->o.cache_bytes) {
		pthread_mutex_lock(&rm->lock);
		rm->unevictable += len; /* no budget, but stats show what is pending */
		note_write_locked(rm);
		pthread_mutex_unlock(&rm->lock);
		return 0;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += rm->o.write_wait_ms / 1000;
	ts.tv_nsec += (long)(rm->o.write_wait_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&rm->lock);
	while (!rm->stopping && !rm->fenced) {
		/*
		 * The dev-dir must have room for len once everything pending
		 * has landed: data the bucket holds leaves at once, in this
		 * thread; data it does not hold yet is waited for.
		 */
		if (!(rm->unevictable && rm->unevictable + len > rm->o.cache_bytes)) {
			if (evicted || !rm->evictable ||
			    rm->unevictable + rm->evictable + len <= rm->o.cache_bytes)
				break;
			evicted = 1;
			pthread_mutex_unlock(&rm->lock);
			evict(rm);
			pthread_mutex_lock(&rm->lock);
			continue;
		}
		if (!stalled) {
			stalled = 1;
			rm->stalls++;
			rm->waiters++;
		}
		pthread_cond_broadcast(&rm->wake);
		if (pthread_cond_timedwait(&rm->done, &rm->lock, &ts) == ETIMEDOUT) {
			zf_err("write waited %u ms for room in the dev-dir of '%s' (uploads to '%s' "
			       "are behind)",
			       rm->o.write_wait_ms, zf_fs_dev_dir(rm->fs), rm->url);
			r = -ENOSPC;
			break;
		}
	}
	if (r == 0) {
		rm->unevictable += len; /* counted until the next round measures */
		note_write_locked(rm);
	}
	if (stalled)
		rm->waiters--;
	pthread_mutex_unlock(&rm->lock);
	return r;
}

/* ------------------------------------------------------------- uploads */

static int put_file(struct zf_remote *rm, int dirfd, const char *name, const char *key)
{
	void *buf;
	size_t len;
	int r;

	r = zf_read_file(dirfd, name, &buf, &len);
	if (r < 0)
		return r;
	r = zf_objstore_put(rm->up, key, buf, len);
	free(buf);
	if (r == 0) {
		pthread_mutex_lock(&rm->lock);
		rm->uploaded += len;
		pthread_mutex_unlock(&rm->lock);
	}
	return r;
}

struct prune_ctx {
	uint64_t ckpt;
	char **keys;
	size_t n;
};

static int prune_fn(void *ctx, const char *key, uint64_t size)
{
	struct prune_ctx *p = ctx;
	unsigned long long a, b;

	if ((sscanf(key, "meta/log.%16llx-%16llx", &a, &b) == 2 && b <= p->ckpt) ||
	    (sscanf(key, "meta/ckpt.%16llx", &a) == 1 && a < p->ckpt)) {
		p->keys = zf_realloc(p->keys, (p->n + 1) * sizeof(*p->keys));
		p->keys[p->n++] = zf_strdup(key);
	}
	return 0;
}

/* the bucket holds checkpoint ckpt: log pieces it covers can go */
static void prune_meta(struct zf_remote *rm, uint64_t ckpt)
{
	struct prune_ctx p = { .ckpt = ckpt };
	size_t i;

	if (zf_objstore_list(rm->up, "meta/", prune_fn, &p) == 0 && p.n)
		zf_objstore_multi_delete(rm->up, (const char *const *)p.keys, p.n);
	for (i = 0; i < p.n; i++)
		free(p.keys[i]);
	free(p.keys);
}

/* a failure that may pass (the store is down or slow), not a refusal */
static int transient(int r)
{
	return r == -EIO || r == -ETIMEDOUT || r == -ECONNREFUSED || r == -EHOSTUNREACH ||
	       r == -EAGAIN;
}

/* take the lease, make sure the bucket holds this filesystem's superblock */
/* the bucket may hold log records up to seq from us: on disk before they go up */
static int claim(struct zf_remote *rm, uint64_t seq)
{
	pthread_mutex_lock(&rm->lock);
	if (seq <= rm->claim_seq) {
		pthread_mutex_unlock(&rm->lock);
		return 0;
	}
	rm->claim_seq = seq;
	pthread_mutex_unlock(&rm->lock);
	return state_save(rm);
}

struct foreign {
	uint64_t seq, claim;	/* this dev-dir put records up to seq, maybe up to claim */
	uint64_t last;		/* last record of an object it did not put (0: none) */
};

/*
 * Objects beyond seq are foreign unless they are the one put this dev-dir
 * may have made before a crash: log.<seq+1>-<claim> or ckpt.<claim>.
 */
static int foreign_fn(void *ctx, const char *key, uint64_t size)
{
	struct foreign *f = ctx;
	unsigned long long a, b;
	int n = 0;

	(void)size;
	if (sscanf(key, "meta/log.%16llx-%16llx%n", &a, &b, &n) == 2 && key[n] == 0) {
		if (b > f->seq && !(a == f->seq + 1 && b == f->claim) && b > f->last)
			f->last = b;
	} else if (sscanf(key, "meta/ckpt.%16llx%n", &a, &n) == 1 && key[n] == 0) {
		if (a > f->seq && a != f->claim && a > f->last)
			f->last = a;
	}
	return 0;
}

/* 0 if the bucket's superblock is ours or absent (*ret_absent), -EEXIST if not */
static int check_superblock(struct zf_remote *rm, int *ret_absent)
{
	void *ours = NULL, *theirs = NULL;
	size_t olen, tlen;
	int r;

	*ret_absent = 0;
	r = zf_objstore_get(rm->up, "superblock", 0, 0, &theirs, &tlen);
	if (r == -ENOENT) {
		*ret_absent = 1;
		return 0;
	}
	if (r < 0)
		return r;
	r = zf_read_file(rm->devfd, "superblock", &ours, &olen);
	if (r == 0 && (olen != tlen || memcmp(ours, theirs, olen) != 0)) {
		zf_err("the bucket '%s' holds another filesystem: its superblock differs from "
		       "'%s/superblock'",
		       rm->url, rm->dev_real);
		r = -EEXIST;
	}
	free(ours);
	free(theirs);
	return r;
}

/*
 * Take the lease and check the bucket before anything goes up: it must hold
 * this filesystem (or nothing yet) and no log record this dev-dir did not
 * put. A refusal is -EEXIST, -EBUSY or -ESTALE (logged); other errors come
 * from the store.
 */
static int attach(struct zf_remote *rm)
{
	struct foreign f = { 0 };
	int r, absent;

	r = check_superblock(rm, &absent);
	if (r < 0)
		return r;
	r = lease_acquire(rm);
	if (r == -EBUSY) {
		pthread_mutex_lock(&rm->lock);
		rm->fenced = 1;
		pthread_mutex_unlock(&rm->lock);
	}
	if (r < 0)
		return r;
	pthread_mutex_lock(&rm->lock);
	f.seq = rm->up_seq;
	f.claim = rm->claim_seq;
	pthread_mutex_unlock(&rm->lock);
	if (absent)
		r = put_file(rm, rm->devfd, "superblock", "superblock");
	if (r == 0)
		r = zf_objstore_list(rm->up, "meta/", foreign_fn, &f);
	if (r < 0)
		return r;
	if (f.last) {
		zf_err("the bucket '%s' holds log records up to %llu that this dev-dir did not put "
		       "(it put up to %llu): another dev-dir (a restored copy?) has written to it "
		       "since, and uploading would fork the filesystem; restore a new dev-dir from "
		       "the bucket ('zerofs mkfs --restore') or give this one a new bucket",
		       rm->url, (unsigned long long)f.last, (unsigned long long)f.seq);
		zf_objstore_delete(rm->up, "lease");
		pthread_mutex_lock(&rm->lock);
		rm->fenced = 1;
		pthread_mutex_unlock(&rm->lock);
		return -ESTALE;
	}
	rm->need_lease = 0;
	return 0;
}

static int upload_round(struct zf_remote *rm, int seal)
{
	struct zf_upload_point pt;
	uint64_t seg, up_seq, up_seg, up_ckpt, buffered_since;
	struct zf_buf img = { 0 };
	char name[64], key[96];
	int r, flush;

	/* stalled writers wait for buffered data too: it must reach a segment */
	pthread_mutex_lock(&rm->lock);
	flush = rm->waiters > 0;
	rm->fresh_since_ns = 0; /* writes from now on are not in this round */
	pthread_mutex_unlock(&rm->lock);
	r = flush ? zf_fs_sync(rm->fs) : 0;
	if (r == 0)
		r = zf_fs_upload_point(rm->fs, seal, &pt);
	if (r < 0)
		return r;
	/* written, not committed: not in this round either */
	buffered_since = zf_fs_buffered_since(rm->fs);
	/* the recovery point ages from now, even if the store is down */
	pthread_mutex_lock(&rm->lock);
	if (pt.committed > rm->up_seq && !rm->pending_since_ns)
		rm->pending_since_ns = now_ns();
	pthread_mutex_unlock(&rm->lock);
	r = rm->need_lease ? attach(rm) : lease_check(rm);
	if (r < 0)
		return r;
	pthread_mutex_lock(&rm->lock);
	up_seq = rm->up_seq;
	up_seg = rm->up_seg;
	up_ckpt = rm->up_ckpt;
	pthread_mutex_unlock(&rm->lock);
	/* 1. sealed segments, in order */
	for (seg = up_seg + 1; seg <= pt.last_sealed; seg++) {
		zf_segstore_name(seg, name, sizeof(name));
		snprintf(key, sizeof(key), "seg/%s", name);
		r = put_file(rm, rm->segfd, name, key);
		if (r == -ENOENT && zf_objstore_head(rm->up, key, &(struct zf_objstore_stat){ 0 }) == 0)
			r = 0; /* evicted earlier: the bucket has it */
		if (r < 0)
			goto out;
		pthread_mutex_lock(&rm->lock);
		rm->up_seg = seg;
		rm->progress_ns = now_ns();
		rm->sync_err = 0;
		pthread_mutex_unlock(&rm->lock);
		/* a crash now must not redo this segment: segments are the bulk */
		r = state_save(rm);
		if (r < 0)
			goto out;
		/* room for stalled writers now, not after the whole round */
		evict(rm);
		pthread_mutex_lock(&rm->lock);
		pthread_cond_broadcast(&rm->done);
		pthread_mutex_unlock(&rm->lock);
	}
	/* 2. a newer checkpoint (all its segments are sealed and up by now) */
	if (pt.ckpt_seq > up_ckpt && pt.ckpt_seq <= pt.seq) {
		r = claim(rm, pt.ckpt_seq);
		if (r < 0)
			goto out;
		zf_ckpt_name(pt.ckpt_seq, name, sizeof(name));
		snprintf(key, sizeof(key), "meta/%s", name);
		r = put_file(rm, rm->metafd, name, key);
		if (r == -ENOENT)
			r = 0; /* replaced by a newer one meanwhile: next round */
		else if (r == 0) {
			pthread_mutex_lock(&rm->lock);
			rm->up_ckpt = pt.ckpt_seq;
			if (rm->up_seq < pt.ckpt_seq)
				rm->up_seq = pt.ckpt_seq;
			up_seq = rm->up_seq;
			pthread_mutex_unlock(&rm->lock);
			prune_meta(rm, pt.ckpt_seq);
		}
		if (r < 0)
			goto out;
	}
	/* 3. the log since, as one piece */
	if (pt.seq > up_seq) {
		r = zf_fs_log_image(rm->fs, up_seq + 1, pt.seq, &img);
		if (r == -ENOENT) {
			r = 0; /* only in a checkpoint now: it goes up next round */
			goto out;
		}
		if (r < 0)
			goto out;
		snprintf(key, sizeof(key), "meta/log.%016" PRIx64 "-%016" PRIx64, up_seq + 1,
			 pt.seq);
		r = claim(rm, pt.seq);
		if (r == 0)
			r = zf_objstore_put(rm->up, key, img.p, img.len);
		if (r < 0)
			goto out;
		pthread_mutex_lock(&rm->lock);
		rm->uploaded += img.len;
		rm->up_seq = pt.seq;
		rm->progress_ns = now_ns();
		pthread_mutex_unlock(&rm->lock);
	}
	r = state_save(rm);
	pthread_mutex_lock(&rm->lock);
	/*
	 * Caught up: what is pending now was written after the upload point,
	 * or was still buffered (not committed) then: the oldest of those.
	 */
	if (rm->up_seq >= pt.committed)
		rm->pending_since_ns = !buffered_since ? rm->fresh_since_ns
				       : !rm->fresh_since_ns || buffered_since < rm->fresh_since_ns
					       ? buffered_since
					       : rm->fresh_since_ns;
	else if (!rm->pending_since_ns)
		rm->pending_since_ns = now_ns();
	pthread_mutex_unlock(&rm->lock);
out:
	zf_buf_free(&img);
	return r;
}

/* ------------------------------------------------------------- eviction */

struct victim {
	int is_seg;
	uint64_t id;		/* segment id */
	char name[256];		/* cache file name */
	uint64_t size;
	int64_t when;		/* last access (cache files: atime) */
};

static int cmp_victim(const void *a, const void *b)
{
	const struct victim *x = a, *y = b;

	return x->when < y->when ? -1 : x->when > y->when;
}

/* list a directory's files into v; returns their total size */
static uint64_t scan_dir(int dirfd, int is_seg, uint64_t up_seg, struct victim **v, size_t *n,
			 uint64_t *ret_unevictable)
{
	uint64_t total = 0;
	struct dirent *e;
	DIR *d;
	int fd = dup(dirfd);

	if (fd < 0)
		return 0;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return 0;
	}
	rewinddir(d);
	while ((e = readdir(d))) {
		unsigned long long id = 0;
		struct stat st;

		if (e->d_name[0] == '.' || fstatat(dirfd, e->d_name, &st, 0) < 0)
			continue;
		total += st.st_size;
		if (is_seg && (sscanf(e->d_name, "%16llx.zseg", &id) != 1 || id > up_seg)) {
			*ret_unevictable += st.st_size; /* open, or not in the bucket yet */
			continue;
		}
		*v = zf_realloc(*v, (*n + 1) * sizeof(**v));
		(*v)[*n].is_seg = is_seg;
		(*v)[*n].id = id;
		snprintf((*v)[*n].name, sizeof((*v)[*n].name), "%s", e->d_name);
		(*v)[*n].size = st.st_size;
		/* segments are read through the kernel: their atime is the age */
		(*v)[*n].when = (int64_t)st.st_atim.tv_sec * 1000000000 + st.st_atim.tv_nsec;
		if (st.st_mtim.tv_sec > st.st_atim.tv_sec)
			(*v)[*n].when = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
		(*n)++;
	}
	closedir(d);
	return total;
}

/* keep the dev-dir's segments and fetched data within the budget, LRU first */
static void evict(struct zf_remote *rm)
{
	struct victim *v = NULL;
	uint64_t total, buffered, unevictable = 0, up_seg;
	size_t n = 0, i;

	pthread_mutex_lock(&rm->evict_lock);
	/* before the scan: bytes that move to a segment meanwhile count twice, not never */
	buffered = zf_fs_buffered_bytes(rm->fs);
	pthread_mutex_lock(&rm->lock);
	up_seg = rm->up_seg;
	pthread_mutex_unlock(&rm->lock);
	total = scan_dir(rm->segfd, 1, up_seg, &v, &n, &unevictable);
	total += scan_dir(rm->cachefd, 0, up_seg, &v, &n, &unevictable);
	/* what the dev-dir holds once buffered data has landed must fit */
	if (rm->o.cache_bytes && total + buffered > rm->o.cache_bytes && n) {
		qsort(v, n, sizeof(*v), cmp_victim);
		for (i = 0; i < n && total + buffered > rm->o.cache_bytes; i++) {
			int r = v[i].is_seg ? zf_segstore_evict(zf_fs_segstore(rm->fs), v[i].id)
					    : (unlinkat(rm->cachefd, v[i].name, 0) < 0 ? -errno : 0);

			if (r < 0)
				continue;
			total -= v[i].size;
			if (v[i].is_seg) {
				pthread_mutex_lock(&rm->lock);
				rm->evictions++;
				pthread_mutex_unlock(&rm->lock);
			}
		}
	}
	pthread_mutex_lock(&rm->lock);
	rm->local_bytes = total;
	rm->unevictable = unevictable + buffered;
	rm->evictable = total - unevictable;
	pthread_mutex_unlock(&rm->lock);
	pthread_mutex_unlock(&rm->evict_lock);
	free(v);
}

/* ------------------------------------------------------------ the thread */

static void *uploader_main(void *arg)
{
	struct zf_remote *rm = arg;
	uint64_t last_err_log = 0, progress = 0;
	int backoff = 0, first = 1;

	pthread_mutex_lock(&rm->lock);
	while (!rm->stopping) {
		struct timespec ts;
		uint64_t want, age;
		int r, seal;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)(rm->o.interval_ms << backoff) % 1000 * 1000000;
		ts.tv_sec += (rm->o.interval_ms << backoff) / 1000 + ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		/*
		 * The first round at once (it renews the lease with this
		 * process's pid and resumes a backlog); then a round per period,
		 * or at once for a sync or while the budget is tight and rounds
		 * make progress. After a failure, the whole backoff: wakes from
		 * writers and readers must not turn an outage into a busy loop.
		 */
		if (backoff) {
			while (!rm->stopping &&
			       pthread_cond_timedwait(&rm->wake, &rm->lock, &ts) != ETIMEDOUT)
				;
		} else if (!first && rm->sync_want <= rm->sync_done &&
			   !(rm->o.cache_bytes && rm->unevictable > rm->o.cache_bytes / 2 &&
			     rm->progress_ns != progress)) {
			pthread_cond_timedwait(&rm->wake, &rm->lock, &ts);
		}
		first = 0;
		progress = rm->progress_ns;
		if (rm->stopping)
			break;
		want = rm->sync_want;
		age = rm->pending_since_ns ? now_ns() - rm->pending_since_ns : 0;
		/* seal for a sync, for old data, or to make room under the budget */
		seal = want > rm->sync_done || age >= (uint64_t)rm->o.max_delay_s * 1000000000ull ||
		       (rm->o.cache_bytes && rm->unevictable > rm->o.cache_bytes / 2);
		pthread_mutex_unlock(&rm->lock);
		r = rm->fenced ? -EPERM : upload_round(rm, seal);
		evict(rm);
		pthread_mutex_lock(&rm->lock);
		if (r == 0) {
			backoff = 0;
			rm->sync_err = 0;
			if (rm->up_seq >= want && want > rm->sync_done)
				rm->sync_done = want;
		} else {
			if (backoff < 4)
				backoff++;
			rm->sync_err = r;
			if (now_ns() - last_err_log > 10000000000ull) {
				zf_err("upload to '%s' failed: %s (retrying; local data is safe)", rm->url,
				       strerror(-r));
				last_err_log = now_ns();
			}
		}
		pthread_cond_broadcast(&rm->done);
	}
	pthread_mutex_unlock(&rm->lock);
	return NULL;
}

/* --------------------------------------------------------------- public */

static int open_stores(const char *url, const struct zf_objstore_opts *so,
		       unsigned int fetch_ms, struct zf_objstore **up, struct zf_objstore **down)
{
	struct zf_objstore_opts f = *so;
	int r;

	r = zf_objstore_open(url, so, up);
	if (r < 0)
		return r;
	if (down) {
		f.timeout_ms = fetch_ms;
		r = zf_objstore_open(url, &f, down);
		if (r < 0) {
			zf_objstore_close(*up);
			*up = NULL;
		}
	}
	return r;
}

int zf_remote_open(struct zf_fs *fs, const char *dev_dir, const struct zf_remote_opts *o,
		   struct zf_remote **ret_rm)
{
	struct zf_remote *rm;
	int r;

	rm = zf_calloc(1, sizeof(*rm));
	rm->fs = fs;
	rm->o = *o;
	rm->url = zf_strdup(o->url);
	rm->o.url = rm->url;
	rm->dev_real = realpath(dev_dir, NULL);
	if (!rm->dev_real)
		rm->dev_real = zf_strdup(dev_dir);
	if (!rm->o.interval_ms)
		rm->o.interval_ms = DEFAULT_INTERVAL_MS;
	if (!rm->o.max_delay_s)
		rm->o.max_delay_s = DEFAULT_MAX_DELAY_S;
	if (!rm->o.fetch_timeout_ms)
		rm->o.fetch_timeout_ms = DEFAULT_FETCH_MS;
	if (!rm->o.write_wait_ms)
		rm->o.write_wait_ms = DEFAULT_WRITE_WAIT_MS;
	if (!rm->o.lease_ttl_s)
		rm->o.lease_ttl_s = DEFAULT_LEASE_S;
	pthread_mutex_init(&rm->evict_lock, NULL);
	pthread_mutex_init(&rm->lock, NULL);
	pthread_cond_init(&rm->wake, NULL);
	pthread_cond_init(&rm->done, NULL);
	pthread_cond_init(&rm->arrived, NULL);
	pthread_cond_init(&rm->pf_wake, NULL);
	rm->devfd = open(dev_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rm->devfd >= 0) {
		mkdirat(rm->devfd, "cache", 0700);
		rm->segfd = openat(rm->devfd, "seg", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		rm->metafd = openat(rm->devfd, "meta", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		rm->cachefd = openat(rm->devfd, "cache", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (rm->devfd < 0 || rm->segfd < 0 || rm->metafd < 0 || rm->cachefd < 0) {
		r = -errno;
		zf_err("cannot open the dev-dir '%s' for uploads: %s", dev_dir, strerror(-r));
		goto fail;
	}
	r = open_stores(rm->url, &o->store, rm->o.fetch_timeout_ms, &rm->up, &rm->down);
	if (r < 0) {
		zf_err("cannot open the object store '%s': %s", rm->url, strerror(-r));
		goto fail;
	}
	state_load(rm);
	if (!rm->o.readonly) {
		struct zf_upload_point pt;

		/*
		 * Records reach the bucket only once committed here, so a
		 * dev-dir behind the bucket lost committed records (a damaged
		 * log tail, dropped as torn): writing on would give new
		 * records the numbers of lost ones, a fork.
		 */
		r = zf_fs_upload_point(fs, 0, &pt);
		if (r == 0 && pt.committed < rm->up_seq) {
			zf_err("the dev-dir '%s' lacks log records %llu..%llu that the bucket '%s' "
			       "holds (its log lost them); writing on would fork the filesystem: "
			       "restore a new dev-dir from the bucket ('zerofs mkfs --restore'), "
			       "which has everything this one had",
			       dev_dir, (unsigned long long)pt.committed + 1,
			       (unsigned long long)rm->up_seq, rm->url);
			r = -ESTALE;
		}
		if (r < 0)
			goto fail;
	}
	rm->t0_ns = now_ns();
	rm->progress_ns = rm->t0_ns;
	zf_segstore_set_fetch(zf_fs_segstore(fs), fetch, rm);
	if (rm->o.readonly) {
		*ret_rm = rm;
		return 0;
	}
	/*
	 * The lease, and the bucket must describe this filesystem. A bucket
	 * that is down now must not keep the local disk from serving: the
	 * uploader attaches before its first upload. A refusal (credentials,
	 * another writer) is final.
	 */
	r = attach(rm);
	if (r < 0 && transient(r)) {
		zf_warn("the bucket '%s' is unreachable (%s): serving local data, uploads start "
			"once it answers",
			rm->url, strerror(-r));
		rm->need_lease = 1;
		r = 0;
	}
	if (r < 0) {
		if (r != -EBUSY && r != -ESTALE && r != -EEXIST) /* refusals say why */
			zf_err("cannot attach the bucket '%s': %s", rm->url, strerror(-r));
		goto fail;
	}
	evict(rm);
	zf_fs_set_admit(fs, admit, rm);
	*ret_rm = rm;
	return 0;
fail:
	zf_segstore_set_fetch(zf_fs_segstore(fs), NULL, NULL);
	zf_objstore_close(rm->up);
	zf_objstore_close(rm->down);
	if (rm->devfd >= 0)
		close(rm->devfd);
	free(rm->dev_real);
	free(rm->url);
	free(rm);
	return r;
}

int zf_remote_start(struct zf_remote *rm)
{
	int r;

	/* the daemon may have forked since the open: the first round names its pid */
	rm->lease_renew_ns = 0;
	r = -pthread_create(&rm->thread, NULL, uploader_main, rm);
	if (r < 0)
		return r;
	rm->started = 1;
	/* read-ahead is an optimisation: without its thread reads still work */
	if (pthread_create(&rm->pf_thread, NULL, prefetch_main, rm) == 0) {
		pthread_mutex_lock(&rm->lock);
		rm->pf_started = 1;
		pthread_mutex_unlock(&rm->lock);
	}
	return 0;
}

int zf_remote_sync(struct zf_remote *rm)
{
	struct zf_upload_point pt;
	uint64_t start;
	int r;

	r = zf_fs_sync(rm->fs);
	if (r == 0)
		r = zf_fs_upload_point(rm->fs, 0, &pt);
	if (r < 0)
		return r;
	pthread_mutex_lock(&rm->lock);
	if (pt.committed > rm->sync_want)
		rm->sync_want = pt.committed;
	pthread_cond_broadcast(&rm->wake);
	start = now_ns();
	while (rm->sync_done < pt.committed && !rm->stopping && !rm->fenced) {
		pthread_cond_wait(&rm->done, &rm->lock);
		/*
		 * Failed rounds are retried: give up when the store refuses us,
		 * or has taken no object for write_wait (it is down, not flaky).
		 */
		if (rm->sync_err && rm->sync_done < pt.committed &&
		    (!transient(rm->sync_err) ||
		     now_ns() - (rm->progress_ns > start ? rm->progress_ns : start) >=
			     (uint64_t)rm->o.write_wait_ms * 1000000ull)) {
			r = rm->sync_err;
			break;
		}
	}
	if (rm->fenced)
		r = -EPERM;
	pthread_mutex_unlock(&rm->lock);
	return r;
}

void zf_remote_stats(struct zf_remote *rm, struct zf_remote_stats *ret)
{
	double el;

	memset(ret, 0, sizeof(*ret));
	pthread_mutex_lock(&rm->lock);
	el = (now_ns() - rm->t0_ns) / 1e9;
	ret->pending_bytes = rm->unevictable;
	ret->oldest_pending_s = rm->pending_since_ns ? (now_ns() - rm->pending_since_ns) / 1e9 : 0;
	ret->uploaded_bytes = rm->uploaded;
	ret->fetched_bytes = rm->fetched;
	ret->upload_rate = el > 0 ? rm->uploaded / el : 0;
	ret->fetch_rate = el > 0 ? rm->fetched / el : 0;
	ret->fetch_hits = rm->fetch_hits;
	ret->prefetched_bytes = rm->prefetched;
	ret->fetch_misses = rm->fetch_misses;
	ret->local_bytes = rm->local_bytes;
	ret->cache_bytes = rm->o.cache_bytes;
	ret->evictions = rm->evictions;
	ret->stalls = rm->stalls;
	ret->uploaded_seq = rm->up_seq;
	ret->fenced = rm->fenced;
	pthread_mutex_unlock(&rm->lock);
}

int zf_remote_close(struct zf_remote *rm)
{
	int r = 0;

	if (!rm)
		return 0;
	pthread_mutex_lock(&rm->lock);
	rm->stopping = 1;
	pthread_cond_broadcast(&rm->wake);
	pthread_cond_broadcast(&rm->done);
	pthread_cond_broadcast(&rm->pf_wake);
	pthread_mutex_unlock(&rm->lock);
	if (rm->started)
		pthread_join(rm->thread, NULL);
	if (rm->pf_started)
		pthread_join(rm->pf_thread, NULL);
	if (rm->started && !rm->fenced && !rm->o.readonly) {
		/* the thread is gone: everything written so far goes up now */
		r = zf_fs_sync(rm->fs);
		if (r == 0)
			r = upload_round(rm, 1);
		if (r < 0)
			zf_err("final upload to '%s' failed: %s (the next mount resumes it)", rm->url,
			       strerror(-r));
	}
	zf_segstore_set_fetch(zf_fs_segstore(rm->fs), NULL, NULL);
	if (!rm->o.readonly) {
		zf_fs_set_admit(rm->fs, NULL, NULL);
		if (!rm->fenced && !rm->need_lease)
			zf_objstore_delete(rm->up, "lease");
	}
	zf_objstore_close(rm->up);
	zf_objstore_close(rm->down);
	close(rm->cachefd);
	close(rm->metafd);
	close(rm->segfd);
	close(rm->devfd);
	pthread_cond_destroy(&rm->wake);
	pthread_cond_destroy(&rm->done);
	pthread_cond_destroy(&rm->arrived);
	pthread_cond_destroy(&rm->pf_wake);
	pthread_mutex_destroy(&rm->lock);
	pthread_mutex_destroy(&rm->evict_lock);
	for (size_t i = 0; i < rm->nobjs; i++)
		free(rm->objs[i].key);
	free(rm->objs);
	free(rm->dev_real);
	free(rm->url);
	free(rm);
	return r;
}

/* ------------------------------------------------------------------- gc */

/* segments up to max that the table (ids, sorted) no longer references */
struct sweep {
	const uint64_t *ids;
	size_t nids;
	uint64_t max;
	char **keys;
	size_t nkeys;
	uint64_t bytes;
};

static int garbage_seg(const struct sweep *s, uint64_t id)
{
	return id && id <= s->max && !bsearch(&id, s->ids, s->nids, sizeof(*s->ids), zf_cmp_u64);
}

static int sweep_fn(void *ctx, const char *key, uint64_t size)
{
	struct sweep *s = ctx;
	unsigned long long id;
	char name[32];

	if (sscanf(key, "seg/%16llx.zseg", &id) != 1)
		return 0;
	zf_segstore_name(id, name, sizeof(name));
	if (strcmp(key + 4, name) || !garbage_seg(s, id))
		return 0;
	s->keys = zf_realloc(s->keys, (s->nkeys + 1) * sizeof(*s->keys));
	s->keys[s->nkeys++] = zf_strdup(key);
	s->bytes += size;
	return 0;
}

/* fetched super-chunks of garbage segments leave the dev-dir's cache */
static void sweep_cache(struct zf_remote *rm, const struct sweep *s)
{
	struct dirent *e;
	DIR *d;
	int fd = openat(rm->cachefd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(d))) {
		unsigned long long id, off;

		if (sscanf(e->d_name, "%16llx-%16llx.sc", &id, &off) == 2 && garbage_seg(s, id))
			unlinkat(rm->cachefd, e->d_name, 0);
	}
	closedir(d);
}

int zf_remote_gc(struct zf_remote *rm, const struct zf_gc_opts *o, struct zf_gc_report *rep)
{
	struct zf_gc_opts lo = *o;
	struct sweep s = { 0 };
	uint64_t *ids = NULL, seq, up_seq;
	size_t i;
	int r;

	if (rm->o.readonly)
		return -EROFS;
	/* only segments the bucket holds may leave the dev-dir */
	pthread_mutex_lock(&rm->lock);
	lo.keep = 1;
	lo.keep_above = rm->up_seg;
	pthread_mutex_unlock(&rm->lock);
	r = zf_fs_gc(rm->fs, &lo, rep);
	if (r == 0)
		r = zf_fs_seg_refs(rm->fs, &ids, &s.nids, &s.max, &seq);
	if (r < 0)
		return r;
	s.ids = ids;
	if (!o->dry_run) {
		/*
		 * The bucket's log must reach seq before objects go: from then
		 * on a restore replays past every move gc made. A checkpoint
		 * with it lets the log pieces before it go as well.
		 */
		r = zf_fs_checkpoint(rm->fs);
		if (r == 0)
			r = zf_remote_sync(rm);
		pthread_mutex_lock(&rm->lock);
		up_seq = rm->up_seq;
		pthread_mutex_unlock(&rm->lock);
		if (r == 0 && up_seq < seq)
			r = -EAGAIN;
		if (r < 0) {
			zf_err("gc: the bucket '%s' did not take the log (%s): its garbage stays "
			       "until the next run", rm->url, strerror(-r));
			goto out;
		}
		sweep_cache(rm, &s);
	}
	r = zf_objstore_list(rm->up, "seg/", sweep_fn, &s);
	if (r == 0 && s.nkeys && !o->dry_run)
		r = zf_objstore_multi_delete(rm->up, (const char *const *)s.keys, s.nkeys);
	if (r < 0)
		zf_err("gc: cannot delete garbage in the bucket '%s': %s", rm->url, strerror(-r));
	else {
		rep->bucket_objects = s.nkeys;
		rep->bucket_bytes = s.bytes;
	}
out:
	for (i = 0; i < s.nkeys; i++)
		free(s.keys[i]);
	free(s.keys);
	free(ids);
	return r;
}

/* ---------------------------------------------------------------- fsck */

static int list_fn(void *ctx, const char *key, uint64_t size)
{
	struct zf_remote *rm = ctx;

	rm->objs = zf_realloc(rm->objs, (rm->nobjs + 1) * sizeof(*rm->objs));
	rm->objs[rm->nobjs].key = zf_strdup(key);
	rm->objs[rm->nobjs++].size = size;
	return 0;
}

static int cmp_obj(const void *a, const void *b)
{
	return strcmp(((const struct bucket_obj *)a)->key, ((const struct bucket_obj *)b)->key);
}

static int bucket_list(struct zf_remote *rm)
{
	if (rm->listed)
		return rm->listed < 0 ? rm->listed : 0;
	rm->listed = zf_objstore_list(rm->up, "", list_fn, rm);
	if (rm->listed < 0) {
		zf_err("cannot list the bucket '%s': %s", rm->url, strerror(-rm->listed));
		return rm->listed;
	}
	rm->listed = 1;
	if (rm->nobjs)
		qsort(rm->objs, rm->nobjs, sizeof(*rm->objs), cmp_obj);
	return 0;
}

static struct bucket_obj *bucket_find(struct zf_remote *rm, const char *key)
{
	struct bucket_obj k = { .key = (char *)key };

	return rm->nobjs ? bsearch(&k, rm->objs, rm->nobjs, sizeof(k), cmp_obj) : NULL;
}

int zf_remote_seg_size(void *ctx, uint64_t seg, uint64_t *ret_size)
{
	struct zf_remote *rm = ctx;
	struct bucket_obj *o;
	char key[64];
	int r = bucket_list(rm);

	if (r < 0)
		return r;
	snprintf(key, sizeof(key), "seg/%016" PRIx64 ".zseg", seg);
	o = bucket_find(rm, key);
	if (!o)
		return -ENOENT;
	*ret_size = o->size;
	return 0;
}

static void audit_say(struct zf_remote_audit *a, int is_problem, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void audit_say(struct zf_remote_audit *a, int is_problem, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (is_problem) {
		a->errors++;
		if (a->problem)
			a->problem(a->ctx, msg);
	} else {
		a->notes++;
		if (a->note)
			a->note(a->ctx, msg);
	}
}

static void audit_garbage(struct zf_remote_audit *a, const struct bucket_obj *o, const char *why)
{
	a->garbage_objects++;
	a->garbage_bytes += o->size;
	audit_say(a, 0, "garbage: bucket object '%s' (%" PRIu64 " bytes) %s: reclaimable by "
		  "zerofs gc", o->key, o->size, why);
}

/* the superblock: there, and this filesystem's */
static void audit_superblock(struct zf_remote *rm, struct zf_remote_audit *a)
{
	void *local = NULL, *remote = NULL;
	size_t llen = 0, rlen = 0;

	if (zf_read_file(rm->devfd, "superblock", &local, &llen) < 0)
		return; /* the core could open the dev-dir: it is there */
	if (!bucket_find(rm, "superblock")) {
		audit_say(a, 1, "the bucket has no superblock: a restore from it is impossible%s",
			  a->repair ? "" : " (--repair puts it back)");
		if (a->repair && zf_objstore_put(rm->up, "superblock", local, llen) == 0) {
			a->repaired++;
			audit_say(a, 0, "repair: put the dev-dir's superblock into the bucket");
		}
	} else if (zf_objstore_get(rm->up, "superblock", 0, 0, &remote, &rlen) < 0 ||
		   rlen != llen || memcmp(local, remote, llen)) {
		audit_say(a, 1, "the bucket's superblock is not this dev-dir's (another "
			  "filesystem, or damaged)");
	}
	free(local);
	free(remote);
}

static int cmp_pair(const void *a, const void *b)
{
	return cmp_u64(a, b);
}

int zf_remote_audit(struct zf_remote *rm, struct zf_remote_audit *a)
{
	uint64_t ckpt = 0, expect, missing_seg = 0, (*pieces)[2] = NULL;
	size_t npieces = 0, i;
	int r, has_ckpt = 0, fix = 0;

	r = bucket_list(rm);
	if (r < 0)
		return r;
	a->objects = rm->nobjs;
	for (i = 0; i < rm->nobjs; i++)
		a->bytes += rm->objs[i].size;
	if (!rm->nobjs) {
		audit_say(a, 0, "the bucket '%s' holds nothing yet", rm->url);
		return 0;
	}
	audit_superblock(rm, a);
	/* the newest checkpoint and the log pieces are the bucket's metadata */
	for (i = 0; i < rm->nobjs; i++) {
		unsigned long long x;
		int n = 0;

		if (sscanf(rm->objs[i].key, "meta/ckpt.%16llx%n", &x, &n) == 1 &&
		    !rm->objs[i].key[n] && (!has_ckpt || x > ckpt)) {
			ckpt = x;
			has_ckpt = 1;
		}
	}
	for (i = 0; i < rm->nobjs; i++) {
		const struct bucket_obj *o = &rm->objs[i];
		unsigned long long x, y;
		int n = 0;

		if (!strcmp(o->key, "superblock") || !strcmp(o->key, "lease"))
			continue;
		if (sscanf(o->key, "seg/%16llx.zseg%n", &x, &n) == 1 && !o->key[n] && n == 25) {
			if (!bsearch(&(uint64_t){ x }, a->segs, a->nsegs, sizeof(*a->segs), cmp_u64))
				audit_garbage(a, o, "holds no chunk the metadata knows");
		} else if (sscanf(o->key, "meta/ckpt.%16llx%n", &x, &n) == 1 && !o->key[n]) {
			if (x != ckpt)
				audit_garbage(a, o, "is an older checkpoint");
		} else if (sscanf(o->key, "meta/log.%16llx-%16llx%n", &x, &y, &n) == 2 &&
			   !o->key[n] && x <= y) {
			if (has_ckpt && y <= ckpt) {
				audit_garbage(a, o, "is covered by the newest checkpoint");
			} else {
				pieces = zf_realloc(pieces, (npieces + 1) * sizeof(*pieces));
				pieces[npieces][0] = x;
				pieces[npieces++][1] = y;
			}
		} else {
			audit_garbage(a, o, "is not a zerofs object");
		}
	}
	/* the log after the checkpoint must be a chain: a restore stops at a gap */
	if (npieces)
		qsort(pieces, npieces, sizeof(*pieces), cmp_pair);
	expect = ckpt + 1;
	for (i = 0; i < npieces; i++) {
		if (pieces[i][1] < expect)
			continue; /* a re-upload overlapping the chain */
		if (pieces[i][0] > expect) {
			audit_say(a, 1, "the bucket's metadata log has a gap: records %" PRIu64 "-%" PRIu64
				  " are missing (a restore stops before them)", expect,
				  pieces[i][0] - 1);
			break;
		}
		expect = pieces[i][1] + 1;
	}
	if (expect - 1 < rm->up_seq && (has_ckpt || npieces)) {
		audit_say(a, 1, "the bucket's metadata ends at record %" PRIu64 ", but upload.state "
			  "says it holds records up to %" PRIu64 "%s", expect - 1, rm->up_seq,
			  a->repair ? "" : " (--repair has them uploaded again)");
		if (a->repair) {
			rm->up_seq = expect - 1;
			if (rm->up_ckpt > ckpt)
				rm->up_ckpt = ckpt;
			fix = 1;
		}
	}
	free(pieces);
	/* segments the bucket should hold and does not (a local copy may remain) */
	for (i = 0; i < a->nsegs; i++) {
		char key[64];

		if (a->segs[i] > rm->up_seg)
			break; /* not uploaded yet: fine */
		snprintf(key, sizeof(key), "seg/%016" PRIx64 ".zseg", a->segs[i]);
		if (bucket_find(rm, key) || !zf_segstore_has(zf_fs_segstore(rm->fs), a->segs[i]))
			continue; /* present; or gone everywhere: the files are named above */
		audit_say(a, 1, "bucket object '%s' is missing (upload.state says it is there): a "
			  "restore would lose its data%s", key,
			  a->repair ? "" : " (--repair has it uploaded again)");
		if (!missing_seg)
			missing_seg = a->segs[i];
	}
	if (a->repair && missing_seg) {
		rm->up_seg = missing_seg - 1;
		fix = 1;
	}
	if (fix) {
		r = state_save(rm);
		if (r < 0) {
			audit_say(a, 1, "cannot rewrite upload.state: %s", strerror(-r));
		} else {
			a->repaired++;
			audit_say(a, 0, "repair: upload.state lowered: the next mount uploads what the "
				  "bucket lacks");
		}
	}
	if (a->garbage_objects > 1)
		audit_say(a, 0, "garbage: %" PRIu64 " bucket objects, %" PRIu64 " bytes: reclaimable "
			  "by zerofs gc", a->garbage_objects, a->garbage_bytes);
	return 0;
}

/* -------------------------------------------------------------- restore */

struct meta_keys {
	uint64_t ckpt;
	int has_ckpt;
	struct piece {
		uint64_t first, last;
	} *p;
	size_t n;
};

static int meta_fn(void *ctx, const char *key, uint64_t size)
{
	struct meta_keys *m = ctx;
	unsigned long long a, b;
	int len = 0;

	if (sscanf(key, "meta/log.%16llx-%16llx%n", &a, &b, &len) == 2 && key[len] == 0) {
		m->p = zf_realloc(m->p, (m->n + 1) * sizeof(*m->p));
		m->p[m->n].first = a;
		m->p[m->n++].last = b;
	} else if (sscanf(key, "meta/ckpt.%16llx%n", &a, &len) == 1 && key[len] == 0) {
		if (!m->has_ckpt || a > m->ckpt)
			m->ckpt = a;
		m->has_ckpt = 1;
	}
	return 0;
}

static int cmp_piece(const void *a, const void *b)
{
	const struct piece *x = a, *y = b;

	return x->first < y->first ? -1 : x->first > y->first;
}

static int fetch_to(struct zf_objstore *os, const char *key, int dirfd, const char *name)
{
	void *buf;
	size_t len;
	int r;

	r = zf_objstore_get(os, key, 0, 0, &buf, &len);
	if (r < 0) {
		zf_err("cannot fetch '%s' for the restore: %s", key, strerror(-r));
		return r;
	}
	r = zf_publish_file(dirfd, name, buf, len);
	free(buf);
	return r;
}

int zf_remote_restore(const char *url, const struct zf_objstore_opts *so, const char *dev_dir)
{
	struct zf_objstore_opts o = so ? *so : (struct zf_objstore_opts){ 0 };
	struct meta_keys m = { 0 };
	struct zf_objstore *os = NULL;
	uint64_t next, last = 0, top_seg = 0;
	char name[64], key[96], state[128];
	int dirfd = -1, metafd = -1, r, n;
	size_t i;

	r = zf_objstore_open(url, &o, &os);
	if (r < 0) {
		zf_err("cannot open the object store '%s': %s", url, strerror(-r));
		return r;
	}
	if (mkdir(dev_dir, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		goto out;
	}
	dirfd = open(dev_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0 || (mkdirat(dirfd, "meta", 0700) < 0 && errno != EEXIST) ||
	    (mkdirat(dirfd, "seg", 0700) < 0 && errno != EEXIST) ||
	    (metafd = openat(dirfd, "meta", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		r = -errno;
		zf_err("cannot prepare the dev-dir '%s': %s", dev_dir, strerror(-r));
		goto out;
	}
	if (faccessat(dirfd, "superblock", F_OK, 0) == 0) {
		zf_err("'%s' already holds a filesystem: restore only into an empty dev-dir",
		       dev_dir);
		r = -EEXIST;
		goto out;
	}
	r = zf_objstore_list(os, "meta/", meta_fn, &m);
	if (r < 0) {
		zf_err("cannot list the bucket '%s': %s", url, strerror(-r));
		goto out;
	}
	if (!m.has_ckpt && !m.n) {
		zf_err("the bucket '%s' holds no zerofs filesystem", url);
		r = -ENOENT;
		goto out;
	}
	/* newest checkpoint, then the chain of pieces after it */
	if (m.has_ckpt) {
		zf_ckpt_name(m.ckpt, name, sizeof(name));
		snprintf(key, sizeof(key), "meta/%s", name);
		r = fetch_to(os, key, metafd, name);
		if (r < 0)
			goto out;
		last = m.ckpt;
	}
	if (m.n)
		qsort(m.p, m.n, sizeof(*m.p), cmp_piece);
	next = last + 1;
	for (i = 0; i < m.n; i++) {
		if (m.p[i].last < next)
			continue; /* covered by the checkpoint */
		if (m.p[i].first > next) {
			zf_err("the bucket '%s' lacks log records %llu..%llu", url,
			       (unsigned long long)next, (unsigned long long)m.p[i].first - 1);
			r = -EBADMSG;
			goto out;
		}
		if (m.p[i].first < next) {
			zf_err("overlapping log pieces in '%s' at %llu", url,
			       (unsigned long long)m.p[i].first);
			r = -EBADMSG;
			goto out;
		}
		snprintf(key, sizeof(key), "meta/log.%016" PRIx64 "-%016" PRIx64, m.p[i].first,
			 m.p[i].last);
		zf_mlog_name(m.p[i].first, name, sizeof(name));
		r = fetch_to(os, key, metafd, name);
		if (r < 0)
			goto out;
		next = m.p[i].last + 1;
		last = m.p[i].last;
	}
	/* the superblock last: the dev-dir is a filesystem once it has one */
	r = fetch_to(os, "superblock", dirfd, "superblock");
	if (r < 0)
		goto out;
	/*
	 * Everything it names is in the bucket: segments come on demand. The
	 * segment watermark is the highest one the metadata uses: segments
	 * written from now on have higher ids and must go up (a watermark
	 * above them would keep them out of the bucket for good).
	 */
	{
		struct zf_open_opts ro = { .readonly = 1 };
		struct zf_fs *fs;
		uint64_t *ids = NULL;
		size_t nids = 0;

		r = zf_fs_open(dev_dir, &ro, &fs);
		if (r < 0)
			goto out;
		zf_fs_segments_used(fs, &ids, &nids);
		top_seg = nids ? ids[nids - 1] : 0;
		free(ids);
		zf_fs_close(fs);
	}
	n = snprintf(state, sizeof(state), "seq %" PRIu64 "\nseg %" PRIu64 "\nckpt %" PRIu64 "\n",
		     last, top_seg, m.has_ckpt ? m.ckpt : 0);
	r = zf_publish_file(dirfd, "upload.state", state, n);
out:
	free(m.p);
	if (metafd >= 0)
		close(metafd);
	if (dirfd >= 0)
		close(dirfd);
	zf_objstore_close(os);
	return r;
}

int zf_remote_break_lease(const char *url, const struct zf_objstore_opts *so)
{
	struct zf_objstore_opts o = so ? *so : (struct zf_objstore_opts){ 0 };
	struct zf_objstore *os;
	int r;

	r = zf_objstore_open(url, &o, &os);
	if (r < 0)
		return r;
	r = zf_objstore_delete(os, "lease");
	zf_objstore_close(os);
	return r;
}
