/*
 * storage/fs_snap.c - snapshots (storage/fs_snap.h)
 *
 * A snapshot is the checkpoint written for it, hard-linked as
 * meta/snap.<name>: the link is made after the checkpoint is durable
 * (renamed, directory synced), and the directory is synced after the link,
 * so a crash leaves no snapshot or the whole one. Later checkpoints replace
 * ckpt.<seq> names, never the snapshot's inode.
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

#include "common/endian.h"
#include "common/log.h"
#include "common/util.h"
#include "storage/fs_internal.h"
#include "storage/fs_snap.h"
#include "storage/meta_format.h"

int zf_snap_name_ok(const char *name)
{
	size_t i, n = strlen(name);

	/* ".tmp" marks an unfinished publish in meta/: an open would remove it */
	if (!n || n > ZF_SNAP_NAME_MAX || name[0] == '.' || name[0] == '-' || strstr(name, ".tmp"))
		return 0;
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

void zf_snap_file(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "snap.%s", name);
}

int zf_fs_snapshot_create(struct zf_fs *fs, const char *name, uint64_t *ret_seq)
{
	char ckpt[64], snap[64];
	int r;

	if (!zf_snap_name_ok(name))
		return -EINVAL;
	if (fs->readonly)
		return -EROFS;
	zf_snap_file(name, snap, sizeof(snap));
	/* buffered data into segments first, fetching what it needs without the
	 * core's lock: the flush below then has little or nothing to do */
	r = zf_fs_sync(fs);
	if (r < 0)
		return r;
	/* not while a gc runs: it chose its victims without this snapshot */
	zf_mutex_lock(&fs->gc_lock);
	fs_lock(fs);
	if (faccessat(fs->metafd, snap, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		r = -EEXIST;
		goto out;
	}
	r = fs_flush_all(fs, 0);
	if (r == 0)
		r = fs_checkpoint_locked(fs);
	if (r < 0)
		goto out;
	zf_ckpt_name(fs->ckpt_seq, ckpt, sizeof(ckpt));
	if (linkat(fs->metafd, ckpt, fs->metafd, snap, 0) < 0) {
		r = -errno;
		zf_err("cannot keep checkpoint '%s' as snapshot '%s': %s", ckpt, name, strerror(-r));
		goto out;
	}
	r = zf_fsync_dir(fs->metafd);
	if (ret_seq)
		*ret_seq = fs->ckpt_seq;
out:
	fs_unlock(fs);
	zf_mutex_unlock(&fs->gc_lock);
	return r;
}

int zf_fs_snapshot_delete(struct zf_fs *fs, const char *name)
{
	char snap[64];
	int r = 0;

	if (!zf_snap_name_ok(name))
		return -ENOENT;
	if (fs->readonly)
		return -EROFS;
	zf_snap_file(name, snap, sizeof(snap));
	fs_lock(fs);
	if (unlinkat(fs->metafd, snap, 0) < 0)
		r = -errno;
	else
		r = zf_fsync_dir(fs->metafd);
	fs_unlock(fs);
	return r;
}

static int cmp_snap(const void *a, const void *b)
{
	const struct zf_snap_info *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq ? 1 : strcmp(x->name, y->name);
}

int zf_fs_snapshot_list(struct zf_fs *fs, struct zf_snap_info **ret, size_t *ret_n)
{
	struct zf_snap_info *v = NULL;
	int fd = openat(fs->metafd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *e;
	size_t n = 0;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	while ((e = readdir(d))) {
		struct zf_snap_info s = { 0 };
		uint8_t hdr[64];
		struct stat st;
		int f;

		if (strncmp(e->d_name, "snap.", 5) || !zf_snap_name_ok(e->d_name + 5))
			continue;
		snprintf(s.name, sizeof(s.name), "%s", e->d_name + 5);
		f = openat(fs->metafd, e->d_name, O_RDONLY | O_CLOEXEC);
		if (f < 0)
			continue;
		if (fstat(f, &st) == 0) {
			s.made = st.st_mtime;
			s.bytes = st.st_size;
		}
		/* the checkpoint's header: its seq at 32 (verified when it is loaded) */
		if (pread(f, hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr))
			s.seq = zf_get64(hdr + 32);
		close(f);
		v = zf_realloc(v, (n + 1) * sizeof(*v));
		v[n++] = s;
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), cmp_snap);
	*ret = v;
	*ret_n = n;
	return 0;
}

struct seg_refs {
	uint64_t *ids;
	size_t n;
};

static int collect_sc(void *ctx, const struct zf_frame *f)
{
	struct seg_refs *s = ctx;

	if (f->type == ZF_REC_SC && f->len >= 8) {
		uint64_t seg = zf_get64(f->payload);

		if (!s->n || s->ids[s->n - 1] != seg) {
			s->ids = zf_realloc(s->ids, (s->n + 1) * sizeof(*s->ids));
			s->ids[s->n++] = seg;
		}
	}
	return 0;
}

int zf_fs_snapshot_segs(struct zf_fs *fs, uint64_t **ret, size_t *ret_n)
{
	struct seg_refs s = { 0 };
	struct zf_snap_info *v = NULL;
	size_t n = 0, i, j;
	char file[64];
	int r;

	r = zf_fs_snapshot_list(fs, &v, &n);
	for (i = 0; r == 0 && i < n; i++) {
		uint64_t seq;

		zf_snap_file(v[i].name, file, sizeof(file));
		r = zf_ckpt_load(fs->metafd, file, fs->fsid, collect_sc, &s, &seq);
		if (r != 0) {
			zf_err("snapshot '%s' (meta/%s) does not load: gc keeps everything", v[i].name,
			       file);
			r = -EBADMSG;
		}
	}
	free(v);
	if (r < 0) {
		free(s.ids);
		return r;
	}
	if (s.n)
		qsort(s.ids, s.n, sizeof(*s.ids), zf_cmp_u64);
	for (i = j = 0; i < s.n; i++)
		if (!j || s.ids[j - 1] != s.ids[i])
			s.ids[j++] = s.ids[i];
	*ret = s.ids;
	*ret_n = j;
	return 0;
}
