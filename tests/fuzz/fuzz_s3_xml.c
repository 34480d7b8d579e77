/*
 * tests/fuzz/fuzz_s3_xml.c - S3's XML answers (net/s3_parse.c through
 * net/s3_parse.h, libexpat underneath): a ListObjectsV2 page (s3_parse_list,
 * the %-decoding of keys), an error body (s3_parse_error), the <Error>
 * entries of a DeleteObjects answer (s3_parse_delete), UploadId (xml_get)
 * and the element walk itself (s3_xml_walk)
 *
 * The input is the body of an answer. net/s3_http.c NUL-terminates every answer
 * before it parses it (zf_s3_buf_cstr), and so does this target, into a
 * buffer of exactly size + 1 bytes. The store's prefix and the listed
 * prefix come from the first line when it starts with '#': "#store/ pre".
 */
#include "config.h"

#include "net/objstore.h"
#include "net/s3_parse.h"
#include "tests/fuzz/fuzz.h"

static int on_failed(void *ctx, const char *key, const char *code, const char *msg)
{
	unsigned int *n = ctx;

	return ++*n > 100000 ? 1 : 0;
}

static int on_element(void *ctx, const char *parent, const char *name, const char *text,
		      size_t len)
{
	const char *colon = strrchr(name, ':');

	/* a prefix is cut, unless nothing follows it */
	fz_check(strlen(text) == len && name[0] && (!colon || !colon[1]));
	return 0;
}

static int on_key(void *ctx, const char *key, uint64_t size)
{
	unsigned int *n = ctx;

	fz_check(zf_objstore_key_valid(key) == 0);
	return ++*n > 100000 ? 1 : 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char store_prefix[64] = "", prefix[64] = "", *buf, *p, *end, *tok;
	struct s3_req req = { 0 };
	unsigned int keys = 0, failed = 0;
	int nkeys = -1, more = -1, r;
	char err[160];
	size_t len;

	buf = malloc(size + 1);
	memcpy(buf, data, size);
	buf[size] = 0;
	p = buf;
	end = buf + size;
	if (size && buf[0] == '#') {
		char *nl = memchr(buf, '\n', size);
		char line[128];

		len = (nl ? (size_t)(nl - buf) : size) - 1;
		if (len >= sizeof(line))
			len = sizeof(line) - 1;
		memcpy(line, buf + 1, len);
		line[len] = 0;
		p = nl ? nl + 1 : end;
		/* "store/ pre": the store's prefix is "" or ends in '/' */
		tok = strchr(line, ' ');
		if (tok) {
			*tok++ = 0;
			snprintf(prefix, sizeof(prefix), "%s", tok);
		}
		snprintf(store_prefix, sizeof(store_prefix) - 1, "%s", line);
		len = strlen(store_prefix);
		if (len && store_prefix[len - 1] != '/')
			strcat(store_prefix, "/");
	}

	/* a list page */
	tok = NULL;
	r = s3_parse_list(p, end, "bucket", store_prefix, prefix, on_key, &keys, &nkeys, &more,
			  &tok);
	fz_check(r == 0 || r == -EIO || r == 1);
	fz_check(nkeys >= 0 && (unsigned int)nkeys == keys && (more == 0 || more == 1));
	free(tok);

	/* an error body */
	s3_parse_error(&req, p, end);
	fz_check(strlen(req.code) < sizeof(req.code) && strlen(req.why) < sizeof(req.why));

	/* the failed keys of a DeleteObjects answer */
	r = s3_parse_delete(p, end, on_failed, &failed);
	fz_check(r == 0 || r == -EIO || r == 1);

	/* one value, and every element */
	free(xml_get(p, end, "UploadId"));
	r = s3_xml_walk(p, end, on_element, NULL, err, sizeof(err));
	fz_check(r == 0 || r == -EBADMSG || r == -ENOMEM);
	free(buf);
	return 0;
}
