/*
 * tests/fuzz/fuzz_s3_creds.c - the AWS credentials file (s3_creds_file,
 * net/s3.c), reached through zf_objstore_open of an s3:// URL with the
 * options naming the file and the profile
 *
 * Input: the profile name on the first line ("" means "default"; a first
 * character '!' makes the file mode 0644, which must be refused), then the
 * file's contents, written once per input, mode 0600, into the scratch
 * directory.
 */
#include "config.h"

#include "net/objstore.h"
#include "tests/fuzz/fuzz.h"

static char path[700];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const env[] = {
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_SHARED_CREDENTIALS_FILE",
	};
	size_t i;

	fz_quiet();
	for (i = 0; i < sizeof(env) / sizeof(env[0]); i++)
		unsetenv(env[i]);
	snprintf(path, sizeof(path), "%s/credentials", fz_scratch());
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zf_objstore_opts o = { .credentials_file = path,
				      .endpoint = "http://127.0.0.1:9" };
	const uint8_t *nl = memchr(data, '\n', size);
	size_t plen = nl ? (size_t)(nl - data) : size;
	struct zf_objstore *st = NULL;
	char profile[256];
	mode_t mode = 0600;
	int r;

	if (plen && data[0] == '!') {
		mode = 0644;
		data++;
		size--;
		plen--;
	}
	if (plen >= sizeof(profile))
		plen = sizeof(profile) - 1;
	memcpy(profile, data, plen);
	profile[plen] = 0;
	o.profile = profile[0] && !memchr(profile, 0, plen) ? profile : NULL;
	if (nl) {
		size -= (size_t)(nl - data) + 1;
		data = nl + 1;
	} else {
		size = 0;
	}
	fz_write_file(fz_dirfd, "credentials", data, size, mode);
	r = zf_objstore_open("s3://fuzz-bucket/pre", &o, &st);
	fz_check(r == 0 || r == -EACCES || r == -EINVAL);
	fz_check(!(r == 0 && mode != 0600));
	if (r == 0)
		zf_objstore_close(st);
	return 0;
}
