/*
 * storage/gc.c - garbage collection of the segment store (zerofs gc)
 *
 * A segment is referenced while some indexed chunk lies in it; its bytes are
 * live while such a chunk has references. zf_fs_gc():
 *  1. measures every segment: its stored bytes, and the stored bytes of its
 *     live chunks (a chunk's share of its super-chunk's disk length);
 *  2. chooses victims among the sealed segments it may remove: every one
 *     without live bytes, then the least live ones until the dead bytes left
 *     in the others are at most max_waste of all live bytes;
 *  3. copies the live chunks of the victims into new super-chunks, reading
 *     them without fs->lock, and logs each as ZF_REC_SC_MOVE; each batch is
 *     committed as writes are (data fdatasync'd, then the record);
 *  4. under fs->lock: drops the index entries of dead chunks left in victims
 *     (ZF_REC_CHUNK_DEL), commits, and removes every segment file in the
 *     dev-dir that the table no longer references.
 *
 * Crash safety: a segment file is removed only once the committed log no
 * longer references it, so a kill at any moment leaves either a victim that
 * is still referenced (the next run moves what is left) or an unreferenced
 * file (the next run removes it); never a reference to a missing file.
 * Readers plan under fs->lock and read after it: fs->seg_gen is bumped
 * before files go, and a read that then misses its segment plans again.
 * The bucket side is storage/remote.c (zf_remote_gc).
 *
 * Locking: fs->gc_lock for the whole run, fs->lock only in short sections.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/endian.h"
#include "common/log.h"
#include "common/util.h"
#include "storage/fs_internal.h"
#include "storage/gc.h"
#include "storage/meta_format.h"
#include "storage/seg_format.h"

#define GC_BATCH_CHUNKS 4096u
#define GC_DEL_IDS 65536u	/* chunk ids per deletion record */

/* one segment's accounts */
struct segacct {
	uint64_t seg;
	uint64_t size;		/* stored bytes: the local file, else its super-chunks */
	uint64_t live;		/* stored bytes of chunks with references (estimate) */
	int victim, damaged;
};

/* a live chunk to copy, as it was located when chosen */
struct move {
	struct zf_chunk *c;
	struct zf_sc_loc loc;
	uint32_t raw_off, len;
	struct segacct *from;
};

struct gc {
	struct zf_fs *fs;
	const struct zf_gc_opts *o;
	struct zf_gc_report *rep;
	uint64_t limit;		/* highest segment id gc may remove */
	struct segacct *segs;
	size_t nsegs;
};

static struct segacct *seg_find(struct gc *g, uint64_t seg)
{
	return bsearch(&seg, g->segs, g->nsegs, sizeof(*g->segs), zf_cmp_u64);
}

/* stored bytes of chunk c, its share of the super-chunk's disk length */
static uint64_t chunk_stored(const struct zf_chunk *c)
{
	return (uint64_t)c->len * c->sc->loc.disk_len / c->sc->loc.raw_len;
}

static uint64_t seg_file_size(struct zf_fs *fs, uint64_t seg)
{
	char name[32];
	struct stat st;

	zf_segstore_name(seg, name, sizeof(name));
	return fstatat(fs->segfd, name, &st, 0) == 0 ? (uint64_t)st.st_size : 0;
}

/* 1. accounts of every segment the table references (fs->lock held) */
static void measure(struct gc *g)
{
	struct zf_fs *fs = g->fs;
	uint64_t *ids = fs_segments_used(fs, &g->nsegs);
	struct zf_hent *e;
	size_t i, n = g->nsegs;

	g->segs = zf_calloc(n ? n : 1, sizeof(*g->segs));
	for (i = 0; i < n; i++)
		g->segs[i].seg = ids[i];
	free(ids);
	for (i = 0; i < fs->nscs; i++)
		seg_find(g, fs->scs[i]->loc.seg)->size += fs->scs[i]->loc.disk_len;
	for (i = 0; i < n; i++) {
		uint64_t sz = seg_file_size(fs, g->segs[i].seg);

		if (sz > g->segs[i].size)
			g->segs[i].size = sz; /* headers, garbage copies */
	}
	zf_htab_foreach(&fs->chunks, e)
	{
		struct zf_chunk *c = e->val;

		if (c->sc && c->refs)
			seg_find(g, c->sc->loc.seg)->live += chunk_stored(c);
	}
	for (i = 0; i < n; i++) {
		g->rep->stored_bytes += g->segs[i].size;
		g->rep->live_bytes += g->segs[i].live;
	}
}

static int cmp_live_ratio(const void *a, const void *b)
{
	const struct segacct *x = *(struct segacct *const *)a, *y = *(struct segacct *const *)b;
	/* x->live / x->size < y->live / y->size, without division */
	unsigned __int128 l = (unsigned __int128)x->live * (y->size ? y->size : 1);
	unsigned __int128 r = (unsigned __int128)y->live * (x->size ? x->size : 1);

	return l < r ? -1 : l > r;
}

/* 2. victims: the least live sealed segments until the waste left is small */
static void choose(struct gc *g)
{
	struct segacct **cand = zf_malloc((g->nsegs ? g->nsegs : 1) * sizeof(*cand));
	double waste = g->o->max_waste > 0 ? g->o->max_waste : ZF_GC_MAX_WASTE;
	uint64_t dead = 0;
	size_t i, n = 0;

	for (i = 0; i < g->nsegs; i++) {
		struct segacct *s = &g->segs[i];

		if (s->seg > g->limit || s->seg == g->fs->open_seg)
			continue; /* open, or not in the bucket yet */
		cand[n++] = s;
		dead += s->size > s->live ? s->size - s->live : 0;
	}
	qsort(cand, n, sizeof(*cand), cmp_live_ratio);
	for (i = 0; i < n; i++) {
		struct segacct *s = cand[i];

		if (s->live && dead <= waste * (double)g->rep->live_bytes)
			break;
		s->victim = 1;
		g->rep->victims++;
		g->rep->moved_bytes += s->live;
		dead -= s->size > s->live ? s->size - s->live : 0;
		g->rep->reclaim_bytes += s->size - (s->live < s->size ? s->live : s->size);
	}
	free(cand);
}

/* live chunks of the victims, in segment order (fs->lock held) */
static struct move *collect(struct gc *g, size_t *ret_n)
{
	struct zf_fs *fs = g->fs;
	struct move *mv = NULL;
	struct zf_hent *e;
	size_t n = 0, cap = 0;

	zf_htab_foreach(&fs->chunks, e)
	{
		struct zf_chunk *c = e->val;
		struct segacct *s;

		if (!c->sc || !c->refs)
			continue;
		s = seg_find(g, c->sc->loc.seg);
		if (!s || !s->victim)
			continue;
		if (!zf_chunk_readable(c)) {
			s->damaged = 1; /* fsck --repair marked it: the segment stays */
			continue;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			mv = zf_realloc(mv, cap * sizeof(*mv));
		}
		mv[n++] = (struct move){ .c = c, .loc = c->sc->loc, .raw_off = c->raw_off,
					 .len = c->len, .from = s };
	}
	*ret_n = n;
	return mv;
}

static int cmp_move(const void *a, const void *b)
{
	const struct move *x = a, *y = b;

	if (x->loc.seg != y->loc.seg)
		return x->loc.seg < y->loc.seg ? -1 : 1;
	if (x->loc.off != y->loc.off)
		return x->loc.off < y->loc.off ? -1 : 1;
	return x->raw_off < y->raw_off ? -1 : x->raw_off > y->raw_off;
}

/*
 * 3. one batch: mv[0..n) were read into raw (ok[i]: read fine). Chunks still
 * where they were are appended as a new super-chunk and moved, committed.
 */
static int move_batch(struct gc *g, struct move *mv, const int *ok, size_t n, uint8_t *raw)
{
	struct zf_fs *fs = g->fs;
	struct zf_chunk **cs = zf_malloc(n * sizeof(*cs));
	struct zf_sc_chunk *tab = zf_malloc(n * sizeof(*tab));
	struct zf_sc_loc loc;
	uint64_t sealed = 0;
	uint32_t k = 0, pos = 0, src = 0;
	size_t i;
	int r = 0;

	fs_lock(fs);
	for (i = 0; i < n; src += mv[i].len, i++) {
		struct zf_chunk *c = mv[i].c;

		if (!ok[i] || !c->sc || c->sc->loc.seg != mv[i].loc.seg ||
		    c->sc->loc.off != mv[i].loc.off || c->raw_off != mv[i].raw_off)
			continue;
		memmove(raw + pos, raw + src, mv[i].len);
		cs[k] = c;
		tab[k].id = c->id;
		tab[k].len = c->len;
		pos += c->len;
		k++;
	}
	/* writers' packs in flight go to the segment first: appends and their
	 * records stay in one order */
	r = fs_pipe_reap(fs, 1);
	if (k && r == 0) {
		r = zf_segstore_append(fs->seg, tab, k, raw, pos, &loc, &sealed);
		if (r == 0) {
			fs_log_sc(fs, ZF_REC_SC_MOVE, &loc, cs, k);
			if (sealed)
				fs_log_seal(fs, sealed);
			r = fs_commit(fs);
		}
		if (r < 0)
			zf_err("gc: cannot write moved chunks in '%s': %s", fs->dev_dir, strerror(-r));
		else {
			g->rep->moved_chunks += k;
			g->rep->moved_raw_bytes += pos;
		}
	}
	fs_unlock(fs);
	free(cs);
	free(tab);
	return r;
}

static int copy_live(struct gc *g, struct move *mv, size_t n)
{
	uint8_t *raw = zf_malloc(ZF_PACK_BYTES + ZF_CHUNK_MAX);
	int *ok = zf_malloc(GC_BATCH_CHUNKS * sizeof(*ok));
	size_t i = 0, j;
	int r = 0;

	if (n) /* mv may be NULL: qsort's pointer must not be */
		qsort(mv, n, sizeof(*mv), cmp_move);
	while (i < n && r == 0) {
		uint32_t pos = 0;

		for (j = i; j < n && j - i < GC_BATCH_CHUNKS && pos < ZF_PACK_BYTES; j++) {
			struct zf_sc_chunk want = { .id = mv[j].c->id, .len = mv[j].len };
			int e = zf_segstore_read_chunk(g->fs->seg, &mv[j].loc, &want, mv[j].raw_off,
						       0, mv[j].len, raw + pos);

			ok[j - i] = e == 0;
			if (e < 0 && !mv[j].from->damaged) {
				/* the segment stays (and fsck names the files) */
				zf_err("gc: segment %llu is kept: a live chunk at offset %llu "
				       "cannot be read: %s",
				       (unsigned long long)mv[j].loc.seg,
				       (unsigned long long)mv[j].loc.off, strerror(-e));
				mv[j].from->damaged = 1;
			}
			pos += mv[j].len;
		}
		r = move_batch(g, mv + i, ok, j - i, raw);
		i = j;
	}
	free(ok);
	free(raw);
	return r;
}

/* 4a. index entries of dead chunks in victims go (fs->lock held) */
static void drop_dead(struct gc *g)
{
	struct zf_fs *fs = g->fs;
	struct zf_buf b = { 0 };
	struct zf_hent *e;
	uint32_t n = 0;

	zf_buf_grow(&b, 4);
	zf_htab_foreach(&fs->chunks, e)
	{
		struct zf_chunk *c = e->val;
		struct segacct *s;

		if (!c->sc || c->refs || !(s = seg_find(g, c->sc->loc.seg)) || !s->victim)
			continue;
		zf_buf_add(&b, c->id.b, ZF_CHUNK_ID_LEN);
		n++;
		if (n == GC_DEL_IDS)
			break; /* the table changes under the iteration once applied */
	}
	if (n) {
		zf_put32(b.p, n);
		fs_do(fs, ZF_REC_CHUNK_DEL, &b);
		fs_txn_end(fs);
		g->rep->dead_chunks += n;
	}
	zf_buf_free(&b);
	if (n == GC_DEL_IDS)
		drop_dead(g);
}

/* is seg referenced by the table? (ids sorted) */
static int referenced(const uint64_t *ids, size_t n, uint64_t seg)
{
	return bsearch(&seg, ids, n, sizeof(*ids), zf_cmp_u64) != NULL;
}

/*
 * 4b. segment files nothing references (fs->lock held): victims emptied
 * now, and those a killed run left behind. With dry_run only counted.
 */
static void remove_unreferenced(struct gc *g, int dry_run)
{
	struct zf_fs *fs = g->fs;
	uint64_t *ids, *gone = NULL;
	size_t nids, ngone = 0, i;
	struct dirent *de;
	DIR *d;
	int fd;

	fd = openat(fs->segfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		if (fd >= 0)
			close(fd);
		zf_err("gc: cannot list the segments of '%s': %s", fs->dev_dir, strerror(errno));
		return;
	}
	ids = fs_segments_used(fs, &nids);
	while ((de = readdir(d))) {
		unsigned long long id;
		char name[32];
		struct stat st;

		if (sscanf(de->d_name, "%16llx.zseg", &id) != 1 || id == 0)
			continue;
		zf_segstore_name(id, name, sizeof(name));
		if (strcmp(name, de->d_name) || id > g->limit || id == fs->open_seg ||
		    referenced(ids, nids, id) || fstatat(fs->segfd, name, &st, 0) < 0)
			continue;
		gone = zf_realloc(gone, (ngone + 1) * sizeof(*gone));
		gone[ngone++] = id;
		g->rep->freed_segments++;
		g->rep->freed_bytes += st.st_size;
	}
	closedir(d);
	free(ids);
	if (!dry_run && ngone) {
		fs->seg_gen++; /* before the files go: readers in flight plan again */
		for (i = 0; i < ngone; i++) {
			int r = zf_segstore_evict(fs->seg, gone[i]);

			if (r < 0 && r != -ENOENT)
				zf_err("gc: cannot remove segment %llu of '%s': %s",
				       (unsigned long long)gone[i], fs->dev_dir, strerror(-r));
		}
	}
	free(gone);
}

int zf_fs_gc(struct zf_fs *fs, const struct zf_gc_opts *o, struct zf_gc_report *rep)
{
	struct gc g = { .fs = fs, .o = o, .rep = rep };
	struct move *mv = NULL;
	size_t nmv = 0, i;
	int r;

	memset(rep, 0, sizeof(*rep));
	if (fs->readonly)
		return -EROFS;
	pthread_mutex_lock(&fs->gc_lock);
	fs_lock(fs);
	/* buffered data first: gc reports on, and keeps, a committed table */
	r = fs_flush_all(fs, 0);
	if (r == 0)
		r = fs_commit(fs);
	if (r < 0) {
		fs_unlock(fs);
		goto out;
	}
	g.limit = fs->last_sealed;
	if (o->keep && o->keep_above < g.limit)
		g.limit = o->keep_above;
	measure(&g);
	rep->segments = g.nsegs;
	choose(&g);
	if (o->dry_run) {
		remove_unreferenced(&g, 1); /* counts only */
		fs_unlock(fs);
		for (i = 0; i < g.nsegs; i++)
			if (g.segs[i].victim) {
				rep->freed_segments++;
				rep->freed_bytes += g.segs[i].size;
			}
		goto out;
	}
	mv = collect(&g, &nmv);
	fs_unlock(fs);

	r = copy_live(&g, mv, nmv);
	if (r < 0)
		goto out;

	fs_lock(fs);
	for (i = 0; i < g.nsegs; i++)
		if (g.segs[i].damaged) {
			g.segs[i].victim = 0;
			rep->kept_damaged++;
		}
	drop_dead(&g);
	r = fs_commit(fs);
	if (r == 0)
		remove_unreferenced(&g, 0);
	fs_unlock(fs);
out:
	pthread_mutex_unlock(&fs->gc_lock);
	free(mv);
	free(g.segs);
	return r;
}

int zf_fs_seg_refs(struct zf_fs *fs, uint64_t **ret_ids, size_t *ret_n, uint64_t *ret_max,
		   uint64_t *ret_seq)
{
	int r;

	fs_lock(fs);
	r = fs_commit(fs);
	if (r == 0) {
		*ret_ids = fs_segments_used(fs, ret_n);
		*ret_max = fs->open_seg > fs->last_sealed ? fs->open_seg : fs->last_sealed;
		*ret_seq = fs->readonly ? 0 : zf_mlog_next_seq(fs->log) - 1;
	}
	fs_unlock(fs);
	return r;
}
