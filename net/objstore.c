/*
 * net/objstore.c - the object-store interface: URL dispatch, argument
 * checks, result checks, listing de-duplication, counters
 *
 * Every backend's answers pass through here, so the guarantees of
 * objstore.h hold whatever the backend or the server does: a get returns
 * exactly the bytes asked for or -EIO, a listing reports each key once.
 *
 * Locking: none here; a listing's de-duplication table belongs to its call.
 * Not here: the backends (file.c, s3.c, fault.c).
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/htab.h"
#include "common/log.h"
#include "common/util.h"
#include "net/objstore.h"
#include "net/objstore_internal.h"

const char *zf_objstore_errname(int err)
{
	const char *n = strerrorname_np(err < 0 ? -err : err);

	return n ? n : "E?";
}

void zf_objstore_open_fail(const struct zf_objstore_opts *o, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (o && o->why && o->why_len)
		snprintf(o->why, o->why_len, "%s", msg);
	else
		zf_err("%s", msg);
}

int zf_objstore_open(const char *url, const struct zf_objstore_opts *opts,
		     struct zf_objstore **ret_store)
{
	static const struct zf_objstore_opts defaults;
	struct zf_objstore *st = NULL;
	int r;

	if (!url || !ret_store)
		return -EINVAL;
	if (!opts)
		opts = &defaults;
	if (!strncmp(url, "file:", 5))
		r = zf_objstore_file_open(url, opts, &st);
	else if (!strncmp(url, "s3:", 3))
		r = zf_objstore_s3_open(url, opts, &st);
	else if (!strncmp(url, "fault:", 6))
		r = zf_objstore_fault_open(url, opts, &st);
	else {
		zf_objstore_open_fail(opts, "cannot open object store '%s': unknown scheme "
				      "(file://, s3://, fault:)", url);
		r = -EINVAL;
	}
	if (r < 0)
		return r;
	*ret_store = st;
	return 0;
}

void zf_objstore_close(struct zf_objstore *st)
{
	if (st)
		st->ops->close(st);
}

const char *zf_objstore_url(const struct zf_objstore *st)
{
	return st->url;
}

int zf_objstore_key_valid(const char *key)
{
	const char *p, *seg;
	size_t len;

	if (!key || !*key)
		return -EINVAL;
	len = strlen(key);
	if (len > ZF_OBJSTORE_KEY_MAX)
		return -EINVAL;
	if (!strncmp(key, ".zf-tmp/", 8) || !strcmp(key, ".zf-tmp"))
		return -EINVAL;
	for (p = key; *p; p++) {
		/* XML 1.0 (S3's listings) cannot carry control characters */
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return -EINVAL;
	}
	for (seg = key;; seg = p + 1) {
		size_t n;

		p = strchr(seg, '/');
		n = p ? (size_t)(p - seg) : strlen(seg);
		if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return -EINVAL;
		if (!p)
			break;
	}
	return 0;
}

static int check_key(const char *op, const char *key)
{
	if (zf_objstore_key_valid(key) < 0) {
		zf_err("cannot %s object '%s': invalid key", op, key ? key : "(null)");
		return -EINVAL;
	}
	return 0;
}

static void count_result(struct zf_objstore *st, int r)
{
	if (r < 0 && r != -ENOENT)
		zf_objstore_count(&st->cnt.errors, 1);
}

int zf_objstore_put(struct zf_objstore *st, const char *key, const void *buf, size_t len)
{
	int r;

	r = check_key("put", key);
	if (r < 0)
		return r;
	if (!buf && len)
		return -EINVAL;
	r = st->ops->put(st, key, buf ? buf : "", len);
	count_result(st, r);
	if (r == 0)
		zf_objstore_count(&st->cnt.bytes_up, len);
	return r;
}

int zf_objstore_get(struct zf_objstore *st, const char *key, uint64_t off, size_t len,
		    void **ret_buf, size_t *ret_len)
{
	struct zf_objstore_got got = { 0 };
	uint64_t want;
	int r;

	r = check_key("get", key);
	if (r < 0)
		return r;
	if (!ret_buf || !ret_len || (len && off + len < off))
		return -EINVAL;
	r = st->ops->get(st, key, off, len, &got);
	if (r < 0)
		goto out;
	/*
	 * The backend says how big the object is; the range asked for must lie
	 * inside it and the body must be exactly that range.
	 */
	if (off > got.total || (len && off + len > got.total)) {
		zf_err("cannot get '%s' bytes %llu+%zu of '%s': the object has %llu bytes", key,
		       (unsigned long long)off, len, st->url, (unsigned long long)got.total);
		r = -EIO;
		goto out_free;
	}
	want = len ? len : got.total - off;
	if (got.len != want) {
		zf_err("cannot get '%s' bytes %llu+%llu of '%s': truncated body (%zu bytes)", key,
		       (unsigned long long)off, (unsigned long long)want, st->url, got.len);
		r = -EIO;
		goto out_free;
	}
	if (!got.buf)
		got.buf = zf_malloc(1);
	*ret_buf = got.buf;
	*ret_len = got.len;
	zf_objstore_count(&st->cnt.bytes_down, got.len);
	return 0;
out_free:
	free(got.buf);
out:
	count_result(st, r);
	return r;
}

int zf_objstore_head(struct zf_objstore *st, const char *key, struct zf_objstore_stat *ret)
{
	struct zf_objstore_stat s = { 0 };
	int r;

	r = check_key("head", key);
	if (r < 0)
		return r;
	r = st->ops->head(st, key, &s);
	count_result(st, r);
	if (r == 0 && ret)
		*ret = s;
	return r;
}

/* ---- listing: every key once, whatever the pages do ---- */

struct list_dedup {
	struct zf_htab seen;	/* values: malloc'd key strings */
	zf_objstore_list_fn fn;
	void *ctx;
	uint64_t dups;
};

static int key_eq(const void *val, const void *key)
{
	return !strcmp(val, key);
}

static int list_dedup_fn(void *ctx, const char *key, uint64_t size)
{
	struct list_dedup *d = ctx;
	uint64_t h = XXH3_64bits(key, strlen(key));

	if (zf_htab_find(&d->seen, h, key_eq, key)) {
		d->dups++;
		return 0;
	}
	zf_htab_insert(&d->seen, h, zf_strdup(key));
	return d->fn(d->ctx, key, size);
}

int zf_objstore_list(struct zf_objstore *st, const char *prefix, zf_objstore_list_fn fn,
		     void *ctx)
{
	struct list_dedup d = { .fn = fn, .ctx = ctx };
	struct zf_hent *e;
	int r;

	if (!fn)
		return -EINVAL;
	if (!prefix)
		prefix = "";
	r = st->ops->list(st, prefix, list_dedup_fn, &d);
	if (d.dups)
		zf_dbg("list '%s' of '%s': %llu repeated keys dropped", prefix, st->url,
		       (unsigned long long)d.dups);
	zf_htab_foreach(&d.seen, e)
		free(e->val);
	zf_htab_free(&d.seen);
	count_result(st, r < 0 ? r : 0);
	return r;
}

int zf_objstore_delete(struct zf_objstore *st, const char *key)
{
	int r;

	r = check_key("delete", key);
	if (r < 0)
		return r;
	r = st->ops->del(st, key);
	if (r == -ENOENT)
		r = 0;
	count_result(st, r);
	return r;
}

int zf_objstore_multi_delete(struct zf_objstore *st, const char *const *keys, size_t n)
{
	size_t i;
	int r = 0;

	if (n && !keys)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		r = check_key("delete", keys[i]);
		if (r < 0)
			return r;
	}
	if (n == 0)
		return 0;
	if (st->ops->multi_del) {
		r = st->ops->multi_del(st, keys, n);
	} else {
		for (i = 0; i < n && r >= 0; i++) {
			r = st->ops->del(st, keys[i]);
			if (r == -ENOENT)
				r = 0;
		}
	}
	count_result(st, r);
	return r;
}

void zf_objstore_counters(const struct zf_objstore *st, struct zf_objstore_counters *ret)
{
	ret->requests = __atomic_load_n(&st->cnt.requests, __ATOMIC_RELAXED);
	ret->retries = __atomic_load_n(&st->cnt.retries, __ATOMIC_RELAXED);
	ret->errors = __atomic_load_n(&st->cnt.errors, __ATOMIC_RELAXED);
	ret->bytes_up = __atomic_load_n(&st->cnt.bytes_up, __ATOMIC_RELAXED);
	ret->bytes_down = __atomic_load_n(&st->cnt.bytes_down, __ATOMIC_RELAXED);
}
