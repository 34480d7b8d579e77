/*
 * tools/zerofs.c - the zerofs command: parses arguments, calls the core,
 * prints, exits. The only place in the tree that exits the process.
 *
 * Exit codes: 0 success, 1 usage error / operation failed, 2 bad arguments;
 * fsck follows e2fsck: 0 clean, 1 corrected, 4 errors left, 8 operational.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "storage/fs.h"

#define FSCK_CLEAN 0
#define FSCK_ERRORS 4
#define FSCK_OPERATIONAL 8

static void usage(FILE *out)
{
	fprintf(out,
		"usage: zerofs <command> [options] <args>\n"
		"\n"
		"commands:\n"
		"  mkfs [--force] [--zstd-level N] <dev-dir>   format a dev-dir\n"
		"  fsck [--verify-data] [-q] <dev-dir>          check the store\n"
		"  stats <dev-dir>                              space, dedup and compression\n"
		"\n"
		"options: -h, --help    this text\n"
		"         -V, --version print the version\n");
}

static int parse_int(const char *s, long lo, long hi, long *ret)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *s == 0 || *end || v < lo || v > hi)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int cmd_mkfs(int argc, char **argv)
{
	static const struct option opts[] = { { "force", no_argument, NULL, 'f' },
					      { "zstd-level", required_argument, NULL, 'z' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	struct zf_mkfs_opts mo = { 0 };
	long level;
	int c, r;

	while ((c = getopt_long(argc, argv, "fz:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			mo.force = 1;
			break;
		case 'z':
			if (parse_int(optarg, 1, 19, &level) < 0) {
				fprintf(stderr, "zerofs mkfs: invalid zstd level '%s' (1..19)\n", optarg);
				return 2;
			}
			mo.zstd_level = level;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "zerofs mkfs: expected one dev-dir\n");
		return 2;
	}
	r = zf_fs_mkfs(argv[optind], &mo);
	if (r < 0) {
		if (r != -EEXIST && r != -ENOTEMPTY)
			fprintf(stderr, "zerofs mkfs: cannot format '%s': %s\n", argv[optind],
				strerror(-r));
		return 1;
	}
	printf("formatted '%s'\n", argv[optind]);
	return 0;
}

static void fsck_problem(void *ctx, const char *msg)
{
	if (!*(int *)ctx)
		printf("problem: %s\n", msg);
}

static int cmd_fsck(int argc, char **argv)
{
	static const struct option opts[] = { { "verify-data", no_argument, NULL, 'd' },
					      { "quiet", no_argument, NULL, 'q' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	struct zf_open_opts oo = { .readonly = 1 };
	struct zf_check_report rep = { 0 };
	struct zf_fs *fs;
	int c, r, quiet = 0;

	while ((c = getopt_long(argc, argv, "dqh", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			rep.verify_data = 1;
			break;
		case 'q':
			quiet = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return FSCK_OPERATIONAL;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "zerofs fsck: expected one dev-dir\n");
		return FSCK_OPERATIONAL;
	}
	r = zf_fs_open(argv[optind], &oo, &fs);
	if (r == -EBADMSG) {
		printf("'%s': metadata is corrupt (see the error above)\n", argv[optind]);
		return FSCK_ERRORS;
	}
	if (r < 0) {
		fprintf(stderr, "zerofs fsck: cannot open '%s': %s\n", argv[optind], strerror(-r));
		return FSCK_OPERATIONAL;
	}
	rep.problem = fsck_problem;
	rep.ctx = &quiet;
	r = zf_fs_check(fs, &rep);
	zf_fs_close(fs);
	if (r < 0 && r != -EUCLEAN) {
		fprintf(stderr, "zerofs fsck: checking '%s' failed: %s\n", argv[optind], strerror(-r));
		return FSCK_OPERATIONAL;
	}
	if (!quiet)
		printf("'%s': %llu inodes, %llu entries, %llu chunks%s: %s\n", argv[optind],
		       (unsigned long long)rep.inodes, (unsigned long long)rep.dirents,
		       (unsigned long long)rep.chunks, rep.verify_data ? " (data verified)" : "",
		       rep.errors ? "errors found" : "clean");
	return rep.errors ? FSCK_ERRORS : FSCK_CLEAN;
}

static int cmd_stats(int argc, char **argv)
{
	struct zf_open_opts oo = { .readonly = 1 };
	struct zf_fs_stats s;
	struct zf_fs *fs;
	int r;

	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "zerofs stats: expected one dev-dir\n");
		return 2;
	}
	r = zf_fs_open(argv[1], &oo, &fs);
	if (r < 0) {
		fprintf(stderr, "zerofs stats: cannot open '%s': %s\n", argv[1], strerror(-r));
		return 1;
	}
	zf_fs_stats(fs, &s);
	zf_fs_close(fs);
	printf("inodes:            %llu (%llu files, %llu directories)\n",
	       (unsigned long long)s.inodes, (unsigned long long)s.files, (unsigned long long)s.dirs);
	printf("logical bytes:     %llu\n", (unsigned long long)s.logical_bytes);
	printf("referenced bytes:  %llu\n", (unsigned long long)s.referenced_bytes);
	printf("unique bytes:      %llu\n", (unsigned long long)s.unique_bytes);
	printf("stored bytes:      %llu\n", (unsigned long long)s.stored_bytes);
	printf("dedup ratio:       %.2f\n",
	       s.unique_bytes ? (double)s.referenced_bytes / s.unique_bytes : 1.0);
	printf("compression ratio: %.2f\n",
	       s.stored_bytes ? (double)s.stored_raw_bytes / s.stored_bytes : 1.0);
	printf("chunks:            %llu (%llu referenced)\n", (unsigned long long)s.chunks,
	       (unsigned long long)s.chunks_live);
	printf("segments:          %llu\n", (unsigned long long)s.segments);
	printf("log bytes:         %llu\n", (unsigned long long)s.log_bytes);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd;

	zf_log_init("zerofs", 0, ZF_LOG_WARN);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version")) {
		printf("zerofs %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "mkfs"))
		return cmd_mkfs(argc - 1, argv + 1);
	if (!strcmp(cmd, "fsck"))
		return cmd_fsck(argc - 1, argv + 1);
	if (!strcmp(cmd, "stats"))
		return cmd_stats(argc - 1, argv + 1);
	fprintf(stderr, "zerofs: unknown command '%s' (try 'zerofs --help')\n", cmd);
	return 2;
}
