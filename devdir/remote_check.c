/*
 * devdir/remote_check.c - is a bucket usable, before mkfs (see remote_check.h)
 *
 * A probe, not a survey: one object, put, read back and deleted, under a
 * key no zerofs object uses ("zerofs-probe.<host>.<pid>"), so a bucket
 * that already serves a filesystem is not disturbed and two mkfs at once
 * do not collide.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devdir/remote_check.h"
#include "devdir/remote_conf.h"
#include "net/objstore.h"

/* what the probe object says (any content would do: it is compared) */
#define PROBE_BODY "zerofs mkfs: a probe of this bucket; delete me if I am left over\n"

/* the errno of a store call, in words an operator can act on */
static const char *probe_reason(int r)
{
	switch (r) {
	case -EACCES:
	case -EPERM:
		return "access denied (wrong credentials, or no permission on the bucket)";
	case -ECONNREFUSED:
		return "connection refused (is the endpoint right, its server running?)";
	case -ETIMEDOUT:
		return "no answer in time";
	case -ENOENT:
		return "not found (no such bucket?)";
	case -EHOSTUNREACH:
		return "the endpoint's host is unknown or unreachable";
	case -EIO:
		return "the store failed (an error status or a broken reply)";
	default:
		return strerror(-r);
	}
}

/* put, get back and compare, delete the probe object key of st */
static int probe(struct zf_objstore *st, const char *url, const char *key, char *why, size_t len)
{
	size_t n = strlen(PROBE_BODY), got_len;
	void *got;
	int r;

	r = zf_objstore_put(st, key, PROBE_BODY, n);
	if (r < 0) {
		snprintf(why, len, "cannot write a test object '%s' into '%s': %s", key, url,
			 probe_reason(r));
		return r;
	}
	r = zf_objstore_get(st, key, 0, 0, &got, &got_len);
	if (r == 0 && (got_len != n || memcmp(got, PROBE_BODY, n)))
		r = -EIO;
	if (r == 0)
		free(got);
	if (r < 0) {
		snprintf(why, len, "cannot read back the test object '%s' of '%s': %s", key, url,
			 r == -EIO ? "it came back different or not at all" : probe_reason(r));
		zf_objstore_delete(st, key);
		return r;
	}
	r = zf_objstore_delete(st, key);
	if (r < 0)
		snprintf(why, len, "cannot delete the test object '%s' of '%s': %s", key, url,
			 probe_reason(r));
	return r;
}

int zf_devdir_check_remote(const char *url, char *why, size_t len)
{
	struct zf_objstore_opts o = {
		.create = 1,
		.why = why,
		.why_len = len,
		/* a dead endpoint: three quick attempts, not a mount's patience */
		.connect_timeout_ms = 5000,
		.stall_timeout_ms = 10000,
		.timeout_ms = ZF_REMOTE_CHECK_SECS * 1000,
		.max_attempts = 3,
	};
	char host[64] = "host", key[128];
	struct zf_objstore *st;
	int r;

	if (len)
		why[0] = 0;
	if (!zf_remote_conf_is_bucket(url))
		return 0;
	/* file:// would take "?x=1" as part of the directory's name */
	if (!strncmp(url, "file:", 5) && strchr(url, '?')) {
		snprintf(why, len, "cannot use object store '%s': file:// takes no parameters "
			 "(a '?' in the URL)", url);
		return -EINVAL;
	}
	r = zf_objstore_open(url, &o, &st);
	if (r < 0) {
		if (len && !why[0])
			snprintf(why, len, "cannot open object store '%s': %s", url,
				 probe_reason(r));
		return r;
	}
	gethostname(host, sizeof(host) - 1);
	host[strcspn(host, ".")] = 0; /* the short name will do */
	snprintf(key, sizeof(key), "zerofs-probe.%s.%d", host, (int)getpid());
	r = probe(st, url, key, why, len);
	zf_objstore_close(st);
	return r;
}
