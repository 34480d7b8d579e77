/*
 * tools/fsck.c - zerofs fsck: check a dev-dir and its bucket, repair
 * with --repair, and say so the way e2fsck does: exit 0 clean, 1
 * corrected, 4 errors left, 8 operational (the dev-dir or the bucket could
 * not be checked, or it is mounted). Problems and notes on stdout, a
 * progress bar on stderr when it is a terminal.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/progress.h"
#include "devdir/devdir.h"
#include "devdir/mountinfo.h"
#include "tools/commands.h"

#define FSCK_CLEAN 0
#define FSCK_CORRECTED 1
#define FSCK_ERRORS 4
#define FSCK_OPERATIONAL 8

/* what fsck prints: problems and notes on stdout, the progress bar on a terminal */
struct fsck_out {
	int quiet;
	struct zf_progress bar;	/* on stderr, when it is a terminal */
};

static void fsck_clear_bar(struct fsck_out *o)
{
	zf_progress_clear(&o->bar);
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

	zf_progress_update(&o->bar, done, total, NULL);
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
	zf_progress_init(&out->bar, "fsck", "chunks");
	rep.progress = out->quiet ? NULL : fsck_progress;
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

int zf_cmd_fsck(int argc, char **argv)
{
	static const struct option opts[] = { { "verify-data", no_argument, NULL, 'd' },
					      { "repair", no_argument, NULL, 'r' },
					      { "quiet", no_argument, NULL, 'q' },
					      { NULL, 0, NULL, 0 } };
	struct fsck_out out = { 0 };
	uint64_t errors = 0, repaired = 0, healed_n = 0;
	char dev[4096];
	int c, verify = 0, repair = 0, unchecked = 0, healed;

	while ((c = getopt_long(argc, argv, "drq", opts, NULL)) != -1) {
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
		default:
			zf_tool_bad_option(argv);
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
	if (zf_tool_say_if_not_devdir("fsck", argv[optind], 0) || zf_tool_say_if_mounted("fsck", argv[optind]))
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

