/*
 * common/progress.c - one progress line on a terminal (see progress.h)
 *
 * Sizes are binary units (zf_size_human), as everywhere else the commands
 * print them; the time left is the remaining amount over the rate since
 * the first update, said once 2 s and 2 % of history make it mean something.
 */
#include "config.h"

#include <stdio.h>
#include <unistd.h>

#include "common/progress.h"
#include "common/util.h"

/* no more than ten drawings a second: a terminal over ssh keeps up */
#define PROGRESS_EVERY_NS 100000000ull
/* the bar's width: the whole line stays within 80 columns */
#define PROGRESS_BAR 20

void zf_progress_init(struct zf_progress *p, const char *what, const char *unit)
{
	*p = (struct zf_progress){ .what = what, .unit = unit, .tty = isatty(2) };
}

/* an amount as the line says it: "12.3 MiB" or "1024" */
static void amount(const struct zf_progress *p, uint64_t n, char *buf, size_t len)
{
	if (p->unit)
		snprintf(buf, len, "%llu", (unsigned long long)n);
	else
		zf_size_human(n, buf, len);
}

/* seconds as "42 s", "3 min 20 s", "2 h 05 min" */
static void duration(uint64_t s, char *buf, size_t len)
{
	if (s < 60)
		snprintf(buf, len, "%llu s", (unsigned long long)s);
	else if (s < 3600)
		snprintf(buf, len, "%llu min %02llu s", (unsigned long long)s / 60,
			 (unsigned long long)s % 60);
	else
		snprintf(buf, len, "%llu h %02llu min", (unsigned long long)s / 3600,
			 (unsigned long long)s / 60 % 60);
}

void zf_progress_update(struct zf_progress *p, uint64_t done, uint64_t total, const char *note)
{
	char bar[PROGRESS_BAR + 9] = "", d[32], t[40] = "", rate[48] = "", left[48] = "";
	uint64_t now = zf_mono_ns();
	double el, r = 0;
	int fill, i;

	if (!p->tty)
		return;
	if (!p->started) {
		p->started = 1;
		p->done0 = done;
		p->t0 = now;
	} else if (now - p->drawn < PROGRESS_EVERY_NS && !(total && done >= total)) {
		return;
	}
	p->drawn = now;
	el = (now - p->t0) / 1e9;
	if (el > 0 && done > p->done0)
		r = (done - p->done0) / el;
	amount(p, done, d, sizeof(d));
	if (total) {
		char ts[32];

		/* "[=====>              ]  25% " */
		fill = done >= total ? PROGRESS_BAR : (int)(done * PROGRESS_BAR / total);
		bar[0] = '[';
		for (i = 0; i < PROGRESS_BAR; i++)
			bar[i + 1] = i < fill ? '=' : i == fill ? '>' : ' ';
		snprintf(bar + PROGRESS_BAR + 1, sizeof(bar) - PROGRESS_BAR - 1, "] %3u%% ",
			 (unsigned int)(done >= total ? 100 : done * 100 / total));
		amount(p, total, ts, sizeof(ts));
		snprintf(t, sizeof(t), " of %s", ts);
	}
	if (r > 0) {
		char rs[32];

		amount(p, (uint64_t)r, rs, sizeof(rs));
		snprintf(rate, sizeof(rate), ", %s/s", rs);
		/* the time left once the rate means something: 2 s and 2 % in */
		if (total && done < total && el >= 2 && (done - p->done0) * 50 >= total) {
			char ds[32];

			duration((uint64_t)((total - done) / r) + 1, ds, sizeof(ds));
			snprintf(left, sizeof(left), ", %s left", ds);
		}
	}
	fprintf(stderr, "\r\033[K%s: %s%s%s%s%s%s%s%s", p->what, bar, d, t, p->unit ? " " : "",
		p->unit ? p->unit : "", rate, left, note ? note : "");
	fflush(stderr);
	p->shown = 1;
}

void zf_progress_say(struct zf_progress *p, const char *text)
{
	uint64_t now = zf_mono_ns();

	if (!p->tty || (p->shown && now - p->drawn < PROGRESS_EVERY_NS))
		return;
	p->drawn = now;
	fprintf(stderr, "\r\033[K%s: %s", p->what, text);
	fflush(stderr);
	p->shown = 1;
}

void zf_progress_clear(struct zf_progress *p)
{
	if (p->shown) {
		fprintf(stderr, "\r\033[K");
		fflush(stderr);
	}
	p->shown = 0;
}
