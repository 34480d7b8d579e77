/*
 * daemon/control.h - the daemon's control channel
 *
 * A mounted filesystem answers commands from the zerofs tool on a unix
 * socket in the abstract namespace, named after the dev-dir's real path
 * (no path-length limit, nothing left behind after a crash). Only root and
 * the daemon's own uid may talk to it (SO_PEERCRED).
 *
 * Protocol: the client sends one line ("stats [human|bytes|json]" (human
 * by default; daemon/stats_print.h), "sync", "sync <timeout ms>",
 * "gc <dry-run 0|1> <max waste>", "snapshot create NAME", "snapshot delete
 * NAME", "snapshot list" (a line "snap NAME SEQ MADE BYTES" each)); the
 * server answers with text lines and
 * closes; the last line is "ok" or "error <message>". "sync <timeout ms>"
 * gives up after that long without progress (0: the mount's write_wait) and
 * sends, about once a second while it waits, a line "progress <pending
 * bytes> <pending segments> <pending log records> <uploaded bytes> <offline
 * since, epoch seconds, 0: online>". "gc" sends "progress <bytes copied>
 * <bytes to copy>" after each batch of live chunks it moves.
 */
#ifndef ZF_DAEMON_CONTROL_H
#define ZF_DAEMON_CONTROL_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "storage/fs.h"
#include "tier/remote.h"

struct zf_control;

/* start serving fs (and its bucket, rm may be NULL) on the socket for dev_dir */
int zf_control_start(struct zf_fs *fs, struct zf_remote *rm, const char *dev_dir,
		     struct zf_control **ret_ctl);
void zf_control_stop(struct zf_control *ctl);

/*
 * Send cmd to the daemon serving dev_dir and copy its answer to out.
 * Returns 0 on "ok", -ENOTCONN when no daemon serves dev_dir, -EIO when it
 * answered an error (printed to out), or -errno.
 */
int zf_control_call(const char *dev_dir, const char *cmd, FILE *out);
/* zf_control_call, passing each "progress" line (without the word) to progress */
int zf_control_call_progress(const char *dev_dir, const char *cmd,
			     void (*progress)(void *ctx, const char *line), void *ctx, FILE *out);

/*
 * The pid of the daemon serving dev_dir (the socket's peer credentials;
 * the daemon listens after it daemonized). 0 and *ret_pid, -ENOTCONN when
 * no daemon serves dev_dir, or -errno.
 */
int zf_control_daemon_pid(const char *dev_dir, pid_t *ret_pid);

/* what 'zerofs gc' did (or, dry_run, would do) */
void zf_gc_report_print(FILE *out, const struct zf_gc_report *r, int dry_run);

#endif
