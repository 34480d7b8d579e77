/*
 * devdir/remote_conf.h - <dev-dir>/remote.conf: which bucket a dev-dir ships to
 *
 * The file is text, one setting a line; today only "url <URL>" (the last
 * such line wins; "none": no object store). It is rewritten whole and
 * atomically (.tmp, fsync, rename, directory fsync), never edited in place.
 * Format: docs/FORMAT.md "The dev-dir".
 *
 * Not here: what a dev-dir with a bucket opens (devdir/devdir.c), the
 * bucket itself (tier/remote.h).
 */
#ifndef ZF_DEVDIR_REMOTE_CONF_H
#define ZF_DEVDIR_REMOTE_CONF_H

#include <stddef.h>

/* the file's name inside a dev-dir */
#define ZF_REMOTE_CONF "remote.conf"
/* room for any URL this codec reads or writes, NUL included */
#define ZF_REMOTE_URL_MAX 4200
/* the url of a dev-dir without an object store */
#define ZF_REMOTE_NONE "none"

/*
 * Read the url of dev_dir's remote.conf into url (len bytes, truncated to
 * fit). 0, -ENOENT when there is no such file or no url line in it, or the
 * -errno of reading it. url is written only on success.
 */
int zf_remote_conf_read(const char *dev_dir, char *url, size_t len);

/* Publish dev_dir/remote.conf naming url (or ZF_REMOTE_NONE). 0 or -errno. */
int zf_remote_conf_write(const char *dev_dir, const char *url);

/*
 * The embedded default bucket of dev_dir: a directory beside it,
 * "file://<real path of dev_dir>.bucket" (dev_dir as given if it has no
 * real path yet), into url (len bytes).
 */
void zf_remote_conf_default(const char *dev_dir, char *url, size_t len);

/* does url name an object store (not empty, not ZF_REMOTE_NONE)? */
int zf_remote_conf_is_bucket(const char *url);

#endif
