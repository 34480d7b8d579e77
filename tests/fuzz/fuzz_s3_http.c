/*
 * tests/fuzz/fuzz_s3_http.c - an S3 server's HTTP answer as libcurl hands
 * it to net/s3_parse.c (s3_header_cb: status lines, Content-Length, ETag,
 * Content-Range; the window of a ranged GET, s3_data_window; s3_write_cb
 * keeping the bytes asked for)
 *
 * Input: a first line "get|xml OFFSET LENGTH PIECE": a data GET of LENGTH
 * bytes at OFFSET (0: to the end) or a request with an XML answer, and the
 * size of the body's pieces; then the answer: header lines up to the empty
 * line that ends the final (status >= 200) block, then the body, handed
 * over in pieces as curl would, until a callback stops the transfer.
 * Checked: what a data GET keeps is at most what was asked for, and it is
 * exactly the body's bytes at that offset of the object.
 */
#include "config.h"

#include "net/s3_parse.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct s3_req r = { .method = "GET", .op = "get", .key = "k" };
	const uint8_t *p, *end = data + size, *body, *nl = memchr(data, '\n', size);
	unsigned long long off = 0, len = 0, piece = 0;
	char first[128], kind[8];

	if (!nl || (size_t)(nl - data) >= sizeof(first))
		return 0;
	memcpy(first, data, nl - data);
	first[nl - data] = 0;
	if (sscanf(first, "%7s %llu %llu %llu", kind, &off, &len, &piece) != 4 ||
	    len > SIZE_MAX || piece == 0)
		return 0;
	r.data = !strcmp(kind, "get");
	r.off = off;
	r.len = (size_t)len;
	/* objstore.c refuses a range that wraps before any backend sees it */
	if (r.len && r.off + r.len < r.off)
		return 0;
	s3_reset_reply(&r);

	/* headers, a line at a time, each with its end of line */
	for (p = nl + 1; p < end && !r.headers_done;) {
		const uint8_t *eol = memchr(p, '\n', end - p);
		size_t n = eol ? (size_t)(eol - p) + 1 : (size_t)(end - p);
		char *line = malloc(n);

		memcpy(line, p, n);
		fz_check(s3_header_cb(line, 1, n, &r) == n);
		free(line);
		p += n;
	}
	body = p;

	/* the body, in pieces, until a callback stops the transfer */
	while (p < end) {
		size_t n = (size_t)(end - p) < piece ? (size_t)(end - p) : piece;
		char *b = malloc(n);
		size_t got;

		memcpy(b, p, n);
		got = s3_write_cb(b, 1, n, &r);
		free(b);
		fz_check(got == n || got == 0);
		if (got != n)
			break;
		p += n;
	}

	fz_check(strlen(r.etag) < sizeof(r.etag) && strlen(r.why) < sizeof(r.why));
	if (r.data && (r.status == 200 || r.status == 206) && r.headers_done && !r.bad_reply) {
		/* body byte i is object byte data_start + i */
		if (r.want != UINT64_MAX)
			fz_check(r.out.len <= r.want);
		if (r.out.len) {
			fz_check(r.data_start <= r.off);
			fz_check(r.off - r.data_start + r.out.len <= (size_t)(end - body));
			fz_check(!memcmp(r.out.p, body + (r.off - r.data_start), r.out.len));
		}
	} else if (!r.data || (r.status != 200 && r.status != 206)) {
		fz_check(r.out.len == 0 && r.in.len <= (size_t)(p - body));
	}
	zf_buf_free(&r.in);
	zf_buf_free(&r.out);
	return 0;
}
