/*
 * tests/unit/check_fs.c - unit tests of the storage core: metadata log
 * framing and replay, checkpoints, namespace, data path, dedup and
 * compression ratios, corruption detection, crash reclaim.
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zstd.h>

#include "common/endian.h"
#include "common/log.h"
#include "storage/meta_format.h"
#include "storage/mlog.h"
#include "zf_test.h"

static const struct zf_mkfs_opts small_mkfs = {
	.chunk_min = 1024, .chunk_avg = 4096, .chunk_max = 16384, .seg_limit = 256 << 10
};

static struct zf_fs *t_newfs(const char *dir, const struct zf_mkfs_opts *mo,
			     const struct zf_open_opts *oo)
{
	struct zf_fs *fs;

	ck_assert_int_eq(zf_fs_mkfs(dir, mo), 0);
	ck_assert_int_eq(zf_fs_open(dir, oo, &fs), 0);
	return fs;
}

static uint64_t t_create(struct zf_fs *fs, uint64_t parent, const char *name)
{
	struct zf_attr a;

	ck_assert_int_eq(zf_fs_mknod(fs, parent, name, S_IFREG | 0644, 0, 0, 0, &a), 0);
	return a.ino;
}

/* ------------------------------------------------------------ log framing */

START_TEST(frame_roundtrip_and_bitflips)
{
	struct zf_buf b = { 0 };
	uint8_t payload[300];
	struct zf_frame f;
	uint64_t seed = 1;
	size_t i, bit;

	t_fill(payload, sizeof(payload), 7);
	zf_frame_put(&b, ZF_REC_INODE, ZF_REC_F_TXN_END, 42, payload, sizeof(payload));
	ck_assert_int_eq(zf_frame_parse(b.p, b.len, &f), (ssize_t)b.len);
	ck_assert_uint_eq(f.type, ZF_REC_INODE);
	ck_assert_uint_eq(f.flags, ZF_REC_F_TXN_END);
	ck_assert_uint_eq(f.seq, 42);
	ck_assert_uint_eq(f.len, sizeof(payload));
	ck_assert_mem_eq(f.payload, payload, sizeof(payload));
	/* a truncated frame is "not yet complete", never valid */
	for (i = 0; i < b.len; i++)
		ck_assert_int_eq(zf_frame_parse(b.p, i, &f), 0);
	/* every single-bit flip at every byte is detected */
	for (i = 0; i < b.len; i++) {
		for (bit = 0; bit < 8; bit++) {
			b.p[i] ^= 1u << bit;
			ck_assert_msg(zf_frame_parse(b.p, b.len, &f) <= 0,
				      "flip of bit %zu at byte %zu not detected", bit, i);
			b.p[i] ^= 1u << bit;
		}
	}
	/* and random multi-byte damage */
	for (i = 0; i < 2000; i++) {
		size_t at = t_rand(&seed) % b.len;
		uint8_t old = b.p[at], nv = (uint8_t)t_rand(&seed) | 1;

		b.p[at] ^= nv;
		ck_assert(zf_frame_parse(b.p, b.len, &f) <= 0);
		b.p[at] = old;
	}
	zf_buf_free(&b);
}
END_TEST

/* ---------------------------------------------- torn tails and corruption */

static char *find_log(const char *dir)
{
	char meta[512], *best = NULL;
	struct dirent *e;
	DIR *d;

	snprintf(meta, sizeof(meta), "%s/meta", dir);
	d = opendir(meta);
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "log.", 4) || strlen(e->d_name) != 20)
			continue;
		if (!best || strcmp(e->d_name, best + strlen(meta) + 1) > 0) {
			free(best);
			best = malloc(strlen(meta) + 32);
			sprintf(best, "%s/%s", meta, e->d_name);
		}
	}
	closedir(d);
	ck_assert_ptr_nonnull(best);
	return best;
}

static off_t file_size(const char *path)
{
	struct stat st;

	ck_assert_int_eq(stat(path, &st), 0);
	return st.st_size;
}

static void set_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_TRUNC);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

START_TEST(log_truncated_at_every_offset)
{
	struct zf_open_opts big = { .ckpt_bytes = 1ull << 40 };
	struct zf_open_opts ro = { .readonly = 1 };
	struct zf_open_opts salv = { .readonly = 1, .salvage = 1 };
	struct zf_open_opts salv_rw = { .salvage = 1 };
	char *dir = t_tmpdir(), *logp, *states[16], markp[512];
	uint8_t *mark;
	size_t mlen;
	off_t sizes[16];
	struct zf_fs *fs;
	uint8_t data[20000], *orig;
	size_t olen, k, nstates = 0;
	uint64_t a, b, d;
	struct zf_attr at;
	off_t t;

	t_fill(data, sizeof(data), 3);
	fs = t_newfs(dir, &small_mkfs, &big);
	logp = find_log(dir);
	/* each step is one or more transactions, made durable by a sync */
	a = t_create(fs, ZF_ROOT_INO, "a");
	ck_assert_int_eq(zf_fs_write(fs, a, data, 5000, 0), 5000);
	ck_assert_int_eq(zf_fs_sync(fs), 0);
	states[nstates] = t_dump(fs);
	sizes[nstates++] = file_size(logp);
	/* from here every step is exactly one visible transaction */
#define STEP(op)                                                               \
	do {                                                                   \
		op;                                                            \
		ck_assert_int_eq(zf_fs_sync(fs), 0);                           \
		states[nstates] = t_dump(fs);                                  \
		sizes[nstates++] = file_size(logp);                            \
	} while (0)
	STEP(ck_assert_int_eq(zf_fs_mkdir(fs, ZF_ROOT_INO, "d", 0755, 1, 2, &at), 0); d = at.ino);
	STEP(b = t_create(fs, d, "b"));
	STEP(ck_assert_int_eq(zf_fs_write(fs, b, data, sizeof(data), 100), (ssize_t)sizeof(data)));
	STEP(ck_assert_int_eq(zf_fs_setxattr(fs, b, "user.k", "v", 1, 0), 0));
	STEP(ck_assert_int_eq(zf_fs_rename(fs, ZF_ROOT_INO, "a", d, "b", 0), 0));
	STEP(ck_assert_int_eq(zf_fs_link(fs, a, ZF_ROOT_INO, "a2", NULL), 0));
#undef STEP
	zf_fs_abandon(fs);

	/* the cuts below are torn commits only without the durable mark
	 * (as if nothing had been synced): set it aside until the end */
	snprintf(markp, sizeof(markp), "%s/meta/%s", dir, ZF_SYNCED_NAME);
	ck_assert_int_eq(zf_read_file(AT_FDCWD, markp, (void **)&mark, &mlen), 0);
	ck_assert_int_eq(unlink(markp), 0);
	ck_assert_int_eq(zf_read_file(AT_FDCWD, logp, (void **)&orig, &olen), 0);
	ck_assert_uint_eq(olen, sizes[nstates - 1]);
	/* every cut inside the records after the first state */
	for (t = sizes[0]; t <= (off_t)olen; t++) {
		char *got;

		for (k = nstates - 1; sizes[k] > t; k--)
			;
		set_file(logp, orig, t);
		ck_assert_msg(zf_fs_open(dir, &ro, &fs) == 0, "open failed with log cut at %ld",
			      (long)t);
		got = t_dump(fs);
		if (strcmp(got, states[k]))
			fprintf(stderr, "cut %ld expected state %zu:\n%s\ngot:\n%s\n", (long)t, k,
				states[k], got);
		ck_assert_msg(strcmp(got, states[k]) == 0, "log cut at %ld: state differs", (long)t);
		t_check_clean(fs);
		free(got);
		zf_fs_close(fs);
	}
	/* a flipped byte before the tail is corruption, not a torn tail */
	set_file(logp, orig, olen);
	orig[sizes[0] + 40] ^= 0x10;
	set_file(logp, orig, olen);
	ck_assert_int_eq(zf_fs_open(dir, &ro, &fs), -EBADMSG);
	/* a flip in the very last record is a torn tail: dropped */
	orig[sizes[0] + 40] ^= 0x10;
	orig[olen - 3] ^= 0x10;
	set_file(logp, orig, olen);
	ck_assert_int_eq(zf_fs_open(dir, &ro, &fs), 0);
	{
		char *got = t_dump(fs);

		ck_assert_str_eq(got, states[nstates - 2]);
		free(got);
	}
	t_check_clean(fs);
	ck_assert_int_eq(zf_fs_close(fs), 0);

	/* with the mark back, the same flip in a synced record is damage: a
	 * mount refuses, fsck reports it, a cut log is damage too */
	{
		int fd = open(markp, O_WRONLY | O_CREAT, 0644);

		ck_assert_int_ge(fd, 0);
		close(fd);
	}
	set_file(markp, mark, mlen);
	ck_assert_int_eq(zf_fs_open(dir, &ro, &fs), -EBADMSG);
	ck_assert_int_eq(zf_fs_open(dir, &salv, &fs), 0);
	{
		struct zf_check_report rep = { 0 };

		ck_assert_int_eq(zf_fs_check(fs, &rep), -EUCLEAN);
		ck_assert_uint_ge(rep.errors, 1);
	}
	zf_fs_close(fs);
	set_file(logp, orig, sizes[nstates - 2]);
	ck_assert_int_eq(zf_fs_open(dir, &ro, &fs), -EBADMSG);
	/* repair drops the damaged record, the mark follows the repaired log
	 * and the next open is clean */
	ck_assert_int_eq(zf_fs_open(dir, &salv_rw, &fs), 0);
	{
		struct zf_check_report rep = { .repair = 1 };

		zf_fs_check(fs, &rep);
		ck_assert_uint_ge(rep.errors, 1);
	}
	zf_fs_close(fs);
	ck_assert_int_eq(zf_fs_open(dir, &ro, &fs), 0);
	{
		char *got = t_dump(fs);

		ck_assert_str_eq(got, states[nstates - 2]);
		free(got);
	}
	t_check_clean(fs);
	zf_fs_close(fs);
	for (k = 0; k < nstates; k++)
		free(states[k]);
	free(mark);
	free(orig);
	free(logp);
	t_rmrf(dir);
	free(dir);
}
END_TEST

static void workload_in(struct zf_fs *fs, uint64_t seed, int rounds, const char *prefix);

/* a mixed workload used by several tests */
static void workload(struct zf_fs *fs, uint64_t seed, int rounds)
{
	workload_in(fs, seed, rounds, "f");
}

static void workload_in(struct zf_fs *fs, uint64_t seed, int rounds, const char *prefix)
{
	uint8_t *buf = malloc(200000);
	uint64_t files[16] = { 0 };
	char name[32];
	int i;

	for (i = 0; i < rounds; i++) {
		uint64_t r = t_rand(&seed), f = r % 16;
		struct zf_attr a;

		snprintf(name, sizeof(name), "%s%llu", prefix, (unsigned long long)f);
		if (!files[f]) {
			ck_assert_int_eq(zf_fs_mknod(fs, ZF_ROOT_INO, name, S_IFREG | 0600, 0, 0, 0, &a), 0);
			files[f] = a.ino;
		}
		switch ((r >> 8) % 6) {
		case 0:
		case 1: {
			size_t len = t_rand(&seed) % 200000;
			uint64_t off = t_rand(&seed) % 300000;

			t_fill(buf, len, t_rand(&seed) % 4); /* few distinct contents: dedup */
			ck_assert_int_eq(zf_fs_write(fs, files[f], buf, len, off), (ssize_t)len);
			break;
		}
		case 2:
			a.size = t_rand(&seed) % 400000;
			ck_assert_int_eq(zf_fs_setattr(fs, files[f], ZF_SET_SIZE, &a, NULL), 0);
			break;
		case 3:
			ck_assert_int_eq(zf_fs_unlink(fs, ZF_ROOT_INO, name), 0);
			files[f] = 0;
			break;
		case 4:
			ck_assert_int_eq(zf_fs_setxattr(fs, files[f], "user.x", name, strlen(name), 0), 0);
			break;
		case 5:
			ck_assert_int_eq(zf_fs_fsync(fs, files[f]), 0);
			break;
		}
	}
	free(buf);
}

START_TEST(checkpoint_equals_replay)
{
	struct zf_open_opts big = { .ckpt_bytes = 1ull << 40 };
	struct zf_open_opts ro = { .readonly = 1 };
	char *dir = t_tmpdir(), *copy = t_tmpdir(), cmd[1024], *d1, *d2;
	struct zf_fs *fs;

	fs = t_newfs(dir, &small_mkfs, &big);
	workload(fs, 11, 300);
	ck_assert_int_eq(zf_fs_sync(fs), 0);
	zf_fs_abandon(fs); /* no checkpoint: everything is in the log */
	snprintf(cmd, sizeof(cmd), "cp -a '%s/.' '%s/'", dir, copy);
	ck_assert_int_eq(system(cmd), 0);

	ck_assert_int_eq(zf_fs_open(dir, &ro, &fs), 0);
	d1 = t_dump(fs);
	zf_fs_close(fs);

	ck_assert_int_eq(zf_fs_open(copy, &big, &fs), 0);
	ck_assert_int_eq(zf_fs_checkpoint(fs), 0);
	zf_fs_abandon(fs);
	ck_assert_int_eq(zf_fs_open(copy, &ro, &fs), 0);
	d2 = t_dump(fs);
	t_check_clean(fs);
	zf_fs_close(fs);
	ck_assert_str_eq(d1, d2);
	free(d1);
	free(d2);
	t_rmrf(dir);
	t_rmrf(copy);
	free(dir);
	free(copy);
}
END_TEST

START_TEST(frequent_checkpoints_survive_crashes)
{
	struct zf_open_opts tiny = { .ckpt_bytes = 8192, .dirty_bytes = 100000 };
	char *dir = t_tmpdir(), *before, *after;
	struct zf_fs *fs;
	int i;

	fs = t_newfs(dir, &small_mkfs, &tiny);
	for (i = 0; i < 5; i++) {
		char prefix[8];

		snprintf(prefix, sizeof(prefix), "r%d-", i);
		workload_in(fs, 100 + i, 60, prefix);
		ck_assert_int_eq(zf_fs_sync(fs), 0);
		before = t_dump(fs);
		zf_fs_abandon(fs);
		ck_assert_int_eq(zf_fs_open(dir, &tiny, &fs), 0);
		after = t_dump(fs);
		ck_assert_str_eq(before, after);
		t_check_clean(fs);
		free(before);
		free(after);
	}
	ck_assert_int_eq(zf_fs_close(fs), 0);
	{
		/* a checkpoint leaves itself and one log: older files are gone */
		char meta[600];
		struct dirent *e;
		int nlog = 0, nckpt = 0;
		DIR *d;

		snprintf(meta, sizeof(meta), "%s/meta", dir);
		d = opendir(meta);
		while ((e = readdir(d))) {
			nlog += !strncmp(e->d_name, "log.", 4);
			nckpt += !strncmp(e->d_name, "ckpt.", 5);
		}
		closedir(d);
		ck_assert_int_eq(nlog, 1);
		ck_assert_int_eq(nckpt, 1);
	}
	t_rmrf(dir);
	free(dir);
}
END_TEST

/* ------------------------------------------------------------- namespace */

START_TEST(namespace_errors_and_rename)
{
	char *dir = t_tmpdir(), longname[300];
	struct zf_fs *fs = t_newfs(dir, NULL, NULL);
	struct zf_attr a, b;
	uint64_t d1, d2, f;

	ck_assert_int_eq(zf_fs_mkdir(fs, ZF_ROOT_INO, "d1", 0755, 0, 0, &a), 0);
	d1 = a.ino;
	ck_assert_int_eq(zf_fs_mkdir(fs, d1, "d2", 0755, 0, 0, &a), 0);
	d2 = a.ino;
	f = t_create(fs, d1, "f");
	ck_assert_int_eq(zf_fs_mkdir(fs, ZF_ROOT_INO, "d1", 0755, 0, 0, &a), -EEXIST);
	ck_assert_int_eq(zf_fs_lookup(fs, ZF_ROOT_INO, "nope", &a), -ENOENT);
	ck_assert_int_eq(zf_fs_lookup(fs, f, "x", &a), -ENOTDIR);
	memset(longname, 'x', 256);
	longname[256] = 0;
	ck_assert_int_eq(zf_fs_mknod(fs, ZF_ROOT_INO, longname, S_IFREG, 0, 0, 0, &a), -ENAMETOOLONG);
	ck_assert_int_eq(zf_fs_rmdir(fs, ZF_ROOT_INO, "d1"), -ENOTEMPTY);
	ck_assert_int_eq(zf_fs_unlink(fs, ZF_ROOT_INO, "d1"), -EISDIR);
	ck_assert_int_eq(zf_fs_rmdir(fs, d1, "f"), -ENOTDIR);
	ck_assert_int_eq(zf_fs_link(fs, d1, ZF_ROOT_INO, "dl", &a), -EPERM);
	/* a directory cannot move below itself */
	ck_assert_int_eq(zf_fs_rename(fs, ZF_ROOT_INO, "d1", d2, "x", 0), -EINVAL);
	/* NOREPLACE, EXCHANGE, atomic replace */
	t_create(fs, ZF_ROOT_INO, "g");
	ck_assert_int_eq(zf_fs_rename(fs, d1, "f", ZF_ROOT_INO, "g", RENAME_NOREPLACE), -EEXIST);
	ck_assert_int_eq(zf_fs_rename(fs, d1, "f", ZF_ROOT_INO, "g", RENAME_EXCHANGE), 0);
	ck_assert_int_eq(zf_fs_lookup(fs, ZF_ROOT_INO, "g", &a), 0);
	ck_assert_uint_eq(a.ino, f);
	ck_assert_int_eq(zf_fs_rename(fs, ZF_ROOT_INO, "g", d1, "f", 0), 0);
	ck_assert_int_eq(zf_fs_lookup(fs, d1, "f", &a), 0);
	ck_assert_uint_eq(a.ino, f);
	ck_assert_int_eq(zf_fs_lookup(fs, ZF_ROOT_INO, "g", &a), -ENOENT);
	/* directory over a non-empty directory, file over a directory */
	ck_assert_int_eq(zf_fs_mkdir(fs, ZF_ROOT_INO, "e", 0755, 0, 0, &a), 0);
	ck_assert_int_eq(zf_fs_rename(fs, ZF_ROOT_INO, "e", ZF_ROOT_INO, "d1", 0), -ENOTEMPTY);
	ck_assert_int_eq(zf_fs_rename(fs, d1, "f", ZF_ROOT_INO, "e", 0), -EISDIR);
	ck_assert_int_eq(zf_fs_rename(fs, ZF_ROOT_INO, "e", d1, "f", 0), -ENOTDIR);
	/* moving a directory fixes both parents' link counts */
	ck_assert_int_eq(zf_fs_rename(fs, d1, "d2", ZF_ROOT_INO, "d2", 0), 0);
	ck_assert_int_eq(zf_fs_getattr(fs, d1, &a), 0);
	ck_assert_uint_eq(a.nlink, 2);
	ck_assert_int_eq(zf_fs_getattr(fs, ZF_ROOT_INO, &b), 0);
	ck_assert_uint_eq(b.nlink, 5);
	ck_assert_int_eq(zf_fs_lookup(fs, d2, "..", &a), 0);
	ck_assert_uint_eq(a.ino, ZF_ROOT_INO);
	/* hardlinks */
	ck_assert_int_eq(zf_fs_link(fs, f, d2, "f2", &a), 0);
	ck_assert_uint_eq(a.nlink, 2);
	ck_assert_int_eq(zf_fs_unlink(fs, d1, "f"), 0);
	ck_assert_int_eq(zf_fs_lookup(fs, d2, "f2", &a), 0);
	ck_assert_uint_eq(a.nlink, 1);
	/* symlinks, special files, setgid directories */
	ck_assert_int_eq(zf_fs_symlink(fs, ZF_ROOT_INO, "s", "d1/../e", 5, 6, &a), 0);
	{
		char buf[64];

		ck_assert_int_eq(zf_fs_readlink(fs, a.ino, buf, sizeof(buf)), 7);
		ck_assert_mem_eq(buf, "d1/../e", 7);
	}
	ck_assert_int_eq(zf_fs_mknod(fs, ZF_ROOT_INO, "fifo", S_IFIFO | 0600, 0, 0, 0, &a), 0);
	ck_assert_int_eq(zf_fs_mknod(fs, ZF_ROOT_INO, "null", S_IFCHR | 0600, 0x103, 0, 0, &a), 0);
	ck_assert_uint_eq(a.rdev, 0x103);
	a.mode = 02775;
	ck_assert_int_eq(zf_fs_setattr(fs, d1, ZF_SET_MODE, &a, NULL), 0);
	a.gid = 77;
	ck_assert_int_eq(zf_fs_setattr(fs, d1, ZF_SET_GID, &a, NULL), 0);
	ck_assert_int_eq(zf_fs_mkdir(fs, d1, "sub", 0755, 9, 9, &a), 0);
	ck_assert_uint_eq(a.gid, 77);
	ck_assert(a.mode & S_ISGID);
	/* xattrs */
	ck_assert_int_eq(zf_fs_setxattr(fs, f, "user.a", "1", 1, XATTR_REPLACE), -ENODATA);
	ck_assert_int_eq(zf_fs_setxattr(fs, f, "user.a", "1", 1, XATTR_CREATE), 0);
	ck_assert_int_eq(zf_fs_setxattr(fs, f, "user.a", "22", 2, XATTR_CREATE), -EEXIST);
	ck_assert_int_eq(zf_fs_setxattr(fs, f, "user.a", "22", 2, XATTR_REPLACE), 0);
	ck_assert_int_eq(zf_fs_getxattr(fs, f, "user.a", NULL, 0), 2);
	{
		char v[2];

		ck_assert_int_eq(zf_fs_getxattr(fs, f, "user.a", v, 1), -ERANGE);
	}
	ck_assert_int_eq(zf_fs_removexattr(fs, f, "user.a"), 0);
	ck_assert_int_eq(zf_fs_removexattr(fs, f, "user.a"), -ENODATA);
	t_check_clean(fs);
	{
		char *d1s = t_dump(fs), *d2s;

		ck_assert_int_eq(zf_fs_close(fs), 0);
		ck_assert_int_eq(zf_fs_open(dir, NULL, &fs), 0);
		d2s = t_dump(fs);
		ck_assert_str_eq(d1s, d2s);
		free(d1s);
		free(d2s);
	}
	t_check_clean(fs);
	ck_assert_int_eq(zf_fs_close(fs), 0);
	t_rmrf(dir);
	free(dir);
}
END_TEST

struct seen {
	uint8_t *count;
	size_t n;
	uint64_t last_off;
	size_t taken, limit;
};

static int seen_fn(void *ctx, const char *name, uint64_t ino, uint32_t mode, uint64_t off)
{
	struct seen *s = ctx;
	unsigned long k;

	if (s->taken == s->limit)
		return 1;
	s->taken++;
	s->last_off = off;
	if (sscanf(name, "n%lu", &k) == 1 && k < s->n)
		s->count[k]++;
	return 0;
}

START_TEST(large_directory_and_stable_offsets)
{
	const size_t n = 100000;
	char *dir = t_tmpdir(), name[32];
	struct zf_fs *fs = t_newfs(dir, NULL, NULL);
	struct seen s = { .n = n };
	struct zf_attr a;
	uint64_t off = 0;
	size_t i, round = 0;

	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "n%zu", i);
		ck_assert_int_eq(zf_fs_mknod(fs, ZF_ROOT_INO, name, S_IFREG | 0644, 0, 0, 0, &a), 0);
	}
	for (i = 0; i < n; i += 97) {
		snprintf(name, sizeof(name), "n%zu", i);
		ck_assert_int_eq(zf_fs_lookup(fs, ZF_ROOT_INO, name, &a), 0);
	}
	/* list in pages while removing and adding entries between pages */
	s.count = calloc(n, 1);
	s.limit = 1000;
	do {
		s.taken = 0;
		ck_assert_int_eq(zf_fs_readdir(fs, ZF_ROOT_INO, off, seen_fn, &s), 0);
		off = s.last_off;
		for (i = 0; i < 50; i++) {
			size_t victim = (round * 7919 + i * 104729) % n;

			snprintf(name, sizeof(name), "n%zu", victim);
			if (victim % 2 == 0 && zf_fs_unlink(fs, ZF_ROOT_INO, name) == 0)
				s.count[victim] += 100; /* removed: may or may not be seen */
			snprintf(name, sizeof(name), "new%zu-%zu", round, i);
			ck_assert_int_eq(zf_fs_mknod(fs, ZF_ROOT_INO, name, S_IFREG, 0, 0, 0, &a), 0);
		}
		round++;
	} while (s.taken == s.limit);
	for (i = 0; i < n; i++) {
		if (s.count[i] >= 100)
			ck_assert_msg(s.count[i] <= 101, "removed n%zu listed twice", i);
		else
			ck_assert_msg(s.count[i] == 1, "n%zu listed %u times", i, s.count[i]);
	}
	free(s.count);
	t_check_clean(fs);
	ck_assert_int_eq(zf_fs_close(fs), 0);
	t_rmrf(dir);
	free(dir);
}
END_TEST

/* ------------------------------------------------------------- data path */

START_TEST(data_overwrite_truncate_sparse)
{
	const size_t sz = 8 << 20;
	char *dir = t_tmpdir();
	struct zf_fs *fs = t_newfs(dir, NULL, NULL);
	uint8_t *model = calloc(1, sz * 2), *got = malloc(sz * 2);
	struct zf_fs_stats st0, st1;
	struct zf_attr a;
	uint64_t f = t_create(fs, ZF_ROOT_INO, "f");
	size_t len = sz;

	t_fill(model, sz, 1);
	ck_assert_int_eq(zf_fs_write(fs, f, model, sz, 0), (ssize_t)sz);
	ck_assert_int_eq(zf_fs_fsync(fs, f), 0);
	zf_fs_stats(fs, &st0);
	/* overwrite 100 bytes in the middle: only a chunk or two are new */
	t_fill(model + sz / 2, 100, 2);
	ck_assert_int_eq(zf_fs_write(fs, f, model + sz / 2, 100, sz / 2), 100);
	ck_assert_int_eq(zf_fs_fsync(fs, f), 0);
	zf_fs_stats(fs, &st1);
	ck_assert_msg(st1.stored_bytes - st0.stored_bytes < 3 * 256 * 1024,
		      "a 100-byte overwrite stored %llu bytes",
		      (unsigned long long)(st1.stored_bytes - st0.stored_bytes));
	/* truncate down, then up: the tail reads as zeros */
	a.size = sz / 3;
	ck_assert_int_eq(zf_fs_setattr(fs, f, ZF_SET_SIZE, &a, NULL), 0);
	memset(model + sz / 3, 0, sz - sz / 3);
	a.size = sz;
	ck_assert_int_eq(zf_fs_setattr(fs, f, ZF_SET_SIZE, &a, NULL), 0);
	/* a sparse region far out, and an append */
	t_fill(model + sz + sz / 2, 4096, 3);
	ck_assert_int_eq(zf_fs_write(fs, f, model + sz + sz / 2, 4096, sz + sz / 2), 4096);
	len = sz + sz / 2 + 4096;
	ck_assert_int_eq(zf_fs_read(fs, f, got, sz * 2, 0), (ssize_t)len);
	ck_assert(memcmp(got, model, len) == 0);
	ck_assert_int_eq(zf_fs_fsync(fs, f), 0);
	ck_assert_int_eq(zf_fs_lseek(fs, f, sz / 3, SEEK_HOLE), (int64_t)(sz / 3));
	ck_assert_int_eq(zf_fs_lseek(fs, f, sz / 3, SEEK_DATA) >= (int64_t)(sz + sz / 2 - 256 * 1024), 1);
	/* punch a hole */
	ck_assert_int_eq(zf_fs_fallocate(fs, f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1000, 5000), 0);
	memset(model + 1000, 0, 5000);
	ck_assert_int_eq(zf_fs_read(fs, f, got, sz * 2, 0), (ssize_t)len);
	ck_assert(memcmp(got, model, len) == 0);
	/* after a reopen every byte is the same */
	ck_assert_int_eq(zf_fs_close(fs), 0);
	ck_assert_int_eq(zf_fs_open(dir, NULL, &fs), 0);
	memset(got, 0xee, sz * 2);
	ck_assert_int_eq(zf_fs_read(fs, f, got, sz * 2, 0), (ssize_t)len);
	ck_assert(memcmp(got, model, len) == 0);
	/* copy_range shares chunks instead of storing bytes again */
	zf_fs_stats(fs, &st0);
	{
		uint64_t g = t_create(fs, ZF_ROOT_INO, "g");

		ck_assert_int_eq(zf_fs_copy_range(fs, f, 0, g, 0, len), (ssize_t)len);
		ck_assert_int_eq(zf_fs_sync(fs), 0);
		zf_fs_stats(fs, &st1);
		ck_assert_uint_eq(st1.stored_bytes, st0.stored_bytes);
		ck_assert_int_eq(zf_fs_read(fs, g, got, sz * 2, 0), (ssize_t)len);
		ck_assert(memcmp(got, model, len) == 0);
	}
	t_check_clean(fs);
	ck_assert_int_eq(zf_fs_close(fs), 0);
	free(model);
	free(got);
	t_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(dedup_same_data_twice)
{
	const size_t sz = 100 << 20, piece = 1 << 20;
	char *dir = t_tmpdir();
	struct zf_fs *fs = t_newfs(dir, NULL, NULL);
	uint8_t *buf = malloc(sz);
	struct zf_fs_stats s1, s2;
	uint64_t a, b;
	size_t off;

	t_fill(buf, sz, 5);
	a = t_create(fs, ZF_ROOT_INO, "a");
	b = t_create(fs, ZF_ROOT_INO, "b");
	for (off = 0; off < sz; off += piece)
		ck_assert_int_eq(zf_fs_write(fs, a, buf + off, piece, off), (ssize_t)piece);
	ck_assert_int_eq(zf_fs_sync(fs), 0);
	zf_fs_stats(fs, &s1);
	for (off = 0; off < sz; off += piece)
		ck_assert_int_eq(zf_fs_write(fs, b, buf + off, piece, off), (ssize_t)piece);
	ck_assert_int_eq(zf_fs_sync(fs), 0);
	zf_fs_stats(fs, &s2);
	ck_assert_msg((s2.stored_bytes - s1.stored_bytes) * 100 < sz,
		      "second copy grew the store by %llu bytes",
		      (unsigned long long)(s2.stored_bytes - s1.stored_bytes));
	ck_assert_uint_ge(s1.stored_bytes, sz); /* random data stays raw */
	ck_assert_int_eq(zf_fs_close(fs), 0);
	free(buf);
	t_rmrf(dir);
	free(dir);
}
END_TEST

/* writes arriving out of order, flushed in between, chunk as one stream */
START_TEST(out_of_order_writes_chunk_as_sequential)
{
	static const int order[] = { 0, 1, 3, 4, 7, 2, 6, 5 };
	const size_t piece = 64 << 10, sz = 8 * piece;
	char *dir = t_tmpdir();
	struct zf_fs *fs = t_newfs(dir, &small_mkfs, NULL);
	uint8_t *buf = malloc(sz);
	struct zf_fs_stats s;
	uint64_t a, b;
	size_t i;

	t_fill(buf, sz, 11);
	a = t_create(fs, ZF_ROOT_INO, "a");
	b = t_create(fs, ZF_ROOT_INO, "b");
	ck_assert_int_eq(zf_fs_write(fs, a, buf, sz, 0), (ssize_t)sz);
	for (i = 0; i < 8; i++) {
		size_t off = order[i] * piece;

		ck_assert_int_eq(zf_fs_write(fs, b, buf + off, piece, off), (ssize_t)piece);
		ck_assert_int_eq(zf_fs_flush(fs, b), 0); /* cuts where the data ends */
	}
	ck_assert_int_eq(zf_fs_sync(fs), 0);
	zf_fs_stats(fs, &s);
	ck_assert_uint_eq(s.unique_bytes, sz);
	ck_assert_uint_eq(s.referenced_bytes, 2 * sz);
	t_check_clean(fs);
	ck_assert_int_eq(zf_fs_close(fs), 0);
	free(buf);
	t_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(insert_at_front_shares_chunks)
{
	const size_t sz = 64 << 20;
	char *dir = t_tmpdir();
	struct zf_fs *fs = t_newfs(dir, NULL, NULL);
	uint8_t *buf = malloc(sz + 7);
	struct zf_fs_stats s1, s2;
	uint64_t a, b;

	t_fill(buf + 7, sz, 9);
	memcpy(buf, "INSERT!", 7);
	a = t_create(fs, ZF_ROOT_INO, "a");
	b = t_create(fs, ZF_ROOT_INO, "b");
	ck_assert_int_eq(zf_fs_write(fs, a, buf + 7, sz, 0), (ssize_t)sz);
	ck_assert_int_eq(zf_fs_sync(fs), 0);
	zf_fs_stats(fs, &s1);
	ck_assert_int_eq(zf_fs_write(fs, b, buf, sz + 7, 0), (ssize_t)(sz + 7));
	ck_assert_int_eq(zf_fs_sync(fs), 0);
	zf_fs_stats(fs, &s2);
	/* more than 90 % shared: the new file's unique bytes are < 10 % */
	ck_assert_msg((s2.unique_bytes - s1.unique_bytes) * 10 < sz,
		      "inserting 7 bytes added %llu unique bytes",
		      (unsigned long long)(s2.unique_bytes - s1.unique_bytes));
	ck_assert_msg((s2.chunks_live - s1.chunks_live) * 10 < s1.chunks_live,
		      "%llu new chunks of %llu", (unsigned long long)(s2.chunks_live - s1.chunks_live),
		      (unsigned long long)s1.chunks_live);
	ck_assert_int_eq(zf_fs_close(fs), 0);
	free(buf);
	t_rmrf(dir);
	free(dir);
}
END_TEST

/* pseudo-text from the words of the project's own sources */
static size_t make_text(uint8_t *out, size_t len)
{
	const char *srcdir = getenv("srcdir") ? getenv("srcdir") : ".";
	const char *files[] = { "storage/fs.c",	      "storage/fs_ns.c",   "storage/fs_write.c",
				"storage/fs_read.c",  "storage/fs_chunk.c", "storage/fs_range.c",
				"storage/mlog.c",     "storage/check.c",    "common/util.c" };
	struct zf_buf words = { 0 };
	size_t i, nw = 0, pos = 0;
	char **w = NULL, path[1024];
	uint64_t seed = 77;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		void *buf;
		size_t n;
		char *tok, *save;

		snprintf(path, sizeof(path), "%s/%s", srcdir, files[i]);
		ck_assert_int_eq(zf_read_file(AT_FDCWD, path, &buf, &n), 0);
		((char *)buf)[n] = 0;
		for (tok = strtok_r(buf, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save)) {
			w = realloc(w, (nw + 1) * sizeof(*w));
			w[nw++] = strdup(tok);
		}
		free(buf);
	}
	ck_assert_uint_gt(nw, 1000);
	/* a source-like stream: mostly the original order, jumping around */
	i = 0;
	while (pos < len) {
		size_t wl;

		if (t_rand(&seed) % 16 == 0)
			i = t_rand(&seed) % nw;
		wl = strlen(w[i]);
		if (pos + wl + 1 > len)
			break;
		memcpy(out + pos, w[i], wl);
		pos += wl;
		out[pos++] = t_rand(&seed) % 8 ? ' ' : '\n';
		i = (i + 1) % nw;
	}
	for (i = 0; i < nw; i++)
		free(w[i]);
	free(w);
	zf_buf_free(&words);
	return pos;
}

START_TEST(compression_comparable_to_zstd)
{
	const size_t cap = 32 << 20;
	char *dir = t_tmpdir();
	struct zf_fs *fs = t_newfs(dir, NULL, NULL);
	uint8_t *text = malloc(cap), *z;
	size_t len = make_text(text, cap), zlen = 0, off;
	struct zf_fs_stats st;
	uint64_t f = t_create(fs, ZF_ROOT_INO, "text");

	ck_assert_int_eq(zf_fs_write(fs, f, text, len, 0), (ssize_t)len);
	ck_assert_int_eq(zf_fs_sync(fs), 0);
	zf_fs_stats(fs, &st);
	/*
	 * reference: zstd over the same bytes, whole, at level 1: one 32 MiB
	 * write is a bulk write, whose packs the pipeline compresses at its
	 * fast level (fs_pipe.c) while they queue up behind each other
	 */
	z = malloc(ZSTD_compressBound(len));
	for (off = 0; off < len; off += len) {
		size_t r = ZSTD_compress(z, ZSTD_compressBound(len), text + off, len - off, 1);

		ck_assert(!ZSTD_isError(r));
		zlen += r;
	}
	fprintf(stderr, "compression: %zu bytes -> zerofs %llu (%.2fx), zstd -1 %zu (%.2fx)\n", len,
		(unsigned long long)st.stored_bytes, (double)len / st.stored_bytes, zlen,
		(double)len / zlen);
	ck_assert_msg(st.stored_bytes < zlen * 13 / 10, "stored %llu vs zstd -1 %zu",
		      (unsigned long long)st.stored_bytes, zlen);
	ck_assert_uint_lt(st.stored_bytes * 2, len);
	ck_assert_int_eq(zf_fs_close(fs), 0);
	free(text);
	free(z);
	t_rmrf(dir);
	free(dir);
}
END_TEST

static char *first_segment(const char *dir)
{
	char seg[512];
	struct dirent *e;
	DIR *d;
	char *p = NULL;

	snprintf(seg, sizeof(seg), "%s/seg", dir);
	d = opendir(seg);
	while ((e = readdir(d)))
		if (strstr(e->d_name, ".zseg") && !p) {
			size_t n = strlen(seg) + strlen(e->d_name) + 2;

			p = malloc(n);
			snprintf(p, n, "%s/%s", seg, e->d_name);
		}
	closedir(d);
	ck_assert_ptr_nonnull(p);
	return p;
}

START_TEST(flipped_segment_byte_detected)
{
	char *dir = t_tmpdir(), *seg;
	struct zf_fs *fs = t_newfs(dir, NULL, NULL);
	uint8_t *buf = malloc(1 << 20);
	struct zf_check_report rep = { .verify_data = 1 };
	uint64_t f, g;
	int fd;
	uint8_t c;

	t_fill(buf, 1 << 20, 4);
	f = t_create(fs, ZF_ROOT_INO, "f");
	ck_assert_int_eq(zf_fs_write(fs, f, buf, 1 << 20, 0), 1 << 20);
	ck_assert_int_eq(zf_fs_close(fs), 0);
	seg = first_segment(dir);
	fd = open(seg, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &c, 1, 300000), 1);
	c ^= 0x40;
	ck_assert_int_eq(pwrite(fd, &c, 1, 300000), 1);
	close(fd);
	ck_assert_int_eq(zf_fs_open(dir, NULL, &fs), 0);
	ck_assert_int_eq(zf_fs_read(fs, f, buf, 1 << 20, 0), -EIO);
	ck_assert_int_eq(zf_fs_check(fs, &rep), -EUCLEAN);
	ck_assert_uint_gt(rep.errors, 0);
	/* other files still work */
	g = t_create(fs, ZF_ROOT_INO, "g");
	ck_assert_int_eq(zf_fs_write(fs, g, "hello", 5, 0), 5);
	ck_assert_int_eq(zf_fs_fsync(fs, g), 0);
	ck_assert_int_eq(zf_fs_read(fs, g, buf, 5, 0), 5);
	ck_assert_mem_eq(buf, "hello", 5);
	ck_assert_int_eq(zf_fs_close(fs), 0);
	free(seg);
	free(buf);
	t_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(unlinked_open_file_lives_until_forgotten)
{
	char *dir = t_tmpdir(), buf[16];
	struct zf_fs *fs = t_newfs(dir, NULL, NULL);
	struct zf_fs_stats st;
	uint64_t f, g;

	f = t_create(fs, ZF_ROOT_INO, "f");
	ck_assert_int_eq(zf_fs_write(fs, f, "0123456789", 10, 0), 10);
	ck_assert_int_eq(zf_fs_ref(fs, f), 0);
	ck_assert_int_eq(zf_fs_unlink(fs, ZF_ROOT_INO, "f"), 0);
	ck_assert_int_eq(zf_fs_read(fs, f, buf, 10, 0), 10);
	ck_assert_mem_eq(buf, "0123456789", 10);
	ck_assert_int_eq(zf_fs_write(fs, f, "ab", 2, 10), 2);
	ck_assert_int_eq(zf_fs_fsync(fs, f), 0);
	ck_assert_int_eq(zf_fs_read(fs, f, buf, 16, 0), 12);
	t_check_clean(fs);
	zf_fs_forget(fs, f, 1);
	ck_assert_int_eq(zf_fs_getattr(fs, f, (struct zf_attr *)buf), -ENOENT);
	/* the same, but the process dies while the file is open */
	g = t_create(fs, ZF_ROOT_INO, "g");
	ck_assert_int_eq(zf_fs_write(fs, g, "x", 1, 0), 1);
	ck_assert_int_eq(zf_fs_ref(fs, g), 0);
	ck_assert_int_eq(zf_fs_unlink(fs, ZF_ROOT_INO, "g"), 0);
	ck_assert_int_eq(zf_fs_sync(fs), 0);
	zf_fs_abandon(fs);
	ck_assert_int_eq(zf_fs_open(dir, NULL, &fs), 0);
	ck_assert_int_eq(zf_fs_getattr(fs, g, (struct zf_attr *)buf), -ENOENT);
	zf_fs_stats(fs, &st);
	ck_assert_uint_eq(st.inodes, 1);
	t_check_clean(fs);
	ck_assert_int_eq(zf_fs_close(fs), 0);
	t_rmrf(dir);
	free(dir);
}
END_TEST

/* a node made with its reference survives an unlink before the reply */
START_TEST(made_with_reference_survives_unlink)
{
	char *dir = t_tmpdir();
	struct zf_fs *fs = t_newfs(dir, NULL, NULL);
	struct zf_attr a, b, l;

	ck_assert_int_eq(zf_fs_create_ref(fs, ZF_ROOT_INO, "f", S_IFREG | 0644, 0, 022, 0, 0, &a),
			 0);
	ck_assert_int_eq(zf_fs_symlink_ref(fs, ZF_ROOT_INO, "s", "f", 0, 0, &b), 0);
	ck_assert_int_eq(zf_fs_link_ref(fs, a.ino, ZF_ROOT_INO, "g", &l), 0);
	ck_assert_uint_eq(l.nlink, 2);
	ck_assert_int_eq(zf_fs_unlink(fs, ZF_ROOT_INO, "f"), 0);
	ck_assert_int_eq(zf_fs_unlink(fs, ZF_ROOT_INO, "g"), 0);
	ck_assert_int_eq(zf_fs_unlink(fs, ZF_ROOT_INO, "s"), 0);
	/* the kernel still holds them: alive, unlinked */
	ck_assert_int_eq(zf_fs_getattr(fs, a.ino, &l), 0);
	ck_assert_uint_eq(l.nlink, 0);
	ck_assert_int_eq(zf_fs_getattr(fs, b.ino, &l), 0);
	zf_fs_forget(fs, a.ino, 1);
	ck_assert_int_eq(zf_fs_getattr(fs, a.ino, &l), 0); /* the link's reference */
	zf_fs_forget(fs, a.ino, 1);
	zf_fs_forget(fs, b.ino, 1);
	ck_assert_int_eq(zf_fs_getattr(fs, a.ino, &l), -ENOENT);
	ck_assert_int_eq(zf_fs_getattr(fs, b.ino, &l), -ENOENT);
	t_check_clean(fs);
	ck_assert_int_eq(zf_fs_close(fs), 0);
	t_rmrf(dir);
	free(dir);
}
END_TEST

/* pins: durable through the log and a checkpoint, inherited, on files and
 * directories only; a file's pieces say where its bytes are */
START_TEST(pins_are_durable_and_inherited)
{
	char *dir = t_tmpdir(), data[100000];
	struct zf_fs *fs = t_newfs(dir, NULL, NULL);
	struct zf_file_piece *p;
	struct zf_sc_loc *locs;
	struct zf_attr d, s;
	uint64_t f, g, total = 0;
	size_t n, i;
	int round;

	ck_assert_int_eq(zf_fs_mkdir(fs, ZF_ROOT_INO, "d", 0755, 0, 0, &d), 0);
	f = t_create(fs, ZF_ROOT_INO, "f");
	ck_assert_int_eq(zf_fs_symlink(fs, ZF_ROOT_INO, "s", "f", 0, 0, &s), 0);
	ck_assert_int_eq(zf_fs_set_pinned(fs, s.ino, 1), -EINVAL);
	ck_assert_int_eq(zf_fs_set_pinned(fs, 999, 1), -ENOENT);
	ck_assert_int_eq(zf_fs_set_pinned(fs, d.ino, 1), 0);
	ck_assert_int_eq(zf_fs_set_pinned(fs, f, 1), 0);
	g = t_create(fs, d.ino, "g"); /* made in a pinned directory */
	ck_assert_int_eq(zf_fs_pinned(fs, g), 1);
	ck_assert_int_eq(zf_fs_pinned(fs, ZF_ROOT_INO), 0);
	for (i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 7 + i / 1000);
	ck_assert_int_eq(zf_fs_write(fs, f, data, sizeof(data), 0), sizeof(data));
	/* buffered: one unlocated piece */
	ck_assert_int_eq(zf_fs_file_pieces(fs, f, &p, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(p[0].located, 0);
	ck_assert_uint_eq(p[0].bytes, sizeof(data));
	free(p);
	ck_assert_int_eq(zf_fs_file_pieces(fs, d.ino, &p, &n), -EISDIR);
	ck_assert_int_eq(zf_fs_sync(fs), 0);
	for (round = 0; round < 2; round++) {
		/* round 0: replayed from the log; round 1: from a checkpoint */
		zf_fs_abandon(fs);
		ck_assert_int_eq(zf_fs_open(dir, NULL, &fs), 0);
		ck_assert_int_eq(zf_fs_pinned(fs, d.ino), 1);
		ck_assert_int_eq(zf_fs_pinned(fs, f), 1);
		ck_assert_int_eq(zf_fs_pinned(fs, g), 1);
		ck_assert_int_eq(zf_fs_file_pieces(fs, f, &p, &n), 0);
		for (i = 0, total = 0; i < n; i++) {
			ck_assert_int_eq(p[i].located, 1);
			total += p[i].bytes;
		}
		ck_assert_uint_eq(total, sizeof(data));
		free(p);
		ck_assert_int_eq(zf_fs_pinned_scs(fs, &locs, &n), 0);
		ck_assert_uint_ge(n, 1);
		free(locs);
		ck_assert_int_eq(zf_fs_checkpoint(fs), 0);
	}
	ck_assert_int_eq(zf_fs_set_pinned(fs, f, 0), 0);
	ck_assert_int_eq(zf_fs_pinned_scs(fs, &locs, &n), 0);
	ck_assert_uint_eq(n, 0); /* g is empty, d holds no data */
	free(locs);
	ck_assert_int_eq(zf_fs_unlink(fs, d.ino, "g"), 0);
	t_check_clean(fs);
	ck_assert_int_eq(zf_fs_close(fs), 0);
	ck_assert_int_eq(zf_fs_open(dir, NULL, &fs), 0);
	ck_assert_int_eq(zf_fs_pinned(fs, f), 0);
	ck_assert_int_eq(zf_fs_close(fs), 0);
	t_rmrf(dir);
	free(dir);
}
END_TEST

/* a crash while a new log file is created leaves only a .tmp: open ignores it */
START_TEST(log_created_whole_or_not_at_all)
{
	char *dir = t_tmpdir(), path[512];
	struct zf_fs *fs = t_newfs(dir, NULL, NULL);
	struct dirent *e;
	uint64_t ino = t_create(fs, ZF_ROOT_INO, "f");
	DIR *d;
	int fd, logs = 0;

	ck_assert_int_eq(zf_fs_write(fs, ino, "hello", 5, 0), 5);
	ck_assert_int_eq(zf_fs_checkpoint(fs), 0); /* creates the next log */
	ck_assert_int_eq(zf_fs_close(fs), 0);
	snprintf(path, sizeof(path), "%s/meta", dir);
	d = opendir(path);
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d))) {
		ck_assert_msg(!strstr(e->d_name, ".tmp"), "left behind: %s", e->d_name);
		logs += !strncmp(e->d_name, "log.", 4);
	}
	closedir(d);
	ck_assert_int_ge(logs, 1);
	/* what a kill between creating and publishing the next log leaves */
	snprintf(path, sizeof(path), "%s/meta/log.00000000ffffffff.tmp", dir);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(zf_fs_open(dir, NULL, &fs), 0);
	ck_assert_int_eq(access(path, F_OK), -1);
	{
		char buf[8] = { 0 };

		ck_assert_int_eq(zf_fs_lookup(fs, ZF_ROOT_INO, "f", &(struct zf_attr){ 0 }), 0);
		ck_assert_int_eq(zf_fs_read(fs, ino, buf, sizeof(buf), 0), 5);
		ck_assert_str_eq(buf, "hello");
	}
	ck_assert_int_eq(zf_fs_close(fs), 0);
	t_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(mkfs_and_open_errors)
{
	char *dir = t_tmpdir(), path[600];
	struct zf_fs *fs, *fs2;
	int fd;

	ck_assert_int_eq(zf_fs_open(dir, NULL, &fs), -ENOENT); /* not formatted */
	snprintf(path, sizeof(path), "%s/junk", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	close(fd);
	ck_assert_int_eq(zf_fs_mkfs(dir, NULL), -ENOTEMPTY);
	unlink(path);
	ck_assert_int_eq(zf_fs_mkfs(dir, NULL), 0);
	ck_assert_int_eq(zf_fs_mkfs(dir, NULL), -EEXIST);
	ck_assert_int_eq(zf_fs_open(dir, NULL, &fs), 0);
	ck_assert_int_eq(zf_fs_open(dir, NULL, &fs2), -EBUSY); /* one writer */
	ck_assert_int_eq(zf_fs_close(fs), 0);
	/* a corrupt superblock is refused (a byte flipped: "X" written may be there already) */
	snprintf(path, sizeof(path), "%s/superblock", dir);
	fd = open(path, O_RDWR);
	{
		uint8_t b;

		ck_assert_int_eq(pread(fd, &b, 1, 20), 1);
		b ^= 0xff;
		ck_assert_int_eq(pwrite(fd, &b, 1, 20), 1);
	}
	close(fd);
	ck_assert_int_eq(zf_fs_open(dir, NULL, &fs), -EBADMSG);
	t_rmrf(dir);
	free(dir);
}
END_TEST

/* ------------------------------------------------------------ POSIX ACLs */

/* an ACL xattr value from (tag, perm, id) triples; returns its length */
static size_t t_acl(uint8_t *v, const uint32_t *e, size_t n)
{
	size_t i;

	zf_put32(v, 2);
	for (i = 0; i < n; i++) {
		zf_put16(v + 4 + 8 * i, e[3 * i]);
		zf_put16(v + 6 + 8 * i, e[3 * i + 1]);
		zf_put32(v + 8 + 8 * i, e[3 * i + 2]);
	}
	return 4 + 8 * n;
}

#define T_ACCESS "system.posix_acl_access"
#define T_DEFAULT "system.posix_acl_default"

static uint32_t t_mode(struct zf_fs *fs, uint64_t ino)
{
	struct zf_attr a;

	ck_assert_int_eq(zf_fs_getattr(fs, ino, &a), 0);
	return a.mode & 07777;
}

START_TEST(posix_acls_follow_mode_and_are_inherited)
{
	/* u::rw- u:65534:r-- g::--- m::r-- o::--- */
	static const uint32_t ext[] = { 1, 6, ~0u, 2, 4, 65534, 4, 0, ~0u, 16, 4, ~0u, 32, 0, ~0u };
	/* u::rwx g::r-x o::r-- (a mode says it all) */
	static const uint32_t plain[] = { 1, 7, ~0u, 4, 5, ~0u, 32, 4, ~0u };
	/* default: u::rwx u:65534:rwx g::rwx m::rwx o::--- */
	static const uint32_t dfl[] = { 1, 7, ~0u, 2, 7, 65534, 4, 7, ~0u, 16, 7, ~0u, 32, 0, ~0u };
	char *dir = t_tmpdir();
	struct zf_fs *fs = t_newfs(dir, NULL, NULL);
	uint8_t v[64], dv[64], got[64];
	struct zf_attr a, chmod = { .mode = 0660 };
	size_t n, dn;
	uint64_t f, d, sub, nf, pf;

	f = t_create(fs, ZF_ROOT_INO, "f");
	n = t_acl(v, ext, 5);
	ck_assert_int_eq(zf_fs_setxattr(fs, f, T_ACCESS, v, n, 0), 0);
	ck_assert_uint_eq(t_mode(fs, f), 0640); /* the group bits show the mask */
	ck_assert_int_eq(zf_fs_setattr(fs, f, ZF_SET_MODE, &chmod, &a), 0);
	ck_assert_int_eq(zf_fs_getxattr(fs, f, T_ACCESS, got, sizeof(got)), (ssize_t)n);
	ck_assert_uint_eq(zf_get16(got + 4 + 3 * 8 + 2), 6); /* chmod set the mask */
	ck_assert_int_eq(zf_fs_setxattr(fs, f, T_ACCESS, v, t_acl(v, plain, 3), 0), 0);
	ck_assert_uint_eq(t_mode(fs, f), 0754);
	ck_assert_int_eq(zf_fs_getxattr(fs, f, T_ACCESS, got, sizeof(got)), -ENODATA);
	ck_assert_int_eq(zf_fs_removexattr(fs, f, T_ACCESS), 0); /* none is fine */
	ck_assert_int_eq(zf_fs_removexattr(fs, f, "user.none"), -ENODATA);
	dn = t_acl(dv, dfl, 5);
	ck_assert_int_eq(zf_fs_setxattr(fs, f, T_DEFAULT, dv, dn, 0), -EACCES);
	v[0] = 1; /* version 1 */
	ck_assert_int_eq(zf_fs_setxattr(fs, f, T_ACCESS, v, 28, 0), -EINVAL);
	ck_assert_int_eq(zf_fs_setxattr(fs, f, T_ACCESS, dv, dn - 8, 0), -EINVAL); /* no other */

	/* a default ACL takes the umask's place and is inherited by directories */
	ck_assert_int_eq(zf_fs_mkdir(fs, ZF_ROOT_INO, "d", 0755, 0, 0, &a), 0);
	d = a.ino;
	ck_assert_int_eq(zf_fs_setxattr(fs, d, T_DEFAULT, dv, dn, 0), 0);
	ck_assert_uint_eq(t_mode(fs, d), 0755);
	ck_assert_int_eq(zf_fs_create(fs, d, "nf", S_IFREG | 0666, 0, 022, 0, 0, &a), 0);
	nf = a.ino;
	ck_assert_uint_eq(a.mode & 07777, 0660);
	ck_assert_int_eq(zf_fs_getxattr(fs, nf, T_ACCESS, got, sizeof(got)), (ssize_t)dn);
	ck_assert_uint_eq(zf_get16(got + 4 + 3 * 8 + 2), 6); /* mask rw- */
	ck_assert_int_eq(zf_fs_getxattr(fs, nf, T_DEFAULT, got, sizeof(got)), -ENODATA);
	ck_assert_int_eq(zf_fs_create(fs, d, "sub", S_IFDIR | 0777, 0, 077, 0, 0, &a), 0);
	sub = a.ino;
	ck_assert_uint_eq(a.mode & 07777, 0770);
	ck_assert_int_eq(zf_fs_getxattr(fs, sub, T_DEFAULT, got, sizeof(got)), (ssize_t)dn);
	ck_assert_mem_eq(got, dv, dn);
	ck_assert_int_eq(zf_fs_symlink(fs, d, "sl", "t", 0, 0, &a), 0);
	ck_assert_uint_eq(a.mode & 07777, 0777);
	ck_assert_int_eq(zf_fs_getxattr(fs, a.ino, T_ACCESS, got, sizeof(got)), -ENODATA);
	ck_assert_int_eq(zf_fs_create(fs, ZF_ROOT_INO, "pf", S_IFREG | 0666, 0, 027, 0, 0, &a), 0);
	pf = a.ino;
	ck_assert_uint_eq(a.mode & 07777, 0640); /* no default ACL: the umask */

	/* all of it is in the log */
	ck_assert_int_eq(zf_fs_close(fs), 0);
	ck_assert_int_eq(zf_fs_open(dir, NULL, &fs), 0);
	ck_assert_uint_eq(t_mode(fs, f), 0754);
	ck_assert_uint_eq(t_mode(fs, nf), 0660);
	ck_assert_uint_eq(t_mode(fs, pf), 0640);
	ck_assert_int_eq(zf_fs_getxattr(fs, sub, T_DEFAULT, got, sizeof(got)), (ssize_t)dn);
	t_check_clean(fs);
	ck_assert_int_eq(zf_fs_close(fs), 0);
	t_rmrf(dir);
	free(dir);
}
END_TEST

static Suite *fs_suite(void)
{
	Suite *s = suite_create("fs");
	TCase *tc = tcase_create("core");
	int slow = getenv("ZF_SANITIZED") != NULL;

	tcase_set_timeout(tc, slow ? 600 : 180);
	tcase_add_test(tc, frame_roundtrip_and_bitflips);
	tcase_add_test(tc, log_truncated_at_every_offset);
	tcase_add_test(tc, checkpoint_equals_replay);
	tcase_add_test(tc, frequent_checkpoints_survive_crashes);
	tcase_add_test(tc, namespace_errors_and_rename);
	tcase_add_test(tc, large_directory_and_stable_offsets);
	tcase_add_test(tc, data_overwrite_truncate_sparse);
	tcase_add_test(tc, dedup_same_data_twice);
	tcase_add_test(tc, insert_at_front_shares_chunks);
	tcase_add_test(tc, compression_comparable_to_zstd);
	tcase_add_test(tc, flipped_segment_byte_detected);
	tcase_add_test(tc, unlinked_open_file_lives_until_forgotten);
	tcase_add_test(tc, made_with_reference_survives_unlink);
	tcase_add_test(tc, pins_are_durable_and_inherited);
	tcase_add_test(tc, mkfs_and_open_errors);
	tcase_add_test(tc, log_created_whole_or_not_at_all);
	tcase_add_test(tc, out_of_order_writes_chunk_as_sequential);
	tcase_add_test(tc, posix_acls_follow_mode_and_are_inherited);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(fs_suite());
	int failed;

	zf_log_set_level(ZF_LOG_ERR);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
