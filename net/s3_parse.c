/*
 * net/s3_parse.c - the parsers of S3 answers: HTTP headers and body of each
 * answer (libcurl's callbacks), the XML in it, and %-decoding
 *
 * Declared in net/s3_parse.h, not static, so that tests/fuzz can drive them
 * with hostile bytes. XML goes through libexpat (s3_xml_walk), which
 * decodes entities and refuses what is not well-formed; a document type
 * declaration is refused too (S3 sends none, and its entities could expand
 * without bound). %-decoding is libcurl's (curl_easy_unescape). A data GET's headers fix the window of the body it
 * keeps ([off, off + want) of the object), checked against Content-Range /
 * Content-Length; other bodies are kept whole, at most S3_RESP_MAX.
 * Pure functions of their arguments, no locking.
 * Not here: building, signing and sending requests (s3.c, s3_sign.c, s3_http.c).
 */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <expat.h>
#include <inttypes.h>
#include <limits.h>
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

/* ---- %-decoding ---- */

/* %XX-decode s in place through libcurl ('+' stays '+': S3 keys use %20 for
 * spaces); a decoded NUL ends the string */
void url_decode(char *s)
{
	int n = 0;
	char *d = curl_easy_unescape(NULL, s, 0, &n);

	if (!d)
		abort();	/* libcurl fails here only without memory: as zf_malloc */
	memcpy(s, d, (size_t)n);	/* never longer than s */
	s[n] = 0;
	curl_free(d);
}

/* ---- XML (expat) ---- */

/* S3 answers nest 4 deep at most; anything much deeper is not one */
#define S3_XML_DEPTH 32

struct s3_xml_walk {
	XML_Parser xp;
	s3_xml_fn fn;
	void *ctx;
	char *names[S3_XML_DEPTH];	/* open elements, namespace prefix cut */
	int depth;
	struct zf_buf text;	/* character data of the innermost open element */
	int rc;			/* fn's non-zero, or -EBADMSG */
	const char *why;	/* why a handler stopped the parser with -EBADMSG */
};

static void s3_xml_stop(struct s3_xml_walk *w, int rc, const char *why)
{
	if (!w->rc) {
		w->rc = rc;
		w->why = why;
	}
	XML_StopParser(w->xp, XML_FALSE);
}

static void XMLCALL s3_xml_start(void *arg, const XML_Char *name, const XML_Char **attrs)
{
	struct s3_xml_walk *w = arg;
	const char *colon = strrchr(name, ':');

	if (w->depth == S3_XML_DEPTH) {
		s3_xml_stop(w, -EBADMSG, "elements nested too deep");
		return;
	}
	/* "s3:Key" is "Key"; a name that is nothing but a prefix ("a:") stays whole */
	w->names[w->depth++] = zf_strdup(colon && colon[1] ? colon + 1 : name);
	w->text.len = 0;
}

static void XMLCALL s3_xml_end(void *arg, const XML_Char *name)
{
	struct s3_xml_walk *w = arg;
	const char *parent = w->depth > 1 ? w->names[w->depth - 2] : "";
	int rc;

	zf_s3_buf_cstr(&w->text);
	rc = w->fn(w->ctx, parent, w->names[w->depth - 1], (char *)w->text.p, w->text.len);
	free(w->names[--w->depth]);
	w->text.len = 0;
	if (rc)
		s3_xml_stop(w, rc, NULL);
}

static void XMLCALL s3_xml_chars(void *arg, const XML_Char *s, int len)
{
	struct s3_xml_walk *w = arg;

	zf_buf_add(&w->text, s, len);
}

/* a DTD could declare entities that expand without bound: S3 never sends one */
static void XMLCALL s3_xml_doctype(void *arg, const XML_Char *name, const XML_Char *sysid,
				   const XML_Char *pubid, int has_internal_subset)
{
	s3_xml_stop(arg, -EBADMSG, "a document type declaration");
}

int s3_xml_walk(const char *p, const char *end, s3_xml_fn fn, void *ctx, char *ret_err,
		size_t err_size)
{
	struct s3_xml_walk w = { .fn = fn, .ctx = ctx };
	enum XML_Status st;

	if (end - p > INT_MAX)
		return -EBADMSG;
	w.xp = XML_ParserCreate("UTF-8");
	if (!w.xp)
		return -ENOMEM;
	XML_SetUserData(w.xp, &w);
	XML_SetElementHandler(w.xp, s3_xml_start, s3_xml_end);
	XML_SetCharacterDataHandler(w.xp, s3_xml_chars);
	XML_SetStartDoctypeDeclHandler(w.xp, s3_xml_doctype);
	st = XML_Parse(w.xp, p, (int)(end - p), 1);
	if (st != XML_STATUS_OK && !w.rc)
		w.rc = -EBADMSG;
	if (w.rc == -EBADMSG && ret_err)
		snprintf(ret_err, err_size, "%s at line %lu",
			 w.why ? w.why : XML_ErrorString(XML_GetErrorCode(w.xp)),
			 (unsigned long)XML_GetCurrentLineNumber(w.xp));
	while (w.depth)
		free(w.names[--w.depth]);
	zf_buf_free(&w.text);
	XML_ParserFree(w.xp);
	return w.rc;
}

/* the first <tag> of a document */
struct s3_xml_first {
	const char *tag;
	char *value;
};

static int s3_xml_first_fn(void *ctx, const char *parent, const char *name, const char *text,
			   size_t len)
{
	struct s3_xml_first *f = ctx;

	if (strcmp(name, f->tag))
		return 0;
	f->value = zf_strdup(text);
	return 1;
}

char *xml_get(const char *p, const char *end, const char *tag)
{
	struct s3_xml_first f = { .tag = tag };

	s3_xml_walk(p, end, s3_xml_first_fn, &f, NULL, 0);
	return f.value;
}

/* an S3 error body: <Error><Code>..</Code><Message>..</Message>...</Error> */
struct s3_xml_error {
	struct s3_req *r;
	int root_is_error;
	int have_code, have_msg;
};

static int s3_error_fn(void *ctx, const char *parent, const char *name, const char *text,
		       size_t len)
{
	struct s3_xml_error *e = ctx;

	if (!*parent) {
		e->root_is_error = !strcmp(name, "Error");
		return 0;
	}
	if (strcmp(parent, "Error"))
		return 0;
	if (!strcmp(name, "Code") && !e->have_code++)
		snprintf(e->r->code, sizeof(e->r->code), "%s", text);
	else if (!strcmp(name, "Message") && !e->have_msg++)
		snprintf(e->r->why, sizeof(e->r->why), "%s", text);
	return 0;
}

/*
 * What an S3 error code means, for answers whose <Message> is empty or
 * missing (Ceph RGW sends "<Message></Message>"); NULL for other codes.
 */
static const char *s3_code_meaning(const char *code)
{
	static const struct {
		const char *code, *meaning;
	} known[] = {
		{ "SignatureDoesNotMatch", "the request's signature does not match: wrong secret key "
					   "for this access key?" },
		{ "InvalidAccessKeyId", "the server knows no such access key" },
		{ "AccessDenied", "access denied (credentials or permissions)" },
		{ "NoSuchBucket", "no such bucket" },
		{ "RequestTimeTooSkewed", "this machine's clock is too far from the server's" },
	};
	size_t i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (!strcmp(code, known[i].code))
			return known[i].meaning;
	return NULL;
}

int s3_parse_error(struct s3_req *r, const char *p, const char *end)
{
	struct s3_xml_error e = { .r = r };
	const char *meaning;

	r->code[0] = 0;
	s3_xml_walk(p, end, s3_error_fn, &e, NULL, 0);
	if (e.root_is_error && r->code[0] && !r->why[0]) {
		meaning = s3_code_meaning(r->code);
		snprintf(r->why, sizeof(r->why), "%s",
			 meaning ? meaning : "(no message from the server)");
	}
	return e.root_is_error;
}

/* ---- DeleteObjects ---- */

struct s3_xml_delete {
	s3_delete_fn fn;
	void *ctx;
	char *key, *code, *msg;	/* of the <Error> being read */
};

static int s3_delete_fn_(void *ctx, const char *parent, const char *name, const char *text,
			 size_t len)
{
	struct s3_xml_delete *d = ctx;
	char **dst = NULL;
	int rc;

	if (!strcmp(parent, "Error")) {
		if (!strcmp(name, "Key"))
			dst = &d->key;
		else if (!strcmp(name, "Code"))
			dst = &d->code;
		else if (!strcmp(name, "Message"))
			dst = &d->msg;
		if (dst && !*dst)
			*dst = zf_strdup(text);
		return 0;
	}
	if (strcmp(name, "Error"))
		return 0;
	rc = d->fn(d->ctx, d->key, d->code, d->msg);
	free(d->key);
	free(d->code);
	free(d->msg);
	d->key = d->code = d->msg = NULL;
	return rc;
}

int s3_parse_delete(const char *p, const char *end, s3_delete_fn fn, void *ctx)
{
	struct s3_xml_delete d = { .fn = fn, .ctx = ctx };
	char err[160];
	int rc;

	rc = s3_xml_walk(p, end, s3_delete_fn_, &d, err, sizeof(err));
	free(d.key);
	free(d.code);
	free(d.msg);
	if (rc == -EBADMSG) {
		zf_err("s3 multi-delete: answer is not XML: %s", err);
		rc = -EIO;
	}
	return rc;
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

struct s3_list_entry {
	char *key;
	char *size;
};

/* one page as it was read: its entries are handed out once it is whole,
 * as <EncodingType> may come after them */
struct s3_xml_list {
	struct s3_list_entry *ent;
	size_t n, cap;
	char *key, *size;	/* of the <Contents> being read */
	int bad;		/* an entry without Key or Size */
	int urlenc, more;
	char *token;
};

static int s3_list_fn(void *ctx, const char *parent, const char *name, const char *text,
		      size_t len)
{
	struct s3_xml_list *l = ctx;

	if (!strcmp(parent, "Contents")) {
		if (!strcmp(name, "Key") && !l->key)
			l->key = zf_strdup(text);
		else if (!strcmp(name, "Size") && !l->size)
			l->size = zf_strdup(text);
		return 0;
	}
	if (!strcmp(name, "Contents")) {
		if (!l->key || !l->size) {
			l->bad = 1;
			free(l->key);
			free(l->size);
		} else {
			if (l->n == l->cap) {
				l->cap = l->cap ? 2 * l->cap : 64;
				l->ent = zf_realloc(l->ent, l->cap * sizeof(*l->ent));
			}
			l->ent[l->n++] = (struct s3_list_entry){ l->key, l->size };
		}
		l->key = l->size = NULL;
	} else if (!strcmp(name, "EncodingType")) {
		l->urlenc = !strcmp(text, "url");
	} else if (!strcmp(name, "IsTruncated")) {
		l->more = !strcmp(text, "true");
	} else if (!strcmp(name, "NextContinuationToken") && !l->token) {
		l->token = zf_strdup(text);
	}
	return 0;
}

int s3_parse_list(const char *p, const char *end, const char *bucket, const char *store_prefix,
		  const char *prefix, zf_objstore_list_fn fn, void *ctx, int *ret_nkeys,
		  int *ret_more, char **ret_token)
{
	struct s3_xml_list l = { 0 };
	size_t plen = strlen(store_prefix), i;
	int nkeys = 0, rc;
	char err[160];

	rc = s3_xml_walk(p, end, s3_list_fn, &l, err, sizeof(err));
	if (rc < 0) {
		zf_err("s3 list '%s' of 's3://%s/%s': answer is not XML: %s", prefix, bucket,
		       store_prefix, err);
		rc = -EIO;
	} else if (l.bad) {
		zf_err("s3 list '%s' of 's3://%s/%s': entry without Key or Size", prefix, bucket,
		       store_prefix);
		rc = -EIO;
	}
	for (i = 0; i < l.n && rc == 0; i++) {
		char *key = l.ent[i].key;

		/* keys are %-encoded only if the server honoured encoding-type */
		if (l.urlenc)
			url_decode(key);
		if (strncmp(key, store_prefix, plen) ||
		    strncmp(key + plen, prefix, strlen(prefix))) {
			zf_warn("s3 list '%s' of 's3://%s/%s': server returned '%s' outside "
				"the prefix; ignored",
				prefix, bucket, store_prefix, key);
		} else if (zf_objstore_key_valid(key + plen) < 0) {
			zf_dbg("s3 list: skipping key '%s' that zerofs cannot name", key);
		} else {
			nkeys++;
			rc = fn(ctx, key + plen, strtoull(l.ent[i].size, NULL, 10));
		}
	}
	for (i = 0; i < l.n; i++) {
		free(l.ent[i].key);
		free(l.ent[i].size);
	}
	free(l.ent);
	free(l.key);
	free(l.size);
	*ret_more = rc == 0 && l.more;
	*ret_token = l.token;
	*ret_nkeys = nkeys;
	return rc;
}
