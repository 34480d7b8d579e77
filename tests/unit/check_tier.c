/*
 * tests/unit/check_tier.c - unit tests of the object-storage tier
 * (zf_remote_*) against the file:// backend and the fault wrapper: what a
 * sync puts in the bucket, restore (whole, refused on damage, the prefix
 * with allow_loss), the audit, the lease and fencing, eviction and fetches,
 * outages during uploads and fetches, and bucket gc.
 *
 * No mount, no network: each test makes a filesystem in a scratch dev-dir
 * under one root made by main(), attaches a bucket that is another scratch
 * directory, and looks at the bucket through the objstore API. Tests wait
 * for conditions (a deadline generous enough for a loaded, sanitized CI
 * machine), never for a fixed time.
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "net/objstore.h"
#include "storage/bucket_keys.h"
#include "tier/remote.h"
#include "zf_test.h"

#define KIB 1024u
#define MIB (1024u * 1024u)
#define FILE_BYTES (256u * KIB)

static char g_root[PATH_MAX / 2];

/* small chunks and 1 MiB segments: a few files make several segments */
static const struct zf_mkfs_opts tier_mkfs = {
	.chunk_min = 2 * KIB, .chunk_avg = 8 * KIB, .chunk_max = 32 * KIB, .seg_limit = 1 << 20
};

/* ---- scratch dirs, the bucket, waiting ---- */

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

static void rm_tree(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* a test's world: a bucket directory, its URL, dev-dirs made on demand */
struct world {
	char dir[PATH_MAX];	/* the scratch dir everything lives in */
	char bucket[PATH_MAX + 16];
	char url[PATH_MAX + 32];
};

static void world_new(struct world *w)
{
	snprintf(w->dir, sizeof(w->dir), "%s/t-XXXXXX", g_root);
	ck_assert_ptr_nonnull(mkdtemp(w->dir));
	snprintf(w->bucket, sizeof(w->bucket), "%s/bucket", w->dir);
	ck_assert_int_eq(mkdir(w->bucket, 0700), 0);
	snprintf(w->url, sizeof(w->url), "file://%s", w->bucket);
}

/* w->dir/name: a dev-dir path (not created) */
static void world_dev(const struct world *w, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", w->dir, name);
}

static void world_free(struct world *w)
{
	rm_tree(w->dir);
}

/* a generous deadline: sanitized builds on a shared machine are slow */
static uint64_t deadline_ms(void)
{
	return zf_mono_ns() / 1000000 + (getenv("ZF_SANITIZED") ? 240000 : 90000);
}

static void nap(void)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };

	nanosleep(&ts, NULL);
}

struct keyset {
	char **v;
	uint64_t *size;
	size_t n;
};

static int keyset_add(void *ctx, const char *key, uint64_t size)
{
	struct keyset *k = ctx;

	k->v = zf_realloc(k->v, (k->n + 1) * sizeof(*k->v));
	k->size = zf_realloc(k->size, (k->n + 1) * sizeof(*k->size));
	k->v[k->n] = zf_strdup(key);
	k->size[k->n++] = size;
	return 0;
}

static void keyset_free(struct keyset *k)
{
	for (size_t i = 0; i < k->n; i++)
		free(k->v[i]);
	free(k->v);
	free(k->size);
	memset(k, 0, sizeof(*k));
}

/* every key of the bucket under prefix, through the objstore API */
static void bucket_list(const struct world *w, const char *prefix, struct keyset *ret)
{
	struct zf_objstore *st;

	memset(ret, 0, sizeof(*ret));
	ck_assert_int_eq(zf_objstore_open(w->url, NULL, &st), 0);
	ck_assert_int_eq(zf_objstore_list(st, prefix, keyset_add, ret), 0);
	zf_objstore_close(st);
}

static size_t bucket_count(const struct world *w, const char *prefix)
{
	struct keyset k;
	size_t n;

	bucket_list(w, prefix, &k);
	n = k.n;
	keyset_free(&k);
	return n;
}

static int bucket_has(const struct world *w, const char *key)
{
	struct zf_objstore_stat s;
	struct zf_objstore *st;
	int r;

	ck_assert_int_eq(zf_objstore_open(w->url, NULL, &st), 0);
	r = zf_objstore_head(st, key, &s);
	zf_objstore_close(st);
	ck_assert(r == 0 || r == -ENOENT);
	return r == 0;
}

/* the key under prefix with the highest name (meta/log.<first>-<last>: the newest) */
static void bucket_last(const struct world *w, const char *prefix, char *buf, size_t len)
{
	struct keyset k;
	size_t i, best = 0;

	bucket_list(w, prefix, &k);
	ck_assert_msg(k.n > 0, "no object under '%s'", prefix);
	for (i = 1; i < k.n; i++)
		if (strcmp(k.v[i], k.v[best]) > 0)
			best = i;
	snprintf(buf, len, "%s", k.v[best]);
	keyset_free(&k);
}

/*
 * flip the byte at off (-1: the middle) of the bucket object key (file://
 * keeps it as a file)
 */
static void bucket_damage(const struct world *w, const char *key, off_t off)
{
	char path[PATH_MAX * 2];
	struct stat sb;
	uint8_t c;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", w->bucket, key);
	fd = open(path, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &sb), 0);
	if (off < 0)
		off = sb.st_size / 2;
	ck_assert_int_gt(sb.st_size, off);
	ck_assert_int_eq(pread(fd, &c, 1, off), 1);
	c ^= 0x5a;
	ck_assert_int_eq(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

/* bytes and number of the files in dev/sub */
static uint64_t dir_bytes(const char *dev, const char *sub, unsigned int *ret_n)
{
	char path[PATH_MAX * 2];
	struct dirent *e;
	uint64_t total = 0;
	unsigned int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", dev, sub);
	d = opendir(path);
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d))) {
		struct stat sb;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/%s", dev, sub, e->d_name);
		if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
			total += sb.st_size;
			n++;
		}
	}
	closedir(d);
	if (ret_n)
		*ret_n = n;
	return total;
}

/* ---- the filesystem and its files ---- */

static struct zf_fs *fs_make(const char *dev)
{
	struct zf_fs *fs;

	ck_assert_int_eq(zf_fs_mkfs(dev, &tier_mkfs), 0);
	ck_assert_int_eq(zf_fs_open(dev, NULL, &fs), 0);
	return fs;
}

static struct zf_fs *fs_reopen(const char *dev)
{
	struct zf_fs *fs;

	ck_assert_int_eq(zf_fs_open(dev, NULL, &fs), 0);
	return fs;
}

/* a remote with quick rounds; budget 0: no eviction */
static struct zf_remote *rm_attach(struct zf_fs *fs, const char *dev, const char *url,
				   uint64_t budget)
{
	struct zf_remote_opts o = { .url = url, .interval_ms = 20, .local_budget = budget,
				    .fetch_timeout_ms = 3000 };
	struct zf_remote *rm = NULL;

	ck_assert_int_eq(zf_remote_open(fs, dev, &o, &rm), 0);
	ck_assert_int_eq(zf_remote_start(rm), 0);
	return rm;
}

/* read-only attach (what fsck does): fetches, no lease, no uploads */
static struct zf_remote *rm_attach_ro(struct zf_fs *fs, const char *dev, const char *url)
{
	struct zf_remote_opts o = { .url = url, .readonly = 1, .fetch_timeout_ms = 3000 };
	struct zf_remote *rm = NULL;

	ck_assert_int_eq(zf_remote_open(fs, dev, &o, &rm), 0);
	return rm;
}

/* file <name> holds FILE_BYTES incompressible bytes of seed */
static void put_file(struct zf_fs *fs, const char *name, uint64_t seed)
{
	uint8_t *buf = zf_malloc(FILE_BYTES);
	struct zf_attr a;

	ck_assert_int_eq(zf_fs_mknod(fs, ZF_ROOT_INO, name, S_IFREG | 0644, 0, 0, 0, &a), 0);
	t_fill(buf, FILE_BYTES, seed);
	ck_assert_int_eq(zf_fs_write(fs, a.ino, buf, FILE_BYTES, 0), (ssize_t)FILE_BYTES);
	free(buf);
}

/* files <prefix>0..n-1, file i of seed base + i */
static void put_files(struct zf_fs *fs, const char *prefix, int n, uint64_t base)
{
	char name[64];

	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%s%d", prefix, i);
		put_file(fs, name, base + i);
	}
}

/* 0 and the file's bytes compared, or the read's -errno */
static ssize_t read_file(struct zf_fs *fs, const char *name, uint64_t seed)
{
	uint8_t *want = zf_malloc(FILE_BYTES), *got = zf_malloc(FILE_BYTES);
	struct zf_attr a;
	ssize_t r;

	ck_assert_int_eq(zf_fs_lookup(fs, ZF_ROOT_INO, name, &a), 0);
	ck_assert_uint_eq(a.size, FILE_BYTES);
	t_fill(want, FILE_BYTES, seed);
	memset(got, 0, FILE_BYTES);
	r = zf_fs_read(fs, a.ino, got, FILE_BYTES, 0);
	if (r >= 0) {
		ck_assert_int_eq(r, (ssize_t)FILE_BYTES);
		ck_assert_msg(!memcmp(want, got, FILE_BYTES), "file '%s' differs", name);
		r = 0;
	}
	free(want);
	free(got);
	return r;
}

static void check_files(struct zf_fs *fs, const char *prefix, int n, uint64_t base)
{
	char name[64];

	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%s%d", prefix, i);
		ck_assert_int_eq(read_file(fs, name, base + i), 0);
	}
}

/* how many of files <prefix>0..n-1 are there whole (and then right) */
static int intact(struct zf_fs *fs, const char *prefix, int n, uint64_t base)
{
	struct zf_attr a;
	char name[64];
	int whole = 0;

	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%s%d", prefix, i);
		if (zf_fs_lookup(fs, ZF_ROOT_INO, name, &a) == 0 && a.size == FILE_BYTES) {
			ck_assert_int_eq(read_file(fs, name, base + i), 0);
			whole++;
		}
	}
	return whole;
}

static int exists(struct zf_fs *fs, const char *name)
{
	struct zf_attr a;

	return zf_fs_lookup(fs, ZF_ROOT_INO, name, &a) == 0;
}

/* restore dev from the bucket (no loss allowed) and open it with a read-only attach */
static struct zf_fs *restore_open(const struct world *w, const char *dev, struct zf_remote **ret_rm)
{
	struct zf_restore_report rep = { 0 };
	struct zf_fs *fs;

	ck_assert_int_eq(zf_remote_restore(w->url, NULL, dev, &rep), 0);
	ck_assert_uint_eq(rep.lost_from, 0);
	fs = fs_reopen(dev);
	*ret_rm = rm_attach_ro(fs, dev, w->url);
	return fs;
}

/* ---- restore findings and audit problems, collected ---- */

struct said {
	unsigned int n[3];	/* by ZF_RESTORE_* kind */
	char text[4096];
};

static void said_add(struct said *s, const char *msg)
{
	size_t l = strlen(s->text);

	snprintf(s->text + l, sizeof(s->text) - l, "%s\n", msg);
}

static void restore_say(void *ctx, int kind, const char *msg)
{
	struct said *s = ctx;

	ck_assert(kind >= 0 && kind < 3);
	s->n[kind]++;
	said_add(s, msg);
}

static void audit_problem(void *ctx, const char *msg)
{
	said_add(ctx, msg);
}

static void audit_note(void *ctx, const char *msg)
{
}

/* zf_remote_audit of fs's bucket; returns the errors, what was said in s */
static uint64_t audit(struct zf_fs *fs, struct zf_remote *rm, int verify, struct said *s)
{
	struct zf_remote_audit a = { 0 };
	uint64_t *segs = NULL;
	size_t nsegs = 0;

	ck_assert_int_eq(zf_fs_segments_used(fs, &segs, &nsegs), 0);
	a.segs = segs;
	a.nsegs = nsegs;
	a.verify = verify;
	a.problem = audit_problem;
	a.note = audit_note;
	a.ctx = s;
	ck_assert_int_eq(zf_remote_audit(rm, &a), 0);
	ck_assert_uint_gt(a.objects, 0);
	free(segs);
	return a.errors;
}

/* ---- tests ---- */

/* a sync puts every part of the filesystem in the bucket; a restore gets it all back */
START_TEST(test_sync_layout_restore)
{
	char dev[PATH_MAX * 2], dev2[PATH_MAX * 2], path[PATH_MAX * 3];
	struct zf_remote *rm, *rm2;
	struct zf_fs *fs, *fs2;
	struct zf_attr a;
	struct zf_bkey key;
	struct keyset k;
	struct world w;
	char *before, *after;
	unsigned int nseg;
	size_t i, nobj = 0;

	world_new(&w);
	world_dev(&w, "dev", dev, sizeof(dev));
	world_dev(&w, "dev2", dev2, sizeof(dev2));
	fs = fs_make(dev);
	rm = rm_attach(fs, dev, w.url, 0);
	put_files(fs, "f", 10, 100);
	ck_assert_int_eq(zf_fs_symlink(fs, ZF_ROOT_INO, "link", "f0", 0, 0, &a), 0);
	ck_assert_int_eq(zf_remote_sync(rm), 0);

	ck_assert(bucket_has(&w, "superblock"));
	ck_assert(bucket_has(&w, "head"));
	ck_assert(bucket_has(&w, "lease"));
	ck_assert_uint_gt(bucket_count(&w, "meta/log."), 0);
	/* every segment object is the local segment, byte for byte */
	dir_bytes(dev, "seg", &nseg);
	ck_assert_uint_ge(nseg, 1);
	bucket_list(&w, "seg/", &k);
	for (i = 0; i < k.n; i++) {
		void *local, *remote;
		size_t ll, rl;

		ck_assert_msg(zf_bkey_parse(k.v[i], &key) == ZF_BKEY_IS_SEG, "odd segment key '%s'",
			      k.v[i]);
		snprintf(path, sizeof(path), "%s/%s", dev, k.v[i]);	/* the same name */
		ck_assert_int_eq(zf_read_file(AT_FDCWD, path, &local, &ll), 0);
		snprintf(path, sizeof(path), "%s/%s", w.bucket, k.v[i]);
		ck_assert_int_eq(zf_read_file(AT_FDCWD, path, &remote, &rl), 0);
		ck_assert_uint_eq(ll, rl);
		ck_assert_msg(!memcmp(local, remote, ll), "'%s' differs from the local copy",
			      k.v[i]);
		free(local);
		free(remote);
		nobj++;
	}
	ck_assert_uint_eq(nobj, nseg);	/* and a sync leaves no local segment behind */
	keyset_free(&k);

	before = t_dump(fs);
	ck_assert_int_eq(zf_remote_close(rm), 0);
	ck_assert(!bucket_has(&w, "lease"));	/* a clean close releases it */
	ck_assert_int_eq(zf_fs_close(fs), 0);
	/* the closing checkpoint goes up with the final upload... */
	fs = fs_reopen(dev);
	rm = rm_attach(fs, dev, w.url, 0);
	ck_assert_int_eq(zf_remote_sync(rm), 0);
	ck_assert_int_eq(zf_remote_close(rm), 0);
	ck_assert_int_eq(zf_fs_close(fs), 0);
	ck_assert_uint_gt(bucket_count(&w, "meta/ckpt."), 0);

	/* ...and a second dev-dir made from the bucket alone holds the same tree */
	fs2 = restore_open(&w, dev2, &rm2);
	after = t_dump(fs2);
	ck_assert_str_eq(before, after);
	check_files(fs2, "f", 10, 100);
	t_check_clean(fs2);
	ck_assert_int_eq(zf_remote_close(rm2), 0);
	ck_assert_int_eq(zf_fs_close(fs2), 0);
	/* restore into a dev-dir that holds a filesystem is refused */
	zf_log_set_level(ZF_LOG_NONE);
	ck_assert_int_eq(zf_remote_restore(w.url, NULL, dev2, NULL), -EEXIST);
	zf_log_set_level(ZF_LOG_WARN);
	free(before);
	free(after);
	world_free(&w);
}
END_TEST

/* the audit finds a clean bucket clean and names a damaged object */
START_TEST(test_audit)
{
	char dev[PATH_MAX * 2], seg[256], piece[256];
	struct said s = { 0 };
	struct zf_remote *rm;
	struct zf_fs *fs;
	struct world w;

	world_new(&w);
	world_dev(&w, "dev", dev, sizeof(dev));
	fs = fs_make(dev);
	rm = rm_attach(fs, dev, w.url, 0);
	put_files(fs, "f", 8, 200);
	ck_assert_int_eq(zf_remote_sync(rm), 0);
	ck_assert_int_eq(zf_remote_close(rm), 0);

	rm = rm_attach_ro(fs, dev, w.url);
	ck_assert_uint_eq(audit(fs, rm, 1, &s), 0);
	ck_assert_str_eq(s.text, "");
	ck_assert_int_eq(zf_remote_close(rm), 0);

	/* a segment object with one byte flipped: found by a verifying audit */
	bucket_last(&w, "seg/", seg, sizeof(seg));
	bucket_damage(&w, seg, -1);
	rm = rm_attach_ro(fs, dev, w.url);
	ck_assert_uint_gt(audit(fs, rm, 1, &s), 0);
	ck_assert_msg(strstr(s.text, seg + 4), "the audit did not name '%s': %s", seg, s.text);
	ck_assert_int_eq(zf_remote_close(rm), 0);

	/* a log piece with one byte flipped: found by a plain audit too */
	memset(&s, 0, sizeof(s));
	bucket_last(&w, "meta/log.", piece, sizeof(piece));
	bucket_damage(&w, piece, -1);
	rm = rm_attach_ro(fs, dev, w.url);
	ck_assert_uint_gt(audit(fs, rm, 0, &s), 0);
	ck_assert_msg(strstr(s.text, piece), "the audit did not name '%s': %s", piece, s.text);
	ck_assert_int_eq(zf_remote_close(rm), 0);
	ck_assert_int_eq(zf_fs_close(fs), 0);
	world_free(&w);
}
END_TEST

/* a damaged chain: refused whole; with allow_loss, the verified prefix */
START_TEST(test_restore_damaged_chain)
{
	char dev[PATH_MAX * 2], dev2[PATH_MAX * 2], piece[256];
	struct zf_restore_opts ro = { 0 };
	struct zf_restore_report rep = { 0 };
	struct said s = { 0 };
	struct zf_remote *rm;
	struct zf_fs *fs;
	struct world w;
	struct zf_bkey key;
	uint64_t first, last;
	size_t npieces;

	world_new(&w);
	world_dev(&w, "dev", dev, sizeof(dev));
	world_dev(&w, "dev2", dev2, sizeof(dev2));
	fs = fs_make(dev);
	rm = rm_attach(fs, dev, w.url, 0);
	/* three syncs: three log pieces, the newest holding only batch c */
	put_files(fs, "a", 3, 300);
	ck_assert_int_eq(zf_remote_sync(rm), 0);
	put_files(fs, "b", 3, 400);
	ck_assert_int_eq(zf_remote_sync(rm), 0);
	npieces = bucket_count(&w, "meta/log.");
	put_files(fs, "c", 3, 500);
	ck_assert_int_eq(zf_remote_sync(rm), 0);
	ck_assert_uint_gt(bucket_count(&w, "meta/log."), npieces);
	/* no clean close: it would put a checkpoint covering the damage */
	bucket_last(&w, "meta/log.", piece, sizeof(piece));
	ck_assert_int_eq(zf_bkey_parse(piece, &key), ZF_BKEY_IS_LOG);
	first = key.a;
	last = key.b;

	bucket_damage(&w, piece, 8);	/* its header: nothing in it verifies */
	ro.say = restore_say;
	ro.ctx = &s;
	ck_assert_int_eq(zf_remote_restore(w.url, &ro, dev2, &rep), -EBADMSG);
	ck_assert_uint_gt(s.n[ZF_RESTORE_DAMAGE], 0);
	ck_assert_msg(strstr(s.text, piece), "the restore did not name '%s': %s", piece, s.text);
	ck_assert_int_ne(access(dev2, F_OK), 0);	/* left as it was: missing */

	memset(&s, 0, sizeof(s));
	ro.allow_loss = 1;
	ck_assert_int_eq(zf_remote_restore(w.url, &ro, dev2, &rep), 0);
	ck_assert_uint_eq(rep.lost_from, first);	/* the damaged piece on */
	ck_assert_uint_ge(rep.lost_to, last);
	ck_assert_uint_eq(rep.seq, first - 1);	/* everything before it */
	ck_assert_uint_gt(rep.problems, 0);
	ck_assert_uint_gt(s.n[ZF_RESTORE_DAMAGE], 0);
	ck_assert_int_eq(zf_remote_close(rm), 0);
	ck_assert_int_eq(zf_fs_close(fs), 0);
	{
		struct zf_remote *rm2;
		struct zf_fs *fs2 = fs_reopen(dev2);

		rm2 = rm_attach_ro(fs2, dev2, w.url);
		check_files(fs2, "a", 3, 300);
		check_files(fs2, "b", 3, 400);
		/* of batch c, what is there is right (the loss may cut it anywhere) */
		intact(fs2, "c", 3, 500);
		t_check_clean(fs2);
		ck_assert_int_eq(zf_remote_close(rm2), 0);
		ck_assert_int_eq(zf_fs_close(fs2), 0);
	}
	world_free(&w);
}
END_TEST

/* one writer per bucket: -EBUSY, lease-break, and the old writer fenced */
START_TEST(test_lease)
{
	char dev[PATH_MAX * 2], dev2[PATH_MAX * 2], why[512];
	struct zf_remote_opts o = { 0 };
	struct zf_remote *rm, *rm2 = (void *)0x1;
	struct zf_remote_stats st;
	struct zf_fs *fs, *fs2;
	struct world w;
	uint64_t end;

	world_new(&w);
	world_dev(&w, "dev", dev, sizeof(dev));
	world_dev(&w, "dev2", dev2, sizeof(dev2));
	fs = fs_make(dev);
	/*
	 * Rounds only when asked (a sync): a round between the break and the
	 * second writer's open would renew the lease the break removed.
	 */
	o.url = w.url;
	o.interval_ms = 600000;
	ck_assert_int_eq(zf_remote_open(fs, dev, &o, &rm), 0);
	ck_assert_int_eq(zf_remote_start(rm), 0);
	put_files(fs, "f", 2, 600);
	ck_assert_int_eq(zf_remote_sync(rm), 0);

	/* a copy of the filesystem in another dev-dir may not write to the bucket */
	ck_assert_int_eq(zf_remote_restore(w.url, NULL, dev2, NULL), 0);
	fs2 = fs_reopen(dev2);
	zf_log_set_level(ZF_LOG_NONE);
	ck_assert_int_eq(zf_remote_open(fs2, dev2, &o, &rm2), -EBUSY);
	zf_log_set_level(ZF_LOG_WARN);
	ck_assert_ptr_eq(rm2, (void *)0x1);	/* ret_* written only on success */

	/* once the lease is broken, it may */
	ck_assert_int_eq(zf_remote_break_lease(w.url, NULL), 0);
	ck_assert(!bucket_has(&w, "lease"));
	ck_assert_int_eq(zf_remote_open(fs2, dev2, &o, &rm2), 0);
	ck_assert(bucket_has(&w, "lease"));

	/* and the first writer, its lease gone to another, stops uploading */
	zf_log_set_level(ZF_LOG_NONE);
	put_file(fs, "late", 601);
	ck_assert_int_eq(zf_remote_sync_why(rm, why, sizeof(why)), -EPERM);
	ck_assert_msg(strstr(why, "lease"), "why: %s", why);
	end = deadline_ms();
	do {
		zf_remote_stats(rm, &st);
	} while (!st.fenced && zf_mono_ns() / 1000000 < end && (nap(), 1));
	ck_assert_int_eq(st.fenced, 1);
	/* stats say that uploads fail, and why (the log says it too) */
	end = deadline_ms();
	do {
		zf_remote_stats(rm, &st);
	} while (!st.failing_since && zf_mono_ns() / 1000000 < end && (nap(), 1));
	ck_assert_int_gt(st.failing_since, 0);
	ck_assert_msg(strstr(st.failing_why, "belongs to another writer"), "why: %s",
		      st.failing_why);
	ck_assert_int_eq(zf_remote_close(rm), 0);
	zf_log_set_level(ZF_LOG_WARN);
	ck_assert_int_eq(zf_fs_close(fs), 0);
	ck_assert(bucket_has(&w, "lease"));	/* the fenced writer leaves it alone */
	ck_assert_int_eq(zf_remote_close(rm2), 0);
	ck_assert(!bucket_has(&w, "lease"));
	ck_assert_int_eq(zf_fs_close(fs2), 0);
	world_free(&w);
}
END_TEST

/* under a small budget, segments leave the dev-dir and come back on reads */
START_TEST(test_evict_fetch)
{
	const uint64_t budget = 1 * MIB;
	char dev[PATH_MAX * 2];
	struct zf_remote_stats st;
	struct zf_remote *rm;
	struct zf_fs *fs;
	struct world w;
	uint64_t end;

	world_new(&w);
	world_dev(&w, "dev", dev, sizeof(dev));
	fs = fs_make(dev);
	rm = rm_attach(fs, dev, w.url, budget);
	put_files(fs, "f", 16, 700);	/* 4 MiB, incompressible */
	ck_assert_int_eq(zf_remote_sync(rm), 0);
	end = deadline_ms();
	do {
		zf_remote_stats(rm, &st);
	} while ((!st.evictions || st.local_bytes > budget) && zf_mono_ns() / 1000000 < end &&
		 (nap(), 1));
	ck_assert_uint_gt(st.evictions, 0);
	ck_assert_uint_le(st.local_bytes, budget);
	ck_assert_uint_le(dir_bytes(dev, "seg", NULL), budget);
	ck_assert_int_eq(zf_remote_close(rm), 0);
	ck_assert_int_eq(zf_fs_close(fs), 0);

	/* a fresh open: nothing decompressed in memory, the bytes come from the bucket */
	fs = fs_reopen(dev);
	rm = rm_attach(fs, dev, w.url, budget);
	check_files(fs, "f", 16, 700);
	zf_remote_stats(rm, &st);
	ck_assert_uint_gt(st.fetched_bytes, 0);
	ck_assert_uint_gt(st.fetch_misses, 0);
	t_check_clean(fs);
	ck_assert_int_eq(zf_remote_close(rm), 0);
	ck_assert_int_eq(zf_fs_close(fs), 0);
	world_free(&w);
}
END_TEST

/* PUTs fail during an outage: sync says why, nothing is lost, it goes up later */
START_TEST(test_fault_put)
{
	char dev[PATH_MAX * 2], dev2[PATH_MAX * 2], flag[PATH_MAX * 2], furl[PATH_MAX * 4];
	char why[512] = "";
	struct zf_remote_opts o = { .interval_ms = 20, .write_wait_ms = 1500 };
	struct zf_remote *rm, *rm2;
	struct zf_fs *fs, *fs2;
	struct world w;
	size_t nseg;
	int fd;

	world_new(&w);
	world_dev(&w, "dev", dev, sizeof(dev));
	world_dev(&w, "dev2", dev2, sizeof(dev2));
	world_dev(&w, "outage", flag, sizeof(flag));
	snprintf(furl, sizeof(furl), "fault:outage_file=%s;%s", flag, w.url);
	fs = fs_make(dev);
	o.url = furl;
	ck_assert_int_eq(zf_remote_open(fs, dev, &o, &rm), 0);
	ck_assert_int_eq(zf_remote_start(rm), 0);
	put_files(fs, "a", 3, 800);
	ck_assert_int_eq(zf_remote_sync(rm), 0);
	nseg = bucket_count(&w, "seg/");

	/* the store refuses every request while the flag file exists */
	fd = open(flag, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	zf_log_set_level(ZF_LOG_NONE);
	put_files(fs, "b", 6, 900);
	ck_assert_int_eq(zf_remote_sync_why(rm, why, sizeof(why)), -ECONNREFUSED);
	zf_log_set_level(ZF_LOG_WARN);
	ck_assert_msg(strstr(why, "unreachable") && strstr(why, w.bucket), "why: %s", why);
	ck_assert_uint_eq(bucket_count(&w, "seg/"), nseg);
	check_files(fs, "b", 6, 900);	/* the dev-dir still serves it */

	/* the outage ends: the next sync ships what waited */
	ck_assert_int_eq(unlink(flag), 0);
	ck_assert_int_eq(zf_remote_sync_why(rm, why, sizeof(why)), 0);
	ck_assert_uint_gt(bucket_count(&w, "seg/"), nseg);
	ck_assert_int_eq(zf_remote_close(rm), 0);
	ck_assert_int_eq(zf_fs_close(fs), 0);

	fs2 = restore_open(&w, dev2, &rm2);
	check_files(fs2, "a", 3, 800);
	check_files(fs2, "b", 6, 900);
	ck_assert_int_eq(zf_remote_close(rm2), 0);
	ck_assert_int_eq(zf_fs_close(fs2), 0);
	world_free(&w);
}
END_TEST

/* a fetch that fails, or gets half a body, is an error, never wrong bytes */
START_TEST(test_fault_get)
{
	static const char *const faults[] = { "outage=1", "truncate=1,ops=get",
					      "rate=1,ops=get,err=EIO" };
	char dev[PATH_MAX * 2], dev2[PATH_MAX * 2], furl[PATH_MAX * 4];
	struct zf_remote *rm;
	struct zf_fs *fs;
	struct world w;
	size_t i;

	world_new(&w);
	world_dev(&w, "dev", dev, sizeof(dev));
	world_dev(&w, "dev2", dev2, sizeof(dev2));
	fs = fs_make(dev);
	rm = rm_attach(fs, dev, w.url, 0);
	put_files(fs, "f", 4, 1000);
	ck_assert_int_eq(zf_remote_sync(rm), 0);
	ck_assert_int_eq(zf_remote_close(rm), 0);
	ck_assert_int_eq(zf_fs_close(fs), 0);

	/* a restored dev-dir holds no data: every read is a fetch */
	ck_assert_int_eq(zf_remote_restore(w.url, NULL, dev2, NULL), 0);
	fs = fs_reopen(dev2);
	for (i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
		snprintf(furl, sizeof(furl), "fault:%s;%s", faults[i], w.url);
		rm = rm_attach_ro(fs, dev2, furl);
		zf_log_set_level(ZF_LOG_NONE);
		ck_assert_msg(read_file(fs, "f1", 1001) < 0, "a read under '%s' succeeded",
			      faults[i]);
		zf_log_set_level(ZF_LOG_WARN);
		ck_assert_int_eq(zf_remote_close(rm), 0);
	}
	/* the store well again: the same read gets the right bytes */
	rm = rm_attach_ro(fs, dev2, w.url);
	check_files(fs, "f", 4, 1000);
	ck_assert_int_eq(zf_remote_close(rm), 0);
	ck_assert_int_eq(zf_fs_close(fs), 0);
	world_free(&w);
}
END_TEST

/* bucket gc deletes the segment objects only removed files used */
START_TEST(test_bucket_gc)
{
	char dev[PATH_MAX * 2], dev2[PATH_MAX * 2], name[64];
	struct zf_gc_opts go = { .max_waste = 0.01 };
	struct zf_gc_report rep = { 0 };
	struct keyset before, after;
	struct zf_remote *rm;
	struct zf_fs *fs;
	struct world w;
	size_t i, j, gone = 0;
	int i2;

	world_new(&w);
	world_dev(&w, "dev", dev, sizeof(dev));
	world_dev(&w, "dev2", dev2, sizeof(dev2));
	fs = fs_make(dev);
	rm = rm_attach(fs, dev, w.url, 0);
	put_files(fs, "old", 12, 1100);	/* 3 MiB, sealed apart from what follows */
	ck_assert_int_eq(zf_remote_sync(rm), 0);
	put_files(fs, "keep", 4, 1200);
	ck_assert_int_eq(zf_remote_sync(rm), 0);
	bucket_list(&w, "seg/", &before);
	ck_assert_uint_ge(before.n, 2);

	for (i2 = 0; i2 < 12; i2++) {
		snprintf(name, sizeof(name), "old%d", i2);
		ck_assert_int_eq(zf_fs_unlink(fs, ZF_ROOT_INO, name), 0);
	}
	ck_assert_int_eq(zf_remote_gc(rm, &go, &rep), 0);
	ck_assert_uint_gt(rep.bucket_objects, 0);
	ck_assert_uint_gt(rep.bucket_bytes, 0);
	bucket_list(&w, "seg/", &after);
	for (i = 0; i < before.n; i++) {
		for (j = 0; j < after.n && strcmp(before.v[i], after.v[j]); j++)
			;
		gone += j == after.n;
	}
	ck_assert_uint_eq(gone, rep.bucket_objects);
	check_files(fs, "keep", 4, 1200);
	t_check_clean(fs);
	ck_assert_int_eq(zf_remote_close(rm), 0);
	ck_assert_int_eq(zf_fs_close(fs), 0);
	keyset_free(&before);
	keyset_free(&after);

	/* what gc left restores whole: it deleted nothing the metadata uses */
	fs = restore_open(&w, dev2, &rm);
	check_files(fs, "keep", 4, 1200);
	ck_assert(!exists(fs, "old0"));
	ck_assert_int_eq(zf_remote_close(rm), 0);
	ck_assert_int_eq(zf_fs_close(fs), 0);
	world_free(&w);
}
END_TEST

/* the bucket-key codec: what it formats it parses back; nothing else is a zerofs key */
START_TEST(test_bucket_keys)
{
	static const char *const other[] = {
		"seg/1.zseg", "seg/000000000000000A.zseg", "seg/0000000000000001.zseg.tmp",
		"meta/ckpt.1", "meta/ckpt.00000000000000ff ", "meta/log.0000000000000000-0000000000000001",
		"meta/log.0000000000000003-0000000000000002", "meta/log.1-2", "leases", "head/x", "",
	};
	char key[ZF_BKEY_MAX];
	struct zf_bkey k;
	size_t i;

	zf_bkey_seg(0x2a, key, sizeof(key));
	ck_assert_str_eq(key, "seg/000000000000002a.zseg");
	ck_assert_int_eq(zf_bkey_parse(key, &k), ZF_BKEY_IS_SEG);
	ck_assert_uint_eq(k.a, 0x2a);
	zf_bkey_ckpt(0x1234, key, sizeof(key));
	ck_assert_str_eq(key, "meta/ckpt.0000000000001234");
	ck_assert_int_eq(zf_bkey_parse(key, &k), ZF_BKEY_IS_CKPT);
	ck_assert_uint_eq(k.a, 0x1234);
	zf_bkey_log(1, UINT64_MAX, key, sizeof(key));
	ck_assert_str_eq(key, "meta/log.0000000000000001-ffffffffffffffff");
	ck_assert_int_eq(zf_bkey_parse(key, &k), ZF_BKEY_IS_LOG);
	ck_assert_uint_eq(k.a, 1);
	ck_assert_uint_eq(k.b, UINT64_MAX);
	ck_assert_int_eq(zf_bkey_parse("superblock", &k), ZF_BKEY_IS_SUPERBLOCK);
	ck_assert_int_eq(zf_bkey_parse("lease", &k), ZF_BKEY_IS_LEASE);
	ck_assert_int_eq(zf_bkey_parse("head", &k), ZF_BKEY_IS_HEAD);
	for (i = 0; i < sizeof(other) / sizeof(other[0]); i++)
		ck_assert_msg(zf_bkey_parse(other[i], &k) == ZF_BKEY_OTHER, "'%s' parsed as %d",
			      other[i], (int)k.kind);
}
END_TEST

static Suite *tier_suite(void)
{
	Suite *s = suite_create("tier");
	TCase *tc = tcase_create("remote");

	/* whole-filesystem round trips: slow under the sanitizers on a shared machine */
	tcase_set_timeout(tc, getenv("ZF_SANITIZED") ? 900 : 300);
	tcase_add_test(tc, test_bucket_keys);
	tcase_add_test(tc, test_sync_layout_restore);
	tcase_add_test(tc, test_audit);
	tcase_add_test(tc, test_restore_damaged_chain);
	tcase_add_test(tc, test_lease);
	tcase_add_test(tc, test_evict_fetch);
	tcase_add_test(tc, test_fault_put);
	tcase_add_test(tc, test_fault_get);
	tcase_add_test(tc, test_bucket_gc);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	SRunner *sr;
	int failed;

	if (!tmp || !*tmp)
		tmp = "/tmp";
	zf_log_init("check_tier", 0, ZF_LOG_WARN);
	snprintf(g_root, sizeof(g_root), "%s/zf-check-tier-XXXXXX", tmp);
	if (!mkdtemp(g_root)) {
		fprintf(stderr, "check_tier: cannot create '%s': %s\n", g_root, strerror(errno));
		return EXIT_FAILURE;
	}
	sr = srunner_create(tier_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	rm_tree(g_root);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
