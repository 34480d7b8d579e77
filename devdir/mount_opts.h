/*
 * devdir/mount_opts.h - the mount -o option string: what zerofs takes
 * from it (the dev-dir's bucket and budgets, the daemon's timers) and
 * what it passes on to libfuse; and the number and size syntax the
 * command's options share ("64M", "2G").
 *
 * Pure parsing: no file, no global state; the fuzz target
 * tests/fuzz/fuzz_mount_opts.c drives it. Messages go to the caller in
 * why, never to a stream. The option names are the command's interface:
 * 'zerofs mount --help' (tools/zerofs.c) and man/zerofs.8.scd list them.
 */
#ifndef ZF_DEVDIR_MOUNT_OPTS_H
#define ZF_DEVDIR_MOUNT_OPTS_H

#include <stddef.h>
#include <stdint.h>

#include "devdir/devdir.h"

/* room for a log= file name, NUL included */
#define ZF_MOUNT_LOG_MAX 4096
/* log_level not given */
#define ZF_MOUNT_LOG_LEVEL_UNSET (-2)

/* room for the options handed to libfuse, NUL included */
#define ZF_FUSE_OPTS_MAX 4096

struct zf_mount_opts {
	/* remote= (dd.url, pointing at url), cache_size= (dd.remote.local_budget),
	 * fetch_timeout=, write_wait=, max_delay= (dd.remote), ckpt=, mem=
	 * (dd.open) */
	struct zf_devdir_opts dd;
	char url[ZF_REMOTE_URL_MAX];
	/* replica=URL (or --replica URL): mount a replica of the filesystem in
	 * that bucket, the dev-dir being its cache-dir; poll= sets how often it
	 * looks for the writer's news (dd.remote.interval_ms) */
	char replica[ZF_REMOTE_URL_MAX];
	/* snapshot=NAME (or --snapshot NAME): mount that snapshot, read-only */
	char snapshot[64];
	unsigned int commit_secs;	/* commit= (0: the daemon's default) */
	double timeout;			/* timeout= (0: the daemon's default) */
	int nonempty;			/* nonempty: mount over a directory that is not empty */
	char log[ZF_MOUNT_LOG_MAX];	/* log=: "syslog", "stderr" or a file ("": the default) */
	int log_level;			/* log_level=: an enum zf_log_level, -2: not given */
	char metrics_file[ZF_MOUNT_LOG_MAX]; /* metrics_file=: an absolute path ("": none) */
	unsigned int metrics_secs;	/* metrics_interval= (0: 15 s) */
	char fuse[ZF_FUSE_OPTS_MAX];	/* all the others but mount(8)'s own, for libfuse */
};

/* o before the first zf_mount_opts_parse: zeroed, log_level unset */
void zf_mount_opts_init(struct zf_mount_opts *o);

/*
 * Add one -o argument (comma-separated options) to o, which starts as
 * zf_mount_opts_init made it and may take several. Returns 0; -EINVAL for a bad value, why (len
 * bytes) saying which ("invalid 'commit=0' (1..3600 seconds)"); -E2BIG
 * when the FUSE options do not fit (why empty). o may be half updated
 * after an error.
 */
int zf_mount_opts_parse(const char *arg, struct zf_mount_opts *o, char *why, size_t len);

/* a decimal integer lo..hi, the whole of s: 0 and *ret, or -EINVAL */
int zf_parse_int(const char *s, long lo, long hi, long *ret);

/*
 * A size like 64M, 2G, 512K, 1T, 1048576 (optionally "B" or "iB" after the
 * unit; units are binary): 0 and *ret, or -EINVAL (also for a sign or a
 * value that would not fit 64 bits).
 */
int zf_parse_size(const char *s, uint64_t *ret);

#endif
