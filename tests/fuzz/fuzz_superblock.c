/*
 * tests/fuzz/fuzz_superblock.c - the superblock (sb_read, storage/fs.c) and
 * what a filesystem does with its values: chunk sizes, zstd level and
 * segment size limit, through a real open, write, sync and close
 *
 * The input is the superblock file, written per input into a scratch
 * dev-dir with empty meta/ and seg/. Its checksum (bytes 120..127) is
 * recomputed when those bytes are all zero, so that the values behind it
 * are reached; the seed of a real superblock keeps its own. Then
 * zf_fs_open (writable: a log and the root are created), a file written
 * across a few chunks, zf_fs_sync, zf_fs_close (a checkpoint), and a
 * read-only open of the result must see the file.
 */
#include "config.h"

#include <dirent.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "common/endian.h"
#include "storage/fs.h"
#include "storage/meta_format.h"
#include "tests/fuzz/fuzz.h"

static char dev[600];
static int devfd = -1;
static uint8_t file[96 << 10];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	size_t i;

	fz_quiet();
	snprintf(dev, sizeof(dev), "%s/dev", fz_scratch());
	if (mkdir(dev, 0700) < 0 || (devfd = open(dev, O_RDONLY | O_DIRECTORY)) < 0)
		abort();
	/* some text, some noise: compressible and incompressible chunks */
	for (i = 0; i < sizeof(file); i++)
		file[i] = i < sizeof(file) / 2 ? "zerofs "[i % 7] : (uint8_t)(i * 2654435761u >> 13);
	return 0;
}

static void clear_dir(const char *sub)
{
	int fd = openat(devfd, sub, O_RDONLY | O_DIRECTORY);
	struct dirent *e;
	DIR *d;

	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d)
		abort();
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(fd, e->d_name, 0);
	closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zf_open_opts ro = { .readonly = 1 }, rw = { .threads = 1 };
	uint8_t sb[ZF_SB_SIZE], buf[64];
	struct zf_attr a;
	struct zf_fs *fs;
	int r;

	if (size > 4096)
		return 0;
	if (size == ZF_SB_SIZE && !fz_le64(data + ZF_SB_CSUM_OFF)) {
		memcpy(sb, data, size);
		zf_put64(sb + ZF_SB_CSUM_OFF, XXH3_64bits(sb, ZF_SB_CSUM_OFF));
		data = sb;
	}
	clear_dir("meta");
	clear_dir("seg");
	mkdirat(devfd, "meta", 0700);
	mkdirat(devfd, "seg", 0700);
	fz_write_file(devfd, "superblock", data, size, 0600);

	r = zf_fs_open(dev, &rw, &fs);
	fz_check(r <= 0 && r > -4096);
	if (r < 0)
		return 0;
	r = zf_fs_mknod(fs, ZF_ROOT_INO, "f", S_IFREG | 0644, 0, 0, 0, &a);
	fz_check(r == 0);
	fz_check(zf_fs_write(fs, a.ino, file, sizeof(file), 0) == (ssize_t)sizeof(file));
	fz_check(zf_fs_sync(fs) == 0);
	fz_check(zf_fs_read(fs, a.ino, buf, sizeof(buf), sizeof(file) - sizeof(buf)) ==
		 (ssize_t)sizeof(buf));
	fz_check(!memcmp(buf, file + sizeof(file) - sizeof(buf), sizeof(buf)));
	fz_check(zf_fs_close(fs) == 0);

	/* what was written is there after a checkpoint and a reopen */
	r = zf_fs_open(dev, &ro, &fs);
	fz_check(r == 0);
	fz_check(zf_fs_lookup(fs, ZF_ROOT_INO, "f", &a) == 0 && a.size == sizeof(file));
	fz_check(zf_fs_read(fs, a.ino, buf, sizeof(buf), 1000) == (ssize_t)sizeof(buf));
	fz_check(!memcmp(buf, file + 1000, sizeof(buf)));
	zf_fs_close(fs);
	return 0;
}
