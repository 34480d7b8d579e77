/*
 * tests/fuzz/fuzz_mount_opts.c - the mount -o option string
 * (parse_mount_opts, parse_size, parse_int; tools/zerofs.c)
 *
 * Those are static in tools/zerofs.c, so this file includes tools/zerofs.c
 * whole (its main() renamed) instead of exporting them: the command is
 * not changed for its fuzzing. If they change their signatures, this is
 * the file to follow them. common/util.c has no parser of its own.
 *
 * The input is one -o argument (up to its first NUL); it is also given to
 * parse_size and parse_int alone.
 */
#include "config.h"

int zerofs_tool_main(int argc, char **argv);
#define main zerofs_tool_main
#include "tools/zerofs.c"
#undef main

#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zf_daemon_opts o = { 0 };
	char fuse[256] = "", *s = strndup((const char *)data, size);
	uint64_t v = 0;
	long l = 0;
	int r;

	memset(&mount_remote, 0, sizeof(mount_remote));
	memset(&mount_open, 0, sizeof(mount_open));
	mount_url[0] = 0;
	r = parse_mount_opts(s, &o, fuse, sizeof(fuse));
	fz_check(r == 0 || r == -EINVAL || r == -E2BIG);
	fz_check(strlen(fuse) < sizeof(fuse) && strlen(mount_url) < sizeof(mount_url));
	if (r == 0 && mount_open.mem_bytes)
		fz_check(mount_open.mem_bytes >= (16ull << 20));
	r = parse_size(s, &v);
	fz_check(r == 0 || r == -EINVAL);
	r = parse_int(s, -1000, 1000, &l);
	fz_check(r == -EINVAL || (r == 0 && l >= -1000 && l <= 1000));
	free(s);
	return 0;
}
