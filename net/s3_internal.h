/*
 * net/s3_internal.h - what net/s3.c and net/s3_http.c share (net/ only)
 *
 * struct s3_store, the S3 object store, and the one call that runs a
 * request against it. s3.c builds requests (the store's operations and
 * its opening); s3_http.c sends them (curl handles, signing, retries,
 * error mapping). The parsers of the answers are in net/s3_parse.h.
 *
 * Locking: st->pool_lock guards the pool of idle curl handles (each keeps
 * its connections alive, so connections are reused across calls); it is
 * held only to push or pop a handle, never during a transfer. Everything
 * else in struct s3_store is read-only after open.
 */
#ifndef ZF_NET_S3_INTERNAL_H
#define ZF_NET_S3_INTERNAL_H

#include <curl/curl.h>

#include "common/lock.h"
#include "net/objstore_internal.h"
#include "net/s3_parse.h"

/* idle curl handles kept for reuse: more threads than this just reconnect */
#define S3_POOL_MAX 16

struct s3_store {
	struct zf_objstore base;
	char *bucket;
	char *prefix;		/* "" or ending in '/' */
	char *base_url;		/* scheme://host[:port], the bucket in it for vhost */
	char *host;		/* the Host header, signed */
	int path_style;
	char *region;
	char *access_key, *secret_key, *session_token;
	int tls_no_verify;
	char *ca_file;
	unsigned int connect_ms, stall_ms, timeout_ms, attempts, base_ms, max_ms, page;
	size_t threshold, part;
	struct zf_mutex pool_lock;	/* rank ZF_RANK_S3_POOL: pool, npool */
	CURL *pool[S3_POOL_MAX];	/* protected by pool_lock */
	int npool;		/* protected by pool_lock */
	int no_multi_delete;	/* set once the server lacked DeleteObjects; atomic */
};

/*
 * curl_global_init() once per process (thread-safe); returns its result,
 * the same on every call. Called by zf_objstore_s3_open() before anything else.
 */
CURLcode s3_curl_init(void);

/*
 * Run r against st with retries, backoff and st's timeouts. quiet_enoent:
 * a 404 is an answer, logged only at debug level. Logs one line on failure.
 * Returns 0 or -EACCES, -ENOENT, -EIO, -ETIMEDOUT, -ECONNREFUSED,
 * -EHOSTUNREACH, -EOPNOTSUPP, -EINVAL, -ENOMEM. What came back is in r
 * (r->in, r->out, r->etag, ...) until s3_req_free(r). Takes no lock of the
 * caller's; must not be called with a storage lock held.
 */
int s3_do(struct s3_store *st, struct s3_req *r, int quiet_enoent);

/* free the answer buffers of r (not r itself) */
void s3_req_free(struct s3_req *r);

#endif
