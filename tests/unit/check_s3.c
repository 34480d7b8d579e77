/*
 * tests/unit/check_s3.c - unit tests for the S3 client's parsers and
 * credential sources: the XML answers through libexpat (net/s3_parse.c),
 * %-decoding, the AWS config file's profiles and credential_process
 * (net/s3_creds.c). No server, no network: opening an s3:// store only
 * parses and takes credentials. tests/e2e/29-aws-config.sh runs the same
 * sources against a real S3 server.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "net/objstore.h"
#include "net/s3_internal.h"
#include "net/s3_parse.h"

static char g_dir[PATH_MAX / 2];

/* ---- helpers ---- */

struct keys {
	char got[16][64];
	uint64_t size[16];
	int n;
};

static int on_key(void *ctx, const char *key, uint64_t size)
{
	struct keys *k = ctx;

	ck_assert_int_lt(k->n, 16);
	snprintf(k->got[k->n], sizeof(k->got[0]), "%s", key);
	k->size[k->n++] = size;
	return 0;
}

static int list(const char *xml, const char *store_prefix, struct keys *k, int *more,
		char **token)
{
	int nkeys = -1, r;

	memset(k, 0, sizeof(*k));
	r = s3_parse_list(xml, xml + strlen(xml), "b", store_prefix, "", on_key, k, &nkeys, more,
			  token);
	ck_assert_int_eq(nkeys, r == 0 ? k->n : nkeys);
	return r;
}

static void write_text(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_ge(fputs(text, f), 0);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(chmod(path, mode), 0);
}

static void clear_aws_env(void)
{
	static const char *const env[] = {
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL",
		"AWS_ENDPOINT_URL_S3",
	};
	size_t i;

	for (i = 0; i < sizeof(env) / sizeof(env[0]); i++)
		unsetenv(env[i]);
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials", 1);
	setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config", 1);
}

/* open url; the reason of a failure into why */
static int open_s3(const char *url, struct zf_objstore **ret, char *why, size_t len)
{
	struct zf_objstore_opts o = { .why = why, .why_len = len };

	why[0] = 0;
	return zf_objstore_open(url, &o, ret);
}

static struct s3_store *s3(struct zf_objstore *st)
{
	return (struct s3_store *)st;
}

/* ---- XML ---- */

START_TEST(test_list_page)
{
	/* S3's namespace, entities, an escaped key, EncodingType after the entries */
	const char *xml =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		"<Name>b</Name><IsTruncated>true</IsTruncated>"
		"<Contents><Key>fs/seg/a%20b</Key><Size>12</Size></Contents>"
		"<Contents><Size>7</Size><Key>fs/x&amp;y%2Bz</Key></Contents>"
		"<Contents><Key>other/k</Key><Size>1</Size></Contents>"
		"<Contents><Key>fs/../up</Key><Size>1</Size></Contents>"
		"<NextContinuationToken>t&lt;1&gt;</NextContinuationToken>"
		"<EncodingType>url</EncodingType></ListBucketResult>";
	struct keys k;
	char *token = NULL;
	int more = -1;

	ck_assert_int_eq(list(xml, "fs/", &k, &more, &token), 0);
	ck_assert_int_eq(k.n, 2);
	ck_assert_str_eq(k.got[0], "seg/a b");
	ck_assert_int_eq(k.size[0], 12);
	ck_assert_str_eq(k.got[1], "x&y+z");
	ck_assert_int_eq(k.size[1], 7);
	ck_assert_int_eq(more, 1);
	ck_assert_str_eq(token, "t<1>");
	free(token);

	/* without EncodingType the key is taken as it is; a numeric reference */
	xml = "<ListBucketResult><Contents><Key>a%20&#x263A;</Key><Size>3</Size></Contents>"
	      "<IsTruncated>false</IsTruncated></ListBucketResult>";
	ck_assert_int_eq(list(xml, "", &k, &more, &token), 0);
	ck_assert_int_eq(k.n, 1);
	ck_assert_str_eq(k.got[0], "a%20\xe2\x98\xba");
	ck_assert_int_eq(more, 0);
	ck_assert_ptr_null(token);

	/* namespace prefixes are cut ("s3:Key" is "Key"); a bare "x:" stays as it is */
	xml = "<s3:ListBucketResult xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
	      "<s3:Contents><s3:Key>k</s3:Key><s3:Size>5</s3:Size><x:>1</x:></s3:Contents>"
	      "</s3:ListBucketResult>";
	ck_assert_int_eq(list(xml, "", &k, &more, &token), 0);
	ck_assert_int_eq(k.n, 1);
	ck_assert_str_eq(k.got[0], "k");
	ck_assert_int_eq(k.size[0], 5);
}
END_TEST

START_TEST(test_list_bad)
{
	static const char *const bad[] = {
		/* not well-formed: no entry is handed out, even the good first one */
		"<ListBucketResult><Contents><Key>a</Key><Size>1</Size></Contents>"
		"<Contents><Key>b</Key><Size>2</Size></Contents",
		"<ListBucketResult><Contents><Key>a</Key><Size>1</Size></Contents>"
		"<Contents><Key>b</Size></Contents></ListBucketResult>",
		"<html><body>502 Bad Gateway</body></html",
		"",
		/* an entry without its size */
		"<ListBucketResult><Contents><Key>a</Key></Contents></ListBucketResult>",
		/* a DTD whose entities would expand a billion times */
		"<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\">"
		"<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]>"
		"<ListBucketResult><Contents><Key>&b;</Key><Size>1</Size></Contents>"
		"</ListBucketResult>",
	};
	struct keys k;
	char *token = NULL;
	size_t i;
	int more = -1;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(list(bad[i], "", &k, &more, &token) == -EIO, "case %zu", i);
		ck_assert_int_eq(k.n, 0);
		ck_assert_int_eq(more, 0);
		free(token);
		token = NULL;
	}
}
END_TEST

START_TEST(test_error_body)
{
	struct s3_req r = { 0 };
	const char *xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey"
			  "</Code><Message>The key &quot;k&quot; does not exist</Message>"
			  "<Key>k</Key></Error>";

	ck_assert_int_eq(s3_parse_error(&r, xml, xml + strlen(xml)), 1);
	ck_assert_str_eq(r.code, "NoSuchKey");
	ck_assert_str_eq(r.why, "The key \"k\" does not exist");

	/* a success answer of CompleteMultipartUpload is not an error */
	xml = "<CompleteMultipartUploadResult><Location>x</Location><Code>c</Code>"
	      "</CompleteMultipartUploadResult>";
	snprintf(r.why, sizeof(r.why), "kept");
	ck_assert_int_eq(s3_parse_error(&r, xml, xml + strlen(xml)), 0);
	ck_assert_str_eq(r.code, "");
	ck_assert_str_eq(r.why, "kept");

	/* a proxy's HTML page, an empty body */
	xml = "<html><body><h1>503</h1></body>";
	ck_assert_int_eq(s3_parse_error(&r, xml, xml + strlen(xml)), 0);
	ck_assert_int_eq(s3_parse_error(&r, xml, xml), 0);
	ck_assert_str_eq(r.code, "");

	/* Ceph RGW on a wrong secret: a code and an empty message */
	xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SignatureDoesNotMatch"
	      "</Code><Message></Message><RequestId>tx0</RequestId></Error>";
	r.why[0] = 0;
	ck_assert_int_eq(s3_parse_error(&r, xml, xml + strlen(xml)), 1);
	ck_assert_str_eq(r.code, "SignatureDoesNotMatch");
	ck_assert_ptr_nonnull(strstr(r.why, "wrong secret key for this access key"));
	/* an unknown code without a message */
	xml = "<Error><Code>WeirdCode</Code></Error>";
	r.why[0] = 0;
	ck_assert_int_eq(s3_parse_error(&r, xml, xml + strlen(xml)), 1);
	ck_assert_str_eq(r.code, "WeirdCode");
	ck_assert_str_eq(r.why, "(no message from the server)");
}
END_TEST

struct failed {
	char keys[256];
	int n;
};

static int on_failed(void *ctx, const char *key, const char *code, const char *msg)
{
	struct failed *f = ctx;
	size_t l = strlen(f->keys);

	snprintf(f->keys + l, sizeof(f->keys) - l, "%s:%s:%s;", key ? key : "-",
		 code ? code : "-", msg ? msg : "-");
	f->n++;
	return 0;
}

START_TEST(test_delete_answer)
{
	const char *xml = "<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
			  "<Deleted><Key>ok</Key></Deleted>"
			  "<Error><Key>p/a</Key><Code>AccessDenied</Code><Message>no</Message>"
			  "</Error><Error><Code>NoSuchKey</Code><Key>p/b&amp;c</Key></Error>"
			  "</DeleteResult>";
	struct failed f = { "", 0 };
	char *id;

	ck_assert_int_eq(s3_parse_delete(xml, xml + strlen(xml), on_failed, &f), 0);
	ck_assert_int_eq(f.n, 2);
	ck_assert_str_eq(f.keys, "p/a:AccessDenied:no;p/b&c:NoSuchKey:-;");

	xml = "<DeleteResult><Error><Key>a</Key>";
	ck_assert_int_eq(s3_parse_delete(xml, xml + strlen(xml), on_failed, &f), -EIO);

	xml = "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>"
	      "<UploadId>VXBsb2FkIElE&amp;1</UploadId></InitiateMultipartUploadResult>";
	id = xml_get(xml, xml + strlen(xml), "UploadId");
	ck_assert_str_eq(id, "VXBsb2FkIElE&1");
	free(id);
	ck_assert_ptr_null(xml_get(xml, xml + strlen(xml), "Nope"));
}
END_TEST

START_TEST(test_url_decode)
{
	char s[] = "a%20b+c%2Bd%zz%4";
	char n[] = "x%00y";

	url_decode(s);
	ck_assert_str_eq(s, "a b+c+d%zz%4");
	url_decode(n);
	ck_assert_str_eq(n, "x");
}
END_TEST

/* ---- credential_process ---- */

START_TEST(test_process_json)
{
	struct s3_keys k;
	char why[200];

	ck_assert_int_eq(s3_creds_parse_process(
				 "{\"Version\": 1, \"AccessKeyId\": \"AK\", \"SecretAccessKey\": "
				 "\"SK\", \"SessionToken\": \"TOK\", \"Expiration\": "
				 "\"2030-01-02T03:04:05Z\"}",
				 &k, why, sizeof(why)),
			 0);
	ck_assert_str_eq(k.access_key, "AK");
	ck_assert_str_eq(k.secret_key, "SK");
	ck_assert_str_eq(k.session_token, "TOK");
	ck_assert_int_eq(k.expire, 1893553445);
	s3_keys_free(&k);

	ck_assert_int_eq(s3_creds_parse_process("{\"Version\":1,\"AccessKeyId\":\"A\","
						"\"SecretAccessKey\":\"S\"}",
						&k, why, sizeof(why)),
			 0);
	ck_assert_ptr_null(k.session_token);
	ck_assert_int_eq(k.expire, 0);
	s3_keys_free(&k);

	ck_assert_int_eq(s3_creds_parse_process("AK SK", &k, why, sizeof(why)), -EACCES);
	ck_assert_msg(strstr(why, "not JSON"), "%s", why);
	ck_assert_int_eq(s3_creds_parse_process("{\"Version\":2,\"AccessKeyId\":\"A\","
						"\"SecretAccessKey\":\"S\"}",
						&k, why, sizeof(why)),
			 -EACCES);
	ck_assert_msg(strstr(why, "Version"), "%s", why);
	ck_assert_int_eq(s3_creds_parse_process("{\"Version\":1,\"AccessKeyId\":\"A\"}", &k, why,
						sizeof(why)),
			 -EACCES);
	ck_assert_msg(strstr(why, "SecretAccessKey"), "%s", why);
	ck_assert_int_eq(s3_creds_parse_process("{\"Version\":1,\"AccessKeyId\":\"A\","
						"\"SecretAccessKey\":\"S\",\"Expiration\":"
						"\"tomorrow\"}",
						&k, why, sizeof(why)),
			 -EACCES);
	ck_assert_msg(strstr(why, "Expiration"), "%s", why);
}
END_TEST

/* ---- the config file's profiles ---- */

START_TEST(test_config_profile)
{
	char cfg[PATH_MAX], text[PATH_MAX * 2], why[512];
	struct zf_objstore *st = NULL;

	clear_aws_env();
	snprintf(cfg, sizeof(cfg), "%s/config", g_dir);
	setenv("AWS_CONFIG_FILE", cfg, 1);
	snprintf(text, sizeof(text),
		 "[default]\nregion = eu-west-3\n"
		 "[profile zf]\nregion = ap-south-2\nendpoint_url = http://127.0.0.1:9\n"
		 "credential_process = printf '{\"Version\": 1, \"AccessKeyId\": \"AKPROC\", "
		 "\"SecretAccessKey\": \"%%s\", \"SessionToken\": \"TK\"}' \"$ZF_TEST_SECRET\"\n"
		 "[profile keys]\naws_access_key_id = AKCFG\naws_secret_access_key = skcfg\n"
		 "[profile fails]\ncredential_process = echo oops >&2; exit 3\n");
	write_text(cfg, text, 0644);
	setenv("ZF_TEST_SECRET", "s3cret", 1);

	/* profile= in the URL: region, endpoint and keys from the config */
	ck_assert_int_eq(open_s3("s3://bucket/p?profile=zf", &st, why, sizeof(why)), 0);
	ck_assert_str_eq(s3(st)->region, "ap-south-2");
	ck_assert_str_eq(s3(st)->base_url, "http://127.0.0.1:9");
	ck_assert_str_eq(s3(st)->keys.access_key, "AKPROC");
	ck_assert_str_eq(s3(st)->keys.secret_key, "s3cret");
	ck_assert_str_eq(s3(st)->keys.session_token, "TK");
	zf_objstore_close(st);

	/* the environment's region wins over the config's; AWS_PROFILE names it */
	setenv("AWS_REGION", "us-west-1", 1);
	setenv("AWS_PROFILE", "zf", 1);
	ck_assert_int_eq(open_s3("s3://bucket/p", &st, why, sizeof(why)), 0);
	ck_assert_str_eq(s3(st)->region, "us-west-1");
	zf_objstore_close(st);
	unsetenv("AWS_REGION");

	/* keys in a config file that others can read: refused, saying what to do */
	ck_assert_int_eq(open_s3("s3://bucket?profile=keys", &st, why, sizeof(why)), -EACCES);
	ck_assert_msg(strstr(why, cfg) && strstr(why, "chmod 600"), "%s", why);
	ck_assert_int_eq(chmod(cfg, 0600), 0);
	ck_assert_int_eq(open_s3("s3://bucket?profile=keys&endpoint=http://127.0.0.1:9", &st, why,
				 sizeof(why)),
			 0);
	ck_assert_str_eq(s3(st)->keys.access_key, "AKCFG");
	ck_assert_ptr_null(s3(st)->credential_process);
	zf_objstore_close(st);

	/* a failing process: its exit status said */
	ck_assert_int_eq(open_s3("s3://bucket?profile=fails&endpoint=http://127.0.0.1:9", &st, why,
				 sizeof(why)),
			 -EACCES);
	ck_assert_msg(strstr(why, "credential_process of profile 'fails'") &&
			      strstr(why, "exit status 3"),
		      "%s", why);

	/* a command in a file others may change never runs */
	ck_assert_int_eq(chmod(cfg, 0666), 0);
	ck_assert_int_eq(open_s3("s3://bucket?profile=zf", &st, why, sizeof(why)), -EACCES);
	ck_assert_msg(strstr(why, "refusing to run its credential_process"), "%s", why);

	/* the default profile's region; no keys anywhere: all sources named */
	unsetenv("AWS_PROFILE");
	ck_assert_int_eq(chmod(cfg, 0644), 0);
	ck_assert_int_eq(open_s3("s3://bucket", &st, why, sizeof(why)), -EACCES);
	ck_assert_msg(strstr(why, "AWS_ACCESS_KEY_ID") && strstr(why, cfg) &&
			      strstr(why, "credential_process"),
		      "%s", why);
	setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "skenv", 1);
	ck_assert_int_eq(open_s3("s3://bucket", &st, why, sizeof(why)), 0);
	ck_assert_str_eq(s3(st)->region, "eu-west-3");
	ck_assert_str_eq(s3(st)->base_url, "https://bucket.s3.eu-west-3.amazonaws.com");
	zf_objstore_close(st);
	clear_aws_env();
	unlink(cfg);
}
END_TEST

/* keys that expire are fetched again by the request about to be signed */
START_TEST(test_process_refresh)
{
	char cfg[PATH_MAX], cnt[PATH_MAX], text[PATH_MAX * 3], why[512], exp[32];
	struct zf_objstore *st = NULL;
	struct s3_keys k;
	time_t soon = time(NULL) + 120;

	clear_aws_env();
	snprintf(cfg, sizeof(cfg), "%s/config-refresh", g_dir);
	snprintf(cnt, sizeof(cnt), "%s/runs", g_dir);
	strftime(exp, sizeof(exp), "%Y-%m-%dT%H:%M:%SZ", gmtime(&soon));
	setenv("AWS_CONFIG_FILE", cfg, 1);
	/* each run appends a line to cnt and hands out AK<number of runs> */
	snprintf(text, sizeof(text),
		 "[default]\ncredential_process = echo run >>%s; printf '{\"Version\": 1, "
		 "\"AccessKeyId\": \"AK%%s\", \"SecretAccessKey\": \"S\", \"Expiration\": "
		 "\"%s\"}' $(wc -l <%s)\n",
		 cnt, exp, cnt);
	write_text(cfg, text, 0600);
	ck_assert_int_eq(open_s3("s3://bucket?endpoint=http://127.0.0.1:9", &st, why, sizeof(why)),
			 0);
	ck_assert_str_eq(s3(st)->keys.access_key, "AK1");
	ck_assert_int_eq(s3(st)->keys.expire, soon);
	/* 2 minutes left: less than the 10 the client keeps, so a new run */
	ck_assert_int_eq(s3_creds_get(s3(st), &k), 0);
	ck_assert_str_eq(k.access_key, "AK2");
	s3_keys_free(&k);
	/* and not again at once, however short the new keys are */
	ck_assert_int_eq(s3_creds_get(s3(st), &k), 0);
	ck_assert_str_eq(k.access_key, "AK2");
	s3_keys_free(&k);
	zf_objstore_close(st);
	unlink(cfg);
	unlink(cnt);
	clear_aws_env();
}
END_TEST

/* the URL through libcurl's parser: what it accepts and refuses */
START_TEST(test_url_parse)
{
	static const char *const bad[] = {
		"s3:///prefix", "s3://user@bucket/p", "s3://bucket:99/p", "s3://bucket/p#frag",
		"s3://bucket/p?endpoint=ftp://h", "s3://bucket/p?endpoint=http://h/sub",
		"s3://bucket/p?endpoint=http://u@h", "s3://bucket/p?endpoint=h:9000",
		"s3://bucket/../p", "s3://b/p",
	};
	struct zf_objstore *st = NULL;
	char why[512];
	size_t i;

	clear_aws_env();
	setenv("AWS_ACCESS_KEY_ID", "AK", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "SK", 1);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(open_s3(bad[i], &st, why, sizeof(why)) == -EINVAL, "%s", bad[i]);
	/* %-encoded parameter values; an IPv6 endpoint with its port */
	ck_assert_int_eq(open_s3("s3://Bucket_1/a/b/?endpoint=http%3A%2F%2F%5B%3A%3A1%5D%3A9000"
				 "&region=r%2D1&addressing=vhost",
				 &st, why, sizeof(why)),
			 0);
	ck_assert_str_eq(s3(st)->bucket, "Bucket_1");
	ck_assert_str_eq(s3(st)->prefix, "a/b/");
	ck_assert_str_eq(s3(st)->region, "r-1");
	ck_assert_str_eq(s3(st)->host, "bucket_1.[::1]:9000");
	ck_assert_str_eq(zf_objstore_url(st), "s3://Bucket_1/a/b/");
	zf_objstore_close(st);
	clear_aws_env();
}
END_TEST

static Suite *s3_suite(void)
{
	Suite *s = suite_create("s3");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_list_page);
	tcase_add_test(tc, test_list_bad);
	tcase_add_test(tc, test_error_body);
	tcase_add_test(tc, test_delete_answer);
	tcase_add_test(tc, test_url_decode);
	tcase_add_test(tc, test_process_json);
	tcase_add_test(tc, test_config_profile);
	tcase_add_test(tc, test_process_refresh);
	tcase_add_test(tc, test_url_parse);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	char cmd[PATH_MAX];
	SRunner *sr;
	int failed;

	if (!tmp || !*tmp)
		tmp = "/tmp";
	zf_log_init("check_s3", 0, ZF_LOG_ERR);
	snprintf(g_dir, sizeof(g_dir), "%s/zf-check-s3-XXXXXX", tmp);
	if (!mkdtemp(g_dir)) {
		fprintf(stderr, "check_s3: cannot create '%s': %s\n", g_dir, strerror(errno));
		return EXIT_FAILURE;
	}
	sr = srunner_create(s3_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "check_s3: cannot remove '%s'\n", g_dir);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
