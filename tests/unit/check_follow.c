/*
 * tests/unit/check_follow.c - unit tests of zf_fs_follow, a replica's
 * table following its writer's log (storage/fs_follow.c). The writer is a
 * second fs on another directory; copying its files into the replica's
 * meta/ and seg/ stands in for the tier's fetches (tier/follow.c).
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "storage/fs_ns.h"
#include "storage/fs_data.h"
#include "storage/fs_tier.h"
#include "zf_test.h"

struct pair {
	char *w, *r;		/* the writer's dev-dir, the replica's */
	struct zf_fs *wfs, *rfs;
};

/* copy dir a/sub/name to b/sub/name */
static void copy_one(const char *a, const char *b, const char *sub, const char *name)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "cp '%s/%s/%s' '%s/%s/%s'", a, sub, name, b, sub, name);
	ck_assert_int_eq(system(cmd), 0);
}

/* the writer's files in sub/ (those starting with prefix) into the replica */
static void copy_dir(struct pair *p, const char *sub, const char *prefix)
{
	char path[512];
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", p->w, sub);
	d = opendir(path);
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && !strncmp(e->d_name, prefix, strlen(prefix)) &&
		    !strstr(e->d_name, ".tmp"))
			copy_one(p->w, p->r, sub, e->d_name);
	closedir(d);
}

static void make_pair(struct pair *p)
{
	struct zf_open_opts ro = { .readonly = 1 };
	char cmd[1024];

	p->w = t_tmpdir();
	p->r = t_tmpdir();
	ck_assert_int_eq(zf_fs_mkfs(p->w, NULL), 0);
	ck_assert_int_eq(zf_fs_open(p->w, NULL, &p->wfs), 0);
	ck_assert_int_eq(zf_fs_sync(p->wfs), 0);
	snprintf(cmd, sizeof(cmd), "mkdir '%s/meta' '%s/seg' && cp '%s/superblock' '%s/'", p->r,
		 p->r, p->w, p->r);
	ck_assert_int_eq(system(cmd), 0);
	copy_dir(p, "meta", "");
	ck_assert_int_eq(zf_fs_open(p->r, &ro, &p->rfs), 0);
}

static void free_pair(struct pair *p)
{
	ck_assert_int_eq(zf_fs_close(p->rfs), 0);
	ck_assert_int_eq(zf_fs_close(p->wfs), 0);
	t_rmrf(p->w);
	t_rmrf(p->r);
	free(p->w);
	free(p->r);
}

static uint64_t make_file(struct zf_fs *fs, const char *name, size_t len, uint64_t seed)
{
	uint8_t *buf = malloc(len);
	struct zf_attr a;

	t_fill(buf, len, seed);
	ck_assert_int_eq(zf_fs_mknod(fs, ZF_ROOT_INO, name, S_IFREG | 0644, 0, 0, 0, &a), 0);
	ck_assert_int_eq(zf_fs_write(fs, a.ino, buf, len, 0), (ssize_t)len);
	ck_assert_int_eq(zf_fs_fsync(fs, a.ino), 0);
	free(buf);
	return a.ino;
}

/* the replica holds name with len bytes of seed */
static void has_file(struct zf_fs *fs, const char *name, size_t len, uint64_t seed)
{
	uint8_t *want = malloc(len), *got = malloc(len + 1);
	struct zf_attr a;

	t_fill(want, len, seed);
	ck_assert_int_eq(zf_fs_lookup(fs, ZF_ROOT_INO, name, &a), 0);
	ck_assert_uint_eq(a.size, len);
	ck_assert_int_eq(zf_fs_read(fs, a.ino, got, len + 1, 0), (ssize_t)len);
	ck_assert(memcmp(want, got, len) == 0);
	free(want);
	free(got);
}

static int has_change(const struct zf_fs_changes *ch, uint64_t ino, const char *name)
{
	size_t i;

	for (i = 0; i < ch->n; i++)
		if (ch->v[i].ino == ino && (name ? ch->v[i].name && !strcmp(ch->v[i].name, name)
						 : !ch->v[i].name))
			return 1;
	return 0;
}

START_TEST(follow_along_applies_new_records)
{
	struct zf_fs_changes ch = { 0 };
	struct pair p;
	struct zf_attr a;
	uint64_t ino;

	make_pair(&p);
	ck_assert_int_eq(zf_fs_lookup(p.rfs, ZF_ROOT_INO, "a", &a), -ENOENT);
	ino = make_file(p.wfs, "a", 300000, 1);
	ck_assert_int_eq(zf_fs_sync(p.wfs), 0);
	copy_dir(&p, "seg", "");
	copy_dir(&p, "meta", "log.");
	ck_assert_int_eq(zf_fs_follow(p.rfs, 0, &ch), 0);
	ck_assert_int_eq(ch.reloaded, 0);
	ck_assert_uint_eq(ch.applied, zf_fs_committed_seq(p.wfs));
	ck_assert_uint_eq(zf_fs_applied(p.rfs), ch.applied);
	ck_assert(has_change(&ch, ZF_ROOT_INO, "a"));
	ck_assert(has_change(&ch, ino, NULL));
	has_file(p.rfs, "a", 300000, 1);
	zf_fs_changes_free(&ch);

	/* a rename and an overwrite: the old name goes, the new bytes show */
	ck_assert_int_eq(zf_fs_rename(p.wfs, ZF_ROOT_INO, "a", ZF_ROOT_INO, "b", 0), 0);
	ck_assert_int_eq(zf_fs_unlink(p.wfs, ZF_ROOT_INO, "b"), 0);
	make_file(p.wfs, "b", 5000, 2);
	ck_assert_int_eq(zf_fs_sync(p.wfs), 0);
	copy_dir(&p, "seg", "");
	copy_dir(&p, "meta", "log.");
	ck_assert_int_eq(zf_fs_follow(p.rfs, 0, &ch), 0);
	ck_assert(has_change(&ch, ZF_ROOT_INO, "a"));
	ck_assert(has_change(&ch, ZF_ROOT_INO, "b"));
	ck_assert_int_eq(zf_fs_lookup(p.rfs, ZF_ROOT_INO, "a", &a), -ENOENT);
	has_file(p.rfs, "b", 5000, 2);
	zf_fs_changes_free(&ch);

	/* nothing new: nothing applied, nothing changed */
	ck_assert_int_eq(zf_fs_follow(p.rfs, 0, &ch), 0);
	ck_assert_uint_eq(ch.n, 0);
	zf_fs_changes_free(&ch);
	free_pair(&p);
}
END_TEST

START_TEST(follow_reloads_past_a_checkpoint)
{
	struct zf_fs_changes ch = { 0 };
	struct pair p;
	struct zf_attr a;
	uint64_t ino, keep;
	DIR *d;
	struct dirent *e;
	char path[512];
	int ckpts = 0;

	make_pair(&p);
	ino = make_file(p.wfs, "kept", 100000, 3);
	ck_assert_int_eq(zf_fs_sync(p.wfs), 0);
	copy_dir(&p, "seg", "");
	copy_dir(&p, "meta", "log.");
	ck_assert_int_eq(zf_fs_follow(p.rfs, 0, &ch), 0);
	zf_fs_changes_free(&ch);
	/* the kernel holds the file */
	ck_assert_int_eq(zf_fs_lookup_ref(p.rfs, ZF_ROOT_INO, "kept", &a), 0);
	ck_assert_uint_eq(a.ino, ino);

	/* records the replica never sees in a log: only the checkpoint has them */
	make_file(p.wfs, "x", 70000, 4);
	ck_assert_int_eq(zf_fs_checkpoint(p.wfs), 0);
	make_file(p.wfs, "y", 9000, 5);
	ck_assert_int_eq(zf_fs_sync(p.wfs), 0);
	copy_dir(&p, "seg", "");
	copy_dir(&p, "meta", "ckpt.");
	keep = zf_fs_applied(p.rfs);
	{
		/* the log after the checkpoint only: the one before it is gone */
		struct dirent *le;
		DIR *ld;

		snprintf(path, sizeof(path), "%s/meta", p.w);
		ld = opendir(path);
		while ((le = readdir(ld))) {
			unsigned long long v;

			if (sscanf(le->d_name, "log.%16llx", &v) == 1 && v > keep + 1)
				copy_one(p.w, p.r, "meta", le->d_name);
		}
		closedir(ld);
	}
	ck_assert_int_eq(zf_fs_follow(p.rfs, 0, &ch), 0);
	ck_assert_int_eq(ch.reloaded, 1);
	ck_assert(has_change(&ch, ino, NULL)); /* what the kernel holds is refreshed */
	ck_assert_uint_eq(ch.applied, zf_fs_committed_seq(p.wfs));
	zf_fs_changes_free(&ch);
	has_file(p.rfs, "kept", 100000, 3);
	has_file(p.rfs, "x", 70000, 4);
	has_file(p.rfs, "y", 9000, 5);
	zf_fs_forget(p.rfs, ino, 1); /* its lookup came along (a debug build checks) */
	ck_assert_uint_eq(zf_fs_ckpt_seq(p.rfs), zf_fs_ckpt_seq(p.wfs));
	/* the older checkpoint went from meta/ */
	snprintf(path, sizeof(path), "%s/meta", p.r);
	d = opendir(path);
	while ((e = readdir(d)))
		ckpts += !strncmp(e->d_name, "ckpt.", 5);
	closedir(d);
	ck_assert_int_eq(ckpts, 1);
	free_pair(&p);
}
END_TEST

START_TEST(follow_failed_reload_changes_nothing)
{
	struct zf_fs_changes ch = { 0 };
	struct pair p;
	char path[512];
	int fd;

	make_pair(&p);
	make_file(p.wfs, "a", 20000, 6);
	ck_assert_int_eq(zf_fs_sync(p.wfs), 0);
	copy_dir(&p, "seg", "");
	copy_dir(&p, "meta", "log.");
	ck_assert_int_eq(zf_fs_follow(p.rfs, 0, &ch), 0);
	zf_fs_changes_free(&ch);
	/* a newer checkpoint that does not verify */
	snprintf(path, sizeof(path), "%s/meta/ckpt.00000000000fffff", p.r);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "garbage, not a checkpoint", 25), 25);
	close(fd);
	ck_assert_int_lt(zf_fs_follow(p.rfs, 1, &ch), 0);
	zf_fs_changes_free(&ch);
	has_file(p.rfs, "a", 20000, 6);
	unlink(path);
	free_pair(&p);
}
END_TEST

START_TEST(follow_refused_on_a_writer)
{
	struct zf_fs_changes ch = { 0 };
	struct pair p;

	make_pair(&p);
	ck_assert_int_eq(zf_fs_follow(p.wfs, 0, &ch), -EROFS);
	free_pair(&p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("follow");
	TCase *tc = tcase_create("follow");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, getenv("ZF_SANITIZED") ? 600 : 120);
	tcase_add_test(tc, follow_along_applies_new_records);
	tcase_add_test(tc, follow_reloads_past_a_checkpoint);
	tcase_add_test(tc, follow_failed_reload_changes_nothing);
	tcase_add_test(tc, follow_refused_on_a_writer);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	zf_log_set_level(ZF_LOG_ERR);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
