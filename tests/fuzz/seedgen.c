/*
 * tests/fuzz/seedgen.c - a real dev-dir, driven through the storage core
 * without FUSE (as tests/unit/check_fs.c does), cut into seed corpora
 *
 *	seedgen <dev-dir> <out-dir>
 *
 * formats dev-dir (small chunks and segments, so that the files stay
 * small and hold many of each kind of record), sets the chunking secret to
 * fz_secret (tests/fuzz/fuzz.h) so that the fuzz targets can re-hash its
 * chunks, and works on it: directories, files of text, random bytes and
 * holes, symlinks, hard links, xattrs, renames, truncation, copy_range,
 * deletions, a checkpoint, gc. At three points it copies the metadata
 * into out-dir/<target>/:
 *	mlog, frame	log files
 *	ckpt		checkpoints
 *	records		a checkpoint followed by the log after it
 * and at the end the segments (segment) and each of their super-chunks
 * (sc), plus inputs for sc_pack built from the same kinds of data.
 */
#include "config.h"

#include <dirent.h>
#include <xxhash.h>

#include "common/endian.h"
#include "storage/fs.h"
#include "storage/meta_format.h"
#include "storage/seg_format.h"
#include "tests/fuzz/fuzz.h"

static const char *out;

static void die(const char *what, int r)
{
	fprintf(stderr, "seedgen: %s: %s\n", what, strerror(r < 0 ? -r : r));
	exit(1);
}

#define T(call)                                                                \
	do {                                                                   \
		long long r_ = (long long)(call);                              \
		if (r_ < 0)                                                    \
			die(#call, (int)r_);                                   \
	} while (0)

static void *slurp(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *p = NULL;
	size_t len = 0, cap = 0, n;

	if (!f)
		die(path, errno);
	do {
		if (cap - len < 65536)
			p = realloc(p, cap = cap * 2 + 65536);
		n = fread(p + len, 1, cap - len, f);
		len += n;
	} while (n);
	fclose(f);
	*ret_len = len;
	return p;
}

static void put(const char *target, const char *name, const void *p, size_t len)
{
	char path[4200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", out, target);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", out, target, name);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, len, f) != len || fclose(f) != 0)
		die(path, errno);
}

/* the metadata of dev now, under names tagged with stage */
static void snap_meta(const char *dev, const char *stage)
{
	char meta[4200], path[4300], name[128], ck[64] = "";
	uint8_t *ckp = NULL;
	size_t cklen = 0;
	struct dirent *e;
	DIR *d;

	snprintf(meta, sizeof(meta), "%s/meta", dev);
	d = opendir(meta);
	if (!d)
		die(meta, errno);
	/* the newest checkpoint first: records pairs it with its log */
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, "ckpt.", 5) && !strstr(e->d_name, ".tmp") &&
		    strcmp(e->d_name, ck) > 0)
			snprintf(ck, sizeof(ck), "%s", e->d_name);
	if (ck[0]) {
		snprintf(path, sizeof(path), "%s/%s", meta, ck);
		ckp = slurp(path, &cklen);
		snprintf(name, sizeof(name), "%s-%s", stage, ck);
		put("ckpt", name, ckp, cklen);
	}
	/* the durable mark, for fuzz_mlog's zf_synced_read */
	snprintf(path, sizeof(path), "%s/%s", meta, ZF_SYNCED_NAME);
	if (access(path, F_OK) == 0) {
		size_t len;
		uint8_t *p = slurp(path, &len);

		snprintf(name, sizeof(name), "%s-%s", stage, ZF_SYNCED_NAME);
		put("mlog", name, p, len);
		free(p);
	}
	rewinddir(d);
	while ((e = readdir(d))) {
		uint8_t *p, *both;
		size_t len;

		if (strncmp(e->d_name, "log.", 4) || strstr(e->d_name, ".tmp"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", meta, e->d_name);
		p = slurp(path, &len);
		snprintf(name, sizeof(name), "%s-%s", stage, e->d_name);
		put("mlog", name, p, len);
		put("frame", name, p, len);
		both = malloc(cklen + len);
		if (cklen)
			memcpy(both, ckp, cklen);
		memcpy(both + cklen, p, len);
		put("records", name, both, cklen + len);
		/* the same opened as fsck does (byte 12: salvage, check, walk) */
		if (cklen + len > 12) {
			both[12] = 7;
			snprintf(name, sizeof(name), "%s-%s-fsck", stage, e->d_name);
			put("records", name, both, cklen + len);
		}
		free(both);
		free(p);
	}
	closedir(d);
	free(ckp);
}

/* every segment, and every super-chunk in it */
static void snap_segs(const char *dev, const char *stage)
{
	char segd[4200], path[4300], name[128];
	struct dirent *e;
	DIR *d;

	snprintf(segd, sizeof(segd), "%s/seg", dev);
	d = opendir(segd);
	if (!d)
		die(segd, errno);
	while ((e = readdir(d))) {
		uint8_t *p;
		size_t len, off;
		unsigned int i;

		if (!strstr(e->d_name, ".zseg"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", segd, e->d_name);
		p = slurp(path, &len);
		snprintf(name, sizeof(name), "%s-%s", stage, e->d_name);
		put("segment", name, p, len);
		for (off = ZF_SEG_HDR_SIZE, i = 0; off + ZF_SC_HDR_SIZE <= len; i++) {
			size_t disk;

			if (zf_get32(p + off) != ZF_SC_MAGIC)
				break;
			disk = ZF_SC_HDR_SIZE +
			       (size_t)zf_get32(p + off + ZF_SC_NCHUNKS_OFF) * ZF_SC_ENT_SIZE +
			       zf_get32(p + off + ZF_SC_STORED_LEN_OFF);
			if (disk > len - off)
				break;
			snprintf(name, sizeof(name), "%s-%.16s-%u", stage, e->d_name, i);
			put("sc", name, p + off, disk);
			off += disk;
		}
		free(p);
	}
	closedir(d);
}

static void fill_text(uint8_t *p, size_t n, unsigned int seed)
{
	static const char *const words[] = { "zerofs ", "segment ", "chunk ", "log ",
					     "checkpoint\n", "super-chunk ", "zstd ", "xxhash " };
	size_t i = 0;

	while (i < n) {
		const char *w = words[(seed = seed * 1103515245 + 12345) >> 16 & 7];
		size_t l = strlen(w);

		if (l > n - i)
			l = n - i;
		memcpy(p + i, w, l);
		i += l;
	}
}

static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
	size_t i;

	for (i = 0; i < n; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		p[i] = (uint8_t)(seed >> 56);
	}
}

/* sc_pack inputs: level, chunks-1, damage flags, offset, length, xor, lengths, raw */
static void sc_pack_seeds(void)
{
	static const uint8_t hdr[][7] = {
		{ 8, 0, 0, 0, 0, 0, 0 },     { 8, 3, 1, 100, 0, 4, 0xff },
		{ 3, 7, 7, 60, 0, 2, 0x01 }, { 0, 15, 15, 200, 1, 9, 0x80 },
		{ 10, 2, 5, 40, 0, 1, 0x10 },
	};
	uint8_t buf[7 + 16 + 4096];
	unsigned int i;

	for (i = 0; i < sizeof(hdr) / sizeof(hdr[0]); i++) {
		unsigned int n = 1 + hdr[i][1] % 16;
		size_t raw = 512 + i * 700;
		char name[32];

		memcpy(buf, hdr[i], 7);
		fill_random(buf + 7, n, i);
		if (i & 1)
			fill_random(buf + 7 + n, raw, 99 + i);
		else
			fill_text(buf + 7 + n, raw, i);
		snprintf(name, sizeof(name), "seed-%u", i);
		put("sc_pack", name, buf, 7 + n + raw);
	}
}

static uint64_t mkfile(struct zf_fs *fs, uint64_t dir, const char *name, int kind, size_t len,
		       unsigned int seed)
{
	struct zf_attr a;
	uint8_t *p = malloc(len ? len : 1);

	T(zf_fs_mknod(fs, dir, name, S_IFREG | 0644, 0, 1000, 1000, &a));
	if (kind == 0)
		fill_text(p, len, seed);
	else if (kind == 1)
		fill_random(p, len, seed);
	else
		memset(p, 0, len);
	if (len)
		T(zf_fs_write(fs, a.ino, p, len, kind == 2 ? 8192 : 0));
	T(zf_fs_fsync(fs, a.ino));
	free(p);
	return a.ino;
}

int main(int argc, char **argv)
{
	struct zf_mkfs_opts mo = { .chunk_min = 512, .chunk_avg = 1024, .chunk_max = 4096,
				   .seg_limit = 48 << 10 };
	struct zf_open_opts oo = { .threads = 1 };
	struct zf_gc_opts go = { .max_waste = 1e-9 };
	struct zf_gc_report gr;
	struct zf_attr a, d, e;
	char sbpath[4200];
	uint8_t *sb;
	size_t sblen;
	uint64_t f1, f2, f3;
	struct zf_fs *fs;
	FILE *f;
	int i;

	if (argc != 3) {
		fprintf(stderr, "usage: seedgen <dev-dir> <out-dir>\n");
		return 2;
	}
	out = argv[2];
	zf_log_set_level(ZF_LOG_WARN);
	mkdir(out, 0755);
	T(zf_fs_mkfs(argv[1], &mo));

	/* the fuzz targets' chunking secret */
	snprintf(sbpath, sizeof(sbpath), "%s/superblock", argv[1]);
	sb = slurp(sbpath, &sblen);
	if (sblen != ZF_SB_SIZE)
		die("superblock size", EINVAL);
	memcpy(sb + 32, fz_secret, 32);
	zf_put64(sb + ZF_SB_CSUM_OFF, XXH3_64bits(sb, ZF_SB_CSUM_OFF));
	f = fopen(sbpath, "wb");
	if (!f || fwrite(sb, 1, sblen, f) != sblen || fclose(f) != 0)
		die(sbpath, errno);
	free(sb);

	/* the superblock, as it is and with its checksum left to fuzz_superblock */
	sb = slurp(sbpath, &sblen);
	put("superblock", "real", sb, sblen);
	memset(sb + ZF_SB_CSUM_OFF, 0, 8);
	put("superblock", "unsealed", sb, sblen);
	zf_put32(sb + 64, 64);
	zf_put32(sb + 68, 128);
	zf_put32(sb + 72, 16 << 20);
	zf_put64(sb + 80, 1);
	put("superblock", "tiny-chunks-tiny-segments", sb, sblen);
	free(sb);

	T(zf_fs_open(argv[1], &oo, &fs));
	T(zf_fs_mkdir(fs, ZF_ROOT_INO, "dir", 0755, 1000, 1000, &d));
	T(zf_fs_mkdir(fs, d.ino, "sub", 0700, 0, 0, &e));
	f1 = mkfile(fs, ZF_ROOT_INO, "text", 0, 9000, 1);
	f2 = mkfile(fs, d.ino, "random", 1, 6000, 2);
	f3 = mkfile(fs, e.ino, "zeros", 2, 3000, 3);
	mkfile(fs, ZF_ROOT_INO, "empty", 0, 0, 4);
	T(zf_fs_symlink(fs, ZF_ROOT_INO, "link", "dir/random", 0, 0, &a));
	T(zf_fs_link(fs, f1, d.ino, "hard", &a));
	T(zf_fs_setxattr(fs, f1, "user.a", "value", 5, 0));
	T(zf_fs_setxattr(fs, d.ino, "user.dir", "x", 1, 0));
	T(zf_fs_mknod(fs, ZF_ROOT_INO, "fifo", S_IFIFO | 0600, 0, 0, 0, &a));
	T(zf_fs_sync(fs));
	snap_meta(argv[1], "a");

	T(zf_fs_checkpoint(fs));
	T(zf_fs_rename(fs, ZF_ROOT_INO, "text", d.ino, "moved", 0));
	T(zf_fs_copy_range(fs, f1, 0, f3, 0, 4096));
	a.size = 1000;
	T(zf_fs_setattr(fs, f2, ZF_SET_SIZE, &a, &a));
	T(zf_fs_removexattr(fs, f1, "user.a"));
	T(zf_fs_unlink(fs, ZF_ROOT_INO, "link"));
	T(zf_fs_fallocate(fs, f1, 3 /* PUNCH_HOLE | KEEP_SIZE */, 1024, 2048));
	for (i = 0; i < 6; i++) {
		char name[16];

		snprintf(name, sizeof(name), "f%d", i);
		mkfile(fs, e.ino, name, i & 1, 4000 + 1500 * i, 10 + i);
	}
	T(zf_fs_sync(fs));
	snap_meta(argv[1], "b");
	snap_segs(argv[1], "b");

	for (i = 0; i < 6; i += 2) {
		char name[16];

		snprintf(name, sizeof(name), "f%d", i);
		T(zf_fs_unlink(fs, e.ino, name));
	}
	T(zf_fs_unlink(fs, d.ino, "random"));
	T(zf_fs_sync(fs));
	T(zf_fs_gc(fs, &go, &gr));
	T(zf_fs_sync(fs));
	snap_meta(argv[1], "c");
	T(zf_fs_close(fs));
	snap_meta(argv[1], "d");
	snap_segs(argv[1], "d");
	sc_pack_seeds();
	return 0;
}
