/*
 * storage/gc.c - garbage collection of the segment store (zerofs gc)
 *
 * A segment is referenced while some indexed chunk lies in it; its bytes are
 * live while such a chunk has references. zf_fs_gc():
 *  1. measures every segment: its stored bytes, and the stored bytes of its
 *     live chunks (a chunk's share of its super-chunk's disk length);
 *  2. chooses victims among the sealed segments it may remove: with
 *     small_bytes, every small one (when there are two or more: they are
 *     merged); every one without live bytes, then the least live ones until
 *     the dead bytes left in the others are at most max_waste of all live
 *     bytes;
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
 * The bucket side is tier/gc.c (zf_remote_gc).
 *
 * Locking: fs->gc_lock for the whole run, fs->lock only in short sections.
 * gc sees the core only through storage/fs_walk.h.
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

#include "common/log.h"
#include "common/util.h"
#include "storage/fs.h"
#include "storage/fs_snap.h"
#include "storage/fs_walk.h"
#include "storage/gc.h"

#define GC_BATCH_CHUNKS 4096u

/* one segment's accounts */
struct segacct {
	uint64_t seg;
	uint64_t size;		/* stored bytes: the local file, else its super-chunks */
	uint64_t live;		/* stored bytes of chunks with references (estimate) */
	int victim, damaged;
	int pinned;		/* a snapshot locates chunks in it: it stays as it is */
};

/* a live chunk to copy, as it was located when chosen */
struct move {
	struct zf_walk_chunk c;
	struct segacct *from;
};

struct gc {
	struct zf_fs *fs;
	struct zf_walk_state st; /* as it was when the run started */
	const struct zf_gc_opts *o;
	struct zf_gc_report *rep;
	uint64_t limit;		/* highest segment id gc may remove */
	struct segacct *segs;
	size_t nsegs;
	const uint64_t *pins;	/* segments snapshots locate chunks in, sorted: they stay */
	size_t npins;
};

static struct segacct *seg_find(struct gc *g, uint64_t seg)
{
	return bsearch(&seg, g->segs, g->nsegs, sizeof(*g->segs), zf_cmp_u64);
}

/* stored bytes of chunk c, its share of the super-chunk's disk length */
static uint64_t chunk_stored(const struct zf_walk_chunk *c)
{
	return (uint64_t)c->len * c->loc.disk_len / c->loc.raw_len;
}

static uint64_t seg_file_size(struct gc *g, uint64_t seg)
{
	char name[32];
	struct stat st;

	zf_segstore_name(seg, name, sizeof(name));
	return fstatat(g->st.segfd, name, &st, 0) == 0 ? (uint64_t)st.st_size : 0;
}

static void measure_sc(void *ctx, const struct zf_sc_loc *loc)
{
	seg_find(ctx, loc->seg)->size += loc->disk_len;
}

static int measure_chunk(void *ctx, const struct zf_walk_chunk *c)
{
	if (c->located && c->refs)
		seg_find(ctx, c->loc.seg)->live += chunk_stored(c);
	return 0;
}

/* 1. accounts of every segment the table references (fs->lock held) */
static void measure(struct gc *g)
{
	uint64_t *ids = zf_fs_walk_segments(g->fs, &g->nsegs);
	size_t i, n = g->nsegs;

	g->segs = zf_calloc(n ? n : 1, sizeof(*g->segs));
	for (i = 0; i < n; i++)
		g->segs[i].seg = ids[i];
	free(ids);
	zf_fs_walk_scs(g->fs, measure_sc, g);
	for (i = 0; i < n; i++) {
		uint64_t sz = seg_file_size(g, g->segs[i].seg);

		if (sz > g->segs[i].size)
			g->segs[i].size = sz; /* headers, garbage copies */
	}
	zf_fs_walk_chunks(g->fs, measure_chunk, g);
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

static void mark_victim(struct gc *g, struct segacct *s, uint64_t *dead)
{
	s->victim = 1;
	g->rep->victims++;
	g->rep->moved_bytes += s->live;
	*dead -= s->size > s->live ? s->size - s->live : 0;
	g->rep->reclaim_bytes += s->size - (s->live < s->size ? s->live : s->size);
}

/*
 * 2. victims: with small_bytes, the small sealed segments (two or more);
 * then the least live sealed segments until the waste left is small
 */
static void choose(struct gc *g)
{
	struct segacct **cand = zf_malloc((g->nsegs ? g->nsegs : 1) * sizeof(*cand));
	double waste = g->o->max_waste > 0 ? g->o->max_waste : ZF_GC_MAX_WASTE;
	uint64_t dead = 0;
	size_t i, n = 0;

	for (i = 0; i < g->nsegs; i++) {
		struct segacct *s = &g->segs[i];

		if (s->seg > g->limit || s->seg == g->st.open_seg || s->pinned)
			continue; /* open, not in the bucket yet, or a snapshot's */
		cand[n++] = s;
		dead += s->size > s->live ? s->size - s->live : 0;
	}
	qsort(cand, n, sizeof(*cand), cmp_live_ratio);
	if (g->o->small_bytes) {
		size_t small = 0;

		for (i = 0; i < n; i++)
			small += cand[i]->size < g->o->small_bytes;
		for (i = 0; i < n && small >= 2; i++)
			if (cand[i]->size < g->o->small_bytes)
				mark_victim(g, cand[i], &dead); /* merged into one bigger one */
	}
	for (i = 0; i < n; i++) {
		struct segacct *s = cand[i];

		if (s->victim)
			continue;
		if (s->live && dead <= waste * (double)g->rep->live_bytes)
			break;
		mark_victim(g, s, &dead);
	}
	free(cand);
}

struct collect {
	struct gc *g;
	struct move *mv;
	size_t n, cap;
};

static int collect_chunk(void *ctx, const struct zf_walk_chunk *c)
{
	struct collect *cl = ctx;
	struct segacct *s;

	if (!c->located || !c->refs)
		return 0;
	s = seg_find(cl->g, c->loc.seg);
	if (!s || !s->victim)
		return 0;
	if (!c->readable) {
		s->damaged = 1; /* fsck --repair marked it: the segment stays */
		return 0;
	}
	if (cl->n == cl->cap) {
		cl->cap = cl->cap ? cl->cap * 2 : 1024;
		cl->mv = zf_realloc(cl->mv, cl->cap * sizeof(*cl->mv));
	}
	cl->mv[cl->n++] = (struct move){ .c = *c, .from = s };
	return 0;
}

/* live chunks of the victims (fs->lock held) */
static struct move *collect(struct gc *g, size_t *ret_n)
{
	struct collect cl = { .g = g };

	zf_fs_walk_chunks(g->fs, collect_chunk, &cl);
	*ret_n = cl.n;
	return cl.mv;
}

static int cmp_move(const void *a, const void *b)
{
	const struct zf_walk_chunk *x = &((const struct move *)a)->c;
	const struct zf_walk_chunk *y = &((const struct move *)b)->c;

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
	struct zf_walk_chunk *ch = zf_malloc((n ? n : 1) * sizeof(*ch));
	uint32_t moved, bytes;
	size_t i;
	int r;

	for (i = 0; i < n; i++)
		ch[i] = mv[i].c;
	zf_fs_walk_lock(g->fs);
	r = zf_fs_walk_move(g->fs, ch, ok, n, raw, &moved, &bytes);
	zf_fs_walk_unlock(g->fs);
	g->rep->moved_chunks += moved;
	g->rep->moved_raw_bytes += bytes;
	free(ch);
	return r;
}

static int copy_live(struct gc *g, struct move *mv, size_t n)
{
	uint8_t *raw = zf_malloc(ZF_PACK_BYTES + ZF_CHUNK_MAX);
	int *ok = zf_malloc(GC_BATCH_CHUNKS * sizeof(*ok));
	uint64_t total = 0, done = 0;
	size_t i = 0, j;
	int r = 0;

	if (n) /* mv may be NULL: qsort's pointer must not be */
		qsort(mv, n, sizeof(*mv), cmp_move);
	for (j = 0; j < n; j++)
		total += mv[j].c.len;
	if (g->o->progress)
		g->o->progress(g->o->ctx, 0, total);
	while (i < n && r == 0) {
		uint32_t pos = 0;

		for (j = i; j < n && j - i < GC_BATCH_CHUNKS && pos < ZF_PACK_BYTES; j++) {
			struct zf_sc_chunk want = { .id = mv[j].c.id, .len = mv[j].c.len };
			int e = zf_segstore_read_chunk(g->st.seg, &mv[j].c.loc, &want,
						       mv[j].c.raw_off, 0, mv[j].c.len, raw + pos);

			ok[j - i] = e == 0;
			if (e < 0 && !mv[j].from->damaged) {
				/* the segment stays (and fsck names the files) */
				zf_err("gc: segment %llu is kept: a live chunk at offset %llu "
				       "cannot be read: %s",
				       (unsigned long long)mv[j].c.loc.seg,
				       (unsigned long long)mv[j].c.loc.off, strerror(-e));
				mv[j].from->damaged = 1;
			}
			pos += mv[j].c.len;
		}
		r = move_batch(g, mv + i, ok, j - i, raw);
		i = j;
		done += pos;
		if (g->o->progress)
			g->o->progress(g->o->ctx, done, total);
	}
	free(ok);
	free(raw);
	return r;
}

struct dead {
	struct gc *g;
	struct zf_chunk_id *ids;
	size_t n, cap;
};

static int dead_chunk(void *ctx, const struct zf_walk_chunk *c)
{
	struct dead *d = ctx;
	struct segacct *s;

	if (!c->located || c->refs || !(s = seg_find(d->g, c->loc.seg)) || !s->victim)
		return 0;
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 1024;
		d->ids = zf_realloc(d->ids, d->cap * sizeof(*d->ids));
	}
	d->ids[d->n++] = c->id;
	return 0;
}

/* 4a. index entries of dead chunks in victims go (fs->lock held) */
static void drop_dead(struct gc *g)
{
	struct dead d = { .g = g };

	zf_fs_walk_chunks(g->fs, dead_chunk, &d);
	zf_fs_walk_drop(g->fs, d.ids, d.n);
	g->rep->dead_chunks += d.n;
	free(d.ids);
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
	uint64_t *ids, *gone = NULL;
	size_t nids, ngone = 0, i;
	struct dirent *de;
	DIR *d;
	int fd;

	fd = openat(g->st.segfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		if (fd >= 0)
			close(fd);
		zf_err("gc: cannot list the segments of '%s': %s", g->st.dev_dir, strerror(errno));
		return;
	}
	ids = zf_fs_walk_segments(g->fs, &nids);
	while ((de = readdir(d))) {
		unsigned long long id;
		char name[32];
		struct stat st;

		if (sscanf(de->d_name, "%16llx.zseg", &id) != 1 || id == 0)
			continue;
		zf_segstore_name(id, name, sizeof(name));
		if (strcmp(name, de->d_name) || id > g->limit || id == g->st.open_seg ||
		    referenced(ids, nids, id) || (g->npins && referenced(g->pins, g->npins, id)) ||
		    fstatat(g->st.segfd, name, &st, 0) < 0)
			continue;
		gone = zf_realloc(gone, (ngone + 1) * sizeof(*gone));
		gone[ngone++] = id;
		g->rep->freed_segments++;
		g->rep->freed_bytes += st.st_size;
	}
	closedir(d);
	free(ids);
	if (!dry_run && ngone) {
		for (i = 0; i < ngone; i++) {
			int r = zf_fs_walk_seg_remove(g->fs, gone[i]);

			if (r < 0 && r != -ENOENT)
				zf_err("gc: cannot remove segment %llu of '%s': %s",
				       (unsigned long long)gone[i], g->st.dev_dir, strerror(-r));
		}
	}
	free(gone);
}

int zf_fs_gc(struct zf_fs *fs, const struct zf_gc_opts *o, struct zf_gc_report *rep)
{
	struct gc g = { .fs = fs, .o = o, .rep = rep };
	struct move *mv = NULL;
	uint64_t *pins = NULL;
	size_t nmv = 0, npins = 0, i;
	int r;

	memset(rep, 0, sizeof(*rep));
	zf_fs_gc_lock(fs);
	/* snapshots are made under gc_lock too: these are all there are */
	r = zf_fs_snapshot_segs(fs, &pins, &npins);
	if (r < 0)
		goto out;
	zf_fs_walk_lock(fs);
	zf_fs_walk_state(fs, &g.st);
	if (g.st.readonly) {
		zf_fs_walk_unlock(fs);
		r = -EROFS;
		goto out;
	}
	/* buffered data first: gc reports on, and keeps, a committed table */
	r = zf_fs_walk_settle(fs);
	if (r < 0) {
		zf_fs_walk_unlock(fs);
		goto out;
	}
	zf_fs_walk_state(fs, &g.st);
	g.limit = g.st.last_sealed;
	if (o->keep && o->keep_above < g.limit)
		g.limit = o->keep_above;
	g.pins = pins;
	g.npins = npins;
	measure(&g);
	for (i = 0; i < npins; i++) {
		struct segacct *s = seg_find(&g, pins[i]);

		if (s)
			s->pinned = 1;
	}
	rep->segments = g.nsegs;
	choose(&g);
	if (o->dry_run) {
		remove_unreferenced(&g, 1); /* counts only */
		zf_fs_walk_unlock(fs);
		if (o->ret_victims) {
			*o->ret_victims = NULL;
			*o->ret_nvictims = 0;
		}
		for (i = 0; i < g.nsegs; i++)
			if (g.segs[i].victim) {
				rep->freed_segments++;
				rep->freed_bytes += g.segs[i].size;
				if (o->ret_victims) {
					*o->ret_victims = zf_realloc(*o->ret_victims,
								     (*o->ret_nvictims + 1) * sizeof(uint64_t));
					(*o->ret_victims)[(*o->ret_nvictims)++] = g.segs[i].seg;
				}
			}
		if (o->ret_victims && *o->ret_nvictims)
			qsort(*o->ret_victims, *o->ret_nvictims, sizeof(uint64_t), zf_cmp_u64);
		goto out;
	}
	mv = collect(&g, &nmv);
	zf_fs_walk_unlock(fs);

	r = copy_live(&g, mv, nmv);
	if (r < 0)
		goto out;

	zf_fs_walk_lock(fs);
	for (i = 0; i < g.nsegs; i++)
		if (g.segs[i].damaged) {
			g.segs[i].victim = 0;
			rep->kept_damaged++;
		}
	drop_dead(&g);
	r = zf_fs_walk_commit(fs);
	if (r == 0)
		remove_unreferenced(&g, 0);
	zf_fs_walk_unlock(fs);
out:
	zf_fs_gc_unlock(fs);
	free(pins);
	free(mv);
	free(g.segs);
	return r;
}
