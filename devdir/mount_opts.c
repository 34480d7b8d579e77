/*
 * devdir/mount_opts.c - the mount -o option string (see mount_opts.h)
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "devdir/mount_opts.h"

int zf_parse_int(const char *s, long lo, long hi, long *ret)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *s == 0 || *end || v < lo || v > hi)
		return -EINVAL;
	*ret = v;
	return 0;
}

int zf_parse_size(const char *s, uint64_t *ret)
{
	unsigned int shift = 0;
	unsigned long long v;
	char *end;

	errno = 0;
	if (*s == '-' || *s == '+')
		return -EINVAL; /* strtoull would take "-1" as 2^64 - 1 */
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	}
	if (shift && v > (~0ull >> shift))
		return -EINVAL; /* it would wrap (16777217T is not 1T) */
	v <<= shift;
	if (*end && strcmp(end, "B") && strcmp(end, "iB"))
		return -EINVAL;
	*ret = v;
	return 0;
}

/* options that mount(8) passes but that mean nothing to FUSE */
static int mount8_only(const char *o)
{
	static const char *const skip[] = { "defaults", "auto", "noauto", "user", "nouser",
					    "users", "_netdev", "nofail", "rw", "owner", "group",
					    "comment", NULL };
	int i;

	if (!strncmp(o, "x-", 2) || !strncmp(o, "comment=", 8))
		return 1;
	for (i = 0; skip[i]; i++)
		if (!strcmp(o, skip[i]))
			return 1;
	return 0;
}

/* an option that takes seconds lo..hi (the range said in why) into *ret */
static int opt_secs(const char *tok, long lo, long hi, const char *range, long *ret, char *why,
		    size_t len)
{
	if (zf_parse_int(strchr(tok, '=') + 1, lo, hi, ret) == 0)
		return 0;
	snprintf(why, len, "invalid '%s' (%s)", tok, range);
	return -EINVAL;
}

/* one option that is not zerofs's own: for libfuse, unless only mount(8)'s */
static int opt_fuse(const char *tok, struct zf_mount_opts *o)
{
	if (mount8_only(tok))
		return 0;
	if (strlen(o->fuse) + strlen(tok) + 2 > sizeof(o->fuse))
		return -E2BIG;
	if (*o->fuse)
		strcat(o->fuse, ",");
	strcat(o->fuse, tok);
	return 0;
}

/* one option of the list: 0, -EINVAL (why says which), -E2BIG */
static int opt_one(const char *tok, struct zf_mount_opts *o, char *why, size_t len)
{
	long v;
	int r;

	if (!strncmp(tok, "commit=", 7)) {
		r = opt_secs(tok, 1, 3600, "1..3600 seconds", &v, why, len);
		if (r == 0)
			o->commit_secs = v;
	} else if (!strncmp(tok, "timeout=", 8)) {
		r = opt_secs(tok, 0, 3600, "0..3600 seconds", &v, why, len);
		if (r == 0)
			o->timeout = v ? v : 0.001; /* 0 would be the daemon's default */
	} else if (!strcmp(tok, "nonempty")) {
		o->nonempty = 1; /* ours: libfuse 3 has no such option */
		r = 0;
	} else if (!strncmp(tok, "log=", 4)) {
		r = tok[4] && strlen(tok + 4) < sizeof(o->log) ? 0 : -EINVAL;
		if (r == 0)
			snprintf(o->log, sizeof(o->log), "%s", tok + 4);
		else
			snprintf(why, len, "invalid '%s' (syslog, stderr or a file)", tok);
	} else if (!strncmp(tok, "metrics_file=", 13)) {
		/* absolute: the daemon's working directory is "/" */
		r = tok[13] == '/' && strlen(tok + 13) < sizeof(o->metrics_file) ? 0 : -EINVAL;
		if (r == 0)
			snprintf(o->metrics_file, sizeof(o->metrics_file), "%s", tok + 13);
		else
			snprintf(why, len, "invalid '%s' (an absolute path)", tok);
	} else if (!strncmp(tok, "metrics_interval=", 17)) {
		r = opt_secs(tok, 1, 3600, "1..3600 seconds", &v, why, len);
		if (r == 0)
			o->metrics_secs = v;
	} else if (!strncmp(tok, "log_level=", 10)) {
		enum zf_log_level l;

		r = zf_log_level_parse(tok + 10, &l);
		if (r == 0)
			o->log_level = l;
		else
			snprintf(why, len, "invalid '%s' (error, warn, info or debug)", tok);
	} else if (!strncmp(tok, "remote=", 7)) {
		snprintf(o->url, sizeof(o->url), "%s", tok + 7);
		o->dd.url = o->url;
		r = 0;
	} else if (!strncmp(tok, "cache_size=", 11)) {
		r = zf_parse_size(tok + 11, &o->dd.remote.local_budget);
		if (r < 0)
			snprintf(why, len, "invalid '%s' (like 64M or 2G)", tok);
	} else if (!strncmp(tok, "fetch_timeout=", 14)) {
		r = opt_secs(tok, 1, 86400, "seconds", &v, why, len);
		if (r == 0)
			o->dd.remote.fetch_timeout_ms = v * 1000;
	} else if (!strncmp(tok, "write_wait=", 11)) {
		r = opt_secs(tok, 1, 86400, "seconds", &v, why, len);
		if (r == 0)
			o->dd.remote.write_wait_ms = v * 1000;
	} else if (!strncmp(tok, "ckpt=", 5)) {
		r = opt_secs(tok, 1, 65536, "MiB of log per checkpoint", &v, why, len);
		if (r == 0)
			o->dd.open.ckpt_bytes = (uint64_t)v << 20;
	} else if (!strncmp(tok, "mem=", 4)) {
		r = zf_parse_size(tok + 4, &o->dd.open.mem_bytes);
		if (r == 0 && o->dd.open.mem_bytes < (16ull << 20))
			r = -EINVAL; /* the write buffers alone want 8 MiB (fs.h) */
		if (r < 0)
			snprintf(why, len, "invalid '%s' (like 256M; at least 16M)", tok);
	} else if (!strncmp(tok, "max_delay=", 10)) {
		r = opt_secs(tok, 1, 86400, "seconds", &v, why, len);
		if (r == 0)
			o->dd.remote.max_delay_s = v;
	} else if (!strncmp(tok, "replica=", 8)) {
		r = tok[8] && strlen(tok + 8) < sizeof(o->replica) ? 0 : -EINVAL;
		if (r == 0)
			snprintf(o->replica, sizeof(o->replica), "%s", tok + 8);
		else
			snprintf(why, len, "invalid '%s' (the writer's bucket URL)", tok);
	} else if (!strncmp(tok, "snapshot=", 9)) {
		r = tok[9] && strlen(tok + 9) < sizeof(o->snapshot) ? 0 : -EINVAL;
		if (r == 0)
			snprintf(o->snapshot, sizeof(o->snapshot), "%s", tok + 9);
		else
			snprintf(why, len, "invalid '%s' (a snapshot's name)", tok);
	} else if (!strncmp(tok, "poll=", 5)) {
		r = opt_secs(tok, 1, 3600, "1..3600 seconds", &v, why, len);
		if (r == 0)
			o->dd.remote.interval_ms = v * 1000;
	} else if (!strncmp(tok, "merge_after=", 12)) {
		r = opt_secs(tok, 2, 100000, "small segments", &v, why, len);
		if (r == 0)
			o->dd.remote.merge_after = v;
	} else {
		r = opt_fuse(tok, o);
	}
	return r;
}

void zf_mount_opts_init(struct zf_mount_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->log_level = ZF_MOUNT_LOG_LEVEL_UNSET;
}

int zf_mount_opts_parse(const char *arg, struct zf_mount_opts *o, char *why, size_t len)
{
	char *copy = zf_strdup(arg), *save, *tok;
	int r = 0;

	if (len)
		why[0] = 0;
	for (tok = strtok_r(copy, ",", &save); tok && r == 0; tok = strtok_r(NULL, ",", &save))
		r = opt_one(tok, o, why, len);
	free(copy);
	return r;
}
