/*
 * daemon/wset.h - the working set through extended attributes, for scripts
 * and for the CLI's pin, unpin, warmup, evict and status:
 *
 *   user.zerofs.pin     get "1" if pinned (else ENODATA); set: pin (a
 *                       regular file's data is fetched and kept local; a
 *                       directory pins what is made in it; ENOSPC when
 *                       pins would exceed their share of cache_size);
 *                       remove: unpin
 *   user.zerofs.warmup  set: fetch what of the file is not local
 *   user.zerofs.evict   set: drop the local copies the bucket holds
 *                       (EBUSY: pinned)
 *   user.zerofs.status  get "local=N bucket=N pending=N pinned=0|1\n":
 *                       the file's bytes in the dev-dir, only in the
 *                       bucket, and (of the local ones) not there yet
 *
 * Values set are ignored. None is stored or listed; any other
 * user.zerofs.* name is refused (EOPNOTSUPP). Without a bucket everything
 * is local: pin only sets the flag, warmup does nothing, evict is
 * EOPNOTSUPP.
 */
#ifndef ZF_DAEMON_WSET_H
#define ZF_DAEMON_WSET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "storage/fs.h"
#include "tier/remote.h"

#define ZF_WSET_PREFIX "user.zerofs."

/* is name one of the working set's (ZF_WSET_PREFIX)? */
int zf_wset_name(const char *name);
/* does setting name drop the file's local copies (the kernel's cache should follow)? */
int zf_wset_evicts(const char *name);
/* rm may be NULL (no bucket); 0 / a length, or -errno */
int zf_wset_set(struct zf_fs *fs, struct zf_remote *rm, uint64_t ino, const char *name);
ssize_t zf_wset_get(struct zf_fs *fs, struct zf_remote *rm, uint64_t ino, const char *name,
		    char *buf, size_t size);
int zf_wset_remove(struct zf_fs *fs, struct zf_remote *rm, uint64_t ino, const char *name);

#endif
