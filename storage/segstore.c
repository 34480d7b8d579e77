/*
 * storage/segstore.c - log-structured segment store of super-chunks
 *
 * The contract is in segstore.h; the byte layout in seg_format.h and
 * docs/FORMAT.md "Segments" and "Super-chunks".
 *
 * Invariants:
 *  - [0, wend) of the open segment is a valid header followed by whole
 *    super-chunks. An append writes one super-chunk at wend with a single
 *    pwrite; if it fails the file is cut back to wend, so a failed call
 *    leaves the segment exactly as it was (a brand-new segment is removed).
 *  - A sealed segment is never written again. Only resume() reopens a
 *    segment for writing, and only up to its committed end.
 *  - Every byte handed to a reader comes from a super-chunk whose header and
 *    payload checksums matched and whose chunks were all re-hashed against
 *    their ids when it was loaded.
 *  - After a failed fsync/fdatasync (or a failed ftruncate while undoing an
 *    append) the kernel may have dropped dirty pages or left garbage behind:
 *    the writer then refuses every write with that error ("sticky") until
 *    resume() re-establishes the state from the metadata log.
 *
 * Locking. Order: st->wlock -> st->lock -> st->cache_lock; st->dlock is a
 * leaf. Readers never take wlock.
 *  - wlock serialises writers (append, seal, sync, resume) and guards the
 *    writer state: the open segment, next id, and append()'s compressor.
 *    Disk writes run under wlock only, so a reader missing the cache is
 *    never stuck behind a slow append. Compression for the core's write
 *    pipeline runs under no lock at all (zf_sc_packer_build()).
 *  - lock guards the fd cache and the segment counters of the stats.
 *  - cache_lock guards the super-chunk cache. Entries are refcounted: a
 *    reader pins one, copies out without the lock, and unpins it.
 * Readers may run while a writer appends: the range a reader asks for is
 * committed and never rewritten (segstore.h).
 *
 * Not here: what is committed (the metadata log, storage/fs.c), which chunks
 * are live (gc), uploads and fetching evicted segments (later, see the
 * fetch hook in zf_sc_load()).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "common/endian.h"
#include "common/log.h"
#include "common/util.h"
#include "storage/seg_format.h"
#include "storage/segstore.h"

#define ZF_SEG_DEFAULT_LEVEL 3
#define ZF_SEG_DEFAULT_LIMIT (16ull << 20)
#define ZF_SEG_DEFAULT_CACHE (64ull << 20)

/*
 * Read-only fds kept open: with 16 MiB segments 64 fds cover a 1 GiB hot set,
 * and 64 stays far below the usual RLIMIT_NOFILE soft limit of 1024 that the
 * daemon shares with FUSE and the log.
 */
#define ZF_SEG_FD_CACHE 64

/* idle zstd decompression contexts kept (~100 KiB each), about one per
 * FUSE worker thread that can miss the cache at the same time */
#define ZF_SEG_DCTX_POOL 4

/* read-aheads loading at once: one per pipeline worker is plenty */
#define ZF_SEG_LOADING_MAX 8

/* smallest hash table of the super-chunk cache; one bucket per 64 KiB of
 * cache bound above that keeps chains short for super-chunks of >= 64 KiB */
#define ZF_SEG_MIN_BUCKETS 64u
#define ZF_SEG_MAX_BUCKETS (1u << 16)
#define ZF_SEG_BYTES_PER_BUCKET (64u << 10)

/* intrusive doubly-linked list; a head is a link pointing at itself */
struct zf_link {
	struct zf_link *prev, *next;
};

#define zf_container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

static void zf_link_init(struct zf_link *h)
{
	h->prev = h->next = h;
}

static void zf_link_del(struct zf_link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
	l->prev = l->next = l;
}

static void zf_link_add_head(struct zf_link *h, struct zf_link *l)
{
	l->next = h->next;
	l->prev = h;
	h->next->prev = l;
	h->next = l;
}

/* one cached read-only fd of a segment file */
struct zf_segfd {
	struct zf_link lru;	/* in st->fds, most recent first; st->lock */
	uint64_t seg;
	int fd;
	unsigned int refs;	/* users + 1 while in st->fds; st->lock */
	bool cached;		/* in st->fds; st->lock */
};

/* one decompressed, verified super-chunk */
struct zf_scent {
	struct zf_scent *hnext; /* hash chain; st->cache_lock */
	struct zf_link lru;	/* in st->lru, most recent first; cache_lock */
	uint64_t seg, off;
	uint32_t disk_len, raw_len;
	unsigned int refs;	/* readers + 1 while in the table; cache_lock */
	bool cached;		/* in the table; st->cache_lock */
	struct zf_sc_chunk *tab; /* the verified chunk table, for zf_segstore_read_chunk */
	uint32_t *tab_off;	/* raw offset of each table entry */
	uint32_t ntab;
	uint8_t data[];		/* raw_len bytes */
};

static void zf_scent_free(struct zf_scent *e)
{
	if (!e)
		return;
	free(e->tab);
	free(e->tab_off);
	free(e);
}

struct zf_segstore {
	zf_segstore_fetch_fn fetch;	/* evicted segments come from here; set once */
	void *fetch_ctx;
	int dirfd;		/* our dup of the directory */
	uint8_t fsid[16];
	const struct zf_chunker *chunker;
	int level;
	uint64_t seg_limit;

	/* writer state; see "Locking" above */
	pthread_mutex_t wlock;
	struct zf_sc_packer *pk; /* protected by wlock: append()'s compressor */
	struct zf_sc_image wimg; /* protected by wlock: append()'s super-chunk */
	int wfd;		/* protected by wlock: open segment, -1: none */
	uint64_t wseg;		/* protected by wlock: its id */
	uint64_t wend;		/* protected by wlock: end of its last sc */
	uint64_t wnsc;		/* protected by wlock: super-chunks in it */
	uint64_t wraw;		/* protected by wlock: their raw bytes */
	uint64_t next_id;	/* protected by wlock: id of the next new segment */
	bool wdirty;		/* protected by wlock: appended since fdatasync */
	bool dir_dirty;		/* protected by wlock: created since dir fsync */
	int werr;		/* protected by wlock: sticky error, 0 if none */

	pthread_mutex_t lock;
	struct zf_link fds;	/* protected by lock: struct zf_segfd LRU */
	unsigned int nfds;	/* protected by lock */
	uint64_t nsegs;		/* protected by lock: segment files present */
	uint64_t disk_bytes;	/* protected by lock: their bytes */
	uint64_t raw_bytes;	/* protected by lock: appended since open */
	uint64_t stored_bytes;	/* protected by lock: appended since open */

	pthread_mutex_t cache_lock;
	struct zf_scent **buckets; /* protected by cache_lock */
	size_t nbuckets;
	struct zf_link lru;	/* protected by cache_lock */
	uint64_t cache_max;
	uint64_t healed;	/* local super-chunks replaced by the bucket's copy (atomic) */
	int readonly;		/* opts->readonly: no healing */
	uint64_t cache_used;	/* protected by cache_lock: entries in table */
	uint64_t hits, misses;	/* protected by cache_lock */
	struct {
		uint64_t seg, off;	/* seg 0: free slot */
	} loading[ZF_SEG_LOADING_MAX];	/* protected by cache_lock: read-aheads at work */
	pthread_cond_t loaded;	/* with cache_lock: a read-ahead finished */

	pthread_mutex_t dlock;
	ZSTD_DCtx *dpool[ZF_SEG_DCTX_POOL]; /* protected by dlock */
	unsigned int ndpool;	/* protected by dlock */
};

void zf_segstore_name(uint64_t seg, char *buf, size_t len)
{
	snprintf(buf, len, "%016llx" ZF_SEG_SUFFIX, (unsigned long long)seg);
}

/* parse a segment file name; 0 if it is not one (id 0 is never used) */
static uint64_t zf_seg_parse_name(const char *name)
{
	uint64_t id = 0;
	unsigned int i;

	if (strlen(name) != ZF_SEG_NAME_LEN || strcmp(name + 16, ZF_SEG_SUFFIX) != 0)
		return 0;
	for (i = 0; i < 16; i++) {
		char c = name[i];

		if (c >= '0' && c <= '9')
			id = id << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			id = id << 4 | (uint64_t)(c - 'a' + 10);
		else
			return 0;
	}
	return id;
}

/* ---- codecs ---- */

static void zf_seg_hdr_encode(uint8_t *h, uint64_t seg, const uint8_t fsid[16])
{
	memset(h, 0, ZF_SEG_HDR_SIZE);
	memcpy(h, ZF_SEG_MAGIC, ZF_SEG_MAGIC_LEN);
	zf_put32(h + 8, ZF_SEG_VERSION);
	zf_put32(h + 12, 0);
	zf_put64(h + ZF_SEG_HDR_ID_OFF, seg);
	memcpy(h + ZF_SEG_HDR_FSID_OFF, fsid, 16);
	zf_put64(h + ZF_SEG_HDR_CSUM_OFF, XXH3_64bits(h, ZF_SEG_HDR_CSUM_OFF));
}

/* check a segment header; NULL if good, else what is wrong */
static const char *zf_seg_hdr_check(const uint8_t *h, uint64_t seg, const uint8_t fsid[16])
{
	if (memcmp(h, ZF_SEG_MAGIC, ZF_SEG_MAGIC_LEN) != 0)
		return "bad segment magic";
	if (zf_get64(h + ZF_SEG_HDR_CSUM_OFF) != XXH3_64bits(h, ZF_SEG_HDR_CSUM_OFF))
		return "segment header checksum mismatch";
	if (zf_get32(h + 8) != ZF_SEG_VERSION)
		return "unsupported segment version";
	if (zf_get32(h + 12) != 0)
		return "unknown segment flags";
	if (zf_get64(h + ZF_SEG_HDR_ID_OFF) != seg)
		return "segment id does not match its file name";
	if (memcmp(h + ZF_SEG_HDR_FSID_OFF, fsid, 16) != 0)
		return "segment belongs to another filesystem";
	return NULL;
}

/*
 * Is a header that zf_seg_hdr_check refused merely damaged (bytes lost or
 * flipped: its super-chunks may still be read), rather than a whole header
 * of another version, segment or filesystem (the file is not this one)?
 */
static bool zf_seg_hdr_damaged(const uint8_t *h, ssize_t n)
{
	return n < (ssize_t)ZF_SEG_HDR_SIZE || memcmp(h, ZF_SEG_MAGIC, ZF_SEG_MAGIC_LEN) != 0 ||
	       zf_get64(h + ZF_SEG_HDR_CSUM_OFF) != XXH3_64bits(h, ZF_SEG_HDR_CSUM_OFF);
}

static void zf_seg_ftr_encode(uint8_t *f, uint64_t seg, uint64_t nsc, uint64_t end, uint64_t raw)
{
	memset(f, 0, ZF_SEG_FTR_SIZE);
	memcpy(f, ZF_SEG_FTR_MAGIC, ZF_SEG_MAGIC_LEN);
	zf_put32(f + 8, ZF_SEG_FTR_VERSION);
	zf_put32(f + 12, 0);
	zf_put64(f + ZF_SEG_FTR_ID_OFF, seg);
	zf_put64(f + ZF_SEG_FTR_NSC_OFF, nsc);
	zf_put64(f + ZF_SEG_FTR_END_OFF, end);
	zf_put64(f + ZF_SEG_FTR_RAW_OFF, raw);
	zf_put64(f + 48, 0);
	zf_put64(f + ZF_SEG_FTR_CSUM_OFF, XXH3_64bits(f, ZF_SEG_FTR_CSUM_OFF));
}

static void zf_sc_hdr_decode(const uint8_t *p, struct zf_sc_hdr *h)
{
	h->version = zf_get16(p + 4);
	h->flags = zf_get16(p + ZF_SC_FLAGS_OFF);
	h->nchunks = zf_get32(p + ZF_SC_NCHUNKS_OFF);
	h->raw_len = zf_get32(p + ZF_SC_RAW_LEN_OFF);
	h->stored_len = zf_get32(p + ZF_SC_STORED_LEN_OFF);
	h->seg = zf_get64(p + ZF_SC_SEG_OFF);
	h->payload_csum = zf_get64(p + ZF_SC_PCSUM_OFF);
	h->hdr_csum = zf_get64(p + ZF_SC_HCSUM_OFF);
}

/* XXH3-64 of header bytes 0..39 followed by the chunk table at p + 48 */
static uint64_t zf_sc_hdr_csum(const uint8_t *p, uint32_t nchunks)
{
	XXH3_state_t *s = XXH3_createState();
	uint64_t h;

	if (!s) {
		zf_err("out of memory allocating a checksum state");
		abort();
	}
	XXH3_64bits_reset(s);
	XXH3_64bits_update(s, p, ZF_SC_HCSUM_COVER);
	XXH3_64bits_update(s, p + ZF_SC_HDR_SIZE, (size_t)nchunks * ZF_SC_ENT_SIZE);
	h = XXH3_64bits_digest(s);
	XXH3_freeState(s);
	return h;
}

/* 0 if the segment file is in the dev-dir, -ENOENT if not (evicted) */
static int zf_segfd_exists(struct zf_segstore *st, uint64_t seg)
{
	char name[32];

	zf_segstore_name(seg, name, sizeof(name));
	return faccessat(st->dirfd, name, F_OK, 0) == 0 ? 0 : -errno;
}

/* why the last read or verification of this thread failed (fsck names it) */
static __thread char last_why[256];

/* ---- fd cache ---- */

static void zf_segfd_unref_locked(struct zf_segfd *f)
{
	if (--f->refs > 0)
		return;
	close(f->fd);
	free(f);
}

static void zf_segfd_put(struct zf_segstore *st, struct zf_segfd *f)
{
	pthread_mutex_lock(&st->lock);
	zf_segfd_unref_locked(f);
	pthread_mutex_unlock(&st->lock);
}

static void zf_segfd_uncache_locked(struct zf_segstore *st, struct zf_segfd *f)
{
	zf_link_del(&f->lru);
	f->cached = false;
	st->nfds--;
	zf_segfd_unref_locked(f);
}

/* close every cached fd (users keep theirs until they put it) */
static void zf_segfd_flush(struct zf_segstore *st)
{
	pthread_mutex_lock(&st->lock);
	while (st->fds.next != &st->fds)
		zf_segfd_uncache_locked(st, zf_container_of(st->fds.next, struct zf_segfd, lru));
	pthread_mutex_unlock(&st->lock);
}

static struct zf_segfd *zf_segfd_lookup_locked(struct zf_segstore *st, uint64_t seg)
{
	struct zf_link *l;

	for (l = st->fds.next; l != &st->fds; l = l->next) {
		struct zf_segfd *f = zf_container_of(l, struct zf_segfd, lru);

		if (f->seg == seg) {
			zf_link_del(&f->lru);
			zf_link_add_head(&st->fds, &f->lru);
			f->refs++;
			return f;
		}
	}
	return NULL;
}

/*
 * Get a read-only fd of segment seg, opening it (and checking its header)
 * when it is not cached. Returns 0, -ENOENT when the file is missing
 * (not logged: the caller knows the context), -EIO for a bad header (logged)
 * or -errno (logged).
 */
static int zf_segfd_get(struct zf_segstore *st, uint64_t seg, struct zf_segfd **ret_f)
{
	char name[32];
	uint8_t h[ZF_SEG_HDR_SIZE];
	struct zf_segfd *f, *old;
	const char *why;
	ssize_t n;
	int fd, r;

	pthread_mutex_lock(&st->lock);
	f = zf_segfd_lookup_locked(st, seg);
	pthread_mutex_unlock(&st->lock);
	if (f) {
		*ret_f = f;
		return 0;
	}

	/* open outside the lock: other readers keep using cached fds */
	zf_segstore_name(seg, name, sizeof(name));
	fd = openat(st->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		if (r != -ENOENT)
			zf_err("cannot open segment '%s': %s", name, strerror(-r));
		return r;
	}
	n = zf_pread_full(fd, h, sizeof(h), 0);
	if (n < 0) {
		r = (int)n;
		zf_err("cannot read segment '%s': %s", name, strerror(-r));
		goto out_close;
	}
	why = n < (ssize_t)sizeof(h) ? "truncated segment header"
				     : zf_seg_hdr_check(h, seg, st->fsid);
	/*
	 * Every super-chunk verifies on its own (its header names the
	 * segment, its chunks are keyed hashes): a damaged segment header
	 * costs nothing but this line (fsck reports it, --repair rewrites it).
	 */
	if (why && !zf_seg_hdr_damaged(h, n)) {
		snprintf(last_why, sizeof(last_why), "%s", why);
		zf_err("cannot read segment '%s': %s", name, why);
		r = -EIO;
		goto out_close;
	}
	if (why)
		zf_warn("segment '%s': %s; its super-chunks are verified one by one", name, why);

	f = zf_calloc(1, sizeof(*f));
	f->seg = seg;
	f->fd = fd;
	f->refs = 2; /* the cache's and the caller's */
	f->cached = true;
	pthread_mutex_lock(&st->lock);
	old = zf_segfd_lookup_locked(st, seg);
	if (old) {
		/* another reader opened it meanwhile: use theirs */
		pthread_mutex_unlock(&st->lock);
		free(f);
		close(fd);
		*ret_f = old;
		return 0;
	}
	zf_link_add_head(&st->fds, &f->lru);
	if (++st->nfds > ZF_SEG_FD_CACHE)
		zf_segfd_uncache_locked(st, zf_container_of(st->fds.prev, struct zf_segfd, lru));
	pthread_mutex_unlock(&st->lock);
	*ret_f = f;
	return 0;

out_close:
	close(fd);
	return r;
}

/* ---- super-chunk cache ---- */

static size_t zf_cache_bucket(const struct zf_segstore *st, uint64_t seg, uint64_t off)
{
	/* a multiplicative mix: offsets are not random, their low bits repeat */
	uint64_t h = (seg * 0x9e3779b97f4a7c15ull) ^ (off * 0xc2b2ae3d27d4eb4full);

	return (size_t)((h ^ (h >> 29)) & (st->nbuckets - 1));
}

static uint64_t zf_scent_size(const struct zf_scent *e)
{
	return sizeof(*e) + e->raw_len + (uint64_t)e->ntab * (sizeof(*e->tab) + 4);
}

static void zf_scent_unref_locked(struct zf_scent *e)
{
	if (--e->refs == 0)
		zf_scent_free(e);
}

static void zf_cache_remove_locked(struct zf_segstore *st, struct zf_scent *e)
{
	struct zf_scent **pp = &st->buckets[zf_cache_bucket(st, e->seg, e->off)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	zf_link_del(&e->lru);
	e->cached = false;
	st->cache_used -= zf_scent_size(e);
	zf_scent_unref_locked(e);
}

static struct zf_scent *zf_cache_find_locked(struct zf_segstore *st, uint64_t seg, uint64_t off)
{
	struct zf_scent *e;

	for (e = st->buckets[zf_cache_bucket(st, seg, off)]; e; e = e->hnext)
		if (e->seg == seg && e->off == off)
			break;
	if (e) {
		e->refs++;
		zf_link_del(&e->lru);
		zf_link_add_head(&st->lru, &e->lru);
	}
	return e;
}

/* is (seg, off) being loaded by another thread? (cache_lock held) */
static bool zf_cache_loading_locked(struct zf_segstore *st, uint64_t seg, uint64_t off)
{
	unsigned int i;

	for (i = 0; i < ZF_SEG_LOADING_MAX; i++)
		if (st->loading[i].seg == seg && st->loading[i].off == off)
			return true;
	return false;
}

/*
 * A pinned entry for (seg, off), or NULL; counts the hit or miss. A
 * super-chunk another thread is loading (a read-ahead worker, say) is waited
 * for instead of being decompressed twice.
 */
static struct zf_scent *zf_cache_get(struct zf_segstore *st, uint64_t seg, uint64_t off)
{
	struct zf_scent *e;

	pthread_mutex_lock(&st->cache_lock);
	/* (never while holding the core lock: that load may be a GET) */
	while (!(e = zf_cache_find_locked(st, seg, off)) && !zf_nonet_locks &&
	       zf_cache_loading_locked(st, seg, off))
		pthread_cond_wait(&st->loaded, &st->cache_lock);
	if (e)
		st->hits++;
	else
		st->misses++;
	pthread_mutex_unlock(&st->cache_lock);
	return e;
}

/*
 * Offer a freshly loaded entry (pinned once by the caller) to the cache.
 * Least recently used entries are evicted until it fits; an entry larger
 * than the whole bound is not cached. If another reader loaded the same
 * super-chunk meanwhile, theirs stays and ours is only used by the caller.
 */
static void zf_cache_insert(struct zf_segstore *st, struct zf_scent *e)
{
	size_t b = zf_cache_bucket(st, e->seg, e->off);
	uint64_t size = zf_scent_size(e);
	struct zf_scent *o;

	if (size > st->cache_max)
		return;
	pthread_mutex_lock(&st->cache_lock);
	for (o = st->buckets[b]; o; o = o->hnext)
		if (o->seg == e->seg && o->off == e->off)
			goto out_unlock;
	while (st->cache_used + size > st->cache_max)
		zf_cache_remove_locked(st, zf_container_of(st->lru.prev, struct zf_scent, lru));
	e->hnext = st->buckets[b];
	st->buckets[b] = e;
	zf_link_add_head(&st->lru, &e->lru);
	e->cached = true;
	e->refs++;
	st->cache_used += size;
out_unlock:
	pthread_mutex_unlock(&st->cache_lock);
}

static void zf_cache_put(struct zf_segstore *st, struct zf_scent *e)
{
	pthread_mutex_lock(&st->cache_lock);
	zf_scent_unref_locked(e);
	pthread_mutex_unlock(&st->cache_lock);
}

static void zf_cache_flush(struct zf_segstore *st)
{
	pthread_mutex_lock(&st->cache_lock);
	while (st->lru.next != &st->lru)
		zf_cache_remove_locked(st, zf_container_of(st->lru.next, struct zf_scent, lru));
	pthread_mutex_unlock(&st->cache_lock);
}

void zf_segstore_cache_drop(struct zf_segstore *st)
{
	zf_cache_flush(st);
	/* also forget open fds, so a replaced or removed file is noticed */
	zf_segfd_flush(st);
}

/* ---- zstd contexts ---- */

static ZSTD_DCtx *zf_dctx_get(struct zf_segstore *st)
{
	ZSTD_DCtx *d = NULL;

	pthread_mutex_lock(&st->dlock);
	if (st->ndpool > 0)
		d = st->dpool[--st->ndpool];
	pthread_mutex_unlock(&st->dlock);
	if (!d) {
		d = ZSTD_createDCtx();
		if (!d) {
			zf_err("out of memory creating a zstd decompression context");
			abort();
		}
	}
	return d;
}

static void zf_dctx_put(struct zf_segstore *st, ZSTD_DCtx *d)
{
	pthread_mutex_lock(&st->dlock);
	if (st->ndpool < ZF_SEG_DCTX_POOL) {
		st->dpool[st->ndpool++] = d;
		d = NULL;
	}
	pthread_mutex_unlock(&st->dlock);
	ZSTD_freeDCtx(d);
}

/* ---- reading and verifying one super-chunk ---- */

/* log "cannot read segment '<file>' at offset <off>: <what>"; returns -EIO */
static int zf_sc_bad(const struct zf_sc_loc *loc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

const char *zf_segstore_last_error(void)
{
	return last_why[0] ? last_why : "unreadable";
}

static int zf_sc_bad(const struct zf_sc_loc *loc, const char *fmt, ...)
{
	char name[32], what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(last_why, sizeof(last_why), "%s", what);
	zf_segstore_name(loc->seg, name, sizeof(name));
	zf_err("cannot read segment '%s' at offset %" PRIu64 ": %s", name, loc->off, what);
	return -EIO;
}

/*
 * Read the super-chunk at loc and verify all of it: header checksum (which
 * covers the chunk table), version, flags, segment id, lengths against loc,
 * payload checksum, zstd frame size, and every chunk's id. On success
 * *ret_e is a new entry pinned once (not in the cache) and, if ret_chunks,
 * *ret_chunks and *ret_n the decoded chunk table (malloc'd).
 */
static int zf_sc_load_once(struct zf_segstore *st, const struct zf_sc_loc *loc,
			   struct zf_scent **ret_e, struct zf_sc_chunk **ret_chunks,
			   uint32_t *ret_n, int refetch, int *ret_fetched)
{
	int fetched = 0;
	struct zf_sc_chunk *chunks = NULL;
	struct zf_scent *e = NULL;
	struct zf_segfd *f = NULL;
	struct zf_sc_hdr h;
	const uint8_t *table, *payload;
	uint8_t *buf;
	uint32_t i, pos;
	ssize_t n;
	int r;

	if (loc->disk_len < ZF_SC_HDR_SIZE + ZF_SC_ENT_SIZE || loc->disk_len > ZF_SC_DISK_MAX ||
	    loc->raw_len == 0 || loc->raw_len > ZF_SC_RAW_MAX)
		return zf_sc_bad(loc, "implausible location (disk length %" PRIu32
				 ", raw length %" PRIu32 ")", loc->disk_len, loc->raw_len);

	last_why[0] = 0;
	/* refetch > 1: the bucket's copy only, whatever the dev-dir holds (fsck) */
	r = refetch > 1 ? -ENOENT : zf_segfd_get(st, loc->seg, &f);
	if (r == -ENOENT && st->fetch && zf_nonet_locks && refetch <= 1) {
		/* the caller may not wait for the network (segstore.h) */
		snprintf(last_why, sizeof(last_why), "not local, and the caller may not wait for "
			 "the bucket");
		return -EIO;
	}
	if (r == -ENOENT && st->fetch) {
		/*
		 * An evicted segment: the object-storage tier fetches exactly
		 * [loc->off, loc->off + disk_len), possibly from its local
		 * cache of fetched super-chunks; it is verified below like a
		 * local read. No storage lock is held here.
		 */
		buf = zf_malloc(loc->disk_len);
		r = st->fetch(st->fetch_ctx, loc, buf, refetch);
		if (r < 0) {
			free(buf);
			snprintf(last_why, sizeof(last_why), "cannot fetch it from the bucket: %s",
				 strerror(-r));
			return r; /* logged by the fetcher */
		}
		fetched = 1;
		goto verify;
	}
	if (r == -ENOENT) {
		char name[32];

		zf_segstore_name(loc->seg, name, sizeof(name));
		zf_warn("cannot read segment '%s' at offset %" PRIu64 ": no such file", name,
			loc->off);
		snprintf(last_why, sizeof(last_why), "segment file missing");
		return r;
	}
	if (r < 0)
		return r; /* -EIO for a bad segment header, else -errno; logged */

	buf = zf_malloc(loc->disk_len);
	n = zf_pread_full(f->fd, buf, loc->disk_len, (off_t)loc->off);
	zf_segfd_put(st, f);
	if (n < 0) {
		r = zf_sc_bad(loc, "%s", strerror((int)-n));
		goto out_free;
	}
	if ((uint64_t)n < loc->disk_len) {
		r = zf_sc_bad(loc, "truncated super-chunk (%zd of %" PRIu32 " bytes)", n,
			      loc->disk_len);
		goto out_free;
	}
verify:
	if (zf_get32(buf) != ZF_SC_MAGIC) {
		r = zf_sc_bad(loc, "bad super-chunk magic");
		goto out_free;
	}
	zf_sc_hdr_decode(buf, &h);
	/* bound n by the bytes we have before hashing its table */
	if (h.nchunks == 0 || h.nchunks > ZF_SC_CHUNKS_MAX ||
	    ZF_SC_HDR_SIZE + (uint64_t)h.nchunks * ZF_SC_ENT_SIZE > loc->disk_len) {
		r = zf_sc_bad(loc, "bad chunk count %" PRIu32, h.nchunks);
		goto out_free;
	}
	if (zf_sc_hdr_csum(buf, h.nchunks) != h.hdr_csum) {
		r = zf_sc_bad(loc, "super-chunk header checksum mismatch");
		goto out_free;
	}
	if (h.version != ZF_SC_VERSION) {
		r = zf_sc_bad(loc, "unsupported super-chunk version %u", h.version);
		goto out_free;
	}
	if (h.flags & ZF_SC_F_ENCRYPTED) {
		r = zf_sc_bad(loc, "encrypted super-chunk, not supported by this version");
		goto out_free;
	}
	if (h.flags & ~ZF_SC_F_KNOWN) {
		r = zf_sc_bad(loc, "unknown super-chunk flags 0x%x", h.flags);
		goto out_free;
	}
	if (h.seg != loc->seg) {
		r = zf_sc_bad(loc, "super-chunk belongs to segment %016" PRIx64, h.seg);
		goto out_free;
	}
	if (h.raw_len != loc->raw_len ||
	    ZF_SC_HDR_SIZE + (uint64_t)h.nchunks * ZF_SC_ENT_SIZE + h.stored_len != loc->disk_len) {
		r = zf_sc_bad(loc, "super-chunk lengths (raw %" PRIu32 ", stored %" PRIu32
			      ", %" PRIu32 " chunks) do not match its location",
			      h.raw_len, h.stored_len, h.nchunks);
		goto out_free;
	}
	table = buf + ZF_SC_HDR_SIZE;
	payload = table + (size_t)h.nchunks * ZF_SC_ENT_SIZE;
	if (XXH3_64bits(payload, h.stored_len) != h.payload_csum) {
		r = zf_sc_bad(loc, "super-chunk payload checksum mismatch");
		goto out_free;
	}

	e = zf_malloc(sizeof(*e) + h.raw_len);
	memset(e, 0, sizeof(*e));
	e->seg = loc->seg;
	e->off = loc->off;
	e->disk_len = loc->disk_len;
	e->raw_len = h.raw_len;
	e->refs = 1;
	zf_link_init(&e->lru);

	if (h.flags & ZF_SC_F_ZSTD) {
		unsigned long long fcs = ZSTD_getFrameContentSize(payload, h.stored_len);
		size_t csize = ZSTD_findFrameCompressedSize(payload, h.stored_len);
		ZSTD_DCtx *d;
		size_t got;

		if (fcs != h.raw_len || ZSTD_isError(csize) || csize != h.stored_len) {
			r = zf_sc_bad(loc, "zstd frame does not match the super-chunk lengths");
			goto out_free;
		}
		d = zf_dctx_get(st);
		got = ZSTD_decompressDCtx(d, e->data, h.raw_len, payload, h.stored_len);
		zf_dctx_put(st, d);
		if (ZSTD_isError(got)) {
			r = zf_sc_bad(loc, "zstd: %s", ZSTD_getErrorName(got));
			goto out_free;
		}
		if (got != h.raw_len) {
			r = zf_sc_bad(loc, "decompressed %zu bytes, expected %" PRIu32, got,
				      h.raw_len);
			goto out_free;
		}
	} else {
		if (h.stored_len != h.raw_len) {
			r = zf_sc_bad(loc, "raw super-chunk with stored length %" PRIu32
				      " != raw length %" PRIu32, h.stored_len, h.raw_len);
			goto out_free;
		}
		memcpy(e->data, payload, h.raw_len);
	}

	/* re-hash every chunk: this is what makes served bytes trustworthy */
	if (ret_chunks)
		chunks = zf_malloc((size_t)h.nchunks * sizeof(*chunks));
	for (i = 0, pos = 0; i < h.nchunks; i++) {
		const uint8_t *ent = table + (size_t)i * ZF_SC_ENT_SIZE;
		uint32_t len = zf_get32(ent + ZF_SC_ENT_LEN_OFF);
		struct zf_chunk_id id;

		if (len == 0 || len > h.raw_len - pos) {
			r = zf_sc_bad(loc, "chunk %" PRIu32 " length %" PRIu32
				      " overruns the super-chunk", i, len);
			goto out_free;
		}
		zf_chunker_id(st->chunker, e->data + pos, len, &id);
		if (memcmp(id.b, ent, ZF_CHUNK_ID_LEN) != 0) {
			r = zf_sc_bad(loc, "chunk %" PRIu32 " (raw offset %" PRIu32
				      ") does not match its id (hash mismatch)", i, pos);
			goto out_free;
		}
		if (chunks) {
			memcpy(chunks[i].id.b, ent, ZF_CHUNK_ID_LEN);
			chunks[i].len = len;
		}
		pos += len;
	}
	if (pos != h.raw_len) {
		r = zf_sc_bad(loc, "chunk lengths add up to %" PRIu32 ", raw length is %" PRIu32,
			      pos, h.raw_len);
		goto out_free;
	}

	free(buf);
	*ret_e = e;
	if (ret_chunks) {
		*ret_chunks = chunks;
		*ret_n = h.nchunks;
	}
	*ret_fetched = fetched;
	return 0;

out_free:
	*ret_fetched = fetched; /* fetched bytes that did not verify */
	free(chunks);
	free(e);
	free(buf);
	return r;
}

static int zf_seg_patch(struct zf_segstore *st, uint64_t seg, uint64_t off, const void *buf,
			size_t len);

/* the bucket's verified copy of loc replaces the damaged local bytes */
static void zf_sc_heal(struct zf_segstore *st, const struct zf_sc_loc *loc, const char *why)
{
	uint8_t *buf = zf_malloc(loc->disk_len);
	char name[32];
	int r;

	zf_segstore_name(loc->seg, name, sizeof(name));
	r = st->fetch(st->fetch_ctx, loc, buf, 2);
	if (r == 0)
		r = zf_seg_patch(st, loc->seg, loc->off, buf, loc->disk_len);
	free(buf);
	if (r < 0) {
		zf_err("segment '%s' offset %" PRIu64 ": %s; served the bucket's copy, but cannot "
		       "replace the local one: %s", name, loc->off, why, strerror(-r));
		return;
	}
	__atomic_add_fetch(&st->healed, 1, __ATOMIC_RELAXED);
	zf_warn("segment '%s' offset %" PRIu64 ": %s; replaced by the bucket's copy", name,
		loc->off, why);
}

/*
 * Load and verify the super-chunk at loc. Fetched bytes that fail
 * verification may be a damaged local copy of the fetch cache: fetch once
 * more straight from the object store before giving up.
 */
static int zf_sc_load(struct zf_segstore *st, const struct zf_sc_loc *loc,
		      struct zf_scent **ret_e, struct zf_sc_chunk **ret_chunks, uint32_t *ret_n)
{
	int fetched = 0, local, r;
	char why[sizeof(last_why)];

	r = zf_sc_load_once(st, loc, ret_e, ret_chunks, ret_n, 0, &fetched);
	if (r != -EIO || !st->fetch || zf_nonet_locks)
		return r;
	if (st->readonly && zf_segfd_exists(st, loc->seg) == 0)
		return r; /* fsck: it reports the damage, --repair decides */
	local = zf_segfd_exists(st, loc->seg) == 0;
	/* fetched bytes that did not verify (a damaged copy in the fetch
	 * cache): once more from the bucket itself; a fetch that failed (an
	 * outage, a timeout) is not tried again: that doubled the wait */
	if (!local)
		return fetched ? zf_sc_load_once(st, loc, ret_e, ret_chunks, ret_n, 1, &fetched)
			       : r;
	/*
	 * A local copy that does not verify: the bucket's copy (if it has
	 * one) is verified the same way, served, and written over the
	 * damaged bytes, which are exactly the super-chunk's range.
	 */
	snprintf(why, sizeof(why), "%s", last_why);
	if (zf_sc_load_once(st, loc, ret_e, ret_chunks, ret_n, 2, &fetched) < 0) {
		snprintf(last_why, sizeof(last_why), "%s", why);
		return r;
	}
	zf_sc_heal(st, loc, why);
	return 0;
}

/*
 * The cached, verified super-chunk at loc (a reference the caller puts).
 * The read-ahead that claimed loc (ahead) does not wait for itself.
 */
static int zf_cache_load_as(struct zf_segstore *st, const struct zf_sc_loc *loc,
			    struct zf_scent **ret_e, bool ahead)
{
	struct zf_scent *e;
	uint32_t i, off = 0;
	int r;

	if (ahead) {
		pthread_mutex_lock(&st->cache_lock);
		e = zf_cache_find_locked(st, loc->seg, loc->off);
		pthread_mutex_unlock(&st->cache_lock);
	} else {
		e = zf_cache_get(st, loc->seg, loc->off);
	}
	if (e && (e->disk_len != loc->disk_len || e->raw_len != loc->raw_len)) {
		/* the cached super-chunk was verified: the location is wrong */
		zf_cache_put(st, e);
		return zf_sc_bad(loc, "location does not match the super-chunk (disk length %"
				 PRIu32 ", raw length %" PRIu32 ")", e->disk_len, e->raw_len);
	}
	if (!e) {
		struct zf_sc_chunk *tab;
		uint32_t ntab;

		r = zf_sc_load(st, loc, &e, &tab, &ntab);
		if (r < 0)
			return r;
		e->tab = tab;
		e->ntab = ntab;
		e->tab_off = zf_malloc((e->ntab ? e->ntab : 1) * sizeof(uint32_t));
		for (i = 0; i < e->ntab; i++) {
			e->tab_off[i] = off;
			off += e->tab[i].len;
		}
		zf_cache_insert(st, e);
	}
	*ret_e = e;
	return 0;
}

static int zf_cache_load(struct zf_segstore *st, const struct zf_sc_loc *loc,
			 struct zf_scent **ret_e)
{
	return zf_cache_load_as(st, loc, ret_e, false);
}

int zf_segstore_cached(struct zf_segstore *st, const struct zf_sc_loc *loc)
{
	struct zf_scent *e;

	pthread_mutex_lock(&st->cache_lock);
	for (e = st->buckets[zf_cache_bucket(st, loc->seg, loc->off)]; e; e = e->hnext)
		if (e->seg == loc->seg && e->off == loc->off)
			break;
	pthread_mutex_unlock(&st->cache_lock);
	return e != NULL;
}

int zf_segstore_prefetch(struct zf_segstore *st, const struct zf_sc_loc *loc, int flags)
{
	bool wait = flags & ZF_PREFETCH_WAIT;
	struct zf_scent *e;
	unsigned int slot;
	int r;

	if (!loc || loc->seg == 0)
		return -EINVAL;
	if ((flags & ZF_PREFETCH_LOCAL) && zf_segfd_exists(st, loc->seg) == -ENOENT)
		return 0; /* evicted: the object-storage tier reads ahead from the bucket */
	pthread_mutex_lock(&st->cache_lock);
	/* wait: for a load another thread has under way, not only to start one */
	while (!(e = zf_cache_find_locked(st, loc->seg, loc->off)) && wait &&
	       zf_cache_loading_locked(st, loc->seg, loc->off))
		pthread_cond_wait(&st->loaded, &st->cache_lock);
	if (e || zf_cache_loading_locked(st, loc->seg, loc->off)) {
		if (e)
			zf_scent_unref_locked(e);
		pthread_mutex_unlock(&st->cache_lock);
		return 0;
	}
	for (slot = 0; slot < ZF_SEG_LOADING_MAX && st->loading[slot].seg; slot++)
		;
	if (slot == ZF_SEG_LOADING_MAX) { /* enough in progress already */
		pthread_mutex_unlock(&st->cache_lock);
		return 0;
	}
	st->loading[slot].seg = loc->seg;
	st->loading[slot].off = loc->off;
	pthread_mutex_unlock(&st->cache_lock);

	/* a local-only read-ahead never waits for the bucket (the segment
	 * may be evicted since it was checked): as if the core lock were held */
	if (flags & ZF_PREFETCH_LOCAL)
		zf_nonet_locks++;
	r = zf_cache_load_as(st, loc, &e, true);
	if (flags & ZF_PREFETCH_LOCAL)
		zf_nonet_locks--;
	if (r == 0)
		zf_cache_put(st, e);

	pthread_mutex_lock(&st->cache_lock);
	st->loading[slot].seg = 0;
	pthread_cond_broadcast(&st->loaded);
	pthread_mutex_unlock(&st->cache_lock);
	return r < 0 ? r : 1;
}

int zf_segstore_read(struct zf_segstore *st, const struct zf_sc_loc *loc, uint32_t raw_off,
		     uint32_t len, void *dst)
{
	struct zf_scent *e;
	int r;

	if (!loc || loc->seg == 0 || raw_off > loc->raw_len || len > loc->raw_len - raw_off)
		return -EINVAL;
	if (len == 0)
		return 0;
	r = zf_cache_load(st, loc, &e);
	if (r < 0)
		return r;
	memcpy(dst, e->data + raw_off, len);
	zf_cache_put(st, e);
	return 0;
}

/*
 * A super-chunk stored raw (disk_len > raw_len: incompressible data) holds
 * each chunk's bytes verbatim at the end of the record: read just the chunk
 * and prove it by its keyed hash, instead of loading and caching megabytes
 * for a 4 KiB random read. Any doubt (compressed after all, damage, a short
 * read) returns non-zero and the caller takes the full, logging path.
 */
static int zf_read_raw_chunk(struct zf_segstore *st, const struct zf_sc_loc *loc,
			     const struct zf_sc_chunk *want, uint32_t chunk_off, uint32_t coff,
			     uint32_t len, void *dst)
{
	struct zf_chunk_id id;
	struct zf_segfd *f;
	uint8_t *buf;
	ssize_t n;
	int r;

	if (loc->disk_len <= loc->raw_len)
		return -EAGAIN;
	r = zf_segfd_get(st, loc->seg, &f);
	if (r < 0)
		return r;
	buf = zf_malloc(want->len);
	n = zf_pread_full(f->fd, buf, want->len,
			  loc->off + loc->disk_len - loc->raw_len + chunk_off);
	zf_segfd_put(st, f);
	r = -EAGAIN;
	if (n == (ssize_t)want->len) {
		zf_chunker_id(st->chunker, buf, want->len, &id);
		if (memcmp(id.b, want->id.b, ZF_CHUNK_ID_LEN) == 0) {
			memcpy(dst, buf + coff, len);
			r = 0;
		}
	}
	free(buf);
	return r;
}

int zf_segstore_read_chunk(struct zf_segstore *st, const struct zf_sc_loc *loc,
			   const struct zf_sc_chunk *want, uint32_t chunk_off, uint32_t coff,
			   uint32_t len, void *dst)
{
	struct zf_scent *e;
	uint32_t lo = 0, hi;
	int r;

	if (!loc || loc->seg == 0 || chunk_off > loc->raw_len ||
	    want->len > loc->raw_len - chunk_off || coff > want->len || len > want->len - coff)
		return -EINVAL;
	e = zf_cache_get(st, loc->seg, loc->off);
	if (!e && zf_read_raw_chunk(st, loc, want, chunk_off, coff, len, dst) == 0)
		return 0;
	if (e)
		zf_cache_put(st, e);
	r = zf_cache_load(st, loc, &e);
	if (r < 0)
		return r;
	/* the table must list exactly this chunk at this offset */
	hi = e->ntab;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (e->tab_off[mid] < chunk_off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == e->ntab || e->tab_off[lo] != chunk_off || e->tab[lo].len != want->len ||
	    memcmp(e->tab[lo].id.b, want->id.b, ZF_CHUNK_ID_LEN) != 0) {
		zf_cache_put(st, e);
		return zf_sc_bad(loc, "chunk expected at raw offset %" PRIu32 " is not there",
				 chunk_off);
	}
	if (len)
		memcpy(dst, e->data + chunk_off + coff, len);
	zf_cache_put(st, e);
	return 0;
}

/* hand a verified chunk table to the caller (either pointer may be NULL) */
static void table_out(struct zf_sc_chunk *chunks, uint32_t n, struct zf_sc_chunk **ret_chunks,
		      uint32_t *ret_n)
{
	if (ret_chunks)
		*ret_chunks = chunks;
	else
		free(chunks);
	if (ret_n)
		*ret_n = n;
}

int zf_segstore_verify(struct zf_segstore *st, const struct zf_sc_loc *loc,
		       struct zf_sc_chunk **ret_chunks, uint32_t *ret_n)
{
	struct zf_sc_chunk *chunks;
	struct zf_scent *e;
	uint32_t n;
	int r;

	if (!loc || loc->seg == 0)
		return -EINVAL;
	r = zf_sc_load(st, loc, &e, &chunks, &n);
	if (r < 0)
		return r;
	zf_scent_free(e);
	table_out(chunks, n, ret_chunks, ret_n);
	return 0;
}

int zf_segstore_verify_remote(struct zf_segstore *st, const struct zf_sc_loc *loc,
			      struct zf_sc_chunk **ret_chunks, uint32_t *ret_n)
{
	struct zf_sc_chunk *chunks;
	struct zf_scent *e;
	uint32_t n;
	int fetched = 0, r;

	if (!loc || loc->seg == 0)
		return -EINVAL;
	if (!st->fetch)
		return -EOPNOTSUPP;
	r = zf_sc_load_once(st, loc, &e, &chunks, &n, 2, &fetched);
	if (r < 0)
		return r;
	zf_scent_free(e);
	table_out(chunks, n, ret_chunks, ret_n);
	return 0;
}

int zf_segstore_seg_check(struct zf_segstore *st, uint64_t seg, uint64_t *ret_size)
{
	uint8_t h[ZF_SEG_HDR_SIZE];
	struct zf_segfd *f;
	const char *why;
	struct stat sb;
	ssize_t n;
	int r;

	r = zf_segfd_get(st, seg, &f);
	if (r < 0)
		return r; /* -EIO: a whole header, but not this segment's */
	r = fstat(f->fd, &sb) < 0 ? -errno : 0;
	n = zf_pread_full(f->fd, h, sizeof(h), 0);
	zf_segfd_put(st, f);
	if (r < 0)
		return r;
	*ret_size = (uint64_t)sb.st_size;
	if (n < 0)
		return (int)n;
	why = n < (ssize_t)sizeof(h) ? "truncated segment header"
				     : zf_seg_hdr_check(h, seg, st->fsid);
	if (why) {
		snprintf(last_why, sizeof(last_why), "%s", why);
		return -EUCLEAN;
	}
	return 0;
}

/* write bytes [off, off + len) of segment seg in place, durably */
static int zf_seg_patch(struct zf_segstore *st, uint64_t seg, uint64_t off, const void *buf,
			size_t len)
{
	char name[32];
	int fd, r = 0;

	zf_segstore_name(seg, name, sizeof(name));
	fd = openat(st->dirfd, name, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len)
		r = errno ? -errno : -EIO;
	else if (fdatasync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

int zf_segstore_seg_fix_header(struct zf_segstore *st, uint64_t seg)
{
	uint8_t h[ZF_SEG_HDR_SIZE];

	zf_seg_hdr_encode(h, seg, st->fsid);
	return zf_seg_patch(st, seg, 0, h, sizeof(h));
}

/* ---- directory scan ---- */

/*
 * Walk the segment files of the store: count them and their bytes into
 * *ret_n and *ret_bytes, the highest id into *ret_max, and unlink every one
 * with an id above remove_above (UINT64_MAX: none), logging each.
 * Returns 0 or -errno (logged).
 */
static int zf_seg_scan(struct zf_segstore *st, uint64_t remove_above, uint64_t *ret_n,
		       uint64_t *ret_bytes, uint64_t *ret_max, bool *ret_removed)
{
	uint64_t nsegs = 0, bytes = 0, max = 0;
	bool removed = false;
	struct dirent *de;
	DIR *d;
	int fd, r = 0;

	fd = openat(st->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(d = fdopendir(fd))) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		zf_err("cannot list the segment directory: %s", strerror(-r));
		return r;
	}
	while ((errno = 0, de = readdir(d))) {
		uint64_t id = zf_seg_parse_name(de->d_name);
		struct stat sb;

		if (!id)
			continue;
		if (id > remove_above) {
			zf_warn("removing segment '%s': newer than the metadata log knows",
				de->d_name);
			if (unlinkat(st->dirfd, de->d_name, 0) < 0 && errno != ENOENT) {
				r = -errno;
				zf_err("cannot remove segment '%s': %s", de->d_name, strerror(-r));
				goto out_closedir;
			}
			removed = true;
			continue;
		}
		if (fstatat(st->dirfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;
			r = -errno;
			zf_err("cannot stat segment '%s': %s", de->d_name, strerror(-r));
			goto out_closedir;
		}
		nsegs++;
		bytes += (uint64_t)sb.st_size;
		if (id > max)
			max = id;
	}
	if (errno) {
		r = -errno;
		zf_err("cannot list the segment directory: %s", strerror(-r));
		goto out_closedir;
	}
	*ret_n = nsegs;
	*ret_bytes = bytes;
	*ret_max = max;
	if (ret_removed)
		*ret_removed = removed;
out_closedir:
	closedir(d);
	return r;
}

/* ---- open / close ---- */

int zf_segstore_open(int dirfd, const uint8_t fsid[16], const struct zf_chunker *chunker,
		     const struct zf_segstore_opts *opts, struct zf_segstore **ret_st)
{
	struct zf_segstore *st;
	uint64_t max = 0;
	size_t nb;
	int r;

	if (!fsid || !chunker || !ret_st)
		return -EINVAL;
	if (opts && (opts->zstd_level < 0 || opts->zstd_level > ZSTD_maxCLevel()))
		return -EINVAL;

	st = zf_calloc(1, sizeof(*st));
	st->dirfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	if (st->dirfd < 0) {
		r = -errno;
		free(st);
		return r;
	}
	memcpy(st->fsid, fsid, 16);
	st->chunker = chunker;
	st->level = opts && opts->zstd_level ? opts->zstd_level : ZF_SEG_DEFAULT_LEVEL;
	st->seg_limit = opts && opts->seg_limit ? opts->seg_limit : ZF_SEG_DEFAULT_LIMIT;
	st->cache_max = opts && opts->cache_bytes ? opts->cache_bytes : ZF_SEG_DEFAULT_CACHE;
	st->readonly = opts ? opts->readonly : 0;
	st->wfd = -1;
	pthread_mutex_init(&st->wlock, NULL);
	pthread_mutex_init(&st->lock, NULL);
	pthread_mutex_init(&st->cache_lock, NULL);
	pthread_cond_init(&st->loaded, NULL);
	pthread_mutex_init(&st->dlock, NULL);
	zf_link_init(&st->fds);
	zf_link_init(&st->lru);

	for (nb = ZF_SEG_MIN_BUCKETS;
	     nb < ZF_SEG_MAX_BUCKETS && nb * ZF_SEG_BYTES_PER_BUCKET < st->cache_max; nb <<= 1)
		;
	st->nbuckets = nb;
	st->buckets = zf_calloc(nb, sizeof(*st->buckets));

	st->pk = zf_sc_packer_new();
	if (!st->pk) {
		r = -ENOMEM;
		goto out_close;
	}

	/* without resume() new segments go after every existing one */
	r = zf_seg_scan(st, UINT64_MAX, &st->nsegs, &st->disk_bytes, &max, NULL);
	if (r < 0)
		goto out_close;
	st->next_id = max + 1;
	*ret_st = st;
	return 0;

out_close:
	zf_segstore_close(st);
	return r;
}

/* forget the open segment without sealing it (its tail is the log's business) */
static void zf_seg_writer_drop(struct zf_segstore *st)
{
	if (st->wfd >= 0)
		close(st->wfd);
	st->wfd = -1;
	st->wseg = st->wend = st->wnsc = st->wraw = 0;
	st->wdirty = false;
}

void zf_segstore_close(struct zf_segstore *st)
{
	unsigned int i;

	if (!st)
		return;
	zf_seg_writer_drop(st);
	zf_cache_flush(st);
	zf_segfd_flush(st);
	for (i = 0; i < st->ndpool; i++)
		ZSTD_freeDCtx(st->dpool[i]);
	zf_sc_packer_free(st->pk);
	zf_sc_image_free(&st->wimg);
	free(st->buckets);
	close(st->dirfd);
	pthread_mutex_destroy(&st->dlock);
	pthread_cond_destroy(&st->loaded);
	pthread_mutex_destroy(&st->cache_lock);
	pthread_mutex_destroy(&st->lock);
	pthread_mutex_destroy(&st->wlock);
	free(st);
}

/* ---- writing ---- */

/* make a failed fsync/ftruncate sticky (see the invariants at the top) */
static int zf_seg_fail(struct zf_segstore *st, int r)
{
	if (!st->werr)
		st->werr = r;
	return r;
}

static int zf_seg_create(struct zf_segstore *st)
{
	uint8_t h[ZF_SEG_HDR_SIZE];
	uint64_t id = st->next_id;
	char name[32];
	int fd, r;

	zf_segstore_name(id, name, sizeof(name));
	fd = openat(st->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		zf_err("cannot create segment '%s': %s", name, strerror(-r));
		return r;
	}
	zf_seg_hdr_encode(h, id, st->fsid);
	r = zf_pwrite_full(fd, h, sizeof(h), 0);
	if (r < 0) {
		zf_err("cannot write segment '%s': %s", name, strerror(-r));
		close(fd);
		unlinkat(st->dirfd, name, 0);
		return r;
	}
	st->wfd = fd;
	st->wseg = id;
	st->wend = ZF_SEG_HDR_SIZE;
	st->wnsc = 0;
	st->wraw = 0;
	st->wdirty = true;
	st->dir_dirty = true;
	st->next_id = id + 1;
	pthread_mutex_lock(&st->lock);
	st->nsegs++;
	st->disk_bytes += ZF_SEG_HDR_SIZE;
	pthread_mutex_unlock(&st->lock);
	return 0;
}

/* undo zf_seg_create() after the first append into it failed */
static void zf_seg_uncreate(struct zf_segstore *st)
{
	char name[32];

	zf_segstore_name(st->wseg, name, sizeof(name));
	if (unlinkat(st->dirfd, name, 0) < 0)
		zf_warn("cannot remove empty segment '%s': %s", name, strerror(errno));
	st->next_id = st->wseg;
	zf_seg_writer_drop(st);
	pthread_mutex_lock(&st->lock);
	st->nsegs--;
	st->disk_bytes -= ZF_SEG_HDR_SIZE;
	pthread_mutex_unlock(&st->lock);
}

/* write the footer, fsync file (and directory if needed), close; wlock held */
static int zf_seg_seal_locked(struct zf_segstore *st, uint64_t *ret_sealed)
{
	uint8_t f[ZF_SEG_FTR_SIZE];
	char name[32];
	int r;

	zf_segstore_name(st->wseg, name, sizeof(name));
	zf_seg_ftr_encode(f, st->wseg, st->wnsc, st->wend, st->wraw);
	r = zf_pwrite_full(st->wfd, f, sizeof(f), (off_t)st->wend);
	if (r < 0) {
		zf_err("cannot seal segment '%s': %s", name, strerror(-r));
		if (ftruncate(st->wfd, (off_t)st->wend) < 0)
			zf_seg_fail(st, -errno);
		return r;
	}
	if (fsync(st->wfd) < 0) {
		r = zf_seg_fail(st, -errno);
		zf_err("cannot sync segment '%s': %s", name, strerror(-r));
		return r;
	}
	if (st->dir_dirty) {
		r = zf_fsync_dir(st->dirfd);
		if (r < 0) {
			zf_err("cannot sync the segment directory: %s", strerror(-r));
			return zf_seg_fail(st, r);
		}
		st->dir_dirty = false;
	}
	*ret_sealed = st->wseg;
	zf_seg_writer_drop(st);
	pthread_mutex_lock(&st->lock);
	st->disk_bytes += ZF_SEG_FTR_SIZE;
	pthread_mutex_unlock(&st->lock);
	return 0;
}

/* ---- building super-chunks (any thread) ---- */

/*
 * A compression context. Building is the CPU-heavy half of an append, so it
 * runs outside every store lock, on whichever thread owns the packer (the
 * core's compression workers each take one; append() uses the store's own
 * under wlock).
 */
struct zf_sc_packer {
	ZSTD_CCtx *cctx;
	int level;		/* level cctx is set to */
};

struct zf_sc_packer *zf_sc_packer_new(void)
{
	struct zf_sc_packer *pk = zf_calloc(1, sizeof(*pk));

	pk->cctx = ZSTD_createCCtx();
	if (!pk->cctx ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(pk->cctx, ZSTD_c_contentSizeFlag, 1))) {
		zf_sc_packer_free(pk);
		return NULL;
	}
	pk->level = INT32_MIN;
	return pk;
}

void zf_sc_packer_free(struct zf_sc_packer *pk)
{
	if (!pk)
		return;
	ZSTD_freeCCtx(pk->cctx);
	free(pk);
}

void zf_sc_image_free(struct zf_sc_image *img)
{
	if (!img)
		return;
	free(img->p);
	memset(img, 0, sizeof(*img));
}

/*
 * Compress src into dst[0..cap): the frame length, or 0 when it does not
 * fit (the data does not shrink enough to be worth a decompression).
 */
static size_t zf_sc_zstd(struct zf_sc_packer *pk, void *dst, size_t cap, const void *src,
			 size_t len)
{
	size_t z = ZSTD_compress2(pk->cctx, dst, cap, src, len);

	if (!ZSTD_isError(z))
		return z;
	if (ZSTD_getErrorCode(z) != ZSTD_error_dstSize_tooSmall)
		zf_warn("zstd compression failed, storing raw: %s", ZSTD_getErrorName(z));
	/* ZSTD_compress2() starts a new frame on every call: cctx is reusable */
	return 0;
}

/*
 * Is this payload worth compressing? Two 64 KiB samples (start and middle)
 * are tried first: media, archives and encrypted data fail both at a
 * fraction of the cost of compressing 4 MiB only to store it raw. A payload
 * whose samples do not shrink by 1/32 is stored raw; one that compresses
 * only elsewhere loses that gain, which is rare in real files.
 */
#define ZF_SC_SAMPLE (64u << 10)

static bool zf_sc_compressible(struct zf_sc_packer *pk, const uint8_t *raw, uint32_t raw_len,
			       uint8_t *scratch)
{
	const size_t cap = ZF_SC_SAMPLE - ZF_SC_SAMPLE / 32 - 1;

	if (raw_len < 4 * ZF_SC_SAMPLE)
		return true; /* small: the whole try is as cheap as the samples */
	return zf_sc_zstd(pk, scratch, cap, raw, ZF_SC_SAMPLE) ||
	       zf_sc_zstd(pk, scratch, cap, raw + raw_len / 2, ZF_SC_SAMPLE);
}

int zf_sc_packer_build(struct zf_sc_packer *pk, int level, const struct zf_sc_chunk *chunks,
		       uint32_t n, const void *raw, uint32_t raw_len, struct zf_sc_image *img)
{
	size_t tlen = (size_t)n * ZF_SC_ENT_SIZE;
	size_t need = ZF_SC_HDR_SIZE + tlen + raw_len;
	size_t cap = raw_len - raw_len / 32 - 1;
	uint64_t sum = 0;
	uint8_t *p, *payload;
	uint16_t flags = 0;
	uint32_t i, stored = 0;

	if (!chunks || !raw || n == 0 || n > ZF_SC_CHUNKS_MAX || raw_len == 0 ||
	    raw_len > ZF_SC_RAW_MAX)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (chunks[i].len == 0)
			return -EINVAL;
		sum += chunks[i].len;
	}
	if (sum != raw_len)
		return -EINVAL;
	if (level != pk->level) {
		if (ZSTD_isError(ZSTD_CCtx_setParameter(pk->cctx, ZSTD_c_compressionLevel, level)))
			return -EINVAL;
		pk->level = level;
	}
	if (img->cap < need) {
		free(img->p);
		img->p = zf_malloc(need);
		img->cap = need;
	}
	p = img->p;
	payload = p + ZF_SC_HDR_SIZE + tlen;

	/* the breakeven rule: a frame that saves less than 1/32 is not kept */
	if (cap && zf_sc_compressible(pk, raw, raw_len, payload))
		stored = (uint32_t)zf_sc_zstd(pk, payload, cap, raw, raw_len);
	if (stored) {
		flags |= ZF_SC_F_ZSTD;
	} else {
		memcpy(payload, raw, raw_len);
		stored = raw_len;
	}

	for (i = 0; i < n; i++) {
		uint8_t *ent = p + ZF_SC_HDR_SIZE + (size_t)i * ZF_SC_ENT_SIZE;

		memcpy(ent, chunks[i].id.b, ZF_CHUNK_ID_LEN);
		zf_put32(ent + ZF_SC_ENT_LEN_OFF, chunks[i].len);
	}
	zf_put32(p, ZF_SC_MAGIC);
	zf_put16(p + 4, ZF_SC_VERSION);
	zf_put16(p + ZF_SC_FLAGS_OFF, flags);
	zf_put32(p + ZF_SC_NCHUNKS_OFF, n);
	zf_put32(p + ZF_SC_RAW_LEN_OFF, raw_len);
	zf_put32(p + ZF_SC_STORED_LEN_OFF, stored);
	zf_put32(p + 20, 0);
	zf_put64(p + ZF_SC_SEG_OFF, 0); /* and the header checksum: set by the append */
	zf_put64(p + ZF_SC_PCSUM_OFF, XXH3_64bits(payload, stored));
	img->len = (uint32_t)(ZF_SC_HDR_SIZE + tlen + stored);
	img->raw_len = raw_len;
	img->n = n;
	return 0;
}

/* ---- appending ---- */

/* append a built super-chunk to the open segment (wlock held) */
static int zf_seg_append_locked(struct zf_segstore *st, struct zf_sc_image *img,
				struct zf_sc_loc *ret_loc, uint64_t *ret_sealed)
{
	uint64_t sealed = 0, off;
	bool created = false;
	char name[32];
	uint8_t *p = img->p;
	int r;

	if (st->werr)
		return st->werr;
	if (st->wfd < 0) {
		r = zf_seg_create(st);
		if (r < 0)
			return r;
		created = true;
	}
	zf_segstore_name(st->wseg, name, sizeof(name));
	/* the segment id is only known now; it is covered by the header checksum */
	zf_put64(p + ZF_SC_SEG_OFF, st->wseg);
	zf_put64(p + ZF_SC_HCSUM_OFF, zf_sc_hdr_csum(p, img->n));
	off = st->wend;
	r = zf_pwrite_full(st->wfd, p, img->len, (off_t)off);
	if (r < 0) {
		zf_err("cannot append to segment '%s' at offset %" PRIu64 ": %s", name, off,
		       strerror(-r));
		if (created) {
			zf_seg_uncreate(st);
		} else if (ftruncate(st->wfd, (off_t)off) < 0) {
			zf_err("cannot cut segment '%s' back to %" PRIu64 ": %s", name, off,
			       strerror(errno));
			zf_seg_fail(st, -errno);
		}
		return r;
	}
	st->wend += img->len;
	st->wnsc++;
	st->wraw += img->raw_len;
	st->wdirty = true;
	pthread_mutex_lock(&st->lock);
	st->disk_bytes += img->len;
	st->raw_bytes += img->raw_len;
	st->stored_bytes += img->len;
	pthread_mutex_unlock(&st->lock);

	ret_loc->seg = st->wseg;
	ret_loc->off = off;
	ret_loc->disk_len = img->len;
	ret_loc->raw_len = img->raw_len;

	/*
	 * The super-chunk is appended whatever happens to the seal: a failed
	 * seal is logged, the segment stays open, and the next append tries
	 * again (a failed fsync makes the next sync() fail instead).
	 */
	if (st->wend >= st->seg_limit && zf_seg_seal_locked(st, &sealed) < 0)
		sealed = 0;
	if (ret_sealed)
		*ret_sealed = sealed;
	return 0;
}

int zf_segstore_append_image(struct zf_segstore *st, struct zf_sc_image *img,
			     struct zf_sc_loc *ret_loc, uint64_t *ret_sealed)
{
	int r;

	if (!img || !img->p || !ret_loc || img->len < ZF_SC_HDR_SIZE + ZF_SC_ENT_SIZE)
		return -EINVAL;
	pthread_mutex_lock(&st->wlock);
	r = zf_seg_append_locked(st, img, ret_loc, ret_sealed);
	pthread_mutex_unlock(&st->wlock);
	return r;
}

int zf_segstore_append(struct zf_segstore *st, const struct zf_sc_chunk *chunks, uint32_t n,
		       const void *raw, uint32_t raw_len, struct zf_sc_loc *ret_loc,
		       uint64_t *ret_sealed)
{
	int r;

	if (!ret_loc)
		return -EINVAL;
	pthread_mutex_lock(&st->wlock);
	r = zf_sc_packer_build(st->pk, st->level, chunks, n, raw, raw_len, &st->wimg);
	if (r == 0)
		r = zf_seg_append_locked(st, &st->wimg, ret_loc, ret_sealed);
	pthread_mutex_unlock(&st->wlock);
	return r;
}

int zf_segstore_seal(struct zf_segstore *st, uint64_t *ret_sealed)
{
	uint64_t sealed = 0;
	int r = 0;

	pthread_mutex_lock(&st->wlock);
	if (st->werr)
		r = st->werr;
	else if (st->wfd >= 0)
		r = zf_seg_seal_locked(st, &sealed);
	if (r == 0 && ret_sealed)
		*ret_sealed = sealed;
	pthread_mutex_unlock(&st->wlock);
	return r;
}

int zf_segstore_sync(struct zf_segstore *st)
{
	char name[32];
	int r = 0;

	pthread_mutex_lock(&st->wlock);
	if (st->werr) {
		r = st->werr;
		goto out_unlock;
	}
	if (st->wfd >= 0 && st->wdirty) {
		if (fdatasync(st->wfd) < 0) {
			r = zf_seg_fail(st, -errno);
			zf_segstore_name(st->wseg, name, sizeof(name));
			zf_err("cannot sync segment '%s': %s", name, strerror(-r));
			goto out_unlock;
		}
		st->wdirty = false;
	}
	if (st->dir_dirty) {
		r = zf_fsync_dir(st->dirfd);
		if (r < 0) {
			zf_err("cannot sync the segment directory: %s", strerror(-r));
			zf_seg_fail(st, r);
			goto out_unlock;
		}
		st->dir_dirty = false;
	}
out_unlock:
	pthread_mutex_unlock(&st->wlock);
	return r;
}

/* ---- resume ---- */

/*
 * Count the super-chunks in [ZF_SEG_HDR_SIZE, end) of the open segment for
 * its footer. Only headers and tables are read. A broken chain inside the
 * committed region is logged and the count stays partial: refusing to mount
 * over it would hide every other segment, and reads of the damaged
 * super-chunk fail with -EIO on their own.
 */
static void zf_seg_count(struct zf_segstore *st, int fd, const char *name, uint64_t end)
{
	uint64_t off = ZF_SEG_HDR_SIZE, nsc = 0, raw = 0;
	uint8_t *buf = NULL;
	size_t cap = 0;

	while (off < end) {
		uint8_t h[ZF_SC_HDR_SIZE];
		struct zf_sc_hdr sh;
		uint64_t tlen, len;
		ssize_t n;

		n = zf_pread_full(fd, h, sizeof(h), (off_t)off);
		if (n != (ssize_t)sizeof(h) || zf_get32(h) != ZF_SC_MAGIC)
			goto broken;
		zf_sc_hdr_decode(h, &sh);
		tlen = (uint64_t)sh.nchunks * ZF_SC_ENT_SIZE;
		len = ZF_SC_HDR_SIZE + tlen + sh.stored_len;
		if (sh.nchunks == 0 || sh.nchunks > ZF_SC_CHUNKS_MAX || sh.seg != st->wseg ||
		    len > end - off)
			goto broken;
		if (cap < ZF_SC_HDR_SIZE + tlen) {
			cap = ZF_SC_HDR_SIZE + tlen;
			free(buf);
			buf = zf_malloc(cap);
		}
		memcpy(buf, h, sizeof(h));
		n = zf_pread_full(fd, buf + ZF_SC_HDR_SIZE, tlen, (off_t)(off + ZF_SC_HDR_SIZE));
		if (n != (ssize_t)tlen || zf_sc_hdr_csum(buf, sh.nchunks) != sh.hdr_csum)
			goto broken;
		nsc++;
		raw += sh.raw_len;
		off += len;
	}
	goto out;
broken:
	zf_err("segment '%s': super-chunk chain broken at offset %" PRIu64
	       " below the committed end %" PRIu64 "; its footer will count %" PRIu64
	       " super-chunks", name, off, end, nsc);
out:
	free(buf);
	st->wnsc = nsc;
	st->wraw = raw;
}

int zf_segstore_resume(struct zf_segstore *st, uint64_t open_seg, uint64_t committed_end,
		       uint64_t last_sealed)
{
	uint64_t keep = open_seg > last_sealed ? open_seg : last_sealed;
	uint8_t h[ZF_SEG_HDR_SIZE];
	uint64_t nsegs, bytes, max;
	const char *why;
	bool removed;
	char name[32];
	struct stat sb;
	ssize_t n;
	int fd = -1, r;

	if (open_seg && (open_seg <= last_sealed || committed_end < ZF_SEG_HDR_SIZE)) {
		zf_err("cannot resume the segment store: open segment %" PRIu64
		       " ending at %" PRIu64 " after sealed segment %" PRIu64 " is inconsistent",
		       open_seg, committed_end, last_sealed);
		return -EINVAL;
	}

	pthread_mutex_lock(&st->wlock);
	/* the metadata log is the truth from here on: forget every cached view */
	zf_seg_writer_drop(st);
	st->werr = 0;
	zf_cache_flush(st);
	zf_segfd_flush(st);

	r = zf_seg_scan(st, keep, &nsegs, &bytes, &max, &removed);
	if (r < 0)
		goto out_unlock;
	if (removed) {
		/* so that a re-created id never meets a resurrected old file */
		r = zf_fsync_dir(st->dirfd);
		if (r < 0) {
			zf_err("cannot sync the segment directory: %s", strerror(-r));
			goto out_unlock;
		}
	}

	if (open_seg) {
		zf_segstore_name(open_seg, name, sizeof(name));
		fd = openat(st->dirfd, name, O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			r = -errno;
			zf_err("cannot open segment '%s': %s", name, strerror(-r));
			goto out_unlock;
		}
		n = zf_pread_full(fd, h, sizeof(h), 0);
		if (n < 0) {
			r = (int)n;
			zf_err("cannot read segment '%s': %s", name, strerror(-r));
			goto out_close;
		}
		why = n < (ssize_t)sizeof(h) ? "truncated segment header"
					     : zf_seg_hdr_check(h, open_seg, st->fsid);
		if (why) {
			zf_err("cannot resume segment '%s': %s", name, why);
			r = -EBADMSG;
			goto out_close;
		}
		if (fstat(fd, &sb) < 0) {
			r = -errno;
			zf_err("cannot stat segment '%s': %s", name, strerror(-r));
			goto out_close;
		}
		if ((uint64_t)sb.st_size < committed_end) {
			zf_err("cannot resume segment '%s': %" PRIu64
			       " bytes, shorter than its committed end %" PRIu64,
			       name, (uint64_t)sb.st_size, committed_end);
			r = -EBADMSG;
			goto out_close;
		}
		if ((uint64_t)sb.st_size > committed_end) {
			if (ftruncate(fd, (off_t)committed_end) < 0) {
				r = -errno;
				zf_err("cannot truncate segment '%s': %s", name, strerror(-r));
				goto out_close;
			}
			zf_warn("segment '%s': dropped %" PRIu64
				" uncommitted bytes after offset %" PRIu64,
				name, (uint64_t)sb.st_size - committed_end, committed_end);
			bytes -= (uint64_t)sb.st_size - committed_end;
		}
		st->wfd = fd;
		st->wseg = open_seg;
		st->wend = committed_end;
		/* the cut is made durable by the next sync, before any commit */
		st->wdirty = true;
		zf_seg_count(st, fd, name, committed_end);
	}
	st->next_id = keep + 1;
	pthread_mutex_lock(&st->lock);
	st->nsegs = nsegs;
	st->disk_bytes = bytes;
	pthread_mutex_unlock(&st->lock);
	r = 0;
	goto out_unlock;

out_close:
	close(fd);
out_unlock:
	pthread_mutex_unlock(&st->wlock);
	return r;
}

int zf_segstore_resume_keep(struct zf_segstore *st, uint64_t *last_sealed)
{
	uint64_t nsegs, bytes, max;
	int r;

	pthread_mutex_lock(&st->wlock);
	zf_seg_writer_drop(st);
	st->werr = 0;
	zf_cache_flush(st);
	zf_segfd_flush(st);
	r = zf_seg_scan(st, UINT64_MAX, &nsegs, &bytes, &max, NULL);
	if (r == 0) {
		if (max > *last_sealed)
			*last_sealed = max;
		st->next_id = *last_sealed + 1;
		pthread_mutex_lock(&st->lock);
		st->nsegs = nsegs;
		st->disk_bytes = bytes;
		pthread_mutex_unlock(&st->lock);
	}
	pthread_mutex_unlock(&st->wlock);
	return r;
}

void zf_segstore_stats(struct zf_segstore *st, struct zf_segstore_stats *ret)
{
	memset(ret, 0, sizeof(*ret));
	pthread_mutex_lock(&st->lock);
	ret->segments = st->nsegs;
	ret->disk_bytes = st->disk_bytes;
	ret->raw_bytes = st->raw_bytes;
	ret->stored_bytes = st->stored_bytes;
	pthread_mutex_unlock(&st->lock);
	pthread_mutex_lock(&st->cache_lock);
	ret->cache_hits = st->hits;
	ret->cache_misses = st->misses;
	ret->cache_bytes = st->cache_used;
	ret->cache_max = st->cache_max;
	ret->healed = __atomic_load_n(&st->healed, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&st->cache_lock);
}

void zf_segstore_set_fetch(struct zf_segstore *st, zf_segstore_fetch_fn fn, void *ctx)
{
	st->fetch_ctx = ctx;
	st->fetch = fn;
}

int zf_segstore_has_fetch(struct zf_segstore *st)
{
	return st->fetch != NULL;
}

int zf_segstore_has(struct zf_segstore *st, uint64_t seg)
{
	return zf_segfd_exists(st, seg) == 0;
}

int zf_segstore_evict(struct zf_segstore *st, uint64_t seg)
{
	char name[32];
	int r;

	zf_segstore_name(seg, name, sizeof(name));
	struct zf_segfd *f;

	pthread_mutex_lock(&st->wlock);
	if (st->wseg && seg >= st->wseg) { /* the open segment stays */
		pthread_mutex_unlock(&st->wlock);
		return -EBUSY;
	}
	pthread_mutex_lock(&st->lock);
	f = zf_segfd_lookup_locked(st, seg);
	if (f) {
		f->refs--; /* the lookup's reference; the cache's goes next */
		zf_segfd_uncache_locked(st, f);
	}
	pthread_mutex_unlock(&st->lock);
	r = unlinkat(st->dirfd, name, 0) < 0 ? -errno : 0;
	pthread_mutex_unlock(&st->wlock);
	return r;
}
