/*
 * storage/fs_ns.h - the namespace of the storage core: attributes, lookup,
 * create, link, unlink, rename, setattr, readdir, extended attributes, and
 * the kernel's lookup counts that keep unlinked inodes alive.
 *
 * Inode numbers are never reused within a filesystem; ZF_ROOT_INO is the
 * root directory. Names are single path components. Each call takes
 * fs->lock; returns 0 / a length, or -errno. Implemented in fs_ns.c
 * (extended attributes: fs_xattr.c).
 */
#ifndef ZF_STORAGE_FS_NS_H
#define ZF_STORAGE_FS_NS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define ZF_ROOT_INO 1ull
#define ZF_NAME_LEN 255

struct zf_fs;

struct zf_attr {
	uint64_t ino;
	uint64_t size;
	uint64_t blocks;	/* 512-byte units holding data (holes excluded) */
	uint64_t rdev;
	uint32_t mode, uid, gid, nlink;
	uint32_t gen;
	struct timespec atime, mtime, ctime;
};

/* attribute bits for zf_fs_setattr */
#define ZF_SET_MODE (1u << 0)
#define ZF_SET_UID (1u << 1)
#define ZF_SET_GID (1u << 2)
#define ZF_SET_SIZE (1u << 3)
#define ZF_SET_ATIME (1u << 4)
#define ZF_SET_MTIME (1u << 5)
#define ZF_SET_ATIME_NOW (1u << 6)
#define ZF_SET_MTIME_NOW (1u << 7)
#define ZF_SET_CTIME (1u << 8)

/* ---- namespace ---- */
int zf_fs_getattr(struct zf_fs *fs, uint64_t ino, struct zf_attr *ret_attr);
int zf_fs_lookup(struct zf_fs *fs, uint64_t parent, const char *name, struct zf_attr *ret_attr);
/* regular files, fifos, sockets, devices (S_IFMT in mode; 0 = regular) */
int zf_fs_mknod(struct zf_fs *fs, uint64_t parent, const char *name, uint32_t mode,
		uint64_t rdev, uint32_t uid, uint32_t gid, struct zf_attr *ret_attr);
int zf_fs_mkdir(struct zf_fs *fs, uint64_t parent, const char *name, uint32_t mode,
		uint32_t uid, uint32_t gid, struct zf_attr *ret_attr);
/* Either of the two (S_IFDIR in mode: a directory) for a caller whose umask
 * is still to be applied. Any new node but a symlink gets the parent's
 * default POSIX ACL, masked by mode, in place of the umask (umask_bits 0 in
 * zf_fs_mknod/zf_fs_mkdir). */
int zf_fs_create(struct zf_fs *fs, uint64_t parent, const char *name, uint32_t mode,
		 uint64_t rdev, uint32_t umask_bits, uint32_t uid, uint32_t gid,
		 struct zf_attr *ret_attr);
int zf_fs_symlink(struct zf_fs *fs, uint64_t parent, const char *name, const char *target,
		  uint32_t uid, uint32_t gid, struct zf_attr *ret_attr);
int zf_fs_link(struct zf_fs *fs, uint64_t ino, uint64_t parent, const char *name,
	       struct zf_attr *ret_attr);
int zf_fs_unlink(struct zf_fs *fs, uint64_t parent, const char *name);
int zf_fs_rmdir(struct zf_fs *fs, uint64_t parent, const char *name);
/* flags: RENAME_NOREPLACE, RENAME_EXCHANGE (linux/fs.h values) */
int zf_fs_rename(struct zf_fs *fs, uint64_t parent, const char *name, uint64_t newparent,
		 const char *newname, unsigned int flags);
/* readlink: copies at most len bytes (no NUL), returns the target length */
ssize_t zf_fs_readlink(struct zf_fs *fs, uint64_t ino, char *buf, size_t len);
int zf_fs_setattr(struct zf_fs *fs, uint64_t ino, unsigned int to_set,
		  const struct zf_attr *attr, struct zf_attr *ret_attr);

/*
 * Directory listing. Entries "." (offset 1) and ".." (offset 2) come first;
 * each entry's offset is the cookie to resume after it, stable while other
 * entries are added or removed. The callback returns non-zero to stop (the
 * entry it was given is then not consumed). Called with fs->lock held: it
 * must not call back into the fs.
 */
typedef int (*zf_readdir_fn)(void *ctx, const char *name, uint64_t ino, uint32_t mode,
			     uint64_t next_off);
int zf_fs_readdir(struct zf_fs *fs, uint64_t ino, uint64_t off, zf_readdir_fn fn, void *ctx);

/*
 * ---- the kernel's lookup counts (FUSE "nlookup") ----
 * Every inode reference handed to the kernel is counted; an unlinked inode
 * lives while the count is not zero (the kernel holds one on every open
 * file). Not durable: a reopen starts at zero.
 */
/* zf_fs_lookup and one reference on what it found, in one step */
int zf_fs_lookup_ref(struct zf_fs *fs, uint64_t parent, const char *name,
		     struct zf_attr *ret_attr);
/* one reference on ino (a readdirplus entry);
 * -ENOENT if it is gone, -EMFILE if its count is at its limit */
int zf_fs_ref(struct zf_fs *fs, uint64_t ino);
/* zf_fs_create, zf_fs_symlink and zf_fs_link that also take one reference
 * on the node, in the same step: an unlink racing with the reply cannot
 * reclaim it in between */
int zf_fs_create_ref(struct zf_fs *fs, uint64_t parent, const char *name, uint32_t mode,
		     uint64_t rdev, uint32_t umask_bits, uint32_t uid, uint32_t gid,
		     struct zf_attr *ret_attr);
int zf_fs_symlink_ref(struct zf_fs *fs, uint64_t parent, const char *name, const char *target,
		      uint32_t uid, uint32_t gid, struct zf_attr *ret_attr);
int zf_fs_link_ref(struct zf_fs *fs, uint64_t ino, uint64_t parent, const char *name,
		   struct zf_attr *ret_attr);
/* drop n references; an unlinked inode left without any is reclaimed.
 * Dropping more than were taken is a bug: fatal in a debug build
 * (ZF_DEBUG), logged once and clamped to zero otherwise. */
void zf_fs_forget(struct zf_fs *fs, uint64_t ino, uint64_t n);

/* system.posix_acl_access sets the mode's permission bits (and is not kept
 * when the mode says it all); chmod rewrites it; removing an absent ACL is
 * no error */
int zf_fs_setxattr(struct zf_fs *fs, uint64_t ino, const char *name, const void *val,
		   size_t len, int flags);
/* copies at most len bytes; returns the value's size (len 0 = size query) */
ssize_t zf_fs_getxattr(struct zf_fs *fs, uint64_t ino, const char *name, void *buf, size_t len);
/* NUL-separated names; returns the total size */
ssize_t zf_fs_listxattr(struct zf_fs *fs, uint64_t ino, char *buf, size_t len);
int zf_fs_removexattr(struct zf_fs *fs, uint64_t ino, const char *name);

#endif
