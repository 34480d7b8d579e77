/*
 * tests/fuzz/fuzz_mount_opts.c - the mount -o option string
 * (zf_mount_opts_parse, zf_parse_size, zf_parse_int; devdir/mount_opts.c)
 *
 * The input is one -o argument (up to its first NUL); it is also given to
 * zf_parse_size and zf_parse_int alone.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devdir/mount_opts.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct zf_mount_opts o;
	char why[256], *s = strndup((const char *)data, size);
	uint64_t v = 0;
	long l = 0;
	int r;

	memset(&o, 0, sizeof(o));
	r = zf_mount_opts_parse(s, &o, why, sizeof(why));
	fz_check(r == 0 || r == -EINVAL || r == -E2BIG);
	fz_check(strlen(o.fuse) < sizeof(o.fuse) && strlen(o.url) < sizeof(o.url));
	fz_check(strlen(why) < sizeof(why));
	fz_check(r != -EINVAL || *why); /* a refusal says which option */
	fz_check(!o.dd.url || o.dd.url == o.url);
	if (r == 0 && o.dd.open.mem_bytes)
		fz_check(o.dd.open.mem_bytes >= (16ull << 20));
	r = zf_parse_size(s, &v);
	fz_check(r == 0 || r == -EINVAL);
	r = zf_parse_int(s, -1000, 1000, &l);
	fz_check(r == -EINVAL || (r == 0 && l >= -1000 && l <= 1000));
	free(s);
	return 0;
}
