/*
 * devdir/mountinfo.h - which dev-dir a zerofs mount serves
 *
 * The daemon mounts with fsname "zerofs:<dev-dir>" and subtype "zerofs"
 * (daemon/daemon.c), so /proc/self/mountinfo names the dev-dir behind
 * every zerofs mountpoint; commands given a mountpoint (stats, sync, gc,
 * umount) find the dev-dir, its lock and its control socket from it.
 */
#ifndef ZF_DEVDIR_MOUNTINFO_H
#define ZF_DEVDIR_MOUNTINFO_H

#include <stddef.h>

/*
 * The dev-dir behind the zerofs mount at mnt into dev (len bytes). 0, or
 * -ENOENT when mnt is not a zerofs mountpoint (or does not exist).
 */
int zf_devdir_of_mount(const char *mnt, char *dev, size_t len);

/*
 * The mountpoint where a zerofs daemon serves the dev-dir dev, into mnt
 * (len bytes): 0, or -ENOENT when no zerofs mount in this namespace serves
 * it (the daemon names its dev-dir by its real path).
 */
int zf_mount_of_devdir(const char *dev, char *mnt, size_t len);

/*
 * The dev-dir named by arg: a zerofs mountpoint's source, or arg itself,
 * into dev (len bytes). Returns 1 when a daemon serves it (arg is its
 * mountpoint), else 0.
 */
int zf_devdir_resolve(const char *arg, char *dev, size_t len);

#endif
