/*
 * storage/fs_snap.h - snapshots: a filesystem's state at one point of its
 * log, kept by name (storage/fs_snap.c)
 *
 * A snapshot is a checkpoint kept as meta/snap.<name> (a hard link to the
 * checkpoint written for it: no data is copied). Its files' data stays:
 * gc never rewrites or removes a segment a snapshot's checkpoint locates
 * chunks in (zf_fs_snapshot_segs); deleting the snapshot frees them for the
 * next gc. A snapshot opens on its own, read-only (zf_open_opts.snapshot).
 * The tier copies it to the bucket (snap/<name>) so that a restore brings
 * it back. Format: docs/FORMAT.md "Snapshots".
 */
#ifndef ZF_STORAGE_FS_SNAP_H
#define ZF_STORAGE_FS_SNAP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct zf_fs;

/* letters, digits, '.', '_', '-'; not starting with '.' or '-', no ".tmp" */
#define ZF_SNAP_NAME_MAX 48

/* is name a valid snapshot name? */
int zf_snap_name_ok(const char *name);

/* "snap.<name>", the snapshot's file in meta/ (buf: at least 64 bytes) */
void zf_snap_file(const char *name, char *buf, size_t len);

/*
 * Snapshot the filesystem as it is now: everything written is flushed
 * and committed, a checkpoint is written and kept as meta/snap.<name>
 * (atomic: a crash leaves no snapshot or the whole one). *ret_seq: the
 * last log record it holds. 0, -EINVAL (a bad name), -EEXIST, -EROFS.
 */
int zf_fs_snapshot_create(struct zf_fs *fs, const char *name, uint64_t *ret_seq);

/* forget snapshot name (its data is garbage to the next gc): 0, -ENOENT */
int zf_fs_snapshot_delete(struct zf_fs *fs, const char *name);

struct zf_snap_info {
	char name[ZF_SNAP_NAME_MAX + 1];
	uint64_t seq;		/* the last log record it holds */
	time_t made;		/* when it was made (its file's mtime) */
	uint64_t bytes;		/* its checkpoint's size */
};
/* the snapshots of fs, sorted by seq (*ret malloc'd, *ret_n of them); 0 or -errno */
int zf_fs_snapshot_list(struct zf_fs *fs, struct zf_snap_info **ret, size_t *ret_n);

/*
 * The sorted, distinct ids of the segments the snapshots' checkpoints
 * locate chunks in (*ret malloc'd): gc keeps them. A snapshot that does not
 * load fails the call (-EBADMSG, logged): gc must not guess.
 */
int zf_fs_snapshot_segs(struct zf_fs *fs, uint64_t **ret, size_t *ret_n);

#endif
