/*
 * daemon/daemon.c - libfuse3 low-level glue: one request in, one call into
 * the storage core, exactly one reply.
 *
 * Lookup counts: every reply that hands the kernel an inode reference
 * (lookup, create, mknod, mkdir, symlink, link, and each readdirplus entry
 * other than "." and "..") takes one core lookup reference in the same
 * core call that finds or makes the node (zf_fs_lookup_ref, zf_fs_create_ref,
 * zf_fs_symlink_ref, zf_fs_link_ref; readdirplus: zf_fs_ref);
 * forget/forget_multi drop them (zf_fs_forget). If a reply fails (the
 * request was interrupted) the reference is dropped again. The core keeps an
 * unlinked inode while the kernel holds a reference, so a file unlinked
 * while open stays readable until the kernel forgets it. Open handles need
 * no references of their own: the kernel holds a lookup reference on
 * an inode for as long as it has it open.
 *
 * Permissions are checked by the kernel (default_permissions, POSIX ACLs);
 * new nodes belong to the caller's uid/gid (setgid directories handled by
 * the core). The kernel leaves the umask to us (FUSE_CAP_DONT_MASK): the core
 * applies it, or the parent's default ACL in its place.
 *
 * Threads: libfuse's multi-threaded loop; the core serialises itself. A
 * committer thread makes buffered writes durable every commit_secs seconds,
 * so a crash loses at most that much of data that was never fsynced.
 * No lock is held here while replying.
 */
#define FUSE_USE_VERSION 312
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/lock.h"
#include "common/log.h"
#include "common/util.h"
#include "daemon/control.h"
#include "daemon/metrics.h"
#include "daemon/daemon.h"
#include "daemon/wset.h"
#include "storage/fs_tier.h"

#define MAX_RW (1u << 20)

struct zf_daemon {
	struct zf_fs *fs;
	struct zf_remote *rm;	/* the bucket, or NULL */
	double timeout;
	unsigned int commit_secs;
	pthread_t committer;
	struct zf_mutex stop_lock;	/* rank ZF_RANK_DAEMON_STOP: stopping */
	pthread_cond_t stop_cond;
	int stopping;		/* protected by stop_lock */
	char *dev_dir;
	struct fuse_session *se;
	int writeback;		/* the kernel caches writes (set at init) */
	int replica;		/* a replica: read-only, following its writer */
};

static struct zf_daemon *dm(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void to_stat(const struct zf_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_rdev = a->rdev;
	st->st_size = a->size;
	st->st_blocks = a->blocks;
	st->st_blksize = 65536;
	st->st_atim = a->atime;
	st->st_mtim = a->mtime;
	st->st_ctim = a->ctime;
}

/* reply with an entry for a, whose lookup reference is taken: dropped again
 * when the reply fails */
static void reply_entry_ref(fuse_req_t req, const struct zf_attr *a)
{
	struct zf_daemon *d = dm(req);
	struct fuse_entry_param e = { 0 };

	e.ino = a->ino;
	e.generation = a->gen;
	e.attr_timeout = d->timeout;
	e.entry_timeout = d->timeout;
	to_stat(a, &e.attr);
	if (fuse_reply_entry(req, &e) != 0)
		zf_fs_forget(d->fs, a->ino, 1); /* the kernel never got it */
}

static void zf_ll_init(void *userdata, struct fuse_conn_info *conn)
{
	struct zf_daemon *d = userdata;

	/* not on a replica: with it the kernel trusts its own file sizes over
	 * ours, and the writer's changes would not show */
	if ((conn->capable & FUSE_CAP_WRITEBACK_CACHE) && !d->replica) {
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
		d->writeback = 1;
	}
	if (conn->capable & FUSE_CAP_POSIX_ACL)
		conn->want |= FUSE_CAP_POSIX_ACL;
	/* the umask is ours to apply: a default ACL replaces it (storage core) */
	if (conn->capable & FUSE_CAP_DONT_MASK)
		conn->want |= FUSE_CAP_DONT_MASK;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO; /* always plus: one round trip */
	conn->max_write = MAX_RW;
	conn->max_readahead = MAX_RW;
}

static void zf_ll_destroy(void *userdata)
{
}

static void zf_ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct zf_attr a;
	int r = zf_fs_lookup_ref(dm(req)->fs, parent, name, &a);

	if (r == -ENOENT) {
		/* a negative entry the kernel may cache as long as a positive one */
		struct fuse_entry_param e = { .entry_timeout = dm(req)->timeout };

		fuse_reply_entry(req, &e);
		return;
	}
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		reply_entry_ref(req, &a);
}

static void zf_ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	zf_fs_forget(dm(req)->fs, ino, nlookup);
	fuse_reply_none(req);
}

static void zf_ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	size_t i;

	for (i = 0; i < count; i++)
		zf_fs_forget(dm(req)->fs, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void zf_ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct zf_attr a;
	struct stat st;
	int r = zf_fs_getattr(dm(req)->fs, ino, &a);

	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	to_stat(&a, &st);
	fuse_reply_attr(req, &st, dm(req)->timeout);
}

static void zf_ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
			  struct fuse_file_info *fi)
{
	struct zf_attr in = { 0 }, out;
	unsigned int set = 0;
	struct stat st;
	int r;

	if (to_set & FUSE_SET_ATTR_MODE)
		set |= ZF_SET_MODE;
	if (to_set & FUSE_SET_ATTR_UID)
		set |= ZF_SET_UID;
	if (to_set & FUSE_SET_ATTR_GID)
		set |= ZF_SET_GID;
	if (to_set & FUSE_SET_ATTR_SIZE)
		set |= ZF_SET_SIZE;
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		set |= ZF_SET_ATIME_NOW;
	else if (to_set & FUSE_SET_ATTR_ATIME)
		set |= ZF_SET_ATIME;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		set |= ZF_SET_MTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_MTIME)
		set |= ZF_SET_MTIME;
	if (to_set & FUSE_SET_ATTR_CTIME)
		set |= ZF_SET_CTIME;
	in.mode = attr->st_mode;
	in.uid = attr->st_uid;
	in.gid = attr->st_gid;
	in.size = attr->st_size;
	in.atime = attr->st_atim;
	in.mtime = attr->st_mtim;
	in.ctime = attr->st_ctim;
	if (to_set & FUSE_SET_ATTR_SIZE && attr->st_size < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	r = zf_fs_setattr(dm(req)->fs, ino, set, &in, &out);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	to_stat(&out, &st);
	fuse_reply_attr(req, &st, dm(req)->timeout);
}

static void zf_ll_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[4097];
	ssize_t n = zf_fs_readlink(dm(req)->fs, ino, buf, sizeof(buf) - 1);

	if (n < 0) {
		fuse_reply_err(req, -n);
		return;
	}
	buf[n] = 0;
	fuse_reply_readlink(req, buf);
}

static void zf_ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
			dev_t rdev)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	struct zf_attr a;
	int r = S_ISDIR(mode) ? -EINVAL
			      : zf_fs_create_ref(dm(req)->fs, parent, name, mode, rdev, c->umask,
						 c->uid, c->gid, &a);

	if (r < 0)
		fuse_reply_err(req, -r);
	else
		reply_entry_ref(req, &a);
}

static void zf_ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	struct zf_attr a;
	int r = zf_fs_create_ref(dm(req)->fs, parent, name, S_IFDIR | (mode & 07777), 0,
				 c->umask, c->uid, c->gid, &a);

	if (r < 0)
		fuse_reply_err(req, -r);
	else
		reply_entry_ref(req, &a);
}

static void zf_ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	struct zf_attr a;
	int r = zf_fs_symlink_ref(dm(req)->fs, parent, name, link, c->uid, c->gid, &a);

	if (r < 0)
		fuse_reply_err(req, -r);
	else
		reply_entry_ref(req, &a);
}

static void zf_ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct zf_attr a;
	int r = zf_fs_link_ref(dm(req)->fs, ino, newparent, newname, &a);

	if (r < 0)
		fuse_reply_err(req, -r);
	else
		reply_entry_ref(req, &a);
}

static void zf_ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -zf_fs_unlink(dm(req)->fs, parent, name));
}

static void zf_ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -zf_fs_rmdir(dm(req)->fs, parent, name));
}

static void zf_ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
			 fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	fuse_reply_err(req,
		       -zf_fs_rename(dm(req)->fs, parent, name, newparent, newname, flags));
}

/*
 * This daemon is the only writer: cached pages stay valid. But while the
 * dev-dir is nearly full, the kernel's write-back cache would acknowledge
 * writes that cannot be stored (the error would come at close, and the
 * cache would show bytes that are not kept): such opens bypass the cache,
 * so each write(2) gets its own ENOSPC.
 */
#define ZF_SPACE_MARGIN (256ull << 20)

static void open_cache_mode(struct zf_daemon *d, struct fuse_file_info *fi)
{
	if ((fi->flags & O_ACCMODE) != O_RDONLY && zf_fs_space_low(d->fs, ZF_SPACE_MARGIN)) {
		fi->direct_io = 1;
		fi->keep_cache = 0;
		return;
	}
	fi->keep_cache = 1;
}

static void zf_ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct zf_attr a;
	int r = zf_fs_getattr(dm(req)->fs, ino, &a);

	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	if (S_ISDIR(a.mode)) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	/*
	 * libfuse enables FUSE_CAP_ATOMIC_O_TRUNC: the kernel then sends no
	 * setattr for open(O_TRUNC) and drops its cached size to 0 itself, so
	 * the truncation is ours (without it the old bytes beyond what is
	 * written next come back at the next mount).
	 */
	if ((fi->flags & O_TRUNC) && S_ISREG(a.mode)) {
		struct zf_attr in = { .size = 0 };

		r = zf_fs_setattr(dm(req)->fs, ino, ZF_SET_SIZE, &in, &a);
		if (r < 0) {
			fuse_reply_err(req, -r);
			return;
		}
	}
	open_cache_mode(dm(req), fi);
	fuse_reply_open(req, fi);
}

static void zf_ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
			 struct fuse_file_info *fi)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	struct zf_daemon *d = dm(req);
	struct fuse_entry_param e = { 0 };
	struct zf_attr a;
	int r;

	r = zf_fs_create_ref(d->fs, parent, name, (mode & 07777) | S_IFREG, 0, c->umask, c->uid,
			     c->gid, &a);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	e.ino = a.ino;
	e.generation = a.gen;
	e.attr_timeout = e.entry_timeout = d->timeout;
	to_stat(&a, &e.attr);
	open_cache_mode(d, fi);
	if (fuse_reply_create(req, &e, fi) != 0)
		zf_fs_forget(d->fs, a.ino, 1);
}

static void zf_ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	char *buf;
	ssize_t n;

	if (size > MAX_RW)
		size = MAX_RW;
	buf = zf_malloc(size);
	n = zf_fs_read(dm(req)->fs, ino, buf, size, off);
	if (n < 0)
		fuse_reply_err(req, -n);
	else
		fuse_reply_buf(req, buf, n);
	free(buf);
}

static void zf_ll_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t off,
			    struct fuse_file_info *fi)
{
	size_t len = fuse_buf_size(in);
	struct fuse_bufvec dst = FUSE_BUFVEC_INIT(len);
	ssize_t n;
	char *buf;

	if (in->count == 1 && !(in->buf[0].flags & FUSE_BUF_IS_FD)) {
		/* the common case: the request's own memory, no copy */
		n = zf_fs_write(dm(req)->fs, ino, in->buf[0].mem, len, off);
	} else {
		buf = zf_malloc(len ? len : 1);
		dst.buf[0].mem = buf;
		n = fuse_buf_copy(&dst, in, 0);
		if (n >= 0)
			n = zf_fs_write(dm(req)->fs, ino, buf, n, off);
		free(buf);
	}
	if (n < 0)
		fuse_reply_err(req, -n);
	else
		fuse_reply_write(req, n);
}

static void zf_ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, -zf_fs_flush(dm(req)->fs, ino));
}

static void zf_ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

static void zf_ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	fuse_reply_err(req, -zf_fs_fsync(dm(req)->fs, ino));
}

static void zf_ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct zf_attr a;
	int r = zf_fs_getattr(dm(req)->fs, ino, &a);

	if (r == 0 && !S_ISDIR(a.mode))
		r = -ENOTDIR;
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	fi->cache_readdir = 0;
	fuse_reply_open(req, fi);
}

/* entries gathered under the core's lock, turned into a reply after it */
struct dent {
	uint64_t ino, off;
	uint32_t mode;
	char *name;
};

struct dlist {
	struct dent *v;
	size_t n, max;
};

static int gather(void *ctx, const char *name, uint64_t ino, uint32_t mode, uint64_t off)
{
	struct dlist *l = ctx;

	if (l->n == l->max)
		return 1;
	l->v[l->n].ino = ino;
	l->v[l->n].off = off;
	l->v[l->n].mode = mode;
	l->v[l->n].name = zf_strdup(name);
	l->n++;
	return 0;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, int plus)
{
	struct zf_daemon *d = dm(req);
	struct dlist l = { 0 };
	size_t used = 0, i;
	char *buf;
	int r;

	/* an entry takes at least 24 (plain) or 152 (plus) bytes of the reply */
	l.max = size / (plus ? 152 : 24) + 1;
	l.v = zf_calloc(l.max, sizeof(*l.v));
	r = zf_fs_readdir(d->fs, ino, off, gather, &l);
	if (r < 0) {
		fuse_reply_err(req, -r);
		goto out;
	}
	buf = zf_malloc(size);
	for (i = 0; i < l.n; i++) {
		struct dent *e = &l.v[i];
		size_t n;

		if (plus) {
			struct fuse_entry_param ep = { 0 };
			struct zf_attr a;
			int dot = !strcmp(e->name, ".") || !strcmp(e->name, "..");

			if (zf_fs_getattr(d->fs, e->ino, &a) < 0)
				continue; /* removed since: skip it */
			to_stat(&a, &ep.attr);
			if (!dot) {
				ep.ino = a.ino;
				ep.generation = a.gen;
				ep.attr_timeout = ep.entry_timeout = d->timeout;
			}
			n = fuse_add_direntry_plus(req, buf + used, size - used, e->name, &ep, e->off);
			if (n > size - used)
				break;
			/* the kernel now holds a lookup reference (not for . and ..) */
			if (!dot && zf_fs_ref(d->fs, a.ino) < 0)
				break;
		} else {
			struct stat st = { .st_ino = e->ino, .st_mode = e->mode };

			n = fuse_add_direntry(req, buf + used, size - used, e->name, &st, e->off);
			if (n > size - used)
				break;
		}
		used += n;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
out:
	for (i = 0; i < l.n; i++)
		free(l.v[i].name);
	free(l.v);
}

static void zf_ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			  struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, 0);
}

static void zf_ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			      struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, 1);
}

static void zf_ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

static void zf_ll_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			   struct fuse_file_info *fi)
{
	fuse_reply_err(req, -zf_fs_fsync(dm(req)->fs, ino));
}

static void zf_ll_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct zf_daemon *d = dm(req);
	struct zf_fs_stats s;
	struct statvfs sv, out = { 0 };

	if (statvfs(d->dev_dir, &sv) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	zf_fs_stats(d->fs, &s);
	/* space is the dev-dir's; used space counts logical bytes stored */
	out.f_bsize = sv.f_bsize;
	out.f_frsize = sv.f_frsize;
	out.f_blocks = sv.f_blocks;
	out.f_bfree = sv.f_bfree;
	out.f_bavail = sv.f_bavail;
	out.f_files = s.inodes + (1ull << 32);
	out.f_ffree = 1ull << 32;
	out.f_favail = 1ull << 32;
	out.f_namemax = ZF_NAME_LEN;
	fuse_reply_statfs(req, &out);
}

static void zf_ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			   size_t size, int flags)
{
	struct zf_daemon *d = dm(req);

	if (zf_wset_name(name)) {
		int r = zf_wset_set(d->fs, d->rm, ino, name);

		fuse_reply_err(req, -r);
		/* evicted: the kernel's cached pages go too (after the reply:
		 * the kernel holds the inode's lock until then) */
		if (r == 0 && zf_wset_evicts(name))
			fuse_lowlevel_notify_inval_inode(d->se, ino, 0, 0);
	} else
		fuse_reply_err(req, -zf_fs_setxattr(d->fs, ino, name, value, size, flags));
}

/* the reply of getxattr/listxattr: a size query (size 0), the bytes, or an error */
static void reply_xattr(fuse_req_t req, ssize_t n, const char *buf, size_t size)
{
	if (n < 0)
		fuse_reply_err(req, -n);
	else if (size == 0)
		fuse_reply_xattr(req, n);
	else
		fuse_reply_buf(req, buf, n);
}

static void zf_ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct zf_daemon *d = dm(req);
	char *buf = size ? zf_malloc(size) : NULL;

	if (zf_wset_name(name))
		reply_xattr(req, zf_wset_get(d->fs, d->rm, ino, name, buf, size), buf, size);
	else
		reply_xattr(req, zf_fs_getxattr(d->fs, ino, name, buf, size), buf, size);
	free(buf);
}

static void zf_ll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char *buf = size ? zf_malloc(size) : NULL;

	reply_xattr(req, zf_fs_listxattr(dm(req)->fs, ino, buf, size), buf, size);
	free(buf);
}

static void zf_ll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct zf_daemon *d = dm(req);

	if (zf_wset_name(name))
		fuse_reply_err(req, -zf_wset_remove(d->fs, d->rm, ino, name));
	else
		fuse_reply_err(req, -zf_fs_removexattr(d->fs, ino, name));
}

static void zf_ll_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct zf_attr a;

	/* default_permissions: the kernel decides; only existence is ours */
	fuse_reply_err(req, -zf_fs_getattr(dm(req)->fs, ino, &a));
}

static void zf_ll_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			    struct fuse_file_info *fi)
{
	if (off < 0 || len <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	fuse_reply_err(req, -zf_fs_fallocate(dm(req)->fs, ino, mode, off, len));
}

static void zf_ll_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
			struct fuse_file_info *fi)
{
	struct zf_daemon *d = dm(req);
	int64_t r;

	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	/*
	 * The kernel does not write its dirty pages back before asking: bytes
	 * it caches are data we have not seen, and a size we do not know yet.
	 * Invalidating its cache from off on launders them to us first.
	 */
	if (d->writeback)
		fuse_lowlevel_notify_inval_inode(d->se, ino, off, 0);
	r = zf_fs_lseek(dm(req)->fs, ino, off, whence);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_lseek(req, r);
}

static void zf_ll_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
				  struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
				  struct fuse_file_info *fi_out, size_t len, int flags)
{
	ssize_t n;

	if (flags) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	n = zf_fs_copy_range(dm(req)->fs, ino_in, off_in, ino_out, off_out, len);
	if (n < 0)
		fuse_reply_err(req, -n);
	else
		fuse_reply_write(req, n);
}

static const struct fuse_lowlevel_ops zf_ll_ops = {
	.init = zf_ll_init,
	.destroy = zf_ll_destroy,
	.lookup = zf_ll_lookup,
	.forget = zf_ll_forget,
	.forget_multi = zf_ll_forget_multi,
	.getattr = zf_ll_getattr,
	.setattr = zf_ll_setattr,
	.readlink = zf_ll_readlink,
	.mknod = zf_ll_mknod,
	.mkdir = zf_ll_mkdir,
	.symlink = zf_ll_symlink,
	.link = zf_ll_link,
	.unlink = zf_ll_unlink,
	.rmdir = zf_ll_rmdir,
	.rename = zf_ll_rename,
	.open = zf_ll_open,
	.create = zf_ll_create,
	.read = zf_ll_read,
	.write_buf = zf_ll_write_buf,
	.flush = zf_ll_flush,
	.release = zf_ll_release,
	.fsync = zf_ll_fsync,
	.opendir = zf_ll_opendir,
	.readdir = zf_ll_readdir,
	.readdirplus = zf_ll_readdirplus,
	.releasedir = zf_ll_releasedir,
	.fsyncdir = zf_ll_fsyncdir,
	.statfs = zf_ll_statfs,
	.setxattr = zf_ll_setxattr,
	.getxattr = zf_ll_getxattr,
	.listxattr = zf_ll_listxattr,
	.removexattr = zf_ll_removexattr,
	.access = zf_ll_access,
	.fallocate = zf_ll_fallocate,
	.lseek = zf_ll_lseek,
	.copy_file_range = zf_ll_copy_file_range,
};

/* make buffered data durable every commit_secs until stopped */
static void *committer_main(void *arg)
{
	struct zf_daemon *d = arg;
	struct timespec ts;
	int r;

	zf_mutex_lock(&d->stop_lock);
	while (!d->stopping) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += d->commit_secs;
		zf_cond_timedwait(&d->stop_cond, &d->stop_lock, &ts);
		if (d->stopping)
			break;
		zf_mutex_unlock(&d->stop_lock);
		r = zf_fs_commit_periodic(d->fs);
		if (r < 0)
			zf_err("periodic commit failed: %s (will retry)", strerror(-r));
		/* after a burst, give the freed buffers back to the system
		 * (glibc keeps them in its arenas otherwise) */
		else if (zf_fs_buffered_bytes(d->fs) == 0)
			malloc_trim(0);
		zf_mutex_lock(&d->stop_lock);
	}
	zf_mutex_unlock(&d->stop_lock);
	return NULL;
}

/*
 * Where messages go from now on (see zf_daemon_opts.log), chosen before
 * daemonizing so that a log file that cannot be opened, or syslog's
 * absence, is said on the terminal. 0 or -errno (logged).
 */
static int log_sink(const struct zf_daemon_opts *o, const char *dev_dir)
{
	int bg = !o->foreground && !o->debug, r;
	const char *log = o->log ? o->log : bg ? "syslog" : "stderr";
	char path[PATH_MAX];

	if (!strcmp(log, "stderr"))
		return bg ? zf_log_keep_stderr() : 0; /* daemonizing closes fd 2 */
	if (!strcmp(log, "syslog")) {
		if (zf_log_syslog_reachable()) {
			zf_log_init("zerofs", 1, zf_log_get_level());
			return 0;
		}
		snprintf(path, sizeof(path), "%s/zerofs.log", dev_dir);
		zf_warn("syslog is not reachable (no /dev/log): logging to '%s'", path);
		log = path;
	}
	r = zf_log_to_file(log);
	if (r < 0)
		zf_err("cannot open the log file '%s': %s", log, strerror(-r));
	return r;
}

/*
 * A replica applied its writer's changes (the follower thread, never a
 * request's): what the kernel cached of them goes. An inode or entry the
 * kernel does not know answers -ENOENT, which is fine.
 */
static void replica_changed(void *ctx, const struct zf_fs_changes *ch)
{
	struct zf_daemon *d = ctx;
	size_t i;

	for (i = 0; i < ch->n; i++) {
		const struct zf_fs_change *c = &ch->v[i];

		if (c->name)
			fuse_lowlevel_notify_inval_entry(d->se, c->ino, c->name, strlen(c->name));
		else
			fuse_lowlevel_notify_inval_inode(d->se, c->ino, 0, 0);
	}
}

int zf_daemon_run(struct zf_fs *fs, const char *mnt, const struct zf_daemon_opts *o)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config *cfg = NULL;
	struct fuse_session *se = NULL;
	struct zf_control *ctl = NULL;
	struct zf_metrics *metrics = NULL;
	struct zf_daemon d = { 0 };
	int r = 0, mounted = 0, committer = 0, closed, pending;
	char opts[4 * 4096], fsname[2 * 4096], *amnt;
	const char *p;
	size_t n = 0;

	d.fs = fs;
	d.rm = o->remote;
	d.replica = o->replica || o->snapshot;
	d.timeout = o->timeout > 0 ? o->timeout : 1.0;
	d.commit_secs = o->commit_secs ? o->commit_secs : 5;
	/* absolute: statfs and the fsname (which umount reads) outlive our cwd */
	d.dev_dir = realpath(zf_fs_dev_dir(fs), NULL);
	if (!d.dev_dir)
		d.dev_dir = zf_strdup(zf_fs_dev_dir(fs));
	/* and the mountpoint: a signal makes libfuse unmount it after
	 * fuse_daemonize() moved us to "/" (a relative one stayed mounted, dead) */
	amnt = realpath(mnt, NULL);
	if (!amnt)
		amnt = zf_strdup(mnt);
	zf_mutex_init(&d.stop_lock, ZF_RANK_DAEMON_STOP, "d->stop_lock");
	pthread_cond_init(&d.stop_cond, NULL);
	/* libfuse splits -o at commas: escape them (and backslashes) in the path */
	for (p = d.dev_dir; *p && n < sizeof(fsname) - 3; p++) {
		if (*p == ',' || *p == '\\')
			fsname[n++] = '\\';
		fsname[n++] = *p;
	}
	fsname[n] = 0;
	snprintf(opts, sizeof(opts), "default_permissions,fsname=zerofs:%s,subtype=zerofs%s%s%s",
		 fsname, d.replica ? ",ro" : "", o->fuse_opts && *o->fuse_opts ? "," : "",
		 o->fuse_opts ? o->fuse_opts : "");
	if (fuse_opt_add_arg(&args, "zerofs") || fuse_opt_add_arg(&args, "-o") ||
	    fuse_opt_add_arg(&args, opts) || (o->debug && fuse_opt_add_arg(&args, "-d"))) {
		r = -ENOMEM;
		goto out;
	}
	se = fuse_session_new(&args, &zf_ll_ops, sizeof(zf_ll_ops), &d);
	d.se = se;
	if (!se) {
		zf_err("cannot start a FUSE session (bad -o options '%s'?)",
		       o->fuse_opts ? o->fuse_opts : "");
		r = -EINVAL;
		goto out;
	}
	if (fuse_set_signal_handlers(se) != 0) {
		r = -EIO;
		goto out;
	}
	if (fuse_session_mount(se, amnt) != 0) {
		zf_err("cannot mount on '%s'", mnt);
		r = -EIO;
		goto out_signals;
	}
	mounted = 1;
	r = log_sink(o, d.dev_dir);
	if (r < 0)
		goto out_unmount;
	if (!o->foreground && !o->debug) {
		if (fuse_daemonize(0) != 0) {
			r = -EIO;
			goto out_unmount;
		}
	}
	if (pthread_create(&d.committer, NULL, committer_main, &d) == 0)
		committer = 1;
	if (o->remote && o->snapshot) {
		/* fetches only: a snapshot does not change */
	} else if (o->remote && o->replica) {
		if (zf_remote_follow_start(o->remote, replica_changed, &d) < 0)
			zf_err("cannot follow the writer: the replica stays as it is");
	} else if (o->remote && zf_remote_start(o->remote) < 0) {
		zf_err("cannot start uploads to the bucket: data stays local until the next mount");
	}
	r = zf_control_start(fs, o->remote, d.dev_dir, &ctl);
	if (r < 0) /* the mount works without it; stats/sync on it will not */
		zf_warn("no control socket for '%s': %s", d.dev_dir, strerror(-r));
	if (o->metrics_file &&
	    (r = zf_metrics_start(o->metrics_file, o->metrics_secs ? o->metrics_secs : 15, fs,
				  o->remote, &metrics)) < 0)
		zf_warn("no metrics file '%s': %s", o->metrics_file, strerror(-r));
	r = 0;
	zf_info("mounted '%s' on '%s'", d.dev_dir, mnt);
	cfg = fuse_loop_cfg_create();
	fuse_loop_cfg_set_max_threads(cfg, 16);
	fuse_loop_cfg_set_clone_fd(cfg, 0);
	/* 0, -errno, or the (positive) signal that asked for a clean stop */
	r = fuse_session_loop_mt(se, cfg);
	if (r > 0)
		zf_info("signal %d: unmounting '%s'", r, mnt);
	r = r < 0 ? -EIO : 0;
	fuse_loop_cfg_destroy(cfg);
out_unmount:
	zf_remote_stopping(o->remote); /* a sync that waits must not hold up the stop */
	zf_remote_follow_stop(o->remote); /* its notifications use the session */
	zf_metrics_stop(metrics);
	zf_control_stop(ctl);
	if (committer) {
		zf_mutex_lock(&d.stop_lock);
		d.stopping = 1;
		pthread_cond_signal(&d.stop_cond);
		zf_mutex_unlock(&d.stop_lock);
		pthread_join(d.committer, NULL);
	}
	if (mounted)
		fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out:
	if (se)
		fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	/* everything buffered is flushed, shipped (unless the bucket is away:
	 * then it stays for the next mount, said) and checkpointed before we go */
	pending = zf_remote_close(o->remote) < 0;
	closed = zf_fs_close(fs);
	if (closed < 0)
		zf_err("cannot flush '%s' at unmount: %s", d.dev_dir, strerror(-closed));
	else if (mounted)
		zf_info("unmounted '%s' cleanly%s", d.dev_dir,
			pending ? ", uploads left pending for the next mount" : "");
	free(d.dev_dir);
	free(amnt);
	pthread_cond_destroy(&d.stop_cond);
	zf_mutex_destroy(&d.stop_lock);
	return r ? r : closed ? closed : pending ? ZF_DAEMON_PENDING : 0;
}
