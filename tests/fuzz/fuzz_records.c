/*
 * tests/fuzz/fuzz_records.c - the record payload decoders of replay
 * (apply_inode, apply_dirent_*, apply_extents, apply_xattr, apply_sc,
 * apply_seal, apply_state, apply_chunk_*, the salvage notes; storage/fs.c)
 *
 * They are static, so the target reaches them the way a mount and fsck do:
 * a dev-dir made once by zf_fs_mkfs (its meta/ emptied), into whose meta/
 * each input puts a checkpoint and/or a log, then zf_fs_open read-only.
 *
 * Input: a checkpoint file, optionally followed by a log file (what
 * seedgen.c writes), or a log file alone. Framing is not what this target
 * is about (fuzz_mlog and fuzz_ckpt are): file headers are rewritten for
 * this dev-dir, and every frame gets its seq and checksum recomputed, the
 * length cut to what the input holds, a checkpoint's END its record count
 * -- except a frame whose reserved byte 6 is non-zero, kept as it is
 * (damage, for the salvage paths). Byte 12 of the first file header (flags,
 * 0 on disk) picks the mode: bit 0 salvage (as fsck opens), bit 1 then run
 * zf_fs_check on any tree (a loop of entries once ran its path walk out of
 * memory), bit 2 walk the tree (readdir, getattr, xattrs).
 */
#include "config.h"

#include <dirent.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "common/buf.h"
#include "common/endian.h"
#include "storage/fs.h"
#include "storage/meta_format.h"
#include "storage/mlog.h"
#include "tests/fuzz/fuzz.h"

static char dev[600];
static int metafd = -1;
static uint8_t fsid[16];

/* empty meta/ for the next input (whatever the open left there too) */
static void clear_meta(void)
{
	int fd = dup(metafd);
	struct dirent *e;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;

	if (!d)
		abort();
	rewinddir(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(metafd, e->d_name, 0);
	closedir(d);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct zf_mkfs_opts mo = { 0 };
	uint8_t sb[ZF_SB_SIZE];
	int fd;

	fz_quiet();
	snprintf(dev, sizeof(dev), "%s/dev", fz_scratch());
	if (zf_fs_mkfs(dev, &mo) < 0) {
		fprintf(stderr, "fuzz_records: cannot mkfs '%s'\n", dev);
		abort();
	}
	fd = openat(fz_dirfd, "dev/superblock", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || zf_pread_full(fd, sb, sizeof(sb), 0) != (ssize_t)sizeof(sb))
		abort();
	close(fd);
	memcpy(fsid, sb + 16, 16);
	metafd = openat(fz_dirfd, "dev/meta", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (metafd < 0)
		abort();
	/* meta/ holds only what each input puts there */
	clear_meta();
	return 0;
}

static void file_header(struct zf_buf *b, const char *magic, uint64_t seq)
{
	uint8_t *h = zf_buf_grow(b, 64);

	memset(h, 0, 64);
	memcpy(h, magic, 8);
	zf_put32(h + 8, 1);
	memcpy(h + 16, fsid, 16);
	zf_put64(h + 32, seq);
	zf_put64(h + 56, XXH3_64bits(h, 56));
}

/*
 * Frame q[0..n) again into out from seq on; stop after an END record when
 * ckpt. Returns the bytes of q consumed; *seq is the next seq.
 */
static size_t reframe(struct zf_buf *out, const uint8_t *q, size_t n, uint64_t *seq, int ckpt)
{
	size_t off = 0;

	while (n - off >= ZF_REC_HDR_SIZE) {
		const uint8_t *h = q + off;
		uint32_t len = zf_get32(h + 8);
		uint8_t type = h[4];
		uint8_t *o;

		if (len > n - off - ZF_REC_HDR_SIZE)
			len = n - off - ZF_REC_HDR_SIZE;
		o = zf_buf_grow(out, ZF_REC_HDR_SIZE + len);
		memcpy(o, h, ZF_REC_HDR_SIZE + len);
		if (h[6] == 0) {
			zf_put32(o, ZF_REC_MAGIC);
			zf_put16(o + 6, 0);
			zf_put32(o + 8, len);
			zf_put32(o + 12, 0);
			zf_put64(o + 16, *seq);
			if (ckpt && type == ZF_REC_END && len == 8)
				zf_put64(o + ZF_REC_HDR_SIZE, *seq - 1);
			zf_put64(o + 24, XXH3_64bits_withSeed(o + ZF_REC_HDR_SIZE, len,
							      XXH3_64bits(o, 24)));
		}
		(*seq)++;
		off += ZF_REC_HDR_SIZE + len;
		if (ckpt && type == ZF_REC_END)
			return off;
	}
	if (!ckpt) {
		/* a torn tail */
		zf_buf_add(out, q + off, n - off);
		off = n;
	}
	return off;
}

struct walk {
	struct zf_fs *fs;
	uint64_t todo[64];
	unsigned int n, seen;
};

static int walk_entry(void *ctx, const char *name, uint64_t ino, uint32_t mode, uint64_t next)
{
	struct walk *w = ctx;

	fz_check(strlen(name) > 0 && strlen(name) <= ZF_NAME_LEN);
	if (S_ISDIR(mode) && strcmp(name, ".") && strcmp(name, "..") && w->n < 64)
		w->todo[w->n++] = ino;
	return ++w->seen > 4096;
}

static void walk(struct zf_fs *fs)
{
	struct walk w = { .fs = fs, .todo = { ZF_ROOT_INO }, .n = 1 };
	unsigned int steps = 0;

	while (w.n && steps++ < 64 && w.seen <= 4096) {
		uint64_t ino = w.todo[--w.n];
		struct zf_attr a;
		char buf[512];

		if (zf_fs_getattr(fs, ino, &a) < 0)
			continue;
		zf_fs_listxattr(fs, ino, buf, sizeof(buf));
		zf_fs_getxattr(fs, ino, "user.a", buf, sizeof(buf));
		zf_fs_readdir(fs, ino, 0, walk_entry, &w);
	}
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zf_open_opts oo = { .readonly = 1, .threads = 1 };
	struct zf_buf ck = { 0 }, lg = { 0 };
	const uint8_t *q = data;
	size_t n = size, used;
	uint64_t ckpt_seq = 0, seq = 1;
	unsigned int mode = size > 12 ? data[12] : 0;
	char cname[64], lname[64];
	struct zf_fs *fs;
	int r;

	if (n >= 64 && !memcmp(q, ZF_CKPT_MAGIC, 8)) {
		/* a seq near the top would wrap the log's: keep it plausible */
		ckpt_seq = zf_get64(q + 32) & ((1ull << 40) - 1);
		q += 64;
		n -= 64;
		file_header(&ck, ZF_CKPT_MAGIC, ckpt_seq);
		seq = 1;
		used = reframe(&ck, q, n, &seq, 1);
		q += used;
		n -= used;
		zf_ckpt_name(ckpt_seq, cname, sizeof(cname));
		fz_write_file(metafd, cname, ck.p, ck.len, 0600);
	}
	if (n >= 64 && !memcmp(q, ZF_LOG_MAGIC, 8)) {
		q += 64;
		n -= 64;
	}
	seq = ckpt_seq + 1;
	zf_mlog_name(seq, lname, sizeof(lname));
	file_header(&lg, ZF_LOG_MAGIC, seq);
	reframe(&lg, q, n, &seq, 0);
	fz_write_file(metafd, lname, lg.p, lg.len, 0600);

	oo.salvage = mode & 1;
	r = zf_fs_open(dev, &oo, &fs);
	fz_check(r <= 0 && r > -4096);
	if (r == 0) {
		if ((mode & 3) == 3) {
			struct zf_check_report rep = { 0 };

			zf_fs_check(fs, &rep);
		}
		if (mode & 4)
			walk(fs);
		zf_fs_close(fs);
	}
	clear_meta();
	zf_buf_free(&ck);
	zf_buf_free(&lg);
	return 0;
}
