/*
 * devdir/remote_check.h - is a bucket usable? The check mkfs runs before it
 * points a dev-dir at a bucket, so that a bad URL, missing credentials or a
 * dead endpoint fail at mkfs, with one line, instead of at every mount.
 *
 * Not here: what the bucket holds (tier/), how stores are opened (net/).
 */
#ifndef ZF_DEVDIR_REMOTE_CHECK_H
#define ZF_DEVDIR_REMOTE_CHECK_H

#include <stddef.h>

/*
 * Check url (remote.conf's syntax: "none" and "" need no check): the
 * scheme and its parameters are known, the store opens (credentials
 * found; a file:// directory is created as the first mount would), and a
 * small object written under the url's prefix reads back the same and is
 * deleted. Bounded in time: a store that does not answer fails within
 * about ZF_REMOTE_CHECK_SECS.
 *
 * Returns 0, or -errno with a one-line reason in why (len bytes): -EINVAL
 * a bad url, -EACCES credentials missing or refused, -ECONNREFUSED,
 * -ETIMEDOUT, -EIO the store failed or read back something else, or the
 * file backend's -errno. The store may log details: a caller that wants
 * only the reason lowers the log level around the call.
 */
int zf_devdir_check_remote(const char *url, char *why, size_t len);

/* the check's time bound, in seconds */
#define ZF_REMOTE_CHECK_SECS 20

#endif
