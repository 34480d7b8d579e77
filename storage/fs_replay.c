/*
 * storage/fs_replay.c - loading the metadata at open: list meta/, load the
 * newest checkpoint, replay the log files after it through fs_apply(), and
 * check the result against the durable mark (meta/synced).
 *
 * A strict load fails with -EBADMSG on anything that does not verify or
 * apply. A tolerant one (salvage, for fsck) skips it and notes what it
 * skipped (struct zf_salvage_note, fs->salv) for zf_fs_check to report;
 * the notes' reasons come back from fs_apply() in an explicit error object
 * carried by the load's context (struct fs_replay), never a thread-local.
 *
 * Runs single-threaded inside zf_fs_open, before the fs is shared.
 * Format: docs/FORMAT.md "Log files", "Checkpoints", "Durable mark".
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/endian.h"
#include "common/log.h"
#include "common/util.h"
#include "storage/fs_internal.h"
#include "storage/meta_format.h"

/* ---------------------------------------------------------------- salvage */

/* what a record's payload says about the file it concerns (unverified if damaged) */
static void note_decode(struct zf_salvage_note *n, int type, const uint8_t *pl, size_t plen)
{
	n->type = type;
	if (type <= 0 || plen < 8 || type == ZF_REC_SC || type == ZF_REC_SEG_SEAL ||
	    type == ZF_REC_STATE || type == ZF_REC_END || type == ZF_REC_CHUNK_DEL ||
	    type == ZF_REC_CHUNK_BAD)
		return;
	n->ino = zf_get64(pl);
	if (type == ZF_REC_EXTENTS && plen >= 24) {
		n->start = zf_get64(pl + 8);
		n->end = zf_get64(pl + 16);
	} else if (type == ZF_REC_DIRENT_ADD || type == ZF_REC_DIRENT_DEL) {
		size_t at = type == ZF_REC_DIRENT_ADD ? 16 : 8;
		size_t nl = plen >= at + 2 ? zf_get16(pl + at) : 0;

		if (nl && nl <= ZF_NAME_LEN && plen >= at + 2 + nl &&
		    !memchr(pl + at + 2, 0, nl) && !memchr(pl + at + 2, '/', nl)) {
			memcpy(n->name, pl + at + 2, nl);
			n->name[nl] = 0;
		}
	}
}

static struct zf_salvage_note *note_add(struct zf_fs *fs, const char *file, uint64_t off,
					uint64_t len, uint64_t seq, const char *why)
{
	struct zf_salvage_note *n;

	fs->salv = zf_realloc(fs->salv, (fs->nsalv + 1) * sizeof(*fs->salv));
	n = &fs->salv[fs->nsalv++];
	memset(n, 0, sizeof(*n));
	snprintf(n->file, sizeof(n->file), "%s", file);
	n->off = off;
	n->len = len;
	n->seq = seq;
	n->type = -1;
	snprintf(n->why, sizeof(n->why), "%s", why);
	return n;
}

/* what a load passes to each record it applies (the scanners' ctx) */
struct fs_replay {
	struct zf_fs *fs;
	const char *file;	/* the log or checkpoint being loaded */
	struct fs_apply_err err; /* why the last record did not apply */
};

/* a region without a valid frame: decode what its header may still say */
static void salvage_bad(void *ctx, const char *name, uint64_t off, const uint8_t *p, size_t len,
			uint64_t expect_seq)
{
	struct fs_replay *rp = ctx;
	struct zf_fs *fs = rp->fs;
	struct zf_salvage_note *n;

	if (!p) {
		/* whole records gone: what they did is lost with them */
		note_add(fs, name, off, 0, expect_seq, "records missing before this offset");
		if (!strncmp(name, "ckpt.", 5))
			fs->ckpt_cut = 1;
		else
			fs->meta_lost = 1;
		return;
	}
	if (off == 0) {
		note_add(fs, name, off, len, 0, "damaged file header");
		return;
	}
	if (len == 0) {
		note_add(fs, name, off, 0, expect_seq, "the END record is missing");
		if (!strncmp(name, "ckpt.", 5))
			fs->ckpt_cut = 1;
		return;
	}
	n = note_add(fs, name, off, len, expect_seq, "checksum mismatch");
	if (len >= ZF_REC_HDR_SIZE && zf_get32(p) == ZF_REC_MAGIC) {
		uint32_t plen = zf_get32(p + 8);

		if (plen > len - ZF_REC_HDR_SIZE)
			plen = len - ZF_REC_HDR_SIZE;
		note_decode(n, p[4], p + ZF_REC_HDR_SIZE, plen);
	}
}

/* salvage: a verified record that does not apply is noted and skipped */
static int salvage_skip(struct fs_replay *rp, const struct zf_frame *f, int r)
{
	struct zf_salvage_note *n;
	const char *why = rp->err.why;

	rp->err.why = NULL;
	if (!r || !rp->fs->salvage || r != -EBADMSG)
		return r;
	n = note_add(rp->fs, rp->file, f->off, ZF_REC_HDR_SIZE + f->len, f->seq,
		     why ? why : "does not apply");
	n->verified = 1;
	note_decode(n, f->type, f->payload, f->len);
	return 0;
}

static int ckpt_apply(void *ctx, const struct zf_frame *f)
{
	struct fs_replay *rp = ctx;

	return salvage_skip(rp, f, fs_apply_ckpt(rp->fs, f, &rp->err));
}

static int log_apply(void *ctx, const struct zf_frame *f)
{
	struct fs_replay *rp = ctx;

	return salvage_skip(rp, f, fs_apply(rp->fs, f, &rp->err));
}

int fs_meta_list(struct zf_fs *fs, struct fs_meta_files *mf)
{
	DIR *d;
	struct dirent *e;
	int fd = dup(fs->metafd);

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	rewinddir(d); /* the dup shares its offset with earlier listings */
	while ((e = readdir(d))) {
		unsigned long long v;
		int n = 0;

		if (strstr(e->d_name, ".tmp")) {
			if (!fs->readonly)
				unlinkat(fs->metafd, e->d_name, 0);
			continue;
		}
		if (sscanf(e->d_name, "log.%16llx%n", &v, &n) == 1 && n == 20) {
			mf->logs = zf_realloc(mf->logs, (mf->nlogs + 1) * sizeof(uint64_t));
			mf->logs[mf->nlogs++] = v;
		} else if (sscanf(e->d_name, "ckpt.%16llx%n", &v, &n) == 1 && n == 21) {
			mf->ckpts = zf_realloc(mf->ckpts, (mf->nckpts + 1) * sizeof(uint64_t));
			mf->ckpts[mf->nckpts++] = v;
		}
	}
	closedir(d);
	if (mf->nlogs)
		qsort(mf->logs, mf->nlogs, sizeof(uint64_t), zf_cmp_u64);
	if (mf->nckpts)
		qsort(mf->ckpts, mf->nckpts, sizeof(uint64_t), zf_cmp_u64);
	if (mf->nckpts) {
		mf->has_ckpt = 1;
		mf->ckpt = mf->ckpts[mf->nckpts - 1];
	}
	return 0;
}

void fs_meta_prune(struct zf_fs *fs, uint64_t ckpt_seq)
{
	struct fs_meta_files mf = { 0 };
	char name[64];
	size_t i;

	if (fs_meta_list(fs, &mf) < 0)
		return;
	for (i = 0; i < mf.nckpts; i++) {
		if (mf.ckpts[i] >= ckpt_seq)
			continue;
		zf_ckpt_name(mf.ckpts[i], name, sizeof(name));
		unlinkat(fs->metafd, name, 0);
	}
	/* a log goes when the next one starts by ckpt_seq + 1: none of its records is needed */
	for (i = 0; i + 1 < mf.nlogs; i++) {
		if (mf.logs[i + 1] > ckpt_seq + 1)
			continue;
		zf_mlog_name(mf.logs[i], name, sizeof(name));
		unlinkat(fs->metafd, name, 0);
	}
	zf_fsync_dir(fs->metafd);
	fs_meta_files_free(&mf);
}

/* the counts a checkpoint recorded must match the files it holds */
static void check_ckpt_refs(struct zf_fs *fs, const char *name)
{
	struct zf_hent *e;

	zf_htab_foreach(&fs->chunks, e)
	{
		struct zf_chunk *c = e->val;

		if (c->ckpt_refs != UINT32_MAX && c->ckpt_refs != c->refs)
			fs->ckpt_ref_errors++;
	}
	if (fs->ckpt_ref_errors)
		zf_warn("checkpoint '%s': %llu chunk reference counts disagree with its files",
			name, (unsigned long long)fs->ckpt_ref_errors);
}

int fs_load(struct zf_fs *fs, const struct fs_meta_files *mf, uint64_t *ret_end,
	    uint64_t *ret_next_seq)
{
	struct zf_mlog_scan scan = { 0 };
	uint64_t seq = 0, expect;
	char name[64];
	/* salvage: each skipped record becomes a note instead of a log line */
	struct fs_replay rp = { .fs = fs, .file = name, .err.quiet = fs->salvage };
	size_t i;
	int r = 0;

	fs->replaying = 1;
	if (fs->snapshot) {
		/* a snapshot: its checkpoint is the whole state */
		snprintf(name, sizeof(name), "snap.%s", fs->snapshot);
		r = zf_ckpt_load(fs->metafd, name, fs->fsid, ckpt_apply, &rp, &seq);
		if (r == -ENOENT)
			zf_err("'%s' has no snapshot '%s'", fs->dev_dir, fs->snapshot);
		if (r)
			goto out;
		check_ckpt_refs(fs, name);
		fs->ckpt_seq = fs->durable_seq = seq;
		*ret_end = 0;
		*ret_next_seq = seq + 1;
		fs->replaying = 0;
		return 0;
	}
	if (mf->has_ckpt) {
		zf_ckpt_name(mf->ckpt, name, sizeof(name));
		if (fs->salvage)
			r = zf_ckpt_load_salvage(fs->metafd, name, fs->fsid, ckpt_apply, salvage_bad,
						 &rp, &seq);
		else
			r = zf_ckpt_load(fs->metafd, name, fs->fsid, ckpt_apply, &rp, &seq);
		if (r)
			goto out;
		check_ckpt_refs(fs, name);
	}
	fs->ckpt_seq = seq;
	expect = seq + 1;
	*ret_end = 0;
	for (i = 0; i < mf->nlogs; i++) {
		/* a log wholly before the checkpoint is only awaiting removal */
		if (i + 1 < mf->nlogs && mf->logs[i + 1] <= seq + 1)
			continue;
		zf_mlog_name(mf->logs[i], name, sizeof(name));
		if (mf->logs[i] > expect && fs->salvage) {
			note_add(fs, name, 0, 0, expect, "records missing before this log file");
			fs->meta_lost = 1;
		} else if (mf->logs[i] > expect) {
			zf_err("metadata log gap: '%s' starts at %llu, expected %llu", name,
			       (unsigned long long)mf->logs[i], (unsigned long long)expect);
			r = -EBADMSG;
			goto out;
		}
		if (fs->salvage)
			r = zf_mlog_replay_salvage(fs->metafd, name, fs->fsid, seq, log_apply,
						   salvage_bad, &rp, &scan);
		else
			/* records a previous file held are skipped (a replica's files may overlap) */
			r = zf_mlog_replay(fs->metafd, name, fs->fsid, expect - 1, log_apply, &rp, &scan);
		if (r)
			goto out;
		if (scan.dropped && i + 1 < mf->nlogs && fs->salvage) {
			note_add(fs, name, scan.end, scan.dropped, scan.last_seq + 1,
				 "damaged tail of a log file that is not the last");
		} else if (scan.dropped && i + 1 < mf->nlogs) {
			zf_err("corrupt log '%s' at offset %llu: damage before the last log file",
			       name, (unsigned long long)scan.end);
			r = -EBADMSG;
			goto out;
		}
		if (scan.last_seq + 1 > expect)
			expect = scan.last_seq + 1;
		*ret_end = scan.end;
		fs->torn_bytes = scan.dropped;
	}
	/*
	 * A checkpoint cut short lost the records after the cut: a file with
	 * bytes but no mapping may have lost it there (it is named and its
	 * bytes marked damaged, rather than read as zeros).
	 */
	if (fs->ckpt_cut) {
		struct zf_hent *e;

		zf_htab_foreach(&fs->inodes, e)
		{
			struct zf_inode *in = e->val;
			struct zf_salvage_note *n;

			if (!S_ISREG(in->mode) || !in->size || in->u.file->n)
				continue;
			zf_ckpt_name(seq, name, sizeof(name));
			n = note_add(fs, name, 0, 0, 0, "no mapping: it may be in the lost part of the "
				     "checkpoint");
			n->type = ZF_REC_EXTENTS;
			n->ino = in->ino;
			n->start = 0;
			n->end = in->size;
		}
	}
	/* records the durable mark covers were fdatasync'd: a log that ends
	 * before them is damaged (a flipped or lost tail), not torn */
	r = zf_synced_read(fs->metafd, fs->fsid, &fs->synced_seq, &fs->synced_gen);
	if (r < 0) {
		zf_err("cannot read '%s/meta/%s': %s", fs->dev_dir, ZF_SYNCED_NAME, strerror(-r));
		goto out;
	}
	if (expect - 1 < fs->synced_seq && fs->salvage) {
		char why[96];

		snprintf(why, sizeof(why), "records %llu..%llu were synced but are damaged or missing",
			 (unsigned long long)expect, (unsigned long long)fs->synced_seq);
		note_add(fs, name, *ret_end, fs->torn_bytes, expect, why);
		fs->torn_bytes = 0;
		fs->mark_lost = 1;
	} else if (expect - 1 < fs->synced_seq) {
		zf_err("corrupt log '%s' at offset %llu: records %llu..%llu were synced but %s "
		       "(run zerofs fsck)", name, (unsigned long long)*ret_end,
		       (unsigned long long)expect, (unsigned long long)fs->synced_seq,
		       fs->torn_bytes ? "do not verify" : "are missing");
		r = -EBADMSG;
		goto out;
	}
	fs->durable_seq = expect - 1;
	*ret_next_seq = expect;
	fs->replaying = 0;
	r = 0;
out:
	return r ? (r < 0 ? r : -EBADMSG) : 0;
}

void fs_meta_files_free(struct fs_meta_files *mf)
{
	free(mf->logs);
	free(mf->ckpts);
	memset(mf, 0, sizeof(*mf));
}
