/*
 * tools/mount.c - zerofs mount (and mount.fuse.zerofs or mount.zerofs, as
 * mount(8) runs it, and "zerofs DEV MNT -o OPTS", as mount.fuse(8) does):
 * zerofs.conf's settings, then -o over them; refuse a mountpoint that is
 * not an empty directory (unless -o nonempty), restore an empty dev-dir
 * from its bucket, open the dev-dir before daemonizing (so errors reach
 * the terminal and the exit code), then hand it to the daemon.
 *
 * Exit codes: 0 unmounted cleanly, 1 failed, 2 bad arguments or a bad
 * zerofs.conf setting; -f: 3 when
 * the daemon stopped with uploads pending (ZF_EXIT_PENDING).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/daemon.h"
#include "devdir/conffile.h"
#include "devdir/devdir.h"
#include "devdir/mount_opts.h"
#include "storage/fs_snap.h"
#include "tools/commands.h"
#include "tools/sync.h"

/* does directory path hold nothing but "." and ".." (or cannot be read)? */
static int dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int empty = 1;

	if (!d)
		return 1; /* the mount says why it cannot use it */
	while (empty && (e = readdir(d)))
		empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
	closedir(d);
	return empty;
}

/*
 * A replica's cache-dir: an empty (or new) directory is marked and filled
 * from the writer's bucket (its metadata; data comes as it is read); one
 * that is a replica's already must follow the same bucket. 0, or the exit
 * code (said).
 */
static int replica_prepare(const char *dir, const char *url)
{
	char mark[ZF_REMOTE_URL_MAX + 64], *line = NULL, want[ZF_REMOTE_URL_MAX + 32];
	size_t cap = 0;
	FILE *f;
	int r;

	if (!zf_remote_conf_is_bucket(url) || (strncmp(url, "file://", 7) &&
						strncmp(url, "s3://", 5) && strncmp(url, "fault:", 6))) {
		fprintf(stderr, "zerofs mount: --replica '%s' is not a bucket URL (file://, s3://)\n",
			url);
		return 2;
	}
	if (zf_devdir_wants_restore(dir, url)) {
		if (!dir_is_empty(dir)) {
			fprintf(stderr, "zerofs mount: '%s' is not empty: a replica's cache-dir starts "
				"as an empty directory of its own\n", dir);
			return 1;
		}
		mkdir(dir, 0700);
		r = zf_devdir_mark_replica(dir, url);
		if (r < 0) {
			fprintf(stderr, "zerofs mount: cannot make the replica's cache-dir '%s': %s\n",
				dir, strerror(-r));
			return 1;
		}
		if (zf_tool_restore("mount", url, dir, 0, 0) != 0) {
			snprintf(mark, sizeof(mark), "%s/%s", dir, ZF_DEVDIR_REPLICA_MARK);
			unlink(mark);
			return 1;
		}
		return 0;
	}
	snprintf(mark, sizeof(mark), "%s/%s", dir, ZF_DEVDIR_REPLICA_MARK);
	f = fopen(mark, "r");
	if (!f)
		return 0; /* the open says what it is */
	snprintf(want, sizeof(want), "zerofs replica of %s", url);
	r = getline(&line, &cap, f) > 0 && !strncmp(line, want, strlen(want)) &&
	    (line[strlen(want)] == '\n' || !line[strlen(want)]);
	fclose(f);
	if (!r)
		fprintf(stderr, "zerofs mount: '%s' is the cache-dir of another replica (%s%s): give "
			"this one an empty directory\n", dir,
			line && !strncmp(line, "zerofs replica of ", 18) ? "of " : "",
			line && !strncmp(line, "zerofs replica of ", 18) ? strtok(line + 18, "\n")
									   : "unreadable");
	free(line);
	return r ? 0 : 1;
}

int zf_cmd_mount(int argc, char **argv)
{
	static const struct option opts[] = { { "foreground", no_argument, NULL, 'f' },
					      { "debug", no_argument, NULL, 'd' },
					      { "cache-size", required_argument, NULL, 'C' },
					      { "options", required_argument, NULL, 'o' },
					      { "replica", required_argument, NULL, 'R' },
					      { "snapshot", required_argument, NULL, 'S' },
					      { NULL, 0, NULL, 0 } };
	struct zf_mount_opts mo;
	struct zf_conf conf;
	struct zf_daemon_opts o = { 0 };
	char url[ZF_REMOTE_URL_MAX], why[ZF_REMOTE_URL_MAX + 64];
	struct zf_devdir_err err;
	struct zf_devdir *dd;
	struct zf_fs *fs;
	struct stat st;
	int c, r;

	zf_mount_opts_init(&mo);
	/* zerofs.conf's settings first: the command line's override them */
	r = zf_tool_conf_load("mount", &conf);
	if (r)
		return r;
	r = zf_conf_apply_mount(&conf, &mo, why, sizeof(why));
	zf_conf_free(&conf);
	if (r < 0) {
		fprintf(stderr, "zerofs mount: %s\n", why);
		return 2;
	}
	while ((c = getopt_long(argc, argv, "fdo:snv", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			o.foreground = 1;
			break;
		case 'd':
			o.debug = 1;
			break;
		case 'o':
			if (zf_mount_opts_parse(optarg, &mo, why, sizeof(why)) < 0) {
				if (*why)
					fprintf(stderr, "zerofs mount: %s\n", why);
				return 2;
			}
			break;
		case 'C':
			if (zf_parse_size(optarg, &mo.dd.remote.local_budget) < 0) {
				fprintf(stderr, "zerofs mount: invalid cache size '%s'\n", optarg);
				return 2;
			}
			break;
		case 'R':
			if (!*optarg || strlen(optarg) >= sizeof(mo.replica)) {
				fprintf(stderr, "zerofs mount: invalid --replica '%s' (the writer's "
					"bucket URL)\n", optarg);
				return 2;
			}
			snprintf(mo.replica, sizeof(mo.replica), "%s", optarg);
			break;
		case 'S':
			if (!zf_snap_name_ok(optarg)) {
				fprintf(stderr, "zerofs mount: invalid --snapshot '%s' (a snapshot's "
					"name)\n", optarg);
				return 2;
			}
			snprintf(mo.snapshot, sizeof(mo.snapshot), "%s", optarg);
			break;
		case 's': /* mount(8): sloppy */
		case 'n': /* mount(8): no mtab */
		case 'v': /* mount(8): verbose */
			break;
		default:
			return zf_tool_bad_option(argv);
		}
	}
	if (optind != argc - 2) {
		fprintf(stderr, "zerofs mount: expected <dev-dir> <mountpoint>\n");
		return 2;
	}
	if (stat(argv[optind + 1], &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "zerofs mount: mountpoint '%s' is not a directory\n",
			argv[optind + 1]);
		return 1;
	}
	if (!mo.nonempty && !dir_is_empty(argv[optind + 1])) {
		fprintf(stderr, "zerofs mount: mountpoint '%s' is not empty: the mount would hide "
			"its files (-o nonempty mounts over them anyway)\n", argv[optind + 1]);
		return 1;
	}
	if (zf_tool_say_if_mounted("mount", argv[optind]))
		return 1; /* a second mount: where the first one is, not only 'in use' */
	if (mo.log_level != ZF_MOUNT_LOG_LEVEL_UNSET)
		zf_log_set_level(mo.log_level);
	o.log = *mo.log ? mo.log : NULL;
	o.fuse_opts = mo.fuse;
	o.commit_secs = mo.commit_secs;
	o.metrics_file = *mo.metrics_file ? mo.metrics_file : NULL;
	o.metrics_secs = mo.metrics_secs;
	o.timeout = mo.timeout;
	if (*mo.replica) {
		r = replica_prepare(argv[optind], mo.replica);
		if (r)
			return r;
		snprintf(url, sizeof(url), "%s", mo.replica);
		o.replica = 1;
	} else {
		zf_devdir_url(argv[optind], mo.dd.url, url, sizeof(url));
	}
	mo.dd.url = url;
	/* an empty dev-dir and a bucket: rebuild from the bucket first */
	if (!o.replica && zf_devdir_wants_restore(argv[optind], url) &&
	    zf_tool_restore("mount", url, argv[optind], 0, 0) != 0)
		return 1;
	if (*mo.snapshot) {
		if (!zf_snap_name_ok(mo.snapshot)) {
			fprintf(stderr, "zerofs mount: invalid snapshot name '%s'\n", mo.snapshot);
			return 2;
		}
		mo.dd.open.snapshot = mo.snapshot;
		o.snapshot = 1;
	}
	/* open before daemonizing: errors reach the terminal and the exit code */
	r = zf_devdir_open(argv[optind], o.snapshot ? ZF_DEVDIR_SNAPSHOT
				       : o.replica ? ZF_DEVDIR_REPLICA : ZF_DEVDIR_MOUNT,
			   &mo.dd, &dd, &err);
	if (r < 0 && err.at == ZF_DEVDIR_AT_CORE) {
		if (r != -EBUSY) /* the core said who holds it */
			fprintf(stderr, "zerofs mount: cannot open '%s': %s\n", argv[optind],
				strerror(-r));
		return 1;
	}
	if (r < 0) {
		/* a refusal (lease, another filesystem, a fork) said why above */
		int said = r == -EBUSY || r == -ESTALE || r == -EEXIST;

		fprintf(stderr, "zerofs mount: cannot use the object store '%s'%s%s\n", url,
			said ? "" : ": ", said ? "" : strerror(-r));
		return 1;
	}
	zf_devdir_hand_over(dd, &fs, &o.remote);
	r = zf_daemon_run(fs, argv[optind + 1], &o);
	return r < 0 ? 1 : r == ZF_DAEMON_PENDING ? ZF_EXIT_PENDING : 0;
}

