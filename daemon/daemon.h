/*
 * daemon/daemon.h - the FUSE daemon: serves a struct zf_fs at a mountpoint
 * through the libfuse3 low-level API. The only module that includes FUSE
 * headers (they stay inside daemon.c).
 */
#ifndef ZF_DAEMON_DAEMON_H
#define ZF_DAEMON_DAEMON_H

#include "storage/fs.h"
#include "tier/remote.h"

struct zf_daemon_opts {
	int foreground;		/* stay attached; log to stderr (unless log says) */
	int debug;		/* libfuse debug output (implies foreground) */
	unsigned int commit_secs; /* commit buffered data this often (0: 5) */
	double timeout;		/* attribute/entry cache timeout in seconds */
	/* where messages go once mounted: "syslog", "stderr" or a file; NULL:
	 * stderr in the foreground, else syslog -- or, when syslog is not
	 * reachable (no /dev/log), the file <dev-dir>/zerofs.log (said) */
	const char *log;
	const char *fuse_opts;	/* comma-separated -o options for libfuse, or NULL */
	/* write the Prometheus metrics there every metrics_secs (0: 15) s, or
	 * NULL (daemon/metrics.h) */
	const char *metrics_file;
	unsigned int metrics_secs;
	/* remote is a replica's: mounted read-only, following its writer (the
	 * kernel's caches of what changed are dropped) instead of uploading */
	int replica;
	/* fs is a snapshot: read-only, nothing uploaded or followed */
	int snapshot;
	struct zf_remote *remote; /* opened by the caller (lease taken), or NULL;
				   * ownership passes: started after daemonizing,
				   * closed (final upload) before the fs */
};

/*
 * Mount fs (ownership taken: it is closed, flushed and checkpointed before
 * this returns) at mnt and serve requests until unmounted or signalled
 * (SIGINT, SIGTERM, SIGHUP, or fusermount3 -u). In the background mode the
 * calling process exits once the mount is live, so a shell sees the mount
 * when the command returns. Returns 0 after a clean unmount, -errno
 * (logged) when the mount could not be made, or ZF_DAEMON_PENDING after a
 * clean unmount or stop that left uploads pending: the bucket did not take
 * everything (logged with what; it stays in the dev-dir, and the next
 * mount uploads it). A stop does not wait for an unreachable bucket.
 */
#define ZF_DAEMON_PENDING 1
int zf_daemon_run(struct zf_fs *fs, const char *mnt, const struct zf_daemon_opts *o);

#endif
