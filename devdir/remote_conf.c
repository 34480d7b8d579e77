/*
 * devdir/remote_conf.c - the remote.conf codec (see remote_conf.h)
 *
 * Format: docs/FORMAT.md "The dev-dir" ("url <URL>" lines, text).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "devdir/remote_conf.h"

int zf_remote_conf_read(const char *dev_dir, char *url, size_t len)
{
	char *text = NULL, *line, *next;
	const char *found = NULL;
	size_t n;
	int dirfd, r;

	dirfd = open(dev_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -errno;
	r = zf_read_file(dirfd, ZF_REMOTE_CONF, (void **)&text, &n);
	close(dirfd);
	if (r < 0)
		return r;
	text[n] = 0; /* zf_read_file leaves room for it */
	for (line = text; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		if (!strncmp(line, "url ", 4))
			found = line + 4; /* the last one wins */
	}
	r = found ? 0 : -ENOENT;
	if (found)
		snprintf(url, len, "%s", found);
	free(text);
	return r;
}

int zf_remote_conf_write(const char *dev_dir, const char *url)
{
	char text[ZF_REMOTE_URL_MAX + 8];
	int dirfd, n, r;

	n = snprintf(text, sizeof(text), "url %s\n", url);
	if (n < 0 || (size_t)n >= sizeof(text))
		return -ENAMETOOLONG;
	dirfd = open(dev_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -errno;
	r = zf_publish_file(dirfd, ZF_REMOTE_CONF, text, n);
	close(dirfd);
	return r;
}

void zf_remote_conf_default(const char *dev_dir, char *url, size_t len)
{
	char *real = realpath(dev_dir, NULL);

	snprintf(url, len, "file://%s.bucket", real ? real : dev_dir);
	free(real);
}

int zf_remote_conf_is_bucket(const char *url)
{
	return url && *url && strcmp(url, ZF_REMOTE_NONE) != 0;
}
