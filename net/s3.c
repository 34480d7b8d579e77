/*
 * net/s3.c - S3 and compatible servers over libcurl (s3://bucket/prefix)
 *
 * Requests are signed here with AWS Signature V4 (s3_sign.c) and sent with
 * the URL in exactly the canonical form that was signed: no libcurl
 * normalisation (CURLOPT_PATH_AS_IS) and no CURLOPT_AWS_SIGV4, whose 7.88
 * version signs some keys and queries differently from the servers.
 *
 * Every request body carries Content-MD5 and its signed SHA-256 (the server
 * rejects a body damaged in transit); every GET is checked against its
 * Content-Range / Content-Length, and objstore.c checks the length again.
 * A transient failure (connection error, timeout, 5xx, 429, S3's 400
 * RequestTimeout/BadDigest/IncompleteBody, a truncated body) is retried
 * with exponential backoff and equal jitter until max_attempts or the call's
 * deadline (timeout_ms); authentication failures are never retried. Each
 * failed call logs one line with the HTTP status, S3 error code and message
 * of its last attempt.
 *
 * Objects above multipart_threshold are uploaded in parts (sequentially;
 * concurrency comes from the callers' threads); a failed multipart upload
 * is aborted, and a failed abort is logged (the parts then wait for the
 * bucket's lifecycle rule).
 *
 * Locking: st->pool_lock guards the pool of idle curl handles (each keeps
 * its connections alive, so connections are reused across calls); it is
 * held only to push or pop a handle, never during a transfer. Everything
 * else in struct s3_store is read-only after open.
 * Not here: argument checks and range verification (objstore.c).
 */
#include "config.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/lock.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "net/objstore_internal.h"
#include "net/s3_parse.h"
#include "net/s3_sign.h"

#define MIB (1024 * 1024)
/* idle curl handles kept for reuse: more threads than this just reconnect */
#define S3_POOL_MAX 16
/* largest XML answer accepted (a list page of 1000 long keys is ~1.5 MiB) */
#define S3_RESP_MAX (16 * MIB)
/* S3 limits: parts of 5 MiB .. 5 GiB, at most 10000 of them; one PUT <= 5 GiB */
#define S3_PART_MIN (5 * (size_t)MIB)
#define S3_PARTS_MAX 10000
#define S3_PUT_MAX (5ull << 30)
/* DeleteObjects takes at most 1000 keys */
#define S3_DELETE_BATCH 1000
/* a GET that already has its bytes stops reading if more than this is left */
#define S3_DRAIN_MAX (64 * 1024)
/* most of a data GET's buffer reserved from its headers (more grows as it comes) */
#define S3_RESERVE_MAX (64 * (size_t)MIB)

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

static struct s3_store *to_s3(struct zf_objstore *st)
{
	return (struct s3_store *)st;
}

/* ---- small text helpers ---- */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* %XX-decode s in place ('+' stays '+': S3 keys use %20 for spaces) */
static void url_decode(char *s)
{
	char *d = s;

	for (; *s; s++) {
		if (*s == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
			*d++ = (char)(hexval(s[1]) * 16 + hexval(s[2]));
			s += 2;
		} else {
			*d++ = *s;
		}
	}
	*d = 0;
}

static void xml_escape(struct zf_buf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': zf_s3_buf_puts(b, "&amp;"); break;
		case '<': zf_s3_buf_puts(b, "&lt;"); break;
		case '>': zf_s3_buf_puts(b, "&gt;"); break;
		case '"': zf_s3_buf_puts(b, "&quot;"); break;
		case '\'': zf_s3_buf_puts(b, "&apos;"); break;
		default: zf_buf_add(b, s, 1);
		}
	}
}

/* decode the five XML entities and numeric references into a new string */
char *xml_unescape(const char *s, size_t n)
{
	static const struct {
		const char *ent;
		char c;
	} ents[] = { { "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' },
		     { "&quot;", '"' }, { "&apos;", '\'' } };
	char *out = zf_malloc(n + 1), *d = out;
	size_t i, j;

	for (i = 0; i < n;) {
		if (s[i] != '&') {
			*d++ = s[i++];
			continue;
		}
		for (j = 0; j < sizeof(ents) / sizeof(ents[0]); j++) {
			size_t l = strlen(ents[j].ent);

			if (i + l <= n && !memcmp(s + i, ents[j].ent, l)) {
				*d++ = ents[j].c;
				i += l;
				break;
			}
		}
		if (j < sizeof(ents) / sizeof(ents[0]))
			continue;
		if (i + 2 < n && s[i + 1] == '#') {
			unsigned long cp;
			char *end;
			size_t k = i + 2;

			cp = s[k] == 'x' ? strtoul(s + k + 1, &end, 16) : strtoul(s + k, &end, 10);
			if (end < s + n && *end == ';' && cp > 0 && cp < 0x110000) {
				/* UTF-8 encode */
				if (cp < 0x80) {
					*d++ = (char)cp;
				} else if (cp < 0x800) {
					*d++ = (char)(0xc0 | (cp >> 6));
					*d++ = (char)(0x80 | (cp & 0x3f));
				} else if (cp < 0x10000) {
					*d++ = (char)(0xe0 | (cp >> 12));
					*d++ = (char)(0x80 | ((cp >> 6) & 0x3f));
					*d++ = (char)(0x80 | (cp & 0x3f));
				} else {
					*d++ = (char)(0xf0 | (cp >> 18));
					*d++ = (char)(0x80 | ((cp >> 12) & 0x3f));
					*d++ = (char)(0x80 | ((cp >> 6) & 0x3f));
					*d++ = (char)(0x80 | (cp & 0x3f));
				}
				i = end - s + 1;
				continue;
			}
		}
		*d++ = s[i++];
	}
	*d = 0;
	return out;
}

/*
 * Find <tag>value</tag> in [p, end). Returns the value's start (and *ret_len)
 * and sets *ret_next past the closing tag, or NULL when absent. Enough for
 * S3's answers, which have no attributes or CDATA on the elements read here.
 */
const char *xml_find(const char *p, const char *end, const char *tag, size_t *ret_len,
		     const char **ret_next)
{
	char open[64], close[64];
	size_t lo, lc;
	const char *v, *e;

	lo = snprintf(open, sizeof(open), "<%s>", tag);
	lc = snprintf(close, sizeof(close), "</%s>", tag);
	v = memmem(p, end - p, open, lo);
	if (!v)
		return NULL;
	v += lo;
	e = memmem(v, end - v, close, lc);
	if (!e)
		return NULL;
	*ret_len = e - v;
	if (ret_next)
		*ret_next = e + lc;
	return v;
}

char *xml_get(const char *p, const char *end, const char *tag)
{
	size_t n;
	const char *v = xml_find(p, end, tag, &n, NULL);

	return v ? xml_unescape(v, n) : NULL;
}

/* copy the S3 <Code> and <Message> of an error body into r->code / r->why */
void s3_parse_error(struct s3_req *r, const char *p, const char *end)
{
	char *code = xml_get(p, end, "Code"), *msg = xml_get(p, end, "Message");

	snprintf(r->code, sizeof(r->code), "%s", code ? code : "");
	if (msg)
		snprintf(r->why, sizeof(r->why), "%s", msg);
	free(code);
	free(msg);
}

/* ---- curl callbacks ---- */

void s3_reset_reply(struct s3_req *r)
{
	r->status = 0;
	r->in.len = 0;
	r->etag[0] = 0;
	r->clen = -1;
	r->has_crange = 0;
	r->headers_done = 0;
	r->out.len = 0;
	r->data_start = 0;
	r->seen = 0;
	r->want = UINT64_MAX;
	r->total = UINT64_MAX;
	r->bad_reply = 0;
	r->done_early = 0;
	r->why[0] = 0;
	r->code[0] = 0;
}

/* called at the end of a final (non-1xx) header block of a data GET */
static void s3_data_window(struct s3_req *r)
{
	uint64_t end_wanted;

	if (r->status == 206) {
		if (!r->has_crange || r->cr_end < r->cr_start ||
		    (r->clen >= 0 && (uint64_t)r->clen != r->cr_end - r->cr_start + 1)) {
			snprintf(r->why, sizeof(r->why),
				 "206 answer without a consistent Content-Range");
			r->bad_reply = 1;
			return;
		}
		r->data_start = r->cr_start;
		r->total = r->cr_total;
	} else {
		/* 200: the whole object, the server ignored the Range (allowed by HTTP) */
		r->data_start = 0;
		r->total = r->clen >= 0 ? (uint64_t)r->clen : UINT64_MAX;
	}
	if (r->total == UINT64_MAX) {
		if (r->len == 0) {
			snprintf(r->why, sizeof(r->why), "answer without an object size");
			r->bad_reply = 1;
		}
		r->want = r->len;
		return;
	}
	if (r->off > r->total) {
		r->want = 0;
		return;
	}
	r->want = r->len ? r->len : r->total - r->off;
	if (r->want > r->total - r->off)
		r->want = r->total - r->off;	/* objstore.c reports the short object */
	end_wanted = r->off + r->want;
	if (r->data_start > r->off ||
	    (r->status == 206 && r->cr_end + 1 < end_wanted)) {
		snprintf(r->why, sizeof(r->why),
			 "Content-Range bytes %" PRIu64 "-%" PRIu64
			 " does not cover the %" PRIu64 " bytes asked for at %" PRIu64,
			 r->cr_start, r->cr_end, r->want, r->off);
		r->bad_reply = 1;
		return;
	}
	if (r->data_start != r->off || (r->status == 206 && r->cr_end + 1 != end_wanted) ||
	    (r->status == 200 && r->len))
		zf_dbg("s3 get '%s': server sent bytes %" PRIu64 "-%" PRIu64 " for %" PRIu64
		       "+%" PRIu64 "; keeping the part asked for",
		       r->key, r->data_start,
		       r->status == 206 ? r->cr_end : r->total - 1, r->off, r->want);
	/* the announced size is the server's word, not memory to take up front:
	 * reserve up to S3_RESERVE_MAX, and the buffer grows as bytes come */
	zf_buf_reserve(&r->out, r->want < S3_RESERVE_MAX ? r->want : S3_RESERVE_MAX);
}

size_t s3_header_cb(char *p, size_t size, size_t n, void *arg)
{
	struct s3_req *r = arg;
	size_t len = size * n;
	char line[512];
	char *v;

	if (len >= sizeof(line))
		return len;	/* no header we read is that long */
	memcpy(line, p, len);
	line[len] = 0;
	while (len && (line[len - 1] == '\r' || line[len - 1] == '\n'))
		line[--len] = 0;
	if (!strncmp(line, "HTTP/", 5)) {
		/* a new response (after 100 Continue or a redirect): start over */
		long status = 0;
		char *sp = strchr(line, ' ');

		if (sp)
			status = strtol(sp + 1, NULL, 10);
		r->etag[0] = 0;
		r->clen = -1;
		r->has_crange = 0;
		r->headers_done = 0;
		r->status = status;
		return size * n;
	}
	if (len == 0) {
		if (r->status >= 200 && !r->headers_done) {
			r->headers_done = 1;
			if (r->data && (r->status == 200 || r->status == 206))
				s3_data_window(r);
		}
		return size * n;
	}
	v = strchr(line, ':');
	if (!v)
		return size * n;
	*v++ = 0;
	while (*v == ' ' || *v == '\t')
		v++;
	if (!strcasecmp(line, "content-length")) {
		r->clen = strtoll(v, NULL, 10);
	} else if (!strcasecmp(line, "etag")) {
		size_t l = strlen(v);

		if (l >= 2 && v[0] == '"' && v[l - 1] == '"') {
			v[l - 1] = 0;
			v++;
		}
		snprintf(r->etag, sizeof(r->etag), "%s", v);
	} else if (!strcasecmp(line, "content-range")) {
		unsigned long long s, e;
		char tot[32];

		if (sscanf(v, "bytes %llu-%llu/%31s", &s, &e, tot) == 3) {
			r->has_crange = 1;
			r->cr_start = s;
			r->cr_end = e;
			r->cr_total = tot[0] == '*' ? UINT64_MAX : strtoull(tot, NULL, 10);
		}
	}
	return size * n;
}

size_t s3_write_cb(char *p, size_t size, size_t n, void *arg)
{
	struct s3_req *r = arg;
	size_t len = size * n;
	uint64_t pos, a, b, lo, hi;

	if (!r->data || (r->status != 200 && r->status != 206)) {
		if (r->in.len + len > S3_RESP_MAX) {
			snprintf(r->why, sizeof(r->why), "answer larger than %d MiB",
				 S3_RESP_MAX / MIB);
			r->bad_reply = 1;
			return 0;
		}
		zf_buf_add(&r->in, p, len);
		return len;
	}
	if (r->bad_reply)
		return 0;
	pos = r->data_start + r->seen;
	r->seen += len;
	/* keep the overlap of [pos, pos + len) with [off, off + want) */
	lo = r->off;
	hi = r->want == UINT64_MAX ? UINT64_MAX : r->off + r->want;
	a = pos > lo ? pos : lo;
	b = pos + len < hi ? pos + len : hi;
	if (a < b) {
		if (a - lo != r->out.len) {	/* cannot happen: bytes arrive in order */
			r->bad_reply = 1;
			return 0;
		}
		zf_buf_add(&r->out, p + (a - pos), b - a);
	}
	if (hi != UINT64_MAX && pos + len >= hi) {
		uint64_t last = r->status == 206 ? r->cr_end + 1 : r->total;

		if (last != UINT64_MAX && last > pos + len && last - (pos + len) > S3_DRAIN_MAX) {
			r->done_early = 1;	/* the server ignored the range: stop */
			return 0;
		}
	}
	return len;
}

/* ---- handles ---- */

static pthread_once_t s3_once = PTHREAD_ONCE_INIT;
static CURLcode s3_global_rc;

static void s3_global_init(void)
{
	s3_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
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
	CURLcode cc;
	CURL *h;
	int rc;

	s3_reset_reply(r);
	*retry = 0;
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
	if (st->session_token)
		hdrs[nh++] = (struct zf_s3_hdr){ "x-amz-security-token", st->session_token };
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
			.access_key = st->access_key,
			.secret_key = st->secret_key,
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
	if (r->error_in_200 && memmem(r->in.p, r->in.len, "<Error>", 7)) {
		/* CompleteMultipartUpload may fail after its 200 header was sent */
		s3_parse_error(r, (char *)r->in.p, (char *)r->in.p + r->in.len);
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
	return rc;
}

/*
 * Run r with retries. quiet_enoent: a 404 is an answer, logged only at
 * debug level. Logs one line on failure.
 */
static int s3_do(struct s3_store *st, struct s3_req *r, int quiet_enoent)
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

static void s3_req_free(struct s3_req *r)
{
	zf_buf_free(&r->in);
	zf_buf_free(&r->out);
}

/* the full key: store prefix + key */
static char *s3_key(struct s3_store *st, const char *key)
{
	size_t a = strlen(st->prefix), b = strlen(key);
	char *k = zf_malloc(a + b + 1);

	memcpy(k, st->prefix, a);
	memcpy(k + a, key, b + 1);
	return k;
}

/* ---- operations ---- */

static int s3_abort_multipart(struct s3_store *st, const char *key, const char *upload_id)
{
	struct s3_req r = { .method = "DELETE", .op = "abort multipart", .key = key };
	int rc;

	r.q[r.nq++] = (struct zf_s3_param){ "uploadId", upload_id };
	rc = s3_do(st, &r, 1);
	if (rc < 0 && rc != -ENOENT)
		zf_warn("multipart upload '%s' of 's3://%s/%s' not aborted: its parts stay in the "
			"bucket until a lifecycle rule removes them",
			upload_id, st->bucket, key);
	s3_req_free(&r);
	return rc == -ENOENT ? 0 : rc;
}

static int s3_put_multipart(struct s3_store *st, const char *key, const uint8_t *buf, size_t len)
{
	struct s3_req r = { .method = "POST", .op = "start multipart", .key = key };
	struct zf_buf xml = { 0 };
	char *upload_id = NULL, num[16], op[48];
	size_t part = st->part, nparts, i;
	int rc;

	/* at most 10000 parts: grow the part size for huge objects */
	while ((len + part - 1) / part > S3_PARTS_MAX)
		part *= 2;
	nparts = (len + part - 1) / part;

	r.q[r.nq++] = (struct zf_s3_param){ "uploads", "" };
	r.body = "";
	r.body_len = 0;
	rc = s3_do(st, &r, 0);
	if (rc < 0)
		goto out;
	upload_id = xml_get((char *)r.in.p, (char *)r.in.p + r.in.len, "UploadId");
	if (!upload_id || !*upload_id) {
		zf_err("s3 start multipart 's3://%s/%s': no UploadId in the answer", st->bucket,
		       key);
		rc = -EIO;
		goto out;
	}
	zf_s3_buf_puts(&xml, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
	for (i = 0; i < nparts; i++) {
		size_t off = i * part, n = len - off < part ? len - off : part;

		snprintf(num, sizeof(num), "%zu", i + 1);
		snprintf(op, sizeof(op), "put part %zu/%zu", i + 1, nparts);
		s3_req_free(&r);
		r = (struct s3_req){ .method = "PUT", .op = op, .key = key, .body = buf + off,
				     .body_len = n };
		r.q[r.nq++] = (struct zf_s3_param){ "partNumber", num };
		r.q[r.nq++] = (struct zf_s3_param){ "uploadId", upload_id };
		rc = s3_do(st, &r, 0);
		if (rc < 0)
			goto out_abort;
		if (!r.etag[0]) {
			zf_err("s3 %s 's3://%s/%s': no ETag in the answer", op, st->bucket, key);
			rc = -EIO;
			goto out_abort;
		}
		zf_s3_buf_puts(&xml, "<Part><PartNumber>");
		zf_s3_buf_puts(&xml, num);
		zf_s3_buf_puts(&xml, "</PartNumber><ETag>\"");
		xml_escape(&xml, r.etag);
		zf_s3_buf_puts(&xml, "\"</ETag></Part>");
	}
	zf_s3_buf_puts(&xml, "</CompleteMultipartUpload>");
	s3_req_free(&r);
	r = (struct s3_req){ .method = "POST", .op = "complete multipart", .key = key,
			     .body = xml.p, .body_len = xml.len, .content_type = "application/xml",
			     .error_in_200 = 1 };
	r.q[r.nq++] = (struct zf_s3_param){ "uploadId", upload_id };
	rc = s3_do(st, &r, 0);
	if (rc == 0)
		goto out;
out_abort:
	s3_abort_multipart(st, key, upload_id);
out:
	s3_req_free(&r);
	zf_buf_free(&xml);
	free(upload_id);
	return rc;
}

static int s3_put(struct zf_objstore *st_, const char *key, const void *buf, size_t len)
{
	struct s3_store *st = to_s3(st_);
	char *k = s3_key(st, key);
	int rc;

	if (len > st->threshold) {
		rc = s3_put_multipart(st, k, buf, len);
	} else {
		struct s3_req r = { .method = "PUT", .op = "put", .key = k, .body = buf,
				    .body_len = len };

		rc = s3_do(st, &r, 0);
		s3_req_free(&r);
	}
	free(k);
	return rc;
}

static int s3_get(struct zf_objstore *st_, const char *key, uint64_t off, size_t len,
		  struct zf_objstore_got *got)
{
	struct s3_store *st = to_s3(st_);
	char *k = s3_key(st, key);
	struct s3_req r = { .method = "GET", .op = "get", .key = k, .data = 1, .off = off,
			    .len = len };
	int rc;

	rc = s3_do(st, &r, 1);
	if (rc == 0) {
		got->buf = r.out.p;
		got->len = r.out.len;
		got->total = r.total;
		r.out.p = NULL;
	}
	s3_req_free(&r);
	free(k);
	return rc;
}

static int s3_head(struct zf_objstore *st_, const char *key, struct zf_objstore_stat *ret)
{
	struct s3_store *st = to_s3(st_);
	char *k = s3_key(st, key);
	struct s3_req r = { .method = "HEAD", .op = "head", .key = k };
	int rc;

	rc = s3_do(st, &r, 1);
	if (rc == 0) {
		if (r.clen < 0) {
			zf_err("s3 head 's3://%s/%s': no Content-Length in the answer", st->bucket,
			       k);
			rc = -EIO;
		} else {
			ret->size = r.clen;
			snprintf(ret->etag, sizeof(ret->etag), "%s", r.etag);
		}
	}
	s3_req_free(&r);
	free(k);
	return rc;
}

int s3_parse_list(const char *p, const char *end, const char *bucket, const char *store_prefix,
		  const char *prefix, zf_objstore_list_fn fn, void *ctx, int *ret_nkeys,
		  int *ret_more, char **ret_token)
{
	const char *start = p, *next;
	size_t plen = strlen(store_prefix), n;
	char *trunc, *enc;
	int urlenc, nkeys = 0, rc = 0;

	/* keys are %-encoded only if the server honoured encoding-type */
	enc = xml_get(p, end, "EncodingType");
	urlenc = enc && !strcmp(enc, "url");
	free(enc);
	while (rc == 0) {
		const char *c = xml_find(p, end, "Contents", &n, &next), *ce;
		char *key, *size;

		if (!c)
			break;
		ce = c + n;
		p = next;
		key = xml_get(c, ce, "Key");
		size = xml_get(c, ce, "Size");
		if (key && urlenc)
			url_decode(key);
		if (!key || !size) {
			zf_err("s3 list '%s' of 's3://%s/%s': entry without Key or Size",
			       prefix, bucket, store_prefix);
			rc = -EIO;
		} else if (strncmp(key, store_prefix, plen) ||
			   strncmp(key + plen, prefix, strlen(prefix))) {
			zf_warn("s3 list '%s' of 's3://%s/%s': server returned '%s' outside "
				"the prefix; ignored",
				prefix, bucket, store_prefix, key);
		} else if (zf_objstore_key_valid(key + plen) < 0) {
			zf_dbg("s3 list: skipping key '%s' that zerofs cannot name", key);
		} else {
			nkeys++;
			rc = fn(ctx, key + plen, strtoull(size, NULL, 10));
		}
		free(key);
		free(size);
	}
	trunc = xml_get(start, end, "IsTruncated");
	*ret_more = trunc && !strcmp(trunc, "true");
	free(trunc);
	*ret_token = xml_get(start, end, "NextContinuationToken");
	*ret_nkeys = nkeys;
	return rc;
}

static int s3_list(struct zf_objstore *st_, const char *prefix, zf_objstore_list_fn fn,
		   void *ctx)
{
	struct s3_store *st = to_s3(st_);
	char *full = s3_key(st, prefix), *token = NULL, page[16], op[64];
	unsigned int empty_pages = 0;
	int rc = 0;

	snprintf(page, sizeof(page), "%u", st->page);
	snprintf(op, sizeof(op), "list '%.40s'", prefix);
	for (;;) {
		struct s3_req r = { .method = "GET", .op = op, .key = NULL };
		char *ntoken;
		int nkeys, more;

		r.q[r.nq++] = (struct zf_s3_param){ "list-type", "2" };
		r.q[r.nq++] = (struct zf_s3_param){ "prefix", full };
		r.q[r.nq++] = (struct zf_s3_param){ "max-keys", page };
		r.q[r.nq++] = (struct zf_s3_param){ "encoding-type", "url" };
		if (token)
			r.q[r.nq++] = (struct zf_s3_param){ "continuation-token", token };
		rc = s3_do(st, &r, 0);
		if (rc < 0) {
			s3_req_free(&r);
			break;
		}
		rc = s3_parse_list((char *)r.in.p, (char *)r.in.p + r.in.len, st->bucket,
				   st->prefix, prefix, fn, ctx, &nkeys, &more, &ntoken);
		s3_req_free(&r);
		if (rc != 0 || !more) {
			free(ntoken);
			break;
		}
		if (!ntoken || !*ntoken || (token && !strcmp(token, ntoken)) ||
		    (nkeys == 0 && ++empty_pages > 3)) {
			zf_err("s3 list '%s' of 's3://%s/%s': truncated page without a usable "
			       "continuation token",
			       prefix, st->bucket, st->prefix);
			free(ntoken);
			rc = -EIO;
			break;
		}
		if (nkeys)
			empty_pages = 0;
		free(token);
		token = ntoken;
	}
	free(token);
	free(full);
	return rc;
}

static int s3_del(struct zf_objstore *st_, const char *key)
{
	struct s3_store *st = to_s3(st_);
	char *k = s3_key(st, key);
	struct s3_req r = { .method = "DELETE", .op = "delete", .key = k };
	int rc;

	rc = s3_do(st, &r, 1);
	s3_req_free(&r);
	free(k);
	return rc == -ENOENT ? 0 : rc;
}

static int s3_del_each(struct s3_store *st, const char *const *keys, size_t n)
{
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		rc = s3_del(&st->base, keys[i]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* one DeleteObjects request for up to S3_DELETE_BATCH keys */
static int s3_delete_batch(struct s3_store *st, const char *const *keys, size_t n)
{
	struct s3_req r = { .method = "POST", .op = "multi-delete", .key = NULL,
			    .content_type = "application/xml" };
	struct zf_buf xml = { 0 };
	const char *p, *end, *next;
	size_t i, len, failed = 0;
	int rc;

	zf_s3_buf_puts(&xml, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
			     "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
			     "<Quiet>true</Quiet>");
	for (i = 0; i < n; i++) {
		zf_s3_buf_puts(&xml, "<Object><Key>");
		xml_escape(&xml, st->prefix);
		xml_escape(&xml, keys[i]);
		zf_s3_buf_puts(&xml, "</Key></Object>");
	}
	zf_s3_buf_puts(&xml, "</Delete>");
	r.body = xml.p;
	r.body_len = xml.len;
	r.q[r.nq++] = (struct zf_s3_param){ "delete", "" };
	rc = s3_do(st, &r, 0);
	if (rc < 0)
		goto out;
	/* a 200 answer lists the keys that could not be deleted */
	p = (char *)r.in.p;
	end = p + r.in.len;
	while (xml_find(p, end, "Error", &len, &next)) {
		const char *e = next - strlen("</Error>");
		char *key = xml_get(e - len, e, "Key"), *code = xml_get(e - len, e, "Code");
		char *msg = xml_get(e - len, e, "Message");

		p = next;
		if (code && !strcmp(code, "NoSuchKey")) {
			free(key);
			free(code);
			free(msg);
			continue;
		}
		if (!failed++)
			zf_err("s3 multi-delete of 's3://%s/%s': '%s': %s: %s", st->bucket,
			       st->prefix, key ? key : "?", code ? code : "?", msg ? msg : "");
		if (rc == 0)
			rc = code && !strcmp(code, "AccessDenied") ? -EACCES : -EIO;
		free(key);
		free(code);
		free(msg);
	}
	if (failed > 1)
		zf_err("s3 multi-delete of 's3://%s/%s': %zu of %zu keys not deleted", st->bucket,
		       st->prefix, failed, n);
out:
	s3_req_free(&r);
	zf_buf_free(&xml);
	return rc;
}

static int s3_multi_del(struct zf_objstore *st_, const char *const *keys, size_t n)
{
	struct s3_store *st = to_s3(st_);
	size_t i;
	int rc;

	for (i = 0; i < n; i += S3_DELETE_BATCH) {
		size_t k = n - i < S3_DELETE_BATCH ? n - i : S3_DELETE_BATCH;

		if (__atomic_load_n(&st->no_multi_delete, __ATOMIC_RELAXED)) {
			rc = s3_del_each(st, keys + i, k);
		} else {
			rc = s3_delete_batch(st, keys + i, k);
			if (rc == -EOPNOTSUPP) {
				zf_warn("'s3://%s/%s': server has no DeleteObjects; deleting one "
					"key at a time",
					st->bucket, st->prefix);
				__atomic_store_n(&st->no_multi_delete, 1, __ATOMIC_RELAXED);
				rc = s3_del_each(st, keys + i, k);
			}
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void s3_close(struct zf_objstore *st_)
{
	struct s3_store *st = to_s3(st_);
	int i;

	for (i = 0; i < st->npool; i++)
		curl_easy_cleanup(st->pool[i]);
	zf_mutex_destroy(&st->pool_lock);
	free(st->bucket);
	free(st->prefix);
	free(st->base_url);
	free(st->host);
	free(st->region);
	free(st->access_key);
	if (st->secret_key) {
		explicit_bzero(st->secret_key, strlen(st->secret_key));
		free(st->secret_key);
	}
	free(st->session_token);
	free(st->ca_file);
	free(st->base.url);
	free(st);
}

static const struct zf_objstore_ops s3_ops = {
	.scheme = "s3",
	.put = s3_put,
	.get = s3_get,
	.head = s3_head,
	.list = s3_list,
	.del = s3_del,
	.multi_del = s3_multi_del,
	.close = s3_close,
};

/* ---- open: URL, endpoint, credentials ---- */

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

/* read [profile] of an AWS credentials file; refuse one others can read */
static int s3_creds_file(struct s3_store *st, const char *path, const char *profile)
{
	char line[1024], want[256];
	int in = 0, found = 0, r;
	struct stat sb;
	FILE *f;

	f = fopen(path, "re");
	if (!f) {
		r = -errno;
		if (r == -ENOENT)
			zf_err("no credentials for 's3://%s': set AWS_ACCESS_KEY_ID and "
			       "AWS_SECRET_ACCESS_KEY, or write them into '%s' (mode 0600)",
			       st->bucket, path);
		else
			zf_err("cannot read credentials file '%s': %s", path, strerror(-r));
		return r == -ENOENT ? -EACCES : r;
	}
	if (fstat(fileno(f), &sb) < 0) {
		r = -errno;
		goto out;
	}
	if (sb.st_mode & 077) {
		zf_err("credentials file '%s' is open to group or others (mode %04o): "
		       "refusing it; run 'chmod 600 %s'",
		       path, (unsigned int)(sb.st_mode & 07777), path);
		r = -EACCES;
		goto out;
	}
	snprintf(want, sizeof(want), "[%s]", profile);
	while (fgets(line, sizeof(line), f)) {
		char *l = trim(line), *v, **dst = NULL;

		if (!*l || *l == '#' || *l == ';')
			continue;
		if (*l == '[') {
			in = !strcmp(l, want);
			found |= in;
			continue;
		}
		if (!in || !(v = strchr(l, '=')))
			continue;
		*v++ = 0;
		l = trim(l);
		v = trim(v);
		if (!strcmp(l, "aws_access_key_id"))
			dst = &st->access_key;
		else if (!strcmp(l, "aws_secret_access_key"))
			dst = &st->secret_key;
		else if (!strcmp(l, "aws_session_token"))
			dst = &st->session_token;
		if (dst) {
			free(*dst);
			*dst = zf_strdup(v);
		}
	}
	explicit_bzero(line, sizeof(line));
	if (!found || !st->access_key || !st->secret_key) {
		zf_err("credentials file '%s' has no profile '%s' with aws_access_key_id and "
		       "aws_secret_access_key",
		       path, profile);
		r = -EACCES;
		goto out;
	}
	r = 0;
out:
	fclose(f);
	return r;
}

static int s3_creds(struct s3_store *st, const struct zf_objstore_opts *o, const char *profile)
{
	const char *ak = getenv("AWS_ACCESS_KEY_ID"), *sk = getenv("AWS_SECRET_ACCESS_KEY");
	const char *path, *home;
	char buf[4096];

	if (o->access_key && o->secret_key) {
		st->access_key = zf_strdup(o->access_key);
		st->secret_key = zf_strdup(o->secret_key);
		st->session_token = o->session_token ? zf_strdup(o->session_token) : NULL;
		return 0;
	}
	/* an explicit profile names the file; otherwise the environment wins */
	if (!profile && ak && *ak && sk && *sk) {
		const char *tok = getenv("AWS_SESSION_TOKEN");

		st->access_key = zf_strdup(ak);
		st->secret_key = zf_strdup(sk);
		st->session_token = tok && *tok ? zf_strdup(tok) : NULL;
		return 0;
	}
	if (!profile)
		profile = getenv("AWS_PROFILE");
	if (!profile || !*profile)
		profile = "default";
	path = o->credentials_file;
	if (!path)
		path = getenv("AWS_SHARED_CREDENTIALS_FILE");
	if (!path || !*path) {
		home = getenv("HOME");
		snprintf(buf, sizeof(buf), "%s/.aws/credentials", home ? home : "");
		path = buf;
	}
	return s3_creds_file(st, path, profile);
}

static int valid_bucket(const char *b)
{
	size_t n = strlen(b), i;

	if (n < 3 || n > 63)
		return 0;
	for (i = 0; i < n; i++) {
		char c = b[i];

		if (!isalnum((unsigned char)c) && c != '-' && c != '.' && c != '_')
			return 0;
	}
	return 1;
}

/*
 * Split endpoint "scheme://host[:port][/]" into base URL and Host header;
 * for virtual-host addressing the bucket goes in front of the host.
 */
static int s3_endpoint(struct s3_store *st, const char *ep)
{
	const char *hs = strstr(ep, "://"), *he;
	char scheme[8];
	size_t sl, hl, n;

	if (!hs || (size_t)(hs - ep) >= sizeof(scheme))
		return -EINVAL;
	sl = hs - ep;
	memcpy(scheme, ep, sl);
	scheme[sl] = 0;
	if (strcasecmp(scheme, "http") && strcasecmp(scheme, "https"))
		return -EINVAL;
	hs += 3;
	he = hs + strcspn(hs, "/?#");
	if (*he && strcmp(he, "/"))	/* a path below the host is not supported */
		return -EINVAL;
	hl = he - hs;
	if (hl == 0 || memchr(hs, '@', hl))
		return -EINVAL;
	n = sl + 3 + hl + strlen(st->bucket) + 2;
	st->host = zf_malloc(hl + strlen(st->bucket) + 2);
	st->base_url = zf_malloc(n);
	if (st->path_style)
		snprintf(st->host, hl + 1, "%.*s", (int)hl, hs);
	else
		snprintf(st->host, hl + strlen(st->bucket) + 2, "%s.%.*s", st->bucket, (int)hl, hs);
	for (n = 0; st->host[n]; n++)
		st->host[n] = tolower((unsigned char)st->host[n]);
	snprintf(st->base_url, sl + 3 + strlen(st->host) + 1, "%s://%s", scheme, st->host);
	return 0;
}

int zf_objstore_s3_open(const char *url, const struct zf_objstore_opts *o,
			struct zf_objstore **ret_store)
{
	char *copy = NULL, *q, *path, *slash, *ep_buf = NULL, *url_profile = NULL, *save = NULL;
	const char *endpoint = o->endpoint, *region = o->region;
	enum zf_objstore_addressing addr = o->addressing;
	struct s3_store *st;
	int tls_no_verify = o->tls_no_verify, r = -EINVAL;
	size_t n;

	pthread_once(&s3_once, s3_global_init);
	if (s3_global_rc != CURLE_OK) {
		zf_err("cannot initialise libcurl: %s", curl_easy_strerror(s3_global_rc));
		return -EIO;
	}
	if (strncmp(url, "s3://", 5)) {
		zf_err("cannot open object store '%s': want s3://bucket[/prefix]", url);
		return -EINVAL;
	}
	st = zf_calloc(1, sizeof(*st));
	zf_mutex_init(&st->pool_lock, ZF_RANK_S3_POOL, "s3 pool_lock");
	st->base.ops = &s3_ops;
	copy = zf_strdup(url + 5);
	q = strchr(copy, '?');
	if (q)
		*q++ = 0;
	st->base.url = zf_malloc(strlen(copy) + 6);
	sprintf(st->base.url, "s3://%s", copy);
	path = copy;
	slash = strchr(path, '/');
	if (slash)
		*slash++ = 0;
	st->bucket = zf_strdup(path);
	if (!valid_bucket(st->bucket)) {
		zf_err("cannot open object store '%s': bad bucket name '%s'", url, st->bucket);
		goto out_free;
	}
	/* the prefix is a directory: "a/b" and "a/b/" are the same */
	n = slash ? strlen(slash) : 0;
	while (n && slash[n - 1] == '/')
		slash[--n] = 0;
	st->prefix = zf_malloc(n + 2);
	snprintf(st->prefix, n + 2, "%s%s", n ? slash : "", n ? "/" : "");
	if (n && zf_objstore_key_valid(slash) < 0) {
		zf_err("cannot open object store '%s': bad prefix '%s'", url, slash);
		goto out_free;
	}
	/* URL parameters win over opts */
	for (q = q ? strtok_r(q, "&", &save) : NULL; q; q = strtok_r(NULL, "&", &save)) {
		char *v = strchr(q, '=');

		if (!v) {
			zf_err("cannot open object store '%s': bad parameter '%s'", url, q);
			goto out_free;
		}
		*v++ = 0;
		url_decode(v);
		if (!strcmp(q, "endpoint")) {
			free(ep_buf);
			endpoint = ep_buf = zf_strdup(v);
		} else if (!strcmp(q, "region")) {
			region = v;
		} else if (!strcmp(q, "addressing") && !strcmp(v, "path")) {
			addr = ZF_OBJSTORE_ADDR_PATH;
		} else if (!strcmp(q, "addressing") && !strcmp(v, "vhost")) {
			addr = ZF_OBJSTORE_ADDR_VHOST;
		} else if (!strcmp(q, "tls_verify") && (!strcmp(v, "0") || !strcmp(v, "1"))) {
			tls_no_verify = v[0] == '0';
		} else if (!strcmp(q, "profile") && *v) {
			url_profile = v;
		} else {
			zf_err("cannot open object store '%s': unknown parameter '%s=%s'", url, q,
			       v);
			goto out_free;
		}
	}
	if (!region || !*region)
		region = getenv("AWS_REGION");
	if (!region || !*region)
		region = getenv("AWS_DEFAULT_REGION");
	if (!region || !*region)
		region = "us-east-1";
	st->region = zf_strdup(region);
	if (!endpoint || !*endpoint)
		endpoint = getenv("AWS_ENDPOINT_URL_S3");
	if (!endpoint || !*endpoint)
		endpoint = getenv("AWS_ENDPOINT_URL");
	if (addr == ZF_OBJSTORE_ADDR_AUTO)
		/* custom endpoints (MinIO, Ceph, tests) usually want path-style;
		 * a dotted bucket breaks TLS names with virtual-host */
		addr = (endpoint && *endpoint) || strchr(st->bucket, '.') ? ZF_OBJSTORE_ADDR_PATH :
									  ZF_OBJSTORE_ADDR_VHOST;
	st->path_style = addr == ZF_OBJSTORE_ADDR_PATH;
	if (!endpoint || !*endpoint) {
		free(ep_buf);
		ep_buf = zf_malloc(strlen(st->region) + 32);
		sprintf(ep_buf, "https://s3.%s.amazonaws.com", st->region);
		endpoint = ep_buf;
	}
	if (s3_endpoint(st, endpoint) < 0) {
		zf_err("cannot open object store '%s': bad endpoint '%s' (want "
		       "http[s]://host[:port])",
		       url, endpoint);
		goto out_free;
	}
	st->tls_no_verify = tls_no_verify;
	if (tls_no_verify)
		zf_warn("'%s': TLS certificates are not verified", st->base.url);
	st->ca_file = o->ca_file ? zf_strdup(o->ca_file) : NULL;
	st->connect_ms = o->connect_timeout_ms ? o->connect_timeout_ms : 10000;
	st->stall_ms = o->stall_timeout_ms ? o->stall_timeout_ms : 30000;
	st->timeout_ms = o->timeout_ms ? o->timeout_ms : 300000;
	st->attempts = o->max_attempts ? o->max_attempts : 6;
	st->base_ms = o->retry_base_ms ? o->retry_base_ms : 200;
	st->max_ms = o->retry_max_ms ? o->retry_max_ms : 10000;
	if (st->max_ms < st->base_ms)
		st->max_ms = st->base_ms;
	st->page = o->list_page_size ? o->list_page_size : 1000;
	if (st->page > 1000)
		st->page = 1000;
	st->part = o->part_size ? o->part_size : 16 * (size_t)MIB;
	if (st->part < S3_PART_MIN)
		st->part = S3_PART_MIN;
	st->threshold = o->multipart_threshold ? o->multipart_threshold : 64 * (size_t)MIB;
	if (st->threshold > S3_PUT_MAX)
		st->threshold = S3_PUT_MAX;
	r = s3_creds(st, o, url_profile ? url_profile : o->profile);
	if (r < 0)
		goto out_free;
	free(copy);
	free(ep_buf);
	*ret_store = &st->base;
	return 0;
out_free:
	free(copy);
	free(ep_buf);
	s3_close(&st->base);
	return r;
}
