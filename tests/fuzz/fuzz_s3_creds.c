/*
 * tests/fuzz/fuzz_s3_creds.c - the AWS credentials and config files and
 * a credential_process's answer (net/s3_creds.c), reached through
 * zf_objstore_open of an s3:// URL with the options naming the files and
 * the profile, and s3_creds_parse_process
 *
 * Input: the profile name on the first line ("" means "default"; a first
 * character '!' makes the credentials file mode 0644, which must be
 * refused), then the file's contents, written once per input, mode 0600,
 * into the scratch directory. The same contents are the config file, mode
 * 0622: writable by others, so a credential_process in it is refused and
 * never runs (as are keys in it), while its region and profiles are read.
 * They are also parsed as a credential_process's JSON answer.
 */
#include "config.h"

#include "net/objstore.h"
#include "net/s3_internal.h"
#include "tests/fuzz/fuzz.h"

static char path[700], cfg_path[700];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const env[] = {
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_REGION",
		"AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
	};
	size_t i;

	fz_quiet();
	for (i = 0; i < sizeof(env) / sizeof(env[0]); i++)
		unsetenv(env[i]);
	snprintf(path, sizeof(path), "%s/credentials", fz_scratch());
	snprintf(cfg_path, sizeof(cfg_path), "%s/config", fz_scratch());
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zf_objstore_opts o = { .credentials_file = path, .config_file = cfg_path,
				      .endpoint = "http://127.0.0.1:9" };
	struct s3_keys keys;
	char why[200], *text;
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
	fz_write_file(fz_dirfd, "config", data, size, 0622);
	text = strndup((const char *)data, size);
	if (s3_creds_parse_process(text, &keys, why, sizeof(why)) == 0) {
		fz_check(keys.access_key[0] && keys.secret_key[0]);
		s3_keys_free(&keys);
	}
	free(text);
	r = zf_objstore_open("s3://fuzz-bucket/pre", &o, &st);
	fz_check(r == 0 || r == -EACCES || r == -EINVAL);
	fz_check(!(r == 0 && mode != 0600));
	if (r == 0)
		zf_objstore_close(st);
	return 0;
}
