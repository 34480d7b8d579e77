/*
 * storage/fs_xattr.c - extended attributes of the core (set, get, list,
 * remove) and the bookkeeping of POSIX ACLs kept in them.
 *
 * Each operation takes fs->lock and logs its records as one transaction
 * through fs_do(), as the namespace operations do (fs_ns.c).
 * Format: docs/FORMAT.md "Records" (XATTR_SET, XATTR_DEL).
 */
#include "config.h"

#include <errno.h>
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

#define XATTR_VALUE_MAX (64u << 10)

/* ------------------------------------------------------------ POSIX ACLs */

/*
 * The kernel enforces POSIX ACLs (FUSE_CAP_POSIX_ACL) but leaves their
 * bookkeeping to the filesystem, as the posix_acl_* helpers of a local one:
 * an access ACL sets the mode's permission bits (one a mode can say is not
 * kept), chmod rewrites the access ACL, and a new node gets its parent's
 * default ACL masked by its mode, in place of the umask.
 * Value: le32 version 2, then entries of le16 tag, le16 perm, le32 id.
 */
#define ACL_TAG_USER_OBJ 0x01
#define ACL_TAG_USER 0x02
#define ACL_TAG_GROUP_OBJ 0x04
#define ACL_TAG_GROUP 0x08
#define ACL_TAG_MASK 0x10
#define ACL_TAG_OTHER 0x20

static int is_acl_name(const char *name)
{
	return !strcmp(name, ZF_ACL_ACCESS) || !strcmp(name, ZF_ACL_DEFAULT);
}

/* number of entries of a well-formed ACL value, or -EINVAL */
static int acl_entries(const uint8_t *v, size_t len)
{
	unsigned int seen = 0, named = 0;
	size_t i, n;

	if (len < 4 || (len - 4) % 8 || zf_get32(v) != 2)
		return -EINVAL;
	n = (len - 4) / 8;
	for (i = 0; i < n; i++) {
		unsigned int tag = zf_get16(v + 4 + 8 * i);

		switch (tag) {
		case ACL_TAG_USER:
		case ACL_TAG_GROUP:
			named = 1;
			break;
		case ACL_TAG_USER_OBJ:
		case ACL_TAG_GROUP_OBJ:
		case ACL_TAG_MASK:
		case ACL_TAG_OTHER:
			if (seen & tag)
				return -EINVAL;
			seen |= tag;
			break;
		default:
			return -EINVAL;
		}
	}
	if ((seen | ACL_TAG_MASK) != (ACL_TAG_USER_OBJ | ACL_TAG_GROUP_OBJ | ACL_TAG_MASK |
				      ACL_TAG_OTHER) || (named && !(seen & ACL_TAG_MASK)))
		return -EINVAL;
	return n;
}

/* The permission bits an ACL grants into *mode: 1 when a mode cannot say all
 * of it (named entries, a mask), 0 when it can, or -EINVAL. */
static int acl_equiv_mode(const uint8_t *v, size_t len, uint32_t *mode)
{
	uint32_t u = 0, g = 0, o = 0, mask = 0;
	int n = acl_entries(v, len), i, ext = 0, has_mask = 0;

	if (n < 0)
		return n;
	for (i = 0; i < n; i++) {
		const uint8_t *e = v + 4 + 8 * i;
		uint32_t perm = zf_get16(e + 2) & 7;

		switch (zf_get16(e)) {
		case ACL_TAG_USER_OBJ:
			u = perm;
			break;
		case ACL_TAG_GROUP_OBJ:
			g = perm;
			break;
		case ACL_TAG_OTHER:
			o = perm;
			break;
		case ACL_TAG_MASK:
			mask = perm;
			has_mask = ext = 1;
			break;
		default:
			ext = 1;
		}
	}
	if (has_mask) /* the group bits of the mode show the mask */
		g = mask;
	*mode = (*mode & ~0777u) | u << 6 | g << 3 | o;
	return ext;
}

/*
 * Fit an ACL to a mode in place. chmod (masq = 0): the owner, group (the mask
 * if there is one) and other entries take the mode's bits. Creation (masq =
 * 1): they are narrowed by the mode, and *mode by them. Returns as
 * acl_equiv_mode() does.
 */
int fs_acl_fit(uint8_t *v, size_t len, uint32_t *mode, int masq)
{
	uint8_t *group = NULL, *mask = NULL;
	uint32_t m = *mode;
	int n = acl_entries(v, len), i, ext = 0;

	if (n < 0)
		return n;
	for (i = 0; i < n; i++) {
		uint8_t *e = v + 4 + 8 * i;
		uint32_t perm = zf_get16(e + 2);

		switch (zf_get16(e)) {
		case ACL_TAG_USER_OBJ:
			perm = masq ? perm & (m >> 6 & 7) : m >> 6 & 7;
			m &= perm << 6 | ~0700u;
			zf_put16(e + 2, perm);
			break;
		case ACL_TAG_OTHER:
			perm = masq ? perm & (m & 7) : m & 7;
			m &= perm | ~07u;
			zf_put16(e + 2, perm);
			break;
		case ACL_TAG_GROUP_OBJ:
			group = e;
			break;
		case ACL_TAG_MASK:
			mask = e;
			ext = 1;
			break;
		default:
			ext = 1;
		}
	}
	if (!mask)
		mask = group;
	zf_put16(mask + 2, masq ? zf_get16(mask + 2) & (m >> 3 & 7) : m >> 3 & 7);
	m &= zf_get16(mask + 2) << 3 | ~070u;
	*mode = m;
	return ext;
}

void fs_log_xattr(struct zf_fs *fs, uint64_t ino, const char *name, const void *val,
		  size_t len, int del)
{
	struct zf_buf b = { 0 };
	size_t nl = strlen(name), hdr = del ? 10 : 14;
	uint8_t *p = zf_buf_grow(&b, hdr + nl + (del ? 0 : len));

	zf_put64(p, ino);
	zf_put16(p + 8, nl);
	if (!del)
		zf_put32(p + 10, len);
	memcpy(p + hdr, name, nl);
	if (!del && len)
		memcpy(p + hdr + nl, val, len);
	fs_do(fs, del ? ZF_REC_XATTR_DEL : ZF_REC_XATTR_SET, &b);
	zf_buf_free(&b);
}

/* ---------------------------------------------------------------- xattrs */

struct zf_xattr *fs_xattr_find(struct zf_inode *in, const char *name)
{
	uint32_t i;

	for (i = 0; i < in->nxattr; i++)
		if (!strcmp(in->xattr[i].name, name))
			return &in->xattr[i];
	return NULL;
}

int zf_fs_setxattr(struct zf_fs *fs, uint64_t ino, const char *name, const void *val,
		   size_t len, int flags)
{
	struct zf_inode *in;
	struct zf_xattr *x;
	size_t nl = strlen(name);
	uint32_t mode;
	int r, keep = 1;

	if (fs->readonly)
		return -EROFS;
	if (nl == 0 || nl > 255)
		return -ERANGE;
	if (len > XATTR_VALUE_MAX)
		return -E2BIG;
	fs_lock_for_flush(fs, ino); /* fs_settle() may read stored bytes */
	in = fs_inode(fs, ino);
	if (!in) {
		r = -ENOENT;
		goto out;
	}
	x = fs_xattr_find(in, name);
	if ((flags & XATTR_CREATE) && x) {
		r = -EEXIST;
		goto out;
	}
	if ((flags & XATTR_REPLACE) && !x) {
		r = -ENODATA;
		goto out;
	}
	mode = in->mode;
	if (is_acl_name(name)) {
		int dfl = !strcmp(name, ZF_ACL_DEFAULT);
		uint32_t dmode = 0;

		r = acl_equiv_mode(val, len, dfl ? &dmode : &mode);
		if (r >= 0 && dfl && !S_ISDIR(in->mode))
			r = -EACCES;
		if (r < 0)
			goto out;
		/* an access ACL that a mode can say is kept as the mode alone */
		keep = r || dfl;
	}
	r = fs_settle(fs, in);
	if (r)
		goto out;
	if (keep)
		fs_log_xattr(fs, ino, name, val, len, 0);
	else if (x)
		fs_log_xattr(fs, ino, name, NULL, 0, 1);
	in->mode = mode; /* an access ACL sets the permission bits */
	fs_set_now(&in->ctime, &in->ctime_ns, zf_now());
	fs_log_inode(fs, in);
	fs_txn_end(fs);
out:
	fs_unlock(fs);
	return r;
}

ssize_t zf_fs_getxattr(struct zf_fs *fs, uint64_t ino, const char *name, void *buf, size_t len)
{
	struct zf_inode *in;
	struct zf_xattr *x;
	ssize_t r;

	fs_lock(fs);
	in = fs_inode(fs, ino);
	x = in ? fs_xattr_find(in, name) : NULL;
	if (!in)
		r = -ENOENT;
	else if (!x)
		r = -ENODATA;
	else if (len && len < x->vlen)
		r = -ERANGE;
	else {
		if (len)
			memcpy(buf, x->val, x->vlen);
		r = x->vlen;
	}
	fs_unlock(fs);
	return r;
}

ssize_t zf_fs_listxattr(struct zf_fs *fs, uint64_t ino, char *buf, size_t len)
{
	struct zf_inode *in;
	size_t total = 0;
	ssize_t r;
	uint32_t i;

	fs_lock(fs);
	in = fs_inode(fs, ino);
	if (!in) {
		r = -ENOENT;
		goto out;
	}
	for (i = 0; i < in->nxattr; i++)
		total += strlen(in->xattr[i].name) + 1;
	if (len && len < total) {
		r = -ERANGE;
		goto out;
	}
	if (len) {
		char *p = buf;

		for (i = 0; i < in->nxattr; i++) {
			size_t n = strlen(in->xattr[i].name) + 1;

			memcpy(p, in->xattr[i].name, n);
			p += n;
		}
	}
	r = total;
out:
	fs_unlock(fs);
	return r;
}

int zf_fs_removexattr(struct zf_fs *fs, uint64_t ino, const char *name)
{
	struct zf_inode *in;
	int r;

	if (fs->readonly)
		return -EROFS;
	fs_lock_for_flush(fs, ino); /* fs_settle() may read stored bytes */
	in = fs_inode(fs, ino);
	r = !in ? -ENOENT : !fs_xattr_find(in, name) ? -ENODATA : 0;
	if (r == -ENODATA && is_acl_name(name))
		r = 1; /* no ACL to remove is success, as on a local filesystem */
	if (r == 0)
		r = fs_settle(fs, in);
	if (r)
		goto out;
	fs_log_xattr(fs, ino, name, NULL, 0, 1);
	fs_set_now(&in->ctime, &in->ctime_ns, zf_now());
	fs_log_inode(fs, in);
	fs_txn_end(fs);
out:
	fs_unlock(fs);
	return r > 0 ? 0 : r;
}
