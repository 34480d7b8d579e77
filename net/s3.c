/*
 * net/s3.c - S3 and compatible servers over libcurl (s3://bucket/prefix):
 * the store's operations and its opening
 *
 * put/get/head/list/delete/multi-delete of zf_objstore_ops, each built as
 * one or more struct s3_req run by s3_do() (s3_http.c: signing, retries,
 * timeouts, error mapping); opening parses the URL and its parameters
 * (libcurl's URL parser) and the endpoint, and takes the credentials
 * (s3_creds.c).
 *
 * Objects above multipart_threshold are uploaded in parts (sequentially;
 * concurrency comes from the callers' threads); a failed multipart upload
 * is aborted, and a failed abort is logged (the parts then wait for the
 * bucket's lifecycle rule).
 *
 * Locking: none here; st->pool_lock (s3_internal.h) is s3_http.c's.
 * Everything else in struct s3_store is read-only after open.
 * Not here: argument checks and range verification (objstore.c), parsing
 * answers (s3_parse.c).
 */
#include "config.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "net/s3_internal.h"
#include "net/s3_sign.h"

#define MIB (1024 * 1024)
/* S3 limits: parts of 5 MiB .. 5 GiB, at most 10000 of them; one PUT <= 5 GiB */
#define S3_PART_MIN (5 * (size_t)MIB)
#define S3_PARTS_MAX 10000
#define S3_PUT_MAX (5ull << 30)
/* DeleteObjects takes at most 1000 keys */
#define S3_DELETE_BATCH 1000

static struct s3_store *to_s3(struct zf_objstore *st)
{
	return (struct s3_store *)st;
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

/* the failed keys of one DeleteObjects answer */
struct s3_delete_errors {
	struct s3_store *st;
	size_t failed;
	int rc;
};

static int s3_delete_error(void *ctx, const char *key, const char *code, const char *msg)
{
	struct s3_delete_errors *e = ctx;

	if (code && !strcmp(code, "NoSuchKey"))
		return 0;
	if (!e->failed++)
		zf_err("s3 multi-delete of 's3://%s/%s': '%s': %s: %s", e->st->bucket,
		       e->st->prefix, key ? key : "?", code ? code : "?", msg ? msg : "");
	if (e->rc == 0)
		e->rc = code && !strcmp(code, "AccessDenied") ? -EACCES : -EIO;
	return 0;
}

/* one DeleteObjects request for up to S3_DELETE_BATCH keys */
static int s3_delete_batch(struct s3_store *st, const char *const *keys, size_t n)
{
	struct s3_req r = { .method = "POST", .op = "multi-delete", .key = NULL,
			    .content_type = "application/xml" };
	struct s3_delete_errors e = { .st = st };
	struct zf_buf xml = { 0 };
	size_t i;
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
	rc = s3_parse_delete((char *)r.in.p, (char *)r.in.p + r.in.len, s3_delete_error, &e);
	if (rc == 0)
		rc = e.rc;
	if (e.failed > 1)
		zf_err("s3 multi-delete of 's3://%s/%s': %zu of %zu keys not deleted", st->bucket,
		       st->prefix, e.failed, n);
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
	free(st->profile);
	free(st->credential_process);
	s3_keys_free(&st->keys);
	zf_mutex_destroy(&st->creds_lock);
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

/* a region goes into the signature's scope and maybe a host name: "eu-west-3"
 * (other servers name theirs freely: letters, digits, '-' and '_') */
static int valid_region(const char *r)
{
	size_t n = strlen(r), i;

	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)r[i]) && r[i] != '-' && r[i] != '_')
			return 0;
	return n && n <= 64;
}

/* part of a parsed URL (curl_free'd by the caller), NULL when absent */
static char *url_part(CURLU *u, CURLUPart what)
{
	char *v = NULL;

	return curl_url_get(u, what, &v, 0) == CURLUE_OK ? v : NULL;
}

/*
 * Split endpoint "scheme://host[:port][/]" (libcurl's URL parser) into base
 * URL and Host header; for virtual-host addressing the bucket goes in front
 * of the host. -EINVAL for anything else: a path, user, query or fragment.
 */
static int s3_endpoint(struct s3_store *st, const char *ep)
{
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *user = NULL;
	char *query = NULL, *frag = NULL;
	CURLU *u = curl_url();
	size_t n, i;
	int r = -EINVAL;

	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, ep, 0) != CURLUE_OK)
		goto out;
	scheme = url_part(u, CURLUPART_SCHEME);
	host = url_part(u, CURLUPART_HOST);
	port = url_part(u, CURLUPART_PORT);
	path = url_part(u, CURLUPART_PATH);
	user = url_part(u, CURLUPART_USER);
	query = url_part(u, CURLUPART_QUERY);
	frag = url_part(u, CURLUPART_FRAGMENT);
	/* curl accepts "host" without a scheme and guesses one: not here */
	if (!strstr(ep, "://") || !scheme || (strcmp(scheme, "http") && strcmp(scheme, "https")))
		goto out;
	if (!host || !*host || user || query || frag || (path && strcmp(path, "/")))
		goto out;	/* a path below the host is not supported */
	n = strlen(st->bucket) + strlen(host) + (port ? strlen(port) : 0) + 3;
	st->host = zf_malloc(n);
	snprintf(st->host, n, "%s%s%s%s%s", st->path_style ? "" : st->bucket,
		 st->path_style ? "" : ".", host, port ? ":" : "", port ? port : "");
	for (i = 0; st->host[i]; i++)
		st->host[i] = tolower((unsigned char)st->host[i]);
	n = strlen(scheme) + strlen(st->host) + 4;
	st->base_url = zf_malloc(n);
	snprintf(st->base_url, n, "%s://%s", scheme, st->host);
	r = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_free(user);
	curl_free(query);
	curl_free(frag);
	curl_url_cleanup(u);
	return r;
}

/* the URL's parameters and what they override */
struct s3_url_params {
	char *endpoint, *region, *profile;
	enum zf_objstore_addressing addr;
	int tls_no_verify;
};

/* parse "a=1&b=2" (q, modified) into *p; -EINVAL said through o */
static int s3_url_params(const char *url, char *q, const struct zf_objstore_opts *o,
			 struct s3_url_params *p)
{
	char *save = NULL;

	for (q = q ? strtok_r(q, "&", &save) : NULL; q; q = strtok_r(NULL, "&", &save)) {
		char *v = strchr(q, '=');

		if (!v) {
			zf_objstore_open_fail(o, "cannot open object store '%s': bad parameter '%s'",
					      url, q);
			return -EINVAL;
		}
		*v++ = 0;
		url_decode(v);
		if (!strcmp(q, "endpoint")) {
			p->endpoint = v;
		} else if (!strcmp(q, "region")) {
			p->region = v;
		} else if (!strcmp(q, "addressing") && !strcmp(v, "path")) {
			p->addr = ZF_OBJSTORE_ADDR_PATH;
		} else if (!strcmp(q, "addressing") && !strcmp(v, "vhost")) {
			p->addr = ZF_OBJSTORE_ADDR_VHOST;
		} else if (!strcmp(q, "tls_verify") && (!strcmp(v, "0") || !strcmp(v, "1"))) {
			p->tls_no_verify = v[0] == '0';
		} else if (!strcmp(q, "profile") && *v) {
			p->profile = v;
		} else {
			zf_objstore_open_fail(o, "cannot open object store '%s': unknown parameter "
					      "'%s=%s' (known: endpoint=URL, region=NAME, "
					      "addressing=path|vhost, tls_verify=0|1, profile=NAME)",
					      url, q, v);
			return -EINVAL;
		}
	}
	return 0;
}

/* the first non-empty of a, b, c, d, e */
static const char *first_set(const char *a, const char *b, const char *c, const char *d,
			     const char *e)
{
	const char *v[] = { a, b, c, d, e };
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (v[i] && *v[i])
			return v[i];
	return NULL;
}

/*
 * Bucket, prefix and parameters of "s3://bucket[/prefix][?params]" through
 * libcurl's URL parser (the prefix as written: not %-decoded, as zerofs
 * always kept it; parameter values are %-decoded). Sets st->bucket,
 * st->prefix, st->base.url; *ret_query is the query (curl_free) or NULL.
 */
static int s3_url_split(struct s3_store *st, const char *url, const struct zf_objstore_opts *o,
			char **ret_query)
{
	char *host = NULL, *path = NULL, *query = NULL, *other = NULL;
	CURLU *u = curl_url();
	CURLUcode cc;
	size_t n;
	int r = -EINVAL;

	if (!u)
		return -ENOMEM;
	cc = curl_url_set(u, CURLUPART_URL, url,
			  CURLU_NON_SUPPORT_SCHEME | CURLU_PATH_AS_IS | CURLU_ALLOW_SPACE);
	if (cc != CURLUE_OK || !strncmp(url, "s3:///", 6)) {
		zf_objstore_open_fail(o, "cannot open object store '%s': %s (want "
				      "s3://bucket[/prefix][?parameters])", url,
				      cc == CURLUE_OUT_OF_MEMORY ? "out of memory" :
				      cc != CURLUE_OK ? curl_url_strerror(cc) : "no bucket");
		r = cc == CURLUE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
		goto out;
	}
	host = url_part(u, CURLUPART_HOST);
	path = url_part(u, CURLUPART_PATH);
	query = url_part(u, CURLUPART_QUERY);
	other = url_part(u, CURLUPART_USER);
	if (!other)
		other = url_part(u, CURLUPART_PORT);
	if (!other)
		other = url_part(u, CURLUPART_FRAGMENT);
	st->bucket = zf_strdup(host ? host : "");
	if (other || !valid_bucket(st->bucket)) {
		zf_objstore_open_fail(o, "cannot open object store '%s': bad bucket name '%s'", url,
				      st->bucket);
		goto out;
	}
	/* the URL as opened, less its parameters (no secret is ever in them) */
	n = strcspn(url, "?");
	st->base.url = zf_malloc(n + 1);
	snprintf(st->base.url, n + 1, "%s", url);
	/* the prefix is a directory: "a/b" and "a/b/" are the same */
	n = path ? strlen(path) : 0;
	while (n && path[n - 1] == '/')
		path[--n] = 0;
	st->prefix = zf_malloc(n + 2);
	snprintf(st->prefix, n + 2, "%s%s", n ? path + 1 : "", n ? "/" : "");
	if (n && zf_objstore_key_valid(path + 1) < 0) {
		zf_objstore_open_fail(o, "cannot open object store '%s': bad prefix '%s'", url,
				      path + 1);
		goto out;
	}
	*ret_query = query;
	query = NULL;
	r = 0;
out:
	curl_free(host);
	curl_free(path);
	curl_free(query);
	curl_free(other);
	curl_url_cleanup(u);
	return r;
}

int zf_objstore_s3_open(const char *url, const struct zf_objstore_opts *o,
			struct zf_objstore **ret_store)
{
	struct s3_url_params p = { .addr = o->addressing, .tls_no_verify = o->tls_no_verify };
	const char *endpoint, *region, *profile;
	struct s3_config cfg = { 0 };
	char *query = NULL, *ep_buf = NULL;
	struct s3_store *st;
	int r;
	CURLcode cc;

	cc = s3_curl_init();
	if (cc != CURLE_OK) {
		zf_err("cannot initialise libcurl: %s", curl_easy_strerror(cc));
		return -EIO;
	}
	if (strncmp(url, "s3://", 5)) {
		zf_objstore_open_fail(o, "cannot open object store '%s': want s3://bucket[/prefix]",
				      url);
		return -EINVAL;
	}
	st = zf_calloc(1, sizeof(*st));
	zf_mutex_init(&st->pool_lock, ZF_RANK_S3_POOL, "s3 pool_lock");
	zf_mutex_init(&st->creds_lock, ZF_RANK_S3_CREDS, "s3 creds_lock");
	st->base.ops = &s3_ops;
	r = s3_url_split(st, url, o, &query);
	if (r < 0)
		goto out_free;
	/* URL parameters win over opts */
	r = s3_url_params(url, query, o, &p);
	if (r < 0)
		goto out_free;
	profile = first_set(p.profile, o->profile, NULL, NULL, NULL);
	st->profile = zf_strdup(first_set(profile, getenv("AWS_PROFILE"), "default", NULL, NULL));
	r = s3_config_load(o, st->profile, &cfg);
	if (r < 0)
		goto out_free;
	region = first_set(p.region, o->region, getenv("AWS_REGION"), getenv("AWS_DEFAULT_REGION"),
			   cfg.region);
	st->region = zf_strdup(region ? region : "us-east-1");
	if (!valid_region(st->region)) {
		zf_objstore_open_fail(o, "cannot open object store '%s': bad region '%s'", url,
				      st->region);
		r = -EINVAL;
		goto out_free;
	}
	endpoint = first_set(p.endpoint, o->endpoint, getenv("AWS_ENDPOINT_URL_S3"),
			     getenv("AWS_ENDPOINT_URL"), cfg.endpoint_url);
	if (p.addr == ZF_OBJSTORE_ADDR_AUTO)
		/* custom endpoints (MinIO, Ceph, tests) usually want path-style;
		 * a dotted bucket breaks TLS names with virtual-host */
		p.addr = endpoint || strchr(st->bucket, '.') ? ZF_OBJSTORE_ADDR_PATH :
							       ZF_OBJSTORE_ADDR_VHOST;
	st->path_style = p.addr == ZF_OBJSTORE_ADDR_PATH;
	if (!endpoint) {
		ep_buf = zf_malloc(strlen(st->region) + 32);
		sprintf(ep_buf, "https://s3.%s.amazonaws.com", st->region);
		endpoint = ep_buf;
	}
	r = s3_endpoint(st, endpoint);
	if (r < 0) {
		zf_objstore_open_fail(o, "cannot open object store '%s': bad endpoint '%s' (want "
				      "http[s]://host[:port])", url, endpoint);
		goto out_free;
	}
	st->tls_no_verify = p.tls_no_verify;
	if (st->tls_no_verify)
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
	r = s3_creds_init(st, o, profile, &cfg);
	if (r < 0)
		goto out_free;
	*ret_store = &st->base;
	goto out;
out_free:
	s3_close(&st->base);
out:
	s3_config_free(&cfg);
	curl_free(query);
	free(ep_buf);
	return r;
}
