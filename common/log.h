/*
 * common/log.h - leveled logging for every layer
 *
 * Messages go to one sink, chosen by zf_log_init() and then perhaps
 * zf_log_to_file(): stderr (foreground, tools, tests), syslog (a
 * daemonized mount, by default) or a file (-o log=FILE, or a daemonized
 * mount's fallback when syslog is not reachable: see daemon/daemon.c).
 * Messages are lower-case, no full stop, the subject quoted: "cannot read
 * segment '00000042': checksum mismatch". A file gets a time stamp, the
 * ident and the pid on each line (syslog adds its own).
 *
 * Thread-safe: one write(2)/syslog(3) per message. The sink is chosen
 * before threads start and not changed while they log.
 */
#ifndef ZF_COMMON_LOG_H
#define ZF_COMMON_LOG_H

#include <stdlib.h>

enum zf_log_level {
	ZF_LOG_NONE = -1,	/* print nothing (as a maximum level) */
	ZF_LOG_ERR = 0,
	ZF_LOG_WARN = 1,
	ZF_LOG_INFO = 2,
	ZF_LOG_DEBUG = 3,
};

/* Select the sink, stderr or syslog (use_syslog), and the most verbose level printed. */
void zf_log_init(const char *ident, int use_syslog, enum zf_log_level max);
void zf_log_set_level(enum zf_log_level max);
enum zf_log_level zf_log_get_level(void);

/*
 * From now on, append to the file at path (created mode 0640 if missing)
 * instead of stderr or syslog. 0, or -errno (the sink is then unchanged).
 * The file stays open across fork() and daemonizing.
 */
int zf_log_to_file(const char *path);

/*
 * From now on, write to a duplicate of stderr: it stays the caller's stderr
 * after daemonizing points fd 2 at /dev/null. 0 or -errno.
 */
int zf_log_keep_stderr(void);

/* Would a message to syslog reach a daemon (is there a socket at /dev/log)? */
int zf_log_syslog_reachable(void);

/* "error", "warn" (or "warning"), "info", "debug": 0 and *ret, or -EINVAL */
int zf_log_level_parse(const char *s, enum zf_log_level *ret);

void zf_log(enum zf_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define zf_err(...) zf_log(ZF_LOG_ERR, __VA_ARGS__)
#define zf_warn(...) zf_log(ZF_LOG_WARN, __VA_ARGS__)
#define zf_info(...) zf_log(ZF_LOG_INFO, __VA_ARGS__)
#define zf_dbg(...) zf_log(ZF_LOG_DEBUG, __VA_ARGS__)

/* A broken internal invariant (never bad input): abort with file:line. */
void zf_bug(const char *file, int line, const char *cond) __attribute__((noreturn));
#define ZF_BUG_ON(cond)                                                        \
	do {                                                                   \
		if (__builtin_expect(!!(cond), 0))                             \
			zf_bug(__FILE__, __LINE__, #cond);                     \
	} while (0)

#endif
