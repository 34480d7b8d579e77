/*
 * net/objstore_internal.h - what a backend implements (net/ only)
 *
 * net/objstore.c validates arguments, de-duplicates listings, checks every
 * get against the size the backend reports and keeps the counters; the
 * backends (file.c, s3.c, fault.c) only move bytes. A backend embeds
 * struct zf_objstore as its first member.
 */
#ifndef ZF_NET_OBJSTORE_INTERNAL_H
#define ZF_NET_OBJSTORE_INTERNAL_H

#include "net/objstore.h"

/* What a backend's get hands back to the dispatcher. */
struct zf_objstore_got {
	void *buf;		/* malloc'd, owned by the dispatcher once returned */
	size_t len;		/* bytes in buf */
	uint64_t total;		/* size of the whole object, as the store reports it */
};

struct zf_objstore_ops {
	const char *scheme;
	int (*put)(struct zf_objstore *st, const char *key, const void *buf, size_t len);
	/* bytes [off, off+len) (len 0: to the end); may return fewer if the object
	 * is shorter: the dispatcher turns that into -EIO */
	int (*get)(struct zf_objstore *st, const char *key, uint64_t off, size_t len,
		   struct zf_objstore_got *got);
	int (*head)(struct zf_objstore *st, const char *key, struct zf_objstore_stat *ret);
	/* may report a key more than once */
	int (*list)(struct zf_objstore *st, const char *prefix, zf_objstore_list_fn fn, void *ctx);
	int (*del)(struct zf_objstore *st, const char *key);
	int (*multi_del)(struct zf_objstore *st, const char *const *keys, size_t n);
	void (*close)(struct zf_objstore *st);
};

struct zf_objstore {
	const struct zf_objstore_ops *ops;
	char *url;
	struct zf_objstore_counters cnt;	/* updated with __atomic builtins */
};

static inline void zf_objstore_count(uint64_t *c, uint64_t n)
{
	__atomic_fetch_add(c, n, __ATOMIC_RELAXED);
}

int zf_objstore_file_open(const char *url, const struct zf_objstore_opts *opts,
			  struct zf_objstore **ret_store);
int zf_objstore_s3_open(const char *url, const struct zf_objstore_opts *opts,
			struct zf_objstore **ret_store);
int zf_objstore_fault_open(const char *url, const struct zf_objstore_opts *opts,
			   struct zf_objstore **ret_store);

/*
 * Say why an open fails: into o->why when the caller asked for it, else
 * logged as an error. Backends' open paths use this instead of zf_err.
 */
void zf_objstore_open_fail(const struct zf_objstore_opts *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* an errno as its name ("EACCES"), for log lines */
const char *zf_objstore_errname(int err);

#endif
