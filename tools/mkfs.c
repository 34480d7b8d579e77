/*
 * tools/mkfs.c - zerofs mkfs: format a dev-dir (its bucket checked first,
 * devdir/remote_check.h), or rebuild one from a bucket (--restore; a
 * mount of an empty dev-dir restores through zf_tool_restore too)
 *
 * Exit codes: 0 done, 1 failed or refused (nothing formatted), 2 bad
 * arguments (a bad bucket URL too), 3 restored with --allow-loss but less
 * than the bucket held.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/progress.h"
#include "devdir/devdir.h"
#include "devdir/mount_opts.h"
#include "devdir/conffile.h"
#include "devdir/remote_check.h"
#include "tools/commands.h"

/* what a restore says: the first damage as the reason, then one line each */
struct restore_out {
	const char *cmd, *url;
	int allow_loss;
	unsigned int damage;
	struct zf_progress meta, chunks;	/* the two stages' bars (tier/remote.h) */
};

static void restore_progress(void *ctx, const char *stage, uint64_t done, uint64_t total)
{
	struct restore_out *o = ctx;

	if (!strcmp(stage, "metadata")) {
		zf_progress_update(&o->meta, done, total, NULL);
	} else {
		zf_progress_clear(&o->meta);
		zf_progress_update(&o->chunks, done, total, NULL);
	}
}

static void restore_line(void *ctx, int kind, const char *msg)
{
	struct restore_out *o = ctx;

	zf_progress_clear(&o->meta);
	zf_progress_clear(&o->chunks);

	if (kind == ZF_RESTORE_DAMAGE && !o->allow_loss && !o->damage++)
		fprintf(stderr, "zerofs %s: bucket '%s' is damaged: %s\n", o->cmd, o->url, msg);
	else if (kind == ZF_RESTORE_DAMAGE && !o->allow_loss)
		fprintf(stderr, "zerofs %s: also: %s\n", o->cmd, msg);
	else if (kind == ZF_RESTORE_DAMAGE)
		fprintf(stderr, "zerofs %s: lost: %s\n", o->cmd, msg);
	else if (kind == ZF_RESTORE_UNUSED)
		fprintf(stderr, "zerofs %s: %s: %s\n", o->cmd,
			o->allow_loss ? "could not use" : "also unusable", msg);
	else
		fprintf(stderr, "zerofs %s: warning: %s\n", o->cmd, msg);
}

/* an encrypted bucket's passphrase (struct zf_restore_opts.passphrase) */
static int restore_pass(void *ctx, char *buf, size_t len)
{
	struct restore_out *o = ctx;

	zf_progress_clear(&o->meta);	/* the prompt gets a line of its own */
	zf_progress_clear(&o->chunks);
	return zf_tool_passphrase(o->cmd, "ZEROFS_PASSPHRASE", 0, buf, len);
}

int zf_tool_restore(const char *cmd, const char *url, const char *dev, int allow_loss,
		    int verify)
{
	struct restore_out out = { .cmd = cmd, .url = url, .allow_loss = allow_loss };
	struct zf_restore_opts ro = { .allow_loss = allow_loss, .verify_data = verify,
				      .say = restore_line, .passphrase = restore_pass,
				      .progress = restore_progress, .ctx = &out };
	struct zf_restore_report rep = { 0 };
	char what[48];
	int r;

	snprintf(what, sizeof(what), "%s: restore", cmd);
	zf_progress_init(&out.meta, what, NULL);
	zf_progress_init(&out.chunks, what, "chunks");
	r = zf_devdir_restore(dev, url, &ro, &rep);
	zf_progress_clear(&out.meta);
	zf_progress_clear(&out.chunks);
	if (r == -EKEYREJECTED || r == -ENOTTY || r == -EINVAL || r == -EOPNOTSUPP) {
		fprintf(stderr, "zerofs %s: nothing restored into '%s'\n", cmd, dev);
		return 1;
	}
	if (r == -EBADMSG) {
		fprintf(stderr, "zerofs %s: nothing restored into '%s'%s\n", cmd, dev,
			allow_loss ? "" : " (--allow-loss restores what verifies and names what "
				     "is lost: 'zerofs mkfs --restore URL --allow-loss DIR')");
		return 1;
	}
	if (r < 0) {
		fprintf(stderr, "zerofs %s: cannot restore '%s' from '%s': %s\n", cmd, dev, url,
			strerror(-r));
		return 1;
	}
	if (rep.lost_from)
		fprintf(stderr, "zerofs %s: lost: log records 0x%llx..0x%llx (restored up to "
			"0x%llx)\n", cmd, (unsigned long long)rep.lost_from,
			(unsigned long long)rep.lost_to, (unsigned long long)rep.seq);
	if (rep.beyond)
		fprintf(stderr, "zerofs %s: the bucket keeps log pieces past what was restored: a "
			"mount of '%s' will refuse to upload there (give it a new bucket with -o "
			"remote=URL)\n", cmd, dev);
	if (rep.problems || rep.lost_from) {
		printf("restored '%s' from '%s' INCOMPLETE: %u problems (see above)\n", dev, url,
		       rep.problems);
		return 3;
	}
	printf("restored '%s' from '%s'\n", dev, url);
	return 0;
}


int zf_cmd_mkfs(int argc, char **argv)
{
	static const struct option opts[] = { { "force", no_argument, NULL, 'f' },
					      { "zstd-level", required_argument, NULL, 'z' },
					      { "remote", required_argument, NULL, 'r' },
					      { "restore", required_argument, NULL, 'R' },
					      { "allow-loss", no_argument, NULL, 'L' },
					      { "verify-data", no_argument, NULL, 'd' },
					      { "no-check", no_argument, NULL, 'N' },
					      { "encrypt", no_argument, NULL, 'E' },
					      { NULL, 0, NULL, 0 } };
	struct zf_mkfs_opts mo = { 0 };
	const char *remote = NULL, *restore = NULL;
	int c, r, allow_loss = 0, verify = 0, check = 1, encrypt = 0;
	char pass[1024];
	char url[ZF_REMOTE_URL_MAX], why[ZF_REMOTE_URL_MAX + 256], conf_url[ZF_REMOTE_URL_MAX];
	struct zf_devdir_err err;
	long level;

	while ((c = getopt_long(argc, argv, "fz:r:R:", opts, NULL)) != -1) {
		switch (c) {
		case 'L':
			allow_loss = 1;
			break;
		case 'd':
			verify = 1;
			break;
		case 'N':
			check = 0;
			break;
		case 'E':
			encrypt = 1;
			break;
		case 'r':
			remote = optarg;
			break;
		case 'R':
			restore = optarg;
			break;
		case 'f':
			mo.force = 1;
			break;
		case 'z':
			if (zf_parse_int(optarg, 1, 19, &level) < 0) {
				fprintf(stderr, "zerofs mkfs: invalid zstd level '%s' (1..19)\n", optarg);
				return 2;
			}
			mo.zstd_level = level;
			break;
		default:
			return zf_tool_bad_option(argv);
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "zerofs mkfs: expected one dev-dir\n");
		return 2;
	}
	if ((allow_loss || verify) && !restore) {
		fprintf(stderr, "zerofs mkfs: --allow-loss and --verify-data go with --restore\n");
		return 2;
	}
	if (restore && encrypt) {
		fprintf(stderr, "zerofs mkfs: --encrypt does not go with --restore (a restore "
			"keeps the bucket's own encryption)\n");
		return 2;
	}
	if (restore)
		return zf_tool_restore("mkfs", restore, argv[optind], allow_loss, verify);
	if (!remote) { /* zerofs.conf's remote, if set */
		struct zf_conf conf;

		r = zf_tool_conf_load("mkfs", &conf);
		if (r)
			return r;
		r = zf_conf_mkfs_remote(&conf, argv[optind], conf_url, sizeof(conf_url));
		zf_conf_free(&conf);
		if (r == -ENAMETOOLONG) {
			fprintf(stderr, "zerofs mkfs: the remote of zerofs.conf is too long\n");
			return 2;
		}
		remote = r == 0 ? conf_url : NULL;
	}
	if (remote && check) {
		/* the reason is the one line: the store's own log lines would repeat it */
		zf_log_set_level(ZF_LOG_NONE);
		r = zf_devdir_check_remote(remote, why, sizeof(why));
		zf_log_set_level(ZF_LOG_WARN);
		if (r < 0) {
			fprintf(stderr, "zerofs mkfs: %s; nothing formatted (--no-check skips this "
				"check)\n", why);
			return r == -EINVAL ? 2 : 1;
		}
	}
	if (encrypt) {
		r = zf_tool_passphrase("mkfs", "ZEROFS_PASSPHRASE", 1, pass, sizeof(pass));
		if (r < 0)
			return 1;
		mo.passphrase = pass;
		mo.passphrase_len = (size_t)r;
	}
	r = zf_devdir_mkfs(argv[optind], &mo, remote, url, sizeof(url), &err);
	memset(pass, 0, sizeof(pass));
	if (r < 0 && err.at == ZF_DEVDIR_AT_CORE) {
		if (r != -EEXIST && r != -ENOTEMPTY) /* else the core said why */
			fprintf(stderr, "zerofs mkfs: cannot format '%s': %s\n", argv[optind],
				strerror(-r));
		return 1;
	}
	if (r < 0) {
		fprintf(stderr, "zerofs mkfs: cannot write '%s/remote.conf': %s\n", argv[optind],
			strerror(-r));
		return 1;
	}
	printf("formatted '%s' (object store: %s%s)\n", argv[optind], url,
	       encrypt ? ", encrypted" : "");
	return 0;
}

