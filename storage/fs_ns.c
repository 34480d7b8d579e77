/*
 * storage/fs_ns.c - namespace operations of the core: lookup, create, link,
 * unlink, rename (NOREPLACE, EXCHANGE, atomic replace), attributes, readdir
 * and the kernel's lookup references. Extended attributes and POSIX ACLs:
 * fs_xattr.c.
 *
 * Each operation validates under fs->lock, then emits its records as one
 * transaction through fs_do(), so it is atomic across a crash. A regular
 * file with buffered data is flushed *before* the transaction starts (its
 * flush is a transaction of its own), so no inode record ever claims a size
 * that covers unlogged bytes.
 *
 * Unlinked inodes stay while the kernel holds lookup references to them
 * (it holds one on every open file); the last forget reclaims them; after
 * a crash fs.c reclaims them at open.
 */
#include "config.h"

#include <errno.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "common/endian.h"
#include "common/log.h"
#include "common/util.h"
#include "storage/fs_internal.h"
#include "storage/fs_ns.h"
#include "storage/meta_format.h"

#define SYMLINK_MAX 4095u

static void fill_attr(const struct zf_inode *in, struct zf_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->ino = in->ino;
	a->mode = in->mode;
	a->uid = in->uid;
	a->gid = in->gid;
	a->nlink = in->nlink;
	a->rdev = in->rdev;
	a->gen = in->gen;
	a->size = fs_isize(in);
	if (S_ISREG(in->mode))
		a->blocks = (in->u.file->mapped + fs_dirty_bytes(in) + 511) / 512;
	else if (S_ISDIR(in->mode))
		a->size = 4096;
	a->atime.tv_sec = in->atime;
	a->atime.tv_nsec = in->atime_ns;
	a->mtime.tv_sec = in->mtime;
	a->mtime.tv_nsec = in->mtime_ns;
	a->ctime.tv_sec = in->ctime;
	a->ctime.tv_nsec = in->ctime_ns;
}

void fs_log_inode(struct zf_fs *fs, struct zf_inode *in)
{
	struct zf_buf b = { 0 };

	rec_inode(&b, in);
	fs_do(fs, ZF_REC_INODE, &b);
	zf_buf_free(&b);
}

static void log_u64(struct zf_fs *fs, uint8_t type, uint64_t v)
{
	struct zf_buf b = { 0 };

	zf_put64(zf_buf_grow(&b, 8), v);
	fs_do(fs, type, &b);
	zf_buf_free(&b);
}

void fs_log_dirent(struct zf_fs *fs, uint8_t type, uint64_t parent, const char *name,
		   uint64_t ino)
{
	struct zf_buf b = { 0 };
	size_t nl = strlen(name);
	uint8_t *p;

	if (type == ZF_REC_DIRENT_ADD) {
		p = zf_buf_grow(&b, 18 + nl);
		zf_put64(p, parent);
		zf_put64(p + 8, ino);
		zf_put16(p + 16, nl);
		memcpy(p + 18, name, nl);
	} else {
		p = zf_buf_grow(&b, 10 + nl);
		zf_put64(p, parent);
		zf_put16(p + 8, nl);
		memcpy(p + 10, name, nl);
	}
	fs_do(fs, type, &b);
	zf_buf_free(&b);
}

void fs_set_now(int64_t *sec, uint32_t *ns, struct timespec now)
{
	*sec = now.tv_sec;
	*ns = now.tv_nsec;
}

static void touch_dir(struct zf_inode *dir, struct timespec now)
{
	fs_set_now(&dir->mtime, &dir->mtime_ns, now);
	fs_set_now(&dir->ctime, &dir->ctime_ns, now);
}

static int check_name(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || strchr(name, '/'))
		return -EINVAL;
	if (n > ZF_NAME_LEN)
		return -ENAMETOOLONG;
	return 0;
}

/* the directory inode for parent, or an error */
static int get_dir(struct zf_fs *fs, uint64_t ino, struct zf_inode **ret)
{
	struct zf_inode *in = fs_inode(fs, ino);

	if (!in)
		return -ENOENT;
	if (!S_ISDIR(in->mode))
		return -ENOTDIR;
	*ret = in;
	return 0;
}

int fs_settle(struct zf_fs *fs, struct zf_inode *in)
{
	if (fs_dirty_bytes(in) && in->nlink > 0)
		return fs_file_flush(fs, in, 0);
	return 0;
}

/* one link fewer: log it, and reclaim the inode if nothing holds it */
static void drop_link(struct zf_fs *fs, struct zf_inode *in, struct timespec now)
{
	if (S_ISDIR(in->mode))
		in->nlink = 0;
	else
		in->nlink--;
	fs_set_now(&in->ctime, &in->ctime_ns, now);
	fs_log_inode(fs, in);
	if (in->nlink == 0 && in->lookups == 0)
		log_u64(fs, ZF_REC_INODE_DEL, in->ino);
}

void fs_maybe_reclaim(struct zf_fs *fs, struct zf_inode *in)
{
	if (in->nlink == 0 && in->lookups == 0 && !fs->readonly) {
		log_u64(fs, ZF_REC_INODE_DEL, in->ino);
		fs_txn_end(fs);
	}
}

int zf_fs_getattr(struct zf_fs *fs, uint64_t ino, struct zf_attr *ret_attr)
{
	struct zf_inode *in;
	int r = -ENOENT;

	fs_lock(fs);
	in = fs_inode(fs, ino);
	if (in) {
		fill_attr(in, ret_attr);
		r = 0;
	}
	fs_unlock(fs);
	return r;
}

/* what name in directory parent is (fs->lock held): 0 and *ret_in, or -errno */
static int lookup_locked(struct zf_fs *fs, uint64_t parent, const char *name,
			 struct zf_inode **ret_in)
{
	struct zf_inode *dir, *in = NULL;
	struct zf_dirent *de;
	int r;

	r = get_dir(fs, parent, &dir);
	if (r)
		return r;
	if (strlen(name) > ZF_NAME_LEN)
		return -ENAMETOOLONG;
	if (strcmp(name, ".") == 0) {
		in = dir;
	} else if (strcmp(name, "..") == 0) {
		in = fs_inode(fs, dir->ino == ZF_ROOT_INO ? ZF_ROOT_INO : dir->u.dir->parent);
	} else {
		de = dir_find(dir->u.dir, name, strlen(name));
		if (de)
			in = fs_inode(fs, de->ino);
	}
	if (!in)
		return -ENOENT;
	*ret_in = in;
	return 0;
}

int zf_fs_lookup(struct zf_fs *fs, uint64_t parent, const char *name, struct zf_attr *ret_attr)
{
	struct zf_inode *in;
	int r;

	fs_lock(fs);
	r = lookup_locked(fs, parent, name, &in);
	if (r == 0)
		fill_attr(in, ret_attr);
	fs_unlock(fs);
	return r;
}

/* one more kernel lookup reference on in (fs->lock held) */
static int lookup_ref_locked(struct zf_inode *in)
{
	if (in->lookups == UINT32_MAX)
		return -EMFILE;
	in->lookups++;
	return 0;
}

int zf_fs_lookup_ref(struct zf_fs *fs, uint64_t parent, const char *name,
		     struct zf_attr *ret_attr)
{
	struct zf_inode *in;
	int r;

	fs_lock(fs);
	r = lookup_locked(fs, parent, name, &in);
	if (r == 0)
		r = lookup_ref_locked(in);
	if (r == 0)
		fill_attr(in, ret_attr);
	fs_unlock(fs);
	return r;
}

/* create a node of any type under parent, with one lookup reference if ref
 * (fs->lock held) */
static int create_node(struct zf_fs *fs, uint64_t parent, const char *name, uint32_t mode,
		       uint64_t rdev, const char *target, uint32_t umask_bits, uint32_t uid,
		       uint32_t gid, int ref, struct zf_attr *ret_attr)
{
	struct timespec now = zf_now();
	struct zf_inode tmpl = { 0 }, *dir, *in;
	struct zf_xattr *dacl = NULL;
	uint8_t *acl = NULL;
	int r, ext = 0;

	if (fs->readonly)
		return -EROFS;
	r = check_name(name);
	if (r == 0)
		r = get_dir(fs, parent, &dir);
	if (r)
		return r;
	if (dir->nlink == 0)
		return -ENOENT; /* removed directory, still open */
	if (dir_find(dir->u.dir, name, strlen(name)) || !strcmp(name, ".") || !strcmp(name, ".."))
		return -EEXIST;
	if (!S_ISLNK(mode))
		dacl = fs_xattr_find(dir, ZF_ACL_DEFAULT);
	if (dacl) { /* the parent's default ACL, not the umask, masks the mode */
		acl = zf_malloc(dacl->vlen);
		memcpy(acl, dacl->val, dacl->vlen);
		ext = fs_acl_fit(acl, dacl->vlen, &mode, 1);
		if (ext < 0) {
			zf_err("inode %llu: malformed default ACL", (unsigned long long)dir->ino);
			free(acl);
			return -EIO;
		}
	} else if (!S_ISLNK(mode)) {
		mode &= ~(umask_bits & 0777);
	}
	tmpl.ino = fs->next_ino;
	tmpl.mode = mode;
	tmpl.uid = uid;
	tmpl.gid = gid;
	tmpl.rdev = rdev;
	tmpl.gen = 1;
	tmpl.nlink = S_ISDIR(mode) ? 2 : 1;
	if ((dir->flags & ZF_INODE_PINNED) && (S_ISREG(mode) || S_ISDIR(mode)))
		tmpl.flags |= ZF_INODE_PINNED; /* a pinned directory's files stay local */
	if (dir->mode & S_ISGID) { /* BSD group semantics in setgid directories */
		tmpl.gid = dir->gid;
		if (S_ISDIR(mode))
			tmpl.mode |= S_ISGID;
	}
	fs_set_now(&tmpl.atime, &tmpl.atime_ns, now);
	fs_set_now(&tmpl.mtime, &tmpl.mtime_ns, now);
	fs_set_now(&tmpl.ctime, &tmpl.ctime_ns, now);
	if (target) {
		tmpl.u.link = (char *)target;
		tmpl.size = strlen(target);
	}
	fs_log_inode(fs, &tmpl);
	in = fs_inode(fs, tmpl.ino);
	if (ext)
		fs_log_xattr(fs, in->ino, ZF_ACL_ACCESS, acl, dacl->vlen, 0);
	if (dacl && S_ISDIR(mode))
		fs_log_xattr(fs, in->ino, ZF_ACL_DEFAULT, dacl->val, dacl->vlen, 0);
	free(acl);
	fs_log_dirent(fs, ZF_REC_DIRENT_ADD, parent, name, in->ino);
	if (S_ISDIR(mode))
		dir->nlink++;
	touch_dir(dir, now);
	fs_log_inode(fs, dir);
	fs_txn_end(fs);
	if (ref)
		in->lookups = 1; /* new: nothing else can hold one */
	if (ret_attr)
		fill_attr(in, ret_attr);
	return 0;
}

static int create_any(struct zf_fs *fs, uint64_t parent, const char *name, uint32_t mode,
		      uint64_t rdev, uint32_t umask_bits, uint32_t uid, uint32_t gid, int ref,
		      struct zf_attr *ret_attr)
{
	int r;

	if ((mode & S_IFMT) == 0)
		mode |= S_IFREG;
	switch (mode & S_IFMT) {
	case S_IFDIR:
	case S_IFREG:
	case S_IFIFO:
	case S_IFSOCK:
		rdev = 0;
		break;
	case S_IFCHR:
	case S_IFBLK:
		if (rdev > UINT32_MAX)
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	fs_lock(fs);
	r = create_node(fs, parent, name, mode & (S_IFMT | 07777), rdev, NULL, umask_bits, uid,
			gid, ref, ret_attr);
	fs_unlock(fs);
	return r;
}

int zf_fs_create(struct zf_fs *fs, uint64_t parent, const char *name, uint32_t mode,
		 uint64_t rdev, uint32_t umask_bits, uint32_t uid, uint32_t gid,
		 struct zf_attr *ret_attr)
{
	return create_any(fs, parent, name, mode, rdev, umask_bits, uid, gid, 0, ret_attr);
}

int zf_fs_create_ref(struct zf_fs *fs, uint64_t parent, const char *name, uint32_t mode,
		     uint64_t rdev, uint32_t umask_bits, uint32_t uid, uint32_t gid,
		     struct zf_attr *ret_attr)
{
	return create_any(fs, parent, name, mode, rdev, umask_bits, uid, gid, 1, ret_attr);
}

int zf_fs_mknod(struct zf_fs *fs, uint64_t parent, const char *name, uint32_t mode,
		uint64_t rdev, uint32_t uid, uint32_t gid, struct zf_attr *ret_attr)
{
	if (S_ISDIR(mode))
		return -EINVAL;
	return zf_fs_create(fs, parent, name, mode, rdev, 0, uid, gid, ret_attr);
}

int zf_fs_mkdir(struct zf_fs *fs, uint64_t parent, const char *name, uint32_t mode,
		uint32_t uid, uint32_t gid, struct zf_attr *ret_attr)
{
	return zf_fs_create(fs, parent, name, S_IFDIR | (mode & 07777), 0, 0, uid, gid, ret_attr);
}

static int symlink_any(struct zf_fs *fs, uint64_t parent, const char *name, const char *target,
		       uint32_t uid, uint32_t gid, int ref, struct zf_attr *ret_attr)
{
	int r;

	if (strlen(target) == 0)
		return -ENOENT;
	if (strlen(target) > SYMLINK_MAX)
		return -ENAMETOOLONG;
	fs_lock(fs);
	r = create_node(fs, parent, name, S_IFLNK | 0777, 0, target, 0, uid, gid, ref, ret_attr);
	fs_unlock(fs);
	return r;
}

int zf_fs_symlink(struct zf_fs *fs, uint64_t parent, const char *name, const char *target,
		  uint32_t uid, uint32_t gid, struct zf_attr *ret_attr)
{
	return symlink_any(fs, parent, name, target, uid, gid, 0, ret_attr);
}

int zf_fs_symlink_ref(struct zf_fs *fs, uint64_t parent, const char *name, const char *target,
		      uint32_t uid, uint32_t gid, struct zf_attr *ret_attr)
{
	return symlink_any(fs, parent, name, target, uid, gid, 1, ret_attr);
}

static int link_any(struct zf_fs *fs, uint64_t ino, uint64_t parent, const char *name, int ref,
		    struct zf_attr *ret_attr)
{
	struct timespec now = zf_now();
	struct zf_inode *dir, *in;
	int r;

	if (fs->readonly)
		return -EROFS;
	fs_lock_for_flush(fs, ino); /* fs_settle() may read stored bytes */
	r = check_name(name);
	if (r == 0)
		r = get_dir(fs, parent, &dir);
	if (r)
		goto out;
	in = fs_inode(fs, ino);
	if (!in || in->nlink == 0 || dir->nlink == 0) {
		r = -ENOENT; /* ... or a removed directory, still open */
		goto out;
	}
	if (S_ISDIR(in->mode)) {
		r = -EPERM;
		goto out;
	}
	if (in->nlink >= 65000) {
		r = -EMLINK;
		goto out;
	}
	if (ref && in->lookups == UINT32_MAX) {
		r = -EMFILE;
		goto out;
	}
	if (dir_find(dir->u.dir, name, strlen(name)) || !strcmp(name, ".") || !strcmp(name, "..")) {
		r = -EEXIST;
		goto out;
	}
	r = fs_settle(fs, in);
	if (r)
		goto out;
	in->nlink++;
	fs_set_now(&in->ctime, &in->ctime_ns, now);
	fs_log_inode(fs, in);
	fs_log_dirent(fs, ZF_REC_DIRENT_ADD, parent, name, ino);
	touch_dir(dir, now);
	fs_log_inode(fs, dir);
	fs_txn_end(fs);
	if (ref)
		in->lookups++;
	if (ret_attr)
		fill_attr(in, ret_attr);
out:
	fs_unlock(fs);
	return r;
}

int zf_fs_link(struct zf_fs *fs, uint64_t ino, uint64_t parent, const char *name,
	       struct zf_attr *ret_attr)
{
	return link_any(fs, ino, parent, name, 0, ret_attr);
}

int zf_fs_link_ref(struct zf_fs *fs, uint64_t ino, uint64_t parent, const char *name,
		   struct zf_attr *ret_attr)
{
	return link_any(fs, ino, parent, name, 1, ret_attr);
}

static int remove_entry(struct zf_fs *fs, uint64_t parent, const char *name, int want_dir)
{
	struct timespec now = zf_now();
	struct zf_inode *dir, *in;
	struct zf_dirent *de;
	int r;

	if (fs->readonly)
		return -EROFS;
	fs_lock(fs);
	r = get_dir(fs, parent, &dir);
	if (r)
		goto out;
	if (strlen(name) > ZF_NAME_LEN) {
		r = -ENAMETOOLONG;
		goto out;
	}
	if (want_dir && !strcmp(name, ".")) {
		r = -EINVAL;
		goto out;
	}
	if (want_dir && !strcmp(name, "..")) {
		r = -ENOTEMPTY;
		goto out;
	}
	de = dir_find(dir->u.dir, name, strlen(name));
	if (!de) {
		r = -ENOENT;
		goto out;
	}
	in = fs_inode(fs, de->ino);
	if (want_dir && !S_ISDIR(in->mode)) {
		r = -ENOTDIR;
		goto out;
	}
	if (!want_dir && S_ISDIR(in->mode)) {
		r = -EISDIR;
		goto out;
	}
	if (want_dir && in->u.dir->nents) {
		r = -ENOTEMPTY;
		goto out;
	}
	if (in->nlink > 1 && !want_dir) {
		r = fs_settle(fs, in);
		if (r)
			goto out;
	}
	fs_log_dirent(fs, ZF_REC_DIRENT_DEL, parent, name, 0);
	if (want_dir)
		dir->nlink--;
	touch_dir(dir, now);
	fs_log_inode(fs, dir);
	drop_link(fs, in, now);
	fs_txn_end(fs);
out:
	fs_unlock(fs);
	return r;
}

int zf_fs_unlink(struct zf_fs *fs, uint64_t parent, const char *name)
{
	return remove_entry(fs, parent, name, 0);
}

int zf_fs_rmdir(struct zf_fs *fs, uint64_t parent, const char *name)
{
	return remove_entry(fs, parent, name, 1);
}

/* is ino the directory anc or inside it? */
static int is_within(struct zf_fs *fs, uint64_t ino, uint64_t anc)
{
	while (ino != ZF_ROOT_INO) {
		struct zf_inode *in = fs_inode(fs, ino);

		if (ino == anc)
			return 1;
		if (!in || !S_ISDIR(in->mode))
			return 0;
		ino = in->u.dir->parent;
	}
	return anc == ZF_ROOT_INO;
}

int zf_fs_rename(struct zf_fs *fs, uint64_t parent, const char *name, uint64_t newparent,
		 const char *newname, unsigned int flags)
{
	struct timespec now = zf_now();
	struct zf_inode *sdir, *ddir, *src, *dst = NULL;
	struct zf_dirent *sde, *dde;
	uint64_t sino, dino = 0;
	int r;

	if (fs->readonly)
		return -EROFS;
	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE))
		return -EINVAL;
	fs_lock(fs);
	r = get_dir(fs, parent, &sdir);
	if (r == 0)
		r = get_dir(fs, newparent, &ddir);
	if (r == 0)
		r = check_name(newname);
	if (r == 0 && ddir->nlink == 0)
		r = -ENOENT; /* removed directory, still open */
	if (r)
		goto out;
	if (!strcmp(name, ".") || !strcmp(name, "..") || !strcmp(newname, ".") ||
	    !strcmp(newname, "..")) {
		r = -EINVAL;
		goto out;
	}
	sde = dir_find(sdir->u.dir, name, strlen(name));
	if (!sde) {
		r = -ENOENT;
		goto out;
	}
	sino = sde->ino;
	src = fs_inode(fs, sino);
	dde = dir_find(ddir->u.dir, newname, strlen(newname));
	if (dde) {
		dino = dde->ino;
		dst = fs_inode(fs, dino);
	}
	if (flags & RENAME_EXCHANGE) {
		if (!dst) {
			r = -ENOENT;
			goto out;
		}
	} else if (dst) {
		if (flags & RENAME_NOREPLACE) {
			r = -EEXIST;
			goto out;
		}
		if (dino == sino) /* two links to one inode: POSIX says do nothing */
			goto out;
		if (S_ISDIR(src->mode) && !S_ISDIR(dst->mode)) {
			r = -ENOTDIR;
			goto out;
		}
		if (!S_ISDIR(src->mode) && S_ISDIR(dst->mode)) {
			r = -EISDIR;
			goto out;
		}
		if (S_ISDIR(dst->mode) && dst->u.dir->nents) {
			r = -ENOTEMPTY;
			goto out;
		}
	}
	/* a directory cannot move into itself or below itself */
	if ((S_ISDIR(src->mode) && parent != newparent && is_within(fs, newparent, sino)) ||
	    (dst && S_ISDIR(dst->mode) && (flags & RENAME_EXCHANGE) && parent != newparent &&
	     is_within(fs, parent, dino))) {
		r = -EINVAL;
		goto out;
	}
	if (dst && dino == sino && (flags & RENAME_EXCHANGE))
		goto out;
	r = fs_settle(fs, src);
	if (r == 0 && dst && (flags & RENAME_EXCHANGE || dst->nlink > 1))
		r = fs_settle(fs, dst);
	if (r)
		goto out;

	/* one transaction: the old name, the new name and the replaced target */
	if (dst)
		fs_log_dirent(fs, ZF_REC_DIRENT_DEL, newparent, newname, 0);
	fs_log_dirent(fs, ZF_REC_DIRENT_DEL, parent, name, 0);
	fs_log_dirent(fs, ZF_REC_DIRENT_ADD, newparent, newname, sino);
	if (flags & RENAME_EXCHANGE)
		fs_log_dirent(fs, ZF_REC_DIRENT_ADD, parent, name, dino);
	if (parent != newparent) {
		if (S_ISDIR(src->mode)) {
			sdir->nlink--;
			ddir->nlink++;
		}
		if ((flags & RENAME_EXCHANGE) && S_ISDIR(dst->mode)) {
			ddir->nlink--;
			sdir->nlink++;
		}
	}
	if (dst && !(flags & RENAME_EXCHANGE) && S_ISDIR(dst->mode))
		ddir->nlink--;
	touch_dir(sdir, now);
	touch_dir(ddir, now);
	fs_log_inode(fs, sdir);
	if (ddir != sdir)
		fs_log_inode(fs, ddir);
	fs_set_now(&src->ctime, &src->ctime_ns, now);
	fs_log_inode(fs, src);
	if (dst && (flags & RENAME_EXCHANGE)) {
		fs_set_now(&dst->ctime, &dst->ctime_ns, now);
		fs_log_inode(fs, dst);
	} else if (dst) {
		drop_link(fs, dst, now);
	}
	fs_txn_end(fs);
out:
	fs_unlock(fs);
	return r;
}

ssize_t zf_fs_readlink(struct zf_fs *fs, uint64_t ino, char *buf, size_t len)
{
	struct zf_inode *in;
	ssize_t r;

	fs_lock(fs);
	in = fs_inode(fs, ino);
	if (!in || !S_ISLNK(in->mode)) {
		r = !in ? -ENOENT : -EINVAL;
	} else {
		r = strlen(in->u.link);
		memcpy(buf, in->u.link, (size_t)r < len ? (size_t)r : len);
	}
	fs_unlock(fs);
	return r;
}

/* the attributes a setattr may change without flushing buffered data */
#define ZF_SET_TIMES (ZF_SET_ATIME | ZF_SET_MTIME | ZF_SET_ATIME_NOW | ZF_SET_MTIME_NOW | ZF_SET_CTIME)

int zf_fs_setattr(struct zf_fs *fs, uint64_t ino, unsigned int to_set,
		  const struct zf_attr *attr, struct zf_attr *ret_attr)
{
	struct timespec now = zf_now();
	struct zf_inode *in;
	struct zf_xattr *x;
	int r;

	if (fs->readonly)
		return -EROFS;
	/* fs_settle() below may read stored bytes: fetch them first */
	if (to_set & ~ZF_SET_TIMES)
		fs_lock_for_flush(fs, ino);
	else
		fs_lock(fs);
	in = fs_inode(fs, ino);
	if (!in) {
		r = -ENOENT;
		goto out;
	}
	if ((to_set & ZF_SET_SIZE) && !S_ISREG(in->mode)) {
		r = S_ISDIR(in->mode) ? -EISDIR : -EINVAL;
		goto out;
	}
	if ((to_set & ZF_SET_SIZE) && attr->size > (1ull << 60)) {
		r = -EFBIG;
		goto out;
	}
	/*
	 * Times alone need no flush: the inode record carries the logged
	 * size, which covers only logged bytes. The kernel's writeback cache
	 * sends such updates while a file is written; flushing then would cut
	 * chunks at the gaps of writes still in flight.
	 */
	r = 0;
	if (to_set & ~ZF_SET_TIMES)
		r = fs_settle(fs, in);
	if (r)
		goto out;
	if (to_set & ZF_SET_MODE) {
		in->mode = (in->mode & S_IFMT) | (attr->mode & 07777);
		x = S_ISLNK(in->mode) ? NULL : fs_xattr_find(in, ZF_ACL_ACCESS);
		if (x) { /* chmod rewrites the access ACL to match */
			uint8_t *acl = zf_malloc(x->vlen);
			uint32_t mode = in->mode;

			memcpy(acl, x->val, x->vlen);
			if (fs_acl_fit(acl, x->vlen, &mode, 0) >= 0)
				fs_log_xattr(fs, ino, ZF_ACL_ACCESS, acl, x->vlen, 0);
			free(acl);
		}
	}
	if (to_set & ZF_SET_UID)
		in->uid = attr->uid;
	if (to_set & ZF_SET_GID)
		in->gid = attr->gid;
	if (to_set & ZF_SET_SIZE) {
		if (attr->size < in->size)
			fs_file_unmap(fs, in, attr->size, UINT64_MAX);
		fs_file_drop_dirty(fs, in, attr->size);
		in->size = attr->size;
		fs_set_now(&in->mtime, &in->mtime_ns, now);
	}
	if (to_set & ZF_SET_ATIME_NOW)
		fs_set_now(&in->atime, &in->atime_ns, now);
	else if (to_set & ZF_SET_ATIME)
		fs_set_now(&in->atime, &in->atime_ns, attr->atime);
	if (to_set & ZF_SET_MTIME_NOW)
		fs_set_now(&in->mtime, &in->mtime_ns, now);
	else if (to_set & ZF_SET_MTIME)
		fs_set_now(&in->mtime, &in->mtime_ns, attr->mtime);
	if (to_set & ZF_SET_CTIME)
		fs_set_now(&in->ctime, &in->ctime_ns, attr->ctime);
	else
		fs_set_now(&in->ctime, &in->ctime_ns, now);
	fs_log_inode(fs, in);
	fs_txn_end(fs);
	if (ret_attr)
		fill_attr(in, ret_attr);
out:
	fs_unlock(fs);
	return r;
}

int zf_fs_readdir(struct zf_fs *fs, uint64_t ino, uint64_t off, zf_readdir_fn fn, void *ctx)
{
	struct zf_inode *dir;
	struct zf_dir *d;
	uint32_t i;
	int r;

	fs_lock(fs);
	r = get_dir(fs, ino, &dir);
	if (r)
		goto out;
	d = dir->u.dir;
	if (off < 1 && fn(ctx, ".", dir->ino, dir->mode, 1))
		goto out;
	if (off < 2 && fn(ctx, "..", dir->ino == ZF_ROOT_INO ? dir->ino : d->parent, S_IFDIR, 2))
		goto out;
	for (i = dir_slot_of(d, off + 1); i < d->nslot; i++) {
		struct zf_dirent *de = d->slot[i];

		if (!de || de->cookie <= off)
			continue;
		if (fn(ctx, de->name, de->ino, (uint32_t)de->dtype << 12, de->cookie))
			break;
	}
out:
	fs_unlock(fs);
	return r;
}

int zf_fs_ref(struct zf_fs *fs, uint64_t ino)
{
	struct zf_inode *in;
	int r = -ENOENT;

	fs_lock(fs);
	in = fs_inode(fs, ino);
	if (in)
		r = lookup_ref_locked(in);
	fs_unlock(fs);
	return r;
}

void zf_fs_forget(struct zf_fs *fs, uint64_t ino, uint64_t n)
{
	struct zf_inode *in;

	fs_lock(fs);
	in = fs_inode(fs, ino);
	if (in && n > in->lookups) {
		/*
		 * The kernel forgot more than it was given: a lookup-count
		 * bug here or in the daemon. Fatal in a debug build (as
		 * libfuse's passthrough_hp forget_one); clamped otherwise.
		 */
#ifdef ZF_DEBUG
		zf_bug(__FILE__, __LINE__, "forget of more lookups than were taken");
#else
		static int logged;

		if (!logged) {
			logged = 1;
			zf_err("inode %llu: forget of %llu lookups, only %u taken",
			       (unsigned long long)ino, (unsigned long long)n, in->lookups);
		}
		n = in->lookups;
#endif
	}
	if (in) {
		in->lookups -= (uint32_t)n;
		fs_maybe_reclaim(fs, in);
	}
	fs_unlock(fs);
}
