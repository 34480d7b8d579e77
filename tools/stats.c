/*
 * tools/stats.c - zerofs stats: of a mount, asked of its daemon over the
 * control socket; of an unmounted dev-dir, read from it (read-only, no
 * bucket: what is pending upload comes from the dev-dir itself).
 *
 * Exit codes: 0 done, 1 failed, 2 bad arguments.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "daemon/control.h"
#include "devdir/devdir.h"
#include "devdir/mountinfo.h"
#include "tools/commands.h"

/* what the bucket lacks of an unmounted dev-dir (nothing without a bucket) */
static void stats_pending(struct zf_devdir *dd)
{
	struct zf_remote_pending p;

	if (zf_devdir_pending(dd, &p) < 0)
		return;
	printf("pending upload:    %llu bytes (%llu segments, %llu log records)%s\n",
	       (unsigned long long)p.bytes, (unsigned long long)p.segs,
	       (unsigned long long)p.records,
	       p.bytes || p.segs || p.records ? ": not in the bucket yet, the next mount "
						 "uploads them" : "");
}

int zf_cmd_stats(int argc, char **argv)
{
	struct zf_fs_stats s;
	struct zf_devdir *dd;
	char dev[4096];
	int r, mounted;

	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "zerofs stats: expected a mountpoint or a dev-dir\n");
		return 2;
	}
	mounted = zf_devdir_resolve(argv[1], dev, sizeof(dev));
	if (!mounted && zf_tool_say_if_not_devdir("stats", dev, 1))
		return 1;
	if (!mounted) {
		zf_log_set_level(ZF_LOG_NONE); /* 'in use' is not an error here */
		r = zf_devdir_open(dev, ZF_DEVDIR_STATS, NULL, &dd, NULL);
		zf_log_set_level(ZF_LOG_WARN);
		if (r == 0) {
			zf_fs_stats(dd->fs, &s);
			zf_stats_print(stdout, &s);
			stats_pending(dd);
			zf_devdir_close(dd);
			return 0;
		}
		if (r != -EBUSY) {
			fprintf(stderr, "zerofs stats: cannot open '%s': %s\n", dev, strerror(-r));
			return 1;
		}
	}
	/* mounted: ask the daemon */
	r = zf_control_call(dev, "stats", stdout);
	if (r < 0) {
		fprintf(stderr, "zerofs stats: the daemon serving '%s' did not answer: %s\n", dev,
			r == -ENOTCONN ? "no control socket" : strerror(-r));
		return 1;
	}
	return 0;
}

