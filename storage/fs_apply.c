/*
 * storage/fs_apply.c - the storage core's table and the one function that
 * changes it: fs_apply() applies a metadata record (inode, entry, extents,
 * xattr, super-chunk, seal, chunk deletion or damage) to the in-memory
 * table. Live operations (fs_do, fs_log_seal, fs_log_sc) and replay
 * (fs_replay.c) both go through it, so the table after replay is the table
 * before a crash by construction.
 *
 * Also here: lookups in the table (inodes, chunks, entries) and the record
 * encoders the operations share (rec_inode, rec_extents).
 *
 * A record that does not fit the table is -EBADMSG with its reason in an
 * explicit error object (struct fs_apply_err); a live record is validated
 * before it is made and cannot fail. Locking: fs->lock held throughout.
 * Format: docs/FORMAT.md "Records".
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
#include "storage/fs_internal.h"
#include "storage/meta_format.h"

/* ---------------------------------------------------------------- lookup */

struct zf_inode *fs_inode(struct zf_fs *fs, uint64_t ino)
{
	return zf_htab_find(&fs->inodes, zf_mix64(ino), NULL, NULL);
}

int fs_file_inode(struct zf_fs *fs, uint64_t ino, struct zf_inode **ret)
{
	struct zf_inode *in = fs_inode(fs, ino);

	if (!in)
		return -ENOENT;
	if (!S_ISREG(in->mode))
		return S_ISDIR(in->mode) ? -EISDIR : -EINVAL;
	*ret = in;
	return 0;
}

static int chunk_eq(const void *val, const void *key)
{
	return memcmp(((const struct zf_chunk *)val)->id.b, key, ZF_CHUNK_ID_LEN) == 0;
}

static uint64_t chunk_hash(const struct zf_chunk_id *id)
{
	return zf_get64(id->b);
}

struct zf_chunk *fs_chunk_find(struct zf_fs *fs, const struct zf_chunk_id *id)
{
	return zf_htab_find(&fs->chunks, chunk_hash(id), chunk_eq, id->b);
}

static int dirent_eq(const void *val, const void *key)
{
	const struct zf_dirent *de = val;

	return strcmp(de->name, key) == 0;
}

struct zf_dirent *dir_find(struct zf_dir *d, const char *name, size_t len)
{
	return zf_htab_find(&d->names, XXH3_64bits(name, len), dirent_eq, name);
}

/* ---------------------------------------------------------- record codecs */

void rec_inode(struct zf_buf *b, const struct zf_inode *in)
{
	uint32_t ll = S_ISLNK(in->mode) ? strlen(in->u.link) : 0;
	uint8_t *p = zf_buf_grow(b, ZF_REC_INODE_FIXED + ll);

	zf_put64(p + 0, in->ino);
	zf_put64(p + 8, in->size);
	zf_put64(p + 16, in->rdev);
	zf_put32(p + 24, in->mode);
	zf_put32(p + 28, in->uid);
	zf_put32(p + 32, in->gid);
	zf_put32(p + 36, in->nlink);
	zf_put32(p + 40, in->gen);
	zf_put32(p + 44, in->flags);
	zf_put64(p + 48, in->atime);
	zf_put32(p + 56, in->atime_ns);
	zf_put64(p + 60, in->mtime);
	zf_put32(p + 68, in->mtime_ns);
	zf_put64(p + 72, in->ctime);
	zf_put32(p + 80, in->ctime_ns);
	zf_put32(p + 84, ll);
	if (ll)
		memcpy(p + 88, in->u.link, ll);
}

void rec_extents(struct zf_buf *b, uint64_t ino, uint64_t start, uint64_t end,
		 const struct zf_extent *ext, uint32_t n)
{
	uint8_t *p = zf_buf_grow(b, 28 + (size_t)n * ZF_REC_EXT_SIZE);
	uint32_t i;

	zf_put64(p, ino);
	zf_put64(p + 8, start);
	zf_put64(p + 16, end);
	zf_put32(p + 24, n);
	for (i = 0; i < n; i++) {
		uint8_t *e = p + 28 + (size_t)i * ZF_REC_EXT_SIZE;

		zf_put64(e, ext[i].off);
		zf_put32(e + 8, ext[i].len);
		zf_put32(e + 12, ext[i].coff);
		memcpy(e + 16, ext[i].c->id.b, ZF_CHUNK_ID_LEN);
	}
}

/* ------------------------------------------------------------ the applier */

/* a record that does not fit the table: -EBADMSG, why in err (logged
 * unless err->quiet; err NULL: a live record, always logged) */
static int bad(struct fs_apply_err *err, const char *what, uint64_t ino)
{
	if (err)
		err->why = what;
	if (!err || !err->quiet)
		zf_err("inconsistent metadata record: %s (inode %llu)", what,
		       (unsigned long long)ino);
	return -EBADMSG;
}

const char *fs_rec_name(int type, char *buf, size_t len)
{
	static const char *const names[] = {
		[ZF_REC_INODE] = "INODE",	  [ZF_REC_INODE_DEL] = "INODE_DEL",
		[ZF_REC_DIRENT_ADD] = "DIRENT_ADD", [ZF_REC_DIRENT_DEL] = "DIRENT_DEL",
		[ZF_REC_EXTENTS] = "EXTENTS",	  [ZF_REC_XATTR_SET] = "XATTR_SET",
		[ZF_REC_XATTR_DEL] = "XATTR_DEL",  [ZF_REC_SC] = "SC",
		[ZF_REC_SEG_SEAL] = "SEG_SEAL",	  [ZF_REC_STATE] = "STATE",
		[ZF_REC_END] = "END",		  [ZF_REC_CHUNK_DEL] = "CHUNK_DEL",
		[13] = "SC_MOVE",		  [14] = "SEG_DROP",
		[ZF_REC_CHUNK_BAD] = "CHUNK_BAD",
	};

	if (type > 0 && type < (int)(sizeof(names) / sizeof(names[0])) && names[type])
		return names[type];
	if (type < 0)
		return "unknown record";
	snprintf(buf, len, "record type %d", type);
	return buf;
}

static void chunk_unref(struct zf_chunk *c)
{
	ZF_BUG_ON(c->refs == 0);
	c->refs--;
}

static void file_free(struct zf_file *f)
{
	uint32_t i;

	for (i = 0; i < f->n; i++)
		chunk_unref(f->ext[i].c);
	free(f->ext);
	free(f);
}

static void dir_free(struct zf_dir *d)
{
	uint32_t i;

	for (i = 0; i < d->nslot; i++)
		free(d->slot[i]);
	free(d->slot);
	zf_htab_free(&d->names);
	free(d);
}

static void inode_free(struct zf_fs *fs, struct zf_inode *in)
{
	uint32_t i;

	fs->npinned -= !!(in->flags & ZF_INODE_PINNED);
	if (S_ISREG(in->mode)) {
		fs_file_drop_dirty(fs, in, 0);
		file_free(in->u.file);
		fs->nfiles--;
	} else if (S_ISDIR(in->mode)) {
		dir_free(in->u.dir);
		fs->ndirs--;
	} else if (S_ISLNK(in->mode)) {
		free(in->u.link);
	}
	for (i = 0; i < in->nxattr; i++) {
		free(in->xattr[i].name);
		free(in->xattr[i].val);
	}
	free(in->xattr);
	free(in);
}

static int apply_inode(struct zf_fs *fs, const uint8_t *p, uint32_t len,
		       struct fs_apply_err *err)
{
	uint64_t ino;
	uint32_t mode, ll;
	struct zf_inode *in;

	if (len < ZF_REC_INODE_FIXED)
		return bad(err, "short inode record", 0);
	ino = zf_get64(p);
	mode = zf_get32(p + 24);
	ll = zf_get32(p + 84);
	if (ll != len - ZF_REC_INODE_FIXED || (ll && !S_ISLNK(mode)) || ino == 0 ||
	    zf_get64(p + 16) > UINT32_MAX || (zf_get32(p + 44) & ~ZF_INODE_FLAGS_KNOWN))
		return bad(err, "malformed inode record", ino);
	in = fs_inode(fs, ino);
	if (in && (in->mode & S_IFMT) != (mode & S_IFMT))
		return bad(err, "inode changed its type", ino);
	if (!in) {
		in = zf_calloc(1, sizeof(*in));
		in->ino = ino;
		if (S_ISREG(mode)) {
			in->u.file = zf_calloc(1, sizeof(*in->u.file));
			fs->nfiles++;
		} else if (S_ISDIR(mode)) {
			in->u.dir = zf_calloc(1, sizeof(*in->u.dir));
			in->u.dir->next_cookie = 3; /* 1 and 2 are "." and ".." */
			fs->ndirs++;
		} else if (S_ISLNK(mode)) {
			in->u.link = zf_malloc(ll + 1);
			memcpy(in->u.link, p + 88, ll);
			in->u.link[ll] = 0;
		}
		zf_htab_insert(&fs->inodes, zf_mix64(ino), in);
		if (ino >= fs->next_ino)
			fs->next_ino = ino + 1;
	}
	in->size = zf_get64(p + 8);
	in->rdev = zf_get64(p + 16);
	in->mode = mode;
	in->uid = zf_get32(p + 28);
	in->gid = zf_get32(p + 32);
	in->nlink = zf_get32(p + 36);
	in->gen = zf_get32(p + 40);
	fs->npinned -= !!(in->flags & ZF_INODE_PINNED);
	in->flags = zf_get32(p + 44);
	fs->npinned += !!(in->flags & ZF_INODE_PINNED);
	in->atime = (int64_t)zf_get64(p + 48);
	in->atime_ns = zf_get32(p + 56);
	in->mtime = (int64_t)zf_get64(p + 60);
	in->mtime_ns = zf_get32(p + 68);
	in->ctime = (int64_t)zf_get64(p + 72);
	in->ctime_ns = zf_get32(p + 80);
	return 0;
}

static int apply_inode_del(struct zf_fs *fs, const uint8_t *p, uint32_t len,
			   struct fs_apply_err *err)
{
	uint64_t ino;
	struct zf_inode *in;

	if (len != 8)
		return bad(err, "malformed inode deletion", 0);
	ino = zf_get64(p);
	in = fs_inode(fs, ino);
	if (!in || in->nlink != 0 || ino == ZF_ROOT_INO)
		return bad(err, "deletion of a missing or linked inode", ino);
	if (S_ISDIR(in->mode) && in->u.dir->nents)
		return bad(err, "deletion of a non-empty directory", ino);
	zf_htab_remove(&fs->inodes, zf_mix64(ino), NULL, NULL);
	inode_free(fs, in);
	return 0;
}

static void dir_compact(struct zf_dir *d)
{
	uint32_t i, j = 0;

	for (i = 0; i < d->nslot; i++)
		if (d->slot[i])
			d->slot[j++] = d->slot[i];
	d->nslot = j;
}

static int apply_dirent_add(struct zf_fs *fs, const uint8_t *p, uint32_t len,
			    struct fs_apply_err *err)
{
	uint64_t parent, ino;
	uint16_t nl;
	struct zf_inode *dir, *child;
	struct zf_dirent *de;
	struct zf_dir *d;

	if (len < 18)
		return bad(err, "short directory entry", 0);
	parent = zf_get64(p);
	ino = zf_get64(p + 8);
	nl = zf_get16(p + 16);
	if (nl == 0 || nl > ZF_NAME_LEN || len != 18u + nl || memchr(p + 18, '/', nl) ||
	    memchr(p + 18, 0, nl))
		return bad(err, "malformed directory entry", parent);
	dir = fs_inode(fs, parent);
	child = fs_inode(fs, ino);
	if (!dir || !S_ISDIR(dir->mode) || !child)
		return bad(err, "entry in a missing directory or to a missing inode", parent);
	d = dir->u.dir;
	if (dir_find(d, (const char *)p + 18, nl))
		return bad(err, "duplicate directory entry", parent);
	de = zf_malloc(sizeof(*de) + nl + 1);
	de->ino = ino;
	de->cookie = d->next_cookie++;
	de->dtype = (child->mode & S_IFMT) >> 12;
	de->namelen = nl;
	memcpy(de->name, p + 18, nl);
	de->name[nl] = 0;
	if (d->nslot == d->cap) {
		if (d->nents < d->nslot / 2) {
			dir_compact(d);
		} else {
			d->cap = d->cap ? d->cap * 2 : 8;
			d->slot = zf_realloc(d->slot, d->cap * sizeof(*d->slot));
		}
	}
	d->slot[d->nslot++] = de;
	d->nents++;
	zf_htab_insert(&d->names, XXH3_64bits(de->name, nl), de);
	if (S_ISDIR(child->mode))
		child->u.dir->parent = parent;
	return 0;
}

/* index of the slot holding cookie (slots are sorted by cookie) */
uint32_t dir_slot_of(const struct zf_dir *d, uint64_t cookie)
{
	uint32_t lo = 0, hi = d->nslot;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		/* removed slots keep no cookie: probe the nearest live one */
		uint32_t k = mid;

		while (k < hi && !d->slot[k])
			k++;
		if (k == hi) {
			hi = mid;
			continue;
		}
		if (d->slot[k]->cookie < cookie)
			lo = k + 1;
		else
			hi = mid;
	}
	return lo;
}

static int apply_dirent_del(struct zf_fs *fs, const uint8_t *p, uint32_t len,
			    struct fs_apply_err *err)
{
	uint64_t parent;
	uint16_t nl;
	struct zf_inode *dir;
	struct zf_dirent *de;
	struct zf_dir *d;
	uint32_t i;
	char name[ZF_NAME_LEN + 1];

	if (len < 10)
		return bad(err, "short directory entry removal", 0);
	parent = zf_get64(p);
	nl = zf_get16(p + 8);
	if (nl == 0 || nl > ZF_NAME_LEN || len != 10u + nl)
		return bad(err, "malformed directory entry removal", parent);
	memcpy(name, p + 10, nl);
	name[nl] = 0;
	dir = fs_inode(fs, parent);
	if (!dir || !S_ISDIR(dir->mode))
		return bad(err, "entry removal in a missing directory", parent);
	d = dir->u.dir;
	de = zf_htab_remove(&d->names, XXH3_64bits(name, nl), dirent_eq, name);
	if (!de)
		return bad(err, "removal of a missing directory entry", parent);
	i = dir_slot_of(d, de->cookie);
	while (i < d->nslot && d->slot[i] != de)
		i++;
	ZF_BUG_ON(i == d->nslot);
	d->slot[i] = NULL;
	d->nents--;
	if (i == d->nslot - 1)
		d->nslot--;
	free(de);
	return 0;
}

/* first extent whose end is past off */
uint32_t ext_first_after_pub(const struct zf_file *f, uint64_t off)
{
	uint32_t lo = 0, hi = f->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (f->ext[mid].off + f->ext[mid].len <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Replace the mapping of [start, end) by nnew extents (all inside the range,
 * sorted). Extents straddling the range edges are trimmed; one that spans
 * the whole range is split in two (its chunk gains a reference).
 */
static void file_remap(struct zf_file *f, uint64_t start, uint64_t end,
		       const struct zf_extent *nw, uint32_t nnew)
{
	struct zf_extent left = { 0 }, right = { 0 };
	int has_left = 0, has_right = 0;
	uint32_t i, j, k, mid;

	i = ext_first_after_pub(f, start);
	for (j = i; j < f->n && f->ext[j].off < end; j++) {
		struct zf_extent *e = &f->ext[j];
		uint64_t eend = e->off + e->len;

		if (e->off < start) {
			left = *e;
			left.len = start - e->off;
			has_left = 1;
		}
		if (eend > end) {
			right = *e;
			right.coff += end - e->off;
			right.len = eend - end;
			right.off = end;
			has_right = 1;
		}
		/* the old extent's reference moves to the pieces that survive */
		if (e->off < start && eend > end)
			e->c->refs++;
		else if (!(e->off < start) && !(eend > end))
			chunk_unref(e->c);
		f->mapped -= e->len;
	}
	mid = has_left + nnew + has_right;
	if (f->n - (j - i) + mid > f->cap) {
		while (f->n - (j - i) + mid > f->cap)
			f->cap = f->cap ? f->cap * 2 : 4;
		f->ext = zf_realloc(f->ext, f->cap * sizeof(*f->ext));
	}
	if (f->n > j)
		memmove(f->ext + i + mid, f->ext + j, (f->n - j) * sizeof(*f->ext));
	f->n = f->n - (j - i) + mid;
	k = i;
	if (has_left) {
		f->ext[k++] = left;
		f->mapped += left.len;
	}
	for (j = 0; j < nnew; j++) {
		f->ext[k++] = nw[j];
		nw[j].c->refs++;
		f->mapped += nw[j].len;
	}
	if (has_right) {
		f->ext[k++] = right;
		f->mapped += right.len;
	}
}

static int apply_extents(struct zf_fs *fs, const uint8_t *p, uint32_t len,
			 struct fs_apply_err *err)
{
	struct zf_extent *nw = NULL;
	struct zf_inode *in;
	uint64_t ino, start, end, prev;
	uint32_t n, i;
	int r = 0;

	if (len < 28)
		return bad(err, "short extent record", 0);
	ino = zf_get64(p);
	start = zf_get64(p + 8);
	end = zf_get64(p + 16);
	n = zf_get32(p + 24);
	if (start > end || (len - 28) / ZF_REC_EXT_SIZE != n || (len - 28) % ZF_REC_EXT_SIZE)
		return bad(err, "malformed extent record", ino);
	in = fs_inode(fs, ino);
	if (!in || !S_ISREG(in->mode))
		return bad(err, "extents of a missing or non-regular inode", ino);
	nw = zf_malloc((n ? n : 1) * sizeof(*nw));
	prev = start;
	for (i = 0; i < n; i++) {
		const uint8_t *e = p + 28 + (size_t)i * ZF_REC_EXT_SIZE;
		struct zf_chunk_id id;

		nw[i].off = zf_get64(e);
		nw[i].len = zf_get32(e + 8);
		nw[i].coff = zf_get32(e + 12);
		memcpy(id.b, e + 16, ZF_CHUNK_ID_LEN);
		nw[i].c = fs_chunk_find(fs, &id);
		/* salvage: the chunk's super-chunk record was lost; map it, damaged */
		if (!nw[i].c && fs->salvage)
			nw[i].c = fs_chunk_add_lost(fs, &id);
		if (!nw[i].c) {
			r = bad(err, "extent references an unknown chunk", ino);
			goto out;
		}
		if (nw[i].off < prev || nw[i].len == 0 || nw[i].off + nw[i].len > end ||
		    ((uint64_t)nw[i].coff + nw[i].len > nw[i].c->len &&
		     !(nw[i].c->flags & ZF_CHUNK_LOST))) {
			r = bad(err, "extent out of range", ino);
			goto out;
		}
		prev = nw[i].off + nw[i].len;
	}
	/* a lost chunk is as long as the extents that map it say */
	for (i = 0; i < n; i++)
		if ((nw[i].c->flags & ZF_CHUNK_LOST) && nw[i].coff + nw[i].len > nw[i].c->len)
			nw[i].c->len = nw[i].coff + nw[i].len;
	file_remap(in->u.file, start, end, nw, n);
out:
	free(nw);
	return r;
}

static struct zf_xattr *xattr_find(struct zf_inode *in, const char *name, size_t nl)
{
	uint32_t i;

	for (i = 0; i < in->nxattr; i++)
		if (strlen(in->xattr[i].name) == nl && memcmp(in->xattr[i].name, name, nl) == 0)
			return &in->xattr[i];
	return NULL;
}

static int apply_xattr(struct zf_fs *fs, const struct zf_frame *f, struct fs_apply_err *err)
{
	const uint8_t *p = f->payload;
	struct zf_inode *in;
	struct zf_xattr *x;
	uint32_t nl, vl = 0, hdr = f->type == ZF_REC_XATTR_SET ? 14 : 10;

	if (f->len < hdr)
		return bad(err, "short xattr record", 0);
	nl = zf_get16(p + 8);
	if (f->type == ZF_REC_XATTR_SET)
		vl = zf_get32(p + 10);
	if (nl == 0 || (uint64_t)hdr + nl + vl != f->len || memchr(p + hdr, 0, nl))
		return bad(err, "malformed xattr record", zf_get64(p));
	in = fs_inode(fs, zf_get64(p));
	if (!in)
		return bad(err, "xattr of a missing inode", zf_get64(p));
	x = xattr_find(in, (const char *)p + hdr, nl);
	if (f->type == ZF_REC_XATTR_DEL) {
		if (!x)
			return bad(err, "removal of a missing xattr", in->ino);
		free(x->name);
		free(x->val);
		*x = in->xattr[--in->nxattr];
		return 0;
	}
	if (!x) {
		in->xattr = zf_realloc(in->xattr, (in->nxattr + 1) * sizeof(*x));
		x = &in->xattr[in->nxattr++];
		x->name = zf_malloc(nl + 1);
		memcpy(x->name, p + hdr, nl);
		x->name[nl] = 0;
	} else {
		free(x->val);
	}
	x->val = zf_malloc(vl);
	memcpy(x->val, p + hdr + nl, vl);
	x->vlen = vl;
	return 0;
}

static void sc_unlink(struct zf_fs *fs, struct zf_sc *sc)
{
	struct zf_sc *last = fs->scs[--fs->nscs];

	fs->scs[sc->idx] = last;
	last->idx = sc->idx;
	free(sc);
}

void fs_chunk_unlocate(struct zf_fs *fs, struct zf_chunk *c)
{
	if (c->sc && --c->sc->nchunks == 0)
		sc_unlink(fs, c->sc);
	c->sc = NULL;
}

uint64_t *fs_segments_used(struct zf_fs *fs, size_t *ret_n)
{
	uint64_t *ids = zf_malloc((fs->nscs + 1) * sizeof(*ids));
	size_t i, n = 0, k = 0;

	for (i = 0; i < fs->nscs; i++)
		ids[n++] = fs->scs[i]->loc.seg;
	if (fs->open_seg)
		ids[n++] = fs->open_seg;
	qsort(ids, n, sizeof(*ids), zf_cmp_u64);
	for (i = 0; i < n; i++)
		if (!k || ids[k - 1] != ids[i])
			ids[k++] = ids[i];
	*ret_n = k;
	return ids;
}

/*
 * A super-chunk record. ZF_REC_SC: a chunk already readable elsewhere keeps
 * its first copy (this one is garbage); a damaged one is healed by it.
 * ZF_REC_SC_MOVE (move): gc's copy, every chunk exists and moves here.
 */
static int apply_sc(struct zf_fs *fs, const uint8_t *p, uint32_t len, int from_ckpt, int move,
		    struct fs_apply_err *err)
{
	struct zf_sc *sc;
	uint32_t n, i;

	if (len < 28)
		return bad(err, "short super-chunk record", 0);
	n = zf_get32(p + 24);
	if ((len - 28) / ZF_REC_SC_ENT_SIZE != n || (len - 28) % ZF_REC_SC_ENT_SIZE)
		return bad(err, "malformed super-chunk record", 0);
	if (zf_get64(p) == 0 || (zf_get64(p) <= fs->last_sealed && !from_ckpt))
		return bad(err, "super-chunk in a sealed or invalid segment", 0);
	/* every entry is checked first: a record applies whole or not at all */
	for (i = 0; i < n; i++) {
		const uint8_t *e = p + 28 + (size_t)i * ZF_REC_SC_ENT_SIZE;
		uint32_t roff = zf_get32(e + 16), clen = zf_get32(e + 20);
		struct zf_chunk *c;

		if (clen == 0 || (uint64_t)roff + clen > zf_get32(p + 20))
			return bad(err, "super-chunk entry out of range", 0);
		c = move ? fs_chunk_find(fs, (const struct zf_chunk_id *)e) : NULL;
		if (move && (!c || c->len != clen))
			return bad(err, "move of an unknown chunk", 0);
	}
	sc = zf_calloc(1, sizeof(*sc));
	sc->loc.seg = zf_get64(p);
	sc->loc.off = zf_get64(p + 8);
	sc->loc.disk_len = zf_get32(p + 16);
	sc->loc.raw_len = zf_get32(p + 20);
	for (i = 0; i < n; i++) {
		const uint8_t *e = p + 28 + (size_t)i * ZF_REC_SC_ENT_SIZE;
		struct zf_chunk_id id;
		struct zf_chunk *c;

		memcpy(id.b, e, ZF_CHUNK_ID_LEN);
		c = fs_chunk_find(fs, &id);
		if (!move && c && c->sc && zf_chunk_readable(c))
			continue; /* already stored elsewhere: this copy is garbage */
		if (c)
			fs_chunk_unlocate(fs, c); /* moved, or damaged there: healed here */
		else {
			c = zf_calloc(1, sizeof(*c));
			c->id = id;
			c->ckpt_refs = UINT32_MAX;
			zf_htab_insert(&fs->chunks, chunk_hash(&id), c);
		}
		c->sc = sc;
		c->raw_off = zf_get32(e + 16);
		c->len = zf_get32(e + 20);
		if (!move)
			c->flags = 0;
		if (from_ckpt)
			c->ckpt_refs = zf_get32(e + 24);
		sc->nchunks++;
	}
	if (sc->loc.seg > fs->last_sealed) {
		if (sc->loc.seg != fs->open_seg)
			fs->open_end = 0;
		fs->open_seg = sc->loc.seg;
		if (sc->loc.off + sc->loc.disk_len > fs->open_end)
			fs->open_end = sc->loc.off + sc->loc.disk_len;
	}
	if (!sc->nchunks) { /* all garbage: nothing will read it */
		free(sc);
		return 0;
	}
	if (fs->nscs == fs->sccap) {
		fs->sccap = fs->sccap ? fs->sccap * 2 : 64;
		fs->scs = zf_realloc(fs->scs, fs->sccap * sizeof(*fs->scs));
	}
	sc->idx = fs->nscs;
	fs->scs[fs->nscs++] = sc;
	return 0;
}

static int apply_seal(struct zf_fs *fs, const uint8_t *p, uint32_t len, struct fs_apply_err *err)
{
	uint64_t seg;

	if (len != 16)
		return bad(err, "malformed segment seal", 0);
	seg = zf_get64(p);
	if (seg > fs->last_sealed)
		fs->last_sealed = seg;
	if (fs->open_seg <= seg) {
		fs->open_seg = 0;
		fs->open_end = 0;
		fs->open_first_seq = 0;
	}
	return 0;
}

static int apply_state(struct zf_fs *fs, const uint8_t *p, uint32_t len,
		       struct fs_apply_err *err)
{
	if (len != 32)
		return bad(err, "malformed checkpoint state", 0);
	fs->next_ino = zf_get64(p);
	fs->open_seg = zf_get64(p + 8);
	fs->open_end = zf_get64(p + 16);
	fs->last_sealed = zf_get64(p + 24);
	return 0;
}

static int apply_chunk_del(struct zf_fs *fs, const uint8_t *p, uint32_t len,
			   struct fs_apply_err *err)
{
	uint32_t n, i;

	if (len < 4 || (len - 4) != (uint64_t)zf_get32(p) * ZF_CHUNK_ID_LEN)
		return bad(err, "malformed chunk deletion", 0);
	n = zf_get32(p);
	for (i = 0; i < n; i++) {
		struct zf_chunk *c = zf_htab_find(&fs->chunks, zf_get64(p + 4 + i * 16), chunk_eq,
						  p + 4 + i * 16);

		if (!c || c->refs)
			return bad(err, "deletion of a missing or referenced chunk", 0);
	}
	for (i = 0; i < n; i++) {
		struct zf_chunk *c = zf_htab_remove(&fs->chunks, zf_get64(p + 4 + i * 16), chunk_eq,
						    p + 4 + i * 16);

		if (!c)
			continue; /* named twice in the record */
		fs_chunk_unlocate(fs, c);
		free(c);
	}
	return 0;
}

struct zf_chunk *fs_chunk_add_lost(struct zf_fs *fs, const struct zf_chunk_id *id)
{
	struct zf_chunk *c = zf_calloc(1, sizeof(*c));

	c->id = *id;
	c->flags = ZF_CHUNK_LOST;
	c->ckpt_refs = UINT32_MAX;
	zf_htab_insert(&fs->chunks, chunk_hash(id), c);
	return c;
}

/* chunks found damaged: reads fail; unknown ids join the index as lost */
static int apply_chunk_bad(struct zf_fs *fs, const uint8_t *p, uint32_t len,
			   struct fs_apply_err *err)
{
	uint32_t n, i;

	if (len < 4 || (len - 4) != (uint64_t)zf_get32(p) * ZF_CHUNK_ID_LEN)
		return bad(err, "malformed chunk damage record", 0);
	n = zf_get32(p);
	for (i = 0; i < n; i++) {
		struct zf_chunk *c = zf_htab_find(&fs->chunks, zf_get64(p + 4 + i * 16), chunk_eq,
						  p + 4 + i * 16);

		/* bytes still in the packer were never read back: not damaged */
		if (c && !c->sc && !(c->flags & ZF_CHUNK_LOST))
			return bad(err, "damage mark of a chunk not stored yet", 0);
	}
	for (i = 0; i < n; i++) {
		struct zf_chunk_id id;
		struct zf_chunk *c;

		memcpy(id.b, p + 4 + i * 16, ZF_CHUNK_ID_LEN);
		c = fs_chunk_find(fs, &id);
		if (!c)
			c = fs_chunk_add_lost(fs, &id);
		c->flags |= ZF_CHUNK_BAD;
	}
	return 0;
}

int fs_apply(struct zf_fs *fs, const struct zf_frame *f, struct fs_apply_err *err)
{
	switch (f->type) {
	case ZF_REC_INODE:
		return apply_inode(fs, f->payload, f->len, err);
	case ZF_REC_INODE_DEL:
		return apply_inode_del(fs, f->payload, f->len, err);
	case ZF_REC_DIRENT_ADD:
		return apply_dirent_add(fs, f->payload, f->len, err);
	case ZF_REC_DIRENT_DEL:
		return apply_dirent_del(fs, f->payload, f->len, err);
	case ZF_REC_EXTENTS:
		return apply_extents(fs, f->payload, f->len, err);
	case ZF_REC_XATTR_SET:
	case ZF_REC_XATTR_DEL:
		return apply_xattr(fs, f, err);
	case ZF_REC_SC:
		return apply_sc(fs, f->payload, f->len, 0, 0, err);
	case ZF_REC_SC_MOVE:
		return apply_sc(fs, f->payload, f->len, 0, 1, err);
	case ZF_REC_SEG_SEAL:
		return apply_seal(fs, f->payload, f->len, err);
	case ZF_REC_CHUNK_DEL:
		return apply_chunk_del(fs, f->payload, f->len, err);
	case ZF_REC_CHUNK_BAD:
		return apply_chunk_bad(fs, f->payload, f->len, err);
	default:
		zf_err("unknown metadata record type %u", f->type);
		return -EBADMSG;
	}
}

/* -------------------------------------------- log and apply (live records) */

void fs_do(struct zf_fs *fs, uint8_t type, const struct zf_buf *rec)
{
	struct zf_frame f = { .type = type, .len = rec->len, .payload = rec->p };
	int r;

	if (!fs->readonly)
		zf_mlog_add(fs->log, type, rec->p, rec->len);
	r = fs_apply(fs, &f, NULL);
	ZF_BUG_ON(r != 0); /* live records are validated before they are made */
}

void fs_txn_end(struct zf_fs *fs)
{
	if (!fs->readonly)
		zf_mlog_txn_end(fs->log);
}

void fs_log_seal(struct zf_fs *fs, uint64_t seg)
{
	uint8_t p[16];

	zf_put64(p, seg);
	zf_put64(p + 8, fs->open_end);
	zf_mlog_add_early(fs->log, ZF_REC_SEG_SEAL, p, sizeof(p));
	apply_seal(fs, p, sizeof(p), NULL);
}

void fs_log_sc(struct zf_fs *fs, uint8_t type, const struct zf_sc_loc *loc,
	       struct zf_chunk *const *chunks, uint32_t n)
{
	struct zf_buf b = { 0 };
	uint8_t *p = zf_buf_grow(&b, 28 + (size_t)n * ZF_REC_SC_ENT_SIZE);
	uint32_t i, off = 0;
	int r;

	zf_put64(p, loc->seg);
	zf_put64(p + 8, loc->off);
	zf_put32(p + 16, loc->disk_len);
	zf_put32(p + 20, loc->raw_len);
	zf_put32(p + 24, n);
	for (i = 0; i < n; i++) {
		uint8_t *e = p + 28 + (size_t)i * ZF_REC_SC_ENT_SIZE;

		memcpy(e, chunks[i]->id.b, ZF_CHUNK_ID_LEN);
		zf_put32(e + 16, off);
		zf_put32(e + 20, chunks[i]->len);
		zf_put32(e + 24, 0);
		off += chunks[i]->len;
	}
	/* before the open transaction: its records may reference these chunks */
	zf_mlog_add_early(fs->log, type, b.p, b.len);
	r = apply_sc(fs, b.p, b.len, 0, type == ZF_REC_SC_MOVE, NULL);
	ZF_BUG_ON(r != 0);
	zf_buf_free(&b);
}

/* ------------------------------------------------------ checkpoint, close */

int fs_apply_ckpt(struct zf_fs *fs, const struct zf_frame *f, struct fs_apply_err *err)
{
	if (f->type == ZF_REC_STATE)
		return apply_state(fs, f->payload, f->len, err);
	if (f->type == ZF_REC_SC)
		return apply_sc(fs, f->payload, f->len, 1, 0, err);
	return fs_apply(fs, f, err);
}

void fs_table_free(struct zf_fs *fs)
{
	struct zf_hent *e;
	size_t i;

	zf_htab_foreach(&fs->inodes, e)
	{
		struct zf_inode *in = e->val;

		in->nlink = 0;
		inode_free(fs, in);
	}
	zf_htab_free(&fs->inodes);
	zf_htab_foreach(&fs->chunks, e) free(e->val);
	zf_htab_free(&fs->chunks);
	for (i = 0; i < fs->nscs; i++)
		free(fs->scs[i]);
	free(fs->scs);
}
