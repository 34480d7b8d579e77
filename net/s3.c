/*
 * net/s3.c - S3 and compatible servers over libcurl (s3://bucket/prefix):
 * the store's operations and its opening
 *
 * put/get/head/list/delete/multi-delete of zf_objstore_ops, each built as
 * one or more struct s3_req run by s3_do() (s3_http.c: signing, retries,
 * timeouts, error mapping); opening parses the URL and its parameters,
 * the endpoint and the credentials.
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
#include <sys/stat.h>
#include <unistd.h>

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
static int s3_creds_file(struct s3_store *st, const struct zf_objstore_opts *o, const char *path,
			 const char *profile)
{
	char line[1024], want[256];
	int in = 0, found = 0, r;
	struct stat sb;
	FILE *f;

	f = fopen(path, "re");
	if (!f) {
		r = -errno;
		if (r == -ENOENT)
			zf_objstore_open_fail(o, "no credentials for 's3://%s': set AWS_ACCESS_KEY_ID "
					      "and AWS_SECRET_ACCESS_KEY, or write them into '%s' "
					      "(mode 0600)", st->bucket, path);
		else
			zf_objstore_open_fail(o, "cannot read credentials file '%s': %s", path,
					      strerror(-r));
		return r == -ENOENT ? -EACCES : r;
	}
	if (fstat(fileno(f), &sb) < 0) {
		r = -errno;
		goto out;
	}
	if (sb.st_mode & 077) {
		zf_objstore_open_fail(o, "credentials file '%s' is open to group or others (mode "
				      "%04o): refusing it; run 'chmod 600 %s'", path,
				      (unsigned int)(sb.st_mode & 07777), path);
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
		zf_objstore_open_fail(o, "credentials file '%s' has no profile '%s' with "
				      "aws_access_key_id and aws_secret_access_key", path, profile);
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
	return s3_creds_file(st, o, path, profile);
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
	CURLcode cc;
	size_t n;

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
		zf_objstore_open_fail(o, "cannot open object store '%s': bad bucket name '%s'", url,
				      st->bucket);
		goto out_free;
	}
	/* the prefix is a directory: "a/b" and "a/b/" are the same */
	n = slash ? strlen(slash) : 0;
	while (n && slash[n - 1] == '/')
		slash[--n] = 0;
	st->prefix = zf_malloc(n + 2);
	snprintf(st->prefix, n + 2, "%s%s", n ? slash : "", n ? "/" : "");
	if (n && zf_objstore_key_valid(slash) < 0) {
		zf_objstore_open_fail(o, "cannot open object store '%s': bad prefix '%s'", url,
				      slash);
		goto out_free;
	}
	/* URL parameters win over opts */
	for (q = q ? strtok_r(q, "&", &save) : NULL; q; q = strtok_r(NULL, "&", &save)) {
		char *v = strchr(q, '=');

		if (!v) {
			zf_objstore_open_fail(o, "cannot open object store '%s': bad parameter '%s'",
					      url, q);
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
			zf_objstore_open_fail(o, "cannot open object store '%s': unknown parameter "
					      "'%s=%s' (known: endpoint=URL, region=NAME, "
					      "addressing=path|vhost, tls_verify=0|1, profile=NAME)",
					      url, q, v);
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
		zf_objstore_open_fail(o, "cannot open object store '%s': bad endpoint '%s' (want "
				      "http[s]://host[:port])", url, endpoint);
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
