/*
 * tests/fuzz/fuzz.h - helpers shared by the libFuzzer targets
 *
 * Each target is one file tests/fuzz/fuzz_<name>.c defining
 * LLVMFuzzerTestOneInput; tests/fuzz/run.sh builds and runs them. A target
 * that needs files works in a scratch directory of its own process, under
 * $FUZZ_TMPDIR (run.sh points it into /dev/shm), created on first use and
 * removed at exit. Logging is off unless FUZZ_VERBOSE is set: a decoder
 * logs one line per rejected input, and that would be most of the time.
 *
 * Invariants the targets check beyond the sanitizers abort through
 * fz_check(), so that libFuzzer reports them as crashes with the input.
 */
#ifndef ZF_TESTS_FUZZ_FUZZ_H
#define ZF_TESTS_FUZZ_FUZZ_H

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/*
 * The chunking secret of tests/fuzz/seedgen.c's dev-dir: chunk ids are
 * keyed with it, so the targets that re-hash chunks must use the same one
 * for the seed corpus to get past the hash check.
 */
static const uint8_t fz_secret[32] = "zerofs fuzz secret, not a secret";

#define fz_check(cond)                                                         \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, \
				__LINE__, #cond);                              \
			abort();                                               \
		}                                                              \
	} while (0)

static char fz_dir[512];
static int fz_dirfd = -1;

static inline void fz_rm_dir(void)
{
	char cmd[600];

	if (!fz_dir[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", fz_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz: cannot remove '%s'\n", fz_dir);
	fz_dir[0] = 0;
}

/* quiet logging unless FUZZ_VERBOSE is set */
static inline void fz_quiet(void)
{
	zf_log_set_level(getenv("FUZZ_VERBOSE") ? ZF_LOG_DEBUG : ZF_LOG_NONE);
}

/* this process's scratch directory (created on first use); its fd in fz_dirfd */
static inline const char *fz_scratch(void)
{
	const char *base = getenv("FUZZ_TMPDIR");
	struct stat sb;

	if (fz_dir[0])
		return fz_dir;
	if (!base || !*base)
		base = stat("/dev/shm", &sb) == 0 ? "/dev/shm" : "/tmp";
	snprintf(fz_dir, sizeof(fz_dir), "%s/zf-fuzz-%ld-XXXXXX", base, (long)getpid());
	if (!mkdtemp(fz_dir)) {
		perror("fuzz: mkdtemp");
		abort();
	}
	fz_dirfd = open(fz_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fz_dirfd < 0) {
		perror("fuzz: open scratch dir");
		abort();
	}
	atexit(fz_rm_dir);
	return fz_dir;
}

/* (re)write file name in dirfd with exactly data[0..size) and mode */
static inline void fz_write_file(int dirfd, const char *name, const void *data, size_t size,
				 mode_t mode)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	if (fd < 0 || (size && zf_write_full(fd, data, size) < 0)) {
		perror("fuzz: write scratch file");
		abort();
	}
	if (fchmod(fd, mode) < 0) {
		perror("fuzz: chmod scratch file");
		abort();
	}
	close(fd);
}

/* read every byte of p[0..len) (ASan checks each is addressable) */
static inline void fz_touch(const uint8_t *p, size_t len)
{
	volatile uint8_t sink = 0;
	size_t i;

	for (i = 0; i < len; i++)
		sink ^= p[i];
	(void)sink;
}

/* little-endian readers for the targets' own input layouts */
static inline uint32_t fz_le32(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t fz_le64(const uint8_t *p)
{
	return fz_le32(p) | (uint64_t)fz_le32(p + 4) << 32;
}

#endif
