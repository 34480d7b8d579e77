/*
 * net/s3_parse.h - the parsers of S3 answers in net/s3_parse.c (net/ and
 * tests only): HTTP headers and body of each answer, and the XML in it
 *
 * Declared here, not static, so that tests/fuzz can drive them with hostile
 * bytes; nothing outside net/s3*.c and tests/fuzz includes this header.
 * Every parser reads [p, end) of an answer that net/s3_http.c has NUL-terminated
 * at end (zf_s3_buf_cstr); XML is parsed by libexpat, which refuses NUL bytes.
 * Pure functions of their arguments, no locking.
 */
#ifndef ZF_NET_S3_PARSE_H
#define ZF_NET_S3_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "net/objstore.h"
#include "net/s3_sign.h"

/* one request to the server and what came back (net/s3.c, net/s3_http.c) */
struct s3_req {
	/* what to send */
	const char *method;
	const char *op;		/* for messages: "get", "put part 3", ... */
	const char *key;	/* full key (prefix included), NULL for the bucket */
	struct zf_s3_param q[5];
	size_t nq;
	const void *body;
	size_t body_len;
	const char *content_type;
	int data;		/* a GET of object bytes: off/len below, body to out */
	uint64_t off;
	size_t len;		/* 0: to the end */
	int error_in_200;	/* an <Error> body in a 200 answer is a failure */
	/* what came back; reset for every attempt */
	long status;
	struct zf_buf in;	/* error bodies and XML answers */
	char etag[ZF_OBJSTORE_ETAG_MAX];
	int64_t clen;		/* Content-Length, -1 if none */
	int has_crange;
	uint64_t cr_start, cr_end, cr_total;
	int headers_done;
	struct zf_buf out;	/* GET data: the bytes [off, off + want) */
	uint64_t data_start;	/* object offset of the body's first byte */
	uint64_t seen;		/* body bytes received */
	uint64_t want;
	uint64_t total;		/* object size */
	int bad_reply;		/* the headers did not match the request */
	int done_early;		/* stopped reading once the bytes were there */
	char why[256];		/* the last attempt's failure, for the log */
	char code[64];		/* S3 error code of the last attempt */
};

/* before each attempt: forget what the last answer said */
void s3_reset_reply(struct s3_req *r);

/*
 * libcurl's header and write callbacks of every request (arg is the
 * struct s3_req): a header line (status line, "Name: value", the empty line
 * ending a block) as it came, CRLF included; body bytes as they come.
 * They return size * n to go on, fewer to stop the transfer. The headers
 * of a data GET fix the window of the body kept in r->out ([off, off +
 * want) of the object); other bodies go to r->in, at most 16 MiB.
 */
size_t s3_header_cb(char *p, size_t size, size_t n, void *arg);
size_t s3_write_cb(char *p, size_t size, size_t n, void *arg);

/* %XX-decode s in place ('+' stays '+': S3 keys use %20 for spaces); a
 * decoded NUL ends the string */
void url_decode(char *s);

/*
 * Called at the end of every element of a document: name is the element's
 * (namespace prefix cut off), parent the enclosing one's ("" at the root),
 * text its character data with entities decoded (NUL-terminated, len bytes;
 * for an element with children, what follows the last one). Returns 0 to
 * go on, non-zero to stop the walk with that value.
 */
typedef int (*s3_xml_fn)(void *ctx, const char *parent, const char *name, const char *text,
			 size_t len);

/*
 * Walk the XML document [p, end) with libexpat, calling fn as above.
 * Returns 0, fn's non-zero, -ENOMEM, or -EBADMSG for a document that is not
 * well-formed, has a document type declaration or nests deeper than 32
 * (then, if ret_err is not NULL, why and where into ret_err, err_size
 * bytes). fn may already have been called for the elements before the fault.
 */
int s3_xml_walk(const char *p, const char *end, s3_xml_fn fn, void *ctx, char *ret_err,
		size_t err_size);

/* the text of the first <tag> element of the XML document [p, end)
 * (malloc'd), or NULL when there is none before the end or a fault */
char *xml_get(const char *p, const char *end, const char *tag);

/*
 * An S3 error body: copy the <Code> and <Message> of its root <Error> into
 * r->code (emptied first) and r->why (kept when there is no Message). An
 * <Error> with a code and no message, or an empty one (Ceph RGW's), that
 * left r->why empty gets what a well-known code means, or "(no message
 * from the server)".
 * Returns 1 when the root element is <Error>, else 0 (not XML, or another
 * answer: CompleteMultipartUpload's 200 may carry either).
 */
int s3_parse_error(struct s3_req *r, const char *p, const char *end);

/* one <Error> entry of a DeleteObjects answer; each argument may be NULL */
typedef int (*s3_delete_fn)(void *ctx, const char *key, const char *code, const char *msg);

/*
 * A DeleteObjects answer [p, end): fn for each <Error> entry (the keys not
 * deleted). Returns 0, fn's non-zero, or -EIO when the answer is not XML (logged).
 */
int s3_parse_delete(const char *p, const char *end, s3_delete_fn fn, void *ctx);

/*
 * One ListObjectsV2 page [p, end): call fn(ctx, key, size) for each
 * <Contents> whose key (%-decoded when <EncodingType> is "url") starts with
 * store_prefix + prefix, with store_prefix cut off; keys outside it or that
 * zerofs cannot name are skipped (logged). fn is called only once the whole
 * page has parsed. *ret_nkeys counts the calls, *ret_more is 1 when
 * <IsTruncated> is "true" (0 on failure), *ret_token the
 * <NextContinuationToken> (malloc'd) or NULL. Returns 0, fn's non-zero,
 * or -EIO for a page that is not XML or has an entry without Key or Size
 * (logged with bucket).
 */
int s3_parse_list(const char *p, const char *end, const char *bucket, const char *store_prefix,
		  const char *prefix, zf_objstore_list_fn fn, void *ctx, int *ret_nkeys,
		  int *ret_more, char **ret_token);

#endif
