/*
 * storage/fs_inspect.c - the core's side of storage/fs_inspect.h: the
 * table shown to the checker one inode, entry, extent or chunk at a time,
 * and the changes a repair makes, done here where the table is (each
 * logged record its own transaction, as the repair always did).
 *
 * Locking: as fs_inspect.h says; fs->lock held by the caller.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/endian.h"
#include "common/lock.h"
#include "common/log.h"
#include "common/util.h"
#include "storage/fs_inspect.h"
#include "storage/fs_internal.h"
#include "storage/meta_format.h"

#define BAD_PER_RECORD 65536u	/* ids per CHUNK_BAD record (1 MiB) */

void zf_fs_inspect_lock(struct zf_fs *fs)
{
	zf_mutex_lock(&fs->lock);
}

void zf_fs_inspect_unlock(struct zf_fs *fs)
{
	zf_mutex_unlock(&fs->lock);
}

void zf_fs_inspect_state(struct zf_fs *fs, struct zf_inspect_state *ret)
{
	memset(ret, 0, sizeof(*ret));
	zf_fs_walk_state(fs, &ret->w);
	ret->nchunks = fs->chunks.n;
	ret->meta_lost = fs->meta_lost;
	ret->torn_bytes = fs->torn_bytes;
	ret->ckpt_ref_errors = fs->ckpt_ref_errors;
	ret->notes = fs->salv;
	ret->nnotes = fs->nsalv;
}

/* ------------------------------------------------------------- seeing */

static void inode_of(const struct zf_inode *in, struct zf_inspect_inode *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->ino = in->ino;
	ret->mode = in->mode;
	ret->nlink = in->nlink;
	ret->lookups = in->lookups;
	ret->size = in->size;
	if (S_ISDIR(in->mode)) {
		ret->parent = in->u.dir->parent;
		ret->nents = in->u.dir->nents;
	} else if (S_ISREG(in->mode)) {
		ret->nextents = in->u.file->n;
		ret->mapped = in->u.file->mapped;
	}
}

int zf_fs_inspect_inode(struct zf_fs *fs, uint64_t ino, struct zf_inspect_inode *ret)
{
	struct zf_inode *in = fs_inode(fs, ino);

	if (!in)
		return -ENOENT;
	inode_of(in, ret);
	return 0;
}

int zf_fs_inspect_inodes(struct zf_fs *fs, int (*fn)(void *ctx, const struct zf_inspect_inode *in),
			 void *ctx)
{
	struct zf_inspect_inode v;
	struct zf_hent *e;
	int r;

	zf_htab_foreach(&fs->inodes, e)
	{
		inode_of(e->val, &v);
		r = fn(ctx, &v);
		if (r)
			return r;
	}
	return 0;
}

static struct zf_dir *dir_of(struct zf_fs *fs, uint64_t ino)
{
	struct zf_inode *in = fs_inode(fs, ino);

	return in && S_ISDIR(in->mode) ? in->u.dir : NULL;
}

int zf_fs_inspect_dirent(struct zf_fs *fs, uint64_t dir, uint32_t *pos,
			 struct zf_inspect_dirent *ret)
{
	struct zf_dir *d = dir_of(fs, dir);
	struct zf_dirent *de;

	if (!d)
		return -ENOENT;
	while (*pos < d->nslot && !d->slot[*pos])
		(*pos)++;
	if (*pos >= d->nslot)
		return -ENOENT;
	de = d->slot[(*pos)++];
	ret->ino = de->ino;
	ret->name = de->name;
	ret->namelen = de->namelen;
	ret->dtype = de->dtype;
	ret->by_name = dir_find(d, de->name, de->namelen) == de;
	return 0;
}

int zf_fs_inspect_lookup(struct zf_fs *fs, uint64_t dir, const char *name, uint64_t *ret_ino)
{
	struct zf_dir *d = dir_of(fs, dir);
	struct zf_dirent *de = d ? dir_find(d, name, strlen(name)) : NULL;

	if (!de)
		return -ENOENT;
	*ret_ino = de->ino;
	return 0;
}

int zf_fs_inspect_extents(struct zf_fs *fs, uint64_t ino,
			  int (*fn)(void *ctx, const struct zf_inspect_extent *x), void *ctx)
{
	struct zf_inode *in = fs_inode(fs, ino);
	struct zf_inspect_extent v;
	uint32_t i;
	int r;

	if (!in || !S_ISREG(in->mode))
		return 0;
	for (i = 0; i < in->u.file->n; i++) {
		const struct zf_extent *x = &in->u.file->ext[i];

		v.off = x->off;
		v.len = x->len;
		v.coff = x->coff;
		v.chunk = x->c;
		v.chunk_len = x->c->len;
		r = fn(ctx, &v);
		if (r)
			return r;
	}
	return 0;
}

int zf_fs_inspect_chunks(struct zf_fs *fs, int (*fn)(void *ctx, const struct zf_inspect_chunk *c),
			 void *ctx)
{
	struct zf_inspect_chunk v;
	struct zf_hent *e;
	int r;

	zf_htab_foreach(&fs->chunks, e)
	{
		const struct zf_chunk *c = e->val;

		fs_walk_chunk_of(c, &v.w);
		v.chunk = c;
		v.bad = !!(c->flags & ZF_CHUNK_BAD);
		v.lost = !!(c->flags & ZF_CHUNK_LOST);
		v.in_pack = !c->sc && c->pk && c->raw_off + (uint64_t)c->len <= c->pk->raw.len;
		r = fn(ctx, &v);
		if (r)
			return r;
	}
	return 0;
}

const char *zf_fs_inspect_rec_name(int type, char *buf, size_t len)
{
	return fs_rec_name(type, buf, len);
}

/* ------------------------------------------------------------- doing */

/* add the record in b as its own transaction; b is emptied for the next */
static void do_rec(struct zf_fs *fs, uint8_t type, struct zf_buf *b)
{
	fs_do(fs, type, b);
	fs_txn_end(fs);
	b->len = 0;
}

uint64_t zf_fs_fix_refs(struct zf_fs *fs, uint32_t (*count)(void *ctx, const struct zf_chunk *c),
			void *ctx)
{
	struct zf_hent *e;
	uint64_t fixed = 0;

	zf_htab_foreach(&fs->chunks, e)
	{
		struct zf_chunk *c = e->val;
		uint32_t want = count(ctx, c);

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
	return fixed;
}

static void log_dirent(struct zf_fs *fs, uint64_t dir, uint64_t ino, const char *name)
{
	fs_log_dirent(fs, ZF_REC_DIRENT_ADD, dir, name, ino);
	fs_txn_end(fs);
}

/* 0 if entry name may be added to directory dir: -ENOTDIR or -EEXIST */
static int name_free(struct zf_fs *fs, uint64_t dir, const char *name)
{
	struct zf_dir *d = dir_of(fs, dir);

	if (!d)
		return -ENOTDIR;
	return dir_find(d, name, strlen(name)) ? -EEXIST : 0;
}

int zf_fs_fix_mkdir(struct zf_fs *fs, uint64_t parent, const char *name, uint32_t perm,
		    uint64_t *ret_ino)
{
	struct timespec now = zf_now();
	struct zf_inode in = { 0 };
	struct zf_buf b = { 0 };
	int r = name_free(fs, parent, name);

	if (r < 0)
		return r;
	in.ino = fs->next_ino;
	in.mode = S_IFDIR | (perm & 07777);
	in.nlink = 2;
	in.gen = 1;
	in.atime = in.mtime = in.ctime = now.tv_sec;
	in.atime_ns = in.mtime_ns = in.ctime_ns = now.tv_nsec;
	rec_inode(&b, &in);
	do_rec(fs, ZF_REC_INODE, &b);
	zf_buf_free(&b);
	log_dirent(fs, parent, in.ino, name);
	*ret_ino = in.ino;
	return 0;
}

int zf_fs_fix_link(struct zf_fs *fs, uint64_t dir, uint64_t ino, const char *name)
{
	int r = name_free(fs, dir, name);

	if (r == 0)
		log_dirent(fs, dir, ino, name);
	return r;
}

int zf_fs_fix_nlink(struct zf_fs *fs, uint64_t ino, uint32_t nlink)
{
	struct zf_inode *in = fs_inode(fs, ino), tmp;
	struct zf_buf b = { 0 };

	if (!in)
		return -ENOENT;
	tmp = *in;
	tmp.nlink = nlink;
	rec_inode(&b, &tmp);
	do_rec(fs, ZF_REC_INODE, &b);
	zf_buf_free(&b);
	return 0;
}

void zf_fs_fix_mark_bad(struct zf_fs *fs, const struct zf_chunk_id *ids, size_t n)
{
	struct zf_buf b = { 0 };
	size_t i, k;

	for (i = 0; i < n; i += k) {
		k = n - i < BAD_PER_RECORD ? n - i : BAD_PER_RECORD;
		zf_put32(zf_buf_grow(&b, 4), k);
		memcpy(zf_buf_grow(&b, k * ZF_CHUNK_ID_LEN), ids + i, k * ZF_CHUNK_ID_LEN);
		do_rec(fs, ZF_REC_CHUNK_BAD, &b);
	}
	zf_buf_free(&b);
}

void zf_fs_fix_map(struct zf_fs *fs, uint64_t ino, uint64_t start, uint64_t end,
		   const struct zf_chunk_id *ids, size_t n, uint32_t piece)
{
	struct zf_extent *ext = zf_malloc((n ? n : 1) * sizeof(*ext));
	struct zf_buf b = { 0 };
	size_t k;

	ZF_BUG_ON(n != (end - start + piece - 1) / piece);
	for (k = 0; k < n; k++) {
		uint64_t off = start + k * piece;

		ext[k].off = off;
		ext[k].len = end - off < piece ? end - off : piece;
		ext[k].coff = 0;
		ext[k].c = fs_chunk_find(fs, &ids[k]);
		ZF_BUG_ON(!ext[k].c);
	}
	rec_extents(&b, ino, start, end, ext, n);
	do_rec(fs, ZF_REC_EXTENTS, &b);
	zf_buf_free(&b);
	free(ext);
}

int zf_fs_fix_checkpoint(struct zf_fs *fs)
{
	return fs_checkpoint_locked(fs);
}
