/*
 * daemon/control.c - the daemon's control channel (see control.h)
 *
 * One thread accepts connections and serves each on a thread of its own:
 * a sync may wait for the bucket (up to write_wait during an outage), and
 * stats must answer meanwhile. The socket is closed, and the clients being
 * served are waited for, before the filesystem is.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "common/lock.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "daemon/control.h"
#include "storage/fs_snap.h"
#include "daemon/stats_print.h"

struct zf_control {
	struct zf_fs *fs;
	struct zf_remote *rm;
	int fd;
	pthread_t thread;
	struct zf_mutex lock;		/* rank ZF_RANK_CONTROL: clients */
	pthread_cond_t idle;		/* clients dropped to 0 */
	unsigned int clients;		/* being served; protected by lock */
};

struct client {
	struct zf_control *ctl;
	int fd;
};

/* abstract address "\0zerofs-<xxh64 of the dev-dir's real path>" */
static int control_addr(const char *dev_dir, struct sockaddr_un *sa, socklen_t *ret_len)
{
	char *real = realpath(dev_dir, NULL);
	int n;

	if (!real)
		return -errno;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	n = snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1, "zerofs-%016llx",
		     (unsigned long long)XXH64(real, strlen(real), 0));
	free(real);
	*ret_len = offsetof(struct sockaddr_un, sun_path) + 1 + n;
	return 0;
}

static double mib(uint64_t b)
{
	return b / 1048576.0;
}

void zf_gc_report_print(FILE *out, const struct zf_gc_report *r, int dry_run)
{
	fprintf(out, "segments:          %llu, %.1f MiB stored, %.1f MiB live\n",
		(unsigned long long)r->segments, mib(r->stored_bytes), mib(r->live_bytes));
	fprintf(out, "%s %llu segments, %.1f MiB dead, %.1f MiB live to move\n",
		dry_run ? "would empty:      " : "emptied:          ", (unsigned long long)r->victims,
		mib(r->reclaim_bytes), mib(r->moved_bytes));
	if (!dry_run)
		fprintf(out, "moved:             %llu chunks, %.1f MiB; %llu dead chunks dropped\n",
			(unsigned long long)r->moved_chunks, mib(r->moved_raw_bytes),
			(unsigned long long)r->dead_chunks);
	fprintf(out, "%s %llu segment files, %.1f MiB\n",
		dry_run ? "local, would free:" : "local, freed:     ",
		(unsigned long long)r->freed_segments, mib(r->freed_bytes));
	fprintf(out, "%s %llu objects, %.1f MiB\n",
		dry_run ? "bucket, would free:" : "bucket, freed:    ",
		(unsigned long long)r->bucket_objects, mib(r->bucket_bytes));
	if (r->kept_damaged)
		fprintf(out, "kept:              %llu segments with unreadable live data "
			     "(run zerofs fsck --verify-data)\n",
			(unsigned long long)r->kept_damaged);
}

/* a "progress" line of a gc to its client: bytes copied of those to copy */
static void gc_progress(void *ctx, uint64_t done, uint64_t total)
{
	char line[80];
	int n;

	n = snprintf(line, sizeof(line), "progress %llu %llu\n", (unsigned long long)done,
		     (unsigned long long)total);
	zf_write_full(*(int *)ctx, line, n);	/* a client gone: the gc goes on */
}

/* "gc <dry-run 0|1> <max waste>", with progress lines (zf_control.h) */
static int serve_gc(struct zf_control *ctl, const char *args, int c, FILE *out)
{
	struct zf_gc_opts o = { .progress = gc_progress };
	struct zf_gc_report rep;
	int r, fd = c;

	o.ctx = &fd;
	if (sscanf(args, "%d %lf", &o.dry_run, &o.max_waste) != 2 || o.max_waste < 0)
		return -EINVAL;
	r = ctl->rm ? zf_remote_gc(ctl->rm, &o, &rep) : zf_fs_gc(ctl->fs, &o, &rep);
	if (r == 0)
		zf_gc_report_print(out, &rep, o.dry_run);
	return r;
}

/* "snapshot create NAME", "snapshot delete NAME", "snapshot list" */
static int serve_snapshot(struct zf_control *ctl, const char *args, FILE *out, char *why,
			  size_t len)
{
	struct zf_snap_info *v;
	uint64_t seq;
	size_t n, i;
	int r;

	if (!strncmp(args, "create ", 7)) {
		r = zf_remote_snapshot_create(ctl->fs, ctl->rm, args + 7, &seq, why, len);
		if (r == 0)
			fprintf(out, "snapshot %s: log record %" PRIu64 "\n", args + 7, seq);
		return r;
	}
	if (!strncmp(args, "delete ", 7))
		return zf_remote_snapshot_remove(ctl->fs, ctl->rm, args + 7, why, len);
	if (strcmp(args, "list"))
		return -EINVAL;
	r = zf_fs_snapshot_list(ctl->fs, &v, &n);
	for (i = 0; r == 0 && i < n; i++)
		fprintf(out, "snap %s %" PRIu64 " %lld %" PRIu64 "\n", v[i].name, v[i].seq,
			(long long)v[i].made, v[i].bytes);
	if (r == 0)
		free(v);
	return r;
}

/* "stats [human|bytes|json]" */
static int serve_stats(struct zf_control *ctl, const char *args, FILE *out)
{
	struct zf_stats_view v = { .mounted = 1 };
	enum zf_stats_form form = ZF_STATS_HUMAN;
	struct zf_remote_stats rs;
	struct zf_fs_stats s;

	while (*args == ' ')
		args++;
	if (*args && zf_stats_form_parse(args, &form) < 0)
		return -EINVAL;
	zf_fs_stats(ctl->fs, &s);
	v.fs = &s;
	if (ctl->rm) {
		zf_remote_stats(ctl->rm, &rs);
		v.rm = &rs;
	}
	zf_stats_print(out, &v, form);
	return 0;
}

/* a "progress" line of a sync to its client; non-zero when the client is gone */
static int sync_progress(void *ctx, const struct zf_remote_stats *s)
{
	char line[160];
	int n;

	n = snprintf(line, sizeof(line), "progress %llu %llu %llu %llu %lld\n",
		     (unsigned long long)s->pending_bytes, (unsigned long long)s->pending_segs,
		     (unsigned long long)s->pending_records, (unsigned long long)s->uploaded_bytes,
		     (long long)s->offline_since);
	return zf_write_full(*(int *)ctx, line, n) < 0;
}

/*
 * "sync": everything written into the bucket, giving up as the mount's
 * write_wait says. "sync <timeout ms>": giving up after that long without
 * progress (0: write_wait), with a progress line a second (zf_control.h).
 */
static int serve_sync(struct zf_control *ctl, const char *args, int c, char *why, size_t len)
{
	struct zf_remote_sync_opts o = { 0 };
	int fd = c;

	if (!ctl->rm)
		return zf_fs_sync(ctl->fs);
	if (*args) {
		if (sscanf(args, " %u", &o.timeout_ms) != 1)
			return -EINVAL;
		o.progress = sync_progress;
		o.ctx = &fd;
	}
	return zf_remote_sync_wait(ctl->rm, &o, why, len);
}

static void serve(struct zf_control *ctl, int c)
{
	char cmd[64], why[1024] = "", *reply = NULL;
	size_t rlen = 0;
	ssize_t n;
	FILE *out;
	int r = 0;

	n = read(c, cmd, sizeof(cmd) - 1);
	if (n <= 0)
		return;
	cmd[n] = 0;
	cmd[strcspn(cmd, "\r\n")] = 0;
	out = open_memstream(&reply, &rlen);
	if (!out)
		return;
	if (!strcmp(cmd, "stats") || !strncmp(cmd, "stats ", 6)) {
		r = serve_stats(ctl, cmd + 5, out);
	} else if (!strcmp(cmd, "sync") || !strncmp(cmd, "sync ", 5)) {
		r = serve_sync(ctl, cmd + 4, c, why, sizeof(why));
	} else if (!strncmp(cmd, "gc ", 3)) {
		r = serve_gc(ctl, cmd + 3, c, out);
	} else if (!strncmp(cmd, "snapshot ", 9)) {
		r = serve_snapshot(ctl, cmd + 9, out, why, sizeof(why));
	} else {
		r = -EINVAL;
	}
	if (r < 0)
		fprintf(out, "error %s\n", why[0] ? why : r == -EINVAL ? "unknown command"
						       : strerror(-r));
	else
		fprintf(out, "ok\n");
	fclose(out);
	zf_write_full(c, reply, rlen);
	free(reply);
}

static void *client_main(void *arg)
{
	struct client *cl = arg;
	struct zf_control *ctl = cl->ctl;

	serve(ctl, cl->fd);
	close(cl->fd);
	free(cl);
	zf_mutex_lock(&ctl->lock);
	if (--ctl->clients == 0)
		pthread_cond_broadcast(&ctl->idle);
	zf_mutex_unlock(&ctl->lock);
	return NULL;
}

static void *control_main(void *arg)
{
	struct zf_control *ctl = arg;

	for (;;) {
		struct ucred cred;
		socklen_t cl = sizeof(cred);
		int c = accept4(ctl->fd, NULL, NULL, SOCK_CLOEXEC);

		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			break; /* the socket was shut down */
		}
		if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0 &&
		    (cred.uid == 0 || cred.uid == getuid())) {
			struct client *client = zf_malloc(sizeof(*client));
			pthread_attr_t attr;
			pthread_t t;
			int r;

			client->ctl = ctl;
			client->fd = c;
			zf_mutex_lock(&ctl->lock);
			ctl->clients++;
			zf_mutex_unlock(&ctl->lock);
			pthread_attr_init(&attr);
			pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
			r = pthread_create(&t, &attr, client_main, client);
			pthread_attr_destroy(&attr);
			if (r != 0)
				client_main(client); /* no thread: serve it here */
			continue;
		}
		close(c);
	}
	return NULL;
}

int zf_control_start(struct zf_fs *fs, struct zf_remote *rm, const char *dev_dir,
		     struct zf_control **ret_ctl)
{
	struct zf_control *ctl;
	struct sockaddr_un sa;
	socklen_t len;
	int r;

	r = control_addr(dev_dir, &sa, &len);
	if (r < 0)
		return r;
	ctl = zf_calloc(1, sizeof(*ctl));
	ctl->fs = fs;
	ctl->rm = rm;
	zf_mutex_init(&ctl->lock, ZF_RANK_CONTROL, "ctl->lock");
	pthread_cond_init(&ctl->idle, NULL);
	ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ctl->fd < 0 || bind(ctl->fd, (struct sockaddr *)&sa, len) < 0 ||
	    listen(ctl->fd, 8) < 0) {
		r = -errno;
		goto fail;
	}
	r = -pthread_create(&ctl->thread, NULL, control_main, ctl);
	if (r < 0)
		goto fail;
	*ret_ctl = ctl;
	return 0;
fail:
	if (ctl->fd >= 0)
		close(ctl->fd);
	pthread_cond_destroy(&ctl->idle);
	zf_mutex_destroy(&ctl->lock);
	free(ctl);
	return r;
}

void zf_control_stop(struct zf_control *ctl)
{
	if (!ctl)
		return;
	shutdown(ctl->fd, SHUT_RDWR); /* wakes accept() */
	pthread_join(ctl->thread, NULL);
	zf_mutex_lock(&ctl->lock);
	while (ctl->clients)
		zf_cond_wait(&ctl->idle, &ctl->lock);
	zf_mutex_unlock(&ctl->lock);
	close(ctl->fd);
	pthread_cond_destroy(&ctl->idle);
	zf_mutex_destroy(&ctl->lock);
	free(ctl);
}

/* a client's connection to the daemon serving dev_dir: 0 and *ret_fd, -ENOTCONN, -errno */
static int control_connect(const char *dev_dir, int *ret_fd)
{
	struct sockaddr_un sa;
	socklen_t len;
	int fd, r;

	r = control_addr(dev_dir, &sa, &len);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, len) < 0) {
		r = errno == ECONNREFUSED || errno == ENOENT ? -ENOTCONN : -errno;
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

int zf_control_daemon_pid(const char *dev_dir, pid_t *ret_pid)
{
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	int fd, r;

	/* no command: the daemon reads end-of-file and closes */
	r = control_connect(dev_dir, &fd);
	if (r < 0)
		return r;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0)
		r = -errno;
	else
		*ret_pid = cred.pid;
	close(fd);
	return r;
}

int zf_control_call(const char *dev_dir, const char *cmd, FILE *out)
{
	return zf_control_call_progress(dev_dir, cmd, NULL, NULL, out);
}

int zf_control_call_progress(const char *dev_dir, const char *cmd,
			     void (*progress)(void *ctx, const char *line), void *ctx, FILE *out)
{
	struct zf_buf all = { 0 };
	char buf[4096], *last;
	size_t done = 0;
	ssize_t n;
	int fd, r;

	r = control_connect(dev_dir, &fd);
	if (r < 0)
		return r;
	snprintf(buf, sizeof(buf), "%s\n", cmd);
	r = zf_write_full(fd, buf, strlen(buf));
	if (r < 0)
		goto out;
	/* progress lines as they come (and out of the answer); the rest kept */
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		char *nl;

		zf_buf_add(&all, buf, n);
		while ((nl = memchr((char *)all.p + done, '\n', all.len - done))) {
			size_t end = nl - (char *)all.p;

			if (!strncmp((char *)all.p + done, "progress ", 9)) {
				*nl = 0;
				if (progress)
					progress(ctx, (char *)all.p + done + 9);
				memmove((char *)all.p + done, nl + 1, all.len - end - 1);
				all.len -= end + 1 - done;
			} else {
				done = end + 1;
			}
		}
	}
	zf_buf_add(&all, "", 1);
	/* the last line is the status: print the answer without it */
	last = (char *)all.p + all.len - 1;
	if (last > (char *)all.p && last[-1] == '\n')
		*--last = 0;
	last = strrchr((char *)all.p, '\n');
	last = last ? last + 1 : (char *)all.p;
	fwrite(all.p, 1, last - (char *)all.p, out);
	if (!strncmp(last, "error ", 6))
		fprintf(out, "%s\n", last + 6);
	r = strcmp(last, "ok") == 0 ? 0 : -EIO;
out:
	zf_buf_free(&all);
	close(fd);
	return r;
}
