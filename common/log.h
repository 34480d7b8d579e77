/*
 * common/log.h - leveled logging for every layer
 *
 * Messages go to stderr (foreground, tools, tests) or syslog (daemonized),
 * chosen once by zf_log_init(). Messages are lower-case, no full stop, the
 * subject quoted: "cannot read segment '00000042': checksum mismatch".
 *
 * Thread-safe: one write(2)/syslog(3) per message.
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

/* Select the sink (use_syslog) and the most verbose level printed. */
void zf_log_init(const char *ident, int use_syslog, enum zf_log_level max);
void zf_log_set_level(enum zf_log_level max);
enum zf_log_level zf_log_get_level(void);

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
