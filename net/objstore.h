/*
 * net/objstore.h - one interface to object stores: s3, a local directory,
 * and a fault-injecting wrapper for tests
 *
 * A store is opened from a URL:
 *
 *   file:///abs/path              a directory stands in for a bucket
 *   s3://bucket[/prefix][?params] S3 or a compatible server, over libcurl
 *   fault:[params;]<inner-url>    wraps another store and injects failures
 *
 * Objects are immutable blobs named by keys. A put publishes atomically: a
 * reader sees the old object, the new one, or nothing — never a part. Keys
 * are relative to the store's prefix and are validated the same way by every
 * backend (see zf_objstore_key_valid()), so that a key that works on file://
 * works on s3:// and back.
 *
 * Errors are 0 / -errno. Every backend maps its failures the same way:
 *   -ENOENT        no such object (a missing key is success for delete)
 *   -EACCES        credentials refused (403, InvalidAccessKeyId,
 *                  SignatureDoesNotMatch); never retried
 *   -EIO           the store failed, or returned something inconsistent
 *                  (short or truncated body, wrong Content-Range, range
 *                  outside the object)
 *   -ETIMEDOUT     no answer within the configured time
 *   -ECONNREFUSED  nobody listening (after the retries)
 *   -EINVAL        bad URL, bad key, bad option
 * Transient failures (5xx, 429, timeouts, connection errors) are retried
 * inside the call with exponential backoff and jitter, bounded by
 * max_attempts and timeout_ms; the caller only sees the final outcome, and
 * the store logs one line carrying the original HTTP status / S3 error code.
 *
 * Threads: every function may be called concurrently on the same store from
 * any number of threads, except zf_objstore_close(), which must be the last
 * call. No function holds a lock while it waits for the network.
 *
 * Not here: what the objects mean (storage/), when to upload (the uploader),
 * caching of fetched data (the cache).
 */
#ifndef ZF_NET_OBJSTORE_H
#define ZF_NET_OBJSTORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct zf_objstore;

/* S3's own limit on a key, in bytes, prefix included */
#define ZF_OBJSTORE_KEY_MAX 1024
/* an ETag as text: 32 hex digits, or "<md5>-<parts>", with room to spare */
#define ZF_OBJSTORE_ETAG_MAX 80

enum zf_objstore_addressing {
	ZF_OBJSTORE_ADDR_AUTO = 0,	/* path-style with a custom endpoint, else virtual-host */
	ZF_OBJSTORE_ADDR_PATH,		/* http://endpoint/bucket/key */
	ZF_OBJSTORE_ADDR_VHOST,		/* http://bucket.endpoint/key */
};

/*
 * Options for zf_objstore_open(). A zeroed struct (or NULL) means defaults
 * everywhere; every field says what 0/NULL means. Strings are borrowed for
 * the duration of the open call only. Parameters in an s3:// URL's query
 * (?endpoint=..&region=..&addressing=path|vhost&tls_verify=0&profile=..)
 * take precedence over these fields, which take precedence over the
 * environment.
 */
struct zf_objstore_opts {
	/* --- s3 --- */
	const char *endpoint;	/* "http://127.0.0.1:9000"; NULL: $AWS_ENDPOINT_URL_S3,
				 * $AWS_ENDPOINT_URL, else https://s3.<region>.amazonaws.com */
	const char *region;	/* NULL: $AWS_REGION, $AWS_DEFAULT_REGION, else us-east-1 */
	enum zf_objstore_addressing addressing;
	/*
	 * Credentials. NULL: $AWS_ACCESS_KEY_ID + $AWS_SECRET_ACCESS_KEY
	 * (+ $AWS_SESSION_TOKEN), else the profile's section of the credentials
	 * file ($AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials), else of the
	 * config file ($AWS_CONFIG_FILE or ~/.aws/config: keys, or a
	 * credential_process); the profile is $AWS_PROFILE or "default". The
	 * config's region and endpoint_url come after the fields above and the
	 * environment. A file with keys that group or others can read is
	 * refused (-EACCES), with a message saying so (net/s3_creds.c).
	 */
	const char *access_key;
	const char *secret_key;
	const char *session_token;
	const char *profile;
	const char *credentials_file;
	const char *config_file;
	int tls_no_verify;	/* 1: do not verify the server's certificate (never the default) */
	const char *ca_file;	/* NULL: the system's CA bundle */
	unsigned int connect_timeout_ms;	/* per attempt; 0: 10 s */
	unsigned int stall_timeout_ms;	/* abort an attempt that moves no byte this long; 0: 30 s */
	unsigned int timeout_ms;	/* one call, all attempts and waits included; 0: 300 s */
	unsigned int max_attempts;	/* 0: 6; 1: never retry */
	unsigned int retry_base_ms;	/* first backoff; doubles each retry; 0: 200 ms */
	unsigned int retry_max_ms;	/* backoff cap; 0: 10 s */
	size_t multipart_threshold;	/* objects above this use multipart; 0: 64 MiB */
	size_t part_size;	/* 0: 16 MiB; at least 5 MiB (S3's minimum part) */
	unsigned int list_page_size;	/* max-keys per list request; 0: 1000 */
	/* --- file --- */
	int create;		/* 1: create the directory (mkdir -p) if missing */
	/* --- every backend --- */
	char *why;		/* NULL: a failed open logs its reason; else the reason
				 * goes here instead (one line, why_len bytes), unlogged */
	size_t why_len;
};

/*
 * Open the store named by url. On success *ret_store is set. A failed open
 * says why once: logged, or into opts->why. -EINVAL: a bad URL (scheme,
 * bucket, prefix, an unknown or bad parameter, endpoint); -EACCES: no
 * usable credentials; the file backend's -errno of its directory.
 */
int zf_objstore_open(const char *url, const struct zf_objstore_opts *opts,
		     struct zf_objstore **ret_store);

/* Close and free (accepts NULL). No call may be in flight. */
void zf_objstore_close(struct zf_objstore *st);

/* The URL the store was opened with (no credentials in it); for messages. */
const char *zf_objstore_url(const struct zf_objstore *st);

/*
 * 0 if key can name an object on every backend, else -EINVAL: non-empty,
 * at most ZF_OBJSTORE_KEY_MAX bytes, no control characters, no leading or
 * trailing '/', no empty, "." or ".." segment, and not under ".zf-tmp/"
 * (file:// keeps its temporaries there).
 */
int zf_objstore_key_valid(const char *key);

/*
 * Store buf[0..len) under key, replacing any previous object, atomically.
 * file: temporary file, fsync, rename, directory fsync. s3: one PUT up to
 * multipart_threshold, multipart above it (a failed multipart upload is
 * aborted); every request body carries Content-MD5 and a signed SHA-256.
 * Returns 0 once the object is durable and visible.
 */
int zf_objstore_put(struct zf_objstore *st, const char *key, const void *buf, size_t len);

/*
 * Read len bytes at off of the object key; len 0 means from off to the end.
 * On success *ret_buf is a malloc'd buffer the caller frees, holding exactly
 * *ret_len bytes: len when len > 0. A range not wholly inside the object, a
 * short or truncated body, or a reply that does not match the request is
 * -EIO (with a log line), never fewer bytes.
 */
int zf_objstore_get(struct zf_objstore *st, const char *key, uint64_t off, size_t len,
		    void **ret_buf, size_t *ret_len);

struct zf_objstore_stat {
	uint64_t size;
	char etag[ZF_OBJSTORE_ETAG_MAX];	/* opaque version tag, "" if unknown */
};

/* Size and tag of the object key; -ENOENT if there is none. */
int zf_objstore_head(struct zf_objstore *st, const char *key, struct zf_objstore_stat *ret);

/*
 * Called once per key. Return 0 to go on; any other value stops the listing
 * and is returned by zf_objstore_list(). key is borrowed for the call.
 */
typedef int (*zf_objstore_list_fn)(void *ctx, const char *key, uint64_t size);

/*
 * Call fn for every object whose key starts with prefix ("" for all), each
 * key exactly once (pages that repeat keys are de-duplicated), in no
 * particular order: callers never depend on list order. Continuation is
 * handled inside. fn may call other functions of the same store, never
 * zf_objstore_close().
 */
int zf_objstore_list(struct zf_objstore *st, const char *prefix, zf_objstore_list_fn fn,
		     void *ctx);

/* Delete key; a missing key is success. */
int zf_objstore_delete(struct zf_objstore *st, const char *key);

/*
 * Delete n keys (a missing key is success). s3: DeleteObjects requests of
 * up to 1000 keys with Content-MD5, falling back to single deletes when the
 * server does not implement it. On error some keys may have been deleted.
 */
int zf_objstore_multi_delete(struct zf_objstore *st, const char *const *keys, size_t n);

/* Counters since open, for stats; read without a lock (approximate). */
struct zf_objstore_counters {
	uint64_t requests;	/* requests sent (s3) or calls made (file) */
	uint64_t retries;	/* attempts repeated after a transient failure */
	uint64_t errors;	/* calls that returned an error (not -ENOENT) */
	uint64_t bytes_up;	/* payload bytes of successful puts */
	uint64_t bytes_down;	/* payload bytes of successful gets */
};
void zf_objstore_counters(const struct zf_objstore *st, struct zf_objstore_counters *ret);

/* ---- fault injection (tests) ---- */

enum zf_objstore_op {
	ZF_OBJSTORE_OP_PUT = 1 << 0,
	ZF_OBJSTORE_OP_GET = 1 << 1,
	ZF_OBJSTORE_OP_HEAD = 1 << 2,
	ZF_OBJSTORE_OP_LIST = 1 << 3,
	ZF_OBJSTORE_OP_DELETE = 1 << 4,	/* delete and multi_delete */
};

/*
 * What the fault wrapper does; zeroed = pass everything through. In a URL:
 * fault:nth=3,rate=0.1,seed=7,latency=300,truncate=1,outage=1,err=ETIMEDOUT,
 *       ops=put+get,outage_file=/path,list_dup=1,
 *       stall_ms=20000,stall_key=seg/0000000000000003,stall_file=/path;<inner-url>
 *
 * A stall holds a get (whole or ranged) whose key contains the stall key for
 * stall_ms before it goes to the inner store, as a server that takes that
 * long to answer for one object; other calls pass. With a stall_file, gets
 * stall only while that file exists, its first line (when not empty) is the
 * stall key, and a stall in progress ends as soon as the file is removed:
 * a shell test switches stalls on and off, and picks the object, at runtime.
 * No stall key at all: every get stalls. Each stall logs one warning
 * ("fault: get '<key>' of '<url>' stalls ..."), which a test can wait for.
 */
struct zf_objstore_fault_params {
	unsigned long fail_nth;	/* fail the Nth matching call (1-based) after these
				 * params are set, once; 0: off */
	double error_rate;	/* fail each matching call with this probability */
	uint64_t seed;		/* for error_rate and truncate_rate; same seed, same faults */
	unsigned int latency_ms;	/* added before every call */
	double truncate_rate;	/* a successful get returns half its body (the
				 * caller path must see -EIO) with this probability */
	int outage;		/* every call fails with -ECONNREFUSED */
	const char *outage_file;	/* outage while this file exists (copied) */
	int err;		/* the -errno injected by fail_nth/error_rate; 0: -EIO */
	unsigned int ops;	/* ZF_OBJSTORE_OP_* mask the faults apply to; 0: all */
	int list_dup;		/* list reports every key twice (a server that repeats
				 * keys across pages) */
	unsigned int stall_ms;	/* a matching get waits this long; 0: no stalls */
	const char *stall_key;	/* gets whose key contains this stall (copied);
				 * NULL or "": every get */
	const char *stall_file;	/* stall only while this file exists; its first
				 * line, if not empty, replaces stall_key (copied) */
};

/*
 * Wrap inner (ownership is taken, also on failure) in a fault injector.
 */
int zf_objstore_fault_wrap(struct zf_objstore *inner, const struct zf_objstore_fault_params *p,
			   struct zf_objstore **ret_store);

/* Replace the parameters at runtime (restarts the fail_nth count). -EINVAL
 * if st is not a fault store. */
int zf_objstore_fault_set(struct zf_objstore *st, const struct zf_objstore_fault_params *p);

/* Switch the outage on or off at runtime. -EINVAL if not a fault store. */
int zf_objstore_fault_set_outage(struct zf_objstore *st, int on);

struct zf_objstore_fault_stats {
	uint64_t calls;		/* calls seen */
	uint64_t injected;	/* failures injected (outage included) */
	uint64_t truncated;	/* bodies truncated */
	uint64_t stalled;	/* gets stalled (counted when the stall begins) */
};
int zf_objstore_fault_stats(struct zf_objstore *st, struct zf_objstore_fault_stats *ret);

#endif
