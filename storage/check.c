/*
 * storage/check.c - the consistency checker of the core (zerofs fsck)
 *
 * A tolerant (salvage) open notes every log or checkpoint record it had to
 * skip; each becomes a problem here, naming the file, offset, seq, type and
 * the paths of the inode it concerned. Then this walks the opened table
 * (seen through storage/fs_inspect.h, never its structures):
 *   - every inode is reachable from the root (or unlinked: pinned, or in a
 *     read-only check an orphan of a crash that the next mount reclaims);
 *   - every directory entry names an existing inode of the recorded type;
 *   - link counts equal directory references (directories: 2 + subdirs);
 *   - directory parent pointers match the entry that holds them;
 *   - extents are sorted, inside the file and inside their chunk;
 *   - chunk reference counts equal references from extents, and those the
 *     checkpoint recorded matched what it described;
 *   - every referenced chunk's bytes are where the index says, verified
 *     with verify_data, and every segment file holds a chunk
 *     (storage/check_chunks.c).
 * Damaged chunks are then named by the files that use them: a second pass
 * over the extents builds chunk -> (inode, byte ranges) for damaged chunks
 * only, and one walk of the tree gives every path of those inodes (hard
 * links included). Chunks an earlier repair marked damaged are notes, not
 * errors, as are segment files no chunk lives in (garbage for zerofs gc).
 * Each problem is one line that names what and where; rep->repair hands
 * the findings to storage/repair.c.
 *
 * Locking: holds fs->lock for the whole walk (fetches of evicted
 * super-chunks included: fsck has the filesystem to itself;
 * zf_fs_inspect_lock).
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "storage/check.h"
#include "storage/check_internal.h"
#include "storage/meta_format.h"

#define MAX_DEPTH 100000	/* directory depth walked for paths (a guard) */

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
 * entered is a set of inode numbers (the values are never read).
 */
static void paths_walk(struct ck *ck, uint64_t dir, struct zf_buf *path, int depth,
		       struct zf_htab *entered)
{
	struct zf_inspect_dirent de;
	uint32_t pos = 0;

	while (zf_fs_inspect_dirent(ck->fs, dir, &pos, &de) == 0) {
		struct zf_inspect_inode child;
		struct ck_paths *p;
		size_t mark = path->len;

		zf_buf_add(path, "/", 1);
		zf_buf_add(path, de.name, de.namelen);
		p = zf_htab_find(&ck->paths, zf_mix64(de.ino), NULL, NULL);
		if (p)
			paths_add(p, path);
		/* a directory is entered from the entry its parent pointer names */
		if (zf_fs_inspect_inode(ck->fs, de.ino, &child) == 0 && S_ISDIR(child.mode) &&
		    child.parent == dir && depth < MAX_DEPTH &&
		    !zf_htab_find(entered, zf_mix64(child.ino), NULL, NULL)) {
			zf_htab_insert(entered, zf_mix64(child.ino), ck);
			paths_walk(ck, child.ino, path, depth + 1, entered);
		}
		path->len = mark;
	}
}

/* one walk of the tree: every path of every inode asked for */
static void find_paths(struct ck *ck)
{
	struct zf_inspect_inode root;
	struct zf_buf path = { 0 };
	struct ck_paths *p;

	if (!ck->paths.n || zf_fs_inspect_inode(ck->fs, ZF_ROOT_INO, &root) < 0 ||
	    !S_ISDIR(root.mode))
		return;
	p = zf_htab_find(&ck->paths, zf_mix64(ZF_ROOT_INO), NULL, NULL);
	if (p) {
		zf_buf_add(&path, "/", 1);
		paths_add(p, &path);
		path.len = 0;
	}
	{
		struct zf_htab entered = { 0 };

		zf_htab_insert(&entered, zf_mix64(ZF_ROOT_INO), ck);
		paths_walk(ck, ZF_ROOT_INO, &path, 0, &entered);
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
		uint64_t dir = queue[head++];
		struct zf_inspect_inode d;
		struct zf_inspect_dirent de;
		uint32_t pos = 0, live = 0;

		if (zf_fs_inspect_inode(fs, dir, &d) < 0)
			continue; /* queued as a directory: cannot happen */
		while (zf_fs_inspect_dirent(fs, dir, &pos, &de) == 0) {
			struct zf_inspect_inode in;
			struct ck_ref *r;

			live++;
			ck->rep->dirents++;
			if (zf_fs_inspect_inode(fs, de.ino, &in) < 0) {
				ck_problem(ck, "directory %llu: entry '%s' names missing inode %llu",
					   (unsigned long long)dir, de.name,
					   (unsigned long long)de.ino);
				continue;
			}
			if (de.dtype != (in.mode & S_IFMT) >> 12)
				ck_problem(ck, "directory %llu: entry '%s' has the wrong type",
					   (unsigned long long)dir, de.name);
			if (!de.by_name)
				ck_problem(ck, "directory %llu: entry '%s' is not found by name",
					   (unsigned long long)dir, de.name);
			r = ref_get(ck, de.ino);
			r->links++;
			if (!r->parent)
				r->parent = dir;
			if (!S_ISDIR(in.mode))
				continue;
			ref_get(ck, dir)->subdirs++;
			if (r->reached) {
				ck_problem(ck, "directory %llu has more than one entry (again as '%s' "
					   "in %llu)", (unsigned long long)de.ino, de.name,
					   (unsigned long long)dir);
				continue;
			}
			r->reached = 1;
			if (in.parent != dir)
				ck_problem(ck, "directory %llu: parent is %llu, but its entry is in %llu",
					   (unsigned long long)de.ino, (unsigned long long)in.parent,
					   (unsigned long long)dir);
			if (tail == qcap) {
				qcap *= 2;
				queue = zf_realloc(queue, qcap * sizeof(*queue));
			}
			queue[tail++] = de.ino;
		}
		if (live != d.nents)
			ck_problem(ck, "directory %llu: entry count %u, found %u",
				   (unsigned long long)dir, d.nents, live);
	}
	free(queue);
}

static int check_links_of(void *ctx, const struct zf_inspect_inode *in)
{
	struct ck *ck = ctx;
	struct ck_ref *r = zf_htab_find(&ck->refs, zf_mix64(in->ino), NULL, NULL);
	uint32_t links = r ? r->links : 0, want;

	ck->rep->inodes++;
	/* unlinked: still open, or (read-only, after a crash) an orphan
	 * that the next writable open reclaims */
	if (in->nlink == 0 && links == 0 && (in->lookups || ck->st.w.readonly))
		return 0;
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
	return 0;
}

/* one file's extents, checked in order */
struct file_walk {
	struct ck *ck;
	const struct zf_inspect_inode *in;
	uint64_t prev, mapped;
};

static int check_extent(void *ctx, const struct zf_inspect_extent *x)
{
	struct file_walk *fw = ctx;
	struct ck *ck = fw->ck;
	unsigned long long ino = fw->in->ino;
	uint64_t *cnt;

	if (x->off < fw->prev || x->len == 0)
		ck_problem(ck, "inode %llu: extent at %llu overlaps or is empty", ino,
			   (unsigned long long)x->off);
	if (x->off + x->len > fw->in->size)
		ck_problem(ck, "inode %llu: extent at %llu beyond size %llu", ino,
			   (unsigned long long)x->off, (unsigned long long)fw->in->size);
	if ((uint64_t)x->coff + x->len > x->chunk_len)
		ck_problem(ck, "inode %llu: extent at %llu beyond its chunk", ino,
			   (unsigned long long)x->off);
	fw->prev = x->off + x->len;
	fw->mapped += x->len;
	cnt = zf_htab_find(&ck->counts, (uintptr_t)x->chunk, NULL, NULL);
	if (!cnt) {
		cnt = zf_calloc(2, sizeof(*cnt));
		cnt[0] = (uintptr_t)x->chunk;
		zf_htab_insert(&ck->counts, (uintptr_t)x->chunk, cnt);
	}
	cnt[1]++;
	return 0;
}

/* extents of every file; counts references per chunk into ck->counts */
static int check_file(void *ctx, const struct zf_inspect_inode *in)
{
	struct file_walk fw = { .ck = ctx, .in = in };

	if (!S_ISREG(in->mode))
		return 0;
	zf_fs_inspect_extents(fw.ck->fs, in->ino, check_extent, &fw);
	if (fw.mapped != in->mapped)
		ck_problem(fw.ck, "inode %llu: mapped bytes %llu, extents hold %llu",
			   (unsigned long long)in->ino, (unsigned long long)in->mapped,
			   (unsigned long long)fw.mapped);
	return 0;
}

/* -------------------------------------------------- naming the damage */

/* one file's extents, in the second pass */
struct use_walk {
	struct ck *ck;
	uint64_t ino;
};

static int collect_use(void *ctx, const struct zf_inspect_extent *x)
{
	struct use_walk *uw = ctx;
	struct ck *ck = uw->ck;
	struct ck_dmg *d = zf_htab_find(&ck->dmg, (uintptr_t)x->chunk, NULL, NULL);
	struct ck_use *u;

	if (!d)
		return 0;
	u = d->nuse ? &d->use[d->nuse - 1] : NULL;
	if (u && u->ino == uw->ino && u->off + u->len == x->off) {
		u->len += x->len; /* the same chunk again, right after */
		return 0;
	}
	if (d->nuse == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 4;
		d->use = zf_realloc(d->use, d->cap * sizeof(*d->use));
	}
	d->use[d->nuse++] = (struct ck_use){ uw->ino, x->off, x->len };
	want_path(ck, uw->ino);
	return 0;
}

/* second pass: which bytes of which files map a damaged chunk */
static int collect_uses(void *ctx, const struct zf_inspect_inode *in)
{
	struct use_walk uw = { ctx, in->ino };

	if (S_ISREG(in->mode))
		zf_fs_inspect_extents(uw.ck->fs, in->ino, collect_use, &uw);
	return 0;
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
		ck_chunk_hex(&v[i].d->c.id, hex);
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

	for (i = 0; i < ck->st.nnotes; i++)
		want_path(ck, ck->st.notes[i].ino);
}

/* the file range a lost EXTENTS record mapped, if the table makes it plausible */
static void note_range(struct ck *ck, const struct zf_salvage_note *n)
{
	struct zf_inspect_inode in;
	uint64_t a, b;

	if (n->type != ZF_REC_EXTENTS || n->verified || !n->ino)
		return;
	if (zf_fs_inspect_inode(ck->fs, n->ino, &in) < 0 || !S_ISREG(in.mode))
		return;
	if (!strncmp(n->file, "ckpt.", 5)) {
		/* a checkpoint maps a whole file in one record: it had no other */
		if (in.nextents || n->start != 0 || n->end != UINT64_MAX)
			return;
		a = 0;
		b = in.size;
	} else {
		a = n->start;
		b = n->end < in.size ? n->end : in.size;
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

	for (i = 0; i < ck->st.nnotes; i++) {
		const struct zf_salvage_note *n = &ck->st.notes[i];
		const char *type = zf_fs_inspect_rec_name(n->type, tbuf, sizeof(tbuf));
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
	struct zf_inspect_inode root;
	int r = 0;

	rep->errors = rep->notes = rep->repaired = rep->damaged_chunks = rep->unchecked = 0;
	rep->inodes = rep->dirents = rep->chunks = rep->superchunks = 0;
	zf_fs_inspect_lock(fs);
	zf_fs_inspect_state(fs, &ck.st);
	if (zf_fs_inspect_inode(fs, ZF_ROOT_INO, &root) < 0 || !S_ISDIR(root.mode)) {
		ck_problem(&ck, "the root directory is missing");
		goto out;
	}
	if (ck.st.ckpt_ref_errors)
		ck_problem(&ck, "checkpoint: %llu chunk reference counts disagree with its files%s",
			   (unsigned long long)ck.st.ckpt_ref_errors,
			   rep->repair ? " (rebuilt)" : "");
	if (ck.st.torn_bytes)
		ck_note(&ck, "the last log file ends in a torn commit (%llu bytes, a crash): %s",
			(unsigned long long)ck.st.torn_bytes,
			ck.st.w.readonly ? "a mount drops it" : "dropped");
	walk_tree(&ck);
	zf_fs_inspect_inodes(fs, check_links_of, &ck);
	zf_fs_inspect_inodes(fs, check_file, &ck);
	ck_check_chunks(&ck);
	zf_fs_inspect_inodes(fs, collect_uses, &ck);
	want_note_paths(&ck);
	find_paths(&ck);
	report_notes(&ck);
	report_damage(&ck);
	ck_check_seg_dir(&ck);
	if (rep->repair && !ck.st.w.readonly)
		r = fs_repair(&ck);
out:
	zf_fs_inspect_unlock(fs);
	ck_free(&ck);
	if (r < 0)
		return r;
	return rep->errors ? -EUCLEAN : 0;
}
