/*
 * storage/meta_heal.c - rebuild a dev-dir's lost metadata from the bucket
 * (see meta_heal.h)
 *
 * Every verified record of every local log file and of every bucket log
 * piece goes into one table by seq (the dev-dir's copy wins: they are the
 * same bytes, written once). A chain is a checkpoint C that verifies whole
 * (local or the bucket's; or none, C = 0, when records start at 1) and
 * records C+1.. without a hole, cut at the last end of a transaction. The
 * dev-dir needs healing when its own chain stops short of the records it
 * holds or of the durable mark, or its newest checkpoint does not verify.
 * The rebuild takes the newest checkpoint whose chain reaches both.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "common/buf.h"
#include "common/endian.h"
#include "common/htab.h"
#include "common/log.h"
#include "common/util.h"
#include "net/objstore.h"
#include "storage/bucket_keys.h"
#include "storage/keys.h"
#include "storage/meta_format.h"
#include "storage/meta_heal.h"
#include "storage/mlog.h"

/* one verified record */
struct rec {
	uint8_t type, flags;
	uint32_t len;
	int remote;
	uint8_t payload[];
};

struct piece {
	uint64_t first, last;
};

struct heal {
	uint8_t fsid[16];
	struct zf_seal seal;	/* how the bucket's objects open */
	int metafd, tmpfd;
	char tmpdir[64];
	struct zf_htab recs;		/* seq -> struct rec */
	int cur_remote;			/* records being added come from the bucket */
	uint64_t local_max;		/* last local record closing a transaction */
	uint64_t remote_max;		/* ... and of the bucket's */
	uint64_t diverged;		/* first seq where the bucket's record differs */
	uint64_t *lckpt, *rckpt;	/* checkpoint seqs, local and the bucket's */
	size_t nlckpt, nrckpt;
	char **llogs;			/* local log file names */
	size_t nllogs;
	struct piece *pieces;
	size_t npieces;
};

static int add_rec(void *ctx, const struct zf_frame *f)
{
	struct heal *h = ctx;
	struct rec *r;

	r = zf_htab_find(&h->recs, zf_mix64(f->seq), NULL, NULL);
	if (r) {
		/* the dev-dir's copy came first: the bucket's must be the same */
		if (h->cur_remote && !r->remote &&
		    (r->type != f->type || r->flags != f->flags || r->len != f->len ||
		     memcmp(r->payload, f->payload, f->len)) &&
		    (!h->diverged || f->seq < h->diverged))
			h->diverged = f->seq;
		return 0;
	}
	r = zf_malloc(sizeof(*r) + f->len);
	r->type = f->type;
	r->flags = f->flags;
	r->len = f->len;
	r->remote = h->cur_remote;
	memcpy(r->payload, f->payload, f->len);
	zf_htab_insert(&h->recs, zf_mix64(f->seq), r);
	if (!h->cur_remote && (f->flags & ZF_REC_F_TXN_END) && f->seq > h->local_max)
		h->local_max = f->seq;
	if (h->cur_remote && (f->flags & ZF_REC_F_TXN_END) && f->seq > h->remote_max)
		h->remote_max = f->seq;
	return 0;
}

static struct rec *rec_get(struct heal *h, uint64_t seq)
{
	return zf_htab_find(&h->recs, zf_mix64(seq), NULL, NULL);
}

static int count_rec(void *ctx, const struct zf_frame *f)
{
	(void)ctx;
	(void)f;
	return 0;
}

/* does checkpoint ckpt.<seq> in dirfd load whole, and say it is seq? */
static int ckpt_good(struct heal *h, int dirfd, uint64_t seq)
{
	char name[64];
	uint64_t got;

	zf_ckpt_name(seq, name, sizeof(name));
	return zf_ckpt_load(dirfd, name, h->fsid, count_rec, NULL, &got) == 0 && got == seq;
}

/*
 * The last seq of the unbroken chain after base (whole transactions);
 * local_only: of the dev-dir's own records only.
 */
static uint64_t chain_end(struct heal *h, uint64_t base, int local_only)
{
	uint64_t seq = base + 1, end = base;
	struct rec *r;

	while ((r = rec_get(h, seq)) && !(local_only && r->remote)) {
		if (r->flags & ZF_REC_F_TXN_END)
			end = seq;
		seq++;
	}
	return end;
}

static int read_fsid(const char *dev_dir, uint8_t fsid[16])
{
	char path[4200];
	uint8_t *sb;
	size_t len;
	int r;

	snprintf(path, sizeof(path), "%s/superblock", dev_dir);
	r = zf_read_file(AT_FDCWD, path, (void **)&sb, &len);
	if (r < 0)
		return r;
	if (len != ZF_SB_SIZE || memcmp(sb, ZF_SB_MAGIC, 8) != 0 ||
	    zf_get64(sb + ZF_SB_CSUM_OFF) != XXH3_64bits(sb, ZF_SB_CSUM_OFF))
		r = -EBADMSG;
	else
		memcpy(fsid, sb + 16, 16);
	free(sb);
	return r;
}

/* does dev_dir/seg hold a segment file? */
static int has_segments(const char *dev_dir)
{
	char path[4200];
	struct dirent *e;
	int found = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/seg", dev_dir);
	d = opendir(path);
	while (d && !found && (e = readdir(d)))
		found = strstr(e->d_name, ".zseg") != NULL;
	if (d)
		closedir(d);
	return found;
}

/*
 * The filesystem ids in the headers of the local logs and checkpoints that
 * verify: up to 8 distinct ones in ids, their number returned (0: none).
 */
static int meta_fsids(const char *dev_dir, uint8_t ids[8][16])
{
	char path[4200];
	struct dirent *e;
	int n = 0, k;
	DIR *d;

	snprintf(path, sizeof(path), "%s/meta", dev_dir);
	d = opendir(path);
	while (d && n < 8 && (e = readdir(d))) {
		uint8_t hdr[64];
		int fd;

		if (strncmp(e->d_name, "log.", 4) && strncmp(e->d_name, "ckpt.", 5))
			continue;
		fd = openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (zf_pread_full(fd, hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr) &&
		    zf_get64(hdr + 56) == XXH3_64bits(hdr, 56)) {
			for (k = 0; k < n && memcmp(ids[k], hdr + 16, 16); k++)
				;
			if (k == n)
				memcpy(ids[n++], hdr + 16, 16);
		}
		close(fd);
	}
	if (d)
		closedir(d);
	return n;
}

static int id_in(const uint8_t id[16], uint8_t ids[8][16], int n)
{
	int k;

	for (k = 0; k < n; k++)
		if (!memcmp(ids[k], id, 16))
			return 1;
	return 0;
}

/*
 * The superblock: missing, damaged, or another filesystem's (its id is not
 * the one the metadata files carry) is replaced by the bucket's copy when
 * that one verifies and carries an id of the metadata's (a foreign file
 * in meta/ does not make the superblock foreign). 0 with h->fsid set, or
 * -EBADMSG (ret->why says why).
 */
static int heal_superblock(const char *dev_dir, struct zf_objstore *os, int apply,
			   struct heal *h, struct zf_meta_heal *ret)
{
	uint8_t ids[8][16], *sb = NULL;
	char path[4200], tmp[4200];
	int nids = meta_fsids(dev_dir, ids), r, fd;
	size_t len = 0;
	const char *what;

	r = read_fsid(dev_dir, h->fsid);
	if (r == 0 && (!nids || id_in(h->fsid, ids, nids)))
		return 0;
	what = r == -ENOENT ? "missing" : r < 0 ? "damaged" : "another filesystem's";
	ret->needed = 1;
	snprintf(ret->why, sizeof(ret->why), "the superblock is %s", what);
	if (!os) {
		snprintf(ret->why + strlen(ret->why), sizeof(ret->why) - strlen(ret->why),
			 "; no bucket to take it from");
		return -EBADMSG;
	}
	r = zf_objstore_get(os, ZF_BKEY_SUPERBLOCK, 0, 0, (void **)&sb, &len);
	if (r < 0 || len != ZF_SB_SIZE || memcmp(sb, ZF_SB_MAGIC, 8) != 0 ||
	    zf_get64(sb + ZF_SB_CSUM_OFF) != XXH3_64bits(sb, ZF_SB_CSUM_OFF) ||
	    (nids && !id_in(sb + 16, ids, nids))) {
		snprintf(ret->why + strlen(ret->why), sizeof(ret->why) - strlen(ret->why),
			 "; the bucket's copy %s", r < 0 ? "cannot be read" : "does not fit");
		free(sb);
		return r < 0 && r != -ENOENT ? r : -EBADMSG;
	}
	memcpy(h->fsid, sb + 16, 16);
	ret->superblock = 1;
	ret->sb_what = what;
	r = 0;
	if (apply) {
		snprintf(path, sizeof(path), "%s/superblock", dev_dir);
		snprintf(tmp, sizeof(tmp), "%s/superblock.tmp", dev_dir);
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || write(fd, sb, len) != (ssize_t)len || fsync(fd) < 0 ||
		    rename(tmp, path) < 0)
			r = errno ? -errno : -EIO;
		if (fd >= 0)
			close(fd);
		if (r == 0) {
			int dfd = open(dev_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

			if (dfd >= 0) {
				zf_fsync_dir(dfd);
				close(dfd);
			}
			ret->done = 1;
			zf_warn("'%s': the superblock was %s: replaced by the bucket's copy", dev_dir,
				what);
		}
	}
	free(sb);
	return r;
}

static int scan_local(struct heal *h)
{
	struct dirent *e;
	DIR *d;
	int fd = dup(h->metafd);

	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	while ((e = readdir(d))) {
		unsigned long long v;
		int n = 0;

		if (sscanf(e->d_name, "log.%16llx%n", &v, &n) == 1 && n == 20 && !e->d_name[n]) {
			h->llogs = zf_realloc(h->llogs, (h->nllogs + 1) * sizeof(*h->llogs));
			h->llogs[h->nllogs++] = zf_strdup(e->d_name);
		} else if (sscanf(e->d_name, "ckpt.%16llx%n", &v, &n) == 1 && n == 21 &&
			   !e->d_name[n]) {
			h->lckpt = zf_realloc(h->lckpt, (h->nlckpt + 1) * sizeof(*h->lckpt));
			h->lckpt[h->nlckpt++] = v;
		}
	}
	closedir(d);
	if (h->nlckpt)
		qsort(h->lckpt, h->nlckpt, sizeof(*h->lckpt), zf_cmp_u64);
	return 0;
}

/* every verified record of every local log, complete transactions or cut
 * by damage: the salvage replay delivers both (the chain keeps only whole
 * transactions) */
static void bad_nop(void *ctx, const char *name, uint64_t off, const uint8_t *p, size_t len,
		    uint64_t expect_seq)
{
	(void)ctx, (void)name, (void)off, (void)p, (void)len, (void)expect_seq;
}

static void load_local(struct heal *h)
{
	struct zf_mlog_scan scan;
	size_t i;

	h->cur_remote = 0;
	for (i = 0; i < h->nllogs; i++) {
		uint8_t hdr[64];
		int fd = openat(h->metafd, h->llogs[i], O_RDONLY | O_CLOEXEC);
		int ours = fd >= 0 && zf_pread_full(fd, hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr) &&
			   !memcmp(hdr, ZF_LOG_MAGIC, 8) && zf_get64(hdr + 56) == XXH3_64bits(hdr, 56) &&
			   !memcmp(hdr + 16, h->fsid, 16);

		if (fd >= 0)
			close(fd);
		/* a file whose header is damaged or another filesystem's: its
		 * frames would verify all the same, so none is trusted */
		if (ours)
			zf_mlog_replay_salvage(h->metafd, h->llogs[i], h->fsid, 0, add_rec, bad_nop,
					       h, &scan);
	}
}

static int list_fn(void *ctx, const char *key, uint64_t size)
{
	struct heal *h = ctx;
	struct zf_bkey k;

	(void)size;
	switch (zf_bkey_parse(key, &k)) {
	case ZF_BKEY_IS_LOG:
		h->pieces = zf_realloc(h->pieces, (h->npieces + 1) * sizeof(*h->pieces));
		h->pieces[h->npieces++] = (struct piece){ k.a, k.b };
		break;
	case ZF_BKEY_IS_CKPT:
		h->rckpt = zf_realloc(h->rckpt, (h->nrckpt + 1) * sizeof(*h->rckpt));
		h->rckpt[h->nrckpt++] = k.a;
		break;
	default:
		break;
	}
	return 0;
}

/* fetch key into the scratch directory as name; 0 or -errno */
static int fetch(struct heal *h, struct zf_objstore *os, const char *key, const char *name)
{
	void *buf = NULL;
	size_t len = 0;
	int fd, r;

	r = zf_objstore_get(os, key, 0, 0, &buf, &len);
	if (r < 0)
		return r;
	{
		char why[200];
		void *plain;

		r = zf_unseal_obj(&h->seal, key, buf, len, &plain, &len, why, sizeof(why));
		free(buf);
		if (r < 0) {
			zf_warn("bucket object '%s': %s", key, why);
			return -EIO;
		}
		buf = plain;
	}
	fd = openat(h->tmpfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
	} else {
		if (write(fd, buf, len) != (ssize_t)len)
			r = -EIO;
		if (r == 0 && fsync(fd) < 0)
			r = -errno;
		close(fd);
	}
	free(buf);
	return r;
}

/* every bucket piece that verifies whole: exactly first..last, whole
 * transactions (a bucket object is published whole: any flaw is damage) */
static int load_remote(struct heal *h, struct zf_objstore *os)
{
	char key[80], name[64];
	size_t i;
	int r;

	r = zf_objstore_list(os, ZF_BKEY_META_PREFIX, list_fn, h);
	if (r < 0)
		return r;
	if (h->nrckpt)
		qsort(h->rckpt, h->nrckpt, sizeof(*h->rckpt), zf_cmp_u64);
	for (i = 0; i < h->npieces; i++) {
		struct piece *p = &h->pieces[i];
		struct zf_mlog_scan scan = { 0 };

		/* the dev-dir has every record of it already */
		{
			uint64_t s;

			for (s = p->first; s <= p->last && rec_get(h, s); s++)
				;
			if (s > p->last)
				continue;
		}
		zf_bkey_log(p->first, p->last, key, sizeof(key));
		zf_mlog_name(p->first, name, sizeof(name));
		r = fetch(h, os, key, name);
		if (r < 0) {
			zf_warn("cannot fetch '%s' from the bucket: %s", key, strerror(-r));
			if (r != -ENOENT && r != -EIO)
				return r; /* the bucket does not answer: nothing is known */
			continue;
		}
		/* verify it whole before taking any record of it */
		r = zf_mlog_replay(h->tmpfd, name, h->fsid, 0, count_rec, NULL, &scan);
		if (r == 0 && (scan.first_seq != p->first || scan.last_seq != p->last ||
			       scan.dropped)) {
			zf_warn("bucket object '%s' does not hold exactly records %llu..%llu: ignored",
				key, (unsigned long long)p->first, (unsigned long long)p->last);
			r = -EBADMSG;
		}
		if (r == 0) {
			h->cur_remote = 1;
			r = zf_mlog_replay(h->tmpfd, name, h->fsid, 0, add_rec, h, &scan);
			h->cur_remote = 0;
		} else {
			zf_warn("bucket object '%s' is damaged: ignored", key);
		}
		unlinkat(h->tmpfd, name, 0);
	}
	return 0;
}

/* write the chain's records base+1..end as log.<base+1> in the scratch dir */
static int write_log(struct heal *h, uint64_t base, uint64_t end)
{
	struct zf_mlog *log;
	uint64_t seq;
	int r;

	r = zf_mlog_create(h->tmpfd, h->fsid, base + 1, &log);
	if (r < 0)
		return r;
	for (seq = base + 1; seq <= end; seq++) {
		struct rec *x = rec_get(h, seq);

		zf_mlog_add(log, x->type, x->payload, x->len);
		if (x->flags & ZF_REC_F_TXN_END)
			zf_mlog_txn_end(log);
	}
	if (end > base)
		r = zf_mlog_commit(log);
	zf_mlog_close(log);
	return r;
}

/*
 * Move every log and checkpoint of meta/ aside into meta/replaced.<t>/,
 * then the rebuilt ones in. A crash in between leaves meta/ without a log:
 * the next open refuses ("metadata is missing") and the next fsck heals
 * again from the bucket, which still has everything.
 */
static int swap_in(struct heal *h, uint64_t base, int base_remote)
{
	char aside[64], name[64];
	int afd, r = 0;
	size_t i;

	snprintf(aside, sizeof(aside), "replaced.%lld", (long long)time(NULL));
	if (mkdirat(h->metafd, aside, 0700) < 0 && errno != EEXIST)
		return -errno;
	afd = openat(h->metafd, aside, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (afd < 0)
		return -errno;
	for (i = 0; i < h->nllogs && r == 0; i++)
		if (renameat(h->metafd, h->llogs[i], afd, h->llogs[i]) < 0)
			r = -errno;
	for (i = 0; i < h->nlckpt && r == 0; i++) {
		zf_ckpt_name(h->lckpt[i], name, sizeof(name));
		if (h->lckpt[i] == base && !base_remote)
			continue; /* the chain's own checkpoint stays */
		if (renameat(h->metafd, name, afd, name) < 0)
			r = -errno;
	}
	if (r == 0)
		r = zf_fsync_dir(afd);
	close(afd);
	if (r == 0 && base_remote) {
		zf_ckpt_name(base, name, sizeof(name));
		if (renameat(h->tmpfd, name, h->metafd, name) < 0)
			r = -errno;
	}
	zf_mlog_name(base + 1, name, sizeof(name));
	if (r == 0 && renameat(h->tmpfd, name, h->metafd, name) < 0)
		r = -errno;
	if (r == 0)
		r = zf_fsync_dir(h->metafd);
	return r;
}

static void heal_free(struct heal *h)
{
	struct zf_hent *e;
	size_t i;

	zf_htab_foreach(&h->recs, e) free(e->val);
	zf_htab_free(&h->recs);
	for (i = 0; i < h->nllogs; i++)
		free(h->llogs[i]);
	free(h->llogs);
	free(h->lckpt);
	free(h->rckpt);
	free(h->pieces);
	if (h->tmpfd >= 0) {
		struct dirent *e2;
		DIR *d = fdopendir(h->tmpfd);

		while (d && (e2 = readdir(d)))
			unlinkat(dirfd(d), e2->d_name, 0);
		if (d)
			closedir(d);
		else
			close(h->tmpfd);
		unlinkat(h->metafd, h->tmpdir, AT_REMOVEDIR);
	}
	if (h->metafd >= 0)
		close(h->metafd);
}

int zf_meta_heal(const char *dev_dir, struct zf_objstore *os, int apply,
		 struct zf_meta_heal *ret)
{
	struct heal h = { .metafd = -1, .tmpfd = -1 };
	uint64_t local_ckpt = 0, want, gen, c_end, i;
	int local_ckpt_ok = 0, lockfd, r;
	char path[4200], name[64];

	memset(ret, 0, sizeof(*ret));
	/* no mount may be using the dev-dir while its metadata is replaced */
	snprintf(path, sizeof(path), "%s/lock", dev_dir);
	lockfd = open(path, O_RDWR | O_CLOEXEC);
	if (lockfd >= 0 && flock(lockfd, (apply ? LOCK_EX : LOCK_SH) | LOCK_NB) < 0) {
		r = errno == EWOULDBLOCK ? -EBUSY : -errno;
		close(lockfd);
		return r;
	}
	r = heal_superblock(dev_dir, os, apply, &h, ret);
	if (r < 0) {
		if (lockfd >= 0)
			close(lockfd);
		return r;
	}
	/* the superblock's verdict is ret->superblock; the metadata's follows */
	ret->needed = ret->possible = 0;
	ret->why[0] = 0;
	snprintf(path, sizeof(path), "%s/meta", dev_dir);
	h.metafd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (h.metafd < 0) {
		r = -errno;
		goto out;
	}
	snprintf(h.tmpdir, sizeof(h.tmpdir), "heal.tmp");
	mkdirat(h.metafd, h.tmpdir, 0700);
	h.tmpfd = openat(h.metafd, h.tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (h.tmpfd < 0) {
		r = -errno;
		goto out;
	}
	r = scan_local(&h);
	if (r < 0)
		goto out;
	r = zf_synced_read(h.metafd, h.fsid, &ret->synced, &gen);
	if (r < 0)
		goto out;
	load_local(&h);
	ret->local_end = h.local_max;

	/* the bucket's records the dev-dir lacks (and a check of the overlap) */
	if (os) {
		char why[200];
		int dfd = open(dev_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (dfd < 0 || zf_seal_load(dfd, &h.seal, why, sizeof(why)) < 0) {
			zf_warn("'%s': %s: the bucket's objects are read as not encrypted", dev_dir,
				dfd < 0 ? strerror(errno) : why);
			zf_seal_init(&h.seal, 0, h.fsid, NULL); /* an encrypted one's then do not open */
		}
		if (dfd >= 0)
			close(dfd);
		r = load_remote(&h, os);
		if (r < 0)
			goto out;
	}

	/* the dev-dir on its own: its newest checkpoint, and the chain after */
	if (h.nlckpt) {
		local_ckpt = h.lckpt[h.nlckpt - 1];
		local_ckpt_ok = ckpt_good(&h, h.metafd, local_ckpt);
	} else if (!h.nllogs && !ret->synced && !has_segments(dev_dir) && !h.remote_max) {
		goto out; /* a new dev-dir: nothing written yet */
	} else {
		local_ckpt_ok = 1; /* never checkpointed: the chain starts at 1 */
	}
	want = h.local_max > ret->synced ? h.local_max : ret->synced;
	if (h.remote_max > want)
		want = h.remote_max; /* the bucket holds records the dev-dir lost */
	c_end = local_ckpt_ok ? chain_end(&h, local_ckpt, 1) : 0;
	if (local_ckpt_ok && c_end >= want)
		goto out; /* nothing lost (a torn tail is not a loss) */
	ret->needed = 1;
	if (!local_ckpt_ok)
		snprintf(ret->why, sizeof(ret->why), "the newest checkpoint does not verify");
	else if (!h.nlckpt && !rec_get(&h, 1))
		snprintf(ret->why, sizeof(ret->why),
			 "the checkpoint is missing (the log does not start at record 1)");
	else
		snprintf(ret->why, sizeof(ret->why), "records %llu..%llu are missing or damaged",
			 (unsigned long long)c_end + 1, (unsigned long long)want);
	if (h.diverged) {
		snprintf(ret->why + strlen(ret->why), sizeof(ret->why) - strlen(ret->why),
			 "; the bucket's log differs from the dev-dir's at record %llu (another "
			 "dev-dir wrote to it)", (unsigned long long)h.diverged);
		goto out;
	}
	if (!os) {
		snprintf(ret->why + strlen(ret->why), sizeof(ret->why) - strlen(ret->why),
			 "; no bucket to rebuild them from");
		goto out;
	}

	/* the newest checkpoint, local or the bucket's, whose chain reaches want */
	{
		size_t li = h.nlckpt, ri = h.nrckpt;

		while (li || ri) {
			int remote = !li || (ri && h.rckpt[ri - 1] > h.lckpt[li - 1]);
			uint64_t c = remote ? h.rckpt[--ri] : h.lckpt[--li];

			if (chain_end(&h, c, 0) < want)
				continue;
			zf_ckpt_name(c, name, sizeof(name));
			snprintf(path, sizeof(path), "meta/%s", name);
			if (remote && (fetch(&h, os, path, name) < 0 || !ckpt_good(&h, h.tmpfd, c))) {
				zf_warn("bucket object '%s' is damaged or missing: not used", path);
				continue;
			}
			if (!remote && !ckpt_good(&h, h.metafd, c))
				continue;
			ret->possible = 1;
			ret->base = c;
			ret->base_remote = remote;
			break;
		}
		/* no checkpoint at all: the records from 1 */
		if (!ret->possible && rec_get(&h, 1) && chain_end(&h, 0, 0) >= want)
			ret->possible = 1;
	}
	if (!ret->possible) {
		snprintf(ret->why + strlen(ret->why), sizeof(ret->why) - strlen(ret->why),
			 "; the bucket does not hold them either");
		goto out;
	}
	ret->end = chain_end(&h, ret->base, 0);
	for (i = ret->base + 1; i <= ret->end; i++)
		ret->from_bucket += rec_get(&h, i)->remote;
	if (!apply)
		goto out;
	r = write_log(&h, ret->base, ret->end);
	if (r == 0)
		r = swap_in(&h, ret->base, ret->base_remote);
	if (r < 0) {
		zf_err("cannot rebuild the metadata of '%s': %s", dev_dir, strerror(-r));
		goto out;
	}
	ret->done = 1;
	zf_warn("rebuilt the metadata of '%s': checkpoint %llu%s and records %llu..%llu "
		"(%llu from the bucket); the old files are in meta/replaced.*", dev_dir,
		(unsigned long long)ret->base, ret->base_remote ? " (the bucket's)" : "",
		(unsigned long long)ret->base + 1, (unsigned long long)ret->end,
		(unsigned long long)ret->from_bucket);
out:
	heal_free(&h);
	if (lockfd >= 0)
		close(lockfd);
	return r;
}
