/*
 * tools/snapshot.c - zerofs snapshot create|delete|list
 *
 * On a mounted filesystem its daemon does it (the control socket); on an
 * unmounted dev-dir this process opens it (and its bucket) as gc does:
 * create is the core's snapshot, then the bucket's copy; delete the
 * bucket's copy, then the core's. list reads an unmounted dev-dir (or a
 * replica's cache-dir) itself.
 *
 * Exit codes: 0 done, 1 failed, 2 bad arguments.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/control.h"
#include "devdir/devdir.h"
#include "devdir/mountinfo.h"
#include "storage/fs_snap.h"
#include "tools/commands.h"

static void print_one(const char *name, uint64_t seq, time_t made, uint64_t bytes)
{
	char at[32] = "?";
	struct tm tm;

	if (localtime_r(&made, &tm))
		strftime(at, sizeof(at), "%Y-%m-%d %H:%M:%S", &tm);
	printf("%-24s %s  log record %-10" PRIu64 " %" PRIu64 " bytes of metadata\n", name, at,
	       seq, bytes);
}

/* the daemon's "snap NAME SEQ MADE BYTES" lines, as print_one says them */
static void print_daemon_list(const char *text)
{
	const char *p = text;

	while (p && *p) {
		char name[ZF_SNAP_NAME_MAX + 1];
		unsigned long long seq, bytes;
		long long made;

		if (sscanf(p, "snap %48s %llu %lld %llu", name, &seq, &made, &bytes) == 4)
			print_one(name, seq, (time_t)made, bytes);
		p = strchr(p, '\n');
		if (p)
			p++;
	}
}

static int list_unmounted(const char *dev)
{
	struct zf_snap_info *v;
	struct zf_devdir *dd;
	size_t n, i;
	int r;

	r = zf_devdir_open(dev, ZF_DEVDIR_STATS, NULL, &dd, NULL);
	if (r < 0)
		return 1; /* the core said why */
	r = zf_fs_snapshot_list(dd->fs, &v, &n);
	if (r == 0) {
		for (i = 0; i < n; i++)
			print_one(v[i].name, v[i].seq, v[i].made, v[i].bytes);
		free(v);
	} else {
		fprintf(stderr, "zerofs snapshot: cannot list the snapshots of '%s': %s\n", dev,
			strerror(-r));
	}
	zf_devdir_close(dd);
	return r < 0;
}

/* create or delete on an unmounted dev-dir: opened (and its bucket) as gc opens it */
static int change_unmounted(const char *dev, const char *op, const char *name)
{
	struct zf_devdir_opts oo = { 0 };
	char url[ZF_REMOTE_URL_MAX], why[1024] = "";
	struct zf_devdir_err err;
	struct zf_devdir *dd;
	uint64_t seq = 0;
	int r, r2;

	zf_devdir_url(dev, NULL, url, sizeof(url));
	oo.url = url;
	r = zf_devdir_open(dev, ZF_DEVDIR_GC, &oo, &dd, &err);
	if (r < 0) {
		if (err.at == ZF_DEVDIR_AT_BUCKET) /* else the core said what and where */
			fprintf(stderr, "zerofs snapshot: cannot use the object store '%s': %s\n",
				url, strerror(-r));
		return 1;
	}
	r = !strcmp(op, "create") ? zf_remote_snapshot_create(dd->fs, dd->rm, name, &seq, why,
							       sizeof(why))
				  : zf_remote_snapshot_remove(dd->fs, dd->rm, name, why, sizeof(why));
	r2 = zf_devdir_close(dd);
	if (r < 0) {
		fprintf(stderr, "zerofs snapshot: %s\n", why);
		return 1;
	}
	if (r2 < 0) {
		fprintf(stderr, "zerofs snapshot: '%s': %s\n", dev, strerror(-r2));
		return 1;
	}
	if (!strcmp(op, "create"))
		printf("snapshot %s: log record %" PRIu64 "\n", name, seq);
	return 0;
}

int zf_cmd_snapshot(int argc, char **argv)
{
	char dev[4096], cmd[128], *text = NULL;
	const char *op, *name = NULL, *where;
	size_t len = 0;
	FILE *answer;
	int r, mounted;

	if (argc >= 2 && argv[1][0] == '-')
		return zf_tool_bad_option(argv);
	op = argc >= 2 ? argv[1] : "";
	if (!strcmp(op, "list") && argc == 3) {
		where = argv[2];
	} else if ((!strcmp(op, "create") || !strcmp(op, "delete")) && argc == 4) {
		name = argv[2];
		where = argv[3];
	} else {
		fprintf(stderr, "zerofs snapshot: expected 'create NAME <mountpoint|dev-dir>', "
			"'delete NAME <mountpoint|dev-dir>' or 'list <mountpoint|dev-dir>'\n");
		return 2;
	}
	if (name && !zf_snap_name_ok(name)) {
		fprintf(stderr, "zerofs snapshot: '%s' is not a snapshot name (1 to %d letters, "
			"digits, '.', '_' and '-', not starting with '.' or '-', no '.tmp')\n", name,
			ZF_SNAP_NAME_MAX);
		return 2;
	}
	mounted = zf_devdir_resolve(where, dev, sizeof(dev));
	if (!mounted && zf_tool_say_if_not_devdir("snapshot", dev, 1))
		return 1;
	if (!mounted && !name) {
		r = list_unmounted(dev);
		if (r == 0 || zf_tool_say_if_mounted("snapshot", dev))
			return r;
		return 1;
	}
	if (!mounted)
		return zf_tool_say_if_mounted("snapshot", dev) ? 1 : change_unmounted(dev, op, name);
	snprintf(cmd, sizeof(cmd), "snapshot %s%s%s", op, name ? " " : "", name ? name : "");
	answer = open_memstream(&text, &len);
	if (!answer)
		return 1;
	r = zf_control_call(dev, cmd, answer);
	fclose(answer);
	if (r == 0 && !name) {
		print_daemon_list(text);
	} else if (r == 0) {
		fputs(text, stdout);
	} else if (r == -EIO) {
		fprintf(stderr, "zerofs snapshot: %s", text); /* the daemon's one line */
	} else {
		fprintf(stderr, "zerofs snapshot: the daemon serving '%s' did not answer: %s\n", dev,
			r == -ENOTCONN ? "no control socket" : strerror(-r));
	}
	free(text);
	return r < 0;
}
