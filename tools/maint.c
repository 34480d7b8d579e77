/*
 * tools/maint.c - upkeep of a dev-dir and its bucket: zerofs gc (a live
 * one through the daemon's control socket when given a mountpoint) and
 * zerofs lease-break (which refuses while the lease's holder lives on
 * this host, unless --force).
 *
 * Exit codes: 0 done, 1 failed or refused, 2 bad arguments.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/progress.h"
#include "common/util.h"
#include "daemon/control.h"
#include "devdir/devdir.h"
#include "devdir/mount_opts.h"
#include "devdir/mountinfo.h"
#include "storage/seal.h"
#include "tools/commands.h"

/* gc's bar: live bytes copied of those to copy (storage/gc.h) */
static void gc_progress(void *ctx, uint64_t done, uint64_t total)
{
	if (total) /* else nothing to copy: the segments go at once */
		zf_progress_update(ctx, done, total, NULL);
}

/* the same from a daemon's "progress <done> <total>" line (daemon/control.h) */
static void gc_progress_line(void *ctx, const char *line)
{
	unsigned long long done, total;

	if (sscanf(line, "%llu %llu", &done, &total) == 2)
		gc_progress(ctx, done, total);
}

/* gc of a mount by its daemon, the bar drawn as it goes, the report after it */
static int gc_daemon(const char *dev, const char *cmd, struct zf_progress *bar)
{
	char *text = NULL;
	size_t len = 0;
	FILE *answer = open_memstream(&text, &len);
	int r;

	if (!answer)
		return -ENOMEM;
	r = zf_control_call_progress(dev, cmd, gc_progress_line, bar, answer);
	fclose(answer);
	zf_progress_clear(bar);
	fwrite(text, 1, len, stdout);
	free(text);
	return r;
}

/* gc on an unmounted dev-dir: open it and its bucket as a mount would */
static int gc_unmounted(const char *dev, const struct zf_gc_opts *o, struct zf_gc_report *rep)
{
	struct zf_devdir_opts oo = { 0 };
	char url[ZF_REMOTE_URL_MAX];
	struct zf_devdir_err err;
	struct zf_devdir *dd;
	int r, r2;

	zf_devdir_url(dev, NULL, url, sizeof(url));
	oo.url = url;
	r = zf_devdir_open(dev, ZF_DEVDIR_GC, &oo, &dd, &err);
	if (r < 0) {
		if (err.at == ZF_DEVDIR_AT_BUCKET) /* else the core said what and where */
			fprintf(stderr, "zerofs gc: cannot use the object store '%s': %s\n", url,
				strerror(-r));
		return r;
	}
	r = zf_devdir_gc(dd, o, rep);
	r2 = zf_devdir_close(dd);
	if (r == 0)
		r = r2;
	if (r < 0)
		fprintf(stderr, "zerofs gc: '%s': %s\n", dev, strerror(-r));
	return r;
}

int zf_cmd_gc(int argc, char **argv)
{
	static const struct option opts[] = { { "dry-run", no_argument, NULL, 'n' },
					      { "max-waste", required_argument, NULL, 'w' },
					      { NULL, 0, NULL, 0 } };
	struct zf_gc_opts o = { .max_waste = ZF_GC_MAX_WASTE, .progress = gc_progress };
	struct zf_progress bar;
	struct zf_gc_report rep;
	char dev[4096], cmd[64];
	int c, r, mounted;
	long pct;

	while ((c = getopt_long(argc, argv, "nw:", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			o.dry_run = 1;
			break;
		case 'w':
			if (zf_parse_int(optarg, 0, 1000, &pct) < 0) {
				fprintf(stderr, "zerofs gc: --max-waste wants a percentage "
						"(0..1000), not '%s'\n", optarg);
				return 2;
			}
			o.max_waste = pct ? pct / 100.0 : 1e-9;
			break;
		default:
			return zf_tool_bad_option(argv);
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "zerofs gc: expected one dev-dir or mountpoint\n");
		return 2;
	}
	zf_progress_init(&bar, "gc", NULL);
	o.ctx = &bar;
	mounted = zf_devdir_resolve(argv[optind], dev, sizeof(dev));
	if (mounted) {
		snprintf(cmd, sizeof(cmd), "gc %d %.9f", o.dry_run, o.max_waste);
		r = gc_daemon(dev, cmd, &bar);
		if (r < 0) {
			fprintf(stderr, "zerofs gc: '%s': %s\n", argv[optind],
				r == -ENOTCONN ? "no daemon answers" : "gc failed (see above)");
			return 1;
		}
		return 0;
	}
	if (zf_tool_say_if_not_devdir("gc", dev, 1) || zf_tool_say_if_mounted("gc", dev))
		return 1;
	r = gc_unmounted(dev, &o, &rep);
	zf_progress_clear(&bar);
	if (r < 0)
		return 1;
	zf_gc_report_print(stdout, &rep, o.dry_run);
	return 0;
}


/*
 * Is the lease's holder alive on this host: its pid a live zerofs, or its
 * dev-dir's lock held (the lease may still name the process that
 * daemonized)? Where it is mounted into mnt ("" when not found).
 */
static int lease_holder_alive(const struct zf_lease_info *li, char *mnt, size_t len)
{
	mnt[0] = 0;
	if (!li->here)
		return 0;
	if (li->dev[0] && zf_mount_of_devdir(li->dev, mnt, len) < 0)
		mnt[0] = 0;
	return li->alive_here || (li->dev[0] && zf_devdir_wait_released(li->dev, 0) == -ETIMEDOUT);
}

int zf_cmd_lease_break(int argc, char **argv)
{
	static const struct option opts[] = { { "force", no_argument, NULL, 'f' },
					      { NULL, 0, NULL, 0 } };
	char until[80], mnt[4096], holder[4600] = "";
	struct zf_lease_info li;
	int c, r, force = 0;
	const char *url;

	while ((c = getopt_long(argc, argv, "f", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			force = 1;
			break;
		default:
			return zf_tool_bad_option(argv);
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "zerofs lease-break: expected the bucket's URL\n");
		return 2;
	}
	url = argv[optind];
	/* an encrypted filesystem's lease does not open without its key: -EBADMSG */
	r = zf_remote_lease_read(url, NULL, &(struct zf_seal){ .features = 0 }, &li);
	if (r == -ENOENT) {
		printf("'%s' has no lease: nothing to break\n", url);
		return 0;
	}
	if (r < 0 && r != -EBADMSG) { /* a lease that does not parse is broken all the same */
		fprintf(stderr, "zerofs lease-break: cannot read the lease of '%s': %s\n", url,
			strerror(-r));
		return 1;
	}
	if (r == 0) {
		zf_time_human(li.expires, until, sizeof(until));
		snprintf(holder, sizeof(holder), " (held by %s pid %d%s%s%s until %s)", li.host,
			 li.pid, li.dev[0] ? ", dev-dir '" : "", li.dev, li.dev[0] ? "'," : "",
			 until);
	}
	if (r == 0 && lease_holder_alive(&li, mnt, sizeof(mnt)) && !force) {
		fprintf(stderr, "zerofs lease-break: the lease of '%s'%s belongs to a live zerofs "
			"on this host: %s%s%s; --force breaks it anyway\n", url, holder,
			mnt[0] ? "unmount it ('zerofs umount " : "stop it", mnt,
			mnt[0] ? "')" : "");
		return 1;
	}
	r = zf_remote_break_lease(url, NULL);
	if (r < 0) {
		fprintf(stderr, "zerofs lease-break: cannot delete the lease of '%s': %s\n", url,
			strerror(-r));
		return 1;
	}
	printf("lease of '%s'%s removed: the next mount takes it\n", url, holder);
	return 0;
}

