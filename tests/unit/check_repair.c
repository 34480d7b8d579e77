/*
 * tests/unit/check_repair.c - the checker's repair and the tolerant
 * (salvage) load: a damaged log frame is skipped and named, replay resumes
 * at the next valid frame; reference counts and link counts are rebuilt;
 * unreachable inodes go to /lost+found; CHUNK_BAD makes reads fail with
 * EIO, survives checkpoints and replay, and a fresh copy of the same bytes
 * heals every file that maps it.
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "common/endian.h"
#include "common/log.h"
#include "storage/check.h"
#include "storage/fs.h"
#include "storage/fs_inspect.h"
#include "storage/fs_testing.h"
#include "storage/meta_format.h"
#include "storage/mlog.h"
#include "zf_test.h"

static const struct zf_mkfs_opts small_mkfs = {
	.chunk_min = 1024, .chunk_avg = 4096, .chunk_max = 16384, .seg_limit = 256 << 10
};

#define FILE_BYTES 200000

static uint64_t t_file(struct zf_fs *fs, const char *name, uint64_t seed)
{
	static uint8_t buf[FILE_BYTES];
	struct zf_attr a;

	ck_assert_int_eq(zf_fs_mknod(fs, ZF_ROOT_INO, name, S_IFREG | 0644, 0, 0, 0, &a), 0);
	t_fill(buf, sizeof(buf), seed);
	ck_assert_int_eq(zf_fs_write(fs, a.ino, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	ck_assert_int_eq(zf_fs_fsync(fs, a.ino), 0);
	return a.ino;
}

/* the file reads back as written with seed (1), or fails with EIO (0) */
static int t_intact(struct zf_fs *fs, uint64_t ino, uint64_t seed)
{
	static uint8_t want[FILE_BYTES], got[FILE_BYTES];
	ssize_t n = zf_fs_read(fs, ino, got, sizeof(got), 0);

	if (n == -EIO)
		return 0;
	ck_assert_int_eq(n, (ssize_t)sizeof(got));
	t_fill(want, sizeof(want), seed);
	ck_assert_mem_eq(got, want, sizeof(want));
	return 1;
}

struct lines {
	char text[256][512];
	int n;
};

static void t_line(void *ctx, const char *msg)
{
	struct lines *l = ctx;

	if (l->n < 256)
		snprintf(l->text[l->n++], sizeof(l->text[0]), "%s", msg);
}

static int t_said(const struct lines *l, const char *a, const char *b)
{
	int i;

	for (i = 0; i < l->n; i++)
		if (strstr(l->text[i], a) && (!b || strstr(l->text[i], b)))
			return 1;
	return 0;
}

static int t_check(struct zf_fs *fs, int repair, struct lines *l, struct zf_check_report *rep)
{
	memset(rep, 0, sizeof(*rep));
	memset(l, 0, sizeof(*l));
	rep->problem = t_line;
	rep->note = t_line;
	rep->ctx = l;
	rep->verify_data = 1;
	rep->repair = repair;
	return zf_fs_check(fs, rep);
}

static char *t_log(const char *dir)
{
	char meta[512], *best = NULL;
	struct dirent *e;
	DIR *d;

	snprintf(meta, sizeof(meta), "%s/meta", dir);
	d = opendir(meta);
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, "log.", 4) && strlen(e->d_name) == 20 &&
		    (!best || strcmp(e->d_name, strrchr(best, '/') + 1) > 0)) {
			free(best);
			best = malloc(strlen(meta) + 32);
			sprintf(best, "%s/%s", meta, e->d_name);
		}
	closedir(d);
	ck_assert_ptr_nonnull(best);
	return best;
}

/* offset of the first frame of type with payload field 0 == first, in file path */
static off_t t_frame(const char *path, uint8_t type, uint64_t first)
{
	uint8_t *m;
	struct stat st;
	off_t off = 64, found = -1;
	int fd = open(path, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	m = malloc(st.st_size);
	ck_assert_int_eq(pread(fd, m, st.st_size, 0), st.st_size);
	close(fd);
	while (off + ZF_REC_HDR_SIZE <= st.st_size && found < 0) {
		struct zf_frame f;
		ssize_t n = zf_frame_parse(m + off, st.st_size - off, &f);

		ck_assert_int_gt(n, 0);
		if (f.type == type && f.len >= 8 && zf_get64(f.payload) == first)
			found = off;
		off += n;
	}
	free(m);
	ck_assert_int_ge(found, 0);
	return found;
}

static void t_flip(const char *path, off_t off)
{
	uint8_t b;
	int fd = open(path, O_RDWR);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &b, 1, off), 1);
	b ^= 0xff;
	ck_assert_int_eq(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

/* a damaged EXTENTS record in the middle of the log: named, skipped, repaired */
START_TEST(salvage_skips_a_damaged_log_record)
{
	struct zf_open_opts keep_log = { .ckpt_bytes = 1ull << 40 };
	struct zf_open_opts ro = { .readonly = 1 }, ros = { .readonly = 1, .salvage = 1 };
	struct zf_open_opts rws = { .salvage = 1 };
	struct zf_check_report rep;
	struct lines l;
	char *dir = t_tmpdir(), *logp;
	uint64_t a, b, c;
	struct zf_fs *fs;
	off_t off;

	ck_assert_int_eq(zf_fs_mkfs(dir, &small_mkfs), 0);
	ck_assert_int_eq(zf_fs_open(dir, &keep_log, &fs), 0);
	a = t_file(fs, "a", 1);
	b = t_file(fs, "b", 2);
	c = t_file(fs, "c", 3);
	zf_fs_abandon(fs); /* a crash: the records stay in the log */
	logp = t_log(dir);
	off = t_frame(logp, ZF_REC_EXTENTS, b);
	t_flip(logp, off + ZF_REC_HDR_SIZE + 40); /* inside the first extent */

	zf_log_set_level(ZF_LOG_NONE);
	ck_assert_int_eq(zf_fs_open(dir, &ro, &fs), -EBADMSG);
	zf_log_set_level(ZF_LOG_WARN);
	/* a plain check: the record is named with its file, offset, type, inode, path */
	ck_assert_int_eq(zf_fs_open(dir, &ros, &fs), 0);
	ck_assert_int_eq(t_check(fs, 0, &l, &rep), -EUCLEAN);
	{
		char want[96];

		snprintf(want, sizeof(want), "offset %lld: record", (long long)off);
		ck_assert_msg(t_said(&l, want, "(EXTENTS of inode"), "record not named: %s",
			      l.n ? l.text[0] : "(nothing)");
	}
	ck_assert(t_said(&l, "damaged: /b bytes 0-199999", NULL));
	ck_assert(!t_said(&l, "/a", NULL) && !t_said(&l, "/c", NULL));
	zf_fs_close(fs);

	/* repair: the records after the damage were applied; /b reads EIO */
	ck_assert_int_eq(zf_fs_open(dir, &rws, &fs), 0);
	ck_assert_int_eq(t_check(fs, 1, &l, &rep), -EUCLEAN);
	ck_assert_uint_gt(rep.repaired, 0);
	ck_assert_int_eq(zf_fs_close(fs), 0);
	ck_assert_int_eq(zf_fs_open(dir, NULL, &fs), 0);
	ck_assert_int_eq(t_check(fs, 0, &l, &rep), 0);
	ck_assert(t_said(&l, "known damage: /b bytes 0-199999", NULL));
	ck_assert(t_intact(fs, a, 1) && t_intact(fs, c, 3) && !t_intact(fs, b, 2));
	zf_fs_close(fs);
	t_rmrf(dir);
	free(logp);
	free(dir);
}
END_TEST

/* salvage at the mlog level: the region, its offset and expected seq */
struct replay_seen {
	uint64_t seqs[64];
	int n, nbad;
	uint64_t bad_off, bad_len, bad_seq;
};

static int t_frame_fn(void *ctx, const struct zf_frame *f)
{
	struct replay_seen *s = ctx;

	s->seqs[s->n++] = f->seq;
	return 0;
}

static void t_bad_fn(void *ctx, const char *name, uint64_t off, const uint8_t *p, size_t len,
		     uint64_t expect)
{
	struct replay_seen *s = ctx;

	(void)name;
	(void)p;
	s->nbad++;
	s->bad_off = off;
	s->bad_len = len;
	s->bad_seq = expect;
}

START_TEST(mlog_salvage_resyncs_on_the_next_frame)
{
	uint8_t fsid[16] = { 1 }, payload[100];
	char *dir = t_tmpdir();
	struct zf_mlog_scan scan;
	struct replay_seen s;

	memset(&s, 0, sizeof(s));
	struct zf_mlog *log;
	int dfd, i;

	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(dfd, 0);
	ck_assert_int_eq(zf_mlog_create(dfd, fsid, 1, &log), 0);
	for (i = 0; i < 6; i++) {
		t_fill(payload, sizeof(payload), i);
		zf_mlog_add(log, ZF_REC_INODE, payload, sizeof(payload));
		if (i % 2)
			zf_mlog_txn_end(log); /* transactions of two records */
	}
	ck_assert_int_eq(zf_mlog_commit(log), 0);
	zf_mlog_close(log);
	{
		char p[600];

		snprintf(p, sizeof(p), "%s/log.0000000000000001", dir);
		/* record 3 (first of the second transaction) */
		t_flip(p, 64 + 2 * 132 + 32 + 50);
	}
	zf_log_set_level(ZF_LOG_NONE);
	ck_assert_int_eq(zf_mlog_replay(dfd, "log.0000000000000001", fsid, 0, t_frame_fn, &s,
					&scan), -EBADMSG);
	zf_log_set_level(ZF_LOG_WARN);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(zf_mlog_replay_salvage(dfd, "log.0000000000000001", fsid, 0, t_frame_fn,
						t_bad_fn, &s, &scan), 0);
	ck_assert_int_eq(s.nbad, 1);
	ck_assert_uint_eq(s.bad_off, 64 + 2 * 132);
	ck_assert_uint_eq(s.bad_len, 132);
	ck_assert_uint_eq(s.bad_seq, 3);
	/* 1 2 (whole), 4 (the rest of the cut transaction), 5 6 */
	ck_assert_int_eq(s.n, 5);
	ck_assert_uint_eq(s.seqs[2], 4);
	ck_assert_uint_eq(s.seqs[4], 6);
	ck_assert_uint_eq(scan.last_seq, 6);
	close(dfd);
	t_rmrf(dir);
	free(dir);
}
END_TEST

/* reference counts, an unreachable file, a wrong link count: rebuilt */
START_TEST(repair_rebuilds_refcounts_links_and_lost_found)
{
	struct zf_open_opts rws = { .salvage = 1 };
	struct zf_check_report rep;
	struct zf_attr at;
	struct lines l;
	char *dir = t_tmpdir(), name[32];
	struct zf_buf b = { 0 };
	uint64_t a, c, lf;
	struct zf_fs *fs;

	ck_assert_int_eq(zf_fs_mkfs(dir, &small_mkfs), 0);
	ck_assert_int_eq(zf_fs_open(dir, NULL, &fs), 0);
	a = t_file(fs, "a", 1);
	c = t_file(fs, "c", 3);
	/* damage the table the way lost records would: an entry gone, counts off */
	zf_put64(zf_buf_grow(&b, 8), ZF_ROOT_INO);
	zf_put16(zf_buf_grow(&b, 2), 1);
	zf_buf_add(&b, "c", 1);
	zf_fs_test_log(fs, ZF_REC_DIRENT_DEL, b.p, b.len);
	zf_fs_test_add_refs(fs, 2);
	ck_assert_int_eq(zf_fs_test_set_nlink(fs, a, 3), 0);
	zf_buf_free(&b);

	ck_assert_int_eq(t_check(fs, 0, &l, &rep), -EUCLEAN);
	ck_assert(t_said(&l, "reference count", NULL));
	ck_assert(t_said(&l, "is not reachable from the root", NULL));
	ck_assert(t_said(&l, "link count 3, but 1 directory entries", NULL));
	ck_assert_int_eq(zf_fs_close(fs), 0);
	/* the wrong counts were in memory only; make them durable for the test */
	ck_assert_int_eq(zf_fs_open(dir, &rws, &fs), 0);
	zf_fs_test_add_refs(fs, 2);
	ck_assert_int_eq(t_check(fs, 1, &l, &rep), -EUCLEAN);
	snprintf(name, sizeof(name), "now /lost+found/#%llu", (unsigned long long)c);
	ck_assert(t_said(&l, name, NULL));
	ck_assert(t_said(&l, "repair: rebuilt", NULL));
	ck_assert_int_eq(zf_fs_close(fs), 0);

	ck_assert_int_eq(zf_fs_open(dir, NULL, &fs), 0);
	ck_assert_int_eq(t_check(fs, 0, &l, &rep), 0);
	ck_assert_int_eq(zf_fs_lookup(fs, ZF_ROOT_INO, "lost+found", &at), 0);
	lf = at.ino;
	snprintf(name, sizeof(name), "#%llu", (unsigned long long)c);
	ck_assert_int_eq(zf_fs_lookup(fs, lf, name, &at), 0);
	ck_assert_uint_eq(at.ino, c);
	ck_assert_uint_eq(at.nlink, 1);
	ck_assert_int_eq(zf_fs_getattr(fs, a, &at), 0);
	ck_assert_uint_eq(at.nlink, 1);
	ck_assert(t_intact(fs, a, 1) && t_intact(fs, c, 3));
	zf_fs_close(fs);
	t_rmrf(dir);
	free(dir);
}
END_TEST

/* CHUNK_BAD: EIO, kept by checkpoints and replay; a fresh copy heals */
START_TEST(chunk_bad_reads_eio_and_a_fresh_copy_heals)
{
	struct zf_open_opts keep_log = { .ckpt_bytes = 1ull << 40 };
	struct zf_check_report rep;
	struct zf_buf b = { 0 };
	struct zf_chunk_id id;
	struct lines l;
	char *dir = t_tmpdir();
	uint64_t a, a2, d;
	struct zf_fs *fs;

	ck_assert_int_eq(zf_fs_mkfs(dir, &small_mkfs), 0);
	ck_assert_int_eq(zf_fs_open(dir, NULL, &fs), 0);
	a = t_file(fs, "a", 1);
	a2 = t_file(fs, "a2", 1); /* shares every chunk of a */
	ck_assert_int_eq(zf_fs_test_extent_chunk(fs, a, 0, &id), 0);
	zf_put32(zf_buf_grow(&b, 4), 1);
	zf_buf_add(&b, id.b, ZF_CHUNK_ID_LEN);
	zf_fs_test_log(fs, ZF_REC_CHUNK_BAD, b.p, b.len);
	ck_assert_int_eq(zf_fs_sync(fs), 0);
	ck_assert(!t_intact(fs, a, 1) && !t_intact(fs, a2, 1));
	ck_assert_int_eq(t_check(fs, 0, &l, &rep), 0); /* known damage is a note */
	ck_assert(t_said(&l, "known damage: /a bytes 0-", NULL));
	ck_assert(t_said(&l, "known damage: /a2 bytes 0-", NULL));
	ck_assert_int_eq(zf_fs_close(fs), 0); /* through a checkpoint */
	ck_assert_int_eq(zf_fs_open(dir, &keep_log, &fs), 0);
	ck_assert(!t_intact(fs, a, 1));
	/* the same bytes again: stored afresh (never shared), healing a and a2 */
	d = t_file(fs, "again", 1);
	ck_assert(t_intact(fs, d, 1) && t_intact(fs, a, 1) && t_intact(fs, a2, 1));
	zf_fs_abandon(fs); /* and through replay of the log */
	ck_assert_int_eq(zf_fs_open(dir, NULL, &fs), 0);
	ck_assert(t_intact(fs, a, 1) && t_intact(fs, a2, 1) && t_intact(fs, d, 1));
	ck_assert_int_eq(t_check(fs, 0, &l, &rep), 0);
	ck_assert(!t_said(&l, "known damage", NULL));
	zf_fs_close(fs);
	zf_buf_free(&b);
	t_rmrf(dir);
	free(dir);
}
END_TEST

/* what fsck sees of the core (fs_inspect.h) */
struct t_seen {
	uint64_t bytes, n;
};

static int t_extent(void *ctx, const struct zf_inspect_extent *x)
{
	struct t_seen *s = ctx;

	ck_assert_ptr_nonnull(x->chunk);
	ck_assert_uint_le((uint64_t)x->coff + x->len, x->chunk_len);
	s->bytes += x->len;
	s->n++;
	return 0;
}

static int t_chunk(void *ctx, const struct zf_inspect_chunk *c)
{
	struct t_seen *s = ctx;

	ck_assert(c->w.readable && !c->bad && !c->lost);
	ck_assert(c->w.located || c->in_pack);
	ck_assert_uint_ge(c->w.refs, 1);
	s->n++;
	return 0;
}

/* entries by cursor, extents and chunks as written; a fix is logged and replayed */
START_TEST(inspect_shows_the_table_and_fixes_are_logged)
{
	struct zf_check_report rep;
	struct zf_inspect_inode in;
	struct zf_inspect_dirent de;
	struct t_seen ext = { 0 }, chunks = { 0 };
	struct zf_attr at;
	struct lines l;
	char *dir = t_tmpdir();
	uint64_t a, ino;
	uint32_t pos = 0;
	struct zf_fs *fs;
	int names = 0;

	ck_assert_int_eq(zf_fs_mkfs(dir, &small_mkfs), 0);
	ck_assert_int_eq(zf_fs_open(dir, NULL, &fs), 0);
	a = t_file(fs, "a", 1);
	t_file(fs, "b", 2);
	zf_fs_inspect_lock(fs);
	while (zf_fs_inspect_dirent(fs, ZF_ROOT_INO, &pos, &de) == 0) {
		ck_assert(de.by_name && de.dtype == S_IFREG >> 12);
		names++;
	}
	ck_assert_int_eq(names, 2);
	pos = 0;
	ck_assert_int_eq(zf_fs_inspect_dirent(fs, a, &pos, &de), -ENOENT); /* not a directory */
	ck_assert_int_eq(zf_fs_inspect_lookup(fs, ZF_ROOT_INO, "a", &ino), 0);
	ck_assert_uint_eq(ino, a);
	ck_assert_int_eq(zf_fs_inspect_inode(fs, a, &in), 0);
	ck_assert_uint_eq(in.size, FILE_BYTES);
	ck_assert_uint_eq(in.mapped, FILE_BYTES);
	ck_assert_int_eq(zf_fs_inspect_extents(fs, a, t_extent, &ext), 0);
	ck_assert_uint_eq(ext.bytes, FILE_BYTES);
	ck_assert_uint_eq(ext.n, in.nextents);
	ck_assert_int_eq(zf_fs_inspect_chunks(fs, t_chunk, &chunks), 0);
	ck_assert_uint_ge(chunks.n, ext.n);
	/* a second name for a, and its link count to match */
	ck_assert_int_eq(zf_fs_fix_link(fs, ZF_ROOT_INO, a, "a"), -EEXIST);
	ck_assert_int_eq(zf_fs_fix_link(fs, a, a, "x"), -ENOTDIR);
	ck_assert_int_eq(zf_fs_fix_link(fs, ZF_ROOT_INO, a, "a2"), 0);
	ck_assert_int_eq(zf_fs_fix_nlink(fs, a, 2), 0);
	zf_fs_inspect_unlock(fs);
	ck_assert_int_eq(zf_fs_sync(fs), 0);
	zf_fs_abandon(fs); /* a crash after the commit: the records replay */

	ck_assert_int_eq(zf_fs_open(dir, NULL, &fs), 0);
	ck_assert_int_eq(zf_fs_lookup(fs, ZF_ROOT_INO, "a2", &at), 0);
	ck_assert_uint_eq(at.ino, a);
	ck_assert_uint_eq(at.nlink, 2);
	ck_assert_int_eq(t_check(fs, 0, &l, &rep), 0);
	ck_assert(t_intact(fs, a, 1));
	zf_fs_close(fs);
	t_rmrf(dir);
	free(dir);
}
END_TEST

static Suite *repair_suite(void)
{
	Suite *s = suite_create("repair");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, mlog_salvage_resyncs_on_the_next_frame);
	tcase_add_test(tc, salvage_skips_a_damaged_log_record);
	tcase_add_test(tc, repair_rebuilds_refcounts_links_and_lost_found);
	tcase_add_test(tc, chunk_bad_reads_eio_and_a_fresh_copy_heals);
	tcase_add_test(tc, inspect_shows_the_table_and_fixes_are_logged);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(repair_suite());
	int failed;

	zf_log_init("check_repair", 0, ZF_LOG_WARN);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
