/*
 * tier/restore.c - rebuild a dev-dir from the bucket alone
 *
 * The superblock, the newest checkpoint and the log after it (every object
 * verified by the scanner, tier/scan.c); then the restored metadata is
 * checked against the bucket's segment objects. A restore that fails leaves
 * the dev-dir as it was.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/log.h"
#include "common/util.h"
#include "storage/bucket_keys.h"
#include "storage/fs_snap.h"
#include "storage/keys.h"
#include "storage/superblock.h"
#include "tier/scan.h"

struct restore {
	const struct zf_restore_opts *o;
	const char *url;
	int dirfd, metafd;
	char **written;			/* meta/ files this restore wrote */
	size_t nwritten;
	unsigned int problems;		/* damage said (SAY_DAMAGE, data) */
	uint64_t kept_bytes;		/* of the verified objects kept, for progress */
};

static void restore_say(struct restore *rs, int kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void restore_say(struct restore *rs, int kind, const char *fmt, ...)
{
	char msg[900];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (kind == ZF_RESTORE_DAMAGE)
		rs->problems++;
	if (rs->o->say)
		rs->o->say(rs->o->ctx, kind, msg);
	else
		zf_log(kind == ZF_RESTORE_DAMAGE ? ZF_LOG_ERR : ZF_LOG_WARN, "%s", msg);
}

static void restore_scan_say(void *ctx, int kind, const char *msg)
{
	static const int map[] = { [SAY_DAMAGE] = ZF_RESTORE_DAMAGE,
				   [SAY_DAMAGE_OK] = ZF_RESTORE_WARN,
				   [SAY_UNUSED] = ZF_RESTORE_UNUSED,
				   [SAY_WARN] = ZF_RESTORE_WARN };

	restore_say(ctx, map[kind], "%s", msg);
}

/* a verified object of the chain: into the dev-dir's meta/ */
static int restore_keep(void *ctx, const char *name, const void *buf, size_t len)
{
	struct restore *rs = ctx;
	int r;

	r = zf_publish_file(rs->metafd, name, buf, len);
	if (r < 0) {
		zf_err("cannot write 'meta/%s' for the restore: %s", name, strerror(-r));
		return r;
	}
	rs->written = zf_realloc(rs->written, (rs->nwritten + 1) * sizeof(*rs->written));
	rs->written[rs->nwritten++] = zf_strdup(name);
	rs->kept_bytes += len;
	if (rs->o->progress)
		rs->o->progress(rs->o->ctx, "metadata", rs->kept_bytes, 0);
	return 0;
}

/* the check's progress, passed on as stage "chunks" */
static void restore_check_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct restore *rs = ctx;

	rs->o->progress(rs->o->ctx, "chunks", done, total);
}

static void restore_problem(void *ctx, const char *msg)
{
	restore_say(ctx, ZF_RESTORE_DAMAGE, "data: %s", msg);
}

static void restore_ignore(void *ctx, const char *msg)
{
	(void)ctx;
	(void)msg;
}

/*
 * The restored metadata against the bucket's data: every super-chunk a
 * file maps is in a segment object long enough for it (one listing), and
 * with verify_data every one is fetched and verified. Each problem is said
 * (with the files it costs). The top segment id in *ret_top_seg.
 */
static int restore_check_data(struct restore *rs, const char *dev_dir,
			      const struct zf_objstore_opts *so, uint64_t *ret_top_seg)
{
	struct zf_open_opts oo = { .readonly = 1 };
	struct zf_remote_opts ro = { .url = rs->url, .readonly = 1 };
	struct zf_check_report rep = { 0 };
	struct zf_remote *rm = NULL;
	uint64_t *ids = NULL;
	size_t nids = 0;
	struct zf_fs *fs;
	char why[320];
	int r;

	r = zf_fs_open(dev_dir, &oo, &fs);
	if (r < 0) {
		restore_say(rs, ZF_RESTORE_DAMAGE, "the restored metadata does not load (%s): see "
			    "the error above", strerror(-r));
		return -EBADMSG;
	}
	zf_fs_segments_used(fs, &ids, &nids);
	*ret_top_seg = nids ? ids[nids - 1] : 0;
	free(ids);
	ro.store = *so;
	r = zf_remote_open(fs, dev_dir, &ro, &rm);
	if (r == 0) {
		rep.problem = restore_problem;
		rep.note = restore_ignore;
		rep.ctx = rs;
		rep.verify_data = rs->o->verify_data;
		if (rs->o->progress)
			rep.progress = restore_check_progress;
		rep.remote_seg_size = zf_remote_seg_size;
		rep.rctx = rm;
		r = zf_fs_check(fs, &rep);
		if (r == -EUCLEAN)
			r = 0;
		if (r == 0 && zf_remote_unreachable(rm, why, sizeof(why))) {
			zf_err("the bucket '%s' did not answer: %s", rs->url, why);
			r = zf_remote_unreachable(rm, NULL, 0);
		}
	}
	zf_remote_close(rm);
	zf_fs_close(fs);
	return r;
}

/*
 * The bucket's snapshots, each verified, into meta/ (kept with the rest
 * of the restore). One that does not verify is said and left out: the
 * filesystem itself does not need it. 0, or the store's -errno.
 */
static int restore_snapshots(struct restore *rs, struct zf_objstore *os, const struct zf_seal *seal,
			     const uint8_t fsid[16])
{
	char why[256], file[64], key[ZF_BKEY_MAX + ZF_SNAP_NAME_MAX], **names = NULL;
	size_t i, len, n = 0;
	void *buf;
	int r;

	r = zf_tier_snapshot_names(os, &names, &n);
	for (i = 0; r == 0 && i < n; i++) {
		zf_bkey_snap(names[i], key, sizeof(key));
		r = zf_tier_snapshot_get(os, seal, fsid, key, &buf, &len, why, sizeof(why));
		if (r == -EBADMSG || r == -ENOENT) {
			restore_say(rs, ZF_RESTORE_WARN, "%s: %s: this snapshot is not restored",
				    key, r == -ENOENT ? "listed, then gone" : why);
			r = 0;
			continue;
		}
		if (r < 0)
			break;
		zf_snap_file(names[i], file, sizeof(file));
		r = restore_keep(rs, file, buf, len);
		free(buf);
	}
	zf_tier_names_free(names, n);
	if (r < 0)
		zf_err("cannot restore the snapshots of '%s': %s", rs->url, strerror(-r));
	return r;
}

/* remove what this restore made in the dev-dir: it is left as it was */
static void restore_undo(struct restore *rs, const char *dev_dir, char **before, size_t nbefore,
			 int made_dir)
{
	static const char *const ours[] = { "meta", "seg", "cache", "superblock", "upload.state",
					    ZF_KEYS_NAME, ZF_KEY_NAME,
					    "lock", NULL };
	struct stat st;
	size_t i, j;

	for (i = 0; i < rs->nwritten; i++)
		unlinkat(rs->metafd, rs->written[i], 0);
	for (i = 0; ours[i]; i++) {
		for (j = 0; j < nbefore && strcmp(before[j], ours[i]); j++)
			;
		if (j < nbefore)
			continue; /* there before: not ours to remove */
		if (fstatat(rs->dirfd, ours[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (!S_ISDIR(st.st_mode)) {
			unlinkat(rs->dirfd, ours[i], 0);
		} else {
			int fd = openat(rs->dirfd, ours[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			DIR *d = fd < 0 ? NULL : fdopendir(fd);
			struct dirent *e;

			while (d && (e = readdir(d)))
				if (e->d_name[0] != '.' || (e->d_name[1] && strcmp(e->d_name, "..")))
					unlinkat(fd, e->d_name, 0);
			if (d)
				closedir(d);
			else if (fd >= 0)
				close(fd);
			unlinkat(rs->dirfd, ours[i], AT_REMOVEDIR);
		}
	}
	if (made_dir)
		rmdir(dev_dir);
}

/* the names in dir (malloc'd) */
static char **dir_names(int dirfd, size_t *ret_n)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *e;
	char **v = NULL;
	size_t n = 0;

	while (d && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		v = zf_realloc(v, (n + 1) * sizeof(*v));
		v[n++] = zf_strdup(e->d_name);
	}
	if (d)
		closedir(d);
	else if (fd >= 0)
		close(fd);
	*ret_n = n;
	return v;
}

/*
 * How the bucket's objects open, from its superblock sb: its features
 * known to this binary, and an encrypted filesystem's master key from the
 * bucket's `keys` and the passphrase (written to the dev-dir's keys and key
 * files). 0, or -errno said once.
 */
static int restore_seal(struct restore *rs, struct zf_objstore *os, const void *sb, size_t sblen,
			struct zf_seal *ret)
{
	uint8_t master[ZF_KEY_LEN];
	char why[320], pass[1024];
	struct zf_sb s;
	void *keys = NULL;
	size_t klen;
	int r, plen;

	r = zf_sb_decode(sb, sblen, &s, why, sizeof(why));
	if (r == 0)
		r = zf_sb_check_features(&s, 1, why, sizeof(why));
	if (r < 0) {
		zf_err("the bucket '%s': %s", rs->url, why);
		return r;
	}
	if (!(s.incompat & ZF_FEAT_ENCRYPT)) {
		zf_seal_init(ret, s.incompat, s.fsid, NULL);
		return 0;
	}
	r = zf_objstore_get(os, ZF_BKEY_KEYS, 0, 0, &keys, &klen);
	if (r < 0) {
		zf_err("the bucket '%s' holds an encrypted filesystem whose 'keys' object %s",
		       rs->url, r == -ENOENT ? "is missing: its data cannot be read" : "cannot be read");
		return r == -ENOENT ? -EBADMSG : r;
	}
	plen = rs->o->passphrase ? rs->o->passphrase(rs->o->ctx, pass, sizeof(pass)) : -ENOKEY;
	if (plen < 0) {
		free(keys);
		zf_err("the bucket '%s' holds an encrypted filesystem: a passphrase is needed",
		       rs->url);
		return plen;
	}
	r = zf_keys_unwrap(keys, klen, s.fsid, pass, (size_t)plen, master, why, sizeof(why));
	sodium_memzero(pass, sizeof(pass));
	if (r < 0)
		zf_err("cannot open the encrypted filesystem in '%s': its 'keys' object: %s",
		       rs->url, why);
	if (r == 0)
		r = zf_publish_file(rs->dirfd, ZF_KEYS_NAME, keys, klen);
	if (r == 0)
		r = zf_key_file_write(rs->dirfd, s.fsid, master);
	if (r == 0)
		zf_seal_init(ret, s.incompat, s.fsid, master);
	sodium_memzero(master, sizeof(master));
	free(keys);
	return r;
}

int zf_remote_restore(const char *url, const struct zf_restore_opts *ro, const char *dev_dir,
		      struct zf_restore_report *ret)
{
	static const struct zf_restore_opts none = { 0 };
	const struct zf_restore_opts *o = ro ? ro : &none;
	struct zf_objstore_opts so = o->store ? *o->store : (struct zf_objstore_opts){ 0 };
	struct restore rs = { .o = o, .url = url, .dirfd = -1, .metafd = -1 };
	struct mscan m = { .fetch = 1, .partial = o->allow_loss, .keep = restore_keep,
			   .say = restore_scan_say, .ctx = &rs };
	struct zf_restore_report rep = { 0 };
	struct zf_objstore *os = NULL;
	char why[200], state[160], **before = NULL;
	size_t nbefore = 0, sblen = 0, i;
	uint8_t fsid[16];
	int r, n, made_dir = 0, undo = 0;
	uint64_t top_seg = 0;
	void *sb = NULL;
	struct zf_seal seal;

	r = zf_objstore_open(url, &so, &os);
	if (r < 0) {
		zf_err("cannot open the object store '%s': %s", url, strerror(-r));
		return r;
	}
	if (mkdir(dev_dir, 0700) == 0)
		made_dir = 1;
	else if (errno != EEXIST) {
		r = -errno;
		zf_err("cannot create the dev-dir '%s': %s", dev_dir, strerror(-r));
		goto out;
	}
	rs.dirfd = open(dev_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rs.dirfd < 0) {
		r = -errno;
		zf_err("cannot open the dev-dir '%s': %s", dev_dir, strerror(-r));
		goto out;
	}
	if (faccessat(rs.dirfd, "superblock", F_OK, 0) == 0) {
		zf_err("'%s' already holds a filesystem: restore only into an empty dev-dir",
		       dev_dir);
		r = -EEXIST;
		goto out;
	}
	before = dir_names(rs.dirfd, &nbefore);
	undo = 1;
	if ((mkdirat(rs.dirfd, "meta", 0700) < 0 && errno != EEXIST) ||
	    (mkdirat(rs.dirfd, "seg", 0700) < 0 && errno != EEXIST) ||
	    (rs.metafd = openat(rs.dirfd, "meta", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		r = -errno;
		zf_err("cannot prepare the dev-dir '%s': %s", dev_dir, strerror(-r));
		goto out;
	}
	/* the superblock holds the filesystem's secret: nothing is restorable without it */
	r = zf_objstore_get(os, ZF_BKEY_SUPERBLOCK, 0, 0, &sb, &sblen);
	if (r == -ENOENT) {
		r = zf_objstore_list(os, ZF_BKEY_META_PREFIX, zf_mscan_list_fn, &m);
		if (r == 0 && !m.nckpts && !m.npieces) {
			zf_err("the bucket '%s' holds no zerofs filesystem", url);
			r = -ENOENT;
			goto out;
		}
		zf_mscan_free(&m);
		if (r == 0) {
			restore_say(&rs, ZF_RESTORE_DAMAGE, "superblock missing: it holds the "
				    "filesystem's secret, nothing can be restored without it");
			r = -EBADMSG;
		}
	} else if (r == 0 && zf_tier_sb_verify(sb, sblen, m.fsid, why, sizeof(why)) < 0) {
		restore_say(&rs, ZF_RESTORE_DAMAGE, "superblock: %s (it holds the filesystem's "
			    "secret, nothing can be restored without it)", why);
		r = -EBADMSG;
	} else if (r == 0 && (r = restore_seal(&rs, os, sb, sblen, &seal)) < 0) {
		/* said */
	} else if (r == 0 && (r = zf_tier_meta_fsid(os, &seal, fsid)) > 0 && memcmp(fsid, m.fsid, 16)) {
		restore_say(&rs, ZF_RESTORE_DAMAGE, "superblock: another filesystem's (the bucket's "
			    "checkpoint and head are not its); it holds the filesystem's secret, "
			    "nothing can be restored without the right one");
		r = -EBADMSG;
	} else if (r > 0) {
		r = 0;
	}
	if (r < 0) {
		if (r != -EBADMSG && r != -EKEYREJECTED && r != -EOPNOTSUPP)
			zf_err("cannot fetch 'superblock' from '%s': %s", url, strerror(-r));
		goto out;
	}
	/* the newest checkpoint and the log after it, every object verified */
	m.os = os;
	m.seal = &seal;
	r = zf_mscan_run(&m);
	if (r < 0) {
		zf_err("cannot read the metadata of '%s': %s", url, strerror(-r));
		goto out;
	}
	if (m.head_state == 0 && m.usable)
		restore_say(&rs, ZF_RESTORE_WARN, "the bucket has no head (an older zerofs wrote it): "
			    "a missing newest log piece cannot be detected");
	else if (m.head_state < 0)
		restore_say(&rs, ZF_RESTORE_DAMAGE, "head: %s (the end of the bucket's log is "
			    "unknown)", m.head_why);
	if (!m.usable) {
		r = -EBADMSG;
		goto out;
	}
	if (rs.problems && !o->allow_loss) {
		r = -EBADMSG;
		goto out;
	}
	r = zf_publish_file(rs.dirfd, "superblock", sb, sblen);
	if (r == 0)
		r = restore_snapshots(&rs, os, &seal, m.fsid);
	if (r == 0)
		r = restore_check_data(&rs, dev_dir, &so, &top_seg);
	if (r < 0)
		goto out;
	if (rs.problems && !o->allow_loss) {
		r = -EBADMSG;
		goto out;
	}
	/*
	 * Everything it names is in the bucket: segments come on demand. The
	 * segment mark is the highest one the metadata uses: segments
	 * written from now on have higher ids and must go up (a mark above
	 * them would keep them out of the bucket for good).
	 */
	n = snprintf(state, sizeof(state), "seq %" PRIu64 "\nseg %" PRIu64 "\nckpt %" PRIu64 "\n",
		     m.end, top_seg, m.has_ckpt ? m.ckpt : 0);
	r = zf_publish_file(rs.dirfd, "upload.state", state, n);
	if (r < 0)
		goto out;
	rep.seq = m.end;
	rep.problems = rs.problems;
	if (m.end < m.target) {
		rep.lost_from = m.end + 1;
		rep.lost_to = m.target;
	}
	for (i = 0; i < m.npieces; i++)
		if (m.pieces[i].b > m.end)
			rep.beyond = 1; /* the next mount will see them as another dev-dir's */
	undo = 0;
out:
	if (undo && r < 0)
		restore_undo(&rs, dev_dir, before, nbefore, made_dir);
	else if (r < 0 && made_dir)
		rmdir(dev_dir);
	for (i = 0; i < nbefore; i++)
		free(before[i]);
	free(before);
	for (i = 0; i < rs.nwritten; i++)
		free(rs.written[i]);
	free(rs.written);
	free(sb);
	zf_mscan_free(&m);
	if (rs.metafd >= 0)
		close(rs.metafd);
	if (rs.dirfd >= 0)
		close(rs.dirfd);
	zf_objstore_close(os);
	if (r == 0 && ret)
		*ret = rep;
	return r;
}
