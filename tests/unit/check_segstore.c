/*
 * tests/unit/check_segstore.c - unit tests for the segment store (storage/segstore*.c)
 *
 * Every test works in its own mkdtemp scratch directory (<scratch>/seg holds
 * the segments, as under a dev-dir) that the test removes at its end. The
 * scratch directories live under one root made by main(), which removes
 * what a failed test left behind (Check ends a failed forked test with
 * _exit, so the test itself cannot clean up). Data comes from a
 * seeded splitmix64 generator. Corruption tests edit segment files at the
 * offsets of storage/seg_format.h and check both the error and the log line
 * (stderr is captured), which must name the segment file and the offset.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "common/endian.h"
#include "common/log.h"
#include "common/util.h"
#include "storage/chunker.h"
#include "storage/seg_format.h"
#include "storage/segstore.h"

#define KIB (1u << 10)
#define MIB (1u << 20)

/* ---- deterministic test data ---- */

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static void fill_random(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t s = seed;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8)
		zf_put64(buf + i, splitmix64(&s));
	for (; i < len; i++)
		buf[i] = (uint8_t)splitmix64(&s);
}

/* text lines with a counter: zstd shrinks it by far more than 4x */
static void fill_text(uint8_t *buf, size_t len, uint64_t seed)
{
	char line[96];
	size_t pos = 0;
	unsigned int i = (unsigned int)seed;

	while (pos < len) {
		int n = snprintf(line, sizeof(line),
				 "line %08u: the quick brown fox jumps over the lazy dog\n", i++);
		size_t k = (size_t)n < len - pos ? (size_t)n : len - pos;

		memcpy(buf + pos, line, k);
		pos += k;
	}
}

/* ---- scratch directories ---- */

static char g_root[PATH_MAX / 2];	/* parent of every scratch dir */
static char g_scratch[PATH_MAX];	/* removed by scratch_cleanup() */
static char g_mounted[PATH_MAX];	/* tmpfs to unmount first, or "" */

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path) < 0 ? -1 : 0;
}

static int umount_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	if (flag == FTW_DP)
		umount2(path, MNT_DETACH); /* fails harmlessly on non-mount points */
	return 0;
}

static void rm_tree(const char *path)
{
	nftw(path, umount_one, 16, FTW_DEPTH | FTW_PHYS);
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void scratch_cleanup(void)
{
	if (g_mounted[0]) {
		ck_assert_int_eq(umount2(g_mounted, MNT_DETACH), 0);
		g_mounted[0] = 0;
	}
	if (g_scratch[0]) {
		ck_assert_int_eq(nftw(g_scratch, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
		g_scratch[0] = 0;
	}
}

struct env {
	char dir[PATH_MAX - 32];	/* scratch root */
	char segdir[PATH_MAX];		/* <dir>/seg */
	int segfd;
	uint8_t fsid[16];
	struct zf_chunker *ch;
	struct zf_segstore *st;
};

static void env_open_store(struct env *e, const struct zf_segstore_opts *opts)
{
	ck_assert_int_eq(zf_segstore_open(e->segfd, e->fsid, e->ch, opts, &e->st), 0);
}

static void env_close_store(struct env *e)
{
	zf_segstore_close(e->st);
	e->st = NULL;
}

/* scratch dir, optionally a tmpfs of tmpfs_size bytes on <dir>/seg */
static void env_init_ex(struct env *e, const struct zf_segstore_opts *opts, const char *tmpfs)
{
	uint8_t secret[ZF_SECRET_LEN];

	memset(e, 0, sizeof(*e));
	snprintf(e->dir, sizeof(e->dir), "%s/t-XXXXXX", g_root);
	ck_assert_ptr_nonnull(mkdtemp(e->dir));
	snprintf(g_scratch, sizeof(g_scratch), "%s", e->dir);
	snprintf(e->segdir, sizeof(e->segdir), "%s/seg", e->dir);
	ck_assert_int_eq(mkdir(e->segdir, 0700), 0);
	if (tmpfs) {
		ck_assert_int_eq(mount("tmpfs", e->segdir, "tmpfs", 0, tmpfs), 0);
		snprintf(g_mounted, sizeof(g_mounted), "%s", e->segdir);
	}
	e->segfd = open(e->segdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(e->segfd, 0);
	fill_random(e->fsid, sizeof(e->fsid), 0xf51d);
	fill_random(secret, sizeof(secret), 0x5ec2e7);
	ck_assert_int_eq(zf_chunker_new(secret, ZF_CHUNK_MIN, ZF_CHUNK_AVG, ZF_CHUNK_MAX, &e->ch),
			 0);
	env_open_store(e, opts);
}

static void env_init(struct env *e, const struct zf_segstore_opts *opts)
{
	env_init_ex(e, opts, NULL);
}

static void env_fini(struct env *e)
{
	env_close_store(e);
	zf_chunker_free(e->ch);
	close(e->segfd);
	scratch_cleanup();
}

/* ---- super-chunks built by the tests ---- */

enum kind { RANDOM, TEXT };

struct tsc {
	uint8_t *raw;
	uint32_t raw_len;
	uint32_t n;
	struct zf_sc_chunk *chunks;
	uint32_t *starts;	/* raw offset of each chunk */
	struct zf_sc_loc loc;
};

/* raw_len bytes of the given kind cut into n chunks of varied lengths */
static void tsc_make(struct tsc *t, const struct zf_chunker *ch, enum kind kind,
		     uint32_t raw_len, uint32_t n, uint64_t seed)
{
	uint64_t s = seed ^ 0xc0ffee;
	uint32_t i, pos = 0;

	ck_assert(n >= 1 && n <= raw_len);
	memset(t, 0, sizeof(*t));
	t->raw = zf_malloc(raw_len);
	t->raw_len = raw_len;
	t->n = n;
	t->chunks = zf_calloc(n, sizeof(*t->chunks));
	t->starts = zf_calloc(n, sizeof(*t->starts));
	if (kind == RANDOM)
		fill_random(t->raw, raw_len, seed);
	else
		fill_text(t->raw, raw_len, seed);
	for (i = 0; i < n; i++) {
		uint32_t left = raw_len - pos, avg = left / (n - i), len;

		/* between avg/2 and 3*avg/2, leaving >= 1 byte per later chunk */
		len = i == n - 1 ? left : avg / 2 + 1 + (uint32_t)(splitmix64(&s) % (avg + 1));
		if (len > left - (n - 1 - i))
			len = left - (n - 1 - i);
		t->starts[i] = pos;
		t->chunks[i].len = len;
		zf_chunker_id(ch, t->raw + pos, len, &t->chunks[i].id);
		pos += len;
	}
	ck_assert_uint_eq(pos, raw_len);
}

static void tsc_free(struct tsc *t)
{
	free(t->raw);
	free(t->chunks);
	free(t->starts);
}

static uint64_t tsc_append(struct env *e, struct tsc *t)
{
	uint64_t sealed = 12345;

	ck_assert_int_eq(zf_segstore_append(e->st, t->chunks, t->n, t->raw, t->raw_len, &t->loc,
					    &sealed), 0);
	ck_assert_uint_eq(t->loc.raw_len, t->raw_len);
	ck_assert_uint_ne(sealed, 12345);
	return sealed;
}

static void tsc_check_range(struct env *e, const struct tsc *t, uint32_t off, uint32_t len)
{
	uint8_t *buf = zf_malloc(len + 1);

	buf[len] = 0xa5;
	ck_assert_int_eq(zf_segstore_read(e->st, &t->loc, off, len, buf), 0);
	ck_assert_msg(memcmp(buf, t->raw + off, len) == 0, "bytes differ at [%u, +%u)", off, len);
	ck_assert_uint_eq(buf[len], 0xa5);
	free(buf);
}

static void tsc_check(struct env *e, const struct tsc *t)
{
	tsc_check_range(e, t, 0, t->raw_len);
}

/* ---- segment files ---- */

static void seg_name(uint64_t seg, char *buf)
{
	zf_segstore_name(seg, buf, 32);
}

static bool seg_exists(struct env *e, uint64_t seg)
{
	char name[32];
	struct stat sb;

	seg_name(seg, name);
	return fstatat(e->segfd, name, &sb, 0) == 0;
}

static uint64_t seg_size(struct env *e, uint64_t seg)
{
	char name[32];
	struct stat sb;

	seg_name(seg, name);
	ck_assert_int_eq(fstatat(e->segfd, name, &sb, 0), 0);
	return (uint64_t)sb.st_size;
}

static void seg_pread(struct env *e, uint64_t seg, void *buf, size_t len, uint64_t off)
{
	char name[32];
	int fd;

	seg_name(seg, name);
	fd = openat(e->segfd, name, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(zf_pread_full(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static void seg_pwrite(struct env *e, uint64_t seg, const void *buf, size_t len, uint64_t off)
{
	char name[32];
	int fd;

	seg_name(seg, name);
	fd = openat(e->segfd, name, O_WRONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(zf_pwrite_full(fd, buf, len, (off_t)off), 0);
	close(fd);
}

static uint8_t seg_xor(struct env *e, uint64_t seg, uint64_t off, uint8_t mask)
{
	uint8_t b, old;

	seg_pread(e, seg, &b, 1, off);
	old = b;
	b ^= mask;
	seg_pwrite(e, seg, &b, 1, off);
	return old;
}

/* the decoded flags of the super-chunk at loc */
static uint16_t sc_flags(struct env *e, const struct zf_sc_loc *loc)
{
	uint8_t h[ZF_SC_HDR_SIZE];

	seg_pread(e, loc->seg, h, sizeof(h), loc->off);
	ck_assert_uint_eq(zf_get32(h), ZF_SC_MAGIC);
	return zf_get16(h + ZF_SC_FLAGS_OFF);
}

/* recompute the header checksum of the super-chunk at loc after an edit */
static void sc_fix_hdr_csum(struct env *e, const struct zf_sc_loc *loc)
{
	uint8_t *buf = zf_malloc(loc->disk_len);
	uint32_t n;
	uint8_t sum[8];

	seg_pread(e, loc->seg, buf, loc->disk_len, loc->off);
	n = zf_get32(buf + ZF_SC_NCHUNKS_OFF);
	{
		XXH3_state_t *s = XXH3_createState();

		XXH3_64bits_reset(s);
		XXH3_64bits_update(s, buf, ZF_SC_HCSUM_COVER);
		XXH3_64bits_update(s, buf + ZF_SC_HDR_SIZE, (size_t)n * ZF_SC_ENT_SIZE);
		zf_put64(sum, XXH3_64bits_digest(s));
		XXH3_freeState(s);
	}
	seg_pwrite(e, loc->seg, sum, 8, loc->off + ZF_SC_HCSUM_OFF);
	free(buf);
}

struct footer {
	uint64_t seg, nsc, end, raw;
};

/* parse and check the footer of sealed segment seg */
static void seg_footer(struct env *e, uint64_t seg, struct footer *ret)
{
	uint8_t f[ZF_SEG_FTR_SIZE];
	uint64_t size = seg_size(e, seg);

	ck_assert_uint_ge(size, ZF_SEG_HDR_SIZE + ZF_SEG_FTR_SIZE);
	seg_pread(e, seg, f, sizeof(f), size - ZF_SEG_FTR_SIZE);
	ck_assert(memcmp(f, ZF_SEG_FTR_MAGIC, 8) == 0);
	ck_assert_uint_eq(zf_get32(f + 8), ZF_SEG_FTR_VERSION);
	ck_assert_uint_eq(zf_get32(f + 12), 0);
	ck_assert_uint_eq(zf_get64(f + 48), 0);
	ck_assert_uint_eq(zf_get64(f + ZF_SEG_FTR_CSUM_OFF), XXH3_64bits(f, ZF_SEG_FTR_CSUM_OFF));
	ret->seg = zf_get64(f + ZF_SEG_FTR_ID_OFF);
	ret->nsc = zf_get64(f + ZF_SEG_FTR_NSC_OFF);
	ret->end = zf_get64(f + ZF_SEG_FTR_END_OFF);
	ret->raw = zf_get64(f + ZF_SEG_FTR_RAW_OFF);
	ck_assert_uint_eq(ret->seg, seg);
	ck_assert_uint_eq(ret->end, size - ZF_SEG_FTR_SIZE);
}

/* ---- captured log lines ---- */

struct capture {
	char path[PATH_MAX];
	int saved;
};

static void capture_begin(struct capture *c, struct env *e)
{
	int fd;

	snprintf(c->path, sizeof(c->path), "%s/stderr.log", e->dir);
	fd = open(c->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	fflush(stderr);
	c->saved = dup(STDERR_FILENO);
	ck_assert_int_ge(c->saved, 0);
	ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
	close(fd);
}

/* restore stderr; returns what was logged (malloc'd), echoed for the log */
static char *capture_end(struct capture *c)
{
	size_t len;
	void *buf;
	char *s;
	int dirfd;

	dup2(c->saved, STDERR_FILENO);
	close(c->saved);
	dirfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_eq(zf_read_file(dirfd, c->path + 1, &buf, &len), 0);
	close(dirfd);
	unlink(c->path);
	s = buf;
	s[len] = 0;
	fprintf(stderr, "%s", s);
	return s;
}

/* a read and a verify of loc both fail with -EIO and log `what` + location */
static void expect_eio(struct env *e, const struct zf_sc_loc *loc, const char *what)
{
	char name[32], where[64];
	struct capture c;
	uint8_t *buf = zf_malloc(loc->raw_len);
	char *log;
	int r1, r2;

	seg_name(loc->seg, name);
	snprintf(where, sizeof(where), "at offset %" PRIu64 ":", loc->off);
	zf_segstore_cache_drop(e->st);
	capture_begin(&c, e);
	r1 = zf_segstore_read(e->st, loc, 0, loc->raw_len, buf);
	r2 = zf_segstore_verify(e->st, loc, NULL, NULL, NULL);
	log = capture_end(&c);
	ck_assert_int_eq(r1, -EIO);
	ck_assert_int_eq(r2, -EIO);
	ck_assert_msg(strstr(log, name), "log does not name '%s': %s", name, log);
	ck_assert_msg(strstr(log, where), "log does not say '%s': %s", where, log);
	if (what)
		ck_assert_msg(strstr(log, what), "log does not say '%s': %s", what, log);
	free(log);
	free(buf);
}

/* ---- tests ---- */

START_TEST(test_roundtrip)
{
	struct zf_segstore_stats s;
	struct tsc text, rnd, tiny;
	struct zf_sc_chunk *table;
	struct env e;
	uint64_t seed = 7;
	uint32_t i, n;

	env_init(&e, NULL);
	tsc_make(&text, e.ch, TEXT, 1 * MIB + 123, 7, 1);
	tsc_make(&rnd, e.ch, RANDOM, 300 * KIB, 5, 2);
	tsc_make(&tiny, e.ch, RANDOM, 1, 1, 3);
	ck_assert_uint_eq(tsc_append(&e, &text), 0);
	ck_assert_uint_eq(tsc_append(&e, &rnd), 0);
	ck_assert_uint_eq(tsc_append(&e, &tiny), 0);
	ck_assert_int_eq(zf_segstore_sync(e.st), 0);

	/* placement: back to back after the header of segment 1 */
	ck_assert_uint_eq(text.loc.seg, 1);
	ck_assert_uint_eq(text.loc.off, ZF_SEG_HDR_SIZE);
	ck_assert_uint_eq(rnd.loc.seg, 1);
	ck_assert_uint_eq(rnd.loc.off, text.loc.off + text.loc.disk_len);
	ck_assert_uint_eq(tiny.loc.off, rnd.loc.off + rnd.loc.disk_len);
	ck_assert_uint_eq(seg_size(&e, 1), tiny.loc.off + tiny.loc.disk_len);

	/* compressible data shrinks; random data is stored raw */
	ck_assert_uint_lt(text.loc.disk_len, text.raw_len / 4);
	ck_assert_uint_eq(sc_flags(&e, &text.loc), ZF_SC_F_ZSTD);
	ck_assert_uint_eq(rnd.loc.disk_len, ZF_SC_HDR_SIZE + 5 * ZF_SC_ENT_SIZE + rnd.raw_len);
	ck_assert_uint_eq(sc_flags(&e, &rnd.loc), 0);
	ck_assert_uint_eq(tiny.loc.disk_len, ZF_SC_HDR_SIZE + ZF_SC_ENT_SIZE + 1);
	ck_assert_uint_eq(sc_flags(&e, &tiny.loc), 0);

	/* twice: the second round is served by the cache */
	for (int round = 0; round < 2; round++) {
		struct tsc *all[] = { &text, &rnd, &tiny };

		for (unsigned int k = 0; k < 3; k++) {
			struct tsc *t = all[k];

			tsc_check(&e, t);
			tsc_check_range(&e, t, 0, 1);
			tsc_check_range(&e, t, t->raw_len - 1, 1);
			for (i = 1; i < t->n; i++) {
				uint32_t at = t->starts[i];
				uint32_t back = at > 10 ? 10 : at;
				uint32_t len = 20 < t->raw_len - at ? 20 : 1;

				/* across a chunk boundary, and exactly one chunk */
				tsc_check_range(&e, t, at - back, len);
				tsc_check_range(&e, t, t->starts[i - 1], t->chunks[i - 1].len);
			}
			for (i = 0; i < 20; i++) {
				uint64_t r1 = splitmix64(&seed), r2 = splitmix64(&seed);
				uint32_t off = (uint32_t)(r1 % t->raw_len);
				uint32_t len = 1 + (uint32_t)(r2 % (t->raw_len - off));

				tsc_check_range(&e, t, off, len);
			}
		}
	}
	zf_segstore_stats(e.st, &s);
	ck_assert_uint_gt(s.cache_hits, 0);
	ck_assert_uint_eq(s.cache_misses, 3);

	/* an empty read is fine, one past the end is not */
	ck_assert_int_eq(zf_segstore_read(e.st, &rnd.loc, rnd.raw_len, 0, NULL), 0);
	{
		uint8_t b[2];

		ck_assert_int_eq(zf_segstore_read(e.st, &rnd.loc, rnd.raw_len, 1, b), -EINVAL);
		ck_assert_int_eq(zf_segstore_read(e.st, &rnd.loc, rnd.raw_len - 1, 2, b), -EINVAL);
	}

	/* the verified chunk table is the one appended */
	ck_assert_int_eq(zf_segstore_verify(e.st, &text.loc, &table, &n, NULL), 0);
	ck_assert_uint_eq(n, text.n);
	ck_assert(memcmp(table, text.chunks, n * sizeof(*table)) == 0);
	free(table);

	zf_segstore_stats(e.st, &s);
	ck_assert_uint_eq(s.segments, 1);
	ck_assert_uint_eq(s.raw_bytes, text.raw_len + rnd.raw_len + tiny.raw_len);
	ck_assert_uint_eq(s.stored_bytes, text.loc.disk_len + rnd.loc.disk_len + tiny.loc.disk_len);
	ck_assert_uint_eq(s.disk_bytes, seg_size(&e, 1));

	tsc_free(&text);
	tsc_free(&rnd);
	tsc_free(&tiny);
	env_fini(&e);
}
END_TEST

/* reads by chunk check that the table lists the expected chunk there */
START_TEST(test_read_chunk_checks_identity)
{
	struct tsc t;
	struct env e;
	struct zf_sc_chunk want;
	uint8_t *buf;

	env_init(&e, NULL);
	tsc_make(&t, e.ch, TEXT, 512 * KIB, 6, 11);
	ck_assert_uint_eq(tsc_append(&e, &t), 0);
	buf = malloc(t.raw_len);
	want = t.chunks[2];
	ck_assert_int_eq(zf_segstore_read_chunk(e.st, &t.loc, &want, t.starts[2], 10, want.len - 10,
						buf), 0);
	ck_assert_mem_eq(buf, t.raw + t.starts[2] + 10, want.len - 10);
	/* a stale location: another chunk's offset, or another id */
	ck_assert_int_eq(zf_segstore_read_chunk(e.st, &t.loc, &want, t.starts[3], 0, 1, buf), -EIO);
	want.id.b[5] ^= 1;
	ck_assert_int_eq(zf_segstore_read_chunk(e.st, &t.loc, &want, t.starts[2], 0, 1, buf), -EIO);
	want = t.chunks[2];
	want.len--;
	ck_assert_int_eq(zf_segstore_read_chunk(e.st, &t.loc, &want, t.starts[2], 0, 1, buf), -EIO);
	free(buf);
	tsc_free(&t);
	env_fini(&e);
}
END_TEST

START_TEST(test_invalid_args)
{
	struct zf_sc_chunk c[2];
	struct zf_sc_loc loc;
	uint8_t raw[8] = { 0 };
	uint64_t sealed;
	struct env e;

	env_init(&e, NULL);
	memset(c, 0, sizeof(c));
	c[0].len = 4;
	c[1].len = 4;
	ck_assert_int_eq(zf_segstore_append(e.st, c, 0, raw, 8, &loc, &sealed), -EINVAL);
	ck_assert_int_eq(zf_segstore_append(e.st, c, 2, raw, 7, &loc, &sealed), -EINVAL);
	c[1].len = 0;
	ck_assert_int_eq(zf_segstore_append(e.st, c, 2, raw, 4, &loc, &sealed), -EINVAL);
	ck_assert(!seg_exists(&e, 1));
	ck_assert_int_eq(zf_segstore_resume(e.st, 2, ZF_SEG_HDR_SIZE, 5), -EINVAL);
	ck_assert_int_eq(zf_segstore_resume(e.st, 1, 10, 0), -EINVAL);
	env_fini(&e);
}
END_TEST

START_TEST(test_seal_at_limit)
{
	struct zf_segstore_opts o = { .seg_limit = 256 * KIB };
	struct zf_segstore_stats s;
	struct tsc t[6];
	struct footer f;
	uint64_t sealed;
	struct env e;
	int i;

	env_init(&e, &o);
	for (i = 0; i < 6; i++)
		tsc_make(&t[i], e.ch, RANDOM, 100 * KIB, 3, 100 + i);

	/* 64 + 3 x (100 KiB + 108): the third append crosses 256 KiB */
	ck_assert_uint_eq(tsc_append(&e, &t[0]), 0);
	ck_assert_uint_eq(tsc_append(&e, &t[1]), 0);
	ck_assert_uint_eq(tsc_append(&e, &t[2]), 1);
	ck_assert_uint_eq(t[2].loc.seg, 1);
	seg_footer(&e, 1, &f);
	ck_assert_uint_eq(f.nsc, 3);
	ck_assert_uint_eq(f.end, t[2].loc.off + t[2].loc.disk_len);
	ck_assert_uint_eq(f.raw, 3 * 100 * KIB);

	/* the next append opens segment 2 */
	ck_assert_uint_eq(tsc_append(&e, &t[3]), 0);
	ck_assert_uint_eq(t[3].loc.seg, 2);
	ck_assert_uint_eq(t[3].loc.off, ZF_SEG_HDR_SIZE);

	/* explicit seal of a small segment; nothing left to seal after it */
	sealed = 99;
	ck_assert_int_eq(zf_segstore_seal(e.st, &sealed), 0);
	ck_assert_uint_eq(sealed, 2);
	seg_footer(&e, 2, &f);
	ck_assert_uint_eq(f.nsc, 1);
	ck_assert_uint_eq(f.raw, 100 * KIB);
	ck_assert_uint_eq(seg_size(&e, 2), ZF_SEG_HDR_SIZE + t[3].loc.disk_len + ZF_SEG_FTR_SIZE);
	sealed = 99;
	ck_assert_int_eq(zf_segstore_seal(e.st, &sealed), 0);
	ck_assert_uint_eq(sealed, 0);
	ck_assert_int_eq(zf_segstore_sync(e.st), 0);

	ck_assert_uint_eq(tsc_append(&e, &t[4]), 0);
	ck_assert_uint_eq(t[4].loc.seg, 3);
	ck_assert_uint_eq(tsc_append(&e, &t[5]), 0);
	ck_assert_uint_eq(t[5].loc.seg, 3);

	/* sealed segments stay readable, also after reopening */
	for (i = 0; i < 6; i++)
		tsc_check(&e, &t[i]);
	zf_segstore_stats(e.st, &s);
	ck_assert_uint_eq(s.segments, 3);
	ck_assert_uint_eq(s.disk_bytes, seg_size(&e, 1) + seg_size(&e, 2) + seg_size(&e, 3));
	env_close_store(&e);
	env_open_store(&e, &o);
	zf_segstore_stats(e.st, &s);
	ck_assert_uint_eq(s.segments, 3);
	ck_assert_uint_eq(s.disk_bytes, seg_size(&e, 1) + seg_size(&e, 2) + seg_size(&e, 3));
	for (i = 0; i < 6; i++)
		tsc_check(&e, &t[i]);

	for (i = 0; i < 6; i++)
		tsc_free(&t[i]);
	env_fini(&e);
}
END_TEST

START_TEST(test_resume_truncates)
{
	struct zf_segstore_opts o = { .seg_limit = 300 * KIB };
	struct zf_segstore_stats s;
	struct tsc a, b, c, d, x;
	uint64_t end_b, sealed;
	struct footer f;
	struct env e;

	env_init(&e, &o);
	tsc_make(&a, e.ch, TEXT, 200 * KIB, 4, 1);
	tsc_make(&b, e.ch, RANDOM, 120 * KIB, 3, 2);
	tsc_make(&c, e.ch, RANDOM, 200 * KIB, 2, 3);
	tsc_make(&d, e.ch, RANDOM, 50 * KIB, 2, 4);
	tsc_make(&x, e.ch, RANDOM, 10 * KIB, 1, 5);

	/* a, b committed; c seals segment 1 and d opens 2, neither committed */
	ck_assert_uint_eq(tsc_append(&e, &a), 0);
	ck_assert_uint_eq(tsc_append(&e, &b), 0);
	ck_assert_int_eq(zf_segstore_sync(e.st), 0);
	end_b = b.loc.off + b.loc.disk_len;
	ck_assert_uint_eq(tsc_append(&e, &c), 1);
	ck_assert_uint_eq(tsc_append(&e, &d), 0);
	ck_assert_uint_eq(d.loc.seg, 2);
	ck_assert_uint_gt(seg_size(&e, 1), end_b);
	env_close_store(&e);

	env_open_store(&e, &o);
	ck_assert_int_eq(zf_segstore_resume(e.st, 1, end_b, 0), 0);
	ck_assert_uint_eq(seg_size(&e, 1), end_b);
	ck_assert(!seg_exists(&e, 2));
	tsc_check(&e, &a);
	tsc_check(&e, &b);
	/* the cut super-chunk is gone (short read), and so is its segment */
	expect_eio(&e, &c.loc, "truncated super-chunk");
	ck_assert_int_eq(zf_segstore_read(e.st, &d.loc, 0, 1, d.raw), -ENOENT);
	zf_segstore_stats(e.st, &s);
	ck_assert_uint_eq(s.segments, 1);
	ck_assert_uint_eq(s.disk_bytes, end_b);

	/* segment 1 continues where the committed data ends */
	ck_assert_uint_eq(tsc_append(&e, &x), 0);
	ck_assert_uint_eq(x.loc.seg, 1);
	ck_assert_uint_eq(x.loc.off, end_b);
	tsc_check(&e, &x);
	/* the footer counts the super-chunks found by resume plus the new one */
	ck_assert_int_eq(zf_segstore_seal(e.st, &sealed), 0);
	ck_assert_uint_eq(sealed, 1);
	seg_footer(&e, 1, &f);
	ck_assert_uint_eq(f.nsc, 3);
	ck_assert_uint_eq(f.raw, a.raw_len + b.raw_len + x.raw_len);
	ck_assert_uint_eq(f.end, x.loc.off + x.loc.disk_len);
	ck_assert_uint_eq(tsc_append(&e, &d), 0);
	ck_assert_uint_eq(d.loc.seg, 2);
	tsc_check(&e, &d);

	tsc_free(&a);
	tsc_free(&b);
	tsc_free(&c);
	tsc_free(&d);
	tsc_free(&x);
	env_fini(&e);
}
END_TEST

START_TEST(test_resume_sealed_and_empty)
{
	struct zf_segstore_opts o = { .seg_limit = 100 * KIB };
	struct tsc t[4];
	struct env e;
	int i;

	env_init(&e, &o);
	for (i = 0; i < 4; i++)
		tsc_make(&t[i], e.ch, RANDOM, 120 * KIB, 2, 10 + i);
	/* each append fills and seals one segment */
	for (i = 0; i < 4; i++) {
		ck_assert_uint_eq(tsc_append(&e, &t[i]), (uint64_t)i + 1);
		ck_assert_uint_eq(t[i].loc.seg, (uint64_t)i + 1);
	}
	env_close_store(&e);

	/* the log knows segments 1 and 2 as sealed, none open */
	env_open_store(&e, &o);
	ck_assert_int_eq(zf_segstore_resume(e.st, 0, 0, 2), 0);
	ck_assert(seg_exists(&e, 1) && seg_exists(&e, 2));
	ck_assert(!seg_exists(&e, 3) && !seg_exists(&e, 4));
	tsc_check(&e, &t[0]);
	tsc_check(&e, &t[1]);
	ck_assert_uint_eq(tsc_append(&e, &t[2]), 3);
	ck_assert_uint_eq(t[2].loc.seg, 3);
	tsc_check(&e, &t[2]);
	env_close_store(&e);

	/* an empty log: every segment file is uncommitted */
	env_open_store(&e, &o);
	ck_assert_int_eq(zf_segstore_resume(e.st, 0, 0, 0), 0);
	ck_assert(!seg_exists(&e, 1) && !seg_exists(&e, 2) && !seg_exists(&e, 3));
	ck_assert_uint_eq(tsc_append(&e, &t[3]), 1);
	ck_assert_uint_eq(t[3].loc.seg, 1);
	tsc_check(&e, &t[3]);

	for (i = 0; i < 4; i++)
		tsc_free(&t[i]);
	env_fini(&e);
}
END_TEST

START_TEST(test_resume_bad_header)
{
	struct capture c;
	struct tsc t;
	struct env e;
	uint64_t end;
	char *log;

	env_init(&e, NULL);
	tsc_make(&t, e.ch, RANDOM, 10 * KIB, 2, 1);
	tsc_append(&e, &t);
	ck_assert_int_eq(zf_segstore_sync(e.st), 0);
	end = t.loc.off + t.loc.disk_len;
	env_close_store(&e);

	/* a committed end beyond the file: committed data is missing */
	env_open_store(&e, NULL);
	ck_assert_int_eq(zf_segstore_resume(e.st, 1, end + 1, 0), -EBADMSG);
	/* the open segment missing altogether */
	ck_assert_int_eq(zf_segstore_resume(e.st, 7, ZF_SEG_HDR_SIZE, 0), -ENOENT);
	env_close_store(&e);

	seg_xor(&e, 1, 20, 0x01); /* inside the segment id */
	env_open_store(&e, NULL);
	capture_begin(&c, &e);
	ck_assert_int_eq(zf_segstore_resume(e.st, 1, end, 0), -EBADMSG);
	log = capture_end(&c);
	ck_assert_msg(strstr(log, "0000000000000001.zseg"), "log: %s", log);
	ck_assert_msg(strstr(log, "checksum"), "log: %s", log);
	free(log);
	/* nothing was cut from the file */
	ck_assert_uint_eq(seg_size(&e, 1), end);

	tsc_free(&t);
	env_fini(&e);
}
END_TEST

/* flip one byte at each interesting place of both kinds of super-chunk */
START_TEST(test_corruption_detected)
{
	struct tsc text, rnd;
	struct env e;
	int k;

	env_init(&e, NULL);
	tsc_make(&text, e.ch, TEXT, 500 * KIB, 6, 1);
	tsc_make(&rnd, e.ch, RANDOM, 200 * KIB, 4, 2);
	tsc_append(&e, &text);
	tsc_append(&e, &rnd);
	ck_assert_uint_eq(sc_flags(&e, &text.loc), ZF_SC_F_ZSTD);
	ck_assert_uint_eq(sc_flags(&e, &rnd.loc), 0);

	for (k = 0; k < 2; k++) {
		struct tsc *t = k ? &rnd : &text;
		uint32_t tbl = ZF_SC_HDR_SIZE, pay = tbl + t->n * ZF_SC_ENT_SIZE;
		struct {
			uint32_t at;
			const char *what;
		} pos[] = {
			{ 0, "magic" },
			{ 4, "header checksum" },	/* version */
			{ 6, "header checksum" },	/* flags */
			{ 9, "chunk count" },		/* nchunks, high byte */
			{ 8, "header checksum" },	/* nchunks, low byte */
			{ 13, "header checksum" },	/* raw_len */
			{ 17, "header checksum" },	/* stored_len */
			{ 21, "header checksum" },	/* reserved */
			{ 25, "header checksum" },	/* segment id */
			{ 35, "header checksum" },	/* payload checksum */
			{ 47, "header checksum" },	/* header checksum */
			{ tbl + 3, "header checksum" },	/* first chunk id */
			{ tbl + ZF_SC_ENT_SIZE + ZF_SC_ENT_LEN_OFF, "header checksum" },
			{ pay - 1, "header checksum" }, /* last table byte */
			{ pay, "payload checksum" },
			{ pay + (t->loc.disk_len - pay) / 2, "payload checksum" },
			{ t->loc.disk_len - 1, "payload checksum" },
		};

		tsc_check(&e, t);
		for (unsigned int i = 0; i < sizeof(pos) / sizeof(pos[0]); i++) {
			uint64_t at = t->loc.off + pos[i].at;
			uint8_t mask = pos[i].at == 9 ? 0x80 : 0x10;

			seg_xor(&e, 1, at, mask);
			expect_eio(&e, &t->loc, pos[i].what);
			seg_xor(&e, 1, at, mask);
			zf_segstore_cache_drop(e.st);
			tsc_check(&e, t);
		}
	}

	tsc_free(&text);
	tsc_free(&rnd);
	env_fini(&e);
}
END_TEST

/* a changed chunk byte with matching checksums is caught by the re-hash */
START_TEST(test_rehash_catches_chunk_damage)
{
	struct capture c;
	struct tsc t;
	struct env e;
	uint8_t *payload, sum[8];
	uint32_t pay;
	char *log;

	env_init(&e, NULL);
	tsc_make(&t, e.ch, RANDOM, 64 * KIB, 3, 1);
	tsc_append(&e, &t);
	ck_assert_uint_eq(sc_flags(&e, &t.loc), 0);
	tsc_check(&e, &t);

	pay = ZF_SC_HDR_SIZE + t.n * ZF_SC_ENT_SIZE;
	seg_xor(&e, 1, t.loc.off + pay + t.starts[1] + 5, 0x01);
	payload = zf_malloc(t.raw_len);
	seg_pread(&e, 1, payload, t.raw_len, t.loc.off + pay);
	zf_put64(sum, XXH3_64bits(payload, t.raw_len));
	seg_pwrite(&e, 1, sum, 8, t.loc.off + ZF_SC_PCSUM_OFF);
	sc_fix_hdr_csum(&e, &t.loc);

	/* still cached: the verified copy is served */
	tsc_check(&e, &t);
	expect_eio(&e, &t.loc, "chunk 1 (raw offset");
	capture_begin(&c, &e);
	ck_assert_int_eq(zf_segstore_read(e.st, &t.loc, 0, 1, payload), -EIO);
	log = capture_end(&c);
	ck_assert_msg(strstr(log, "hash mismatch") && !strstr(log, "checksum"), "log: %s", log);
	free(log);

	free(payload);
	tsc_free(&t);
	env_fini(&e);
}
END_TEST

START_TEST(test_flags_rejected)
{
	struct tsc t;
	struct env e;
	uint8_t fl[2];

	env_init(&e, NULL);
	tsc_make(&t, e.ch, RANDOM, 16 * KIB, 2, 1);
	tsc_append(&e, &t);

	/* the reserved encryption bit, with a valid header checksum */
	zf_put16(fl, ZF_SC_F_ENCRYPTED);
	seg_pwrite(&e, 1, fl, 2, t.loc.off + ZF_SC_FLAGS_OFF);
	sc_fix_hdr_csum(&e, &t.loc);
	expect_eio(&e, &t.loc, "encrypted");

	/* an unknown flag */
	zf_put16(fl, 0x0100);
	seg_pwrite(&e, 1, fl, 2, t.loc.off + ZF_SC_FLAGS_OFF);
	sc_fix_hdr_csum(&e, &t.loc);
	expect_eio(&e, &t.loc, "unknown super-chunk flags");

	/* back to raw: readable again */
	zf_put16(fl, 0);
	seg_pwrite(&e, 1, fl, 2, t.loc.off + ZF_SC_FLAGS_OFF);
	sc_fix_hdr_csum(&e, &t.loc);
	zf_segstore_cache_drop(e.st);
	tsc_check(&e, &t);

	tsc_free(&t);
	env_fini(&e);
}
END_TEST

/* a super-chunk must be read at the location of the segment it names */
START_TEST(test_misplaced_super_chunk)
{
	struct zf_sc_loc bad;
	struct tsc a, b;
	struct env e;
	uint8_t *buf;

	env_init(&e, NULL);
	tsc_make(&a, e.ch, RANDOM, 16 * KIB, 2, 1);
	tsc_make(&b, e.ch, RANDOM, 16 * KIB, 2, 2);
	tsc_append(&e, &a);
	ck_assert_int_eq(zf_segstore_seal(e.st, NULL), 0);
	tsc_append(&e, &b);
	ck_assert_uint_eq(b.loc.seg, 2);
	ck_assert_uint_eq(b.loc.off, a.loc.off);

	/* copy segment 1's super-chunk over segment 2's */
	buf = zf_malloc(a.loc.disk_len);
	seg_pread(&e, 1, buf, a.loc.disk_len, a.loc.off);
	seg_pwrite(&e, 2, buf, a.loc.disk_len, b.loc.off);
	expect_eio(&e, &b.loc, "belongs to segment 0000000000000001");

	/* locations that disagree with the super-chunk's own lengths */
	bad = a.loc;
	bad.raw_len--;
	expect_eio(&e, &bad, "do not match its location");
	bad = a.loc;
	bad.disk_len++;
	expect_eio(&e, &bad, "do not match its location");
	/* ...also when the super-chunk is cached */
	tsc_check(&e, &a);
	bad = a.loc;
	bad.raw_len--;
	ck_assert_int_eq(zf_segstore_read(e.st, &bad, 0, 1, buf), -EIO);

	free(buf);
	tsc_free(&a);
	tsc_free(&b);
	env_fini(&e);
}
END_TEST

START_TEST(test_foreign_fsid)
{
	struct capture c;
	struct tsc t;
	struct env e;
	uint64_t end;
	uint8_t b;
	char *log;

	env_init(&e, NULL);
	tsc_make(&t, e.ch, RANDOM, 16 * KIB, 2, 1);
	tsc_append(&e, &t);
	ck_assert_int_eq(zf_segstore_sync(e.st), 0);
	end = t.loc.off + t.loc.disk_len;
	env_close_store(&e);

	e.fsid[3] ^= 1;
	env_open_store(&e, NULL);
	capture_begin(&c, &e);
	ck_assert_int_eq(zf_segstore_read(e.st, &t.loc, 0, 1, &b), -EIO);
	ck_assert_int_eq(zf_segstore_resume(e.st, 1, end, 0), -EBADMSG);
	log = capture_end(&c);
	ck_assert_msg(strstr(log, "another filesystem") && strstr(log, "0000000000000001.zseg"),
		      "log: %s", log);
	free(log);
	env_close_store(&e);

	e.fsid[3] ^= 1;
	env_open_store(&e, NULL);
	ck_assert_int_eq(zf_segstore_resume(e.st, 1, end, 0), 0);
	tsc_check(&e, &t);

	tsc_free(&t);
	env_fini(&e);
}
END_TEST

START_TEST(test_cache_bound)
{
	struct zf_segstore_opts o = { .sc_cache_bytes = 1 * MIB };
	struct zf_segstore_stats s0, s;
	struct tsc t[10], big;
	struct env e;
	int i;

	env_init(&e, &o);
	/* 200 KiB each: five fit in 1 MiB with their overhead, six do not */
	for (i = 0; i < 10; i++) {
		tsc_make(&t[i], e.ch, RANDOM, 200 * KIB, 2, 50 + i);
		tsc_append(&e, &t[i]);
	}
	tsc_make(&big, e.ch, TEXT, 3 * MIB / 2, 8, 60);
	tsc_append(&e, &big);

	zf_segstore_stats(e.st, &s0);
	for (i = 0; i < 10; i++)
		tsc_check(&e, &t[i]);
	zf_segstore_stats(e.st, &s);
	ck_assert_uint_eq(s.cache_misses - s0.cache_misses, 10);
	ck_assert_uint_eq(s.cache_hits - s0.cache_hits, 0);

	/* the five most recent are cached ... */
	for (i = 9; i >= 5; i--)
		tsc_check(&e, &t[i]);
	zf_segstore_stats(e.st, &s);
	ck_assert_uint_eq(s.cache_hits - s0.cache_hits, 5);
	ck_assert_uint_eq(s.cache_misses - s0.cache_misses, 10);
	/* ... and no more: 4 was evicted, loading it evicts 9 (LRU), not 5 */
	tsc_check(&e, &t[4]);
	tsc_check(&e, &t[5]);
	tsc_check(&e, &t[9]);
	zf_segstore_stats(e.st, &s);
	ck_assert_uint_eq(s.cache_hits - s0.cache_hits, 6);
	ck_assert_uint_eq(s.cache_misses - s0.cache_misses, 12);

	/* a super-chunk larger than the whole cache is served, never cached */
	tsc_check(&e, &big);
	tsc_check_range(&e, &big, 1000, 5000);
	tsc_check(&e, &t[7]);
	zf_segstore_stats(e.st, &s);
	ck_assert_uint_eq(s.cache_misses - s0.cache_misses, 14);
	ck_assert_uint_eq(s.cache_hits - s0.cache_hits, 7);

	/* cache_drop empties it */
	zf_segstore_cache_drop(e.st);
	tsc_check(&e, &t[7]);
	zf_segstore_stats(e.st, &s);
	ck_assert_uint_eq(s.cache_misses - s0.cache_misses, 15);

	for (i = 0; i < 10; i++)
		tsc_free(&t[i]);
	tsc_free(&big);
	env_fini(&e);
}
END_TEST

START_TEST(test_missing_segment)
{
	struct zf_sc_loc loc;
	struct tsc t;
	struct env e;
	uint8_t b;

	env_init(&e, NULL);
	tsc_make(&t, e.ch, RANDOM, 16 * KIB, 2, 1);
	tsc_append(&e, &t);
	tsc_check(&e, &t);

	loc = t.loc;
	loc.seg = 42;
	ck_assert_int_eq(zf_segstore_read(e.st, &loc, 0, 1, &b), -ENOENT);
	ck_assert_int_eq(zf_segstore_verify(e.st, &loc, NULL, NULL, NULL), -ENOENT);

	/* removed behind the store's back: noticed once the caches are dropped */
	ck_assert_int_eq(zf_segstore_seal(e.st, NULL), 0);
	ck_assert_int_eq(unlinkat(e.segfd, "0000000000000001.zseg", 0), 0);
	zf_segstore_cache_drop(e.st);
	ck_assert_int_eq(zf_segstore_read(e.st, &t.loc, 0, 1, &b), -ENOENT);

	tsc_free(&t);
	env_fini(&e);
}
END_TEST

/* the bucket's copy in the healing test: a pristine copy of the segment */
static int pristine_fetch(void *ctx, const struct zf_sc_loc *loc, void *buf, int refetch)
{
	int fd = *(int *)ctx;

	(void)refetch;
	return zf_pread_full(fd, buf, loc->disk_len, (off_t)loc->off) == (ssize_t)loc->disk_len
		       ? 0
		       : -EIO;
}

/*
 * A damaged segment header costs nothing but a line (super-chunks verify on
 * their own) and is rewritten by fix_header; a damaged super-chunk is read
 * from the bucket's copy and written back over the damage, except by a
 * read-only store (fsck), which only reports it.
 */
START_TEST(test_damaged_header_and_healing)
{
	struct zf_segstore_opts ro = { .readonly = 1 };
	struct zf_segstore_stats ss;
	struct tsc t;
	struct env e;
	struct zf_seg_err err;
	uint64_t size;
	int pfd;
	char path[PATH_MAX + 64];
	uint8_t *a, *b;
	size_t alen, blen;

	env_init(&e, NULL);
	tsc_make(&t, e.ch, TEXT, 300 * KIB, 4, 1);
	tsc_append(&e, &t);
	ck_assert_int_eq(zf_segstore_seal(e.st, NULL), 0);
	env_close_store(&e);
	snprintf(path, sizeof(path), "%s/0000000000000001.zseg", e.segdir);
	ck_assert_int_eq(zf_read_file(AT_FDCWD, path, (void **)&a, &alen), 0);
	snprintf(path, sizeof(path), "%s/pristine", e.dir);
	pfd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(pfd, 0);
	ck_assert_int_eq(write(pfd, a, alen), (ssize_t)alen);

	/* header: checksum broken, data still served; then rewritten */
	seg_xor(&e, 1, 20, 0x01);
	env_open_store(&e, NULL);
	tsc_check(&e, &t);
	ck_assert_int_eq(zf_segstore_seg_check(e.st, 1, &size, &err), -EUCLEAN);
	ck_assert_msg(strstr(err.why, "checksum"), "%s", err.why);
	ck_assert_int_eq(zf_segstore_seg_fix_header(e.st, 1), 0);
	ck_assert_int_eq(zf_segstore_seg_check(e.st, 1, &size, NULL), 0);
	ck_assert_uint_eq(size, alen);

	/* payload: EIO without a bucket */
	seg_xor(&e, 1, t.loc.off + t.loc.disk_len - 5, 0x10);
	zf_segstore_cache_drop(e.st);
	expect_eio(&e, &t.loc, "payload checksum");
	env_close_store(&e);

	/* read-only (fsck): reported, not healed */
	env_open_store(&e, &ro);
	zf_segstore_set_fetch(e.st, pristine_fetch, &pfd);
	expect_eio(&e, &t.loc, "payload checksum");
	env_close_store(&e);

	/* writable: served from the bucket's copy and healed in place */
	env_open_store(&e, NULL);
	zf_segstore_set_fetch(e.st, pristine_fetch, &pfd);
	tsc_check(&e, &t);
	zf_segstore_stats(e.st, &ss);
	ck_assert_uint_eq(ss.healed, 1);
	snprintf(path, sizeof(path), "%s/0000000000000001.zseg", e.segdir);
	ck_assert_int_eq(zf_read_file(AT_FDCWD, path, (void **)&b, &blen), 0);
	ck_assert_uint_eq(blen, alen);
	ck_assert_int_eq(memcmp(a, b, alen), 0);

	close(pfd);
	free(a);
	free(b);
	tsc_free(&t);
	env_fini(&e);
}
END_TEST

/* fill a file named name in dirfd until the file system is full */
static void fill_disk(int dirfd, const char *name)
{
	static uint8_t buf[4096];
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int r;

	ck_assert_int_ge(fd, 0);
	memset(buf, 0x5a, sizeof(buf));
	do
		r = zf_write_full(fd, buf, sizeof(buf));
	while (r == 0);
	ck_assert_int_eq(r, -ENOSPC);
	close(fd);
}

/*
 * A failed append leaves the segment byte for byte as it was, and the store
 * keeps working once there is room again. use_tmpfs selects how the
 * failure is made: a full tmpfs (-ENOSPC) or RLIMIT_FSIZE (-EFBIG).
 */
static void append_failure_scenario(bool use_tmpfs)
{
	struct zf_segstore_stats s0, s;
	struct tsc t[16], x;
	struct rlimit old_lim, lim;
	int expect = use_tmpfs ? -ENOSPC : -EFBIG;
	uint64_t before, sealed, h0[8], h1[8];
	struct zf_sc_loc loc;
	struct env e;
	int i, n, r = 0;

	env_init_ex(&e, NULL, use_tmpfs ? "size=2m" : NULL);
	if (use_tmpfs) {
		/* leave 640 KiB of the 2 MiB: room for four 150 KiB appends */
		int fd = openat(e.segfd, "filler", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(posix_fallocate(fd, 0, 2 * MIB - 640 * KIB), 0);
		close(fd);
	} else {
		signal(SIGXFSZ, SIG_IGN);
		ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old_lim), 0);
		lim = old_lim;
		lim.rlim_cur = 600 * KIB;
		ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	}

	/* 150 KiB super-chunks until one does not fit */
	for (n = 0; n < 16; n++) {
		tsc_make(&t[n], e.ch, RANDOM, 150 * KIB, 3, 200 + n);
		before = seg_exists(&e, 1) ? seg_size(&e, 1) : 0;
		zf_segstore_stats(e.st, &s0);
		r = zf_segstore_append(e.st, t[n].chunks, t[n].n, t[n].raw, t[n].raw_len, &loc,
				       &sealed);
		if (r < 0)
			break;
		t[n].loc = loc;
	}
	ck_assert_msg(r == expect, "append returned %d, expected %d", r, expect);
	ck_assert_int_ge(n, 2);
	/* exactly as before: size, content of the tail, counters */
	ck_assert_uint_eq(seg_size(&e, 1), before);
	seg_pread(&e, 1, h0, sizeof(h0), before - sizeof(h0));
	zf_segstore_stats(e.st, &s);
	ck_assert_uint_eq(s.disk_bytes, s0.disk_bytes);
	ck_assert_uint_eq(s.stored_bytes, s0.stored_bytes);
	for (i = 0; i < n; i++)
		tsc_check(&e, &t[i]);

	/* make room: the same append now lands at the old end */
	if (use_tmpfs)
		ck_assert_int_eq(unlinkat(e.segfd, "filler", 0), 0);
	else
		ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old_lim), 0);
	tsc_append(&e, &t[n]);
	ck_assert_uint_eq(t[n].loc.seg, 1);
	ck_assert_uint_eq(t[n].loc.off, before);
	seg_pread(&e, 1, h1, sizeof(h1), before - sizeof(h1));
	ck_assert(memcmp(h0, h1, sizeof(h0)) == 0);
	ck_assert_int_eq(zf_segstore_sync(e.st), 0);
	for (i = 0; i <= n; i++)
		tsc_check(&e, &t[i]);

	/* a failure in a brand-new segment leaves no segment file behind */
	ck_assert_int_eq(zf_segstore_seal(e.st, &sealed), 0);
	ck_assert_uint_eq(sealed, 1);
	if (use_tmpfs) {
		fill_disk(e.segfd, "filler");
	} else {
		lim = old_lim;
		lim.rlim_cur = 100 * KIB;
		ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	}
	tsc_make(&x, e.ch, RANDOM, 150 * KIB, 2, 300);
	ck_assert_int_eq(zf_segstore_append(e.st, x.chunks, x.n, x.raw, x.raw_len, &loc, &sealed),
			 expect);
	ck_assert(!seg_exists(&e, 2));
	if (use_tmpfs)
		ck_assert_int_eq(unlinkat(e.segfd, "filler", 0), 0);
	else
		ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old_lim), 0);
	tsc_append(&e, &x);
	ck_assert_uint_eq(x.loc.seg, 2);
	ck_assert_uint_eq(x.loc.off, ZF_SEG_HDR_SIZE);
	tsc_check(&e, &x);

	for (i = 0; i <= n; i++)
		tsc_free(&t[i]);
	tsc_free(&x);
	if (!use_tmpfs)
		signal(SIGXFSZ, SIG_DFL);
	env_fini(&e);
}

START_TEST(test_append_enospc)
{
	char dir[sizeof(g_root) + 16];
	bool can_mount;
	int err;

	/* root in a container may still lack CAP_SYS_ADMIN: probe first */
	snprintf(dir, sizeof(dir), "%s/probe-XXXXXX", g_root);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	can_mount = mount("tmpfs", dir, "tmpfs", 0, "size=64k") == 0;
	err = errno;
	if (can_mount)
		umount2(dir, MNT_DETACH);
	rmdir(dir);
	if (!can_mount)
		fprintf(stderr, "check_segstore: cannot mount a tmpfs (%s): ENOSPC simulated "
				"with RLIMIT_FSIZE instead\n", strerror(err));
	append_failure_scenario(can_mount);
}
END_TEST

START_TEST(test_append_efbig)
{
	append_failure_scenario(false);
}
END_TEST

/* ---- readers running while the appender appends and seals ---- */

#define CONC_SC 48
#define CONC_READERS 4

struct conc {
	struct env *e;
	struct tsc t[CONC_SC];
	int published;		/* t[0..published) have a location */
	pthread_mutex_t lock;
	int errors;
	uint64_t seed;
};

static void *conc_reader(void *arg)
{
	struct conc *c = arg;
	uint64_t s = __atomic_fetch_add(&c->seed, 1000, __ATOMIC_RELAXED);
	uint8_t *buf = zf_malloc(64 * KIB);
	int iter;

	for (iter = 0; iter < 3000; iter++) {
		int n = __atomic_load_n(&c->published, __ATOMIC_ACQUIRE);
		const struct tsc *t;
		uint32_t off, len;

		if (n == 0)
			continue;
		t = &c->t[splitmix64(&s) % (uint64_t)n];
		off = (uint32_t)(splitmix64(&s) % t->raw_len);
		len = 1 + (uint32_t)(splitmix64(&s) % (t->raw_len - off));
		if (zf_segstore_read(c->e->st, &t->loc, off, len, buf) != 0 ||
		    memcmp(buf, t->raw + off, len) != 0)
			__atomic_fetch_add(&c->errors, 1, __ATOMIC_RELAXED);
		if (iter % 500 == 499)
			zf_segstore_cache_drop(c->e->st);
	}
	free(buf);
	return NULL;
}

START_TEST(test_concurrent_readers)
{
	struct zf_segstore_opts o = { .seg_limit = 256 * KIB, .sc_cache_bytes = 300 * KIB };
	pthread_t th[CONC_READERS];
	struct conc *c = zf_calloc(1, sizeof(*c));
	struct env e;
	int i;

	env_init(&e, &o);
	c->e = &e;
	c->seed = 1;
	for (i = 0; i < CONC_SC; i++)
		tsc_make(&c->t[i], e.ch, i % 3 ? RANDOM : TEXT, 16 * KIB + 997 * (uint32_t)i,
			 1 + i % 4, 400 + i);
	tsc_append(&e, &c->t[0]);
	__atomic_store_n(&c->published, 1, __ATOMIC_RELEASE);
	for (i = 0; i < CONC_READERS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, conc_reader, c), 0);
	for (i = 1; i < CONC_SC; i++) {
		tsc_append(&e, &c->t[i]);
		if (i % 7 == 0)
			ck_assert_int_eq(zf_segstore_sync(e.st), 0);
		__atomic_store_n(&c->published, i + 1, __ATOMIC_RELEASE);
	}
	for (i = 0; i < CONC_READERS; i++)
		pthread_join(th[i], NULL);
	ck_assert_int_eq(c->errors, 0);
	ck_assert_uint_gt(c->t[CONC_SC - 1].loc.seg, 3);
	for (i = 0; i < CONC_SC; i++) {
		tsc_check(&e, &c->t[i]);
		tsc_free(&c->t[i]);
	}
	free(c);
	env_fini(&e);
}
END_TEST

/*
 * Golden image of format version 1: one raw super-chunk with two chunks
 * (ids are placeholders: the store does not hash on append) in segment 1
 * of fsid 00 01 .. 0f, sealed. Written by hand from docs/FORMAT.md, the
 * checksums computed with libxxhash alone. Any change here is a format
 * change.
 */
static const uint8_t golden[] = {
	/* segment header */
	0x5a, 0x46, 0x53, 0x45, 0x47, 0x4d, 0x54, 0x31, 0x01, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b,
	0x0c, 0x0d, 0x0e, 0x0f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x33, 0x9c, 0x5e, 0xa9, 0xdf, 0x31, 0x0d, 0x6a, /* XXH3-64 of 0..55 */
	/* super-chunk header */
	0x5a, 0x46, 0x53, 0x43, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,
	0x0d, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x16, 0x36, 0xf8, 0xdd, 0x74, 0xb4, 0x54, 0x81, /* XXH3-64 of the payload */
	0x47, 0x5d, 0x17, 0xb7, 0x4c, 0xee, 0x37, 0x23, /* of 0..39 + table */
	/* chunk table */
	0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
	0x11, 0x11, 0x11, 0x11, 0x06, 0x00, 0x00, 0x00,
	0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
	0x22, 0x22, 0x22, 0x22, 0x07, 0x00, 0x00, 0x00,
	/* payload: "zerofs golden" */
	0x7a, 0x65, 0x72, 0x6f, 0x66, 0x73, 0x20, 0x67, 0x6f, 0x6c, 0x64, 0x65,
	0x6e,
	/* footer: 1 super-chunk, data end 0xa5, 13 raw bytes */
	0x5a, 0x46, 0x53, 0x45, 0x47, 0x45, 0x4e, 0x44, 0x01, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xa5, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x2c, 0x72, 0x14, 0x58, 0x19, 0xaf, 0xd1, 0x4c, /* XXH3-64 of 0..55 */
};

START_TEST(test_golden_format)
{
	static const char payload[] = "zerofs golden";
	struct zf_sc_chunk ch[2];
	struct zf_sc_loc loc;
	uint64_t sealed;
	struct env e;
	uint8_t *buf;
	int i;

	env_init(&e, NULL);
	env_close_store(&e);
	for (i = 0; i < 16; i++)
		e.fsid[i] = (uint8_t)i;
	env_open_store(&e, NULL);
	memset(ch[0].id.b, 0x11, ZF_CHUNK_ID_LEN);
	ch[0].len = 6;
	memset(ch[1].id.b, 0x22, ZF_CHUNK_ID_LEN);
	ch[1].len = 7;
	ck_assert_int_eq(zf_segstore_append(e.st, ch, 2, payload, 13, &loc, &sealed), 0);
	ck_assert_uint_eq(loc.disk_len, 48 + 2 * 20 + 13);
	ck_assert_int_eq(zf_segstore_seal(e.st, &sealed), 0);
	ck_assert_uint_eq(seg_size(&e, 1), sizeof(golden));
	buf = zf_malloc(sizeof(golden));
	seg_pread(&e, 1, buf, sizeof(golden), 0);
	for (i = 0; i < (int)sizeof(golden); i++)
		ck_assert_msg(buf[i] == golden[i], "byte %d is 0x%02x, golden 0x%02x", i, buf[i],
			      golden[i]);
	free(buf);
	env_fini(&e);
}
END_TEST

static Suite *segstore_suite(void)
{
	Suite *s = suite_create("segstore");
	TCase *tc = tcase_create("core");

	/* generous: sanitizer builds on a shared 2-core machine */
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_read_chunk_checks_identity);
	tcase_add_test(tc, test_invalid_args);
	tcase_add_test(tc, test_seal_at_limit);
	tcase_add_test(tc, test_resume_truncates);
	tcase_add_test(tc, test_resume_sealed_and_empty);
	tcase_add_test(tc, test_resume_bad_header);
	tcase_add_test(tc, test_corruption_detected);
	tcase_add_test(tc, test_rehash_catches_chunk_damage);
	tcase_add_test(tc, test_flags_rejected);
	tcase_add_test(tc, test_misplaced_super_chunk);
	tcase_add_test(tc, test_foreign_fsid);
	tcase_add_test(tc, test_cache_bound);
	tcase_add_test(tc, test_missing_segment);
	tcase_add_test(tc, test_append_enospc);
	tcase_add_test(tc, test_append_efbig);
	tcase_add_test(tc, test_concurrent_readers);
	tcase_add_test(tc, test_golden_format);
	tcase_add_test(tc, test_damaged_header_and_healing);
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
	snprintf(g_root, sizeof(g_root), "%s/zf-check-segstore-XXXXXX", tmp);
	if (!mkdtemp(g_root)) {
		fprintf(stderr, "check_segstore: cannot create '%s': %s\n", g_root,
			strerror(errno));
		return EXIT_FAILURE;
	}
	sr = srunner_create(segstore_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	rm_tree(g_root);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
