/*
 * daemon/stats_print.h - what 'zerofs stats' shows, in its three forms:
 * text with human-readable sizes (the default), text with plain byte
 * counts (--bytes: what scripts grep), and JSON (--json: one object; its
 * keys are snake_case with the unit in the name, sizes in bytes, times in
 * seconds, a ratio that cannot be told is null); and a fourth,
 * --prometheus, the Prometheus text format (daemon/stats_prom.c).
 *
 * The daemon prints a mount's (daemon/control.c, "stats <form>"), the
 * command an unmounted dev-dir's (tools/stats.c): the same code, so the
 * two read alike. Pure formatting: no locks, no I/O but the stream.
 */
#ifndef ZF_DAEMON_STATS_PRINT_H
#define ZF_DAEMON_STATS_PRINT_H

#include <stdio.h>

#include "storage/fs.h"
#include "tier/remote.h"

enum zf_stats_form {
	ZF_STATS_HUMAN = 0,	/* text, sizes as 1.5 MiB */
	ZF_STATS_BYTES,		/* text, sizes as byte counts */
	ZF_STATS_JSON,
	ZF_STATS_PROMETHEUS,	/* Prometheus text exposition (daemon/stats_prom.c) */
};

/* what there is to show; fs always, at most one of rm and pending */
struct zf_stats_view {
	const struct zf_fs_stats *fs;
	const struct zf_remote_stats *rm;	  /* a mount's bucket, or NULL */
	const struct zf_remote_pending *pending; /* an unmounted dev-dir's, or NULL */
	int mounted;				  /* read from a daemon */
};

void zf_stats_print(FILE *out, const struct zf_stats_view *v, enum zf_stats_form form);

/* the Prometheus text exposition of v (daemon/stats_prom.c) */
void zf_stats_print_prometheus(FILE *out, const struct zf_stats_view *v);

/* the form named s ("human", "bytes", "json", "prometheus"): 0 and *ret, or -EINVAL */
int zf_stats_form_parse(const char *s, enum zf_stats_form *ret);
/* its name, as zf_stats_form_parse reads it */
const char *zf_stats_form_name(enum zf_stats_form form);

#endif
