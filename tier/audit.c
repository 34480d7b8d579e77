/*
 * tier/audit.c - fsck of the bucket (zf_remote_audit, zf_remote_seg_size)
 *
 * Every object is referenced or garbage; the superblock, head and metadata
 * chain are checked with the scanner (tier/scan.c), the segments
 * upload.state says are there against the dev-dir's copies. Repairs are put
 * back or scheduled for the next mount's uploader by lowering upload.state.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/lock.h"
#include "common/log.h"
#include "common/util.h"
#include "storage/bucket_keys.h"
#include "storage/keys.h"
#include "storage/superblock.h"
#include "storage/segstore.h"
#include "tier/scan.h"

static int list_fn(void *ctx, const char *key, uint64_t size)
{
	struct zf_remote *rm = ctx;

	rm->objs = zf_realloc(rm->objs, (rm->nobjs + 1) * sizeof(*rm->objs));
	rm->objs[rm->nobjs].key = zf_strdup(key);
	rm->objs[rm->nobjs++].size = size;
	return 0;
}

static int cmp_obj(const void *a, const void *b)
{
	return strcmp(((const struct bucket_obj *)a)->key, ((const struct bucket_obj *)b)->key);
}

static int bucket_list(struct zf_remote *rm)
{
	if (rm->listed)
		return rm->listed < 0 ? rm->listed : 0;
	rm->listed = zf_objstore_list(rm->up, "", list_fn, rm);
	if (rm->listed < 0) {
		zf_err("cannot list the bucket '%s': %s", rm->url, strerror(-rm->listed));
		return rm->listed;
	}
	rm->listed = 1;
	if (rm->nobjs)
		qsort(rm->objs, rm->nobjs, sizeof(*rm->objs), cmp_obj);
	return 0;
}

static struct bucket_obj *bucket_find(struct zf_remote *rm, const char *key)
{
	struct bucket_obj k = { .key = (char *)key };

	return rm->nobjs ? bsearch(&k, rm->objs, rm->nobjs, sizeof(k), cmp_obj) : NULL;
}

int zf_remote_seg_size(void *ctx, uint64_t seg, uint64_t *ret_size)
{
	struct zf_remote *rm = ctx;
	struct bucket_obj *o;
	char key[ZF_BKEY_MAX];
	int r = bucket_list(rm);

	if (r < 0)
		return r;
	zf_bkey_seg(seg, key, sizeof(key));
	o = bucket_find(rm, key);
	if (!o)
		return -ENOENT;
	*ret_size = o->size;
	return 0;
}

static void audit_say(struct zf_remote_audit *a, int is_problem, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void audit_say(struct zf_remote_audit *a, int is_problem, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (is_problem) {
		a->errors++;
		if (a->problem)
			a->problem(a->ctx, msg);
	} else {
		a->notes++;
		if (a->note)
			a->note(a->ctx, msg);
	}
}

static void audit_garbage(struct zf_remote_audit *a, const struct bucket_obj *o, const char *why)
{
	a->garbage_objects++;
	a->garbage_bytes += o->size;
	audit_say(a, 0, "garbage: bucket object '%s' (%" PRIu64 " bytes) %s: reclaimable by "
		  "zerofs gc", o->key, o->size, why);
}

/* every object is the bucket's metadata, a segment it uses, or garbage (a note) */
static void audit_objects(struct zf_remote *rm, struct zf_remote_audit *a)
{
	struct zf_bkey k;
	uint64_t ckpt = 0;
	int has_ckpt = 0;
	size_t i;

	for (i = 0; i < rm->nobjs; i++)
		if (zf_bkey_parse(rm->objs[i].key, &k) == ZF_BKEY_IS_CKPT &&
		    (!has_ckpt || k.a > ckpt)) {
			ckpt = k.a;
			has_ckpt = 1;
		}
	for (i = 0; i < rm->nobjs; i++) {
		const struct bucket_obj *o = &rm->objs[i];

		switch (zf_bkey_parse(o->key, &k)) {
		case ZF_BKEY_IS_SUPERBLOCK:
		case ZF_BKEY_IS_LEASE:
		case ZF_BKEY_IS_HEAD:
		case ZF_BKEY_IS_KEYS:
		case ZF_BKEY_IS_SNAP: /* its segments: the dev-dir's check (snapshots) */
			break;
		case ZF_BKEY_IS_SEG:
			if (!bsearch(&k.a, a->segs, a->nsegs, sizeof(*a->segs), zf_cmp_u64))
				audit_garbage(a, o, "holds no chunk the metadata knows");
			break;
		case ZF_BKEY_IS_CKPT:
			if (k.a != ckpt)
				audit_garbage(a, o, "is an older checkpoint");
			break;
		case ZF_BKEY_IS_LOG:
			if (has_ckpt && k.b <= ckpt)
				audit_garbage(a, o, "is covered by the newest checkpoint");
			break;
		default:
			audit_garbage(a, o, "is not a zerofs object");
		}
	}
}

/* the superblock: there, and this filesystem's */
static int audit_superblock(struct zf_remote *rm, struct zf_remote_audit *a)
{
	const char *fix = a->repair ? "" : " (--repair puts the dev-dir's copy back)";
	void *local = NULL;
	size_t llen = 0;
	char why[200];
	int r, put = 0;

	if (zf_read_file(rm->devfd, "superblock", &local, &llen) < 0)
		return 0; /* the core could open the dev-dir: it is there */
	r = bucket_find(rm, ZF_BKEY_SUPERBLOCK) ? zf_tier_sb_classify(rm, why, sizeof(why)) : SB_ABSENT;
	if (r < 0) {
		zf_tier_note_unreachable(rm, "GET", ZF_BKEY_SUPERBLOCK, r);
		goto out;
	}
	switch (r) {
	case SB_ABSENT:
		audit_say(a, 1, "bucket object 'superblock' is missing: a restore from the bucket is "
			  "impossible%s", fix);
		put = 1;
		break;
	case SB_HEAL:
		audit_say(a, 1, "bucket object 'superblock' is damaged (%s), while the bucket's "
			  "metadata is this filesystem's: a restore from the bucket is impossible%s",
			  why, fix);
		put = 1;
		break;
	case SB_UNSURE:
		audit_say(a, 1, "bucket object 'superblock' is damaged (%s), and the bucket's "
			  "metadata does not say whose it is (not repaired)", why);
		break;
	case SB_FOREIGN:
		audit_say(a, 1, "the bucket holds another filesystem: its superblock is %s", why);
		break;
	}
	r = 0;
	if (put && a->repair) {
		r = zf_objstore_put(rm->up, ZF_BKEY_SUPERBLOCK, local, llen);
		if (r == 0) {
			a->repaired++;
			audit_say(a, 0, "repair: put the dev-dir's superblock into the bucket");
		} else {
			zf_tier_note_unreachable(rm, "PUT", ZF_BKEY_SUPERBLOCK, r);
		}
	}
out:
	free(local);
	return r;
}

/*
 * An encrypted filesystem's `keys`: there, and the dev-dir's (zerofs passwd
 * rewrites both); without it nothing in the bucket can be read elsewhere.
 */
static int audit_keys(struct zf_remote *rm, struct zf_remote_audit *a)
{
	const char *fix = a->repair ? "" : " (--repair puts the dev-dir's copy back)";
	void *local = NULL, *remote = NULL;
	size_t llen = 0, rlen = 0;
	int r;

	if (!(rm->seal.features & ZF_FEAT_ENCRYPT))
		return 0;
	if (zf_read_file(rm->devfd, ZF_KEYS_NAME, &local, &llen) < 0) {
		audit_say(a, 1, "the dev-dir lacks its '%s' file (the wrapped master key): restore "
			  "it from the bucket's copy", ZF_KEYS_NAME);
		return 0;
	}
	r = zf_objstore_get(rm->up, ZF_BKEY_KEYS, 0, 0, &remote, &rlen);
	if (r < 0 && r != -ENOENT) {
		zf_tier_note_unreachable(rm, "GET", ZF_BKEY_KEYS, r);
		free(local);
		return r;
	}
	if (r == 0 && rlen == llen && !memcmp(local, remote, llen)) {
		r = 0;
		goto out;
	}
	if (r == 0) {
		/* an interrupted zerofs passwd: the bucket took its keys.new */
		void *nk = NULL;
		size_t nlen = 0;
		int same = zf_read_file(rm->devfd, ZF_KEYS_NEW_NAME, &nk, &nlen) == 0 &&
			   nlen == rlen && !memcmp(nk, remote, rlen);

		free(nk);
		if (same) {
			audit_say(a, 1, "an interrupted 'zerofs passwd': the bucket has the new "
				  "passphrase, the dev-dir's '%s' the old one%s", ZF_KEYS_NAME,
				  a->repair ? "" : " (--repair finishes it)");
			if (a->repair && renameat(rm->devfd, ZF_KEYS_NEW_NAME, rm->devfd,
						  ZF_KEYS_NAME) == 0 && zf_fsync_dir(rm->devfd) == 0) {
				a->repaired++;
				audit_say(a, 0, "repair: '%s' replaced '%s'", ZF_KEYS_NEW_NAME,
					  ZF_KEYS_NAME);
			}
			r = 0;
			goto out;
		}
	}
	audit_say(a, 1, "bucket object '%s' is %s: the filesystem cannot be restored from the "
		  "bucket%s", ZF_BKEY_KEYS, r == -ENOENT ? "missing" : "not the dev-dir's", fix);
	r = 0;
	if (a->repair) {
		r = zf_objstore_put(rm->up, ZF_BKEY_KEYS, local, llen);
		if (r == 0) {
			a->repaired++;
			audit_say(a, 0, "repair: put the dev-dir's '%s' into the bucket", ZF_KEYS_NAME);
		} else {
			zf_tier_note_unreachable(rm, "PUT", ZF_BKEY_KEYS, r);
		}
	}
out:
	free(local);
	free(remote);
	return r;
}

/* the newest checkpoint in the dev-dir's meta/ (0: none) */
static uint64_t local_ckpt(struct zf_remote *rm)
{
	unsigned long long seq;
	uint64_t newest = 0;
	struct dirent *e;
	int fd = openat(rm->metafd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), n;
	DIR *d = fd < 0 ? NULL : fdopendir(fd);

	if (!d) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	while ((e = readdir(d))) {
		n = 0;
		if (sscanf(e->d_name, "ckpt.%16llx%n", &seq, &n) == 1 && !e->d_name[n] &&
		    seq > newest)
			newest = seq;
	}
	closedir(d);
	return newest;
}

struct audit_meta {
	struct zf_remote_audit *a;
	int scheduled;			/* a fresh checkpoint goes up at the next mount */
	uint64_t ckpt;			/* ... this one */
	unsigned int damage;		/* problems a fresh checkpoint would replace */
};

static void audit_meta_say(void *ctx, int kind, const char *msg)
{
	struct audit_meta *m = ctx;

	if (kind == SAY_WARN || kind == SAY_UNUSED) {
		audit_say(m->a, 0, "bucket: %s%s", kind == SAY_UNUSED ? "a restore cannot use " : "",
			  msg);
		return;
	}
	if (m->scheduled) {
		audit_say(m->a, 0, "bucket: %s (scheduled: the next mount uploads the dev-dir's "
			  "checkpoint 0x%" PRIx64 ", which replaces it)", msg, m->ckpt);
		return;
	}
	m->damage++;
	audit_say(m->a, 1, "bucket: %s%s", msg, m->a->repair ? "" : " (--repair has the dev-dir's "
		  "checkpoint uploaded again, which replaces it)");
}

/*
 * The bucket's metadata: the head, and the chain from the newest checkpoint
 * (with verify: every object fetched and checked frame by frame) up to what
 * the head and upload.state say it holds. Damage the dev-dir can replace
 * (it holds every record the bucket got from it) is repaired by a fresh
 * checkpoint: upload.state's checkpoint mark goes to 0, so the next mount's
 * uploader ships the newest local checkpoint, after which the log pieces it
 * covers (the damaged ones among them) are deleted. The log mark stays: a
 * lower one would make the bucket's later pieces look like another
 * dev-dir's (a fork) at the next mount.
 */
static int audit_meta(struct zf_remote *rm, struct zf_remote_audit *a, int *ret_fix)
{
	struct audit_meta m = { .a = a };
	struct mscan s = { .os = rm->up, .seal = &rm->seal, .fetch = 1, .expect_src = "upload.state",
			   .say = audit_meta_say, .ctx = &m };
	uint64_t up_seq, up_ckpt, claim, newest;
	const char *fix = a->repair ? "" : " (--repair puts it)";
	char buf[ZF_TIER_HEAD_MAX];
	struct zf_tier_head h;
	int r, put_head = 0;

	memcpy(s.fsid, rm->fsid, 16);
	zf_mutex_lock(&rm->lock);
	up_seq = rm->up_seq;
	up_ckpt = rm->up_ckpt;
	claim = rm->claim_seq;
	zf_mutex_unlock(&rm->lock);
	s.expect = up_seq;
	m.ckpt = local_ckpt(rm);
	m.scheduled = !up_ckpt && m.ckpt && m.ckpt >= claim;
	r = zf_mscan_run(&s);
	if (r < 0) {
		zf_tier_note_unreachable(rm, "reading the metadata", NULL, r);
		goto out;
	}
	if (m.damage && a->repair) {
		zf_mutex_lock(&rm->lock);
		rm->up_ckpt = 0;
		zf_mutex_unlock(&rm->lock);
		*ret_fix = 1;
		a->repaired++;
		audit_say(a, 0, "repair: the next mount uploads the dev-dir's newest checkpoint, "
			  "which replaces the bucket's damaged metadata ('zerofs sync' or max_delay "
			  "seals the open segment first)");
	}
	/* the head: there, this filesystem's, not behind what this dev-dir put */
	if (!s.nckpts && !s.npieces)
		goto out; /* nothing uploaded yet: no head either */
	if (s.head_state == 0) {
		audit_say(a, 1, "bucket object 'head' is missing: a restore cannot tell whether the "
			  "newest log pieces are there%s", fix);
		put_head = 1;
	} else if (s.head_state < 0) {
		audit_say(a, 1, "bucket object 'head': %s%s", s.head_why, fix);
		put_head = 1;
	} else if (s.head.seq < up_seq) {
		audit_say(a, 1, "bucket object 'head' is stale: it says records up to 0x%" PRIx64
			  ", upload.state 0x%" PRIx64 "%s", s.head.seq, up_seq, fix);
		put_head = 1;
	} else if (s.head.seq > claim) {
		/* not damage: a restored copy wrote on; a mount of this one refuses (a fork) */
		audit_say(a, 0, "the bucket's head says records up to 0x%" PRIx64 ", past what this "
			  "dev-dir put (0x%" PRIx64 "): another dev-dir (a restored copy?) writes to "
			  "the bucket, and this one is behind it", s.head.seq, claim);
	}
	if (put_head && a->repair) {
		newest = s.nckpts ? s.ckpts[0].a : 0;
		memcpy(h.fsid, rm->fsid, 16);
		h.seq = up_seq;
		h.ckpt = up_ckpt && up_ckpt < newest ? up_ckpt : newest;
		r = zf_tier_put_obj(rm->up, &rm->seal, ZF_BKEY_HEAD, buf, zf_tier_head_format(&h, buf));
		if (r < 0) {
			zf_tier_note_unreachable(rm, "PUT", ZF_BKEY_HEAD, r);
			goto out;
		}
		a->repaired++;
		audit_say(a, 0, "repair: put a head saying records up to 0x%" PRIx64 " into the "
			  "bucket", h.seq);
	}
out:
	zf_mscan_free(&s);
	return r;
}

/*
 * Segments upload.state says the bucket holds: there, as long as the local
 * copy (listing sizes), and with verify the same bytes, each checked on its
 * own. A bucket copy that is missing or damaged while the dev-dir's is good
 * goes up again (the segment mark is lowered below it).
 */
static int audit_segs(struct zf_remote *rm, struct zf_remote_audit *a, int *ret_fix)
{
	uint64_t up_seg, first_bad = 0;
	void *remote = NULL, *local = NULL;
	size_t i, rlen, llen;
	int r = 0;

	zf_mutex_lock(&rm->lock);
	up_seg = rm->up_seg;
	zf_mutex_unlock(&rm->lock);
	for (i = 0; i < a->nsegs && a->segs[i] <= up_seg; i++) {
		const char *fix = a->repair ? "" : " (--repair has it uploaded again)";
		struct bucket_obj *o;
		char key[ZF_BKEY_MAX], name[32], why[200];
		struct stat st;
		int has_local, bad = 0;

		zf_segstore_name(a->segs[i], name, sizeof(name));
		zf_bkey_seg(a->segs[i], key, sizeof(key));
		o = bucket_find(rm, key);
		has_local = zf_fs_segment_local(rm->fs, a->segs[i]) &&
			    fstatat(rm->segfd, name, &st, 0) == 0;
		if (!o) {
			if (!has_local)
				continue; /* gone everywhere: the checker named the files above */
			audit_say(a, 1, "bucket object '%s' is missing (upload.state says it is "
				  "there): a restore would lose its data%s", key, fix);
			bad = 1;
		} else if (has_local && o->size != (uint64_t)st.st_size) {
			audit_say(a, 1, "bucket object '%s' is %" PRIu64 " bytes, the dev-dir's copy %"
				  PRIu64 "%s", key, o->size, (uint64_t)st.st_size, fix);
			bad = 1;
		} else if (a->verify) {
			r = zf_tier_get_obj(rm->up, &rm->seal, key, &remote, &rlen, why, sizeof(why));
			if (r == -EBADMSG) {
				audit_say(a, has_local, "bucket object '%s': %s%s", key, why,
					  has_local ? fix : " (the only copy: the files it costs, "
					  "if any, are named above)");
				bad = has_local;
				r = 0;
			} else if (r == -ENOENT) {
				audit_say(a, 1, "bucket object '%s' is missing (listed, then gone)%s",
					  key, fix);
				bad = 1;
			} else if (r < 0) {
				zf_tier_note_unreachable(rm, "GET", key, r);
				break;
			} else if (has_local && zf_read_file(rm->segfd, name, &local, &llen) == 0 &&
				   llen == rlen && !memcmp(local, remote, rlen)) {
				/* the same bytes: the checker verified the local copy */
			} else if (zf_seg_image_verify(remote, rlen, a->segs[i], rm->fsid, why, sizeof(why))) {
				/*
				 * Without a local copy the checker read every super-chunk
				 * the files map from this object and named what is lost;
				 * the rest of it (header, footer) costs nothing.
				 */
				audit_say(a, has_local, "bucket object '%s': %s%s", key, why,
					  has_local ? fix : " (the only copy: the files it costs, "
					  "if any, are named above)");
				bad = has_local;
			} else if (has_local) {
				audit_say(a, 0, "%s: the dev-dir's copy differs from the bucket's, "
					  "which verifies (the checker judges the local one)", key);
			}
			free(remote);
			free(local);
			remote = local = NULL;
			r = 0;
		}
		if (bad && has_local && !first_bad)
			first_bad = a->segs[i];
	}
	if (r == 0 && a->repair && first_bad) {
		zf_mutex_lock(&rm->lock);
		if (rm->up_seg >= first_bad)
			rm->up_seg = first_bad - 1;
		zf_mutex_unlock(&rm->lock);
		*ret_fix = 1;
		a->repaired++;
		audit_say(a, 0, "repair: segments from %016" PRIx64 " on go up again at the next mount",
			  first_bad);
	}
	return r;
}

int zf_remote_audit(struct zf_remote *rm, struct zf_remote_audit *a)
{
	size_t i;
	int r, fix = 0;

	r = bucket_list(rm);
	if (r < 0) {
		zf_tier_note_unreachable(rm, "LIST", NULL, r);
		return r;
	}
	a->objects = rm->nobjs;
	for (i = 0; i < rm->nobjs; i++)
		a->bytes += rm->objs[i].size;
	if (!rm->nobjs) {
		audit_say(a, 0, "the bucket '%s' holds nothing yet", rm->url);
		return 0;
	}
	r = audit_superblock(rm, a);
	if (r == 0)
		r = audit_keys(rm, a);
	if (r < 0)
		return r;
	audit_objects(rm, a);
	r = audit_meta(rm, a, &fix);
	if (r == 0)
		r = audit_segs(rm, a, &fix);
	if (r == 0 && zf_remote_unreachable(rm, NULL, 0))
		r = -EREMOTEIO; /* some answer is missing: nothing is concluded */
	if (r == 0 && fix) {
		r = zf_tier_state_save(rm);
		if (r < 0) {
			audit_say(a, 1, "cannot rewrite upload.state: %s", strerror(-r));
			r = 0;
		}
	}
	if (a->garbage_objects > 1)
		audit_say(a, 0, "garbage: %" PRIu64 " bucket objects, %" PRIu64 " bytes: reclaimable "
			  "by zerofs gc", a->garbage_objects, a->garbage_bytes);
	return r;
}

