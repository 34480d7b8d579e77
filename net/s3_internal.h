/*
 * net/s3_internal.h - what net/s3.c and net/s3_http.c share (net/ only)
 *
 * struct s3_store, the S3 object store, the one call that runs a request
 * against it, and where its keys come from (s3_creds.c). s3.c builds requests (the store's operations and
 * its opening); s3_http.c sends them (curl handles, signing, retries,
 * error mapping). The parsers of the answers are in net/s3_parse.h.
 *
 * Locking: st->pool_lock guards the pool of idle curl handles (each keeps
 * its connections alive, so connections are reused across calls); it is
 * held only to push or pop a handle, never during a transfer.
 * st->creds_lock guards the keys (a credential_process's expire and are
 * replaced; s3_creds.c); the two are never held together. Everything else
 * in struct s3_store is read-only after open.
 */
#ifndef ZF_NET_S3_INTERNAL_H
#define ZF_NET_S3_INTERNAL_H

#include <curl/curl.h>
#include <sys/types.h>
#include <time.h>

#include "common/lock.h"
#include "net/objstore_internal.h"
#include "net/s3_parse.h"

/* idle curl handles kept for reuse: more threads than this just reconnect */
#define S3_POOL_MAX 16

/* keys to sign with (malloc'd; session_token may be NULL) */
struct s3_keys {
	char *access_key, *secret_key, *session_token;
	time_t expire;		/* unix time they stop working; 0: never */
};

/* free the strings of k (not k), wiping the secrets */
void s3_keys_free(struct s3_keys *k);

struct s3_store {
	struct zf_objstore base;
	char *bucket;
	char *prefix;		/* "" or ending in '/' */
	char *base_url;		/* scheme://host[:port], the bucket in it for vhost */
	char *host;		/* the Host header, signed */
	int path_style;
	char *region;
	char *profile;		/* the AWS profile named or "default", for messages */
	char *credential_process;	/* the config's command, NULL if the keys came elsewhere */
	struct zf_mutex creds_lock;	/* rank ZF_RANK_S3_CREDS: keys, creds_tried */
	struct s3_keys keys;		/* protected by creds_lock */
	time_t creds_tried;		/* last run of the process; protected by creds_lock */
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

/* ---- net/s3_creds.c ---- */

/* what the AWS config file says for one profile (strings malloc'd or NULL) */
struct s3_config {
	char *path;		/* the file's path (it may not exist) */
	int found;		/* the profile's section is in it */
	char *region, *endpoint_url, *credential_process;
	char *access_key, *secret_key, *session_token;
	mode_t mode;		/* the file's: keys and commands need it private */
	uid_t uid;
};

/*
 * Read profile's section of the AWS config file (o->config_file,
 * $AWS_CONFIG_FILE or ~/.aws/config) into *ret, zeroed first; no file is
 * not an error. Returns 0 or -errno (said through o). Free with
 * s3_config_free (also after a failure).
 */
int s3_config_load(const struct zf_objstore_opts *o, const char *profile, struct s3_config *ret);
void s3_config_free(struct s3_config *c);

/*
 * Set st->keys (and st->credential_process) from the sources in the order
 * s3_creds.c's header gives; st->bucket and st->profile must be set, and
 * profile is the one named explicitly (URL or options) or NULL. Returns 0,
 * or -EACCES / -errno said through o (no usable source, a file open to
 * others, a failed credential_process).
 */
int s3_creds_init(struct s3_store *st, const struct zf_objstore_opts *o, const char *profile,
		  const struct s3_config *cfg);

/*
 * Copies of the keys to sign the next request with (free with
 * s3_keys_free), after running the credential_process again when they
 * expire within 10 minutes. Returns 0, or -EACCES once they have expired
 * and a new run failed (logged). Takes st->creds_lock; no other lock held.
 */
int s3_creds_get(struct s3_store *st, struct s3_keys *ret);

/*
 * Parse a credential_process's standard output text: JSON with "Version": 1,
 * AccessKeyId, SecretAccessKey, optional SessionToken and Expiration (ISO
 * 8601, UTC). Returns 0 with *ret set (expire 0 without Expiration), or
 * -EACCES with the reason in why (why_len bytes).
 */
int s3_creds_parse_process(const char *text, struct s3_keys *ret, char *why, size_t why_len);

#endif
