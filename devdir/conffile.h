/*
 * devdir/conffile.h - zerofs.conf: defaults for mount options and for
 * mkfs's bucket, from files and the environment (man/zerofs.conf.5.scd).
 *
 * Layers, each overriding the ones before it: the system file
 * (/etc/zerofs/zerofs.conf, or $ZEROFS_SYSTEM_CONFIG), the user's file
 * ($XDG_CONFIG_HOME/zerofs/zerofs.conf, else ~/.config/zerofs/zerofs.conf),
 * the file $ZEROFS_CONFIG names, then ZEROFS_<KEY> variables
 * (ZEROFS_CACHE_SIZE=10G). The command line overrides them all: the
 * caller applies it after zf_conf_apply_mount().
 *
 * A file is lines of "key = value"; '#' starts a comment line; blank
 * lines are skipped. A value is checked as the option it stands for
 * (devdir/mount_opts.c), so a bad one is refused where it is written,
 * with file:line. No global state; messages go to the caller in why.
 */
#ifndef ZF_DEVDIR_CONFFILE_H
#define ZF_DEVDIR_CONFFILE_H

#include <stddef.h>
#include <stdio.h>

#include "devdir/mount_opts.h"

#define ZF_CONF_SYSTEM_FILE "/etc/zerofs/zerofs.conf"

/* where a setting comes from, lowest precedence first */
enum zf_conf_source {
	ZF_CONF_UNSET = 0,
	ZF_CONF_SYSTEM,		/* the system file */
	ZF_CONF_USER,		/* the user's file */
	ZF_CONF_ENV_FILE,	/* the file $ZEROFS_CONFIG names */
	ZF_CONF_ENV,		/* a ZEROFS_<KEY> variable */
};

/* the keys, in the order zerofs config prints them */
enum zf_conf_key {
	ZF_CONF_CACHE_SIZE,
	ZF_CONF_FETCH_TIMEOUT,
	ZF_CONF_WRITE_WAIT,
	ZF_CONF_MAX_DELAY,
	ZF_CONF_MERGE_AFTER,
	ZF_CONF_COMMIT,
	ZF_CONF_TIMEOUT,
	ZF_CONF_CKPT,
	ZF_CONF_MEM,
	ZF_CONF_LOG,
	ZF_CONF_LOG_LEVEL,
	ZF_CONF_OPTIONS,	/* more -o options, comma-separated */
	ZF_CONF_REMOTE,		/* mkfs's bucket without --remote; {name}: the dev-dir's */
	ZF_CONF_NKEYS,
};

struct zf_conf_setting {
	char *value;			/* NULL: not set */
	enum zf_conf_source source;
	char *origin;			/* "FILE:LINE" or the variable's name */
};

struct zf_conf {
	struct zf_conf_setting set[ZF_CONF_NKEYS];
	/* the file of each layer (NULL: none, e.g. no $HOME) and whether it was
	 * there, for zerofs config */
	char *file[ZF_CONF_ENV];
	int present[ZF_CONF_ENV];
};

/* a key's name ("cache_size") */
const char *zf_conf_key_name(enum zf_conf_key k);

/*
 * Read every layer into c (zeroed first; zf_conf_free it, also on error).
 * A missing system or user file is no error; a missing $ZEROFS_CONFIG
 * file is. Returns 0, or -errno with one line in why (len bytes) naming
 * file:line or the variable: -EINVAL a bad line or value (e.g.
 * "/etc/zerofs/zerofs.conf:3: unknown key 'cach_size'"), or the -errno of
 * a file that cannot be read.
 */
int zf_conf_load(struct zf_conf *c, char *why, size_t len);

/*
 * Parse text (the contents of a file called name) into c at layer src,
 * over what c holds. 0, or -EINVAL with "name:line: ..." in why.
 */
int zf_conf_parse_text(struct zf_conf *c, const char *text, const char *name,
		       enum zf_conf_source src, char *why, size_t len);

/*
 * Set key (its name) to value at layer src, from origin ("FILE:LINE" or a
 * variable), unless a higher layer set it already. 0, or -EINVAL with why
 * saying what is wrong (an unknown key, a bad value), without the origin.
 */
int zf_conf_set(struct zf_conf *c, const char *key, const char *value, enum zf_conf_source src,
		const char *origin, char *why, size_t len);

/* a setting's value, or NULL */
const char *zf_conf_get(const struct zf_conf *c, enum zf_conf_key k);

/*
 * Apply the mount options of c to mo (as zf_mount_opts_init left it, before
 * the command line's). 0, or -EINVAL/-E2BIG with why (values were checked
 * when read: this fails only for FUSE options that do not fit).
 */
int zf_conf_apply_mount(const struct zf_conf *c, struct zf_mount_opts *mo, char *why, size_t len);

/*
 * mkfs's bucket for dev_dir from the remote setting ({name} replaced by
 * dev_dir's last component) into buf (len bytes): 0, -ENOENT when not set,
 * -ENAMETOOLONG.
 */
int zf_conf_mkfs_remote(const struct zf_conf *c, const char *dev_dir, char *buf, size_t len);

/* What zerofs config prints: the files read, then each setting and its source. */
void zf_conf_print(const struct zf_conf *c, FILE *out);

void zf_conf_free(struct zf_conf *c);

#endif
