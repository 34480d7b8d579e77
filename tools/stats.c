/*
 * tools/stats.c - zerofs stats: of a mount, asked of its daemon over the
 * control socket ("stats <form>"); of an unmounted dev-dir, read from it
 * (read-only, no bucket: what is pending upload comes from the dev-dir
 * itself). Either way printed by daemon/stats_print.c: sizes for people by
 * default, --bytes plain byte counts, --json one JSON object, --prometheus
 * the Prometheus text format.
 *
 * Exit codes: 0 done, 1 failed, 2 bad arguments.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "daemon/control.h"
#include "daemon/stats_print.h"
#include "devdir/devdir.h"
#include "devdir/mountinfo.h"
#include "tools/commands.h"

/* an unmounted dev-dir: 0 printed, 1 failed (said), -EBUSY (a daemon has it) */
static int stats_unmounted(const char *dev, enum zf_stats_form form)
{
	struct zf_stats_view v = { 0 };
	struct zf_remote_pending p;
	struct zf_fs_stats s;
	struct zf_devdir *dd;
	int r;

	zf_log_set_level(ZF_LOG_NONE); /* 'in use' is not an error here */
	r = zf_devdir_open(dev, ZF_DEVDIR_STATS, NULL, &dd, NULL);
	zf_log_set_level(ZF_LOG_WARN);
	if (r == -EBUSY)
		return r;
	if (r < 0) {
		fprintf(stderr, "zerofs stats: cannot open '%s': %s\n", dev, strerror(-r));
		return 1;
	}
	zf_fs_stats(dd->fs, &s);
	v.fs = &s;
	if (zf_devdir_pending(dd, &p) == 0) /* else no bucket */
		v.pending = &p;
	zf_stats_print(stdout, &v, form);
	zf_devdir_close(dd);
	return 0;
}

int zf_cmd_stats(int argc, char **argv)
{
	static const struct option opts[] = { { "bytes", no_argument, NULL, 'b' },
					      { "json", no_argument, NULL, 'j' },
					      { "prometheus", no_argument, NULL, 'p' },
					      { NULL, 0, NULL, 0 } };
	enum zf_stats_form form = ZF_STATS_HUMAN;
	char dev[4096], cmd[32];
	int c, r, mounted;

	while ((c = getopt_long(argc, argv, "bjp", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			form = ZF_STATS_BYTES;
			break;
		case 'j':
			form = ZF_STATS_JSON;
			break;
		case 'p':
			form = ZF_STATS_PROMETHEUS;
			break;
		default:
			return zf_tool_bad_option(argv);
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "zerofs stats: expected a mountpoint or a dev-dir\n");
		return 2;
	}
	mounted = zf_devdir_resolve(argv[optind], dev, sizeof(dev));
	if (!mounted && zf_tool_say_if_not_devdir("stats", dev, 1))
		return 1;
	if (!mounted) {
		r = stats_unmounted(dev, form);
		if (r != -EBUSY)
			return r;
	}
	/* mounted (or its dev-dir given): ask the daemon */
	snprintf(cmd, sizeof(cmd), "stats %s", zf_stats_form_name(form));
	r = zf_control_call(dev, cmd, stdout);
	if (r < 0) {
		fprintf(stderr, "zerofs stats: the daemon serving '%s' did not answer: %s\n", dev,
			r == -ENOTCONN ? "no control socket" : strerror(-r));
		return 1;
	}
	return 0;
}
