/*
 * net/s3_sign.h - AWS Signature Version 4 for S3 requests (net/ only)
 *
 * Implements the canonical request of the AWS documentation ("Signature
 * Calculations for the Authorization Header"): the URI path with every
 * segment percent-encoded (upper-case hex, only A-Za-z0-9-._~ kept), the
 * query parameters encoded the same way (and '/' too) and sorted by name
 * then value, the signed headers lower-case, sorted, values trimmed, and the
 * hex SHA-256 of the payload. libcurl 7.88's CURLOPT_AWS_SIGV4 gets some of
 * these wrong (unsorted queries, lower-case escapes, some key characters),
 * so zerofs signs every request itself and sends the URL in exactly the
 * canonical form it signed.
 *
 * Pure functions of their arguments, no locking, no allocation but the
 * output buffers.
 */
#ifndef ZF_NET_S3_SIGN_H
#define ZF_NET_S3_SIGN_H

#include <stddef.h>
#include <time.h>

#include "common/buf.h"

struct zf_s3_param {
	const char *key;	/* raw, not yet encoded */
	const char *value;	/* raw; "" for a bare "?uploads" */
};

struct zf_s3_hdr {
	const char *name;	/* lower-case */
	const char *value;
};

struct zf_s3_sign_in {
	const char *method;
	const char *path;	/* canonical URI: already encoded by zf_s3_uri_encode() */
	const struct zf_s3_param *params;
	size_t nparams;
	const struct zf_s3_hdr *hdrs;	/* every header to sign, host included */
	size_t nhdrs;
	const char *payload_sha256;	/* hex, or "UNSIGNED-PAYLOAD" */
	const char *amz_date;	/* "20130524T000000Z", the x-amz-date header */
	const char *region;
	const char *service;	/* "s3" */
	const char *access_key;
	const char *secret_key;
};

/* append s[0..len) percent-encoded; '/' is kept when keep_slash */
void zf_s3_uri_encode(struct zf_buf *out, const char *s, size_t len, int keep_slash);

/* append the canonical query string (encoded, sorted, '&'-joined) */
void zf_s3_canonical_query(struct zf_buf *out, const struct zf_s3_param *p, size_t n);

/*
 * Set *auth to the Authorization header value ("AWS4-HMAC-SHA256 Credential=
 * ..., SignedHeaders=..., Signature=..."), NUL-terminated. When canon is
 * not NULL it receives the canonical request (tests, debugging).
 */
void zf_s3_sign(const struct zf_s3_sign_in *in, struct zf_buf *auth, struct zf_buf *canon);

/* hex SHA-256 (65 bytes with the NUL) */
void zf_s3_sha256_hex(const void *buf, size_t len, char out[65]);
/* base64 of the MD5 (25 bytes with the NUL), for Content-MD5 */
void zf_s3_md5_base64(const void *buf, size_t len, char out[25]);
/* "YYYYMMDDTHHMMSSZ" of t in UTC (17 bytes with the NUL) */
void zf_s3_amz_date(time_t t, char out[17]);

/* append a NUL without counting it, so that b->p is a C string */
static inline void zf_s3_buf_cstr(struct zf_buf *b)
{
	zf_buf_reserve(b, 1);
	b->p[b->len] = 0;
}

static inline void zf_s3_buf_puts(struct zf_buf *b, const char *s)
{
	zf_buf_add(b, s, strlen(s));
}

#endif
