/*
 * daemon/metrics.h - a mount's metrics file for node_exporter's textfile
 * collector (-o metrics_file=PATH, metrics_interval=SECS)
 *
 * A thread of the daemon writes 'zerofs stats --prometheus' (the text of
 * daemon/stats_prom.c) to PATH every interval: into PATH.tmp, then renamed
 * over PATH, so a reader never sees half a file. The file is removed when
 * the mount ends: node_exporter then stops exporting it rather than
 * repeating the last values.
 */
#ifndef ZF_DAEMON_METRICS_H
#define ZF_DAEMON_METRICS_H

#include "storage/fs.h"
#include "tier/remote.h"

struct zf_metrics;

/*
 * Start writing the metrics of fs (and rm, may be NULL) to path (an
 * absolute path, copied) every secs seconds, the first time at once.
 * 0 and *ret, or -errno (a failed first write says why in the log; the
 * thread goes on trying).
 */
int zf_metrics_start(const char *path, unsigned int secs, struct zf_fs *fs, struct zf_remote *rm,
		     struct zf_metrics **ret);

/* stop the thread and remove the file (NULL is fine); before fs and rm close */
void zf_metrics_stop(struct zf_metrics *m);

#endif
