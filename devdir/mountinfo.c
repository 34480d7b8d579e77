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

int zf_devdir_of_mount(const char *mnt, char *dev, size_t len)
{
	char line[8192], path[4096], src[4096], *rmnt;
	FILE *f = fopen("/proc/self/mountinfo", "r");
	int found = 0;

	rmnt = realpath(mnt, NULL);
	if (!f || !rmnt) {
		free(rmnt);
		if (f)
			fclose(f);
		return -ENOENT;
	}
	while (fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - ");

		/* field 5 is the mountpoint; after " - ": type, source */
		if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", path) != 1)
			continue;
		mountinfo_unescape(path);
		if (strcmp(path, rmnt) || sscanf(sep, " - fuse.zerofs %4095s", src) != 1)
			continue;
		mountinfo_unescape(src);
		if (strncmp(src, "zerofs:", 7) == 0) {
			snprintf(dev, len, "%s", src + 7);
			found = 1;	/* the last one wins: it is on top */
		}
	}
	fclose(f);
	free(rmnt);
	return found ? 0 : -ENOENT;
}

int zf_devdir_resolve(const char *arg, char *dev, size_t len)
{
	if (zf_devdir_of_mount(arg, dev, len) == 0)
		return 1;
	snprintf(dev, len, "%s", arg);
	return 0;
}
