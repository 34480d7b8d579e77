/*
 * daemon/metrics.c - a mount's metrics file (see metrics.h)
 *
 * The thread sleeps on a condition variable, so a stop ends it at once.
 * A write that fails (a full disk, a directory removed) is logged once,
 * until one succeeds again: the mount is unaffected.
 *
 * Locking: m->lock (rank ZF_RANK_METRICS, a leaf) guards stop only; it is
 * not held while the stats are read (their calls take their own locks).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/lock.h"
#include "common/log.h"
#include "common/util.h"
#include "daemon/metrics.h"
#include "daemon/stats_print.h"

struct zf_metrics {
	char *path, *tmp;
	unsigned int secs;
	struct zf_fs *fs;
	struct zf_remote *rm;
	pthread_t thread;
	struct zf_mutex lock;	/* rank ZF_RANK_METRICS: stop */
	pthread_cond_t wake;	/* signalled by a stop */
	int stop;		/* protected by lock */
	int failing;		/* the last write failed (said once); the thread's own */
};

/* one file: PATH.tmp written whole, then renamed over PATH */
static int metrics_write(struct zf_metrics *m)
{
	struct zf_stats_view v = { .mounted = 1 };
	struct zf_remote_stats rs;
	struct zf_fs_stats s;
	FILE *f;
	int r = 0;

	zf_fs_stats(m->fs, &s);
	v.fs = &s;
	if (m->rm) {
		zf_remote_stats(m->rm, &rs);
		v.rm = &rs;
	}
	f = fopen(m->tmp, "we");
	if (!f)
		return -errno;
	zf_stats_print_prometheus(f, &v);
	if (fflush(f) != 0 || ferror(f))
		r = -errno ? -errno : -EIO;
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(m->tmp, m->path) < 0)
		r = -errno;
	if (r < 0)
		unlink(m->tmp);
	return r;
}

static void metrics_write_said(struct zf_metrics *m)
{
	int r = metrics_write(m);

	if (r < 0 && !m->failing)
		zf_warn("cannot write the metrics file '%s': %s", m->path, strerror(-r));
	else if (r == 0 && m->failing)
		zf_info("the metrics file '%s' is written again", m->path);
	m->failing = r < 0;
}

static void *metrics_main(void *arg)
{
	struct zf_metrics *m = arg;
	struct timespec ts;

	zf_mutex_lock(&m->lock);
	while (!m->stop) {
		zf_mutex_unlock(&m->lock);
		metrics_write_said(m);
		zf_mutex_lock(&m->lock);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += m->secs;
		while (!m->stop && zf_cond_timedwait(&m->wake, &m->lock, &ts) != ETIMEDOUT)
			;
	}
	zf_mutex_unlock(&m->lock);
	return NULL;
}

int zf_metrics_start(const char *path, unsigned int secs, struct zf_fs *fs, struct zf_remote *rm,
		     struct zf_metrics **ret)
{
	struct zf_metrics *m = zf_calloc(1, sizeof(*m));
	int r;

	m->path = zf_strdup(path);
	m->tmp = zf_malloc(strlen(path) + 5);
	sprintf(m->tmp, "%s.tmp", path);
	m->secs = secs ? secs : 1;
	m->fs = fs;
	m->rm = rm;
	zf_mutex_init(&m->lock, ZF_RANK_METRICS, "metrics lock");
	pthread_cond_init(&m->wake, NULL);
	r = -pthread_create(&m->thread, NULL, metrics_main, m);
	if (r < 0) {
		pthread_cond_destroy(&m->wake);
		zf_mutex_destroy(&m->lock);
		free(m->tmp);
		free(m->path);
		free(m);
		return r;
	}
	*ret = m;
	return 0;
}

void zf_metrics_stop(struct zf_metrics *m)
{
	if (!m)
		return;
	zf_mutex_lock(&m->lock);
	m->stop = 1;
	pthread_cond_signal(&m->wake);
	zf_mutex_unlock(&m->lock);
	pthread_join(m->thread, NULL);
	unlink(m->path);
	pthread_cond_destroy(&m->wake);
	zf_mutex_destroy(&m->lock);
	free(m->tmp);
	free(m->path);
	free(m);
}
