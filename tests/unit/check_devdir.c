/*
 * tests/unit/check_devdir.c - unit tests of devdir/: the remote.conf codec,
 * the mount -o parser, and a dev-dir formatted and opened in each mode
 * against a file:// bucket (no mount, no network).
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <unistd.h>

#include "common/log.h"
#include "devdir/devdir.h"
#include "devdir/mount_opts.h"
#include "zf_test.h"

static void write_text(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

START_TEST(remote_conf_round_trip)
{
	char *dir = t_tmpdir(), url[ZF_REMOTE_URL_MAX] = "untouched";

	ck_assert_int_eq(zf_remote_conf_read(dir, url, sizeof(url)), -ENOENT);
	ck_assert_str_eq(url, "untouched");
	ck_assert_int_eq(zf_remote_conf_write(dir, "s3://b/p"), 0);
	ck_assert_int_eq(zf_remote_conf_read(dir, url, sizeof(url)), 0);
	ck_assert_str_eq(url, "s3://b/p");
	/* the last url line wins; other lines are ignored */
	write_text(dir, "remote.conf", "url file:///a\n# note\nurl file:///b\nother x\n");
	ck_assert_int_eq(zf_remote_conf_read(dir, url, sizeof(url)), 0);
	ck_assert_str_eq(url, "file:///b");
	write_text(dir, "remote.conf", "nothing here\n");
	ck_assert_int_eq(zf_remote_conf_read(dir, url, sizeof(url)), -ENOENT);
	ck_assert(zf_remote_conf_is_bucket("file:///x"));
	ck_assert(!zf_remote_conf_is_bucket(ZF_REMOTE_NONE));
	ck_assert(!zf_remote_conf_is_bucket(""));
	t_rmrf(dir);
	free(dir);
}
END_TEST

START_TEST(mount_opts_parse)
{
	static struct zf_mount_opts o;
	char why[256];

	memset(&o, 0, sizeof(o));
	ck_assert_int_eq(zf_mount_opts_parse("remote=file:///b,cache_size=64M,commit=7,"
					     "timeout=0,ckpt=2,mem=32M,allow_other,defaults,x-y",
					     &o, why, sizeof(why)), 0);
	ck_assert_str_eq(o.dd.url, "file:///b");
	ck_assert_uint_eq(o.dd.remote.local_budget, 64ull << 20);
	ck_assert_uint_eq(o.commit_secs, 7);
	ck_assert(o.timeout > 0 && o.timeout < 0.01);
	ck_assert_uint_eq(o.dd.open.ckpt_bytes, 2ull << 20);
	ck_assert_uint_eq(o.dd.open.mem_bytes, 32ull << 20);
	ck_assert_str_eq(o.fuse, "allow_other"); /* mount(8)'s own options dropped */
	ck_assert_int_eq(zf_mount_opts_parse("ro,fetch_timeout=3,write_wait=4,max_delay=5", &o,
					     why, sizeof(why)), 0);
	ck_assert_str_eq(o.fuse, "allow_other,ro");
	ck_assert_uint_eq(o.dd.remote.fetch_timeout_ms, 3000);
	ck_assert_uint_eq(o.dd.remote.write_wait_ms, 4000);
	ck_assert_uint_eq(o.dd.remote.max_delay_s, 5);
	ck_assert_int_eq(zf_mount_opts_parse("commit=0", &o, why, sizeof(why)), -EINVAL);
	ck_assert_str_eq(why, "invalid 'commit=0' (1..3600 seconds)");
	ck_assert_int_eq(zf_mount_opts_parse("mem=1M", &o, why, sizeof(why)), -EINVAL);
	ck_assert_str_eq(why, "invalid 'mem=1M' (like 256M; at least 16M)");
}
END_TEST

START_TEST(mount_opts_log)
{
	static struct zf_mount_opts o;
	char why[256];

	zf_mount_opts_init(&o);
	ck_assert_int_eq(o.log_level, ZF_MOUNT_LOG_LEVEL_UNSET);
	ck_assert_str_eq(o.log, "");
	ck_assert_int_eq(zf_mount_opts_parse("log=/var/log/zf.log,log_level=debug", &o, why,
					     sizeof(why)), 0);
	ck_assert_str_eq(o.log, "/var/log/zf.log");
	ck_assert_int_eq(o.log_level, ZF_LOG_DEBUG);
	ck_assert_int_eq(zf_mount_opts_parse("log=syslog,log_level=warn", &o, why, sizeof(why)), 0);
	ck_assert_str_eq(o.log, "syslog");
	ck_assert_int_eq(o.log_level, ZF_LOG_WARN);
	ck_assert_str_eq(o.fuse, ""); /* neither goes to libfuse */
	ck_assert_int_eq(zf_mount_opts_parse("log_level=loud", &o, why, sizeof(why)), -EINVAL);
	ck_assert_str_eq(why, "invalid 'log_level=loud' (error, warn, info or debug)");
	ck_assert_int_eq(zf_mount_opts_parse("log=", &o, why, sizeof(why)), -EINVAL);
	ck_assert_str_eq(why, "invalid 'log=' (syslog, stderr or a file)");
}
END_TEST

START_TEST(parse_numbers)
{
	uint64_t v;
	long l;

	ck_assert_int_eq(zf_parse_size("2G", &v), 0);
	ck_assert_uint_eq(v, 2ull << 30);
	ck_assert_int_eq(zf_parse_size("512KiB", &v), 0);
	ck_assert_uint_eq(v, 512ull << 10);
	ck_assert_int_eq(zf_parse_size("-1", &v), -EINVAL);
	ck_assert_int_eq(zf_parse_size("16777217T", &v), -EINVAL);
	ck_assert_int_eq(zf_parse_size("3X", &v), -EINVAL);
	ck_assert_int_eq(zf_parse_int("19", 1, 19, &l), 0);
	ck_assert_int_eq(l, 19);
	ck_assert_int_eq(zf_parse_int("20", 1, 19, &l), -EINVAL);
	ck_assert_int_eq(zf_parse_int("", 1, 19, &l), -EINVAL);
}
END_TEST

/* a formatted dev-dir in a scratch dir, its bucket beside it */
static char *new_devdir(char **ret_base, char *url, size_t len)
{
	struct zf_devdir_err err;
	char *base = t_tmpdir(), *dev;

	ck_assert_int_ne(asprintf(&dev, "%s/dev", base), -1);
	ck_assert_int_eq(zf_devdir_mkfs(dev, NULL, NULL, url, len, &err), 0);
	*ret_base = base;
	return dev;
}

START_TEST(devdir_mkfs_and_modes)
{
	char url[ZF_REMOTE_URL_MAX], conf[ZF_REMOTE_URL_MAX], want[ZF_REMOTE_URL_MAX + 32];
	struct zf_devdir_err err = { 0 };
	struct zf_gc_opts go = { .max_waste = ZF_GC_MAX_WASTE };
	struct zf_gc_report gr;
	struct zf_devdir *dd, *dd2;
	char *base, *dev, *real;

	dev = new_devdir(&base, url, sizeof(url));
	real = realpath(dev, NULL);
	snprintf(want, sizeof(want), "file://%s.bucket", real);
	free(real);
	ck_assert_str_eq(url, want); /* the embedded default */
	ck_assert_int_eq(zf_remote_conf_read(dev, conf, sizeof(conf)), 0);
	ck_assert_str_eq(conf, url);
	/* a second mkfs is refused by the core */
	ck_assert_int_eq(zf_devdir_mkfs(dev, NULL, NULL, url, sizeof(url), &err), -EEXIST);
	ck_assert_int_eq(err.at, ZF_DEVDIR_AT_CORE);
	ck_assert(!zf_devdir_wants_restore(dev, url));

	/* fsck before any mount: the bucket is not there, nothing was uploaded */
	ck_assert_int_eq(zf_devdir_open(dev, ZF_DEVDIR_FSCK, NULL, &dd, NULL), 0);
	ck_assert_int_eq(dd->bucket, ZF_DEVDIR_UNUSED);
	ck_assert_ptr_null(dd->rm);
	ck_assert_int_eq(zf_devdir_close(dd), 0);

	/* mount: the bucket is created and attached; the lock is held */
	ck_assert_int_eq(zf_devdir_open(dev, ZF_DEVDIR_MOUNT, NULL, &dd, &err), 0);
	ck_assert_int_eq(dd->bucket, ZF_DEVDIR_ATTACHED);
	ck_assert_ptr_nonnull(dd->rm);
	ck_assert_int_eq(zf_devdir_open(dev, ZF_DEVDIR_STATS, NULL, &dd2, &err), -EBUSY);
	ck_assert_int_eq(err.at, ZF_DEVDIR_AT_CORE);
	ck_assert_int_eq(zf_devdir_close(dd), 0);
	ck_assert_int_eq(zf_devdir_wait_released(dev, 1000), 0);

	/* gc with the bucket, stats without */
	ck_assert_int_eq(zf_devdir_open(dev, ZF_DEVDIR_GC, NULL, &dd, &err), 0);
	ck_assert_ptr_nonnull(dd->rm);
	ck_assert_int_eq(zf_devdir_gc(dd, &go, &gr), 0);
	ck_assert_int_eq(zf_devdir_close(dd), 0);
	ck_assert_int_eq(zf_devdir_open(dev, ZF_DEVDIR_STATS, NULL, &dd, &err), 0);
	ck_assert_ptr_null(dd->rm);
	ck_assert_int_eq(zf_devdir_close(dd), 0);

	/* a url given for the open wins over remote.conf's */
	{
		struct zf_devdir_opts o = { .url = ZF_REMOTE_NONE };

		ck_assert_int_eq(zf_devdir_open(dev, ZF_DEVDIR_GC, &o, &dd, &err), 0);
		ck_assert_int_eq(dd->bucket, ZF_DEVDIR_NO_BUCKET);
		zf_devdir_close(dd);
	}
	t_rmrf(base);
	free(base);
	free(dev);
}
END_TEST

START_TEST(devdir_restore_into_empty)
{
	struct zf_restore_report rep = { 0 };
	struct zf_devdir_err err;
	char url[ZF_REMOTE_URL_MAX], conf[ZF_REMOTE_URL_MAX];
	struct zf_devdir *dd;
	char *base, *dev, *dev2;

	dev = new_devdir(&base, url, sizeof(url));
	/* a mount puts the filesystem into the bucket; close uploads the rest */
	ck_assert_int_eq(zf_devdir_open(dev, ZF_DEVDIR_MOUNT, NULL, &dd, &err), 0);
	ck_assert_int_eq(zf_remote_start(dd->rm), 0);
	ck_assert_int_eq(zf_devdir_close(dd), 0);
	ck_assert_int_ne(asprintf(&dev2, "%s/dev2", base), -1);
	ck_assert(zf_devdir_wants_restore(dev2, url));
	ck_assert(!zf_devdir_wants_restore(dev2, ZF_REMOTE_NONE));
	ck_assert_int_eq(zf_devdir_restore(dev2, url, NULL, &rep), 0);
	ck_assert(!zf_devdir_wants_restore(dev2, url));
	ck_assert_int_eq(zf_remote_conf_read(dev2, conf, sizeof(conf)), 0);
	ck_assert_str_eq(conf, url);
	ck_assert_int_eq(zf_devdir_open(dev2, ZF_DEVDIR_STATS, NULL, &dd, &err), 0);
	ck_assert_int_eq(zf_devdir_close(dd), 0);
	t_rmrf(base);
	free(base);
	free(dev);
	free(dev2);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("devdir");
	TCase *tc = tcase_create("devdir");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, getenv("ZF_SANITIZED") ? 300 : 60);
	tcase_add_test(tc, remote_conf_round_trip);
	tcase_add_test(tc, mount_opts_parse);
	tcase_add_test(tc, mount_opts_log);
	tcase_add_test(tc, parse_numbers);
	tcase_add_test(tc, devdir_mkfs_and_modes);
	tcase_add_test(tc, devdir_restore_into_empty);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	zf_log_set_level(ZF_LOG_NONE);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
