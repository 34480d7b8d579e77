/*
 * common/log.c - leveled logging (see log.h)
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "common/log.h"

static const char *log_ident = "zerofs";
static int log_syslog;
static enum zf_log_level log_max = ZF_LOG_INFO;

void zf_log_init(const char *ident, int use_syslog, enum zf_log_level max)
{
	log_ident = ident;
	log_syslog = use_syslog;
	log_max = max;
	if (use_syslog)
		openlog(ident, LOG_PID, LOG_DAEMON);
}

void zf_log_set_level(enum zf_log_level max)
{
	log_max = max;
}

enum zf_log_level zf_log_get_level(void)
{
	return log_max;
}

void zf_log(enum zf_log_level lvl, const char *fmt, ...)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	static const char *const name[] = { "error", "warning", "info", "debug" };
	char msg[1024];
	char line[1200];
	va_list ap;
	int n;

	if (lvl > log_max)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_syslog) {
		syslog(prio[lvl], "%s", msg);
		return;
	}
	n = snprintf(line, sizeof(line), "%s: %s: %s\n", log_ident, name[lvl], msg);
	if (n > (int)sizeof(line))
		n = sizeof(line);
	/* one write(2) so that lines of concurrent threads do not interleave */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}

void zf_bug(const char *file, int line, const char *cond)
{
	zf_log(ZF_LOG_ERR, "internal bug at %s:%d: '%s'", file, line, cond);
	abort();
}
