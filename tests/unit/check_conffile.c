/*
 * tests/unit/check_conffile.c - zerofs.conf (devdir/conffile.c): lines,
 * comments and errors with file:line, every value checked as its mount
 * option, the layers' precedence (system < user < $ZEROFS_CONFIG <
 * ZEROFS_<KEY>), applying to mount options, mkfs's {name}.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devdir/conffile.h"

static char why[1024];

START_TEST(parse_lines)
{
	struct zf_conf c = { 0 };

	ck_assert_int_eq(zf_conf_parse_text(&c, "# a comment\n\n  cache_size = 10G  \n"
					    "max_delay=3\n\t# indented comment\nlog = syslog\n",
					    "f.conf", ZF_CONF_USER, why, sizeof(why)), 0);
	ck_assert_str_eq(zf_conf_get(&c, ZF_CONF_CACHE_SIZE), "10G");
	ck_assert_str_eq(c.set[ZF_CONF_CACHE_SIZE].origin, "f.conf:3");
	ck_assert_int_eq(c.set[ZF_CONF_CACHE_SIZE].source, ZF_CONF_USER);
	ck_assert_str_eq(zf_conf_get(&c, ZF_CONF_MAX_DELAY), "3");
	ck_assert_str_eq(c.set[ZF_CONF_LOG].origin, "f.conf:6");
	ck_assert_ptr_null(zf_conf_get(&c, ZF_CONF_MEM));
	zf_conf_free(&c);
}
END_TEST

START_TEST(parse_errors)
{
	struct zf_conf c = { 0 };

	ck_assert_int_eq(zf_conf_parse_text(&c, "cache_size = 1G\n\ncach_size = 2G\n", "a.conf",
					    ZF_CONF_SYSTEM, why, sizeof(why)), -EINVAL);
	ck_assert_str_eq(why, "a.conf:3: unknown key 'cach_size' (see zerofs.conf(5))");
	ck_assert_int_eq(zf_conf_parse_text(&c, "\nmax_delay = 0\n", "b.conf", ZF_CONF_SYSTEM,
					    why, sizeof(why)), -EINVAL);
	ck_assert_str_eq(why, "b.conf:2: invalid 'max_delay=0' (seconds)");
	ck_assert_int_eq(zf_conf_parse_text(&c, "cache_size 1G\n", "c.conf", ZF_CONF_SYSTEM,
					    why, sizeof(why)), -EINVAL);
	ck_assert_str_eq(why, "c.conf:1: expected 'key = value', got 'cache_size 1G'");
	ck_assert_int_eq(zf_conf_parse_text(&c, "log =\n", "d.conf", ZF_CONF_SYSTEM, why,
					    sizeof(why)), -EINVAL);
	ck_assert_str_eq(why, "d.conf:1: 'log' has no value");
	ck_assert_int_eq(zf_conf_parse_text(&c, "log_level = loud\n", "e.conf", ZF_CONF_SYSTEM,
					    why, sizeof(why)), -EINVAL);
	ck_assert_str_eq(why, "e.conf:1: invalid 'log_level=loud' (error, warn, info or debug)");
	ck_assert_int_eq(zf_conf_parse_text(&c, "options = allow_other,commit=0\n", "g.conf",
					    ZF_CONF_SYSTEM, why, sizeof(why)), -EINVAL);
	ck_assert_str_eq(why, "g.conf:1: invalid 'commit=0' (1..3600 seconds)");
	zf_conf_free(&c);
}
END_TEST

START_TEST(layers)
{
	struct zf_conf c = { 0 };

	ck_assert_int_eq(zf_conf_set(&c, "mem", "64M", ZF_CONF_USER, "u:1", why, sizeof(why)), 0);
	/* a lower layer read later does not override */
	ck_assert_int_eq(zf_conf_set(&c, "mem", "32M", ZF_CONF_SYSTEM, "s:1", why, sizeof(why)), 0);
	ck_assert_str_eq(zf_conf_get(&c, ZF_CONF_MEM), "64M");
	ck_assert_int_eq(zf_conf_set(&c, "mem", "128M", ZF_CONF_ENV, "ZEROFS_MEM", why,
				     sizeof(why)), 0);
	ck_assert_str_eq(zf_conf_get(&c, ZF_CONF_MEM), "128M");
	ck_assert_str_eq(c.set[ZF_CONF_MEM].origin, "ZEROFS_MEM");
	zf_conf_free(&c);
}
END_TEST

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_ge(fputs(text, f), 0);
	ck_assert_int_eq(fclose(f), 0);
}

START_TEST(load_precedence)
{
	char dir[] = "/tmp/zf-conf.XXXXXX", p[4][256];
	struct zf_conf c;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(p[0], sizeof(p[0]), "%s/system.conf", dir);
	snprintf(p[1], sizeof(p[1]), "%s/zerofs", dir);
	snprintf(p[2], sizeof(p[2]), "%s/zerofs/zerofs.conf", dir);
	snprintf(p[3], sizeof(p[3]), "%s/env.conf", dir);
	ck_assert_int_eq(mkdir(p[1], 0700), 0);
	write_file(p[0], "cache_size = 1G\nmax_delay = 1\ncommit = 1\nmem = 32M\n");
	write_file(p[2], "max_delay = 2\ncommit = 2\nmem = 64M\n");
	write_file(p[3], "commit = 3\nmem = 96M\n");
	setenv("ZEROFS_SYSTEM_CONFIG", p[0], 1);
	setenv("XDG_CONFIG_HOME", dir, 1);
	setenv("ZEROFS_CONFIG", p[3], 1);
	setenv("ZEROFS_MEM", "128M", 1);
	ck_assert_int_eq(zf_conf_load(&c, why, sizeof(why)), 0);
	ck_assert_str_eq(zf_conf_get(&c, ZF_CONF_CACHE_SIZE), "1G");
	ck_assert_int_eq(c.set[ZF_CONF_CACHE_SIZE].source, ZF_CONF_SYSTEM);
	ck_assert_str_eq(zf_conf_get(&c, ZF_CONF_MAX_DELAY), "2");
	ck_assert_int_eq(c.set[ZF_CONF_MAX_DELAY].source, ZF_CONF_USER);
	ck_assert_str_eq(zf_conf_get(&c, ZF_CONF_COMMIT), "3");
	ck_assert_int_eq(c.set[ZF_CONF_COMMIT].source, ZF_CONF_ENV_FILE);
	ck_assert_str_eq(zf_conf_get(&c, ZF_CONF_MEM), "128M");
	ck_assert_int_eq(c.set[ZF_CONF_MEM].source, ZF_CONF_ENV);
	ck_assert(c.present[ZF_CONF_SYSTEM] && c.present[ZF_CONF_USER]);
	zf_conf_free(&c);
	/* a missing user file is fine; a missing $ZEROFS_CONFIG file is not */
	unlink(p[2]);
	unsetenv("ZEROFS_CONFIG");
	ck_assert_int_eq(zf_conf_load(&c, why, sizeof(why)), 0);
	ck_assert(!c.present[ZF_CONF_USER]);
	zf_conf_free(&c);
	setenv("ZEROFS_CONFIG", p[2], 1);
	ck_assert_int_eq(zf_conf_load(&c, why, sizeof(why)), -ENOENT);
	ck_assert_ptr_nonnull(strstr(why, "cannot read the configuration file"));
	zf_conf_free(&c);
	unsetenv("ZEROFS_CONFIG");
	setenv("ZEROFS_MEM", "1M", 1);
	ck_assert_int_eq(zf_conf_load(&c, why, sizeof(why)), -EINVAL);
	ck_assert_str_eq(why, "environment variable ZEROFS_MEM: invalid 'mem=1M' (like 256M; "
			      "at least 16M)");
	zf_conf_free(&c);
	unsetenv("ZEROFS_MEM");
	unsetenv("ZEROFS_SYSTEM_CONFIG");
	unsetenv("XDG_CONFIG_HOME");
	unlink(p[0]);
	unlink(p[3]);
	rmdir(p[1]);
	rmdir(dir);
}
END_TEST

START_TEST(apply_and_remote)
{
	static struct zf_mount_opts mo;
	struct zf_conf c = { 0 };
	char url[256];

	ck_assert_int_eq(zf_conf_parse_text(&c, "cache_size = 64M\noptions = allow_other\n"
					    "log_level = debug\nremote = s3://b/zf/{name}?region=x\n",
					    "f", ZF_CONF_USER, why, sizeof(why)), 0);
	zf_mount_opts_init(&mo);
	ck_assert_int_eq(zf_conf_apply_mount(&c, &mo, why, sizeof(why)), 0);
	ck_assert_uint_eq(mo.dd.remote.local_budget, 64ull << 20);
	ck_assert_str_eq(mo.fuse, "allow_other");
	ck_assert_int_eq(mo.log_level, 3);
	ck_assert_ptr_null(mo.dd.url); /* remote is mkfs's, not the mount's */
	ck_assert_int_eq(zf_conf_mkfs_remote(&c, "/srv/work/", url, sizeof(url)), 0);
	ck_assert_str_eq(url, "s3://b/zf/work?region=x");
	ck_assert_int_eq(zf_conf_mkfs_remote(&c, "dev", url, sizeof(url)), 0);
	ck_assert_str_eq(url, "s3://b/zf/dev?region=x");
	ck_assert_int_eq(zf_conf_mkfs_remote(&c, "/srv/work", url, 10), -ENAMETOOLONG);
	zf_conf_free(&c);
	ck_assert_int_eq(zf_conf_mkfs_remote(&c, "/srv/work", url, sizeof(url)), -ENOENT);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("conffile");
	TCase *tc = tcase_create("conffile");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, parse_lines);
	tcase_add_test(tc, parse_errors);
	tcase_add_test(tc, layers);
	tcase_add_test(tc, load_precedence);
	tcase_add_test(tc, apply_and_remote);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
