/*
 * devdir/devdir.c - opening a dev-dir for a command (see devdir.h)
 *
 * The order of an open is the order of the layers: the core first (it
 * reads the superblock and takes the lock, so a dev-dir in use is refused
 * before the bucket is touched), then the bucket, which needs the open
 * core (its fetch and backpressure hooks). A close undoes it in reverse.
 *
 * Not here: the superblock's codec and the lock itself (storage/fs.c),
 * remote.conf's codec (devdir/remote_conf.c), which dev-dir a mountpoint
 * serves (devdir/mountinfo.c).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "devdir/devdir.h"
#include "storage/fs_snap.h"
#include "storage/fs_tier.h"

/* a lock's holder is polled this often while an unmount waits for it */
#define WAIT_POLL_MS 10

static void set_err(struct zf_devdir_err *err, enum zf_devdir_step at)
{
	if (err)
		err->at = at;
}

static int file_exists(const char *path, const char *name)
{
	char p[ZF_NAME_MAX + 64];

	snprintf(p, sizeof(p), "%s/%s", path, name);
	return access(p, F_OK) == 0;
}

/*
 * What the old filesystem of a dev-dir formatted again with --force left
 * outside the core's files: its upload marks (which would call the new
 * filesystem's segments uploaded), its fetched super-chunks, a replica's
 * mark.
 */
static void forget_old_fs(const char *path)
{
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int cfd = dfd < 0 ? -1 : openat(dfd, "cache", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = cfd < 0 ? NULL : fdopendir(cfd);
	struct dirent *e;

	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.')
			unlinkat(cfd, e->d_name, 0);
	if (d)
		closedir(d);
	else if (cfd >= 0)
		close(cfd);
	if (dfd >= 0) {
		unlinkat(dfd, "upload.state", 0);
		unlinkat(dfd, ZF_DEVDIR_REPLICA_MARK, 0);
		zf_fsync_dir(dfd);
		close(dfd);
	}
}

int zf_devdir_mkfs(const char *path, const struct zf_mkfs_opts *mo, const char *url,
		   char *ret_url, size_t len, struct zf_devdir_err *err)
{
	char u[ZF_REMOTE_URL_MAX];
	int r;

	r = zf_fs_mkfs(path, mo);
	if (r < 0) {
		set_err(err, ZF_DEVDIR_AT_CORE);
		return r;
	}
	if (mo && mo->force)
		forget_old_fs(path);
	if (url)
		snprintf(u, sizeof(u), "%s", url);
	else
		zf_remote_conf_default(path, u, sizeof(u));
	r = zf_remote_conf_write(path, u);
	if (r < 0) {
		set_err(err, ZF_DEVDIR_AT_REMOTE_CONF);
		return r;
	}
	snprintf(ret_url, len, "%s", u);
	return 0;
}

void zf_devdir_url(const char *path, const char *override, char *url, size_t len)
{
	if (override && *override)
		snprintf(url, len, "%s", override);
	else if (zf_remote_conf_read(path, url, len) < 0)
		url[0] = 0;
}

int zf_devdir_identify(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (file_exists(path, "superblock") || file_exists(path, ZF_REMOTE_CONF))
		return 0;
	return -EMEDIUMTYPE;
}

int zf_devdir_wants_restore(const char *path, const char *url)
{
	char sb[ZF_NAME_MAX + 64];

	snprintf(sb, sizeof(sb), "%s/superblock", path);
	return zf_remote_conf_is_bucket(url) && access(sb, F_OK) < 0 && errno == ENOENT;
}

int zf_devdir_restore(const char *path, const char *url, const struct zf_restore_opts *ro,
		      struct zf_restore_report *ret)
{
	int r = zf_remote_restore(url, ro, path, ret);

	return r < 0 ? r : zf_remote_conf_write(path, url);
}

int zf_devdir_mark_replica(const char *path, const char *url)
{
	char line[ZF_REMOTE_URL_MAX + 32];
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r;

	if (fd < 0)
		return -errno;
	snprintf(line, sizeof(line), "zerofs replica of %s\n", url);
	r = zf_publish_file(fd, ZF_DEVDIR_REPLICA_MARK, line, strlen(line));
	close(fd);
	return r;
}

/*
 * A replica's cache-dir opens as nothing else, and nothing else as one
 * (said): 0 or -EPERM.
 */
static int check_replica(const char *path, enum zf_devdir_mode mode, int repair)
{
	int marked = file_exists(path, ZF_DEVDIR_REPLICA_MARK);
	int writes = mode == ZF_DEVDIR_MOUNT || mode == ZF_DEVDIR_GC ||
		     (mode == ZF_DEVDIR_FSCK && repair);

	if (marked && writes) {
		zf_err("'%s' is a replica's cache-dir: it follows its writer read-only "
		       "('zerofs mount --replica URL %s MNT'); the writer's own dev-dir is "
		       "where its filesystem changes", path, path);
		return -EPERM;
	}
	if (!marked && mode == ZF_DEVDIR_REPLICA) {
		zf_err("'%s' is a writer's dev-dir, not a replica's cache-dir: a replica needs "
		       "an empty directory of its own", path);
		return -EPERM;
	}
	return 0;
}

/* the core's options for mode */
static struct zf_open_opts core_opts(enum zf_devdir_mode mode, const struct zf_devdir_opts *o)
{
	struct zf_open_opts oo = o->open;

	switch (mode) {
	case ZF_DEVDIR_MOUNT:
	case ZF_DEVDIR_GC:
		oo.readonly = 0;
		oo.salvage = 0;
		break;
	case ZF_DEVDIR_FSCK:
		oo.readonly = !o->repair;
		oo.salvage = 1;
		break;
	case ZF_DEVDIR_STATS:
	case ZF_DEVDIR_REPLICA:
	case ZF_DEVDIR_SNAPSHOT:
		oo.readonly = 1;
		oo.salvage = 0;
		break;
	}
	return oo;
}

/*
 * Attach dd's bucket for mode. fsck takes what it finds: a bucket that
 * cannot be opened is a state of dd, not a failure; the others fail.
 */
static int attach_bucket(struct zf_devdir *dd, enum zf_devdir_mode mode,
			 const struct zf_devdir_opts *o)
{
	struct zf_remote_opts ro = o->remote;
	int r;

	ro.url = dd->url;
	ro.readonly = mode == ZF_DEVDIR_FSCK || mode == ZF_DEVDIR_REPLICA ||
		      mode == ZF_DEVDIR_SNAPSHOT;
	ro.replica = mode == ZF_DEVDIR_REPLICA || mode == ZF_DEVDIR_SNAPSHOT;
	ro.store.create = mode == ZF_DEVDIR_MOUNT;
	r = zf_remote_open(dd->fs, dd->path, &ro, &dd->rm);
	if (r < 0) {
		dd->rm = NULL;
		if (mode != ZF_DEVDIR_FSCK)
			return r;
		/* nothing uploaded yet: the bucket holds nothing of ours */
		dd->bucket = file_exists(dd->path, "upload.state") ? ZF_DEVDIR_UNREACHABLE
								    : ZF_DEVDIR_UNUSED;
		return 0;
	}
	dd->bucket = ZF_DEVDIR_ATTACHED;
	if (mode == ZF_DEVDIR_GC)
		return zf_remote_start(dd->rm);
	return 0;
}

int zf_devdir_open(const char *path, enum zf_devdir_mode mode, const struct zf_devdir_opts *opts,
		   struct zf_devdir **ret_dd, struct zf_devdir_err *err)
{
	static const struct zf_devdir_opts none;
	const struct zf_devdir_opts *o = opts ? opts : &none;
	struct zf_open_opts oo = core_opts(mode, o);
	struct zf_devdir *dd;
	int r;

	r = check_replica(path, mode, o->repair);
	if (r < 0) {
		set_err(err, ZF_DEVDIR_AT_CORE);
		return r;
	}
	dd = zf_calloc(1, sizeof(*dd));
	dd->path = zf_strdup(path);
	dd->bucket = ZF_DEVDIR_NO_BUCKET;
	r = zf_fs_open(path, &oo, &dd->fs);
	if (r < 0) {
		dd->fs = NULL;
		set_err(err, ZF_DEVDIR_AT_CORE);
		goto out_free;
	}
	zf_devdir_url(path, o->url, dd->url, sizeof(dd->url));
	if (mode == ZF_DEVDIR_STATS || !zf_remote_conf_is_bucket(dd->url))
		goto out;
	r = attach_bucket(dd, mode, o);
	if (r < 0) {
		set_err(err, ZF_DEVDIR_AT_BUCKET);
		goto out_close;
	}
out:
	*ret_dd = dd;
	return 0;
out_close:
	zf_remote_close(dd->rm);
	zf_fs_close(dd->fs);
out_free:
	free(dd->path);
	free(dd);
	return r;
}

static void devdir_free(struct zf_devdir *dd)
{
	free(dd->path);
	free(dd);
}

int zf_devdir_close(struct zf_devdir *dd)
{
	int r, r2;

	if (!dd)
		return 0;
	r = zf_remote_close(dd->rm);
	r2 = zf_fs_close(dd->fs);
	devdir_free(dd);
	return r < 0 ? r : r2;
}

void zf_devdir_abandon(struct zf_devdir *dd)
{
	if (!dd)
		return;
	zf_remote_close(dd->rm);
	zf_fs_abandon(dd->fs);
	devdir_free(dd);
}

void zf_devdir_hand_over(struct zf_devdir *dd, struct zf_fs **ret_fs, struct zf_remote **ret_rm)
{
	*ret_fs = dd->fs;
	*ret_rm = dd->rm;
	devdir_free(dd);
}

int zf_devdir_pending(struct zf_devdir *dd, struct zf_remote_pending *ret)
{
	/* a replica's cache-dir writes nothing: the writer's bucket is all there is */
	if (!zf_remote_conf_is_bucket(dd->url) || file_exists(dd->path, ZF_DEVDIR_REPLICA_MARK))
		return -ENOENT;
	return zf_remote_pending_read(dd->fs, dd->path, ret);
}

int zf_devdir_gc(struct zf_devdir *dd, const struct zf_gc_opts *o, struct zf_gc_report *rep)
{
	return dd->rm ? zf_remote_gc(dd->rm, o, rep) : zf_fs_gc(dd->fs, o, rep);
}

static void check_problem(struct zf_check_report *rep, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void check_problem(struct zf_check_report *rep, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rep->errors++;
	if (rep->problem)
		rep->problem(rep->ctx, msg);
	else
		zf_err("%s", msg);
}

/*
 * The snapshots: each loads, and every segment it locates chunks in is in
 * the dev-dir or in the bucket (gc keeps them). -EUCLEAN when not.
 */
static int check_snapshots(struct zf_devdir *dd, struct zf_check_report *rep)
{
	uint64_t *segs = NULL, errors = rep->errors, size;
	size_t n = 0, i;

	if (zf_fs_snapshot_segs(dd->fs, &segs, &n) < 0) {
		check_problem(rep, "a snapshot does not load (said above): its files are lost");
		return -EUCLEAN;
	}
	for (i = 0; i < n; i++) {
		if (zf_fs_segment_local(dd->fs, segs[i]))
			continue;
		if (!rep->remote_seg_size && rep->bucket_unreachable)
			continue; /* cannot be checked: not damage */
		if (rep->remote_seg_size && rep->remote_seg_size(rep->rctx, segs[i], &size) != -ENOENT)
			continue; /* there (or not answered: the audit says so) */
		check_problem(rep, "a snapshot locates chunks in segment %016llx, which is neither "
			      "in the dev-dir nor in the bucket", (unsigned long long)segs[i]);
	}
	free(segs);
	return rep->errors > errors ? -EUCLEAN : 0;
}

int zf_devdir_check(struct zf_devdir *dd, struct zf_check_report *rep, struct zf_remote_audit *au)
{
	uint64_t *segs = NULL;
	size_t nsegs = 0;
	int r, rs;

	rep->bucket_unreachable = dd->bucket == ZF_DEVDIR_UNREACHABLE;
	rep->remote_seg_size = dd->rm ? zf_remote_seg_size : NULL;
	rep->rctx = dd->rm;
	r = zf_fs_check(dd->fs, rep);
	rs = r == 0 || r == -EUCLEAN ? check_snapshots(dd, rep) : 0;
	if (r == 0)
		r = rs;
	if ((r != 0 && r != -EUCLEAN) || !dd->rm)
		return r;
	zf_fs_segments_used(dd->fs, &segs, &nsegs);
	au->segs = segs;
	au->nsegs = nsegs;
	au->repair = rep->repair;
	au->verify = rep->verify_data;
	zf_remote_audit(dd->rm, au); /* a bucket that did not answer: zf_devdir_bucket_failed */
	au->segs = NULL;
	au->nsegs = 0;
	free(segs);
	return r;
}

int zf_devdir_bucket_failed(struct zf_devdir *dd, char *why, size_t len)
{
	return dd->rm ? zf_remote_unreachable(dd->rm, why, len) : 0;
}

int zf_devdir_heal_meta(const char *path, int apply, struct zf_meta_heal *ret)
{
	char url[ZF_REMOTE_URL_MAX];
	struct zf_objstore *os = NULL;
	int r;

	if (zf_remote_conf_read(path, url, sizeof(url)) == 0 && zf_remote_conf_is_bucket(url) &&
	    zf_objstore_open(url, NULL, &os) < 0)
		os = NULL; /* unreachable: the check says what it cannot see */
	r = zf_meta_heal(path, os, apply, ret);
	zf_objstore_close(os);
	return r;
}

int zf_devdir_wait_released(const char *path, unsigned int timeout_ms)
{
	char lockp[ZF_NAME_MAX + 64];
	unsigned int waited;
	int fd, r = -ETIMEDOUT;

	snprintf(lockp, sizeof(lockp), "%s/" ZF_DEVDIR_LOCK, path);
	fd = open(lockp, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (waited = 0;; waited += WAIT_POLL_MS) {
		if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
			r = 0;
			break;
		}
		if (waited >= timeout_ms)
			break;
		usleep(WAIT_POLL_MS * 1000);
	}
	close(fd);
	return r;
}
