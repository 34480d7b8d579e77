/*
 * net/s3_parse.c - the parsers of S3 answers: HTTP headers and body of each
 * answer (libcurl's callbacks), the XML in it, and %-decoding
 *
 * Declared in net/s3_parse.h, not static, so that tests/fuzz can drive them
 * with hostile bytes. A data GET's headers fix the window of the body it
 * keeps ([off, off + want) of the object), checked against Content-Range /
 * Content-Length; other bodies are kept whole, at most S3_RESP_MAX.
 * Pure functions of their arguments, no locking.
 * Not here: building, signing and sending requests (s3.c, s3_sign.c, s3_http.c).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "net/objstore_internal.h"
#include "net/s3_parse.h"

#define MIB (1024 * 1024)
/* largest XML answer accepted (a list page of 1000 long keys is ~1.5 MiB) */
#define S3_RESP_MAX (16 * MIB)
/* a GET that already has its bytes stops reading if more than this is left */
#define S3_DRAIN_MAX (64 * 1024)
/* most of a data GET's buffer reserved from its headers (more grows as it comes) */
#define S3_RESERVE_MAX (64 * (size_t)MIB)

/* ---- text helpers ---- */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* %XX-decode s in place ('+' stays '+': S3 keys use %20 for spaces) */
void url_decode(char *s)
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

/* ---- ListObjectsV2 ---- */

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
