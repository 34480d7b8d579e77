/*
 * storage/fs_wset.c - the core's side of the working set (tier/wset.c):
 * the durable "pinned" flag of files and directories, and where a file's
 * bytes are (which super-chunks, or still buffered), so that the tier can
 * keep pinned data local, fetch a file ahead of use, drop its local copy
 * and tell what is local.
 *
 * A pinned regular file's data stays in the dev-dir; a pinned directory
 * makes its new files and directories pinned (fs_ns.c create_node). The
 * flag is bit 0 of the INODE record's flags (docs/FORMAT.md), so it
 * survives remount, crash and restore like any attribute.
 *
 * Locking: each call takes fs->lock; what it returns is a copy.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/util.h"
#include "storage/fs_internal.h"
#include "storage/fs_tier.h"
#include "storage/meta_format.h"

int zf_fs_set_pinned(struct zf_fs *fs, uint64_t ino, int on)
{
	uint32_t want = on ? ZF_INODE_PINNED : 0;
	struct zf_inode *in;
	int r = 0;

	fs_lock(fs);
	in = fs_inode(fs, ino);
	if (!in || in->nlink == 0)
		r = -ENOENT;
	else if (!S_ISREG(in->mode) && !S_ISDIR(in->mode))
		r = -EINVAL;
	else if ((in->flags & ZF_INODE_PINNED) != want && fs->readonly)
		r = -EROFS;
	if (r == 0 && (in->flags & ZF_INODE_PINNED) != want) {
		struct zf_inode tmpl = *in; /* the record, applied, sets it (and fs->npinned) */

		tmpl.flags = (in->flags & ~ZF_INODE_PINNED) | want;
		fs_log_inode(fs, &tmpl);
		fs_txn_end(fs);
	}
	fs_unlock(fs);
	return r;
}

int zf_fs_pinned(struct zf_fs *fs, uint64_t ino)
{
	struct zf_inode *in;
	int r;

	fs_lock(fs);
	in = fs_inode(fs, ino);
	r = in ? !!(in->flags & ZF_INODE_PINNED) : -ENOENT;
	fs_unlock(fs);
	return r;
}

/* append a piece, merged with the last one when both are the same place */
static void add_piece(struct zf_file_piece **v, size_t *n, size_t *cap, uint64_t bytes,
		      const struct zf_sc *sc)
{
	struct zf_file_piece *last = *n ? &(*v)[*n - 1] : NULL;

	if (last && last->located == (sc != NULL) &&
	    (!sc || (last->loc.seg == sc->loc.seg && last->loc.off == sc->loc.off))) {
		last->bytes += bytes;
		return;
	}
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*v = zf_realloc(*v, *cap * sizeof(**v));
	}
	last = &(*v)[(*n)++];
	memset(last, 0, sizeof(*last));
	last->bytes = bytes;
	last->located = sc != NULL;
	if (sc)
		last->loc = sc->loc;
}

int zf_fs_file_pieces(struct zf_fs *fs, uint64_t ino, struct zf_file_piece **ret, size_t *ret_n)
{
	struct zf_file_piece *v = NULL;
	size_t n = 0, cap = 0;
	struct zf_inode *in;
	struct zf_file *f;
	uint32_t i;
	int r = 0;

	fs_lock(fs);
	in = fs_inode(fs, ino);
	if (!in)
		r = -ENOENT;
	else if (!S_ISREG(in->mode))
		r = S_ISDIR(in->mode) ? -EISDIR : -EINVAL;
	if (r == 0) {
		f = in->u.file;
		for (i = 0; i < f->n; i++) {
			const struct zf_chunk *c = f->ext[i].c;

			if (c->flags & ZF_CHUNK_LOST)
				continue; /* nowhere: neither local nor in the bucket */
			add_piece(&v, &n, &cap, f->ext[i].len, c->sc);
		}
		if (f->wb && f->wb->bytes)
			add_piece(&v, &n, &cap, f->wb->bytes, NULL);
	}
	fs_unlock(fs);
	*ret = v;
	*ret_n = n;
	return r;
}

static int cmp_loc(const void *a, const void *b)
{
	const struct zf_sc_loc *x = a, *y = b;

	if (x->seg != y->seg)
		return x->seg < y->seg ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

size_t zf_fs_sort_locs(struct zf_sc_loc *v, size_t n)
{
	size_t i, k = 0;

	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_loc);
	for (i = 0; i < n; i++)
		if (!k || cmp_loc(&v[k - 1], &v[i]))
			v[k++] = v[i];
	return k;
}

int zf_fs_pinned_scs(struct zf_fs *fs, struct zf_sc_loc **ret, size_t *ret_n)
{
	struct zf_sc_loc *v = NULL;
	size_t n = 0, cap = 0;
	struct zf_hent *e;

	fs_lock(fs);
	zf_htab_foreach(&fs->inodes, e)
	{
		struct zf_inode *in = e->val;
		uint32_t i;

		if (!fs->npinned)
			break; /* none: no walk */
		if (!(in->flags & ZF_INODE_PINNED) || !S_ISREG(in->mode))
			continue;
		for (i = 0; i < in->u.file->n; i++) {
			const struct zf_sc *sc = in->u.file->ext[i].c->sc;

			if (!sc || (n && !cmp_loc(&v[n - 1], &sc->loc)))
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				v = zf_realloc(v, cap * sizeof(*v));
			}
			v[n++] = sc->loc;
		}
	}
	fs_unlock(fs);
	*ret_n = zf_fs_sort_locs(v, n);
	*ret = v;
	return 0;
}
