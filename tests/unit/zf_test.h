/*
 * tests/unit/zf_test.h - helpers shared by the core's unit tests: scratch
 * directories, a deterministic PRNG, and a canonical dump of a filesystem
 * (paths, attributes, xattrs, content hashes) for comparing states.
 */
#ifndef ZF_TESTS_ZF_TEST_H
#define ZF_TESTS_ZF_TEST_H

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "common/buf.h"
#include "storage/fs.h"

static inline uint64_t t_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline void t_fill(uint8_t *p, size_t n, uint64_t seed)
{
	size_t i;

	for (i = 0; i + 8 <= n; i += 8) {
		uint64_t v = t_rand(&seed);

		memcpy(p + i, &v, 8);
	}
	for (; i < n; i++)
		p[i] = (uint8_t)t_rand(&seed);
}

static inline char *t_tmpdir(void)
{
	char *d = strdup("/tmp/zf-test-XXXXXX");

	ck_assert_ptr_nonnull(mkdtemp(d));
	return d;
}

static inline void t_rmrf(const char *d)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	ck_assert_int_eq(system(cmd), 0);
}

struct t_names {
	char **v;
	uint64_t *ino;
	size_t n;
};

static int t_collect(void *ctx, const char *name, uint64_t ino, uint32_t mode, uint64_t off)
{
	struct t_names *t = ctx;

	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	t->v = realloc(t->v, (t->n + 1) * sizeof(*t->v));
	t->ino = realloc(t->ino, (t->n + 1) * sizeof(*t->ino));
	t->v[t->n] = strdup(name);
	t->ino[t->n++] = ino;
	return 0;
}

static int t_cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* append a canonical description of the tree under ino to out */
static inline void t_dump_tree(struct zf_fs *fs, uint64_t ino, const char *path, struct zf_buf *out)
{
	struct t_names t = { 0 };
	struct zf_attr a;
	char line[8192];
	size_t i;
	int n;

	ck_assert_int_eq(zf_fs_getattr(fs, ino, &a), 0);
	n = snprintf(line, sizeof(line), "%s mode=%o uid=%u gid=%u nlink=%u size=%llu rdev=%llu "
			 "m=%lld.%ld c=%lld.%ld a=%lld.%ld",
		     path, a.mode, a.uid, a.gid, a.nlink, (unsigned long long)a.size,
		     (unsigned long long)a.rdev, (long long)a.mtime.tv_sec, a.mtime.tv_nsec,
		     (long long)a.ctime.tv_sec, a.ctime.tv_nsec, (long long)a.atime.tv_sec,
		     a.atime.tv_nsec);
	zf_buf_add(out, line, n);
	if (S_ISREG(a.mode)) {
		uint8_t *buf = malloc(a.size + 1);
		ssize_t r = zf_fs_read(fs, ino, buf, a.size, 0);

		ck_assert_int_eq(r, (ssize_t)a.size);
		n = snprintf(line, sizeof(line), " data=%016llx",
			     (unsigned long long)XXH3_64bits(buf, a.size));
		zf_buf_add(out, line, n);
		free(buf);
	} else if (S_ISLNK(a.mode)) {
		char tgt[4096];
		ssize_t r = zf_fs_readlink(fs, ino, tgt, sizeof(tgt));

		ck_assert_int_ge(r, 0);
		n = snprintf(line, sizeof(line), " -> %.*s", (int)r, tgt);
		zf_buf_add(out, line, n);
	}
	{
		char names[4096];
		ssize_t r = zf_fs_listxattr(fs, ino, names, sizeof(names));
		char *p;

		ck_assert_int_ge(r, 0);
		/* xattr order is not part of the state: hash each and sum */
		uint64_t h = 0;

		for (p = names; p < names + r; p += strlen(p) + 1) {
			char val[65536];
			ssize_t vl = zf_fs_getxattr(fs, ino, p, val, sizeof(val));

			ck_assert_int_ge(vl, 0);
			h += XXH3_64bits(p, strlen(p)) ^ XXH3_64bits(val, vl);
		}
		n = snprintf(line, sizeof(line), " xattr=%016llx\n", (unsigned long long)h);
		zf_buf_add(out, line, n);
	}
	if (!S_ISDIR(a.mode))
		return;
	ck_assert_int_eq(zf_fs_readdir(fs, ino, 0, t_collect, &t), 0);
	{
		/* sort names, keeping inode numbers paired */
		char **sorted = malloc((t.n + 1) * sizeof(char *));

		for (i = 0; i < t.n; i++) {
			sorted[i] = malloc(strlen(t.v[i]) + 24);
			sprintf(sorted[i], "%s/%llu", t.v[i], (unsigned long long)t.ino[i]);
		}
		qsort(sorted, t.n, sizeof(char *), t_cmpstr);
		for (i = 0; i < t.n; i++) {
			char sub[4096], *slash = strrchr(sorted[i], '/');
			uint64_t cino = strtoull(slash + 1, NULL, 10);

			*slash = 0;
			snprintf(sub, sizeof(sub), "%s/%s", path, sorted[i]);
			t_dump_tree(fs, cino, sub, out);
			free(sorted[i]);
		}
		free(sorted);
	}
	for (i = 0; i < t.n; i++)
		free(t.v[i]);
	free(t.v);
	free(t.ino);
}

static inline char *t_dump(struct zf_fs *fs)
{
	struct zf_buf b = { 0 };

	t_dump_tree(fs, ZF_ROOT_INO, "", &b);
	zf_buf_add(&b, "", 1);
	return (char *)b.p;
}

static inline void t_check_clean(struct zf_fs *fs)
{
	struct zf_check_report rep = { .verify_data = 1 };

	ck_assert_int_eq(zf_fs_check(fs, &rep), 0);
	ck_assert_uint_eq(rep.errors, 0);
}

#endif
