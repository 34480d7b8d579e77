/*
 * net/fault.c - a store that wraps another one and injects failures
 *
 * For tests: fail the Nth call, fail calls at a (seeded, reproducible) rate,
 * add latency, truncate bodies of gets, switch an outage on and off (by call
 * or by the existence of a file, so that a shell test can cut the "network"
 * of a running daemon), report listed keys twice, stall the gets of chosen
 * objects (for a time, or while a file names them: a shell test picks the
 * object and ends the stall at runtime). Injected failures look like the
 * inner store's own final errors: the caller cannot tell them apart. A stall
 * is invisible to the caller, so it is the one fault logged as a warning.
 *
 * Locking: fs->lock guards the parameters, the counters and the random
 * state; it is never held across a call into the inner store or a sleep.
 * There is no shutdown to interrupt a stall for: zf_objstore_close() is the
 * last call, made when no other call is in progress.
 * Not here: retries (the inner store does them; what comes out of this
 * wrapper is what a caller sees after them).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/lock.h"
#include "common/log.h"
#include "common/util.h"
#include "net/objstore_internal.h"

struct fault_store {
	struct zf_objstore base;
	struct zf_objstore *inner;
	struct zf_mutex lock;		/* rank ZF_RANK_FAULT: the fields below */
	struct zf_objstore_fault_params p;	/* protected by lock; its strings owned */
	uint64_t nth_count;	/* matching calls since p was set; protected by lock */
	uint64_t rng;		/* splitmix64 state; protected by lock */
	struct zf_objstore_fault_stats stats;	/* protected by lock */
};

static const struct zf_objstore_ops fault_ops;

static struct fault_store *to_fault(struct zf_objstore *st)
{
	return st && st->ops == &fault_ops ? (struct fault_store *)st : NULL;
}

static uint64_t fault_rand(struct fault_store *fs)
{
	uint64_t z = (fs->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* uniform in [0, 1) */
static double fault_unit(struct fault_store *fs)
{
	return (fault_rand(fs) >> 11) * (1.0 / 9007199254740992.0);
}

static void fault_sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/*
 * How often a stall looks whether its stall_file is still there: a test's
 * 'rm' ends the stall within 10 ms, at 100 access(2) calls a second.
 */
#define STALL_POLL_MS 10

/*
 * The stall key a stall_file names: its first line without the line end.
 * Returns 0 and *key replaced (a malloc'd string) when the file names one,
 * 0 and *key untouched when it is empty, -errno when it cannot be read
 * (-ENOENT: the stall is off).
 */
static int stall_file_key(const char *file, char **key)
{
	char line[ZF_OBJSTORE_KEY_MAX + 2];
	size_t n;
	FILE *f;

	f = fopen(file, "re");
	if (!f)
		return -errno;
	if (!fgets(line, sizeof(line), f))
		line[0] = 0;
	fclose(f);
	n = strcspn(line, "\r\n");
	line[n] = 0;
	if (n) {
		free(*key);
		*key = zf_strdup(line);
	}
	return 0;
}

/*
 * A get of key waits here (without fs->lock) when the stall is on and key
 * contains the stall key: stall_ms, or until the stall_file is removed.
 */
static void fault_stall(struct fault_store *fs, const char *key)
{
	char *file = NULL, *want = NULL;
	uint64_t start, end, now;
	unsigned int ms;

	zf_mutex_lock(&fs->lock);
	ms = fs->p.stall_ms;
	if (ms) {
		want = zf_strdup(fs->p.stall_key ? fs->p.stall_key : "");
		if (fs->p.stall_file)
			file = zf_strdup(fs->p.stall_file);
	}
	zf_mutex_unlock(&fs->lock);
	if (!ms || (file && stall_file_key(file, &want) < 0) || !strstr(key, want))
		goto out;

	zf_mutex_lock(&fs->lock);
	fs->stats.stalled++;
	zf_mutex_unlock(&fs->lock);
	zf_warn("fault: get '%s' of '%s' stalls for %u ms%s%s%s", key, fs->base.url, ms,
		file ? " or until '" : "", file ? file : "", file ? "' is removed" : "");
	start = zf_mono_ns();
	end = start + (uint64_t)ms * 1000000;
	if (!file) {
		fault_sleep_ms(ms);
	} else {
		while ((now = zf_mono_ns()) < end && access(file, F_OK) == 0) {
			uint64_t left = (end - now + 999999) / 1000000;

			fault_sleep_ms(left < STALL_POLL_MS ? (unsigned int)left : STALL_POLL_MS);
		}
	}
	zf_dbg("fault: get '%s' of '%s' goes on after %llu ms", key, fs->base.url,
	       (unsigned long long)((zf_mono_ns() - start) / 1000000));
out:
	free(file);
	free(want);
}

/*
 * Before each call: sleep the latency, then decide. Returns 0 to pass the
 * call through or the -errno to fail it with.
 */
static int fault_enter(struct fault_store *fs, unsigned int op, const char *what,
		       const char *key)
{
	unsigned int latency;
	char *file = NULL;
	int outage, r = 0;

	zf_mutex_lock(&fs->lock);
	latency = fs->p.latency_ms;
	outage = fs->p.outage;
	if (fs->p.outage_file)
		file = zf_strdup(fs->p.outage_file);
	zf_mutex_unlock(&fs->lock);

	if (latency)
		fault_sleep_ms(latency);
	if (file) {
		struct stat sb;

		if (stat(file, &sb) == 0)
			outage = 1;
		free(file);
	}

	zf_mutex_lock(&fs->lock);
	fs->stats.calls++;
	if (outage) {
		r = -ECONNREFUSED;
	} else if (!fs->p.ops || (fs->p.ops & op)) {
		int err = fs->p.err ? -abs(fs->p.err) : -EIO;

		fs->nth_count++;
		if (fs->p.fail_nth && fs->nth_count == fs->p.fail_nth)
			r = err;
		else if (fs->p.error_rate > 0 && fault_unit(fs) < fs->p.error_rate)
			r = err;
	}
	if (r)
		fs->stats.injected++;
	zf_mutex_unlock(&fs->lock);
	if (r)
		zf_dbg("fault: %s '%s' of '%s' fails with %s", what, key ? key : "",
		       fs->base.url, zf_objstore_errname(r));
	return r;
}

static int fault_put(struct zf_objstore *st, const char *key, const void *buf, size_t len)
{
	struct fault_store *fs = to_fault(st);
	int r = fault_enter(fs, ZF_OBJSTORE_OP_PUT, "put", key);

	return r ? r : fs->inner->ops->put(fs->inner, key, buf, len);
}

static int fault_get(struct zf_objstore *st, const char *key, uint64_t off, size_t len,
		     struct zf_objstore_got *got)
{
	struct fault_store *fs = to_fault(st);
	int r = fault_enter(fs, ZF_OBJSTORE_OP_GET, "get", key), cut = 0;

	if (r)
		return r;
	fault_stall(fs, key);
	r = fs->inner->ops->get(fs->inner, key, off, len, got);
	if (r < 0 || got->len == 0)
		return r;
	zf_mutex_lock(&fs->lock);
	if (fs->p.truncate_rate > 0 && (!fs->p.ops || (fs->p.ops & ZF_OBJSTORE_OP_GET)) &&
	    fault_unit(fs) < fs->p.truncate_rate) {
		cut = 1;
		fs->stats.truncated++;
	}
	zf_mutex_unlock(&fs->lock);
	if (cut) {
		/* as if the connection closed half-way: the size stays what it was */
		zf_dbg("fault: get '%s' of '%s' truncated to %zu of %zu bytes", key, st->url,
		       got->len / 2, got->len);
		got->len /= 2;
	}
	return 0;
}

static int fault_head(struct zf_objstore *st, const char *key, struct zf_objstore_stat *ret)
{
	struct fault_store *fs = to_fault(st);
	int r = fault_enter(fs, ZF_OBJSTORE_OP_HEAD, "head", key);

	return r ? r : fs->inner->ops->head(fs->inner, key, ret);
}

struct fault_list {
	zf_objstore_list_fn fn;
	void *ctx;
};

static int fault_list_twice(void *ctx, const char *key, uint64_t size)
{
	struct fault_list *fl = ctx;
	int r = fl->fn(fl->ctx, key, size);

	return r ? r : fl->fn(fl->ctx, key, size);
}

static int fault_list(struct zf_objstore *st, const char *prefix, zf_objstore_list_fn fn,
		      void *ctx)
{
	struct fault_store *fs = to_fault(st);
	struct fault_list fl = { fn, ctx };
	int r = fault_enter(fs, ZF_OBJSTORE_OP_LIST, "list", prefix), dup;

	if (r)
		return r;
	zf_mutex_lock(&fs->lock);
	dup = fs->p.list_dup;
	zf_mutex_unlock(&fs->lock);
	if (dup)
		return fs->inner->ops->list(fs->inner, prefix, fault_list_twice, &fl);
	return fs->inner->ops->list(fs->inner, prefix, fn, ctx);
}

static int fault_del(struct zf_objstore *st, const char *key)
{
	struct fault_store *fs = to_fault(st);
	int r = fault_enter(fs, ZF_OBJSTORE_OP_DELETE, "delete", key);

	return r ? r : fs->inner->ops->del(fs->inner, key);
}

static int fault_multi_del(struct zf_objstore *st, const char *const *keys, size_t n)
{
	struct fault_store *fs = to_fault(st);
	int r = fault_enter(fs, ZF_OBJSTORE_OP_DELETE, "multi-delete", keys[0]);
	size_t i;

	if (r)
		return r;
	if (fs->inner->ops->multi_del)
		return fs->inner->ops->multi_del(fs->inner, keys, n);
	for (i = 0; i < n; i++) {
		r = fs->inner->ops->del(fs->inner, keys[i]);
		if (r < 0 && r != -ENOENT)
			return r;
	}
	return 0;
}

/* the strings of a zf_objstore_fault_params the wrapper owns */
static void fault_params_free(struct zf_objstore_fault_params *p)
{
	free((char *)p->outage_file);
	free((char *)p->stall_key);
	free((char *)p->stall_file);
}

static const char *strdup_or_null(const char *s)
{
	return s ? zf_strdup(s) : NULL;
}

static void fault_close(struct zf_objstore *st)
{
	struct fault_store *fs = to_fault(st);

	zf_objstore_close(fs->inner);
	fault_params_free(&fs->p);
	zf_mutex_destroy(&fs->lock);
	free(fs->base.url);
	free(fs);
}

static const struct zf_objstore_ops fault_ops = {
	.scheme = "fault",
	.put = fault_put,
	.get = fault_get,
	.head = fault_head,
	.list = fault_list,
	.del = fault_del,
	.multi_del = fault_multi_del,
	.close = fault_close,
};

/* copy p into fs->p (caller holds fs->lock or owns fs alone) */
static void fault_apply(struct fault_store *fs, const struct zf_objstore_fault_params *p)
{
	fault_params_free(&fs->p);
	fs->p = *p;
	fs->p.outage_file = strdup_or_null(p->outage_file);
	fs->p.stall_key = strdup_or_null(p->stall_key);
	fs->p.stall_file = strdup_or_null(p->stall_file);
	fs->rng = p->seed;
	fs->nth_count = 0;
}

static int fault_check(const struct zf_objstore_fault_params *p)
{
	if (p->error_rate < 0 || p->error_rate > 1 || p->truncate_rate < 0 ||
	    p->truncate_rate > 1)
		return -EINVAL;
	return 0;
}

int zf_objstore_fault_wrap(struct zf_objstore *inner, const struct zf_objstore_fault_params *p,
			   struct zf_objstore **ret_store)
{
	static const struct zf_objstore_fault_params none;
	struct fault_store *fs;
	size_t n;

	if (!inner)
		return -EINVAL;
	if (!p)
		p = &none;
	if (fault_check(p) < 0) {
		zf_objstore_close(inner);
		return -EINVAL;
	}
	fs = zf_calloc(1, sizeof(*fs));
	fs->base.ops = &fault_ops;
	n = strlen(inner->url) + sizeof("fault:");
	fs->base.url = zf_malloc(n);
	snprintf(fs->base.url, n, "fault:%s", inner->url);
	fs->inner = inner;
	zf_mutex_init(&fs->lock, ZF_RANK_FAULT, "fault->lock");
	fault_apply(fs, p);
	*ret_store = &fs->base;
	return 0;
}

int zf_objstore_fault_set(struct zf_objstore *st, const struct zf_objstore_fault_params *p)
{
	struct fault_store *fs = to_fault(st);

	if (!fs || !p || fault_check(p) < 0)
		return -EINVAL;
	zf_mutex_lock(&fs->lock);
	fault_apply(fs, p);
	zf_mutex_unlock(&fs->lock);
	return 0;
}

int zf_objstore_fault_set_outage(struct zf_objstore *st, int on)
{
	struct fault_store *fs = to_fault(st);

	if (!fs)
		return -EINVAL;
	zf_mutex_lock(&fs->lock);
	fs->p.outage = !!on;
	zf_mutex_unlock(&fs->lock);
	return 0;
}

int zf_objstore_fault_stats(struct zf_objstore *st, struct zf_objstore_fault_stats *ret)
{
	struct fault_store *fs = to_fault(st);

	if (!fs || !ret)
		return -EINVAL;
	zf_mutex_lock(&fs->lock);
	*ret = fs->stats;
	zf_mutex_unlock(&fs->lock);
	return 0;
}

/* ---- fault:[params;]<inner-url> ---- */

static int parse_err(const char *v, int *ret)
{
	static const struct {
		const char *name;
		int err;
	} names[] = {
		{ "EIO", EIO }, { "ETIMEDOUT", ETIMEDOUT }, { "ECONNREFUSED", ECONNREFUSED },
		{ "EACCES", EACCES }, { "ENOENT", ENOENT }, { "ENOSPC", ENOSPC },
		{ "EAGAIN", EAGAIN },
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(v, names[i].name)) {
			*ret = -names[i].err;
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_ops(char *v, unsigned int *ret)
{
	unsigned int m = 0;
	char *save = NULL, *t;

	for (t = strtok_r(v, "+", &save); t; t = strtok_r(NULL, "+", &save)) {
		if (!strcmp(t, "put"))
			m |= ZF_OBJSTORE_OP_PUT;
		else if (!strcmp(t, "get"))
			m |= ZF_OBJSTORE_OP_GET;
		else if (!strcmp(t, "head"))
			m |= ZF_OBJSTORE_OP_HEAD;
		else if (!strcmp(t, "list"))
			m |= ZF_OBJSTORE_OP_LIST;
		else if (!strcmp(t, "delete"))
			m |= ZF_OBJSTORE_OP_DELETE;
		else
			return -EINVAL;
	}
	*ret = m;
	return 0;
}

static int parse_num(const char *v, double lo, double hi, double *ret)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(v, &end);
	/* !(in range), not (out of range): a NaN is neither */
	if (errno || end == v || *end || !(d >= lo && d <= hi))
		return -EINVAL;
	*ret = d;
	return 0;
}

/* parse "k=v,k=v" into p; its strings point into s */
static int fault_parse(char *s, struct zf_objstore_fault_params *p)
{
	char *save = NULL, *kv;

	for (kv = strtok_r(s, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *v = strchr(kv, '=');
		double d = 0; /* this key's: a bad value is cast before it is refused */
		int r = 0;

		if (!v)
			return -EINVAL;
		*v++ = 0;
		if (!strcmp(kv, "nth")) {
			r = parse_num(v, 0, 1e18, &d);
			p->fail_nth = (unsigned long)d;
		} else if (!strcmp(kv, "rate")) {
			r = parse_num(v, 0, 1, &p->error_rate);
		} else if (!strcmp(kv, "seed")) {
			r = parse_num(v, 0, 1.8e19, &d);
			p->seed = (uint64_t)d;
		} else if (!strcmp(kv, "latency")) {
			r = parse_num(v, 0, 3600000, &d);
			p->latency_ms = (unsigned int)d;
		} else if (!strcmp(kv, "truncate")) {
			r = parse_num(v, 0, 1, &p->truncate_rate);
		} else if (!strcmp(kv, "outage")) {
			r = parse_num(v, 0, 1, &d);
			p->outage = d != 0;
		} else if (!strcmp(kv, "list_dup")) {
			r = parse_num(v, 0, 1, &d);
			p->list_dup = d != 0;
		} else if (!strcmp(kv, "err")) {
			r = parse_err(v, &p->err);
		} else if (!strcmp(kv, "ops")) {
			r = parse_ops(v, &p->ops);
		} else if (!strcmp(kv, "outage_file")) {
			p->outage_file = v;
		} else if (!strcmp(kv, "stall_ms")) {
			r = parse_num(v, 0, 3600000, &d);
			p->stall_ms = (unsigned int)d;
		} else if (!strcmp(kv, "stall_key")) {
			p->stall_key = v;
		} else if (!strcmp(kv, "stall_file")) {
			p->stall_file = v;
		} else {
			r = -EINVAL;
		}
		if (r < 0)
			return r;
	}
	return 0;
}

int zf_objstore_fault_open(const char *url, const struct zf_objstore_opts *opts,
			   struct zf_objstore **ret_store)
{
	struct zf_objstore_fault_params p = { 0 };
	const char *rest = url + strlen("fault:");
	struct zf_objstore *inner;
	char *params = NULL;
	int r;

	/* parameters come first, up to a ';', unless the inner URL starts at once */
	if (strncmp(rest, "file:", 5) && strncmp(rest, "s3:", 3) && strncmp(rest, "fault:", 6)) {
		const char *semi = strchr(rest, ';');

		if (!semi) {
			zf_objstore_open_fail(opts, "cannot open object store '%s': want "
					      "fault:[params;]<url>", url);
			return -EINVAL;
		}
		params = strndup(rest, semi - rest);
		if (!params)
			return -ENOMEM;
		rest = semi + 1;
		r = fault_parse(params, &p);
		if (r < 0) {
			zf_objstore_open_fail(opts, "cannot open object store '%s': bad fault "
					      "parameters", url);
			goto out_free;
		}
	}
	r = zf_objstore_open(rest, opts, &inner);
	if (r < 0)
		goto out_free;
	r = zf_objstore_fault_wrap(inner, &p, ret_store);
out_free:
	free(params);
	return r;
}
