/*
 * storage/check.c - the consistency checker of the core (zerofs fsck)
 *
 * Log and checkpoint checksums are proven by zf_fs_open() (a bad record is
 * an error there, naming file and offset). This walks the opened table:
 *   - every inode is reachable from the root (or unlinked: pinned, or in a
 *     read-only check an orphan of a crash that the next mount reclaims);
 *   - every directory entry names an existing inode of the recorded type;
 *   - link counts equal directory references (directories: 2 + subdirs);
 *   - directory parent pointers match the entry that holds them;
 *   - extents are sorted, inside the file and inside their chunk;
 *   - chunk reference counts equal references from extents, and those the
 *     checkpoint recorded matched what it described;
 *   - every referenced chunk lies in a super-chunk whose segment exists;
 *     with verify_data the super-chunk is read, its checksums verified and
 *     the chunk re-hashed, and its table must list the chunk where the
 *     index says.
 * Each problem is reported as one line that names what and where.
 *
 * Locking: holds fs->lock for the whole walk.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/util.h"
#include "storage/fs_internal.h"

struct ck {
	struct zf_fs *fs;
	struct zf_check_report *rep;
	struct zf_htab refs;	/* ino -> struct ref */
};

struct ref {
	uint64_t ino;
	uint32_t links;		/* entries naming it */
	uint32_t subdirs;	/* for directories */
	uint64_t parent;	/* directory holding the (first) entry */
	int reached;
};

static void problem(struct ck *ck, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(struct ck *ck, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ck->rep->errors++;
	if (ck->rep->problem)
		ck->rep->problem(ck->rep->ctx, msg);
	else
		zf_err("%s", msg);
}

static struct ref *ref_get(struct ck *ck, uint64_t ino)
{
	struct ref *r = zf_htab_find(&ck->refs, zf_mix64(ino), NULL, NULL);

	if (!r) {
		r = zf_calloc(1, sizeof(*r));
		r->ino = ino;
		zf_htab_insert(&ck->refs, zf_mix64(ino), r);
	}
	return r;
}

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
			struct ref *r;

			if (!de)
				continue;
			live++;
			ck->rep->dirents++;
			in = fs_inode(fs, de->ino);
			if (!in) {
				problem(ck, "directory %llu: entry '%s' names missing inode %llu",
					(unsigned long long)dir->ino, de->name,
					(unsigned long long)de->ino);
				continue;
			}
			if (de->dtype != (in->mode & S_IFMT) >> 12)
				problem(ck, "directory %llu: entry '%s' has the wrong type",
					(unsigned long long)dir->ino, de->name);
			if (dir_find(d, de->name, de->namelen) != de)
				problem(ck, "directory %llu: entry '%s' is not found by name",
					(unsigned long long)dir->ino, de->name);
			r = ref_get(ck, de->ino);
			r->links++;
			if (!r->parent)
				r->parent = dir->ino;
			if (!S_ISDIR(in->mode))
				continue;
			ref_get(ck, dir->ino)->subdirs++;
			if (r->reached) {
				problem(ck, "directory %llu has more than one entry (again as '%s' in %llu)",
					(unsigned long long)de->ino, de->name,
					(unsigned long long)dir->ino);
				continue;
			}
			r->reached = 1;
			if (in->u.dir->parent != dir->ino)
				problem(ck, "directory %llu: parent is %llu, but its entry is in %llu",
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
			problem(ck, "directory %llu: entry count %u, found %u",
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
		struct ref *r = zf_htab_find(&ck->refs, zf_mix64(in->ino), NULL, NULL);
		uint32_t links = r ? r->links : 0, want;

		ck->rep->inodes++;
		/* unlinked: still open, or (read-only, after a crash) an orphan
		 * that the next writable open reclaims */
		if (in->nlink == 0 && links == 0 && (in->pins || ck->fs->readonly))
			continue;
		if (S_ISDIR(in->mode)) {
			want = in->ino == ZF_ROOT_INO || links ? 2 + (r ? r->subdirs : 0) : 0;
			if (in->nlink != want)
				problem(ck, "directory %llu: link count %u, expected %u",
					(unsigned long long)in->ino, in->nlink, want);
		} else if (in->nlink != links) {
			problem(ck, "inode %llu: link count %u, but %u directory entries",
				(unsigned long long)in->ino, in->nlink, links);
		}
		if (in->ino != ZF_ROOT_INO && links == 0)
			problem(ck, "inode %llu is not reachable from the root",
				(unsigned long long)in->ino);
	}
}

/* extents of every file; counts references per chunk into *counts */
static void check_files(struct ck *ck, struct zf_htab *counts)
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
				problem(ck, "inode %llu: extent at %llu overlaps or is empty",
					(unsigned long long)in->ino, (unsigned long long)x->off);
			if (x->off + x->len > in->size)
				problem(ck, "inode %llu: extent at %llu beyond size %llu",
					(unsigned long long)in->ino, (unsigned long long)x->off,
					(unsigned long long)in->size);
			if ((uint64_t)x->coff + x->len > x->c->len)
				problem(ck, "inode %llu: extent at %llu beyond its chunk",
					(unsigned long long)in->ino, (unsigned long long)x->off);
			prev = x->off + x->len;
			mapped += x->len;
			cnt = zf_htab_find(counts, (uintptr_t)x->c, NULL, NULL);
			if (!cnt) {
				cnt = zf_calloc(1, sizeof(*cnt) * 2);
				cnt[0] = (uintptr_t)x->c;
				zf_htab_insert(counts, (uintptr_t)x->c, cnt);
			}
			cnt[1]++;
		}
		if (mapped != f->mapped)
			problem(ck, "inode %llu: mapped bytes %llu, extents hold %llu",
				(unsigned long long)in->ino, (unsigned long long)f->mapped,
				(unsigned long long)mapped);
	}
}

static void chunk_hex(const struct zf_chunk *c, char *buf)
{
	int i;

	for (i = 0; i < ZF_CHUNK_ID_LEN; i++)
		sprintf(buf + 2 * i, "%02x", c->id.b[i]);
}

/* a super-chunk verified once: its result and its chunk table */
struct sc_seen {
	int err;		/* 0, or -errno from zf_segstore_verify */
	uint32_t n;
	struct zf_sc_chunk *tab;
};

/* verify c's super-chunk (once) and that its table lists c where the index says */
static int verify_chunk(struct ck *ck, struct zf_chunk *c, struct zf_htab *verified)
{
	struct zf_sc *sc = c->sc;
	struct sc_seen *v;
	uint32_t i, off = 0;

	v = zf_htab_find(verified, (uintptr_t)sc, NULL, NULL);
	if (!v) {
		v = zf_calloc(1, sizeof(*v));
		v->err = zf_segstore_verify(ck->fs->seg, &sc->loc, &v->tab, &v->n);
		zf_htab_insert(verified, (uintptr_t)sc, v);
		ck->rep->superchunks++;
	}
	if (v->err < 0)
		return v->err;
	for (i = 0; i < v->n; i++) {
		if (off == c->raw_off && v->tab[i].len == c->len &&
		    !memcmp(v->tab[i].id.b, c->id.b, ZF_CHUNK_ID_LEN))
			return 0;
		off += v->tab[i].len;
	}
	return -ENOENT;
}

static void check_chunks(struct ck *ck, struct zf_htab *counts)
{
	struct zf_fs *fs = ck->fs;
	struct zf_htab verified = { 0 };
	struct zf_hent *e;
	char hex[2 * ZF_CHUNK_ID_LEN + 1];

	zf_htab_foreach(&fs->chunks, e)
	{
		struct zf_chunk *c = e->val;
		uint64_t *cnt = zf_htab_find(counts, (uintptr_t)c, NULL, NULL);
		uint64_t want = cnt ? cnt[1] : 0;

		ck->rep->chunks++;
		if (c->refs != want) {
			chunk_hex(c, hex);
			problem(ck, "chunk %s: reference count %u, but %llu references", hex, c->refs,
				(unsigned long long)want);
		}
		if (!want)
			continue;
		if (!c->sc) {
			if (c->raw_off + (uint64_t)c->len > fs->pack.len) {
				chunk_hex(c, hex);
				problem(ck, "chunk %s: not in any super-chunk", hex);
			}
			continue;
		}
		if (ck->rep->verify_data) {
			int r = verify_chunk(ck, c, &verified);

			if (r < 0) {
				char seg[32];

				chunk_hex(c, hex);
				zf_segstore_name(c->sc->loc.seg, seg, sizeof(seg));
				problem(ck, "chunk %s: %s in super-chunk at '%s' offset %llu", hex,
					r == -ENOENT ? "missing" : "damaged", seg,
					(unsigned long long)c->sc->loc.off);
			}
		} else {
			struct stat st;
			char seg[32];

			zf_segstore_name(c->sc->loc.seg, seg, sizeof(seg));
			if (fstatat(fs->segfd, seg, &st, 0) < 0 && errno == ENOENT &&
			    zf_segstore_has_fetch(fs->seg)) {
				/* evicted: the bucket must serve it */
				if (verify_chunk(ck, c, &verified) < 0)
					problem(ck, "chunk %s: segment '%s' is neither local nor "
						"readable from the bucket", (chunk_hex(c, hex), hex), seg);
			} else if (fstatat(fs->segfd, seg, &st, 0) < 0 ||
			    (uint64_t)st.st_size < c->sc->loc.off + c->sc->loc.disk_len) {
				chunk_hex(c, hex);
				problem(ck, "chunk %s: segment '%s' is missing or too short", hex,
					seg);
			}
		}
	}
	zf_htab_foreach(&verified, e)
	{
		struct sc_seen *v = e->val;

		free(v->tab);
		free(v);
	}
	zf_htab_free(&verified);
}

int zf_fs_check(struct zf_fs *fs, struct zf_check_report *rep)
{
	struct ck ck = { .fs = fs, .rep = rep };
	struct zf_htab counts = { 0 };
	struct zf_hent *e;
	struct zf_inode *root;

	rep->errors = rep->inodes = rep->dirents = rep->chunks = rep->superchunks = 0;
	pthread_mutex_lock(&fs->lock);
	root = fs_inode(fs, ZF_ROOT_INO);
	if (!root || !S_ISDIR(root->mode)) {
		problem(&ck, "the root directory is missing");
		goto out;
	}
	if (fs->ckpt_ref_errors)
		problem(&ck, "checkpoint: %llu chunk reference counts disagree with its files",
			(unsigned long long)fs->ckpt_ref_errors);
	walk_tree(&ck);
	check_links(&ck);
	check_files(&ck, &counts);
	check_chunks(&ck, &counts);
out:
	pthread_mutex_unlock(&fs->lock);
	zf_htab_foreach(&ck.refs, e) free(e->val);
	zf_htab_free(&ck.refs);
	zf_htab_foreach(&counts, e) free(e->val);
	zf_htab_free(&counts);
	return rep->errors ? -EUCLEAN : 0;
}
