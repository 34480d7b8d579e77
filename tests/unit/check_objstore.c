/*
 * tests/unit/check_objstore.c - unit tests for net/: the object-store
 * interface over file://, the fault wrapper, SigV4 signing and the s3
 * backend's offline behaviour (URL and credentials checks, retries against
 * a closed loopback port). No server, no network: tests/e2e/10-s3.sh runs
 * the s3 backend against a real S3 server.
 *
 * Every test works in its own scratch directory under one root made by
 * main() and removed at the end (a failed forked test cannot clean up).
 * Data comes from a seeded splitmix64 generator.
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "net/objstore.h"
#include "net/s3_sign.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

static char g_root[PATH_MAX / 2];

/* ---- helpers ---- */

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)splitmix64(&seed);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

static void rm_tree(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* a fresh scratch directory; returns its file:// URL in url */
static void scratch(char *dir, size_t dlen, char *url, size_t ulen)
{
	snprintf(dir, dlen, "%s/t-XXXXXX", g_root);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(url, ulen, "file://%s", dir);
}

static struct zf_objstore *open_ok(const char *url)
{
	struct zf_objstore *st = NULL;

	ck_assert_int_eq(zf_objstore_open(url, NULL, &st), 0);
	ck_assert_ptr_nonnull(st);
	return st;
}

static void put_str(struct zf_objstore *st, const char *key, const char *s)
{
	ck_assert_int_eq(zf_objstore_put(st, key, s, strlen(s)), 0);
}

/* get and compare with want[0..n) */
static void get_eq(struct zf_objstore *st, const char *key, uint64_t off, size_t len,
		   const void *want, size_t n)
{
	void *buf = NULL;
	size_t got = 0;

	ck_assert_int_eq(zf_objstore_get(st, key, off, len, &buf, &got), 0);
	ck_assert_uint_eq(got, n);
	ck_assert(memcmp(buf, want, n) == 0);
	free(buf);
}

static int get_err(struct zf_objstore *st, const char *key, uint64_t off, size_t len)
{
	void *buf = (void *)0x1;
	size_t got = 12345;
	int r = zf_objstore_get(st, key, off, len, &buf, &got);

	ck_assert_int_lt(r, 0);
	ck_assert_ptr_eq(buf, (void *)0x1);	/* ret_* written only on success */
	ck_assert_uint_eq(got, 12345);
	return r;
}

/* stderr captured into a file while a test step runs */
struct capture {
	char path[PATH_MAX];
	int saved;
};

static void capture_start(struct capture *c)
{
	int fd;

	snprintf(c->path, sizeof(c->path), "%s/stderr-XXXXXX", g_root);
	fd = mkstemp(c->path);
	ck_assert_int_ge(fd, 0);
	fflush(stderr);
	c->saved = dup(2);
	dup2(fd, 2);
	close(fd);
}

/* stop capturing; returns the text (malloc'd) */
static char *capture_end(struct capture *c)
{
	void *buf;
	size_t len;
	char *s;

	fflush(stderr);
	dup2(c->saved, 2);
	close(c->saved);
	ck_assert_int_eq(zf_read_file(AT_FDCWD, c->path, &buf, &len), 0);
	unlink(c->path);
	s = zf_malloc(len + 1);
	memcpy(s, buf, len);
	s[len] = 0;
	free(buf);
	return s;
}

struct keyset {
	char **v;
	size_t n;
	uint64_t total_size;
	int stop_after;		/* return 7 after this many keys (0: never) */
};

static int collect(void *ctx, const char *key, uint64_t size)
{
	struct keyset *k = ctx;

	k->v = zf_realloc(k->v, (k->n + 1) * sizeof(char *));
	k->v[k->n++] = zf_strdup(key);
	k->total_size += size;
	if (k->stop_after && (int)k->n == k->stop_after)
		return 7;
	return 0;
}

static int cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void keyset_sort(struct keyset *k)
{
	if (k->n)	/* no qsort of NULL, even for zero elements (UBSan) */
		qsort(k->v, k->n, sizeof(char *), cmpstr);
}

static void keyset_free(struct keyset *k)
{
	size_t i;

	for (i = 0; i < k->n; i++)
		free(k->v[i]);
	free(k->v);
	memset(k, 0, sizeof(*k));
}

/* create or replace path with s[0..n) */
static int write_file(const char *path, const void *s, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), r;

	if (fd < 0)
		return -errno;
	r = zf_write_full(fd, s, n);
	close(fd);
	return r;
}

static uint64_t now_ms(void)
{
	return zf_mono_ns() / 1000000;
}

/* ---- keys and URLs ---- */

START_TEST(test_key_valid)
{
	static const char *good[] = { "a", "seg/00000042", "a/b/c", "~x(y) z+!", "a..b", ".hidden",
				      "é" };
	static const char *bad[] = { "", "/a", "a/", "a//b", "./a", "a/./b", "a/..", "..",
				     ".zf-tmp/x", ".zf-tmp", "a\nb", "a\x7f" };
	char longkey[ZF_OBJSTORE_KEY_MAX + 2];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(zf_objstore_key_valid(good[i]) == 0, "'%s' should be valid", good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(zf_objstore_key_valid(bad[i]) == -EINVAL, "'%s' should be invalid",
			      bad[i]);
	ck_assert_int_eq(zf_objstore_key_valid(NULL), -EINVAL);
	memset(longkey, 'k', sizeof(longkey));
	longkey[ZF_OBJSTORE_KEY_MAX] = 0;
	ck_assert_int_eq(zf_objstore_key_valid(longkey), 0);
	longkey[ZF_OBJSTORE_KEY_MAX] = 'k';
	longkey[ZF_OBJSTORE_KEY_MAX + 1] = 0;
	ck_assert_int_eq(zf_objstore_key_valid(longkey), -EINVAL);
}
END_TEST

START_TEST(test_bad_urls)
{
	static const char *bad[] = {
		"", "http://x/y", "file:", "file://relative/path", "file:relative", "s3://",
		"s3:///prefix", "s3://ab", "s3://bad!bucket", "s3://bucket?bogus=1",
		"s3://bucket?endpoint=ftp://host", "s3://bucket?endpoint=http://host/sub/path",
		"s3://bucket?addressing=sideways", "s3://bucket/a//b", "fault:",
		"fault:bogus=1;file:///tmp", "fault:nth=x;file:///tmp", "fault:rate=2;file:///tmp",
		"fault:err=EWHAT;file:///tmp", "fault:ops=put+frob;file:///tmp", "fault:nth=1",
	};
	struct zf_objstore *st = (void *)0x1;
	size_t i;

	setenv("AWS_ACCESS_KEY_ID", "AKID", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
	zf_log_set_level(ZF_LOG_NONE);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(zf_objstore_open(bad[i], NULL, &st) == -EINVAL,
			      "'%s' should be rejected with -EINVAL", bad[i]);
	ck_assert_ptr_eq(st, (void *)0x1);
	ck_assert_int_eq(zf_objstore_open(NULL, NULL, &st), -EINVAL);
	/* a directory that does not exist is not a bucket */
	ck_assert_int_eq(zf_objstore_open("file:///nonexistent/zf-objstore", NULL, &st), -ENOENT);
	zf_log_set_level(ZF_LOG_WARN);
}
END_TEST

START_TEST(test_file_create_opt)
{
	struct zf_objstore_opts o = { .create = 1 };
	char dir[PATH_MAX], url[PATH_MAX + 16], sub[PATH_MAX + 32];
	struct zf_objstore *st;

	scratch(dir, sizeof(dir), url, sizeof(url));
	snprintf(sub, sizeof(sub), "%s/x/y/", url);
	ck_assert_int_eq(zf_objstore_open(sub, &o, &st), 0);
	ck_assert_str_eq(zf_objstore_url(st), sub);
	put_str(st, "k", "v");
	zf_objstore_close(st);
	snprintf(sub, sizeof(sub), "%s/x/y/k", dir);
	ck_assert_int_eq(access(sub, R_OK), 0);
	rm_tree(dir);
}
END_TEST

/* ---- file:// ---- */

START_TEST(test_file_put_get_head)
{
	char dir[PATH_MAX], url[PATH_MAX + 16];
	struct zf_objstore_stat s1, s2;
	struct zf_objstore *st;
	size_t n = 1 * MIB + 17;
	uint8_t *data = zf_malloc(n);

	scratch(dir, sizeof(dir), url, sizeof(url));
	st = open_ok(url);
	fill_random(data, n, 1);
	ck_assert_int_eq(zf_objstore_put(st, "seg/0001", data, n), 0);
	get_eq(st, "seg/0001", 0, 0, data, n);
	ck_assert_int_eq(zf_objstore_head(st, "seg/0001", &s1), 0);
	ck_assert_uint_eq(s1.size, n);
	ck_assert(s1.etag[0]);

	/* replace with a smaller object: the tag changes, old bytes are gone */
	ck_assert_int_eq(zf_objstore_put(st, "seg/0001", data + 5, 1000), 0);
	get_eq(st, "seg/0001", 0, 0, data + 5, 1000);
	ck_assert_int_eq(zf_objstore_head(st, "seg/0001", &s2), 0);
	ck_assert_uint_eq(s2.size, 1000);
	ck_assert_str_ne(s1.etag, s2.etag);

	/* an empty object */
	ck_assert_int_eq(zf_objstore_put(st, "empty", NULL, 0), 0);
	get_eq(st, "empty", 0, 0, "", 0);
	ck_assert_int_eq(zf_objstore_head(st, "empty", &s1), 0);
	ck_assert_uint_eq(s1.size, 0);

	/* keys with characters S3 clients get wrong work here too */
	put_str(st, "odd/~tilde (paren) sp+ace", "odd");
	get_eq(st, "odd/~tilde (paren) sp+ace", 0, 0, "odd", 3);

	/* invalid keys never reach the disk */
	zf_log_set_level(ZF_LOG_NONE);
	ck_assert_int_eq(zf_objstore_put(st, "../escape", "x", 1), -EINVAL);
	ck_assert_int_eq(zf_objstore_put(st, ".zf-tmp/x", "x", 1), -EINVAL);
	ck_assert_int_eq(get_err(st, "a//b", 0, 0), -EINVAL);
	zf_log_set_level(ZF_LOG_WARN);
	zf_objstore_close(st);
	free(data);
	rm_tree(dir);
}
END_TEST

START_TEST(test_file_range)
{
	char dir[PATH_MAX], url[PATH_MAX + 16];
	struct zf_objstore *st;
	size_t n = 256 * KIB;
	uint8_t *data = zf_malloc(n);
	struct capture c;
	char *log;

	scratch(dir, sizeof(dir), url, sizeof(url));
	st = open_ok(url);
	fill_random(data, n, 2);
	ck_assert_int_eq(zf_objstore_put(st, "obj", data, n), 0);
	get_eq(st, "obj", 0, 1, data, 1);	/* the one S3 servers get wrong */
	get_eq(st, "obj", 1000, 5000, data + 1000, 5000);
	get_eq(st, "obj", n - 1, 1, data + n - 1, 1);
	get_eq(st, "obj", 4096, 0, data + 4096, n - 4096);	/* to the end */
	get_eq(st, "obj", n, 0, "", 0);				/* empty tail */
	get_eq(st, "obj", 0, n, data, n);

	/* a range not wholly inside the object is an error, never a short read */
	capture_start(&c);
	ck_assert_int_eq(get_err(st, "obj", n - 10, 20), -EIO);
	ck_assert_int_eq(get_err(st, "obj", n + 1, 0), -EIO);
	ck_assert_int_eq(get_err(st, "obj", n + 100, 5), -EIO);
	log = capture_end(&c);
	ck_assert_msg(strstr(log, "'obj'") && strstr(log, "262144 bytes"), "log: %s", log);
	free(log);
	zf_objstore_close(st);
	free(data);
	rm_tree(dir);
}
END_TEST

START_TEST(test_file_missing)
{
	char dir[PATH_MAX], url[PATH_MAX + 16];
	struct zf_objstore_stat s;
	struct zf_objstore *st;
	const char *keys[] = { "nope", "dir/nope" };

	scratch(dir, sizeof(dir), url, sizeof(url));
	st = open_ok(url);
	ck_assert_int_eq(get_err(st, "nope", 0, 0), -ENOENT);
	ck_assert_int_eq(get_err(st, "nope/deeper", 0, 10), -ENOENT);
	ck_assert_int_eq(zf_objstore_head(st, "nope", &s), -ENOENT);
	ck_assert_int_eq(zf_objstore_delete(st, "nope"), 0);
	ck_assert_int_eq(zf_objstore_multi_delete(st, keys, 2), 0);
	/* a "directory" of longer keys is not an object */
	put_str(st, "dir/x", "x");
	ck_assert_int_eq(get_err(st, "dir", 0, 0), -ENOENT);
	ck_assert_int_eq(zf_objstore_head(st, "dir", &s), -ENOENT);
	ck_assert_int_eq(zf_objstore_delete(st, "dir"), 0);
	ck_assert_int_eq(get_err(st, "dir/x/y", 0, 0), -ENOENT);
	get_eq(st, "dir/x", 0, 0, "x", 1);
	zf_objstore_close(st);
	rm_tree(dir);
}
END_TEST

static const char *const list_prefixes[] = { "a/", "a/b/", "ab", "b/c/d/e/", "seg/", "meta/",
					     "a-", "a.b/" };

/* the keys of the listing tests: i-th key under a prefix chosen by i */
static void list_key(size_t i, char *buf, size_t n)
{
	snprintf(buf, n, "%s%05zu", list_prefixes[i % 8], i);
}

static void check_list(struct zf_objstore *st, const char *prefix, size_t nkeys)
{
	struct keyset got = { 0 }, want = { 0 };
	char key[64];
	size_t i;

	for (i = 0; i < nkeys; i++) {
		list_key(i, key, sizeof(key));
		if (!strncmp(key, prefix, strlen(prefix)))
			collect(&want, key, 0);
	}
	ck_assert_int_eq(zf_objstore_list(st, prefix, collect, &got), 0);
	keyset_sort(&got);
	keyset_sort(&want);
	ck_assert_msg(got.n == want.n, "prefix '%s': %zu keys, want %zu", prefix, got.n, want.n);
	for (i = 0; i < got.n; i++)
		ck_assert_str_eq(got.v[i], want.v[i]);
	keyset_free(&got);
	keyset_free(&want);
}

START_TEST(test_file_list)
{
	static const char *prefixes[] = { "", "a", "a/", "a/b", "a/b/", "ab", "a-", "a.", "b/c/",
					  "b/c/d/e/0", "seg/0001", "zzz", "a/b/c", "se" };
	char dir[PATH_MAX], url[PATH_MAX + 16], key[64], tmp[PATH_MAX + 64];
	struct keyset ks = { 0 };
	struct zf_objstore *st;
	size_t i, nkeys = 400;

	scratch(dir, sizeof(dir), url, sizeof(url));
	st = open_ok(url);
	for (i = 0; i < nkeys; i++) {
		list_key(i, key, sizeof(key));
		ck_assert_int_eq(zf_objstore_put(st, key, key, strlen(key)), 0);
	}
	/* a temporary left by a crash is never listed */
	snprintf(tmp, sizeof(tmp), "%s/.zf-tmp/12345.1", dir);
	ck_assert_int_eq(write_file(tmp, "junk", 4), 0);
	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		check_list(st, prefixes[i], nkeys);

	/* sizes are reported */
	ck_assert_int_eq(zf_objstore_list(st, "seg/", collect, &ks), 0);
	ck_assert_uint_eq(ks.n, 50);
	ck_assert_uint_eq(ks.total_size, 50 * strlen("seg/00004"));
	keyset_free(&ks);

	/* the callback stops the listing and its value comes back */
	ks.stop_after = 3;
	ck_assert_int_eq(zf_objstore_list(st, "", collect, &ks), 7);
	ck_assert_uint_eq(ks.n, 3);
	keyset_free(&ks);
	zf_objstore_close(st);
	rm_tree(dir);
}
END_TEST

START_TEST(test_file_delete_multi)
{
	char dir[PATH_MAX], url[PATH_MAX + 16];
	struct keyset ks = { 0 };
	struct zf_objstore *st;
	char *keys[130];
	size_t i;

	scratch(dir, sizeof(dir), url, sizeof(url));
	st = open_ok(url);
	for (i = 0; i < 130; i++) {
		char k[32];

		snprintf(k, sizeof(k), "d/%03zu", i);
		keys[i] = zf_strdup(k);
		if (i < 120)	/* the last 10 never existed */
			put_str(st, k, "x");
	}
	ck_assert_int_eq(zf_objstore_delete(st, "d/000"), 0);
	ck_assert_int_eq(zf_objstore_delete(st, "d/000"), 0);	/* again: still fine */
	/* delete 0..99 (and the missing 120..129), keep 100..119 */
	ck_assert_int_eq(zf_objstore_multi_delete(st, (const char *const *)keys, 100), 0);
	ck_assert_int_eq(zf_objstore_multi_delete(st, (const char *const *)keys + 120, 10), 0);
	ck_assert_int_eq(zf_objstore_multi_delete(st, NULL, 0), 0);
	ck_assert_int_eq(zf_objstore_list(st, "d/", collect, &ks), 0);
	keyset_sort(&ks);
	ck_assert_uint_eq(ks.n, 20);
	ck_assert_str_eq(ks.v[0], "d/100");
	ck_assert_str_eq(ks.v[19], "d/119");
	keyset_free(&ks);
	/* one bad key refuses the whole call before anything is deleted */
	zf_log_set_level(ZF_LOG_NONE);
	{
		const char *mixed[] = { "d/100", "../x" };

		ck_assert_int_eq(zf_objstore_multi_delete(st, mixed, 2), -EINVAL);
	}
	zf_log_set_level(ZF_LOG_WARN);
	get_eq(st, "d/100", 0, 0, "x", 1);
	for (i = 0; i < 130; i++)
		free(keys[i]);
	zf_objstore_close(st);
	rm_tree(dir);
}
END_TEST

/* ---- atomic publish ---- */

#define ATOMIC_SIZE (2 * MIB)

struct atomic_ctx {
	struct zf_objstore *st;
	volatile int stop;
	uint64_t reads, bad;
};

static void *atomic_reader(void *arg)
{
	struct atomic_ctx *a = arg;

	while (!a->stop) {
		void *buf;
		size_t n, i;
		int r = zf_objstore_get(a->st, "hot/obj", 0, 0, &buf, &n);

		if (r < 0) {
			__atomic_fetch_add(&a->bad, 1, __ATOMIC_RELAXED);
			continue;
		}
		/* every version is one byte value repeated: a mix is a torn read */
		if (n != ATOMIC_SIZE)
			__atomic_fetch_add(&a->bad, 1, __ATOMIC_RELAXED);
		for (i = 1; i < n; i++) {
			if (((uint8_t *)buf)[i] != ((uint8_t *)buf)[0]) {
				__atomic_fetch_add(&a->bad, 1, __ATOMIC_RELAXED);
				break;
			}
		}
		free(buf);
		__atomic_fetch_add(&a->reads, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

START_TEST(test_file_atomic_publish)
{
	char dir[PATH_MAX], url[PATH_MAX + 16], tmpdir[PATH_MAX + 16];
	struct atomic_ctx a = { 0 };
	struct keyset ks = { 0 };
	pthread_t th[2];
	uint8_t *data = zf_malloc(ATOMIC_SIZE);
	int i;

	scratch(dir, sizeof(dir), url, sizeof(url));
	a.st = open_ok(url);
	memset(data, 'A', ATOMIC_SIZE);
	ck_assert_int_eq(zf_objstore_put(a.st, "hot/obj", data, ATOMIC_SIZE), 0);
	for (i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, atomic_reader, &a), 0);
	for (i = 0; i < 40; i++) {
		memset(data, 'B' + i % 20, ATOMIC_SIZE);
		ck_assert_int_eq(zf_objstore_put(a.st, "hot/obj", data, ATOMIC_SIZE), 0);
	}
	a.stop = 1;
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	ck_assert_uint_gt(a.reads, 0);
	ck_assert_uint_eq(a.bad, 0);
	/* nothing but the object is visible, and no temporary is left */
	ck_assert_int_eq(zf_objstore_list(a.st, "", collect, &ks), 0);
	ck_assert_uint_eq(ks.n, 1);
	ck_assert_str_eq(ks.v[0], "hot/obj");
	keyset_free(&ks);
	snprintf(tmpdir, sizeof(tmpdir), "%s/.zf-tmp", dir);
	ck_assert_int_eq(rmdir(tmpdir), 0);	/* fails unless empty */
	zf_objstore_close(a.st);
	free(data);
	rm_tree(dir);
}
END_TEST

START_TEST(test_file_stale_tmp_swept)
{
	char dir[PATH_MAX], url[PATH_MAX + 16], old[PATH_MAX + 32], young[PATH_MAX + 32];
	struct timeval tv[2] = { { time(NULL) - 7200, 0 }, { time(NULL) - 7200, 0 } };
	struct zf_objstore *st;

	scratch(dir, sizeof(dir), url, sizeof(url));
	st = open_ok(url);
	zf_objstore_close(st);
	snprintf(old, sizeof(old), "%s/.zf-tmp/1.1", dir);
	snprintf(young, sizeof(young), "%s/.zf-tmp/1.2", dir);
	ck_assert_int_eq(write_file(old, "old", 3), 0);
	ck_assert_int_eq(write_file(young, "young", 5), 0);
	ck_assert_int_eq(utimes(old, tv), 0);
	zf_log_set_level(ZF_LOG_NONE);
	st = open_ok(url);
	zf_log_set_level(ZF_LOG_WARN);
	ck_assert_int_eq(access(old, F_OK), -1);	/* a crash's leftover: gone */
	ck_assert_int_eq(access(young, F_OK), 0);	/* maybe a put in flight: kept */
	zf_objstore_close(st);
	rm_tree(dir);
}
END_TEST

struct thr_ctx {
	struct zf_objstore *st;
	int id;
	int failures;
};

static void *thr_worker(void *arg)
{
	struct thr_ctx *t = arg;
	uint8_t data[4096];
	char key[64];
	int i;

	for (i = 0; i < 60; i++) {
		void *buf;
		size_t n;

		snprintf(key, sizeof(key), "t%d/k%03d", t->id, i);
		fill_random(data, sizeof(data), t->id * 1000 + i);
		if (zf_objstore_put(t->st, key, data, sizeof(data)) < 0 ||
		    zf_objstore_get(t->st, key, 100, 200, &buf, &n) < 0) {
			t->failures++;
			continue;
		}
		if (n != 200 || memcmp(buf, data + 100, 200))
			t->failures++;
		free(buf);
		if (i % 2 && zf_objstore_delete(t->st, key) < 0)
			t->failures++;
	}
	return NULL;
}

START_TEST(test_threads)
{
	char dir[PATH_MAX], url[PATH_MAX + 16];
	struct thr_ctx t[4];
	pthread_t th[4];
	struct keyset ks = { 0 };
	struct zf_objstore *st;
	int i;

	scratch(dir, sizeof(dir), url, sizeof(url));
	/* through the fault wrapper (no faults) so that its locking is exercised */
	snprintf(url + strlen(url), sizeof(url) - strlen(url), "%s", "");
	{
		char furl[PATH_MAX + 64];

		snprintf(furl, sizeof(furl), "fault:latency=0;%s", url);
		st = open_ok(furl);
	}
	for (i = 0; i < 4; i++) {
		t[i] = (struct thr_ctx){ st, i, 0 };
		ck_assert_int_eq(pthread_create(&th[i], NULL, thr_worker, &t[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(t[i].failures, 0);
	}
	ck_assert_int_eq(zf_objstore_list(st, "t", collect, &ks), 0);
	ck_assert_uint_eq(ks.n, 4 * 30);
	keyset_free(&ks);
	zf_objstore_close(st);
	rm_tree(dir);
}
END_TEST

/* ---- fault wrapper ---- */

static struct zf_objstore *fault_open(const char *params, char *dir, size_t dlen)
{
	char url[PATH_MAX + 16], furl[3 * PATH_MAX];

	scratch(dir, dlen, url, sizeof(url));
	if (params)
		snprintf(furl, sizeof(furl), "fault:%s;%s", params, url);
	else
		snprintf(furl, sizeof(furl), "fault:%s", url);
	return open_ok(furl);
}

START_TEST(test_fault_nth)
{
	struct zf_objstore_fault_params p = { .fail_nth = 2, .err = -ETIMEDOUT,
					      .ops = ZF_OBJSTORE_OP_PUT };
	struct zf_objstore_fault_stats fs;
	struct zf_objstore_stat s;
	char dir[PATH_MAX];
	struct zf_objstore *st = fault_open("nth=3", dir, sizeof(dir));

	put_str(st, "k1", "1");					/* call 1 */
	get_eq(st, "k1", 0, 0, "1", 1);				/* call 2 */
	ck_assert_int_eq(zf_objstore_put(st, "k2", "2", 1), -EIO);	/* call 3 fails */
	ck_assert_int_eq(zf_objstore_head(st, "k2", &s), -ENOENT);	/* and stored nothing */
	put_str(st, "k2", "2");					/* only once */
	get_eq(st, "k2", 0, 0, "2", 1);

	/* at runtime: only puts count, and the error is the one asked for */
	ck_assert_int_eq(zf_objstore_fault_set(st, &p), 0);
	get_eq(st, "k1", 0, 0, "1", 1);
	get_eq(st, "k1", 0, 0, "1", 1);
	put_str(st, "k3", "3");
	ck_assert_int_eq(zf_objstore_put(st, "k4", "4", 1), -ETIMEDOUT);
	put_str(st, "k4", "4");
	ck_assert_int_eq(zf_objstore_fault_stats(st, &fs), 0);
	ck_assert_uint_eq(fs.injected, 2);
	ck_assert_uint_eq(fs.calls, 11);
	zf_objstore_close(st);
	rm_tree(dir);
}
END_TEST

START_TEST(test_fault_outage)
{
	char dir[PATH_MAX], flag[PATH_MAX + 16], params[PATH_MAX + 64];
	struct zf_objstore_stat s;
	struct keyset ks = { 0 };
	struct zf_objstore *st;
	const char *del[] = { "k" };

	snprintf(flag, sizeof(flag), "%s/outage-XXXXXX", g_root);
	ck_assert_int_ge(mkstemp(flag), 0);
	unlink(flag);
	snprintf(params, sizeof(params), "outage_file=%s", flag);
	st = fault_open(params, dir, sizeof(dir));
	put_str(st, "k", "before");

	ck_assert_int_eq(zf_objstore_fault_set_outage(st, 1), 0);
	ck_assert_int_eq(zf_objstore_put(st, "k", "x", 1), -ECONNREFUSED);
	ck_assert_int_eq(get_err(st, "k", 0, 0), -ECONNREFUSED);
	ck_assert_int_eq(zf_objstore_head(st, "k", &s), -ECONNREFUSED);
	ck_assert_int_eq(zf_objstore_list(st, "", collect, &ks), -ECONNREFUSED);
	ck_assert_int_eq(zf_objstore_delete(st, "k"), -ECONNREFUSED);
	ck_assert_int_eq(zf_objstore_multi_delete(st, del, 1), -ECONNREFUSED);
	ck_assert_int_eq(zf_objstore_fault_set_outage(st, 0), 0);
	get_eq(st, "k", 0, 0, "before", 6);	/* nothing was lost or changed */

	/* the same through a file, as a shell test drives a daemon */
	ck_assert_int_eq(write_file(flag, "", 0), 0);
	ck_assert_int_eq(get_err(st, "k", 0, 0), -ECONNREFUSED);
	ck_assert_int_eq(unlink(flag), 0);
	get_eq(st, "k", 0, 0, "before", 6);
	keyset_free(&ks);

	/* the wrapper's functions refuse a store that is not a fault store */
	{
		char d2[PATH_MAX], u2[PATH_MAX + 16];
		struct zf_objstore *plain;
		struct zf_objstore_fault_stats fs;

		scratch(d2, sizeof(d2), u2, sizeof(u2));
		plain = open_ok(u2);
		ck_assert_int_eq(zf_objstore_fault_set_outage(plain, 1), -EINVAL);
		ck_assert_int_eq(zf_objstore_fault_stats(plain, &fs), -EINVAL);
		/* wrapping a store at runtime works the same as the URL */
		ck_assert_int_eq(zf_objstore_fault_wrap(plain, NULL, &plain), 0);
		ck_assert_int_eq(zf_objstore_fault_set_outage(plain, 1), 0);
		ck_assert_int_eq(zf_objstore_put(plain, "k", "x", 1), -ECONNREFUSED);
		zf_objstore_close(plain);
		rm_tree(d2);
	}
	zf_objstore_close(st);
	rm_tree(dir);
}
END_TEST

/* failure pattern of 1000 heads at rate 0.3 with seed 42, as a bitmap */
static void rate_pattern(uint8_t *bits, int *nfail)
{
	char dir[PATH_MAX];
	struct zf_objstore *st = fault_open("rate=0.3,seed=42,ops=head", dir, sizeof(dir));
	struct zf_objstore_stat s;
	int i;

	put_str(st, "k", "v");
	*nfail = 0;
	for (i = 0; i < 1000; i++) {
		int r = zf_objstore_head(st, "k", &s);

		ck_assert(r == 0 || r == -EIO);
		bits[i] = r < 0;
		*nfail += r < 0;
	}
	get_eq(st, "k", 0, 0, "v", 1);	/* gets are not in ops: never fail */
	zf_objstore_close(st);
	rm_tree(dir);
}

START_TEST(test_fault_rate)
{
	uint8_t a[1000], b[1000];
	int na, nb;

	rate_pattern(a, &na);
	rate_pattern(b, &nb);
	/* binomial(1000, 0.3): mean 300, sd 14.5; +-100 is beyond 6 sd */
	ck_assert_int_gt(na, 200);
	ck_assert_int_lt(na, 400);
	ck_assert_int_eq(na, nb);
	ck_assert(memcmp(a, b, sizeof(a)) == 0);	/* same seed, same faults */
}
END_TEST

START_TEST(test_fault_truncate)
{
	struct zf_objstore_fault_params p = { 0 };
	struct zf_objstore_fault_stats fs;
	uint8_t data[10000];
	char dir[PATH_MAX];
	struct zf_objstore *st = fault_open("truncate=1", dir, sizeof(dir));
	struct capture c;
	char *log;

	fill_random(data, sizeof(data), 3);
	ck_assert_int_eq(zf_objstore_put(st, "seg/7", data, sizeof(data)), 0);
	/* a truncated body never reaches the caller as data */
	capture_start(&c);
	ck_assert_int_eq(get_err(st, "seg/7", 0, 0), -EIO);
	ck_assert_int_eq(get_err(st, "seg/7", 100, 5000), -EIO);
	log = capture_end(&c);
	ck_assert_msg(strstr(log, "'seg/7'") && strstr(log, "truncated"), "log: %s", log);
	free(log);
	ck_assert_int_eq(zf_objstore_fault_stats(st, &fs), 0);
	ck_assert_uint_eq(fs.truncated, 2);
	/* switched off at runtime: the same object reads back whole */
	ck_assert_int_eq(zf_objstore_fault_set(st, &p), 0);
	get_eq(st, "seg/7", 0, 0, data, sizeof(data));
	get_eq(st, "seg/7", 100, 5000, data + 100, 5000);
	zf_objstore_close(st);
	rm_tree(dir);
}
END_TEST

START_TEST(test_fault_latency)
{
	char dir[PATH_MAX];
	struct zf_objstore *st = fault_open("latency=60", dir, sizeof(dir));
	struct zf_objstore_stat s;
	uint64_t t0;

	put_str(st, "k", "v");
	t0 = now_ms();
	ck_assert_int_eq(zf_objstore_head(st, "k", &s), 0);
	get_eq(st, "k", 0, 0, "v", 1);
	ck_assert_int_eq(zf_objstore_delete(st, "k"), 0);
	/* a lower bound only: sleeps never return early */
	ck_assert_uint_ge(now_ms() - t0, 3 * 60);
	zf_objstore_close(st);
	rm_tree(dir);
}
END_TEST

START_TEST(test_fault_list_dup)
{
	char dir[PATH_MAX];
	struct zf_objstore *st = fault_open("list_dup=1", dir, sizeof(dir));
	struct keyset ks = { 0 };
	char key[32];
	int i;

	for (i = 0; i < 50; i++) {
		snprintf(key, sizeof(key), "p/%02d", i);
		put_str(st, key, "x");
	}
	/* the backend reports each key twice; the caller sees each once */
	ck_assert_int_eq(zf_objstore_list(st, "p/", collect, &ks), 0);
	keyset_sort(&ks);
	ck_assert_uint_eq(ks.n, 50);
	for (i = 1; i < 50; i++)
		ck_assert_str_ne(ks.v[i - 1], ks.v[i]);
	keyset_free(&ks);
	zf_objstore_close(st);
	rm_tree(dir);
}
END_TEST

/* ---- SigV4 ---- */

START_TEST(test_sigv4_s3_example)
{
	/* "Example: GET Object" of the AWS S3 SigV4 documentation */
	static const char *empty =
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	struct zf_s3_hdr h[] = {
		{ "host", "examplebucket.s3.amazonaws.com" },
		{ "x-amz-date", "20130524T000000Z" },
		{ "range", "bytes=0-9" },
		{ "x-amz-content-sha256", empty },
	};
	struct zf_s3_sign_in in = {
		.method = "GET", .path = "/test.txt", .hdrs = h, .nhdrs = 4,
		.payload_sha256 = empty, .amz_date = "20130524T000000Z",
		.region = "us-east-1", .service = "s3",
		.access_key = "AKIAIOSFODNN7EXAMPLE",
		.secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
	};
	struct zf_buf auth = { 0 }, canon = { 0 };
	char sha[65];

	zf_s3_sha256_hex("", 0, sha);
	ck_assert_str_eq(sha, empty);
	zf_s3_sign(&in, &auth, &canon);
	ck_assert_str_eq((char *)canon.p,
			 "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\n"
			 "range:bytes=0-9\nx-amz-content-sha256:" "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
			 "\nx-amz-date:20130524T000000Z\n\n"
			 "host;range;x-amz-content-sha256;x-amz-date\n"
			 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	ck_assert_str_eq((char *)auth.p,
			 "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
			 "aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
			 "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	zf_buf_free(&auth);
	zf_buf_free(&canon);
}
END_TEST

START_TEST(test_sigv4_query_order)
{
	/* AWS SigV4 test suite, get-vanilla-query-order-key-case */
	struct zf_s3_param q[] = { { "Param2", "value2" }, { "Param1", "value1" } };
	struct zf_s3_hdr h[] = { { "host", "example.amazonaws.com" },
				 { "x-amz-date", "20150830T123600Z" } };
	struct zf_s3_sign_in in = {
		.method = "GET", .path = "/", .params = q, .nparams = 2, .hdrs = h, .nhdrs = 2,
		.payload_sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		.amz_date = "20150830T123600Z", .region = "us-east-1", .service = "service",
		.access_key = "AKIDEXAMPLE",
		.secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
	};
	struct zf_buf auth = { 0 };

	zf_s3_sign(&in, &auth, NULL);
	ck_assert_ptr_nonnull(strstr((char *)auth.p, "Signature=b97d918cfa904a5beff61c982a1b6f458b"
						     "799221646efd99d3219ec94cdf2500"));
	zf_buf_free(&auth);
}
END_TEST

START_TEST(test_uri_encode)
{
	const char *key = "a b/~x(y)*!'+=%\xc3\xa9-_.Z9";
	struct zf_buf b = { 0 };
	struct zf_s3_param q[] = { { "prefix", "a/b c(" },
				   { "list-type", "2" },
				   { "continuation-token", "x+y/z=" },
				   { "uploads", "" } };

	zf_s3_uri_encode(&b, key, strlen(key), 1);
	zf_s3_buf_cstr(&b);
	ck_assert_str_eq((char *)b.p, "a%20b/~x%28y%29%2A%21%27%2B%3D%25%C3%A9-_.Z9");
	b.len = 0;
	zf_s3_uri_encode(&b, key, strlen(key), 0);
	zf_s3_buf_cstr(&b);
	ck_assert_str_eq((char *)b.p, "a%20b%2F~x%28y%29%2A%21%27%2B%3D%25%C3%A9-_.Z9");
	b.len = 0;
	zf_s3_canonical_query(&b, q, 4);
	zf_s3_buf_cstr(&b);
	ck_assert_str_eq((char *)b.p, "continuation-token=x%2By%2Fz%3D&list-type=2&"
				      "prefix=a%2Fb%20c%28&uploads=");
	zf_buf_free(&b);
}
END_TEST

START_TEST(test_md5)
{
	char md5[25];

	zf_s3_md5_base64("", 0, md5);
	ck_assert_str_eq(md5, "1B2M2Y8AsgTpgAmY7PhCfg==");
}
END_TEST

/* ---- s3 without a server ---- */

static void clear_aws_env(void)
{
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	unsetenv("AWS_ENDPOINT_URL");
	unsetenv("AWS_ENDPOINT_URL_S3");
	setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config", 1);
}

START_TEST(test_s3_credentials_file)
{
	char dir[PATH_MAX], url[PATH_MAX + 16], creds[PATH_MAX + 16];
	struct zf_objstore *st = NULL;
	struct capture c;
	char *log;
	const char *text = "[default]\naws_access_key_id = AKDEF\naws_secret_access_key = s1\n"
			   "\n[zf]\n aws_access_key_id=AKZF \naws_secret_access_key=s2\n";

	scratch(dir, sizeof(dir), url, sizeof(url));
	clear_aws_env();
	snprintf(creds, sizeof(creds), "%s/credentials", dir);
	setenv("AWS_SHARED_CREDENTIALS_FILE", creds, 1);
	ck_assert_int_eq(write_file(creds, text, strlen(text)), 0);

	/* readable by others: refused, and the message says what to do */
	ck_assert_int_eq(chmod(creds, 0644), 0);
	capture_start(&c);
	ck_assert_int_eq(zf_objstore_open("s3://bucket?endpoint=http://127.0.0.1:1", NULL, &st),
			 -EACCES);
	log = capture_end(&c);
	ck_assert_msg(strstr(log, creds) && strstr(log, "0644") && strstr(log, "chmod 600"),
		      "log: %s", log);
	free(log);

	ck_assert_int_eq(chmod(creds, 0600), 0);
	ck_assert_int_eq(zf_objstore_open("s3://bucket?endpoint=http://127.0.0.1:1", NULL, &st), 0);
	zf_objstore_close(st);
	setenv("AWS_PROFILE", "zf", 1);
	ck_assert_int_eq(zf_objstore_open("s3://bucket/p?endpoint=http://127.0.0.1:1", NULL, &st),
			 0);
	zf_objstore_close(st);

	/* a missing profile, a missing file: clear errors, not a crash */
	setenv("AWS_PROFILE", "nope", 1);
	capture_start(&c);
	ck_assert_int_eq(zf_objstore_open("s3://bucket?endpoint=http://127.0.0.1:1", NULL, &st),
			 -EACCES);
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/creds", 1);
	ck_assert_int_eq(zf_objstore_open("s3://bucket?endpoint=http://127.0.0.1:1", NULL, &st),
			 -EACCES);
	log = capture_end(&c);
	ck_assert_msg(strstr(log, "profile 'nope'") && strstr(log, "AWS_ACCESS_KEY_ID"),
		      "log: %s", log);
	free(log);

	/* the environment needs no file at all */
	setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "s3", 1);
	unsetenv("AWS_PROFILE");
	ck_assert_int_eq(zf_objstore_open("s3://bucket?endpoint=http://127.0.0.1:1", NULL, &st), 0);
	zf_objstore_close(st);
	rm_tree(dir);
}
END_TEST

/* a loopback port nobody listens on */
static int closed_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	ck_assert_int_ge(fd, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	port = ntohs(sa.sin_port);
	close(fd);	/* bound but never listening: connections are refused */
	return port;
}

START_TEST(test_s3_retries_then_fails)
{
	struct zf_objstore_opts o = { .max_attempts = 3, .retry_base_ms = 10,
				      .retry_max_ms = 20, .timeout_ms = 20000 };
	struct zf_objstore_counters cnt;
	struct zf_objstore *st;
	char url[128];
	struct capture c;
	char *log;

	clear_aws_env();
	setenv("AWS_ACCESS_KEY_ID", "AK", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "sk", 1);
	snprintf(url, sizeof(url), "s3://bucket/pre?endpoint=http://127.0.0.1:%d", closed_port());
	ck_assert_int_eq(zf_objstore_open(url, &o, &st), 0);
	capture_start(&c);
	ck_assert_int_eq(get_err(st, "seg/1", 0, 10), -ECONNREFUSED);
	ck_assert_int_eq(zf_objstore_put(st, "seg/1", "x", 1), -ECONNREFUSED);
	log = capture_end(&c);
	/* one line per failed call, naming the key and the attempts */
	ck_assert_msg(strstr(log, "'s3://bucket/pre/seg/1'") && strstr(log, "after 3 attempts") &&
			      strstr(log, "ECONNREFUSED"),
		      "log: %s", log);
	free(log);
	zf_objstore_counters(st, &cnt);
	ck_assert_uint_eq(cnt.requests, 6);
	ck_assert_uint_eq(cnt.retries, 4);
	ck_assert_uint_eq(cnt.errors, 2);
	zf_objstore_close(st);
}
END_TEST

static Suite *objstore_suite(void)
{
	Suite *s = suite_create("objstore");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_key_valid);
	tcase_add_test(tc, test_bad_urls);
	tcase_add_test(tc, test_file_create_opt);
	tcase_add_test(tc, test_file_put_get_head);
	tcase_add_test(tc, test_file_range);
	tcase_add_test(tc, test_file_missing);
	tcase_add_test(tc, test_file_list);
	tcase_add_test(tc, test_file_delete_multi);
	tcase_add_test(tc, test_file_atomic_publish);
	tcase_add_test(tc, test_file_stale_tmp_swept);
	tcase_add_test(tc, test_threads);
	tcase_add_test(tc, test_fault_nth);
	tcase_add_test(tc, test_fault_outage);
	tcase_add_test(tc, test_fault_rate);
	tcase_add_test(tc, test_fault_truncate);
	tcase_add_test(tc, test_fault_latency);
	tcase_add_test(tc, test_fault_list_dup);
	tcase_add_test(tc, test_sigv4_s3_example);
	tcase_add_test(tc, test_sigv4_query_order);
	tcase_add_test(tc, test_uri_encode);
	tcase_add_test(tc, test_md5);
	tcase_add_test(tc, test_s3_credentials_file);
	tcase_add_test(tc, test_s3_retries_then_fails);
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
	zf_log_init("check_objstore", 0, ZF_LOG_WARN);
	snprintf(g_root, sizeof(g_root), "%s/zf-check-objstore-XXXXXX", tmp);
	if (!mkdtemp(g_root)) {
		fprintf(stderr, "check_objstore: cannot create '%s': %s\n", g_root,
			strerror(errno));
		return EXIT_FAILURE;
	}
	sr = srunner_create(objstore_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	rm_tree(g_root);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
