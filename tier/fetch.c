/*
 * tier/fetch.c - reads of evicted data: fetch on demand, read-ahead
 *
 * A sealed segment the bucket holds may leave the dev-dir (tier/evict.c).
 * Reads of it then go through the fetch hook: a ranged GET of exactly the
 * super-chunk, kept in <dev-dir>/cache/<seg>-<off>.sc (unsynced: it is
 * verified on every use and re-fetched when it does not verify). One GET per
 * super-chunk at a time; a reader that walks through a segment gets the next
 * super-chunks fetched ahead by the prefetch thread. While the bucket does
 * not answer, a fetch retries until fetch_timeout; once it has been offline
 * that long (tier.c), a fetch tries once: EIO at once, not a timeout per read.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/lock.h"
#include "common/log.h"
#include "common/util.h"
#include "storage/bucket_keys.h"
#include "storage/seg_format.h"
#include "storage/segstore.h"
#include "tier/tier_internal.h"

#define PREFETCH_SCS 4		/* the first read-ahead window, in super-chunks */
#define PF_WINDOW_MAX (32u << 20) /* the window doubles up to this (and budget / 4) */
#define PF_PIECE (4u << 20)	/* bytes per ranged GET of the read-ahead */
#define PF_GETS 4		/* read-ahead GETs in flight */

void zf_tier_cache_name(uint64_t seg, uint64_t off, char *buf, size_t len)
{
	snprintf(buf, len, "%016" PRIx64 "-%016" PRIx64 ".sc", seg, off);
}

int zf_tier_cache_parse(const char *name, uint64_t *ret_seg, uint64_t *ret_off)
{
	unsigned long long seg, off;

	/* also a cache file's .tmp: it goes with the segment */
	if (sscanf(name, "%16llx-%16llx.sc", &seg, &off) != 2)
		return 0;
	*ret_seg = seg;
	if (ret_off)
		*ret_off = off;
	return 1;
}

static void cache_name(const struct zf_sc_loc *loc, char *buf, size_t len)
{
	zf_tier_cache_name(loc->seg, loc->off, buf, len);
}

/* keep a fetched super-chunk in cache/; no fsync: it is verified on every use */
int zf_tier_cache_put(struct zf_remote *rm, const char *name, const void *buf, size_t len)
{
	char tmp[80];
	int fd, r = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	fd = openat(rm->cachefd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	r = zf_write_full(fd, buf, len);
	if (r == 0 && renameat(rm->cachefd, tmp, rm->cachefd, name) < 0)
		r = -errno;
	if (r < 0)
		unlinkat(rm->cachefd, tmp, 0);
	close(fd);
	return r;
}

/*
 * A reader got the super-chunk at loc. When it follows the previous one (in
 * the segment, or the first of the next segment), ask the prefetch thread
 * to keep a window ahead of it fetched: PREFETCH_SCS super-chunks' worth at
 * first, doubling with every ask of a reader that stays sequential, up to
 * PF_WINDOW_MAX and a quarter of the dev-dir budget. An ask goes out as
 * soon as what is fetched ahead is less than the window, so the next GETs
 * are in flight while the reader still reads cached ones.
 */
static void read_ahead(struct zf_remote *rm, const struct zf_sc_loc *loc)
{
	uint64_t end = loc->off + loc->disk_len, cap = PF_WINDOW_MAX, from;
	int seq;

	if (rm->o.local_budget && cap > rm->o.local_budget / 4)
		cap = rm->o.local_budget / 4;
	zf_mutex_lock(&rm->lock);
	seq = (loc->seg == rm->seq_seg && loc->off == rm->seq_end) ||
	      (loc->seg == rm->seq_seg + 1 && loc->off == ZF_SEG_HDR_SIZE);
	rm->seq_seg = loc->seg;
	rm->seq_end = end;
	if (!seq || rm->pf_window < (uint64_t)PREFETCH_SCS * loc->disk_len)
		rm->pf_window = (uint64_t)PREFETCH_SCS * loc->disk_len;
	if (rm->pf_window > cap)
		rm->pf_window = cap;
	/* done past this segment's end already: nothing to ask until the reader is there */
	if (seq && rm->pf_started && !rm->pf_pending && rm->pf_done_seg != loc->seg + 1) {
		from = rm->pf_done_seg == loc->seg && rm->pf_done_end > end ? rm->pf_done_end : end;
		if (from + loc->disk_len <= end + rm->pf_window) {
			rm->pf_seg = loc->seg;
			rm->pf_from = from;
			rm->pf_to = end + rm->pf_window;
			rm->pf_pending = 1;
			pthread_cond_signal(&rm->pf_wake);
			if (rm->pf_window < cap)
				rm->pf_window *= 2;
		}
	}
	zf_mutex_unlock(&rm->lock);
}

/* one ranged GET of the read-ahead, into its place in the window's buffer */
struct pf_piece {
	uint64_t off;		/* in the object */
	size_t len, got;
	int r;
};

struct pf_job {
	struct zf_remote *rm;
	const char *key;
	uint64_t from;		/* the window's first byte */
	uint8_t *buf;
	struct pf_piece *p;
	size_t n, next;		/* next: atomic */
};

static void *pf_worker(void *arg)
{
	struct pf_job *j = arg;
	size_t i;

	while ((i = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED)) < j->n) {
		struct pf_piece *p = &j->p[i];
		void *data = NULL;

		p->r = zf_objstore_get(j->rm->down, j->key, p->off, p->len, &data, &p->got);
		if (p->r == 0) {
			if (p->got > p->len)
				p->got = p->len;
			memcpy(j->buf + (p->off - j->from), data, p->got);
		}
		free(data);
	}
	return NULL;
}

/*
 * Bytes [from, to) of object key, fetched PF_PIECE at a time with up to
 * PF_GETS GETs in flight: a malloc'd buffer and, in *ret_len, how many of
 * its first bytes arrived (the pieces in order up to the first that failed
 * or came short). NULL when none did.
 */
static uint8_t *pf_get(struct zf_remote *rm, const char *key, uint64_t from, uint64_t to,
		       size_t *ret_len)
{
	struct pf_job j = { .rm = rm, .key = key, .from = from };
	size_t i, len = 0;

	j.n = (to - from + PF_PIECE - 1) / PF_PIECE;
	j.p = zf_calloc(j.n, sizeof(*j.p));
	j.buf = zf_malloc(to - from);
	for (i = 0; i < j.n; i++) {
		j.p[i].off = from + (uint64_t)i * PF_PIECE;
		j.p[i].len = to - j.p[i].off < PF_PIECE ? to - j.p[i].off : PF_PIECE;
	}
	zf_run_workers(j.n < PF_GETS ? (unsigned int)j.n : PF_GETS, pf_worker, &j);
	for (i = 0; i < j.n && j.p[i].r == 0; i++) {
		len += j.p[i].got;
		if (j.p[i].got < j.p[i].len)
			break;
	}
	free(j.p);
	if (!len) {
		free(j.buf);
		return NULL;
	}
	*ret_len = len;
	return j.buf;
}

/*
 * Fetch [from, to) of segment seg (cut at the object's end; several GETs
 * at once) and keep every whole super-chunk in it in cache/. Returns the
 * end of the last one kept (from if none; to when the segment has no more,
 * *ret_ended then set).
 */
static uint64_t prefetch_range(struct zf_remote *rm, uint64_t seg, uint64_t from, uint64_t to,
			       int *ret_ended)
{
	struct zf_objstore_stat st;
	char key[ZF_BKEY_MAX], name[64];
	uint64_t size, pos = from;
	void *data = NULL;
	size_t len = 0, i = 0;
	int at_end = 0;

	*ret_ended = 0;
	zf_bkey_seg(seg, key, sizeof(key));
	zf_mutex_lock(&rm->lock);
	size = rm->pf_size_seg == seg ? rm->pf_size : 0;
	zf_mutex_unlock(&rm->lock);
	if (!size) {
		if (zf_objstore_head(rm->down, key, &st) < 0)
			return to; /* the reader's own fetch reports it */
		size = st.size;
		zf_mutex_lock(&rm->lock);
		rm->pf_size_seg = seg;
		rm->pf_size = size;
		zf_mutex_unlock(&rm->lock);
	}
	if (to >= size) {
		to = size;
		*ret_ended = 1;
	}
	if (from + ZF_SC_HDR_SIZE >= to)
		return to; /* the segment's end (its footer) */
	data = pf_get(rm, key, from, to, &len);
	if (!data)
		return to;
	{
		size_t opened;
		int footer;

		if (zf_tier_open_units(rm, seg, from, data, len, &opened, &footer) < 0) {
			free(data);
			return to; /* the reader's own fetch reports it */
		}
		if (opened < len && footer) {
			at_end = 1;
			*ret_ended = 1;
		}
		len = opened;
	}
	while (len - i >= ZF_SC_HDR_SIZE) {
		const uint8_t *p = (const uint8_t *)data + i;
		uint64_t dlen = zf_sc_disk_len(p, len - i);
		struct zf_sc_loc loc = { .seg = seg, .off = pos };

		if (!dlen) {
			at_end = 1; /* the footer: nothing more to fetch here */
			*ret_ended = 1;
			break;
		}
		if (dlen > len - i)
			break; /* cut by the range: the next ask starts with it */
		cache_name(&loc, name, sizeof(name));
		if (faccessat(rm->cachefd, name, F_OK, 0) < 0) {
			zf_tier_cache_put(rm, name, p, dlen);
			zf_mutex_lock(&rm->lock);
			rm->prefetched += dlen;
			rm->fetched += dlen;
			rm->local_bytes += dlen;
			rm->evictable += dlen;
			zf_mutex_unlock(&rm->lock);
		}
		i += dlen;
		pos += dlen;
	}
	free(data);
	/* nothing kept (the first one did not fit): no new ask before the reader gets there */
	return at_end || pos == from ? to : pos;
}

void *zf_tier_prefetch_main(void *arg)
{
	struct zf_remote *rm = arg;

	zf_mutex_lock(&rm->lock);
	while (!rm->stopping) {
		uint64_t seg, from, to, end;
		int ended;

		if (!rm->pf_pending && rm->pins_cold && zf_mono_ns() >= rm->pins_retry_ns) {
			/* pinned data that is not local: fetch it (tier/wset.c) */
			zf_mutex_unlock(&rm->lock);
			zf_tier_warm_pins(rm);
			zf_mutex_lock(&rm->lock);
			continue;
		}
		if (!rm->pf_pending) {
			if (rm->pins_cold) {
				struct timespec ts;

				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_sec++; /* the retry time comes */
				zf_cond_timedwait(&rm->pf_wake, &rm->lock, &ts);
			} else
				zf_cond_wait(&rm->pf_wake, &rm->lock);
			continue;
		}
		seg = rm->pf_seg;
		from = rm->pf_from;
		to = rm->pf_to;
		zf_mutex_unlock(&rm->lock);
		end = prefetch_range(rm, seg, from, to, &ended);
		zf_mutex_lock(&rm->lock);
		rm->pf_done_seg = seg;
		rm->pf_done_end = end;
		if (ended && to > end + ZF_SC_HDR_SIZE && !rm->stopping) {
			/* the rest of the window: a file written in one go goes on in the next one */
			rm->pf_seg = seg + 1;
			rm->pf_from = ZF_SEG_HDR_SIZE;
			rm->pf_to = ZF_SEG_HDR_SIZE + (to - end);
			pthread_cond_broadcast(&rm->arrived);
			zf_mutex_unlock(&rm->lock);
			end = prefetch_range(rm, seg + 1, ZF_SEG_HDR_SIZE,
					     ZF_SEG_HDR_SIZE + (to - end), &ended);
			zf_mutex_lock(&rm->lock);
			if (end > ZF_SEG_HDR_SIZE) {
				rm->pf_done_seg = seg + 1;
				rm->pf_done_end = end;
			}
		}
		rm->pf_pending = 0;
		pthread_cond_broadcast(&rm->arrived); /* readers waiting for it */
		pthread_cond_broadcast(&rm->wake); /* the budget may need eviction */
	}
	zf_mutex_unlock(&rm->lock);
	return NULL;
}

/* is the prefetch thread fetching the range that holds loc? */
static int prefetching_locked(struct zf_remote *rm, const struct zf_sc_loc *loc)
{
	return rm->pf_pending && rm->pf_seg == loc->seg && loc->off >= rm->pf_from &&
	       loc->off + loc->disk_len <= rm->pf_to;
}

/* is the super-chunk at loc being fetched? (rm->lock held) */
static int fetching_locked(struct zf_remote *rm, const struct zf_sc_loc *loc)
{
	struct fetching *f;

	for (f = rm->fetching; f; f = f->next)
		if (f->seg == loc->seg && f->off == loc->off)
			return 1;
	return 0;
}

/* the fetch; ahead: a reader's, which may start the read-ahead */
static int fetch_sc(struct zf_remote *rm, const struct zf_sc_loc *loc, void *buf, int refetch,
		    int ahead)
{
	uint64_t deadline = zf_mono_ns() + (uint64_t)rm->o.fetch_timeout_ms * 1000000ull;
	char name[64], key[ZF_BKEY_MAX], seg[32];
	struct fetching me = { loc->seg, loc->off, NULL }, **pp;
	void *data = NULL;
	size_t len = 0;
	int fd, r, truncated = 0, offline, away, sealed_bad = 0;

	cache_name(loc, name, sizeof(name));
again:
	if (!refetch) {
		fd = openat(rm->cachefd, name, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			ssize_t n = zf_pread_full(fd, buf, loc->disk_len, 0);

			close(fd);
			if (n == (ssize_t)loc->disk_len) {
				zf_mutex_lock(&rm->lock);
				rm->fetch_hits++;
				zf_mutex_unlock(&rm->lock);
				if (ahead)
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
	zf_mutex_lock(&rm->lock);
	if (!refetch && prefetching_locked(rm, loc)) {
		/* the prefetch thread is on its way with it: take its copy */
		while (prefetching_locked(rm, loc) && zf_mono_ns() < deadline)
			zf_cond_wait(&rm->arrived, &rm->lock);
		zf_mutex_unlock(&rm->lock);
		if (zf_mono_ns() < deadline)
			goto again;
		zf_mutex_lock(&rm->lock);
	}
	if (fetching_locked(rm, loc)) {
		while (fetching_locked(rm, loc))
			zf_cond_wait(&rm->arrived, &rm->lock);
		zf_mutex_unlock(&rm->lock);
		refetch = 0; /* what arrived came straight from the store */
		if (zf_mono_ns() < deadline)
			goto again;
		return -EIO; /* the first reader logged why */
	}
	me.next = rm->fetching;
	rm->fetching = &me;
	zf_mutex_unlock(&rm->lock);

	zf_segstore_name(loc->seg, seg, sizeof(seg));
	zf_bkey_seg(loc->seg, key, sizeof(key));
	/*
	 * Away for a fetch_timeout already: one try (with the store's own
	 * retries), not one more fetch_timeout per read while it is away.
	 */
	zf_mutex_lock(&rm->lock);
	offline = rm->offline_since != 0;
	away = offline && time(NULL) - rm->offline_since >= (int64_t)rm->o.fetch_timeout_ms / 1000;
	zf_mutex_unlock(&rm->lock);
	for (;;) {
		struct zf_objstore_stat st;
		int h;

		/* encrypted: the segment's nonce first (its header), like the data */
		r = zf_tier_seg_nonce(rm, loc->seg);
		if (r == 0)
			r = zf_objstore_get(rm->down, key, loc->off, loc->disk_len, &data, &len);
		if (r == 0 || r == -ENOENT || r == -EACCES || r == -EBADMSG ||
		    zf_mono_ns() >= deadline)
			break;
		/*
		 * -EIO is the store failing (5xx after its retries, a cut
		 * body) or a range past the object's end: a truncated object
		 * is an answer, and no retry changes it.
		 */
		if (r == -EIO && (h = zf_objstore_head(rm->down, key, &st)) != -ENOENT && h >= 0 &&
		    st.size < loc->off + loc->disk_len) {
			zf_err("segment '%s' in '%s' is truncated: %" PRIu64 " bytes, the super-chunk "
			       "at %" PRIu64 " ends at %" PRIu64, seg, rm->url, st.size, loc->off,
			       loc->off + loc->disk_len);
			truncated = 1;
			break;
		}
		if (tier_fsck(rm) || away)
			break; /* fsck: the store retried; an outage is reported, not waited out */
		usleep(200000); /* the store is down: try until the deadline */
	}
	if (r == -EBADMSG) {
		/* the header does not open (logged): an answer, damage, like a unit that does not */
		data = zf_calloc(1, loc->disk_len);
		r = 0;
	}
	if (r < 0 && r != -ENOENT && !truncated) {
		zf_tier_note_unreachable(rm, "GET", key, r);
		if (zf_tier_transient(r) && !tier_fsck(rm)) {
			char what[ZF_BKEY_MAX + 8];

			snprintf(what, sizeof(what), "GET '%s'", key);
			zf_tier_offline(rm, r, what);
		}
		if (tier_fsck(rm) && r == -EIO)
			r = -EREMOTEIO; /* fsck: not an answer, nothing is marked damaged */
	}
	if (r < 0) {
		zf_err("cannot fetch segment '%s' at offset %" PRIu64 " from '%s': %s%s", seg,
		       loc->off, rm->url, strerror(-r),
		       offline ? " (the bucket is offline: local data reads, this does not)" : "");
		goto out; /* -ENOENT: not in the bucket; -EIO: truncated there (fsck); else the
			   * store's error */
	}
	if (offline)
		zf_tier_online(rm);
	{
		size_t opened;

		/*
		 * What does not open is damage: the reader gets zeros, which its
		 * own check refuses (no super-chunk magic) and names; never the
		 * bytes that did not authenticate. Nothing is cached.
		 */
		r = zf_tier_open_units(rm, loc->seg, loc->off, data, loc->disk_len, &opened, NULL);
		if (r < 0 && r != -EBADMSG) {
			free(data);
			goto out;
		}
		sealed_bad = r == -EBADMSG || opened != loc->disk_len;
		if (sealed_bad) {
			zf_err("segment object '%s' in '%s': the super-chunk at %" PRIu64 " does not "
			       "open (authentication failed: damaged, or not this segment's)", key,
			       rm->url, loc->off);
			memset(data, 0, loc->disk_len);
		}
		r = 0;
	}
	memcpy(buf, data, loc->disk_len);
	free(data);
	zf_mutex_lock(&rm->lock);
	rm->fetch_misses++;
	rm->fetched += loc->disk_len;
	if (!tier_fsck(rm)) {
		rm->local_bytes += loc->disk_len;
		rm->evictable += loc->disk_len;
	}
	zf_mutex_unlock(&rm->lock);
	/*
	 * Keep it locally; no fsync: it is verified whenever it is used. Not
	 * for fsck (read-only): nothing would evict it, and a check of the
	 * whole filesystem would copy the whole bucket into the dev-dir.
	 */
	if (!tier_fsck(rm) && !sealed_bad) {
		zf_tier_cache_put(rm, name, buf, loc->disk_len);
		if (ahead)
			read_ahead(rm, loc);
	}
	pthread_cond_broadcast(&rm->wake); /* the budget may need eviction */
out:
	zf_mutex_lock(&rm->lock);
	for (pp = &rm->fetching; *pp != &me; pp = &(*pp)->next)
		;
	*pp = me.next;
	pthread_cond_broadcast(&rm->arrived);
	zf_mutex_unlock(&rm->lock);
	return r;
}

int zf_tier_fetch(void *ctx, const struct zf_sc_loc *loc, void *buf, int refetch)
{
	return fetch_sc(ctx, loc, buf, refetch, 1);
}

int zf_tier_fetch_only(struct zf_remote *rm, const struct zf_sc_loc *loc, void *buf)
{
	return fetch_sc(rm, loc, buf, 0, 0);
}

