/*
 * tools/wset.c - the CLI's working-set commands: pin, unpin, warmup,
 * evict, status. Each walks the paths it is given (directories
 * recursively, never crossing into another filesystem or following
 * symlinks) and acts through the mount's extended attributes
 * (daemon/wset.h), so a script can do the same with setfattr/getfattr.
 */
#include "config.h"

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/progress.h"
#include "common/util.h"
#include "tools/wset.h"

#define X_PIN "user.zerofs.pin"
#define X_WARMUP "user.zerofs.warmup"
#define X_EVICT "user.zerofs.evict"
#define X_STATUS "user.zerofs.status"
#define WARMUP_THREADS 4	/* files fetched at once (each several GETs) */

struct entry {
	char *path;
	int is_dir;
};

struct status {
	uint64_t local, bucket, pending;
	int pinned;
};

/* the entries of one walk (nftw has no context pointer) */
static struct entry *walk_v;
static size_t walk_n;

static int walk_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type != FTW_F && type != FTW_D)
		return 0;
	if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode))
		return 0; /* symlinks, devices, fifos: no data of their own */
	walk_v = zf_realloc(walk_v, (walk_n + 1) * sizeof(*walk_v));
	walk_v[walk_n].path = zf_strdup(path);
	walk_v[walk_n].is_dir = S_ISDIR(st->st_mode);
	walk_n++;
	return 0;
}

/* the file's status from the mount; -errno (-ENOTSUP: not on zerofs) */
static int get_status(const char *path, struct status *st)
{
	char v[200];
	ssize_t n = getxattr(path, X_STATUS, v, sizeof(v) - 1);
	unsigned long long l, b, p;
	int pin;

	if (n < 0)
		return errno == ENODATA || errno == ENOTSUP ? -ENOTSUP : -errno;
	v[n] = 0;
	if (sscanf(v, "local=%llu bucket=%llu pending=%llu pinned=%d", &l, &b, &p, &pin) != 4)
		return -ENOTSUP;
	st->local = l;
	st->bucket = b;
	st->pending = p;
	st->pinned = pin;
	return 0;
}

/* every file and directory under the paths (a path itself first); NULL after
 * a message when one cannot be walked or is not on zerofs */
static struct entry *collect(const char *cmd, int argc, char **argv, size_t *ret_n)
{
	struct status st;
	int i, r;

	walk_v = NULL;
	walk_n = 0;
	for (i = 0; i < argc; i++) {
		r = get_status(argv[i], &st);
		if (r == -ENOTSUP)
			fprintf(stderr, "zerofs %s: '%s' is not on a zerofs mount\n", cmd, argv[i]);
		else if (r < 0)
			fprintf(stderr, "zerofs %s: '%s': %s\n", cmd, argv[i], strerror(-r));
		else if (nftw(argv[i], walk_one, 32, FTW_PHYS | FTW_MOUNT) != 0)
			fprintf(stderr, "zerofs %s: cannot walk '%s': %s\n", cmd, argv[i],
				strerror(errno));
		if (r < 0)
			break;
	}
	if (i < argc) {
		while (walk_n)
			free(walk_v[--walk_n].path);
		free(walk_v);
		return NULL;
	}
	*ret_n = walk_n;
	return walk_v;
}

static void free_entries(struct entry *v, size_t n)
{
	while (n)
		free(v[--n].path);
	free(v);
}

static int usage_paths(const char *cmd, int argc)
{
	if (argc >= 2)
		return 0;
	fprintf(stderr, "zerofs %s: expected one or more paths on a zerofs mount\n", cmd);
	return 2;
}

/* ---------------------------------------------------------- pin, unpin */

/* a pin that failed half-way: unpin what it pinned, v[0..n) where was[i] is 0 */
static void pin_undo(struct entry *v, const int *was, size_t n)
{
	while (n--)
		if (!was[n])
			removexattr(v[n].path, X_PIN);
}

int zf_cmd_pin(int argc, char **argv, int on)
{
	const char *cmd = on ? "pin" : "unpin";
	struct status st;
	struct entry *v;
	size_t n, i;
	int *was, r = usage_paths(cmd, argc);

	if (r)
		return r;
	v = collect(cmd, argc - 1, argv + 1, &n);
	if (!v)
		return 1;
	was = zf_calloc(n ? n : 1, sizeof(*was));
	/* directories come before what they hold: files made meanwhile inherit */
	for (i = 0; i < n; i++) {
		was[i] = get_status(v[i].path, &st) == 0 && st.pinned;
		if (on ? setxattr(v[i].path, X_PIN, "1", 1, 0) == 0
		       : removexattr(v[i].path, X_PIN) == 0)
			continue;
		if (errno == ENOSPC)
			fprintf(stderr,
				"zerofs pin: '%s' not pinned: pinned data would exceed its share of "
				"the dev-dir's budget (cache_size; pins may use 3/4 of it). Unpin "
				"something, or mount with a larger cache_size\n",
				v[i].path);
		else if (errno != ENOENT) /* removed meanwhile: nothing to keep */
			fprintf(stderr, "zerofs %s: '%s': %s\n", cmd, v[i].path, strerror(errno));
		if (errno != ENOENT) {
			if (on) /* all or nothing */
				pin_undo(v, was, i);
			free(was);
			free_entries(v, n);
			return 1;
		}
	}
	free(was);
	free_entries(v, n);
	return 0;
}

/* --------------------------------------------------------------- warmup */

struct warm {
	struct entry *v;
	size_t n;
	uint64_t *bytes;	/* each file's bytes only in the bucket, before */
	pthread_mutex_t lock;
	size_t next, files_done;
	uint64_t bytes_done, total;
	int failed;
	struct zf_progress bar;	/* protected by lock */
};

/* the bar: bytes fetched of those only in the bucket, and files (under w->lock) */
static void warm_progress(struct warm *w)
{
	char files[48];

	snprintf(files, sizeof(files), ", %zu/%zu files", w->files_done, w->n);
	zf_progress_update(&w->bar, w->bytes_done, w->total, files);
}

static void *warm_main(void *arg)
{
	struct warm *w = arg;

	for (;;) {
		size_t i;
		int r, e;

		pthread_mutex_lock(&w->lock);
		i = w->next < w->n ? w->next++ : w->n;
		pthread_mutex_unlock(&w->lock);
		if (i == w->n)
			return NULL;
		if (w->v[i].is_dir)
			continue;
		r = setxattr(w->v[i].path, X_WARMUP, "1", 1, 0);
		e = errno;
		pthread_mutex_lock(&w->lock);
		if (r < 0 && e != ENOENT) {
			zf_progress_clear(&w->bar);
			fprintf(stderr, "zerofs warmup: '%s': %s\n", w->v[i].path,
				e == EIO ? "the bucket did not answer (see the mount's log)"
					 : strerror(e));
			w->failed++;
		}
		w->files_done++;
		w->bytes_done += w->bytes[i];
		warm_progress(w);
		pthread_mutex_unlock(&w->lock);
	}
}

int zf_cmd_warmup(int argc, char **argv)
{
	struct warm w = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct status st;
	char b[32];
	int r = usage_paths("warmup", argc);
	size_t i;

	if (r)
		return r;
	w.v = collect("warmup", argc - 1, argv + 1, &w.n);
	if (!w.v)
		return 1;
	w.bytes = zf_calloc(w.n ? w.n : 1, sizeof(*w.bytes));
	for (i = 0; i < w.n; i++) {
		if (!w.v[i].is_dir && get_status(w.v[i].path, &st) == 0)
			w.bytes[i] = st.bucket;
		w.total += w.bytes[i];
	}
	zf_progress_init(&w.bar, "warmup", NULL);
	zf_run_workers(WARMUP_THREADS, warm_main, &w);
	zf_progress_clear(&w.bar);
	zf_size_human(w.bytes_done, b, sizeof(b));
	if (w.failed)
		fprintf(stderr, "zerofs warmup: %d of %zu files not fetched\n", w.failed, w.n);
	else
		printf("warmup: %s fetched\n", b);
	free(w.bytes);
	free_entries(w.v, w.n);
	return w.failed ? 1 : 0;
}

/* ---------------------------------------------------------------- evict */

int zf_cmd_evict(int argc, char **argv)
{
	uint64_t gone = 0, stayed = 0;
	struct status before, after;
	struct entry *v;
	size_t n, i, pinned = 0;
	char a[32], b[32];
	int r = usage_paths("evict", argc);

	if (r)
		return r;
	v = collect("evict", argc - 1, argv + 1, &n);
	if (!v)
		return 1;
	for (i = 0; i < n; i++) {
		if (v[i].is_dir || get_status(v[i].path, &before) < 0)
			continue;
		if (setxattr(v[i].path, X_EVICT, "1", 1, 0) < 0) {
			if (errno == EBUSY) {
				pinned++;
				continue;
			}
			if (errno == ENOENT)
				continue;
			fprintf(stderr, "zerofs evict: '%s': %s\n", v[i].path,
				errno == EOPNOTSUPP ? "this filesystem has no bucket"
						    : strerror(errno));
			free_entries(v, n);
			return 1;
		}
		if (get_status(v[i].path, &after) == 0) {
			gone += before.local > after.local ? before.local - after.local : 0;
			stayed += after.pending;
		}
	}
	zf_size_human(gone, a, sizeof(a));
	zf_size_human(stayed, b, sizeof(b));
	printf("evict: %s of file data now only in the bucket", a);
	if (stayed)
		printf("; %s not in the bucket yet stays (pending upload)", b);
	if (pinned)
		printf("; %zu pinned file%s kept", pinned, pinned == 1 ? "" : "s");
	printf("\n");
	free_entries(v, n);
	return 0;
}

/* --------------------------------------------------------------- status */

int zf_cmd_status(int argc, char **argv)
{
	int raw = 0, i, rc = 0;

	if (argc >= 2 && !strcmp(argv[1], "-b")) {
		raw = 1;
		argc--;
		argv++;
	}
	if (usage_paths("status", argc))
		return 2;
	printf("%12s %12s %12s  %-6s %s\n", "LOCAL", "BUCKET", "PENDING", "PINNED", "PATH");
	for (i = 1; i < argc; i++) {
		struct status sum = { 0 }, st, top;
		size_t n, k, files = 0, pinned = 0;
		char l[32], b[32], p[32];
		struct entry *v = collect("status", 1, argv + i, &n);
		const char *pin;

		if (!v) {
			rc = 1;
			continue;
		}
		get_status(argv[i], &top);
		for (k = 0; k < n; k++) {
			if (v[k].is_dir || get_status(v[k].path, &st) < 0)
				continue;
			files++;
			pinned += st.pinned;
			sum.local += st.local;
			sum.bucket += st.bucket;
			sum.pending += st.pending;
		}
		if (raw) {
			snprintf(l, sizeof(l), "%" PRIu64, sum.local);
			snprintf(b, sizeof(b), "%" PRIu64, sum.bucket);
			snprintf(p, sizeof(p), "%" PRIu64, sum.pending);
		} else {
			zf_size_human(sum.local, l, sizeof(l));
			zf_size_human(sum.bucket, b, sizeof(b));
			zf_size_human(sum.pending, p, sizeof(p));
		}
		/* a directory with files: are they all pinned, some, none */
		if (files)
			pin = pinned == files ? "yes" : pinned ? "some" : "no";
		else
			pin = top.pinned ? "yes" : "no";
		printf("%12s %12s %12s  %-6s %s\n", l, b, p, pin, argv[i]);
		free_entries(v, n);
	}
	return rc;
}
