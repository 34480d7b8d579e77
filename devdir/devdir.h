/*
 * devdir/devdir.h - a dev-dir and how it is put together: the core's
 * files (superblock, meta/, seg/, the lock), remote.conf naming its
 * bucket, and the bucket attached to it. Every command that touches a
 * dev-dir opens it here, in the mode it needs; tools/ only parses and
 * prints.
 *
 * The pieces, from the bottom: the core (storage/fs.h) formats and reads
 * the superblock and holds the dev-dir's `lock` file (flock: exclusive
 * when writable, shared when read-only) from zf_fs_open to zf_fs_close;
 * remote.conf is devdir/remote_conf.h; the bucket is tier/remote.h.
 * A zf_devdir owns one open core and, when the dev-dir has a bucket and
 * the mode wants it, the attached bucket; zf_devdir_close closes the
 * bucket first (its final upload), then the core (which drops the lock).
 *
 * Not thread-safe by itself: one thread opens and closes; the fs and rm
 * it hands out are the core's and the tier's, with their own locking.
 * Format: docs/FORMAT.md "The dev-dir".
 */
#ifndef ZF_DEVDIR_DEVDIR_H
#define ZF_DEVDIR_DEVDIR_H

#include <stdint.h>

#include "devdir/remote_conf.h"
#include "net/objstore.h"
#include "storage/fs.h"
#include "storage/meta_heal.h"
#include "tier/remote.h"

/* the core's flock(2) target inside a dev-dir (storage/fs.c takes it) */
#define ZF_DEVDIR_LOCK "lock"

enum zf_devdir_mode {
	/* writable; the bucket attached for uploads (created if absent, the
	 * lease taken) but not started: the daemon starts it after forking */
	ZF_DEVDIR_MOUNT,
	/* writable; the bucket attached and its uploader started */
	ZF_DEVDIR_GC,
	/* tolerant (salvage) load, read-only unless opts->repair; the bucket
	 * attached read-only, its absence a state, not a failure (below) */
	ZF_DEVDIR_FSCK,
	/* read-only; no bucket attached (dd->url names it: zf_devdir_pending) */
	ZF_DEVDIR_STATS,
	/* a replica's cache-dir (ZF_DEVDIR_REPLICA_MARK): read-only; the
	 * bucket attached as a replica's (no lease, nothing written to it),
	 * followed once the daemon calls zf_remote_follow_start */
	ZF_DEVDIR_REPLICA,
	/* a snapshot (opts->open.snapshot) of a dev-dir or of a replica's
	 * cache-dir: read-only; the bucket attached as a replica's, not
	 * followed */
	ZF_DEVDIR_SNAPSHOT,
};

/*
 * A replica's cache-dir holds this file ("zerofs replica of <url>"): it is
 * opened in no other mode, and ZF_DEVDIR_REPLICA opens nothing else.
 */
#define ZF_DEVDIR_REPLICA_MARK "replica"

struct zf_devdir_opts {
	const char *url;		/* the bucket; NULL or "": remote.conf's */
	/* for the core: memory, checkpoints (readonly and salvage are the mode's) */
	struct zf_open_opts open;
	/* for the bucket: budget, timeouts (url, readonly, store.create are
	 * the mode's) */
	struct zf_remote_opts remote;
	int repair;			/* ZF_DEVDIR_FSCK: open writable */
};

/* what became of the dev-dir's bucket at the open */
enum zf_devdir_bucket {
	ZF_DEVDIR_NO_BUCKET,		/* none configured, or the mode wants none */
	ZF_DEVDIR_ATTACHED,		/* dd->rm */
	/* fsck: it cannot be opened, but nothing was ever uploaded to it (a
	 * filesystem never mounted): nothing there to check, nothing evicted */
	ZF_DEVDIR_UNUSED,
	/* fsck: it cannot be opened (said why): evicted data cannot be checked */
	ZF_DEVDIR_UNREACHABLE,
};

struct zf_devdir {
	struct zf_fs *fs;		/* the open core (it holds the lock) */
	struct zf_remote *rm;		/* the attached bucket, or NULL */
	enum zf_devdir_bucket bucket;
	char url[ZF_REMOTE_URL_MAX];	/* the bucket's url ("" or "none": none) */
	char *path;			/* the dev-dir as given */
};

/* which step of a zf_devdir_* call failed (written on failure only) */
enum zf_devdir_step {
	ZF_DEVDIR_AT_CORE = 1,		/* format or open of the core */
	ZF_DEVDIR_AT_REMOTE_CONF,	/* remote.conf could not be written */
	ZF_DEVDIR_AT_BUCKET,		/* the bucket could not be attached or started */
};

struct zf_devdir_err {
	enum zf_devdir_step at;
};

/*
 * Format path (storage's zf_fs_mkfs: superblock, meta/, seg/) and point it
 * at url (NULL: the embedded default, zf_remote_conf_default). The url
 * used is copied to ret_url (len bytes). 0 or -errno, err->at saying
 * which: the core (-EEXIST, -ENOTEMPTY: already said by the core) or
 * remote.conf.
 */
int zf_devdir_mkfs(const char *path, const struct zf_mkfs_opts *mo, const char *url,
		   char *ret_url, size_t len, struct zf_devdir_err *err);

/*
 * The bucket url path uses: override when given (not NULL or ""), else
 * remote.conf's, else "" (none). Into url (ZF_REMOTE_URL_MAX bytes).
 */
void zf_devdir_url(const char *path, const char *override, char *url, size_t len);

/*
 * Is path a dev-dir: a directory holding a superblock, or a remote.conf
 * (from whose bucket fsck --repair brings a lost superblock back)? 0 yes;
 * -ENOENT no such path, -ENOTDIR not a directory, -EMEDIUMTYPE a directory
 * but no dev-dir, or the -errno of looking.
 */
int zf_devdir_identify(const char *path);

/* mark path, restored from url, as a replica's cache-dir; 0 or -errno */
int zf_devdir_mark_replica(const char *path, const char *url);

/*
 * Does a mount of path rebuild it from its bucket first: url names a
 * bucket and path holds no superblock (empty or missing)?
 */
int zf_devdir_wants_restore(const char *path, const char *url);

/*
 * Rebuild path from the bucket at url (storage's zf_remote_restore; ro and
 * ret as there) and point its remote.conf at url. 0 or -errno as
 * zf_remote_restore (-EBADMSG: a damaged bucket, nothing restored).
 */
int zf_devdir_restore(const char *path, const char *url, const struct zf_restore_opts *ro,
		      struct zf_restore_report *ret);

/*
 * Open path for mode (see enum zf_devdir_mode) with opts (NULL: defaults).
 * On success *ret_dd owns the core, the lock and the bucket it attached.
 * Errors: the core's -errno (-EBUSY: in use, already said; -EBADMSG:
 * corrupt metadata; -ENOENT: not formatted), err->at = ZF_DEVDIR_AT_CORE;
 * or the bucket's (-EBUSY lease, -ESTALE fork, -EEXIST another
 * filesystem: said why), err->at = ZF_DEVDIR_AT_BUCKET, nothing left open.
 * ZF_DEVDIR_FSCK never fails at the bucket: see dd->bucket.
 */
int zf_devdir_open(const char *path, enum zf_devdir_mode mode, const struct zf_devdir_opts *opts,
		   struct zf_devdir **ret_dd, struct zf_devdir_err *err);

/*
 * Close the bucket (final upload, lease released), then the core
 * (flush, commit, checkpoint, lock dropped), and free dd. Returns the
 * first error. NULL is fine.
 */
int zf_devdir_close(struct zf_devdir *dd);

/*
 * Close the bucket, then free the core without a closing checkpoint:
 * what the open committed stays in the log as it is (fsck after a repair
 * that found nothing). NULL is fine.
 */
void zf_devdir_abandon(struct zf_devdir *dd);

/*
 * Hand the core and the bucket over (to the daemon, which closes them, the
 * bucket first) and free dd. *ret_rm may be NULL (no bucket).
 */
void zf_devdir_hand_over(struct zf_devdir *dd, struct zf_fs **ret_fs, struct zf_remote **ret_rm);

/*
 * What dd's bucket lacks of it (the tier's zf_remote_pending_read: from
 * upload.state, seg/ and the log; the bucket is not asked, so this works
 * in every mode, ZF_DEVDIR_STATS too, and while it is unreachable).
 * 0 and *ret, -ENOENT when dd has no bucket (or is a replica's), or -errno.
 */
int zf_devdir_pending(struct zf_devdir *dd, struct zf_remote_pending *ret);

/*
 * gc of an open dev-dir: with its bucket (storage's zf_remote_gc: also
 * the bucket's garbage) or without (zf_fs_gc). 0 or -errno.
 */
int zf_devdir_gc(struct zf_devdir *dd, const struct zf_gc_opts *o, struct zf_gc_report *rep);

/*
 * fsck of dd (opened ZF_DEVDIR_FSCK): the core's check, asking the bucket
 * about evicted segments; then, when that ran (0 or -EUCLEAN) and the
 * bucket is attached, the bucket's audit against the segments the
 * metadata uses. The caller sets rep's and au's callbacks, verify and
 * repair (au's repair and verify follow rep's); the bucket fields of rep
 * and au's segment list are filled here. au is untouched without a
 * bucket. Returns zf_fs_check's result (0 clean, -EUCLEAN problems found,
 * or -errno: the check itself failed, no audit).
 */
int zf_devdir_check(struct zf_devdir *dd, struct zf_check_report *rep, struct zf_remote_audit *au);

/*
 * Did dd's bucket fail to answer since the open (an outage, not a missing
 * object)? 0 (also without a bucket), or the -errno with a one-line
 * reason in why (len bytes): what was checked is then incomplete.
 */
int zf_devdir_bucket_failed(struct zf_devdir *dd, char *why, size_t len);

/*
 * Before fsck opens path: what of its metadata (superblock, checkpoints,
 * log records) is lost locally and held by its bucket (storage's
 * zf_meta_heal, with the bucket's store when path has one that opens; one
 * that does not is left to the check to name). With apply, rebuild meta/
 * from the bucket when that loses nothing. 0 and *ret, or -errno as
 * zf_meta_heal.
 */
int zf_devdir_heal_meta(const char *path, int apply, struct zf_meta_heal *ret);

/*
 * Wait until no process holds path's lock (a daemon flushing after an
 * unmount releases it last), polling for up to timeout_ms (0: look once).
 * 0, -ETIMEDOUT, or -errno when the lock file cannot be opened.
 */
int zf_devdir_wait_released(const char *path, unsigned int timeout_ms);

#endif
