/*
 * net/s3_creds.c - where an S3 store's keys, region and endpoint come from:
 * the AWS shared files (~/.aws/credentials, ~/.aws/config with its
 * profiles) and credential_process
 *
 * The sources, first found wins (the AWS CLI's order, less instance roles):
 *   1. keys given in struct zf_objstore_opts;
 *   2. $AWS_ACCESS_KEY_ID + $AWS_SECRET_ACCESS_KEY (+ $AWS_SESSION_TOKEN),
 *      unless a profile was named (profile= in the URL, or in the options);
 *   3. the profile's section of the credentials file
 *      ($AWS_SHARED_CREDENTIALS_FILE, ~/.aws/credentials): [NAME];
 *   4. the profile's section of the config file ($AWS_CONFIG_FILE,
 *      ~/.aws/config): [profile NAME] ([default] for the default),
 *      static keys first, else its credential_process.
 * The profile is the URL's profile=, the options', $AWS_PROFILE, or
 * "default". The config file's region and endpoint_url come after the URL,
 * the options and the environment (s3.c).
 *
 * A file holding secret keys that group or others can read is refused, and
 * so is a credential_process from a config file that someone else can
 * write (it runs as the mounting user). credential_process runs through
 * /bin/sh -c with stdin from /dev/null; its standard output is the AWS
 * CLI's JSON (Version 1, AccessKeyId, SecretAccessKey, optional
 * SessionToken and Expiration). Keys with an Expiration are fetched again
 * when less than S3_CREDS_REFRESH_S are left, by the request about to be
 * signed (s3_creds_get).
 *
 * Locking: st->creds_lock (rank ZF_RANK_S3_CREDS) guards the keys and their
 * expiration; the process runs under it, so concurrent requests wait for
 * one refresh rather than start several.
 * Not here: the URL and its parameters (s3.c), signing (s3_sign.c).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "net/s3_internal.h"

/* fetch new keys this long before the old ones expire (botocore: 10-15 min) */
#define S3_CREDS_REFRESH_S (10 * 60)
/* and not more often than this when a process keeps handing out short ones */
#define S3_CREDS_RETRY_S 30
/* a credential_process has this long to answer */
#define S3_CREDS_PROC_MS 60000
/* its answer is a few KiB (a session token is at most ~2 KiB) */
#define S3_CREDS_PROC_MAX (64 * 1024)

extern char **environ;

static void free_secret(char **s)
{
	if (*s) {
		explicit_bzero(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

/* the settings of one section of an AWS ini file (all malloc'd or NULL) */
struct s3_ini {
	char *access_key, *secret_key, *session_token;
	char *region, *endpoint_url, *credential_process;
	int found;		/* the section is there */
	struct stat sb;		/* of the file */
};

static void s3_ini_free(struct s3_ini *in)
{
	free(in->access_key);
	free_secret(&in->secret_key);
	free_secret(&in->session_token);
	free(in->region);
	free(in->endpoint_url);
	free(in->credential_process);
	memset(in, 0, sizeof(*in));
}

/*
 * Read section [sect] (or, if alt is not NULL, [alt]) of the ini file path
 * into *ret. Returns 0 (ret->found says whether the section is there),
 * -ENOENT when there is no file, or another -errno.
 */
static int s3_ini_load(const char *path, const char *sect, const char *alt, struct s3_ini *ret)
{
	char line[4096];
	int in = 0, r = 0;
	FILE *f;

	memset(ret, 0, sizeof(*ret));
	f = fopen(path, "re");
	if (!f)
		return -errno;
	if (fstat(fileno(f), &ret->sb) < 0) {
		r = -errno;
		goto out;
	}
	while (fgets(line, sizeof(line), f)) {
		char *l = zf_trim(line), *v, **dst = NULL;

		if (!*l || *l == '#' || *l == ';')
			continue;
		if (*l == '[') {
			char *e = strchr(l, ']');

			if (e)
				*e = 0;
			l = zf_trim(l + 1);
			in = !strcmp(l, sect) || (alt && !strcmp(l, alt));
			ret->found |= in;
			continue;
		}
		if (!in || !(v = strchr(l, '=')))
			continue;
		*v++ = 0;
		l = zf_trim(l);
		v = zf_trim(v);
		if (!strcmp(l, "aws_access_key_id"))
			dst = &ret->access_key;
		else if (!strcmp(l, "aws_secret_access_key"))
			dst = &ret->secret_key;
		else if (!strcmp(l, "aws_session_token"))
			dst = &ret->session_token;
		else if (!strcmp(l, "region"))
			dst = &ret->region;
		else if (!strcmp(l, "endpoint_url"))
			dst = &ret->endpoint_url;
		else if (!strcmp(l, "credential_process"))
			dst = &ret->credential_process;
		if (dst) {
			free_secret(dst);
			*dst = zf_strdup(v);
		}
	}
	explicit_bzero(line, sizeof(line));
out:
	fclose(f);
	return r;
}

/* the path of an AWS file: opts, then $env, then ~/.aws/name; into buf */
static const char *aws_path(const char *given, const char *env, const char *name, char *buf,
			    size_t len)
{
	const char *home = getenv("HOME");

	if (given && *given)
		return given;
	if (getenv(env) && *getenv(env))
		return getenv(env);
	snprintf(buf, len, "%s/.aws/%s", home ? home : "", name);
	return buf;
}

/* ---- config file ---- */

int s3_config_load(const struct zf_objstore_opts *o, const char *profile, struct s3_config *ret)
{
	char buf[4096], sect[300];
	const char *path = aws_path(o->config_file, "AWS_CONFIG_FILE", "config", buf, sizeof(buf));
	struct s3_ini in;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (strcmp(profile, "default"))
		snprintf(sect, sizeof(sect), "profile %s", profile);
	else
		snprintf(sect, sizeof(sect), "default");
	ret->path = zf_strdup(path);
	r = s3_ini_load(path, sect, strcmp(profile, "default") ? NULL : "profile default", &in);
	if (r == -ENOENT)
		return 0;
	if (r < 0) {
		zf_objstore_open_fail(o, "cannot read AWS config file '%s': %s", path, strerror(-r));
		return r;
	}
	ret->found = in.found;
	ret->region = in.region;
	ret->endpoint_url = in.endpoint_url;
	ret->credential_process = in.credential_process;
	ret->access_key = in.access_key;
	ret->secret_key = in.secret_key;
	ret->session_token = in.session_token;
	/* what decides whether its keys and command may be used */
	ret->mode = in.sb.st_mode;
	ret->uid = in.sb.st_uid;
	return 0;
}

void s3_config_free(struct s3_config *c)
{
	free(c->path);
	free(c->region);
	free(c->endpoint_url);
	free(c->credential_process);
	free(c->access_key);
	free_secret(&c->secret_key);
	free_secret(&c->session_token);
	memset(c, 0, sizeof(*c));
}

/* ---- credential_process ---- */

/* "2026-12-07T22:10:00Z" (or with +00:00, or fractions) as a unix time, 0 if not one */
static time_t parse_expiration(const char *s)
{
	struct tm tm = { 0 };
	const char *e = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);

	if (!e)
		return 0;
	if (*e == '.')
		while (isdigit((unsigned char)*++e))
			;
	if (*e && strcmp(e, "Z") && strcmp(e, "+00:00"))
		return 0;	/* the AWS CLI's processes all answer in UTC */
	return timegm(&tm);
}

/*
 * Run cmd (sh -c) and read its standard output, at most S3_CREDS_PROC_MAX
 * bytes within S3_CREDS_PROC_MS, into out. Returns 0 when it exited 0, else
 * -EACCES with the reason in why.
 */
static int run_process(const char *cmd, struct zf_buf *out, char *why, size_t why_len)
{
	char *argv[] = { "sh", "-c", (char *)cmd, NULL };
	posix_spawn_file_actions_t fa;
	int pfd[2], status, r = 0;
	uint64_t deadline;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0) {
		snprintf(why, why_len, "pipe: %s", strerror(errno));
		return -EACCES;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	r = posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	if (r) {
		snprintf(why, why_len, "cannot run /bin/sh: %s", strerror(r));
		close(pfd[0]);
		return -EACCES;
	}
	deadline = zf_mono_ns() + (uint64_t)S3_CREDS_PROC_MS * 1000000;
	for (;;) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		uint64_t now = zf_mono_ns();
		ssize_t n;

		if (now >= deadline) {
			snprintf(why, why_len, "no answer within %d s", S3_CREDS_PROC_MS / 1000);
			kill(pid, SIGKILL);
			r = -EACCES;
			break;
		}
		if (poll(&p, 1, (int)((deadline - now) / 1000000) + 1) < 0 && errno != EINTR) {
			snprintf(why, why_len, "poll: %s", strerror(errno));
			kill(pid, SIGKILL);
			r = -EACCES;
			break;
		}
		if (!p.revents)
			continue;
		zf_buf_reserve(out, 4096);
		n = read(pfd[0], out->p + out->len, 4096);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		out->len += n;
		if (out->len > S3_CREDS_PROC_MAX) {
			snprintf(why, why_len, "answer longer than %d KiB", S3_CREDS_PROC_MAX / 1024);
			kill(pid, SIGKILL);
			r = -EACCES;
			break;
		}
	}
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (r == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		if (WIFEXITED(status))
			snprintf(why, why_len, "exit status %d", WEXITSTATUS(status));
		else
			snprintf(why, why_len, "killed by signal %d", WTERMSIG(status));
		r = -EACCES;
	}
	zf_s3_buf_cstr(out);
	return r;
}

/* a string member of obj, or NULL */
static const char *json_str(struct json_object *obj, const char *name)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, name, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/*
 * Parse a credential_process answer into *ret (keys malloc'd, expire 0 when
 * it has none). Returns 0, or -EACCES with the reason in why.
 */
int s3_creds_parse_process(const char *text, struct s3_keys *ret, char *why, size_t why_len)
{
	enum json_tokener_error jerr;
	struct json_object *obj, *ver;
	const char *ak, *sk, *tok, *exp;
	int r = -EACCES;

	obj = json_tokener_parse_verbose(text, &jerr);
	if (!obj) {
		snprintf(why, why_len, "answer is not JSON: %s", json_tokener_error_desc(jerr));
		return -EACCES;
	}
	if (!json_object_is_type(obj, json_type_object)) {
		snprintf(why, why_len, "answer is not a JSON object");
		goto out;
	}
	if (!json_object_object_get_ex(obj, "Version", &ver) ||
	    !json_object_is_type(ver, json_type_int) || json_object_get_int64(ver) != 1) {
		snprintf(why, why_len, "answer has no \"Version\": 1");
		goto out;
	}
	ak = json_str(obj, "AccessKeyId");
	sk = json_str(obj, "SecretAccessKey");
	tok = json_str(obj, "SessionToken");
	exp = json_str(obj, "Expiration");
	if (!ak || !*ak || !sk || !*sk) {
		snprintf(why, why_len, "answer has no AccessKeyId and SecretAccessKey");
		goto out;
	}
	memset(ret, 0, sizeof(*ret));
	if (exp && !(ret->expire = parse_expiration(exp))) {
		snprintf(why, why_len, "bad Expiration '%.40s' (want 2026-12-31T23:59:59Z)", exp);
		goto out;
	}
	ret->access_key = zf_strdup(ak);
	ret->secret_key = zf_strdup(sk);
	ret->session_token = tok && *tok ? zf_strdup(tok) : NULL;
	r = 0;
out:
	json_object_put(obj);
	return r;
}

/* run st->credential_process into *ret; -EACCES logged with the reason */
static int s3_creds_process(const struct s3_store *st, const struct zf_objstore_opts *o,
			    struct s3_keys *ret)
{
	struct zf_buf out = { 0 };
	char why[200] = "";
	int r;

	r = run_process(st->credential_process, &out, why, sizeof(why));
	if (r == 0)
		r = s3_creds_parse_process((char *)out.p, ret, why, sizeof(why));
	if (out.p)
		explicit_bzero(out.p, out.len);
	zf_buf_free(&out);
	if (r < 0) {
		if (o)
			zf_objstore_open_fail(o, "credential_process of profile '%s' for 's3://%s' "
					      "failed: %s", st->profile, st->bucket, why);
		else
			zf_err("credential_process of profile '%s' for 's3://%s' failed: %s",
			       st->profile, st->bucket, why);
	}
	return r;
}

void s3_keys_free(struct s3_keys *k)
{
	free(k->access_key);
	free_secret(&k->secret_key);
	free_secret(&k->session_token);
}

/* ---- the store's keys ---- */

static void set_keys(struct s3_store *st, const char *ak, const char *sk, const char *tok)
{
	st->keys.access_key = zf_strdup(ak);
	st->keys.secret_key = zf_strdup(sk);
	st->keys.session_token = tok && *tok ? zf_strdup(tok) : NULL;
}

/* the credentials file's [profile]: 1 if it gave keys, 0 if it has none, or -errno */
static int s3_creds_file(struct s3_store *st, const struct zf_objstore_opts *o, const char *path)
{
	struct s3_ini in;
	int r;

	r = s3_ini_load(path, st->profile, NULL, &in);
	if (r == -ENOENT)
		return 0;
	if (r < 0) {
		zf_objstore_open_fail(o, "cannot read credentials file '%s': %s", path,
				      strerror(-r));
		return r;
	}
	if (in.sb.st_mode & 077) {
		zf_objstore_open_fail(o, "credentials file '%s' is open to group or others (mode "
				      "%04o): refusing it; run 'chmod 600 %s'", path,
				      (unsigned int)(in.sb.st_mode & 07777), path);
		r = -EACCES;
	} else if (in.found && in.access_key && in.secret_key) {
		set_keys(st, in.access_key, in.secret_key, in.session_token);
		r = 1;
	}
	s3_ini_free(&in);
	return r;
}

/* the config file's profile: 1 if it gave keys, 0 if it has none, or -errno */
static int s3_creds_config(struct s3_store *st, const struct zf_objstore_opts *o,
			   const struct s3_config *cfg)
{
	struct s3_keys k;

	if (!cfg->found)
		return 0;
	if (cfg->access_key && cfg->secret_key) {
		if (cfg->mode & 077) {
			zf_objstore_open_fail(o, "AWS config file '%s' holds keys and is open to "
					      "group or others (mode %04o): refusing it; run "
					      "'chmod 600 %s'", cfg->path,
					      (unsigned int)(cfg->mode & 07777), cfg->path);
			return -EACCES;
		}
		set_keys(st, cfg->access_key, cfg->secret_key, cfg->session_token);
		return 1;
	}
	if (!cfg->credential_process || !*cfg->credential_process)
		return 0;
	if ((cfg->mode & 022) || (cfg->uid != geteuid() && cfg->uid != 0)) {
		zf_objstore_open_fail(o, "AWS config file '%s' can be changed by another user "
				      "(owner uid %u, mode %04o): refusing to run its "
				      "credential_process", cfg->path, (unsigned int)cfg->uid,
				      (unsigned int)(cfg->mode & 07777));
		return -EACCES;
	}
	st->credential_process = zf_strdup(cfg->credential_process);
	if (s3_creds_process(st, o, &k) < 0)
		return -EACCES;
	st->keys = k;
	return 1;
}

int s3_creds_init(struct s3_store *st, const struct zf_objstore_opts *o, const char *profile,
		  const struct s3_config *cfg)
{
	const char *ak = getenv("AWS_ACCESS_KEY_ID"), *sk = getenv("AWS_SECRET_ACCESS_KEY");
	const char *path;
	char buf[4096];
	int r;

	if (o->access_key && o->secret_key) {
		set_keys(st, o->access_key, o->secret_key, o->session_token);
		return 0;
	}
	/* an explicit profile names the file; otherwise the environment wins */
	if (!profile && ak && *ak && sk && *sk) {
		set_keys(st, ak, sk, getenv("AWS_SESSION_TOKEN"));
		return 0;
	}
	path = aws_path(o->credentials_file, "AWS_SHARED_CREDENTIALS_FILE", "credentials", buf,
			sizeof(buf));
	r = s3_creds_file(st, o, path);
	if (r == 0)
		r = s3_creds_config(st, o, cfg);
	if (r == 0) {
		zf_objstore_open_fail(o, "no credentials for 's3://%s': set AWS_ACCESS_KEY_ID and "
				      "AWS_SECRET_ACCESS_KEY, or give profile '%s' "
				      "aws_access_key_id and aws_secret_access_key in '%s' "
				      "(mode 0600), or a credential_process in '%s'",
				      st->bucket, st->profile, path, cfg->path);
		r = -EACCES;
	}
	return r < 0 ? r : 0;
}

int s3_creds_get(struct s3_store *st, struct s3_keys *ret)
{
	time_t now = time(NULL);
	struct s3_keys k;
	int r = 0;

	zf_mutex_lock(&st->creds_lock);
	if (st->keys.expire && now + S3_CREDS_REFRESH_S >= st->keys.expire &&
	    now >= st->creds_tried + S3_CREDS_RETRY_S) {
		st->creds_tried = now;
		if (s3_creds_process(st, NULL, &k) == 0) {
			s3_keys_free(&st->keys);
			st->keys = k;
		} else if (now < st->keys.expire) {
			zf_warn("'%s': keeping the credentials that expire in %ld s",
				st->base.url, (long)(st->keys.expire - now));
		}
	}
	if (st->keys.expire && now >= st->keys.expire) {
		r = -EACCES;
	} else {
		ret->access_key = zf_strdup(st->keys.access_key);
		ret->secret_key = zf_strdup(st->keys.secret_key);
		ret->session_token =
			st->keys.session_token ? zf_strdup(st->keys.session_token) : NULL;
		ret->expire = st->keys.expire;
	}
	zf_mutex_unlock(&st->creds_lock);
	return r;
}
