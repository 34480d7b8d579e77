/*
 * common/util.c - thin OS layer (see util.h)
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

__thread unsigned int zf_nonet_locks;

int zf_write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= n;
	}
	return 0;
}

int zf_pwrite_full(int fd, const void *buf, size_t len, off_t off)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= n;
		off += n;
	}
	return 0;
}

ssize_t zf_pread_full(int fd, void *buf, size_t len, off_t off)
{
	char *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, p + done, len - done, off + done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += n;
	}
	return done;
}

int zf_fsync_dir(int dirfd)
{
	return fsync(dirfd) < 0 ? -errno : 0;
}

int zf_publish_file(int dirfd, const char *name, const void *buf, size_t len)
{
	char tmp[ZF_NAME_MAX];
	int fd, r;

	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	unlinkat(dirfd, tmp, 0);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	r = zf_write_full(fd, buf, len);
	if (r < 0)
		goto out_unlink;
	if (fsync(fd) < 0 || renameat(dirfd, tmp, dirfd, name) < 0) {
		r = -errno;
		goto out_unlink;
	}
	r = zf_fsync_dir(dirfd); /* renamed: never unlink now */
	goto out_close;
out_unlink:
	unlinkat(dirfd, tmp, 0);
out_close:
	close(fd);
	return r;
}

int zf_read_file(int dirfd, const char *name, void **ret_buf, size_t *ret_len)
{
	struct stat st;
	void *buf;
	ssize_t n;
	int fd, r;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out_close;
	}
	buf = zf_malloc(st.st_size + 1);
	n = zf_pread_full(fd, buf, st.st_size, 0);
	if (n < 0) {
		r = n;
		free(buf);
		goto out_close;
	}
	*ret_buf = buf;
	*ret_len = n;
	r = 0;
out_close:
	close(fd);
	return r;
}

int zf_random(void *buf, size_t len)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= n;
	}
	return 0;
}

struct timespec zf_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts;
}

uint64_t zf_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void *oom(size_t len)
{
	zf_err("out of memory allocating %zu bytes", len);
	abort();
}

void *zf_malloc(size_t len)
{
	void *p = malloc(len ? len : 1);

	return p ? p : oom(len);
}

void *zf_calloc(size_t n, size_t len)
{
	void *p = calloc(n ? n : 1, len ? len : 1);

	return p ? p : oom(n * len);
}

void *zf_realloc(void *p, size_t len)
{
	void *q = realloc(p, len ? len : 1);

	return q ? q : oom(len);
}

char *zf_strdup(const char *s)
{
	char *p = strdup(s);

	return p ? p : oom(strlen(s));
}

int zf_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

void zf_run_workers(unsigned int n, void *(*fn)(void *), void *arg)
{
	pthread_t *t = zf_calloc(n ? n : 1, sizeof(*t));
	unsigned int k, started = 0;

	for (k = 0; k < n; k++)
		if (pthread_create(&t[started], NULL, fn, arg) == 0)
			started++;
	if (!started)
		fn(arg);
	for (k = 0; k < started; k++)
		pthread_join(t[k], NULL);
	free(t);
}

void zf_time_human(uint64_t when, char *buf, size_t len)
{
	time_t t = (time_t)when, now = time(NULL);
	char at[32] = "?";
	struct tm tm;

	if (localtime_r(&t, &tm))
		strftime(at, sizeof(at), "%Y-%m-%d %H:%M:%S %Z", &tm);
	if (t >= now)
		snprintf(buf, len, "%s (in %lld s)", at, (long long)(t - now));
	else
		snprintf(buf, len, "%s (%lld s ago)", at, (long long)(now - t));
}

void zf_size_human(uint64_t bytes, char *buf, size_t len)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double x = (double)bytes;
	int u = 0;

	while (x >= 1024 && u < 6) {
		x /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
	else
		snprintf(buf, len, "%.1f %s", x, unit[u]);
}

char *zf_trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}
