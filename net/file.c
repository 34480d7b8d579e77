/*
 * net/file.c - a local directory standing in for a bucket (file:///path)
 *
 * Key "a/b/c" is the file <root>/a/b/c. A put writes <root>/.zf-tmp/<unique>
 * (O_EXCL), fsyncs it, renames it over the key and fsyncs the key's
 * directory, so a reader sees the old object, the new one or nothing, and a
 * crash leaves at worst a stray temporary in .zf-tmp (removed by the next
 * open once it is an hour old; never listed). Directories created for a key
 * are fsynced into their parents before the rename. Deleting never removes
 * directories: a put racing with a delete cannot lose its directory.
 *
 * Locking: none; the kernel orders concurrent puts of one key (last rename
 * wins) and every call uses its own file descriptors.
 * Not here: the generic checks of objstore.c (key validity, get ranges).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "net/objstore_internal.h"

#define FILE_TMP_DIR ".zf-tmp"
/* temporaries older than this are leftovers of a crash, not puts in flight */
#define FILE_TMP_STALE_SEC 3600

struct file_store {
	struct zf_objstore base;
	char *root;
	int rootfd;
	int tmpfd;
	uint64_t seq;		/* unique temporary names; atomic */
};

static struct file_store *to_file(struct zf_objstore *st)
{
	return (struct file_store *)st;
}

/* mkdir -p of the absolute path p (used only with opts->create) */
static int mkdir_p(const char *p)
{
	char *d = zf_strdup(p), *s;
	int r = 0;

	for (s = d + 1;; s++) {
		if (*s == '/' || !*s) {
			char c = *s;

			*s = 0;
			if (mkdir(d, 0700) < 0 && errno != EEXIST) {
				r = -errno;
				break;
			}
			*s = c;
			if (!c)
				break;
		}
	}
	free(d);
	return r;
}

/* remove temporaries left behind by a crash */
static void file_sweep_tmp(struct file_store *fs)
{
	time_t now = time(NULL);
	struct dirent *de;
	DIR *d;
	int fd;

	fd = openat(fs->tmpfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((de = readdir(d))) {
		struct stat sb;

		if (de->d_name[0] == '.')
			continue;
		if (fstatat(fs->tmpfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISREG(sb.st_mode) && now - sb.st_mtime > FILE_TMP_STALE_SEC) {
			zf_info("removing stale temporary '%s/%s/%s'", fs->root, FILE_TMP_DIR,
				de->d_name);
			unlinkat(fs->tmpfd, de->d_name, 0);
		}
	}
	closedir(d);
}

static void file_close(struct zf_objstore *st)
{
	struct file_store *fs = to_file(st);

	if (fs->tmpfd >= 0)
		close(fs->tmpfd);
	if (fs->rootfd >= 0)
		close(fs->rootfd);
	free(fs->root);
	free(fs->base.url);
	free(fs);
}

/*
 * Create the directories of key's parent path, each fsynced into its parent
 * so that the rename that follows survives a power cut. Returns an fd of
 * the parent directory (rootfd dup'd for a top-level key).
 */
static int file_parent_dir(struct file_store *fs, const char *key, int *ret_fd)
{
	char path[ZF_OBJSTORE_KEY_MAX + 1];
	const char *slash = strrchr(key, '/');
	char *p;
	int fd, r;

	if (!slash) {
		fd = openat(fs->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		*ret_fd = fd;
		return 0;
	}
	memcpy(path, key, slash - key);
	path[slash - key] = 0;
	fd = openat(fs->rootfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		*ret_fd = fd;
		return 0;
	}
	if (errno != ENOENT)
		return -errno;
	for (p = path;; p++) {
		if (*p == '/' || !*p) {
			char c = *p;

			*p = 0;
			if (mkdirat(fs->rootfd, path, 0700) == 0) {
				/* the new entry lives in its parent: make it durable */
				char *up = strrchr(path, '/');
				int pfd;

				if (up) {
					*up = 0;
					pfd = openat(fs->rootfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
					*up = '/';
				} else {
					pfd = openat(fs->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
				}
				if (pfd < 0)
					return -errno;
				r = zf_fsync_dir(pfd);
				close(pfd);
				if (r < 0)
					return r;
			} else if (errno != EEXIST) {
				return -errno;
			}
			*p = c;
			if (!c)
				break;
		}
	}
	fd = openat(fs->rootfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	*ret_fd = fd;
	return 0;
}

static int file_put(struct zf_objstore *st, const char *key, const void *buf, size_t len)
{
	struct file_store *fs = to_file(st);
	char tmp[64];
	int fd, dfd = -1, r;

	zf_objstore_count(&st->cnt.requests, 1);
	snprintf(tmp, sizeof(tmp), "%ld.%" PRIu64, (long)getpid(),
		 __atomic_add_fetch(&fs->seq, 1, __ATOMIC_RELAXED));
	r = file_parent_dir(fs, key, &dfd);
	if (r < 0)
		goto out_log;
	fd = openat(fs->tmpfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		goto out_dir;
	}
	r = zf_write_full(fd, buf, len);
	if (r < 0)
		goto out_unlink;
	if (fsync(fd) < 0 || renameat(fs->tmpfd, tmp, fs->rootfd, key) < 0) {
		r = -errno;
		goto out_unlink;
	}
	r = zf_fsync_dir(dfd);	/* renamed: never unlink now */
	goto out_close;
out_unlink:
	unlinkat(fs->tmpfd, tmp, 0);
out_close:
	close(fd);
out_dir:
	close(dfd);
out_log:
	if (r < 0)
		zf_err("cannot put '%s' into '%s': %s", key, fs->root, strerror(-r));
	return r;
}

static int file_open_obj(struct file_store *fs, const char *key, struct stat *sb)
{
	int fd = openat(fs->rootfd, key, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return errno == ENOTDIR || errno == ELOOP ? -ENOENT : -errno;
	if (fstat(fd, sb) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	if (!S_ISREG(sb->st_mode)) {	/* a directory of longer keys is no object */
		close(fd);
		return -ENOENT;
	}
	return fd;
}

static int file_get(struct zf_objstore *st, const char *key, uint64_t off, size_t len,
		    struct zf_objstore_got *got)
{
	struct file_store *fs = to_file(st);
	struct stat sb;
	uint64_t size, want;
	ssize_t n;
	void *buf;
	int fd, r;

	zf_objstore_count(&st->cnt.requests, 1);
	fd = file_open_obj(fs, key, &sb);
	if (fd < 0) {
		r = fd;
		goto out_log;
	}
	size = sb.st_size;
	if (off > size) {
		got->total = size;	/* objstore.c reports the bad range */
		r = 0;
		goto out_close;
	}
	want = len ? len : size - off;
	if (want > size - off)
		want = size - off;
	buf = zf_malloc(want);
	n = zf_pread_full(fd, buf, want, off);
	if (n < 0) {
		free(buf);
		r = n;
		goto out_close;
	}
	got->buf = buf;
	got->len = n;
	got->total = size;
	r = 0;
out_close:
	close(fd);
out_log:
	if (r < 0 && r != -ENOENT)
		zf_err("cannot get '%s' from '%s': %s", key, fs->root, strerror(-r));
	return r;
}

static int file_head(struct zf_objstore *st, const char *key, struct zf_objstore_stat *ret)
{
	struct file_store *fs = to_file(st);
	struct stat sb;
	int fd;

	zf_objstore_count(&st->cnt.requests, 1);
	fd = file_open_obj(fs, key, &sb);
	if (fd < 0)
		return fd;
	close(fd);
	ret->size = sb.st_size;
	/* a new version is a new inode (rename), so inode+mtime+size tags it */
	snprintf(ret->etag, sizeof(ret->etag), "%llx-%llx-%llx", (unsigned long long)sb.st_ino,
		 (unsigned long long)sb.st_mtim.tv_sec * 1000000000ull + sb.st_mtim.tv_nsec,
		 (unsigned long long)sb.st_size);
	return 0;
}

struct file_walk {
	struct file_store *fs;
	const char *prefix;
	size_t plen;
	zf_objstore_list_fn fn;
	void *ctx;
};

/*
 * List directory dfd, whose key path is path[0..len) ("" or ending in '/').
 * Descend only where keys with the prefix can be.
 */
static int file_walk_dir(struct file_walk *w, int dfd, char *path, size_t len)
{
	struct dirent *de;
	DIR *d;
	int r = 0;

	d = fdopendir(dfd);
	if (!d) {
		r = -errno;
		close(dfd);
		return r;
	}
	while (r == 0 && (errno = 0, de = readdir(d))) {
		size_t n = strlen(de->d_name), cmp;
		struct stat sb;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (len == 0 && !strcmp(de->d_name, FILE_TMP_DIR))
			continue;
		if (len + n + 2 > ZF_OBJSTORE_KEY_MAX + 1)
			continue;
		memcpy(path + len, de->d_name, n + 1);
		/* path and prefix must agree on their common length */
		cmp = len + n < w->plen ? len + n : w->plen;
		if (memcmp(path, w->prefix, cmp))
			continue;
		if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)	/* deleted while listing */
				continue;
			r = -errno;
			break;
		}
		if (S_ISDIR(sb.st_mode)) {
			int sub = openat(dirfd(d), de->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sub < 0) {
				if (errno == ENOENT)
					continue;
				r = -errno;
				break;
			}
			path[len + n] = '/';
			path[len + n + 1] = 0;
			r = file_walk_dir(w, sub, path, len + n + 1);
		} else if (S_ISREG(sb.st_mode) && len + n >= w->plen &&
			   zf_objstore_key_valid(path) == 0) {
			r = w->fn(w->ctx, path, sb.st_size);
		}
	}
	if (r == 0 && errno)
		r = -errno;
	closedir(d);
	return r;
}

static int file_list(struct zf_objstore *st, const char *prefix, zf_objstore_list_fn fn,
		     void *ctx)
{
	struct file_store *fs = to_file(st);
	struct file_walk w = { fs, prefix, strlen(prefix), fn, ctx };
	char path[ZF_OBJSTORE_KEY_MAX + 2];
	const char *slash = strrchr(prefix, '/');
	size_t len = 0;
	int dfd, r;

	zf_objstore_count(&st->cnt.requests, 1);
	if (w.plen > ZF_OBJSTORE_KEY_MAX)
		return 0;
	/* start in the deepest directory the prefix names entirely */
	if (slash) {
		len = slash - prefix + 1;
		memcpy(path, prefix, len - 1);
		path[len - 1] = 0;
		dfd = openat(fs->rootfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		path[len - 1] = '/';
	} else {
		dfd = openat(fs->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	path[len] = 0;
	if (dfd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;	/* nothing under that prefix */
		r = -errno;
		goto out_log;
	}
	r = file_walk_dir(&w, dfd, path, len);
	if (r < 0)
		goto out_log;
	return r;
out_log:
	zf_err("cannot list '%s' in '%s': %s", prefix, fs->root, strerror(-r));
	return r;
}

static int file_del(struct zf_objstore *st, const char *key)
{
	struct file_store *fs = to_file(st);
	int dfd, r;

	zf_objstore_count(&st->cnt.requests, 1);
	if (unlinkat(fs->rootfd, key, 0) < 0) {
		if (errno == ENOENT || errno == ENOTDIR || errno == EISDIR)
			return 0;
		r = -errno;
		goto out_log;
	}
	r = file_parent_dir(fs, key, &dfd);
	if (r < 0)
		goto out_log;
	r = zf_fsync_dir(dfd);
	close(dfd);
	if (r == 0)
		return 0;
out_log:
	zf_err("cannot delete '%s' from '%s': %s", key, fs->root, strerror(-r));
	return r;
}

static const struct zf_objstore_ops file_ops = {
	.scheme = "file",
	.put = file_put,
	.get = file_get,
	.head = file_head,
	.list = file_list,
	.del = file_del,
	.multi_del = NULL,	/* objstore.c loops over del */
	.close = file_close,
};

int zf_objstore_file_open(const char *url, const struct zf_objstore_opts *opts,
			  struct zf_objstore **ret_store)
{
	const char *path = url + strlen("file:");
	struct file_store *fs;
	size_t n;
	int r;

	if (strncmp(path, "//", 2) || path[2] != '/') {
		zf_objstore_open_fail(opts, "cannot open object store '%s': want "
				      "file:///absolute/path", url);
		return -EINVAL;
	}
	path += 2;
	fs = zf_calloc(1, sizeof(*fs));
	fs->base.ops = &file_ops;
	fs->base.url = zf_strdup(url);
	fs->rootfd = fs->tmpfd = -1;
	fs->root = zf_strdup(path);
	n = strlen(fs->root);
	while (n > 1 && fs->root[n - 1] == '/')
		fs->root[--n] = 0;
	if (opts->create) {
		r = mkdir_p(fs->root);
		if (r < 0) {
			zf_objstore_open_fail(opts, "cannot create object store directory '%s': %s",
					      fs->root, strerror(-r));
			goto out_free;
		}
	}
	fs->rootfd = open(fs->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fs->rootfd < 0) {
		r = -errno;
		zf_objstore_open_fail(opts, "cannot open object store directory '%s': %s", fs->root,
				      strerror(-r));
		goto out_free;
	}
	if (mkdirat(fs->rootfd, FILE_TMP_DIR, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		zf_objstore_open_fail(opts, "cannot create '%s/%s': %s", fs->root, FILE_TMP_DIR,
				      strerror(-r));
		goto out_free;
	}
	fs->tmpfd = openat(fs->rootfd, FILE_TMP_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fs->tmpfd < 0) {
		r = -errno;
		zf_objstore_open_fail(opts, "cannot open '%s/%s': %s", fs->root, FILE_TMP_DIR,
				      strerror(-r));
		goto out_free;
	}
	file_sweep_tmp(fs);
	*ret_store = &fs->base;
	return 0;
out_free:
	file_close(&fs->base);
	return r;
}
