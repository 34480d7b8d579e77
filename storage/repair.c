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
 * The changes are the core's (storage/fs_inspect.h, zf_fs_fix_*): every
 * record goes through fs_do(), like a live operation.
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
#include "common/util.h"
#include "storage/check.h"
#include "storage/check_internal.h"

#define LOST_PIECE (1u << 30)	/* a lost range is mapped in pieces of 1 GiB (le32 lengths) */
#define LF_NAME "lost+found"

/* the extents the check counted for chunk c */
static uint32_t extents_of(void *ctx, const struct zf_chunk *c)
{
	struct ck *ck = ctx;
	uint64_t *cnt = zf_htab_find(&ck->counts, (uintptr_t)c, NULL, NULL);

	return cnt ? (uint32_t)cnt[1] : 0;
}

/* 1. reference counts and the index, from the files */
static void rebuild_refs(struct ck *ck)
{
	uint64_t fixed = zf_fs_fix_refs(ck->fs, extents_of, ck);

	if (fixed) {
		ck->rep->repaired += fixed;
		ck_note(ck, "repair: rebuilt %llu chunk reference counts and index entries",
			(unsigned long long)fixed);
	}
}

/* /lost+found, created when missing; 0 when a non-directory holds the name */
static uint64_t lost_found(struct ck *ck)
{
	struct zf_inspect_inode in;
	uint64_t ino;

	if (zf_fs_inspect_lookup(ck->fs, ZF_ROOT_INO, LF_NAME, &ino) == 0)
		return zf_fs_inspect_inode(ck->fs, ino, &in) == 0 && S_ISDIR(in.mode) ? ino : 0;
	return zf_fs_fix_mkdir(ck->fs, ZF_ROOT_INO, LF_NAME, 0700, &ino) == 0 ? ino : 0;
}

static int linked(struct ck *ck, uint64_t ino)
{
	struct ck_ref *r = zf_htab_find(&ck->refs, zf_mix64(ino), NULL, NULL);

	return r && r->links;
}

/* the tops of unreachable subtrees */
struct tops {
	struct ck *ck;
	struct zf_htab named;	/* inodes an unreachable directory names (a set) */
	uint64_t *v;
	size_t n;
};

/* entries of unreachable directories name inodes that are not tops */
static int name_children(void *ctx, const struct zf_inspect_inode *in)
{
	struct tops *t = ctx;
	struct zf_inspect_dirent de;
	uint32_t pos = 0;

	if (!S_ISDIR(in->mode) || in->ino == ZF_ROOT_INO || linked(t->ck, in->ino))
		return 0;
	while (zf_fs_inspect_dirent(t->ck->fs, in->ino, &pos, &de) == 0)
		zf_htab_insert(&t->named, zf_mix64(de.ino), t);
	return 0;
}

static int find_top(void *ctx, const struct zf_inspect_inode *in)
{
	struct tops *t = ctx;

	if (in->ino == ZF_ROOT_INO || linked(t->ck, in->ino) ||
	    zf_htab_find(&t->named, zf_mix64(in->ino), NULL, NULL))
		return 0;
	t->v = zf_realloc(t->v, (t->n + 1) * sizeof(*t->v));
	t->v[t->n++] = in->ino;
	return 0;
}

/* 2a. inodes no reachable entry names: the tops of unreachable subtrees move */
static void move_unreachable(struct ck *ck)
{
	struct tops t = { .ck = ck };
	uint64_t lf = 0;
	size_t i;

	zf_fs_inspect_inodes(ck->fs, name_children, &t);
	zf_fs_inspect_inodes(ck->fs, find_top, &t);
	zf_htab_free(&t.named);
	if (t.n)
		lf = lost_found(ck);
	if (t.n && !lf)
		ck_problem(ck, "cannot repair: '/%s' is not a directory; %zu unreachable inodes "
			   "stay where they are", LF_NAME, t.n);
	for (i = 0; i < t.n && lf; i++) {
		char name[48];
		int n = 0;

		snprintf(name, sizeof(name), "#%llu", (unsigned long long)t.v[i]);
		while (zf_fs_fix_link(ck->fs, lf, t.v[i], name) == -EEXIST)
			snprintf(name, sizeof(name), "#%llu.%d", (unsigned long long)t.v[i], ++n);
		ck->rep->repaired++;
		ck_note(ck, "repair: inode %llu was not reachable: now /%s/%s",
			(unsigned long long)t.v[i], LF_NAME, name);
	}
	free(t.v);
}

/* link counts as the entries have them, and the counts to change */
struct links {
	struct ck *ck;
	struct zf_htab cnt;	/* ino -> uint32_t[2]: entries naming it, subdirectories */
	struct nlink_fix {
		uint64_t ino;
		uint32_t from, to;
	} *fix;
	size_t nfix;
};

static uint32_t *links_of(struct links *l, uint64_t ino)
{
	uint32_t *c = zf_htab_find(&l->cnt, zf_mix64(ino), NULL, NULL);

	if (!c) {
		c = zf_calloc(2, sizeof(*c));
		zf_htab_insert(&l->cnt, zf_mix64(ino), c);
	}
	return c;
}

static int count_entries(void *ctx, const struct zf_inspect_inode *in)
{
	struct links *l = ctx;
	struct zf_inspect_dirent de;
	uint32_t pos = 0;

	if (!S_ISDIR(in->mode))
		return 0;
	while (zf_fs_inspect_dirent(l->ck->fs, in->ino, &pos, &de) == 0) {
		links_of(l, de.ino)[0]++;
		if (de.dtype == S_IFDIR >> 12)
			links_of(l, in->ino)[1]++;
	}
	return 0;
}

static int find_wrong_count(void *ctx, const struct zf_inspect_inode *in)
{
	struct links *l = ctx;
	uint32_t *c = zf_htab_find(&l->cnt, zf_mix64(in->ino), NULL, NULL);
	uint32_t links = c ? c[0] : 0, want;

	if (!links && in->ino != ZF_ROOT_INO)
		return 0; /* still unreachable (a cycle): reported already */
	want = S_ISDIR(in->mode) ? 2 + (c ? c[1] : 0) : links;
	if (in->nlink == want)
		return 0;
	l->fix = zf_realloc(l->fix, (l->nfix + 1) * sizeof(*l->fix));
	l->fix[l->nfix++] = (struct nlink_fix){ in->ino, in->nlink, want };
	return 0;
}

/* 2b. link counts = entries naming the inode (directories: 2 + subdirectories) */
static void fix_links(struct ck *ck)
{
	struct links l = { .ck = ck };
	struct zf_hent *e;
	size_t i;

	zf_fs_inspect_inodes(ck->fs, count_entries, &l);
	zf_fs_inspect_inodes(ck->fs, find_wrong_count, &l);
	for (i = 0; i < l.nfix; i++) {
		zf_fs_fix_nlink(ck->fs, l.fix[i].ino, l.fix[i].to);
		ck->rep->repaired++;
		ck_note(ck, "repair: inode %llu: link count %u -> %u",
			(unsigned long long)l.fix[i].ino, l.fix[i].from, l.fix[i].to);
	}
	free(l.fix);
	zf_htab_foreach(&l.cnt, e) free(e->val);
	zf_htab_free(&l.cnt);
}

static int has(const uint64_t *v, size_t n, uint64_t x)
{
	return n && bsearch(&x, v, n, sizeof(*v), zf_cmp_u64) != NULL;
}

/* 3. damaged chunks: drop damaged local copies the bucket can replace, mark the rest */
static void mark_damage(struct ck *ck)
{
	uint64_t *hard = NULL, *soft = NULL;
	size_t nhard = 0, nsoft = 0, nids = 0, i;
	struct zf_chunk_id *ids = NULL;
	struct zf_hent *e;

	/* a local copy goes only when the bucket replaces all its damage */
	zf_htab_foreach(&ck->dmg, e)
	{
		struct ck_dmg *d = e->val;

		if (d->known || !d->c.located)
			continue;
		if (d->local_only) {
			soft = zf_realloc(soft, (nsoft + 1) * sizeof(*soft));
			soft[nsoft++] = d->c.loc.seg;
		} else {
			hard = zf_realloc(hard, (nhard + 1) * sizeof(*hard));
			hard[nhard++] = d->c.loc.seg;
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
		r = soft[i] == ck->st.w.open_seg ? -EBUSY : zf_segstore_evict(ck->st.w.seg, soft[i]);
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

		if (d->known || (d->local_only && d->c.located &&
				 has(ck->drop_segs, ck->ndrop, d->c.loc.seg)))
			continue;
		ids = zf_realloc(ids, (nids + 1) * sizeof(*ids));
		ids[nids++] = d->c.id;
	}
	if (nids) {
		zf_fs_fix_mark_bad(ck->fs, ids, nids);
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
static void mark_ranges(struct ck *ck)
{
	size_t i;

	for (i = 0; i < ck->nranges; i++) {
		const struct ck_range *r = &ck->ranges[i];
		uint64_t n = (r->end - r->start + LOST_PIECE - 1) / LOST_PIECE, k;
		struct zf_chunk_id *ids = zf_malloc(n * sizeof(*ids));

		for (k = 0; k < n; k++)
			lost_id(r->ino, r->start + k * LOST_PIECE, &ids[k]);
		zf_fs_fix_mark_bad(ck->fs, ids, n);
		zf_fs_fix_map(ck->fs, r->ino, r->start, r->end, ids, n, LOST_PIECE);
		ck->rep->repaired++;
		ck_note(ck, "repair: inode %llu bytes %llu-%llu (mapping lost) marked damaged: reads "
			"return EIO", (unsigned long long)r->ino, (unsigned long long)r->start,
			(unsigned long long)r->end - 1);
		free(ids);
	}
}

int fs_repair(struct ck *ck)
{
	int r;

	/* nothing wrong in the table: a repair changes nothing (the log,
	 * which the bucket's pieces are compared with, stays as it is) */
	if (!ck->rep->errors && !ck->st.nnotes && !ck->st.torn_bytes)
		return 0;
	rebuild_refs(ck);
	move_unreachable(ck);
	fix_links(ck);
	mark_damage(ck);
	mark_ranges(ck);
	/* the records salvage skipped are gone for good with the old logs */
	ck->rep->repaired += ck->st.nnotes;
	r = zf_fs_fix_checkpoint(ck->fs);
	if (r < 0)
		ck_problem(ck, "cannot write the repaired checkpoint: %s", strerror(-r));
	else
		ck_note(ck, "repair: wrote a checkpoint of the repaired table; the log files it "
			"covers are removed");
	return r;
}
