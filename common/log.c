/*
 * common/log.c - leveled logging (see log.h)
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

static const char *log_ident = "zerofs";
static int log_syslog;
static int log_fd = STDERR_FILENO;	/* stderr, or the file of zf_log_to_file */
static int log_file;			/* log_fd is a file of its own: stamp each line */
static enum zf_log_level log_max = ZF_LOG_INFO;

static const char *const level_name[] = { "error", "warning", "info", "debug" };

void zf_log_init(const char *ident, int use_syslog, enum zf_log_level max)
{
	log_ident = ident;
	log_syslog = use_syslog;
	log_max = max;
	if (use_syslog)
		openlog(ident, LOG_PID, LOG_DAEMON);
}

/* write to fd (owned) from now on, with time stamps when it is a file */
static void use_fd(int fd, int file)
{
	if (log_fd != STDERR_FILENO)
		close(log_fd);
	log_fd = fd;
	log_file = file;
	log_syslog = 0;
}

int zf_log_to_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

	if (fd < 0)
		return -errno;
	use_fd(fd, 1);
	return 0;
}

int zf_log_keep_stderr(void)
{
	int fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);

	if (fd < 0)
		return -errno;
	use_fd(fd, 0);
	return 0;
}

int zf_log_syslog_reachable(void)
{
	static const int types[] = { SOCK_DGRAM, SOCK_STREAM }; /* syslog(3) tries both */
	struct sockaddr_un a = { .sun_family = AF_UNIX, .sun_path = "/dev/log" };
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		int fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC, 0), ok;

		if (fd < 0)
			continue;
		ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(fd);
		if (ok)
			return 1;
	}
	return 0;
}

int zf_log_level_parse(const char *s, enum zf_log_level *ret)
{
	enum zf_log_level l;

	if (!strcmp(s, "warn")) {
		*ret = ZF_LOG_WARN;
		return 0;
	}
	for (l = ZF_LOG_ERR; l <= ZF_LOG_DEBUG; l++) {
		if (!strcmp(s, level_name[l])) {
			*ret = l;
			return 0;
		}
	}
	return -EINVAL;
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
	char msg[1024], stamp[64] = "";
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
	if (log_file) {
		time_t now = time(NULL);
		struct tm tm;

		if (localtime_r(&now, &tm))
			strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S ", &tm);
		n = snprintf(line, sizeof(line), "%s%s[%d]: %s: %s\n", stamp, log_ident,
			     (int)getpid(), level_name[lvl], msg);
	} else {
		n = snprintf(line, sizeof(line), "%s: %s: %s\n", log_ident, level_name[lvl], msg);
	}
	if (n > (int)sizeof(line))
		n = sizeof(line);
	/* one write(2) so that lines of concurrent threads do not interleave */
	if (write(log_fd, line, n) < 0)
		return;
}

void zf_bug(const char *file, int line, const char *cond)
{
	zf_log(ZF_LOG_ERR, "internal bug at %s:%d: '%s'", file, line, cond);
	abort();
}
