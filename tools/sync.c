/*
 * tools/sync.c - zerofs sync and zerofs umount: wait for the bucket, say
 * how it goes, give up after a stated time, and say what is left
 *
 * Both ask the daemon for a sync over the control socket ("sync <timeout
 * ms>", daemon/control.h): it gives up once the bucket has taken nothing
 * for the timeout (--timeout; default the mount's write_wait) and sends a
 * progress line a second, shown on a terminal as one line that rewrites
 * itself (pending bytes, segments, log records, upload rate, an outage);
 * nothing is shown when stderr is not a terminal. A sync that gives up
 * says why and what the bucket lacks, and exits 1.
 *
 * umount syncs first (so the unmount's own flush has little to ship and
 * the user sees it go), then unmounts whatever the sync said (retrying a
 * busy mountpoint for a few seconds), waits for the daemon to let go of
 * the dev-dir, and reads from the dev-dir itself what the bucket lacks:
 * the truth after the daemon's last upload, not a guess. Exit 0 when the
 * bucket holds everything, ZF_EXIT_PENDING when it does not (the data
 * stays in the dev-dir; the next mount uploads it), 1 when the unmount
 * failed.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/progress.h"
#include "common/util.h"
#include "daemon/control.h"
#include "devdir/devdir.h"
#include "devdir/mount_opts.h"
#include "devdir/mountinfo.h"
#include "tools/commands.h"
#include "tools/sync.h"

/* a busy mountpoint (a process closing its last file) is retried this often, this long */
#define BUSY_RETRY_MS 200
#define BUSY_RETRIES 25
/* the daemon's flush after the unmount: at least this long (a big write buffer, a slow disk) */
#define RELEASE_WAIT_MIN_S 60

/* the progress line on a terminal: uploaded of what was pending at the start */
struct progress {
	struct zf_progress bar;
	int started;
	unsigned long long up0;	/* uploaded bytes at the first report */
};

/* one "progress" line of the daemon (control.h) */
static void progress_show(void *ctx, const char *line)
{
	struct progress *p = ctx;
	unsigned long long bytes, segs, recs, up;
	long long off;
	char note[64] = "", when[16];

	if (sscanf(line, "%llu %llu %llu %llu %lld", &bytes, &segs, &recs, &up, &off) != 5)
		return;
	if (!p->started) {
		p->started = 1;
		p->up0 = up;
	}
	if (off) {
		time_t t = (time_t)off;
		struct tm tm;

		if (localtime_r(&t, &tm) && strftime(when, sizeof(when), "%H:%M:%S", &tm))
			snprintf(note, sizeof(note), ", bucket offline since %s", when);
	}
	/* done: what went up since the start; total: that and what is still pending */
	up = up >= p->up0 ? up - p->up0 : 0;
	zf_progress_update(&p->bar, up, up + bytes, note);
}

/*
 * Ask the daemon serving dev for a sync giving up after timeout_s without
 * progress (0: its write_wait), progress shown as cmd. 0, -ENOTCONN (no
 * daemon answers), or -EIO with the daemon's reason in why.
 */
static int sync_daemon(const char *cmd, const char *dev, unsigned int timeout_s, char *why,
		       size_t len)
{
	struct progress p = { 0 };
	char req[64], *text = NULL;
	size_t tlen = 0;
	FILE *answer;
	int r;

	snprintf(req, sizeof(req), "sync %llu", (unsigned long long)timeout_s * 1000);
	answer = open_memstream(&text, &tlen);
	if (!answer)
		return -ENOMEM;
	zf_progress_init(&p.bar, cmd, NULL);
	r = zf_control_call_progress(dev, req, progress_show, &p, answer);
	fclose(answer);
	zf_progress_clear(&p.bar);
	if (text && tlen && text[tlen - 1] == '\n')
		text[tlen - 1] = 0;
	snprintf(why, len, "%s", text && *text ? text : strerror(-r));
	free(text);
	return r;
}

/* --timeout SECONDS of sync and umount (--help: tools/zerofs.c); the first operand's index or -1 */
static int parse_timeout(const char *cmd, int argc, char **argv, unsigned int *ret)
{
	static const struct option opts[] = { { "timeout", required_argument, NULL, 't' },
					      { NULL, 0, NULL, 0 } };
	long v;
	int c;

	while ((c = getopt_long(argc, argv, "t:", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (zf_parse_int(optarg, 1, 86400 * 365, &v) < 0) {
				fprintf(stderr, "zerofs %s: --timeout wants seconds (1 or more), not "
					"'%s'\n", cmd, optarg);
				return -1;
			}
			*ret = v;
			break;
		default:
			zf_tool_bad_option(argv);
			return -1;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "zerofs %s: expected one mountpoint\n", cmd);
		return -1;
	}
	return optind;
}

int zf_cmd_sync(int argc, char **argv)
{
	unsigned int timeout = 0;
	char dev[4096], why[2048];
	int r, i;

	i = parse_timeout("sync", argc, argv, &timeout);
	if (i < 0)
		return 2;
	if (!zf_devdir_resolve(argv[i], dev, sizeof(dev))) {
		fprintf(stderr, "zerofs sync: '%s' is not a zerofs mount\n", argv[i]);
		return 1;
	}
	r = sync_daemon("sync", dev, timeout, why, sizeof(why));
	if (r == -ENOTCONN)
		fprintf(stderr, "zerofs sync: '%s' could not be made durable: no daemon answers\n",
			argv[i]);
	else if (r < 0)
		fprintf(stderr, "zerofs sync: '%s' could not be made durable: %s; it stays in the "
			"dev-dir: the uploader retries, and the next mount resumes it\n", argv[i], why);
	return r < 0;
}

/*
 * fusermount3 -u mnt, its complaint (if any) in err. 0, -EBUSY (the
 * mountpoint is busy), or -EIO.
 */
static int fusermount_u(const char *mnt, char *err, size_t len)
{
	int pfd[2], status;
	size_t n = 0;
	ssize_t k;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid == 0) {
		dup2(pfd[1], 2);
		execlp("fusermount3", "fusermount3", "-u", mnt, (char *)NULL);
		fprintf(stderr, "cannot run fusermount3: %s", strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	while (pid > 0 && n + 1 < len && (k = read(pfd[0], err + n, len - 1 - n)) > 0)
		n += k;
	err[n] = 0;
	err[strcspn(err, "\n")] = 0;
	close(pfd[0]);
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return -EIO;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	return strstr(err, "busy") ? -EBUSY : -EIO;
}

/* after the daemon let go: what the bucket lacks, said; the exit code */
static int umount_verdict(const char *mnt, const char *dev, int synced, const char *why)
{
	struct zf_remote_pending p;
	char lacks[160], reason[2048];
	struct zf_devdir *dd;
	int r;

	/* the sync's reason without what it lacked then: said below as it is now */
	snprintf(reason, sizeof(reason), "%s", why);
	if (strstr(reason, ZF_REMOTE_LACKS))
		*strstr(reason, ZF_REMOTE_LACKS) = 0;

	zf_log_set_level(ZF_LOG_NONE); /* a failure here is said below */
	r = zf_devdir_open(dev, ZF_DEVDIR_STATS, NULL, &dd, NULL);
	zf_log_set_level(ZF_LOG_WARN);
	if (r == 0) {
		r = zf_devdir_pending(dd, &p);
		if (r == 0 && (p.bytes || p.segs || p.records)) {
			zf_remote_pending_say(&p, lacks, sizeof(lacks));
			fprintf(stderr, "zerofs umount: '%s' is unmounted, but %s are not in the "
				"bucket %s%s%s: they stay in the dev-dir '%s', and the next mount "
				"uploads them\n", mnt, lacks, synced ? "'" : "(",
				synced ? dd->url : reason, synced ? "'" : ")", dev);
		}
		zf_devdir_close(dd);
		if (r == -ENOENT)
			return 0; /* no bucket: the dev-dir is all there is */
		if (r == 0)
			return p.bytes || p.segs || p.records ? ZF_EXIT_PENDING : 0;
	}
	if (synced)
		return 0;
	fprintf(stderr, "zerofs umount: '%s' is unmounted, but not everything reached the "
		"bucket (%s): it stays in the dev-dir '%s', and the next mount uploads it\n",
		mnt, why, dev);
	return ZF_EXIT_PENDING;
}

/*
 * Wait up to wait_s for the daemon's flush after the unmount (it lets go of
 * the dev-dir last), saying on a terminal how long it has taken so far.
 * 0, -ETIMEDOUT or -errno as zf_devdir_wait_released.
 */
static int wait_flushed(const char *dev, unsigned int wait_s)
{
	uint64_t t0 = zf_mono_ns(), waited_ms = 0;
	struct zf_progress bar;
	char note[80];
	int r;

	zf_progress_init(&bar, "umount", NULL);
	for (;;) {
		/* a quarter of a second at a time: the line moves, the wait ends soon after */
		r = zf_devdir_wait_released(dev, 250);
		waited_ms = (zf_mono_ns() - t0) / 1000000;
		if (r != -ETIMEDOUT || waited_ms >= (uint64_t)wait_s * 1000)
			break;
		if (waited_ms < 1000)
			continue;	/* the usual case: nothing worth a line */
		snprintf(note, sizeof(note), "the daemon's last flush, %llu s",
			 (unsigned long long)waited_ms / 1000);
		zf_progress_say(&bar, note);
	}
	zf_progress_clear(&bar);
	return r;
}

int zf_cmd_umount(int argc, char **argv)
{
	unsigned int timeout = 0, wait_s;
	char dev[4096], why[2048] = "", err[512];
	int r, i, tries, synced, ro;
	struct statvfs sv;

	i = parse_timeout("umount", argc, argv, &timeout);
	if (i < 0)
		return 2;
	if (zf_devdir_of_mount(argv[i], dev, sizeof(dev)) < 0) {
		fprintf(stderr, "zerofs umount: '%s' is not a zerofs mount\n", argv[i]);
		return 1;
	}
	/* a read-only mount (a replica, a snapshot) uploads nothing: none is pending for it */
	ro = statvfs(argv[i], &sv) == 0 && (sv.f_flag & ST_RDONLY);
	/* a daemon that does not answer (gone, or no socket) is unmounted all the same */
	r = sync_daemon("umount", dev, timeout, why, sizeof(why));
	synced = r == 0 || r == -ENOTCONN;
	for (tries = 0;; tries++) {
		r = fusermount_u(argv[i], err, sizeof(err));
		if (r != -EBUSY || tries >= BUSY_RETRIES)
			break;
		usleep(BUSY_RETRY_MS * 1000);
	}
	if (r < 0) {
		fprintf(stderr, "zerofs umount: cannot unmount '%s': %s\n", argv[i],
			*err ? err : strerror(-r));
		return 1;
	}
	/* the daemon holds the dev-dir lock until everything is flushed */
	wait_s = timeout > RELEASE_WAIT_MIN_S ? timeout : RELEASE_WAIT_MIN_S;
	r = wait_flushed(dev, wait_s);
	if (r < 0 && r != -ETIMEDOUT) {
		fprintf(stderr, "zerofs umount: unmounted, but cannot wait for '%s/" ZF_DEVDIR_LOCK
			"': %s\n", dev, strerror(-r));
		return 1;
	}
	if (r < 0) {
		fprintf(stderr, "zerofs umount: '%s' is unmounted, but its daemon still flushes "
			"'%s' after %u s\n", argv[i], dev, wait_s);
		return 1;
	}
	return ro ? 0 : umount_verdict(argv[i], dev, synced, why);
}
