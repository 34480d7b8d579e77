/*
 * net/s3_sign.c - AWS Signature Version 4 (see s3_sign.h)
 *
 * SHA-256, HMAC-SHA256 and MD5 come from OpenSSL's libcrypto.
 */
#include "config.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/util.h"
#include "net/s3_sign.h"

static const char hexdig[] = "0123456789ABCDEF";

static int unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

void zf_s3_uri_encode(struct zf_buf *out, const char *s, size_t len, int keep_slash)
{
	size_t i;

	zf_buf_reserve(out, len * 3 + 1);
	for (i = 0; i < len; i++) {
		unsigned char c = s[i];

		if (unreserved(c) || (keep_slash && c == '/')) {
			out->p[out->len++] = c;
		} else {
			out->p[out->len++] = '%';
			out->p[out->len++] = hexdig[c >> 4];
			out->p[out->len++] = hexdig[c & 15];
		}
	}
}

struct enc_param {
	char *k, *v;
};

static int enc_param_cmp(const void *a, const void *b)
{
	const struct enc_param *x = a, *y = b;
	int c = strcmp(x->k, y->k);

	return c ? c : strcmp(x->v, y->v);
}

static char *encode_dup(const char *s)
{
	struct zf_buf b = { 0 };

	zf_s3_uri_encode(&b, s, strlen(s), 0);
	zf_s3_buf_cstr(&b);
	return (char *)b.p;
}

void zf_s3_canonical_query(struct zf_buf *out, const struct zf_s3_param *p, size_t n)
{
	struct enc_param *e;
	size_t i;

	if (n == 0)
		return;
	e = zf_calloc(n, sizeof(*e));
	for (i = 0; i < n; i++) {
		e[i].k = encode_dup(p[i].key);
		e[i].v = encode_dup(p[i].value ? p[i].value : "");
	}
	/* sorted by encoded name, then value (byte order), as AWS does */
	qsort(e, n, sizeof(*e), enc_param_cmp);
	for (i = 0; i < n; i++) {
		if (i)
			zf_buf_add(out, "&", 1);
		zf_s3_buf_puts(out, e[i].k);
		zf_buf_add(out, "=", 1);	/* present even for an empty value */
		zf_s3_buf_puts(out, e[i].v);
		free(e[i].k);
		free(e[i].v);
	}
	free(e);
}

static int hdr_cmp(const void *a, const void *b)
{
	return strcmp(((const struct zf_s3_hdr *)a)->name, ((const struct zf_s3_hdr *)b)->name);
}

/* header value: leading/trailing spaces trimmed, inner runs of spaces squeezed */
static void add_trimmed(struct zf_buf *out, const char *v)
{
	int space = 0;

	while (*v == ' ' || *v == '\t')
		v++;
	for (; *v; v++) {
		if (*v == ' ' || *v == '\t') {
			space = 1;
			continue;
		}
		if (space)
			zf_buf_add(out, " ", 1);
		space = 0;
		zf_buf_add(out, v, 1);
	}
}

static void hex(const unsigned char *md, size_t n, char *out)
{
	static const char lower[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = lower[md[i] >> 4];
		out[2 * i + 1] = lower[md[i] & 15];
	}
	out[2 * n] = 0;
}

void zf_s3_sha256_hex(const void *buf, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL);
	hex(md, 32, out);
}

void zf_s3_md5_base64(const void *buf, size_t len, char out[25])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	EVP_Digest(buf, len, md, &mdlen, EVP_md5(), NULL);
	EVP_EncodeBlock((unsigned char *)out, md, 16);	/* 24 chars + NUL */
}

void zf_s3_amz_date(time_t t, char out[17])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static void hmac(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
	unsigned int n = 32;

	HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &n);
}

void zf_s3_sign(const struct zf_s3_sign_in *in, struct zf_buf *auth, struct zf_buf *canon)
{
	struct zf_buf c = { 0 }, sts = { 0 }, signed_hdrs = { 0 }, kbuf = { 0 };
	unsigned char k[32], k2[32], sig[32];
	char date[9], scope[128], hash[65], sighex[65];
	struct zf_s3_hdr *h;
	size_t i;

	/* 1. the canonical request */
	h = zf_calloc(in->nhdrs ? in->nhdrs : 1, sizeof(*h));
	memcpy(h, in->hdrs, in->nhdrs * sizeof(*h));
	qsort(h, in->nhdrs, sizeof(*h), hdr_cmp);
	zf_s3_buf_puts(&c, in->method);
	zf_buf_add(&c, "\n", 1);
	zf_s3_buf_puts(&c, in->path);
	zf_buf_add(&c, "\n", 1);
	zf_s3_canonical_query(&c, in->params, in->nparams);
	zf_buf_add(&c, "\n", 1);
	for (i = 0; i < in->nhdrs; i++) {
		zf_s3_buf_puts(&c, h[i].name);
		zf_buf_add(&c, ":", 1);
		add_trimmed(&c, h[i].value);
		zf_buf_add(&c, "\n", 1);
		if (i)
			zf_buf_add(&signed_hdrs, ";", 1);
		zf_s3_buf_puts(&signed_hdrs, h[i].name);
	}
	zf_s3_buf_cstr(&signed_hdrs);
	zf_buf_add(&c, "\n", 1);
	zf_s3_buf_puts(&c, (char *)signed_hdrs.p);
	zf_buf_add(&c, "\n", 1);
	zf_s3_buf_puts(&c, in->payload_sha256);
	free(h);

	/* 2. the string to sign */
	memcpy(date, in->amz_date, 8);
	date[8] = 0;
	snprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request", date, in->region, in->service);
	zf_s3_sha256_hex(c.p, c.len, hash);
	zf_s3_buf_puts(&sts, "AWS4-HMAC-SHA256\n");
	zf_s3_buf_puts(&sts, in->amz_date);
	zf_buf_add(&sts, "\n", 1);
	zf_s3_buf_puts(&sts, scope);
	zf_buf_add(&sts, "\n", 1);
	zf_s3_buf_puts(&sts, hash);
	zf_s3_buf_cstr(&sts);

	/* 3. the signing key, 4. the signature */
	zf_s3_buf_puts(&kbuf, "AWS4");
	zf_s3_buf_puts(&kbuf, in->secret_key);
	hmac(kbuf.p, kbuf.len, date, k);
	OPENSSL_cleanse(kbuf.p, kbuf.len);
	hmac(k, 32, in->region, k2);
	hmac(k2, 32, in->service, k);
	hmac(k, 32, "aws4_request", k2);
	hmac(k2, 32, (char *)sts.p, sig);
	OPENSSL_cleanse(k, sizeof(k));
	OPENSSL_cleanse(k2, sizeof(k2));
	hex(sig, 32, sighex);

	auth->len = 0;
	zf_s3_buf_puts(auth, "AWS4-HMAC-SHA256 Credential=");
	zf_s3_buf_puts(auth, in->access_key);
	zf_buf_add(auth, "/", 1);
	zf_s3_buf_puts(auth, scope);
	zf_s3_buf_puts(auth, ", SignedHeaders=");
	zf_s3_buf_puts(auth, (char *)signed_hdrs.p);
	zf_s3_buf_puts(auth, ", Signature=");
	zf_s3_buf_puts(auth, sighex);
	zf_s3_buf_cstr(auth);

	if (canon) {
		canon->len = 0;
		zf_buf_add(canon, c.p, c.len);
		zf_s3_buf_cstr(canon);
	}
	zf_buf_free(&c);
	zf_buf_free(&sts);
	zf_buf_free(&signed_hdrs);
	zf_buf_free(&kbuf);
}
