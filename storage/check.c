/*
 * storage/check.c - the consistency checker of the core (zerofs fsck)
 *
 * A tolerant (salvage) open notes every log or checkpoint record it had to
 * skip; each becomes a problem here, naming the file, offset, seq, type and
 * the paths of the inode it concerned. Then this walks the opened table:
 *   - every inode is reachable from the root (or unlinked: pinned, or in a
 *     read-only check an orphan of a crash that the next mount reclaims);
 *   - every directory entry names an existing inode of the recorded type;
 *   - link counts equal directory references (directories: 2 + subdirs);
 *   - directory parent pointers match the entry that holds them;
 *   - extents are sorted, inside the file and inside their chunk;
 *   - chunk reference counts equal references from extents, and those the
 *     checkpoint recorded matched what it described;
 *   - every referenced chunk lies in a super-chunk whose segment exists in
 *     the dev-dir (valid header, long enough) or in the bucket; with
 *     verify_data the super-chunk is read (locally or by a ranged GET), its
 *     checksums verified, its chunks re-hashed, and its table must list the
 *     chunk where the index says. A damaged local copy whose bucket copy
 *     verifies is repairable by dropping the local copy.
 * Damaged chunks are then named by the files that use them: a second pass
 * over the extents builds chunk -> (inode, byte ranges) for damaged chunks
 * only, and one walk of the tree gives every path of those inodes (hard
 * links included). Chunks an earlier repair marked damaged are notes, not
 * errors, as are segment files no chunk lives in (garbage for zerofs gc).
 * Each problem is one line that names what and where; rep->repair hands
 * the findings to storage/repair.c.
 *
 * Locking: holds fs->lock for the whole walk (fetches of evicted
 * super-chunks included: fsck has the filesystem to itself).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/lock.h"
#include "common/log.h"
#include "common/util.h"
#include "storage/check.h"
#include "storage/check_internal.h"
#include "storage/meta_format.h"

#define PROGRESS_EVERY 1024u	/* chunks between progress calls */
#define MAX_DEPTH 100000	/* directory depth walked for paths (a guard) */
#define MAX_REF_LINES 10	/* wrong reference counts named one by one, then summed */

static void vsay(struct ck *ck, int is_problem, const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (is_problem) {
		ck->rep->errors++;
		if (ck->rep->problem)
			ck->rep->problem(ck->rep->ctx, msg);
		else
			zf_err("%s", msg);
	} else {
		ck->rep->notes++;
		if (ck->rep->note)
			ck->rep->note(ck->rep->ctx, msg);
		else
			zf_info("%s", msg);
	}
}

void ck_problem(struct ck *ck, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(ck, 1, fmt, ap);
	va_end(ap);
}

void ck_note(struct ck *ck, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(ck, 0, fmt, ap);
	va_end(ap);
}

static struct ck_ref *ref_get(struct ck *ck, uint64_t ino)
{
	struct ck_ref *r = zf_htab_find(&ck->refs, zf_mix64(ino), NULL, NULL);

	if (!r) {
		r = zf_calloc(1, sizeof(*r));
		r->ino = ino;
		zf_htab_insert(&ck->refs, zf_mix64(ino), r);
	}
	return r;
}

/* ------------------------------------------------------------------ paths */

struct ck_paths {
	uint64_t ino;
	char **v;
	size_t n;
};

/* ask for the paths of ino (filled by find_paths) */
static void want_path(struct ck *ck, uint64_t ino)
{
	struct ck_paths *p;

	if (!ino || zf_htab_find(&ck->paths, zf_mix64(ino), NULL, NULL))
		return;
	p = zf_calloc(1, sizeof(*p));
	p->ino = ino;
	zf_htab_insert(&ck->paths, zf_mix64(ino), p);
}

static void paths_add(struct ck_paths *p, const struct zf_buf *path)
{
	char *s = zf_malloc(path->len + 1);

	memcpy(s, path->p, path->len);
	s[path->len] = 0;
	p->v = zf_realloc(p->v, (p->n + 1) * sizeof(*p->v));
	p->v[p->n++] = s;
}

/*
 * Every directory is entered once, from the first entry its parent pointer
 * names: damaged metadata may hold two such entries, or one naming the root
 * (found by fuzz_records: without this the walk grew without bound).
 */
static void paths_walk(struct ck *ck, struct zf_inode *dir, struct zf_buf *path, int depth,
		       struct zf_htab *entered)
{
	struct zf_dir *d = dir->u.dir;
	uint32_t i;

	for (i = 0; i < d->nslot; i++) {
		struct zf_dirent *de = d->slot[i];
		struct zf_inode *child;
		struct ck_paths *p;
		size_t mark = path->len;

		if (!de)
			continue;
		zf_buf_add(path, "/", 1);
		zf_buf_add(path, de->name, de->namelen);
		p = zf_htab_find(&ck->paths, zf_mix64(de->ino), NULL, NULL);
		if (p)
			paths_add(p, path);
		child = fs_inode(ck->fs, de->ino);
		/* a directory is entered from the entry its parent pointer names */
		if (child && S_ISDIR(child->mode) && child->u.dir->parent == dir->ino &&
		    depth < MAX_DEPTH && !zf_htab_find(entered, zf_mix64(child->ino), NULL, NULL)) {
			zf_htab_insert(entered, zf_mix64(child->ino), child);
			paths_walk(ck, child, path, depth + 1, entered);
		}
		path->len = mark;
	}
}

/* one walk of the tree: every path of every inode asked for */
static void find_paths(struct ck *ck)
{
	struct zf_inode *root = fs_inode(ck->fs, ZF_ROOT_INO);
	struct zf_buf path = { 0 };
	struct ck_paths *p;

	if (!ck->paths.n || !root || !S_ISDIR(root->mode))
		return;
	p = zf_htab_find(&ck->paths, zf_mix64(ZF_ROOT_INO), NULL, NULL);
	if (p) {
		zf_buf_add(&path, "/", 1);
		paths_add(p, &path);
		path.len = 0;
	}
	{
		struct zf_htab entered = { 0 };

		zf_htab_insert(&entered, zf_mix64(root->ino), root);
		paths_walk(ck, root, &path, 0, &entered);
		zf_htab_free(&entered);
	}
	zf_buf_free(&path);
}

/* the paths of ino, comma-separated, into buf ("inode N, not reachable" if none) */
static const char *path_list(struct ck *ck, uint64_t ino, char *buf, size_t len)
{
	struct ck_paths *p = zf_htab_find(&ck->paths, zf_mix64(ino), NULL, NULL);
	size_t i, at = 0;

	if (!p || !p->n) {
		snprintf(buf, len, "<inode %llu, not reachable from the root>",
			 (unsigned long long)ino);
		return buf;
	}
	buf[0] = 0;
	for (i = 0; i < p->n && at < len; i++)
		at += snprintf(buf + at, len - at, "%s%s", i ? ", " : "", p->v[i]);
	return buf;
}

/* ------------------------------------------------------------ the tree */

/* breadth-first walk from the root: entries, types, reachability */
static void walk_tree(struct ck *ck)
{
	struct zf_fs *fs = ck->fs;
	uint64_t *queue = zf_malloc(sizeof(uint64_t) * 16);
	size_t qcap = 16, head = 0, tail = 0;

	queue[tail++] = ZF_ROOT_INO;
	ref_get(ck, ZF_ROOT_INO)->reached = 1;
	while (head < tail) {
		struct zf_inode *dir = fs_inode(fs, queue[head++]);
		struct zf_dir *d = dir->u.dir;
		uint32_t i, live = 0;

		for (i = 0; i < d->nslot; i++) {
			struct zf_dirent *de = d->slot[i];
			struct zf_inode *in;
			struct ck_ref *r;

			if (!de)
				continue;
			live++;
			ck->rep->dirents++;
			in = fs_inode(fs, de->ino);
			if (!in) {
				ck_problem(ck, "directory %llu: entry '%s' names missing inode %llu",
					   (unsigned long long)dir->ino, de->name,
					   (unsigned long long)de->ino);
				continue;
			}
			if (de->dtype != (in->mode & S_IFMT) >> 12)
				ck_problem(ck, "directory %llu: entry '%s' has the wrong type",
					   (unsigned long long)dir->ino, de->name);
			if (dir_find(d, de->name, de->namelen) != de)
				ck_problem(ck, "directory %llu: entry '%s' is not found by name",
					   (unsigned long long)dir->ino, de->name);
			r = ref_get(ck, de->ino);
			r->links++;
			if (!r->parent)
				r->parent = dir->ino;
			if (!S_ISDIR(in->mode))
				continue;
			ref_get(ck, dir->ino)->subdirs++;
			if (r->reached) {
				ck_problem(ck, "directory %llu has more than one entry (again as '%s' "
					   "in %llu)", (unsigned long long)de->ino, de->name,
					   (unsigned long long)dir->ino);
				continue;
			}
			r->reached = 1;
			if (in->u.dir->parent != dir->ino)
				ck_problem(ck, "directory %llu: parent is %llu, but its entry is in %llu",
					   (unsigned long long)de->ino,
					   (unsigned long long)in->u.dir->parent,
					   (unsigned long long)dir->ino);
			if (tail == qcap) {
				qcap *= 2;
				queue = zf_realloc(queue, qcap * sizeof(*queue));
			}
			queue[tail++] = de->ino;
		}
		if (live != d->nents)
			ck_problem(ck, "directory %llu: entry count %u, found %u",
				   (unsigned long long)dir->ino, d->nents, live);
	}
	free(queue);
}

static void check_links(struct ck *ck)
{
	struct zf_hent *e;

	zf_htab_foreach(&ck->fs->inodes, e)
	{
		struct zf_inode *in = e->val;
		struct ck_ref *r = zf_htab_find(&ck->refs, zf_mix64(in->ino), NULL, NULL);
		uint32_t links = r ? r->links : 0, want;

		ck->rep->inodes++;
		/* unlinked: still open, or (read-only, after a crash) an orphan
		 * that the next writable open reclaims */
		if (in->nlink == 0 && links == 0 && (in->lookups || ck->fs->readonly))
			continue;
		if (S_ISDIR(in->mode)) {
			want = in->ino == ZF_ROOT_INO || links ? 2 + (r ? r->subdirs : 0) : 0;
			if (in->nlink != want && (links || in->ino == ZF_ROOT_INO))
				ck_problem(ck, "directory %llu: link count %u, expected %u",
					   (unsigned long long)in->ino, in->nlink, want);
		} else if (in->nlink != links && links) {
			ck_problem(ck, "inode %llu: link count %u, but %u directory entries",
				   (unsigned long long)in->ino, in->nlink, links);
		}
		if (in->ino != ZF_ROOT_INO && links == 0)
			ck_problem(ck, "inode %llu is not reachable from the root%s",
				   (unsigned long long)in->ino,
				   ck->rep->repair ? "" : " (--repair moves it to /lost+found)");
	}
}

/* extents of every file; counts references per chunk into ck->counts */
static void check_files(struct ck *ck)
{
	struct zf_hent *e;

	zf_htab_foreach(&ck->fs->inodes, e)
	{
		struct zf_inode *in = e->val;
		struct zf_file *f;
		uint64_t prev = 0, mapped = 0;
		uint32_t i;

		if (!S_ISREG(in->mode))
			continue;
		f = in->u.file;
		for (i = 0; i < f->n; i++) {
			struct zf_extent *x = &f->ext[i];
			uint64_t *cnt;

			if (x->off < prev || x->len == 0)
				ck_problem(ck, "inode %llu: extent at %llu overlaps or is empty",
					   (unsigned long long)in->ino, (unsigned long long)x->off);
			if (x->off + x->len > in->size)
				ck_problem(ck, "inode %llu: extent at %llu beyond size %llu",
					   (unsigned long long)in->ino, (unsigned long long)x->off,
					   (unsigned long long)in->size);
			if ((uint64_t)x->coff + x->len > x->c->len)
				ck_problem(ck, "inode %llu: extent at %llu beyond its chunk",
					   (unsigned long long)in->ino, (unsigned long long)x->off);
			prev = x->off + x->len;
			mapped += x->len;
			cnt = zf_htab_find(&ck->counts, (uintptr_t)x->c, NULL, NULL);
			if (!cnt) {
				cnt = zf_calloc(2, sizeof(*cnt));
				cnt[0] = (uintptr_t)x->c;
				zf_htab_insert(&ck->counts, (uintptr_t)x->c, cnt);
			}
			cnt[1]++;
		}
		if (mapped != f->mapped)
			ck_problem(ck, "inode %llu: mapped bytes %llu, extents hold %llu",
				   (unsigned long long)in->ino, (unsigned long long)f->mapped,
				   (unsigned long long)mapped);
	}
}

/* ------------------------------------------------------- chunk locations */

static void chunk_hex(const struct zf_chunk *c, char *buf)
{
	int i;

	for (i = 0; i < ZF_CHUNK_ID_LEN; i++)
		sprintf(buf + 2 * i, "%02x", c->id.b[i]);
}

/* a segment file looked at once */
struct seg_seen {
	int local;		/* 0 present with a valid header, -ENOENT, -EIO (header) */
	uint64_t size;
	char why[200];
	int remote;		/* remote_seg_size: 0, -ENOENT or -errno; 1 not asked yet */
	uint64_t remote_size;
};

/* a super-chunk looked at once: its state and (verify_data) its chunk table */
struct sc_seen {
	int unknown;		/* could not be checked (the bucket did not answer): not damage */
	int bad;		/* its bytes cannot be read as the index says */
	int local_only;		/* ... locally, but the bucket's copy is good */
	char why[220];
	uint32_t n;
	struct zf_sc_chunk *tab;
};

struct loc_ctx {
	struct zf_htab segs;	/* seg -> struct seg_seen */
	struct zf_htab scs;	/* struct zf_sc * -> struct sc_seen */
};

static struct seg_seen *seg_get(struct ck *ck, struct loc_ctx *lc, uint64_t seg)
{
	struct seg_seen *s = zf_htab_find(&lc->segs, zf_mix64(seg), NULL, NULL);
	struct zf_seg_err err;

	if (s)
		return s;
	s = zf_calloc(1, sizeof(*s));
	s->remote = 1;
	s->local = zf_segstore_seg_check(ck->fs->seg, seg, &s->size, &err);
	if (s->local == -EUCLEAN) {
		/* its super-chunks still verify one by one: only the header is lost */
		int fix = ck->rep->repair && !ck->fs->readonly;
		int r = fix ? zf_segstore_seg_fix_header(ck->fs->seg, seg) : 0;
		char name[32];

		zf_segstore_name(seg, name, sizeof(name));
		ck_problem(ck, "seg/%s: %s (its super-chunks are checked one by one)%s%s", name,
			   err.why, fix && r == 0 ? ": rewritten" : "",
			   r < 0 ? ": cannot rewrite it" : "");
		if (fix && r == 0)
			ck->rep->repaired++;
		s->local = 0;
	}
	if (s->local == -EIO)
		snprintf(s->why, sizeof(s->why), "%.*s", (int)sizeof(s->why) - 1, err.why);
	else if (s->local < 0 && s->local != -ENOENT)
		snprintf(s->why, sizeof(s->why), "%s", strerror(-s->local));
	zf_htab_insert(&lc->segs, zf_mix64(seg), s);
	return s;
}

/* the bucket's size of seg (asked once); 0, -ENOENT, -errno, or -ENOSYS (no bucket) */
static int seg_remote(struct ck *ck, struct seg_seen *s, uint64_t seg)
{
	if (!ck->rep->remote_seg_size)
		return -ENOSYS;
	if (s->remote == 1)
		s->remote = ck->rep->remote_seg_size(ck->rep->rctx, seg, &s->remote_size);
	return s->remote;
}

/* can the bucket's copy of sc replace a damaged local one? */
static int remote_good(struct ck *ck, struct seg_seen *s, const struct zf_sc *sc,
		       struct sc_seen *v)
{
	uint64_t end = sc->loc.off + sc->loc.disk_len;
	int r;

	if (ck->rep->verify_data || !ck->rep->remote_seg_size) {
		if (!zf_segstore_has_fetch(ck->fs->seg))
			return 0;
		free(v->tab);
		v->tab = NULL;
		return zf_segstore_verify_remote(ck->fs->seg, &sc->loc, &v->tab, &v->n, NULL) == 0;
	}
	r = seg_remote(ck, s, sc->loc.seg);
	return r == 0 && s->remote_size >= end;
}

static struct sc_seen *sc_check(struct ck *ck, struct loc_ctx *lc, struct zf_sc *sc)
{
	struct sc_seen *v = zf_htab_find(&lc->scs, (uintptr_t)sc, NULL, NULL);
	uint64_t end = sc->loc.off + sc->loc.disk_len;
	struct seg_seen *s;
	struct zf_seg_err err;
	char seg[32], why[200] = "";
	int r;

	if (v)
		return v;
	v = zf_calloc(1, sizeof(*v));
	zf_htab_insert(&lc->scs, (uintptr_t)sc, v);
	ck->rep->superchunks++;
	s = seg_get(ck, lc, sc->loc.seg);
	zf_segstore_name(sc->loc.seg, seg, sizeof(seg));
	if (ck->rep->verify_data) {
		/* the whole super-chunk, from the dev-dir or (evicted) the bucket */
		r = zf_segstore_verify(ck->fs->seg, &sc->loc, &v->tab, &v->n, &err);
		if (r == -ENOENT && s->local == -ENOENT && ck->rep->bucket_unreachable)
			r = -EHOSTUNREACH; /* evicted, and the bucket did not answer */
		if (r < 0)
			snprintf(why, sizeof(why), "%.*s", (int)sizeof(why) - 1, r == -EHOSTUNREACH
						      ? "segment not in the dev-dir, and the bucket "
							"is unreachable"
						      : s->local == -ENOENT && r == -ENOENT
						      ? "segment missing"
						      : err.why);
	} else if (s->local == 0) {
		r = s->size >= end ? 0 : -EIO;
		if (r)
			snprintf(why, sizeof(why), "segment truncated (%llu bytes, the super-chunk "
				 "ends at %llu)", (unsigned long long)s->size, (unsigned long long)end);
	} else if (s->local == -ENOENT) {
		/* evicted: the bucket must hold it */
		r = seg_remote(ck, s, sc->loc.seg);
		if (r == -ENOSYS && zf_segstore_has_fetch(ck->fs->seg)) {
			r = zf_segstore_verify(ck->fs->seg, &sc->loc, &v->tab, &v->n, &err);
			if (r < 0)
				snprintf(why, sizeof(why), "%.*s", (int)sizeof(why) - 1, err.why);
		} else if (r == -ENOSYS && ck->rep->bucket_unreachable) {
			snprintf(why, sizeof(why), "segment not in the dev-dir, and the bucket is "
				 "unreachable");
		} else if (r == -ENOSYS || r == -ENOENT) {
			snprintf(why, sizeof(why), "segment missing from the dev-dir%s",
				 r == -ENOENT ? " and from the bucket" : " (no bucket to fetch it from)");
			r = -ENOENT;
		} else if (r < 0) {
			snprintf(why, sizeof(why), "cannot ask the bucket: %s", strerror(-r));
		} else if (s->remote_size < end) {
			r = -EIO;
			snprintf(why, sizeof(why), "segment truncated in the bucket (%llu bytes, the "
				 "super-chunk ends at %llu)", (unsigned long long)s->remote_size,
				 (unsigned long long)end);
		}
	} else {
		r = s->local;
		snprintf(why, sizeof(why), "%s", s->why);
	}
	/* a bucket that does not answer (or an I/O error) proves nothing */
	if (r < 0 && r != -EIO && r != -ENOENT && r != -EBADMSG) {
		v->unknown = 1;
		ck->rep->unchecked++;
		ck_problem(ck, "cannot check seg/%s offset %llu: %s (not marked damaged)", seg,
			   (unsigned long long)sc->loc.off, why[0] ? why : strerror(-r));
		return v;
	}
	if (r < 0) {
		v->bad = 1;
		/* a damaged local copy: is the bucket's good? */
		if (s->local != -ENOENT && remote_good(ck, s, sc, v))
			v->local_only = 1;
		snprintf(v->why, sizeof(v->why), "in seg/%s offset %llu: %s%s", seg,
			 (unsigned long long)sc->loc.off, why,
			 v->local_only ? " (local copy; the bucket's copy is good)" : "");
	}
	return v;
}

/* does the verified table of c's super-chunk list c where the index says? */
static int table_lists(const struct sc_seen *v, const struct zf_chunk *c)
{
	uint32_t i, off = 0;

	for (i = 0; i < v->n; i++) {
		if (off == c->raw_off && v->tab[i].len == c->len &&
		    !memcmp(v->tab[i].id.b, c->id.b, ZF_CHUNK_ID_LEN))
			return 1;
		off += v->tab[i].len;
	}
	return 0;
}

static struct ck_dmg *dmg_add(struct ck *ck, struct zf_chunk *c)
{
	struct ck_dmg *d = zf_calloc(1, sizeof(*d));

	d->c = c;
	zf_htab_insert(&ck->dmg, (uintptr_t)c, d);
	return d;
}

static void check_chunks(struct ck *ck)
{
	struct zf_fs *fs = ck->fs;
	struct loc_ctx lc;
	struct zf_hent *e;
	uint64_t done = 0, total = fs->chunks.n, bad_refs = 0;
	char hex[2 * ZF_CHUNK_ID_LEN + 1];

	memset(&lc, 0, sizeof(lc));
	if (ck->rep->progress)
		ck->rep->progress(ck->rep->ctx, 0, total);
	zf_htab_foreach(&fs->chunks, e)
	{
		struct zf_chunk *c = e->val;
		uint64_t *cnt = zf_htab_find(&ck->counts, (uintptr_t)c, NULL, NULL);
		uint64_t want = cnt ? cnt[1] : 0;
		struct sc_seen *v;

		if (ck->rep->progress && ++done % PROGRESS_EVERY == 0)
			ck->rep->progress(ck->rep->ctx, done, total);
		ck->rep->chunks++;
		if (c->refs != want && ++bad_refs > MAX_REF_LINES)
			ck->rep->errors++; /* summed up below */
		else if (c->refs != want) {
			chunk_hex(c, hex);
			if (ck->rep->repair)
				ck_problem(ck, "chunk %s: reference count %u, but %llu references "
					   "(rebuilt)", hex, c->refs, (unsigned long long)want);
			else
				ck_problem(ck, "chunk %s: reference count %u, but %llu references",
					   hex, c->refs, (unsigned long long)want);
		}
		if (!want)
			continue;
		if (!zf_chunk_readable(c)) {
			struct ck_dmg *d = dmg_add(ck, c);

			d->known = !!(c->flags & ZF_CHUNK_BAD);
			if (c->flags & ZF_CHUNK_LOST)
				snprintf(d->why, sizeof(d->why), "%s",
					 d->known ? "marked damaged: its location was lost"
						  : "its super-chunk record is lost");
			else
				snprintf(d->why, sizeof(d->why), "in seg/%016llx.zseg offset %llu: "
					 "marked damaged", (unsigned long long)c->sc->loc.seg,
					 (unsigned long long)c->sc->loc.off);
			continue;
		}
		if (!c->sc) {
			if (!c->pk || c->raw_off + (uint64_t)c->len > c->pk->raw.len) {
				chunk_hex(c, hex);
				ck_problem(ck, "chunk %s: not in any super-chunk", hex);
			}
			continue;
		}
		v = sc_check(ck, &lc, c->sc);
		if (v->unknown)
			continue;
		if (v->bad && !v->local_only) {
			snprintf(dmg_add(ck, c)->why, sizeof(((struct ck_dmg *)0)->why), "%s", v->why);
		} else if (v->tab && !table_lists(v, c)) {
			struct ck_dmg *d = dmg_add(ck, c);

			snprintf(d->why, sizeof(d->why), "in seg/%016llx.zseg offset %llu: its "
				 "super-chunk's table does not list it there",
				 (unsigned long long)c->sc->loc.seg, (unsigned long long)c->sc->loc.off);
		} else if (v->bad) {
			struct ck_dmg *d = dmg_add(ck, c);

			d->local_only = 1;
			snprintf(d->why, sizeof(d->why), "%s", v->why);
		}
	}
	if (ck->rep->progress)
		ck->rep->progress(ck->rep->ctx, total, total);
	if (bad_refs > MAX_REF_LINES)
		ck_problem(ck, "%llu more chunks with a wrong reference count%s",
			   (unsigned long long)(bad_refs - MAX_REF_LINES),
			   ck->rep->repair ? " (rebuilt)" : "");
	zf_htab_foreach(&lc.scs, e)
	{
		struct sc_seen *v = e->val;

		free(v->tab);
		free(v);
	}
	zf_htab_free(&lc.scs);
	zf_htab_foreach(&lc.segs, e) free(e->val);
	zf_htab_free(&lc.segs);
}

/* -------------------------------------------------- naming the damage */

/* second pass: which bytes of which files map a damaged chunk */
static void collect_uses(struct ck *ck)
{
	struct zf_hent *e;

	zf_htab_foreach(&ck->fs->inodes, e)
	{
		struct zf_inode *in = e->val;
		uint32_t i;

		if (!S_ISREG(in->mode))
			continue;
		for (i = 0; i < in->u.file->n; i++) {
			struct zf_extent *x = &in->u.file->ext[i];
			struct ck_dmg *d = zf_htab_find(&ck->dmg, (uintptr_t)x->c, NULL, NULL);
			struct ck_use *u;

			if (!d)
				continue;
			u = d->nuse ? &d->use[d->nuse - 1] : NULL;
			if (u && u->ino == in->ino && u->off + u->len == x->off) {
				u->len += x->len; /* the same chunk again, right after */
				continue;
			}
			if (d->nuse == d->cap) {
				d->cap = d->cap ? d->cap * 2 : 4;
				d->use = zf_realloc(d->use, d->cap * sizeof(*d->use));
			}
			d->use[d->nuse++] = (struct ck_use){ in->ino, x->off, x->len };
			want_path(ck, in->ino);
		}
	}
}

/* one damaged range of one file, for sorting and merging */
struct dmg_line {
	uint64_t ino, off, len;
	const struct ck_dmg *d;
};

static int cmp_dmg_line(const void *a, const void *b)
{
	const struct dmg_line *x = a, *y = b;
	int r = x->d->known - y->d->known;

	if (!r)
		r = strcmp(x->d->why, y->d->why);
	if (!r)
		r = x->ino < y->ino ? -1 : x->ino > y->ino;
	if (!r)
		r = x->off < y->off ? -1 : x->off > y->off;
	return r;
}

/* same cause, same file, contiguous: one line */
static int dmg_same(const struct dmg_line *a, const struct dmg_line *b)
{
	return a->d->known == b->d->known && !strcmp(a->d->why, b->d->why) && a->ino == b->ino &&
	       a->off + a->len == b->off;
}

/*
 * Every file range that maps a damaged chunk, once per path: contiguous
 * ranges with the same cause (e.g. every chunk of one super-chunk) merge.
 */
static void report_damage(struct ck *ck)
{
	struct dmg_line *v = NULL;
	size_t n = 0, i, j, k;
	struct zf_hent *e;
	char hex[2 * ZF_CHUNK_ID_LEN + 1];

	zf_htab_foreach(&ck->dmg, e)
	{
		struct ck_dmg *d = e->val;

		if (!d->known)
			ck->rep->damaged_chunks++;
		v = zf_realloc(v, (n + d->nuse + 1) * sizeof(*v));
		for (i = 0; i < d->nuse; i++)
			v[n++] = (struct dmg_line){ d->use[i].ino, d->use[i].off, d->use[i].len, d };
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_dmg_line);
	for (i = 0; i < n; i = j) {
		struct ck_paths *p = zf_htab_find(&ck->paths, zf_mix64(v[i].ino), NULL, NULL);
		unsigned long long a = v[i].off, b;
		size_t np = p && p->n ? p->n : 1;
		char unreachable[64], chunks[80];

		for (j = i + 1; j < n && dmg_same(&v[j - 1], &v[j]); j++)
			;
		b = v[j - 1].off + v[j - 1].len - 1;
		chunk_hex(v[i].d->c, hex);
		hex[8] = 0;
		if (j - i > 1)
			snprintf(chunks, sizeof(chunks), "%zu chunks from %s..", j - i, hex);
		else
			snprintf(chunks, sizeof(chunks), "chunk %s..", hex);
		snprintf(unreachable, sizeof(unreachable), "<inode %llu, not reachable>",
			 (unsigned long long)v[i].ino);
		for (k = 0; k < np; k++) {
			const char *path = p && p->n ? p->v[k] : unreachable;

			if (v[i].d->known)
				ck_note(ck, "known damage: %s bytes %llu-%llu read as EIO (%s %s)", path,
					a, b, chunks, v[i].d->why);
			else
				ck_problem(ck, "damaged: %s bytes %llu-%llu (%s %s)", path, a, b,
					   chunks, v[i].d->why);
		}
	}
	free(v);
}

/* ---------------------------------------------------- skipped records */

static void want_note_paths(struct ck *ck)
{
	size_t i;

	for (i = 0; i < ck->fs->nsalv; i++)
		want_path(ck, ck->fs->salv[i].ino);
}

/* the file range a lost EXTENTS record mapped, if the table makes it plausible */
static void note_range(struct ck *ck, const struct zf_salvage_note *n)
{
	struct zf_inode *in;
	uint64_t a, b;

	if (n->type != ZF_REC_EXTENTS || n->verified || !n->ino)
		return;
	in = fs_inode(ck->fs, n->ino);
	if (!in || !S_ISREG(in->mode))
		return;
	if (!strncmp(n->file, "ckpt.", 5)) {
		/* a checkpoint maps a whole file in one record: it had no other */
		if (in->u.file->n || n->start != 0 || n->end != UINT64_MAX)
			return;
		a = 0;
		b = in->size;
	} else {
		a = n->start;
		b = n->end < in->size ? n->end : in->size;
	}
	if (a >= b)
		return;
	ck->ranges = zf_realloc(ck->ranges, (ck->nranges + 1) * sizeof(*ck->ranges));
	ck->ranges[ck->nranges++] = (struct ck_range){ n->ino, a, b, n };
}

static void report_notes(struct ck *ck)
{
	char tbuf[24], what[1400], paths[1024];
	size_t i;

	for (i = 0; i < ck->fs->nsalv; i++) {
		const struct zf_salvage_note *n = &ck->fs->salv[i];
		const char *type = fs_rec_name(n->type, tbuf, sizeof(tbuf));
		size_t k;

		if (n->off == 0 && n->type < 0) {
			ck_problem(ck, "metadata: '%s': %s (its records were read anyway)", n->file,
				   n->why);
			continue;
		}
		if (n->type == ZF_REC_DIRENT_ADD || n->type == ZF_REC_DIRENT_DEL)
			snprintf(what, sizeof(what), "%s '%s' in directory %llu: %s", type, n->name,
				 (unsigned long long)n->ino, path_list(ck, n->ino, paths, sizeof(paths)));
		else if (n->type == ZF_REC_EXTENTS && n->end == UINT64_MAX)
			snprintf(what, sizeof(what), "%s of inode %llu bytes %llu-end: %s", type,
				 (unsigned long long)n->ino, (unsigned long long)n->start,
				 path_list(ck, n->ino, paths, sizeof(paths)));
		else if (n->type == ZF_REC_EXTENTS)
			snprintf(what, sizeof(what), "%s of inode %llu bytes %llu-%llu: %s", type,
				 (unsigned long long)n->ino, (unsigned long long)n->start,
				 (unsigned long long)n->end - 1,
				 path_list(ck, n->ino, paths, sizeof(paths)));
		else if (n->ino)
			snprintf(what, sizeof(what), "%s of inode %llu: %s", type,
				 (unsigned long long)n->ino, path_list(ck, n->ino, paths, sizeof(paths)));
		else
			snprintf(what, sizeof(what), "%s", type);
		if (n->len == 0 && n->type == ZF_REC_EXTENTS)
			ck_problem(ck, "metadata: '%s': %s: %s", n->file, what, n->why);
		else if (n->len == 0)
			ck_problem(ck, "metadata: '%s' offset %llu: %s (record %llu on)", n->file,
				   (unsigned long long)n->off, n->why, (unsigned long long)n->seq);
		else
			ck_problem(ck, "metadata: '%s' offset %llu: record %llu (%s) %s (%s), %llu bytes "
				   "skipped", n->file, (unsigned long long)n->off,
				   (unsigned long long)n->seq, what,
				   n->verified ? "does not apply" : "is damaged", n->why,
				   (unsigned long long)n->len);
		k = ck->nranges;
		note_range(ck, n);
		if (ck->nranges > k) {
			const struct ck_range *r = &ck->ranges[k];
			struct ck_paths *p = zf_htab_find(&ck->paths, zf_mix64(r->ino), NULL, NULL);
			size_t j, np = p && p->n ? p->n : 1;

			for (j = 0; j < np; j++)
				ck_problem(ck, "damaged: %s bytes %llu-%llu (the mapping is lost with "
					   "record %llu of '%s')", p && p->n ? p->v[j] : "<unreachable>",
					   (unsigned long long)r->start, (unsigned long long)r->end - 1,
					   (unsigned long long)n->seq, n->file);
		}
	}
}

/* ---------------------------------------------------------- segment files */

/* segment files no chunk lives in: garbage (a crash during gc leaves some) */
static void check_seg_dir(struct ck *ck)
{
	uint64_t *used, bytes = 0, files = 0;
	size_t nused;
	struct dirent *de;
	DIR *d;
	int fd;

	fd = dup(ck->fs->segfd);
	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	rewinddir(d);
	used = fs_segments_used(ck->fs, &nused);
	while ((de = readdir(d))) {
		unsigned long long id;
		struct stat st;
		int n = 0;

		if (sscanf(de->d_name, "%16llx.zseg%n", &id, &n) != 1 || n != 21 ||
		    de->d_name[n] || fstatat(ck->fs->segfd, de->d_name, &st, 0) < 0)
			continue;
		if (bsearch(&(uint64_t){ id }, used, nused, sizeof(*used), zf_cmp_u64))
			continue;
		if (ck->fs->meta_lost) {
			ck_problem(ck, "seg/%s (%llu bytes) holds no chunk the metadata that could be "
				   "read knows; records are missing, so it is not garbage",
				   de->d_name, (unsigned long long)st.st_size);
			continue;
		}
		ck_note(ck, "garbage: seg/%s (%llu bytes) holds no chunk the metadata knows: "
			"reclaimable by zerofs gc", de->d_name, (unsigned long long)st.st_size);
		files++;
		bytes += st.st_size;
	}
	closedir(d);
	free(used);
	if (files > 1)
		ck_note(ck, "garbage: %llu segment files, %llu bytes in the dev-dir: reclaimable by "
			"zerofs gc", (unsigned long long)files, (unsigned long long)bytes);
}

/* ---------------------------------------------------------------- main */

static void ck_free(struct ck *ck)
{
	struct zf_hent *e;
	size_t i;

	zf_htab_foreach(&ck->refs, e) free(e->val);
	zf_htab_free(&ck->refs);
	zf_htab_foreach(&ck->counts, e) free(e->val);
	zf_htab_free(&ck->counts);
	zf_htab_foreach(&ck->dmg, e)
	{
		struct ck_dmg *d = e->val;

		free(d->use);
		free(d);
	}
	zf_htab_free(&ck->dmg);
	zf_htab_foreach(&ck->paths, e)
	{
		struct ck_paths *p = e->val;

		for (i = 0; i < p->n; i++)
			free(p->v[i]);
		free(p->v);
		free(p);
	}
	zf_htab_free(&ck->paths);
	free(ck->ranges);
	free(ck->drop_segs);
}

int zf_fs_check(struct zf_fs *fs, struct zf_check_report *rep)
{
	struct ck ck = { .fs = fs, .rep = rep };
	struct zf_inode *root;
	int r = 0;

	rep->errors = rep->notes = rep->repaired = rep->damaged_chunks = rep->unchecked = 0;
	rep->inodes = rep->dirents = rep->chunks = rep->superchunks = 0;
	/*
	 * Not counted as a core lock (fs_lock): the checker fetches and
	 * verifies bucket copies under it, which is fine because it runs on a
	 * dev-dir nothing else uses (fsck refuses a mounted one).
	 */
	zf_mutex_lock(&fs->lock);
	root = fs_inode(fs, ZF_ROOT_INO);
	if (!root || !S_ISDIR(root->mode)) {
		ck_problem(&ck, "the root directory is missing");
		goto out;
	}
	if (fs->ckpt_ref_errors)
		ck_problem(&ck, "checkpoint: %llu chunk reference counts disagree with its files%s",
			   (unsigned long long)fs->ckpt_ref_errors,
			   rep->repair ? " (rebuilt)" : "");
	if (fs->torn_bytes)
		ck_note(&ck, "the last log file ends in a torn commit (%llu bytes, a crash): %s",
			(unsigned long long)fs->torn_bytes,
			fs->readonly ? "a mount drops it" : "dropped");
	walk_tree(&ck);
	check_links(&ck);
	check_files(&ck);
	check_chunks(&ck);
	collect_uses(&ck);
	want_note_paths(&ck);
	find_paths(&ck);
	report_notes(&ck);
	report_damage(&ck);
	check_seg_dir(&ck);
	if (rep->repair && !fs->readonly)
		r = fs_repair(&ck);
out:
	zf_mutex_unlock(&fs->lock);
	ck_free(&ck);
	if (r < 0)
		return r;
	return rep->errors ? -EUCLEAN : 0;
}
