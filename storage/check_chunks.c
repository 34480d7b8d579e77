/*
 * storage/check_chunks.c - the checker's look at the chunk index and the
 * segment files (storage/check.c runs the whole check):
 *   - chunk reference counts equal the references the files' extents hold
 *     (counted into ck->counts by check.c);
 *   - every referenced chunk lies in a super-chunk whose segment exists in
 *     the dev-dir (valid header, long enough) or in the bucket; with
 *     verify_data the super-chunk is read (locally or by a ranged GET), its
 *     checksums verified, its chunks re-hashed, and its table must list the
 *     chunk where the index says. A damaged local copy whose bucket copy
 *     verifies is repairable by dropping the local copy;
 *   - segment files no chunk lives in are garbage (a note), unless records
 *     are missing.
 * Damaged chunks go into ck->dmg, to be named by the files that use them.
 * Each segment and each super-chunk is looked at once.
 *
 * Locking: fs->lock held (zf_fs_check); the core is seen through
 * storage/fs_inspect.h.
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

#include "common/util.h"
#include "storage/check_internal.h"

#define PROGRESS_EVERY 1024u	/* chunks between progress calls */
#define MAX_REF_LINES 10	/* wrong reference counts named one by one, then summed */

void ck_chunk_hex(const struct zf_chunk_id *id, char *buf)
{
	int i;

	for (i = 0; i < ZF_CHUNK_ID_LEN; i++)
		sprintf(buf + 2 * i, "%02x", id->b[i]);
}

/* a segment file looked at once */
struct seg_seen {
	int local;		/* 0 present with a valid header, -ENOENT, -EIO (header) */
	uint64_t size;
	char why[200];
	int remote;		/* remote_seg_size: 0, -ENOENT or -errno; 1 not asked yet */
	uint64_t remote_size;
};

/* a super-chunk looked at once: its state and (verify_data) its chunk table */
struct sc_seen {
	struct zf_sc_loc loc;	/* which one */
	int unknown;		/* could not be checked (the bucket did not answer): not damage */
	int bad;		/* its bytes cannot be read as the index says */
	int local_only;		/* ... locally, but the bucket's copy is good */
	char why[220];
	uint32_t n;
	struct zf_sc_chunk *tab;
};

/* one walk of the chunk index */
struct loc_ctx {
	struct ck *ck;
	struct zf_htab segs;	/* seg -> struct seg_seen */
	struct zf_htab scs;	/* super-chunk location -> struct sc_seen */
	uint64_t done, bad_refs;
};

static struct seg_seen *seg_get(struct ck *ck, struct loc_ctx *lc, uint64_t seg)
{
	struct seg_seen *s = zf_htab_find(&lc->segs, zf_mix64(seg), NULL, NULL);
	struct zf_segstore *st = ck->st.w.seg;
	struct zf_seg_err err;

	if (s)
		return s;
	s = zf_calloc(1, sizeof(*s));
	s->remote = 1;
	s->local = zf_segstore_seg_check(st, seg, &s->size, &err);
	if (s->local == -EUCLEAN) {
		/* its super-chunks still verify one by one: only the header is lost */
		int fix = ck->rep->repair && !ck->st.w.readonly;
		int r = fix ? zf_segstore_seg_fix_header(st, seg) : 0;
		char name[32];

		zf_segstore_name(seg, name, sizeof(name));
		ck_problem(ck, "seg/%s: %s (its super-chunks are checked one by one)%s%s", name,
			   err.why, fix && r == 0 ? ": rewritten" : "",
			   r < 0 ? ": cannot rewrite it" : "");
		if (fix && r == 0)
			ck->rep->repaired++;
		s->local = 0;
	}
	if (s->local == -EIO)
		snprintf(s->why, sizeof(s->why), "%.*s", (int)sizeof(s->why) - 1, err.why);
	else if (s->local < 0 && s->local != -ENOENT)
		snprintf(s->why, sizeof(s->why), "%s", strerror(-s->local));
	zf_htab_insert(&lc->segs, zf_mix64(seg), s);
	return s;
}

/* the bucket's size of seg (asked once); 0, -ENOENT, -errno, or -ENOSYS (no bucket) */
static int seg_remote(struct ck *ck, struct seg_seen *s, uint64_t seg)
{
	if (!ck->rep->remote_seg_size)
		return -ENOSYS;
	if (s->remote == 1)
		s->remote = ck->rep->remote_seg_size(ck->rep->rctx, seg, &s->remote_size);
	return s->remote;
}

/* can the bucket's copy of the super-chunk at loc replace a damaged local one? */
static int remote_good(struct ck *ck, struct seg_seen *s, const struct zf_sc_loc *loc,
		       struct sc_seen *v)
{
	uint64_t end = loc->off + loc->disk_len;
	int r;

	if (ck->rep->verify_data || !ck->rep->remote_seg_size) {
		if (!zf_segstore_has_fetch(ck->st.w.seg))
			return 0;
		free(v->tab);
		v->tab = NULL;
		return zf_segstore_verify_remote(ck->st.w.seg, loc, &v->tab, &v->n, NULL) == 0;
	}
	r = seg_remote(ck, s, loc->seg);
	return r == 0 && s->remote_size >= end;
}

static uint64_t sc_hash(const struct zf_sc_loc *loc)
{
	return zf_mix64(loc->seg ^ zf_mix64(loc->off));
}

static int sc_eq(const void *val, const void *key)
{
	const struct sc_seen *v = val;
	const struct zf_sc_loc *loc = key;

	return v->loc.seg == loc->seg && v->loc.off == loc->off;
}

static struct sc_seen *sc_check(struct ck *ck, struct loc_ctx *lc, const struct zf_sc_loc *loc)
{
	struct sc_seen *v = zf_htab_find(&lc->scs, sc_hash(loc), sc_eq, loc);
	uint64_t end = loc->off + loc->disk_len;
	struct seg_seen *s;
	struct zf_seg_err err;
	char seg[32], why[200] = "";
	int r;

	if (v)
		return v;
	v = zf_calloc(1, sizeof(*v));
	v->loc = *loc;
	zf_htab_insert(&lc->scs, sc_hash(loc), v);
	ck->rep->superchunks++;
	s = seg_get(ck, lc, loc->seg);
	zf_segstore_name(loc->seg, seg, sizeof(seg));
	if (ck->rep->verify_data) {
		/* the whole super-chunk, from the dev-dir or (evicted) the bucket */
		r = zf_segstore_verify(ck->st.w.seg, loc, &v->tab, &v->n, &err);
		if (r == -ENOENT && s->local == -ENOENT && ck->rep->bucket_unreachable)
			r = -EHOSTUNREACH; /* evicted, and the bucket did not answer */
		if (r < 0)
			snprintf(why, sizeof(why), "%.*s", (int)sizeof(why) - 1, r == -EHOSTUNREACH
						      ? "segment not in the dev-dir, and the bucket "
							"is unreachable"
						      : s->local == -ENOENT && r == -ENOENT
						      ? "segment missing"
						      : err.why);
	} else if (s->local == 0) {
		r = s->size >= end ? 0 : -EIO;
		if (r)
			snprintf(why, sizeof(why), "segment truncated (%llu bytes, the super-chunk "
				 "ends at %llu)", (unsigned long long)s->size, (unsigned long long)end);
	} else if (s->local == -ENOENT) {
		/* evicted: the bucket must hold it */
		r = seg_remote(ck, s, loc->seg);
		if (r == -ENOSYS && zf_segstore_has_fetch(ck->st.w.seg)) {
			r = zf_segstore_verify(ck->st.w.seg, loc, &v->tab, &v->n, &err);
			if (r < 0)
				snprintf(why, sizeof(why), "%.*s", (int)sizeof(why) - 1, err.why);
		} else if (r == -ENOSYS && ck->rep->bucket_unreachable) {
			snprintf(why, sizeof(why), "segment not in the dev-dir, and the bucket is "
				 "unreachable");
		} else if (r == -ENOSYS || r == -ENOENT) {
			snprintf(why, sizeof(why), "segment missing from the dev-dir%s",
				 r == -ENOENT ? " and from the bucket" : " (no bucket to fetch it from)");
			r = -ENOENT;
		} else if (r < 0) {
			snprintf(why, sizeof(why), "cannot ask the bucket: %s", strerror(-r));
		} else if (s->remote_size < end) {
			r = -EIO;
			snprintf(why, sizeof(why), "segment truncated in the bucket (%llu bytes, the "
				 "super-chunk ends at %llu)", (unsigned long long)s->remote_size,
				 (unsigned long long)end);
		}
	} else {
		r = s->local;
		snprintf(why, sizeof(why), "%s", s->why);
	}
	/* a bucket that does not answer (or an I/O error) proves nothing */
	if (r < 0 && r != -EIO && r != -ENOENT && r != -EBADMSG) {
		v->unknown = 1;
		ck->rep->unchecked++;
		ck_problem(ck, "cannot check seg/%s offset %llu: %s (not marked damaged)", seg,
			   (unsigned long long)loc->off, why[0] ? why : strerror(-r));
		return v;
	}
	if (r < 0) {
		v->bad = 1;
		/* a damaged local copy: is the bucket's good? */
		if (s->local != -ENOENT && remote_good(ck, s, loc, v))
			v->local_only = 1;
		snprintf(v->why, sizeof(v->why), "in seg/%s offset %llu: %s%s", seg,
			 (unsigned long long)loc->off, why,
			 v->local_only ? " (local copy; the bucket's copy is good)" : "");
	}
	return v;
}


/* does the verified table of c's super-chunk list c where the index says? */
static int table_lists(const struct sc_seen *v, const struct zf_walk_chunk *c)
{
	uint32_t i, off = 0;

	for (i = 0; i < v->n; i++) {
		if (off == c->raw_off && v->tab[i].len == c->len &&
		    !memcmp(v->tab[i].id.b, c->id.b, ZF_CHUNK_ID_LEN))
			return 1;
		off += v->tab[i].len;
	}
	return 0;
}

static struct ck_dmg *dmg_add(struct ck *ck, const struct zf_inspect_chunk *c)
{
	struct ck_dmg *d = zf_calloc(1, sizeof(*d));

	d->c = c->w;
	zf_htab_insert(&ck->dmg, (uintptr_t)c->chunk, d);
	return d;
}

/* one chunk of the index: its reference count, then where its bytes are */
static int check_chunk(void *ctx, const struct zf_inspect_chunk *ic)
{
	struct loc_ctx *lc = ctx;
	struct ck *ck = lc->ck;
	const struct zf_walk_chunk *c = &ic->w;
	uint64_t *cnt = zf_htab_find(&ck->counts, (uintptr_t)ic->chunk, NULL, NULL);
	uint64_t want = cnt ? cnt[1] : 0;
	char hex[2 * ZF_CHUNK_ID_LEN + 1];
	struct sc_seen *v;

	if (ck->rep->progress && ++lc->done % PROGRESS_EVERY == 0)
		ck->rep->progress(ck->rep->ctx, lc->done, ck->st.nchunks);
	ck->rep->chunks++;
	if (c->refs != want && ++lc->bad_refs > MAX_REF_LINES)
		ck->rep->errors++; /* summed up below */
	else if (c->refs != want) {
		ck_chunk_hex(&c->id, hex);
		if (ck->rep->repair)
			ck_problem(ck, "chunk %s: reference count %u, but %llu references "
				   "(rebuilt)", hex, c->refs, (unsigned long long)want);
		else
			ck_problem(ck, "chunk %s: reference count %u, but %llu references",
				   hex, c->refs, (unsigned long long)want);
	}
	if (!want)
		return 0;
	if (!c->readable) {
		struct ck_dmg *d = dmg_add(ck, ic);

		d->known = ic->bad;
		if (ic->lost)
			snprintf(d->why, sizeof(d->why), "%s",
				 d->known ? "marked damaged: its location was lost"
					  : "its super-chunk record is lost");
		else
			snprintf(d->why, sizeof(d->why), "in seg/%016llx.zseg offset %llu: "
				 "marked damaged", (unsigned long long)c->loc.seg,
				 (unsigned long long)c->loc.off);
		return 0;
	}
	if (!c->located) {
		if (!ic->in_pack) {
			ck_chunk_hex(&c->id, hex);
			ck_problem(ck, "chunk %s: not in any super-chunk", hex);
		}
		return 0;
	}
	v = sc_check(ck, lc, &c->loc);
	if (v->unknown)
		return 0;
	if (v->bad && !v->local_only) {
		snprintf(dmg_add(ck, ic)->why, sizeof(((struct ck_dmg *)0)->why), "%s", v->why);
	} else if (v->tab && !table_lists(v, c)) {
		struct ck_dmg *d = dmg_add(ck, ic);

		snprintf(d->why, sizeof(d->why), "in seg/%016llx.zseg offset %llu: its "
			 "super-chunk's table does not list it there",
			 (unsigned long long)c->loc.seg, (unsigned long long)c->loc.off);
	} else if (v->bad) {
		struct ck_dmg *d = dmg_add(ck, ic);

		d->local_only = 1;
		snprintf(d->why, sizeof(d->why), "%s", v->why);
	}
	return 0;
}

void ck_check_chunks(struct ck *ck)
{
	struct loc_ctx lc = { .ck = ck };
	uint64_t total = ck->st.nchunks;
	struct zf_hent *e;

	if (ck->rep->progress)
		ck->rep->progress(ck->rep->ctx, 0, total);
	zf_fs_inspect_chunks(ck->fs, check_chunk, &lc);
	if (ck->rep->progress)
		ck->rep->progress(ck->rep->ctx, total, total);
	if (lc.bad_refs > MAX_REF_LINES)
		ck_problem(ck, "%llu more chunks with a wrong reference count%s",
			   (unsigned long long)(lc.bad_refs - MAX_REF_LINES),
			   ck->rep->repair ? " (rebuilt)" : "");
	zf_htab_foreach(&lc.scs, e)
	{
		struct sc_seen *v = e->val;

		free(v->tab);
		free(v);
	}
	zf_htab_free(&lc.scs);
	zf_htab_foreach(&lc.segs, e) free(e->val);
	zf_htab_free(&lc.segs);
}

/* ---------------------------------------------------------- segment files */

/* segment files no chunk lives in: garbage (a crash during gc leaves some) */
void ck_check_seg_dir(struct ck *ck)
{
	uint64_t *used, bytes = 0, files = 0;
	size_t nused;
	struct dirent *de;
	DIR *d;
	int fd;

	fd = dup(ck->st.w.segfd);
	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	rewinddir(d);
	used = zf_fs_walk_segments(ck->fs, &nused);
	while ((de = readdir(d))) {
		unsigned long long id;
		struct stat st;
		int n = 0;

		if (sscanf(de->d_name, "%16llx.zseg%n", &id, &n) != 1 || n != 21 ||
		    de->d_name[n] || fstatat(ck->st.w.segfd, de->d_name, &st, 0) < 0)
			continue;
		if (bsearch(&(uint64_t){ id }, used, nused, sizeof(*used), zf_cmp_u64))
			continue;
		if (ck->st.meta_lost) {
			ck_problem(ck, "seg/%s (%llu bytes) holds no chunk the metadata that could be "
				   "read knows; records are missing, so it is not garbage",
				   de->d_name, (unsigned long long)st.st_size);
			continue;
		}
		ck_note(ck, "garbage: seg/%s (%llu bytes) holds no chunk the metadata knows: "
			"reclaimable by zerofs gc", de->d_name, (unsigned long long)st.st_size);
		files++;
		bytes += st.st_size;
	}
	closedir(d);
	free(used);
	if (files > 1)
		ck_note(ck, "garbage: %llu segment files, %llu bytes in the dev-dir: reclaimable by "
			"zerofs gc", (unsigned long long)files, (unsigned long long)bytes);
}

