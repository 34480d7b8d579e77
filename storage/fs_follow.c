/*
 * storage/fs_follow.c - a replica's table follows the log its writer
 * publishes in the bucket.
 *
 * The tier (tier/follow.c) puts what the bucket holds beyond the last
 * applied record into the replica's meta/: log files after it, or, when
 * the writer's log went past a newer checkpoint (the pieces before it are
 * gone), that checkpoint and the log after it. zf_fs_follow applies them
 * in one of two ways:
 *
 * - along: the new log files are replayed through fs_apply() (the same
 *   function a live operation and an open use) from the record after the
 *   last applied one, under fs->lock;
 * - reload: a second read-only open loads the newest checkpoint and the
 *   log after it, and its table is swapped in whole under fs->lock (a load
 *   that fails changes nothing); the kernel's lookup references move to
 *   the new table by inode number (numbers are never reused).
 *
 * What changed is handed back for the kernel's caches: each inode a record
 * touched, and each directory entry by parent and name. After a reload,
 * every inode the kernel holds. fs->seg_gen moves with every change, so a
 * read planned against the old locations plans again (fs_read.c).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/endian.h"
#include "common/log.h"
#include "common/util.h"
#include "storage/fs_internal.h"
#include "storage/fs_tier.h"
#include "storage/meta_format.h"

static void change_add(struct zf_fs_changes *ch, uint64_t ino, const uint8_t *name, size_t nl)
{
	struct zf_fs_change *c;

	/* a file written in many records is one change */
	if (!name && ch->n && ch->v[ch->n - 1].ino == ino && !ch->v[ch->n - 1].name)
		return;
	if (ch->n == ch->cap) {
		ch->cap = ch->cap ? ch->cap * 2 : 64;
		ch->v = zf_realloc(ch->v, ch->cap * sizeof(*ch->v));
	}
	c = &ch->v[ch->n++];
	c->ino = ino;
	c->name = NULL;
	if (name) {
		c->name = zf_malloc(nl + 1);
		memcpy(c->name, name, nl);
		c->name[nl] = 0;
	}
}

void zf_fs_changes_free(struct zf_fs_changes *ch)
{
	size_t i;

	for (i = 0; i < ch->n; i++)
		free(ch->v[i].name);
	free(ch->v);
	memset(ch, 0, sizeof(*ch));
}

/* what an applied record changed, for the kernel (records are verified) */
static void note_change(struct zf_fs_changes *ch, const struct zf_frame *f)
{
	const uint8_t *p = f->payload;
	size_t at;

	switch (f->type) {
	case ZF_REC_INODE:
	case ZF_REC_INODE_DEL:
	case ZF_REC_EXTENTS:
	case ZF_REC_XATTR_SET:
	case ZF_REC_XATTR_DEL:
		if (f->len >= 8)
			change_add(ch, zf_get64(p), NULL, 0);
		break;
	case ZF_REC_DIRENT_ADD:
	case ZF_REC_DIRENT_DEL:
		at = f->type == ZF_REC_DIRENT_ADD ? 16 : 8;
		if (f->len >= at + 2 && f->len >= at + 2 + zf_get16(p + at)) {
			change_add(ch, zf_get64(p), NULL, 0); /* its listing and times */
			change_add(ch, zf_get64(p), p + at + 2, zf_get16(p + at));
		}
		break;
	default:
		break; /* chunk locations: reads plan again (seg_gen) */
	}
}

struct follow {
	struct zf_fs *fs;
	struct zf_fs_changes *ch;
	struct fs_apply_err err;
};

static int follow_apply(void *ctx, const struct zf_frame *f)
{
	struct follow *fo = ctx;
	int r = fs_apply(fo->fs, f, &fo->err);

	if (r == 0)
		note_change(fo->ch, f);
	return r;
}

/* replay the log files in meta/ past the last applied record; fs->lock held */
static int follow_along(struct zf_fs *fs, struct zf_fs_changes *ch)
{
	struct fs_meta_files mf = { 0 };
	struct follow fo = { .fs = fs, .ch = ch };
	uint64_t applied = fs->durable_seq;
	char name[64];
	size_t i;
	int r;

	r = fs_meta_list(fs, &mf);
	for (i = 0; r == 0 && i < mf.nlogs; i++) {
		struct zf_mlog_scan scan = { 0 };

		if (i + 1 < mf.nlogs && mf.logs[i + 1] <= applied + 1)
			continue; /* wholly applied */
		if (mf.logs[i] > applied + 1) {
			r = -ESTALE; /* records between are missing: a reload's */
			break;
		}
		zf_mlog_name(mf.logs[i], name, sizeof(name));
		fs->replaying = 1;
		r = zf_mlog_replay(fs->metafd, name, fs->fsid, applied, follow_apply, &fo, &scan);
		fs->replaying = 0;
		if (scan.last_seq > applied)
			applied = scan.last_seq;
	}
	if (r > 0)
		r = -EBADMSG; /* an apply refused a record (logged) */
	if (applied != fs->durable_seq)
		fs->seg_gen++;
	fs->durable_seq = applied;
	fs_meta_files_free(&mf);
	return r;
}

#define SWAP(a, b)                                                                                 \
	do {                                                                                       \
		__typeof__(a) t_ = (a);                                                             \
		(a) = (b);                                                                         \
		(b) = t_;                                                                          \
	} while (0)

/* the table of nfs becomes fs's, and fs's nfs's (to be freed with it); fs->lock held */
static void table_swap(struct zf_fs *fs, struct zf_fs *nfs)
{
	SWAP(fs->inodes, nfs->inodes);
	SWAP(fs->next_ino, nfs->next_ino);
	SWAP(fs->chunks, nfs->chunks);
	SWAP(fs->scs, nfs->scs);
	SWAP(fs->nscs, nfs->nscs);
	SWAP(fs->sccap, nfs->sccap);
	SWAP(fs->open_seg, nfs->open_seg);
	SWAP(fs->open_end, nfs->open_end);
	SWAP(fs->last_sealed, nfs->last_sealed);
	SWAP(fs->ckpt_seq, nfs->ckpt_seq);
	SWAP(fs->ckpt_ref_errors, nfs->ckpt_ref_errors);
	SWAP(fs->durable_seq, nfs->durable_seq);
	SWAP(fs->open_first_seq, nfs->open_first_seq);
	SWAP(fs->nfiles, nfs->nfiles);
	SWAP(fs->ndirs, nfs->ndirs);
	SWAP(fs->npinned, nfs->npinned);
}

/* load the table again from meta/ and swap it in */
static int follow_reload(struct zf_fs *fs, struct zf_fs_changes *ch)
{
	struct zf_open_opts oo = { .readonly = 1, .mem_bytes = 64 << 20 };
	struct zf_fs *nfs;
	struct zf_hent *e;
	char dir[64];
	int r;

	/* the dev-dir this fs has open (a daemon's cwd is "/" since it started) */
	snprintf(dir, sizeof(dir), "/proc/self/fd/%d", fs->dirfd);
	r = zf_fs_open(dir, &oo, &nfs);
	if (r < 0)
		return r;
	fs_lock(fs);
	table_swap(fs, nfs);
	/* the kernel's references move over; an inode that went keeps none */
	zf_htab_foreach(&nfs->inodes, e)
	{
		struct zf_inode *old = e->val, *in;

		if (!old->lookups)
			continue;
		in = fs_inode(fs, old->ino);
		if (in)
			in->lookups = old->lookups;
		change_add(ch, old->ino, NULL, 0);
	}
	ch->reloaded = 1;
	fs->seg_gen++;
	fs_meta_prune(fs, fs->ckpt_seq);
	fs_unlock(fs);
	zf_fs_close(nfs); /* read-only: frees the old table, writes nothing */
	return 0;
}

int zf_fs_follow(struct zf_fs *fs, int reload, struct zf_fs_changes *ch)
{
	int r;

	if (!fs->readonly)
		return -EROFS; /* a writer's table is its own log's */
	if (!reload) {
		fs_lock(fs);
		r = follow_along(fs, ch);
		fs_unlock(fs);
		if (r == 0)
			goto out;
		if (r != -ESTALE && r != -EBADMSG)
			return r;
		if (r == -EBADMSG)
			zf_warn("the replica's table does not follow the log: loading it again");
	}
	r = follow_reload(fs, ch);
out:
	ch->applied = zf_fs_applied(fs);
	return r;
}

/* a field of fs, read under its lock (a reload swaps it) */
static uint64_t locked_get(struct zf_fs *fs, const uint64_t *field)
{
	uint64_t v;

	fs_lock(fs);
	v = *field;
	fs_unlock(fs);
	return v;
}

uint64_t zf_fs_applied(struct zf_fs *fs)
{
	return locked_get(fs, &fs->durable_seq);
}

uint64_t zf_fs_ckpt_seq(struct zf_fs *fs)
{
	return locked_get(fs, &fs->ckpt_seq);
}

void zf_fs_follow_prune(struct zf_fs *fs, uint64_t ckpt)
{
	fs_lock(fs);
	if (ckpt > fs->ckpt_seq && ckpt <= fs->durable_seq) {
		fs->ckpt_seq = ckpt;
		fs_meta_prune(fs, fs->ckpt_seq);
	}
	fs_unlock(fs);
}

void zf_fs_set_stale(struct zf_fs *fs, void (*fn)(void *ctx), void *ctx)
{
	fs->stale = fn;
	fs->stale_ctx = ctx;
}
