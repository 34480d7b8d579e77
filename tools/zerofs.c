/*
 * tools/zerofs.c - the zerofs command: parses arguments, calls the dev-dir
 * module (devdir/: how a dev-dir is formatted, opened for each command,
 * restored) and the core, prints, exits. The only place in the tree that
 * exits the process.
 *
 * Exit codes: 0 success, 1 usage error / operation failed, 2 bad arguments;
 * mkfs --restore --allow-loss: 3 restored, but less than the bucket held;
 * umount, mount -f: 3 unmounted, but uploads pending (tools/sync.h);
 * fsck follows e2fsck: 0 clean, 1 corrected, 4 errors left, 8 operational
 * (the dev-dir or the bucket could not be checked).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "daemon/control.h"
#include "daemon/daemon.h"
#include "devdir/devdir.h"
#include "devdir/mount_opts.h"
#include "devdir/mountinfo.h"
#include "devdir/remote_check.h"
#include "storage/fs.h"
#include "tier/remote.h"
#include "tools/wset.h"
#include "tools/sync.h"

#define FSCK_CLEAN 0
#define FSCK_CORRECTED 1
#define FSCK_ERRORS 4
#define FSCK_OPERATIONAL 8

static void usage(FILE *out)
{
	fprintf(out,
		"usage: zerofs <command> [options] <args>\n"
		"\n"
		"commands:\n"
		"  mkfs [--force] [--zstd-level N] [--remote URL|none] [--no-check] <dev-dir>\n"
		"                                               format a dev-dir; its bucket is\n"
		"                                               URL (default file://<dev-dir>.bucket),\n"
		"                                               checked first unless --no-check\n"
		"  mkfs --restore URL [--allow-loss] [--verify-data] <dev-dir>\n"
		"                                               rebuild a dev-dir from a bucket;\n"
		"                                               every metadata object is verified\n"
		"                                               and a damaged bucket refused, or with\n"
		"                                               --allow-loss restored as far as it\n"
		"                                               verifies, what is lost named (exit 3)\n"
		"  fsck [--verify-data] [--repair] [-q] <dev-dir>\n"
		"                                               check the store (and its bucket);\n"
		"                                               exit 0 clean, 1 repaired, 4 errors\n"
		"                                               left, 8 cannot check\n"
		"  mount [-f] [-d] [-o opts] <dev-dir> <mnt>    serve the filesystem at mnt; -f: exit\n"
		"                                               3 when it stops with uploads pending\n"
		"  umount [--timeout SECONDS] <mnt>             upload what is pending (progress on a\n"
		"                                               terminal), unmount, wait until flushed;\n"
		"                                               exit 3 when the bucket still lacks data\n"
		"                                               (it stays in the dev-dir and the next\n"
		"                                               mount uploads it)\n"
		"  stats <mnt|dev-dir>                          space, dedup and compression; what is\n"
		"                                               pending upload (a dev-dir: read from\n"
		"                                               it, without the bucket); offline since\n"
		"  sync [--timeout SECONDS] <mnt>               return once all written is in the\n"
		"                                               bucket (progress on a terminal); give\n"
		"                                               up, exit 1 and say what is pending once\n"
		"                                               the bucket took nothing for SECONDS\n"
		"                                               (default: the mount's write_wait)\n"
		"  gc [--dry-run] [--max-waste PCT] <dev-dir|mnt>\n"
		"                                               reclaim the space of deleted data,\n"
		"                                               locally and in the bucket; rewrite\n"
		"                                               segments until at most PCT %% (5) of\n"
		"                                               the live bytes are dead\n"
		"  lease-break [--force] <URL>                  free a bucket whose writer is gone\n"
		"                                               (--force: even if it lives here)\n"
		"  pin <path>...                                keep files local, for offline work\n"
		"                                               (directories: recursively, and what\n"
		"                                               is made in them); unpin undoes it\n"
		"  warmup <path>...                             fetch files now (directories too)\n"
		"  evict <path>...                              drop local copies the bucket holds\n"
		"  status [-b] <path>...                        bytes local, only in the bucket,\n"
		"                                               pending upload; pinned\n"
		"\n"
		"mount options (-o, comma-separated): remote=URL, cache_size=SIZE (dev-dir\n"
		"  budget, e.g. 64M; also --cache-size), fetch_timeout=SECONDS (30),\n"
		"  write_wait=SECONDS (120), max_delay=SECONDS (1), commit=SECONDS (5),\n"
		"  merge_after=N (small segments merged once N went up, 64),\n"
		"  timeout=SECONDS (attribute cache, 1), ckpt=MIB (log written between\n"
		"  checkpoints, 64), mem=SIZE (memory of the data path: write buffers,\n"
		"  compression pipeline, decompressed cache; 256M),\n"
		"  nonempty (mount over a directory that is not empty), any FUSE option\n"
		"  (allow_other, ro, ...); as\n"
		"  mount.zerofs the command also serves mount(8) and /etc/fstab:\n"
		"  'zerofs#/dev-dir /mnt fuse.zerofs defaults 0 0' or 'mount -t fuse.zerofs'\n"
		"\n"
		"options: -h, --help    this text\n"
		"         -V, --version print the version\n");
}

/* what a restore says: the first damage as the reason, then one line each */
struct restore_out {
	const char *cmd, *url;
	int allow_loss;
	unsigned int damage;
};

static void restore_line(void *ctx, int kind, const char *msg)
{
	struct restore_out *o = ctx;

	if (kind == ZF_RESTORE_DAMAGE && !o->allow_loss && !o->damage++)
		fprintf(stderr, "zerofs %s: bucket '%s' is damaged: %s\n", o->cmd, o->url, msg);
	else if (kind == ZF_RESTORE_DAMAGE && !o->allow_loss)
		fprintf(stderr, "zerofs %s: also: %s\n", o->cmd, msg);
	else if (kind == ZF_RESTORE_DAMAGE)
		fprintf(stderr, "zerofs %s: lost: %s\n", o->cmd, msg);
	else if (kind == ZF_RESTORE_UNUSED)
		fprintf(stderr, "zerofs %s: %s: %s\n", o->cmd,
			o->allow_loss ? "could not use" : "also unusable", msg);
	else
		fprintf(stderr, "zerofs %s: warning: %s\n", o->cmd, msg);
}

/*
 * Restore dev from url and point it at url. Returns the exit code: 0, 1
 * (refused or failed, the dev-dir as it was), 3 (allow_loss: restored with
 * less than the bucket held, each loss said).
 */
static int restore_dev(const char *cmd, const char *url, const char *dev, int allow_loss,
		       int verify)
{
	struct restore_out out = { .cmd = cmd, .url = url, .allow_loss = allow_loss };
	struct zf_restore_opts ro = { .allow_loss = allow_loss, .verify_data = verify,
				      .say = restore_line, .ctx = &out };
	struct zf_restore_report rep = { 0 };
	int r;

	r = zf_devdir_restore(dev, url, &ro, &rep);
	if (r == -EBADMSG) {
		fprintf(stderr, "zerofs %s: nothing restored into '%s'%s\n", cmd, dev,
			allow_loss ? "" : " (--allow-loss restores what verifies and names what "
				     "is lost: 'zerofs mkfs --restore URL --allow-loss DIR')");
		return 1;
	}
	if (r < 0) {
		fprintf(stderr, "zerofs %s: cannot restore '%s' from '%s': %s\n", cmd, dev, url,
			strerror(-r));
		return 1;
	}
	if (rep.lost_from)
		fprintf(stderr, "zerofs %s: lost: log records 0x%llx..0x%llx (restored up to "
			"0x%llx)\n", cmd, (unsigned long long)rep.lost_from,
			(unsigned long long)rep.lost_to, (unsigned long long)rep.seq);
	if (rep.beyond)
		fprintf(stderr, "zerofs %s: the bucket keeps log pieces past what was restored: a "
			"mount of '%s' will refuse to upload there (give it a new bucket with -o "
			"remote=URL)\n", cmd, dev);
	if (rep.problems || rep.lost_from) {
		printf("restored '%s' from '%s' INCOMPLETE: %u problems (see above)\n", dev, url,
		       rep.problems);
		return 3;
	}
	printf("restored '%s' from '%s'\n", dev, url);
	return 0;
}

static int cmd_mkfs(int argc, char **argv)
{
	static const struct option opts[] = { { "force", no_argument, NULL, 'f' },
					      { "zstd-level", required_argument, NULL, 'z' },
					      { "remote", required_argument, NULL, 'r' },
					      { "restore", required_argument, NULL, 'R' },
					      { "allow-loss", no_argument, NULL, 'L' },
					      { "verify-data", no_argument, NULL, 'd' },
					      { "no-check", no_argument, NULL, 'N' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	struct zf_mkfs_opts mo = { 0 };
	const char *remote = NULL, *restore = NULL;
	int c, r, allow_loss = 0, verify = 0, check = 1;
	char url[ZF_REMOTE_URL_MAX], why[ZF_REMOTE_URL_MAX + 256];
	struct zf_devdir_err err;
	long level;

	while ((c = getopt_long(argc, argv, "fz:r:R:h", opts, NULL)) != -1) {
		switch (c) {
		case 'L':
			allow_loss = 1;
			break;
		case 'd':
			verify = 1;
			break;
		case 'N':
			check = 0;
			break;
		case 'r':
			remote = optarg;
			break;
		case 'R':
			restore = optarg;
			break;
		case 'f':
			mo.force = 1;
			break;
		case 'z':
			if (zf_parse_int(optarg, 1, 19, &level) < 0) {
				fprintf(stderr, "zerofs mkfs: invalid zstd level '%s' (1..19)\n", optarg);
				return 2;
			}
			mo.zstd_level = level;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "zerofs mkfs: expected one dev-dir\n");
		return 2;
	}
	if ((allow_loss || verify) && !restore) {
		fprintf(stderr, "zerofs mkfs: --allow-loss and --verify-data go with --restore\n");
		return 2;
	}
	if (restore)
		return restore_dev("mkfs", restore, argv[optind], allow_loss, verify);
	if (remote && check) {
		/* the reason is the one line: the store's own log lines would repeat it */
		zf_log_set_level(ZF_LOG_NONE);
		r = zf_devdir_check_remote(remote, why, sizeof(why));
		zf_log_set_level(ZF_LOG_WARN);
		if (r < 0) {
			fprintf(stderr, "zerofs mkfs: %s; nothing formatted (--no-check skips this "
				"check)\n", why);
			return r == -EINVAL ? 2 : 1;
		}
	}
	r = zf_devdir_mkfs(argv[optind], &mo, remote, url, sizeof(url), &err);
	if (r < 0 && err.at == ZF_DEVDIR_AT_CORE) {
		if (r != -EEXIST && r != -ENOTEMPTY) /* else the core said why */
			fprintf(stderr, "zerofs mkfs: cannot format '%s': %s\n", argv[optind],
				strerror(-r));
		return 1;
	}
	if (r < 0) {
		fprintf(stderr, "zerofs mkfs: cannot write '%s/remote.conf': %s\n", argv[optind],
			strerror(-r));
		return 1;
	}
	printf("formatted '%s' (object store: %s)\n", argv[optind], url);
	return 0;
}

/*
 * When a zerofs daemon in this namespace serves dev, say where, its pid and
 * what to do instead of cmd ("fsck" or "gc"), and return 1; else 0.
 */
static int say_if_mounted(const char *cmd, const char *dev)
{
	char mnt[4096], pid[32] = "";
	pid_t p;

	if (zf_mount_of_devdir(dev, mnt, sizeof(mnt)) < 0)
		return 0;
	if (zf_control_daemon_pid(dev, &p) == 0)
		snprintf(pid, sizeof(pid), ", daemon pid %d", (int)p);
	if (!strcmp(cmd, "gc"))
		fprintf(stderr, "zerofs gc: '%s' is mounted on '%s'%s: run 'zerofs gc %s' to "
			"collect while it serves, or unmount it first ('zerofs umount %s')\n", dev,
			mnt, pid, mnt, mnt);
	else
		fprintf(stderr, "zerofs %s: '%s' is mounted on '%s'%s: unmount it first "
			"('zerofs umount %s')\n", cmd, dev, mnt, pid, mnt);
	return 1;
}

/*
 * Is arg not something cmd can open as a dev-dir? Then say why in one line
 * (or_mnt: cmd also takes a mountpoint) and return 1.
 */
static int say_if_not_devdir(const char *cmd, const char *arg, int or_mnt)
{
	int r = zf_devdir_identify(arg);

	if (r == -EMEDIUMTYPE)
		fprintf(stderr, "zerofs %s: '%s' is %s zerofs dev-dir (no superblock; 'zerofs "
			"mkfs' formats one)\n", cmd, arg,
			or_mnt ? "neither a zerofs mountpoint nor a" : "not a");
	else if (r < 0)
		fprintf(stderr, "zerofs %s: cannot open '%s': %s\n", cmd, arg, strerror(-r));
	return r < 0;
}

/* what fsck prints: problems and notes on stdout, the progress bar on a terminal */
struct fsck_out {
	int quiet;
	int bar;		/* a progress line is on stderr now */
};

static void fsck_clear_bar(struct fsck_out *o)
{
	if (o->bar) {
		fprintf(stderr, "\r\033[K");
		o->bar = 0;
	}
}

static void fsck_problem(void *ctx, const char *msg)
{
	struct fsck_out *o = ctx;

	fsck_clear_bar(o);
	if (!o->quiet)
		printf("problem: %s\n", msg);
	fflush(stdout);
}

static void fsck_note(void *ctx, const char *msg)
{
	struct fsck_out *o = ctx;

	fsck_clear_bar(o);
	if (!o->quiet)
		printf("note: %s\n", msg);
	fflush(stdout);
}

static void fsck_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct fsck_out *o = ctx;

	if (done >= total) {
		fsck_clear_bar(o);
		return;
	}
	fprintf(stderr, "\rfsck: chunks %llu/%llu (%llu%%)", (unsigned long long)done,
		(unsigned long long)total, (unsigned long long)(total ? done * 100 / total : 0));
	o->bar = 1;
}

/*
 * One pass: open tolerantly (writable when repairing), attach the bucket
 * read-only, check the table and the bucket. Returns 0 with the counts, or
 * -1 when the dev-dir cannot be checked at all (said why). *ret_unchecked:
 * the bucket did not answer (said why): the results are incomplete.
 */
static int fsck_pass(const char *dev, int verify, int repair, struct fsck_out *out,
		     uint64_t *ret_errors, uint64_t *ret_repaired, int *ret_unchecked)
{
	struct zf_devdir_opts oo = { .repair = repair };
	struct zf_check_report rep = { 0 };
	struct zf_remote_audit au = { 0 };
	struct zf_devdir *dd;
	char why[400];
	int r;

	/* evicted segments are checked in the bucket, and the bucket itself */
	r = zf_devdir_open(dev, ZF_DEVDIR_FSCK, &oo, &dd, NULL);
	if (r == -EBADMSG) {
		/* what even a tolerant load cannot read past: the superblock */
		printf("'%s': metadata is corrupt beyond repair (see the error above)\n", dev);
		*ret_errors = 1;
		*ret_repaired = 0;
		return 1;
	}
	if (r < 0) {
		if (r != -EBUSY) /* the core named the holder */
			fprintf(stderr, "zerofs fsck: cannot open '%s': %s\n", dev, strerror(-r));
		return -1;
	}
	if (dd->bucket == ZF_DEVDIR_UNUSED) {
		fsck_note(out, "the bucket cannot be opened, but nothing has been uploaded to "
			  "it yet: only the dev-dir is checked");
	} else if (dd->bucket == ZF_DEVDIR_UNREACHABLE) {
		*ret_unchecked = 1;
		fprintf(stderr, "zerofs fsck: the bucket '%s' is unreachable: evicted data "
				"cannot be checked%s\n", dd->url, repair ? ", nothing repaired" : "");
		if (repair) { /* absent is not damaged: never mark data on a guess */
			zf_devdir_close(dd);
			return -1;
		}
	}
	rep.problem = au.problem = fsck_problem;
	rep.note = au.note = fsck_note;
	rep.progress = isatty(2) && !out->quiet ? fsck_progress : NULL;
	rep.ctx = au.ctx = out;
	rep.verify_data = verify;
	rep.repair = repair;
	r = zf_devdir_check(dd, &rep, &au);
	fsck_clear_bar(out);
	if (rep.unchecked)
		*ret_unchecked = 1; /* what could not be read is not known clean */
	if (r == 0 || r == -EUCLEAN) {
		*ret_errors = rep.errors + au.errors;
		*ret_repaired = rep.repaired + au.repaired;
		r = 0;
	}
	/* an outage is no answer: never a mismatch, never clean */
	if (zf_devdir_bucket_failed(dd, why, sizeof(why))) {
		fprintf(stderr, "zerofs fsck: cannot check the bucket '%s': %s\n", dd->url, why);
		*ret_unchecked = 1;
	}
	/*
	 * A repair that found nothing to repair leaves the dev-dir as it was:
	 * no closing checkpoint (what the open committed is in the log), so
	 * the log the bucket's pieces are compared with stays.
	 */
	if (repair && r == 0 && !rep.errors && !au.errors)
		zf_devdir_abandon(dd);
	else if (zf_devdir_close(dd) < 0 && r == 0 && repair) {
		fprintf(stderr, "zerofs fsck: cannot write the repaired state of '%s'\n", dev);
		r = -EIO;
	}
	if (r < 0) {
		fprintf(stderr, "zerofs fsck: checking '%s' failed: %s\n", dev, strerror(-r));
		return -1;
	}
	if (!out->quiet)
		printf("'%s': %llu inodes, %llu entries, %llu chunks, %llu bucket objects%s: %s\n",
		       dev, (unsigned long long)rep.inodes, (unsigned long long)rep.dirents,
		       (unsigned long long)rep.chunks, (unsigned long long)au.objects,
		       verify ? " (data verified)" : "",
		       *ret_unchecked ? "the bucket could not be checked"
		       : !*ret_errors ? "clean" : repair ? "errors found, repaired" : "errors found");
	return 0;
}

/*
 * Before the check: lost metadata (the superblock, a checkpoint, log
 * records) that the bucket still holds. Without --repair it is a problem
 * saying so; with it, storage/meta_heal.c rebuilds meta/ from the bucket
 * and the check then runs on the rebuilt state. Returns the problems (1)
 * or repairs (1) it counted, 0 when there is nothing to heal.
 */
static int fsck_heal_meta(const char *dev, int repair, struct fsck_out *out,
			  uint64_t *ret_repaired)
{
	struct zf_meta_heal mh;
	char msg[600];

	if (zf_devdir_heal_meta(dev, repair, &mh) < 0)
		return 0; /* the check says what it cannot read */
	if (mh.superblock) {
		snprintf(msg, sizeof(msg), repair ? "repair: the superblock was %s: replaced by "
			 "the bucket's copy" : "the superblock is %s; the bucket holds a good copy "
			 "(--repair puts it back)", mh.sb_what);
		(repair ? fsck_note : fsck_problem)(out, msg);
		*ret_repaired += repair;
	}
	if (!mh.needed || !mh.possible)
		return mh.superblock; /* else the check names the damage */
	snprintf(msg, sizeof(msg), "metadata: %s; the bucket holds them: checkpoint %llu%s and "
		 "records to %llu (%llu of them from the bucket)", mh.why,
		 (unsigned long long)mh.base, mh.base_remote ? " (the bucket's)" : "",
		 (unsigned long long)mh.end, (unsigned long long)mh.from_bucket);
	if (!repair) {
		fsck_problem(out, msg);
		return 1;
	}
	if (!mh.done)
		return mh.superblock;
	snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), ": rebuilt from the bucket (the "
		 "replaced files are kept in meta/replaced.*)");
	fsck_note(out, msg);
	*ret_repaired += 1;
	return 1;
}

static int cmd_fsck(int argc, char **argv)
{
	static const struct option opts[] = { { "verify-data", no_argument, NULL, 'd' },
					      { "repair", no_argument, NULL, 'r' },
					      { "quiet", no_argument, NULL, 'q' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	struct fsck_out out = { 0 };
	uint64_t errors = 0, repaired = 0, healed_n = 0;
	char dev[4096];
	int c, verify = 0, repair = 0, unchecked = 0, healed;

	while ((c = getopt_long(argc, argv, "drqh", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			verify = 1;
			break;
		case 'r':
			repair = 1;
			break;
		case 'q':
			out.quiet = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return FSCK_OPERATIONAL;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "zerofs fsck: expected one dev-dir\n");
		return FSCK_OPERATIONAL;
	}
	if (zf_devdir_of_mount(argv[optind], dev, sizeof(dev)) == 0) {
		fprintf(stderr, "zerofs fsck: '%s' is a zerofs mountpoint (of '%s'): unmount it "
			"first ('zerofs umount %s'), then check the dev-dir\n", argv[optind], dev,
			argv[optind]);
		return FSCK_OPERATIONAL;
	}
	if (say_if_not_devdir("fsck", argv[optind], 0) || say_if_mounted("fsck", argv[optind]))
		return FSCK_OPERATIONAL;
	healed = fsck_heal_meta(argv[optind], repair, &out, &healed_n);
	c = fsck_pass(argv[optind], verify, repair, &out, &errors, &repaired, &unchecked);
	errors += healed;
	repaired += healed_n;
	if (c < 0 || unchecked)
		return FSCK_OPERATIONAL;
	if (c > 0)
		return FSCK_ERRORS; /* unreadable superblock: nothing to repair from */
	if (!errors)
		return FSCK_CLEAN;
	if (!repair)
		return FSCK_ERRORS;
	/* what is left after the repair: the same checks on the repaired state */
	if (!out.quiet)
		printf("checking '%s' again after %llu repairs\n", argv[optind],
		       (unsigned long long)repaired);
	errors = 0;
	if (fsck_pass(argv[optind], verify, 0, &out, &errors, &repaired, &unchecked) < 0 ||
	    unchecked)
		return FSCK_OPERATIONAL;
	return errors ? FSCK_ERRORS : FSCK_CORRECTED;
}

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

static int cmd_mount(int argc, char **argv)
{
	static const struct option opts[] = { { "foreground", no_argument, NULL, 'f' },
					      { "debug", no_argument, NULL, 'd' },
					      { "cache-size", required_argument, NULL, 'C' },
					      { "options", required_argument, NULL, 'o' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	struct zf_mount_opts mo = { 0 };
	struct zf_daemon_opts o = { 0 };
	char url[ZF_REMOTE_URL_MAX], why[ZF_REMOTE_URL_MAX + 64];
	struct zf_devdir_err err;
	struct zf_devdir *dd;
	struct zf_fs *fs;
	struct stat st;
	int c, r;

	while ((c = getopt_long(argc, argv, "fdo:hsn", opts, NULL)) != -1) {
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
		case 's': /* mount(8): sloppy */
		case 'n': /* mount(8): no mtab */
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return 2;
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
	o.fuse_opts = mo.fuse;
	o.commit_secs = mo.commit_secs;
	o.timeout = mo.timeout;
	zf_devdir_url(argv[optind], mo.dd.url, url, sizeof(url));
	mo.dd.url = url;
	/* an empty dev-dir and a bucket: rebuild from the bucket first */
	if (zf_devdir_wants_restore(argv[optind], url) &&
	    restore_dev("mount", url, argv[optind], 0, 0) != 0)
		return 1;
	/* open before daemonizing: errors reach the terminal and the exit code */
	r = zf_devdir_open(argv[optind], ZF_DEVDIR_MOUNT, &mo.dd, &dd, &err);
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

static int cmd_gc(int argc, char **argv)
{
	static const struct option opts[] = { { "dry-run", no_argument, NULL, 'n' },
					      { "max-waste", required_argument, NULL, 'w' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	struct zf_gc_opts o = { .max_waste = ZF_GC_MAX_WASTE };
	struct zf_gc_report rep;
	char dev[4096], cmd[64];
	int c, r, mounted;
	long pct;

	while ((c = getopt_long(argc, argv, "nw:h", opts, NULL)) != -1) {
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
		case 'h':
			usage(stdout);
			return 0;
		default:
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "zerofs gc: expected one dev-dir or mountpoint\n");
		return 2;
	}
	mounted = zf_devdir_resolve(argv[optind], dev, sizeof(dev));
	if (mounted) {
		snprintf(cmd, sizeof(cmd), "gc %d %.9f", o.dry_run, o.max_waste);
		r = zf_control_call(dev, cmd, stdout);
		if (r < 0) {
			fprintf(stderr, "zerofs gc: '%s': %s\n", argv[optind],
				r == -ENOTCONN ? "no daemon answers" : "gc failed (see above)");
			return 1;
		}
		return 0;
	}
	if (say_if_not_devdir("gc", dev, 1) || say_if_mounted("gc", dev))
		return 1;
	r = gc_unmounted(dev, &o, &rep);
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

static int cmd_lease_break(int argc, char **argv)
{
	static const struct option opts[] = { { "force", no_argument, NULL, 'f' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	char until[80], mnt[4096], holder[4600] = "";
	struct zf_lease_info li;
	int c, r, force = 0;
	const char *url;

	while ((c = getopt_long(argc, argv, "fh", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			force = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "zerofs lease-break: expected the bucket's URL\n");
		return 2;
	}
	url = argv[optind];
	r = zf_remote_lease_read(url, NULL, &li);
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

static int cmd_stats(int argc, char **argv)
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
	if (!mounted && say_if_not_devdir("stats", dev, 1))
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

int main(int argc, char **argv)
{
	const char *cmd;

	zf_log_init("zerofs", 0, ZF_LOG_WARN);
	/* mount(8) runs us as mount.zerofs <dev-dir> <mnt> [-o opts] */
	if (!strcmp(basename(argv[0]), "mount.zerofs") ||
	    !strcmp(basename(argv[0]), "mount.fuse.zerofs")) {
		argv[0] = "mount";
		if (argc > 1 && !strncmp(argv[1], "zerofs#", 7))
			argv[1] += 7;
		return cmd_mount(argc, argv);
	}
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version")) {
		printf("zerofs %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "mkfs"))
		return cmd_mkfs(argc - 1, argv + 1);
	if (!strcmp(cmd, "fsck"))
		return cmd_fsck(argc - 1, argv + 1);
	if (!strcmp(cmd, "stats"))
		return cmd_stats(argc - 1, argv + 1);
	if (!strcmp(cmd, "mount"))
		return cmd_mount(argc - 1, argv + 1);
	if (!strcmp(cmd, "sync"))
		return zf_cmd_sync(argc - 1, argv + 1);
	if (!strcmp(cmd, "gc"))
		return cmd_gc(argc - 1, argv + 1);
	if (!strcmp(cmd, "lease-break"))
		return cmd_lease_break(argc - 1, argv + 1);
	if (!strcmp(cmd, "umount") || !strcmp(cmd, "unmount"))
		return zf_cmd_umount(argc - 1, argv + 1);
	if (!strcmp(cmd, "pin") || !strcmp(cmd, "unpin"))
		return zf_cmd_pin(argc - 1, argv + 1, !strcmp(cmd, "pin"));
	if (!strcmp(cmd, "warmup"))
		return zf_cmd_warmup(argc - 1, argv + 1);
	if (!strcmp(cmd, "evict"))
		return zf_cmd_evict(argc - 1, argv + 1);
	if (!strcmp(cmd, "status"))
		return zf_cmd_status(argc - 1, argv + 1);
	fprintf(stderr, "zerofs: unknown command '%s' (try 'zerofs --help')\n", cmd);
	return 2;
}
