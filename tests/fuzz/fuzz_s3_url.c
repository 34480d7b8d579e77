/*
 * tests/fuzz/fuzz_s3_url.c - object-store URLs (zf_objstore_open's
 * dispatch, net/objstore.c; the s3:// parser with its ?parameters,
 * %-decoding, bucket, prefix and endpoint checks, net/s3.c; fault:'s
 * parameter list, net/fault.c)
 *
 * The input is a URL (up to its first NUL). Opening an s3:// store only
 * parses (no request is made); credentials are given in the options so no
 * file is read. A URL naming a file: store anywhere is skipped: opening
 * one creates a directory inside the path it names.
 */
#include "config.h"

#include "net/objstore.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const env[] = {
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
		"AWS_SHARED_CREDENTIALS_FILE",
	};
	size_t i;

	fz_quiet();
	for (i = 0; i < sizeof(env) / sizeof(env[0]); i++)
		unsetenv(env[i]);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zf_objstore_opts o = { .access_key = "AKIDFUZZ", .secret_key = "fuzzsecret" };
	struct zf_objstore *st = NULL;
	char *url;
	int r;

	if (memmem(data, size, "file:", 5))
		return 0;
	url = strndup((const char *)data, size);
	r = zf_objstore_open(url, &o, &st);
	fz_check(r == 0 || r == -EINVAL || r == -ENOMEM);
	if (r == 0) {
		fz_check(st && zf_objstore_url(st));
		zf_objstore_close(st);
	}
	free(url);
	return 0;
}
