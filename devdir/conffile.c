/*
 * devdir/conffile.c - zerofs.conf and ZEROFS_* variables (see conffile.h)
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "devdir/conffile.h"

/* a file bigger than this is no configuration file */
#define CONF_FILE_MAX (1 << 20)

/* a formatted string (malloc'd; aborts when out of memory, as zf_malloc) */
static char *strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *strf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	return s;
}

static const char *const key_names[ZF_CONF_NKEYS] = {
	[ZF_CONF_CACHE_SIZE] = "cache_size",
	[ZF_CONF_FETCH_TIMEOUT] = "fetch_timeout",
	[ZF_CONF_WRITE_WAIT] = "write_wait",
	[ZF_CONF_MAX_DELAY] = "max_delay",
	[ZF_CONF_MERGE_AFTER] = "merge_after",
	[ZF_CONF_COMMIT] = "commit",
	[ZF_CONF_TIMEOUT] = "timeout",
	[ZF_CONF_CKPT] = "ckpt",
	[ZF_CONF_MEM] = "mem",
	[ZF_CONF_LOG] = "log",
	[ZF_CONF_LOG_LEVEL] = "log_level",
	[ZF_CONF_OPTIONS] = "options",
	[ZF_CONF_REMOTE] = "remote",
};

static const char *const layer_names[ZF_CONF_ENV] = {
	[ZF_CONF_SYSTEM] = "system file",
	[ZF_CONF_USER] = "user file",
	[ZF_CONF_ENV_FILE] = "$ZEROFS_CONFIG",
};

const char *zf_conf_key_name(enum zf_conf_key k)
{
	return key_names[k];
}

static int find_key(const char *name)
{
	int k;

	for (k = 0; k < ZF_CONF_NKEYS; k++)
		if (!strcmp(name, key_names[k]))
			return k;
	return -1;
}

/* is value good for key k? checked as the mount option it stands for */
static int check_value(int k, const char *value, char *why, size_t len)
{
	struct zf_mount_opts *mo;
	char *opt;
	int r;

	if (!*value) {
		snprintf(why, len, "'%s' has no value", key_names[k]);
		return -EINVAL;
	}
	if (k == ZF_CONF_REMOTE)
		return 0; /* mkfs checks the bucket itself */
	mo = zf_malloc(sizeof(*mo));
	zf_mount_opts_init(mo);
	if (k == ZF_CONF_OPTIONS)
		opt = zf_strdup(value);
	else
		opt = strf("%s=%s", key_names[k], value);
	r = zf_mount_opts_parse(opt, mo, why, len);
	if (r == -E2BIG)
		snprintf(why, len, "'%s' is too long", key_names[k]);
	free(opt);
	free(mo);
	return r < 0 ? -EINVAL : 0;
}

int zf_conf_set(struct zf_conf *c, const char *key, const char *value, enum zf_conf_source src,
		const char *origin, char *why, size_t len)
{
	struct zf_conf_setting *s;
	int k = find_key(key), r;

	if (k < 0) {
		snprintf(why, len, "unknown key '%s' (see zerofs.conf(5))", key);
		return -EINVAL;
	}
	r = check_value(k, value, why, len);
	if (r < 0)
		return r;
	s = &c->set[k];
	if (s->source > src)
		return 0; /* a higher layer has it */
	free(s->value);
	free(s->origin);
	s->value = zf_strdup(value);
	s->origin = zf_strdup(origin);
	s->source = src;
	return 0;
}

int zf_conf_parse_text(struct zf_conf *c, const char *text, const char *name,
		       enum zf_conf_source src, char *why, size_t len)
{
	char *copy = zf_strdup(text), *line, *p, err[512];
	unsigned int n = 0;
	int r = 0;

	/* strtok_r would skip empty lines and so miscount: split by hand */
	for (line = copy; line && r == 0; line = p) {
		char *eq, origin[4096 + 16];

		p = strchr(line, '\n');
		if (p)
			*p++ = 0;
		n++;
		line = zf_trim(line);
		if (!*line || *line == '#')
			continue;
		eq = strchr(line, '=');
		if (!eq) {
			snprintf(why, len, "%s:%u: expected 'key = value', got '%s'", name, n, line);
			r = -EINVAL;
			break;
		}
		*eq = 0;
		snprintf(origin, sizeof(origin), "%s:%u", name, n);
		r = zf_conf_set(c, zf_trim(line), zf_trim(eq + 1), src, origin, err, sizeof(err));
		if (r < 0)
			snprintf(why, len, "%s: %s", origin, err);
	}
	free(copy);
	return r;
}

/* read the file at path into a NUL-terminated buffer: 0 and *ret, or -errno */
static int read_text(const char *path, char **ret)
{
	FILE *f = fopen(path, "re");
	char *buf;
	size_t n;
	int r = 0;

	if (!f)
		return -errno;
	buf = zf_malloc(CONF_FILE_MAX + 1);
	n = fread(buf, 1, CONF_FILE_MAX + 1, f);
	if (ferror(f))
		r = -EIO;
	else if (n > CONF_FILE_MAX)
		r = -EFBIG;
	fclose(f);
	if (r < 0) {
		free(buf);
		return r;
	}
	buf[n] = 0;
	*ret = buf;
	return 0;
}

/* the file of one layer, if any: missing is fine unless must_exist */
static int load_file(struct zf_conf *c, enum zf_conf_source src, const char *path,
		     int must_exist, char *why, size_t len)
{
	char *text = NULL;
	int r;

	if (!path)
		return 0;
	c->file[src] = zf_strdup(path);
	r = read_text(path, &text);
	if (r == -ENOENT && !must_exist)
		return 0;
	if (r < 0) {
		snprintf(why, len, "cannot read the configuration file '%s': %s", path,
			 strerror(-r));
		return r;
	}
	c->present[src] = 1;
	r = zf_conf_parse_text(c, text, path, src, why, len);
	free(text);
	return r;
}

/* the user's file: $XDG_CONFIG_HOME/zerofs/zerofs.conf, ~/.config/zerofs/zerofs.conf */
static char *user_file(void)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");

	if (xdg && *xdg == '/') /* the XDG spec: a relative one is ignored */
		return strf("%s/zerofs/zerofs.conf", xdg);
	if (home && *home)
		return strf("%s/.config/zerofs/zerofs.conf", home);
	return NULL;
}

/* the ZEROFS_<KEY> variables */
static int load_env(struct zf_conf *c, char *why, size_t len)
{
	char var[64], err[512];
	int k, i, r;

	for (k = 0; k < ZF_CONF_NKEYS; k++) {
		const char *v;

		snprintf(var, sizeof(var), "ZEROFS_%s", key_names[k]);
		for (i = 7; var[i]; i++)
			var[i] = toupper((unsigned char)var[i]);
		v = getenv(var);
		if (!v)
			continue;
		r = zf_conf_set(c, key_names[k], v, ZF_CONF_ENV, var, err, sizeof(err));
		if (r < 0) {
			snprintf(why, len, "environment variable %s: %s", var, err);
			return r;
		}
	}
	return 0;
}

int zf_conf_load(struct zf_conf *c, char *why, size_t len)
{
	const char *sys = getenv("ZEROFS_SYSTEM_CONFIG"), *env = getenv("ZEROFS_CONFIG");
	char *user = user_file();
	int r;

	memset(c, 0, sizeof(*c));
	r = load_file(c, ZF_CONF_SYSTEM, sys && *sys ? sys : ZF_CONF_SYSTEM_FILE, 0, why, len);
	if (r == 0)
		r = load_file(c, ZF_CONF_USER, user, 0, why, len);
	if (r == 0 && env && *env)
		r = load_file(c, ZF_CONF_ENV_FILE, env, 1, why, len);
	if (r == 0)
		r = load_env(c, why, len);
	free(user);
	return r;
}

const char *zf_conf_get(const struct zf_conf *c, enum zf_conf_key k)
{
	return c->set[k].value;
}

int zf_conf_apply_mount(const struct zf_conf *c, struct zf_mount_opts *mo, char *why, size_t len)
{
	int k, r = 0;

	for (k = 0; k < ZF_CONF_NKEYS && r == 0; k++) {
		char *opt;

		if (!c->set[k].value || k == ZF_CONF_REMOTE)
			continue;
		if (k == ZF_CONF_OPTIONS)
			opt = zf_strdup(c->set[k].value);
		else
			opt = strf("%s=%s", key_names[k], c->set[k].value);
		r = zf_mount_opts_parse(opt, mo, why, len);
		if (r == -E2BIG)
			snprintf(why, len, "too many FUSE options (%s)", c->set[k].origin);
		free(opt);
	}
	return r;
}

int zf_conf_mkfs_remote(const struct zf_conf *c, const char *dev_dir, char *buf, size_t len)
{
	const char *url = c->set[ZF_CONF_REMOTE].value, *p, *at;
	char name[256];
	size_t n = strlen(dev_dir), o = 0;

	if (!url)
		return -ENOENT;
	while (n > 1 && dev_dir[n - 1] == '/')
		n--;
	for (p = dev_dir + n; p > dev_dir && p[-1] != '/'; p--)
		;
	if ((size_t)(dev_dir + n - p) >= sizeof(name))
		return -ENAMETOOLONG;
	snprintf(name, sizeof(name), "%.*s", (int)(dev_dir + n - p), p);
	for (p = url; (at = strstr(p, "{name}")); p = at + 6) {
		o += snprintf(buf + o, o < len ? len - o : 0, "%.*s%s", (int)(at - p), p, name);
		if (o >= len)
			return -ENAMETOOLONG;
	}
	o += snprintf(buf + o, o < len ? len - o : 0, "%s", p);
	return o < len ? 0 : -ENAMETOOLONG;
}

void zf_conf_print(const struct zf_conf *c, FILE *out)
{
	int src, k, w, unset = 0;

	for (src = ZF_CONF_SYSTEM; src < ZF_CONF_ENV; src++) {
		if (!c->file[src])
			fprintf(out, "# %-15s (none)\n", layer_names[src]);
		else
			fprintf(out, "# %-15s %s%s\n", layer_names[src], c->file[src],
				c->present[src] ? "" : " (not there)");
	}
	for (k = 0; k < ZF_CONF_NKEYS; k++) {
		const struct zf_conf_setting *s = &c->set[k];

		if (!s->value)
			continue;
		w = (int)(strlen(key_names[k]) + strlen(s->value) + 3);
		fprintf(out, "%s = %s%*s# %s%s\n", key_names[k], s->value, w < 40 ? 40 - w : 1, "",
			s->source == ZF_CONF_ENV ? "environment: " : "", s->origin);
	}
	for (k = 0; k < ZF_CONF_NKEYS; k++) {
		if (c->set[k].value)
			continue;
		fprintf(out, "%s%s", unset++ ? ", " : "# not set (the built-in defaults): ",
			key_names[k]);
	}
	if (unset)
		fprintf(out, "\n");
}

void zf_conf_free(struct zf_conf *c)
{
	int k;

	if (!c)
		return;
	for (k = 0; k < ZF_CONF_NKEYS; k++) {
		free(c->set[k].value);
		free(c->set[k].origin);
	}
	for (k = 0; k < ZF_CONF_ENV; k++)
		free(c->file[k]);
	memset(c, 0, sizeof(*c));
}
