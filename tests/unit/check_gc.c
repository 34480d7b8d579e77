/*
 * tests/unit/check_gc.c - unit tests of zf_fs_gc: space comes back, content
 * and a reopened table stay the same, a killed run leaves a store the next
 * run finishes, dry runs change nothing, and readers racing gc never see an
 * error or wrong bytes.
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "storage/fs_snap.h"
#include "storage/fs_tier.h"
#include "zf_test.h"

#define KIB 1024u
#define NFILES 24
#define FILE_BYTES (384u * KIB)

static const struct zf_mkfs_opts gc_mkfs = {
	.chunk_min = 2 * KIB, .chunk_avg = 8 * KIB, .chunk_max = 32 * KIB, .seg_limit = 1 << 20
};

/* bytes of the segment files in dir/seg */
static uint64_t seg_bytes(const char *dir, unsigned int *ret_n)
{
	char path[512];
	struct dirent *e;
	uint64_t total = 0;
	unsigned int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/seg", dir);
	d = opendir(path);
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d))) {
		struct stat st;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/seg/%s", dir, e->d_name);
		ck_assert_int_eq(stat(path, &st), 0);
		total += st.st_size;
		n++;
	}
	closedir(d);
	if (ret_n)
		*ret_n = n;
	return total;
}

static uint64_t file_ino(struct zf_fs *fs, int i)
{
	char name[32];
	struct zf_attr a;

	snprintf(name, sizeof(name), "f%02d", i);
	ck_assert_int_eq(zf_fs_lookup(fs, ZF_ROOT_INO, name, &a), 0);
	return a.ino;
}

/* file i holds incompressible bytes of seed i (version v) */
static void write_file(struct zf_fs *fs, int i, int v, int create)
{
	uint8_t *buf = malloc(FILE_BYTES);
	struct zf_attr a;
	char name[32];
	uint64_t ino;

	snprintf(name, sizeof(name), "f%02d", i);
	if (create) {
		ck_assert_int_eq(zf_fs_mknod(fs, ZF_ROOT_INO, name, S_IFREG | 0644, 0, 0, 0, &a), 0);
		ino = a.ino;
	} else {
		ino = file_ino(fs, i);
	}
	t_fill(buf, FILE_BYTES, 1000 * v + i);
	ck_assert_int_eq(zf_fs_write(fs, ino, buf, FILE_BYTES, 0), (ssize_t)FILE_BYTES);
	free(buf);
}

static void check_file(struct zf_fs *fs, int i, int v)
{
	uint8_t *want = malloc(FILE_BYTES), *got = malloc(FILE_BYTES);

	t_fill(want, FILE_BYTES, 1000 * v + i);
	ck_assert_int_eq(zf_fs_read(fs, file_ino(fs, i), got, FILE_BYTES, 0), (ssize_t)FILE_BYTES);
	ck_assert_msg(!memcmp(want, got, FILE_BYTES), "file f%02d differs", i);
	free(want);
	free(got);
}

static void check_clean(struct zf_fs *fs)
{
	struct zf_check_report rep = { .verify_data = 1 };

	ck_assert_int_eq(zf_fs_check(fs, &rep), 0);
	ck_assert_uint_eq(rep.errors, 0);
}

/* close fs cleanly and remove its scratch directory */
static void finish(struct zf_fs *fs, char *dir)
{
	ck_assert_int_eq(zf_fs_close(fs), 0);
	t_rmrf(dir);
	free(dir);
}

/* NFILES files; every even one deleted; every third of the rest rewritten */
static struct zf_fs *make_garbage(const char *dir, int *version)
{
	struct zf_fs *fs;
	char name[32];
	int i;

	ck_assert_int_eq(zf_fs_mkfs(dir, &gc_mkfs), 0);
	ck_assert_int_eq(zf_fs_open(dir, NULL, &fs), 0);
	for (i = 0; i < NFILES; i++) {
		write_file(fs, i, 0, 1);
		version[i] = 0;
	}
	ck_assert_int_eq(zf_fs_sync(fs), 0);
	for (i = 0; i < NFILES; i += 2) {
		snprintf(name, sizeof(name), "f%02d", i);
		ck_assert_int_eq(zf_fs_unlink(fs, ZF_ROOT_INO, name), 0);
		version[i] = -1;
	}
	for (i = 1; i < NFILES; i += 6) {
		write_file(fs, i, 1, 0);
		version[i] = 1;
	}
	ck_assert_int_eq(zf_fs_sync(fs), 0);
	return fs;
}

static void check_all(struct zf_fs *fs, const int *version)
{
	int i;

	for (i = 0; i < NFILES; i++)
		if (version[i] >= 0)
			check_file(fs, i, version[i]);
}

START_TEST(gc_gives_space_back)
{
	char *dir = t_tmpdir();
	int version[NFILES];
	struct zf_fs *fs = make_garbage(dir, version);
	struct zf_gc_opts o = { 0 };
	struct zf_gc_report rep;
	uint64_t before = seg_bytes(dir, NULL), after, live = 0;
	unsigned int nseg;
	int i;

	/* a dry run reports and changes nothing */
	o.dry_run = 1;
	ck_assert_int_eq(zf_fs_gc(fs, &o, &rep), 0);
	ck_assert_uint_gt(rep.victims, 0);
	ck_assert_uint_gt(rep.reclaim_bytes, before / 3);
	ck_assert_uint_eq(seg_bytes(dir, NULL), before);
	ck_assert_uint_eq(rep.moved_chunks, 0);

	o.dry_run = 0;
	ck_assert_int_eq(zf_fs_gc(fs, &o, &rep), 0);
	ck_assert_uint_eq(rep.kept_damaged, 0);
	ck_assert_uint_gt(rep.freed_segments, 0);
	after = seg_bytes(dir, &nseg);
	for (i = 0; i < NFILES; i++)
		if (version[i] >= 0)
			live += FILE_BYTES;
	/* incompressible data: live stored bytes are about the live file bytes */
	ck_assert_msg(after <= live * 11 / 10 + (1u << 20),
		      "after gc %llu bytes in %u segments for %llu live bytes (before %llu)",
		      (unsigned long long)after, nseg, (unsigned long long)live,
		      (unsigned long long)before);
	ck_assert_uint_ge(rep.freed_bytes, before - after);
	check_all(fs, version);
	check_clean(fs);

	/* a second run finds little to do */
	ck_assert_int_eq(zf_fs_gc(fs, &o, &rep), 0);
	ck_assert_uint_le(rep.moved_raw_bytes, live / 10);

	/* what the log says after gc is what the table was */
	ck_assert_int_eq(zf_fs_close(fs), 0);
	ck_assert_int_eq(zf_fs_open(dir, NULL, &fs), 0);
	check_all(fs, version);
	check_clean(fs);
	/* and from a checkpoint */
	ck_assert_int_eq(zf_fs_checkpoint(fs), 0);
	ck_assert_int_eq(zf_fs_close(fs), 0);
	ck_assert_int_eq(zf_fs_open(dir, NULL, &fs), 0);
	check_all(fs, version);
	check_clean(fs);
	finish(fs, dir);
}
END_TEST

/* deleted bytes written again after gc dropped their chunks are stored anew */
START_TEST(gc_then_same_data_again)
{
	char *dir = t_tmpdir();
	int version[NFILES];
	struct zf_fs *fs = make_garbage(dir, version);
	struct zf_gc_opts o = { .max_waste = 1e-9 };
	struct zf_gc_report rep;
	int i;

	ck_assert_int_eq(zf_fs_gc(fs, &o, &rep), 0);
	ck_assert_uint_gt(rep.dead_chunks, 0);
	for (i = 0; i < NFILES; i += 2) {
		write_file(fs, i, 0, 1);
		version[i] = 0;
	}
	ck_assert_int_eq(zf_fs_sync(fs), 0);
	check_all(fs, version);
	zf_fs_abandon(fs); /* a crash: replay must agree */
	ck_assert_int_eq(zf_fs_open(dir, NULL, &fs), 0);
	check_all(fs, version);
	check_clean(fs);
	finish(fs, dir);
}
END_TEST

/*
 * A gc killed after it moved chunks but before it removed files: the old
 * segment is unreferenced garbage; fsck is clean and the next run removes it.
 */
START_TEST(gc_killed_leaves_garbage_next_run_removes)
{
	char *dir = t_tmpdir(), cmd[1024];
	int version[NFILES];
	struct zf_fs *fs = make_garbage(dir, version);
	struct zf_gc_opts o = { 0 };
	struct zf_gc_report rep;
	uint64_t before;

	/* keep copies of the segment files, run gc, put the copies back */
	snprintf(cmd, sizeof(cmd), "cp -a '%s/seg' '%s/seg.keep'", dir, dir);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(zf_fs_gc(fs, &o, &rep), 0);
	ck_assert_uint_gt(rep.freed_segments, 0);
	zf_fs_abandon(fs);
	snprintf(cmd, sizeof(cmd), "cp -an '%s/seg.keep/.' '%s/seg/' && rm -rf '%s/seg.keep'", dir,
		 dir, dir);
	ck_assert_int_eq(system(cmd), 0);
	before = seg_bytes(dir, NULL);

	ck_assert_int_eq(zf_fs_open(dir, NULL, &fs), 0);
	check_all(fs, version);
	check_clean(fs);
	o.dry_run = 1;
	ck_assert_int_eq(zf_fs_gc(fs, &o, &rep), 0);
	ck_assert_uint_gt(rep.freed_segments, 0);
	o.dry_run = 0;
	ck_assert_int_eq(zf_fs_gc(fs, &o, &rep), 0);
	ck_assert_uint_gt(rep.freed_segments, 0);
	ck_assert_uint_eq(rep.moved_chunks, 0);
	ck_assert_uint_lt(seg_bytes(dir, NULL), before);
	check_all(fs, version);
	check_clean(fs);
	finish(fs, dir);
}
END_TEST

/* small_bytes: small sealed segments, however live, are merged into one */
START_TEST(gc_merges_small_segments)
{
	char *dir = t_tmpdir(), name[32], buf[4000];
	struct zf_gc_opts o = { .small_bytes = 1u << 20 };
	struct zf_upload_point pt;
	struct zf_gc_report rep;
	unsigned int nseg, after;
	struct zf_attr a;
	struct zf_fs *fs;
	uint64_t ino[8];
	int i;

	ck_assert_int_eq(zf_fs_mkfs(dir, &gc_mkfs), 0);
	ck_assert_int_eq(zf_fs_open(dir, NULL, &fs), 0);
	for (i = 0; i < 8; i++) { /* a small file, then its segment sealed */
		snprintf(name, sizeof(name), "s%d", i);
		memset(buf, 'a' + i, sizeof(buf));
		ck_assert_int_eq(zf_fs_create(fs, ZF_ROOT_INO, name, S_IFREG | 0644, 0, 0, 0, 0, &a),
				 0);
		ino[i] = a.ino;
		ck_assert_int_eq(zf_fs_write(fs, ino[i], buf, sizeof(buf), 0), sizeof(buf));
		ck_assert_int_eq(zf_fs_sync(fs), 0);
		ck_assert_int_eq(zf_fs_upload_point(fs, 1, &pt), 0);
	}
	seg_bytes(dir, &nseg);
	ck_assert_uint_ge(nseg, 8);
	ck_assert_int_eq(zf_fs_gc(fs, &o, &rep), 0);
	ck_assert_uint_ge(rep.victims, 8);
	seg_bytes(dir, &after);
	ck_assert_msg(after <= 2, "%u segments left of %u", after, nseg);
	for (i = 0; i < 8; i++) {
		char got[4000];

		memset(buf, 'a' + i, sizeof(buf));
		ck_assert_int_eq(zf_fs_read(fs, ino[i], got, sizeof(got), 0), sizeof(got));
		ck_assert_mem_eq(got, buf, sizeof(buf));
	}
	/* one small segment alone is left as it is */
	ck_assert_int_eq(zf_fs_upload_point(fs, 1, &pt), 0);
	ck_assert_int_eq(zf_fs_gc(fs, &o, &rep), 0);
	ck_assert_uint_le(rep.victims, 1);
	check_clean(fs);
	finish(fs, dir);
}
END_TEST

/* keep_above: segments not yet in the bucket are neither rewritten nor removed */
START_TEST(gc_keeps_segments_above_the_limit)
{
	char *dir = t_tmpdir();
	int version[NFILES];
	struct zf_fs *fs = make_garbage(dir, version);
	struct zf_gc_opts o = { .keep = 1, .keep_above = 1 };
	struct zf_gc_report rep;
	char path[512];

	ck_assert_int_eq(zf_fs_gc(fs, &o, &rep), 0);
	ck_assert_uint_le(rep.victims, 1);
	snprintf(path, sizeof(path), "%s/seg/0000000000000002.zseg", dir);
	ck_assert_int_eq(access(path, F_OK), 0);
	check_all(fs, version);
	finish(fs, dir);
}
END_TEST

struct reader {
	struct zf_fs *fs;
	const int *version;
	volatile int stop;
	unsigned long reads, errors;
};

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	uint8_t *want = malloc(FILE_BYTES), *got = malloc(FILE_BYTES);
	uint64_t seed = 9;

	while (!rd->stop) {
		int i = 1 + 2 * (int)(t_rand(&seed) % (NFILES / 2));
		struct zf_attr a;
		char name[32];
		ssize_t n;

		snprintf(name, sizeof(name), "f%02d", i);
		if (zf_fs_lookup(rd->fs, ZF_ROOT_INO, name, &a) < 0) {
			rd->errors++;
			continue;
		}
		t_fill(want, FILE_BYTES, 1000 * rd->version[i] + i);
		n = zf_fs_read(rd->fs, a.ino, got, FILE_BYTES, 0);
		if (n != (ssize_t)FILE_BYTES || memcmp(want, got, FILE_BYTES))
			rd->errors++;
		rd->reads++;
	}
	free(want);
	free(got);
	return NULL;
}

/* readers plan under the lock and read after it; gc moves and removes meanwhile */
START_TEST(gc_races_readers)
{
	char *dir = t_tmpdir();
	int version[NFILES], round;
	struct zf_fs *fs = make_garbage(dir, version);
	struct reader rd = { .fs = fs, .version = version };
	pthread_t th[2];
	int i;

	for (i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, reader_main, &rd), 0);
	for (round = 0; round < 12; round++) {
		struct zf_gc_opts o = { .max_waste = 1e-9 };
		struct zf_gc_report rep;
		int k;

		/* new garbage each round: rewrite a live file with the same bytes
		 * through a fresh name, and delete it */
		for (k = 0; k < 3; k++) {
			struct zf_attr a;
			uint8_t *buf = malloc(FILE_BYTES);

			ck_assert_int_eq(zf_fs_mknod(fs, ZF_ROOT_INO, "tmp", S_IFREG | 0644, 0, 0, 0,
						     &a), 0);
			t_fill(buf, FILE_BYTES, 77 + 10 * round + k);
			ck_assert_int_eq(zf_fs_write(fs, a.ino, buf, FILE_BYTES, 0),
					 (ssize_t)FILE_BYTES);
			ck_assert_int_eq(zf_fs_sync(fs), 0);
			ck_assert_int_eq(zf_fs_unlink(fs, ZF_ROOT_INO, "tmp"), 0);
			free(buf);
		}
		ck_assert_int_eq(zf_fs_gc(fs, &o, &rep), 0);
		ck_assert_uint_eq(rep.kept_damaged, 0);
	}
	rd.stop = 1;
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	ck_assert_uint_gt(rd.reads, 0);
	ck_assert_uint_eq(rd.errors, 0);
	check_all(fs, version);
	check_clean(fs);
	finish(fs, dir);
}
END_TEST

START_TEST(gc_refused_read_only)
{
	char *dir = t_tmpdir();
	struct zf_open_opts ro = { .readonly = 1 };
	struct zf_gc_opts o = { 0 };
	struct zf_gc_report rep;
	struct zf_fs *fs;

	ck_assert_int_eq(zf_fs_mkfs(dir, &gc_mkfs), 0);
	ck_assert_int_eq(zf_fs_open(dir, &ro, &fs), 0);
	ck_assert_int_eq(zf_fs_gc(fs, &o, &rep), -EROFS);
	finish(fs, dir);
}
END_TEST

/* a snapshot keeps every byte it holds through gc; deleted, the next gc frees them */
START_TEST(gc_keeps_snapshots)
{
	struct zf_open_opts so = { .snapshot = "before" };
	char *dir = t_tmpdir();
	struct zf_gc_opts o = { 0 };
	struct zf_gc_report rep;
	struct zf_fs *fs, *snap;
	uint64_t full, kept, freed;
	char name[32];
	int i, version[NFILES];

	ck_assert_int_eq(zf_fs_mkfs(dir, &gc_mkfs), 0);
	ck_assert_int_eq(zf_fs_open(dir, NULL, &fs), 0);
	for (i = 0; i < NFILES; i++) {
		write_file(fs, i, 0, 1);
		version[i] = 0;
	}
	ck_assert_int_eq(zf_fs_snapshot_create(fs, "before", NULL), 0);
	ck_assert_int_eq(zf_fs_snapshot_create(fs, "before", NULL), -EEXIST);
	ck_assert_int_eq(zf_fs_snapshot_create(fs, "../x", NULL), -EINVAL);
	full = seg_bytes(dir, NULL);
	for (i = 0; i < NFILES; i++) {
		snprintf(name, sizeof(name), "f%02d", i);
		ck_assert_int_eq(zf_fs_unlink(fs, ZF_ROOT_INO, name), 0);
	}
	ck_assert_int_eq(zf_fs_sync(fs), 0);
	ck_assert_int_eq(zf_fs_gc(fs, &o, &rep), 0);
	kept = seg_bytes(dir, NULL);
	ck_assert_uint_ge(kept, full - full / 20); /* nothing the snapshot holds went */
	check_clean(fs);
	ck_assert_int_eq(zf_fs_close(fs), 0);
	/* the snapshot opens on its own and reads as it was */
	ck_assert_int_eq(zf_fs_open(dir, &so, &snap), 0);
	check_all(snap, version);
	ck_assert_int_eq(zf_fs_unlink(snap, ZF_ROOT_INO, "f00"), -EROFS);
	ck_assert_int_eq(zf_fs_close(snap), 0);
	/* deleted: gc frees it */
	ck_assert_int_eq(zf_fs_open(dir, NULL, &fs), 0);
	ck_assert_int_eq(zf_fs_snapshot_delete(fs, "before"), 0);
	ck_assert_int_eq(zf_fs_snapshot_delete(fs, "before"), -ENOENT);
	ck_assert_int_eq(zf_fs_gc(fs, &o, &rep), 0);
	freed = seg_bytes(dir, NULL);
	ck_assert_uint_lt(freed, full / 10);
	check_clean(fs);
	finish(fs, dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("gc");
	TCase *tc = tcase_create("gc");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, getenv("ZF_SANITIZED") ? 600 : 120);
	tcase_add_test(tc, gc_gives_space_back);
	tcase_add_test(tc, gc_then_same_data_again);
	tcase_add_test(tc, gc_killed_leaves_garbage_next_run_removes);
	tcase_add_test(tc, gc_keeps_segments_above_the_limit);
	tcase_add_test(tc, gc_merges_small_segments);
	tcase_add_test(tc, gc_races_readers);
	tcase_add_test(tc, gc_refused_read_only);
	tcase_add_test(tc, gc_keeps_snapshots);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	zf_log_set_level(ZF_LOG_ERR);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
