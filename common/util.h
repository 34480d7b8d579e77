/*
 * common/util.h - thin OS layer: full reads/writes, durable publish, time
 *
 * Every helper returns 0 (or a length) on success and -errno on failure;
 * none of them logs, the caller knows what the file is for.
 */
#ifndef ZF_COMMON_UTIL_H
#define ZF_COMMON_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define ZF_NAME_MAX 4096

/* write all of buf at the current offset; -errno (incl. -ENOSPC) on failure */
int zf_write_full(int fd, const void *buf, size_t len);
/* pwrite all of buf at off */
int zf_pwrite_full(int fd, const void *buf, size_t len, off_t off);
/* pread up to len bytes at off; returns bytes read (short only at EOF) */
ssize_t zf_pread_full(int fd, void *buf, size_t len, off_t off);

/* qsort/bsearch comparison of uint64_t values */
int zf_cmp_u64(const void *a, const void *b);

/* run fn(arg) on n threads at once and wait for them all (on the calling
 * thread alone when none can be started): a pool of workers sharing arg */
void zf_run_workers(unsigned int n, void *(*fn)(void *), void *arg);

/* fsync a directory (publishes renames and creations inside it) */
int zf_fsync_dir(int dirfd);

/*
 * Publish a whole file atomically: write dir/name.tmp (O_EXCL), fsync,
 * rename over dir/name, fsync the directory. A stale .tmp is removed first.
 */
int zf_publish_file(int dirfd, const char *name, const void *buf, size_t len);

/* read a whole file relative to dirfd into a malloc'd buffer */
int zf_read_file(int dirfd, const char *name, void **ret_buf, size_t *ret_len);

/* fill buf with random bytes from getrandom(2) */
int zf_random(void *buf, size_t len);

/* CLOCK_REALTIME */
struct timespec zf_now(void);

/* monotonic clock in nanoseconds */
uint64_t zf_mono_ns(void);

/*
 * when, a unix time, as local time and its distance from now, for people:
 * "2026-12-07 18:40:12 UTC (in 45 s)" or "... (3 s ago)"; into buf (len bytes)
 */
void zf_time_human(uint64_t when, char *buf, size_t len);

/* bytes for people, binary units: "512 B", "1.5 KiB", "2.0 GiB"; into buf (len bytes) */
void zf_size_human(uint64_t bytes, char *buf, size_t len);

/* s without its leading and trailing white space: a pointer into s, whose
 * end is cut in place */
char *zf_trim(char *s);

/* malloc that never returns NULL for len>0 (aborts on OOM, like glib) */
void *zf_malloc(size_t len);
void *zf_calloc(size_t n, size_t len);
void *zf_realloc(void *p, size_t len);
char *zf_strdup(const char *s);

/*
 * Per thread: how many locks the thread holds under which it must not wait
 * for the network (the storage core's fs->lock). Storage code that could
 * wait for a fetch checks it and fails or skips instead.
 */
extern __thread unsigned int zf_nonet_locks;

#endif
