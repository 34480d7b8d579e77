/*
 * storage/fs.c - lifetime of the storage core: mkfs, open (checkpoint load
 * and log replay), the record applier shared by replay and live operations,
 * group commit, checkpoints and close.
 *
 * Commit order (invariant 1 of DESIGN.md), in fs_commit():
 *   1. the filling pack is submitted and every submitted pack is appended
 *      to the open segment and reaped (fs_pipe.c): each gets its
 *      super-chunk record before any record that references its chunks,
 *   2. zf_segstore_sync(): segment data (and new segment files) durable,
 *   3. zf_mlog_commit(): super-chunk records first, then every complete
 *      transaction, one write and one fdatasync.
 * A record never reaches the log before the data it references.
 *
 * Checkpoints are written right after a commit, when the table equals the
 * log: .tmp, fsync, rename, directory fsync; then a new log file starts and
 * older logs and checkpoints are removed.
 *
 * Format: docs/FORMAT.md "Superblock", "Records", "Checkpoints".
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "common/endian.h"
#include "common/log.h"
#include "common/util.h"
#include "storage/fs_internal.h"
#include "storage/meta_format.h"

#define DEFAULT_SEG_LIMIT (16ull << 20)
#define DEFAULT_CKPT (64ull << 20)

int zf_fs_lock_held(void)
{
	return zf_nonet_locks != 0;
}

/* ---------------------------------------------------------------- lookup */

struct zf_inode *fs_inode(struct zf_fs *fs, uint64_t ino)
{
	return zf_htab_find(&fs->inodes, zf_mix64(ino), NULL, NULL);
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
	zf_put32(p + 44, 0);
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
	    zf_get64(p + 16) > UINT32_MAX)
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

/* ---------------------------------------------------------------- salvage */

/* what a record's payload says about the file it concerns (unverified if damaged) */
static void note_decode(struct zf_salvage_note *n, int type, const uint8_t *pl, size_t plen)
{
	n->type = type;
	if (type <= 0 || plen < 8 || type == ZF_REC_SC || type == ZF_REC_SEG_SEAL ||
	    type == ZF_REC_STATE || type == ZF_REC_END || type == ZF_REC_CHUNK_DEL ||
	    type == ZF_REC_CHUNK_BAD)
		return;
	n->ino = zf_get64(pl);
	if (type == ZF_REC_EXTENTS && plen >= 24) {
		n->start = zf_get64(pl + 8);
		n->end = zf_get64(pl + 16);
	} else if (type == ZF_REC_DIRENT_ADD || type == ZF_REC_DIRENT_DEL) {
		size_t at = type == ZF_REC_DIRENT_ADD ? 16 : 8;
		size_t nl = plen >= at + 2 ? zf_get16(pl + at) : 0;

		if (nl && nl <= ZF_NAME_LEN && plen >= at + 2 + nl &&
		    !memchr(pl + at + 2, 0, nl) && !memchr(pl + at + 2, '/', nl)) {
			memcpy(n->name, pl + at + 2, nl);
			n->name[nl] = 0;
		}
	}
}

static struct zf_salvage_note *note_add(struct zf_fs *fs, const char *file, uint64_t off,
					uint64_t len, uint64_t seq, const char *why)
{
	struct zf_salvage_note *n;

	fs->salv = zf_realloc(fs->salv, (fs->nsalv + 1) * sizeof(*fs->salv));
	n = &fs->salv[fs->nsalv++];
	memset(n, 0, sizeof(*n));
	snprintf(n->file, sizeof(n->file), "%s", file);
	n->off = off;
	n->len = len;
	n->seq = seq;
	n->type = -1;
	snprintf(n->why, sizeof(n->why), "%s", why);
	return n;
}

/* what a load passes to each record it applies (the scanners' ctx) */
struct fs_replay {
	struct zf_fs *fs;
	const char *file;	/* the log or checkpoint being loaded */
	struct fs_apply_err err; /* why the last record did not apply */
};

/* a region without a valid frame: decode what its header may still say */
static void salvage_bad(void *ctx, const char *name, uint64_t off, const uint8_t *p, size_t len,
			uint64_t expect_seq)
{
	struct fs_replay *rp = ctx;
	struct zf_fs *fs = rp->fs;
	struct zf_salvage_note *n;

	if (!p) {
		/* whole records gone: what they did is lost with them */
		note_add(fs, name, off, 0, expect_seq, "records missing before this offset");
		if (!strncmp(name, "ckpt.", 5))
			fs->ckpt_cut = 1;
		else
			fs->meta_lost = 1;
		return;
	}
	if (off == 0) {
		note_add(fs, name, off, len, 0, "damaged file header");
		return;
	}
	if (len == 0) {
		note_add(fs, name, off, 0, expect_seq, "the END record is missing");
		if (!strncmp(name, "ckpt.", 5))
			fs->ckpt_cut = 1;
		return;
	}
	n = note_add(fs, name, off, len, expect_seq, "checksum mismatch");
	if (len >= ZF_REC_HDR_SIZE && zf_get32(p) == ZF_REC_MAGIC) {
		uint32_t plen = zf_get32(p + 8);

		if (plen > len - ZF_REC_HDR_SIZE)
			plen = len - ZF_REC_HDR_SIZE;
		note_decode(n, p[4], p + ZF_REC_HDR_SIZE, plen);
	}
}

/* salvage: a verified record that does not apply is noted and skipped */
static int salvage_skip(struct fs_replay *rp, const struct zf_frame *f, int r)
{
	struct zf_salvage_note *n;
	const char *why = rp->err.why;

	rp->err.why = NULL;
	if (!r || !rp->fs->salvage || r != -EBADMSG)
		return r;
	n = note_add(rp->fs, rp->file, f->off, ZF_REC_HDR_SIZE + f->len, f->seq,
		     why ? why : "does not apply");
	n->verified = 1;
	note_decode(n, f->type, f->payload, f->len);
	return 0;
}

static int ckpt_apply(void *ctx, const struct zf_frame *f)
{
	struct fs_replay *rp = ctx;
	int r;

	if (f->type == ZF_REC_STATE)
		r = apply_state(rp->fs, f->payload, f->len, &rp->err);
	else if (f->type == ZF_REC_SC)
		r = apply_sc(rp->fs, f->payload, f->len, 1, 0, &rp->err);
	else
		r = fs_apply(rp->fs, f, &rp->err);
	return salvage_skip(rp, f, r);
}

static int log_apply(void *ctx, const struct zf_frame *f)
{
	struct fs_replay *rp = ctx;

	return salvage_skip(rp, f, fs_apply(rp->fs, f, &rp->err));
}

/* ------------------------------------------------------------ superblock */

static int sb_write(int dirfd, const struct zf_fs *fs, const struct zf_mkfs_opts *o)
{
	uint8_t sb[ZF_SB_SIZE] = { 0 };

	memcpy(sb, ZF_SB_MAGIC, 8);
	zf_put32(sb + 8, ZF_SB_VERSION);
	memcpy(sb + 16, fs->fsid, 16);
	memcpy(sb + 32, fs->secret, ZF_SECRET_LEN);
	zf_put32(sb + 64, o->chunk_min);
	zf_put32(sb + 68, o->chunk_avg);
	zf_put32(sb + 72, o->chunk_max);
	zf_put32(sb + 76, o->zstd_level);
	zf_put64(sb + 80, o->seg_limit);
	zf_put64(sb + 88, zf_now().tv_sec);
	zf_put64(sb + ZF_SB_CSUM_OFF, XXH3_64bits(sb, ZF_SB_CSUM_OFF));
	return zf_publish_file(dirfd, "superblock", sb, sizeof(sb));
}

static int sb_read(struct zf_fs *fs, uint32_t *ret_cmin, uint32_t *ret_cavg, uint32_t *ret_cmax)
{
	void *buf = NULL;
	size_t len;
	uint8_t *sb;
	int r;

	r = zf_read_file(fs->dirfd, "superblock", &buf, &len);
	if (r < 0) {
		if (r == -ENOENT)
			zf_err("'%s' is not a zerofs dev-dir (no superblock); run 'zerofs mkfs'",
			       fs->dev_dir);
		else
			zf_err("cannot read superblock of '%s': %s", fs->dev_dir, strerror(-r));
		return r;
	}
	sb = buf;
	if (len != ZF_SB_SIZE || memcmp(sb, ZF_SB_MAGIC, 8) != 0 ||
	    zf_get64(sb + ZF_SB_CSUM_OFF) != XXH3_64bits(sb, ZF_SB_CSUM_OFF)) {
		zf_err("corrupt superblock in '%s': bad size, magic or checksum", fs->dev_dir);
		r = -EBADMSG;
		goto out;
	}
	if (zf_get32(sb + 8) != ZF_SB_VERSION) {
		zf_err("superblock of '%s' has unsupported version %u", fs->dev_dir,
		       zf_get32(sb + 8));
		r = -EBADMSG;
		goto out;
	}
	memcpy(fs->fsid, sb + 16, 16);
	memcpy(fs->secret, sb + 32, ZF_SECRET_LEN);
	*ret_cmin = zf_get32(sb + 64);
	*ret_cavg = zf_get32(sb + 68);
	*ret_cmax = zf_get32(sb + 72);
	fs->zstd_level = zf_get32(sb + 76);
	fs->seg_limit = zf_get64(sb + 80);
out:
	free(buf);
	return r;
}

/* ---------------------------------------------------------------- mkfs */

static int dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int empty = 1;

	if (!d)
		return -errno;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		    strcmp(e->d_name, "lost+found"))
			empty = 0;
	closedir(d);
	return empty;
}

int zf_fs_mkfs(const char *dev_dir, const struct zf_mkfs_opts *opts)
{
	struct zf_mkfs_opts o = opts ? *opts : (struct zf_mkfs_opts){ 0 };
	struct zf_fs tmp = { 0 };
	struct zf_fs *fs = NULL;
	struct zf_chunker *ck;
	struct stat st;
	int dirfd, r;

	if (!o.zstd_level)
		o.zstd_level = 3;
	if (!o.seg_limit)
		o.seg_limit = DEFAULT_SEG_LIMIT;
	if (!o.chunk_min)
		o.chunk_min = ZF_CHUNK_MIN;
	if (!o.chunk_avg)
		o.chunk_avg = ZF_CHUNK_AVG;
	if (!o.chunk_max)
		o.chunk_max = ZF_CHUNK_MAX;
	if (o.zstd_level < 1 || o.zstd_level > 19) {
		zf_err("invalid zstd level %d (1..19)", o.zstd_level);
		return -EINVAL;
	}
	r = zf_chunker_new(tmp.secret, o.chunk_min, o.chunk_avg, o.chunk_max, &ck);
	if (r < 0) {
		zf_err("invalid chunk sizes %u/%u/%u", o.chunk_min, o.chunk_avg, o.chunk_max);
		return r;
	}
	zf_chunker_free(ck);
	if (mkdir(dev_dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	dirfd = open(dev_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -errno;
	if (fstatat(dirfd, "superblock", &st, 0) == 0 && !o.force) {
		zf_err("'%s' already holds a zerofs filesystem (use --force to overwrite)", dev_dir);
		r = -EEXIST;
		goto out;
	}
	r = dir_is_empty(dev_dir);
	if (r == 0 && !o.force) {
		zf_err("'%s' is not empty (use --force to format it anyway)", dev_dir);
		r = -ENOTEMPTY;
		goto out;
	}
	if (o.force) {
		/* only what zerofs owns is removed; other files stay */
		char cmd[ZF_NAME_MAX + 64];

		snprintf(cmd, sizeof(cmd), "rm -rf -- '%s/meta' '%s/seg'", dev_dir, dev_dir);
		if (system(cmd) != 0) {
			r = -EIO;
			goto out;
		}
	}
	r = zf_random(tmp.fsid, sizeof(tmp.fsid));
	if (r == 0)
		r = zf_random(tmp.secret, sizeof(tmp.secret));
	if (r < 0)
		goto out;
	if ((mkdirat(dirfd, "meta", 0700) < 0 && errno != EEXIST) ||
	    (mkdirat(dirfd, "seg", 0700) < 0 && errno != EEXIST)) {
		r = -errno;
		goto out;
	}
	/* the superblock goes last: a dev-dir is formatted once it exists */
	r = zf_fsync_dir(dirfd);
	if (r == 0)
		r = sb_write(dirfd, &tmp, &o);
	if (r < 0)
		goto out;
	r = zf_fs_open(dev_dir, NULL, &fs);
	if (r == 0)
		r = zf_fs_close(fs);
out:
	close(dirfd);
	return r;
}

/* ---------------------------------------------------------------- open */

struct meta_files {
	uint64_t *logs;		/* first seqs, ascending */
	size_t nlogs;
	uint64_t ckpt;		/* newest checkpoint seq, 0 if none */
	int has_ckpt;
	uint64_t *ckpts;	/* every checkpoint seq */
	size_t nckpts;
};

static int meta_list(struct zf_fs *fs, struct meta_files *mf)
{
	DIR *d;
	struct dirent *e;
	int fd = dup(fs->metafd);

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	rewinddir(d); /* the dup shares its offset with earlier listings */
	while ((e = readdir(d))) {
		unsigned long long v;
		int n = 0;

		if (strstr(e->d_name, ".tmp")) {
			if (!fs->readonly)
				unlinkat(fs->metafd, e->d_name, 0);
			continue;
		}
		if (sscanf(e->d_name, "log.%16llx%n", &v, &n) == 1 && n == 20) {
			mf->logs = zf_realloc(mf->logs, (mf->nlogs + 1) * sizeof(uint64_t));
			mf->logs[mf->nlogs++] = v;
		} else if (sscanf(e->d_name, "ckpt.%16llx%n", &v, &n) == 1 && n == 21) {
			mf->ckpts = zf_realloc(mf->ckpts, (mf->nckpts + 1) * sizeof(uint64_t));
			mf->ckpts[mf->nckpts++] = v;
		}
	}
	closedir(d);
	if (mf->nlogs)
		qsort(mf->logs, mf->nlogs, sizeof(uint64_t), zf_cmp_u64);
	if (mf->nckpts)
		qsort(mf->ckpts, mf->nckpts, sizeof(uint64_t), zf_cmp_u64);
	if (mf->nckpts) {
		mf->has_ckpt = 1;
		mf->ckpt = mf->ckpts[mf->nckpts - 1];
	}
	return 0;
}

/* the counts a checkpoint recorded must match the files it holds */
static void check_ckpt_refs(struct zf_fs *fs, const char *name)
{
	struct zf_hent *e;

	zf_htab_foreach(&fs->chunks, e)
	{
		struct zf_chunk *c = e->val;

		if (c->ckpt_refs != UINT32_MAX && c->ckpt_refs != c->refs)
			fs->ckpt_ref_errors++;
	}
	if (fs->ckpt_ref_errors)
		zf_warn("checkpoint '%s': %llu chunk reference counts disagree with its files",
			name, (unsigned long long)fs->ckpt_ref_errors);
}

/* load the newest checkpoint and replay the logs after it */
static int fs_load(struct zf_fs *fs, struct meta_files *mf, uint64_t *ret_end,
		   uint64_t *ret_next_seq)
{
	struct zf_mlog_scan scan = { 0 };
	uint64_t seq = 0, expect;
	char name[64];
	/* salvage: each skipped record becomes a note instead of a log line */
	struct fs_replay rp = { .fs = fs, .file = name, .err.quiet = fs->salvage };
	size_t i;
	int r = 0;

	fs->replaying = 1;
	if (mf->has_ckpt) {
		zf_ckpt_name(mf->ckpt, name, sizeof(name));
		if (fs->salvage)
			r = zf_ckpt_load_salvage(fs->metafd, name, fs->fsid, ckpt_apply, salvage_bad,
						 &rp, &seq);
		else
			r = zf_ckpt_load(fs->metafd, name, fs->fsid, ckpt_apply, &rp, &seq);
		if (r)
			goto out;
		check_ckpt_refs(fs, name);
	}
	fs->ckpt_seq = seq;
	expect = seq + 1;
	*ret_end = 0;
	for (i = 0; i < mf->nlogs; i++) {
		/* a log wholly before the checkpoint is only awaiting removal */
		if (i + 1 < mf->nlogs && mf->logs[i + 1] <= seq + 1)
			continue;
		zf_mlog_name(mf->logs[i], name, sizeof(name));
		if (mf->logs[i] > expect && fs->salvage) {
			note_add(fs, name, 0, 0, expect, "records missing before this log file");
			fs->meta_lost = 1;
		} else if (mf->logs[i] > expect) {
			zf_err("metadata log gap: '%s' starts at %llu, expected %llu", name,
			       (unsigned long long)mf->logs[i], (unsigned long long)expect);
			r = -EBADMSG;
			goto out;
		}
		if (fs->salvage)
			r = zf_mlog_replay_salvage(fs->metafd, name, fs->fsid, seq, log_apply,
						   salvage_bad, &rp, &scan);
		else
			r = zf_mlog_replay(fs->metafd, name, fs->fsid, seq, log_apply, &rp, &scan);
		if (r)
			goto out;
		if (scan.dropped && i + 1 < mf->nlogs && fs->salvage) {
			note_add(fs, name, scan.end, scan.dropped, scan.last_seq + 1,
				 "damaged tail of a log file that is not the last");
		} else if (scan.dropped && i + 1 < mf->nlogs) {
			zf_err("corrupt log '%s' at offset %llu: damage before the last log file",
			       name, (unsigned long long)scan.end);
			r = -EBADMSG;
			goto out;
		}
		if (scan.last_seq + 1 > expect)
			expect = scan.last_seq + 1;
		*ret_end = scan.end;
		fs->torn_bytes = scan.dropped;
	}
	/*
	 * A checkpoint cut short lost the records after the cut: a file with
	 * bytes but no mapping may have lost it there (it is named and its
	 * bytes marked damaged, rather than read as zeros).
	 */
	if (fs->ckpt_cut) {
		struct zf_hent *e;

		zf_htab_foreach(&fs->inodes, e)
		{
			struct zf_inode *in = e->val;
			struct zf_salvage_note *n;

			if (!S_ISREG(in->mode) || !in->size || in->u.file->n)
				continue;
			zf_ckpt_name(seq, name, sizeof(name));
			n = note_add(fs, name, 0, 0, 0, "no mapping: it may be in the lost part of the "
				     "checkpoint");
			n->type = ZF_REC_EXTENTS;
			n->ino = in->ino;
			n->start = 0;
			n->end = in->size;
		}
	}
	/* records the durable mark covers were fdatasync'd: a log that ends
	 * before them is damaged (a flipped or lost tail), not torn */
	r = zf_synced_read(fs->metafd, fs->fsid, &fs->synced_seq, &fs->synced_gen);
	if (r < 0) {
		zf_err("cannot read '%s/meta/%s': %s", fs->dev_dir, ZF_SYNCED_NAME, strerror(-r));
		goto out;
	}
	if (expect - 1 < fs->synced_seq && fs->salvage) {
		char why[96];

		snprintf(why, sizeof(why), "records %llu..%llu were synced but are damaged or missing",
			 (unsigned long long)expect, (unsigned long long)fs->synced_seq);
		note_add(fs, name, *ret_end, fs->torn_bytes, expect, why);
		fs->torn_bytes = 0;
		fs->mark_lost = 1;
	} else if (expect - 1 < fs->synced_seq) {
		zf_err("corrupt log '%s' at offset %llu: records %llu..%llu were synced but %s "
		       "(run zerofs fsck)", name, (unsigned long long)*ret_end,
		       (unsigned long long)expect, (unsigned long long)fs->synced_seq,
		       fs->torn_bytes ? "do not verify" : "are missing");
		r = -EBADMSG;
		goto out;
	}
	fs->durable_seq = expect - 1;
	*ret_next_seq = expect;
	fs->replaying = 0;
	r = 0;
out:
	return r ? (r < 0 ? r : -EBADMSG) : 0;
}

static void fs_free(struct zf_fs *fs)
{
	struct zf_hent *e;
	size_t i;

	if (!fs)
		return;
	fs_pipe_stop(fs); /* first: workers read the chunks of their packs */
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
	fs_pack_free(fs->pack);
	free(fs->spare_buf);
	zf_buf_free(&fs->pending_seal);
	free(fs->salv);
	zf_mlog_close(fs->log);
	zf_segstore_close(fs->seg);
	zf_chunker_free(fs->chunker);
	if (fs->segfd >= 0)
		close(fs->segfd);
	if (fs->metafd >= 0)
		close(fs->metafd);
	if (fs->lockfd >= 0)
		close(fs->lockfd);
	if (fs->dirfd >= 0)
		close(fs->dirfd);
	pthread_mutex_destroy(&fs->lock);
	pthread_mutex_destroy(&fs->gc_lock);
	pthread_mutex_destroy(&fs->mark_lock);
	free(fs->dev_dir);
	free(fs);
}

static void root_create(struct zf_fs *fs)
{
	struct zf_inode root = { .ino = ZF_ROOT_INO, .mode = S_IFDIR | 0755, .nlink = 2, .gen = 1 };
	struct timespec now = zf_now();
	struct zf_buf b = { 0 };

	root.atime = root.mtime = root.ctime = now.tv_sec;
	root.atime_ns = root.mtime_ns = root.ctime_ns = now.tv_nsec;
	rec_inode(&b, &root);
	fs_do(fs, ZF_REC_INODE, &b);
	fs_txn_end(fs);
	zf_buf_free(&b);
}

/* inodes left with no links (unlinked while open, then a crash) */
static void reclaim_orphans(struct zf_fs *fs)
{
	uint64_t *orphans = NULL;
	size_t n = 0, i;
	struct zf_hent *e;

	zf_htab_foreach(&fs->inodes, e)
	{
		struct zf_inode *in = e->val;

		/* a non-empty one (damaged metadata) is fsck's to repair */
		if (in->nlink == 0 && !(S_ISDIR(in->mode) && in->u.dir->nents)) {
			orphans = zf_realloc(orphans, (n + 1) * sizeof(*orphans));
			orphans[n++] = in->ino;
		}
	}
	for (i = 0; i < n; i++) {
		struct zf_buf b = { 0 };

		zf_put64(zf_buf_grow(&b, 8), orphans[i]);
		fs_do(fs, ZF_REC_INODE_DEL, &b);
		fs_txn_end(fs);
		zf_buf_free(&b);
	}
	if (n)
		zf_info("reclaimed %zu unlinked inode(s) left by a crash", n);
	free(orphans);
}

int zf_fs_open(const char *dev_dir, const struct zf_open_opts *opts, struct zf_fs **ret_fs)
{
	struct zf_open_opts o = opts ? *opts : (struct zf_open_opts){ 0 };
	struct meta_files mf = { 0 };
	struct zf_segstore_opts so = { 0 };
	uint32_t cmin, cavg, cmax;
	uint64_t end = 0, next_seq = 1;
	struct zf_fs *fs;
	int r;

	/*
	 * Write buffers and super-chunks are a few MiB each and short-lived:
	 * keep such blocks on the heap for reuse instead of mmap/munmap and
	 * fresh page faults for every one (a quarter of the write path's CPU).
	 */
	mallopt(M_MMAP_THRESHOLD, 64 << 20);
	mallopt(M_TRIM_THRESHOLD, 1 << 30);
	/*
	 * And in few arenas: glibc gives each thread that allocates (16 FUSE
	 * threads, the workers) an arena of its own, up to 8 per CPU, and
	 * each keeps up to the trim threshold of freed blocks: resident
	 * memory grows with threads, not with the budget.
	 */
	mallopt(M_ARENA_MAX, 1);
	fs = zf_calloc(1, sizeof(*fs));
	pthread_mutex_init(&fs->lock, NULL);
	pthread_mutex_init(&fs->gc_lock, NULL);
	pthread_mutex_init(&fs->mark_lock, NULL);
	fs->dev_dir = zf_strdup(dev_dir);
	fs->metafd = fs->segfd = fs->lockfd = -1;
	fs->readonly = o.readonly;
	fs->salvage = o.salvage;
	fs->next_ino = ZF_ROOT_INO + 1;
	fs->mem_budget = o.mem_bytes ? o.mem_bytes : ZF_MEM_DEFAULT;
	fs->dirty_limit = o.dirty_bytes ? o.dirty_bytes : fs->mem_budget / 8;
	fs->ckpt_bytes = o.ckpt_bytes ? o.ckpt_bytes : DEFAULT_CKPT;
	fs->dirfd = open(dev_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fs->dirfd < 0) {
		r = -errno;
		zf_err("cannot open dev-dir '%s': %s", dev_dir, strerror(-r));
		goto fail;
	}
	r = sb_read(fs, &cmin, &cavg, &cmax);
	if (r < 0)
		goto fail;
	fs->lockfd = openat(fs->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fs->lockfd < 0 && !(fs->readonly && errno == EROFS)) {
		r = -errno;
		goto fail;
	}
	if (fs->lockfd >= 0 && flock(fs->lockfd, (fs->readonly ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
		r = -errno == -EWOULDBLOCK ? -EBUSY : -errno;
		zf_err("dev-dir '%s' is in use by another zerofs process", dev_dir);
		goto fail;
	}
	fs->metafd = openat(fs->dirfd, "meta", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	fs->segfd = openat(fs->dirfd, "seg", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fs->metafd < 0 || fs->segfd < 0) {
		r = -errno;
		zf_err("dev-dir '%s' lacks its meta/ or seg/ directory", dev_dir);
		goto fail;
	}
	if (o.zstd_level)
		fs->zstd_level = o.zstd_level;
	r = zf_chunker_new(fs->secret, cmin, cavg, cmax, &fs->chunker);
	if (r < 0) {
		zf_err("superblock of '%s' has invalid chunk sizes", dev_dir);
		r = -EBADMSG;
		goto fail;
	}
	so.zstd_level = fs->zstd_level;
	so.seg_limit = fs->seg_limit;
	so.sc_cache_bytes = o.cache_bytes ? o.cache_bytes : fs->mem_budget / 2;
	so.readonly = fs->readonly || fs->salvage; /* fsck heals through --repair only */
	r = zf_segstore_open(fs->segfd, fs->fsid, fs->chunker, &so, &fs->seg);
	if (r < 0)
		goto fail;
	r = meta_list(fs, &mf);
	if (r < 0)
		goto fail;
	r = fs_load(fs, &mf, &end, &next_seq);
	if (r < 0)
		goto fail;
	if (!fs->readonly && fs->open_seg && !zf_segstore_has(fs->seg, fs->open_seg)) {
		/*
		 * Restored from a bucket: the segment that was open when the
		 * checkpoint was written is only there, sealed. Record that.
		 */
		struct zf_buf b = { 0 };

		zf_put64(zf_buf_grow(&b, 8), fs->open_seg);
		zf_put64(zf_buf_grow(&b, 8), fs->open_end);
		fs->pending_seal = b;
		apply_seal(fs, b.p, b.len, NULL);
	}
	/*
	 * Segments and a durable mark without any metadata: the checkpoint
	 * and the log were lost (not a new dev-dir). Opening would start an
	 * empty filesystem and delete every segment as "never committed".
	 */
	if (!mf.has_ckpt && !mf.nlogs) {
		struct zf_segstore_stats ss;

		zf_segstore_stats(fs->seg, &ss);
		if (ss.segments || fs->synced_seq) {
			zf_err("metadata of '%s' is missing: no checkpoint and no log in meta/, but "
			       "%llu segment files%s", dev_dir, (unsigned long long)ss.segments,
			       fs->synced_seq ? " and a durable mark" : "");
			r = -EBADMSG;
			goto fail;
		}
	}
	/* records are missing: a repair would cut segments and drop files */
	if (fs->meta_lost && !fs->readonly) {
		zf_err("metadata of '%s' has lost records (a checkpoint or log file is missing): "
		       "cannot repair it without losing data", dev_dir);
		r = -EBADMSG;
		goto fail;
	}
	if (!fs->readonly && fs->mark_lost) {
		/*
		 * Synced records are lost: segment bytes the log no longer
		 * knows may hold their data. Keep them all: the open segment
		 * is sealed as it is (nothing cut), and every segment file
		 * counts as sealed (none removed as "never committed").
		 */
		if (fs->open_seg) {
			struct zf_buf b = { 0 };

			zf_put64(zf_buf_grow(&b, 8), fs->open_seg);
			zf_put64(zf_buf_grow(&b, 8), fs->open_end);
			zf_buf_free(&fs->pending_seal);
			fs->pending_seal = b;
			apply_seal(fs, b.p, b.len, NULL);
		}
		r = zf_segstore_resume_keep(fs->seg, &fs->last_sealed);
		if (r < 0)
			goto fail;
	} else if (!fs->readonly) {
		r = zf_segstore_resume(fs->seg, fs->open_seg, fs->open_end, fs->last_sealed);
		if (r == -EBADMSG && fs->salvage && fs->open_seg) {
			/*
			 * The open segment is damaged (header, or shorter than
			 * committed): keep it as it is, sealed, for the checker to
			 * name what it lost; new data goes to a new segment.
			 */
			struct zf_buf b = { 0 };

			zf_warn("segment %llu is damaged: sealing it as it is",
				(unsigned long long)fs->open_seg);
			zf_put64(zf_buf_grow(&b, 8), fs->open_seg);
			zf_put64(zf_buf_grow(&b, 8), fs->open_end);
			zf_buf_free(&fs->pending_seal);
			fs->pending_seal = b;
			apply_seal(fs, b.p, b.len, NULL);
			r = zf_segstore_resume(fs->seg, 0, 0, fs->last_sealed);
		}
		if (r < 0)
			goto fail;
	}
	if (!fs->readonly) {
		if (mf.nlogs && end) {
			char name[64];

			zf_mlog_name(mf.logs[mf.nlogs - 1], name, sizeof(name));
			r = zf_mlog_reopen(fs->metafd, name, end, next_seq, &fs->log);
		} else {
			r = zf_mlog_create(fs->metafd, fs->fsid, next_seq, &fs->log);
		}
		if (r < 0) {
			zf_err("cannot open metadata log of '%s': %s", dev_dir, strerror(-r));
			goto fail;
		}
	}
	if (fs->pending_seal.len) {
		zf_mlog_add_early(fs->log, ZF_REC_SEG_SEAL, fs->pending_seal.p, fs->pending_seal.len);
		zf_buf_free(&fs->pending_seal);
	}
	if (!fs_inode(fs, ZF_ROOT_INO)) {
		if (mf.has_ckpt || mf.nlogs > 1 || next_seq > 1 || fs->readonly) {
			zf_err("metadata of '%s' has no root directory", dev_dir);
			r = -EBADMSG;
			goto fail;
		}
		root_create(fs); /* first open after mkfs */
	}
	/* which record first referenced the open segment is not known: any */
	if (fs->open_seg)
		fs->open_first_seq = 1;
	if (!fs->readonly) {
		reclaim_orphans(fs);
		r = fs_commit(fs);
		/* the workers start on first use, after a daemon's fork; a
		 * salvaging open appends inline: repair is one thread's work */
		fs->pipe_threads = fs->salvage ? -1 : (int)o.threads;
		if (r < 0)
			goto fail;
	}
	free(mf.logs);
	free(mf.ckpts);
	*ret_fs = fs;
	return 0;
fail:
	free(mf.logs);
	free(mf.ckpts);
	fs_free(fs);
	return r;
}

/* --------------------------------------------------------------- commit */

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

int fs_commit(struct zf_fs *fs)
{
	uint64_t seq0;
	int r;

	if (fs->readonly)
		return 0;
	if (zf_mlog_pending(fs->log) == 0 && !fs->pack && !fs_pipe_pending(fs))
		return 0;
	/* every chunk a pending record references gets its super-chunk record */
	r = fs_pack_submit(fs);
	if (r == 0)
		r = fs_pipe_reap(fs, 1);
	if (r == 0)
		r = zf_segstore_sync(fs->seg);
	seq0 = zf_mlog_next_seq(fs->log);
	if (r == 0)
		r = zf_mlog_commit(fs->log);
	if (r < 0)
		return r;
	fs->durable_seq = zf_mlog_next_seq(fs->log) - 1;
	/* this batch may be the first to reference the open segment */
	if (!fs->open_seg)
		fs->open_first_seq = 0;
	else if (!fs->open_first_seq)
		fs->open_first_seq = seq0;
	fs->commits++;
	if (zf_mlog_size(fs->log) >= fs->ckpt_bytes)
		return fs_checkpoint_locked(fs);
	return 0;
}

/* ----------------------------------------------------------- checkpoints */

static int cmp_chunk_sc(const void *a, const void *b)
{
	const struct zf_chunk *x = *(struct zf_chunk *const *)a, *y = *(struct zf_chunk *const *)b;

	if (x->sc != y->sc)
		return zf_cmp_u64(&x->sc->loc.seg, &y->sc->loc.seg) ?: zf_cmp_u64(&x->sc->loc.off,
									     &y->sc->loc.off);
	return x->raw_off < y->raw_off ? -1 : x->raw_off > y->raw_off;
}

#define BAD_PER_RECORD 65536u /* 1 MiB of ids: far below the record size bound */

/* damaged chunks after the super-chunks that locate them (lost ones: nowhere) */
static int ckpt_write_bad(struct zf_fs *fs, struct zf_ckpt_writer *w, struct zf_buf *b)
{
	struct zf_hent *e;
	uint32_t n = 0;
	int r = 0;

	b->len = 0;
	zf_buf_grow(b, 4);
	zf_htab_foreach(&fs->chunks, e)
	{
		struct zf_chunk *c = e->val;

		if (zf_chunk_readable(c) || (!c->sc && !c->refs))
			continue; /* a lost chunk nothing maps any more is gone */
		memcpy(zf_buf_grow(b, ZF_CHUNK_ID_LEN), c->id.b, ZF_CHUNK_ID_LEN);
		if (++n == BAD_PER_RECORD) {
			zf_put32(b->p, n);
			r = zf_ckpt_writer_add(w, ZF_REC_CHUNK_BAD, b->p, b->len);
			if (r)
				return r;
			b->len = 4;
			n = 0;
		}
	}
	if (n) {
		zf_put32(b->p, n);
		r = zf_ckpt_writer_add(w, ZF_REC_CHUNK_BAD, b->p, b->len);
	}
	return r;
}

static int ckpt_write_chunks(struct zf_fs *fs, struct zf_ckpt_writer *w, struct zf_buf *b)
{
	struct zf_chunk **all;
	struct zf_hent *e;
	size_t n = 0, i, j;
	int r = 0;

	all = zf_malloc((fs->chunks.n ? fs->chunks.n : 1) * sizeof(*all));
	zf_htab_foreach(&fs->chunks, e)
	{
		struct zf_chunk *c = e->val;

		if (c->sc) /* lost chunks have no super-chunk: CHUNK_BAD only */
			all[n++] = c;
	}
	qsort(all, n, sizeof(*all), cmp_chunk_sc);
	for (i = 0; i < n && r == 0; i = j) {
		struct zf_sc *sc = all[i]->sc;
		uint8_t *p;

		for (j = i; j < n && all[j]->sc == sc; j++)
			;
		b->len = 0;
		p = zf_buf_grow(b, 28 + (j - i) * ZF_REC_SC_ENT_SIZE);
		zf_put64(p, sc->loc.seg);
		zf_put64(p + 8, sc->loc.off);
		zf_put32(p + 16, sc->loc.disk_len);
		zf_put32(p + 20, sc->loc.raw_len);
		zf_put32(p + 24, j - i);
		for (size_t k = i; k < j; k++) {
			uint8_t *q = p + 28 + (k - i) * ZF_REC_SC_ENT_SIZE;

			memcpy(q, all[k]->id.b, ZF_CHUNK_ID_LEN);
			zf_put32(q + 16, all[k]->raw_off);
			zf_put32(q + 20, all[k]->len);
			zf_put32(q + 24, all[k]->refs);
		}
		r = zf_ckpt_writer_add(w, ZF_REC_SC, b->p, b->len);
	}
	free(all);
	return r ? r : ckpt_write_bad(fs, w, b);
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

static int ckpt_write_inodes(struct zf_fs *fs, struct zf_ckpt_writer *w, struct zf_buf *b)
{
	struct zf_hent *e;
	int r = 0;

	/* pass 1: every inode, so that entries and extents find theirs */
	zf_htab_foreach(&fs->inodes, e)
	{
		b->len = 0;
		rec_inode(b, e->val);
		r = zf_ckpt_writer_add(w, ZF_REC_INODE, b->p, b->len);
		if (r)
			return r;
	}
	zf_htab_foreach(&fs->inodes, e)
	{
		struct zf_inode *in = e->val;
		uint32_t i;

		if (S_ISDIR(in->mode)) {
			struct zf_dir *d = in->u.dir;

			for (i = 0; i < d->nslot && r == 0; i++) {
				struct zf_dirent *de = d->slot[i];
				uint8_t *p;

				if (!de)
					continue;
				b->len = 0;
				p = zf_buf_grow(b, 18 + de->namelen);
				zf_put64(p, in->ino);
				zf_put64(p + 8, de->ino);
				zf_put16(p + 16, de->namelen);
				memcpy(p + 18, de->name, de->namelen);
				r = zf_ckpt_writer_add(w, ZF_REC_DIRENT_ADD, b->p, b->len);
			}
		} else if (S_ISREG(in->mode) && in->u.file->n) {
			b->len = 0;
			rec_extents(b, in->ino, 0, UINT64_MAX, in->u.file->ext, in->u.file->n);
			r = zf_ckpt_writer_add(w, ZF_REC_EXTENTS, b->p, b->len);
		}
		for (i = 0; i < in->nxattr && r == 0; i++) {
			struct zf_xattr *x = &in->xattr[i];
			size_t nl = strlen(x->name);
			uint8_t *p;

			b->len = 0;
			p = zf_buf_grow(b, 14 + nl + x->vlen);
			zf_put64(p, in->ino);
			zf_put16(p + 8, nl);
			zf_put32(p + 10, x->vlen);
			memcpy(p + 14, x->name, nl);
			memcpy(p + 14 + nl, x->val, x->vlen);
			r = zf_ckpt_writer_add(w, ZF_REC_XATTR_SET, b->p, b->len);
		}
		if (r)
			return r;
	}
	return 0;
}

static void remove_old_meta(struct zf_fs *fs, uint64_t ckpt_seq, uint64_t log_first)
{
	struct meta_files mf = { 0 };
	char name[64];
	size_t i;

	if (meta_list(fs, &mf) < 0)
		return;
	for (i = 0; i < mf.nlogs; i++) {
		if (mf.logs[i] >= log_first)
			continue;
		zf_mlog_name(mf.logs[i], name, sizeof(name));
		unlinkat(fs->metafd, name, 0);
	}
	for (i = 0; i < mf.nckpts; i++) {
		if (mf.ckpts[i] >= ckpt_seq)
			continue;
		zf_ckpt_name(mf.ckpts[i], name, sizeof(name));
		unlinkat(fs->metafd, name, 0);
	}
	zf_fsync_dir(fs->metafd);
	free(mf.logs);
	free(mf.ckpts);
}

int fs_mark_synced(struct zf_fs *fs, int exact)
{
	uint64_t seq = __atomic_load_n(&fs->durable_seq, __ATOMIC_RELAXED);
	int r = 0;

	if (fs->readonly)
		return 0;
	pthread_mutex_lock(&fs->mark_lock);
	if (exact ? seq != fs->synced_seq : seq > fs->synced_seq) {
		r = zf_synced_write(fs->metafd, fs->fsid, seq, fs->synced_gen + 1);
		if (r == 0) {
			fs->synced_seq = seq;
			fs->synced_gen++;
		} else {
			zf_err("cannot write '%s/meta/%s': %s", fs->dev_dir, ZF_SYNCED_NAME,
			       strerror(-r));
		}
	}
	pthread_mutex_unlock(&fs->mark_lock);
	return r;
}

int fs_checkpoint_locked(struct zf_fs *fs)
{
	struct zf_ckpt_writer *w;
	struct zf_mlog *nlog;
	struct zf_buf b = { 0 };
	uint64_t seq;
	int r;

	if (fs->readonly)
		return 0;
	r = fs_commit(fs);
	if (r < 0)
		return r;
	seq = zf_mlog_next_seq(fs->log) - 1;
	r = zf_ckpt_writer_new(fs->metafd, fs->fsid, seq, &w);
	if (r < 0)
		goto out;
	{
		uint8_t *p = zf_buf_grow(&b, 32);

		zf_put64(p, fs->next_ino);
		zf_put64(p + 8, fs->open_seg);
		zf_put64(p + 16, fs->open_end);
		zf_put64(p + 24, fs->last_sealed);
	}
	r = zf_ckpt_writer_add(w, ZF_REC_STATE, b.p, b.len);
	if (r == 0)
		r = ckpt_write_chunks(fs, w, &b);
	if (r == 0)
		r = ckpt_write_inodes(fs, w, &b);
	if (r < 0) {
		zf_ckpt_writer_abort(w);
		goto out;
	}
	r = zf_ckpt_writer_finish(w);
	if (r < 0)
		goto out;
	fs->ckpt_seq = seq;
	/* the checkpoint is durable: start a new log and drop what it covers */
	if (zf_mlog_first_seq(fs->log) <= seq) {
		r = zf_mlog_create(fs->metafd, fs->fsid, seq + 1, &nlog);
		if (r < 0)
			goto out;
		zf_mlog_close(fs->log);
		fs->log = nlog;
	}
	remove_old_meta(fs, seq, seq + 1);
	fs->durable_seq = seq;
	r = fs_mark_synced(fs, 1);
out:
	if (r < 0)
		zf_err("cannot write checkpoint of '%s': %s", fs->dev_dir, strerror(-r));
	zf_buf_free(&b);
	return r;
}

int zf_fs_checkpoint(struct zf_fs *fs)
{
	int r;

	fs_lock(fs);
	r = fs_flush_all(fs, 0);
	if (r == 0)
		r = fs_checkpoint_locked(fs);
	fs_unlock(fs);
	return r;
}

/* ---------------------------------------------------------------- close */

int zf_fs_close(struct zf_fs *fs)
{
	int r = 0;

	if (!fs)
		return 0;
	if (!fs->readonly) {
		fs_lock(fs);
		r = fs_flush_all(fs, 0);
		if (r == 0)
			r = fs_checkpoint_locked(fs);
		fs_unlock(fs);
	}
	fs_free(fs);
	return r;
}

const char *zf_fs_dev_dir(const struct zf_fs *fs)
{
	return fs->dev_dir;
}

void zf_fs_abandon(struct zf_fs *fs)
{
	fs_free(fs);
}

/* flush every file (keep_gaps: see fs_flush_all) and commit */
static int sync_all(struct zf_fs *fs, int keep_gaps)
{
	int r;

	fs_lock_for_flush_all(fs);
	r = fs_flush_all(fs, keep_gaps);
	if (r == 0)
		r = fs_commit(fs);
	fs->fsyncs += !keep_gaps;
	fs_unlock(fs);
	/* the mark follows outside the lock: one small fdatasync per sync */
	if (r == 0)
		r = fs_mark_synced(fs, 0);
	return r;
}

int zf_fs_commit_periodic(struct zf_fs *fs)
{
	return sync_all(fs, 1);
}

int zf_fs_sync(struct zf_fs *fs)
{
	return sync_all(fs, 0);
}

int zf_fs_fsync(struct zf_fs *fs, uint64_t ino)
{
	struct zf_inode *in;
	int r = 0;

	fs_lock_for_flush(fs, ino);
	in = fs_inode(fs, ino);
	if (!in)
		r = -ENOENT;
	else if (S_ISREG(in->mode))
		r = fs_file_flush(fs, in, 0);
	if (r == 0)
		r = fs_commit(fs);
	fs->fsyncs++;
	fs_unlock(fs);
	return r;
}

void zf_fs_stats(struct zf_fs *fs, struct zf_fs_stats *ret)
{
	struct zf_segstore_stats ss;
	struct zf_hent *e;
	size_t i;

	memset(ret, 0, sizeof(*ret));
	fs_lock(fs);
	ret->inodes = fs->inodes.n;
	ret->files = fs->nfiles;
	ret->dirs = fs->ndirs;
	zf_htab_foreach(&fs->inodes, e)
	{
		struct zf_inode *in = e->val;

		if (S_ISREG(in->mode)) {
			ret->logical_bytes += fs_isize(in);
			ret->referenced_bytes += in->u.file->mapped;
		}
	}
	zf_htab_foreach(&fs->chunks, e)
	{
		struct zf_chunk *c = e->val;

		ret->chunks++;
		if (c->refs) {
			ret->chunks_live++;
			ret->unique_bytes += c->len;
			if (c->sc)
				ret->stored_live_bytes +=
					(uint64_t)c->len * c->sc->loc.disk_len / c->sc->loc.raw_len;
		}
		if (c->refs > 1)
			ret->chunks_shared++;
	}
	for (i = 0; i < fs->nscs; i++) {
		ret->stored_bytes += fs->scs[i]->loc.disk_len;
		ret->stored_raw_bytes += fs->scs[i]->loc.raw_len;
	}
	ret->log_bytes = fs->log ? zf_mlog_size(fs->log) : 0;
	ret->dirty_bytes = fs->dirty_bytes;
	ret->mem_budget = fs->mem_budget;
	ret->dirty_limit = fs->dirty_limit;
	ret->pipe_bytes = fs->pack ? fs->pack->raw.len : 0;
	ret->commits = fs->commits;
	ret->fsyncs = fs->fsyncs;
	fs_unlock(fs);
	zf_segstore_stats(fs->seg, &ss);
	ret->segments = ss.segments;
	ret->cache_hits = ss.cache_hits;
	ret->cache_misses = ss.cache_misses;
	ret->cache_bytes = ss.sc_cache_bytes;
	ret->cache_max = ss.sc_cache_max;
	ret->healed = ss.healed;
	{
		struct zf_pipe_stats ps;

		fs_pipe_stats(fs, &ps);
		ret->pipe_bytes += 2 * ps.inflight_bytes; /* raw bytes and image */
		ret->packs = ps.packs;
		ret->fast_packs = ps.fast_packs;
		ret->raw_packs = ps.raw_packs;
		ret->readahead = ps.readahead;
	}
}

/* ------------------------------------------- hooks for the object store */

struct zf_segstore *zf_fs_segstore(struct zf_fs *fs)
{
	return fs->seg;
}

void zf_fs_set_admit(struct zf_fs *fs, zf_fs_admit_fn fn, void *ctx)
{
	fs_lock(fs);
	fs->admit_ctx = ctx;
	fs->admit = fn;
	fs_unlock(fs);
}

uint64_t zf_fs_buffered_since(struct zf_fs *fs)
{
	struct zf_inode *in;
	uint64_t t = 0;

	fs_lock(fs);
	for (in = fs->dirty_files; in; in = in->u.file->wb->next)
		if (!t || in->u.file->wb->since < t)
			t = in->u.file->wb->since;
	fs_unlock(fs);
	return t;
}

uint64_t zf_fs_buffered_bytes(struct zf_fs *fs)
{
	uint64_t n;

	fs_lock(fs);
	n = fs->dirty_bytes + (fs->pack ? fs->pack->raw.len : 0);
	if (fs->pipe) {
		struct zf_pipe_stats ps;

		fs_pipe_stats(fs, &ps);
		n += ps.inflight_bytes;
	}
	fs_unlock(fs);
	return n;
}

int zf_fs_upload_point(struct zf_fs *fs, int seal, struct zf_upload_point *ret)
{
	uint64_t sealed = 0;
	int r;

	fs_lock(fs);
	r = fs_commit(fs);
	if (r == 0 && seal && fs->open_seg) {
		r = zf_segstore_seal(fs->seg, &sealed);
		if (r == 0 && sealed) {
			fs_log_seal(fs, sealed);
			r = fs_commit(fs);
		}
	}
	if (r == 0) {
		ret->committed = zf_mlog_next_seq(fs->log) - 1;
		ret->seq = fs->open_first_seq ? fs->open_first_seq - 1 : ret->committed;
		ret->last_sealed = fs->last_sealed;
		ret->ckpt_seq = fs->ckpt_seq;
	}
	fs_unlock(fs);
	return r;
}

struct log_image {
	uint64_t from, to, next;
	struct zf_buf *out;
};

static int log_image_frame(void *ctx, const struct zf_frame *f)
{
	struct log_image *li = ctx;

	if (f->seq > li->to)
		return 0;
	if (f->seq != li->next)
		return -ENOENT; /* a gap: those records live in a checkpoint */
	zf_frame_put(li->out, f->type, f->flags, f->seq, f->payload, f->len);
	li->next++;
	return 0;
}

int zf_fs_log_image(struct zf_fs *fs, uint64_t from, uint64_t to, struct zf_buf *out)
{
	struct log_image li = { .from = from, .to = to, .next = from, .out = out };
	struct meta_files mf = { 0 };
	struct zf_mlog_scan scan;
	size_t start = out->len, i;
	uint8_t *h;
	char name[64];
	int r;

	fs_lock(fs);
	h = zf_buf_grow(out, ZF_LOG_HDR_SIZE);
	memset(h, 0, ZF_LOG_HDR_SIZE);
	memcpy(h, ZF_LOG_MAGIC, 8);
	zf_put32(h + 8, ZF_LOG_VERSION);
	memcpy(h + 16, fs->fsid, 16);
	zf_put64(h + 32, from);
	zf_put64(h + 56, XXH3_64bits(h, 56));
	r = meta_list(fs, &mf);
	for (i = 0; r == 0 && i < mf.nlogs && li.next <= to; i++) {
		if (i + 1 < mf.nlogs && mf.logs[i + 1] <= from)
			continue; /* wholly before the range */
		if (mf.logs[i] > to)
			break;
		zf_mlog_name(mf.logs[i], name, sizeof(name));
		r = zf_mlog_replay(fs->metafd, name, fs->fsid, li.next - 1, log_image_frame, &li,
				   &scan);
	}
	if (r == 0 && li.next != to + 1)
		r = -ENOENT;
	if (r)
		out->len = start;
	fs_unlock(fs);
	free(mf.logs);
	free(mf.ckpts);
	return r < 0 ? r : r ? -EIO : 0;
}

