/*
 * storage/segstore_file.c - segment files in the dev-dir's seg/ directory:
 * the cache of read-only fds (each file's header checked when it is
 * opened), fsck's header check and fix, the directory scan that counts
 * them, and removing evicted or collected ones.
 *
 * Locking (segstore_internal.h): st->lock guards the fd cache; files are
 * opened, read and written outside it. Eviction takes st->wlock so the open
 * segment is never removed.
 * Not here: writing the open segment (segstore_append.c), super-chunks
 * (segstore_read.c).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/lock.h"
#include "common/log.h"
#include "common/util.h"
#include "storage/segstore_internal.h"

int zf_segfd_exists(struct zf_segstore *st, uint64_t seg)
{
	char name[32];

	zf_segstore_name(seg, name, sizeof(name));
	return faccessat(st->dirfd, name, F_OK, 0) == 0 ? 0 : -errno;
}

static void zf_segfd_unref_locked(struct zf_segfd *f)
{
	if (--f->refs > 0)
		return;
	close(f->fd);
	free(f);
}

void zf_segfd_put(struct zf_segstore *st, struct zf_segfd *f)
{
	zf_mutex_lock(&st->lock);
	zf_segfd_unref_locked(f);
	zf_mutex_unlock(&st->lock);
}

static void zf_segfd_uncache_locked(struct zf_segstore *st, struct zf_segfd *f)
{
	zf_link_del(&f->lru);
	f->cached = false;
	st->nfds--;
	zf_segfd_unref_locked(f);
}

void zf_segfd_flush(struct zf_segstore *st)
{
	zf_mutex_lock(&st->lock);
	while (st->fds.next != &st->fds)
		zf_segfd_uncache_locked(st, zf_container_of(st->fds.next, struct zf_segfd, lru));
	zf_mutex_unlock(&st->lock);
}

static struct zf_segfd *zf_segfd_lookup_locked(struct zf_segstore *st, uint64_t seg)
{
	struct zf_link *l;

	for (l = st->fds.next; l != &st->fds; l = l->next) {
		struct zf_segfd *f = zf_container_of(l, struct zf_segfd, lru);

		if (f->seg == seg) {
			zf_link_del(&f->lru);
			zf_link_add_head(&st->fds, &f->lru);
			f->refs++;
			return f;
		}
	}
	return NULL;
}

int zf_seg_open_hdr(struct zf_segstore *st, uint64_t seg, int flags, uint8_t *h, int *ret_fd,
		    ssize_t *ret_n, const char **ret_why)
{
	char name[32];
	ssize_t n;
	int fd, r;

	zf_segstore_name(seg, name, sizeof(name));
	fd = openat(st->dirfd, name, flags | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		if (r != -ENOENT)
			zf_err("cannot open segment '%s': %s", name, strerror(-r));
		return r;
	}
	n = zf_pread_full(fd, h, ZF_SEG_HDR_SIZE, 0);
	if (n < 0) {
		zf_err("cannot read segment '%s': %s", name, strerror((int)-n));
		close(fd);
		return (int)n;
	}
	*ret_fd = fd;
	*ret_n = n;
	*ret_why = n < (ssize_t)ZF_SEG_HDR_SIZE ? "truncated segment header"
						: zf_seg_hdr_check(h, seg, st->fsid);
	return 0;
}

int zf_segfd_get(struct zf_segstore *st, uint64_t seg, struct zf_segfd **ret_f,
		 struct zf_seg_err *err)
{
	char name[32];
	uint8_t h[ZF_SEG_HDR_SIZE];
	struct zf_segfd *f, *old;
	const char *why;
	ssize_t n;
	int fd, r;

	zf_mutex_lock(&st->lock);
	f = zf_segfd_lookup_locked(st, seg);
	zf_mutex_unlock(&st->lock);
	if (f) {
		*ret_f = f;
		return 0;
	}

	/* open outside the lock: other readers keep using cached fds */
	zf_segstore_name(seg, name, sizeof(name));
	r = zf_seg_open_hdr(st, seg, O_RDONLY, h, &fd, &n, &why);
	if (r < 0)
		return r;
	/*
	 * Every super-chunk verifies on its own (its header names the
	 * segment, its chunks are keyed hashes): a damaged segment header
	 * costs nothing but this line (fsck reports it, --repair rewrites it).
	 */
	if (why && !zf_seg_hdr_damaged(h, n)) {
		zf_seg_err_set(err, "%s", why);
		zf_err("cannot read segment '%s': %s", name, why);
		r = -EIO;
		goto out_close;
	}
	if (why)
		zf_warn("segment '%s': %s; its super-chunks are verified one by one", name, why);

	f = zf_calloc(1, sizeof(*f));
	f->seg = seg;
	f->fd = fd;
	f->refs = 2; /* the cache's and the caller's */
	f->cached = true;
	zf_mutex_lock(&st->lock);
	old = zf_segfd_lookup_locked(st, seg);
	if (old) {
		/* another reader opened it meanwhile: use theirs */
		zf_mutex_unlock(&st->lock);
		free(f);
		close(fd);
		*ret_f = old;
		return 0;
	}
	zf_link_add_head(&st->fds, &f->lru);
	if (++st->nfds > ZF_SEG_FD_CACHE)
		zf_segfd_uncache_locked(st, zf_container_of(st->fds.prev, struct zf_segfd, lru));
	zf_mutex_unlock(&st->lock);
	*ret_f = f;
	return 0;

out_close:
	close(fd);
	return r;
}

int zf_segstore_seg_check(struct zf_segstore *st, uint64_t seg, uint64_t *ret_size,
			  struct zf_seg_err *err)
{
	uint8_t h[ZF_SEG_HDR_SIZE];
	struct zf_segfd *f;
	const char *why;
	struct stat sb;
	ssize_t n;
	int r;

	zf_seg_err_set(err, "unreadable");
	r = zf_segfd_get(st, seg, &f, err);
	if (r < 0)
		return r; /* -EIO: a whole header, but not this segment's */
	r = fstat(f->fd, &sb) < 0 ? -errno : 0;
	n = zf_pread_full(f->fd, h, sizeof(h), 0);
	zf_segfd_put(st, f);
	if (r < 0)
		return r;
	*ret_size = (uint64_t)sb.st_size;
	if (n < 0)
		return (int)n;
	why = n < (ssize_t)sizeof(h) ? "truncated segment header"
				     : zf_seg_hdr_check(h, seg, st->fsid);
	if (why) {
		zf_seg_err_set(err, "%s", why);
		return -EUCLEAN;
	}
	return 0;
}

int zf_seg_patch(struct zf_segstore *st, uint64_t seg, uint64_t off, const void *buf, size_t len)
{
	char name[32];
	int fd, r = 0;

	zf_segstore_name(seg, name, sizeof(name));
	fd = openat(st->dirfd, name, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len)
		r = errno ? -errno : -EIO;
	else if (fdatasync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

int zf_segstore_seg_fix_header(struct zf_segstore *st, uint64_t seg)
{
	uint8_t h[ZF_SEG_HDR_SIZE];

	zf_seg_hdr_encode(h, seg, st->fsid);
	return zf_seg_patch(st, seg, 0, h, sizeof(h));
}

/* ---- directory scan ---- */

int zf_seg_scan(struct zf_segstore *st, uint64_t remove_above, uint64_t *ret_n,
		uint64_t *ret_bytes, uint64_t *ret_max, bool *ret_removed)
{
	uint64_t nsegs = 0, bytes = 0, max = 0;
	bool removed = false;
	struct dirent *de;
	DIR *d;
	int fd, r = 0;

	fd = openat(st->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(d = fdopendir(fd))) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		zf_err("cannot list the segment directory: %s", strerror(-r));
		return r;
	}
	while ((errno = 0, de = readdir(d))) {
		uint64_t id = zf_seg_parse_name(de->d_name);
		struct stat sb;

		if (!id)
			continue;
		if (id > remove_above) {
			zf_warn("removing segment '%s': newer than the metadata log knows",
				de->d_name);
			if (unlinkat(st->dirfd, de->d_name, 0) < 0 && errno != ENOENT) {
				r = -errno;
				zf_err("cannot remove segment '%s': %s", de->d_name, strerror(-r));
				goto out_closedir;
			}
			removed = true;
			continue;
		}
		if (fstatat(st->dirfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;
			r = -errno;
			zf_err("cannot stat segment '%s': %s", de->d_name, strerror(-r));
			goto out_closedir;
		}
		nsegs++;
		bytes += (uint64_t)sb.st_size;
		if (id > max)
			max = id;
	}
	if (errno) {
		r = -errno;
		zf_err("cannot list the segment directory: %s", strerror(-r));
		goto out_closedir;
	}
	*ret_n = nsegs;
	*ret_bytes = bytes;
	*ret_max = max;
	if (ret_removed)
		*ret_removed = removed;
out_closedir:
	closedir(d);
	return r;
}


int zf_segstore_has(struct zf_segstore *st, uint64_t seg)
{
	return zf_segfd_exists(st, seg) == 0;
}

int zf_segstore_evict(struct zf_segstore *st, uint64_t seg)
{
	struct zf_segfd *f;
	char name[32];
	int r;

	zf_segstore_name(seg, name, sizeof(name));

	zf_mutex_lock(&st->wlock);
	if (st->wseg && seg >= st->wseg) { /* the open segment stays */
		zf_mutex_unlock(&st->wlock);
		return -EBUSY;
	}
	zf_mutex_lock(&st->lock);
	f = zf_segfd_lookup_locked(st, seg);
	if (f) {
		f->refs--; /* the lookup's reference; the cache's goes next */
		zf_segfd_uncache_locked(st, f);
	}
	zf_mutex_unlock(&st->lock);
	r = unlinkat(st->dirfd, name, 0) < 0 ? -errno : 0;
	zf_mutex_unlock(&st->wlock);
	return r;
}
