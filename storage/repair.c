/*
 * storage/repair.c - zerofs fsck --repair: act on what storage/check.c found
 *
 * The filesystem was opened writable with salvage: every record that
 * verified and applied is in the table, torn log tails are cut, the rest
 * was skipped (and reported). From there, in this order:
 *   1. reference counts are rebuilt from the files' extents (and the chunk
 *      index is made to hold every chunk an extent maps);
 *   2. inodes unreachable from the root move to /lost+found as #<ino>
 *      (created if missing); then every link count is set to the entries
 *      that name the inode (directories: 2 + subdirectories);
 *   3. a damaged local copy of a segment whose bucket copy verifies is
 *      dropped (reads fetch the bucket's copy); every other damaged or lost
 *      chunk is marked with a CHUNK_BAD record: reads of it return EIO and
 *      dedup never shares it (the next write of the same bytes stores a
 *      fresh copy, which heals it for every file);
 *   4. file ranges whose mapping was lost with a damaged EXTENTS record are
 *      mapped to new lost chunks, marked damaged: EIO, never stale bytes;
 *   5. a checkpoint of the repaired table; the log files it covers (with
 *      their damage) are removed, so the next mount opens cleanly.
 * Every record goes through fs_do(), like a live operation.
 *
 * Locking: called by zf_fs_check() with fs->lock held.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "common/endian.h"
#include "common/log.h"
#include "common/util.h"
#include "storage/check.h"
#include "storage/check_internal.h"
#include "storage/meta_format.h"

#define LOST_PIECE (1u << 30)	/* a lost range is mapped in pieces of 1 GiB (le32 lengths) */
#define BAD_PER_RECORD 65536u	/* ids per CHUNK_BAD record (1 MiB) */
#define LF_NAME "lost+found"

/* 1. reference counts and the index, from the files */
static void rebuild_refs(struct ck *ck)
{
	struct zf_fs *fs = ck->fs;
	struct zf_hent *e;
	uint64_t fixed = 0;

	zf_htab_foreach(&fs->chunks, e)
	{
		struct zf_chunk *c = e->val;
		uint64_t *cnt = zf_htab_find(&ck->counts, (uintptr_t)c, NULL, NULL);
		uint32_t want = cnt ? (uint32_t)cnt[1] : 0;

		if (c->refs != want) {
			c->refs = want;
			fixed++;
		}
	}
	zf_htab_foreach(&fs->inodes, e)
	{
		struct zf_inode *in = e->val;
		uint64_t mapped = 0;
		uint32_t i;

		if (!S_ISREG(in->mode))
			continue;
		for (i = 0; i < in->u.file->n; i++) {
			struct zf_extent *x = &in->u.file->ext[i];

			mapped += x->len;
			if (fs_chunk_find(fs, &x->c->id) != x->c) {
				zf_htab_insert(&fs->chunks, zf_get64_id(&x->c->id), x->c);
				fixed++;
			}
		}
		if (in->u.file->mapped != mapped) {
			in->u.file->mapped = mapped;
			fixed++;
		}
	}
	fs->ckpt_ref_errors = 0;
	if (fixed) {
		ck->rep->repaired += fixed;
		ck_note(ck, "repair: rebuilt %llu chunk reference counts and index entries",
			(unsigned long long)fixed);
	}
}

static void do_rec(struct zf_fs *fs, uint8_t type, struct zf_buf *b)
{
	fs_do(fs, type, b);
	fs_txn_end(fs);
	b->len = 0;
}

static void do_dirent(struct zf_fs *fs, uint64_t parent, uint64_t ino, const char *name,
		      struct zf_buf *b)
{
	size_t nl = strlen(name);
	uint8_t *p = zf_buf_grow(b, 18 + nl);

	zf_put64(p, parent);
	zf_put64(p + 8, ino);
	zf_put16(p + 16, nl);
	memcpy(p + 18, name, nl);
	do_rec(fs, ZF_REC_DIRENT_ADD, b);
}

/* /lost+found, created when missing; 0 when a non-directory holds the name */
static uint64_t lost_found(struct ck *ck, struct zf_buf *b)
{
	struct zf_fs *fs = ck->fs;
	struct zf_inode *root = fs_inode(fs, ZF_ROOT_INO), lf = { 0 };
	struct zf_dirent *de = dir_find(root->u.dir, LF_NAME, strlen(LF_NAME));
	struct timespec now = zf_now();

	if (de) {
		struct zf_inode *in = fs_inode(fs, de->ino);

		return in && S_ISDIR(in->mode) ? in->ino : 0;
	}
	lf.ino = fs->next_ino;
	lf.mode = S_IFDIR | 0700;
	lf.nlink = 2;
	lf.gen = 1;
	lf.atime = lf.mtime = lf.ctime = now.tv_sec;
	lf.atime_ns = lf.mtime_ns = lf.ctime_ns = now.tv_nsec;
	rec_inode(b, &lf);
	do_rec(fs, ZF_REC_INODE, b);
	do_dirent(fs, ZF_ROOT_INO, lf.ino, LF_NAME, b);
	return lf.ino;
}

/* 2a. inodes no reachable entry names: the tops of unreachable subtrees move */
static void move_unreachable(struct ck *ck, struct zf_buf *b)
{
	struct zf_fs *fs = ck->fs;
	struct zf_htab named = { 0 };
	uint64_t *tops = NULL, lf = 0;
	size_t ntops = 0, i;
	struct zf_hent *e;

	/* entries of unreachable directories name inodes that are not tops */
	zf_htab_foreach(&fs->inodes, e)
	{
		struct zf_inode *in = e->val;
		struct ck_ref *r = zf_htab_find(&ck->refs, zf_mix64(in->ino), NULL, NULL);
		uint32_t k;

		if (!S_ISDIR(in->mode) || in->ino == ZF_ROOT_INO || (r && r->links))
			continue;
		for (k = 0; k < in->u.dir->nslot; k++)
			if (in->u.dir->slot[k])
				zf_htab_insert(&named, zf_mix64(in->u.dir->slot[k]->ino), in);
	}
	zf_htab_foreach(&fs->inodes, e)
	{
		struct zf_inode *in = e->val;
		struct ck_ref *r = zf_htab_find(&ck->refs, zf_mix64(in->ino), NULL, NULL);

		if (in->ino == ZF_ROOT_INO || (r && r->links) ||
		    zf_htab_find(&named, zf_mix64(in->ino), NULL, NULL))
			continue;
		tops = zf_realloc(tops, (ntops + 1) * sizeof(*tops));
		tops[ntops++] = in->ino;
	}
	zf_htab_free(&named);
	if (ntops)
		lf = lost_found(ck, b);
	if (ntops && !lf)
		ck_problem(ck, "cannot repair: '/%s' is not a directory; %zu unreachable inodes "
			   "stay where they are", LF_NAME, ntops);
	for (i = 0; i < ntops && lf; i++) {
		struct zf_dir *d = fs_inode(fs, lf)->u.dir;
		char name[48];
		int n = 0;

		snprintf(name, sizeof(name), "#%llu", (unsigned long long)tops[i]);
		while (dir_find(d, name, strlen(name)))
			snprintf(name, sizeof(name), "#%llu.%d", (unsigned long long)tops[i], ++n);
		do_dirent(fs, lf, tops[i], name, b);
		ck->rep->repaired++;
		ck_note(ck, "repair: inode %llu was not reachable: now /%s/%s",
			(unsigned long long)tops[i], LF_NAME, name);
	}
	free(tops);
}

/* 2b. link counts = entries naming the inode (directories: 2 + subdirectories) */
static void fix_links(struct ck *ck, struct zf_buf *b)
{
	struct zf_fs *fs = ck->fs;
	struct zf_htab cnt = { 0 };
	struct zf_hent *e;

	zf_htab_foreach(&fs->inodes, e)
	{
		struct zf_inode *in = e->val;
		uint32_t k;

		if (!S_ISDIR(in->mode))
			continue;
		for (k = 0; k < in->u.dir->nslot; k++) {
			struct zf_dirent *de = in->u.dir->slot[k];
			uint32_t *c, *pc;

			if (!de)
				continue;
			c = zf_htab_find(&cnt, zf_mix64(de->ino), NULL, NULL);
			if (!c) {
				c = zf_calloc(2, sizeof(*c));
				zf_htab_insert(&cnt, zf_mix64(de->ino), c);
			}
			c[0]++;
			if (de->dtype != S_IFDIR >> 12)
				continue;
			pc = zf_htab_find(&cnt, zf_mix64(in->ino), NULL, NULL);
			if (!pc) {
				pc = zf_calloc(2, sizeof(*pc));
				zf_htab_insert(&cnt, zf_mix64(in->ino), pc);
			}
			pc[1]++;
		}
	}
	zf_htab_foreach(&fs->inodes, e)
	{
		struct zf_inode *in = e->val, tmp;
		uint32_t *c = zf_htab_find(&cnt, zf_mix64(in->ino), NULL, NULL);
		uint32_t links = c ? c[0] : 0, want;

		if (!links && in->ino != ZF_ROOT_INO)
			continue; /* still unreachable (a cycle): reported already */
		want = S_ISDIR(in->mode) ? 2 + (c ? c[1] : 0) : links;
		if (in->nlink == want)
			continue;
		tmp = *in;
		tmp.nlink = want;
		rec_inode(b, &tmp);
		do_rec(fs, ZF_REC_INODE, b);
		ck->rep->repaired++;
		ck_note(ck, "repair: inode %llu: link count %u -> %u", (unsigned long long)in->ino,
			in->nlink, want);
	}
	zf_htab_foreach(&cnt, e) free(e->val);
	zf_htab_free(&cnt);
}

static int has(const uint64_t *v, size_t n, uint64_t x)
{
	return n && bsearch(&x, v, n, sizeof(*v), zf_cmp_u64) != NULL;
}

/* CHUNK_BAD records for ids[0..n) */
static void mark_bad(struct zf_fs *fs, const struct zf_chunk_id *ids, size_t n, struct zf_buf *b)
{
	size_t i, k;

	for (i = 0; i < n; i += k) {
		k = n - i < BAD_PER_RECORD ? n - i : BAD_PER_RECORD;
		zf_put32(zf_buf_grow(b, 4), k);
		memcpy(zf_buf_grow(b, k * ZF_CHUNK_ID_LEN), ids + i, k * ZF_CHUNK_ID_LEN);
		do_rec(fs, ZF_REC_CHUNK_BAD, b);
	}
}

/* 3. damaged chunks: drop damaged local copies the bucket can replace, mark the rest */
static void mark_damage(struct ck *ck, struct zf_buf *b)
{
	struct zf_fs *fs = ck->fs;
	uint64_t *hard = NULL, *soft = NULL;
	size_t nhard = 0, nsoft = 0, nids = 0, i;
	struct zf_chunk_id *ids = NULL;
	struct zf_hent *e;

	/* a local copy goes only when the bucket replaces all its damage */
	zf_htab_foreach(&ck->dmg, e)
	{
		struct ck_dmg *d = e->val;

		if (d->known || !d->c->sc)
			continue;
		if (d->local_only) {
			soft = zf_realloc(soft, (nsoft + 1) * sizeof(*soft));
			soft[nsoft++] = d->c->sc->loc.seg;
		} else {
			hard = zf_realloc(hard, (nhard + 1) * sizeof(*hard));
			hard[nhard++] = d->c->sc->loc.seg;
		}
	}
	if (nhard)
		qsort(hard, nhard, sizeof(*hard), zf_cmp_u64);
	if (nsoft)
		qsort(soft, nsoft, sizeof(*soft), zf_cmp_u64);
	for (i = 0; i < nsoft; i++) {
		char seg[32];
		int r;

		if ((i && soft[i] == soft[i - 1]) || has(hard, nhard, soft[i]))
			continue;
		zf_segstore_name(soft[i], seg, sizeof(seg));
		r = soft[i] == fs->open_seg ? -EBUSY : zf_segstore_evict(fs->seg, soft[i]);
		if (r < 0) {
			ck_note(ck, "repair: cannot drop the damaged local copy seg/%s: %s", seg,
				strerror(-r));
			continue;
		}
		ck->drop_segs = zf_realloc(ck->drop_segs, (ck->ndrop + 1) * sizeof(uint64_t));
		ck->drop_segs[ck->ndrop++] = soft[i];
		ck->rep->repaired++;
		ck_note(ck, "repair: dropped the damaged local copy seg/%s: reads fetch the bucket's "
			"good copy", seg);
	}
	zf_htab_foreach(&ck->dmg, e)
	{
		struct ck_dmg *d = e->val;

		if (d->known || (d->local_only && d->c->sc &&
				 has(ck->drop_segs, ck->ndrop, d->c->sc->loc.seg)))
			continue;
		ids = zf_realloc(ids, (nids + 1) * sizeof(*ids));
		ids[nids++] = d->c->id;
	}
	if (nids) {
		mark_bad(fs, ids, nids, b);
		ck->rep->repaired += nids;
		ck_note(ck, "repair: marked %zu damaged chunks: reads of the ranges named above "
			"return EIO", nids);
	}
	free(ids);
	free(hard);
	free(soft);
}

/* a lost chunk's id for piece off of inode ino: keyed like nothing real */
static void lost_id(uint64_t ino, uint64_t off, struct zf_chunk_id *ret)
{
	uint8_t msg[32] = "zerofs lost range";
	XXH128_hash_t h;

	zf_put64(msg + 16, ino);
	zf_put64(msg + 24, off);
	h = XXH3_128bits_withSeed(msg, sizeof(msg), 0x6c6f7374ull);
	zf_put64(ret->b, h.low64);
	zf_put64(ret->b + 8, h.high64);
}

/* 4. ranges whose mapping was lost: lost chunks, marked damaged */
static void mark_ranges(struct ck *ck, struct zf_buf *b)
{
	struct zf_fs *fs = ck->fs;
	size_t i;

	for (i = 0; i < ck->nranges; i++) {
		const struct ck_range *r = &ck->ranges[i];
		uint64_t n = (r->end - r->start + LOST_PIECE - 1) / LOST_PIECE, k;
		struct zf_chunk_id *ids = zf_malloc(n * sizeof(*ids));
		struct zf_extent *ext = zf_malloc(n * sizeof(*ext));

		for (k = 0; k < n; k++)
			lost_id(r->ino, r->start + k * LOST_PIECE, &ids[k]);
		mark_bad(fs, ids, n, b);
		for (k = 0; k < n; k++) {
			uint64_t off = r->start + k * LOST_PIECE;

			ext[k].off = off;
			ext[k].len = r->end - off < LOST_PIECE ? r->end - off : LOST_PIECE;
			ext[k].coff = 0;
			ext[k].c = fs_chunk_find(fs, &ids[k]);
		}
		rec_extents(b, r->ino, r->start, r->end, ext, n);
		do_rec(fs, ZF_REC_EXTENTS, b);
		ck->rep->repaired++;
		ck_note(ck, "repair: inode %llu bytes %llu-%llu (mapping lost) marked damaged: reads "
			"return EIO", (unsigned long long)r->ino, (unsigned long long)r->start,
			(unsigned long long)r->end - 1);
		free(ids);
		free(ext);
	}
}

int fs_repair(struct ck *ck)
{
	struct zf_fs *fs = ck->fs;
	struct zf_buf b = { 0 };
	int r;

	/* nothing wrong in the table: a repair changes nothing (the log,
	 * which the bucket's pieces are compared with, stays as it is) */
	if (!ck->rep->errors && !fs->nsalv && !fs->torn_bytes)
		return 0;
	rebuild_refs(ck);
	move_unreachable(ck, &b);
	fix_links(ck, &b);
	mark_damage(ck, &b);
	mark_ranges(ck, &b);
	/* the records salvage skipped are gone for good with the old logs */
	ck->rep->repaired += fs->nsalv;
	zf_buf_free(&b);
	r = fs_checkpoint_locked(fs);
	if (r < 0)
		ck_problem(ck, "cannot write the repaired checkpoint: %s", strerror(-r));
	else
		ck_note(ck, "repair: wrote a checkpoint of the repaired table; the log files it "
			"covers are removed");
	return r;
}
