/*
 * devdir/mountinfo.c - the dev-dir behind a zerofs mount, from
 * /proc/self/mountinfo (see mountinfo.h)
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devdir/mountinfo.h"

/* undo mountinfo's octal escapes (\040 for a space, \134 for a backslash) */
static void mountinfo_unescape(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*w++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*w++ = *s;
		}
	}
	*w = 0;
}

/*
 * Walk /proc/self/mountinfo's zerofs mounts: fn(ctx, mountpoint, dev-dir)
 * for each, unescaped, in mount order. 0, or -ENOENT when it cannot be read.
 */
static int mountinfo_walk(void (*fn)(void *ctx, const char *mnt, const char *dev), void *ctx)
{
	char line[8192], path[4096], src[4096];
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f)
		return -ENOENT;
	while (fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - ");

		/* field 5 is the mountpoint; after " - ": type, source */
		if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", path) != 1 ||
		    sscanf(sep, " - fuse.zerofs %4095s", src) != 1)
			continue;
		mountinfo_unescape(path);
		mountinfo_unescape(src);
		if (strncmp(src, "zerofs:", 7) == 0)
			fn(ctx, path, src + 7);
	}
	fclose(f);
	return 0;
}

struct match {
	const char *want;	/* the real path looked for */
	char *out;
	size_t len;
	int found;
};

static void match_mnt(void *ctx, const char *mnt, const char *dev)
{
	struct match *m = ctx;

	if (!strcmp(mnt, m->want)) {
		snprintf(m->out, m->len, "%s", dev);
		m->found = 1;	/* the last one wins: it is on top */
	}
}

static void match_dev(void *ctx, const char *mnt, const char *dev)
{
	struct match *m = ctx;

	if (!strcmp(dev, m->want)) {
		snprintf(m->out, m->len, "%s", mnt);
		m->found = 1;
	}
}

/* look up arg's real path with fn; 0 or -ENOENT */
static int lookup(const char *arg, void (*fn)(void *, const char *, const char *), char *out,
		  size_t len)
{
	struct match m = { .out = out, .len = len };
	char *real = realpath(arg, NULL);

	if (!real)
		return -ENOENT;
	m.want = real;
	mountinfo_walk(fn, &m);
	free(real);
	return m.found ? 0 : -ENOENT;
}

int zf_devdir_of_mount(const char *mnt, char *dev, size_t len)
{
	return lookup(mnt, match_mnt, dev, len);
}

int zf_mount_of_devdir(const char *dev, char *mnt, size_t len)
{
	return lookup(dev, match_dev, mnt, len);
}

int zf_devdir_resolve(const char *arg, char *dev, size_t len)
{
	if (zf_devdir_of_mount(arg, dev, len) == 0)
		return 1;
	snprintf(dev, len, "%s", arg);
	return 0;
}
