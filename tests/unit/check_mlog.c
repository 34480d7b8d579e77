/*
 * tests/unit/check_mlog.c - unit tests for storage/mlog.c: record framing,
 * log commit and replay (transactions, early records, abort, skip_upto),
 * torn tails told from damage, the salvage replay of fsck, checkpoints
 * (strict and salvage loads), the durable mark and a commit that fails for
 * lack of space.
 *
 * Every test works in its own scratch directory under one root made by
 * main(), which also unmounts and removes what a failed test left behind
 * (Check ends a failed forked test with _exit). Damage is made by editing
 * files at the offsets of docs/FORMAT.md ("Metadata log", "Records",
 * "Checkpoints", "The durable mark"); payloads come from a seeded PRNG so
 * every delivered record is compared byte for byte.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "common/endian.h"
#include "common/log.h"
#include "common/util.h"
#include "storage/meta_format.h"
#include "storage/mlog.h"
#include "zf_test.h"

static char g_root[200];		/* parent of every scratch dir */
static const uint8_t g_fsid[16] = { 0x5a, 0x46, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
				    0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e };
static const uint8_t g_other[16] = { 0x5a, 0x46, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
				     0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0xee };

/* ---- scratch directories and file edits ---- */

struct scratch {
	char path[256];
	int fd;
};

static void scratch_new(struct scratch *s)
{
	snprintf(s->path, sizeof(s->path), "%s/t-XXXXXX", g_root);
	ck_assert_ptr_nonnull(mkdtemp(s->path));
	s->fd = open(s->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(s->fd, 0);
}

static void scratch_done(struct scratch *s)
{
	close(s->fd);
	t_rmrf(s->path);
}

static int exists(int dirfd, const char *name)
{
	return faccessat(dirfd, name, F_OK, 0) == 0;
}

static uint64_t file_size(int dirfd, const char *name)
{
	struct stat st;

	ck_assert_int_eq(fstatat(dirfd, name, &st, 0), 0);
	return st.st_size;
}

/* the whole file (malloc'd) */
static uint8_t *slurp(int dirfd, const char *name, size_t *ret_len)
{
	void *p = NULL;

	ck_assert_int_eq(zf_read_file(dirfd, name, &p, ret_len), 0);
	return p;
}

/* replace the file with len bytes of p */
static void put_file(int dirfd, const char *name, const void *p, size_t len)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(zf_pwrite_full(fd, p, len, 0), 0);
	close(fd);
}

static void cut_file(int dirfd, const char *name, uint64_t len)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, len), 0);
	close(fd);
}

static void xor_byte(int dirfd, const char *name, uint64_t off, uint8_t mask)
{
	int fd = openat(dirfd, name, O_RDWR | O_CLOEXEC);
	uint8_t c;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &c, 1, off), 1);
	c ^= mask;
	ck_assert_int_eq(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

static void append_bytes(int dirfd, const char *name, const void *p, size_t len)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(zf_pwrite_full(fd, p, len, file_size(dirfd, name)), 0);
	close(fd);
}

/* ---- payloads and what the callbacks saw ---- */

/* len bytes of payload number seed (valid until the next call) */
static const uint8_t *pl(uint64_t seed, uint32_t len)
{
	static uint8_t buf[1 << 20];

	ck_assert_uint_le(len, sizeof(buf));
	t_fill(buf, len, seed);
	return buf;
}

struct rec {
	uint8_t type, flags;
	uint32_t len;
	uint64_t seq, off;
	uint8_t *payload;	/* NULL when keep_hash_only */
	uint64_t hash;		/* XXH3-64 of the payload */
};

struct bad {
	char name[64];
	uint64_t off, expect;
	size_t len;
	uint8_t *bytes;
};

struct sink {
	struct rec v[64];
	size_t n;
	struct bad b[16];
	size_t nbad;
	size_t stop_at;		/* non-zero: return stop_ret on the stop_at'th record */
	int stop_ret;
	int keep_hash_only;	/* big payloads: keep their hash only */
};

static int on_rec(void *ctx, const struct zf_frame *f)
{
	struct sink *s = ctx;
	struct rec *r;

	ck_assert_uint_lt(s->n, sizeof(s->v) / sizeof(s->v[0]));
	r = &s->v[s->n++];
	r->type = f->type;
	r->flags = f->flags;
	r->len = f->len;
	r->seq = f->seq;
	r->off = f->off;
	r->hash = XXH3_64bits(f->payload, f->len);
	r->payload = NULL;
	if (!s->keep_hash_only) {
		r->payload = malloc(f->len + 1);
		memcpy(r->payload, f->payload, f->len);
	}
	return s->stop_at && s->n == s->stop_at ? s->stop_ret : 0;
}

static void on_bad(void *ctx, const char *name, uint64_t off, const uint8_t *p, size_t len,
		   uint64_t expect_seq)
{
	struct sink *s = ctx;
	struct bad *b;

	ck_assert_uint_lt(s->nbad, sizeof(s->b) / sizeof(s->b[0]));
	b = &s->b[s->nbad++];
	snprintf(b->name, sizeof(b->name), "%s", name);
	b->off = off;
	b->len = len;
	b->expect = expect_seq;
	b->bytes = malloc(len + 1);
	if (len)
		memcpy(b->bytes, p, len);
}

static void sink_reset(struct sink *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->v[i].payload);
	for (i = 0; i < s->nbad; i++)
		free(s->b[i].bytes);
	memset(s, 0, sizeof(*s));
}

/* record i of s is (type, flags, seq) with payload (seed, len) */
static void check_rec(const struct sink *s, size_t i, uint8_t type, uint8_t flags, uint64_t seq,
		      uint64_t seed, uint32_t len)
{
	const struct rec *r;

	ck_assert_msg(i < s->n, "record %zu (seq %llu) not delivered: only %zu", i,
		      (unsigned long long)seq, s->n);
	r = &s->v[i];
	ck_assert_msg(r->seq == seq, "record %zu: seq %llu, expected %llu", i,
		      (unsigned long long)r->seq, (unsigned long long)seq);
	ck_assert_uint_eq(r->type, type);
	ck_assert_uint_eq(r->flags, flags);
	ck_assert_uint_eq(r->len, len);
	ck_assert_ptr_nonnull(r->payload);
	ck_assert_msg(memcmp(r->payload, pl(seed, len), len) == 0, "record %zu: payload differs",
		      i);
}

/* the bad region reported as number i is [off, off + len) of file name,
 * with expect_seq expect, and its bytes are the file's */
static void check_bad(const struct sink *s, size_t i, int dirfd, const char *name, uint64_t off,
		      size_t len, uint64_t expect)
{
	const struct bad *b;
	uint8_t *file;
	size_t flen;

	ck_assert_msg(i < s->nbad, "bad region %zu not reported: only %zu", i, s->nbad);
	b = &s->b[i];
	ck_assert_str_eq(b->name, name);
	ck_assert_msg(b->off == off, "bad region %zu: offset %llu, expected %llu", i,
		      (unsigned long long)b->off, (unsigned long long)off);
	ck_assert_msg(b->len == len, "bad region %zu: length %zu, expected %zu", i, b->len, len);
	ck_assert_msg(b->expect == expect, "bad region %zu: expect_seq %llu, expected %llu", i,
		      (unsigned long long)b->expect, (unsigned long long)expect);
	file = slurp(dirfd, name, &flen);
	ck_assert_uint_le(off + len, flen);
	ck_assert(len == 0 || memcmp(b->bytes, file + off, len) == 0);
	free(file);
}

/* a 64-byte file header as docs/FORMAT.md lays it out */
static void check_file_header(const uint8_t *h, const char *magic, const uint8_t fsid[16],
			      uint64_t seq)
{
	static const uint8_t zero[16];

	ck_assert(memcmp(h, magic, 8) == 0);
	ck_assert_uint_eq(zf_get32(h + 8), 1);
	ck_assert_uint_eq(zf_get32(h + 12), 0);
	ck_assert(memcmp(h + 16, fsid, 16) == 0);
	ck_assert_uint_eq(zf_get64(h + 32), seq);
	ck_assert(memcmp(h + 40, zero, 16) == 0);
	ck_assert_uint_eq(zf_get64(h + 56), XXH3_64bits(h, 56));
}

#define FSZ(len) (ZF_REC_HDR_SIZE + (uint64_t)(len)) /* bytes of a frame */

/* ------------------------------------------------------------ framing */

START_TEST(frame_roundtrip)
{
	static const uint32_t lens[] = { 0, 1, 31, 32, 33, 4096, 200000 };
	static const uint64_t seqs[] = { 0, 1, 0x1234, (1ull << 63) + 5, UINT64_MAX };
	static const uint8_t types[] = { ZF_REC_INODE, ZF_REC_EXTENTS, ZF_REC_END, 0, 255 };
	static const uint8_t flags[] = { 0, ZF_REC_F_TXN_END, 0xfe, 0xff };
	struct zf_buf b = { 0 };
	size_t off[20], i, n = 20;

	/* every combination of length with the others rotating */
	for (i = 0; i < n; i++) {
		uint32_t len = lens[i % 7];

		off[i] = b.len;
		zf_frame_put(&b, types[i % 5], flags[i % 4], seqs[(i * 3) % 5],
			     len ? pl(i, len) : NULL, len);
		ck_assert_uint_eq(b.len - off[i], FSZ(len));
	}
	for (i = 0; i < n; i++) {
		uint32_t len = lens[i % 7];
		const uint8_t *h = b.p + off[i];
		struct zf_frame f;

		/* the bytes are those of docs/FORMAT.md "Records" */
		ck_assert(memcmp(h, "ZFLR", 4) == 0);
		ck_assert_uint_eq(zf_get32(h), ZF_REC_MAGIC);
		ck_assert_uint_eq(h[4], types[i % 5]);
		ck_assert_uint_eq(h[5], flags[i % 4]);
		ck_assert_uint_eq(zf_get16(h + 6), 0);
		ck_assert_uint_eq(zf_get32(h + 8), len);
		ck_assert_uint_eq(zf_get32(h + 12), 0);
		ck_assert_uint_eq(zf_get64(h + 16), seqs[(i * 3) % 5]);
		ck_assert_uint_eq(zf_get64(h + 24), XXH3_64bits_withSeed(h + 32, len,
									XXH3_64bits(h, 24)));
		/* parsed in place, with the following frames as extra bytes */
		memset(&f, 0, sizeof(f));
		ck_assert_int_eq(zf_frame_parse(h, b.len - off[i], &f), (ssize_t)FSZ(len));
		ck_assert_uint_eq(f.type, types[i % 5]);
		ck_assert_uint_eq(f.flags, flags[i % 4]);
		ck_assert_uint_eq(f.len, len);
		ck_assert_uint_eq(f.seq, seqs[(i * 3) % 5]);
		ck_assert_ptr_eq(f.payload, h + 32);
		ck_assert(memcmp(f.payload, pl(i, len), len) == 0);
	}
	zf_buf_free(&b);
}
END_TEST

/* what zf_frame_parse must say of frame p (avail bytes) after a flip */
static ssize_t flip_verdict(const uint8_t *p, size_t avail, size_t byte)
{
	uint32_t len = zf_get32(p + 8);

	/* a length that still passes the bound but runs past avail is "too
	 * short" (maybe torn); everything else no longer verifies */
	if (byte >= 8 && byte < 12 && len <= ZF_REC_MAX_PAYLOAD && len > avail - ZF_REC_HDR_SIZE)
		return 0;
	return -EBADMSG;
}

START_TEST(frame_bitflips_rejected)
{
	static const uint32_t lens[] = { 0, 1, 100, 1000 };
	static const size_t extra[] = { 0, 3000 };
	size_t li, ei, i, bit;

	for (li = 0; li < 4; li++) {
		for (ei = 0; ei < 2; ei++) {
			struct zf_buf b = { 0 };
			size_t fsz;

			zf_frame_put(&b, ZF_REC_XATTR_SET, ZF_REC_F_TXN_END, 77 + li,
				     pl(li, lens[li]), lens[li]);
			fsz = b.len;
			/* trailing bytes after the frame (zeros): a longer
			 * length may then fit and must fail the checksum */
			memset(zf_buf_grow(&b, extra[ei]), 0, extra[ei]);
			for (i = 0; i < fsz; i++) {
				for (bit = 0; bit < 8; bit++) {
					struct zf_frame f, sentinel;
					ssize_t r, want;

					memset(&f, 0xa5, sizeof(f));
					sentinel = f;
					b.p[i] ^= 1u << bit;
					r = zf_frame_parse(b.p, b.len, &f);
					want = flip_verdict(b.p, b.len, i);
					ck_assert_msg(r == want,
						      "len %u extra %zu: flip of bit %zu of "
						      "byte %zu gave %zd, expected %zd",
						      lens[li], extra[ei], bit, i, r, want);
					/* ret_frame is written only on success */
					ck_assert(memcmp(&f, &sentinel, sizeof(f)) == 0);
					b.p[i] ^= 1u << bit;
				}
			}
			{
				struct zf_frame f;

				ck_assert_int_eq(zf_frame_parse(b.p, b.len, &f), (ssize_t)fsz);
			}
			zf_buf_free(&b);
		}
	}
	/* a bad magic or a non-zero reserved field is damage even under a
	 * checksum that matches (the checksum covers them: recompute it) */
	{
		static const size_t at[] = { 0, 3, 6, 7, 12, 15 };
		struct zf_buf b = { 0 };
		struct zf_frame f;
		size_t k;

		for (k = 0; k < 6; k++) {
			b.len = 0;
			zf_frame_put(&b, ZF_REC_INODE, 0, 5, pl(3, 40), 40);
			b.p[at[k]] ^= 0x02;
			zf_put64(b.p + 24,
				 XXH3_64bits_withSeed(b.p + 32, 40, XXH3_64bits(b.p, 24)));
			ck_assert_msg(zf_frame_parse(b.p, b.len, &f) == -EBADMSG,
				      "byte %zu changed under a good checksum: accepted", at[k]);
		}
		zf_buf_free(&b);
	}
}
END_TEST

START_TEST(frame_truncated_is_too_short)
{
	static const uint32_t lens[] = { 0, 1, 33, 1000, 300000 };
	size_t li, cut;

	for (li = 0; li < 5; li++) {
		struct zf_buf b = { 0 };
		struct zf_frame f, sentinel;

		zf_frame_put(&b, ZF_REC_SC, 0, 1000 + li, pl(li + 9, lens[li]), lens[li]);
		memset(&f, 0x3c, sizeof(f));
		sentinel = f;
		for (cut = 0; cut < b.len; cut++) {
			ssize_t r = zf_frame_parse(b.p, cut, &f);

			ck_assert_msg(r == 0, "len %u cut at %zu: gave %zd, expected 0", lens[li],
				      cut, r);
		}
		ck_assert(memcmp(&f, &sentinel, sizeof(f)) == 0);
		ck_assert_int_eq(zf_frame_parse(b.p, b.len, &f), (ssize_t)b.len);
		ck_assert_uint_eq(f.seq, 1000 + li);
		zf_buf_free(&b);
	}
	/* a length above the 64 MiB bound is damage, even if it might be torn */
	{
		uint8_t h[ZF_REC_HDR_SIZE];
		struct zf_buf b = { 0 };
		struct zf_frame f;

		zf_frame_put(&b, ZF_REC_SC, 0, 1, NULL, 0);
		memcpy(h, b.p, sizeof(h));
		zf_put32(h + 8, ZF_REC_MAX_PAYLOAD + 1);
		ck_assert_int_eq(zf_frame_parse(h, sizeof(h), &f), -EBADMSG);
		zf_put32(h + 8, ZF_REC_MAX_PAYLOAD);
		ck_assert_int_eq(zf_frame_parse(h, sizeof(h), &f), 0);
		zf_buf_free(&b);
	}
}
END_TEST

/* ------------------------------------------------------------ commit and replay */

START_TEST(mlog_commit_and_replay)
{
	const uint8_t E = ZF_REC_F_TXN_END;
	struct zf_mlog_scan scan;
	struct sink s = { 0 };
	struct scratch d;
	struct zf_mlog *log;
	char name[64], tmp[80];
	uint64_t size, offs[8];
	uint8_t *file;
	size_t flen, i;

	scratch_new(&d);
	zf_mlog_name(100, name, sizeof(name));
	ck_assert_str_eq(name, "log.0000000000000064");
	ck_assert_int_eq(zf_mlog_create(d.fd, g_fsid, 100, &log), 0);
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	ck_assert(!exists(d.fd, tmp));
	ck_assert_uint_eq(file_size(d.fd, name), ZF_LOG_HDR_SIZE);
	file = slurp(d.fd, name, &flen);
	check_file_header(file, ZF_LOG_MAGIC, g_fsid, 100);
	free(file);
	ck_assert_uint_eq(zf_mlog_first_seq(log), 100);
	ck_assert_uint_eq(zf_mlog_next_seq(log), 100);
	ck_assert_uint_eq(zf_mlog_size(log), ZF_LOG_HDR_SIZE);
	ck_assert_uint_eq(zf_mlog_pending(log), 0);

	/* nothing to write: no-ops */
	zf_mlog_txn_end(log);
	ck_assert_int_eq(zf_mlog_commit(log), 0);
	ck_assert_uint_eq(file_size(d.fd, name), ZF_LOG_HDR_SIZE);

	/* T1 = A B (B empty), T2 = C */
	zf_mlog_add(log, ZF_REC_INODE, pl(1, 88), 88);
	zf_mlog_add(log, ZF_REC_DIRENT_ADD, NULL, 0);
	ck_assert_uint_eq(zf_mlog_pending(log), 0); /* open: not pending yet */
	zf_mlog_txn_end(log);
	ck_assert_uint_eq(zf_mlog_pending(log), FSZ(88) + FSZ(0));
	zf_mlog_txn_end(log);
	ck_assert_uint_eq(zf_mlog_pending(log), FSZ(88) + FSZ(0));
	zf_mlog_add(log, ZF_REC_EXTENTS, pl(3, 1), 1);
	zf_mlog_txn_end(log);
	ck_assert_int_eq(zf_mlog_commit(log), 0);
	ck_assert_uint_eq(zf_mlog_next_seq(log), 103);
	ck_assert_uint_eq(zf_mlog_pending(log), 0);
	size = ZF_LOG_HDR_SIZE + FSZ(88) + FSZ(0) + FSZ(1);
	ck_assert_uint_eq(zf_mlog_size(log), size);
	ck_assert_uint_eq(file_size(d.fd, name), size);

	/* T3 = D E; F left open across the commit; early X1 X2 go first */
	zf_mlog_add(log, ZF_REC_XATTR_SET, pl(4, 500), 500);
	zf_mlog_add(log, ZF_REC_XATTR_DEL, pl(5, 7), 7);
	zf_mlog_txn_end(log);
	zf_mlog_add(log, ZF_REC_DIRENT_DEL, pl(6, 20), 20);
	zf_mlog_add_early(log, ZF_REC_SC, pl(7, 60), 60);
	zf_mlog_add_early(log, ZF_REC_SC, pl(8, 2), 2);
	ck_assert_uint_eq(zf_mlog_pending(log), FSZ(60) + FSZ(2) + FSZ(500) + FSZ(7));
	ck_assert_int_eq(zf_mlog_commit(log), 0);
	ck_assert_uint_eq(zf_mlog_next_seq(log), 107);
	ck_assert_uint_eq(zf_mlog_pending(log), 0);
	/* the open F ends now, alone: its frame moved in the buffer */
	zf_mlog_txn_end(log);
	ck_assert_uint_eq(zf_mlog_pending(log), FSZ(20));

	/* an aborted transaction is dropped, the complete one before it kept */
	zf_mlog_add(log, ZF_REC_INODE, pl(9, 40), 40);
	zf_mlog_add(log, ZF_REC_INODE, pl(10, 41), 41);
	zf_mlog_txn_abort(log);
	ck_assert_uint_eq(zf_mlog_pending(log), FSZ(20));
	zf_mlog_add(log, ZF_REC_INODE_DEL, pl(11, 8), 8);
	zf_mlog_txn_end(log);
	ck_assert_int_eq(zf_mlog_commit(log), 0);
	ck_assert_uint_eq(zf_mlog_next_seq(log), 109);

	/* an open transaction at close is never written */
	zf_mlog_add(log, ZF_REC_INODE, pl(12, 30), 30);
	ck_assert_int_eq(zf_mlog_commit(log), 0);
	size = zf_mlog_size(log);
	ck_assert_uint_eq(file_size(d.fd, name), size);
	zf_mlog_close(log);
	zf_mlog_close(NULL);
	ck_assert_uint_eq(file_size(d.fd, name), size);

	ck_assert_int_eq(zf_mlog_replay(d.fd, name, g_fsid, 0, on_rec, &s, &scan), 0);
	ck_assert_uint_eq(s.n, 9);
	check_rec(&s, 0, ZF_REC_INODE, 0, 100, 1, 88);
	check_rec(&s, 1, ZF_REC_DIRENT_ADD, E, 101, 2, 0);
	check_rec(&s, 2, ZF_REC_EXTENTS, E, 102, 3, 1);
	check_rec(&s, 3, ZF_REC_SC, E, 103, 7, 60);
	check_rec(&s, 4, ZF_REC_SC, E, 104, 8, 2);
	check_rec(&s, 5, ZF_REC_XATTR_SET, 0, 105, 4, 500);
	check_rec(&s, 6, ZF_REC_XATTR_DEL, E, 106, 5, 7);
	check_rec(&s, 7, ZF_REC_DIRENT_DEL, E, 107, 6, 20);
	check_rec(&s, 8, ZF_REC_INODE_DEL, E, 108, 11, 8);
	/* each frame's offset in the file */
	offs[0] = ZF_LOG_HDR_SIZE;
	for (i = 1; i < 8; i++)
		offs[i] = offs[i - 1] + FSZ(s.v[i - 1].len);
	for (i = 0; i < 8; i++)
		ck_assert_uint_eq(s.v[i].off, offs[i]);
	ck_assert_uint_eq(scan.first_seq, 100);
	ck_assert_uint_eq(scan.last_seq, 108);
	ck_assert_uint_eq(scan.end, size);
	ck_assert_uint_eq(scan.dropped, 0);

	/* skip_upto: checked, not delivered */
	sink_reset(&s);
	ck_assert_int_eq(zf_mlog_replay(d.fd, name, g_fsid, 105, on_rec, &s, &scan), 0);
	ck_assert_uint_eq(s.n, 3);
	check_rec(&s, 0, ZF_REC_XATTR_DEL, E, 106, 5, 7);
	check_rec(&s, 2, ZF_REC_INODE_DEL, E, 108, 11, 8);
	ck_assert_uint_eq(scan.last_seq, 108);
	sink_reset(&s);
	ck_assert_int_eq(zf_mlog_replay(d.fd, name, g_fsid, 1000, on_rec, &s, &scan), 0);
	ck_assert_uint_eq(s.n, 0);
	ck_assert_uint_eq(scan.last_seq, 108);
	ck_assert_uint_eq(scan.end, size);

	/* the callback's non-zero stops the replay and is returned */
	sink_reset(&s);
	s.stop_at = 4;
	s.stop_ret = 42;
	ck_assert_int_eq(zf_mlog_replay(d.fd, name, g_fsid, 0, on_rec, &s, &scan), 42);
	ck_assert_uint_eq(s.n, 4);

	/* an unterminated transaction on disk (seq 109, 110) is not delivered */
	{
		struct zf_buf b = { 0 };

		zf_frame_put(&b, ZF_REC_INODE, 0, 109, pl(13, 16), 16);
		zf_frame_put(&b, ZF_REC_INODE, 0, 110, pl(14, 16), 16);
		append_bytes(d.fd, name, b.p, b.len);
		sink_reset(&s);
		ck_assert_int_eq(zf_mlog_replay(d.fd, name, g_fsid, 0, on_rec, &s, &scan), 0);
		ck_assert_uint_eq(s.n, 9);
		ck_assert_uint_eq(scan.last_seq, 108);
		ck_assert_uint_eq(scan.end, size);
		ck_assert_uint_eq(scan.dropped, b.len);
		/* its end arrives: delivered whole */
		b.len = 0;
		zf_frame_put(&b, ZF_REC_INODE_DEL, E, 111, pl(15, 8), 8);
		append_bytes(d.fd, name, b.p, b.len);
		sink_reset(&s);
		ck_assert_int_eq(zf_mlog_replay(d.fd, name, g_fsid, 0, on_rec, &s, &scan), 0);
		ck_assert_uint_eq(s.n, 12);
		check_rec(&s, 9, ZF_REC_INODE, 0, 109, 13, 16);
		check_rec(&s, 11, ZF_REC_INODE_DEL, E, 111, 15, 8);
		ck_assert_uint_eq(scan.last_seq, 111);
		ck_assert_uint_eq(scan.dropped, 0);
		ck_assert_uint_eq(scan.end, file_size(d.fd, name));
		zf_buf_free(&b);
	}
	sink_reset(&s);
	scratch_done(&d);
}
END_TEST

/* ------------------------------------------------------------ torn tails */

/* one transaction of n records (type 1 + i, len lens[i], seed seed + i) */
static void add_txn(struct zf_mlog *log, size_t n, const uint32_t *lens, uint64_t seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		zf_mlog_add(log, ZF_REC_INODE + i, pl(seed + i, lens[i]), lens[i]);
	zf_mlog_txn_end(log);
}

START_TEST(mlog_torn_tail_dropped_and_reopened)
{
	static const uint32_t l1[] = { 10, 200, 0 }, l2[] = { 33, 1 }, l3[] = { 40, 0, 300 };
	const uint8_t E = ZF_REC_F_TXN_END;
	struct zf_mlog_scan scan;
	struct sink s = { 0 };
	struct scratch d;
	struct zf_mlog *log;
	uint64_t prev_end, end, t;
	char name[64];

	scratch_new(&d);
	zf_mlog_name(1, name, sizeof(name));
	ck_assert_int_eq(zf_mlog_create(d.fd, g_fsid, 1, &log), 0);
	add_txn(log, 3, l1, 100);
	ck_assert_int_eq(zf_mlog_commit(log), 0);
	add_txn(log, 2, l2, 200);
	ck_assert_int_eq(zf_mlog_commit(log), 0);
	prev_end = zf_mlog_size(log);
	/* the last commit: one transaction of three records */
	add_txn(log, 3, l3, 300);
	ck_assert_int_eq(zf_mlog_commit(log), 0);
	end = zf_mlog_size(log);
	zf_mlog_close(log);
	ck_assert_uint_eq(end, prev_end + FSZ(40) + FSZ(0) + FSZ(300));

	ck_assert_int_eq(zf_mlog_replay(d.fd, name, g_fsid, 0, on_rec, &s, &scan), 0);
	ck_assert_uint_eq(s.n, 8);
	ck_assert_uint_eq(scan.dropped, 0);

	/* every cut inside the last commit: the state before it */
	for (t = end - 1; t >= prev_end; t--) {
		cut_file(d.fd, name, t);
		sink_reset(&s);
		memset(&scan, 0xff, sizeof(scan));
		ck_assert_msg(zf_mlog_replay(d.fd, name, g_fsid, 0, on_rec, &s, &scan) == 0,
			      "replay failed with the log cut at %llu", (unsigned long long)t);
		ck_assert_msg(s.n == 5, "cut at %llu: %zu records", (unsigned long long)t, s.n);
		check_rec(&s, 0, ZF_REC_INODE, 0, 1, 100, 10);
		check_rec(&s, 2, ZF_REC_INODE + 2, E, 3, 102, 0);
		check_rec(&s, 3, ZF_REC_INODE, 0, 4, 200, 33);
		check_rec(&s, 4, ZF_REC_INODE + 1, E, 5, 201, 1);
		ck_assert_uint_eq(scan.first_seq, 1);
		ck_assert_uint_eq(scan.last_seq, 5);
		ck_assert_uint_eq(scan.end, prev_end);
		ck_assert_uint_eq(scan.dropped, t - prev_end);
		if (t > prev_end)
			ck_assert_uint_gt(scan.dropped, 0);
	}

	/* a torn tail again, then reopened at scan.end: cut, and seq goes on */
	{
		uint8_t junk[50];

		t_fill(junk, sizeof(junk), 5);
		memcpy(junk, "ZFLR", 4);
		append_bytes(d.fd, name, junk, sizeof(junk));
	}
	sink_reset(&s);
	ck_assert_int_eq(zf_mlog_replay(d.fd, name, g_fsid, 0, on_rec, &s, &scan), 0);
	ck_assert_uint_eq(scan.dropped, 50);
	ck_assert_int_eq(zf_mlog_reopen(d.fd, name, scan.end, scan.last_seq + 1, &log), 0);
	ck_assert_uint_eq(file_size(d.fd, name), prev_end);
	ck_assert_uint_eq(zf_mlog_size(log), prev_end);
	ck_assert_uint_eq(zf_mlog_first_seq(log), 1);
	ck_assert_uint_eq(zf_mlog_next_seq(log), 6);
	add_txn(log, 2, l2, 400);
	ck_assert_int_eq(zf_mlog_commit(log), 0);
	ck_assert_uint_eq(zf_mlog_next_seq(log), 8);
	zf_mlog_close(log);
	sink_reset(&s);
	ck_assert_int_eq(zf_mlog_replay(d.fd, name, g_fsid, 0, on_rec, &s, &scan), 0);
	ck_assert_uint_eq(s.n, 7);
	check_rec(&s, 4, ZF_REC_INODE + 1, E, 5, 201, 1);
	check_rec(&s, 5, ZF_REC_INODE, 0, 6, 400, 33);
	check_rec(&s, 6, ZF_REC_INODE + 1, E, 7, 401, 1);
	ck_assert_uint_eq(s.v[5].off, prev_end);
	ck_assert_uint_eq(scan.last_seq, 7);
	ck_assert_uint_eq(scan.dropped, 0);
	ck_assert_uint_eq(scan.end, file_size(d.fd, name));

	/* reopen at the end itself changes nothing */
	ck_assert_int_eq(zf_mlog_reopen(d.fd, name, scan.end, 8, &log), 0);
	ck_assert_uint_eq(zf_mlog_size(log), scan.end);
	zf_mlog_close(log);
	ck_assert_uint_eq(file_size(d.fd, name), scan.end);
	sink_reset(&s);
	scratch_done(&d);
}
END_TEST

/*
 * A log of eight records in four transactions, seqs first..first+7:
 * [a b] [c d e] [f] [g h]; ret_off[i] is record i's offset, ret_off[8] the end.
 */
static void make_log8(int dirfd, const uint8_t fsid[16], uint64_t first, char *name,
		      size_t name_len, uint64_t ret_off[9])
{
	static const uint32_t lens[8] = { 12, 0, 64, 50, 7, 100, 9, 30 };
	static const size_t txn_end[8] = { 0, 1, 0, 0, 1, 1, 0, 1 };
	struct zf_mlog *log;
	size_t i;

	ck_assert_int_eq(zf_mlog_create(dirfd, fsid, first, &log), 0);
	zf_mlog_name(first, name, name_len);
	ret_off[0] = ZF_LOG_HDR_SIZE;
	for (i = 0; i < 8; i++) {
		zf_mlog_add(log, ZF_REC_INODE + i, pl(500 + i, lens[i]), lens[i]);
		if (txn_end[i])
			zf_mlog_txn_end(log);
		ret_off[i + 1] = ret_off[i] + FSZ(lens[i]);
		if (i == 4)
			ck_assert_int_eq(zf_mlog_commit(log), 0);
	}
	ck_assert_int_eq(zf_mlog_commit(log), 0);
	ck_assert_uint_eq(zf_mlog_size(log), ret_off[8]);
	zf_mlog_close(log);
}

/* record i of make_log8 is delivered as number k of s */
static void check_rec8(const struct sink *s, size_t k, size_t i, uint64_t first)
{
	static const uint32_t lens[8] = { 12, 0, 64, 50, 7, 100, 9, 30 };
	static const uint8_t fl[8] = { 0, 1, 0, 0, 1, 1, 0, 1 };

	check_rec(s, k, ZF_REC_INODE + i, fl[i], first + i, 500 + i, lens[i]);
}

START_TEST(mlog_damage_before_tail_is_ebadmsg)
{
	static const uint8_t masks[] = { 0x01, 0x80, 0xff };
	struct zf_mlog_scan scan;
	struct sink s = { 0 };
	struct scratch d;
	uint64_t off[9], i;
	char name[64];
	size_t mi, k;

	scratch_new(&d);
	make_log8(d.fd, g_fsid, 1, name, sizeof(name), off);

	/* every byte of record d (in the middle of [c d e]), three ways */
	for (i = off[3]; i < off[4]; i++) {
		for (mi = 0; mi < 3; mi++) {
			int r;

			xor_byte(d.fd, name, i, masks[mi]);
			sink_reset(&s);
			r = zf_mlog_replay(d.fd, name, g_fsid, 0, on_rec, &s, &scan);
			ck_assert_msg(r == -EBADMSG,
				      "byte %llu ^ 0x%02x of record 4: replay gave %d",
				      (unsigned long long)(i - off[3]), masks[mi], r);
			/* what was delivered came before the damage */
			for (k = 0; k < s.n; k++)
				ck_assert_uint_lt(s.v[k].seq, 3);
			xor_byte(d.fd, name, i, masks[mi]);
		}
	}
	/* the first record damaged (its seq field): also before the tail */
	xor_byte(d.fd, name, off[0] + 20, 0x10);
	ck_assert_int_eq(zf_mlog_replay(d.fd, name, g_fsid, 0, on_rec, &s, &scan), -EBADMSG);
	xor_byte(d.fd, name, off[0] + 20, 0x10);

	/* damage in the last record is a torn tail: its transaction dropped */
	xor_byte(d.fd, name, off[7] + 40, 0x04);
	sink_reset(&s);
	ck_assert_int_eq(zf_mlog_replay(d.fd, name, g_fsid, 0, on_rec, &s, &scan), 0);
	ck_assert_uint_eq(s.n, 6);
	ck_assert_uint_eq(scan.last_seq, 6);
	ck_assert_uint_eq(scan.end, off[6]);
	ck_assert_uint_eq(scan.dropped, off[8] - off[6]);
	xor_byte(d.fd, name, off[7] + 40, 0x04);

	/* the only valid frame after the damage is an empty one at the very
	 * end of the file: still damage, not a torn tail */
	{
		struct zf_buf b = { 0 };

		zf_frame_put(&b, ZF_REC_INODE_DEL, ZF_REC_F_TXN_END, 9, NULL, 0);
		append_bytes(d.fd, name, b.p, b.len);
		sink_reset(&s);
		ck_assert_int_eq(zf_mlog_replay(d.fd, name, g_fsid, 0, on_rec, &s, &scan), 0);
		ck_assert_uint_eq(s.n, 9);
		xor_byte(d.fd, name, off[7] + 40, 0x04);
		ck_assert_int_eq(zf_mlog_replay(d.fd, name, g_fsid, 0, on_rec, &s, &scan),
				 -EBADMSG);
		cut_file(d.fd, name, off[8]);
		xor_byte(d.fd, name, off[7] + 40, 0x04);
		zf_buf_free(&b);
	}

	/* a frame that verifies but is out of sequence is corruption */
	{
		struct zf_buf b = { 0 };

		zf_frame_put(&b, ZF_REC_INODE, ZF_REC_F_TXN_END, 10, pl(1, 4), 4); /* 9 skipped */
		append_bytes(d.fd, name, b.p, b.len);
		ck_assert_int_eq(zf_mlog_replay(d.fd, name, g_fsid, 0, on_rec, &s, &scan),
				 -EBADMSG);
		cut_file(d.fd, name, off[8]);
		b.len = 0;
		zf_frame_put(&b, ZF_REC_INODE, ZF_REC_F_TXN_END, 8, pl(1, 4), 4); /* 8 again */
		append_bytes(d.fd, name, b.p, b.len);
		ck_assert_int_eq(zf_mlog_replay(d.fd, name, g_fsid, 0, on_rec, &s, &scan),
				 -EBADMSG);
		cut_file(d.fd, name, off[8]);
		zf_buf_free(&b);
	}
	sink_reset(&s);
	ck_assert_int_eq(zf_mlog_replay(d.fd, name, g_fsid, 0, on_rec, &s, &scan), 0);
	ck_assert_uint_eq(s.n, 8);
	sink_reset(&s);
	scratch_done(&d);
}
END_TEST

/* ------------------------------------------------------------ salvage */

START_TEST(mlog_salvage_skips_damage)
{
	const uint64_t F = 0x40;
	struct zf_mlog_scan scan;
	struct sink s = { 0 };
	struct scratch d;
	uint64_t off[9];
	uint8_t *orig;
	size_t olen, k;
	char name[64];

	scratch_new(&d);
	make_log8(d.fd, g_fsid, F, name, sizeof(name), off);
	orig = slurp(d.fd, name, &olen);

	/* undamaged: the same as a replay, nothing reported */
	ck_assert_int_eq(zf_mlog_replay_salvage(d.fd, name, g_fsid, 0, on_rec, on_bad, &s, &scan),
			 0);
	ck_assert_uint_eq(s.n, 8);
	ck_assert_uint_eq(s.nbad, 0);

	/* record d (F + 3) damaged in the middle of [c d e] */
	xor_byte(d.fd, name, off[3] + ZF_REC_HDR_SIZE + 10, 0x20);
	ck_assert_int_eq(zf_mlog_replay(d.fd, name, g_fsid, 0, on_rec, &s, &scan), -EBADMSG);
	sink_reset(&s);
	ck_assert_int_eq(zf_mlog_replay_salvage(d.fd, name, g_fsid, 0, on_rec, on_bad, &s, &scan),
			 0);
	ck_assert_uint_eq(s.nbad, 1);
	check_bad(&s, 0, d.fd, name, off[3], off[4] - off[3], F + 3);
	ck_assert_uint_eq(s.n, 7);
	for (k = 0; k < 7; k++)
		check_rec8(&s, k, k < 3 ? k : k + 1, F);
	ck_assert_uint_eq(s.v[3].off, off[4]);
	ck_assert_uint_eq(scan.first_seq, F);
	ck_assert_uint_eq(scan.last_seq, F + 7);
	ck_assert_uint_eq(scan.end, off[8]);
	ck_assert_uint_eq(scan.dropped, 0);
	/* with skip_upto: the skipped ones are not delivered, damage still reported */
	sink_reset(&s);
	ck_assert_int_eq(zf_mlog_replay_salvage(d.fd, name, g_fsid, F + 4, on_rec, on_bad, &s,
						&scan), 0);
	ck_assert_uint_eq(s.nbad, 1);
	ck_assert_uint_eq(s.n, 3);
	check_rec8(&s, 0, 5, F);
	put_file(d.fd, name, orig, olen);

	/* damage across c's end and d's header: one region, resumes at e */
	{
		uint8_t z[15] = { 0 };
		int fd = openat(d.fd, name, O_WRONLY | O_CLOEXEC);

		ck_assert_int_eq(zf_pwrite_full(fd, z, sizeof(z), off[3] - 5), 0);
		close(fd);
	}
	sink_reset(&s);
	ck_assert_int_eq(zf_mlog_replay_salvage(d.fd, name, g_fsid, 0, on_rec, on_bad, &s, &scan),
			 0);
	ck_assert_uint_eq(s.nbad, 1);
	check_bad(&s, 0, d.fd, name, off[2], off[4] - off[2], F + 2);
	ck_assert_uint_eq(s.n, 6);
	check_rec8(&s, 1, 1, F);
	check_rec8(&s, 2, 4, F);
	check_rec8(&s, 5, 7, F);
	ck_assert_uint_eq(scan.last_seq, F + 7);
	put_file(d.fd, name, orig, olen);

	/* a stale frame (a second copy of b) between f and g is skipped */
	{
		struct zf_buf b = { 0 };

		zf_buf_add(&b, orig, off[6]);
		zf_buf_add(&b, orig + off[1], off[2] - off[1]);
		zf_buf_add(&b, orig + off[6], olen - off[6]);
		put_file(d.fd, name, b.p, b.len);
		ck_assert_int_eq(zf_mlog_replay(d.fd, name, g_fsid, 0, on_rec, &s, &scan),
				 -EBADMSG);
		sink_reset(&s);
		ck_assert_int_eq(zf_mlog_replay_salvage(d.fd, name, g_fsid, 0, on_rec, on_bad, &s,
							&scan), 0);
		ck_assert_uint_eq(s.nbad, 1);
		check_bad(&s, 0, d.fd, name, off[6], off[2] - off[1], F + 6);
		ck_assert_uint_eq(s.n, 8);
		check_rec8(&s, 6, 6, F);
		check_rec8(&s, 7, 7, F);
		zf_buf_free(&b);
	}
	/* a missing frame (f cut out): replay refuses, salvage goes on */
	{
		struct zf_buf b = { 0 };

		zf_buf_add(&b, orig, off[5]);
		zf_buf_add(&b, orig + off[6], olen - off[6]);
		put_file(d.fd, name, b.p, b.len);
		ck_assert_int_eq(zf_mlog_replay(d.fd, name, g_fsid, 0, on_rec, &s, &scan),
				 -EBADMSG);
		sink_reset(&s);
		ck_assert_int_eq(zf_mlog_replay_salvage(d.fd, name, g_fsid, 0, on_rec, on_bad, &s,
							&scan), 0);
		ck_assert_uint_eq(s.n, 7);
		check_rec8(&s, 5, 6, F);
		ck_assert_uint_eq(scan.last_seq, F + 7);
		zf_buf_free(&b);
	}
	put_file(d.fd, name, orig, olen);

	/* damage in the last transaction is a torn tail: dropped, not reported */
	xor_byte(d.fd, name, off[7] + 3, 0x01);
	sink_reset(&s);
	ck_assert_int_eq(zf_mlog_replay_salvage(d.fd, name, g_fsid, 0, on_rec, on_bad, &s, &scan),
			 0);
	ck_assert_uint_eq(s.nbad, 0);
	ck_assert_uint_eq(s.n, 6);
	ck_assert_uint_eq(scan.last_seq, F + 5);
	ck_assert_uint_eq(scan.end, off[6]);
	ck_assert_uint_eq(scan.dropped, off[8] - off[6]);
	put_file(d.fd, name, orig, olen);

	/* a damaged file header: reported, the seq taken from the name */
	xor_byte(d.fd, name, 20, 0x08);
	ck_assert_int_eq(zf_mlog_replay(d.fd, name, g_fsid, 0, on_rec, &s, &scan), -EBADMSG);
	sink_reset(&s);
	ck_assert_int_eq(zf_mlog_replay_salvage(d.fd, name, g_fsid, 0, on_rec, on_bad, &s, &scan),
			 0);
	ck_assert_uint_eq(s.nbad, 1);
	check_bad(&s, 0, d.fd, name, 0, ZF_LOG_HDR_SIZE, F);
	ck_assert_uint_eq(s.n, 8);
	for (k = 0; k < 8; k++)
		check_rec8(&s, k, k, F);
	ck_assert_uint_eq(scan.first_seq, F);
	ck_assert_uint_eq(scan.last_seq, F + 7);
	ck_assert_uint_eq(scan.dropped, 0);

	/* a file shorter than its header */
	cut_file(d.fd, name, 40);
	ck_assert_int_eq(zf_mlog_replay(d.fd, name, g_fsid, 0, on_rec, &s, &scan), -EBADMSG);
	sink_reset(&s);
	ck_assert_int_eq(zf_mlog_replay_salvage(d.fd, name, g_fsid, 0, on_rec, on_bad, &s, &scan),
			 0);
	ck_assert_uint_eq(s.n, 0);
	ck_assert_uint_eq(s.nbad, 1);
	check_bad(&s, 0, d.fd, name, 0, 40, F);
	ck_assert_uint_eq(scan.first_seq, F);
	ck_assert_uint_eq(scan.last_seq, F - 1);
	ck_assert_uint_eq(scan.dropped, 0);
	cut_file(d.fd, name, 0);
	ck_assert_int_eq(zf_mlog_replay(d.fd, name, g_fsid, 0, on_rec, &s, &scan), -EBADMSG);
	sink_reset(&s);
	ck_assert_int_eq(zf_mlog_replay_salvage(d.fd, name, g_fsid, 0, on_rec, on_bad, &s, &scan),
			 0);
	ck_assert_uint_eq(s.n, 0);
	ck_assert_uint_eq(s.nbad, 1);
	check_bad(&s, 0, d.fd, name, 0, 0, F);
	ck_assert_uint_eq(scan.last_seq, F - 1);
	ck_assert_uint_eq(scan.dropped, 0);

	/* a missing file: -ENOENT from both */
	ck_assert_int_eq(zf_mlog_replay(d.fd, "log.00000000000000ff", g_fsid, 0, on_rec, &s, &scan),
			 -ENOENT);
	ck_assert_int_eq(zf_mlog_replay_salvage(d.fd, "log.00000000000000ff", g_fsid, 0, on_rec,
						on_bad, &s, &scan), -ENOENT);
	free(orig);
	sink_reset(&s);
	scratch_done(&d);
}
END_TEST

START_TEST(mlog_other_filesystem_refused)
{
	struct zf_mlog_scan scan;
	struct sink s = { 0 };
	struct scratch d;
	uint64_t off[9];
	char name[64];

	scratch_new(&d);
	make_log8(d.fd, g_other, 0x1000, name, sizeof(name), off);
	/* its own filesystem reads it */
	ck_assert_int_eq(zf_mlog_replay(d.fd, name, g_other, 0, on_rec, &s, &scan), 0);
	ck_assert_uint_eq(s.n, 8);
	sink_reset(&s);
	/* ours: refused, and the salvage reads nothing of it either */
	ck_assert_int_eq(zf_mlog_replay(d.fd, name, g_fsid, 0, on_rec, &s, &scan), -EBADMSG);
	ck_assert_uint_eq(s.n, 0);
	ck_assert_int_eq(zf_mlog_replay_salvage(d.fd, name, g_fsid, 0, on_rec, on_bad, &s, &scan),
			 -EBADMSG);
	ck_assert_uint_eq(s.n, 0);
	ck_assert_uint_eq(s.nbad, 0);
	/* also when only the header is there */
	cut_file(d.fd, name, ZF_LOG_HDR_SIZE);
	ck_assert_int_eq(zf_mlog_replay_salvage(d.fd, name, g_fsid, 0, on_rec, on_bad, &s, &scan),
			 -EBADMSG);
	ck_assert_uint_eq(s.nbad, 0);
	sink_reset(&s);
	scratch_done(&d);
}
END_TEST

/* ------------------------------------------------------------ checkpoints */

#define CK_N 10
static const uint32_t ck_lens[CK_N] = { 24, 0, 1, 600000, 333, 600000, 5, 70000, 2, 100 };

/* checkpoint seq of CK_N records (type STATE, then 1 + i % 9, seed 900 + i) */
static void make_ckpt(int dirfd, const uint8_t fsid[16], uint64_t seq, size_t n)
{
	struct zf_ckpt_writer *w;
	size_t i;

	ck_assert_int_eq(zf_ckpt_writer_new(dirfd, fsid, seq, &w), 0);
	for (i = 0; i < n; i++)
		ck_assert_int_eq(zf_ckpt_writer_add(w, i ? 1 + i % 9 : ZF_REC_STATE,
						    pl(900 + i, ck_lens[i]), ck_lens[i]), 0);
	ck_assert_int_eq(zf_ckpt_writer_finish(w), 0);
}

static void check_ckrec(const struct sink *s, size_t k, size_t i)
{
	check_rec(s, k, i ? 1 + i % 9 : ZF_REC_STATE, 0, i + 1, 900 + i, ck_lens[i]);
}

START_TEST(ckpt_roundtrip)
{
	struct zf_ckpt_writer *w;
	struct sink s = { 0 };
	struct scratch d;
	struct zf_frame f;
	char name[64], tmp[80];
	uint64_t seq, off;
	uint8_t *file;
	size_t flen, i;

	scratch_new(&d);
	zf_ckpt_name(0x77, name, sizeof(name));
	ck_assert_str_eq(name, "ckpt.0000000000000077");
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	/* a .tmp left by a crash does not stand in the way */
	put_file(d.fd, tmp, "junk", 4);

	ck_assert_int_eq(zf_ckpt_writer_new(d.fd, g_fsid, 0x77, &w), 0);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(zf_ckpt_writer_add(w, i ? 1 + i % 9 : ZF_REC_STATE,
						    pl(900 + i, ck_lens[i]), ck_lens[i]), 0);
	/* not published before finish */
	ck_assert(!exists(d.fd, name));
	ck_assert(exists(d.fd, tmp));
	for (; i < CK_N; i++)
		ck_assert_int_eq(zf_ckpt_writer_add(w, 1 + i % 9, pl(900 + i, ck_lens[i]),
						    ck_lens[i]), 0);
	ck_assert_int_eq(zf_ckpt_writer_finish(w), 0);
	ck_assert(exists(d.fd, name));
	ck_assert(!exists(d.fd, tmp));

	/* the bytes: header, records numbered 1.., END with the count */
	file = slurp(d.fd, name, &flen);
	check_file_header(file, ZF_CKPT_MAGIC, g_fsid, 0x77);
	off = ZF_CKPT_HDR_SIZE;
	for (i = 0; i < CK_N; i++) {
		ck_assert_int_eq(zf_frame_parse(file + off, flen - off, &f),
				 (ssize_t)FSZ(ck_lens[i]));
		ck_assert_uint_eq(f.seq, i + 1);
		off += FSZ(ck_lens[i]);
	}
	ck_assert_int_eq(zf_frame_parse(file + off, flen - off, &f), (ssize_t)FSZ(8));
	ck_assert_uint_eq(f.type, ZF_REC_END);
	ck_assert_uint_eq(f.flags, ZF_REC_F_TXN_END);
	ck_assert_uint_eq(f.seq, CK_N + 1);
	ck_assert_uint_eq(zf_get64(f.payload), CK_N);
	ck_assert_uint_eq(off + FSZ(8), flen);
	free(file);

	seq = 0;
	ck_assert_int_eq(zf_ckpt_load(d.fd, name, g_fsid, on_rec, &s, &seq), 0);
	ck_assert_uint_eq(seq, 0x77);
	ck_assert_uint_eq(s.n, CK_N);
	off = ZF_CKPT_HDR_SIZE;
	for (i = 0; i < CK_N; i++) {
		check_ckrec(&s, i, i);
		ck_assert_uint_eq(s.v[i].off, off);
		off += FSZ(ck_lens[i]);
	}
	/* the same through the salvage, nothing reported */
	sink_reset(&s);
	ck_assert_int_eq(zf_ckpt_load_salvage(d.fd, name, g_fsid, on_rec, on_bad, &s, &seq), 0);
	ck_assert_uint_eq(s.n, CK_N);
	ck_assert_uint_eq(s.nbad, 0);
	/* the callback's non-zero stops the load and is returned */
	sink_reset(&s);
	s.stop_at = 3;
	s.stop_ret = -ECANCELED;
	ck_assert_int_eq(zf_ckpt_load(d.fd, name, g_fsid, on_rec, &s, &seq), -ECANCELED);
	ck_assert_uint_eq(s.n, 3);

	/* an empty checkpoint: END alone, count 0 */
	make_ckpt(d.fd, g_fsid, 0x78, 0);
	zf_ckpt_name(0x78, name, sizeof(name));
	ck_assert_uint_eq(file_size(d.fd, name), ZF_CKPT_HDR_SIZE + FSZ(8));
	sink_reset(&s);
	ck_assert_int_eq(zf_ckpt_load(d.fd, name, g_fsid, on_rec, &s, &seq), 0);
	ck_assert_uint_eq(seq, 0x78);
	ck_assert_uint_eq(s.n, 0);
	sink_reset(&s);
	scratch_done(&d);
}
END_TEST

START_TEST(ckpt_abort_leaves_nothing)
{
	struct zf_ckpt_writer *w;
	struct scratch d;
	char name[64], tmp[80];

	scratch_new(&d);
	zf_ckpt_name(5, name, sizeof(name));
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	ck_assert_int_eq(zf_ckpt_writer_new(d.fd, g_fsid, 5, &w), 0);
	ck_assert_int_eq(zf_ckpt_writer_add(w, ZF_REC_STATE, pl(1, 32), 32), 0);
	ck_assert_int_eq(zf_ckpt_writer_add(w, ZF_REC_INODE, pl(2, 1 << 20), 1 << 20), 0);
	zf_ckpt_writer_abort(w);
	zf_ckpt_writer_abort(NULL);
	ck_assert(!exists(d.fd, name));
	ck_assert(!exists(d.fd, tmp));
	scratch_done(&d);
}
END_TEST

START_TEST(ckpt_damage_refused_and_salvaged)
{
	const size_t n = 6;
	struct sink s = { 0 };
	struct scratch d;
	uint64_t seq, off[7], len;
	uint8_t *orig;
	size_t olen, k;
	char name[64];

	scratch_new(&d);
	make_ckpt(d.fd, g_fsid, 0x99, n);
	zf_ckpt_name(0x99, name, sizeof(name));
	orig = slurp(d.fd, name, &olen);
	off[0] = ZF_CKPT_HDR_SIZE;
	for (k = 0; k < n; k++)
		off[k + 1] = off[k] + FSZ(ck_lens[k]); /* off[n]: the END record */
	ck_assert_uint_eq(olen, off[n] + FSZ(8));

	/* the END record missing */
	cut_file(d.fd, name, off[n]);
	seq = 12345;
	ck_assert_int_eq(zf_ckpt_load(d.fd, name, g_fsid, on_rec, &s, &seq), -EBADMSG);
	ck_assert_uint_eq(seq, 12345); /* written only on success */
	sink_reset(&s);
	ck_assert_int_eq(zf_ckpt_load_salvage(d.fd, name, g_fsid, on_rec, on_bad, &s, &seq), 0);
	ck_assert_uint_eq(seq, 0x99);
	ck_assert_uint_eq(s.n, n);
	for (k = 0; k < n; k++)
		check_ckrec(&s, k, k);
	ck_assert_uint_eq(s.nbad, 1);
	check_bad(&s, 0, d.fd, name, off[n], 0, n + 1);

	/* bytes after the END record */
	put_file(d.fd, name, orig, olen);
	append_bytes(d.fd, name, "junk!", 5);
	ck_assert_int_eq(zf_ckpt_load(d.fd, name, g_fsid, on_rec, &s, &seq), -EBADMSG);
	sink_reset(&s);
	ck_assert_int_eq(zf_ckpt_load_salvage(d.fd, name, g_fsid, on_rec, on_bad, &s, &seq), 0);
	ck_assert_uint_eq(s.n, n);
	ck_assert_uint_eq(s.nbad, 1);
	check_bad(&s, 0, d.fd, name, olen, 5, n + 2);

	/* an END record with the wrong count (a valid frame) */
	{
		struct zf_buf b = { 0 };
		uint8_t cnt[8];

		zf_buf_add(&b, orig, off[n]);
		zf_put64(cnt, n + 1);
		zf_frame_put(&b, ZF_REC_END, ZF_REC_F_TXN_END, n + 1, cnt, 8);
		put_file(d.fd, name, b.p, b.len);
		zf_buf_free(&b);
	}
	ck_assert_int_eq(zf_ckpt_load(d.fd, name, g_fsid, on_rec, &s, &seq), -EBADMSG);
	sink_reset(&s);
	ck_assert_int_eq(zf_ckpt_load_salvage(d.fd, name, g_fsid, on_rec, on_bad, &s, &seq), 0);
	ck_assert_uint_eq(s.n, n);
	ck_assert_uint_eq(s.nbad, 1);
	check_bad(&s, 0, d.fd, name, off[n], FSZ(8), n + 1);

	/* a damaged record in the middle (record 3) */
	put_file(d.fd, name, orig, olen);
	xor_byte(d.fd, name, off[2] + ZF_REC_HDR_SIZE, 0x40);
	ck_assert_int_eq(zf_ckpt_load(d.fd, name, g_fsid, on_rec, &s, &seq), -EBADMSG);
	sink_reset(&s);
	ck_assert_int_eq(zf_ckpt_load_salvage(d.fd, name, g_fsid, on_rec, on_bad, &s, &seq), 0);
	ck_assert_uint_eq(s.nbad, 1);
	check_bad(&s, 0, d.fd, name, off[2], off[3] - off[2], 3);
	ck_assert_uint_eq(s.n, n - 1);
	for (k = 0; k < n - 1; k++)
		check_ckrec(&s, k, k < 2 ? k : k + 1);

	/* cut inside the last record: it and the END are reported */
	put_file(d.fd, name, orig, olen);
	len = off[n - 1] + 20;
	cut_file(d.fd, name, len);
	ck_assert_int_eq(zf_ckpt_load(d.fd, name, g_fsid, on_rec, &s, &seq), -EBADMSG);
	sink_reset(&s);
	ck_assert_int_eq(zf_ckpt_load_salvage(d.fd, name, g_fsid, on_rec, on_bad, &s, &seq), 0);
	ck_assert_uint_eq(s.n, n - 1);
	ck_assert_uint_eq(s.nbad, 2);
	check_bad(&s, 0, d.fd, name, off[n - 1], 20, n);
	check_bad(&s, 1, d.fd, name, len, 0, n);

	/* a damaged header: reported, seq from the name, records delivered */
	put_file(d.fd, name, orig, olen);
	xor_byte(d.fd, name, 33, 0x01);
	ck_assert_int_eq(zf_ckpt_load(d.fd, name, g_fsid, on_rec, &s, &seq), -EBADMSG);
	sink_reset(&s);
	seq = 0;
	ck_assert_int_eq(zf_ckpt_load_salvage(d.fd, name, g_fsid, on_rec, on_bad, &s, &seq), 0);
	ck_assert_uint_eq(seq, 0x99);
	ck_assert_uint_eq(s.nbad, 1);
	check_bad(&s, 0, d.fd, name, 0, ZF_CKPT_HDR_SIZE, 1);
	ck_assert_uint_eq(s.n, n);

	/* a file shorter than its header */
	cut_file(d.fd, name, 10);
	ck_assert_int_eq(zf_ckpt_load(d.fd, name, g_fsid, on_rec, &s, &seq), -EBADMSG);
	sink_reset(&s);
	ck_assert_int_eq(zf_ckpt_load_salvage(d.fd, name, g_fsid, on_rec, on_bad, &s, &seq), 0);
	ck_assert_uint_eq(s.n, 0);
	ck_assert_uint_ge(s.nbad, 1);
	check_bad(&s, 0, d.fd, name, 0, 10, 1);

	free(orig);
	sink_reset(&s);
	scratch_done(&d);
}
END_TEST

START_TEST(ckpt_other_filesystem_refused)
{
	struct sink s = { 0 };
	struct scratch d;
	char name[64];
	uint64_t seq;

	scratch_new(&d);
	make_ckpt(d.fd, g_other, 0x55, 4);
	zf_ckpt_name(0x55, name, sizeof(name));
	ck_assert_int_eq(zf_ckpt_load(d.fd, name, g_other, on_rec, &s, &seq), 0);
	ck_assert_uint_eq(s.n, 4);
	sink_reset(&s);
	seq = 7;
	ck_assert_int_eq(zf_ckpt_load(d.fd, name, g_fsid, on_rec, &s, &seq), -EBADMSG);
	ck_assert_int_eq(zf_ckpt_load_salvage(d.fd, name, g_fsid, on_rec, on_bad, &s, &seq),
			 -EBADMSG);
	ck_assert_uint_eq(s.n, 0);
	ck_assert_uint_eq(s.nbad, 0);
	ck_assert_uint_eq(seq, 7);
	scratch_done(&d);
}
END_TEST

/*
 * Whatever the strict load refuses, the salvage must report to bad, or fsck
 * calls clean a file that the next open refuses: a record missing from a
 * log or a checkpoint, a stale frame at a log's tail, a wrong END count
 * together with trailing bytes (four bugs found by this test, fixed).
 */
START_TEST(salvage_reports_what_strict_refuses)
{
	struct zf_mlog_scan scan;
	struct sink s = { 0 };
	struct scratch d;
	uint64_t off[9], coff[7], seq;
	uint8_t *orig;
	size_t olen, k;

	/* check every case, then fail once: each is a separate finding */
#define EXPECT_REPORT(cond, ...)                                                   \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "check_mlog: " __VA_ARGS__);        \
			fputc('\n', stderr);                                   \
			failed++;                                              \
		}                                                              \
	} while (0)
	char name[64];
	int failed = 0;

	scratch_new(&d);

	/* (1) a log with record f cut out whole: strict -EBADMSG, salvage
	 * must report the gap at f's offset (length 0, expect_seq f) */
	make_log8(d.fd, g_fsid, 1, name, sizeof(name), off);
	orig = slurp(d.fd, name, &olen);
	{
		struct zf_buf b = { 0 };

		zf_buf_add(&b, orig, off[5]);
		zf_buf_add(&b, orig + off[6], olen - off[6]);
		put_file(d.fd, name, b.p, b.len);
		zf_buf_free(&b);
	}
	ck_assert_int_eq(zf_mlog_replay(d.fd, name, g_fsid, 0, on_rec, &s, &scan), -EBADMSG);
	sink_reset(&s);
	ck_assert_int_eq(zf_mlog_replay_salvage(d.fd, name, g_fsid, 0, on_rec, on_bad, &s, &scan),
			 0);
	ck_assert_uint_eq(s.n, 7);
	EXPECT_REPORT(s.nbad >= 1, "log gap (seq 6 missing at offset %llu): not reported",
		      (unsigned long long)off[5]);
	EXPECT_REPORT(s.nbad == 0 || (s.b[0].off == off[5] && s.b[0].expect == 6),
		  "log gap reported at %llu, expect_seq %llu", (unsigned long long)s.b[0].off,
		  (unsigned long long)s.b[0].expect);

	/* (2) a log ending in a stale copy of an earlier frame: strict
	 * -EBADMSG ("sequence"), salvage drops it silently as a torn tail */
	{
		struct zf_buf b = { 0 };

		zf_buf_add(&b, orig, olen);
		zf_buf_add(&b, orig + off[1], off[2] - off[1]);
		put_file(d.fd, name, b.p, b.len);
		zf_buf_free(&b);
	}
	ck_assert_int_eq(zf_mlog_replay(d.fd, name, g_fsid, 0, on_rec, &s, &scan), -EBADMSG);
	sink_reset(&s);
	ck_assert_int_eq(zf_mlog_replay_salvage(d.fd, name, g_fsid, 0, on_rec, on_bad, &s, &scan),
			 0);
	ck_assert_uint_eq(s.n, 8);
	EXPECT_REPORT(s.nbad == 1, "stale frame at the tail (offset %llu): %zu reports, "
		      "scan.dropped %llu", (unsigned long long)olen, s.nbad,
		      (unsigned long long)scan.dropped);
	free(orig);

	/* (3) a checkpoint with record 3 cut out whole */
	make_ckpt(d.fd, g_fsid, 0x99, 6);
	zf_ckpt_name(0x99, name, sizeof(name));
	orig = slurp(d.fd, name, &olen);
	coff[0] = ZF_CKPT_HDR_SIZE;
	for (k = 0; k < 6; k++)
		coff[k + 1] = coff[k] + FSZ(ck_lens[k]);
	{
		struct zf_buf b = { 0 };

		zf_buf_add(&b, orig, coff[2]);
		zf_buf_add(&b, orig + coff[3], olen - coff[3]);
		put_file(d.fd, name, b.p, b.len);
		zf_buf_free(&b);
	}
	ck_assert_int_eq(zf_ckpt_load(d.fd, name, g_fsid, on_rec, &s, &seq), -EBADMSG);
	sink_reset(&s);
	ck_assert_int_eq(zf_ckpt_load_salvage(d.fd, name, g_fsid, on_rec, on_bad, &s, &seq), 0);
	ck_assert_uint_eq(s.n, 5);
	EXPECT_REPORT(s.nbad >= 1, "checkpoint gap (record 3 missing at offset %llu): not "
		      "reported", (unsigned long long)coff[2]);

	/* (4) a wrong END count and trailing bytes: both reported */
	{
		struct zf_buf b = { 0 };
		uint8_t cnt[8];

		zf_buf_add(&b, orig, coff[6]);
		zf_put64(cnt, 9);
		zf_frame_put(&b, ZF_REC_END, ZF_REC_F_TXN_END, 7, cnt, 8);
		zf_buf_add(&b, "junk!", 5);
		put_file(d.fd, name, b.p, b.len);
		zf_buf_free(&b);
	}
	ck_assert_int_eq(zf_ckpt_load(d.fd, name, g_fsid, on_rec, &s, &seq), -EBADMSG);
	sink_reset(&s);
	ck_assert_int_eq(zf_ckpt_load_salvage(d.fd, name, g_fsid, on_rec, on_bad, &s, &seq), 0);
	ck_assert_uint_eq(s.n, 6);
	EXPECT_REPORT(s.nbad == 2, "wrong END count and trailing bytes: %zu reports", s.nbad);
	free(orig);
	sink_reset(&s);
	scratch_done(&d);
	ck_assert_msg(failed == 0, "%d salvage report(s) missing (see stderr)", failed);
#undef EXPECT_REPORT
}
END_TEST

/*
 * Files larger than the 32 MiB step at which a load gives parsed pages
 * back (map_release): every payload still reads right after the release.
 */
START_TEST(large_files_load_whole)
{
	const uint32_t len = 1u << 20, n = 40;
	struct zf_ckpt_writer *w;
	struct zf_mlog_scan scan;
	struct zf_mlog *log;
	struct sink s = { 0 };
	struct scratch d;
	char name[64];
	uint64_t seq;
	uint32_t i;

	scratch_new(&d);
	ck_assert_int_eq(zf_ckpt_writer_new(d.fd, g_fsid, 3, &w), 0);
	for (i = 0; i < n; i++)
		ck_assert_int_eq(zf_ckpt_writer_add(w, ZF_REC_SC, pl(7000 + i, len), len), 0);
	ck_assert_int_eq(zf_ckpt_writer_finish(w), 0);
	zf_ckpt_name(3, name, sizeof(name));
	ck_assert_uint_gt(file_size(d.fd, name), 33u << 20);
	s.keep_hash_only = 1;
	ck_assert_int_eq(zf_ckpt_load(d.fd, name, g_fsid, on_rec, &s, &seq), 0);
	ck_assert_uint_eq(s.n, n);
	for (i = 0; i < n; i++) {
		ck_assert_uint_eq(s.v[i].seq, i + 1);
		ck_assert_uint_eq(s.v[i].hash, XXH3_64bits(pl(7000 + i, len), len));
	}
	sink_reset(&s);

	ck_assert_int_eq(zf_mlog_create(d.fd, g_fsid, 1, &log), 0);
	zf_mlog_name(1, name, sizeof(name));
	for (i = 0; i < n; i++) {
		zf_mlog_add(log, ZF_REC_SC, pl(8000 + i, len), len);
		if (i % 3 == 2 || i == n - 1) {
			zf_mlog_txn_end(log);
			ck_assert_int_eq(zf_mlog_commit(log), 0);
		}
	}
	zf_mlog_close(log);
	s.keep_hash_only = 1;
	ck_assert_int_eq(zf_mlog_replay(d.fd, name, g_fsid, 0, on_rec, &s, &scan), 0);
	ck_assert_uint_eq(s.n, n);
	for (i = 0; i < n; i++) {
		ck_assert_uint_eq(s.v[i].seq, i + 1);
		ck_assert_uint_eq(s.v[i].hash, XXH3_64bits(pl(8000 + i, len), len));
	}
	ck_assert_uint_eq(scan.dropped, 0);
	sink_reset(&s);
	scratch_done(&d);
}
END_TEST

/* ------------------------------------------------------------ the durable mark */

static void synced_expect(int dirfd, const uint8_t fsid[16], uint64_t seq, uint64_t gen)
{
	uint64_t s = 999, g = 999;

	ck_assert_int_eq(zf_synced_read(dirfd, fsid, &s, &g), 0);
	ck_assert_msg(s == seq && g == gen, "mark seq %llu gen %llu, expected %llu %llu",
		      (unsigned long long)s, (unsigned long long)g, (unsigned long long)seq,
		      (unsigned long long)gen);
}

START_TEST(synced_mark_slots)
{
	struct scratch d, d2;
	uint8_t *file, slot1_gen1[ZF_SYNCED_SLOT];
	size_t flen;

	scratch_new(&d);
	/* no file: no mark */
	synced_expect(d.fd, g_fsid, 0, 0);

	ck_assert_int_eq(zf_synced_write(d.fd, g_fsid, 10, 1), 0);
	synced_expect(d.fd, g_fsid, 10, 1);
	file = slurp(d.fd, ZF_SYNCED_NAME, &flen);
	ck_assert_uint_eq(flen, 2 * ZF_SYNCED_SLOT);
	memcpy(slot1_gen1, file + ZF_SYNCED_SLOT, ZF_SYNCED_SLOT);
	free(file);
	ck_assert_int_eq(zf_synced_write(d.fd, g_fsid, 20, 2), 0);
	synced_expect(d.fd, g_fsid, 20, 2);
	ck_assert_int_eq(zf_synced_write(d.fd, g_fsid, 30, 3), 0);
	synced_expect(d.fd, g_fsid, 30, 3);

	/* the bytes of docs/FORMAT.md: gen 2 in slot 0, gen 3 in slot 1 */
	file = slurp(d.fd, ZF_SYNCED_NAME, &flen);
	ck_assert_uint_eq(flen, 2 * ZF_SYNCED_SLOT);
	{
		const uint8_t *h0 = file, *h1 = file + ZF_SYNCED_SLOT;

		ck_assert(memcmp(h0, "ZFSYNC01", 8) == 0);
		ck_assert_uint_eq(zf_get32(h0 + 8), 1);
		ck_assert_uint_eq(zf_get32(h0 + 12), 0);
		ck_assert(memcmp(h0 + 16, g_fsid, 16) == 0);
		ck_assert_uint_eq(zf_get64(h0 + 32), 20);
		ck_assert_uint_eq(zf_get64(h0 + 40), 2);
		ck_assert_uint_eq(zf_get64(h0 + 48), 0);
		ck_assert_uint_eq(zf_get64(h0 + 56), XXH3_64bits(h0, 56));
		ck_assert_uint_eq(zf_get64(h1 + 32), 30);
		ck_assert_uint_eq(zf_get64(h1 + 40), 3);
		ck_assert_uint_eq(zf_get64(h1 + 56), XXH3_64bits(h1, 56));
	}

	/* the newest slot (3 & 1 = 1) damaged anywhere: the older one */
	{
		size_t i;

		for (i = 0; i < ZF_SYNCED_SLOT; i++) {
			xor_byte(d.fd, ZF_SYNCED_NAME, ZF_SYNCED_SLOT + i, 0x10);
			synced_expect(d.fd, g_fsid, 20, 2);
			xor_byte(d.fd, ZF_SYNCED_NAME, ZF_SYNCED_SLOT + i, 0x10);
		}
	}
	/* torn: the first half of gen 3 over the old gen 1 */
	{
		uint8_t torn[ZF_SYNCED_SLOT];

		memcpy(torn, file + ZF_SYNCED_SLOT, 32);
		memcpy(torn + 32, slot1_gen1 + 32, 32);
		put_file(d.fd, ZF_SYNCED_NAME, file, ZF_SYNCED_SLOT);
		append_bytes(d.fd, ZF_SYNCED_NAME, torn, sizeof(torn));
		synced_expect(d.fd, g_fsid, 20, 2);
		put_file(d.fd, ZF_SYNCED_NAME, file, flen);
	}
	/* the older slot damaged: the newest still wins */
	xor_byte(d.fd, ZF_SYNCED_NAME, 35, 0x01);
	synced_expect(d.fd, g_fsid, 30, 3);
	/* both damaged: no mark, no error */
	xor_byte(d.fd, ZF_SYNCED_NAME, ZF_SYNCED_SLOT + 60, 0x01);
	synced_expect(d.fd, g_fsid, 0, 0);
	put_file(d.fd, ZF_SYNCED_NAME, file, flen);
	synced_expect(d.fd, g_fsid, 30, 3);

	/* a slot in the wrong place (gen 3 copied to slot 0) does not count */
	{
		uint8_t two[2 * ZF_SYNCED_SLOT];

		memcpy(two, file + ZF_SYNCED_SLOT, ZF_SYNCED_SLOT);
		memcpy(two + ZF_SYNCED_SLOT, file + ZF_SYNCED_SLOT, ZF_SYNCED_SLOT);
		two[ZF_SYNCED_SLOT + 3] ^= 1;
		put_file(d.fd, ZF_SYNCED_NAME, two, sizeof(two));
		synced_expect(d.fd, g_fsid, 0, 0);
	}

	/* shorter than one slot: no mark, no error; slot 0 whole, slot 1 cut */
	put_file(d.fd, ZF_SYNCED_NAME, file, 40);
	synced_expect(d.fd, g_fsid, 0, 0);
	put_file(d.fd, ZF_SYNCED_NAME, file, 0);
	synced_expect(d.fd, g_fsid, 0, 0);
	put_file(d.fd, ZF_SYNCED_NAME, file, 100);
	synced_expect(d.fd, g_fsid, 20, 2);
	free(file);

	/* another filesystem's mark is ignored, slot by slot */
	scratch_new(&d2);
	ck_assert_int_eq(zf_synced_write(d2.fd, g_other, 70, 1), 0);
	synced_expect(d2.fd, g_fsid, 0, 0);
	synced_expect(d2.fd, g_other, 70, 1);
	ck_assert_int_eq(zf_synced_write(d2.fd, g_fsid, 50, 4), 0);
	synced_expect(d2.fd, g_fsid, 50, 4);
	synced_expect(d2.fd, g_other, 70, 1);
	/* the first write of a fresh file may be to slot 0 */
	scratch_done(&d2);
	scratch_new(&d2);
	ck_assert_int_eq(zf_synced_write(d2.fd, g_fsid, 8, 6), 0);
	ck_assert_uint_eq(file_size(d2.fd, ZF_SYNCED_NAME), ZF_SYNCED_SLOT);
	synced_expect(d2.fd, g_fsid, 8, 6);
	scratch_done(&d2);
	scratch_done(&d);
}
END_TEST

/* ------------------------------------------------------------ a full disk */

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

/* a tmpfs of 1 MiB on <scratch>/t; returns its fd, or -1 (skip) */
static int mount_small(struct scratch *d, char *mnt, size_t mnt_len)
{
	int fd;

	snprintf(mnt, mnt_len, "%s/t", d->path);
	ck_assert_int_eq(mkdir(mnt, 0700), 0);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=1m") < 0) {
		fprintf(stderr, "check_mlog: SKIP commit on a full disk: cannot mount a tmpfs "
				"on '%s' (%s)\n", mnt, strerror(errno));
		return -1;
	}
	fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	return fd;
}

START_TEST(mlog_commit_enospc_keeps_file_and_pending)
{
	static const uint32_t l1[] = { 100, 10 }, l2[] = { 5000, 6000, 7000 };
	const uint8_t E = ZF_REC_F_TXN_END;
	struct zf_mlog_scan scan;
	struct sink s = { 0 };
	struct scratch d;
	struct zf_mlog *log;
	char mnt[300], name[64];
	uint8_t *before, *after;
	size_t blen, alen, pend;
	uint64_t size;
	int mfd, try;

	scratch_new(&d);
	mfd = mount_small(&d, mnt, sizeof(mnt));
	if (mfd < 0) {
		scratch_done(&d);
		return;
	}
	zf_mlog_name(1, name, sizeof(name));
	ck_assert_int_eq(zf_mlog_create(mfd, g_fsid, 1, &log), 0);
	add_txn(log, 2, l1, 10);
	ck_assert_int_eq(zf_mlog_commit(log), 0);
	size = zf_mlog_size(log);
	before = slurp(mfd, name, &blen);

	/* a commit larger than the room left in the file's last page */
	fill_disk(mfd, "filler");
	add_txn(log, 3, l2, 20);
	zf_mlog_add_early(log, ZF_REC_SC, pl(30, 3000), 3000);
	zf_mlog_add(log, ZF_REC_INODE, pl(40, 10), 10); /* open */
	pend = zf_mlog_pending(log);
	ck_assert_uint_eq(pend, FSZ(5000) + FSZ(6000) + FSZ(7000) + FSZ(3000));
	for (try = 0; try < 2; try++) {
		ck_assert_int_eq(zf_mlog_commit(log), -ENOSPC);
		/* the file exactly as before, the records still pending */
		after = slurp(mfd, name, &alen);
		ck_assert_uint_eq(alen, blen);
		ck_assert(memcmp(before, after, blen) == 0);
		free(after);
		ck_assert_uint_eq(zf_mlog_size(log), size);
		ck_assert_uint_eq(zf_mlog_next_seq(log), 3);
		ck_assert_uint_eq(zf_mlog_pending(log), pend);
	}
	/* a new log cannot be created either, and leaves nothing behind */
	{
		struct zf_mlog *log2 = NULL;

		ck_assert_int_eq(zf_mlog_create(mfd, g_fsid, 100, &log2), -ENOSPC);
		ck_assert(!exists(mfd, "log.0000000000000064"));
		ck_assert(!exists(mfd, "log.0000000000000064.tmp"));
	}

	/* room again: the same records are written, after the old ones */
	ck_assert_int_eq(unlinkat(mfd, "filler", 0), 0);
	zf_mlog_txn_end(log); /* the open record ends its transaction */
	ck_assert_int_eq(zf_mlog_commit(log), 0);
	ck_assert_uint_eq(zf_mlog_pending(log), 0);
	ck_assert_uint_eq(zf_mlog_next_seq(log), 8);
	zf_mlog_close(log);
	ck_assert_int_eq(zf_mlog_replay(mfd, name, g_fsid, 0, on_rec, &s, &scan), 0);
	ck_assert_uint_eq(s.n, 7);
	check_rec(&s, 0, ZF_REC_INODE, 0, 1, 10, 100);
	check_rec(&s, 1, ZF_REC_INODE + 1, E, 2, 11, 10);
	check_rec(&s, 2, ZF_REC_SC, E, 3, 30, 3000);
	ck_assert_uint_eq(s.v[2].off, size);
	check_rec(&s, 3, ZF_REC_INODE, 0, 4, 20, 5000);
	check_rec(&s, 5, ZF_REC_INODE + 2, E, 6, 22, 7000);
	check_rec(&s, 6, ZF_REC_INODE, E, 7, 40, 10);
	ck_assert_uint_eq(scan.dropped, 0);
	ck_assert_uint_eq(scan.end, file_size(mfd, name));
	sink_reset(&s);
	free(before);
	close(mfd);
	ck_assert_int_eq(umount2(mnt, MNT_DETACH), 0);
	scratch_done(&d);
}
END_TEST

START_TEST(ckpt_finish_enospc_leaves_nothing)
{
	struct zf_ckpt_writer *w;
	struct sink s = { 0 };
	struct scratch d;
	char mnt[300];
	uint64_t seq;
	int mfd;

	scratch_new(&d);
	mfd = mount_small(&d, mnt, sizeof(mnt));
	if (mfd < 0) {
		scratch_done(&d);
		return;
	}
	fill_disk(mfd, "filler");
	ck_assert_int_eq(zf_ckpt_writer_new(mfd, g_fsid, 9, &w), 0);
	ck_assert_int_eq(zf_ckpt_writer_add(w, ZF_REC_STATE, pl(1, 32), 32), 0);
	ck_assert_int_eq(zf_ckpt_writer_add(w, ZF_REC_INODE, pl(2, 9000), 9000), 0);
	ck_assert_int_eq(zf_ckpt_writer_finish(w), -ENOSPC);
	ck_assert(!exists(mfd, "ckpt.0000000000000009"));
	ck_assert(!exists(mfd, "ckpt.0000000000000009.tmp"));
	/* and with room, the same checkpoint is published */
	ck_assert_int_eq(unlinkat(mfd, "filler", 0), 0);
	ck_assert_int_eq(zf_ckpt_writer_new(mfd, g_fsid, 9, &w), 0);
	ck_assert_int_eq(zf_ckpt_writer_add(w, ZF_REC_STATE, pl(1, 32), 32), 0);
	ck_assert_int_eq(zf_ckpt_writer_add(w, ZF_REC_INODE, pl(2, 9000), 9000), 0);
	ck_assert_int_eq(zf_ckpt_writer_finish(w), 0);
	ck_assert_int_eq(zf_ckpt_load(mfd, "ckpt.0000000000000009", g_fsid, on_rec, &s, &seq), 0);
	ck_assert_uint_eq(s.n, 2);
	check_rec(&s, 1, ZF_REC_INODE, 0, 2, 2, 9000);
	sink_reset(&s);
	close(mfd);
	ck_assert_int_eq(umount2(mnt, MNT_DETACH), 0);
	scratch_done(&d);
}
END_TEST

/* ------------------------------------------------------------ main */

static Suite *mlog_suite(void)
{
	Suite *s = suite_create("mlog");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, getenv("ZF_SANITIZED") ? 300 : 60);
	tcase_add_test(tc, frame_roundtrip);
	tcase_add_test(tc, frame_bitflips_rejected);
	tcase_add_test(tc, frame_truncated_is_too_short);
	tcase_add_test(tc, mlog_commit_and_replay);
	tcase_add_test(tc, mlog_torn_tail_dropped_and_reopened);
	tcase_add_test(tc, mlog_damage_before_tail_is_ebadmsg);
	tcase_add_test(tc, mlog_salvage_skips_damage);
	tcase_add_test(tc, mlog_other_filesystem_refused);
	tcase_add_test(tc, ckpt_roundtrip);
	tcase_add_test(tc, ckpt_abort_leaves_nothing);
	tcase_add_test(tc, ckpt_damage_refused_and_salvaged);
	tcase_add_test(tc, ckpt_other_filesystem_refused);
	tcase_add_test(tc, salvage_reports_what_strict_refuses);
	tcase_add_test(tc, large_files_load_whole);
	tcase_add_test(tc, synced_mark_slots);
	tcase_add_test(tc, mlog_commit_enospc_keeps_file_and_pending);
	tcase_add_test(tc, ckpt_finish_enospc_leaves_nothing);
	suite_add_tcase(s, tc);
	return s;
}

static int umount_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	if (flag == FTW_DP)
		umount2(path, MNT_DETACH); /* fails harmlessly on non-mount points */
	return 0;
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	char cmd[512];
	SRunner *sr;
	int failed;

	if (!tmp || !*tmp)
		tmp = "/tmp";
	snprintf(g_root, sizeof(g_root), "%s/zf-check-mlog-XXXXXX", tmp);
	if (!mkdtemp(g_root)) {
		fprintf(stderr, "check_mlog: cannot create '%s': %s\n", g_root, strerror(errno));
		return EXIT_FAILURE;
	}
	/* the damage below is logged by design: keep the output readable */
	zf_log_set_level(ZF_LOG_NONE);
	sr = srunner_create(mlog_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	/* what a failed test left: its tmpfs first, then the files */
	nftw(g_root, umount_one, 16, FTW_DEPTH | FTW_PHYS);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_root);
	if (system(cmd) != 0)
		fprintf(stderr, "check_mlog: cannot remove '%s'\n", g_root);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
