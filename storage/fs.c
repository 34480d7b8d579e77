/*
 * storage/fs.c - lifetime of the storage core: mkfs (superblock, meta/,
 * seg/), open (lock the dev-dir, open the segment store, load the metadata
 * through fs_replay.c, resume the open segment and the log, reclaim
 * orphans), close and abandon.
 *
 * Not here: the record applier (fs_apply.c), replay (fs_replay.c), commit
 * and checkpoints (fs_commit.c), stats (fs_stats.c), the tier's hooks
 * (fs_tier.c).
 *
 * Format: docs/FORMAT.md "Superblock".
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>
#include <xxhash.h>

#include "common/lock.h"
#include "common/endian.h"
#include "common/log.h"
#include "common/util.h"
#include "storage/fs_internal.h"
#include "storage/keys.h"
#include "storage/superblock.h"
#include "storage/meta_format.h"

#define DEFAULT_SEG_LIMIT (16ull << 20)
#define DEFAULT_CKPT (64ull << 20)

int zf_fs_lock_held(void)
{
	return zf_nonet_locks != 0;
}

/* ------------------------------------------------------------ superblock */

static int sb_write(int dirfd, const struct zf_fs *fs, const struct zf_mkfs_opts *o,
		    uint32_t features)
{
	struct zf_sb sb = {
		.chunk_min = o->chunk_min, .chunk_avg = o->chunk_avg, .chunk_max = o->chunk_max,
		.zstd_level = o->zstd_level, .seg_limit = o->seg_limit,
		.created = zf_now().tv_sec, .incompat = features,
		.made_by = zf_version_code(PACKAGE_VERSION),
	};
	uint8_t buf[ZF_SB_SIZE];

	memcpy(sb.fsid, fs->fsid, 16);
	if (!(features & ZF_FEAT_ENCRYPT)) /* else derived from the master key */
		memcpy(sb.secret, fs->secret, ZF_SECRET_LEN);
	zf_sb_encode(&sb, buf);
	return zf_publish_file(dirfd, "superblock", buf, sizeof(buf));
}

/*
 * The superblock, its features checked, and with ZF_FEAT_ENCRYPT the master
 * key from <dev-dir>/key: fs->fsid, secret, seal, zstd_level, seg_limit.
 */
static int sb_read(struct zf_fs *fs, uint32_t *ret_cmin, uint32_t *ret_cavg, uint32_t *ret_cmax)
{
	uint8_t master[ZF_KEY_LEN];
	char why[320];
	struct zf_sb sb;
	void *buf = NULL;
	size_t len;
	int r;

	r = zf_read_file(fs->dirfd, "superblock", &buf, &len);
	if (r < 0) {
		if (r == -ENOENT)
			zf_err("'%s' is not a zerofs dev-dir (no superblock); run 'zerofs mkfs'",
			       fs->dev_dir);
		else
			zf_err("cannot read superblock of '%s': %s", fs->dev_dir, strerror(-r));
		return r;
	}
	r = zf_sb_decode(buf, len, &sb, why, sizeof(why));
	free(buf);
	if (r < 0) {
		zf_err("corrupt superblock in '%s': %s", fs->dev_dir, why);
		return r;
	}
	r = zf_sb_check_features(&sb, !fs->readonly, why, sizeof(why));
	if (r < 0) {
		zf_err("'%s': %s", fs->dev_dir, why);
		return r;
	}
	memcpy(fs->fsid, sb.fsid, 16);
	memcpy(fs->secret, sb.secret, ZF_SECRET_LEN);
	if (sb.incompat & ZF_FEAT_ENCRYPT) {
		r = zf_key_file_read(fs->dirfd, fs->fsid, master, why, sizeof(why));
		if (r < 0) {
			zf_err("'%s' is encrypted and its key file '%s/%s' is %s: restore the "
			       "filesystem from its bucket into a new dev-dir ('zerofs mkfs --restore "
			       "URL NEW-DIR', with the passphrase)", fs->dev_dir, fs->dev_dir,
			       ZF_KEY_NAME, why);
			return r;
		}
		zf_seal_chunk_secret(master, fs->secret);
	}
	zf_seal_init(&fs->seal, sb.incompat, fs->fsid,
		     (sb.incompat & ZF_FEAT_ENCRYPT) ? master : NULL);
	sodium_memzero(master, sizeof(master));
	*ret_cmin = sb.chunk_min;
	*ret_cavg = sb.chunk_avg;
	*ret_cmax = sb.chunk_max;
	fs->zstd_level = sb.zstd_level;
	fs->seg_limit = sb.seg_limit;
	return 0;
}

/* ---------------------------------------------------------------- mkfs */

static int dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int empty = 1;

	if (!d)
		return -errno;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		    strcmp(e->d_name, "lost+found"))
			empty = 0;
	closedir(d);
	return empty;
}

/* a new master key: wrapped in <dev-dir>/keys, unwrapped in <dev-dir>/key */
static int mkfs_keys(int dirfd, const uint8_t fsid[16], const struct zf_mkfs_opts *o)
{
	uint8_t master[ZF_KEY_LEN], keys[ZF_KEYS_SIZE];
	int r;

	r = zf_keys_create(fsid, o->passphrase, o->passphrase_len, master, keys);
	if (r == 0)
		r = zf_publish_file(dirfd, ZF_KEYS_NAME, keys, sizeof(keys));
	if (r == 0)
		r = zf_key_file_write(dirfd, fsid, master);
	sodium_memzero(master, sizeof(master));
	return r;
}

int zf_fs_mkfs(const char *dev_dir, const struct zf_mkfs_opts *opts)
{
	struct zf_mkfs_opts o = opts ? *opts : (struct zf_mkfs_opts){ 0 };
	struct zf_fs tmp = { 0 };
	struct zf_fs *fs = NULL;
	struct zf_chunker *ck;
	struct stat st;
	int dirfd, r;

	if (!o.zstd_level)
		o.zstd_level = 3;
	if (!o.seg_limit)
		o.seg_limit = DEFAULT_SEG_LIMIT;
	if (!o.chunk_min)
		o.chunk_min = ZF_CHUNK_MIN;
	if (!o.chunk_avg)
		o.chunk_avg = ZF_CHUNK_AVG;
	if (!o.chunk_max)
		o.chunk_max = ZF_CHUNK_MAX;
	if (o.zstd_level < 1 || o.zstd_level > 19) {
		zf_err("invalid zstd level %d (1..19)", o.zstd_level);
		return -EINVAL;
	}
	r = zf_chunker_new(tmp.secret, o.chunk_min, o.chunk_avg, o.chunk_max, &ck);
	if (r < 0) {
		zf_err("invalid chunk sizes %u/%u/%u", o.chunk_min, o.chunk_avg, o.chunk_max);
		return r;
	}
	zf_chunker_free(ck);
	if (mkdir(dev_dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	dirfd = open(dev_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -errno;
	if (fstatat(dirfd, "superblock", &st, 0) == 0 && !o.force) {
		zf_err("'%s' already holds a zerofs filesystem (use --force to overwrite)", dev_dir);
		r = -EEXIST;
		goto out;
	}
	r = dir_is_empty(dev_dir);
	if (r == 0 && !o.force) {
		zf_err("'%s' is not empty (use --force to format it anyway)", dev_dir);
		r = -ENOTEMPTY;
		goto out;
	}
	if (o.force) {
		/* only what zerofs owns is removed; other files stay */
		char cmd[ZF_NAME_MAX + 64];

		snprintf(cmd, sizeof(cmd), "rm -rf -- '%s/meta' '%s/seg'", dev_dir, dev_dir);
		/* and an old filesystem's keys: a master key must not outlive its filesystem */
		unlinkat(dirfd, ZF_KEY_NAME, 0);
		unlinkat(dirfd, ZF_KEYS_NAME, 0);
		unlinkat(dirfd, ZF_KEYS_NEW_NAME, 0);
		if (system(cmd) != 0) {
			r = -EIO;
			goto out;
		}
	}
	r = zf_random(tmp.fsid, sizeof(tmp.fsid));
	if (r == 0)
		r = zf_random(tmp.secret, sizeof(tmp.secret));
	if (r == 0 && o.passphrase)
		r = mkfs_keys(dirfd, tmp.fsid, &o);
	if (r < 0)
		goto out;
	if ((mkdirat(dirfd, "meta", 0700) < 0 && errno != EEXIST) ||
	    (mkdirat(dirfd, "seg", 0700) < 0 && errno != EEXIST)) {
		r = -errno;
		goto out;
	}
	/* the superblock goes last: a dev-dir is formatted once it exists */
	r = zf_fsync_dir(dirfd);
	if (r == 0)
		r = sb_write(dirfd, &tmp, &o,
			     ZF_FEAT_DEFAULT | (o.passphrase ? ZF_FEAT_ENCRYPT : 0));
	if (r < 0)
		goto out;
	r = zf_fs_open(dev_dir, NULL, &fs);
	if (r == 0)
		r = zf_fs_close(fs);
out:
	close(dirfd);
	return r;
}

const struct zf_seal *zf_fs_seal(const struct zf_fs *fs)
{
	return &fs->seal;
}

static void fs_free(struct zf_fs *fs)
{
	if (!fs)
		return;
	fs_pipe_stop(fs); /* first: workers read the chunks of their packs */
	fs_table_free(fs);
	fs_pack_free(fs->pack);
	free(fs->spare_buf);
	zf_buf_free(&fs->pending_seal);
	free(fs->salv);
	zf_mlog_close(fs->log);
	zf_segstore_close(fs->seg);
	zf_chunker_free(fs->chunker);
	if (fs->segfd >= 0)
		close(fs->segfd);
	if (fs->metafd >= 0)
		close(fs->metafd);
	if (fs->lockfd >= 0)
		close(fs->lockfd);
	if (fs->dirfd >= 0)
		close(fs->dirfd);
	zf_mutex_destroy(&fs->lock);
	zf_mutex_destroy(&fs->gc_lock);
	zf_mutex_destroy(&fs->mark_lock);
	free(fs->dev_dir);
	free(fs->snapshot);
	free(fs);
}

static void root_create(struct zf_fs *fs)
{
	struct zf_inode root = { .ino = ZF_ROOT_INO, .mode = S_IFDIR | 0755, .nlink = 2, .gen = 1 };
	struct timespec now = zf_now();
	struct zf_buf b = { 0 };

	root.atime = root.mtime = root.ctime = now.tv_sec;
	root.atime_ns = root.mtime_ns = root.ctime_ns = now.tv_nsec;
	rec_inode(&b, &root);
	fs_do(fs, ZF_REC_INODE, &b);
	fs_txn_end(fs);
	zf_buf_free(&b);
}

/* inodes left with no links (unlinked while open, then a crash) */
static void reclaim_orphans(struct zf_fs *fs)
{
	uint64_t *orphans = NULL;
	size_t n = 0, i;
	struct zf_hent *e;

	zf_htab_foreach(&fs->inodes, e)
	{
		struct zf_inode *in = e->val;

		/* a non-empty one (damaged metadata) is fsck's to repair */
		if (in->nlink == 0 && !(S_ISDIR(in->mode) && in->u.dir->nents)) {
			orphans = zf_realloc(orphans, (n + 1) * sizeof(*orphans));
			orphans[n++] = in->ino;
		}
	}
	for (i = 0; i < n; i++) {
		struct zf_buf b = { 0 };

		zf_put64(zf_buf_grow(&b, 8), orphans[i]);
		fs_do(fs, ZF_REC_INODE_DEL, &b);
		fs_txn_end(fs);
		zf_buf_free(&b);
	}
	if (n)
		zf_info("reclaimed %zu unlinked inode(s) left by a crash", n);
	free(orphans);
}

/* ---------------------------------------------------------------- open */

/*
 * Seal the open segment at its committed end, as it is: applied now, and
 * logged (fs->pending_seal) once the log is open.
 */
static void seal_open_segment(struct zf_fs *fs)
{
	struct zf_buf b = { 0 };
	struct zf_frame f = { .type = ZF_REC_SEG_SEAL };

	zf_put64(zf_buf_grow(&b, 8), fs->open_seg);
	zf_put64(zf_buf_grow(&b, 8), fs->open_end);
	zf_buf_free(&fs->pending_seal);
	fs->pending_seal = b;
	f.payload = b.p;
	f.len = b.len;
	fs_apply(fs, &f, NULL);
}

int zf_fs_open(const char *dev_dir, const struct zf_open_opts *opts, struct zf_fs **ret_fs)
{
	struct zf_open_opts o = opts ? *opts : (struct zf_open_opts){ 0 };
	struct fs_meta_files mf = { 0 };
	struct zf_segstore_opts so = { 0 };
	uint32_t cmin, cavg, cmax;
	uint64_t end = 0, next_seq = 1;
	struct zf_fs *fs;
	int r;

	/*
	 * Write buffers and super-chunks are a few MiB each and short-lived:
	 * keep such blocks on the heap for reuse instead of mmap/munmap and
	 * fresh page faults for every one (a quarter of the write path's CPU).
	 */
	mallopt(M_MMAP_THRESHOLD, 64 << 20);
	mallopt(M_TRIM_THRESHOLD, 1 << 30);
	/*
	 * And in few arenas: glibc gives each thread that allocates (16 FUSE
	 * threads, the workers) an arena of its own, up to 8 per CPU, and
	 * each keeps up to the trim threshold of freed blocks: resident
	 * memory grows with threads, not with the budget.
	 */
	mallopt(M_ARENA_MAX, 1);
	fs = zf_calloc(1, sizeof(*fs));
	zf_mutex_init(&fs->lock, ZF_RANK_FS, "fs->lock");
	zf_mutex_init(&fs->gc_lock, ZF_RANK_GC, "fs->gc_lock");
	zf_mutex_init(&fs->mark_lock, ZF_RANK_MARK, "fs->mark_lock");
	fs->dev_dir = zf_strdup(dev_dir);
	fs->metafd = fs->segfd = fs->lockfd = -1;
	fs->readonly = o.readonly || o.snapshot;
	fs->salvage = o.salvage;
	fs->snapshot = o.snapshot ? zf_strdup(o.snapshot) : NULL;
	fs->next_ino = ZF_ROOT_INO + 1;
	fs->mem_budget = o.mem_bytes ? o.mem_bytes : ZF_MEM_DEFAULT;
	fs->dirty_limit = o.dirty_bytes ? o.dirty_bytes : fs->mem_budget / 8;
	fs->ckpt_bytes = o.ckpt_bytes ? o.ckpt_bytes : DEFAULT_CKPT;
	fs->dirfd = open(dev_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fs->dirfd < 0) {
		r = -errno;
		zf_err("cannot open dev-dir '%s': %s", dev_dir, strerror(-r));
		goto fail;
	}
	r = sb_read(fs, &cmin, &cavg, &cmax);
	if (r < 0)
		goto fail;
	fs->lockfd = openat(fs->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fs->lockfd < 0 && !(fs->readonly && errno == EROFS)) {
		r = -errno;
		goto fail;
	}
	if (fs->lockfd >= 0 && flock(fs->lockfd, (fs->readonly ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
		r = -errno == -EWOULDBLOCK ? -EBUSY : -errno;
		zf_err("dev-dir '%s' is in use by another zerofs process", dev_dir);
		goto fail;
	}
	fs->metafd = openat(fs->dirfd, "meta", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	fs->segfd = openat(fs->dirfd, "seg", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fs->metafd < 0 || fs->segfd < 0) {
		r = -errno;
		zf_err("dev-dir '%s' lacks its meta/ or seg/ directory", dev_dir);
		goto fail;
	}
	if (o.zstd_level)
		fs->zstd_level = o.zstd_level;
	r = zf_chunker_new(fs->secret, cmin, cavg, cmax, &fs->chunker);
	if (r < 0) {
		zf_err("superblock of '%s' has invalid chunk sizes", dev_dir);
		r = -EBADMSG;
		goto fail;
	}
	so.zstd_level = fs->zstd_level;
	so.seg_limit = fs->seg_limit;
	so.sc_cache_bytes = o.sc_cache_bytes ? o.sc_cache_bytes : fs->mem_budget / 2;
	so.readonly = fs->readonly || fs->salvage; /* fsck heals through --repair only */
	r = zf_segstore_open(fs->segfd, fs->fsid, fs->chunker, &so, &fs->seg);
	if (r < 0)
		goto fail;
	r = fs_meta_list(fs, &mf);
	if (r < 0)
		goto fail;
	r = fs_load(fs, &mf, &end, &next_seq);
	if (r < 0)
		goto fail;
	if (!fs->readonly && fs->open_seg && !zf_segstore_has(fs->seg, fs->open_seg)) {
		/*
		 * Restored from a bucket: the segment that was open when the
		 * checkpoint was written is only there, sealed. Record that.
		 */
		seal_open_segment(fs);
	}
	/*
	 * Segments and a durable mark without any metadata: the checkpoint
	 * and the log were lost (not a new dev-dir). Opening would start an
	 * empty filesystem and delete every segment as "never committed".
	 */
	if (!mf.has_ckpt && !mf.nlogs) {
		struct zf_segstore_stats ss;

		zf_segstore_stats(fs->seg, &ss);
		if (ss.segments || fs->synced_seq) {
			zf_err("metadata of '%s' is missing: no checkpoint and no log in meta/, but "
			       "%llu segment files%s", dev_dir, (unsigned long long)ss.segments,
			       fs->synced_seq ? " and a durable mark" : "");
			r = -EBADMSG;
			goto fail;
		}
	}
	/* records are missing: a repair would cut segments and drop files */
	if (fs->meta_lost && !fs->readonly) {
		zf_err("metadata of '%s' has lost records (a checkpoint or log file is missing): "
		       "cannot repair it without losing data", dev_dir);
		r = -EBADMSG;
		goto fail;
	}
	if (!fs->readonly && fs->mark_lost) {
		/*
		 * Synced records are lost: segment bytes the log no longer
		 * knows may hold their data. Keep them all: the open segment
		 * is sealed as it is (nothing cut), and every segment file
		 * counts as sealed (none removed as "never committed").
		 */
		if (fs->open_seg)
			seal_open_segment(fs);
		r = zf_segstore_resume_keep(fs->seg, &fs->last_sealed);
		if (r < 0)
			goto fail;
	} else if (!fs->readonly) {
		r = zf_segstore_resume(fs->seg, fs->open_seg, fs->open_end, fs->last_sealed);
		if (r == -EBADMSG && fs->salvage && fs->open_seg) {
			/*
			 * The open segment is damaged (header, or shorter than
			 * committed): keep it as it is, sealed, for the checker to
			 * name what it lost; new data goes to a new segment.
			 */
			zf_warn("segment %llu is damaged: sealing it as it is",
				(unsigned long long)fs->open_seg);
			seal_open_segment(fs);
			r = zf_segstore_resume(fs->seg, 0, 0, fs->last_sealed);
		}
		if (r < 0)
			goto fail;
	}
	if (!fs->readonly) {
		if (mf.nlogs && end) {
			char name[64];

			zf_mlog_name(mf.logs[mf.nlogs - 1], name, sizeof(name));
			r = zf_mlog_reopen(fs->metafd, name, end, next_seq, &fs->log);
		} else {
			r = zf_mlog_create(fs->metafd, fs->fsid, next_seq, &fs->log);
		}
		if (r < 0) {
			zf_err("cannot open metadata log of '%s': %s", dev_dir, strerror(-r));
			goto fail;
		}
	}
	if (fs->pending_seal.len) {
		zf_mlog_add_early(fs->log, ZF_REC_SEG_SEAL, fs->pending_seal.p, fs->pending_seal.len);
		zf_buf_free(&fs->pending_seal);
	}
	if (!fs_inode(fs, ZF_ROOT_INO)) {
		if (mf.has_ckpt || mf.nlogs > 1 || next_seq > 1 || fs->readonly) {
			zf_err("metadata of '%s' has no root directory", dev_dir);
			r = -EBADMSG;
			goto fail;
		}
		root_create(fs); /* first open after mkfs */
	}
	/* which record first referenced the open segment is not known: any */
	if (fs->open_seg)
		fs->open_first_seq = 1;
	if (!fs->readonly) {
		reclaim_orphans(fs);
		r = fs_commit(fs);
		/* the workers start on first use, after a daemon's fork; a
		 * salvaging open appends inline: repair is one thread's work */
		fs->pipe_threads = fs->salvage ? -1 : (int)o.threads;
		if (r < 0)
			goto fail;
	}
	fs_meta_files_free(&mf);
	*ret_fs = fs;
	return 0;
fail:
	fs_meta_files_free(&mf);
	fs_free(fs);
	return r;
}

/* ---------------------------------------------------------------- close */

int zf_fs_close(struct zf_fs *fs)
{
	int r = 0;

	if (!fs)
		return 0;
	if (!fs->readonly) {
		fs_lock(fs);
		r = fs_flush_all(fs, 0);
		if (r == 0)
			r = fs_checkpoint_locked(fs);
		fs_unlock(fs);
	}
	fs_free(fs);
	return r;
}

const char *zf_fs_dev_dir(const struct zf_fs *fs)
{
	return fs->dev_dir;
}

void zf_fs_abandon(struct zf_fs *fs)
{
	fs_free(fs);
}
