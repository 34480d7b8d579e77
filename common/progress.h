/*
 * common/progress.h - one progress line on a terminal: how much of how
 * much, the rate, the time left
 *
 *   gc: [=========>          ] 45% 12.3 MiB of 27.0 MiB, 5.1 MiB/s, 3 s left
 *   fsck: [==>                 ] 12% 1024 of 8192 chunks, 812/s, 9 s left
 *
 * The line goes to stderr and rewrites itself in place ("\r" and an erase
 * to the end of the line). When stderr is not a terminal nothing at all is
 * printed, so callers update unconditionally and scripts, logs and pipes
 * never see it. Drawn at most every 100 ms (the first update and a
 * finished one always); the rate counts from the first update.
 *
 * Used by the commands only (tools/); one struct per line, one thread.
 * Not here: what is measured (the callers' hooks: zf_gc_opts.progress,
 * zf_check_report.progress, zf_restore_opts.progress, the daemon's sync lines).
 */
#ifndef ZF_COMMON_PROGRESS_H
#define ZF_COMMON_PROGRESS_H

#include <stdint.h>

struct zf_progress {
	const char *what;	/* the line's first word: "gc", "sync", ... */
	const char *unit;	/* what is counted ("chunks"), NULL: bytes */
	int tty;		/* stderr is a terminal: else nothing is drawn */
	int shown;		/* a line is on the terminal now */
	int started;
	uint64_t done0;		/* done at the first update */
	uint64_t t0, drawn;	/* monotonic ns: first update, last drawing */
};

/* start a line for what, counting unit (NULL: bytes); draws nothing yet */
void zf_progress_init(struct zf_progress *p, const char *what, const char *unit);

/*
 * done of total so far (total 0: unknown, no bar and no time left); note,
 * if not NULL, ends the line (", bucket offline"). Drawn only on a terminal.
 */
void zf_progress_update(struct zf_progress *p, uint64_t done, uint64_t total, const char *note);

/* a line of free text instead ("umount: the daemon's last flush, 3 s") */
void zf_progress_say(struct zf_progress *p, const char *text);

/* erase the line (before other output on the terminal, and at the end) */
void zf_progress_clear(struct zf_progress *p);

#endif
