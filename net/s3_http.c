/*
 * net/s3_http.c - one S3 request over libcurl: handle pool, signing,
 * retries with backoff, timeouts, and the mapping of failures to -errno
 *
 * Requests are signed here with AWS Signature V4 (s3_sign.c) and sent with
 * the URL in exactly the canonical form that was signed: no libcurl
 * normalisation (CURLOPT_PATH_AS_IS). Why not CURLOPT_AWS_SIGV4: Debian 12's
 * libcurl 7.88 signs requests that S3 then refuses (SignatureDoesNotMatch):
 *   - it signs the query string as written instead of sorted by name
 *     (curl issue 9717), so a ListObjectsV2 page after the first
 *     (continuation-token after prefix) and UploadPart (partNumber,
 *     uploadId) would have to be built in sorted order by hand;
 *   - a parameter without a value, "?uploads" (CreateMultipartUpload) and
 *     "?delete" (DeleteObjects), is signed as "uploads" where S3 signs
 *     "uploads=" (curl issues 8107 and 10129, fixed in 8.5);
 *   - the path is signed as the caller wrote it, not as SigV4 encodes it:
 *     keys with characters that need %-encoding (space, '+', '=', '%',
 *     non-ASCII) are right only if written exactly so, a lower-case escape
 *     such as "%2f" or an encoded '/' is signed as written, and '~', '('
 *     and ')' differently from the servers; later versions encode the path
 *     again and get '=' wrong (curl issue 13754, 8.8);
 *   - the payload hash is that of CURLOPT_POSTFIELDS only, and the session
 *     token header is the caller's to add and sign.
 * Our signer builds the canonical request itself (s3_sign.c, its unit test
 * is AWS's published example) and works on every libcurl >= 7.68.
 *
 * Every request body carries Content-MD5 and its signed SHA-256 (the server
 * rejects a body damaged in transit); every GET is checked against its
 * Content-Range / Content-Length (s3_parse.c), and objstore.c checks the
 * length again. A transient failure (connection error, timeout, 5xx, 429,
 * S3's 400 RequestTimeout/BadDigest/IncompleteBody, a truncated body) is
 * retried with exponential backoff and equal jitter until max_attempts or
 * the call's deadline (timeout_ms); authentication failures are never
 * retried. Each failed call logs one line with the HTTP status, S3 error
 * code and message of its last attempt.
 *
 * Locking: st->pool_lock (see s3_internal.h), held only to push or pop an
 * idle curl handle, never during a transfer.
 * Not here: what the requests are (s3.c), parsing the answers (s3_parse.c).
 */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/lock.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "net/s3_internal.h"
#include "net/s3_sign.h"

/* ---- handles ---- */

static pthread_once_t s3_once = PTHREAD_ONCE_INIT;
static CURLcode s3_global_rc;

static void s3_global_init(void)
{
	s3_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

CURLcode s3_curl_init(void)
{
	pthread_once(&s3_once, s3_global_init);
	return s3_global_rc;
}

static CURL *s3_handle_get(struct s3_store *st)
{
	CURL *h = NULL;

	zf_mutex_lock(&st->pool_lock);
	if (st->npool)
		h = st->pool[--st->npool];
	zf_mutex_unlock(&st->pool_lock);
	return h ? h : curl_easy_init();
}

static void s3_handle_put(struct s3_store *st, CURL *h)
{
	zf_mutex_lock(&st->pool_lock);
	if (st->npool < S3_POOL_MAX) {
		st->pool[st->npool++] = h;
		h = NULL;
	}
	zf_mutex_unlock(&st->pool_lock);
	if (h)
		curl_easy_cleanup(h);
}

/* ---- one attempt ---- */

static void s3_path(struct s3_store *st, const char *key, struct zf_buf *b)
{
	if (st->path_style) {
		zf_buf_add(b, "/", 1);
		zf_s3_buf_puts(b, st->bucket);
	}
	if (key) {
		zf_buf_add(b, "/", 1);
		zf_s3_uri_encode(b, key, strlen(key), 1);
	} else if (!st->path_style) {
		zf_buf_add(b, "/", 1);
	}
	zf_s3_buf_cstr(b);
}

static uint64_t s3_rand(void)
{
	static __thread uint64_t s;

	if (!s && zf_random(&s, sizeof(s)) < 0)
		s = zf_mono_ns();
	s ^= s << 13;
	s ^= s >> 7;
	s ^= s << 17;
	return s;
}

/*
 * Map an answer to -errno and say whether trying again can help. Only the
 * classes the header promises: -EACCES, -ENOENT, -EIO, -ETIMEDOUT,
 * -ECONNREFUSED, -EOPNOTSUPP (a request the server does not implement).
 */
static int s3_classify_http(struct s3_req *r, int *retry)
{
	long s = r->status;

	*retry = 0;
	if (s == 401 || s == 403)
		return -EACCES;
	if (s == 404)
		return -ENOENT;
	if (s == 405 || s == 501)
		return -EOPNOTSUPP;
	if (s == 408) {
		*retry = 1;
		return -ETIMEDOUT;
	}
	if (s == 400 && (!strcmp(r->code, "RequestTimeout") || !strcmp(r->code, "BadDigest") ||
			 !strcmp(r->code, "IncompleteBody"))) {
		*retry = 1;
		return -EIO;
	}
	if (s == 429 || s >= 500 || !strcmp(r->code, "InternalError") ||
	    !strcmp(r->code, "SlowDown") || !strcmp(r->code, "ServiceUnavailable")) {
		*retry = 1;
		return -EIO;
	}
	if (s >= 300 && s < 400 && !r->why[0])
		snprintf(r->why, sizeof(r->why), "redirected: wrong region or endpoint?");
	return -EIO;
}

static int s3_classify_curl(CURLcode cc, struct s3_req *r, int *retry)
{
	*retry = 1;
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_OUT_OF_MEMORY:
		*retry = 0;
		return cc == CURLE_URL_MALFORMAT || cc == CURLE_UNSUPPORTED_PROTOCOL ? -EINVAL :
		       cc == CURLE_OUT_OF_MEMORY				    ? -ENOMEM :
											      -EACCES;
	case CURLE_WRITE_ERROR:
		if (r->bad_reply) {
			*retry = 0;	/* a server that answers the wrong thing does so again */
			return -EIO;
		}
		return -EIO;
	default:
		return -EIO;
	}
}

static int s3_attempt(struct s3_store *st, struct s3_req *r, uint64_t deadline, int *retry)
{
	struct zf_buf path = { 0 }, query = { 0 }, url = { 0 }, auth = { 0 }, hv = { 0 };
	struct zf_s3_hdr hdrs[8];
	struct curl_slist *hl = NULL;
	char date[17], sha[65], md5[25], range[64], errbuf[CURL_ERROR_SIZE] = "";
	size_t nh = 0, i;
	uint64_t now = zf_mono_ns(), left_ms;
	struct s3_keys keys;
	CURLcode cc;
	CURL *h;
	int rc;

	s3_reset_reply(r);
	*retry = 0;
	rc = s3_creds_get(st, &keys);
	if (rc < 0) {
		snprintf(r->why, sizeof(r->why), "the credentials of profile '%s' have expired",
			 st->profile);
		return rc;
	}
	left_ms = deadline > now ? (deadline - now) / 1000000 : 1;
	if (left_ms == 0)
		left_ms = 1;

	s3_path(st, r->key, &path);
	zf_s3_canonical_query(&query, r->q, r->nq);
	zf_s3_buf_cstr(&query);
	zf_s3_buf_puts(&url, st->base_url);
	zf_s3_buf_puts(&url, (char *)path.p);
	if (r->nq) {
		zf_buf_add(&url, "?", 1);
		zf_s3_buf_puts(&url, (char *)query.p);
	}
	zf_s3_buf_cstr(&url);

	zf_s3_amz_date(time(NULL), date);
	zf_s3_sha256_hex(r->body ? r->body : "", r->body_len, sha);
	hdrs[nh++] = (struct zf_s3_hdr){ "host", st->host };
	hdrs[nh++] = (struct zf_s3_hdr){ "x-amz-content-sha256", sha };
	hdrs[nh++] = (struct zf_s3_hdr){ "x-amz-date", date };
	if (keys.session_token)
		hdrs[nh++] = (struct zf_s3_hdr){ "x-amz-security-token", keys.session_token };
	if (r->body) {
		zf_s3_md5_base64(r->body, r->body_len, md5);
		hdrs[nh++] = (struct zf_s3_hdr){ "content-md5", md5 };
	}
	if (r->data && (r->off || r->len)) {
		if (r->len)
			snprintf(range, sizeof(range), "bytes=%" PRIu64 "-%" PRIu64, r->off,
				 r->off + r->len - 1);
		else
			snprintf(range, sizeof(range), "bytes=%" PRIu64 "-", r->off);
		hdrs[nh++] = (struct zf_s3_hdr){ "range", range };
	}
	{
		struct zf_s3_sign_in in = {
			.method = r->method,
			.path = (char *)path.p,
			.params = r->q,
			.nparams = r->nq,
			.hdrs = hdrs,
			.nhdrs = nh,
			.payload_sha256 = sha,
			.amz_date = date,
			.region = st->region,
			.service = "s3",
			.access_key = keys.access_key,
			.secret_key = keys.secret_key,
		};

		zf_s3_sign(&in, &auth, NULL);
	}
	for (i = 0; i < nh; i++) {
		hv.len = 0;
		zf_s3_buf_puts(&hv, hdrs[i].name);
		zf_s3_buf_puts(&hv, ": ");
		zf_s3_buf_puts(&hv, hdrs[i].value);
		zf_s3_buf_cstr(&hv);
		hl = curl_slist_append(hl, (char *)hv.p);
	}
	hv.len = 0;
	zf_s3_buf_puts(&hv, "Authorization: ");
	zf_s3_buf_puts(&hv, (char *)auth.p);
	zf_s3_buf_cstr(&hv);
	hl = curl_slist_append(hl, (char *)hv.p);
	/* no "Expect: 100-continue" round trip (and its 1 s stall on some servers) */
	hl = curl_slist_append(hl, "Expect:");
	hl = curl_slist_append(hl, "Accept:");
	if (r->body) {
		hv.len = 0;
		zf_s3_buf_puts(&hv, "Content-Type: ");
		zf_s3_buf_puts(&hv, r->content_type ? r->content_type : "application/octet-stream");
		zf_s3_buf_cstr(&hv);
		hl = curl_slist_append(hl, (char *)hv.p);
	}

	h = s3_handle_get(st);
	if (!h || !hl) {
		rc = -ENOMEM;
		snprintf(r->why, sizeof(r->why), "cannot set up a curl request");
		goto out;
	}
	curl_easy_reset(h);	/* keeps the handle's live connections */
	curl_easy_setopt(h, CURLOPT_URL, (char *)url.p);
	curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(st->connect_ms < left_ms ? st->connect_ms : left_ms));
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)left_ms);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)((st->stall_ms + 999) / 1000));
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, st->tls_no_verify ? 0L : 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, st->tls_no_verify ? 0L : 2L);
	if (st->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, st->ca_file);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, s3_header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, s3_write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	if (!strcmp(r->method, "HEAD")) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (!strcmp(r->method, "GET")) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
		if (r->body) {
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body_len ? r->body : "");
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
		}
	}
	zf_objstore_count(&st->base.cnt.requests, 1);
	cc = curl_easy_perform(h);
	s3_handle_put(st, h);

	if (cc == CURLE_WRITE_ERROR && r->done_early && !r->bad_reply)
		cc = CURLE_OK;
	if (cc != CURLE_OK) {
		rc = s3_classify_curl(cc, r, retry);
		if (!r->why[0])
			snprintf(r->why, sizeof(r->why), "%s (curl %d)",
				 errbuf[0] ? errbuf : curl_easy_strerror(cc), (int)cc);
		goto out;
	}
	zf_s3_buf_cstr(&r->in);
	if (r->status < 200 || r->status >= 300) {
		s3_parse_error(r, (char *)r->in.p, (char *)r->in.p + r->in.len);
		rc = s3_classify_http(r, retry);
		goto out;
	}
	if (r->bad_reply) {
		rc = -EIO;
		goto out;
	}
	/* CompleteMultipartUpload may fail after its 200 header was sent */
	if (r->error_in_200 && s3_parse_error(r, (char *)r->in.p, (char *)r->in.p + r->in.len)) {
		rc = s3_classify_http(r, retry);
		if (!strcmp(r->code, "InternalError") || !strcmp(r->code, "SlowDown"))
			*retry = 1;
		goto out;
	}
	if (r->data && r->total == UINT64_MAX)
		r->total = r->seen;	/* chunked answer with no size: what came */
	rc = 0;
out:
	curl_slist_free_all(hl);
	zf_buf_free(&path);
	zf_buf_free(&query);
	zf_buf_free(&url);
	zf_buf_free(&auth);
	zf_buf_free(&hv);
	s3_keys_free(&keys);
	return rc;
}

/*
 * Run r with retries. quiet_enoent: a 404 is an answer, logged only at
 * debug level. Logs one line on failure.
 */
int s3_do(struct s3_store *st, struct s3_req *r, int quiet_enoent)
{
	uint64_t start = zf_mono_ns();
	uint64_t deadline = start + (uint64_t)st->timeout_ms * 1000000;
	unsigned int attempt;
	int rc, retry;

	for (attempt = 1;; attempt++) {
		uint64_t delay_ms, cap;

		rc = s3_attempt(st, r, deadline, &retry);
		if (rc == 0)
			return 0;
		if (!retry || attempt >= st->attempts)
			break;
		cap = st->base_ms;
		if (attempt - 1 < 32)
			cap <<= attempt - 1;
		if (cap > st->max_ms)
			cap = st->max_ms;
		/* equal jitter: half fixed, half random, so that retries spread out */
		delay_ms = cap / 2 + s3_rand() % (cap / 2 + 1);
		if (zf_mono_ns() + delay_ms * 1000000 >= deadline)
			break;
		zf_dbg("s3 %s 's3://%s/%s': %s%s%s; retrying in %" PRIu64 " ms (attempt %u/%u)",
		       r->op, st->bucket, r->key ? r->key : st->prefix, r->code,
		       r->code[0] ? ": " : "", r->why, delay_ms, attempt + 1, st->attempts);
		zf_objstore_count(&st->base.cnt.retries, 1);
		{
			struct timespec ts = { delay_ms / 1000, (long)(delay_ms % 1000) * 1000000 };

			while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
				;
		}
	}
	if (rc == -ENOENT && quiet_enoent) {
		zf_dbg("s3 %s 's3://%s/%s': HTTP 404 %s", r->op, st->bucket,
		       r->key ? r->key : st->prefix, r->code);
		return rc;
	}
	if (r->status >= 300) {
		if (!r->why[0] && !r->code[0])	/* HEAD answers have no body */
			snprintf(r->why, sizeof(r->why), "%s",
				 r->status == 403 ? "access denied (credentials or permissions)" :
				 r->status == 404 ? "not found" : "no error body");
		zf_err("s3 %s 's3://%s/%s': HTTP %ld%s%s: %s (%s) after %u attempt%s in %.1f s",
		       r->op, st->bucket, r->key ? r->key : st->prefix, r->status,
		       r->code[0] ? " " : "", r->code, r->why, zf_objstore_errname(rc), attempt,
		       attempt == 1 ? "" : "s", (zf_mono_ns() - start) / 1e9);
	} else {
		zf_err("s3 %s 's3://%s/%s': %s (%s) after %u attempt%s in %.1f s", r->op,
		       st->bucket, r->key ? r->key : st->prefix, r->why, zf_objstore_errname(rc),
		       attempt, attempt == 1 ? "" : "s", (zf_mono_ns() - start) / 1e9);
	}
	return rc;
}

void s3_req_free(struct s3_req *r)
{
	zf_buf_free(&r->in);
	zf_buf_free(&r->out);
}
